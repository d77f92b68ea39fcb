import functools

import pytest
import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_dense_adj

from gnnleaky.engine import SeededDropout, StackedGNN, dropout_mask
from gnnleaky.nn import LeakyGNN, slopes
from gnnleaky.nn.functional import normalized_adjacency
from tests.graphs import random_graph

ACTS = [
    ("relu", {}),
    ("leaky_relu", {"negative_slope": 0.1}),
    ("prelu", {"mode": "layer", "init": 0.2}),
    ("prelu", {"mode": "channel", "init": 0.3}),
    ("prelu", {"mode": "channel", "init": 0.3, "bounds": (0.0, 1.0)}),
    ("prelu", {"mode": "layer", "init": -0.5, "bounds": (-1.0, float("inf"))}),
    ("identity", {}),
]


_graph = functools.partial(random_graph, n=40, e=160, f=8)


def _models(num_layers, out_channels=3, acts=ACTS, f=8, **kw):
    with torch.random.fork_rng():
        torch.manual_seed(num_layers)
        return [
            LeakyGNN(f, 16, num_layers, out_channels, act=a, act_kwargs=k, **kw) for a, k in acts
        ]


def _close(a, b, tol=1e-5):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max()) <= tol * (1.0 + float(b.abs().max()))


@pytest.mark.parametrize("num_layers", [1, 2, 5, 16])
@pytest.mark.parametrize("out_channels", [3, None])
def test_forward_matches_each_leakygnn(num_layers, out_channels):
    x, ei = _graph()
    models = _models(num_layers, out_channels)
    stacked = StackedGNN.from_models(models)
    out, hidden = stacked(x, ei, return_hidden=True)
    assert out.shape == (len(models), 40, out_channels or 16)
    assert len(hidden.pre) == len(hidden.post) == num_layers
    for k, m in enumerate(models):
        ref, ref_hidden = m.forward_hidden(x, ei)
        assert _close(out[k], ref)
        for a, b in zip(hidden.pre + hidden.post, ref_hidden.pre + ref_hidden.post):
            assert a.shape[1:] == b.shape and _close(a[k], b)


def test_forward_with_edge_weight_residual_and_sparse_features():
    x, ei = _graph(sparse=True)
    ew = torch.rand(ei.size(1))
    models = _models(4, 16, residual=True)  # widths match: residuals everywhere
    stacked = StackedGNN.from_models(models)
    assert stacked._operators(x, ei, ew)["feats"] is not None  # CSR feature path taken
    out = stacked(x, ei, ew)
    for k, m in enumerate(models):
        assert _close(out[k], m(x, ei, ew))


@pytest.mark.parametrize("num_layers", [2, 6])
def test_gradients_match_each_leakygnn(num_layers):
    x, ei = _graph(seed=1)
    models = _models(num_layers)
    stacked = StackedGNN.from_models(models)
    out = stacked(x, ei)
    weights = torch.arange(1.0, len(models) + 1)
    (out.pow(2).sum((1, 2)) * weights).sum().backward()
    for k, m in enumerate(models):
        (m(x, ei).pow(2).sum() * weights[k]).backward()
        for layer, conv in enumerate(m.convs):
            assert _close(stacked.weights[layer].grad[k], conv.lin.weight.grad.t(), 1e-4)
            assert _close(stacked.biases[layer].grad[k], conv.bias.grad, 1e-4)
        for i, act in enumerate(m.acts):
            if isinstance(act, torch.nn.PReLU):
                raw = (
                    act.parametrizations.weight.original
                    if hasattr(act, "parametrizations")
                    else act.weight
                )
                g = stacked.slope_raw.grad[k, i, : raw.numel()]
                assert _close(g, raw.grad, 1e-4)


def test_model_k_round_trip_and_slopes():
    x, ei = _graph()
    models = _models(3)
    stacked = StackedGNN.from_models(models)
    with torch.no_grad():  # move the learned slopes so that the copy has something to copy
        stacked.slope_raw.add_(0.05)
    out = stacked(x, ei)
    back = stacked.to_models()
    for k, m in enumerate(back):
        assert isinstance(m, LeakyGNN) and _close(m(x, ei), out[k], 1e-6)
    s = stacked.slopes()
    for k, m in enumerate(back):
        for i, v in enumerate(slopes(m).values()):
            assert _close(s[k, i], v.expand(16), 1e-6)
    # bounded slopes stay inside their bounds whatever the raw value
    with torch.no_grad():
        stacked.slope_raw.fill_(1e6)
    assert float(stacked.slopes()[4].max().detach()) <= 1.0


def test_select_keeps_the_chosen_models():
    x, ei = _graph()
    models = _models(3)
    stacked = StackedGNN.from_models(models)
    sub = stacked.select([5, 1])
    out = sub(x, ei)
    assert sub.num_models == 2
    assert _close(out[0], models[5](x, ei)) and _close(out[1], models[1](x, ei))
    assert [n for n, _ in sub.named_parameters()] == [n for n, _ in stacked.named_parameters()]


def test_stacked_training_matches_one_by_one():
    """K models, Adam, 30 steps: stacked and alone give the same outputs (dropout off)."""
    x, ei = _graph(n=60, e=300, seed=2)
    y = torch.randint(0, 3, (60,), generator=torch.Generator().manual_seed(0))
    models = _models(4)
    stacked = StackedGNN.from_models(models)
    opt = torch.optim.Adam(stacked.param_groups(5e-4), lr=0.01)
    from gnnleaky.nn import param_groups

    opts = [torch.optim.Adam(param_groups(m, 5e-4), lr=0.01) for m in models]
    k = len(models)
    for _ in range(30):
        opt.zero_grad()
        out = stacked(x, ei)
        torch.nn.functional.cross_entropy(out.reshape(-1, 3), y.repeat(k), reduction="none").view(
            k, -1
        ).mean(1).sum().backward()
        opt.step()
        for m, o in zip(models, opts):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(x, ei), y).backward()
            o.step()
    out = stacked(x, ei)
    for i, m in enumerate(models):
        assert _close(out[i], m(x, ei))


