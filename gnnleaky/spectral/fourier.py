r"""Exact graph-Fourier tools for small graphs: eigenbasis, band energies, high-frequency share.

The graph Fourier transform of features :math:`\mathbf{X}` is
:math:`\hat{\mathbf{X}} = \mathbf{U}^\top \mathbf{X}` with :math:`\mathbf{L} =
\mathbf{U}\operatorname{diag}(\lambda)\mathbf{U}^\top`; row :math:`k` is the signal at frequency
:math:`\lambda_k`, and :math:`\sum_k \|\hat{\mathbf{x}}_k\|^2 = \|\mathbf{X}\|_F^2` (Parseval).

**Band edges.** Real graphs put many eigenvalues exactly on round frequencies (Cora's
normalized Laplacian has eigenvalue 1 three hundred times), and a float eigensolver scatters
them a hair either side. So an eigenvalue within ``tol * lambda_max`` of an interior band edge
counts **half** in each of the two bands (what a Chebyshev/KPM estimate converges to), and one
within that window of the outermost edges counts fully in the adjacent band; band energies
over :math:`[0, \lambda_{\max}]` therefore sum exactly to :math:`\|\mathbf{X}\|^2`.

The dense eigendecomposition is limited to :data:`~gnnleaky.spectral.DENSE_MAX_NODES` nodes per
graph; ``method="kpm"`` (or :func:`~gnnleaky.spectral.spectral_density`) is the scalable path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from gnnleaky.spectral.kpm import kpm_band_energy, kpm_high_frequency_ratio
from gnnleaky.spectral.operators import (
    DENSE_MAX_NODES,
    GraphCache,
    Signal,
    as_signal,
    band_edges,
    check_batch,
    check_dense_size,
    check_normalization,
    finish,
    group_sum,
    resolve_cache,
    safe_divide,
)

__all__ = [
    "METHODS",
    "band_energy",
    "band_weights",
    "eigenbasis",
    "graph_fourier_transform",
    "high_frequency_ratio",
]

_F64 = torch.float64


def eigenbasis(
    edge_index: Tensor,
    num_nodes: int,
    edge_weight: Tensor | None = None,
    normalization: str | None = "sym",
    *,
    add_self_loops: bool = False,
    symmetrize: bool = False,
    max_nodes: int = DENSE_MAX_NODES,
    cache: GraphCache | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Dense float64 eigendecomposition :math:`\mathbf{L} = \mathbf{U}\operatorname{diag}
    (\lambda)\mathbf{U}^\top` of a small graph's Laplacian, eigenvalues ascending.

    Only ``normalization`` ``None`` (:math:`\mathbf{D}-\mathbf{A}`) or ``"sym"``: the
    random-walk Laplacian has the same eigenvalues and the eigenvectors
    :math:`\mathbf{D}^{-1/2}\mathbf{U}`. Raises a :class:`ValueError` pointing to the kernel
    polynomial method when ``num_nodes > max_nodes``.

    Args:
        edge_index (Tensor): Undirected edge indices :math:`(2, E)`.
        num_nodes (int): Number of nodes :math:`N`.
        edge_weight (Tensor, optional): Non-negative edge weights. (default: ``None``)
        normalization (str, optional): ``None`` or ``"sym"``. (default: ``"sym"``)
        add_self_loops (bool, optional): Use :math:`\mathbf{A} + \mathbf{I}`.
            (default: ``False``)
        symmetrize (bool, optional): Symmetrize a directed graph instead of raising.
            (default: ``False``)
        max_nodes (int, optional): Largest graph decomposed densely.
            (default: :data:`DENSE_MAX_NODES` = 4096)
        cache (GraphCache, optional): Where the result is cached. (default: ``None``)

    Shapes:
        - **output:** eigenvalues :math:`(N)`, eigenvectors :math:`(N, N)` (columns)

    Example:
        >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> evals, evecs = eigenbasis(path, 3, normalization=None)
        >>> evals.round(decimals=6).tolist()  # 2 - 2 cos(pi k / 3)
        [0.0, 1.0, 3.0]
    """
    if normalization == "rw":
        raise ValueError(
            "eigenbasis supports normalization None or 'sym'; 'rw' has the "
            "eigenvalues of 'sym' and the eigenvectors D^-1/2 U"
        )
    check_normalization(normalization, (None, "sym"))
    cache = resolve_cache(edge_index, num_nodes, edge_weight, symmetrize, cache)
    return cache.eigenbasis(normalization, add_self_loops, max_nodes=max_nodes)


