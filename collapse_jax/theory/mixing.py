"""Closed forms for Gaussian chains that see real data again or keep their old data.

Accumulate (all data ever generated is pooled), FreshMix (fresh real points every
generation), RetainOriginal (the same original points kept every generation) and the
He-Xu-Cheng weighted estimate. Conventions for ``g``, ``estimator`` and ``var0`` are
those of `gaussian` (the Replace chain): generation g has had t = g + 1 fits, scalar
``g`` gives a float and an array ``g`` an array of the same shape, numpy float64.

Sources (THEORY.md): sections 2 and 12 (Gerstgrasser et al., arXiv 2404.01413:
Accumulate); section 4 (Bertrand et al., arXiv 2310.00429: mixing real and synthetic
data); section 5 (He, Xu and Cheng, arXiv 2502.18049: fresh data and golden-ratio
weighting); section 12 (derived recursions, each checked by an independent Monte Carlo).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import (
    Estimator,
    FloatOrArray,
    _count,
    _delta,
    _fits,
    _fraction,
    _generations,
    _geometric_sum,
    _integer,
    _out,
    _positive,
    _real,
)

__all__ = [
    "accumulate_mix_mean_sq_error",
    "freshmix_moments",
    "freshmix_steady_state",
    "mean_sq_error_accumulate",
    "optimal_real_weight",
    "retain_original_mean_sq_error",
    "retain_original_steady_state",
    "variance_mean_accumulate",
    "weighted_mean_sq_error",
    "weighted_steady_state",
]


# --------------------------------------------------------------------------------------
# Accumulate regime: variance and mean error (THEORY sections 2, 12)
# --------------------------------------------------------------------------------------


def _accumulate_variances(t_max: int, n: int, delta: int) -> NDArray[np.float64]:
    """V_j / var0 for j = 0..t_max in the Accumulate regime (V_0 = 1, the truth)."""
    j = np.arange(1, t_max + 1, dtype=np.float64)
    if delta == 0:
        factors = 1.0 - 1.0 / (n * j * j)
    else:
        factors = np.where(j >= 2, 1.0 - 1.0 / (j * (j * n - 1.0)), 1.0)
    return np.concatenate(([1.0], np.cumprod(factors)))


def variance_mean_accumulate(g: ArrayLike, n: int, estimator: Estimator, var0: float = 1.0) -> FloatOrArray:
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
    estimator: Estimator,
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


# --------------------------------------------------------------------------------------
# Fresh real data, retained real data, weighted estimates (THEORY sections 4, 5, 12)
# --------------------------------------------------------------------------------------


def accumulate_mix_mean_sq_error(g: ArrayLike, n: int, real_fraction: float, var0: float = 1.0) -> FloatOrArray:
    """E[e^2_g] = E[(mu_g - mu_0)^2] in the AccumulateMix regime, 1-D, known variance.

    Every batch of n holds r = floor(real_fraction * n + 1/2) fresh real points and
    m = n - r points from model g - 1, pooled with all earlier batches (generation 0:
    the n original points). With S_g the sum of every point so far, centred at mu_0,
    mu_g - mu_0 = S_g / ((g + 1) n) and, exactly,

        S_g = (1 + m / (g n)) S_{g-1} + eps_g,   Var(eps_g) = n var0,

    so V_g = Var(S_g) follows V_0 = n var0, V_g = (1 + m/(g n))^2 V_{g-1} + n var0 and
    E[e^2_g] = V_g / ((g + 1) n)^2. With a = r/n the error decays like g^(-2a) for
    a < 1/2 and like var0 / ((2a - 1) n g) for a > 1/2 (a phase transition at a = 1/2,
    with a log g factor there); a = 0 is Accumulate, a = 1 one growing real sample,
    var0 / ((g + 1) n).

    Args:
        g: generation(s), g >= 0.
        n: points per batch, n >= 1.
        real_fraction: share a of fresh real points in every batch, in [0, 1].
        var0: true variance sigma_0^2 > 0.

    Returns:
        E[e^2_g], a float or an array shaped like `g`.

    Source: THEORY.md section 12 (derived, MC-checked in tests/test_regimes.py); the
    fresh-real-share accumulation regime of Kanabar and Gastpar.
    """
    g_arr = _generations(g)
    n = _integer(n, "n", 1)
    a = _fraction(real_fraction, "real_fraction")
    var0 = _positive(var0, "var0")
    m = n - _count(a, n)
    g_max = int(g_arr.max(initial=0))
    v = np.empty(g_max + 1)
    v[0] = n * var0
    for k in range(1, g_max + 1):
        v[k] = (1.0 + m / (k * n)) ** 2 * v[k - 1] + n * var0
    gens = np.arange(g_max + 1, dtype=np.float64)
    return _out((v / ((gens + 1.0) * n) ** 2)[g_arr])


def freshmix_moments(
    g: ArrayLike,
    n: int,
    real_fraction: float,
    estimator: Estimator,
    var0: float = 1.0,
    learn_cov: bool = True,
) -> tuple[FloatOrArray, FloatOrArray]:
    """(E[e^2_g], E[sigma^2_g]) in the FreshMix regime, 1-D, pooled; e_g = mu_g - mu_0.

    At every g >= 1 the training set is r = floor(real_fraction * n + 1/2) fresh real
    points and m = n - r points from model g - 1, pooled. Generation 0 fits n real
    points: E[e^2_0] = var0/n, V_0 = E[sigma^2_0] = var0 (n - 1)/(n - delta). Then,
    exactly, for g >= 1::

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
