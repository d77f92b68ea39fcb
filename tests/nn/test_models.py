"""gnnleaky.nn's models against PyG's: same function, same checkpoints, same tooling,
one activation instance per layer."""

import copy
import functools
import inspect
import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F
import torch_geometric.nn.models as pyg
from torch_geometric.nn.conv import GATv2Conv, GraphConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from gnnleaky.nn import (
    GAT,
    GCN,
    GCNII,
    GIN,
    PNA,
    EdgeCNN,
    GraphSAGE,
    LeakyGNN,
    PReLU,
    model_class,
    slope_l1,
    slopes,
)
from gnnleaky.nn.activation import FunctionActivation, NoActivation, slope_parameters
from tests.graphs import random_graph

_graph = functools.partial(random_graph, n=30, e=120, f=8)


PAIRS = [
    (GCN, pyg.GCN, {}),
    (GraphSAGE, pyg.GraphSAGE, {}),
    (GIN, pyg.GIN, {}),
    (GAT, pyg.GAT, {"heads": 2}),
    (
        PNA,
        pyg.PNA,
        {"aggregators": ["mean", "max", "std"], "scalers": ["identity", "linear"]},
    ),
    (EdgeCNN, pyg.EdgeCNN, {}),
]


def _nonparametric_acts():
    """Every activation PyG's resolver builds without arguments and without parameters,
    plus the callables of PyG's own test file."""
    names = []
    for name, cls in vars(torch.nn.modules.activation).items():
        if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
            continue
        if cls in (torch.nn.Module, torch.nn.PReLU, torch.nn.GLU):  # GLU halves widths
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = cls()
        except TypeError:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ok = module(torch.randn(3, 16)).shape == (3, 16)
        except (RuntimeError, ValueError):
            ok = False  # e.g. Softmax2d: not for [N, C] node features, in PyG either
        if ok and not list(module.parameters()):
            names.append(name)
    return [*names, "swish", "leaky_relu", None, torch.relu_, F.elu, torch.tanh]


ACTS = _nonparametric_acts()
JKS = [None, "last", "cat", "max", "lstm"]
NORMS = [None, "batch_norm", "layer_norm"]


def _pair(ours_cls, pyg_cls, extra, deg, **kw):
    if ours_cls is PNA:
        extra = {**extra, "deg": deg}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        ref = pyg_cls(8, 16, num_layers=3, **kw, **extra)
    ours = ours_cls(8, 16, num_layers=3, **kw, **extra)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours.eval(), ref.eval()


def _same(a, b, tol=1e-6):
    return bool(torch.allclose(a, b, rtol=0.0, atol=tol, equal_nan=True))


@pytest.mark.parametrize(("ours_cls", "pyg_cls", "extra"), PAIRS, ids=lambda v: str(v)[:12])
def test_pyg_checkpoint_loads_strictly_and_gives_the_same_output(ours_cls, pyg_cls, extra):
    x, ei = _graph()
    deg = torch.bincount(ei[1], minlength=30)
    configs = list(itertools.product(JKS, NORMS, [None, 4]))
    for i, (jk, norm, out) in enumerate(configs):
        act = ACTS[i % len(ACTS)]  # every act once per model class, over the grid
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Softmax and friends: implicit dim
            ours, ref = _pair(
                ours_cls, pyg_cls, extra, deg, out_channels=out, act=act, norm=norm, jk=jk
            )
            assert _same(ours(x, ei), ref(x, ei)), (jk, norm, out, act)
    for act in ACTS[len(configs) :]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours, ref = _pair(ours_cls, pyg_cls, extra, deg, out_channels=4, act=act)
            assert _same(ours(x, ei), ref(x, ei)), act


@pytest.mark.parametrize("num_layers", [1, 2, 5])
def test_gcn_arguments_are_honoured_as_in_pyg(num_layers):
    x, ei = _graph()
    ew = torch.randn(ei.size(1))  # negative weights too: PyG accepts them
    for kw in ({}, {"add_self_loops": False}, {"normalize": False}, {"improved": True}):
        with torch.random.fork_rng():
            torch.manual_seed(1)
            ref = pyg.GCN(8, 16, num_layers, 3, **kw)
        ours = GCN(8, 16, num_layers, 3, **kw)
        ours.load_state_dict(ref.state_dict())
        assert _same(ours(x, ei), ref(x, ei)), kw
        assert _same(ours(x, ei, ew), ref(x, ei, ew)), kw
        assert all(getattr(c, k) == v for c in ours.convs for k, v in kw.items())


