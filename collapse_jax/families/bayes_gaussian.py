"""A conjugate Bayesian Gaussian learner refitted on its own generated data.

Every generation starts from the same prior; the regime decides which data the
posterior conditions on (the posterior is never recycled as the next prior). How the
next data set is generated from the posterior is the ``predictive`` mode:

* ``"plugin"``: from the model at the posterior mean (mean E[mu | D], covariance
  E[Sigma | D]);
* ``"posterior"``: ONE parameter draw (mu, Sigma) ~ p(. | D) per chain and
  generation, then all n points from N(mu, Sigma);
* ``"marginal"``: each point from the posterior predictive independently (a new
  parameter per point).

Known variance (``known_variance=s2``): the model is N(mu, s2 I) with the prior
mu ~ N(m0, tau^2 I). Otherwise the conjugate Normal-Inverse-Wishart prior
mu | Sigma ~ N(m0, Sigma / kappa0), Sigma ~ IW(nu0, Psi0) (in 1-D the
Normal-Inverse-Gamma prior with alpha0 = nu0 / 2, beta0 = Psi0 / 2). Closed forms:
docs/THEORY.md section 12 and :mod:`collapse_jax.theory.bayes`.
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
from .._validate import as_float_array, check_covariance, check_positive
from ._options import Predictive, Sampler
from ._protocol import CountWeights, ExactSampler, Located
from .gaussian import Gaussian, GaussianParams, GaussianStats

PREDICTIVES: tuple[Predictive, ...] = get_args(Predictive)
SAMPLERS: tuple[Sampler, ...] = get_args(Sampler)


class BayesGaussianParams(eqx.Module):
    """One chain's posterior: mu | Sigma ~ N(mean, Sigma / kappa) and, without a known
    variance, Sigma ~ IW(nu, psi). With a known variance s2, kappa = s2 / tau^2 + W
    (so Cov(mu | D) = s2 / kappa I) and ``nu``, ``psi`` are unused."""

    mean: Float[Array, " d"]
    kappa: Float[Array, ""]
    nu: Float[Array, ""]
    psi: Float[Array, "d d"]


class BayesGaussian(ExactSampler, Located, CountWeights):
    """The conjugate Bayesian Gaussian (see the module docstring).

    Args:
        dim: dimension d (static).
        known_variance: the model's known per-coordinate variance s2 > 0, or ``None``
            (default): the covariance is learned under a Normal-Inverse-Wishart prior.
        prior_mean: m0, a scalar or (d,) (traced). Default 0.
        prior_var: tau^2 > 0, the prior variance of each coordinate of mu (known
            variance only; traced). Default 1.
        prior_count: kappa0 > 0, the prior's weight in points for mu (NIW; traced).
            Default 1.
        prior_df: nu0 > d - 1, the inverse-Wishart degrees of freedom (NIW; traced;
            the 1-D Normal-Inverse-Gamma has alpha0 = nu0 / 2). Default d + 2.
        prior_scale: Psi0, a scalar c (c I) or a (d, d) SPD matrix (NIW; traced; the 1-D
            beta0 = Psi0 / 2). Default I, so that E[Sigma] = Psi0 / (nu0 - d - 1) = I.
        predictive: ``"plugin"``, ``"posterior"`` or ``"marginal"`` (static).
        mean, cov: the truth N(mean, cov) (default 0 and ``known_variance`` I, or I).
        sampler: ``"samples"`` or ``"exact"`` (the exact law of the data's sufficient
            statistics: every mode but ``"marginal"`` with a learned covariance, whose
            predictive is a Student t).

    Weights are counts here: the posterior of W = sum of weights points. Regimes that
    rescale weights (``Weighted``) are refused; the others pass unit weights.

    Metrics: those of :class:`Gaussian` for the plug-in model (mean E[mu | D],
    covariance s2 I or E[Sigma | D]), e.g. ``mean_sq_error`` of the posterior mean,
    plus ``posterior_width`` = sqrt(tr Cov(mu | D) / d) (NIW: Cov(mu | D) =
    E[Sigma | D] / kappa, which needs nu > d + 1).
    """

    dim: int = eqx.field(static=True)
    known: bool = eqx.field(static=True)
    predictive: Predictive = eqx.field(static=True)
    sampler: Sampler = eqx.field(static=True)
    known_variance: Float[Array, ""]
    prior_mean: Float[Array, " d"]
    prior_var: Float[Array, ""]
    prior_count: Float[Array, ""]
    prior_df: Float[Array, ""]
    prior_scale: Float[Array, "d d"]
    gaussian: Gaussian  # the truth, and the machinery for sampling, statistics and metrics

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "known_variance": (1e-30, math.inf),
        "prior_var": (1e-30, math.inf),
        "prior_count": (1e-30, math.inf),
        "prior_df": (0.0, math.inf),
    }

    def __init__(
        self,
        dim: int = 1,
        known_variance=None,
        *,
        prior_mean=0.0,
        prior_var=1.0,
        prior_count=1.0,
        prior_df=None,
        prior_scale=1.0,
        predictive: Predictive = "plugin",
        mean=None,
        cov=None,
        sampler: Sampler = "samples",
    ):
        owner = "BayesGaussian"
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"{owner}: dim must be an int >= 1, got {dim!r}")
        d = int(dim)
        if predictive not in PREDICTIVES:
            raise ValueError(f"{owner}: predictive must be one of {PREDICTIVES}, got {predictive!r}")
        if sampler not in SAMPLERS:
            raise ValueError(f"{owner}: sampler must be one of {SAMPLERS}, got {sampler!r}")
        known = known_variance is not None
        s2 = check_positive(owner, "known_variance", known_variance) if known else 1.0
        if not known and predictive == "marginal" and sampler == "exact":
            raise ValueError(
                f"{owner}: sampler='exact' with predictive='marginal' needs known_variance (the learned-covariance "
                "predictive is a Student t, whose sample statistics have no exact law here); use sampler='samples'"
            )
        m0 = as_float_array(owner, "prior_mean", prior_mean)
        if m0.ndim == 0:
            m0 = np.full(d, float(m0))
        if m0.shape != (d,) or not np.all(np.isfinite(m0)):
            raise ValueError(
                f"{owner}: prior_mean must be a finite number or vector of shape ({d},), got {prior_mean!r}"
            )
        tau2 = check_positive(owner, "prior_var", prior_var)
        k0 = check_positive(owner, "prior_count", prior_count)
        nu0 = float(d + 2) if prior_df is None else check_positive(owner, "prior_df", prior_df)
        if nu0 <= d - 1:
            raise ValueError(f"{owner}: prior_df must be > dim - 1 = {d - 1} (a proper inverse Wishart), got {nu0}")
        psi0, _ = check_covariance(f"{owner}: prior_scale", prior_scale, d)
        if cov is None:
            cov = s2 * np.eye(d)
        self.dim, self.known, self.predictive, self.sampler = d, known, predictive, sampler
        self.known_variance = jnp.asarray(s2, jnp.float32)
        self.prior_mean = jnp.asarray(m0, jnp.float32)
        self.prior_var = jnp.asarray(tau2, jnp.float32)
        self.prior_count = jnp.asarray(k0, jnp.float32)
        self.prior_df = jnp.asarray(nu0, jnp.float32)
        self.prior_scale = jnp.asarray(psi0, jnp.float32)
        self.gaussian = Gaussian(d, "mle", mean=mean, cov=cov, learn_cov=True)

    # ------------------------------------------------------------------ basics
    def exact_unavailable(self) -> str | None:
        if self.known or self.predictive != "marginal":
            return None
        return (
            "predictive='marginal' with an unknown covariance draws Student-t points, whose statistics "
            "have no exact law here"
        )

    def truth(self) -> GaussianParams:
        """The true Gaussian (not a posterior: real data come from :meth:`sample_real`)."""
        return self.gaussian.truth()

    def config_arg(self, name: str):
        if name in ("mean", "cov"):
            return self.gaussian.config_arg(name)
        if name == "known_variance":
            return self.known_variance if self.known else None
        return super().config_arg(name)

    def blank_fit(self) -> BayesGaussianParams:
        d, dtype = self.dim, self.prior_mean.dtype
        one = jnp.ones((), dtype)
        return BayesGaussianParams(self.gaussian.mean, one, one, jnp.eye(d, dtype=dtype))

    def sample_real(self, key, n: int, frame=None) -> jax.Array:
        """``n`` points from the true Gaussian, absolute coordinates."""
        return self.gaussian.sample(as_stream(key).child(0), self.gaussian.truth(), n)

    def sample_real_stats(self, key, m, frame=None) -> GaussianStats:
        return self.gaussian.sample_stats(as_stream(key).child(0), self.gaussian.truth(), m)

    def min_points(self) -> int:
        return 1

    def validate_regime(self, regime, n: int, exact: bool) -> None:
        if not self.known:
            nu_n = float(self.prior_df) + n
            if nu_n <= self.dim + 1:
                raise ValueError(
                    f"BayesGaussian: E[Sigma | D] = Psi_n / (nu_n - d - 1) needs nu_n = prior_df + n > dim + 1; "
                    f"got prior_df + n = {nu_n:g} with dim = {self.dim} (1-D: alpha_n = nu_n / 2 must exceed 1)"
                )

    # ------------------------------------------------------------------ posterior
    def data_stats(self, data, weights) -> GaussianStats:
        return self.gaussian.data_stats(data, weights)

    def merge_stats(self, a: GaussianStats, b: GaussianStats) -> GaussianStats:
        return self.gaussian.merge_stats(a, b)

    def _kappa0(self, dtype):
        if self.known:
            return self.known_variance.astype(dtype) / self.prior_var.astype(dtype)
        return self.prior_count.astype(dtype)

    def fit_stats(self, stats: GaussianStats, frame=None) -> BayesGaussianParams:
        dtype = stats.mean.dtype
        w = stats.count
        k0 = self._kappa0(dtype)
        m0 = self.prior_mean.astype(dtype)
        kn = k0 + w
        mn = (k0 * m0 + w * stats.mean) / kn
        if self.known:
            return BayesGaussianParams(mn, kn, jnp.zeros((), dtype), jnp.zeros((self.dim, self.dim), dtype))
        diff = stats.mean - m0
        psi = self.prior_scale.astype(dtype) + stats.scatter + (k0 * w / kn) * jnp.outer(diff, diff)
        return BayesGaussianParams(mn, kn, self.prior_df.astype(dtype) + w, 0.5 * (psi + psi.T))

    def fit(self, key, data, weights, frame=None) -> BayesGaussianParams:
        return self.fit_stats(self.data_stats(data, weights))

    def posterior_cov_mean(self, p: BayesGaussianParams) -> jax.Array:
        """Cov(mu | D) (d, d)."""
        if self.known:
            return (self.known_variance.astype(p.mean.dtype) / p.kappa) * jnp.eye(self.dim, dtype=p.mean.dtype)
        return self._expected_cov(p) / p.kappa

    def _expected_cov(self, p: BayesGaussianParams) -> jax.Array:
        """E[Sigma | D]: s2 I, or Psi_n / (nu_n - d - 1)."""
        if self.known:
            return self.known_variance.astype(p.mean.dtype) * jnp.eye(self.dim, dtype=p.mean.dtype)
        return p.psi / (p.nu - self.dim - 1)

    def posterior(self, p: BayesGaussianParams):
        """The posterior of mu as a numpyro distribution (known variance: a Normal;
        NIW: the marginal multivariate Student t), plus, without a known variance,
        the inverse-Wishart posterior of Sigma: ``(dist_mu, dist_Sigma or None)``."""
        import numpyro.distributions as dist

        if self.known:
            return dist.MultivariateNormal(p.mean, self.posterior_cov_mean(p)), None
        df = p.nu - self.dim + 1
        scale = p.psi / (p.kappa * df)
        return (
            dist.MultivariateStudentT(df, p.mean, jnp.linalg.cholesky(scale)),
            dist.InverseWishart(concentration=p.nu, scale_matrix=p.psi),
        )

    # ------------------------------------------------------------------ generation
    def _model(self, key, p: BayesGaussianParams) -> GaussianParams:
        """The Gaussian that generates the next data (every mode but a learned-covariance
        marginal): plug-in, one posterior draw, or the known-variance predictive."""
        g = self.gaussian
        dtype = p.mean.dtype
        if self.predictive == "plugin":
            return g._compose(p.mean, self._expected_cov(p), None)
        if self.predictive == "marginal":  # known variance: N(mean, s2 (1 + 1/kappa) I) exactly
            return g._compose(p.mean, self._expected_cov(p) * (1 + 1 / p.kappa), None)
        s = as_stream(key)
        z = s.child(14).normal((self.dim,), dtype)
        if self.known:
            cov = self._expected_cov(p)
        else:
            cov = _inverse_wishart(s.child(13), p.nu, p.psi, self.dim)
        mu = p.mean + jnp.linalg.cholesky(cov / p.kappa) @ z
        return g._compose(mu, cov, None)

    def sample(self, key, params: BayesGaussianParams, n: int, frame=None) -> jax.Array:
        """``n`` points, shape (n, dim), absolute coordinates (frames are ignored)."""
        s = as_stream(key)
        if self.predictive == "marginal" and not self.known:
            return self._student_predictive(s, params, n)
        return self.gaussian.sample(s.child(0), self._model(s, params), n)

    def _student_predictive(self, s, p: BayesGaussianParams, n: int) -> jax.Array:
        """n independent points from the NIW posterior predictive: a multivariate t with
        nu_n - d + 1 degrees of freedom, location m_n and scale Psi_n (kappa_n + 1) /
        (kappa_n (nu_n - d + 1)) (each point a new (mu, Sigma))."""
        dtype = p.mean.dtype
        df = p.nu - self.dim + 1
        scale = p.psi * (p.kappa + 1) / (p.kappa * df)
        z = s.child(0).normal((n, self.dim), dtype)
        chi2 = 2.0 * jax.random.gamma(s.child(1).key(), 0.5 * df, shape=(n,), dtype=dtype)
        return p.mean[None, :] + (z @ jnp.linalg.cholesky(scale).T) * jnp.sqrt(df / chi2)[:, None]

    def sample_stats(self, key, params: BayesGaussianParams, m, frame=None) -> GaussianStats:
        s = as_stream(key)
        if self.predictive == "marginal" and not self.known:
            raise ValueError("BayesGaussian: no exact statistics for the learned-covariance marginal predictive")
        return self.gaussian.sample_stats(s.child(0), self._model(s, params), m)

    # ------------------------------------------------------------------ metrics
    def metrics(self, key, params: BayesGaussianParams) -> dict[str, jax.Array]:
        g = self.gaussian
        out = g.metrics(key, g._compose(params.mean, self._expected_cov(params), None))
        out["posterior_width"] = jnp.sqrt(jnp.trace(self.posterior_cov_mean(params)) / self.dim)
        return out

    def location(self, params: BayesGaussianParams) -> jax.Array:
        return params.mean


def _inverse_wishart(stream, nu, psi, d: int) -> jax.Array:
    """One draw Sigma ~ IW(nu, psi): Sigma^-1 ~ Wishart(nu, psi^-1) by Bartlett's
    decomposition (exact chi-square diagonal from the stream)."""
    dtype = psi.dtype
    if d == 1:
        return (psi / stream.chi2(nu, dtype)).reshape(1, 1)
    lp = jnp.linalg.cholesky(jnp.linalg.inv(psi))
    off = jnp.tril(stream.child(0).normal((d, d), dtype), -1)
    diag = jnp.stack([jnp.sqrt(stream.child(1).chi2(nu - i, dtype, offset=i * 64)) for i in range(d)])
    a = off + jnp.diag(diag)
    la = lp @ a
    prec = la @ la.T
    cov = jnp.linalg.inv(prec)
    return 0.5 * (cov + cov.T)
