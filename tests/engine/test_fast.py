"""The engine's fast path against its autograd path (``GNNLEAKY_FAST=0``), through the
public API: every activation, dropout lane width, thread layout, width and feature kind;
and the fused kernels against torch."""

import functools

import numpy as np
import pytest
import torch

from gnnleaky.engine import SeededDropout, StackedGNN, model_threads
from gnnleaky.engine.dropout import keep_masks, random_words
from gnnleaky.engine.fast import flush_denormals, kernels
from gnnleaky.nn import LeakyGNN
from gnnleaky.nn.functional import normalized_adjacency
from tests.graphs import random_graph

ACTS = [
    ("relu", {}),
    ("leaky_relu", {"negative_slope": 0.1}),
    ("leaky_relu", {"negative_slope": -0.3}),
    ("prelu", {"mode": "layer", "init": 0.2}),
    ("prelu", {"mode": "channel", "init": 0.3, "bounds": (0.0, 1.0)}),
    ("identity", {}),
]
FIXED = [a for a in ACTS if a[0] != "prelu"]

_graph = functools.partial(random_graph, n=50, e=200, f=12)


def _stack(acts, num_layers=4, f=12, p=0.0, generators=True, hidden=16, out=3, **kw):
    with torch.random.fork_rng():
        torch.manual_seed(num_layers)
        models = [
            LeakyGNN(f, hidden, num_layers, out, act=a, act_kwargs=k, dropout=p, **kw)
            for a, k in acts
        ]
    stack = StackedGNN.from_models(models)
    if stack.slope_raw is not None:  # channel-wise slopes that differ by channel
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            stack.slope_raw.add_(0.2 * torch.rand(stack.slope_raw.shape, generator=g))
    if p:
        gens = [torch.Generator().manual_seed(i) for i in range(len(models))]
        stack.dropout = SeededDropout(p, gens if generators else None)
    return stack


def _run(stack, x, ei, fast, monkeypatch, seed=0):
    """Output and every gradient of one training step through the chosen path."""
    monkeypatch.setenv("GNNLEAKY_FAST", "1" if fast else "0")
    assert stack.uses_fast_path(x) == fast
    stack.zero_grad()
    torch.manual_seed(seed)  # the global stream, for dropout without generators
    out = stack(x, ei)
    (out.square().sum() + out.sum()).backward()
    grads = {n: p.grad.clone() for n, p in stack.named_parameters()}
    return out.detach(), grads


def _assert_same(a, b, tol=1e-5):
    out_a, g_a = a
    out_b, g_b = b
    scale = 1.0 + float(out_b.abs().max())
    assert float((out_a - out_b).abs().max()) <= tol * scale
    assert g_a.keys() == g_b.keys()
    for name in g_a:
        scale = 1.0 + float(g_b[name].abs().max())
        assert float((g_a[name] - g_b[name]).abs().max()) <= tol * scale, name


def _both(make, x, ei, monkeypatch, threads):
    """The same fresh stack through both paths (fresh generators for each)."""
    runs = []
    for fast in (False, True):
        stack = make()
        stack.train()
        with model_threads(threads):
            runs.append(_run(stack, x, ei, fast, monkeypatch, seed=3))
    return runs


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("acts", "kw"),
    [
        (ACTS, {}),
        (FIXED, {"residual": True}),
        (ACTS[:1], {}),  # one model
        (ACTS[4:5], {"hidden": 64, "out": None}),  # one model, 64 wide, no output layer
        (ACTS, {"hidden": 64}),
        (FIXED[:3], {"hidden": 64, "residual": True, "out": None}),
    ],
)
@pytest.mark.parametrize("sparse", [False, True])
def test_fast_matches_autograd_path(acts, kw, threads, sparse, monkeypatch):
    x, ei = _graph(sparse=sparse)
    ref, got = _both(lambda: _stack(acts, **kw), x, ei, monkeypatch, threads)
    _assert_same(got, ref)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("p", "generators"),
    [(0.5, True), (0.25, True), (0.125, True), (0.3, True), (0.5, False), (0.3, False)],
)
@pytest.mark.parametrize("sparse", [False, True])
def test_fast_dropout_matches_autograd_path(p, generators, sparse, threads, monkeypatch):
    """Every dropout lane width (1, 2, 3 bits -> 4, 16), with the models' own generators
    and with torch's default generator, on one and two threads."""
    x, ei = _graph(sparse=sparse)
    ref, got = _both(lambda: _stack(ACTS, p=p, generators=generators), x, ei, monkeypatch, threads)
    _assert_same(got, ref)
    stack = _stack(ACTS, p=p, generators=generators).eval()  # dropout really acted
    with torch.no_grad():
        assert not torch.allclose(stack(x, ei), got[0])


