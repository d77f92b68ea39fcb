r"""The fast CPU path of :class:`~gnnleaky.nn.StackedGNN`: whole-network forward and backward.

:class:`StackedGNN` runs its K models through one :class:`torch.autograd.Function`
(:class:`_FastStack`) when the features are float32 on the CPU, need no gradient, and no
hidden features are asked for. Its forward and backward are written out layer by layer,
so a training step records one autograd node instead of about ten per layer, and each
layer costs what its products cost plus little: forward, one oneDNN GEMM and one fused
numba pass (:mod:`gnnleaky.nn._kernels`: sparse product, bias, activation and dropout);
backward, one fused activation-gradient pass, one sparse product and two GEMMs.

Parallelism. The K models are spread over a pool of ``torch.get_num_threads()`` Python
threads, one model at a time per thread with one intra-op thread each: every op of a
model runs on one core from start to end, with no hand-off between cores inside a layer
(a ``[2708, 64]`` layer is too small to split well; see :func:`_each_model`). A single
model runs on one core. Model ``k``'s numbers depend only on model ``k``: its dropout
masks come from its own generator in layer order, exactly as in the autograd path.

Memory. The tensors the backward needs (each activated layer's output, and its
pre-activation where :math:`\phi'` cannot be read off the output: learned or negative
slopes, residuals) live in a workspace reused from step to step (see
:class:`_Workspace`); about ``4 N C`` bytes per layer and model.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gnnleaky.nn import _kernels

__all__ = ["available", "fast_forward"]

_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0


def available() -> bool:
    """Whether the fast path may be used (``GNNLEAKY_FAST=0`` turns it off)."""
    return os.environ.get("GNNLEAKY_FAST", "1") != "0"


@functools.lru_cache(maxsize=1)
def onednn_linear() -> Callable[[Tensor, Tensor], Tensor] | None:
    """``h @ weight.T`` by oneDNN's fp32 GEMM if this torch build has it, else ``None``.

    On this class of CPU (AMD EPYC, AVX-512) oneDNN runs ``[2708, 64] x [64, 64]`` in
    0.10 ms where MKL, which takes its AVX2 path on AMD, needs 0.21 ms."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        op = torch.ops.mkldnn._linear_pointwise
        x = torch.ones(3, 2)
        if not torch.equal(op(x, torch.ones(4, 2), None, "none", [], ""), torch.full((3, 4), 2.0)):
            return None
    except (AttributeError, RuntimeError):
        return None
    return lambda h, weight: op(h, weight, None, "none", [], "")


def _linear() -> Callable[[Tensor, Tensor], Tensor]:
    """:func:`onednn_linear`, or ``torch.nn.functional.linear`` without oneDNN."""
    return onednn_linear() or torch.nn.functional.linear