def graph_fourier_transform(x: Tensor, eigenvectors: Tensor) -> Tensor:
    r"""Graph Fourier transform :math:`\hat{\mathbf{X}} = \mathbf{U}^\top\mathbf{X}` in float64.

    Args:
        x (Tensor): Node features :math:`(N, C)` or stacked :math:`(K, N, C)`.
        eigenvectors (Tensor): Orthonormal eigenvectors :math:`(N, N)` as columns.

    Shapes:
        - **output:** :math:`(N, C)` or :math:`(K, N, C)`, row :math:`k` at frequency
          :math:`\lambda_k`

    Example:
        >>> evals, evecs = eigenbasis(torch.tensor([[0, 1], [1, 0]]), 2)
        >>> graph_fourier_transform(torch.tensor([[1.0], [1.0]]), evecs).abs()
        tensor([[1.4142],
                [0.0000]], dtype=torch.float64)
    """
    sig = as_signal(x)
    if eigenvectors.shape != (sig.num_nodes, sig.num_nodes):
        raise ValueError(
            f"eigenvectors must have shape [N, N] = [{sig.num_nodes}, "
            f"{sig.num_nodes}], got {tuple(eigenvectors.shape)}"
        )
    out = eigenvectors.to(_F64).T @ sig.x.to(_F64)
    if sig.groups is None:
        return out
    return out.view(sig.num_nodes, sig.groups, sig.channels).transpose(0, 1)


def _check_tol(tol: float) -> float:
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 0.5:
        raise ValueError(f"tol must be a float in [0, 0.5), got {tol!r}")
    return float(tol)


def band_weights(
    eigenvalues: Tensor, bands: Tensor | Sequence[float], *, tol: float = 0.0
) -> Tensor:
    r"""Share of each eigenvalue counted in each band: float64 ``[N, B]``.

    .. math::
        W_{kb} = \begin{cases}
            1 & e_b + \tau < \lambda_k < e_{b+1} - \tau \\
            \tfrac12 & |\lambda_k - e| \le \tau,\ e \text{ an interior edge of band } b \\
            1 & |\lambda_k - e| \le \tau,\ e \text{ the first or last edge}
        \end{cases}

    Args:
        eigenvalues (Tensor): Frequencies :math:`(N)`.
        bands (Tensor or sequence): Increasing band edges :math:`e_0 < \dots < e_B`.
        tol (float, optional): Absolute half-width :math:`\tau` of the edge window; bands
            must be wider than :math:`2\tau`. (default: ``0.0``)

    Example:
        >>> band_weights(torch.tensor([0.0, 1.0 - 1e-12, 2.0]), [0.0, 1.0, 2.0], tol=1e-6)
        tensor([[1.0000, 0.0000],
                [0.5000, 0.5000],
                [0.0000, 1.0000]], dtype=torch.float64)
    """
    edges = band_edges(bands, 0.0) if not isinstance(bands, int) else None
    if edges is None:
        raise ValueError("band_weights needs explicit band edges, not a number of bands")
    tau = float(tol)
    if tau < 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    if bool(((edges[1:] - edges[:-1]) <= 2 * tau).any()):
        raise ValueError(
            f"every band must be wider than 2 * tol = {2 * tau}; got edges {edges.tolist()}"
        )
    lam = eigenvalues.to(_F64)[:, None]
    edges = edges.to(lam.device)
    lo, hi = edges[:-1][None], edges[1:][None]
    num_bands = lo.size(1)
    lo_share = torch.full((1, num_bands), 0.5, dtype=_F64, device=lam.device)
    hi_share = lo_share.clone()
    lo_share[0, 0] = 1.0
    hi_share[0, -1] = 1.0
    inside = ((lam > lo + tau) & (lam < hi - tau)).to(_F64)
    at_lo = ((lam - lo).abs() <= tau).to(_F64) * lo_share
    at_hi = ((lam - hi).abs() <= tau).to(_F64) * hi_share
    return inside + at_lo + at_hi


