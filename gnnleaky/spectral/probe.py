r"""Per-layer metrics: a registry of named metrics and a probe that records them on any model.

:data:`METRICS` maps a name to ``fn(x, cache) -> Tensor``; :func:`layer_metrics` evaluates any
of them on one layer's features (the sweep's trainer calls it too), and :class:`LayerProbe`
hooks a model and records them at every message-passing layer, before and after the
activation, as a tidy :class:`pandas.DataFrame`.

Which operator each metric uses (fixed, so numbers are comparable across runs):

=================== =======================================================================
``dirichlet``       unnormalized Dirichlet energy :math:`\frac1N\sum_i\sum_{j\in\mathcal N(i)}
                    \|x_i-x_j\|^2` (:func:`~gnnleaky.spectral.dirichlet_energy`)
``dirichlet_sym``   :math:`\operatorname{tr}(X^\top L X)`, :math:`L = I - D^{-1/2}AD^{-1/2}`,
                    no self-loops
``rayleigh``        Rayleigh quotient on that ``sym`` Laplacian without self-loops, in [0, 2]
``rayleigh_gcn``    Rayleigh quotient on GCN's operator :math:`I - \tilde D^{-1/2}(A+I)
                    \tilde D^{-1/2}`
``hf_ratio``        share of :math:`\|X\|^2` at ``sym`` frequency :math:`\ge 1` (exact
                    eigenbasis up to :data:`~gnnleaky.spectral.DENSE_MAX_NODES` nodes, else
                    KPM with 128 moments)
``mad``             mean average cosine distance over the graph's edges
``effective_rank``  effective rank of the features
``norm``            Frobenius norm :math:`\|X\|_F`
=================== =======================================================================
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from gnnleaky._validation import all_finite
from gnnleaky.spectral.energy import _dirichlet, _frobenius, _rayleigh, effective_rank, mad
from gnnleaky.spectral.fourier import high_frequency_ratio
from gnnleaky.spectral.operators import GraphCache, resolve_cache, unchecked_signal

__all__ = ["METRICS", "STAGES", "LayerProbe", "layer_metrics", "layer_records"]

log = logging.getLogger(__name__)


def _mad_edges(x: Tensor, cache: GraphCache) -> Tensor:
    pairs = torch.stack([torch.cat([cache.row, cache.col]), torch.cat([cache.col, cache.row])])
    return mad(x, pairs)


# Registry entries get features already validated by layer_metrics (finite, [N, C] or
# [K, N, C]) and the graph's cache, so the cheap ones skip re-validation.
def _dirichlet_metric(normalization: str | None) -> Callable[[Tensor, GraphCache], Tensor]:
    return lambda x, c: _dirichlet(unchecked_signal(x), c, normalization)


def _rayleigh_metric(add_self_loops: bool) -> Callable[[Tensor, GraphCache], Tensor]:
    return lambda x, c: _rayleigh(unchecked_signal(x), c, "sym", add_self_loops)


def _hf_ratio(x: Tensor, cache: GraphCache) -> Tensor:
    return high_frequency_ratio(
        x,
        cache.edge_index,
        cache.edge_weight,
        1.0,
        "sym",
        method="auto",
        symmetrize=cache.symmetrize,
        cache=cache,
    )


#: Metric registry: name -> ``fn(x, cache)`` with ``x`` of shape ``[N, C]`` (returns a 0-dim
#: tensor) or ``[K, N, C]`` (returns ``[K]``), finite (checked by :func:`layer_metrics`).
#: Add a metric by adding an entry here.
METRICS: dict[str, Callable[[Tensor, GraphCache], Tensor]] = {
    "dirichlet": _dirichlet_metric(None),
    "dirichlet_sym": _dirichlet_metric("sym"),
    "rayleigh": _rayleigh_metric(False),
    "rayleigh_gcn": _rayleigh_metric(True),
    "hf_ratio": _hf_ratio,
    "mad": _mad_edges,
    "effective_rank": lambda x, c: effective_rank(x),
    "norm": lambda x, c: _frobenius(unchecked_signal(x)),
}

#: Where a layer's features are read: before the activation, after it, or both.
STAGES = ("pre", "post", "both")


def _check_metrics(metrics: Any) -> tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    try:
        names = tuple(metrics)
    except TypeError:
        names = (metrics,)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"metrics must be names from {sorted(METRICS)}, got {metrics!r}")
    return names


def layer_metrics(
    x: Tensor, edge_index: Tensor, metrics: Sequence[str], *, cache: GraphCache | None = None
) -> dict[str, Tensor]:
    r"""Evaluate named metrics (:data:`METRICS`) on one layer's features.

    Args:
        x (Tensor): Node features :math:`(N, C)` or stacked :math:`(K, N, C)`.
        edge_index (Tensor): Undirected edge indices :math:`(2, E)`.
        metrics (sequence of str): Names from :data:`METRICS`.
        cache (GraphCache, optional): The graph's cache (built once and passed for every
            layer, it makes repeated calls cost little beyond the products).
            (default: ``None``)

    Returns:
        ``{name: value}`` with float64 values: 0-dim for ``[N, C]`` input, ``[K]`` for
        ``[K, N, C]``. Non-finite features (a diverged model) give NaN for every metric
        instead of raising, so that training and probing can record the divergence.

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> out = layer_metrics(torch.ones(3, 4), edge_index, ["dirichlet", "norm"])
        >>> {k: round(float(v), 4) for k, v in out.items()}
        {'dirichlet': 0.0, 'norm': 3.4641}
    """
    names = _check_metrics(metrics)
    if not isinstance(x, Tensor) or x.dim() not in (2, 3) or not x.is_floating_point():
        raise ValueError(
            f"x must be a floating tensor of shape [N, C] or [K, N, C], got "
            f"{getattr(x, 'shape', type(x).__name__)}"
        )
    edge_weight = None if cache is None else cache.edge_weight
    symmetrize = False if cache is None else cache.symmetrize
    cache = resolve_cache(edge_index, x.size(-2), edge_weight, symmetrize, cache)
    if not all_finite(x):
        shape = x.shape[:1] if x.dim() == 3 else ()
        return {
            name: torch.full(shape, float("nan"), dtype=torch.float64, device=x.device)
            for name in names
        }
    return {name: METRICS[name](x, cache) for name in names}


def layer_records(
    model: torch.nn.Module,
    x: Tensor,
    edge_index: Tensor,
    metrics: Sequence[str],
    *,
    edge_weight: Tensor | None = None,
    symmetrize: bool = True,
    cache: GraphCache | None = None,
) -> list[list[dict[str, Any]]]:
    r"""Every layer's metrics, before and after its activation, for each model: the one
    per-layer extractor of the sweep and the ``gnnleaky energy`` command.

    The model runs once in eval mode without gradients. gnnleaky's models (and a
    :class:`~gnnleaky.engine.StackedGNN` of K) give their features through
    ``forward_hidden``; any other PyG model is read by a :class:`LayerProbe`. Metrics are
    measured on the graph as given, or with ``symmetrize=True`` (the default) on
    :math:`(\mathbf{A} + \mathbf{A}^\top)/2` for a directed graph (an undirected graph is
    the same either way). A model whose features are not finite gets NaN records.

    Args:
        model (torch.nn.Module): A model, or a stack of K models.
        x (torch.Tensor): Node features.
        edge_index (torch.Tensor): Edge indices.
        metrics (sequence of str): Names from :data:`METRICS`.
        edge_weight (torch.Tensor, optional): Edge weights (passed to the model and
            used by the metrics). (default: ``None``)
        symmetrize (bool, optional): See above. (default: ``True``)
        cache (GraphCache, optional): This graph's cache. (default: ``None``)

    Returns:
        One list per model (K lists for a stack, else one) of records
        ``{layer, stage, metric, value}``.

    Example:
        >>> from gnnleaky.nn import GCN
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> [recs] = layer_records(GCN(4, 8, 2, 2), torch.randn(3, 4), edge_index, ["norm"])
        >>> sorted({(r["layer"], r["stage"]) for r in recs})
        [(0, 'post'), (0, 'pre'), (1, 'post'), (1, 'pre')]
    """
    names = _check_metrics(metrics)
    cache = resolve_cache(edge_index, x.size(0), edge_weight, symmetrize, cache)
    args = (x, edge_index) if edge_weight is None else (x, edge_index, edge_weight)
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if hasattr(model, "forward_hidden"):
                _, hidden = model.forward_hidden(*args)
                stages = (("pre", hidden.pre), ("post", hidden.post))
            else:
                with LayerProbe(
                    model,
                    metrics=names,
                    stage="both",
                    edge_index=edge_index,
                    edge_weight=edge_weight,
                    symmetrize=symmetrize,
                ) as probe:
                    model(*args)
                frame = probe.to_frame()
                return [
                    [
                        {
                            "layer": int(r.layer),
                            "stage": r.stage,
                            "metric": r.metric,
                            "value": float(r.value),
                        }
                        for r in frame.itertuples()
                    ]
                ]
    finally:
        model.train(training)
    k = stages[0][1][0].size(0) if stages[0][1] and stages[0][1][0].dim() == 3 else 1
    recs: list[list[dict[str, Any]]] = [[] for _ in range(k)]
    for stage, feats in stages:
        for layer, h in enumerate(feats):
            h = h if h.dim() == 3 else h.unsqueeze(0)
            # a diverged model gets NaN records; the others are measured
            ok = torch.isfinite(h).flatten(1).all(1).nonzero().view(-1).tolist()
            values = {name: [math.nan] * k for name in names}
            if ok:
                sub = h if len(ok) == k else h[ok]
                for name, v in layer_metrics(sub, cache.edge_index, names, cache=cache).items():
                    for j, value in zip(ok, v.reshape(-1).double().tolist()):
                        values[name][j] = float(value)
            for name, vals in values.items():
                for i, value in enumerate(vals):
                    recs[i].append({"layer": layer, "stage": stage, "metric": name, "value": value})
    return recs


# -- the probe --------------------------------------------------------------------------------
class _Site:
    """One place where a layer's features are read."""

    def __init__(self, layer: int, module: torch.nn.Module, kind: str) -> None:
        self.layer = layer
        self.module = module
        self.kind = kind  # "act": input = pre, output = post; "output": output = pre = post


