"""Conjugate Bayesian Gaussian chains (cj.BayesGaussian) against the closed forms of
collapse_jax.theory.bayes, its posterior update and its samplers."""

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
from collapse_jax.families.bayes_gaussian import _inverse_wishart
from collapse_jax.theory import bayes as tb

BG = cj.BayesGaussian


def run(fam, regime=None, **kw):
    base = dict(n=10, generations=20, chains=4000, seed=SEED, progress=False)
    base.update(kw)
    return cj.simulate(fam, regime or cj.Replace(), **base)


def mean_se(res, metric):
    x = np.asarray(res.metrics[metric], np.float64)
    return x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(x.shape[0])


GENS = [0, 1, 4, 12, 20]


@pytest.mark.parametrize("predictive", ["plugin", "posterior", "marginal"])
@pytest.mark.parametrize("sampler", ["exact", "samples"])
def test_known_variance_chains_match_the_closed_form(predictive, sampler):
    """Prior N(m0, 0.1 I) off the truth by (0.3, 0): the bias and the variance terms."""
    fam = BG(2, known_variance=1.0, prior_var=0.1, prior_mean=[0.3, 0.0], predictive=predictive, sampler=sampler)
    res = run(fam)
    exp = tb.known_variance_mean_sq_error(np.array(GENS), 10, 1.0, 0.1, predictive, dim=2, prior_offset=[0.3, 0.0])
    mean, se = mean_se(res, "mean_sq_error")
    assert_mc_close(mean[GENS], se[GENS], exp, label=f"{predictive}/{sampler}", rate=1e-4 / 6)
    # the posterior's width is deterministic here: sqrt(s2 / (s2 / tau^2 + n))
    np.testing.assert_allclose(res.metrics["posterior_width"][:, 1:], math.sqrt(1 / 20), rtol=1e-5)


def test_closed_forms_agree_and_reach_the_steady_state():
    g = np.arange(400)
    for mode in ("plugin", "posterior", "marginal"):
        a = tb.known_variance_mean_sq_error(g, 10, 2.0, 0.5, mode, dim=3)
        b = tb.replace_moments(399, 10, mode, dim=3, known_variance=2.0, prior_var=0.5)["mean_sq_error"]
        np.testing.assert_allclose(a, b, rtol=1e-12)
        np.testing.assert_allclose(a[-1], tb.known_variance_steady_state(10, 2.0, 0.5, mode, dim=3), rtol=1e-10)
    # docs/THEORY.md section 12: with n0 = s2 / tau^2, rho = n / (n + n0), s^2 = s2 / (n + n0)
    n, s2, tau2 = 10, 2.0, 0.5
    rho, post = n / (n + s2 / tau2), s2 / (n + s2 / tau2)
    stat = {
        "plugin": rho**2 * (s2 / n) / (1 - rho**2),
        "posterior": rho**2 * (s2 / n + post) / (1 - rho**2),
        "marginal": rho**2 * (s2 + post) / n / (1 - rho**2),
    }
    for mode, v in stat.items():
        assert tb.known_variance_steady_state(n, s2, tau2, mode) == pytest.approx(v, rel=1e-12)
    # without a prior: linear growth at s2/n, 2 s2/n and (s2/n)(1 + 1/n)
    for mode, slope in (("plugin", 0.2), ("posterior", 0.4), ("marginal", 0.22)):
        e = tb.known_variance_mean_sq_error(np.array([5, 6]), 10, 2.0, np.inf, mode)
        assert e[1] - e[0] == pytest.approx(slope, rel=1e-12)


