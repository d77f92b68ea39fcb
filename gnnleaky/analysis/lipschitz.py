r"""Lipschitz certificate of a GCN LeakyGNN and an empirical lower bound.

For node features :math:`X \in \mathbb{R}^{N \times F}` and the Frobenius norm, a GCN
layer :math:`X \mapsto \hat A X W^\top + b` is :math:`\|\hat A\|_2 \|W\|_2`-Lipschitz
(the bias shifts, it does not stretch), a Leaky ReLU / PReLU of slopes
:math:`\alpha_c` is :math:`\max(1, \max_c |\alpha_c|)`-Lipschitz and a batch norm in
eval mode is :math:`\max_c |\gamma_c| / \sqrt{\sigma_c^2 + \epsilon}`-Lipschitz, so

.. math::
    \operatorname{Lip}(f) \le \prod_{\ell} \|\hat A\|_2 \, \|W_\ell\|_2 \,
    \max\big(1, \max_c |\alpha_{\ell, c}|\big) \, \nu_\ell

(times :math:`\|W_{\mathrm{lin}}\|_2` for a final linear map; a residual layer
contributes :math:`1 + L_\ell`). :math:`\|\hat A\|_2` is computed, not assumed: it is 1
for the GCN operator of an undirected graph but can exceed 1 for a directed one.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import scipy.sparse
import scipy.sparse.linalg
import torch
from torch import Tensor

from gnnleaky._validation import check_features
from gnnleaky.analysis._common import (
    check_finite,
    check_positive_int,
    eval_mode,
    graph_operator,
    num_nodes_of,
    slope_factor,
)
from gnnleaky.nn.activation import PReLU
from gnnleaky.nn.models import GCN, LeakyGNN

__all__ = ["lipschitz_bound", "lipschitz_lower_bound", "operator_norm"]

_DENSE_MAX_NODES = 1000
_SPARSE_TOL = 1e-10
_NORM_METHODS = ("auto", "dense", "sparse")


def operator_norm(
    edge_index: Tensor,
    num_nodes: int | None = None,
    edge_weight: Tensor | None = None,
    *,
    normalize: bool = True,
    method: str = "auto",
    dtype: torch.dtype = torch.float64,
) -> float:
    r"""Spectral norm :math:`\|\hat A\|_2` of a graph's propagation operator.

    .. math::
        \hat A = \tilde D^{-1/2} (A + I) \tilde D^{-1/2} \quad (\text{normalize=True}),
        \qquad \hat A = A \quad (\text{normalize=False})

    built as :class:`~gnnleaky.nn.LeakyGNN` builds it (PyG's ``gcn_norm`` with
    self-loops); the norm is computed in float64.

    Args:
        edge_index (Tensor): Edges ``[2, E]``.
        num_nodes (int, optional): Number of nodes. (default: ``max index + 1``)
        edge_weight (Tensor, optional): Edge weights ``[E]``.
        normalize (bool, optional): Use the GCN normalization. (default: ``True``)
        method (str, optional): ``"dense"`` (``torch.linalg.matrix_norm(ord=2)``),
            ``"sparse"`` (ARPACK Lanczos, ``scipy.sparse.linalg.eigsh`` on
            :math:`\hat A` when symmetric, else on :math:`\hat A^\top \hat A`, relative
            tolerance :math:`10^{-10}`) or ``"auto"`` (dense up to 1000 nodes).
            (default: ``"auto"``)
        dtype (torch.dtype, optional): Precision in which the normalized weights are
            computed (the norm itself is always computed in float64); pass a model's
            dtype to measure the operator that model applies. (default: ``torch.float64``)

    Example:
        >>> ring = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
        >>> round(operator_norm(ring), 12)  # undirected GCN operator: exactly 1
        1.0
        >>> round(operator_norm(ring, normalize=False), 12)  # adjacency of a 3-cycle
        2.0
    """
    if method not in _NORM_METHODS:
        raise ValueError(f"method must be one of {_NORM_METHODS}, got {method!r}")
    n = num_nodes_of(edge_index, num_nodes)
    ei, w = graph_operator(edge_index, n, edge_weight, normalize, dtype=dtype)
    if method == "auto":
        method = "dense" if n <= _DENSE_MAX_NODES else "sparse"
    if method == "dense" or n < 3:
        dense = torch.zeros(n, n, dtype=torch.float64)
        dense.index_put_((ei[1], ei[0]), w, accumulate=True)
        return float(torch.linalg.matrix_norm(dense, ord=2))
    mat = scipy.sparse.coo_matrix((w.numpy(), (ei[1].numpy(), ei[0].numpy())), shape=(n, n)).tocsr()
    v0 = np.ones(n) / math.sqrt(n)  # deterministic start
    symmetric = abs(mat - mat.T).max() == 0
    # Lanczos on A (symmetric: ||A|| = max |eigenvalue|) or on A^T A. tol=0 can stall on
    # clusters of top eigenvalues (Cora's 78 components each have eigenvalue 1, split by
    # float32 rounding), so a relative tolerance is used.
    op = mat if symmetric else scipy.sparse.linalg.aslinearoperator(mat.T @ mat)
    try:
        ev = scipy.sparse.linalg.eigsh(
            op,
            k=1,
            which="LM",
            tol=_SPARSE_TOL,
            v0=v0,
            maxiter=100 * n,
            return_eigenvectors=False,
        )
    except scipy.sparse.linalg.ArpackNoConvergence:
        raise ValueError(
            "operator_norm: the sparse eigensolver did not converge; use method='dense'"
        ) from None
    value = float(np.abs(ev).max())
    return value if symmetric else math.sqrt(value)


def _batch_norm_factor(module: torch.nn.Module) -> float:
    bn = getattr(module, "module", module)  # PyG BatchNorm wraps torch's
    if not isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
        raise ValueError(f"expected a batch norm, got {type(module).__name__}")
    if module.training or bn.training or not bn.track_running_stats:
        raise ValueError(
            "lipschitz_bound needs batch norm in eval mode with running statistics "
            "(call model.eval() first); in training mode it depends on the batch"
        )
    scale = 1.0 / torch.sqrt(bn.running_var.double() + bn.eps)
    if bn.affine:
        scale = scale * bn.weight.detach().double().abs()
    return float(scale.max())


def _norm_factor(module: torch.nn.Module) -> float:
    if isinstance(module, torch.nn.Identity):
        return 1.0
    bn = getattr(module, "module", module)
    if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
        return _batch_norm_factor(module)
    raise ValueError(
        f"lipschitz_bound supports norm=None or 'batch_norm' (eval mode), got "
        f"{type(module).__name__}"
    )


def _act_factor(module: torch.nn.Module) -> float:
    if isinstance(module, torch.nn.ReLU | torch.nn.Identity):
        return 1.0
    if isinstance(module, torch.nn.LeakyReLU):
        return slope_factor(module.negative_slope)
    if isinstance(module, torch.nn.PReLU | PReLU):
        return slope_factor(module.weight)
    raise ValueError(
        f"lipschitz_bound supports ReLU, LeakyReLU, PReLU and identity activations, got "
        f"{type(module).__name__}"
    )


def lipschitz_bound(
    model: LeakyGNN,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    *,
    num_nodes: int | None = None,
    return_layers: bool = False,
) -> float | tuple[float, pd.DataFrame]:
    r"""Certified upper bound on the Lipschitz constant of a GCN :class:`LeakyGNN`.

    .. math::
        \operatorname{Lip}(f) \le \prod_{\ell=1}^{L} \|\hat A\|_2\, \|W_\ell\|_2\,
        \max\big(1, \max_c |\alpha_{\ell,c}|\big)\, \nu_\ell

    in the Frobenius norm on ``x`` and on the output, for the model in eval mode
    (dropout off); :math:`\nu_\ell` is 1 without norm and the largest
    :math:`|\gamma_c| / \sqrt{\sigma^2_c + \epsilon}` for batch norm.

    Args:
        model (LeakyGNN): A model with ``conv="gcn"`` and ``jk`` ``None`` or ``"last"``.
        edge_index (Tensor): Edges ``[2, E]`` of the graph the bound is for.
        edge_weight (Tensor, optional): Edge weights ``[E]``.
        num_nodes (int, optional): Number of nodes. (default: ``max index + 1``)
        return_layers (bool, optional): Also return a DataFrame with one row per
            layer (``layer``, ``operator_norm``, ``weight_norm``, ``slope_factor``,
            ``norm_factor``, ``residual``, ``factor``). (default: ``False``)

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> model = LeakyGNN(4, 8, 2, 3, act="leaky_relu",
        ...                  act_kwargs={"negative_slope": 1.5})
        >>> ring = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
        >>> bound, layers = lipschitz_bound(model, ring, return_layers=True)
        >>> layers.slope_factor.tolist()
        [1.5, 1.0]
        >>> abs(bound - float(layers.factor.prod())) < 1e-12
        True
    """
    if not isinstance(model, LeakyGNN):
        raise ValueError(f"model must be a gnnleaky.nn.LeakyGNN, got {type(model).__name__}")
    if not isinstance(model, GCN):
        raise ValueError(f"lipschitz_bound supports GCN models only, got {type(model).__name__}")
    if any(not c.add_self_loops or c.improved or not c.normalize for c in model.convs):
        raise ValueError(
            "lipschitz_bound supports GCNConv layers with normalize=True, add_self_loops=True "
            "and improved=False (the operator it bounds)"
        )
    if model.jk_mode not in (None, "last"):
        raise ValueError(f"lipschitz_bound supports jk=None or 'last', got jk={model.jk_mode!r}")
    n = num_nodes_of(edge_index, num_nodes)
    # The operator as the model computes it (gcn_norm in the model's dtype): in float32
    # its norm can exceed the exact value 1 by a rounding error, and so can the model.
    dtype = edge_weight.dtype if edge_weight is not None else torch.get_default_dtype()
    a_norm = operator_norm(edge_index, n, edge_weight, normalize=True, dtype=dtype)
    rows = []
    for i, conv in enumerate(model.convs):
        weight = conv.lin.weight.detach().double()
        w_norm = float(torch.linalg.matrix_norm(weight, ord=2))
        act = model.acts[i] if i < model.num_activations else torch.nn.Identity()
        norm = model.norms[i]
        s_factor, n_factor = _act_factor(act), _norm_factor(norm)
        factor = a_norm * w_norm * s_factor * n_factor
        residual = bool(model.residual and weight.size(0) == weight.size(1))
        if residual:
            factor = 1.0 + factor
        rows.append(
            {
                "layer": i,
                "operator_norm": a_norm,
                "weight_norm": w_norm,
                "slope_factor": s_factor,
                "norm_factor": n_factor,
                "residual": residual,
                "factor": factor,
            }
        )
    if hasattr(model, "lin"):
        w_norm = float(torch.linalg.matrix_norm(model.lin.weight.detach().double(), ord=2))
        rows.append(
            {
                "layer": len(model.convs),
                "operator_norm": 1.0,
                "weight_norm": w_norm,
                "slope_factor": 1.0,
                "norm_factor": 1.0,
                "residual": False,
                "factor": w_norm,
            }
        )
    layers = pd.DataFrame(rows)
    bound = float(math.prod(layers.factor.tolist()))
    return (bound, layers) if return_layers else bound


def _jacobian_direction(f, x: Tensor, iters: int, generator: torch.Generator) -> Tensor:
    """Top right-singular vector of the Jacobian of ``f`` at ``x`` (power iteration)."""
    v = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    v = v / v.norm()
    for _ in range(iters):
        _, jv = torch.func.jvp(f, (x,), (v,))
        _, vjp = torch.func.vjp(f, x)
        (u,) = vjp(jv)
        norm = u.norm()
        if norm == 0:
            break
        v = u / norm
    return v


def lipschitz_lower_bound(
    model: torch.nn.Module,
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    *,
    restarts: int = 4,
    steps: int = 50,
    lr: float = 0.05,
    radius: float = 1e-2,
    power_iters: int = 20,
    seed: int = 0,
) -> float:
    r"""Empirical lower bound on the Lipschitz constant by maximizing a difference ratio.

    .. math::
        \hat L = \max_{d} \frac{\|f(X + d) - f(X)\|_F}{\|d\|_F}
        \;\le\; \operatorname{Lip}(f)

    Gradient ascent (Adam) on the direction of :math:`d`, with
    :math:`\|d\|_F = \text{radius} \cdot \|X\|_F` fixed; the first restart starts from
    the top right-singular vector of the Jacobian at :math:`X` (power iteration),
    the others from seeded random directions. Every evaluated ratio is a valid lower
    bound; the largest is returned. It runs on a float64 copy of the model in eval
    mode (the model itself is left untouched).

    Args:
        model (torch.nn.Module): Any model called as ``model(x, edge_index[, edge_weight])``.
        x (Tensor): Node features ``[N, F]``.
        edge_index (Tensor): Edges ``[2, E]``.
        edge_weight (Tensor, optional): Edge weights ``[E]``.
        restarts (int, optional): Number of starts. (default: ``4``)
        steps (int, optional): Adam steps per start. (default: ``50``)
        lr (float, optional): Adam step size on the unit direction. (default: ``0.05``)
        radius (float, optional): Perturbation size relative to :math:`\|X\|_F`.
            (default: ``1e-2``)
        power_iters (int, optional): Power iterations for the first start; 0 to start
            every restart at random. (default: ``20``)
        seed (int, optional): Seed of the random directions. (default: ``0``)

    Example:
        >>> from gnnleaky.nn import LeakyGNN
        >>> model = LeakyGNN(4, 8, 2, 3, act="leaky_relu")
        >>> x, ring = torch.randn(3, 4), torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
        >>> lipschitz_lower_bound(model, x, ring) <= lipschitz_bound(model, ring, num_nodes=3)
        True
    """
    check_features(x)
    check_positive_int("restarts", restarts)
    check_positive_int("steps", steps, minimum=0)
    check_positive_int("power_iters", power_iters, minimum=0)
    lr = check_finite("lr", lr, minimum=0.0)
    radius = check_finite("radius", radius, minimum=0.0)
    if radius == 0.0:
        raise ValueError("radius must be > 0")
    args = (edge_index,) if edge_weight is None else (edge_index, edge_weight)
    gen = torch.Generator().manual_seed(seed)
    # A float64 copy: the ratio is then exact enough to compare with the certificate.
    model = copy.deepcopy(model).double()
    x = x.detach().double()
    args = tuple(a.double() if a.is_floating_point() else a for a in args)
    scale = radius * float(x.norm()) if float(x.norm()) > 0 else radius

    with eval_mode(model):

        def f(inp: Tensor) -> Tensor:
            return model(inp, *args)

        with torch.no_grad():
            fx = f(x)
        best = 0.0
        for r in range(restarts):
            if r == 0 and power_iters > 0:
                u0 = _jacobian_direction(f, x, power_iters, gen)
            else:
                u0 = torch.randn(x.shape, generator=gen, dtype=x.dtype)
            u = (u0 / u0.norm()).detach().clone().requires_grad_(True)
            opt = torch.optim.Adam([u], lr=lr / math.sqrt(x.numel()))
            for _ in range(steps + 1):
                d = scale * u / u.norm()
                ratio = (f(x + d) - fx).norm() / d.norm()
                best = max(best, float(ratio.detach()))
                opt.zero_grad()
                (-ratio).backward()
                opt.step()
    return best
