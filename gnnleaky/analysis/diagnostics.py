r"""Per-layer diagnostics of the negative slope on a model and a graph.

* :func:`dead_units`: units that are never positive on any node, per layer, and the
  share of (node, unit) entries on the negative half;
* :func:`gradient_norms`: gradient norm of every layer's weights;
* :func:`slope_trajectories`: PReLU slopes after every training epoch;
* :func:`preactivation_skewness`: skewness of each layer's pre-activations next to its
  (learned) slope;
* :func:`slope_drift`: how learned slopes move when the node features are shifted, a
  data-centric monitor.

All functions take a :class:`~gnnleaky.nn.LeakyGNN` (anything whose forward accepts
``return_hidden=True`` and has ``acts`` and ``convs``) and return tidy DataFrames.
"""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from gnnleaky._validation import check_graph
from gnnleaky.analysis._common import check_finite, eval_mode
from gnnleaky.analysis.training import SlopeRecorder, fit_node_classifier, slope_table
from gnnleaky.nn.activation import slopes

__all__ = [
    "dead_units",
    "gradient_norms",
    "preactivation_skewness",
    "slope_drift",
    "slope_trajectories",
]


def _hidden(
    model: torch.nn.Module, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None
) -> list[Tensor]:
    if not hasattr(model, "acts") or not hasattr(model, "convs"):
        raise ValueError(
            f"model must be a LeakyGNN (with .acts and .convs), got {type(model).__name__}"
        )
    check_graph(x, edge_index, edge_weight)
    with torch.no_grad(), eval_mode(model):
        _, hidden = model.forward_hidden(x, edge_index, edge_weight)
    # Only activated layers: the output layer has no activation.
    return [h.detach() for h in hidden.pre[: model.num_activations]]


def _act_slopes(model: torch.nn.Module) -> list[Tensor]:
    table = slopes(model)
    nan = torch.tensor([float("nan")], dtype=torch.float64)
    return [
        table[f"acts.{i}"].detach().double().flatten() if f"acts.{i}" in table else nan
        for i in range(model.num_activations)
    ]


def dead_units(
    model: torch.nn.Module,
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    *,
    tol: float = 0.0,
) -> pd.DataFrame:
    r"""Dead units and silent entries per activated layer.

    A unit (channel) :math:`c` of layer :math:`\ell` is *dead* when its pre-activation
    is never positive, :math:`\max_i z^{(\ell)}_{ic} \le \text{tol}`: behind a ReLU it
    outputs 0 on every node and passes no gradient; behind a Leaky ReLU it only passes
    the :math:`\alpha`-scaled negative half. An entry :math:`(i, c)` is *silent* when
    :math:`z^{(\ell)}_{ic} \le \text{tol}` (zero output and zero gradient under ReLU).

    Args:
        model (LeakyGNN): The model (evaluated in eval mode, without gradients).
        x (Tensor): Node features ``[N, F]``.
        edge_index (Tensor): Edges ``[2, E]``.
        edge_weight (Tensor, optional): Edge weights ``[E]``.
        tol (float, optional): Threshold for "not positive". (default: ``0.0``)

    Returns:
        DataFrame with one row per activated layer: ``layer``, ``slope`` (mean slope
        of the layer's activation), ``units``, ``dead``, ``dead_share``,
        ``silent_share``.

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> model = LeakyGNN(4, 8, 3, 2)
        >>> ring = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
        >>> dead_units(model, torch.randn(3, 4), ring).columns.tolist()
        ['layer', 'slope', 'units', 'dead', 'dead_share', 'silent_share']
    """
    tol = check_finite("tol", tol)
    rows = []
    for i, (z, slope) in enumerate(
        zip(_hidden(model, x, edge_index, edge_weight), _act_slopes(model))
    ):
        dead = int((z.amax(dim=0) <= tol).sum()) if z.size(0) else z.size(1)
        rows.append(
            {
                "layer": i,
                "slope": float(slope.mean()),
                "units": z.size(1),
                "dead": dead,
                "dead_share": dead / z.size(1),
                "silent_share": float((z <= tol).double().mean()),
            }
        )
    return pd.DataFrame(
        rows, columns=["layer", "slope", "units", "dead", "dead_share", "silent_share"]
    )


