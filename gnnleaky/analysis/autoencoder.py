r"""The reconstruction bias of a Leaky ReLU autoencoder: closed forms, Monte Carlo and a
trained toy model.

The 1-D model encodes through the activation and decodes with a gain :math:`w`,

.. math::
    \hat x = w\, \phi_\alpha(x), \qquad
    \phi_\alpha(x) = \max(0, x) + \alpha \min(0, x),

and its reconstruction bias is :math:`B(\alpha) = \mathbb E[x] - \mathbb E[\hat x]`.
Everything follows from four partial moments of the input distribution,
:math:`m_\pm = \mathbb E[x\,1\{\pm x > 0\}]` and
:math:`s_\pm = \mathbb E[x^2\,1\{\pm x > 0\}]`:

* fixed gain :math:`w` (``gain=1.0`` is the identity-weight model
  :math:`\hat x = \phi_\alpha(x)`): :math:`B = (1 - w)\,m_+ + (1 - w\alpha)\, m_-`,
  which is :math:`(1 - \alpha)\, m_-` for :math:`w = 1`;
* learned gain with weight decay :math:`\lambda \ge 0` (``gain=None``), the minimizer
  of :math:`\mathbb E[(x - w\phi_\alpha(x))^2] + \lambda w^2`:

.. math::
    w^*(\alpha) = \frac{s_+ + \alpha s_-}{s_+ + \alpha^2 s_- + \lambda}, \qquad
    B(\alpha) = \frac{s_- m_+ \alpha^2 - (s_+ m_- + s_- m_+)\,\alpha + s_+ m_- + \mu\lambda}
    {s_+ + \alpha^2 s_- + \lambda},

with :math:`\mu = m_+ + m_-`. Without weight decay the numerator is
:math:`(1 - \alpha)(s_+ m_- - \alpha\, s_- m_+)`: the only unbiased slope in
:math:`[0, 1]` is :math:`\alpha = 1` (the other root is negative). Weight decay shrinks
the reconstruction (bias :math:`\mu\lambda / (\mathbb E[x^2] + \lambda)` at
:math:`\alpha = 1`) while rectifying the negative half inflates its mean: for
:math:`\mu > 0` and :math:`0 < \lambda < -s_+ m_- / \mu` the two cancel at one slope
:math:`\alpha^* \in (0, 1)`, a root of the quadratic (:func:`optimal_alpha`).
Distributions: :class:`Gaussian`, :class:`ShiftedExponential` (skewed),
:class:`StudentT` (heavy tails; no finite mean for ``df <= 1``). See
``docs/theory.md`` for the derivations and the checks.

On graphs, :func:`edge_probability_bias` measures a graph autoencoder's bias in
predicted edge probability per degree bucket (mean predicted minus observed rate, over
all node pairs or over held-out labelled pairs) and :func:`gae_bias` trains PyG's
``GAE`` with a :class:`gnnleaky.nn.GCN` encoder per slope to measure it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.special
import torch
import torch.nn.functional as F
from torch import Tensor

from gnnleaky.analysis._common import check_finite, check_positive_int

__all__ = [
    "DEGREE_BINS",
    "Gaussian",
    "LeakyAutoencoder1d",
    "MonteCarloBias",
    "PartialMoments",
    "ShiftedExponential",
    "StudentT",
    "ToyAutoencoderFit",
    "edge_probability_bias",
    "gae_bias",
    "monte_carlo_bias",
    "optimal_alpha",
    "optimal_gain",
    "partial_moments",
    "reconstruction_bias",
    "reconstruction_mse",
    "reconstruction_table",
    "train_toy_autoencoder",
]


class PartialMoments(NamedTuple):
    r"""Partial moments :math:`m_- = \mathbb E[x 1\{x<0\}]`,
    :math:`m_+ = \mathbb E[x 1\{x>0\}]`, :math:`s_- = \mathbb E[x^2 1\{x<0\}]`,
    :math:`s_+ = \mathbb E[x^2 1\{x>0\}]` (``inf`` when the second moment is infinite)."""

    neg_mean: float
    pos_mean: float
    neg_square: float
    pos_square: float

    @property
    def mean(self) -> float:
        return self.neg_mean + self.pos_mean

    @property
    def second_moment(self) -> float:
        return self.neg_square + self.pos_square


def _floats(*values: float) -> PartialMoments:
    return PartialMoments(*(float(v) for v in values))


def _param(owner: str, name: str, value: float, *, positive: bool = False) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}.{name} must be a finite float, got {value!r}") from None
    if not math.isfinite(v) or (positive and v <= 0):
        need = "a finite float > 0" if positive else "a finite float"
        raise ValueError(f"{owner}.{name} must be {need}, got {value!r}")


@dataclass(frozen=True)
class Gaussian:
    r"""The normal distribution :math:`\mathcal N(\mu, \sigma^2)`.

    With :math:`t = \mu/\sigma`, :math:`m_- = \mu\,\Phi(-t) - \sigma\,\varphi(t)` and
    :math:`s_- = (\mu^2 + \sigma^2)\,\Phi(-t) - \mu\sigma\,\varphi(t)`.

    Args:
        mean (float, optional): :math:`\mu`. (default: ``0.0``)
        std (float, optional): :math:`\sigma > 0`. (default: ``1.0``)

    Example:
        >>> round(Gaussian(0.0, 1.0).partial_moments().neg_mean, 6)  # -1/sqrt(2 pi)
        -0.398942
    """

    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        _param("Gaussian", "mean", self.mean)
        _param("Gaussian", "std", self.std, positive=True)

    def partial_moments(self) -> PartialMoments:
        mu, sd = float(self.mean), float(self.std)
        t = mu / sd
        pdf = math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
        lower, upper = scipy.special.ndtr(-t), scipy.special.ndtr(t)
        # each side directly (x -> -x maps one onto the other), not as total - other
        # side, which would cancel when one side holds almost all the mass
        m_neg, m_pos = mu * lower - sd * pdf, mu * upper + sd * pdf
        s_neg = (mu * mu + sd * sd) * lower - mu * sd * pdf
        s_pos = (mu * mu + sd * sd) * upper + mu * sd * pdf
        return _floats(m_neg, m_pos, s_neg, s_pos)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        return float(self.mean) + float(self.std) * scipy.special.ndtri(u)


@dataclass(frozen=True)
class ShiftedExponential:
    r"""A shifted exponential: :math:`x = c + E`, :math:`E \sim \mathrm{Exp}(r)`
    (support :math:`[c, \infty)`, mean :math:`c + 1/r`, skewness 2).

    For :math:`c < 0`: :math:`m_- = c + (1 - e^{rc})/r`,
    :math:`s_- = c^2 + 2c/r + 2(1 - e^{rc})/r^2`, :math:`m_+ = e^{rc}/r` and
    :math:`s_+ = 2e^{rc}/r^2` (beyond 0 the excess is again :math:`\mathrm{Exp}(r)`);
    for :math:`c \ge 0` the negative parts are 0.

    Args:
        rate (float, optional): :math:`r > 0`. (default: ``1.0``)
        shift (float, optional): :math:`c`. (default: ``0.0``)

    Example:
        >>> pm = ShiftedExponential(rate=1.0, shift=-1.0).partial_moments()
        >>> round(pm.neg_mean, 6), round(pm.mean, 6)  # -1 + (1 - 1/e), 0
        (-0.367879, 0.0)
    """

    rate: float = 1.0
    shift: float = 0.0

    def __post_init__(self) -> None:
        _param("ShiftedExponential", "rate", self.rate, positive=True)
        _param("ShiftedExponential", "shift", self.shift)

    def partial_moments(self) -> PartialMoments:
        r, c = float(self.rate), float(self.shift)
        mean, second = c + 1 / r, c * c + 2 * c / r + 2 / r**2
        if c >= 0:
            return _floats(0.0, mean, 0.0, second)
        tail, beyond = -math.expm1(r * c), math.exp(r * c)  # P(x < 0), P(x > 0)
        m_neg = c + tail / r
        s_neg = c * c + 2 * c / r + 2 * tail / r**2
        return _floats(m_neg, beyond / r, s_neg, 2 * beyond / r**2)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        return float(self.shift) - np.log1p(-u) / float(self.rate)


@dataclass(frozen=True)
class StudentT:
    r"""Student's t: :math:`x = \ell + \sigma T`, :math:`T \sim t_\nu`.

    The mean exists for :math:`\nu > 1` and the second moment for :math:`\nu > 2`
    (``df=1`` is the Cauchy distribution: no finite mean). With :math:`t_0 = -\ell/\sigma`
    and :math:`F_\nu, f_\nu` the CDF and density of :math:`t_\nu`,
    :math:`\mathbb E[T 1\{T < t\}] = -\tfrac{\nu + t^2}{\nu - 1} f_\nu(t)` and
    :math:`\mathbb E[T^2 1\{T < t\}] = \tfrac{\nu(\nu-1)}{\nu-2}
    F_{\nu-2}\big(t\sqrt{(\nu-2)/\nu}\big) - \nu F_\nu(t)`.

    Args:
        df (float): Degrees of freedom :math:`\nu > 0`.
        loc (float, optional): :math:`\ell`. (default: ``0.0``)
        scale (float, optional): :math:`\sigma > 0`. (default: ``1.0``)

    Example:
        >>> StudentT(df=1.0).partial_moments()
        Traceback (most recent call last):
        ...
        ValueError: distribution StudentT(df=1.0, ...) has no finite mean (needs df > 1)...
    """

    df: float
    loc: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        _param("StudentT", "df", self.df, positive=True)
        _param("StudentT", "loc", self.loc)
        _param("StudentT", "scale", self.scale, positive=True)

    def partial_moments(self) -> PartialMoments:
        nu, loc, sc = float(self.df), float(self.loc), float(self.scale)
        if nu <= 1:
            raise ValueError(
                f"distribution {self!r} has no finite mean (needs df > 1), so its "
                "reconstruction bias is undefined"
            )
        t0 = -loc / sc
        log_c = (
            scipy.special.gammaln((nu + 1) / 2)
            - scipy.special.gammaln(nu / 2)
            - 0.5 * math.log(nu * math.pi)
        )
        pdf = math.exp(log_c - (nu + 1) / 2 * math.log1p(t0 * t0 / nu))
        cdf, sf = float(scipy.special.stdtr(nu, t0)), float(scipy.special.stdtr(nu, -t0))
        first = -(nu + t0 * t0) / (nu - 1) * pdf  # E[T 1{T < t0}] = -E[T 1{T > t0}]
        m_neg, m_pos = loc * cdf + sc * first, loc * sf - sc * first
        if nu <= 2:
            return _floats(m_neg, m_pos, math.inf, math.inf)
        r = math.sqrt((nu - 2) / nu)
        k = nu * (nu - 1) / (nu - 2)
        below = k * float(scipy.special.stdtr(nu - 2, t0 * r)) - nu * cdf  # E[T^2 1{T < t0}]
        above = k * float(scipy.special.stdtr(nu - 2, -t0 * r)) - nu * sf
        s_neg = loc * loc * cdf + 2 * loc * sc * first + sc * sc * below
        s_pos = loc * loc * sf - 2 * loc * sc * first + sc * sc * above
        return _floats(m_neg, m_pos, s_neg, s_pos)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        return float(self.loc) + float(self.scale) * scipy.special.stdtrit(float(self.df), u)


Distribution = Gaussian | ShiftedExponential | StudentT
_DISTRIBUTIONS = (Gaussian, ShiftedExponential, StudentT)


def partial_moments(distribution: Distribution) -> PartialMoments:
    r"""The partial moments :math:`m_\pm, s_\pm` of ``distribution`` in closed form.

    Args:
        distribution: A :class:`Gaussian`, :class:`ShiftedExponential` or
            :class:`StudentT`.

    Example:
        >>> pm = partial_moments(Gaussian(1.0, 2.0))
        >>> round(pm.mean, 12), round(pm.second_moment, 12)
        (1.0, 5.0)
    """
    if not isinstance(distribution, _DISTRIBUTIONS):
        raise ValueError(
            "distribution must be one of Gaussian, ShiftedExponential, StudentT, got "
            f"{distribution!r}"
        )
    return distribution.partial_moments()


def _slope(negative_slope: float) -> float:
    try:
        a = float(negative_slope)
    except (TypeError, ValueError):
        raise ValueError(f"negative_slope must be a finite float, got {negative_slope!r}") from None
    if not math.isfinite(a):
        raise ValueError(f"negative_slope must be a finite float, got {negative_slope!r}")
    return a


def _decay(weight_decay: float) -> float:
    return check_finite("weight_decay", weight_decay, minimum=0.0)


def _moments(distribution: Distribution, *, second: bool) -> PartialMoments:
    pm = partial_moments(distribution)
    if second and not math.isfinite(pm.second_moment):
        raise ValueError(
            f"distribution {distribution!r} has no finite second moment (StudentT needs "
            "df > 2); the learned gain and the MSE need one (a fixed gain's bias does not)"
        )
    return pm


def _gain(pm: PartialMoments, a: float, lam: float, gain: float | None) -> float:
    if gain is not None:
        return check_finite("gain", gain)
    den = pm.pos_square + a * a * pm.neg_square + lam
    if den <= 0:
        raise ValueError(
            "the learned gain is undefined: phi(x) = 0 almost surely and weight_decay = 0 "
            f"(negative_slope={a})"
        )
    return (pm.pos_square + a * pm.neg_square) / den


def optimal_gain(
    negative_slope: float, distribution: Distribution, *, weight_decay: float = 0.0
) -> float:
    r"""The decoder gain that minimizes :math:`\mathbb E[(x - w\phi_\alpha(x))^2] +
    \lambda w^2`:

    .. math::
        w^*(\alpha) = \frac{\mathbb E[x\,\phi_\alpha(x)]}{\mathbb E[\phi_\alpha(x)^2] +
        \lambda} = \frac{s_+ + \alpha s_-}{s_+ + \alpha^2 s_- + \lambda}.

    Args:
        negative_slope (float): :math:`\alpha` (any finite value).
        distribution: The input distribution.
        weight_decay (float, optional): :math:`\lambda \ge 0`. (default: ``0.0``)

    Example:
        >>> round(optimal_gain(0.0, Gaussian(0.0, 1.0)), 12)  # E[x x+] / E[x+^2]
        1.0
    """
    a = _slope(negative_slope)
    lam = _decay(weight_decay)
    return _gain(_moments(distribution, second=True), a, lam, None)


def reconstruction_bias(
    negative_slope: float,
    distribution: Distribution,
    *,
    weight_decay: float = 0.0,
    gain: float | None = None,
) -> float:
    r"""Closed-form reconstruction bias :math:`B(\alpha) = \mathbb E[x] -
    \mathbb E[w\,\phi_\alpha(x)] = m_+ + m_- - w\,(m_+ + \alpha m_-)`.

    Args:
        negative_slope (float): :math:`\alpha` (any finite value).
        distribution: The input distribution.
        weight_decay (float, optional): :math:`\lambda \ge 0` of the learned gain.
            (default: ``0.0``)
        gain (float, optional): A fixed decoder gain :math:`w` (``1.0``: the
            identity-weight model, :math:`B = (1 - \alpha)\, m_-`); ``None`` uses
            :func:`optimal_gain`. (default: ``None``)

    Example:
        >>> d = Gaussian(0.0, 1.0)
        >>> round(reconstruction_bias(0.0, d, gain=1.0), 6)  # (1 - alpha) m_- = E[x 1{x<0}]
        -0.398942
        >>> round(reconstruction_bias(0.5, d), 6)  # learned gain: -m (1 - a^2)/(1 + a^2)
        -0.239365
    """
    a = _slope(negative_slope)
    lam = _decay(weight_decay)
    pm = _moments(distribution, second=gain is None)
    w = _gain(pm, a, lam, gain)
    return pm.mean - w * (pm.pos_mean + a * pm.neg_mean)


def reconstruction_mse(
    negative_slope: float,
    distribution: Distribution,
    *,
    weight_decay: float = 0.0,
    gain: float | None = None,
) -> float:
    r"""Closed-form reconstruction error :math:`\mathbb E[(x - w\phi_\alpha(x))^2] =
    s_+ + s_- - 2w(s_+ + \alpha s_-) + w^2 (s_+ + \alpha^2 s_-)` (without the
    :math:`\lambda w^2` term).

    Args:
        negative_slope, distribution, weight_decay, gain: As in
            :func:`reconstruction_bias`.

    Example:
        >>> round(reconstruction_mse(1.0, Gaussian(0.3, 1.0)), 12)  # identity: exact
        0.0
    """
    a = _slope(negative_slope)
    lam = _decay(weight_decay)
    pm = _moments(distribution, second=True)
    w = _gain(pm, a, lam, gain)
    c = pm.pos_square + a * pm.neg_square
    q = pm.pos_square + a * a * pm.neg_square
    return max(0.0, pm.second_moment - 2 * w * c + w * w * q)


def _bias_roots(pm: PartialMoments, lam: float, gain: float | None) -> list[float]:
    # Real roots of the numerator of B(alpha) (its denominator is positive).
    if gain is not None:
        w = float(gain)
        # B = mean - w m_+ - w alpha m_-: linear in alpha
        if w * pm.neg_mean == 0:
            return []
        return [(pm.mean - w * pm.pos_mean) / (w * pm.neg_mean)]
    c2 = pm.neg_square * pm.pos_mean
    c1 = -(pm.pos_square * pm.neg_mean + pm.neg_square * pm.pos_mean)
    c0 = pm.pos_square * pm.neg_mean + pm.mean * lam
    if c2 == 0:
        return [] if c1 == 0 else [-c0 / c1]
    disc = c1 * c1 - 4 * c2 * c0
    if disc < 0:
        return []
    # numerically stable pair of roots
    q = -0.5 * (c1 + math.copysign(math.sqrt(disc), c1))
    roots = [q / c2]
    if q != 0:
        roots.append(c0 / q)
    return roots


def optimal_alpha(
    distribution: Distribution,
    *,
    weight_decay: float = 0.0,
    gain: float | None = None,
    objective: str = "bias",
    bounds: tuple[float, float] = (0.0, 1.0),
) -> float:
    r"""The slope in ``bounds`` that minimizes :math:`|B(\alpha)|` (``"bias"``) or the
    MSE (``"mse"``).

    ``"bias"`` is exact: :math:`B` is a ratio whose numerator is a quadratic in
    :math:`\alpha` (learned gain) or linear (fixed gain), so the candidates are its real
    roots inside ``bounds`` and the two ends; ties go to the largest :math:`\alpha`.
    With weight decay :math:`\lambda > 0` and :math:`\mathbb E[x] > 0 > m_-`, the root in
    :math:`(0, 1)` is

    .. math::
        \alpha^* = \frac{-c_1 + \sqrt{c_1^2 - 4 c_2 c_0}}{2 c_2}, \quad
        c_2 = s_- m_+,\; c_1 = -(s_+ m_- + s_- m_+),\; c_0 = s_+ m_- + \mu\lambda,

    whenever :math:`c_0 < 0`, i.e. :math:`\lambda < -s_+ m_- / \mu` (then
    :math:`B(0) < 0 < B(1)`); without weight decay it is :math:`\alpha = 1`, and for
    larger :math:`\lambda` shrinkage wins at every slope and the minimizer is an end.
    ``"mse"`` minimizes the closed-form MSE with SciPy's bounded Brent method
    (``xatol=1e-12``) and compares the result with both ends.

    Args:
        distribution: The input distribution.
        weight_decay (float, optional): :math:`\lambda \ge 0`. (default: ``0.0``)
        gain (float, optional): Fixed gain, or ``None`` for the learned one.
            (default: ``None``)
        objective (str, optional): ``"bias"`` or ``"mse"``. (default: ``"bias"``)
        bounds (tuple of float, optional): Search interval. (default: ``(0.0, 1.0)``)

    Example:
        >>> optimal_alpha(Gaussian(1.0, 1.0))  # no weight decay: only alpha = 1
        1.0
        >>> a = optimal_alpha(Gaussian(1.0, 1.0), weight_decay=0.1)
        >>> round(a, 6), abs(reconstruction_bias(a, Gaussian(1.0, 1.0), weight_decay=0.1)) < 1e-12
        (0.503618, True)
    """
    if objective not in ("bias", "mse"):
        raise ValueError(f"objective must be one of ['bias', 'mse'], got {objective!r}")
    try:
        lo, hi = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair of floats (lo, hi), got {bounds!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"bounds must be finite with lo < hi, got {bounds!r}")
    lam = _decay(weight_decay)
    if gain is not None:
        check_finite("gain", gain)
    pm = _moments(distribution, second=gain is None or objective == "mse")
    if objective == "mse":
        res = scipy.optimize.minimize_scalar(
            lambda a: reconstruction_mse(a, distribution, weight_decay=lam, gain=gain),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-12},
        )
        ends = [
            (reconstruction_mse(v, distribution, weight_decay=lam, gain=gain), -v) for v in (hi, lo)
        ]
        best_mse, best_a = min(ends)
        return float(res.x) if float(res.fun) < best_mse else -best_a
    roots = sorted((r for r in _bias_roots(pm, lam, gain) if lo <= r <= hi), reverse=True)
    candidates = [hi, lo, *roots]
    values = [
        abs(reconstruction_bias(a, distribution, weight_decay=lam, gain=gain)) for a in candidates
    ]
    best = min(values)
    # exact roots can leave a rounding residue; prefer them over an end within it
    tol = 1e-12 * max(1.0, abs(pm.mean), abs(pm.neg_mean))
    ties = [a for a, v in zip(candidates, values) if v <= best + tol]
    return float(max(ties))


def reconstruction_table(
    distribution: Distribution,
    negative_slopes: Iterable[float],
    *,
    weight_decay: float = 0.0,
    gain: float | None = None,
) -> pd.DataFrame:
    r"""Closed-form gain, bias and MSE against the slope, as a table.

    Columns: ``negative_slope``, ``gain`` (:math:`w`), ``bias`` (:math:`B(\alpha)`),
    ``mse`` (:math:`\mathbb E[(x - \hat x)^2]`).

    Example:
        >>> df = reconstruction_table(Gaussian(0.0, 1.0), [0.0, 1.0], gain=1.0)
        >>> df.round(6).values.tolist()
        [[0.0, 1.0, -0.398942, 0.5], [1.0, 1.0, 0.0, 0.0]]
    """
    rows = []
    for a in negative_slopes:
        rows.append(
            {
                "negative_slope": _slope(a),
                "gain": (
                    float(gain)
                    if gain is not None
                    else optimal_gain(a, distribution, weight_decay=weight_decay)
                ),
                "bias": reconstruction_bias(a, distribution, weight_decay=weight_decay, gain=gain),
                "mse": reconstruction_mse(a, distribution, weight_decay=weight_decay, gain=gain),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------- Monte Carlo


class MonteCarloBias(NamedTuple):
    r"""Result of :func:`monte_carlo_bias`: the plug-in estimates of ``bias``, ``gain``
    and ``mse`` from ``num_samples`` draws, and ``stderr``, the standard error of the
    bias estimate (delta method, from the sample itself)."""

    bias: float
    stderr: float
    gain: float
    mse: float
    num_samples: int


def _draw(distribution: Distribution, num_samples: int, sampling: str, seed: int) -> np.ndarray:
    if sampling == "random":
        u = np.random.default_rng(seed).random(num_samples)
        u = np.where(u == 0.0, np.nextafter(0.0, 1.0), u)  # finite quantiles
    else:
        u = (np.arange(num_samples) + 0.5) / num_samples
    return distribution.quantile(u)


def monte_carlo_bias(
    negative_slope: float,
    distribution: Distribution,
    *,
    weight_decay: float = 0.0,
    gain: float | None = None,
    num_samples: int = 1_000_000,
    seed: int = 0,
) -> MonteCarloBias:
    r"""Monte Carlo estimate of :math:`B(\alpha)` with its standard error.

    Draws :math:`x_1, \dots, x_n` by inverse transform from
    ``numpy.random.default_rng(seed)``, fits the gain on the sample (when
    ``gain=None``: :math:`\hat w = \overline{x z} / (\overline{z^2} + \lambda)`,
    :math:`z = \phi_\alpha(x)`) and returns
    :math:`\hat B = \bar x - \hat w \bar z`. The standard error is
    :math:`\operatorname{sd}(\psi_i)/\sqrt n` with the influence function

    .. math::
        \psi_i = (x_i - \bar x) - \hat w (z_i - \bar z)
        - \frac{\bar z}{\overline{z^2} + \lambda}\big(x_i z_i - \overline{xz}
        - \hat w (z_i^2 - \overline{z^2})\big)

    (the last term vanishes for a fixed gain). It needs a finite variance of
    :math:`x z` (a StudentT needs ``df > 4``), and a closed form within a few standard
    errors is what agreement means.

    Args:
        negative_slope, distribution, weight_decay, gain: As in
            :func:`reconstruction_bias`.
        num_samples (int, optional): :math:`n \ge 2`. (default: ``1_000_000``)
        seed (int, optional): Seed of the generator. (default: ``0``)

    Example:
        >>> d = ShiftedExponential(rate=1.0, shift=-0.5)
        >>> mc = monte_carlo_bias(0.2, d, num_samples=100_000)
        >>> abs(mc.bias - reconstruction_bias(0.2, d)) < 4 * mc.stderr
        True
    """
    a = _slope(negative_slope)
    lam = _decay(weight_decay)
    n = check_positive_int("num_samples", num_samples, minimum=2)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    _moments(distribution, second=gain is None)
    if gain is not None:
        check_finite("gain", gain)
    x = _draw(distribution, n, "random", seed)
    z = np.where(x > 0, x, a * x)
    zbar, xbar = z.mean(), x.mean()
    if gain is None:
        xz, zz = (x * z).mean(), (z * z).mean() + lam
        w = xz / zz
        psi = (x - xbar) - w * (z - zbar) - zbar / zz * ((x * z - xz) - w * (z * z + lam - zz))
    else:
        w = float(gain)
        psi = (x - xbar) - w * (z - zbar)
    bias = float(xbar - w * zbar)
    stderr = float(psi.std(ddof=1) / math.sqrt(n))
    mse = float(((x - w * z) ** 2).mean())
    return MonteCarloBias(bias, stderr, float(w), mse, n)


# ----------------------------------------------------------------- toy training


class LeakyAutoencoder1d(torch.nn.Module):
    r"""The toy autoencoder :math:`\hat x = w\,\phi_\alpha(x)` with a learned gain
    :math:`w` (initialized to 1, the identity decoder).

    Args:
        negative_slope (float, optional): :math:`\alpha`. (default: ``0.01``)

    Example:
        >>> LeakyAutoencoder1d(0.5)(torch.tensor([-2.0, 3.0])).tolist()
        [-1.0, 3.0]
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = _slope(negative_slope)
        self.gain = torch.nn.Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.gain.fill_(1.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.gain * F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ToyAutoencoderFit(NamedTuple):
    r"""Result of :func:`train_toy_autoencoder`: the trained ``model``, its ``gain``,
    and on the training sample the ``bias`` :math:`\bar x - \bar{\hat x}`, the ``mse``
    and the final ``loss`` (MSE + :math:`\lambda w^2`)."""

    model: LeakyAutoencoder1d
    gain: float
    bias: float
    mse: float
    loss: float


def train_toy_autoencoder(
    negative_slope: float,
    distribution: Distribution,
    *,
    weight_decay: float = 0.0,
    num_samples: int = 100_000,
    sampling: str = "quantile",
    epochs: int = 200,
    lr: float = 0.05,
    lbfgs_steps: int = 20,
    seed: int = 0,
) -> ToyAutoencoderFit:
    r"""Train :class:`LeakyAutoencoder1d` on samples of ``distribution`` with torch
    (float64, full batch): ``epochs`` Adam steps at ``lr`` from :math:`w = 1`, then up
    to ``lbfgs_steps`` L-BFGS iterations, on

    .. math::
        \frac1n \sum_i (x_i - w\,\phi_\alpha(x_i))^2 + \lambda w^2 .

    ``sampling="quantile"`` uses the deterministic stratified sample
    :math:`x_i = F^{-1}((i - \tfrac12)/n)`, whose moments match the distribution's to
    far better than :math:`1/\sqrt n` (so the trained model checks the closed form, not
    the sampler); ``"random"`` draws from ``numpy.random.default_rng(seed)``.

    Args:
        negative_slope, distribution, weight_decay: As in :func:`reconstruction_bias`.
        num_samples (int, optional): :math:`n`. (default: ``100_000``)
        sampling (str, optional): ``"quantile"`` or ``"random"``.
            (default: ``"quantile"``)
        epochs (int, optional): Adam steps (``>= 0``). (default: ``200``)
        lr (float, optional): Adam learning rate. (default: ``0.05``)
        lbfgs_steps (int, optional): L-BFGS iterations (``>= 0``). (default: ``20``)
        seed (int, optional): Seed for ``"random"``. (default: ``0``)

    Example:
        >>> d = Gaussian(0.5, 1.0)
        >>> fit = train_toy_autoencoder(0.1, d, weight_decay=0.05, num_samples=5_000)
        >>> abs(fit.bias - reconstruction_bias(0.1, d, weight_decay=0.05)) < 1e-3
        True
    """
    a = _slope(negative_slope)
    lam = _decay(weight_decay)
    if sampling not in ("quantile", "random"):
        raise ValueError(f"sampling must be one of ['quantile', 'random'], got {sampling!r}")
    n = check_positive_int("num_samples", num_samples, minimum=2)
    check_positive_int("epochs", epochs, minimum=0)
    check_positive_int("lbfgs_steps", lbfgs_steps, minimum=0)
    step = check_finite("lr", lr)
    if step <= 0:
        raise ValueError(f"lr must be a finite float > 0, got {lr!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    _moments(distribution, second=True)
    x = torch.from_numpy(_draw(distribution, n, sampling, seed))
    model = LeakyAutoencoder1d(a).double()

    def objective() -> Tensor:
        return (x - model(x)).pow(2).mean() + lam * model.gain.pow(2)

    adam = torch.optim.Adam(model.parameters(), lr=step)
    for _ in range(epochs):
        adam.zero_grad()
        loss = objective()
        loss.backward()
        adam.step()
    if lbfgs_steps:
        lbfgs = torch.optim.LBFGS(
            model.parameters(),
            lr=1.0,
            max_iter=lbfgs_steps,
            tolerance_grad=1e-14,
            tolerance_change=1e-16,
            line_search_fn="strong_wolfe",
        )

        def closure() -> Tensor:
            lbfgs.zero_grad()
            loss = objective()
            loss.backward()
            return loss

        lbfgs.step(closure)
    with torch.no_grad():
        xhat = model(x)
        loss = float(objective())
        return ToyAutoencoderFit(
            model,
            float(model.gain),
            float(x.mean() - xhat.mean()),
            float((x - xhat).pow(2).mean()),
            loss,
        )


# ----------------------------------------------------------------- graph autoencoder

#: Default degree buckets of :func:`edge_probability_bias`: lower edges of
#: ``[0, 2), [2, 3), [3, 5), [5, 10), [10, inf)``.
DEGREE_BINS: tuple[int, ...] = (0, 2, 3, 5, 10)
_PAIRS = ("all", "heldout")


def _degree_bins(degree_bins: Iterable[int]) -> list[int]:
    try:
        bins = list(degree_bins)
    except TypeError:
        raise ValueError(f"degree_bins must be a sequence of ints, got {degree_bins!r}") from None
    if (
        not bins
        or any(isinstance(b, bool) or not isinstance(b, int) for b in bins)
        or bins[0] != 0
        or any(b >= c for b, c in itertools.pairwise(bins))
    ):
        raise ValueError(
            "degree_bins must be strictly increasing ints starting at 0 (the lower edge "
            f"of each bucket; every node falls in one), got {degree_bins!r}"
        )
    return bins


def _bucket_labels(bins: list[int]) -> list[str]:
    return [f"[{lo}, {hi})" for lo, hi in itertools.pairwise(bins)] + [f"[{bins[-1]}, inf)"]


def _simple_undirected(edge_index: Tensor, num_nodes: int) -> Tensor:
    from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

    ei, _ = remove_self_loops(edge_index)
    return coalesce(to_undirected(ei, num_nodes=num_nodes), num_nodes=num_nodes)


def edge_probability_bias(
    z: Tensor,
    edge_index: Tensor,
    *,
    pairs: str = "all",
    pos_edge_index: Tensor | None = None,
    neg_edge_index: Tensor | None = None,
    degree_bins: Iterable[int] = DEGREE_BINS,
    chunk_size: int = 1024,
) -> pd.DataFrame:
    r"""Bias of an inner-product decoder's edge probability per degree bucket.

    The decoder predicts :math:`p_{ij} = \sigma(z_i^\top z_j)`
    (:class:`~torch_geometric.nn.models.InnerProductDecoder`). A node's bucket is set by
    its degree in the observed graph ``edge_index`` (undirected, without self-loops or
    repeated edges). Each bucket :math:`b` collects the *ordered* pairs
    :math:`(i, j)` whose first node :math:`i` lies in :math:`b`, and

    .. math::
        \mathrm{bias}_b = \frac{1}{|P_b|}\sum_{(i,j) \in P_b} p_{ij}
        - \frac{1}{|P_b|}\sum_{(i,j) \in P_b} y_{ij},

    mean predicted probability minus the observed rate of edges among those pairs.

    * ``pairs="all"``: :math:`P_b = \{(i, j): i \in b, j \ne i\}`, every pair of the
      graph (:math:`|b|(N - 1)` of them), :math:`y_{ij} = A_{ij}`; the observed rate
      is the bucket's edge density :math:`\sum_{i \in b} d_i / (|b|(N-1))`. Computed
      exactly (no sampling), in float64, ``chunk_size`` rows of :math:`ZZ^\top` at a
      time.
    * ``pairs="heldout"``: the labelled pairs ``pos_edge_index`` (:math:`y = 1`) and
      ``neg_edge_index`` (:math:`y = 0`), e.g. the held-out edges and sampled non-edges
      of :class:`~torch_geometric.transforms.RandomLinkSplit`, each unordered pair
      counted from both ends (once in the bucket of each node).

    Over all buckets the counts add up to :math:`N(N-1)` (``"all"``) or twice the number
    of labelled pairs (``"heldout"``), and the positives to :math:`2|E|` or twice the
    number of positive pairs.

    Args:
        z (Tensor): Node embeddings ``[N, D]``.
        edge_index (Tensor): The observed graph ``[2, E]`` (degrees, and the edges of
            ``"all"``).
        pairs (str, optional): ``"all"`` or ``"heldout"``. (default: ``"all"``)
        pos_edge_index, neg_edge_index (Tensor, optional): Labelled pairs ``[2, P]``,
            needed by ``"heldout"``.
        degree_bins (sequence of int, optional): Lower edges of the buckets, strictly
            increasing from 0. (default: :data:`DEGREE_BINS`)
        chunk_size (int, optional): Rows of :math:`ZZ^\top` per step. (default: ``1024``)

    Returns:
        DataFrame, one row per bucket: ``bucket``, ``nodes``, ``num_pairs`` (:math:`|P_b|`),
        ``positives``, ``predicted``, ``observed``, ``bias`` (NaN where a bucket has no
        pair).

    Example:
        >>> ring = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
        >>> df = edge_probability_bias(torch.zeros(4, 2), ring, degree_bins=[0, 2])
        >>> df[["bucket", "num_pairs", "positives", "predicted"]].values.tolist()
        [['[0, 2)', 0, 0, nan], ['[2, inf)', 12, 8, 0.5]]
        >>> round(float(df.bias[1]), 6)  # 1/2 - 8/12
        -0.166667
    """
    from gnnleaky._validation import check_edge_index, check_features

    if pairs not in _PAIRS:
        raise ValueError(f"pairs must be one of {list(_PAIRS)}, got {pairs!r}")
    check_features(z, "z")
    n = z.size(0)
    check_edge_index(edge_index, n)
    bins = _degree_bins(degree_bins)
    chunk = check_positive_int("chunk_size", chunk_size)
    ei = _simple_undirected(edge_index, n)
    deg = torch.bincount(ei[0], minlength=n)
    bucket = torch.bucketize(deg, torch.tensor(bins[1:]), right=True)
    k = len(bins)
    nodes = torch.bincount(bucket, minlength=k)
    z64 = z.detach().double()
    if pairs == "all":
        count = nodes.double() * (n - 1)
        positives = torch.zeros(k, dtype=torch.float64).index_add_(0, bucket, deg.double())
        prob_sum = torch.zeros(n, dtype=torch.float64)
        for start in range(0, n, chunk):
            rows = z64[start : start + chunk]
            p = torch.sigmoid(rows @ z64.t())
            # drop the diagonal (i, i): not a pair
            self_p = torch.sigmoid((rows * rows).sum(1))
            prob_sum[start : start + chunk] = p.sum(1) - self_p
        predicted = torch.zeros(k, dtype=torch.float64).index_add_(0, bucket, prob_sum)
    else:
        if pos_edge_index is None or neg_edge_index is None:
            raise ValueError('pairs="heldout" needs pos_edge_index and neg_edge_index')
        check_edge_index(pos_edge_index, n, "pos_edge_index")
        check_edge_index(neg_edge_index, n, "neg_edge_index")
        src = torch.cat([pos_edge_index, neg_edge_index], 1)
        label = torch.cat(
            [torch.ones(pos_edge_index.size(1)), torch.zeros(neg_edge_index.size(1))]
        ).double()
        p = torch.sigmoid((z64[src[0]] * z64[src[1]]).sum(1))
        ends = torch.cat([bucket[src[0]], bucket[src[1]]])  # each pair from both ends
        count = torch.bincount(ends, minlength=k).double()
        positives = torch.zeros(k, dtype=torch.float64).index_add_(0, ends, label.repeat(2))
        predicted = torch.zeros(k, dtype=torch.float64).index_add_(0, ends, p.repeat(2))
    safe = count.clamp_min(1)
    nan = torch.full_like(count, math.nan)
    mean_p = torch.where(count > 0, predicted / safe, nan)
    rate = torch.where(count > 0, positives / safe, nan)
    return pd.DataFrame(
        {
            "bucket": _bucket_labels(bins),
            "nodes": nodes.tolist(),
            "num_pairs": count.long().tolist(),
            "positives": positives.long().tolist(),
            "predicted": mean_p.tolist(),
            "observed": rate.tolist(),
            "bias": (mean_p - rate).tolist(),
        }
    )


@contextlib.contextmanager
def _seeded_all(seed: int) -> Iterator[None]:
    """:func:`gnnleaky.analysis._common.seeded` plus Python's ``random`` module, which
    PyG's ``negative_sampling`` draws from on small graphs (``random.sample``); the
    caller's states are restored after."""
    from gnnleaky.analysis._common import seeded

    state = random.getstate()
    random.seed(seed)
    try:
        with seeded(seed):
            yield
    finally:
        random.setstate(state)


class _LinkReconstruction:
    """The GAE objective as a :class:`gnnleaky.train.Task`: the reconstruction loss of
    PyG's :meth:`~torch_geometric.nn.models.GAE.recon_loss` on the training edges (one
    set of sampled non-edges per step) and the validation ROC-AUC / AP of
    :meth:`~torch_geometric.nn.models.GAE.test`."""

    def __init__(self, train: Any, val: Any) -> None:
        self.x, self.edge_index = train.x, train.edge_index
        self.pos = train.pos_edge_label_index
        self.val_pos, self.val_neg = val.pos_edge_label_index, val.neg_edge_label_index

    def losses(self, bank: Any) -> Tensor:
        model = bank.module
        z = model.encode(self.x, self.edge_index)
        return model.recon_loss(z, self.pos).view(1)

    def evaluate(self, bank: Any) -> Any:
        from gnnleaky.train import Evaluation

        model = bank.module
        z = model.encode(self.x, self.edge_index)
        if not bool(torch.isfinite(z).all()):
            return Evaluation({"val": [math.nan], "val_ap": [math.nan]}, [False])
        auc, ap = model.test(z, self.val_pos, self.val_neg)
        return Evaluation({"val": [float(auc)], "val_ap": [float(ap)]}, [True])


def gae_bias(
    data: Any,
    negative_slopes: Iterable[float],
    *,
    seeds: Iterable[int] = (0, 1, 2),
    hidden_channels: int = 32,
    out_channels: int = 16,
    num_layers: int = 2,
    epochs: int = 200,
    lr: float = 0.01,
    weight_decay: float = 0.0,
    num_val: float = 0.05,
    num_test: float = 0.1,
    degree_bins: Iterable[int] = DEGREE_BINS,
) -> pd.DataFrame:
    r"""Edge-probability bias of a trained graph autoencoder against the Leaky ReLU slope.

    For every slope :math:`\alpha` and seed: the undirected edges are split by
    :class:`~torch_geometric.transforms.RandomLinkSplit` (``num_val``, ``num_test``;
    one negative per held-out positive), a :class:`~torch_geometric.nn.models.GAE`
    with a :class:`gnnleaky.nn.GCN` encoder (``num_layers`` layers, Leaky ReLU of slope
    :math:`\alpha` after every layer but the last) and the inner-product decoder is
    trained with :func:`gnnleaky.train.fit` on PyG's reconstruction loss over the
    training edges (message passing on the training edges only; one fresh set of
    sampled non-edges per step, as many as positives), the epoch with the best
    validation ROC-AUC kept. Its embeddings then go to :func:`edge_probability_bias`
    twice: ``pairs="all"`` against the full observed graph (``data.edge_index``,
    held-out edges included) and ``pairs="heldout"`` on the test split's positives and
    negatives (observed rate 1/2 by construction). The seed sets the split, the
    initialization and the negative samples (torch's and Python's ``random``
    generators, restored after: the caller's RNG is not touched).

    Args:
        data (Data): ``x`` and an undirected ``edge_index``.
        negative_slopes (sequence of float): The slopes :math:`\alpha` (finite).
        seeds (sequence of int, optional): (default: ``(0, 1, 2)``)
        hidden_channels, out_channels, num_layers (int, optional): Encoder shape.
            (defaults: ``32``, ``16``, ``2``)
        epochs (int, optional): Training epochs. (default: ``200``)
        lr (float, optional): Adam's learning rate. (default: ``0.01``)
        weight_decay (float, optional): (default: ``0.0``)
        num_val, num_test (float, optional): Held-out shares of the edges.
            (defaults: ``0.05``, ``0.1``)
        degree_bins (sequence of int, optional): See :func:`edge_probability_bias`.

    Returns:
        DataFrame, one row per (slope, seed, pairs, bucket): ``negative_slope``,
        ``seed``, ``pairs``, the columns of :func:`edge_probability_bias`, and the
        run's ``status`` (of :func:`~gnnleaky.train.fit`), ``best_epoch``,
        ``test_auc`` and ``test_ap`` (held-out ROC-AUC and average precision).

    Example:
        >>> from gnnleaky.datasets import load
        >>> data = load("csbm", num_nodes=60, avg_degree=6, seed=0)
        >>> df = gae_bias(data, [0.2], seeds=[0], epochs=3, degree_bins=[0, 6])
        >>> df.groupby("pairs").num_pairs.sum().to_dict()
        {'all': 3540, 'heldout': 72}
    """
    import torch_geometric.transforms as T
    from torch_geometric.nn import GAE

    from gnnleaky.nn import GCN
    from gnnleaky.train import fit

    for key in ("x", "edge_index"):
        if getattr(data, key, None) is None:
            raise ValueError(f"data must have '{key}' (a PyG Data)")
    slopes_ = [_slope(a) for a in negative_slopes]
    if not slopes_:
        raise ValueError("negative_slopes must hold at least one slope")
    seeds_ = list(seeds)
    if not seeds_ or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds_):
        raise ValueError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    for name, share in (("num_val", num_val), ("num_test", num_test)):
        v = check_finite(name, share, minimum=0.0)
        if not 0 < v < 1:
            raise ValueError(f"{name} must be a share in (0, 1), got {share!r}")
    if num_val + num_test >= 1:
        raise ValueError(f"num_val + num_test must be < 1, got {num_val} + {num_test}")
    bins = _degree_bins(degree_bins)
    for name, value in (
        ("hidden_channels", hidden_channels),
        ("out_channels", out_channels),
        ("num_layers", num_layers),
        ("epochs", epochs),
    ):
        check_positive_int(name, value)
    from gnnleaky._validation import check_graph

    x = data.x if data.x.is_floating_point() else data.x.float()
    check_graph(x, data.edge_index)
    base = type(data)(x=x, edge_index=_simple_undirected(data.edge_index, x.size(0)))
    split = T.RandomLinkSplit(
        num_val=num_val,
        num_test=num_test,
        is_undirected=True,
        add_negative_train_samples=False,
        split_labels=True,
    )
    frames = []
    for seed in seeds_:
        for a in slopes_:
            with _seeded_all(seed):
                train, val, test = split(base)
                encoder = GCN(
                    x.size(1),
                    hidden_channels,
                    num_layers,
                    out_channels,
                    act="leaky_relu",
                    act_kwargs={"negative_slope": a},
                )
                model = GAE(encoder)
                [rec] = fit(
                    model,
                    _LinkReconstruction(train, val),
                    epochs=epochs,
                    lr=lr,
                    weight_decay=weight_decay,
                )
            with torch.no_grad():
                z = model.encode(train.x, train.edge_index)
                auc, ap = model.test(z, test.pos_edge_label_index, test.neg_edge_label_index)
                for pairs in _PAIRS:
                    frame = edge_probability_bias(
                        z,
                        base.edge_index,
                        pairs=pairs,
                        pos_edge_index=test.pos_edge_label_index,
                        neg_edge_index=test.neg_edge_label_index,
                        degree_bins=bins,
                    )
                    frame.insert(0, "pairs", pairs)
                    frame.insert(0, "seed", seed)
                    frame.insert(0, "negative_slope", a)
                    frame["status"] = rec.status
                    frame["best_epoch"] = rec.best_epoch
                    frame["test_auc"] = float(auc)
                    frame["test_ap"] = float(ap)
                    frames.append(frame)
    return pd.concat(frames, ignore_index=True)
