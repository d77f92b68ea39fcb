r"""PyG's GNN models with one activation instance per layer.

``from gnnleaky.nn import GCN`` in place of ``from torch_geometric.nn.models import GCN``
is the whole change: :class:`GCN`, :class:`GraphSAGE`, :class:`GIN`, :class:`GAT`,
:class:`PNA` and :class:`EdgeCNN` subclass both :class:`LeakyGNN` and PyG's class of the
same name (so ``isinstance`` holds, and ``inference``, trim-to-layer, ``to_hetero``,
jumping knowledge and norms come with them), take the same arguments and, for an
activation without parameters, load a PyG checkpoint with ``strict=True`` and compute
the same function. The one difference: PyG's ``BasicGNN`` applies a single activation
module in every layer (a PReLU there has one slope for the whole network); here layer
``i`` applies its own ``acts[i]``, so a PReLU has its own slope, layer-wise or
channel-wise, in every layer. :class:`GCNII` is the GCNII network of Chen et al. (2020)
with the same per-layer activations.
"""

from typing import Any, ClassVar, Final, NamedTuple

import torch
from torch import Tensor
from torch_geometric.nn.conv import EdgeConv, GCN2Conv, GINConv
from torch_geometric.nn.models import MLP
from torch_geometric.nn.models import basic_gnn as _pyg

from gnnleaky._validation import check_edge_index, check_features
from gnnleaky.nn.activation import ActivationSpec, NoActivation, _normalize
from gnnleaky.nn.functional import OperatorCache, TensorKey, gcn_operator

__all__ = [
    "GAT",
    "GCN",
    "GCNII",
    "GIN",
    "MODELS",
    "PNA",
    "EdgeCNN",
    "GraphSAGE",
    "Hidden",
    "LeakyGNN",
    "model_class",
]

_JK_MODES = (None, "last", "cat", "max", "lstm")


class Hidden(NamedTuple):
    """Per-layer features returned by ``forward_hidden``.

    ``pre[l]`` is layer ``l``'s output before its activation (after the conv and the
    norm; with ``act_first=True``, after the conv), ``post[l]`` after it (before
    dropout). For a layer without activation both entries are the same tensor.
    """

    pre: list[Tensor]
    post: list[Tensor]


def _eager() -> bool:
    """False while TorchScript, ``torch.compile`` or ``torch.fx`` trace the forward."""
    if torch.jit.is_scripting() or torch.compiler.is_compiling():
        return False
    return not torch.fx._symbolic_trace.is_fx_symbolic_tracing()


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_in_channels(value: Any) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and (value >= 1 or value == -1)
    if isinstance(value, (tuple, list)):
        ok = len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and (v >= 1 or v == -1) for v in value
        )
    if not ok:
        raise ValueError(
            f"in_channels must be a positive int, -1 (lazy) or a pair (source, target) of "
            f"them, got {value!r}"
        )


def _check_dropout(value: Any) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        p = float("nan")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {value!r}")
    return p


