"""The fused CPU path of StackedGNN (gnnleaky.engine.fast) against the
autograd path and plain torch references."""

import itertools

import numpy as np
import pytest
import torch

import gnnleaky.engine.fast as fast_pkg
from gnnleaky.engine import SeededDropout, StackedGNN
from gnnleaky.engine.dropout import keep_masks as _keep_masks
from gnnleaky.engine.dropout import random_words as _random_words
from gnnleaky.engine.fast import kernels as _kernels
from gnnleaky.engine.fast import stack as _fast
from gnnleaky.nn import LeakyGNN
from gnnleaky.nn.functional import normalized_adjacency

ACTS = [
    ("relu", {}),
    ("leaky_relu", {"negative_slope": 0.1}),
    ("leaky_relu", {"negative_slope": -0.3}),
    ("prelu", {"mode": "layer", "init": 0.2}),
    ("prelu", {"mode": "channel", "init": 0.3, "bounds": (0.0, 1.0)}),
    ("identity", {}),
]
FIXED = [a for a in ACTS if a[0] != "prelu"]


def _graph(n=50, e=200, f=12, seed=0, sparse=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g)
    if sparse:
        x = x * (torch.rand(n, f, generator=g) < 0.05)
    return x, torch.randint(0, n, (2, e), generator=g)


def _stack(acts, num_layers=4, f=12, p=0.0, generators=True, hidden=16, out=3, **kw):
    with torch.random.fork_rng():
        torch.manual_seed(num_layers)
        models = [
            LeakyGNN(f, hidden, num_layers, out, act=a, act_kwargs=k, dropout=p, **kw)
            for a, k in acts
        ]
    stack = StackedGNN.from_models(models)
    if p:
        gens = [torch.Generator().manual_seed(i) for i in range(len(models))]
        stack.dropout = SeededDropout(p, gens if generators else None)
    return stack


def _run(stack, x, ei, fast, monkeypatch, seed=0):
    """Output and every gradient of one training step through the chosen path."""
    monkeypatch.setattr(fast_pkg, "available", lambda: fast)
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


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("acts", "kw"),
    [
        (ACTS, {}),
        (FIXED, {}),
        (FIXED, {"residual": True}),
        (ACTS[:1], {}),  # one model
    ],
)
def test_fast_matches_autograd_path(acts, kw, threads, monkeypatch):
    x, ei = _graph()
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        stack = _stack(acts, **kw)
        stack.train()
        ref = _run(stack, x, ei, False, monkeypatch)
        _assert_same(_run(stack, x, ei, True, monkeypatch), ref)
    finally:
        torch.set_num_threads(prev)


@pytest.mark.parametrize("p", [0.0, 0.5, 0.3])
@pytest.mark.parametrize(("hidden", "out"), [(64, 3), (128, None)])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("stretch", [True, False])
def test_numba_dense_kernels_match_autograd_path(hidden, out, p, residual, stretch, monkeypatch):
    """Layers whose widths are multiples of 64 take H W and G_P W^T through
    _kernels.matmul and H^T G_P through _kernels.grad_weight: outputs and every gradient
    as in the autograd path, for every activation (learned, negative and channel-wise
    slopes included), residuals, 1- and 16-bit dropout lanes, and an output layer of
    other width or of the same width. With ``stretch`` the layers after the first run
    as one _kernels.forward_layers / backward_layers call per model; without, layer by
    layer from Python."""
    x, ei = _graph(n=70, e=300)
    acts = FIXED if residual else ACTS
    # compile the kernels first: numba binds the kernels a kernel calls when it compiles
    # it, so it must not see the counting wrappers below
    _run(_stack(acts[:1], num_layers=3, p=p, hidden=hidden, out=out, residual=residual),
         x, ei, True, monkeypatch)  # fmt: skip
    kernels = ["matmul", "grad_weight", "forward_layers", "backward_layers"]
    calls: dict[str, list] = {name: [] for name in kernels}
    for name in kernels:
        kernel = getattr(_kernels, name)

        def counted(*args, name=name, kernel=kernel):
            calls[name].append(args)
            return kernel(*args)

        monkeypatch.setattr(_kernels, name, counted)
    if not stretch:
        monkeypatch.setattr(_fast, "_uniform", lambda widths, num_acts: 0)
    runs = []
    for fast in (False, True):  # a fresh stack (fresh dropout generators) for each path
        stack = _stack(acts, num_layers=3, p=p, hidden=hidden, out=out, residual=residual)
        if stack.slope_raw is not None:  # channel-wise slopes that differ by channel
            g = torch.Generator().manual_seed(1)
            with torch.no_grad():
                stack.slope_raw.add_(0.2 * torch.rand(stack.slope_raw.shape, generator=g))
        stack.train()
        runs.append(_run(stack, x, ei, fast, monkeypatch))
    _assert_same(runs[1], runs[0])
    if not out:  # the call counts below are those of a network with an output layer
        return
    # the activated layers of the hidden width: 1 and 2
    u = 2
    if stretch:  # layers 1 .. u - 1, one call per model and pass
        for name in ("forward_layers", "backward_layers"):
            assert len(calls[name]) == len(acts)
            assert all(args[-7:-5] == (1, u) for args in calls[name])
        # from Python: the output layer's G_P W^T (its input is `hidden` wide)
        assert len(calls["matmul"]) == len(acts)
        assert not calls["grad_weight"]
    else:
        # per model: H W and H^T G_P of layer 1; G_P W^T of layers 1 and 2 (their
        # inputs are `hidden` wide)
        assert len(calls["matmul"]) == len(acts) * 3
        assert len(calls["grad_weight"]) == len(acts)
        assert not calls["forward_layers"] and not calls["backward_layers"]


