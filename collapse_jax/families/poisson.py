"""The Poisson family: a rate refitted by the sample mean (the MLE) of counts drawn
from the previous fit.

Under ``Replace`` the n-point total S_g = n lambda_g given S_{g-1} is Poisson(S_{g-1}),
a sum of S_{g-1} independent Poisson(1) variables: S_g is a critical Galton-Watson
process with Poisson(1) offspring (Harris 1963, "The Theory of Branching Processes";
Athreya and Ney 1972, "Branching Processes", ch. I), started from S_0 ~
Poisson(n lambda*). The rate is a martingale, its variance grows linearly, and the chain
is absorbed at lambda = 0 (a zero mean generates only zeros) with probability 1. Suresh,
Thangaraj and Khandavally 2024 (arXiv 2412.17646, AISTATS 2025) study the rate of this
collapse; the exact law is in :mod:`collapse_jax.theory.poisson`.

Params are the rate itself, a float scalar. The statistics (total weight, weighted sum
of the counts) are sufficient and additive, so every regime runs on them, and
``sampler="exact"`` draws the sum of m points as one Poisson(m lambda) variable.

Poisson variables are drawn here, not by ``jax.random.poisson``: that function converts
the mean to float32 and evaluates its acceptance test (Hormann's PTRS) with
``-lam + k log(lam) - lgamma(k + 1)``, three terms of size ~k log k whose float32
rounding (~1 at k = 10^6) is of the order of the test itself. Its draws are visibly
wrong for means >= 10^5 (a chi-square test of 4 x 10^5 draws rejects at p < 1e-17;
at 10^6 the variance is about 3% too high), and the exact path's mean m lambda is easily
that large. :func:`_poisson` uses the same proposal with a log-pmf that keeps its
precision (Loader's deviance form) and with the run's own counter-based streams.
"""

from __future__ import annotations

import math
from typing import ClassVar, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int

from .._rng import MAX_PAIRS, Stream, as_stream, words_per_number
from .._validate import check_number, is_traced, traced_scalar
from ._options import Sampler
from ._protocol import Combinable, ExactSampler

SAMPLERS: tuple[Sampler, ...] = get_args(Sampler)
MIN_RATE = float(np.finfo(np.float32).tiny)  # the truth's rate must be > 0 (and a normal float32)
MAX_RATE = 2.0**24  # every point must be an exact integer in float32 (and far inside int32)

SMALL_MEAN = 10.0  # below: inversion of the cdf; at or above: Hormann's PTRS
TABLE = 64  # inversion support 0..63: P(X >= 64) < 1e-25 for a mean < 10
STATS_PROPOSALS = 12  # exact path: P(all rejected) <= 0.247^12, about 5e-8 per draw (fast mode's NaN)
POINT_PROPOSALS = 4  # sample path: the rare leftovers are redrawn in a loop
_SERIES_TERMS = 9  # Loader's bd0 series for |k - mu| < 0.1 (k + mu): v^18 < 1e-18
_LOG_FACTORIAL = np.array([math.lgamma(k + 1.0) for k in range(TABLE)])
# stirlerr(k) = log k! - (k log k - k + log(2 pi k) / 2), k = 0..15 (index 0 unused)
_STIRLERR = np.array(
    [0.0] + [math.lgamma(k + 1.0) - (k * math.log(k) - k + 0.5 * math.log(2 * math.pi * k)) for k in range(1, 16)]
)


def _check_rate(rate) -> jax.Array:
    """The truth's rate as a float32 scalar, else a TypeError/ValueError naming it (a
    JAX tracer, the constructor called inside a user's jit, is kept unchecked)."""
    if is_traced(rate):
        return traced_scalar("Poisson", "rate", rate, 0.0, MAX_RATE, open_low=True)
    allowed = f"one number > 0 (at least {MIN_RATE:.8g}, float32's smallest normal number) and at most 2^24"
    try:
        v = check_number("Poisson", "rate", rate)
    except TypeError:
        raise TypeError(f"Poisson: rate must be {allowed}, got {rate!r}") from None
    if not MIN_RATE <= v <= MAX_RATE:
        raise ValueError(
            f"Poisson: rate must be {allowed} = {MAX_RATE:.0f} (every count an exact integer in float32), got {rate!r}"
        )
    return jnp.asarray(v, jnp.float32)


