import math

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.stats
from scipy.special import ndtr

from gnnleaky.analysis import (
    Gaussian,
    LeakyAutoencoder1d,
    ShiftedExponential,
    StudentT,
    monte_carlo_bias,
    optimal_alpha,
    optimal_gain,
    partial_moments,
    reconstruction_bias,
    reconstruction_mse,
    reconstruction_table,
    train_toy_autoencoder,
)

DISTRIBUTIONS = [
    Gaussian(0.0, 1.0),
    Gaussian(1.0, 1.0),
    Gaussian(-0.7, 2.5),
    ShiftedExponential(rate=1.0, shift=-0.5),
    ShiftedExponential(rate=2.0, shift=-0.2),
    ShiftedExponential(rate=1.0, shift=0.3),
    StudentT(df=5.0, loc=0.5, scale=1.5),
    StudentT(df=3.0),
]


def _scipy(d):
    if isinstance(d, Gaussian):
        return scipy.stats.norm(d.mean, d.std)
    if isinstance(d, ShiftedExponential):
        return scipy.stats.expon(loc=d.shift, scale=1 / d.rate)
    return scipy.stats.t(d.df, d.loc, d.scale)


@pytest.mark.parametrize("d", DISTRIBUTIONS, ids=repr)
def test_partial_moments_match_numerical_integration(d):
    pm = partial_moments(d)
    dist = _scipy(d)
    lo = dist.support()[0]
    for k, value in ((1, pm.neg_mean), (2, pm.neg_square)):
        ref = (
            scipy.integrate.quad(lambda x, k=k: x**k * dist.pdf(x), lo, 0, epsabs=1e-13)[0]
            if lo < 0
            else 0.0
        )
        assert value == pytest.approx(ref, abs=1e-11)
    assert pm.mean == pytest.approx(dist.mean(), abs=1e-12)
    assert pm.second_moment == pytest.approx(dist.var() + dist.mean() ** 2, abs=1e-12)
    assert pm.neg_mean <= 0 <= pm.pos_mean and pm.neg_square >= 0 and pm.pos_square >= 0


def test_gaussian_partial_expectation_closed_form():
    mu, sd = 0.4, 1.7
    pm = partial_moments(Gaussian(mu, sd))
    phi = math.exp(-0.5 * (mu / sd) ** 2) / math.sqrt(2 * math.pi)
    assert pm.neg_mean == pytest.approx(mu * ndtr(-mu / sd) - sd * phi, rel=1e-15)


@pytest.mark.parametrize("d", DISTRIBUTIONS, ids=repr)
@pytest.mark.parametrize("alpha", [0.0, 0.01, 0.3, 1.0, 2.0])
def test_identity_weight_bias_is_one_minus_alpha_times_negative_part(d, alpha):
    pm = partial_moments(d)
    got = reconstruction_bias(alpha, d, gain=1.0)
    assert got == pytest.approx((1 - alpha) * pm.neg_mean, abs=1e-14)


@pytest.mark.parametrize("d", DISTRIBUTIONS, ids=repr)
def test_learned_gain_bias_factorizes_without_weight_decay(d):
    pm = partial_moments(d)
    mp, mn, sp, sn = pm.pos_mean, pm.neg_mean, pm.pos_square, pm.neg_square
    for alpha in (-0.5, 0.0, 0.2, 0.7, 1.0, 1.5):
        expected = (1 - alpha) * (sp * mn - alpha * sn * mp) / (sp + alpha**2 * sn)
        assert reconstruction_bias(alpha, d) == pytest.approx(expected, abs=1e-13)
    assert reconstruction_bias(1.0, d) == pytest.approx(0.0, abs=1e-14)
    if sn > 0:  # the other unbiased slope is negative
        root = sp * mn / (sn * mp)
        assert root < 0
        assert reconstruction_bias(root, d) == pytest.approx(0.0, abs=1e-12)


def test_mean_zero_gaussian_learned_gain_bias():
    d = Gaussian(0.0, 2.0)
    m = -2.0 / math.sqrt(2 * math.pi)
    for alpha in np.linspace(0, 1, 11):
        expected = m * (1 - alpha**2) / (1 + alpha**2)
        assert reconstruction_bias(alpha, d) == pytest.approx(expected, abs=1e-14)


