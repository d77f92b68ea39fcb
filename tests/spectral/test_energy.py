import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.utils import get_laplacian, to_undirected

from gnnleaky.spectral import (
    GraphCache,
    dirichlet_energy,
    effective_rank,
    frobenius_norm,
    mad,
    mad_gap,
    madgap_pairs,
    rayleigh_quotient,
)
from tests.spectral._graphs import dense_adjacency, dense_operator, path_graph, quad, random_graph

NORMS = [None, "sym", "rw"]


def _reference_energy(x, edge_index, n, w, normalization, loops):
    lap, _ = dense_operator(edge_index, n, w, normalization, loops)
    q = quad(x, lap)
    if normalization is None:
        return 2.0 * q / n
    return q


# -- known answers --------------------------------------------------------------------------
def test_constant_signal_has_zero_unnormalized_energy():
    edge_index, w = random_graph(30, 80, seed=1)
    x = torch.full((30, 5), 3.7)
    assert float(dirichlet_energy(x, edge_index, w)) == pytest.approx(0.0, abs=1e-12)
    assert float(dirichlet_energy(x, edge_index, w, "rw")) == pytest.approx(0.0, abs=1e-12)


def test_normalized_energy_of_constant_is_not_zero_but_of_sqrt_degree_is():
    edge_index = path_graph(5)  # degrees 1, 2, 2, 2, 1 differ
    x = torch.ones(5, 1)
    assert float(dirichlet_energy(x, edge_index, normalization="sym")) > 0.05
    deg = torch.tensor([1.0, 2, 2, 2, 1])
    smooth = deg.sqrt()[:, None]
    assert float(dirichlet_energy(smooth, edge_index, normalization="sym")) == pytest.approx(
        0.0, abs=1e-12
    )


