"""Test graphs and dense float64 references that do not use gnnleaky.spectral."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def random_graph(
    n: int = 40,
    m: int = 90,
    seed: int = 0,
    *,
    weighted: bool = True,
    loops: int = 3,
    isolated: int = 4,
) -> tuple[Tensor, Tensor | None]:
    """Undirected random multigraph with isolated nodes, self-loops and positive weights.

    The last ``isolated`` nodes have no edge; ``loops`` nodes carry a self-loop.
    """
    g = torch.Generator().manual_seed(seed)
    active = n - isolated
    r = torch.randint(0, active, (m,), generator=g)
    c = torch.randint(0, active, (m,), generator=g)
    keep = r != c
    r, c = r[keep], c[keep]
    w = torch.rand(r.numel(), generator=g, dtype=torch.float64) + 0.1
    lp = torch.randperm(active, generator=g)[:loops]
    lw = torch.rand(loops, generator=g, dtype=torch.float64) + 0.5
    edge_index = torch.stack([torch.cat([r, c, lp]), torch.cat([c, r, lp])])
    weight = torch.cat([w, w, lw])
    perm = torch.randperm(edge_index.size(1), generator=g)
    edge_index, weight = edge_index[:, perm], weight[perm]
    return edge_index, (weight if weighted else None)


def path_graph(n: int) -> Tensor:
    src = torch.arange(n - 1)
    return torch.stack([torch.cat([src, src + 1]), torch.cat([src + 1, src])])


def complete_bipartite(a: int, b: int) -> Tensor:
    left = torch.arange(a).repeat_interleave(b)
    right = a + torch.arange(b).repeat(a)
    return torch.stack([torch.cat([left, right]), torch.cat([right, left])])


def dense_adjacency(edge_index: Tensor, n: int, edge_weight: Tensor | None = None) -> np.ndarray:
    a = np.zeros((n, n))
    w = np.ones(edge_index.size(1)) if edge_weight is None else edge_weight.double().numpy()
    np.add.at(a, (edge_index[0].numpy(), edge_index[1].numpy()), w)
    return a


def dense_operator(
    edge_index: Tensor,
    n: int,
    edge_weight: Tensor | None = None,
    normalization: str | None = None,
    add_self_loops: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(L, D) as documented: self-loops ignored unless added GCN-style; D^-1/2 := 0 if d = 0."""
    a = dense_adjacency(edge_index, n, edge_weight)
    loops = np.diag(a).copy()
    has_loop = np.zeros(n, bool)
    has_loop[edge_index[0][edge_index[0] == edge_index[1]].numpy()] = True
    a0 = a - np.diag(loops)
    a1 = a0 + np.diag(np.where(has_loop, loops, 1.0)) if add_self_loops else a0
    d = a1.sum(1)
    if normalization == "sym":
        dis = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 0.0)
        lap = np.eye(n) - dis[:, None] * a1 * dis[None, :]
    else:
        lap = np.diag(a0.sum(1)) - a0
    return lap, np.diag(d)


def quad(x: Tensor, lap: np.ndarray) -> float:
    xn = x.double().numpy()
    return float(np.trace(xn.T @ lap @ xn))
