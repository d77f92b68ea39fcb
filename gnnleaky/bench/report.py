"""Plots and summary tables from a results store.

:func:`make_report` writes, per dataset: a heatmap of mean test score over depth x
activation/slope, per-layer Dirichlet energy curves (log scale) coloured by slope, the
high-frequency ratio per layer, the learned PReLU slopes per layer, and a Markdown summary
with mean ± std tables. Runs of a task other than node classification (see
:mod:`gnnleaky.bench.tasks`) get the same tables and plots of their main score, and for
each claim their task names (a stored scalar, e.g. a gradient share) a table and a figure:
the scalar's mean ± std over seeds versus depth, one line per activation setting.

Statistics (:func:`summary_table`, :func:`paired_tests`): each cell gets its mean, std
and a 95% percentile bootstrap confidence interval of the mean over its runs
(:func:`bootstrap_ci`, seeded, so a report is reproducible); each activation setting is
compared with ReLU at the same depth (same dataset label, conv and variant) by a paired
test over the runs the two share a seed and split with (paired t-test by default,
Wilcoxon signed-rank on request), with the mean paired difference, Cohen's
:math:`d_z` and the p-value, Holm-corrected within each table; runs without a partner
are counted and left out of the test, never paired with another seed.

A table cell (and a plotted line) aggregates only runs that differ in seed and split. When
the store holds runs of one cell whose configs differ in anything else (a second sweep
with other epochs into the same store, two cSBM graphs under one label), the differing
keys are named and each configuration is shown apart as a *variant*, never averaged in.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnnleaky.bench.store import Results, load

__all__ = [
    "ALPHA",
    "bootstrap_ci",
    "column_label",
    "config_variants",
    "layer_table",
    "make_report",
    "paired_tests",
    "scalar_table",
    "summary_table",
]

log = logging.getLogger(__name__)

_KIND_ORDER = {
    "relu": 0,
    "leaky_relu": 1,
    "prelu_layer": 2,
    "prelu_channel": 3,
    "scaled_relu": 4,
    "scaled_leaky_relu": 5,
    "elu": 6,
    "gelu": 7,
    "tanh": 8,
    "identity": 9,
}
# Config keys that place a run in a table: its section, row and column.
_CELL_KEYS = (
    "dataset_label",
    "conv",
    "num_layers",
    "act",
    "prelu_mode",
    "negative_slope",
    "positive_slope",
)
# Config keys over which a cell aggregates.
_REPLICATE_KEYS = ("seed", "split")
_SECTION = ["dataset_label", "conv"]
_CELL = ["num_layers", "activation", "negative_slope", "positive_slope"]

#: Significance level of the report's paired tests (after the multiple-test correction).
ALPHA: float = 0.05
#: Resamples of the bootstrap confidence intervals.
BOOTSTRAP_RESAMPLES: int = 9999
#: Seed of the bootstrap resampling (the same report from the same store, always).
BOOTSTRAP_SEED: int = 0
_TESTS = ("ttest", "wilcoxon")
_CORRECTIONS = ("holm", "none")


def _flat(config: Any) -> dict[str, Any]:
    """A stored config with ``dataset_params`` spread into ``dataset_params.<name>`` keys."""
    if not isinstance(config, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "dataset_params" and isinstance(value, Mapping):
            out.update({f"dataset_params.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _positive_slopes(runs: pd.DataFrame) -> list[float]:
    """Each run's positive slope: a scaled ReLU's beta, 1 for every other activation."""
    configs = runs["config"] if "config" in runs else [{}] * len(runs)
    out = []
    for c in configs:
        beta = c.get("positive_slope") if isinstance(c, Mapping) else None
        out.append(1.0 if beta is None else float(beta))
    return out


def _with_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with its ``positive_slope`` column (see :func:`_positive_slopes`)."""
    if "positive_slope" in runs:
        return runs
    return runs.assign(positive_slope=_positive_slopes(runs))


def _variants(runs: pd.DataFrame) -> tuple[pd.Series, dict[tuple, list[str]]]:
    """Each run's variant label (see :func:`config_variants`) and, per table (dataset
    label, conv), the config keys that differ inside one of its cells."""
    runs = _with_cells(runs)
    flat = [_flat(c) for c in runs["config"]] if "config" in runs else [{}] * len(runs)
    keys = sorted(set().union(set(), *flat) - set(_CELL_KEYS) - set(_REPLICATE_KEYS))
    labels = pd.Series("", index=runs.index, dtype=object)
    if runs.empty or not keys:
        return labels, {}
    values = pd.DataFrame(
        [[_text(f.get(k)) for k in keys] for f in flat], index=runs.index, columns=keys
    )
    cells = [runs[c] for c in (*_SECTION, *_CELL)]
    split = (values.groupby(cells).nunique() > 1).groupby(level=[0, 1]).any()
    differing = {
        section: [k for k in keys if row[k]] for section, row in split.iterrows() if row.any()
    }
    for (label, conv), found in differing.items():
        mask = (runs.dataset_label == label) & (runs.conv == conv)
        labels.loc[mask] = [
            ", ".join(f"{k}={v}" for k, v in zip(found, row))
            for row in values.loc[mask, found].itertuples(index=False)
        ]
    return labels, differing


