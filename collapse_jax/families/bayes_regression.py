"""Conjugate Bayesian linear regression (Normal-Inverse-Gamma) refitted on its own labels.

Model y = x^T w + e, e ~ N(0, sigma^2), inputs x ~ N(0, I_d) fresh in every generation.
Prior w | sigma^2 ~ N(m0, sigma^2 v0 I), sigma^2 ~ InvGamma(a0, b0). Posterior after
(X, y) with weights (counts): Lambda_n = I / v0 + X^T W X, m_n = Lambda_n^-1 (m0 / v0 +
X^T W y), a_n = a0 + sum(W) / 2, b_n = b0 + (y^T W y + m0^T m0 / v0 - m_n^T Lambda_n m_n) / 2.
Every generation starts from the same prior. Predictive modes as
:class:`collapse_jax.BayesGaussian`: ``plugin`` labels with the posterior mean m_n and
noise variance E[sigma^2 | D] = b_n / (a_n - 1) (needs a_n > 1); ``posterior`` draws ONE
(w, sigma^2) per chain and generation; ``marginal`` gives every label its own draw (a
Student t with 2 a_n degrees of freedom around x^T m_n, scale^2 (b_n / a_n)(1 + x^T
Lambda_n^-1 x)).
"""

from __future__ import annotations

import math
from typing import ClassVar, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._rng import as_stream
from .._validate import as_float_array, check_int, check_positive
from ._options import Predictive
from ._protocol import CountWeights, Located, SufficientStats
from .ridge import RegressionData

PREDICTIVES: tuple[Predictive, ...] = get_args(Predictive)


class BLRParams(eqx.Module):
    """One chain's posterior (mean, precision Lambda_n, shape a_n, rate b_n)."""

    mean: Float[Array, " d"]
    precision: Float[Array, "d d"]
    a: Float[Array, ""]
    b: Float[Array, ""]


class LinearTruth(eqx.Module):
    """The truth of a Bayesian regression: y = x^T w_star + N(0, noise_var)."""

    w_star: Float[Array, " d"]
    noise_var: Float[Array, ""]


class BLRStats(eqx.Module):
    """Weighted sufficient statistics: W, X^T W X, X^T W y, y^T W y."""

    count: Float[Array, ""]
    xtx: Float[Array, "d d"]
    xty: Float[Array, " d"]
    yty: Float[Array, ""]


