"""Crash safety of sweeps: SIGKILL at random moments, restart, same results; divergence.

A sweep runs as a subprocess (``python -m gnnleaky.cli sweep``) and is killed with SIGKILL
several times at seeded random moments, each time restarted, then run to completion. The
store must then hold every run exactly once, pass SQLite's integrity check, and hold the
same numbers as an uninterrupted sweep. A run that diverges is stored as failed with its
reason while the rest of the sweep goes on.
"""

from __future__ import annotations

import math
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gnnleaky.bench.config import SweepConfig
from gnnleaky.bench.store import ResultsStore, StoreError, load
from gnnleaky.bench.sweep import run_sweep

REPO = Path(__file__).resolve().parents[2]
CSBM = {
    "num_nodes": 200,
    "num_classes": 2,
    "avg_degree": 8,
    "homophily": 0.8,
    "snr": 1.5,
    "num_features": 16,
    "seed": 0,
}
CONFIG = SweepConfig(
    name="resume-test",
    datasets=[{"name": "csbm", "params": CSBM}],
    depths=[2, 3, 4, 5],
    activations=["relu", "leaky_relu"],
    alphas=[0.2],
    seeds=[0, 1, 2],
    hidden_channels=16,
    epochs=40,
    patience=None,
    metrics=["dirichlet", "rayleigh"],
)
KEYS = {r.key for r in CONFIG.expand()}
SMALL = {**CSBM, "num_nodes": 100}


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    # One thread in the sweep and in the reference: identical kernels, and no oversubscribed
    # spinning threads on a busy 2-core machine.
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **extra}


_MARK = "GNNLEAKY_TEST_SWEEP"


