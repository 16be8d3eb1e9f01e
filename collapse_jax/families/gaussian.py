"""The d-dimensional Gaussian family (Shumailov et al. 2024; Kazdan et al. 2024).

Scale is tracked in log space, per direction: a fit is
``(mean, log_scale, log_shape, unit)`` with Sigma = L L^T and Cholesky factor
L = exp(log_scale) unit diag(exp(log_shape)): ``log_scale`` = log det Sigma / (2d),
``log_shape`` the log diagonal of the unit-determinant shape (summing to 0) and
``unit`` unit lower-triangular (unit_ij = L_ij / L_jj). Collapse is not a numerical
failure in any dimension: a chain at n = 10 whose log-variance reaches -200 stays
finite (float32 underflows at about -87 in linear scale), and so does a
d-dimensional chain whose log det falls by many thousands of nats.

Why per direction: under recursion the fitted factor is a product
L_g = L_{g-1} T_g of lower-triangular factors, T_g the Cholesky factor of the
in-frame scatter over its divisor, whose diagonal is sqrt(chi^2_{m-1-i} / divisor)
(Bartlett's decomposition). Later coordinates therefore shrink faster, and the
spread of log diag L grows without bound (linearly in g): a unit-determinant factor
in linear scale overflows. With the diagonal in log space only differences
log_shape_k - log_shape_j (k > j) are exponentiated; they drift to -inf, so
``unit`` converges (``_linalg.compose_factor``). Every metric is computed from the
log-space fields without forming Sigma; those that leave the float range (KL,
held-out NLL) become +inf, never NaN. In 1-D ``log_shape`` = 0 and ``unit`` = 1.

The sample path is location-scale equivariant: synthetic data are drawn as
standard normals in the frame of the model that generates them, fitted there and
composed with the frame, so data never round to a constant. The in-frame scatter's
factor comes from the centred data by Gram-Schmidt (``_linalg.gram_root``), and the
exact path keeps its Bartlett factor, so a nearly singular scatter (n close to d)
is never squared and refactored.
"""

from __future__ import annotations

import math
import statistics
from typing import ClassVar, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import gammainc
from jaxtyping import Array, Float

from .._hostmath import chi2_quantile
from .._rng import Stream, as_stream
from .._validate import as_float_array, check_covariance, check_positive
from ..data import HELDOUT_SAMPLES, Empirical, heldout_metrics
from . import _linalg as _la
from ._gaussian_params import GaussianParams as GaussianParams
from ._gaussian_params import GaussianStats as GaussianStats
from ._gaussian_params import _stats_1d, _stats_nd
from ._ondata import OnData, as_data, data_dim
from ._options import Estimator, Sampler
from ._protocol import (
    Combinable,
    Correctable,
    DirectTruncation,
    ExactSampler,
    Located,
    MixedSampler,
    Temperable,
    Tiltable,
)

ESTIMATORS: tuple[Estimator, ...] = get_args(Estimator)
SAMPLERS: tuple[Sampler, ...] = get_args(Sampler)
TAIL_LEVEL = 0.99
TAIL_LINES = 32  # random lines through the origin for the d-D tail mass


