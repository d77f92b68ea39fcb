"""What one call of the fast path computes with, built in one place.

:class:`Layout` is the shape of a stack (from its module); :class:`FastGraph` the graph's
operators as numpy views (built once per graph); :class:`Workspace` the activation
buffers a stack reuses from call to call (owned by the stack); :class:`Plan` everything
else one call needs, frozen once built by :func:`build_plan`.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["FastGraph", "Layout", "Plan", "Workspace", "build_plan"]


@dataclass(frozen=True)
class Layout:
    """The shape of a stack of K GCNs: ``widths[l]`` is layer ``l``'s input width,
    layers ``0 .. num_acts - 1`` have an activation (the last layer has none)."""

    num_models: int
    widths: tuple[int, ...]
    num_layers: int
    num_acts: int
    residual: bool

    def __post_init__(self) -> None:
        if self.num_acts != self.num_layers - 1:
            raise ValueError(
                f"the fast path computes stacks whose last layer alone has no activation; "
                f"got num_acts={self.num_acts} for num_layers={self.num_layers}"
            )


def _csr_arrays(a: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        a.crow_indices().numpy(),
        a.col_indices().numpy(),
        a.values().detach().contiguous().numpy(),
    )


class FastGraph:
    """A graph's operators as numpy CSR arrays: ``a`` (:math:`\\hat A`), ``a_t`` (its
    transpose), and, for sparse features, ``feats`` (:math:`X`) and ``feats_t``."""

    def __init__(self, a: Tensor, a_t: Tensor, feats: Tensor | None, feats_t: Tensor | None,
                 x: Tensor) -> None:  # fmt: skip
        self.a = _csr_arrays(a)
        self.a_t = _csr_arrays(a_t)
        self.feats = None if feats is None else _csr_arrays(feats)
        self.feats_t = None if feats_t is None else _csr_arrays(feats_t)
        self.x = x
        self.num_nodes = x.size(0)


class _Token:
    """Held by the autograd graph of a training forward while it uses a workspace."""


class Workspace:
    """Activation buffers of one stack, reused from call to call (fresh memory costs its
    page faults when first written).

    ``h[l]`` is every model's output of activated layer ``l`` (``[K, N, C]``), ``z[l]``
    its pre-activation where the backward cannot read ``phi'`` off ``h`` (allocated on
    demand), ``p`` each model's ``H W`` and ``eval`` two buffers per model used in turn
    by an evaluation forward; ``scratch`` each model's five backward rows. A training
    forward claims ``h`` and ``z`` until its autograd graph is freed (by the backward or
    as garbage); a second training forward meanwhile gets a workspace of its own.
    """

    def __init__(self, layout: Layout, n: int) -> None:
        self.key = (layout, n)
        self.n = n
        widths = layout.widths
        k, acts = layout.num_models, layout.num_acts
        self.h = [torch.empty(k, n, widths[i + 1]) for i in range(acts)]
        self.z: list[Tensor | None] = [None] * acts
        width = max(widths[1:], default=0)
        self.p = torch.empty(k, n * width)
        self.eval = torch.empty(k, 2, n * width)
        self.scratch = torch.empty(k, 5, n * max(widths, default=0))
        self._claim: Any = None

    def need_z(self, layers: Sequence[int]) -> None:
        """Allocate the pre-activation buffers of ``layers`` (once)."""
        for layer in layers:
            if self.z[layer] is None:
                self.z[layer] = torch.empty_like(self.h[layer])

    def view(self, flat: Tensor, c: int) -> tuple[Tensor, np.ndarray]:
        """A flat buffer's first ``N c`` entries as an ``[N, c]`` tensor and numpy view."""
        t = flat[: self.n * c].view(self.n, c)
        return t, t.numpy()

    def claim(self) -> _Token | None:
        """A token for ``h`` and ``z`` if no live graph holds them, else ``None``."""
        if self._claim is not None and self._claim() is not None:
            return None
        token = _Token()
        self._claim = weakref.ref(token)
        return token


@dataclass(frozen=True)
class Plan:
    """One call of the fast path: the stack's layout and graph, the detached parameters
    and their views, dropout, and what the backward needs kept."""

    layout: Layout
    graph: FastGraph
    workspace: Workspace
    weights: tuple[Tensor, ...]  # [K, in, out] per layer
    weights_np: tuple[np.ndarray, ...]
    biases_np: tuple[np.ndarray, ...]  # [K, out] per layer
    slopes_np: np.ndarray | None  # [A, K, C]
    keep_z: tuple[tuple[bool, ...], ...]  # per activated layer and model
    p: float  # dropout probability (0 in eval mode)
    generators: tuple[torch.Generator, ...] | None
    need_grad: bool
    threads: int


def build_plan(
    layout: Layout,
    graph: FastGraph,
    workspace: Workspace,
    weights: Sequence[Tensor],
    biases: Sequence[Tensor],
    slopes: Tensor | None,
    dropout: Any,
    *,
    need_grad: bool,
    slopes_grad: bool,
    threads: int,
) -> Plan:
    """The :class:`Plan` of one call (``dropout``: the stack's
    :class:`~gnnleaky.engine.SeededDropout`; ``slopes``: ``[A, K, C]``)."""
    weights = tuple(w.detach() for w in weights)
    slopes = None if slopes is None else slopes.detach()
    k, acts = layout.num_models, layout.num_acts
    # z is kept where phi' cannot be read off the output h: residuals (h has the input
    # added), learned slopes (their gradient needs z) and negative slopes (h < 0 for z > 0)
    always = layout.residual or (need_grad and slopes_grad)
    negative = (slopes < 0).any(-1).tolist() if slopes is not None else [[False] * k] * acts
    keep_z = tuple(tuple(always or bool(negative[i][j]) for j in range(k)) for i in range(acts))
    return Plan(
        layout=layout,
        graph=graph,
        workspace=workspace,
        weights=weights,
        weights_np=tuple(w.numpy() for w in weights),
        biases_np=tuple(b.detach().numpy() for b in biases),
        slopes_np=None if slopes is None else slopes.numpy(),
        keep_z=keep_z,
        p=float(dropout.p) if dropout.training else 0.0,
        generators=None if dropout.generators is None else tuple(dropout.generators),
        need_grad=need_grad,
        threads=threads,
    )
