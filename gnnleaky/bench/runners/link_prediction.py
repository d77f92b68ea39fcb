r"""The sweep's link-prediction runs: a GAE (:class:`gnnleaky.tasks.LinkPrediction`) whose
encoder is the run's model.

The encoder is :func:`gnnleaky.bench.train.build_model` with ``out_channels`` (a task
parameter) outputs: ``num_layers`` layers of ``hidden_channels`` with the run's activation
after each but the last (Kipf & Welling's GAE is the 2-layer GCN 32 -> 16 with ReLU). The
edge split is drawn under the run's seed, so seeds differ in split and initialisation.
Training: :func:`gnnleaky.train.fit` (Adam, ``lr``, ``weight_decay``; the epoch with the
best validation ROC-AUC is kept; ``patience``). Scores are ROC-AUC; scalars ``test_auc``,
``test_ap``, ``val_ap``. Per-layer metrics are measured on the full graph.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from gnnleaky.bench.config import RunConfig
from gnnleaky.bench.tasks import fit_result, task_params
from gnnleaky.bench.train import build_model, stage_records
from gnnleaky.tasks.link_prediction import LinkPrediction
from gnnleaky.train import fit

__all__ = ["run"]


def run(data: Any, cfg: RunConfig, *, cache: Any = None) -> Any:
    """Train and score one link-prediction run (see the module's description)."""
    p = task_params(cfg.task, dict(cfg.task_params))
    start = time.perf_counter()
    task = LinkPrediction(data, val_ratio=p["val_ratio"], test_ratio=p["test_ratio"], seed=cfg.seed)
    model = build_model(cfg, task.x.size(1), p["out_channels"])
    x = data.x if data.x.is_floating_point() else data.x.float()
    [layers] = stage_records(model, x, data.edge_index, cfg, "init", cache)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.seed))
        [rec] = fit(
            model,
            task,
            epochs=cfg.epochs,
            patience=cfg.patience,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
        )
    if rec.best_epoch > 0:
        layers += stage_records(model, x, data.edge_index, cfg, "best", cache)[0]
    nan = float("nan")
    scalars = {
        "test_auc": rec.scores.get("test", nan),
        "test_ap": rec.scores.get("test_ap", nan),
        "val_ap": rec.scores.get("val_ap", nan),
    }
    return fit_result(
        cfg,
        rec,
        model,
        wall_time=time.perf_counter() - start,
        layers=layers,
        scalars=scalars,
    )
