import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_dense_adj

from gnnleaky.analysis import (
    two_node_closed_form,
    two_node_energy_table,
    two_node_operator,
    two_node_simulate,
)

ALPHAS = [i / 20 for i in range(21)]


def _starts():
    g = torch.Generator().manual_seed(0)
    # One column per case: both >= 0, both <= 0, mixed (either sign of a), the two
    # boundaries c = |a| and c = -|a|, pure high / low frequency, zero, then random.
    cases = torch.tensor(
        [
            [3.0, 2.0],
            [-1.0, -4.0],
            [0.5, -2.0],
            [-3.0, 1.0],
            [2.0, 0.0],
            [0.0, -2.0],
            [1.0, -1.0],
            [1.0, 1.0],
            [0.0, 0.0],
            [-1.0, -1.0],
        ],
        dtype=torch.float64,
    ).T
    return torch.cat([cases, torch.randn(2, 40, generator=g, dtype=torch.float64)], dim=1)


@pytest.mark.parametrize("self_loops", [False, True])
@pytest.mark.parametrize("alpha", [*ALPHAS, 1.5, 3.0])
def test_simulation_matches_closed_form(alpha, self_loops):
    h0 = _starts()
    for depth in (1, 7, 64):
        sim = two_node_simulate(h0, alpha, depth, self_loops=self_loops)
        cf = two_node_closed_form(h0, alpha, depth, self_loops=self_loops)
        scale = sim.h.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1.0)
        assert ((sim.h - cf.h).abs() / scale).max() <= 1e-12
        e_scale = (sim.hf_energy + sim.lf_energy).clamp_min(1.0)
        assert ((sim.hf_energy - cf.hf_energy).abs() / e_scale).max() <= 1e-12
        assert ((sim.lf_energy - cf.lf_energy).abs() / e_scale).max() <= 1e-12
        assert sim.hf_energy.shape == (depth + 1,)


def test_closed_form_per_column_regions():
    # Each column on its own (a [2] start) agrees with the batched [2, C] result.
    h0 = _starts()
    batched = two_node_closed_form(h0, 0.3, 10)
    for k in range(h0.size(1)):
        single = two_node_closed_form(h0[:, k], 0.3, 10)
        assert torch.allclose(single.h, batched.h[:, :, k], atol=0, rtol=0)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_pure_alternating_signal_known_answer(alpha):
    # h0 = (1, -1): c = 0, s = 1, mixed region, p = q = 1.
    out = two_node_simulate([1.0, -1.0], alpha, 12)
    t = torch.arange(13, dtype=torch.float64)
    s_t, c_t = (1 + alpha**t) / 2, (1 - alpha**t) / 2
    assert torch.allclose(out.hf_energy, 2 * s_t**2, rtol=1e-13, atol=1e-15)
    assert torch.allclose(out.lf_energy, 2 * c_t**2, rtol=1e-13, atol=1e-15)
    # The first step scales the alternating amplitude by (1 + alpha) / 2 and creates a
    # mean of (1 - alpha) / 2.
    a1 = (out.h[1, 0] - out.h[1, 1]) / 2
    c1 = (out.h[1, 0] + out.h[1, 1]) / 2
    assert math.isclose(abs(float(a1)), (1 + alpha) / 2, rel_tol=1e-14)
    assert math.isclose(float(c1), (1 - alpha) / 2, rel_tol=1e-14, abs_tol=1e-15)
    # The node that is negative alternates.
    assert [bool(v) for v in out.h[1:5, 0] < out.h[1:5, 1]] == [
        True,
        False,
        True,
        False,
    ] or alpha == 1.0


def test_relu_keeps_half_of_the_alternating_amplitude_and_linear_limit_conserves():
    relu = two_node_simulate([1.0, -1.0], 0.0, 20)
    assert torch.allclose(relu.hf_energy[1:], torch.full((20,), 0.5, dtype=torch.float64))
    linear = two_node_simulate([1.0, -1.0], 1.0, 20)  # P is orthogonal
    assert torch.allclose(linear.hf_energy, torch.full((21,), 2.0, dtype=torch.float64))


