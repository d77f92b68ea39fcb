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
* :func:`spmm` - ``A^T G`` (the backward of the propagation, with the CSR transpose), and
  the products with sparse node features: :func:`propagate` without bias or activation.

``phi(z) = z`` for ``z > 0`` and ``slope[c] * z`` otherwise (ReLU: slope 0, Leaky ReLU: a
fixed slope, PReLU: learned, identity: 1); the gradient at ``z = 0`` is the slope, as in
torch's ``relu``, ``leaky_relu`` and ``prelu``. All kernels release the GIL, so models run
in parallel from Python threads, and are compiled on first use (about 15 s for the
three, once: the code is cached on disk beside this module).

Measured on Cora (N = 2708, 13264 non-zeros with self-loops), width 64, one thread:
``propagate`` with activation 0.051 ms (0.073 with dropout) where
``torch.addmm(bias, csr, P)`` alone takes 0.084 ms and ``torch.prelu`` another 0.015 ms;
``spmm`` 0.044 ms; the sparse features ``X W_1`` (49216 non-zeros, 1433 x 64 weights)
0.08-0.12 ms and ``X^T G`` 0.09-0.13 ms.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["activation_backward", "propagate", "spmm"]

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
def _keep_row(raw, bits, drop, scale, e0, flags):
    """``scale`` or 0 for entries ``e0 .. e0 + len(flags) - 1`` into ``flags`` (float32): the
    dropout multipliers of one row.

    ``raw`` holds the random bytes of one model and layer in the lane order of
    :func:`gnnleaky.nn.stacked._keep_masks`: with ``bits < 8`` entry ``e = s * B + b``
    (``B = raw.size``) is the ``s``-th ``bits``-wide field of byte ``b``; with ``bits = 8``
    byte ``e``; with ``bits = 16`` the signed 16-bit word ``e`` (``drop`` then already
    shifted by ``-2^15``). An entry is kept iff its lane is ``>= drop``."""
    c = flags.size
    zero = np.float32(0.0)
    if bits == 16:
        words = raw.view(np.int16)
        d16 = np.int16(drop)
        for q in range(c):
            flags[q] = scale if words[e0 + q] >= d16 else zero
        return
    d8 = np.uint8(drop)
    if bits == 8:
        for q in range(c):
            flags[q] = scale if raw[e0 + q] >= d8 else zero
        return
    nbytes = raw.size
    s = e0 // nbytes
    b0 = e0 - s * nbytes
    field = np.uint8((1 << bits) - 1)
    if b0 + c <= nbytes:  # the whole row in one field (all but a few rows)
        seg = raw[b0 : b0 + c]
        if bits == 1:  # p = 1/2: keep iff the bit is set (arithmetic, no select)
            for q in range(c):
                flags[q] = np.float32((seg[q] >> s) & 1) * scale
        else:
            shift = np.uint8(s * bits)
            for q in range(c):
                flags[q] = scale if (np.uint8(seg[q] >> shift) & field) >= d8 else zero
    else:
        for q in range(c):
            e = e0 + q
            s = e // nbytes
            lane = np.uint8(raw[e - s * nbytes] >> np.uint8(s * bits)) & field
            flags[q] = scale if lane >= d8 else zero


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
    flags = np.ones(c, dtype=np.float32)
    for i in range(r0, r1):
        if act and bits:
            _keep_row(raw, bits, drop, scale, i * stride + offset, flags)
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
            if act:
                for q in range(w):
                    x = a[q]
                    y = x if x > 0 else slope[q0 + q] * x
                    h[i, q0 + q] = y * flags[q0 + q] if bits else y
            q0 += w


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
                _keep_row(raw, bits, drop, scale, i * stride + offset, flags)
                for q in range(c):
                    x = acc[q]
                    h[i, q] = (x if x > 0 else slope[q] * x) * flags[q]
            else:
                for q in range(c):
                    x = acc[q]
                    h[i, q] = x if x > 0 else slope[q] * x


@numba.njit(**_JIT)
def propagate(
    indptr, indices, values, p, bias, slope, raw, bits, drop, scale, stride, offset, act,
    store_z, z, h, r0, r1,
):  # fmt: skip
    """Rows ``r0:r1`` of ``z = A p + bias`` and ``h = phi(z) * keep * scale``.

    ``keep`` comes from the random bytes ``raw`` (see :func:`_keep_row`), entry ``(i, q)``
    being mask entry ``i * stride + offset + q``; ``bits = 0`` means no dropout. ``z`` is
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
    zero = np.float32(0.0)
    for i in range(r0, r1):
        if bits:
            _keep_row(raw, bits, drop, scale, i * stride + offset, flags)
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
