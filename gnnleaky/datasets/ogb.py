r"""The ``ogb`` family: ogbn-arxiv, ogbn-products and ogbn-proteins, read by ogb's
:class:`~ogb.nodeproppred.PygNodePropPredDataset`.

Files under the data root, as ogb lays them out::

    ogb/ogbn_<name>/RELEASE_v1.txt, raw/*.csv.gz, split/<split type>/{train,valid,test}.csv.gz

ogb is used as installed, with two workarounds: it is imported without its network
version check (:func:`import_ogb`), and its processed cache is read under
``torch.load``'s default ``weights_only=True`` (torch >= 2.6) by allowing exactly PyG's
storage classes for that call.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Data

from gnnleaky.datasets.family import Family, offline
from gnnleaky.datasets.registry import DatasetSpec

__all__ = ["OGB", "import_ogb"]

logger = logging.getLogger(__name__)

_OGB_RAW: dict[str, tuple[str, ...]] = {
    # files ogb 1.3.6 reads (read_csv_graph_raw + its `additional node files`)
    "ogbn-arxiv": (
        "edge",
        "node-feat",
        "node-label",
        "num-node-list",
        "num-edge-list",
        "node_year",
    ),
    "ogbn-products": ("edge", "node-feat", "node-label", "num-node-list", "num-edge-list"),
    "ogbn-proteins": (
        "edge",
        "edge-feat",
        "node-label",
        "num-node-list",
        "num-edge-list",
        "node_species",
    ),
}


def _files(spec: DatasetSpec, split: str) -> tuple[str, ...]:
    raw = [f"raw/{f}.csv.gz" for f in _OGB_RAW[spec.name]]
    split_files = [f"split/{spec.ogb_split}/{s}.csv.gz" for s in ("train", "valid", "test")]
    return (f"RELEASE_v{spec.ogb_version}.txt", *raw, *split_files)


def _base(spec: DatasetSpec, split: str, root: Path) -> Path:
    # mirrors PygNodePropPredDataset: a '<dir>_pyg' folder wins when it exists
    dir_name = spec.source_name.replace("-", "_")
    if (root / "ogb" / f"{dir_name}_pyg").exists():
        dir_name += "_pyg"
    return root / "ogb" / dir_name


_MISSING = object()


def import_ogb() -> type:
    r"""Imports ogb without its network version check and returns ``PygNodePropPredDataset``.

    ``ogb/version.py`` runs ``from outdated import check_outdated`` inside
    ``try/except ImportError`` and, if that succeeds, starts a thread that asks
    PyPI for the latest version (the ``OUTDATED_IGNORE`` variable it sets only
    silences warnings, not the request). Mapping ``sys.modules['outdated']`` to
    :obj:`None` for the duration of ``import ogb`` makes that import raise
    :class:`ImportError`, so ogb sets ``check_outdated = None`` and starts no
    thread. The entry is restored afterwards; ogb itself is not modified.
    """
    if "ogb" not in sys.modules:
        saved = sys.modules.get("outdated", _MISSING)
        sys.modules["outdated"] = None  # type: ignore[assignment]
        try:
            import ogb  # noqa: F401
        finally:
            if saved is _MISSING:
                sys.modules.pop("outdated", None)
            else:
                sys.modules["outdated"] = saved  # type: ignore[assignment]
    from ogb.nodeproppred import PygNodePropPredDataset

    return PygNodePropPredDataset


def _ogb_safe_globals() -> list[Any]:
    # What ogb's `torch.save(self.collate([data]))` pickles besides tensors/dicts;
    # `torch_geometric.data.Data` itself is already allow-listed by PyG.
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    return [DataEdgeAttr, DataTensorAttr, GlobalStorage]


@contextlib.contextmanager
def _captured_output(label: str) -> Iterator[None]:
    r"""Sends what a third-party library prints (stdout/stderr, tqdm bars) to the debug log.

    Warnings raised meanwhile are not swallowed: they are re-issued after the block.
    """
    buf = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                yield
    finally:
        text = buf.getvalue().strip()
        if text:
            logger.debug("%s output:\n%s", label, text)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def _arxiv_undirected(data: Data) -> None:
    from torch_geometric.utils import to_undirected

    data.edge_index = to_undirected(data.edge_index, num_nodes=data.num_nodes)


def _proteins_node_features(data: Data) -> None:
    # ogbn-proteins has no node features: use the mean of the incoming edges' 8 features
    from torch_geometric.utils import scatter

    data.x = scatter(
        data.edge_attr, data.edge_index[1], dim=0, dim_size=data.num_nodes, reduce="mean"
    )


# OGB dataset -> what is done to ogb's graph beyond masks and 1-D labels
_OGB_POST: dict[str, Callable[[Data], None]] = {
    "ogbn-arxiv": _arxiv_undirected,
    "ogbn-proteins": _proteins_node_features,
}


def _build(spec: DatasetSpec, root: Path, split: str, force_reload: bool) -> Data:
    from torch_geometric.utils import index_to_mask

    cls = offline(import_ogb(), force_reload)
    # ogb 1.3.6 calls `torch.load(path)` with torch's default weights_only=True (torch >= 2.6),
    # which rejects PyG's storage classes: allow exactly those, only for this call.
    with _captured_output(spec.name), torch.serialization.safe_globals(_ogb_safe_globals()):
        ds = cls(name=spec.source_name, root=str(root / "ogb"))
        split_idx = ds.get_idx_split()
    if ds.eval_metric != spec.ogb_metric:  # pragma: no cover - ogb master.csv changed
        logger.warning(
            "ogb reports eval_metric=%r for %s; registry says %r",
            ds.eval_metric,
            spec.name,
            spec.ogb_metric,
        )
    data = ds[0]
    n = int(data.num_nodes)
    post = _OGB_POST.get(spec.name)
    if post is not None:
        post(data)
    if spec.task != "multilabel":
        data.y = data.y.view(-1)
    for ours, theirs in (("train_mask", "train"), ("val_mask", "valid"), ("test_mask", "test")):
        data[ours] = index_to_mask(split_idx[theirs], size=n)
    return data


OGB = Family(
    "ogb.nodeproppred.PygNodePropPredDataset",
    _base,
    _files,
    "processed/geometric_data_processed.pt",
    _build,
)
