"""Continual learning: CGLB's metrics on hand-made matrices, the EWC penalty, the task
sequence, the drift of the weights, a small sequence end to end."""

from __future__ import annotations

import math

import pytest
import torch

from gnnleaky.datasets import load
from gnnleaky.tasks.continual import (
    EWC,
    ContinualStep,
    average_forgetting,
    average_performance,
    class_tasks,
    parameter_drift,
    split_tasks,
    train_continual,
)
from gnnleaky.train import Bank

ACC = [
    [0.90, math.nan, math.nan],
    [0.70, 0.80, math.nan],
    [0.40, 0.60, 0.95],
]


def test_ap_and_af_on_a_hand_made_matrix():
    assert math.isclose(average_performance(ACC), (0.40 + 0.60 + 0.95) / 3)
    # CGLB: mean over tasks but the last of (final - right after learning); negative = forgot
    assert math.isclose(average_forgetting(ACC), ((0.40 - 0.90) + (0.60 - 0.80)) / 2)
    no_forgetting = [[0.5, math.nan], [0.7, 0.6]]  # backward transfer is positive AF
    assert math.isclose(average_forgetting(no_forgetting), 0.2)
    with pytest.raises(ValueError, match="square"):
        average_performance([[1.0, 0.5]])
    with pytest.raises(ValueError, match="finite"):
        average_forgetting([[math.nan, math.nan], [0.1, 0.2]])


def test_ewc_penalty_is_zero_at_the_anchor_and_positive_away_from_it():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(10, 3), torch.randint(0, 2, (10,))
    ewc = EWC(strength=5.0)
    assert float(ewc.penalty(model).detach()) == 0.0  # no task consolidated yet
    loss = torch.nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    ewc.consolidate(model, torch.nn.functional.cross_entropy(model(x), y))
    assert float(ewc.penalty(model).detach()) == 0.0
    with torch.no_grad():
        model.weight[0, 1] += 0.5
    expected = 5.0 * float(grads[0][0, 1] ** 2) * 0.25  # lambda * F_i * delta_i^2
    assert float(ewc.penalty(model).detach()) > 0.0
    assert math.isclose(float(ewc.penalty(model).detach()), expected, rel_tol=1e-5)
    with pytest.raises(ValueError, match="strength"):
        EWC(-1.0)


def test_class_tasks_follow_cglb():
    assert class_tasks(7) == [(0, 1), (2, 3), (4, 5)]  # Cora: class 6 unused
    assert class_tasks(6) == [(0, 1), (2, 3), (4, 5)]  # CiteSeer
    with pytest.raises(ValueError, match="fewer than 2 tasks"):
        class_tasks(3)


def test_split_tasks_induces_subgraphs_and_splits_each_class():
    data = load("csbm", num_nodes=200, num_classes=4, seed=0)
    seq = split_tasks(data, seed=1)
    assert [t.classes for t in seq] == [(0, 1), (2, 3)]
    for t in seq:
        nodes = t.y.numel()
        assert nodes == int(sum((data.y == c).sum() for c in t.classes))
        assert set(t.y.tolist()) == set(t.classes)
        assert int(t.edge_index.max()) < nodes
        idx = torch.cat(list(t.index.values()))
        assert idx.unique().numel() == idx.numel() == nodes  # disjoint, cover the task
        for c in t.classes:
            n_c = int((t.y == c).sum())
            assert int((t.y[t.index["val"]] == c).sum()) == round(0.2 * n_c)
    # edges of a task join nodes of its classes only (no inter-task edges)
    assert split_tasks(data, seed=1)[0].index["train"].tolist() == seq[0].index["train"].tolist()
    with pytest.raises(ValueError, match="disjoint"):
        split_tasks(data, tasks=[(0, 1), (1, 2)])


def test_settings_score_the_right_outputs():
    data = load("csbm", num_nodes=120, num_classes=4, seed=0)
    seq = split_tasks(data)

    class Fixed(torch.nn.Module):
        # prefers class 0 strongly, then the true class: class-IL after task 2 predicts 0
        # for every node, task-IL picks the true class within task 2's outputs
        def __init__(self, y):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))
            self.y = y

        def forward(self, x, edge_index):
            out = torch.nn.functional.one_hot(self.y[: x.size(0)], 4).float()
            out[:, 0] += 2.0
            return out + self.w

    model = Fixed(seq[1].y)
    cil = ContinualStep(seq, 1, "class_il").evaluate(Bank(model))
    til = ContinualStep(seq, 1, "task_il").evaluate(Bank(model))
    assert cil.scores["test"] == [0.0] and til.scores["test"] == [1.0]
    with pytest.raises(ValueError, match="setting"):
        ContinualStep(seq, 1, "domain_il")


def test_parameter_drift_known_values():
    before = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([[2.0]])}
    after = {"a": torch.tensor([1.0, 2.005]), "b": torch.tensor([[5.0]])}
    d = parameter_drift(before, after, tol=0.01)
    assert math.isclose(d["norm"], math.sqrt(0.005**2 + 9.0), rel_tol=1e-6)
    assert math.isclose(d["relative"], d["norm"] / 3.0, rel_tol=1e-6)
    assert math.isclose(d["moved"], 1 / 3)
    with pytest.raises(ValueError, match="same parameter names"):
        parameter_drift(before, {"a": after["a"]})


def test_train_continual_fills_the_lower_triangle_and_is_seeded():
    data = load("csbm", num_nodes=150, num_classes=6, snr=3.0, seed=0)
    kw = dict(hidden_channels=8, epochs=15, seed=2)
    r = train_continual(data, setting="task_il", method="ewc", **kw)
    assert r.status == "ok" and r.tasks == [(0, 1), (2, 3), (4, 5)]
    acc = torch.tensor(r.acc)
    upper = torch.ones(3, 3, dtype=torch.bool).triu(1)
    assert torch.isfinite(acc[~upper]).all() and torch.isnan(acc[upper]).all()
    assert math.isclose(r.ap, float(acc[-1].mean()), rel_tol=1e-6)
    assert len(r.drift) == 3 and all(d["norm"] > 0 for d in r.drift)
    again = torch.tensor(train_continual(data, setting="task_il", method="ewc", **kw).acc)
    assert torch.equal(again[~upper], acc[~upper])
    with pytest.raises(ValueError, match="method"):
        train_continual(data, method="replay")
