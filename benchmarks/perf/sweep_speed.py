"""Sweep speed: gnnleaky's stacked sweep against a plain loop over PyG's ``GCN``.

Runs, in one process:

1. a Cora grid (depths 2, 8, 32, 64 x four Leaky ReLU slopes x 3 seeds, 200 epochs,
   patience 100), training only (``metrics=[]``: the work PyG's loop does), through
   ``gnnleaky.bench.train.train_group`` in this process (the code path of ``gnnleaky
   sweep``: stacked groups), then through ``run_sweep(backend="processes")``; with
   ``--metrics`` also in this process with the per-layer metrics the sweep records;
2. the same grid as a plain loop over ``torch_geometric.nn.models.GCN`` with a Leaky ReLU
   (Adam, cross-entropy, evaluation every epoch), timed on a sample of the grid (one seed
   per depth and slope, ``--baseline-epochs`` epochs) and scaled to the model-epochs the
   sweep actually ran;
3. with ``--kernels`` only: each numba kernel of the fast path beside the torch
   operations it replaces (the evidence for keeping it).

It prints the CPU, model-epochs per second, the ratios and the peak resident memory. Without
Cora under ``GNNLEAKY_DATA`` it uses a cSBM graph of Cora's size and says so.

Usage::

    GNNLEAKY_DATA=/path/to/data python benchmarks/perf/sweep_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from machine import cpu_name, load_avg
from torch_geometric.nn.models import GCN

from gnnleaky import datasets, spectral
from gnnleaky.bench.config import RunConfig, SweepConfig
from gnnleaky.bench.store import load
from gnnleaky.bench.sweep import run_sweep
from gnnleaky.bench.train import train_group
from gnnleaky.engine import dropout_mask
from gnnleaky.engine.fast import kernels as _kernels
from gnnleaky.nn.functional import normalized_adjacency
from gnnleaky.spectral import GraphCache

SLOPES = (0.01, 0.1, 0.2, 0.5)


def load_graph():
    try:
        return datasets.load("cora"), "cora", {}, "Cora"
    except FileNotFoundError:
        params = {
            "num_nodes": 2708,
            "num_classes": 7,
            "num_features": 1433,
            "avg_degree": 3.9,
            "seed": 0,
        }
        return (
            datasets.load("csbm", **params),
            "csbm",
            params,
            "cSBM of Cora's size (Cora not found under GNNLEAKY_DATA)",
        )


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB


# -- PyG baseline --------------------------------------------------------------------------
def pyg_epoch_times(
    data, depth: int, slope: float, seed: int, epochs: int, dropout: float, hidden: int = 64
) -> list[float]:
    """A plain PyG loop: train step, then evaluate; returns seconds per epoch."""
    torch.manual_seed(seed)
    model = GCN(
        data.num_features,
        hidden,
        depth,
        data.num_classes,
        dropout=dropout,
        act="leaky_relu",
        act_kwargs={"negative_slope": slope},
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    x, ei, y = data.x, data.edge_index, data.y
    train = data.train_mask if data.train_mask.dim() == 1 else data.train_mask[:, 0]
    val = data.val_mask if data.val_mask.dim() == 1 else data.val_mask[:, 0]
    best, times = -1.0, []
    for _ in range(epochs):
        t = time.perf_counter()
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x, ei)[train], y[train]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(x, ei).argmax(-1)
        best = max(best, float((pred[val] == y[val]).float().mean()))
        times.append(time.perf_counter() - t)
    return times


# -- kernels -------------------------------------------------------------------------------
def timed(fn, reps: int = 15) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def kernel_table(data) -> None:
    """Each numba kernel of the fast path beside the torch operations it replaces, on this
    graph (min of 15, ms): the evidence behind which kernels the engine keeps."""
    n = data.num_nodes
    a, _ = normalized_adjacency(data.edge_index, num_nodes=n)
    graph = (a.crow_indices().numpy(), a.col_indices().numpy(), a.values().numpy())
    print(f"kernels on this graph ({torch.get_num_threads()} threads, min of 15, ms):")
    for width in (64, 7):
        h, b = torch.randn(n, width), torch.randn(width)
        hn, bn, zn = h.numpy(), b.numpy(), np.empty((n, width), np.float32)
        slope = np.full(width, 0.2, np.float32)
        keep = torch.rand(n, width) > 0.5
        cells = {
            "torch CSR addmm": timed(lambda h=h, b=b: torch.addmm(b, a, h)),
            "numba spmm": timed(lambda hn=hn, zn=zn: _kernels.spmm(graph, hn, zn)),
            "torch addmm + leaky_relu + mask": timed(
                lambda h=h, b=b, k=keep: F.leaky_relu(torch.addmm(b, a, h), 0.2) * k * 2.0
            ),
            "numba propagate (+bias, leaky, no dropout)": timed(
                lambda hn=hn, zn=zn, bn=bn, s=slope: _kernels.propagate(
                    graph, hn, bn, s, _kernels.NO_MASK, True, True, zn, zn
                )
            ),
        }
        print(
            f"  A_hat @ H, width {width}: "
            + ", ".join(f"{k} {v * 1e3:.3f}" for k, v in cells.items())
        )
    k, c = 12, 64
    gens = [torch.Generator().manual_seed(i) for i in range(k)]
    hs = torch.randn(k, n, c)
    cells = {
        "F.dropout x12 (bernoulli)": timed(lambda: [F.dropout(hs[i], 0.5, True) for i in range(k)]),
        "gnnleaky masks, 12 generators": timed(lambda: dropout_mask(n, c, 0.5, gens)),
    }
    print(
        "  dropout p=0.5, 12 x [2708, 64]: "
        + ", ".join(f"{k} {v * 1e3:.3f}" for k, v in cells.items())
    )


def grid_in_one_process(data, runs: list[RunConfig], cache) -> tuple[dict, float, dict]:
    """``train_group`` over the grid's stacked groups in this process: per depth
    ``[seconds, model-epochs]``, the seconds spent in the per-layer metrics, and each
    run's ``(epochs run, test score)`` by key."""
    groups: dict[tuple, list[RunConfig]] = defaultdict(list)
    for r in runs:
        groups[r.group_key].append(r)
    per_depth: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    metric_time = [0.0]
    outcome: dict[str, tuple[int, float]] = {}
    layer_metrics = spectral.layer_metrics

    def timed_metrics(*a, **kw):  # the trainer looks layer_metrics up at call time
        t = time.perf_counter()
        try:
            return layer_metrics(*a, **kw)
        finally:
            metric_time[0] += time.perf_counter() - t

    spectral.layer_metrics = timed_metrics
    try:
        for group in groups.values():
            t = time.perf_counter()
            results = train_group(data, group, cache=cache)
            depth = group[0].num_layers
            per_depth[depth][0] += time.perf_counter() - t
            per_depth[depth][1] += sum(r.epochs_run for r in results)
            outcome.update({c.key: (r.epochs_run, r.test_score) for c, r in zip(group, results)})
            failed = sum(r.status != "ok" for r in results)
            print(
                f"  depth {depth:>2}: {len(group)} runs in {time.perf_counter() - t:6.1f} s, "
                f"{failed} failed, epochs run {sorted(r.epochs_run for r in results)}",
                flush=True,
            )
    finally:
        spectral.layer_metrics = layer_metrics
    return per_depth, metric_time[0], outcome


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--baseline-epochs", type=int, default=10)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads for this run (default: torch's choice)",
    )
    ap.add_argument("--quick", action="store_true", help="smoke test: depths 2 and 8, 20 epochs")
    ap.add_argument(
        "--metrics", action="store_true", help="also time the grid with the per-layer metrics"
    )
    ap.add_argument(
        "--kernels",
        action="store_true",
        help="only print the kernel measurements behind the engine's choices",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    depths = (2, 8) if args.quick else (2, 8, 32, 64)
    epochs = 20 if args.quick else args.epochs

    data, dataset, params, label = load_graph()
    print(
        f"sweep_speed on {label}: {data.num_nodes} nodes, {data.edge_index.size(1)} edges, "
        f"{data.num_features} features; CPU {cpu_name()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, load average "
        f"{load_avg():.1f} at start"
    )
    if args.kernels:
        kernel_table(data)
        return
    entry = {"name": dataset, "params": params} if params else dataset
    sweep = SweepConfig(
        name="sweep-speed",
        datasets=[entry],
        depths=depths,
        activations=["leaky_relu"],
        alphas=SLOPES,
        seeds=(0, 1, 2),
        epochs=epochs,
        patience=100,
        hidden_channels=64,
        dropout=0.5,
        metrics=[],
    )
    print(
        f"grid: depths {list(depths)} x Leaky ReLU slopes {list(SLOPES)} x seeds [0, 1, 2] "
        f"= {len(sweep.expand())} runs, {epochs} epochs (patience 100), hidden 64, dropout "
        "0.5, lr 0.01, weight decay 5e-4"
    )
    cache = GraphCache(data.edge_index, data.num_nodes, symmetrize=True)

    # -- 1. gnnleaky, training only (the work PyG's loop does) -------------------------------
    print("gnnleaky, train_group in this process, training only:")
    t = time.perf_counter()
    per_depth, _, outcome = grid_in_one_process(data, sweep.expand(), cache)
    ours = time.perf_counter() - t
    model_epochs = sum(v[1] for v in per_depth.values())
    print(
        f"  {int(model_epochs)} model-epochs in {ours:.1f} s -> "
        f"{model_epochs / ours:.1f} model-epochs/s; peak resident memory "
        f"{peak_rss_gib():.2f} GiB"
    )
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        summary = run_sweep(sweep, Path(tmp) / "p.sqlite", backend="processes", root=None)
        ours_p = time.perf_counter() - t
        stored = load(Path(tmp) / "p.sqlite").runs
    differ = [
        (k, outcome[k], (e, t))
        for k, e, t in zip(stored["key"], stored["epochs_run"], stored["test_score"])
        if outcome.get(k, (None, None))[0] != e
    ]
    print(
        f"gnnleaky, run_sweep(backend='processes'), training only: {summary.trained} runs "
        f"({summary.failed} failed) in {ours_p:.1f} s (process start-up, data load and store "
        f"included) -> {model_epochs / ours_p:.1f} model-epochs/s; runs whose epochs run "
        f"differ from the one-process grid: {len(differ)} of {len(stored)}"
        + "".join(f"\n    {k}: (epochs, test) {a} here, {b} there" for k, a, b in differ)
    )
    if args.metrics:
        print("gnnleaky, train_group in this process, per-layer metrics on:")
        t = time.perf_counter()
        with_metrics = sweep.replace(metrics=["dirichlet", "rayleigh", "hf_ratio"])
        _, metric_time, _ = grid_in_one_process(data, with_metrics.expand(), cache)
        took = time.perf_counter() - t
        print(
            f"  {took:.1f} s ({metric_time:.1f} s in the metrics: every layer, pre and "
            "post activation, at init and at the best epoch)"
        )

    # -- 2. PyG baseline, sampled -----------------------------------------------------------
    base_per_epoch: dict[int, float] = {}
    sampled = 0
    for depth in depths:
        times = []
        for slope in SLOPES:
            ts = pyg_epoch_times(data, depth, slope, 0, args.baseline_epochs + 1, 0.5)
            times += ts[1:]  # the first epoch warms caches up
            sampled += len(ts)
        base_per_epoch[depth] = statistics.mean(times)
    base = sum(base_per_epoch[d] * per_depth[d][1] for d in depths)
    print(
        f"PyG GCN loop (Leaky ReLU, same settings, training step + evaluation forward): "
        f"timed on a sample of the grid ({sampled} model-epochs: 1 seed x {len(SLOPES)} "
        f"slopes x {len(depths)} depths x {args.baseline_epochs + 1} epochs, the first of "
        f"each dropped), scaled to the {int(model_epochs)} model-epochs the sweep ran: est. "
        f"{base:.0f} s -> {model_epochs / base:.2f} model-epochs/s"
    )
    print(
        "speed-up of the grid, training only (gnnleaky / PyG, model-epochs/s): "
        f"{base / ours:.1f}x in one process, {base / ours_p:.1f}x with the processes backend"
    )
    print("per depth: depth | gnnleaky ms/model-epoch | PyG ms/epoch | ratio")
    for d in depths:
        mine = per_depth[d][0] / per_depth[d][1] * 1e3
        print(
            f"  {d:>3} | {mine:9.1f} | {base_per_epoch[d] * 1e3:9.1f} | "
            f"{base_per_epoch[d] * 1e3 / mine:5.1f}x"
        )
    print(f"load average {load_avg():.1f} at the end")


if __name__ == "__main__":
    main()
