"""Continual learning on Cora and CiteSeer (tasks of two classes): fine-tuning and EWC,
class- and task-incremental, per activation; AP, AF and the drift of the weights.

Usage (from the repository root):
    GNNLEAKY_DATA=... nice -n 10 python benchmarks/paradigms/continual.py --out cl.jsonl
    python benchmarks/paradigms/continual.py --out cl.jsonl --summary

One JSON line per sequence (resumes: lines already in --out are skipped).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from gnnleaky.datasets import load
from gnnleaky.tasks.continual import train_continual

ACTS = {
    "relu": ("relu", {}),
    "leaky0.2": ("leaky_relu", {"negative_slope": 0.2}),
    "leaky0.5": ("leaky_relu", {"negative_slope": 0.5}),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--acts", nargs="+", default=["relu", "leaky0.2"])
    ap.add_argument("--datasets", nargs="+", default=["cora", "citeseer"])
    ap.add_argument("--settings", nargs="+", default=["task_il", "class_il"])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--summary", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    done = {}
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done[(r["dataset"], r["setting"], r["method"], r["act"], r["seed"])] = r
    if args.summary:
        summary(done.values())
        return
    with args.out.open("a") as f:
        for ds in args.datasets:
            data = load(ds)
            for setting in args.settings:
                for seed in range(args.seeds):
                    for method in ("finetune", "ewc"):
                        for act in args.acts:
                            if (ds, setting, method, act, seed) in done:
                                continue
                            name, kw = ACTS[act]
                            t0 = time.perf_counter()
                            r = train_continual(
                                data,
                                setting=setting,
                                method=method,
                                act=name,
                                act_kwargs=kw,
                                hidden_channels=args.hidden,
                                epochs=args.epochs,
                                seed=seed,
                            )
                            row = dict(
                                dataset=ds,
                                setting=setting,
                                method=method,
                                act=act,
                                seed=seed,
                                status=r.status,
                                acc=r.acc,
                                ap=r.ap,
                                af=r.af,
                                drift=r.drift,
                                seconds=time.perf_counter() - t0,
                            )
                            f.write(json.dumps(row) + "\n")
                            f.flush()
                            print(json.dumps(row), flush=True)


def _ms(values, scale=100.0, digits=1):
    v = np.asarray(values, dtype=float) * scale
    sd = v.std(ddof=1) if v.size > 1 else 0.0
    return f"{v.mean():.{digits}f} ± {sd:.{digits}f}"


def summary(rows) -> None:
    import pandas as pd

    df = pd.DataFrame(list(rows))
    # plasticity: the drift while learning the later tasks (from a trained state)
    df["drift_norm"] = df.drift.map(lambda d: np.mean([x["norm"] for x in d[1:]]))
    df["drift_rel"] = df.drift.map(lambda d: np.mean([x["relative"] for x in d[1:]]))
    df["moved"] = df.drift.map(lambda d: np.mean([x["moved"] for x in d[1:]]))
    print(
        "| dataset | setting | method | activation | AP (%) | AF (%) | drift ‖Δθ‖ "
        "(tasks 2-3) | relative drift | moved > 0.01 (%) | seeds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (ds, st, me, act), g in df.groupby(["dataset", "setting", "method", "act"], sort=False):
        print(
            f"| {ds} | {st} | {me} | {act} | {_ms(g.ap)} | {_ms(g.af)} | "
            f"{_ms(g.drift_norm, 1, 2)} | {_ms(g.drift_rel, 1, 3)} | {_ms(g.moved)} | "
            f"{g.seed.nunique()} |"
        )
    print()
    print(
        "| dataset | setting | method | leaky − relu: drift ‖Δθ‖ | leaky − relu: AF (points) "
        "| corr(drift, AF) over runs |"
    )
    print("|---|---|---|---|---|---|")
    for (ds, st, me), g in df.groupby(["dataset", "setting", "method"], sort=False):
        a = g[g.act == "relu"].sort_values("seed").set_index("seed")
        b = g[g.act == "leaky0.2"].sort_values("seed").set_index("seed")
        seeds = a.index.intersection(b.index)
        if len(seeds) == 0:
            continue
        dd = (b.drift_norm - a.drift_norm).loc[seeds]
        da = (b.af - a.af).loc[seeds]
        r = np.corrcoef(g.drift_norm, g.af)[0, 1] if len(g) > 2 else float("nan")
        print(f"| {ds} | {st} | {me} | {_ms(dd, 1, 2)} | {_ms(da)} | {r:+.2f} |")


if __name__ == "__main__":
    main()
