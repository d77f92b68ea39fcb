r"""StackedGNN: K same-shape GNNs trained in one pass (the engine of fast sweeps).

A depth x slope x activation x seed grid trains hundreds of models that share a graph and
a shape. :class:`StackedGNN` holds K of them (same conv, depth and width; each with its own
weights, activation kind, slopes, dropout mask and seed) as one module: per-model weights
are ``[K, in, out]`` tensors, one forward and one backward call run all K models, and the
normalized adjacency is built once per graph. Model ``k`` is exactly
:class:`~gnnleaky.nn.LeakyGNN` number ``k``: :meth:`StackedGNN.from_models` copies K models
in and :meth:`StackedGNN.model` copies one back out, with outputs equal up to float rounding.

Two execution paths compute the same numbers (tested against each other and against
``LeakyGNN``):

* **Fast CPU path** (float32 CPU features without input gradients, no hidden features
  asked; :mod:`gnnleaky.engine.fast`): one :class:`torch.autograd.Function` for the whole
  stack with a hand-written forward and backward. Per layer and model: one oneDNN GEMM and
  one fused numba pass (sparse product + bias + activation + dropout decoded from the
  random bits) forward; one fused activation-gradient pass, one sparse product and two
  GEMMs backward. The K models are spread over ``torch.get_num_threads()`` threads (one
  model per core); a single model uses row-parallel kernels instead. Activations that the
  backward needs live in buffers reused from step to step. This path is what sweeps run;
  ``GNNLEAKY_FAST=0`` turns it off.
* **Autograd path** (everything else: float64, CUDA, ``return_hidden=True``, input
  gradients): the features of all models side by side in one :math:`N \times (K C)`
  matrix, one MKL CSR ``addmm`` per propagation (forward with the bias, and backward with
  the precomputed transpose, so directed graphs are right too), per-model oneDNN GEMMs
  (:class:`_PerModelLinear`), one ``torch.prelu`` per layer with a hand-written backward
  (:class:`_PReLUDropout`).

Features sparser than :data:`SPARSE_FEATURE_DENSITY` (Cora's bag-of-words: 1.3% non-zeros)
enter the first layer as a CSR matrix. Each choice of both paths was measured; the numbers
and the commands that reproduce them are in ``docs/performance.md``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils import parametrize
from torch_geometric.nn.conv import GCNConv

from gnnleaky._validation import check_features
from gnnleaky.engine import fast
from gnnleaky.engine.dropout import SeededDropout, apply_mask
from gnnleaky.nn.activation import SlopeBounds
from gnnleaky.nn.functional import OperatorCache, normalized_adjacency
from gnnleaky.nn.models import GCN, Hidden, LeakyGNN

__all__ = [
    "SPARSE_FEATURE_DENSITY",
    "STACKABLE_CONVS",
    "StackedGNN",
    "act_spec",
    "check_stackable",
    "fast_graph",
    "graph_operators",
    "raw_slope",
]

#: Convs that :class:`StackedGNN` can stack (others train one by one).
STACKABLE_CONVS: tuple[str, ...] = ("gcn",)

#: Input features with at most this share of non-zeros are multiplied as a CSR matrix.
#: A CSR product costs about 7x a dense one per multiply-add on this kind of CPU, so 0.1
#: keeps the sparse path only where it is clearly cheaper.
SPARSE_FEATURE_DENSITY: float = 0.1


def _csr_matmul(a: Tensor, h: Tensor, bias: Tensor | None = None) -> Tensor:
    """``bias + a @ h`` for CSR ``a`` through ``torch.addmm`` (see :class:`_SparseMatmul`)."""
    if bias is None:
        bias = h.new_zeros(h.size(1))
    return torch.addmm(bias, a, h)


class _SparseMatmul(torch.autograd.Function):
    """``bias + a @ h`` for a constant CSR ``a``; the backward multiplies by ``a_t``.

    ``torch.addmm(bias, csr, dense)`` is one MKL sparse call that also adds the bias, the
    fastest of torch's and PyG's sparse products (``docs/performance.md``), so every
    product of this path, forward and backward, goes through it.
    """

    @staticmethod
    def forward(ctx: Any, a: Tensor, a_t: Tensor, h: Tensor, bias: Tensor | None) -> Tensor:
        ctx.a_t = a_t
        return _csr_matmul(a, h, bias)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor | None, Tensor | None]:
        grad = grad.contiguous()
        grad_h = _csr_matmul(ctx.a_t, grad) if ctx.needs_input_grad[2] else None
        grad_b = grad.sum(0) if ctx.needs_input_grad[3] else None
        return None, None, grad_h, grad_b


def _spmm(a: Tensor, a_t: Tensor, h: Tensor, bias: Tensor | None = None) -> Tensor:
    return _SparseMatmul.apply(a, a_t, h.contiguous(), bias)


class _PReLUDropout(torch.autograd.Function):
    """``prelu(h, w) * mask * scale`` with a fast backward, for K models side by side.

    ``h`` is ``[N, K C]``, ``w`` the ``[K C]`` slopes, ``mask`` ``[K, N, C]`` of 0/1 (or
    ``None``). torch's own PReLU backward is many times its forward on wide inputs
    (``docs/performance.md``); this one is a few elementwise ops. Same subgradient as torch at 0
    (``h > 0`` passes the gradient, ``h <= 0`` scales it by the slope).
    """

    @staticmethod
    def forward(ctx: Any, h: Tensor, w: Tensor, mask: Tensor | None, scale: float) -> Tensor:
        out = torch.prelu(h, w)
        if mask is not None:
            k, n, c = mask.shape
            out3 = out.view(n, k, c)
            torch.addcmul(out.new_zeros(()), out3, mask.transpose(0, 1), value=scale, out=out3)
        ctx.save_for_backward(h, w, mask)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        h, w, mask = ctx.saved_tensors
        if mask is not None:
            k, n, c = mask.shape
            g3 = torch.empty(n, k, c, dtype=grad.dtype, device=grad.device)
            torch.addcmul(
                grad.new_zeros(()),
                grad.view(n, k, c),
                mask.transpose(0, 1),
                value=ctx.scale,
                out=g3,
            )
            grad = g3.view(n, k * c)
        grad_h = grad_w = None
        if ctx.needs_input_grad[0]:
            d = torch.gt(h, 0, out=torch.empty_like(h))  # 1.0 where h > 0 (float out: fast)
            grad_h = torch.addcmul(w, d, 1 - w, out=d).mul_(grad)  # h > 0: 1, else: w
        if ctx.needs_input_grad[1]:
            grad_w = (grad * h.clamp(max=0)).sum(0)
        return grad_h, grad_w, None, None


def _per_model(t: Tensor, k: int) -> Tensor:
    """``[N, K C]`` -> contiguous ``[K, N, C]`` (a view when ``K = 1``)."""
    return t.view(t.size(0), k, -1).transpose(0, 1).contiguous()


def _blocks_matmul(hs: Tensor, weight: Tensor) -> Tensor:
    """``[h_1 W_1^T, ..., h_K W_K^T]`` as ``[N, K Cout]`` for ``hs`` ``[K, N, Cin]`` and
    ``weight`` ``[K, Cout, Cin]``."""
    k, n, _ = hs.shape
    lin = fast.onednn_linear()
    if lin is None or hs.device.type != "cpu" or hs.dtype != torch.float32:
        return torch.bmm(hs, weight.transpose(1, 2)).transpose(0, 1).reshape(n, -1)
    outs = [lin(hs[i], weight[i]) for i in range(k)]
    return outs[0] if k == 1 else torch.cat(outs, dim=1)


class _PerModelLinear(torch.autograd.Function):
    """``h_k @ W_k`` for K models side by side: ``[N, K Cin] x [K, Cin, Cout] -> [N, K Cout]``.

    Each model's product is one oneDNN fp32 GEMM (faster than MKL's ``bmm`` over the K
    models where it was measured: ``docs/performance.md``). oneDNN copies strided inputs,
    so the column blocks are first transposed to a contiguous ``[K, N, C]`` in one copy,
    and the K outputs are concatenated back. The weight gradient (a reduction over N) is
    one MKL ``bmm`` on the contiguous blocks. Without oneDNN everything falls back to
    ``bmm``.
    """

    @staticmethod
    def forward(ctx: Any, h: Tensor, w: Tensor) -> Tensor:
        hs = _per_model(h, w.size(0))
        ctx.save_for_backward(hs, w)
        return _blocks_matmul(hs, w.transpose(1, 2))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        hs, w = ctx.saved_tensors
        gs = _per_model(grad.contiguous(), w.size(0))
        grad_h = _blocks_matmul(gs, w) if ctx.needs_input_grad[0] else None
        grad_w = torch.bmm(hs.transpose(1, 2), gs) if ctx.needs_input_grad[1] else None
        return grad_h, grad_w


def _bounds_of(act: torch.nn.Module) -> tuple[float, float] | None:
    if not parametrize.is_parametrized(act, "weight"):
        return None
    plist = act.parametrizations.weight
    if len(plist) != 1 or not isinstance(plist[0], SlopeBounds):
        raise ValueError(
            f"stacking supports PReLU slopes parametrized by SlopeBounds only, got {list(plist)}"
        )
    return (plist[0].lo, plist[0].hi)


def raw_slope(act: torch.nn.Module) -> Tensor:
    """The free tensor behind a PReLU slope (the SlopeBounds input when bounded)."""
    if parametrize.is_parametrized(act, "weight"):
        return act.parametrizations.weight.original
    return act.weight


def act_spec(act: torch.nn.Module, channels: int) -> tuple[str, float, bool, Any]:
    """(kind, fixed slope, layer-wise, bounds) of one activation module."""
    if isinstance(act, torch.nn.PReLU):
        n = act.num_parameters
        if n not in (1, channels):
            raise ValueError(f"PReLU with num_parameters={n} cannot act on {channels} channels")
        return "prelu", 0.0, n == 1, _bounds_of(act)
    if isinstance(act, torch.nn.LeakyReLU):
        return "fixed", float(act.negative_slope), False, None
    if isinstance(act, torch.nn.ReLU):
        return "fixed", 0.0, False, None
    if isinstance(act, torch.nn.Identity):
        return "fixed", 1.0, False, None
    raise ValueError(
        "stacking supports activations ReLU, LeakyReLU, PReLU and Identity, "
        f"got {type(act).__name__}"
    )


def graph_operators(x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> dict[str, Any]:
    """What the engine computes a graph with: the GCN operator and its transpose as CSR
    (``a``, ``a_t``), sparse features as CSR where at most
    :data:`SPARSE_FEATURE_DENSITY` of them are non-zero (``feats``, ``feats_t``), and a
    slot for the fast path's numpy views (``fast``)."""
    a, a_t = normalized_adjacency(edge_index, edge_weight, x.size(0), dtype=x.dtype)
    a, a_t = a.to(x.device), a_t.to(x.device)
    feats = feats_t = None
    if x.numel() and not x.is_cuda:
        nnz = int(torch.count_nonzero(x))
        if nnz <= SPARSE_FEATURE_DENSITY * x.numel():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                feats = x.to_sparse_csr()
                feats_t = x.t().to_sparse_csr()
    return {"a": a, "a_t": a_t, "feats": feats, "feats_t": feats_t, "fast": None}