def _marked(mark: str) -> set[int]:
    """Live processes started with ``_MARK=mark`` in their environment: a sweep driver
    and every process it started (children inherit the environment)."""
    needle = f"{_MARK}={mark}".encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    pids.add(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return pids


def _wait_until_gone(mark: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (left := _marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:  # do not leave them running whatever the outcome
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the killed sweep still alive {timeout} s later: {left}"


def _start(cfg: Path, out: Path, args: tuple[str, ...], mark: str = "") -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gnnleaky.cli",
            "sweep",
            str(cfg),
            "--out",
            str(out),
            "--no-progress",
            *args,
        ],
        cwd=REPO,
        env=_env(**{_MARK: mark}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stored(path: Path) -> set[str]:
    """Keys stored so far (read-only; empty while the file does not exist yet)."""
    try:
        with ResultsStore(path, readonly=True) as store:
            return store.finished_keys()
    except (StoreError, sqlite3.Error):
        return set()


def _integrity(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # Every layer and curve row belongs to a stored run (runs are written atomically).
        assert conn.execute(
            "SELECT count(*) FROM layers WHERE run_key NOT IN (SELECT key FROM runs)"
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM curves WHERE run_key NOT IN (SELECT key FROM runs)"
        ).fetchone() == (0,)
        # ... and each stored run has all of them.
        counts = conn.execute(
            "SELECT r.key, (SELECT count(*) FROM curves c WHERE "
            "c.run_key = r.key), (SELECT count(*) FROM layers l WHERE "
            "l.run_key = r.key) FROM runs r"
        ).fetchall()
    finally:
        conn.close()
    for key, curves, layers in counts:
        assert curves == CONFIG.epochs, key
        assert layers > 0, key


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The same sweep, uninterrupted, in this process (all runs of a depth stacked)."""
    path = tmp_path_factory.mktemp("ref") / "ref.sqlite"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = run_sweep(CONFIG, path)
    finally:
        torch.set_num_threads(threads)
    assert (summary.trained, summary.failed) == (len(KEYS), 0)
    return path


def assert_same_results(ref: Path, got: Path) -> None:
    a, b = (load(p) for p in (ref, got))
    ra, rb = (t.runs.set_index("key").sort_index() for t in (a, b))
    assert list(ra.index) == list(rb.index) == sorted(KEYS)
    cols = ["status", "best_epoch", "epochs_run", "train_score", "val_score", "test_score"]
    pd.testing.assert_frame_equal(ra[cols], rb[cols], check_exact=False, rtol=0, atol=1e-12)
    assert (ra["config"] == rb["config"]).all()
    idx = ["run_key", "layer", "stage", "metric", "when"]
    la, lb = (t.layers.set_index(idx).sort_index() for t in (a, b))
    assert la.index.equals(lb.index) and lb.index.is_unique
    np.testing.assert_allclose(la["value"], lb["value"], rtol=1e-6, atol=1e-9)
    ca, cb = (t.curves.set_index(["run_key", "epoch"]).sort_index() for t in (a, b))
    assert ca.index.equals(cb.index) and cb.index.is_unique
    np.testing.assert_allclose(ca["train_loss"], cb["train_loss"], rtol=1e-5)


def _kill_and_restart(
    reference: Path, tmp_path: Path, *, seed: int, min_kills: int, args: tuple[str, ...]
) -> list[int]:
    """Start, SIGKILL at a random moment, restart ... then finish; check the store, and
    that no process of a killed sweep (a worker of the processes backend) outlives it."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.to_yaml())
    out = tmp_path / "killed.sqlite"
    rng = random.Random(seed)
    kills: list[int] = []  # runs stored when each kill landed
    for attempt in range(4 * min_kills):
        before = _stored(out)
        mark = uuid.uuid4().hex
        proc = _start(cfg, out, args, mark)
        try:
            if attempt == 0:  # somewhere in start-up or the first groups
                time.sleep(rng.uniform(0.2, 1.5))
            else:  # after this process stored something new, a random moment later
                deadline = time.monotonic() + 120
                while (
                    proc.poll() is None
                    and len(_stored(out)) <= len(before)
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.02)
                time.sleep(rng.uniform(0.0, 0.1))
            if proc.poll() is not None:  # it finished before the kill
                assert proc.returncode == 0, proc.stderr.read()
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL
        _wait_until_gone(mark)
        stored = _stored(out)
        assert stored >= before, "a kill lost runs that were stored"
        assert stored <= KEYS
        kills.append(len(stored))
        if out.exists():
            _integrity(out)
        if len(kills) >= min_kills and len(stored) < len(KEYS) - 2:
            break  # enough kills; leave work for the final run
    print(f"SIGKILLs landed with {kills} of {len(KEYS)} runs stored")
    assert len(kills) >= min_kills, f"only {len(kills)} kills landed before the sweep finished"
    assert any(0 < k < len(KEYS) for k in kills), f"no kill landed mid-sweep: {kills}"

    proc = _start(cfg, out, args)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    _integrity(out)
    assert _stored(out) == KEYS
    assert_same_results(reference, out)
    # A last restart finds nothing to do.
    proc = _start(cfg, out, args)
    proc.communicate(timeout=300)
    assert proc.returncode == 0 and _stored(out) == KEYS
    return kills


def test_sigkill_and_restart(reference, tmp_path):
    _kill_and_restart(reference, tmp_path, seed=20240607, min_kills=3, args=("--max-group", "2"))


@pytest.mark.slow
def test_sigkill_and_restart_processes_backend(reference, tmp_path):
    # Two worker processes train the chunks; each kill of the driver must take them along.
    args = ("--backend", "processes", "--workers", "2", "--max-group", "2")
    _kill_and_restart(reference, tmp_path, seed=7, min_kills=3, args=args)


def test_workers_die_with_the_driver(tmp_path):
    """SIGKILL of a sweep driver (no cleanup runs) ends its worker processes at once,
    though they are in the middle of long groups."""
    cfg = tmp_path / "long.yaml"
    long = CONFIG.replace(depths=[16], alphas=[0.1, 0.2, 0.5], epochs=2000, seeds=[0])
    cfg.write_text(long.to_yaml())
    mark = uuid.uuid4().hex
    proc = _start(cfg, tmp_path / "r.sqlite", ("--backend", "processes", "--workers", "2"), mark)
    try:
        deadline = time.monotonic() + 120
        while len(_marked(mark) - {proc.pid}) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)
        workers = _marked(mark) - {proc.pid}
        assert len(workers) >= 2, "the workers did not start"
        time.sleep(1.0)  # into their first group
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _wait_until_gone(mark, timeout=15.0)
    assert not (tmp_path / "r.sqlite").exists()  # killed before any run finished


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_many_times_one_run_per_group(reference, tmp_path, seed):
    # Every run its own group: kills land between, and during, many more store writes.
    _kill_and_restart(reference, tmp_path, seed=seed, min_kills=6, args=("--max-group", "1"))


@pytest.mark.parametrize("stacked", [True, False], ids=["stacked", "one-by-one"])
def test_diverging_run_is_stored_as_failed(tmp_path, stacked):
    # Leaky ReLU with slope 30 at depth 32 (no bounds): the activations overflow float32.
    cfg = SweepConfig(
        name="diverge",
        datasets=[{"name": "csbm", "params": SMALL}],
        depths=[32, 2],
        activations=["relu", "leaky_relu"],
        alphas=[0.2, 30.0],
        seeds=[0],
        hidden_channels=8,
        epochs=5,
        patience=None,
        metrics=["dirichlet"],
    )
    path = tmp_path / "r.sqlite"
    summary = run_sweep(cfg, path, stacked=stacked)
    assert (summary.total, summary.trained, summary.stored) == (6, 6, 6)
    runs = load(path).runs.set_index("key")
    bad = runs[(runs.num_layers == 32) & (runs.negative_slope == 30.0)]
    assert len(bad) == 1 and summary.failed == 1
    assert bad.status.iloc[0] == "failed"
    assert re.fullmatch(r"non-finite (loss|outputs) at epoch \d+", bad.reason.iloc[0])
    assert [k for k, _ in summary.failures] == list(bad.index)
    good = runs.drop(bad.index)
    assert (good.status == "ok").all() and good.reason.isna().all()
    assert all(math.isfinite(v) for v in good.test_score)
    assert sorted(good.num_layers) == [2, 2, 2, 32, 32]  # the sweep went on past the failure

    # A restart skips the failed run; --retry-failed trains it again and replaces it.
    assert run_sweep(cfg, path, stacked=stacked).trained == 0
    again = run_sweep(cfg, path, stacked=stacked, retry_failed=True)
    assert (again.trained, again.failed, again.stored) == (1, 1, 1)
    runs2 = load(path).runs.set_index("key")
    assert len(runs2) == 6 and runs2.loc[bad.index[0], "status"] == "failed"


def test_a_run_that_raises_fails_alone(tmp_path, monkeypatch, caplog):
    # Any error while training a stacked group (a bug, a stack too large for memory) is
    # retried run by run: the run that raises is stored as failed with the error, the
    # others of its group are trained, and the sweep goes on.
    from gnnleaky.bench import train

    real = train.train_group

    def flaky(data, cfgs, **kw):
        if any(c.seed == 1 for c in cfgs):
            raise RuntimeError("boom")
        return real(data, cfgs, **kw)

    monkeypatch.setattr(train, "train_group", flaky)
    cfg = SweepConfig(
        name="flaky",
        datasets=[{"name": "csbm", "params": SMALL}],
        depths=[2],
        activations=["relu", "leaky_relu"],
        seeds=[0, 1],
        hidden_channels=8,
        epochs=3,
        metrics=["norm"],
    )
    summary = run_sweep(cfg, tmp_path / "r.sqlite")
    assert (summary.trained, summary.stored, summary.failed) == (4, 4, 2)
    runs = load(tmp_path / "r.sqlite").runs
    assert sorted(runs[runs.status == "failed"].seed) == [1, 1]
    assert set(runs[runs.status == "failed"].reason) == {"RuntimeError: boom"}
    assert (runs[runs.seed == 0].status == "ok").all()
    assert "training them one by one" in caplog.text


def test_sweep_under_deterministic_algorithms(reference, tmp_path):
    # torch flags no kernel of a CPU sweep as nondeterministic, and the numbers are the same.
    path = tmp_path / "det.sqlite"
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        summary = run_sweep(CONFIG, path)
    finally:
        torch.use_deterministic_algorithms(det)
        torch.set_num_threads(threads)
    assert (summary.trained, summary.failed) == (len(KEYS), 0)
    assert_same_results(reference, path)
