r"""Training of one run or one stacked group: best-validation selection, divergence guard.

:func:`train_run` trains one :class:`~gnnleaky.nn.LeakyGNN`; :func:`train_group` trains runs
that share ``RunConfig.group_key`` together as one :class:`~gnnleaky.nn.StackedGNN` (or one
by one for convs that cannot be stacked). Stacking is an execution detail: each model is
initialised under its own seed exactly as alone, draws its own dropout masks from its own
generator, is updated by Adam only from its own loss, stops on its own patience and fails on
its own divergence, so the stored :class:`RunResult` is the one-by-one result up to float
rounding.

Protocol (per model): full-batch Adam with ``lr`` and ``weight_decay`` (PReLU slopes exempt,
see :func:`gnnleaky.nn.param_groups`), cross-entropy on the training nodes; after every
optimizer step the model is evaluated in eval mode and the epoch with the best validation
score is kept (ties: the earliest); training stops after ``patience`` epochs without
improvement. A non-finite loss or non-finite outputs mark the run ``failed`` with a reason.
Per-layer metrics (:func:`gnnleaky.spectral.layer_metrics`) are recorded before training
(``when="init"``) and with the best weights (``when="best"``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnleaky.bench.config import RunConfig
from gnnleaky.nn import LeakyGNN, _fast, param_groups, slopes
from gnnleaky.nn.stacked import STACKABLE_CONVS, SeededDropout, StackedGNN
from gnnleaky.utils import check_graph

__all__ = ["GROUP_MEMORY_BUDGET", "RunResult", "default_max_group", "train_group", "train_run"]

log = logging.getLogger(__name__)

#: Bytes of activations a stacked group may keep for its backward pass (sets the default
#: ``max_group``).
GROUP_MEMORY_BUDGET: int = 2 * 1024**3


@dataclass
class RunResult:
    """The outcome of one run, as stored by :class:`~gnnleaky.bench.store.ResultsStore`.

    Scores are taken at the best validation epoch. ``layers`` holds records
    ``{layer, stage ('pre'|'post'), metric, when ('init'|'best'), value}`` and ``curve``
    one record ``{epoch, train_loss, train_score, val_score, test_score}`` per epoch run.
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


# -- graph ------------------------------------------------------------------------------------
@dataclass
class _Graph:
    x: Tensor
    edge_index: Tensor
    y: Tensor
    masks: dict[str, Tensor]  # split name -> node indices
    num_classes: int
    metric: str
    cache: Any = None  # gnnleaky.spectral.GraphCache, built on first use


def _metric_name(data: Any, cfg: RunConfig) -> str:
    try:
        from gnnleaky.datasets import info
    except ImportError:  # pragma: no cover - datasets is part of the package
        info = None
    metric = None
    if info is not None:
        try:
            metric = info(cfg.dataset).metric
        except ValueError:
            metric = None
    metric = metric or getattr(data, "metric", None) or "accuracy"
    if metric not in _SCORERS:
        raise ValueError(f"metric must be one of {sorted(_SCORERS)}, got {metric!r}")
    return metric


def _prepare(data: Any, cfg: RunConfig, cache: Any = None) -> _Graph:
    x, edge_index, y = data.x, data.edge_index, data.y
    if x is None or edge_index is None or y is None:
        raise ValueError("data must have x, edge_index and y")
    check_graph(x, edge_index)
    x = x.float() if x.dtype != torch.get_default_dtype() else x
    masks = {}
    for name in ("train", "val", "test"):
        mask = getattr(data, f"{name}_mask", None)
        if mask is None:
            raise ValueError(f"data has no {name}_mask")
        if mask.dim() == 2:
            if not 0 <= cfg.split < mask.size(1):
                raise ValueError(
                    f"split must be in [0, {mask.size(1)}) for this dataset, got split={cfg.split}"
                )
            mask = mask[:, cfg.split]
        if mask.dtype != torch.bool or mask.numel() != x.size(0):
            raise ValueError(f"{name}_mask must be a boolean mask of shape [N] or [N, S]")
        masks[name] = mask.nonzero().view(-1)
    if masks["train"].numel() == 0:
        raise ValueError(f"split {cfg.split} has no training nodes")
    num_classes = int(getattr(data, "num_classes", 0) or int(y.max()) + 1)
    y = y.view(-1).long()
    return _Graph(x, edge_index, y, masks, num_classes, _metric_name(data, cfg), cache)


