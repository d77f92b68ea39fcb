r"""Training of one run or one stacked group of a sweep, on the training core.

A run whose ``task`` is not node classification goes to its task's runner
(:mod:`gnnleaky.bench.tasks`); what follows describes node classification.

:func:`train_run` trains one model; :func:`train_group` trains runs that share
``RunConfig.group_key`` together as one :class:`~gnnleaky.engine.StackedGNN` (or one by
one for models that cannot be stacked), both through :func:`gnnleaky.train.fit` with the
:class:`~gnnleaky.tasks.NodeClassification` task. Stacking is an execution detail: each
model is initialised under its own seed exactly as alone, draws its own dropout masks
from its own generator, is updated by Adam only from its own loss, stops on its own
patience and fails on its own divergence, so the stored :class:`RunResult` is the
one-by-one result up to float rounding.

Protocol (per model, see :func:`gnnleaky.train.fit`): full-batch Adam with ``lr`` and
``weight_decay`` (PReLU slopes exempt; ``weight_decay_groups`` sets it by parameter name),
cross-entropy on the training nodes (on the graph after DropEdge with ``dropedge``); after
every optimizer step the model is evaluated in eval mode and the epoch that ``selection``
picks is kept (default: the best validation score, ties to the earliest; or the lowest
validation loss, see :data:`~gnnleaky.bench.config.SELECTIONS`); training stops after
``patience`` epochs without improvement. A non-finite loss or non-finite outputs mark the
run ``failed`` with a reason.
Per-layer metrics (:func:`gnnleaky.spectral.layer_records`) are recorded before training
(``when="init"``) and with the best weights (``when="best"``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from gnnleaky.bench.config import SELECTIONS, ConfigError, RunConfig, resolve_model
from gnnleaky.bench.tasks import DEFAULT_TASK, runner
from gnnleaky.engine import STACKABLE_CONVS, SeededDropout, StackedGNN, model_threads
from gnnleaky.engine.stacked import act_spec, check_stackable
from gnnleaky.nn import ActivationSpec, LeakyGNN, slopes
from gnnleaky.nn.activation import is_slope_parameter
from gnnleaky.tasks import NodeClassification
from gnnleaky.train import FitRecord, fit

__all__ = [
    "GROUP_MEMORY_BUDGET",
    "RunResult",
    "build_model",
    "default_max_group",
    "stack_reason",
    "stage_records",
    "train_group",
    "train_run",
]

log = logging.getLogger(__name__)

#: Bytes of activations a stacked group may keep for its backward pass (sets the default
#: ``max_group``).
GROUP_MEMORY_BUDGET: int = 2 * 1024**3


@dataclass
class RunResult:
    """The outcome of one run, as stored by :class:`~gnnleaky.bench.store.ResultsStore`.

    Scores are taken at the best validation epoch. ``layers`` holds records
    ``{layer, stage ('pre'|'post'), metric, when ('init'|'best'), value}`` and ``curve``
    one record ``{epoch, train_loss, train_score, val_score, test_score}`` per epoch run;
    ``scalars`` holds a task's other numbers by name (e.g. a link predictor's AP; see
    :mod:`gnnleaky.bench.tasks`).
    A failed run keeps its curve up to the failure and, if it had one, its best epoch so
    far (else ``best_epoch=0`` and NaN scores).
    """

    config: RunConfig
    key: str
    status: str
    reason: str | None
    metric: str
    best_epoch: int
    epochs_run: int
    train_score: float
    val_score: float
    test_score: float
    wall_time: float
    group_size: int
    slopes: dict[str, list[float]] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    curve: list[dict[str, Any]] = field(default_factory=list)
    scalars: dict[str, float] = field(default_factory=dict)
    #: Where the time of the run's group went (seconds: ``metrics``, ``compile``,
    #: ``train``, and ``data`` where the sweep loaded a graph for it), on the first
    #: result of a group only, so that summing over results counts each group once.
    timings: dict[str, float] = field(default_factory=dict)


def _metric(cfg: RunConfig, data: Any) -> str:
    from gnnleaky.datasets import info

    try:
        return info(cfg.dataset).metric
    except ValueError:
        return getattr(data, "metric", None) or "accuracy"


def _dropout_generator(seed: int) -> torch.Generator:
    """A per-run generator for dropout masks, independent of the initialisation stream."""
    digest = hashlib.sha256(f"gnnleaky/dropout/{int(seed)}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


@torch.no_grad()
def _fan_out_uniform_(model: torch.nn.Module) -> None:
    r"""Kipf & Welling's ``GraphConvolution`` initialisation on every graph convolution of
    ``model.convs``: weight and bias :math:`\mathcal U(-1/\sqrt{F_{out}}, 1/\sqrt{F_{out}})`
    (GCNConv's ``lin.weight`` is ``[out, in]``; GCN2Conv's ``weight1`` is square)."""
    for conv in getattr(model, "convs", ()):
        width = getattr(conv, "out_channels", None) or getattr(conv, "channels", None)
        if not width:
            raise ValueError(f"init='fan_out_uniform': {type(conv).__name__} has no width")
        bound = 1.0 / math.sqrt(width)
        for p in conv.parameters():
            p.uniform_(-bound, bound)


def build_model(
    cfg: RunConfig,
    in_channels: int,
    out_channels: int,
    *,
    model_fn: Callable[..., Any] | None = None,
    **extra: Any,
) -> torch.nn.Module:
    """The run's model as the sweep builds it: initialised under ``cfg.seed`` (the
    caller's RNG state untouched), with its own dropout generator.

    With ``cfg.model`` (or ``model_fn``) set, the model is
    ``factory(cfg, in_channels, out_channels)``, built under the same seed; it must return
    a ``torch.nn.Module``.

    Example:
        >>> model = build_model(RunConfig(num_layers=3, hidden_channels=8), 4, 2)
        >>> type(model).__name__, model.num_layers
        ('GCN', 3)
    """
    factory = model_fn
    if factory is None and cfg.model is not None:
        factory = resolve_model(cfg.model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.seed))
        if factory is not None:
            model = factory(cfg, in_channels, out_channels)
            if not isinstance(model, torch.nn.Module):
                raise ConfigError(
                    f"model {cfg.model or factory!r} returned {type(model).__name__}, "
                    "not a torch.nn.Module"
                )
            return model
        model = LeakyGNN(**cfg.model_kwargs(in_channels, out_channels), **extra)
        if cfg.init == "fan_out_uniform":
            _fan_out_uniform_(model)
    model.dropout = SeededDropout(cfg.dropout, [_dropout_generator(cfg.seed)])
    return model


def stack_reason(cfg: RunConfig) -> str | None:
    """Why the runs of ``cfg``'s group are trained one by one (``None``: they are stacked
    on the engine, :class:`~gnnleaky.engine.StackedGNN`).

    Example:
        >>> stack_reason(RunConfig()) is None
        True
        >>> stack_reason(RunConfig(norm="batch_norm"))
        'stacking does not support norm layers (norm=None only)'
    """
    if cfg.model is not None:
        return "a model factory's models are trained one by one"
    if cfg.conv not in STACKABLE_CONVS:
        return f"conv {cfg.conv!r} is not stackable (stackable: {list(STACKABLE_CONVS)})"
    if cfg.dropedge > 0:
        return "DropEdge draws one graph per model and epoch"
    if cfg.weight_decay_groups:
        return "weight decay by parameter name needs the model's own parameters"
    kwargs = cfg.model_kwargs(4, 2)
    kwargs["hidden_channels"] = 4
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's RNG state untouched
            check_stackable(LeakyGNN(**kwargs))
    except ValueError as err:
        return str(err)
    return None


def _build(
    cfg: RunConfig, task: NodeClassification, model_fn: Any = None, **extra: Any
) -> torch.nn.Module:
    return build_model(cfg, task.x.size(1), task.num_classes, model_fn=model_fn, **extra)


def _param_groups(cfg: RunConfig) -> Callable[[torch.nn.Module], list[dict[str, Any]]] | None:
    """The optimizer's groups of a run with ``weight_decay_groups``: a parameter whose name
    starts with a group's prefix (``convs`` matches ``convs.3.weight1``) gets that group's
    decay, the others ``weight_decay``; PReLU slopes none."""
    if not cfg.weight_decay_groups:
        return None
    prefixes = dict(cfg.weight_decay_groups)

    def groups(module: torch.nn.Module) -> list[dict[str, Any]]:
        is_slope = is_slope_parameter(module)
        by_decay: dict[float, list[torch.nn.Parameter]] = {}
        slope = []
        for name, p in module.named_parameters():
            if is_slope(p):
                slope.append(p)
                continue
            decay = cfg.weight_decay
            for prefix, value in prefixes.items():
                if name == prefix or name.startswith(prefix + "."):
                    decay = value
                    break
            by_decay.setdefault(decay, []).append(p)
        out = [{"params": ps, "weight_decay": d} for d, ps in by_decay.items()]
        if slope:
            out.append({"params": slope, "weight_decay": 0.0})
        return out

    return groups


def default_max_group(cfg: RunConfig, num_nodes: int) -> int:
    """Largest K whose activations fit :data:`GROUP_MEMORY_BUDGET` (about four float32
    ``[N, C]`` tensors per layer and model stay alive for the backward pass)."""
    per_model = 4 * num_nodes * max(cfg.hidden_channels, 1) * cfg.num_layers * 4
    return max(1, GROUP_MEMORY_BUDGET // max(per_model, 1))


def stage_records(
    module: torch.nn.Module,
    x: torch.Tensor,
    edge_index: torch.Tensor,
    cfg: RunConfig,
    when: str,
    cache: Any,
) -> list[list[dict[str, Any]]]:
    """The per-layer records a run stores at one stage of training (``when``: ``"init"`` or
    ``"best"``): :func:`gnnleaky.spectral.layer_records` of ``cfg.metrics`` on the
    symmetrized graph, each record tagged with ``when``; one list per model of ``module``
    (one, or a stack's K), empty lists when the run records no metrics.

    Example:
        >>> from gnnleaky.nn import GCN
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> cfg = RunConfig(num_layers=2, metrics=("norm",))
        >>> model, x = GCN(4, 8, 2, 2), torch.randn(3, 4)
        >>> [recs] = stage_records(model, x, edge_index, cfg, "init", None)
        >>> len(recs), {r["when"] for r in recs}
        (4, {'init'})
    """
    from gnnleaky.spectral import layer_records

    k = module.num_models if isinstance(module, StackedGNN) else 1
    if not cfg.metrics:
        return [[] for _ in range(k)]
    recs = layer_records(module, x, edge_index, list(cfg.metrics), symmetrize=True, cache=cache)
    return [[{**r, "when": when} for r in model_recs] for model_recs in recs]


def _results(
    module: torch.nn.Module,
    cfgs: Sequence[RunConfig],
    records: list[FitRecord],
    task: NodeClassification,
    init: list[list[dict[str, Any]]],
    wall: float,
    cache: Any,
) -> list[RunResult]:
    stacked = isinstance(module, StackedGNN)
    has_best = [r.best_epoch > 0 for r in records]
    best = (
        stage_records(module, task.x, task.edge_index, cfgs[0], "best", cache)
        if any(has_best)
        else None
    )
    out = []
    for i, (cfg, rec) in enumerate(zip(cfgs, records)):
        per_model = module.model_slopes(i) if stacked else slopes(module)
        slope_dict = (
            {n: [float(v) for v in s.detach().reshape(-1).tolist()] for n, s in per_model.items()}
            if has_best[i]
            else {}
        )
        nan = math.nan
        out.append(
            RunResult(
                config=cfg,
                key=cfg.key,
                status=rec.status,
                reason=rec.reason,
                metric=task.metric,
                best_epoch=rec.best_epoch,
                epochs_run=rec.epochs_run,
                train_score=rec.scores.get("train", nan),
                val_score=rec.scores.get("val", nan),
                test_score=rec.scores.get("test", nan),
                wall_time=wall,
                group_size=len(cfgs) if stacked else 1,
                slopes=slope_dict,
                layers=init[i] + (best[i] if best is not None and has_best[i] else []),
                curve=[
                    {
                        "epoch": c["epoch"],
                        "train_loss": c["train_loss"],
                        "train_score": c["train"],
                        "val_score": c["val"],
                        "test_score": c["test"],
                    }
                    for c in rec.curve
                ],
            )
        )
        if rec.status != "ok":
            log.warning("run %s failed: %s", cfg.key, rec.reason)
    return out


def _fit(
    module: torch.nn.Module, cfgs: Sequence[RunConfig], task: NodeClassification, cache: Any
) -> list[RunResult]:
    from gnnleaky.engine.fast.kernels import compile_timer

    cfg0 = cfgs[0]
    start = time.perf_counter()
    init = stage_records(module, task.x, task.edge_index, cfg0, "init", cache)
    fit_start = time.perf_counter()
    with torch.random.fork_rng(devices=[]), compile_timer() as compiled:
        torch.manual_seed(int(cfg0.seed))
        selection, mode = SELECTIONS[cfg0.selection]
        records = fit(
            module,
            task,
            epochs=cfg0.epochs,
            patience=cfg0.patience,
            lr=cfg0.lr,
            weight_decay=cfg0.weight_decay,
            param_groups=_param_groups(cfg0),
            selection=selection,
            mode=mode,
        )
    fit_end = time.perf_counter()
    wall = (fit_end - start) / len(cfgs)
    out = _results(module, cfgs, records, task, init, wall, cache)
    out[0].timings = {
        "metrics": (fit_start - start) + (time.perf_counter() - fit_end),
        "compile": compiled["seconds"],
        "train": fit_end - fit_start - compiled["seconds"],
    }
    return out


def _task(data: Any, cfg: RunConfig) -> NodeClassification:
    if cfg.train_per_class is not None:  # the label-rate axis: a random split, seed `split`
        from gnnleaky.datasets import per_class_split

        split = per_class_split(data, cfg.train_per_class, seed=cfg.split)
        return NodeClassification(split, split=0, metric=_metric(cfg, data), drop_edge=cfg.dropedge)
    return NodeClassification(
        data, split=cfg.split, metric=_metric(cfg, data), drop_edge=cfg.dropedge
    )


# -- public API -------------------------------------------------------------------------------
def train_run(data: Any, cfg: RunConfig, *, cache: Any = None, model_fn: Any = None) -> RunResult:
    r"""Train one :class:`~gnnleaky.nn.LeakyGNN` as ``cfg`` says and return its result.

    Args:
        data (torch_geometric.data.Data): A graph from :func:`gnnleaky.datasets.load`
            (``x``, ``edge_index``, ``y``, ``train/val/test_mask`` of shape ``[N]`` or
            ``[N, S]`` (column ``cfg.split``), ``num_classes``).
        cfg (RunConfig): The run.
        cache (gnnleaky.spectral.GraphCache, optional): Spectral cache of this graph, to
            share between calls. (default: ``None``, built when needed)
        model_fn (callable, optional): ``model_fn(cfg, in_channels, out_channels)`` builds
            the model (default: ``cfg.model``'s factory, else the built-in ``cfg.conv``).

    Example:
        >>> from gnnleaky.datasets import load
        >>> data = load("csbm", num_nodes=60, seed=0)
        >>> res = train_run(data, RunConfig(num_layers=2, hidden_channels=8, epochs=5,
        ...                                 metrics=()))
        >>> res.status, res.epochs_run, len(res.curve)
        ('ok', 5, 5)
    """
    if cfg.task != DEFAULT_TASK:
        return runner(cfg.task).runner()(data, cfg, cache=cache)
    return _train_single(_task(data, cfg), cfg, cache, model_fn)


def _train_single(
    task: NodeClassification, cfg: RunConfig, cache: Any, model_fn: Any = None
) -> RunResult:
    custom = model_fn is not None or cfg.model is not None
    extra = {"cached": True} if cfg.conv in ("gcn", "gcnii") and not custom else {}
    return _fit(_build(cfg, task, model_fn, **extra), [cfg], task, cache)[0]


def train_group(
    data: Any,
    cfgs: Sequence[RunConfig],
    *,
    stacked: bool = True,
    max_group: int | None = None,
    cache: Any = None,
    model_fn: Any = None,
) -> list[RunResult]:
    r"""Train runs that share a graph and a shape, stacked where possible.

    The runs are split into chunks of at most ``max_group`` models, each trained as one
    :class:`~gnnleaky.engine.StackedGNN`; runs whose ``conv`` is not in
    :data:`~gnnleaky.engine.STACKABLE_CONVS` (or all runs with ``stacked=False``) are
    trained one by one with :func:`train_run`. Results come back in the order of ``cfgs``
    and equal one-by-one results up to float rounding. ``wall_time`` is the chunk's time
    divided by its size.

    Args:
        data (torch_geometric.data.Data): The graph (see :func:`train_run`).
        cfgs (list[RunConfig]): Runs with equal ``group_key``.
        stacked (bool, optional): Train stacked. (default: ``True``)
        max_group (int, optional): Most models per stack. (default: what fits
            :data:`GROUP_MEMORY_BUDGET`, see :func:`default_max_group`)
        cache (gnnleaky.spectral.GraphCache, optional): Spectral cache of this graph.
        model_fn (callable, optional): The runs' model factory (see :func:`train_run`).

    Raises:
        ValueError: if the runs do not share ``group_key`` or ``cfgs`` is empty.

    Example:
        >>> from gnnleaky.datasets import load
        >>> data = load("csbm", num_nodes=60, seed=0)
        >>> cfgs = [RunConfig(num_layers=2, hidden_channels=8, epochs=5, act="leaky_relu",
        ...                   negative_slope=a, metrics=()) for a in (0.1, 0.2)]
        >>> [(r.status, r.group_size) for r in train_group(data, cfgs)]
        [('ok', 2), ('ok', 2)]
    """
    cfgs = list(cfgs)
    if not cfgs:
        raise ValueError("cfgs must contain at least one RunConfig")
    keys = {c.group_key for c in cfgs}
    if len(keys) > 1:
        raise ValueError(
            "all cfgs must share RunConfig.group_key (graph, conv, depth, width, "
            f"training settings); got {len(keys)} different keys"
        )
    if max_group is not None and (isinstance(max_group, bool) or int(max_group) < 1):
        raise ValueError(f"max_group must be a positive int or None, got {max_group!r}")
    if cfgs[0].task != DEFAULT_TASK:  # other tasks train one run at a time
        run = runner(cfgs[0].task).runner()
        return [run(data, cfg, cache=cache) for cfg in cfgs]
    task = _task(data, cfgs[0])
    if not stacked or model_fn is not None or stack_reason(cfgs[0]) is not None:
        return [_train_single(task, cfg, cache, model_fn) for cfg in cfgs]
    # activations the engine does not compute (ELU, a scaled ReLU, ...) train one by one
    alone = [i for i, cfg in enumerate(cfgs) if not _engine_activation(cfg)]
    out: dict[int, RunResult] = {i: _train_single(task, cfgs[i], cache) for i in alone}
    order = [i for i in range(len(cfgs)) if i not in out]
    together = [cfgs[i] for i in order]
    n = task.x.size(0)
    size = int(max_group) if max_group is not None else default_max_group(cfgs[0], n)
    results = []
    for start in range(0, len(together), size):
        chunk = together[start : start + size]
        # (each model's SeededDropout generator goes into the stack with it)
        module = StackedGNN.from_models([_build(cfg, task) for cfg in chunk], copy_models=False)
        # on the fast path: torch's own ops on one thread, the stacked models on torch's
        # threads (see gnnleaky.engine.model_threads)
        with model_threads() if module.uses_fast_path(task.x) else contextlib.nullcontext():
            results.extend(_fit(module, chunk, task, cache))
    out.update(zip(order, results))
    return [out[i] for i in range(len(cfgs))]


def _engine_activation(cfg: RunConfig) -> bool:
    """Whether the stacked engine computes the run's activation (:func:`act_spec`)."""
    kwargs = cfg.model_kwargs(1, 1)
    act = ActivationSpec(kwargs["act"], kwargs["act_kwargs"]).build(cfg.hidden_channels)
    try:
        act_spec(act, cfg.hidden_channels)
    except ValueError:
        return False
    return True
