r"""The graph obstacle problem: an exact solver, a 1-D closed form, and learned solutions
whose constraint is a ReLU (or Leaky ReLU, or softplus) barrier.

On a graph with (unnormalized, scaled) Laplacian :math:`L = s\,(D - A)`, obstacle
:math:`\psi`, load :math:`f` and boundary nodes :math:`B` with Dirichlet values
:math:`g`, the discrete obstacle problem is

.. math::
    \min_u\; E(u) = \tfrac12\, u^\top L u - f^\top u
    \quad \text{s.t.} \quad u \ge \psi, \quad u_B = g_B .

Its solution is characterized on the interior nodes :math:`I` by the KKT conditions
(the linear complementarity problem)

.. math::
    u_I \ge \psi_I, \qquad \lambda = (L u - f)_I \ge 0, \qquad
    \lambda_i\,(u_i - \psi_i) = 0,

so :math:`\lambda` is the contact force, non-zero only on the contact set
:math:`\{u = \psi\}`. On a path or grid with spacing :math:`h` and :math:`s = 1/h^2`
this is the finite-difference membrane problem :math:`-\Delta u \ge f`.

* :func:`solve_obstacle` solves it exactly (primal-dual active set, or L-BFGS-B);
* :func:`obstacle_1d_closed_form` is the exact *discrete* solution on a path for a
  parabolic obstacle and :math:`f = 0`: the least concave majorant of the obstacle;
* :func:`fit_obstacle` trains an MLP on the node coordinates or a GCN on the graph
  to minimize :math:`E(u_\theta)/|I| + \mu\,\operatorname{mean}_I
  \beta(\psi - u_\theta)^2` with a barrier :math:`\beta \in` {ReLU, Leaky ReLU,
  softplus}, and :func:`obstacle_table` compares the barriers.

The ReLU barrier is exactly zero where the constraint holds; as a quadratic penalty it
enforces the constraint only up to :math:`\lambda_i / (2\mu)` (the violation of the
exact minimizer of the penalized problem, :func:`solve_penalized_obstacle`). See
``docs/theory.md`` for the derivations and the measured table.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import MLP
from torch_geometric.nn.models import GCN
from torch_geometric.utils import is_undirected, remove_self_loops, to_undirected

from gnnleaky._validation import check_edge_index, check_edge_weight
from gnnleaky.analysis._common import check_finite, check_positive_int, seeded

__all__ = [
    "BARRIERS",
    "LearnedObstacle",
    "Membrane",
    "Obstacle1D",
    "ObstacleSolution",
    "PenalizedObstacle",
    "barrier_penalty",
    "fit_obstacle",
    "grid_membrane",
    "obstacle_1d_closed_form",
    "obstacle_energy",
    "obstacle_table",
    "path_membrane",
    "solve_obstacle",
    "solve_penalized_obstacle",
]

# One registry for the barriers, (z, negative_slope, beta) -> barrier(z); the penalty
# is the barrier squared.
_BARRIER_FNS: dict[str, Callable[[Tensor, float, float], Tensor]] = {
    "relu": lambda z, negative_slope, beta: F.relu(z),
    "leaky_relu": lambda z, negative_slope, beta: F.leaky_relu(z, negative_slope),
    "softplus": lambda z, negative_slope, beta: F.softplus(z, beta=beta),
}
BARRIERS: tuple[str, ...] = tuple(sorted(_BARRIER_FNS))
_MODELS = ("gnn", "mlp")
_METHODS = ("active_set", "lbfgsb")


class Membrane(NamedTuple):
    r"""A path or grid graph on :math:`[0, 1]^d` with its boundary.

    ``edge_index`` is undirected (both directions), ``pos`` ``[N, d]`` float64 node
    coordinates, ``boundary_mask`` ``[N]`` bool, ``spacing`` the grid spacing
    :math:`h` and ``scale`` :math:`1/h^2`, the factor that turns :math:`D - A` into
    the finite-difference :math:`-\Delta`.
    """

    edge_index: Tensor
    pos: Tensor
    boundary_mask: Tensor
    spacing: float
    scale: float


class ObstacleSolution(NamedTuple):
    r"""Result of :func:`solve_obstacle`.

    ``u`` ``[N]`` float64 solution (``g`` on boundary nodes); ``contact`` ``[N]`` bool,
    interior nodes with :math:`u_i - \psi_i \le` ``contact_tol``; ``multiplier``
    ``[N]`` the contact force :math:`(L u - f)_i` on interior nodes (0 on boundary
    nodes); ``iterations``; ``kkt_residual``
    :math:`\max_{i \in I} |\min(u_i - \psi_i, (L u - f)_i)|` (zero exactly when the
    KKT conditions hold); ``converged``.
    """

    u: Tensor
    contact: Tensor
    multiplier: Tensor
    iterations: int
    kkt_residual: float
    converged: bool


class PenalizedObstacle(NamedTuple):
    r"""Result of :func:`solve_penalized_obstacle`: ``u`` ``[N]`` float64,
    ``iterations`` (Newton steps), ``gradient_norm`` (largest entry of the gradient
    on interior nodes at the end), ``converged``."""

    u: Tensor
    iterations: int
    gradient_norm: float
    converged: bool


class Obstacle1D(NamedTuple):
    r"""Result of :func:`obstacle_1d_closed_form`.

    ``x`` ``[n + 2]`` node coordinates, ``psi`` the obstacle and ``u`` the exact
    discrete solution on them (float64); ``contact`` ``[n + 2]`` bool;
    ``first_contact`` and ``last_contact`` the node indices that bound the contact set
    (``-1`` when there is no contact); ``tangent_points`` the tangent points
    :math:`(x_l, x_r)` of the continuous problem, which the discrete ones approach as
    :math:`h \to 0`.
    """

    x: Tensor
    psi: Tensor
    u: Tensor
    contact: Tensor
    first_contact: int
    last_contact: int
    tangent_points: tuple[float, float]


class LearnedObstacle(NamedTuple):
    r"""Result of :func:`fit_obstacle`.

    ``u`` ``[N]`` float64 learned solution (``g`` on boundary nodes), ``model`` the
    trained network, ``loss`` the final training loss, ``energy`` :math:`E(u)` and
    ``penalty`` :math:`\mu\,\operatorname{mean}_I \beta(\psi - u)^2` at the end.
    """

    u: Tensor
    model: torch.nn.Module
    loss: float
    energy: float
    penalty: float


# --------------------------------------------------------------------------- graphs


def path_membrane(num_interior: int) -> Membrane:
    r"""The path graph on :math:`[0, 1]` with ``num_interior`` interior nodes.

    Nodes :math:`x_j = j h`, :math:`j = 0, \dots, n + 1`, :math:`h = 1/(n + 1)`;
    nodes 0 and :math:`n + 1` are the boundary. With ``scale`` :math:`= 1/h^2`,
    :math:`(L u)_j = (2u_j - u_{j-1} - u_{j+1})/h^2` is the finite-difference
    :math:`-u''`.

    Args:
        num_interior (int): Number of interior nodes :math:`n \ge 1`.

    Example:
        >>> m = path_membrane(3)
        >>> m.pos[:, 0].tolist(), m.boundary_mask.tolist(), m.scale
        ([0.0, 0.25, 0.5, 0.75, 1.0], [True, False, False, False, True], 16.0)
        >>> m.edge_index.size(1)  # 4 edges, both directions
        8
    """
    n = check_positive_int("num_interior", num_interior)
    h = 1.0 / (n + 1)
    idx = torch.arange(n + 1)
    edge_index = to_undirected(torch.stack([idx, idx + 1]))
    pos = (torch.arange(n + 2, dtype=torch.float64) * h).view(-1, 1)
    pos[-1] = 1.0
    boundary = torch.zeros(n + 2, dtype=torch.bool)
    boundary[[0, -1]] = True
    return Membrane(edge_index, pos, boundary, h, 1.0 / h**2)


def grid_membrane(num_interior: int) -> Membrane:
    r"""The square grid graph on :math:`[0, 1]^2` with ``num_interior`` interior nodes
    per side (4-neighbour; the outer ring of nodes is the boundary).

    Node :math:`k = i (n + 2) + j` sits at :math:`(x, y) = (j h, i h)`,
    :math:`h = 1/(n + 1)`. With ``scale`` :math:`= 1/h^2` the Laplacian is the 5-point
    finite-difference :math:`-\Delta`.

    Args:
        num_interior (int): Interior nodes per side :math:`n \ge 1`.

    Example:
        >>> m = grid_membrane(2)
        >>> m.pos.shape, int(m.boundary_mask.sum()), m.edge_index.size(1)
        (torch.Size([16, 2]), 12, 48)
    """
    n = check_positive_int("num_interior", num_interior)
    side = n + 2
    h = 1.0 / (n + 1)
    node = torch.arange(side * side).view(side, side)
    right = torch.stack([node[:, :-1].reshape(-1), node[:, 1:].reshape(-1)])
    down = torch.stack([node[:-1, :].reshape(-1), node[1:, :].reshape(-1)])
    edge_index = to_undirected(torch.cat([right, down], dim=1))
    coord = torch.arange(side, dtype=torch.float64) * h
    coord[-1] = 1.0
    yy, xx = torch.meshgrid(coord, coord, indexing="ij")
    pos = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    rows = torch.arange(side).view(-1, 1).expand(side, side)
    cols = torch.arange(side).view(1, -1).expand(side, side)
    boundary = ((rows == 0) | (rows == side - 1) | (cols == 0) | (cols == side - 1)).reshape(-1)
    return Membrane(edge_index, pos, boundary, h, 1.0 / h**2)


# ----------------------------------------------------------------------- validation


class _Problem(NamedTuple):
    num_nodes: int
    interior: np.ndarray  # indices of interior nodes
    boundary_mask: Tensor
    psi: Tensor  # [N] float64
    g: Tensor  # [N] float64, boundary values (interior entries 0)
    f: Tensor  # [N] float64
    laplacian: scipy.sparse.csr_matrix  # scaled, [N, N]
    a_ii: scipy.sparse.csr_matrix  # L restricted to interior
    b_i: np.ndarray  # f_I - L_IB g_B
    edge_index: Tensor
    edge_weight: Tensor | None
    scale: float


def _node_values(name: str, value: float | Tensor | Sequence[float], n: int) -> Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"{name} must be a float or a tensor of shape [N], got {value!r}"
        ) from None
    if t.dim() == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(
            f"{name} must be a float or have shape [N] = [{n}] (one value per node), "
            f"got shape {tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or Inf values")
    return t.detach().clone()


def _psi(psi: Tensor | Sequence[float]) -> Tensor:
    try:
        t = torch.as_tensor(psi, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"psi must be a tensor of shape [N], got {psi!r}") from None
    if t.dim() != 1 or t.numel() == 0:
        raise ValueError(
            f"psi must have shape [N] (one value per node), got shape {tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError("psi contains NaN or Inf values")
    return t.detach().clone()


def _prepare(
    edge_index: Tensor,
    psi: Tensor | Sequence[float],
    boundary_mask: Tensor,
    boundary_values: float | Tensor,
    f: float | Tensor,
    scale: float,
    edge_weight: Tensor | None,
) -> _Problem:
    psi_t = _psi(psi)
    n = psi_t.numel()
    if not isinstance(boundary_mask, Tensor) or boundary_mask.dtype != torch.bool:
        raise ValueError("boundary_mask must be a bool tensor of shape [N]")
    if boundary_mask.shape != (n,):
        raise ValueError(
            f"boundary_mask must have shape [N] = [{n}] (as psi), "
            f"got shape {tuple(boundary_mask.shape)}"
        )
    if not bool(boundary_mask.any()):
        raise ValueError("boundary_mask must mark at least one boundary node")
    if bool(boundary_mask.all()):
        raise ValueError("boundary_mask marks every node as boundary: no interior node to solve")
    g = _node_values("boundary_values", boundary_values, n)
    f_t = _node_values("f", f, n)
    s = check_finite("scale", scale)
    if s <= 0:
        raise ValueError(f"scale must be a finite float > 0, got {scale!r}")
    check_edge_index(edge_index, n)
    check_edge_weight(edge_weight, edge_index.size(1))
    if not is_undirected(edge_index, edge_weight, num_nodes=n):
        raise ValueError(
            "edge_index must be undirected (every edge in both directions, with equal "
            "edge_weight): the energy u^T L u needs a symmetric Laplacian"
        )
    excess = (psi_t - g)[boundary_mask]
    if bool((excess > 0).any()):
        k = int(torch.nonzero(boundary_mask)[int(excess.argmax())])
        raise ValueError(
            f"psi must be <= the boundary values on boundary nodes (the constraint u >= psi "
            f"must be satisfiable), got psi - boundary_values = {float(excess.max()):.6g} "
            f"at node {k}"
        )
    ei, ew = remove_self_loops(edge_index, edge_weight)
    w = np.ones(ei.size(1)) if ew is None else ew.detach().to(torch.float64).numpy()
    row, col = ei.numpy()
    adj = scipy.sparse.coo_matrix((w, (row, col)), shape=(n, n)).tocsr()
    mask = boundary_mask.numpy()
    ncomp, labels = scipy.sparse.csgraph.connected_components(adj, directed=False)
    touched = np.zeros(ncomp, dtype=bool)
    touched[labels[mask]] = True
    if not touched.all():
        raise ValueError(
            "every connected component of the graph must contain a boundary node "
            f"(boundary_mask): {int((~touched).sum())} of {ncomp} components have none, "
            "so their values are not determined"
        )
    deg = np.asarray(adj.sum(axis=1)).ravel()
    lap = (s * (scipy.sparse.diags(deg) - adj)).tocsr()
    interior = np.flatnonzero(~mask)
    bnd = np.flatnonzero(mask)
    a_ii = lap[interior][:, interior].tocsc()
    b_i = f_t.numpy()[interior] - lap[interior][:, bnd] @ g.numpy()[bnd]
    g = torch.where(boundary_mask, g, torch.zeros_like(g))
    return _Problem(n, interior, boundary_mask, psi_t, g, f_t, lap, a_ii, b_i, ei, ew, s)


def _check_name(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value


# ------------------------------------------------------------------ energy, barrier


def obstacle_energy(
    u: Tensor,
    edge_index: Tensor,
    f: float | Tensor = 0.0,
    *,
    scale: float = 1.0,
    edge_weight: Tensor | None = None,
) -> Tensor:
    r"""The discrete membrane energy :math:`E(u) = \tfrac12 u^\top L u - f^\top u`,
    differentiable, float64.

    .. math::
        E(u) = \frac{s}{2} \sum_{\{i, j\} \in \mathcal E} w_{ij}\, (u_i - u_j)^2
        - \sum_i f_i u_i, \qquad L = s\,(D - A),

    computed edge by edge (``edge_index`` undirected, so each edge appears twice).

    Args:
        u (Tensor): Node values ``[N]``.
        edge_index (Tensor): Undirected edges ``[2, E]``.
        f (float or Tensor, optional): Load per node. (default: ``0.0``)
        scale (float, optional): Factor :math:`s` of the Laplacian. (default: ``1.0``)
        edge_weight (Tensor, optional): Non-negative edge weights ``[E]``.

    Example:
        >>> m = path_membrane(1)  # nodes 0, 0.5, 1
        >>> float(obstacle_energy(torch.tensor([0.0, 1.0, 0.0]), m.edge_index, scale=m.scale))
        4.0
    """
    if not isinstance(u, Tensor) or u.dim() != 1:
        raise ValueError("u must be a tensor of shape [N]")
    n = u.numel()
    check_edge_index(edge_index, n)
    check_edge_weight(edge_weight, edge_index.size(1))
    s = check_finite("scale", scale)
    u64 = u.to(torch.float64)
    f_t = _node_values("f", f, n).to(u64.device)
    diff = u64[edge_index[0]] - u64[edge_index[1]]
    sq = diff.pow(2) if edge_weight is None else edge_weight.to(torch.float64) * diff.pow(2)
    return s / 4 * sq.sum() - (f_t * u64).sum()


def barrier_penalty(
    u: Tensor,
    psi: Tensor,
    barrier: str = "relu",
    *,
    negative_slope: float = 0.01,
    beta: float = 100.0,
) -> Tensor:
    r"""Per-node barrier penalty :math:`\beta(\psi - u)^2` of the constraint
    :math:`u \ge \psi`.

    .. math::
        \beta(z) = \begin{cases}
            \max(0, z) & \text{relu} \\
            \max(0, z) + \alpha \min(0, z) & \text{leaky\_relu} \\
            \tfrac{1}{b} \log(1 + e^{b z}) & \text{softplus}
        \end{cases}

    The ReLU penalty is exactly ``0.0`` wherever :math:`u \ge \psi`; the Leaky ReLU one
    is :math:`\alpha^2 (u - \psi)^2 > 0` there (it pulls feasible points down onto the
    obstacle), the softplus one is positive everywhere and decreasing in :math:`u`
    (it pushes feasible points further up).

    Args:
        u (Tensor): Values ``[N]``.
        psi (Tensor): Obstacle ``[N]``.
        barrier (str, optional): One of ``"leaky_relu"``, ``"relu"``, ``"softplus"``.
            (default: ``"relu"``)
        negative_slope (float, optional): :math:`\alpha` of ``"leaky_relu"``.
            (default: ``0.01``)
        beta (float, optional): Sharpness :math:`b > 0` of ``"softplus"``.
            (default: ``100.0``)

    Example:
        >>> u, psi = torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.5])
        >>> barrier_penalty(u, psi).tolist()  # feasible node 1 costs exactly 0
        [0.25, 0.0]
        >>> barrier_penalty(u, psi, "leaky_relu", negative_slope=0.1).tolist()
        [0.25, 0.0025000...]
    """
    _check_name("barrier", barrier, BARRIERS)
    a = check_finite("negative_slope", negative_slope)
    b = check_finite("beta", beta)
    if b <= 0:
        raise ValueError(f"beta must be a finite float > 0, got {beta!r}")
    if not isinstance(u, Tensor) or not isinstance(psi, Tensor) or u.shape != psi.shape:
        raise ValueError(
            "u and psi must be tensors of the same shape, got "
            f"{getattr(u, 'shape', type(u))} and {getattr(psi, 'shape', type(psi))}"
        )
    return _BARRIER_FNS[barrier](psi - u, a, b).pow(2)


def _kkt_residual(u: np.ndarray, prob: _Problem) -> tuple[float, np.ndarray]:
    lam = prob.laplacian[prob.interior] @ u - prob.f.numpy()[prob.interior]
    gap = u[prob.interior] - prob.psi.numpy()[prob.interior]
    return float(np.abs(np.minimum(gap, lam)).max()), lam


# --------------------------------------------------------------------- exact solver


def _active_set(prob: _Problem, max_iter: int) -> tuple[np.ndarray, int, bool]:
    a, b = prob.a_ii, prob.b_i
    psi = prob.psi.numpy()[prob.interior]
    # Tolerances against flip-flopping of degenerate nodes (u = psi and lambda = 0 both
    # hold to rounding); they are at the level of rounding of the data and of L u.
    size = max(1.0, float(np.abs(psi).max()), float(prob.g.abs().max()))
    eps_u = 1e-13 * size
    eps_lam = 1e-13 * size * float(abs(a).sum(axis=1).max()) + 1e-13 * float(np.abs(b).max())
    x = scipy.sparse.linalg.spsolve(a, b)
    lam = np.zeros_like(x)
    active = x < psi - eps_u
    for it in range(1, max_iter + 1):
        free = ~active
        x = np.where(active, psi, 0.0)
        if free.any():
            rhs = b[free] - a[free][:, active] @ psi[active]
            x[free] = scipy.sparse.linalg.spsolve(a[free][:, free].tocsc(), rhs)
        lam = np.where(active, a @ x - b, 0.0)
        new = (active & (lam > -eps_lam)) | (~active & (x < psi - eps_u))
        if np.array_equal(new, active):
            return x, it, True
        active = new
    return x, max_iter, False


def _lbfgsb(prob: _Problem, tol: float, max_iter: int) -> tuple[np.ndarray, int, bool]:
    # The minimizer does not depend on the factor s; dividing by it keeps the gradient
    # O(1) so that the tolerance means the same for every grid spacing.
    a = prob.a_ii / prob.scale
    b = prob.b_i / prob.scale
    psi = prob.psi.numpy()[prob.interior]

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        ax = a @ x
        return 0.5 * float(x @ ax) - float(b @ x), ax - b

    x0 = np.maximum(psi, scipy.sparse.linalg.spsolve(a.tocsc(), b))
    res = scipy.optimize.minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(p, None) for p in psi],
        options={"maxiter": max_iter, "ftol": 0.0, "gtol": tol, "maxcor": 50},
    )
    # status 1 is the iteration cap; 0 and 2 (no further decrease possible) are stops
    return np.maximum(res.x, psi), int(res.nit), int(res.status) != 1


def solve_obstacle(
    edge_index: Tensor,
    psi: Tensor | Sequence[float],
    boundary_mask: Tensor,
    *,
    boundary_values: float | Tensor = 0.0,
    f: float | Tensor = 0.0,
    scale: float = 1.0,
    edge_weight: Tensor | None = None,
    method: str = "active_set",
    contact_tol: float = 1e-10,
    tol: float = 1e-12,
    max_iter: int = 1000,
) -> ObstacleSolution:
    r"""Exact solution of the discrete obstacle problem
    :math:`\min_{u \ge \psi,\, u_B = g_B} \tfrac12 u^\top L u - f^\top u`.

    ``method="active_set"`` is the primal-dual active set method (Hintermüller, Ito and
    Kunisch, 2003): guess the contact set :math:`\mathcal A`, set :math:`u = \psi` on
    it, solve :math:`(L u)_i = f_i` on the other interior nodes (one sparse direct
    solve), and update

    .. math::
        \mathcal A \leftarrow \{i \in \mathcal A : \lambda_i > 0\} \cup
        \{i \notin \mathcal A : u_i < \psi_i\}, \qquad \lambda = (L u - f)_I,

    until :math:`\mathcal A` repeats. :math:`L_{II}` is an M-matrix (every component
    touches the boundary), for which the method stops after finitely many steps at the
    exact solution (to the rounding of the direct solves). ``method="lbfgsb"`` runs
    SciPy's L-BFGS-B on the interior values with bounds :math:`u \ge \psi` and the
    exact gradient (a cross-check; accurate to about ``tol`` in the projected
    gradient of :math:`E / s`).

    Args:
        edge_index (Tensor): Undirected edges ``[2, E]``.
        psi (Tensor): Obstacle ``[N]``; must be :math:`\le g` on boundary nodes.
        boundary_mask (Tensor): ``[N]`` bool, the Dirichlet nodes :math:`B`; every
            connected component needs one.
        boundary_values (float or Tensor, optional): :math:`g`, a float or ``[N]``
            (only boundary entries are used). (default: ``0.0``)
        f (float or Tensor, optional): Load :math:`f`. (default: ``0.0``)
        scale (float, optional): :math:`s` in :math:`L = s (D - A)`, e.g. ``1/h**2``.
            (default: ``1.0``)
        edge_weight (Tensor, optional): Non-negative symmetric edge weights ``[E]``.
        method (str, optional): ``"active_set"`` or ``"lbfgsb"``.
            (default: ``"active_set"``)
        contact_tol (float, optional): A node is in contact when
            :math:`u_i - \psi_i \le` ``contact_tol``. (default: ``1e-10``)
        tol (float, optional): Projected-gradient tolerance of ``"lbfgsb"``.
            (default: ``1e-12``)
        max_iter (int, optional): Iteration cap. (default: ``1000``)

    Example:
        >>> m = path_membrane(3)  # x = 0, 1/4, 1/2, 3/4, 1
        >>> psi = torch.tensor([-1.0, 0.0, 1.0, 0.0, -1.0])
        >>> sol = solve_obstacle(m.edge_index, psi, m.boundary_mask, scale=m.scale)
        >>> sol.u.tolist(), sol.contact.tolist()  # a tent through the peak
        ([0.0, 0.5, 1.0, 0.5, 0.0], [False, False, True, False, False])
        >>> sol.kkt_residual
        0.0
    """
    _check_name("method", method, _METHODS)
    ctol = check_finite("contact_tol", contact_tol, minimum=0.0)
    t = check_finite("tol", tol)
    if t <= 0:
        raise ValueError(f"tol must be a finite float > 0, got {tol!r}")
    check_positive_int("max_iter", max_iter)
    prob = _prepare(edge_index, psi, boundary_mask, boundary_values, f, scale, edge_weight)
    if method == "active_set":
        x, iters, ok = _active_set(prob, max_iter)
    else:
        x, iters, ok = _lbfgsb(prob, t, max_iter)
    u = prob.g.numpy().copy()
    u[prob.interior] = x
    res, lam = _kkt_residual(u, prob)
    if not ok:
        warnings.warn(
            f"solve_obstacle(method={method!r}) stopped after {iters} iterations without "
            f"converging (KKT residual {res:.3g}); raise max_iter",
            RuntimeWarning,
            stacklevel=2,
        )
    u_t = torch.from_numpy(u)
    contact = torch.zeros(prob.num_nodes, dtype=torch.bool)
    contact[prob.interior] = torch.from_numpy(x - prob.psi.numpy()[prob.interior] <= ctol)
    mult = torch.zeros(prob.num_nodes, dtype=torch.float64)
    mult[prob.interior] = torch.from_numpy(lam)
    return ObstacleSolution(u_t, contact, mult, iters, res, ok)


# ---------------------------------------------------------------- 1-D closed form


def obstacle_1d_closed_form(
    num_interior: int,
    *,
    peak: float = 0.5,
    curvature: float = 4.0,
    center: float = 0.5,
    boundary_values: tuple[float, float] = (0.0, 0.0),
) -> Obstacle1D:
    r"""Exact discrete solution on :func:`path_membrane` for :math:`f = 0` and the
    parabolic obstacle :math:`\psi(x) = a - k (x - c)^2`, :math:`k > 0`.

    With :math:`f = 0` the solution is the least discretely concave majorant of
    :math:`\psi` with :math:`u_0 = g_0`, :math:`u_{n+1} = g_1`: linear from each end to
    the first node it touches, then equal to :math:`\psi`. From the left end the first
    contact node maximizes the slope :math:`(\psi_j - g_0)/x_j`; for the parabola

    .. math::
        \frac{\psi_j - g_0}{x_j} - \frac{\psi_{j+1} - g_0}{x_{j+1}}
        = k h \Big(1 - \frac{x_l^2}{x_j x_{j+1}}\Big), \qquad
        x_l = \sqrt{(g_0 - \psi(0)) / k},

    so the slope rises while :math:`j (j + 1) < (x_l/h)^2` and falls after: the first
    contact node is the smallest :math:`j \ge 1` with :math:`j (j + 1) \ge (x_l/h)^2`
    (at most :math:`n`), and symmetrically from the right with
    :math:`1 - x_r = \sqrt{(g_1 - \psi(1)) / k}`. :math:`x_l, x_r` are the tangent
    points of the continuous problem. Without any node above the chord from
    :math:`(0, g_0)` to :math:`(1, g_1)` the solution is the chord.

    Args:
        num_interior (int): Interior nodes :math:`n \ge 1`.
        peak (float, optional): :math:`a`. (default: ``0.5``)
        curvature (float, optional): :math:`k > 0`. (default: ``4.0``)
        center (float, optional): :math:`c`. (default: ``0.5``)
        boundary_values (tuple of float, optional): :math:`(g_0, g_1)`, each
            :math:`\ge \psi` at its end. (default: ``(0.0, 0.0)``)

    Example:
        >>> cf = obstacle_1d_closed_form(63)  # psi = 1/2 - 4 (x - 1/2)^2
        >>> cf.first_contact, cf.last_contact, round(cf.tangent_points[0], 6)
        (23, 41, 0.353553)
        >>> m = path_membrane(63)
        >>> sol = solve_obstacle(m.edge_index, cf.psi, m.boundary_mask, scale=m.scale)
        >>> float((sol.u - cf.u).abs().max()) < 1e-12
        True
    """
    n = check_positive_int("num_interior", num_interior)
    a = check_finite("peak", peak)
    k = check_finite("curvature", curvature)
    if k <= 0:
        raise ValueError(f"curvature must be a finite float > 0 (a concave obstacle), got {k}")
    c = check_finite("center", center)
    try:
        g0, g1 = (float(v) for v in boundary_values)
    except (TypeError, ValueError):
        raise ValueError(
            f"boundary_values must be a pair of floats (g0, g1), got {boundary_values!r}"
        ) from None
    if not (math.isfinite(g0) and math.isfinite(g1)):
        raise ValueError(f"boundary_values must be finite, got {boundary_values!r}")
    psi0, psi1 = a - k * c**2, a - k * (1 - c) ** 2
    if psi0 > g0 or psi1 > g1:
        raise ValueError(
            "psi must be <= the boundary values at both ends: psi(0) = "
            f"{psi0:.6g} vs g0 = {g0:.6g}, psi(1) = {psi1:.6g} vs g1 = {g1:.6g}"
        )
    h = 1.0 / (n + 1)
    j = np.arange(n + 2)
    x = j * h
    x[-1] = 1.0
    psi = a - k * (x - c) ** 2
    chord = g0 + (g1 - g0) * x
    x_l = math.sqrt((g0 - psi0) / k)
    x_r = 1.0 - math.sqrt((g1 - psi1) / k)

    def first(s2: float) -> int:
        # smallest m >= 1 with m (m + 1) >= s2, capped at n (integer test, no rounding)
        m = max(1, math.ceil((math.sqrt(1.0 + 4.0 * s2) - 1.0) / 2.0))
        while m > 1 and (m - 1) * m >= s2:
            m -= 1
        while m * (m + 1) < s2:
            m += 1
        return min(m, n)

    u = chord.copy()
    inner = slice(1, n + 1)
    if (psi[inner] > chord[inner]).any():
        jl = first((g0 - psi0) / k / h**2)
        jr = n + 1 - first((g1 - psi1) / k / h**2)
        u[: jl + 1] = g0 + (psi[jl] - g0) * j[: jl + 1] / jl
        u[jl : jr + 1] = psi[jl : jr + 1]
        u[jr:] = psi[jr] + (g1 - psi[jr]) * (j[jr:] - jr) / (n + 1 - jr)
        contact = np.zeros(n + 2, dtype=bool)
        contact[jl : jr + 1] = True
    else:
        contact = np.zeros(n + 2, dtype=bool)
        contact[inner] = psi[inner] >= chord[inner]
        hits = np.flatnonzero(contact)
        jl, jr = (int(hits[0]), int(hits[-1])) if hits.size else (-1, -1)
    u[0], u[-1] = g0, g1
    return Obstacle1D(
        torch.from_numpy(x),
        torch.from_numpy(psi),
        torch.from_numpy(u),
        torch.from_numpy(contact),
        int(jl),
        int(jr),
        (x_l, x_r),
    )


# ------------------------------------------------------------- penalized problem


def _barrier_args(barrier: str, negative_slope: float, beta: float, mu: float) -> tuple:
    _check_name("barrier", barrier, BARRIERS)
    a = check_finite("negative_slope", negative_slope)
    b = check_finite("beta", beta)
    if b <= 0:
        raise ValueError(f"beta must be a finite float > 0, got {beta!r}")
    m = check_finite("mu", mu)
    if m <= 0:
        raise ValueError(f"mu must be a finite float > 0, got {mu!r}")
    return a, b, m


def _rho_derivatives(z: np.ndarray, fn: Callable[[Tensor], Tensor]) -> tuple[np.ndarray, ...]:
    # rho = barrier^2 is separable, so the gradient of sum(rho) is rho' and the gradient
    # of sum(rho') is rho'' (autograd through the one registry, no second formula).
    zt = torch.from_numpy(z).requires_grad_(True)
    rho = fn(zt).pow(2)
    (d1,) = torch.autograd.grad(rho.sum(), zt, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), zt, allow_unused=True)
    d2 = torch.zeros_like(zt) if d2 is None else d2
    return rho.detach().numpy(), d1.detach().numpy(), d2.detach().numpy()


def solve_penalized_obstacle(
    edge_index: Tensor,
    psi: Tensor | Sequence[float],
    boundary_mask: Tensor,
    *,
    barrier: str = "relu",
    mu: float = 1e4,
    negative_slope: float = 0.01,
    beta: float = 100.0,
    boundary_values: float | Tensor = 0.0,
    f: float | Tensor = 0.0,
    scale: float = 1.0,
    edge_weight: Tensor | None = None,
    max_iter: int = 200,
) -> PenalizedObstacle:
    r"""Exact minimizer of the penalized problem the learned solutions are trained on,
    over free node values (no network):

    .. math::
        \min_{u,\, u_B = g_B}\; E(u) + \mu \sum_{i \in I} \beta(\psi_i - u_i)^2 .

    Damped Newton with the sparse Hessian :math:`L_{II} + \mu\,\mathrm{diag}(\rho'')`,
    :math:`\rho = \beta^2` (convex for all three barriers), from the exact obstacle
    solution. For the ReLU barrier the stationarity condition
    :math:`(L u - f)_i = 2 \mu (\psi_i - u_i)_+` gives a violation of about
    :math:`\lambda_i / (2\mu)` at contact nodes: the floor a perfect optimizer of the
    quadratic ReLU penalty reaches.

    Args:
        edge_index, psi, boundary_mask, boundary_values, f, scale, edge_weight: As in
            :func:`solve_obstacle`.
        barrier (str, optional): One of :data:`BARRIERS`. (default: ``"relu"``)
        mu (float, optional): Penalty weight :math:`\mu > 0`. (default: ``1e4``)
        negative_slope (float, optional): Slope of ``"leaky_relu"``. (default: ``0.01``)
        beta (float, optional): Sharpness of ``"softplus"``. (default: ``100.0``)
        max_iter (int, optional): Newton step cap. (default: ``200``)

    Example:
        >>> m = path_membrane(3)
        >>> psi = torch.tensor([-1.0, 0.0, 1.0, 0.0, -1.0])
        >>> pen = solve_penalized_obstacle(m.edge_index, psi, m.boundary_mask,
        ...                                scale=m.scale, mu=100.0)
        >>> round(1.0 - float(pen.u[2]), 6)  # violation 16 / (2 * 100 + 16)
        0.074074
    """
    a, b, m = _barrier_args(barrier, negative_slope, beta, mu)
    check_positive_int("max_iter", max_iter)
    prob = _prepare(edge_index, psi, boundary_mask, boundary_values, f, scale, edge_weight)
    fn = _BARRIER_FNS[barrier]
    rho_fn = functools.partial(fn, negative_slope=a, beta=b)
    psi_i = prob.psi.numpy()[prob.interior]
    x, _, _ = _active_set(prob, 1000)
    a_ii, b_i = prob.a_ii, prob.b_i

    def objective(v: np.ndarray) -> float:
        rho, _, _ = _rho_derivatives(psi_i - v, rho_fn)
        return 0.5 * float(v @ (a_ii @ v)) - float(b_i @ v) + m * float(rho.sum())

    converged, it = False, 0
    size = 1.0 + float(np.abs(psi_i).max())
    while not converged and it < max_iter:
        it += 1
        _, d1, d2 = _rho_derivatives(psi_i - x, rho_fn)
        grad = a_ii @ x - b_i - m * d1
        hess = (a_ii + scipy.sparse.diags(m * d2)).tocsc()
        step = scipy.sparse.linalg.spsolve(hess, -grad)
        f0, t = objective(x), 1.0
        slope = float(grad @ step)
        while t > 1e-12 and objective(x + t * step) > f0 + 1e-4 * t * slope:
            t /= 2
        x = x + t * step
        converged = float(np.abs(t * step).max()) <= 1e-14 * size
    _, d1, _ = _rho_derivatives(psi_i - x, rho_fn)
    gnorm = float(np.abs(a_ii @ x - b_i - m * d1).max())
    u = prob.g.numpy().copy()
    u[prob.interior] = x
    return PenalizedObstacle(torch.from_numpy(u), it, gnorm, converged)


# -------------------------------------------------------------- learned solutions


def fit_obstacle(
    edge_index: Tensor,
    pos: Tensor,
    psi: Tensor | Sequence[float],
    boundary_mask: Tensor,
    *,
    model: str = "mlp",
    barrier: str = "relu",
    mu: float = 1e4,
    negative_slope: float = 0.01,
    beta: float = 100.0,
    boundary_values: float | Tensor = 0.0,
    f: float | Tensor = 0.0,
    scale: float = 1.0,
    hidden_channels: int = 32,
    num_layers: int = 3,
    epochs: int = 1000,
    lr: float = 1e-2,
    lbfgs_steps: int = 300,
    seed: int = 0,
) -> LearnedObstacle:
    r"""Train :math:`u_\theta` on the penalized energy of the obstacle problem
    (float64, full batch, deterministic).

    .. math::
        \mathcal L(\theta) = \frac{E(u_\theta)}{|I|}
        + \mu\, \frac{1}{|I|} \sum_{i \in I} \beta(\psi_i - u_{\theta,i})^2,
        \qquad u_{\theta,i} = \begin{cases} g_i & i \in B \\
        \mathrm{net}_\theta(\cdot)_i & i \in I \end{cases}

    (the boundary values are imposed exactly by masking). ``model="mlp"`` is
    PyG's :class:`~torch_geometric.nn.MLP` on the node coordinates (``tanh``,
    ``num_layers`` layers); ``model="gnn"`` PyG's
    :class:`~torch_geometric.nn.models.GCN` (``tanh``) on the features
    ``[pos, psi, f]``. Training: ``epochs`` Adam steps at ``lr``, then up to
    ``lbfgs_steps`` L-BFGS iterations (strong Wolfe line search). The minimizer over
    free node values is :func:`solve_penalized_obstacle`.

    Args:
        edge_index, psi, boundary_mask, boundary_values, f, scale: As in
            :func:`solve_obstacle` (no edge weights: the GCN normalizes its own).
        pos (Tensor): Node coordinates ``[N, d]``.
        model (str, optional): ``"gnn"`` or ``"mlp"``. (default: ``"mlp"``)
        barrier (str, optional): One of :data:`BARRIERS`. (default: ``"relu"``)
        mu (float, optional): Penalty weight :math:`\mu > 0`. (default: ``1e4``)
        negative_slope (float, optional): Slope of ``"leaky_relu"``. (default: ``0.01``)
        beta (float, optional): Sharpness of ``"softplus"``. (default: ``100.0``)
        hidden_channels (int, optional): Width. (default: ``32``)
        num_layers (int, optional): Layers of the network. (default: ``3``)
        epochs (int, optional): Adam steps (``>= 0``). (default: ``1000``)
        lr (float, optional): Adam learning rate. (default: ``1e-2``)
        lbfgs_steps (int, optional): L-BFGS iterations (``>= 0``). (default: ``300``)
        seed (int, optional): Seed of the initialization. (default: ``0``)

    Example:
        >>> m = path_membrane(15)
        >>> cf = obstacle_1d_closed_form(15)
        >>> out = fit_obstacle(m.edge_index, m.pos, cf.psi, m.boundary_mask,
        ...                    scale=m.scale, epochs=30, lbfgs_steps=20)
        >>> feasible = out.u >= cf.psi
        >>> float(barrier_penalty(out.u, cf.psi)[feasible].abs().max())  # exactly zero
        0.0
    """
    _check_name("model", model, _MODELS)
    a, b, m = _barrier_args(barrier, negative_slope, beta, mu)
    check_positive_int("hidden_channels", hidden_channels)
    check_positive_int("num_layers", num_layers, minimum=2)
    check_positive_int("epochs", epochs, minimum=0)
    check_positive_int("lbfgs_steps", lbfgs_steps, minimum=0)
    step = check_finite("lr", lr)
    if step <= 0:
        raise ValueError(f"lr must be a finite float > 0, got {lr!r}")
    prob = _prepare(edge_index, psi, boundary_mask, boundary_values, f, scale, None)
    if not isinstance(pos, Tensor) or pos.dim() != 2 or pos.size(0) != prob.num_nodes:
        raise ValueError(
            f"pos must be a tensor of shape [N, d] with N = {prob.num_nodes}, got "
            f"{tuple(pos.shape) if isinstance(pos, Tensor) else type(pos).__name__}"
        )
    if not bool(torch.isfinite(pos).all()):
        raise ValueError("pos contains NaN or Inf values")
    pos64 = pos.detach().to(torch.float64)
    interior = ~prob.boundary_mask
    n_int = int(interior.sum())
    with seeded(seed):
        if model == "mlp":
            net: torch.nn.Module = MLP(
                in_channels=pos64.size(1),
                hidden_channels=hidden_channels,
                out_channels=1,
                num_layers=num_layers,
                act="tanh",
                norm=None,
            )
            inputs: tuple = (pos64,)
        else:
            net = GCN(pos64.size(1) + 2, hidden_channels, num_layers, out_channels=1, act="tanh")
            feats = torch.cat([pos64, prob.psi.view(-1, 1), prob.f.view(-1, 1)], dim=1)
            inputs = (feats, prob.edge_index)
    net = net.double()
    fn = _BARRIER_FNS[barrier]

    def parts() -> tuple[Tensor, Tensor, Tensor]:
        out = net(*inputs).view(-1)
        u = torch.where(prob.boundary_mask, prob.g, out)
        energy = obstacle_energy(u, prob.edge_index, prob.f, scale=prob.scale)
        pen = m * fn(prob.psi - u, a, b)[interior].pow(2).mean()
        return u, energy, pen

    def closure_loss() -> Tensor:
        _, energy, pen = parts()
        return energy / n_int + pen

    adam = torch.optim.Adam(net.parameters(), lr=step)
    for _ in range(epochs):
        adam.zero_grad()
        loss = closure_loss()
        loss.backward()
        adam.step()
    if lbfgs_steps:
        lbfgs = torch.optim.LBFGS(
            net.parameters(),
            lr=1.0,
            max_iter=lbfgs_steps,
            history_size=50,
            tolerance_grad=1e-12,
            tolerance_change=1e-15,
            line_search_fn="strong_wolfe",
        )

        def closure() -> Tensor:
            lbfgs.zero_grad()
            loss = closure_loss()
            loss.backward()
            return loss

        lbfgs.step(closure)
    with torch.no_grad():
        u, energy, pen = parts()
    return LearnedObstacle(u.detach(), net, float(energy / n_int + pen), float(energy), float(pen))


def obstacle_table(
    membrane: Membrane,
    psi: Tensor | Sequence[float],
    *,
    boundary_values: float | Tensor = 0.0,
    f: float | Tensor = 0.0,
    models: Sequence[str] = ("mlp", "gnn"),
    barriers: Sequence[str] = ("relu", "leaky_relu", "softplus"),
    mu: float = 1e4,
    negative_slope: float = 0.01,
    beta: float = 100.0,
    contact_tol: float = 1e-3,
    hidden_channels: int = 32,
    num_layers: int = 3,
    epochs: int = 1000,
    lr: float = 1e-2,
    lbfgs_steps: int = 300,
    seed: int = 0,
) -> pd.DataFrame:
    r"""Learned solutions against the exact one, one row per model and barrier.

    Columns (all over interior nodes :math:`I`; :math:`u^*` the exact solution of
    :func:`solve_obstacle`):

    * ``max_violation`` :math:`\max_i (\psi_i - u_i)_+`;
    * ``rms_error`` :math:`\big(\tfrac{1}{|I|}\sum_i (u_i - u^*_i)^2\big)^{1/2}`
      (absolute, in the units of :math:`u`);
    * ``contact_iou``: intersection over union of the contact sets
      :math:`\{u_i \le \psi_i + \text{contact\_tol}\}` of :math:`u` and
      :math:`u^*` (1.0 when both are empty);
    * ``penalty`` :math:`\mu \operatorname{mean}_I \beta(\psi - u)^2` at the end, and
      ``feasible_penalty`` its part from feasible nodes (:math:`u_i \ge \psi_i`);
    * ``zero_when_feasible``: whether :math:`\beta(\psi_i - u_i)^2` is exactly
      ``0.0`` at every feasible node;
    * ``penalized_violation``, ``penalized_rms_error``: the same two measures for the
      exact minimizer of the penalized problem over free node values
      (:func:`solve_penalized_obstacle`): what the barrier itself costs, without the
      network.

    Args:
        membrane (Membrane): From :func:`path_membrane` or :func:`grid_membrane`.
        psi (Tensor): Obstacle ``[N]``.
        models (sequence of str, optional): Subset of ``("gnn", "mlp")``.
        barriers (sequence of str, optional): Subset of :data:`BARRIERS`.
        contact_tol (float, optional): Contact tolerance. (default: ``1e-3``)
        Other arguments as in :func:`fit_obstacle`.

    Example:
        >>> m = path_membrane(7)
        >>> cf = obstacle_1d_closed_form(7)
        >>> df = obstacle_table(m, cf.psi, models=["mlp"], barriers=["relu"],
        ...                     epochs=10, lbfgs_steps=5)
        >>> bool(df.zero_when_feasible.iloc[0])
        True
    """
    for name in models:
        _check_name("models", name, _MODELS)
    for name in barriers:
        _check_name("barriers", name, BARRIERS)
    ctol = check_finite("contact_tol", contact_tol, minimum=0.0)
    if not isinstance(membrane, Membrane):
        raise ValueError(
            f"membrane must be a Membrane (path_membrane, grid_membrane), got "
            f"{type(membrane).__name__}"
        )
    _barrier_args("relu", negative_slope, beta, mu)
    common = {
        "boundary_values": boundary_values,
        "f": f,
        "scale": membrane.scale,
    }
    exact = solve_obstacle(membrane.edge_index, psi, membrane.boundary_mask, **common)
    psi_t = _psi(psi)
    interior = ~membrane.boundary_mask
    n_int = int(interior.sum())

    def measures(u: Tensor) -> tuple[float, float, float]:
        gap = (u - psi_t)[interior]
        violation = float((-gap).clamp_min(0).max())
        rms = float((u - exact.u)[interior].pow(2).mean().sqrt())
        mine = gap <= ctol
        ref = (exact.u - psi_t)[interior] <= ctol
        union = int((mine | ref).sum())
        iou = 1.0 if union == 0 else int((mine & ref).sum()) / union
        return violation, rms, iou

    rows = []
    barrier_kw = {"negative_slope": negative_slope, "beta": beta}
    for barrier in barriers:
        pen = solve_penalized_obstacle(
            membrane.edge_index,
            psi,
            membrane.boundary_mask,
            barrier=barrier,
            mu=mu,
            **barrier_kw,
            **common,
        )
        pen_violation, pen_rms, _ = measures(pen.u)
        for name in models:
            out = fit_obstacle(
                membrane.edge_index,
                membrane.pos,
                psi,
                membrane.boundary_mask,
                model=name,
                barrier=barrier,
                mu=mu,
                hidden_channels=hidden_channels,
                num_layers=num_layers,
                epochs=epochs,
                lr=lr,
                lbfgs_steps=lbfgs_steps,
                seed=seed,
                **barrier_kw,
                **common,
            )
            violation, rms, iou = measures(out.u)
            per_node = barrier_penalty(out.u, psi_t, barrier, **barrier_kw)[interior]
            feasible = (out.u >= psi_t)[interior]
            rows.append(
                {
                    "model": name,
                    "barrier": barrier,
                    "max_violation": violation,
                    "rms_error": rms,
                    "contact_iou": iou,
                    "penalty": out.penalty,
                    "feasible_penalty": float(mu * per_node[feasible].sum() / n_int),
                    "zero_when_feasible": bool((per_node[feasible] == 0).all()),
                    "penalized_violation": pen_violation,
                    "penalized_rms_error": pen_rms,
                }
            )
    return pd.DataFrame(rows)
