"""What every sweep backend must store: the same as the local backend (shared by the
backend tests)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd

from gnnleaky.bench.config import SweepConfig
from gnnleaky.bench.store import load

CSBM = {
    "num_nodes": 300,
    "num_classes": 2,
    "avg_degree": 8,
    "homophily": 0.8,
    "snr": 1.5,
    "num_features": 16,
    "seed": 0,
}
CONFIG = SweepConfig(
    name="ray-test",
    datasets=[{"name": "csbm", "params": CSBM}],
    depths=[2, 4],
    activations=["relu", "leaky_relu"],
    alphas=[0.2],
    seeds=[0, 1],
    hidden_channels=16,
    epochs=20,
    patience=None,
    metrics=["dirichlet", "rayleigh"],
)


def _runs(path) -> pd.DataFrame:
    return load(path).runs.set_index("key").sort_index()


def assert_same_results(a, b, keys=None):
    """Same runs, each stored once, with the same numbers."""
    ra, rb = _runs(a), _runs(b)
    if keys is not None:
        ra = ra.loc[sorted(keys)]
    assert list(ra.index) == list(rb.index)
    assert ra.index.is_unique and rb.index.is_unique
    cols = [
        "status",
        "best_epoch",
        "epochs_run",
        "train_score",
        "val_score",
        "test_score",
        "num_layers",
        "act",
        "negative_slope",
        "seed",
    ]
    pd.testing.assert_frame_equal(ra[cols], rb[cols], check_exact=False, rtol=0, atol=1e-12)
    assert (ra["config"] == rb["config"]).all()
    la, lb = (
        load(p).layers.set_index(["run_key", "layer", "stage", "metric", "when"]).sort_index()
        for p in (a, b)
    )
    la = la[la.index.get_level_values("run_key").isin(rb.index)]
    assert la.index.equals(lb.index) and lb.index.is_unique and len(lb)
    np.testing.assert_allclose(la["value"], lb["value"], rtol=1e-6, atol=1e-9)
    ca, cb = (load(p).curves.set_index(["run_key", "epoch"]).sort_index() for p in (a, b))
    ca = ca[ca.index.get_level_values("run_key").isin(rb.index)]
    assert ca.index.equals(cb.index)
    np.testing.assert_allclose(ca["train_loss"], cb["train_loss"], rtol=1e-5)
    with sqlite3.connect(b) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
