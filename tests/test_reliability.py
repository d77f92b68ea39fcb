"""No silent wrong result: hostile and careless input to the CLI and the API.

Each test reproduces one case of the hostile-input table in ``docs/reliability.md`` and
checks the exit code (or exception), that the message names the problem, and for a case
that used to give a wrong result silently, the right result. The table names the test of
each row, and ``test_every_case_of_the_table_has_its_test`` keeps the two in step.

Real data is copied into ``tmp_path`` before it is damaged (the copy follows the links of
the data root, so the shared files are never written).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from gnnleaky import datasets as gd
from gnnleaky.bench import store as store_module
from gnnleaky.bench.config import ConfigError, RunConfig, SweepConfig
from gnnleaky.bench.report import bootstrap_ci, config_variants, make_report
from gnnleaky.bench.store import ResultsStore, StoreError, load
from gnnleaky.bench.sweep import check_data, plan, run_sweep
from gnnleaky.cli import main

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "reliability.md"
CSBM = {"num_nodes": 120, "avg_degree": 6, "homophily": 0.8, "snr": 2.0, "num_features": 8}
TINY = {
    "name": "tiny",
    "datasets": [{"name": "csbm", "params": CSBM}],
    "depths": [2],
    "activations": ["relu"],
    "seeds": [0],
    "hidden_channels": 8,
    "epochs": 5,
    "patience": None,
    "metrics": ["dirichlet"],
}


def write_yaml(path: Path, **overrides) -> Path:
    path.write_text(yaml.safe_dump({**TINY, **overrides}))
    return path


def sweep(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["sweep", *argv, "--no-progress"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def copy_raw(name: str, dest_root: Path, split: str = "public") -> list[Path]:
    """Independent copies (links followed) of a dataset's raw files under ``dest_root``."""
    src_root = gd.data_root()
    files = gd.raw_files(name, src_root, split)
    missing = [p for p in files if not p.is_file()]
    if missing:
        pytest.skip(f"{name} raw files missing under {src_root}: {missing[:2]}")
    out = []
    for src in files:
        dst = dest_root / src.relative_to(src_root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **extra}


def run_with_read_only(folder: Path, *argv: str) -> subprocess.CompletedProcess:
    """``python -m gnnleaky.cli *argv`` with ``folder`` read-only: a read-only bind mount
    in a private mount namespace when running as root (root ignores permission bits),
    else ``chmod 555``."""
    cli = [sys.executable, "-m", "gnnleaky.cli", *argv]
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            return subprocess.run(cli, cwd=REPO, env=_env(), capture_output=True, text=True)
        finally:
            folder.chmod(mode)
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: cannot make a folder read-only")
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, str(folder), "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only mount here: {probe.stderr.decode()[:200]}")
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, str(folder), *cli],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
    )


