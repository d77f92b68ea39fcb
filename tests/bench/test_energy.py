"""`gnnleaky energy` and the sweep extract per-layer numbers the same way."""

import pandas as pd
import pytest
import torch

from gnnleaky.bench.config import RunConfig
from gnnleaky.bench.train import build_model, train_run
from gnnleaky.cli import main
from gnnleaky.datasets import load
from gnnleaky.nn import GCN
from gnnleaky.spectral import layer_metrics, layer_records


def test_energy_at_init_equals_the_sweeps_init_records(tmp_path):
    csv = tmp_path / "e.csv"
    argv = ["energy", "--dataset", "csbm", "--depth", "3", "--epochs", "0", "--seed", "4"]
    assert main([*argv, "--csv", str(csv)]) == 0
    cli = pd.read_csv(csv)
    cfg = RunConfig(
        dataset="csbm", num_layers=3, act="leaky_relu", negative_slope=0.2, epochs=1, seed=4
    )
    res = train_run(load("csbm"), cfg)
    sweep = pd.DataFrame(res.layers)
    sweep = sweep[sweep["when"] == "init"].drop(columns="when")
    key = ["layer", "stage", "metric"]
    merged = cli.merge(sweep, on=key, suffixes=("_cli", "_sweep"))
    assert len(merged) == len(cli) == len(sweep) > 0
    assert (merged.value_cli - merged.value_sweep).abs().max() < 1e-9


def test_a_directed_graph_is_measured_symmetrized_by_both():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 4, generator=g)
    ei = torch.randint(0, 20, (2, 50), generator=g)  # directed
    model = GCN(4, 8, 2, 3).eval()
    [recs] = layer_records(model, x, ei, ["dirichlet"])
    _, hidden = model.forward_hidden(x, ei)
    from gnnleaky.spectral import GraphCache

    cache = GraphCache(ei, 20, symmetrize=True)
    ref = float(layer_metrics(hidden.pre[0], ei, ["dirichlet"], cache=cache)["dirichlet"])
    got = [r["value"] for r in recs if (r["layer"], r["stage"]) == (0, "pre")]
    assert got == [pytest.approx(ref)]
    with pytest.raises(ValueError, match="directed"):
        layer_records(model, x, ei, ["dirichlet"], symmetrize=False)


def test_layer_records_of_a_stack_and_of_any_pyg_model():
    from torch_geometric.nn.models import GraphSAGE

    from gnnleaky.engine import StackedGNN

    data = load("csbm", num_nodes=60, seed=0)
    models = [
        build_model(RunConfig(num_layers=2, hidden_channels=8, seed=s), 16, 2) for s in (0, 1)
    ]
    stack = StackedGNN.from_models(models)
    per_model = layer_records(stack, data.x, data.edge_index, ["norm"])
    for m, recs in zip(models, per_model):
        [alone] = layer_records(m, data.x, data.edge_index, ["norm"])
        assert [r["value"] for r in recs] == pytest.approx([r["value"] for r in alone], rel=1e-5)
    [recs] = layer_records(GraphSAGE(16, 8, 2, 2), data.x, data.edge_index, ["norm"])
    assert {r["layer"] for r in recs} == {0, 1}
