"""Domain-adversarial training: the gradient reversal layer, the schedule, the pair checks,
the wiring of the reversed gradient and its share at the activations."""

from __future__ import annotations

import math

import pytest
import torch

from gnnleaky.datasets import load
from gnnleaky.tasks.domain_adversarial import (
    DANN,
    DomainAdversarial,
    GradientReversal,
    check_domain_pair,
    csbm_pair,
    domain_pair,
    grad_reverse,
    grl_coefficient,
    reversed_gradient_share,
    train_dann,
)
from gnnleaky.train import Bank


@pytest.mark.parametrize("coefficient", [0.0, 0.37, 1.0, 2.5])
def test_grl_is_identity_forward_and_minus_coefficient_backward(coefficient):
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(7, 5, dtype=torch.float64)
    y = GradientReversal.apply(x, coefficient)
    assert torch.equal(y, x)
    (grad,) = torch.autograd.grad(y, x, g)
    assert torch.equal(grad, -coefficient * g)  # exactly, not approximately
    (grad2,) = torch.autograd.grad(grad_reverse(x, coefficient), x, g)
    assert torch.equal(grad2, grad)


def test_grad_reverse_and_schedule_reject_bad_values():
    x = torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="coefficient"):
        grad_reverse(x, -1.0)
    with pytest.raises(ValueError, match="progress"):
        grl_coefficient(1.5)
    with pytest.raises(ValueError, match="gamma"):
        grl_coefficient(0.5, gamma=0.0)


def test_grl_schedule_is_ganins():
    assert grl_coefficient(0.0) == 0.0
    for p in (0.1, 0.5, 1.0):
        assert math.isclose(grl_coefficient(p), 2 / (1 + math.exp(-10 * p)) - 1)
    assert math.isclose(grl_coefficient(0.5, gamma=2.0), math.tanh(0.5))  # 2 s(2x) - 1 = tanh x
    values = [grl_coefficient(p / 10) for p in range(11)]
    assert values == sorted(values) and values[-1] < 1.0


def test_pairs_with_other_widths_or_classes_are_refused():
    a = load("csbm", num_nodes=50, seed=0)
    with pytest.raises(ValueError, match="16 features but target has 8"):
        check_domain_pair(a, load("csbm", num_nodes=50, num_features=8, seed=0))
    with pytest.raises(ValueError, match="2 classes but target has 3"):
        check_domain_pair(a, load("csbm", num_nodes=50, num_classes=3, seed=0))
    with pytest.raises(ValueError, match="features but target"):
        train_dann(a, load("csbm", num_nodes=50, num_features=8, seed=0), epochs=1)


def test_named_pairs_are_checked_before_any_file_is_read(tmp_path):
    # an empty data root: reaching load() would raise DatasetNotFoundError instead
    with pytest.raises(ValueError, match="1703 features but target 'cora' has 1433"):
        domain_pair("cornell", "cora", root=tmp_path)
    with pytest.raises(ValueError, match="same graph"):
        domain_pair("texas", "Texas", root=tmp_path)


def test_csbm_pair_shifts_the_target_mean_along_the_class_axis():
    s, t0 = csbm_pair(num_nodes=2000, seed=3)
    _, t1 = csbm_pair(shift=2.0, num_nodes=2000, seed=3)
    d = (t1.x - t0.x).double()
    assert torch.allclose(d, d[0].expand_as(d), atol=1e-6)
    assert math.isclose(float(d[0].norm()), 2.0, rel_tol=1e-5)
    # the shift points from the class-0 mean to the class-1 mean
    axis = s.x[s.y == 1].double().mean(0) - s.x[s.y == 0].double().mean(0)
    assert float(torch.nn.functional.cosine_similarity(axis, d[0], dim=0)) > 0.9


def _model(act="relu", **kw):
    torch.manual_seed(0)
    return DANN(16, 8, 2, 2, act=act, act_kwargs=kw, dropout=0.0)


def _extractor_grads(model, task):
    model.zero_grad()
    task.losses(Bank(model)).sum().backward()
    return [p.grad.clone() for p in model.extractor.parameters()]


