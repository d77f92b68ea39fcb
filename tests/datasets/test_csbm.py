"""The cSBM generator and its loading as ``csbm``."""

from __future__ import annotations

import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_geometric.utils import coalesce, homophily, is_undirected, to_undirected

from gnnleaky import datasets as gd


@pytest.mark.parametrize("h", [0.0, 0.1, 0.33, 0.5, 0.8, 0.95, 1.0])
def test_csbm_homophily_matches_request(h):
    data = gd.make_csbm(num_nodes=3000, num_classes=4, avg_degree=10, homophily=h, seed=3)
    m = data.num_edges // 2
    assert m == 15000
    assert abs(homophily(data.edge_index, data.y, method="edge") - h) <= 1 / (2 * m) + 1e-6


def test_csbm_graph_is_simple_and_undirected():
    data = gd.make_csbm(num_nodes=2000, num_classes=3, avg_degree=7, homophily=0.6, seed=1)
    ei = data.edge_index
    assert ei.dtype == torch.long and ei.size(1) == 2 * 7000
    assert is_undirected(ei) and not data.has_self_loops()
    assert coalesce(ei).size(1) == ei.size(1)  # no duplicates
    assert torch.equal(coalesce(ei), ei)  # sorted
    assert int(ei.max()) < 2000 and data.x.dtype == torch.float32
    assert torch.bincount(data.y).tolist() == [667, 667, 666]


def test_csbm_dense_regime_is_exact():
    """When the edges requested are near the number of pairs, candidates are enumerated."""
    data = gd.make_csbm(num_nodes=20, num_classes=2, avg_degree=9, homophily=0.45, seed=0)
    ei = data.edge_index
    assert ei.size(1) == 180 and is_undirected(ei) and coalesce(ei).size(1) == 180
    assert homophily(ei, data.y) == pytest.approx(round(0.45 * 90) / 90)
    full = gd.make_csbm(num_nodes=12, num_classes=3, avg_degree=11, homophily=3 / 11, seed=0)
    assert full.edge_index.size(1) == 12 * 11  # the complete graph


def test_csbm_is_deterministic_given_seed():
    kwargs = dict(num_nodes=500, num_classes=3, avg_degree=6, homophily=0.4, snr=1.5)
    a, b = gd.make_csbm(seed=7, **kwargs), gd.make_csbm(seed=7, **kwargs)
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(a[key], b[key]), key
    c = gd.make_csbm(seed=8, **kwargs)
    assert not torch.equal(a.edge_index, c.edge_index) and not torch.equal(a.x, c.x)
    torch.manual_seed(123)  # the global RNG plays no part
    d = gd.make_csbm(seed=7, **kwargs)
    assert torch.equal(a.x, d.x) and torch.equal(a.edge_index, d.edge_index)


def test_csbm_snr_definition():
    snr = 2.5
    data = gd.make_csbm(
        num_nodes=40000, num_classes=3, avg_degree=1, snr=snr, num_features=12, seed=0
    )
    x, y = data.x.double(), data.y
    means = torch.stack([x[y == k].mean(0) for k in range(3)])
    noise = x - means[y]
    assert noise.std().item() == pytest.approx(1.0, abs=0.01)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert (means[a] - means[b]).norm().item() == pytest.approx(snr, abs=0.06)
    # class means are orthogonal (up to sampling noise) and of equal norm snr / sqrt(2)
    assert (means @ means.t()).fill_diagonal_(0).abs().max().item() < 0.15
    assert means.norm(dim=1).tolist() == pytest.approx([snr / 2**0.5] * 3, abs=0.05)


def test_csbm_stratified_splits():
    data = gd.make_csbm(num_nodes=1003, num_classes=4, avg_degree=4, seed=2, num_splits=5)
    assert data.train_mask.shape == (1003, 5)
    total = data.train_mask.int() + data.val_mask.int() + data.test_mask.int()
    assert bool((total == 1).all()), "each node in exactly one part of each split"
    for k in range(4):
        n_k = int((data.y == k).sum())
        members = data.y == k
        assert (data.train_mask[members].sum(0) == round(0.6 * n_k)).all()
        assert (data.val_mask[members].sum(0) == round(0.2 * n_k)).all()
    assert not torch.equal(data.train_mask[:, 0], data.train_mask[:, 1])
    one = gd.make_csbm(num_nodes=100, num_splits=1, train_ratio=0.5, val_ratio=0.25)
    assert one.train_mask.shape == (100,) and int(one.train_mask.sum()) == 50


def test_load_csbm_forwards_parameters():
    kwargs = dict(num_nodes=300, num_classes=3, avg_degree=5, homophily=0.2, seed=4)
    data = gd.load("CSBM", split="random", **kwargs)
    ref = gd.make_csbm(**kwargs)
    assert torch.equal(data.edge_index, ref.edge_index) and torch.equal(data.x, ref.x)
    assert data.name == "csbm" and data.num_classes == 3


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        (dict(homophily=1.5), "homophily"),
        (dict(homophily=-0.1), "homophily"),
        (dict(num_classes=1), "num_classes"),
        (dict(num_features=2, num_classes=3), "num_features"),
        (dict(num_nodes=3, num_classes=4, num_features=4), "num_nodes"),
        (dict(avg_degree=-1), "avg_degree"),
        (dict(snr=float("nan")), "snr"),
        (dict(train_ratio=0.9), "train_ratio"),
        (dict(num_splits=0), "num_splits"),
        (dict(seed=-1), "seed"),
        (dict(num_nodes=2.5), "num_nodes"),
        (dict(num_nodes=20, avg_degree=30), "avg_degree"),
        (
            dict(num_nodes=10, num_classes=5, num_features=5, avg_degree=3, homophily=1.0),
            "avg_degree",
        ),
    ],
)
def test_csbm_rejects_bad_parameters(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        gd.make_csbm(**kwargs)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(4, 300),
    c=st.integers(2, 4),
    d=st.floats(0.0, 12.0),
    h=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_csbm_properties(n, c, d, h, seed):
    c = min(c, n)
    try:
        data = gd.make_csbm(
            num_nodes=n, num_classes=c, avg_degree=d, homophily=h, seed=seed, num_features=c
        )
    except ValueError as err:  # only for infeasible degree / homophily combinations
        assert "avg_degree" in str(err)
        return
    ei = data.edge_index
    m = round(n * d / 2)
    assert ei.size(1) == 2 * m
    assert is_undirected(ei, num_nodes=n) and not data.has_self_loops()
    assert coalesce(ei, num_nodes=n).size(1) == ei.size(1)
    if m:
        same = int((data.y[ei[0]] == data.y[ei[1]]).sum()) // 2
        assert same == round(h * m)
    assert torch.equal(to_undirected(ei, num_nodes=n), ei)


@pytest.mark.slow
def test_csbm_million_nodes_is_fast():
    start = time.perf_counter()
    data = gd.make_csbm(num_nodes=10**6, num_classes=5, avg_degree=15, homophily=0.7, seed=0)
    elapsed = time.perf_counter() - start
    assert data.edge_index.size(1) == 15 * 10**6
    assert homophily(data.edge_index, data.y) == pytest.approx(0.7, abs=1e-6)
    assert elapsed < 60, f"10^6-node cSBM took {elapsed:.1f} s"
