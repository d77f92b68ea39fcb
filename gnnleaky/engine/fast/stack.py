r"""The fast CPU path of :class:`~gnnleaky.nn.StackedGNN`: whole-network forward and backward.

:class:`StackedGNN` runs its K models through one :class:`torch.autograd.Function`
(:class:`_FastStack`) when the features are float32 on the CPU, need no gradient, and no
hidden features are asked for. Its forward and backward are written out layer by layer,
so a training step records one autograd node instead of about ten per layer, and each
layer costs what its products cost plus little: forward, one GEMM and one fused numba
pass (:mod:`gnnleaky.nn._kernels`: sparse product, bias, activation and dropout);
backward, one fused activation-gradient pass, one sparse product and two GEMMs. Where
the first ``u`` activated layers share a width that 64 divides (a GCN of hidden width
64), layers ``1 .. u - 1`` run as one kernel call per pass
(:func:`_kernels.forward_layers`, :func:`_kernels.backward_layers`): no Python between
them.

Parallelism. With at least as many models as threads (``torch.get_num_threads()``, or
those of :func:`model_threads`), the K models are spread over a pool of Python threads,
one model at a time per thread: every op of a model runs on one core from start to end.
The models that do not fill a round of threads (all of them with fewer models than
threads) have their rows split over all threads (:class:`_Share`), which meet
at a spinning barrier before each sparse product (on Cora, a 64-layer model on two
cores: 5.8 ms per evaluation forward against 9.2 on one). Every torch op inside runs on
one intra-op thread. Model ``k``'s numbers depend only on model ``k``: its dropout masks
come from its own generator in layer order, exactly as in the autograd path.

Memory. The tensors the backward needs (each activated layer's output, and its
pre-activation where :math:`\phi'` cannot be read off the output: learned or negative
slopes, residuals) live in a workspace reused from step to step (see
:class:`_Workspace`); about ``4 N C`` bytes per layer and model.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gnnleaky.engine.dropout import lanes, random_words
from gnnleaky.engine.fast import kernels as _kernels

__all__ = ["available", "fast_forward", "model_threads"]

_LOCK = threading.Lock()
# rows per thread below which a model is not split over threads (see _Share)
_SPLIT_MIN_ROWS = 256
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
    """The models' threads (each runs torch on one intra-op thread: see
    :func:`_one_thread_here`)."""
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


_LOCAL = threading.local()  # .threads: the fast path's threads inside model_threads()


@contextlib.contextmanager
def model_threads(threads: int | None = None) -> Iterator[None]:
    """Inside the block, torch's own ops run on one intra-op thread while the fast path
    spreads its models (or one model's rows) over ``threads`` threads (default: torch's
    thread count on entry).

    A torch op that runs on several threads leaves torch's OpenMP threads spinning for
    some milliseconds after it, on the cores the models' threads need: a training loop's
    optimizer step and loss on two threads slowed the next forward of a 64-layer Cora model
    split over two cores by a third. Small ops (a training loop's loss, Adam on a GNN's
    weights) lose little on one thread.

    Example::

        stack = StackedGNN.from_models(models)
        with model_threads():  # (torch.get_num_threads() threads for the models)
            for epoch in range(200):
                opt.zero_grad()
                loss_fn(stack(x, edge_index)).backward()
                opt.step()
    """
    n = torch.get_num_threads() if threads is None else threads
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    prev = getattr(_LOCAL, "threads", None)
    _LOCAL.threads = n
    try:
        with _SingleThreaded():
            yield
    finally:
        _LOCAL.threads = prev


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
        self.threads = getattr(_LOCAL, "threads", None) or max(1, torch.get_num_threads())
        # models that do not fill a round of threads (all of them with fewer models than
        # threads: k >= split_from) have their rows split over all threads
        n = g.num_nodes
        # (over at most as many threads as cores: a barrier waits for every thread)
        parties = min(self.threads, _cores())
        split = parties > 1 and n >= parties * _SPLIT_MIN_ROWS
        self.split_from = self.k - self.k % self.threads if split else self.k
        self.parties = parties if self.split_from < self.k else 1
        # layers 1 .. u - 1 run as one kernel call (see _kernels.forward_layers) where the
        # first u activated layers share a width that 64 divides, no activated layer is
        # wider, and the masks come from the models' generators (or there are none)
        u = _uniform(self.widths, self.num_acts)
        c = self.widths[1]
        self.u = (
            u
            if (
                u >= 2
                and _numba_gemm(c)
                and max(self.widths[1 : self.num_acts + 1]) == c
                and (self.p == 0.0 or self.generators is not None)
            )
            else 0
        )
        self.workspace = _Workspace.of(module, n)


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
    n, k = spec.graph.num_nodes, spec.k
    per_model: list[list[_Mask]] = [[] for _ in range(k)]
    for layer in range(spec.num_acts):
        c = spec.widths[layer + 1]
        buf, bits, drop, scale = random_words(n, k * c, spec.p, None, 1, "cpu")
        drop -= (1 << 15) if bits == 16 else 0
        raw = buf[0].numpy().view(np.uint8)
        for j in range(k):
            per_model[j].append((raw, bits, drop, np.float32(scale), k * c, j * c))
    return per_model


class _ModelMasks(list):
    """Model ``k``'s masks, one per activated layer (a list of :data:`_Mask`); with its
    own generator also the bytes of all layers (``raw``) and the offset of each layer's
    bytes in them (``starts``), for :func:`_kernels.forward_layers`."""

    raw: np.ndarray = _kernels._NO_BYTES
    starts: np.ndarray = np.zeros(0, dtype=np.int64)


def _model_masks(spec: _Spec, k: int, drawn: Any) -> _ModelMasks:
    """Model ``k``'s masks for every activated layer. With its own generator, the words of
    all layers are drawn in one call: torch's CPU ``random_`` consumes the generator one
    word after the other, so this is the stream of one draw per layer (tested)."""
    if spec.p == 0.0:
        out = _ModelMasks([_NO_MASK] * spec.num_acts)
        out.starts = np.zeros(spec.num_acts, dtype=np.int64)
        return out
    if drawn is not None:
        return _ModelMasks(drawn[k])
    widths = spec.widths[1 : spec.num_acts + 1]
    layer_lanes = [lanes(spec.graph.num_nodes, c, spec.p) for c in widths]
    buf = torch.empty(sum(words for *_, words in layer_lanes), dtype=torch.int64)
    buf.random_(-(2**63), 2**63 - 1, generator=spec.generators[k])
    raw = buf.numpy().view(np.uint8)
    out, start = _ModelMasks(), 0
    out.raw, out.starts = raw, np.zeros(len(widths), dtype=np.int64)
    for layer, (c, (bits, drop, scale, words)) in enumerate(zip(widths, layer_lanes)):
        drop -= (1 << 15) if bits == 16 else 0  # 16-bit lanes are signed
        out.append((raw[8 * start : 8 * (start + words)], bits, drop, np.float32(scale), c, 0))
        out.starts[layer] = 8 * start
        start += words
    return out


def _uniform(widths: Sequence[int], num_acts: int) -> int:
    """How many leading activated layers have the first layer's output width."""
    u = 0
    while u < num_acts and widths[u + 1] == widths[1]:
        u += 1
    return u


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
        # the first u layers (one width) as one block [K, u, N, C] (for the kernels of
        # _kernels.forward_layers), the others apart
        u = self.u = _uniform(widths, num_acts)
        self.h_block = torch.empty(k, u, n, widths[1] if u else 0)
        self.h = [self.h_block[:, i] for i in range(u)]
        self.h += [torch.empty(k, n, widths[i + 1]) for i in range(u, num_acts)]
        # model k's views, made once (indexing a tensor costs about 1 us a call)
        self.h_views = [_views(t) for t in self.h]
        self._z: list[Tensor | None] = [None] * num_acts
        self.z_block: Tensor | None = None  # (as h_block, once a layer below u needs z)
        self._z_views: list[Any] = [None] * num_acts
        width = max(widths[1 : num_acts + 1], default=0)
        self.eval = torch.empty(k, 2, n * width)
        self._eval_views: dict[tuple[int, int, int], tuple[Tensor, np.ndarray]] = {}
        # each model's products P = H W, two buffers used in turn by the layers (a model
        # split over threads reads all rows of one layer's P while the next layer's rows
        # are written; see _forward_model)
        self.p = torch.empty(k, 2, n * max(widths[1:], default=0))
        self._p_views: dict[tuple[int, int, int], tuple[Tensor, np.ndarray]] = {}
        self._claim: Any = None

    def need_z(self, layers: Sequence[int]) -> None:
        """Allocate the pre-activation buffers of ``layers`` (once; before the models'
        threads read them through :meth:`z_views`)."""
        for layer in layers:
            if layer < self.u and self.z_block is None:
                self.z_block = torch.empty_like(self.h_block)
                for i in range(self.u):
                    self._z[i] = self.z_block[:, i]
                    self._z_views[i] = _views(self._z[i])
            if self._z[layer] is None:
                self._z[layer] = torch.empty_like(self.h[layer])
                self._z_views[layer] = _views(self._z[layer])

    def z_views(self, layer: int) -> tuple[list[Tensor], list[np.ndarray]]:
        """Per-model torch and numpy views of the pre-activation buffer of ``layer``
        (allocated by :meth:`need_z`)."""
        return self._z_views[layer]

    def _pair_view(
        self, pair: Tensor, views: dict, k: int, parity: int, c: int
    ) -> tuple[Tensor, np.ndarray]:
        """Model ``k``'s buffer ``parity`` of ``pair`` (``[K, 2, N * width]``) as an
        ``[N, c]`` tensor and numpy view, made once per key."""
        key = (k, parity, c)
        v = views.get(key)
        if v is None:
            t = pair[k, parity, : self.n * c].view(self.n, c)
            v = views[key] = (t, t.numpy())
        return v

    def eval_view(self, k: int, parity: int, c: int) -> tuple[Tensor, np.ndarray]:
        """Model ``k``'s ping-pong buffer ``parity`` of the evaluation, as ``[N, c]``."""
        return self._pair_view(self.eval, self._eval_views, k, parity, c)

    def p_view(self, k: int, parity: int, c: int) -> tuple[Tensor, np.ndarray]:
        """Model ``k``'s buffer ``parity`` for a layer's ``H W``, as ``[N, c]``."""
        return self._pair_view(self.p, self._p_views, k, parity, c)

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