def test_gain_and_mse_are_the_least_squares_optimum():
    d = ShiftedExponential(rate=1.5, shift=-0.4)
    for lam in (0.0, 0.3):
        for alpha in (0.0, 0.25, 0.8):
            w = optimal_gain(alpha, d, weight_decay=lam)

            def loss(v, alpha=alpha, lam=lam):
                return reconstruction_mse(alpha, d, gain=v) + lam * v * v

            res = scipy.optimize.minimize_scalar(loss, bracket=(0.0, 2.0), tol=1e-12)
            assert w == pytest.approx(res.x, abs=1e-7)
            assert reconstruction_mse(alpha, d, weight_decay=lam) == pytest.approx(
                reconstruction_mse(alpha, d, gain=w), abs=1e-15
            )


@pytest.mark.parametrize(
    "d", [Gaussian(1.0, 1.0), Gaussian(0.5, 1.0), ShiftedExponential(1.0, -0.5)], ids=repr
)
@pytest.mark.parametrize("lam", [0.01, 0.05])
def test_optimal_alpha_is_the_interior_root_with_weight_decay(d, lam):
    def bias(a):
        return reconstruction_bias(a, d, weight_decay=lam)

    assert bias(0.0) < 0 < bias(1.0)
    a = optimal_alpha(d, weight_decay=lam)
    assert 0 < a < 1
    assert abs(bias(a)) <= 1e-13
    assert a == pytest.approx(scipy.optimize.brentq(bias, 0.0, 1.0, xtol=1e-14), abs=1e-10)
    # the quadratic's root in closed form
    pm = partial_moments(d)
    c2 = pm.neg_square * pm.pos_mean
    c1 = -(pm.pos_square * pm.neg_mean + pm.neg_square * pm.pos_mean)
    c0 = pm.pos_square * pm.neg_mean + pm.mean * lam
    assert a == pytest.approx((-c1 + math.sqrt(c1 * c1 - 4 * c2 * c0)) / (2 * c2), abs=1e-12)


def test_optimal_alpha_special_cases():
    d = Gaussian(1.0, 1.0)
    assert optimal_alpha(d) == 1.0  # without weight decay only alpha = 1 is unbiased
    assert optimal_alpha(d, gain=1.0) == 1.0
    # strong weight decay: shrinkage wins at every slope, |B| is smallest at alpha = 0
    pm = partial_moments(d)
    lam = 2 * (-pm.pos_square * pm.neg_mean / pm.mean)
    assert all(reconstruction_bias(a, d, weight_decay=lam) > 0 for a in np.linspace(0, 1, 21))
    assert optimal_alpha(d, weight_decay=lam) == 0.0
    # no negative mass: the slope does not matter, ties go to the largest
    assert optimal_alpha(ShiftedExponential(1.0, 0.2), weight_decay=0.1) == 1.0
    # a fixed gain above 1 inflates the mean; a slope above 1 deflates it back
    a = optimal_alpha(d, gain=1.1, bounds=(0.0, 5.0))
    assert a > 1 and abs(reconstruction_bias(a, d, gain=1.1)) < 1e-14
    # MSE: the identity reconstructs exactly
    assert optimal_alpha(Gaussian(0.3, 1.0), objective="mse") == 1.0


@pytest.mark.parametrize(
    ("d", "alpha", "lam", "gain"),
    [
        (Gaussian(0.0, 1.0), 0.0, 0.0, 1.0),
        (Gaussian(0.0, 1.0), 0.3, 0.0, None),
        (Gaussian(1.0, 1.0), 0.1, 0.1, None),
        (Gaussian(-0.7, 2.5), 0.5, 0.0, None),
        (ShiftedExponential(1.0, -0.5), 0.0, 0.0, 1.0),
        (ShiftedExponential(1.0, -0.5), 0.2, 0.05, None),
        (ShiftedExponential(2.0, -0.2), 0.5, 0.0, None),
        (StudentT(6.0, 0.5, 1.5), 0.1, 0.0, None),
    ],
    ids=repr,
)
def test_closed_form_matches_monte_carlo(d, alpha, lam, gain):
    mc = monte_carlo_bias(alpha, d, weight_decay=lam, gain=gain, num_samples=1_000_000, seed=0)
    cf = reconstruction_bias(alpha, d, weight_decay=lam, gain=gain)
    assert 0 < mc.stderr < 2e-3
    assert abs(mc.bias - cf) <= 4 * mc.stderr
    w = optimal_gain(alpha, d, weight_decay=lam) if gain is None else gain
    assert mc.gain == pytest.approx(w, abs=1e-2)


def test_monte_carlo_standard_error_is_calibrated():
    d = ShiftedExponential(1.0, -0.5)
    runs = [
        monte_carlo_bias(0.2, d, weight_decay=0.05, num_samples=5_000, seed=s) for s in range(60)
    ]
    spread = np.std([r.bias for r in runs], ddof=1)
    stated = np.mean([r.stderr for r in runs])
    assert spread == pytest.approx(stated, rel=0.3)
    again = monte_carlo_bias(0.2, d, weight_decay=0.05, num_samples=5_000, seed=0)
    assert again == runs[0]  # seeded


