import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.utils import to_undirected

from gnnleaky.spectral import (
    GraphCache,
    band_energy,
    band_weights,
    eigenbasis,
    graph_fourier_transform,
    high_frequency_ratio,
)
from tests.spectral._graphs import complete_bipartite, dense_operator, path_graph, random_graph


@pytest.mark.parametrize("n", [2, 5, 17])
def test_path_graph_spectrum(n):
    ei = path_graph(n)
    k = torch.arange(n, dtype=torch.float64)
    evals, _ = eigenbasis(ei, n, normalization=None)
    assert torch.allclose(evals, 2 - 2 * torch.cos(math.pi * k / n), atol=1e-12)
    # the normalized path Laplacian: 1 - cos(pi k / (n - 1))
    evals, _ = eigenbasis(ei, n, normalization="sym")
    assert torch.allclose(evals, 1 - torch.cos(math.pi * k / (n - 1)), atol=1e-12)


def test_eigenbasis_matches_dense_reference_with_isolated_nodes_and_loops():
    n = 30
    ei, w = random_graph(n, 60, seed=0)
    for normalization, loops in [("sym", False), ("sym", True), (None, False)]:
        lap, _ = dense_operator(ei, n, w, normalization, loops)
        evals, evecs = eigenbasis(ei, n, w, normalization, add_self_loops=loops)
        assert np.allclose(evals.numpy(), np.linalg.eigvalsh(lap), atol=1e-10)
        recon = evecs @ torch.diag(evals) @ evecs.T
        assert np.allclose(recon.numpy(), lap, atol=1e-10)
        assert torch.allclose(evecs.T @ evecs, torch.eye(n, dtype=torch.float64), atol=1e-10)


def test_eigenbasis_refuses_large_graphs_and_points_to_kpm():
    ei = path_graph(50)
    with pytest.raises(ValueError, match="kernel polynomial method"):
        eigenbasis(ei, 50, max_nodes=10)
    with pytest.raises(ValueError, match="method='kpm'"):
        band_energy(torch.randn(50, 2), ei, max_nodes=10)
    with pytest.raises(ValueError, match="'rw' has the eigenvalues of 'sym'"):
        eigenbasis(ei, 50, normalization="rw")
    # method="auto" switches to the scalable path instead
    x = torch.randn(50, 2, dtype=torch.float64)
    auto = band_energy(x, ei, method="auto", max_nodes=10)
    assert torch.allclose(auto, band_energy(x, ei, method="kpm"))


def test_graph_fourier_transform_is_parseval():
    n = 25
    ei, w = random_graph(n, 50, seed=1)
    x = torch.randn(n, 3, dtype=torch.float64)
    _, evecs = eigenbasis(ei, n, w)
    xhat = graph_fourier_transform(x, evecs)
    assert float((xhat**2).sum()) == pytest.approx(float((x**2).sum()), rel=1e-12)
    assert torch.allclose(evecs @ xhat, x, atol=1e-12)
    stacked = graph_fourier_transform(torch.stack([x, 2 * x]), evecs)
    assert stacked.shape == (2, n, 3) and torch.allclose(stacked[1], 2 * xhat)


def test_band_energy_matches_direct_eigen_sum():
    n = 30
    ei, w = random_graph(n, 60, seed=2)
    x = torch.randn(n, 4, dtype=torch.float64)
    lap, _ = dense_operator(ei, n, w, "sym")
    lam, u = np.linalg.eigh(lap)
    e = ((u.T @ x.numpy()) ** 2).sum(1)
    edges = [0.0, 0.7, 1.3, 2.0]
    ref = [e[lam < 0.7].sum(), e[(lam >= 0.7) & (lam < 1.3)].sum(), e[lam >= 1.3].sum()]
    got = band_energy(x, ei, w, edges)
    assert np.allclose(got.numpy(), ref, rtol=1e-10)
    hf = high_frequency_ratio(x, ei, w, cutoff=0.7)
    assert float(hf) == pytest.approx(e[lam >= 0.7].sum() / e.sum(), rel=1e-10)