class Gaussian(
    OnData, ExactSampler, Combinable, Temperable, DirectTruncation, Correctable, Located, MixedSampler, Tiltable
):
    """A Gaussian N(mean, cov) in ``dim`` dimensions, refitted by MLE or the unbiased
    estimator.

    Args:
        dim: dimension d >= 1 (static: sets shapes).
        estimator: ``"mle"`` divides the scatter by n (Kazdan et al.'s code,
            ``np.std``), ``"unbiased"`` by n - 1 (Shumailov et al.'s theorem). With
            importance weights the unbiased divisor is W - sum(w^2)/W.
        mean: the truth's mean (default 0).
        cov: the truth's covariance, symmetric positive definite (default I); a
            scalar means that multiple of I.
        learn_cov: ``False`` gives the known-covariance location model (only the
            mean is refitted; n >= 1). ``True`` needs n >= d + 1 points per fit.
        sampler: ``"samples"`` draws every point; ``"exact"`` draws the fitted
            statistics from their exact law (mean ~ N(mu, Sigma/m), scatter ~
            Wishart_d(m - 1, Sigma) by Bartlett's decomposition; in 1-D a scaled
            chi-square), O(1) in n per generation (THEORY.md section 11). Only for
            regimes that never need the points.
        collapse_below: the event ``collapse`` is the first generation at which the
            sd ratio (det Sigma_g / det Sigma_0)^(1/(2d)) falls below this (traced).
        data: a :class:`~collapse_jax.Empirical` data set as the truth: real points
            are rows of its training pool (:mod:`collapse_jax.data` says which), the
            truth's mean and covariance are the pool's (divided by its row count),
            ``dim`` defaults to the data's, and the held-out measures of
            :func:`~collapse_jax.data.heldout_metrics` join the metrics. Samples path
            only.

    Metrics (every dim): ``mean_sq_error`` ||mu - mu_0||^2; ``trace_ratio``
    tr Sigma / tr Sigma_0; ``logdet_ratio`` log det Sigma - log det Sigma_0;
    ``kl_to_truth`` KL(truth || fit) in nats (+inf when the fit has collapsed
    below float range: counted, never dropped); ``w2_sq_to_truth`` squared
    2-Wasserstein distance; ``tail_mass`` the fit's probability of the truth's 1 %
    Mahalanobis tail A = {x: (x - mu_0)^T Sigma_0^-1 (x - mu_0) > chi2_{d,0.99}}
    (0.01 at the truth); ``heldout_nll`` E_truth[-log p_fit(x)] per observation in
    nats (closed form). In 1-D also ``variance``, ``log_variance`` and ``sd``.

    ``tail_mass`` is exact in 1-D (two normal tails). In d-D it integrates the
    radius exactly along 32 random lines through the fit's centre (z = r u with
    r ~ chi_d: along each line the region is an interval whose chi-square
    probability is exact): an unbiased conditional Monte Carlo estimate, exact
    whenever the fit is a scaled copy of the truth centred on its mean (e.g. the
    truth itself), with a per-chain standard error below 0.5/sqrt(32) ~ 0.09 and
    far smaller in practice; it averages out over chains.
    """

    dim: int = eqx.field(static=True)
    estimator: Estimator = eqx.field(static=True)
    learn_cov: bool = eqx.field(static=True)
    sampler: Sampler = eqx.field(static=True)
    mean: Float[Array, " d"]
    cov: Float[Array, "d d"]
    collapse_below: Float[Array, ""]
    # derived from (mean, cov) at construction
    _log_scale0: Float[Array, ""]
    _log_shape0: Float[Array, " d"]
    _unit0: Float[Array, "d d"]
    _chol0: Float[Array, "d d"]
    _sqrt0: Float[Array, "d d"]
    _logdet0: Float[Array, ""]
    _tail_q: float = eqx.field(static=True)
    data: Empirical | None
    _data_first: int = eqx.field(static=True)

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"collapse_below": (1e-300, math.inf)}
    data_truth_args: ClassVar[tuple[str, ...]] = ("mean", "cov")  # with data=: the pool's

    def __init__(
        self,
        dim: int | None = None,
        estimator: Estimator = "mle",
        *,
        mean=None,
        cov=None,
        learn_cov: bool = True,
        sampler: Sampler = "samples",
        collapse_below: float = 0.1,
        data=None,
    ):
        data = as_data("Gaussian", data)
        dim = data_dim("Gaussian", data, dim, {"mean": mean, "cov": cov})
        if data is not None:
            if sampler != "samples":
                raise ValueError(
                    f"Gaussian: data= needs sampler='samples' (the rows of a data set are drawn, they have no "
                    f"exact law of their statistics), got {sampler!r}"
                )
            pool = np.asarray(data.x, np.float64)
            mean = pool.mean(axis=0)
            cov = np.atleast_2d(np.cov(pool, rowvar=False, bias=True))
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"Gaussian: dim must be an int, got {dim!r}")
        if dim < 1:
            raise ValueError(f"Gaussian: dim must be >= 1, got {dim}")
        if estimator not in ESTIMATORS:
            raise ValueError(f"Gaussian: estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if sampler not in SAMPLERS:
            raise ValueError(f"Gaussian: sampler must be one of {SAMPLERS}, got {sampler!r}")
        if not isinstance(learn_cov, (bool, np.bool_)):
            raise TypeError(f"Gaussian: learn_cov must be a bool, got {learn_cov!r}")
        d = int(dim)
        mu = np.zeros(d) if mean is None else as_float_array("Gaussian", "mean", mean)
        if mu.ndim == 0:
            mu = np.full(d, float(mu))
        if mu.shape != (d,) or not np.all(np.isfinite(mu)):
            raise ValueError(f"Gaussian: mean must be a finite vector of shape ({d},), got {mean!r}")
        sig, l0 = check_covariance("Gaussian", cov, d)
        cb = check_positive("Gaussian", "collapse_below", collapse_below)
        log_diag0 = np.log(np.diag(l0))
        shift = float(np.mean(log_diag0))
        w, v = np.linalg.eigh(sig)
        self.dim = d
        self.estimator = estimator
        self.learn_cov = bool(learn_cov)
        self.sampler = sampler
        self.mean = jnp.asarray(mu, dtype=jnp.float32)
        self.cov = jnp.asarray(sig, dtype=jnp.float32)
        self.collapse_below = jnp.asarray(cb, dtype=jnp.float32)
        self._log_scale0 = jnp.asarray(shift, dtype=jnp.float32)
        self._log_shape0 = jnp.asarray(log_diag0 - shift, dtype=jnp.float32)
        self._unit0 = jnp.asarray(l0 / np.diag(l0)[None, :], dtype=jnp.float32)
        self._chol0 = jnp.asarray(l0, dtype=jnp.float32)
        self._sqrt0 = jnp.asarray((v * np.sqrt(w)) @ v.T, dtype=jnp.float32)
        self._logdet0 = jnp.asarray(2.0 * np.sum(np.log(np.diag(l0))), dtype=jnp.float32)
        self._tail_q = chi2_quantile(d, TAIL_LEVEL)
        self.data = data
        self._data_first = 0

    # ------------------------------------------------------------------ basics
    def truth(self) -> GaussianParams:
        return GaussianParams(self.mean, self._log_scale0, self._log_shape0, self._unit0)

    def sample_real(self, key, n: int, frame: GaussianParams | None = None):
        """``n`` real points in ``frame``: draws from the truth, or rows of the data set."""
        if self.data is None:
            return self.sample(key, self.truth(), n, frame)
        x = self.data.draw_x(key, n, self._data_first or None).astype(self.mean.dtype)
        if frame is None:
            return x
        # absolute points in frame coordinates: the standard model N(0, I) seen from the frame
        offset, m = self._affine(self._frame_or_identity(None, x.dtype), frame)
        return offset[None, :] + x @ m.T

    def min_points(self) -> int:
        return self.dim + 1 if self.learn_cov else 1

    def _delta(self) -> int:
        return 1 if self.estimator == "unbiased" else 0

    # ------------------------------------------------------------------ frames
    def _affine(self, params: GaussianParams, frame: GaussianParams | None):
        """(offset, M): coordinates in ``frame`` of x = mean + L z are offset + M z
        (M = L_frame^-1 L, lower-triangular, formed from log-diagonal factors)."""
        if frame is None:
            if self.dim == 1:
                return params.mean, jnp.exp(params.log_scale) * params.unit
            return params.mean, _la.factor(params.log_scale + params.log_shape, params.unit)
        if frame is params:
            # a model in its own frame: exactly the identity map. Computing K^-1 K
            # instead loses all precision once a d-D fit is very anisotropic (the
            # scales of different directions collapse at different rates).
            return jnp.zeros_like(params.mean), jnp.eye(self.dim, dtype=params.mean.dtype)
        if self.dim == 1:
            offset = _scale_down(params.mean - frame.mean, frame.log_scale)
            m = jnp.exp(params.log_scale - frame.log_scale).reshape(1, 1)
            return offset, m
        y = _la.solve_unit_lower(frame.unit, params.mean - frame.mean)
        offset = _scale_down(y, frame.log_scale + frame.log_shape)
        gap = (params.log_scale - frame.log_scale) + (params.log_shape[None, :] - frame.log_shape[:, None])
        return offset, _la.relative_factor(frame.unit, params.unit, gap)

    def _frame_or_identity(self, frame: GaussianParams | None, dtype) -> GaussianParams:
        if frame is not None:
            return frame
        d = self.dim
        zero = jnp.zeros((d,), dtype)
        return GaussianParams(zero, jnp.zeros((), dtype), zero, jnp.eye(d, dtype=dtype))

    def _compose_mean(self, mean_f, frame: GaussianParams) -> jax.Array:
        """frame.mean + L_frame mean_f (terms below the float range vanish, never NaN)."""
        if self.dim == 1:
            return frame.mean + jnp.exp(frame.log_scale) * (frame.unit @ mean_f)
        return frame.mean + frame.unit @ (jnp.exp(frame.log_scale + frame.log_shape) * mean_f)

    def _compose(self, mean_f, cov_f, frame: GaussianParams | None) -> GaussianParams:
        """Absolute parameters from a fit (mean_f, cov_f) expressed in ``frame``."""
        if self.dim > 1 and self.learn_cov:
            return self._compose_root(mean_f, jnp.linalg.cholesky(cov_f), frame)
        dtype = mean_f.dtype
        frame = self._frame_or_identity(frame, dtype)
        mean = self._compose_mean(mean_f, frame)
        if not self.learn_cov:
            return GaussianParams(
                mean, self._log_scale0.astype(dtype), self._log_shape0.astype(dtype), self._unit0.astype(dtype)
            )
        log_scale = frame.log_scale + 0.5 * jnp.log(cov_f[0, 0])
        return GaussianParams(mean, log_scale, jnp.zeros((1,), dtype), jnp.ones((1, 1), dtype))

    def _compose_root(self, mean_f, t, frame: GaussianParams | None) -> GaussianParams:
        """d-D, learned covariance: the fit with in-frame mean ``mean_f`` and in-frame
        Cholesky factor ``t`` (lower-triangular), composed with ``frame``: L = L_frame t.
        The scale moves by the mean log pivot of t; the shape keeps its sum at 0."""
        frame = self._frame_or_identity(frame, mean_f.dtype)
        log_shape, unit = _la.compose_factor(frame.log_shape, frame.unit, t)
        shift = jnp.mean(log_shape)
        return GaussianParams(self._compose_mean(mean_f, frame), frame.log_scale + shift, log_shape - shift, unit)

    # ------------------------------------------------------------------ sample / fit
    def sample(self, key, params: GaussianParams, n: int, frame: GaussianParams | None = None):
        """``n`` points, shape (n, dim), in ``frame`` coordinates (absolute if None)."""
        offset, m = self._affine(params, frame)
        if self.dim == 1:
            # work on (n,) vectors: a size-1 minor axis vectorises badly on CPU
            z = as_stream(key).normal((n,), params.mean.dtype)
            return (offset[0] + z * m[0, 0])[:, None]
        z = as_stream(key).normal((n, self.dim), params.mean.dtype)
        return offset[None, :] + z @ m.T

    def sample_mixed(self, key, models: GaussianParams, source, n: int, frame: GaussianParams | None = None):
        """``n`` points, point k from the model ``models[source[k]]`` (``models``
        stacked on a leading axis), in ``frame`` coordinates: one standard normal per
        point, mapped by its model's affine map (interaction graphs draw a node's
        whole training set this way)."""
        offsets, maps = jax.vmap(lambda p: self._affine(p, frame))(models)
        dtype = models.mean.dtype
        if self.dim == 1:
            z = as_stream(key).normal((n,), dtype)
            return (jnp.take(offsets[:, 0], source) + z * jnp.take(maps[:, 0, 0], source))[:, None]
        z = as_stream(key).normal((n, self.dim), dtype)
        return jnp.take(offsets, source, axis=0) + jnp.einsum("nij,nj->ni", jnp.take(maps, source, axis=0), z)

    def data_stats(self, data, weights) -> GaussianStats:
        w = jnp.ones(data.shape[:1], data.dtype) if weights is None else weights.astype(data.dtype)
        if self.dim == 1:
            return self._data_stats_1d(data[:, 0], w)
        pos = (w > 0)[:, None]
        x = jnp.where(pos, data, 0.0)  # empty slots may hold anything, even inf
        total = jnp.sum(w)
        safe = jnp.where(total > 0, total, 1.0)
        mean = jnp.sum(w[:, None] * x, axis=0) / safe
        dev = jnp.where(pos, x - mean[None, :], 0.0)
        # root root^T = sum_i w_i dev_i dev_i^T, by Gram-Schmidt on the weighted deviations
        root = _la.gram_root(jnp.sqrt(jnp.maximum(w, 0.0))[:, None] * dev)
        return _stats_nd(total, jnp.sum(w * w), mean, root)

    def _data_stats_1d(self, x, w) -> GaussianStats:
        pos = w > 0
        x = jnp.where(pos, x, 0.0)  # empty slots may hold anything, even inf
        total = jnp.sum(w)
        mean = jnp.sum(w * x) / jnp.where(total > 0, total, 1.0)
        dev = jnp.where(pos, x - mean, 0.0)
        scatter = jnp.sum(w * dev * dev)
        return _stats_1d(total, jnp.sum(w * w), mean.reshape(1), scatter.reshape(1, 1))

    def merge_stats(self, a: GaussianStats, b: GaussianStats) -> GaussianStats:
        """The parallel-variance merge (Chan, Golub, LeVeque 1979); in d-D the root of
        the merged scatter is the Gram-Schmidt root of [root_a, root_b, sqrt(c) diff]
        with c = W_a W_b / (W_a + W_b)."""
        total = a.count + b.count
        safe = jnp.where(total > 0, total, 1.0)
        diff = b.mean - a.mean
        mean = a.mean + diff * (b.count / safe)
        c = a.count * b.count / safe
        if self.dim == 1:
            return _stats_1d(total, a.count2 + b.count2, mean, a.scatter + b.scatter + c * jnp.outer(diff, diff))
        rows = jnp.concatenate([a.root.T, b.root.T, (jnp.sqrt(c) * diff)[None, :]])
        return _stats_nd(total, a.count2 + b.count2, mean, _la.gram_root(rows))

    def fit_stats(self, stats: GaussianStats, frame: GaussianParams | None = None) -> GaussianParams:
        w = stats.count
        denom = w if self.estimator == "mle" else w - stats.count2 / jnp.where(w > 0, w, 1.0)
        if self.dim == 1 or not self.learn_cov:
            return self._compose(stats.mean, stats.scatter / denom, frame)
        return self._compose_root(stats.mean, stats.root * jax.lax.rsqrt(denom), frame)

    def fit(self, key, data, weights, frame: GaussianParams | None = None) -> GaussianParams:
        return self.fit_stats(self.data_stats(data, weights), frame)

    def sample_stats(self, key, params: GaussianParams, m, frame: GaussianParams | None = None) -> GaussianStats:
        """Exact law of the statistics of ``m`` points from ``params`` (m may be
        traced; m = 0 gives empty statistics)."""
        stream = as_stream(key)
        dtype = params.mean.dtype
        static_m = isinstance(m, (int, np.integer))
        mf = jnp.asarray(m, dtype)
        inv_sqrt_m = jnp.where(mf > 0, jax.lax.rsqrt(jnp.maximum(mf, 1.0)), 0.0)
        d = self.dim
        if not self.learn_cov:
            # the known-covariance fit never reads the scatter: skip its chi-square / Bartlett
            # draws (the mean's normals come first in the stream, so they are unchanged)
            zbar = _normals(stream, 1, dtype)[0].reshape(1) if d == 1 else stream.child(0).normal((d,), dtype)
            offset, mm = self._affine(params, frame)
            zero = jnp.zeros((d, d), dtype)
            return GaussianStats(mf, mf, offset + mm @ (zbar * inv_sqrt_m), zero, zero)
        if d == 1:
            (zbar,) = _normals(stream, 1, dtype)
            min_df = float(m - 1) if static_m else None
            scat = stream.chi2(jnp.maximum(mf - 1.0, 0.0), dtype, min_df=min_df, offset=_wpn(dtype))
            zbar = zbar * inv_sqrt_m
            offset, mm = self._affine(params, frame)
            a = mm[0, 0]
            mean = offset + a * zbar
            return _stats_1d(mf, mf, mean.reshape(1), (a * a * scat).reshape(1, 1))
        zbar = stream.child(0).normal((d,), dtype) * inv_sqrt_m
        off = jnp.tril(stream.child(1).normal((d, d), dtype), -1)
        diag = [jnp.sqrt(stream.child(2).chi2(jnp.maximum(mf - 1.0 - i, 0.0), dtype, offset=i * 64)) for i in range(d)]
        bart = off + jnp.diag(jnp.stack(diag))
        offset, mm = self._affine(params, frame)
        # the scatter's root is kept: the fit reads it directly (never t t^T refactored)
        return _stats_nd(mf, mf, offset + mm @ zbar, mm @ bart)

    def location(self, params: GaussianParams) -> jax.Array:
        """The mean (interaction graphs' ``homogenisation``)."""
        return params.mean

    # ------------------------------------------------------------------ pressures (collapse_jax.Pressured)
    def temper(self, params: GaussianParams, tau) -> GaussianParams:
        """The model at temperature tau: covariance tau^2 Sigma (log scale + log tau)."""
        log_scale = params.log_scale + jnp.log(tau).astype(params.log_scale.dtype)
        return GaussianParams(params.mean, log_scale, params.log_shape, params.unit)

    def truncates_directly(self) -> bool:
        """In 1-D truncated draws come straight from the inverse CDF (:meth:`sample_truncated`)."""
        return self.dim == 1

    def sample_truncated(self, key, params: GaussianParams, n: int, q, frame: GaussianParams | None = None):
        """1-D: ``n`` draws from ``params`` truncated to its central mass q, exactly, by
        inversion: z = sqrt(2) erfinv(q (2u - 1)) on the uniforms behind :meth:`sample`'s
        normals (q = 1 gives :meth:`sample`'s points bit for bit)."""
        offset, m = self._affine(params, frame)
        dtype = params.mean.dtype
        u = as_stream(key).uniform((n,), dtype)
        z = jnp.sqrt(jnp.asarray(2.0, dtype)) * jax.lax.erf_inv(jnp.asarray(q, dtype) * (2.0 * u - 1.0))
        return (offset[0] + z * m[0, 0])[:, None]

    def score(self, params: GaussianParams, data, frame: GaussianParams | None = None) -> jax.Array:
        """Squared Mahalanobis radius of each point under ``params`` (data in
        ``frame`` coordinates): chi-square with d degrees of freedom for draws from it."""
        offset, m = self._affine(params, frame)
        if self.dim == 1:
            r = (data[:, 0] - offset[0]) / m[0, 0]
            return r * r
        r = solve_triangular(m, (data - offset[None, :]).T, lower=True)
        return jnp.sum(r * r, axis=0)

    def score_quantile(self, params: GaussianParams, q) -> jax.Array:
        """The q-quantile of :meth:`score` under ``params``: chi2_d's (1-D:
        Phi^-1((1 + q)/2)^2; d-D: bisection on the regularised incomplete gamma)."""
        dtype = params.mean.dtype
        q = jnp.asarray(q, dtype)
        if self.dim == 1:
            z = jax.scipy.special.ndtri(0.5 + 0.5 * q)
            return z * z
        half = 0.5 * self.dim
        hi0 = jnp.asarray(self.dim + 40.0 * math.sqrt(2.0 * self.dim) + 200.0, dtype)

        def body(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            below = gammainc(half, 0.5 * mid) < q
            return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

        lo, hi = jax.lax.fori_loop(0, 64, body, (jnp.zeros((), dtype), hi0))
        return 0.5 * (lo + hi)

    # ------------------------------------------------------------------ curation (synthesis curate=)
    def check_reward(self, reward: np.ndarray, quadratic: float | None) -> None:
        """Linear coefficients b of shape (dim,); the quadratic c >= 0 is a scalar."""
        if reward.shape != (self.dim,):
            raise ValueError(
                f"Gaussian: reward must be the linear coefficients b of r(x) = b^T x - (c/2)||x||^2, shape "
                f"({self.dim},), got shape {reward.shape}"
            )

    def reward(self, reward, quadratic, data, frame: GaussianParams | None = None) -> jax.Array:
        """r(x) = b^T x - (c/2) ||x||^2 of each point (absolute coordinates)."""
        x = data
        if frame is not None:
            offset, m = self._affine(frame, None)
            x = offset[None, :] + x @ m.T
        r = x @ reward.astype(x.dtype)
        if quadratic is not None:
            r = r - 0.5 * quadratic.astype(x.dtype) * jnp.sum(x * x, axis=1)
        return r

    def mean_reward(self, params: GaussianParams, reward, quadratic) -> jax.Array:
        """E r(x) = b^T mu - (c/2)(||mu||^2 + tr Sigma)."""
        mean, m = self._affine(params, None)
        out = jnp.dot(mean, reward.astype(mean.dtype))
        if quadratic is not None:
            out = out - 0.5 * quadratic.astype(mean.dtype) * (jnp.sum(mean * mean) + jnp.sum(m * m))
        return out

    def tilt(self, params: GaussianParams, reward, quadratic, scale) -> GaussianParams:
        """N(mu, Sigma) tilted by exp(beta r(x)): Sigma' = (Sigma^-1 + beta c I)^-1,
        mu' = Sigma' (Sigma^-1 mu + beta b); with c = 0 only the mean moves, by beta Sigma b."""
        mean, m = self._affine(params, None)
        dtype = mean.dtype
        beta = jnp.asarray(scale, dtype)
        sb = m @ (m.T @ reward.astype(dtype))  # Sigma b
        if quadratic is None:
            return GaussianParams(mean + beta * sb, params.log_scale, params.log_shape, params.unit)
        bc = beta * quadratic.astype(dtype)
        if self.dim == 1:
            s2 = m[0, 0] * m[0, 0]
            shrink = 1.0 / (1.0 + bc * s2)
            mean_t = (mean + beta * sb) * shrink
            return GaussianParams(mean_t, params.log_scale + 0.5 * jnp.log(shrink), params.log_shape, params.unit)
        cov = m @ m.T
        a = jnp.eye(self.dim, dtype=dtype) + bc * cov  # Sigma' = A^-1 Sigma, mu' = A^-1 (mu + beta Sigma b)
        cov_t = jnp.linalg.solve(a, cov)
        mean_t = jnp.linalg.solve(a, mean + beta * sb)
        return self._compose_root(mean_t, jnp.linalg.cholesky(0.5 * (cov_t + cov_t.T)), None)

    def correct(self, params: GaussianParams, truth: GaussianParams, data, gamma, frame=None):
        """Self-correction: x + gamma (T(x) - x), T(x) = mu* + L* L^-1 (x - mu) the
        map carrying N(mu, Sigma) onto the truth N(mu*, Sigma*) (in 1-D the monotone,
        optimal-transport map). Corrected points are Gaussian with mean
        (1 - gamma) mu + gamma mu* (THEORY.md section 13)."""
        o_m, m_m = self._affine(params, frame)
        o_t, m_t = self._affine(truth, frame)
        if self.dim == 1:
            x = data[:, 0]
            t = o_t[0] + m_t[0, 0] * ((x - o_m[0]) / m_m[0, 0])
            return (x + gamma * (t - x))[:, None]
        z = solve_triangular(m_m, (data - o_m[None, :]).T, lower=True).T
        t = o_t[None, :] + z @ m_t.T
        return data + gamma * (t - data)

    # ------------------------------------------------------------------ weighted mixing
    def combine(self, p_real: GaussianParams, p_synth: GaussianParams, w) -> GaussianParams:
        """He, Xu, Cheng (arXiv 2502.18049): mean and covariance are convex
        combinations w * theta(real) + (1 - w) * theta(synth), done in log scale."""
        w = jnp.asarray(w, p_real.mean.dtype)
        mean = w * p_real.mean + (1 - w) * p_synth.mean
        if not self.learn_cov:
            return GaussianParams(mean, p_real.log_scale, p_real.log_shape, p_real.unit)
        log_w, log_1mw = jnp.log(w), jnp.log1p(-w)
        if self.dim == 1:
            log_var = jnp.logaddexp(log_w + 2 * p_real.log_scale, log_1mw + 2 * p_synth.log_scale)
            return GaussianParams(mean, 0.5 * log_var, p_real.log_shape, p_real.unit)
        # in the real fit's frame: Sigma = L_r (w I + (1 - w) K K^T) L_r^T, K = L_r^-1 L_s
        _, k = self._affine(p_synth, p_real)
        inner = w * jnp.eye(self.dim, dtype=w.dtype) + (1 - w) * (k @ k.T)
        mixed = self._compose_root(jnp.zeros_like(mean), jnp.linalg.cholesky(inner), p_real)
        # w = 0 is the synthetic fit exactly (however far it has collapsed below the real one)
        synth = w == 0
        return GaussianParams(
            mean,
            jnp.where(synth, p_synth.log_scale, mixed.log_scale),
            jnp.where(synth, p_synth.log_shape, mixed.log_shape),
            jnp.where(synth, p_synth.unit, mixed.unit),
        )

    # ------------------------------------------------------------------ metrics
    def events(self, params: GaussianParams) -> dict[str, jax.Array]:
        ratio = self._logdet_ratio(params)
        return {"collapse": ratio < 2 * self.dim * jnp.log(self.collapse_below.astype(ratio.dtype))}

    def _logdet_ratio(self, params: GaussianParams) -> jax.Array:
        logdet = 2 * self.dim * params.log_scale + 2 * jnp.sum(params.log_shape)
        return logdet - self._logdet0.astype(logdet.dtype)

    def metrics(self, key, params: GaussianParams) -> dict[str, jax.Array]:
        dtype = params.mean.dtype
        f = self.astype(dtype)
        out = f._metrics_1d(params) if self.dim == 1 else f._metrics_nd(as_stream(key), params)
        if self.data is not None:
            out.update(f._heldout(as_stream(key), params))
        return out

    def _heldout(self, stream: Stream, params: GaussianParams) -> dict[str, jax.Array]:
        """The held-out measures against the data set's test split."""
        data = self.data
        assert data is not None
        draws = self.sample(stream.child(1), params, HELDOUT_SAMPLES)
        xt = data.x_test.astype(params.mean.dtype)
        logdet = 2 * self.dim * params.log_scale + 2 * jnp.sum(params.log_shape)
        logpdf = -0.5 * (self.score(params, xt) + logdet + self.dim * math.log(2 * math.pi))
        return heldout_metrics(data, draws, logpdf)

    def astype(self, dtype) -> Gaussian:
        """This family with its float arrays cast to ``dtype``."""
        return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, self)

    def _metrics_1d(self, p: GaussianParams) -> dict[str, jax.Array]:
        # two exponentials per chain (sd and 1/sd) instead of one per metric: every ratio below
        # overflows or underflows at the same point as its log-space form
        s, s0 = p.log_scale, self._log_scale0
        diff = p.mean[0] - self.mean[0]
        sd, inv_sd = jnp.exp(s), jnp.exp(-s)
        sd0 = jnp.exp(s0)
        ratio0 = sd0 * inv_sd  # sd0 / sd
        z = jnp.where(diff == 0, 0.0, diff * inv_sd)  # diff / sd (0 also when sd underflows)
        kl = 0.5 * (ratio0 * ratio0 + z * z + 2 * (s - s0) - 1.0)
        c = sd0 * _NORMAL_Q995
        inv = inv_sd / math.sqrt(2.0)
        tail = 0.5 * jax.lax.erfc((diff + c) * inv) + 0.5 * jax.lax.erfc((c - diff) * inv)
        rel = sd / sd0
        return {
            "mean_sq_error": diff * diff,
            "trace_ratio": rel * rel,
            "logdet_ratio": 2 * (s - s0),
            "kl_to_truth": kl,
            "w2_sq_to_truth": diff * diff + (sd - sd0) ** 2,
            "tail_mass": tail,
            "heldout_nll": kl + 0.5 * (1.0 + math.log(2 * math.pi)) + s0,
            "variance": sd * sd,
            "log_variance": 2 * s,
            "sd": sd,
        }

    def _metrics_nd(self, stream: Stream, p: GaussianParams) -> dict[str, jax.Array]:
        """d-D metrics from (mean, log_scale, log_shape, unit), Sigma never formed:
        with L = U D, D = diag(exp(l)), l = log_scale + log_shape, every linear-scale
        quantity is a sum of terms exp(log-term) that under- or overflows alone (0 or
        +inf, never NaN)."""
        d = self.dim
        ld, unit = p.log_scale + p.log_shape, p.unit
        diff = p.mean - self.mean
        logdet_ratio = self._logdet_ratio(p)
        tr0 = jnp.trace(self.cov)
        # KL(N0 || N) = 0.5 [tr(S^-1 S0) + maha - d + logdet S - logdet S0], L^-1 = D^-1 U^-1
        rows = jnp.sum(_la.solve_unit_lower(unit, self._chol0) ** 2, axis=1)  # squared rows of U^-1 L0
        tr_term = jnp.sum(jnp.exp(jnp.log(rows) - 2 * ld))
        y = _scale_down(_la.solve_unit_lower(unit, diff), ld)  # L^-1 (mu - mu0)
        maha = jnp.sum(y * y)
        kl = 0.5 * (tr_term + maha - d + logdet_ratio)
        # tr S = e^{2c} ||U exp(l - c)||_F^2 and the nuclear norm likewise, c = max l
        top = jnp.max(ld)
        shape = _la.factor(ld - top, unit)  # L e^{-c}: largest column scale 1
        log_trace = 2 * top + jnp.log(jnp.sum(shape * shape))
        trace = jnp.exp(log_trace)
        # W2^2 = |diff|^2 + tr S + tr S0 - 2 ||S0^(1/2) L||_* (nuclear norm)
        nuc = jnp.exp(top) * jnp.sum(jnp.linalg.svd(self._sqrt0 @ shape, compute_uv=False))
        w2 = jnp.where(jnp.isfinite(trace), jnp.sum(diff**2) + trace + tr0 - 2 * nuc, jnp.inf)
        return {
            "mean_sq_error": jnp.sum(diff**2),
            "trace_ratio": jnp.exp(log_trace - jnp.log(tr0)),
            "logdet_ratio": logdet_ratio,
            "kl_to_truth": kl,
            "w2_sq_to_truth": jnp.maximum(w2, 0.0),
            "tail_mass": self._tail_mass_nd(stream, top, shape, diff),
            "heldout_nll": kl + 0.5 * d * (1.0 + math.log(2 * math.pi)) + 0.5 * self._logdet0,
        }

    def _tail_mass_nd(self, stream: Stream, top, shape, diff) -> jax.Array:
        """P_fit(Q > q), Q = ||b + e^c B z||^2, b = L0^-1 (mu - mu0), B = L0^-1 L e^{-c}
        (``shape`` = L e^{-c}, c = ``top``), integrated exactly in the radius along
        random lines z = r u (see class doc)."""
        dtype = diff.dtype
        d = self.dim
        b = solve_triangular(self._chol0, diff, lower=True)
        bt = solve_triangular(self._chol0, shape, lower=True)
        u = stream.child(0).normal((TAIL_LINES, d), dtype)
        u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
        v = u @ bt.T  # (lines, d): B u
        a = jnp.sum(v * v, axis=1)
        beta = v @ b
        gam = jnp.sum(b * b)
        q = jnp.asarray(self._tail_q, dtype)
        disc = beta * beta - a * (gam - q)
        root = jnp.sqrt(jnp.maximum(disc, 0.0))
        half = 0.5 * d

        def inside(sign):
            # rho = e^c r along direction sign*u: Q <= q for rho in [rho_lo, rho_hi]
            bb = sign * beta
            lo = jnp.maximum((-bb - root) / a, 0.0)
            hi = jnp.maximum((-bb + root) / a, 0.0)
            r2_lo = jnp.exp(2 * (jnp.log(lo) - top))
            r2_hi = jnp.exp(2 * (jnp.log(hi) - top))
            prob = gammainc(half, 0.5 * r2_hi) - gammainc(half, 0.5 * r2_lo)
            return jnp.where(disc > 0, prob, 0.0)

        inside_prob = 0.5 * (inside(1.0) + inside(-1.0))
        return jnp.clip(1.0 - jnp.mean(inside_prob), 0.0, 1.0)


_NORMAL_Q995 = statistics.NormalDist().inv_cdf(0.5 + TAIL_LEVEL / 2)


def _scale_down(v: jax.Array, log_scale: jax.Array) -> jax.Array:
    """v * exp(-log_scale) computed as sign(v) exp(log|v| - log_scale): exactly 0
    for v = 0 even when exp(-log_scale) overflows (0 * inf would be NaN)."""
    return jnp.sign(v) * jnp.exp(jnp.log(jnp.abs(v)) - log_scale)


def _wpn(dtype) -> int:
    return 2 if jnp.dtype(dtype) == jnp.float64 else 1


def _normals(stream: Stream, count: int, dtype) -> list[jax.Array]:
    from .._rng import normal_from_words

    return normal_from_words(stream.words(count * _wpn(dtype)), dtype)
