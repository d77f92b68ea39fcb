"""The processes backend stores exactly what the local backend stores."""

from __future__ import annotations

import pytest

from gnnleaky.bench.sweep import plan, run_sweep
from gnnleaky.cli import main
from tests.bench._backends import CONFIG, _runs, assert_same_results


def test_processes_backend_matches_local(local_store, tmp_path):
    path = tmp_path / "p.sqlite"
    # chunks of 2 runs over 2 worker processes
    summary = run_sweep(CONFIG, path, backend="processes", workers=2, max_group=2)
    assert (summary.total, summary.trained, summary.stored, summary.failed) == (8, 8, 8, 0)
    assert set(_runs(path).index) == {r.key for r in CONFIG.expand()}
    assert_same_results(local_store, path)
    again = run_sweep(CONFIG, path, backend="processes", workers=2)
    assert (again.skipped, again.trained, again.stored) == (8, 0, 0)


def test_processes_backend_shares_each_group_among_the_workers(local_store, tmp_path):
    """Without max_group every group is cut into one chunk per worker: same results."""
    path = tmp_path / "split.sqlite"
    summary = run_sweep(CONFIG, path, backend="processes", workers=2)
    assert (summary.total, summary.trained, summary.failed) == (8, 8, 0)
    assert_same_results(local_store, path)
    assert set(_runs(path)["group_size"]) == {len(g) // 2 for g in plan(CONFIG)}


def test_processes_backend_through_the_cli(local_store, tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG.replace(depths=[4]).to_yaml())
    out = tmp_path / "cli.sqlite"
    argv = ["sweep", str(cfg), "--backend", "processes", "--workers", "1", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    assert "4 trained (0 failed)" in capsys.readouterr().out
    depth4 = {r.key for r in CONFIG.expand() if r.num_layers == 4}
    assert_same_results(local_store, out, keys=depth4)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_processes_backend_refuses_bad_workers(workers, tmp_path):
    with pytest.raises(ValueError, match="workers must be a positive int"):
        run_sweep(CONFIG, tmp_path / "bad.sqlite", backend="processes", workers=workers)
    assert not (tmp_path / "bad.sqlite").exists() or _runs(tmp_path / "bad.sqlite").empty