def test_unnormalized_energy_is_the_survey_double_sum():
    edge_index, w = random_graph(25, 60, seed=2)
    x = torch.randn(25, 3, dtype=torch.float64)
    n = 25
    a = dense_adjacency(edge_index, n, w)
    xn = x.numpy()
    double_sum = sum(a[i, j] * np.sum((xn[i] - xn[j]) ** 2) for i in range(n) for j in range(n))
    assert float(dirichlet_energy(x, edge_index, w)) == pytest.approx(double_sum / n, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("add_self_loops", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_energy_matches_dense_reference(seed, normalization, add_self_loops, weighted):
    n = 35
    edge_index, w = random_graph(n, 70, seed=seed, weighted=weighted)
    x = torch.randn(n, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    got = dirichlet_energy(x, edge_index, w, normalization, add_self_loops=add_self_loops)
    ref = _reference_energy(x, edge_index, n, w, normalization, add_self_loops)
    assert float(got) == pytest.approx(ref, rel=1e-10, abs=1e-12)
    # Rayleigh quotient against the same reference
    lap, deg = dense_operator(edge_index, n, w, normalization, add_self_loops)
    den = quad(x, deg) if normalization == "rw" else float((x * x).sum())
    got_r = rayleigh_quotient(x, edge_index, w, normalization, add_self_loops=add_self_loops)
    assert float(got_r) == pytest.approx(quad(x, lap) / den, rel=1e-10)


def test_sym_energy_matches_pyg_get_laplacian():
    n = 30
    edge_index, w = random_graph(n, 60, seed=5, loops=0)
    x = torch.randn(n, 4, dtype=torch.float64)
    li, lw = get_laplacian(edge_index, w, normalization="sym", num_nodes=n)
    lap = torch.zeros(n, n, dtype=torch.float64).index_put_((li[0], li[1]), lw, accumulate=True)
    ref = float(torch.trace(x.T @ lap @ x))
    assert float(dirichlet_energy(x, edge_index, w, "sym")) == pytest.approx(ref, rel=1e-10)


def test_isolated_nodes_follow_pyg_convention():
    # no edges at all: sym Laplacian = I (L_ii = 1), with self-loops = 0
    x = torch.randn(4, 3, dtype=torch.float64)
    empty = torch.zeros(2, 0, dtype=torch.long)
    assert float(dirichlet_energy(x, empty)) == 0.0
    assert float(dirichlet_energy(x, empty, normalization="sym")) == pytest.approx(
        float((x * x).sum())
    )
    assert float(rayleigh_quotient(x, empty)) == pytest.approx(1.0)
    assert float(dirichlet_energy(x, empty, normalization="sym", add_self_loops=True)) == 0.0
    assert float(rayleigh_quotient(x, empty, normalization="rw")) == 0.0  # ||X||_D = 0


def test_eigenvector_rayleigh_quotient_is_its_eigenvalue():
    n = 30
    edge_index, w = random_graph(n, 70, seed=3)
    for normalization, loops in [("sym", False), ("sym", True), (None, False)]:
        lap, _ = dense_operator(edge_index, n, w, normalization, loops)
        evals, evecs = np.linalg.eigh(lap)
        for k in [0, 5, n // 2, n - 1]:
            v = torch.from_numpy(evecs[:, k : k + 1].copy())
            got = rayleigh_quotient(v, edge_index, w, normalization, add_self_loops=loops)
            assert float(got) == pytest.approx(evals[k], abs=1e-10)


def test_rw_quotient_equals_sym_quotient_of_sqrt_degree_scaled_signal():
    n = 30
    edge_index, w = random_graph(n, 70, seed=4)
    x = torch.randn(n, 3, dtype=torch.float64)
    cache = GraphCache(edge_index, n, w)
    y = x * cache.degree().sqrt()[:, None]
    rw = rayleigh_quotient(x, edge_index, w, "rw", cache=cache)
    sym = rayleigh_quotient(y, edge_index, w, "sym", cache=cache)
    assert float(rw) == pytest.approx(float(sym), rel=1e-12)


def test_two_node_graph_values():
    edge_index = torch.tensor([[0, 1], [1, 0]])
    x = torch.tensor([[1.0], [-1.0]])
    assert float(dirichlet_energy(x, edge_index)) == pytest.approx(4.0)  # (4 + 4) / 2
    assert float(rayleigh_quotient(x, edge_index)) == pytest.approx(2.0)
    assert float(rayleigh_quotient(x, edge_index, normalization=None)) == pytest.approx(2.0)


# -- directed input, validation and edge cases ------------------------------------------------
def test_directed_input_is_refused_or_symmetrized():
    directed = torch.tensor([[0, 1, 2], [1, 2, 0]])
    x = torch.randn(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="edge_index is directed"):
        dirichlet_energy(x, directed)
    with pytest.raises(ValueError, match="symmetrize=True"):
        rayleigh_quotient(x, directed)
    # symmetrize=True uses (A + A^T) / 2: the unnormalized energy is the survey's double
    # sum read on the directed edge list, and half of that of the undirected triangle
    und = to_undirected(directed)
    got = dirichlet_energy(x, directed, symmetrize=True)
    assert float(got) == pytest.approx(0.5 * float(dirichlet_energy(x, und)), rel=1e-12)
    edges = sum(float(((x[i] - x[j]) ** 2).sum()) for i, j in directed.t().tolist())
    assert float(got) == pytest.approx(edges / 3, rel=1e-12)
    # symmetrize on an undirected graph changes nothing; sym is scale invariant
    assert float(dirichlet_energy(x, und, symmetrize=True)) == pytest.approx(
        float(dirichlet_energy(x, und))
    )
    assert float(rayleigh_quotient(x, directed, symmetrize=True)) == pytest.approx(
        float(rayleigh_quotient(x, und))
    )


def test_asymmetric_weights_are_directed():
    edge_index = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="directed"):
        dirichlet_energy(torch.ones(2, 1), edge_index, torch.tensor([1.0, 2.0]))


@pytest.mark.parametrize(
    ("x", "edge_index", "match"),
    [
        (torch.randn(3, 2), torch.tensor([[0, 3], [3, 0]]), "num_nodes=3"),
        (torch.randn(3, 2), torch.tensor([[0, -1], [-1, 0]]), "negative"),
        (torch.randn(3, 2), torch.tensor([[0.0, 1.0], [1.0, 0.0]]), "integer dtype"),
        (torch.randn(3, 2), torch.tensor([0, 1]), r"shape \[2, E\]"),
        (torch.tensor([[0.0], [float("nan")], [1.0]]), torch.tensor([[0, 1], [1, 0]]), "NaN"),
        (torch.tensor([[0.0], [float("inf")], [1.0]]), torch.tensor([[0, 1], [1, 0]]), "Inf"),
        (torch.randn(3), torch.tensor([[0, 1], [1, 0]]), r"\[N, C\]"),
        (torch.ones(3, 2, dtype=torch.long), torch.tensor([[0, 1], [1, 0]]), "floating"),
    ],
)
def test_invalid_input_raises_clear_errors(x, edge_index, match):
    with pytest.raises(ValueError, match=match):
        dirichlet_energy(x, edge_index)


def test_invalid_options_raise():
    x, ei = torch.randn(3, 2), torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="normalization must be one of"):
        dirichlet_energy(x, ei, normalization="gcn")
    with pytest.raises(ValueError, match="edge_weight must be non-negative"):
        dirichlet_energy(x, ei, torch.tensor([-1.0, -1.0]))
    with pytest.raises(ValueError, match="edge_weight has 3 entries"):
        dirichlet_energy(x, ei, torch.ones(3))
    with pytest.raises(ValueError, match="batch has 2 entries"):
        dirichlet_energy(x, ei, batch=torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="different graphs"):
        dirichlet_energy(x, ei, batch=torch.tensor([0, 1, 1]))
    other = GraphCache(torch.tensor([[1, 2], [2, 1]]), 3)
    with pytest.raises(ValueError, match="cache was built for a different graph"):
        dirichlet_energy(x, ei, cache=other)
    own = GraphCache(ei, 3)
    dirichlet_energy(x, ei, cache=own)
    ei[0, 0] = 1  # modified in place: the cache is stale
    with pytest.raises(ValueError, match="cache was built for a different graph"):
        dirichlet_energy(x, ei, cache=own)


def test_empty_graph_and_zero_signal_give_numbers_not_nan():
    x0 = torch.zeros(0, 3)
    e0 = torch.zeros(2, 0, dtype=torch.long)
    for fn in (dirichlet_energy, rayleigh_quotient):
        for norm in NORMS:
            value = fn(x0, e0, normalization=norm)
            assert float(value) == 0.0
    assert float(mad(x0, e0)) == 0.0
    assert float(effective_rank(x0)) == 0.0
    ei = path_graph(4)
    z = torch.zeros(4, 2)
    for norm in NORMS:
        assert float(rayleigh_quotient(z, ei, normalization=norm)) == 0.0
    assert float(effective_rank(z)) == 0.0


# -- stacked features, batches, precision, gradients ----------------------------------------
@pytest.mark.parametrize("normalization", NORMS)
def test_stacked_features_match_one_by_one(normalization):
    n = 30
    edge_index, w = random_graph(n, 70, seed=6)
    xs = torch.randn(4, n, 5)
    cache = GraphCache(edge_index, n, w)
    for fn in (dirichlet_energy, rayleigh_quotient):
        got = fn(xs, edge_index, w, normalization, cache=cache)
        assert got.shape == (4,)
        ref = torch.stack([fn(xs[k], edge_index, w, normalization, cache=cache) for k in range(4)])
        assert torch.allclose(got, ref, rtol=1e-6)
    for fn in (mad, effective_rank, frobenius_norm):
        args = (edge_index,) if fn is mad else ()
        got = fn(xs, *args)
        ref = torch.stack([fn(xs[k], *args) for k in range(4)])
        assert got.shape == (4,) and torch.allclose(got, ref, rtol=1e-6)


@pytest.mark.parametrize("normalization", NORMS)
def test_batch_gives_one_value_per_graph(normalization):
    graphs = [random_graph(12 + 3 * i, 25, seed=10 + i) for i in range(3)]
    sizes = [12 + 3 * i for i in range(3)]
    offsets = [0, *np.cumsum(sizes)[:-1].tolist()]
    edge_index = torch.cat([g[0] + o for g, o in zip(graphs, offsets)], 1)
    w = torch.cat([g[1] for g in graphs])
    batch = torch.cat([torch.full((s,), i) for i, s in enumerate(sizes)])
    x = torch.randn(sum(sizes), 4, dtype=torch.float64)
    xs = torch.randn(2, sum(sizes), 4, dtype=torch.float64)
    for fn in (dirichlet_energy, rayleigh_quotient):
        got = fn(x, edge_index, w, normalization, batch=batch)
        got_k = fn(xs, edge_index, w, normalization, batch=batch)
        assert got.shape == (3,) and got_k.shape == (2, 3)
        for i, (g, o, s) in enumerate(zip(graphs, offsets, sizes)):
            ref = fn(x[o : o + s], g[0], g[1], normalization)
            assert float(got[i]) == pytest.approx(float(ref), rel=1e-10)
            ref_k = fn(xs[1, o : o + s], g[0], g[1], normalization)
            assert float(got_k[1, i]) == pytest.approx(float(ref_k), rel=1e-10)
    for fn in (mad, effective_rank, frobenius_norm):
        args = (edge_index,) if fn is mad else ()
        got = fn(x, *args, batch=batch)
        for i, (g, o, s) in enumerate(zip(graphs, offsets, sizes)):
            ref = fn(x[o : o + s], *((g[0],) if fn is mad else ()))
            assert float(got[i]) == pytest.approx(float(ref), rel=1e-10)


def test_float32_energy_stays_accurate_when_nearly_smooth():
    # nearly oversmoothed features: constant rows plus 1e-4 noise; the edge-wise float32
    # computation keeps the tiny energy accurate (a product-form X^T X - X^T A X would not)
    n = 200
    edge_index = to_undirected(
        torch.randint(0, n, (2, 800), generator=torch.Generator().manual_seed(0))
    )
    base = torch.randn(1, 16, dtype=torch.float64) * 10
    noise = 1e-4 * torch.randn(n, 16, dtype=torch.float64)
    x = (base + noise).float()
    ref = dirichlet_energy(x.double(), edge_index)
    got = dirichlet_energy(x, edge_index)
    assert float(ref) > 0
    assert float(got) == pytest.approx(float(ref), rel=1e-5)


def test_energies_are_differentiable_and_gradients_are_exact():
    n = 12
    edge_index, w = random_graph(n, 25, seed=7)
    x = torch.randn(2, n, 3, dtype=torch.float64, requires_grad=True)
    batch = torch.zeros(n, dtype=torch.long)
    for norm in NORMS:
        torch.autograd.gradcheck(
            lambda t, norm=norm: dirichlet_energy(t, edge_index, w, norm), (x,)
        )
        torch.autograd.gradcheck(
            lambda t, norm=norm: rayleigh_quotient(t, edge_index, w, norm, batch=batch), (x,)
        )
    torch.autograd.gradcheck(lambda t: mad(t, edge_index), (x,))
    torch.autograd.gradcheck(lambda t: effective_rank(t), (x,))
    # d/dX of tr(X^T L X) is 2 L X
    x1 = torch.randn(n, 3, dtype=torch.float64, requires_grad=True)
    lap, _ = dense_operator(edge_index, n, w, "sym")
    dirichlet_energy(x1, edge_index, w, "sym").backward()
    assert torch.allclose(x1.grad, 2 * torch.from_numpy(lap) @ x1.detach(), atol=1e-10)


# -- properties -----------------------------------------------------------------------------
@st.composite
def graphs_and_signals(draw):
    n = draw(st.integers(1, 14))
    m = draw(st.integers(0, 30))
    seed = draw(st.integers(0, 10_000))
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, m), generator=g)
    w = torch.rand(m, generator=g, dtype=torch.float64) * draw(st.sampled_from([0.0, 1.0, 5.0]))
    ei, w = to_undirected(ei, w, num_nodes=n)
    scale = draw(st.sampled_from([1e-6, 1.0, 1e4]))
    x = torch.randn(n, draw(st.integers(1, 4)), generator=g, dtype=torch.float64) * scale
    return x, ei, w, draw(st.booleans())