def test_out_channels_none_ends_without_activation_norm_or_dropout():
    x, ei = _graph()
    model = GCN(8, 16, 3, norm="batch_norm", dropout=0.5).eval()
    ref = pyg.GCN(8, 16, 3, norm="batch_norm", dropout=0.5).eval()
    ref.load_state_dict(model.state_dict())
    out = model(x, ei)
    assert bool((out < 0).any())  # the last layer is not clipped by a ReLU
    assert _same(out, ref(x, ei))
    assert isinstance(model.acts[-1], NoActivation) and model.num_activations == 2


def test_edge_weight_is_ignored_where_pyg_ignores_it():
    x, ei = _graph()
    w = torch.rand(ei.size(1))
    for cls in (GraphSAGE, GIN, GAT):
        model = cls(8, 16, 2, 3)
        assert not model.supports_edge_weight
        assert _same(model(x, ei, w), model(x, ei))


def test_gat_options():
    x, ei = _graph()
    model = GAT(8, 16, 2, 3, dropout=0.3, v2=True, heads=4, edge_dim=5)
    assert all(isinstance(c, GATv2Conv) and c.dropout == 0.3 for c in model.convs)
    assert model.convs[0].heads == 4 and model.convs[0].concat
    assert not model.convs[-1].concat  # the output layer averages its heads, as in PyG
    edge_attr = torch.randn(ei.size(1), 5)
    model.eval()
    assert model(x, ei, edge_attr=edge_attr).shape == (30, 3)
    assert not _same(model(x, ei, edge_attr=edge_attr), model(x, ei, edge_attr=2 * edge_attr))
    assert GAT(8, 16, 2, concat=False, heads=2).convs[0].out_channels == 16


def test_every_layer_owns_its_activation():
    model = GCN(8, 16, 4, 3, act="prelu", act_kwargs={"mode": "channel", "init": 0.1})
    params = slope_parameters(model)
    assert len(params) == 3 == len({id(p) for p in params})
    assert list(slopes(model)) == ["acts.0", "acts.1", "acts.2"]
    # PyG's model.act is the template here: not a submodule, not in the state dict
    assert isinstance(model.act, PReLU)
    assert all(model.act is not m for m in model.modules())
    assert not any(k.startswith("act.") for k in model.state_dict())
    gin = GIN(8, 16, 3, act="prelu")
    inner = [c.nn.act for c in gin.convs]
    assert len({id(a) for a in inner + list(gin.acts)}) == len(inner) + len(gin.acts)
    funcs = GCN(8, 16, 3, act=torch.relu_)
    assert isinstance(funcs.acts[0], FunctionActivation) and funcs.acts[0] is not funcs.acts[1]


def test_act_kwargs_as_torch_and_pyg_spell_them():
    model = GCN(8, 16, 3, act="prelu", act_kwargs={"num_parameters": 16})
    assert all(p.shape == (16,) for p in slope_parameters(model))
    model = GCN(8, 16, 3, act="PReLU", act_kwargs={"num_parameters": 1, "init": 0.3})
    assert all(float(p) == pytest.approx(0.3) for p in slope_parameters(model))
    model = GCN(8, 16, 3, act="elu", act_kwargs={"alpha": 0.5})
    assert model.acts[0].alpha == 0.5


def test_cached_operator_is_never_stale():
    x, _ = _graph()
    cached = GCN(8, 16, 2, 3, cached=True)
    plain = GCN(8, 16, 2, 3)
    plain.load_state_dict(cached.state_dict())
    seen = set()
    for seed in range(20):  # new graphs of one shape, the old ones freed
        ei = _graph(seed=seed)[1]
        seen.add(ei.data_ptr())
        assert _same(cached(x, ei), plain(x, ei))
        del ei
    ei = _graph(seed=99)[1]
    assert _same(cached(x, ei), plain(x, ei))
    ei[1, :10] = 0  # in-place edit
    assert _same(cached(x, ei), plain(x, ei))
    w = torch.rand(ei.size(1))
    assert _same(cached(x, ei, w), plain(x, ei, w))
    w.mul_(3.0).add_(1.0)
    assert _same(cached(x, ei, w), plain(x, ei, w))
    # the cache is used: the same graph twice computes the operator once
    calls = []
    for conv in cached.convs:
        conv.register_forward_pre_hook(lambda c, _: calls.append(c._cached_edge_index))
    cached(x, ei, w)
    cached(x, ei, w)
    assert all(c is not None for c in calls[2:])