def _bounds(n: int, index: int, parties: int, align: int) -> tuple[int, int]:
    """Part ``index`` of ``range(n)`` cut in ``parties`` near-equal parts at multiples of
    ``align``."""

    def cut(i: int) -> int:
        return n if i >= parties else n * i // parties // align * align

    return cut(index), cut(index + 1)


class _Share:
    """Thread ``index``'s part of one model computed by ``parties`` threads: rows
    ``r0:r1`` of every node-wise product, and rows ``f0:f1`` of the first layer's weight
    gradient (one per input feature).

    A layer's products are row-wise (``H W`` and the activation take row ``i`` from row
    ``i``) except the sparse ones (``A P`` reads all rows of ``P``), so the threads meet
    at a :func:`_kernels.barrier` (:meth:`wait`) once per layer and pass: before each
    sparse product, when every thread has written its rows of the sparse product's input.
    Buffers that a thread writes while the others may still read the previous layer's
    come in pairs used in turn (``P`` in the forward, ``G_Z`` and ``G_H`` in the backward).
    On Cora a barrier costs about 1 us, against 0.1 ms of products per layer."""

    __slots__ = ("f0", "f1", "index", "parties", "r0", "r1", "round", "state")

    def __init__(self, n: int, f: int, index: int, parties: int, state: np.ndarray) -> None:
        self.index, self.parties, self.state, self.round = index, parties, state, 0
        self.r0, self.r1 = _bounds(n, index, parties, 4)  # (numba's GEMMs: 4 rows a step)
        self.f0, self.f1 = _bounds(f, index, parties, 1)

    @property
    def whole(self) -> bool:
        return self.parties == 1

    def rows(self, t: Tensor) -> Tensor:
        """This thread's rows of ``t``."""
        return t if self.parties == 1 else t[self.r0 : self.r1]

    def advance(self, next_round: int) -> None:
        """Take the barrier round a kernel returned (-1: another thread failed)."""
        if next_round < 0:
            raise RuntimeError("another thread computing the same model failed")
        self.round = next_round

    def wait(self) -> None:
        """Wait for the other threads (nothing for a model that one thread computes)."""
        if self.parties > 1:
            self._check(_kernels.barrier(self.state, self.parties, self.round))

    def _check(self, ok: bool) -> None:
        self.advance(self.round + 1 if ok else -1)

    def then(self, kernel: Callable[..., Any], after: Callable[..., bool], *args: Any) -> None:
        """``kernel(*args)`` once the other threads have reached this point: ``after`` is
        the kernel behind a :func:`_kernels.barrier`, in one call (threads that left a
        barrier in Python would all ask for the GIL at once; in a virtual machine the one
        that sleeps on it wakes tens of microseconds later)."""
        if self.parties == 1:
            kernel(*args)
        else:
            self._check(after(self.state, self.parties, self.round, *args))


