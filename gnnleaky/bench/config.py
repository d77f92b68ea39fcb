"""Sweep and run configurations: frozen dataclasses, YAML in/out, grid expansion, run keys.

A :class:`SweepConfig` is the grid a user writes (YAML preset + CLI overrides); it expands
into :class:`RunConfig` objects, one per trained model. A run is identified by a stable
hash of its full config (:attr:`RunConfig.key`), so a restarted sweep skips what is done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import itertools
import json
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gnnleaky.nn.activation import ACTIVATION_KINDS, activation_kind
from gnnleaky.nn.models import MODELS

__all__ = [
    "ACTIVATION_KINDS",
    "ConfigError",
    "RunConfig",
    "SweepConfig",
    "check_splits",
    "load_config",
    "presets",
]


class ConfigError(ValueError):
    """A sweep configuration is invalid (raised before any run starts)."""


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        return repr(float(value))  # exact, platform-independent text
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def _freeze(params: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((str(k), v) for k, v in (params or {}).items()))


#: Fields added to :class:`RunConfig` after results were first stored: left out of
#: :attr:`RunConfig.key` while at their default, so that every stored run keeps its key.
#: A new field goes here (with a default that reproduces the earlier behaviour).
KEY_OPTIONAL_FIELDS: frozenset[str] = frozenset(
    {
        "norm",
        "residual",
        "jk",
        "dropedge",
        "selection",
        "weight_decay_groups",
        "init",
        "model",
        "task",
        "task_params",
        "positive_slope",
        "train_per_class",
    }
)

#: Norm layers of a sweep (``norms``): name -> (PyG norm name, its arguments). The
#: arguments that depend on the run (``groups`` of DiffGroupNorm: the number of classes)
#: are filled in by :meth:`RunConfig.model_kwargs`.
NORMS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "none": (None, {}),
    "batch_norm": ("batch_norm", {}),
    "layer_norm": ("layer_norm", {"mode": "node"}),
    "pairnorm": ("pairnorm", {}),
    "diffgroup_norm": ("diffgroup_norm", {}),
}

#: Residual connections of a sweep (``residual``): ``False`` none, ``True`` each layer's
#: input added to its output, ``"initial"`` the first layer's output added to every later
#: layer's (see :class:`gnnleaky.nn.LeakyGNN`).
RESIDUALS: tuple[Any, ...] = (False, True, "initial")

#: Jumping-knowledge modes of a sweep (``jk``; ``"none"``: no jumping knowledge).
JK_MODES: tuple[str, ...] = ("none", "last", "cat", "max", "lstm")

#: What selects a run's best epoch (``selection``): ``"val"`` the best validation score
#: (eval mode, ties to the earliest epoch), ``"val_loss"`` the lowest validation loss in
#: eval mode, ``"val_loss_train"`` the lowest validation loss of the training forward
#: pass (train mode, dropout on, weights before the step; the weights after that step
#: are kept).
SELECTIONS: dict[str, tuple[str, str]] = {
    "val": ("val", "max"),
    "val_loss": ("val_loss", "min"),
    "val_loss_train": ("val_loss_train", "min"),
}

#: Weight initialisations (``init``): ``"pyg"`` the layers' own, ``"fan_out_uniform"``
#: every graph convolution's weight and bias drawn from
#: :math:`\mathcal U(-1/\sqrt{F_{out}}, 1/\sqrt{F_{out}})` as in Kipf & Welling's
#: ``GraphConvolution`` (and the GCNII and DropEdge repositories); other layers keep
#: their own initialisation.
INITS: tuple[str, ...] = ("pyg", "fan_out_uniform")

#: Dataset parameters every dataset takes in a sweep (beside :func:`gnnleaky.datasets.load`'s
#: own): ``normalize_features`` divides every feature row by its sum (all-zero rows stay
#: zero), as the Planetoid recipes of Kipf & Welling do.
FEATURE_PARAMS: dict[str, Any] = {"normalize_features": False}

#: Training settings a dataset entry may set for its own runs (``settings``).
DATASET_SETTINGS: tuple[str, ...] = (
    "hidden_channels",
    "lr",
    "weight_decay",
    "weight_decay_groups",
    "dropout",
    "epochs",
    "patience",
    "selection",
    "init",
)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run (one model, one seed).

    Args mirror :class:`SweepConfig`; ``act`` is an :class:`~gnnleaky.nn.ActivationSpec`
    name (``"relu"``, ``"leaky_relu"``, ``"prelu"``, ``"scaled_relu"``,
    ``"scaled_leaky_relu"``, ``"elu"``, ...); ``negative_slope`` is the fixed slope of a
    (scaled) Leaky ReLU or the initial slope of a PReLU (0 for the others);
    ``prelu_mode`` is ``"layer"`` or ``"channel"``; ``positive_slope`` is the
    :math:`\beta` of a scaled ReLU (``None`` for the others); ``train_per_class`` trains
    on a random split with that many training nodes per class, drawn with seed ``split``
    (:func:`gnnleaky.datasets.per_class_split`; ``None``: the dataset's own split
    ``split``).

    Example:
        >>> r = RunConfig(dataset="csbm", num_layers=4, act="leaky_relu", negative_slope=0.2)
        >>> len(r.key), r.key == RunConfig(**r.to_dict()).key
        (16, True)
    """

    dataset: str = "csbm"
    dataset_params: tuple[tuple[str, Any], ...] = ()
    dataset_label: str = ""
    split: int = 0
    conv: str = "gcn"
    num_layers: int = 2
    hidden_channels: int = 64
    act: str = "relu"
    negative_slope: float = 0.0
    prelu_mode: str | None = None
    prelu_bounds: tuple[float, float] | None = None
    dropout: float = 0.5
    lr: float = 0.01
    weight_decay: float = 5e-4
    epochs: int = 200
    patience: int | None = 100
    seed: int = 0
    metrics: tuple[str, ...] = ("dirichlet", "rayleigh", "hf_ratio")
    task: str = "node_classification"
    task_params: tuple[tuple[str, Any], ...] = ()
    positive_slope: float | None = None
    train_per_class: int | None = None
    norm: str = "none"
    residual: bool | str = False
    jk: str = "none"
    dropedge: float = 0.0
    selection: str = "val"
    weight_decay_groups: tuple[tuple[str, float], ...] = ()
    init: str = "pyg"
    model: str | None = None

    def __post_init__(self) -> None:
        # Lists from YAML/JSON become tuples so that configs stay hashable.
        object.__setattr__(self, "dataset_params", _freeze(dict(self.dataset_params)))
        object.__setattr__(self, "task_params", _freeze(dict(self.task_params)))
        object.__setattr__(
            self,
            "weight_decay_groups",
            tuple((str(k), float(v)) for k, v in dict(self.weight_decay_groups).items()),
        )
        object.__setattr__(self, "metrics", tuple(self.metrics))
        if self.prelu_bounds is not None:
            object.__setattr__(self, "prelu_bounds", tuple(float(b) for b in self.prelu_bounds))
        if not self.dataset_label:
            object.__setattr__(self, "dataset_label", self.dataset)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (round-trips through ``RunConfig(**d)``)."""
        d = dataclasses.asdict(self)
        d["dataset_params"] = dict(self.dataset_params)
        d["task_params"] = dict(self.task_params)
        d["metrics"] = list(self.metrics)
        d["prelu_bounds"] = list(self.prelu_bounds) if self.prelu_bounds else None
        d["weight_decay_groups"] = dict(self.weight_decay_groups)
        return d

    @property
    def key(self) -> str:
        """Stable 16-hex-digit hash of the full config (the run's identity in the store)."""
        d = self.to_dict()
        plain = RunConfig().to_dict()  # the defaults as to_dict writes them
        for name in KEY_OPTIONAL_FIELDS:
            if name in d and d[name] == plain[name] and type(d[name]) is type(plain[name]):
                del d[name]
        text = json.dumps(_canonical(d), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def graph_key(self) -> tuple:
        """What identifies the graph and split a run trains on."""
        return (self.dataset, self.dataset_params, self.split)

    @property
    def group_key(self) -> tuple:
        """Runs with equal group keys share graph and shape and can be trained stacked.

        They may differ in activation kind, slope, PReLU mode/bounds and seed.
        """
        return (
            *self.graph_key,
            self.conv,
            self.num_layers,
            self.hidden_channels,
            self.dropout,
            self.lr,
            self.weight_decay,
            self.epochs,
            self.patience,
            self.metrics,
            self.task,
            self.task_params,
            self.train_per_class,
            self.norm,
            self.residual,
            self.jk,
            self.dropedge,
            self.selection,
            self.weight_decay_groups,
            self.init,
            self.model,
        )

    @property
    def activation_label(self) -> str:
        """Short label: ``relu``, ``leaky_relu``, ``prelu_layer`` or ``prelu_channel``."""
        return self.act if self.act != "prelu" else f"prelu_{self.prelu_mode}"

    def model_kwargs(self, in_channels: int, out_channels: int) -> dict[str, Any]:
        """Keyword arguments of :class:`gnnleaky.nn.LeakyGNN` for this run."""
        act_kwargs: dict[str, Any] = {}
        if self.act == "leaky_relu":
            act_kwargs = {"negative_slope": self.negative_slope}
        elif self.act == "prelu":
            act_kwargs = {"mode": self.prelu_mode or "layer", "init": self.negative_slope}
            if self.prelu_bounds is not None:
                act_kwargs["bounds"] = self.prelu_bounds
        elif self.act in ("scaled_relu", "scaled_leaky_relu"):
            if self.positive_slope is None:
                raise ValueError(f"act={self.act!r} needs a positive_slope, got None")
            act_kwargs = {"positive_slope": self.positive_slope}
            if self.act == "scaled_leaky_relu":
                act_kwargs["negative_slope"] = self.negative_slope
        kwargs: dict[str, Any] = {
            "in_channels": in_channels,
            "hidden_channels": self.hidden_channels,
            "num_layers": self.num_layers,
            "out_channels": out_channels,
            "dropout": self.dropout,
            "act": self.act,
            "act_kwargs": act_kwargs,
            "conv": self.conv,
        }
        norm, norm_kwargs = NORMS[self.norm]
        if norm is not None:
            norm_kwargs = dict(norm_kwargs)
            if self.norm == "diffgroup_norm":
                norm_kwargs["groups"] = out_channels  # one group per class, as in its paper
            kwargs.update(norm=norm, norm_kwargs=norm_kwargs)
        if self.residual is not False:
            kwargs["residual"] = self.residual
        if self.jk != "none":
            kwargs["jk"] = self.jk
        return kwargs


def _dataset_entry(entry: Any) -> tuple[str, dict[str, Any], str]:
    """Normalize a dataset entry: ``"cora"`` or ``{name, params, label, settings}``
    (``settings``: see :func:`_dataset_settings`)."""
    if isinstance(entry, str):
        return entry.lower(), {}, entry.lower()
    if isinstance(entry, Mapping):
        unknown = sorted(set(entry) - {"name", "params", "label", "settings"}, key=repr)
        if unknown:
            raise ConfigError(
                f"datasets entry has unknown keys {unknown}; allowed: name, params, label, settings"
            )
        if not isinstance(entry.get("name"), str):
            raise ConfigError(f"datasets entry needs a 'name' string, got {dict(entry)!r}")
        params = entry.get("params") or {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"datasets[{entry['name']}].params must be a mapping")
        name = entry["name"].lower()
        label = entry.get("label") or name
        if not isinstance(label, str):
            raise ConfigError(f"datasets[{name}].label must be a string, got {label!r}")
        _check_label(name, label)
        return name, dict(params), label
    raise ConfigError(f"datasets entries must be a name or a mapping, got {entry!r}")


def _dataset_settings(entry: Any) -> dict[str, Any]:
    """The training settings a dataset entry sets for its own runs (``settings``: a
    mapping of :data:`DATASET_SETTINGS` to values that replace the sweep's)."""
    if not isinstance(entry, Mapping):
        return {}
    settings = entry.get("settings") or {}
    if isinstance(settings, tuple):
        settings = dict(settings)
    if not isinstance(settings, Mapping):
        raise ConfigError(f"datasets[{entry.get('name')}].settings must be a mapping")
    unknown = sorted(set(settings) - set(DATASET_SETTINGS), key=repr)
    if unknown:
        raise ConfigError(
            f"datasets[{entry.get('name')}].settings: unknown keys {unknown}; "
            f"allowed: {list(DATASET_SETTINGS)}"
        )
    return dict(settings)


def _check_label(name: str, label: str) -> None:
    """A label names the report's files and headings: no path separators or control
    characters, and not ``.`` or ``..``."""
    bad = sorted({c for c in label if c in "/\\" or not c.isprintable()})
    if bad or label.strip() in ("", ".", ".."):
        raise ConfigError(
            f"datasets[{name}].label={label!r} cannot name report files: a label may not "
            f"be empty, '.' or '..', nor contain '/', '\\' or control characters"
            + (f" (found {bad})" if bad else "")
        )


def _dataset_params(name: str) -> dict[str, Any]:
    """Parameters a dataset entry may pass to :func:`gnnleaky.datasets.load` (-> default)."""
    import inspect

    from gnnleaky import datasets as ds

    if name == "csbm":
        own = {k: p.default for k, p in inspect.signature(ds.make_csbm).parameters.items()}
        return {**own, **FEATURE_PARAMS}
    return {"split": "public", **FEATURE_PARAMS}


def load_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dataset entry's params split into :func:`gnnleaky.datasets.load`'s own and the
    feature transforms of :data:`FEATURE_PARAMS` (with their defaults filled in)."""
    load = {k: v for k, v in params.items() if k not in FEATURE_PARAMS}
    feats = {k: params.get(k, v) for k, v in FEATURE_PARAMS.items()}
    return load, feats


def check_splits(name: str, params: Mapping[str, Any], label: str, splits: Iterable[int]) -> None:
    """Raise :class:`ConfigError` unless every split index selects one of the dataset's own
    splits (:func:`gnnleaky.datasets.num_splits`; a single-split dataset has split 0 only),
    so that no run repeats another under a new index.

    Example:
        >>> check_splits("texas", {}, "texas", [0, 9])
        >>> try:
        ...     check_splits("texas", {}, "texas", [10])
        ... except ConfigError as err:
        ...     print(err)
        splits: split 10 is not available for dataset 'texas': ... allowed indices 0..9
    """
    from gnnleaky import datasets as ds

    kwargs = {k: v for k, v in load_params(params)[0].items() if k != "split"}
    try:
        count = ds.num_splits(name, params.get("split", "public"), **kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"datasets[{name}]: {err}") from None
    bad = [s for s in splits if s >= count]
    if bad:
        which = f"dataset {label!r}" if label == name else f"dataset {label!r} ({name})"
        hint = ""
        if count == 1 and ds.info(name).family == "planetoid":
            hint = "; params {split: geom-gcn} gives it 10 splits"
        raise ConfigError(
            f"splits: split {bad[0]} is not available for {which}: it has {count} "
            f"split{'s' if count > 1 else ''}, allowed indices 0..{count - 1}{hint}"
        )


@dataclass(frozen=True)
class SweepConfig:
    """A depth x slope x activation x dataset grid, as written in a YAML preset.

    Args:
        name (str): Sweep name (stored with every run).
        datasets (list): Dataset names, or mappings ``{name, params, label}`` (e.g. csbm
            parameters).
        convs (list[str]): Layers: ``gcn``, ``sage``, ``gat``, ``gin``, ``gcnii``.
        depths (list[int]): Numbers of layers.
        activations (list[str]): Kinds of :data:`gnnleaky.nn.ACTIVATION_KINDS`:
            ``relu``, ``leaky_relu``, ``prelu_layer``, ``prelu_channel``, ``scaled_relu``,
            ``scaled_leaky_relu``, ``elu``, ``gelu``, ``tanh``, ``identity`` (aliases
            ``leaky``, ``prelu``, ``scaled``).
        alphas (list[float]): (Scaled) Leaky ReLU slopes (CLI alias of ``negative_slope``).
        prelu_inits (list[float]): Initial PReLU slopes.
        prelu_bounds (list[float], optional): ``[lo, hi]`` for PReLU slopes.
        positive_slopes (list[float]): :math:`\beta > 0` of the scaled ReLUs.
        splits (list[int]): Split indices for datasets with several splits; with
            ``train_per_class`` the seeds of the random splits.
        train_per_class (list[int or None]): Label rates: training nodes per class of a
            random split (``None``: the dataset's own split).
        seeds (list[int]): Seeds; each run is trained once per seed.
        hidden_channels, epochs, lr, weight_decay, dropout, patience: Training settings.
        metrics (list[str]): Per-layer probe metrics stored at init and best epoch
            (empty: none, training only).
        task (str): What each run optimizes: ``node_classification`` (default),
            ``link_prediction``, ``contrastive`` (see :data:`gnnleaky.bench.tasks.TASKS`).
        task_params (dict): The task's parameters (unset ones take the task's defaults).
        norms (list[str]): Norm layers (:data:`NORMS`): ``none``, ``batch_norm``,
            ``layer_norm``, ``pairnorm``, ``diffgroup_norm``.
        residual (list): Residual connections (:data:`RESIDUALS`): ``false``, ``true``,
            ``initial``.
        jk (list[str]): Jumping knowledge (:data:`JK_MODES`): ``none``, ``last``,
            ``cat``, ``max``, ``lstm``.
        dropedge (list[float]): DropEdge rates: the share of edges dropped, drawn anew
            in every training epoch (seeded by the run's seed); evaluation sees the
            whole graph.
        selection (str): What selects the best epoch (:data:`SELECTIONS`).
        weight_decay_groups (dict, optional): Weight decay by parameter name: the first
            part of a parameter's name (e.g. ``convs``, ``lins``) -> its decay; the other
            parameters get ``weight_decay`` (PReLU slopes none).
        init (str): Weight initialisation (:data:`INITS`).
        model (str, optional): ``"package.module:factory"``: a function
            ``factory(run_config, in_channels, out_channels)`` that returns the model
            of a run (any ``torch.nn.Module`` called as ``model(x, edge_index)``)
            instead of the built-in ``conv``.

    Example:
        >>> cfg = SweepConfig(datasets=["csbm"], depths=[2, 4], activations=["relu",
        ...                   "leaky_relu"], alphas=[0.1, 0.2], seeds=[0, 1])
        >>> len(cfg.expand())  # 2 depths x (1 relu + 2 leaky) x 2 seeds
        12
    """

    name: str = "sweep"
    datasets: tuple = ("csbm",)
    convs: tuple[str, ...] = ("gcn",)
    depths: tuple[int, ...] = (2, 4, 8)
    activations: tuple[str, ...] = ("relu", "leaky_relu")
    alphas: tuple[float, ...] = (0.2,)
    prelu_inits: tuple[float, ...] = (0.25,)
    prelu_bounds: tuple[float, float] | None = None
    splits: tuple[int, ...] = (0,)
    seeds: tuple[int, ...] = (0,)
    positive_slopes: tuple[float, ...] = (2.0,)
    train_per_class: tuple[int | None, ...] = (None,)
    hidden_channels: int = 64
    epochs: int = 200
    lr: float = 0.01
    weight_decay: float = 5e-4
    dropout: float = 0.5
    patience: int | None = 100
    metrics: tuple[str, ...] = ("dirichlet", "rayleigh", "hf_ratio")
    task: str = "node_classification"
    task_params: Any = ()
    norms: tuple[str, ...] = ("none",)
    residual: tuple[Any, ...] = (False,)
    jk: tuple[str, ...] = ("none",)
    dropedge: tuple[float, ...] = (0.0,)
    selection: str = "val"
    weight_decay_groups: tuple[tuple[str, float], ...] | None = None
    init: str = "pyg"
    model: str | None = None
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for f, none in (("norms", "none"), ("jk", "none"), ("residual", False)):
            value = getattr(self, f)
            if value is None:
                object.__setattr__(self, f, (none,))
            elif isinstance(value, (list, tuple)):
                object.__setattr__(self, f, tuple(none if v is None else v for v in value))
        if self.weight_decay_groups is not None:
            groups = self.weight_decay_groups
            if isinstance(groups, tuple):
                groups = dict(groups)
            if not isinstance(groups, Mapping):
                raise ConfigError(
                    "weight_decay_groups must be a mapping of parameter-name prefixes "
                    f"to weight decays, got {groups!r}"
                )
            object.__setattr__(self, "weight_decay_groups", _freeze(groups))
        for f in (
            "datasets",
            "convs",
            "depths",
            "activations",
            "alphas",
            "prelu_inits",
            "splits",
            "seeds",
            "metrics",
            "positive_slopes",
            "train_per_class",
            "norms",
            "residual",
            "jk",
            "dropedge",
        ):
            value = getattr(self, f)
            if f != "datasets" and (
                isinstance(value, Mapping)
                or (isinstance(value, Iterable) and not isinstance(value, (str, bytes))
                    and any(isinstance(v, Mapping) for v in value))
            ):  # fmt: skip
                raise ConfigError(f"{f} must be a list of values, got a mapping: {value!r}")
            if (
                isinstance(value, (str, bytes, Mapping))
                or value is None
                or not isinstance(value, Iterable)
            ):
                value = (value,)
            object.__setattr__(
                self, f, tuple(_freeze(v) if isinstance(v, Mapping) else v for v in value)
            )
        if isinstance(self.task_params, Mapping):
            object.__setattr__(self, "task_params", _freeze(self.task_params))
        self.validate()

    # -- validation -------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first problem; runs nothing."""
        from gnnleaky import datasets as ds
        from gnnleaky.spectral import METRICS

        def ints(name: str, values: Iterable[Any], lo: int) -> None:
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                    raise ConfigError(f"{name} must be integers >= {lo}, got {v!r}")

        def floats(
            name: str, values: Iterable[Any], lo: float = -math.inf, hi: float = math.inf
        ) -> None:
            for v in values:
                # abs(v) <= max float: finite, and no OverflowError for huge YAML ints
                if (
                    isinstance(v, bool)
                    or not isinstance(v, (int, float))
                    or not (abs(v) <= sys.float_info.max and lo <= v <= hi)
                ):
                    raise ConfigError(f"{name} must be finite numbers in [{lo}, {hi}], got {v!r}")

        grids = ("datasets", "convs", "depths", "activations", "seeds", "splits", "train_per_class")
        for grid in grids:
            if not getattr(self, grid):
                raise ConfigError(f"{grid} is empty: the grid would have no runs")
        ints("splits", self.splits, 0)
        for entry in self.datasets:
            name, params, label = _dataset_entry(dict(entry) if isinstance(entry, tuple) else entry)
            try:
                ds.info(name)
            except ValueError as err:
                raise ConfigError(f"datasets: {err}") from None
            allowed = _dataset_params(name)
            unknown = sorted(set(params) - set(allowed), key=repr)
            if unknown:
                raise ConfigError(
                    f"datasets[{name}]: unknown params {unknown}; allowed: {sorted(allowed)}"
                )
            for k, v in params.items():  # the type of the default (values: checked at load)
                want = type(allowed[k])
                if want in (int, float):
                    ok = (
                        not isinstance(v, bool)
                        and isinstance(v, int if want is int else (int, float))
                        and abs(v) <= sys.float_info.max
                    )
                else:
                    ok = isinstance(v, want)
                if not ok:
                    kind = {int: "an integer", float: "a finite number", str: "a string"}
                    raise ConfigError(
                        f"datasets[{name}].params.{k} must be "
                        f"{kind.get(want, want.__name__)}, got {v!r}"
                    )
            if None in self.train_per_class:  # random splits take any index
                check_splits(name, params, label, self.splits)
        for c in self.convs:
            if c not in MODELS:  # the layers' own registry
                raise ConfigError(f"convs: unknown conv {c!r}; allowed: {sorted(MODELS)}")
        ints("depths", self.depths, 1)
        ints("seeds", self.seeds, 0)
        kinds = {}
        for a in self.activations:
            try:
                kinds[a] = ACTIVATION_KINDS[activation_kind(a)]
            except ValueError as err:
                raise ConfigError(f"activations: {err}") from None
        for axis, grid in (
            ("negative_slope", "alphas"),
            ("init", "prelu_inits"),
            ("positive_slope", "positive_slopes"),
        ):
            user = [a for a, kind in kinds.items() if axis in kind.slopes]
            if user and not getattr(self, grid):
                raise ConfigError(f"{grid} is empty but {user[0]} is in activations")
        floats("alphas", self.alphas)
        floats("prelu_inits", self.prelu_inits)
        floats("positive_slopes", self.positive_slopes)
        if any(b <= 0 for b in self.positive_slopes):
            raise ConfigError(f"positive_slopes must be > 0, got {list(self.positive_slopes)}")
        ints("train_per_class", [k for k in self.train_per_class if k is not None], 1)
        if self.prelu_bounds is not None:
            b = tuple(self.prelu_bounds)
            if len(b) != 2:
                raise ConfigError(f"prelu_bounds must be [lo, hi], got {list(b)}")
            floats("prelu_bounds", b)
            if b[0] > b[1]:
                raise ConfigError(f"prelu_bounds must have lo <= hi, got {list(b)}")
        for m in self.metrics:
            if not isinstance(m, str) or m not in METRICS:  # the probe's registry
                raise ConfigError(f"metrics: unknown metric {m!r}; allowed: {list(METRICS)}")
        for n in self.norms:
            if n not in NORMS:
                raise ConfigError(f"norms: unknown norm {n!r}; allowed: {list(NORMS)}")
        for r in self.residual:
            if not (isinstance(r, bool) or r == "initial"):
                raise ConfigError(f"residual: got {r!r}; allowed: false, true, initial")
        for j in self.jk:
            if j not in JK_MODES:
                raise ConfigError(f"jk: unknown mode {j!r}; allowed: {list(JK_MODES)}")
        floats("dropedge", self.dropedge, 0.0, 0.99)
        if self.model is None and "gcnii" in self.convs:
            remedies = [
                f"{name}={list(v)}"
                for name, v, off in (
                    ("norms", self.norms, "none"),
                    ("residual", self.residual, False),
                    ("jk", self.jk, "none"),
                )
                if any(x != off or type(x) is not type(off) for x in v)
            ]
            if remedies:
                raise ConfigError(
                    f"convs: gcnii has its own initial residual and no norm or jumping "
                    f"knowledge; {', '.join(remedies)} apply to the other convs only "
                    "(use a separate sweep for them)"
                )
        if self.model is not None:
            resolve_model(self.model)
        _check_settings("", self._settings(), ints, floats)
        for entry in self.datasets:
            entry = dict(entry) if isinstance(entry, tuple) else entry
            settings = _dataset_settings(entry)
            if settings:
                where = f"datasets[{entry['name']}].settings."
                _check_settings(where, {**self._settings(), **settings}, ints, floats)
        self._check_task()

    def _check_task(self) -> None:
        from gnnleaky.bench.tasks import check_fixed, check_task, runner, task_params

        params = self.task_params
        if params is None:
            params = {}
        elif isinstance(params, tuple) and all(
            isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params
        ):
            params = dict(params)
        try:
            normal = check_task(self.task, params)
            spec = runner(self.task)
            if spec.check_datasets is not None:
                names = [
                    _dataset_entry(dict(e) if isinstance(e, tuple) else e)[0] for e in self.datasets
                ]
                spec.check_datasets(names, task_params(self.task, normal))
            check_fixed(
                self.task, {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
            )
            for entry in self.datasets:
                entry = dict(entry) if isinstance(entry, tuple) else entry
                label = _dataset_entry(entry)[2]
                check_fixed(self.task, _dataset_settings(entry), f"datasets[{label}].settings.")
        except ValueError as err:
            raise ConfigError(str(err)) from None
        object.__setattr__(self, "task_params", _freeze(normal))

    def _settings(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            if k != "weight_decay_groups"
            else dict(self.weight_decay_groups or ())
            for k in DATASET_SETTINGS
        }

    # -- expansion --------------------------------------------------------------------
    def _activation_grid(self) -> list[tuple[str, float, str | None, float | None]]:
        """(act, negative slope, PReLU mode, positive slope) of every activation setting."""
        grid: list[tuple[str, float, str | None, float | None]] = []
        for name in dict.fromkeys(activation_kind(a) for a in self.activations):
            kind = ACTIVATION_KINDS[name]
            if "negative_slope" in kind.slopes:
                negative = self.alphas
            elif "init" in kind.slopes:
                negative = self.prelu_inits
            else:
                negative = (0.0,)
            positive = self.positive_slopes if "positive_slope" in kind.slopes else (None,)
            mode = dict(kind.kwargs).get("mode")
            for p in dict.fromkeys(positive):
                grid.extend(
                    (kind.act, float(s), mode, None if p is None else float(p))
                    for s in dict.fromkeys(negative)
                )
        return grid

    def expand(self) -> list[RunConfig]:
        """All runs of the grid, in a deterministic order (duplicates removed)."""
        runs: dict[str, RunConfig] = {}
        for entry, per_class, conv, depth, norm, residual, jk, rate, (
            act,
            slope,
            mode,
            beta,
        ), split, seed in itertools.product(
            self.datasets,
            dict.fromkeys(self.train_per_class),
            self.convs,
            self.depths,
            self.norms,
            dict.fromkeys(self.residual),
            self.jk,
            self.dropedge,
            self._activation_grid(),
            self.splits,
            self.seeds,
        ):
            entry = dict(entry) if isinstance(entry, tuple) else entry
            name, params, label = _dataset_entry(entry)
            settings = {**self._settings(), **_dataset_settings(entry)}
            run = RunConfig(
                dataset=name,
                dataset_params=_freeze(params),
                dataset_label=label,
                split=split,
                conv=conv,
                num_layers=depth,
                hidden_channels=settings["hidden_channels"],
                act=act,
                negative_slope=slope,
                prelu_mode=mode,
                prelu_bounds=tuple(self.prelu_bounds)
                if (act == "prelu" and self.prelu_bounds)
                else None,
                dropout=float(settings["dropout"]),
                lr=float(settings["lr"]),
                weight_decay=float(settings["weight_decay"]),
                epochs=settings["epochs"],
                patience=settings["patience"],
                seed=seed,
                metrics=self.metrics,
                task=self.task,
                task_params=self.task_params,
                positive_slope=beta,
                train_per_class=per_class,
                norm=norm,
                residual=residual,
                jk=jk,
                dropedge=float(rate),
                selection=settings["selection"],
                weight_decay_groups=_freeze(settings["weight_decay_groups"]),
                init=settings["init"],
                model=self.model,
            )
            runs.setdefault(run.key, run)
        return list(runs.values())

    # -- YAML -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepConfig:
        """Build from a mapping; unknown keys and wrong types raise :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a sweep config must be a mapping, got {type(data).__name__}")
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - allowed - {"alpha", "negative_slope"}, key=repr)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; allowed: {sorted(allowed)}")
        data = dict(data)
        for alias in ("alpha", "negative_slope"):  # CLI/YAML aliases of alphas
            if alias in data:
                data["alphas"] = data.pop(alias)
        try:
            return cls(**data)
        except TypeError as err:
            raise ConfigError(f"invalid sweep config: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-ready dict."""
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = [
                    dict(x) if isinstance(x, tuple) and x and isinstance(x[0], tuple) else x
                    for x in v
                ]
        d["prelu_bounds"] = list(self.prelu_bounds) if self.prelu_bounds else None
        d["task_params"] = dict(self.task_params)
        d["weight_decay_groups"] = (
            None if self.weight_decay_groups is None else dict(self.weight_decay_groups)
        )
        return d

    def to_yaml(self) -> str:
        """YAML text that :func:`load_config` reads back to an equal config."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, **overrides: Any) -> SweepConfig:
        """A copy with some fields overridden (``None`` values are ignored)."""
        merged = {**self.to_dict(), **{k: v for k, v in overrides.items() if v is not None}}
        return SweepConfig.from_dict(merged)


def _check_settings(where: str, settings: Mapping[str, Any], ints: Any, floats: Any) -> None:
    """Check the training settings (:data:`DATASET_SETTINGS`) of a sweep or of one of its
    dataset entries (``where`` prefixes the names in the errors)."""
    ints(f"{where}hidden_channels", [settings["hidden_channels"]], 1)
    ints(f"{where}epochs", [settings["epochs"]], 1)
    if settings["patience"] is not None:
        ints(f"{where}patience", [settings["patience"]], 1)
    floats(f"{where}lr", [settings["lr"]], 0.0)
    if settings["lr"] <= 0:
        raise ConfigError(f"{where}lr must be > 0, got {settings['lr']}")
    floats(f"{where}weight_decay", [settings["weight_decay"]], 0.0)
    floats(f"{where}dropout", [settings["dropout"]], 0.0, 0.99)
    if settings["selection"] not in SELECTIONS:
        raise ConfigError(
            f"{where}selection: unknown rule {settings['selection']!r}; allowed: {list(SELECTIONS)}"
        )
    if settings["init"] not in INITS:
        raise ConfigError(
            f"{where}init: unknown initialisation {settings['init']!r}; allowed: {list(INITS)}"
        )
    groups = settings["weight_decay_groups"]
    if not isinstance(groups, Mapping):
        raise ConfigError(f"{where}weight_decay_groups must be a mapping, got {groups!r}")
    for prefix, decay in groups.items():
        if not isinstance(prefix, str) or not prefix:
            raise ConfigError(
                f"{where}weight_decay_groups: keys must be parameter-name prefixes "
                f"(e.g. convs), got {prefix!r}"
            )
        floats(f"{where}weight_decay_groups.{prefix}", [decay], 0.0)


def resolve_model(spec: str) -> Any:
    """The model factory named by ``"package.module:factory"``; raises
    :class:`ConfigError` if it cannot be imported or is not callable.

    Example:
        >>> resolve_model("gnnleaky.nn:GCN").__name__
        'GCN'
    """
    import importlib

    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ConfigError(f"model must be 'package.module:factory', got {spec!r}")
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # an import can fail in any way
        raise ConfigError(
            f"model {spec!r}: cannot import module {module_name!r}: {type(err).__name__}: {err}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"model {spec!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"model {spec!r}: {attr!r} is not callable")
    return obj


def presets() -> list[str]:
    """The names of the sweep presets shipped with the package.

    Example:
        >>> "quick" in presets()
        True
    """
    return sorted(p.name[:-5] for p in _presets().iterdir() if p.name.endswith(".yaml"))


def _presets() -> Any:
    return importlib.resources.files("gnnleaky.bench") / "presets"


def load_config(source: str | Path | Mapping[str, Any]) -> SweepConfig:
    """Load a :class:`SweepConfig` from a YAML file, a preset name, or a mapping.

    A bare name such as ``"quick"`` that is not a file resolves to the preset of that
    name shipped with the package (``gnnleaky/bench/presets/quick.yaml``, see
    :func:`presets`). YAML is read with ``yaml.safe_load`` (no arbitrary objects).
    """
    if isinstance(source, Mapping):
        return SweepConfig.from_dict(source)
    path = Path(source)
    if path.is_file():
        where: Any = path
    elif path.suffix == "" and str(source) in presets():
        where = _presets() / f"{source}.yaml"
    else:
        raise ConfigError(f"config file {str(source)!r} not found; presets: {presets()}")
    try:
        data = yaml.safe_load(where.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return SweepConfig.from_dict(data or {})
