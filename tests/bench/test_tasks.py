"""The ``task:`` key of a sweep: validation before any run, run keys, dispatch, the store."""

from __future__ import annotations

import math
import sqlite3

import pytest
import torch

from gnnleaky.bench.config import ConfigError, RunConfig, SweepConfig, load_config
from gnnleaky.bench.report import make_report, scalar_table
from gnnleaky.bench.store import ResultsStore, load
from gnnleaky.bench.sweep import run_sweep
from gnnleaky.bench.tasks import TASKS, task_params

CSBM = {"num_nodes": 120, "num_classes": 2, "avg_degree": 8, "homophily": 0.8, "seed": 0}


def _cfg(**kw):
    base = dict(datasets=[{"name": "csbm", "params": CSBM}], depths=[2], activations=["relu"])
    return SweepConfig(**{**base, **kw})


def test_unknown_task_is_refused_naming_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"task must be one of \[.*'link_prediction'.*\]"):
        _cfg(task="link_predict")
    with pytest.raises(ConfigError, match="task must be a string"):
        _cfg(task=3)


def test_tasks_without_a_runner_cannot_be_named():
    # Tasks are usable only once registered with a runner: no placeholder that pretends.
    for name in TASKS:
        assert TASKS[name].runner() is not None
    with pytest.raises(ConfigError, match="task must be one of"):
        _cfg(task="reinforcement")


def test_task_parameter_of_the_wrong_type_is_refused():
    with pytest.raises(ConfigError, match=r"task_params.val_ratio of .* must be a finite"):
        _cfg(task="link_prediction", task_params={"val_ratio": "0.1"})
    with pytest.raises(ConfigError, match=r"task_params.out_channels .* must be an integer"):
        _cfg(task="link_prediction", task_params={"out_channels": 16.5})
    with pytest.raises(ConfigError, match=r"task_params.out_channels .* must be an integer"):
        _cfg(task="link_prediction", task_params={"out_channels": True})
    with pytest.raises(ConfigError, match=r"task_params.tau of task 'contrastive' must be a fin"):
        _cfg(task="contrastive", task_params={"tau": "0.4"})
    with pytest.raises(ConfigError, match=r"task_params.hard_negatives .* must be an integer"):
        _cfg(task="contrastive", task_params={"hard_negatives": [5]})


def test_unknown_or_out_of_range_task_parameter_is_refused():
    with pytest.raises(ConfigError, match=r"task_params.tau: unknown parameter .*allowed: \["):
        _cfg(task="link_prediction", task_params={"tau": 0.5})
    with pytest.raises(ConfigError, match="takes no parameters"):
        _cfg(task_params={"tau": 0.5})  # node classification
    with pytest.raises(ConfigError, match=r"val_ratio \+ test_ratio must be < 1"):
        _cfg(task="link_prediction", task_params={"val_ratio": 0.5, "test_ratio": 0.5})
    with pytest.raises(ConfigError, match="tau must be > 0"):
        _cfg(task="contrastive", task_params={"tau": 0.0})
    with pytest.raises(ConfigError, match=r"drop_edge_2 must be in \[0.0, 1.0\)"):
        _cfg(task="contrastive", task_params={"drop_edge_2": 1.0})
    with pytest.raises(ConfigError, match="out_channels must be > 0"):
        _cfg(task="link_prediction", task_params={"out_channels": 0})
    with pytest.raises(ConfigError, match="task_params must be a mapping"):
        _cfg(task="link_prediction", task_params=[0.4])