class _Saved(list):
    """What a model's backward needs, per layer: (layer input, pre-activation or output as
    a numpy view, dropout mask); and for :func:`_kernels.backward_layers` the workspace,
    the masks and which layers kept ``z`` (set by :func:`_forward_stretch`)."""

    bufs: Any = None
    masks: Any = None
    keep: Any = None


def _forward_stretch(
    spec: _Spec, k: int, masks: _ModelMasks, bufs: Any, share: _Share, saved: _Saved
) -> Tensor:
    """Layers ``1 .. u - 1`` of model ``k`` by one :func:`_kernels.forward_layers` call
    (``share``'s rows); appends their entries to ``saved``; the output of layer ``u - 1``."""
    g, u, c = spec.graph, spec.u, spec.widths[1]
    n = g.num_nodes
    if spec.need_grad:
        negative = spec.negative
        keep = np.array([spec.keep_z or negative[i][k] for i in range(u)])
        h = bufs.h_block[k].numpy()
        z = h if bufs.z_block is None else bufs.z_block[k].numpy()
    else:  # the evaluation's two buffers (as wide as layer 1: see _Spec)
        keep = np.zeros(u, dtype=np.bool_)
        h = z = bufs.eval[k].view(2, n, c).numpy()
    raw, bits, drop, scale = masks[1][:4]
    next_round = _kernels.forward_layers(
        *g.a, h, z, keep, bufs.p[k].numpy(), spec.w_stretch, spec.b_stretch, spec.s_np, k,
        masks.raw, masks.starts, raw.size, bits, drop, scale, spec.residual, 1, u,
        share.state, share.parties, share.round, share.r0, share.r1,
    )  # fmt: skip
    share.advance(next_round)
    if not spec.need_grad:
        return bufs.eval_view(k, (u - 1) % 2, c)[0]
    h_views = bufs.h_views
    saved.bufs, saved.masks, saved.keep = bufs, masks, keep
    for layer in range(1, u):
        z_np = bufs.z_views(layer)[1][k] if keep[layer] else h_views[layer][1][k]
        saved.append((h_views[layer - 1][0][k], z_np, masks[layer]))
    return h_views[u - 1][0][k]


