"""The categorical family: K categories refitted by their empirical frequencies
(Wright-Fisher drift; Shumailov et al. 2024, Nature 631, 755-759, discrete model;
Seddik et al. 2024, arXiv 2404.05090).

Each generation draws n points from the fitted frequencies and refits, so under
``Replace`` the counts are a neutral haploid Wright-Fisher population of size n
(Ewens 2004, "Mathematical Population Genetics", ch. 3): every category is a
martingale, a category that reaches 0 never comes back (tail disappearance), and
the chain ends with one category holding all the mass.

Params are the probability vector itself, shape (K,). The counts are sufficient:
the family implements the sufficient-statistics protocol (statistics = the
weighted counts, shape (K,)), so every regime runs exactly on counts, and
``AccumulateSubsample`` draws the counts of its uniform n-subset from a
multivariate hypergeometric law (:meth:`Categorical.subsample_stats`) instead of
storing every point.
"""

from __future__ import annotations

import math
from typing import ClassVar, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._rng import MAX_PAIRS, as_stream, words_per_number
from ._options import Sampler
from ._protocol import Combinable, ExactSampler, Scorable, SubsampleStats, Temperable

SAMPLERS: tuple[Sampler, ...] = get_args(Sampler)
SUM_TOLERANCE = 1e-6


def _check_probs(probs) -> np.ndarray:
    """``probs`` as a float64 probability vector, else a TypeError/ValueError."""
    try:
        raw = None if isinstance(probs, (str, bytes)) else np.asarray(probs)
    except (TypeError, ValueError):  # ragged nested sequences
        raise ValueError(f"Categorical: probs must be a 1-D vector of probabilities, got {probs!r}") from None
    if raw is None or not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
        raise TypeError(f"Categorical: probs must be a 1-D array of probabilities (real numbers), got {probs!r}")
    arr = raw.astype(np.float64)
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"Categorical: probs must be a 1-D vector with K >= 1 entries, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"Categorical: probs must be finite, got {arr.tolist()}")
    if np.any(arr < 0):
        k = int(np.argmax(arr < 0))
        raise ValueError(f"Categorical: probs must be >= 0, got probs[{k}] = {float(arr[k])!r}")
    total = float(arr.sum())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"Categorical: probs must sum to 1 (tolerance {SUM_TOLERANCE:g}), got sum {total!r}")
    return arr / total


def _check_unit(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"Categorical: {name} must be a number in [0, 1], got {value!r}")
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"Categorical: {name} must lie in [0, 1], got {value!r}")
    return v


def _check_size(where: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"Categorical.{where}: n must be an int >= 1 (it sets a shape), got {n!r}")
    if n < 1:
        raise ValueError(f"Categorical.{where}: n must be >= 1, got {n}")
    return int(n)


