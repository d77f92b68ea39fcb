"""Fused CPU kernels of :class:`~gnnleaky.nn.StackedGNN`'s fast path (compiled by numba).

One GCN layer of one model is ``Z = A P + b`` followed by ``H = phi(Z) * mask * scale``
with ``P = H_prev W``. The dense product stays with oneDNN (it runs at the core's peak);
these kernels do the rest in one pass over the rows each:

* :func:`propagate` - ``Z = A P + b`` and ``H = phi(Z) * mask * scale`` (``Z`` is kept for
  the backward only when asked). Each row of ``Z`` is summed in vector registers (widths
  that 64 divides; see :func:`_propagate_blocks`) or in a private buffer, so the sparse
  product, the bias, the activation and the dropout cost one read of the gathered rows and
  one write per output (``torch.addmm`` plus ``torch.prelu`` plus a mask product are three
  passes over the ``[N, C]`` output).
* :func:`activation_backward` - ``G_Z = G_H * mask * scale * phi'(Z)`` and, in the same
  pass, the bias gradient (column sums of ``G_Z``) and the slope gradient (column sums of
  ``G_H * mask * scale * min(Z, 0)``).
* :func:`matmul` and :func:`grad_weight` - the dense products ``H W`` (and ``G_P W^T``)
  and ``H^T G`` for widths that 64 divides, four rows at a time with their sums in vector
  registers (0.085 and 0.09 ms on Cora where oneDNN takes 0.10 and 0.16).
* :func:`spmm` - ``A^T G`` (the backward of the propagation, with the CSR transpose), and
  the products with sparse node features: :func:`propagate` without bias or activation.
* :func:`forward_layers` and :func:`backward_layers` - the layer loop of a stretch of
  layers of one width, forward and backward, in one call (the kernels above, layer after
  layer, without Python between them).
* :func:`barrier` - where threads that split one model's rows meet (a spinning barrier on
  an atomic counter); :func:`propagate_after` and :func:`spmm_after` wait at it and run
  their kernel in the same call.

``phi(z) = z`` for ``z > 0`` and ``slope[c] * z`` otherwise (ReLU: slope 0, Leaky ReLU: a
fixed slope, PReLU: learned, identity: 1); the gradient at ``z = 0`` is the slope, as in
torch's ``relu``, ``leaky_relu`` and ``prelu``. All kernels release the GIL, so models run
in parallel from Python threads, and are compiled on first use (about 20 s for all,
once: the code is cached on disk beside this module).

Measured on Cora (N = 2708, 13264 non-zeros with self-loops), width 64, one thread:
``propagate`` with activation 0.04-0.05 ms (0.06 with dropout at p = 0.5) where
``torch.addmm(bias, csr, P)`` alone takes 0.084 ms and ``torch.prelu`` another 0.015 ms;
``spmm`` 0.044 ms; the sparse features ``X W_1`` (49216 non-zeros, 1433 x 64 weights)
0.08-0.12 ms and ``X^T G`` 0.09-0.13 ms.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from gnnleaky.engine.dropout import keep_row, next_row, row_start

__all__ = [
    "activation_backward",
    "backward_layers",
    "barrier",
    "forward_layers",
    "grad_weight",
    "matmul",
    "propagate",
    "propagate_after",
    "spmm",
    "spmm_after",
]

_JIT = {"nogil": True, "fastmath": True, "cache": True, "boundscheck": False}
_NO_BYTES = np.zeros(8, dtype=np.uint8)  # the random bytes of a pass without dropout


@intrinsic
def _stack_f32(typingctx, size):
    """A pointer to ``size`` float32 on the stack (``size`` a literal): unlike a heap
    array, LLVM may keep such a buffer in vector registers for a whole loop."""
    if not isinstance(size, types.IntegerLiteral):
        return None

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(types.float32)
        return cgutils.alloca_once(builder, ty, size=size.literal_value)

    return types.CPointer(types.float32)(size), codegen


@numba.njit(**_JIT, inline="always")
def _by_lane_width(rows, bits, args):
    """``rows(bits, args)`` with ``bits`` a literal: one compiled copy of ``rows`` per
    dropout lane width (0, 1, 2, 4, 8, 16), in which LLVM vectorizes the mask decoding."""
    if bits == 1:
        rows(1, args)
    elif bits == 2:
        rows(2, args)
    elif bits == 4:
        rows(4, args)
    elif bits == 8:
        rows(8, args)
    elif bits == 16:
        rows(16, args)
    else:
        rows(0, args)


@numba.njit(**_JIT)
def _propagate_blocks(bits, w, args):
    """:func:`_propagate_rows` for a width that ``w`` divides, ``w`` columns at a time.

    The ``w`` sums of a block stay in vector registers while the row's non-zeros stream
    by (two sets, even and odd non-zeros, so that consecutive FMAs do not wait on each
    other) and go to ``z`` and ``h`` from there: they live in a stack buffer of literal
    size, which LLVM promotes to registers, where a heap buffer is loaded, updated and
    stored again for every non-zero (Cora, width 64, one thread: ``A P`` 0.042 ms
    against 0.071)."""
    numba.literally(bits)
    numba.literally(w)
    indptr, indices, values, p, bias, slope, raw, drop, scale, stride, offset = args[:11]
    act, store_z, z, h, r0, r1 = args[11:]
    c = p.shape[1]
    a = numba.carray(_stack_f32(w), w)
    b = numba.carray(_stack_f32(w), w)
    keep = numba.carray(_stack_f32(w), w)  # the block's dropout multipliers
    words = raw.view(np.int16)
    ent, s, byte = row_start(bits, raw.size, stride, offset, r0)
    for i in range(r0, r1):
        e0, e1 = indptr[i], indptr[i + 1]
        q0 = 0
        while q0 < c:  # (a range with step w here keeps a and b out of registers)
            for q in range(w):
                a[q] = bias[q0 + q]
                b[q] = 0.0
            e = e0
            while e + 1 < e1:
                j, v = indices[e], values[e]
                j2, v2 = indices[e + 1], values[e + 1]
                for q in range(w):
                    a[q] += v * p[j, q0 + q]
                    b[q] += v2 * p[j2, q0 + q]
                e += 2
            if e < e1:
                j, v = indices[e], values[e]
                for q in range(w):
                    a[q] += v * p[j, q0 + q]
            for q in range(w):
                a[q] += b[q]
            if store_z or not act:
                for q in range(w):
                    z[i, q0 + q] = a[q]
            if act and bits:
                keep_row(raw, words, bits, drop, scale, ent + q0, s, byte + q0, keep)
                for q in range(w):
                    x = a[q]
                    h[i, q0 + q] = (x if x > 0 else slope[q0 + q] * x) * keep[q]
            elif act:
                for q in range(w):
                    x = a[q]
                    h[i, q0 + q] = x if x > 0 else slope[q0 + q] * x
            q0 += w
        ent, s, byte = next_row(bits, raw.size, stride, ent, s, byte)


@numba.njit(**_JIT, inline="always")
def _propagate_rows(bits, args):
    indptr, indices, values, p, bias, slope, raw, drop, scale, stride, offset = args[:11]
    act, store_z, z, h, r0, r1 = args[11:]
    c = p.shape[1]
    if c % 64 == 0:
        _propagate_blocks(bits, 64, args)
        return
    acc = np.empty(c, dtype=np.float32)
    flags = np.ones(c, dtype=np.float32)
    words = raw.view(np.int16)
    ent, s, byte = row_start(bits, raw.size, stride, offset, r0)
    for i in range(r0, r1):
        for q in range(c):
            acc[q] = bias[q]
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            v = values[e]
            for q in range(c):
                acc[q] += v * p[j, q]
        if store_z or not act:
            for q in range(c):
                z[i, q] = acc[q]
        if act:
            if bits:
                keep_row(raw, words, bits, drop, scale, ent, s, byte, flags)
                for q in range(c):
                    x = acc[q]
                    h[i, q] = (x if x > 0 else slope[q] * x) * flags[q]
            else:
                for q in range(c):
                    x = acc[q]
                    h[i, q] = x if x > 0 else slope[q] * x
        ent, s, byte = next_row(bits, raw.size, stride, ent, s, byte)


@numba.njit(**_JIT)
def propagate(
    indptr, indices, values, p, bias, slope, raw, bits, drop, scale, stride, offset, act,
    store_z, z, h, r0, r1,
):  # fmt: skip
    """Rows ``r0:r1`` of ``z = A p + bias`` and ``h = phi(z) * keep * scale``.

    ``keep`` comes from the random bytes ``raw`` (see
    :func:`~gnnleaky.engine.dropout.keep_row`), entry ``(i, q)`` being mask entry
    ``i * stride + offset + q``; ``bits = 0`` means no dropout. ``z`` is
    written only with ``store_z``, or without ``act`` (the last layer, which has no
    activation, writes ``z`` alone). Where 64 divides the width each row is summed in
    vector registers (:func:`_propagate_blocks`), else in a private buffer: written in
    place, LLVM's runtime alias checks fail and the loops run scalar (2-3x slower).

    Each lane width (0, 1, 2, 4, 8, 16 bits) has its own copy of the loop nest, with
    ``bits`` a constant in it: LLVM then vectorizes the mask decoding, which it does not
    do while ``bits`` is a run-time value (on Cora, width 64, one thread, with p = 0.5:
    0.081 ms against 0.118; unmasked rows 0.064 against 0.083)."""
    args = (
        indptr, indices, values, p, bias, slope, raw, drop, scale, stride, offset, act,
        store_z, z, h, r0, r1,
    )  # fmt: skip
    _by_lane_width(_propagate_rows, bits, args)


@numba.njit(**_JIT, inline="always")
def _activation_backward_rows(bits, args):
    g_h, z, slope, raw, drop, scale, stride, offset, g_z, gb, gs, want_slope, r0, r1 = args
    c = z.shape[1]
    flags = np.ones(c, dtype=np.float32)
    words = raw.view(np.int16)
    zero = np.float32(0.0)
    ent, s, byte = row_start(bits, raw.size, stride, offset, r0)
    for i in range(r0, r1):
        if bits:
            keep_row(raw, words, bits, drop, scale, ent, s, byte, flags)
            ent, s, byte = next_row(bits, raw.size, stride, ent, s, byte)
        for q in range(c):
            g = g_h[i, q] * flags[q]
            x = z[i, q]
            gz = g if x > 0 else slope[q] * g
            g_z[i, q] = gz
            gb[q] += gz
        if want_slope:
            for q in range(c):
                gs[q] += g_h[i, q] * flags[q] * min(z[i, q], zero)


@numba.njit(**_JIT)
def activation_backward(
    g_h, z, slope, raw, bits, drop, scale, stride, offset, g_z, g_bias, g_slope, want_slope,
    r0, r1,
):  # fmt: skip
    """Rows ``r0:r1`` of ``g_z = g_h * keep * scale * phi'(z)``; adds their column sums to
    ``g_bias`` and, with ``want_slope``, those of ``g_h * keep * scale * min(z, 0)`` to
    ``g_slope`` (``keep`` as in :func:`propagate`; without ``want_slope`` ``g_slope`` is not
    touched). Each lane width has its own copy of the loop nest, as in :func:`propagate`
    (Cora, width 64, p = 0.5: 0.041 ms against 0.088)."""
    c = z.shape[1]
    gb = np.zeros(c, dtype=np.float32)  # private sums: no alias with g_z, so they vectorize
    gs = np.zeros(c, dtype=np.float32)
    args = (g_h, z, slope, raw, drop, scale, stride, offset, g_z, gb, gs, want_slope, r0, r1)
    _by_lane_width(_activation_backward_rows, bits, args)
    for q in range(c):
        g_bias[q] += gb[q]
    if want_slope:
        for q in range(c):
            g_slope[q] += gs[q]


@numba.njit(**_JIT)
def _grad_w_block(v, h_in, g_p, g_w, i):
    """``g_w += H[i:i+4]^T G_P[i:i+4]`` for a ``G_P`` width that ``v`` (a literal)
    divides: ``v`` columns of the four rows of ``G_P`` stay in registers while the rows
    of ``g_w`` stream by."""
    numba.literally(v)
    p0 = numba.carray(_stack_f32(v), v)
    p1 = numba.carray(_stack_f32(v), v)
    p2 = numba.carray(_stack_f32(v), v)
    p3 = numba.carray(_stack_f32(v), v)
    q0 = 0
    while q0 < g_p.shape[1]:
        for q in range(v):
            p0[q] = g_p[i, q0 + q]
            p1[q] = g_p[i + 1, q0 + q]
            p2[q] = g_p[i + 2, q0 + q]
            p3[q] = g_p[i + 3, q0 + q]
        for a in range(h_in.shape[1]):
            x0, x1, x2, x3 = h_in[i, a], h_in[i + 1, a], h_in[i + 2, a], h_in[i + 3, a]
            for q in range(v):
                g_w[a, q0 + q] += x0 * p0[q] + x1 * p1[q] + x2 * p2[q] + x3 * p3[q]
        q0 += v


@numba.njit(**_JIT, inline="always")
def _rows_times(x, b, rows, q0, acc):
    """``acc[r] = x[rows[r]] @ b[:, q0 : q0 + len(acc[r])]`` for four rows: each row of
    ``b`` loaded once for the four (the sums stay in registers where ``acc`` are stack
    buffers of literal size)."""
    a0, a1, a2, a3 = acc
    i0, i1, i2, i3 = rows
    for q in range(a0.size):
        a0[q] = 0.0
        a1[q] = 0.0
        a2[q] = 0.0
        a3[q] = 0.0
    for kk in range(x.shape[1]):
        x0, x1, x2, x3 = x[i0, kk], x[i1, kk], x[i2, kk], x[i3, kk]
        for q in range(a0.size):
            bq = b[kk, q0 + q]
            a0[q] += x0 * bq
            a1[q] += x1 * bq
            a2[q] += x2 * bq
            a3[q] += x3 * bq


@numba.njit(**_JIT)
def _matmul_blocks(w, x, b, out, r0, r1):
    numba.literally(w)
    a0 = numba.carray(_stack_f32(w), w)
    a1 = numba.carray(_stack_f32(w), w)
    a2 = numba.carray(_stack_f32(w), w)
    a3 = numba.carray(_stack_f32(w), w)
    c = b.shape[1]
    i = r0
    while i < r1:
        m = min(4, r1 - i)
        i1, i2, i3 = min(i + 1, r1 - 1), min(i + 2, r1 - 1), min(i + 3, r1 - 1)
        q0 = 0
        while q0 < c:
            _rows_times(x, b, (i, i1, i2, i3), q0, (a0, a1, a2, a3))
            for q in range(w):
                out[i, q0 + q] = a0[q]
            if m > 1:
                for q in range(w):
                    out[i1, q0 + q] = a1[q]
            if m > 2:
                for q in range(w):
                    out[i2, q0 + q] = a2[q]
            if m > 3:
                for q in range(w):
                    out[i3, q0 + q] = a3[q]
            q0 += w
        i += 4


@numba.njit(**_JIT)
def matmul(x, b, out, r0, r1):
    """Rows ``r0:r1`` of ``out = x @ b`` for a ``b`` whose width 64 divides (Cora,
    ``[2708, 64] x [64, 64]``, one thread: 0.085 ms where oneDNN takes 0.10)."""
    _matmul_blocks(64, x, b, out, r0, r1)


@numba.njit(**_JIT)
def grad_weight(h, g, out, r0, r1):
    """``out = h[r0:r1]^T g[r0:r1]`` (written, not added) for a ``g`` whose width 64
    divides: a layer's weight gradient (Cora, 64 x 64, one thread: 0.09 ms where oneDNN
    takes 0.16 and MKL 0.22)."""
    acc = np.zeros((h.shape[1], g.shape[1]), dtype=np.float32)
    i = r0
    while i + 4 <= r1:
        _grad_w_block(64, h, g, acc, i)
        i += 4
    for row in range(i, r1):
        for a in range(h.shape[1]):
            x = h[row, a]
            for q in range(g.shape[1]):
                acc[a, q] += x * g[row, q]
    out[:, :] = acc


@numba.njit(**_JIT)
def spmm(indptr, indices, values, g, out, r0, r1):
    """Rows ``r0:r1`` of ``out = A g`` for CSR ``A``: :func:`propagate` without bias,
    activation or dropout."""
    c = g.shape[1]
    zero = np.zeros(c, dtype=g.dtype)
    args = (
        indptr, indices, values, g, zero, zero, _NO_BYTES, 0, np.float32(1.0), 0, 0, False,
        True, out, out, r0, r1,
    )  # fmt: skip
    _propagate_rows(0, args)


@intrinsic
def _atomic_add(typingctx, addr, value):
    """Add ``value`` to the int64 at address ``addr`` atomically; the old value."""
    if not isinstance(addr, types.Integer) or not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        v = context.cast(builder, args[1], signature.args[1], types.int64)
        return builder.atomic_rmw("add", ptr, v, "seq_cst")

    return types.int64(addr, value), codegen


@intrinsic
def _atomic_load(typingctx, addr):
    """The int64 at address ``addr``, read atomically (a fresh read on every call)."""
    if not isinstance(addr, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(addr), codegen


@intrinsic
def _call_int_fn(typingctx, addr):
    """Call the C function ``int f(void)`` at address ``addr`` (an argument, so that no
    address is baked into cached code)."""
    if not isinstance(addr, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        return builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [])

    return types.int32(addr), codegen


_SPINS = 20_000  # busy checks (tens of us) before a waiting thread yields its core


@numba.njit(nogil=True, cache=True)
def barrier(state, parties, round_):
    """Wait until ``parties`` threads have reached barrier number ``round_`` (0, 1, ...;
    each thread counts its own). ``state`` is an int64 array of three, set before the
    first round: ``state[0]`` counts arrivals (0), ``state[1] != 0`` (set by a thread that
    failed) ends the wait, and the result is then ``False``; ``state[2]`` is the address
    of ``sched_yield`` (or 0), which a thread calls between checks once it has waited
    ``_SPINS`` checks, so that threads that outnumber the free cores still progress.

    The threads spin without the GIL: about 1 us per barrier for two threads, where a
    ``threading.Barrier`` wakes its sleepers through the OS in tens of us."""
    addr = state.ctypes.data
    _atomic_add(addr, 1)
    target = (round_ + 1) * parties
    spins = 0
    while _atomic_load(addr) < target:
        if _atomic_load(addr + 8) != 0:
            return False
        spins += 1
        if spins > _SPINS and state[2] != 0:
            _call_int_fn(state[2])
    return True


@numba.njit(nogil=True, cache=True)
def propagate_after(state, parties, round_, *args):
    """:func:`barrier`, then :func:`propagate` (``args``) unless it failed: in one call,
    so that the threads leaving the barrier do not all ask for the GIL at once."""
    if not barrier(state, parties, round_):
        return False
    propagate(*args)
    return True


@numba.njit(nogil=True, cache=True)
def spmm_after(state, parties, round_, *args):
    """:func:`barrier`, then :func:`spmm` (``args``) unless it failed (see
    :func:`propagate_after`)."""
    if not barrier(state, parties, round_):
        return False
    spmm(*args)
    return True


@numba.njit(**_JIT)
def forward_layers(
    indptr, indices, values, h, z, keep_z, p, w, bias, slope, k, raw, starts, nbytes, bits,
    drop, scale, residual, l0, l1, state, parties, round_, r0, r1,
):  # fmt: skip
    """Layers ``l0 .. l1 - 1`` (``l0 >= 1``) of model ``k``, rows ``r0:r1``: the layer
    loop of a stretch of layers of one width ``C`` that 64 divides, in one call (no Python
    between layers, and for a model split over threads no GIL to hand over).

    ``h[l % len(h)]`` is layer ``l``'s output (``[N, C]``; one buffer per layer in
    training, two used in turn in evaluation), its input that of ``l - 1``; ``z`` likewise,
    written where ``keep_z[l]``; ``p[l % 2]`` the products ``H W`` (flat); ``w[l - 1, k]``
    the weights, ``bias[k, l]`` and ``slope[l, k]`` the rest of layer ``l``; layer ``l``'s
    dropout bytes are ``raw[starts[l] : starts[l] + nbytes]`` (see :func:`propagate`). With
    ``parties > 1`` the threads meet at :func:`barrier` before each sparse product.
    Returns the next barrier round, or -1 if another thread failed."""
    n, c = h.shape[1], h.shape[2]
    for layer in range(l0, l1):
        h_in = h[(layer - 1) % h.shape[0]]
        out = h[layer % h.shape[0]]
        z_out = z[layer % z.shape[0]] if keep_z[layer] else out
        pp = p[layer % 2, : n * c].reshape((n, c))
        matmul(h_in, w[layer - 1, k], pp, r0, r1)
        if parties > 1:
            if not barrier(state, parties, round_):
                return -1
            round_ += 1
        mask = raw[starts[layer] : starts[layer] + nbytes] if bits else raw
        propagate(
            indptr, indices, values, pp, bias[k, layer], slope[layer, k], mask, bits, drop,
            scale, c, 0, True, keep_z[layer], z_out, out, r0, r1,
        )  # fmt: skip
        if residual:
            for i in range(r0, r1):
                for q in range(c):
                    out[i, q] += h_in[i, q]
    return round_


@numba.njit(**_JIT)
def backward_layers(
    indptr, indices, values, h, z, keep_z, w_t, slope, k, raw, starts, nbytes, bits, drop,
    scale, residual, scratch, grad, g_w, g_b, g_s, want_slope, l0, l1, state, parties,
    round_, r0, r1,
):  # fmt: skip
    """The backward of :func:`forward_layers`' layers, ``l1 - 1`` down to ``l0``, rows
    ``r0:r1`` (``indptr, indices, values``: the transposed operator; ``w_t[l - 1, k]``:
    layer ``l``'s weights transposed, contiguous).

    On entry ``scratch[(l1 - 1) % 2]`` holds the ``G_Z`` of layer ``l1 - 1`` (every row
    once the threads have met) and ``grad`` its output gradient (read for residuals); per
    layer ``G_P`` goes to ``scratch[2]``, ``G_H`` to ``scratch[3 + l % 2]`` and the layer
    below's ``G_Z`` to ``scratch[(l - 1) % 2]`` (all flat), so on exit
    ``scratch[(l0 - 1) % 2]`` holds the ``G_Z`` of layer ``l0 - 1``. ``g_w[l - 1, k]`` is
    written, ``g_b[l, k]`` and ``g_s[l, k]`` (with ``want_slope``) are added to, as in
    :func:`_fast._backward_model`. Returns the next barrier round, or -1."""
    n, c = h.shape[1], h.shape[2]
    for layer in range(l1 - 1, l0 - 1, -1):
        g_z = scratch[layer % 2, : n * c].reshape((n, c))
        g_p = scratch[2, : n * c].reshape((n, c))
        g_h = scratch[3 + layer % 2, : n * c].reshape((n, c))
        if parties > 1:
            if not barrier(state, parties, round_):
                return -1
            round_ += 1
        spmm(indptr, indices, values, g_z, g_p, r0, r1)
        matmul(g_p, w_t[layer - 1, k], g_h, r0, r1)
        if residual:
            for i in range(r0, r1):
                for q in range(c):
                    g_h[i, q] += grad[i, q]
        grad = g_h
        below = layer - 1
        z_below = z[below] if keep_z[below] else h[below]
        mask = raw[starts[below] : starts[below] + nbytes] if bits else raw
        activation_backward(
            g_h, z_below, slope[below, k], mask, bits, drop, scale, c, 0,
            scratch[below % 2, : n * c].reshape((n, c)), g_b[below, k], g_s[below, k],
            want_slope, r0, r1,
        )  # fmt: skip
        grad_weight(h[below], g_p, g_w[layer - 1, k], r0, r1)
    return round_