def fast_graph(x: Tensor, ops: dict[str, Any]) -> fast.FastGraph:
    """The fast path's views of :func:`graph_operators`' result (made once, kept in it)."""
    if ops["fast"] is None:
        ops["fast"] = fast.FastGraph(ops["a"], ops["a_t"], ops["feats"], ops["feats_t"], x)
    return ops["fast"]


def check_stackable(model: torch.nn.Module) -> None:
    """Raise a ValueError saying why ``model`` cannot be computed by the engine, if it
    cannot: a :class:`gnnleaky.nn.GCN` without norms or jumping knowledge, whose
    GCNConv layers keep their defaults and whose activations are ReLU, Leaky ReLU,
    PReLU (bounded by :class:`~gnnleaky.nn.SlopeBounds` or not) or the identity."""
    m = model
    if not isinstance(m, GCN):
        raise ValueError(
            f"stacking is only implemented for gnnleaky.nn.GCN models, got "
            f"{type(m).__name__}; train such models one by one"
        )
    if hasattr(m, "jk") or hasattr(m, "lin") or m.jk_mode is not None:
        raise ValueError("stacking does not support jumping knowledge (jk=None only)")
    if getattr(m, "initial_residual", False):
        raise ValueError("stacking does not support the initial residual (residual='initial')")
    if any(not isinstance(n, torch.nn.Identity) for n in m.norms):
        raise ValueError("stacking does not support norm layers (norm=None only)")
    for c in m.convs:
        if (
            not isinstance(c, GCNConv)
            or c.aggr != "add"
            or c.bias is None
            or not c.normalize
            or not c.add_self_loops
            or c.improved
            or c.flow != "source_to_target"
        ):
            raise ValueError(
                "stacking needs GCNConv layers with aggr='add', a bias, "
                "normalize=True, add_self_loops=True and improved=False "
                "(GCN's defaults)"
            )
    width = m.convs[0].out_channels
    for act in m.acts[: m.num_activations]:
        act_spec(act, width)


