"""Layers: message-passing GNNs whose every layer owns its activation."""

from gnnleaky.nn.activation import (
    ACTIVATIONS,
    PReLU,
    SlopeBounds,
    activation,
    param_groups,
    slope_l1,
    slope_parameters,
    slopes,
)
from gnnleaky.nn.models import CONVS, Hidden, LeakyGNN
from gnnleaky.nn.stacked import StackedGNN

__all__ = [
    "ACTIVATIONS",
    "CONVS",
    "Hidden",
    "LeakyGNN",
    "PReLU",
    "SlopeBounds",
    "StackedGNN",
    "activation",
    "param_groups",
    "slope_l1",
    "slope_parameters",
    "slopes",
]