def test_dropout_masks_equal_single_model_stream():
    """With one generator per model, stacked dropout draws each model's own masks."""
    x, ei = _graph()
    models = _models(3, acts=ACTS[:3])
    for m in models:
        m.dropout = SeededDropout(0.5, [torch.Generator().manual_seed(7)])
    stacked = StackedGNN.from_models(models)
    stacked.dropout.generators = [torch.Generator().manual_seed(7) for _ in models]
    stacked.train()
    out = stacked(x, ei)
    for k, m in enumerate(models):
        m.train()
        assert _close(out[k], m(x, ei))
    # the models' masks differ from each other (independent generators would, too)
    stacked.dropout.generators = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    h = stacked.dropout(torch.ones(50, 3 * 16))
    assert not torch.equal(h[:, :16], h[:, 16:32])


@pytest.mark.parametrize("p", [0.5, 0.3, 0.0])
def test_dropout_mask_keep_rate_and_scale(p):
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    m = dropout_mask(2000, 16, p, gens)
    assert m.shape == (2000, 48)
    kept = m > 0
    assert abs(float(kept.float().mean()) - (1 - p)) < 0.01
    assert abs(float(m.mean()) - 1.0) < 0.02  # E[mask] = 1
    assert torch.allclose(m[kept], torch.full_like(m[kept], 1 / (1 - p)), rtol=1e-4)


def test_normalized_adjacency_matches_gcn_norm_dense():
    _, ei = _graph()
    ew = torch.rand(ei.size(1))
    a, a_t = normalized_adjacency(ei, ew, 40)
    e2, w2 = gcn_norm(ei, ew, 40, add_self_loops=True)
    dense = to_dense_adj(e2, edge_attr=w2, max_num_nodes=40)[0].t()  # row = target
    assert torch.allclose(a.to_dense(), dense, atol=1e-6)
    assert torch.allclose(a_t.to_dense(), dense.t(), atol=1e-6)
    # known answer: a path 0 - 1 - 2 with self-loops has degrees 2, 3, 2
    path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    p = normalized_adjacency(path, num_nodes=3)[0].to_dense()
    assert torch.allclose(p[0, 1], torch.tensor(1 / 6**0.5))
    assert torch.allclose(p[1, 1], torch.tensor(1 / 3))


def test_cache_follows_in_place_changes():
    x, ei = _graph()
    models = _models(2)
    stacked = StackedGNN.from_models(models)
    out1 = stacked(x, ei)
    x.mul_(2.0)  # same tensor object, new version: operators must be rebuilt
    out2 = stacked(x, ei)
    assert not torch.allclose(out1, out2)
    assert _close(out2[0], models[0](x, ei))


def test_constructor_seeds_reproduce_leakygnn_and_keep_global_rng():
    state = torch.get_rng_state()
    stacked = StackedGNN(
        8,
        16,
        3,
        2,
        act=["relu", "leaky_relu"],
        act_kwargs=[{}, {"negative_slope": 0.2}],
        seeds=[3, 4],
    )
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(4)
    ref = LeakyGNN(8, 16, 3, 2, act="leaky_relu", act_kwargs={"negative_slope": 0.2})
    x, ei = _graph()
    assert _close(stacked(x, ei)[1], ref(x, ei), 1e-6)
    assert "num_models=2" in repr(stacked)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"gnnleaky\.nn\.GCN models, got GraphSAGE"):
        StackedGNN.from_models([LeakyGNN(8, 16, 2, 3, conv="sage")])
    with pytest.raises(ValueError, match="add_self_loops=True"):
        StackedGNN.from_models([LeakyGNN(8, 16, 2, 3, add_self_loops=False)])
    with pytest.raises(ValueError, match="norm"):
        StackedGNN.from_models([LeakyGNN(8, 16, 2, 3, norm="batch_norm")])
    with pytest.raises(ValueError, match="differs"):
        StackedGNN.from_models([LeakyGNN(8, 16, 2, 3), LeakyGNN(8, 16, 3, 3)])
    with pytest.raises(ValueError, match="non-empty"):
        StackedGNN.from_models([])
    with pytest.raises(ValueError, match="disagree"):
        StackedGNN(8, 16, 2, act=["relu", "relu"], seeds=[0, 1, 2])
    stacked = StackedGNN.from_models(_models(2))
    x, ei = _graph()
    with pytest.raises(ValueError, match="in_channels"):
        stacked(x[:, :4], ei)
    with pytest.raises(ValueError, match="edge_index"):
        stacked(x, ei + 100)
    with pytest.raises(ValueError, match="p must be"):
        SeededDropout(1.0)
    with pytest.raises(ValueError, match="k must be"):
        stacked.model(99)


def test_model_slopes_match_slopes_of_the_model():
    models = _models(4)
    stacked = StackedGNN.from_models(models, copy_models=False)
    assert stacked._templates[0] is models[0]
    with torch.no_grad():  # move learned slopes away from their init
        if stacked.slope_raw is not None:
            stacked.slope_raw.add_(0.05 * torch.randn_like(stacked.slope_raw))
    for k in range(len(models)):
        want = slopes(stacked.model(k))
        got = stacked.model_slopes(k)
        assert list(got) == list(want)
        for name in want:
            assert torch.allclose(got[name], want[name].detach().reshape(-1), atol=1e-6), name
    with pytest.raises(ValueError, match="k must be in"):
        stacked.model_slopes(len(models))
