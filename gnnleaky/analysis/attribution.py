r"""Gradient saliency of node predictions, and ReLU against Leaky ReLU on the same weights.

The saliency of node :math:`i`'s prediction for class :math:`k` is

.. math::
    S_i = \Big|\frac{\partial f(X)_{ik}}{\partial X}\Big| \in \mathbb{R}^{N \times F},

computed with autograd (captum is not a dependency). :class:`Saliency` plugs the same
computation into PyG's :class:`torch_geometric.explain.Explainer`. Under ReLU every
path through a unit with a negative pre-activation carries zero gradient (a *silent*
entry, see :func:`~gnnleaky.analysis.dead_units`); a Leaky ReLU keeps
:math:`\alpha` of it, so the two saliency maps of the same weights differ exactly on
those paths.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pandas as pd
import scipy.stats
import torch
from torch import Tensor
from torch_geometric.explain import Explanation
from torch_geometric.explain.algorithm import ExplainerAlgorithm
from torch_geometric.explain.config import MaskType, ModelMode

from gnnleaky._validation import check_features
from gnnleaky.analysis._common import eval_mode
from gnnleaky.nn.activation import ActivationSpec

__all__ = ["Saliency", "compare_saliency", "saliency", "with_activation"]


def _index(index: int | Tensor | None, num_nodes: int) -> Tensor:
    if index is None:
        return torch.arange(num_nodes)
    idx = torch.as_tensor(index, dtype=torch.long).flatten()
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= num_nodes):
        raise ValueError(f"index must lie in [0, {num_nodes}), got {index!r}")
    return idx


def saliency(
    model: torch.nn.Module,
    x: Tensor,
    edge_index: Tensor,
    index: int | Tensor | None = None,
    target: int | Tensor | None = None,
    *,
    absolute: bool = True,
    **kwargs: Any,
) -> Tensor:
    r"""Gradient saliency of node predictions with respect to all node features.

    .. math::
        S = \Big|\frac{\partial}{\partial X} \sum_{i \in \text{index}} f(X)_{i, t_i}\Big|

    Args:
        model (torch.nn.Module): Called as ``model(x, edge_index, **kwargs)``; run in
            eval mode (restored after).
        x (Tensor): Node features ``[N, F]``.
        edge_index (Tensor): Edges ``[2, E]``.
        index (int or Tensor, optional): Nodes whose predictions are explained
            (summed). (default: all nodes)
        target (int or Tensor, optional): Class per node ``[N]`` or one class for all;
            ``None`` uses the model's prediction. Ignored for 1-D (regression) outputs.
        absolute (bool, optional): Return :math:`|\nabla|` (else the signed
            gradient). (default: ``True``)
        **kwargs: Extra model arguments (e.g. ``edge_weight``).

    Shapes:
        - **output:** :math:`(N, F)`, zero outside the receptive field of ``index``.

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> model = LeakyGNN(4, 8, 1, 3)  # one layer: reaches direct neighbours only
        >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> s = saliency(model, torch.randn(3, 4), path, index=0)
        >>> (s.sum(dim=1) > 0).tolist()
        [True, True, False]
    """
    check_features(x)
    idx = _index(index, x.size(0))
    xg = x.detach().clone().requires_grad_(True)
    with eval_mode(model):
        out = model(xg, edge_index, **kwargs)
        if out.dim() == 1 or out.size(-1) == 1:
            score = out.reshape(out.size(0))[idx].sum()
        else:
            if target is None:
                t = out.detach().argmax(-1)
            else:
                t = torch.as_tensor(target, dtype=torch.long)
                t = t.expand(x.size(0)) if t.dim() == 0 else t
                if t.shape != (x.size(0),):
                    raise ValueError(
                        f"target must be an int or a tensor of shape "
                        f"[{x.size(0)}], got shape {tuple(t.shape)}"
                    )
            score = out[idx, t[idx]].sum()
        (grad,) = torch.autograd.grad(score, xg)
    return grad.abs() if absolute else grad


class Saliency(ExplainerAlgorithm):
    r"""Gradient saliency as a PyG explainer algorithm (no captum needed).

    Returns :math:`|\partial f(X)_{i,t_i} / \partial X|` summed over the explained
    indices as the node mask: per entry (``node_mask_type="attributes"``), summed over
    features (``"object"``, shape ``[N, 1]``) or over nodes (``"common_attributes"``,
    shape ``[1, F]``). Edge masks are not supported.

    Example:
        >>> from torch_geometric.explain import Explainer
        >>> from gnnleaky.nn import LeakyGNN
        >>> explainer = Explainer(
        ...     LeakyGNN(4, 8, 2, 3), algorithm=Saliency(), explanation_type="model",
        ...     node_mask_type="attributes", edge_mask_type=None,
        ...     model_config=dict(mode="multiclass_classification", task_level="node",
        ...                       return_type="raw"))
        >>> ring = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
        >>> explainer(torch.randn(3, 4), ring, index=0).node_mask.shape
        torch.Size([3, 4])
    """

    def forward(
        self,
        model: torch.nn.Module,
        x: Tensor,
        edge_index: Tensor,
        *,
        target: Tensor,
        index: int | Tensor | None = None,
        **kwargs: Any,
    ) -> Explanation:
        if isinstance(x, dict):
            raise ValueError("Saliency supports homogeneous graphs only")
        grad = saliency(model, x, edge_index, index, target, **kwargs)
        mask_type = self.explainer_config.node_mask_type
        if mask_type == MaskType.object:
            grad = grad.sum(dim=1, keepdim=True)
        elif mask_type == MaskType.common_attributes:
            grad = grad.sum(dim=0, keepdim=True)
        return Explanation(node_mask=grad)

    def supports(self) -> bool:
        if self.explainer_config.edge_mask_type is not None:
            return False
        if self.explainer_config.node_mask_type is None:
            return False
        return self.model_config.mode in (ModelMode.multiclass_classification, ModelMode.regression)


def with_activation(
    model: torch.nn.Module, act: str | torch.nn.Module, **act_kwargs: Any
) -> torch.nn.Module:
    r"""A deep copy of a LeakyGNN with every activation in ``model.acts`` replaced.

    Same weights, different activation: e.g. evaluate a model trained with a Leaky ReLU
    as a ReLU network. Activations inside GIN MLPs are left as they are.

    Args:
        model (LeakyGNN): The model (not modified).
        act (str or Module): Activation name or module, as in
            :func:`~gnnleaky.nn.activation`.
        **act_kwargs: e.g. ``negative_slope=0.2``.

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> relu = LeakyGNN(4, 8, 3, 2)
        >>> with_activation(relu, "leaky_relu", negative_slope=0.2).acts[1]
        LeakyReLU(negative_slope=0.2)
    """
    if not hasattr(model, "acts"):
        raise ValueError(f"model must have .acts (a LeakyGNN), got {type(model).__name__}")
    out = copy.deepcopy(model)
    width = getattr(model, "hidden_channels", None)
    spec = ActivationSpec(act, act_kwargs)
    for i in range(getattr(out, "num_activations", len(out.acts))):
        out.acts[i] = spec.build(width)
    if hasattr(out, "_act_spec"):
        out._act_spec = spec
        out.act_kwargs = dict(act_kwargs)
    return out


def _spearman(a: Tensor, b: Tensor) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: NaN
        res = scipy.stats.spearmanr(a.numpy(), b.numpy())
    return float(res.statistic)


def compare_saliency(
    model: torch.nn.Module,
    x: Tensor,
    edge_index: Tensor,
    index: Tensor,
    *,
    negative_slope: float = 0.2,
    target: Tensor | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    r"""Saliency of the same weights under ReLU and under Leaky ReLU, node by node.

    For every node :math:`i` in ``index`` the maps :math:`S^{\mathrm{relu}}_i` and
    :math:`S^{\alpha}_i` (:func:`saliency` of :func:`with_activation` copies) are
    compared by cosine similarity and by Spearman rank correlation over the entries of
    the nodes where either map is non-zero (the receptive field).

    Args:
        model (LeakyGNN): Trained model; its weights are used for both copies.
        x (Tensor): Node features ``[N, F]``.
        edge_index (Tensor): Edges ``[2, E]``.
        index (Tensor): Nodes to compare.
        negative_slope (float, optional): :math:`\alpha` of the Leaky copy.
            (default: ``0.2``)
        target (Tensor, optional): Class per node; default the prediction of ``model``
            as given, so both maps explain the same output.
        **kwargs: Extra model arguments (e.g. ``edge_weight``).

    Returns:
        DataFrame: ``node``, ``target``, ``cosine``, ``spearman``, ``relu_norm``,
        ``leaky_norm`` (Frobenius norms of the maps), ``same_prediction``.

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> model = LeakyGNN(4, 8, 2, 3)
        >>> ring = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
        >>> df = compare_saliency(model, torch.randn(3, 4), ring, torch.tensor([0, 1]),
        ...                       negative_slope=0.0)
        >>> df.cosine.round(6).tolist()  # slope 0 is the ReLU itself
        [1.0, 1.0]
    """
    check_features(x)
    idx = _index(index, x.size(0))
    relu = with_activation(model, "relu")
    leaky = with_activation(model, "leaky_relu", negative_slope=negative_slope)
    with torch.no_grad(), eval_mode(model):
        if target is None:
            target = model(x, edge_index, **kwargs).argmax(-1)
        pred_relu = relu.eval()(x, edge_index, **kwargs).argmax(-1)
        pred_leaky = leaky.eval()(x, edge_index, **kwargs).argmax(-1)
    rows = []
    for i in idx.tolist():
        s_r = saliency(relu, x, edge_index, i, target, **kwargs).double()
        s_l = saliency(leaky, x, edge_index, i, target, **kwargs).double()
        field = (s_r.sum(1) > 0) | (s_l.sum(1) > 0)
        a, b = s_r[field].flatten(), s_l[field].flatten()
        denom = a.norm() * b.norm()
        rows.append(
            {
                "node": i,
                "target": int(target[i]),
                "cosine": float(a @ b / denom) if denom > 0 else float("nan"),
                "spearman": _spearman(a, b) if a.numel() > 1 else float("nan"),
                "relu_norm": float(s_r.norm()),
                "leaky_norm": float(s_l.norm()),
                "same_prediction": bool(pred_relu[i] == pred_leaky[i]),
            }
        )
    return pd.DataFrame(rows)
