"""DANN against source-only per activation on the WebKB pairs and two cSBM pairs.

Usage (from the repository root):
    GNNLEAKY_DATA=... nice -n 10 python benchmarks/paradigms/dann.py --out dann.jsonl
    python benchmarks/paradigms/dann.py --out dann.jsonl --summary

One JSON line per fit (resumes: lines already in --out are skipped); --summary prints
mean +- std over seeds per pair, activation and mode.
"""

from __future__ import annotations

import argparse
from itertools import permutations
from pathlib import Path

import numpy as np
import torch
from grid import ACTS, appender, stored
from grid import mean_std as _ms

from gnnleaky.datasets import load
from gnnleaky.tasks.domain_adversarial import WEBKB, check_domain_pair, csbm_pair, train_dann

CSBM = {
    "csbm-shift": dict(shift=1.5),
    "csbm-homophily": dict(target_homophily=0.3),
}


def pairs(seed):
    graphs = {name: load(name) for name in WEBKB}
    for s, t in permutations(WEBKB, 2):
        check_domain_pair(graphs[s], graphs[t])
        yield f"{s}->{t}", graphs[s], graphs[t], seed  # split = seed
    for label, kw in CSBM.items():
        src, tgt = csbm_pair(seed=seed, **kw)
        yield label, src, tgt, 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--acts", nargs="+", default=list(ACTS))
    ap.add_argument("--summary", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    done = stored(args.out, ("pair", "act", "adapt", "seed"))
    if args.summary:
        summary([r for r in done.values() if r["act"] in args.acts])
        return
    with appender(args.out) as add:
        for seed in range(args.seeds):
            for label, src, tgt, split in pairs(seed):
                for act in args.acts:
                    for adapt in (False, True):
                        if (label, act, adapt, seed) not in done:
                            add(fit, label, src, tgt, split, act, adapt, seed, args)


def fit(label, src, tgt, split, act, adapt, seed, args) -> dict:
    name, kw = ACTS[act]
    r = train_dann(
        src, tgt, act=name, act_kwargs=kw, adapt=adapt, split=split, epochs=args.epochs, seed=seed
    )
    return dict(
        pair=label,
        act=act,
        adapt=adapt,
        seed=seed,
        status=r.status,
        best_epoch=r.best_epoch,
        source_val=r.source_val,
        source_test=r.source_test,
        target=r.target,
        domain_acc=r.domain_acc,
        share=r.share["first"],
        inactive=r.share["inactive"][0],
        share_mean=r.share_mean,
    )


def summary(rows) -> None:
    import pandas as pd

    df = pd.DataFrame(list(rows))
    df["group"] = np.where(df.pair.str.startswith("csbm"), df.pair, "webkb (6 pairs)")
    print(
        "| pairs | activation | target acc, source-only | target acc, DANN | "
        "discriminator acc, DANN | share s_1, source-only | share s_1, DANN | seeds |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (group, act), g in df.groupby(["group", "act"], sort=False):
        so, da = g[~g.adapt], g[g.adapt]
        # over seeds: the mean over the group's pairs per seed, then mean +- std over seeds
        f = lambda d, c: d.groupby("seed")[c].mean().values  # noqa: E731
        print(
            f"| {group} | {act} | {_ms(f(so, 'target'))} | {_ms(f(da, 'target'))} | "
            f"{_ms(f(da, 'domain_acc'))} | {_ms(f(so, 'share'))} | {_ms(f(da, 'share'))} | "
            f"{g.seed.nunique()} |"
        )
    print()
    print("| pair | activation | target acc, source-only | target acc, DANN | gain |")
    print("|---|---|---|---|---|")
    for (pair, act), g in df.groupby(["pair", "act"], sort=False):
        so = g[~g.adapt].sort_values("seed").target.values
        da = g[g.adapt].sort_values("seed").target.values
        print(f"| {pair} | {act} | {_ms(so)} | {_ms(da)} | {_ms(da - so)} |")


if __name__ == "__main__":
    main()