class BayesLinearRegression(SufficientStats, Located, CountWeights):
    """Normal-Inverse-Gamma linear regression (see the module docstring).

    Args:
        dim: number of features d (static).
        w_star: the truth's coefficients (default ones); noise: its noise sd (> 0).
        prior_mean: m0, scalar or (d,) (traced). prior_var: v0 > 0, the prior covariance
            of w in units of sigma^2 (traced). prior_shape a0 > 0, prior_rate b0 > 0 of the
            inverse-gamma prior on sigma^2 (traced).
        predictive: ``"plugin"``, ``"posterior"`` or ``"marginal"`` (static).

    Weights are counts (``Weighted`` is refused). Sample path only.

    Metrics: ``param_sq_error`` ||m_n - w*||^2 (= the test error, inputs having
    identity covariance), ``noise_variance`` E[sigma^2 | D] = b_n / (a_n - 1), and
    ``posterior_width`` sqrt(tr Cov(w | D) / d), Cov(w | D) = E[sigma^2 | D] Lambda_n^-1.
    """

    dim: int = eqx.field(static=True)
    predictive: Predictive = eqx.field(static=True)
    w_star: Float[Array, " d"]
    noise: Float[Array, ""]
    prior_mean: Float[Array, " d"]
    prior_var: Float[Array, ""]
    prior_shape: Float[Array, ""]
    prior_rate: Float[Array, ""]

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "noise": (1e-30, math.inf),
        "prior_var": (1e-30, math.inf),
        "prior_shape": (1e-30, math.inf),
        "prior_rate": (1e-30, math.inf),
    }

    def __init__(
        self,
        dim: int = 5,
        *,
        w_star=None,
        noise: float = 1.0,
        prior_mean=0.0,
        prior_var: float = 1.0,
        prior_shape: float = 2.0,
        prior_rate: float = 1.0,
        predictive: Predictive = "plugin",
    ):
        owner = "BayesLinearRegression"
        d = check_int(f"{owner}: dim", dim, 1)
        if predictive not in PREDICTIVES:
            raise ValueError(f"{owner}: predictive must be one of {PREDICTIVES}, got {predictive!r}")
        vecs = []
        for name, value, default in (("w_star", w_star, 1.0), ("prior_mean", prior_mean, 0.0)):
            v = as_float_array(owner, name, default if value is None else value)
            v = np.full(d, float(v)) if v.ndim == 0 else v
            if v.shape != (d,) or not np.all(np.isfinite(v)):
                raise ValueError(f"{owner}: {name} must be a finite number or vector of shape ({d},), got {value!r}")
            vecs.append(v)
        self.dim, self.predictive = d, predictive
        self.w_star = jnp.asarray(vecs[0], jnp.float32)
        self.prior_mean = jnp.asarray(vecs[1], jnp.float32)
        self.noise = jnp.asarray(check_positive(owner, "noise", noise), jnp.float32)
        self.prior_var = jnp.asarray(check_positive(owner, "prior_var", prior_var), jnp.float32)
        self.prior_shape = jnp.asarray(check_positive(owner, "prior_shape", prior_shape), jnp.float32)
        self.prior_rate = jnp.asarray(check_positive(owner, "prior_rate", prior_rate), jnp.float32)

    def truth(self) -> LinearTruth:
        """The true coefficients and noise variance (not a posterior: real data come
        from :meth:`sample_real`)."""
        return LinearTruth(self.w_star, self.noise**2)

    def blank_fit(self) -> BLRParams:
        d, dtype = self.dim, self.w_star.dtype
        two = jnp.full((), 2.0, dtype)
        return BLRParams(self.w_star, jnp.eye(d, dtype=dtype), two, two)

    def sample_real(self, key, n: int, frame=None) -> RegressionData:
        """``n`` rows x ~ N(0, I) labelled by the truth."""
        s = as_stream(key)
        dtype = self.w_star.dtype
        X = s.child(0).normal((n, self.dim), dtype)
        z = s.child(1).normal((n,), dtype)
        return RegressionData(X, X @ self.w_star + jnp.sqrt(self.noise**2) * z)

    def min_points(self) -> int:
        return 1

    def validate_regime(self, regime, n: int, exact: bool) -> None:
        a_n = float(self.prior_shape) + n / 2
        if self.predictive == "plugin" and a_n <= 1:
            raise ValueError(
                f"BayesLinearRegression: predictive='plugin' needs E[sigma^2 | D] = b_n / (a_n - 1), i.e. "
                f"a_n = prior_shape + n / 2 > 1; got {a_n:g}"
            )

    # ------------------------------------------------------------------ posterior
    def data_stats(self, data: RegressionData, weights) -> BLRStats:
        dtype = data.y.dtype
        w = jnp.ones(data.y.shape, dtype) if weights is None else weights.astype(dtype)
        pos = w > 0
        X = jnp.where(pos[:, None], data.X, 0.0)
        y = jnp.where(pos, data.y, 0.0)
        wx = w[:, None] * X
        return BLRStats(jnp.sum(w), wx.T @ X, wx.T @ y, jnp.sum(w * y * y))

    def merge_stats(self, a: BLRStats, b: BLRStats) -> BLRStats:
        return BLRStats(a.count + b.count, a.xtx + b.xtx, a.xty + b.xty, a.yty + b.yty)

    def fit_stats(self, stats: BLRStats, frame=None) -> BLRParams:
        dtype = stats.xty.dtype
        d = self.dim
        v0 = self.prior_var.astype(dtype)
        m0 = self.prior_mean.astype(dtype)
        prec = stats.xtx + jnp.eye(d, dtype=dtype) / v0
        chol = jnp.linalg.cholesky(prec)
        mean = jax.scipy.linalg.cho_solve((chol, True), stats.xty + m0 / v0)
        a = self.prior_shape.astype(dtype) + 0.5 * stats.count
        quad = stats.yty + jnp.sum(m0 * m0) / v0 - mean @ (prec @ mean)
        b = self.prior_rate.astype(dtype) + 0.5 * jnp.maximum(quad, 0.0)
        return BLRParams(mean, prec, a, b)

    def fit(self, key, data, weights, frame=None) -> BLRParams:
        return self.fit_stats(self.data_stats(data, weights))

    def noise_variance(self, p: BLRParams) -> jax.Array:
        """E[sigma^2 | D] = b_n / (a_n - 1)."""
        return p.b / (p.a - 1)

    def posterior(self, p: BLRParams):
        """The posterior as numpyro distributions: (w | D, a multivariate Student t with
        2 a_n degrees of freedom, location m_n and scale matrix (b_n / a_n) Lambda_n^-1;
        sigma^2 | D ~ InverseGamma(a_n, b_n))."""
        import numpyro.distributions as dist

        scale = (p.b / p.a) * jnp.linalg.inv(p.precision)
        return (
            dist.MultivariateStudentT(2 * p.a, p.mean, jnp.linalg.cholesky(scale)),
            dist.InverseGamma(p.a, p.b),
        )

    # ------------------------------------------------------------------ generation
    def sample(self, key, params: BLRParams, n: int, frame=None) -> RegressionData:
        s = as_stream(key)
        dtype = params.mean.dtype
        d = self.dim
        X = s.child(0).normal((n, d), dtype)
        z = s.child(1).normal((n,), dtype)
        if self.predictive == "plugin":
            return RegressionData(X, X @ params.mean + jnp.sqrt(self.noise_variance(params)) * z)
        chol = jnp.linalg.cholesky(params.precision)
        if self.predictive == "posterior":
            sigma2 = params.b / jax.random.gamma(s.child(2).key(), params.a, dtype=dtype)
            u = jax.scipy.linalg.solve_triangular(chol.T, s.child(3).normal((d,), dtype), lower=False)
            w = params.mean + jnp.sqrt(sigma2) * u  # Cov = sigma2 Lambda^-1
            return RegressionData(X, X @ w + jnp.sqrt(sigma2) * z)
        # marginal: every label from the predictive t_{2a}(x^T m, (b/a)(1 + x^T Lambda^-1 x))
        v = jax.scipy.linalg.solve_triangular(chol, X.T, lower=True)  # Lambda^-1 quadratic form
        spread = 1 + jnp.sum(v * v, axis=0)
        chi2 = 2.0 * jax.random.gamma(s.child(2).key(), params.a, shape=(n,), dtype=dtype)
        t = z * jnp.sqrt(2 * params.a / chi2)
        return RegressionData(X, X @ params.mean + jnp.sqrt(params.b / params.a * spread) * t)

    # ------------------------------------------------------------------ metrics
    def metrics(self, key, params: BLRParams) -> dict[str, jax.Array]:
        dtype = params.mean.dtype
        err = params.mean - self.w_star.astype(dtype)
        s2 = self.noise_variance(params)
        inv = jnp.linalg.inv(params.precision)
        width = jnp.sqrt(s2 * jnp.trace(inv) / self.dim)
        return {"param_sq_error": jnp.sum(err * err), "noise_variance": s2, "posterior_width": width}

    def location(self, params: BLRParams) -> jax.Array:
        return params.mean
