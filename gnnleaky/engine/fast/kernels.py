"""Fused CPU kernels of the engine's fast path (compiled by numba).

One GCN layer of one model is ``Z = A P + b`` followed by ``H = phi(Z) * mask * scale``
with ``P = H_prev W``. The dense products stay with torch (oneDNN); these kernels do the
sparse rest, each in one pass over the rows:

* :func:`propagate` - ``Z = A P + b`` and ``H = phi(Z) * mask * scale`` (``Z`` is kept
  for the backward only when asked): the sparse product, the bias, the activation and
  the dropout cost one read of the gathered rows and one write per output, where
  ``torch.addmm`` plus ``torch.prelu`` plus a mask product are three passes. Each row is
  summed in vector registers where 64 divides the width (:func:`_propagate_blocks`).
* :func:`activation_backward` - ``G_Z = G_H * mask * scale * phi'(Z)`` and, in the same
  pass, the bias gradient (column sums of ``G_Z``) and the slope gradient (column sums
  of ``G_H * mask * scale * min(Z, 0)``).
* :func:`spmm` - ``A g`` for a CSR ``A``: the backward of the propagation (with the
  transposed operator) and the products with sparse node features.

Arguments travel in groups: ``graph = (indptr, indices, values)`` of a CSR matrix and
``mask = (raw, bits, drop, scale, stride, offset)``, the dropout bytes of one model and
layer in the layout of :mod:`gnnleaky.engine.dropout` (entry ``(i, q)`` of the layer is
mask entry ``i * stride + offset + q``; ``bits = 0``: no dropout).

``phi(z) = z`` for ``z > 0`` and ``slope[c] * z`` otherwise (ReLU: slope 0, Leaky ReLU: a
fixed slope, PReLU: learned, identity: 1); the gradient at ``z = 0`` is the slope, as in
torch's ``relu``, ``leaky_relu`` and ``prelu``. All kernels release the GIL, so models
run in parallel from Python threads, and are compiled on first use (once: the code is
cached on disk beside this module).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from gnnleaky.engine.dropout import keep_row, next_row, row_start

__all__ = ["NO_MASK", "activation_backward", "propagate", "spmm"]

_JIT = {"nogil": True, "fastmath": True, "cache": True, "boundscheck": False}
_NO_BYTES = np.zeros(8, dtype=np.uint8)  # the random bytes of a pass without dropout
#: The mask group of a pass without dropout.
NO_MASK = (_NO_BYTES, 0, 0, np.float32(1.0), 0, 0)


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
    stored again for every non-zero."""
    numba.literally(bits)
    numba.literally(w)
    graph, p, bias, slope, mask, act, store_z, z, h = args
    indptr, indices, values = graph
    raw, _, drop, scale, stride, offset = mask
    c = p.shape[1]
    a = numba.carray(_stack_f32(w), w)
    b = numba.carray(_stack_f32(w), w)
    keep = numba.carray(_stack_f32(w), w)  # the block's dropout multipliers
    words = raw.view(np.int16)
    ent, s, byte = row_start(bits, raw.size, stride, offset, 0)
    for i in range(z.shape[0]):
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
    graph, p, bias, slope, mask, act, store_z, z, h = args
    indptr, indices, values = graph
    raw, _, drop, scale, stride, offset = mask
    c = p.shape[1]
    if c % 64 == 0:
        _propagate_blocks(bits, 64, args)
        return
    acc = np.empty(c, dtype=np.float32)
    flags = np.ones(c, dtype=np.float32)
    words = raw.view(np.int16)
    ent, s, byte = row_start(bits, raw.size, stride, offset, 0)
    for i in range(z.shape[0]):
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
def propagate(graph, p, bias, slope, mask, act, store_z, z, h):
    """``z = A p + bias`` and ``h = phi(z) * keep * scale`` for ``graph = A`` (CSR).

    ``z`` is written only with ``store_z``, or without ``act`` (a layer without
    activation writes ``z`` alone; pass ``h = z`` then). Where 64 divides the width each
    row is summed in vector registers (:func:`_propagate_blocks`), else in a private
    buffer: written in place, LLVM's runtime alias checks fail and the loops run scalar.
    Each lane width of ``mask`` (0, 1, 2, 4, 8, 16 bits) has its own copy of the loop
    nest, with the width a constant in it, so that LLVM vectorizes the mask decoding."""
    _by_lane_width(_propagate_rows, mask[1], (graph, p, bias, slope, mask, act, store_z, z, h))


@numba.njit(**_JIT, inline="always")
def _activation_backward_rows(bits, args):
    g_h, z, slope, mask, g_z, gb, gs, want_slope = args
    raw, _, drop, scale, stride, offset = mask
    c = z.shape[1]
    flags = np.ones(c, dtype=np.float32)
    words = raw.view(np.int16)
    zero = np.float32(0.0)
    ent, s, byte = row_start(bits, raw.size, stride, offset, 0)
    for i in range(z.shape[0]):
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
def activation_backward(g_h, z, slope, mask, g_z, g_bias, g_slope, want_slope):
    """``g_z = g_h * keep * scale * phi'(z)``; adds its column sums to ``g_bias`` and,
    with ``want_slope``, those of ``g_h * keep * scale * min(z, 0)`` to ``g_slope``
    (``keep`` as in :func:`propagate`; without ``want_slope`` ``g_slope`` is not
    touched). Each lane width has its own copy of the loop nest, as in
    :func:`propagate`."""
    c = z.shape[1]
    gb = np.zeros(c, dtype=np.float32)  # private sums: no alias with g_z, so they vectorize
    gs = np.zeros(c, dtype=np.float32)
    args = (g_h, z, slope, mask, g_z, gb, gs, want_slope)
    _by_lane_width(_activation_backward_rows, mask[1], args)
    for q in range(c):
        g_bias[q] += gb[q]
    if want_slope:
        for q in range(c):
            g_slope[q] += gs[q]


@numba.njit(**_JIT)
def spmm(graph, g, out):
    """``out = A g`` for ``graph = A`` (CSR): :func:`propagate` without bias, activation
    or dropout (``out`` has ``A``'s rows)."""
    zero = np.zeros(g.shape[1], dtype=g.dtype)
    no_mask = (_NO_BYTES, 0, 0, np.float32(1.0), 0, 0)
    _propagate_rows(0, (graph, g, zero, zero, no_mask, False, True, out, out))
