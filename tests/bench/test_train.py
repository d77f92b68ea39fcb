import math

import pytest
import torch

from gnnleaky.bench.config import RunConfig
from gnnleaky.bench.train import (
    RunResult,
    default_max_group,
    stage_records,
    train_group,
    train_run,
)
from gnnleaky.datasets import load
from tests.conftest import load_or_skip

KINDS = [
    {"act": "relu"},
    {"act": "leaky_relu", "negative_slope": 0.1},
    {"act": "prelu", "negative_slope": 0.25, "prelu_mode": "layer"},
    {"act": "prelu", "negative_slope": 0.25, "prelu_mode": "channel", "prelu_bounds": (0.0, 1.0)},
]


@pytest.fixture(scope="module")
def data():
    return load("csbm", num_nodes=120, avg_degree=6, num_features=12, seed=0)


def _cfgs(kinds=KINDS, seeds=(0, 1), **kw):
    base = {
        "num_layers": 3,
        "hidden_channels": 16,
        "epochs": 40,
        "patience": 10,
        "dropout": 0.0,
        "metrics": ("dirichlet", "rayleigh", "hf_ratio"),
    }
    base.update(kw)
    return [RunConfig(seed=s, **{**base, **k}) for k in kinds for s in seeds]


def _assert_same(a: RunResult, b: RunResult, tol=1e-5):
    assert (a.key, a.status, a.reason) == (b.key, b.status, b.reason)
    assert a.best_epoch == b.best_epoch and a.epochs_run == b.epochs_run
    for s in ("train_score", "val_score", "test_score"):
        x, y = getattr(a, s), getattr(b, s)
        assert (math.isnan(x) and math.isnan(y)) or abs(x - y) <= tol
    assert a.slopes.keys() == b.slopes.keys()
    for k in a.slopes:
        assert max(abs(u - v) for u, v in zip(a.slopes[k], b.slopes[k])) <= tol
    assert len(a.curve) == len(b.curve)
    for c, d in zip(a.curve, b.curve):
        assert c["epoch"] == d["epoch"]
        assert abs(c["train_loss"] - d["train_loss"]) <= tol * (1 + abs(d["train_loss"]))
    assert [(r["layer"], r["stage"], r["metric"], r["when"]) for r in a.layers] == [
        (r["layer"], r["stage"], r["metric"], r["when"]) for r in b.layers
    ]
    for r, s in zip(a.layers, b.layers):
        assert math.isclose(r["value"], s["value"], rel_tol=1e-4, abs_tol=1e-6)


def test_stacked_equals_one_by_one(data):
    """The issue's test: same seeds, dropout off -> same curves, best epochs, slopes."""
    cfgs = _cfgs()
    stacked = train_group(data, cfgs, stacked=True)
    alone = train_group(data, cfgs, stacked=False)
    assert [r.group_size for r in stacked] == [len(cfgs)] * len(cfgs)
    assert [r.group_size for r in alone] == [1] * len(cfgs)
    for a, b in zip(stacked, alone):
        _assert_same(a, b)
    # early stopping acted per model: not every run stopped at the same epoch
    assert len({r.epochs_run for r in stacked}) > 1


def test_stacked_equals_one_by_one_with_dropout(data):
    """Each run draws its masks from its own generator, stacked or not."""
    cfgs = _cfgs(KINDS[:2], dropout=0.5, epochs=15, metrics=())
    for a, b in zip(train_group(data, cfgs), train_group(data, cfgs, stacked=False)):
        _assert_same(a, b)


def test_fast_path_groups_train_with_torch_on_one_thread(data, monkeypatch):
    """A stacked group on the fast path runs its epochs inside model_threads (torch's ops
    on one thread, the models on torch's threads); a single model off the fast path keeps
    torch's threads."""
    from gnnleaky.engine import fast as _fast

    seen = []
    opt_step = torch.optim.Adam.step

    def step(self, *a, **kw):
        seen.append(torch.get_num_threads())
        return opt_step(self, *a, **kw)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    prev = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cfgs = _cfgs(KINDS[:2], seeds=(0,), epochs=3, patience=None, metrics=())
        train_group(data, cfgs)
        assert seen == [1] * 3
        assert torch.get_num_threads() == 2
        seen.clear()
        monkeypatch.setattr(_fast, "available", lambda: False)
        train_group(data, cfgs)
        assert seen == [2] * 3
    finally:
        torch.set_num_threads(prev)


