r"""Continual node classification: a graph's classes arrive as a sequence of tasks.

The protocol follows CGLB, the continual graph learning benchmark (Zhang, Song and Tao,
NeurIPS 2022 Datasets and Benchmarks; ``github.com/QueuQ/CGLB``, ``NCGL/pipeline.py``):

* the classes, in label order, form tasks of ``classes_per_task`` consecutive classes
  (:func:`class_tasks`; with two per task CGLB's
  ``range(0, n_cls - 1, n_cls_per_task)`` — a trailing task with fewer classes is dropped,
  so Cora's 7 classes give 3 tasks and class 6 is unused);
* each task is the subgraph induced by its classes' nodes (CGLB's default, no inter-task
  edges), its nodes split per class at random into 60% train, 20% validation and 20% test
  (CGLB's ``ratio_valid_test = [0.2, 0.2]``);
* the model has one output per class of the sequence; in the *class-incremental* setting
  task :math:`t` trains and is scored on the logits of all classes seen so far
  :math:`[0, o_t)`, in the *task-incremental* setting on its own classes
  :math:`[o_{t-1}, o_t)` (CGLB's ``get_label_offset``);
* after learning task :math:`t` every task :math:`j \le t` is scored on its test nodes:
  :math:`A_{t,j}`, the accuracy matrix. With :math:`T` tasks,

.. math::
    \mathrm{AP} = \frac{1}{T}\sum_{j=1}^{T} A_{T,j}, \qquad
    \mathrm{AF} = \frac{1}{T-1}\sum_{j=1}^{T-1} \big(A_{T,j} - A_{j,j}\big)

(:func:`average_performance`, :func:`average_forgetting`; CGLB's sign: AF is negative
when tasks are forgotten). Methods: fine-tuning (``"finetune"``, CGLB's *bare* model) and
EWC (:class:`EWC`, Kirkpatrick et al. 2017, in CGLB's form: the Fisher information is
the squared gradient of the task's full-batch training loss at the end of the task, the
penalty :math:`\lambda \sum_{s<t} \sum_i F^{(s)}_i (\theta_i - \theta^{(s)}_i)^2`).

Each task is trained by :func:`gnnleaky.train.fit` for a fixed number of epochs (no early
stopping, the last weights kept, as CGLB does; unlike CGLB, Adam restarts at each task).
:func:`parameter_drift` measures how far the weights move while a task is learned.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import subgraph

from gnnleaky._validation import check_finite, check_graph, check_positive_int
from gnnleaky.nn import LeakyGNN
from gnnleaky.train.core import Bank, Evaluation, fit

__all__ = [
    "EWC",
    "METHODS",
    "SETTINGS",
    "ContinualResult",
    "ContinualStep",
    "GraphTask",
    "average_forgetting",
    "average_performance",
    "class_tasks",
    "parameter_drift",
    "split_tasks",
    "train_continual",
]

SETTINGS = ("class_il", "task_il")
METHODS = ("finetune", "ewc")


def class_tasks(num_classes: int, classes_per_task: int = 2) -> list[tuple[int, ...]]:
    """Consecutive classes grouped into tasks; a trailing task with fewer classes is
    dropped (CGLB).

    Example:
        >>> class_tasks(7), class_tasks(6, 3)
        ([(0, 1), (2, 3), (4, 5)], [(0, 1, 2), (3, 4, 5)])
    """
    check_positive_int("num_classes", num_classes, 2)
    check_positive_int("classes_per_task", classes_per_task, 1)
    tasks = [
        tuple(range(i, i + classes_per_task))
        for i in range(0, num_classes - classes_per_task + 1, classes_per_task)
    ]
    if len(tasks) < 2:
        raise ValueError(
            f"classes_per_task={classes_per_task} leaves fewer than 2 tasks of "
            f"{num_classes} classes"
        )
    return tasks


def average_performance(acc: Any) -> float:
    r"""AP: the mean of the last row of the accuracy matrix :math:`A` (``[T, T]``, row
    :math:`t` = after learning task :math:`t`).

    Example:
        >>> average_performance([[0.9, 0.0], [0.6, 0.8]])
        0.7
    """
    a = _matrix(acc)
    return float(np.mean(a[-1]))


def average_forgetting(acc: Any) -> float:
    r"""AF (CGLB): :math:`\frac{1}{T-1}\sum_{j<T} (A_{T,j} - A_{j,j})`; negative when
    earlier tasks lost accuracy.

    Example:
        >>> round(average_forgetting([[0.9, 0.0], [0.6, 0.8]]), 6)
        -0.3
    """
    a = _matrix(acc)
    t = a.shape[0]
    return float(np.mean([a[t - 1, j] - a[j, j] for j in range(t - 1)]))


def _matrix(acc: Any) -> np.ndarray:
    a = np.asarray(acc, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
        raise ValueError(f"acc must be a square [T, T] matrix with T >= 2, got shape {a.shape}")
    if not np.isfinite(np.tril(a)).all():
        raise ValueError("acc must be finite on and below the diagonal")
    return a


def parameter_drift(
    before: dict[str, Tensor], after: dict[str, Tensor], tol: float = 1e-2
) -> dict[str, float]:
    r"""How far the weights moved: :math:`\|\Delta\|_2`, :math:`\|\Delta\|_2 /
    \|\theta_{before}\|_2` and the share of scalar weights with :math:`|\Delta_i| > tol`,
    over all parameters (:math:`\Delta = \theta_{after} - \theta_{before}`).

    Example:
        >>> d = parameter_drift({"w": torch.zeros(4)}, {"w": torch.tensor([0., 0., 3., 4.])})
        >>> d["norm"], d["moved"]
        (5.0, 0.5)
    """
    tol = check_finite("tol", tol, minimum=0.0)
    if set(before) != set(after):
        raise ValueError("before and after must hold the same parameter names")
    sq = base = 0.0
    moved = total = 0
    for name, b in before.items():
        d = (after[name].double() - b.double()).reshape(-1)
        sq += float((d * d).sum())
        base += float((b.double() ** 2).sum())
        moved += int((d.abs() > tol).sum())
        total += d.numel()
    norm = math.sqrt(sq)
    return {
        "norm": norm,
        "relative": norm / math.sqrt(base) if base > 0 else math.nan,
        "moved": moved / total if total else math.nan,
    }


@dataclass
class GraphTask:
    """One task: the subgraph induced by its classes, labels in the sequence's numbering
    (``y``), and its train/val/test node indices (within the subgraph)."""

    classes: tuple[int, ...]
    offset: int  # first output of the task's classes
    x: Tensor
    edge_index: Tensor
    y: Tensor
    index: dict[str, Tensor] = field(default_factory=dict)


def split_tasks(
    data: Any,
    tasks: Sequence[Sequence[int]] | None = None,
    *,
    classes_per_task: int = 2,
    seed: int = 0,
    ratios: tuple[float, float] = (0.2, 0.2),
) -> list[GraphTask]:
    """The task sequence of ``data``: per task the induced subgraph and a per-class
    random split (validation and test ``ratios``, the rest trains), drawn from ``seed``.

    Example:
        >>> from gnnleaky.datasets import load
        >>> seq = split_tasks(load("csbm", num_nodes=120, num_classes=4, seed=0))
        >>> [t.classes for t in seq], [t.offset for t in seq]
        ([(0, 1), (2, 3)], [0, 2])
    """
    for key in ("x", "edge_index", "y"):
        if getattr(data, key, None) is None:
            raise ValueError(f"data must have '{key}' (a PyG Data)")
    check_graph(data.x, data.edge_index)
    y = data.y.view(-1).long()
    num_classes = int(getattr(data, "num_classes", 0) or int(y.max()) + 1)
    tasks = class_tasks(num_classes, classes_per_task) if tasks is None else tasks
    tasks = [tuple(int(c) for c in t) for t in tasks]
    seen = [c for t in tasks for c in t]
    if len(tasks) < 2 or any(not t for t in tasks) or len(set(seen)) != len(seen):
        raise ValueError(f"tasks must be at least 2 disjoint, non-empty class groups: {tasks}")
    if min(seen) < 0 or max(seen) >= num_classes:
        raise ValueError(f"tasks name classes outside [0, {num_classes}): {tasks}")
    val_r, test_r = (check_finite("ratios", r, minimum=0.0) for r in ratios)
    if val_r + test_r >= 1.0:
        raise ValueError(f"ratios (validation, test) must sum to < 1, got {ratios}")
    relabel = {c: i for i, c in enumerate(seen)}  # outputs in task order
    gen = torch.Generator().manual_seed(int(seed))
    x = data.x if data.x.is_floating_point() else data.x.float()
    out, offset = [], 0
    for t in tasks:
        nodes = torch.cat([(y == c).nonzero().view(-1) for c in t]).sort().values
        ei, _ = subgraph(nodes, data.edge_index, relabel_nodes=True, num_nodes=x.size(0))
        yt = torch.tensor([relabel[int(c)] for c in y[nodes]], dtype=torch.long)
        parts: dict[str, list[Tensor]] = {"train": [], "val": [], "test": []}
        for c in t:
            members = (yt == relabel[c]).nonzero().view(-1)
            if members.numel() < 3:
                raise ValueError(f"class {c} has {members.numel()} nodes; need >= 3 to split")
            perm = members[torch.randperm(members.numel(), generator=gen)]
            n_val = max(1, round(val_r * perm.numel()))
            n_test = max(1, round(test_r * perm.numel()))
            parts["val"].append(perm[:n_val])
            parts["test"].append(perm[n_val : n_val + n_test])
            parts["train"].append(perm[n_val + n_test :])
        index = {k: torch.cat(v).sort().values for k, v in parts.items()}
        out.append(GraphTask(t, offset, x[nodes], ei, yt, index))
        offset += len(t)
    return out


class EWC:
    r"""Elastic weight consolidation in CGLB's form.

    After task :math:`s`, :meth:`consolidate` stores the anchor :math:`\theta^{(s)}` and
    the Fisher diagonal :math:`F^{(s)} = (\nabla_\theta \mathcal{L}_s)^2` (the squared
    gradient of the task's full-batch training loss). The penalty while learning later
    tasks is

    .. math::
        \Omega(\theta) = \lambda \sum_s \sum_i F^{(s)}_i \big(\theta_i - \theta^{(s)}_i\big)^2.

    Args:
        strength (float): :math:`\lambda \ge 0` (CGLB's ``memory_strength``).

    Example:
        >>> m = torch.nn.Linear(2, 1)
        >>> ewc = EWC(1.0)
        >>> ewc.consolidate(m, m(torch.ones(3, 2)).pow(2).mean())
        >>> float(ewc.penalty(m))
        0.0
    """

    def __init__(self, strength: float) -> None:
        self.strength = check_finite("strength", strength, minimum=0.0)
        self.anchors: list[dict[str, Tensor]] = []
        self.fishers: list[dict[str, Tensor]] = []

    def consolidate(self, model: torch.nn.Module, loss: Tensor) -> None:
        """Store the anchor and the Fisher diagonal of ``loss`` at the current weights."""
        params = dict(model.named_parameters())
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        self.anchors.append({n: p.detach().clone() for n, p in params.items()})
        self.fishers.append(
            {
                n: (torch.zeros_like(p) if g is None else g.detach() ** 2)
                for (n, p), g in zip(params.items(), grads)
            }
        )

    def penalty(self, model: torch.nn.Module) -> Tensor:
        r""":math:`\Omega(\theta)` at the model's weights (zero before any task)."""
        params = dict(model.named_parameters())
        total = torch.zeros((), dtype=next(iter(params.values())).dtype)
        for anchor, fisher in zip(self.anchors, self.fishers):
            for n, p in params.items():
                total = total + (fisher[n] * (p - anchor[n]) ** 2).sum()
        return self.strength * total


class ContinualStep:
    """The :func:`gnnleaky.train.fit` task of learning task ``t`` of a sequence (one model).

    Loss: cross-entropy on the task's training nodes over the outputs of the setting
    (class-IL: all classes seen so far; task-IL: the task's own), plus the EWC penalty
    when ``ewc`` is given. Scores: the task's ``train``, ``val``, ``test`` accuracy, every
    ``eval_every`` evaluations (NaN in between: a sequence keeps its last weights, so the
    scores along the way only fill the curve).
    """

    def __init__(
        self,
        seq: Sequence[GraphTask],
        t: int,
        setting: str,
        ewc: EWC | None = None,
        eval_every: int = 1,
    ) -> None:
        if setting not in SETTINGS:
            raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
        self.seq, self.t, self.setting, self.ewc = seq, t, setting, ewc
        self.eval_every = check_positive_int("eval_every", eval_every)
        self.calls = 0

    def _model(self, bank: Bank) -> torch.nn.Module:
        if bank.stacked:
            raise ValueError("ContinualStep trains one model (no stacked bank)")
        return bank.module

    def losses(self, bank: Bank) -> Tensor:
        model = self._model(bank)
        task = self.seq[self.t]
        logits, y = _logits(model, self.seq, self.t, self.t, self.setting)
        idx = task.index["train"]
        loss = F.cross_entropy(logits[idx], y[idx])
        if self.ewc is not None and self.ewc.anchors:
            loss = loss + self.ewc.penalty(model)
        return loss.view(1)

    def evaluate(self, bank: Bank) -> Evaluation:
        model = self._model(bank)
        self.calls += 1
        if self.calls % self.eval_every:
            return Evaluation({k: [math.nan] for k in ("train", "val", "test")}, [True])
        logits, y = _logits(model, self.seq, self.t, self.t, self.setting)
        pred = logits.argmax(-1)
        scores = {
            k: [float((pred[i] == y[i]).float().mean())] for k, i in self.seq[self.t].index.items()
        }
        return Evaluation(scores, [bool(torch.isfinite(logits).all())])


def _logits(
    model: torch.nn.Module, seq: Sequence[GraphTask], j: int, t: int, setting: str
) -> tuple[Tensor, Tensor]:
    """Task ``j``'s logits over the outputs scored after learning task ``t``, and its
    labels in that numbering."""
    task = seq[j]
    out = model(task.x, task.edge_index)
    if setting == "class_il":
        hi = seq[t].offset + len(seq[t].classes)
        return out[:, :hi], task.y
    lo = task.offset
    return out[:, lo : lo + len(task.classes)], task.y - lo


@torch.no_grad()
def _accuracy(model: torch.nn.Module, seq: Sequence[GraphTask], j: int, t: int, setting: str):
    model.eval()
    logits, y = _logits(model, seq, j, t, setting)
    idx = seq[j].index["test"]
    return float((logits[idx].argmax(-1) == y[idx]).float().mean())


@dataclass
class ContinualResult:
    """A task sequence learned in order: the accuracy matrix ``acc`` (``[T, T]``, row
    ``t`` = after task ``t``, NaN above the diagonal), AP, AF, and per task the drift of
    the weights while it was learned (:func:`parameter_drift`: ``norm``, ``relative``,
    ``moved``)."""

    status: str
    acc: list[list[float]]
    ap: float
    af: float
    drift: list[dict[str, float]]
    tasks: list[tuple[int, ...]]


def train_continual(
    data: Any,
    *,
    setting: str = "class_il",
    method: str = "finetune",
    act: str = "relu",
    act_kwargs: dict[str, Any] | None = None,
    num_layers: int = 2,
    hidden_channels: int = 256,
    dropout: float = 0.0,
    conv: str = "gcn",
    classes_per_task: int = 2,
    epochs: int = 200,
    lr: float = 0.005,
    weight_decay: float = 5e-4,
    ewc_strength: float = 10_000.0,
    tol: float = 1e-2,
    sparse: bool | None = None,
    seed: int = 0,
) -> ContinualResult:
    r"""Learn the tasks of ``data`` in sequence and score every earlier task after each.

    Defaults follow CGLB's GCN (2 layers, hidden 256, lr 0.005, weight decay 5e-4, 200
    epochs per task, EWC strength 10,000). The model is initialised and the split drawn
    under ``seed``. ``sparse``: hold each task's features as a sparse CSR matrix (the
    same products, a fraction of the time for bag-of-words features); ``None`` does so
    when fewer than 10% of the entries are non-zero.

    Example:
        >>> from gnnleaky.datasets import load
        >>> data = load("csbm", num_nodes=120, num_classes=4, seed=0)
        >>> r = train_continual(data, hidden_channels=8, epochs=3)
        >>> r.status, len(r.acc), len(r.drift), r.af <= 1.0
        ('ok', 2, 2, True)
    """
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_positive_int("epochs", epochs)
    ewc = EWC(ewc_strength) if method == "ewc" else None
    seq = split_tasks(data, classes_per_task=classes_per_task, seed=seed)
    if sparse is None:
        sparse = float((data.x != 0).float().mean()) < 0.1
    if sparse:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            for task in seq:
                task.x = task.x.to_sparse_csr()
    n_out = seq[-1].offset + len(seq[-1].classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = LeakyGNN(
            seq[0].x.size(1),
            hidden_channels,
            num_layers,
            n_out,
            act=act,
            act_kwargs=act_kwargs or {},
            dropout=dropout,
            conv=conv,
        )
        n_tasks = len(seq)
        acc = np.full((n_tasks, n_tasks), np.nan)
        drift, status = [], "ok"
        for t in range(n_tasks):
            before = {n: p.detach().clone() for n, p in model.named_parameters()}
            step = ContinualStep(seq, t, setting, ewc, eval_every=epochs)
            [rec] = fit(
                model,
                step,
                epochs=epochs,
                lr=lr,
                weight_decay=weight_decay,
                restore_best=False,
            )
            if rec.status != "ok":
                status = f"failed at task {t}: {rec.reason}"
                break
            after = {n: p.detach().clone() for n, p in model.named_parameters()}
            drift.append(parameter_drift(before, after, tol))
            for j in range(t + 1):
                acc[t, j] = _accuracy(model, seq, j, t, setting)
            if ewc is not None and t < n_tasks - 1:
                model.train()
                logits, y = _logits(model, seq, t, t, setting)
                idx = seq[t].index["train"]
                ewc.consolidate(model, F.cross_entropy(logits[idx], y[idx]))
    ok = status == "ok"
    return ContinualResult(
        status=status,
        acc=acc.tolist(),
        ap=average_performance(acc) if ok else math.nan,
        af=average_forgetting(acc) if ok else math.nan,
        drift=drift,
        tasks=[t.classes for t in seq],
    )