def gradient_norms(
    model: torch.nn.Module,
    x: Tensor,
    edge_index: Tensor,
    y: Tensor,
    mask: Tensor | None = None,
    *,
    edge_weight: Tensor | None = None,
) -> pd.DataFrame:
    r"""Gradient norm of each message-passing layer's parameters under cross-entropy.

    .. math::
        g_\ell = \Big\|\frac{\partial\, \mathrm{CE}(f(X)_{\mathrm{mask}},
        y_{\mathrm{mask}})}{\partial \theta_\ell}\Big\|_2

    where :math:`\theta_\ell` are all parameters of ``model.convs[l]`` (weights and
    bias). Gradients are taken with :func:`torch.autograd.grad` in eval mode (no
    dropout), so the model's ``.grad`` fields are left untouched.

    Args:
        model (LeakyGNN): The model.
        x (Tensor): Node features ``[N, F]``.
        edge_index (Tensor): Edges ``[2, E]``.
        y (Tensor): Integer labels ``[N]``.
        mask (Tensor, optional): Nodes in the loss (bool ``[N]``). (default: all)
        edge_weight (Tensor, optional): Edge weights ``[E]``.

    Returns:
        DataFrame: ``layer``, ``grad_norm``, ``param_norm``, ``ratio``
        (``grad_norm / param_norm``).

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> model = LeakyGNN(4, 8, 3, 2)
        >>> ring = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
        >>> df = gradient_norms(model, torch.randn(3, 4), ring, torch.tensor([0, 1, 0]))
        >>> df.layer.tolist()
        [0, 1, 2]
    """
    check_graph(x, edge_index, edge_weight)
    if y.dim() != 1 or y.size(0) != x.size(0) or y.is_floating_point():
        raise ValueError(f"y must be integer labels of shape [{x.size(0)}]")
    mask = torch.ones(x.size(0), dtype=torch.bool) if mask is None else mask
    params = [list(conv.parameters()) for conv in model.convs]
    flat = [p for ps in params for p in ps]
    with eval_mode(model):
        out = model(x, edge_index, edge_weight)
        loss = F.cross_entropy(out[mask], y[mask])
        grads = torch.autograd.grad(loss, flat, allow_unused=True)
    rows, k = [], 0
    for i, ps in enumerate(params):
        g = grads[k : k + len(ps)]
        k += len(ps)
        g_norm = torch.sqrt(
            sum(
                (gi.double().pow(2).sum() for gi in g if gi is not None),
                torch.zeros((), dtype=torch.float64),
            )
        )
        p_norm = torch.sqrt(
            sum(
                (p.detach().double().pow(2).sum() for p in ps), torch.zeros((), dtype=torch.float64)
            )
        )
        rows.append(
            {
                "layer": i,
                "grad_norm": float(g_norm),
                "param_norm": float(p_norm),
                "ratio": float(g_norm / p_norm) if p_norm > 0 else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def _skew(z: Tensor, dim: int | None) -> Tensor:
    z = z.double()
    mean = z.mean() if dim is None else z.mean(dim)
    d = z - mean
    m2 = d.pow(2).mean() if dim is None else d.pow(2).mean(dim)
    m3 = d.pow(3).mean() if dim is None else d.pow(3).mean(dim)
    return torch.where(
        m2 > 0, m3 / m2.clamp_min(1e-300).pow(1.5), torch.full_like(m2, float("nan"))
    )


def preactivation_skewness(
    model: torch.nn.Module,
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    *,
    per_channel: bool = False,
) -> pd.DataFrame:
    r"""Skewness of each activated layer's pre-activations, next to its slope.

    .. math::
        \gamma_1 = \frac{m_3}{m_2^{3/2}}, \qquad
        m_k = \frac{1}{n} \sum_j (z_j - \bar z)^k

    (the biased estimator, ``scipy.stats.skew(bias=True)``), over all entries of the
    layer or per channel. A right-skewed pre-activation (:math:`\gamma_1 > 0`) puts
    most nodes on the negative half, where the slope decides what survives.

    Args:
        model (LeakyGNN): The model (eval mode, no gradients).
        x (Tensor): Node features ``[N, F]``.
        edge_index (Tensor): Edges ``[2, E]``.
        edge_weight (Tensor, optional): Edge weights ``[E]``.
        per_channel (bool, optional): One row per channel. (default: ``False``)

    Returns:
        DataFrame: ``layer``, (``channel``), ``skewness``, ``negative_share``,
        ``slope`` (the channel's slope, or the layer's mean slope).

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> model = LeakyGNN(4, 8, 3, 2, act="prelu", act_kwargs={"init": 0.3})
        >>> ring = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
        >>> df = preactivation_skewness(model, torch.randn(3, 4), ring)
        >>> df.slope.round(2).tolist()
        [0.3, 0.3]
    """
    rows = []
    for i, (z, slope) in enumerate(
        zip(_hidden(model, x, edge_index, edge_weight), _act_slopes(model))
    ):
        if per_channel:
            skew = _skew(z, 0)
            neg = (z < 0).double().mean(0)
            slope = slope.expand(z.size(1)) if slope.numel() == 1 else slope
            for c in range(z.size(1)):
                rows.append(
                    {
                        "layer": i,
                        "channel": c,
                        "skewness": float(skew[c]),
                        "negative_share": float(neg[c]),
                        "slope": float(slope[c]),
                    }
                )
        else:
            rows.append(
                {
                    "layer": i,
                    "skewness": float(_skew(z, None)),
                    "negative_share": float((z < 0).double().mean()),
                    "slope": float(slope.mean()),
                }
            )
    return pd.DataFrame(rows)


def slope_trajectories(model: torch.nn.Module, data: Any, **fit_kwargs: Any) -> pd.DataFrame:
    r"""Train ``model`` in place and return its slopes after every epoch.

    A thin wrapper around :func:`~gnnleaky.analysis.fit_node_classifier` with a
    :class:`~gnnleaky.analysis.SlopeRecorder` callback (epoch 0 is the initial slope).

    Args:
        model (LeakyGNN): The model, typically with ``act="prelu"``.
        data (Data): Graph with split masks.
        **fit_kwargs: Passed to :func:`~gnnleaky.analysis.fit_node_classifier`
            (``epochs``, ``lr``, ``weight_decay``, ``slope_penalty``, ``seed``...).

    Returns:
        DataFrame: ``epoch``, ``act``, ``channel``, ``slope``.

    Example:
        >>> from torch_geometric.data import Data
        >>> from gnnleaky.nn import LeakyGNN
        >>> m = torch.ones(4, dtype=torch.bool)
        >>> data = Data(x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1], [1, 0]]),
        ...             y=torch.tensor([0, 1, 0, 1]), train_mask=m, val_mask=m, test_mask=m)
        >>> traj = slope_trajectories(LeakyGNN(3, 8, 2, 2, act="prelu"), data, epochs=3)
        >>> traj.epoch.tolist()
        [0, 1, 2, 3]
    """
    if "callback" in fit_kwargs:
        raise ValueError(
            "slope_trajectories sets its own callback; use SlopeRecorder "
            "with fit_node_classifier to combine callbacks"
        )
    recorder = SlopeRecorder()
    fit_node_classifier(model, data, callback=recorder, **fit_kwargs)
    return recorder.to_frame()


def slope_drift(
    model: torch.nn.Module,
    data: Any,
    shift: float | Tensor,
    *,
    epochs: int = 50,
    **fit_kwargs: Any,
) -> pd.DataFrame:
    r"""Slope drift when training continues on shifted node features.

    Two copies of the (trained) model continue training for ``epochs`` epochs, one on
    :math:`X` (control) and one on :math:`X + \delta` (shifted); the drift is

    .. math::
        \Delta\alpha_{\ell, c} = \alpha^{\text{shifted}}_{\ell, c}
        - \alpha^{\text{control}}_{\ell, c},

    which separates the effect of the shift from that of training longer. The model
    itself is not modified.

    Args:
        model (LeakyGNN): A model with PReLU activations (fixed slopes do not drift).
        data (Data): Graph with split masks.
        shift (float or Tensor): :math:`\delta`, broadcast against ``data.x``
            (a scalar, ``[F]`` or ``[N, F]``).
        epochs (int, optional): Epochs of continued training. (default: ``50``)
        **fit_kwargs: Passed to :func:`~gnnleaky.analysis.fit_node_classifier`
            (``lr``, ``weight_decay``, ``seed``...); both copies use the same seed.

    Returns:
        DataFrame: ``act``, ``channel``, ``slope_before``, ``slope_control``,
        ``slope_shifted``, ``drift``.

    Example:
        >>> from torch_geometric.data import Data
        >>> from gnnleaky.nn import LeakyGNN
        >>> m = torch.ones(4, dtype=torch.bool)
        >>> data = Data(x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1], [1, 0]]),
        ...             y=torch.tensor([0, 1, 0, 1]), train_mask=m, val_mask=m, test_mask=m)
        >>> df = slope_drift(LeakyGNN(3, 8, 2, 2, act="prelu"), data, 0.0, epochs=3)
        >>> float(df.drift.abs().max())  # no shift, no drift
        0.0
    """
    for key in ("x", "callback", "restore_best"):
        if key in fit_kwargs:
            raise ValueError(f"slope_drift sets {key!r} itself")
    delta = torch.as_tensor(shift, dtype=data.x.dtype)
    if not bool(torch.isfinite(delta).all()):
        raise ValueError("shift contains NaN or Inf values")
    try:
        shifted_x = data.x + delta
    except RuntimeError:
        raise ValueError(
            f"shift of shape {tuple(delta.shape)} does not broadcast against "
            f"x of shape {tuple(data.x.shape)}"
        ) from None
    before = slope_table(model)
    control, shifted = copy.deepcopy(model), copy.deepcopy(model)
    fit_node_classifier(control, data, epochs=epochs, restore_best=False, **fit_kwargs)
    fit_node_classifier(shifted, data, epochs=epochs, x=shifted_x, restore_best=False, **fit_kwargs)
    out = before.rename(columns={"slope": "slope_before"})
    out["slope_control"] = slope_table(control)["slope"].to_numpy()
    out["slope_shifted"] = slope_table(shifted)["slope"].to_numpy()
    out["drift"] = out.slope_shifted - out.slope_control
    return out
