import functools

import pandas as pd
import pytest
import torch
from torch_geometric.nn.models import GAT, GCN, GIN, GraphSAGE
from torch_geometric.utils import to_undirected

from gnnleaky.nn import LeakyGNN
from gnnleaky.spectral import (
    DENSE_MAX_NODES,
    METRICS,
    GraphCache,
    LayerProbe,
    dirichlet_energy,
    effective_rank,
    frobenius_norm,
    high_frequency_ratio,
    kpm_high_frequency_ratio,
    layer_metrics,
    mad,
    rayleigh_quotient,
)
from tests.graphs import random_graph
from tests.spectral._graphs import path_graph

METRIC_SET = ["dirichlet", "rayleigh", "norm"]


_graph = functools.partial(random_graph, n=30, e=80, f=8, undirected=True)


def _value(df, layer, stage, metric, call=0):
    row = df[(df.layer == layer) & (df.stage == stage) & (df.metric == metric) & (df.call == call)]
    assert len(row) == 1, (layer, stage, metric, len(row))
    return float(row.value.iloc[0])


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


# -- layer_metrics and the registry -----------------------------------------------------------
def test_layer_metrics_equal_the_functions():
    x, ei = _graph()
    out = layer_metrics(x, ei, list(METRICS))
    assert set(out) == set(METRICS)
    assert all(v.dim() == 0 and v.dtype == torch.float64 for v in out.values())
    assert float(out["dirichlet"]) == pytest.approx(float(dirichlet_energy(x, ei)))
    assert float(out["dirichlet_sym"]) == pytest.approx(
        float(dirichlet_energy(x, ei, normalization="sym"))
    )
    assert float(out["rayleigh"]) == pytest.approx(float(rayleigh_quotient(x, ei)))
    assert float(out["rayleigh_gcn"]) == pytest.approx(
        float(rayleigh_quotient(x, ei, add_self_loops=True))
    )
    assert float(out["hf_ratio"]) == pytest.approx(float(high_frequency_ratio(x, ei)))
    assert float(out["mad"]) == pytest.approx(float(mad(x, ei)))
    assert float(out["effective_rank"]) == pytest.approx(float(effective_rank(x)))
    assert float(out["norm"]) == pytest.approx(float(frobenius_norm(x)))


def test_layer_metrics_stacked_and_cached():
    x, ei = _graph()
    xs = torch.stack([x, 2 * x, -x])
    cache = GraphCache(ei, 30)
    out = layer_metrics(xs, ei, list(METRICS), cache=cache)
    assert all(v.shape == (3,) for v in out.values())
    single = layer_metrics(x, ei, list(METRICS), cache=cache)
    for name in METRICS:
        assert float(out[name][0]) == pytest.approx(float(single[name]), rel=1e-6)
    assert float(out["dirichlet"][1]) == pytest.approx(4 * float(single["dirichlet"]), rel=1e-6)
    assert float(out["rayleigh"][2]) == pytest.approx(float(single["rayleigh"]), rel=1e-6)


def test_layer_metrics_errors():
    x, ei = _graph()
    with pytest.raises(ValueError, match="metrics must be names from"):
        layer_metrics(x, ei, ["dirichlet", "energy"])
    with pytest.raises(ValueError, match="different graph"):
        layer_metrics(x, ei, ["dirichlet"], cache=GraphCache(path_graph(30), 30))
    with pytest.raises(ValueError, match="floating tensor"):
        layer_metrics(x.long(), ei, ["dirichlet"])


def test_layer_metrics_of_diverged_features_are_nan_not_errors():
    x, ei = _graph()
    x[3, 2] = float("nan")
    out = layer_metrics(torch.stack([x, x]), ei, list(METRICS))
    assert all(v.shape == (2,) and bool(torch.isnan(v).all()) for v in out.values())


def test_hf_ratio_metric_switches_to_kpm_beyond_the_dense_limit():
    n = DENSE_MAX_NODES + 10
    ring = torch.arange(n)
    ei = to_undirected(torch.stack([ring, (ring + 1) % n]))
    x = torch.randn(n, 4, dtype=torch.float64)
    got = layer_metrics(x, ei, ["hf_ratio"])["hf_ratio"]
    assert float(got) == pytest.approx(float(kpm_high_frequency_ratio(x, ei)), rel=1e-12)


