r"""Graph operators shared by the spectral tools: one place builds every Laplacian.

Every spectral quantity in :mod:`gnnleaky.spectral` is measured on an explicitly chosen
operator, named by three arguments that all functions share:

* ``normalization``: ``None`` for :math:`\mathbf{L} = \mathbf{D} - \mathbf{A}`, ``"sym"`` for
  :math:`\mathbf{L} = \mathbf{I} - \mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}`, ``"rw"`` for
  :math:`\mathbf{L} = \mathbf{I} - \mathbf{D}^{-1}\mathbf{A}` (see :ref:`below <rw>`).
* ``add_self_loops``: ``False`` ignores self-loops in ``edge_index`` (as PyG's
  :func:`~torch_geometric.utils.get_laplacian` does); ``True`` uses
  :math:`\mathbf{A} + \mathbf{I}` the way GCN propagates (PyG's ``gcn_norm``:
  existing self-loops keep their weight, the others get weight 1).
* ``symmetrize``: graphs must be undirected (every edge present in both directions with the
  same weight); a directed ``edge_index`` raises a :class:`ValueError` unless
  ``symmetrize=True``, which uses :math:`(\mathbf{A} + \mathbf{A}^\top)/2` (a no-op on an
  undirected graph).

Isolated nodes (degree 0) follow PyG's ``get_laplacian``: :math:`\mathbf{D}^{-1/2}_{ii} := 0`,
so :math:`\mathbf{L}_{ii} = 1` there for ``"sym"``.

.. _rw:

``"rw"``: :math:`\mathbf{I} - \mathbf{D}^{-1}\mathbf{A}` is not symmetric, but it is
self-adjoint and positive semi-definite in the degree inner product
:math:`\langle u, v\rangle_D = u^\top \mathbf{D} v`, and
:math:`\mathbf{D}^{1/2}` maps that space isometrically onto the ``"sym"`` picture. So every
``"rw"`` quantity of :math:`\mathbf{X}` is the ``"sym"`` quantity of
:math:`\mathbf{D}^{1/2}\mathbf{X}`: the same spectrum, norms measured with
:math:`\|\mathbf{X}\|_D^2 = \operatorname{tr}(\mathbf{X}^\top\mathbf{D}\mathbf{X})`.

:class:`GraphCache` holds, per graph, what these operators need (the undirected edge pairs,
degrees, the Chebyshev operator for the kernel polynomial method, the dense eigenbasis), built
lazily and once, so that measuring many layers of many models costs little beyond the products.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch_geometric.utils import coalesce

from gnnleaky._validation import (
    check_edge_index,
    check_edge_weight,
    check_features,
    check_finite_tensor,
)
from gnnleaky.nn.functional import TensorKey

__all__ = ["DENSE_MAX_NODES", "NORMALIZATIONS", "GraphCache", "resolve_cache"]

log = logging.getLogger(__name__)

#: Largest graph (per graph, in nodes) for which a dense eigendecomposition is attempted:
#: ``O(N^2)`` memory and ``O(N^3)`` time (CiteSeer, 3,327 nodes, fits). Larger graphs use the
#: kernel polynomial method (:func:`gnnleaky.spectral.spectral_density`).
DENSE_MAX_NODES = 4096

#: The allowed values of every ``normalization`` argument.
NORMALIZATIONS: tuple[str | None, ...] = (None, "sym", "rw")


def check_normalization(
    normalization: Any, allowed: Sequence[str | None] = NORMALIZATIONS
) -> str | None:
    """Return ``normalization`` if allowed, else raise a ValueError naming the allowed values."""
    if normalization not in allowed:
        raise ValueError(f"normalization must be one of {list(allowed)}, got {normalization!r}")
    return normalization


def _same_tensor(a: Tensor | None, b: Tensor | None) -> bool:
    """The same tensor object, or one of equal shape, device and values."""
    if a is None or b is None:
        return a is None and b is None
    if a is b:
        return True
    if a.shape != b.shape or a.device != b.device:
        return False
    return bool(torch.equal(a, b.to(a.dtype)))


class GraphCache:
    r"""Per-graph cache of everything the spectral operators need.

    Built once per graph (validation, the undirected check, the canonical edge pairs and
    degrees are computed at construction; the Chebyshev operator and the dense eigenbasis
    lazily on first use) and passed as ``cache=`` to any function of
    :mod:`gnnleaky.spectral` or to :func:`~gnnleaky.spectral.layer_metrics`.

    The graph is stored as canonical pairs :math:`i < j` with weight :math:`A_{ij}` (each
    undirected edge once, duplicates summed), the self-loop weights, and float64 degrees, so
    that edge-wise energies touch every undirected edge once.

    Args:
        edge_index (Tensor): Edge indices :math:`(2, E)`.
        num_nodes (int): Number of nodes :math:`N`.
        edge_weight (Tensor, optional): Non-negative edge weights :math:`(E)`.
            (default: ``None``, all ones)
        symmetrize (bool, optional): Use :math:`(\mathbf{A} + \mathbf{A}^\top)/2` instead of
            refusing a directed graph. (default: ``False``)

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> cache = GraphCache(edge_index, num_nodes=3)
        >>> cache.num_pairs, cache.degree().tolist()
        (2, [1.0, 2.0, 1.0])
    """

    def __init__(
        self,
        edge_index: Tensor,
        num_nodes: int,
        edge_weight: Tensor | None = None,
        *,
        symmetrize: bool = False,
    ) -> None:
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 0:
            raise ValueError(f"num_nodes must be a non-negative int, got {num_nodes!r}")
        check_edge_index(edge_index, num_nodes)
        check_edge_weight(edge_weight, edge_index.size(1))
        if edge_weight is not None and edge_weight.numel() and bool((edge_weight < 0).any()):
            raise ValueError("edge_weight must be non-negative (a Laplacian needs degrees >= 0)")
        self.edge_index = edge_index
        self.edge_weight = edge_weight
        # the graph tensors, held: an in-place change after construction invalidates it
        self._key = TensorKey(edge_index, edge_weight)
        self.num_nodes = num_nodes
        self.symmetrize = bool(symmetrize)
        self._store: dict[Any, Any] = {}

        device = edge_index.device
        f64 = torch.float64
        row, col = edge_index[0], edge_index[1]
        w = (
            torch.ones(row.numel(), dtype=f64, device=device)
            if edge_weight is None
            else edge_weight.detach().to(f64)
        )
        loop = row == col
        self.loop_weight = torch.zeros(num_nodes, dtype=f64, device=device).index_add_(
            0, row[loop], w[loop]
        )
        self.has_loop = torch.zeros(num_nodes, dtype=torch.bool, device=device)
        self.has_loop[row[loop]] = True

        off = ~loop & (w != 0)
        row, col, w = row[off], col[off], w[off]
        if self.symmetrize:
            pairs = torch.stack([torch.minimum(row, col), torch.maximum(row, col)])
            pairs, pw = coalesce(pairs, w / 2, num_nodes, reduce="sum")
        else:
            up = row < col
            pairs, pw = coalesce(torch.stack([row[up], col[up]]), w[up], num_nodes, reduce="sum")
            low, lw = coalesce(torch.stack([col[~up], row[~up]]), w[~up], num_nodes, reduce="sum")
            if (
                pairs.shape != low.shape
                or not torch.equal(pairs, low)
                or not torch.allclose(pw, lw, rtol=1e-6, atol=0.0)
            ):
                raise ValueError(
                    "edge_index is directed (some edge (i, j) has no reverse edge (j, i) of "
                    "the same weight); pass symmetrize=True to use (A + A^T) / 2, or make it "
                    "undirected with torch_geometric.utils.to_undirected"
                )
        self.row, self.col = pairs[0], pairs[1]
        self.weight = pw
        #: True when every pair has weight 1 (the energy kernels then skip the multiply).
        self.unit_weight = bool(pw.numel() == 0 or torch.all(pw == 1))
        deg = torch.zeros(num_nodes, dtype=f64, device=device)
        deg.index_add_(0, self.row, pw).index_add_(0, self.col, pw)
        self._deg = deg

    # -- basic quantities ---------------------------------------------------------------
    @property
    def num_pairs(self) -> int:
        """Number of undirected edges :math:`i < j` (self-loops excluded)."""
        return int(self.row.numel())

    def self_loops(self, add_self_loops: bool) -> Tensor:
        """Self-loop weights :math:`(N)` used by the operator (zeros without self-loops)."""
        if not add_self_loops:
            return torch.zeros_like(self.loop_weight)
        return torch.where(self.has_loop, self.loop_weight, torch.ones_like(self.loop_weight))

    def degree(self, add_self_loops: bool = False) -> Tensor:
        """Float64 weighted degrees :math:`(N)`, with the self-loops if asked."""
        key = ("deg", bool(add_self_loops))
        if key not in self._store:
            self._store[key] = self._deg + self.self_loops(add_self_loops)
        return self._store[key]

    def deg_inv_sqrt(self, add_self_loops: bool = False) -> Tensor:
        r""":math:`\mathbf{D}^{-1/2}` as a float64 vector, 0 for isolated nodes (PyG's rule)."""
        key = ("dis", bool(add_self_loops))
        if key not in self._store:
            deg = self.degree(add_self_loops)
            self._store[key] = torch.where(
                deg > 0, deg.clamp_min(1e-300).rsqrt(), torch.zeros_like(deg)
            )
        return self._store[key]

    def deg_sqrt(self, add_self_loops: bool = False) -> Tensor:
        r""":math:`\mathbf{D}^{1/2}` as a float64 vector."""
        key = ("ds", bool(add_self_loops))
        if key not in self._store:
            self._store[key] = self.degree(add_self_loops).sqrt()
        return self._store[key]

    def spectral_bound(self, normalization: str | None, add_self_loops: bool = False) -> float:
        r"""An upper bound :math:`\lambda_{\max}` of the spectrum.

        2 for the normalized Laplacians; :math:`2 \max_i d_i` (Gershgorin) for
        :math:`\mathbf{D} - \mathbf{A}` (1 for a graph without edges).
        """
        check_normalization(normalization)
        if normalization is not None:
            return 2.0
        dmax = float(self._deg.max()) if self.num_nodes else 0.0
        return 2.0 * dmax if dmax > 0 else 1.0

    def matches(
        self,
        edge_index: Tensor,
        num_nodes: int,
        edge_weight: Tensor | None = None,
        symmetrize: bool = False,
    ) -> bool:
        """Whether this cache was built for the given graph and options: the same graph
        tensors (:class:`~gnnleaky.nn.functional.TensorKey`), or tensors equal to them,
        and the graph tensors not modified in place since."""
        return (
            num_nodes == self.num_nodes
            and bool(symmetrize) == self.symmetrize
            and self._key.matches(self.edge_index, self.edge_weight)
            and (
                self._key.matches(edge_index, edge_weight)
                or (
                    _same_tensor(edge_index, self.edge_index)
                    and _same_tensor(edge_weight, self.edge_weight)
                )
            )
        )

    def pair_graph(self, batch: Tensor) -> Tensor:
        """Graph id of every pair (checks that no edge joins two graphs)."""
        key = ("pair_graph",)
        hit = self._store.get(key)
        if hit is not None and _same_tensor(hit[0], batch):
            return hit[1]
        pg = batch[self.row]
        if pg.numel() and not torch.equal(pg, batch[self.col]):
            raise ValueError(
                "batch assigns the two ends of an edge to different graphs; "
                "edge_index must not connect nodes of different graphs"
            )
        self._store[key] = (batch, pg)
        return pg

    # -- operators ----------------------------------------------------------------------
    def chebyshev_operator(
        self,
        normalization: str | None,
        add_self_loops: bool = False,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        r"""Sparse CSR :math:`\tilde{\mathbf{L}} = 2\mathbf{L}/\lambda_{\max} - \mathbf{I}`.

        Its spectrum lies in :math:`[-1, 1]` (:meth:`spectral_bound`). ``"rw"`` is not built:
        it is measured as ``"sym"`` on :math:`\mathbf{D}^{1/2}\mathbf{X}`.
        """
        check_normalization(normalization, (None, "sym"))
        key = ("cheb", normalization, bool(add_self_loops), dtype)
        if key in self._store:
            return self._store[key]
        n = self.num_nodes
        loops = self.self_loops(add_self_loops)
        if normalization == "sym":
            # L~ = L - I = -D^-1/2 (A + loops) D^-1/2; isolated rows are 0 (L_ii = 1).
            dis = self.deg_inv_sqrt(add_self_loops)
            off = -self.weight * dis[self.row] * dis[self.col]
            diag = -loops * dis * dis
        else:
            scale = 2.0 / self.spectral_bound(None)
            off = -scale * self.weight
            diag = scale * self._deg - 1.0
        ar = torch.arange(n, device=self.row.device)
        index = torch.stack(
            [torch.cat([self.row, self.col, ar]), torch.cat([self.col, self.row, ar])]
        )
        value = torch.cat([off, off, diag])
        index, value = coalesce(index, value, n, reduce="sum")
        crow = torch.zeros(n + 1, dtype=torch.long, device=index.device)
        crow[1:] = torch.cumsum(torch.bincount(index[0], minlength=n), 0)
        with warnings.catch_warnings():  # "CSR support is in beta" (it is used as documented)
            warnings.simplefilter("ignore", UserWarning)
            # torch.sparse CSR @ dense: the fastest CPU product measured here (10^7 edges,
            # 64 channels: 0.7 s, vs 3.7 s for index_add_ over edges, which also needs an
            # [E, C] tensor); torch.addmm with it fuses the Chebyshev step.
            op = torch.sparse_csr_tensor(
                crow, index[1], value.to(dtype), (n, n), check_invariants=False
            )
        self._store[key] = op
        return op

    def dense_laplacian(
        self, normalization: str | None, add_self_loops: bool = False, nodes: Tensor | None = None
    ) -> Tensor:
        """Dense float64 Laplacian (``None`` or ``"sym"``), optionally of one node subset.

        ``nodes`` must be a whole union of connected components (e.g. one graph of a batch).
        """
        check_normalization(normalization, (None, "sym"))
        f64 = torch.float64
        device = self.row.device
        if nodes is None:
            nodes = torch.arange(self.num_nodes, device=device)
        n = nodes.numel()
        local = torch.full((self.num_nodes,), -1, dtype=torch.long, device=device)
        local[nodes] = torch.arange(n, device=device)
        r, c = local[self.row], local[self.col]
        keep = (r >= 0) & (c >= 0)
        r, c, w = r[keep], c[keep], self.weight[keep]
        lap = torch.zeros(n, n, dtype=f64, device=device)
        if normalization == "sym":
            dis = self.deg_inv_sqrt(add_self_loops)
            a = w * dis[self.row[keep]] * dis[self.col[keep]]
            lap.index_put_((r, c), -a, accumulate=True)
            lap.index_put_((c, r), -a, accumulate=True)
            dloc = dis[nodes]
            lap.diagonal().add_(1.0 - self.self_loops(add_self_loops)[nodes] * dloc * dloc)
        else:
            lap.index_put_((r, c), -w, accumulate=True)
            lap.index_put_((c, r), -w, accumulate=True)
            lap.diagonal().add_(self._deg[nodes])
        return lap

    def components(self) -> Tensor:
        """Connected-component label of every node (long ``[N]``), cached."""
        if "components" not in self._store:
            import numpy as np
            import scipy.sparse
            from scipy.sparse.csgraph import connected_components

            n = self.num_nodes
            r, c = self.row.cpu().numpy(), self.col.cpu().numpy()
            adj = scipy.sparse.coo_matrix((np.ones(r.size), (r, c)), shape=(n, n))
            _, labels = connected_components(adj, directed=False)
            self._store["components"] = torch.from_numpy(labels).long().to(self.row.device)
        return self._store["components"]

    def spectral_blocks(
        self, normalization: str | None = "sym", add_self_loops: bool = False
    ) -> list[tuple[Tensor, Tensor, Tensor | None]]:
        """Cached float64 ``(nodes, eigenvalues, eigenvectors)`` per connected component.

        The Laplacian is block-diagonal over components, so each block is decomposed on its
        own (faster than the whole matrix, and eigenvectors of a degenerate eigenvalue shared
        by several components, such as 0, never mix them). All isolated nodes form one block
        with ``eigenvectors=None`` (the identity). Callers bound the graph size.
        """
        check_normalization(normalization, (None, "sym"))
        key = ("blocks", normalization, bool(add_self_loops))
        if key in self._store:
            return self._store[key]
        labels = self.components()
        counts = torch.bincount(labels, minlength=1) if labels.numel() else labels
        order = torch.argsort(labels, stable=True)
        blocks: list[tuple[Tensor, Tensor, Tensor | None]] = []
        singles = []
        for nodes in torch.split(order, counts.tolist()):
            if nodes.numel() == 1:
                singles.append(nodes)
                continue
            blocks.append(
                (nodes, *_eigh(self.dense_laplacian(normalization, add_self_loops, nodes)))
            )
        if singles:
            nodes = torch.cat(singles)
            if normalization == "sym":  # L_ii = 1 - loop / deg (1 when isolated)
                dis = self.deg_inv_sqrt(add_self_loops)[nodes]
                evals = 1.0 - self.self_loops(add_self_loops)[nodes] * dis * dis
            else:
                evals = torch.zeros(nodes.numel(), dtype=torch.float64, device=nodes.device)
            blocks.append((nodes, evals, None))
        self._store[key] = blocks
        return blocks

    def eigenbasis(
        self,
        normalization: str | None = "sym",
        add_self_loops: bool = False,
        *,
        max_nodes: int = DENSE_MAX_NODES,
    ) -> tuple[Tensor, Tensor]:
        """Cached float64 ``(eigenvalues, eigenvectors)`` of the whole graph, ascending."""
        check_normalization(normalization, (None, "sym"))
        check_dense_size(self.num_nodes, max_nodes)
        key = ("eig", normalization, bool(add_self_loops))
        if key not in self._store:
            n = self.num_nodes
            f64 = torch.float64
            evecs = torch.zeros(n, n, dtype=f64, device=self.row.device)
            evals, col = [], 0
            for nodes, lam, vec in self.spectral_blocks(normalization, add_self_loops):
                k = lam.numel()
                cols = torch.arange(col, col + k, device=nodes.device)
                if vec is None:
                    evecs[nodes, cols] = 1.0
                else:
                    evecs[nodes[:, None], cols[None, :]] = vec
                evals.append(lam)
                col += k
            lam = torch.cat(evals) if evals else torch.zeros(0, dtype=f64)
            order = torch.argsort(lam, stable=True)
            self._store[key] = (lam[order], evecs[:, order])
        return self._store[key]


def check_dense_size(n: int, max_nodes: int) -> None:
    """Raise the error that points to the scalable path when ``n > max_nodes``."""
    if n > max_nodes:
        raise ValueError(
            f"the graph has {n} nodes, more than max_nodes={max_nodes} for a dense "
            f"eigendecomposition (O(N^2) memory, O(N^3) time); use the kernel polynomial "
            f"method instead (method='kpm', or gnnleaky.spectral.spectral_density / "
            f"kpm_band_energy), or raise max_nodes"
        )


def _eigh(lap: Tensor) -> tuple[Tensor, Tensor]:
    if lap.size(0) > 1000:
        log.info("dense eigendecomposition of a %d-node Laplacian", lap.size(0))
    evals, evecs = torch.linalg.eigh(lap)
    return evals, evecs


def resolve_cache(
    edge_index: Tensor,
    num_nodes: int,
    edge_weight: Tensor | None = None,
    symmetrize: bool = False,
    cache: GraphCache | None = None,
) -> GraphCache:
    """Return ``cache`` after checking it belongs to this graph, or build a new one."""
    if cache is None:
        return GraphCache(edge_index, num_nodes, edge_weight, symmetrize=symmetrize)
    if not isinstance(cache, GraphCache):
        raise ValueError(f"cache must be a GraphCache or None, got {type(cache).__name__}")
    if not cache.matches(edge_index, num_nodes, edge_weight, symmetrize):
        raise ValueError(
            "cache was built for a different graph (edge_index, edge_weight, num_nodes or "
            "symmetrize differ); build GraphCache(edge_index, num_nodes, edge_weight, "
            "symmetrize=...) for this graph"
        )
    return cache


# -- feature and batch plumbing shared by energy, fourier and kpm -----------------------------
class Signal(NamedTuple):
    """Node features as columns: ``x`` is ``[N, G * C]`` (``G`` groups of ``C`` channels)."""

    x: Tensor
    groups: int | None  # K for stacked input [K, N, C], None for [N, C]
    channels: int

    @property
    def num_groups(self) -> int:
        return 1 if self.groups is None else self.groups

    @property
    def num_nodes(self) -> int:
        return self.x.size(0)


def as_signal(x: Any, name: str = "x") -> Signal:
    """Validate features ``[N, C]`` or stacked ``[K, N, C]`` and lay them out as columns.

    Stacked features of ``K`` models become one ``[N, K * C]`` matrix, so every kernel runs
    once over the graph and reduces per column group.
    """
    if not isinstance(x, Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of shape [N, C] or [K, N, C], got {type(x).__name__}"
        )
    if x.dim() == 3:
        k, n, c = x.shape
        check_features(x.reshape(k * n, c), name, finite=False)
        check_finite_tensor(x, name)
        return Signal(x.transpose(0, 1).reshape(n, k * c), k, c)
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape [N, C] or [K, N, C], got shape {tuple(x.shape)}")
    check_features(x, name, finite=False)
    check_finite_tensor(x, name)
    return Signal(x, None, x.size(1))


def unchecked_signal(x: Tensor) -> Signal:
    """:func:`as_signal` without validation, for callers that validated already."""
    if x.dim() == 3:
        k, n, c = x.shape
        return Signal(x.transpose(0, 1).reshape(n, k * c), k, c)
    return Signal(x, None, x.size(1))


def working_dtype(x: Tensor) -> torch.dtype:
    """Float32 for half-precision input, else the input dtype (float32 or float64)."""
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32


def check_batch(batch: Tensor | None, num_nodes: int) -> tuple[Tensor | None, int]:
    """Validate a PyG batch vector ``[N]``; return it with the number of graphs (1 if None)."""
    if batch is None:
        return None, 1
    if not isinstance(batch, Tensor) or batch.dim() != 1 or batch.is_floating_point():
        raise ValueError("batch must be a 1-D integer tensor [N] assigning nodes to graphs")
    if batch.numel() != num_nodes:
        raise ValueError(f"batch has {batch.numel()} entries but x has {num_nodes} nodes")
    if not batch.numel():
        return batch.long(), 0
    if int(batch.min()) < 0:
        raise ValueError("batch must not contain negative graph ids")
    return batch.long(), int(batch.max()) + 1


def group_sum(values: Tensor, sig: Signal) -> Tensor:
    """Sum ``[M, G * C]`` over the channels of each group into float64 ``[M, G]``."""
    m = values.size(0)
    return values.reshape(m, sig.num_groups, sig.channels).sum(-1).to(torch.float64)


def node_reduce(values: Tensor, batch: Tensor | None, num_graphs: int) -> Tensor:
    """Sum per-node ``[N, ...]`` values over each graph: ``[num_graphs, ...]``."""
    if batch is None:
        return values.sum(0, keepdim=True)
    out = values.new_zeros((num_graphs, *values.shape[1:]))
    return out.index_add(0, batch, values)


def finish(out: Tensor, sig: Signal, batch: Tensor | None) -> Tensor:
    """Shape ``[graphs, groups, *rest]`` results as ``[*lead, *rest]``.

    ``lead`` is ``()`` for ``[N, C]`` input, ``(K,)`` for ``[K, N, C]``, plus a trailing graph
    dimension when ``batch`` is given: ``[G]`` or ``[K, G]``.
    """
    if batch is None:
        out = out[0]
        return out[0] if sig.groups is None else out
    out = out.transpose(0, 1)
    return out[0] if sig.groups is None else out


def safe_divide(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` with 0 where ``den == 0`` (no NaN, no NaN gradient)."""
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def band_edges(bands: Any, bound: float) -> Tensor:
    """Frequency band edges: ``int B`` gives ``B`` equal bands on ``[0, bound]``."""
    if isinstance(bands, bool):
        raise ValueError(
            f"bands must be a positive int or an increasing sequence of edges, got {bands!r}"
        )
    if isinstance(bands, int):
        if bands < 1:
            raise ValueError(
                f"bands must be a positive int or an increasing sequence of edges, got {bands!r}"
            )
        return torch.linspace(0.0, bound, bands + 1, dtype=torch.float64)
    try:
        edges = torch.as_tensor(bands, dtype=torch.float64).flatten().cpu()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"bands must be a positive int or an increasing sequence of edges, got {bands!r}"
        ) from err
    if (
        edges.numel() < 2
        or not bool(torch.isfinite(edges).all())
        or not bool((edges[1:] > edges[:-1]).all())
    ):
        raise ValueError(
            f"bands must be at least two finite, strictly increasing edges, got {bands!r}"
        )
    return edges
