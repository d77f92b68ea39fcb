"""Markdown tables of ``docs/reproductions.md`` from the results files of the reproduction
scripts (no training).

Usage::

    python benchmarks/repro/report.py benchmarks/repro/measured/gcnii_cora.json \\
        benchmarks/repro/measured/dropedge.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import mean_std
from dropedge_table import PUBLISHED, RULES

GCNII_PUBLISHED = 85.5


def gcnii(record: dict) -> list[str]:
    runs = record["runs"]
    m, s = mean_std([r["test_acc"] for r in runs])
    vm, vs = mean_std([r["val_acc"] for r in runs])
    cfg = record["config"]
    per_seed = ", ".join(f"{100 * r['test_acc']:.1f}" for r in runs)
    epochs = [r["epochs_run"] for r in runs]
    ms = [1000 * r["seconds_per_epoch"] for r in runs]
    return [
        "| dataset | layers | seeds | ours: test (mean ± std) | published | gap | val acc |",
        "|---|---|---|---|---|---|---|",
        f"| {cfg['dataset']} | {cfg['layers']} | {len(runs)} | {m:.1f} ± {s:.1f} | "
        f"{GCNII_PUBLISHED} | {m - GCNII_PUBLISHED:+.1f} | {vm:.1f} ± {vs:.1f} |",
        "",
        f"Per seed ({', '.join(str(r['seed']) for r in runs)}): {per_seed}. Best epochs "
        f"{', '.join(str(r['epoch']) for r in runs)}; epochs run {min(epochs)}-{max(epochs)}; "
        f"{statistics.median(ms):.0f} ms per epoch (median over seeds, train step + eval "
        f"forward); {sum(r['seconds'] for r in runs) / 60:.0f} min in all.",
    ]


def dropedge(record: dict, init: str = "recipe") -> list[str]:
    runs = [r for r in record["runs"] if r["init"] == init]
    head = "| dataset | layers | seeds | published | ours: recipe rule | min-max | gap |"
    head += " eval val loss | eval val acc | train acc | s/run |"
    lines = [head, "|" + "---|" * 11]
    for name, cells in PUBLISHED.items():
        for depth, pub in cells.items():
            cell = [r for r in runs if (r["dataset"], r["depth"]) == (name, depth)]
            if not cell:
                continue
            ms = {q: mean_std([r["selected"][q]["test_acc"] for r in cell]) for q in RULES}
            tr = mean_std([r["selected"]["recipe"]["train_acc"] for r in cell])
            sec = statistics.median(r["seconds"] for r in cell)
            m = ms["recipe"][0]
            acc = [100 * r["selected"]["recipe"]["test_acc"] for r in cell]
            lines.append(
                f"| {name} | {depth} | {len(cell)} | {pub:.1f} | "
                f"{m:.1f} ± {ms['recipe'][1]:.1f} | {min(acc):.1f}-{max(acc):.1f} | "
                f"{m - pub:+.1f} | "
                f"{ms['val_loss'][0]:.1f} ± {ms['val_loss'][1]:.1f} | "
                f"{ms['val_acc'][0]:.1f} ± {ms['val_acc'][1]:.1f} | "
                f"{tr[0]:.0f} | {sec:.0f} |"
            )
    return lines


def checks(runs: list[dict], seeds: set[int]) -> list[str]:
    """Variants of the recipe at a few cells (``--set``, ``--init``), the recipe itself among
    them, on the same seeds; the variant with the best mean validation accuracy (eval mode,
    at the epoch the recipe's rule selects) is marked. Validation decides; test is shown."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        if r["seed"] not in seeds:
            continue
        variant = (r["init"], tuple(sorted((r.get("overrides") or {}).items())))
        groups.setdefault((r["dataset"], r["depth"]), {}).setdefault(variant, []).append(r)
    lines = [
        "| dataset | layers | variant | seeds | val acc | test acc | train acc | published |",
        "|" + "---|" * 8,
    ]
    for (name, depth), variants in groups.items():
        if len(variants) < 2:
            continue
        rows = []
        for (init, over), cell in variants.items():
            sel = [r["selected"]["recipe"] for r in cell]
            val = mean_std([e["val_acc"] for e in sel])
            test = mean_std([e["test_acc"] for e in sel])
            train = mean_std([e["train_acc"] for e in sel])
            parts = [f"{k} {v}" for k, v in over] + ([] if init == "recipe" else [f"init {init}"])
            label = ", ".join(parts) or "recipe"
            rows.append((val[0], label, len(cell), val, test, train))
        best = max(rows)[1]
        for _, label, n, val, test, train in sorted(rows, key=lambda t: t[1]):
            mark = " **(best val)**" if label == best else ""
            lines.append(
                f"| {name} | {depth} | {label}{mark} | {n} | {val[0]:.1f} ± {val[1]:.1f} | "
                f"{test[0]:.1f} ± {test[1]:.1f} | {train[0]:.0f} | {PUBLISHED[name][depth]} |"
            )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--init", default="recipe")
    p.add_argument("--checks", type=Path, help="results file of recipe variants (dropedge)")
    args = p.parse_args()
    for path in args.files:
        record = json.loads(path.read_text())
        env = record["env"]
        print(f"## {path.name}: torch {env['torch']}, PyG {env['torch_geometric']}, {env['cpu']}")
        is_gcnii = "layers" in record["config"]
        print("\n".join(gcnii(record) if is_gcnii else dropedge(record, args.init)))
        print()
        if args.checks and not is_gcnii:
            extra = json.loads(args.checks.read_text())["runs"]
            seeds = {r["seed"] for r in extra}
            print(f"## {args.checks.name}: recipe variants, seeds {sorted(seeds)}")
            print("\n".join(checks(record["runs"] + extra, seeds)))
            print()


if __name__ == "__main__":
    main()
