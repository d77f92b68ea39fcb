"""Plots and summary tables from a results store.

:func:`make_report` writes, per dataset: a heatmap of mean test score over depth x
activation/slope, per-layer Dirichlet energy curves (log scale) coloured by slope, the
high-frequency ratio per layer, the learned PReLU slopes per layer, and a Markdown summary
with mean ± std tables.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnnleaky.bench.store import Results, load

__all__ = ["column_label", "layer_table", "make_report", "summary_table"]

log = logging.getLogger(__name__)

_KIND_ORDER = {"relu": 0, "leaky_relu": 1, "prelu_layer": 2, "prelu_channel": 3}


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
    """Mean, std and count of ``score`` over seeds for each dataset, conv, depth and setting.

    Failed runs are counted separately (column ``failed``) and left out of the mean.

    Example:
        >>> runs = pd.DataFrame({"dataset_label": ["a"] * 3, "conv": ["gcn"] * 3,
        ...     "num_layers": [2] * 3, "activation": ["relu"] * 3, "negative_slope": [0.0] * 3,
        ...     "status": ["ok", "ok", "failed"], "test_score": [0.8, 0.6, None],
        ...     "metric": ["accuracy"] * 3})
        >>> summary_table(runs)[["mean", "std", "n", "failed"]].round(3).values.tolist()
        [[0.7, 0.141, 2.0, 1.0]]
    """
    df = runs.copy()
    df["setting"] = [column_label(a, s) for a, s in zip(df.activation, df.negative_slope)]
    df["ok"] = df.status == "ok"
    keys = ["dataset_label", "conv", "num_layers", "setting"]
    ok = df[df.ok]
    agg = ok.groupby(keys)[score].agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    failed = df[~df.ok].groupby(keys).size().rename("failed")
    out = agg.join(failed, how="outer").fillna({"failed": 0, "n": 0})
    return out.reset_index()


def layer_table(
    results: Results, metric: str = "dirichlet", stage: str = "post", when: str = "best"
) -> pd.DataFrame:
    """Per-layer values of one metric joined with the run settings, averaged over seeds."""
    lay = results.layers
    lay = lay[(lay.metric == metric) & (lay.stage == stage) & (lay["when"] == when)]
    runs = results.runs[results.runs.status == "ok"]
    df = lay.merge(runs, left_on="run_key", right_on="key")
    keys = ["dataset_label", "conv", "num_layers", "activation", "negative_slope", "layer"]
    return df.groupby(keys)["value"].agg(["mean", "std"]).reset_index()


def _save(fig: Any, path: Path) -> Path:
    """Lay out, write (120 dpi) and close a figure; returns its path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _heatmaps(runs: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = []
    table = summary_table(runs)
    for (label, conv), sub in table.groupby(["dataset_label", "conv"]):
        order = [
            c for c in _label_order(runs[runs.dataset_label == label]) if c in set(sub.setting)
        ]
        grid = sub.pivot(index="num_layers", columns="setting", values="mean")
        grid = grid.reindex(columns=order).sort_index()
        metric = runs.loc[runs.dataset_label == label, "metric"].iloc[0]
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
        ax.set_title(f"{label} / {conv}: mean test {metric} over seeds")
        paths.append(_save(fig, out / f"heatmap_{label}_{conv}.png"))
    return paths


def _layer_curves(
    results: Results, out: Path, metric: str, ylabel: str, log_y: bool, stem: str
) -> list[Path]:
    import matplotlib.pyplot as plt

    tab = layer_table(results, metric=metric)
    paths = []
    if tab.empty:
        return paths
    for (label, conv), sub in tab.groupby(["dataset_label", "conv"]):
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
            f"{label} / {conv}, depth {depth}, best epoch\n{ylabel} per layer", fontsize=10
        )
        ax.legend(fontsize=7, ncol=2)
        paths.append(_save(fig, out / f"{stem}_{label}_{conv}.png"))
    return paths


def _slope_plots(runs: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    prelu = runs[(runs.act == "prelu") & (runs.status == "ok")]
    paths = []
    for (label, conv), sub in prelu.groupby(["dataset_label", "conv"]):
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
        ax.set_title(f"{label} / {conv}, depth {depth}: learned PReLU slopes")
        ax.legend()
        paths.append(_save(fig, out / f"slopes_{label}_{conv}.png"))
    return paths


def _markdown(results: Results) -> str:
    runs = results.runs
    lines = ["# Sweep summary", ""]
    ok = int((runs.status == "ok").sum())
    lines.append(
        f"{len(runs)} runs stored, {ok} finished, {len(runs) - ok} failed. "
        "Scores are test scores at the best validation epoch, mean ± std over "
        "seeds, in percent."
    )
    table = summary_table(runs)
    for (label, conv), sub in table.groupby(["dataset_label", "conv"]):
        metric = runs.loc[runs.dataset_label == label, "metric"].iloc[0]
        order = [
            c for c in _label_order(runs[runs.dataset_label == label]) if c in set(sub.setting)
        ]
        lines += [
            "",
            f"## {label} / {conv} (test {metric}, %)",
            "",
            "| depth | " + " | ".join(order) + " |",
            "|---|" + "---|" * len(order),
        ]
        for depth, row in sub.groupby("num_layers"):
            cells = []
            for setting in order:
                r = row[row.setting == setting]
                if r.empty or r["n"].iloc[0] == 0:
                    cells.append("failed" if not r.empty else "")
                    continue
                m, s = 100 * r["mean"].iloc[0], 100 * np.nan_to_num(r["std"].iloc[0])
                cells.append(f"{m:.1f} ± {s:.1f}")
            lines.append(f"| {depth} | " + " | ".join(cells) + " |")
    failed = runs[runs.status != "ok"]
    if len(failed):
        lines += ["", "## Failed runs", ""]
        lines += [
            f"- `{r.key}` {r.dataset_label} depth {r.num_layers} "
            f"{column_label(r.activation, r.negative_slope)} seed {r.seed}: {r.reason}"
            for r in failed.itertuples()
        ]
    return "\n".join(lines) + "\n"


def make_report(results: str | Path | Results, out: str | Path) -> list[Path]:
    """Write the report's PNGs and ``summary.md`` to ``out``; returns the written paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    if not isinstance(results, Results):
        results = load(results)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if results.runs.empty:
        raise ValueError("the results store holds no runs: nothing to report")
    paths = _heatmaps(results.runs, out)
    paths += _layer_curves(
        results, out, "dirichlet", "Dirichlet energy E(X) (unnormalized)", True, "energy"
    )
    paths += _layer_curves(
        results,
        out,
        "hf_ratio",
        "high-frequency share of ||X||² (λ ≥ 1, sym. Laplacian)",
        False,
        "hf_ratio",
    )
    paths += _slope_plots(results.runs, out)
    md = out / "summary.md"
    md.write_text(_markdown(results))
    paths.append(md)
    log.info("report: wrote %d files to %s", len(paths), out)
    return paths
