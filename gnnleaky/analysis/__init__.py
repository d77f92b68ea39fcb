r"""Theory and diagnostics that tie the negative slope to oversmoothing, stability,
robustness and interpretability.

* :mod:`~gnnleaky.analysis.dynamics`: two-node dynamics, closed form and simulation;
* :mod:`~gnnleaky.analysis.stability`: stability bound of the weight-tied recurrence
  and an empirical contraction check;
* :mod:`~gnnleaky.analysis.lipschitz`: Lipschitz certificate of a GCN LeakyGNN and an
  empirical lower bound;
* :mod:`~gnnleaky.analysis.diagnostics`: dead units, gradient norms, slope
  trajectories, pre-activation skewness, slope drift under feature shift;
* :mod:`~gnnleaky.analysis.attribution`: gradient saliency (also as a PyG explainer
  algorithm) and ReLU against Leaky ReLU on the same weights;
* :mod:`~gnnleaky.analysis.gating`: L1 slope gating;
* :mod:`~gnnleaky.analysis.training`: the small training loop the analyses use.

The derivations are in ``docs/theory.md``.
"""

from gnnleaky.analysis.attribution import Saliency, compare_saliency, saliency, with_activation
from gnnleaky.analysis.diagnostics import (
    dead_units,
    gradient_norms,
    preactivation_skewness,
    slope_drift,
    slope_trajectories,
)
from gnnleaky.analysis.dynamics import (
    TwoNodeDynamics,
    two_node_closed_form,
    two_node_energy_table,
    two_node_operator,
    two_node_simulate,
)
from gnnleaky.analysis.gating import slope_gating
from gnnleaky.analysis.lipschitz import lipschitz_bound, lipschitz_lower_bound, operator_norm
from gnnleaky.analysis.stability import (
    ContractionCheck,
    NonNormalWarning,
    StabilityBound,
    contraction_check,
    recurrent_stability_bound,
)
from gnnleaky.analysis.training import (
    SlopeRecorder,
    accuracy,
    fit_node_classifier,
    slope_table,
)

__all__ = [
    "ContractionCheck",
    "NonNormalWarning",
    "Saliency",
    "SlopeRecorder",
    "StabilityBound",
    "TwoNodeDynamics",
    "accuracy",
    "compare_saliency",
    "contraction_check",
    "dead_units",
    "fit_node_classifier",
    "gradient_norms",
    "lipschitz_bound",
    "lipschitz_lower_bound",
    "operator_norm",
    "preactivation_skewness",
    "recurrent_stability_bound",
    "saliency",
    "slope_drift",
    "slope_gating",
    "slope_table",
    "slope_trajectories",
    "two_node_closed_form",
    "two_node_energy_table",
    "two_node_operator",
    "two_node_simulate",
    "with_activation",
]