def _fourier_energy(
    sig: Signal,
    cache: GraphCache,
    normalization: str | None,
    add_self_loops: bool,
    batch: Tensor | None,
    num_graphs: int,
    max_nodes: int,
) -> list[tuple[Tensor, Tensor]]:
    """Per graph: (eigenvalues, float64 energy per eigenvalue ``[N_g, groups]``)."""
    if batch is None:
        check_dense_size(sig.num_nodes, max_nodes)
    else:
        cache.pair_graph(batch)  # no edge may join two graphs
        sizes = torch.bincount(batch, minlength=num_graphs) if batch.numel() else batch
        check_dense_size(int(sizes.max()) if sizes.numel() else 0, max_nodes)
    y = sig.x.to(_F64)
    if normalization == "rw":
        y = y * cache.deg_sqrt(add_self_loops)[:, None]
    op_norm = None if normalization is None else "sym"
    per_graph: list[list[tuple[Tensor, Tensor]]] = [[] for _ in range(num_graphs)]
    for nodes, evals, evecs in cache.spectral_blocks(op_norm, add_self_loops):
        coef = y[nodes] if evecs is None else evecs.T @ y[nodes]
        energy = group_sum(coef * coef, sig)
        if batch is None:
            per_graph[0].append((evals, energy))
        elif evecs is not None:  # a connected component lies in one graph
            per_graph[int(batch[nodes[0]])].append((evals, energy))
        else:  # isolated nodes may belong to many graphs
            owner = batch[nodes]
            for g in owner.unique().tolist():
                keep = owner == g
                per_graph[g].append((evals[keep], energy[keep]))
    empty = (torch.zeros(0, dtype=_F64), torch.zeros(0, sig.num_groups, dtype=_F64))
    return [
        (torch.cat([b[0] for b in blocks]), torch.cat([b[1] for b in blocks])) if blocks else empty
        for blocks in per_graph
    ]


def _exact_band_energy(
    x,
    edge_index,
    edge_weight,
    bands,
    normalization,
    *,
    add_self_loops,
    symmetrize,
    tol,
    batch,
    cache,
    max_nodes,
    **_unused,
) -> Tensor:
    sig = as_signal(x)
    check_normalization(normalization)
    cache = resolve_cache(edge_index, sig.num_nodes, edge_weight, symmetrize, cache)
    batch, num_graphs = check_batch(batch, sig.num_nodes)
    bound = cache.spectral_bound(normalization, add_self_loops)
    edges = band_edges(bands, bound)
    tau = _check_tol(tol) * bound
    per_graph = []
    for evals, energy in _fourier_energy(
        sig, cache, normalization, add_self_loops, batch, num_graphs, max_nodes
    ):
        per_graph.append(energy.T @ band_weights(evals, edges, tol=tau))  # [groups, B]
    if not per_graph:
        out = torch.zeros(0, sig.num_groups, edges.numel() - 1, dtype=_F64)
    else:
        out = torch.stack(per_graph)
    return finish(out, sig, batch)


def _exact_high_frequency_ratio(
    x,
    edge_index,
    edge_weight,
    cutoff,
    normalization,
    *,
    add_self_loops,
    symmetrize,
    tol,
    batch,
    cache,
    max_nodes,
    **_unused,
) -> Tensor:
    sig = as_signal(x)
    check_normalization(normalization)
    if (
        isinstance(cutoff, bool)
        or not isinstance(cutoff, (int, float))
        or cutoff != cutoff
        or abs(cutoff) == float("inf")
    ):
        raise ValueError(f"cutoff must be a finite frequency, got {cutoff!r}")
    cache = resolve_cache(edge_index, sig.num_nodes, edge_weight, symmetrize, cache)
    batch, num_graphs = check_batch(batch, sig.num_nodes)
    tau = _check_tol(tol) * cache.spectral_bound(normalization, add_self_loops)
    if batch is None:
        check_dense_size(sig.num_nodes, max_nodes)
        high, total = _subspace_energy(sig, cache, normalization, add_self_loops, cutoff, tau)
        return finish(safe_divide(high, total)[None], sig, batch)
    ratios = []
    for evals, energy in _fourier_energy(
        sig, cache, normalization, add_self_loops, batch, num_graphs, max_nodes
    ):
        share = _hf_share(evals, cutoff, tau)
        ratios.append(safe_divide(share @ energy, energy.sum(0)))  # [groups]
    out = torch.stack(ratios) if ratios else torch.zeros(0, sig.num_groups, dtype=_F64)
    return finish(out, sig, batch)


