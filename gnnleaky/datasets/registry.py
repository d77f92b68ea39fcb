r"""The registry: one :class:`DatasetSpec` per supported dataset, resolved by name.

:data:`DATASETS` maps each canonical name to its spec; :func:`info` resolves a name or an
alias (case-insensitive, ignoring ``-``, ``_`` and spaces). A spec's ``family`` names how
its files are read (see :mod:`gnnleaky.datasets`); its sizes are what
:func:`~gnnleaky.datasets.load` checks the graph it reads against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DATASETS", "OFFICIAL_METRICS", "TASKS", "DatasetSpec", "check_split", "info"]

#: The metrics results are reported in (a spec's ``metric``).
OFFICIAL_METRICS = ("accuracy", "roc_auc")
#: The prediction tasks (a spec's ``task``).
TASKS = ("multiclass", "binary", "multilabel")


@dataclass(frozen=True)
class DatasetSpec:
    r"""Static description of one supported dataset (one registry entry).

    Sizes are those of the graph :func:`~gnnleaky.datasets.load` returns with the
    default split (``edges`` counts columns of ``edge_index``, so an undirected edge
    counts twice); for ``csbm`` they are the generator's defaults.

    Args:
        name (str): Canonical name (``data.name``).
        family (str): Key of the family table :data:`~gnnleaky.datasets.FAMILIES`
            (``'planetoid'``, ``'webkb'``, ``'wikipedia'``, ``'actor'``,
            ``'heterophilous'``, ``'ogb'``, ``'synthetic'``).
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


def check_split(spec: DatasetSpec, split: str | None) -> str:
    r"""Checks a split name against a spec and returns the split whose files are read
    (:obj:`None` means ``'public'``)."""
    split = "public" if split is None else split
    if split not in spec.splits:
        raise ValueError(
            f"split={split!r} is not available for {spec.name!r}; allowed values: "
            f"{', '.join(repr(s) for s in spec.splits)}"
        )
    if spec.family == "planetoid":
        return split
    return "public"  # the other names are aliases of the published splits
