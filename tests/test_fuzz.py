"""Hypothesis fuzzing of config loading, the results store and the spectral functions.

Properties, not examples: whatever the input, a config loads to a valid ``SweepConfig``
(which expands and round-trips through YAML) or raises ``ConfigError``; a file that is not
a results store raises ``StoreError`` and is left untouched; the spectral functions return
finite numbers with their known invariants on any small graph, or raise ``ValueError``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnnleaky.bench.config import ConfigError, SweepConfig, load_config
from gnnleaky.bench.store import ResultsStore, StoreError

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------------------
# Config loading
# --------------------------------------------------------------------------------------
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 70)
    | st.integers(-(10**400), 10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(["csbm", "cora", "gcn", "relu", "1e-3"])
)
_anything = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=6) | st.integers(-3, 3), inner, max_size=3)
    ),
    max_leaves=6,
)


def _small_list(elements):
    return st.lists(elements, min_size=0, max_size=3)


_csbm = st.fixed_dictionaries(
    {"name": st.just("csbm")},
    optional={
        "label": st.text(max_size=6) | _anything,
        "params": st.dictionaries(
            st.sampled_from(["num_nodes", "avg_degree", "snr", "seed", "homophily", "nodes"]),
            st.integers(1, 500) | st.floats(0, 5) | _anything,
            max_size=3,
        ),
        "extra": _anything,
    },
)
# Values near the valid ones for every field (with a chance of anything at all).
_FIELDS = {
    "name": st.text(max_size=8),
    "datasets": _small_list(st.sampled_from(["csbm", "cora", "CSBM", "coraa"]) | _csbm),
    "convs": _small_list(st.sampled_from(["gcn", "sage", "gat", "gin", "gcnii", "gcn2"])),
    "depths": _small_list(st.integers(-1, 8)),
    "activations": _small_list(
        st.sampled_from(
            ["relu", "leaky_relu", "leaky", "prelu", "prelu_layer", "prelu_channel", "gelu"]
        )
    ),
    "alphas": _small_list(st.floats(-1, 3) | st.integers(0, 2)),
    "alpha": st.floats(0, 1),
    "prelu_inits": _small_list(st.floats(0, 1)),
    "prelu_bounds": st.none() | _small_list(st.floats(-1, 2)),
    "splits": _small_list(st.integers(-1, 3)),
    "seeds": _small_list(st.integers(-1, 3)) | st.integers(0, 3),
    "hidden_channels": st.integers(-1, 64),
    "epochs": st.integers(-1, 300) | st.floats(0, 10),
    "lr": st.floats(-1, 1),
    "weight_decay": st.floats(-1e-3, 1e-2),
    "dropout": st.floats(-0.5, 1.5),
    "patience": st.none() | st.integers(-1, 100),
    "metrics": _small_list(
        st.sampled_from(
            [
                "dirichlet",
                "dirichlet_sym",
                "rayleigh",
                "hf_ratio",
                "mad",
                "effective_rank",
                "norm",
                "energy",
            ]
        )
    ),
    "description": st.text(max_size=10),
}


# Values that are valid for every field.
_VALID = {
    "name": st.text(max_size=8),
    "datasets": st.lists(
        st.just("csbm")
        | st.fixed_dictionaries(
            {
                "name": st.just("csbm"),
                "params": st.fixed_dictionaries(
                    {}, optional={"num_nodes": st.integers(10, 500), "snr": st.floats(0, 3)}
                ),
            }
        ),
        min_size=1,
        max_size=2,
    ),
    "convs": st.lists(st.sampled_from(["gcn", "sage", "gat"]), min_size=1, max_size=2),
    "depths": st.lists(st.integers(1, 8), min_size=1, max_size=3),
    "activations": st.lists(
        st.sampled_from(["relu", "leaky_relu", "prelu_channel"]), min_size=1, max_size=3
    ),
    "alphas": st.lists(st.floats(0, 1), min_size=1, max_size=3),
    "prelu_inits": st.lists(st.floats(0, 1), min_size=1, max_size=2),
    "prelu_bounds": st.none() | st.tuples(st.floats(-1, 0), st.floats(0, 2)).map(list),
    "seeds": st.lists(st.integers(0, 5), min_size=1, max_size=3),
    "hidden_channels": st.integers(1, 64),
    "epochs": st.integers(1, 300),
    "lr": st.floats(1e-4, 1),
    "dropout": st.floats(0, 0.9),
    "patience": st.none() | st.integers(1, 100),
    "metrics": st.lists(st.sampled_from(["dirichlet", "rayleigh", "mad"]), min_size=1, max_size=3),
}


@st.composite
def config_mappings(draw) -> dict:
    out = {}
    if draw(st.booleans()):  # half the examples: valid values only
        for key, values in _VALID.items():
            if draw(st.booleans()):
                out[key] = draw(values)
        return out
    for key, near in _FIELDS.items():
        if draw(st.booleans()):
            which = draw(st.integers(0, 19))
            values = (
                _anything if which == 0 else near if which < 3 or key not in _VALID else _VALID[key]
            )
            out[key] = draw(values)
    if draw(st.integers(0, 4)) == 0:  # an unknown key, maybe not even a string
        out[draw(st.text(max_size=6) | st.integers() | st.none())] = draw(_anything)
    return out


def _check_loaded(load) -> SweepConfig | None:
    try:
        cfg = load()
    except ConfigError as err:
        assert str(err), "a ConfigError must say what is wrong"
        return None
    assert isinstance(cfg, SweepConfig)
    runs = cfg.expand()
    assert runs, "a valid config has at least one run"
    assert len({r.key for r in runs}) == len(runs)
    return cfg


@FUZZ
@given(config_mappings())
def test_fuzz_config_mappings(mapping):
    cfg = _check_loaded(lambda: load_config(mapping))
    if cfg is not None:  # a valid config survives its own YAML
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "c.yaml"
            path.write_text(cfg.to_yaml())
            again = load_config(path)
        assert again == cfg
        assert [r.key for r in again.expand()] == [r.key for r in cfg.expand()]


def _yaml_texts():
    dumped = config_mappings().map(lambda m: yaml.safe_dump(m, allow_unicode=True, sort_keys=False))
    fragments = st.lists(
        st.sampled_from(
            [
                "depths: [2, 4]\n",
                "lr: 0.01\n",
                "depths: [2\n",
                "- a\n",
                "!!python/name:os.system\n",
                "seeds: {a: 1}\n",
                "&a [*a]\n",
                "datasets: [csbm]\n",
                "epochs: 1e400\n",
                ": :\n",
                "\t",
                "\x00",
                "key: !!binary AAAA\n",
                "%YAML 1.1\n---\n",
            ]
        ),
        max_size=4,
    ).map("".join)
    return dumped | fragments | st.text(max_size=40)


@FUZZ
@given(st.one_of(_yaml_texts().map(str.encode), st.binary(max_size=40)))
def test_fuzz_config_files(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_bytes(content)
        _check_loaded(lambda: load_config(path))


# --------------------------------------------------------------------------------------
# Results store: random files are refused and left as they were
# --------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    st.binary(min_size=1, max_size=300)
    | st.binary(max_size=300).map(lambda b: b"SQLite format 3\x00" + b)
)
def test_fuzz_store_refuses_foreign_files(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.sqlite"
        path.write_bytes(content)
        with pytest.raises(StoreError):
            ResultsStore(path).close()
        assert path.read_bytes() == content
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["r.sqlite"]


def test_fuzz_helpers_find_valid_configs():
    # The strategies must reach the valid region too, or the round-trip property is vacuous.
    found = []

    @settings(max_examples=80, deadline=None, database=None)
    @given(config_mappings())
    def probe(mapping):
        try:
            found.append(load_config(mapping))
        except ConfigError:
            pass

    probe()
    assert len(found) >= 20


# --------------------------------------------------------------------------------------
# Spectral functions on random small graphs
# --------------------------------------------------------------------------------------
_magnitudes = st.sampled_from([0.0, 1e-30, 1e-3, 1.0, 1e3, 1e15])


@st.composite
def graphs(draw, max_nodes: int = 10):
    """Undirected graphs with self-loops, duplicate edges and isolated nodes, plus features."""
    import torch

    n = draw(st.integers(0, max_nodes))
    pairs = (
        draw(
            st.lists(
                st.tuples(st.integers(0, max(n - 1, 0)), st.integers(0, max(n - 1, 0))),
                max_size=3 * n,
            )
        )
        if n
        else []
    )
    ei = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).T
    ei = torch.cat([ei, ei.flip(0)], 1)  # both directions (a loop twice: still a loop)
    c = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["normal", "zeros", "constant", "sparse"]))
    scale = draw(_magnitudes)
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    if kind == "normal":
        x = torch.randn(n, c, generator=gen, dtype=dtype) * scale
    elif kind == "zeros":
        x = torch.zeros(n, c, dtype=dtype)
    elif kind == "constant":
        x = torch.full((n, c), scale, dtype=dtype)
    else:
        x = torch.randn(n, c, generator=gen, dtype=dtype) * scale
        x = x * (torch.rand(n, c, generator=gen) < 0.2)
    return x, ei


def _dense_sym(edge_index, n):
    import torch

    a = torch.zeros(n, n, dtype=torch.float64)
    a.index_put_(
        (edge_index[0], edge_index[1]),
        torch.ones(edge_index.size(1), dtype=torch.float64),
        accumulate=True,
    )
    a.fill_diagonal_(0)
    return a


SPECTRAL_FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SPECTRAL_FUZZ
@given(graphs())
def test_fuzz_spectral_invariants(graph):
    import torch

    from gnnleaky import spectral as sp

    x, ei = graph
    n = x.size(0)
    sq = float((x.double() ** 2).sum())
    # Squares below the input dtype's smallest normal number may flush to zero.
    tiny = torch.finfo(x.dtype).tiny
    tol = 1e-6 * sq + tiny

    energy = sp.dirichlet_energy(x, ei)
    assert torch.isfinite(energy) and energy >= 0
    if n:  # the dense reference: (2 / N) tr(X^T (D - A) X)
        a = _dense_sym(ei, n)
        xd = x.double()
        ref = 2.0 / n * float(torch.trace(xd.T @ (torch.diag(a.sum(1)) - a) @ xd))
        assert float(energy) == pytest.approx(ref, rel=1e-5, abs=tol)
    for norm in ("sym", "rw"):
        for loops in (False, True):
            r = sp.rayleigh_quotient(x, ei, normalization=norm, add_self_loops=loops)
            assert torch.isfinite(r) and -1e-9 <= float(r) <= 2 + 1e-9
    hf = sp.high_frequency_ratio(x, ei)
    assert torch.isfinite(hf) and -1e-9 <= float(hf) <= 1 + 1e-9
    bands = sp.band_energy(x, ei, bands=4)
    assert torch.isfinite(bands).all() and bool((bands >= -tol).all())
    assert float(bands.sum()) == pytest.approx(sq, rel=1e-6, abs=tiny)
    sd = sp.spectral_density(x, ei, num_moments=32)
    kpm = sd.band_energy(4)
    assert torch.isfinite(kpm).all()
    assert float(kpm.sum()) == pytest.approx(sq, rel=1e-6, abs=tiny)
    assert float(sd.total) == pytest.approx(sq, rel=1e-6, abs=tiny)
    metrics = sp.layer_metrics(x, ei, sorted(sp.METRICS))
    assert all(bool(torch.isfinite(v).all()) for v in metrics.values()), metrics


@SPECTRAL_FUZZ
@given(graphs(max_nodes=8), st.data())
def test_fuzz_spectral_hostile_input_raises_value_error(graph, data):
    import torch

    from gnnleaky import spectral as sp

    x, ei = graph
    n = x.size(0)
    attack = data.draw(
        st.sampled_from(["nan", "inf", "range", "negative", "float", "shape", "directed", "weight"])
    )
    if attack in ("nan", "inf"):
        if not x.numel():
            return
        x = x.clone()
        x[data.draw(st.integers(0, n - 1)), 0] = float(attack)
    elif attack == "range":
        ei = torch.cat([ei, torch.tensor([[0], [n + data.draw(st.integers(0, 5))]])], 1)
    elif attack == "negative":
        ei = torch.cat([ei, torch.tensor([[-1], [0]])], 1)
    elif attack == "float":
        ei = ei.float()
    elif attack == "shape":
        ei = ei.reshape(-1) if data.draw(st.booleans()) else torch.cat([ei, ei[:1]])
    elif attack == "directed":
        if n < 2:
            return
        ei = torch.cat([ei, torch.tensor([[0], [1]])], 1)
    weight = None
    if attack == "weight":
        weight = torch.full(
            (ei.size(1),), data.draw(st.sampled_from([-1.0, float("nan"), float("inf")]))
        )
        if not ei.size(1):
            weight = torch.ones(1)  # wrong length instead
    fn = data.draw(
        st.sampled_from(
            [
                lambda: sp.dirichlet_energy(x, ei, weight),
                lambda: sp.rayleigh_quotient(x, ei, weight),
                lambda: sp.high_frequency_ratio(x, ei, weight),
                lambda: sp.band_energy(x, ei, weight),
                lambda: sp.spectral_density(x, ei, weight, num_moments=8).total,
            ]
        )
    )
    with pytest.raises(ValueError):
        fn()