@pytest.mark.parametrize(
    ("acts", "kw"),
    [
        (ACTS[:1], {}),  # one model on two threads
        (ACTS[4:5], {}),  # learned channel-wise slopes
        (FIXED[2:3], {"residual": True}),  # a negative slope, residuals
        (ACTS[1:3], {"threads": 3}),  # two models on three threads
        (ACTS[3:6], {}),  # three models on two threads: two side by side, one split
    ],
)
@pytest.mark.parametrize(("hidden", "out"), [(64, 3), (64, None), (16, 3)])
@pytest.mark.parametrize(("p", "generators"), [(0.0, True), (0.5, True), (0.3, False)])
@pytest.mark.parametrize("sparse", [False, True])
def test_models_split_over_threads_match_autograd_path(
    acts, kw, hidden, out, p, generators, sparse, monkeypatch
):
    """Models that do not fill a round of threads (all with fewer models than threads)
    have their rows split over the threads, which meet at barriers (_fast._Share); the
    others run one per thread. Outputs and every gradient as in the autograd path,
    with the layer stretch (hidden 64; not with masks drawn from the global generator)
    and without it (hidden 16), dense and sparse features, dropout, residuals, learned
    slopes; the split really ran."""
    kw = dict(kw)
    threads = kw.pop("threads", 2)
    monkeypatch.setattr(_fast, "_SPLIT_MIN_ROWS", 1)
    # (threads beyond the cores are tested too: waiting threads yield their core)
    monkeypatch.setattr(_fast, "_cores", lambda: threads)
    splits = []
    split = _fast._split

    def counted(spec, fn, k, n, f):
        splits.append(spec.parties)
        return split(spec, fn, k, n, f)

    monkeypatch.setattr(_fast, "_split", counted)
    x, ei = _graph(n=70, e=300, sparse=sparse)
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        runs = []
        for fast in (False, True):
            stack = _stack(acts, num_layers=4, p=p, generators=generators, hidden=hidden,
                           out=out, **kw)  # fmt: skip
            stack.train()
            runs.append(_run(stack, x, ei, fast, monkeypatch, seed=2))
        _assert_same(runs[1], runs[0])
    finally:
        torch.set_num_threads(prev)
    # a training forward and its backward, each split model over all threads
    assert splits == [threads] * (2 * (len(acts) % threads))


def test_a_failing_share_stops_the_others(monkeypatch):
    """An error in one thread of a split model ends the others' wait at the next barrier:
    the forward raises it (no hang), and the next call works."""
    monkeypatch.setattr(fast_pkg, "available", lambda: True)
    monkeypatch.setattr(_fast, "_SPLIT_MIN_ROWS", 1)
    x, ei = _graph(n=70, e=300)
    stack = _stack(ACTS[:1], num_layers=5, hidden=64)
    stack.eval()
    stretch = _fast._forward_stretch

    def failing(spec, k, masks, bufs, share, saved):
        if share.index == 1:
            raise ValueError("share 1 failed")
        return stretch(spec, k, masks, bufs, share, saved)

    prev = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            ref = stack(x, ei)
            monkeypatch.setattr(_fast, "_forward_stretch", failing)
            with pytest.raises((ValueError, RuntimeError), match="failed"):
                stack(x, ei)
            monkeypatch.setattr(_fast, "_forward_stretch", stretch)
            assert torch.equal(stack(x, ei), ref)
    finally:
        torch.set_num_threads(prev)