def test_extractor_gets_the_label_gradient_minus_lambda_times_the_domain_gradient():
    s, t = csbm_pair(shift=1.0, num_nodes=120, seed=0)
    model = _model()
    # source-only: the extractor sees the label loss alone
    only = DomainAdversarial(s, t, adapt=False, epochs=10)
    g_only = _extractor_grads(model, only)
    assert only.coefficient == 0.0
    label = DomainAdversarial(s, t, adapt=True, epochs=10, domain_weight=0.0)
    assert all(torch.allclose(a, b) for a, b in zip(g_only, _extractor_grads(model, label)))
    # DANN at step 6 of 10: lambda = grl_coefficient(5/9)
    task = DomainAdversarial(s, t, adapt=True, epochs=10)
    task.step = 5
    g = _extractor_grads(model, task)
    lam = grl_coefficient(5 / 9)
    assert math.isclose(task.coefficient, lam)
    hs = model.features(task.source.x, task.source.edge_index)
    ht = model.features(task.xt, task.edge_index_t)
    dom = 0.5 * (
        torch.nn.functional.binary_cross_entropy_with_logits(
            model.discriminator(hs).view(-1), torch.zeros(hs.size(0))
        )
        + torch.nn.functional.binary_cross_entropy_with_logits(
            model.discriminator(ht).view(-1), torch.ones(ht.size(0))
        )
    )
    g_dom = torch.autograd.grad(dom, list(model.extractor.parameters()))
    for a, b, c in zip(g, g_only, g_dom):
        assert torch.allclose(a, b - lam * c, atol=1e-6)


def test_share_is_one_without_a_kink_and_the_active_mass_for_relu():
    s, t = csbm_pair(shift=1.0, num_nodes=120, seed=0)
    task = DomainAdversarial(s, t, epochs=10)
    lin = reversed_gradient_share(_model("leaky_relu", negative_slope=1.0), task)
    assert math.isclose(lin["first"], 1.0, rel_tol=1e-9)
    model = _model("relu")
    share = reversed_gradient_share(model, task)
    # independently: the L1 mass of dR/dH on the units with Z > 0
    ext = model.extractor
    hs, hid_s = ext.forward_hidden(task.source.x, task.source.edge_index)
    ht, hid_t = ext.forward_hidden(task.xt, task.edge_index_t)
    dom = 0.5 * (
        torch.nn.functional.softplus(model.discriminator(hs)).mean()
        + torch.nn.functional.softplus(-model.discriminator(ht)).mean()
    )
    gs, gt = torch.autograd.grad(dom, [hid_s.post[0], hid_t.post[0]])
    on = (gs.abs() * (hid_s.pre[0] > 0)).sum() + (gt.abs() * (hid_t.pre[0] > 0)).sum()
    assert math.isclose(share["first"], float(on / (gs.abs().sum() + gt.abs().sum())), rel_tol=1e-5)
    assert 0.0 < share["first"] < 1.0 and share["chain"] == share["first"]
    leaky = reversed_gradient_share(_model("leaky_relu", negative_slope=0.3), task)
    assert 0.3 <= leaky["first"] <= 1.0


def test_train_dann_selects_on_source_validation_and_reports_every_number():
    s, t = csbm_pair(shift=1.0, num_nodes=150, seed=0)
    r = train_dann(s, t, hidden_channels=8, epochs=12, share_every=4, seed=1)
    assert r.status == "ok" and r.epochs_run == 12 and len(r.curve) == 12
    vals = [c["val"] for c in r.curve]
    assert r.best_epoch == 1 + vals.index(max(vals)) and r.source_val == max(vals)
    assert r.target == r.curve[r.best_epoch - 1]["target"]
    assert 0.0 <= r.domain_acc <= 1.0 and 0.0 < r.share["first"] <= 1.0
    assert not math.isnan(r.share_mean)
    again = train_dann(s, t, hidden_channels=8, epochs=12, share_every=4, seed=1)
    assert again.target == r.target and again.share == r.share  # seeded