class LeakyGNN(_pyg.BasicGNN):
    r"""PyG's :class:`~torch_geometric.nn.models.basic_gnn.BasicGNN` with one activation
    instance per layer; the base class of gnnleaky's models.

    Layer :math:`\ell` computes

    .. math::
        \mathbf{H}^{(\ell)} = \phi_\ell\big(\mathrm{norm}_\ell(\mathrm{conv}_\ell(
        \mathbf{H}^{(\ell-1)}))\big) \; [+\, \mathbf{H}^{(\ell-1)}]

    where :math:`\phi_\ell` is ``acts[l]``, an instance of its own (``act_first=True``
    swaps the norm and the activation). As in PyG, the last layer has no activation,
    norm or dropout unless ``jk`` is set, so ``acts[-1]`` is then a
    :class:`~gnnleaky.nn.activation.NoActivation` placeholder.

    Called directly, ``LeakyGNN(..., conv="gcn")`` builds the model registered under
    ``conv`` (see :data:`MODELS`); a subclass that defines ``init_conv`` (like PyG's own
    models do) gets per-layer activations by deriving from this class instead of PyG's
    ``BasicGNN``.

    Args:
        in_channels (int or tuple): Input width, ``-1`` for lazy initialization, or a
            ``(source, target)`` pair for bipartite graphs (as in PyG).
        hidden_channels (int): Hidden width.
        num_layers (int): Number of message-passing layers.
        out_channels (int, optional): Output width of the last layer. (default: ``None``)
        dropout (float, optional): Dropout after each activation. (default: ``0.0``)
        act (str or Callable, optional): Anything PyG's ``activation_resolver`` accepts
            (``"relu"``, ``"elu"``, ``torch.relu_``, a module, ``None``, ...) plus
            gnnleaky's ``"prelu"`` with ``mode``/``init``/``bounds`` (see
            :class:`~gnnleaky.nn.activation.ActivationSpec`). (default: ``"relu"``)
        act_first (bool, optional): Apply the activation before the norm.
            (default: ``False``)
        act_kwargs (dict, optional): Arguments of ``act``, e.g.
            ``{"negative_slope": 0.2}`` or ``{"mode": "channel", "bounds": (0, 1)}``.
        norm (str or Callable, optional): Normalization, as in PyG. (default: ``None``)
        norm_kwargs (dict, optional): Arguments of the norm. (default: ``None``)
        jk (str, optional): Jumping knowledge mode (``"last"``, ``"cat"``, ``"max"``,
            ``"lstm"``). (default: ``None``)
        residual (bool or str, optional): ``True``: add each layer's input to its output
            where the shapes match (after dropout); ``"initial"``: add the first layer's
            output to every later layer's output where the shapes match (an initial
            residual connection). (default: ``False``)
        conv (str, optional): With ``LeakyGNN(...)`` itself: the model to build
            (default ``"gcn"``); with a concrete class, its own name or ``None``.
        **kwargs: Arguments of the conv (e.g. ``add_self_loops``, ``heads``, ``aggr``).

    Shapes:
        - **input:** node features :math:`(N, F_{in})`, edge indices :math:`(2, E)`
          or a sparse adjacency, edge weights :math:`(E)` or edge features
          :math:`(E, D)` where the conv supports them *(optional)*
        - **output:** :math:`(N, F_{out})`

    Example:
        >>> model = LeakyGNN(16, 32, num_layers=4, out_channels=3, conv="gcn",
        ...                  act="prelu", act_kwargs={"mode": "channel", "bounds": (0, 1)})
        >>> type(model).__name__, len(model.acts), model.acts[0].weight.shape
        ('GCN', 4, torch.Size([32]))
        >>> x, edge_index = torch.randn(10, 16), torch.tensor([[0, 1, 2], [1, 2, 0]])
        >>> out, hidden = model.forward_hidden(x, edge_index)
        >>> out.shape, len(hidden.pre)
        (torch.Size([10, 3]), 4)
    """

    #: Registry name of the model (``None`` for the abstract base class).
    conv_name: ClassVar[str | None] = None
    __jit_unused_properties__: ClassVar[list[str]] = ["act_name", "num_activations"]

    def __new__(cls, *args: Any, conv: str | None = None, **kwargs: Any) -> Any:
        if cls is LeakyGNN:
            target = model_class("gcn" if conv is None else conv)
            if not issubclass(target, LeakyGNN):  # GCNII: built here, not by __init__
                return target(*args, **kwargs)
            return super().__new__(target)
        return super().__new__(cls)

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        hidden_channels: int,
        num_layers: int,
        out_channels: int | None = None,
        dropout: float = 0.0,
        act: str | Any | None = "relu",
        act_first: bool = False,
        act_kwargs: dict[str, Any] | None = None,
        norm: str | Any | None = None,
        norm_kwargs: dict[str, Any] | None = None,
        jk: str | None = None,
        *,
        residual: bool | str = False,
        conv: str | None = None,
        **kwargs: Any,
    ) -> None:
        if type(self) is LeakyGNN:
            raise TypeError("LeakyGNN is abstract: pass conv=... or use a model class")
        if conv is not None and not isinstance(self, model_class(conv)):
            raise ValueError(
                f"conv={conv!r} names {model_class(conv).__name__}, but this is "
                f"{type(self).__name__}"
            )
        _check_in_channels(in_channels)
        _positive_int("hidden_channels", hidden_channels)
        _positive_int("num_layers", num_layers)
        if out_channels is not None:
            _positive_int("out_channels", out_channels)
        dropout = _check_dropout(dropout)
        if jk not in _JK_MODES:
            raise ValueError(f"jk must be one of {list(_JK_MODES)}, got {jk!r}")
        if not (isinstance(residual, bool) or residual == "initial"):
            raise ValueError(f"residual must be True, False or 'initial', got {residual!r}")
        spec = ActivationSpec(act, act_kwargs)
        # A plain attribute set before Module.__init__: init_conv (GIN, EdgeCNN) builds
        # the activations inside each layer's MLP from it.
        self._act_spec = spec
        super().__init__(
            in_channels,
            hidden_channels,
            num_layers,
            out_channels,
            dropout,
            None,
            act_first,
            None,
            norm,
            norm_kwargs,
            jk,
            **kwargs,
        )
        self.residual = residual is True
        self.initial_residual = residual == "initial"
        self.act_kwargs = dict(act_kwargs or {})
        # PyG's ``model.act``: here the template each layer's activation was built from
        # (not a submodule, not trained); the layers' own instances are ``acts``.
        object.__setattr__(self, "act", None if act is None else spec.build(hidden_channels))
        self.acts = torch.nn.ModuleList(
            [
                spec.build(hidden_channels) if self._activated(i) else NoActivation()
                for i in range(num_layers)
            ]
        )
        self._graph_key: TensorKey | None = None

    def _activated(self, layer: int) -> bool:
        return layer < self.num_layers - 1 or self.jk_mode is not None

    @property
    def num_activations(self) -> int:
        """How many layers apply an activation (``num_layers``, or one less without jk)."""
        return sum(self._activated(i) for i in range(self.num_layers))

    @property
    def act_name(self) -> str:
        """The activation's name (gnnleaky kind, class or function name)."""
        return self._act_spec.label

    def reset_parameters(self) -> None:
        """Reset the convs, norms, jumping knowledge, output map and every activation."""
        super().reset_parameters()
        for act in self.acts:
            if hasattr(act, "reset_parameters"):
                act.reset_parameters()
        self._graph_key = None

    # -- eager-only work ------------------------------------------------------------------
    @torch.jit.unused
    def _eager_checks(self, x: Any, edge_index: Any, edge_weight: Tensor | None) -> None:
        """Clear errors where PyG would fail deep inside a conv, and a never-stale
        ``cached=True``. Checks that cost a device sync (node indices in range) run once
        per graph: again only for a new ``edge_index`` tensor or after an in-place edit.
        Non-finite features or weights are passed on, as PyG does."""
        if isinstance(x, Tensor):
            check_features(x, finite=False)
            if isinstance(self.in_channels, int) and self.in_channels > 0:
                if x.size(1) != self.in_channels:
                    raise ValueError(
                        f"x has {x.size(1)} features but the model was built with "
                        f"in_channels={self.in_channels}"
                    )
        dense = isinstance(edge_index, Tensor) and edge_index.layout == torch.strided
        if dense and isinstance(edge_weight, Tensor) and edge_weight.dim() == 1:
            if edge_weight.numel() != edge_index.size(-1):
                raise ValueError(
                    f"edge_weight has {edge_weight.numel()} entries but there are "
                    f"{edge_index.size(-1)} edges"
                )
        num_nodes = x.size(0) if isinstance(x, Tensor) else None
        key = self._graph_key
        if key is not None and key.matches(edge_index, edge_weight, extra=(num_nodes,)):
            return
        if dense and num_nodes is not None:
            check_edge_index(edge_index, num_nodes)
        for conv in self.convs:
            if getattr(conv, "cached", False):
                for name in ("_cached_edge_index", "_cached_adj_t"):
                    if hasattr(conv, name):
                        setattr(conv, name, None)
        self._graph_key = TensorKey(edge_index, edge_weight, extra=(num_nodes,))

    # -- forward ----------------------------------------------------------------------------
    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        edge_attr: Tensor | None = None,
        batch: Tensor | None = None,
        batch_size: int | None = None,
        num_sampled_nodes_per_hop: list[int] | None = None,
        num_sampled_edges_per_hop: list[int] | None = None,
    ) -> Tensor:
        r"""Forward pass, with PyG's signature and meaning of every argument (see
        :meth:`torch_geometric.nn.models.basic_gnn.BasicGNN.forward`)."""
        if _eager():
            self._eager_checks(x, edge_index, edge_weight)
        return self._layers(
            x,
            edge_index,
            edge_weight,
            edge_attr,
            batch,
            batch_size,
            num_sampled_nodes_per_hop,
            num_sampled_edges_per_hop,
            None,
            None,
        )

    @torch.jit.unused
    def forward_hidden(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        edge_attr: Tensor | None = None,
        batch: Tensor | None = None,
        batch_size: int | None = None,
    ) -> tuple[Tensor, Hidden]:
        """:meth:`forward` that also returns every layer's features as :class:`Hidden`."""
        self._eager_checks(x, edge_index, edge_weight)
        pre: list[Tensor] = []
        post: list[Tensor] = []
        out = self._layers(
            x, edge_index, edge_weight, edge_attr, batch, batch_size, None, None, pre, post
        )
        return out, Hidden(pre, post)

    def _layers(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None,
        edge_attr: Tensor | None,
        batch: Tensor | None,
        batch_size: int | None,
        num_sampled_nodes_per_hop: list[int] | None,
        num_sampled_edges_per_hop: list[int] | None,
        pre: list[Tensor] | None,
        post: list[Tensor] | None,
    ) -> Tensor:
        # PyG's BasicGNN.forward, with acts[i] in place of the shared act, the residual
        # and the recording of hidden features.
        if (
            num_sampled_nodes_per_hop is not None
            and isinstance(edge_weight, Tensor)
            and isinstance(edge_attr, Tensor)
        ):
            raise NotImplementedError(
                "'trim_to_layer' functionality does not yet support trimming of both "
                "'edge_weight' and 'edge_attr'"
            )
        xs: list[Tensor] = []
        x0 = x
        for i, (conv, norm, act) in enumerate(zip(self.convs, self.norms, self.acts)):
            if not torch.jit.is_scripting() and num_sampled_nodes_per_hop is not None:
                x, edge_index, value = self._trim(
                    i,
                    num_sampled_nodes_per_hop,
                    num_sampled_edges_per_hop,
                    x,
                    edge_index,
                    edge_weight if edge_weight is not None else edge_attr,
                )
                if edge_weight is not None:
                    edge_weight = value
                else:
                    edge_attr = value
            x_in = x
            if self.supports_edge_weight and self.supports_edge_attr:
                x = conv(x, edge_index, edge_weight=edge_weight, edge_attr=edge_attr)
            elif self.supports_edge_weight:
                x = conv(x, edge_index, edge_weight=edge_weight)
            elif self.supports_edge_attr:
                x = conv(x, edge_index, edge_attr=edge_attr)
            else:
                x = conv(x, edge_index)

            h = x
            if i < self.num_layers - 1 or self.jk_mode is not None:
                if self.act_first:
                    h = x
                    x = act(x)
                if self.supports_norm_batch:
                    x = norm(x, batch, batch_size)
                else:
                    x = norm(x)
                if not self.act_first:
                    h = x
                    if pre is not None:
                        h = h.clone()  # an in-place activation must not change it
                    x = act(x)
                if pre is not None and post is not None:
                    pre.append(h)
                    post.append(x)
                x = self.dropout(x)
            elif pre is not None and post is not None:
                pre.append(x)
                post.append(x)
            if self.residual and x.shape == x_in.shape:
                x = x + x_in
            if i == 0:
                x0 = x
            elif self.initial_residual and x.shape == x0.shape:
                x = x + x0
            if hasattr(self, "jk"):  # every layer is activated with jk
                xs.append(x)

        x = self.jk(xs) if hasattr(self, "jk") else x
        x = self.lin(x) if hasattr(self, "lin") else x
        return x

    @torch.no_grad()
    def inference_per_layer(
        self, layer: int, x: Tensor, edge_index: Tensor, batch_size: int
    ) -> Tensor:
        """One layer of :meth:`inference` (PyG's, with the layer's own activation)."""
        if self.initial_residual:
            raise NotImplementedError(
                "layer-wise inference does not support residual='initial' (it needs the "
                "first layer's output at every layer); call the model on the whole graph"
            )
        x_in = x[:batch_size]
        x = self.convs[layer](x, edge_index)[:batch_size]
        if layer == self.num_layers - 1 and self.jk_mode is None:
            return x + x_in if self.residual and x.shape == x_in.shape else x
        act = self.acts[layer]
        if self.act_first:
            x = act(x)
        x = self.norms[layer](x)
        if not self.act_first:
            x = act(x)
        if self.residual and x.shape == x_in.shape:
            x = x + x_in
        if layer == self.num_layers - 1 and hasattr(self, "lin"):
            x = self.lin(x)
        return x


