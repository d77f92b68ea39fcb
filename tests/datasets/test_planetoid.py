"""The Planetoid raw format (the PubMed loading path) and its corruption."""

from __future__ import annotations

import pytest
import torch

from gnnleaky import datasets as gd
from tests.datasets.formats import edge_set, mask_ids, raw_snapshot, truncate, write_planetoid


def test_pubmed_fixture_loads(tmp_path):
    fx = write_planetoid(tmp_path)
    # The fixture is not PubMed's size: refused unless verification is turned off.
    with pytest.raises(gd.DatasetCorruptError, match=r"registry expects 19717") as info:
        gd.load("PubMed", root=tmp_path)
    assert info.value.path == fx["raw"] / "ind.pubmed.allx"
    data = gd.load("PubMed", root=tmp_path, verify=False)
    n = len(fx["y"])
    assert data.name == "pubmed" and data.num_classes == 3 and data.num_nodes == n
    assert torch.equal(data.x, torch.from_numpy(fx["x"]))
    assert torch.equal(data.y, torch.from_numpy(fx["y"]))
    assert edge_set(data.edge_index) == fx["edges"]
    for key in ("train_mask", "val_mask", "test_mask"):
        assert data[key].dtype == torch.bool and data[key].shape == (n,)
    assert mask_ids(data.train_mask) == set(range(fx["n_labelled"]))
    assert mask_ids(data.val_mask) == set(range(fx["n_labelled"], fx["n_labelled"] + 500))
    assert mask_ids(data.test_mask) == set(fx["test_index"].tolist())
    again = gd.load("pubmed", root=tmp_path, verify=False)  # from the processed cache
    assert torch.equal(again.edge_index, data.edge_index) and torch.equal(again.x, data.x)
    full = gd.load("pubmed", root=tmp_path, split="full", verify=False)
    assert int(full.train_mask.sum()) == n - 500 - len(fx["test_index"])


def test_corrupt_raw_pickle_is_named_and_kept(tmp_path):
    fx = write_planetoid(tmp_path)
    truncate(fx["raw"] / "ind.pubmed.graph")
    before = raw_snapshot(tmp_path)
    with pytest.raises(gd.DatasetCorruptError, match=r"ind\.pubmed\.graph") as info:
        gd.load("pubmed", root=tmp_path)
    assert info.value.path == fx["raw"] / "ind.pubmed.graph"
    assert raw_snapshot(tmp_path) == before


def test_cut_off_test_index_is_named(tmp_path):
    fx = write_planetoid(tmp_path)
    path = fx["raw"] / "ind.pubmed.test.index"
    path.write_bytes(path.read_bytes()[:-3])  # mid-number, no final newline
    with pytest.raises(gd.DatasetCorruptError, match=r"ind\.pubmed\.test\.index.*cut off"):
        gd.load("pubmed", root=tmp_path)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_processed_cache_is_rebuilt_after_warning(tmp_path, damage):
    fx = write_planetoid(tmp_path)
    first = gd.load("pubmed", root=tmp_path, verify=False)
    cache = tmp_path / "Planetoid" / "PubMed" / "processed" / "data.pt"
    assert cache.is_file()
    before = raw_snapshot(tmp_path)
    if damage == "garbage":
        cache.write_bytes(b"\x80\x04not a torch file")
    elif damage == "truncated":
        truncate(cache, 0.5)
    else:
        cache.write_bytes(b"")
    with pytest.warns(UserWarning, match=r"processed cache file .*data\.pt.*rebuilding"):
        data = gd.load("pubmed", root=tmp_path, verify=False)
    assert torch.equal(data.x, first.x) and torch.equal(data.edge_index, first.edge_index)
    assert raw_snapshot(tmp_path) == before and (fx["raw"] / "ind.pubmed.x").exists()
    gd.load("pubmed", root=tmp_path, verify=False)  # the rebuilt cache reads cleanly


def test_corrupt_pre_transform_file_is_rebuilt(tmp_path):
    write_planetoid(tmp_path)
    gd.load("pubmed", root=tmp_path, verify=False)
    pre = tmp_path / "Planetoid" / "PubMed" / "processed" / "pre_transform.pt"
    truncate(pre, 0.3)
    with pytest.warns(UserWarning, match=r"pre_transform\.pt"):
        gd.load("pubmed", root=tmp_path, verify=False)
