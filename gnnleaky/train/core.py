r"""The training core: :func:`fit` trains one model or a bank of K models, full batch.

Every paradigm of the library (node classification, contrastive, domain-adversarial,
continual, link prediction; see :mod:`gnnleaky.tasks`) and every caller (the sweep, the
analyses, the CLI) trains through this one loop. A *task* says what is optimized and how
it is scored; the loop does the rest, per model:

* one optimizer step on the task's loss per epoch (Adam; PReLU slopes exempt from weight
  decay unless ``param_groups`` says otherwise);
* a divergence guard: a non-finite loss or non-finite scores mark the model ``failed``
  with the reason, and the other models of the bank go on (a NaN loss never enters their
  gradients);
* evaluation after every step; the epoch with the best selection score is kept (ties:
  the earliest), and its weights are restored at the end;
* early stopping after ``patience`` epochs without improvement; in a bank, models that
  stop are dropped from the stack (their optimizer state carried over for the others);
* callbacks after every epoch (epoch ``0``: before training).

A bank (:class:`Bank`) is a stacked module with a leading model dimension in every
parameter (:class:`gnnleaky.engine.StackedGNN`: ``num_models``, ``select``,
``param_groups``), or any module seen as one model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor

from gnnleaky._validation import check_finite, check_positive_int
from gnnleaky.nn.activation import param_groups as slope_param_groups

__all__ = ["Bank", "Evaluation", "FitRecord", "Task", "fit"]


class Bank:
    """K models trained together: a stacked module, or any module as K = 1.

    Args:
        module (torch.nn.Module): A stack (with ``num_models``, ``select(index)`` and
            ``param_groups(weight_decay)``) or a single model.
        ids (list[int], optional): The position of each of the bank's models among the
            models of the fit (set by :meth:`select`). (default: ``range(K)``)
    """

    def __init__(self, module: torch.nn.Module, ids: Sequence[int] | None = None) -> None:
        self.module = module
        self.stacked = hasattr(module, "num_models") and hasattr(module, "select")
        k = int(module.num_models) if self.stacked else 1
        self.ids = list(range(k)) if ids is None else list(ids)

    @property
    def size(self) -> int:
        """The number of models K."""
        return len(self.ids)

    def named_params(self) -> dict[str, torch.nn.Parameter]:
        """The module's parameters by name."""
        return dict(self.module.named_parameters())

    def rows(self, p: Tensor) -> Tensor:
        """``p`` with a leading model dimension (a view)."""
        return p if self.stacked else p.unsqueeze(0)

    def stack(self, out: Tensor) -> Tensor:
        """A model's output with the leading model dimension (``[K, ...]``)."""
        return out if self.stacked else out.unsqueeze(0)

    def select(self, keep: list[int], opt: torch.optim.Optimizer, make_opt: Callable) -> tuple:
        """The bank of the models at ``keep`` and its optimizer, Adam's state carried over."""
        old = self.named_params()
        bank = Bank(self.module.select(keep), [self.ids[i] for i in keep])
        if hasattr(self.module, "clear_cache"):
            self.module.clear_cache()  # the dropped stack's buffers are not needed any more
        new_opt = make_opt(bank.module)
        index = torch.tensor(keep)
        for name, p in bank.named_params().items():
            state = opt.state.get(old[name])
            if state:
                new_opt.state[p] = {
                    key: (
                        v.index_select(0, index).clone()
                        if torch.is_tensor(v) and v.dim() > 0
                        else (v.clone() if torch.is_tensor(v) else v)
                    )
                    for key, v in state.items()
                }
        return bank, new_opt


class Evaluation(NamedTuple):
    """Scores of K models (name -> K values; NaN where a score is undefined, e.g. an
    empty split) and whether each model's outputs were finite."""

    scores: dict[str, list[float]]
    finite: list[bool]


class Task(Protocol):
    """What a fit optimizes and how it is scored (see :mod:`gnnleaky.tasks`)."""

    def losses(self, bank: Bank) -> Tensor:
        """The K training losses (train mode, gradients enabled): a ``[K]`` tensor."""

    def evaluate(self, bank: Bank) -> Evaluation:
        """Scores of the K models (eval mode, no gradients)."""


@dataclass
class FitRecord:
    """The outcome of one model's fit.

    ``scores`` are the evaluation at the selected epoch; ``curve`` has one dict per epoch
    run (``epoch``, ``train_loss`` and every evaluated score). A failed model keeps its
    curve up to the failure and its best epoch so far (``best_epoch=0``: none).
    """

    status: str = "ok"
    reason: str | None = None
    best_epoch: int = 0
    epochs_run: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    best_value: float = math.nan
    done: bool = False


def _better(value: float, best: float, mode: str) -> bool:
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value > best if mode == "max" else value < best