def _slope_tensors(
    models: list[LeakyGNN],
    specs: list[list[tuple[str, float, bool, Any]]],
    a: int,
    c: int,
    dtype: torch.dtype,
) -> tuple[dict[str, Tensor], list[Any], Tensor | None]:
    """The slopes of K models as a stack holds them: buffers (fixed slopes, layer-wise
    flags, one mask per bounds group), the bounds of each group, and the raw learned
    slopes ``[K, A, C]`` (``None`` when no slope is learned)."""
    k = len(models)
    fixed = torch.zeros(k, a, c)
    learned = torch.zeros(k, a, dtype=torch.bool)
    layer_mode = torch.zeros(k, a, dtype=torch.bool)
    raw = torch.zeros(k, a, c)
    groups: dict[Any, Tensor] = {}
    for j, (m, row) in enumerate(zip(models, specs)):
        for i, (kind, value, lw, bounds) in enumerate(row):
            if kind == "fixed":
                fixed[j, i] = value
                continue
            learned[j, i] = True
            layer_mode[j, i] = lw
            src = raw_slope(m.acts[i]).detach()
            raw[j, i, : src.numel()] = src
            groups.setdefault(bounds, torch.zeros(k, a, dtype=torch.bool))[j, i] = True
    buffers = {"slope_fixed": fixed.to(dtype), "slope_layer_mode": layer_mode}
    for i, mask in enumerate(groups.values()):
        buffers[f"slope_group_{i}"] = mask
    return buffers, list(groups), raw.to(dtype) if bool(learned.any()) else None