@pytest.mark.parametrize(
    "dim,predictive,sampler",
    [
        (1, "plugin", "exact"),
        (1, "posterior", "exact"),
        (1, "marginal", "samples"),
        (2, "plugin", "samples"),
        (2, "posterior", "samples"),
        (2, "marginal", "samples"),
    ],
)
def test_normal_inverse_wishart_chains_match_the_moment_recursion(dim, predictive, sampler):
    kw = dict(prior_count=2.0, prior_df=dim + 3.0, prior_scale=0.5, prior_mean=0.2)
    fam = BG(dim, predictive=predictive, sampler=sampler, **kw)
    res = run(fam, n=8, chains=6000)
    th = tb.replace_moments(
        20, 8, predictive, dim=dim, prior_count=2.0, prior_df=dim + 3.0, prior_scale_trace=0.5 * dim, prior_offset=0.2
    )
    mean, se = mean_se(res, "mean_sq_error")
    assert_mc_close(mean[GENS], se[GENS], th["mean_sq_error"][GENS], label="mse", rate=1e-4 / 12)
    mean, se = mean_se(res, "trace_ratio")  # tr E[Sigma | D] / tr Sigma_0, Sigma_0 = I
    assert_mc_close(mean[GENS] * dim, se[GENS] * dim, th["trace_cov"][GENS], label="trace", rate=1e-4 / 12)


def test_wide_prior_is_the_plug_in_mle_chain():
    fam = BG(1, known_variance=1.0, prior_var=1e8, sampler="exact")
    mean, se = mean_se(run(fam, chains=8000), "mean_sq_error")
    assert_mc_close(mean[GENS], se[GENS], (np.array(GENS) + 1) / 10, label="flat prior")


def test_accumulate_concentrates_the_posterior():
    fam = BG(1, known_variance=1.0, prior_var=0.5, sampler="exact")
    res = run(fam, cj.Accumulate(), generations=6, chains=64)
    g = np.arange(7)
    np.testing.assert_allclose(res.metrics["posterior_width"][0], np.sqrt(1 / (2 + 10 * (g + 1))), rtol=1e-5)


# --------------------------------------------------------------------------- the pieces
def test_posterior_update_is_the_conjugate_formula():
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(7, 2)) @ np.array([[1.0, 0.3], [0.0, 0.8]]) + 0.5
    m0, k0, nu0 = np.array([0.1, -0.2]), 1.5, 5.0
    psi0 = np.array([[1.0, 0.2], [0.2, 0.7]])
    fam = BG(2, prior_mean=m0, prior_count=k0, prior_df=nu0, prior_scale=psi0)
    p = fam.fit(None, jnp.asarray(x, jnp.float32), None)
    xb = x.mean(0)
    s = (x - xb).T @ (x - xb)
    kn = k0 + 7
    np.testing.assert_allclose(p.mean, (k0 * m0 + 7 * xb) / kn, rtol=1e-5)
    np.testing.assert_allclose(p.kappa, kn)
    np.testing.assert_allclose(p.nu, nu0 + 7)
    np.testing.assert_allclose(p.psi, psi0 + s + (k0 * 7 / kn) * np.outer(xb - m0, xb - m0), rtol=1e-5)
    dist_mu, dist_sigma = fam.posterior(p)
    np.testing.assert_allclose(dist_sigma.mean, np.asarray(p.psi) / (nu0 + 7 - 3), rtol=1e-5)
    df = float(dist_mu.df)  # numpyro's covariance_matrix is the t's scale matrix; its covariance has df/(df - 2)
    np.testing.assert_allclose(
        np.asarray(dist_mu.covariance_matrix) * df / (df - 2), fam.posterior_cov_mean(p), rtol=1e-4
    )
    np.testing.assert_allclose(dist_mu.variance, np.diag(fam.posterior_cov_mean(p)), rtol=1e-4)
    # known variance: precision-weighted mean
    fam = BG(2, known_variance=2.0, prior_var=0.5, prior_mean=m0)
    p = fam.fit(None, jnp.asarray(x, jnp.float32), None)
    prec = 1 / 0.5 + 7 / 2.0
    np.testing.assert_allclose(p.mean, (m0 / 0.5 + 7 * xb / 2.0) / prec, rtol=1e-5)
    np.testing.assert_allclose(fam.posterior_cov_mean(p), np.eye(2) / prec, rtol=1e-5)