@settings(max_examples=60, deadline=None)
@given(graphs_and_signals())
def test_energies_are_nonnegative_and_normalized_quotients_in_0_2(case):
    x, ei, w, loops = case
    for norm in NORMS:
        e = dirichlet_energy(x, ei, w, norm, add_self_loops=loops)
        assert torch.isfinite(e) and float(e) >= -1e-12 * max(1.0, float((x * x).sum()))
        r = rayleigh_quotient(x, ei, w, norm, add_self_loops=loops)
        assert torch.isfinite(r)
        if norm is not None:
            assert -1e-9 <= float(r) <= 2 + 1e-9
    assert 0.0 <= float(mad(x, ei)) <= 2.0
    erank = float(effective_rank(x))
    assert erank == 0.0 or 1.0 - 1e-9 <= erank <= min(x.shape) + 1e-9


# -- MAD, MADGap, effective rank --------------------------------------------------------------
def test_mad_known_answers():
    ei = path_graph(3)
    same = torch.tensor([[1.0, 2.0]] * 3)
    assert float(mad(same, ei)) == pytest.approx(0.0, abs=1e-12)
    scaled = torch.tensor([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]])  # same direction
    assert float(mad(scaled, ei)) == pytest.approx(0.0, abs=1e-7)
    ortho = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert float(mad(ortho, ei)) == pytest.approx(1.0)
    opposite = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    assert float(mad(opposite, ei)) == pytest.approx(2.0)
    # zero vector: distance 1 to everything; self-pairs ignored
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert float(mad(z, torch.tensor([[0, 0], [1, 0]]))) == pytest.approx(1.0)
    # boolean masks: mask[i, j] -> node i averages over j
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[0, 1] = mask[0, 2] = True  # node 0: distances to 1 (1) and 2 (0) -> 0.5
    assert float(mad(ortho, mask)) == pytest.approx(0.5)


