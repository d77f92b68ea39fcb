import numpy as np
import pytest
import torch
from torch_geometric.utils import to_undirected

from gnnleaky.spectral import (
    GraphCache,
    band_energy,
    chebyshev_moments,
    high_frequency_ratio,
    jackson_damping,
    kpm_band_energy,
    kpm_high_frequency_ratio,
    spectral_density,
)
from tests.spectral._graphs import complete_bipartite, dense_operator, random_graph

BANDS = [0.0, 0.5, 1.0, 1.5, 2.0]


def _smoothed(x, ei, n, steps):
    """Features after ``steps`` GCN propagations (mostly low frequency)."""
    lap, _ = dense_operator(ei, n, None, "sym", add_self_loops=True)
    prop = torch.from_numpy(np.eye(n) - lap)
    for _ in range(steps):
        x = prop @ x
    return x


@pytest.mark.parametrize(
    ("normalization", "loops"), [("sym", False), ("sym", True), (None, False), ("rw", True)]
)
def test_moments_equal_eigen_expansion(normalization, loops):
    n = 30
    ei, w = random_graph(n, 70, seed=0)
    x = torch.randn(n, 3, dtype=torch.float64)
    cache = GraphCache(ei, n, w)
    lap, deg = dense_operator(ei, n, w, "sym" if normalization == "rw" else normalization, loops)
    y = x.numpy() * np.sqrt(np.diag(deg))[:, None] if normalization == "rw" else x.numpy()
    lam, u = np.linalg.eigh(lap)
    e = ((u.T @ y) ** 2).sum(1)
    bound = cache.spectral_bound(normalization, loops)
    t = 2 * lam / bound - 1
    m = np.arange(40)
    ref = (np.cos(m[None, :] * np.arccos(np.clip(t, -1, 1))[:, None]) * e[:, None]).sum(0)
    got = chebyshev_moments(x, ei, w, 40, normalization, add_self_loops=loops, cache=cache)
    assert np.allclose(got.numpy(), ref, rtol=1e-9, atol=1e-9 * ref[0])
    f32 = chebyshev_moments(
        x.float(), ei, w, 40, normalization, add_self_loops=loops, cache=cache, dtype=torch.float32
    )
    assert np.allclose(f32.numpy(), ref, atol=1e-4 * ref[0])


def test_jackson_damping_properties():
    for m in (1, 2, 16, 128):
        g = jackson_damping(m)
        assert g.shape == (m,) and float(g[0]) == pytest.approx(1.0)
        assert bool((g > -1e-12).all()) and bool((g <= 1 + 1e-12).all())
        assert bool((g[1:] <= g[:-1] + 1e-12).all())


@pytest.mark.parametrize("steps", [0, 2, 8])
def test_kpm_matches_exact_on_a_synthetic_graph(steps):
    n = 400
    gen = torch.Generator().manual_seed(1)
    ei = to_undirected(torch.randint(0, n, (2, 1600), generator=gen), num_nodes=n)
    x = torch.randn(n, 16, generator=gen, dtype=torch.float64)
    x = _smoothed(x, ei, n, steps)
    cache = GraphCache(ei, n)
    exact = band_energy(x, ei, bands=BANDS, cache=cache)
    kpm = kpm_band_energy(x, ei, bands=BANDS, num_moments=128, cache=cache)
    total = float((x * x).sum())
    assert float(kpm.sum()) == pytest.approx(total, rel=1e-10)
    assert float(((exact - kpm).abs() / total).max()) < 0.01
    hf_exact = high_frequency_ratio(x, ei, cache=cache)
    hf_kpm = kpm_high_frequency_ratio(x, ei, cache=cache)
    assert abs(float(hf_exact) - float(hf_kpm)) < 0.01


