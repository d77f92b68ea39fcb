r"""The sweep's continual runs: one task sequence (:func:`gnnleaky.tasks.continual.
train_continual`) per run.

The run's dataset is split into tasks of ``classes_per_task`` classes (CGLB's protocol);
``setting`` (``task_il``/``class_il``), ``method`` (``finetune``/``ewc``),
``ewc_strength`` and ``tol`` are task parameters; the model is the run's (depth, width,
activation, dropout, conv), ``epochs`` is per task, ``cfg.seed`` draws the split and the
initialisation. Scores: ``test`` is AP; scalars ``ap``, ``af``, ``drift_norm``,
``drift_relative`` and ``moved`` (the drift while learning the tasks after the first,
averaged over them), ``drift_first`` (the first task's).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from gnnleaky.bench.config import RunConfig
from gnnleaky.bench.tasks import result, task_params
from gnnleaky.tasks.continual import train_continual

__all__ = ["run"]


def run(data: Any, cfg: RunConfig, *, cache: Any = None) -> Any:
    """Learn one task sequence and score it."""
    p = task_params(cfg.task, dict(cfg.task_params))
    start = time.perf_counter()
    kw = cfg.model_kwargs(data.x.size(1), None)
    r = train_continual(
        data,
        setting=p["setting"],
        method=p["method"],
        act=kw["act"],
        act_kwargs=kw["act_kwargs"],
        num_layers=cfg.num_layers,
        hidden_channels=cfg.hidden_channels,
        dropout=cfg.dropout,
        conv=cfg.conv,
        classes_per_task=p["classes_per_task"],
        epochs=cfg.epochs,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        ewc_strength=p["ewc_strength"],
        tol=p["tol"],
        seed=cfg.seed,
    )
    later = r.drift[1:]

    def mean(key: str) -> float:
        return float(np.mean([d[key] for d in later])) if later else math.nan

    ok = r.status == "ok"
    return result(
        cfg,
        status="ok" if ok else "failed",
        reason=None if ok else r.status,
        best_epoch=cfg.epochs * len(r.tasks) if ok else 0,
        epochs_run=cfg.epochs * len(r.drift),
        test_score=r.ap,
        wall_time=time.perf_counter() - start,
        scalars={
            "ap": r.ap,
            "af": r.af,
            "drift_norm": mean("norm"),
            "drift_relative": mean("relative"),
            "moved": mean("moved"),
            "drift_first": r.drift[0]["norm"] if r.drift else math.nan,
        },
    )
