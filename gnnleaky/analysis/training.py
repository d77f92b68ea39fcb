r"""A small full-batch node-classification loop for analyses, and a slope recorder.

The benchmark trainer (``gnnleaky.bench``) is the place for sweeps; this loop exists so
that the analyses (slope trajectories, drift, gating, certificates on trained models)
can train a model in a few lines, deterministically and with a per-epoch callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from gnnleaky.analysis._common import eval_mode, seeded
from gnnleaky.nn.activation import slopes
from gnnleaky.tasks import NodeClassification
from gnnleaky.train import accuracy as score_accuracy
from gnnleaky.train import fit

__all__ = ["SlopeRecorder", "accuracy", "fit_node_classifier", "slope_table"]

_MASKS = ("train_mask", "val_mask", "test_mask")


def _check_data(data: Any) -> None:
    for key in ("x", "edge_index", "y", *_MASKS):
        if getattr(data, key, None) is None:
            raise ValueError(f"data must have '{key}' (a PyG Data with split masks)")
    if data.y.dim() != 1 or data.y.is_floating_point():
        raise ValueError(
            f"data.y must be 1-D integer class labels, got shape {tuple(data.y.shape)} "
            f"and dtype {data.y.dtype}"
        )
    for key in _MASKS:
        if getattr(data, key).dim() != 1:
            raise ValueError(
                f"data.{key} must be 1-D; got shape {tuple(getattr(data, key).shape)} "
                f"(several splits: select one column, e.g. data.train_mask = data.train_mask[:, 0])"
            )


def _forward(model: torch.nn.Module, data: Any, x: Tensor | None = None) -> Tensor:
    ew = getattr(data, "edge_weight", None)
    args = (data.edge_index,) if ew is None else (data.edge_index, ew)
    return model(data.x if x is None else x, *args)


@torch.no_grad()
def accuracy(model: torch.nn.Module, data: Any, x: Tensor | None = None) -> dict[str, float]:
    """Train / validation / test accuracy of a node classifier (eval mode), as
    :func:`gnnleaky.train.accuracy` scores it.

    Example:
        >>> from torch_geometric.data import Data
        >>> from gnnleaky.nn import LeakyGNN
        >>> m = torch.ones(4, dtype=torch.bool)
        >>> data = Data(x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1], [1, 0]]),
        ...             y=torch.zeros(4, dtype=torch.long), train_mask=m, val_mask=m,
        ...             test_mask=m)
        >>> sorted(accuracy(LeakyGNN(3, 8, 2, 2), data))
        ['test_acc', 'train_acc', 'val_acc']
    """
    _check_data(data)
    with eval_mode(model):
        out = _forward(model, data, x).unsqueeze(0)
    return {
        key.replace("_mask", "_acc"): score_accuracy(
            out, data.y, getattr(data, key).nonzero().view(-1)
        )[0]
        for key in _MASKS
    }


def fit_node_classifier(
    model: torch.nn.Module,
    data: Any,
    *,
    epochs: int = 200,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    slope_penalty: float = 0.0,
    x: Tensor | None = None,
    restore_best: bool = True,
    seed: int = 0,
    callback: Callable[[int, torch.nn.Module], None] | None = None,
) -> pd.DataFrame:
    r"""Train a node classifier in place, full batch, with Adam.

    .. math::
        \mathcal{L} = \mathrm{CE}(f(X)_{\mathrm{train}}, y_{\mathrm{train}})
        + \lambda \sum_{\ell, c} |\alpha_{\ell, c}|

    This is :func:`gnnleaky.train.fit` with the
    :class:`~gnnleaky.tasks.NodeClassification` task, all ``epochs`` run (no early
    stopping). Weight decay applies to the weights, not to the PReLU slopes
    (:func:`~gnnleaky.nn.param_groups`); :math:`\lambda` is ``slope_penalty``
    (:func:`~gnnleaky.nn.slope_l1`). With ``restore_best`` the weights of the epoch with
    the best validation accuracy (first one on ties) are restored at the end. Dropout
    and any random init inside run under ``seed`` without touching the global RNG.

    Args:
        model (torch.nn.Module): Called as ``model(x, edge_index[, edge_weight])``.
        data (Data): ``x``, ``edge_index``, ``y`` and 1-D ``train_mask``, ``val_mask``,
            ``test_mask`` (``edge_weight`` used when present).
        epochs (int, optional): Number of epochs. (default: ``200``)
        lr (float, optional): Learning rate. (default: ``0.01``)
        weight_decay (float, optional): Weight decay of non-slope parameters.
            (default: ``5e-4``)
        slope_penalty (float, optional): :math:`\lambda`. (default: ``0.0``)
        x (Tensor, optional): Features to train on instead of ``data.x`` (e.g. shifted).
        restore_best (bool, optional): Restore the best-validation weights.
            (default: ``True``)
        seed (int, optional): Seed for dropout. (default: ``0``)
        callback (callable, optional): Called as ``callback(epoch, model)`` after
            every epoch (epoch ``0`` is before training).

    Returns:
        A DataFrame with one row per epoch: ``epoch``, ``loss``, ``train_acc``,
        ``val_acc``, ``test_acc``.

    Example:
        >>> from torch_geometric.data import Data
        >>> from gnnleaky.nn import LeakyGNN
        >>> m = torch.ones(4, dtype=torch.bool)
        >>> data = Data(x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1], [1, 0]]),
        ...             y=torch.tensor([0, 1, 0, 1]), train_mask=m, val_mask=m, test_mask=m)
        >>> hist = fit_node_classifier(LeakyGNN(3, 8, 2, 2, act="prelu"), data, epochs=5)
        >>> hist.columns.tolist(), len(hist)
        (['epoch', 'loss', 'train_acc', 'val_acc', 'test_acc'], 5)
    """
    _check_data(data)
    task = NodeClassification(data, metric="accuracy", slope_penalty=slope_penalty, x=x)
    callbacks = [] if callback is None else [lambda epoch, bank: callback(epoch, bank.module)]
    with seeded(seed):
        [rec] = fit(
            model,
            task,
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            restore_best=restore_best,
            callbacks=callbacks,
        )
    return pd.DataFrame(
        [
            {
                "epoch": c["epoch"],
                "loss": c["train_loss"],
                "train_acc": c["train"],
                "val_acc": c["val"],
                "test_acc": c["test"],
            }
            for c in rec.curve
        ],
        columns=["epoch", "loss", "train_acc", "val_acc", "test_acc"],
    )


def slope_table(model: torch.nn.Module) -> pd.DataFrame:
    """Every activation's slope, one row per channel: ``act``, ``channel``, ``slope``.

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> slope_table(LeakyGNN(3, 4, 2, 2, act="leaky_relu")).round(4).values.tolist()
        [['acts.0', 0, 0.01]]
    """
    rows = []
    for name, value in slopes(model).items():
        for c, v in enumerate(value.detach().flatten().tolist()):
            rows.append({"act": name, "channel": c, "slope": float(v)})
    return pd.DataFrame(rows, columns=["act", "channel", "slope"])


class SlopeRecorder:
    """Training callback that records every slope after every epoch.

    Pass it as ``callback`` to :func:`fit_node_classifier` (or call it as
    ``recorder(epoch, model)`` from any loop); :meth:`to_frame` returns the slope
    trajectories as a tidy DataFrame (``epoch``, ``act``, ``channel``, ``slope``).

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> rec = SlopeRecorder()
        >>> rec(0, LeakyGNN(3, 4, 2, 2, act="prelu", act_kwargs={"init": 0.1}))
        >>> rec.to_frame().round(3).values.tolist()
        [[0, 'acts.0', 0, 0.1]]
    """

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []

    def __call__(self, epoch: int, model: torch.nn.Module) -> None:
        table = slope_table(model)
        table.insert(0, "epoch", epoch)
        self.frames.append(table)

    def to_frame(self) -> pd.DataFrame:
        if not self.frames:
            return pd.DataFrame(columns=["epoch", "act", "channel", "slope"])
        return pd.concat(self.frames, ignore_index=True)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(epochs={len(self.frames)})"
