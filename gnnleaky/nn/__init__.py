"""Layers: PyG's GNN models whose every layer owns its activation.

``from gnnleaky.nn import GCN`` in place of ``from torch_geometric.nn.models import GCN``.
"""

from gnnleaky.nn.activation import (
    ACTIVATIONS,
    ActivationSpec,
    PReLU,
    SlopeBounds,
    activation,
    param_groups,
    slope_l1,
    slope_parameters,
    slopes,
)
from gnnleaky.nn.models import (
    GAT,
    GCN,
    GCNII,
    GIN,
    MODELS,
    PNA,
    EdgeCNN,
    GraphSAGE,
    Hidden,
    LeakyGNN,
    model_class,
)

__all__ = [
    "ACTIVATIONS",
    "GAT",
    "GCN",
    "GCNII",
    "GIN",
    "MODELS",
    "PNA",
    "ActivationSpec",
    "EdgeCNN",
    "GraphSAGE",
    "Hidden",
    "LeakyGNN",
    "PReLU",
    "SlopeBounds",
    "activation",
    "model_class",
    "param_groups",
    "slope_l1",
    "slope_parameters",
    "slopes",
]