def test_kpm_splits_a_degenerate_cluster_at_the_cutoff_in_half():
    ei, n = complete_bipartite(3, 5), 8
    cache = GraphCache(ei, n)
    evals, evecs = cache.eigenbasis()
    inside = evecs[:, (evals - 1).abs() < 1e-9] @ torch.randn(n - 2, 2, dtype=torch.float64)
    for m in (16, 64, 128):
        assert float(kpm_high_frequency_ratio(inside, ei, num_moments=m)) == pytest.approx(
            0.5, abs=1e-9
        )


def test_density_is_nonnegative_and_integrates_to_band_energy():
    n = 200
    gen = torch.Generator().manual_seed(2)
    ei = to_undirected(torch.randint(0, n, (2, 800), generator=gen), num_nodes=n)
    x = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    sd = spectral_density(x, ei, num_moments=64)
    grid = torch.linspace(0.5, 1.5, 20001, dtype=torch.float64)
    rho = sd.density(grid)
    assert bool((rho > -1e-9).all())
    integral = torch.trapezoid(rho, grid)
    assert float(integral) == pytest.approx(float(sd.band_energy([0.5, 1.5])[0]), rel=1e-6)
    assert bool((sd.band_energy(8) > -1e-9).all())
    assert float(sd.band_energy(8).sum()) == pytest.approx(float(sd.total), rel=1e-12)
    # no damping reproduces the truncated series; its bands still sum to the total
    plain = spectral_density(x, ei, num_moments=64, kernel="none")
    assert float(plain.band_energy(8).sum()) == pytest.approx(float(sd.total), rel=1e-12)


def test_unnormalized_laplacian_uses_gershgorin_bound():
    n = 50
    ei, w = random_graph(n, 120, seed=3)
    x = torch.randn(n, 2, dtype=torch.float64)
    cache = GraphCache(ei, n, w)
    sd = spectral_density(x, ei, w, num_moments=128, normalization=None, cache=cache)
    lap, _ = dense_operator(ei, n, w, None)
    assert sd.lambda_max >= np.linalg.eigvalsh(lap).max()
    edges = [0.0, sd.lambda_max / 3, 2 * sd.lambda_max / 3, sd.lambda_max]
    exact = band_energy(x, ei, w, edges, None, cache=cache)
    assert float(((exact - sd.band_energy(edges)).abs() / exact.sum()).max()) < 0.05


def test_stacked_and_batched_moments():
    ei1, w1 = random_graph(15, 30, seed=4)
    ei2, w2 = random_graph(10, 20, seed=5)
    ei = torch.cat([ei1, ei2 + 15], 1)
    w = torch.cat([w1, w2])
    batch = torch.cat([torch.zeros(15), torch.ones(10)]).long()
    xs = torch.randn(3, 25, 2, dtype=torch.float64)
    got = chebyshev_moments(xs, ei, w, 12, batch=batch)
    assert got.shape == (3, 2, 12)
    ref = chebyshev_moments(xs[2, 15:], ei2, w2, 12)
    assert torch.allclose(got[2, 1], ref, rtol=1e-10)
    hf = kpm_high_frequency_ratio(xs, ei, w, batch=batch)
    assert hf.shape == (3, 2)


def test_kpm_gradient_and_validation():
    ei, w = random_graph(10, 20, seed=6)
    x = torch.randn(10, 2, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: kpm_high_frequency_ratio(t, ei, w, num_moments=9), (x,))
    with pytest.raises(ValueError, match="num_moments"):
        chebyshev_moments(x, ei, w, 0)
    with pytest.raises(ValueError, match="kernel must be one of"):
        spectral_density(x, ei, w, kernel="lorentz")
    with pytest.raises(ValueError, match="dtype"):
        chebyshev_moments(x, ei, w, 4, dtype=torch.float16)
    zero = kpm_high_frequency_ratio(torch.zeros(10, 2), ei, w)
    assert float(zero) == 0.0


def test_kpm_leaves_its_input_untouched():
    ei, w = random_graph(20, 40, seed=7)
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(20, 3, dtype=dtype)
        before = x.clone()
        chebyshev_moments(x, ei, w, 17, dtype=dtype)
        assert torch.equal(x, before)