# -- the probe on LeakyGNN --------------------------------------------------------------------
@pytest.mark.parametrize("out_channels", [None, 3])
def test_probe_on_leaky_gnn_matches_hidden_features(out_channels):
    x, ei = _graph()
    model = LeakyGNN(8, 16, 4, out_channels, act="prelu").eval()
    with torch.no_grad():
        ref_out, hidden = model.forward_hidden(x, ei)
    with LayerProbe(model, metrics=METRIC_SET) as probe:
        out = model(x, ei)
    assert torch.equal(out, ref_out)
    df = probe.to_frame()
    assert list(df.columns) == ["call", "layer", "stage", "metric", "value"]
    assert len(df) == 4 * 2 * len(METRIC_SET)
    for layer in range(4):
        for stage, feats in (("pre", hidden.pre), ("post", hidden.post)):
            ref = layer_metrics(feats[layer], ei, METRIC_SET)
            for name in METRIC_SET:
                assert _value(df, layer, stage, name) == pytest.approx(float(ref[name]), rel=1e-6)
    if out_channels is not None:  # output layer: no activation, pre == post
        last = df[df.layer == 3].pivot_table(index="metric", columns="stage", values="value")
        assert (last["pre"] == last["post"]).all()
    assert _hooks(model) == 0


def test_probe_keeps_gradients_and_output_in_train_mode():
    x, ei = _graph()
    model = LeakyGNN(8, 16, 3, 2, dropout=0.5, act="leaky_relu")
    torch.manual_seed(1)
    ref = model(x, ei)
    torch.manual_seed(1)
    with LayerProbe(model, metrics=["dirichlet"]) as probe:
        out = model(x, ei)
    assert torch.equal(out, ref)
    out.sum().backward()  # the probe built no graph of its own and broke none
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    values = [v for *_, vals in probe.records for v in vals.values()]
    assert values and not any(v.requires_grad for v in values)


def test_stage_layers_calls_and_kwargs_capture():
    x, ei = _graph()
    model = LeakyGNN(8, 16, 5, act="relu")
    with (
        torch.no_grad(),
        LayerProbe(model, metrics=["norm"], stage="post", layers=[0, -1]) as probe,
    ):
        model(x, edge_index=ei)
        model(x, ei)
    df = probe.to_frame()
    assert sorted(df.layer.unique().tolist()) == [0, 4]
    assert df.stage.unique().tolist() == ["post"]
    assert sorted(df.call.unique().tolist()) == [0, 1]
    assert len(df) == 2 * 2
    with pytest.raises(ValueError, match="layers must be in"):
        with LayerProbe(model, layers=[7]):
            pass
    assert _hooks(model) == 0


def test_graph_given_at_construction_with_weights():
    x, ei = _graph()
    w = torch.rand(ei.size(1))  # asymmetric weights: measured on (A + A^T) / 2
    model = LeakyGNN(8, 16, 2)
    with (
        torch.no_grad(),
        LayerProbe(
            model, metrics=["dirichlet"], edge_index=ei, edge_weight=w, symmetrize=True
        ) as probe,
    ):
        model(x, ei)
    _, hidden = model.forward_hidden(x, ei)
    ref = dirichlet_energy(hidden.pre[0], ei, w, symmetrize=True)
    assert _value(probe.to_frame(), 0, "pre", "dirichlet") == pytest.approx(float(ref))


# -- PyG's own models -------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [GCN, GraphSAGE, GAT, GIN])
def test_probe_on_pyg_basic_gnns(cls):
    x, ei = _graph()
    model = cls(8, 16, 3, 4).eval()
    with torch.no_grad(), LayerProbe(model, metrics=["dirichlet", "norm"]) as probe:
        out = model(x, ei)
    df = probe.to_frame()
    assert sorted(df.layer.unique().tolist()) == [0, 1, 2]
    assert len(df) == 3 * 2 * 2
    # reference: the same forward written out (norm None, dropout 0, no JK)
    h = x
    with torch.no_grad():
        for i, conv in enumerate(model.convs):
            pre = conv(h, ei)
            post = model.act(pre) if i < 2 else pre
            for stage, feats in (("pre", pre), ("post", post)):
                ref = float(dirichlet_energy(feats, ei))
                assert _value(df, i, stage, "dirichlet") == pytest.approx(ref, rel=1e-6)
            h = post
    assert torch.allclose(h, out)
    assert _hooks(model) == 0