class GCN(LeakyGNN, _pyg.GCN):
    r"""PyG's :class:`~torch_geometric.nn.models.GCN` (Kipf & Welling, 2017) with one
    activation per layer (see :class:`LeakyGNN`).

    ``cached=True`` (a :class:`~torch_geometric.nn.conv.GCNConv` argument) caches the
    normalized operator per graph: a new ``edge_index`` or ``edge_weight`` tensor, or an
    in-place edit of one, recomputes it.

    Example:
        >>> model = GCN(16, 32, num_layers=3, out_channels=4, act="leaky_relu",
        ...             act_kwargs={"negative_slope": 0.2})
        >>> model
        GCN(16, 4, num_layers=3)
        >>> model.acts[0] is model.acts[1], model.acts[0]
        (False, LeakyReLU(negative_slope=0.2))
    """

    conv_name: ClassVar[str | None] = "gcn"
    supports_edge_weight: Final[bool] = True
    supports_edge_attr: Final[bool] = False
    supports_norm_batch: Final[bool]


class GraphSAGE(LeakyGNN, _pyg.GraphSAGE):
    """PyG's :class:`~torch_geometric.nn.models.GraphSAGE` with one activation per layer
    (see :class:`LeakyGNN`)."""

    conv_name: ClassVar[str | None] = "sage"
    supports_edge_weight: Final[bool] = False
    supports_edge_attr: Final[bool] = False
    supports_norm_batch: Final[bool]


