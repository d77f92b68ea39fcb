"""Speed and memory of gnnleaky.spectral on a large synthetic graph, and the probe's overhead.

Prints seconds for ``dirichlet_energy`` (cold: building the graph cache included; warm:
cache reused), its ratio to one sparse-dense product ``A @ X`` on the same data (target <= 2),
KPM with ``--moments`` Chebyshev moments, the overhead of ``LayerProbe`` over a plain forward of a
64-layer LeakyGNN on Cora (target <= 1.25x), and the peak resident memory.

    python benchmarks/perf/spectral.py                # 1e6 nodes, 1e7 edges, 64 features
    python benchmarks/perf/spectral.py --quick        # 1e5 nodes, 1e6 edges
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from gnnleaky.nn import LeakyGNN
from gnnleaky.spectral import (
    GraphCache,
    LayerProbe,
    dirichlet_energy,
    rayleigh_quotient,
    spectral_density,
)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def random_undirected(num_nodes: int, num_edges: int, seed: int) -> torch.Tensor:
    """``num_edges`` directed entries: ``num_edges / 2`` random pairs in both directions."""
    g = torch.Generator().manual_seed(seed)
    half = num_edges // 2
    src = torch.randint(0, num_nodes, (half,), generator=g)
    dst = torch.randint(0, num_nodes - 1, (half,), generator=g)
    dst = dst + (dst >= src).long()  # no self-loops
    return torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def bench_large(args: argparse.Namespace) -> None:
    n, e, c = args.nodes, args.edges, args.features
    print(f"graph: {n:,} nodes, {e:,} directed edges ({e // 2:,} undirected), {c} float32 features")
    # first-call costs of the libraries (lazy imports, kernels) are not the graph's
    tiny = random_undirected(100, 400, 0)
    spectral_density(torch.randn(100, 4), tiny, num_moments=4)
    rayleigh_quotient(torch.randn(100, 4), tiny)

    t, edge_index = timed(random_undirected, n, e, args.seed)
    x = torch.randn(n, c, generator=torch.Generator().manual_seed(args.seed + 1))
    print(f"  generate                               {t:8.2f} s")

    def build_adjacency():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            a = torch.sparse_coo_tensor(edge_index, torch.ones(e), (n, n)).coalesce()
            return a.to_sparse_csr()

    t, adj = timed(build_adjacency)
    print(f"  baseline: build CSR A (once)           {t:8.2f} s")
    t, _ = timed(dirichlet_energy, x, edge_index)
    print(f"  dirichlet_energy, cold (builds cache)  {t:8.2f} s")
    t, cache = timed(GraphCache, edge_index, n)
    print(f"  GraphCache alone (checks, pairs)       {t:8.2f} s")

    calls = {
        "spmm": lambda: torch.sparse.mm(adj, x),
        "energy": lambda: dirichlet_energy(x, edge_index, cache=cache),
        "sym": lambda: rayleigh_quotient(x, edge_index, cache=cache),
    }
    walls: dict[str, list[float]] = {key: [] for key in calls}
    cpus: dict[str, list[float]] = {key: [] for key in calls}
    for fn in calls.values():
        fn()
    for _ in range(args.repeats):  # interleaved, so load changes hit all alike
        for key, fn in calls.items():
            w, c0 = time.perf_counter(), time.process_time()
            fn()
            walls[key].append(time.perf_counter() - w)
            cpus[key].append(time.process_time() - c0)
    labels = {
        "spmm": "one SpMM A @ X (torch CSR, float32)",
        "energy": "dirichlet_energy, warm (cache)",
        "sym": "rayleigh_quotient 'sym', warm",
    }
    for key, label in labels.items():
        print(
            f"  {label:37s}  {min(walls[key]):8.2f} s  (CPU {min(cpus[key]):.2f} s; "
            f"min of {args.repeats})"
        )
    wall_ratio = statistics.median(a / b for a, b in zip(walls["energy"], walls["spmm"]))
    cpu_ratio = statistics.median(a / b for a, b in zip(cpus["energy"], cpus["spmm"]))
    print(
        f"  ratio dirichlet_energy / SpMM          {wall_ratio:8.2f}    wall, "
        f"{cpu_ratio:.2f} CPU time (medians of paired runs; target <= 2)"
    )

    t, _ = timed(cache.chebyshev_operator, "sym", False, torch.float64)
    print(f"  KPM operator (float64 CSR, once)       {t:8.2f} s")
    c0 = time.process_time()
    t, sd = timed(spectral_density, x, edge_index, num_moments=args.moments, cache=cache)
    print(
        f"  KPM spectral_density K={args.moments:<3d} (float64) {t:8.2f} s  "
        f"(CPU {time.process_time() - c0:.1f} s; {(args.moments + 1) // 2} SpMMs; "
        f"high-frequency share {float(sd.high_frequency_ratio(1.0)):.4f})"
    )
    print(f"  peak RSS so far                        {peak_rss_gib():8.2f} GiB")


def load_cora():
    try:
        from gnnleaky import datasets

        data = datasets.load("cora")
        return data.x, data.edge_index, "Cora"
    except (FileNotFoundError, ImportError) as err:
        print(f"  (Cora unavailable: {err}; using a random graph of Cora's size)")
        g = torch.Generator().manual_seed(0)
        return (
            torch.rand(2708, 1433, generator=g).round(),
            random_undirected(2708, 10556, 0),
            "random Cora-sized graph",
        )


def bench_probe(args: argparse.Namespace) -> None:
    x, edge_index, name = load_cora()
    layers = args.probe_layers
    torch.manual_seed(args.seed)
    model = LeakyGNN(x.size(1), args.probe_hidden, layers, 7, act="leaky_relu").eval()
    print(
        f"probe: LeakyGNN({x.size(1)}, {args.probe_hidden}, num_layers={layers}, "
        f"out_channels=7) on {name}, eval, no_grad; paired runs, median of "
        f"{args.probe_repeats}"
    )

    def forward():
        model(x, edge_index)

    with torch.no_grad():
        for metrics, stage in (
            (["dirichlet", "norm"], "both"),
            (["dirichlet", "norm"], "post"),
            (["norm"], "both"),
        ):
            probe = LayerProbe(model, metrics=metrics, stage=stage)
            with probe:
                forward()  # builds the probe's graph cache once
            wall, cpu = [], []
            for _ in range(args.probe_repeats):  # paired, so load changes hit both alike
                w0, c0 = time.perf_counter(), time.process_time()
                forward()
                w1, c1 = time.perf_counter(), time.process_time()
                with probe:
                    forward()
                w2, c2 = time.perf_counter(), time.process_time()
                probe.clear()
                wall.append(((w2 - w1) / (w1 - w0), w1 - w0, w2 - w1))
                cpu.append((c2 - c1) / max(c1 - c0, 1e-9))
            records = (
                len(probe.records) if probe.records else (layers * (2 if stage == "both" else 1))
            )
            print(
                f"  metrics {'+'.join(metrics):15s} stage={stage:4s}: plain "
                f"{statistics.median(w[1] for w in wall) * 1e3:7.1f} ms, probed "
                f"{statistics.median(w[2] for w in wall) * 1e3:7.1f} ms, overhead "
                f"{statistics.median(w[0] for w in wall):5.2f}x wall, "
                f"{statistics.median(cpu):5.2f}x CPU time  ({records} records/forward; "
                f"target <= 1.25x)"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--moments", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe-layers", type=int, default=64)
    parser.add_argument("--probe-hidden", type=int, default=64)
    parser.add_argument("--probe-repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )
    parser.add_argument("--quick", action="store_true", help="1e5 nodes, 1e6 edges")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-probe", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.edges = 100_000, 1_000_000
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.skip_probe:
        bench_probe(args)
    if not args.skip_large:
        bench_large(args)
    print(f"peak RSS                                 {peak_rss_gib():8.2f} GiB")


if __name__ == "__main__":
    main()
