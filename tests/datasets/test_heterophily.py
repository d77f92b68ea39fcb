"""The geom-gcn text format (the WebKB loading path) and text/npz corruption."""

from __future__ import annotations

import pytest
import torch

from gnnleaky import datasets as gd
from tests.datasets.formats import edge_set, raw_snapshot, truncate, write_geom_gcn


def test_webkb_fixture_loads(tmp_path):
    fx = write_geom_gcn(tmp_path / "WebKB" / "cornell" / "raw", "cornell")
    data = gd.load("Cornell", root=tmp_path, split="geom-gcn", verify=False)
    assert data.name == "cornell" and data.num_classes == 5 and data.num_nodes == 30
    assert torch.equal(data.x, torch.from_numpy(fx["x"]).float())
    assert torch.equal(data.y, torch.from_numpy(fx["y"]))
    assert edge_set(data.edge_index) == {(u, v) for u, v in fx["pairs"]}  # directed, deduped
    for key, k in (("train_mask", 0), ("val_mask", 1), ("test_mask", 2)):
        assert data[key].dtype == torch.bool and data[key].shape == (30, 10)
        assert torch.equal(data[key], torch.from_numpy(fx["masks"][k]))


@pytest.mark.parametrize(
    "victim", ["out1_graph_edges.txt", "out1_node_feature_label.txt", "cornell_split_0.6_0.2_3.npz"]
)
def test_truncated_geom_gcn_file_is_named(tmp_path, victim):
    fx = write_geom_gcn(tmp_path / "WebKB" / "cornell" / "raw", "cornell")
    truncate(fx["raw"] / victim, 0.7)
    before = raw_snapshot(tmp_path)
    with pytest.raises(gd.DatasetCorruptError, match=victim.replace(".", r"\.")):
        gd.load("cornell", root=tmp_path)
    assert raw_snapshot(tmp_path) == before