def _hf_share(evals: Tensor, cutoff: float, tau: float) -> Tensor:
    """Share of each eigenvalue above ``cutoff``: 1 above, 1/2 within ``tau``, else 0."""
    return (evals > cutoff + tau).to(_F64) + 0.5 * ((evals - cutoff).abs() <= tau).to(_F64)


def _subspace_blocks(
    cache: GraphCache, op_norm: str | None, add_self_loops: bool, cutoff: float, tau: float
) -> list[tuple[Tensor, Tensor | None, Tensor, bool]]:
    """Per component: ``(nodes, U, w, high)`` with ``U`` the eigenvectors of the smaller
    side of ``cutoff`` (those with a share above 0 when ``high``, else below 1), ``w``
    their share (``1 - share`` on the low side); ``U`` is ``None`` for isolated nodes.
    Cached on ``cache``."""
    key = ("hf-subspace", op_norm, bool(add_self_loops), float(cutoff), float(tau))
    store = cache._store
    if key not in store:
        blocks = []
        for nodes, evals, evecs in cache.spectral_blocks(op_norm, add_self_loops):
            share = _hf_share(evals, cutoff, tau)
            if evecs is None:
                blocks.append((nodes, None, share, True))
                continue
            above, below = share > 0, share < 1
            high = int(above.sum()) <= int(below.sum())
            cols = above if high else below
            w = share[cols] if high else 1 - share[cols]
            blocks.append((nodes, evecs[:, cols].contiguous(), w, high))
        store[key] = _merge_small_blocks(blocks)
    return store[key]


#: Components of at most this many nodes are projected together, block-diagonally, in
#: chunks of at most this many nodes (one product instead of one per component).
MERGE_NODES = 512


def _merge_small_blocks(
    blocks: list[tuple[Tensor, Tensor | None, Tensor, bool]],
) -> list[tuple[Tensor, Tensor | None, Tensor, bool]]:
    """Small components joined into block-diagonal chunks of one side each.

    One product per chunk instead of one per component (Cora has 78 components, CiteSeer
    438; docs/performance.md); graphs with thousands of small components gain the most."""
    out = [b for b in blocks if b[0].numel() > MERGE_NODES]
    for side in (True, False):
        chunk: list[tuple[Tensor, Tensor | None, Tensor, bool]] = []
        rows = 0
        small = [b for b in blocks if b[0].numel() <= MERGE_NODES and b[3] == side]
        for i, b in enumerate(small):
            chunk.append(b)
            rows += b[0].numel()
            last = i == len(small) - 1
            if last or rows + small[i + 1][0].numel() > MERGE_NODES:
                if len(chunk) == 1:
                    out.append(chunk[0])
                else:
                    nodes = torch.cat([c[0] for c in chunk])
                    u = torch.block_diag(
                        *[
                            torch.eye(c[0].numel(), dtype=_F64) if c[1] is None else c[1]
                            for c in chunk
                        ]
                    )
                    out.append((nodes, u, torch.cat([c[2].reshape(-1) for c in chunk]), side))
                chunk, rows = [], 0
    return out


