"""The training core: fit's bookkeeping, the divergence guard, callbacks, banks, scorers."""

import math

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from gnnleaky.datasets import load
from gnnleaky.engine import StackedGNN
from gnnleaky.nn import GCN, slope_l1
from gnnleaky.tasks import NodeClassification
from gnnleaky.train import Bank, Evaluation, FitRecord, accuracy, fit, roc_auc


@pytest.fixture(scope="module")
def csbm():
    return load("csbm", num_nodes=80, num_features=8, seed=0)


def test_fit_selects_the_best_validation_epoch_and_restores_it(csbm):
    torch.manual_seed(0)
    model = GCN(8, 16, 2, 2, dropout=0.5)
    task = NodeClassification(csbm)
    [rec] = fit(model, task, epochs=30, lr=0.05)
    assert rec.status == "ok" and rec.epochs_run == 30 and len(rec.curve) == 30
    vals = [c["val"] for c in rec.curve]
    assert rec.best_epoch == 1 + int(np.argmax(vals))  # the first of the maxima
    scores, finite = task.evaluate(Bank(model.eval()))
    assert finite == [True]
    assert scores["val"][0] == rec.scores["val"] == max(vals)
    assert scores["test"][0] == rec.scores["test"]


def test_patience_stops_and_min_mode_selects_on_val_loss(csbm):
    torch.manual_seed(0)
    [rec] = fit(GCN(8, 16, 2, 2), NodeClassification(csbm), epochs=500, patience=5, lr=0.05)
    assert rec.epochs_run - rec.best_epoch == 5 and rec.epochs_run < 500
    torch.manual_seed(0)
    [rec] = fit(
        GCN(8, 16, 2, 2),
        NodeClassification(csbm),
        epochs=40,
        selection="val_loss",
        mode="min",
    )
    losses = [c["val_loss"] for c in rec.curve]
    assert rec.best_epoch == 1 + int(np.argmin(losses))


class _Toy:
    """A task whose losses and scores are set per epoch (a known answer for the guard)."""

    def __init__(self, k, bad_loss=(), bad_out=()):
        self.k, self.epoch = k, 0
        self.bad_loss, self.bad_out = bad_loss, bad_out

    def losses(self, bank):
        self.epoch += 1
        out = torch.stack([bank.rows(p).flatten(1).sum(1) for p in bank.module.parameters()])
        loss = out.sum(0).square()
        nan = torch.tensor([math.nan if (self.epoch, i) in self.bad_loss else 0.0
                            for i in bank.ids])  # fmt: skip
        return loss + nan

    def evaluate(self, bank):
        vals = [float(self.epoch) for _ in bank.ids]
        finite = [(self.epoch, i) not in self.bad_out for i in bank.ids]
        return Evaluation({"val": vals}, finite)


def test_a_diverging_model_fails_alone():
    stack = StackedGNN(4, 8, 2, 2, act=["relu", "relu", "relu"], seeds=[0, 1, 2])
    task = _Toy(3, bad_loss={(3, 1)}, bad_out={(5, 2)})
    recs = fit(stack, task, epochs=8)
    assert [r.status for r in recs] == ["ok", "failed", "failed"]
    assert recs[1].reason == "non-finite loss at epoch 3" and recs[1].epochs_run == 2
    assert recs[2].reason == "non-finite outputs at epoch 5" and recs[2].best_epoch == 4
    assert recs[0].epochs_run == 8 and recs[0].best_epoch == 8


def test_callbacks_see_every_epoch_and_epoch_zero(csbm):
    seen = []
    fit(
        GCN(8, 8, 2, 2),
        NodeClassification(csbm),
        epochs=3,
        callbacks=[lambda epoch, bank: seen.append((epoch, bank.size))],
    )
    assert seen == [(0, 1), (1, 1), (2, 1), (3, 1)]


