import math
import warnings

import pytest
import torch
from torch_geometric.utils import degree

from gnnleaky.analysis import (
    NonNormalWarning,
    contraction_check,
    operator_norm,
    recurrent_stability_bound,
)


def _normal_weight(c, rho, kind, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(c, c, generator=g, dtype=torch.float64)
    if kind == "symmetric":
        w = m + m.T
    else:  # orthogonal: all eigenvalues on a circle, complex ones included
        w, _ = torch.linalg.qr(m)
    return w * (rho / torch.linalg.eigvals(w).abs().max())


def _top_eigvec(edge_index, n):
    # D~^{1/2} 1 is the eigenvector of D~^{-1/2}(A + I)D~^{-1/2} for eigenvalue 1.
    return (degree(edge_index[1], n, dtype=torch.float64) + 1).sqrt()


def test_bound_known_answers():
    res = recurrent_stability_bound(0.5 * torch.eye(3), alpha=1.5)
    assert math.isclose(res.rho, 0.5) and math.isclose(res.spectral_norm, 0.5)
    assert math.isclose(res.bound, 1 / 1.5)
    assert res.holds and res.certified and res.is_normal
    assert math.isclose(res.lipschitz, 0.75)
    # |alpha| counts for a negative slope; slopes below 1 leave the bound at 1.
    assert math.isclose(recurrent_stability_bound(torch.eye(2), -2.0).bound, 0.5)
    assert recurrent_stability_bound(torch.eye(2), 0.3).bound == 1.0
    # Per-channel slopes: the largest magnitude counts.
    assert math.isclose(
        recurrent_stability_bound(torch.eye(2), torch.tensor([0.1, -1.25])).bound, 0.8
    )
    # A directed operator with a larger norm tightens it.
    assert math.isclose(recurrent_stability_bound(torch.eye(2), 0.2, operator_norm=2.0).bound, 0.5)


def test_rotation_is_normal_and_radius_equals_norm():
    t = 0.3
    rot = 0.9 * torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = recurrent_stability_bound(rot, 0.2)
    assert res.is_normal and math.isclose(res.rho, res.spectral_norm, rel_tol=1e-6)


def test_non_normal_weight_warns_and_is_not_certified():
    w = torch.tensor([[0.5, 2.0], [0.0, 0.5]])
    with pytest.warns(NonNormalWarning, match="not normal"):
        res = recurrent_stability_bound(w, 0.2)
    assert not res.is_normal
    assert res.holds and not res.certified  # rho = 0.5 says "stable", the norm does not
    assert res.spectral_norm > 2.0


@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.9, 1.5, -0.5])
@pytest.mark.parametrize("kind", ["symmetric", "orthogonal"])
def test_bound_holds_then_distance_never_grows(csbm, alpha, kind):
    ei, n = csbm.edge_index, csbm.num_nodes
    assert math.isclose(operator_norm(ei, n), 1.0, rel_tol=1e-9)
    bound = 1.0 / max(1.0, abs(alpha))
    w = _normal_weight(8, 0.999 * bound, kind)
    res = recurrent_stability_bound(w, alpha)
    assert res.holds and res.is_normal and res.certified
    check = contraction_check(w, alpha, ei, n, steps=24, num_pairs=8, seed=1)
    assert check.distances.shape == (25, 8) and check.ratios.shape == (24, 8)
    assert check.max_ratio <= 1 + 1e-6
    assert not check.grows
    assert (check.distances[1:] <= check.distances[:-1] * (1 + 1e-6)).all()


@pytest.mark.parametrize(("alpha", "sign"), [(0.2, 1.0), (0.0, 1.0), (1.5, -1.0)])
def test_counterexample_just_above_the_bound(csbm, alpha, sign):
    # In the positive orthant (alpha <= 1) or the negative one (alpha > 1) the activation
    # is linear with slope max(1, |alpha|), so a pair whose difference lies on the top
    # eigenvector of A_hat moves apart by max(1, |alpha|) * rho(W) per step.
    ei, n = csbm.edge_index, csbm.num_nodes
    factor = max(1.0, abs(alpha))
    rho = 1.02 / factor
    w = rho * torch.eye(4, dtype=torch.float64)
    res = recurrent_stability_bound(w, alpha)
    assert not res.holds and res.is_normal
    v = _top_eigvec(ei, n).unsqueeze(1).expand(n, 4)
    g0 = sign * torch.ones(n, 4, dtype=torch.float64)
    h0 = g0 + sign * 0.5 * v
    check = contraction_check(w, alpha, ei, n, steps=12, states=(h0, g0))
    assert check.grows
    assert torch.allclose(check.ratios, torch.full_like(check.ratios, 1.02), rtol=1e-9)


def test_non_normal_weight_with_small_radius_can_expand(csbm):
    ei, n = csbm.edge_index, csbm.num_nodes
    w = torch.tensor([[0.5, 2.0], [0.0, 0.5]], dtype=torch.float64)
    with pytest.warns(NonNormalWarning):
        assert recurrent_stability_bound(w, 0.2).holds
    v = _top_eigvec(ei, n)
    g0 = torch.ones(n, 2, dtype=torch.float64)
    h0 = g0 + torch.stack([v, torch.zeros_like(v)], dim=1)  # difference along e_1
    check = contraction_check(w, 0.2, ei, n, steps=1, states=(h0, g0))
    assert math.isclose(check.max_ratio, math.hypot(0.5, 2.0), rel_tol=1e-9)


def test_contraction_check_is_seeded_and_validates():
    ring = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
    w = 0.5 * torch.eye(3)
    a = contraction_check(w, 0.2, ring, steps=4, seed=3)
    b = contraction_check(w, 0.2, ring, steps=4, seed=3)
    assert torch.equal(a.distances, b.distances)
    with pytest.raises(ValueError, match="square"):
        contraction_check(torch.ones(2, 3), 0.2, ring)
    with pytest.raises(ValueError, match="per-channel"):
        contraction_check(w, torch.ones(2), ring)
    with pytest.raises(ValueError, match="states"):
        contraction_check(w, 0.2, ring, states=(torch.ones(3, 2), torch.ones(3, 2)))
    with pytest.raises(ValueError, match="square"):
        recurrent_stability_bound(torch.ones(2, 3), 0.2)
    with pytest.raises(ValueError, match="alpha"):
        recurrent_stability_bound(torch.eye(2), float("nan"))
