"""SQLite results store: one file holds runs, per-layer metrics and training curves.

A run is keyed by :attr:`RunConfig.key` (a stable hash of its full config). Each run is
written in one transaction together with its layers and curve, with ``INSERT OR IGNORE``
on the key, so a sweep that is killed loses only the runs in flight, a restarted sweep
skips finished runs, and two sweeps writing the same file store every run exactly once.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sqlite3
import subprocess
import time
import urllib.parse
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

__all__ = ["Results", "ResultsStore", "StoreError", "check_writable", "environment", "load"]

log = logging.getLogger(__name__)

MAGIC = "gnnleaky-results"
SCHEMA_VERSION = 1
_SQLITE_HEADER = b"SQLite format 3\x00"

_RUN_COLUMNS = (
    "key",
    "sweep",
    "status",
    "reason",
    "dataset",
    "dataset_label",
    "split",
    "conv",
    "num_layers",
    "hidden_channels",
    "act",
    "activation",
    "negative_slope",
    "prelu_mode",
    "seed",
    "metric",
    "best_epoch",
    "epochs_run",
    "train_score",
    "val_score",
    "test_score",
    "wall_time",
    "group_size",
    "slopes",
    "config",
    "versions",
    "git_sha",
    "created_at",
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY, sweep TEXT, status TEXT NOT NULL, reason TEXT,
    dataset TEXT NOT NULL, dataset_label TEXT, split INTEGER, conv TEXT, num_layers INTEGER,
    hidden_channels INTEGER, act TEXT, activation TEXT, negative_slope REAL, prelu_mode TEXT,
    seed INTEGER, metric TEXT, best_epoch INTEGER, epochs_run INTEGER, train_score REAL,
    val_score REAL, test_score REAL, wall_time REAL, group_size INTEGER, slopes TEXT,
    config TEXT NOT NULL, versions TEXT, git_sha TEXT, created_at REAL
);
CREATE TABLE IF NOT EXISTS layers (
    run_key TEXT NOT NULL REFERENCES runs(key), layer INTEGER NOT NULL, stage TEXT NOT NULL,
    metric TEXT NOT NULL, "when" TEXT NOT NULL, value REAL,
    PRIMARY KEY (run_key, layer, stage, metric, "when")
);
CREATE TABLE IF NOT EXISTS curves (
    run_key TEXT NOT NULL REFERENCES runs(key), epoch INTEGER NOT NULL, train_loss REAL,
    train_score REAL, val_score REAL, test_score REAL, PRIMARY KEY (run_key, epoch)
);
INSERT OR IGNORE INTO meta VALUES ('magic', '{MAGIC}'), ('schema_version', '{SCHEMA_VERSION}');
"""
# A task's numbers beyond its main score (see gnnleaky.bench.tasks). Added to schema version
# 1 later: created in a store that lacks it when the store is opened for writing, read as
# empty from one opened read-only.
_SCALARS = """
CREATE TABLE IF NOT EXISTS scalars (
    run_key TEXT NOT NULL REFERENCES runs(key), name TEXT NOT NULL, value REAL,
    PRIMARY KEY (run_key, name)
);
"""
# The columns each table of schema version SCHEMA_VERSION must have (more are allowed).
_COLUMNS = {
    "meta": ("key", "value"),
    "runs": _RUN_COLUMNS,
    "layers": ("run_key", "layer", "stage", "metric", "when", "value"),
    "curves": ("run_key", "epoch", "train_loss", "train_score", "val_score", "test_score"),
}


class StoreError(ValueError):
    """The path is not a gnnleaky results store (or cannot be used as one)."""


@lru_cache(maxsize=1)
def environment() -> dict[str, Any]:
    """Library versions and the git SHA of the checkout gnnleaky runs from (if any)."""
    import numpy
    import torch
    import torch_geometric

    import gnnleaky

    try:
        sha = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=Path(gnnleaky.__file__).parent,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        sha = None
    return {
        "versions": {
            "gnnleaky": gnnleaky.__version__,
            "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__,
            "numpy": numpy.__version__,
            "python": platform.python_version(),
        },
        "git_sha": sha,
    }


