r"""The heterophilous-graph families, read by PyG's classes: ``webkb``
(:class:`~torch_geometric.datasets.WebKB`), ``wikipedia``
(:class:`~torch_geometric.datasets.WikipediaNetwork`, geom-gcn preprocessing), ``actor``
(:class:`~torch_geometric.datasets.Actor`) and ``heterophilous``
(:class:`~torch_geometric.datasets.HeterophilousGraphDataset`).

Files under the data root (the first three in geom-gcn's format)::

    WebKB/{cornell,texas,wisconsin}/raw/out1_node_feature_label.txt, out1_graph_edges.txt,
        <name>_split_0.6_0.2_{0..9}.npz
    WikipediaNetwork/{chameleon,squirrel}/geom_gcn/raw/  the same 12 files
    Actor/raw/out1_node_feature_label.txt, out1_graph_edges.txt, film_split_0.6_0.2_{0..9}.npz
    HeterophilousGraphDataset/<name>/raw/<name>.npz
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gnnleaky.datasets.family import Family, offline
from gnnleaky.datasets.registry import DatasetSpec

if TYPE_CHECKING:  # pragma: no cover
    from torch_geometric.data import Data

__all__ = ["ACTOR", "HETEROPHILOUS", "WEBKB", "WIKIPEDIA"]


def _geom_gcn_files(prefix: str) -> tuple[str, ...]:
    splits = [f"raw/{prefix}_split_0.6_0.2_{i}.npz" for i in range(10)]
    return ("raw/out1_node_feature_label.txt", "raw/out1_graph_edges.txt", *splits)


def _build_webkb(spec: DatasetSpec, root: Path, split: str, force_reload: bool) -> Data:
    from torch_geometric.datasets import WebKB

    return offline(WebKB)(str(root / "WebKB"), spec.source_name, force_reload=force_reload)[0]


def _build_wikipedia(spec: DatasetSpec, root: Path, split: str, force_reload: bool) -> Data:
    from torch_geometric.datasets import WikipediaNetwork

    return offline(WikipediaNetwork)(
        str(root / "WikipediaNetwork"),
        spec.source_name,
        geom_gcn_preprocess=True,
        force_reload=force_reload,
    )[0]


def _build_actor(spec: DatasetSpec, root: Path, split: str, force_reload: bool) -> Data:
    from torch_geometric.datasets import Actor

    return offline(Actor)(str(root / "Actor"), force_reload=force_reload)[0]


def _build_heterophilous(spec: DatasetSpec, root: Path, split: str, force_reload: bool) -> Data:
    from torch_geometric.datasets import HeterophilousGraphDataset

    return offline(HeterophilousGraphDataset)(
        str(root / "HeterophilousGraphDataset"), spec.source_name, force_reload=force_reload
    )[0]


WEBKB = Family(
    "torch_geometric.datasets.WebKB",
    lambda s, split, r: r / "WebKB" / s.name,
    lambda s, split: _geom_gcn_files(s.name),
    "processed/data.pt",
    _build_webkb,
)
WIKIPEDIA = Family(
    "torch_geometric.datasets.WikipediaNetwork",
    lambda s, split, r: r / "WikipediaNetwork" / s.name / "geom_gcn",
    lambda s, split: _geom_gcn_files(s.name),
    "processed/data.pt",
    _build_wikipedia,
)
ACTOR = Family(
    "torch_geometric.datasets.Actor",
    lambda s, split, r: r / "Actor",
    lambda s, split: _geom_gcn_files("film"),
    "processed/data.pt",
    _build_actor,
)
HETEROPHILOUS = Family(
    "torch_geometric.datasets.HeterophilousGraphDataset",
    lambda s, split, r: r / "HeterophilousGraphDataset" / s.name,
    lambda s, split: (f"raw/{s.name}.npz",),
    "processed/data.pt",
    _build_heterophilous,
)