def _compile_cases():
    deg = torch.tensor([1, 2, 1])
    return [
        (GCN, {"add_self_loops": False}),
        (GCN, {"add_self_loops": False, "act": "prelu", "act_kwargs": {"bounds": (0, 1)}}),
        (GraphSAGE, {"act": "leaky_relu", "jk": "cat"}),
        (GIN, {}),
        (GAT, {"add_self_loops": False}),
        (EdgeCNN, {}),
        (PNA, {"aggregators": ["sum", "mean", "max"], "scalers": ["identity"], "deg": deg}),
    ]


@pytest.mark.parametrize(("cls", "kw"), _compile_cases(), ids=lambda v: str(v)[:20])
def test_torch_compile_fullgraph_without_graph_breaks(cls, kw):
    import torch._dynamo as dynamo

    x = torch.randn(3, 8)
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    model = cls(8, 16, num_layers=2, **kw).eval()
    dynamo.reset()
    explain = dynamo.explain(model)(x, ei)
    assert explain.graph_break_count == 0
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    assert _same(compiled(x, ei), model(x, ei))


@pytest.mark.slow
def test_torch_compile_inductor_matches_eager():
    x, ei = _graph()
    model = GCN(8, 16, 3, 3, act="leaky_relu", add_self_loops=False).eval()
    compiled = torch.compile(model, fullgraph=True)
    assert _same(compiled(x, ei), model(x, ei), 1e-5)


def test_torch_jit_script_with_per_layer_activations():
    x, ei = _graph()
    for model in (
        GCN(8, 16, 3, 3, act="leaky_relu", act_kwargs={"negative_slope": 0.2}),
        GCN(8, 16, 3, act="prelu", jk="max"),
        GraphSAGE(8, 16, 2, 3, act="elu", residual=True),
    ):
        model.eval()
        scripted = torch.jit.script(model)
        assert _same(scripted(x, ei), model(x, ei))


def test_sparse_adjacency_input():
    from torch_geometric.utils import coalesce, remove_self_loops, to_torch_csr_tensor

    x, ei = _graph()
    ei = coalesce(remove_self_loops(ei)[0])  # a sparse matrix has no duplicates
    adj_t = to_torch_csr_tensor(ei.flip(0), size=(30, 30))  # PyG's transposed adjacency
    for cls, ref_cls in ((GCN, pyg.GCN), (GraphSAGE, pyg.GraphSAGE), (GIN, pyg.GIN)):
        model = cls(8, 16, 2, 3).eval()
        ref = ref_cls(8, 16, 2, 3).eval()
        ref.load_state_dict(model.state_dict())
        assert _same(model(x, adj_t), ref(x, adj_t))
        assert _same(model(x, adj_t), model(x, ei), 1e-5)


def test_lazy_and_bipartite_input():
    x, ei = _graph()
    lazy = GraphSAGE(-1, 16, 2, 3)
    assert lazy(x, ei).shape == (30, 3)
    src, dst = torch.randn(10, 8), torch.randn(4, 5)
    edge_index = torch.stack([torch.arange(10), torch.arange(10) % 4])
    bip = GraphSAGE((8, 5), 16, num_layers=1, out_channels=3)
    assert bip((src, dst), edge_index).shape == (4, 3)


def test_to_hetero_gives_each_type_its_own_activations():
    from torch_geometric.data import HeteroData
    from torch_geometric.nn import to_hetero

    data = HeteroData()
    data["paper"].x = torch.randn(6, 8)
    data["author"].x = torch.randn(4, 8)
    data["author", "writes", "paper"].edge_index = torch.tensor([[0, 1, 2, 3], [0, 2, 4, 5]])
    data["paper", "rev_writes", "author"].edge_index = torch.tensor([[0, 2, 4, 5], [0, 1, 2, 3]])
    model = GraphSAGE((-1, -1), 16, num_layers=2, out_channels=3, act="prelu")
    model = to_hetero(model, data.metadata(), aggr="sum")
    out = model(data.x_dict, data.edge_index_dict)
    assert out["paper"].shape == (6, 3) and out["author"].shape == (4, 3)
    names = [n for n, _ in model.named_parameters() if n.startswith("acts.0")]
    assert sorted(names) == ["acts.0.author.weight", "acts.0.paper.weight"]


def test_inference_per_layer_uses_each_layers_activation():
    x, ei = _graph()
    for kw in ({}, {"residual": True}, {"act_first": True, "norm": "layer_norm"}, {"jk": "last"}):
        model = GraphSAGE(8, 8, 3, act="prelu", **kw).eval()
        with torch.no_grad():
            for i, act in enumerate(model.acts[: model.num_activations]):
                act.weight.fill_(0.1 * (i + 1))
        h = x
        for layer in range(model.num_layers):
            h = model.inference_per_layer(layer, h, ei, batch_size=30)
        assert _same(h, model(x, ei), 1e-5), kw


