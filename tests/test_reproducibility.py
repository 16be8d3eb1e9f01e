"""The reproducibility contract of docs/ARCHITECTURE.md, no-retrace of traced
hyperparameters, and sweeps equal to separate runs."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import SEED

import collapse_jax as cj
from collapse_jax.engine.kernel import trace_counts


def run(fam=None, regime=None, **kw):
    base = dict(n=20, generations=12, chains=300, seed=SEED, progress=False, keep="chains")
    base.update(kw)
    return cj.simulate(fam or cj.Gaussian(), regime or cj.Replace(), **base)


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_same_seed_is_bitwise_equal(sampler):
    a = run(cj.Gaussian(sampler=sampler))
    b = run(cj.Gaussian(sampler=sampler))
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k])
    np.testing.assert_array_equal(a.events["collapse"], b.events["collapse"])


def test_different_seed_differs():
    a, b = run(), run(seed=SEED + 1)
    assert not np.array_equal(a.metrics["log_variance"], b.metrics["log_variance"])


def test_prefix_of_chains_equals_smaller_run_at_same_chunk_size():
    big = run(chains=500, chunk_size=128)
    small = run(chains=130, chunk_size=128)
    for k in big.metrics:
        np.testing.assert_array_equal(big.metrics[k][:130], small.metrics[k])


def test_other_chunk_sizes_agree_to_float_tolerance():
    a = run(chains=400, chunk_size=64)
    b = run(chains=400, chunk_size=400)
    for k in ("log_variance", "mean_sq_error", "tail_mass"):
        np.testing.assert_allclose(a.metrics[k], b.metrics[k], rtol=2e-5, atol=1e-6)
    np.testing.assert_array_equal(a.events["collapse"], b.events["collapse"])


def test_a_small_budget_gives_chunks_below_64_with_the_same_results():
    # KDE under Accumulate stores (generations + 1) n points per chain and its held-out
    # log-density compares every held-out point with all of them: about 0.7 MB a chain, so 4 MB
    # fits a few chains
    kw = dict(n=20, generations=4, chains=40, keep="chains")
    small = run(cj.KDE(0.5), cj.Accumulate(), max_memory="4MB", **kw)
    assert 1 <= small.config["chunk_size"] < 40
    big = run(cj.KDE(0.5), cj.Accumulate(), **kw)
    assert big.config["chunk_size"] >= 40
    for k in big.metrics:
        np.testing.assert_allclose(small.metrics[k], big.metrics[k], rtol=2e-5, atol=1e-6, err_msg=k)


def test_keep_summary_matches_chains():
    a = run(chains=700, chunk_size=256)
    s = run(chains=700, chunk_size=256, keep="summary", keep_chains=50)
    np.testing.assert_array_equal(a.metrics["sd"][:50], s.metrics["sd"])
    ta, ts = a.summary("log_variance"), s.summary("log_variance")
    np.testing.assert_allclose(ta["mean"], ts["mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ta["se"], ts["se"], rtol=1e-4)
    assert (ta["n_finite"] == ts["n_finite"]).all()


def test_summary_of_every_metric_matches_chains_and_kept_chains_span_chunks():
    # kept chains beyond one chunk come from the following chunks; every metric's streamed moments
    # (reduced together, stacked by shape) equal those of the full arrays
    a = run(chains=300, chunk_size=64)
    s = run(chains=300, chunk_size=64, keep="summary", keep_chains=150)
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k][:150], s.metrics[k])
        ta, ts = a.summary(k), s.summary(k)
        np.testing.assert_allclose(ta["mean"], ts["mean"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ta["se"], ts["se"], rtol=1e-4, atol=1e-7)


def test_fixed_design_default_chunk_is_cache_sized_and_agrees():
    # a fixed design is a large per-chain carry: the default CPU chunk is small, and the blocks run
    # with their carry donated; results equal an explicit chunk of the same size, bitwise
    fam = cj.Ridge(4, noise=1.0, design="fixed")
    kw = dict(n=3000, generations=12, chains=200)
    a = run(fam, **kw)
    chunk = a.config["chunk_size"]
    if jax.default_backend() == "cpu":
        assert chunk < 200
    b = run(fam, chunk_size=chunk, **kw)
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k])
    assert np.all(np.isfinite(a.metrics["test_error"]))


def test_common_random_numbers_across_regimes():
    # generation 0 (the original sample) is shared by every regime with the same seed
    a = run(regime=cj.Replace())
    b = run(regime=cj.FreshMix(0.4))
    c = run(regime=cj.Accumulate())
    for other in (b, c):
        np.testing.assert_allclose(a.metrics["mean_sq_error"][:, 0], other.metrics["mean_sq_error"][:, 0], rtol=1e-5)


def test_traced_hyperparameter_does_not_retrace():
    run(regime=cj.FreshMix(0.2))
    mid = trace_counts()
    run(regime=cj.FreshMix(0.7))
    run(regime=cj.FreshMix(0.45))
    run(cj.Gaussian(collapse_below=0.3), regime=cj.FreshMix(0.45))
    assert trace_counts() == mid, "a new traced hyperparameter retraced the kernel"


def test_static_size_does_retrace():
    run(n=20)
    before = trace_counts()["block"]
    run(n=21)
    assert trace_counts()["block"] == before + 1


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_sweep_equals_separate_runs(sampler):
    lams = [0.0, 0.3, 0.8]
    fam = cj.Gaussian(sampler=sampler)
    sw = run(fam, cj.FreshMix(0.5), sweep={"real_fraction": lams})
    assert sw.metrics["log_variance"].shape == (3, 300, 13)
    for i, lam in enumerate(lams):
        one = run(fam, cj.FreshMix(lam))
        for k in ("log_variance", "mean_sq_error"):
            np.testing.assert_allclose(sw.metrics[k][i], one.metrics[k], rtol=2e-5, atol=1e-6)
    table = sw.summary("log_variance")
    assert set(table["real_fraction"]) == set(lams)


def test_sweep_grid_and_weighted():
    sw = run(
        cj.Gaussian(), cj.Weighted(0.5, ratio=2.0), sweep={"real_weight": [0.2, 0.9]}, keep="summary", keep_chains=10
    )
    assert sw.n_sweep == 2
    one = run(cj.Gaussian(), cj.Weighted(0.9, ratio=2.0), keep="summary", keep_chains=10)
    np.testing.assert_allclose(sw.sel(1).summary("sd")["mean"], one.summary("sd")["mean"], rtol=1e-5)


def test_sweep_rejects_static_and_unknown_fields():
    with pytest.raises(ValueError, match="static"):
        run(regime=cj.Weighted(0.5), sweep={"ratio": [1.0, 2.0]})
    with pytest.raises(ValueError, match="names no field"):
        run(regime=cj.FreshMix(0.5), sweep={"bandwidth": [1.0]})
    with pytest.raises(ValueError, match=r"sweep value 1.5 for 'real_fraction' is invalid.*\[0.0, 1.0\]"):
        run(regime=cj.FreshMix(0.5), sweep={"real_fraction": [0.5, 1.5]})
    with pytest.raises(ValueError, match=r"sweep value -1.0 for 'lam' is invalid: Ridge.lam must lie in \[0.0, inf\]"):
        run(cj.Ridge(3), sweep={"lam": [0.1, -1.0]})
    with pytest.raises(ValueError, match=r"collapse_below"):
        run(sweep={"collapse_below": [0.0]})


def test_compiled_programs_are_bounded_and_dropping_them_changes_nothing(monkeypatch):
    import importlib

    kernel = importlib.import_module("collapse_jax.engine.kernel")
    monkeypatch.setattr(kernel, "MAX_PROGRAMS", 2)  # one run's programs here (init and the donating block)
    first = run(n=11, generations=3, chains=64)
    for n in (12, 13, 14):
        run(n=n, generations=3, chains=64)
        # the caches were cleared before this run compiled: only its own programs are left
        assert sum(fn._cache_size() for fn in kernel.PROGRAMS) <= 2
    again = run(n=11, generations=3, chains=64)  # recompiled after its program was dropped
    for k in first.metrics:
        np.testing.assert_array_equal(first.metrics[k], again.metrics[k])


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_philox_runs_follow_the_theory_and_reproduce(sampler):
    from conftest import assert_mc_close, summary_at

    from collapse_jax import theory as T

    kw = dict(n=20, generations=8, chains=4000, seed=SEED, progress=False)
    a = cj.simulate(cj.Gaussian(sampler=sampler), prng="philox", **kw)
    b = cj.simulate(cj.Gaussian(sampler=sampler), prng="philox", **kw)
    c = cj.simulate(cj.Gaussian(sampler=sampler), **kw)
    np.testing.assert_array_equal(a.metrics["variance"], b.metrics["variance"])
    assert np.mean(a.metrics["variance"][:, 1] == c.metrics["variance"][:, 1]) < 0.01  # other draws
    assert a.config["prng"] == "philox" and c.config["prng"] == "threefry"
    gens = [0, 2, 8]
    mean, se = summary_at(a, "log_variance", gens)
    assert_mc_close(mean, se, T.log_variance_mean(np.array(gens), 20, "mle"), label=f"philox {sampler}")


def test_unknown_prng_is_refused():
    with pytest.raises(ValueError, match="prng must be one of"):
        cj.simulate(cj.Gaussian(), n=10, generations=1, chains=2, prng="rbg")
