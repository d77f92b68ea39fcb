"""Absent data: clear errors naming every file, nothing downloaded."""

from __future__ import annotations

import pytest

from gnnleaky import datasets as gd
from gnnleaky.datasets.family import offline
from tests.datasets.formats import write_planetoid


@pytest.mark.parametrize(
    "name",
    [
        "cora",
        "pubmed",
        "texas",
        "chameleon",
        "actor",
        "roman_empire",
        "ogbn-arxiv",
        "ogbn-products",
    ],
)
def test_absent_data_raises_with_files(tmp_path, name):
    with pytest.raises(gd.DatasetNotFoundError) as info:
        gd.load(name, root=tmp_path)
    err = info.value
    assert isinstance(err, FileNotFoundError)
    msg = str(err)
    assert repr(gd.info(name).name) in msg and str(tmp_path) in msg
    for path in gd.raw_files(name, tmp_path):
        assert str(path) in msg
    assert err.missing == err.expected == gd.raw_files(name, tmp_path)
    assert not any(tmp_path.iterdir()), "nothing may be created for an absent dataset"


def test_partially_present_lists_only_missing(tmp_path):
    fx = write_planetoid(tmp_path)
    with pytest.raises(gd.DatasetNotFoundError) as info:
        gd.load("pubmed", root=tmp_path, split="geom-gcn")
    assert "pubmed_split_0.6_0.2_0.npz" in str(info.value)
    (fx["raw"] / "ind.pubmed.ally").unlink()
    with pytest.raises(gd.DatasetNotFoundError) as info:
        gd.load("pubmed", root=tmp_path)
    assert [p.name for p in info.value.missing] == ["ind.pubmed.ally"]


def test_offline_classes_refuse_to_download(tmp_path):
    from torch_geometric.datasets import WebKB

    with pytest.raises(gd.DatasetNotFoundError, match=r"out1_graph_edges\.txt"):
        offline(WebKB)(str(tmp_path / "WebKB"), "texas")