def test_inverse_wishart_and_student_predictive_draws():
    psi = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    nu = jnp.float32(9.0)
    keys = jnp.arange(20000, dtype=jnp.uint32)
    draws = jax.vmap(lambda c: _inverse_wishart(Stream(jnp.stack([c, c + 7]), jnp.int32(1), 2), nu, psi, 2))(keys)
    draws = np.asarray(draws, np.float64)
    exp = np.asarray(psi) / (9 - 3)
    se = draws.std(axis=0, ddof=1) / math.sqrt(len(draws))
    assert_mc_close(draws.mean(axis=0), se, exp, label="inverse Wishart mean")
    one = jax.vmap(lambda c: _inverse_wishart(Stream(jnp.stack([c, c]), jnp.int32(1), 2), nu, psi[:1, :1], 1))(keys)
    one = np.asarray(one, np.float64).ravel()
    # inverse gamma(nu/2, psi/2): mean psi/(nu - 2), variance 2 psi^2 / ((nu - 2)^2 (nu - 4))
    assert_mc_close(one.mean(), one.std(ddof=1) / math.sqrt(len(one)), 2.0 / 7, label="IG mean")
    # the learned-covariance marginal predictive: covariance Psi (kappa + 1) / (kappa (nu - d - 1))
    fam = BG(2, predictive="marginal")
    p = cj.BayesGaussianParams(jnp.array([0.5, -1.0]), jnp.float32(3.0), nu, psi)
    x = np.asarray(fam.sample(Stream(jnp.array([1, 2], jnp.uint32), jnp.int32(3), 2), p, 200000), np.float64)
    cov = np.cov(x.T)
    exp = np.asarray(psi) * (4 / 3) / (9 - 3)
    assert np.all(np.abs(cov - exp) < 0.02 * np.abs(exp).max() + 6 * math.sqrt(2 / 200000) * np.abs(exp).max() * 3)
    np.testing.assert_allclose(x.mean(0), [0.5, -1.0], atol=0.02)