def _forward_model(
    spec: _Spec,
    k: int,
    weights: Sequence[Tensor],
    biases: Sequence[Tensor],
    slopes: Tensor | None,
    out: Tensor,
    masks: _ModelMasks,
    bufs: Any,
    share: _Share,
) -> list[tuple[Tensor, np.ndarray | None, _Mask]]:
    """Model ``k`` forward into ``out[k]`` (``share``'s rows); returns what its backward
    needs, per layer: (layer input, pre-activation or output as a numpy view, dropout
    mask)."""
    g, lin = spec.graph, _linear()
    indptr, indices, values = g.a
    r0, r1 = share.r0, share.r1
    # per-call views prepared once for all models (see _FastStack.forward)
    w_t, w_np, b_np, s_np = spec.w_t, spec.w_np, spec.b_np, spec.s_np
    negative = spec.negative
    saved = _Saved()
    h = g.x
    out_k = out[k]
    for layer in range(spec.num_layers):
        if 0 < layer < spec.u:  # layers 1 .. u - 1 in one kernel call
            if layer == 1:
                h = _forward_stretch(spec, k, masks, bufs, share, saved)
            continue
        c_in, c_out = spec.widths[layer], spec.widths[layer + 1]
        p_t, p = bufs.p_view(k, layer % 2, c_out)
        if layer == 0 and g.feats is not None:
            _kernels.spmm(*g.feats, weights[0][k].numpy(), p, r0, r1)
        elif layer > 0 and _numba_gemm(c_out):
            _kernels.matmul(h.numpy(), w_np[layer][k], p, r0, r1)
        elif share.whole:
            p = lin(h, w_t[layer][k]).numpy()
        else:
            p_t[r0:r1] = lin(h[r0:r1], w_t[layer][k])
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
        share.then(  # once every row of P is written
            _kernels.propagate, _kernels.propagate_after,
            indptr, indices, values, p, bias, slope, *mask, not last,
            last or z_np is not h_np, z_np, h_np, r0, r1,
        )  # fmt: skip
        del p
        if spec.residual and c_in == c_out:
            share.rows(h_next).add_(share.rows(h))
        if spec.need_grad:
            # z_np is h_np where phi' is read off the output; None: no activation
            saved.append((h, None if last else z_np, mask))
        h = h_next
    if spec.num_acts == spec.num_layers:  # the last layer has an activation too
        share.rows(out_k).copy_(share.rows(h))  # (h stays in the workspace for the backward)
    return saved


