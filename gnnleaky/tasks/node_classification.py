r"""Node classification: the default task of the sweep and of the analyses."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import dropout_edge

from gnnleaky._validation import check_finite, check_graph
from gnnleaky.nn.activation import slope_l1
from gnnleaky.train.core import Bank, Evaluation
from gnnleaky.train.scorers import scorer

__all__ = ["NodeClassification"]

_SPLITS = ("train", "val", "test")


def _metric_of(data: Any, metric: str | None) -> str:
    if metric is not None:
        return metric
    name = getattr(data, "dataset_name", None)
    if name is not None:
        from gnnleaky.datasets import info

        try:
            return info(name).metric
        except ValueError:
            pass
    return getattr(data, "metric", None) or "accuracy"


class NodeClassification:
    r"""Full-batch node classification on one split of a graph.

    .. math::
        \mathcal{L}_k = \frac{1}{|V_{train}|}\sum_{i \in V_{train}}
        \mathrm{CE}(f_k(X)_i, y_i) \;+\; \lambda \sum_{\ell, c} |\alpha^{(k)}_{\ell, c}|

    (binary cross-entropy averaged over the tasks for multilabel ``y`` of shape
    ``[N, T]``; :math:`\lambda` is ``slope_penalty``, over the PReLU slopes). Scores:
    ``train``, ``val``, ``test`` with the metric (``"accuracy"`` or ``"roc_auc"``; default
    the dataset's official one, else ``data.metric``, else accuracy), ``val_loss`` (eval
    mode) and ``val_loss_train``: the validation loss of the last training forward pass
    (train mode, dropout on, the weights before that step's update), the quantity that
    some published recipes (DropEdge's) select on.

    Args:
        data (torch_geometric.data.Data): ``x``, ``edge_index``, ``y`` and
            ``train_mask``/``val_mask``/``test_mask`` of shape ``[N]`` or ``[N, S]``
            (``edge_weight`` used when present).
        split (int, optional): The mask column of a multi-split dataset. (default: ``0``)
        metric (str, optional): ``"accuracy"`` or ``"roc_auc"``. (default: see above)
        slope_penalty (float, optional): :math:`\lambda`. (default: ``0.0``)
        x (torch.Tensor, optional): Features to use instead of ``data.x`` (e.g. shifted).
        drop_edge (float, optional): DropEdge (Rong et al., 2020): in every training
            forward pass each edge is dropped with this probability (PyG's
            ``dropout_edge``, drawn from torch's global generator, which
            :func:`gnnleaky.train.fit`'s callers seed); evaluation sees the whole graph.
            (default: ``0.0``)

    Example:
        >>> from gnnleaky.datasets import load
        >>> task = NodeClassification(load("csbm", num_nodes=60, seed=0))
        >>> task.metric, task.num_classes, task.multilabel
        ('accuracy', 2, False)
    """

    def __init__(
        self,
        data: Any,
        *,
        split: int = 0,
        metric: str | None = None,
        slope_penalty: float = 0.0,
        x: Tensor | None = None,
        drop_edge: float = 0.0,
    ) -> None:
        for key in ("x", "edge_index", "y"):
            if getattr(data, key, None) is None:
                raise ValueError(f"data must have '{key}' (a PyG Data with split masks)")
        x = data.x if x is None else x
        edge_weight = getattr(data, "edge_weight", None)
        check_graph(x, data.edge_index, edge_weight)
        self.x = x if x.is_floating_point() else x.float()
        self.edge_index = data.edge_index
        self.edge_weight = edge_weight
        y = data.y
        self.multilabel = y.dim() == 2 and y.size(1) > 1
        if not self.multilabel:
            y = y.view(-1)
            if y.is_floating_point():
                raise ValueError(f"data.y must hold integer class labels, got dtype {y.dtype}")
        if y.size(0) != x.size(0):
            raise ValueError(f"data.y has {y.size(0)} rows but x has {x.size(0)} nodes")
        self.y = y.float() if self.multilabel else y.long()
        self.index: dict[str, Tensor] = {}
        for name in _SPLITS:
            mask = getattr(data, f"{name}_mask", None)
            if mask is None:
                raise ValueError(f"data has no {name}_mask")
            if mask.dim() == 2:
                if isinstance(split, bool) or not isinstance(split, int):
                    raise ValueError(f"split must be an int, got {split!r}")
                if not 0 <= split < mask.size(1):
                    raise ValueError(
                        f"split must be in [0, {mask.size(1)}) for this dataset, got split={split}"
                    )
                mask = mask[:, split]
            if mask.dtype != torch.bool or mask.numel() != x.size(0):
                raise ValueError(f"{name}_mask must be a boolean mask of shape [N] or [N, S]")
            self.index[name] = mask.nonzero().view(-1)
        if self.index["train"].numel() == 0:
            raise ValueError(f"split {split} has no training nodes")
        self.num_classes = (
            self.y.size(1)
            if self.multilabel
            else int(getattr(data, "num_classes", 0) or int(self.y.max()) + 1)
        )
        self.metric = _metric_of(data, metric)
        self._score = scorer(self.metric)
        self.slope_penalty = check_finite("slope_penalty", slope_penalty, minimum=0.0)
        self.drop_edge = check_finite("drop_edge", drop_edge, minimum=0.0)
        if self.drop_edge >= 1.0:
            raise ValueError(f"drop_edge must be in [0, 1), got {drop_edge!r}")
        self._val_loss_train: list[float] | None = None

    def forward(self, bank: Bank) -> Tensor:
        """The bank's outputs ``[K, N, C]`` (in training mode on the graph after DropEdge)."""
        edge_index, edge_weight = self.edge_index, self.edge_weight
        if self.drop_edge > 0 and bank.module.training:
            edge_index, kept = dropout_edge(edge_index, p=self.drop_edge)
            if edge_weight is not None:
                edge_weight = edge_weight[kept]
        args = (edge_index,) if edge_weight is None else (edge_index, edge_weight)
        return bank.stack(bank.module(self.x, *args))

    def _loss(self, out: Tensor, index: Tensor) -> Tensor:
        k = out.size(0)
        logits = out[:, index]
        if self.multilabel:
            target = self.y[index].expand(k, -1, -1)
            known = target == target  # NaN marks an unlabelled node, as in OGB
            loss = F.binary_cross_entropy_with_logits(
                logits, torch.nan_to_num(target), reduction="none"
            )
            return (loss * known).sum((1, 2)) / known.sum((1, 2)).clamp_min(1)
        return (
            F.cross_entropy(
                logits.reshape(-1, logits.size(-1)), self.y[index].repeat(k), reduction="none"
            )
            .view(k, -1)
            .mean(1)
        )

    def losses(self, bank: Bank) -> Tensor:
        """Training loss of each model of the bank: ``[K]``."""
        out = self.forward(bank)
        loss = self._loss(out, self.index["train"])
        if self.index["val"].numel():
            with torch.no_grad():
                self._val_loss_train = self._loss(out, self.index["val"]).tolist()
        if self.slope_penalty > 0:
            module = bank.module
            penalty = module.slope_l1() if bank.stacked else slope_l1(module).view(1)
            loss = loss + self.slope_penalty * penalty
        return loss

    def evaluate(self, bank: Bank) -> Evaluation:
        """``train``/``val``/``test`` scores and ``val_loss`` of each model."""
        out = self.forward(bank)
        finite = torch.isfinite(out).flatten(1).all(1).tolist()
        scores = {name: self._score(out, self.y, idx) for name, idx in self.index.items()}
        if self.index["val"].numel():
            scores["val_loss"] = self._loss(out, self.index["val"]).tolist()
        else:
            scores["val_loss"] = [math.nan] * out.size(0)
        train_mode = self._val_loss_train
        if train_mode is None or len(train_mode) != out.size(0):
            train_mode = [math.nan] * out.size(0)
        scores["val_loss_train"] = train_mode
        return Evaluation(scores, finite)
