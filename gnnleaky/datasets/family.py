r"""What a family of datasets is: the class that reads it, where its files live, its builder.

A :class:`Family` is one row of the family table of :mod:`gnnleaky.datasets` (a spec's
``family`` is its key); :func:`offline` turns a PyG/OGB dataset class into one that raises
:class:`~gnnleaky.datasets.DatasetNotFoundError` instead of downloading.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gnnleaky.datasets.errors import DatasetNotFoundError
from gnnleaky.datasets.registry import DatasetSpec

if TYPE_CHECKING:  # pragma: no cover
    from torch_geometric.data import Data

__all__ = ["Family", "offline"]


@dataclass(frozen=True)
class Family:
    r"""How a family of datasets is read: the class, the folder, the files, the builder.

    Args:
        source (str): The class that reads the raw files (for
            :func:`~gnnleaky.datasets.list_datasets`).
        base (callable, optional): ``(spec, split, root) -> folder`` of a dataset under the
            data root; :obj:`None` for a generated dataset (no files).
        files (callable): ``(spec, split) -> raw files`` relative to :obj:`base`.
        processed (str): The processed cache file relative to :obj:`base`.
        build (callable): ``(spec, root, split, force_reload, **options) -> Data``.
        options (tuple[str, ...]): Keyword arguments :func:`~gnnleaky.datasets.load`
            accepts for the family. (default: ``('force_reload',)``)
    """

    source: str
    base: Callable[[DatasetSpec, str, Path], Path] | None
    files: Callable[[DatasetSpec, str], tuple[str, ...]]
    processed: str
    build: Callable[..., Data]
    options: tuple[str, ...] = ("force_reload",)


@functools.cache
def offline(cls: type, force_reload: bool = False) -> type:
    r"""Subclass of a PyG/OGB dataset class whose ``download`` raises instead of downloading.

    Args:
        cls (type): The dataset class.
        force_reload (bool, optional): Re-process on every instantiation, for classes
            (OGB's) whose ``__init__`` takes no ``force_reload``. (default: :obj:`False`)
    """

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