class _Grads:
    """Weight, bias and slope gradients of all models: ``w[l]`` and ``b[l]`` one
    ``[K, ...]`` tensor per layer, those of the layers below ``u`` views of one block
    (for :func:`_kernels.backward_layers`); ``s`` ``[A, K, C]`` or ``None``."""

    def __init__(self, spec: _Spec, weights: Sequence[Tensor], slopes: Tensor | None) -> None:
        u, k, c = spec.u, spec.k, spec.widths[1]
        self.w_block = torch.empty(max(u - 1, 0), k, c, c)
        self.w = [torch.empty_like(weights[0])]
        self.w += [self.w_block[i - 1] if i < u else torch.empty_like(w)
                   for i, w in enumerate(weights) if i]  # fmt: skip
        self.b_block = torch.zeros(u, k, c)
        self.b = [self.b_block[i] if i < u else torch.zeros(k, spec.widths[i + 1])
                  for i in range(spec.num_layers)]  # fmt: skip
        self.s = None if slopes is None else torch.zeros_like(slopes)
        # (a slope gradient nobody wants: an empty row per layer and model)
        self.s_np = (np.zeros((spec.num_acts, k, 0), np.float32) if self.s is None
                     else self.s.numpy())  # fmt: skip

    def add(self, other: _Grads, start: int) -> None:
        """Add another share's sums for models ``start ..`` (not the first layer's
        weights, written in place)."""
        torch._foreach_add_([w[start:] for w in self.w[1:]], [w[start:] for w in other.w[1:]])
        torch._foreach_add_([b[start:] for b in self.b], [b[start:] for b in other.b])
        if self.s is not None:
            self.s[:, start:] += other.s[:, start:]


def _backward_stretch(
    spec: _Spec,
    k: int,
    saved: _Saved,
    s_np: np.ndarray,
    grads: _Grads,
    share: _Share,
    scratch: Tensor,
    grad: Tensor,
) -> None:
    """Layers ``u - 1 .. 1`` of model ``k``'s backward by one
    :func:`_kernels.backward_layers` call (``share``'s rows), from the ``G_Z`` of layer
    ``u - 1`` in its scratch row and its output gradient ``grad``."""
    bufs, masks = saved.bufs, saved.masks
    h = bufs.h_block[k].numpy()
    z = h if bufs.z_block is None else bufs.z_block[k].numpy()
    raw, bits, drop, scale = masks[1][:4]
    next_round = _kernels.backward_layers(
        *spec.graph.a_t, h, z, saved.keep, spec.wt_stretch, s_np, k, masks.raw, masks.starts,
        raw.size, bits, drop, scale, spec.residual, scratch.numpy(), grad.numpy(),
        grads.w_block.numpy(), grads.b_block.numpy(), grads.s_np, grads.s is not None, 1,
        spec.u, share.state, share.parties, share.round, share.r0, share.r1,
    )  # fmt: skip
    share.advance(next_round)


