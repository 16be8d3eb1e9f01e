"""Closed forms for recursive linear regression (THEORY.md sections 0, 2, 3, 5, 6, 12).

Indexing: every function takes the simulator's generation g (g = 0 is the fit to
the original real sample; a paper's fit or iteration t is g + 1). Rows are
x ~ N(0, Sigma), labels y = x^T w + N(0, noise^2); the test error is
||w_hat - w*||^2_Sigma, the excess risk without label noise (Dohmatob et al.,
Gerstgrasser et al.). ``n`` is the number of labelled samples per generation, ``d``
the dimension. OLS expectations use E[(X^T X)^-1] = Sigma^-1 / (n - d - 1) for
Gaussian rows, finite only for n >= d + 2 (the functions return inf below).
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import FloatOrArray, _out

__all__ = [
    "ols_replace_test_error",
    "ols_accumulate_test_error",
    "ols_accumulate_limit",
    "dohmatob_downstream_test_error",
    "ridge_downstream_test_error",
    "ridge_replace_test_error",
    "minnorm_replace_test_error",
    "label_mixing_factor",
    "ols_weighted_test_error",
    "minnorm_weighted_test_error",
    "optimal_label_mixing_weight",
]


def _gen(g) -> np.ndarray:
    arr = np.asarray(g)
    if not np.issubdtype(arr.dtype, np.integer) or np.any(arr < 0):
        raise ValueError(f"g must be a generation index (int >= 0), got {g!r}")
    return arr.astype(np.int64)


def _pos_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _nonneg(name: str, value) -> float:
    v = float(value)
    if not (v >= 0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def _ols_unit(n: int, d: int) -> float:
    """d / (n - d - 1) = tr(Sigma E[(X^T X)^-1]), inf for n <= d + 1."""
    return d / (n - d - 1) if n >= d + 2 else math.inf


def ols_replace_test_error(g, n: int, d: int, noise: float = 1.0) -> FloatOrArray:
    """E test error of the OLS chain under Replace: (g + 1) sigma^2 d / (n - d - 1).

    Fit t = g + 1 adds independent noise sigma^2 (X^T X)^-1 to the previous fit, for
    a fixed or a fresh design alike (Gerstgrasser et al. 2024, arXiv 2404.01413;
    Dohmatob, Feng, Kempe 2024, arXiv 2402.07712; THEORY.md sections 0 and 2)."""
    g = _gen(g)
    n, d = _pos_int("n", n), _pos_int("d", d)
    return _out(_nonneg("noise", noise) ** 2 * _ols_unit(n, d) * (g + 1.0))


def ols_accumulate_test_error(g, n: int, d: int, noise: float = 1.0) -> FloatOrArray:
    """E test error of the OLS chain under Accumulate on a FIXED design:
    sigma^2 d / (n - d - 1) * sum_{i=1}^{g+1} 1 / i^2 (fit t averages t label
    vectors: w_t = w_{t-1} + (X^T X)^-1 X^T eps_t / t; THEORY.md section 2). A fresh
    design gives slightly less (no closed form)."""
    g = _gen(g)
    n, d = _pos_int("n", n), _pos_int("d", d)
    t_max = int(np.max(g)) + 1 if g.size else 1
    partial = np.cumsum(1.0 / np.arange(1, t_max + 1) ** 2)
    return _out(_nonneg("noise", noise) ** 2 * _ols_unit(n, d) * partial[g])


def ols_accumulate_limit(n: int, d: int, noise: float = 1.0) -> float:
    """The g -> infinity limit of :func:`ols_accumulate_test_error`:
    sigma^2 d / (n - d - 1) * pi^2 / 6 (Gerstgrasser et al.'s bound, attained)."""
    return float(_nonneg("noise", noise) ** 2 * _ols_unit(_pos_int("n", n), _pos_int("d", d)) * math.pi**2 / 6)


def dohmatob_downstream_test_error(
    g, n: int, d: int, noise: float, samples: int, downstream_noise: float
) -> FloatOrArray:
    """E test error of an OLS downstream model fitted on ``samples`` fresh rows
    labelled by generation g of an OLS Replace chain:
    sigma_d^2 d / (T - d - 1) + (g + 1) sigma^2 d / (n - d - 1)
    (Dohmatob, Feng, Kempe 2024, with their n = g + 1; THEORY.md section 3)."""
    t = _pos_int("samples", samples)
    d = _pos_int("d", d)
    return _out(
        _nonneg("downstream_noise", downstream_noise) ** 2 * _ols_unit(t, d) + ols_replace_test_error(g, n, d, noise)
    )


def _wishart_eigenvalues(t: int, d: int, mc: int, seed: int) -> np.ndarray:
    """Eigenvalues of ``mc`` draws of Wishart_d(t, I), from a seeded JAX key (the
    draws are float32; the eigenvalues are computed in float64)."""
    import jax

    x = np.asarray(jax.random.normal(jax.random.key(seed), (mc, t, d)), dtype=np.float64)
    return np.linalg.eigvalsh(np.einsum("mti,mtj->mij", x, x))


def _draw_average(g: np.ndarray, per_draw) -> tuple[FloatOrArray, FloatOrArray]:
    """(mean, standard error) over the Wishart draws of ``per_draw(g_i)`` for every
    generation in ``g``, shaped like ``g``: the two ridge laws' own Monte Carlo."""
    values, ses = [], []
    for gi in np.ravel(g):  # any shape of g, scalars included
        per = per_draw(gi)
        values.append(per.mean())
        ses.append(per.std(ddof=1) / math.sqrt(len(per)))
    shape = np.shape(g)
    return _out(np.reshape(values, shape)), _out(np.reshape(ses, shape))


def _ridge_spectrum(mu: np.ndarray, shrink: float) -> tuple[np.ndarray, np.ndarray]:
    """Per eigenvalue mu of G = X^T X: the ridge shrinkage r = mu / (mu + shrink) and
    the noise gain mu / (mu + shrink)^2 of (G + shrink I)^-1 X^T; both 0 on G's null
    space when shrink = 0 (the minimum-norm convention)."""
    live = mu + shrink > 1e-12 * max(1.0, float(mu.max()))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(live, mu / (mu + shrink), 0.0), np.where(live, mu / (mu + shrink) ** 2, 0.0)


def ridge_downstream_test_error(
    g,
    n: int,
    d: int,
    noise: float,
    samples: int,
    downstream_noise: float,
    downstream_lam: float,
    w_star_sq: float,
    *,
    mc: int = 4000,
    seed: int = 0,
) -> tuple[FloatOrArray, FloatOrArray]:
    """E test error of a RIDGE downstream model (penalty lam per point, as
    :class:`collapse_jax.Ridge`) on ``samples`` = T fresh rows labelled by
    generation g of an OLS Replace chain, Sigma = I (THEORY.md section 3):

        E||(R - I) w*||^2 + sigma_d^2 E tr(A G A) + (g + 1) sigma^2 / (n - d - 1) E tr(R^T R)

    with G = X^T X (T x d downstream design), A = (G + T lam I)^-1, R = A G. The
    three expectations over G ~ Wishart_d(T, I) have no closed form: they are
    evaluated by their OWN Monte Carlo over ``mc`` draws of G's eigenvalues mu
    (R has eigenvalues mu / (mu + T lam), A G A mu / (mu + T lam)^2, and by
    rotational invariance E||(R - I) w*||^2 = ||w*||^2 E tr((R - I)^2) / d). For
    lam = 0 and T < d the minimum-norm convention gives R = 0 on G's null space.

    Returns (value, Monte Carlo standard error of the value), both per g.
    """
    g = _gen(g)
    t, d, n = _pos_int("samples", samples), _pos_int("d", d), _pos_int("n", n)
    lam = _nonneg("downstream_lam", downstream_lam)
    mu = _wishart_eigenvalues(t, d, _pos_int("mc", mc, 2), seed)
    r, aga = _ridge_spectrum(mu, t * lam)
    bias = _nonneg("w_star_sq", w_star_sq) * np.sum((1 - r) ** 2, axis=1) / d
    var_d = _nonneg("downstream_noise", downstream_noise) ** 2 * np.sum(aga, axis=1)
    chain_unit = _nonneg("noise", noise) ** 2 / (n - d - 1) if n >= d + 2 else math.inf
    tr_rr = np.sum(r**2, axis=1)
    return _draw_average(g, lambda gi: bias + var_d + (gi + 1) * chain_unit * tr_rr)


def ridge_replace_test_error(
    g,
    n: int,
    d: int,
    noise: float,
    lam: float,
    w_star_sq: float,
    *,
    mc: int = 4000,
    seed: int = 0,
) -> tuple[FloatOrArray, FloatOrArray]:
    """E ||w_g - w*||^2 of a RIDGE chain refitted at every generation (penalty lam per
    point, as :class:`collapse_jax.Ridge`) under Replace on a FIXED design of n rows,
    Sigma = I (THEORY.md section 11, item 4) [DERIVED]:

        w_g = A^(g+1) w* + sum_{j=0}^{g} A^j B eps_(g-j),  A = (G + n lam I)^-1 G,
        B = (G + n lam I)^-1 X^T,  G = X^T X,

    so in G's eigenbasis (eigenvalues mu_i, shrinkage r_i = mu_i / (mu_i + n lam))

        E||w_g - w*||^2 = E sum_i [ ||w*||^2 / d (1 - r_i^(g+1))^2
                                    + sigma^2 mu_i / (mu_i + n lam)^2 sum_{j=0}^{g} r_i^(2j) ]

    (G's eigenvectors are Haar-distributed and independent of its eigenvalues, so the
    bias averages ||w*||^2 / d per direction). The shrinkage compounds: the bias tends to
    ||w*||^2 while the noise stays bounded, unlike OLS (lam = 0: (g + 1) sigma^2 d / (n -
    d - 1)). The expectation over G ~ Wishart_d(n, I) is evaluated by its OWN Monte
    Carlo over ``mc`` draws of the eigenvalues; lam = 0 with n < d is the minimum-norm
    chain (r = 0 on G's null space). A fresh design per generation has no such form
    (the A_t of different generations do not commute).

    Returns (value, Monte Carlo standard error of the value), both per g.
    """
    g = _gen(g)
    n, d = _pos_int("n", n), _pos_int("d", d)
    lam = _nonneg("lam", lam)
    mu = _wishart_eigenvalues(n, d, _pos_int("mc", mc, 2), seed)
    r, step_var = _ridge_spectrum(mu, n * lam)
    w_sq, sigma2 = _nonneg("w_star_sq", w_star_sq), _nonneg("noise", noise) ** 2
    r2 = r * r

    def per_draw(gi):
        t = int(gi) + 1
        with np.errstate(invalid="ignore", divide="ignore"):
            geometric = np.where(r2 < 1.0 - 1e-12, (1.0 - r2**t) / (1.0 - r2), float(t))
        return np.sum(w_sq / d * (1.0 - r**t) ** 2 + sigma2 * step_var * geometric, axis=1)

    return _draw_average(g, per_draw)


def minnorm_replace_test_error(g, n: int, d: int, noise: float = 1.0, w_star_sq: float = 1.0) -> FloatOrArray:
    """E ||w_g - w*||^2 of the minimum-norm interpolator chain under Replace on a
    fixed design, Sigma = I, d >= n + 2 (THEORY.md section 12):
    (1 - n/d) ||w*||^2 + (g + 1) sigma^2 n / (d - n - 1). The first term is the
    part of w* outside the design's row space, never learned."""
    g = _gen(g)
    n, d = _pos_int("n", n), _pos_int("d", d)
    unit = n / (d - n - 1) if d >= n + 2 else math.inf
    return _out((1 - n / d) * _nonneg("w_star_sq", w_star_sq) + _nonneg("noise", noise) ** 2 * unit * (g + 1.0))


def label_mixing_factor(g, real_weight: float) -> FloatOrArray:
    """c_g of fixed-design label mixing (Weighted with ratio 1: theta = w theta(real)
    + (1 - w) theta(synth), which for least squares on one design equals one fit on
    the mixed labels): c_0 = 1, c_t = w^2 + (1 - w)^2 + (1 - w)^2 c_{t-1}; the fit's
    noise covariance is c_g times a single fit's (THEORY.md sections 5 and 6)."""
    g = _gen(g)
    w = float(real_weight)
    if not 0 <= w <= 1:
        raise ValueError(f"real_weight must lie in [0, 1], got {real_weight!r}")
    t_max = int(np.max(g)) if g.size else 0
    c = np.empty(t_max + 1)
    c[0] = 1.0
    for t in range(1, t_max + 1):
        c[t] = w * w + (1 - w) ** 2 * (1 + c[t - 1])
    return _out(c[g])


def ols_weighted_test_error(g, n: int, d: int, noise: float, real_weight: float) -> FloatOrArray:
    """E test error of fixed-design OLS under label mixing with real weight w:
    c_g sigma^2 d / (n - d - 1) (:func:`label_mixing_factor`); the steady state
    (w^2 + (1 - w)^2) / (1 - (1 - w)^2) is smallest at w = 1/phi (He, Xu, Cheng,
    arXiv 2502.18049, with k = 1; Garg et al. arXiv 2509.22341)."""
    return _out(
        _nonneg("noise", noise) ** 2
        * _ols_unit(_pos_int("n", n), _pos_int("d", d))
        * label_mixing_factor(g, real_weight)
    )


def minnorm_weighted_test_error(
    g, n: int, d: int, noise: float, real_weight: float, w_star_sq: float = 1.0
) -> FloatOrArray:
    """Minimum-norm interpolation (fixed design, Sigma = I, d >= n + 2) under label
    mixing: (1 - n/d) ||w*||^2 + c_g sigma^2 n / (d - n - 1). The bias does not
    depend on the weight; the variance is minimised at w = 1/phi (Garg,
    Bhattacharya, Sur 2025, arXiv 2509.22341; THEORY.md section 6)."""
    n, d = _pos_int("n", n), _pos_int("d", d)
    unit = n / (d - n - 1) if d >= n + 2 else math.inf
    c = label_mixing_factor(g, real_weight)
    return _out((1 - n / d) * _nonneg("w_star_sq", w_star_sq) + _nonneg("noise", noise) ** 2 * unit * np.asarray(c))


def optimal_label_mixing_weight() -> float:
    """argmin_w (w^2 + (1 - w)^2) / (1 - (1 - w)^2) = 1/phi = (sqrt 5 - 1) / 2."""
    return (math.sqrt(5.0) - 1.0) / 2.0
