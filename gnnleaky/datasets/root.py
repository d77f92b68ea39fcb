r"""The data root: the folder under which every dataset's raw files are looked for."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_ROOT", "ENV_VAR", "data_root"]

#: Environment variable naming the data root when ``root`` is not given.
ENV_VAR = "GNNLEAKY_DATA"
#: Data root used when neither ``root`` nor ``GNNLEAKY_DATA`` is set (relative to CWD).
DEFAULT_ROOT = "datasets"


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
