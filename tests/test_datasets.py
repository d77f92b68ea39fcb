"""Tests for gnnleaky.datasets: registry, offline loading, raw-format fixtures, errors, cSBM.

Every test runs with sockets blocked and stdin closed (autouse fixture below). Loading paths
that have no real data here (PubMed, OGB, and WebKB for the corruption tests) are exercised on
tiny fixtures written at test time in the exact on-disk formats PyG and ogb read. Tests that
need a real dataset are marked ``data`` and skip, naming the files, when it is absent under
``$GNNLEAKY_DATA``.
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_geometric.utils import coalesce, homophily, is_undirected, to_undirected

from gnnleaky import datasets as gd

REPO = Path(__file__).resolve().parents[1]


# Isolation: no network, no stdin ############################################


def _blocked(*args, **kwargs):
    raise OSError("network access attempted in a gnnleaky dataset test")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Block every way out (sockets, DNS) and close stdin, so a prompt or download fails loudly."""
    monkeypatch.setattr(socket.socket, "connect", _blocked)
    monkeypatch.setattr(socket.socket, "connect_ex", _blocked)
    monkeypatch.setattr(socket, "create_connection", _blocked)
    monkeypatch.setattr(socket, "getaddrinfo", _blocked)
    stdin = io.StringIO()
    stdin.close()
    monkeypatch.setattr(sys, "stdin", stdin)

    def no_input(prompt=""):
        raise AssertionError(f"stdin prompt attempted: {prompt!r}")

    monkeypatch.setattr(builtins, "input", no_input)


def edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


def undirected_set(pairs) -> set[tuple[int, int]]:
    out = set()
    for u, v in pairs:
        if u != v:
            out |= {(int(u), int(v)), (int(v), int(u))}
    return out


def mask_ids(mask: torch.Tensor) -> set[int]:
    return set(mask.nonzero().view(-1).tolist())


# Raw-format writers (the fixtures) ##########################################


def write_planetoid(
    root: Path,
    name: str = "PubMed",
    n: int = 560,
    n_test: int = 40,
    n_labelled: int = 6,
    f: int = 5,
    c: int = 3,
    seed: int = 0,
) -> dict:
    """Write ``ind.<name>.*`` exactly as PyG's ``read_planetoid_data`` reads them.

    x/tx/allx: pickled scipy CSR matrices; y/ty/ally: pickled one-hot numpy arrays; graph:
    pickled dict node -> neighbour list; test.index: one node id per line. Nodes
    ``n - n_test .. n - 1`` are the test nodes, listed in a shuffled order in ``test.index`` with
    ``tx[j]`` / ``ty[j]`` the features / label of node ``test.index[j]``. PyG's public split
    takes the first ``len(y)`` nodes as train and the next 500 as validation, so
    ``n - n_test >= n_labelled + 500``.
    """
    rng = np.random.default_rng(seed)
    raw = root / "Planetoid" / name / "raw"
    raw.mkdir(parents=True)
    n_all = n - n_test
    y = rng.integers(0, c, n)
    y[:c] = np.arange(c)  # every class among the labelled nodes
    x = np.round(rng.random((n, f)) * (rng.random((n, f)) < 0.5), 3).astype(np.float32)
    test_index = rng.permutation(np.arange(n_all, n))
    onehot = np.eye(c, dtype=np.int64)
    ring = [(i, (i + 1) % n) for i in range(n)]
    extra = [tuple(map(int, rng.integers(0, n, 2))) for _ in range(n)]
    pairs = ring + extra + [(3, 3), (0, 1)]  # a self-loop and a duplicate, as in real data
    graph: dict[int, list[int]] = {i: [] for i in range(n)}
    for u, v in pairs:
        graph[u].append(v)
        graph[v].append(u)
    parts = {
        "x": sp.csr_matrix(x[:n_labelled]),
        "tx": sp.csr_matrix(x[test_index]),
        "allx": sp.csr_matrix(x[:n_all]),
        "y": onehot[y[:n_labelled]],
        "ty": onehot[y[test_index]],
        "ally": onehot[y[:n_all]],
        "graph": graph,
    }
    prefix = name.lower()
    for part, obj in parts.items():
        with open(raw / f"ind.{prefix}.{part}", "wb") as fh:
            pickle.dump(obj, fh, protocol=2)
    (raw / f"ind.{prefix}.test.index").write_text("".join(f"{i}\n" for i in test_index))
    return dict(
        raw=raw, x=x, y=y, edges=undirected_set(pairs), n_labelled=n_labelled, test_index=test_index
    )


