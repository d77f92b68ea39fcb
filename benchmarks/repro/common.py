"""What the reproduction scripts share: the Planetoid graph as the original repositories build
it, the original weight initialisation, per-seed records and their summary.

Both original repositories (chennnM/GCNII ``utils.py``, DropEdge/DropEdge ``src/utils.py`` and
``src/normalization.py``) read the Planetoid files of Kipf & Welling, row-normalise the
features and propagate with the augmented normalised adjacency
:math:`\\hat A = (D + I)^{-1/2}(A + I)(D + I)^{-1/2}`, where :math:`A` is the raw graph *with* the
self-loops the raw files list (CiteSeer lists 124, Cora none), so those nodes get a diagonal of
2 in :math:`A + I`. PyG's ``Planetoid`` drops those self-loops and ``gcn_norm`` then adds one,
so by default :func:`planetoid` puts them back to build the original operator.
"""

from __future__ import annotations

import math
import os
import pickle
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch_geometric.utils import coalesce, scatter

from gnnleaky.datasets import data_root, load

REPO = Path(__file__).resolve().parents[2]
_RAW = {"cora": ("Cora", "cora"), "citeseer": ("CiteSeer", "citeseer")}


def raw_self_loops(name: str) -> Tensor:
    """Nodes whose entry in the raw ``ind.<name>.graph`` file lists the node itself."""
    folder, prefix = _RAW[name]
    path = data_root() / "Planetoid" / folder / "raw" / f"ind.{prefix}.graph"
    with open(path, "rb") as f:
        graph = pickle.load(f, encoding="latin1")  # the Planetoid format is a pickled dict
    return torch.tensor(sorted(k for k, vs in graph.items() if k in vs), dtype=torch.long)


def augmented_operator(
    edge_index: Tensor, num_nodes: int, loops: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    r""":math:`(D + I)^{-1/2}(A + I)(D + I)^{-1/2}` as ``(edge_index, edge_weight)``, with the
    raw self-loops ``loops`` counted in :math:`A` (diagonal 2 there)."""
    nodes = torch.arange(num_nodes)
    parts = [edge_index, torch.stack([nodes, nodes])]
    if loops is not None and loops.numel():
        parts.append(torch.stack([loops, loops]))
    ei = torch.cat(parts, dim=1)
    ei, w = coalesce(ei, torch.ones(ei.size(1)), num_nodes, reduce="sum")
    deg = scatter(w, ei[0], dim=0, dim_size=num_nodes, reduce="sum")
    inv = deg.pow(-0.5)
    return ei, inv[ei[0]] * w * inv[ei[1]]


def planetoid(name: str, *, original_loops: bool = True) -> dict[str, Any]:
    """Public split of ``name`` with row-normalised features and the original operator.

    ``original_loops=False`` uses PyG's graph (raw self-loops dropped) instead.
    """
    data = load(name)
    x = data.x / data.x.sum(1, keepdim=True).clamp(min=1.0)  # row-normalise; zero rows stay 0
    loops = raw_self_loops(name) if original_loops else None
    edge_index, edge_weight = augmented_operator(data.edge_index, data.num_nodes, loops)
    idx = {k: data[f"{k}_mask"].nonzero().view(-1) for k in ("train", "val", "test")}
    return {
        "x": x,
        "edge_index": edge_index,
        "edge_weight": edge_weight,
        "y": data.y,
        "idx": idx,
        "num_classes": int(data.num_classes),
        "raw_self_loops": 0 if loops is None else int(loops.numel()),
    }


@torch.no_grad()
def uniform_fan_out_(weight: Tensor, bias: Tensor | None = None) -> None:
    r"""The original repositories' init of a graph convolution: weight and bias
    :math:`\mathcal U(-1/\sqrt{F_{out}}, 1/\sqrt{F_{out}})`. ``weight`` is in torch's
    ``[out, in]`` layout (PyG's ``Linear``) or square (GCN2Conv)."""
    bound = 1.0 / math.sqrt(weight.size(0) if weight.dim() == 2 else weight.numel())
    weight.uniform_(-bound, bound)
    if bias is not None:
        bias.uniform_(-bound, bound)


def accuracy(out: Tensor, y: Tensor, index: Tensor) -> float:
    return (out[index].argmax(-1) == y[index]).float().mean().item()


def seeds_arg(text: str) -> list[int]:
    """``"0-4"`` or ``"0,1,7"`` to a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return seeds


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value), in percent."""
    v = [100.0 * a for a in values]
    return statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0


def environment() -> dict[str, Any]:
    import torch_geometric

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        sha = None
    return {
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "python": platform.python_version(),
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "git_sha": sha,
        "data_root": str(data_root()),
        "GNNLEAKY_DATA": os.environ.get("GNNLEAKY_DATA"),
    }
