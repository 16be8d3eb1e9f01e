"""NUTS inside the chains (cj.NUTSLocation): on the conjugate Normal model it must
agree with the closed-form posterior and with the Bayesian chain's law."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED, assert_mc_close

import collapse_jax as cj
from collapse_jax._rng import Stream
from collapse_jax.engine.kernel import trace_counts
from collapse_jax.theory import bayes as tb

TAU2 = 0.1


def test_nuts_posterior_matches_the_conjugate_posterior():
    """256 data sets of n = 10 points: per data set, the NUTS posterior mean against
    the conjugate one (their difference is MCMC error only: mean 0), and the posterior
    sd against sqrt(1 / (1/tau^2 + n))."""
    fam = cj.NUTSLocation(1, "normal", prior_scale=math.sqrt(TAU2), prior_mean=0.3, warmup=150, samples=300)
    rng = np.random.default_rng(SEED)
    x = jnp.asarray(rng.normal(0.5, 1.0, size=(256, 10, 1)), jnp.float32)
    keys = jnp.stack([jnp.arange(256, dtype=jnp.uint32), jnp.full(256, 9, jnp.uint32)], axis=1)
    fit = jax.jit(jax.vmap(lambda k, d: fam.fit(Stream(k, jnp.int32(1), 6), d, None)))
    p = fit(keys, x)
    xbar = np.asarray(x, np.float64).mean(axis=(1, 2))
    prec = 1 / TAU2 + 10
    conj = (0.3 / TAU2 + 10 * xbar) / prec
    diff = np.asarray(p.mean, np.float64)[:, 0] - conj
    assert_mc_close(diff.mean(), diff.std(ddof=1) / math.sqrt(len(diff)), 0.0, label="posterior mean")
    # MCMC error is small next to the posterior's own width
    assert np.sqrt(np.mean(diff**2)) < 0.2 / math.sqrt(prec)
    width = np.asarray(jax.vmap(lambda d: jnp.std(d))(p.draws), np.float64)
    se = width.std(ddof=1) / math.sqrt(len(width))
    assert_mc_close(width.mean(), se, 1 / math.sqrt(prec), label="posterior sd", rate=1e-3)
    assert np.all(np.asarray(p.accept_rate) > 0.5) and int(np.sum(p.divergences)) == 0


@pytest.mark.parametrize("predictive", ["plugin", "posterior"])
def test_nuts_chain_follows_the_bayesian_chain_law(predictive):
    fam = cj.NUTSLocation(1, "normal", prior_scale=math.sqrt(TAU2), predictive=predictive, warmup=100, samples=200)
    G = 4
    res = cj.simulate(fam, cj.Replace(), n=10, generations=G, chains=384, seed=SEED, progress=False)
    x = np.asarray(res.metrics["mean_sq_error"], np.float64)
    mean, se = x.mean(0), x.std(0, ddof=1) / math.sqrt(len(x))
    exp = tb.known_variance_mean_sq_error(np.arange(G + 1), 10, 1.0, TAU2, predictive)
    assert_mc_close(mean, se, exp, label=f"NUTS {predictive}", rate=1e-4 / 2)
    assert res.diagnostics["accept_rate"].shape == (384, G + 1)
    assert float(np.mean(res.diagnostics["accept_rate"])) > 0.6


def test_student_t_chain_runs_and_reports_diagnostics():
    fam = cj.NUTSLocation(2, "student_t", df=3.0, predictive="marginal", warmup=50, samples=50)
    res = cj.simulate(fam, cj.Replace(), n=12, generations=2, chains=64, seed=SEED, progress=False)
    assert np.all(np.isfinite(res.metrics["mean_sq_error"]))
    assert np.all(res.metrics["posterior_width"] > 0)
    assert set(res.diagnostics) == {"accept_rate", "divergences"}


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        (dict(likelihood="cauchy"), ValueError, r"likelihood must be one of \('normal', 'student_t'\)"),
        (dict(predictive="mode"), ValueError, r"predictive must be one of"),
        (dict(warmup=0), ValueError, r"warmup must be >= 1, got 0"),
        (dict(samples=0), ValueError, r"samples must be >= 1, got 0"),
        (dict(scale=0.0), ValueError, r"scale must be a finite number > 0, got 0.0"),
        (dict(prior_scale=-1.0), ValueError, r"prior_scale must be a finite number > 0"),
        (dict(df=0.0), ValueError, r"df must be a finite number > 0"),
        (dict(dim=2, mean=[0.0, 1.0, 2.0]), ValueError, r"mean must be a finite number or vector of shape \(2,\)"),
    ],
)
def test_bad_arguments_raise(kwargs, exc, pattern):
    before = trace_counts()
    with pytest.raises(exc, match=pattern):
        cj.NUTSLocation(**kwargs)
    assert trace_counts() == before
