r"""Two-node dynamics :math:`h_{t+1} = \phi(P h_t)`: closed form and simulation.

On the graph with two nodes and one edge every signal splits into a low-frequency
(mean) part and a high-frequency (alternating) part,

.. math::
    h = c\,(1, 1) + a\,(1, -1), \qquad
    E_{\mathrm{LF}}(h) = 2c^2 = \tfrac{(h_0 + h_1)^2}{2}, \qquad
    E_{\mathrm{HF}}(h) = 2a^2 = \tfrac{(h_0 - h_1)^2}{2},

so :math:`E_{\mathrm{LF}} + E_{\mathrm{HF}} = \|h\|^2` and the Dirichlet energy
:math:`h^\top L h = (h_0 - h_1)^2` (unnormalized Laplacian) is :math:`2E_{\mathrm{HF}}`.
Two operators are compared:

* ``self_loops=False``: the adjacency :math:`P = [[0, 1], [1, 0]]`, which maps
  :math:`(c, a) \mapsto (c, -a)`: the alternating part flips sign at every step.
* ``self_loops=True``: the GCN operator
  :math:`\hat P = D^{-1/2}(A + I)D^{-1/2} = [[\tfrac12, \tfrac12], [\tfrac12, \tfrac12]]`,
  which annihilates :math:`(1, -1)` before the activation, so
  :math:`E_{\mathrm{HF}} = 0` after the first step for every slope.

With a Leaky ReLU of slope :math:`\alpha \ge 0` and :math:`s = |a|`, the three sign
regions of :math:`(c, s)` are each invariant, which gives the closed form
(:math:`t \ge 0`, :math:`0^0 = 1`) for :math:`P`:

.. math::
    (c_t, s_t) = \begin{cases}
        (c, s) & c \ge s \quad \text{(both nodes} \ge 0) \\
        \alpha^t (c, s) & c \le -s \quad \text{(both nodes} \le 0) \\
        \big(\tfrac{p - \alpha^t q}{2}, \tfrac{p + \alpha^t q}{2}\big),\;
        p = s + c,\; q = s - c & |c| < s \quad \text{(mixed signs)}
    \end{cases}

and :math:`a_t = (-1)^t \operatorname{sign}(a)\, s_t`: in the mixed region the negative
node alternates every step, :math:`p` is conserved and :math:`q` shrinks by
:math:`\alpha` per step. All three cases are non-decreasing in :math:`\alpha`, so a
larger slope keeps more high-frequency energy at every layer. For :math:`\hat P`:
:math:`a_t = 0` and :math:`c_t = c` (:math:`c \ge 0`) or :math:`\alpha^t c` (:math:`c < 0`)
for :math:`t \ge 1`. See ``docs/theory.md`` for the derivation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "TwoNodeDynamics",
    "two_node_closed_form",
    "two_node_energy_table",
    "two_node_operator",
    "two_node_simulate",
]


class TwoNodeDynamics(NamedTuple):
    """Trajectory of the two-node map.

    ``h[t]`` is the state after ``t`` steps (``h[0]`` the start), with the shape of the
    start vector (``[2]`` or ``[2, C]``); ``hf_energy[t]`` and ``lf_energy[t]`` are
    :math:`E_{HF}(h_t)` and :math:`E_{LF}(h_t)` summed over channels, length
    ``depth + 1``, float64.
    """

    h: Tensor
    hf_energy: Tensor
    lf_energy: Tensor


def two_node_operator(self_loops: bool = False) -> Tensor:
    r"""The two-node propagation matrix, float64.

    Args:
        self_loops (bool, optional): ``False`` gives the adjacency
            :math:`P = [[0, 1], [1, 0]]`; ``True`` the GCN operator
            :math:`D^{-1/2}(A + I)D^{-1/2}` (what PyG's ``gcn_norm`` computes, up to
            its rounding: ``gcn_norm`` gives ``0.4999999999999999``; the exact
            ``0.5`` is used so that the closed form holds to the last bit).
            (default: ``False``)

    Example:
        >>> two_node_operator(self_loops=True).tolist()
        [[0.5, 0.5], [0.5, 0.5]]
    """
    if self_loops:
        return torch.full((2, 2), 0.5, dtype=torch.float64)
    return torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)


def _check(h0: Tensor | Sequence[float], negative_slope: float, depth: int) -> Tensor:
    h0 = torch.as_tensor(h0, dtype=torch.float64)
    if h0.dim() not in (1, 2) or h0.size(0) != 2:
        raise ValueError(f"h0 must have shape [2] or [2, C], got shape {tuple(h0.shape)}")
    if not bool(torch.isfinite(h0).all()):
        raise ValueError("h0 contains NaN or Inf values")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth must be an int >= 0, got {depth!r}")
    if not math.isfinite(float(negative_slope)):
        raise ValueError(f"negative_slope must be a finite float, got {negative_slope!r}")
    return h0


def _energies(h: Tensor) -> tuple[Tensor, Tensor]:
    # h: [T, 2, ...]; energies summed over channels.
    diff = (h[:, 0] - h[:, 1]).reshape(h.size(0), -1)
    tot = (h[:, 0] + h[:, 1]).reshape(h.size(0), -1)
    return (diff.pow(2) / 2).sum(-1), (tot.pow(2) / 2).sum(-1)


def two_node_simulate(
    h0: Tensor | Sequence[float],
    negative_slope: float,
    depth: int,
    *,
    self_loops: bool = False,
) -> TwoNodeDynamics:
    r"""Iterate :math:`h_{t+1} = \mathrm{LeakyReLU}_\alpha(P h_t)` on two nodes (float64).

    Args:
        h0 (Tensor or sequence): Start state, shape ``[2]`` or ``[2, C]``.
        negative_slope (float): Slope :math:`\alpha` (any finite value).
        depth (int): Number of steps.
        self_loops (bool, optional): Use :math:`\hat P` instead of :math:`P`.
            (default: ``False``)

    Returns:
        :class:`TwoNodeDynamics` with ``depth + 1`` states.

    Example:
        >>> out = two_node_simulate([1.0, -1.0], 0.5, 2)
        >>> out.h.tolist()  # the negative node alternates
        [[1.0, -1.0], [-0.5, 1.0], [1.0, -0.25]]
        >>> out.hf_energy.tolist()
        [2.0, 1.125, 0.78125]
    """
    h0 = _check(h0, negative_slope, depth)
    op = two_node_operator(self_loops)
    states = [h0]
    for _ in range(depth):
        x = states[-1]
        states.append(F.leaky_relu(torch.einsum("ij,j...->i...", op, x), float(negative_slope)))
    h = torch.stack(states)
    hf, lf = _energies(h)
    return TwoNodeDynamics(h, hf, lf)


def two_node_closed_form(
    h0: Tensor | Sequence[float],
    negative_slope: float,
    depth: int,
    *,
    self_loops: bool = False,
) -> TwoNodeDynamics:
    r"""Closed form of :func:`two_node_simulate` for :math:`\alpha \ge 0`.

    With :math:`h_0 = c(1,1) + a(1,-1)` and :math:`s = |a|`, the adjacency gives

    .. math::
        (c_t, s_t) = \begin{cases}
            (c, s) & c \ge s \\
            \alpha^t (c, s) & c \le -s \\
            \big(\tfrac{p - \alpha^t q}{2}, \tfrac{p + \alpha^t q}{2}\big)
            & |c| < s,\; p = s + c,\; q = s - c
        \end{cases}, \qquad a_t = (-1)^t \operatorname{sign}(a)\, s_t,

    and the GCN operator (``self_loops=True``) gives :math:`a_t = 0` and
    :math:`c_t = c\,[c \ge 0] + \alpha^t c\,[c < 0]` for :math:`t \ge 1`.
    The energies are :math:`E_{HF} = 2a_t^2`, :math:`E_{LF} = 2c_t^2` (summed over
    channels).

    Args:
        h0 (Tensor or sequence): Start state, shape ``[2]`` or ``[2, C]``.
        negative_slope (float): Slope :math:`\alpha \ge 0`.
        depth (int): Number of steps.
        self_loops (bool, optional): Use :math:`\hat P` instead of :math:`P`.
            (default: ``False``)

    Example:
        >>> out = two_node_closed_form([1.0, -1.0], 0.5, 3)  # pure alternating start
        >>> out.hf_energy.tolist()  # 2 * ((1 + 0.5**t) / 2)**2
        [2.0, 1.125, 0.78125, 0.6328125]
        >>> two_node_closed_form([1.0, -1.0], 0.5, 3, self_loops=True).hf_energy.tolist()
        [2.0, 0.0, 0.0, 0.0]
    """
    h0 = _check(h0, negative_slope, depth)
    alpha = float(negative_slope)
    if alpha < 0:
        raise ValueError(f"negative_slope must be >= 0 for the closed form, got {alpha}")
    c = (h0[0] + h0[1]) / 2
    a = (h0[0] - h0[1]) / 2
    shape = (depth + 1,) + (1,) * c.dim()
    t = torch.arange(depth + 1, dtype=torch.float64).view(shape)
    power = torch.pow(torch.tensor(alpha, dtype=torch.float64), t)  # 0**0 == 1
    if self_loops:
        ct = torch.where(c >= 0, c, power * c).expand(shape[:1] + c.shape).clone()
        at = torch.zeros_like(ct)
        ct[0], at[0] = c, a
    else:
        s = a.abs()
        p, q = s + c, s - c
        st = torch.where(c >= s, s, torch.where(c <= -s, power * s, (p + power * q) / 2))
        ct = torch.where(c >= s, c, torch.where(c <= -s, power * c, (p - power * q) / 2))
        sign = torch.where(a < 0, -1.0, 1.0).to(torch.float64)
        at = sign * torch.where(t.remainder(2) == 0, 1.0, -1.0) * st
        st, ct = st.expand(shape[:1] + c.shape), ct.expand(shape[:1] + c.shape)
        at = at.expand(shape[:1] + c.shape)
    h = torch.stack([ct + at, ct - at], dim=1)
    hf, lf = _energies(h)
    return TwoNodeDynamics(h, hf, lf)


def two_node_energy_table(
    negative_slopes: Iterable[float],
    depth: int,
    h0: Tensor | Sequence[float] = (1.0, -1.0),
    *,
    self_loops: Iterable[bool] = (False, True),
) -> pd.DataFrame:
    r"""Per-layer energies of the two-node map for several slopes, as a tidy table.

    Columns: ``operator`` (``"adjacency"`` or ``"gcn"``), ``negative_slope``, ``layer``
    (``0..depth``), ``hf_energy``, ``lf_energy`` (closed form), ``hf_share``
    (:math:`E_{HF} / (E_{HF} + E_{LF})`, NaN for the zero state) and ``sim_error``
    (largest absolute difference between closed form and simulation, both energies).

    Args:
        negative_slopes (iterable of float): Slopes :math:`\alpha \ge 0`.
        depth (int): Number of steps.
        h0 (Tensor or sequence, optional): Start state. (default: ``(1, -1)``, pure
            high frequency)
        self_loops (iterable of bool, optional): Operators to include.
            (default: ``(False, True)``)

    Example:
        >>> df = two_node_energy_table([0.0, 1.0], depth=2, self_loops=[False])
        >>> df[df.layer == 2][["negative_slope", "hf_energy"]].values.tolist()
        [[0.0, 0.5], [1.0, 2.0]]
        >>> float(df.sim_error.max()) < 1e-12
        True
    """
    rows = []
    for loops in self_loops:
        for alpha in negative_slopes:
            cf = two_node_closed_form(h0, alpha, depth, self_loops=loops)
            sim = two_node_simulate(h0, alpha, depth, self_loops=loops)
            err = torch.maximum(
                (cf.hf_energy - sim.hf_energy).abs(), (cf.lf_energy - sim.lf_energy).abs()
            )
            total = cf.hf_energy + cf.lf_energy
            share = torch.where(
                total > 0,
                cf.hf_energy / total.clamp_min(1e-300),
                torch.full_like(total, float("nan")),
            )
            for layer in range(depth + 1):
                rows.append(
                    {
                        "operator": "gcn" if loops else "adjacency",
                        "negative_slope": float(alpha),
                        "layer": layer,
                        "hf_energy": float(cf.hf_energy[layer]),
                        "lf_energy": float(cf.lf_energy[layer]),
                        "hf_share": float(share[layer]),
                        "sim_error": float(err[layer]),
                    }
                )
    return pd.DataFrame(rows)