def test_leakygnn_dispatches_by_conv_and_subclasses_pyg():
    for name in ("gcn", "sage", "GraphSAGE", "gat", "gin", "edgecnn"):
        model = LeakyGNN(8, 16, 2, 3, conv=name)
        assert type(model) is model_class(name)
        assert isinstance(model, LeakyGNN)
        assert isinstance(model, pyg.basic_gnn.BasicGNN)
    assert isinstance(LeakyGNN(8, 16, 2, 3), GCN) and isinstance(GCN(8, 16, 2), pyg.GCN)
    assert type(LeakyGNN(8, 16, 2, 3, conv="gcnii")) is GCNII
    with pytest.raises(ValueError, match="conv must be one of"):
        LeakyGNN(8, 16, 2, conv="transformer")
    with pytest.raises(ValueError, match="names GraphSAGE, but this is GCN"):
        GCN(8, 16, 2, conv="sage")
    # same signature as PyG's, plus the keyword-only extras
    ours = inspect.signature(GCN.__init__).parameters
    theirs = inspect.signature(pyg.GCN.__init__).parameters
    assert list(theirs)[:-1] == list(ours)[: len(theirs) - 1]
    forward = inspect.signature(pyg.GCN.forward).parameters
    assert list(inspect.signature(GCN.forward).parameters) == list(forward)


def test_a_users_own_basic_gnn_gets_per_layer_activations():
    from typing import Final

    class MyGNN(LeakyGNN):
        supports_edge_weight: Final[bool] = True
        supports_edge_attr: Final[bool] = False
        supports_norm_batch: Final[bool]

        def init_conv(self, in_channels, out_channels, **kwargs):
            return GraphConv(in_channels, out_channels, **kwargs)

    x, ei = _graph()
    model = MyGNN(8, 16, 3, 3, act="prelu", act_kwargs={"init": 0.1})
    assert len(slope_parameters(model)) == 2
    assert model(x, ei, torch.rand(ei.size(1))).shape == (30, 3)
    assert repr(model) == "MyGNN(8, 3, num_layers=3)"


def test_whole_model_pickles_with_bounded_prelu(tmp_path):
    x, ei = _graph()
    model = GCN(8, 16, 3, 3, act="prelu", act_kwargs={"mode": "channel", "bounds": (0, 1)})
    model.eval()
    torch.save(model, tmp_path / "m.pt")
    loaded = torch.load(tmp_path / "m.pt", weights_only=False)
    assert _same(loaded(x, ei), model(x, ei))
    assert _same(copy.deepcopy(model)(x, ei), model(x, ei))
    for a in loaded.acts[:2]:
        assert a.bounds == (0.0, 1.0)


def test_forward_hidden_residual_and_in_place_activations():
    x, ei = _graph()
    m = GCN(8, 16, 4, 3, act="leaky_relu", act_kwargs={"negative_slope": 0.1}, residual=True)
    out, h = m.forward_hidden(x, ei)
    assert _same(out, m(x, ei))
    assert len(h.pre) == len(h.post) == 4
    neg = h.pre[0] < 0
    assert torch.allclose(h.post[0][neg], 0.1 * h.pre[0][neg])
    assert h.post[-1] is h.pre[-1]
    inplace = GCN(8, 16, 3, 3, act=torch.relu_)
    _, h = inplace.forward_hidden(x, ei)
    assert bool((h.pre[0] < 0).any())  # recorded before the in-place ReLU clipped it


def test_deep_channel_prelu_has_one_slope_per_activated_layer():
    # 64 layers with out_channels: the last layer maps to the logits without activation
    # (as in PyG), so there are 63 activations and 63 distinct slope tensors.
    torch.manual_seed(0)
    x, ei = _graph(n=40, e=200, f=8)
    m = GCN(
        8, 16, 64, 3, act="prelu", act_kwargs={"mode": "channel", "bounds": (0.0, 1.0)}, cached=True
    )
    params = slope_parameters(m)
    assert len(params) == 63 == len({id(p) for p in params})
    assert all(p.shape == (16,) for p in params)
    m(x, ei).square().mean().backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in params)
    assert sum(float(p.grad.abs().sum()) > 0 for p in params) == 63

    opt = torch.optim.SGD(m.parameters(), lr=10.0)
    y = torch.randint(0, 3, (40,))
    for _ in range(40):
        opt.zero_grad()
        loss = F.cross_entropy(m(x, ei), y)
        if torch.isfinite(loss):
            loss.backward()
        for p in params:  # push slopes hard against both bounds
            p.grad = torch.randn_like(p) * 1e3
        opt.step()
    for s in slopes(m).values():
        s = s.detach()
        assert float(s.min()) >= 0.0 and float(s.max()) <= 1.0


