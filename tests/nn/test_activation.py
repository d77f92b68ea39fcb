import math

import pytest
import torch

from gnnleaky.nn import LeakyGNN, PReLU, activation, param_groups, slope_l1, slopes
from gnnleaky.nn.activation import slope_parameters


def test_kinds_compute_the_right_function():
    x = torch.tensor([[-2.0, -0.5, 0.0, 3.0]])
    assert activation("relu")(x).tolist() == [[0.0, 0.0, 0.0, 3.0]]
    assert torch.allclose(
        activation("leaky_relu", negative_slope=0.2)(x), torch.tensor([[-0.4, -0.1, 0.0, 3.0]])
    )
    p = activation("prelu", channels=4, mode="channel", init=0.3)
    with torch.no_grad():
        p.weight.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    assert torch.allclose(p(x), torch.tensor([[-0.2, -0.1, 0.0, 3.0]]))
    assert torch.equal(activation("identity")(x), x)


def test_each_call_builds_a_fresh_instance():
    a = activation("prelu")
    b = activation("prelu")
    assert a.weight is not b.weight
    mod = torch.nn.PReLU()
    assert activation(mod).weight is not mod.weight


@pytest.mark.parametrize("bounds", [(0.0, 1.0), (-0.5, 0.25), (0.0, math.inf), (-math.inf, 0.3)])
def test_bounds_hold_under_huge_steps(bounds):
    lo, hi = bounds
    init = 0.1 if lo <= 0.1 <= hi else (lo if math.isfinite(lo) else hi)
    p = PReLU(mode="channel", channels=5, init=init, bounds=bounds)
    assert torch.allclose(p.weight, torch.full((5,), init), atol=1e-5)
    opt = torch.optim.SGD(p.parameters(), lr=1e4)
    for sign in (1.0, -1.0, 1.0):
        loss = sign * 1e3 * p.weight.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        w = p.weight.detach()
        assert bool(torch.isfinite(w).all())
        # Compared in the slope's own dtype: float32(0.3) is a hair above 0.3.
        assert bool((w >= torch.tensor(lo)).all()) and bool((w <= torch.tensor(hi)).all())


def test_reset_parameters_restores_init():
    p = PReLU(init=0.2, bounds=(0.0, 1.0))
    p.weight = torch.tensor([0.9])
    p.reset_parameters()
    assert abs(float(p.weight.detach()) - 0.2) < 1e-6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"act": "gelu2"}, "act must be one of"),
        ({"act": "prelu", "num_parameters": 0}, "num_parameters"),
        ({"act": "prelu", "num_parameters": 3, "mode": "layer"}, "contradicts"),
        ({"act": torch.relu, "negative_slope": 0.1}, "cannot be applied"),
        ({"act": "leaky_relu", "negative_slope": float("nan")}, "negative_slope"),
        ({"act": "leaky_relu", "negative_slope": float("inf")}, "negative_slope"),
        ({"act": "prelu", "mode": "node"}, "mode must be one of"),
        ({"act": "prelu", "bounds": (1.0, 0.0)}, "lo <= hi"),
        ({"act": "prelu", "init": 2.0, "bounds": (0.0, 1.0)}, "inside bounds"),
        ({"act": "prelu", "mode": "channel"}, "channels"),
        ({"act": "relu", "negative_slope": 0.1}, "not accepted by act='relu'"),
        ({"act": 3}, "act must be"),
    ],
)
def test_bad_activation_arguments(kwargs, match):
    kwargs = dict(kwargs)
    with pytest.raises(ValueError, match=match):
        activation(kwargs.pop("act"), **kwargs)


def test_slopes_by_layer():
    m = LeakyGNN(3, 4, 3, 2, act="leaky_relu", act_kwargs={"negative_slope": 0.3})
    s = slopes(m)
    assert list(s) == ["acts.0", "acts.1"]
    assert all(abs(float(v) - 0.3) < 1e-7 for v in s.values())
    assert all(float(v) == 0.0 for v in slopes(LeakyGNN(3, 4, 3, 2)).values())


def test_param_groups_exempt_bounded_slopes():
    m = LeakyGNN(3, 4, 3, 2, act="prelu", act_kwargs={"bounds": (0.0, 1.0)})
    groups = param_groups(m, weight_decay=0.1)
    slope_ids = {id(p) for p in slope_parameters(m)}
    assert {id(p) for p in groups[1]["params"]} == slope_ids
    assert groups[1]["weight_decay"] == 0.0
    assert not slope_ids & {id(p) for p in groups[0]["params"]}
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(m.parameters()))


