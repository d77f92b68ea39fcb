"""Hostile inputs at every public entry point: a clear error naming the argument, or a
result checked against a known answer -- never a crash deep inside a kernel, never a silent
wrong number.

Entry points: ``LeakyGNN.forward``, the spectral functions, ``datasets.load``,
``load_config`` and the results store.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
import torch

from gnnleaky.bench.config import ConfigError, load_config
from gnnleaky.bench.store import ResultsStore, StoreError
from gnnleaky.bench.store import load as load_store
from gnnleaky.nn import LeakyGNN

# A 4-node path 0-1-2-3 stored in both directions.
PATH_EI = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])


def _model(**kw) -> LeakyGNN:
    torch.manual_seed(0)
    return LeakyGNN(
        3,
        8,
        num_layers=2,
        out_channels=2,
        act="leaky_relu",
        act_kwargs={"negative_slope": 0.2},
        **kw,
    ).eval()


def _x(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(1))


# --------------------------------------------------------------------------------------
# LeakyGNN.forward
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("edge_index", "match"),
    [
        (torch.tensor([[0, 1], [1, 4]]), r"edge_index refers to node 4 .*num_nodes=4"),
        (torch.tensor([[0, -1], [1, 2]]), r"edge_index contains negative node indices"),
        (torch.tensor([[0.0, 1.0], [1.0, 2.0]]), r"edge_index must have an integer dtype"),
        (torch.tensor([[0, 1], [1, 2], [2, 3]]), r"edge_index must have shape \[2, E\]"),
        (torch.tensor([0, 1, 2]), r"edge_index must have shape \[2, E\]"),
        (torch.tensor([[True], [False]]), r"edge_index must have an integer dtype"),
    ],
    ids=["out-of-range", "negative", "float-dtype", "3-rows", "1-D", "bool"],
)
def test_model_rejects_bad_edge_index(edge_index, match):
    with pytest.raises(ValueError, match=match):
        _model()(_x(), edge_index)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_model_passes_non_finite_features_on_as_pyg_does(bad):
    # PyG's models accept them: the affected outputs are not finite, nothing is hidden.
    x = _x()
    x[2, 1] = bad
    out = _model()(x, PATH_EI)
    assert not bool(torch.isfinite(out[2]).all())


def test_model_rejects_feature_node_mismatch():
    # Fewer feature rows than the nodes the edges mention.
    with pytest.raises(ValueError, match=r"edge_index refers to node 3 .*num_nodes=3"):
        _model()(_x(3), PATH_EI)
    # Feature width other than in_channels.
    with pytest.raises(ValueError, match=r"x has 5 features .*in_channels=3"):
        _model()(torch.randn(4, 5), PATH_EI)
    # Integer features, 1-D features.
    with pytest.raises(ValueError, match="x must be a floating-point tensor"):
        _model()(torch.ones(4, 3, dtype=torch.long), PATH_EI)
    with pytest.raises(ValueError, match=r"x must have shape \[N, C\]"):
        _model()(torch.ones(4), PATH_EI)


def test_model_rejects_bad_edge_weight():
    with pytest.raises(ValueError, match="edge_weight has 2 entries but there are 6 edges"):
        _model()(_x(), PATH_EI, torch.ones(2))
    # NaN weights and negative weights are accepted, as by PyG
    out = _model()(_x(), PATH_EI, torch.tensor([1.0, 1, 1, 1, 1, float("nan")]))
    assert not bool(torch.isfinite(out).all())


def test_model_empty_graph():
    out = _model()(torch.zeros(0, 3), torch.zeros(2, 0, dtype=torch.long))
    assert out.shape == (0, 2)


def _mlp_reference(model: LeakyGNN, x: torch.Tensor) -> torch.Tensor:
    """What a GCN computes on a graph without edges: with only self-loops, Â = I."""
    h = x
    for i, conv in enumerate(model.convs):
        h = conv.lin(h) + conv.bias
        if i < model.num_activations:
            h = torch.nn.functional.leaky_relu(h, 0.2)
    return h


def test_model_graph_without_edges_is_an_mlp():
    model, x = _model(), _x()
    out = model(x, torch.zeros(2, 0, dtype=torch.long))
    torch.testing.assert_close(out, _mlp_reference(model, x))
    assert torch.isfinite(out).all()


def test_model_self_loops_are_not_added_twice():
    # gcn_norm adds only the *remaining* self-loops: explicit ones change nothing.
    model, x = _model(), _x()
    loops = torch.arange(4).repeat(2, 1)
    torch.testing.assert_close(model(x, torch.cat([PATH_EI, loops], 1)), model(x, PATH_EI))
    # A graph of only self-loops is the edgeless graph.
    torch.testing.assert_close(model(x, loops), _mlp_reference(model, x))


def test_model_duplicate_edges_count_as_weight():
    # A duplicated edge is an edge of weight 2 (gcn_norm sums weights of equal pairs).
    model, x = _model(), _x()
    dup = torch.cat([PATH_EI, torch.tensor([[1, 2], [2, 1]])], 1)
    weights = torch.tensor([1.0, 1.0, 2.0, 2.0, 1.0, 1.0])
    torch.testing.assert_close(model(x, dup), model(x, PATH_EI, weights))
    assert not torch.allclose(model(x, dup), model(x, PATH_EI))


def test_model_directed_graph_passes_messages_source_to_target():
    # PyG's convention: edge (j, i) sends j's features to i. On 0 -> 1 only node 1 listens,
    # so node 0 computes as if it had no edges, and node 1 does not.
    model, x = _model(), _x(2)
    out = model(x, torch.tensor([[0], [1]]))
    ref = _mlp_reference(model, x)
    torch.testing.assert_close(out[0], ref[0])
    assert not torch.allclose(out[1], ref[1])


# --------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("depth: [2, 4]\n", r"unknown config keys \['depth'\]"),
        ("depths: [2, 4]\nlearning_rate: 0.1\n", r"unknown config keys \['learning_rate'\]"),
        ("epochs: '100'\n", "epochs must be integers"),
        ("epochs: 1.5\n", "epochs must be integers"),
        ("hidden_channels: [64]\n", "hidden_channels must be integers"),
        ("depths: [2, four]\n", "depths must be integers"),
        ("lr: fast\n", "lr must be finite numbers"),
        ("lr: .inf\n", "lr must be finite numbers"),
        ("alphas: [0.1, true]\n", "alphas must be finite numbers"),
        ("seeds: [-1]\n", "seeds must be integers >= 0"),
        ("dropout: 1.0\n", "dropout must be finite numbers"),
        ("prelu_bounds: [0, 1, 2]\n", r"prelu_bounds must be \[lo, hi\]"),
        ("activations: [swish]\n", "unknown activation kind 'swish'"),
        ("datasets: [{name: csbm, nodes: 5}]\n", r"unknown keys \['nodes'\]"),
        ("datasets: [{name: csbm, params: {num_nodez: 5}}]\n", r"unknown params \['num_nodez'\]"),
        (
            "datasets: [{name: csbm, params: {num_nodes: many}}]\n",
            r"datasets\[csbm\]\.params\.num_nodes must be an integer, got 'many'",
        ),
        ("datasets: [{name: csbm, params: {snr: .nan}}]\n", r"params\.snr must be a finite number"),
        ("datasets: [{name: cora, params: {split: 3}}]\n", r"params\.split must be a string"),
        ("activations: [prelu_layer]\nprelu_inits: []\n", "prelu_inits is empty"),
        ("metrics: [energy]\n", "unknown metric 'energy'"),
        ("metrics: [[dirichlet]]\n", "unknown metric"),
        ("- a\n- b\n", "must be a mapping, got list"),
        ("depths: [2\n", "not valid YAML"),
        ("!!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
    ],
)
def test_config_errors_name_the_problem(tmp_path, text, match):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_config_accepts_every_probe_metric(tmp_path):
    from gnnleaky.spectral import METRICS

    path = tmp_path / "cfg.yaml"
    path.write_text(f"metrics: {sorted(METRICS)}\n")
    assert set(load_config(path).metrics) == set(METRICS)


def test_config_yaml_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError):
        load_config(path)
    assert not marker.exists()


def test_config_missing_file_and_binary_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(ConfigError, match=r"binary\.yaml"):
        load_config(path)


def test_config_non_string_keys(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("1: 2\nname: x\nfoo: 3\n")
    with pytest.raises(ConfigError, match="unknown config keys"):
        load_config(path)


def test_config_huge_numbers(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(f"lr: {10**400}\n")
    with pytest.raises(ConfigError, match="lr must be finite numbers"):
        load_config(path)


# --------------------------------------------------------------------------------------
# Results store
# --------------------------------------------------------------------------------------
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"key,value\n1,2\n", "not an SQLite file"),
        (b"SQLite format 3\x00" + b"\x00" * 50, "not a readable results store"),
    ],
    ids=["csv", "truncated-sqlite"],
)
def test_store_refuses_a_file_that_is_not_a_store(tmp_path, content, match):
    path = tmp_path / "results.sqlite"
    path.write_bytes(content)
    before = _digest(path)
    with pytest.raises(StoreError, match=match):
        ResultsStore(path)
    with pytest.raises(StoreError, match=match):
        load_store(path)
    assert _digest(path) == before


def test_store_refuses_another_sqlite_database(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
        conn.execute("INSERT INTO people VALUES ('ada')")
    conn.close()
    before = _digest(path)
    with pytest.raises(StoreError, match=r"not a gnnleaky results store \(tables: \['people'\]\)"):
        ResultsStore(path)
    with pytest.raises(StoreError, match="not a gnnleaky results store"):
        load_store(path)
    assert _digest(path) == before
    assert not Path(f"{path}-wal").exists()


def test_store_refuses_a_directory_and_a_missing_file(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        ResultsStore(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        load_store(tmp_path / "absent.sqlite")
    assert not (tmp_path / "absent.sqlite").exists()


# --------------------------------------------------------------------------------------
# Datasets: a corrupt or truncated raw file under the data root
# --------------------------------------------------------------------------------------
@pytest.fixture
def cora_copy(tmp_path):
    """Cora's raw files copied (as real files, never links) into a fresh data root."""
    from gnnleaky import datasets

    src_root = Path(os.environ.get(datasets.ENV_VAR, "datasets"))
    src = datasets.raw_files("cora", root=src_root)
    if not all(p.is_file() for p in src):
        pytest.skip(f"Cora raw files not under {src_root} (set {datasets.ENV_VAR})")
    root = tmp_path / "data"
    dst = datasets.raw_files("cora", root=root)
    digests = {}
    for s, d in zip(src, dst):
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s, d)  # follows links: d is an independent copy
        assert not d.is_symlink()
        digests[s] = _digest(s)
    yield root, dst
    assert {s: _digest(s) for s in src} == digests, "the original data files were modified"