def _leaky_gnn_sites(model: torch.nn.Module) -> list[_Site] | None:
    from gnnleaky.nn.models import LeakyGNN

    if not isinstance(model, LeakyGNN):
        return None
    acted = model.num_activations
    sites = [_Site(i, act, "act") for i, act in enumerate(model.acts[:acted])]
    if acted < model.num_layers:  # the output layer has no activation
        sites.append(_Site(model.num_layers - 1, model.convs[-1], "output"))
    return sites


def _gcnii_sites(model: torch.nn.Module) -> list[_Site] | None:
    from gnnleaky.nn.models import GCNII

    if not isinstance(model, GCNII):
        return None
    # layer 0 is the input map, layer l the l-th GCN2Conv, each with its activation
    return [_Site(i, act, "act") for i, act in enumerate(model.acts)]


def _basic_gnn_sites(model: torch.nn.Module) -> list[_Site] | None:
    from torch_geometric.nn.models.basic_gnn import BasicGNN

    if not isinstance(model, BasicGNN):
        return None
    num_layers = model.num_layers
    acted = num_layers if model.jk_mode is not None else num_layers - 1
    if model.act is None:
        return [_Site(i, conv, "output") for i, conv in enumerate(model.convs)]
    # One activation module is shared by all layers (and, for GIN, by the MLPs inside the
    # convs): calls outside a conv are attributed to the layer of the last conv that ran.
    sites = [_Site(i, model.act, "shared_act") for i in range(acted)]
    if acted < num_layers:
        sites.append(_Site(num_layers - 1, model.convs[-1], "output"))
    return sites