def test_early_stopping_and_best_epoch_bookkeeping(data):
    cfgs = _cfgs(KINDS[:2], seeds=(0, 1, 2), epochs=60, patience=5, metrics=())
    for r in train_group(data, cfgs):
        assert r.status == "ok"
        assert len(r.curve) == r.epochs_run
        assert [c["epoch"] for c in r.curve] == list(range(1, r.epochs_run + 1))
        vals = [c["val_score"] for c in r.curve]
        assert r.best_epoch == vals.index(max(vals)) + 1  # earliest best epoch
        assert r.val_score == max(vals)
        assert r.test_score == r.curve[r.best_epoch - 1]["test_score"]
        assert r.epochs_run == 60 or r.epochs_run - r.best_epoch == 5


def test_divergent_run_fails_alone(data):
    """A depth-64 Leaky ReLU with slope 30 overflows; its group-mates are unaffected."""
    good = _cfgs(KINDS[:2], seeds=(0,), num_layers=64, epochs=8, metrics=("dirichlet",))
    bad = RunConfig(**{**good[1].to_dict(), "negative_slope": 30.0})
    results = train_group(data, [good[0], bad, good[1]])
    failed = results[1]
    assert failed.status == "failed" and "non-finite" in failed.reason
    assert failed.best_epoch == 0 and math.isnan(failed.test_score)
    assert any(r["when"] == "init" for r in failed.layers)
    without = train_group(data, good)
    for a, b in zip([results[0], results[2]], without):
        assert a.status == "ok"
        _assert_same(a, b)


def test_layer_records_and_slopes(data):
    cfgs = _cfgs(KINDS, seeds=(0,), epochs=5)
    res = train_group(data, cfgs)
    n_metrics = len(cfgs[0].metrics)
    for r, cfg in zip(res, cfgs):
        assert len(r.layers) == 2 * 2 * cfg.num_layers * n_metrics
        assert {x["layer"] for x in r.layers} == set(range(cfg.num_layers))
        last = {
            (x["stage"], x["metric"], x["when"]): x["value"]
            for x in r.layers
            if x["layer"] == cfg.num_layers - 1
        }
        for m in cfg.metrics:  # the output layer has no activation: pre == post
            assert last[("pre", m, "best")] == last[("post", m, "best")]
        assert list(r.slopes) == [f"acts.{i}" for i in range(cfg.num_layers - 1)]
    assert res[0].slopes["acts.0"] == [0.0]
    assert res[1].slopes["acts.0"] == pytest.approx([0.1])
    assert len(res[3].slopes["acts.1"]) == 16
    assert all(0.0 <= v <= 1.0 for v in res[3].slopes["acts.1"])


def test_stage_records_tag_layer_records_per_model(data):
    """The records a run stores at a stage are layer_records' values, tagged with the
    stage; one list per model of a stack; none without metrics."""
    from gnnleaky.engine import StackedGNN
    from gnnleaky.nn import GCN
    from gnnleaky.spectral import layer_records

    cfg = RunConfig(num_layers=2, metrics=("dirichlet", "norm"))
    torch.manual_seed(0)
    models = [GCN(data.num_features, 8, 2, 3) for _ in range(2)]
    for model in models:
        [got] = stage_records(model, data.x, data.edge_index, cfg, "best", None)
        [want] = layer_records(model, data.x, data.edge_index, ["dirichlet", "norm"])
        assert got == [{**r, "when": "best"} for r in want]
        assert len(got) == 2 * 2 * 2  # layers x stages x metrics
    stack = StackedGNN.from_models(models)
    per_model = stage_records(stack, data.x, data.edge_index, cfg, "init", None)
    assert len(per_model) == 2 and all(r["when"] == "init" for recs in per_model for r in recs)
    none = RunConfig(num_layers=2, metrics=())
    assert stage_records(stack, data.x, data.edge_index, none, "init", None) == [[], []]


def test_split_column_and_known_scores(data):
    """With split 1's validation set made equal to its training set, val == train score."""
    d = data.clone()
    d.val_mask = d.val_mask.clone()
    d.val_mask[:, 1] = d.train_mask[:, 1]
    r = train_run(d, _cfgs(KINDS[:1], seeds=(0,), split=1, epochs=5, metrics=())[0])
    assert all(c["val_score"] == c["train_score"] for c in r.curve)
    with pytest.raises(ValueError, match="split"):
        train_run(d, _cfgs(KINDS[:1], seeds=(0,), split=10, metrics=())[0])


def test_roc_auc_metric_and_fallback_convs(data):
    d = data.clone()
    d.metric = "roc_auc"  # an unregistered dataset name falls back to data.metric
    cfgs = _cfgs(KINDS[:2], seeds=(0,), dataset="custom", epochs=5, metrics=())
    res = train_group(d, cfgs)
    assert all(r.metric == "roc_auc" and 0.0 <= r.test_score <= 1.0 for r in res)
    sage = _cfgs(KINDS[:2], seeds=(0,), conv="sage", epochs=5, metrics=("dirichlet",))
    res = train_group(data, sage)
    assert [(r.status, r.group_size) for r in res] == [("ok", 1), ("ok", 1)]