@pytest.mark.parametrize("victim", ["ind.cora.graph", "ind.cora.x", "ind.cora.test.index"])
def test_dataset_truncated_raw_file(cora_copy, victim):
    from gnnleaky import datasets

    root, files = cora_copy
    path = next(p for p in files if p.name == victim)
    raw = path.read_bytes()
    cut = len(raw) // 2
    while raw[cut - 1 : cut] == b"\n":  # cut inside a line (see the test below)
        cut += 1
    path.write_bytes(raw[:cut])
    with pytest.raises(datasets.DatasetCorruptError, match=victim) as info:
        datasets.load("cora", root=root)
    assert info.value.path == path
    assert path.read_bytes() == raw[:cut]  # reported, not deleted or rewritten


def test_dataset_raw_file_truncated_at_a_line_boundary(cora_copy):
    from gnnleaky import datasets

    root, files = cora_copy
    path = next(p for p in files if p.name == "ind.cora.test.index")
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[: len(lines) // 2]))
    with pytest.raises(datasets.DatasetCorruptError, match=r"ind\.cora\.test\.index"):
        datasets.load("cora", root=root)


def test_dataset_garbage_and_empty_raw_file(cora_copy):
    from gnnleaky import datasets

    root, files = cora_copy
    path = next(p for p in files if p.name == "ind.cora.allx")
    path.write_bytes(b"this is not a pickle\n" * 10)
    with pytest.raises(datasets.DatasetCorruptError, match=r"ind\.cora\.allx"):
        datasets.load("cora", root=root)
    path.write_bytes(b"")
    with pytest.raises(datasets.DatasetCorruptError, match="empty"):
        datasets.load("cora", root=root)


def test_dataset_corrupt_processed_cache_is_rebuilt(cora_copy):
    from gnnleaky import datasets

    root, _ = cora_copy
    data = datasets.load("cora", root=root)
    caches = sorted((root / "Planetoid" / "Cora" / "processed").glob("data*.pt"))
    assert caches
    caches[0].write_bytes(caches[0].read_bytes()[:100])
    with pytest.warns(UserWarning, match="rebuilding"):
        again = datasets.load("cora", root=root)
    assert torch.equal(again.edge_index, data.edge_index)
    assert torch.equal(again.x, data.x)


def test_dataset_missing_raw_file_names_it(cora_copy):
    from gnnleaky import datasets

    root, files = cora_copy
    files[0].unlink()
    with pytest.raises(datasets.DatasetNotFoundError, match=files[0].name):
        datasets.load("cora", root=root)


# --------------------------------------------------------------------------------------
# Spectral functions
# --------------------------------------------------------------------------------------
def _spectral():
    from gnnleaky import spectral as sp

    return {
        "dirichlet_energy": sp.dirichlet_energy,
        "dirichlet_energy_sym": lambda x, ei, **kw: sp.dirichlet_energy(x, ei, None, "sym", **kw),
        "rayleigh_quotient": sp.rayleigh_quotient,
        "high_frequency_ratio": sp.high_frequency_ratio,
        "high_frequency_ratio_kpm": lambda x, ei, **kw: sp.high_frequency_ratio(
            x, ei, method="kpm", **kw
        ),
        "band_energy": sp.band_energy,
        "spectral_density": lambda x, ei, **kw: sp.spectral_density(
            x, ei, num_moments=32, **kw
        ).band_energy(4),
        "layer_metrics": lambda x, ei, **kw: torch.stack(
            list(
                sp.layer_metrics(
                    x, ei, ["dirichlet", "rayleigh", "hf_ratio", "mad", "norm"], **kw
                ).values()
            )
        ),
    }


SPECTRAL = sorted(_spectral())


def _dense_laplacian(
    edge_index: torch.Tensor, num_nodes: int, edge_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """D - A with A[i, j] the summed weight of every (i, j) entry, self-loops dropped."""
    w = (
        torch.ones(edge_index.size(1), dtype=torch.float64)
        if edge_weight is None
        else edge_weight.double()
    )
    a = torch.zeros(num_nodes, num_nodes, dtype=torch.float64)
    a.index_put_((edge_index[0], edge_index[1]), w, accumulate=True)
    a.fill_diagonal_(0)
    return torch.diag(a.sum(1)) - a


def _dense_energy(x, edge_index, edge_weight=None):
    lap = _dense_laplacian(edge_index, x.size(0), edge_weight)
    x = x.double()
    return 2.0 / x.size(0) * torch.trace(x.T @ lap @ x)


@pytest.mark.parametrize("fn", SPECTRAL)
@pytest.mark.parametrize(
    ("edge_index", "match"),
    [
        (torch.tensor([[0, 1], [1, 9]]), r"edge_index refers to node 9 .*num_nodes=4"),
        (torch.tensor([[0, -1], [-1, 0]]), r"edge_index contains negative node indices"),
        (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), r"edge_index must have an integer dtype"),
        (torch.tensor([[0, 1, 2], [1, 0, 3], [0, 0, 0]]), r"edge_index must have shape"),
        (torch.tensor([0, 1]), r"edge_index must have shape"),
    ],
    ids=["out-of-range", "negative", "float-dtype", "3-rows", "1-D"],
)
def test_spectral_rejects_bad_edge_index(fn, edge_index, match):
    with pytest.raises(ValueError, match=match):
        _spectral()[fn](_x(), edge_index)


@pytest.mark.parametrize("fn", SPECTRAL)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_spectral_rejects_non_finite_features(fn, bad):
    x = _x()
    x[1, 2] = bad
    if fn == "layer_metrics":  # documented: a diverged layer is recorded as NaN, not a number
        assert torch.isnan(_spectral()[fn](x, PATH_EI)).all()
        return
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        _spectral()[fn](x, PATH_EI)


@pytest.mark.parametrize("fn", SPECTRAL)
def test_spectral_rejects_feature_node_mismatch(fn):
    with pytest.raises(ValueError, match=r"edge_index refers to node 3 .*num_nodes=3"):
        _spectral()[fn](_x(3), PATH_EI)
    with pytest.raises(ValueError, match=r"x must (have|be a (floating )?tensor of) shape"):
        _spectral()[fn](torch.ones(4), PATH_EI)


@pytest.mark.parametrize("fn", SPECTRAL)
def test_spectral_empty_graph_is_zero(fn):
    out = _spectral()[fn](torch.zeros(0, 3), torch.zeros(2, 0, dtype=torch.long))
    assert torch.isfinite(out).all() and (out == 0).all()


def test_spectral_graph_without_edges():
    from gnnleaky import spectral as sp

    x, none = _x(), torch.zeros(2, 0, dtype=torch.long)
    sq = float((x.double() ** 2).sum())
    # D - A = 0: no energy, not NaN.
    assert float(sp.dirichlet_energy(x, none)) == 0.0
    # Isolated nodes: L_ii = 1 for "sym" (PyG's convention), so every signal sits at 1 ...
    assert float(sp.rayleigh_quotient(x, none)) == pytest.approx(1.0)
    assert float(sp.dirichlet_energy(x, none, None, "sym")) == pytest.approx(sq)
    # ... which the band convention splits half and half at the cutoff 1.0.
    assert float(sp.high_frequency_ratio(x, none)) == pytest.approx(0.5)
    assert float(sp.high_frequency_ratio(x, none, method="kpm")) == pytest.approx(0.5, abs=1e-6)
    # GCN's operator with self-loops: A + I normalized is I, so L = 0.
    assert float(sp.rayleigh_quotient(x, none, add_self_loops=True)) == 0.0
    assert float(sp.band_energy(x, none).sum()) == pytest.approx(sq)
    assert float(sp.spectral_density(x, none, num_moments=16).total) == pytest.approx(sq)


def test_spectral_zero_features_are_zero_not_nan():
    from gnnleaky import spectral as sp

    x = torch.zeros(4, 3)
    for value in (
        sp.rayleigh_quotient(x, PATH_EI),
        sp.high_frequency_ratio(x, PATH_EI),
        sp.dirichlet_energy(x, PATH_EI),
        sp.spectral_density(x, PATH_EI).total,
    ):
        assert float(value) == 0.0


def test_spectral_duplicate_edges_are_weights():
    from gnnleaky import spectral as sp

    x = _x()
    # Edge 1-2 listed twice in both directions: A_12 = 2, as the dense reference says.
    dup = torch.cat([PATH_EI, torch.tensor([[1, 2], [2, 1]])], 1)
    weights = torch.tensor([1.0, 1.0, 2.0, 2.0, 1.0, 1.0])
    got = sp.dirichlet_energy(x, dup)
    torch.testing.assert_close(got, _dense_energy(x, dup))
    torch.testing.assert_close(got, sp.dirichlet_energy(x, PATH_EI, weights))
    assert not torch.allclose(got, sp.dirichlet_energy(x, PATH_EI))
    torch.testing.assert_close(
        sp.rayleigh_quotient(x, dup), sp.rayleigh_quotient(x, PATH_EI, weights)
    )
    torch.testing.assert_close(
        sp.high_frequency_ratio(x, dup), sp.high_frequency_ratio(x, PATH_EI, weights)
    )
    # Duplicated in one direction only, the graph is directed: refused, not miscounted.
    with pytest.raises(ValueError, match="edge_index is directed"):
        sp.dirichlet_energy(x, torch.cat([PATH_EI, torch.tensor([[1], [2]])], 1))


def test_spectral_self_loops():
    from gnnleaky import spectral as sp

    x = _x()
    loops = torch.cat([PATH_EI, torch.tensor([[0, 2, 2], [0, 2, 2]])], 1)
    # A self-loop has x_i - x_i = 0: no unnormalized energy, as the dense reference says.
    torch.testing.assert_close(sp.dirichlet_energy(x, loops), sp.dirichlet_energy(x, PATH_EI))
    torch.testing.assert_close(sp.dirichlet_energy(x, loops), _dense_energy(x, PATH_EI))
    # The normalized operators ignore them unless add_self_loops=True (PyG's get_laplacian).
    for fn in (sp.rayleigh_quotient, sp.high_frequency_ratio):
        torch.testing.assert_close(fn(x, loops), fn(x, PATH_EI))
    # A graph of self-loops only has no edges.
    only = torch.arange(4).repeat(2, 1)
    assert float(sp.dirichlet_energy(x, only)) == 0.0


def test_spectral_directed_graph_refused_or_symmetrized():
    from gnnleaky import spectral as sp

    x = _x()
    directed = torch.tensor([[0, 1, 2], [1, 2, 3]])  # a one-way path
    for fn in _spectral().values():
        with pytest.raises(ValueError, match=r"edge_index is directed.*symmetrize=True"):
            fn(x, directed)
    # symmetrize=True measures (A + A^T) / 2: half the energy of the undirected path.
    got = sp.dirichlet_energy(x, directed, symmetrize=True)
    both = torch.cat([directed, directed.flip(0)], 1)
    torch.testing.assert_close(got, _dense_energy(x, both, torch.full((6,), 0.5)))
    torch.testing.assert_close(got, 0.5 * sp.dirichlet_energy(x, PATH_EI))
    # On an undirected graph symmetrize is a no-op.
    torch.testing.assert_close(
        sp.dirichlet_energy(x, PATH_EI, symmetrize=True), sp.dirichlet_energy(x, PATH_EI)
    )


def test_spectral_rejects_bad_options():
    from gnnleaky import spectral as sp

    x = _x()
    with pytest.raises(ValueError, match="normalization must be one of"):
        sp.dirichlet_energy(x, PATH_EI, normalization="symmetric")
    with pytest.raises(ValueError, match="edge_weight must be non-negative"):
        sp.dirichlet_energy(x, PATH_EI, torch.tensor([1.0, 1, -1, -1, 1, 1]))
    with pytest.raises(ValueError, match="edge_weight has 2 entries"):
        sp.dirichlet_energy(x, PATH_EI, torch.ones(2))
    with pytest.raises(ValueError, match="bands must be"):
        sp.band_energy(x, PATH_EI, bands=0)
    with pytest.raises(ValueError, match="metrics must be names from"):
        sp.layer_metrics(x, PATH_EI, ["energy"])
    with pytest.raises(ValueError, match="method must be one of"):
        sp.high_frequency_ratio(x, PATH_EI, method="fast")
