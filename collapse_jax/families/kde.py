"""Kernel density estimation with a fixed bandwidth (Kazdan et al. 2024, "Collapse or
Thrive?", arXiv 2410.16713, KDE task).

A fit is the weighted sample itself: every stored point carries its normalised
weight (zero = an empty slot). The density is p(x) = sum_i w_i N(x; x_i, h^2 I) with
the bandwidth h absolute and the same in every generation. Sampling from it picks a
stored point with probability w_i and adds independent kernel noise h N(0, I), so
refitting on one's own samples adds h^2 of variance per coordinate per generation while
resampling n points removes a fraction 1/n of the stored variance: under Replace the
stored sample's variance tends to (n - 1) d h^2 whatever the truth, so KDE chains
**inflate** (when n d h^2 > tr Cov_0, the usual case) rather than collapse, and never
collapse below that floor (THEORY.md section 12; `collapse_jax.theory.kde`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import ClassVar, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jaxtyping import Array, Float

from .._rng import Stream, as_stream
from .._validate import as_float_array, check_covariance, check_int
from ..data import HELDOUT_SAMPLES, Empirical, heldout_metrics
from ._counts import inverse_cdf
from ._ondata import OnData, as_data, data_dim, sized_for_run
from ._options import Kernel
from ._protocol import Scorable

KERNELS: tuple[Kernel, ...] = get_args(Kernel)
HELDOUT_SIZE = 500  # Kazdan et al. evaluate the NLL on 500 fresh real test points
BANDWIDTH_BOUNDS = (1e-18, 1e18)  # h^2 and 1/h^2 stay normal float32 numbers
_BLOCK_ELEMENTS = 2**15  # (test point, stored point) pairs per block of the held-out NLL
_SINGLE_KEYS = frozenset({"mean", "cov"})
_MIXTURE_KEYS = frozenset({"means", "cov", "covs", "weights"})


class KDEParams(eqx.Module):
    """One chain's fit: the stored points and their normalised weights (sum 1; zero
    marks an empty slot, whose point is stored as 0)."""

    points: Float[Array, "m d"]
    weights: Float[Array, " m"]


class MixtureTruth(eqx.Module):
    """A KDE's truth: a Gaussian mixture (weights (k,), means (k, d), Cholesky
    factors (k, d, d) of the covariances). Not a fit: real data come from
    :meth:`KDE.sample_real`, its density from :meth:`KDE.score_real`."""

    weights: Float[Array, " k"]
    means: Float[Array, "k d"]
    chols: Float[Array, "k d d"]


class KDE(OnData, Scorable):
    """A kernel density estimate with a fixed absolute bandwidth, refitted on its own
    samples.

    ``fit`` stores the weighted training sample (points and weights normalised to sum
    1; zero-weight slots of a regime's buffer stay empty). ``sample`` draws each point
    by a categorical choice of a stored point (inverse CDF of the cumulative weights at
    one uniform of the stream: exact up to float rounding, and zero-weight slots are
    never chosen) plus kernel noise h z, z ~ N(0, I). Frames are ignored: data are
    absolute coordinates (a KDE does not collapse to a point, so there is no loss of
    precision for a frame to prevent: under Replace its stored variance tends to
    (n - 1) d h^2).

    Args:
        bandwidth: the kernel's standard deviation h per coordinate, absolute and
            the same in every generation (traced: sweeping it never recompiles; within
            [1e-18, 1e18]). Kazdan et al. use h in {0.1, 0.5, 1}; it is scikit-learn's
            ``KernelDensity(bandwidth=h)``.
        kernel: ``"gaussian"`` (the only kernel so far): K_h(u) = N(u; 0, h^2 I).
        dim: dimension d >= 1 (static).
        truth: the real-data distribution, a Gaussian mixture given as
            ``None`` (default): N(0, I_d);
            ``{"mean": m, "cov": C}``: one Gaussian (m a scalar or shape (d,); C a
            scalar c for c I or a (d, d) symmetric positive definite matrix; either key
            may be left out: 0 and I);
            ``{"means": M, "covs": Cs, "weights": p}``: a mixture of K Gaussians, M of
            shape (K, d) (or (K,) in 1-D), Cs a list of K covariances (or ``"cov"``:
            one shared by all, default I), p of shape (K,) (nonnegative, normalised;
            default uniform). Kazdan et al.'s "blobs" are such a mixture.
        heldout_size: size of the fresh real sample behind ``heldout_nll`` (static;
            default 500, as Kazdan et al.).
        data: a :class:`~collapse_jax.Empirical` data set as the truth. Real points
            are rows of its training pool (:mod:`collapse_jax.data`); the truth is
            this family's fit of the whole pool, the KDE of its rows, so
            ``heldout_nll`` draws from it and ``mean_sq_error`` uses its mean;
            :meth:`truth` is then its moment-matched Gaussian (mean, pool covariance
            + h^2 I), what `collapse_jax.theory.kde` reads; ``dim`` defaults to the
            data's; the held-out measures of
            :func:`~collapse_jax.data.heldout_metrics` join the metrics.
        capacity: number of slots of the stored sample (static). ``None`` (default):
            sized by ``simulate`` from the regime (``for_run``): n under Replace,
            FreshMix, RetainOriginal and AccumulateSubsample, (generations + 1) n under
            ``Accumulate``, n + m under ``Weighted(combine="samples")``; generation 0's
            fit of n points is padded with empty slots, because the simulator carries
            every generation's fit in arrays of one shape. A given capacity must be
            at least that size.

    Metrics (d-D quantities are traces):

      * ``heldout_nll``: mean of -log p(y) over ``heldout_size`` fresh points y from
        the truth, drawn from the chain's METRICS stream of that generation (an
        unbiased estimate of the cross-entropy E_truth[-log p], nats per point);
      * ``variance``: the density's variance, sum_i w_i ||x_i - xbar||^2 + d h^2;
      * ``sample_variance``: the stored sample's weighted variance
        sum_i w_i ||x_i - xbar||^2 (an MLE: it divides by the total weight);
      * ``mean_sq_error``: ||xbar - mu_0||^2, xbar the weighted mean of the store (the
        density's mean) and mu_0 the truth's mean.

    On the truth itself (never a generation) they describe the true distribution.

    ``min_points()`` is 1: a single point is a valid KDE, and the MLE variance of one
    point is 0 (no n - 1 divisor anywhere).

    Cost and memory: a fit stores its whole training set, O(capacity d) per chain; under
    ``Accumulate`` that is O(G n d), twice (the regime's buffer and the fit). Sampling is
    O(n log capacity) per generation; ``heldout_nll`` is O(heldout_size capacity d), in
    blocks of at most 2^15 point pairs per chain.
    """

    dim: int = eqx.field(static=True)
    kernel: Kernel = eqx.field(static=True)
    heldout_size: int = eqx.field(static=True)
    capacity: int | None = eqx.field(static=True)
    bandwidth: Float[Array, ""]
    truth_means: Float[Array, "k d"]
    truth_chols: Float[Array, "k d d"]
    truth_weights: Float[Array, " k"]
    _truth_spec: tuple = eqx.field(static=True)  # JSON-able copy of the truth for describe()
    data: Empirical | None
    _data_first: int = eqx.field(static=True)

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"bandwidth": BANDWIDTH_BOUNDS}
    data_truth_args: ClassVar[tuple[str, ...]] = ("truth",)  # with data=: the pool

    def __init__(
        self,
        bandwidth,
        kernel: Kernel = "gaussian",
        dim: int | None = None,
        *,
        truth: Mapping | None = None,
        heldout_size: int = HELDOUT_SIZE,
        capacity: int | None = None,
        data=None,
    ):
        h = _check_bandwidth(bandwidth)
        data = as_data("KDE", data)
        dim = data_dim("KDE", data, dim, {"truth": truth})
        if data is not None:
            pool = np.asarray(data.x, np.float64)
            cov = np.atleast_2d(np.cov(pool, rowvar=False, bias=True)) + h * h * np.eye(dim)
            truth = {"mean": pool.mean(axis=0), "cov": cov}
        if not isinstance(kernel, str) or kernel not in KERNELS:
            raise ValueError(f"KDE: kernel must be one of {KERNELS}, got {kernel!r}")
        d = check_int("KDE: dim", dim, 1)
        k_held = check_int("KDE: heldout_size", heldout_size, 1)
        cap = None if capacity is None else check_int("KDE: capacity", capacity, 1)
        means, covs, weights = _parse_truth(truth, d)
        self.dim = d
        self.kernel = kernel
        self.heldout_size = k_held
        self.capacity = cap
        self.bandwidth = jnp.asarray(h, jnp.float32)
        self.truth_means = jnp.asarray(means, jnp.float32)
        self.truth_chols = jnp.asarray(np.linalg.cholesky(covs), jnp.float32)
        self.truth_weights = jnp.asarray(weights, jnp.float32)
        self._truth_spec = (_nested_tuple(means), _nested_tuple(covs), _nested_tuple(weights))
        self.data = data
        self._data_first = 0

    # ------------------------------------------------------------------ basics
    def truth(self) -> MixtureTruth:
        return MixtureTruth(self.truth_weights, self.truth_means, self.truth_chols)

    def blank_fit(self) -> KDEParams:
        dtype = self.truth_means.dtype
        return KDEParams(jnp.zeros((1, self.dim), dtype), jnp.ones((1,), dtype))

    def min_points(self) -> int:
        return 1

    def config_arg(self, name: str):
        if name == "truth" and self.data is None:
            means, covs, weights = self._truth_spec
            return {"means": _nested_list(means), "covs": _nested_list(covs), "weights": list(weights)}
        return super().config_arg(name)

    def truth_moments(self) -> tuple[np.ndarray, float]:
        """(mean, total variance tr Cov) of the true distribution, float64 on the host:
        the ``var0`` that `collapse_jax.theory.kde` takes."""
        means, covs, weights = (np.asarray(a, np.float64) for a in self._truth_spec)
        mu = weights @ means
        spread = np.sum(weights * np.sum((means - mu) ** 2, axis=1))
        return mu, float(np.sum(weights * np.trace(covs, axis1=1, axis2=2)) + spread)

    def validate_regime(self, regime, n: int, exact: bool) -> None:
        cap = self.capacity
        if cap is not None and cap < n:
            raise ValueError(f"KDE: capacity={cap} is smaller than n={n}, the size of generation 0's fit")

    def for_run(self, regime, n: int, generations: int) -> KDE:
        """Every generation's fit stores ``regime.fit_size(...)`` slots (Accumulate:
        (generations + 1) n; Weighted(combine="samples"): n + m): generation 0's fit of
        n points is padded to that size, so every fit has one static shape."""
        need = regime.fit_size(self, n, generations)
        if self.capacity is None:
            if need == n:
                return sized_for_run(self, n)
            sized = copy.copy(self)
            object.__setattr__(sized, "capacity", need)  # a static field: eqx.tree_at cannot set it
            return sized_for_run(sized, n)
        if self.capacity < need:
            raise ValueError(
                f"KDE: capacity={self.capacity} is smaller than {need}, the largest fit of "
                f"{type(regime).__name__} at n={n}, generations={generations}; leave capacity=None to size it "
                "automatically"
            )
        return sized_for_run(self, n)

    # ------------------------------------------------------------------ sample / fit
    def sample(self, key, params: KDEParams, n: int, frame=None) -> jax.Array:
        """``n`` points, shape (n, dim), in absolute coordinates (``frame`` is ignored)."""
        stream = as_stream(key)
        dtype = params.points.dtype
        idx = inverse_cdf(stream.child(0).uniform((n,), dtype), params.weights)
        h = self.bandwidth.astype(dtype)
        if self.dim == 1:
            # (n,) vectors: a size-1 minor axis vectorises badly on CPU
            z = stream.child(1).normal((n,), dtype)
            return (jnp.take(params.points[:, 0], idx) + h * z)[:, None]
        z = stream.child(1).normal((n, self.dim), dtype)
        return jnp.take(params.points, idx, axis=0) + h * z

    def sample_real(self, key, n: int, frame=None) -> jax.Array:
        """``n`` points from the true mixture, or rows of the data set, shape (n, dim)."""
        if self.data is not None:
            return self.data.draw_x(key, n, self._data_first or None).astype(self.truth_means.dtype)
        return self._sample_truth(as_stream(key), n, self.truth_means.dtype)

    def _pool_fit(self, dtype) -> KDEParams:
        """With data: the truth, the KDE of the whole training pool."""
        data = self.data
        assert data is not None
        return KDEParams(data.x.astype(dtype), jnp.full((data.rows,), 1.0 / data.rows, dtype))

    def _sample_truth(self, stream: Stream, n: int, dtype) -> jax.Array:
        if self.data is not None:
            return self.sample(stream, self._pool_fit(dtype), n)
        means = self.truth_means.astype(dtype)
        chols = self.truth_chols.astype(dtype)
        k = means.shape[0]
        if k == 1:
            # the same normals as Gaussian.sample on this stream: common random numbers
            if self.dim == 1:
                return (means[0, 0] + chols[0, 0, 0] * stream.normal((n,), dtype))[:, None]
            return means[0][None, :] + stream.normal((n, self.dim), dtype) @ chols[0].T
        comp = inverse_cdf(stream.child(0).uniform((n,), dtype), self.truth_weights.astype(dtype))
        if self.dim == 1:
            z = stream.child(1).normal((n,), dtype)
            return (jnp.take(means[:, 0], comp) + jnp.take(chols[:, 0, 0], comp) * z)[:, None]
        z = stream.child(1).normal((n, self.dim), dtype)
        return jnp.take(means, comp, axis=0) + jnp.einsum("nij,nj->ni", jnp.take(chols, comp, axis=0), z)

    def fit(self, key, data, weights, frame=None) -> KDEParams:
        """Store ``data`` (points, dim) with weights normalised to sum 1 (``None`` =
        unit weights). Zero-weight slots are stored as the point 0 with weight 0 (they
        may hold anything, even inf). With ``capacity`` the store is padded with
        empty slots to that size."""
        m = data.shape[0]
        dtype = data.dtype
        w = jnp.ones((m,), dtype) if weights is None else weights.astype(dtype)
        pos = w > 0
        points = jnp.where(pos[:, None], data, jnp.zeros((), dtype))
        w = jnp.where(pos, w, jnp.zeros((), dtype))
        w = w / jnp.sum(w)
        cap = self.capacity
        if cap is not None:
            if m > cap:
                raise ValueError(f"KDE: a fit received {m} points but capacity={cap}")
            points = jnp.concatenate([points, jnp.zeros((cap - m, self.dim), dtype)])
            w = jnp.concatenate([w, jnp.zeros((cap - m,), dtype)])
        return KDEParams(points, w)

    # ------------------------------------------------------------------ metrics
    def metrics(self, key, params: KDEParams) -> dict[str, jax.Array]:
        stream = as_stream(key)
        dtype = params.points.dtype
        h = self.bandwidth.astype(dtype)
        y = self._sample_truth(stream.child(0), self.heldout_size, dtype)
        mu0 = jnp.sum(self.truth_weights.astype(dtype)[:, None] * self.truth_means.astype(dtype), axis=0)
        extra = {}
        if self.data is not None:
            draws = self.sample(stream.child(2), params, HELDOUT_SAMPLES)
            extra = heldout_metrics(self.data, draws, self.log_density(params, self.data.x_test.astype(dtype)))
        w, x = params.weights, params.points
        if self.dim == 1:
            xbar = jnp.sum(w * x[:, 0]).reshape(1)
            dev = x[:, 0] - xbar[0]
            svar = jnp.sum(w * dev * dev)
        else:
            xbar = jnp.sum(w[:, None] * x, axis=0)
            dev = x - xbar[None, :]
            svar = jnp.sum(w[:, None] * dev * dev)
        err = xbar - mu0
        return {
            "heldout_nll": -jnp.mean(self.log_density(params, y)),
            "variance": svar + self.dim * h * h,
            "sample_variance": svar,
            "mean_sq_error": jnp.sum(err * err),
        } | extra

    def score(self, params: KDEParams, data, frame=None) -> jax.Array:
        """-log p(x) (collapse_jax.Pressured's filters; quantiles by Monte Carlo)."""
        return -self.log_density(params, data)

    def score_real(self, data, frame=None) -> jax.Array:
        """-log p(x) under the true mixture (the verifier's score)."""
        return -self._truth_log_density(data)

    def log_density(self, params: KDEParams, y: Float[Array, "k d"]) -> Float[Array, " k"]:
        """log p(y) of the fitted KDE at points ``y`` (k, dim), in blocks of at most
        2^15 (test point, stored point) pairs (memory O(2^15) per chain whatever the
        store's size). Empty slots contribute nothing."""
        dtype = params.points.dtype
        h = self.bandwidth.astype(dtype)
        x, w = params.points, params.weights
        size, d = x.shape
        log_w = jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, jnp.ones((), dtype))), -jnp.inf)
        const = -0.5 * d * math.log(2 * math.pi) - d * jnp.log(h)
        inv_2h2 = 0.5 / (h * h)

        def block(yb):
            if d == 1:
                diff = yb[:, 0][:, None] - x[:, 0][None, :]
                d2 = diff * diff
            else:
                diff = yb[:, None, :] - x[None, :, :]
                d2 = jnp.sum(diff * diff, axis=-1)
            return logsumexp(log_w[None, :] - inv_2h2 * d2, axis=1) + const

        k = y.shape[0]
        per = max(1, min(k, _BLOCK_ELEMENTS // max(size * d, 1)))
        blocks = -(-k // per)
        if blocks == 1:
            return block(y)
        pad = blocks * per - k
        yp = jnp.concatenate([y, jnp.zeros((pad, d), dtype)]).reshape(blocks, per, d)
        return jax.lax.map(block, yp).reshape(-1)[:k]

    def _truth_log_density(self, y: Float[Array, "k d"]) -> Float[Array, " k"]:
        """log of the true mixture density at ``y`` (k, dim)."""
        dtype = y.dtype
        if self.data is not None:
            return self.log_density(self._pool_fit(dtype), y)
        means = self.truth_means.astype(dtype)
        chols = self.truth_chols.astype(dtype)
        log_p = jnp.log(self.truth_weights.astype(dtype))
        d = self.dim
        diff = y[None, :, :] - means[:, None, :]  # (K, k, d)
        z = jax.vmap(lambda c, v: jax.scipy.linalg.solve_triangular(c, v.T, lower=True).T)(chols, diff)
        half_logdet = jnp.sum(jnp.log(jnp.diagonal(chols, axis1=1, axis2=2)), axis=1)  # (K,)
        comp = -0.5 * jnp.sum(z * z, axis=-1) - (half_logdet + 0.5 * d * math.log(2 * math.pi))[:, None]
        return logsumexp(log_p[:, None] + comp, axis=0)


# --------------------------------------------------------------------------- helpers
def _check_bandwidth(value) -> float:
    low, high = BANDWIDTH_BOUNDS
    if isinstance(value, (bool, np.bool_, str)) or np.ndim(value) != 0:
        raise TypeError(f"KDE: bandwidth must be a number in [{low}, {high}] (the kernel's sd h), got {value!r}")
    try:
        h = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"KDE: bandwidth must be a number in [{low}, {high}] (the kernel's sd h), got {value!r}"
        ) from None
    if not (math.isfinite(h) and low <= h <= high):
        raise ValueError(f"KDE: bandwidth must be a finite number in [{low}, {high}] (h > 0), got {value!r}")
    return h


def _parse_truth(truth, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(means (K, d), covs (K, d, d), weights (K,)) in float64 from a truth spec."""
    usage = (
        "None, {'mean': m, 'cov': C} or {'means': M, 'covs': [C_1, ...] (or 'cov': C), 'weights': p} "
        "(a Gaussian mixture)"
    )
    if truth is None:
        truth = {}
    if not isinstance(truth, Mapping):
        raise TypeError(f"KDE: truth must be {usage}, got {truth!r}")
    keys = set(truth)
    if "means" in keys:
        if not keys <= _MIXTURE_KEYS or ("cov" in keys and "covs" in keys):
            raise ValueError(
                f"KDE: truth has keys {sorted(keys)}; a mixture takes {sorted(_MIXTURE_KEYS)} (one of cov, covs)"
            )
        means = _as_float(truth["means"], "truth['means']")
        if d == 1 and means.ndim == 1:
            means = means[:, None]
        if means.ndim != 2 or means.shape[1] != d or means.shape[0] < 1:
            raise ValueError(f"KDE: truth['means'] must have shape (K, {d}) with K >= 1, got shape {means.shape}")
        k = means.shape[0]
        if "covs" in keys:
            raw = truth["covs"]
            if not isinstance(raw, (list, tuple, np.ndarray)) or getattr(raw, "ndim", 1) == 0 or len(raw) != k:
                raise ValueError(f"KDE: truth['covs'] must hold K = {k} covariances, got {raw!r}")
            covs = np.stack([check_covariance(f"KDE: truth['covs'][{i}]", c, d)[0] for i, c in enumerate(raw)])
        else:
            cov = check_covariance("KDE: truth['cov']", truth.get("cov"), d)[0]
            covs = np.broadcast_to(cov, (k, d, d)).copy()
        if "weights" in keys:
            p = _as_float(truth["weights"], "truth['weights']")
            if p.shape != (k,) or np.any(p < 0) or not p.sum() > 0:
                raise ValueError(
                    f"KDE: truth['weights'] must be {k} nonnegative numbers with a positive sum, "
                    f"got {truth['weights']!r}"
                )
            p = p / p.sum()
        else:
            p = np.full(k, 1.0 / k)
        return means, covs, p
    if not keys <= _SINGLE_KEYS:
        raise ValueError(f"KDE: truth has unknown keys {sorted(keys - _SINGLE_KEYS)}; allowed: {usage}")
    mean = np.zeros(d) if truth.get("mean") is None else _as_float(truth["mean"], "truth['mean']")
    if mean.ndim == 0:
        mean = np.full(d, float(mean))
    if mean.shape != (d,):
        raise ValueError(f"KDE: truth['mean'] must be a scalar or a vector of shape ({d},), got shape {mean.shape}")
    cov = check_covariance("KDE: truth['cov']", truth.get("cov"), d)[0]
    return mean[None, :], cov[None], np.ones(1)


def _as_float(value, name: str) -> np.ndarray:
    return as_float_array("KDE", name, value)


def _nested_tuple(a: np.ndarray):
    a = np.asarray(a, np.float64)
    return float(a) if a.ndim == 0 else tuple(_nested_tuple(x) for x in a)


def _nested_list(a):
    return [_nested_list(x) for x in a] if isinstance(a, tuple) else a