def config_variants(runs: pd.DataFrame) -> pd.Series:
    """Per run, the configuration it belongs to within its cell: ``""`` where every cell of
    its table (dataset label and conv) holds one configuration, else the values of the
    config keys that differ inside a cell, e.g. ``"epochs=3, hidden_channels=4"``.

    A cell is a dataset label, conv, depth and activation setting; its runs may differ
    in seed and split only, which are what it aggregates over.

    Example:
        >>> base = {"epochs": 200, "hidden_channels": 64, "seed": 0}
        >>> runs = pd.DataFrame({"dataset_label": ["a"] * 3, "conv": ["gcn"] * 3,
        ...     "num_layers": [2] * 3, "activation": ["relu"] * 3, "negative_slope": [0.0] * 3,
        ...     "config": [base, {**base, "seed": 1}, {**base, "epochs": 3}]})
        >>> config_variants(runs).tolist()
        ['epochs=200', 'epochs=200', 'epochs=3']
    """
    return _variants(runs)[0]


def _with_variants(runs: pd.DataFrame) -> pd.DataFrame:
    runs = _with_cells(runs)
    if "variant" in runs:
        return runs
    return runs.assign(variant=config_variants(runs))


def column_label(activation: str, negative_slope: float, positive_slope: float = 1.0) -> str:
    """Label of an activation setting: ``relu``, ``leaky 0.2``, ``prelu_layer (init 0.25)``,
    ``scaled_relu β=2``, ``scaled_leaky β=2 α=0.1``, ``elu``.

    Example:
        >>> column_label("leaky_relu", 0.2), column_label("scaled_leaky_relu", 0.1, 2.0)
        ('leaky 0.2', 'scaled_leaky β=2 α=0.1')
    """
    if activation == "leaky_relu":
        return f"leaky {negative_slope:g}"
    if activation == "scaled_relu":
        return f"scaled_relu β={positive_slope:g}"
    if activation == "scaled_leaky_relu":
        return f"scaled_leaky β={positive_slope:g} α={negative_slope:g}"
    if activation.startswith("prelu"):
        return f"{activation} (init {negative_slope:g})"
    return activation


def _setting_labels(df: pd.DataFrame) -> list[str]:
    return [
        column_label(a, s, p)
        for a, s, p in zip(df.activation, df.negative_slope, df.positive_slope)
    ]


def _label_order(runs: pd.DataFrame) -> list[str]:
    keys = _with_cells(runs)[["activation", "negative_slope", "positive_slope"]]
    keys = sorted(
        keys.drop_duplicates().itertuples(index=False),
        key=lambda r: (_KIND_ORDER.get(r.activation, 99), r.positive_slope, r.negative_slope),
    )
    return [column_label(r.activation, r.negative_slope, r.positive_slope) for r in keys]


