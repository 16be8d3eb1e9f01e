"""Exact draws over categories, shared by the discrete families (Categorical, Bigram,
LabelChain): inversion of a CDF (a binary search, or a guide table at large K), and
multinomial and multivariate hypergeometric counts down a binary tree over the
categories."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

# Inversion at large K through a guide table (Chen and Asau 1974, "On generating random
# variates from an empirical distribution", AIIE Transactions 6, 163-166): the same index as
# a binary search over the whole CDF, found by a short search inside one bucket.
BUCKETED_MIN_K = 1024  # below this, searchsorted's log2(K) rounds are as cheap as the guide table
MAX_BUCKET_BITS = 23  # a float32 uniform has 23 random bits: finer buckets split no more queries


def _int_cumsum(x):
    """Inclusive cumsum of integers by a log-depth associative scan (exact)."""
    return lax.associative_scan(jnp.add, x)


def bucket_bits(n: int, k: int) -> int:
    """2^bits buckets: >= n where that is <= 4K (then Replace fits put <= 2 alive boundaries in a
    bucket), at most 2^23 (float32 uniforms carry 23 bits)."""
    return min(MAX_BUCKET_BITS, max(1, math.ceil(math.log2(max(2, min(max(n, k), 4 * k))))))


def _search_in_buckets(sorted_vals, q, lo, hi):
    """#{i: sorted_vals[i] <= q}, known to lie in [lo, hi]: binary search for as many rounds as the
    widest [lo, hi] needs."""
    last = sorted_vals.shape[0] - 1

    def cond(c):
        return jnp.any(c[0] < c[1])

    def body(c):
        lo, hi = c
        mid = (lo + hi) // 2
        right = (sorted_vals[jnp.minimum(mid, last)] <= q) & (lo < hi)
        return jnp.where(right, mid + 1, lo), jnp.where(right | (lo >= hi), hi, mid)

    return lax.while_loop(cond, body, (lo, hi))[0]


def inverse_cdf(u: jax.Array, weights: jax.Array) -> jax.Array:
    """Indices i with probability weights[i] / sum(weights), one per uniform u in (0, 1):
    the first i with cumsum(w)[i] > u * sum(w) (inverse CDF). A zero-weight slot is
    never chosen: its cumulative weight equals its predecessor's. Exact up to the
    uniforms' grid and the rounding of the cumulative sum: each slot's probability is
    off by at most a few units of 2^-24 in float32 (2^-53 in float64), a relative error
    of about 2^-23 m for m equal weights (1e-4 at m = 1000; use float64 for stores of
    10^5 or more slots)."""
    cum = jnp.cumsum(weights)
    idx = jnp.searchsorted(cum, u * cum[-1], side="right")
    # u * total can round up to the total: fall back on the last nonempty slot
    last = jnp.max(jnp.where(weights > 0, jnp.arange(weights.shape[0]), 0))
    return jnp.minimum(idx, last)


def _inverse_cdf_bucketed(p, u, bits: int | None = None):
    """Category indices (int32, shape u.shape) of the uniforms ``u`` in (0, 1) under the
    probabilities ``p >= 0`` (shape (K,), not all 0): the search
    ``_live_map(p)[min(searchsorted(cumsum(p), u * cumsum(p)[-1], side="right"), K - 1)]``
    (the same index wherever the two compiled cumulative sums round alike)."""
    k = p.shape[0]
    n = u.shape[0]
    if bits is None:
        bits = bucket_bits(n, k)
    nb = 1 << bits
    cdf = jnp.cumsum(p)  # the current sampler's CDF, so the indices are its own
    total = cdf[-1]
    scale = jnp.asarray(nb, p.dtype) / total

    def bucket(x):  # one monotone map for the CDF values and the queries
        return jnp.minimum(jnp.floor(x * scale), nb).astype(jnp.int32)

    # compact the alive categories: ids[j] = the j-th alive category, ca[j] = its CDF value
    alive = p > 0
    slot = _int_cumsum(alive.astype(jnp.int32)) - 1
    m = slot[-1] + 1
    ids = jnp.zeros((k,), jnp.int32).at[jnp.where(alive, slot, k)].set(jnp.arange(k, dtype=jnp.int32), mode="drop")
    pad = jnp.arange(k) >= m
    ca = jnp.where(pad, jnp.inf, cdf[ids])
    # lo[b] = #{alive j: bucket(ca_j) < b}, b = 0 .. nb + 1
    hist = jnp.zeros((nb + 1,), jnp.int32).at[jnp.where(pad, nb + 1, bucket(ca))].add(1, mode="drop")
    lo = jnp.concatenate([jnp.zeros((1,), jnp.int32), _int_cumsum(hist)])
    q = u * total
    b = bucket(q)
    j = _search_in_buckets(ca, q, lo[b], lo[b + 1])
    return ids[jnp.clip(j, 0, jnp.maximum(m - 1, 0))]


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
