r"""The sweep's domain-adversarial runs: a DANN and its source-only baseline per run.

The run's dataset is the source. Its target (``task_params.target``, see
:func:`gnnleaky.tasks.domain_adversarial.target_name`) is another WebKB graph, or, for a
``csbm`` source, its twin drawn by :func:`~gnnleaky.tasks.domain_adversarial.csbm_pair`
from the run's dataset parameters (shared class means, the target's features moved by
``shift`` noise standard deviations along the class axis, homophily
``target_homophily``, ``-1``: the source's). Both models of a run (DANN and source-only,
:math:`\lambda = 0`) start from the same initialisation (``cfg.seed``) and are selected
on the source's validation nodes (split ``cfg.split``). Scores: ``train``/``val`` are the
DANN's source accuracies, ``test`` its target accuracy; scalars ``target_dann``,
``target_source_only``, ``gain`` (their difference), ``domain_acc``, ``share_first``
(the share of the reversed gradient past the first activation, with the selected
weights) and ``share_first_mean`` (its mean over training), ``source_test``.
"""

from __future__ import annotations

import time
from typing import Any

from gnnleaky.bench.config import RunConfig
from gnnleaky.bench.tasks import result, task_params
from gnnleaky.tasks.domain_adversarial import csbm_pair, target_name, train_dann

__all__ = ["pair", "run"]


def pair(data: Any, cfg: RunConfig, p: dict[str, Any]) -> tuple[Any, Any]:
    """The run's (source, target) graphs."""
    from gnnleaky.datasets import load

    name = target_name(cfg.dataset, p["target"])
    if name == "csbm":
        params = dict(cfg.dataset_params)
        seed = int(params.pop("seed", 0))
        h = float(params.pop("homophily", 0.8))
        th = h if p["target_homophily"] == -1.0 else p["target_homophily"]
        return csbm_pair(
            shift=p["shift"], source_homophily=h, target_homophily=th, seed=seed, **params
        )
    return data, load(name)


def run(data: Any, cfg: RunConfig, *, cache: Any = None) -> Any:
    """Train and score one DANN run and its source-only baseline."""
    p = task_params(cfg.task, dict(cfg.task_params))
    start = time.perf_counter()
    source, target = pair(data, cfg, p)
    kw = cfg.model_kwargs(source.x.size(1), None)
    common = dict(
        act=kw["act"],
        act_kwargs=kw["act_kwargs"],
        num_layers=cfg.num_layers,
        hidden_channels=cfg.hidden_channels,
        dropout=cfg.dropout,
        conv=cfg.conv,
        split=cfg.split,
        epochs=cfg.epochs,
        patience=cfg.patience,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        max_coefficient=p["max_coefficient"],
        share_every=p["share_every"],
        seed=cfg.seed,
    )
    only = train_dann(source, target, adapt=False, **common)
    dann = train_dann(source, target, adapt=True, **common)
    status = "ok" if only.status == dann.status == "ok" else "failed"
    return result(
        cfg,
        status=status,
        reason=None if status == "ok" else f"source-only: {only.status}, DANN: {dann.status}",
        best_epoch=dann.best_epoch,
        epochs_run=dann.epochs_run,
        train_score=dann.curve[dann.best_epoch - 1]["train"] if dann.best_epoch else float("nan"),
        val_score=dann.source_val,
        test_score=dann.target,
        wall_time=time.perf_counter() - start,
        curve=[
            {
                "epoch": c["epoch"],
                "train_loss": c["train_loss"],
                "train_score": c["train"],
                "val_score": c["val"],
                "test_score": c["target"],
            }
            for c in dann.curve
        ],
        scalars={
            "target_dann": dann.target,
            "target_source_only": only.target,
            "gain": dann.target - only.target,
            "domain_acc": dann.domain_acc,
            "domain_acc_source_only": only.domain_acc,
            "share_first": dann.share["first"],
            "share_first_mean": dann.share_mean,
            "share_first_source_only": only.share["first"],
            "source_test": dann.source_test,
        },
    )
