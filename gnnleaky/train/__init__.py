"""The training core: one loop (:func:`fit`) for one model or a bank of K, with early
stopping, a divergence guard, callbacks and the official scorers."""

from gnnleaky.train.core import Bank, Evaluation, FitRecord, Task, fit
from gnnleaky.train.scorers import SCORERS, accuracy, roc_auc, scorer

__all__ = [
    "SCORERS",
    "Bank",
    "Evaluation",
    "FitRecord",
    "Task",
    "accuracy",
    "fit",
    "roc_auc",
    "scorer",
]