def bootstrap_ci(
    values: Any,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    r"""Percentile bootstrap confidence interval of the mean of ``values``.

    ``n_resamples`` samples of the same size are drawn with replacement (a generator
    seeded with ``seed``: the same values give the same interval) and the interval is
    the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of their means
    (:func:`scipy.stats.bootstrap`, ``method="percentile"``). Non-finite values are
    dropped; fewer than two values give ``(nan, nan)`` (no spread to resample), values
    that are all equal give ``(v, v)``. With few runs (3 to 5 seeds) a bootstrap
    interval is narrower than the true one: read it as a spread, not as a guarantee.

    Example:
        >>> scores = [0.70, 0.72, 0.75, 0.71, 0.74]
        >>> lo, hi = bootstrap_ci(scores)
        >>> bool(lo < 0.724 < hi), bootstrap_ci(scores) == (lo, hi)
        (True, True)
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    x = np.asarray(values, dtype=float).reshape(-1)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return (float("nan"), float("nan"))
    if np.ptp(x) == 0:  # the mean as the table computes it (0.495 * 3 / 3 != 0.495)
        m = float(np.mean(x))
        return (m, m)
    res = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        **_rng_kwarg(stats.bootstrap, seed),
    )
    ci = res.confidence_interval
    return (float(ci.low), float(ci.high))


def _rng_kwarg(fn: Any, seed: int) -> dict[str, Any]:
    """scipy >= 1.15 takes ``rng``; earlier versions ``random_state``."""
    import inspect

    name = "rng" if "rng" in inspect.signature(fn).parameters else "random_state"
    return {name: np.random.default_rng(seed)}


def summary_table(runs: pd.DataFrame, score: str = "test_score") -> pd.DataFrame:
    """Mean, std, count and 95% bootstrap confidence interval of the mean
    (:func:`bootstrap_ci`, columns ``ci_low`` and ``ci_high``) of ``score`` over seeds
    (and splits) for each dataset label, conv, variant (see :func:`config_variants`),
    depth and setting.

    Failed runs are counted separately (column ``failed``) and left out of the mean; the
    std and the interval of a single run are NaN.

    Example:
        >>> runs = pd.DataFrame({"dataset_label": ["a"] * 3, "conv": ["gcn"] * 3,
        ...     "num_layers": [2] * 3, "activation": ["relu"] * 3, "negative_slope": [0.0] * 3,
        ...     "status": ["ok", "ok", "failed"], "test_score": [0.8, 0.6, None],
        ...     "metric": ["accuracy"] * 3})
        >>> summary_table(runs)[["mean", "std", "n", "failed"]].round(3).values.tolist()
        [[0.7, 0.141, 2.0, 1.0]]
    """
    df = _with_variants(runs).copy()
    df["setting"] = _setting_labels(df)
    df["ok"] = df.status == "ok"
    keys = ["dataset_label", "conv", "variant", "num_layers", "setting"]
    ok = df[df.ok]
    agg = ok.groupby(keys)[score].agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    ci = ok.groupby(keys)[score].agg(lambda v: bootstrap_ci(v.to_numpy()))
    agg["ci_low"] = [c[0] for c in ci.reindex(agg.index)]
    agg["ci_high"] = [c[1] for c in ci.reindex(agg.index)]
    failed = df[~df.ok].groupby(keys).size().rename("failed")
    out = agg.join(failed, how="outer").fillna({"failed": 0, "n": 0})
    return out.reset_index()


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaN entries are not tests and stay NaN)."""
    out = np.full_like(p, np.nan, dtype=float)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m:
        order = idx[np.argsort(p[idx], kind="stable")]
        adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out[order] = np.minimum(adj, 1.0)
    return out


def _paired_p(diff: np.ndarray, test: str) -> tuple[float, float]:
    """(statistic, two-sided p) of a paired test on the differences ``diff``."""
    from scipy import stats

    if np.ptp(diff) == 0:
        # no spread: no difference at all (p = 1), or the same non-zero difference on
        # every pair (the limit of an infinite statistic, p = 0)
        return (0.0, 1.0) if diff[0] == 0 else (math.copysign(math.inf, diff[0]), 0.0)
    if test == "ttest":
        res = stats.ttest_rel(diff, np.zeros_like(diff))
    else:
        res = stats.wilcoxon(diff)
    return float(res.statistic), float(res.pvalue)


def paired_tests(
    runs: pd.DataFrame,
    score: str = "test_score",
    *,
    baseline: str = "relu",
    test: str = "ttest",
    alpha: float = ALPHA,
    correction: str = "holm",
) -> pd.DataFrame:
    r"""Each activation setting against ``baseline`` (ReLU) at the same depth, paired
    over seeds.

    Within one table (dataset label, conv and variant, see :func:`config_variants`) and
    depth, a run of a setting is paired with the baseline run of the same seed and
    split (same initialisation stream, same training nodes); runs with no such partner
    are counted in ``unpaired`` and left out, never matched to another seed. On the
    differences :math:`d_i = s_i - s_i^{	ext{relu}}` of the ``n_pairs`` pairs:

    .. math::
        ar d = rac{1}{n}\sum_i d_i, \qquad
        d_z = rac{ar d}{\operatorname{sd}(d)}

    (Cohen's :math:`d_z`, the standardized mean paired difference) and the two-sided
    p-value of a paired t-test (``test="ttest"``, :func:`scipy.stats.ttest_rel`) or a
    Wilcoxon signed-rank test (``test="wilcoxon"``, :func:`scipy.stats.wilcoxon`, which
    cannot reach p < 0.05 with fewer than 6 pairs). Differences that are all equal give
    p = 1 when zero and p = 0 otherwise. With ``correction="holm"`` the p-values of one
    table (all its depths and settings) are Holm-Bonferroni adjusted (``p_adjusted``);
    ``significant`` is ``p_adjusted < alpha``. Fewer than two pairs: no test (NaN).

    Returns:
        pandas.DataFrame: one row per compared cell with ``dataset_label``, ``conv``,
        ``variant``, ``num_layers``, ``setting``, ``n_pairs``, ``unpaired``,
        ``mean_diff``, ``std_diff``, ``effect_size`` (:math:`d_z`), ``statistic``,
        ``p_value``, ``p_adjusted`` and ``significant``.

    Example:
        >>> rows = [dict(dataset_label="a", conv="gcn", num_layers=2, activation=act,
        ...              negative_slope=s, seed=seed, split=0, status="ok",
        ...              test_score=0.6 + 0.01 * seed + (0.1 if act != "relu" else 0.0)
        ...              + 0.002 * (seed % 2))
        ...         for act, s in (("relu", 0.0), ("leaky_relu", 0.2)) for seed in range(5)]
        >>> t = paired_tests(pd.DataFrame(rows))
        >>> t[["setting", "n_pairs", "significant"]].values.tolist()
        [['leaky 0.2', 5, True]]
    """
    if test not in _TESTS:
        raise ValueError(f"test must be one of {list(_TESTS)}, got {test!r}")
    if correction not in _CORRECTIONS:
        raise ValueError(f"correction must be one of {list(_CORRECTIONS)}, got {correction!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    df = _with_variants(runs).copy()
    df["setting"] = _setting_labels(df)
    if "split" not in df:
        df["split"] = 0
    df = df[(df.status == "ok") & np.isfinite(df[score].astype(float))]
    table_keys = [*_SECTION, "variant"]
    columns = [
        *table_keys, "num_layers", "setting", "n_pairs", "unpaired", "mean_diff", "std_diff",
        "effect_size", "statistic", "p_value", "p_adjusted", "significant",
    ]  # fmt: skip
    rows: list[dict[str, Any]] = []
    for key, cell in df.groupby([*table_keys, "num_layers"]):
        base = cell[cell.setting == baseline].set_index(["seed", "split"])[score]
        if base.empty:  # no baseline at this depth: nothing to compare with
            continue
        for setting, part in cell[cell.setting != baseline].groupby("setting", sort=False):
            other = part.set_index(["seed", "split"])[score]
            common = base.index.intersection(other.index)
            diff = (other.loc[common] - base.loc[common]).to_numpy(dtype=float)
            n = len(common)
            row = dict(zip([*table_keys, "num_layers"], key), setting=setting, n_pairs=n)
            row["unpaired"] = (len(other) - n) + (len(base) - n)
            row["mean_diff"] = float(diff.mean()) if n else math.nan
            row["std_diff"] = float(diff.std(ddof=1)) if n > 1 else math.nan
            if n > 1:
                sd = row["std_diff"]
                mean, sd = row["mean_diff"], row["std_diff"]
                if sd > 0:
                    row["effect_size"] = mean / sd
                else:  # every pair differs by the same amount
                    row["effect_size"] = math.copysign(math.inf, mean) if mean else 0.0
                row["statistic"], row["p_value"] = _paired_p(diff, test)
            else:
                row["effect_size"] = row["statistic"] = row["p_value"] = math.nan
            rows.append(row)
    out = pd.DataFrame(rows, columns=columns)
    if out.empty:
        return out
    out["p_adjusted"] = out["p_value"].astype(float)
    if correction == "holm":
        for _, idx in out.groupby(table_keys).groups.items():
            out.loc[idx, "p_adjusted"] = _holm(out.loc[idx, "p_value"].to_numpy(dtype=float))
    out["significant"] = out["p_adjusted"] < alpha
    return out


def layer_table(
    results: Results, metric: str = "dirichlet", stage: str = "post", when: str = "best"
) -> pd.DataFrame:
    """Per-layer values of one metric joined with the run settings, averaged over seeds
    (and splits) within each cell and variant, as :func:`summary_table` groups runs."""
    lay = results.layers
    lay = lay[(lay.metric == metric) & (lay.stage == stage) & (lay["when"] == when)]
    runs = _with_variants(results.runs)
    runs = runs[runs.status == "ok"].drop(columns=["metric"])
    df = lay.merge(runs, left_on="run_key", right_on="key")
    keys = [*_SECTION, "variant", *_CELL, "layer"]
    return df.groupby(keys)["value"].agg(["mean", "std"]).reset_index()


def _task_of(config: Any) -> str:
    from gnnleaky.bench.tasks import DEFAULT_TASK

    return config.get("task", DEFAULT_TASK) if isinstance(config, Mapping) else DEFAULT_TASK


def scalar_table(results: Results, name: str) -> pd.DataFrame:
    """Mean, std and count over seeds (and splits) of the stored scalar ``name`` (see
    :mod:`gnnleaky.bench.tasks`) for each dataset label, conv, variant, depth and setting
    (finished runs only), as :func:`summary_table` groups runs.

    Example:
        >>> runs = pd.DataFrame({"key": ["a", "b"], "dataset_label": ["d"] * 2,
        ...     "conv": ["gcn"] * 2, "num_layers": [2] * 2, "activation": ["relu"] * 2,
        ...     "negative_slope": [0.0] * 2, "status": ["ok"] * 2})
        >>> scalars = pd.DataFrame({"run_key": ["a", "b"], "name": ["s", "s"],
        ...     "value": [0.5, 0.7]})
        >>> res = Results(runs, pd.DataFrame(), pd.DataFrame(), scalars)
        >>> scalar_table(res, "s")[["mean", "n"]].round(3).values.tolist()
        [[0.6, 2.0]]
    """
    keys = ["dataset_label", "conv", "variant", "num_layers", "setting"]
    scalars = results.scalars
    if scalars is None or scalars.empty:
        return pd.DataFrame(columns=[*keys, "mean", "std", "n"])
    runs = _with_variants(results.runs)
    runs = runs[runs.status == "ok"]
    vals = scalars[scalars.name == name][["run_key", "value"]]
    df = vals.merge(runs, left_on="run_key", right_on="key")
    df = df.assign(setting=[column_label(a, s) for a, s in zip(df.activation, df.negative_slope)])
    agg = df.groupby(keys)["value"].agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    return agg.reset_index()


def _task_claims(results: Results, out: Path) -> tuple[list[Path], list[str]]:
    """Per task of the store and claim of that task: a figure per table and Markdown."""
    import matplotlib.pyplot as plt

    from gnnleaky.bench.tasks import TASKS

    paths: list[Path] = []
    lines: list[str] = []
    runs = _with_variants(results.runs)
    tasks = runs["config"].map(_task_of) if "config" in runs else pd.Series(dtype=object)
    stems = _stems(runs)
    for task in sorted(set(tasks)):
        spec = TASKS.get(task)
        if spec is None or not spec.figures:
            continue
        sub = Results(runs[tasks == task], results.layers, results.curves, results.scalars)
        for name, label in spec.figures.items():
            table = scalar_table(sub, name)
            if table.empty:
                continue
            lines += ["", f"## {task}: {label} (`{name}`, mean ± std over seeds)", ""]
            for (dlabel, conv, variant), part in table.groupby([*_SECTION, "variant"]):
                order = [
                    c
                    for c in _label_order(runs[runs.dataset_label == dlabel])
                    if c in set(part.setting)
                ]
                lines += [
                    f"{_title(dlabel, conv, variant)}",
                    "",
                    "| " + " | ".join(["depth", *order]) + " |",
                    "|---|" + "---|" * len(order),
                ]
                fig, ax = plt.subplots(figsize=(7, 4.5))
                for setting in order:
                    line = part[part.setting == setting].sort_values("num_layers")
                    ax.errorbar(
                        line.num_layers,
                        line["mean"],
                        yerr=line["std"].fillna(0),
                        marker="o",
                        ms=4,
                        capsize=3,
                        label=setting,
                    )
                for depth, row in part.groupby("num_layers"):
                    cells = [str(depth)]
                    for setting in order:
                        r = row[row.setting == setting]
                        if r.empty:
                            cells.append("")
                            continue
                        r = r.iloc[0]
                        n = int(r.n)
                        cells.append(
                            f"{r['mean']:.4g} ± {r['std']:.2g} (n={n})"
                            if n > 1
                            else f"{r['mean']:.4g} (n=1)"
                        )
                    lines.append("| " + " | ".join(cells) + " |")
                lines.append("")
                ax.set_xscale("log", base=2)
                ax.set_xlabel("depth (layers)")
                ax.set_ylabel(label)
                ax.set_title(f"{_title(dlabel, conv, variant)}: {task}", fontsize=10)
                ax.legend(fontsize=7)
                stem = stems[(dlabel, conv, variant)]
                paths.append(_save(fig, out / f"{_slug(task)}_{_slug(name)}_{stem}.png"))
    return paths, lines


def _slug(text: str) -> str:
    """A file-name part: anything but letters, digits and ``._=+-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", str(text)).strip("._") or "_"


def _stems(runs: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """A distinct file stem per (dataset label, conv, variant): ``<label>_<conv>``, with
    ``_<k>`` for the k-th variant of a table."""
    stems: dict[tuple[str, str, str], str] = {}
    used: set[str] = set()
    for (label, conv), sub in runs.groupby(_SECTION):
        for k, variant in enumerate(sorted(set(sub.variant)), 1):
            stem = f"{_slug(label)}_{_slug(conv)}" + (f"_{k}" if variant else "")
            base, n = stem, 1
            while stem in used:  # labels that differ only in characters a file name drops
                n += 1
                stem = f"{base}-{n}"
            used.add(stem)
            stems[(label, conv, variant)] = stem
    return stems


def _title(label: str, conv: str, variant: str) -> str:
    return f"{label} / {conv}" + (f" [{variant}]" if variant else "")


def _save(fig: Any, path: Path) -> Path:
    """Lay out, write (120 dpi) and close a figure; returns its path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _section_metric(runs: pd.DataFrame, label: str) -> str:
    return "/".join(dict.fromkeys(runs.loc[runs.dataset_label == label, "metric"].astype(str)))


def _heatmaps(
    runs: pd.DataFrame, table: pd.DataFrame, stems: dict[tuple[str, str, str], str], out: Path
) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = []
    table = table[table["n"] > 0]  # cells with finished runs only
    for (label, conv, variant), sub in table.groupby([*_SECTION, "variant"]):
        order = [
            c for c in _label_order(runs[runs.dataset_label == label]) if c in set(sub.setting)
        ]
        grid = sub.pivot(index="num_layers", columns="setting", values="mean")
        grid = grid.reindex(columns=order).sort_index().astype(float)
        metric = _section_metric(runs, label)
        fig, ax = plt.subplots(figsize=(1.1 * len(order) + 3, 0.55 * len(grid) + 2.2))
        im = ax.imshow(grid.values * 100, cmap="viridis", aspect="auto", vmin=0, vmax=100)
        ax.set_xticks(range(len(order)), order, rotation=45, ha="right")
        ax.set_yticks(range(len(grid)), [str(d) for d in grid.index])
        ax.set_xlabel("activation (negative slope)")
        ax.set_ylabel("depth (layers)")
        for (i, j), v in np.ndenumerate(grid.values):
            if v == v:
                ax.text(
                    j,
                    i,
                    f"{100 * v:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v < 0.6 else "black",
                )
        fig.colorbar(im, ax=ax, label=f"mean test {metric} (%)")
        ax.set_title(f"{_title(label, conv, variant)}: mean test {metric} over seeds", fontsize=9)
        paths.append(_save(fig, out / f"heatmap_{stems[(label, conv, variant)]}.png"))
    return paths


def _layer_curves(
    results: Results,
    stems: dict[tuple[str, str, str], str],
    out: Path,
    metric: str,
    ylabel: str,
    log_y: bool,
    stem: str,
) -> list[Path]:
    import matplotlib.pyplot as plt

    tab = layer_table(results, metric=metric)
    paths = []
    if tab.empty:
        return paths
    for (label, conv, variant), sub in tab.groupby([*_SECTION, "variant"]):
        depth = sub.num_layers.max()
        sub = sub[sub.num_layers == depth]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        slopes = sorted(sub[sub.activation == "leaky_relu"].negative_slope.unique())
        cmap = plt.get_cmap("plasma")
        for (act, s, beta), line in sub.groupby(["activation", "negative_slope", "positive_slope"]):
            if act == "leaky_relu":
                color = cmap(0.1 + 0.8 * slopes.index(s) / max(1, len(slopes) - 1))
                style = "-"
            else:
                color, style = {
                    "relu": ("black", "-"),
                    "prelu_layer": ("tab:green", "--"),
                    "prelu_channel": ("tab:blue", ":"),
                }.get(act, ("grey", "-."))
            setting = column_label(act, s, beta)
            ax.plot(line.layer + 1, line["mean"], style, color=color, label=setting)
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel("layer")
        ax.set_ylabel(ylabel)
        ax.set_title(
            f"{_title(label, conv, variant)}, depth {depth}, best epoch\n{ylabel} per layer",
            fontsize=10,
        )
        ax.legend(fontsize=7, ncol=2)
        paths.append(_save(fig, out / f"{stem}_{stems[(label, conv, variant)]}.png"))
    return paths


def _slope_plots(
    runs: pd.DataFrame, stems: dict[tuple[str, str, str], str], out: Path
) -> list[Path]:
    import matplotlib.pyplot as plt

    prelu = runs[(runs.act == "prelu") & (runs.status == "ok")]
    paths = []
    for (label, conv, variant), sub in prelu.groupby([*_SECTION, "variant"]):
        depth = sub.num_layers.max()
        sub = sub[sub.num_layers == depth]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for mode, part in sub.groupby("activation"):
            per_layer = np.array([[float(np.mean(v)) for v in s.values()] for s in part.slopes])
            layers = np.arange(1, per_layer.shape[1] + 1)
            ax.plot(layers, per_layer.mean(0), marker="o", ms=3, label=f"{mode} (mean)")
            ax.fill_between(layers, per_layer.min(0), per_layer.max(0), alpha=0.2)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel("layer")
        ax.set_ylabel("learned negative slope α (mean over channels)")
        ax.set_title(f"{_title(label, conv, variant)}, depth {depth}: learned PReLU slopes")
        ax.legend()
        paths.append(_save(fig, out / f"slopes_{stems[(label, conv, variant)]}.png"))
    return paths


def _cell_text(row: Any, mark: str = "") -> str:
    """``m ± s [lo, hi] (n=k)`` with the bootstrap interval; ``m (n=1)`` for a single run
    (no spread to show); a significance mark and failed runs added."""
    n, failed = int(row.n), int(row.failed)
    if n == 0:
        return "failed" if failed else ""
    m = 100 * row["mean"]
    if n > 1:
        text = f"{m:.1f} ± {100 * row['std']:.1f} [{100 * row['ci_low']:.1f}, "
        text += f"{100 * row['ci_high']:.1f}] (n={n})"
    else:
        text = f"{m:.1f} (n=1)"
    return text + mark + (f", {failed} failed" if failed else "")


def _mark(test: Any) -> str:
    """The cell's mark: `` ns`` where the paired test against ReLU is not significant,
    `` (untested)`` where fewer than two runs pair with ReLU runs."""
    if test is None:
        return ""
    if not test.n_pairs >= 2:
        return " (untested)"
    return "" if test.significant else " ns"


def _fmt_p(p: float) -> str:
    if p != p:
        return ""
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def _test_lines(tests: pd.DataFrame, keys: list[str]) -> list[str]:
    lines = [
        "| " + " | ".join(["depth", *(["variant"] if keys else []), "setting", "pairs",
                           "unpaired", "mean diff (points)", "d_z", "p", "p (Holm)",
                           "significant"]) + " |",
        "|---|" + "---|" * (8 + bool(keys)),
    ]  # fmt: skip
    for t in tests.itertuples(index=False):
        d = "" if t.n_pairs < 2 else f"{t.effect_size:.2f}"
        lines.append(
            "| "
            + " | ".join(
                [
                    str(t.num_layers),
                    *([t.variant.replace("|", "\\|")] if keys else []),
                    t.setting,
                    str(t.n_pairs),
                    str(t.unpaired),
                    "" if t.mean_diff != t.mean_diff else f"{100 * t.mean_diff:+.1f}",
                    d,
                    _fmt_p(t.p_value),
                    _fmt_p(t.p_adjusted),
                    "" if t.n_pairs < 2 else ("yes" if t.significant else "no"),
                ]
            )
            + " |"
        )
    return lines


def _markdown(
    runs: pd.DataFrame,
    table: pd.DataFrame,
    differing: dict[tuple, list[str]],
    tests: pd.DataFrame,
) -> str:
    lines = ["# Sweep summary", ""]
    ok = int((runs.status == "ok").sum())
    lines.append(
        f"{len(runs)} runs stored, {ok} finished, {len(runs) - ok} failed. "
        "Scores are test scores at the best validation epoch, in percent: mean ± std "
        "[95% bootstrap confidence interval of the mean] over the runs of a cell, which "
        "differ in seed (and split) only; n is their number (no std or interval for a "
        "single run)."
    )
    lines += [
        "",
        f"Each setting is compared with ReLU at the same depth by a paired t-test over the "
        f"runs that share a seed and split with a ReLU run (alpha = {ALPHA}, two-sided, "
        "p-values Holm-corrected over all comparisons of one table, or of one variant "
        "of it). **ns** marks a cell "
        "whose difference from ReLU is not significant; *(untested)* a cell with fewer "
        "than two such pairs. Runs without a partner of the same seed and split are "
        "counted as *unpaired* and left out of the test. The effect size d_z is the mean "
        "paired difference over its standard deviation. The bootstrap interval is a "
        f"percentile interval ({BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}); with "
        "3 to 5 seeds it is narrower than the true interval.",
    ]
    for (label, conv), sub in table.groupby(_SECTION):
        order = [
            c for c in _label_order(runs[runs.dataset_label == label]) if c in set(sub.setting)
        ]
        keys = differing.get((label, conv), [])
        variant = ["variant"] if keys else []
        lines += ["", f"## {label} / {conv} (test {_section_metric(runs, label)}, %)", ""]
        if keys:
            lines += [
                f"The runs of one cell differ in {', '.join(keys)} (not only in seed and "
                "split): each configuration is shown on its own row (column *variant*), "
                "never averaged with another.",
                "",
            ]
        lines += [
            "| " + " | ".join(["depth", *variant, *order]) + " |",
            "|---|" + "---|" * (len(variant) + len(order)),
        ]
        sec_tests = tests[(tests.dataset_label == label) & (tests.conv == conv)]
        by_cell = {
            (t.variant, t.num_layers, t.setting): t for t in sec_tests.itertuples(index=False)
        }
        for (depth, var), row in sub.groupby(["num_layers", "variant"]):
            cells = [str(depth), *([var.replace("|", "\\|")] if keys else [])]
            for setting in order:
                r = row[row.setting == setting]
                mark = _mark(by_cell.get((var, depth, setting)))
                cells.append(_cell_text(r.iloc[0], mark) if not r.empty else "")
            lines.append("| " + " | ".join(cells) + " |")
        if len(sec_tests):
            lines += ["", f"Paired tests against ReLU ({label} / {conv}):", ""]
            lines += _test_lines(sec_tests, keys)
        else:
            lines += ["", "No ReLU runs in this table: no paired tests."]
    failed = runs[runs.status != "ok"]
    if len(failed):
        lines += ["", "## Failed runs", ""]
        lines += [
            f"- `{r.key}` {r.dataset_label} depth {r.num_layers} "
            f"{column_label(r.activation, r.negative_slope, r.positive_slope)} seed {r.seed}"
            + (f" [{r.variant}]" if r.variant else "")
            + f": {r.reason}"
            for r in failed.itertuples()
        ]
    return "\n".join(lines) + "\n"


def _depth_plots(
    runs: pd.DataFrame,
    table: pd.DataFrame,
    tests: pd.DataFrame,
    stems: dict[tuple[str, str, str], str],
    out: Path,
) -> list[Path]:
    """Mean test score against depth per setting, with the 95% bootstrap interval as
    error bars; hollow markers where the paired test against ReLU is not significant."""
    import matplotlib.pyplot as plt

    paths = []
    table = table[table["n"] > 0]
    for (label, conv, variant), sub in table.groupby([*_SECTION, "variant"]):
        order = [
            c for c in _label_order(runs[runs.dataset_label == label]) if c in set(sub.setting)
        ]
        sig = {
            (t.num_layers, t.setting): bool(t.significant)
            for t in tests[
                (tests.dataset_label == label)
                & (tests.conv == conv)
                & (tests.variant == variant)
                & (tests.n_pairs >= 2)
            ].itertuples(index=False)
        }
        fig, ax = plt.subplots(figsize=(7, 4.5))
        cmap = plt.get_cmap("tab10")
        for i, setting in enumerate(order):
            line = sub[sub.setting == setting].sort_values("num_layers")
            m = 100 * line["mean"].to_numpy(dtype=float)
            lo = 100 * line["ci_low"].to_numpy(dtype=float)
            hi = 100 * line["ci_high"].to_numpy(dtype=float)
            # clipped: an interval of equal scores may miss its mean by a rounding error
            err = np.clip(np.nan_to_num(np.vstack([m - lo, hi - m])), 0.0, None)
            color = "black" if setting == "relu" else cmap(i % 10)
            depths = line.num_layers.to_numpy()
            ax.errorbar(depths, m, yerr=err, color=color, capsize=3, lw=1.2, label=setting)
            hollow = [sig.get((d, setting)) is False for d in depths]
            ax.scatter(
                depths,
                m,
                s=22,
                zorder=3,
                edgecolors=color,
                facecolors=["white" if h else color for h in hollow],
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(
            sorted(sub.num_layers.unique()), [str(d) for d in sorted(sub.num_layers.unique())]
        )
        ax.set_xlabel("depth (layers)")
        ax.set_ylabel(f"mean test {_section_metric(runs, label)} (%)")
        ax.set_title(
            f"{_title(label, conv, variant)}: mean, 95% bootstrap CI\n"
            f"hollow: not significantly different from ReLU (paired t-test, Holm, "
            f"alpha={ALPHA})",
            fontsize=9,
        )
        ax.legend(fontsize=7, ncol=2)
        paths.append(_save(fig, out / f"depth_{stems[(label, conv, variant)]}.png"))
    return paths


def make_report(results: str | Path | Results, out: str | Path) -> list[Path]:
    """Write the report's PNGs and ``summary.md`` to the folder ``out``; returns the
    written paths.

    Raises ``ValueError`` when the store holds no runs or ``out`` is an existing file. A
    store of failed runs only gets a ``summary.md`` listing them, and no plots.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"out={str(out)!r} is an existing file; the report needs a folder (it writes "
            "summary.md and PNGs into it)"
        )
    if not isinstance(results, Results):
        results = load(results)
    if results.runs.empty:
        raise ValueError("the results store holds no runs: nothing to report")
    variants, differing = _variants(results.runs)
    runs = _with_cells(results.runs).assign(variant=variants)
    results = Results(runs, results.layers, results.curves, results.scalars)
    for (label, conv), keys in differing.items():
        log.warning(
            "%s / %s: runs of one cell differ in %s (not only in seed and split); "
            "each configuration is shown apart as a variant",
            label,
            conv,
            ", ".join(keys),
        )
    table = summary_table(runs)
    tests = paired_tests(runs)
    stems = _stems(runs)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if (runs.status == "ok").any():
        paths += _heatmaps(runs, table, stems, out)
        paths += _depth_plots(runs, table, tests, stems, out)
        paths += _layer_curves(
            results, stems, out, "dirichlet", "Dirichlet energy E(X) (unnormalized)", True, "energy"
        )
        paths += _layer_curves(
            results,
            stems,
            out,
            "hf_ratio",
            "high-frequency share of ||X||² (λ ≥ 1, sym. Laplacian)",
            False,
            "hf_ratio",
        )
        paths += _slope_plots(runs, stems, out)
        claim_paths, claim_lines = _task_claims(results, out)
        paths += claim_paths
    else:
        claim_lines = []
        log.warning(
            "all %d runs in the store failed: no plots; summary.md lists their errors", len(runs)
        )
    md = out / "summary.md"
    text = _markdown(runs, table, differing, tests)
    if claim_lines:
        text += "\n# Task claims\n" + "\n".join(claim_lines) + "\n"
    md.write_text(text)
    paths.append(md)
    log.info("report: wrote %d files to %s", len(paths), out)
    return paths