@pytest.mark.parametrize("threads", [1, 2])
def test_adam_steps_match_autograd_path(threads, monkeypatch):
    x, ei = _graph(sparse=True)
    y = torch.randint(0, 3, (50,))
    results = []
    for fast in ("0", "1"):
        monkeypatch.setenv("GNNLEAKY_FAST", fast)
        stack = _stack(ACTS, p=0.5).train()
        opt = torch.optim.Adam(stack.parameters(), lr=0.01)
        with model_threads(threads):
            for _ in range(30):
                opt.zero_grad()
                out = stack(x, ei)
                torch.nn.functional.cross_entropy(out.reshape(-1, 3), y.repeat(6)).backward()
                opt.step()
        results.append([p.detach().clone() for p in stack.parameters()])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-4)


def test_eval_and_no_grad_match_autograd_path(monkeypatch):
    x, ei = _graph(sparse=True)
    stack = _stack(ACTS, num_layers=6).eval()
    monkeypatch.setenv("GNNLEAKY_FAST", "0")
    with torch.no_grad():
        ref = stack(x, ei)
    monkeypatch.setenv("GNNLEAKY_FAST", "1")
    with torch.no_grad():
        out = stack(x, ei)
    assert torch.allclose(out, ref, atol=1e-5)
    assert out.grad_fn is None


def test_two_forwards_before_backward_keep_their_own_activations():
    x, ei = _graph()
    stack = _stack(FIXED, num_layers=5)
    x2 = x.flip(0).contiguous()
    first = stack(x, ei)
    second = stack(x2, ei)
    first.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in stack.named_parameters()}
    stack.zero_grad()
    stack(x, ei).square().sum().backward()
    for n, p in stack.named_parameters():
        assert torch.allclose(grads[n], p.grad, atol=1e-6), n
    stack.zero_grad()
    second.square().sum().backward()  # still valid after the others
    assert all(torch.isfinite(p.grad).all() for p in stack.parameters())


def test_fast_path_only_for_float32_cpu_without_input_grad():
    x, ei = _graph()
    stack = _stack(FIXED)
    assert stack.uses_fast_path(x)
    assert not stack.uses_fast_path(x.double())
    assert not stack.uses_fast_path(x.clone().requires_grad_())
    out = stack(x, ei)
    assert type(out.grad_fn).__name__ == "_FastStackBackward"
    _, hidden = stack(x, ei, return_hidden=True)  # hidden features: the autograd path
    assert type(hidden.pre[0].grad_fn).__name__ != "_FastStackBackward"


@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("out_channels", [3, None])
def test_fast_path_shapes_and_strided_input(num_layers, out_channels, monkeypatch):
    """One layer; a non-contiguous feature matrix; equal to each model alone."""
    x, ei = _graph(f=24)
    x = x[:, ::2]
    assert not x.is_contiguous()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        models = [LeakyGNN(12, 8, num_layers, out_channels, act=a, act_kwargs=k) for a, k in FIXED]
    stack = StackedGNN.from_models(models)
    with torch.no_grad():
        out = stack(x, ei)
        refs = [m(x, ei) for m in models]
    for k, ref in enumerate(refs):
        assert float((out[k] - ref).abs().max()) <= 1e-5 * (1 + float(ref.abs().max()))
    _assert_same(_run(stack, x, ei, True, monkeypatch), _run(stack, x, ei, False, monkeypatch))


def test_clear_cache_frees_the_workspace():
    x, ei = _graph()
    stack = _stack(FIXED)
    stack(x, ei).sum().backward()
    assert stack.fast_workspace is not None
    stack.clear_cache()
    assert stack.fast_workspace is None
    stack(x, ei).sum().backward()  # rebuilt on the next call
    assert stack.fast_workspace is not None


def test_model_threads_and_torchs_threads():
    prev = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with model_threads():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        x, ei = _graph()
        _stack(ACTS)(x, ei).sum().backward()  # models on the engine's threads
        assert torch.get_num_threads() == 2  # torch's own count is left as it was
    finally:
        torch.set_num_threads(prev)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            with model_threads(bad):
                pass


def test_flush_denormals_is_scoped():
    tiny = torch.tensor([1e-39])
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode")
    with flush_denormals():
        assert float(tiny * 1.0) == 0.0
    assert float(tiny * 1.0) > 0.0