def test_chunking_determinism_and_rng(data):
    cfgs = _cfgs(KINDS[:3], seeds=(0,), epochs=8, metrics=())
    state = torch.get_rng_state()
    whole = train_group(data, cfgs)
    assert torch.equal(torch.get_rng_state(), state)
    chunked = train_group(data, cfgs, max_group=2)
    assert [r.group_size for r in chunked] == [2, 2, 1]
    for a, b in zip(whole, chunked):
        _assert_same(a, b)
    again = train_group(data, cfgs)
    assert [r.curve for r in again] == [r.curve for r in whole]  # bit-identical


def test_bad_groups_raise(data):
    a, b = _cfgs(KINDS[:1], seeds=(0,))[0], _cfgs(KINDS[:1], seeds=(0,), num_layers=2)[0]
    with pytest.raises(ValueError, match="group_key"):
        train_group(data, [a, b])
    with pytest.raises(ValueError, match="at least one"):
        train_group(data, [])
    with pytest.raises(ValueError, match="max_group"):
        train_group(data, [a], max_group=0)


def test_default_max_group_follows_memory_budget():
    small = RunConfig(num_layers=2, hidden_channels=64)
    deep = RunConfig(num_layers=64, hidden_channels=64)
    assert default_max_group(deep, 2708) == 12  # Cora, 64 layers: 12 models in 2 GiB
    assert default_max_group(small, 2708) > default_max_group(deep, 2708)
    assert default_max_group(deep, 10**8) == 1


@pytest.mark.data
def test_cora_stacked_equals_one_by_one():
    cora = load_or_skip("cora")
    cfgs = _cfgs(
        KINDS[1:3],
        seeds=(0,),
        num_layers=2,
        hidden_channels=32,
        epochs=20,
        metrics=("dirichlet",),
        dataset="cora",
    )
    for a, b in zip(train_group(cora, cfgs), train_group(cora, cfgs, stacked=False)):
        _assert_same(a, b)


def test_activations_the_engine_cannot_compute_train_one_by_one(data):
    """A scaled ReLU or ELU in a group of stackable runs trains alone (the engine refuses
    it rather than computing a ReLU); the other runs stay stacked; results keep order."""
    from gnnleaky.engine import StackedGNN
    from gnnleaky.engine.stacked import check_stackable
    from gnnleaky.nn import LeakyGNN

    kinds = [
        {"act": "relu"},
        {"act": "scaled_relu", "positive_slope": 2.0},
        {"act": "leaky_relu", "negative_slope": 0.1},
        {"act": "scaled_leaky_relu", "positive_slope": 1.5, "negative_slope": 0.1},
        {"act": "elu"},
    ]
    cfgs = _cfgs(kinds, seeds=(0,), epochs=8, metrics=())
    results = train_group(data, cfgs)
    assert [r.key for r in results] == [c.key for c in cfgs]
    assert [r.group_size for r in results] == [2, 1, 2, 1, 1]
    assert all(r.status == "ok" for r in results)
    for cfg, res in zip(cfgs, results):
        if res.group_size == 1:
            _assert_same(res, train_run(data, cfg))
    model = LeakyGNN(12, 16, 3, 2, act="scaled_relu", act_kwargs={"positive_slope": 2.0})
    with pytest.raises(ValueError, match="got ScaledLeakyReLU"):
        check_stackable(model)
    with pytest.raises(ValueError, match="got ScaledLeakyReLU"):
        StackedGNN.from_models([model])


def test_label_rate_runs_train_on_their_own_split(data):
    cfgs = _cfgs(KINDS[:1], seeds=(0,), epochs=5, metrics=())
    base = cfgs[0]
    a = train_run(data, RunConfig(**{**base.to_dict(), "train_per_class": 5, "split": 0}))
    b = train_run(data, RunConfig(**{**base.to_dict(), "train_per_class": 5, "split": 0}))
    c = train_run(data, RunConfig(**{**base.to_dict(), "train_per_class": 5, "split": 1}))
    assert a.status == "ok" and a.train_score == b.train_score and a.curve == b.curve
    assert a.curve != c.curve  # another seed draws another split
    # 10 training nodes (5 per class): train accuracy is a multiple of 1/10
    assert abs(a.train_score * 10 - round(a.train_score * 10)) < 1e-6
