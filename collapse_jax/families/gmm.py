"""Gaussian mixtures refitted by EM, vmapped over chains (Shumailov et al., "AI
models collapse when trained on recursively generated data", Nature 2024: their
released experiment refits a 2-component mixture on 1000 of its own samples per
generation for 2000 generations).

EM follows Dempster, Laird and Rubin (1977) with weighted points, log-sum-exp
responsibilities and Cholesky densities. Conventions shared with scikit-learn's
``GaussianMixture`` so that its runs can be reproduced: an absolute covariance floor
``reg_covar`` added to every fitted covariance, convergence when the mean per-point
log-likelihood changes by less than ``tol`` between iterations, and k-means++
initialisation (Arthur and Vassilvitskii 2007) followed by Lloyd steps.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jaxtyping import Array, Bool, Float, Int

from .._rng import STREAM_FIT, Stream, as_stream
from .._validate import as_float_array, check_covariance, check_int, check_number
from ..data import HELDOUT_SAMPLES, Empirical, heldout_metrics
from . import _linalg as _la
from ._ondata import OnData, as_data, data_dim
from ._options import Covariance, Init
from ._protocol import Scorable, Temperable, Tiltable, WarmStart

COVARIANCES: tuple[Covariance, ...] = get_args(Covariance)
INITS: tuple[Init, ...] = get_args(Init)
HELDOUT_POINTS = 256  # fresh real points per chain and generation for ``heldout_nll``
DEAD_BELOW = 1e-3  # a component whose effective number of points falls below this is dead


class GMMParams(eqx.Module):
    """Mixture weights (K,), means (K, d), covariances (K, d, d) (full matrices for
    every covariance type), and the EM diagnostics of the fit that produced them.
    A component with weight exactly 0 is dead (absorbing)."""

    weights: Float[Array, " k"]
    means: Float[Array, "k d"]
    covs: Float[Array, "k d d"]
    iters: Int[Array, ""]
    converged: Bool[Array, ""]


def _unit_or(weights, x):
    """Per-point weights: unit ones when ``weights`` is None."""
    return jnp.ones(x.shape[:1], x.dtype) if weights is None else weights.astype(x.dtype)


def _component_logpdf(x: Float[Array, "m d"], means, chols) -> Float[Array, "k m"]:
    """log N(x_i; mu_k, L_k L_k^T) for every point and component.

    For d <= UNROLL_MAX the forward substitution runs on whole coordinate columns
    (m-vectors): under ``vmap`` on CPU this is over 10x faster than solving per point,
    whose (m, d) intermediates have a short minor axis."""
    d = x.shape[-1]
    const = d * math.log(2 * math.pi)

    def one(mu, lk):
        logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(lk)))
        if d > _la.UNROLL_MAX:
            z = jax.vmap(lambda xi: _la.solve_lower(lk, xi - mu))(x)
            return -0.5 * (jnp.sum(z * z, axis=-1) + logdet + const)
        cols = [x[:, j] - mu[j] for j in range(d)]
        zs: list[jax.Array] = []
        maha = jnp.zeros(x.shape[:1], x.dtype)
        for i in range(d):
            acc = cols[i]
            for j in range(i):
                acc = acc - lk[i, j] * zs[j]
            zi = acc / lk[i, i]
            zs.append(zi)
            maha = maha + zi * zi
        return -0.5 * (maha + logdet + const)

    return jax.vmap(one)(means, chols)


def _log_joint(x, p: GMMParams) -> Float[Array, "k m"]:
    """log w_k + log N(x_i; mu_k, S_k), component-major: (K, m) keeps the long axis minor."""
    chols = jax.vmap(_la.cholesky)(p.covs)
    logw = jnp.where(p.weights > 0, jnp.log(jnp.where(p.weights > 0, p.weights, 1.0)), -jnp.inf)
    return _component_logpdf(x, p.means, chols) + logw[:, None]


def mixture_logpdf(x: Float[Array, "m d"], p: GMMParams) -> Float[Array, " m"]:
    """log density of the mixture at every point."""
    return logsumexp(_log_joint(x, p), axis=0)


def _gauss_overlap(m1, c1, m2, c2) -> jax.Array:
    """Integral of N(x; m1, c1) N(x; m2, c2) dx = N(m1; m2, c1 + c2)."""
    d = m1.shape[-1]
    lo = _la.cholesky(c1 + c2)
    z = _la.solve_lower(lo, m1 - m2)
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(lo)))
    return jnp.exp(-0.5 * (jnp.sum(z * z) + logdet + d * math.log(2 * math.pi)))


def _cross(a: GMMParams, b: GMMParams) -> jax.Array:
    f = jax.vmap(jax.vmap(_gauss_overlap, in_axes=(None, None, 0, 0)), in_axes=(0, 0, None, None))
    return jnp.sum(a.weights[:, None] * b.weights[None, :] * f(a.means, a.covs, b.means, b.covs))


def l2_distance_sq(a: GMMParams, b: GMMParams) -> jax.Array:
    """Closed-form squared L2 distance between two mixture densities,
    sum_ij a_i a_j N(mu_i; mu_j, S_i + S_j) over the three cross terms."""
    return _cross(a, a) - 2.0 * _cross(a, b) + _cross(b, b)


class GMM(OnData, Temperable, Scorable, WarmStart, Tiltable):
    """A K-component Gaussian mixture in d dimensions, refitted by EM.

    Args:
        components: K >= 1, the number of fitted components (static).
        dim: d >= 1 (static).
        covariance: ``"full"``, ``"diag"`` or ``"spherical"`` fitted covariances.
        truth: the data-generating mixture ``(weights, means, covs)`` with any number
            of components (shapes (K0,), (K0, d), (K0, d, d)); default: one standard
            normal blob, fitted with K components (Shumailov et al.'s released run).
        init: ``"warm"``: EM starts from the previous generation's fit;
            ``"refit"``: every fit starts from k-means++ seeding and Lloyd steps drawn
            from the chain's key (what scikit-learn does every generation). Generation 0
            always uses k-means++.
        em_max_iters: EM iteration cap (static); ``diagnostics`` report per-chain
            iterations and whether the fit converged within it.
        tol: convergence threshold on the change of the mean per-point log-likelihood
            (scikit-learn's ``tol``).
        lloyd_steps: Lloyd iterations after k-means++ seeding (static; 0 = seeding only,
            scikit-learn's ``init_params="k-means++"``; scikit-learn's default runs k-means
            to convergence).
        data: a :class:`~collapse_jax.Empirical` data set as the truth: real points
            are rows of its training pool, the truth is this family's own EM fit of
            the whole pool (K components, k-means++ seeded from ``split_seed``),
            ``dim`` defaults to the data's, and the held-out measures of
            :func:`~collapse_jax.data.heldout_metrics` join the metrics.
        reg_covar: absolute floor added to every fitted covariance's diagonal
            (scikit-learn's default 1e-6): fitted variances cannot fall below it, so the
            floor shows only near variance 1e-6.

    Dead components: a component whose effective number of points drops below
    ``DEAD_BELOW`` (1e-3) gets weight exactly 0 and keeps its parameters for ever
    (absorbing); ``diagnostics["dead_components"]`` counts them. scikit-learn keeps such
    a component alive with a tiny weight and covariance ``reg_covar``.

    Metrics: ``l2_to_truth`` (closed-form squared L2 distance between the densities),
    ``component_weight`` and ``component_sd`` (sqrt(tr S_k / d)), both sorted by
    descending weight (dim ``component``), ``minority_weight`` (the weight of the fitted
    component matched to the truth's lightest one by the permutation minimising the
    summed squared distance between means; NaN when the truth has one component or
    more components than the fit), ``heldout_nll`` (mean negative log density on
    ``HELDOUT_POINTS`` fresh real points per chain) and ``total_variance`` (trace of the
    mixture's covariance).
    """

    components: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    covariance: Covariance = eqx.field(static=True)
    init: Init = eqx.field(static=True)
    em_max_iters: int = eqx.field(static=True)
    lloyd_steps: int = eqx.field(static=True)
    tol: Float[Array, ""]
    reg_covar: Float[Array, ""]
    truth_weights: Float[Array, " k0"]
    truth_means: Float[Array, "k0 d"]
    truth_covs: Float[Array, "k0 d d"]
    data: Empirical | None
    _data_first: int = eqx.field(static=True)

    metric_dims: ClassVar[dict[str, tuple[str, ...]]] = {
        "component_weight": ("component",),
        "component_sd": ("component",),
    }
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"tol": (0.0, math.inf), "reg_covar": (0.0, math.inf)}
    data_truth_args: ClassVar[tuple[str, ...]] = ("truth",)  # with data=: the fit of the pool
    # EM keeps log-densities, responsibilities and centred columns per point and component: a vmapped
    # EM runs as many iterations as the slowest chain of its chunk, so smaller chunks also waste less
    working_set_factor: ClassVar[int] = 8

    def __init__(
        self,
        components: int = 2,
        dim: int | None = None,
        covariance: Covariance = "full",
        *,
        truth=None,
        init: Init = "refit",
        em_max_iters: int = 100,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        lloyd_steps: int = 10,
        data=None,
    ):
        data = as_data("GMM", data)
        dim = data_dim("GMM", data, dim, {"truth": truth})
        for name, v in (("components", components), ("dim", dim), ("em_max_iters", em_max_iters)):
            check_int(f"GMM: {name}", v, 1)
        check_int("GMM: lloyd_steps", lloyd_steps, 0)
        if covariance not in COVARIANCES:
            raise ValueError(f"GMM: covariance must be one of {COVARIANCES}, got {covariance!r}")
        if init not in INITS:
            raise ValueError(f"GMM: init must be one of {INITS}, got {init!r}")
        for name, x in (("tol", tol), ("reg_covar", reg_covar)):
            if not (check_number("GMM", name, x) >= 0 and math.isfinite(x)):
                raise ValueError(f"GMM: {name} must be a finite number >= 0, got {x!r}")
        d = int(dim)
        if truth is None:
            tw, tm, tc = np.ones(1), np.zeros((1, d)), np.eye(d)[None]
        else:
            if isinstance(truth, dict):
                truth = (truth.get("weights"), truth.get("means"), truth.get("covs"))
            if not (isinstance(truth, (tuple, list)) and len(truth) == 3):
                raise TypeError("GMM: truth must be (weights, means, covs) or a dict with those keys")
            tw = as_float_array("GMM", "truth weights", truth[0]).reshape(-1)
            k0 = tw.shape[0]
            if k0 < 1 or np.any(~np.isfinite(tw)) or np.any(tw < 0) or abs(tw.sum() - 1) > 1e-6:
                raise ValueError(f"GMM: truth weights must be >= 0 and sum to 1, got {tw.tolist()}")
            tm = as_float_array("GMM", "truth means", truth[1])
            if tm.shape != (k0, d) or not np.all(np.isfinite(tm)):
                raise ValueError(f"GMM: truth means must be a finite ({k0}, {d}) array, got shape {tm.shape}")
            tc = as_float_array("GMM", "truth covs", truth[2])
            if tc.shape != (k0, d, d):
                raise ValueError(f"GMM: truth covs must have shape ({k0}, {d}, {d}), got {tc.shape}")
            for k in range(k0):
                check_covariance(f"GMM (truth component {k})", tc[k], d)
        self.components, self.dim, self.covariance, self.init = int(components), d, covariance, init
        self.em_max_iters, self.lloyd_steps = int(em_max_iters), int(lloyd_steps)
        self.tol = jnp.asarray(float(tol), jnp.float32)
        self.reg_covar = jnp.asarray(float(reg_covar), jnp.float32)
        self.truth_weights = jnp.asarray(tw, jnp.float32)
        self.truth_means = jnp.asarray(tm, jnp.float32)
        self.truth_covs = jnp.asarray(tc, jnp.float32)
        self.data = None
        self._data_first = 0
        if data is not None:
            # the truth: this family's EM fit of the whole pool (a fixed, recorded key)
            fitted = self.fit(as_stream(jax.random.key(data.split_seed), STREAM_FIT), data.x, None)
            self.truth_weights, self.truth_means, self.truth_covs = fitted.weights, fitted.means, fitted.covs
            self.data = data

    # ------------------------------------------------------------------ basics
    def truth(self) -> GMMParams:
        return GMMParams(self.truth_weights, self.truth_means, self.truth_covs, jnp.int32(0), jnp.bool_(True))

    def min_points(self) -> int:
        return self.components

    def sample_real(self, key, n: int, frame=None):
        """``n`` real points: draws from the truth, or rows of the data set."""
        if self.data is None:
            return self.sample(key, self.truth(), n, frame)
        return self.data.draw_x(key, n, self._data_first or None).astype(self.truth_means.dtype)

    def config_arg(self, name: str):
        if name == "truth" and self.data is None:
            return {"weights": self.truth_weights, "means": self.truth_means, "covs": self.truth_covs}
        return super().config_arg(name)

    def validate_regime(self, regime, n: int, exact: bool) -> None:
        if n < self.components:
            raise ValueError(f"GMM: n={n} points cannot fit components={self.components}; n must be >= components")

    # ------------------------------------------------------------------ sampling
    def sample(self, key, params: GMMParams, n: int, frame=None) -> Float[Array, "n d"]:
        s = as_stream(key)
        dtype = params.means.dtype
        cdf = jnp.cumsum(params.weights)
        u = s.child(0).uniform((n,), dtype) * cdf[-1]
        comp = jnp.minimum(jnp.sum(u[:, None] >= cdf[None, :], axis=1), params.weights.shape[0] - 1)
        comp = _live_component(comp, params.weights)
        chols = jax.vmap(_la.cholesky)(params.covs)
        z = s.child(1).normal((n, self.dim), dtype)
        return params.means[comp] + jnp.einsum("nij,nj->ni", chols[comp], z)

    # ------------------------------------------------------------------ pressures (collapse_jax.Pressured)
    def temper(self, params: GMMParams, tau) -> GMMParams:
        """Every component's covariance tau^2 Sigma_k (weights and means unchanged)."""
        tau = jnp.asarray(tau, params.covs.dtype)
        return eqx.tree_at(lambda p: p.covs, params, params.covs * (tau * tau))

    def score(self, params: GMMParams, data, frame=None) -> jax.Array:
        """-log p(x) under the mixture (its quantiles are estimated by Monte Carlo)."""
        return -mixture_logpdf(data, params)

    # ------------------------------------------------------------------ curation (synthesis curate=)
    def check_reward(self, reward: np.ndarray, quadratic: float | None) -> None:
        """Linear coefficients b of shape (dim,); the quadratic c >= 0 is a scalar."""
        if reward.shape != (self.dim,):
            raise ValueError(
                f"GMM: reward must be the linear coefficients b of r(x) = b^T x - (c/2)||x||^2, shape "
                f"({self.dim},), got shape {reward.shape}"
            )

    def reward(self, reward, quadratic, data, frame=None) -> jax.Array:
        """r(x) = b^T x - (c/2) ||x||^2 of each point."""
        r = data @ reward.astype(data.dtype)
        if quadratic is not None:
            r = r - 0.5 * quadratic.astype(data.dtype) * jnp.sum(data * data, axis=1)
        return r

    def mean_reward(self, params: GMMParams, reward, quadratic) -> jax.Array:
        """sum_k pi_k (b^T mu_k - (c/2)(||mu_k||^2 + tr Sigma_k))."""
        b = reward.astype(params.means.dtype)
        per = params.means @ b
        if quadratic is not None:
            second = jnp.sum(params.means**2, axis=1) + jnp.trace(params.covs, axis1=1, axis2=2)
            per = per - 0.5 * quadratic.astype(per.dtype) * second
        return jnp.sum(jnp.where(params.weights > 0, params.weights * per, 0.0))

    def tilt(self, params: GMMParams, reward, quadratic, scale) -> GMMParams:
        """The mixture tilted by exp(beta r(x)): every component tilted as a Gaussian
        (A_k = I + beta c Sigma_k, Sigma_k' = A_k^-1 Sigma_k, mu_k' = mu_k + A_k^-1
        Sigma_k v_k with v_k = beta (b - c mu_k)), its weight multiplied by its
        normaliser Z_k = E_k exp(beta r(x)), log Z_k = beta (b^T mu_k - (c/2)||mu_k||^2)
        - (1/2) log det A_k + (1/2) v_k^T A_k^-1 Sigma_k v_k, renormalised (dead
        components stay dead). No inverse of a (possibly collapsed) Sigma_k is formed."""
        dtype = params.means.dtype
        beta = jnp.asarray(scale, dtype)
        b = reward.astype(dtype)
        c = jnp.zeros((), dtype) if quadratic is None else quadratic.astype(dtype)
        eye = jnp.eye(self.dim, dtype=dtype)

        def one(mu, cov):
            a = eye + beta * c * cov
            v = beta * (b - c * mu)
            shift = jnp.linalg.solve(a, cov @ v)  # A^-1 Sigma v
            cov_t = jnp.linalg.solve(a, cov)
            _, logdet = jnp.linalg.slogdet(a)
            log_z = beta * (mu @ b - 0.5 * c * (mu @ mu)) - 0.5 * logdet + 0.5 * (v @ shift)
            return mu + shift, 0.5 * (cov_t + cov_t.T), log_z

        means, covs, log_z = jax.vmap(one)(params.means, params.covs)
        live = params.weights > 0
        logw = jnp.where(live, jnp.log(jnp.where(live, params.weights, 1.0)) + log_z, -jnp.inf)
        weights = jnp.exp(logw - jnp.max(logw))
        return GMMParams(weights / jnp.sum(weights), means, covs, params.iters, params.converged)

    # ------------------------------------------------------------------ fitting
    def fit(self, key, data, weights, frame: GMMParams | None = None) -> GMMParams:
        w = _unit_or(weights, data)
        return self.em(data, w, self._kmeans_init(as_stream(key).child(2), data, w))

    def fit_warm(self, key, data, weights, start: GMMParams) -> GMMParams:
        """``init="warm"``: EM from the previous generation's fit ``start``; other
        inits ignore it."""
        if self.init != "warm":
            return self.fit(key, data, weights)
        return self.em(data, _unit_or(weights, data), start)

    def _m_step(self, x, w, resp, prev: GMMParams) -> GMMParams:
        """Weighted M-step from responsibilities ``resp`` (K, m); dead components keep
        their parameters with weight 0."""
        d, dtype = self.dim, x.dtype
        wr = resp * w[None, :]  # (k, m)
        nk = jnp.sum(wr, axis=1)
        total = jnp.sum(w)
        alive = (nk >= DEAD_BELOW) & (prev.weights > 0)
        safe_nk = jnp.where(alive, nk, 1.0)
        means = (wr @ x) / safe_nk[:, None]
        scatter = _weighted_scatter(x, wr, means) / safe_nk[:, None, None]
        eye = jnp.eye(d, dtype=dtype)
        if self.covariance == "diag":
            scatter = jnp.diagonal(scatter, axis1=1, axis2=2)[:, :, None] * eye[None]
        elif self.covariance == "spherical":
            scatter = (jnp.trace(scatter, axis1=1, axis2=2) / d)[:, None, None] * eye[None]
        covs = scatter + self.reg_covar.astype(dtype) * eye[None]
        weights = jnp.where(alive, nk / total, 0.0)
        return GMMParams(
            weights / jnp.sum(weights),
            jnp.where(alive[:, None], means, prev.means),
            jnp.where(alive[:, None, None], covs, prev.covs),
            prev.iters,
            prev.converged,
        )

    def _from_labels(self, x, w, labels, k) -> GMMParams:
        resp = jax.nn.one_hot(labels, k, dtype=x.dtype).T
        d = self.dim
        # a seed with no point would be dead at once: start it at the data's mean and covariance
        mean = jnp.sum(w[:, None] * x, axis=0) / jnp.sum(w)
        dev = x - mean[None, :]
        cov = jnp.einsum("m,mi,mj->ij", w, dev, dev) / jnp.sum(w) + self.reg_covar.astype(x.dtype) * jnp.eye(d)
        base = GMMParams(
            jnp.ones((k,), x.dtype) / k,
            jnp.broadcast_to(mean, (k, d)),
            jnp.broadcast_to(cov, (k, d, d)),
            jnp.int32(0),
            jnp.bool_(False),
        )
        return self._m_step(x, w, resp, base)

    def _kmeans_init(self, s: Stream, x, w) -> GMMParams:
        """k-means++ seeding (Arthur and Vassilvitskii 2007) with point weights, then
        ``lloyd_steps`` Lloyd iterations; the initial fit is the M-step of the hard
        assignment (as scikit-learn initialises from k-means labels)."""
        k, dtype = self.components, x.dtype
        u = s.uniform((k,), dtype)
        picked: list[jax.Array] = []
        d2 = None
        for j in range(k):
            p = w if d2 is None else w * d2
            cdf = jnp.cumsum(p)
            idx = jnp.minimum(jnp.sum(u[j] * cdf[-1] >= cdf), x.shape[0] - 1)
            c = x[idx]
            picked.append(c)
            dj = jnp.sum((x - c[None, :]) ** 2, axis=1)
            d2 = dj if d2 is None else jnp.minimum(d2, dj)
        centers = jnp.stack(picked)

        def lloyd(c, _):
            dist = jnp.sum((x[:, None, :] - c[None, :, :]) ** 2, axis=-1)
            lab = jnp.argmin(dist, axis=1)
            oh = jax.nn.one_hot(lab, k, dtype=dtype) * w[:, None]
            cnt = jnp.sum(oh, axis=0)
            new = (oh.T @ x) / jnp.where(cnt > 0, cnt, 1.0)[:, None]
            return jnp.where((cnt > 0)[:, None], new, c), None

        if self.lloyd_steps:
            centers, _ = jax.lax.scan(lloyd, centers, None, length=self.lloyd_steps)
        labels = jnp.argmin(jnp.sum((x[:, None, :] - centers[None, :, :]) ** 2, axis=-1), axis=1)
        return self._from_labels(x, w, labels, k)

    def em(self, x, w, start: GMMParams, record: bool = False):
        """EM from ``start`` on points ``x`` with weights ``w``: at most ``em_max_iters``
        iterations; stops when the mean per-point log-likelihood (of the parameters
        before the M-step, as scikit-learn) changes by less than ``tol``. With
        ``record=True`` also returns the log-likelihood of every iteration (NaN after
        the stop), for checking monotonicity."""
        total = jnp.sum(w)
        tol = self.tol.astype(x.dtype)
        iters = self.em_max_iters

        def step(p):
            lj = _log_joint(x, p)
            lp = logsumexp(lj, axis=0)
            ll = jnp.sum(w * lp) / total
            resp = jnp.exp(lj - lp[None, :])
            return self._m_step(x, w, resp, p), ll

        def body(carry):
            p, prev_ll, it, done, hist = carry
            new, ll = step(p)
            conv = jnp.abs(ll - prev_ll) < tol
            hist = hist.at[it].set(ll) if record else hist
            return new, ll, it + 1, conv, hist

        def cond(carry):
            _, _, it, done, _ = carry
            return (~done) & (it < iters)

        hist0 = jnp.full((iters if record else 0,), jnp.nan, x.dtype)
        p0 = GMMParams(start.weights, start.means, start.covs, jnp.int32(0), jnp.bool_(False))
        p, _, it, done, hist = jax.lax.while_loop(
            cond, body, (p0, jnp.asarray(-jnp.inf, x.dtype), jnp.int32(0), jnp.bool_(False), hist0)
        )
        out = GMMParams(p.weights, p.means, p.covs, jnp.asarray(it, jnp.int32), jnp.asarray(done))
        return (out, hist) if record else out

    # ------------------------------------------------------------------ outputs
    def diagnostics(self, params: GMMParams) -> dict[str, jax.Array]:
        return {
            "em_iters": params.iters,
            "converged": params.converged,
            "dead_components": jnp.sum(params.weights <= 0).astype(jnp.int32),
        }

    def metrics(self, key, params: GMMParams) -> dict[str, jax.Array]:
        s = as_stream(key)
        dtype = params.means.dtype
        truth = self.truth()
        weights, means, covs = (a.astype(dtype) for a in (truth.weights, truth.means, truth.covs))
        truth = GMMParams(weights, means, covs, truth.iters, truth.converged)
        order = jnp.argsort(-params.weights)
        sd = jnp.sqrt(jnp.trace(params.covs, axis1=1, axis2=2) / self.dim)
        real = self.sample(s.child(0), truth, HELDOUT_POINTS)
        mu = jnp.sum(params.weights[:, None] * params.means, axis=0)
        second = jnp.sum(params.weights * (jnp.trace(params.covs, axis1=1, axis2=2) + jnp.sum(params.means**2, axis=1)))
        return {
            "l2_to_truth": l2_distance_sq(params, truth),
            "component_weight": params.weights[order],
            "component_sd": sd[order],
            "minority_weight": self._minority_weight(params, truth),
            "heldout_nll": -jnp.mean(mixture_logpdf(real, params)),
            "total_variance": second - jnp.sum(mu**2),
        } | self._heldout(s, params)

    def _heldout(self, s: Stream, params: GMMParams) -> dict[str, jax.Array]:
        """The held-out measures against the data set's test split (none without data)."""
        if self.data is None:
            return {}
        draws = self.sample(s.child(1), params, HELDOUT_SAMPLES)
        xt = self.data.x_test.astype(params.means.dtype)
        return heldout_metrics(self.data, draws, mixture_logpdf(xt, params))

    def _minority_weight(self, p: GMMParams, truth: GMMParams) -> jax.Array:
        k0, k = truth.weights.shape[0], p.weights.shape[0]
        if k0 < 2 or k0 > k or k > 8:
            return jnp.asarray(jnp.nan, p.weights.dtype)
        minority = jnp.argmin(truth.weights)
        perms = np.array(list(itertools.permutations(range(k), k0)))  # fitted component for each truth one
        cost = jnp.sum((p.means[:, None, :] - truth.means[None, :, :]) ** 2, axis=-1)  # (k, k0)
        total = jnp.sum(cost[perms, np.arange(k0)[None, :]], axis=1)
        best = jnp.asarray(perms)[jnp.argmin(total), minority]
        return p.weights[best]


def _weighted_scatter(x, wr, means) -> Float[Array, "k d d"]:
    """sum_i wr_ik (x_i - mu_k)(x_i - mu_k)^T per component (two-pass: centred first),
    column by column for small d (see :func:`_component_logpdf`)."""
    d = x.shape[-1]
    if d > _la.UNROLL_MAX:
        diff = x[None, :, :] - means[:, None, :]
        return jnp.einsum("km,kmi,kmj->kij", wr, diff, diff)

    def one(w_k, mu):
        dev = [x[:, j] - mu[j] for j in range(d)]
        wd = [w_k * c for c in dev]
        rows: list[list[Any]] = [[None] * d for _ in range(d)]
        for i in range(d):
            for j in range(i + 1):
                rows[i][j] = rows[j][i] = jnp.sum(wd[i] * dev[j])
        return jnp.stack([jnp.stack(r) for r in rows])

    return jax.vmap(one)(wr, means)


def _live_component(comp, weights):
    """Guard against a draw landing on a dead component through rounding of the CDF."""
    alive = weights > 0
    first_alive = jnp.argmax(alive)
    return jnp.where(alive[comp], comp, first_alive)
