r"""Scores of K models at once: accuracy and ROC-AUC (binary and multilabel, as OGB).

A scorer takes the outputs of K models ``out`` (``[K, N, C]``), the labels ``y`` and the
node index of a split, and returns one score per model (NaN where it is undefined: an
empty split, one class only, or non-finite outputs).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["SCORERS", "accuracy", "roc_auc", "scorer"]


def accuracy(out: Tensor, y: Tensor, index: Tensor) -> list[float]:
    r"""Share of nodes whose arg-max class is the label, per model.

    Args:
        out (torch.Tensor): Logits ``[K, N, C]``.
        y (torch.Tensor): Class labels ``[N]``.
        index (torch.Tensor): The split's node indices.

    Example:
        >>> out = torch.tensor([[[2.0, 1.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]])
        >>> accuracy(out, torch.tensor([0, 1]), torch.tensor([0, 1]))
        [1.0, 0.5]
    """
    if index.numel() == 0:
        return [math.nan] * out.size(0)
    correct = out[:, index].argmax(-1) == y[index]
    return correct.double().mean(1).tolist()


def roc_auc(out: Tensor, y: Tensor, index: Tensor) -> list[float]:
    r"""ROC-AUC per model, as OGB's ``Evaluator`` computes it.

    * binary labels ``y`` ``[N]`` and two logits per node: the AUC of the positive class's
      probability (``softmax(out)[..., 1]``);
    * multilabel ``y`` ``[N, T]`` (0/1, NaN for unlabelled) and ``T`` logits: the mean over
      the tasks that have both a positive and a negative label in the split of each task's
      AUC (OGB's ``rocauc``; NaN where no task qualifies).

    Example:
        >>> out = torch.tensor([[[0.0, 2.0], [0.0, -1.0], [0.0, 1.0]]])
        >>> roc_auc(out, torch.tensor([1, 0, 0]), torch.arange(3))
        [1.0]
    """
    from sklearn.metrics import roc_auc_score

    k = out.size(0)
    if index.numel() == 0:
        return [math.nan] * k
    if y.dim() == 1:
        labels = y[index].numpy()
        if len(set(labels.tolist())) < 2:
            return [math.nan] * k
        score = torch.softmax(out[:, index].double(), dim=-1)[..., 1]
        return [
            float(roc_auc_score(labels, s.numpy())) if bool(torch.isfinite(s).all()) else math.nan
            for s in score
        ]
    labels = y[index].double()
    scores = out[:, index].double()
    results = []
    for s in scores:
        if not bool(torch.isfinite(s).all()):
            results.append(math.nan)
            continue
        aucs = []
        for t in range(labels.size(1)):
            lab = labels[:, t]
            known = lab == lab  # OGB: NaN marks an unlabelled node
            pos = int((lab[known] == 1).sum())
            if pos == 0 or pos == int(known.sum()):
                continue
            aucs.append(roc_auc_score(lab[known].numpy(), s[known, t].numpy()))
        results.append(float(sum(aucs) / len(aucs)) if aucs else math.nan)
    return results


#: Official metrics: name -> scorer(out [K, N, C], y, node index) -> K scores.
SCORERS: dict[str, Callable[[Tensor, Tensor, Tensor], list[float]]] = {
    "accuracy": accuracy,
    "roc_auc": roc_auc,
}


def scorer(name: str) -> Callable[[Tensor, Tensor, Tensor], list[float]]:
    """The scorer registered under ``name``."""
    if name not in SCORERS:
        raise ValueError(f"metric must be one of {sorted(SCORERS)}, got {name!r}")
    return SCORERS[name]
