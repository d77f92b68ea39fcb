"""Shared fixtures: dataset access that skips with a reason when data is absent."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_seed():
    """Each test starts from the same torch seed (tests that need others pass generators)."""
    torch.manual_seed(0)
    yield


def load_or_skip(name: str, **kwargs):
    """Load a dataset through gnnleaky.datasets, or skip saying what is missing where."""
    from gnnleaky import datasets

    try:
        return datasets.load(name, **kwargs)
    except FileNotFoundError as err:  # DatasetNotFoundError names root and files
        root = os.environ.get("GNNLEAKY_DATA", "./datasets")
        pytest.skip(f"dataset {name!r} not available (GNNLEAKY_DATA={root}): {err}")