def _graph_cache(graph: _Graph) -> Any:
    if graph.cache is None:
        from gnnleaky.spectral import GraphCache

        graph.cache = GraphCache(graph.edge_index, graph.x.size(0), symmetrize=True)
    return graph.cache


# -- scores -----------------------------------------------------------------------------------
def _accuracy(out: Tensor, y: Tensor, index: Tensor) -> list[float]:
    if index.numel() == 0:
        return [math.nan] * out.size(0)
    correct = out[:, index].argmax(-1) == y[index]
    return correct.double().mean(1).tolist()


def _roc_auc(out: Tensor, y: Tensor, index: Tensor) -> list[float]:
    from sklearn.metrics import roc_auc_score

    labels = y[index].numpy()
    if index.numel() == 0 or len(set(labels.tolist())) < 2:
        return [math.nan] * out.size(0)
    prob = torch.softmax(out[:, index].double(), dim=-1)[..., 1]
    finite = torch.isfinite(prob).all(1).tolist()
    return [
        float(roc_auc_score(labels, p.numpy())) if ok else math.nan for p, ok in zip(prob, finite)
    ]


#: Official metrics: name -> scorer(out [K, N, C], y, node index) -> K scores.
_SCORERS = {"accuracy": _accuracy, "roc_auc": _roc_auc}


