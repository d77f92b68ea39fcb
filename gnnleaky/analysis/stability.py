r"""Stability of the weight-tied recurrence :math:`h \mapsto \phi(\hat A h W)`.

A Leaky ReLU of slope :math:`\alpha` is :math:`\max(1, |\alpha|)`-Lipschitz, so in the
Frobenius norm

.. math::
    \|\phi(\hat A h W) - \phi(\hat A g W)\|_F \le \max(1, |\alpha|)\,
    \|\hat A\|_2\, \|W\|_2\, \|h - g\|_F,

and the map is non-expansive when :math:`\|W\|_2 \le 1 / (\max(1, |\alpha|)\,
\|\hat A\|_2)`. For a normal :math:`W` (:math:`W W^\top = W^\top W`) the spectral norm
equals the spectral radius :math:`\rho(W)`, which gives the test
:math:`\rho(W) \le 1 / \max(1, |\alpha|)` for the GCN operator of an undirected graph
(:math:`\|\hat A\|_2 = 1`). For a non-normal :math:`W`, :math:`\rho(W) < \|W\|_2` is
possible and the radius certifies nothing. The bound is tight: in the positive orthant
(:math:`\alpha \le 1`) or the negative orthant (:math:`\alpha > 1`) the activation is
linear with slope :math:`\max(1, |\alpha|)`, so any :math:`\rho(W)` above it makes
suitable pairs of states move apart.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from gnnleaky.analysis._common import (
    check_finite,
    check_positive_int,
    graph_operator,
    num_nodes_of,
    propagate,
    slope_factor,
)

__all__ = [
    "ContractionCheck",
    "NonNormalWarning",
    "StabilityBound",
    "contraction_check",
    "recurrent_stability_bound",
]


class NonNormalWarning(UserWarning):
    """The weight is not normal: its spectral radius is not its spectral norm."""


@dataclass(frozen=True)
class StabilityBound:
    r"""Result of :func:`recurrent_stability_bound`.

    Attributes:
        rho (float): Spectral radius :math:`\rho(W)`.
        spectral_norm (float): :math:`\|W\|_2`.
        bound (float): :math:`1 / (\max(1, |\alpha|)\, \|\hat A\|_2)`.
        holds (bool): :math:`\rho(W) \le` ``bound``.
        is_normal (bool): Whether :math:`W` is normal (then ``rho == spectral_norm``).
        certified (bool): :math:`\|W\|_2 \le` ``bound``: the map is non-expansive,
            whether or not :math:`W` is normal.
        lipschitz (float): :math:`\max(1, |\alpha|)\, \|\hat A\|_2\, \|W\|_2`.
    """

    rho: float
    spectral_norm: float
    bound: float
    holds: bool
    is_normal: bool
    certified: bool
    lipschitz: float


def recurrent_stability_bound(
    W: Tensor,
    alpha: float | Tensor,
    *,
    operator_norm: float = 1.0,
    rtol: float = 1e-9,
    normal_tol: float = 1e-8,
) -> StabilityBound:
    r"""Check :math:`\rho(W) \le 1 / \max(1, |\alpha|)` for the map :math:`h \mapsto
    \phi_\alpha(\hat A h W)`.

    .. math::
        \rho(W) \le \frac{1}{\max(1, |\alpha|)\, \|\hat A\|_2}

    For a normal :math:`W` this is equivalent to the Lipschitz constant
    :math:`\max(1, |\alpha|)\|\hat A\|_2\|W\|_2` being at most 1 (non-expansive map).
    A non-normal :math:`W` raises a :class:`NonNormalWarning`: then only
    ``certified`` (the spectral-norm test) is a guarantee.

    Args:
        W (Tensor): Square weight ``[C, C]``, applied as ``h @ W``.
        alpha (float or Tensor): Negative slope, or a tensor of per-channel slopes
            (the largest :math:`|\alpha_c|` counts).
        operator_norm (float, optional): :math:`\|\hat A\|_2`; 1 for the GCN operator
            of an undirected graph, see :func:`~gnnleaky.analysis.operator_norm`.
            (default: ``1.0``)
        rtol (float, optional): Relative tolerance of the comparisons.
            (default: ``1e-9``)
        normal_tol (float, optional): :math:`W` counts as normal when
            :math:`\|WW^\top - W^\top W\|_F \le` ``normal_tol`` :math:`\|W\|_F^2`.
            (default: ``1e-8``)

    Example:
        >>> res = recurrent_stability_bound(0.5 * torch.eye(3), alpha=1.5)
        >>> res.bound, res.holds, res.is_normal
        (0.666..., True, True)
        >>> recurrent_stability_bound(0.7 * torch.eye(3), alpha=1.5).holds
        False
    """
    if not isinstance(W, Tensor) or W.dim() != 2 or W.size(0) != W.size(1):
        shape = tuple(W.shape) if isinstance(W, Tensor) else type(W).__name__
        raise ValueError(f"W must be a square 2-D tensor [C, C], got {shape}")
    if not bool(torch.isfinite(W).all()):
        raise ValueError("W contains NaN or Inf values")
    op = check_finite("operator_norm", operator_norm, minimum=0.0)
    w = W.detach().to(torch.float64)
    rho = float(torch.linalg.eigvals(w).abs().max()) if w.numel() else 0.0
    norm = float(torch.linalg.matrix_norm(w, ord=2)) if w.numel() else 0.0
    comm = torch.linalg.matrix_norm(w @ w.T - w.T @ w)
    is_normal = bool(comm <= normal_tol * max(float(w.pow(2).sum()), 1e-300))
    factor = slope_factor(alpha, "alpha")
    bound = float("inf") if op == 0 else 1.0 / (factor * op)
    if not is_normal:
        warnings.warn(
            f"W is not normal (rho={rho:.4g} < ||W||_2={norm:.4g}): the spectral radius "
            f"does not bound the Lipschitz constant; use .certified",
            NonNormalWarning,
            stacklevel=2,
        )
    return StabilityBound(
        rho=rho,
        spectral_norm=norm,
        bound=bound,
        holds=rho <= bound * (1 + rtol),
        is_normal=is_normal,
        certified=norm <= bound * (1 + rtol),
        lipschitz=factor * op * norm,
    )


class ContractionCheck(NamedTuple):
    """Result of :func:`contraction_check`.

    ``distances[t, k]`` is :math:`\\|h_t - g_t\\|_F` for pair ``k`` (``steps + 1`` rows)
    and ``ratios[t, k] = distances[t + 1, k] / distances[t, k]`` (0 where the pair has
    already merged). ``max_ratio`` is the largest ratio and ``grows`` whether any
    ratio exceeds ``1 + rtol``.
    """

    ratios: Tensor
    distances: Tensor
    max_ratio: float
    grows: bool


def contraction_check(
    W: Tensor,
    alpha: float | Tensor,
    edge_index: Tensor,
    num_nodes: int | None = None,
    edge_weight: Tensor | None = None,
    *,
    steps: int = 32,
    num_pairs: int = 16,
    states: tuple[Tensor, Tensor] | None = None,
    normalize: bool = True,
    rtol: float = 1e-6,
    seed: int = 0,
) -> ContractionCheck:
    r"""Iterate pairs of states through :math:`h \mapsto \phi_\alpha(\hat A h W)` and
    measure whether their distance ever grows.

    .. math::
        r_t = \frac{\|\phi(\hat A h_t W) - \phi(\hat A g_t W)\|_F}{\|h_t - g_t\|_F}

    Computed in float64 with sparse propagation.

    Args:
        W (Tensor): Square weight ``[C, C]``, applied as ``h @ W``.
        alpha (float or Tensor): Negative slope, or per-channel slopes ``[C]``.
        edge_index (Tensor): Edges ``[2, E]``.
        num_nodes (int, optional): Number of nodes. (default: ``max index + 1``)
        edge_weight (Tensor, optional): Edge weights ``[E]``.
        steps (int, optional): Number of iterations. (default: ``32``)
        num_pairs (int, optional): Random pairs when ``states`` is not given.
            (default: ``16``)
        states (tuple, optional): Start states ``(h0, g0)``, each ``[N, C]`` or
            ``[K, N, C]``; random standard normal (seeded) when ``None``.
        normalize (bool, optional): Use the GCN operator
            :math:`\tilde D^{-1/2}(A+I)\tilde D^{-1/2}`; else the raw weighted adjacency.
            (default: ``True``)
        rtol (float, optional): Tolerance of ``grows``. (default: ``1e-6``)
        seed (int, optional): Seed of the random states. (default: ``0``)

    Example:
        >>> ring = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
        >>> contraction_check(0.9 * torch.eye(4), 0.2, ring, steps=8).grows
        False
    """
    n = num_nodes_of(edge_index, num_nodes)
    check_positive_int("steps", steps)
    check_positive_int("num_pairs", num_pairs)
    if not isinstance(W, Tensor) or W.dim() != 2 or W.size(0) != W.size(1):
        raise ValueError("W must be a square 2-D tensor [C, C]")
    w = W.detach().to(torch.float64)
    c = w.size(0)
    slope_factor(alpha, "alpha")  # validates
    a = torch.as_tensor(alpha, dtype=torch.float64).detach()
    if a.dim() > 1 or (a.dim() == 1 and a.numel() not in (1, c)):
        raise ValueError(f"alpha must be a float or a tensor of {c} per-channel slopes")
    ei, ew = graph_operator(edge_index, n, edge_weight, normalize)
    if states is None:
        gen = torch.Generator().manual_seed(seed)
        h = torch.randn(num_pairs, n, c, generator=gen, dtype=torch.float64)
        g = torch.randn(num_pairs, n, c, generator=gen, dtype=torch.float64)
    else:
        h, g = (torch.as_tensor(s, dtype=torch.float64) for s in states)
        if h.shape != g.shape or h.dim() not in (2, 3) or h.shape[-2:] != (n, c):
            raise ValueError(
                f"states must be two tensors of shape [N, C] or [K, N, C] "
                f"with N={n}, C={c}; got {tuple(h.shape)} and {tuple(g.shape)}"
            )
        if h.dim() == 2:
            h, g = h.unsqueeze(0), g.unsqueeze(0)

    def step(s: Tensor) -> Tensor:
        z = propagate(ei, ew, s, n) @ w
        return torch.where(z >= 0, z, a * z)

    dist = [(h - g).flatten(1).norm(dim=1)]
    for _ in range(steps):
        h, g = step(h), step(g)
        dist.append((h - g).flatten(1).norm(dim=1))
    distances = torch.stack(dist)
    prev, cur = distances[:-1], distances[1:]
    ratios = torch.where(prev > 0, cur / prev.clamp_min(1e-300), torch.zeros_like(cur))
    max_ratio = float(ratios.max())
    return ContractionCheck(ratios, distances, max_ratio, max_ratio > 1 + rtol)
