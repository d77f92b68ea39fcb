r"""The sweep's contrastive runs: GRACE (:mod:`gnnleaky.tasks.contrastive`) with the run's
model as encoder.

The encoder is :func:`gnnleaky.bench.train.build_model` with ``out_channels`` outputs
(a task parameter): ``num_layers`` layers, ``hidden_channels`` wide but the last, with the
run's activation after every layer, the last included, as GRACE's encoder (on Cora GRACE's
2-layer GCN is 1433 -> 256 -> 128: ``hidden_channels: 256, out_channels: 128``); a
projection head of ``proj_channels``. Training: :func:`gnnleaky.train.fit`, Adam with
``lr`` and ``weight_decay``, all ``epochs`` (no selection: the last epoch is kept, as in
GRACE). Evaluation on the frozen embeddings of the clean graph by
:func:`~gnnleaky.tasks.contrastive.linear_probe`: on a random ``eval_train_ratio`` /
rest split drawn under the run's seed (``C`` by 5-fold cross-validation on its training
nodes) -- the run's ``test_score`` and scalar ``acc_random``; ``val_score`` is that
cross-validation accuracy -- and on the dataset's own split (``C`` on its validation
nodes): scalars ``acc_public`` and ``acc_public_val``.

The hard-negative gradient share
(:func:`~gnnleaky.tasks.contrastive.hard_negative_gradient_share`) is measured on one pair
of views drawn under the run's seed, at initialisation and with the trained weights:
scalars ``hard_grad_share_first`` (the first layer's activation, trained),
``hard_grad_share_first_init``, ``loss_grad_share_first`` (the whole loss's gradient),
``negative_preact_first`` (share of first-layer pre-activations below zero) and
``hard_grad_share_l<i>`` for every activation ``i`` (0 = first).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from gnnleaky.bench.config import RunConfig
from gnnleaky.bench.tasks import fit_result, task_params
from gnnleaky.bench.train import build_model, stage_records
from gnnleaky.tasks.contrastive import (
    GRACE,
    Contrastive,
    hard_negative_gradient_share,
    linear_probe,
    random_split,
)
from gnnleaky.train import fit

__all__ = ["run"]


def _public_split(data: Any, split: int) -> tuple[Any, Any, Any] | None:
    masks = []
    for name in ("train", "val", "test"):
        mask = getattr(data, f"{name}_mask", None)
        if mask is None:
            return None
        if mask.dim() == 2:
            mask = mask[:, split]
        masks.append(mask.nonzero().view(-1))
    return tuple(masks)


def _shares(model: GRACE, task: Contrastive, p: dict, seed: int) -> dict[str, list[float]]:
    views = task.views(torch.Generator().manual_seed(int(seed) + 7919))
    return hard_negative_gradient_share(model, views, task.tau, k=p["hard_negatives"])


def run(data: Any, cfg: RunConfig, *, cache: Any = None) -> Any:
    """Train and evaluate one contrastive run (see the module's description)."""
    p = task_params(cfg.task, dict(cfg.task_params))
    start = time.perf_counter()
    task = Contrastive(
        data,
        tau=p["tau"],
        drop_edge=(p["drop_edge_1"], p["drop_edge_2"]),
        mask_feature=(p["mask_feature_1"], p["mask_feature_2"]),
    )
    encoder = build_model(cfg, task.x.size(1), p["out_channels"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.seed) + 1)  # the head: a stream of its own
        model = GRACE(
            encoder,
            p["out_channels"],
            p["proj_channels"],
            encoder._act_spec.build(p["out_channels"]),
        )

    records = stage_records(model.encoder, task.x, task.edge_index, cfg, "init", cache)[0]
    init = _shares(model, task, p, cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.seed))
        [rec] = fit(
            model,
            task,
            epochs=cfg.epochs,
            patience=None,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            selection=None,
        )
    nan = float("nan")
    scalars: dict[str, float] = {}
    scores = {"train": nan, "val": nan, "test": nan}
    if rec.status == "ok":
        records += stage_records(model.encoder, task.x, task.edge_index, cfg, "best", cache)[0]
        emb = task.embed(model)
        y = data.y.view(-1)
        train, test = random_split(emb.size(0), p["eval_train_ratio"], seed=cfg.seed)
        acc, cv = linear_probe(emb, y, train, test)
        scores.update(val=cv, test=acc)
        scalars.update(acc_random=acc, acc_random_cv=cv)
        public = _public_split(data, cfg.split)
        if public is not None:
            acc_pub, val_pub = linear_probe(emb, y, public[0], public[2], val_index=public[1])
            scalars.update(acc_public=acc_pub, acc_public_val=val_pub)
        trained = _shares(model, task, p, cfg.seed)
        scalars.update(
            hard_grad_share_first=trained["hard"][0],
            hard_grad_share_first_init=init["hard"][0],
            loss_grad_share_first=trained["loss"][0],
            negative_preact_first=trained["negative"][0],
        )
        for i, v in enumerate(trained["hard"]):
            scalars[f"hard_grad_share_l{i}"] = v
    return fit_result(
        cfg,
        rec,
        model,
        wall_time=time.perf_counter() - start,
        layers=records,
        scalars=scalars,
        scores=scores,
    )
