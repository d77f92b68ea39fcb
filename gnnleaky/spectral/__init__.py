r"""Spectral tools: how much high-frequency signal is left at each layer.

Pure, differentiable functions (float64 accumulation; features ``[N, C]`` or stacked
``[K, N, C]``; ``batch=`` for many graphs) on an explicitly chosen Laplacian
(:mod:`gnnleaky.spectral.operators`), plus :class:`LayerProbe`, which records them layer by
layer on any PyG model. See ``docs/spectral.md``.

* energies: :func:`dirichlet_energy`, :func:`rayleigh_quotient`, :func:`mad`,
  :func:`mad_gap`, :func:`effective_rank`, :func:`frobenius_norm`
* exact graph Fourier (small graphs): :func:`eigenbasis`, :func:`graph_fourier_transform`,
  :func:`band_energy`, :func:`high_frequency_ratio`
* kernel polynomial method (large graphs): :func:`spectral_density`,
  :func:`kpm_band_energy`, :func:`kpm_high_frequency_ratio`, :func:`chebyshev_moments`
* per layer: :data:`METRICS`, :func:`layer_metrics`, :func:`layer_records`,
  :class:`LayerProbe`, :class:`GraphCache`
"""

from gnnleaky.spectral.energy import (
    dirichlet_energy,
    effective_rank,
    frobenius_norm,
    mad,
    mad_gap,
    madgap_pairs,
    rayleigh_quotient,
)
from gnnleaky.spectral.fourier import (
    METHODS,
    band_energy,
    band_weights,
    eigenbasis,
    graph_fourier_transform,
    high_frequency_ratio,
)
from gnnleaky.spectral.kpm import (
    KERNELS,
    SpectralDensity,
    chebyshev_moments,
    jackson_damping,
    kpm_band_energy,
    kpm_high_frequency_ratio,
    spectral_density,
)
from gnnleaky.spectral.operators import DENSE_MAX_NODES, NORMALIZATIONS, GraphCache
from gnnleaky.spectral.probe import METRICS, STAGES, LayerProbe, layer_metrics, layer_records

__all__ = [
    "DENSE_MAX_NODES",
    "KERNELS",
    "METHODS",
    "METRICS",
    "NORMALIZATIONS",
    "STAGES",
    "GraphCache",
    "LayerProbe",
    "SpectralDensity",
    "band_energy",
    "band_weights",
    "chebyshev_moments",
    "dirichlet_energy",
    "effective_rank",
    "eigenbasis",
    "frobenius_norm",
    "graph_fourier_transform",
    "high_frequency_ratio",
    "jackson_damping",
    "kpm_band_energy",
    "kpm_high_frequency_ratio",
    "layer_metrics",
    "layer_records",
    "mad",
    "mad_gap",
    "madgap_pairs",
    "rayleigh_quotient",
    "spectral_density",
]
