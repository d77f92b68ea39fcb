r"""Kernel polynomial method: a signal's energy over frequency without eigendecomposition.

For a graph too large for a dense eigenbasis, the distribution of
:math:`\|\mathbf{X}\|^2` over the Laplacian's frequencies,

.. math::
    \rho(\lambda) = \sum_k \|\mathbf{u}_k^\top \mathbf{X}\|^2\, \delta(\lambda - \lambda_k),

is estimated from its Chebyshev moments on the rescaled operator
:math:`\tilde{\mathbf{L}} = 2\mathbf{L}/\lambda_{\max} - \mathbf{I}` (spectrum in
:math:`[-1, 1]`),

.. math::
    \mu_m = \operatorname{tr}(\mathbf{X}^\top T_m(\tilde{\mathbf{L}}) \mathbf{X})
          = \sum_k \|\mathbf{u}_k^\top \mathbf{X}\|^2\, T_m(\tilde{\lambda}_k),

damped by the Jackson kernel :math:`g_m` (which keeps the estimate non-negative and free of
Gibbs oscillations; resolution about :math:`\pi\lambda_{\max}/(2M)`). Band energies are
integrals of the damped expansion in closed form, and sum to :math:`\mu_0 =
\|\mathbf{X}\|_F^2`. Cost: :math:`\lceil M/2 \rceil` sparse-dense products (the moment
doubling :math:`\mu_{2m} = 2\langle V_m, V_m\rangle - \mu_0`,
:math:`\mu_{2m+1} = 2\langle V_{m+1}, V_m\rangle - \mu_1`), i.e. :math:`O(M |E| C)`.

An eigenvalue cluster exactly on a band edge is split half and half by the symmetric kernel
in the limit; that is the convention the exact tools of :mod:`gnnleaky.spectral.fourier` use
too, so both agree on graphs like Cora whose normalized Laplacian has eigenvalue 1 hundreds of
times.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from gnnleaky.spectral.operators import (
    GraphCache,
    as_signal,
    band_edges,
    check_batch,
    check_normalization,
    finish,
    group_sum,
    node_reduce,
    resolve_cache,
    safe_divide,
)

__all__ = [
    "KERNELS",
    "SpectralDensity",
    "chebyshev_moments",
    "jackson_damping",
    "kpm_band_energy",
    "kpm_high_frequency_ratio",
    "spectral_density",
]

_F64 = torch.float64


def jackson_damping(
    num_moments: int, *, dtype: torch.dtype = _F64, device: torch.device | str | None = None
) -> Tensor:
    r"""Jackson kernel coefficients :math:`g_0, \dots, g_{M-1}` (Weisse et al., 2006).

    .. math::
        g_m = \frac{(M - m + 1)\cos\frac{\pi m}{M+1}
              + \sin\frac{\pi m}{M+1}\cot\frac{\pi}{M+1}}{M + 1}

    Example:
        >>> g = jackson_damping(8)
        >>> float(g[0]), bool((g[1:] < g[:-1]).all())
        (1.0, True)
    """
    _check_moments(num_moments)
    m = torch.arange(num_moments, dtype=_F64)
    a = math.pi / (num_moments + 1)
    g = ((num_moments - m + 1) * torch.cos(a * m) + torch.sin(a * m) / math.tan(a)) / (
        num_moments + 1
    )
    return g.to(dtype=dtype, device=device)


def _no_damping(
    num_moments: int, *, dtype: torch.dtype = _F64, device: torch.device | str | None = None
) -> Tensor:
    return torch.ones(num_moments, dtype=dtype, device=device)


#: Damping kernels by name: ``"jackson"`` (non-negative, the default) or ``"none"``
#: (plain truncated series, Gibbs oscillations).
KERNELS: dict[str, Callable[..., Tensor]] = {"jackson": jackson_damping, "none": _no_damping}


def _check_moments(num_moments: int) -> None:
    if isinstance(num_moments, bool) or not isinstance(num_moments, int) or num_moments < 1:
        raise ValueError(f"num_moments must be a positive int, got {num_moments!r}")


def _check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {kernel!r}")


class SpectralDensity(NamedTuple):
    r"""A signal's energy distribution over frequency, as damped Chebyshev moments.

    Returned by :func:`spectral_density`. ``moments`` are the raw moments
    :math:`\mu_m` (float64, shape ``[..., M]``, leading dimensions as the input's result);
    the methods evaluate the damped expansion.
    """

    moments: Tensor
    lambda_max: float
    kernel: str = "jackson"

    @property
    def total(self) -> Tensor:
        r""":math:`\mu_0 = \|\mathbf{X}\|_F^2` (or :math:`\|\mathbf{X}\|_D^2` for ``"rw"``)."""
        return self.moments[..., 0]

    def damped(self) -> Tensor:
        """Moments times the kernel coefficients."""
        g = KERNELS[self.kernel](self.moments.size(-1), dtype=_F64, device=self.moments.device)
        return self.moments * g

    def _theta(self, freqs: Tensor) -> Tensor:
        t = (2.0 * freqs / self.lambda_max - 1.0).clamp(-1.0, 1.0)
        return torch.arccos(t)

    def _mass_above(self, freqs: Tensor) -> Tensor:
        """Energy at frequencies above each of ``freqs``: ``[..., len(freqs)]``."""
        mu = self.damped()
        theta = self._theta(freqs.to(device=mu.device, dtype=_F64))  # [P]
        m = torch.arange(1, mu.size(-1), dtype=_F64, device=mu.device)
        basis = torch.sin(theta[:, None] * m) / m  # [P, M-1]
        return (mu[..., :1] * theta + 2.0 * mu[..., 1:] @ basis.T) / math.pi

    def band_energy(self, bands: int | Sequence[float] | Tensor = 4) -> Tensor:
        r"""Energy in each frequency band ``[..., B]``; sums to :attr:`total` over
        :math:`[0, \lambda_{\max}]`.

        Args:
            bands (int or sequence): ``B`` equal bands on :math:`[0, \lambda_{\max}]`, or
                the band edges. (default: ``4``)
        """
        edges = band_edges(bands, self.lambda_max)
        above = self._mass_above(edges)
        return above[..., :-1] - above[..., 1:]

    def high_frequency_ratio(self, cutoff: float = 1.0) -> Tensor:
        """Share of the energy at frequencies :math:`\\ge` ``cutoff`` (0 for a zero signal)."""
        _check_cutoff(cutoff)
        above = self._mass_above(torch.tensor([float(cutoff)], dtype=_F64))[..., 0]
        return safe_divide(above, self.total)

    def density(self, frequencies: Tensor) -> Tensor:
        r"""Estimated energy per unit frequency at ``frequencies`` ``[P]``: ``[..., P]``.

        Diverges like :math:`1/\sqrt{1-t^2}` at the ends of the rescaled spectrum.
        """
        mu = self.damped()
        t = 2.0 * frequencies.to(device=mu.device, dtype=_F64) / self.lambda_max - 1.0
        t = t.clamp(-1.0 + 1e-12, 1.0 - 1e-12)
        m = torch.arange(mu.size(-1), dtype=_F64, device=mu.device)
        cheb = torch.cos(m * torch.arccos(t)[:, None])  # T_m(t): [P, M]
        cheb[:, 1:] *= 2.0
        rho_t = (mu @ cheb.T) / (math.pi * torch.sqrt(1.0 - t * t))
        return rho_t * (2.0 / self.lambda_max)


def _check_cutoff(cutoff: float) -> None:
    if (
        isinstance(cutoff, bool)
        or not isinstance(cutoff, (int, float))
        or not math.isfinite(cutoff)
    ):
        raise ValueError(f"cutoff must be a finite frequency, got {cutoff!r}")


def chebyshev_moments(
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    num_moments: int = 128,
    normalization: str | None = "sym",
    *,
    add_self_loops: bool = False,
    symmetrize: bool = False,
    batch: Tensor | None = None,
    cache: GraphCache | None = None,
    dtype: torch.dtype = _F64,
) -> Tensor:
    r"""Chebyshev moments :math:`\mu_m = \operatorname{tr}(\mathbf{X}^\top
    T_m(\tilde{\mathbf{L}})\mathbf{X})`, :math:`m = 0, \dots, M - 1`.

    Args:
        x (Tensor): Node features :math:`(N, C)` or stacked :math:`(K, N, C)`.
        edge_index (Tensor): Undirected edge indices :math:`(2, E)`.
        edge_weight (Tensor, optional): Non-negative edge weights. (default: ``None``)
        num_moments (int, optional): Number of moments :math:`M`. (default: ``128``)
        normalization (str, optional): ``None``, ``"sym"`` or ``"rw"`` (``"sym"`` on
            :math:`\mathbf{D}^{1/2}\mathbf{X}`). (default: ``"sym"``)
        add_self_loops (bool, optional): Use :math:`\mathbf{A} + \mathbf{I}`.
            (default: ``False``)
        symmetrize (bool, optional): Symmetrize a directed graph instead of raising.
            (default: ``False``)
        batch (Tensor, optional): Batch vector :math:`(N)`. (default: ``None``)
        cache (GraphCache, optional): Reuse this graph's operator. (default: ``None``)
        dtype (torch.dtype, optional): Precision of the recurrence (the dot products are
            always accumulated in float64). (default: ``torch.float64``)

    Shapes:
        - **output:** float64 :math:`(M)`, :math:`(K, M)`, :math:`(G, M)` or :math:`(K, G, M)`

    Example:
        >>> edge_index = torch.tensor([[0, 1], [1, 0]])  # eigenvalues 0 and 2
        >>> chebyshev_moments(torch.tensor([[1.0], [-1.0]]), edge_index, num_moments=3)
        tensor([2., 2., 2.], dtype=torch.float64)
    """
    _check_moments(num_moments)
    sig = as_signal(x)
    check_normalization(normalization)
    cache = resolve_cache(edge_index, sig.num_nodes, edge_weight, symmetrize, cache)
    batch, num_graphs = check_batch(batch, sig.num_nodes)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")

    y = sig.x.to(dtype)
    if normalization == "rw":
        y = y * cache.deg_sqrt(add_self_loops).to(dtype)[:, None]
    op_norm = None if normalization is None else "sym"

    def dot(a: Tensor, b: Tensor) -> Tensor:  # float64 [graphs, groups]
        if batch is None and sig.groups is None:
            return torch.dot(a.reshape(-1), b.reshape(-1)).to(_F64).reshape(1, 1)
        return node_reduce(group_sum(a * b, sig), batch, num_graphs)

    mu0 = dot(y, y)
    moments = [mu0]
    if num_moments > 1 and sig.num_nodes:
        op = cache.chebyshev_operator(op_norm, add_self_loops, dtype)
        inplace = not (torch.is_grad_enabled() and y.requires_grad)
        prev, cur = y, torch.sparse.mm(op, y)
        owned = False  # prev is the caller's tensor until the first step
        mu1 = dot(cur, prev)
        moments.append(mu1)
        while len(moments) < num_moments:
            moments.append(2.0 * dot(cur, cur) - mu0)  # mu_{2k}
            if len(moments) == num_moments:
                break
            if inplace:
                # V_{k+1} = 2 L~ V_k - V_{k-1} in one call, into V_{k-1}'s buffer once it is
                # ours: no allocation (and no page faults) per step at 10^6 x 64 float64.
                nxt = torch.addmm(prev, op, cur, beta=-1.0, alpha=2.0, out=prev if owned else None)
                owned = True
            else:
                nxt = 2.0 * torch.sparse.mm(op, cur) - prev
            moments.append(2.0 * dot(nxt, cur) - mu1)  # mu_{2k+1}
            prev, cur = cur, nxt
    elif num_moments > 1:
        moments.extend([torch.zeros_like(mu0)] * (num_moments - 1))
    return finish(torch.stack(moments, dim=-1), sig, batch)


def spectral_density(
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    num_moments: int = 128,
    normalization: str | None = "sym",
    *,
    add_self_loops: bool = False,
    symmetrize: bool = False,
    kernel: str = "jackson",
    batch: Tensor | None = None,
    cache: GraphCache | None = None,
    dtype: torch.dtype = _F64,
) -> SpectralDensity:
    r"""A signal's energy distribution over Laplacian frequencies by the kernel polynomial
    method, in :math:`O(M |E| C)` and without eigendecomposition.

    .. math::
        \rho(\lambda) \approx \frac{2}{\lambda_{\max}}\,
        \frac{g_0\mu_0 + 2\sum_{m \ge 1} g_m \mu_m T_m(t)}{\pi\sqrt{1 - t^2}}, \qquad
        t = \frac{2\lambda}{\lambda_{\max}} - 1

    Arguments as :func:`chebyshev_moments`, plus ``kernel`` (a name in :data:`KERNELS`,
    default ``"jackson"``). :math:`\lambda_{\max}` is 2 for the normalized Laplacians and
    :math:`2\max_i d_i` for :math:`\mathbf{D} - \mathbf{A}`.

    Returns:
        :class:`SpectralDensity`, with ``band_energy(bands)``, ``high_frequency_ratio(cutoff)``
        and ``density(frequencies)``.

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> sd = spectral_density(torch.randn(3, 8), edge_index, num_moments=64)
        >>> bool(torch.isclose(sd.band_energy(4).sum(), sd.total))
        True
    """
    _check_kernel(kernel)
    check_normalization(normalization)
    cache = resolve_cache(edge_index, as_signal(x).num_nodes, edge_weight, symmetrize, cache)
    moments = chebyshev_moments(
        x,
        edge_index,
        edge_weight,
        num_moments,
        normalization,
        add_self_loops=add_self_loops,
        symmetrize=symmetrize,
        batch=batch,
        cache=cache,
        dtype=dtype,
    )
    bound = cache.spectral_bound(normalization, add_self_loops)
    return SpectralDensity(moments, float(bound), kernel)


def kpm_band_energy(
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    bands: int | Sequence[float] | Tensor = 4,
    normalization: str | None = "sym",
    *,
    num_moments: int = 128,
    add_self_loops: bool = False,
    symmetrize: bool = False,
    kernel: str = "jackson",
    batch: Tensor | None = None,
    cache: GraphCache | None = None,
    dtype: torch.dtype = _F64,
) -> Tensor:
    r"""Band energies by the kernel polynomial method (the scalable :func:`band_energy`).

    .. math::
        E_{[a,b]} = \frac{g_0\mu_0(\theta_a - \theta_b)}{\pi}
        + \frac{2}{\pi}\sum_{m\ge1} g_m\mu_m \frac{\sin m\theta_a - \sin m\theta_b}{m},
        \qquad \theta = \arccos\Big(\frac{2\lambda}{\lambda_{\max}} - 1\Big)

    Arguments as :func:`spectral_density` and ``bands`` as :func:`band_energy`.

    Shapes:
        - **output:** float64 :math:`(B)`, :math:`(K, B)`, :math:`(G, B)` or :math:`(K, G, B)`

    Example:
        >>> edge_index = torch.tensor([[0, 1], [1, 0]])  # eigenvalues 0 and 2
        >>> kpm_band_energy(torch.tensor([[1.0], [0.0]]), edge_index, bands=2)
        tensor([0.5000, 0.5000], dtype=torch.float64)
    """
    return spectral_density(
        x,
        edge_index,
        edge_weight,
        num_moments,
        normalization,
        add_self_loops=add_self_loops,
        symmetrize=symmetrize,
        kernel=kernel,
        batch=batch,
        cache=cache,
        dtype=dtype,
    ).band_energy(bands)


def kpm_high_frequency_ratio(
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    cutoff: float = 1.0,
    normalization: str | None = "sym",
    *,
    num_moments: int = 128,
    add_self_loops: bool = False,
    symmetrize: bool = False,
    kernel: str = "jackson",
    batch: Tensor | None = None,
    cache: GraphCache | None = None,
    dtype: torch.dtype = _F64,
) -> Tensor:
    r"""Share of :math:`\|\mathbf{X}\|^2` at frequencies :math:`\ge` ``cutoff``, by KPM.

    Arguments as :func:`kpm_band_energy`. A zero signal gives 0.

    Example:
        >>> edge_index = torch.tensor([[0, 1], [1, 0]])
        >>> x = torch.tensor([[1.0], [-1.0]])  # all energy at frequency 2
        >>> round(float(kpm_high_frequency_ratio(x, edge_index)), 4)
        1.0
    """
    return spectral_density(
        x,
        edge_index,
        edge_weight,
        num_moments,
        normalization,
        add_self_loops=add_self_loops,
        symmetrize=symmetrize,
        kernel=kernel,
        batch=batch,
        cache=cache,
        dtype=dtype,
    ).high_frequency_ratio(cutoff)
