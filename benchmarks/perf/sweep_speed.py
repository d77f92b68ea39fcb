"""Sweep speed: gnnleaky's stacked sweep against a plain loop over PyG's ``GCN``.

Runs, in one process:

1. a Cora grid (depths 2, 8, 32, 64 x four Leaky ReLU slopes x 3 seeds, 200 epochs,
   patience 100) through ``gnnleaky.bench.train.train_group``, the code path of
   ``gnnleaky sweep`` (stacked groups, per-layer metrics recorded at init and best epoch),
   then through ``run_sweep(backend="processes")`` twice: with the metrics, and training
   only (``metrics=[]``, the work the PyG loop does);
2. the same grid as a plain loop over ``torch_geometric.nn.models.GCN`` with a Leaky ReLU
   (Adam, cross-entropy, evaluation every epoch), timed on a sample of the grid (one seed
   per depth and slope, ``--baseline-epochs`` epochs) and scaled to the model-epochs the
   sweep actually ran;
3. one 64-layer model alone: gnnleaky's ms per epoch, PyG's, and the floor: the summed time
   of the epoch's dense and sparse products (forward, backward, evaluation), each run
   alone in this process with the same kernels.

It prints model-epochs per second, the ratios and the peak resident memory. Without
Cora under ``GNNLEAKY_DATA`` it uses a cSBM graph of Cora's size and says so.

Usage::

    GNNLEAKY_DATA=/path/to/data python benchmarks/perf/sweep_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch_geometric.nn.models import GCN

from gnnleaky import datasets, spectral
from gnnleaky.bench.config import RunConfig, SweepConfig
from gnnleaky.bench.store import load
from gnnleaky.bench.sweep import run_sweep
from gnnleaky.bench.train import train_group
from gnnleaky.engine import SPARSE_FEATURE_DENSITY, dropout_mask
from gnnleaky.engine.fast import kernels as _kernels
from gnnleaky.engine.fast import stack as _fast
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


def load_avg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return float("nan")


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


# -- floor -----------------------------------------------------------------------------------
def timed(fn, reps: int = 15) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _spmm_candidates(csr: torch.Tensor, rows: int) -> dict[str, Callable[[torch.Tensor], object]]:
    """The sparse kernels for ``csr @ dense``: MKL's CSR addmm and gnnleaky's numba one."""
    arrays = _fast._csr_arrays(csr)
    outs: dict[int, np.ndarray] = {}  # one output per width, written again and again

    def out(width: int) -> np.ndarray:
        return outs.setdefault(width, np.empty((rows, width), np.float32))

    return {
        "mkl": lambda d: torch.addmm(d.new_zeros(d.size(1)), csr, d),
        "numba": lambda d: _kernels.spmm(*arrays, d.numpy(), out(d.size(1)), 0, rows),
    }


def product_times(data, hidden: int = 64, own_gemms: bool = True) -> dict[str, float]:
    """Seconds of each product of a GCN epoch, each run alone (min of 15) with the fastest
    kernel this process has for it at the current thread count; without ``own_gemms``,
    the dense products from torch's libraries only (oneDNN, MKL)."""
    n, f, c, out = data.num_nodes, data.num_features, hidden, data.num_classes
    a, a_t = normalized_adjacency(data.edge_index, num_nodes=n)
    lin = _fast._linear()
    x = data.x
    g, g_out = torch.randn(n, c), torch.randn(n, out)
    w, w_out, w1 = torch.randn(c, c), torch.randn(out, c), torch.randn(c, f)

    def best(cands: dict[str, Callable[[], object]]) -> float:
        return min(timed(fn) for fn in cands.values())

    t: dict[str, float] = {}
    if int(torch.count_nonzero(x)) <= SPARSE_FEATURE_DENSITY * x.numel():
        xs = _spmm_candidates(x.to_sparse_csr(), n)
        xs_t = _spmm_candidates(x.t().to_sparse_csr(), f)
        w1_t = w1.t().contiguous()
        t["X W1"] = best({k: (lambda fn=fn: fn(w1_t)) for k, fn in xs.items()})
        t["X^T G (grad W1)"] = best({k: (lambda fn=fn: fn(g)) for k, fn in xs_t.items()})
    else:
        t["X W1"] = timed(lambda: lin(x, w1))
        t["X^T G (grad W1)"] = timed(lambda: lin(x.t(), g.t()))
    sp, sp_t = _spmm_candidates(a, n), _spmm_candidates(a_t, n)
    t["A P, width 64"] = best({k: (lambda fn=fn: fn(g)) for k, fn in sp.items()})
    t["A P, width out"] = best({k: (lambda fn=fn: fn(g_out)) for k, fn in sp.items()})
    t["A^T G, width 64"] = best({k: (lambda fn=fn: fn(g)) for k, fn in sp_t.items()})
    t["A^T G, width out"] = best({k: (lambda fn=fn: fn(g_out)) for k, fn in sp_t.items()})
    # gnnleaky's numba GEMMs (matmul, grad_weight: widths that 64 divides) beside oneDNN
    gn, wn, sq = g.numpy(), w.t().contiguous().numpy(), np.empty((c, c), np.float32)
    pn = np.empty((n, c), np.float32)
    own = own_gemms and c % 64 == 0
    hw = {"onednn": lambda: lin(g, w), "numba": lambda: _kernels.matmul(gn, wn, pn, 0, n)}
    if not own:
        del hw["numba"]
    t["H W"] = best(hw)
    t["G W^T (grad H)"] = best(hw)
    grad_w = {
        "onednn": lambda: lin(g.t(), g.t()),
        "mkl": lambda: torch.mm(g.t(), g),
        "numba": lambda: _kernels.grad_weight(gn, gn, sq, 0, n),
    }
    if not own:
        del grad_w["numba"]
    t["H^T G (grad W)"] = best(grad_w)
    t["H W_out"] = timed(lambda: lin(g, w_out))
    t["G W_out^T (grad H)"] = timed(lambda: lin(g_out, w_out.t().contiguous()))
    t["H^T G_out (grad W_out)"] = best(
        {"onednn": lambda: lin(g.t(), g_out.t()), "mkl": lambda: torch.mm(g.t(), g_out)}
    )
    return t