class Categorical(ExactSampler, SubsampleStats, Combinable, Temperable, Scorable):
    """A categorical distribution over K categories, refitted by (weighted) empirical
    frequencies: n draws from the fitted frequencies each generation.

    Args:
        probs: the truth p_0, a 1-D vector of K >= 1 non-negative numbers summing
            to 1 (tolerance 1e-6; renormalised exactly). Zeros are allowed: such
            categories are never drawn and never count as extinct.
        rare_below: the ``rare_mass`` metric sums the fitted mass of the categories
            whose TRUE probability is < rare_below (traced: sweepable in [0, 1]).
        sampler: ``"samples"`` draws the n category indices (int32) of every batch
            by inversion of the fitted CDF, O(n log K); ``"exact"`` draws their
            counts directly, Multinomial(m, p) as conditional binomials down a
            binary tree over the categories (ceil(log2 K) levels of K/2
            ``jax.random.binomial`` draws), O(K log K) whatever n: it pays off when
            n >> K (for K of the order of n the sample path is faster), and its
            binomial sampler adds a few seconds of compilation. Only for regimes
            that never need the points (not RetainOriginal, nor Weighted with
            combine="samples").

    Data are category indices, shape (points,), int32; weights are importance
    weights. Statistics are the weighted counts, shape (K,), in the float dtype of
    the run: in float32 they stay exact integers while a pooled total is < 2^24
    (``Accumulate``: n (G + 1) < 16.7 million); use ``dtype="float64"`` beyond.
    A count of 0 stays exactly 0, so extinction is never blurred by rounding.

    Metrics (scalars per chain): ``collision_probability`` sum_k p_k^2 (Seddik et
    al.'s S); ``entropy`` -sum_k p_k log p_k in nats (0 log 0 = 0);
    ``extinct`` the number of categories alive in the truth (p_0k > 0) whose fitted
    probability is exactly 0, as a float; ``rare_mass`` the fitted mass of the
    categories with p_0k < rare_below (Shumailov et al.'s tails, which vanish
    first).

    Events: ``extinction`` the first generation at which a category alive in the
    truth has fitted probability 0; ``fixation`` the first generation at which one
    category holds all the mass.

    Regimes: every regime runs on counts. ``Accumulate`` pools them (exact,
    constant memory). ``AccumulateSubsample`` uses the :meth:`subsample_stats`
    hook: the counts of the uniform n-subset of the pool are one multivariate
    hypergeometric draw, O((n + K) log K) per generation whatever the generation
    (the point buffer costs O((G + 1) n) memory and a top-k over all points), and
    it also runs with ``sampler="exact"``. ``Weighted(combine="estimates")``
    averages probability vectors, w p_real + (1 - w) p_synth; ``"samples"`` fits
    the per-point weights w/n and (1 - w)/m, which for frequencies is the same
    estimator.
    """

    num_categories: int = eqx.field(static=True)
    sampler: Sampler = eqx.field(static=True)
    probs: Float[Array, " k"]
    rare_below: Float[Array, ""]

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"rare_below": (0.0, 1.0)}

    def __init__(
        self, probs, rare_below: float = 0.05, *, sampler: Sampler = "samples", num_categories: int | None = None
    ):
        p = _check_probs(probs)
        if num_categories is not None and num_categories != p.size:
            raise ValueError(f"Categorical: num_categories={num_categories!r} but probs has {p.size} entries")
        rb = _check_unit("rare_below", rare_below)
        if sampler not in SAMPLERS:
            raise ValueError(f"Categorical: sampler must be one of {SAMPLERS}, got {sampler!r}")
        self.num_categories = int(p.size)
        self.sampler = sampler
        self.probs = jnp.asarray(p, dtype=jnp.float32)
        self.rare_below = jnp.asarray(rb, dtype=jnp.float32)

    # ------------------------------------------------------------------ basics
    def truth(self) -> Float[Array, " k"]:
        return self.probs

    def min_points(self) -> int:
        return 1

    # ------------------------------------------------------------------ sample / fit
    def sample(self, key, params: Float[Array, " k"], n: int, frame=None) -> Int[Array, " n"]:
        """``n`` i.i.d. category indices (int32) from ``params`` (``frame`` is ignored).

        Inversion of the CDF with uniforms on the open interval (0, 1) (a 2^-23
        grid in float32, 2^-52 in float64). A category with probability exactly 0
        is never drawn, whatever the rounding of the cumulative sum: an index that
        lands on one is moved to the next live category (it can only land there
        by a rounding of the CDF, with probability at most a few ulp).
        """
        n = _check_size("sample", n)
        if n * words_per_number(params.dtype) > 2 * MAX_PAIRS:  # Stream.uniform does not check this itself
            raise ValueError(f"Categorical.sample: at most {2 * MAX_PAIRS} words per stream, got n={n}")
        p = jnp.maximum(params, 0)
        cdf = jnp.cumsum(p)
        u = as_stream(key).uniform((n,), p.dtype)
        idx = jnp.searchsorted(cdf, u * cdf[-1], side="right")
        return _live_map(p)[jnp.minimum(idx, self.num_categories - 1)]

    def data_stats(self, data, weights) -> Float[Array, " k"]:
        """Weighted counts per category, shape (K,). Zero-weight slots may hold any
        index (even out of range): they contribute nothing."""
        dtype = self.probs.dtype
        w = jnp.ones(data.shape[:1], dtype) if weights is None else weights.astype(dtype)
        live = w > 0
        idx = jnp.clip(jnp.where(live, data, 0), 0, self.num_categories - 1)
        return jnp.zeros((self.num_categories,), dtype).at[idx].add(jnp.where(live, w, 0))

    def merge_stats(self, a, b) -> Float[Array, " k"]:
        return a + b

    def fit_stats(self, stats, frame=None) -> Float[Array, " k"]:
        """Frequencies counts / total (the MLE)."""
        total = jnp.sum(stats)
        return stats / jnp.where(total > 0, total, 1)

    def fit(self, key, data, weights, frame=None) -> Float[Array, " k"]:
        return self.fit_stats(self.data_stats(data, weights))

    def sample_stats(self, key, params: Float[Array, " k"], m, frame=None) -> Float[Array, " k"]:
        """Counts of ``m`` draws from ``params``: Multinomial(m, params), exactly.

        A multinomial is a sequence of conditional binomials. Here they run down a
        binary tree over the (zero-padded) categories: a node holding c draws gives
        Binomial(c, a / (a + b)) of them to its left subtree (masses a and b), one
        vectorised ``jax.random.binomial`` per level (exact: inversion for c q <= 10,
        Hormann's 1993 BTRS rejection otherwise): ceil(log2 K) levels of 2^(L-1)
        binomials (:func:`_multinomial`), whatever m. A subtree of mass 0 gets
        exactly 0 draws. ``m`` may be traced (a FreshMix split); m = 0 gives zero
        counts.
        """
        dtype = params.dtype
        key = as_stream(key).key()
        return _multinomial(key, jnp.asarray(m, dtype), jnp.maximum(params, 0), self.num_categories)

    def subsample_stats(self, key, stats, n: int) -> Float[Array, " k"]:
        """Counts of a uniform n-subset, without replacement, of the points behind
        the pooled counts ``stats`` (the ``SubsampleStats`` capability, for ``AccumulateSubsample``): a
        multivariate hypergeometric draw, exactly.

        Conditional univariate hypergeometrics down a binary tree over the
        categories (:func:`_multivariate_hypergeometric`): a node whose subtree
        receives c of the n draws gives Hypergeometric(N_left good, N_right bad, c)
        of them to its left subtree, each drawn by inversion of its CDF
        (:func:`_hypergeometric_level`). The draws of a level sum to n, so a level
        costs O(n + K/2): O((n + K) log K) per call, no rejection loop, against the
        point buffer's O((G + 1) n) memory and top-k over (G + 1) n points per
        generation. Assumes integer counts with total >= n (true for the regime's
        pool).
        """
        n = _check_size("subsample_stats", n)
        return _multivariate_hypergeometric(as_stream(key), stats, n, self.num_categories)

    # ------------------------------------------------------------------ weighted mixing
    def combine(self, p_real, p_synth, w) -> Float[Array, " k"]:
        """w p_real + (1 - w) p_synth (He, Xu, Cheng, arXiv 2502.18049, "estimates")."""
        w = jnp.asarray(w, p_real.dtype)
        return w * p_real + (1 - w) * p_synth

    # ------------------------------------------------------------------ pressures (collapse_jax.Pressured)
    def temper(self, params: Float[Array, " k"], tau) -> Float[Array, " k"]:
        """p^(1/tau) renormalised (tau = 1: ``params`` unchanged, bit for bit; a
        category with probability 0 stays at 0)."""
        pos = params > 0
        logp = jnp.where(pos, jnp.log(jnp.where(pos, params, 1)), -jnp.inf) / tau
        w = jnp.exp(logp - jnp.max(logp))
        return jnp.where(tau == 1, params, w / jnp.sum(w))

    def score(self, params: Float[Array, " k"], data, frame=None) -> jax.Array:
        """-log p of each drawn category."""
        p = jnp.take(params, jnp.clip(data, 0, self.num_categories - 1))
        return -jnp.log(p)

    def score_quantile(self, params: Float[Array, " k"], q) -> jax.Array:
        """The nucleus ("top-p") threshold: -log of the smallest probability in the
        smallest set of most probable categories whose mass reaches q (categories
        tied with it are kept as well)."""
        p = jnp.sort(params)[::-1]
        mass = jnp.cumsum(p) / jnp.sum(p)
        j = jnp.minimum(jnp.sum(mass < jnp.asarray(q, p.dtype)), self.num_categories - 1)
        return -jnp.log(p[j])

    # ------------------------------------------------------------------ metrics
    def metrics(self, key, params: Float[Array, " k"]) -> dict[str, jax.Array]:
        p = params
        dtype = p.dtype
        p0 = self.probs.astype(dtype)
        pos = p > 0
        plogp = jnp.where(pos, p * jnp.log(jnp.where(pos, p, 1)), 0)
        rare = p0 < self.rare_below.astype(dtype)
        return {
            "collision_probability": jnp.sum(p * p),
            "entropy": -jnp.sum(plogp),
            "extinct": jnp.sum((p0 > 0) & ~pos).astype(dtype),
            "rare_mass": jnp.sum(jnp.where(rare, p, 0)),
        }

    def events(self, params: Float[Array, " k"]) -> dict[str, jax.Array]:
        pos = params > 0
        return {
            "extinction": jnp.any((self.probs > 0) & ~pos),
            "fixation": jnp.sum(pos) == 1,
        }


