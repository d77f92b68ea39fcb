"""Small graphs shared by the analysis tests (generated offline, seeded)."""

from __future__ import annotations

import pytest
import torch

from gnnleaky.datasets import load


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    """One intra-op thread while this package runs (restored after).

    On a loaded 2-core machine torch's thread pool oversubscribes: training a small
    GCN for 30 epochs took 17 s with 2 threads and 0.1 s with one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="package")
def csbm():
    """A 200-node two-class cSBM with one split (1-D masks)."""
    return load(
        "csbm",
        num_nodes=200,
        avg_degree=6,
        homophily=0.8,
        snr=1.5,
        num_features=8,
        num_splits=1,
        seed=0,
    )
