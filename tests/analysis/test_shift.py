"""PReLU slopes as a shift sensor: the shifts, the detector's known answers (no shift:
AUC 1/2; a huge shift: AUC near 1), the slope gradient against finite differences."""

import math

import numpy as np
import pytest
import torch

from gnnleaky.analysis import (
    DETECTORS,
    fit_node_classifier,
    shift_detection,
    shift_features,
    shift_sensor,
)
from gnnleaky.nn import GCN


@pytest.fixture(scope="module")
def trained(csbm):
    torch.manual_seed(0)
    model = GCN(8, 16, 3, 2, act="prelu", act_kwargs={"mode": "channel", "init": 0.25})
    fit_node_classifier(model, csbm, epochs=30)
    return model


def test_shift_features_known_answers():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 20, generator=g) * torch.linspace(0.5, 2, 20)
    for kind in ("mean", "scale", "drop"):
        out = shift_features(x, kind, 0.0)
        assert torch.equal(out, x) and out is not x
    std = x.std(0, correction=0)
    assert torch.allclose(shift_features(x, "mean", 2.0).mean(0), x.mean(0) + 2 * std)
    assert torch.allclose(shift_features(x, "mean", 2.0).std(0), x.std(0))
    assert torch.equal(shift_features(x, "scale", 3.0), 4 * x)
    for share, dropped in ((0.1, 2), (0.26, 5), (0.5, 10), (1.0, 20)):
        out = shift_features(x, "drop", share, seed=3)
        zero = (out == 0).all(0)
        assert int(zero.sum()) == dropped
        assert torch.equal(out[:, ~zero], x[:, ~zero])  # the other columns untouched
    assert torch.equal(
        shift_features(x, "drop", 0.5, seed=3), shift_features(x, "drop", 0.5, seed=3)
    )


def test_shift_features_refuses_bad_input():
    x = torch.randn(5, 4)
    for bad in (-0.1, math.nan, math.inf, "big"):
        with pytest.raises(ValueError, match="size must be a finite float"):
            shift_features(x, "mean", bad)
    with pytest.raises(
        ValueError, match=r"size of a \"drop\" shift is a share of columns in \[0, 1\]"
    ):
        shift_features(x, "drop", 1.5)
    with pytest.raises(ValueError, match=r"kind must be one of \['mean', 'scale', 'drop'\]"):
        shift_features(x, "rotate", 1.0)
    with pytest.raises(ValueError, match="x contains NaN"):
        shift_features(torch.full((2, 2), math.nan), "mean", 1.0)


def test_no_shift_gives_auc_one_half(csbm, trained):
    # clean and "shifted" batches are two independent draws of the same distribution:
    # AUC 1/2 up to sampling noise (SE ~0.058 per run at 50 batches), over 4 seeds
    aucs = []
    for seed in range(4):
        df = shift_detection(trained, csbm, {"mean": [0.0]}, num_batches=50, batch_size=40,
                             seed=seed)  # fmt: skip
        aucs.append(df.set_index(["layer", "detector"]).auc)
    mean = sum(aucs) / len(aucs)
    assert len(mean) == 2 * len(DETECTORS)
    assert (mean - 0.5).abs().max() < 0.12, mean


def test_a_huge_shift_is_detected(csbm, trained):
    df = shift_detection(trained, csbm, {"mean": [50.0], "scale": [20.0], "drop": [0.0, 1.0]},
                         num_batches=20, batch_size=40, seed=0)  # fmt: skip
    big = df[df["size"] > 0]
    grad = big[big.detector == "slope_gradient"]
    assert (grad.auc > 0.95).all(), grad
    assert df.auc.between(0, 1).all()
    assert set(df.columns) == {"kind", "size", "layer", "detector", "auc", "score_clean",
                               "score_shifted", "mean_statistic"}  # fmt: skip
    # the scores are z-scores against clean reference batches: shifted far above clean
    assert (grad.score_shifted > 2 * grad.score_clean).all()


