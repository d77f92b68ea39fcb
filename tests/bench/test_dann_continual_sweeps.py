"""The domain-adversarial and continual tasks in the sweep: checks before any run, stored
scalars, resume, report figures."""

from __future__ import annotations

import math

import pytest

from gnnleaky.bench.config import ConfigError, SweepConfig
from gnnleaky.bench.report import make_report
from gnnleaky.bench.store import load
from gnnleaky.bench.sweep import run_sweep
from gnnleaky.bench.tasks import TASKS

CSBM = {"num_nodes": 100, "num_classes": 4, "avg_degree": 6, "homophily": 0.8, "seed": 0}


def _cfg(task, **kw):
    base = dict(
        datasets=[{"name": "csbm", "params": CSBM}],
        depths=[2],
        activations=["relu", "leaky_relu"],
        alphas=[0.2],
        seeds=[0],
        epochs=4,
        patience=None,
        hidden_channels=8,
        metrics=[],
        task=task,
    )
    return SweepConfig(**{**base, **kw})


def test_mismatched_domain_pairs_and_bad_parameters_are_refused_before_any_run():
    with pytest.raises(ConfigError, match="1703 features but target 'cora' has 1433"):
        _cfg("domain_adversarial", datasets=["cornell"], task_params={"target": "cora"})
    with pytest.raises(ConfigError, match="same graph"):
        _cfg("domain_adversarial", datasets=["texas"], task_params={"target": "texas"})
    with pytest.raises(ConfigError, match="name the target of 'cora'"):
        _cfg("domain_adversarial", datasets=["cora"])
    with pytest.raises(ConfigError, match=r"task_params.shift of .* must be a finite"):
        _cfg("domain_adversarial", task_params={"shift": "big"})
    with pytest.raises(ConfigError, match="target_homophily must be in"):
        _cfg("domain_adversarial", task_params={"target_homophily": 1.5})
    with pytest.raises(ConfigError, match="setting must be one of"):
        _cfg("continual", task_params={"setting": "domain_il"})
    with pytest.raises(ConfigError, match=r"task_params.ewc_strength .* must be a finite"):
        _cfg("continual", task_params={"ewc_strength": None})


@pytest.mark.parametrize(
    ("task", "params", "claims"),
    [
        ("domain_adversarial", {"shift": 1.0, "share_every": 2}, ["gain", "share_first"]),
        ("continual", {"method": "ewc"}, ["af", "drift_norm"]),
    ],
)
def test_sweep_stores_the_claims_resumes_and_reports(tmp_path, task, params, claims):
    cfg = _cfg(task, task_params=params)
    path = tmp_path / "r.sqlite"
    first = run_sweep(cfg, path)
    assert (first.trained, first.failed) == (2, 0)
    assert run_sweep(cfg, path).skipped == 2
    res = load(path)
    assert set(TASKS[task].figures) <= set(res.scalars.name)
    values = res.scalars.pivot(index="run_key", columns="name", values="value")
    if task == "domain_adversarial":
        gain = values.target_dann - values.target_source_only
        assert all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(gain, values.gain))
        merged = values.join(res.runs.set_index("key"))
        assert all(math.isclose(a, b) for a, b in zip(merged.target_dann, merged.test_score))
    else:
        assert ((values.af >= -1) & (values.af <= 1) & (values.ap >= 0)).all()
    names = {p.name for p in make_report(path, tmp_path / "report")}
    for claim in claims:
        assert f"{task}_{claim}_csbm_gcn.png" in names