# -- models -----------------------------------------------------------------------------------
def _dropout_generator(seed: int) -> torch.Generator:
    """A per-run generator for dropout masks, independent of the initialisation stream."""
    digest = hashlib.sha256(f"gnnleaky/dropout/{int(seed)}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _build(cfg: RunConfig, graph: _Graph, **extra: Any) -> LeakyGNN:
    """``LeakyGNN`` initialised under ``cfg.seed``, the caller's RNG state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.seed))
        model = LeakyGNN(**cfg.model_kwargs(graph.x.size(1), graph.num_classes), **extra)
    model.dropout = SeededDropout(cfg.dropout, [_dropout_generator(cfg.seed)])
    return model


def default_max_group(cfg: RunConfig, num_nodes: int) -> int:
    """Largest K whose activations fit :data:`GROUP_MEMORY_BUDGET` (about four float32
    ``[N, C]`` tensors per layer and model stay alive for the backward pass)."""
    per_model = 4 * num_nodes * max(cfg.hidden_channels, 1) * cfg.num_layers * 4
    return max(1, GROUP_MEMORY_BUDGET // max(per_model, 1))


class _Bank:
    """K models trained together: a StackedGNN, or one LeakyGNN seen as K = 1."""

    def __init__(self, module: torch.nn.Module, ids: list[int]) -> None:
        self.module = module
        self.ids = ids  # position in the bank -> index of the run in the group
        self.stacked = isinstance(module, StackedGNN)

    @property
    def size(self) -> int:
        return len(self.ids)

    def named_params(self) -> dict[str, torch.nn.Parameter]:
        return dict(self.module.named_parameters())

    def rows(self, p: Tensor) -> Tensor:
        """``p`` with a leading model dimension (a view)."""
        return p if self.stacked else p.unsqueeze(0)

    def forward(self, graph: _Graph, hidden: bool = False) -> Any:
        if self.stacked:
            return self.module(graph.x, graph.edge_index, return_hidden=hidden)
        if not hidden:
            return self.module(graph.x, graph.edge_index).unsqueeze(0)
        out = self.module.forward_hidden(graph.x, graph.edge_index)
        if hidden:
            out, h = out
            return out.unsqueeze(0), (
                [t.unsqueeze(0) for t in h.pre],
                [t.unsqueeze(0) for t in h.post],
            )
        return out.unsqueeze(0)

    def optimizer(self, cfg: RunConfig) -> torch.optim.Optimizer:
        groups = (
            self.module.param_groups(cfg.weight_decay)
            if self.stacked
            else param_groups(self.module, cfg.weight_decay)
        )
        # fused: one kernel per parameter (the for-loop Adam runs ~10 small ops each).
        return torch.optim.Adam(groups, lr=cfg.lr, fused=True)

    def select(
        self, keep: list[int], opt: torch.optim.Optimizer, cfg: RunConfig
    ) -> tuple[_Bank, torch.optim.Optimizer]:
        """Drop models that stopped: a smaller stack with the Adam state carried over."""
        old = self.named_params()
        module = self.module.select(keep)
        self.module.clear_cache()  # its activation buffers are not needed any more
        bank = _Bank(module, [self.ids[i] for i in keep])
        new_opt = bank.optimizer(cfg)
        index = torch.tensor(keep)
        for name, p in bank.named_params().items():
            state = opt.state.get(old[name])
            if state:
                new_opt.state[p] = {
                    k: (
                        v.index_select(0, index).clone()
                        if torch.is_tensor(v) and v.dim() > 0
                        else (v.clone() if torch.is_tensor(v) else v)
                    )
                    for k, v in state.items()
                }
        return bank, new_opt


# -- per-layer metrics ------------------------------------------------------------------------
def _layer_records(
    bank: _Bank, graph: _Graph, metrics: Sequence[str], when: str
) -> list[list[dict[str, Any]]]:
    """Records for every model of the bank (list over bank positions)."""
    recs: list[list[dict[str, Any]]] = [[] for _ in range(bank.size)]
    if not metrics:
        return recs
    from gnnleaky.spectral import layer_metrics

    cache = _graph_cache(graph)
    bank.module.eval()
    with torch.no_grad():
        _, (pre, post) = bank.forward(graph, hidden=True)
        for stage, feats in (("pre", pre), ("post", post)):
            for layer, h in enumerate(feats):
                # A diverged model has non-finite features: NaN records, the others measured.
                ok = torch.isfinite(h).flatten(1).all(1).nonzero().view(-1).tolist()
                values = {m: [math.nan] * bank.size for m in metrics}
                if ok:
                    sub = h if len(ok) == bank.size else h[ok]
                    for name, v in layer_metrics(
                        sub, graph.edge_index, list(metrics), cache=cache
                    ).items():
                        v = v.reshape(-1).double().tolist()
                        for j, i in enumerate(ok):
                            values[name][i] = float(v[j])
                for name, v in values.items():
                    for i in range(bank.size):
                        recs[i].append(
                            {
                                "layer": layer,
                                "stage": stage,
                                "metric": name,
                                "when": when,
                                "value": v[i],
                            }
                        )
            del feats
    return recs


# -- the loop ---------------------------------------------------------------------------------
@dataclass
class _State:
    best_epoch: int = 0
    best_val: float = -math.inf
    scores: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    epochs_run: int = 0
    status: str = "ok"
    reason: str | None = None
    done: bool = False
    curve: list[dict[str, Any]] = field(default_factory=list)


def _train_bank(graph: _Graph, cfgs: Sequence[RunConfig], bank: _Bank) -> list[RunResult]:
    cfg0 = cfgs[0]
    start = time.perf_counter()
    k_total = len(cfgs)
    full = bank.module  # keeps the original K rows; receives the best weights at the end
    best = {n: bank.rows(p).detach().clone() for n, p in bank.named_params().items()}
    init_recs = _layer_records(bank, graph, cfg0.metrics, "init")
    states = [_State() for _ in cfgs]
    opt = bank.optimizer(cfg0)
    scorer = _SCORERS[graph.metric]
    train_idx = graph.masks["train"]
    y_train = graph.y[train_idx]

    # on the fast path: torch's own ops on one thread, the stacked models on torch's
    # threads (see gnnleaky.nn._fast.model_threads); other models keep torch's threads
    fast = bank.stacked and bank.module._fast_path(graph.x)
    with _fast.model_threads() if fast else contextlib.nullcontext():
        for epoch in range(1, cfg0.epochs + 1):
            # -- one optimizer step for every model still training ---------------------------
            bank.module.train()
            opt.zero_grad(set_to_none=True)
            out = bank.forward(graph)
            logits = out[:, train_idx]
            losses = (
                F.cross_entropy(
                    logits.reshape(-1, logits.size(-1)), y_train.repeat(bank.size), reduction="none"
                )
                .view(bank.size, -1)
                .mean(1)
            )
            finite = torch.isfinite(losses).tolist()
            ok = [i for i in range(bank.size) if finite[i]]
            for i in range(bank.size):
                if not finite[i]:
                    st = states[bank.ids[i]]
                    st.status, st.done = "failed", True
                    st.reason = f"non-finite loss at epoch {epoch}"
            if ok:
                # Indexing (not masking) keeps a NaN loss out of the other models' gradients.
                losses[ok].sum().backward()
                opt.step()
            loss_values = losses.detach().tolist()
            del out, logits, losses

            # -- evaluation -----------------------------------------------------------------
            bank.module.eval()
            with torch.no_grad():
                out = bank.forward(graph)
                finite_out = torch.isfinite(out).flatten(1).all(1).tolist()
                splits = {s: scorer(out, graph.y, idx) for s, idx in graph.masks.items()}
            improved = []
            for i in range(bank.size):
                st = states[bank.ids[i]]
                if st.done:
                    continue
                st.epochs_run = epoch
                if not finite_out[i]:
                    st.status, st.done = "failed", True
                    st.reason = f"non-finite outputs at epoch {epoch}"
                    continue
                tr, va, te = splits["train"][i], splits["val"][i], splits["test"][i]
                st.curve.append(
                    {
                        "epoch": epoch,
                        "train_loss": loss_values[i],
                        "train_score": tr,
                        "val_score": va,
                        "test_score": te,
                    }
                )
                if va > st.best_val:  # strict: ties keep the earliest epoch
                    st.best_val, st.best_epoch, st.scores = va, epoch, (tr, va, te)
                    improved.append(i)
                elif cfg0.patience is not None and epoch - st.best_epoch >= cfg0.patience:
                    st.done = True
            if improved:
                params = bank.named_params()
                with torch.no_grad():
                    if len(improved) == bank.size == k_total:  # all improved, none dropped yet
                        # one foreach copy (a 64-layer model: 0.16 ms against 0.57 row by row)
                        torch._foreach_copy_(
                            [best[n] for n in params], [bank.rows(p) for p in params.values()]
                        )
                    else:
                        idx = torch.tensor(improved)
                        orig = torch.tensor([bank.ids[i] for i in improved])
                        for n, p in params.items():
                            best[n].index_copy_(0, orig, bank.rows(p).detach().index_select(0, idx))
            keep = [i for i in range(bank.size) if not states[bank.ids[i]].done]
            if not keep:
                break
            if len(keep) < bank.size:
                if bank.stacked:
                    bank, opt = bank.select(keep, opt, cfg0)
                # (a single model that is done ends the loop above)

    # -- best weights, per-layer metrics, slopes ---------------------------------------------
    with torch.no_grad():
        for n, p in full.named_parameters():
            (p if isinstance(full, StackedGNN) else p.unsqueeze(0)).copy_(best[n])
    if isinstance(full, StackedGNN):
        full.clear_cache()
    final = _Bank(full, list(range(k_total)))
    has_best = [st.best_epoch > 0 for st in states]
    best_recs = (
        _layer_records(final, graph, cfg0.metrics, "best") if any(has_best) else [[] for _ in cfgs]
    )
    wall = (time.perf_counter() - start) / k_total
    results = []
    for i, (cfg, st) in enumerate(zip(cfgs, states)):
        per_model = full.model_slopes(i) if isinstance(full, StackedGNN) else slopes(full)
        slope_dict = (
            {
                name: [float(v) for v in s.detach().reshape(-1).tolist()]
                for name, s in per_model.items()
            }
            if has_best[i]
            else {}
        )
        layers = init_recs[i] + (best_recs[i] if has_best[i] else [])
        results.append(
            RunResult(
                config=cfg,
                key=cfg.key,
                status=st.status,
                reason=st.reason,
                metric=graph.metric,
                best_epoch=st.best_epoch,
                epochs_run=st.epochs_run,
                train_score=st.scores[0],
                val_score=st.scores[1],
                test_score=st.scores[2],
                wall_time=wall,
                group_size=k_total if isinstance(full, StackedGNN) else 1,
                slopes=slope_dict,
                layers=layers,
                curve=st.curve,
            )
        )
        if st.status != "ok":
            log.warning("run %s failed: %s", cfg.key, st.reason)
    return results


# -- public API -------------------------------------------------------------------------------
def train_run(data: Any, cfg: RunConfig, *, cache: Any = None) -> RunResult:
    r"""Train one :class:`~gnnleaky.nn.LeakyGNN` as ``cfg`` says and return its result.

    Args:
        data (torch_geometric.data.Data): A graph from :func:`gnnleaky.datasets.load`
            (``x``, ``edge_index``, ``y``, ``train/val/test_mask`` of shape ``[N]`` or
            ``[N, S]`` (column ``cfg.split``), ``num_classes``).
        cfg (RunConfig): The run.
        cache (gnnleaky.spectral.GraphCache, optional): Spectral cache of this graph, to
            share between calls. (default: ``None``, built when needed)

    Example:
        >>> from gnnleaky.datasets import load
        >>> data = load("csbm", num_nodes=60, seed=0)
        >>> res = train_run(data, RunConfig(num_layers=2, hidden_channels=8, epochs=5,
        ...                                 metrics=()))
        >>> res.status, res.epochs_run, len(res.curve)
        ('ok', 5, 5)
    """
    return _train_single(_prepare(data, cfg, cache), cfg)


def _train_single(graph: _Graph, cfg: RunConfig) -> RunResult:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.seed))
        extra = {"cached": True} if cfg.conv in ("gcn", "gcnii") else {}
        return _train_bank(graph, [cfg], _Bank(_build(cfg, graph, **extra), [0]))[0]


def train_group(
    data: Any,
    cfgs: Sequence[RunConfig],
    *,
    stacked: bool = True,
    max_group: int | None = None,
    cache: Any = None,
) -> list[RunResult]:
    r"""Train runs that share a graph and a shape, stacked where possible.

    The runs are split into chunks of at most ``max_group`` models, each trained as one
    :class:`~gnnleaky.nn.StackedGNN`; runs whose ``conv`` is not in
    :data:`~gnnleaky.nn.stacked.STACKABLE_CONVS` (or all runs with ``stacked=False``) are
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
    graph = _prepare(data, cfgs[0], cache)
    if not stacked or cfgs[0].conv not in STACKABLE_CONVS:
        return [_train_single(graph, cfg) for cfg in cfgs]
    size = int(max_group) if max_group is not None else default_max_group(cfgs[0], graph.x.size(0))
    results = []
    for start in range(0, len(cfgs), size):
        chunk = cfgs[start : start + size]
        models = [_build(cfg, graph) for cfg in chunk]
        module = StackedGNN.from_models(models, copy_models=False)
        module.dropout.generators = [m.dropout.generators[0] for m in models]
        del models
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(chunk[0].seed))
            results.extend(_train_bank(graph, chunk, _Bank(module, list(range(len(chunk))))))
    return results