def integrity(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        for table in ("layers", "curves"):
            orphans = conn.execute(
                f"SELECT count(*) FROM {table} WHERE run_key NOT IN (SELECT key FROM runs)"
            ).fetchone()
            assert orphans == (0,), table
    finally:
        conn.close()


# Silent wrong results ##################################################################


def test_report_shows_configs_of_one_cell_apart(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.chdir(tmp_path)
    cfg = write_yaml(tmp_path / "tiny.yaml")
    assert sweep(capsys, str(cfg))[0] == 0
    assert sweep(capsys, str(cfg), "--epochs", "3", "--hidden-channels", "4")[0] == 0
    store = tmp_path / "results" / "tiny.sqlite"
    runs = load(store).runs
    assert len(runs) == 2 and set(runs.seed) == {0}  # two configs, one seed each

    assert main(["report", str(store), "--out", str(tmp_path / "rep")]) == 0
    assert "differ in epochs, hidden_channels" in caplog.text  # a WARNING on stderr
    md = (tmp_path / "rep" / "summary.md").read_text()
    assert "differ in epochs, hidden_channels" in md
    assert "| depth | variant | relu |" in md
    scores = {
        (r.config["epochs"], r.config["hidden_channels"]): r.test_score for r in runs.itertuples()
    }
    for (epochs, hidden), score in scores.items():
        row = f"| 2 | epochs={epochs}, hidden_channels={hidden} | {100 * score:.1f} (n=1) |"
        assert row in md  # each config on its own row, never averaged with the other
    assert "±" not in md.split("## Failed")[0].split("|---|")[1]
    heatmaps = sorted(p.name for p in (tmp_path / "rep").glob("heatmap_*.png"))
    assert heatmaps == ["heatmap_csbm_gcn_1.png", "heatmap_csbm_gcn_2.png"]


def test_report_keeps_unlabelled_csbm_graphs_apart(tmp_path, capsys):
    graphs = [{"name": "csbm", "params": {**CSBM, "homophily": h}} for h in (0.1, 0.9)]
    store = tmp_path / "r.sqlite"
    cfg = write_yaml(tmp_path / "two.yaml", datasets=graphs, seeds=[0, 1])
    assert sweep(capsys, str(cfg), "--out", str(store))[0] == 0
    runs = load(store).runs
    variants = config_variants(runs)
    assert sorted(set(variants)) == ["dataset_params.homophily=0.1", "dataset_params.homophily=0.9"]
    assert main(["report", str(store), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "summary.md").read_text()
    for h in (0.1, 0.9):
        scores = runs.test_score[variants == f"dataset_params.homophily={h}"]
        assert len(scores) == 2  # its two seeds, and nothing of the other graph
        m, s = 100 * scores.mean(), 100 * scores.std()
        lo, hi = (100 * v for v in bootstrap_ci(scores.to_numpy()))
        cell = f"{m:.1f} ± {s:.1f} [{lo:.1f}, {hi:.1f}] (n=2)"
        assert f"| 2 | dataset_params.homophily={h} | {cell} |" in md


def test_report_cell_logic_is_shared_by_table_and_plots():
    base = {"epochs": 200, "hidden_channels": 64, "seed": 0, "split": 0}
    runs = pd.DataFrame(
        {
            "dataset_label": ["a"] * 4,
            "conv": ["gcn"] * 4,
            "num_layers": [2, 2, 2, 4],
            "activation": ["relu"] * 4,
            "negative_slope": [0.0] * 4,
            "config": [base, {**base, "seed": 1, "split": 3}, {**base, "epochs": 3}, base],
        }
    )
    # seeds and splits aggregate; epochs splits the cell; depth 4 is labelled likewise
    assert config_variants(runs).tolist() == ["epochs=200", "epochs=200", "epochs=3", "epochs=200"]
    assert config_variants(runs.iloc[[0, 1, 3]]).tolist() == ["", "", ""]


def _cut_cornell_edges(root: Path) -> Path:
    files = copy_raw("cornell", root)
    edges = next(p for p in files if p.name == "out1_graph_edges.txt")
    lines = edges.read_bytes().splitlines(keepends=True)
    assert len(lines) == 299
    edges.write_bytes(b"".join(lines[:150]))  # cut at a line boundary: every line parses
    return edges


def test_cut_edge_file_is_refused_by_load(tmp_path):
    edges = _cut_cornell_edges(tmp_path)
    with pytest.raises(gd.DatasetCorruptError, match="149 edges where the registry expects 298"):
        gd.load("cornell", root=tmp_path)
    # again, now from the processed cache PyG wrote: rebuilt once, still refused
    with pytest.warns(UserWarning, match="rebuilding"):
        with pytest.raises(gd.DatasetCorruptError) as info:
            gd.load("cornell", root=tmp_path)
    assert info.value.path == edges


def test_cut_edge_file_is_refused_by_the_sweep(tmp_path, capsys):
    _cut_cornell_edges(tmp_path / "data")
    cfg = write_yaml(tmp_path / "c.yaml", datasets=["cornell"])
    store = tmp_path / "r.sqlite"
    rc, out, err = sweep(
        capsys, str(cfg), "--out", str(store), "--data-root", str(tmp_path / "data")
    )
    assert rc == 2
    assert "out1_graph_edges.txt" in err and "149 edges where the registry expects 298" in err
    assert "trained" not in out and not store.exists()


def test_checksum_mismatch_names_the_file(tmp_path):
    files = copy_raw("cornell", tmp_path)
    listed = (gd.data_root() / gd.CHECKSUMS).read_text().splitlines()
    (tmp_path / gd.CHECKSUMS).write_text("\n".join(line for line in listed if "cornell" in line))
    assert gd.load("cornell", root=tmp_path).num_edges == 298  # intact copy: loads
    edges = next(p for p in files if p.name == "out1_graph_edges.txt")
    text = edges.read_text()
    first = text.splitlines()[1]  # one edge moved to another target: counts agree
    src, dst = first.split("\t")
    edges.write_text(text.replace(first, f"{src}\t{(int(dst) + 1) % 183}", 1))
    with pytest.raises(gd.DatasetCorruptError, match=r"out1_graph_edges\.txt.*SHA-256") as info:
        gd.load("cornell", root=tmp_path)
    assert str(tmp_path / gd.CHECKSUMS) in str(info.value)
    # a damaged checksum file is named too
    (tmp_path / gd.CHECKSUMS).write_text("not a checksum line\n")
    with pytest.raises(gd.DatasetCorruptError, match=r"SHA256SUMS.*line 1"):
        gd.load("cornell", root=tmp_path)


def test_wrong_size_processed_cache_is_rebuilt(tmp_path):
    edges = _cut_cornell_edges(tmp_path)
    intact = (gd.data_root() / edges.relative_to(tmp_path)).read_bytes()
    assert gd.load("cornell", root=tmp_path, verify=False).num_edges == 149  # cache of the cut
    edges.write_bytes(intact)  # the raw file repaired; the processed cache still holds 149
    with pytest.warns(UserWarning, match=r"processed cache .* has 149 edges.*rebuilding"):
        data = gd.load("cornell", root=tmp_path)
    assert (data.num_nodes, data.num_edges) == (183, 298)
    assert gd.load("cornell", root=tmp_path).num_edges == 298  # the rebuilt cache is right


@pytest.mark.parametrize("value", ["-1", "0"])
def test_max_group_below_one_is_refused(tmp_path, capsys, value):
    cfg = write_yaml(tmp_path / "t.yaml")
    store = tmp_path / "r.sqlite"
    rc, out, err = sweep(capsys, str(cfg), "--out", str(store), "--max-group", value)
    assert rc == 2
    assert f"argument --max-group: must be an integer >= 1, got {value}" in err
    assert "trained" not in out and not store.exists()
    with pytest.raises(ValueError, match="max_group must be a positive int"):
        plan(SweepConfig(**TINY), max_group=int(value))
    with pytest.raises(ValueError, match="max_group must be a positive int"):
        run_sweep(SweepConfig(**TINY), store, max_group=int(value))
    assert not store.exists()


@pytest.mark.parametrize(
    ("dataset", "splits", "match"),
    [
        ("cora", [0, 5], r"split 5 is not available for dataset 'cora': it has 1 split, "),
        ("cornell", [10], r"split 10 is not available for dataset 'cornell': .*0\.\.9"),
        (
            {"name": "csbm", "params": {**CSBM, "num_splits": 2}},
            [0, 2],
            r"split 2 is not available for dataset 'csbm': it has 2 splits, .*0\.\.1",
        ),
    ],
)
def test_split_index_beyond_the_dataset_is_refused(tmp_path, capsys, dataset, splits, match):
    cfg = write_yaml(tmp_path / "s.yaml", datasets=[dataset], splits=splits)
    store = tmp_path / "r.sqlite"
    rc, _, err = sweep(capsys, str(cfg), "--out", str(store), "--data-root", str(tmp_path))
    assert rc == 2 and re.search(match, err), err
    assert not store.exists()
    with pytest.raises(ConfigError, match=match):
        SweepConfig(**{**TINY, "datasets": [dataset], "splits": splits})


def test_split_index_is_checked_for_expanded_runs_too():
    with pytest.raises(ValueError, match=r"split 10 .* 'cornell'.* 0\.\.9"):
        check_data([RunConfig(dataset="cornell", split=10)])
    with pytest.raises(ValueError, match=r"split 1 .* 'cora'.* 1 split"):
        check_data([RunConfig(dataset="cora", split=1)])
    assert gd.num_splits("cora", split="geom-gcn") == 10  # the 10-split variant of Cora
    SweepConfig(**{**TINY, "datasets": [{"name": "cora", "params": {"split": "geom-gcn"}}],
                   "splits": [9]})  # fmt: skip


def test_single_run_cell_shows_n_and_no_std(tmp_path, capsys):
    store = tmp_path / "r.sqlite"
    assert sweep(capsys, str(write_yaml(tmp_path / "t.yaml")), "--out", str(store))[0] == 0
    assert main(["report", str(store), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "summary.md").read_text()
    score = load(store).runs.test_score.iloc[0]
    assert f"| 2 | {100 * score:.1f} (n=1) |" in md and "± 0.0" not in md


# Tracebacks where a sentence belongs ####################################################


def _damage(root: Path, victim: str, how: str) -> None:
    path = next(p for p in copy_raw("cora", root) if p.name == victim)
    raw = path.read_bytes()
    if how == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    else:  # cut at a line boundary
        lines = raw.splitlines(keepends=True)
        path.write_bytes(b"".join(lines[: len(lines) // 2]))


@pytest.mark.parametrize(
    ("command", "victim", "how"),
    [
        ("sweep", "ind.cora.graph", "truncate"),
        ("sweep", "ind.cora.test.index", "lines"),
        ("energy", "ind.cora.allx", "truncate"),
    ],
)
def test_corrupt_dataset_is_a_sentence(tmp_path, capsys, command, victim, how):
    root = tmp_path / "data"
    _damage(root, victim, how)
    store = tmp_path / "r.sqlite"
    if command == "sweep":
        cfg = write_yaml(tmp_path / "c.yaml", datasets=["cora"])
        argv = ["sweep", str(cfg), "--out", str(store), "--no-progress"]
    else:
        argv = ["energy", "--dataset", "cora", "--depth", "2"]
    rc = main([*argv, "--data-root", str(root)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"gnnleaky {command}: error: dataset 'cora': file ")
    assert victim in err and "Traceback" not in err
    assert not store.exists()  # no empty store left behind


def test_report_out_existing_file(tmp_path, capsys):
    store = tmp_path / "r.sqlite"
    assert sweep(capsys, str(write_yaml(tmp_path / "t.yaml")), "--out", str(store))[0] == 0
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert main(["report", str(store), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"out='{target}' is an existing file" in err
    assert target.read_text() == "keep me"


def test_report_of_failed_runs_only(tmp_path, capsys, caplog):
    store = tmp_path / "r.sqlite"
    # slope 30 at depth 32: every run overflows and is stored as failed
    cfg = write_yaml(
        tmp_path / "f.yaml", depths=[32], activations=["leaky_relu"], alphas=[30.0], seeds=[0, 1]
    )
    assert sweep(capsys, str(cfg), "--out", str(store))[0] == 0
    assert set(load(store).runs.status) == {"failed"}
    out = tmp_path / "rep"
    assert main(["report", str(store), "--out", str(out)]) == 0
    assert "all 2 runs in the store failed: no plots" in caplog.text  # a WARNING on stderr
    assert [p.name for p in out.iterdir()] == ["summary.md"]
    md = (out / "summary.md").read_text()
    assert "2 runs stored, 0 finished, 2 failed" in md and "| 32 | failed |" in md
    assert md.count("non-finite") == 2


def test_energy_csv_into_missing_folder(tmp_path, capsys):
    target = tmp_path / "missing" / "e.csv"
    rc = main(["energy", "--depth", "2", "--csv", str(target)])
    captured = capsys.readouterr()
    assert rc == 2
    assert f"--csv '{target}': folder '{target.parent}' does not exist" in captured.err
    assert captured.out == ""  # refused before the table is computed and printed
    ok = tmp_path / "e.csv"
    assert main(["energy", "--depth", "2", "--csv", str(ok)]) == 0
    assert set(pd.read_csv(ok).layer) == {0, 1}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["energy", "--epochs", "-5"], "argument --epochs: must be an integer >= 0, got -5"),
        (["energy", "--depth", "0"], "argument --depth: must be an integer >= 1, got 0"),
        (["sweep", "--workers", "0"], "argument --workers: must be an integer >= 1, got 0"),
        (["sweep", "--epochs", "x"], "argument --epochs: expected an integer >= 1, got 'x'"),
    ],
)
def test_negative_counts_are_refused(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


class _Cursor:
    """A cursor whose COMMIT fails as SQLite's does on a full disk (the transaction is
    rolled back by SQLite itself), or is interrupted by Ctrl-C after it went through."""

    def __init__(self, cursor: sqlite3.Cursor, failure: str) -> None:
        self._cursor, self._failure = cursor, failure

    def execute(self, sql: str, *args):
        if sql != "COMMIT":
            return self._cursor.execute(sql, *args)
        if self._failure == "full":
            self._cursor.execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")
        self._cursor.execute("COMMIT")
        raise KeyboardInterrupt

    def __getattr__(self, name):
        return getattr(self._cursor, name)


class _Connection:
    def __init__(self, conn: sqlite3.Connection, failure: str) -> None:
        self._conn, self._failure = conn, failure

    def cursor(self):
        return _Cursor(self._conn.cursor(), self._failure)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def _failing_commits(monkeypatch, failure: str) -> None:
    real = store_module._connect
    monkeypatch.setattr(store_module, "_connect", lambda uri: _Connection(real(uri), failure))


@pytest.mark.parametrize(
    ("failure", "error", "stored"),
    [("full", sqlite3.OperationalError, 0), ("interrupt", KeyboardInterrupt, 1)],
)
def test_failed_commit_reports_the_real_cause(tmp_path, monkeypatch, failure, error, stored):
    from tests.bench.test_store import fake_result

    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        store.add(fake_result(0))
    _failing_commits(monkeypatch, failure)
    with ResultsStore(path) as store:
        with pytest.raises(error) as info:
            store.add(fake_result(1))
        assert "cannot rollback" not in str(info.value)
        assert not store.conn.in_transaction
    monkeypatch.undo()
    integrity(path)
    assert len(load(path).runs) == 1 + stored  # the run is there exactly when COMMIT went through


@pytest.mark.parametrize(
    ("failure", "rc", "message"),
    [("full", 1, "results store: database or disk is full"), ("interrupt", 130, "interrupted")],
)
def test_sweep_reports_a_failed_commit(tmp_path, monkeypatch, capsys, failure, rc, message):
    cfg = write_yaml(tmp_path / "t.yaml")
    store = tmp_path / "r.sqlite"
    _failing_commits(monkeypatch, failure)
    got, _, err = sweep(capsys, str(cfg), "--out", str(store))
    assert got == rc
    assert f"gnnleaky sweep: {'error: ' if rc == 1 else ''}{message}" in err
    assert "run the same command to resume" in err and "cannot rollback" not in err
    monkeypatch.undo()
    integrity(store)


def test_real_full_database_keeps_the_store_consistent(tmp_path):
    from tests.bench.test_store import fake_result

    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        store.add(fake_result(0))
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
            for seed in range(1, 200):
                store.add(fake_result(seed, depth=64))
    integrity(path)
    runs = load(path).runs
    assert 1 <= len(runs) < 200 and runs.key.is_unique


def _store_with_one_run(path: Path) -> None:
    from tests.bench.test_store import fake_result

    with ResultsStore(path) as store:
        store.add(fake_result(0))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("ALTER TABLE runs DROP COLUMN git_sha", "table 'runs' lacks columns ['git_sha']"),
        ("UPDATE meta SET value = '99' WHERE key = 'schema_version'", "schema_version '99'"),
        ("DROP TABLE curves", "table 'curves' is missing"),
    ],
)
def test_store_schema_is_checked_on_open(tmp_path, capsys, damage, message):
    path = tmp_path / "r.sqlite"
    _store_with_one_run(path)
    with sqlite3.connect(path) as conn:
        conn.execute(damage)
    conn.close()
    before = path.read_bytes()
    rc, out, err = sweep(capsys, str(write_yaml(tmp_path / "t.yaml")), "--out", str(path))
    assert rc == 2 and message in err and "refusing to write it" in err
    assert "trained" not in out and path.read_bytes() == before  # refused before training
    assert main(["report", str(path), "--out", str(tmp_path / "rep")]) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(StoreError, match=re.escape(message)):
        load(path)


# Other defects ##########################################################################


def _wal_store(folder: Path) -> Path:
    folder.mkdir()
    path = folder / "r.sqlite"
    _store_with_one_run(path)
    assert sorted(p.name for p in folder.iterdir()) == ["r.sqlite"]  # checkpointed, closed
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    return path


def test_report_reads_a_store_in_a_read_only_folder(tmp_path):
    path = _wal_store(tmp_path / "ro")
    out = tmp_path / "rep"
    done = run_with_read_only(path.parent, "report", str(path), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "summary.md").is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.sqlite"]


def test_report_leaves_no_sidecar_files(tmp_path, capsys):
    path = _wal_store(tmp_path / "st")
    before = path.read_bytes()
    assert main(["report", str(path), "--out", str(tmp_path / "rep")]) == 0
    assert len(load(path).runs) == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.sqlite"]
    assert path.read_bytes() == before


def test_sweep_out_into_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    cfg = write_yaml(tmp_path / "t.yaml")
    done = run_with_read_only(folder, "sweep", str(cfg), "--out", str(folder / "r.sqlite"))
    assert done.returncode == 2, done.stderr
    assert f"its folder '{folder}' is read-only" in done.stderr
    assert "not a readable results store" not in done.stderr and "trained" not in done.stdout


def test_dataset_label_with_a_slash_is_refused(tmp_path, capsys):
    entry = {"name": "csbm", "label": "csbm/h", "params": CSBM}
    store = tmp_path / "r.sqlite"
    rc, _, err = sweep(capsys, str(write_yaml(tmp_path / "t.yaml", datasets=[entry])), "--out",
                       str(store))  # fmt: skip
    assert rc == 2 and "label='csbm/h' cannot name report files" in err
    assert not store.exists()


def test_report_of_a_stored_label_with_a_slash(tmp_path):
    # a store written before labels were checked: the report still writes its files inside
    # its folder, under names it can write
    from tests.bench.test_store import fake_result

    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        for label in ("a/b", "a_b"):
            res = fake_result(0)
            res.config = RunConfig(**{**res.config.to_dict(), "dataset_label": label})
            res.key = res.config.key
            store.add(res)
    paths = make_report(path, tmp_path / "rep")
    names = sorted(p.name for p in paths if p.name.startswith("heatmap"))
    assert names == ["heatmap_a_b_gcn-2.png", "heatmap_a_b_gcn.png"]
    assert all(p.parent == tmp_path / "rep" for p in paths)


def test_store_path_with_uri_characters(tmp_path, capsys):
    # '?' and '#' are part of a file name, not an SQLite URI query or fragment: each path
    # is its own store (both used to be the file 'a', the second finding the first's run)
    cfg = str(write_yaml(tmp_path / "t.yaml"))
    for name in ("a?x=1.sqlite", "a#x.sqlite", "a?mode=ro.sqlite"):
        rc, out, _ = sweep(capsys, cfg, "--out", str(tmp_path / name))
        assert rc == 0 and "0 already stored, 1 trained" in out
        assert len(load(tmp_path / name).runs) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a#x.sqlite",
        "a?mode=ro.sqlite",
        "a?x=1.sqlite",
        "t.yaml",
    ]


# The table ##############################################################################


def _table_rows() -> list[dict[str, str]]:
    rows = []
    header = None
    for line in DOC.read_text().splitlines():
        if not line.startswith("|"):
            header = None if not line.strip() else header
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
        elif not set(line) <= set("|-: "):
            rows.append(dict(zip(header, cells)))
    return [r for r in rows if "test" in r]


def test_every_case_of_the_table_has_its_test():
    rows = _table_rows()
    assert len(rows) >= 25
    named = set()
    for row in rows:
        match = re.fullmatch(r"`(tests/[\w/]+\.py)::(\w+)(\[[^\]]*\])?`", row["test"])
        assert match, f"row {row} names no test"
        module = importlib.import_module(match.group(1)[:-3].replace("/", "."))
        assert callable(getattr(module, match.group(2), None)), row["test"]
        if match.group(1) == "tests/test_reliability.py":
            named.add(match.group(2))
    this = "test_every_case_of_the_table_has_its_test"
    here = {n for n, obj in globals().items() if n.startswith("test_") and callable(obj)}
    here.discard(this)
    assert here - named == set(), "tests of this file missing from docs/reliability.md"
