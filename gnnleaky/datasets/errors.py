r"""The two errors of :func:`~gnnleaky.datasets.load`: files absent, files unreadable."""

from __future__ import annotations

from pathlib import Path

from gnnleaky.datasets.root import DEFAULT_ROOT, ENV_VAR

__all__ = ["DatasetCorruptError", "DatasetNotFoundError", "brief"]


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


def brief(exc: BaseException) -> str:
    """``Type: first line of the message``, at most 200 characters (tracebacks stay chained)."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= 200 else text[:197] + "..."