def _pool(size: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is None or _POOL_SIZE != size:
            if _POOL is not None:
                _POOL.shutdown(wait=True)
            _POOL = ThreadPoolExecutor(max_workers=size, thread_name_prefix="gnnleaky")
            _POOL_SIZE = size
        return _POOL


class _SingleThreaded:
    """One intra-op thread in this (worker) thread while the block runs."""

    def __enter__(self) -> None:
        self.prev = torch.get_num_threads()
        if self.prev != 1:
            torch.set_num_threads(1)

    def __exit__(self, *exc: Any) -> None:
        if self.prev != 1:
            torch.set_num_threads(self.prev)


class _Graph:
    """The operators of one graph as numpy views (built once, cached by StackedGNN)."""

    def __init__(self, ops: dict[str, Any], x: Tensor) -> None:
        self.a = _csr_arrays(ops["a"])
        self.a_t = _csr_arrays(ops["a_t"])
        self.feats = None if ops["feats"] is None else _csr_arrays(ops["feats"])
        self.feats_t = None if ops["feats_t"] is None else _csr_arrays(ops["feats_t"])
        self.x = x
        self.x_t = None if ops["feats"] is not None else x.t()
        self.num_nodes = x.size(0)


def _csr_arrays(a: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        a.crow_indices().numpy(),
        a.col_indices().numpy(),
        a.values().detach().contiguous().numpy(),
    )


def graph(ops: dict[str, Any], x: Tensor) -> _Graph:
    """The numpy views of ``ops`` (kept in the same cache dict)."""
    g = ops.get("fast")
    if g is None:
        g = ops["fast"] = _Graph(ops, x)
    return g


class _Spec:
    """What the forward needs to know about the stack, besides the tensors."""

    def __init__(self, module: Any, g: _Graph, need_grad: bool, slopes_grad: bool) -> None:
        self.k = module.num_models
        self.widths = list(module.widths)
        self.num_layers = module.num_layers
        self.num_acts = module.num_acts
        self.residual = module.residual
        drop = module.dropout
        self.p = drop.p if drop.training else 0.0
        self.generators = drop.generators
        self.graph = g
        self.need_grad = need_grad
        # z is kept where phi' cannot be read off h: residuals, learned slopes (negative
        # fixed slopes are decided per layer in _forward_model)
        self.keep_z = bool(module.residual) or (need_grad and slopes_grad)
        self.threads = max(1, torch.get_num_threads())
        self.workspace = _Workspace.of(module, g.num_nodes)


# random bytes, bits, drop, scale, row stride, column offset (see _kernels._keep_row)
_Mask = tuple[np.ndarray, int, int, np.float32, int, int]
_NO_MASK: _Mask = (_kernels._NO_BYTES, 0, 0, np.float32(1.0), 0, 0)
_NO_SLOPE_GRAD = np.zeros(0, dtype=np.float32)  # g_slope when slopes need no gradient


def _masks(spec: _Spec) -> list[list[_Mask]] | None:
    """Masks drawn up front when the models have no generators of their own: from torch's
    default generator, one ``[N, K C]`` mask per layer in the autograd path's order, whose
    column block ``k`` is model ``k``'s."""
    if spec.p == 0.0 or spec.generators is not None:
        return None
    from gnnleaky.nn.stacked import _random_words

    n, k = spec.graph.num_nodes, spec.k
    per_model: list[list[_Mask]] = [[] for _ in range(k)]
    for layer in range(spec.num_acts):
        c = spec.widths[layer + 1]
        buf, bits, drop, scale = _random_words(n, k * c, spec.p, None, 1, "cpu")
        drop -= (1 << 15) if bits == 16 else 0
        raw = buf[0].numpy().view(np.uint8)
        for j in range(k):
            per_model[j].append((raw, bits, drop, np.float32(scale), k * c, j * c))
    return per_model


def _model_masks(spec: _Spec, k: int, drawn: Any) -> list[_Mask]:
    """Model ``k``'s masks for every activated layer. With its own generator, the words of
    all layers are drawn in one call: torch's CPU ``random_`` consumes the generator one
    word after the other, so this is the stream of one draw per layer (tested)."""
    if spec.p == 0.0:
        return [_NO_MASK] * spec.num_acts
    if drawn is not None:
        return drawn[k]
    from gnnleaky.nn.stacked import _lanes

    widths = spec.widths[1 : spec.num_acts + 1]
    lanes = [_lanes(spec.graph.num_nodes, c, spec.p) for c in widths]
    buf = torch.empty(sum(words for *_, words in lanes), dtype=torch.int64)
    buf.random_(-(2**63), 2**63 - 1, generator=spec.generators[k])
    raw = buf.numpy().view(np.uint8)
    out, start = [], 0
    for c, (bits, drop, scale, words) in zip(widths, lanes):
        drop -= (1 << 15) if bits == 16 else 0  # 16-bit lanes are signed
        out.append((raw[8 * start : 8 * (start + words)], bits, drop, np.float32(scale), c, 0))
        start += words
    return out


def _numba_gemm(width: int) -> bool:
    """Whether a dense product whose output is ``width`` wide runs as numba's
    :func:`_kernels.matmul` / :func:`_kernels.grad_weight` (they take widths that 64
    divides; on Cora 0.085 and 0.09 ms where oneDNN takes 0.10 and 0.16) or as oneDNN."""
    return width % 64 == 0


def _views(t: Tensor) -> tuple[list[Tensor], list[np.ndarray]]:
    """``[t[k] for k]`` as torch and as numpy views."""
    return list(t.unbind(0)), list(t.numpy())


class _Token:
    """Held by the autograd graph of a training forward while it uses a workspace."""


class _Workspace:
    """Activation buffers of one stack, reused from call to call.

    Writing freshly allocated memory costs its page faults: in a 64-layer chain on Cora the
    GEMM and the fused kernel take 0.34 and 0.37 ms per layer on new buffers against 0.11
    and 0.15 ms on reused ones. So the tensors that the backward needs (``h``, and ``z``
    where ``phi'`` cannot be read off ``h``: one ``[K, N, C]`` tensor each per activated
    layer), the evaluation's ping-pong buffers and each model's ``H W`` live here. A
    training forward claims ``z`` and ``h`` until its autograd graph is freed (by the
    backward or as garbage); a second training forward meanwhile gets fresh buffers.
    """

    def __init__(self, k: int, n: int, widths: Sequence[int], num_acts: int) -> None:
        self.key = (k, n, tuple(widths), num_acts)
        self.n = n
        self.h = [torch.empty(k, n, widths[i + 1]) for i in range(num_acts)]
        # model k's views, made once (indexing a tensor costs about 1 us a call)
        self.h_views = [_views(t) for t in self.h]
        self._z: list[Tensor | None] = [None] * num_acts
        self._z_views: list[Any] = [None] * num_acts
        width = max(widths[1 : num_acts + 1], default=0)
        self.eval = torch.empty(k, 2, n * width)
        self._eval_views: dict[tuple[int, int, int], tuple[Tensor, np.ndarray]] = {}
        # each model's H W, layer after layer, where numba's matmul computes it (layers
        # after the first whose width 64 divides; see _forward_model)
        numba_widths = [c for c in widths[2:] if _numba_gemm(c)]
        self.p = torch.empty(k, n * max(numba_widths, default=0))
        self._p_views: dict[tuple[int, int], np.ndarray] = {}
        self._claim: Any = None

    def need_z(self, layers: Sequence[int]) -> None:
        """Allocate the pre-activation buffers of ``layers`` (once; before the models'
        threads read them through :meth:`z_views`)."""
        for layer in layers:
            if self._z[layer] is None:
                self._z[layer] = torch.empty_like(self.h[layer])
                self._z_views[layer] = _views(self._z[layer])

    def z_views(self, layer: int) -> tuple[list[Tensor], list[np.ndarray]]:
        """Per-model torch and numpy views of the pre-activation buffer of ``layer``
        (allocated by :meth:`need_z`)."""
        return self._z_views[layer]

    def eval_view(self, k: int, parity: int, c: int) -> tuple[Tensor, np.ndarray]:
        """Model ``k``'s ping-pong buffer ``parity`` of the evaluation, as ``[N, c]``."""
        key = (k, parity, c)
        v = self._eval_views.get(key)
        if v is None:
            t = self.eval[k, parity, : self.n * c].view(self.n, c)
            v = self._eval_views[key] = (t, t.numpy())
        return v

    def p_view(self, k: int, c: int) -> np.ndarray:
        """Model ``k``'s buffer for a layer's ``H W``, as ``[N, c]``."""
        v = self._p_views.get((k, c))
        if v is None:
            v = self._p_views[(k, c)] = self.p[k, : self.n * c].view(self.n, c).numpy()
        return v

    def claim(self) -> _Token | None:
        """A token for ``z`` and ``h`` if no live graph holds them, else ``None``."""
        if self._claim is not None and self._claim() is not None:
            return None
        token = _Token()
        self._claim = weakref.ref(token)
        return token

    @staticmethod
    def of(module: Any, n: int) -> _Workspace:
        key = (module.num_models, n, tuple(module.widths), module.num_acts)
        ws = module.__dict__.get("_fast_workspace")
        if ws is None or ws.key != key:
            ws = _Workspace(*key)
            module.__dict__["_fast_workspace"] = ws
        return ws


def _forward_model(
    spec: _Spec,
    k: int,
    weights: Sequence[Tensor],
    biases: Sequence[Tensor],
    slopes: Tensor | None,
    out: Tensor,
    drawn: Any,
    bufs: Any,
) -> list[tuple[Tensor, np.ndarray | None, _Mask]]:
    """Model ``k`` forward into ``out[k]``; returns what its backward needs, per layer:
    (layer input, pre-activation or output as a numpy view, dropout mask)."""
    g, lin = spec.graph, _linear()
    n = g.num_nodes
    indptr, indices, values = g.a
    # per-call views prepared once for all models (see _FastStack.forward)
    w_t, w_np, b_np, s_np = spec.w_t, spec.w_np, spec.b_np, spec.s_np
    negative = spec.negative
    masks = _model_masks(spec, k, drawn)
    saved = []
    h = g.x
    out_k = out[k]
    for layer in range(spec.num_layers):
        c_in, c_out = spec.widths[layer], spec.widths[layer + 1]
        if layer == 0 and g.feats is not None:
            p = np.empty((n, c_out), dtype=np.float32)
            _kernels.spmm(*g.feats, weights[0][k].numpy(), p, 0, n)
        elif layer > 0 and _numba_gemm(c_out):
            p = bufs.p_view(k, c_out)
            _kernels.matmul(h.numpy(), w_np[layer][k], p, 0, n)
        else:
            p = lin(h, w_t[layer][k]).numpy()
        bias = b_np[layer][k]
        last = layer >= spec.num_acts
        if last:  # no activation: z is the output
            h_next = out_k
            z_np = h_np = h_next.numpy()
            mask, slope = _NO_MASK, bias
        else:
            mask, slope = masks[layer], s_np[layer, k]
            if spec.need_grad:
                views = bufs.h_views[layer]
                h_next, h_np = views[0][k], views[1][k]
                # phi'(z) can be read off the output (z > 0 iff h > 0 where kept) unless
                # a slope is negative, slopes are learned or a residual is added to h.
                keep_z = spec.keep_z or negative[layer][k]
                z_np = bufs.z_views(layer)[1][k] if keep_z else h_np
            else:
                h_next, h_np = bufs.eval_view(k, layer % 2, c_out)
                z_np = h_np
        _kernels.propagate(
            indptr, indices, values, p, bias, slope, *mask, not last,
            last or z_np is not h_np, z_np, h_np, 0, n,
        )  # fmt: skip
        del p
        if spec.residual and c_in == c_out:
            h_next += h
        if spec.need_grad:
            # z_np is h_np where phi' is read off the output; None: no activation
            saved.append((h, None if last else z_np, mask))
        h = h_next
    if spec.num_acts == spec.num_layers:  # the last layer has an activation too
        out_k.copy_(h)  # (h stays in the workspace, where the backward reads it)
    return saved


def _backward_model(
    spec: _Spec,
    k: int,
    grad_out: Tensor,
    saved: list,
    weights: Sequence[Tensor],
    slopes: Tensor | None,
    grads_w: list[Tensor],
    grads_b: list[Tensor],
    grad_s: Tensor | None,
) -> None:
    """Model ``k``'s backward. Per layer: ``G_P = A^T G_Z``, ``G_H = G_P W^T``, the layer
    below's ``G_Z`` from ``G_H``, then ``grad W = H^T G_P``. Taking the layer below's
    activation pass before ``grad W`` lets that streaming pass (and not the GEMM) bring
    ``H``, the layer's input, from memory: the activations of a deep model do not fit in
    the caches (on Cora, 64 layers, one thread, with oneDNN's GEMMs: ``grad W`` 0.17 ms
    against 0.22 in the other order, the activation pass 0.057 against 0.049; 3 ms less
    per epoch). Where 64 divides the widths, numba's ``matmul`` and ``grad_weight`` take
    the GEMMs (a kernel that did all three in one pass was 1 ms slower per 64-layer
    epoch: the four rows of ``G_H`` it kept in registers left the activation pass no
    cheaper, and it compiled for 24 s)."""
    g, lin = spec.graph, _linear()
    n = g.num_nodes
    s_np = None if slopes is None else slopes.numpy()
    want = grad_s is not None
    # scratch rows reused layer after layer, as [N, c] views per width: G_Z, G_P, and two
    # for G_H (a residual adds the G_H of the layer above to the next)
    scratch = torch.empty(4, n * max(spec.widths[1:]))
    rows: dict[int, tuple[Tensor, np.ndarray, Tensor, np.ndarray]] = {}

    def row(c: int) -> tuple[Tensor, np.ndarray, Tensor, np.ndarray]:
        r = rows.get(c)
        if r is None:
            g_z_t, g_p_t = (scratch[i, : n * c].view(n, c) for i in (0, 1))
            r = rows[c] = (g_z_t, g_z_t.numpy(), g_p_t, g_p_t.numpy())
        return r

    def grad_z(layer: int, grad: Tensor) -> np.ndarray:
        """``G_Z`` of ``layer`` from its output gradient (bias and slope gradients too)."""
        z, mask = saved[layer][1:]
        if z is None:  # last layer: no activation
            torch.sum(grad, 0, out=grads_b[layer][k])
            return grad.numpy()
        # z: the pre-activation, or the output where phi' can be read off it
        g_z_np = row(spec.widths[layer + 1])[1]
        _kernels.activation_backward(
            grad.numpy(), z, s_np[layer, k], *mask, g_z_np, grads_b[layer][k].numpy(),
            grad_s[layer, k].numpy() if want else _NO_SLOPE_GRAD, want, 0, n,
        )  # fmt: skip
        return g_z_np

    grad = grad_out[k]  # (grad_out is contiguous)
    g_z_np = grad_z(spec.num_layers - 1, grad)
    for layer in range(spec.num_layers - 1, -1, -1):
        h_in = saved[layer][0]
        c_in, c_out = spec.widths[layer], spec.widths[layer + 1]
        _, _, g_p, g_p_np = row(c_out)
        _kernels.spmm(*g.a_t, g_z_np, g_p_np, 0, n)
        if layer > 0:
            if _numba_gemm(c_in):
                g_h = scratch[2 + layer % 2, : n * c_in].view(n, c_in)
                _kernels.matmul(g_p_np, spec.w_tc[layer][k], g_h.numpy(), 0, n)
            else:
                g_h = lin(g_p, weights[layer][k])
            if spec.residual and c_in == c_out:
                g_h += grad
            grad = g_h
            g_z_np = grad_z(layer - 1, grad)  # (into the G_Z row: g_p is not touched)
        if layer == 0 and g.feats is not None:
            g_w = grads_w[layer][k].numpy()
            _kernels.spmm(*g.feats_t, g_p_np, g_w, 0, g_w.shape[0])
        elif layer == 0:
            grads_w[layer][k] = lin(g.x_t, g_p.t())
        elif _numba_gemm(c_out):
            _kernels.grad_weight(h_in.numpy(), g_p_np, grads_w[layer][k].numpy(), 0, n)
        else:
            grads_w[layer][k] = lin(h_in.t(), g_p.t())


def _each_model(spec: _Spec, fn: Callable[[int], Any]) -> list[Any]:
    """``fn(k)`` for every model, each on one core: over a pool of
    ``torch.get_num_threads()`` threads, or here for a single model or thread.

    Every model runs with one intra-op thread. Splitting one model's ops over two cores
    does not pay on this scale: two OpenMP runtimes (torch's and numba's) or torch's
    intra-op GEMMs next to serial kernels leave spinning threads that slow the other
    core down (a 64-layer Cora epoch took 42-71 ms with numba's row-parallel kernels and
    torch's two-thread GEMMs, 81 ms with two-thread GEMMs alone, 60-66 ms on one core)."""
    threads = spec.threads
    if spec.k == 1 or threads == 1:
        with _SingleThreaded():
            return [fn(k) for k in range(spec.k)]

    def task(k: int) -> Any:
        with _SingleThreaded(), torch.no_grad():
            return fn(k)

    return list(_pool(threads).map(task, range(spec.k)))


class _FastStack(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, spec: _Spec, slopes: Tensor, *params: Tensor) -> Tensor:
        layers = spec.num_layers
        weights = [p.detach() for p in params[:layers]]
        biases = [p.detach() for p in params[layers:]]
        slopes_ = slopes.detach() if slopes.numel() else None
        n = spec.graph.num_nodes
        out = torch.empty(spec.k, n, spec.widths[-1])
        drawn = _masks(spec)
        # oneDNN takes h @ w as lin(h, w^T) with w^T a view: as fast as a contiguous copy
        spec.w_t = [list(w.transpose(1, 2).unbind(0)) for w in weights]
        spec.w_np = [w.numpy() for w in weights]
        spec.b_np = [b.numpy() for b in biases]
        spec.s_np = slopes_.numpy() if slopes_ is not None else None
        spec.negative = (slopes_ < 0).any(-1).tolist() if slopes_ is not None else None
        bufs, token = spec.workspace, None
        if spec.need_grad:
            token = bufs.claim()
            if token is None:  # a live graph still holds the workspace: fresh buffers
                bufs = _Workspace(spec.k, n, spec.widths, spec.num_acts)
            negative = spec.negative
            bufs.need_z(
                [
                    layer
                    for layer in range(spec.num_acts)
                    if spec.keep_z or (negative is not None and any(negative[layer]))
                ]
            )
        saved = _each_model(
            spec,
            lambda k: _forward_model(spec, k, weights, biases, slopes_, out, drawn, bufs),
        )
        if spec.need_grad:
            ctx.spec, ctx.saved, ctx.token = spec, saved, token
            ctx.save_for_backward(slopes, *weights)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        spec = ctx.spec
        slopes, *weights = (t.detach() for t in ctx.saved_tensors)
        layers = spec.num_layers
        need = ctx.needs_input_grad
        grads_w = [torch.empty_like(w) for w in weights]
        grads_b = [torch.zeros(spec.k, spec.widths[i + 1]) for i in range(layers)]
        grad_s = torch.zeros_like(slopes) if need[1] and slopes.numel() else None
        grad_out = grad_out.contiguous()
        saved = ctx.saved
        # W^T as contiguous [c_out, c_in] numpy arrays for numba's G_H = G_P W^T
        spec.w_tc = [
            list(w.transpose(1, 2).contiguous().numpy()) if i and _numba_gemm(w.size(1)) else None
            for i, w in enumerate(weights)
        ]
        _each_model(
            spec,
            lambda k: _backward_model(
                spec, k, grad_out, saved[k], weights, slopes, grads_w, grads_b, grad_s
            ),
        )
        ctx.saved = ctx.token = None
        w_out = [gw if need[2 + i] else None for i, gw in enumerate(grads_w)]
        b_out = [gb if need[2 + layers + i] else None for i, gb in enumerate(grads_b)]
        return (None, grad_s, *w_out, *b_out)


def fast_forward(module: Any, x: Tensor, ops: dict[str, Any], slopes: Tensor | None) -> Tensor:
    """All K models of ``module`` (a StackedGNN) on the graph of ``ops``: ``[K, N, out]``."""
    params = [*module.weights, *module.biases]
    if slopes is None:
        slopes = torch.empty(0)
    need_grad = torch.is_grad_enabled() and (
        slopes.requires_grad or any(p.requires_grad for p in params)
    )
    spec = _Spec(module, graph(ops, x), need_grad, slopes.requires_grad)
    return _FastStack.apply(spec, slopes, *params)
