"""A user's own training loop: PyG's ``GCN`` against gnnleaky's layers, in one process.

The loop is PyG's usual one (forward, cross-entropy on the training nodes, backward, Adam,
an evaluation forward every epoch) with the same settings for every model: Cora, hidden
64, Leaky ReLU 0.2, dropout 0.5, lr 0.01, weight decay 5e-4. It times, per depth:

* ``pyg``: ``torch_geometric.nn.models.GCN``;
* ``gnnleaky``: ``gnnleaky.nn.GCN`` as imported (the one-line swap);
* ``accelerated``: ``gnnleaky.engine.accelerate(gnnleaky.nn.GCN(...))``;

and prints the median milliseconds per epoch and each one's speed-up over PyG; then PyG's
loop once more (``pyg after``), which shows whether the engine's thread handling slowed
the torch and PyG work that follows it in the process. Without
Cora under ``GNNLEAKY_DATA`` it uses a cSBM graph of Cora's size and says so.

Usage::

    GNNLEAKY_DATA=/path/to/data python benchmarks/perf/user_loop.py [--depths 2,64] [--epochs 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from machine import cpu_name, load_avg
from torch_geometric.nn.models import GCN as PyGGCN

from gnnleaky import datasets
from gnnleaky.engine import accelerate
from gnnleaky.nn import GCN


def load_graph():
    try:
        return datasets.load("cora"), "Cora"
    except FileNotFoundError:
        params = {"num_nodes": 2708, "num_classes": 7, "num_features": 1433, "seed": 0}
        return datasets.load("csbm", **params), "a cSBM graph of Cora's size (no Cora found)"


def epoch_ms(model, data, epochs: int) -> float:
    """Median ms per epoch of the usual loop (the first 5 epochs are warm-up)."""
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    mask = data.train_mask
    times = []
    for _ in range(epochs + 5):
        t = time.perf_counter()
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[mask], data.y[mask]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            model(data.x, data.edge_index)
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times[5:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depths", default="2,64", help="comma-separated depths (default 2,64)")
    ap.add_argument("--epochs", type=int, default=30, help="timed epochs per model")
    args = ap.parse_args()
    data, label = load_graph()
    print(
        f"user_loop on {label}: {data.num_nodes} nodes, {data.edge_index.size(1)} edges; "
        f"{cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {load_avg():.1f}"
    )
    kw = {"dropout": 0.5, "act": "leaky_relu", "act_kwargs": {"negative_slope": 0.2}}
    f, c = data.num_features, int(data.y.max()) + 1
    for depth in (int(d) for d in args.depths.split(",")):
        torch.manual_seed(0)
        pyg = PyGGCN(f, 64, depth, c, **kw)
        torch.manual_seed(0)
        ours = GCN(f, 64, depth, c, **kw)
        torch.manual_seed(0)
        fast = accelerate(GCN(f, 64, depth, c, **kw))
        ms = {name: epoch_ms(m, data, args.epochs) for name, m in
              (("pyg", pyg), ("gnnleaky", ours), ("accelerated", fast))}  # fmt: skip
        # PyG once more after the engine ran: its thread handling must not slow the rest
        torch.manual_seed(0)
        ms["pyg after"] = epoch_ms(PyGGCN(f, 64, depth, c, **kw), data, args.epochs)
        print(
            f"depth {depth:>3}: "
            + ", ".join(f"{k} {v:.1f} ms ({ms['pyg'] / v:.2f}x PyG)" for k, v in ms.items())
        )


if __name__ == "__main__":
    main()