def _backward_model(
    spec: _Spec,
    k: int,
    grad_out: Tensor,
    saved: list,
    weights: Sequence[Tensor],
    slopes: Tensor | None,
    grads: _Grads,
    share: _Share,
    scratch: Tensor | None,
) -> None:
    """Model ``k``'s backward (``share``'s rows). Per layer: ``G_P = A^T G_Z``,
    ``G_H = G_P W^T``, the layer below's ``G_Z`` from ``G_H``, then ``grad W = H^T G_P``.
    Taking the layer below's activation pass before ``grad W`` lets that streaming pass
    (and not the GEMM) bring ``H``, the layer's input, from memory: the activations of a
    deep model do not fit in the caches (on Cora, 64 layers, one thread, with oneDNN's
    GEMMs: ``grad W`` 0.17 ms against 0.22 in the other order, the activation pass 0.057
    against 0.049; 3 ms less per epoch). Where 64 divides the widths, numba's ``matmul``
    and ``grad_weight`` take the GEMMs (a kernel that did all three in one pass was 1 ms
    slower per 64-layer epoch: the four rows of ``G_H`` it kept in registers left the
    activation pass no cheaper, and it compiled for 24 s).

    The bias and slope gradients are added to ``grads``, the weight gradients written
    there: a share's sums over its own rows, which the caller adds up, except for the
    first layer's weights, whose rows the shares split (``f0:f1``) and write in place."""
    g, lin = spec.graph, _linear()
    n = g.num_nodes
    r0, r1 = share.r0, share.r1
    rows = share.rows
    grads_w, grads_b, grad_s = grads.w, grads.b, grads.s
    s_np = None if slopes is None else slopes.numpy()
    want = grad_s is not None
    # scratch rows reused layer after layer, as [N, c] views per width: G_Z (two, used in
    # turn), G_P, and G_H (two: a residual adds the G_H of the layer above to the next)
    if scratch is None:
        scratch = torch.empty(5, n * max(spec.widths[1:]))
    views: dict[tuple[int, int], tuple[Tensor, np.ndarray]] = {}

    def slot(i: int, c: int) -> tuple[Tensor, np.ndarray]:
        v = views.get((i, c))
        if v is None:
            t = scratch[i, : n * c].view(n, c)
            v = views[(i, c)] = (t, t.numpy())
        return v

    def grad_z(layer: int, grad: Tensor) -> np.ndarray:
        """``G_Z`` of ``layer`` from its output gradient (bias and slope gradients too)."""
        z, mask = saved[layer][1:]
        if z is None:  # last layer: no activation
            torch.sum(rows(grad), 0, out=grads_b[layer][k])
            return grad.numpy()
        # z: the pre-activation, or the output where phi' can be read off it
        g_z_np = slot(layer % 2, spec.widths[layer + 1])[1]
        _kernels.activation_backward(
            grad.numpy(), z, s_np[layer, k], *mask, g_z_np, grads_b[layer][k].numpy(),
            grad_s[layer, k].numpy() if want else _NO_SLOPE_GRAD, want, r0, r1,
        )  # fmt: skip
        return g_z_np

    grad = grad_out[k]  # (grad_out is contiguous)
    g_z_np = grad_z(spec.num_layers - 1, grad)
    u = spec.u
    for layer in range(spec.num_layers - 1, -1, -1):
        if 0 < layer < u:  # layers u - 1 .. 1 in one kernel call
            if layer == u - 1:
                _backward_stretch(spec, k, saved, s_np, grads, share, scratch, grad)
                # where the kernel leaves layer 1's G_H and layer 0's G_Z
                grad, g_z_np = slot(3 + 1 % 2, spec.widths[1])[0], slot(0, spec.widths[1])[1]
            continue
        h_in = saved[layer][0]
        c_in, c_out = spec.widths[layer], spec.widths[layer + 1]
        g_p, g_p_np = slot(2, c_out)
        # once every row of G_Z is written
        share.then(_kernels.spmm, _kernels.spmm_after, *g.a_t, g_z_np, g_p_np, r0, r1)
        if layer > 0:
            g_h, g_h_np = slot(3 + layer % 2, c_in)
            if _numba_gemm(c_in):
                _kernels.matmul(g_p_np, spec.w_tc[layer][k], g_h_np, r0, r1)
            elif share.whole:
                g_h = lin(g_p, weights[layer][k])
            else:
                g_h[r0:r1] = lin(g_p[r0:r1], weights[layer][k])
            if spec.residual and c_in == c_out:
                rows(g_h).add_(rows(grad))
            grad = g_h
            g_z_np = grad_z(layer - 1, grad)  # (into a G_Z row: g_p is not touched)
        if layer == 0:
            f0, f1 = share.f0, share.f1
            if g.feats is not None:  # once every row of G_P is written
                g_w = grads_w[0][k].numpy()
                share.then(_kernels.spmm, _kernels.spmm_after, *g.feats_t, g_p_np, g_w, f0, f1)
            elif share.whole:
                grads_w[0][k] = lin(g.x_t, g_p.t())
            else:
                share.wait()  # every row of G_P written
                grads_w[0][k][f0:f1] = lin(g.x_t[f0:f1], g_p.t())
        elif _numba_gemm(c_out):
            _kernels.grad_weight(h_in.numpy(), g_p_np, grads_w[layer][k].numpy(), r0, r1)
        else:
            grads_w[layer][k] = lin(rows(h_in).t(), rows(g_p).t())


