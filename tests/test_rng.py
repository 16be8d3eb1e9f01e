"""The counter-based streams: the hash, the laws of the draws, prefix consistency."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED
from jax.extend.random import threefry_2x32
from scipy import stats

from collapse_jax import _rng

ALPHA = 1e-4


def test_elementwise_threefry_is_bitwise_jax_threefry():
    rng = np.random.default_rng(SEED)
    key = jnp.asarray(rng.integers(0, 2**32, 2, dtype=np.uint64).astype(np.uint32))
    x = jnp.asarray(rng.integers(0, 2**32, 2000, dtype=np.uint64).astype(np.uint32))
    ref = threefry_2x32(key, x)
    a, b = _rng.threefry2x32(key[0], key[1], x[:1000], x[1000:])
    np.testing.assert_array_equal(np.concatenate([a, b]), ref)


def test_streams_are_prefix_consistent_and_distinct():
    ck = _rng.chain_keys(_rng.root_key(SEED), jnp.arange(3, dtype=jnp.uint32))[1]
    long = _rng.bits(ck, 5, _rng.STREAM_SYNTH, 101)
    short = _rng.bits(ck, 5, _rng.STREAM_SYNTH, 40)
    np.testing.assert_array_equal(long[:40], short)
    np.testing.assert_array_equal(jnp.stack(_rng.words(ck, 5, _rng.STREAM_SYNTH, 7)), long[:7])
    other = [
        _rng.bits(ck, 6, _rng.STREAM_SYNTH, 40),
        _rng.bits(ck, 5, _rng.STREAM_REAL, 40),
        _rng.bits(ck, 5, _rng.STREAM_SYNTH, 40, sub=1),
    ]
    for o in other:
        assert np.mean(np.asarray(o) == np.asarray(short)) < 0.1


def _many(fn, count=200_000):
    ck = _rng.chain_keys(_rng.root_key(SEED), jnp.arange(count, dtype=jnp.uint32))
    return np.asarray(jax.jit(jax.vmap(fn))(ck), dtype=np.float64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_and_uniform_laws(dtype):
    with jax.enable_x64(dtype == "float64"):
        z = _many(lambda c: _rng.Stream(c, jnp.int32(3), 2).normal((2,), jnp.dtype(dtype))).ravel()
        u = _many(lambda c: _rng.Stream(c, jnp.int32(3), 2).uniform((2,), jnp.dtype(dtype))).ravel()
    assert stats.kstest(z, "norm").pvalue > ALPHA
    assert stats.kstest(u, "uniform").pvalue > ALPHA
    assert u.min() > 0 and u.max() < 1


@pytest.mark.parametrize("a", [0.3, 1.0, 4.5, 49.5, 499.5])
@pytest.mark.parametrize("safe", [True, False])
def test_gamma_law_safe_and_fast(a, safe):
    min_shape = a if a >= 1 else None
    x = _many(lambda c: _rng.Stream(c, jnp.int32(1), 2, 0, safe).gamma(a, jnp.float32, min_shape=min_shape))
    if not safe:
        # fast mode marks the rare all-rejected draws with NaN for the kernel to redo: at most
        # 0.05^K of them (Marsaglia-Tsang accepts >= 95 % of proposals for every shape >= 1)
        bound = 0.05 ** _rng.gamma_proposals(min_shape)
        assert np.mean(np.isnan(x)) <= bound + 5 * np.sqrt(bound / len(x))
        x = x[np.isfinite(x)]
    assert stats.kstest(x, stats.gamma(a).cdf).pvalue > ALPHA


def test_fast_and_safe_gamma_agree_where_fast_accepts():
    f = _many(lambda c: _rng.Stream(c, jnp.int32(1), 2, 0, False).gamma(4.5, jnp.float32, min_shape=4.5), 50_000)
    s = _many(lambda c: _rng.Stream(c, jnp.int32(1), 2, 0, True).gamma(4.5, jnp.float32, min_shape=4.5), 50_000)
    ok = np.isfinite(f)
    np.testing.assert_array_equal(f[ok], s[ok])


def test_chi2_zero_df_is_zero():
    x = _many(lambda c: _rng.Stream(c, jnp.int32(0), 2).chi2(0.0, jnp.float32), 100)
    assert np.all(x == 0)


def test_uniform_refuses_to_overrun_its_sub_stream():
    s = _rng.Stream(jnp.zeros((2,), jnp.uint32), jnp.int32(0), 1)
    with pytest.raises(ValueError, match="Stream.uniform: at most"):
        s.uniform((2 * _rng.MAX_PAIRS + 1,), jnp.float32)


# ------------------------------------------------------------------ philox
def test_philox_known_answers():
    """Random123's known-answer vectors for Philox-4x32-10 (Salmon et al. 2011)."""
    cases = [
        ((0, 0), (0, 0, 0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 2, (0xFFFFFFFF,) * 4, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        ((0xA4093822, 0x299F31D0), (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
         (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ]  # fmt: skip
    for key, ctr, expected in cases:
        out = _rng.philox4x32(*(jnp.uint32(k) for k in key), *(jnp.uint32(c) for c in ctr))
        assert [int(o) for o in out] == list(expected)


def test_mulhilo_is_the_64_bit_product():
    rng = np.random.default_rng(SEED)
    a = [0, 1, 0xFFFFFFFF, 0xD2511F53, 0xCD9E8D57]
    b = np.concatenate([rng.integers(0, 2**32, 2000, dtype=np.uint64), [0, 1, 2**32 - 1]])
    for x in a:
        hi, lo = _rng._mulhilo(x, jnp.asarray(b.astype(np.uint32)))
        prod = [x * int(v) for v in b]
        np.testing.assert_array_equal(np.asarray(hi, np.uint64), np.array([p >> 32 for p in prod], np.uint64))
        np.testing.assert_array_equal(np.asarray(lo, np.uint64), np.array([p & 0xFFFFFFFF for p in prod], np.uint64))


def test_philox_streams_are_prefix_consistent_and_normal():
    ck = _rng.chain_keys(_rng.root_key(SEED), jnp.arange(3, dtype=jnp.uint32))[1]
    long = _rng.bits(ck, 5, _rng.STREAM_SYNTH, 103, prng="philox")
    short = _rng.bits(ck, 5, _rng.STREAM_SYNTH, 41, prng="philox")
    np.testing.assert_array_equal(long[:41], short)
    np.testing.assert_array_equal(jnp.stack(_rng.words(ck, 5, _rng.STREAM_SYNTH, 9, prng="philox")), long[:9])
    np.testing.assert_array_equal(jnp.stack(_rng.words(ck, 5, _rng.STREAM_SYNTH, 5, start=3, prng="philox")), long[3:8])
    assert np.mean(np.asarray(long[:41]) == np.asarray(_rng.bits(ck, 5, _rng.STREAM_SYNTH, 41))) < 0.1
    z = _many(lambda c: _rng.Stream(c, jnp.int32(3), 2, prng="philox").normal((2,), jnp.float32)).ravel()
    assert stats.kstest(z, "norm").pvalue > ALPHA
    x = _many(lambda c: _rng.Stream(c, jnp.int32(1), 2, prng="philox").gamma(4.5, jnp.float32, min_shape=4.5))
    assert stats.kstest(x, stats.gamma(4.5).cdf).pvalue > ALPHA
