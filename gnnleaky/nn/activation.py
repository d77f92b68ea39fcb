r"""Activation specs, one factory, and helpers for negative slopes.

Every GNN layer in gnnleaky owns its activation. The kinds are resolved by name
through :data:`ACTIVATIONS`:

* ``"relu"``: :math:`\phi(x) = \max(0, x)` (slope 0 on the negative half).
* ``"leaky_relu"``: :math:`\phi(x) = \max(0, x) + \alpha \min(0, x)` with a fixed
  ``negative_slope`` :math:`\alpha`.
* ``"prelu"``: the same with a learned :math:`\alpha`, one per layer
  (``mode="layer"``) or one per channel (``mode="channel"``), optionally kept
  inside ``bounds=(lo, hi)`` by a parametrization.
* ``"scaled_relu"`` / ``"scaled_leaky_relu"``: :math:`\phi(x) = \beta \max(0, x) +
  \alpha \min(0, x)` with a fixed ``positive_slope`` :math:`\beta` (e.g. :math:`\beta > 1`,
  as Kelesis, Fotakis & Paliouras (2023) propose against oversmoothing) and a fixed
  ``negative_slope`` :math:`\alpha` (0 for ``scaled_relu``).
* ``"identity"``: :math:`\phi(x) = x` (the linear limit :math:`\alpha = 1`).

:data:`ACTIVATION_KINDS` names the settings a sweep crosses (``prelu_layer`` and
``prelu_channel`` are ``prelu`` with a mode; ``elu``, ``gelu``, ``tanh`` are PyG's) and
which slopes each one spans; :func:`activation_kind` resolves a name or alias to one.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils import parametrize
from torch_geometric.nn.resolver import activation_resolver

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_KINDS",
    "ActivationKind",
    "ActivationSpec",
    "FunctionActivation",
    "NoActivation",
    "PReLU",
    "ScaledLeakyReLU",
    "SlopeBounds",
    "activation",
    "activation_kind",
    "is_slope_parameter",
    "param_groups",
    "slope_l1",
    "slope_parameters",
    "slopes",
]

PRELU_MODES = ("layer", "channel")


class SlopeBounds(torch.nn.Module):
    r"""Parametrization that keeps a slope inside ``[lo, hi]`` whatever the optimizer does.

    The free parameter :math:`\theta` is mapped to the slope by

    .. math::
        \alpha = \begin{cases}
            lo + (hi - lo)\,\sigma(\theta) & lo, hi \text{ finite} \\
            lo + \operatorname{softplus}(\theta) & hi = +\infty \\
            hi - \operatorname{softplus}(\theta) & lo = -\infty
        \end{cases}

    so every value of :math:`\theta` (including after a huge gradient step) gives a
    slope inside the interval. :meth:`right_inverse` maps a slope back to
    :math:`\theta`, so assigning ``module.weight = value`` works as usual.

    Args:
        lo (float): Lower bound (may be ``-inf``).
        hi (float): Upper bound (may be ``+inf``), ``lo <= hi``.

    Example:
        >>> b = SlopeBounds(0.0, 1.0)
        >>> float(b(torch.tensor([-1e6, 0.0, 1e6])).min()) >= 0.0
        True
    """

    def __init__(self, lo: float, hi: float) -> None:
        super().__init__()
        self.lo = float(lo)
        self.hi = float(hi)

    def forward(self, theta: Tensor) -> Tensor:
        lo, hi = self.lo, self.hi
        if lo == hi:
            return torch.full_like(theta, lo) + 0.0 * theta
        if math.isfinite(lo) and math.isfinite(hi):
            return lo + (hi - lo) * torch.sigmoid(theta)
        if math.isfinite(lo):
            return lo + F.softplus(theta)
        if math.isfinite(hi):
            return hi - F.softplus(theta)
        return theta

    @torch.no_grad()
    def right_inverse(self, value: Tensor) -> Tensor:
        lo, hi = self.lo, self.hi
        if lo == hi:
            return torch.zeros_like(value)
        # Values on a finite edge are mapped just inside it.
        eps = 1e-6 * (hi - lo if math.isfinite(hi - lo) else 1.0)
        if math.isfinite(lo) and math.isfinite(hi):
            u = ((value - lo) / (hi - lo)).clamp(eps, 1 - eps)
            return torch.log(u) - torch.log1p(-u)
        if math.isfinite(lo):
            d = (value - lo).clamp_min(eps)
            return d + torch.log(-torch.expm1(-d))  # inverse softplus
        if math.isfinite(hi):
            d = (hi - value).clamp_min(eps)
            return d + torch.log(-torch.expm1(-d))
        return value.clone()

    def extra_repr(self) -> str:
        return f"lo={self.lo}, hi={self.hi}"


class PReLU(torch.nn.PReLU):
    r"""PReLU with a layer-wise or channel-wise learned slope and optional bounds.

    .. math::
        \phi(x)_c = \max(0, x_c) + \alpha_c \min(0, x_c)

    with one :math:`\alpha` for the whole layer (``mode="layer"``) or one per channel
    (``mode="channel"``, channels on dimension 1 as in PyG's ``[N, C]`` node features).
    The slope tensor is ``self.weight`` (as in :class:`torch.nn.PReLU`); with ``bounds``
    it is computed through :class:`SlopeBounds` and can never leave the interval.

    Args:
        mode (str, optional): ``"layer"`` or ``"channel"``. (default: ``"layer"``)
        channels (int, optional): Number of channels; required for ``mode="channel"``.
        init (float, optional): Initial slope. (default: ``0.25``, as in torch)
        bounds (tuple, optional): ``(lo, hi)`` interval for the slope, e.g. ``(0, 1)``,
            the regime in which the activation is 1-Lipschitz. (default: ``None``)

    Shapes:
        - **input:** :math:`(N, C)` or any shape with channels on dimension 1
        - **output:** same as input

    Example:
        >>> act = PReLU(mode="channel", channels=4, init=0.1, bounds=(0.0, 1.0))
        >>> act.weight.shape
        torch.Size([4])
        >>> act(torch.tensor([[-1.0, -2.0, 3.0, 0.0]])).tolist()[0][:2]  # doctest: +ELLIPSIS
        [-0.1..., -0.2...]
    """

    def __init__(
        self,
        mode: str = "layer",
        channels: int | None = None,
        init: float = 0.25,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        if mode not in PRELU_MODES:
            raise ValueError(f"mode must be one of {PRELU_MODES}, got {mode!r}")
        if mode == "channel":
            if channels is None or int(channels) < 1:
                raise ValueError(
                    f"channels must be a positive int for mode='channel', got {channels!r}"
                )
            num_parameters = int(channels)
        else:
            num_parameters = 1
        init = _finite_float("init", init)
        bounds = _check_bounds(bounds)
        if bounds is not None and not (bounds[0] <= init <= bounds[1]):
            raise ValueError(f"init={init} must lie inside bounds={bounds}")
        super().__init__(num_parameters=num_parameters, init=init)
        self.mode = mode
        self.bounds = bounds
        if bounds is not None:
            parametrize.register_parametrization(self, "weight", SlopeBounds(*bounds))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch.nn.PReLU.__init__ calls this before the parametrization exists.
        with torch.no_grad():
            if parametrize.is_parametrized(self, "weight"):
                self.weight = torch.full((self.num_parameters,), float(self.init))
            else:
                self.weight.fill_(float(self.init))

    def extra_repr(self) -> str:
        s = f"mode={self.mode!r}, num_parameters={self.num_parameters}, init={self.init}"
        return s + (f", bounds={self.bounds}" if self.bounds is not None else "")

    def __reduce_ex__(self, protocol: int) -> tuple:
        # torch refuses to pickle parametrized modules; a bounded PReLU is rebuilt from its
        # arguments and its state, so ``torch.save(model)`` works as for any module.
        return (
            _rebuild_prelu,
            (self.mode, self.num_parameters, self.init, self.bounds, self.training),
            self.state_dict(keep_vars=True),
        )

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict) and "_parameters" in state:  # plain module state
            super().__setstate__(state)
            return
        with torch.no_grad():
            self.load_state_dict(state)


def _rebuild_prelu(
    mode: str, num_parameters: int, init: float, bounds: Any, training: bool
) -> PReLU:
    m = PReLU(mode=mode, channels=num_parameters, init=init, bounds=bounds)
    return m.train(training)


def _finite_float(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite float, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite float, got {value!r}")
    return v


def _check_bounds(bounds: Any) -> tuple[float, float] | None:
    if bounds is None:
        return None
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (lo, hi) of floats, got {bounds!r}") from None
    if math.isnan(lo) or math.isnan(hi):
        raise ValueError(f"bounds must not contain NaN, got {bounds!r}")
    if lo > hi:
        raise ValueError(f"bounds must satisfy lo <= hi, got lo={lo} > hi={hi}")
    return (lo, hi)


class ScaledLeakyReLU(torch.nn.Module):
    r"""ReLU with a fixed slope on each side.

    .. math::
        \phi(x) = \beta \max(0, x) + \alpha \min(0, x)

    ``positive_slope`` :math:`\beta > 1` scales the positive half (the activation of
    Kelesis, Fotakis & Paliouras, 2023, "Reducing oversmoothing in GNNs by changing the
    activation function"); ``negative_slope`` :math:`\alpha` is Leaky ReLU's. It is not a
    subclass of :class:`torch.nn.ReLU` or :class:`torch.nn.LeakyReLU`, so no code that
    treats those (the stacked engine among them) mistakes it for one.

    Args:
        positive_slope (float, optional): :math:`\beta`, > 0. (default: ``1.0``)
        negative_slope (float, optional): :math:`\alpha`. (default: ``0.0``)

    Example:
        >>> ScaledLeakyReLU(2.0, 0.1)(torch.tensor([-1.0, 0.0, 3.0])).tolist()
        [-0.10000000149011612, 0.0, 6.0]
    """

    def __init__(self, positive_slope: float = 1.0, negative_slope: float = 0.0) -> None:
        super().__init__()
        self.positive_slope = _finite_float("positive_slope", positive_slope)
        if self.positive_slope <= 0:
            raise ValueError(f"positive_slope must be > 0, got {positive_slope!r}")
        self.negative_slope = _finite_float("negative_slope", negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return torch.where(x > 0, self.positive_slope * x, self.negative_slope * x)

    def extra_repr(self) -> str:
        return f"positive_slope={self.positive_slope}, negative_slope={self.negative_slope}"


def _relu() -> torch.nn.Module:
    return torch.nn.ReLU()


def _leaky_relu(negative_slope: float = 0.01) -> torch.nn.Module:
    return torch.nn.LeakyReLU(_finite_float("negative_slope", negative_slope))


def _prelu(
    mode: str | None = None,
    init: float = 0.25,
    bounds: tuple[float, float] | None = None,
    num_parameters: int | None = None,
    channels: int | None = None,
) -> torch.nn.Module:
    if num_parameters is not None:
        if (
            isinstance(num_parameters, bool)
            or not isinstance(num_parameters, int)
            or num_parameters < 1
        ):
            raise ValueError(f"num_parameters must be a positive int, got {num_parameters!r}")
        implied = "layer" if num_parameters == 1 else "channel"
        if mode is not None and mode != implied:
            raise ValueError(
                f"act_kwargs mode={mode!r} contradicts num_parameters={num_parameters} "
                f"(1 means mode='layer', the layer width means mode='channel')"
            )
        if num_parameters != 1 and channels is not None and num_parameters != channels:
            raise ValueError(
                f"num_parameters={num_parameters} must be 1 or the width of the features the "
                f"activation sees ({channels})"
            )
        mode = implied
        channels = num_parameters if num_parameters != 1 else channels
    return PReLU(mode=mode or "layer", channels=channels, init=init, bounds=bounds)


def _identity() -> torch.nn.Module:
    return torch.nn.Identity()


def _scaled_relu(positive_slope: float = 2.0) -> torch.nn.Module:
    return ScaledLeakyReLU(positive_slope, 0.0)


def _scaled_leaky_relu(
    positive_slope: float = 2.0, negative_slope: float = 0.01
) -> torch.nn.Module:
    return ScaledLeakyReLU(positive_slope, negative_slope)


#: Registry of gnnleaky's activation kinds: name -> (builder, accepted keyword arguments).
#: Any other name PyG's :func:`~torch_geometric.nn.resolver.activation_resolver` knows
#: (``"elu"``, ``"gelu"``, ``"tanh"``, ...) is resolved by PyG.
ACTIVATIONS: dict[str, tuple[Callable[..., torch.nn.Module], tuple[str, ...]]] = {
    "relu": (_relu, ()),
    "leaky_relu": (_leaky_relu, ("negative_slope",)),
    "prelu": (_prelu, ("mode", "init", "bounds", "num_parameters")),
    "scaled_relu": (_scaled_relu, ("positive_slope",)),
    "scaled_leaky_relu": (_scaled_leaky_relu, ("positive_slope", "negative_slope")),
    "identity": (_identity, ()),
}
_ALIASES = {"leaky": "leaky_relu", "linear": "identity"}


@dataclass(frozen=True)
class ActivationKind:
    """A named activation setting of a sweep: the :class:`ActivationSpec` name ``act``,
    fixed keyword arguments (``kwargs``, e.g. a PReLU ``mode``) and the slopes it spans
    (``slopes``): ``"negative_slope"`` (a fixed Leaky ReLU slope, the sweep's ``alphas``),
    ``"init"`` (a PReLU's initial slope, ``prelu_inits``) and ``"positive_slope"``
    (:math:`\beta`, ``positive_slopes``)."""

    act: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    slopes: tuple[str, ...] = ()


#: The activation settings a sweep crosses, by name (the one registry of them; the sweep's
#: ``activations`` list and the CLI read it). ``elu``, ``gelu`` and ``tanh`` are controls
#: without a slope, built by PyG's resolver.
ACTIVATION_KINDS: dict[str, ActivationKind] = {
    "relu": ActivationKind("relu"),
    "leaky_relu": ActivationKind("leaky_relu", slopes=("negative_slope",)),
    "prelu_layer": ActivationKind("prelu", (("mode", "layer"),), ("init",)),
    "prelu_channel": ActivationKind("prelu", (("mode", "channel"),), ("init",)),
    "scaled_relu": ActivationKind("scaled_relu", slopes=("positive_slope",)),
    "scaled_leaky_relu": ActivationKind(
        "scaled_leaky_relu", slopes=("positive_slope", "negative_slope")
    ),
    "elu": ActivationKind("elu"),
    "gelu": ActivationKind("gelu"),
    "tanh": ActivationKind("tanh"),
    "identity": ActivationKind("identity"),
}
# Other spellings of a kind (``prelu`` alone is layer-wise, as ActivationSpec("prelu")).
_KIND_ALIASES = {"prelu": "prelu_layer", "scaled": "scaled_relu", **_ALIASES}


def _normalize(name: str) -> str:
    # The spelling rule of PyG's resolvers: case, '-', '_' and spaces do not matter.
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


_LOOKUP = {_normalize(k): k for k in ACTIVATIONS} | {_normalize(k): v for k, v in _ALIASES.items()}
_KIND_LOOKUP = {_normalize(k): k for k in ACTIVATION_KINDS} | {
    _normalize(k): v for k, v in _KIND_ALIASES.items()
}


def activation_kind(name: str) -> str:
    """The :data:`ACTIVATION_KINDS` name of ``name`` (case, ``-``, ``_`` and spaces do not
    matter; aliases: ``leaky``, ``prelu`` (layer-wise), ``scaled``, ``linear``).

    Example:
        >>> activation_kind("prelu"), activation_kind("PReLU-channel"), activation_kind("leaky")
        ('prelu_layer', 'prelu_channel', 'leaky_relu')
    """
    key = _KIND_LOOKUP.get(_normalize(name)) if isinstance(name, str) else None
    if key is None:
        raise ValueError(
            f"unknown activation kind {name!r}; allowed: {list(ACTIVATION_KINDS)} "
            f"(aliases: {sorted(_KIND_ALIASES)})"
        )
    return key


class FunctionActivation(torch.nn.Module):
    """A plain function (``torch.relu_``, ``F.elu``, ...) as an activation module."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return getattr(self.fn, "__name__", repr(self.fn))


class NoActivation(torch.nn.Identity):
    """Placeholder in ``acts`` for a layer that has no activation (the output layer)."""


class ActivationSpec:
    r"""What ``act`` and ``act_kwargs`` ask for, resolved once; :meth:`build` makes a fresh
    module for each layer.

    ``act`` is one of :data:`ACTIVATIONS` (``"relu"``, ``"leaky_relu"``, ``"prelu"`` with
    ``mode``/``init``/``bounds`` or torch's ``num_parameters``, ``"identity"``), any name
    or callable PyG's :func:`~torch_geometric.nn.resolver.activation_resolver` accepts
    (``"elu"``, ``"gelu"``, ``"tanh"``, ``torch.relu_``, a module, ...), or ``None``
    (identity, as PyG's "no activation"). Modules are deep-copied and functions wrapped
    in :class:`FunctionActivation`, so no two layers share an instance.

    Example:
        >>> spec = ActivationSpec("prelu", {"mode": "channel", "init": 0.1})
        >>> a, b = spec.build(4), spec.build(4)
        >>> a.weight.shape, a.weight is b.weight
        (torch.Size([4]), False)
        >>> ActivationSpec("elu").build(4)
        ELU(alpha=1.0)
    """

    def __init__(self, act: Any = "relu", act_kwargs: dict[str, Any] | None = None) -> None:
        if act_kwargs is not None and not isinstance(act_kwargs, dict):
            raise ValueError(f"act_kwargs must be a dict or None, got {act_kwargs!r}")
        kwargs = dict(act_kwargs or {})
        self.act = act
        self.kwargs = kwargs
        self.name: str | None = None  # gnnleaky kind, if any
        if act is None:
            act = "identity"
        if isinstance(act, str):
            key = _LOOKUP.get(_normalize(act))
            kind = ACTIVATION_KINDS.get(_KIND_LOOKUP.get(_normalize(act), ""))
            if key is None and kind is not None and kind.act in ACTIVATIONS:
                # a sweep kind such as "prelu_channel": its kind with the fixed arguments
                for k, v in kind.kwargs:
                    if kwargs.setdefault(k, v) != v:
                        raise ValueError(
                            f"act_kwargs {k}={kwargs[k]!r} contradicts act={act!r} ({k}={v!r})"
                        )
                self.kwargs = kwargs
                key = kind.act
            if key is not None:
                _, allowed = ACTIVATIONS[key]
                unknown = sorted(set(kwargs) - set(allowed))
                if unknown:
                    raise ValueError(
                        f"act_kwargs {unknown} are not accepted by act={key!r}; "
                        f"allowed: {list(allowed)}"
                    )
                self.name = key
        elif isinstance(act, torch.nn.Module) or callable(act):
            if kwargs:
                raise ValueError(
                    f"act_kwargs {sorted(kwargs)} cannot be applied to an activation "
                    f"{type(act).__name__}; pass them with act given by name"
                )
        else:
            raise ValueError(
                f"act must be a name (one of {sorted(ACTIVATIONS)} or any torch.nn "
                f"activation, e.g. 'elu'), a module, a function or None, got {act!r}"
            )
        # Every error surfaces here, not at the first layer (a channel-wise PReLU is
        # tried on one channel: its width is only known per layer).
        channel_wise = self.name == "prelu" and kwargs.get("mode") == "channel"
        self.build(1 if channel_wise and kwargs.get("num_parameters") is None else None)

    @property
    def label(self) -> str:
        """A short name: the gnnleaky kind, the module's class or the function's name."""
        if self.name is not None:
            return self.name
        if isinstance(self.act, str):
            return self.act
        if isinstance(self.act, torch.nn.Module):
            return type(self.act).__name__
        return getattr(self.act, "__name__", type(self.act).__name__)

    def build(self, channels: int | None) -> torch.nn.Module:
        """A fresh activation for features of width ``channels``."""
        if self.name is not None:
            builder, _ = ACTIVATIONS[self.name]
            kwargs = dict(self.kwargs)
            if self.name == "prelu":
                kwargs["channels"] = channels
            return builder(**kwargs)
        act = "identity" if self.act is None else self.act
        if isinstance(act, torch.nn.Module):
            return copy.deepcopy(act)
        if isinstance(act, str):
            try:
                out = activation_resolver(act, **self.kwargs)
            except (ValueError, TypeError) as err:
                raise ValueError(
                    f"act={act!r} with act_kwargs={self.kwargs} cannot be resolved: act must "
                    f"be one of {sorted(ACTIVATIONS)} or a torch.nn activation name "
                    f"PyG resolves ({err})"
                ) from None
            return out if isinstance(out, torch.nn.Module) else FunctionActivation(out)
        return FunctionActivation(act)

    def __repr__(self) -> str:
        return f"ActivationSpec({self.label!r}, {self.kwargs})"


def activation(
    act: str | torch.nn.Module | Callable | None,
    channels: int | None = None,
    **kwargs: Any,
) -> torch.nn.Module:
    r"""Build a fresh activation module from a name (or copy a given module).

    Args:
        act (str or torch.nn.Module or callable or None): One of :data:`ACTIVATIONS`
            (``"relu"``, ``"leaky_relu"``, ``"prelu"``, ``"identity"``), any activation PyG
            resolves (``"elu"``, ``"gelu"``, ...), a module (deep-copied so that each caller
            owns its own instance) or a function. ``None`` means identity.
        channels (int, optional): Width of the features the activation sees; used by
            ``prelu`` with ``mode="channel"``.
        **kwargs: Arguments of the kind: ``negative_slope`` for ``leaky_relu``;
            ``mode``, ``init``, ``bounds`` (or torch's ``num_parameters``) for ``prelu``.

    Example:
        >>> activation("leaky_relu", negative_slope=0.2)
        LeakyReLU(negative_slope=0.2)
        >>> activation("prelu", channels=8, mode="channel", init=0.1).weight.shape
        torch.Size([8])
    """
    return ActivationSpec(act, kwargs).build(channels)


def _is_prelu(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.PReLU)


def slopes(model: torch.nn.Module) -> OrderedDict[str, Tensor]:
    r"""Every activation's negative slope, keyed by the module's qualified name.

    ReLU gives ``0``, Leaky ReLU (scaled or not) its fixed ``negative_slope``, identity
    ``1`` and PReLU its current (bounded) slope tensor, which keeps its autograd graph so
    it can enter a loss. Other modules are skipped.

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> m = LeakyGNN(4, 8, 3, 2, act="prelu", act_kwargs={"init": 0.1})
        >>> {k: round(float(v), 2) for k, v in slopes(m).items()}
        {'acts.0': 0.1, 'acts.1': 0.1}
    """
    out: OrderedDict[str, Tensor] = OrderedDict()
    for name, module in model.named_modules():
        if _is_prelu(module):
            out[name] = module.weight
        elif isinstance(module, (torch.nn.LeakyReLU, ScaledLeakyReLU)):
            out[name] = torch.tensor([module.negative_slope])
        elif isinstance(module, torch.nn.ReLU):
            out[name] = torch.zeros(1)
        elif (
            type(module) is torch.nn.Identity
            and name.rpartition(".")[0].rpartition(".")[2] == "acts"
        ):
            out[name] = torch.ones(1)
    return out


def slope_l1(model: torch.nn.Module) -> Tensor:
    r"""L1 penalty over all learned (PReLU) slopes of a model.

    .. math::
        \mathcal{R}(\theta) = \sum_{\ell} \sum_{c} |\alpha_{\ell, c}|

    Adding ``lam * slope_l1(model)`` to the loss pushes slopes to 0, turning units
    into ReLUs where the data does not need the negative half (slope gating).

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> m = LeakyGNN(4, 8, 3, 2, act="prelu", act_kwargs={"init": -0.5})
        >>> float(slope_l1(m))
        1.0
    """
    terms = [m.weight.abs().sum() for m in model.modules() if _is_prelu(m)]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()


def slope_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The free parameters behind every PReLU slope (the raw ones when bounded)."""
    seen: dict[int, torch.nn.Parameter] = {}
    for m in model.modules():
        if _is_prelu(m):
            for p in m.parameters():
                seen.setdefault(id(p), p)
    return list(seen.values())


def is_slope_parameter(model: torch.nn.Module) -> Callable[[torch.nn.Parameter], bool]:
    """A predicate telling whether a parameter of ``model`` is a slope parameter."""
    ids = {id(p) for p in slope_parameters(model)}
    return lambda p: id(p) in ids


def param_groups(
    model: torch.nn.Module,
    weight_decay: float = 0.0,
    slope_weight_decay: float = 0.0,
    params: Iterable[torch.nn.Parameter] | None = None,
) -> list[dict[str, Any]]:
    r"""Optimizer parameter groups that exempt PReLU slopes from weight decay.

    Weight decay pulls slopes to 0 (towards ReLU) as a side effect of regularizing
    weights; keep it off the slopes unless asked for.

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> m = LeakyGNN(4, 8, 3, 2, act="prelu")
        >>> opt = torch.optim.Adam(param_groups(m, weight_decay=5e-4), lr=0.01)
        >>> [g["weight_decay"] for g in opt.param_groups]
        [0.0005, 0.0]
    """
    _finite_float("weight_decay", weight_decay)
    is_slope = is_slope_parameter(model)
    params = list(model.parameters() if params is None else params)
    rest = [p for p in params if not is_slope(p)]
    slope = [p for p in params if is_slope(p)]
    groups = [{"params": rest, "weight_decay": float(weight_decay)}]
    if slope:
        groups.append({"params": slope, "weight_decay": float(slope_weight_decay)})
    return groups