def _check_size(where: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"Poisson.{where}: n must be an int >= 1 (it sets a shape), got {n!r}")
    if n < 1:
        raise ValueError(f"Poisson.{where}: n must be >= 1, got {n}")
    return int(n)


class PoissonStats(eqx.Module):
    """Sufficient statistics of weighted counts (scalars in the run's float dtype)."""

    weight: Float[Array, ""]  # total weight (the number of points, for unit weights)
    total: Float[Array, ""]  # weighted sum of the counts


class Poisson(ExactSampler, Combinable):
    """Counts from Poisson(rate), refitted by their (weighted) sample mean.

    Args:
        rate: the truth lambda* > 0 (at most 2^24, so that every point is an exact
            integer in float32). Traced: sweepable without recompiling.
        sampler: ``"samples"`` draws the n counts (int32) of every batch;
            ``"exact"`` draws only their sum, one Poisson(m lambda) variable, O(1)
            in n (the sum of m independent Poisson(lambda) counts is Poisson(m
            lambda) exactly). Only for regimes that never need the points.

    Data are counts, shape (points,), int32; weights are importance weights. The
    statistics (:class:`PoissonStats`) are in the float dtype of the run: in float32
    a total stays an exact integer while it is < 2^24 (n lambda (G + 1) under
    ``Accumulate``); use ``dtype="float64"`` beyond. A total of 0 stays exactly 0.

    Metrics (scalars per chain): ``rate`` the fitted lambda; ``rate_sq_error``
    (lambda - lambda*)^2; ``extinct`` 1.0 where lambda = 0, else 0.0 (lambda = 0
    generates only zeros: under Replace the chain is absorbed there).

    Events: ``extinction`` the first generation with lambda = 0.

    Regimes: every regime runs on statistics (``Accumulate`` pools them, exact and in
    constant memory). ``Weighted(combine="estimates")`` averages rates, w lambda_real +
    (1 - w) lambda_synth, the same estimator as ``"samples"`` (weights w/n and
    (1 - w)/m). ``AccumulateSubsample`` stores the points: the sum of a subset of
    the pool is not determined by the pooled statistics.
    """

    sampler: Sampler = eqx.field(static=True)
    rate: Float[Array, ""]

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"rate": (MIN_RATE, MAX_RATE)}

    def __init__(self, rate=1.0, *, sampler: Sampler = "samples"):
        if sampler not in SAMPLERS:
            raise ValueError(f"Poisson: sampler must be one of {SAMPLERS}, got {sampler!r}")
        self.rate = _check_rate(rate)
        self.sampler = sampler

    # ------------------------------------------------------------------ basics
    def truth(self) -> Float[Array, ""]:
        return self.rate

    def min_points(self) -> int:
        return 1

    # ------------------------------------------------------------------ sample / fit
    def sample(self, key, params: Float[Array, ""], n: int, frame=None) -> Int[Array, " n"]:
        """``n`` i.i.d. Poisson(``params``) counts, int32 (``frame`` is ignored); see
        :func:`_poisson` for the algorithm."""
        n = _check_size("sample", n)
        if n * 2 * POINT_PROPOSALS * words_per_number(params.dtype) > 2 * MAX_PAIRS:
            raise ValueError(f"Poisson.sample: at most {MAX_PAIRS // POINT_PROPOSALS} points per draw, got n={n}")
        x = _poisson(as_stream(key), params, (n,), POINT_PROPOSALS, retry=True)
        return x.astype(jnp.int32)

    def data_stats(self, data, weights) -> PoissonStats:
        """(total weight, weighted sum of the counts). Zero-weight slots may hold any
        value: they contribute nothing."""
        dtype = self.rate.dtype
        w = jnp.ones(data.shape[:1], dtype) if weights is None else weights.astype(dtype)
        x = jnp.where(w > 0, data.astype(dtype), 0)
        return PoissonStats(jnp.sum(w), jnp.sum(w * x))

    def merge_stats(self, a: PoissonStats, b: PoissonStats) -> PoissonStats:
        return PoissonStats(a.weight + b.weight, a.total + b.total)

    def fit_stats(self, stats: PoissonStats, frame=None) -> Float[Array, ""]:
        """The weighted mean total / weight (the MLE; 0 for an empty sample)."""
        return stats.total / jnp.where(stats.weight > 0, stats.weight, 1)

    def fit(self, key, data, weights, frame=None) -> Float[Array, ""]:
        return self.fit_stats(self.data_stats(data, weights))

    def sample_stats(self, key, params: Float[Array, ""], m, frame=None) -> PoissonStats:
        """Statistics of ``m`` draws from Poisson(``params``): weight m and total
        Poisson(m lambda), exactly (a sum of independent Poisson variables is Poisson
        with the summed mean). ``m`` may be traced (a FreshMix split); m = 0 or
        lambda = 0 gives a total of exactly 0.

        Uses :data:`STATS_PROPOSALS` PTRS proposals at once; in the kernel's fast
        mode a draw whose proposals were all rejected (probability about 5e-8 at
        worst, m lambda near 10) is NaN and
        the kernel reruns its block in safe mode, which goes on drawing (see
        :func:`collapse_jax._rng.standard_gamma` for the same scheme)."""
        stream = as_stream(key)
        dtype = params.dtype
        m = jnp.asarray(m, dtype)
        total = _poisson(stream, m * params, (), STATS_PROPOSALS, retry=stream.safe)
        return PoissonStats(m, total)

    # ------------------------------------------------------------------ weighted mixing
    def combine(self, p_real, p_synth, w) -> Float[Array, ""]:
        """w lambda_real + (1 - w) lambda_synth (He, Xu, Cheng, arXiv 2502.18049,
        "estimates")."""
        w = jnp.asarray(w, p_real.dtype)
        return w * p_real + (1 - w) * p_synth

    # ------------------------------------------------------------------ metrics
    def metrics(self, key, params: Float[Array, ""]) -> dict[str, jax.Array]:
        dtype = params.dtype
        err = params - self.rate.astype(dtype)
        return {
            "rate": params,
            "rate_sq_error": err * err,
            "extinct": (params == 0).astype(dtype),
        }

    def events(self, params: Float[Array, ""]) -> dict[str, jax.Array]:
        return {"extinction": params == 0}


