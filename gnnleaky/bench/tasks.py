r"""The tasks a sweep can run: a registry of task runners, resolved by the ``task:`` key.

A sweep YAML names its task (``task: link_prediction``, default ``node_classification``)
and the task's parameters (``task_params: {val_ratio: 0.05}``). Both are checked against
:data:`TASKS` before any run starts (:func:`check_task`): an unknown task, an unknown
parameter, a value of the wrong type or out of range is a
:class:`~gnnleaky.bench.config.ConfigError` naming the key and what is allowed.

Every run of a sweep, whatever its task, is one :class:`~gnnleaky.bench.train.RunResult`
in the results store: ``train_score``/``val_score``/``test_score`` are the task's main
metric (named by :attr:`TaskRunner.metric`), the curve holds one row per epoch, the
per-layer records go to the store's ``layers`` table and every other number of the run
(e.g. AP, a gradient share) to ``RunResult.scalars`` (the store's ``scalars`` table).
So resuming a killed sweep, the store and ``gnnleaky report`` work for every task alike.

Adding a task runner
--------------------
1. Write the task itself in ``gnnleaky/tasks/<task>.py``: a loss and an evaluation on top of
   :func:`gnnleaky.train.fit` (the :class:`gnnleaky.train.Task` protocol), with no
   reference to the sweep.
2. Write its runner in ``gnnleaky/bench/runners/<task>.py`` (the sweep's side: it knows
   :class:`~gnnleaky.bench.config.RunConfig`), a function
   ``run(data, cfg, *, cache=None) -> RunResult``: build the model with
   :func:`gnnleaky.bench.train.build_model` (seeded as the sweep builds every model),
   train it with :func:`gnnleaky.train.fit` under ``torch.random.fork_rng`` seeded with
   ``cfg.seed``, read the task's parameters with :func:`task_params` (defaults filled in)
   and return :func:`fit_result` (or :func:`result`) with the scores and scalars.
3. Add one :class:`TaskRunner` entry to :data:`TASKS` below: its parameters with their
   defaults (a parameter's type is its default's type), a ``check`` that raises
   ``ValueError`` for values out of range, the run function as ``"module:function"``
   (imported when the first run starts), the metric of its scores and the claims the
   report draws (``figures``: scalar name -> axis label), and in ``fixed`` every sweep
   setting the runner does not read with the value its runs have (a sweep that sets
   another is refused by :func:`check_fixed`).
4. A preset ``gnnleaky/bench/presets/<task>.yaml`` and tests of known answers.

A task that is not in :data:`TASKS` cannot be named in a sweep.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TASKS",
    "TaskRunner",
    "check_fixed",
    "check_task",
    "fit_result",
    "result",
    "runner",
    "task_params",
]

DEFAULT_TASK = "node_classification"


@dataclass(frozen=True)
class TaskRunner:
    """One task of the sweep.

    Args:
        name (str): The ``task:`` value.
        run (str): ``"module:function"`` of ``run(data, cfg, *, cache=None) -> RunResult``.
        metric (str): What ``train/val/test_score`` of its runs hold.
        params (dict): Parameter -> default; a value must have the default's type
            (an int is accepted for a float and stored as a float).
        check (callable, optional): ``check(params)`` raises ``ValueError`` naming a
            parameter whose value is out of range (``params`` has the defaults filled in).
        figures (dict): Scalar name -> axis label: one report figure per claim (the
            scalar's mean ± std over seeds versus depth, one line per activation).
        description (str): One line.
        check_datasets (callable, optional): ``check_datasets(names, params)`` raises
            ``ValueError`` when the sweep's dataset names do not suit the parameters
            (e.g. a domain pair whose feature widths or classes differ).
        fixed (dict): Sweep setting -> the one value this task's runs have, for the
            settings its runner does not read (e.g. ``norms`` where the task builds its own
            model): a sweep that sets another value is refused rather than run without it
            (:func:`check_fixed`).
    """

    name: str
    run: str
    metric: str
    params: Mapping[str, Any] = field(default_factory=dict)
    check: Callable[[dict[str, Any]], None] | None = None
    figures: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    check_datasets: Callable[[list[str], dict[str, Any]], None] | None = None
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def runner(self) -> Callable[..., Any]:
        """The run function (imported now)."""
        module, _, name = self.run.partition(":")
        return getattr(importlib.import_module(module), name)


def _in_range(params: dict[str, Any], name: str, lo: float, hi: float, *, open_hi: bool) -> None:
    v = params[name]
    if not (lo <= v < hi if open_hi else lo <= v <= hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}{')' if open_hi else ']'}, got {v!r}")


def _positive(params: dict[str, Any], *names: str) -> None:
    for name in names:
        if not params[name] > 0:
            raise ValueError(f"{name} must be > 0, got {params[name]!r}")


def _check_link_prediction(p: dict[str, Any]) -> None:
    _in_range(p, "val_ratio", 0.0, 1.0, open_hi=True)
    _in_range(p, "test_ratio", 0.0, 1.0, open_hi=True)
    if p["val_ratio"] + p["test_ratio"] >= 1.0:
        raise ValueError(
            f"val_ratio + test_ratio must be < 1 (edges are left for training), got "
            f"{p['val_ratio']} + {p['test_ratio']}"
        )
    if p["test_ratio"] <= 0:
        raise ValueError(f"test_ratio must be > 0, got {p['test_ratio']!r}")
    _positive(p, "out_channels")


def _check_contrastive(p: dict[str, Any]) -> None:
    for name in ("drop_edge_1", "drop_edge_2", "mask_feature_1", "mask_feature_2"):
        _in_range(p, name, 0.0, 1.0, open_hi=True)
    _positive(p, "tau", "out_channels", "proj_channels", "hard_negatives")
    _in_range(p, "eval_train_ratio", 0.0, 1.0, open_hi=True)
    if p["eval_train_ratio"] <= 0:
        raise ValueError(f"eval_train_ratio must be > 0, got {p['eval_train_ratio']!r}")


def _check_domain_adversarial(p: dict[str, Any]) -> None:
    from gnnleaky.tasks.domain_adversarial import TARGET_RULES

    if p["target_homophily"] != -1.0:
        _in_range(p, "target_homophily", 0.0, 1.0, open_hi=False)
    _positive(p, "share_every")
    if p["max_coefficient"] < 0:
        raise ValueError(f"max_coefficient must be >= 0, got {p['max_coefficient']!r}")
    target = p["target"]
    if target and target not in TARGET_RULES:
        from gnnleaky.datasets import info

        info(target)  # an unknown name raises, naming the known ones


def _pairs_domain_adversarial(names: list[str], p: dict[str, Any]) -> None:
    from gnnleaky.tasks.domain_adversarial import target_name

    for name in names:
        target_name(name, p["target"])  # raises for a pair that does not match


def _check_continual(p: dict[str, Any]) -> None:
    from gnnleaky.tasks.continual import METHODS, SETTINGS

    if p["setting"] not in SETTINGS:
        raise ValueError(f"setting must be one of {list(SETTINGS)}, got {p['setting']!r}")
    if p["method"] not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {p['method']!r}")
    _positive(p, "classes_per_task")
    for name in ("ewc_strength", "tol"):
        if p[name] < 0:
            raise ValueError(f"{name} must be >= 0, got {p[name]!r}")


#: The tasks a sweep can run: ``task:`` value -> :class:`TaskRunner`.
#: Settings of the run's model and optimizer that a runner building its own model (with the
#: run's depth, width, activation, dropout and conv only) does not read.
_NO_GROUPS: dict[str, Any] = {"weight_decay_groups": None}
_OWN_MODEL: dict[str, Any] = {
    "norms": ("none",),
    "residual": (False,),
    "jk": ("none",),
    "dropedge": (0.0,),
    "init": "pyg",
    "model": None,
    "metrics": (),
    **_NO_GROUPS,
}

TASKS: dict[str, TaskRunner] = {
    "node_classification": TaskRunner(
        name="node_classification",
        run="gnnleaky.bench.train:train_run",
        metric="dataset",  # the dataset's official metric
        description="supervised node classification (the default)",
    ),
    "link_prediction": TaskRunner(
        name="link_prediction",
        run="gnnleaky.bench.runners.link_prediction:run",
        metric="roc_auc",
        params={"val_ratio": 0.05, "test_ratio": 0.1, "out_channels": 16},
        check=_check_link_prediction,
        # its own edge split, drawn under the seed: the node splits are not read
        fixed={
            "selection": "val",
            "dropedge": (0.0,),
            "splits": (0,),
            "train_per_class": (None,),
            **_NO_GROUPS,
        },
        figures={
            "test_auc": "test ROC-AUC",
            "test_ap": "test average precision",
        },
        description="graph autoencoder (GAE): inner-product decoder, RandomLinkSplit",
    ),
    "contrastive": TaskRunner(
        name="contrastive",
        run="gnnleaky.bench.runners.contrastive:run",
        metric="accuracy",
        params={
            "tau": 0.4,
            "drop_edge_1": 0.2,
            "drop_edge_2": 0.4,
            "mask_feature_1": 0.3,
            "mask_feature_2": 0.4,
            "out_channels": 128,
            "proj_channels": 128,
            "hard_negatives": 10,
            "eval_train_ratio": 0.1,
        },
        check=_check_contrastive,
        # all epochs, the last kept (as GRACE); views drop edges by drop_edge_1/2
        fixed={"patience": None, "selection": "val", "dropedge": (0.0,), **_NO_GROUPS},
        figures={
            "hard_grad_share_first": "hard-negative gradient share, layer 1",
            "acc_random": "probe accuracy, random 10%/90%",
            "acc_public": "probe accuracy, public split",
            "negative_preact_first": "layer-1 pre-activations below zero",
        },
        description="GRACE-style contrastive learning, linear evaluation",
    ),
    "domain_adversarial": TaskRunner(
        name="domain_adversarial",
        run="gnnleaky.bench.runners.domain_adversarial:run",
        metric="accuracy",
        params={
            "target": "next",
            "shift": 0.0,
            "target_homophily": -1.0,
            "max_coefficient": 1.0,
            "share_every": 10,
        },
        check=_check_domain_adversarial,
        fixed={**_OWN_MODEL, "selection": "val", "train_per_class": (None,)},
        check_datasets=_pairs_domain_adversarial,
        figures={
            "target_dann": "target accuracy, DANN",
            "target_source_only": "target accuracy, source-only",
            "gain": "target accuracy gain of DANN over source-only",
            "domain_acc": "discriminator accuracy (balanced), DANN",
            "share_first": "share of the reversed gradient past the first activation, DANN",
        },
        description="DANN: source graph labelled, target graph not, gradient reversal",
    ),
    "continual": TaskRunner(
        name="continual",
        run="gnnleaky.bench.runners.continual:run",
        metric="accuracy",
        params={
            "setting": "task_il",
            "method": "finetune",
            "classes_per_task": 2,
            "ewc_strength": 10_000.0,
            "tol": 0.01,
        },
        check=_check_continual,
        # its own split of the classes into tasks, drawn under the seed; every epoch per task
        fixed={
            **_OWN_MODEL,
            "patience": None,
            "selection": "val",
            "splits": (0,),
            "train_per_class": (None,),
        },
        figures={
            "ap": "average performance AP (CGLB)",
            "af": "average forgetting AF (CGLB, negative = forgotten)",
            "drift_norm": "weight drift ||delta theta|| per later task",
            "moved": "share of weights moved > tol per later task",
        },
        description="class- or task-incremental sequence of two-class tasks (CGLB metrics)",
    ),
}


def runner(task: str) -> TaskRunner:
    """The :class:`TaskRunner` registered under ``task``."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    return TASKS[task]


def _type_ok(value: Any, default: Any) -> bool:
    want = type(default)
    if want is bool:
        return isinstance(value, bool)
    if want in (int, float):
        return (
            not isinstance(value, bool)
            and isinstance(value, int if want is int else (int, float))
            and math.isfinite(float(value))
        )
    return isinstance(value, want)


_KIND = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false"}


def task_params(task: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The task's parameters with the defaults filled in, checked: raises ``ValueError``
    naming an unknown task, an unknown parameter, a wrong type or a value out of range.

    Example:
        >>> task_params("link_prediction", {"val_ratio": 0.1})["val_ratio"]
        0.1
        >>> try:
        ...     task_params("link_prediction", {"tau": 0.5})
        ... except ValueError as err:
        ...     print(err)
        task_params.tau: unknown parameter of task 'link_prediction'; allowed: [...]
    """
    spec = runner(task)
    params = dict(params or {})
    unknown = sorted(set(params) - set(spec.params), key=repr)
    if unknown:
        allowed = sorted(spec.params) or "none (this task takes no parameters)"
        raise ValueError(
            f"task_params.{unknown[0]}: unknown parameter of task {task!r}; allowed: {allowed}"
        )
    out = dict(spec.params)
    for k, v in params.items():
        default = spec.params[k]
        if not _type_ok(v, default):
            kind = _KIND.get(type(default), type(default).__name__)
            raise ValueError(f"task_params.{k} of task {task!r} must be {kind}, got {v!r}")
        out[k] = float(v) if isinstance(default, float) else v
    if spec.check is not None:
        try:
            spec.check(out)
        except ValueError as err:
            raise ValueError(f"task_params of task {task!r}: {err}") from None
    return out


def check_fixed(task: str, settings: Mapping[str, Any], where: str = "") -> None:
    """Raises ``ValueError`` when ``settings`` (sweep setting -> value; ``where`` prefixes
    the names, e.g. a dataset entry's ``settings``) give a setting that ``task``'s runner
    does not read a value other than the one its runs have (:attr:`TaskRunner.fixed`).

    Example:
        >>> check_fixed("link_prediction", {"dropedge": (0.0,), "norms": ("batch_norm",)})
        >>> try:
        ...     check_fixed("continual", {"norms": ("batch_norm",)})
        ... except ValueError as err:
        ...     print(err)
        norms: task 'continual' does not read it (its runs have ('none',)); got ('batch_norm',)
    """
    for name, value in runner(task).fixed.items():
        if name in settings and settings[name] != value:
            raise ValueError(
                f"{where}{name}: task {task!r} does not read it (its runs have {value!r}); "
                f"got {settings[name]!r}"
            )


def check_task(task: Any, params: Any) -> dict[str, Any]:
    """:func:`task_params` for a sweep config's ``task`` and ``task_params`` values, which
    may be of any type; returns the given parameters normalized (floats as floats)."""
    if not isinstance(task, str):
        raise ValueError(f"task must be a string, one of {sorted(TASKS)}; got {task!r}")
    if not isinstance(params, Mapping):
        raise ValueError(f"task_params must be a mapping of parameter -> value, got {params!r}")
    full = task_params(task, params)
    return {k: full[k] for k in params}


def result(cfg: Any, **fields: Any) -> Any:
    """A :class:`~gnnleaky.bench.train.RunResult` of ``cfg`` with the task's metric;
    ``fields`` as in ``RunResult`` (missing scores are NaN)."""
    from gnnleaky.bench.train import RunResult

    nan = math.nan
    base: dict[str, Any] = {
        "status": "ok",
        "reason": None,
        "metric": runner(cfg.task).metric,
        "best_epoch": 0,
        "epochs_run": 0,
        "train_score": nan,
        "val_score": nan,
        "test_score": nan,
        "wall_time": 0.0,
        "group_size": 1,
    }
    base.update(fields)
    return RunResult(config=cfg, key=cfg.key, **base)


def fit_result(
    cfg: Any,
    record: Any,
    model: Any,
    *,
    wall_time: float,
    layers: list[dict[str, Any]] | None = None,
    scalars: Mapping[str, float] | None = None,
    scores: Mapping[str, float] | None = None,
) -> Any:
    """The :class:`~gnnleaky.bench.train.RunResult` of a run trained by
    :func:`gnnleaky.train.fit`: its :class:`~gnnleaky.train.FitRecord` ``record`` (status,
    best epoch, curve; scores ``train``/``val``/``test`` unless ``scores`` gives them), the
    model's PReLU slopes, per-layer ``layers`` and the task's ``scalars``."""
    from gnnleaky.nn import slopes

    nan = math.nan
    got = {**record.scores, **(scores or {})}
    ok = record.best_epoch > 0
    return result(
        cfg,
        status=record.status,
        reason=record.reason,
        best_epoch=record.best_epoch,
        epochs_run=record.epochs_run,
        train_score=got.get("train", nan),
        val_score=got.get("val", nan),
        test_score=got.get("test", nan),
        wall_time=wall_time,
        slopes={n: [float(v) for v in s.detach().reshape(-1)] for n, s in slopes(model).items()}
        if ok
        else {},
        layers=list(layers or []),
        curve=[
            {
                "epoch": c["epoch"],
                "train_loss": c["train_loss"],
                "train_score": c.get("train", nan),
                "val_score": c.get("val", nan),
                "test_score": c.get("test", nan),
            }
            for c in record.curve
        ],
        scalars={k: float(v) for k, v in (scalars or {}).items()},
    )
