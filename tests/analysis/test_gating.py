import pytest

from gnnleaky.analysis import slope_gating


def test_penalty_gates_slopes(csbm):
    df = slope_gating(csbm, lams=[0.0, 1e-2, 1.0], hidden_channels=16, epochs=100, seeds=[0, 1])
    assert len(df) == 6 and (df.num_slopes == 16).all()
    mean = df.groupby("lam")[["gated_share", "mean_abs_slope", "test_acc"]].mean()
    assert mean.loc[0.0, "gated_share"] < 0.5
    assert mean.loc[1.0, "gated_share"] == 1.0
    assert mean.mean_abs_slope.is_monotonic_decreasing
    assert df.test_acc.between(0, 1).all()
    again = slope_gating(csbm, lams=[1e-2], hidden_channels=16, epochs=100, seeds=[1])
    assert again.iloc[0].to_dict() == df[(df.lam == 1e-2) & (df.seed == 1)].iloc[0].to_dict()


def test_gating_validates(csbm):
    with pytest.raises(ValueError, match="lams"):
        slope_gating(csbm, lams=[-1.0])
    with pytest.raises(ValueError, match="num_layers"):
        slope_gating(csbm, num_layers=1)
    with pytest.raises(ValueError, match="empty"):
        slope_gating(csbm, lams=[])
