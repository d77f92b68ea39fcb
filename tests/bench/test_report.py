"""The report's statistics: bootstrap intervals, paired tests against ReLU, their marks."""

import numpy as np
import pytest

from gnnleaky.bench.config import RunConfig
from gnnleaky.bench.report import bootstrap_ci, make_report, paired_tests, summary_table
from gnnleaky.bench.store import ResultsStore, load
from gnnleaky.bench.train import RunResult


def _result(cfg: RunConfig, score: float) -> RunResult:
    return RunResult(
        config=cfg,
        key=cfg.key,
        status="ok",
        reason=None,
        metric="accuracy",
        best_epoch=5,
        epochs_run=10,
        train_score=1.0,
        val_score=score,
        test_score=score,
        wall_time=0.1,
        group_size=1,
    )


def _synthetic_store(path, seeds=range(8)):
    """ReLU at two depths; Leaky ReLU 0.2 is ReLU + 10 points on every seed (plus a little
    noise) and Leaky ReLU 0.5 has ReLU's distribution with its own draws (a null)."""
    rng = np.random.default_rng(123)
    with ResultsStore(path) as store:
        for depth in (2, 8):
            for seed in seeds:
                base = 0.6 + 0.05 * rng.standard_normal()
                runs = {
                    ("relu", 0.0): base,
                    ("leaky_relu", 0.2): base + 0.10 + 0.01 * rng.standard_normal(),
                    ("leaky_relu", 0.5): 0.6 + 0.05 * rng.standard_normal(),
                }
                for (act, slope), score in runs.items():
                    cfg = RunConfig(
                        num_layers=depth, act=act, negative_slope=slope, seed=seed, metrics=()
                    )
                    store.add(_result(cfg, score), sweep="synthetic")
    return path


def test_known_effect_is_significant_and_known_null_is_not(tmp_path):
    runs = load(_synthetic_store(tmp_path / "s.sqlite")).runs
    tests = paired_tests(runs)
    assert len(tests) == 4  # 2 depths x 2 settings, ReLU is the baseline
    assert (tests.n_pairs == 8).all() and (tests.unpaired == 0).all()
    effect = tests[tests.setting == "leaky 0.2"]
    null = tests[tests.setting == "leaky 0.5"]
    assert effect.significant.all()
    assert np.allclose(effect.mean_diff, 0.10, atol=0.01)
    assert (effect.effect_size > 5).all()  # 10 points against ~1 point of noise
    assert not null.significant.any()
    assert (null.p_adjusted >= null.p_value).all()  # Holm never lowers a p-value
    # the Wilcoxon signed-rank test agrees on this data
    wil = paired_tests(runs, test="wilcoxon")
    assert wil[wil.setting == "leaky 0.2"].significant.all()
    assert not wil[wil.setting == "leaky 0.5"].significant.any()


def test_report_marks_the_null_cells_only(tmp_path):
    store = _synthetic_store(tmp_path / "s.sqlite")
    paths = make_report(store, tmp_path / "report")
    text = (tmp_path / "report" / "summary.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| 2 |")]
    summary_row = rows[0].split(" | ")  # depth 2: relu, leaky 0.2, leaky 0.5
    assert "ns" not in summary_row[1] and "ns" not in summary_row[2]
    assert summary_row[3].rstrip(" |").endswith("ns")
    assert "paired t-test" in text and "Holm" in text and "alpha = 0.05" in text
    assert any(p.name.startswith("depth_") for p in paths)
    for table in text.split("\n\n"):  # every Markdown table has as many columns as its header
        if table.startswith("|"):
            lines = table.splitlines()
            assert {line.count(" | ") for line in lines[2:]} == {lines[0].count(" | ")}
            assert lines[1].count("|") == lines[0].count("|")


def test_unpaired_runs_are_counted_not_paired(tmp_path):
    runs = load(_synthetic_store(tmp_path / "s.sqlite")).runs
    # drop the ReLU runs of seeds 0..4: the other settings keep 3 partners each
    drop = (runs.activation == "relu") & (runs.seed < 5)
    tests = paired_tests(runs[~drop])
    assert (tests.n_pairs == 3).all() and (tests.unpaired == 5).all()
    # a single partner: no test, and the report says so
    tests = paired_tests(runs[~((runs.activation == "relu") & (runs.seed < 7))])
    assert (tests.n_pairs == 1).all() and tests.p_value.isna().all()
    assert not tests.significant.any()


