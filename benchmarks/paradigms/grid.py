"""What the paradigm benchmarks share: the activations they compare and a resumable JSON-lines
file of results (one line per fit; a line already in the file is not fitted again)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

#: The benchmarks' names of the activations -> (``act``, ``act_kwargs``) of the models.
ACTS: dict[str, tuple[str, dict[str, Any]]] = {
    "relu": ("relu", {}),
    "leaky0.2": ("leaky_relu", {"negative_slope": 0.2}),
    "leaky0.5": ("leaky_relu", {"negative_slope": 0.5}),
}


def stored(path: Path, key: Sequence[str]) -> dict[tuple, dict[str, Any]]:
    """The rows already in ``path`` (none if it does not exist), by their ``key`` fields."""
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return {tuple(r[k] for k in key): r for r in rows}


@contextmanager
def appender(path: Path) -> Iterator[Callable[..., None]]:
    """``add(fit, *args)`` runs ``fit(*args)`` (which returns a row), adds its ``seconds``,
    appends the row to ``path`` at once (a killed run keeps what it finished) and prints it."""
    with path.open("a") as f:

        def add(fit: Callable[..., dict[str, Any]], *args: Any) -> None:
            t0 = time.perf_counter()
            row = fit(*args)
            row["seconds"] = time.perf_counter() - t0
            f.write(json.dumps(row) + "\n")
            f.flush()
            print(json.dumps(row), flush=True)

        yield add


def mean_std(values: Any, scale: float = 100.0, digits: int = 1) -> str:
    """``"mean ± std"`` of ``values`` times ``scale`` (std over more than one value, else 0)."""
    v = np.asarray(values, dtype=float) * scale
    sd = v.std(ddof=1) if v.size > 1 else 0.0
    return f"{v.mean():.{digits}f} ± {sd:.{digits}f}"
