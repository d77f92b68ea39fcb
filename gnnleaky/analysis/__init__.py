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
* :mod:`~gnnleaky.analysis.obstacle`: the graph obstacle problem, its exact solver and
  1-D closed form, and learned solutions with a ReLU, Leaky ReLU or softplus barrier;
* :mod:`~gnnleaky.analysis.autoencoder`: the reconstruction bias of a Leaky ReLU
  autoencoder, in closed form, by Monte Carlo and from a trained toy model, and a graph
  autoencoder's edge-probability bias per degree bucket;
* :mod:`~gnnleaky.analysis.shift`: PReLU slopes as a feature-shift detector (slope
  gradient against pre-activation skewness, detection AUC per layer);
* :mod:`~gnnleaky.analysis.training`: the small training loop the analyses use.

The derivations are in ``docs/theory.md``.
"""

from gnnleaky.analysis.attribution import Saliency, compare_saliency, saliency, with_activation
from gnnleaky.analysis.autoencoder import (
    Gaussian,
    LeakyAutoencoder1d,
    MonteCarloBias,
    PartialMoments,
    ShiftedExponential,
    StudentT,
    ToyAutoencoderFit,
    edge_probability_bias,
    gae_bias,
    monte_carlo_bias,
    optimal_alpha,
    optimal_gain,
    partial_moments,
    reconstruction_bias,
    reconstruction_mse,
    reconstruction_table,
    train_toy_autoencoder,
)
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
from gnnleaky.analysis.obstacle import (
    BARRIERS,
    LearnedObstacle,
    Membrane,
    Obstacle1D,
    ObstacleSolution,
    PenalizedObstacle,
    barrier_penalty,
    fit_obstacle,
    grid_membrane,
    obstacle_1d_closed_form,
    obstacle_energy,
    obstacle_table,
    path_membrane,
    solve_obstacle,
    solve_penalized_obstacle,
)
from gnnleaky.analysis.shift import (
    DETECTORS,
    SHIFTS,
    shift_detection,
    shift_features,
    shift_sensor,
)
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
    "BARRIERS",
    "DETECTORS",
    "SHIFTS",
    "ContractionCheck",
    "Gaussian",
    "LeakyAutoencoder1d",
    "LearnedObstacle",
    "Membrane",
    "MonteCarloBias",
    "NonNormalWarning",
    "Obstacle1D",
    "ObstacleSolution",
    "PartialMoments",
    "PenalizedObstacle",
    "Saliency",
    "ShiftedExponential",
    "SlopeRecorder",
    "StabilityBound",
    "StudentT",
    "ToyAutoencoderFit",
    "TwoNodeDynamics",
    "accuracy",
    "barrier_penalty",
    "compare_saliency",
    "contraction_check",
    "dead_units",
    "edge_probability_bias",
    "fit_node_classifier",
    "fit_obstacle",
    "gae_bias",
    "gradient_norms",
    "grid_membrane",
    "lipschitz_bound",
    "lipschitz_lower_bound",
    "monte_carlo_bias",
    "obstacle_1d_closed_form",
    "obstacle_energy",
    "obstacle_table",
    "operator_norm",
    "optimal_alpha",
    "optimal_gain",
    "partial_moments",
    "path_membrane",
    "preactivation_skewness",
    "reconstruction_bias",
    "reconstruction_mse",
    "reconstruction_table",
    "recurrent_stability_bound",
    "saliency",
    "shift_detection",
    "shift_features",
    "shift_sensor",
    "slope_drift",
    "slope_gating",
    "slope_table",
    "slope_trajectories",
    "solve_obstacle",
    "solve_penalized_obstacle",
    "train_toy_autoencoder",
    "two_node_closed_form",
    "two_node_energy_table",
    "two_node_operator",
    "two_node_simulate",
    "with_activation",
]