def test_a_bank_equals_its_models_trained_one_by_one(csbm):
    def models():
        out = []
        for seed, act in enumerate(["relu", "leaky_relu", "prelu"]):
            torch.manual_seed(seed)
            out.append(GCN(8, 16, 3, 2, act=act))
        return out

    task = NodeClassification(csbm)
    alone = []
    for m in models():
        [rec] = fit(m, task, epochs=15, patience=4, lr=0.05)
        alone.append((rec, m))
    stack = StackedGNN.from_models(models())
    recs = fit(stack, task, epochs=15, patience=4, lr=0.05)
    for k, (rec, (ref, m)) in enumerate(zip(recs, alone)):
        assert (rec.best_epoch, rec.epochs_run) == (ref.best_epoch, ref.epochs_run)
        assert rec.scores["val"] == pytest.approx(ref.scores["val"], abs=1e-6)
        out = stack.model(k).eval()(csbm.x, csbm.edge_index)
        assert torch.allclose(out, m.eval()(csbm.x, csbm.edge_index), atol=1e-4)


def test_slope_penalty_per_model_of_a_stack():
    kws = [{"init": -0.5}, {"mode": "channel", "init": 0.25}, {"init": 0.1, "bounds": (0, 1)}]
    models = [GCN(4, 8, 3, 2, act="prelu", act_kwargs=kw) for kw in kws]
    stack = StackedGNN.from_models([*models, GCN(4, 8, 3, 2, act="leaky_relu")])
    expected = [float(slope_l1(m).detach()) for m in models] + [0.0]
    assert stack.slope_l1().tolist() == pytest.approx(expected, rel=1e-5)


def test_bad_arguments():
    task = NodeClassification(load("csbm", num_nodes=30, seed=0))
    m = GCN(task.x.size(1), 4, 2, 2)
    for kw, match in (
        ({"epochs": 0}, "epochs"),
        ({"patience": 0}, "patience"),
        ({"lr": float("nan")}, "lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"mode": "best"}, "mode"),
    ):
        with pytest.raises(ValueError, match=match):
            fit(m, task, **kw)
    assert FitRecord().status == "ok"


def test_scorers_known_answers():
    out = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])
    y = torch.tensor([0, 1, 1])
    assert accuracy(out, y, torch.arange(3)) == [pytest.approx(2 / 3)]
    assert math.isnan(accuracy(out, y, torch.arange(0))[0])
    assert roc_auc(out, y, torch.arange(3)) == [1.0]
    assert math.isnan(roc_auc(out, y, torch.tensor([1, 2]))[0])  # one class only


def _proteins_like(n=120, tasks=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, tasks, generator=g) < 0.3).float()
    y[:, -1] = 0.0  # a task without positives: OGB skips it
    noise = 0.5 * torch.randn(n, 8, generator=g)
    x = noise + torch.cat([2.0 * y[:, :5], torch.zeros(n, 3)], 1)  # tasks 0-4 are readable
    ei = torch.randint(0, n, (2, n // 4), generator=g)  # sparse: little mixing
    perm = torch.randperm(n, generator=g)
    masks = {}
    for name, part in zip(("train", "val", "test"), (perm[:60], perm[60:90], perm[90:])):
        m = torch.zeros(n, dtype=torch.bool)
        m[part] = True
        masks[f"{name}_mask"] = m
    return Data(x=x, edge_index=ei, y=y, **masks)


def test_multilabel_roc_auc_is_ogbs():
    from gnnleaky.datasets.ogb import import_ogb

    import_ogb()  # ogb without its network version check
    from ogb.nodeproppred import Evaluator

    data = _proteins_like(tasks=112)  # ogbn-proteins' shape of labels
    g = torch.Generator().manual_seed(1)
    out = torch.randn(2, 120, 112, generator=g) + data.y
    idx = data.test_mask.nonzero().view(-1)
    ours = roc_auc(out, data.y, idx)
    evaluator = Evaluator("ogbn-proteins")
    for k in range(2):
        ref = evaluator.eval({"y_true": data.y[idx, :].numpy(), "y_pred": out[k, idx].numpy()})
        assert ours[k] == pytest.approx(ref["rocauc"], abs=1e-12)


def test_a_multilabel_graph_trains_and_is_scored_by_mean_roc_auc():
    data = _proteins_like()
    task = NodeClassification(data, metric="roc_auc")
    assert task.multilabel and task.num_classes == 6
    torch.manual_seed(0)
    model = GCN(8, 16, 2, 6)
    [rec] = fit(model, task, epochs=60, lr=0.02)
    assert rec.status == "ok"
    assert rec.curve[-1]["train"] > rec.curve[0]["train"]
    assert 0.5 < rec.scores["test"] <= 1.0