def test_bad_task_in_yaml_fails_on_load(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("task: link_prediction\ntask_params: {val_ratio: fast}\n")
    with pytest.raises(ConfigError, match=r"task_params\.val_ratio"):
        load_config(path)


def test_defaults_keep_run_keys_and_tasks_change_them():
    assert RunConfig().key == "feee698a37c0d2e0"
    assert RunConfig(task="node_classification", task_params={}).key == "feee698a37c0d2e0"
    link = RunConfig(task="link_prediction")
    assert link.key != RunConfig().key
    assert link.key != RunConfig(task="link_prediction", task_params={"val_ratio": 0.1}).key
    assert link.group_key != RunConfig().group_key
    assert RunConfig(**link.to_dict()).key == link.key


def test_expand_and_yaml_round_trip_keep_the_task():
    cfg = _cfg(task="link_prediction", task_params={"out_channels": 8, "val_ratio": 0})
    [run] = cfg.expand()
    assert run.task == "link_prediction"
    assert dict(run.task_params) == {"out_channels": 8, "val_ratio": 0.0}  # int -> float
    again = load_config(dict(__import__("yaml").safe_load(cfg.to_yaml())))
    assert again.expand()[0].key == run.key


def test_task_params_fills_defaults():
    p = task_params("link_prediction", {"val_ratio": 0.2})
    assert p == {"val_ratio": 0.2, "test_ratio": 0.1, "out_channels": 16}


def test_link_prediction_sweep_stores_scalars_and_resumes(tmp_path):
    cfg = _cfg(
        task="link_prediction",
        depths=[1, 2],
        seeds=[0, 1],
        epochs=5,
        patience=None,
        hidden_channels=8,
        metrics=["dirichlet"],
        task_params={"out_channels": 4},
    )
    path = tmp_path / "r.sqlite"
    first = run_sweep(cfg, path)
    assert (first.trained, first.failed) == (4, 0)
    again = run_sweep(cfg, path)
    assert (again.skipped, again.trained) == (4, 0)
    res = load(path)
    assert set(res.runs.metric) == {"roc_auc"}
    assert set(res.scalars.name) == {"test_auc", "test_ap", "val_ap"}
    # the stored scalar test_auc is the run's test score
    merged = res.scalars[res.scalars.name == "test_auc"].merge(
        res.runs, left_on="run_key", right_on="key"
    )
    assert len(merged) == 4
    assert all(math.isclose(a, b) for a, b in zip(merged.value, merged.test_score))
    assert {"init", "best"} <= set(res.layers["when"])

    paths = make_report(path, tmp_path / "report")
    names = {p.name for p in paths}
    assert {
        "link_prediction_test_auc_csbm_gcn.png",
        "link_prediction_test_ap_csbm_gcn.png",
    } <= names
    text = (tmp_path / "report" / "summary.md").read_text()
    assert "## link_prediction: test average precision (`test_ap`" in text
    table = scalar_table(res, "test_ap")
    assert sorted(table.num_layers) == [1, 2] and set(table.n) == {2}


def test_a_store_without_the_scalars_table_is_read_and_upgraded(tmp_path):
    path = tmp_path / "old.sqlite"
    ResultsStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE scalars")
    assert load(path).scalars.empty  # read-only: nothing created
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "scalars" not in names
    ResultsStore(path).close()  # opened for writing: the table is added
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "scalars" in names


def test_contrastive_sweep_stores_accuracies_and_gradient_shares(tmp_path):
    cfg = _cfg(
        task="contrastive",
        datasets=[{"name": "csbm", "params": {**CSBM, "num_nodes": 60}}],
        activations=["relu", "leaky_relu"],
        alphas=[0.2],
        epochs=3,
        hidden_channels=8,
        metrics=[],
        patience=None,
        task_params={"out_channels": 4, "proj_channels": 4, "hard_negatives": 3},
    )
    path = tmp_path / "c.sqlite"
    assert run_sweep(cfg, path).failed == 0
    res = load(path)
    assert (res.runs.best_epoch == 3).all()  # all epochs, the last one kept
    got = res.scalars.pivot(index="run_key", columns="name", values="value")
    assert {"acc_random", "acc_public", "hard_grad_share_first", "hard_grad_share_l1"} <= set(
        got.columns
    )
    assert ((got.hard_grad_share_first > 0) & (got.hard_grad_share_first <= 1)).all()
    runs = res.runs.set_index("key")
    assert (runs.loc[got.index, "test_score"] == got.acc_random).all()
    names = {p.name for p in make_report(path, tmp_path / "rep")}
    assert "contrastive_hard_grad_share_first_csbm_gcn.png" in names


OTHER_VALUES = {
    "norms": ["batch_norm"],
    "residual": [True],
    "jk": ["max"],
    "dropedge": [0.3],
    "init": "fan_out_uniform",
    "model": "tests.bench.test_tasks:_factory",
    "metrics": ["dirichlet"],
    "weight_decay_groups": {"convs": 0.01},
    "selection": "val_loss",
    "patience": 7,
    "splits": [0, 1],
    "train_per_class": [5],
}


def _factory(cfg, in_channels, out_channels):
    return torch.nn.Linear(in_channels, out_channels)


@pytest.mark.parametrize("task", [t for t in TASKS if TASKS[t].fixed])
def test_a_setting_the_task_does_not_read_is_refused_not_ignored(task):
    """Every setting a task's runner does not read (TaskRunner.fixed) is refused with
    another value, at the sweep's level and in a dataset's settings, naming the key and
    the task; the value its runs have is accepted."""
    from gnnleaky.bench.config import DATASET_SETTINGS

    base = dict(task=task, **TASKS[task].fixed)
    _cfg(**base)  # the fixed values themselves pass
    for name in TASKS[task].fixed:
        with pytest.raises(ConfigError, match=rf"^{name}: task '{task}' does not read it"):
            _cfg(**{**base, name: OTHER_VALUES[name]})
        if name in DATASET_SETTINGS:
            entry = {"name": "csbm", "params": CSBM, "settings": {name: OTHER_VALUES[name]}}
            with pytest.raises(ConfigError, match=rf"datasets\[csbm\]\.settings\.{name}: task"):
                _cfg(**{**base, "datasets": [entry]})


def test_model_fn_is_refused_by_a_task_that_builds_its_own_model(tmp_path):
    cfg = _cfg(task="continual", **TASKS["continual"].fixed)
    with pytest.raises(ValueError, match="model: task 'continual' does not read it"):
        run_sweep(cfg, tmp_path / "s.sqlite", model_fn=_factory)
    assert not (tmp_path / "s.sqlite").exists()


def test_runs_of_other_tasks_are_planned_one_by_one():
    from gnnleaky.bench.sweep import plan

    node = _cfg(activations=["relu", "leaky_relu"], seeds=[0, 1])
    link = _cfg(task="link_prediction", activations=["relu", "leaky_relu"], seeds=[0, 1])
    assert [len(g) for g in plan(node)] == [4]
    assert [len(g) for g in plan(link)] == [1, 1, 1, 1]
