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

Modules: :mod:`~gnnleaky.datasets.registry` (the specs and :func:`info`),
:mod:`~gnnleaky.datasets.root` (:func:`data_root`), :mod:`~gnnleaky.datasets.errors`,
:mod:`~gnnleaky.datasets.integrity` (file checks, expected sizes, checksums),
:mod:`~gnnleaky.datasets.family` (what a family is; classes that never download), one
module per group of families (:mod:`~gnnleaky.datasets.planetoid`,
:mod:`~gnnleaky.datasets.heterophily`, :mod:`~gnnleaky.datasets.ogb`), and
:mod:`~gnnleaky.datasets.csbm` (the generator); this module holds the family table and
the entry points :func:`load`, :func:`raw_files`, :func:`num_splits` and
:func:`list_datasets`.
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch_geometric.data import Data

from gnnleaky.datasets.csbm import SYNTHETIC, make_csbm, require_int
from gnnleaky.datasets.errors import DatasetCorruptError, DatasetNotFoundError, brief
from gnnleaky.datasets.family import Family
from gnnleaky.datasets.heterophily import ACTOR, HETEROPHILOUS, WEBKB, WIKIPEDIA
from gnnleaky.datasets.integrity import CHECKSUMS as CHECKSUMS
from gnnleaky.datasets.integrity import (
    check_checksums,
    check_raw,
    first_problem,
    size_problem,
    suspect,
)
from gnnleaky.datasets.ogb import OGB
from gnnleaky.datasets.planetoid import PLANETOID
from gnnleaky.datasets.registry import DATASETS, DatasetSpec, check_split, info
from gnnleaky.datasets.registry import OFFICIAL_METRICS as OFFICIAL_METRICS
from gnnleaky.datasets.registry import TASKS as TASKS
from gnnleaky.datasets.root import DEFAULT_ROOT as DEFAULT_ROOT
from gnnleaky.datasets.root import ENV_VAR, data_root

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

#: The family table: a spec's ``family`` -> how its files are read (:class:`Family`).
FAMILIES: dict[str, Family] = {
    "planetoid": PLANETOID,
    "webkb": WEBKB,
    "wikipedia": WIKIPEDIA,
    "actor": ACTOR,
    "heterophilous": HETEROPHILOUS,
    "ogb": OGB,
    "synthetic": SYNTHETIC,
}


def _check_kwargs(function: str, spec: DatasetSpec, kwargs: dict[str, Any]) -> None:
    options = FAMILIES[spec.family].options
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
    split = check_split(spec, split)
    family = FAMILIES[spec.family]
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
    split = check_split(spec, split)
    _check_kwargs("num_splits", spec, kwargs)
    if spec.family == "synthetic":
        default = inspect.signature(make_csbm).parameters["num_splits"].default
        count = kwargs.get("num_splits", default)
        require_int("num_splits", count, 1)
        return int(count)
    if spec.family == "planetoid":
        return 10 if split == "geom-gcn" else 1
    return spec.num_splits


# load #######################################################################


def _materialise(
    spec: DatasetSpec, family: Family, root: Path, split: str, force_reload: bool, verify: bool
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
        check_checksums(spec, root, expected)
    processed = base / family.processed
    from_cache = not force_reload and processed.exists()
    if not from_cache:
        check_raw(spec, expected)  # before PyG parses (and silently drops a cut-off line)
    logger.info("loading %s (split %r) from %s", spec.name, split, base)
    data = _build(spec, family, root, split, force_reload, base, expected)
    if not verify:
        return data
    splits = num_splits(spec.name, split)
    problem = size_problem(spec, data, splits)
    if problem is not None and from_cache:
        warnings.warn(
            f"dataset {spec.name!r}: the processed cache in {processed.parent} holds a graph "
            f"that {problem[1]}; rebuilding it from the raw files in {base}",
            UserWarning,
            stacklevel=3,
        )
        check_raw(spec, expected)
        data = _build(spec, family, root, split, True, base, expected)
        problem = size_problem(spec, data, splits)
    if problem is not None:
        raise DatasetCorruptError(
            spec.name,
            suspect(expected, problem[0]),
            f"the graph read from it {problem[1]}; the file may be truncated or from another "
            "release",
        )
    return data


def _build(
    spec: DatasetSpec,
    family: Family,
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
            f"({brief(exc)}); point ${ENV_VAR} or `root` at a writable copy of the data"
        ) from exc
    except Exception as exc:
        found = first_problem(expected)
        if found is not None:
            raise DatasetCorruptError(spec.name, *found) from exc
        cache = sorted(processed.parent.glob("*.pt")) if processed.parent.is_dir() else []
        if not cache or force_reload:
            raise RuntimeError(
                f"dataset {spec.name!r}: processing the raw files in {base} failed: {brief(exc)}"
            ) from exc
        bad = first_problem(cache)
        culprit = bad[0] if bad is not None else processed
        msg = (
            f"dataset {spec.name!r}: processed cache file {culprit} is unreadable "
            f"({brief(exc)}); rebuilding it from the raw files in {base}"
        )
        warnings.warn(msg, UserWarning, stacklevel=4)
        try:
            return family.build(spec, root, split, True)
        except Exception as exc2:
            raise RuntimeError(
                f"dataset {spec.name!r}: rebuilding the processed cache in "
                f"{processed.parent} failed: {brief(exc2)}"
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
    split = check_split(spec, split)
    family = FAMILIES[spec.family]
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
        family = FAMILIES[spec.family]
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