def test_prior_hyperparameters_are_traced():
    fam = BG(1, known_variance=1.0, prior_var=0.1, sampler="exact")
    res = run(fam, generations=3, chains=64, sweep={"prior_var": [0.1, 1.0]})
    run(fam, generations=3, chains=64)
    before = trace_counts()
    run(BG(1, known_variance=1.0, prior_var=0.3, prior_mean=0.5, sampler="exact"), generations=3, chains=64)
    assert trace_counts() == before, "new prior hyperparameters retraced the kernel"
    assert res.metrics["posterior_width"].shape == (2, 64, 4)


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (dict(known_variance=0.0), r"known_variance must be a finite number > 0, got 0.0"),
        (dict(known_variance=1.0, prior_var=-1.0), r"prior_var must be a finite number > 0, got -1.0"),
        (dict(prior_count=0), r"prior_count must be a finite number > 0, got 0"),
        (dict(dim=2, prior_df=0.5), r"prior_df must be > dim - 1 = 1"),
        (dict(dim=2, prior_scale=[[1.0, 2.0], [2.0, 1.0]]), r"prior_scale: cov must be symmetric positive definite"),
        (dict(predictive="mean"), r"predictive must be one of \('plugin', 'posterior', 'marginal'\), got 'mean'"),
        (dict(predictive="marginal", sampler="exact"), r"sampler='exact' with predictive='marginal' needs known_var"),
    ],
)
def test_bad_arguments_raise(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        BG(**kwargs)


def test_bad_configurations_raise_before_compiling():
    before = trace_counts()
    with pytest.raises(ValueError, match=r"nu_n = prior_df \+ n > dim \+ 1; got prior_df \+ n = 2.5 with dim = 2"):
        run(BG(2, prior_df=1.5), n=1)
    with pytest.raises(ValueError, match=r"Weighted rescales the weights"):
        run(BG(1, known_variance=1.0), cj.Weighted(0.5))
    assert trace_counts() == before


# --------------------------------------------------------------------------- Bayesian linear regression
BLR = cj.BayesLinearRegression


@pytest.mark.parametrize("predictive", ["plugin", "posterior"])
def test_regression_flat_prior_chain_matches_the_moment_recursion(predictive):
    G, n, d = 6, 12, 3
    fam = BLR(d, prior_var=1e6, prior_rate=1e-6, prior_shape=2.0, predictive=predictive)
    res = run(fam, n=n, generations=G, chains=8000)
    th = tb.regression_flat_prior_moments(G, n, d, predictive, prior_shape=2.0)
    gens = [0, 1, 3, 6]
    for metric in ("param_sq_error", "noise_variance"):
        mean, se = mean_se(res, metric)
        assert_mc_close(mean[gens], se[gens], th[metric][gens], label=f"{predictive} {metric}", rate=1e-4 / 4)


def test_regression_posterior_update_and_marginal_predictive():
    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(15, 2))
    y = X @ np.array([1.0, -0.5]) + 0.3 * rng.normal(size=15)
    fam = BLR(2, prior_mean=[0.2, 0.1], prior_var=2.0, prior_shape=3.0, prior_rate=0.5, predictive="marginal")
    data = cj.RegressionData(jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32))
    p = fam.fit(None, data, None)
    m0 = np.array([0.2, 0.1])
    lam = np.eye(2) / 2.0 + X.T @ X
    mn = np.linalg.solve(lam, m0 / 2.0 + X.T @ y)
    bn = 0.5 + 0.5 * (y @ y + m0 @ m0 / 2.0 - mn @ lam @ mn)
    np.testing.assert_allclose(p.mean, mn, rtol=1e-4)
    np.testing.assert_allclose(p.precision, lam, rtol=1e-5)
    np.testing.assert_allclose([float(p.a), float(p.b)], [3.0 + 7.5, bn], rtol=1e-4)
    dist_w, dist_s2 = fam.posterior(p)
    np.testing.assert_allclose(dist_s2.mean, bn / (10.5 - 1), rtol=1e-4)
    np.testing.assert_allclose(dist_w.mean, mn, rtol=1e-4)
    # Cov(w | D) = E[sigma^2 | D] Lambda^-1
    np.testing.assert_allclose(dist_w.variance, np.diag(bn / (10.5 - 1) * np.linalg.inv(lam)), rtol=1e-4)
    # marginal labels: E[(y - x^T m)^2 / (1 + x^T Lambda^-1 x)] = b / (a - 1)
    out = fam.sample(Stream(jnp.array([7, 8], jnp.uint32), jnp.int32(1), 2), p, 100000)
    Xs, ys = np.asarray(out.X, np.float64), np.asarray(out.y, np.float64)
    spread = 1 + np.einsum("ni,ij,nj->n", Xs, np.linalg.inv(lam), Xs)
    r = (ys - Xs @ mn) ** 2 / spread
    assert_mc_close(r.mean(), r.std(ddof=1) / math.sqrt(len(r)), bn / (10.5 - 1), label="marginal predictive")


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (dict(prior_var=0.0), r"prior_var must be a finite number > 0, got 0.0"),
        (dict(prior_shape=-1.0), r"prior_shape must be a finite number > 0"),
        (dict(prior_rate=float("inf")), r"prior_rate must be a finite number > 0"),
        (dict(noise=0.0), r"noise must be a finite number > 0"),
        (dict(predictive="map"), r"predictive must be one of"),
        (dict(dim=2, w_star=[1.0]), r"w_star must be a finite number or vector of shape \(2,\)"),
    ],
)
def test_regression_bad_arguments_raise(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        BLR(**kwargs)


def test_regression_bad_configurations_raise_before_compiling():
    before = trace_counts()
    with pytest.raises(ValueError, match=r"a_n = prior_shape \+ n / 2 > 1; got 0.9"):
        run(BLR(2, prior_shape=0.4), n=1)
    with pytest.raises(ValueError, match=r"Weighted rescales the weights"):
        run(BLR(2), cj.Weighted(0.5))
    assert trace_counts() == before
