"""Full-batch training cost against graph size: seconds per epoch and peak memory vs edges.

Trains a 2-layer and a 16-layer GCN with Leaky ReLU 0.2 on cSBM graphs of growing size
(average degree 15, 128 features), one full-batch epoch = forward + backward + Adam step,
and prints seconds per epoch and peak resident memory against the number of (directed)
edges, with the log-log growth exponent (1.0 = linear). Seconds per epoch are the median of
the timed epochs (and their minimum, the least disturbed by other load on the machine).

The model is, by default, one model of the sweep engine
(:class:`gnnleaky.nn.stacked.StackedGNN` with K=1: the normalized adjacency is a cached CSR
matrix and each layer one fused sparse pass of its fast CPU path); ``--model leaky`` trains
``LeakyGNN(cached=True)`` instead, whose PyG message passing gathers an ``[E, hidden]``
message tensor per layer (slower, and that transient dominates its memory).

Each (graph, depth) case runs in a fresh subprocess so that its peak memory is its own;
the peak is the process high-water mark (``VmHWM``) reset just before training, so it
covers training only; ``graph`` is the resident memory of the graph and model before it.

Usage::

    python benchmarks/perf/scale.py                    # 1e4, 1e5, 1e6 nodes; depths 2, 16
    python benchmarks/perf/scale.py --quick            # 1e3, 1e4, 1e5 nodes
    python benchmarks/perf/scale.py --sizes 100000 --degrees 15,60 --depths 2,16
    python benchmarks/perf/scale.py --json results/scale.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

GIB = 1024**3
REPO = Path(__file__).resolve().parents[2]


def _rss_bytes(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the peak-RSS high-water mark to the current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_case(
    num_nodes: int,
    depth: int,
    *,
    avg_degree: float,
    num_features: int,
    hidden: int,
    epochs: int,
    warmup: int,
    seed: int,
    model: str = "stacked",
) -> dict:
    """Train one (graph size, depth) case in this process and measure it."""
    import torch
    import torch.nn.functional as F

    from gnnleaky.datasets import make_csbm
    from gnnleaky.engine import StackedGNN
    from gnnleaky.nn import LeakyGNN

    t0 = time.perf_counter()
    data = make_csbm(
        num_nodes=num_nodes,
        num_classes=4,
        avg_degree=avg_degree,
        homophily=0.8,
        snr=1.0,
        num_features=num_features,
        seed=seed,
        num_splits=1,
    )
    gen_s = time.perf_counter() - t0
    x, edge_index, y, mask = data.x, data.edge_index, data.y, data.train_mask
    kw = {"dropout": 0.5, "act": "leaky_relu", "act_kwargs": {"negative_slope": 0.2}}
    if model == "stacked":  # one model of the stacked engine: CSR products
        net: torch.nn.Module = StackedGNN(num_features, hidden, depth, 4, seeds=[seed], **kw)
    else:  # LeakyGNN: PyG gather/scatter message passing, adjacency normalized once
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            net = LeakyGNN(num_features, hidden, depth, 4, cached=True, **kw)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)

    def epoch() -> float:
        opt.zero_grad(set_to_none=True)
        out = net(x, edge_index)
        out = out[0] if model == "stacked" else out
        loss = F.cross_entropy(out[mask], y[mask])
        loss.backward()
        opt.step()
        return float(loss)

    net.train()
    graph_rss = _rss_bytes("VmRSS")
    peak_reset = _reset_peak()
    for _ in range(warmup):
        epoch()
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        loss = epoch()
        times.append(time.perf_counter() - t)
    peak = _rss_bytes("VmHWM") if peak_reset else None
    if peak is None:  # no /proc: the lifetime peak (includes graph generation)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "num_nodes": num_nodes,
        "num_edges": int(edge_index.size(1)),
        "depth": depth,
        "avg_degree": avg_degree,
        "num_features": num_features,
        "hidden": hidden,
        "s_per_epoch": sorted(times)[len(times) // 2],
        "s_per_epoch_min": min(times),
        "peak_rss": peak,
        "graph_rss": graph_rss,
        "generate_s": gen_s,
        "loss": loss,
        "threads": torch.get_num_threads(),
        "peak_is_training_only": peak_reset,
        "model": model,
    }


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (the growth exponent)."""
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sxx if sxx > 0 else math.nan


