"""Exact results for selected synthetic data: curation by a reward, verification, partial
editing and a fixed teacher's labels.

* Curation (Ferbach, Bertrand, Bose, Gidel, NeurIPS 2024, arXiv 2407.09499): every
  synthetic point is picked from K i.i.d. candidates of the current model by a reward r,
  by the Luce / Bradley-Terry choice rule (``"luce"``), by the best candidate
  (``"top1"``), or in the K -> infinity limit, the tilt q ~ p exp(beta r) (``"tilt"``).
  For a categorical model refitted by frequencies the chain is a Markov chain on the
  count vectors, solved exactly (:func:`selection_probs`, :func:`curation_chain`,
  :func:`fixation_probabilities`); for a 1-D Gaussian with a linear or quadratic reward
  the tilt keeps the model Gaussian (:func:`gaussian_tilt_moments`,
  :func:`gaussian_tilt_population`).
* Verification (Feng, Dohmatob, Yang, Charton, Kempe, ICLR 2025, arXiv 2406.07515): a
  verifier keeps the synthetic points that it judges good, with false accepts and
  false rejects (:func:`verified_gaussian_law`, :func:`label_verification_rate`).
* Strong model collapse (Dohmatob, Feng, Subramonian, Kempe, ICLR 2025, arXiv
  2410.04840): a fixed fraction of the labels comes from a wrong teacher, and the OLS
  error plateaus at p^2 Delta^2 however many points are added
  (:func:`strong_collapse_error`, :func:`strong_collapse_plateau`).
* Token-level editing (ToEdit; Zhu et al., ICML 2025, arXiv 2412.14689): each
  generation relabels only a fraction of the points by the current model
  (:func:`edit_ols_error`, :func:`edit_ols_error_gaussian`).

Indexing as everywhere in :mod:`collapse_jax.theory`: generation 0 is the fit to the real
data; generation g has had g + 1 fits. Shares of n are rounded as the simulator rounds
them, floor(fraction n + 1/2). Pure numpy float64. Every formula is [DERIVED] here
(THEORY.md section 17) and checked against an independent numpy Monte Carlo in
``tests/test_theory_selection.py``.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._hostmath import scipy_special
from ._checks import (
    Estimator,
    FloatOrArray,
    _count,
    _delta,
    _fraction,
    _generations,
    _integer,
    _out,
    _positive,
)
from ._curation import _finite, _non_negative, _scale
from ._curation import curation_chain as curation_chain
from ._curation import fixation_probabilities as fixation_probabilities
from ._curation import selection_probs as selection_probs

__all__ = [
    "curation_chain",
    "edit_ols_error",
    "edit_ols_error_gaussian",
    "fixation_probabilities",
    "gaussian_tilt_moments",
    "gaussian_tilt_population",
    "label_verification_rate",
    "selection_probs",
    "strong_collapse_error",
    "strong_collapse_plateau",
    "verified_gaussian_law",
]


# --------------------------------------------------------------------------------------
# Gaussian tilting
# --------------------------------------------------------------------------------------


def gaussian_tilt_moments(
    g: ArrayLike,
    n: int,
    b: float,
    mu0: float = 0.0,
    var0: float = 1.0,
    scale: float = 1.0,
    estimator: Estimator = "mle",
) -> dict[str, FloatOrArray]:
    """Moments of the 1-D Gaussian Replace chain curated by the tilt with a linear reward.

    The tilt of N(mu, s2) by exp(beta b x) is N(mu + beta b s2, s2). Generation 0 fits n
    real points from N(mu0, var0); generation g fits n points of the tilted fit g - 1
    (mean: sample mean; variance: sum of squares / (n - delta)). With W_j ~ chi2_{n-1} /
    (n - delta) and Z_j ~ N(0, 1), all independent, a = beta b, rho = E W = (n - 1)/(n -
    delta), rho2 = E W^2 = (n - 1)(n + 1)/(n - delta)^2:

        s2_g = var0 W_0 ... W_g,   mu_g = mu_{g-1} + a s2_{g-1} + sqrt(s2_{g-1} / n) Z_g,

    so E[s2_g] = var0 rho^(g+1), E[mu_g] = mu0 + a var0 sum_{j<g} rho^(j+1) and

        Var(mu_g) = a^2 sum_{j,k<g} Cov(s2_j, s2_k) + (var0 / n) sum_{j<=g} rho^j,
        Cov(s2_j, s2_k) = var0^2 rho^(k-j) (rho2^(j+1) - rho^(2j+2)),  j <= k,

    (the drift a S_g, S_g = sum_{j<g} s2_j, is uncorrelated with the noise: the Z's are
    independent of every W).

    Args:
        g: generation(s), g >= 0.
        n: points per generation, n >= 2.
        b: the reward's slope (any finite number).
        mu0: the real mean.
        var0: the real variance > 0.
        scale: beta >= 0.
        estimator: "mle" (delta = 0) or "unbiased" (delta = 1).

    Returns:
        ``{"mean": E[mu_g], "variance": E[s2_g], "mean_var": Var(mu_g)}``, floats or
        arrays shaped like ``g``.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (the tilt: Ferbach et al., NeurIPS 2024, arXiv 2407.09499).
    """
    gens = _generations(g)
    n = _integer(n, "n", 2)
    a = _scale(scale) * _finite(b, "b")
    mu0 = _finite(mu0, "mu0")
    v0 = _positive(var0, "var0")
    delta = _delta(estimator)
    rho = (n - 1) / (n - delta)
    top = int(gens.max()) if gens.size else 0
    k = np.arange(top + 1, dtype=np.float64)
    e_s2 = v0 * rho ** (k + 1.0)
    mean = mu0 + a * np.concatenate([[0.0], np.cumsum(e_s2[:-1])])
    # Cov(s2_j, s2_k), j <= k: var0^2 rho^(k - j) rho^(2j + 2) ((rho2 / rho^2)^(j + 1) - 1), rho2 / rho^2 = (n+1)/(n-1)
    j = np.minimum.outer(k, k)
    cov = (
        v0
        * v0
        * rho ** (np.abs(k[:, None] - k[None, :]) + 2.0 * j + 2.0)
        * np.expm1((j + 1.0) * math.log1p(2.0 / (n - 1)))
    )
    drift_var = np.concatenate([[0.0], np.diagonal(cov.cumsum(axis=0).cumsum(axis=1))[:-1]])
    noise = v0 / n * np.cumsum(rho**k)
    return {"mean": _out(mean[gens]), "variance": _out(e_s2[gens]), "mean_var": _out((a * a * drift_var + noise)[gens])}


def gaussian_tilt_population(
    g: ArrayLike, b: float, c: float, mu0: float = 0.0, var0: float = 1.0, scale: float = 1.0
) -> tuple[FloatOrArray, FloatOrArray]:
    """The n = infinity tilted chain with the quadratic reward r(x) = b x - (c/2) x^2.

    The tilt of N(mu, s2) by exp(beta r) is Gaussian with precision 1/s2 + beta c and
    precision-weighted mean mu/s2 + beta b; both add up over generations, from (mu0,
    var0) at generation 0:

        1/s2_g = 1/var0 + g beta c,   mu_g = (mu0/var0 + g beta b) s2_g.

    c > 0: the chain converges to the reward's maximiser b/c with variance ~ 1/(g beta c);
    c = 0: the mean moves by beta b var0 per generation, the variance stays.

    Args:
        g: generation(s), g >= 0.
        b: the reward's slope (finite).
        c: the reward's curvature, c >= 0.
        mu0: the real mean.
        var0: the real variance > 0.
        scale: beta >= 0.

    Returns:
        (mu_g, s2_g), floats or arrays shaped like ``g``.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (the tilt: Ferbach et al., NeurIPS 2024, arXiv 2407.09499).
    """
    gens = _generations(g).astype(np.float64)
    beta = _scale(scale)
    b = _finite(b, "b")
    c = _non_negative(c, "c")
    mu0 = _finite(mu0, "mu0")
    v0 = _positive(var0, "var0")
    s2 = 1.0 / (1.0 / v0 + gens * beta * c)
    return _out((mu0 / v0 + gens * beta * b) * s2), _out(s2)


# --------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------


def _support_z(support: object) -> float:
    """z = Phi^-1((1 + support) / 2): the half-width, in verifier sds, of the good set."""
    s = _fraction(support, "support")
    return math.inf if s == 1.0 else NormalDist().inv_cdf(0.5 + 0.5 * s)


def _verifier_errors(false_accept: object, false_reject: object) -> tuple[float, float]:
    fa = _fraction(false_accept, "false_accept")
    fr = _fraction(false_reject, "false_reject")
    return fa, fr


def verified_gaussian_law(
    mu: float,
    s2: float,
    centre: float,
    sv: float,
    support: float,
    false_accept: float = 0.0,
    false_reject: float = 0.0,
) -> tuple[float, float, float]:
    """The law of the points that a verifier keeps from the model N(mu, s2).

    A point is good when ``|x - centre| <= z sv``, z = Phi^-1((1 + support)/2); the verifier
    accepts a good point with probability 1 - false_reject and a bad one with probability
    false_accept, independently. With Y = (x - mu)/s, the good set alpha <= Y <= beta
    (alpha = (centre - z sv - mu)/s, beta = (centre + z sv - mu)/s), P = Phi(beta) -
    Phi(alpha), and the partial moments

        E[Y; good] = phi(alpha) - phi(beta),  E[Y^2; good] = P + alpha phi(alpha) - beta phi(beta)

    (the bad set's are (0, 1) minus these), the acceptance rate is A = (1 - f_r) P + f_a
    (1 - P) and the kept law's first two moments are the accepted partial moments over A.

    The kept points are i.i.d. from this law, so a generation fitted to n kept points
    has E[mean] = kept_mean and E[mle variance] = kept_var (n - 1)/n (kept_var for the
    unbiased estimator), whatever the law's shape.

    Args:
        mu: the model's mean.
        s2: the model's variance > 0.
        centre: the verifier's centre.
        sv: the verifier's sd > 0.
        support: the verifier's central mass in [0, 1] (1: every point is good).
        false_accept: f_a in [0, 1], the probability of accepting a bad point.
        false_reject: f_r in [0, 1], the probability of rejecting a good point.

    Returns:
        (acceptance_rate, kept_mean, kept_var).

    Raises:
        ValueError: naming the bad argument and its value, or when nothing is ever
            accepted (acceptance rate 0).

    Source: THEORY.md section 17 (Feng et al., ICLR 2025, arXiv 2406.07515).
    """
    mu = _finite(mu, "mu")
    sd = math.sqrt(_positive(s2, "s2"))
    centre = _finite(centre, "centre")
    sv = _positive(sv, "sv")
    z = _support_z(support)
    fa, fr = _verifier_errors(false_accept, false_reject)
    if math.isinf(z):
        good, m1_good, m2_good = 1.0, 0.0, 1.0
    else:
        special = scipy_special()
        lo, hi = (centre - z * sv - mu) / sd, (centre + z * sv - mu) / sd
        # P(lo <= Y <= hi) from the nearer tail, so a far window keeps its precision
        good = float(special.ndtr(-lo) - special.ndtr(-hi)) if lo > 0 else float(special.ndtr(hi) - special.ndtr(lo))
        phi_lo, phi_hi = math.exp(-0.5 * lo * lo), math.exp(-0.5 * hi * hi)
        phi_lo, phi_hi = phi_lo / math.sqrt(2 * math.pi), phi_hi / math.sqrt(2 * math.pi)
        m1_good = phi_lo - phi_hi
        m2_good = good + lo * phi_lo - hi * phi_hi
    rate = (1 - fr) * good + fa * (1 - good)
    if not rate > 0:
        raise ValueError(
            "the verifier accepts nothing: the model puts no mass on the good set with false_reject=1 or "
            f"false_accept=0 (support={support!r}, false_accept={false_accept!r}, false_reject={false_reject!r})"
        )
    m1 = ((1 - fr) * m1_good + fa * (0.0 - m1_good)) / rate
    m2 = ((1 - fr) * m2_good + fa * (1.0 - m2_good)) / rate
    return rate, mu + sd * m1, sd * sd * max(m2 - m1 * m1, 0.0)


def label_verification_rate(
    w: ArrayLike,
    w_v: ArrayLike,
    noise: float,
    support: float,
    false_accept: float = 0.0,
    false_reject: float = 0.0,
) -> FloatOrArray:
    """The acceptance rate of synthetic regression labels checked by a verifier.

    x ~ N(0, I_d), the label y = x^T w + noise eps from the model w; the verifier with
    coefficients w_v calls the label good when ``|y - x^T w_v| <= z noise``, z =
    Phi^-1((1 + support)/2), and accepts good labels with probability 1 - f_r, bad ones
    with f_a.
    Since y - x^T w_v ~ N(0, ||w - w_v||^2 + noise^2),

        P(good) = 2 Phi(z noise / sqrt(||w - w_v||^2 + noise^2)) - 1,
        rate = (1 - f_r) P(good) + f_a (1 - P(good)).

    w = w_v gives support (1 - f_r) + (1 - support) f_a.

    Args:
        w: the model's coefficients, shape (d,) or (..., d).
        w_v: the verifier's coefficients, broadcastable against ``w``.
        noise: the label noise sd > 0.
        support: the verifier's central mass in [0, 1].
        false_accept: f_a in [0, 1].
        false_reject: f_r in [0, 1].

    Returns:
        The acceptance rate, a float, or an array of ``w``'s and ``w_v``'s broadcast
        leading shape.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Feng et al., ICLR 2025, arXiv 2406.07515).
    """
    wm = np.atleast_1d(np.asarray(w, dtype=np.float64))
    wv = np.atleast_1d(np.asarray(w_v, dtype=np.float64))
    if not np.all(np.isfinite(wm)):
        raise ValueError(f"w must hold finite numbers, got {w!r}")
    if not np.all(np.isfinite(wv)):
        raise ValueError(f"w_v must hold finite numbers, got {w_v!r}")
    try:
        diff = wm - wv
    except ValueError:
        raise ValueError(f"w_v must broadcast against w, got shapes {wm.shape} and {wv.shape}") from None
    sigma = _positive(noise, "noise")
    z = _support_z(support)
    fa, fr = _verifier_errors(false_accept, false_reject)
    if math.isinf(z):
        good = np.ones(diff.shape[:-1])
    else:
        spread = np.sqrt(np.sum(diff * diff, axis=-1) + sigma * sigma)
        good = 2.0 * scipy_special().ndtr(z * sigma / spread) - 1.0
    return _out((1 - fr) * good + fa * (1 - good))


# --------------------------------------------------------------------------------------
# strong model collapse: a fixed teacher's labels
# --------------------------------------------------------------------------------------


def _sample_sizes(n: ArrayLike, minimum: int) -> NDArray[np.int64]:
    arr = np.asarray(n)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer) or np.any(arr < minimum):
        raise ValueError(f"n must be an integer or integer array with every n >= {minimum}, got {n!r}")
    return arr.astype(np.int64)


def strong_collapse_error(n: ArrayLike, teacher_fraction: float, delta: float, noise: float = 1.0) -> FloatOrArray:
    """E[(w_hat - w*)^2] of 1-D OLS (no intercept) on a mix of true and teacher labels.

    x ~ N(0, 1); of the n points, r = floor((1 - p) n + 1/2) carry y = x w* + sigma eps
    and m = n - r carry the fixed teacher's y = x w_T + sigma eps. Then

        w_hat - w* = B Delta + sum(x eps) / sum(x^2),   B = sum_teacher x^2 / sum x^2 ~ Beta(m/2, r/2),

    Delta = w_T - w*, and the two terms are uncorrelated (eps is symmetric), so

        E[(w_hat - w*)^2] = Delta^2 m (m + 2) / (n (n + 2)) + sigma^2 / (n - 2),

    which is also the excess test risk under x ~ N(0, 1). As n grows with m/n -> p the
    variance term vanishes and the error tends to p^2 Delta^2
    (:func:`strong_collapse_plateau`): more data does not help.

    Args:
        n: points per fit, an integer or integer array, n >= 3.
        teacher_fraction: p in [0, 1], the share of teacher labels.
        delta: Delta = w_T - w*, the teacher's error (finite).
        noise: sigma >= 0, the label noise sd (the same for both sources).

    Returns:
        The mean squared parameter error, a float or an array shaped like ``n``.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Dohmatob, Feng, Subramonian, Kempe, ICLR 2025, arXiv 2410.04840).
    """
    sizes = _sample_sizes(n, 3)
    p = _fraction(teacher_fraction, "teacher_fraction")
    d = _finite(delta, "delta")
    sigma = _non_negative(noise, "noise")
    nf = sizes.astype(np.float64)
    m = nf - np.floor((1.0 - p) * nf + 0.5)
    return _out(d * d * m * (m + 2.0) / (nf * (nf + 2.0)) + sigma * sigma / (nf - 2.0))


def strong_collapse_plateau(teacher_fraction: float, delta: float) -> float:
    """lim_{n -> infinity} of :func:`strong_collapse_error`: p^2 Delta^2.

    Args:
        teacher_fraction: p in [0, 1].
        delta: Delta = w_T - w* (finite).

    Returns:
        p^2 Delta^2.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Dohmatob, Feng, Subramonian, Kempe, ICLR 2025, arXiv 2410.04840).
    """
    p = _fraction(teacher_fraction, "teacher_fraction")
    d = _finite(delta, "delta")
    return p * p * d * d


# --------------------------------------------------------------------------------------
# token-level editing (ToEdit) on a fixed OLS design
# --------------------------------------------------------------------------------------


def _design(X: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1 or arr.shape[0] < arr.shape[1] or not np.all(np.isfinite(arr)):
        raise ValueError(f"X must be a finite (n, d) design with n >= d >= 1, got shape {arr.shape}")
    if np.linalg.matrix_rank(arr) < arr.shape[1]:
        raise ValueError(f"X must have full column rank {arr.shape[1]}, got rank {np.linalg.matrix_rank(arr)}")
    return arr


def _edit_error(x: NDArray[np.float64], edited: int, generations: int, sigma2: float) -> NDArray[np.float64]:
    n = x.shape[0]
    pinv = np.linalg.solve(x.T @ x, x.T)  # G^-1 X^T, (d, n)
    resid = np.eye(n) - x @ pinv  # I - H
    f = edited / n
    f2 = edited * (edited - 1) / (n * (n - 1)) if n > 1 else 0.0
    cov = sigma2 * np.eye(n)
    out = np.empty(generations + 1)
    out[0] = np.sum((pinv @ cov) * pinv)
    for g in range(1, generations + 1):
        mc = resid @ cov
        a = mc @ resid
        cov = cov - f * (mc + mc.T) + f2 * a + (f - f2) * np.diag(np.diag(a)) + sigma2 * f * np.eye(n)
        cov = 0.5 * (cov + cov.T)
        out[g] = np.sum((pinv @ cov) * pinv)
    return out


def edit_ols_error(X: ArrayLike, fraction: float, generations: int, noise: float = 1.0) -> NDArray[np.float64]:
    """E||w_g - w*||^2 of the OLS chain with token-level editing, given the design X.

    Generation 0 fits y_0 = X w* + sigma eps_0. Generation g >= 1 picks exactly r =
    floor(fraction n + 1/2) rows uniformly without replacement, relabels them by the
    current model (x_i^T w_{g-1} + sigma eps_i) and keeps the other labels; then refits.
    With e_g = y_g - X w*, H = X G^-1 X^T (G = X^T X) and D_g the 0/1 diagonal of the
    picked rows,

        e_g = e_{g-1} - D_g (I - H) e_{g-1} + sigma D_g eps_g,

    so C_g = E[e_g e_g^T] follows, with f = r/n, A = (I - H) C (I - H) and f2 = r (r -
    1)/(n (n - 1)),

        C_g = C - f ((I - H) C + C (I - H)) + f2 A + (f - f2) diag(A) + sigma^2 f I,

    from C_0 = sigma^2 I, and E||w_g - w*||^2 = tr(G^-1 X^T C_g X G^-1). fraction = 1 is
    Replace, sigma^2 tr(G^-1) (g + 1); fraction = 0 keeps sigma^2 tr(G^-1).

    Args:
        X: the fixed design, shape (n, d), full column rank.
        fraction: the edited share in [0, 1].
        generations: the last generation G >= 0.
        noise: sigma > 0.

    Returns:
        Shape (G + 1,): E||w_g - w*||^2 for g = 0..G, conditional on X.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Zhu et al., ICML 2025, arXiv 2412.14689).
    """
    x = _design(X)
    f = _fraction(fraction, "fraction")
    gens = _integer(generations, "generations", 0)
    sigma = _positive(noise, "noise")
    return _edit_error(x, _count(f, x.shape[0]), gens, sigma * sigma)


def edit_ols_error_gaussian(
    n: int,
    d: int,
    fraction: float,
    generations: int,
    noise: float = 1.0,
    designs: int = 200,
    seed: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`edit_ols_error` averaged over random designs with i.i.d. N(0, 1) entries.

    For comparison with a simulator whose every chain draws its own design: the exact
    conditional error is averaged over ``designs`` designs drawn by
    ``numpy.random.default_rng(seed)``, so the result carries a Monte Carlo error over
    designs, reported as a standard error. (fraction = 1 and 0 have the closed forms
    sigma^2 d (g + 1)/(n - d - 1) and sigma^2 d/(n - d - 1), E tr(G^-1) = d/(n - d - 1).)

    Args:
        n: points, n >= d.
        d: dimension, d >= 1.
        fraction: the edited share in [0, 1].
        generations: the last generation G >= 0.
        noise: sigma > 0.
        designs: number of designs averaged, >= 2.
        seed: the numpy Generator's seed, >= 0.

    Returns:
        (mean, se), each of shape (G + 1,).

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Zhu et al., ICML 2025, arXiv 2412.14689).
    """
    d = _integer(d, "d", 1)
    n = _integer(n, "n", d)
    f = _fraction(fraction, "fraction")
    gens = _integer(generations, "generations", 0)
    sigma = _positive(noise, "noise")
    count = _integer(designs, "designs", 2)
    rng = np.random.default_rng(_integer(seed, "seed", 0))
    edited = _count(f, n)
    errors = np.stack(
        [_edit_error(_design(rng.standard_normal((n, d))), edited, gens, sigma * sigma) for _ in range(count)]
    )
    return errors.mean(axis=0), errors.std(axis=0, ddof=1) / math.sqrt(count)
