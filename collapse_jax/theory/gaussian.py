"""Closed forms for Gaussian chains: a Gaussian refitted on samples from its last fit.

Every function takes the simulator's generation ``g`` (an int or an integer numpy array,
vectorised over ``g``): generation 0 is the fit to the n real samples, and generation g
has had t = g + 1 fits (THEORY.md section 0; the papers count fits t). Scalar ``g``
gives a Python float, an array ``g`` an array of the same shape. Everything is numpy
float64.

``estimator`` is ``"mle"`` (variance divides by n, delta = 0) or ``"unbiased"`` (divides
by n - 1, delta = 1), and r = (n - 1) / (n - delta) is the per-fit factor of the
expected variance. ``var0`` is the true variance sigma_0^2; in d dimensions
``Sigma_0 = var0 * I`` unless stated otherwise.

Sources (THEORY.md): section 1 (Shumailov et al., arXiv 2305.17493: Replace chain);
sections 2 and 12 (Gerstgrasser et al., arXiv 2404.01413: Accumulate); section 4
(Bertrand et al., arXiv 2310.00429: mixing real and synthetic data); section 5 (He, Xu
and Cheng, arXiv 2502.18049: fresh data and golden-ratio weighting); section 11
(multivariate facts); section 12 (derived recursions, each checked by an independent
Monte Carlo).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._special import digamma, normal_cdf, trigamma

FloatOrArray = float | NDArray[np.float64]

_ESTIMATOR_DELTA = {"mle": 0, "unbiased": 1}


# --------------------------------------------------------------------------------------
# Argument checks and small helpers
# --------------------------------------------------------------------------------------


def _delta(estimator: str) -> int:
    if not isinstance(estimator, str) or estimator not in _ESTIMATOR_DELTA:
        raise ValueError(f"estimator must be 'mle' or 'unbiased', got {estimator!r}")
    return _ESTIMATOR_DELTA[estimator]


def _integer(value: object, name: str, minimum: int) -> int:
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not (is_int and value >= minimum):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _real(value: object, name: str, low: float, high: float, *, open_low: bool) -> float:
    """A finite real number in (low, high] (open_low) or [low, high]."""
    is_real = isinstance(value, (int, float, np.integer, np.floating))
    x = float(value) if is_real and not isinstance(value, bool) else math.nan
    above_low = x > low if open_low else x >= low
    if not (math.isfinite(x) and above_low and x <= high):
        interval = f"({low}, {high}]" if open_low else f"[{low}, {high}]"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return x


def _positive(value: object, name: str) -> float:
    return _real(value, name, 0.0, math.inf, open_low=True)


def _fraction(value: object, name: str) -> float:
    return _real(value, name, 0.0, 1.0, open_low=False)


def _generations(g: ArrayLike) -> NDArray[np.int64]:
    arr = np.asarray(g)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"g must be an integer generation or integer array (g >= 0), got {g!r}")
    if np.any(arr < 0):
        raise ValueError(f"g must be >= 0 (generation 0 is the fit to the real data), got {g!r}")
    return arr.astype(np.int64)


def _fits(g: ArrayLike) -> NDArray[np.float64]:
    """t = g + 1, the number of fits behind generation g, as float64."""
    return _generations(g).astype(np.float64) + 1.0


def _out(arr: NDArray[np.float64] | float) -> FloatOrArray:
    arr = np.asarray(arr, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def _count(fraction: float, n: int) -> int:
    """floor(fraction * n + 1/2), the simulator's rounding of a share (DESIGN.md)."""
    return math.floor(fraction * n + 0.5)


def _ratio(n: int, delta: int) -> float:
    """r = (n - 1) / (n - delta), the per-fit factor of E[variance]."""
    return (n - 1) / (n - delta)


def _geometric_sum(q: float, terms: NDArray[np.float64]) -> NDArray[np.float64]:
    """sum_{k=0}^{terms-1} q^k, accurate for q near 1 (q >= 0)."""
    if q == 1.0:
        return terms.copy()
    if q == 0.0:
        return np.where(terms > 0, 1.0, 0.0)
    return np.expm1(terms * math.log(q)) / (q - 1.0)


# --------------------------------------------------------------------------------------
# Replace regime, 1-D: variance, log-variance, standard deviation (THEORY section 1)
# --------------------------------------------------------------------------------------


def log_variance_drift(n: int, estimator: str) -> float:
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


def log_variance_mean(g: ArrayLike, n: int, estimator: str, var0: float = 1.0) -> FloatOrArray:
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


def sd_factor(n: int, estimator: str) -> float:
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


