"""Bad input raises a clear ValueError/TypeError naming the parameter, the value
and what is allowed, before anything compiles."""

from __future__ import annotations

import numpy as np
import pytest

import collapse_jax as cj
from collapse_jax.engine.kernel import trace_counts


def sim(fam=None, regime=None, **kw):
    base = dict(n=10, generations=3, chains=5, progress=False)
    base.update(kw)
    return cj.simulate(fam or cj.Gaussian(), regime or cj.Replace(), **base)


@pytest.fixture(autouse=True)
def nothing_compiles():
    before = trace_counts()
    yield
    assert trace_counts() == before, "an invalid configuration reached the compiler"


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        (dict(n=1), ValueError, r"n=1 is too small.*n >= 2"),
        (dict(n=0), ValueError, r"n must be >= 1, got 0"),
        (dict(n=2.5), TypeError, r"n must be an int"),
        (dict(chains=0), ValueError, r"chains must be >= 1, got 0"),
        (dict(generations=-1), ValueError, r"generations must be >= 0, got -1"),
        (dict(seed=-3), ValueError, r"seed must be an int in \[0, 2\*\*64\), got -3"),
        (dict(seed=2**64), ValueError, r"seed must be an int in \[0, 2\*\*64\), got 18446744073709551616"),
        (dict(seed=1.5), TypeError, r"seed must be an int in \[0, 2\*\*64\)"),
        (dict(keep="some"), ValueError, r"keep must be one of .*'some'"),
        (dict(dtype="float16"), ValueError, r"dtype must be one of .*float16"),
        (dict(max_memory="lots"), ValueError, r"max_memory must be .*'lots'"),
        (dict(metrics=["nope"]), ValueError, r"unknown metrics \['nope'\]"),
        (dict(thresholds={"kl_to_truth": 1.0}, metrics=["sd"]), ValueError, r"thresholds names metric 'kl_to_truth'"),
        (dict(progress="yes"), TypeError, r"progress must be"),
        (dict(chunk_size=0), ValueError, r"chunk_size must be >= 1"),
    ],
)
def test_simulate_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        sim(**kwargs)


def test_n_too_small_for_dim():
    with pytest.raises(ValueError, match=r"n=3 is too small.*dim=3.*n >= 4"):
        sim(cj.Gaussian(dim=3), n=3)


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        (dict(dim=0), ValueError, r"dim must be >= 1, got 0"),
        (dict(dim=1.0), TypeError, r"dim must be an int"),
        (dict(estimator="ols"), ValueError, r"estimator must be one of \('mle', 'unbiased'\), got 'ols'"),
        (dict(sampler="fast"), ValueError, r"sampler must be one of .*'fast'"),
        (
            dict(dim=2, cov=[[1.0, 0.5], [0.4, 1.0]]),
            ValueError,
            r"cov must be symmetric positive definite; it is not symmetric",
        ),
        (dict(dim=2, cov=[[1.0, 2.0], [2.0, 1.0]]), ValueError, r"not positive definite"),
        (dict(dim=2, cov=np.eye(3)), ValueError, r"cov must be a \(2, 2\) matrix \(or a scalar\), got shape \(3, 3\)"),
        (dict(dim=2, cov=[[1.0, np.nan], [np.nan, 1.0]]), ValueError, r"Gaussian: cov must be finite"),
        (dict(cov="x"), TypeError, r"Gaussian: cov must be numbers, got 'x'"),
        (dict(cov=1e39), ValueError, r"Gaussian: cov must lie within \+-3.403e\+38 \(float32's range\)"),
        (dict(mean=[0.0, 1.0]), ValueError, r"mean must be a finite vector of shape \(1,\)"),
        (dict(collapse_below=0.0), ValueError, r"collapse_below must be a finite number > 0"),
    ],
)
def test_gaussian_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        cj.Gaussian(**kwargs)


@pytest.mark.parametrize(
    "make,exc,pattern",
    [
        (lambda: cj.FreshMix(1.2), ValueError, r"FreshMix: real_fraction must lie in \[0, 1\], got 1.2"),
        (lambda: cj.FreshMix(-0.1), ValueError, r"real_fraction must lie in \[0, 1\]"),
        (lambda: cj.FreshMix("a"), TypeError, r"real_fraction must be a number"),
        (lambda: cj.RetainOriginal(2), ValueError, r"RetainOriginal: fraction must lie in \[0, 1\], got 2"),
        (lambda: cj.Weighted(1.5), ValueError, r"Weighted: real_weight must lie in \[0, 1\]"),
        (lambda: cj.Weighted(0.5, ratio=0), ValueError, r"Weighted: ratio must be a finite number > 0"),
        (lambda: cj.Weighted(0.5, ratio=-2), ValueError, r"ratio must be a finite number > 0"),
        (lambda: cj.Weighted(0.5, combine="average"), ValueError, r"combine must be None, 'estimates' or 'samples'"),
    ],
)
def test_regime_arguments(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_weighted_too_few_synthetic_points():
    with pytest.raises(ValueError, match=r"m = floor\(n/ratio \+ 1/2\) = 1 synthetic points.*needs m >= 2"):
        sim(regime=cj.Weighted(0.5, ratio=20.0), n=10)


def test_exact_sampler_with_regime_that_needs_points():
    with pytest.raises(ValueError, match="AccumulateSubsample needs the data points"):
        sim(cj.Gaussian(sampler="exact"), cj.AccumulateSubsample())


def test_wrong_types_for_family_and_regime():
    with pytest.raises(TypeError, match="family must be a collapse_jax family"):
        cj.simulate("gaussian", cj.Replace(), n=10, generations=1, chains=1)
    with pytest.raises(TypeError, match="regime must be a collapse_jax regime"):
        cj.simulate(cj.Gaussian(), "replace", n=10, generations=1, chains=1)


def test_keep_chains_too_big_for_budget():
    with pytest.raises(ValueError, match=r"keep='chains' needs .* GiB"):
        sim(keep="chains", chains=10_000, generations=1000, max_memory="1MB")


def test_one_chain_over_budget_is_refused_naming_the_stored_points():
    # KDE under Accumulate stores (generations + 1) * n points per chain (twice: buffer and fit)
    with pytest.raises(ValueError, match=r"one chain needs about .* MiB \(Accumulate stores every generation's "):
        sim(cj.KDE(0.5), cj.Accumulate(), n=1000, generations=1000, chains=2, max_memory="8MB")