# ---------------------------------------------------------------------------- the sampler
def _poisson(stream: Stream, mu: jax.Array, shape: tuple[int, ...], proposals: int, *, retry: bool) -> jax.Array:
    """Poisson(``mu``) draws of ``shape`` (``mu`` a scalar >= 0), as floats in
    ``mu``'s dtype, exactly up to that dtype's rounding.

    * mu < 10: inversion of the cdf over 0..63 (tail mass < 1e-25) with one uniform
      on the open interval (0, 1); mu = 0 gives 0.
    * mu >= 10: Hormann's transformed rejection with squeeze, PTRS (Hormann 1993,
      "The transformed rejection method for generating Poisson random variables",
      Insurance: Mathematics and Economics 12, 39-45; the algorithm of numpy and
      ``jax.random.poisson``): the proposal k = floor((2a/us + b) U + mu + 0.43) and
      its acceptance test, with the log-pmf in Loader's form
      -bd0(k, mu) - log(2 pi k)/2 - stirlerr(k) (Loader 2000, "Fast and accurate
      computation of binomial probabilities"), which keeps its precision in float32
      at any mean (the naive -mu + k log mu - log k! loses ~1 nat at mu = 10^6), and
      k formed as floor(mu) + floor(frac(mu) + ...), so the proposal is not rounded
      by the size of mu. The acceptance rate is 0.75 at mu = 10 and 0.89 for large
      mu. ``proposals`` pairs of uniforms are evaluated at once and the first
      accepted one kept; where all were rejected, ``retry=True`` draws further
      pairs in a ``while_loop`` (keys folded from ``stream.key()``), and
      ``retry=False`` gives NaN (the kernel's fast mode).

    In float32 the draws are integers up to 2^24; beyond, they are rounded to the
    float grid (use float64). Both branches read the same uniforms (the branch
    depends on mu only, so each uses independent ones).
    """
    dtype = mu.dtype
    u = stream.uniform(shape + (2 * proposals,), dtype)
    small = mu < SMALL_MEAN
    x_small = _invert(jnp.where(small, mu, 0), u[..., 0])
    mu_big = jnp.where(small, jnp.asarray(SMALL_MEAN, dtype), mu)
    k, ok = _ptrs(mu_big, u[..., :proposals], u[..., proposals:])
    first = jnp.argmax(ok, axis=-1)
    k = jnp.take_along_axis(k, first[..., None], axis=-1)[..., 0]
    done = jnp.any(ok, axis=-1) | small
    if retry:
        base = stream.key()

        def body(carry):
            done, k, i = carry
            w = as_stream(jax.random.fold_in(base, i)).uniform(shape + (2,), dtype)
            kk, okk = _ptrs(mu_big, w[..., 0], w[..., 1])
            return done | okk, jnp.where(~done & okk, kk, k), i + 1

        _, k, _ = lax.while_loop(lambda c: jnp.any(~c[0]), body, (done, k, jnp.int32(0)))
    else:
        k = jnp.where(done, k, jnp.nan)
    return jnp.where(small, x_small, k)


