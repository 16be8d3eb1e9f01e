"""Counter-based random streams: one threefry hash per two 32-bit words.

Key hierarchy (docs/ARCHITECTURE.md, "Randomness and reproducibility"). One root key per run
from ``seed``; chain ``c`` uses ``fold_in(root, c)`` with the *global* chain id, so
a chain's draws never depend on how chains are chunked, batched or sharded. Inside
a chain, word ``i`` of the named sub-stream ``s`` of generation ``g`` is

    threefry2x32(chain_key, (g * N_STREAMS + s, i // 2))[i % 2]

i.e. the generation and the stream name form the high counter word and the
position in the stream the low one. This is the same tree as
``fold_in(fold_in(chain_key, g), s)`` followed by ``random_bits`` (every
(g, s, i) addresses its own independent counter), but costs one hash per two words
instead of two extra hashes per draw: on CPU the exact path is several times
faster. Streams are prefix-consistent: the first ``k`` words of a stream do not
depend on how many words are drawn. Library code that wants ``jax.random``'s API
gets a proper key for any (g, s) from :func:`key`.

Named streams mean that adding a metric or a downstream model never changes a
chain's trajectory, and that two runs sharing a seed share their original samples
and fresh real data whatever the regime or hyperparameter (common random numbers).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.random import threefry_2x32

# Named sub-streams. Values are fixed forever: changing one changes every trajectory.
STREAM_REAL = 1  # original sample (g = 0) and fresh real data (g >= 1)
STREAM_SYNTH = 2  # synthetic data drawn from the previous generation's model
STREAM_SUBSAMPLE = 3  # subset selection (AccumulateSubsample)
STREAM_METRICS = 4  # fresh draws needed by metrics (held-out samples, downstream fits)
STREAM_FIT = 5  # randomness inside a fit (initialisation, MCMC)
STREAM_SYNTH_EXTRA = 6  # a second synthetic sample in the same generation
STREAM_CANDIDATES = 7  # extra candidates of a filtered synthetic draw (Pressured, Provenance)
STREAM_DECIDE = 8  # coin flips of verifiers and provenance detectors
STREAM_REFERENCE = 9  # reference draws for score quantiles estimated by Monte Carlo (model)
STREAM_REFERENCE_TRUTH = 10  # the same, from the truth (verifiers)
STREAM_PIPELINE_METRICS = 11  # the acceptance-rate metric's candidates
STREAM_USER = (12, 13, 14)  # free for extensions written outside the package (docs/EXTENDING.md)
STREAM_KEY = 15  # reserved: counters used to derive jax.random keys
N_STREAMS = 16

MAX_GENERATIONS = 2**32 // N_STREAMS - 1


SEED_BITS = 64  # a seed is any integer in [0, 2**64): every bit of it reaches the root key


def root_key(seed: int) -> jax.Array:
    """The run's root key (threefry2x32: its streams are safe under vmap).

    The key's two 32-bit words are the seed's high and low halves, built on the host
    from all 64 bits, so ``seed`` and ``seed + 2**32`` never share a key, whatever
    the dtype of the run (``jax.random.key`` would truncate the seed to 32 bits
    when 64-bit mode is off). For seeds below 2**32 this is ``jax.random.key(seed)``.
    """
    seed = int(seed)
    if not 0 <= seed < 2**SEED_BITS:
        raise ValueError(f"seed must be an int in [0, 2**{SEED_BITS}), got {seed}")
    words = np.array([seed >> 32, seed & 0xFFFFFFFF], dtype=np.uint32)
    return jax.random.wrap_key_data(jnp.asarray(words), impl="threefry2x32")


def chain_keys(root: jax.Array, chain_ids: jax.Array) -> jax.Array:
    """Raw ``(chains, 2)`` uint32 key data of ``fold_in(root, c)`` per global id."""
    keys = jax.vmap(lambda c: jax.random.fold_in(root, c))(chain_ids)
    return jax.random.key_data(keys)


MAX_SUB = 256
MAX_PAIRS = 2**24  # words per sub-stream: 2 * MAX_PAIRS


def _hi(g, s) -> jax.Array:
    return (jnp.asarray(g, jnp.uint32) * jnp.uint32(N_STREAMS)) + jnp.uint32(s)


def _lo(sub: int, pair) -> jax.Array:
    return jnp.uint32(sub * MAX_PAIRS) + jnp.asarray(pair, jnp.uint32)


def threefry2x32(k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 with 20 rounds (Salmon, Moraes, Dror, Shaw 2011, "Parallel
    random numbers: as easy as 1, 2, 3", SC11), elementwise on uint32 arrays.

    Bitwise identical to ``jax.extend.random.threefry_2x32`` (a test pins this),
    but written as plain elementwise operations, so that under ``vmap`` the whole
    hash fuses into one loop over the chain axis: about 4x faster on CPU than
    calling the library primitive on a handful of counters per chain. For long
    per-chain vectors (the sample path's points) the primitive is faster, and
    :func:`bits` uses it: the words are the same either way.
    """
    ks = (k0, k1, k0 ^ k1 ^ jnp.uint32(0x1BD11BDA))
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = (x1 << jnp.uint32(r)) | (x1 >> jnp.uint32(32 - r))
            x1 = x1 ^ x0
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + jnp.uint32(i + 1)
    return x0, x1


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))

