r"""The ``planetoid`` family: Cora, CiteSeer and PubMed, read by PyG's
:class:`~torch_geometric.datasets.Planetoid`.

Files under the data root::

    Planetoid/{Cora,CiteSeer,PubMed}/raw/ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}
    Planetoid/{Cora,CiteSeer,PubMed}/geom-gcn/raw/  the 8 ind.* files
        + <name>_split_0.6_0.2_{0..9}.npz
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gnnleaky.datasets.family import Family, offline
from gnnleaky.datasets.registry import DatasetSpec

if TYPE_CHECKING:  # pragma: no cover
    from torch_geometric.data import Data

__all__ = ["PLANETOID", "PLANETOID_PARTS"]

#: The parts of a Planetoid dataset, one ``raw/ind.<name>.<part>`` file each.
PLANETOID_PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _base(spec: DatasetSpec, split: str, root: Path) -> Path:
    return root / "Planetoid" / spec.source_name / ("geom-gcn" if split == "geom-gcn" else "")


def _files(spec: DatasetSpec, split: str) -> tuple[str, ...]:
    low = spec.source_name.lower()
    files = tuple(f"raw/ind.{low}.{part}" for part in PLANETOID_PARTS)
    if split == "geom-gcn":
        files += tuple(f"raw/{low}_split_0.6_0.2_{i}.npz" for i in range(10))
    return files


def _build(spec: DatasetSpec, root: Path, split: str, force_reload: bool) -> Data:
    from torch_geometric.datasets import Planetoid

    ds = offline(Planetoid)(
        str(root / "Planetoid"), spec.source_name, split=split, force_reload=force_reload
    )
    return ds[0]


PLANETOID = Family("torch_geometric.datasets.Planetoid", _base, _files, "processed/data.pt", _build)
