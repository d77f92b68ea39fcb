"""Remedy axes of the sweep (norms, residual, jumping knowledge, DropEdge, GCNII), recipe
knobs (per-dataset settings, weight decay by parameter name, selection rule, init, feature
normalisation) and a user's own model factory."""

import math

import pytest
import torch
import yaml
from torch_geometric.nn import BatchNorm, DiffGroupNorm, GraphConv, LayerNorm, PairNorm
from torch_geometric.nn.models.basic_gnn import BasicGNN

from gnnleaky.bench.config import ConfigError, RunConfig, SweepConfig, load_config
from gnnleaky.bench.store import load
from gnnleaky.bench.sweep import load_data, run_sweep
from gnnleaky.bench.train import _param_groups, build_model, stack_reason, train_run
from gnnleaky.cli import main
from gnnleaky.datasets import load as load_dataset
from gnnleaky.nn import GCN

CSBM = {"num_nodes": 80, "avg_degree": 5, "homophily": 0.9, "snr": 2.0, "num_features": 6}


def _sweep(**kw):
    base = {
        "name": "remedies",
        "datasets": [{"name": "csbm", "params": CSBM}],
        "depths": [3],
        "activations": ["relu"],
        "hidden_channels": 8,
        "epochs": 4,
        "patience": None,
        "metrics": [],
    }
    return SweepConfig.from_dict({**base, **kw})


@pytest.fixture(scope="module")
def data():
    return load_dataset("csbm", **CSBM, seed=0)


# -- the grid ---------------------------------------------------------------------------------
def test_remedy_axes_cross_depth_and_activation():
    cfg = _sweep(
        depths=[2, 4],
        activations=["relu", "leaky_relu"],
        alphas=[0.1, 0.2],
        norms=["none", "pairnorm"],
        residual=[False, True, "initial"],
        jk=["none", "cat"],
        dropedge=[0.0, 0.3],
    )
    runs = cfg.expand()
    assert len(runs) == 2 * 3 * 2 * 3 * 2 * 2
    assert len({r.key for r in runs}) == len(runs)
    combos = {(r.num_layers, r.act, r.negative_slope, r.norm, r.residual, r.jk, r.dropedge)
              for r in runs}  # fmt: skip
    assert (4, "leaky_relu", 0.2, "pairnorm", "initial", "cat", 0.3) in combos


def test_defaults_keep_the_run_key_of_a_config_without_remedies():
    plain = RunConfig(num_layers=3)
    same = RunConfig(num_layers=3, norm="none", residual=False, jk="none", dropedge=0.0)
    assert plain.key == same.key
    for change in (
        {"norm": "batch_norm"},
        {"residual": True},
        {"residual": "initial"},
        {"jk": "max"},
        {"dropedge": 0.2},
        {"selection": "val_loss"},
        {"init": "fan_out_uniform"},
        {"weight_decay_groups": {"convs": 0.01}},
        {"model": "tests.bench.test_remedies:tiny_model"},
    ):
        assert RunConfig(num_layers=3, **change).key != plain.key, change


