"""Contrastive (GRACE-style) learning: the NT-Xent loss, the gradient share, the probe."""

from __future__ import annotations

import math

import pytest
import torch

from gnnleaky.datasets import load
from gnnleaky.nn import GCN, activation
from gnnleaky.tasks.contrastive import (
    GRACE,
    Contrastive,
    hard_negative_gradient_share,
    linear_probe,
    nt_xent,
    random_split,
)
from gnnleaky.train import fit


def test_nt_xent_on_a_hand_computed_three_node_case():
    # views u = (e1, e2, d), v = (e1, d, e2) with d = (1, 1)/sqrt(2); cosines are 1, c, 0
    r = math.sqrt(0.5)
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0], [r, r]])
    v = torch.tensor([[1.0, 0.0], [r, r], [0.0, 1.0]])
    tau = 0.5
    one, c, zero = math.exp(1 / tau), math.exp(r / tau), math.exp(0.0)

    def ell(pos, between, refl):  # -log(e^{pos} / (sum between + sum refl))
        return -math.log(pos / (sum(between) + sum(refl)))

    # anchors in u: their row of u.v^T (inter-view) and u.u^T without the diagonal
    lu = [
        ell(one, [one, c, zero], [zero, c]),
        ell(c, [zero, c, one], [zero, c]),
        ell(c, [c, one, c], [c, c]),
    ]
    # anchors in v: their column of u.v^T and v.v^T without the diagonal
    lv = [
        ell(one, [one, zero, c], [c, zero]),
        ell(c, [c, c, one], [c, c]),
        ell(c, [zero, one, c], [zero, c]),
    ]
    expected = (sum(lu) + sum(lv)) / 6
    assert float(nt_xent(u, v, tau)) == pytest.approx(expected, rel=1e-6)
    # cosine similarity: scaling a node's vector changes nothing; K models at once
    scaled = u * torch.tensor([[2.0], [0.5], [3.0]])
    assert float(nt_xent(scaled, v, tau)) == pytest.approx(expected, rel=1e-6)
    stacked = nt_xent(torch.stack([u, v]), torch.stack([v, u]), tau)
    assert stacked.shape == (2,) and float(stacked[1]) == pytest.approx(expected, rel=1e-6)


def test_nt_xent_refuses_bad_input():
    with pytest.raises(ValueError, match="tau must be > 0"):
        nt_xent(torch.eye(3), torch.eye(3), tau=0.0)
    with pytest.raises(ValueError, match="same shape"):
        nt_xent(torch.eye(3), torch.eye(4), tau=0.5)


def _graph():
    return load("csbm", num_nodes=80, num_features=8, seed=0)


def _views(data):
    task = Contrastive(data, tau=0.5)
    return task, task.views(torch.Generator().manual_seed(0))


def test_gradient_share_is_one_for_the_identity_and_zero_where_nothing_passes():
    data = _graph()
    _, views = _views(data)
    torch.manual_seed(0)
    ident = GRACE(GCN(8, 16, 2, 8, act="identity"), 8, 8, activation("identity"))
    out = hard_negative_gradient_share(ident, views, tau=0.5, k=5)
    assert out["hard"] == pytest.approx([1.0, 1.0]) and out["loss"] == pytest.approx([1.0, 1.0])

    class Stop(torch.nn.Module):  # value passes, gradient does not
        def forward(self, x):
            return x.detach() + 0 * x

    torch.manual_seed(0)
    blocked = GRACE(GCN(8, 16, 2, 8, act=Stop()), 8, 8, activation("identity"))
    assert hard_negative_gradient_share(blocked, views, tau=0.5, k=5)["hard"][0] == 0.0


def test_relu_passes_the_gradient_of_positive_units_only():
    data = _graph()
    _, views = _views(data)
    torch.manual_seed(0)
    relu = GRACE(GCN(8, 16, 2, 8), 8, 8, activation("relu"))
    out = hard_negative_gradient_share(relu, views, tau=0.5, k=5)
    assert 0.0 < out["hard"][0] < 1.0 and 0.0 < out["negative"][0] < 1.0
    # all pre-activations positive (non-negative input, weights and no bias): all passes
    torch.manual_seed(0)
    pos = GRACE(GCN(8, 16, 2, 8, bias=False), 8, 8, activation("relu"))
    with torch.no_grad():
        for conv in pos.encoder.convs:
            conv.lin.weight.abs_()
    nonneg = [(x.abs(), e) for x, e in views]
    out = hard_negative_gradient_share(pos, nonneg, tau=0.5, k=5)
    assert out["negative"][0] == 0.0 and out["hard"][0] == pytest.approx(1.0)


def test_training_lowers_the_loss_and_keeps_the_last_epoch():
    data = _graph()
    torch.manual_seed(0)
    model = GRACE(GCN(8, 16, 2, 8), 8, 8, activation("relu"))
    [rec] = fit(model, Contrastive(data), epochs=30, lr=0.01, selection=None)
    assert rec.status == "ok" and rec.best_epoch == 30
    assert rec.curve[-1]["train_loss"] < rec.curve[0]["train_loss"]


def test_linear_probe_and_random_split():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 4
    emb = torch.nn.functional.one_hot(y, 4).float() + 0.05 * torch.randn(200, 4, generator=g)
    train, test = random_split(200, 0.1, seed=1)
    assert (len(train), len(test)) == (20, 180)
    assert not set(train.tolist()) & set(test.tolist())
    acc, cv = linear_probe(emb, y, train, test)
    assert acc == 1.0 and cv == 1.0
    noise = torch.randn(200, 4, generator=g)
    acc, _ = linear_probe(noise, y, *random_split(200, 0.5, seed=1), val_index=train)
    assert acc < 0.5  # nothing to learn from noise (chance is 0.25)