def _invert(mu: jax.Array, u: jax.Array) -> jax.Array:
    """Inversion for a mean mu < 10: the number of cdf values below u (the cdf over
    0..63, normalised by its last value so that the result is at most 63)."""
    dtype = mu.dtype
    k = jnp.arange(TABLE, dtype=dtype)
    log_mu = jnp.log(jnp.where(mu > 0, mu, 1))
    log_pmf = k * log_mu - mu - jnp.asarray(_LOG_FACTORIAL, dtype)
    pmf = jnp.where((mu > 0) | (k == 0), jnp.exp(log_pmf), 0)
    cdf = jnp.cumsum(pmf)
    return jnp.searchsorted(cdf, u * cdf[-1], side="left").astype(dtype)


def _ptrs(mu: jax.Array, u: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One PTRS proposal per uniform pair (u, v) for a mean mu >= 10: (k, accepted)."""
    b = 0.931 + 2.53 * jnp.sqrt(mu)
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2)
    x = u - 0.5
    us = 0.5 - jnp.abs(x)  # > 0: the uniforms avoid 0 and 1
    whole = jnp.floor(mu)
    frac = mu - whole
    j = jnp.floor((2 * a / us + b) * x + frac + 0.43)  # k - floor(mu), not rounded by mu's size
    k = whole + j
    squeeze = (us >= 0.07) & (v <= v_r)
    reject = (k < 0) | ((us < 0.013) & (v > us))
    lhs = jnp.log(v * inv_alpha / (a / (us * us) + b))
    return k, squeeze | (~reject & (lhs <= _log_pmf(k, j - frac, mu)))


def _log_pmf(k: jax.Array, d: jax.Array, mu: jax.Array) -> jax.Array:
    """log P(X = k) for X ~ Poisson(mu), k >= 0 an integer, d = k - mu, as
    -bd0(k, mu) - log(2 pi k)/2 - stirlerr(k) (Loader 2000): bd0 = k log(k/mu) + mu - k
    by its series in v = d/(k + mu) where |v| < 0.1, stirlerr(k) = log k! - Stirling's
    formula from a table (k <= 15) or its asymptotic series (error < 1/(1188 k^9))."""
    dtype = mu.dtype
    ks = jnp.maximum(k, 1)
    s = ks + mu
    v = d / s
    series = d * v
    term = 2 * ks * v
    for i in range(1, _SERIES_TERMS + 1):
        term = term * v * v
        series = series + term / (2 * i + 1)
    direct = ks * jnp.log(ks / mu) - d
    bd0 = jnp.where(jnp.abs(d) < 0.1 * s, series, direct)
    idx = jnp.clip(ks, 1, 15).astype(jnp.int32)
    inv = 1 / ks
    inv2 = inv * inv
    tail = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))
    stirlerr = jnp.where(ks <= 15, jnp.asarray(_STIRLERR, dtype)[idx], tail)
    out = -bd0 - 0.5 * jnp.log(2 * math.pi * ks) - stirlerr
    return jnp.where(k == 0, -mu, out)
