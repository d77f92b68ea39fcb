r"""Seeded dropout for K stacked models, and the bit layout of its masks (one module).

A mask keeps each entry with probability :math:`q = 1 - d / 2^b` where ``b`` is the lane
width of :func:`lane_bits` (the fewest bits that represent ``p`` exactly, else 16) and
``d = round(p 2^b)``. The random words are int64 drawn with ``Tensor.random_`` from the
model's own generator (:func:`random_words`) and cut into ``64 / b`` lanes; entry ``e``
of a model is kept iff its lane is ``>= d``. Lanes of ``b < 8`` bits: entry
``e = s B + j`` (``B`` the number of bytes) is the ``s``-th ``b``-bit field of byte ``j``;
8 bits: byte ``e``; 16 bits: the signed 16-bit word ``e``, compared with ``d - 2^15``.
:func:`keep_masks` decodes them with torch (the autograd path), and
:func:`keep_row`, :func:`row_start` and :func:`next_row` decode them inside the fast
path's compiled kernels, so both paths draw and apply the same masks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import torch
from torch import Tensor

__all__ = [
    "KernelMask",
    "SeededDropout",
    "apply_mask",
    "dropout_mask",
    "keep_masks",
    "keep_row",
    "lane_bits",
    "lanes",
    "model_layer_masks",
    "next_row",
    "random_words",
    "row_start",
    "shared_layer_masks",
]

_JIT = {"nogil": True, "fastmath": True, "cache": True, "boundscheck": False}


def lane_bits(p: float) -> int:
    """Fewest random bits per entry that represent ``p`` exactly (1 for 0.5), at most 16."""
    for bits in (1, 2, 4, 8):
        if float(p * (1 << bits)).is_integer():
            return bits
    return 16


def lanes(num_rows: int, channels: int, p: float) -> tuple[int, int, float, int]:
    """``(bits, drop, scale, words)`` of the masks of :func:`random_words`: lane width,
    keep threshold, ``1 / q`` and the number of int64 words per model."""
    bits = lane_bits(p)
    levels = 1 << bits
    drop = round(float(p) * levels)
    per_word = 64 // bits
    return bits, drop, levels / (levels - drop), (num_rows * channels + per_word - 1) // per_word


def random_words(
    num_rows: int,
    channels: int,
    p: float,
    generators: Sequence[torch.Generator] | None,
    num_models: int,
    device: torch.device | str | None,
) -> tuple[Tensor, int, int, float]:
    """The random words behind :func:`keep_masks`: ``(buf [K, words] int64, bits, drop,
    scale)``; entry ``e`` of model ``k`` is kept iff its ``bits``-wide lane is ``>= drop``."""
    bits, drop, scale, words = lanes(num_rows, channels, p)
    if generators is None:  # one draw for all models from the default generator
        buf = torch.empty(num_models, words, dtype=torch.int64, device=device)
        buf.random_(-(2**63), 2**63 - 1)
    else:
        gens = list(generators)
        buf = torch.empty(len(gens), words, dtype=torch.int64, device=device)
        for row, gen in zip(buf, gens):
            row.random_(-(2**63), 2**63 - 1, generator=gen)
    return buf, bits, drop, scale


def keep_masks(
    num_rows: int,
    channels: int,
    p: float,
    generators: Sequence[torch.Generator] | None,
    num_models: int,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> tuple[Tensor, float]:
    """0/1 keep masks ``[K, N, C]`` (model ``k`` from ``generators[k]``) and the scale."""
    buf, bits, drop, scale = random_words(num_rows, channels, p, generators, num_models, device)
    num_models, levels, n = buf.size(0), 1 << bits, num_rows * channels
    if bits == 16:
        lanes = buf.view(torch.int16)[:, :n]
        drop -= levels // 2  # signed lanes: keep iff lane >= drop - 2^15
    elif bits == 8:
        lanes = buf.view(torch.uint8)[:, :n]
    else:  # cut every byte into 8 / bits fields (shift index outermost: vectorized)
        shifts = torch.arange(0, 8, bits, dtype=torch.uint8, device=buf.device)
        lanes = buf.view(torch.uint8).view(num_models, 1, -1) >> shifts.view(1, -1, 1)
        lanes = lanes.bitwise_and_(levels - 1).view(num_models, -1)[:, :n]
    lanes = lanes.reshape(num_models, num_rows, channels)
    # A float `out=` keeps the comparison vectorized (bool -> float casts are slow on CPU).
    mask = torch.ge(lanes, drop, out=torch.empty(lanes.shape, dtype=dtype, device=buf.device))
    return mask, scale


def dropout_mask(
    num_rows: int,
    channels: int,
    p: float,
    generators: Sequence[torch.Generator] | None = None,
    *,
    num_models: int = 1,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Scaled dropout masks for K models, each drawn from its own generator.

    Every entry is kept with probability :math:`q = 1 - \lfloor p\,2^{b} \rceil / 2^{b}`
    and then scaled by :math:`1/q`, so :math:`\mathbb{E}[\text{mask}] = 1` as in
    :func:`torch.nn.functional.dropout`. :math:`b` is the fewest bits that represent ``p``
    exactly (1 for ``p = 0.5``, 2 for 0.25, ... up to 8), else 16 (``p`` rounded to
    1/65536). The random bits are 64-bit integers cut into :math:`64 / b` lanes, so
    ``p = 0.5`` costs one random bit per entry where ``bernoulli_`` draws a random number
    (20 ms against 1 ms for 12 masks of 2708 x 64 on one thread; ``bernoulli_`` is a third
    of PyG's 64-layer GCN epoch on CPU). Model ``k``'s mask depends only on
    ``generators[k]``, so a model trained stacked draws the same masks as alone.

    Args:
        num_rows (int): Rows (nodes) ``N``.
        channels (int): Channels per model ``C``.
        p (float): Drop probability in ``[0, 1)``.
        generators (list[torch.Generator], optional): One per model; ``None`` draws all
            models at once from torch's default generator. (default: ``None``)
        num_models (int, optional): ``K`` when ``generators`` is ``None``. (default: ``1``)
        dtype (torch.dtype, optional): Mask dtype. (default: the default dtype)
        device (torch.device, optional): Mask device. (default: CPU)

    Shapes:
        - **output:** :math:`(N, K C)`, model ``k`` in columns ``k C .. (k + 1) C - 1``

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> m = dropout_mask(1000, 8, 0.5, [g])
        >>> sorted(m.unique().tolist()), round(float((m == 0).float().mean()), 1)
        ([0.0, 2.0], 0.5)
    """
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"p must be in [0, 1), got {p!r}")
    mask, scale = keep_masks(
        num_rows, channels, p, generators, num_models, dtype or torch.get_default_dtype(), device
    )
    k = mask.size(0)
    return mask.mul_(scale).transpose(0, 1).reshape(num_rows, k * channels)