def _subspace_energy(
    sig: Signal,
    cache: GraphCache,
    normalization: str | None,
    add_self_loops: bool,
    cutoff: float,
    tau: float,
) -> tuple[Tensor, Tensor]:
    """Float64 ``(energy above cutoff, total energy)`` per group ``[G]`` of one graph.

    Projects only on the eigenvectors of the smaller side of the cutoff of each component
    (the total is ``||y||^2``, Parseval), half the product of the full transform on
    Cora; the result is the same sum as ``share @ energy`` over the full spectrum."""
    y = sig.x.to(_F64)
    if normalization == "rw":
        y = y * cache.deg_sqrt(add_self_loops)[:, None]
    op_norm = None if normalization is None else "sym"
    high = torch.zeros(sig.num_groups, dtype=_F64)
    per_node = group_sum(y * y, sig)  # [N, G]
    for nodes, u, w, above in _subspace_blocks(cache, op_norm, add_self_loops, cutoff, tau):
        yb = y[nodes]
        coef = yb if u is None else u.T @ yb
        part = w @ group_sum(coef * coef, sig)
        high += part if above else per_node[nodes].sum(0) - part
    return high, per_node.sum(0)


def _largest_graph(x: Tensor, batch: Tensor | None) -> int:
    n = x.size(-2) if isinstance(x, Tensor) and x.dim() >= 2 else 0
    if batch is None or not isinstance(batch, Tensor) or not batch.numel():
        return n
    return int(torch.bincount(batch.long()).max())


def _kpm_band_energy(
    x,
    edge_index,
    edge_weight,
    bands,
    normalization,
    *,
    add_self_loops,
    symmetrize,
    batch,
    cache,
    num_moments,
    **_unused,
) -> Tensor:
    return kpm_band_energy(
        x,
        edge_index,
        edge_weight,
        bands,
        normalization,
        num_moments=num_moments,
        add_self_loops=add_self_loops,
        symmetrize=symmetrize,
        batch=batch,
        cache=cache,
    )


def _kpm_high_frequency_ratio(
    x,
    edge_index,
    edge_weight,
    cutoff,
    normalization,
    *,
    add_self_loops,
    symmetrize,
    batch,
    cache,
    num_moments,
    **_unused,
) -> Tensor:
    return kpm_high_frequency_ratio(
        x,
        edge_index,
        edge_weight,
        cutoff,
        normalization,
        num_moments=num_moments,
        add_self_loops=add_self_loops,
        symmetrize=symmetrize,
        batch=batch,
        cache=cache,
    )


#: How band energies are computed, by name: ``"exact"`` (dense eigenbasis), ``"kpm"``
#: (kernel polynomial method), ``"auto"`` (exact up to ``max_nodes`` nodes per graph).
METHODS: dict[str, tuple[Callable[..., Tensor], Callable[..., Tensor]] | None] = {
    "exact": (_exact_band_energy, _exact_high_frequency_ratio),
    "kpm": (_kpm_band_energy, _kpm_high_frequency_ratio),
    "auto": None,
}


def _method(method: str, x: Tensor, batch: Tensor | None, max_nodes: int) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if method == "auto":
        return "exact" if _largest_graph(x, batch) <= max_nodes else "kpm"
    return method