def test_probe_on_pyg_gcn_with_jumping_knowledge_records_every_layer():
    x, ei = _graph()
    model = GCN(8, 16, 3, 4, jk="cat").eval()
    with torch.no_grad(), LayerProbe(model, metrics=["norm"], stage="pre") as probe:
        model(x, ei)
    assert probe.to_frame().layer.tolist() == [0, 1, 2]


# -- any model through modules= ------------------------------------------------------------
class _Propagate(torch.nn.Module):
    """A linear GNN written by hand: h <- act(A_hat h W), one shared activation."""

    def __init__(self, channels, layers, stacked=False):
        super().__init__()
        self.lins = torch.nn.ModuleList(
            torch.nn.Linear(channels, channels, bias=False) for _ in range(layers)
        )
        self.act = torch.nn.Tanh()
        self.stacked = stacked

    def forward(self, x, edge_index):
        n = x.size(-2)
        adj = torch.zeros(n, n).index_put_(
            (edge_index[1], edge_index[0]), torch.ones(edge_index.size(1)), accumulate=True
        )
        adj = adj + torch.eye(n)
        adj = adj / adj.sum(1, keepdim=True)
        for lin in self.lins:
            x = self.act(adj @ lin(x))
        return x


def test_probe_with_module_list_and_shared_module():
    x, ei = _graph()
    model = _Propagate(8, 3)
    with torch.no_grad(), LayerProbe(model, metrics=["norm"], modules=[model.act] * 3) as probe:
        out = model(x, ei)
    df = probe.to_frame()
    assert sorted(df.layer.unique().tolist()) == [0, 1, 2]
    assert _value(df, 2, "post", "norm") == pytest.approx(float(out.norm()), rel=1e-6)
    with pytest.raises(ValueError, match="modules="):
        LayerProbe(model).__enter__()
    assert _hooks(model) == 0


def test_probe_on_stacked_features_adds_a_model_column():
    x, ei = _graph()
    model = _Propagate(8, 2)
    xs = torch.stack([x, 3 * x])
    with (
        torch.no_grad(),
        LayerProbe(model, metrics=["norm"], stage="pre", modules=[model.act, model.act]) as probe,
    ):
        model(xs, ei)
    df = probe.to_frame()
    assert list(df.columns) == ["call", "layer", "stage", "metric", "model", "value"]
    assert len(df) == 2 * 2
    first = df[df.layer == 0].sort_values("model").value.tolist()
    assert first[1] == pytest.approx(3 * first[0], rel=1e-5)


# -- hooks always removed ---------------------------------------------------------------------
def test_hooks_removed_when_forward_raises():
    x, ei = _graph()
    model = LeakyGNN(8, 16, 3, 2)

    def boom(*args, **kwargs):
        raise RuntimeError("conv failed")

    model.convs[1].forward = boom
    with pytest.raises(RuntimeError, match="conv failed"), LayerProbe(model) as probe:
        model(x, ei)
    assert _hooks(model) == 0
    assert len(probe.records) == 2  # layer 0 was recorded before the failure

    pyg = GIN(8, 16, 3, 2)
    pyg.convs[2].forward = boom
    with pytest.raises(RuntimeError, match="conv failed"), LayerProbe(pyg):
        pyg(x, ei)
    assert _hooks(pyg) == 0


def test_hooks_removed_when_the_probe_itself_raises():
    x, _ = _graph()
    model = LeakyGNN(8, 16, 3, 2)
    directed = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="directed"), LayerProbe(model):
        model(x, directed)
    assert _hooks(model) == 0


def test_probe_argument_validation_and_reentry():
    model = LeakyGNN(8, 16, 2)
    with pytest.raises(ValueError, match="stage must be one of"):
        LayerProbe(model, stage="mid")
    with pytest.raises(ValueError, match="metrics must be names from"):
        LayerProbe(model, metrics=["energy"])
    with pytest.raises(ValueError, match=r"model must be a torch\.nn\.Module"):
        LayerProbe(lambda x: x)
    probe = LayerProbe(model)
    with probe, pytest.raises(RuntimeError, match="re-entrant"):
        probe.__enter__()
    assert _hooks(model) == 0
    assert isinstance(probe.to_frame(), pd.DataFrame)