def test_mad_gap_and_hop_pairs():
    n = 12
    ei = path_graph(n)
    near, far = madgap_pairs(ei, n, neighbor_hops=2, remote_hops=6)
    hop = {(i, j): abs(i - j) for i in range(n) for j in range(n)}
    assert all(1 <= hop[(i, j)] <= 2 for i, j in near.t().tolist())
    assert all(hop[(i, j)] >= 6 for i, j in far.t().tolist())
    assert near.size(1) == sum(1 for v in hop.values() if 1 <= v <= 2)
    assert far.size(1) == sum(1 for v in hop.values() if v >= 6)
    # features rotating along the path: close nodes similar, far nodes different
    angle = torch.linspace(0, math.pi, n)
    x = torch.stack([angle.cos(), angle.sin()], 1)
    assert float(mad_gap(x, near, far)) > 0.5
    assert float(mad_gap(torch.ones(n, 2), near, far)) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="neighbor_hops"):
        madgap_pairs(ei, n, neighbor_hops=3, remote_hops=2)


def test_effective_rank_known_answers():
    assert float(effective_rank(torch.eye(5))) == pytest.approx(5.0)
    q, _ = torch.linalg.qr(torch.randn(50, 4, dtype=torch.float64))
    assert float(effective_rank(q)) == pytest.approx(4.0)
    u, v = torch.randn(30, 1), torch.randn(1, 8)
    assert float(effective_rank(u @ v)) == pytest.approx(1.0, abs=1e-4)
    # singular values (2, 1, 1): p = (1/2, 1/4, 1/4) -> exp(H) = 2 * sqrt(2)
    d = torch.diag(torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64))
    assert float(effective_rank(d)) == pytest.approx(2 * math.sqrt(2))
    # centering removes a shared offset: constant + rank-1 -> rank 1 after centering
    x = 5 + torch.randn(40, 1, dtype=torch.float64) @ torch.randn(1, 6, dtype=torch.float64)
    assert float(effective_rank(x)) > 1.01
    assert float(effective_rank(x, center=True)) == pytest.approx(1.0, abs=1e-6)