#: How a model's layers are found, tried in order (first match wins); ``modules=`` overrides.
LAYER_FINDERS: list[Callable[[torch.nn.Module], list[_Site] | None]] = [
    _leaky_gnn_sites,
    _gcnii_sites,
    _basic_gnn_sites,
]


class LayerProbe:
    r"""Record spectral metrics at every message-passing layer of a model.

    A context manager: inside ``with LayerProbe(model, ...) as probe:`` every forward pass
    records, for each layer :math:`\ell` and stage, the chosen :data:`METRICS` of the layer's
    features; :meth:`to_frame` returns them as a tidy :class:`pandas.DataFrame` with columns
    ``call, layer, stage, metric, value`` (plus ``model`` for stacked ``[K, N, C]``
    features). Hooks are removed on exit, also when the forward raises. Recording runs under
    :func:`torch.no_grad` on detached features and never changes the model's output.

    Where features are read:

    * :class:`~gnnleaky.nn.LeakyGNN`: ``pre`` is the input of ``model.acts[l]`` (after conv
      and norm), ``post`` its output (before dropout; with ``act_first=True``, before the
      norm, where :class:`~gnnleaky.nn.Hidden` has it after). The output layer, which has no
      activation, is recorded from ``model.convs[-1]``'s output with ``pre == post`` (as in
      :class:`~gnnleaky.nn.Hidden`).
    * PyG's ``BasicGNN`` models (``GCN``, ``GraphSAGE``, ``GAT``, ``GIN``, ...): their single
      shared ``model.act`` is hooked and its calls outside the convs are numbered per forward
      (GIN's MLPs call the same module inside the convs; those calls are skipped). The last
      layer as above.
    * Any other model: pass ``modules=[m_0, m_1, ...]``, one per layer, whose input is the
      pre-activation and output the post-activation; a module listed several times (a shared
      activation) gets its ``j``-th call per forward assigned to its ``j``-th position.

    The graph is taken from ``edge_index`` / ``edge_weight`` given here, or else captured from
    each forward call (the second positional argument or ``edge_index=``; ``edge_weight`` as
    the third or by keyword). A batched input is measured as one graph (the disjoint union).

    Args:
        model (torch.nn.Module): The model.
        metrics (sequence of str, optional): Names from :data:`METRICS`.
            (default: ``("dirichlet", "rayleigh")``)
        stage (str, optional): ``"pre"``, ``"post"`` or ``"both"``. (default: ``"both"``)
        layers (sequence of int, optional): Layers to record (negative counts from the
            end); all if ``None``. (default: ``None``)
        modules (sequence of Module, optional): The per-layer modules, for models the probe
            does not know. (default: ``None``)
        edge_index (Tensor, optional): The graph; captured from the forward if ``None``.
        edge_weight (Tensor, optional): Its edge weights. (default: ``None``)
        symmetrize (bool, optional): Measure a directed graph on :math:`(A + A^\top)/2`
            instead of raising. (default: ``False``)

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> model = LeakyGNN(8, 16, num_layers=3, out_channels=2, act="leaky_relu")
        >>> x, edge_index = torch.randn(5, 8), torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
        >>> with LayerProbe(model, metrics=["dirichlet", "norm"]) as probe:
        ...     out = model(x, edge_index)
        >>> df = probe.to_frame()
        >>> sorted(df.layer.unique().tolist()), sorted(df.stage.unique().tolist()), len(df)
        ([0, 1, 2], ['post', 'pre'], 12)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        metrics: Sequence[str] = ("dirichlet", "rayleigh"),
        stage: str = "both",
        layers: Iterable[int] | None = None,
        *,
        modules: Sequence[torch.nn.Module] | None = None,
        edge_index: Tensor | None = None,
        edge_weight: Tensor | None = None,
        symmetrize: bool = False,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {list(STAGES)}, got {stage!r}")
        self.model = model
        self.metrics = _check_metrics(metrics)
        self.stage = stage
        self.layers = None if layers is None else [int(i) for i in layers]
        self.modules = None if modules is None else list(modules)
        if self.modules is not None and not all(
            isinstance(m, torch.nn.Module) for m in self.modules
        ):
            raise ValueError("modules must be a sequence of torch.nn.Module, one per layer")
        if edge_weight is not None and edge_index is None:
            raise ValueError("edge_weight needs edge_index")
        self.edge_index = edge_index
        self.edge_weight = edge_weight
        self.symmetrize = bool(symmetrize)
        self.records: list[tuple[int, int, str, dict[str, Tensor]]] = []
        self._handles: list[Any] = []
        self._cache: GraphCache | None = None
        self._graph: tuple[Tensor | None, Tensor | None] = (edge_index, edge_weight)
        self._call = -1
        self._active = False

    # -- plan -------------------------------------------------------------------------
    def _sites(self) -> list[_Site]:
        if self.modules is not None:
            return [_Site(i, m, "listed") for i, m in enumerate(self.modules)]
        for finder in LAYER_FINDERS:
            sites = finder(self.model)
            if sites is not None:
                return sites
        raise ValueError(
            f"LayerProbe does not know the layers of {type(self.model).__name__}; pass "
            f"modules=[...] (one module per layer whose input is the pre-activation and "
            f"whose output is the post-activation)"
        )

    def _wanted_layers(self, num_layers: int) -> set[int]:
        if self.layers is None:
            return set(range(num_layers))
        wanted = set()
        for i in self.layers:
            j = i + num_layers if i < 0 else i
            if not 0 <= j < num_layers:
                raise ValueError(f"layers must be in [-{num_layers}, {num_layers}), got {i}")
            wanted.add(j)
        return wanted

    # -- recording --------------------------------------------------------------------
    def _graph_cache(self, num_nodes: int) -> GraphCache:
        edge_index, edge_weight = self._graph
        if edge_index is None:
            raise ValueError(
                "LayerProbe found no edge_index in the forward call (expected "
                "model(x, edge_index, ...)); pass edge_index= to LayerProbe"
            )
        cache = self._cache
        if cache is None or not cache.matches(edge_index, num_nodes, edge_weight, self.symmetrize):
            cache = GraphCache(edge_index, num_nodes, edge_weight, symmetrize=self.symmetrize)
            self._cache = cache
        return cache

    def _record(self, layer: int, stage: str, x: Any) -> None:
        if isinstance(x, tuple):
            x = x[0] if x else None
        if not isinstance(x, Tensor) or x.dim() not in (2, 3) or not x.is_floating_point():
            return
        with torch.no_grad():
            x = x.detach()
            cache = self._graph_cache(x.size(-2))
            values = layer_metrics(x, cache.edge_index, self.metrics, cache=cache)
        self.records.append((self._call, layer, stage, values))

    def _stages(self, kind: str) -> tuple[bool, bool]:
        return self.stage in ("pre", "both"), self.stage in ("post", "both")

    def _on_model_pre(self, module, args, kwargs) -> None:
        self._call += 1
        self._counts = {}
        self._inside = 0
        self._last_conv = -1
        if self.edge_index is None:
            edge_index = kwargs.get("edge_index", args[1] if len(args) > 1 else None)
            edge_weight = kwargs.get("edge_weight", args[2] if len(args) > 2 else None)
            if not isinstance(edge_index, Tensor):
                edge_index = None
            if not (
                isinstance(edge_weight, Tensor)
                and edge_weight.dim() == 1
                and edge_index is not None
                and edge_weight.numel() == edge_index.size(1)
            ):
                edge_weight = None
            self._graph = (edge_index, edge_weight)

    def __enter__(self) -> LayerProbe:
        if self._active:
            raise RuntimeError("LayerProbe is already active (it is not re-entrant)")
        sites = self._sites()
        num_layers = max((s.layer for s in sites), default=-1) + 1
        wanted = self._wanted_layers(num_layers)
        pre, post = self._stages(self.stage)
        self._counts: dict[int, int] = {}
        self._inside = 0
        self._last_conv = -1
        reg = self._handles
        try:
            reg.append(self.model.register_forward_pre_hook(self._on_model_pre, with_kwargs=True))
            self._register(sites, wanted, pre, post)
        except BaseException:
            self._remove()
            raise
        self._active = True
        return self

    def _register(self, sites: list[_Site], wanted: set[int], pre: bool, post: bool) -> None:
        reg = self._handles
        by_module: dict[int, list[_Site]] = {}
        for site in sites:
            by_module.setdefault(id(site.module), []).append(site)
        for group in by_module.values():
            module, kind = group[0].module, group[0].kind
            if kind == "output":
                (site,) = group
                if site.layer in wanted:

                    def out_hook(mod, args, output, layer=site.layer):
                        if pre:
                            self._record(layer, "pre", output)
                        if post:
                            self._record(layer, "post", output)

                    reg.append(module.register_forward_hook(out_hook))
                continue
            if kind == "shared_act":
                self._register_conv_tracking()
                layer_of = self._shared_layer
            else:  # "act" (one site) or "listed" (possibly several positions)
                positions = [s.layer for s in group]
                layer_of = self._make_position_counter(id(module), positions)
            if pre:

                def pre_hook(mod, args, layer_of=layer_of):
                    layer = layer_of(advance=False)
                    if layer is not None and layer in wanted:
                        self._record(layer, "pre", args[0] if args else None)

                reg.append(module.register_forward_pre_hook(pre_hook))

            def post_hook(mod, args, output, layer_of=layer_of):
                layer = layer_of(advance=True)
                if post and layer is not None and layer in wanted:
                    self._record(layer, "post", output)

            reg.append(module.register_forward_hook(post_hook))

    def _make_position_counter(self, key: int, positions: list[int]) -> Callable[..., int | None]:
        def layer_of(advance: bool) -> int | None:
            j = self._counts.get(key, 0)
            if advance:
                self._counts[key] = j + 1
            return positions[j] if j < len(positions) else None

        return layer_of

    def _shared_layer(self, advance: bool) -> int | None:
        if self._inside:
            return None
        return self._last_conv if self._last_conv >= 0 else None

    def _register_conv_tracking(self) -> None:
        if getattr(self, "_tracking", False):
            return
        self._tracking = True
        for i, conv in enumerate(self.model.convs):

            def enter(mod, args):
                self._inside += 1

            def leave(mod, args, output, i=i):
                self._inside -= 1
                self._last_conv = i

            self._handles.append(conv.register_forward_pre_hook(enter))
            self._handles.append(conv.register_forward_hook(leave))

    def _remove(self) -> None:
        handles, self._handles = self._handles, []
        for handle in handles:
            handle.remove()
        self._tracking = False

    def __exit__(self, *exc: Any) -> None:
        try:
            self._remove()
        finally:
            self._active = False

    # -- results ----------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The records as a tidy DataFrame: ``call, layer, stage, metric, value`` (+ ``model``).

        ``call`` numbers the forward passes inside the context (from 0); ``model`` indexes the
        ``K`` models of stacked ``[K, N, C]`` features and is present only for those.
        """
        rows = []
        stacked = False
        for call, layer, stage, values in self.records:
            for name, value in values.items():
                flat = value.detach().to("cpu", torch.float64).reshape(-1).tolist()
                if value.dim() == 0:
                    rows.append((call, layer, stage, name, None, flat[0]))
                else:
                    stacked = True
                    rows.extend((call, layer, stage, name, k, v) for k, v in enumerate(flat))
        frame = pd.DataFrame(rows, columns=["call", "layer", "stage", "metric", "model", "value"])
        if not stacked:
            frame = frame.drop(columns="model")
        else:
            frame["model"] = frame["model"].astype("Int64")
        return frame

    def clear(self) -> None:
        """Forget the records (hooks stay while the context is active)."""
        self.records.clear()

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({type(self.model).__name__}, "
            f"metrics={list(self.metrics)}, stage={self.stage!r}, layers={self.layers})"
        )
