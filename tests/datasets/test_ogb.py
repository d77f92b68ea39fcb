"""The OGB on-disk format, ogb imported without its version check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.utils import is_undirected

from gnnleaky import datasets as gd
from gnnleaky.datasets import ogb as ogb_family
from tests.datasets.formats import (
    OGB_FIXTURES,
    edge_set,
    mask_ids,
    raw_snapshot,
    truncate,
    undirected_set,
    write_ogb,
)

REPO = Path(__file__).resolve().parents[2]


def test_ogb_import_starts_no_version_check():
    """In a fresh interpreter with sockets and DNS blocked: no check thread, no connection.

    ogb's check needs ``pkg_resources`` (gone from recent setuptools, which would make the
    check fail silently before any request); a stand-in is installed so that, were the guard
    broken, the check would get as far as the network and be counted here.
    """
    code = """if True:
        import socket, sys, threading, types
        try:
            import packaging.version
            shim = types.ModuleType('pkg_resources')
            shim.parse_version = packaging.version.parse
            sys.modules.setdefault('pkg_resources', shim)
        except ImportError:
            pass
        calls = []
        def deny(*a, **k):
            calls.append(a)
            raise OSError('blocked')
        socket.socket.connect = deny
        socket.getaddrinfo = deny
        socket.create_connection = deny
        from gnnleaky.datasets.ogb import import_ogb
        import_ogb()
        import ogb.version
        started = [t for t in threading.enumerate() if t is not threading.main_thread()]
        for t in started:
            t.join(timeout=30)
        print(len(calls), ogb.version.check_outdated is None, 'outdated' in sys.modules,
              len(started))
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "True", "False", "0"]


def test_ogb_metrics_match_ogb_evaluator():
    ogb_family.import_ogb()
    from ogb.nodeproppred import Evaluator

    for name in OGB_FIXTURES:
        assert Evaluator(name).eval_metric == gd.info(name).ogb_metric


def test_ogbn_arxiv_fixture_loads(tmp_path):
    fx = write_ogb(tmp_path, "ogbn-arxiv")
    with pytest.raises(gd.DatasetCorruptError, match=r"50 nodes where the registry expects 169343"):
        gd.load("ogbn-arxiv", root=tmp_path)  # the fixture is not arxiv's size
    data = gd.load("ogbn-arxiv", root=tmp_path, verify=False)
    assert data.name == "ogbn-arxiv" and data.num_classes == 40 and data.num_nodes == fx["n"]
    assert gd.info("ogbn-arxiv").metric == "accuracy" and gd.info("arxiv").ogb_metric == "acc"
    assert is_undirected(data.edge_index)
    truth = undirected_set(fx["edges"].tolist())  # the reciprocal pair counts once
    assert edge_set(data.edge_index) == truth and data.edge_index.size(1) == len(truth)
    assert torch.allclose(data.x, torch.from_numpy(fx["x"]))
    assert data.y.shape == (fx["n"],) and torch.equal(data.y, torch.from_numpy(fx["y"][:, 0]))
    for key, ogb_key in (("train_mask", "train"), ("val_mask", "valid"), ("test_mask", "test")):
        assert data[key].dtype == torch.bool and data[key].shape == (fx["n"],)
        assert mask_ids(data[key]) == set(fx["split"][ogb_key].tolist())
    cache = fx["base"] / "processed" / "geometric_data_processed.pt"
    assert cache.is_file()
    # torch.load of ogb's cache (weights_only)
    again = gd.load("ogbn_arxiv", root=tmp_path, verify=False)
    assert torch.equal(again.edge_index, data.edge_index) and torch.equal(again.y, data.y)


def test_ogbn_products_and_proteins_fixtures_load(tmp_path):
    fx = write_ogb(tmp_path, "ogbn-products", seed=1)
    data = gd.load("products", root=tmp_path, verify=False)
    assert data.edge_index.size(1) == 2 * fx["e"]  # ogb adds the inverse edges itself
    assert is_undirected(data.edge_index) and data.y.dim() == 1 and data.num_classes == 47
    assert mask_ids(data.test_mask) == set(fx["split"]["test"].tolist())

    fx = write_ogb(tmp_path, "ogbn-proteins", seed=2)
    data = gd.load("ogbn-proteins", root=tmp_path, verify=False)
    assert data.y.shape == (fx["n"], 112) and data.num_classes == 112
    assert gd.info("ogbn-proteins").metric == "roc_auc"
    # x is the mean of the incoming edges' features (each edge stored in both directions)
    attr = torch.from_numpy(np.concatenate([fx["edge_attr"], fx["edge_attr"]]))
    dst = torch.from_numpy(np.concatenate([fx["edges"][:, 1], fx["edges"][:, 0]]))
    node = int(dst[0])
    assert torch.allclose(data.x[node], attr[dst == node].mean(0), atol=1e-6)
    assert data.x.shape == (fx["n"], 8)


def test_ogb_absent_raises_before_ogb_is_touched(tmp_path, monkeypatch):
    def fail():
        raise AssertionError("ogb must not be imported for an absent dataset")

    monkeypatch.setattr(ogb_family, "import_ogb", fail)
    with pytest.raises(gd.DatasetNotFoundError, match=r"RELEASE_v1\.txt"):
        gd.load("ogbn-arxiv", root=tmp_path)
    fx = write_ogb(tmp_path, "ogbn-arxiv")
    (fx["base"] / "RELEASE_v1.txt").unlink()  # ogb would ask "update the dataset now? (y/N)"
    with pytest.raises(gd.DatasetNotFoundError) as info:
        gd.load("ogbn-arxiv", root=tmp_path)
    assert [p.name for p in info.value.missing] == ["RELEASE_v1.txt"]
    assert (fx["base"] / "raw" / "edge.csv.gz").exists()


def test_ogb_truncated_raw_is_named(tmp_path):
    fx = write_ogb(tmp_path, "ogbn-arxiv")
    truncate(fx["base"] / "raw" / "edge.csv.gz")
    before = raw_snapshot(tmp_path)
    with pytest.raises(gd.DatasetCorruptError, match=r"edge\.csv\.gz"):
        gd.load("ogbn-arxiv", root=tmp_path)
    assert raw_snapshot(tmp_path) == before


def test_ogb_corrupt_cache_is_rebuilt(tmp_path):
    fx = write_ogb(tmp_path, "ogbn-arxiv")
    first = gd.load("ogbn-arxiv", root=tmp_path, verify=False)
    truncate(fx["base"] / "processed" / "geometric_data_processed.pt", 0.5)
    with pytest.warns(UserWarning, match="geometric_data_processed.pt"):
        data = gd.load("ogbn-arxiv", root=tmp_path, verify=False)
    assert torch.equal(data.edge_index, first.edge_index)
    gd.load("ogbn-arxiv", root=tmp_path, verify=False)