# -- kernels ----------------------------------------------------------------------------------
def _csr(n=30, e=120, seed=1):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    a, a_t = normalized_adjacency(ei, num_nodes=n)

    def arrays(m):
        return (m.crow_indices().numpy(), m.col_indices().numpy(), m.values().numpy())

    return a, a_t, arrays(a), arrays(a_t)


@pytest.mark.parametrize("c", [9, 48, 64, 128])
def test_kernels_match_torch(c):
    """Widths that take the heap buffer (9, 48) and 64-wide register blocks (64, 128);
    rows with an odd and an even number of non-zeros."""
    n = 300
    a, a_t, arr, arr_t = _csr(n=n, e=1500)
    nnz = np.diff(arr[0])
    assert (nnz % 2 == 1).any() and (nnz % 2 == 0).any()
    g = torch.Generator().manual_seed(0)
    p, bias, slope = torch.randn(n, c, generator=g), torch.randn(c, generator=g), torch.rand(c)
    z, h = np.empty((n, c), np.float32), np.empty((n, c), np.float32)
    kernels.propagate(arr, p.numpy(), bias.numpy(), slope.numpy(), kernels.NO_MASK, True,
                      True, z, h)  # fmt: skip
    z_ref = torch.addmm(bias, a, p)
    assert np.allclose(z, z_ref.numpy(), atol=1e-5)
    assert np.allclose(h, torch.prelu(z_ref, slope).numpy(), atol=1e-5)
    out = np.empty((n, c), np.float32)
    kernels.spmm(arr_t, p.numpy(), out)
    assert np.allclose(out, (a_t @ p).numpy(), atol=1e-5)
    gh = torch.randn(n, c, generator=g)
    gz, gb, gs = np.empty((n, c), np.float32), np.zeros(c, np.float32), np.zeros(c, np.float32)
    kernels.activation_backward(gh.numpy(), z, slope.numpy(), kernels.NO_MASK, gz, gb, gs, True)
    zt = torch.from_numpy(z).requires_grad_()
    st = slope.clone().requires_grad_()
    ref_z, ref_s = torch.autograd.grad(torch.prelu(zt, st), (zt, st), gh)
    assert np.allclose(gz, ref_z.numpy(), atol=1e-5)
    assert np.allclose(gb, ref_z.sum(0).numpy(), atol=1e-4)
    assert np.allclose(gs, ref_s.numpy(), atol=1e-4)


@pytest.mark.parametrize("p", [0.5, 0.25, 0.125, 0.3, 0.9, 1 / 256])
@pytest.mark.parametrize(
    ("n", "c", "k"), [(37, 13, 1), (64, 64, 1), (5, 3, 1), (37, 5, 3), (37, 128, 3)]
)
def test_kernel_dropout_decodes_the_same_masks(p, n, c, k):
    """propagate's and activation_backward's in-kernel decoding keep exactly the entries
    the autograd path's masks keep, for every lane width: one mask per model, or (k > 1)
    model j's column block of one [N, k C] mask (rows that straddle two bit fields
    included), in the heap-buffer rows (13, 5, 3) and the 64-wide register blocks."""
    mask, scale = keep_masks(
        n, k * c, p, [torch.Generator().manual_seed(7)], 1, torch.float32, "cpu"
    )
    buf, bits, drop, scale2 = random_words(
        n, k * c, p, [torch.Generator().manual_seed(7)], 1, "cpu"
    )
    if bits == 16:
        drop -= 1 << 15
    assert scale2 == scale
    # a graph without edges: z = bias = 1, so h = keep * scale
    graph = (np.zeros(n + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    ones = np.ones(c, np.float32)
    raw = buf[0].numpy().view(np.uint8)
    for j in range(k):
        group = (raw, bits, drop, np.float32(scale), k * c, j * c)
        z, h = np.empty((n, c), np.float32), np.empty((n, c), np.float32)
        kernels.propagate(graph, np.zeros((1, c), np.float32), ones, ones, group, True, True, z, h)
        expected = (mask[0][:, j * c : (j + 1) * c] * scale).numpy()
        assert np.array_equal(h, expected)
        # activation_backward decodes the same entries: with z > 0, g_z = g_h * keep * scale
        g_z, g_b = np.empty((n, c), np.float32), np.zeros(c, np.float32)
        kernels.activation_backward(np.ones((n, c), np.float32), z, ones, group, g_z, g_b,
                                    np.zeros(0, np.float32), False)  # fmt: skip
        assert np.array_equal(g_z, expected)
        assert np.allclose(g_b, expected.sum(0))
