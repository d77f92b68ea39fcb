import pytest
import torch
from torch_geometric.nn.models import GAT, GCN, GIN, GraphSAGE

from gnnleaky.nn import LeakyGNN, slope_l1, slopes
from gnnleaky.nn.activation import slope_parameters


def _graph(n=30, e=120, f=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, f, generator=g), torch.randint(0, n, (2, e), generator=g)


@pytest.mark.parametrize("num_layers", [1, 2, 5])
def test_relu_gcn_matches_pyg_gcn(num_layers):
    x, ei = _graph()
    ours = LeakyGNN(8, 16, num_layers, 3, act="relu", conv="gcn")
    pyg = GCN(8, 16, num_layers, 3)
    pyg.load_state_dict(ours.state_dict())
    ew = torch.rand(ei.size(1))
    assert (ours(x, ei) - pyg(x, ei)).abs().max() <= 1e-6
    assert (ours(x, ei, ew) - pyg(x, ei, ew)).abs().max() <= 1e-6


def test_leaky_gcn_matches_pyg_gcn_with_leaky_act():
    x, ei = _graph()
    ours = LeakyGNN(
        8, 16, 4, 3, act="leaky_relu", act_kwargs={"negative_slope": 0.2}, norm="batch_norm"
    )
    pyg = GCN(8, 16, 4, 3, act="leaky_relu", act_kwargs={"negative_slope": 0.2}, norm="batch_norm")
    pyg.load_state_dict(ours.state_dict())
    ours.eval()
    pyg.eval()
    assert (ours(x, ei) - pyg(x, ei)).abs().max() <= 1e-6


@pytest.mark.parametrize(("conv", "cls"), [("sage", GraphSAGE), ("gin", GIN), ("gat", GAT)])
def test_other_convs_match_pyg(conv, cls):
    x, ei = _graph()
    ours = LeakyGNN(8, 16, 3, 3, conv=conv)
    pyg = cls(8, 16, 3, 3, norm=None) if conv != "gin" else None
    if pyg is None:
        # PyG's GIN puts a batch-normed MLP inside each layer; check shape and grad instead.
        out = ours(x, ei)
        out.sum().backward()
        assert out.shape == (30, 3)
        assert all(p.grad is not None for p in ours.parameters())
        return
    pyg.load_state_dict(ours.state_dict())
    assert (ours(x, ei) - pyg(x, ei)).abs().max() <= 1e-5


def test_cached_normalization_is_reused_and_invalidated():
    x, ei = _graph()
    m = LeakyGNN(8, 16, 3, 3, cached=True)
    out1 = m(x, ei)
    cached = m._cache[1]
    assert m(x, ei).equal(out1) and m._cache[1] is cached
    ei2 = ei.flip(0).contiguous()
    m(x, ei2)
    assert m._cache[1] is not cached


def test_deep_channel_prelu_has_one_slope_per_activated_layer():
    # 64 layers with out_channels: the last layer maps to the logits without activation
    # (as in PyG), so there are 63 activations and 63 distinct slope tensors.
    torch.manual_seed(0)
    x, ei = _graph(n=40, e=200, f=8)
    m = LeakyGNN(
        8,
        16,
        64,
        3,
        act="prelu",
        act_kwargs={"mode": "channel", "init": 0.25, "bounds": (0.0, 1.0)},
    )
    params = slope_parameters(m)
    assert len(params) == 63 == len({id(p) for p in params})
    assert all(p.shape == (16,) for p in params)
    m(x, ei).square().mean().backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in params)
    assert sum(float(p.grad.abs().sum()) > 0 for p in params) == 63

    opt = torch.optim.SGD(m.parameters(), lr=10.0)
    y = torch.randint(0, 3, (40,))
    for _ in range(200):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(m(x, ei), y)
        if torch.isfinite(loss):
            loss.backward()
        for p in params:  # push slopes hard against both bounds
            p.grad = torch.randn_like(p) * 1e3
        opt.step()
    for s in slopes(m).values():
        assert float(s.min()) >= 0.0 and float(s.max()) <= 1.0


def test_slope_l1_alone_drives_slopes_to_zero():
    m = LeakyGNN(8, 16, 64, 3, act="prelu", act_kwargs={"mode": "channel", "init": 0.25})
    lr = 1e-3
    opt = torch.optim.SGD(slope_parameters(m), lr=lr)
    for _ in range(300):
        opt.zero_grad()
        slope_l1(m).backward()
        opt.step()
    # Subgradient steps of size lr reach 0 and then stay within one step of it.
    assert max(float(s.abs().max()) for s in slopes(m).values()) <= lr + 1e-7


def test_jk_gives_an_activation_to_every_layer():
    m = LeakyGNN(8, 16, 5, 3, act="prelu", jk="cat")
    assert len(m.acts) == 5
    x, ei = _graph()
    assert m(x, ei).shape == (30, 3)


def test_return_hidden_and_residual_and_gcnii():
    x, ei = _graph()
    m = LeakyGNN(8, 16, 4, 3, act="leaky_relu", act_kwargs={"negative_slope": 0.1}, residual=True)
    out, h = m(x, ei, return_hidden=True)
    assert len(h.pre) == len(h.post) == 4
    neg = h.pre[0] < 0
    assert torch.allclose(h.post[0][neg], 0.1 * h.pre[0][neg])
    assert h.post[-1] is h.pre[-1]
    g = LeakyGNN(8, 16, 8, 3, conv="gcnii", act="prelu", alpha=0.2, theta=0.5)
    out = g(x, ei)
    assert out.shape == (30, 3) and len(g.acts) == 8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"act": "gelu2"}, "act must be one of"),
        ({"conv": "transformer"}, "conv must be one of"),
        ({"num_layers": 0}, "num_layers must be an int >= 1"),
        ({"act": "leaky_relu", "act_kwargs": {"negative_slope": float("nan")}}, "negative_slope"),
        ({"act": "prelu", "act_kwargs": {"mode": "neuron"}}, "mode must be one of"),
        ({"act": "prelu", "act_kwargs": {"bounds": (0.5, 0.1)}}, "lo <= hi"),
        ({"jk": "sum"}, "jk must be one of"),
        ({"dropout": 1.5}, "dropout must be in"),
    ],
)
def test_bad_model_arguments(kwargs, match):
    base = {"in_channels": 8, "hidden_channels": 16, "num_layers": 2, "out_channels": 3}
    with pytest.raises(ValueError, match=match):
        LeakyGNN(**{**base, **kwargs})


def test_bad_forward_inputs():
    x, ei = _graph()
    m = LeakyGNN(8, 16, 2, 3)
    with pytest.raises(ValueError, match="in_channels=8"):
        m(torch.randn(30, 5), ei)
    with pytest.raises(ValueError, match="num_nodes=30"):
        m(x, torch.tensor([[0, 30], [1, 2]]))
    with pytest.raises(ValueError, match="negative"):
        m(x, torch.tensor([[0, -1], [1, 2]]))
    with pytest.raises(ValueError, match="integer dtype"):
        m(x, ei.float())
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        m(x, ei[:1])
    with pytest.raises(ValueError, match="NaN or Inf"):
        m(torch.full((30, 8), float("nan")), ei)
    with pytest.raises(ValueError, match="edge_weight must be non-negative"):
        m(x, ei, -torch.ones(ei.size(1)))
    with pytest.raises(ValueError, match="edge_weight is only supported"):
        LeakyGNN(8, 16, 2, 3, conv="sage")(x, ei, torch.ones(ei.size(1)))