def test_slope_l1_alone_drives_slopes_to_zero():
    m = GCN(8, 16, 64, 3, act="prelu", act_kwargs={"mode": "channel", "init": 0.25})
    lr = 1e-3
    opt = torch.optim.SGD(slope_parameters(m), lr=lr)
    for _ in range(300):
        opt.zero_grad()
        slope_l1(m).backward()
        opt.step()
    # Subgradient steps of size lr reach 0 and then stay within one step of it.
    assert max(float(s.abs().max()) for s in slopes(m).values()) <= lr + 1e-7


def test_jk_gives_an_activation_to_every_layer():
    m = GCN(8, 16, 5, 3, act="prelu", jk="cat")
    assert m.num_activations == 5 == len(slope_parameters(m))
    x, ei = _graph()
    assert m(x, ei).shape == (30, 3)


def test_gcnii_is_the_papers_network():
    x, ei = _graph()
    model = GCNII(8, 16, 6, 3, dropout=0.6, act="prelu", alpha=0.2, theta=0.7).eval()
    assert len(model.convs) == 6 and model.num_activations == 7
    assert [c.beta for c in model.convs] == pytest.approx(
        [float(torch.log(torch.tensor(0.7 / (i + 1) + 1))) for i in range(6)]
    )
    with torch.no_grad():
        for i, act in enumerate(model.acts):
            act.weight.fill_(0.05 * i)
    ew_ei, ew = gcn_norm(ei, None, 30, add_self_loops=True)
    h = x0 = model.acts[0](model.lins[0](x))
    for conv, act in zip(model.convs, model.acts[1:]):
        h = act(conv(h, x0, ew_ei, ew))
    assert _same(model(x, ei), model.lins[1](h), 1e-5)
    out, hidden = model.forward_hidden(x, ei)
    assert len(hidden.pre) == 7 and _same(out, model(x, ei))
    model.train()
    assert not _same(model(x, ei), model(x, ei))  # dropout is on in training
    cached = GCNII(8, 16, 2, 3, cached=True).eval()
    a = cached(x, ei)
    ref = GCNII(8, 16, 2, 3).eval()
    ref.load_state_dict(cached.state_dict())
    ei2 = ei.flip(0)
    assert _same(cached(x, ei2), ref(x, ei2))
    assert _same(cached(x, ei), a)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"act": "gelu2"}, "act must be one of"),
        ({"num_layers": 0}, "num_layers must be a positive int"),
        ({"hidden_channels": 2.5}, "hidden_channels must be a positive int"),
        ({"in_channels": "8"}, "in_channels must be"),
        ({"act": "leaky_relu", "act_kwargs": {"negative_slope": float("nan")}}, "negative_slope"),
        ({"act": "prelu", "act_kwargs": {"mode": "neuron"}}, "mode must be one of"),
        ({"act": "prelu", "act_kwargs": {"bounds": (0.5, 0.1)}}, "lo <= hi"),
        ({"jk": "sum"}, "jk must be one of"),
        ({"dropout": 1.5}, "dropout must be in"),
        ({"residual": "yes"}, "residual must be True, False or 'initial'"),
        ({"act_kwargs": [1]}, "act_kwargs must be a dict"),
    ],
)
def test_bad_model_arguments(kwargs, match):
    base = {"in_channels": 8, "hidden_channels": 16, "num_layers": 2, "out_channels": 3}
    with pytest.raises(ValueError, match=match):
        GCN(**{**base, **kwargs})


def test_bad_forward_inputs():
    x, ei = _graph()
    m = GCN(8, 16, 2, 3)
    with pytest.raises(ValueError, match="in_channels=8"):
        m(torch.randn(30, 5), ei)
    with pytest.raises(ValueError, match=r"x must have shape \[N, C\]"):
        m(torch.randn(30), ei)
    with pytest.raises((ValueError, IndexError)):
        m(x, torch.tensor([[0, 30], [1, 2]]))
    with pytest.raises(ValueError, match="integer"):
        m(x, ei.float())
    with pytest.raises(ValueError, match="in_channels=8"):
        GCNII(8, 16, 2, 3)(torch.randn(30, 5), ei)