@pytest.mark.parametrize("graph", ["star", "bipartite"])
def test_degenerate_eigenvalue_at_cutoff_is_split_half_half(graph):
    # star K_{1,7} and K_{3,4}: normalized eigenvalues 0, 1 (multiplicity n - 2), 2
    ei, n = (complete_bipartite(1, 7), 8) if graph == "star" else (complete_bipartite(3, 4), 7)
    evals, evecs = eigenbasis(ei, n)
    at_one = (evals - 1).abs() < 1e-9
    assert int(at_one.sum()) == n - 2
    # a signal inside the eigenvalue-1 eigenspace: exactly half above the cutoff
    inside = evecs[:, at_one] @ torch.randn(n - 2, 3, dtype=torch.float64)
    assert float(high_frequency_ratio(inside, ei)) == pytest.approx(0.5, abs=1e-12)
    bands = band_energy(inside, ei, bands=[0.0, 1.0, 2.0])
    assert torch.allclose(bands, bands.sum() / 2 * torch.ones(2, dtype=torch.float64))
    # a random signal: (e_1 / 2 + e_2) / total, with e_k from the known eigenspaces
    x = torch.randn(n, 3, dtype=torch.float64)
    deg = torch.zeros(n, dtype=torch.float64).index_add_(
        0, ei[0], torch.ones(ei.size(1), dtype=torch.float64)
    )
    u0 = deg.sqrt() / deg.sqrt().norm()
    side = torch.where(torch.arange(n) < (1 if graph == "star" else 3), 1.0, -1.0)
    u2 = (deg.sqrt() * side) / (deg.sqrt() * side).norm()
    total = float((x * x).sum())
    e0, e2 = float(((u0 @ x) ** 2).sum()), float(((u2 @ x) ** 2).sum())
    e1 = total - e0 - e2
    assert float(high_frequency_ratio(x, ei)) == pytest.approx((e1 / 2 + e2) / total, rel=1e-10)
    # perturbing the eigenvalues by round-off does not move the split; tol=0 would decide by
    # the sign of the round-off error
    lam = torch.tensor([1 - 1e-13, 1 + 1e-13, 1.0], dtype=torch.float64)
    w = band_weights(lam, [0.0, 1.0, 2.0], tol=2e-6)
    assert torch.equal(w, torch.full((3, 2), 0.5, dtype=torch.float64))
    w0 = band_weights(lam, [0.0, 1.0, 2.0], tol=0.0)
    assert w0[:2].tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_band_weights_outer_edges_count_fully():
    lam = torch.tensor([-1e-15, 0.5, 2.0 + 1e-15], dtype=torch.float64)
    w = band_weights(lam, [0.0, 1.0, 2.0], tol=1e-9)
    assert w.tolist() == [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match="wider than"):
        band_weights(lam, [0.0, 1e-10, 2.0], tol=1e-9)