class GIN(LeakyGNN, _pyg.GIN):
    """PyG's :class:`~torch_geometric.nn.models.GIN` with one activation per layer (see
    :class:`LeakyGNN`); the MLP inside each layer also has an activation of its own."""

    conv_name: ClassVar[str | None] = "gin"
    supports_edge_weight: Final[bool] = False
    supports_edge_attr: Final[bool] = False
    supports_norm_batch: Final[bool]

    def init_conv(self, in_channels: int, out_channels: int, **kwargs: Any) -> GINConv:
        mlp = MLP(
            [in_channels, out_channels, out_channels],
            act=self._act_spec.build(out_channels),
            act_first=self.act_first,
            norm=self.norm,
            norm_kwargs=self.norm_kwargs,
        )
        return GINConv(mlp, **kwargs)


class GAT(LeakyGNN, _pyg.GAT):
    """PyG's :class:`~torch_geometric.nn.models.GAT` (``v2``, ``heads``, ``concat``,
    ``edge_dim``; attention dropout set from ``dropout``) with one activation per layer
    (see :class:`LeakyGNN`)."""

    conv_name: ClassVar[str | None] = "gat"
    supports_edge_weight: Final[bool] = False
    supports_edge_attr: Final[bool] = True
    supports_norm_batch: Final[bool]