# ---------------------------------------------------------------------------- helpers
def _live_map(p: jax.Array) -> jax.Array:
    """Index map sending every category to itself if alive (p > 0), else to the
    next alive category (the last alive one past the end)."""
    k = p.shape[0]
    ar = jnp.arange(k, dtype=jnp.int32)
    nxt = jax.lax.cummin(jnp.where(p > 0, ar, k), reverse=True)
    last = jnp.max(jnp.where(p > 0, ar, -1))
    return jnp.where(nxt < k, nxt, jnp.maximum(last, 0)).astype(jnp.int32)


def _tree_levels(k: int) -> int:
    """L = ceil(log2 k): the depth of the binary tree over k categories."""
    return math.ceil(math.log2(k)) if k > 1 else 0


def _split_down(total, leaves, k: int, split, per_level) -> jax.Array:
    """Distribute ``total`` over ``k`` leaves (masses ``leaves``) down a binary tree
    over the categories zero-padded to 2^L. At level l every node holding c gives
    ``split(c, a, b, x)`` of it to its left subtree (subtree masses a, b; ``x`` =
    ``per_level[l]``) and the rest to its right one. The levels run in a
    ``lax.scan`` over fixed-shape arrays of 2^(L-1) node slots (the unused slots
    hold 0), so ``split`` is compiled once, however deep the tree."""
    dtype = leaves.dtype
    levels = _tree_levels(k)
    if levels == 0:
        return jnp.reshape(total, (1,)).astype(dtype)
    size = 1 << levels
    half = size // 2
    masses = [jnp.concatenate([leaves, jnp.zeros((size - k,), dtype)]) if size > k else leaves]
    for _ in range(levels - 1):
        masses.append(masses[-1].reshape(-1, 2).sum(axis=1))
    masses = masses[::-1]  # masses[l]: the 2^(l+1) subtree masses at depth l + 1

    def pad(x):
        return jnp.concatenate([x, jnp.zeros((half - x.shape[0],), dtype)]) if x.shape[0] < half else x

    left_mass = jnp.stack([pad(m[0::2]) for m in masses])  # (levels, half)
    right_mass = jnp.stack([pad(m[1::2]) for m in masses])

    def level(counts, xs):
        a, b, x = xs
        c = counts[:half]  # the 2^l nodes of this level, then zeros
        left = split(c, a, b, x)
        return jnp.stack([left, c - left], axis=1).reshape(-1), None

    start = jnp.zeros((size,), dtype).at[0].set(total)
    counts, _ = jax.lax.scan(level, start, (left_mass, right_mass, per_level))
    return counts[:k]


