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


def test_research_presets_run_at_least_five_seeds_or_splits_per_cell():
    """The paired tests and intervals of the report need repetitions: every research preset
    repeats each cell >= 5 times (seeds x splits); quick (3) and the task presets are not
    research presets."""
    for name in ("planetoid", "heterophily", "ogb", "label-rate", "gcnii", "dropedge-table"):
        cfg = load_config(name)
        assert len(cfg.seeds) * len(cfg.splits) >= 5, name


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"depth": [2]}, "unknown config keys \\['depth'\\]"),
        ({"datasets": ["coraa"]}, "coraa"),
        ({"depths": []}, "depths is empty"),
        ({"depths": [-2]}, "depths must be integers >= 1"),
        ({"depths": ["two"]}, "depths must be integers"),
        ({"activations": ["gelux"]}, "unknown activation kind 'gelux'"),
        ({"activations": ["scaled_relu"], "positive_slopes": [0]}, "positive_slopes must be > 0"),
        ({"activations": ["scaled_relu"], "positive_slopes": []}, "positive_slopes is empty"),
        ({"train_per_class": [0]}, "train_per_class must be integers >= 1"),
        ({"train_per_class": ["5"]}, "train_per_class must be integers"),
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


def test_activation_kinds_come_from_the_layers_registry():
    from gnnleaky.nn import ACTIVATION_KINDS, activation_kind

    cfg = SweepConfig(activations=list(ACTIVATION_KINDS), alphas=[0.1], prelu_inits=[0.25],
                      positive_slopes=[2.0], depths=[2])  # fmt: skip
    labels = {r.activation_label for r in cfg.expand()}
    assert labels == set(ACTIVATION_KINDS)
    # old spellings keep their meaning, and so their run keys
    for alias, kind in [("prelu", "prelu_layer"), ("prelu-channel", "prelu_channel"),
                        ("leaky", "leaky_relu"), ("PReLU_Layer", "prelu_layer")]:  # fmt: skip
        assert activation_kind(alias) == kind
        a = SweepConfig(activations=[alias], alphas=[0.1]).expand()
        b = SweepConfig(activations=[kind], alphas=[0.1]).expand()
        assert [r.key for r in a] == [r.key for r in b]
    [run] = SweepConfig(activations=["prelu"], depths=[2]).expand()
    assert (run.act, run.prelu_mode, run.negative_slope) == ("prelu", "layer", 0.25)


def test_scaled_relu_kinds_cross_positive_and_negative_slopes():
    from gnnleaky.bench.train import build_model
    from gnnleaky.nn import ScaledLeakyReLU

    cfg = SweepConfig(activations=["scaled_relu", "scaled_leaky_relu"], alphas=[0.1, 0.2],
                      positive_slopes=[1.5, 2.0], depths=[3])  # fmt: skip
    runs = cfg.expand()
    settings = sorted((r.act, r.positive_slope, r.negative_slope) for r in runs)
    assert settings == sorted(
        [("scaled_relu", b, 0.0) for b in (1.5, 2.0)]
        + [("scaled_leaky_relu", b, a) for b in (1.5, 2.0) for a in (0.1, 0.2)]
    )
    run = next(r for r in runs if r.act == "scaled_leaky_relu")
    model = build_model(run, 4, 2)
    acts = [a for a in model.acts if isinstance(a, ScaledLeakyReLU)]
    assert len(acts) == 2
    assert {(a.positive_slope, a.negative_slope) for a in acts} == {
        (run.positive_slope, run.negative_slope)
    }
    with pytest.raises(ValueError, match="needs a positive_slope"):
        RunConfig(act="scaled_relu").model_kwargs(4, 2)


def test_new_fields_keep_old_keys_at_their_defaults():
    base = RunConfig(dataset="cora", num_layers=16, act="prelu", negative_slope=0.25,
                     prelu_mode="channel", seed=3)  # fmt: skip
    assert base.key == "f7d3bb7f3ff45a7b"
    assert RunConfig(**{**base.to_dict(), "train_per_class": None}).key == base.key
    assert RunConfig(**{**base.to_dict(), "train_per_class": 20}).key != base.key
    scaled = RunConfig(act="scaled_relu", positive_slope=2.0)
    assert scaled.key != RunConfig(act="scaled_relu", positive_slope=1.5).key


def test_label_rate_axis():
    cfg = load_config({"datasets": ["cora"], "train_per_class": [5, 20], "splits": [0, 7],
                       "depths": [2], "activations": ["relu"], "seeds": [0]})  # fmt: skip
    runs = cfg.expand()
    assert sorted((r.train_per_class, r.split) for r in runs) == [
        (5, 0), (5, 7), (20, 0), (20, 7)
    ]  # fmt: skip
    assert len({r.group_key for r in runs}) == 4  # label rates never share a stack
    assert load_config({"train_per_class": 10}).train_per_class == (10,)
    # a split index beyond the dataset's own splits is refused without train_per_class
    with pytest.raises(ConfigError, match="split 7 is not available"):
        load_config({"datasets": ["cora"], "splits": [7]})