def test_constant_differences_have_definite_p_values():
    import pandas as pd

    rows = [
        dict(dataset_label="a", conv="gcn", num_layers=2, activation=act, negative_slope=s,
             seed=seed, split=0, status="ok", test_score=0.5 + 0.01 * seed + shift)
        for act, s, shift in (("relu", 0.0, 0.0), ("leaky_relu", 0.1, 0.0),
                              ("leaky_relu", 0.2, 0.1))
        for seed in range(4)
    ]  # fmt: skip
    t = paired_tests(pd.DataFrame(rows), correction="none").set_index("setting")
    assert t.loc["leaky 0.1", "p_value"] == 1.0 and not t.loc["leaky 0.1", "significant"]
    assert t.loc["leaky 0.2", "p_value"] == 0.0 and t.loc["leaky 0.2", "significant"]


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    widths = []
    for n in (5, 20, 80):
        z = rng.standard_normal(n)
        x = 0.7 + 0.05 * (z - z.mean()) / z.std(ddof=1)  # same mean and std at every n
        lo, hi = bootstrap_ci(x)
        assert lo < x.mean() < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    assert bootstrap_ci(x) == bootstrap_ci(x)  # seeded: reproducible
    assert np.isnan(bootstrap_ci([0.5])).all()
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_report_draws_a_cell_of_equal_scores(tmp_path):
    """Three seeds scoring 0.495 each: their mean is 0.49499999999999994 in floating point;
    the interval must still contain it and the report must draw its error bar."""
    path = tmp_path / "s.sqlite"
    with ResultsStore(path) as store:
        for seed in range(3):
            for act, slope, score in (("relu", 0.0, 0.5 + 0.01 * seed), ("leaky_relu", 0.5, 0.495)):
                cfg = RunConfig(num_layers=2, act=act, negative_slope=slope, seed=seed, metrics=())
                store.add(_result(cfg, score), sweep="synthetic")
    table = summary_table(load(path).runs).set_index("setting")
    cell = table.loc["leaky 0.5"]
    assert cell.ci_low <= cell["mean"] <= cell.ci_high
    assert make_report(path, tmp_path / "report")  # raised ValueError from matplotlib before


def test_summary_table_has_intervals(tmp_path):
    runs = load(_synthetic_store(tmp_path / "s.sqlite")).runs
    table = summary_table(runs)
    assert ((table.ci_low < table["mean"]) & (table["mean"] < table.ci_high)).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"test": "anova"}, "test must be one of"),
        ({"correction": "bonferroni"}, "correction must be one of"),
        ({"alpha": 1.5}, "alpha must be in"),
    ],
)
def test_paired_tests_refuse_bad_arguments(kwargs, match, tmp_path):
    runs = load(_synthetic_store(tmp_path / "s.sqlite", seeds=range(2))).runs
    with pytest.raises(ValueError, match=match):
        paired_tests(runs, **kwargs)


def test_scaled_relu_settings_are_columns_not_variants(tmp_path):
    """Runs that differ in the positive slope beta are settings of their own (columns
    beside ReLU, each tested against it), never a variant that would split ReLU off."""
    path = tmp_path / "s.sqlite"
    with ResultsStore(path) as store:
        for seed in range(4):
            for act, beta, score in (("relu", None, 0.6), ("scaled_relu", 1.5, 0.62),
                                     ("scaled_relu", 2.0, 0.7)):  # fmt: skip
                cfg = RunConfig(act=act, positive_slope=beta, seed=seed, metrics=())
                store.add(_result(cfg, score + 0.01 * seed + 0.003 * (seed % 2) * (beta or 0)))
    runs = load(path).runs
    table = summary_table(runs)
    assert set(table.variant) == {""}
    assert set(table.setting) == {"relu", "scaled_relu β=1.5", "scaled_relu β=2"}
    tests = paired_tests(runs).set_index("setting")
    assert tests.loc["scaled_relu β=2", "n_pairs"] == 4
    assert tests.loc["scaled_relu β=2", "mean_diff"] > tests.loc["scaled_relu β=1.5", "mean_diff"]
    make_report(path, tmp_path / "report")
    text = (tmp_path / "report" / "summary.md").read_text()
    assert "| depth | relu | scaled_relu β=1.5 | scaled_relu β=2 |" in text