def _each_model(spec: _Spec, fn: Callable[[int, _Share], Any]) -> list[Any]:
    """``fn(k, share)`` for every model ``k``: one model per thread over a pool of
    ``spec.threads`` threads (here for a single model or thread); the models that do not
    fill a round of threads (``k >= spec.split_from``; all of them with fewer models than
    threads, and rows enough) after them, each split by rows over all threads
    (:class:`_Share`), one model after the other. Returns the first share's results.

    Torch runs on one intra-op thread everywhere here: the caller (:class:`_FastStack`)
    sets it for this thread, and each pool thread is set once for good
    (:func:`_one_thread_here`; setting it back and forth around each task woke torch's
    OpenMP threads, which then spun on the cores the models need: a 64-layer Cora model
    split over two cores took 10.3 ms per evaluation forward against 6.0). Splitting one
    model's ops over two cores by torch's and numba's own threading does not pay on this
    scale: two OpenMP runtimes
    (torch's and numba's) or torch's intra-op GEMMs next to serial kernels leave spinning
    threads that slow the other core down (a 64-layer Cora epoch took 42-71 ms with
    numba's row-parallel kernels and torch's two-thread GEMMs, 81 ms with two-thread GEMMs
    alone, 60-66 ms on one core); threads that each run a whole model's layers on their
    rows and meet at spinning barriers do (see ``docs/performance.md``)."""
    n, f = spec.graph.num_nodes, spec.widths[0]
    split = [_split(spec, fn, k, n, f) for k in range(spec.split_from, spec.k)]

    def whole(k: int) -> Any:
        return fn(k, _Share(n, f, 0, 1, _NO_STATE))

    threads, rounds = spec.threads, range(spec.split_from)
    if spec.split_from <= 1 or threads == 1:
        return [whole(k) for k in rounds] + split

    def task(k: int) -> Any:
        _one_thread_here()
        with torch.no_grad():
            return whole(k)

    return list(_pool(threads).map(task, rounds)) + split


_NO_STATE = np.zeros(3, dtype=np.int64)  # the barrier state of a model on one thread


@functools.lru_cache(maxsize=1)
def _sched_yield() -> int:
    """The address of the C library's ``sched_yield`` (0 where there is none): a thread
    that has waited long at a barrier gives its core away (see :func:`_kernels.barrier`)."""
    try:
        return ctypes.cast(ctypes.CDLL(None).sched_yield, ctypes.c_void_p).value or 0
    except (AttributeError, OSError, TypeError):
        return 0


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on every platform)
        return os.cpu_count() or 1


