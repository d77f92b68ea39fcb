"""The sweep end to end: CLI sweep -> results store -> report, resume, bad configs."""

import pytest
import yaml

from gnnleaky.bench.config import load_config
from gnnleaky.bench.store import load
from gnnleaky.bench.sweep import plan, run_sweep, split_groups
from gnnleaky.cli import main
from tests.conftest import load_or_skip

TINY = {
    "name": "tiny",
    "datasets": [
        {
            "name": "csbm",
            "label": "csbm-h",
            "params": {
                "num_nodes": 200,
                "avg_degree": 6,
                "homophily": 0.9,
                "snr": 2.0,
                "num_features": 8,
            },
        }
    ],
    "depths": [2, 4],
    "activations": ["relu", "leaky_relu", "prelu_channel"],
    "alphas": [0.2],
    "seeds": [0, 1],
    "hidden_channels": 16,
    "epochs": 15,
    "patience": 10,
    "metrics": ["dirichlet", "rayleigh", "hf_ratio"],
}


@pytest.fixture
def tiny_yaml(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def test_cli_sweep_then_report(tiny_yaml, tmp_path, capsys):
    store = tmp_path / "r.sqlite"
    assert main(["sweep", str(tiny_yaml), "--out", str(store), "--no-progress"]) == 0
    # the sweep says where its time went; each phase once, in this order
    line = capsys.readouterr().out.strip().splitlines()[-1]
    phases = ["setup", "data", "compile", "train", "metrics", "store", "wall"]
    assert line.startswith("time: ") and all(line.count(f"{p} ") == 1 for p in phases)
    assert [line.index(f"{p} ") for p in phases] == sorted(line.index(f"{p} ") for p in phases)
    res = load(store)
    assert len(res.runs) == 2 * 3 * 2 and set(res.runs.status) == {"ok"}
    assert res.runs.key.is_unique
    # Every run has per-layer metrics at init and at the best epoch, both stages.
    per_run = res.layers.groupby("run_key").size()
    expected = {2: 2 * 2 * 3 * 2, 4: 4 * 2 * 3 * 2}
    for key, n in per_run.items():
        depth = int(res.runs.set_index("key").loc[key, "num_layers"])
        assert n == expected[depth]
    assert (res.layers.value.notna()).all()
    assert (res.runs.test_score.between(0, 1)).all()
    assert res.runs.git_sha.notna().all() or res.runs.versions.map(bool).all()
    prelu = res.runs[res.runs.act == "prelu"]
    assert all(len(s) == r.num_layers - 1 for s, r in zip(prelu.slopes, prelu.itertuples()))

    # Started again: nothing to train.
    capsys.readouterr()
    assert main(["sweep", str(tiny_yaml), "--out", str(store), "--no-progress"]) == 0
    assert "12 already stored, 0 trained" in capsys.readouterr().out
    assert len(load(store).runs) == 12

    out = tmp_path / "report"
    assert main(["report", str(store), "--out", str(out)]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "heatmap_csbm-h_gcn.png" in pngs
    assert "energy_csbm-h_gcn.png" in pngs and "hf_ratio_csbm-h_gcn.png" in pngs
    assert "slopes_csbm-h_gcn.png" in pngs
    summary = (out / "summary.md").read_text()
    assert "| depth | relu | leaky 0.2 | prelu_channel (init 0.25) |" in summary
    assert "±" in summary and "Paired tests against ReLU" in summary
    assert "depth_csbm-h_gcn.png" in pngs


def test_sweep_without_metrics_trains_only(tmp_path):
    """metrics: [] is a training-only sweep: runs stored, no per-layer records, a report
    without the per-layer plots."""
    cfg = dict(TINY, depths=[2], activations=["leaky_relu"], seeds=[0], metrics=[])
    path = tmp_path / "train-only.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert load_config(path).metrics == ()
    store = tmp_path / "r.sqlite"
    assert main(["sweep", str(path), "--out", str(store), "--no-progress"]) == 0
    res = load(store)
    assert len(res.runs) == 1 and set(res.runs.status) == {"ok"}
    assert res.layers.empty
    out = tmp_path / "report"
    assert main(["report", str(store), "--out", str(out)]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "heatmap_csbm-h_gcn.png" in pngs and not any(p.startswith("energy") for p in pngs)


def test_stacked_and_one_by_one_sweeps_store_the_same_numbers(tmp_path):
    cfg = load_config({**TINY, "depths": [3], "seeds": [0]})
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    run_sweep(cfg, a, stacked=True)
    run_sweep(cfg, b, stacked=False)
    ra, rb = load(a).runs.set_index("key"), load(b).runs.set_index("key")
    assert set(ra.index) == set(rb.index)
    cols = ["best_epoch", "epochs_run", "val_score", "test_score"]
    assert (ra.loc[rb.index, cols].values == rb[cols].values).all()


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"datasets": ["cora2"]}, "cora2"),
        ({"depths": [-1]}, "depths must be integers >= 1"),
        ({"activations": []}, "activations is empty"),
        ({"speed": 3}, "unknown config keys"),
    ],
)
def test_bad_config_fails_before_any_run(tmp_path, capsys, override, match):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TINY, **override}))
    store = tmp_path / "r.sqlite"
    assert main(["sweep", str(path), "--out", str(store)]) == 2
    assert match in capsys.readouterr().err
    assert not store.exists()