def _multinomial(key, total, probs, k: int) -> jax.Array:
    """Multinomial(total, probs) counts over ``k`` categories: at each tree level
    (:func:`_split_down`) a node holding c draws gives Binomial(c, a / (a + b)) of
    them to its left subtree; a subtree of mass 0 gets exactly 0 draws.
    ``jax.random.binomial`` is exact (inversion for c q <= 10, Hormann's 1993 BTRS
    rejection otherwise) and costs a few rejection loops per level."""

    def split(c, a, b, lvl):
        mass = a + b
        q = jnp.clip(a / jnp.where(mass > 0, mass, 1), 0, 1)
        x = jax.random.binomial(jax.random.fold_in(key, lvl), c, q, dtype=probs.dtype)
        return jnp.where(b > 0, jnp.where(a > 0, x, 0), c)

    return _split_down(total, probs, k, split, jnp.arange(_tree_levels(k), dtype=jnp.uint32))


def _multivariate_hypergeometric(stream, pool, n: int, k: int) -> jax.Array:
    """Counts of n draws without replacement from ``pool`` (k integer counts as
    floats, total >= n): at each tree level (:func:`_split_down`) every node's
    draws are split between its two subtrees by a univariate hypergeometric
    (:func:`_hypergeometric_level`). One uniform per node slot, from ``stream``."""
    levels = _tree_levels(k)
    half = (1 << levels) // 2
    u = stream.uniform((max(levels * half, 1),), pool.dtype)[: levels * half].reshape(levels, half)

    def split(c, a, b, u_level):
        return _hypergeometric_level(u_level, a, b, c, n)

    return _split_down(jnp.asarray(n, pool.dtype), pool, k, split, u)


