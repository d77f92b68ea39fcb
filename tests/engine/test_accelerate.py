"""accelerate(model): the same parameters, state_dict and outputs as the model, computed by
the engine wherever it computes the same function."""

import copy
import functools

import pytest
import torch
import torch.nn.functional as F

from gnnleaky.datasets import load
from gnnleaky.engine import AcceleratedGCN, SeededDropout, accelerate
from gnnleaky.nn import GCN, GraphSAGE
from tests.graphs import random_graph

_graph = functools.partial(random_graph, n=60, e=240, f=10)

ACTS = [
    ("relu", {}),
    ("leaky_relu", {"negative_slope": 0.2}),
    ("leaky_relu", {"negative_slope": -0.3}),
    ("prelu", {"mode": "layer", "init": 0.2}),
    ("prelu", {"mode": "channel", "init": 0.3}),
    ("prelu", {"mode": "channel", "init": 0.3, "bounds": (0.0, 1.0)}),
    ("identity", {}),
]


def _pair(act, kw, p=0.0, residual=False, layers=4, hidden=16):
    """A model and its accelerated twin, with dropout drawn from one seeded generator each
    (the same stream for both)."""

    def make():
        torch.manual_seed(0)
        m = GCN(10, hidden, layers, 3, act=act, act_kwargs=kw, residual=residual)
        m.dropout = SeededDropout(p, [torch.Generator().manual_seed(5)])
        return m

    return make(), accelerate(make())


def _steps(model, data, steps):
    """``steps`` Adam steps of node classification: every step's outputs and gradients,
    and the weights after the last."""
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    mask = data.train_mask[:, 0]
    outs, grads = [], []
    for _ in range(steps):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[mask], data.y[mask]).backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
        opt.step()
    return outs, grads, [p.detach().clone() for p in model.parameters()]


def _close(a, b, tol=1e-5):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max()) <= tol * (1.0 + float(b.abs().max()))


@pytest.mark.parametrize(("act", "kw"), ACTS, ids=[f"{a}-{k}" for a, k in ACTS])
@pytest.mark.parametrize(
    ("p", "residual", "hidden"), [(0.0, False, 16), (0.5, False, 64), (0.3, True, 16)]
)
def test_outputs_gradients_and_50_adam_steps_equal_the_plain_path(act, kw, p, residual, hidden):
    """Both trained side by side from the same weights, with the same dropout masks: every
    step's outputs and gradients and the weights after 50 steps agree within 1e-5."""
    data = load("csbm", num_nodes=120, num_features=10, num_classes=3, seed=0)
    plain, fast = _pair(act, kw, p, residual, hidden=hidden)
    ref, got = _steps(plain, data, 50), _steps(fast, data, 50)
    for a, b in zip(got[0], ref[0]):
        assert _close(a, b)
    for ga, gb in zip(got[1], ref[1]):
        for a, b in zip(ga, gb):
            assert _close(a, b)
    for a, b in zip(got[2], ref[2]):
        assert _close(a, b)
    assert type(fast(data.x, data.edge_index).grad_fn).__name__ == "SelectBackward0"


def test_it_is_the_model_with_the_same_parameters():
    x, ei = _graph()
    model = GCN(10, 16, 3, 3, act="prelu")
    fast = accelerate(model)
    assert isinstance(fast, AcceleratedGCN) and isinstance(fast, GCN)
    assert fast.state_dict().keys() == model.state_dict().keys()
    assert all(a is b for a, b in zip(fast.parameters(), model.parameters()))
    with torch.no_grad():
        model.convs[0].lin.weight.mul_(2.0)  # one set of weights
    assert _close(fast.eval()(x, ei), model.eval()(x, ei))
    assert type(fast(x, ei).grad_fn).__name__ == "SelectBackward0"  # the engine ran
    fresh = GCN(10, 16, 3, 3, act="prelu")
    fresh.load_state_dict(fast.state_dict())
    assert _close(fresh.eval()(x, ei), fast(x, ei))
    assert accelerate(fast) is fast
    copied = copy.deepcopy(fast)
    assert isinstance(copied, AcceleratedGCN) and _close(copied(x, ei), fast(x, ei))


def test_what_the_engine_does_not_compute_falls_back():
    x, ei = _graph()
    others = [
        GraphSAGE(10, 16, 2, 3),
        GCN(10, 16, 2, 3, norm="batch_norm"),
        GCN(10, 16, 2, 3, act="elu"),
        GCN(10, 16, 2, 3, add_self_loops=False),
    ]
    for model in others:
        assert accelerate(model) is model
    model = GCN(10, 16, 3, 3).eval()
    fast = accelerate(model)
    w = torch.rand(ei.size(1))
    w[:5] = -0.05  # negative weights (degrees stay positive): the model's operator takes them
    assert _close(fast(x, ei, w), model(x, ei, w))
    double = accelerate(GCN(10, 16, 3, 3).double().eval())
    plain = GCN(10, 16, 3, 3).double().eval()
    plain.load_state_dict(double.state_dict())
    assert _close(double(x.double(), ei), plain(x.double(), ei))  # float64: the plain path
    xg = x.clone().requires_grad_()
    out = fast(xg, ei)  # an input gradient: the plain path
    assert type(out.grad_fn).__name__ != "SelectBackward0"
    out.sum().backward()
    assert xg.grad is not None


def test_a_new_graph_or_an_edited_one_is_never_stale():
    x, ei = _graph()
    model = GCN(10, 16, 3, 3).eval()
    fast = accelerate(model)
    for seed in range(5):
        ei = _graph(seed=seed)[1]
        assert _close(fast(x, ei), model(x, ei))
    ei[0, :20] = 0
    assert _close(fast(x, ei), model(x, ei))