class StackedGNN(torch.nn.Module):
    r"""K GCNs of one shape, each with its own weights, activation, slopes and dropout.

    Model :math:`k` is a :class:`~gnnleaky.nn.LeakyGNN` with ``conv="gcn"``:

    .. math::
        \mathbf{H}_k^{(\ell)} = \phi_{\ell, k}\big(\hat{\mathbf{A}}\,
        \mathbf{H}_k^{(\ell-1)} \mathbf{W}_k^{(\ell)} + \mathbf{b}_k^{(\ell)}\big),
        \qquad \phi_{\ell,k}(x)_c = \max(0, x) + \alpha_{\ell,k,c} \min(0, x)

    where :math:`\alpha_{\ell,k,c}` is 0 (ReLU), a fixed slope (Leaky ReLU), 1 (identity)
    or a learned PReLU slope (layer-wise or channel-wise, optionally bounded through the
    same :class:`~gnnleaky.nn.SlopeBounds` map). All K models run together: the weights
    are ``[K, in, out]`` tensors (``weights[l]``, ``biases[l]`` as ``[K, out]``) and
    :math:`\hat{\mathbf{A}}` is built once per graph and cached; float32 CPU input runs
    the fused fast path (one model per core), anything else the autograd path (see the
    module documentation). Learned slopes are the raw tensor
    ``slope_raw`` of shape ``[K, A, C]`` (``A`` activated layers); see
    :meth:`slope_parameters`.

    The usual way to build one is :meth:`from_models`; the constructor builds the K
    :class:`~gnnleaky.nn.LeakyGNN` itself (under ``torch.manual_seed(seeds[k])`` inside
    :func:`torch.random.fork_rng` when ``seeds`` are given, so each model is initialised
    exactly as ``LeakyGNN`` would be and the caller's random state is left untouched).

    Args:
        in_channels (int): Input feature width.
        hidden_channels (int): Hidden width.
        num_layers (int): Number of GCN layers.
        out_channels (int, optional): Output width (last layer without activation).
            (default: ``None``)
        dropout (float, optional): Dropout after each activation; masks are independent
            per model (see :class:`SeededDropout`). (default: ``0.0``)
        act (str or list[str], optional): One activation name for all models or one per
            model. (default: ``"relu"``)
        act_kwargs (dict or list[dict], optional): Their arguments, e.g.
            ``{"negative_slope": 0.1}`` or ``{"mode": "channel", "bounds": (0, 1)}``.
        num_models (int, optional): ``K``; inferred from the lists or ``seeds``.
        seeds (list[int], optional): One initialisation seed per model.
        residual (bool, optional): As in ``LeakyGNN``. (default: ``False``)
        conv (str, optional): Only ``"gcn"`` (see :data:`STACKABLE_CONVS`).

    Shapes:
        - **input:** node features :math:`(N, F_{in})`, edge index :math:`(2, E)`,
          edge weights :math:`(E)` *(optional)*
        - **output:** :math:`(K, N, F_{out})`; with ``return_hidden=True`` also
          :class:`~gnnleaky.nn.Hidden` lists of :math:`(K, N, C)` views

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> models = [LeakyGNN(8, 16, 3, 2, act="leaky_relu",
        ...                    act_kwargs={"negative_slope": a}) for a in (0.0, 0.1, 0.5)]
        >>> stacked = StackedGNN.from_models(models)
        >>> x, edge_index = torch.randn(5, 8), torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
        >>> out = stacked(x, edge_index)
        >>> out.shape
        torch.Size([3, 5, 2])
        >>> bool((out[1] - models[1](x, edge_index)).abs().max() < 1e-5)
        True
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        num_layers: int,
        out_channels: int | None = None,
        dropout: float = 0.0,
        act: str | Sequence[str] = "relu",
        act_kwargs: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
        *,
        num_models: int | None = None,
        seeds: Sequence[int] | None = None,
        residual: bool = False,
        conv: str = "gcn",
    ) -> None:
        super().__init__()
        acts = [act] if isinstance(act, str) else list(act)
        kws = (
            [act_kwargs] if act_kwargs is None or isinstance(act_kwargs, dict) else list(act_kwargs)
        )
        sizes = {len(v) for v in (acts, kws) if len(v) != 1}
        if seeds is not None:
            sizes.add(len(seeds))
        if num_models is not None:
            sizes.add(int(num_models))
        if len(sizes) > 1:
            raise ValueError(
                f"act, act_kwargs, seeds and num_models disagree on the number "
                f"of models: {sorted(sizes)}"
            )
        k = sizes.pop() if sizes else 1
        if k < 1:
            raise ValueError(f"num_models must be >= 1, got {k}")
        acts, kws = acts * (k // len(acts)), kws * (k // len(kws))

        def build(i: int) -> LeakyGNN:
            return LeakyGNN(
                in_channels,
                hidden_channels,
                num_layers,
                out_channels,
                dropout=dropout,
                act=acts[i],
                act_kwargs=kws[i],
                conv=conv,
                residual=residual,
            )

        models = []
        for i in range(k):
            if seeds is None:
                models.append(build(i))
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(seeds[i]))
                    models.append(build(i))
        self._load(models)

    @classmethod
    def from_models(cls, models: Sequence[LeakyGNN], *, copy_models: bool = True) -> StackedGNN:
        """Stack K :class:`~gnnleaky.nn.LeakyGNN` of one shape (their weights are copied).

        With ``copy_models=False`` the models themselves are kept as the layout templates
        of :meth:`model` instead of deep copies (a 64-layer GCN takes 0.2 s to copy): for
        callers that hand the models over and do not touch them again.

        Raises:
            ValueError: if a model is not a ``LeakyGNN`` with ``conv`` in
                :data:`STACKABLE_CONVS`, uses norms or jumping knowledge, or the shapes,
                dropout or residual settings differ.
        """
        obj = cls.__new__(cls)
        torch.nn.Module.__init__(obj)
        obj._load(list(models), copy_models=copy_models)
        return obj

    # -- building ---------------------------------------------------------------------
    def _load(self, models: list[LeakyGNN], *, copy_models: bool = True) -> None:
        if not models:
            raise ValueError("models must be a non-empty list of LeakyGNN")
        for m in models:
            check_stackable(m)
        ref = models[0]

        def shape(m: LeakyGNN) -> tuple:
            return (
                m.in_channels,
                m.hidden_channels,
                m.num_layers,
                m.num_activations,
                tuple((c.in_channels, c.out_channels) for c in m.convs),
                float(m.dropout.p),
                bool(m.residual),
            )

        for i, m in enumerate(models):
            if shape(m) != shape(ref):
                raise ValueError(
                    f"models[{i}] differs from models[0] in shape, dropout or "
                    f"residual: {shape(m)} != {shape(ref)}"
                )
        # models with their own dropout generators (SeededDropout, one generator each)
        # bring them along: the stack then draws the masks each would draw alone
        gens = [getattr(m.dropout, "generators", None) for m in models]
        own = all(g is not None and len(g) == 1 for g in gens)
        dropout = SeededDropout(float(ref.dropout.p), [g[0] for g in gens] if own else None)
        num_acts = ref.num_activations
        width = ref.convs[0].out_channels if num_acts else 1
        specs = [[act_spec(act, width) for act in m.acts[:num_acts]] for m in models]
        with torch.no_grad():
            weights = [
                torch.stack([m.convs[l].lin.weight.t() for m in models])
                for l in range(ref.num_layers)
            ]
            biases = [torch.stack([m.convs[l].bias for m in models]) for l in range(ref.num_layers)]
            slopes = _slope_tensors(models, specs, num_acts, width, weights[0].dtype)
        # Templates are kept out of the module tree: they only give model(k) its layout.
        templates = [copy.deepcopy(m).cpu() if copy_models else m for m in models]
        self._assemble(templates, specs, dropout, weights, biases, *slopes)

    def _assemble(
        self,
        templates: list[LeakyGNN],
        specs: list[list[tuple[str, float, bool, Any]]],
        dropout: SeededDropout,
        weights: Sequence[Tensor],
        biases: Sequence[Tensor],
        buffers: dict[str, Tensor],
        bound_groups: list[Any],
        slope_raw: Tensor | None,
    ) -> None:
        """The one place that sets a stack's state (``_load`` and :meth:`select`)."""
        ref = templates[0]
        self.num_models = len(templates)
        self.in_channels = ref.in_channels
        self.hidden_channels = ref.hidden_channels
        self.num_layers = ref.num_layers
        self.out_channels = ref.convs[-1].out_channels
        self.num_acts = ref.num_activations
        self.residual = bool(ref.residual)
        self.widths = [ref.convs[0].in_channels] + [c.out_channels for c in ref.convs]
        self.dropout = dropout
        self._templates = templates
        self._specs = specs
        self._bound_groups = bound_groups
        self._cache = OperatorCache()
        #: The fast path's activation buffers (built on first use; see :meth:`clear_cache`).
        self.fast_workspace: fast.Workspace | None = None
        self.weights = torch.nn.ParameterList([torch.nn.Parameter(w) for w in weights])
        self.biases = torch.nn.ParameterList([torch.nn.Parameter(b) for b in biases])
        for name, buf in buffers.items():
            self.register_buffer(name, buf)
        self.slope_raw = None if slope_raw is None else torch.nn.Parameter(slope_raw)

    # -- slopes -------------------------------------------------------------------------
    def slopes(self) -> Tensor:
        r"""Negative slopes of every model, activated layer and channel: ``[K, A, C]``.

        Keeps the autograd graph to ``slope_raw`` (learned PReLU slopes)."""
        s = self.slope_fixed
        theta = self.slope_raw
        if theta is None:
            return s
        theta = torch.where(
            self.slope_layer_mode[..., None], theta[..., :1].expand_as(theta), theta
        )
        for i, bounds in enumerate(self._bound_groups):
            value = theta if bounds is None else SlopeBounds(*bounds)(theta)
            s = torch.where(getattr(self, f"slope_group_{i}")[..., None], value, s)
        return s

    def model_slopes(self, k: int) -> dict[str, Tensor]:
        """Model ``k``'s slopes as :func:`gnnleaky.nn.slopes` gives them for
        ``self.model(k)`` (``{"acts.i": tensor}``, detached), without building the model.

        Example:
            >>> from gnnleaky.nn import LeakyGNN
            >>> models = [LeakyGNN(4, 8, 3, 2, act="leaky_relu",
            ...                    act_kwargs={"negative_slope": 0.1}),
            ...           LeakyGNN(4, 8, 3, 2, act="prelu", act_kwargs={"init": 0.25})]
            >>> stacked = StackedGNN.from_models(models)
            >>> {k: round(float(v), 4) for k, v in stacked.model_slopes(0).items()}
            {'acts.0': 0.1, 'acts.1': 0.1}
            >>> {k: round(float(v), 4) for k, v in stacked.model_slopes(1).items()}
            {'acts.0': 0.25, 'acts.1': 0.25}
        """
        if not -self.num_models <= k < self.num_models:
            raise ValueError(f"k must be in [0, {self.num_models}), got {k}")
        k = k % self.num_models
        with torch.no_grad():
            values = self.slopes()[k] if self.num_acts else None
        out = {}
        for i, (kind, value, layer_wise, _) in enumerate(self._specs[k]):
            if kind == "fixed":
                out[f"acts.{i}"] = torch.tensor([value])
            else:
                out[f"acts.{i}"] = values[i, :1].clone() if layer_wise else values[i].clone()
        return out

    def slope_l1(self) -> Tensor:
        r"""Each model's L1 penalty of its learned slopes (:func:`gnnleaky.nn.slope_l1`
        model by model): ``[K]``, with the autograd graph to ``slope_raw``."""
        if self.slope_raw is None:
            return torch.zeros(self.num_models, dtype=self.slope_fixed.dtype)
        s = self.slopes().abs()
        learned = torch.zeros_like(self.slope_layer_mode)
        for i in range(len(self._bound_groups)):
            learned = learned | getattr(self, f"slope_group_{i}")
        layer = self.slope_layer_mode[..., None]
        first = torch.zeros_like(s, dtype=torch.bool)
        first[..., 0] = True
        counted = learned[..., None] & (~layer | first)  # a layer-wise slope counts once
        return (s * counted).sum((1, 2))

    def forward_hidden(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None
    ) -> tuple[Tensor, Hidden]:
        """:meth:`forward` with ``return_hidden=True``: ``[K, N, out]`` and every layer's
        features as :class:`~gnnleaky.nn.Hidden` lists of ``[K, N, C]``."""
        return self.forward(x, edge_index, edge_weight, return_hidden=True)

    def slope_parameters(self) -> list[torch.nn.Parameter]:
        """The free slope parameters (exempt them from weight decay)."""
        return [self.slope_raw] if self.slope_raw is not None else []

    def param_groups(
        self, weight_decay: float = 0.0, slope_weight_decay: float = 0.0
    ) -> list[dict[str, Any]]:
        """Optimizer groups as :func:`gnnleaky.nn.param_groups`: slopes without decay."""
        slope_ids = {id(p) for p in self.slope_parameters()}
        groups = [
            {
                "params": [p for p in self.parameters() if id(p) not in slope_ids],
                "weight_decay": float(weight_decay),
            }
        ]
        if slope_ids:
            groups.append(
                {"params": self.slope_parameters(), "weight_decay": float(slope_weight_decay)}
            )
        return groups

    # -- graph operators ----------------------------------------------------------------
    def _operators(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None
    ) -> dict[str, Any]:
        """The graph's operators (built once per graph: see
        :class:`~gnnleaky.nn.functional.OperatorCache`)."""

        def build() -> dict[str, Any]:
            check_features(x)
            if x.size(1) != self.in_channels:
                raise ValueError(
                    f"x has {x.size(1)} features but the models were built with "
                    f"in_channels={self.in_channels}"
                )
            return graph_operators(x, edge_index, edge_weight)

        return self._cache.get(build, x, edge_index, edge_weight)

    @property
    def layout(self) -> fast.Layout:
        """The stack's shape as the fast path takes it."""
        return fast.Layout(
            self.num_models, tuple(self.widths), self.num_layers, self.num_acts, self.residual
        )

    def clear_cache(self) -> None:
        """Forget the cached graph operators and free the fast path's activation buffers
        (both are rebuilt on the next call)."""
        self._cache.clear()
        self.fast_workspace = None

    # -- forward ------------------------------------------------------------------------
    def uses_fast_path(self, x: Tensor) -> bool:
        """Float32 CPU input without input gradients: the fused path of
        :mod:`gnnleaky.engine.fast` (same numbers up to float rounding)."""
        f32 = torch.float32
        return (
            fast.available()
            and x.device.type == "cpu"
            and x.dtype == f32
            and not x.requires_grad
            and all(p.dtype == f32 and p.device.type == "cpu" for p in self.parameters())
        )

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        *,
        return_hidden: bool = False,
    ) -> Tensor | tuple[Tensor, Hidden]:
        """Run all K models; returns ``[K, N, out]`` (and :class:`Hidden` when asked)."""
        ops = self._operators(x, edge_index, edge_weight)
        k, n = self.num_models, x.size(0)
        # [A, K, C] once per call, so that layer l's K * C slopes are a view.
        slopes = self.slopes().transpose(0, 1).contiguous() if self.num_acts else None
        if not return_hidden and self.uses_fast_path(x):
            layout = self.layout
            ws = self.fast_workspace
            if ws is None or ws.key != (layout, n):
                ws = self.fast_workspace = fast.Workspace(layout, n)
            return fast.fast_forward(
                layout,
                fast_graph(x, ops),
                ws,
                list(self.weights),
                list(self.biases),
                slopes,
                self.dropout,
            )
        grad = torch.is_grad_enabled()
        pre: list[Tensor] = []
        post: list[Tensor] = []

        def per_model(t: Tensor, width: int) -> Tensor:
            return t.view(n, k, width).transpose(0, 1)

        h = x
        for layer in range(self.num_layers):
            w = self.weights[layer]
            b = self.biases[layer].view(-1)
            c_in, c_out = self.widths[layer], self.widths[layer + 1]
            if layer == 0:
                w_cat = w.permute(1, 0, 2).reshape(c_in, k * c_out)
                if ops["feats"] is not None and not x.requires_grad:
                    z = _spmm(ops["feats"], ops["feats_t"], w_cat)
                else:
                    z = x @ w_cat
            else:
                z = _PerModelLinear.apply(h, w)
            z = _spmm(ops["a"], ops["a_t"], z, b)
            if layer < self.num_acts:
                w_act = slopes[layer].view(k * c_out)
                mask, scale = self.dropout.keep_mask(z)
                if not grad or not (z.requires_grad or w_act.requires_grad):
                    z_post = torch.prelu(z, w_act)
                    z_next = z_post if mask is None else apply_mask(z_post, mask, scale)
                elif return_hidden:
                    z_post = _PReLUDropout.apply(z, w_act, None, 1.0)
                    z_next = z_post if mask is None else apply_mask(z_post, mask, scale)
                else:
                    z_post = z_next = _PReLUDropout.apply(z, w_act, mask, scale)
                if return_hidden:
                    pre.append(per_model(z, c_out))
                    post.append(per_model(z_post, c_out))
                z = z_next
            elif return_hidden:
                pre.append(per_model(z, c_out))
                post.append(pre[-1])
            if self.residual and c_in == c_out:
                z = z + (h.repeat(1, k) if layer == 0 else h)
            h = z
        out = per_model(h, self.widths[-1])
        if return_hidden:
            return out, Hidden(pre, post)
        return out

    # -- models in and out --------------------------------------------------------------
    @torch.no_grad()
    def model(self, k: int) -> LeakyGNN:
        """Model ``k`` as a stand-alone :class:`~gnnleaky.nn.LeakyGNN` (a copy)."""
        if not -self.num_models <= k < self.num_models:
            raise ValueError(f"k must be in [0, {self.num_models}), got {k}")
        k = k % self.num_models
        m = copy.deepcopy(self._templates[k])
        dev = self.weights[0].device
        m.to(dev)
        for layer, conv in enumerate(m.convs):
            conv.lin.weight.copy_(self.weights[layer][k].t())
            conv.bias.copy_(self.biases[layer][k])
        for i, act in enumerate(m.acts[: self.num_acts]):
            if isinstance(act, torch.nn.PReLU):
                raw = raw_slope(act)
                raw.copy_(self.slope_raw[k, i, : raw.numel()])
        m.dropout.p = self.dropout.p
        m.train(self.training)
        return m

    def select(self, index: Sequence[int]) -> StackedGNN:
        """A new stack of the models at ``index`` (copies of their weights, same generators).

        Parameter names and shapes (but the model dimension) are kept, so optimizer state
        can be carried over by name (see :func:`gnnleaky.bench.train.train_group`).
        """
        idx = [int(i) % self.num_models for i in index]
        if not idx:
            raise ValueError("index must select at least one model")
        t = torch.tensor(idx, device=self.weights[0].device)
        gens = self.dropout.generators
        dropout = SeededDropout(self.dropout.p, None if gens is None else [gens[i] for i in idx])
        obj = self.__class__.__new__(self.__class__)
        torch.nn.Module.__init__(obj)
        with torch.no_grad():
            obj._assemble(
                [self._templates[i] for i in idx],
                [self._specs[i] for i in idx],
                dropout,
                [w.index_select(0, t) for w in self.weights],
                [b.index_select(0, t) for b in self.biases],
                {name: buf.index_select(0, t) for name, buf in self.named_buffers()},
                list(self._bound_groups),
                None if self.slope_raw is None else self.slope_raw.index_select(0, t),
            )
        return obj.train(self.training)

    def to_models(self) -> list[LeakyGNN]:
        """All K models as stand-alone :class:`~gnnleaky.nn.LeakyGNN` copies."""
        return [self.model(k) for k in range(self.num_models)]

    def reset_parameters(self) -> None:
        """Re-initialise every model as ``LeakyGNN.reset_parameters`` does (global RNG)."""
        templates = [copy.deepcopy(t) for t in self._templates]
        for t in templates:
            t.reset_parameters()
        self._load(templates)

    def __repr__(self) -> str:
        kinds = []
        for row in self._specs:
            if not row:
                kinds.append("none")
                continue
            kind, value, lw, bounds = row[0]
            if kind == "fixed":
                kinds.append(f"{value:g}")
            else:
                kinds.append(
                    "prelu_"
                    + ("layer" if lw else "channel")
                    + ("" if bounds is None else f"{list(bounds)}")
                )
        return (
            f"{self.__class__.__name__}(num_models={self.num_models}, "
            f"{self.in_channels}, {self.out_channels}, num_layers={self.num_layers}, "
            f"conv='gcn', acts=[{', '.join(kinds)}])"
        )