def _hypergeometric_level(u, good, bad, draws, total: int) -> jax.Array:
    """Hypergeometric(good_j, bad_j, draws_j) for every node slot j of a tree level,
    by inversion of each CDF, given sum_j draws_j = ``total`` (static).

    Node j's support is x in [lo_j, hi_j], lo = max(0, draws - bad), hi =
    min(draws, good): at most draws_j + 1 points, so the supports of all nodes fit
    in one flat array of total + nodes positions (a segment per node). The pmf is
    built from the ratio of consecutive terms,
    f(x + 1) / f(x) = (good - x)(draws - x) / ((x + 1)(bad - draws + x + 1)),
    accumulated in log space from lo by a segmented prefix sum: every term is O(1),
    so no large log-factorials cancel (an lgamma form loses all precision in
    float32 once the pool exceeds ~10^5, where lgamma's ulp reaches 1). The
    relative pmf error is about log2(total) eps. Then x_j = lo_j + #{positions of
    segment j with F < u_j F_total}. Exact up to float rounding; O(total + nodes),
    no loop. Counts are floats holding integers.
    """
    dtype = draws.dtype
    nodes = draws.shape[0]
    pos = jnp.arange(total + nodes)
    length = jnp.round(draws).astype(jnp.int32) + 1
    end = jnp.cumsum(length)  # one past each segment
    start = end - length
    if nodes == 1:  # one segment (K = 2): jnp.repeat's scatter would be a batch-sized constant for XLA to fold
        seg = jnp.zeros((total + 1,), jnp.int32)
    else:
        seg = jnp.repeat(jnp.arange(nodes), length, total_repeat_length=total + nodes)
    lo = jnp.maximum(draws - bad, 0)
    hi = jnp.minimum(draws, good)
    s0 = start[seg]
    first = pos == s0
    x = lo[seg] + (pos - s0).astype(dtype)  # the support point of each position
    ok = x <= hi[seg]
    prev, g, b, d = x - 1, good[seg], bad[seg], draws[seg]
    num = jnp.where(ok, (g - prev) * (d - prev), 1)
    den = jnp.where(ok, x * (b - d + x), 1)
    step = jnp.where(first, 0, jnp.where(ok, jnp.log(num / den), -jnp.inf))
    logf = _segment_cumsum(step, first)  # log f(x) - log f(lo)
    f = jnp.exp(logf - jax.ops.segment_max(logf, seg, num_segments=nodes)[seg])
    cdf = _segment_cumsum(f, first)
    target = u * cdf[end - 1]  # the segment's total
    below = jax.ops.segment_sum((cdf < target[seg]).astype(dtype), seg, num_segments=nodes)
    return lo + jnp.minimum(below, hi - lo)


def _segment_cumsum(values, first) -> jax.Array:
    """Inclusive prefix sums restarting wherever ``first`` is True."""

    def op(a, b):
        return a[0] | b[0], jnp.where(b[0], b[1], a[1] + b[1])

    return jax.lax.associative_scan(op, (first, values))[1]
