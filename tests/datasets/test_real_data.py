"""Real datasets (skip, naming the files, when absent under $GNNLEAKY_DATA)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gnnleaky import datasets as gd


def need(name: str, split: str = "public") -> None:
    root = gd.data_root()
    files = gd.raw_files(name, root, split)
    missing = [p for p in files if not p.is_file()]
    if missing:
        expected = [str(p.relative_to(root)) for p in files]
        pytest.skip(f"{name} ({split}) missing under {root}: expected {expected}")


@pytest.mark.data
@pytest.mark.parametrize(
    ("name", "sizes", "train"),
    [
        ("cora", (2708, 10556, 1433, 7), 140),
        ("citeseer", (3327, 9104, 3703, 6), 120),
    ],
)
def test_planetoid_public(name, sizes, train):
    need(name)
    data = gd.load(name.capitalize())
    assert (data.num_nodes, data.num_edges, data.num_features, data.num_classes) == sizes
    assert data.train_mask.dtype == torch.bool and data.train_mask.shape == (sizes[0],)
    assert [int(data[k].sum()) for k in ("train_mask", "val_mask", "test_mask")] == [
        train,
        500,
        1000,
    ]
    assert data.name == name


@pytest.mark.data
@pytest.mark.parametrize("name", ["cora", "citeseer"])
def test_planetoid_geom_gcn(name):
    need(name, "geom-gcn")
    data = gd.load(name, split="geom-gcn")
    spec = gd.info(name)
    assert (data.num_nodes, data.num_edges) == (spec.nodes, spec.edges)
    for key in ("train_mask", "val_mask", "test_mask"):
        assert data[key].dtype == torch.bool and data[key].shape == (spec.nodes, 10)
    assert not (data.train_mask & data.test_mask).any()


@pytest.mark.data
@pytest.mark.parametrize(
    "name",
    ["cornell", "texas", "wisconsin", "chameleon", "squirrel", "actor", "minesweeper", "tolokers"],
)
def test_ten_split_datasets(name):
    need(name)
    data = gd.load(name)
    spec = gd.info(name)
    got = (data.num_nodes, data.num_edges, data.num_features, data.num_classes)
    assert got == (spec.nodes, spec.edges, spec.features, spec.classes)
    assert int(data.y.max()) + 1 == spec.classes
    for key in ("train_mask", "val_mask", "test_mask"):
        assert data[key].dtype == torch.bool and data[key].shape == (spec.nodes, 10)
    assert not (data.train_mask & data.val_mask).any()
    assert spec.metric == ("roc_auc" if name in ("minesweeper", "tolokers") else "accuracy")


@pytest.mark.data
@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("cora", "public"),
        ("cora", "geom-gcn"),
        ("texas", "public"),
        ("chameleon", "public"),
        ("actor", "public"),
        ("minesweeper", "public"),
    ],
)
def test_raw_file_lists_cover_pyg(name, split):
    """Our static file lists include every file the PyG class itself checks for."""
    import torch_geometric.datasets as pygd

    need(name, split)
    gd.load(name, split=split)  # processed now, so the classes below only read the cache
    root = gd.data_root()
    family = gd.info(name).family
    ds = {
        "planetoid": lambda: pygd.Planetoid(str(root / "Planetoid"), "Cora", split=split),
        "webkb": lambda: pygd.WebKB(str(root / "WebKB"), name),
        "wikipedia": lambda: pygd.WikipediaNetwork(str(root / "WikipediaNetwork"), name),
        "actor": lambda: pygd.Actor(str(root / "Actor")),
        "heterophilous": lambda: pygd.HeterophilousGraphDataset(
            str(root / "HeterophilousGraphDataset"), name
        ),
    }[family]()
    assert {Path(p) for p in ds.raw_paths} <= set(gd.raw_files(name, root, split))