@pytest.mark.parametrize(
    "override, match",
    [
        ({"norms": ["group_norm"]}, "norms: unknown norm 'group_norm'"),
        ({"residual": ["yes"]}, "residual: got 'yes'; allowed: false, true, initial"),
        ({"jk": ["sum"]}, "jk: unknown mode 'sum'"),
        ({"dropedge": [1.0]}, r"dropedge must be finite numbers in \[0.0, 0.99\]"),
        ({"selection": "test"}, "selection: unknown rule 'test'"),
        ({"init": "xavier"}, "init: unknown initialisation 'xavier'"),
        ({"weight_decay_groups": [0.1]}, "weight_decay_groups must be a mapping"),
        ({"weight_decay_groups": {"convs": -1}}, "weight_decay_groups.convs must be"),
        ({"convs": ["gcnii"], "norms": ["batch_norm"]}, "gcnii has its own initial residual"),
        ({"convs": ["gcnii"], "residual": [True]}, "gcnii has its own initial residual"),
        ({"model": "no_such_package_xyz:f"}, "cannot import module 'no_such_package_xyz'"),
        ({"model": "gnnleaky.nn"}, "model must be 'package.module:factory'"),
        ({"model": "gnnleaky.nn:nothing_here"}, "has no 'nothing_here'"),
        ({"model": "gnnleaky.bench.config:KEY_OPTIONAL_FIELDS"}, "is not callable"),
        (
            {"datasets": [{"name": "csbm", "params": CSBM, "settings": {"lr": -1}}]},
            r"datasets\[csbm\].settings.lr must be",
        ),
        (
            {"datasets": [{"name": "csbm", "params": CSBM, "settings": {"depth": 2}}]},
            r"datasets\[csbm\].settings: unknown keys \['depth'\]",
        ),
        (
            {"datasets": [{"name": "csbm", "params": {"normalize_features": 1}}]},
            r"normalize_features must be bool",
        ),
    ],
)
def test_bad_remedy_configs_are_refused(override, match):
    with pytest.raises(ConfigError, match=match):
        _sweep(**override)


def test_dataset_settings_replace_the_sweep_settings_for_their_runs():
    cfg = _sweep(
        datasets=[
            {"name": "csbm", "label": "a", "params": CSBM, "settings": {"lr": 0.007}},
            {"name": "csbm", "label": "b", "params": CSBM},
        ],
        lr=0.01,
    )
    by_label = {r.dataset_label: r for r in cfg.expand()}
    assert by_label["a"].lr == 0.007 and by_label["b"].lr == 0.01
    assert load_config(yaml.safe_load(cfg.to_yaml())).expand() == cfg.expand()


# -- the models -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "norm, cls", [("batch_norm", BatchNorm), ("layer_norm", LayerNorm), ("pairnorm", PairNorm),
                  ("diffgroup_norm", DiffGroupNorm)]
)  # fmt: skip
def test_norms_are_pyg_norm_layers_and_train(norm, cls, data):
    cfg = RunConfig(num_layers=3, hidden_channels=8, norm=norm, epochs=3, metrics=())
    model = build_model(cfg, data.num_features, 2)
    assert all(isinstance(n, cls) for n in model.norms[:2])
    if norm == "diffgroup_norm":
        assert model.norms[0].groups == 2  # one group per class
    if norm == "layer_norm":
        assert model.norms[0].mode == "node"
    assert train_run(data, cfg).status == "ok"


def test_initial_residual_adds_the_first_layer_to_every_later_one():
    torch.manual_seed(0)
    x, edge_index = torch.randn(6, 4), torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    model = GCN(4, 8, 3, 3, residual="initial").eval()
    plain = GCN(4, 8, 3, 3).eval()
    plain.load_state_dict(model.state_dict())
    c = plain.convs
    h0 = torch.relu(c[0](x, edge_index))
    h1 = torch.relu(c[1](h0, edge_index)) + h0
    expected = c[2](h1, edge_index)  # the output width differs: no residual there
    torch.testing.assert_close(model(x, edge_index), expected)
    with pytest.raises(ValueError, match="residual must be True, False or 'initial'"):
        GCN(4, 8, 3, 3, residual="first")


def test_jumping_knowledge_and_residual_runs_train(data):
    for change in ({"jk": "cat"}, {"residual": True}, {"residual": "initial"}):
        cfg = RunConfig(num_layers=3, hidden_channels=8, epochs=3, metrics=(), **change)
        assert train_run(data, cfg).status == "ok", change


