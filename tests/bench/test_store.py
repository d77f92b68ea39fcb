import sqlite3
import threading
from types import SimpleNamespace

import pytest

from gnnleaky.bench.config import RunConfig
from gnnleaky.bench.store import ResultsStore, StoreError, load


def fake_result(seed=0, status="ok", depth=2):
    cfg = RunConfig(
        num_layers=depth, act="prelu", prelu_mode="layer", negative_slope=0.25, seed=seed
    )
    return SimpleNamespace(
        config=cfg,
        key=cfg.key,
        status=status,
        reason=None if status == "ok" else "non-finite loss at epoch 3",
        metric="accuracy",
        best_epoch=4,
        epochs_run=10,
        train_score=1.0,
        val_score=0.8,
        test_score=0.75,
        wall_time=0.5,
        group_size=3,
        slopes={"acts.0": [0.2]},
        layers=[
            {"layer": i, "stage": s, "metric": "dirichlet", "when": w, "value": float(i)}
            for i in range(depth)
            for s in ("pre", "post")
            for w in ("init", "best")
        ],
        curve=[
            {
                "epoch": e,
                "train_loss": 1.0 / (e + 1),
                "train_score": 0.5,
                "val_score": 0.5,
                "test_score": float("nan"),
            }
            for e in range(10)
        ],
    )


def test_add_is_idempotent_and_round_trips(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        assert store.add(fake_result(0), sweep="t")
        assert not store.add(fake_result(0), sweep="t")
        assert store.add(fake_result(1), sweep="t")
    res = load(path)
    assert len(res.runs) == 2 and len(res.layers) == 2 * 8 and len(res.curves) == 20
    row = res.runs.iloc[0]
    assert row.config["negative_slope"] == 0.25 and row.slopes == {"acts.0": [0.2]}
    assert row.versions["torch"] and row.activation == "prelu_layer"
    assert res.curves.test_score.isna().all()  # NaN stored as NULL


def test_failed_run_can_be_replaced(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        store.add(fake_result(0, status="failed"))
        assert store.finished_keys(include_failed=False) == set()
        assert store.add(fake_result(0, status="ok"))
        assert not store.add(fake_result(0, status="failed"))  # ok runs are never replaced
    res = load(path)
    assert list(res.runs.status) == ["ok"] and len(res.layers) == 8


def test_concurrent_writers_store_each_run_once(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultsStore(path).close()
    results = [fake_result(s) for s in range(20)]
    added = []

    def writer():
        with ResultsStore(path) as store:
            added.append(sum(store.add(r) for r in results))

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(added) == 20
    assert len(load(path).runs) == 20


def test_refuses_files_that_are_not_stores(tmp_path):
    text = tmp_path / "notes.sqlite"
    text.write_text("my precious notes")
    with pytest.raises(StoreError, match="not a gnnleaky results store"):
        ResultsStore(text)
    assert text.read_text() == "my precious notes"

    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (a)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(StoreError, match="not a gnnleaky results store"):
        ResultsStore(other)
    assert other.read_bytes() == before

    with pytest.raises(StoreError, match="does not exist"):
        load(tmp_path / "missing.sqlite")
    with pytest.raises(StoreError, match="directory"):
        ResultsStore(tmp_path)


def test_truncated_store_gives_clear_error(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        for s in range(5):
            store.add(fake_result(s))
    data = path.read_bytes()
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(data[:200])
    with pytest.raises(StoreError):
        load(bad).runs  # noqa: B018


def test_refused_file_with_a_wal_header_leaves_no_sidecar_files(tmp_path):
    """A header that claims WAL mode makes SQLite create -wal/-shm files on open; a refused
    file must be left exactly as found, with nothing beside it."""
    path = tmp_path / "r.sqlite"
    content = b"SQLite format 3\x00\x00\x00\x00\x02"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="not a readable results store"):
        ResultsStore(path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.sqlite"]
