"""Contract tests of the Gaussian family: shapes, weights, frames, metrics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED
from scipy import stats

import collapse_jax as cj
from collapse_jax._rng import Stream

COV3 = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])


def stream(i=0):
    return Stream(jnp.array([SEED, i], jnp.uint32), jnp.int32(0), 2)


@pytest.mark.parametrize("dim,cov", [(1, None), (3, COV3)])
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_weights_scaling_padding_permutation(dim, cov, estimator):
    fam = cj.Gaussian(dim=dim, estimator=estimator, cov=cov, mean=np.arange(dim, dtype=float))
    x = fam.sample(stream(), fam.truth(), 40)
    assert x.shape == (40, dim)
    w = jnp.ones(40)
    base = fam.fit(stream(1), x, w)
    scaled = fam.fit(stream(1), x, 3.7 * w)
    padded = fam.fit(stream(1), jnp.concatenate([x, jnp.full((5, dim), jnp.inf)]), jnp.concatenate([w, jnp.zeros(5)]))
    perm = fam.fit(stream(1), x[::-1], w)
    for other in (scaled, padded, perm):
        for a, b in zip(jax.tree.leaves(base), jax.tree.leaves(other)):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    # against numpy's estimators
    ddof = 1 if estimator == "unbiased" else 0
    cov_hat = np.cov(np.asarray(x, np.float64).T, ddof=ddof).reshape(dim, dim)
    p = base
    sigma = np.exp(2 * float(p.log_scale)) * np.asarray(p.chol) @ np.asarray(p.chol).T
    np.testing.assert_allclose(sigma, cov_hat, rtol=1e-4)
    np.testing.assert_allclose(p.mean, np.asarray(x).mean(0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dim,cov", [(1, 2.5), (3, COV3)])
def test_fit_of_large_sample_recovers_truth(dim, cov):
    fam = cj.Gaussian(dim=dim, cov=cov)
    x = fam.sample(stream(), fam.truth(), 200_000)
    p = fam.fit(stream(1), x, jnp.ones(x.shape[0]))
    m = fam.metrics(stream(2), p)
    assert float(m["kl_to_truth"]) < 1e-3
    assert abs(float(m["logdet_ratio"])) < 2e-2


@pytest.mark.parametrize("dim,cov", [(1, 4.0), (2, [[1.0, 0.6], [0.6, 2.0]]), (3, COV3)])
def test_metrics_at_truth(dim, cov):
    fam = cj.Gaussian(dim=dim, cov=cov, mean=np.ones(dim))
    m = fam.metrics(stream(), fam.truth())
    assert abs(float(m["tail_mass"]) - 0.01) < 2e-6
    for k in ("mean_sq_error", "kl_to_truth", "w2_sq_to_truth", "logdet_ratio"):
        assert abs(float(m[k])) < 1e-5, k
    assert abs(float(m["trace_ratio"]) - 1) < 1e-6
    entropy = 0.5 * dim * (1 + np.log(2 * np.pi)) + 0.5 * np.linalg.slogdet(np.atleast_2d(cov))[1]
    assert abs(float(m["heldout_nll"]) - entropy) < 1e-5


def _params(fam, mean, cov):
    chol = np.linalg.cholesky(np.atleast_2d(cov))
    log_diag = np.log(np.diag(chol))
    shift = np.mean(log_diag)
    return cj.GaussianParams(
        jnp.asarray(mean, jnp.float32),
        jnp.asarray(shift, jnp.float32),
        jnp.asarray(log_diag - shift, jnp.float32),
        jnp.asarray(chol / np.diag(chol)[None, :], jnp.float32),
    )


def test_metrics_against_scipy_2d():
    cov0 = np.array([[1.0, 0.6], [0.6, 2.0]])
    fam = cj.Gaussian(dim=2, cov=cov0)
    mu, cov = np.array([0.3, -0.2]), np.array([[0.5, 0.1], [0.1, 0.8]])
    m = {k: float(v) for k, v in fam.metrics(stream(), _params(fam, mu, cov)).items()}
    inv = np.linalg.inv(cov)
    kl = 0.5 * (np.trace(inv @ cov0) + mu @ inv @ mu - 2 + np.linalg.slogdet(cov)[1] - np.linalg.slogdet(cov0)[1])
    assert abs(m["kl_to_truth"] - kl) < 1e-4
    s0 = np.real(_sqrtm(cov0))
    w2 = mu @ mu + np.trace(cov) + np.trace(cov0) - 2 * np.trace(np.real(_sqrtm(s0 @ cov @ s0)))
    assert abs(m["w2_sq_to_truth"] - w2) < 1e-4
    # tail mass by brute-force Monte Carlo under the fit
    rng = np.random.default_rng(SEED)
    x = rng.multivariate_normal(mu, cov, size=2_000_000)
    maha = np.einsum("ij,jk,ik->i", x, np.linalg.inv(cov0), x)
    p_mc = np.mean(maha > stats.chi2.ppf(0.99, 2))
    se_mc = np.sqrt(p_mc * (1 - p_mc) / len(x))
    # the 32-line estimate is unbiased; average it over independent metric streams
    est = np.mean([float(fam.metrics(stream(i), _params(fam, mu, cov))["tail_mass"]) for i in range(64)])
    assert abs(est - p_mc) < 5 * se_mc + 5e-4


def _sqrtm(a):
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.maximum(w, 0))) @ v.T


def test_tail_mass_1d_exact():
    fam = cj.Gaussian(cov=2.0)
    mu, var = 0.4, 0.7
    m = fam.metrics(stream(), _params(fam, [mu], [[var]]))
    c = np.sqrt(2.0) * stats.norm.ppf(0.995)
    exact = stats.norm.cdf(-c, mu, np.sqrt(var)) + stats.norm.sf(c, mu, np.sqrt(var))
    assert abs(float(m["tail_mass"]) - exact) < 1e-6
    assert abs(float(m["variance"]) - var) < 1e-6
    assert abs(float(m["sd"]) - np.sqrt(var)) < 1e-6
    assert abs(float(m["log_variance"]) - np.log(var)) < 1e-6


def test_exact_sample_stats_law_dd():
    # Bartlett: scatter of m points ~ Wishart(m - 1, Sigma); check E and the mean's law
    fam = cj.Gaussian(dim=3, cov=COV3)
    m = 9
    draws = jax.vmap(
        lambda i: fam.sample_stats(Stream(jnp.array([SEED, i], jnp.uint32), jnp.int32(0), 2), fam.truth(), m)
    )(jnp.arange(40_000, dtype=jnp.uint32))
    scat = np.asarray(draws.scatter, np.float64)
    mean_scat = scat.mean(0)
    se = scat.std(0) / np.sqrt(scat.shape[0])
    assert np.all(np.abs(mean_scat - (m - 1) * COV3) < 5 * se + 1e-9)
    means = np.asarray(draws.mean, np.float64)
    np.testing.assert_allclose(np.cov(means.T) * m, COV3, atol=0.06)


def test_combine_is_convex_in_log_scale():
    fam = cj.Gaussian()
    a = _params(fam, [1.0], [[4.0]])
    b = _params(fam, [-1.0], [[1e-30]])
    c = fam.combine(a, b, jnp.float32(0.25))
    assert abs(float(c.mean[0]) - (0.25 - 0.75)) < 1e-6
    assert abs(float(jnp.exp(2 * c.log_scale)) - 1.0) < 1e-5
    assert float(fam.combine(a, b, jnp.float32(0.0)).log_scale) == pytest.approx(float(b.log_scale), rel=1e-6)


def test_metric_names_and_dims():
    assert set(cj.Gaussian().metric_names()) == {
        "mean_sq_error",
        "trace_ratio",
        "logdet_ratio",
        "kl_to_truth",
        "w2_sq_to_truth",
        "tail_mass",
        "heldout_nll",
        "variance",
        "log_variance",
        "sd",
    }
    assert "variance" not in cj.Gaussian(dim=2).metric_names()