@pytest.mark.parametrize(
    "d", [Gaussian(0.0, 1.0), Gaussian(1.0, 1.5), ShiftedExponential(1.0, -0.5)], ids=repr
)
@pytest.mark.parametrize(("alpha", "lam"), [(0.0, 0.0), (0.3, 0.0), (0.1, 0.1)])
def test_trained_toy_model_matches_closed_form(d, alpha, lam):
    fit = train_toy_autoencoder(alpha, d, weight_decay=lam)
    assert fit.gain == pytest.approx(optimal_gain(alpha, d, weight_decay=lam), abs=1e-3)
    assert fit.bias == pytest.approx(reconstruction_bias(alpha, d, weight_decay=lam), abs=1e-3)
    assert fit.mse == pytest.approx(reconstruction_mse(alpha, d, weight_decay=lam), abs=1e-3)
    assert float(fit.model.gain.detach()) == fit.gain


def test_trained_toy_model_at_the_unbiased_slope():
    d = ShiftedExponential(1.0, -0.5)
    a = optimal_alpha(d, weight_decay=0.05)
    fit = train_toy_autoencoder(a, d, weight_decay=0.05, num_samples=200_000)
    assert abs(fit.bias) < 1e-3
    rand = train_toy_autoencoder(a, d, weight_decay=0.05, sampling="random", seed=1)
    assert abs(rand.bias) < 1e-2


def test_reconstruction_table_and_model():
    d = Gaussian(0.0, 1.0)
    df = reconstruction_table(d, [0.0, 0.5, 1.0])
    assert list(df.columns) == ["negative_slope", "gain", "bias", "mse"]
    assert df.bias.iloc[-1] == pytest.approx(0.0, abs=1e-15)
    assert df.bias.is_monotonic_increasing and df.mse.is_monotonic_decreasing
    model = LeakyAutoencoder1d(0.2)
    assert "negative_slope=0.2" in repr(model)


def test_input_errors():
    d = Gaussian(0.0, 1.0)
    for bad in (float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="negative_slope must be a finite float"):
            reconstruction_bias(bad, d)
    with pytest.raises(ValueError, match=r"Gaussian\.std must be a finite float > 0"):
        Gaussian(0.0, 0.0)
    with pytest.raises(ValueError, match=r"Gaussian\.mean"):
        Gaussian(float("nan"), 1.0)
    with pytest.raises(ValueError, match=r"ShiftedExponential\.rate"):
        ShiftedExponential(rate=-1.0)
    with pytest.raises(ValueError, match=r"StudentT\.df"):
        StudentT(df=0.0)
    cauchy = StudentT(df=1.0)
    for fn in (reconstruction_bias, monte_carlo_bias, train_toy_autoencoder):
        with pytest.raises(ValueError, match=r"StudentT\(df=1.0.*has no finite mean"):
            fn(0.1, cauchy)
    with pytest.raises(ValueError, match="no finite mean"):
        optimal_alpha(cauchy)
    with pytest.raises(ValueError, match="no finite second moment"):
        reconstruction_bias(0.1, StudentT(df=1.5))  # learned gain needs E[x^2]
    assert math.isfinite(reconstruction_bias(0.1, StudentT(df=1.5), gain=1.0))
    with pytest.raises(ValueError, match="distribution must be one of"):
        reconstruction_bias(0.1, "gaussian")
    with pytest.raises(ValueError, match="weight_decay"):
        reconstruction_bias(0.1, d, weight_decay=-0.1)
    with pytest.raises(ValueError, match="gain"):
        reconstruction_bias(0.1, d, gain=float("nan"))
    with pytest.raises(ValueError, match="num_samples"):
        monte_carlo_bias(0.1, d, num_samples=1)
    with pytest.raises(ValueError, match="seed"):
        monte_carlo_bias(0.1, d, seed=1.5)
    with pytest.raises(ValueError, match="objective must be one of"):
        optimal_alpha(d, objective="variance")
    with pytest.raises(ValueError, match="bounds"):
        optimal_alpha(d, bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match="sampling must be one of"):
        train_toy_autoencoder(0.1, d, sampling="sobol")
    with pytest.raises(ValueError, match="lr"):
        train_toy_autoencoder(0.1, d, lr=0.0)
    with pytest.raises(ValueError, match="the learned gain is undefined"):
        optimal_gain(0.0, Gaussian(-40.0, 1.0))  # phi(x) = 0 to double precision
