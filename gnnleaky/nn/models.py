r"""LeakyGNN: PyG's ``BasicGNN`` models with one activation instance per layer."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch_geometric.nn import JumpingKnowledge
from torch_geometric.nn.conv import GATConv, GCN2Conv, GCNConv, GINConv, MessagePassing, SAGEConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.resolver import normalization_resolver

from gnnleaky.nn.activation import activation
from gnnleaky.utils import check_edge_index, check_edge_weight, check_features

__all__ = ["CONVS", "Hidden", "LeakyGNN"]


class Hidden(NamedTuple):
    """Per-layer features returned by ``LeakyGNN(..., return_hidden=True)``.

    ``pre[l]`` is layer ``l``'s output before its activation (after the conv and
    norm), ``post[l]`` after it (before dropout). For an output layer without
    activation both entries are the same tensor.
    """

    pre: list[Tensor]
    post: list[Tensor]


def _gcn(in_ch: int, out_ch: int, layer: int, **kw: Any) -> MessagePassing:
    # Normalization is done once per graph by LeakyGNN, not once per layer.
    return GCNConv(in_ch, out_ch, normalize=False, **kw)


def _sage(in_ch: int, out_ch: int, layer: int, **kw: Any) -> MessagePassing:
    return SAGEConv(in_ch, out_ch, **kw)


def _gat(
    in_ch: int, out_ch: int, layer: int, *, last: bool = False, heads: int = 1, **kw: Any
) -> MessagePassing:
    if last or heads == 1:
        return GATConv(in_ch, out_ch, heads=heads, concat=False, **kw)
    if out_ch % heads != 0:
        raise ValueError(f"hidden_channels={out_ch} must be divisible by heads={heads}")
    return GATConv(in_ch, out_ch // heads, heads=heads, concat=True, **kw)


def _gin(
    in_ch: int, out_ch: int, layer: int, *, inner_act: torch.nn.Module, **kw: Any
) -> MessagePassing:
    mlp = torch.nn.Sequential(
        torch.nn.Linear(in_ch, out_ch), inner_act, torch.nn.Linear(out_ch, out_ch)
    )
    return GINConv(mlp, **kw)


def _gcnii(
    in_ch: int, out_ch: int, layer: int, *, alpha: float = 0.1, theta: float = 0.5, **kw: Any
) -> MessagePassing:
    return GCN2Conv(out_ch, alpha=alpha, theta=theta, layer=layer + 1, normalize=False, **kw)


#: Registry of message-passing layers: name -> builder(in, out, layer_index, **kwargs).
CONVS: dict[str, Callable[..., MessagePassing]] = {
    "gcn": _gcn,
    "sage": _sage,
    "gat": _gat,
    "gin": _gin,
    "gcnii": _gcnii,
}
_EDGE_WEIGHT_CONVS = {"gcn", "gcnii"}
_JK_MODES = (None, "last", "cat", "max", "lstm")


class LeakyGNN(torch.nn.Module):
    r"""A message-passing GNN whose every layer owns its activation.

    Same signature as :class:`torch_geometric.nn.models.GCN` (and the other
    ``BasicGNN`` models), plus ``conv`` to choose the layer. Layer :math:`\ell` computes

    .. math::
        \mathbf{H}^{(\ell)} = \phi_\ell\big(\mathrm{norm}_\ell(\mathrm{conv}_\ell(
        \mathbf{H}^{(\ell-1)}, \hat{\mathbf{A}}))\big) \; [+\, \mathbf{H}^{(\ell-1)}]

    where :math:`\phi_\ell` is a separate instance per layer (a PReLU has its own slope
    in every layer, unlike PyG's ``BasicGNN`` which shares one module across layers).
    As in PyG, the last layer maps to ``out_channels`` without an activation unless
    ``jk`` is set, so a model of ``num_layers`` layers has ``num_layers - 1``
    activations when ``out_channels`` is given (``num_layers`` with ``jk``, or with
    ``out_channels=None``).

    With ``conv="gcn"`` or ``"gcnii"`` the symmetric normalization
    :math:`\hat{\mathbf{A}} = \mathbf{D}^{-1/2}(\mathbf{A}+\mathbf{I})\mathbf{D}^{-1/2}`
    is computed once per forward (not once per layer) and, with ``cached=True``, once
    per graph for static full-batch training. ``conv="gcnii"`` is GCNII
    (:class:`~torch_geometric.nn.conv.GCN2Conv`, initial residual and identity
    mapping): a linear input map, ``num_layers`` propagation layers of width
    ``hidden_channels`` each followed by its activation, and a linear output map.

    Args:
        in_channels (int): Input feature width.
        hidden_channels (int): Hidden width.
        num_layers (int): Number of message-passing layers (``>= 1``).
        out_channels (int, optional): Output width. (default: ``None``)
        dropout (float, optional): Dropout after each activation. (default: ``0.0``)
        act (str or Module, optional): ``"relu"``, ``"leaky_relu"``, ``"prelu"``,
            ``"identity"``, or a module (deep-copied per layer). (default: ``"relu"``)
        act_first (bool, optional): Apply the activation before the norm.
        act_kwargs (dict, optional): e.g. ``{"negative_slope": 0.2}`` or
            ``{"mode": "channel", "init": 0.25, "bounds": (0, 1)}``.
        norm (str, optional): Any PyG normalization name, e.g. ``"batch_norm"``.
        norm_kwargs (dict, optional): Arguments of the norm.
        jk (str, optional): Jumping knowledge mode (``"last"``, ``"cat"``, ``"max"``,
            ``"lstm"``) as in PyG.
        conv (str, optional): ``"gcn"``, ``"sage"``, ``"gat"``, ``"gin"`` or
            ``"gcnii"``. (default: ``"gcn"``)
        residual (bool, optional): Add the layer input to its output where the
            widths match. (default: ``False``)
        cached (bool, optional): Cache the normalized adjacency across calls
            (transductive full-batch only). (default: ``False``)
        **conv_kwargs: Passed to the conv (e.g. ``heads=4`` for GAT, ``alpha``,
            ``theta`` for GCNII, ``aggr`` for SAGE).

    Shapes:
        - **input:** node features :math:`(N, F_{in})`, edge index :math:`(2, E)`,
          edge weights :math:`(E)` *(optional)*
        - **output:** :math:`(N, F_{out})`

    Example:
        >>> from torch_geometric.datasets import FakeDataset
        >>> model = LeakyGNN(16, 32, num_layers=4, out_channels=3, act="prelu",
        ...                  act_kwargs={"mode": "channel", "bounds": (0.0, 1.0)})
        >>> x, edge_index = torch.randn(10, 16), torch.tensor([[0, 1, 2], [1, 2, 0]])
        >>> out, hidden = model(x, edge_index, return_hidden=True)
        >>> out.shape, len(hidden.pre), len(model.acts)
        (torch.Size([10, 3]), 4, 3)
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        num_layers: int,
        out_channels: int | None = None,
        dropout: float = 0.0,
        act: str | torch.nn.Module | None = "relu",
        act_first: bool = False,
        act_kwargs: dict[str, Any] | None = None,
        norm: str | Callable | None = None,
        norm_kwargs: dict[str, Any] | None = None,
        jk: str | None = None,
        *,
        conv: str = "gcn",
        residual: bool = False,
        cached: bool = False,
        **conv_kwargs: Any,
    ) -> None:
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
        for arg, val in (("in_channels", in_channels), ("hidden_channels", hidden_channels)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"{arg} must be a positive int, got {val!r}")
        if out_channels is not None and (not isinstance(out_channels, int) or out_channels < 1):
            raise ValueError(f"out_channels must be a positive int or None, got {out_channels!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if not isinstance(conv, str) or conv.lower() not in CONVS:
            raise ValueError(f"conv must be one of {sorted(CONVS)}, got {conv!r}")
        if jk not in _JK_MODES:
            raise ValueError(f"jk must be one of {list(_JK_MODES)}, got {jk!r}")
        conv = conv.lower()

        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.out_channels = out_channels if out_channels is not None else hidden_channels
        self.conv = conv
        self.act_name = act if isinstance(act, str) or act is None else type(act).__name__
        self.act_kwargs = dict(act_kwargs or {})
        self.act_first = act_first
        self.jk_mode = jk
        self.residual = residual
        self.cached = cached
        self.dropout = torch.nn.Dropout(p=float(dropout))
        self._cache: tuple[tuple, Tensor, Tensor] | None = None

        gcnii = conv == "gcnii"
        conv_to_out = out_channels is not None and jk is None and not gcnii
        # Widths of every layer; the activation of layer i sees widths[i + 1].
        widths = [in_channels] + [hidden_channels] * num_layers
        if gcnii:
            widths[0] = hidden_channels
        if conv_to_out:
            widths[-1] = out_channels
        num_acts = num_layers - 1 if conv_to_out else num_layers

        def make_act(channels: int) -> torch.nn.Module:
            return activation(act, channels=channels, **self.act_kwargs)

        self.convs = torch.nn.ModuleList()
        for i in range(num_layers):
            kw = dict(conv_kwargs)
            if conv == "gat":
                kw["last"] = conv_to_out and i == num_layers - 1
            if conv == "gin":
                kw["inner_act"] = make_act(widths[i + 1])
            self.convs.append(CONVS[conv](widths[i], widths[i + 1], i, **kw))

        norm_layer = normalization_resolver(norm, hidden_channels, **(norm_kwargs or {}))
        if norm_layer is None:
            norm_layer = torch.nn.Identity()
        params = inspect.signature(norm_layer.forward).parameters
        self.supports_norm_batch = "batch" in params
        self.norms = torch.nn.ModuleList(
            [copy.deepcopy(norm_layer) for _ in range(num_acts)]
            + [torch.nn.Identity()] * (num_layers - num_acts)
        )
        self.acts = torch.nn.ModuleList([make_act(widths[i + 1]) for i in range(num_acts)])

        if gcnii:
            self.lin_in = torch.nn.Linear(in_channels, hidden_channels)
        if jk is not None and jk != "last":
            self.jk = JumpingKnowledge(jk, hidden_channels, num_layers)
        if jk is not None or (gcnii and out_channels is not None):
            lin_in = num_layers * hidden_channels if jk == "cat" else hidden_channels
            self.lin = torch.nn.Linear(lin_in, self.out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset all learnable parameters (convs, norms, slopes, linear maps)."""
        self._cache = None
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    # -- graph operator ---------------------------------------------------------------
    def _normalized(
        self, edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int
    ) -> tuple[Tensor, Tensor]:
        key = (
            edge_index.data_ptr(),
            edge_index._version,
            tuple(edge_index.shape),
            num_nodes,
            None if edge_weight is None else (edge_weight.data_ptr(), edge_weight._version),
        )
        if self.cached and self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        ei, ew = gcn_norm(
            edge_index,
            edge_weight,
            num_nodes,
            add_self_loops=True,
            dtype=torch.get_default_dtype() if edge_weight is None else edge_weight.dtype,
        )
        if self.cached:
            self._cache = (key, ei, ew)
        return ei, ew

    def _conv(
        self, i: int, x: Tensor, x0: Tensor | None, edge_index: Tensor, edge_weight: Tensor | None
    ) -> Tensor:
        conv = self.convs[i]
        if self.conv == "gcnii":
            return conv(x, x0, edge_index, edge_weight)
        if self.conv in _EDGE_WEIGHT_CONVS:
            return conv(x, edge_index, edge_weight)
        return conv(x, edge_index)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        *,
        batch: Tensor | None = None,
        return_hidden: bool = False,
    ) -> Tensor | tuple[Tensor, Hidden]:
        """Run the model; with ``return_hidden=True`` also return :class:`Hidden`."""
        check_features(x)
        if x.size(1) != self.in_channels:
            raise ValueError(
                f"x has {x.size(1)} features but the model was built with "
                f"in_channels={self.in_channels}"
            )
        check_edge_index(edge_index, x.size(0))
        check_edge_weight(edge_weight, edge_index.size(1))
        if edge_weight is not None and self.conv not in _EDGE_WEIGHT_CONVS:
            raise ValueError(
                f"edge_weight is only supported by conv in "
                f"{sorted(_EDGE_WEIGHT_CONVS)}, got conv={self.conv!r}"
            )
        if self.conv in _EDGE_WEIGHT_CONVS:
            edge_index, edge_weight = self._normalized(edge_index, edge_weight, x.size(0))

        x0 = None
        if self.conv == "gcnii":
            x = x0 = self.lin_in(x)
        pre: list[Tensor] = []
        post: list[Tensor] = []
        xs: list[Tensor] = []
        for i in range(self.num_layers):
            h = self._conv(i, x, x0, edge_index, edge_weight)
            if i < len(self.acts):
                act, norm = self.acts[i], self.norms[i]
                if self.act_first:
                    h_pre = h
                    h = act(h)
                    h = norm(h, batch) if self.supports_norm_batch else norm(h)
                else:
                    h = norm(h, batch) if self.supports_norm_batch else norm(h)
                    h_pre = h
                    h = act(h)
                if return_hidden:
                    pre.append(h_pre)
                    post.append(h)
                h = self.dropout(h)
            elif return_hidden:
                pre.append(h)
                post.append(h)
            if self.residual and h.shape == x.shape:
                h = h + x
            x = h
            xs.append(x)
        if hasattr(self, "jk"):
            x = self.jk(xs)
        if hasattr(self, "lin"):
            x = self.lin(x)
        if return_hidden:
            return x, Hidden(pre, post)
        return x

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"num_layers={self.num_layers}, conv={self.conv!r}, act={self.act_name!r}, "
            f"act_kwargs={self.act_kwargs})"
        )
