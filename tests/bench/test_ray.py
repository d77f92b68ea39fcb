"""The Ray backend stores exactly what the local backend stores.

A local Ray (2 CPUs) is started once for the module, from a working directory where
``gnnleaky`` is not importable, so the workers can only run it through the runtime
environment the backend ships (:func:`gnnleaky.bench.sweep.ray_runtime_env`).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnnleaky.bench.config import SweepConfig
from gnnleaky.bench.store import load
from gnnleaky.bench.sweep import ray_runtime_env, run_sweep
from gnnleaky.cli import main

ray = pytest.importorskip("ray")

REPO = Path(__file__).resolve().parents[2]

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


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray-cwd"))  # workers start here: no gnnleaky on path
    try:
        ray.init(
            num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=ray_runtime_env()
        )
        os.chdir(cwd)
        yield ray
    finally:
        os.chdir(cwd)
        ray.shutdown()


@pytest.fixture(scope="module")
def local_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("local") / "local.sqlite"
    summary = run_sweep(CONFIG, path, backend="local")
    assert (summary.trained, summary.failed) == (8, 0)
    return path


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


def test_ray_backend_matches_local(local_ray, local_store, tmp_path):
    path = tmp_path / "ray.sqlite"
    summary = run_sweep(CONFIG, path, backend="ray")
    assert (summary.total, summary.trained, summary.stored, summary.failed) == (8, 8, 8, 0)
    assert set(_runs(path).index) == {r.key for r in CONFIG.expand()}
    assert_same_results(local_store, path)
    # Running it again finds everything stored and submits nothing.
    again = run_sweep(CONFIG, path, backend="ray")
    assert (again.skipped, again.trained, again.stored) == (8, 0, 0)
    assert len(_runs(path)) == 8


def test_ray_backend_through_the_cli(local_ray, local_store, tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.replace(depths=[4]).to_yaml())
    out = tmp_path / "cli.sqlite"
    assert main(["sweep", str(cfg), "--backend", "ray", "--out", str(out), "--no-progress"]) == 0
    assert "4 trained (0 failed)" in capsys.readouterr().out
    depth4 = {r.key for r in CONFIG.expand() if r.num_layers == 4}
    assert_same_results(local_store, out, keys=depth4)


@pytest.mark.slow
def test_cli_starts_ray_itself(local_store, tmp_path):
    # No Ray running in the sweep's process: the backend starts one with its runtime
    # environment. The driver finds gnnleaky on its sys.path; the workers, started in a
    # directory without it and without PYTHONPATH, only through ``py_modules``.
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.to_yaml())
    out = tmp_path / "self.sqlite"
    argv = ["sweep", str(cfg), "--backend", "ray", "--out", str(out), "--no-progress"]
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); "
        f"from gnnleaky.cli import main; sys.exit(main({argv!r}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "8 trained (0 failed)" in proc.stdout
    assert_same_results(local_store, out)