def fit(
    module: torch.nn.Module,
    task: Task,
    *,
    epochs: int = 200,
    patience: int | None = None,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    param_groups: Callable[[torch.nn.Module], list[dict[str, Any]]] | None = None,
    selection: str = "val",
    mode: str = "max",
    restore_best: bool = True,
    callbacks: Sequence[Callable[[int, Bank], None]] = (),
) -> list[FitRecord]:
    r"""Train ``module`` (one model, or a stack of K) on ``task``; one record per model.

    Args:
        module (torch.nn.Module): A model, or a stack of K models (see :class:`Bank`).
        task (Task): The loss and the scores, e.g.
            :class:`gnnleaky.tasks.NodeClassification`.
        epochs (int, optional): Most epochs. (default: ``200``)
        patience (int, optional): Stop a model after this many epochs without a better
            selection score; ``None`` trains all epochs. (default: ``None``)
        lr (float, optional): Adam's learning rate. (default: ``0.01``)
        weight_decay (float, optional): Weight decay of every parameter but the PReLU
            slopes. (default: ``5e-4``)
        param_groups (callable, optional): ``param_groups(module)`` -> the optimizer's
            parameter groups (e.g. another decay for some layers); replaces the default.
        selection (str, optional): The score that selects the best epoch. (default:
            ``"val"``)
        mode (str, optional): ``"max"`` or ``"min"`` (e.g. ``selection="val_loss"``).
        restore_best (bool, optional): Load the selected epoch's weights at the end.
            (default: ``True``)
        callbacks (list, optional): ``callback(epoch, bank)`` after every epoch, and with
            epoch ``0`` before the first.

    Example:
        >>> from gnnleaky.datasets import load
        >>> from gnnleaky.nn import GCN
        >>> from gnnleaky.tasks import NodeClassification
        >>> data = load("csbm", num_nodes=60, seed=0)
        >>> [rec] = fit(GCN(data.num_features, 8, 2, 2), NodeClassification(data), epochs=5)
        >>> rec.status, rec.epochs_run, len(rec.curve), sorted(rec.scores)[:2]
        ('ok', 5, 5, ['test', 'train'])
    """
    check_positive_int("epochs", epochs)
    if patience is not None:
        check_positive_int("patience", patience)
    lr = check_finite("lr", lr, minimum=0.0)
    weight_decay = check_finite("weight_decay", weight_decay, minimum=0.0)
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")

    def make_opt(m: torch.nn.Module) -> torch.optim.Optimizer:
        if param_groups is not None:
            groups = param_groups(m)
        elif hasattr(m, "num_models") and hasattr(m, "param_groups"):
            groups = m.param_groups(weight_decay)
        else:
            groups = slope_param_groups(m, weight_decay=weight_decay)
        # fused: one kernel per parameter (the for-loop Adam runs ~10 small ops each)
        return torch.optim.Adam(groups, lr=lr, fused=True)

    bank = Bank(module)
    k_total = bank.size
    full = bank.module  # keeps all K rows; receives the best weights at the end
    best = {n: bank.rows(p).detach().clone() for n, p in bank.named_params().items()}
    records = [FitRecord() for _ in range(k_total)]
    opt = make_opt(bank.module)
    for cb in callbacks:
        cb(0, bank)
    for epoch in range(1, epochs + 1):
        # -- one optimizer step for every model still training ------------------------------
        bank.module.train()
        opt.zero_grad(set_to_none=True)
        losses = task.losses(bank)
        finite = torch.isfinite(losses.detach()).tolist()
        ok = [i for i in range(bank.size) if finite[i]]
        for i in range(bank.size):
            if not finite[i]:
                rec = records[bank.ids[i]]
                rec.status, rec.done = "failed", True
                rec.reason = f"non-finite loss at epoch {epoch}"
        if ok:
            # indexing (not masking) keeps a NaN loss out of the other models' gradients
            losses[ok].sum().backward()
            opt.step()
        loss_values = losses.detach().tolist()
        del losses

        # -- evaluation -------------------------------------------------------------------
        bank.module.eval()
        with torch.no_grad():
            scores, finite_out = task.evaluate(bank)
        improved = []
        for i in range(bank.size):
            rec = records[bank.ids[i]]
            if rec.done:
                continue
            rec.epochs_run = epoch
            if not finite_out[i]:
                rec.status, rec.done = "failed", True
                rec.reason = f"non-finite outputs at epoch {epoch}"
                continue
            row = {name: float(values[i]) for name, values in scores.items()}
            rec.curve.append({"epoch": epoch, "train_loss": loss_values[i], **row})
            value = row.get(selection, math.nan)
            if _better(value, rec.best_value, mode):
                rec.best_value, rec.best_epoch, rec.scores = value, epoch, row
                improved.append(i)
            elif patience is not None and epoch - rec.best_epoch >= patience:
                rec.done = True
        if improved:
            params = bank.named_params()
            with torch.no_grad():
                if len(improved) == bank.size == k_total:  # all improved, none dropped yet
                    torch._foreach_copy_(
                        [best[n] for n in params], [bank.rows(p) for p in params.values()]
                    )
                else:
                    idx = torch.tensor(improved)
                    orig = torch.tensor([bank.ids[i] for i in improved])
                    for n, p in params.items():
                        best[n].index_copy_(0, orig, bank.rows(p).detach().index_select(0, idx))
        for cb in callbacks:
            cb(epoch, bank)
        keep = [i for i in range(bank.size) if not records[bank.ids[i]].done]
        if not keep:
            break
        if len(keep) < bank.size:
            if not bank.stacked:
                break
            bank, opt = bank.select(keep, opt, make_opt)

    if restore_best:
        with torch.no_grad():
            for n, p in full.named_parameters():
                Bank(full).rows(p).copy_(best[n])
    if hasattr(full, "clear_cache"):
        full.clear_cache()
    full.eval()
    return records
