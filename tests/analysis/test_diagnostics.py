import pytest
import scipy.stats
import torch
import torch.nn.functional as F

from gnnleaky.analysis import (
    SlopeRecorder,
    accuracy,
    dead_units,
    fit_node_classifier,
    gradient_norms,
    preactivation_skewness,
    slope_drift,
    slope_table,
    slope_trajectories,
)
from gnnleaky.nn import LeakyGNN, slopes


def test_dead_units_known_answer(csbm):
    model = LeakyGNN(8, 16, 3, 2)
    with torch.no_grad():
        model.convs[0].bias[:3] = -1e4  # never positive on any node
        model.convs[1].bias[:] = 1e4  # always positive
    df = dead_units(model, csbm.x, csbm.edge_index)
    assert df.layer.tolist() == [0, 1]
    assert df.dead.tolist()[0] == 3 and df.units.tolist() == [16, 16]
    assert df.dead_share[0] == 3 / 16
    assert df.dead[1] == 0 and df.silent_share[1] == 0.0
    # Silent share under ReLU == share of exactly-zero outputs.
    _, hidden = model.forward_hidden(csbm.x, csbm.edge_index)
    zero = float((hidden.post[0] == 0).double().mean())
    assert df.silent_share[0] == pytest.approx(zero, abs=1e-12)
    assert df.slope.tolist() == [0.0, 0.0]


def test_gradient_norms_match_backward_and_leave_grad_alone(csbm):
    model = LeakyGNN(8, 16, 3, 2, act="leaky_relu", dropout=0.5)
    df = gradient_norms(model, csbm.x, csbm.edge_index, csbm.y, csbm.train_mask)
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    F.cross_entropy(
        model(csbm.x, csbm.edge_index)[csbm.train_mask], csbm.y[csbm.train_mask]
    ).backward()
    for i, conv in enumerate(model.convs):
        ref = torch.sqrt(sum(p.grad.double().pow(2).sum() for p in conv.parameters()))
        assert df.grad_norm[i] == pytest.approx(float(ref), rel=1e-6)
    with pytest.raises(ValueError, match="labels"):
        gradient_norms(model, csbm.x, csbm.edge_index, csbm.y.float())


@pytest.mark.parametrize("per_channel", [False, True])
def test_skewness_matches_scipy(csbm, per_channel):
    model = LeakyGNN(8, 16, 3, 2, act="prelu", act_kwargs={"mode": "channel", "init": 0.1})
    with torch.no_grad():
        model.acts[1].weight[:] = torch.linspace(-0.5, 0.5, 16)
    df = preactivation_skewness(model, csbm.x, csbm.edge_index, per_channel=per_channel)
    _, hidden = model.forward_hidden(csbm.x, csbm.edge_index)
    for layer in (0, 1):
        z = hidden.pre[layer].detach().double().numpy()
        rows = df[df.layer == layer]
        if per_channel:
            assert rows.skewness.to_numpy() == pytest.approx(scipy.stats.skew(z, axis=0), rel=1e-9)
            expected = slopes(model)[f"acts.{layer}"].detach().double().numpy()
            assert rows.slope.to_numpy() == pytest.approx(expected, rel=1e-6)
            assert rows.negative_share.to_numpy() == pytest.approx((z < 0).mean(0))
        else:
            assert float(rows.skewness.iloc[0]) == pytest.approx(
                float(scipy.stats.skew(z.ravel())), rel=1e-9
            )
    # A symmetric pre-activation has zero skewness: flip the sign of half the data.
    sym = torch.cat([csbm.x, -csbm.x])
    ei = torch.cat([csbm.edge_index, csbm.edge_index + csbm.num_nodes], dim=1)
    lin = LeakyGNN(8, 4, 2, 2, act="identity")
    with torch.no_grad():
        lin.convs[0].bias.zero_()
    df = preactivation_skewness(lin, sym, ei)
    assert abs(df.skewness[0]) < 1e-9


def test_fit_is_deterministic_and_keeps_global_rng(csbm):
    def run():
        torch.manual_seed(5)
        model = LeakyGNN(8, 16, 2, 2, act="prelu", dropout=0.5)
        return model, fit_node_classifier(model, csbm, epochs=15, seed=2)

    (m1, h1), (m2, h2) = run(), run()
    assert h1.equals(h2)
    assert all(
        torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values())
    )
    model = LeakyGNN(8, 16, 2, 2, dropout=0.5)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    fit_node_classifier(model, csbm, epochs=2)
    assert torch.equal(torch.rand(3), expected)
    # The restored weights are those of the best validation epoch.
    best = h1.loc[h1.val_acc.idxmax()]
    assert accuracy(m1, csbm)["val_acc"] == best.val_acc
    assert h1.train_acc.iloc[-1] > 0.7


def test_fit_validates(csbm):
    model = LeakyGNN(8, 16, 2, 2)
    data = csbm.clone()
    data.train_mask = torch.stack([csbm.train_mask] * 2, dim=1)
    with pytest.raises(ValueError, match="train_mask"):
        fit_node_classifier(model, data, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        fit_node_classifier(model, csbm, epochs=0)
    with pytest.raises(ValueError, match="slope_penalty"):
        fit_node_classifier(model, csbm, epochs=1, slope_penalty=-1.0)


def test_slope_trajectories(csbm):
    torch.manual_seed(0)
    model = LeakyGNN(8, 16, 3, 2, act="prelu", act_kwargs={"mode": "channel", "init": 0.3})
    traj = slope_trajectories(model, csbm, epochs=20, lr=0.05)
    assert len(traj) == 21 * 2 * 16
    assert set(traj.act) == {"acts.0", "acts.1"}
    start = traj[traj.epoch == 0].slope.to_numpy()
    assert start == pytest.approx([0.3] * 32)
    assert (traj[traj.epoch == 20].slope.to_numpy() != start).any()  # slopes are learned
    # The restored model carries the slopes recorded at its best validation epoch.
    rec = SlopeRecorder()
    torch.manual_seed(0)
    model = LeakyGNN(8, 16, 3, 2, act="prelu", act_kwargs={"mode": "channel", "init": 0.3})
    hist = fit_node_classifier(model, csbm, epochs=20, lr=0.05, callback=rec)
    best_epoch = int(hist.loc[hist.val_acc.idxmax()].epoch)
    frame = rec.to_frame()
    assert frame[frame.epoch == best_epoch].slope.to_numpy() == pytest.approx(
        slope_table(model).slope.to_numpy(), abs=0
    )
    assert SlopeRecorder().to_frame().empty


def test_slope_drift(csbm):
    torch.manual_seed(0)
    model = LeakyGNN(8, 16, 2, 2, act="prelu", act_kwargs={"mode": "channel"})
    fit_node_classifier(model, csbm, epochs=20)
    before = slope_table(model).slope.to_numpy()
    none = slope_drift(model, csbm, 0.0, epochs=10)
    assert (none.drift == 0).all()  # same data, same seed: no drift
    assert (none.slope_before.to_numpy() == before).all()
    assert (slope_table(model).slope.to_numpy() == before).all()  # model untouched
    moved = slope_drift(model, csbm, 3.0 * torch.ones(8), epochs=10)
    assert moved.drift.abs().max() > 1e-3
    assert moved.columns.tolist() == [
        "act",
        "channel",
        "slope_before",
        "slope_control",
        "slope_shifted",
        "drift",
    ]
    with pytest.raises(ValueError, match="broadcast"):
        slope_drift(model, csbm, torch.ones(3), epochs=1)