def test_barrier_counts_rounds_and_aborts():
    """Four threads (more than this machine may have cores: waiting threads yield) meet
    100 times; a failed thread's flag ends a wait with False."""
    import threading

    state = np.array([0, 0, _fast._sched_yield()], dtype=np.int64)
    results = []

    def meet():
        results.append(all(_kernels.barrier(state, 4, r) for r in range(100)))

    threads = [threading.Thread(target=meet) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [True] * 4 and state[0] == 400
    state = np.array([0, 1, 0], dtype=np.int64)  # flagged: the second party never comes
    assert not _kernels.barrier(state, 2, 0)


def test_split_takes_at_most_the_cores(monkeypatch):
    x, ei = _graph()
    stack = _stack(ACTS[:1])
    monkeypatch.setattr(_fast, "_SPLIT_MIN_ROWS", 1)
    monkeypatch.setattr(_fast, "_cores", lambda: 1)
    with _fast.model_threads(4):
        spec = _fast._Spec(stack, _fast.graph(stack._operators(x, ei, None), x), False, False)
    assert (spec.threads, spec.parties, spec.split_from) == (4, 1, 1)
    monkeypatch.setattr(_fast, "_cores", lambda: 3)
    with _fast.model_threads(4):
        spec = _fast._Spec(stack, _fast.graph(stack._operators(x, ei, None), x), False, False)
    assert (spec.threads, spec.parties, spec.split_from) == (4, 3, 0)


def test_share_bounds_cover_the_rows():
    for n, parties in ((70, 2), (2708, 2), (9, 3), (5, 4)):
        parts = [_fast._bounds(n, i, parties, 4) for i in range(parties)]
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
        assert all(r0 % 4 == 0 and r0 <= r1 for r0, r1 in parts)


def test_model_threads(monkeypatch):
    """Inside model_threads torch runs on one thread and the fast path on the threads
    torch had (or those given); both are restored after; a bad count is refused."""
    monkeypatch.setattr(fast_pkg, "available", lambda: True)
    prev = torch.get_num_threads()
    torch.set_num_threads(2)
    seen = []
    spec_init = _fast._Spec.__init__

    def spy(self, *args):
        spec_init(self, *args)
        seen.append((self.threads, torch.get_num_threads()))

    monkeypatch.setattr(_fast._Spec, "__init__", spy)
    x, ei = _graph()
    stack = _stack(FIXED)
    try:
        with _fast.model_threads():
            assert torch.get_num_threads() == 1
            stack(x, ei)
            with _fast.model_threads(3):
                stack(x, ei)
            stack(x, ei)
        assert torch.get_num_threads() == 2
        stack(x, ei)
        for bad in (-1, 0, 1.5, True):
            with pytest.raises(ValueError, match="threads"):
                with _fast.model_threads(bad):
                    pass
    finally:
        torch.set_num_threads(prev)
    assert seen == [(2, 1), (3, 1), (2, 1), (2, 2)]


def test_pre_activation_buffers_exist_before_the_models_threads_start(monkeypatch):
    """z buffers (learned slopes, negative slopes, residuals) are allocated by the forward
    before the pool's threads read them: a fresh stack's first training forward on two
    threads, many times over (lazy allocation in the threads raced)."""
    monkeypatch.setattr(fast_pkg, "available", lambda: True)
    x, ei = _graph()
    prev = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ref = None
        for _ in range(30):
            stack = _stack(ACTS, num_layers=3)
            stack.train()
            out = stack(x, ei)
            ws = stack.__dict__["_fast_workspace"]
            assert all(v is not None for v in ws._z_views)  # every layer has a PReLU
            ref = out.detach() if ref is None else ref
            assert torch.equal(out.detach(), ref)
    finally:
        torch.set_num_threads(prev)
    # the eval forward needs no z buffers
    stack = _stack(FIXED[:2], num_layers=3)
    stack.eval()
    with torch.no_grad():
        stack(x, ei)
    assert all(v is None for v in stack.__dict__["_fast_workspace"]._z_views)


@pytest.mark.parametrize("p", [0.5, 0.25, 0.3])
@pytest.mark.parametrize("generators", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_fast_dropout_matches_autograd_path(p, generators, sparse, monkeypatch):
    x, ei = _graph(sparse=sparse)
    results = []
    for fast in (False, True):
        stack = _stack(ACTS, p=p, generators=generators)  # fresh generators for each path
        stack.train()
        results.append(_run(stack, x, ei, fast, monkeypatch, seed=3))
    _assert_same(results[1], results[0])
    # dropout really acted: a training forward differs from an eval forward
    stack.eval()
    with torch.no_grad():
        assert not torch.allclose(stack(x, ei), results[1][0])


def test_eval_and_no_grad_match_autograd_path(monkeypatch):
    x, ei = _graph(sparse=True)
    stack = _stack(ACTS, num_layers=6)
    stack.eval()
    monkeypatch.setattr(fast_pkg, "available", lambda: False)
    with torch.no_grad():
        ref = stack(x, ei)
    monkeypatch.setattr(fast_pkg, "available", lambda: True)
    with torch.no_grad():
        out = stack(x, ei)
    assert torch.allclose(out, ref, atol=1e-5)
    assert out.grad_fn is None


@pytest.mark.parametrize("hidden", [16, 64])
def test_two_forwards_before_backward_keep_their_own_activations(hidden, monkeypatch):
    """The second training forward must not overwrite the buffers the first one saved
    (hidden 64: layers 1-3 as one kernel call)."""
    monkeypatch.setattr(fast_pkg, "available", lambda: True)
    x, ei = _graph()
    stack = _stack(FIXED, num_layers=5, hidden=hidden)
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
    calls = []
    orig = _fast._FastStack.apply

    def spy(*args):
        calls.append(1)
        return orig(*args)

    _fast._FastStack.apply = spy
    try:
        stack(x, ei)
        stack(x, ei, return_hidden=True)  # hidden features come from the autograd path
        stack.double()(x.double(), ei)
    finally:
        _fast._FastStack.apply = orig
    assert len(calls) == 1


# -- kernels ----------------------------------------------------------------------------------
def _csr(n=30, e=120, seed=1):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    a, a_t = normalized_adjacency(ei, num_nodes=n)
    return a, a_t, _fast._csr_arrays(a), _fast._csr_arrays(a_t)


@pytest.mark.parametrize("c", [9, 48, 64, 128])
def test_kernels_match_torch(c):
    """The kernels, run on two row ranges, against torch: widths that take the heap
    buffer (9, 48) and 64-wide register blocks (64, 128); rows with an odd and an even
    number of non-zeros."""
    a, a_t, arr, arr_t = _csr(n=300, e=1500)
    n = 300
    nnz = np.diff(arr[0])
    assert (nnz % 2 == 1).any() and (nnz % 2 == 0).any()
    g = torch.Generator().manual_seed(0)
    p, bias, slope = torch.randn(n, c, generator=g), torch.randn(c, generator=g), torch.rand(c)
    z, h = np.empty((n, c), np.float32), np.empty((n, c), np.float32)
    nomask = (np.zeros(8, np.uint8), 0, 0, np.float32(1), 0, 0)
    parts = ((0, 110), (110, n))
    for r0, r1 in parts:
        _kernels.propagate(
            *arr, p.numpy(), bias.numpy(), slope.numpy(), *nomask, True, True, z, h, r0, r1
        )
    z_ref = torch.addmm(bias, a, p)
    assert np.allclose(z, z_ref.numpy(), atol=1e-5)
    assert np.allclose(h, torch.prelu(z_ref, slope).numpy(), atol=1e-5)
    out = np.empty((n, c), np.float32)
    for r0, r1 in parts:
        _kernels.spmm(*arr_t, p.numpy(), out, r0, r1)
    assert np.allclose(out, (a_t @ p).numpy(), atol=1e-5)
    gh = torch.randn(n, c, generator=g)
    gz, gb, gs = np.empty((n, c), np.float32), np.zeros(c, np.float32), np.zeros(c, np.float32)
    for r0, r1 in parts:  # the column sums add up over the parts
        _kernels.activation_backward(
            gh.numpy(), z, slope.numpy(), *nomask, gz, gb, gs, True, r0, r1
        )
    zt = torch.from_numpy(z).requires_grad_()
    st = slope.clone().requires_grad_()
    ref_z, ref_s = torch.autograd.grad(torch.prelu(zt, st), (zt, st), gh)
    assert np.allclose(gz, ref_z.numpy(), atol=1e-5)
    assert np.allclose(gb, ref_z.sum(0).numpy(), atol=1e-4)
    assert np.allclose(gs, ref_s.numpy(), atol=1e-4)


@pytest.mark.parametrize("c", [64, 128])
def test_dense_kernels_match_numpy(c):
    """matmul on two row ranges (row counts that 4 does not divide) and grad_weight with a
    tail of rows, against numpy; inputs of a width that 64 does not divide."""
    rng = np.random.default_rng(0)
    n, f = 37, 24
    x = rng.standard_normal((n, f)).astype(np.float32)
    b = rng.standard_normal((f, c)).astype(np.float32)
    out = np.full((n, c), np.nan, np.float32)
    for r0, r1 in ((0, 13), (13, n)):
        _kernels.matmul(x, b, out, r0, r1)
    assert np.allclose(out, x @ b, atol=1e-4)
    g = rng.standard_normal((n, c)).astype(np.float32)
    gw = np.full((f, c), np.nan, np.float32)
    _kernels.grad_weight(x, g, gw, 0, n)
    assert np.allclose(gw, x.T @ g, atol=1e-4)
    _kernels.grad_weight(x, g, gw, 5, 30)  # written, not added: rows 5..29 alone
    assert np.allclose(gw, x[5:30].T @ g[5:30], atol=1e-4)


@pytest.mark.parametrize("p", [0.5, 0.25, 0.125, 0.3, 0.9, 1 / 256])
@pytest.mark.parametrize(
    ("n", "c", "k"), [(37, 13, 1), (64, 64, 1), (5, 3, 1), (37, 5, 3), (37, 128, 3)]
)
def test_kernel_dropout_decodes_the_same_masks(p, n, c, k):
    """propagate's and activation_backward's in-kernel decoding keep exactly the entries
    SeededDropout keeps, for every lane width: one mask per model, or (k > 1) model j's
    column block of one [N, k C] mask (rows that straddle two bit fields included), in
    the heap-buffer rows (13, 5, 3) and the 64-wide register blocks (64, 128); each call
    on two row ranges, the second starting mid-mask."""
    mask, scale = _keep_masks(
        n, k * c, p, [torch.Generator().manual_seed(7)], 1, torch.float32, "cpu"
    )
    buf, bits, drop, scale2 = _random_words(
        n, k * c, p, [torch.Generator().manual_seed(7)], 1, "cpu"
    )
    if bits == 16:
        drop -= 1 << 15
    assert scale2 == scale
    # a graph without edges: z = bias = 1, so h = keep * scale
    indptr, indices = np.zeros(n + 1, np.int64), np.zeros(0, np.int64)
    values = np.zeros(0, np.float32)
    ones = np.ones(c, np.float32)
    raw = buf[0].numpy().view(np.uint8)
    parts = ((0, n // 3), (n // 3, n))
    for j in range(k):
        z, h = np.empty((n, c), np.float32), np.empty((n, c), np.float32)
        for r0, r1 in parts:
            _kernels.propagate(indptr, indices, values, np.zeros((1, c), np.float32), ones,
                               ones, raw, bits, drop, np.float32(scale), k * c, j * c, True,
                               True, z, h, r0, r1)  # fmt: skip
        expected = (mask[0][:, j * c : (j + 1) * c] * scale).numpy()
        assert np.array_equal(h, expected)
        # activation_backward decodes the same entries: with z > 0, g_z = g_h * keep * scale
        g_z, g_b = np.empty((n, c), np.float32), np.zeros(c, np.float32)
        for r0, r1 in parts:
            _kernels.activation_backward(np.ones((n, c), np.float32), z, ones, raw, bits,
                                         drop, np.float32(scale), k * c, j * c, g_z, g_b,
                                         np.zeros(0, np.float32), False, r0, r1)  # fmt: skip
        assert np.array_equal(g_z, expected)
        assert np.allclose(g_b, expected.sum(0))


@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("out_channels", [3, None])
def test_fast_path_shapes_and_strided_input(num_layers, out_channels, monkeypatch):
    """Without out_channels every layer has an activation (the output is the last one's);
    one layer; a non-contiguous feature matrix."""
    x, ei = _graph(f=24)
    x = x[:, ::2]
    assert not x.is_contiguous()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        models = [LeakyGNN(12, 8, num_layers, out_channels, act=a, act_kwargs=k) for a, k in FIXED]
    stack = StackedGNN.from_models(models)
    monkeypatch.setattr(fast_pkg, "available", lambda: True)
    with torch.no_grad():
        out = stack(x, ei)
        refs = [m(x, ei) for m in models]
    for k, ref in enumerate(refs):
        assert float((out[k] - ref).abs().max()) <= 1e-5 * (1 + float(ref.abs().max()))
    _assert_same(_run(stack, x, ei, True, monkeypatch), _run(stack, x, ei, False, monkeypatch))


def test_clear_cache_frees_the_workspace(monkeypatch):
    monkeypatch.setattr(fast_pkg, "available", lambda: True)
    x, ei = _graph()
    stack = _stack(FIXED)
    stack(x, ei).sum().backward()
    assert "_fast_workspace" in stack.__dict__
    stack.clear_cache()
    assert "_fast_workspace" not in stack.__dict__ and stack._cache is None
    stack(x, ei).sum().backward()  # rebuilt on the next call
