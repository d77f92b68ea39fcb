"""The Ray backend stores exactly what the local backend stores.

A local Ray (2 CPUs) is started once for the module, from a working directory where
``gnnleaky`` is not importable, so the workers can only run it through the runtime
environment the backend ships (:func:`gnnleaky.bench.sweep.ray_runtime_env`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gnnleaky.bench.sweep import ray_runtime_env, run_sweep
from gnnleaky.cli import main
from tests.bench._backends import CONFIG, _runs, assert_same_results

ray = pytest.importorskip("ray")

REPO = Path(__file__).resolve().parents[2]


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