def test_stack_reason_says_which_runs_the_engine_can_stack():
    assert stack_reason(RunConfig()) is None
    assert stack_reason(RunConfig(residual=True)) is None
    assert stack_reason(RunConfig(init="fan_out_uniform", selection="val_loss_train")) is None
    assert "norm" in stack_reason(RunConfig(norm="layer_norm"))
    assert "jumping knowledge" in stack_reason(RunConfig(jk="max"))
    assert "initial residual" in stack_reason(RunConfig(residual="initial"))
    assert "DropEdge" in stack_reason(RunConfig(dropedge=0.1))
    assert "'gcnii' is not stackable" in stack_reason(RunConfig(conv="gcnii"))
    assert "factory" in stack_reason(RunConfig(model="tests.bench.test_remedies:tiny_model"))


def test_dry_run_says_which_groups_are_stacked(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    cfg = _sweep(norms=["none", "batch_norm"], dropedge=[0.0, 0.5])
    path.write_text(cfg.to_yaml())
    assert main(["sweep", str(path), "--dry-run", "--out", str(tmp_path / "r.sqlite")]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == 4
    assert sum(line.endswith("stacked") for line in lines) == 1
    assert any("norm=batch_norm dropedge=0.5" in line and "one by one" in line for line in lines)


# -- DropEdge, selection, weight decay groups, init, features ---------------------------------
def test_dropedge_is_seeded_and_changes_training(data):
    cfg = RunConfig(num_layers=2, hidden_channels=8, epochs=6, patience=None, metrics=(),
                    dropout=0.0, dropedge=0.5)  # fmt: skip
    a, b = train_run(data, cfg), train_run(data, cfg)
    assert [c["train_loss"] for c in a.curve] == [c["train_loss"] for c in b.curve]
    none = train_run(data, RunConfig(**{**cfg.to_dict(), "dropedge": 0.0}))
    assert [c["train_loss"] for c in a.curve] != [c["train_loss"] for c in none.curve]
    # evaluation sees the whole graph: at init both models give the same first scores
    assert a.curve[0]["train_loss"] != none.curve[0]["train_loss"]


def test_selection_rules_select_the_epoch_of_their_score(data):
    from gnnleaky.tasks import NodeClassification
    from gnnleaky.train import fit

    for score in ("val_loss", "val_loss_train"):
        torch.manual_seed(0)
        model = GCN(data.num_features, 8, 2, 2, dropout=0.5)
        [rec] = fit(model, NodeClassification(data), epochs=30, selection=score, mode="min")
        values = [c[score] for c in rec.curve]
        assert all(math.isfinite(v) for v in values)
        assert rec.best_epoch == 1 + min(range(len(values)), key=values.__getitem__)
    # the train-mode loss is not the eval-mode one (dropout is on in training)
    assert any(c["val_loss"] != c["val_loss_train"] for c in rec.curve)


def test_the_sweep_passes_its_selection_rule_to_fit(data, monkeypatch):
    import gnnleaky.bench.train as bench_train

    seen = {}
    real = bench_train.fit

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(bench_train, "fit", spy)
    train_run(data, RunConfig(num_layers=2, epochs=2, metrics=(), selection="val_loss_train"))
    assert (seen["selection"], seen["mode"]) == ("val_loss_train", "min")


def test_weight_decay_groups_by_parameter_name(data):
    cfg = RunConfig(conv="gcnii", num_layers=3, hidden_channels=8, weight_decay=5e-4,
                    weight_decay_groups={"convs": 0.01}, act="prelu", prelu_mode="layer",
                    negative_slope=0.25)  # fmt: skip
    model = build_model(cfg, data.num_features, 2)
    groups = _param_groups(cfg)(model)
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert len(decay) == len(names)
    for name, p in names.items():
        if name.startswith("acts."):
            assert decay[id(p)] == 0.0, name  # PReLU slopes: none
        elif name.startswith("convs."):
            assert decay[id(p)] == 0.01, name
        else:
            assert decay[id(p)] == 5e-4, name
    # a huge decay on the convolutions alone shrinks them, not the linear maps
    from gnnleaky.tasks import NodeClassification
    from gnnleaky.train import fit

    big = RunConfig(**{**cfg.to_dict(), "weight_decay_groups": {"convs": 50.0}})
    norms = {}
    for name, run in (("big", big), ("free", cfg)):
        model = build_model(run, data.num_features, 2)
        fit(model, NodeClassification(data), epochs=100, restore_best=False,
            param_groups=_param_groups(run))  # fmt: skip
        norms[name] = (model.convs[0].weight1.norm().item(), model.lins[0].weight.norm().item())
    assert norms["big"][0] < 0.5 * norms["free"][0]
    assert norms["big"][1] > 0.5 * norms["free"][1]
    assert stack_reason(RunConfig(weight_decay_groups={"convs": 0.01})) is not None


def test_fan_out_uniform_init_of_the_convolutions():
    cfg = RunConfig(num_layers=3, hidden_channels=64, init="fan_out_uniform", seed=3)
    model = build_model(cfg, 500, 7)
    for conv in model.convs:
        bound = 1 / math.sqrt(conv.out_channels)
        for p in (conv.lin.weight, conv.bias):
            assert p.abs().max() <= bound
            assert p.abs().max() > 0.9 * bound  # spread over the whole interval
    assert build_model(cfg, 500, 7).state_dict().keys() == model.state_dict().keys()
    torch.testing.assert_close(build_model(cfg, 500, 7).convs[0].bias, model.convs[0].bias)
    gcnii = build_model(RunConfig(conv="gcnii", num_layers=2, hidden_channels=16,
                                  init="fan_out_uniform"), 5, 2)  # fmt: skip
    assert gcnii.convs[0].weight1.abs().max() <= 0.25


def test_normalize_features_divides_rows_by_their_sums():
    run = RunConfig(dataset="csbm", dataset_params={**CSBM, "normalize_features": True})
    x = load_data(run).x
    torch.testing.assert_close(x.sum(1), torch.ones(x.size(0)))
    assert (x >= 0).all()
    raw = load_data(RunConfig(dataset="csbm", dataset_params=CSBM)).x
    assert (raw < 0).any()  # csbm's features are signed: shifted first


# -- a user's own model -----------------------------------------------------------------------
class TinyGNN(BasicGNN):
    """A user's own PyG-style model (PyG's BasicGNN with GraphConv layers), not a gnnleaky
    model."""

    supports_edge_weight = True
    supports_edge_attr = False

    def init_conv(self, in_channels, out_channels, **kwargs):
        return GraphConv(in_channels, out_channels, **kwargs)


def tiny_model(cfg, in_channels, out_channels):
    return TinyGNN(in_channels, cfg.hidden_channels, 2, out_channels)


def not_a_module(cfg, in_channels, out_channels):
    return "a string"


def test_custom_factory_sweep_runs_stores_and_reports(tmp_path, capsys):
    cfg = _sweep(model="tests.bench.test_remedies:tiny_model", seeds=[0, 1],
                 metrics=["dirichlet"], epochs=5)  # fmt: skip
    path = tmp_path / "custom.yaml"
    path.write_text(cfg.to_yaml())
    store = tmp_path / "custom.sqlite"
    assert main(["sweep", str(path), "--out", str(store), "--no-progress"]) == 0
    res = load(store)
    assert len(res.runs) == 2 and set(res.runs.status) == {"ok"}
    assert res.runs.config.map(lambda c: c["model"]).eq(cfg.model).all()
    # per-layer metrics from the probe: two GraphConv layers
    assert set(res.layers.layer) == {0, 1} and res.layers.value.notna().all()
    assert main(["report", str(store), "--out", str(tmp_path / "rep")]) == 0
    report = (tmp_path / "rep" / "summary.md").read_text()
    assert "csbm" in report


def test_run_sweep_with_model_fn(tmp_path):
    store = tmp_path / "fn.sqlite"
    summary = run_sweep(_sweep(seeds=[0]), store, model_fn=tiny_model)
    assert summary.trained == 1 and summary.failed == 0
    res = load(store)
    assert res.runs.config.iloc[0]["model"] == "tests.bench.test_remedies:tiny_model"
    with pytest.raises(ValueError, match="backend='local' only"):
        run_sweep(_sweep(), tmp_path / "x.sqlite", model_fn=tiny_model, backend="processes")


def test_a_factory_that_returns_no_module_is_refused_before_any_run(tmp_path):
    store = tmp_path / "bad.sqlite"
    with pytest.raises(ConfigError, match=r"returned str, not a torch\.nn\.Module"):
        run_sweep(_sweep(model="tests.bench.test_remedies:not_a_module"), store)
    with pytest.raises(ConfigError, match=r"returned str, not a torch\.nn\.Module"):
        run_sweep(_sweep(), store, model_fn=not_a_module)
    assert not store.exists()


# -- the published-table presets --------------------------------------------------------------
def test_gcnii_preset_expresses_the_recipe():
    runs = load_config("gcnii").expand()
    assert len(runs) >= 5 and {r.seed for r in runs} == set(range(len(runs)))
    r = runs[0]
    assert (r.dataset, r.conv, r.num_layers, r.hidden_channels, r.dropout, r.lr) == (
        "cora", "gcnii", 64, 64, 0.6, 0.01)  # fmt: skip
    assert dict(r.weight_decay_groups) == {"convs": 0.01, "lins": 5e-4}
    assert (r.selection, r.patience, r.epochs, r.init) == ("val_loss", 100, 1500, "fan_out_uniform")
    assert dict(r.dataset_params) == {"normalize_features": True}
    model = build_model(r, 1433, 7)
    assert (model.alpha, model.theta) == (0.1, 0.5)


def test_dropedge_preset_expresses_the_recipe_per_dataset():
    runs = load_config("dropedge-table").expand()
    cells = {(r.dataset, r.num_layers) for r in runs}
    assert cells == {(d, n) for d in ("cora", "citeseer") for n in (2, 4, 8, 16, 32, 64)}
    assert len(runs) == len(cells) * 5
    per = {r.dataset: (r.lr, r.weight_decay, r.dropout) for r in runs}
    assert per == {"cora": (0.007, 1e-5, 0.8), "citeseer": (0.01, 5e-4, 0.3)}
    r = runs[0]
    assert (r.hidden_channels, r.epochs, r.patience, r.selection, r.init) == (
        128, 400, None, "val_loss_train", "fan_out_uniform")  # fmt: skip
    assert stack_reason(r) is None  # seeds of a cell train stacked on the engine


def test_cli_flags_override_the_remedy_axes(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(_sweep().to_yaml())
    argv = ["sweep", str(path), "--dry-run", "--norms", "none,pairnorm", "--residual",
            "false,initial", "--jk", "none,max", "--dropedge", "0,0.2",
            "--out", str(tmp_path / "r.sqlite")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("remedies: 16 runs; 0 stored already, 16 to train in 16 groups")
    assert "norm=pairnorm residual=initial jk=max dropedge=0.2" in out
    assert main(["sweep", str(path), "--dry-run", "--residual", "sometimes"]) == 2
    assert "expected false, true or initial, got 'sometimes'" in capsys.readouterr().err


def test_cli_dataset_override_keeps_the_presets_entry(capsys, tmp_path):
    assert main(["sweep", "dropedge-table", "--datasets", "citeseer", "--depths", "2",
                 "--dry-run", "--out", str(tmp_path / "d.sqlite")]) == 0  # fmt: skip
    assert "citeseer   gcn depth   2: 5 runs, stacked" in capsys.readouterr().out
    cfg = load_config("dropedge-table")
    entry = next(e for e in cfg.to_dict()["datasets"] if e["name"] == "citeseer")
    assert entry["settings"]["lr"] == 0.01
