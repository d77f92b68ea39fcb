"""Small seeded graphs shared by the tests."""

from __future__ import annotations

import torch
from torch_geometric.utils import to_undirected


def random_graph(
    n: int = 30,
    e: int = 120,
    f: int = 8,
    seed: int = 0,
    *,
    sparse: bool = False,
    undirected: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``[n, f]`` and ``e`` random edges (directed, with duplicates unless
    ``undirected``); with ``sparse`` about 5% of the features are non-zero (the CSR
    feature path of the engine)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g)
    if sparse:
        x = x * (torch.rand(n, f, generator=g) < 0.05)
    ei = torch.randint(0, n, (2, e), generator=g)
    if undirected:
        ei = to_undirected(ei, num_nodes=n)
    return x, ei
