import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.utils import get_laplacian, to_dense_adj

from gnnleaky.analysis import (
    BARRIERS,
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

# (peak, curvature, center, (g0, g1)): the default psi = 1/2 - 4 (x - 1/2)^2, an
# off-centre steep one with unequal boundary values, one whose contact set is a single
# node for small n, and one below the chord (no contact).
OBSTACLES = [
    (0.5, 4.0, 0.5, (0.0, 0.0)),
    (0.3, 10.0, 0.3, (0.1, -0.2)),
    (0.9, 30.0, 0.62, (0.2, 0.5)),
    (-0.1, 4.0, 0.5, (0.0, 0.0)),
]


def _boundary(cf):
    g = torch.zeros_like(cf.u)
    g[0], g[-1] = cf.u[0], cf.u[-1]
    return g


def _grid_problem(n):
    m = grid_membrane(n)
    x, y = m.pos[:, 0], m.pos[:, 1]
    psi = 0.5 - 4 * ((x - 0.5) ** 2 + (y - 0.5) ** 2)
    return m, psi


def test_path_membrane_is_the_finite_difference_second_derivative():
    m = path_membrane(9)
    ei, w = get_laplacian(m.edge_index, num_nodes=11)
    lap = to_dense_adj(ei, edge_attr=w, max_num_nodes=11)[0].double() * m.scale
    inner = lap[1:-1, 1:-1]
    k = torch.arange(1, 10, dtype=torch.float64)
    expected = (2 - 2 * torch.cos(math.pi * k / 10)) * 100  # Dirichlet spectrum / h^2
    assert torch.allclose(torch.linalg.eigvalsh(inner), expected, rtol=1e-12)
    # -u'' = 1 with u(0) = u(1) = 0: the difference scheme is exact for x (1 - x) / 2.
    sol = solve_obstacle(m.edge_index, torch.full((11,), -1.0), m.boundary_mask, f=1.0, scale=100)
    x = m.pos[:, 0]
    assert torch.allclose(sol.u, x * (1 - x) / 2, atol=1e-14)
    assert not sol.contact.any() and sol.iterations == 1


def test_grid_membrane_structure():
    m = grid_membrane(3)
    assert m.pos.shape == (25, 2) and int(m.boundary_mask.sum()) == 16
    deg = torch.bincount(m.edge_index[0], minlength=25)
    assert deg.view(5, 5)[1:-1, 1:-1].eq(4).all()  # interior nodes: 4 neighbours
    assert m.scale == pytest.approx(16.0) and m.spacing == pytest.approx(0.25)
    assert torch.equal(m.pos[7], torch.tensor([0.5, 0.25], dtype=torch.float64))


@pytest.mark.parametrize("obstacle", OBSTACLES)
@pytest.mark.parametrize("n", [1, 2, 7, 31, 64, 200])
def test_active_set_solver_matches_1d_closed_form(obstacle, n):
    peak, k, c, g = obstacle
    try:
        cf = obstacle_1d_closed_form(n, peak=peak, curvature=k, center=c, boundary_values=g)
    except ValueError:
        pytest.fail("closed form refused a valid obstacle")
    m = path_membrane(n)
    sol = solve_obstacle(
        m.edge_index, cf.psi, m.boundary_mask, boundary_values=_boundary(cf), scale=m.scale
    )
    assert sol.converged
    assert float((sol.u - cf.u).abs().max()) <= 1e-12
    assert torch.equal(sol.contact, cf.contact)
    assert sol.kkt_residual <= 1e-9 * m.scale


@pytest.mark.parametrize("obstacle", OBSTACLES[:3])
@pytest.mark.parametrize("n", [7, 31, 64])
def test_lbfgsb_matches_1d_closed_form_to_1e6(obstacle, n):
    peak, k, c, g = obstacle
    cf = obstacle_1d_closed_form(n, peak=peak, curvature=k, center=c, boundary_values=g)
    m = path_membrane(n)
    sol = solve_obstacle(
        m.edge_index,
        cf.psi,
        m.boundary_mask,
        boundary_values=_boundary(cf),
        scale=m.scale,
        method="lbfgsb",
    )
    assert float((sol.u - cf.u).abs().max()) <= 1e-6
    assert bool((sol.u >= cf.psi).all())


@pytest.mark.parametrize("n", [5, 63, 1000])
def test_closed_form_contact_nodes_and_tangent_points(n):
    cf = obstacle_1d_closed_form(n)
    h = 1 / (n + 1)
    s2 = (0.0 - (0.5 - 4 * 0.25)) / 4 / h**2  # (x_l / h)^2 = 1/8 / h^2
    j = cf.first_contact
    assert j * (j + 1) >= s2 - 1e-9 and (j == 1 or (j - 1) * j < s2)
    assert cf.last_contact == n + 1 - j  # symmetric obstacle
    x_l, x_r = cf.tangent_points
    assert x_l == pytest.approx(math.sqrt(1 / 8)) and x_r == pytest.approx(1 - math.sqrt(1 / 8))
    assert abs(j * h - x_l) <= h
    # The closed form is feasible and discretely concave, harmonic off contact.
    lap_u = (2 * cf.u[1:-1] - cf.u[:-2] - cf.u[2:]) / h**2
    assert bool((cf.u >= cf.psi - 1e-15).all())
    assert bool((lap_u >= -1e-9).all())
    assert float(lap_u[~cf.contact[1:-1]].abs().max()) <= 1e-8 * n
    assert torch.equal(cf.contact, (cf.u - cf.psi).abs() <= 1e-14)


def test_no_contact_closed_form_is_the_chord():
    cf = obstacle_1d_closed_form(9, peak=-0.1, boundary_values=(0.0, 0.0))
    assert (cf.first_contact, cf.last_contact) == (-1, -1)
    assert torch.equal(cf.u, torch.zeros(11, dtype=torch.float64))
    assert not cf.contact.any()


@pytest.mark.parametrize("load", [0.0, -20.0, 5.0])
def test_kkt_conditions_on_a_grid(load):
    m, psi = _grid_problem(15)
    sol = solve_obstacle(m.edge_index, psi, m.boundary_mask, f=load, scale=m.scale)
    inner = ~m.boundary_mask
    gap = (sol.u - psi)[inner]
    lam = sol.multiplier[inner]
    tol = 1e-12 * m.scale
    assert sol.converged
    assert float(gap.min()) >= 0.0  # u >= psi
    assert float(lam.min()) >= -tol  # L u - f >= 0
    assert float((gap * lam).abs().max()) <= tol  # complementarity
    assert sol.kkt_residual <= tol
    assert 0 < int(sol.contact.sum()) < int(inner.sum())
    # lambda is L u - f, recomputed from a dense Laplacian
    ei, w = get_laplacian(m.edge_index, num_nodes=psi.numel())
    lap = to_dense_adj(ei, edge_attr=w, max_num_nodes=psi.numel())[0].double() * m.scale
    assert torch.allclose((lap @ sol.u - load)[inner], lam, atol=tol)
    other = solve_obstacle(
        m.edge_index, psi, m.boundary_mask, f=load, scale=m.scale, method="lbfgsb"
    )
    assert float((other.u - sol.u).abs().max()) <= 1e-6


def test_edge_weights_scale_the_laplacian():
    m, psi = _grid_problem(7)
    sol = solve_obstacle(m.edge_index, psi, m.boundary_mask, scale=2 * m.scale)
    weighted = solve_obstacle(
        m.edge_index,
        psi,
        m.boundary_mask,
        scale=m.scale,
        edge_weight=torch.full((m.edge_index.size(1),), 2.0),
    )
    assert torch.allclose(sol.u, weighted.u, atol=1e-14)
    assert torch.allclose(sol.multiplier, weighted.multiplier, atol=1e-9)


def test_energy_matches_a_dense_laplacian():
    m = grid_membrane(4)
    g = torch.Generator().manual_seed(0)
    u = torch.randn(36, generator=g, dtype=torch.float64)
    f = torch.randn(36, generator=g, dtype=torch.float64)
    ei, w = get_laplacian(m.edge_index, num_nodes=36)
    lap = to_dense_adj(ei, edge_attr=w, max_num_nodes=36)[0].double() * m.scale
    expected = 0.5 * u @ lap @ u - f @ u
    energy = obstacle_energy(u, m.edge_index, f, scale=m.scale)
    assert float(energy) == pytest.approx(float(expected), rel=1e-13)
    assert float(obstacle_energy(torch.ones(36), m.edge_index, scale=m.scale)) == 0.0


def test_solution_minimizes_the_energy_among_feasible_perturbations():
    m, psi = _grid_problem(9)
    sol = solve_obstacle(m.edge_index, psi, m.boundary_mask, scale=m.scale)
    best = float(obstacle_energy(sol.u, m.edge_index, scale=m.scale))
    g = torch.Generator().manual_seed(1)
    inner = ~m.boundary_mask
    for _ in range(20):
        v = sol.u + 1e-3 * torch.randn(sol.u.shape, generator=g, dtype=torch.float64) * inner
        v = torch.maximum(v, torch.where(inner, psi, v))  # project onto u >= psi
        assert float(obstacle_energy(v, m.edge_index, scale=m.scale)) >= best


# Gaps psi - u: exactly 0 or at least 1e-6 away from it (squares of tinier gaps underflow).
_GAPS = st.one_of(st.just(0.0), st.floats(1e-6, 5.0), st.floats(-5.0, -1e-6))


@settings(max_examples=80, deadline=None)
@given(
    u=st.lists(st.floats(-5, 5), min_size=1, max_size=8),
    gaps=st.lists(_GAPS, min_size=8, max_size=8),
)
def test_relu_barrier_is_exactly_zero_iff_feasible(u, gaps):
    ut = torch.tensor(u, dtype=torch.float64)
    psi = ut + torch.tensor(gaps[: len(u)], dtype=torch.float64)
    feasible = ut >= psi
    relu = barrier_penalty(ut, psi)
    assert bool((relu[feasible] == 0.0).all())
    assert bool((relu[~feasible] > 0).all())
    leaky = barrier_penalty(ut, psi, "leaky_relu", negative_slope=0.1)
    assert bool((leaky[ut > psi] > 0).all())  # feasible points are charged
    assert torch.equal(leaky[~feasible], relu[~feasible])  # same on the violating side
    soft = barrier_penalty(ut, psi, "softplus", beta=10.0)
    assert bool((soft > 0).all())  # everywhere


def test_penalized_relu_minimizer_violates_by_lambda_over_2mu():
    n = 63
    m, cf = path_membrane(n), obstacle_1d_closed_form(n)
    exact = solve_obstacle(m.edge_index, cf.psi, m.boundary_mask, scale=m.scale)
    for mu in (1e3, 1e4, 1e5):
        pen = solve_penalized_obstacle(
            m.edge_index, cf.psi, m.boundary_mask, scale=m.scale, mu=mu, barrier="relu"
        )
        assert pen.converged
        violation = float((cf.psi - pen.u).clamp_min(0).max())
        floor = float(exact.multiplier.max()) / (2 * mu)
        assert violation == pytest.approx(floor, rel=2e-3)
        feasible = pen.u >= cf.psi
        assert bool((barrier_penalty(pen.u, cf.psi)[feasible] == 0.0).all())
    # The Leaky ReLU and softplus barriers charge feasible nodes: their minimizers move
    # away from the exact solution where the constraint is inactive.
    for barrier in ("leaky_relu", "softplus"):
        pen = solve_penalized_obstacle(
            m.edge_index, cf.psi, m.boundary_mask, scale=m.scale, barrier=barrier
        )
        free = ~exact.contact & ~m.boundary_mask
        assert float((pen.u - exact.u)[free].abs().max()) > 1e-3
        feasible = (pen.u >= cf.psi) & ~m.boundary_mask
        assert bool((barrier_penalty(pen.u, cf.psi, barrier)[feasible] > 0).all())


def test_learned_relu_barrier_solution():
    n = 31
    m, cf = path_membrane(n), obstacle_1d_closed_form(n)
    for model in ("mlp", "gnn"):
        out = fit_obstacle(
            m.edge_index,
            m.pos,
            cf.psi,
            m.boundary_mask,
            scale=m.scale,
            model=model,
            epochs=300,
            lbfgs_steps=150,
        )
        inner = ~m.boundary_mask
        feasible = out.u >= cf.psi
        per_node = barrier_penalty(out.u, cf.psi)
        assert bool((per_node[feasible] == 0.0).all())  # exactly, not approximately
        assert int(feasible[inner].sum()) > n // 2
        assert float((cf.psi - out.u).clamp_min(0).max()) < 5e-3
        assert float((out.u - cf.u)[inner].pow(2).mean().sqrt()) < 5e-3
        assert torch.equal(out.u[m.boundary_mask], torch.zeros(2, dtype=torch.float64))


def test_fit_is_deterministic_and_leaves_the_global_rng_alone():
    m, cf = path_membrane(7), obstacle_1d_closed_form(7)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    kw = {"scale": m.scale, "epochs": 20, "lbfgs_steps": 5, "seed": 3}
    a = fit_obstacle(m.edge_index, m.pos, cf.psi, m.boundary_mask, **kw)
    assert torch.equal(torch.rand(3), before)
    b = fit_obstacle(m.edge_index, m.pos, cf.psi, m.boundary_mask, **kw)
    assert torch.equal(a.u, b.u)
    c = fit_obstacle(m.edge_index, m.pos, cf.psi, m.boundary_mask, **{**kw, "seed": 4})
    assert not torch.equal(a.u, c.u)


def test_obstacle_table_columns_and_claim():
    m, cf = path_membrane(15), obstacle_1d_closed_form(15)
    df = obstacle_table(m, cf.psi, models=["mlp"], epochs=100, lbfgs_steps=100)
    assert list(df.barrier) == ["relu", "leaky_relu", "softplus"]
    assert {
        "max_violation",
        "rms_error",
        "contact_iou",
        "penalty",
        "feasible_penalty",
        "zero_when_feasible",
        "penalized_violation",
        "penalized_rms_error",
    } <= set(df.columns)
    relu = df[df.barrier == "relu"].iloc[0]
    assert bool(relu.zero_when_feasible) and relu.feasible_penalty == 0.0
    assert not df[df.barrier != "relu"].zero_when_feasible.any()
    assert (df[df.barrier != "relu"].feasible_penalty > 0).all()
    assert ((df.contact_iou >= 0) & (df.contact_iou <= 1)).all()


def test_input_errors():
    m = path_membrane(5)
    cf = obstacle_1d_closed_form(5)
    ei, psi, bm = m.edge_index, cf.psi, m.boundary_mask

    def solve(**kw):
        args = {"edge_index": ei, "psi": psi, "boundary_mask": bm, **kw}
        return solve_obstacle(
            args.pop("edge_index"), args.pop("psi"), args.pop("boundary_mask"), **args
        )

    with pytest.raises(ValueError, match="psi must be <= the boundary values"):
        solve(psi=torch.full((7,), 0.1))
    with pytest.raises(ValueError, match=r"psi must be <= the boundary values at both ends"):
        obstacle_1d_closed_form(5, peak=2.0, curvature=1.0)
    with pytest.raises(ValueError, match="boundary_values"):
        solve(boundary_values=torch.zeros(6))
    with pytest.raises(ValueError, match="boundary_mask"):
        solve(boundary_mask=bm[:-1])
    with pytest.raises(ValueError, match="boundary_mask"):
        solve(boundary_mask=bm.long())
    with pytest.raises(ValueError, match="boundary_mask"):
        solve(boundary_mask=torch.zeros(7, dtype=torch.bool))
    with pytest.raises(ValueError, match="psi contains NaN"):
        solve(psi=torch.tensor([-1.0, float("nan"), 0, 0, 0, 0, -1]))
    with pytest.raises(ValueError, match="f contains NaN or Inf"):
        solve(f=float("inf"))
    with pytest.raises(ValueError, match="psi must have shape"):
        solve(psi=psi.view(1, -1))
    with pytest.raises(ValueError, match="scale"):
        solve(scale=0.0)
    with pytest.raises(ValueError, match="method must be one of"):
        solve(method="newton")
    with pytest.raises(ValueError, match="undirected"):
        solve(edge_index=torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]]))
    with pytest.raises(ValueError, match="edge_index"):
        solve(edge_index=torch.tensor([[0, 9], [9, 0]]))
    with pytest.raises(ValueError, match="every connected component"):
        solve(edge_index=torch.tensor([[0, 1, 5, 6], [1, 0, 6, 5]]))
    with pytest.raises(ValueError, match="max_iter"):
        solve(max_iter=0)
    with pytest.raises(ValueError, match="num_interior"):
        path_membrane(0)
    with pytest.raises(ValueError, match="num_interior"):
        grid_membrane(0)
    with pytest.raises(ValueError, match="num_interior"):
        obstacle_1d_closed_form(0)
    with pytest.raises(ValueError, match="curvature"):
        obstacle_1d_closed_form(5, curvature=-1.0)
    with pytest.raises(ValueError, match="boundary_values"):
        obstacle_1d_closed_form(5, boundary_values=(0.0, float("nan")))
    fit = {"scale": m.scale, "epochs": 1, "lbfgs_steps": 0}
    with pytest.raises(ValueError, match=r"mu must be a finite float > 0"):
        fit_obstacle(ei, m.pos, psi, bm, mu=0.0, **fit)
    with pytest.raises(
        ValueError, match=r"barrier must be one of \['leaky_relu', 'relu', 'softplus'\]"
    ):
        fit_obstacle(ei, m.pos, psi, bm, barrier="elu", **fit)
    with pytest.raises(ValueError, match="model must be one of"):
        fit_obstacle(ei, m.pos, psi, bm, model="transformer", **fit)
    with pytest.raises(ValueError, match="pos must be a tensor of shape"):
        fit_obstacle(ei, m.pos[:-1], psi, bm, **fit)
    with pytest.raises(ValueError, match="beta"):
        fit_obstacle(ei, m.pos, psi, bm, barrier="softplus", beta=-1.0, **fit)
    with pytest.raises(ValueError, match="negative_slope"):
        barrier_penalty(psi, psi, "leaky_relu", negative_slope=float("nan"))
    with pytest.raises(ValueError, match="u and psi"):
        barrier_penalty(psi, psi[:-1])
    with pytest.raises(ValueError, match="mu"):
        solve_penalized_obstacle(ei, psi, bm, mu=-1.0)
    with pytest.raises(ValueError, match="barriers must be one of"):
        obstacle_table(m, psi, barriers=["tanh"])
    with pytest.raises(ValueError, match="membrane"):
        obstacle_table((ei, m.pos), psi)
    assert BARRIERS == ("leaky_relu", "relu", "softplus")


def test_solver_rounding_only_on_random_grids():
    # Random obstacles on a grid: the active-set method always stops with the KKT
    # conditions holding to rounding (the M-matrix guarantee).
    m = grid_membrane(10)
    rng = np.random.default_rng(0)
    for _ in range(5):
        psi = torch.from_numpy(rng.normal(size=144) * 0.3 - 0.1)
        psi[m.boundary_mask] = torch.clamp(psi[m.boundary_mask], max=0.0)
        sol = solve_obstacle(m.edge_index, psi, m.boundary_mask, scale=m.scale)
        assert sol.converged and sol.kkt_residual <= 1e-10 * m.scale
