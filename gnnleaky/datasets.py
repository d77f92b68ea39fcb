r"""One way to get any supported graph: a registry of datasets and :func:`load`.

Every dataset is resolved by name through one registry, :data:`DATASETS`
(``name -> DatasetSpec``); the spec's ``family`` picks, through a second table,
the PyG (or OGB) class that reads the raw files, where those files live under
the data root, and which files must be there. Nothing is ever downloaded: when
raw files are absent, :class:`DatasetNotFoundError` names the dataset, the root
searched and every file expected, before PyG or OGB is called. What is read is
checked: the raw files against the data root's ``SHA256SUMS`` file (where it has
one), and the graph against the registry's numbers of nodes, edges, features and
splits; a mismatch raises :class:`DatasetCorruptError` naming the file, so that a
truncated file never trains as a smaller graph.

The data root is the ``root`` argument, else the environment variable
``GNNLEAKY_DATA``, else ``./datasets`` (relative to the current directory).
Under it each family keeps PyG's own layout::

    Planetoid/{Cora,CiteSeer,PubMed}/raw/ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}
    Planetoid/{Cora,CiteSeer,PubMed}/geom-gcn/raw/  the 8 ind.* files
        + <name>_split_0.6_0.2_{0..9}.npz
    WebKB/{cornell,texas,wisconsin}/raw/out1_node_feature_label.txt, out1_graph_edges.txt,
        <name>_split_0.6_0.2_{0..9}.npz
    WikipediaNetwork/{chameleon,squirrel}/geom_gcn/raw/  the same 12 files
    Actor/raw/out1_node_feature_label.txt, out1_graph_edges.txt, film_split_0.6_0.2_{0..9}.npz
    HeterophilousGraphDataset/<name>/raw/<name>.npz
    ogb/ogbn_<name>/RELEASE_v1.txt, raw/*.csv.gz, split/<split type>/{train,valid,test}.csv.gz
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import io
import logging
import math
import os
import pickle
import posixpath
import re
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch_geometric.data import Data

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "DatasetCorruptError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "data_root",
    "info",
    "list_datasets",
    "load",
    "make_csbm",
    "num_splits",
    "raw_files",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the data root when ``root`` is not given.
ENV_VAR = "GNNLEAKY_DATA"
#: Data root used when neither ``root`` nor ``GNNLEAKY_DATA`` is set (relative to CWD).
DEFAULT_ROOT = "datasets"
#: Checksum file in the data root (``sha256sum`` format, paths relative to the root); where
#: present, :func:`load` checks every raw file it lists against it.
CHECKSUMS = "SHA256SUMS"

METRICS = ("accuracy", "roc_auc")
TASKS = ("multiclass", "binary", "multilabel")


# Errors #####################################################################


class DatasetNotFoundError(FileNotFoundError):
    r"""Raised when raw files of a dataset are absent under the data root.

    Nothing is downloaded; place the files listed in the message and retry.

    Attributes:
        name (str): The dataset.
        root (pathlib.Path): The data root searched.
        expected (list[pathlib.Path]): Every raw file the loader needs.
        missing (list[pathlib.Path]): Those of :obj:`expected` that are absent.
    """

    def __init__(self, name: str, root: Path, expected: list[Path], missing: list[Path]) -> None:
        self.name = name
        self.root = Path(root)
        self.expected = list(expected)
        self.missing = list(missing)
        lines = [f"  {'MISSING ' if p in self.missing else 'found   '}{p}" for p in expected]
        msg = (
            f"dataset {name!r}: {len(self.missing)} of {len(self.expected)} raw files are "
            f"missing under the data root {self.root} (set by the `root` argument, else "
            f"${ENV_VAR}, else ./{DEFAULT_ROOT}). Nothing is downloaded; place these files "
            f"(see datasets/README.md):\n" + "\n".join(lines)
        )
        super().__init__(msg)


class DatasetCorruptError(RuntimeError):
    r"""Raised when a raw file of a dataset cannot be read (corrupt or truncated).

    Attributes:
        name (str): The dataset.
        path (pathlib.Path): The offending file.
    """

    def __init__(self, name: str, path: Path, reason: str) -> None:
        self.name = name
        self.path = Path(path)
        super().__init__(
            f"dataset {name!r}: file {self.path} is corrupt or truncated ({reason}). "
            f"Replace it with an intact copy; nothing was deleted."
        )


# Registry ###################################################################


@dataclass(frozen=True)
class DatasetSpec:
    r"""Static description of one supported dataset (one registry entry).

    Sizes are those of the graph :func:`load` returns with the default split
    (``edges`` counts columns of ``edge_index``, so an undirected edge counts
    twice); for ``csbm`` they are the generator's defaults.

    Args:
        name (str): Canonical name (``data.name``).
        family (str): Key of the loader family (``'planetoid'``, ``'webkb'``,
            ``'wikipedia'``, ``'actor'``, ``'heterophilous'``, ``'ogb'``,
            ``'synthetic'``).
        source_name (str): Name passed to the PyG/OGB class (e.g. ``'CiteSeer'``).
        nodes (int): Number of nodes.
        edges (int): Number of (directed) edges in ``edge_index``.
        features (int): Node feature dimension.
        classes (int): ``data.num_classes`` (for multi-label: number of tasks).
        metric (str): Official metric, ``'accuracy'`` or ``'roc_auc'``.
        task (str): ``'multiclass'``, ``'binary'`` or ``'multilabel'``.
        splits (tuple[str, ...]): Accepted ``split`` names; ``'public'`` (the
            splits published with the dataset) is always first and the default.
        num_splits (int): Mask columns for the default split (1 means masks [N]).
        aliases (tuple[str, ...]): Other accepted names.
        ogb_metric (str, optional): The OGB ``Evaluator``'s ``eval_metric``.
        ogb_split (str, optional): OGB split folder (``split/<ogb_split>``).
        ogb_version (int, optional): OGB release (``RELEASE_v<ogb_version>.txt``).
        description (str): One line for tables.
    """

    name: str
    family: str
    source_name: str
    nodes: int
    edges: int
    features: int
    classes: int
    metric: str
    task: str
    splits: tuple[str, ...] = ("public",)
    num_splits: int = 10
    aliases: tuple[str, ...] = ()
    ogb_metric: str | None = None
    ogb_split: str | None = None
    ogb_version: int | None = None
    description: str = ""


# The registry, as a table. Sizes are those of the loaded graph with the default split.
# fmt: off
_ROWS: tuple[tuple[str, str, str, int, int, int, int, str, str], ...] = (
    # name, family, source name, nodes, edges, features, classes, metric, task
    ("cora", "planetoid", "Cora", 2708, 10556, 1433, 7, "accuracy", "multiclass"),
    ("citeseer", "planetoid", "CiteSeer", 3327, 9104, 3703, 6, "accuracy", "multiclass"),
    ("pubmed", "planetoid", "PubMed", 19717, 88648, 500, 3, "accuracy", "multiclass"),
    ("cornell", "webkb", "cornell", 183, 298, 1703, 5, "accuracy", "multiclass"),
    ("texas", "webkb", "texas", 183, 325, 1703, 5, "accuracy", "multiclass"),
    ("wisconsin", "webkb", "wisconsin", 251, 515, 1703, 5, "accuracy", "multiclass"),
    ("chameleon", "wikipedia", "chameleon", 2277, 36101, 2325, 5, "accuracy", "multiclass"),
    ("squirrel", "wikipedia", "squirrel", 5201, 217073, 2089, 5, "accuracy", "multiclass"),
    ("actor", "actor", "Actor", 7600, 30019, 932, 5, "accuracy", "multiclass"),
    ("roman_empire", "heterophilous", "roman_empire", 22662, 65854, 300, 18, "accuracy",
     "multiclass"),
    ("amazon_ratings", "heterophilous", "amazon_ratings", 24492, 186100, 300, 5, "accuracy",
     "multiclass"),
    ("minesweeper", "heterophilous", "minesweeper", 10000, 78804, 7, 2, "roc_auc", "binary"),
    ("tolokers", "heterophilous", "tolokers", 11758, 1038000, 10, 2, "roc_auc", "binary"),
    ("questions", "heterophilous", "questions", 48921, 307080, 301, 2, "roc_auc", "binary"),
    ("ogbn-arxiv", "ogb", "ogbn-arxiv", 169343, 2315598, 128, 40, "accuracy", "multiclass"),
    ("ogbn-products", "ogb", "ogbn-products", 2449029, 123718280, 100, 47, "accuracy",
     "multiclass"),
    ("ogbn-proteins", "ogb", "ogbn-proteins", 132534, 79122504, 8, 112, "roc_auc",
     "multilabel"),
    ("csbm", "synthetic", "csbm", 1000, 10000, 16, 2, "accuracy", "multiclass"),
)
# fmt: on

# family -> (accepted split names, mask columns of the default split)
_FAMILY_SPLITS: dict[str, tuple[tuple[str, ...], int]] = {
    "planetoid": (("public", "full", "geom-gcn"), 1),
    "webkb": (("public", "geom-gcn"), 10),
    "wikipedia": (("public", "geom-gcn"), 10),
    "actor": (("public", "geom-gcn"), 10),
    "heterophilous": (("public",), 10),
    "ogb": (("public",), 1),
    "synthetic": (("public", "random"), 10),
}
# OGB name -> (Evaluator eval_metric, split folder, release), as in ogb 1.3.6's master.csv
_OGB_META: dict[str, tuple[str, str, int]] = {
    "ogbn-arxiv": ("acc", "time", 1),
    "ogbn-products": ("acc", "sales_ranking", 1),
    "ogbn-proteins": ("rocauc", "species", 1),
}
_ALIASES: dict[str, tuple[str, ...]] = {
    "actor": ("film",),
    "ogbn-arxiv": ("arxiv",),
    "ogbn-products": ("products",),
    "ogbn-proteins": ("proteins",),
}
_DESCRIPTIONS: dict[str, str] = {
    "cora": "citation graph (Sen et al. 2008); Kipf split 140/500/1000",
    "citeseer": "citation graph; Kipf split 120/500/1000",
    "pubmed": "citation graph; Kipf split 60/500/1000",
    "cornell": "WebKB web-page graph; geom-gcn 60/20/20 splits",
    "texas": "WebKB web-page graph; geom-gcn 60/20/20 splits",
    "wisconsin": "WebKB web-page graph; geom-gcn 60/20/20 splits",
    "chameleon": "Wikipedia page graph (geom-gcn preprocessing)",
    "squirrel": "Wikipedia page graph (geom-gcn preprocessing)",
    "actor": 'actor co-occurrence graph (geom-gcn "film")',
    "roman_empire": "word graph of the Roman Empire article (Platonov et al. 2023)",
    "amazon_ratings": "Amazon co-purchase graph; rating classes",
    "minesweeper": "synthetic 100x100 minesweeper grid",
    "tolokers": "Toloka crowd-worker graph",
    "questions": "Yandex Q users graph",
    "ogbn-arxiv": "arXiv CS citations, made undirected; time split",
    "ogbn-products": "Amazon co-purchase graph; sales-ranking split",
    "ogbn-proteins": "protein association graph, 112 binary tasks; x = mean incoming edge_attr",
    "csbm": "contextual SBM generated in code (make_csbm); sizes are its defaults",
}


def _make_spec(row: tuple[str, str, str, int, int, int, int, str, str]) -> DatasetSpec:
    name, family = row[0], row[1]
    splits, num_splits = _FAMILY_SPLITS[family]
    ogb_metric, ogb_split, ogb_version = _OGB_META.get(name, (None, None, None))
    return DatasetSpec(
        *row,
        splits=splits,
        num_splits=num_splits,
        aliases=_ALIASES.get(name, ()),
        ogb_metric=ogb_metric,
        ogb_split=ogb_split,
        ogb_version=ogb_version,
        description=_DESCRIPTIONS.get(name, ""),
    )


#: The registry: canonical name -> :class:`DatasetSpec`.
DATASETS: dict[str, DatasetSpec] = {row[0]: _make_spec(row) for row in _ROWS}


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.lower())


_LOOKUP: dict[str, str] = {
    _key(alias): spec.name for spec in DATASETS.values() for alias in (spec.name, *spec.aliases)
}


def info(name: str) -> DatasetSpec:
    r"""Returns the registry entry of a dataset.

    Names are case-insensitive, and ``-``, ``_`` and spaces are ignored, so
    ``'Roman-Empire'``, ``'roman_empire'`` and ``'ogbn_arxiv'`` all resolve.

    Args:
        name (str): Dataset name or alias.

    Example:
        >>> info('Tolokers').metric
        'roc_auc'
        >>> info('roman-empire').name
        'roman_empire'
    """
    if not isinstance(name, str) or _key(name) not in _LOOKUP:
        raise ValueError(
            f"name={name!r} is not a supported dataset; supported names are: {', '.join(DATASETS)}"
        )
    return DATASETS[_LOOKUP[_key(name)]]


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    r"""Resolves the data root: ``root``, else ``$GNNLEAKY_DATA``, else ``./datasets``.

    Args:
        root (str or os.PathLike, optional): Explicit data root. (default: :obj:`None`)

    Example:
        >>> data_root('/data/graphs')
        PosixPath('/data/graphs')
    """
    if root is None:
        root = os.environ.get(ENV_VAR) or DEFAULT_ROOT
    return Path(root).expanduser()


# Families: where files live and which class reads them ######################

_PLANETOID_PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _geom_gcn_files(prefix: str) -> tuple[str, ...]:
    splits = [f"raw/{prefix}_split_0.6_0.2_{i}.npz" for i in range(10)]
    return ("raw/out1_node_feature_label.txt", "raw/out1_graph_edges.txt", *splits)


def _planetoid_files(spec: DatasetSpec, split: str) -> tuple[str, ...]:
    low = spec.source_name.lower()
    files = tuple(f"raw/ind.{low}.{part}" for part in _PLANETOID_PARTS)
    if split == "geom-gcn":
        files += tuple(f"raw/{low}_split_0.6_0.2_{i}.npz" for i in range(10))
    return files


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


def _ogb_files(spec: DatasetSpec, split: str) -> tuple[str, ...]:
    raw = [f"raw/{f}.csv.gz" for f in _OGB_RAW[spec.name]]
    split_files = [f"split/{spec.ogb_split}/{s}.csv.gz" for s in ("train", "valid", "test")]
    return (f"RELEASE_v{spec.ogb_version}.txt", *raw, *split_files)


def _ogb_base(spec: DatasetSpec, split: str, root: Path) -> Path:
    # mirrors PygNodePropPredDataset: a '<dir>_pyg' folder wins when it exists
    dir_name = spec.source_name.replace("-", "_")
    if (root / "ogb" / f"{dir_name}_pyg").exists():
        dir_name += "_pyg"
    return root / "ogb" / dir_name


@functools.cache
def _offline(cls: type, force_reload: bool = False) -> type:
    r"""Subclass of a PyG/OGB dataset class whose ``download`` raises instead of downloading."""

    def download(self: Any) -> None:
        paths = [Path(p) for p in self.raw_paths]
        raise DatasetNotFoundError(
            getattr(self, "name", cls.__name__),
            Path(self.root),
            paths,
            [p for p in paths if not p.exists()],
        )

    namespace: dict[str, Any] = {"download": download, "__module__": __name__}
    if force_reload:  # for classes (OGB) whose __init__ takes no `force_reload`

        def _process(self: Any) -> None:
            self.force_reload = True
            cls._process(self)

        namespace["_process"] = _process
    return type(f"Offline{cls.__name__}", (cls,), namespace)


def _build_planetoid(spec: DatasetSpec, root: Path, split: str, force_reload: bool) -> Data:
    from torch_geometric.datasets import Planetoid

    ds = _offline(Planetoid)(
        str(root / "Planetoid"), spec.source_name, split=split, force_reload=force_reload
    )
    return ds[0]


def _build_webkb(spec: DatasetSpec, root: Path, split: str, force_reload: bool) -> Data:
    from torch_geometric.datasets import WebKB

    return _offline(WebKB)(str(root / "WebKB"), spec.source_name, force_reload=force_reload)[0]


def _build_wikipedia(spec: DatasetSpec, root: Path, split: str, force_reload: bool) -> Data:
    from torch_geometric.datasets import WikipediaNetwork

    return _offline(WikipediaNetwork)(
        str(root / "WikipediaNetwork"),
        spec.source_name,
        geom_gcn_preprocess=True,
        force_reload=force_reload,
    )[0]


def _build_actor(spec: DatasetSpec, root: Path, split: str, force_reload: bool) -> Data:
    from torch_geometric.datasets import Actor

    return _offline(Actor)(str(root / "Actor"), force_reload=force_reload)[0]


def _build_heterophilous(spec: DatasetSpec, root: Path, split: str, force_reload: bool) -> Data:
    from torch_geometric.datasets import HeterophilousGraphDataset

    return _offline(HeterophilousGraphDataset)(
        str(root / "HeterophilousGraphDataset"), spec.source_name, force_reload=force_reload
    )[0]


_MISSING = object()


def _import_ogb() -> type:
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


def _build_ogb(spec: DatasetSpec, root: Path, split: str, force_reload: bool) -> Data:
    from torch_geometric.utils import index_to_mask

    cls = _offline(_import_ogb(), force_reload)
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


def _build_csbm(
    spec: DatasetSpec, root: Path, split: str, force_reload: bool, **kwargs: Any
) -> Data:
    return make_csbm(**kwargs)


@dataclass(frozen=True)
class _Family:
    r"""How a family of datasets is read: the class, the folder, the files, the builder."""

    source: str  # the class that reads the raw files (for list_datasets)
    base: Callable[[DatasetSpec, str, Path], Path] | None
    files: Callable[[DatasetSpec, str], tuple[str, ...]]
    processed: str
    build: Callable[..., Data]
    options: tuple[str, ...] = ("force_reload",)


_CSBM_OPTIONS = (
    "num_nodes",
    "num_classes",
    "avg_degree",
    "homophily",
    "snr",
    "num_features",
    "seed",
    "num_splits",
    "train_ratio",
    "val_ratio",
)

_FAMILIES: dict[str, _Family] = {
    "planetoid": _Family(
        "torch_geometric.datasets.Planetoid",
        lambda s, split, r: (
            r / "Planetoid" / s.source_name / ("geom-gcn" if split == "geom-gcn" else "")
        ),
        _planetoid_files,
        "processed/data.pt",
        _build_planetoid,
    ),
    "webkb": _Family(
        "torch_geometric.datasets.WebKB",
        lambda s, split, r: r / "WebKB" / s.name,
        lambda s, split: _geom_gcn_files(s.name),
        "processed/data.pt",
        _build_webkb,
    ),
    "wikipedia": _Family(
        "torch_geometric.datasets.WikipediaNetwork",
        lambda s, split, r: r / "WikipediaNetwork" / s.name / "geom_gcn",
        lambda s, split: _geom_gcn_files(s.name),
        "processed/data.pt",
        _build_wikipedia,
    ),
    "actor": _Family(
        "torch_geometric.datasets.Actor",
        lambda s, split, r: r / "Actor",
        lambda s, split: _geom_gcn_files("film"),
        "processed/data.pt",
        _build_actor,
    ),
    "heterophilous": _Family(
        "torch_geometric.datasets.HeterophilousGraphDataset",
        lambda s, split, r: r / "HeterophilousGraphDataset" / s.name,
        lambda s, split: (f"raw/{s.name}.npz",),
        "processed/data.pt",
        _build_heterophilous,
    ),
    "ogb": _Family(
        "ogb.nodeproppred.PygNodePropPredDataset",
        _ogb_base,
        _ogb_files,
        "processed/geometric_data_processed.pt",
        _build_ogb,
    ),
    "synthetic": _Family(
        "gnnleaky.datasets.make_csbm", None, lambda s, split: (), "", _build_csbm, _CSBM_OPTIONS
    ),
}


def _check_split(spec: DatasetSpec, split: str | None) -> str:
    split = "public" if split is None else split
    if split not in spec.splits:
        raise ValueError(
            f"split={split!r} is not available for {spec.name!r}; allowed values: "
            f"{', '.join(repr(s) for s in spec.splits)}"
        )
    if spec.family == "planetoid":
        return split
    return "public"  # the other names are aliases of the published splits


def _check_kwargs(function: str, spec: DatasetSpec, kwargs: dict[str, Any]) -> None:
    options = _FAMILIES[spec.family].options
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise TypeError(
            f"{function}({spec.name!r}) got unexpected keyword argument(s) "
            f"{', '.join(unknown)}; accepted: {', '.join(options)}"
        )


def raw_files(
    name: str, root: str | os.PathLike[str] | None = None, split: str = "public"
) -> list[Path]:
    r"""Lists the raw files :func:`load` needs for a dataset, as paths under the data root.

    Args:
        name (str): Dataset name (case-insensitive).
        root (str or os.PathLike, optional): Data root; see :func:`data_root`.
            (default: :obj:`None`)
        split (str, optional): Split name; see :class:`DatasetSpec`. (default: ``'public'``)

    Example:
        >>> [p.name for p in raw_files('minesweeper', root='/data')]
        ['minesweeper.npz']
    """
    spec = info(name)
    split = _check_split(spec, split)
    family = _FAMILIES[spec.family]
    if family.base is None:
        return []
    base = family.base(spec, split, data_root(root))
    return [base / f for f in family.files(spec, split)]


def num_splits(name: str, split: str = "public", **kwargs: Any) -> int:
    r"""Number of train/val/test splits :func:`load` returns for a dataset: the columns
    of its masks (:obj:`1` for masks of shape :obj:`[N]`). Valid split indices of a
    sweep are :obj:`0` to :obj:`num_splits - 1`.

    Args:
        name (str): Dataset name (case-insensitive).
        split (str, optional): Split name; see :func:`load`. (default: ``'public'``)
        **kwargs (optional): For ``csbm``, the arguments of :func:`make_csbm` (only
            ``num_splits`` matters); for the others, those of :func:`load`.

    Example:
        >>> num_splits('cora'), num_splits('cora', split='geom-gcn'), num_splits('texas')
        (1, 10, 10)
        >>> num_splits('csbm'), num_splits('csbm', num_splits=3)
        (10, 3)
    """
    spec = info(name)
    split = _check_split(spec, split)
    _check_kwargs("num_splits", spec, kwargs)
    if spec.family == "synthetic":
        import inspect

        default = inspect.signature(make_csbm).parameters["num_splits"].default
        count = kwargs.get("num_splits", default)
        _require_int("num_splits", count, 1)
        return int(count)
    if spec.family == "planetoid":
        return 10 if split == "geom-gcn" else 1
    return spec.num_splits


# Integrity checks ###########################################################


def _problem(path: Path) -> str | None:
    r"""Returns why a raw or processed file is unreadable, or :obj:`None` if it reads fine."""
    name = path.name
    try:
        if name.startswith("RELEASE_v"):
            return None  # an (empty) marker file
        if path.stat().st_size == 0:
            return "the file is empty"
        if name.endswith(".npz"):
            with np.load(path, allow_pickle=False) as npz:
                for key in npz.files:
                    npz[key]  # decompresses and checks the CRC
        elif name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                while f.read(1 << 24):
                    pass
        elif name.endswith(".pt"):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
                if bad is not None:
                    return f"member {bad!r} fails its CRC check"
        elif name.endswith((".txt", ".test.index")):
            raw = path.read_bytes()
            raw.decode("utf-8")
            if not raw.endswith(b"\n"):
                return "the last line is cut off (no final newline)"
        elif name.startswith("ind."):
            with open(path, "rb") as f, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pickle.load(f, encoding="latin1")
                if f.read(1):
                    return "trailing bytes after the pickle"
    except Exception as exc:  # any failure to read is what we report
        return _brief(exc)
    return None


def _brief(exc: BaseException) -> str:
    """``Type: first line of the message``, at most 200 characters (tracebacks stay chained)."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= 200 else text[:197] + "..."


