"""Raw-format writers for the dataset tests: tiny graphs in the exact on-disk formats PyG and
ogb read, and helpers to compare what was loaded with what was written."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch


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
