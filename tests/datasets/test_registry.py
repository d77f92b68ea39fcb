"""Registry, names, data root, raw-file lists and list_datasets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gnnleaky import datasets as gd
from gnnleaky.datasets.planetoid import PLANETOID_PARTS
from gnnleaky.datasets.registry import OFFICIAL_METRICS, TASKS
from tests.datasets.formats import write_geom_gcn


def test_registry_is_consistent():
    for name, spec in gd.DATASETS.items():
        assert spec.name == name
        assert spec.family in gd.FAMILIES
        assert spec.metric in OFFICIAL_METRICS and spec.task in TASKS
        assert spec.splits[0] == "public"
        assert spec.nodes > 0 and spec.edges > 0 and spec.features > 0 and spec.classes > 0
        if spec.task == "binary":
            assert spec.metric == "roc_auc" and spec.classes == 2
    for name in ("minesweeper", "tolokers", "questions", "ogbn-proteins"):
        assert gd.info(name).metric == "roc_auc"
    for name in ("cora", "roman_empire", "amazon_ratings", "chameleon", "ogbn-arxiv"):
        assert gd.info(name).metric == "accuracy"


def test_registry_sizes_are_the_published_ones():
    """What load() verifies: nodes, edge_index columns and features, as published (OGB lists
    an undirected edge once; edge_index holds it in both directions)."""
    published = {
        "pubmed": (19717, 88648, 500),  # PyG's statistics
        "ogbn-products": (2449029, 2 * 61859140, 100),
        "ogbn-proteins": (132534, 2 * 39561252, 8),
    }
    for name, sizes in published.items():
        spec = gd.info(name)
        assert (spec.nodes, spec.edges, spec.features) == sizes, name
    # ogbn-arxiv: 1166243 directed edges, made undirected (reciprocal pairs merged)
    arxiv = gd.info("ogbn-arxiv")
    assert arxiv.nodes == 169343 and 1166243 < arxiv.edges <= 2 * 1166243
    assert gd.num_splits("ogbn-arxiv") == 1 and gd.num_splits("roman_empire") == 10


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("Cora", "cora"),
        ("CITESEER", "citeseer"),
        ("PubMed", "pubmed"),
        ("roman-empire", "roman_empire"),
        ("Roman_Empire", "roman_empire"),
        ("amazon-ratings", "amazon_ratings"),
        ("ogbn-arxiv", "ogbn-arxiv"),
        ("ogbn_arxiv", "ogbn-arxiv"),
        ("arxiv", "ogbn-arxiv"),
        ("OGBN-Products", "ogbn-products"),
        ("film", "actor"),
        ("cSBM", "csbm"),
    ],
)
def test_names_are_case_and_separator_insensitive(alias, canonical):
    assert gd.info(alias).name == canonical


def test_unknown_name_lists_supported_names():
    with pytest.raises(ValueError, match="name='coraa'") as err:
        gd.load("coraa")
    for name in ("cora", "roman_empire", "ogbn-arxiv", "csbm"):
        assert name in str(err.value)


def test_bad_split_and_kwargs_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"split='geom-gcn'.*'public'"):
        gd.load("minesweeper", root=tmp_path, split="geom-gcn")
    with pytest.raises(ValueError, match=r"split='random'.*'public', 'full', 'geom-gcn'"):
        gd.load("cora", root=tmp_path, split="random")
    with pytest.raises(TypeError, match=r"num_nodes.*accepted: force_reload"):
        gd.load("cora", root=tmp_path, num_nodes=3)
    with pytest.raises(TypeError, match="bogus"):
        gd.load("csbm", bogus=1)


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(gd.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert gd.data_root() == Path("datasets")
    monkeypatch.setenv(gd.ENV_VAR, str(tmp_path / "env"))
    assert gd.data_root() == tmp_path / "env"
    assert gd.data_root(tmp_path / "arg") == tmp_path / "arg"
    with pytest.raises(gd.DatasetNotFoundError) as info:
        gd.load("texas")
    assert info.value.root == tmp_path / "env"


def test_raw_files_layout(tmp_path):
    assert [p.relative_to(tmp_path).as_posix() for p in gd.raw_files("Cora", tmp_path)] == [
        f"Planetoid/Cora/raw/ind.cora.{s}" for s in PLANETOID_PARTS
    ]
    geom = gd.raw_files("cora", tmp_path, split="geom-gcn")
    assert geom[0].parent == tmp_path / "Planetoid" / "Cora" / "geom-gcn" / "raw"
    assert geom[-1].name == "cora_split_0.6_0.2_9.npz" and len(geom) == 18
    assert gd.raw_files("squirrel", tmp_path)[0].parent == (
        tmp_path / "WikipediaNetwork" / "squirrel" / "geom_gcn" / "raw"
    )
    assert gd.raw_files("actor", tmp_path)[-1] == tmp_path / "Actor/raw/film_split_0.6_0.2_9.npz"
    assert gd.raw_files("roman-empire", tmp_path) == [
        tmp_path / "HeterophilousGraphDataset/roman_empire/raw/roman_empire.npz"
    ]
    arxiv = {p.relative_to(tmp_path).as_posix() for p in gd.raw_files("ogbn-arxiv", tmp_path)}
    assert {
        "ogb/ogbn_arxiv/RELEASE_v1.txt",
        "ogb/ogbn_arxiv/raw/edge.csv.gz",
        "ogb/ogbn_arxiv/raw/node_year.csv.gz",
        "ogb/ogbn_arxiv/split/time/valid.csv.gz",
    } <= arxiv
    assert gd.raw_files("csbm", tmp_path) == []


def test_list_datasets(tmp_path):
    write_geom_gcn(tmp_path / "WebKB" / "cornell" / "raw", "cornell")
    table = gd.list_datasets(root=tmp_path)
    assert isinstance(table, pd.DataFrame)
    assert {"name", "family", "nodes", "edges", "features", "classes", "metric", "status"} <= set(
        table.columns
    )
    assert list(table.name) == list(gd.DATASETS)
    status = dict(zip(table.name, table.status))
    assert status["cornell"] == "present" and status["csbm"] == "present"
    assert status["cora"] == "absent" and status["ogbn-arxiv"] == "absent"
    assert set(status.values()) == {"present", "absent"}
    row = table.set_index("name").loc["cora"]
    assert (row.nodes, row.edges, row.features, row.classes) == (2708, 10556, 1433, 7)
    assert table.set_index("name").loc["tolokers", "metric"] == "roc_auc"