class PNA(LeakyGNN, _pyg.PNA):
    """PyG's :class:`~torch_geometric.nn.models.PNA` with one activation per layer (see
    :class:`LeakyGNN`)."""

    conv_name: ClassVar[str | None] = "pna"
    supports_edge_weight: Final[bool] = False
    supports_edge_attr: Final[bool] = True
    supports_norm_batch: Final[bool]


class EdgeCNN(LeakyGNN, _pyg.EdgeCNN):
    """PyG's :class:`~torch_geometric.nn.models.EdgeCNN` with one activation per layer
    (see :class:`LeakyGNN`); the MLP inside each layer also has an activation of its
    own."""

    conv_name: ClassVar[str | None] = "edgecnn"
    supports_edge_weight: Final[bool] = False
    supports_edge_attr: Final[bool] = False
    supports_norm_batch: Final[bool]

    def init_conv(self, in_channels: int, out_channels: int, **kwargs: Any) -> EdgeConv:
        mlp = MLP(
            [2 * in_channels, out_channels, out_channels],
            act=self._act_spec.build(out_channels),
            act_first=self.act_first,
            norm=self.norm,
            norm_kwargs=self.norm_kwargs,
        )
        return EdgeConv(mlp, **kwargs)


class GCNII(torch.nn.Module):
    r"""GCNII (Chen et al., 2020, "Simple and Deep Graph Convolutional Networks") with one
    activation per layer.

    The paper's network: input dropout, a linear input map and its activation, then
    ``num_layers`` :class:`~torch_geometric.nn.conv.GCN2Conv` layers (initial residual
    :math:`\alpha`, identity mapping :math:`\beta_\ell = \log(\theta / \ell + 1)`), each
    after a dropout and followed by its activation, then a dropout and a linear output
    map:

    .. math::
        \mathbf{H}^{(0)} = \phi_0(\mathbf{X}\mathbf{W}_{in}), \quad
        \mathbf{H}^{(\ell)} = \phi_\ell\Big(\big((1-\alpha)\hat{\mathbf{A}}
        \mathbf{H}^{(\ell-1)} + \alpha \mathbf{H}^{(0)}\big)\big((1-\beta_\ell)\mathbf{I}
        + \beta_\ell \mathbf{W}^{(\ell)}\big)\Big)

    with dropout before the input map, before every GCN2Conv and before the output map.
    The normalized operator :math:`\hat{\mathbf{A}}` is computed once per forward (once
    per graph with ``cached=True``), as in the authors' code.

    Args:
        in_channels (int): Input width.
        hidden_channels (int): Hidden width.
        num_layers (int): Number of GCN2Conv layers.
        out_channels (int, optional): Output width; ``None`` returns the last hidden
            layer. (default: ``None``)
        dropout (float, optional): Dropout probability. (default: ``0.0``)
        act, act_kwargs: As in :class:`LeakyGNN`; ``num_layers + 1`` instances (input
            map and every layer).
        alpha (float, optional): Initial-residual strength. (default: ``0.1``)
        theta (float, optional): Identity-mapping strength. (default: ``0.5``)
        shared_weights (bool, optional): One weight matrix per layer for both terms.
            (default: ``True``)
        cached (bool, optional): Cache the operator per graph. (default: ``False``)
        add_self_loops (bool, optional): As in ``gcn_norm``. (default: ``True``)
        normalize (bool, optional): Normalize the adjacency. (default: ``True``)

    Example:
        >>> model = GCNII(16, 32, num_layers=8, out_channels=3, dropout=0.6,
        ...               act="prelu", alpha=0.1, theta=0.5)
        >>> len(model.convs), len(model.acts)
        (8, 9)
        >>> x, edge_index = torch.randn(10, 16), torch.tensor([[0, 1, 2], [1, 2, 0]])
        >>> model(x, edge_index).shape
        torch.Size([10, 3])
    """

    conv_name: ClassVar[str | None] = "gcnii"
    supports_edge_weight: Final[bool] = True
    supports_edge_attr: Final[bool] = False

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        num_layers: int,
        out_channels: int | None = None,
        dropout: float = 0.0,
        act: str | Any | None = "relu",
        act_kwargs: dict[str, Any] | None = None,
        *,
        alpha: float = 0.1,
        theta: float = 0.5,
        shared_weights: bool = True,
        cached: bool = False,
        add_self_loops: bool = True,
        normalize: bool = True,
        conv: str | None = None,
    ) -> None:
        super().__init__()
        if conv is not None and model_class(conv) is not GCNII:
            raise ValueError(f"conv={conv!r} does not name GCNII")
        _positive_int("in_channels", in_channels)
        _positive_int("hidden_channels", hidden_channels)
        _positive_int("num_layers", num_layers)
        if out_channels is not None:
            _positive_int("out_channels", out_channels)
        for name, value in (("alpha", alpha), ("theta", theta)):
            if not (isinstance(value, (int, float)) and value >= 0 and value == value):
                raise ValueError(f"{name} must be a finite float >= 0, got {value!r}")
        if not alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        spec = ActivationSpec(act, act_kwargs)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.out_channels = out_channels if out_channels is not None else hidden_channels
        self.alpha, self.theta = float(alpha), float(theta)
        self.cached, self.add_self_loops, self.normalize = cached, add_self_loops, normalize
        self.act_kwargs = dict(act_kwargs or {})
        self._act_spec = spec
        self.dropout = torch.nn.Dropout(_check_dropout(dropout))
        self.lins = torch.nn.ModuleList([torch.nn.Linear(in_channels, hidden_channels)])
        if out_channels is not None:
            self.lins.append(torch.nn.Linear(hidden_channels, out_channels))
        self.convs = torch.nn.ModuleList(
            [
                GCN2Conv(
                    hidden_channels,
                    alpha,
                    theta,
                    layer + 1,
                    shared_weights=shared_weights,
                    normalize=False,
                )
                for layer in range(num_layers)
            ]
        )
        self.acts = torch.nn.ModuleList(
            [spec.build(hidden_channels) for _ in range(num_layers + 1)]
        )
        self._operator = OperatorCache()

    @property
    def act_name(self) -> str:
        """The activation's name (gnnleaky kind, class or function name)."""
        return self._act_spec.label

    @property
    def num_activations(self) -> int:
        """``num_layers + 1``: the input map's activation and one per layer."""
        return self.num_layers + 1

    def reset_parameters(self) -> None:
        """Reset the linear maps, the convs and every activation."""
        for module in (*self.lins, *self.convs, *self.acts):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self._operator.clear()

    def _graph(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        if not self.normalize:
            return edge_index, edge_weight

        def build() -> tuple[Tensor, Tensor]:
            return gcn_operator(
                edge_index,
                edge_weight,
                x.size(0),
                add_self_loops=self.add_self_loops,
                dtype=x.dtype,
            )

        if self.cached and _eager():
            return self._operator.get(build, edge_index, edge_weight, extra=(x.size(0),))
        return build()

    def _layers(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None,
        pre: list[Tensor] | None,
        post: list[Tensor] | None,
    ) -> Tensor:
        if _eager() and x.dim() == 2 and x.size(1) != self.in_channels:
            raise ValueError(
                f"x has {x.size(1)} features but the model was built with "
                f"in_channels={self.in_channels}"
            )
        edge_index, edge_weight = self._graph(x, edge_index, edge_weight)
        x = self.lins[0](self.dropout(x))
        x0 = None
        for i, act in enumerate(self.acts):
            if i > 0:
                x = self.convs[i - 1](self.dropout(x), x0, edge_index, edge_weight)
            if pre is not None and post is not None:
                pre.append(x.clone())
            x = act(x)
            if post is not None:
                post.append(x)
            if i == 0:
                x0 = x
        if len(self.lins) > 1:
            x = self.lins[1](self.dropout(x))
        return x

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """Forward pass: ``[N, out_channels]`` (the last hidden layer without
        ``out_channels``)."""
        return self._layers(x, edge_index, edge_weight, None, None)

    def forward_hidden(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None
    ) -> tuple[Tensor, Hidden]:
        """:meth:`forward` that also returns the input map's and every layer's features
        (before and after their activations) as :class:`Hidden`."""
        pre: list[Tensor] = []
        post: list[Tensor] = []
        out = self._layers(x, edge_index, edge_weight, pre, post)
        return out, Hidden(pre, post)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"num_layers={self.num_layers}, alpha={self.alpha}, theta={self.theta})"
        )


#: Registry of models by name (``conv`` in sweeps and in ``LeakyGNN(..., conv=...)``).
MODELS: dict[str, type[torch.nn.Module]] = {
    "gcn": GCN,
    "sage": GraphSAGE,
    "gat": GAT,
    "gin": GIN,
    "pna": PNA,
    "edgecnn": EdgeCNN,
    "gcnii": GCNII,
}
_MODEL_LOOKUP = {_normalize(k): v for k, v in MODELS.items()} | {
    _normalize(v.__name__): v for v in MODELS.values()
}


def model_class(name: str) -> type[torch.nn.Module]:
    """The model registered under ``name`` (``"gcn"``, ``"sage"``/``"GraphSAGE"``, ...).

    Example:
        >>> model_class("sage").__name__, model_class("GraphSAGE").__name__
        ('GraphSAGE', 'GraphSAGE')
    """
    cls = _MODEL_LOOKUP.get(_normalize(name)) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"conv must be one of {sorted(MODELS)}, got {name!r}")
    return cls