def test_identical_batches_give_exactly_one_half_and_the_gradient_is_right(csbm):
    # every batch = all nodes: every statistic is the full-graph one, so scores are 0
    # and the AUC is exactly 1/2; mean_statistic is then d(mean entropy)/d(slope)
    torch.manual_seed(0)
    model = GCN(8, 6, 3, 2, act="prelu", act_kwargs={"mode": "layer", "init": 0.3}).double()
    n = csbm.num_nodes
    df = shift_detection(model, csbm, {"scale": [0.5]}, num_batches=2, batch_size=n)
    assert (df.auc == 0.5).all()
    x = csbm.x.double() * 1.5

    def entropy():
        with torch.no_grad():
            logp = torch.log_softmax(model(x, csbm.edge_index), -1)
            return float(-(logp.exp() * logp).sum(-1).mean())

    for layer in range(2):
        w = model.acts[layer].weight
        h = 1e-6
        with torch.no_grad():
            w += h
            up = entropy()
            w -= 2 * h
            down = entropy()
            w += h
        row = df[(df.layer == layer) & (df.detector == "slope_gradient")]
        assert float(row.mean_statistic.iloc[0]) == pytest.approx((up - down) / (2 * h), rel=1e-5)


def test_shift_detection_leaves_the_model_and_rng_alone(csbm, trained):
    state = {k: v.clone() for k, v in trained.state_dict().items()}
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    shift_detection(trained, csbm, {"drop": [0.5]}, num_batches=3, batch_size=20)
    assert torch.equal(torch.rand(1), expected)
    for k, v in trained.state_dict().items():
        assert torch.equal(v, state[k]) and v.dtype == state[k].dtype


def test_shift_detection_refuses_bad_input(csbm, trained):
    good = {"mean": [0.1]}
    for bad in ({"mean": [-1.0]}, {"mean": [math.nan]}, {"scale": [math.inf]}):
        with pytest.raises(ValueError, match=r"sizes must be finite floats >= 0"):
            shift_detection(trained, csbm, bad)
    with pytest.raises(ValueError, match=r"shifts\['drop'\] sizes must be finite floats \[0, 1\]"):
        shift_detection(trained, csbm, {"drop": [2.0]})
    with pytest.raises(ValueError, match="kind must be one of"):
        shift_detection(trained, csbm, {"noise": [1.0]})
    with pytest.raises(ValueError, match="shifts must be a non-empty mapping"):
        shift_detection(trained, csbm, {})
    with pytest.raises(ValueError, match=r"shifts\['mean'\] must hold at least one size"):
        shift_detection(trained, csbm, {"mean": []})
    with pytest.raises(ValueError, match="batch_size must be <= the number of nodes"):
        shift_detection(trained, csbm, good, batch_size=10_000)
    with pytest.raises(ValueError, match="num_batches must be an int >= 2"):
        shift_detection(trained, csbm, good, num_batches=1)
    with pytest.raises(ValueError, match="seed must be an int"):
        shift_detection(trained, csbm, good, seed=0.5)
    relu = GCN(8, 16, 3, 2, act="leaky_relu")
    with pytest.raises(ValueError, match="model must have a PReLU"):
        shift_detection(relu, csbm, good)
    with pytest.raises(ValueError, match="model must be a LeakyGNN"):
        shift_detection(torch.nn.Linear(8, 2), csbm, good)
    with pytest.raises(ValueError, match="data must have 'x'"):
        shift_detection(trained, object(), good)


def test_shift_sensor_trains_and_detects(csbm):
    df = shift_sensor(csbm, {"mean": [0.0, 20.0]}, seeds=[0, 1], epochs=10, num_batches=10,
                      batch_size=40, hidden_channels=8)  # fmt: skip
    assert sorted(df.seed.unique()) == [0, 1]
    assert len(df) == 2 * 2 * 2 * len(DETECTORS)  # seeds x sizes x layers x detectors
    assert df.test_acc.between(0, 1).all() and np.isfinite(df.auc).all()
    with pytest.raises(ValueError, match="mode must be one of"):
        shift_sensor(csbm, {"mean": [1.0]}, mode="node")
    with pytest.raises(ValueError, match="seeds must be a non-empty sequence of ints"):
        shift_sensor(csbm, {"mean": [1.0]}, seeds=[])
    with pytest.raises(ValueError, match="num_layers must be an int >= 2"):
        shift_sensor(csbm, {"mean": [1.0]}, num_layers=1)
