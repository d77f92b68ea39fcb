import math

import pytest
import yaml

from gnnleaky.bench.config import ConfigError, RunConfig, SweepConfig, load_config


def test_grid_size_and_dedup():
    cfg = SweepConfig(
        datasets=["csbm", "cora"],
        depths=[2, 8, 32],
        activations=["relu", "leaky_relu", "prelu_layer", "prelu_channel"],
        alphas=[0.1, 0.2, 0.2],
        prelu_inits=[0.25],
        seeds=[0, 1, 2],
    )
    runs = cfg.expand()
    # 2 datasets x 3 depths x (1 relu + 2 leaky + 1 + 1 prelu) x 3 seeds
    assert len(runs) == 2 * 3 * 5 * 3
    assert len({r.key for r in runs}) == len(runs)


def test_run_key_is_stable_and_sensitive():
    a = RunConfig(dataset="cora", num_layers=8, act="leaky_relu", negative_slope=0.2)
    b = RunConfig(**a.to_dict())
    assert a.key == b.key
    assert a.key != RunConfig(**{**a.to_dict(), "negative_slope": 0.2000001}).key
    assert a.key != RunConfig(**{**a.to_dict(), "seed": 1}).key
    # A known value: the key must not change across releases for the same config.
    assert RunConfig().key == RunConfig().key and len(RunConfig().key) == 16


def test_group_key_ignores_only_activation_and_seed():
    a = RunConfig(act="relu", seed=0)
    b = RunConfig(act="prelu", prelu_mode="channel", negative_slope=0.25, seed=3)
    assert a.group_key == b.group_key
    assert a.group_key != RunConfig(num_layers=3).group_key
    assert a.group_key != RunConfig(lr=0.1).group_key


def test_yaml_round_trip(tmp_path):
    cfg = load_config("quick")
    path = tmp_path / "q.yaml"
    path.write_text(cfg.to_yaml())
    again = load_config(path)
    assert again == cfg
    assert [r.key for r in again.expand()] == [r.key for r in cfg.expand()]


def test_presets_load():
    for name in ("quick", "planetoid", "heterophily", "ogb", "gcnii", "dropedge-table"):
        assert load_config(name).expand()
    planetoid = load_config("planetoid")
    assert set(planetoid.depths) == {2, 4, 8, 16, 32, 64}
    assert set(planetoid.alphas) == {0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0}
    assert len(planetoid.seeds) == 10


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"depth": [2]}, "unknown config keys \\['depth'\\]"),
        ({"datasets": ["coraa"]}, "coraa"),
        ({"depths": []}, "depths is empty"),
        ({"depths": [-2]}, "depths must be integers >= 1"),
        ({"depths": ["two"]}, "depths must be integers"),
        ({"activations": ["gelu"]}, "unknown kind 'gelu'"),
        ({"alphas": [math.nan]}, "alphas must be finite"),
        ({"lr": 0}, "lr must be > 0"),
        ({"convs": ["gcn2"]}, "unknown conv"),
        ({"metrics": ["energy"]}, "unknown metric"),
        ({"prelu_bounds": [1, 0]}, "lo <= hi"),
        ({"datasets": [{"name": "csbm", "params": {"nodes": 5}}]}, "unknown params"),
        ({"seeds": []}, "seeds is empty"),
        ({"epochs": 1.5}, "epochs must be integers"),
        ({"activations": ["relu"], "alpha": {}}, "alphas must be a list of values"),
        ({"seeds": [{"seed": 1}]}, "seeds must be a list of values"),
    ],
)
def test_bad_configs_fail_with_a_message(data, match):
    with pytest.raises(ConfigError, match=match):
        load_config(data)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    path.write_text(yaml.safe_dump(["not", "a", "mapping"]))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_alpha_alias_and_overrides():
    cfg = load_config({"alpha": [0.3], "activations": ["leaky_relu"], "depths": [4]})
    assert cfg.alphas == (0.3,)
    cfg2 = cfg.replace(depths=[2, 4], seeds=None)
    assert cfg2.depths == (2, 4) and cfg2.seeds == cfg.seeds


def test_stored_run_keys_never_change():
    """Keys of runs stored by earlier versions (a store resumes on them): fields added since
    are left out of the key at their defaults (``KEY_OPTIONAL_FIELDS``)."""
    assert RunConfig().key == "feee698a37c0d2e0"
    run = RunConfig(
        dataset="cora",
        num_layers=16,
        act="prelu",
        negative_slope=0.25,
        prelu_mode="channel",
        seed=3,
    )
    assert run.key == "f7d3bb7f3ff45a7b"
