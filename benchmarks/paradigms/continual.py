"""Continual learning on Cora and CiteSeer (tasks of two classes): fine-tuning and EWC,
class- and task-incremental, per activation; AP, AF and the drift of the weights.

Usage (from the repository root):
    GNNLEAKY_DATA=... nice -n 10 python benchmarks/paradigms/continual.py --out cl.jsonl
    python benchmarks/paradigms/continual.py --out cl.jsonl --summary

One JSON line per sequence (resumes: lines already in --out are skipped).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from grid import ACTS, appender, stored
from grid import mean_std as _ms

from gnnleaky.datasets import load
from gnnleaky.tasks.continual import train_continual


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
    done = stored(args.out, ("dataset", "setting", "method", "act", "seed"))
    if args.summary:
        summary(done.values())
        return
    with appender(args.out) as add:
        for ds in args.datasets:
            data = load(ds)
            for setting in args.settings:
                for seed in range(args.seeds):
                    for method in ("finetune", "ewc"):
                        for act in args.acts:
                            if (ds, setting, method, act, seed) not in done:
                                add(fit, data, ds, setting, method, act, seed, args)


def fit(data, ds, setting, method, act, seed, args) -> dict:
    name, kw = ACTS[act]
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
    return dict(
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
    )


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
