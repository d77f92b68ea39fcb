"""Plots and summary tables from a results store.

:func:`make_report` writes, per dataset: a heatmap of mean test score over depth x
activation/slope, per-layer Dirichlet energy curves (log scale) coloured by slope, the
high-frequency ratio per layer, the learned PReLU slopes per layer, and a Markdown summary
with mean ± std tables. Runs of a task other than node classification (see
:mod:`gnnleaky.bench.tasks`) get the same tables and plots of their main score, and for
each claim their task names (a stored scalar, e.g. a gradient share) a table and a figure:
the scalar's mean ± std over seeds versus depth, one line per activation setting.

A table cell (and a plotted line) aggregates only runs that differ in seed and split. When
the store holds runs of one cell whose configs differ in anything else (a second sweep
with other epochs into the same store, two cSBM graphs under one label), the differing
keys are named and each configuration is shown apart as a *variant*, never averaged in.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnnleaky.bench.store import Results, load

__all__ = [
    "column_label",
    "config_variants",
    "layer_table",
    "make_report",
    "scalar_table",
    "summary_table",
]

log = logging.getLogger(__name__)

_KIND_ORDER = {"relu": 0, "leaky_relu": 1, "prelu_layer": 2, "prelu_channel": 3}
# Config keys that place a run in a table: its section, row and column.
_CELL_KEYS = ("dataset_label", "conv", "num_layers", "act", "prelu_mode", "negative_slope")
# Config keys over which a cell aggregates.
_REPLICATE_KEYS = ("seed", "split")
_SECTION = ["dataset_label", "conv"]
_CELL = ["num_layers", "activation", "negative_slope"]


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


def _variants(runs: pd.DataFrame) -> tuple[pd.Series, dict[tuple, list[str]]]:
    """Each run's variant label (see :func:`config_variants`) and, per table (dataset
    label, conv), the config keys that differ inside one of its cells."""
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
    if "variant" in runs:
        return runs
    return runs.assign(variant=config_variants(runs))


def column_label(activation: str, negative_slope: float) -> str:
    """Label of an activation setting: ``relu``, ``leaky 0.2``, ``prelu_layer (init 0.25)``."""
    if activation == "relu":
        return "relu"
    if activation == "leaky_relu":
        return f"leaky {negative_slope:g}"
    return f"{activation} (init {negative_slope:g})"


def _label_order(runs: pd.DataFrame) -> list[str]:
    keys = runs[["activation", "negative_slope"]].drop_duplicates()
    keys = sorted(
        keys.itertuples(index=False),
        key=lambda r: (_KIND_ORDER.get(r.activation, 9), r.negative_slope),
    )
    return [column_label(r.activation, r.negative_slope) for r in keys]


def summary_table(runs: pd.DataFrame, score: str = "test_score") -> pd.DataFrame:
    """Mean, std and count of ``score`` over seeds (and splits) for each dataset label,
    conv, variant (see :func:`config_variants`), depth and setting.

    Failed runs are counted separately (column ``failed``) and left out of the mean; the
    std of a single run is NaN.

    Example:
        >>> runs = pd.DataFrame({"dataset_label": ["a"] * 3, "conv": ["gcn"] * 3,
        ...     "num_layers": [2] * 3, "activation": ["relu"] * 3, "negative_slope": [0.0] * 3,
        ...     "status": ["ok", "ok", "failed"], "test_score": [0.8, 0.6, None],
        ...     "metric": ["accuracy"] * 3})
        >>> summary_table(runs)[["mean", "std", "n", "failed"]].round(3).values.tolist()
        [[0.7, 0.141, 2.0, 1.0]]
    """
    df = _with_variants(runs).copy()
    df["setting"] = [column_label(a, s) for a, s in zip(df.activation, df.negative_slope)]
    df["ok"] = df.status == "ok"
    keys = ["dataset_label", "conv", "variant", "num_layers", "setting"]
    ok = df[df.ok]
    agg = ok.groupby(keys)[score].agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    failed = df[~df.ok].groupby(keys).size().rename("failed")
    out = agg.join(failed, how="outer").fillna({"failed": 0, "n": 0})
    return out.reset_index()


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
        for (act, s), line in sub.groupby(["activation", "negative_slope"]):
            if act == "leaky_relu":
                color = cmap(0.1 + 0.8 * slopes.index(s) / max(1, len(slopes) - 1))
                style = "-"
            else:
                color, style = {
                    "relu": ("black", "-"),
                    "prelu_layer": ("tab:green", "--"),
                    "prelu_channel": ("tab:blue", ":"),
                }.get(act, ("grey", "-."))
            ax.plot(line.layer + 1, line["mean"], style, color=color, label=column_label(act, s))
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


def _cell_text(row: Any) -> str:
    """``m ± s (n=k)``; ``m (n=1)`` for a single run (no spread to show); failed runs added."""
    n, failed = int(row.n), int(row.failed)
    if n == 0:
        return "failed" if failed else ""
    m = 100 * row["mean"]
    text = f"{m:.1f} ± {100 * row['std']:.1f} (n={n})" if n > 1 else f"{m:.1f} (n=1)"
    return text + (f", {failed} failed" if failed else "")


def _markdown(runs: pd.DataFrame, table: pd.DataFrame, differing: dict[tuple, list[str]]) -> str:
    lines = ["# Sweep summary", ""]
    ok = int((runs.status == "ok").sum())
    lines.append(
        f"{len(runs)} runs stored, {ok} finished, {len(runs) - ok} failed. "
        "Scores are test scores at the best validation epoch, in percent: mean ± std over "
        "the runs of a cell, which differ in seed (and split) only; n is their number "
        "(no std for a single run)."
    )
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
        for (depth, var), row in sub.groupby(["num_layers", "variant"]):
            cells = [str(depth), *([var.replace("|", "\\|")] if keys else [])]
            for setting in order:
                r = row[row.setting == setting]
                cells.append(_cell_text(r.iloc[0]) if not r.empty else "")
            lines.append("| " + " | ".join(cells) + " |")
    failed = runs[runs.status != "ok"]
    if len(failed):
        lines += ["", "## Failed runs", ""]
        lines += [
            f"- `{r.key}` {r.dataset_label} depth {r.num_layers} "
            f"{column_label(r.activation, r.negative_slope)} seed {r.seed}"
            + (f" [{r.variant}]" if r.variant else "")
            + f": {r.reason}"
            for r in failed.itertuples()
        ]
    return "\n".join(lines) + "\n"


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
    runs = results.runs.assign(variant=variants)
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
    stems = _stems(runs)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if (runs.status == "ok").any():
        paths += _heatmaps(runs, table, stems, out)
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
    text = _markdown(runs, table, differing)
    if claim_lines:
        text += "\n# Task claims\n" + "\n".join(claim_lines) + "\n"
    md.write_text(text)
    paths.append(md)
    log.info("report: wrote %d files to %s", len(paths), out)
    return paths
