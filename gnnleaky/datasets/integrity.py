r"""File integrity: raw files that read, graphs of the registry's sizes, checksums that match.

Three checks, each naming the file at fault: :func:`check_raw` reads every raw file
through (a truncated compressed file, pickle or text file fails here, before PyG parses it
and silently drops a cut-off line); :func:`size_problem` compares the graph read with the
registry's numbers of nodes, edges, features and splits, and :func:`suspect` names the raw
file most likely at fault; :func:`check_checksums` compares raw files with the data root's
:data:`CHECKSUMS` file where it has one.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import pickle
import posixpath
import re
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gnnleaky.datasets.errors import DatasetCorruptError, brief
from gnnleaky.datasets.registry import DatasetSpec

if TYPE_CHECKING:  # pragma: no cover
    from torch_geometric.data import Data

__all__ = [
    "CHECKSUMS",
    "check_checksums",
    "check_raw",
    "first_problem",
    "size_problem",
    "suspect",
]

#: Checksum file in the data root (``sha256sum`` format, paths relative to the root); where
#: present, :func:`~gnnleaky.datasets.load` checks every raw file it lists against it.
CHECKSUMS = "SHA256SUMS"


# Raw files that read ########################################################


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
        return brief(exc)
    return None


def first_problem(paths: list[Path]) -> tuple[Path, str] | None:
    r"""``(path, reason)`` for the first of :obj:`paths` that exists and does not read
    through, else :obj:`None`."""
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


def check_raw(spec: DatasetSpec, paths: list[Path]) -> None:
    r"""Raises :class:`~gnnleaky.datasets.DatasetCorruptError` naming the first raw file
    that does not read through (or a Planetoid ``test.index`` that disagrees with ``tx``)."""
    found = first_problem(paths) or _planetoid_consistency(paths)
    if found is not None:
        raise DatasetCorruptError(spec.name, *found)


# Graphs of the registry's sizes #############################################


def size_problem(spec: DatasetSpec, data: Data, splits: int) -> tuple[str, str] | None:
    r"""``(what, sentence)`` for the first of nodes, edges, features and split columns that
    differs from the registry (:obj:`splits` is the number of split columns expected), else
    :obj:`None`."""
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
        "splits": splits,
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


def suspect(paths: list[Path], what: str) -> Path:
    r"""The raw file most likely to hold :obj:`what` (a key of :func:`size_problem`)."""
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


def check_checksums(spec: DatasetSpec, root: Path, paths: list[Path]) -> None:
    r"""Checks the raw files of one dataset that the root's :data:`CHECKSUMS` file lists."""
    sums_path = root / CHECKSUMS
    try:
        st = sums_path.stat()
    except FileNotFoundError:
        return
    try:
        sums = _parse_checksums(str(sums_path), st.st_size, st.st_mtime_ns)
    except (OSError, ValueError) as exc:
        raise DatasetCorruptError(spec.name, sums_path, brief(exc)) from None
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
