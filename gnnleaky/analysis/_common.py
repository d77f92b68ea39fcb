"""Private helpers shared by the analysis modules."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor
from torch_geometric.utils import scatter

from gnnleaky._validation import (
    check_edge_index,
    check_edge_weight,
    check_finite,
    check_positive_int,
)
from gnnleaky.nn.functional import gcn_operator

# (check_finite and check_positive_int are the library's own, re-exported for the analyses)
__all__ = [
    "check_finite",
    "check_positive_int",
    "eval_mode",
    "graph_operator",
    "num_nodes_of",
    "propagate",
    "seeded",
    "slope_factor",
]


def num_nodes_of(edge_index: Tensor, num_nodes: int | None) -> int:
    if num_nodes is None:
        return int(edge_index.max()) + 1 if edge_index.numel() else 0
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 1:
        raise ValueError(f"num_nodes must be a positive int or None, got {num_nodes!r}")
    return num_nodes


def graph_operator(
    edge_index: Tensor,
    num_nodes: int,
    edge_weight: Tensor | None = None,
    normalize: bool = True,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """Edges and float64 weights of the propagation operator (``out[dst] += w * x[src]``).

    ``normalize=True`` gives LeakyGNN's GCN operator ``D^-1/2 (A + I) D^-1/2``, computed
    in ``dtype`` (use the model's dtype to get the operator the model really applies)
    and returned in float64.
    """
    check_edge_index(edge_index, num_nodes)
    check_edge_weight(edge_weight, edge_index.size(1))
    w = None if edge_weight is None else edge_weight.to(dtype)
    if normalize:
        ei, w = gcn_operator(edge_index, w, num_nodes, dtype=dtype)
        return ei, w.to(torch.float64)
    if w is None:
        w = torch.ones(edge_index.size(1), dtype=torch.float64)
    return edge_index, w.to(torch.float64)


def propagate(edge_index: Tensor, weight: Tensor, h: Tensor, num_nodes: int) -> Tensor:
    """Sparse ``A_hat @ h`` for ``h`` of shape ``[..., N, C]``."""
    src, dst = edge_index
    msg = h.index_select(-2, src) * weight.view(-1, 1).to(h.dtype)
    return scatter(msg, dst, dim=-2, dim_size=num_nodes, reduce="sum")


def slope_factor(alpha: float | Tensor, name: str = "negative_slope") -> float:
    r"""Lipschitz constant ``max(1, max |alpha|)`` of a leaky activation."""
    try:
        a = torch.as_tensor(alpha, dtype=torch.float64).detach()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a float or a tensor of slopes, got {alpha!r}") from None
    if a.numel() == 0 or not bool(torch.isfinite(a).all()):
        raise ValueError(f"{name} must be finite (a float or a tensor), got {alpha!r}")
    return max(1.0, float(a.abs().max()))


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block under ``torch.manual_seed(seed)`` without touching the caller's RNG."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``model`` in eval mode for a block and restore its mode after."""
    training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(training)