def band_energy(
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    bands: int | Sequence[float] | Tensor = 4,
    normalization: str | None = "sym",
    *,
    add_self_loops: bool = False,
    symmetrize: bool = False,
    tol: float = 1e-6,
    method: str = "exact",
    num_moments: int = 128,
    max_nodes: int = DENSE_MAX_NODES,
    batch: Tensor | None = None,
    cache: GraphCache | None = None,
) -> Tensor:
    r"""Energy of the features in each frequency band of the Laplacian.

    .. math::
        E_b(\mathbf{X}) = \sum_k W_{kb}\, \|\mathbf{u}_k^\top \mathbf{X}\|_2^2

    with the edge convention of :func:`band_weights` (half the mass of eigenvalues within
    ``tol * lambda_max`` of an interior edge on each side). Over bands covering
    :math:`[0, \lambda_{\max}]` they sum to :math:`\|\mathbf{X}\|_F^2` (to
    :math:`\|\mathbf{X}\|_D^2` for ``"rw"``, which is ``"sym"`` on
    :math:`\mathbf{D}^{1/2}\mathbf{X}`).

    Args:
        x (Tensor): Node features :math:`(N, C)` or stacked :math:`(K, N, C)`.
        edge_index (Tensor): Undirected edge indices :math:`(2, E)`.
        edge_weight (Tensor, optional): Non-negative edge weights. (default: ``None``)
        bands (int or sequence, optional): ``B`` equal bands on :math:`[0, \lambda_{\max}]`,
            or the band edges. (default: ``4``)
        normalization (str, optional): ``None``, ``"sym"`` or ``"rw"``. (default: ``"sym"``)
        add_self_loops (bool, optional): Use :math:`\mathbf{A} + \mathbf{I}`.
            (default: ``False``)
        symmetrize (bool, optional): Symmetrize a directed graph instead of raising.
            (default: ``False``)
        tol (float, optional): Edge window relative to :math:`\lambda_{\max}` (2 for the
            normalized Laplacians); exact method only (KPM's kernel splits a cluster on an
            edge by itself). (default: ``1e-6``)
        method (str, optional): ``"exact"``, ``"kpm"`` or ``"auto"`` (see :data:`METHODS`).
            (default: ``"exact"``)
        num_moments (int, optional): Chebyshev moments for ``"kpm"``. (default: ``128``)
        max_nodes (int, optional): Largest graph decomposed densely.
            (default: :data:`DENSE_MAX_NODES`)
        batch (Tensor, optional): Batch vector :math:`(N)`; each graph decomposed on its own.
            (default: ``None``)
        cache (GraphCache, optional): Reuse this graph's eigenbasis. (default: ``None``)

    Shapes:
        - **output:** float64 :math:`(B)`, :math:`(K, B)`, :math:`(G, B)` or :math:`(K, G, B)`

    Example:
        >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])  # frequencies 0, 1, 2
        >>> band_energy(torch.tensor([[1.0], [0.0], [-1.0]]), path, bands=2).round(decimals=9)
        tensor([1., 1.], dtype=torch.float64)
    """
    name = _method(method, x, batch, max_nodes)
    return METHODS[name][0](
        x,
        edge_index,
        edge_weight,
        bands,
        normalization,
        add_self_loops=add_self_loops,
        symmetrize=symmetrize,
        tol=tol,
        batch=batch,
        cache=cache,
        max_nodes=max_nodes,
        num_moments=num_moments,
    )


def high_frequency_ratio(
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    cutoff: float = 1.0,
    normalization: str | None = "sym",
    *,
    add_self_loops: bool = False,
    symmetrize: bool = False,
    tol: float = 1e-6,
    method: str = "exact",
    num_moments: int = 128,
    max_nodes: int = DENSE_MAX_NODES,
    batch: Tensor | None = None,
    cache: GraphCache | None = None,
) -> Tensor:
    r"""Share of :math:`\|\mathbf{X}\|^2` at frequencies :math:`\lambda \ge` ``cutoff``.

    .. math::
        h(\mathbf{X}) = \frac{\sum_{k:\,\lambda_k > c + \tau}
        \|\mathbf{u}_k^\top\mathbf{X}\|^2 + \tfrac12 \sum_{k:\,|\lambda_k - c| \le \tau}
        \|\mathbf{u}_k^\top\mathbf{X}\|^2}{\|\mathbf{X}\|_F^2}

    with :math:`\tau` = ``tol`` :math:`\cdot\,\lambda_{\max}`: eigenvalues on the cutoff
    count half (on Cora's normalized Laplacian, eigenvalue 1 holds 8.7% of the raw
    features' energy). The default cutoff 1.0 of the normalized Laplacian splits the
    spectrum at the frequency where :math:`\mathbf{I} - \mathbf{L}` changes sign: at and above
    it, one propagation step no longer preserves the sign of a component. A zero signal has
    ratio 0. Arguments as :func:`band_energy`.

    Example:
        >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> high_frequency_ratio(torch.tensor([[1.0], [0.0], [-1.0]]), path)  # all at 1.0
        tensor(0.5000, dtype=torch.float64)
    """
    name = _method(method, x, batch, max_nodes)
    return METHODS[name][1](
        x,
        edge_index,
        edge_weight,
        cutoff,
        normalization,
        add_self_loops=add_self_loops,
        symmetrize=symmetrize,
        tol=tol,
        batch=batch,
        cache=cache,
        max_nodes=max_nodes,
        num_moments=num_moments,
    )
