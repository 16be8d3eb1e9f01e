"""Closed forms for the Replace chain: a Gaussian refitted on samples from its last fit only.

Every function takes the simulator's generation ``g`` (an int or an integer numpy array,
vectorised over ``g``): generation 0 is the fit to the n real samples, and generation g
has had t = g + 1 fits (THEORY.md section 0; the papers count fits t). Scalar ``g``
gives a Python float, an array ``g`` an array of the same shape. Everything is numpy
float64. The same conventions hold in `mixing` (regimes with real data or accumulation).

``estimator`` is ``"mle"`` (variance divides by n, delta = 0) or ``"unbiased"`` (divides
by n - 1, delta = 1), and r = (n - 1) / (n - delta) is the per-fit factor of the
expected variance. ``var0`` is the true variance sigma_0^2; in d dimensions
``Sigma_0 = var0 * I`` unless stated otherwise.

Sources (THEORY.md): section 1 (Shumailov et al., arXiv 2305.17493: Replace chain);
section 11 (multivariate facts); section 12 (collapse probability).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import (
    Estimator,
    FloatOrArray,
    _delta,
    _fits,
    _geometric_sum,
    _integer,
    _out,
    _positive,
    _ratio,
)
from ._special import digamma, log_gamma_ratio, normal_cdf, trigamma

__all__ = [
    "FloatOrArray",
    "collapse_probability",
    "log_variance_drift",
    "log_variance_mean",
    "log_variance_var",
    "logdet_drift",
    "logdet_ratio_mean",
    "logdet_ratio_var",
    "mean_sq_error_replace",
    "sd_factor",
    "sd_mean",
    "trace_ratio_mean",
    "variance_mean",
    "variance_relative_var",
    "w2_sq_mean",
]


# --------------------------------------------------------------------------------------
# Replace regime, 1-D: variance, log-variance, standard deviation (THEORY section 1)
# --------------------------------------------------------------------------------------


def log_variance_drift(n: int, estimator: Estimator) -> float:
    """Per-fit drift of E[log variance] in the Replace regime.

    drift = psi((n - 1)/2) + log(2 / (n - delta)),

    the mean of log(chi^2_{n-1} / (n - delta)). It is strictly negative for both
    estimators, so the variance collapses to 0 almost surely.

    Args:
        n: samples per generation, n >= 2.
        estimator: "mle" (delta = 0) or "unbiased" (delta = 1).

    Returns:
        The drift per fit (n = 10: -0.22057 MLE, -0.11521 unbiased).

    Source: THEORY.md section 1, item 3 (Shumailov et al., arXiv 2305.17493).
    """
    n = _integer(n, "n", 2)
    delta = _delta(estimator)
    return float(digamma((n - 1) / 2)) + math.log(2.0 / (n - delta))


def log_variance_mean(g: ArrayLike, n: int, estimator: Estimator, var0: float = 1.0) -> FloatOrArray:
    """E[log sigma^2_g] in the Replace regime.

    E[log sigma^2_g] = log var0 + (g + 1) * drift, with drift from `log_variance_drift`
    (generation g is fit t = g + 1).

    Args:
        g: generation(s), g >= 0.
        n: samples per generation, n >= 2.
        estimator: "mle" or "unbiased".
        var0: true variance sigma_0^2 > 0.

    Returns:
        E[log sigma^2_g], float or array shaped like `g`.

    Source: THEORY.md section 1, item 3 (Shumailov et al., arXiv 2305.17493).
    """
    t = _fits(g)
    var0 = _positive(var0, "var0")
    return _out(math.log(var0) + t * log_variance_drift(n, estimator))


def log_variance_var(g: ArrayLike, n: int) -> FloatOrArray:
    """Var[log sigma^2_g] in the Replace regime (either estimator).

    Var[log sigma^2_g] = (g + 1) * psi'((n - 1)/2),

    a sum of g + 1 i.i.d. log-chi^2_{n-1} terms.

    Args:
        g: generation(s), g >= 0.
        n: samples per generation, n >= 2.

    Returns:
        Var[log sigma^2_g], float or array shaped like `g`.

    Source: THEORY.md section 1, item 3 (Shumailov et al., arXiv 2305.17493).
    """
    t = _fits(g)
    n = _integer(n, "n", 2)
    return _out(t * float(trigamma((n - 1) / 2)))


def sd_factor(n: int, estimator: Estimator) -> float:
    """Per-fit factor c of E[sd] in the Replace regime.

    c = sqrt(2 / (n - delta)) * Gamma(n/2) / Gamma((n - 1)/2),

    which is E[sqrt(chi^2_{n-1} / (n - delta))]. For the MLE this is Bertrand et al.'s
    alpha(n) (THEORY section 4).

    Args:
        n: samples per generation, n >= 2.
        estimator: "mle" or "unbiased".

    Returns:
        c (n = 10: 0.92275 MLE, 0.97266 unbiased).

    Source: THEORY.md section 1, item 4 (Shumailov et al., arXiv 2305.17493).
    """
    n = _integer(n, "n", 2)
    delta = _delta(estimator)
    log_ratio = math.lgamma(n / 2) - math.lgamma((n - 1) / 2)
    return math.sqrt(2.0 / (n - delta)) * math.exp(log_ratio)


def sd_mean(g: ArrayLike, n: int, estimator: Estimator, var0: float = 1.0) -> FloatOrArray:
    """E[sigma_g] (the fitted standard deviation) in the Replace regime.

    E[sigma_g] = sqrt(var0) * c^(g + 1), with c from `sd_factor` (fit t = g + 1).

    Args:
        g: generation(s), g >= 0.
        n: samples per generation, n >= 2.
        estimator: "mle" or "unbiased".
        var0: true variance sigma_0^2 > 0.

    Returns:
        E[sigma_g], float or array shaped like `g`.

    Source: THEORY.md section 1, item 4 (Shumailov et al., arXiv 2305.17493).
    """
    t = _fits(g)
    var0 = _positive(var0, "var0")
    return _out(math.sqrt(var0) * np.exp(t * math.log(sd_factor(n, estimator))))


def variance_mean(g: ArrayLike, n: int, estimator: Estimator, var0: float = 1.0) -> FloatOrArray:
    """E[sigma^2_g] in the Replace regime.

    E[sigma^2_g] = var0 * r^(g + 1),  r = (n - 1)/(n - delta):

    constant for the unbiased estimator, var0 ((n - 1)/n)^(g + 1) for the MLE.
    Heavy-tailed for long unbiased chains: see `variance_relative_var` before using it
    as a Monte Carlo target.

    Args:
        g: generation(s), g >= 0.
        n: samples per generation, n >= 2.
        estimator: "mle" or "unbiased".
        var0: true variance sigma_0^2 > 0.

    Returns:
        E[sigma^2_g], float or array shaped like `g`.

    Source: THEORY.md section 0 table and section 1, item 1 (Shumailov et al.,
    arXiv 2305.17493).
    """
    t = _fits(g)
    n = _integer(n, "n", 2)
    var0 = _positive(var0, "var0")
    return _out(var0 * np.exp(t * math.log(_ratio(n, _delta(estimator)))))


def variance_relative_var(g: ArrayLike, n: int, estimator: Estimator) -> FloatOrArray:
    """Relative variance Var(sigma^2_g) / E[sigma^2_g]^2 in the Replace regime.

    Per fit sigma^2 is multiplied by q = C/(n - delta), C ~ chi^2_{n-1}, with
    E[q] = (n - 1)/(n - delta) and E[q^2] = (n - 1)(n + 1)/(n - delta)^2, so
    E[q^2]/E[q]^2 = (n + 1)/(n - 1) for both estimators (delta cancels), and

        Var(sigma^2_g) / E[sigma^2_g]^2 = ((n + 1)/(n - 1))^(g + 1) - 1.

    Args:
        g: generation(s), g >= 0.
        n: samples per generation, n >= 2.
        estimator: "mle" or "unbiased" (validated; the result does not depend on it).

    Returns:
        The relative variance, float or array shaped like `g`.

    Source: THEORY.md section 1, item 2 and section 12 (Shumailov et al.,
    arXiv 2305.17493).
    """
    t = _fits(g)
    n = _integer(n, "n", 2)
    _delta(estimator)
    return _out(np.expm1(t * math.log1p(2.0 / (n - 1))))


# --------------------------------------------------------------------------------------
# Replace regime: mean error and Wasserstein distance (THEORY section 1)
# --------------------------------------------------------------------------------------


def mean_sq_error_replace(
    g: ArrayLike,
    n: int,
    estimator: Estimator,
    var0: float = 1.0,
    learn_cov: bool = True,
    dim: int = 1,
) -> FloatOrArray:
    """E||mu_g - mu_0||^2 in the Replace regime.

    Fit k + 1 draws its n points from model k (model -1 being the truth), so

        E||mu_g - mu_0||^2 = sum_{k=0}^{g} E[tr Sigma_k] / n,

    where here k = 0 is the truth: E[tr Sigma_k] = dim * var0 * r^k with a learned
    covariance and dim * var0 with a known one. Learned: (g + 1) dim var0 / n (unbiased,
    linear growth) or dim var0 (1 - ((n - 1)/n)^(g + 1)) (MLE, bounded by dim var0).
    Known: (g + 1) dim var0 / n. In d dimensions Sigma_0 = var0 * I is assumed (the
    result only needs tr Sigma_0 = dim * var0).

    Args:
        g: generation(s), g >= 0.
        n: samples per generation, n >= 2.
        estimator: "mle" or "unbiased" (validated; unused when `learn_cov` is False).
        var0: per-coordinate true variance sigma_0^2 > 0.
        learn_cov: whether the chain refits the (co)variance.
        dim: dimension d >= 1.

    Returns:
        E||mu_g - mu_0||^2, float or array shaped like `g`.

    Source: THEORY.md section 1, item 5 (Shumailov et al., arXiv 2305.17493).
    """
    t = _fits(g)
    n = _integer(n, "n", 2)
    delta = _delta(estimator)
    var0 = _positive(var0, "var0")
    dim = _integer(dim, "dim", 1)
    q = _ratio(n, delta) if learn_cov else 1.0
    return _out(dim * var0 / n * _geometric_sum(q, t))


def w2_sq_mean(g: ArrayLike, n: int, estimator: Estimator, var0: float = 1.0) -> FloatOrArray:
    """E[W_2^2(N(mu_g, sigma^2_g), N(mu_0, var0))], 1-D, learned variance, Replace.

    In 1-D W_2^2 = (mu - mu_0)^2 + (sigma - sigma_0)^2, so

        E[W_2^2] = E[(mu_g - mu_0)^2] + E[sigma^2_g] - 2 sigma_0 E[sigma_g] + var0

    (unbiased: (g + 1) var0/n + 2 var0 (1 - c^(g + 1))).

    Args:
        g: generation(s), g >= 0.
        n: samples per generation, n >= 2.
        estimator: "mle" or "unbiased".
        var0: true variance sigma_0^2 > 0.

    Returns:
        E[W_2^2], float or array shaped like `g`.

    Source: THEORY.md section 1, item 6 (Shumailov et al., arXiv 2305.17493).
    """
    mse = mean_sq_error_replace(g, n, estimator, var0)
    sd = sd_mean(g, n, estimator, var0)
    var = variance_mean(g, n, estimator, var0)
    var0 = float(var0)
    return _out(np.asarray(mse) + np.asarray(var) - 2.0 * math.sqrt(var0) * np.asarray(sd) + var0)


# --------------------------------------------------------------------------------------
# Multivariate Replace chain (THEORY section 11)
# --------------------------------------------------------------------------------------


def trace_ratio_mean(g: ArrayLike, n: int, estimator: Estimator) -> FloatOrArray:
    """E[tr Sigma_g] / tr Sigma_0 in the Replace regime, any dimension and any Sigma_0.

    E[tr Sigma_g] / tr Sigma_0 = r^(g + 1), r = (n - 1)/(n - delta) (the scatter is
    Wishart_d(n - 1, Sigma), whose mean is (n - 1) Sigma).

    Args:
        g: generation(s), g >= 0.
        n: samples per generation, n >= 2.
        estimator: "mle" or "unbiased".

    Returns:
        The trace ratio, float or array shaped like `g`.

    Source: THEORY.md section 11, item 2 (Shumailov et al., arXiv 2305.17493).
    """
    return variance_mean(g, n, estimator, 1.0)


def _logdet_args(n: object, dim: object) -> tuple[int, NDArray[np.float64]]:
    dim = _integer(dim, "dim", 1)
    n = _integer(n, "n", 2)
    if n < dim + 1:
        raise ValueError(f"n must be >= dim + 1 = {dim + 1} for a finite log det, got n={n}")
    halves = (n - np.arange(1, dim + 1, dtype=np.float64)) / 2.0
    return n, halves


def logdet_drift(n: int, dim: int, estimator: Estimator) -> float:
    """Per-fit drift of E[log det Sigma_g] in the Replace regime.

    drift = sum_{i=1}^{d} [psi((n - i)/2) + log(2/(n - delta))] (Bartlett: the scatter's
    determinant is det Sigma times a product of independent chi^2_{n-i}).

    Args:
        n: samples per generation, n >= dim + 1.
        dim: dimension d >= 1.
        estimator: "mle" or "unbiased".

    Returns:
        The drift per fit (d = 1 equals `log_variance_drift`).

    Source: THEORY.md section 11, item 2.
    """
    n, halves = _logdet_args(n, dim)
    delta = _delta(estimator)
    return float(np.sum(digamma(halves)) + halves.size * math.log(2.0 / (n - delta)))


def logdet_ratio_mean(g: ArrayLike, n: int, dim: int, estimator: Estimator) -> FloatOrArray:
    """E[log det Sigma_g - log det Sigma_0] in the Replace regime.

    E[log(det Sigma_g / det Sigma_0)] = (g + 1) * `logdet_drift(n, dim, estimator)`.

    Args:
        g: generation(s), g >= 0.
        n: samples per generation, n >= dim + 1.
        dim: dimension d >= 1.
        estimator: "mle" or "unbiased".

    Returns:
        The mean log det ratio, float or array shaped like `g`.

    Source: THEORY.md section 11, item 2.
    """
    t = _fits(g)
    return _out(t * logdet_drift(n, dim, estimator))


def logdet_ratio_var(g: ArrayLike, n: int, dim: int) -> FloatOrArray:
    """Var[log det Sigma_g] in the Replace regime (either estimator).

    Var[log det Sigma_g] = (g + 1) sum_{i=1}^{d} psi'((n - i)/2).

    Args:
        g: generation(s), g >= 0.
        n: samples per generation, n >= dim + 1.
        dim: dimension d >= 1.

    Returns:
        The variance, float or array shaped like `g`.

    Source: THEORY.md section 11, item 2.
    """
    t = _fits(g)
    _, halves = _logdet_args(n, dim)
    return _out(t * float(np.sum(trigamma(halves))))


# --------------------------------------------------------------------------------------
# Collapse probability (THEORY section 12)
# --------------------------------------------------------------------------------------


def collapse_probability(
    g: ArrayLike,
    n: int,
    estimator: Estimator,
    threshold: float,
    var0: float = 1.0,
    *,
    method: Literal["normal", "exact"] = "normal",
) -> FloatOrArray:
    """P(sigma_g < threshold) in the Replace regime (1-D, learned variance).

    log sigma^2_g is log var0 plus a sum of g + 1 i.i.d. terms Y = log(chi^2_{n-1} /
    (n - delta)) (the mean is irrelevant: the variance chain is autonomous).

    ``method="normal"`` approximates the sum by a normal with mean `log_variance_mean`
    and variance `log_variance_var` (central limit theorem in g + 1):

        P(sigma_g < threshold) ~= Phi((2 log threshold - mean) / sqrt(variance)),

    least accurate for few fits, small n and far tails (the left tail of log chi^2 is
    exponential, not Gaussian).

    ``method="exact"`` inverts the sum's characteristic function (Gil-Pelaez):
    phi_Y(t) = (2 / (n - delta))^{it} Gamma((n-1)/2 + it) / Gamma((n-1)/2), and

        P(S < u) = 1/2 - (1/pi) int_0^inf Im[exp(-i t u) phi_Y(t)^{g+1}] / t dt,

    with u = 2 log threshold - log var0, integrated by the midpoint rule on a grid
    scaled to the sum's spread and to the distance of u from its mean; the result is
    accurate to about 1e-7 absolute (checked against the chi-square CDF at g = 0 and
    a direct convolution at g = 1 in the tests).

    Args:
        g: generation(s), g >= 0.
        n: samples per generation, n >= 2.
        estimator: "mle" or "unbiased".
        threshold: standard-deviation threshold > 0.
        var0: true variance sigma_0^2 > 0.
        method: "normal" (default; the approximation above) or "exact".

    Returns:
        The probability, float or array shaped like `g`.

    Source: THEORY.md section 12 ("Collapse probability") and section 1, item 3
    (Shumailov et al., arXiv 2305.17493).
    """
    threshold = _positive(threshold, "threshold")
    if method not in ("normal", "exact"):
        raise ValueError(f"method must be 'normal' or 'exact', got {method!r}")
    mean = np.asarray(log_variance_mean(g, n, estimator, var0))
    var = np.asarray(log_variance_var(g, n))
    if method == "normal":
        return _out(normal_cdf((2.0 * math.log(threshold) - mean) / np.sqrt(var)))
    fits = _fits(g)
    u = 2.0 * math.log(threshold) - math.log(_positive(var0, "var0"))
    out = np.empty(fits.shape)
    cache: dict[float, float] = {}
    for idx, t in np.ndenumerate(fits):
        if t not in cache:
            cache[t] = _sum_log_chi2_cdf(u, int(t), n, _delta(estimator))
        out[idx] = cache[t]
    return _out(out)


def _sum_log_chi2_cdf(u: float, fits: int, n: int, delta: int) -> float:
    """P(sum of `fits` i.i.d. log(chi^2_{n-1} / (n - delta)) < u), by Gil-Pelaez."""
    half = 0.5 * (n - 1)
    shift = math.log(2.0 / (n - delta))
    spread = math.sqrt(fits * float(trigamma(half)))
    z = (u - fits * (float(digamma(half)) + shift)) / spread

    def log_cf(tau):  # log phi_S(tau / spread), tau on the standardised scale
        t = np.asarray(tau, dtype=np.float64) / spread
        return fits * (1j * t * shift + log_gamma_ratio(half, t))

    tau_max = 4.0
    while float(np.real(log_cf(tau_max))) > -45.0:  # |phi_S| below e^-45 beyond tau_max
        tau_max *= 1.5
    step = min(0.02, 0.2 / abs(z)) if z != 0.0 else 0.02
    count = int(math.ceil(tau_max / step))
    tau = (np.arange(count) + 0.5) * (tau_max / count)
    integrand = np.imag(np.exp(log_cf(tau) - 1j * (tau / spread) * u)) / tau
    p = 0.5 - float(np.sum(integrand)) * (tau_max / count) / math.pi
    return min(1.0, max(0.0, p))