def _first_problem(paths: list[Path]) -> tuple[Path, str] | None:
    for path in paths:
        if path.exists():
            reason = _problem(path)
            if reason is not None:
                return path, reason
    return None


def _planetoid_consistency(paths: list[Path]) -> tuple[Path, str] | None:
    """A ``test.index`` cut at a line boundary reads fine on its own: check it against ``tx``."""
    index = next((p for p in paths if p.name.endswith(".test.index")), None)
    tx = next((p for p in paths if p.name.endswith(".tx")), None)
    if index is None or tx is None:
        return None
    lines = sum(1 for line in index.read_bytes().splitlines() if line.strip())
    with open(tx, "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = pickle.load(f, encoding="latin1").shape[0]
    if lines != rows:
        return index, f"it lists {lines} test nodes but {tx.name} has {rows} rows (truncated?)"
    return None


def _check_raw(spec: DatasetSpec, paths: list[Path]) -> None:
    found = _first_problem(paths) or _planetoid_consistency(paths)
    if found is not None:
        raise DatasetCorruptError(spec.name, *found)


# load #######################################################################


def _materialise(
    spec: DatasetSpec, family: _Family, root: Path, split: str, force_reload: bool, verify: bool
) -> Data:
    r"""Runs the family's PyG/OGB class on present raw files, with clear errors.

    With :obj:`verify`, the raw files are first checked against the data root's
    :data:`CHECKSUMS` file (where there is one), and the graph read is checked against the
    registry's sizes: a processed cache that disagrees is rebuilt once from the raw files
    (after a warning), and raw files that give the wrong graph raise
    :class:`DatasetCorruptError`.
    """
    assert family.base is not None
    base = family.base(spec, split, root)
    expected = [base / f for f in family.files(spec, split)]
    missing = [p for p in expected if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(spec.name, root, expected, missing)
    if verify:
        _check_checksums(spec, root, expected)
    processed = base / family.processed
    from_cache = not force_reload and processed.exists()
    if not from_cache:
        _check_raw(spec, expected)  # before PyG parses (and silently drops a cut-off line)
    logger.info("loading %s (split %r) from %s", spec.name, split, base)
    data = _build(spec, family, root, split, force_reload, base, expected)
    if not verify:
        return data
    problem = _size_problem(spec, split, data)
    if problem is not None and from_cache:
        warnings.warn(
            f"dataset {spec.name!r}: the processed cache in {processed.parent} holds a graph "
            f"that {problem[1]}; rebuilding it from the raw files in {base}",
            UserWarning,
            stacklevel=3,
        )
        _check_raw(spec, expected)
        data = _build(spec, family, root, split, True, base, expected)
        problem = _size_problem(spec, split, data)
    if problem is not None:
        raise DatasetCorruptError(
            spec.name,
            _suspect(expected, problem[0]),
            f"the graph read from it {problem[1]}; the file may be truncated or from another "
            "release",
        )
    return data


def _build(
    spec: DatasetSpec,
    family: _Family,
    root: Path,
    split: str,
    force_reload: bool,
    base: Path,
    expected: list[Path],
) -> Data:
    r"""The family's builder, its errors turned into named ones; an unreadable processed
    cache is rebuilt from the raw files after a warning."""
    processed = base / family.processed
    try:
        return family.build(spec, root, split, force_reload)
    except (DatasetNotFoundError, DatasetCorruptError):
        raise
    except PermissionError as exc:
        raise PermissionError(
            f"dataset {spec.name!r}: cannot write its processed cache under {processed.parent} "
            f"({_brief(exc)}); point ${ENV_VAR} or `root` at a writable copy of the data"
        ) from exc
    except Exception as exc:
        found = _first_problem(expected)
        if found is not None:
            raise DatasetCorruptError(spec.name, *found) from exc
        cache = sorted(processed.parent.glob("*.pt")) if processed.parent.is_dir() else []
        if not cache or force_reload:
            raise RuntimeError(
                f"dataset {spec.name!r}: processing the raw files in {base} failed: {_brief(exc)}"
            ) from exc
        bad = _first_problem(cache)
        culprit = bad[0] if bad is not None else processed
        msg = (
            f"dataset {spec.name!r}: processed cache file {culprit} is unreadable "
            f"({_brief(exc)}); rebuilding it from the raw files in {base}"
        )
        warnings.warn(msg, UserWarning, stacklevel=4)
        try:
            return family.build(spec, root, split, True)
        except Exception as exc2:
            raise RuntimeError(
                f"dataset {spec.name!r}: rebuilding the processed cache in "
                f"{processed.parent} failed: {_brief(exc2)}"
            ) from exc2


def load(
    name: str,
    root: str | os.PathLike[str] | None = None,
    split: str = "public",
    *,
    verify: bool = True,
    **kwargs: Any,
) -> Data:
    r"""Loads a supported graph as a :class:`torch_geometric.data.Data` with split masks.

    The result carries boolean ``train_mask``, ``val_mask`` and ``test_mask``
    (shape :obj:`[N]` for one split, :obj:`[N, S]` for :obj:`S` splits, as PyG
    does), ``num_classes`` (int) and ``name`` (the canonical name). The metric
    to report is ``info(name).metric``. Nothing is downloaded: absent raw files
    raise :class:`DatasetNotFoundError` naming the files to place; a corrupt
    raw file, one whose checksum differs from the data root's :data:`CHECKSUMS`
    file, or raw files that read as a graph of other sizes than the registry's
    (e.g. an edge file cut at a line boundary) raise :class:`DatasetCorruptError`
    naming the file; an unreadable processed cache, or one that holds a graph of
    the wrong size, is rebuilt from the raw files after a warning (raw files are
    never deleted or modified).

    Supported names and splits (``'public'``, the default, means the splits
    published with the dataset):

    * ``cora``, ``citeseer``, ``pubmed`` (:class:`~torch_geometric.datasets.Planetoid`):
      ``'public'`` (Kipf & Welling, masks :obj:`[N]`), ``'full'`` (all nodes
      not in val/test train) and ``'geom-gcn'`` (ten 60/20/20 splits, :obj:`[N, 10]`).
    * ``cornell``, ``texas``, ``wisconsin``, ``chameleon``, ``squirrel``, ``actor``:
      the ten geom-gcn 60/20/20 splits (``'public'`` = ``'geom-gcn'``).
    * ``roman_empire``, ``amazon_ratings``, ``minesweeper``, ``tolokers``,
      ``questions``: the ten published splits; the last three are binary and
      scored by ROC-AUC.
    * ``ogbn-arxiv`` (made undirected), ``ogbn-products``, ``ogbn-proteins``
      (``x`` is the mean of incoming ``edge_attr``; ``y`` is :obj:`[N, 112]`):
      the official OGB split as masks :obj:`[N]`; labels are 1-D for single-label tasks.
    * ``csbm``: generated by :func:`make_csbm`; ``kwargs`` are its parameters.

    Args:
        name (str): Dataset name, case-insensitive (``'Cora'``, ``'roman-empire'``,
            ``'ogbn_arxiv'`` ...). See :data:`DATASETS`.
        root (str or os.PathLike, optional): Data root; else ``$GNNLEAKY_DATA``,
            else ``./datasets``. (default: :obj:`None`)
        split (str, optional): Split name, see above. (default: ``'public'``)
        verify (bool, optional): Check the graph read against the registry's numbers of
            nodes, edges, features and splits, and the raw files against the data root's
            :data:`CHECKSUMS` file where it has one; a mismatch raises
            :class:`DatasetCorruptError` naming the likely file. :obj:`False` only for a
            deliberately modified copy of a dataset. (default: :obj:`True`)
        **kwargs (optional): For ``csbm``, the arguments of :func:`make_csbm`;
            for the others only ``force_reload`` (re-process the raw files).

    Example:
        >>> from torch_geometric.utils import homophily
        >>> data = load('csbm', num_nodes=200, avg_degree=8, homophily=0.9, seed=0)
        >>> data.num_nodes, data.num_classes, tuple(data.train_mask.shape)
        (200, 2, (200, 10))
        >>> round(homophily(data.edge_index, data.y), 2)
        0.9
    """
    spec = info(name)
    split = _check_split(spec, split)
    family = _FAMILIES[spec.family]
    _check_kwargs("load", spec, kwargs)
    if family.base is None:
        data = family.build(spec, data_root(root), split, False, **kwargs)
    else:
        force_reload = bool(kwargs.get("force_reload", False))
        data = _materialise(spec, family, data_root(root), split, force_reload, verify)
    for key in ("train_mask", "val_mask", "test_mask"):
        mask = data[key].to(torch.bool)
        data[key] = mask.view(-1) if mask.dim() == 2 and mask.size(1) == 1 else mask
    if "num_classes" not in data:
        data.num_classes = spec.classes
    data.name = spec.name
    return data


def _size_problem(spec: DatasetSpec, split: str, data: Data) -> tuple[str, str] | None:
    r"""``(what, sentence)`` for the first of nodes, edges, features and split columns that
    differs from the registry, else :obj:`None`."""
    masks = data.train_mask
    got = {
        "nodes": int(data.num_nodes),
        "edges": int(data.edge_index.size(1)),
        "features": int(data.x.size(1)) if data.x is not None else 0,
        "splits": 1 if masks.dim() == 1 else int(masks.size(1)),
    }
    want = {
        "nodes": spec.nodes,
        "edges": spec.edges,
        "features": spec.features,
        "splits": num_splits(spec.name, split),
    }
    for what in got:
        if got[what] != want[what]:
            return what, (
                f"has {got[what]} {what} where the registry expects {want[what]} "
                f"(nodes, edges, features, splits: {tuple(got.values())} against "
                f"{tuple(want.values())})"
            )
    return None


# which raw file holds what (the first name that matches), to name the likely culprit
_HOLDS: dict[str, tuple[str, ...]] = {
    "nodes": ("node_feature", "node-feat", "num-node-list", ".allx", ".npz"),
    "features": ("node_feature", "node-feat", ".allx", ".npz"),
    "edges": ("graph_edges", "edge.csv", ".graph", ".npz"),
    "splits": ("_split_", "split/", ".npz"),
}


def _suspect(paths: list[Path], what: str) -> Path:
    for pattern in _HOLDS[what]:
        for path in paths:
            if pattern in path.as_posix():
                return path
    return paths[0].parent


# Checksums ##################################################################


@functools.lru_cache(maxsize=8)
def _parse_checksums(path: str, size: int, mtime_ns: int) -> dict[str, str]:
    r"""``relative path -> sha256`` of a ``sha256sum`` file (cached by size and mtime)."""
    sums: dict[str, str] = {}
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([0-9a-fA-F]{64}) [ *](.+)", line)
        if match is None:
            raise ValueError(f"line {lineno} is not '<64 hex digits>  <path>': {line[:80]!r}")
        sums[posixpath.normpath(match.group(2))] = match.group(1).lower()
    return sums


@functools.lru_cache(maxsize=512)
def _sha256(path: str, size: int, mtime_ns: int, inode: int) -> str:
    r"""SHA-256 of a file, cached by its size, mtime and inode (a changed file is re-read)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_checksums(spec: DatasetSpec, root: Path, paths: list[Path]) -> None:
    r"""Checks the raw files of one dataset that the root's :data:`CHECKSUMS` file lists."""
    sums_path = root / CHECKSUMS
    try:
        st = sums_path.stat()
    except FileNotFoundError:
        return
    try:
        sums = _parse_checksums(str(sums_path), st.st_size, st.st_mtime_ns)
    except (OSError, ValueError) as exc:
        raise DatasetCorruptError(spec.name, sums_path, _brief(exc)) from None
    for path in paths:
        want = sums.get(path.relative_to(root).as_posix())
        if want is None:
            continue
        st = path.stat()
        got = _sha256(str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        if got != want:
            raise DatasetCorruptError(
                spec.name,
                path,
                f"its SHA-256 is {got[:16]}..., {sums_path} lists {want[:16]}...",
            )


# list_datasets ##############################################################


def list_datasets(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    r"""Tabulates the supported datasets and whether their raw files are under the data root.

    Columns: ``name``, ``family``, ``nodes``, ``edges``, ``features``,
    ``classes``, ``metric``, ``task``, ``num_splits``, ``source`` (the class
    that reads the files), ``status`` (``'present'`` when every raw file of the
    default split is under the root, else ``'absent'``; ``csbm`` is generated,
    so always ``'present'``), ``splits_present`` (the split names whose files
    are all there) and ``path`` (the dataset's folder under the root).
    Sizes are registry metadata (see :class:`DatasetSpec`).

    Args:
        root (str or os.PathLike, optional): Data root; see :func:`data_root`.
            (default: :obj:`None`)

    Example:
        >>> table = list_datasets(root='/nonexistent')
        >>> table.set_index('name').loc[['cora', 'csbm'], 'status'].tolist()
        ['absent', 'present']
    """
    import pandas as pd

    base_root = data_root(root)
    rows = []
    for spec in DATASETS.values():
        family = _FAMILIES[spec.family]
        present = [
            s for s in spec.splits if all(p.is_file() for p in raw_files(spec.name, base_root, s))
        ]
        path = "" if family.base is None else str(family.base(spec, "public", base_root))
        rows.append(
            dict(
                name=spec.name,
                family=spec.family,
                nodes=spec.nodes,
                edges=spec.edges,
                features=spec.features,
                classes=spec.classes,
                metric=spec.metric,
                task=spec.task,
                num_splits=spec.num_splits,
                source=family.source,
                status="present" if "public" in present else "absent",
                splits_present=",".join(present),
                path=path,
            )
        )
    return pd.DataFrame(rows)


# cSBM #######################################################################


def _pairs_in_class(sizes: np.ndarray) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def _sample_pairs(
    rng: np.random.Generator,
    k: int,
    n: int,
    same: bool,
    order: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    r"""Draws :obj:`k` distinct unordered node pairs, uniformly among same-class
    (:obj:`same=True`) or different-class pairs; returns keys ``u * n + v`` with ``u < v``."""
    if k == 0:
        return np.empty(0, dtype=np.int64)
    total = _pairs_in_class(sizes) if same else n * (n - 1) // 2 - _pairs_in_class(sizes)
    if 4 * k >= total:  # dense: enumerate every candidate pair, choose without replacement
        if same:
            parts = []
            for c in range(sizes.size):
                members = np.sort(order[starts[c] : starts[c] + sizes[c]])
                iu, iv = np.triu_indices(members.size, 1)
                parts.append(members[iu].astype(np.int64) * n + members[iv])
            cand = np.concatenate(parts)
        else:
            iu, iv = np.triu_indices(n, 1)
            keep = y[iu] != y[iv]
            cand = iu[keep].astype(np.int64) * n + iv[keep]
        return np.sort(rng.choice(cand, size=k, replace=False))

    weights = sizes * (sizes - 1.0) if same else sizes * (n - sizes.astype(np.float64))
    weights = weights / weights.sum()
    keys = np.empty(0, dtype=np.int64)
    while keys.size < k:  # sparse: draw the deficit, drop duplicates, repeat (few rounds)
        m = k - keys.size
        c = rng.choice(sizes.size, size=m, p=weights)
        nc = sizes[c]
        a = np.floor(rng.random(m) * nc).astype(np.int64)
        u = order[starts[c] + a]
        if same:
            b = np.floor(rng.random(m) * (nc - 1)).astype(np.int64)
            b += b >= a
            v = order[starts[c] + b]
        else:
            r = np.floor(rng.random(m) * (n - nc)).astype(np.int64)
            r += np.where(r >= starts[c], nc, 0)  # skip the block of u's own class
            v = order[r]
        lo, hi = np.minimum(u, v).astype(np.int64), np.maximum(u, v).astype(np.int64)
        keys = np.concatenate([keys, lo * n + hi])
        keys.sort()  # sort + neighbour test: much faster than np.unique (hash-based) here
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    return keys


def make_csbm(
    num_nodes: int = 1000,
    num_classes: int = 2,
    avg_degree: float = 10.0,
    homophily: float = 0.8,
    snr: float = 1.0,
    num_features: int = 16,
    seed: int = 0,
    num_splits: int = 10,
    train_ratio: float = 0.6,
    val_ratio: float = 0.2,
) -> Data:
    r"""Generates a contextual stochastic block model (cSBM) graph with split masks.

    Labels are balanced (class sizes differ by at most one) and randomly placed.
    With :math:`M = \mathrm{round}(N d / 2)` undirected edges for average degree
    :math:`d`, exactly :math:`M_{\mathrm{same}} = \mathrm{round}(h M)` of them join
    nodes of the same class and :math:`M - M_{\mathrm{same}}` join different
    classes, each set drawn uniformly without replacement among such pairs (an
    SBM conditioned on its edge counts). So the edge homophily is :math:`h` up to
    rounding:

    .. math::
        h_{\mathrm{edge}} = \frac{|\{(i, j) \in \mathcal{E} : y_i = y_j\}|}{|\mathcal{E}|}
        = \frac{M_{\mathrm{same}}}{M}, \qquad |h_{\mathrm{edge}} - h| \le \frac{1}{2M}.

    Features are Gaussian around orthogonal class means at equal distance
    :math:`\mathrm{snr}` (in units of the noise standard deviation
    :math:`\sigma = 1`):

    .. math::
        \mathbf{x}_i = \boldsymbol{\mu}_{y_i} + \boldsymbol{\varepsilon}_i, \quad
        \boldsymbol{\varepsilon}_i \sim \mathcal{N}(\mathbf{0}, \mathbf{I}_F), \quad
        \boldsymbol{\mu}_c = \frac{\mathrm{snr}}{\sqrt{2}} \mathbf{u}_c, \quad
        \mathrm{snr} = \frac{\|\boldsymbol{\mu}_a - \boldsymbol{\mu}_b\|_2}{\sigma}
        \ (a \neq b),

    where :math:`\mathbf{u}_1, \dots, \mathbf{u}_C` are orthonormal (QR of a
    Gaussian :math:`F \times C` matrix). For two classes, projecting onto
    :math:`\boldsymbol{\mu}_1 - \boldsymbol{\mu}_0` gives the Bayes accuracy from
    features alone, :math:`\Phi(\mathrm{snr} / 2)`.

    Splits are :obj:`num_splits` random stratified splits: in each class,
    :math:`\mathrm{round}(\text{train\_ratio} \cdot n_c)` nodes train,
    :math:`\mathrm{round}(\text{val\_ratio} \cdot n_c)` validate, the rest test.
    Everything is deterministic given :obj:`seed` (one
    :class:`numpy.random.Generator`; no global random state). Edges are stored
    in both directions, sorted, without self-loops or duplicates; generation is
    vectorised (a :math:`10^6`-node graph of average degree 15 takes seconds).

    Args:
        num_nodes (int, optional): Number of nodes :math:`N`. (default: :obj:`1000`)
        num_classes (int, optional): Number of classes :math:`C \ge 2`. (default: :obj:`2`)
        avg_degree (float, optional): Average degree :math:`d`. (default: :obj:`10.0`)
        homophily (float, optional): Edge homophily :math:`h \in [0, 1]`. (default: :obj:`0.8`)
        snr (float, optional): Distance between class means over noise std,
            :math:`\ge 0`. (default: :obj:`1.0`)
        num_features (int, optional): Feature dimension :math:`F \ge C`. (default: :obj:`16`)
        seed (int, optional): Random seed. (default: :obj:`0`)
        num_splits (int, optional): Number of splits (masks :obj:`[N]` if 1, else
            :obj:`[N, num_splits]`). (default: :obj:`10`)
        train_ratio (float, optional): Training fraction per class. (default: :obj:`0.6`)
        val_ratio (float, optional): Validation fraction per class; the test
            fraction is the rest, which must be positive. (default: :obj:`0.2`)

    Shapes:
        - **output:** ``x`` :math:`(N, F)` float32, ``edge_index`` :math:`(2, 2M)`,
          ``y`` :math:`(N)`, masks :math:`(N)` or :math:`(N, S)` bool.

    Example:
        >>> from torch_geometric.utils import homophily
        >>> data = make_csbm(num_nodes=1000, num_classes=3, avg_degree=6, homophily=0.3, seed=1)
        >>> tuple(data.x.shape), tuple(data.edge_index.shape), tuple(data.train_mask.shape)
        ((1000, 16), (2, 6000), (1000, 10))
        >>> round(homophily(data.edge_index, data.y), 6)
        0.3
        >>> data.is_undirected(), data.has_self_loops()
        (True, False)
    """
    _require_int("num_nodes", num_nodes, 1)
    _require_int("num_classes", num_classes, 2)
    _require_int(
        "num_features",
        num_features,
        num_classes,
        "(class means are orthogonal, so num_features >= num_classes)",
    )
    _require_int("num_splits", num_splits, 1)
    _require_int("seed", seed, 0)
    if num_nodes < num_classes:
        raise ValueError(f"num_nodes={num_nodes} must be >= num_classes={num_classes}")
    for arg, value, lo, hi in (
        ("homophily", homophily, 0.0, 1.0),
        ("train_ratio", train_ratio, 0.0, 1.0),
        ("val_ratio", val_ratio, 0.0, 1.0),
    ):
        if not (isinstance(value, (int, float)) and lo <= value <= hi):
            raise ValueError(f"{arg}={value!r} must be a number in [{lo}, {hi}]")
    if train_ratio + val_ratio >= 1.0:
        raise ValueError(
            f"train_ratio + val_ratio = {train_ratio + val_ratio} must be < 1 "
            f"(the rest is the test set)"
        )
    for arg, value in (("avg_degree", avg_degree), ("snr", snr)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{arg}={value!r} must be a finite number >= 0")

    n, c = int(num_nodes), int(num_classes)
    rng = np.random.default_rng(seed)
    sizes = np.full(c, n // c, dtype=np.int64)
    sizes[: n % c] += 1
    y = np.repeat(np.arange(c, dtype=np.int64), sizes)
    rng.shuffle(y)
    order = np.argsort(y, kind="stable")  # nodes grouped by class
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    m = round(n * avg_degree / 2)
    m_same = round(homophily * m)
    m_diff = m - m_same
    cap_same = _pairs_in_class(sizes)
    cap_diff = n * (n - 1) // 2 - cap_same
    if m_same > cap_same or m_diff > cap_diff:
        raise ValueError(
            f"avg_degree={avg_degree} with homophily={homophily} needs {m_same} same-class and "
            f"{m_diff} different-class edges, but only {cap_same} and {cap_diff} pairs exist "
            f"for num_nodes={n}, num_classes={c}; lower avg_degree"
        )
    keys = np.concatenate(
        [
            _sample_pairs(rng, m_same, n, True, order, starts, sizes, y),
            _sample_pairs(rng, m_diff, n, False, order, starts, sizes, y),
        ]
    )
    u, v = keys // n, keys % n
    both = np.concatenate([u * n + v, v * n + u])
    both.sort()
    pairs = np.empty((2, both.size), dtype=np.int64)
    np.floor_divide(both, n, out=pairs[0])
    np.subtract(both, pairs[0] * n, out=pairs[1])
    del both
    edge_index = torch.from_numpy(pairs)

    directions, _ = np.linalg.qr(rng.standard_normal((num_features, c)))  # (F, C), orthonormal
    means = (snr / math.sqrt(2.0)) * directions.T
    x = rng.standard_normal((n, num_features), dtype=np.float32)
    x += means.astype(np.float32)[y]

    n_train = np.rint(train_ratio * sizes).astype(np.int64)
    n_val = np.rint(val_ratio * sizes).astype(np.int64)
    masks = np.zeros((3, n, num_splits), dtype=bool)
    for s in range(num_splits):
        # by class, in random order within a class (integer keys: no float rounding across classes)
        perm = np.argsort((y << 32) + rng.integers(0, 1 << 32, size=n, dtype=np.int64))
        rank = np.empty(n, dtype=np.int64)
        rank[perm] = np.arange(n) - starts[y[perm]]
        masks[0, :, s] = rank < n_train[y]
        masks[1, :, s] = (rank >= n_train[y]) & (rank < n_train[y] + n_val[y])
        masks[2, :, s] = rank >= n_train[y] + n_val[y]
    mask_t = torch.from_numpy(masks)
    if num_splits == 1:
        mask_t = mask_t[..., 0]

    data = Data(
        x=torch.from_numpy(x),
        edge_index=edge_index,
        y=torch.from_numpy(y),
        train_mask=mask_t[0],
        val_mask=mask_t[1],
        test_mask=mask_t[2],
    )
    data.num_classes = c
    data.name = "csbm"
    return data


def _require_int(arg: str, value: Any, minimum: int, note: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{arg}={value!r} must be an integer >= {minimum} {note}".rstrip())