def sd_mean(g: ArrayLike, n: int, estimator: str, var0: float = 1.0) -> FloatOrArray:
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


def variance_mean(g: ArrayLike, n: int, estimator: str, var0: float = 1.0) -> FloatOrArray:
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


def variance_relative_var(g: ArrayLike, n: int, estimator: str) -> FloatOrArray:
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
# Mean error and Wasserstein distance, Replace and Accumulate (THEORY sections 1, 2, 12)
# --------------------------------------------------------------------------------------


def mean_sq_error_replace(
    g: ArrayLike,
    n: int,
    estimator: str,
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


def _accumulate_variances(t_max: int, n: int, delta: int) -> NDArray[np.float64]:
    """V_j / var0 for j = 0..t_max in the Accumulate regime (V_0 = 1, the truth)."""
    j = np.arange(1, t_max + 1, dtype=np.float64)
    if delta == 0:
        factors = 1.0 - 1.0 / (n * j * j)
    else:
        factors = np.where(j >= 2, 1.0 - 1.0 / (j * (j * n - 1.0)), 1.0)
    return np.concatenate(([1.0], np.cumprod(factors)))


def variance_mean_accumulate(g: ArrayLike, n: int, estimator: str, var0: float = 1.0) -> FloatOrArray:
    """E[sigma^2_g] in the Accumulate regime (all data ever generated is pooled).

    With t = g + 1 fits, V_t = E[sigma^2_g]:
        MLE:      V_t = var0 prod_{j=1}^{t} (1 - 1/(n j^2)),
        unbiased: V_t = var0 prod_{j=2}^{t} (1 - 1/(j (j n - 1))).

    The MLE chain is bounded below by var0 sin(pi/sqrt(n)) / (pi/sqrt(n)).

    Args:
        g: generation(s), g >= 0.
        n: batch size (the original sample and each synthetic batch), n >= 2.
        estimator: "mle" or "unbiased".
        var0: true variance sigma_0^2 > 0 (in d-D: use tr Sigma_0, same factors).

    Returns:
        E[sigma^2_g], float or array shaped like `g`.

    Source: THEORY.md section 12 (Gerstgrasser et al., arXiv 2404.01413; bounded, as in
    Barzilai and Shamir, arXiv 2505.19046).
    """
    g_arr = _generations(g)
    n = _integer(n, "n", 2)
    delta = _delta(estimator)
    var0 = _positive(var0, "var0")
    t_max = int(g_arr.max(initial=0)) + 1
    return _out(var0 * _accumulate_variances(t_max, n, delta)[g_arr + 1])


def mean_sq_error_accumulate(
    g: ArrayLike,
    n: int,
    estimator: str,
    var0: float = 1.0,
    learn_cov: bool = True,
    dim: int = 1,
) -> FloatOrArray:
    """E||mu_g - mu_0||^2 in the Accumulate regime.

    With t = g + 1 fits: fit j pools j batches of n and batch j came from model j - 1:

        E||mu_g - mu_0||^2 = sum_{j=1}^{t} dim * V_{j-1} / (n j^2),

    with V_0 = var0 and V_j from `variance_mean_accumulate` (learned covariance), or
    V_j = var0 (known): (dim var0 / n) sum_{i=1}^{t} 1/i^2 <= (pi^2/6) dim var0 / n.
    Sigma_0 = var0 * I.

    Args:
        g: generation(s), g >= 0.
        n: batch size, n >= 2.
        estimator: "mle" or "unbiased" (validated; unused when `learn_cov` is False).
        var0: per-coordinate true variance sigma_0^2 > 0.
        learn_cov: whether the chain refits the (co)variance.
        dim: dimension d >= 1.

    Returns:
        E||mu_g - mu_0||^2, float or array shaped like `g`.

    Source: THEORY.md sections 0 and 12 (Gerstgrasser et al., arXiv 2404.01413).
    """
    g_arr = _generations(g)
    n = _integer(n, "n", 2)
    delta = _delta(estimator)
    var0 = _positive(var0, "var0")
    dim = _integer(dim, "dim", 1)
    t_max = int(g_arr.max(initial=0)) + 1
    j = np.arange(1, t_max + 1, dtype=np.float64)
    if learn_cov:
        previous = _accumulate_variances(t_max, n, delta)[:-1]
    else:
        previous = np.ones(t_max)
    terms = np.concatenate(([0.0], np.cumsum(previous / (j * j))))
    return _out(dim * var0 / n * terms[g_arr + 1])


def w2_sq_mean(g: ArrayLike, n: int, estimator: str, var0: float = 1.0) -> FloatOrArray:
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
# Fresh real data, retained real data, weighted estimates (THEORY sections 4, 5, 12)
# --------------------------------------------------------------------------------------


def freshmix_moments(
    g: ArrayLike,
    n: int,
    real_fraction: float,
    estimator: str,
    var0: float = 1.0,
    learn_cov: bool = True,
) -> tuple[FloatOrArray, FloatOrArray]:
    """(E[e^2_g], E[sigma^2_g]) in the FreshMix regime, 1-D, pooled; e_g = mu_g - mu_0.

    At every g >= 1 the training set is r = floor(real_fraction * n + 1/2) fresh real
    points and m = n - r points from model g - 1, pooled. Generation 0 fits n real
    points: E[e^2_0] = var0/n, V_0 = E[sigma^2_0] = var0 (n - 1)/(n - delta). Then,
    exactly, for g >= 1:

        E[e^2_g] = r var0/n^2 + (m/n)^2 (E[e^2_{g-1}] + V_{g-1}/m),
        (n - delta) V_g = (r - 1 + m/n) var0 + (m - 1 + r/n) V_{g-1}
                          + (r m/n) E[e^2_{g-1}].

    (The V_{g-1}/m term is m V_{g-1}/n^2, zero when m = 0.) With `learn_cov=False` the
    variance is var0 throughout and only the first recursion applies; its limit is
    `freshmix_steady_state`. real_fraction = 0 is the Replace regime; real_fraction = 1
    keeps E[e^2_g] = var0/n.

    Args:
        g: generation(s), g >= 0.
        n: total points per generation, n >= 2.
        real_fraction: share lambda of fresh real points, in [0, 1].
        estimator: "mle" or "unbiased".
        var0: true variance sigma_0^2 > 0.
        learn_cov: whether the chain refits the variance.

    Returns:
        (E[e^2_g], E[sigma^2_g]), each a float or an array shaped like `g`.

    Source: THEORY.md section 12 (derived, MC-checked), sections 4 and 5
    (Bertrand et al., arXiv 2310.00429; He, Xu and Cheng, arXiv 2502.18049).
    """
    g_arr = _generations(g)
    n = _integer(n, "n", 2)
    lam = _fraction(real_fraction, "real_fraction")
    delta = _delta(estimator)
    var0 = _positive(var0, "var0")
    r = _count(lam, n)
    m = n - r
    g_max = int(g_arr.max(initial=0))
    e2 = np.empty(g_max + 1)
    v = np.empty(g_max + 1)
    e2[0] = var0 / n
    v[0] = var0 * (n - 1) / (n - delta) if learn_cov else var0
    for k in range(1, g_max + 1):
        e2[k] = r * var0 / n**2 + (m / n) ** 2 * e2[k - 1] + m * v[k - 1] / n**2
        if learn_cov:
            v[k] = ((r - 1 + m / n) * var0 + (m - 1 + r / n) * v[k - 1] + (r * m / n) * e2[k - 1]) / (n - delta)
        else:
            v[k] = var0
    return _out(e2[g_arr]), _out(v[g_arr])


def freshmix_steady_state(n: int, real_fraction: float, var0: float = 1.0) -> float:
    """Limit of E[e^2_g] as g -> infinity in the FreshMix regime, known variance.

    E[e^2_inf] = var0 / (n lam (2 - lam)), with lam = r/n the realised real share,
    r = floor(real_fraction * n + 1/2) (equal to real_fraction when real_fraction * n is
    an integer). It is +inf when r = 0 (Replace: the error grows without bound). Exact
    for a known variance only; with a learned variance use `freshmix_moments` (THEORY
    section 12).

    Args:
        n: total points per generation, n >= 2.
        real_fraction: share lambda of fresh real points, in [0, 1].
        var0: true variance sigma_0^2 > 0.

    Returns:
        The steady-state mean error (lam = 0.1, 0.25, 0.5, 0.9: n E/var0 = 5.263,
        2.286, 1.333, 1.010).

    Source: THEORY.md section 5, special case (He, Xu and Cheng, arXiv 2502.18049).
    """
    n = _integer(n, "n", 2)
    lam = _fraction(real_fraction, "real_fraction")
    var0 = _positive(var0, "var0")
    r = _count(lam, n)
    if r == 0:
        return math.inf
    f = r / n
    return var0 / (n * f * (2.0 - f))


def retain_original_mean_sq_error(g: ArrayLike, n: int, fraction: float, var0: float = 1.0) -> FloatOrArray:
    """E[e^2_g] = E[(mu_g - mu_0)^2] in the RetainOriginal regime, 1-D, known variance.

    The same r = floor(fraction * n + 1/2) original points are kept in every generation,
    plus m = n - r points from model g - 1; rho = m/n. With a the retained points' mean
    error (Var var0/r), b the other original points' mean error (Var var0/m) and
    xi_g ~ N(0, var0/m): e_0 = (r/n) a + (m/n) b and e_g = (r/n) a + rho (e_{g-1} + xi_g),
    so

        E[e^2_g] = A_g^2 var0/r + rho^(2(g+1)) var0/m
                   + rho^2 (var0/m) sum_{j=0}^{g-1} rho^(2j),

    with A_g = (r/n) rho^g + 1 - rho^g = 1 - rho^(g+1). Terms with a zero coefficient
    are dropped (r = 0: Replace with known variance, (g + 1) var0/n; m = 0: var0/n for
    every g).

    Args:
        g: generation(s), g >= 0.
        n: total points per generation, n >= 2.
        fraction: share f of the original sample that is retained, in [0, 1].
        var0: true variance sigma_0^2 > 0.

    Returns:
        E[e^2_g], float or array shaped like `g`; its limit is
        `retain_original_steady_state`.

    Source: THEORY.md section 12 (derived, MC-checked); the "synthetic augmentation loop"
    of Alemohammad et al. (arXiv 2307.01850, THEORY section 10.4) and the original-data
    share of Shumailov et al. (arXiv 2305.17493, THEORY section 1).
    """
    t = _fits(g)
    n = _integer(n, "n", 2)
    f = _fraction(fraction, "fraction")
    var0 = _positive(var0, "var0")
    r = _count(f, n)
    m = n - r
    rho = m / n
    gens = t - 1.0
    # rho^(2(g+1)) var0/m = rho^(2g) m var0/n^2 and rho^2 var0/m = m var0/n^2: no division by m.
    # rho^(2g) at rho = 0, g = 0 is 1 (numpy's 0.0**0.0), multiplied by m = 0.
    synth = m * var0 / n**2 * (rho ** (2.0 * gens) + _geometric_sum(rho * rho, gens))
    retained = (1.0 - rho**t) ** 2 * var0 / r if r > 0 else np.zeros_like(t)
    return _out(retained + synth)


def retain_original_steady_state(n: int, fraction: float, var0: float = 1.0) -> float:
    """Limit of E[e^2_g] as g -> infinity in the RetainOriginal regime, known variance.

    E[e^2_inf] = var0 (3 - 2f) / (n f (2 - f)),

    with f = r/n the realised retained share, r = floor(fraction * n + 1/2); +inf when
    r = 0.

    Args:
        n: total points per generation, n >= 2.
        fraction: share of the original sample that is retained, in [0, 1].
        var0: true variance sigma_0^2 > 0.

    Returns:
        The steady-state mean error.

    Source: THEORY.md section 12 (derived, MC-checked).
    """
    n = _integer(n, "n", 2)
    frac = _fraction(fraction, "fraction")
    var0 = _positive(var0, "var0")
    r = _count(frac, n)
    if r == 0:
        return math.inf
    f = r / n
    return var0 * (3.0 - 2.0 * f) / (n * f * (2.0 - f))


def _synthetic_count(n: int, ratio: float) -> int:
    m = math.floor(n / ratio + 0.5)
    if m < 1:
        raise ValueError(
            f"ratio must leave m = floor(n/ratio + 1/2) >= 1 synthetic points, got ratio={ratio!r} with n={n}"
        )
    return m


def weighted_mean_sq_error(g: ArrayLike, n: int, real_weight: float, ratio: float, var0: float = 1.0) -> FloatOrArray:
    """E[e^2_g] for He-Xu-Cheng estimate averaging, 1-D, known variance.

    At g >= 1: n fresh real points and m = floor(n/ratio + 1/2) points from model g - 1;
    mu_g = w mean(real) + (1 - w) mean(synthetic). Generation 0 fits n real points. So
    V_0 = var0/n and, for g >= 1, V_g = w^2 var0/n + (1 - w)^2 (V_{g-1} + var0/m), i.e.

        V_g = q^g V_0 + (w^2 var0/n + q var0/m) sum_{j=0}^{g-1} q^j,  q = (1 - w)^2.

    w = 1 gives var0/n; w = 0 is Replace with m points.

    Args:
        g: generation(s), g >= 0.
        n: fresh real points per generation, n >= 2.
        real_weight: weight w on the real-data estimate, in [0, 1].
        ratio: k = n_real / n_synthetic > 0.
        var0: true variance sigma_0^2 > 0.

    Returns:
        E[e^2_g], float or array shaped like `g`; its limit is `weighted_steady_state`.

    Source: THEORY.md section 5 (He, Xu and Cheng, arXiv 2502.18049).
    """
    t = _fits(g)
    n = _integer(n, "n", 2)
    w = _fraction(real_weight, "real_weight")
    k = _positive(ratio, "ratio")
    var0 = _positive(var0, "var0")
    m = _synthetic_count(n, k)
    q = (1.0 - w) ** 2
    gens = t - 1.0
    step = w * w * var0 / n + q * var0 / m
    return _out(q**gens * var0 / n + step * _geometric_sum(q, gens))


def weighted_steady_state(n: int, real_weight: float, ratio: float, var0: float = 1.0) -> float:
    """Limit of `weighted_mean_sq_error` as g -> infinity.

    E[e^2_inf] = var0 (w^2 + k (1 - w)^2) / (n w (2 - w)),

    with k = n/m the realised ratio, m = floor(n/ratio + 1/2) (k = ratio when n/ratio is
    an integer). Minimised at w = `optimal_real_weight(k)`, where n E/var0 = w.

    Args:
        n: fresh real points per generation, n >= 2.
        real_weight: weight w on the real-data estimate, in (0, 1].
        ratio: k = n_real / n_synthetic > 0.
        var0: true variance sigma_0^2 > 0.

    Returns:
        The steady-state mean error.

    Source: THEORY.md section 5 (He, Xu and Cheng, arXiv 2502.18049).
    """
    n = _integer(n, "n", 2)
    w = _real(real_weight, "real_weight", 0.0, 1.0, open_low=True)
    k_nominal = _positive(ratio, "ratio")
    var0 = _positive(var0, "var0")
    k = n / _synthetic_count(n, k_nominal)
    return var0 * (w * w + k * (1.0 - w) ** 2) / (n * w * (2.0 - w))


def optimal_real_weight(ratio: ArrayLike) -> FloatOrArray:
    """He-Xu-Cheng optimal weight on the real-data estimate.

    w* = (sqrt(k^2 + 4k) - k)/2,

    the root of w^2 = k (1 - w); k = 1 gives 1/phi = 0.6180 (phi the golden ratio).

    Args:
        ratio: k = n_real / n_synthetic > 0, scalar or array.

    Returns:
        w*, float or array shaped like `ratio`.

    Source: THEORY.md section 5 (He, Xu and Cheng, arXiv 2502.18049).
    """
    k = np.asarray(ratio, dtype=np.float64)
    if not np.all(np.isfinite(k)) or np.any(k <= 0.0):
        raise ValueError(f"ratio must be finite and > 0, got {ratio!r}")
    # (sqrt(k^2 + 4k) - k)/2 = 2k / (sqrt(k^2 + 4k) + k): no cancellation at large k.
    return _out(2.0 * k / (np.sqrt(k * k + 4.0 * k) + k))


# --------------------------------------------------------------------------------------
# Multivariate Replace chain (THEORY section 11)
# --------------------------------------------------------------------------------------


def trace_ratio_mean(g: ArrayLike, n: int, estimator: str) -> FloatOrArray:
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


def logdet_drift(n: int, dim: int, estimator: str) -> float:
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


def logdet_ratio_mean(g: ArrayLike, n: int, dim: int, estimator: str) -> FloatOrArray:
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


def collapse_probability(g: ArrayLike, n: int, estimator: str, threshold: float, var0: float = 1.0) -> FloatOrArray:
    """P(sigma_g < threshold) in the Replace regime, by a NORMAL APPROXIMATION.

    log sigma^2_g is log var0 plus a sum of g + 1 i.i.d. log(chi^2_{n-1}/(n - delta))
    terms; it is approximated by a normal with mean `log_variance_mean` and variance
    `log_variance_var`:

        P(sigma_g < threshold) ~= Phi((2 log threshold - mean) / sqrt(variance)).

    This is an approximation (central limit theorem in g + 1), not an exact law: it is
    least accurate for few fits, small n and far tails.

    Args:
        g: generation(s), g >= 0.
        n: samples per generation, n >= 2.
        estimator: "mle" or "unbiased".
        threshold: standard-deviation threshold > 0.
        var0: true variance sigma_0^2 > 0.

    Returns:
        The approximate probability, float or array shaped like `g`.

    Source: THEORY.md section 12 ("Collapse probability") and section 1, item 3
    (Shumailov et al., arXiv 2305.17493).
    """
    threshold = _positive(threshold, "threshold")
    mean = np.asarray(log_variance_mean(g, n, estimator, var0))
    var = np.asarray(log_variance_var(g, n))
    return _out(normal_cdf((2.0 * math.log(threshold) - mean) / np.sqrt(var)))
