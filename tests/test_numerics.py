"""Collapse is not a numerical failure: scale is tracked in log space."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SEED

import collapse_jax as cj
from collapse_jax import theory as T


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_collapsing_chain_over_1000_generations_stays_finite(sampler):
    res = cj.simulate(
        cj.Gaussian(sampler=sampler), cj.Replace(), n=10, generations=1000, chains=200, seed=SEED, progress=False
    )
    lv = res.metrics["log_variance"]
    assert np.all(np.isfinite(lv)), "log-variance became non-finite"
    assert not res.nonfinite.any(), "parameters flagged non-finite while collapsing"
    # E log var_1000 = 1001 * drift = -220.8 at n = 10 (far below float32's exp range)
    expected = T.log_variance_mean(1000, 10, "mle")
    assert expected < -200
    se = lv[:, -1].std() / np.sqrt(lv.shape[0])
    assert abs(lv[:, -1].mean() - expected) < 5 * se
    # variance itself underflows to 0 legitimately; KL diverges to +inf and is counted, not dropped
    row = res.summary("kl_to_truth").iloc[-1]
    assert row["n_nonfinite"] == res.chains and row["n_finite"] == 0
    assert np.all(np.isposinf(res.metrics["kl_to_truth"][:, -1]))
    assert np.all(np.isfinite(res.metrics["mean_sq_error"]))
    assert np.all(res.events["collapse"] > 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_collapse_in_d_dimensions(dtype):
    # anisotropic collapse: the directions' scales shrink at different rates
    res = cj.simulate(
        cj.Gaussian(dim=2),
        cj.Replace(),
        n=5,
        generations=400,
        chains=100,
        seed=SEED,
        progress=False,
        dtype=dtype,
        metrics=["logdet_ratio", "mean_sq_error"],
    )
    assert res.metrics["logdet_ratio"].dtype == np.dtype(dtype)
    assert not res.nonfinite.any()
    ld = res.metrics["logdet_ratio"][:, -1]
    assert np.all(np.isfinite(ld)) and ld.mean() < -300
    expected = T.logdet_ratio_mean(400, 5, 2, "mle")
    se = ld.std() / np.sqrt(len(ld))
    assert abs(ld.mean() - expected) < 5 * se


def test_float64_matches_float32_in_distribution():
    kw = dict(n=10, generations=20, chains=4000, seed=SEED, progress=False, metrics=["log_variance"])
    a = cj.simulate(cj.Gaussian(), cj.Replace(), **kw)
    b = cj.simulate(cj.Gaussian(), cj.Replace(), dtype="float64", **kw)
    ma, mb = a.metrics["log_variance"][:, -1], b.metrics["log_variance"][:, -1]
    se = np.sqrt(ma.var() / len(ma) + mb.var() / len(mb))
    assert abs(ma.mean() - mb.mean()) < 5 * se