def test_slope_l1_value_and_grad():
    m = LeakyGNN(3, 4, 3, 2, act="prelu", act_kwargs={"mode": "channel", "init": -0.5})
    pen = slope_l1(m)
    assert float(pen.detach()) == pytest.approx(0.5 * 4 * 2)
    pen.backward()
    assert all(torch.equal(p.grad, -torch.ones(4)) for p in slope_parameters(m))


def test_everything_pyg_resolves_is_accepted_and_fresh_per_layer():
    x = torch.tensor([[-2.0, -0.5, 0.0, 3.0]])
    elu = activation("elu")
    assert isinstance(elu, torch.nn.ELU) and activation("elu") is not elu
    assert torch.allclose(activation("gelu")(x), torch.nn.functional.gelu(x))
    assert torch.allclose(
        activation("LeakyReLU", negative_slope=0.3)(x), 0.3 * x.clamp(max=0) + x.clamp(min=0)
    )
    assert torch.allclose(activation("swish")(x), x * x.sigmoid())  # a PyG function
    fn = activation(torch.nn.functional.elu)
    assert torch.allclose(fn(x), torch.nn.functional.elu(x))
    assert torch.equal(activation(None)(x), x)


def test_prelu_num_parameters_as_torch_spells_it():
    assert activation("prelu", channels=8, num_parameters=8).weight.shape == (8,)
    assert activation("prelu", channels=8, num_parameters=1).weight.shape == (1,)
    with pytest.raises(ValueError, match="num_parameters=4 must be 1 or the width"):
        activation("prelu", channels=8, num_parameters=4)


def test_bounded_prelu_pickles_and_copies(tmp_path):
    import copy

    p = PReLU(mode="channel", channels=3, init=0.2, bounds=(0.0, 1.0))
    with torch.no_grad():
        p.weight = torch.tensor([0.1, 0.5, 0.9])
    path = tmp_path / "act.pt"
    torch.save(p, path)
    q = torch.load(path, weights_only=False)
    r = copy.deepcopy(p)
    x = torch.randn(5, 3)
    for other in (q, r):
        assert other.bounds == (0.0, 1.0) and torch.allclose(other.weight, p.weight)
        assert torch.allclose(other(x), p(x))
        assert other.parametrizations.weight.original is not p.parametrizations.weight.original


def test_scaled_relu_kinds_compute_beta_on_the_positive_side():
    from gnnleaky.nn import ScaledLeakyReLU

    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0])
    beta = activation("scaled_relu", positive_slope=2.0)
    assert torch.equal(beta(x), torch.where(x > 0, 2.0 * x, torch.zeros_like(x)))
    both = activation("scaled_leaky_relu", positive_slope=1.5, negative_slope=0.1)
    assert torch.allclose(both(x), torch.where(x > 0, 1.5 * x, 0.1 * x))
    # not a (Leaky) ReLU subclass: nothing may take it for one
    assert not isinstance(both, (torch.nn.ReLU, torch.nn.LeakyReLU))
    assert isinstance(both, ScaledLeakyReLU)
    m = LeakyGNN(4, 8, 3, 2, act="scaled_leaky_relu",
                 act_kwargs={"positive_slope": 2.0, "negative_slope": 0.2})  # fmt: skip
    assert {k: float(v) for k, v in slopes(m).items()} == pytest.approx(
        {"acts.0": 0.2, "acts.1": 0.2}
    )
    x = torch.randn(5, 3, requires_grad=True)
    torch.autograd.gradcheck(lambda t: both(t.double()), (x.double(),))
    with pytest.raises(ValueError, match="positive_slope must be > 0"):
        activation("scaled_relu", positive_slope=0.0)
    with pytest.raises(ValueError, match="not accepted by act='scaled_relu'"):
        activation("scaled_relu", negative_slope=0.1)


def test_sweep_kind_names_resolve_in_activation_spec():
    from gnnleaky.nn import ActivationSpec, activation_kind

    a = activation("prelu_channel", channels=6, init=0.1)
    assert a.mode == "channel" and a.weight.shape == (6,)
    assert activation("prelu-layer").mode == "layer"
    with pytest.raises(ValueError, match="contradicts act='prelu_channel'"):
        ActivationSpec("prelu_channel", {"mode": "layer"})
    with pytest.raises(ValueError, match="unknown activation kind 'swishy'"):
        activation_kind("swishy")