class SeededDropout(torch.nn.Module):
    r"""Dropout for K stacked models with one explicit generator per model.

    .. math::
        \mathrm{dropout}(\mathbf{H})_{n, kC + c} = \mathbf{H}_{n, kC + c}\,
        m^{(k)}_{nc} / q, \qquad m^{(k)}_{nc} \sim \mathrm{Bernoulli}(q)

    with the masks of :func:`dropout_mask`. It also replaces the ``dropout`` module of a
    single :class:`~gnnleaky.nn.LeakyGNN` (``K = 1``), which is how stacked and
    one-by-one training draw identical masks. Identity in eval mode or with ``p = 0``
    (then nothing is drawn).

    Args:
        p (float, optional): Drop probability. (default: ``0.5``)
        generators (list[torch.Generator], optional): One per model, used in order for
            the ``K`` column blocks; ``None`` uses torch's default generator.
            (default: ``None``)

    Shapes:
        - **input:** :math:`(N, K C)`
        - **output:** same as input

    Example:
        >>> drop = SeededDropout(0.5, [torch.Generator().manual_seed(s) for s in (0, 1)])
        >>> out = drop(torch.ones(4, 6))  # two models with 3 channels each
        >>> sorted(set(out.unique().tolist())) <= [0.0, 2.0]
        True
    """

    def __init__(self, p: float = 0.5, generators: Sequence[torch.Generator] | None = None) -> None:
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.generators = list(generators) if generators is not None else None

    def forward(self, x: Tensor) -> Tensor:
        mask, scale = self.keep_mask(x)
        if mask is None:
            return x
        return apply_mask(x, mask, scale)

    def keep_mask(self, x: Tensor) -> tuple[Tensor | None, float]:
        """0/1 masks ``[K, N, C]`` for ``x`` (drawn now) and the scale ``1/q``;
        ``(None, 1.0)`` when dropout is off."""
        if not self.training or self.p == 0.0:
            return None, 1.0
        k = len(self.generators) if self.generators is not None else 1
        if x.dim() != 2 or x.size(1) % k != 0:
            raise ValueError(
                f"x must have shape [N, K * C] with K={k} generators, got {tuple(x.shape)}"
            )
        return keep_masks(x.size(0), x.size(1) // k, self.p, self.generators, k, x.dtype, x.device)

    def extra_repr(self) -> str:
        k = "default" if self.generators is None else len(self.generators)
        return f"p={self.p}, generators={k}"


def apply_mask(h: Tensor, mask: Tensor, scale: float) -> Tensor:
    """``h * mask * scale`` for ``h`` ``[N, K C]`` and 0/1 masks ``[K, N, C]`` (one op)."""
    k, n, c = mask.shape
    out = torch.addcmul(h.new_zeros(()), h.view(n, k, c), mask.transpose(0, 1), value=scale)
    return out.reshape(n, k * c)


#: A kernel's mask group: random bytes, lane bits, keep threshold, scale, row stride and
#: column offset of the layer's entries (``bits = 0``: no dropout).
KernelMask = tuple[np.ndarray, int, int, np.float32, int, int]


def model_layer_masks(
    num_rows: int, widths: Sequence[int], p: float, generator: torch.Generator
) -> list[KernelMask]:
    """One model's masks for layers of the given widths, as kernel mask groups, drawn
    from its own generator in one call: torch's CPU ``random_`` consumes a generator one
    word after the other, so this is the stream of one :func:`random_words` draw per
    layer (what the autograd path draws)."""
    layer_lanes = [lanes(num_rows, c, p) for c in widths]
    buf = torch.empty(sum(words for *_, words in layer_lanes), dtype=torch.int64)
    buf.random_(-(2**63), 2**63 - 1, generator=generator)
    raw = buf.numpy().view(np.uint8)
    out, start = [], 0
    for c, (bits, drop, scale, words) in zip(widths, layer_lanes):
        drop -= (1 << 15) if bits == 16 else 0  # 16-bit lanes are signed
        out.append((raw[8 * start : 8 * (start + words)], bits, drop, np.float32(scale), c, 0))
        start += words
    return out


def shared_layer_masks(
    num_rows: int, widths: Sequence[int], p: float, num_models: int
) -> list[list[KernelMask]]:
    """The masks of K models without generators of their own, per model and layer: drawn
    from torch's default generator, one ``[N, K C]`` mask per layer in the autograd
    path's order, whose column block ``k`` is model ``k``'s."""
    per_model: list[list[KernelMask]] = [[] for _ in range(num_models)]
    for c in widths:
        buf, bits, drop, scale = random_words(num_rows, num_models * c, p, None, 1, "cpu")
        drop -= (1 << 15) if bits == 16 else 0
        raw = buf[0].numpy().view(np.uint8)
        for j in range(num_models):
            per_model[j].append((raw, bits, drop, np.float32(scale), num_models * c, j * c))
    return per_model


# -- decoding inside compiled kernels (numba) -------------------------------------------
@numba.njit(**_JIT, inline="always")
def keep_row(raw, words, bits, drop, scale, e0, s, b0, flags):
    """``scale`` or 0 for entries ``e0 .. e0 + len(flags) - 1`` into ``flags`` (float32): the
    dropout multipliers of one row, or of one block of a row.

    ``raw`` holds the random bytes of one model and layer in the lane order of
    :func:`keep_masks` (``words``: the same bytes as int16): with
    ``bits < 8`` entry ``e = s * B + b`` (``B = raw.size``) is the ``s``-th ``bits``-wide
    field of byte ``b`` (the caller keeps ``s`` and ``b0`` of ``e0`` as it walks the rows:
    :func:`row_start`, :func:`next_row`); with ``bits = 8`` byte ``e``; with ``bits = 16``
    the signed 16-bit word ``e`` (``drop`` then already shifted by ``-2^15``). An entry is
    kept iff its lane is ``>= drop`` (``drop < 2^bits``: dropout below 1).

    Unsigned indices (no negative-index wrap-around) and masks compared in place of shifted
    lanes keep every loop vectorized (Cora, width 64: the masked pass 0.058 ms against
    0.065 at p = 0.5, 0.053 against 0.18 with 16-bit lanes)."""
    c = flags.size
    zero = np.float32(0.0)
    if bits == 16:
        d16 = np.int16(drop)
        u = np.uint64(e0)
        for q in range(c):
            flags[q] = scale if words[u + np.uint64(q)] >= d16 else zero
        return
    if bits == 8:
        d8 = np.uint8(drop)
        u = np.uint64(e0)
        for q in range(c):
            flags[q] = scale if raw[u + np.uint64(q)] >= d8 else zero
        return
    nbytes = raw.size
    field = (1 << bits) - 1
    if b0 + c <= nbytes:  # the whole row in one field (all but a few rows)
        # lane >= drop  <=>  byte & (field << shift) >= drop << shift: no shift per entry
        fmask = np.uint8(field << (s * bits))
        dmask = np.uint8(drop << (s * bits))
        u = np.uint64(b0)
        for q in range(c):
            flags[q] = scale if (raw[u + np.uint64(q)] & fmask) >= dmask else zero
    else:
        for q in range(c):
            e = e0 + q
            s = e // nbytes
            lane = np.uint8(raw[e - s * nbytes] >> np.uint8(s * bits)) & field
            flags[q] = scale if lane >= drop else zero


@numba.njit(**_JIT, inline="always")
def row_start(bits, nbytes, stride, offset, r0):
    """``(e, s, b)`` of row ``r0``'s first mask entry ``e = r0 * stride + offset``: its
    field ``s`` and byte ``b`` (``e = s * nbytes + b``) for lanes narrower than a byte."""
    e = r0 * stride + offset
    s = e // nbytes if 0 < bits < 8 else 0
    return e, s, e - s * nbytes


@numba.njit(**_JIT, inline="always")
def next_row(bits, nbytes, stride, e, s, b):
    """:func:`row_start` of the next row, without a division."""
    if 0 < bits < 8:
        b += stride
        while b >= nbytes:
            b -= nbytes
            s += 1
    return e + stride, s, b
