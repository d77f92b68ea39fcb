"""Fixtures of the layer tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def get_dataset():
    """PyG's test fixture of the same name, reading the local data root (never the
    network): ``get_dataset(name="Cora")`` is the Planetoid dataset, or a skip."""
    from torch_geometric.datasets import Planetoid

    from gnnleaky import datasets
    from tests.conftest import load_or_skip

    def get(name: str):
        load_or_skip(name.lower())  # skips with a reason when the raw files are absent
        return Planetoid(str(datasets.data_root() / "Planetoid"), name)

    return get