def test_band_arguments_validated():
    ei = path_graph(4)
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="bands must"):
        band_energy(x, ei, bands=0)
    with pytest.raises(ValueError, match="strictly increasing"):
        band_energy(x, ei, bands=[0.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="method must be one of"):
        band_energy(x, ei, method="lanczos")
    with pytest.raises(ValueError, match="tol must be"):
        band_energy(x, ei, tol=-1.0)
    with pytest.raises(ValueError, match="cutoff must be"):
        high_frequency_ratio(x, ei, cutoff=float("nan"))


@pytest.mark.parametrize("normalization", [None, "sym", "rw"])
def test_stacked_and_batched_band_energy(normalization):
    sizes = [9, 14, 6]
    graphs = [random_graph(s, 20, seed=20 + i) for i, s in enumerate(sizes)]
    offsets = [0, *np.cumsum(sizes)[:-1].tolist()]
    ei = torch.cat([g[0] + o for g, o in zip(graphs, offsets)], 1)
    w = torch.cat([g[1] for g in graphs])
    batch = torch.cat([torch.full((s,), i) for i, s in enumerate(sizes)])
    xs = torch.randn(2, sum(sizes), 3, dtype=torch.float64)
    edges = [0.0, 0.5, 1.0, 1.5, 2.0] if normalization else [0.0, 1.0, 3.0, 6.0, 100.0]
    got = band_energy(xs, ei, w, edges, normalization, batch=batch)
    assert got.shape == (2, 3, 4)
    for k in range(2):
        for i, (g, o, s) in enumerate(zip(graphs, offsets, sizes)):
            ref = band_energy(xs[k, o : o + s], g[0], g[1], edges, normalization)
            assert torch.allclose(got[k, i], ref, rtol=1e-9, atol=1e-12)
    hf = high_frequency_ratio(xs, ei, w, 1.0, normalization, batch=batch)
    assert hf.shape == (2, 3)


def test_rw_band_energy_is_sym_band_energy_of_scaled_signal():
    n = 20
    ei, w = random_graph(n, 40, seed=3)
    x = torch.randn(n, 2, dtype=torch.float64)
    cache = GraphCache(ei, n, w)
    y = x * cache.degree().sqrt()[:, None]
    assert torch.allclose(
        band_energy(x, ei, w, 4, "rw", cache=cache), band_energy(y, ei, w, 4, "sym", cache=cache)
    )
    assert float(band_energy(x, ei, w, 4, "rw").sum()) == pytest.approx(
        float((cache.degree()[:, None] * x * x).sum())
    )


def test_zero_signal_and_empty_graph():
    ei = path_graph(5)
    assert float(high_frequency_ratio(torch.zeros(5, 2), ei)) == 0.0
    assert band_energy(torch.zeros(5, 2), ei).abs().sum() == 0
    empty = band_energy(torch.zeros(0, 2), torch.zeros(2, 0, dtype=torch.long))
    assert empty.shape == (4,) and float(empty.abs().sum()) == 0.0


@st.composite
def signals(draw):
    n = draw(st.integers(1, 16))
    m = draw(st.integers(0, 40))
    g = torch.Generator().manual_seed(draw(st.integers(0, 10_000)))
    ei = to_undirected(torch.randint(0, n, (2, m), generator=g), num_nodes=n)
    x = torch.randn(n, draw(st.integers(1, 3)), generator=g, dtype=torch.float64)
    return (
        x,
        ei,
        draw(st.sampled_from([None, "sym", "rw"])),
        draw(st.booleans()),
        draw(st.integers(1, 6)),
    )


@settings(max_examples=60, deadline=None)
@given(signals())
def test_band_energies_sum_to_the_signal_norm(case):
    x, ei, normalization, loops, num_bands = case
    cache = GraphCache(ei, x.size(0))
    bands = band_energy(
        x, ei, bands=num_bands, normalization=normalization, add_self_loops=loops, cache=cache
    )
    assert bool((bands >= -1e-12).all())
    weight = cache.degree(loops)[:, None] if normalization == "rw" else 1.0
    assert float(bands.sum()) == pytest.approx(float((weight * x * x).sum()), rel=1e-9, abs=1e-12)
    hf = float(
        high_frequency_ratio(x, ei, normalization=normalization, add_self_loops=loops, cache=cache)
    )
    assert 0.0 <= hf <= 1.0


@pytest.mark.parametrize("normalization", [None, "sym", "rw"])
def test_small_components_projected_together_give_the_same_ratio(normalization, monkeypatch):
    """Components joined block-diagonally (in chunks of at most MERGE_NODES nodes) give the
    ratios of the component-by-component projection, isolated nodes included."""
    from gnnleaky.spectral import fourier

    parts = [random_graph(n, 2 * n, seed=n, isolated=2) for n in (3, 5, 8, 13, 21)]
    edges, offset = [], 0
    for (ei, _), n in zip(parts, (3, 5, 8, 13, 21)):
        edges.append(ei + offset)
        offset += n
    ei, n = torch.cat(edges, 1), offset
    x = torch.randn(4, n, 3, dtype=torch.float64)
    got = {}
    for merge in (0, 10, 1000):  # one by one, chunks of at most 10 nodes, all together
        monkeypatch.setattr(fourier, "MERGE_NODES", merge)
        cache = GraphCache(ei, n)
        got[merge] = high_frequency_ratio(x, ei, normalization=normalization, cache=cache)
        blocks = fourier._subspace_blocks(cache, "sym" if normalization else None, False, 1.0, 0)
        assert sorted(torch.cat([b[0] for b in blocks]).tolist()) == list(range(n))
        assert len(blocks) <= {0: n, 10: n, 1000: 2}[merge]
    assert torch.allclose(got[10], got[0], rtol=1e-12, atol=0)
    assert torch.allclose(got[1000], got[0], rtol=1e-12, atol=0)