@pytest.mark.parametrize("alpha", [*ALPHAS, 2.0])
def test_gcn_operator_annihilates_high_frequency_for_every_slope(alpha):
    h0 = _starts()
    out = two_node_simulate(h0, alpha, 16, self_loops=True)
    assert out.hf_energy[0] > 0
    assert (out.hf_energy[1:] == 0).all()  # exactly, not approximately


def test_operators():
    assert torch.equal(
        two_node_operator(), torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    )
    ei, w = gcn_norm(
        torch.tensor([[0, 1], [1, 0]]), None, 2, add_self_loops=True, dtype=torch.float64
    )
    ref = to_dense_adj(ei, edge_attr=w, max_num_nodes=2)[0]
    assert torch.allclose(two_node_operator(self_loops=True), ref, atol=1e-15)
    p = two_node_operator(self_loops=True)
    assert torch.equal(
        p @ torch.tensor([1.0, -1.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    )


@settings(max_examples=60, deadline=None)
@given(
    h=st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=2),
    alphas=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=2),
)
def test_larger_slope_keeps_more_high_frequency_energy(h, alphas):
    lo, hi = sorted(alphas)
    e_lo = two_node_simulate(h, lo, 24)
    e_hi = two_node_simulate(h, hi, 24)
    tol = 1e-12 * (1 + sum(v * v for v in h))
    assert (e_lo.hf_energy <= e_hi.hf_energy + tol).all()
    # The share of the total is monotone only for a non-negative mean: with c < 0 in
    # the mixed region |c_t| = |p - alpha^t q| / 2 can grow with alpha (h = (0.5, -1)).
    if h[0] + h[1] < 0:
        return
    tot_lo, tot_hi = e_lo.hf_energy + e_lo.lf_energy, e_hi.hf_energy + e_hi.lf_energy
    ok = (tot_lo > 1e-9) & (tot_hi > 1e-9)
    share_lo = e_lo.hf_energy[ok] / tot_lo[ok]
    share_hi = e_hi.hf_energy[ok] / tot_hi[ok]
    assert (share_lo <= share_hi + 1e-9).all()


def test_energies_split_the_norm():
    h0 = _starts()
    out = two_node_simulate(h0, 0.4, 5)
    norm2 = out.h.pow(2).sum(dim=(1, 2))
    assert torch.allclose(out.hf_energy + out.lf_energy, norm2, rtol=1e-13)


def test_energy_table():
    df = two_node_energy_table([0.0, 0.5, 1.0], depth=8)
    assert len(df) == 2 * 3 * 9
    assert df.sim_error.max() < 1e-12
    last = df[(df.layer == 8) & (df.operator == "adjacency")]
    assert last.hf_energy.is_monotonic_increasing
    assert (df[(df.operator == "gcn") & (df.layer > 0)].hf_energy == 0).all()


def test_input_errors():
    with pytest.raises(ValueError, match="negative_slope"):
        two_node_closed_form([1.0, 0.0], -0.1, 3)
    with pytest.raises(ValueError, match="h0"):
        two_node_simulate([1.0, 0.0, 2.0], 0.1, 3)
    with pytest.raises(ValueError, match="depth"):
        two_node_simulate([1.0, 0.0], 0.1, -1)
    with pytest.raises(ValueError, match="h0"):
        two_node_simulate([float("nan"), 0.0], 0.1, 2)


def test_high_frequency_share_is_not_monotone_for_a_negative_mean():
    # h = (0.5, -1): c = -0.25, s = 0.75, p = 0.5, q = 1. After one step alpha = 0.5
    # gives (c, s) = (0, 0.5), all high frequency; alpha = 1 gives (-0.25, 0.75).
    half = two_node_closed_form([0.5, -1.0], 0.5, 1)
    one = two_node_closed_form([0.5, -1.0], 1.0, 1)
    assert float(half.lf_energy[1]) == 0.0
    assert math.isclose(float(one.hf_energy[1] / (one.hf_energy[1] + one.lf_energy[1])), 0.9)
    assert one.hf_energy[1] > half.hf_energy[1]  # the energy itself is still monotone