def floor_seconds(t: dict[str, float], depth: int) -> float:
    """One epoch's products (train forward, backward, eval forward) of one model."""
    hid = max(depth - 2, 0)  # hidden-to-hidden layers
    total = 2 * t["X W1"] + t["X^T G (grad W1)"]
    total += (depth - 1) * (2 * t["A P, width 64"] + t["A^T G, width 64"])
    total += 2 * t["A P, width out"] + t["A^T G, width out"]
    total += hid * (2 * t["H W"] + t["G W^T (grad H)"] + t["H^T G (grad W)"])
    if depth > 1:
        total += 2 * t["H W_out"] + t["G W_out^T (grad H)"] + t["H^T G_out (grad W_out)"]
    return total


def kernel_table(data) -> None:
    """Times of the candidate kernels on this graph (min over repetitions)."""
    from torch_geometric.utils import scatter, spmm

    n = data.num_nodes
    a, _ = normalized_adjacency(data.edge_index, num_nodes=n)
    arrays = _fast._csr_arrays(a)
    coo = a.to_sparse_coo()
    row, col = coo.indices()
    val = coo.values()
    print(f"kernels on this graph ({torch.get_num_threads()} threads, min of 15, ms):")
    for width in (64, 768):
        h, b = torch.randn(n, width), torch.randn(width)
        hn, bn, zn = h.numpy(), b.numpy(), np.empty((n, width), np.float32)
        slope = np.full(width, 0.1, np.float32)
        raw = torch.randint(0, 256, (n * width // 8,), dtype=torch.uint8).numpy()
        cells = {
            "COO @": timed(lambda h=h: coo @ h),
            "CSR @ (torch.sparse.mm)": timed(lambda h=h: torch.sparse.mm(a, h)),
            "CSR addmm (+bias)": timed(lambda h=h, b=b: torch.addmm(b, a, h)),
            "pyg spmm(CSR)": timed(lambda h=h: spmm(a, h)),
            "gather+index_add_": timed(
                lambda h=h, w=width: torch.zeros(n, w).index_add_(0, row, h[col] * val[:, None])
            ),
            "gather+pyg scatter": timed(
                lambda h=h: scatter(h[col] * val[:, None], row, 0, dim_size=n, reduce="sum")
            ),
            "numba spmm": timed(lambda hn=hn, zn=zn: _kernels.spmm(*arrays, hn, zn, 0, n)),
            "numba fused +bias, leaky, dropout": timed(
                lambda hn=hn, zn=zn, bn=bn, slope=slope, raw=raw, w=width: _kernels.propagate(
                    *arrays,
                    hn,
                    bn,
                    slope,
                    raw,
                    1,
                    1,
                    np.float32(2),
                    w,
                    0,
                    True,
                    False,
                    zn,
                    zn,
                    0,
                    n,
                )
            ),
        }
        print(
            f"  A_hat @ H, width {width}: "
            + ", ".join(f"{k} {v * 1e3:.3f}" for k, v in cells.items())
        )
    lin = _fast._linear()
    h, g, w = torch.randn(n, 64), torch.randn(n, 64), torch.randn(64, 64)
    hn, gn, wn = h.numpy(), g.numpy(), w.t().contiguous().numpy()
    pn, gw = np.empty((n, 64), np.float32), np.empty((64, 64), np.float32)
    cells = {
        "H W, MKL mm": timed(lambda: h @ w),
        "H W, oneDNN": timed(lambda: lin(h, w)),
        "H W, numba matmul": timed(lambda: _kernels.matmul(hn, wn, pn, 0, n)),
        "H^T G, MKL mm": timed(lambda: torch.mm(h.t(), g)),
        "H^T G, oneDNN (strided)": timed(lambda: lin(h.t(), g.t())),
        "H^T G, numba grad_weight": timed(lambda: _kernels.grad_weight(hn, gn, gw, 0, n)),
    }
    print(
        "  dense [2708, 64] x [64, 64]: "
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


def gnnleaky_ms_per_epoch(
    data, dataset: str, params: dict, depth: int, dropout: float, epochs: int
) -> float:
    """One model through train_group (metrics off): (time of E+5 epochs - time of 5) / E,
    each the fastest of three runs after a garbage collection (a single pair of runs now
    and then gave a third less than the epochs take: the short run had paid for freeing
    the previous model)."""

    def run(e: int) -> float:
        cfg = RunConfig(
            dataset=dataset,
            dataset_params=tuple(params.items()),
            num_layers=depth,
            dropout=dropout,
            epochs=e,
            patience=None,
            metrics=(),
        )
        t = time.perf_counter()
        (res,) = train_group(data, [cfg])
        assert res.epochs_run == e
        return time.perf_counter() - t

    def fastest(e: int) -> float:
        times = []
        for _ in range(3):
            gc.collect()
            times.append(run(e))
        return min(times)

    run(2)  # warm-up
    return (fastest(epochs + 5) - fastest(5)) / epochs * 1e3


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
        "--kernels",
        action="store_true",
        help="only print the kernel measurements behind StackedGNN's choices",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    depths = (2, 8) if args.quick else (2, 8, 32, 64)
    epochs = 20 if args.quick else args.epochs
    single_depth = 8 if args.quick else 64

    data, dataset, params, label = load_graph()
    if args.kernels:
        kernel_table(data)
        return
    load0 = load_avg()
    print(
        f"sweep_speed on {label}: {data.num_nodes} nodes, {data.edge_index.size(1)} edges, "
        f"{data.num_features} features; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs ({platform.machine()}), "
        f"load average {load0:.1f} at start"
    )
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
    )
    runs = sweep.expand()
    print(
        f"grid: depths {list(depths)} x Leaky ReLU slopes {list(SLOPES)} x seeds [0, 1, 2] "
        f"= {len(runs)} runs, {epochs} epochs (patience 100), hidden 64, dropout 0.5, "
        f"lr 0.01, weight decay 5e-4"
    )

    # -- 1. gnnleaky's sweep ------------------------------------------------------------------
    groups: dict[tuple, list[RunConfig]] = defaultdict(list)
    for r in runs:
        groups[r.group_key].append(r)
    per_depth: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])  # [seconds, m-e]
    metric_time = [0.0]
    layer_metrics = spectral.layer_metrics

    def timed_metrics(*a, **kw):  # the trainer looks layer_metrics up at call time
        t = time.perf_counter()
        try:
            return layer_metrics(*a, **kw)
        finally:
            metric_time[0] += time.perf_counter() - t

    spectral.layer_metrics = timed_metrics
    start = time.perf_counter()
    failed = 0
    cache = GraphCache(data.edge_index, data.num_nodes, symmetrize=True)  # one per graph
    for group in groups.values():
        t = time.perf_counter()
        results = train_group(data, group, cache=cache)
        per_depth[group[0].num_layers][0] += time.perf_counter() - t
        per_depth[group[0].num_layers][1] += sum(r.epochs_run for r in results)
        failed += sum(r.status != "ok" for r in results)
        print(
            f"  depth {group[0].num_layers:>2}: {len(group)} runs in "
            f"{time.perf_counter() - t:6.1f} s, epochs run "
            f"{sorted(r.epochs_run for r in results)}",
            flush=True,
        )
    ours = time.perf_counter() - start
    spectral.layer_metrics = layer_metrics
    model_epochs = sum(v[1] for v in per_depth.values())
    rss = peak_rss_gib()
    print(
        f"gnnleaky sweep: train_group over {len(groups)} stacked groups of "
        f"{sorted({len(g) for g in groups.values()})} models, per-layer metrics ON "
        f"({', '.join(sweep.metrics)}; every layer, pre and post, at init and best epoch): "
        f"{int(model_epochs)} model-epochs in {ours:.1f} s -> "
        f"{model_epochs / ours:.1f} model-epochs/s ({failed} runs failed); of this, "
        f"{metric_time[0]:.1f} s in layer_metrics (incl. Cora's eigendecomposition), "
        f"{model_epochs / (ours - metric_time[0]):.1f} model-epochs/s without it"
    )
    print(f"peak resident memory of the grid run: {rss:.2f} GiB (target < 4 GiB)")

    # -- 1b. the same grid through `gnnleaky sweep --backend processes` -----------------------
    # twice: as the sweep runs by default (metrics on) and training only (metrics=[]),
    # which is the work the PyG loop does.
    ours_p: dict[str, float] = {}
    for label_p, cfg_p in (("metrics on", sweep), ("training only", sweep.replace(metrics=[]))):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            summary = run_sweep(cfg_p, Path(tmp) / "p.sqlite", backend="processes", root=None)
            ours_p[label_p] = time.perf_counter() - t
            stored = load(Path(tmp) / "p.sqlite").runs
        same = int(stored["epochs_run"].sum()) == int(model_epochs)
        print(
            f"the same grid through run_sweep(backend='processes'), {label_p}: "
            f"{torch.get_num_threads()} worker processes of one thread (each group in one chunk "
            f"per worker), {summary.trained} runs "
            f"({summary.failed} failed) in {ours_p[label_p]:.1f} s (process start-up and the "
            f"data load included) -> {model_epochs / ours_p[label_p]:.1f} model-epochs/s; "
            f"same epochs run as above: {same}"
        )

    # -- 2. PyG baseline, sampled -------------------------------------------------------------
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
        f"PyG GCN loop (Leaky ReLU, PyG defaults otherwise, same protocol, no metrics): timed on a "
        f"sample of the grid ({sampled} model-epochs: 1 seed x {len(SLOPES)} slopes x "
        f"{len(depths)} depths x {args.baseline_epochs + 1} epochs, first epoch of each "
        f"dropped) and scaled to the sweep's {int(model_epochs)} model-epochs: est. "
        f"{base:.0f} s -> {model_epochs / base:.2f} model-epochs/s"
    )
    train_only = ours - metric_time[0]
    print(
        "speed-up (model-epochs/s, gnnleaky / PyG; target >= 10x):\n"
        f"  training only, the PyG loop's work: {base / ours_p['training only']:.1f}x with the "
        f"processes backend, {base / train_only:.1f}x in one process (its time less the "
        "metrics' time)\n"
        f"  with the per-layer metrics the sweep records by default (PyG's loop has none): "
        f"{base / ours_p['metrics on']:.1f}x with the processes backend, {base / ours:.1f}x "
        "in one process"
    )

    # The floor: every product of an epoch alone, on one core, spread perfectly over the
    # cores. No implementation of the same computation can beat it, so PyG / floor is the
    # largest speed-up this machine allows.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    parts1 = product_times(data)
    torch.set_num_threads(threads)
    floor_grid = sum(floor_seconds(parts1, d) / threads * per_depth[d][1] for d in depths)
    print(
        f"floor of the grid (each model-epoch's products on one core, {threads} cores in "
        f"parallel, no overhead): {floor_grid:.1f} s -> the largest speed-up over PyG this "
        f"machine allows is {base / floor_grid:.1f}x; gnnleaky's grid is "
        f"{ours / floor_grid:.2f}x the floor in one process ({train_only / floor_grid:.2f}x "
        f"without the metrics), {ours_p['metrics on'] / floor_grid:.2f}x with the processes "
        f"backend ({ours_p['training only'] / floor_grid:.2f}x training only)"
    )
    print(
        f"with the per-layer metrics the sweep records counted at the time they took here "
        f"({metric_time[0]:.1f} s, mostly float64 projections on Cora's eigenvectors), the "
        f"largest speed-up is PyG / (floor + metrics) = {base / (floor_grid + metric_time[0]):.1f}x"
    )
    print("per depth: depth | gnnleaky ms/model-epoch | PyG ms/epoch | ratio | floor | PyG/floor")
    for d in depths:
        mine = per_depth[d][0] / per_depth[d][1] * 1e3
        fl = floor_seconds(parts1, d) / threads * 1e3
        print(
            f"  {d:>3} | {mine:9.1f} | {base_per_epoch[d] * 1e3:9.1f} | "
            f"{base_per_epoch[d] * 1e3 / mine:5.1f}x | {fl:6.1f} | "
            f"{base_per_epoch[d] * 1e3 / fl:5.1f}x"
        )

    # -- 3. one deep model ------------------------------------------------------------------
    pyg1 = {
        dropout: statistics.median(pyg_epoch_times(data, single_depth, 0.1, 0, 11, dropout)[1:])
        for dropout in (0.5, 0.0)
    }
    for th in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(th)
        parts = parts1 if th == 1 else product_times(data)
        floor = floor_seconds(parts, single_depth) * 1e3
        # the floor as it was before gnnleaky had GEMMs of its own: torch's libraries only
        lib_floor = floor_seconds(product_times(data, own_gemms=False), single_depth) * 1e3
        for dropout in (0.5, 0.0):
            ours1 = gnnleaky_ms_per_epoch(data, dataset, params, single_depth, dropout, 20)
            print(
                f"one {single_depth}-layer model, {th} thread(s), dropout {dropout}: gnnleaky "
                f"{ours1:.1f} ms/epoch, PyG ({threads} threads) {pyg1[dropout] * 1e3:.1f} "
                f"ms/epoch ({pyg1[dropout] * 1e3 / ours1:.1f}x, target >= 2x); floor on "
                f"{th} thread(s) {floor:.1f} ms/epoch (gnnleaky = {ours1 / floor:.2f}x the "
                f"floor, target <= 1.5x; {ours1 / lib_floor:.2f}x the {lib_floor:.1f} ms of "
                "the products with torch's oneDNN and MKL GEMMs)"
            )
        print(
            f"  floor on {th} thread(s) = one epoch's products (train forward, backward, eval "
            "forward), each timed alone with the fastest kernel (min of 15): "
            + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in parts.items())
        )
    torch.set_num_threads(threads)
    print(
        f"load average {load_avg():.1f} at the end; peak resident memory of the whole "
        f"script {peak_rss_gib():.2f} GiB"
    )


if __name__ == "__main__":
    main()
