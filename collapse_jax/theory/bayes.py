"""Bayesian learners in the chain: the known-variance Gaussian mean with a conjugate
Normal prior N(m0, tau^2 I) refitted from the same prior every generation (Replace),
for the three ways of generating the next data set (docs/THEORY.md section 12, there
derived for the stationary state; here the whole trajectory).

Notation: sigma^2 the known per-coordinate variance, n points per generation,
n0 = sigma^2 / tau^2 (the prior's weight in points), rho = n / (n + n0), and
s^2 = sigma^2 / (n + n0) the posterior variance of each coordinate of the mean. With
the prior centred on the truth (m0 = mu_0) the posterior mean's error obeys
e_g = rho (e_(g-1) + xi_g), E xi_g^2 = v per coordinate, where

    plugin    (data from N(posterior mean, sigma^2)):           v = sigma^2 / n
    posterior (one mean drawn from the posterior, then n points): v = sigma^2 / n + s^2
    marginal  (every point from the posterior predictive):        v = (sigma^2 + s^2) / n

and generation 0 (real data) has E e_0^2 = rho^2 sigma^2 / n. Hence per coordinate
E e_g^2 = rho^(2g) rho^2 sigma^2/n + v rho^2 (1 - rho^(2g)) / (1 - rho^2), the stationary
value rho^2 v / (1 - rho^2), and without a prior (tau -> inf, rho = 1) linear growth
sigma^2/n + g v. A prior off the truth (m0 != mu_0) adds the bias
b_g = rho b_(g-1) + (1 - rho)(m0 - mu_0), b_0 = (1 - rho)(m0 - mu_0), i.e. b_g = (1 -
rho^(g+1)) (m0 - mu_0): the chain is pulled to the prior mean, and E||e_g||^2 gains
||b_g||^2.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

Predictive = Literal["plugin", "posterior", "marginal"]
PREDICTIVES = get_args(Predictive)

__all__ = [
    "PREDICTIVES",
    "known_variance_mean_sq_error",
    "known_variance_steady_state",
    "regression_flat_prior_moments",
    "replace_moments",
]


def _check(n, sigma2, tau2, predictive):
    if predictive not in PREDICTIVES:
        raise ValueError(f"predictive must be one of {PREDICTIVES}, got {predictive!r}")
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if not sigma2 > 0:
        raise ValueError(f"sigma2 must be > 0, got {sigma2!r}")
    if not tau2 > 0:
        raise ValueError(f"tau2 must be > 0 (np.inf: no prior), got {tau2!r}")
    n0 = 0.0 if np.isinf(tau2) else sigma2 / tau2
    rho = n / (n + n0)
    s2 = sigma2 / (n + n0)
    v = {"plugin": sigma2 / n, "posterior": sigma2 / n + s2, "marginal": (sigma2 + s2) / n}[predictive]
    return rho, v


def known_variance_mean_sq_error(
    g, n: int, sigma2: float, tau2: float, predictive: Predictive, dim: int = 1, prior_offset=0.0
) -> np.ndarray:
    """E||posterior mean_g - mu_0||^2 under Replace, generation(s) ``g`` >= 0.

    Args:
        g: generation(s).
        n: points per generation.
        sigma2: the known variance (per coordinate; the truth is N(mu_0, sigma2 I)).
        tau2: the prior variance per coordinate (``np.inf``: a flat prior, plug-in MLE).
        predictive: "plugin", "posterior" or "marginal".
        dim: dimension d.
        prior_offset: m0 - mu_0 (a scalar for every coordinate, or a (d,) vector).
    """
    rho, v = _check(n, sigma2, tau2, predictive)
    g = np.asarray(g, dtype=np.float64)
    if rho == 1.0:
        var = sigma2 / n + g * v
    else:
        r2g = rho ** (2 * g)
        var = r2g * rho**2 * sigma2 / n + v * rho**2 * (1 - r2g) / (1 - rho**2)
    off = np.broadcast_to(np.asarray(prior_offset, dtype=np.float64), (dim,))
    bias2 = np.sum(off**2) * (1 - rho ** (g + 1)) ** 2
    return dim * var + bias2


def known_variance_steady_state(n: int, sigma2: float, tau2: float, predictive: Predictive, dim: int = 1) -> float:
    """lim_g E||posterior mean_g - mu_0||^2 for a prior centred on the truth:
    d rho^2 v / (1 - rho^2) (docs/THEORY.md section 12); infinite without a prior."""
    rho, v = _check(n, sigma2, tau2, predictive)
    if rho == 1.0:
        return float("inf")
    return float(dim * rho**2 * v / (1 - rho**2))


def replace_moments(
    generations: int,
    n: int,
    predictive: Predictive,
    *,
    dim: int = 1,
    trace_cov0: float | None = None,
    prior_offset=0.0,
    known_variance: float | None = None,
    prior_var: float = 1.0,
    prior_count: float = 1.0,
    prior_df: float | None = None,
    prior_scale_trace: float | None = None,
) -> dict[str, np.ndarray]:
    """Exact E||m_g - mu_0||^2 (``mean_sq_error`` of the posterior mean) and
    E[tr E[Sigma | D_g]] (``trace_cov``; d s2 with a known variance) for g = 0 ..
    generations, under Replace, for :class:`collapse_jax.BayesGaussian` in every
    predictive mode, known variance or Normal-Inverse-Wishart [derived here; checked by
    the tests against simulation].

    Derivation. Let the model generating generation g's data have mean mu' and
    covariance Sigma' with c = E||mu' - mu_0||^2, U = E tr Sigma' (the real data at
    generation 0: c = 0, U = tr Sigma_0) and b = E[mu' - mu_0]. Whatever the mode, the n
    points are i.i.d. given the posterior with that mean and covariance, so with
    rho = n / kappa_n, delta = m0 - mu_0 and E[x_bar - mu_0] = b:

        E||x_bar - mu_0||^2 = c + U / n,     E tr S = (n - 1) U,
        a = E||m - mu_0||^2 = rho^2 (c + U/n) + 2 rho (1 - rho) delta.b + (1 - rho)^2 ||delta||^2,
        E tr Psi_n = tr Psi_0 + (n - 1) U + (kappa0 n / kappa_n)(c + U/n - 2 delta.b + ||delta||^2),
        T = E tr E[Sigma | D] = E tr Psi_n / (nu_n - d - 1)    (known variance: d s2),
        b' = rho b + (1 - rho) delta.

    The next generating model: plugin (c, U) = (a, T); posterior (one draw
    mu* ~ N(m, Sigma*/kappa_n), Sigma* ~ IW(nu_n, Psi_n), E Sigma* = E[Sigma | D]):
    (a + T / kappa_n, T); marginal (every point from the predictive, covariance
    E[Sigma | D] (1 + 1/kappa_n)): (a, T (1 + 1/kappa_n)). Known variance: kappa0 =
    s2 / tau^2 and T = d s2 throughout, which reproduces
    :func:`known_variance_mean_sq_error`.
    """
    if predictive not in PREDICTIVES:
        raise ValueError(f"predictive must be one of {PREDICTIVES}, got {predictive!r}")
    d = int(dim)
    delta = np.broadcast_to(np.asarray(prior_offset, dtype=np.float64), (d,))
    dd = float(delta @ delta)
    if known_variance is not None:
        k0 = known_variance / prior_var
        t_fixed = d * known_variance
        tr0 = t_fixed if trace_cov0 is None else trace_cov0
    else:
        k0 = float(prior_count)
        nu0 = float(d + 2) if prior_df is None else float(prior_df)
        psi_tr = float(d) if prior_scale_trace is None else float(prior_scale_trace)
        tr0 = float(d) if trace_cov0 is None else trace_cov0
        if nu0 + n <= d + 1:
            raise ValueError("replace_moments: nu0 + n must exceed d + 1")
    kn = k0 + n
    rho = n / kn
    c, u, b = 0.0, tr0, np.zeros(d)
    mse = np.empty(generations + 1)
    tr_cov = np.empty(generations + 1)
    for g in range(generations + 1):
        a = rho**2 * (c + u / n) + 2 * rho * (1 - rho) * float(delta @ b) + (1 - rho) ** 2 * dd
        if known_variance is not None:
            t = t_fixed
        else:
            e_psi = psi_tr + (n - 1) * u + (k0 * n / kn) * (c + u / n - 2 * float(delta @ b) + dd)
            t = e_psi / (nu0 + n - d - 1)
        b = rho * b + (1 - rho) * delta
        mse[g], tr_cov[g] = a, t
        if predictive == "plugin":
            c, u = a, t
        elif predictive == "posterior":
            c, u = a + t / kn, t
        else:
            c, u = a, t * (1 + 1 / kn)
    return {"mean_sq_error": mse, "trace_cov": tr_cov}


def regression_flat_prior_moments(
    generations: int,
    n: int,
    dim: int,
    predictive: Literal["plugin", "posterior"],
    *,
    noise2: float = 1.0,
    prior_shape: float = 2.0,
) -> dict[str, np.ndarray]:
    """E||m_g - w*||^2 (``param_sq_error``) and E[E[sigma^2 | D_g]] (``noise_variance``)
    of :class:`collapse_jax.BayesLinearRegression` under Replace, fresh Gaussian inputs
    x ~ N(0, I_d), in the flat-prior limit (prior_var -> inf, prior_rate -> 0, shape a0
    kept), for ``plugin`` and ``posterior`` [derived here; checked by the tests].

    With n rows, E tr (X^T X)^-1 = d / (n - d - 1), and the residual sum of squares
    independent of X^T X with mean (n - d) sigma'^2. If the generating model has
    c = E||w' - w*||^2 and V = E sigma'^2 (real data: 0 and noise2):

        a = c + V d / (n - d - 1),    T = E[b_n / (a_n - 1)] = (n - d) V / (2 a0 + n - 2),

    and the next generating model is (a, T) for plugin, (a + T d / (n - d - 1), T) for
    posterior (one draw w ~ N(m_n, sigma^2 Lambda_n^-1), sigma^2 ~ InvGamma(a_n, b_n)).
    Needs n >= d + 2."""
    if predictive not in ("plugin", "posterior"):
        raise ValueError(f"predictive must be 'plugin' or 'posterior' here, got {predictive!r}")
    if n < dim + 2:
        raise ValueError(f"n must be >= dim + 2, got n = {n}, dim = {dim}")
    k = dim / (n - dim - 1)
    r = (n - dim) / (2 * prior_shape + n - 2)
    c, v = 0.0, float(noise2)
    err = np.empty(generations + 1)
    s2 = np.empty(generations + 1)
    for g in range(generations + 1):
        a = c + v * k
        t = r * v
        err[g], s2[g] = a, t
        c, v = (a, t) if predictive == "plugin" else (a + t * k, t)
    return {"param_sq_error": err, "noise_variance": s2}