PRNGS = ("threefry", "philox")
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)


def _mulhilo(a: int, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(high, low) 32-bit words of the 64-bit product a * b, from 16-bit limbs (no
    64-bit integers needed)."""
    b = jnp.asarray(b, jnp.uint32)
    al, ah = jnp.uint32(a & 0xFFFF), jnp.uint32(a >> 16)
    bl, bh = b & jnp.uint32(0xFFFF), b >> jnp.uint32(16)
    ll, lh, hl, hh = al * bl, al * bh, ah * bl, ah * bh
    mid = (ll >> jnp.uint32(16)) + (lh & jnp.uint32(0xFFFF)) + (hl & jnp.uint32(0xFFFF))
    hi = hh + (lh >> jnp.uint32(16)) + (hl >> jnp.uint32(16)) + (mid >> jnp.uint32(16))
    return hi, jnp.uint32(a) * b


def philox4x32(k0, k1, c0, c1, c2, c3) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Philox-4x32 with 10 rounds (Salmon, Moraes, Dror, Shaw 2011, SC11), elementwise
    on uint32 arrays; checked against the paper's known-answer vectors."""
    k0, k1 = jnp.asarray(k0, jnp.uint32), jnp.asarray(k1, jnp.uint32)
    c0, c1, c2, c3 = (jnp.asarray(c, jnp.uint32) for c in (c0, c1, c2, c3))
    for _ in range(10):
        hi0, lo0 = _mulhilo(_PHILOX_M[0], c0)
        hi1, lo1 = _mulhilo(_PHILOX_M[1], c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = k0 + jnp.uint32(_PHILOX_W[0]), k1 + jnp.uint32(_PHILOX_W[1])
    return c0, c1, c2, c3


def _words_per_counter(prng: str) -> int:
    return 4 if prng == "philox" else 2


def _counter_words(prng: str, k0, k1, hi, lo) -> list[jax.Array]:
    """The words of one counter (hi, lo): 2 for threefry, 4 for philox (counter
    (lo, hi, 0, 0))."""
    if prng == "philox":
        zero = jnp.zeros_like(jnp.asarray(lo, jnp.uint32))
        return list(philox4x32(k0, k1, lo, hi, zero, zero))
    return list(threefry2x32(k0, k1, hi, lo))


def bits(chain_key: jax.Array, g, s: int, count: int, sub: int = 0, prng: str = "threefry") -> jax.Array:
    """``count`` uint32 words of stream ``s`` (sub-stream ``sub``) in generation ``g``."""
    per = _words_per_counter(prng)
    n_ctr = (count + per - 1) // per
    hi = jnp.broadcast_to(_hi(g, s), (n_ctr,))
    lo = _lo(sub, jnp.arange(n_ctr, dtype=jnp.uint32))
    if prng == "philox":
        out = jnp.stack(_counter_words(prng, chain_key[0], chain_key[1], hi, lo), axis=-1)
        return out.reshape(-1)[:count]
    # long vectors: the library primitive is faster than the elementwise form (same words)
    out = threefry_2x32(chain_key, jnp.concatenate([hi, lo]))
    return jnp.stack([out[:n_ctr], out[n_ctr:]], axis=-1).reshape(-1)[:count]


MAX_NODE_KEYS = 2**24 - 16


def node_key(chain_key: jax.Array, index, prng: str = "threefry") -> jax.Array:
    """Key data of independent key ``index`` (< 2^24 - 16) derived from a chain's key:
    interaction graphs give node i's draws from source j their own key (so every
    consumer draws its own sample from every source). Its counter (g = 0, stream
    STREAM_KEY, low word 16 + index) is one that :func:`key` never uses (its low
    words are sub * 2^24 + s with s < 16) and that no stream's words use."""
    lo = jnp.uint32(16) + jnp.asarray(index, jnp.uint32)
    o = _counter_words(prng, chain_key[0], chain_key[1], _hi(0, STREAM_KEY), lo)
    return jnp.stack(o[:2])


def key(chain_key: jax.Array, g, s: int, sub: int = 0, prng: str = "threefry") -> jax.Array:
    """A ``jax.random`` key for stream ``s`` (sub-stream ``sub``) of generation ``g``
    (a threefry key; under ``prng="philox"`` its key data come from philox)."""
    o = _counter_words(prng, chain_key[0], chain_key[1], _hi(g, STREAM_KEY), _lo(sub, s))
    return jax.random.wrap_key_data(jnp.stack(o[:2]), impl="threefry2x32")


def _mantissa_uniform(words: jax.Array, dtype) -> jax.Array:
    """Uniform on the open interval (0, 1): the midpoints of a 2^-23 (float32) or
    2^-52 (float64, two words per number) grid, so log(u) is always finite."""
    dtype = jnp.dtype(dtype)
    if dtype == jnp.float64:
        w = words.reshape(-1, 2).astype(jnp.uint64)
        m = (w[:, 0] << jnp.uint64(20)) | (w[:, 1] >> jnp.uint64(12))
        return (m.astype(jnp.float64) + 0.5) * 2.0**-52
    m = words >> jnp.uint32(9)
    return (m.astype(dtype) + 0.5) * jnp.asarray(2.0**-23, dtype)


def words_per_number(dtype) -> int:
    return 2 if jnp.dtype(dtype) == jnp.float64 else 1


def normals_from_words(words: jax.Array, dtype) -> jax.Array:
    """Standard normals by inversion: sqrt(2) * erfinv(2u - 1) with u in (0, 1).

    The largest |z| is about 5.3 in float32 and 8.1 in float64, as in
    ``jax.random.normal`` (which also inverts a 23-bit uniform in float32)."""
    u = _mantissa_uniform(words, dtype)
    return jnp.sqrt(jnp.asarray(2.0, u.dtype)) * lax.erf_inv(2.0 * u - 1.0)


def words(
    chain_key: jax.Array, g, s: int, count: int, sub: int = 0, start: int = 0, prng: str = "threefry"
) -> list[jax.Array]:
    """Words ``start .. start + count - 1`` of a stream as a list of scalars (the
    same words as :func:`bits`). For a handful of words per chain this keeps every
    operation elementwise over the chain axis under ``vmap`` (a ``(chains, 4)``
    array has a 4-long minor axis and vectorises badly on CPU): about 2x faster.
    Only the pairs that hold the requested words are hashed."""
    hi = _hi(g, s)
    per = _words_per_counter(prng)
    out: list[jax.Array] = []
    first, last = start // per, (start + count + per - 1) // per
    for i in range(first, last):
        out += _counter_words(prng, chain_key[0], chain_key[1], hi, _lo(sub, i))
    skip = start - per * first
    return out[skip : skip + count]


def uniform_from_words(ws: list[jax.Array], dtype) -> list[jax.Array]:
    """Scalar Uniform(0, 1) draws from a list of words (two per float64)."""
    n = words_per_number(dtype)
    return [_mantissa_uniform(jnp.stack(ws[i : i + n]), dtype)[0] for i in range(0, len(ws), n)]


def normal_from_words(ws: list[jax.Array], dtype) -> list[jax.Array]:
    """Scalar standard normals from a list of words (two per float64)."""
    n = words_per_number(dtype)
    return [normals_from_words(jnp.stack(ws[i : i + n]), dtype)[0] for i in range(0, len(ws), n)]


def gamma_proposals(min_shape: float | None) -> int:
    """Proposals drawn up front by :func:`standard_gamma`: 2 when the shape is known
    to be >= 20 (rejection <= 1e-3 each), else 3."""
    return 2 if (min_shape is not None and min_shape >= 20) else 3


def standard_gamma(
    chain_key: jax.Array,
    g,
    s: int,
    a: jax.Array,
    dtype,
    *,
    min_shape: float | None = None,
    offset: int = 0,
    sub: int = 0,
    retry: bool = True,
    prng: str = "threefry",
) -> jax.Array:
    """One exact Gamma(a, 1) draw for a scalar shape ``a >= 0`` (0 gives 0).

    Marsaglia and Tsang (2000), "A simple method for generating gamma variables",
    ACM TOMS 26(3), 363-372: for a >= 1, with d = a - 1/3 and c = 1/sqrt(9d),
    propose v = (1 + c x)^3 with x ~ N(0, 1) and accept when v > 0 and
    log u < x^2/2 + d - d v + d log v; the draw is d v. For a < 1 the draw is
    Gamma(a + 1) * u^(1/a).

    K proposals (:func:`gamma_proposals`) are evaluated at once and the first
    accepted one is kept: exactly the first acceptance of the i.i.d. proposal
    sequence. If all K are rejected (probability <= 0.05^K; ~1e-7 for K = 3 and
    a >= 4) further rounds follow in a ``while_loop`` whose body runs only in the
    rare batches where some lane needs it. Words ``offset ..`` of stream ``s`` are
    used (``2K + 1`` numbers); retries use a key derived from the same stream.

    ``retry=False`` (the kernel's fast mode) skips the loop and returns NaN where
    all K proposals were rejected; the kernel detects the NaN and reruns that block
    of generations in safe mode from the same state and keys, so results are
    identical to ``retry=True`` (a loop inside the generation scan costs about as
    much as the draw itself on CPU).
    About 3x faster on CPU than ``jax.random.gamma`` (a per-lane rejection loop).
    """
    k = gamma_proposals(min_shape)
    wpn = words_per_number(dtype)
    ws = words(chain_key, g, s, (2 * k + 1) * wpn, sub, start=offset, prng=prng)
    xs = normal_from_words(ws[: k * wpn], dtype)
    us = uniform_from_words(ws[k * wpn : 2 * k * wpn], dtype)
    (u_boost,) = uniform_from_words(ws[2 * k * wpn :], dtype)

    a = jnp.asarray(a, dtype)
    boost = a < 1
    shape_a = jnp.where(boost, a + 1, a)
    d = shape_a - 1.0 / 3.0
    c = lax.rsqrt(9.0 * d)

    def accept(x, u):
        v = (1.0 + c * x) ** 3
        safe_v = jnp.where(v > 0, v, 1.0)
        return (v > 0) & (jnp.log(u) < 0.5 * x * x + d - d * v + d * jnp.log(safe_v)), d * v

    done, value = accept(xs[-1], us[-1])
    for x, u in zip(reversed(xs[:-1]), reversed(us[:-1])):
        ok, val = accept(x, u)
        done, value = done | ok, jnp.where(ok, val, value)

    if not retry:
        value = jnp.where(done, value, jnp.nan)
        return _finish_gamma(a, boost, value, u_boost, dtype)

    def body(carry):
        _, _, i = carry
        k_retry = jax.random.fold_in(jax.random.fold_in(key(chain_key, g, s, sub, prng), offset), i)
        kx, ku = jax.random.split(k_retry)
        x = jax.random.normal(kx, (), dtype)
        u = jax.random.uniform(ku, (), dtype, minval=jnp.finfo(dtype).tiny)
        ok, val = accept(x, u)
        return ok, val, i + 1

    _, value, _ = lax.while_loop(lambda cr: ~cr[0], body, (done, value, jnp.int32(0)))
    return _finish_gamma(a, boost, value, u_boost, dtype)


def _finish_gamma(a, boost, value, u_boost, dtype):
    inv_a = 1.0 / jnp.where(boost, a, 1.0)
    value = jnp.where(boost, value * u_boost**inv_a, value)
    return jnp.where(a > 0, value, jnp.zeros((), dtype))


class Stream(eqx.Module):
    """One named sub-stream of one chain in one generation: what families receive
    where the family protocol writes ``key``. Pure and cheap: it holds the chain's key data,
    the generation and the stream's name; every draw hashes its own counters.

    ``child(j)`` gives independent sub-stream ``j`` (< 256) of the same stream, for
    a family that needs several independent pieces (a design and its noise, say).

    ``context_key``: the key of the chain's shared context (a random truth, a fixed
    design), when ``chain_key`` is a node's key inside an interaction graph (every
    node of a chain then shares that context); ``None`` means ``chain_key``. Read it
    through :attr:`context`.
    """

    chain_key: jax.Array  # (2,) uint32: key data of fold_in(root, global chain id)
    g: jax.Array  # generation (int32 scalar)
    s: int = eqx.field(static=True)
    sub: int = eqx.field(static=True, default=0)
    safe: bool = eqx.field(static=True, default=True)  # False: the kernel's fast mode (see standard_gamma)
    context_key: jax.Array | None = None
    prng: str = eqx.field(static=True, default="threefry")  # the counter-based generator: "threefry" or "philox"

    @property
    def context(self) -> Stream:
        """The same stream on the chain's context key (itself outside graphs)."""
        if self.context_key is None:
            return self
        return Stream(self.context_key, self.g, self.s, self.sub, self.safe, None, self.prng)

    def sibling(self, s: int) -> Stream:
        """Stream ``s`` of the same chain, generation and sub-stream: draws tied to
        this one but independent of it (a filter's extra candidates, its coin flips)."""
        return Stream(self.chain_key, self.g, s, self.sub, self.safe, self.context_key, self.prng)

    def child(self, j: int) -> Stream:
        if not 0 <= self.sub * 16 + j < MAX_SUB:
            raise ValueError(f"Stream.child: sub-stream index must be in [0, 16), got {j}")
        return Stream(self.chain_key, self.g, self.s, self.sub * 16 + j + 1, self.safe, self.context_key, self.prng)

    def bits(self, count: int) -> jax.Array:
        return bits(self.chain_key, self.g, self.s, count, self.sub, self.prng)

    def words(self, count: int) -> list[jax.Array]:
        return words(self.chain_key, self.g, self.s, count, self.sub, prng=self.prng)

    def normal(self, shape: tuple[int, ...], dtype) -> jax.Array:
        """Standard normals, prefix-consistent in row-major order."""
        size = math.prod(shape)
        if size * words_per_number(dtype) > 2 * MAX_PAIRS:
            raise ValueError(f"Stream.normal: at most {MAX_PAIRS} numbers per draw, got shape {shape}")
        return normals_from_words(self.bits(size * words_per_number(dtype)), dtype).reshape(shape)

    def uniform(self, shape: tuple[int, ...], dtype) -> jax.Array:
        """Uniform(0, 1) on the open interval, prefix-consistent."""
        size = math.prod(shape)
        if size * words_per_number(dtype) > 2 * MAX_PAIRS:
            raise ValueError(f"Stream.uniform: at most {MAX_PAIRS} numbers per draw, got shape {shape}")
        return _mantissa_uniform(self.bits(size * words_per_number(dtype)), dtype).reshape(shape)

    def gamma(self, a, dtype, *, min_shape: float | None = None, offset: int = 0) -> jax.Array:
        """One exact Gamma(a, 1) draw (see :func:`standard_gamma`)."""
        return standard_gamma(
            self.chain_key,
            self.g,
            self.s,
            a,
            dtype,
            min_shape=min_shape,
            offset=offset,
            sub=self.sub,
            retry=self.safe,
            prng=self.prng,
        )

    def chi2(self, df, dtype, *, min_df: float | None = None, offset: int = 0) -> jax.Array:
        """One exact chi-square draw, ``df >= 0`` (0 gives 0)."""
        min_shape = None if min_df is None else 0.5 * min_df
        return 2.0 * self.gamma(0.5 * jnp.asarray(df, dtype), dtype, min_shape=min_shape, offset=offset)

    def key(self) -> jax.Array:
        """A ``jax.random`` key for this stream, for code that wants that API."""
        return key(self.chain_key, self.g, self.s, self.sub, self.prng)


def as_stream(key_or_stream, s: int = 0) -> Stream:
    """Accept a :class:`Stream` or a ``jax.random`` key (for calling families by hand)."""
    if isinstance(key_or_stream, Stream):
        return key_or_stream
    data = (
        jax.random.key_data(key_or_stream)
        if jnp.issubdtype(key_or_stream.dtype, jax.dtypes.prng_key)
        else key_or_stream
    )
    return Stream(jnp.asarray(data, jnp.uint32), jnp.int32(0), s)