def _check_file(path: Path) -> None:
    """Refuse, without touching it, a file that is not empty and not SQLite."""
    if path.is_dir():
        raise StoreError(f"results path {str(path)!r} is a directory, expected a .sqlite file")
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
        if head != _SQLITE_HEADER:
            raise StoreError(
                f"{str(path)!r} is not a gnnleaky results store (not an SQLite "
                "file); refusing to modify it"
            )


def check_writable(path: str | Path) -> None:
    """Raise :class:`StoreError` naming the problem if a results store cannot be written
    (or created) at ``path``: SQLite writes journal files beside the store, so its folder
    must be writable too.

    Example:
        >>> import tempfile, os
        >>> with tempfile.NamedTemporaryFile() as f:
        ...     try:
        ...         check_writable(os.path.join(f.name, "r.sqlite"))
        ...     except StoreError as err:
        ...         print(err)
        cannot create the results store '...': '...' is a file, not a folder
    """
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"results path {str(path)!r} is a directory, expected a .sqlite file")
    folder = path.absolute().parent
    while not folder.exists():  # the first folder that exists (the rest will be created)
        folder = folder.parent
    if not folder.is_dir():
        raise StoreError(
            f"cannot create the results store {str(path)!r}: {str(folder)!r} is a file, "
            "not a folder"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(
            f"cannot write the results store {str(path)!r}: its folder {str(folder)!r} is "
            "read-only (SQLite writes journal files beside the store)"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise StoreError(
            f"cannot write the results store {str(path)!r}: the file is read-only "
            "(no write permission)"
        )


def _uri(path: Path, mode: str) -> str:
    """An SQLite URI for ``path`` (quoted: a '?' or '#' in a file name is part of the name)."""
    return f"file:{urllib.parse.quote(str(path))}?mode={mode}"


def _connect(uri: str) -> sqlite3.Connection:
    """The one place a store connection is made (autocommit; transactions are explicit)."""
    return sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)


class ResultsStore:
    """A results store on disk (created on first use).

    Args:
        path (str or Path): The SQLite file.
        readonly (bool, optional): Open without creating or writing. (default: ``False``)

    Example:
        >>> import tempfile, os
        >>> from gnnleaky.bench.config import RunConfig
        >>> path = os.path.join(tempfile.mkdtemp(), "r.sqlite")
        >>> with ResultsStore(path) as store:
        ...     store.finished_keys()
        set()
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        _check_file(self.path)
        if readonly and not self.path.exists():
            raise StoreError(f"results store {str(self.path)!r} does not exist")
        if not readonly:
            check_writable(self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite creates -wal / -shm files when it opens a file whose header says WAL; if
        # the file turns out not to be a store, the ones created here are removed again.
        sidecars = [self.path.with_name(self.path.name + s) for s in ("-wal", "-shm")]
        existing = {p for p in sidecars if p.exists()}
        self.conn = None
        try:
            self._open(readonly, wal=sidecars[0] in existing)
        except BaseException:
            if self.conn is not None:
                self.conn.close()
            for p in sidecars:
                if p not in existing:
                    p.unlink(missing_ok=True)
            raise

    def _readonly_uri(self, wal: bool) -> tuple[str, bool]:
        """How to open for reading: ``(uri, query_only)``.

        Where the store and its folder are writable, a read-write connection with
        ``query_only`` set: SQLite then removes the -wal / -shm files it creates when the
        last connection closes (a read-only connection leaves them behind). Otherwise a
        read-only one; with no -wal file beside the store (no connection has it open, and
        we cannot write it) as ``immutable``, which needs no -shm file, so that a store in a
        read-only folder can be read.
        """
        if os.access(self.path, os.W_OK) and os.access(self.path.absolute().parent, os.W_OK):
            return _uri(self.path, "rw"), True
        if not wal:
            return _uri(self.path, "ro") + "&immutable=1", False
        return _uri(self.path, "ro"), False

    def _open(self, readonly: bool, wal: bool) -> None:
        uri, query_only = self._readonly_uri(wal) if readonly else (_uri(self.path, "rwc"), False)
        try:
            self.conn = _connect(uri)
            self.conn.execute("PRAGMA busy_timeout = 60000")
            if query_only:
                self.conn.execute("PRAGMA query_only = ON")
            tables = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as err:
            if readonly and wal and not os.access(self.path.absolute().parent, os.W_OK):
                raise StoreError(
                    f"cannot read the results store {str(self.path)!r}: it has a -wal file "
                    "(runs not yet merged into the store) but SQLite cannot open it in a "
                    f"read-only folder ({err}); copy the store with its -wal file to a "
                    "writable folder"
                ) from None
            raise StoreError(f"{str(self.path)!r} is not a readable results store: {err}") from None
        if tables and "meta" not in tables:
            raise StoreError(
                f"{str(self.path)!r} is an SQLite file but not a gnnleaky results "
                f"store (tables: {sorted(tables)}); refusing to modify it"
            )
        if "meta" in tables:
            magic = self.conn.execute("SELECT value FROM meta WHERE key='magic'").fetchone()
            if not magic or magic[0] != MAGIC:
                raise StoreError(f"{str(self.path)!r} is not a gnnleaky results store")
            self._check_schema(tables, readonly)
        elif not readonly:
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
        if not readonly and "scalars" not in tables:
            self.conn.executescript(f"BEGIN IMMEDIATE;{_SCALARS}COMMIT;")
        self._has_scalars = not readonly or "scalars" in tables

    def _check_schema(self, tables: set[str], readonly: bool) -> None:
        """Refuse, before anything is trained or read, a store of another schema version or
        one that lacks a table or column this version reads and writes."""
        action = "read" if readonly else "write"
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = row[0] if row else None
        if version != str(SCHEMA_VERSION):
            raise StoreError(
                f"results store {str(self.path)!r} has schema_version {version!r}; this "
                f"version of gnnleaky knows schema_version {SCHEMA_VERSION} only; "
                f"refusing to {action} it"
            )
        for table, columns in _COLUMNS.items():
            have = (
                {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
                if table in tables
                else set()
            )
            missing = [c for c in columns if c not in have]
            if missing:
                what = f"table {table!r} " + (f"lacks columns {missing}" if have else "is missing")
                raise StoreError(
                    f"results store {str(self.path)!r} is damaged or of another version: "
                    f"{what} (schema_version {SCHEMA_VERSION} needs them); refusing to "
                    f"{action} it"
                )

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def finished_keys(self, *, include_failed: bool = True) -> set[str]:
        """Keys of stored runs (optionally only the successful ones)."""
        sql = "SELECT key FROM runs" + ("" if include_failed else " WHERE status = 'ok'")
        return {r[0] for r in self.conn.execute(sql)}

    def add(self, result: Any, *, sweep: str = "") -> bool:
        """Store one :class:`~gnnleaky.bench.train.RunResult`; ``False`` if already stored.

        The run row, its layer metrics and its curve are written in one transaction.
        A failed run (``status='failed'``) replaces an earlier failed copy of itself so that
        ``--retry-failed`` can store the new outcome.
        """
        cfg = result.config
        env = environment()
        row = {
            "key": result.key,
            "sweep": sweep,
            "status": result.status,
            "reason": result.reason,
            "dataset": cfg.dataset,
            "dataset_label": cfg.dataset_label,
            "split": cfg.split,
            "conv": cfg.conv,
            "num_layers": cfg.num_layers,
            "hidden_channels": cfg.hidden_channels,
            "act": cfg.act,
            "activation": cfg.activation_label,
            "negative_slope": cfg.negative_slope,
            "prelu_mode": cfg.prelu_mode,
            "seed": cfg.seed,
            "metric": result.metric,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "train_score": _num(result.train_score),
            "val_score": _num(result.val_score),
            "test_score": _num(result.test_score),
            "wall_time": result.wall_time,
            "group_size": result.group_size,
            "slopes": json.dumps(result.slopes),
            "config": json.dumps(cfg.to_dict(), sort_keys=True),
            "versions": json.dumps(env["versions"]),
            "git_sha": env["git_sha"],
            "created_at": time.time(),
        }
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute(
                "DELETE FROM layers WHERE run_key IN (SELECT key FROM runs WHERE key=? "
                "AND status='failed')",
                (result.key,),
            )
            cur.execute(
                "DELETE FROM curves WHERE run_key IN (SELECT key FROM runs WHERE key=? "
                "AND status='failed')",
                (result.key,),
            )
            cur.execute(
                "DELETE FROM scalars WHERE run_key IN (SELECT key FROM runs WHERE key=? "
                "AND status='failed')",
                (result.key,),
            )
            cur.execute("DELETE FROM runs WHERE key=? AND status='failed'", (result.key,))
            cur.execute(
                f"INSERT OR IGNORE INTO runs ({', '.join(_RUN_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_RUN_COLUMNS))})",
                [row[c] for c in _RUN_COLUMNS],
            )
            if cur.rowcount == 0:
                cur.execute("ROLLBACK")
                return False
            cur.executemany(
                'INSERT INTO layers (run_key, layer, stage, metric, "when", value) '
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (result.key, r["layer"], r["stage"], r["metric"], r["when"], _num(r["value"]))
                    for r in result.layers
                ],
            )
            cur.executemany(
                "INSERT INTO curves VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        result.key,
                        c["epoch"],
                        _num(c.get("train_loss")),
                        _num(c.get("train_score")),
                        _num(c.get("val_score")),
                        _num(c.get("test_score")),
                    )
                    for c in result.curve
                ],
            )
            cur.executemany(
                "INSERT INTO scalars VALUES (?, ?, ?)",
                [
                    (result.key, str(name), _num(value))
                    for name, value in sorted(getattr(result, "scalars", {}).items())
                ],
            )
            cur.execute("COMMIT")
        except BaseException as err:
            # SQLite may have ended the transaction itself (a failed COMMIT, e.g. a full
            # disk, rolls back); a ROLLBACK then would fail and hide the real error.
            if self.conn.in_transaction:
                try:
                    cur.execute("ROLLBACK")
                except sqlite3.Error:
                    log.warning("ROLLBACK after %r failed", err, exc_info=True)
            raise
        return True

    def add_many(self, results: Iterable[Any], *, sweep: str = "") -> int:
        """Store several results; returns how many were new."""
        return sum(self.add(r, sweep=sweep) for r in results)

    def tables(self) -> Results:
        """All tables as pandas DataFrames (JSON columns decoded)."""
        runs = pd.read_sql_query("SELECT * FROM runs ORDER BY created_at, key", self.conn)
        for col in ("slopes", "config", "versions"):
            runs[col] = runs[col].map(lambda s: json.loads(s) if isinstance(s, str) else s)
        layers = pd.read_sql_query("SELECT * FROM layers", self.conn)
        curves = pd.read_sql_query("SELECT * FROM curves ORDER BY run_key, epoch", self.conn)
        if self._has_scalars:
            scalars = pd.read_sql_query("SELECT * FROM scalars ORDER BY run_key, name", self.conn)
        else:
            scalars = pd.DataFrame(columns=["run_key", "name", "value"])
        return Results(runs, layers, curves, scalars)


def _num(value: Any) -> float | None:
    """Floats for SQLite; NaN stored as NULL."""
    if value is None:
        return None
    v = float(value)
    return None if v != v else v


class Results(NamedTuple):
    """The tables of a results store: ``runs``, ``layers`` (per-layer metrics), ``curves``
    and ``scalars`` (a task's other numbers: ``run_key``, ``name``, ``value``)."""

    runs: pd.DataFrame
    layers: pd.DataFrame
    curves: pd.DataFrame
    scalars: pd.DataFrame | None = None


def load(path: str | Path) -> Results:
    """Read a results store into pandas DataFrames (read-only; the file is not modified).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "r.sqlite")
        >>> ResultsStore(path).close()
        >>> load(path).runs.shape[0]
        0
    """
    with ResultsStore(path, readonly=True) as store:
        return store.tables()
