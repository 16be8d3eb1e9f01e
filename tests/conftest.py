"""Shared test configuration: strict numerics, the Monte Carlo tolerance helper."""

from __future__ import annotations

import math
import os
from statistics import NormalDist

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
_cache = os.environ.get("COLLAPSE_JAX_TEST_CACHE")
if _cache:
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

SEED = 20261121
FAMILY_WISE_RATE = 1e-4


def z_for(n_checks: int, rate: float = FAMILY_WISE_RATE) -> float:
    """Two-sided z for a family-wise false-alarm rate ``rate`` over ``n_checks``
    checks (Bonferroni)."""
    return NormalDist().inv_cdf(1 - rate / (2 * max(n_checks, 1)))


def assert_mc_close(mean, se, expected, *, label: str = "", rate: float = FAMILY_WISE_RATE):
    """|mean - expected| <= z * se for every entry, z Bonferroni-corrected over the
    entries checked (STYLE.md section 6). ``se`` is the Monte Carlo standard error."""
    mean, se, expected = (np.asarray(a, dtype=np.float64) for a in (mean, se, expected))
    mean, se, expected = np.broadcast_arrays(mean, se, expected)
    assert np.all(np.isfinite(se)) and np.all(se > 0), f"{label}: bad standard errors {se}"
    z = z_for(mean.size, rate)
    dev = np.abs(mean - expected) / se
    worst = int(np.argmax(dev))
    assert np.all(dev <= z), (
        f"{label}: |mc - theory| / se = {dev.ravel()[worst]:.2f} > z = {z:.2f} at entry {worst}: "
        f"mc {mean.ravel()[worst]:.6g} +- {se.ravel()[worst]:.2g}, theory {expected.ravel()[worst]:.6g}"
    )


def assert_same_draws(a, b, metrics):
    """The same random numbers and points in two results: equal up to float32 last-bit
    differences of a different compiled program (fusion changes the order of float
    operations)."""
    for m in metrics:
        np.testing.assert_allclose(np.asarray(a.metrics[m]), np.asarray(b.metrics[m]), rtol=1e-5, atol=5e-7, err_msg=m)


def summary_at(res, metric: str, gens):
    """(mean, se) of a metric at the given generations from a Result."""
    s = res.summary(metric).set_index("generation").loc[list(gens)]
    return s["mean"].to_numpy(), s["se"].to_numpy()


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop every compiled program after each test module: the suite compiles thousands,
    each holding memory mappings of machine code, and a process may hold at most
    vm.max_map_count (65,530 by default) of them."""
    yield
    jax.clear_caches()


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(SEED)


SLOW_LIST = os.path.join(os.path.dirname(__file__), "slow_tests.txt")


def _slow_ids() -> set[str]:
    with open(SLOW_LIST) as f:
        return {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}


def pytest_collection_modifyitems(config, items):
    """Mark the tests listed in tests/slow_tests.txt slow (see that file)."""
    slow = _slow_ids()
    seen = set()
    for item in items:
        node = item.nodeid
        base = node.split("[", 1)[0]
        hit = node if node in slow else base if base in slow else None
        if hit is not None:
            item.add_marker(pytest.mark.slow)
            seen.add(hit)
    # a listed id of a collected file that no longer exists is a stale entry: an error, never ignored
    files = {item.nodeid.split("::", 1)[0] for item in items}
    if len(items) > 200:  # a large collection (a subset of tests by -k could miss listed ids)
        stale = sorted(i for i in slow - seen if i.split("::", 1)[0] in files)
        if stale:
            raise pytest.UsageError(f"tests/slow_tests.txt names tests that do not exist: {stale[:5]}")


def pytest_report_header(config):
    return f"jax {jax.__version__}, backend {jax.default_backend()}, x64 {jax.config.jax_enable_x64}"


__all__ = ["SEED", "assert_mc_close", "summary_at", "z_for", "math"]
