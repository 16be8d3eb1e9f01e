"""Closed forms for pressures on synthetic data and defences against collapse (the 1-D
Gaussian chain, as in `gaussian`: generation g has had t = g + 1 fits, scalar ``g``
gives a float and an array ``g`` an array).

* Sampling bias: temperature tau (synthetic variance tau^2 sigma^2) and two-sided
  truncation to the central mass q (variance factor ``truncation_variance_factor``).
  Both multiply E[sigma^2] by a constant per generation: geometric decay.
* Imperfect provenance: the effective real fraction rho of data labelled real, and
  the mean error of the resulting random-count FreshMix.
* Sample-size schedules: sums over the schedule.
* Self-correction (the gamma-interpolated transport map to the truth): exact
  moment recursions.

Derivations: THEORY.md section 13. Sources: Alemohammad et al. (ICLR 2024) for
sampling bias; Feng et al. (ICLR 2025) for verification; Gillman et al. (ICML 2024)
for self-correction; Shumailov et al. (Nature 2024, supplement) for schedules.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._hostmath import chi2_quantile, regularized_gamma_p
from ._checks import (
    Estimator,
    FloatOrArray,
    _delta,
    _fraction,
    _generations,
    _geometric_sum,
    _integer,
    _out,
    _positive,
    _real,
)
from .gaussian import sd_factor

__all__ = [
    "correction_moments",
    "effective_real_fraction",
    "pressure_mean_sq_error",
    "pressure_variance_mean",
    "provenance_mean_sq_error",
    "provenance_steady_state",
    "schedule_mean_sq_error",
    "schedule_variance_mean",
    "truncation_variance_factor",
]


def truncation_variance_factor(q: float, dim: int = 1) -> float:
    """The variance factor of a standard normal truncated to its central mass q.

    1-D: ``Var(Z | |Z| <= z) = v(q) = 1 - 2 z phi(z) / q``, z = Phi^-1((1 + q) / 2)
    (q = 1: 1, no truncation; q -> 0: v ~ q^2 pi / 6). d-D (the Mahalanobis ball
    ``|Z|^2 <= c``, c the chi2_d q-quantile): ``E[Z Z^T | |Z|^2 <= c] = v_d(q) I`` with
    v_d(q) = E[chi2_d; chi2_d <= c] / (d q) = F_{d+2}(c) / q (F_k: the chi2_k CDF).
    """
    q = _real(q, "q", 0.0, 1.0, open_low=True)
    dim = _integer(dim, "dim", 1)
    if q == 1.0:
        return 1.0
    if dim > 1:
        c = chi2_quantile(dim, q)
        return regularized_gamma_p(0.5 * (dim + 2), 0.5 * c) / q
    z = NormalDist().inv_cdf(0.5 + 0.5 * q)
    phi = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return 1.0 - 2.0 * z * phi / q


def _factor(temperature: float, truncate: float, dim: int = 1) -> float:
    tau = _positive(temperature, "temperature")
    return tau * tau * truncation_variance_factor(truncate, dim)


def pressure_variance_mean(
    g: ArrayLike,
    n: int,
    estimator: Estimator,
    temperature: float = 1.0,
    truncate: float = 1.0,
    var0: float = 1.0,
    dim: int = 1,
) -> FloatOrArray:
    """E[sigma^2_g] of the Replace chain whose synthetic data come from the fit at
    temperature tau, truncated to its central mass q:

        E[sigma^2_g] = var0 r (r tau^2 v_d(q))^g,   r = (n - 1)/(n - delta),

    exact for every n (E of the estimator is r times the covariance of i.i.d. points,
    whatever their law; the truncated, tempered covariance is tau^2 v_d(q) Sigma_{g-1}).
    In d-D the same holds for E[tr Sigma_g] (``var0`` = tr Sigma_0; the metric
    ``trace_ratio`` with var0 = 1).
    """
    gens = _generations(g).astype(np.float64)
    n = _integer(n, "n", 2)
    r = (n - 1) / (n - _delta(estimator))
    c = r * _factor(temperature, truncate, dim)
    return _out(_positive(var0, "var0") * r * np.power(c, gens))


def pressure_mean_sq_error(
    g: ArrayLike, n: int, temperature: float = 1.0, truncate: float = 1.0, var0: float = 1.0
) -> FloatOrArray:
    """E||mu_g - mu*||^2 of the known-variance chain under temperature and
    truncation: var0 (1 + g tau^2 v(q)) / n (each generation adds the variance of
    the mean of n tempered, truncated points; truncation is symmetric, so no bias)."""
    gens = _generations(g).astype(np.float64)
    n = _integer(n, "n", 1)
    return _out(_positive(var0, "var0") * (1.0 + gens * _factor(temperature, truncate)) / n)


def effective_real_fraction(pool_real_fraction: float, false_real: float, false_synthetic: float) -> float:
    """rho = alpha (1 - eta) / (alpha (1 - eta) + (1 - alpha) eps): the probability
    that a point labelled real is real, for a pool with real fraction alpha and a
    detector that labels synthetic points real with probability eps (``false_real``)
    and real points synthetic with probability eta (``false_synthetic``)."""
    a = _fraction(pool_real_fraction, "pool_real_fraction")
    e = _fraction(false_real, "false_real")
    h = _fraction(false_synthetic, "false_synthetic")
    labelled = a * (1 - h) + (1 - a) * e
    if labelled <= 0:
        raise ValueError(
            "no point is ever labelled real: pool_real_fraction * (1 - false_synthetic) == 0 and "
            "(1 - pool_real_fraction) * false_real == 0"
        )
    return a * (1 - h) / labelled


def _provenance_factor(n: int, rho: float, binomial: bool) -> float:
    """E[(1 - R/n)^2]: R ~ Binomial(n, rho), or R = floor(rho n + 1/2) (FreshMix)."""
    if binomial:
        return (1 - rho) ** 2 + rho * (1 - rho) / n
    r = math.floor(rho * n + 0.5)
    return (1 - r / n) ** 2


def provenance_mean_sq_error(
    g: ArrayLike,
    n: int,
    pool_real_fraction: float,
    false_real: float,
    false_synthetic: float,
    var0: float = 1.0,
    *,
    binomial: bool = True,
) -> FloatOrArray:
    """E||mu_g - mu*||^2 of the known-variance chain trained on the n points
    labelled real (``cj.Provenance``): each is real with probability rho
    (:func:`effective_real_fraction`), so R ~ Binomial(n, rho) and

        E e_g^2 = var0 / n * sum_{j=0}^{g} a^j,   a = (1 - rho)^2 + rho (1 - rho) / n.

    ``binomial=False`` gives FreshMix at the same rho (R = floor(rho n + 1/2),
    a = (1 - R/n)^2): the two differ by the binomial term rho (1 - rho) / n.
    """
    n = _integer(n, "n", 1)
    rho = effective_real_fraction(pool_real_fraction, false_real, false_synthetic)
    a = _provenance_factor(n, rho, binomial)
    terms = _generations(g).astype(np.float64) + 1.0
    return _out(_positive(var0, "var0") / n * _geometric_sum(a, terms))


def provenance_steady_state(
    n: int,
    pool_real_fraction: float,
    false_real: float,
    false_synthetic: float,
    var0: float = 1.0,
    *,
    binomial: bool = True,
) -> float:
    """lim E e_g^2 = var0 / (n (1 - a)) (see :func:`provenance_mean_sq_error`);
    infinite when nothing labelled real is real (rho = 0)."""
    n = _integer(n, "n", 1)
    rho = effective_real_fraction(pool_real_fraction, false_real, false_synthetic)
    a = _provenance_factor(n, rho, binomial)
    return math.inf if a >= 1 else _positive(var0, "var0") / (n * (1 - a))


def _sizes(sizes: ArrayLike, minimum: int) -> NDArray[np.float64]:
    arr = np.asarray(sizes)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer) or np.any(arr < minimum):
        raise ValueError(f"sizes must be a non-empty 1-D integer sequence with every size >= {minimum}, got {sizes!r}")
    return arr.astype(np.float64)


def schedule_mean_sq_error(sizes: ArrayLike, var0: float = 1.0) -> NDArray[np.float64]:
    """E||mu_g - mu*||^2 = var0 sum_{j<=g} 1/n_j for g = 0..len(sizes)-1 (known
    variance, ``cj.Schedule``): bounded iff sum 1/n_j converges, e.g. n_j growing
    like j^p with p > 1 (Shumailov et al., Nature 2024, supplement)."""
    return _positive(var0, "var0") * np.cumsum(1.0 / _sizes(sizes, 1))


def schedule_variance_mean(sizes: ArrayLike, estimator: Estimator, var0: float = 1.0) -> NDArray[np.float64]:
    """E[sigma^2_g] = var0 prod_{j<=g} (n_j - 1)/(n_j - delta) for g = 0..len-1."""
    n = _sizes(sizes, 2)
    delta = _delta(estimator)
    return _positive(var0, "var0") * np.cumprod((n - 1) / (n - delta), dtype=np.float64)


def correction_moments(
    g: ArrayLike, n: int, correct: float, estimator: Estimator = "mle", *, learn_var: bool = True, var0: float = 1.0
) -> dict[str, FloatOrArray]:
    """Moments of the 1-D Gaussian Replace chain with self-correction gamma: each
    synthetic point x from N(mu, sigma^2) becomes x + gamma (T(x) - x) with
    T(x) = mu* + (sigma*/sigma)(x - mu), so (s: the fit's standardised sd,
    s^2 = chi2_{n-1}/(n - delta); z ~ N(0, 1) independent)

        sigma_g = ((1 - gamma) sigma_{g-1} + gamma sigma*) s_g,
        e_g     = (1 - gamma) e_{g-1} + ((1 - gamma) sigma_{g-1} + gamma sigma*) z_g / sqrt(n).

    Hence, with c1 = E s, c2 = E s^2 and A = E sigma, B = E sigma^2, M = E e^2::

        A_g = c1 ((1-gamma) A + gamma sigma*),
        B_g = c2 ((1-gamma)^2 B + 2 gamma (1-gamma) sigma* A + gamma^2 sigma*^2),
        M_g = (1-gamma)^2 M + ((1-gamma)^2 B + 2 gamma (1-gamma) sigma* A + gamma^2 sigma*^2) / n,

    from A_0 = c1 sigma*, B_0 = c2 sigma*^2, M_0 = sigma*^2 / n. ``learn_var=False``
    (known variance): sigma = sigma*, M_g = sigma*^2 / n sum_{j<=g} (1 - gamma)^{2j}.

    Returns ``{"sd": E sigma_g, "variance": E sigma_g^2, "mean_sq_error": E e_g^2}``.
    """
    gens = _generations(g)
    gamma = _fraction(correct, "correct")
    v0 = _positive(var0, "var0")
    s0 = math.sqrt(v0)
    top = int(gens.max()) if gens.size else 0
    if learn_var:
        n = _integer(n, "n", 2)
        c1 = sd_factor(n, estimator)
        c2 = (n - 1) / (n - _delta(estimator))
    else:
        n = _integer(n, "n", 1)
        c1, c2 = 1.0, 1.0
    a, b, m = np.empty(top + 1), np.empty(top + 1), np.empty(top + 1)
    a[0], b[0], m[0] = c1 * s0, c2 * v0, v0 / n
    for t in range(1, top + 1):
        second = (1 - gamma) ** 2 * b[t - 1] + 2 * gamma * (1 - gamma) * s0 * a[t - 1] + gamma**2 * v0
        if learn_var:
            a[t] = c1 * ((1 - gamma) * a[t - 1] + gamma * s0)
            b[t] = c2 * second
        else:
            a[t], b[t] = s0, v0
            second = v0
        m[t] = (1 - gamma) ** 2 * m[t - 1] + second / n
    return {"sd": _out(a[gens]), "variance": _out(b[gens]), "mean_sq_error": _out(m[gens])}