def _one_thread_here() -> None:
    """One intra-op thread for good in this pool thread (torch keeps the count per thread
    once a thread has set or read it). A pool thread that never did would run oneDNN on
    OpenMP's default team: the extra OpenMP threads that made then turned OpenMP's
    spin-waiting down for the whole process, and PyG's ops ran up to 4x slower after
    (a 64-layer epoch: 440 ms against 250)."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _split(spec: _Spec, fn: Callable[[int, _Share], Any], k: int, n: int, f: int) -> Any:
    """``fn(k, share)`` on ``spec.parties`` threads at once (this one and the pool's), each
    with its share of the rows; the first share's result. A share that fails sets the
    barrier's abort flag, so the others stop waiting for it."""
    state = np.array([0, 0, _sched_yield()], dtype=np.int64)
    shares = [_Share(n, f, t, spec.parties, state) for t in range(spec.parties)]

    def task(share: _Share) -> Any:
        _one_thread_here()
        with torch.no_grad():
            try:
                return fn(k, share)
            except BaseException:
                state[1] = 1
                raise

    pool = _pool(spec.threads)
    others = [pool.submit(task, share) for share in shares[1:]]
    try:
        first = task(shares[0])
    finally:
        for other in others:  # (the others stop at their next barrier if this one failed)
            other.result()
    return first


class _FastStack(torch.autograd.Function):
    """The K models' forward and backward. Every torch op in them runs on one intra-op
    thread: one that ran on more would leave torch's OpenMP threads spinning for some
    milliseconds after it, on the cores that the models' threads need (a 64-layer Cora
    model split over two threads took as long as on one core after a two-thread copy)."""

    @staticmethod
    def forward(ctx: Any, spec: _Spec, slopes: Tensor, *params: Tensor) -> Tensor:
        with _SingleThreaded():
            return _FastStack._forward(ctx, spec, slopes, *params)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        with _SingleThreaded():
            return _FastStack._backward(ctx, grad_out)

    @staticmethod
    def _forward(ctx: Any, spec: _Spec, slopes: Tensor, *params: Tensor) -> Tensor:
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
        if spec.u:  # layers 1 .. u - 1 as blocks: w [u - 1, K, C, C], b [K, u, C]
            spec.w_stretch = torch.stack(weights[1 : spec.u]).numpy()
            spec.b_stretch = torch.stack(biases[: spec.u], 1).numpy()
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
        # a split model's masks are drawn here, once; the others' by each model's thread
        split_masks = {k: _model_masks(spec, k, drawn) for k in range(spec.split_from, spec.k)}

        def model(k: int, share: _Share) -> Any:
            mk = split_masks[k] if k in split_masks else _model_masks(spec, k, drawn)
            return _forward_model(spec, k, weights, biases, slopes_, out, mk, bufs, share)

        saved = _each_model(spec, model)
        if spec.need_grad:
            ctx.spec, ctx.saved, ctx.token = spec, saved, token
            ctx.save_for_backward(slopes, *weights)
        return out

    @staticmethod
    def _backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        spec = ctx.spec
        slopes, *weights = (t.detach() for t in ctx.saved_tensors)
        layers = spec.num_layers
        need = ctx.needs_input_grad
        want_s = need[1] and slopes.numel() > 0
        grads = _Grads(spec, weights, slopes if want_s else None)
        grad_out = grad_out.contiguous()
        saved = ctx.saved
        # W^T as contiguous [c_out, c_in] numpy arrays for numba's G_H = G_P W^T (layers
        # 1 .. u - 1: one block [u - 1, K, C, C])
        u = spec.u
        spec.w_tc = [
            list(w.transpose(1, 2).contiguous().numpy())
            if i >= max(u, 1) and _numba_gemm(w.size(1))
            else None
            for i, w in enumerate(weights)
        ]
        if u:  # (the forward stacked these weights already)
            spec.wt_stretch = np.ascontiguousarray(spec.w_stretch.transpose(0, 1, 3, 2))
        # a split model: each share sums its rows' gradients apart (the first share into
        # the results; the first layer's weights are split by rows, written in place), and
        # the shares' scratch rows are shared
        parts = [grads]
        scratch = None
        if spec.parties > 1:
            for _ in range(spec.parties - 1):
                parts.append(_Grads(spec, weights, grads.s))
                parts[-1].w[0] = grads.w[0]
            scratch = torch.empty(5, spec.graph.num_nodes * max(spec.widths[1:]))

        def model(k: int, share: _Share) -> None:
            mine = scratch if share.parties > 1 else None
            _backward_model(
                spec, k, grad_out, saved[k], weights, slopes, parts[share.index], share, mine
            )

        _each_model(spec, model)
        for part in parts[1:]:
            grads.add(part, spec.split_from)
        grads_w, grads_b, grad_s = grads.w, grads.b, grads.s
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
