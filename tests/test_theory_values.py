"""Checks of collapse_jax.theory on its own, without the simulator.

Three kinds of check:
- the special functions against scipy (a test-only dependency);
- the tables of THEORY.md and limiting cases between regimes (exact or to rounding);
- independent numpy Monte Carlo (numpy's Generator, fixed seeds, raw samples rather than
  the sufficient-statistic shortcuts) against the closed forms, with
  |mean - theory| <= z * se, se from the per-chain sample sd and z set by a family-wise
  false-alarm rate of 1e-4 per test, Bonferroni-corrected over the checks of that test.

Generation g is fit t = g + 1 throughout (THEORY.md section 0).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats

import collapse_jax.theory as th
from collapse_jax.theory._special import digamma, normal_cdf, trigamma

FAMILY_WISE_RATE = 1e-4
CHAINS = 200_000
SEED_REPLACE = 11
SEED_MULTIVARIATE = 12
SEED_ACCUMULATE = 13
SEED_FRESHMIX = 14
SEED_RETAIN = 15
SEED_WEIGHTED = 16
SEED_COLLAPSE = 17

# --------------------------------------------------------------------------------------
# Monte Carlo helper: every statistical check goes through these two functions
# --------------------------------------------------------------------------------------

Check = tuple[str, np.ndarray, np.ndarray]  # (label, per-chain values (chains, k), expected (k,))


def _mc_failures(checks: list[Check], rate: float = FAMILY_WISE_RATE) -> list[str]:
    """Failed checks |mean - expected| > z * se; z Bonferroni-corrected over all."""
    n_checks = sum(np.asarray(expected).size for _, _, expected in checks)
    z = NormalDist().inv_cdf(1.0 - rate / (2.0 * n_checks))
    failures = []
    for label, values, expected in checks:
        values = np.asarray(values, dtype=np.float64).reshape(values.shape[0], -1)
        expected = np.asarray(expected, dtype=np.float64).reshape(-1)
        mean = values.mean(axis=0)
        se = values.std(axis=0, ddof=1) / math.sqrt(values.shape[0])
        for k in np.flatnonzero(np.abs(mean - expected) > z * se):
            failures.append(
                f"{label}[{k}]: mc {mean[k]:.6g} vs theory {expected[k]:.6g}, "
                f"|diff| = {abs(mean[k] - expected[k]) / se[k]:.2f} se > z = {z:.2f}"
            )
    return failures


def _assert_mc(checks: list[Check]) -> None:
    failures = _mc_failures(checks)
    assert not failures, "\n".join(failures)


def _fit_1d(x, delta):
    """Per-chain mean and variance (divisor n - delta) of x, shape (chains, n)."""
    mu = x.mean(axis=1)
    return mu, ((x - mu[:, None]) ** 2).sum(axis=1) / (x.shape[1] - delta)


def _replace_chain(rng, n, gens, delta, var0, chains=CHAINS):
    """1-D Replace chain from raw samples: (mu, var), each (chains, gens + 1)."""
    mu, var = _fit_1d(math.sqrt(var0) * rng.standard_normal((chains, n)), delta)
    mus, variances = [mu], [var]
    for _ in range(gens):
        x = mu[:, None] + np.sqrt(var)[:, None] * rng.standard_normal((chains, n))
        mu, var = _fit_1d(x, delta)
        mus.append(mu)
        variances.append(var)
    return np.stack(mus, axis=1), np.stack(variances, axis=1)


# --------------------------------------------------------------------------------------
# Special functions
# --------------------------------------------------------------------------------------

_X = np.concatenate([np.logspace(-8, 10, 4001), np.arange(1, 401) / 2.0, [1.4616321449683622]])


def test_digamma_matches_scipy():
    ours = digamma(_X)
    ref = scipy.special.digamma(_X)
    # relative accuracy, absolute near the root of psi at x = 1.46163...
    assert np.all(np.abs(ours - ref) <= 1e-14 * np.maximum(np.abs(ref), 1.0))
    away = np.abs(ref) > 0.1
    assert np.all(np.abs(ours - ref)[away] <= 1e-14 * np.abs(ref[away]))
    assert digamma(1.0) == pytest.approx(-np.euler_gamma, rel=1e-15)
    assert digamma(0.5) == pytest.approx(-np.euler_gamma - 2.0 * math.log(2.0), rel=1e-15)


def test_trigamma_matches_scipy():
    ours = trigamma(_X)
    ref = scipy.special.polygamma(1, _X)
    assert np.all(np.abs(ours - ref) <= 1e-14 * ref)
    assert trigamma(1.0) == pytest.approx(math.pi**2 / 6.0, rel=1e-15)
    assert trigamma(0.5) == pytest.approx(math.pi**2 / 2.0, rel=1e-15)


def test_special_functions_keep_shape_and_type():
    x = np.array([[0.5, 3.0], [12.0, 1e4]])
    assert digamma(x).shape == (2, 2) and trigamma(x).shape == (2, 2)
    assert isinstance(digamma(2.0), float) and isinstance(trigamma(np.float64(2.0)), float)
    assert isinstance(normal_cdf(0.3), float)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, [1.0, -2.0]])
def test_polygamma_reject_non_positive(bad):
    with pytest.raises(ValueError, match="x must be > 0"):
        digamma(bad)
    with pytest.raises(ValueError, match="x must be > 0"):
        trigamma(bad)


def test_normal_cdf_matches_scipy():
    x = np.linspace(-37.0, 8.0, 2001)
    # rtol covers the rounding of -x/sqrt(2), amplified by x^2 in the far lower tail
    assert np.allclose(normal_cdf(x), scipy.stats.norm.cdf(x), rtol=5e-13, atol=0.0)
    assert normal_cdf(0.0) == 0.5
    assert normal_cdf(-np.inf) == 0.0 and normal_cdf(np.inf) == 1.0


# --------------------------------------------------------------------------------------
# THEORY.md tables
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "unbiased", "mle", "tol"),
    [
        (10, -0.11521, -0.22057, 5e-6),
        (100, -0.010135, -0.020185, 5e-7),
        (1000, -0.001001, -0.002002, 5e-7),
    ],
)
def test_drift_table(n, unbiased, mle, tol):
    assert abs(th.log_variance_drift(n, "unbiased") - unbiased) <= tol
    assert abs(th.log_variance_drift(n, "mle") - mle) <= tol


@pytest.mark.parametrize(("n", "value"), [(10, 0.24873), (100, 0.020407)])
def test_trigamma_table(n, value):
    assert th.log_variance_var(0, n) == pytest.approx(value, abs=5e-6 if n == 10 else 5e-7)
    assert th.log_variance_var(9, n) == pytest.approx(10 * value, abs=5e-5 if n == 10 else 5e-6)


@pytest.mark.parametrize(("n", "unbiased", "mle"), [(10, 0.97266, 0.92275), (100, 0.997478, 0.992478)])
def test_sd_factor_table(n, unbiased, mle):
    tol = 5e-6 if n == 10 else 5e-7
    assert abs(th.sd_factor(n, "unbiased") - unbiased) <= tol
    assert abs(th.sd_factor(n, "mle") - mle) <= tol


def test_sd_factor_notebook_values():
    # THEORY section 1, cell 10 of the Shumailov notebook: sqrt(2/n) Gamma(n/2) / Gamma((n-1)/2).
    # n = 1000 gives 0.999250, printed as 0.9993: half a unit of the 4th digit + slack.
    expected = {10: 0.9227, 30: 0.9748, 100: 0.9925, 500: 0.9985, 1000: 0.9993}
    for n, value in expected.items():
        assert abs(th.sd_factor(n, "mle") - value) <= 5.1e-5


GOLDEN_TABLE = [
    # k, w*, naive w = k/(1+k), n Var / sigma^2 at naive w
    (0.25, 0.3904, 0.2000, 0.5556),
    (0.5, 0.5000, 0.3333, 0.6000),
    (1.0, 0.6180, 0.5000, 0.6667),
    (2.0, 0.7321, 0.6667, 0.7500),
    (4.0, 0.8284, 0.8000, 0.8333),
]


@pytest.mark.parametrize(("k", "w_star", "naive_w", "naive_value"), GOLDEN_TABLE)
def test_golden_ratio_table(k, w_star, naive_w, naive_value):
    n, var0 = 100, 1.0  # n/k is an integer for every k in the table
    assert abs(th.optimal_real_weight(k) - w_star) <= 5e-5
    assert abs(k / (1 + k) - naive_w) <= 5e-5
    naive = n * th.weighted_steady_state(n, k / (1 + k), k, var0) / var0
    assert abs(naive - naive_value) <= 5e-5
    # the minimum value is n Var* / sigma^2 = w*, and it is a minimum over w
    w_opt = th.optimal_real_weight(k)
    assert n * th.weighted_steady_state(n, w_opt, k, var0) == pytest.approx(w_opt, rel=1e-12)
    grid = np.linspace(0.01, 1.0, 991)
    values = [th.weighted_steady_state(n, w, k, var0) for w in grid]
    assert min(values) >= th.weighted_steady_state(n, w_opt, k, var0) * (1 - 1e-12)


def test_golden_ratio_at_equal_sizes():
    assert th.optimal_real_weight(1.0) == pytest.approx(2.0 / (1.0 + math.sqrt(5.0)), rel=1e-15)
    k = np.array([0.01, 1.0, 1e6])
    w = th.optimal_real_weight(k)
    assert np.allclose(w * w, k * (1.0 - w), rtol=1e-12)


@pytest.mark.parametrize(("lam", "value"), [(0.1, 5.263), (0.25, 2.286), (0.5, 1.333), (0.9, 1.010)])
def test_freshmix_table(lam, value):
    n, var0 = 100, 3.0
    assert abs(n * th.freshmix_steady_state(n, lam, var0) / var0 - value) <= 5e-4


def test_det_ratio_table_and_logdet():
    n, d = 100, 10
    det_ratio = math.prod((n - i) / n for i in range(1, d + 1))  # E[det ratio] per MLE fit
    assert abs(det_ratio - 0.565341) <= 5e-7
    # Jensen: E[log det ratio] < log E[det ratio]; the gap is half the log det variance
    # to leading order.
    drift = th.logdet_drift(n, d, "mle")
    assert drift < math.log(det_ratio)
    gap = math.log(det_ratio) - drift
    assert gap == pytest.approx(th.logdet_ratio_var(0, n, d) / 2.0, rel=0.05)


# --------------------------------------------------------------------------------------
# Exact identities and limiting cases
# --------------------------------------------------------------------------------------

G = np.arange(0, 60)
ESTIMATORS = [("mle", 0), ("unbiased", 1)]


@pytest.mark.parametrize(("estimator", "delta"), ESTIMATORS)
def test_replace_closed_forms(estimator, delta):
    n, var0 = 12, 2.5
    t = G + 1.0
    r = (n - 1) / (n - delta)
    assert np.allclose(th.variance_mean(G, n, estimator, var0), var0 * r**t, rtol=1e-13)
    assert np.allclose(th.trace_ratio_mean(G, n, estimator), r**t, rtol=1e-13)
    mse = th.mean_sq_error_replace(G, n, estimator, var0)
    expected = t * var0 / n if delta == 1 else var0 * (1.0 - ((n - 1) / n) ** t)
    assert np.allclose(mse, expected, rtol=1e-13)
    c = th.sd_factor(n, estimator)
    assert np.allclose(th.sd_mean(G, n, estimator, var0), math.sqrt(var0) * c**t, rtol=1e-13)
    drift = scipy.special.digamma((n - 1) / 2) + math.log(2 / (n - delta))
    assert np.allclose(th.log_variance_mean(G, n, estimator, var0), math.log(var0) + t * drift)
    w2 = th.w2_sq_mean(G, n, estimator, var0)
    if delta == 1:
        assert np.allclose(w2, t * var0 / n + 2 * var0 * (1 - c**t), rtol=1e-12)
    assert np.all(w2 > 0)
    # d = 1 multivariate forms reduce to the 1-D ones
    assert th.logdet_drift(n, 1, estimator) == pytest.approx(th.log_variance_drift(n, estimator))
    assert np.allclose(th.logdet_ratio_var(G, n, 1), th.log_variance_var(G, n))


@pytest.mark.parametrize(("estimator", "delta"), ESTIMATORS)
def test_variance_relative_var(estimator, delta):
    n = 9
    per_fit = (n - 1) * (n + 1) / (n - delta) ** 2 / ((n - 1) / (n - delta)) ** 2
    expected = per_fit ** (G + 1.0) - 1.0
    assert np.allclose(th.variance_relative_var(G, n, estimator), expected, rtol=1e-12)
    assert th.variance_relative_var(0, n, estimator) == pytest.approx(2.0 / (n - 1))


def test_known_variance_mean_error_is_estimator_free():
    n, var0, dim = 15, 0.7, 3
    for estimator, _ in ESTIMATORS:
        known = th.mean_sq_error_replace(G, n, estimator, var0, learn_cov=False, dim=dim)
        assert np.allclose(known, dim * var0 * (G + 1.0) / n, rtol=1e-13)


@pytest.mark.parametrize(("estimator", "delta"), ESTIMATORS)
def test_accumulate_closed_forms(estimator, delta):
    n, var0, dim = 16, 1.5, 2
    t = G + 1.0
    basel = np.cumsum(1.0 / t**2)
    known = th.mean_sq_error_accumulate(G, n, estimator, var0, learn_cov=False, dim=dim)
    assert np.allclose(known, dim * var0 / n * basel, rtol=1e-13)
    assert np.all(known < dim * var0 / n * math.pi**2 / 6)
    v = th.variance_mean_accumulate(G, n, estimator, var0)
    # generation 0 is the same fit to real data as in Replace
    assert v[0] == pytest.approx(th.variance_mean(0, n, estimator, var0), rel=1e-14)
    learned = th.mean_sq_error_accumulate(G, n, estimator, var0, learn_cov=True, dim=dim)
    assert learned[0] == pytest.approx(dim * var0 / n, rel=1e-14)
    v_prev = np.concatenate(([var0], v[:-1]))
    assert np.allclose(learned, dim / n * np.cumsum(v_prev / t**2), rtol=1e-13)
    if delta == 0:
        x = math.pi / math.sqrt(n)
        assert th.variance_mean_accumulate(10**6, n, estimator, var0) == pytest.approx(var0 * math.sin(x) / x, rel=1e-5)


@pytest.mark.parametrize("learn_cov", [True, False])
@pytest.mark.parametrize(("estimator", "delta"), ESTIMATORS)
def test_freshmix_limits(estimator, delta, learn_cov):
    n, var0 = 20, 1.7
    e2, v = th.freshmix_moments(G, n, 0.0, estimator, var0, learn_cov=learn_cov)
    replace = th.mean_sq_error_replace(G, n, estimator, var0, learn_cov=learn_cov)
    assert np.allclose(e2, replace, rtol=1e-12)
    expected_v = th.variance_mean(G, n, estimator, var0) if learn_cov else var0
    assert np.allclose(v, expected_v, rtol=1e-12)
    e2, v = th.freshmix_moments(G, n, 1.0, estimator, var0, learn_cov=learn_cov)
    assert np.allclose(e2, var0 / n, rtol=1e-13)
    assert np.allclose(v, var0 * (n - 1) / (n - delta) if learn_cov else var0, rtol=1e-13)


def test_freshmix_known_variance_reaches_steady_state():
    n, var0 = 20, 1.3
    for lam in (0.05, 0.25, 0.6):
        e2, v = th.freshmix_moments(3000, n, lam, "mle", var0, learn_cov=False)
        assert e2 == pytest.approx(th.freshmix_steady_state(n, lam, var0), rel=1e-10)
        assert v == var0
    assert th.freshmix_steady_state(n, 0.0, var0) == math.inf


def test_freshmix_learned_mle_differs_from_known_variance():
    # THEORY section 12: about -8 % at n = 20, lam = 0.25 for a learned MLE variance
    e2, _ = th.freshmix_moments(3000, 20, 0.25, "mle")
    ratio = e2 / th.freshmix_steady_state(20, 0.25)
    assert 0.90 < ratio < 0.94


def test_retain_original_limits():
    n, var0 = 20, 0.8
    assert np.allclose(
        th.retain_original_mean_sq_error(G, n, 0.0, var0),
        th.mean_sq_error_replace(G, n, "mle", var0, learn_cov=False),
        rtol=1e-13,
    )
    assert np.allclose(th.retain_original_mean_sq_error(G, n, 1.0, var0), var0 / n, rtol=1e-13)
    for f in (0.05, 0.25, 0.5, 0.95):
        assert th.retain_original_mean_sq_error(0, n, f, var0) == pytest.approx(var0 / n)
        assert th.retain_original_mean_sq_error(5000, n, f, var0) == pytest.approx(
            th.retain_original_steady_state(n, f, var0), rel=1e-10
        )
    assert th.retain_original_steady_state(n, 0.0, var0) == math.inf


def test_retain_original_matches_its_recursion():
    n, var0, f = 20, 1.1, 0.3
    r = math.floor(f * n + 0.5)
    m, rho = n - r, (n - r) / n
    a_var, b_var, xi_var = var0 / r, var0 / m, var0 / m
    # track the coefficients of a and the variance from everything else
    coef_a, other = r / n, (m / n) ** 2 * b_var
    values = [coef_a**2 * a_var + other]
    for _ in range(1, G.size):
        coef_a, other = r / n + rho * coef_a, rho**2 * (other + xi_var)
        values.append(coef_a**2 * a_var + other)
    assert np.allclose(th.retain_original_mean_sq_error(G, n, f, var0), values, rtol=1e-12)


def test_weighted_limits():
    n, k, var0 = 20, 2.0, 1.4
    m = 10
    assert np.allclose(th.weighted_mean_sq_error(G, n, 1.0, k, var0), var0 / n, rtol=1e-13)
    assert np.allclose(
        th.weighted_mean_sq_error(G, n, 0.0, k, var0),
        var0 / n + G * var0 / m,
        rtol=1e-13,
    )
    for w in (0.2, 0.618, 0.9):
        assert th.weighted_mean_sq_error(4000, n, w, k, var0) == pytest.approx(
            th.weighted_steady_state(n, w, k, var0), rel=1e-10
        )


def test_counts_round_half_up():
    # the regimes round shares as r = floor(lam n + 1/2) and m = floor(n/k + 1/2); here all are x.5 cases.
    n, var0 = 10, 1.0
    for lam_rounded, lam_exact in [(0.25, 0.3), (0.05, 0.1)]:  # 2.5 -> 3, 0.5 -> 1
        assert np.array_equal(
            th.freshmix_moments(G, n, lam_rounded, "mle")[0],
            th.freshmix_moments(G, n, lam_exact, "mle")[0],
        )
        assert th.retain_original_mean_sq_error(7, n, lam_rounded) == (
            th.retain_original_mean_sq_error(7, n, lam_exact)
        )
    assert th.freshmix_steady_state(n, 0.25) == th.freshmix_steady_state(n, 0.3)
    # k = 4: n/k = 2.5 -> m = 3 synthetic points; w = 0 is Replace with m points
    expected = var0 / n + G * var0 / 3
    assert np.allclose(th.weighted_mean_sq_error(G, n, 0.0, 4.0, var0), expected)
    assert th.weighted_steady_state(n, 0.5, 4.0) == th.weighted_steady_state(n, 0.5, 10 / 3)


@pytest.mark.parametrize(("estimator", "delta"), ESTIMATORS)
def test_collapse_probability_normal_approximation(estimator, delta):
    n, var0, g = 10, 2.0, np.arange(0, 30)
    mean = th.log_variance_mean(g, n, estimator, var0)
    sd = np.sqrt(th.log_variance_var(g, n))
    for threshold in (0.1, 0.7, 1.5):
        p = th.collapse_probability(g, n, estimator, threshold, var0)
        z = (2.0 * math.log(threshold) - mean) / sd
        assert np.allclose(p, scipy.stats.norm.cdf(z), rtol=1e-12, atol=1e-300)
    median = math.exp(float(mean[7]) / 2.0)
    assert th.collapse_probability(7, n, estimator, median, var0) == pytest.approx(0.5)
    thresholds = np.linspace(0.1, 3.0, 50)
    p_by_threshold = [th.collapse_probability(7, n, estimator, c, var0) for c in thresholds]
    assert np.all(np.diff(p_by_threshold) > 0)


@pytest.mark.parametrize(("estimator", "delta"), ESTIMATORS)
@pytest.mark.parametrize("n", [3, 10, 1000])
def test_collapse_probability_exact_one_fit_is_the_chi_square_cdf(estimator, delta, n):
    # g = 0: sigma^2 = var0 chi^2_{n-1} / (n - delta) exactly
    for var0 in (1.0, 2.5):
        for threshold in (0.05, 0.3, 0.9, 1.0, 1.7):
            exact = th.collapse_probability(0, n, estimator, threshold, var0, method="exact")
            expected = scipy.stats.chi2.cdf(threshold**2 / var0 * (n - delta), n - 1)
            assert exact == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize(("estimator", "delta"), ESTIMATORS)
def test_collapse_probability_exact_two_fits_is_a_convolution(estimator, delta):
    # g = 1: P(Y1 + Y2 < u) = int f_Y(y) F_Y(u - y) dy, Y = log(chi^2_{n-1} / (n - delta))
    n, var0 = 6, 1.5
    k, c = n - 1, n - delta
    dens = lambda y: scipy.stats.chi2.pdf(c * np.exp(y), k) * c * np.exp(y)  # noqa: E731
    cdf = lambda y: scipy.stats.chi2.cdf(c * np.exp(y), k)  # noqa: E731
    for threshold in (0.2, 0.6, 1.0, 1.4):
        u = 2 * math.log(threshold) - math.log(var0)
        expected = scipy.integrate.quad(lambda y, u=u: dens(y) * cdf(u - y), -40, 10, limit=400, epsabs=1e-12)[0]
        exact = th.collapse_probability(1, n, estimator, threshold, var0, method="exact")
        assert exact == pytest.approx(expected, abs=1e-7)


def test_collapse_probability_exact_approaches_the_normal_law():
    # many fits: the central limit theorem makes the two methods agree in the bulk,
    # while at few fits and in the far left tail the exact law is heavier
    g = np.array([200, 400])
    exact = th.collapse_probability(g, 100, "mle", 0.5, method="exact")
    normal = th.collapse_probability(g, 100, "mle", 0.5)
    assert np.all(np.abs(exact - normal) < 5e-3) and np.all(np.diff(exact) > 0)
    tail_exact = th.collapse_probability(0, 10, "mle", 0.1, method="exact")
    assert tail_exact > 1e6 * th.collapse_probability(0, 10, "mle", 0.1)
    with pytest.raises(ValueError, match="method must be"):
        th.collapse_probability(0, 10, "mle", 0.1, method="saddlepoint")


# --------------------------------------------------------------------------------------
# Vectorisation, return types and argument checks
# --------------------------------------------------------------------------------------

G_FUNCTIONS = {
    "log_variance_mean": lambda g: th.log_variance_mean(g, 10, "mle", 2.0),
    "log_variance_var": lambda g: th.log_variance_var(g, 10),
    "sd_mean": lambda g: th.sd_mean(g, 10, "unbiased", 2.0),
    "variance_mean": lambda g: th.variance_mean(g, 10, "mle", 2.0),
    "variance_relative_var": lambda g: th.variance_relative_var(g, 10, "mle"),
    "mean_sq_error_replace": lambda g: th.mean_sq_error_replace(g, 10, "mle", 2.0, True, 3),
    "mean_sq_error_accumulate": lambda g: th.mean_sq_error_accumulate(g, 10, "unbiased", 2.0),
    "variance_mean_accumulate": lambda g: th.variance_mean_accumulate(g, 10, "mle", 2.0),
    "freshmix_e2": lambda g: th.freshmix_moments(g, 20, 0.25, "mle", 2.0)[0],
    "freshmix_var": lambda g: th.freshmix_moments(g, 20, 0.25, "unbiased", 2.0)[1],
    "retain_original": lambda g: th.retain_original_mean_sq_error(g, 20, 0.25, 2.0),
    "weighted": lambda g: th.weighted_mean_sq_error(g, 20, 0.6, 2.0, 2.0),
    "w2_sq_mean": lambda g: th.w2_sq_mean(g, 10, "mle", 2.0),
    "trace_ratio_mean": lambda g: th.trace_ratio_mean(g, 10, "mle"),
    "logdet_ratio_mean": lambda g: th.logdet_ratio_mean(g, 10, 3, "unbiased"),
    "logdet_ratio_var": lambda g: th.logdet_ratio_var(g, 10, 3),
    "collapse_probability": lambda g: th.collapse_probability(g, 10, "mle", 0.5, 2.0),
}


@pytest.mark.parametrize("name", sorted(G_FUNCTIONS))
def test_vectorised_over_generations(name):
    f = G_FUNCTIONS[name]
    g = np.array([[0, 3, 1], [7, 2, 0]])
    values = f(g)
    assert isinstance(values, np.ndarray) and values.shape == g.shape
    assert values.dtype == np.float64
    scalars = np.array([[f(int(x)) for x in row] for row in g])
    assert np.array_equal(values, scalars)
    assert isinstance(f(3), float) and isinstance(f(np.int64(3)), float)
    assert np.all(np.isfinite(values))


@pytest.mark.parametrize("name", sorted(G_FUNCTIONS))
@pytest.mark.parametrize("bad_g", [-1, 1.5, np.array([0, -2]), np.array([0.0, 1.0]), True])
def test_bad_generation_rejected(name, bad_g):
    with pytest.raises(ValueError, match="g must be"):
        G_FUNCTIONS[name](bad_g)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: th.log_variance_drift(1, "mle"), "n must be an integer >= 2"),
        (lambda: th.log_variance_drift(10.0, "mle"), "n must be an integer"),
        (lambda: th.sd_factor(10, "ddof1"), "estimator must be 'mle' or 'unbiased'"),
        (lambda: th.variance_mean(0, 10, "MLE"), "estimator must be"),
        (lambda: th.variance_mean(0, 10, "mle", var0=0.0), "var0 must be"),
        (lambda: th.variance_mean(0, 10, "mle", var0=math.nan), "var0 must be"),
        (
            lambda: th.mean_sq_error_replace(0, 10, "mle", dim=0),
            "dim must be an integer >= 1",
        ),
        (lambda: th.freshmix_moments(0, 10, 1.5, "mle"), "real_fraction must be"),
        (lambda: th.freshmix_moments(0, 10, -0.1, "mle"), "real_fraction must be"),
        (lambda: th.freshmix_steady_state(10, 2.0), "real_fraction must be"),
        (lambda: th.retain_original_mean_sq_error(0, 10, 1.01), "fraction must be"),
        (lambda: th.retain_original_steady_state(1, 0.5), "n must be"),
        (lambda: th.weighted_mean_sq_error(0, 10, 1.2, 1.0), "real_weight must be"),
        (lambda: th.weighted_mean_sq_error(0, 10, 0.5, 0.0), "ratio must be"),
        (lambda: th.weighted_mean_sq_error(0, 10, 0.5, 100.0), "ratio must leave m"),
        (lambda: th.weighted_steady_state(10, 0.0, 1.0), "real_weight must be"),
        (lambda: th.optimal_real_weight(-1.0), "ratio must be"),
        (lambda: th.logdet_drift(3, 3, "mle"), "n must be >= dim \\+ 1"),
        (lambda: th.logdet_ratio_var(0, 10, 0), "dim must be"),
        (lambda: th.collapse_probability(0, 10, "mle", 0.0), "threshold must be"),
    ],
)
def test_bad_arguments_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------------------
# Independent numpy Monte Carlo
# --------------------------------------------------------------------------------------


def _replace_checks(rng, estimator, delta, var0=2.0, n=10, gens=4):
    mu, var = _replace_chain(rng, n, gens, delta, var0)
    g = np.arange(gens + 1)
    log_var_mean = th.log_variance_mean(g, n, estimator, var0)
    w2 = mu**2 + (np.sqrt(var) - math.sqrt(var0)) ** 2
    return [
        (f"{estimator} log variance", np.log(var), log_var_mean),
        # E[(X - E X)^2] = Var X when the theory mean is right
        (
            f"{estimator} var of log variance",
            (np.log(var) - log_var_mean) ** 2,
            th.log_variance_var(g, n),
        ),
        (f"{estimator} sd", np.sqrt(var), th.sd_mean(g, n, estimator, var0)),
        (f"{estimator} variance", var, th.variance_mean(g, n, estimator, var0)),
        (
            f"{estimator} mean error",
            mu**2,
            th.mean_sq_error_replace(g, n, estimator, var0),
        ),
        (f"{estimator} W2^2", w2, th.w2_sq_mean(g, n, estimator, var0)),
    ]


def test_mc_replace_1d():
    rng = np.random.default_rng(SEED_REPLACE)
    checks = []
    for estimator, delta in ESTIMATORS:
        checks += _replace_checks(rng, estimator, delta)
    _assert_mc(checks)


def test_mc_check_has_power_against_off_by_one():
    # The same harness must reject theory evaluated at g + 1 instead of g (fits vs generations).
    rng = np.random.default_rng(SEED_REPLACE)
    n, var0, gens = 10, 2.0, 4
    mu, var = _replace_chain(rng, n, gens, 0, var0)
    g = np.arange(gens + 1)
    assert not _mc_failures([("sd", np.sqrt(var), th.sd_mean(g, n, "mle", var0))])
    shifted = _mc_failures([("sd", np.sqrt(var), th.sd_mean(g + 1, n, "mle", var0))])
    assert len(shifted) == gens + 1
    shifted = _mc_failures([("mse", mu**2, th.mean_sq_error_replace(g + 1, n, "mle", var0))])
    assert len(shifted) == gens + 1


def test_mc_replace_multivariate():
    rng = np.random.default_rng(SEED_MULTIVARIATE)
    n, dim, gens, chains = 12, 3, 2, 100_000
    sigma0 = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 0.6]])
    var0 = np.trace(sigma0) / dim  # mean_sq_error_replace only needs tr Sigma_0 = dim * var0
    logdet0 = np.linalg.slogdet(sigma0)[1]
    g = np.arange(gens + 1)
    checks = []
    for estimator, delta in ESTIMATORS:
        mu = np.zeros((chains, dim))
        chol = np.broadcast_to(np.linalg.cholesky(sigma0), (chains, dim, dim))
        sq_err, tr_ratio, logdet_ratio = [], [], []
        for _ in g:
            z = rng.standard_normal((chains, n, dim))
            x = mu[:, None, :] + np.einsum("cij,cnj->cni", chol, z)
            mu = x.mean(axis=1)
            centred = x - mu[:, None, :]
            cov = np.einsum("cni,cnj->cij", centred, centred) / (n - delta)
            chol = np.linalg.cholesky(cov)
            sq_err.append((mu**2).sum(axis=1))
            tr_ratio.append(np.trace(cov, axis1=1, axis2=2) / np.trace(sigma0))
            logdet_ratio.append(np.linalg.slogdet(cov)[1] - logdet0)
        logdet_ratio = np.stack(logdet_ratio, axis=1)
        logdet_mean = th.logdet_ratio_mean(g, n, dim, estimator)
        det_factor = math.prod((n - i) / (n - delta) for i in range(1, dim + 1))
        checks += [
            (
                f"{estimator} mean error",
                np.stack(sq_err, axis=1),
                th.mean_sq_error_replace(g, n, estimator, var0, dim=dim),
            ),
            (
                f"{estimator} trace ratio",
                np.stack(tr_ratio, axis=1),
                th.trace_ratio_mean(g, n, estimator),
            ),
            (f"{estimator} log det ratio", logdet_ratio, logdet_mean),
            (
                f"{estimator} log det var",
                (logdet_ratio - logdet_mean) ** 2,
                th.logdet_ratio_var(g, n, dim),
            ),
            # THEORY section 11: E[det ratio] per fit = prod (n - i)/(n - delta)
            (f"{estimator} det ratio", np.exp(logdet_ratio), det_factor ** (g + 1.0)),
        ]
    _assert_mc(checks)


def test_mc_accumulate():
    rng = np.random.default_rng(SEED_ACCUMULATE)
    n, gens, var0 = 8, 3, 1.0
    g = np.arange(gens + 1)
    checks = []
    for estimator, delta, learn_cov in [
        ("mle", 0, True),
        ("unbiased", 1, True),
        ("mle", 0, False),
    ]:
        total, total_sq, count = np.zeros(CHAINS), np.zeros(CHAINS), 0
        mu, sd = np.zeros(CHAINS), np.full(CHAINS, math.sqrt(var0))
        sq_err, variances = [], []
        for _ in g:
            x = mu[:, None] + sd[:, None] * rng.standard_normal((CHAINS, n))
            total += x.sum(axis=1)
            total_sq += (x * x).sum(axis=1)
            count += n
            mu = total / count
            var = (total_sq - count * mu * mu) / (count - delta)
            if learn_cov:
                sd = np.sqrt(var)
            sq_err.append(mu**2)
            variances.append(var)
        label = f"{estimator} learn_cov={learn_cov}"
        mse = th.mean_sq_error_accumulate(g, n, estimator, var0, learn_cov=learn_cov)
        checks.append((f"{label} mean error", np.stack(sq_err, axis=1), mse))
        if learn_cov:
            v = th.variance_mean_accumulate(g, n, estimator, var0)
            checks.append((f"{label} variance", np.stack(variances, axis=1), v))
    _assert_mc(checks)


def test_mc_freshmix():
    rng = np.random.default_rng(SEED_FRESHMIX)
    n, lam, gens, var0 = 20, 0.25, 5, 1.0
    r = 5  # floor(0.25 * 20 + 1/2)
    g = np.arange(gens + 1)
    checks = []
    for estimator, delta, learn_cov in [
        ("mle", 0, True),
        ("unbiased", 1, True),
        ("mle", 0, False),
    ]:
        sd0 = math.sqrt(var0)
        mu, var = _fit_1d(sd0 * rng.standard_normal((CHAINS, n)), delta)
        sq_err, variances = [mu**2], [var]
        for _ in range(gens):
            sd = np.sqrt(var)[:, None] if learn_cov else sd0
            real = sd0 * rng.standard_normal((CHAINS, r))
            synth = mu[:, None] + sd * rng.standard_normal((CHAINS, n - r))
            mu, var = _fit_1d(np.concatenate([real, synth], axis=1), delta)
            sq_err.append(mu**2)
            variances.append(var)
        e2, v = th.freshmix_moments(g, n, lam, estimator, var0, learn_cov=learn_cov)
        label = f"{estimator} learn_cov={learn_cov}"
        checks.append((f"{label} mean error", np.stack(sq_err, axis=1), e2))
        if learn_cov:
            checks.append((f"{label} variance", np.stack(variances, axis=1), v))
    _assert_mc(checks)


@pytest.mark.parametrize("fraction", [0.25, 0.6])
def test_mc_retain_original(fraction):
    rng = np.random.default_rng([SEED_RETAIN, int(100 * fraction)])
    n, gens, var0 = 20, 5, 2.0
    r = math.floor(fraction * n + 0.5)
    sd0 = math.sqrt(var0)
    original = sd0 * rng.standard_normal((CHAINS, n))
    retained = original[:, :r]
    mu = original.mean(axis=1)
    sq_err = [mu**2]
    for _ in range(gens):
        synth = mu[:, None] + sd0 * rng.standard_normal((CHAINS, n - r))
        mu = (retained.sum(axis=1) + synth.sum(axis=1)) / n
        sq_err.append(mu**2)
    expected = th.retain_original_mean_sq_error(np.arange(gens + 1), n, fraction, var0)
    _assert_mc([("retain original mean error", np.stack(sq_err, axis=1), expected)])


def test_mc_weighted():
    rng = np.random.default_rng(SEED_WEIGHTED)
    n, k, w, gens, var0 = 20, 2.0, 0.6, 5, 1.5
    m = 10  # floor(20 / 2 + 1/2)
    sd0 = math.sqrt(var0)
    mu = (sd0 * rng.standard_normal((CHAINS, n))).mean(axis=1)
    sq_err = [mu**2]
    for _ in range(gens):
        real = sd0 * rng.standard_normal((CHAINS, n))
        synth = mu[:, None] + sd0 * rng.standard_normal((CHAINS, m))
        mu = w * real.mean(axis=1) + (1 - w) * synth.mean(axis=1)
        sq_err.append(mu**2)
    expected = th.weighted_mean_sq_error(np.arange(gens + 1), n, w, k, var0)
    _assert_mc([("weighted mean error", np.stack(sq_err, axis=1), expected)])


@pytest.mark.parametrize(("estimator", "delta"), ESTIMATORS)
def test_collapse_probability_close_to_exact_law(estimator, delta):
    # A normal approximation, so the check is a fixed tolerance, not a z-test: at n = 10, g = 19
    # its error is below 0.01 (THEORY section 12).
    rng = np.random.default_rng([SEED_COLLAPSE, delta])
    n, g, var0 = 10, 19, 1.0
    log_var = np.log(rng.chisquare(n - 1, size=(CHAINS, g + 1)) / (n - delta)).sum(axis=1)
    for threshold in (0.3, 0.5, 0.8):
        empirical = np.mean(log_var < 2.0 * math.log(threshold))
        approx = th.collapse_probability(g, n, estimator, threshold, var0)
        assert abs(empirical - approx) < 0.02


def test_accumulate_mix_limits_and_rates():
    g = np.arange(0, 30)
    n = 10
    # share 1: one growing real sample; share 0: Accumulate with known variance
    np.testing.assert_allclose(th.accumulate_mix_mean_sq_error(g, n, 1.0), 1.0 / ((g + 1) * n), rtol=1e-12)
    np.testing.assert_allclose(
        th.accumulate_mix_mean_sq_error(g, n, 0.0, var0=2.0),
        th.mean_sq_error_accumulate(g, n, "mle", var0=2.0, learn_cov=False),
        rtol=1e-12,
    )
    # the phase transition at share 1/2: slope -2 share below it, -1 above (log-log, large g)
    big = np.array([4000, 8000])
    for share, slope in ((0.2, -0.4), (0.3, -0.6), (0.8, -1.0)):
        x = th.accumulate_mix_mean_sq_error(big, n, share)
        assert abs(np.log2(x[1] / x[0]) - slope) < 0.01, share
    x = th.accumulate_mix_mean_sq_error(8000, n, 0.8)
    assert abs(x * (2 * 0.8 - 1) * n * 8000 - 1) < 0.01  # var0 / ((2a - 1) n g)