def _ints(text: str) -> list[int]:
    return [int(float(t)) for t in text.replace(",", " ").split()]


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.replace(",", " ").split()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sizes",
        type=_ints,
        default=[10**4, 10**5, 10**6],
        help="numbers of nodes (default: 1e4,1e5,1e6)",
    )
    p.add_argument("--quick", action="store_true", help="sizes 1e3,1e4,1e5")
    p.add_argument("--depths", type=_ints, default=[2, 16])
    p.add_argument("--degrees", type=_floats, default=[15.0], help="average degrees")
    p.add_argument(
        "--model",
        choices=["stacked", "leaky"],
        default="stacked",
        help="stacked: StackedGNN with K=1 (CSR sparse products; the default, "
        "faster and lighter); leaky: LeakyGNN(cached=True) (PyG gather/scatter)",
    )
    p.add_argument("--features", type=int, default=128)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per case")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per case")
    p.add_argument(
        "--mem-limit",
        type=float,
        default=None,
        help="GiB of address space per case (RLIMIT_AS): a case that needs more "
        "fails with an out-of-memory error instead of pushing the machine into "
        "swap or the OOM killer",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per case (default: torch's choice; 1 is steadier on a busy machine)",
    )
    p.add_argument("--json", help="also write all measurements to this JSON file")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = p.parse_args(argv)
    common = {
        "num_features": args.features,
        "hidden": args.hidden,
        "epochs": args.epochs,
        "warmup": args.warmup,
        "seed": args.seed,
        "model": args.model,
    }

    if args.case:
        if args.mem_limit:
            limit = int(args.mem_limit * GIB)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        n, depth, degree = args.case.split(":")
        print(json.dumps(run_case(int(n), int(depth), avg_degree=float(degree), **common)))
        return 0

    sizes = [10**3, 10**4, 10**5] if args.quick else args.sizes
    import torch

    name = "StackedGNN(K=1" if args.model == "stacked" else "LeakyGNN(cached=True"
    print(
        f"gnnleaky scale benchmark: {name}, conv='gcn', act='leaky_relu'), "
        f"hidden {args.hidden}, {args.features} features, full batch, Adam; "
        f"{args.threads or torch.get_num_threads()} threads; torch {torch.__version__}"
    )
    print(
        f"{'nodes':>9} {'edges':>11} {'deg':>4} {'depth':>5} {'s/epoch':>9} {'(min)':>8} "
        f"{'peak GiB':>9} {'graph GiB':>9} {'B/edge':>8}"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    rows = []
    for degree in args.degrees:
        for n in sizes:
            for depth in args.depths:
                cmd = [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--case",
                    f"{n}:{depth}:{degree}",
                    "--features",
                    str(args.features),
                    "--hidden",
                    str(args.hidden),
                    "--epochs",
                    str(args.epochs),
                    "--warmup",
                    str(args.warmup),
                    "--seed",
                    str(args.seed),
                    "--model",
                    args.model,
                ]
                if args.mem_limit:
                    cmd += ["--mem-limit", str(args.mem_limit)]
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                try:
                    proc = subprocess.run(
                        cmd, capture_output=True, text=True, timeout=args.timeout, env=env
                    )
                except subprocess.TimeoutExpired:
                    print(f"{n:>9} {'':>11} {degree:>4g} {depth:>5} timed out")
                    continue
                if proc.returncode != 0:
                    tail = proc.stderr.strip().splitlines()[-1:] or [f"rc {proc.returncode}"]
                    print(f"{n:>9} {'':>11} {degree:>4g} {depth:>5} failed: {tail[0]}")
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.append(r)
                extra = r["peak_rss"] - (r["graph_rss"] or 0)
                print(
                    f"{r['num_nodes']:>9} {r['num_edges']:>11} {degree:>4g} {depth:>5} "
                    f"{r['s_per_epoch']:>9.3f} {r['s_per_epoch_min']:>8.3f} "
                    f"{r['peak_rss'] / GIB:>9.2f} "
                    f"{(r['graph_rss'] or 0) / GIB:>9.2f} {extra / r['num_edges']:>8.0f}",
                    flush=True,
                )
    print("growth exponents (log-log slope against edges; 1.0 = linear):")
    for degree in args.degrees:
        for depth in args.depths:
            sel = [r for r in rows if r["depth"] == depth and r["avg_degree"] == degree]
            if len(sel) < 2:
                continue
            e = [r["num_edges"] for r in sel]
            t = slope(e, [r["s_per_epoch"] for r in sel])
            m = slope(e, [max(r["peak_rss"] - (r["graph_rss"] or 0), 1) for r in sel])
            print(
                f"  depth {depth:>3}, degree {degree:g}: time {t:.2f}, training memory {m:.2f} "
                f"({sel[0]['num_edges']}..{sel[-1]['num_edges']} edges)"
            )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