def write_geom_gcn(
    raw: Path, prefix: str, n: int = 30, f: int = 6, c: int = 3, seed: int = 0
) -> dict:
    """Write geom-gcn's ``out1_*.txt`` + ten ``<prefix>_split_0.6_0.2_<i>.npz`` into ``raw``."""
    rng = np.random.default_rng(seed)
    raw.mkdir(parents=True)
    x = rng.integers(0, 2, (n, f))
    y = rng.integers(0, c, n)
    with open(raw / "out1_node_feature_label.txt", "w") as fh:
        fh.write("node_id\tfeature\tlabel\n")
        for i in range(n):
            fh.write(f"{i}\t{','.join(map(str, x[i]))}\t{y[i]}\n")
    pairs = [(i, (i + 1) % n) for i in range(n)] + [(0, 5), (0, 5), (7, 2)]
    with open(raw / "out1_graph_edges.txt", "w") as fh:
        fh.write("node_id\tnode_id\n")
        for u, v in pairs:
            fh.write(f"{u}\t{v}\n")
    masks = []
    for i in range(10):
        perm = rng.permutation(n)
        m = np.zeros((3, n), dtype=np.uint8)
        m[0, perm[:18]], m[1, perm[18:24]], m[2, perm[24:]] = 1, 1, 1
        np.savez(
            raw / f"{prefix}_split_0.6_0.2_{i}.npz", train_mask=m[0], val_mask=m[1], test_mask=m[2]
        )
        masks.append(m.astype(bool))
    return dict(raw=raw, x=x, y=y, pairs=pairs, masks=np.stack(masks, axis=-1))


# ogb-format fixture: what ogb 1.3.6's master.csv says each dataset folder holds
OGB_FIXTURES = {
    "ogbn-arxiv": dict(
        folder="ogbn_arxiv",
        split="time",
        feat=8,
        edge_feat=0,
        extra=("node_year",),
        classes=40,
        tasks=1,
    ),
    "ogbn-products": dict(
        folder="ogbn_products",
        split="sales_ranking",
        feat=6,
        edge_feat=0,
        extra=(),
        classes=47,
        tasks=1,
    ),
    "ogbn-proteins": dict(
        folder="ogbn_proteins",
        split="species",
        feat=0,
        edge_feat=8,
        extra=("node_species",),
        classes=2,
        tasks=112,
    ),
}


def _csv_gz(path: Path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(np.asarray(array)).to_csv(path, header=False, index=False, compression="gzip")


def write_ogb(root: Path, name: str, n: int = 50, e: int = 120, seed: int = 0) -> dict:
    """Write a fake OGB node dataset laid out as ogb expects under ``root/ogb/<folder>/``.

    ``RELEASE_v1.txt``; ``raw/`` with ``edge``, ``node-feat`` (or ``edge-feat``),
    ``node-label``, ``num-node-list``, ``num-edge-list`` and the additional node files, all
    header-less ``.csv.gz``; ``split/<type>/{train,valid,test}.csv.gz`` with node ids.
    """
    meta = OGB_FIXTURES[name]
    rng = np.random.default_rng(seed)
    base = root / "ogb" / meta["folder"]
    src = rng.integers(0, n, e)
    dst = (src + rng.integers(1, n, e)) % n  # no self-loops
    src[1], dst[1] = dst[0], src[0]  # one reciprocal pair: made undirected it is one edge
    edges = np.stack([src, dst], axis=1)
    _csv_gz(base / "raw" / "edge.csv.gz", edges)
    x = np.round(rng.normal(size=(n, meta["feat"])), 4).astype(np.float32)
    if meta["feat"]:
        _csv_gz(base / "raw" / "node-feat.csv.gz", x)
    edge_attr = np.round(rng.random((e, meta["edge_feat"])), 3).astype(np.float32)
    if meta["edge_feat"]:
        _csv_gz(base / "raw" / "edge-feat.csv.gz", edge_attr)
    y = rng.integers(0, meta["classes"], (n, meta["tasks"]))
    _csv_gz(base / "raw" / "node-label.csv.gz", y)
    _csv_gz(base / "raw" / "num-node-list.csv.gz", [[n]])
    _csv_gz(base / "raw" / "num-edge-list.csv.gz", [[e]])
    for extra in meta["extra"]:
        _csv_gz(base / "raw" / f"{extra}.csv.gz", rng.integers(0, 20, (n, 1)))
    perm = rng.permutation(n)
    split = {"train": perm[:30], "valid": perm[30:40], "test": perm[40:]}
    for key, idx in split.items():
        _csv_gz(base / "split" / meta["split"] / f"{key}.csv.gz", idx[:, None])
    (base / "RELEASE_v1.txt").write_text("")
    return dict(base=base, edges=edges, x=x, edge_attr=edge_attr, y=y, split=split, n=n, e=e)


def raw_snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "processed" not in p.parts
    }


def truncate(path: Path, keep: float = 0.6) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# Registry, names, roots ######################################################


def test_registry_is_consistent():
    for name, spec in gd.DATASETS.items():
        assert spec.name == name
        assert spec.family in gd._FAMILIES
        assert spec.metric in gd.METRICS and spec.task in gd.TASKS
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
        f"Planetoid/Cora/raw/ind.cora.{s}" for s in gd._PLANETOID_PARTS
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


# Absent data: clear errors, no download ####################################


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
        gd._offline(WebKB)(str(tmp_path / "WebKB"), "texas")


# Planetoid raw format: the PubMed loading path ##############################


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


# geom-gcn text format: WebKB path and text/npz corruption ###################


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


# OGB on-disk format ##########################################################


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
        from gnnleaky import datasets
        datasets._import_ogb()
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
    gd._import_ogb()
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

    monkeypatch.setattr(gd, "_import_ogb", fail)
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


# Real data (skip, naming the files, when absent) #############################


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


# cSBM ########################################################################


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