def test_missing_dataset_fails_before_any_run(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**TINY, "datasets": ["csbm", "cora"]}))
    store = tmp_path / "r.sqlite"
    rc = main(["sweep", str(path), "--out", str(store), "--data-root", str(tmp_path / "none")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cora" in err and "ind.cora.x" in err
    assert not store.exists()


def test_dry_run_and_plan_group_runs_by_shape(capsys, tiny_yaml):
    assert (
        main(["sweep", str(tiny_yaml), "--dry-run", "--out", str(tiny_yaml.parent / "r.sqlite")])
        == 0
    )
    assert "12 runs; 0 stored already, 12 to train in 2 groups" in capsys.readouterr().out
    groups = plan(load_config(tiny_yaml), max_group=4)
    assert [len(g) for g in groups] == [4, 2, 4, 2]
    assert all(len({r.group_key for r in g}) == 1 for g in groups)


def test_dry_run_counts_the_stored_runs_and_leaves_the_store_alone(capsys, tiny_yaml, tmp_path):
    store = tmp_path / "r.sqlite"
    argv = ["sweep", str(tiny_yaml), "--out", str(store), "--no-progress"]
    assert main([*argv, "--seeds", "0", "--depths", "2"]) == 0  # 3 of the 12 runs
    before = store.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "12 runs; 3 stored already, 9 to train in 2 groups" in out
    assert "depth   2: 3 runs" in out and "depth   4: 6 runs" in out
    assert store.read_bytes() == before


@pytest.mark.data
@pytest.mark.slow
def test_cora_relu_gcn_depth_collapse(tmp_path):
    """The literature's depth collapse: ~81% at 2 layers, far lower at 64 (ReLU GCN)."""
    load_or_skip("cora")
    cfg = load_config(
        {
            "name": "cora-depth",
            "datasets": ["cora"],
            "depths": [2, 64],
            "activations": ["relu"],
            "seeds": [0, 1],
            "hidden_channels": 64,
            "epochs": 200,
            "patience": 100,
            "metrics": ["dirichlet"],
        }
    )
    store = tmp_path / "c.sqlite"
    run_sweep(cfg, store)
    runs = load(store).runs
    acc = runs.groupby("num_layers").test_score.mean()
    assert acc[2] >= 0.79, acc
    assert acc[64] <= acc[2] - 0.3, acc


def test_split_groups_cuts_each_group_into_near_equal_chunks(tiny_yaml):
    groups = plan(load_config(tiny_yaml))
    for parts in (1, 2, 3, 100):
        chunks = split_groups(groups, parts)
        # in order, nothing lost or repeated, each chunk from one group
        assert [r.key for c in chunks for r in c] == [r.key for g in groups for r in g]
        assert all(len({r.group_key for r in c}) == 1 for c in chunks)
        for g in groups:
            sizes = [len(c) for c in chunks if c[0].group_key == g[0].group_key]
            assert len(sizes) == min(parts, len(g))
            assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("parts", [0, -2, 1.5, True])
def test_split_groups_refuses_bad_parts(parts, tiny_yaml):
    with pytest.raises(ValueError, match="parts must be a positive int"):
        split_groups(plan(load_config(tiny_yaml)), parts)


def test_quick_preset_shows_relu_collapsing_first(tmp_path):
    """The demo's message, on the preset itself: on the homophilous graph at 10 layers ReLU
    has stopped training while Leaky ReLU 0.5 still trains (docs/performance.md, "The first
    run", has the measured scan). Asserted on the mean paired difference, so that one seed
    flipping on another CPU's rounding does not fail it."""
    quick = load_config("quick")
    assert 10 in quick.depths and 0.5 in quick.alphas
    homophilous = [d for d in quick.to_dict()["datasets"] if d["label"] == "csbm-homophilous"]
    cfg = quick.replace(
        datasets=homophilous, depths=[10], activations=["relu", "leaky_relu"], alphas=[0.5],
        metrics=[],
    )  # fmt: skip
    store = tmp_path / "q.sqlite"
    run_sweep(cfg, store)
    runs = load(store).runs.pivot_table(index="seed", columns="act", values="test_score")
    assert len(runs) == 3
    gap = (runs["leaky_relu"] - runs["relu"]).mean()
    assert gap > 0.2, runs
    assert runs["leaky_relu"].min() > 0.9, runs
