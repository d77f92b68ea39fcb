r"""The engine in a user's own training loop: :func:`accelerate`."""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import Tensor

from gnnleaky.engine import fast
from gnnleaky.engine.dropout import SeededDropout
from gnnleaky.engine.stacked import (
    act_spec,
    check_stackable,
    fast_graph,
    graph_operators,
)
from gnnleaky.nn.functional import OperatorCache
from gnnleaky.nn.models import GCN

__all__ = ["AcceleratedGCN", "accelerate"]

log = logging.getLogger(__name__)


def _eager() -> bool:
    if torch.jit.is_scripting() or torch.compiler.is_compiling():
        return False
    return not torch.fx._symbolic_trace.is_fx_symbolic_tracing()


class _Dropout:
    """The engine's view of a model's dropout: probability, generators, mode."""

    def __init__(self, p: float, generators: Any, training: bool) -> None:
        self.p, self.generators, self.training = p, generators, training


class AcceleratedGCN(GCN):
    """A :class:`gnnleaky.nn.GCN` whose forward and backward run on the engine's fast path
    wherever it computes the same function, and as the model's own forward elsewhere.
    Made by :func:`accelerate`; it shares the model's parameters, buffers and submodules.
    """

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        edge_attr: Tensor | None = None,
        batch: Tensor | None = None,
        batch_size: int | None = None,
        num_sampled_nodes_per_hop: list[int] | None = None,
        num_sampled_edges_per_hop: list[int] | None = None,
    ) -> Tensor:
        """The model's forward (see :meth:`gnnleaky.nn.LeakyGNN.forward`), on the fast path
        for float32 CPU features without input gradients and a full graph."""
        if (
            edge_attr is None
            and batch is None
            and num_sampled_nodes_per_hop is None
            and _eager()
            and self._fits(x, edge_index, edge_weight)
        ):
            ops = self._ops(x, edge_index, edge_weight)
            if ops is not None:
                return self._fast(x, ops)
        return super().forward(
            x,
            edge_index,
            edge_weight,
            edge_attr,
            batch,
            batch_size,
            num_sampled_nodes_per_hop,
            num_sampled_edges_per_hop,
        )

    def _fits(self, x: Any, edge_index: Any, edge_weight: Any) -> bool:
        f32 = torch.float32
        return (
            fast.available()
            and isinstance(x, Tensor)
            and x.dim() == 2
            and x.dtype == f32
            and x.device.type == "cpu"
            and not x.requires_grad
            and isinstance(edge_index, Tensor)
            and edge_index.layout == torch.strided
            and (edge_weight is None or not edge_weight.requires_grad)
            and all(p.dtype == f32 and p.device.type == "cpu" for p in self.parameters())
            and isinstance(self.dropout, (torch.nn.Dropout, SeededDropout))
        )

    def _ops(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Any:
        """The graph's operators, or ``None`` where the engine does not compute what the
        model computes (negative edge weights: the model's operator takes them, the
        engine's refuses them)."""
        self._eager_checks(x, edge_index, edge_weight)

        def build() -> Any:
            if edge_weight is not None and edge_weight.numel() and bool((edge_weight < 0).any()):
                return None
            return graph_operators(x, edge_index, edge_weight)

        return self._engine_graph.get(build, x, edge_index, edge_weight)

    def _slopes(self) -> Tensor | None:
        """``[A, 1, C]``: each activated layer's slopes (learned ones with their graph)."""
        acts = self.num_activations
        if not acts:
            return None
        width = self.convs[0].out_channels
        rows = []
        for act in self.acts[:acts]:
            kind, value, _, _ = act_spec(act, width)
            if kind == "fixed":
                rows.append(torch.full((width,), value))
            else:
                rows.append(act.weight.reshape(-1).expand(width))
        return torch.stack(rows).unsqueeze(1)

    def _fast(self, x: Tensor, ops: Any) -> Tensor:
        n = x.size(0)
        layout = fast.Layout(
            1,
            (self.convs[0].in_channels, *(c.out_channels for c in self.convs)),
            self.num_layers,
            self.num_activations,
            bool(self.residual),
        )
        ws = self.fast_workspace
        if ws is None or ws.key != (layout, n):
            ws = self.fast_workspace = fast.Workspace(layout, n)
        drop = self.dropout
        gens = getattr(drop, "generators", None)
        dropout = _Dropout(
            float(drop.p), gens if gens is not None and len(gens) == 1 else None, drop.training
        )
        weights = [c.lin.weight.t().contiguous().unsqueeze(0) for c in self.convs]
        biases = [c.bias.unsqueeze(0) for c in self.convs]
        out = fast.fast_forward(
            layout, fast_graph(x, ops), ws, weights, biases, self._slopes(), dropout
        )
        return out[0]


def accelerate(model: torch.nn.Module) -> torch.nn.Module:
    r"""The model, computed by the engine wherever that computes the same function.

    For a :class:`gnnleaky.nn.GCN` the engine can compute (no norms or jumping knowledge,
    GCNConv's defaults, ReLU / Leaky ReLU / PReLU / identity activations): an
    :class:`AcceleratedGCN` that shares the model's parameters, buffers and submodules
    (``parameters()``, ``state_dict()`` and an optimizer made on either are the same)
    and returns the model's outputs. Its forward runs on the engine's fast path for
    float32 CPU features without input gradients on a full graph, and as the model's own
    forward otherwise (CUDA, float64, sampled subgraphs, negative edge weights, ...). In
    training mode dropout draws the engine's masks, from the model's
    :class:`~gnnleaky.engine.SeededDropout` generator if it has one, else from torch's
    default generator: the same distribution as ``torch.nn.Dropout``, other random
    numbers. Any other model is returned as it is.

    Example:
        >>> from gnnleaky.nn import GCN
        >>> model = GCN(16, 32, num_layers=8, out_channels=3, act="leaky_relu")
        >>> fast_model = accelerate(model)
        >>> fast_model.state_dict().keys() == model.state_dict().keys()
        True
        >>> x, edge_index = torch.randn(10, 16), torch.tensor([[0, 1, 2], [1, 2, 0]])
        >>> bool(torch.allclose(fast_model.eval()(x, edge_index),
        ...                     model.eval()(x, edge_index), atol=1e-5))
        True
    """
    if isinstance(model, AcceleratedGCN):
        return model
    if type(model) is not GCN:
        log.info("accelerate: %s is not a gnnleaky.nn.GCN; returned as it is",
                 type(model).__name__)  # fmt: skip
        return model
    try:
        check_stackable(model)
    except ValueError as err:
        log.info("accelerate: the engine cannot compute this model (%s)", err)
        return model
    acc = copy.copy(model)  # the same parameter, buffer and submodule dicts
    acc.__class__ = AcceleratedGCN
    acc._engine_graph = OperatorCache()
    acc.fast_workspace = None
    return acc
