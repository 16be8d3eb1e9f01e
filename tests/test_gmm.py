"""Gaussian mixtures: one EM fit, monotone likelihood, agreement with scikit-learn
on the same data and initialisation, the closed-form L2 distance, absorbing dead
components, the kernel run and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED

import collapse_jax as cj
from collapse_jax.families.gmm import GMM, GMMParams, l2_distance_sq

TWO = ([0.7, 0.3], [[-2.0, 0.0], [2.0, 1.0]], [np.eye(2), [[0.5, 0.2], [0.2, 0.4]]])


def _points(fam, n, seed=SEED):
    return fam.sample(jax.random.key(seed), fam.truth(), n)


def _fit(fam, x, seed=SEED + 1):
    return jax.jit(lambda x: fam.fit(jax.random.key(seed), x, None, fam.truth()))(x)


def test_one_fit_recovers_a_known_mixture():
    n = 20_000
    fam = GMM(2, 2, truth=TWO, em_max_iters=300, tol=1e-6)
    p = _fit(fam, _points(fam, n))
    assert bool(p.converged)
    order = np.argsort(-np.asarray(p.weights))
    w, mu, cov = (np.asarray(a)[order] for a in (p.weights, p.means, p.covs))
    tw, tm, tc = (np.asarray(a, np.float64) for a in TWO)
    # sampling error of the MLE: weights ~ sqrt(w(1-w)/n), means ~ sd / sqrt(n w), covariances ~ s^2 sqrt(2/(n w));
    # 6 standard errors (the components are well separated, so the EM estimate is the MLE up to O(1e-4))
    assert np.all(np.abs(w - tw) <= 6 * np.sqrt(tw * (1 - tw) / n))
    for k in range(2):
        sd = np.sqrt(np.diag(tc[k]))
        assert np.all(np.abs(mu[k] - tm[k]) <= 6 * sd / np.sqrt(n * tw[k]))
        assert np.all(np.abs(cov[k] - tc[k]) <= 6 * np.sqrt(2.0 / (n * tw[k])) * np.outer(sd, sd))


@pytest.mark.parametrize("covariance", ["full", "diag", "spherical"])
def test_log_likelihood_never_decreases(covariance):
    # a single blob fitted with 3 components: a slow, non-trivial EM path
    fam = GMM(3, 2, covariance, em_max_iters=60, tol=0.0, reg_covar=1e-6)
    x = _points(fam, 500)
    start = fam._kmeans_init(cj.Stream(jnp.zeros((2,), jnp.uint32), jnp.int32(0), 5), x, jnp.ones(500))
    with jax.enable_x64(True):
        fam64 = jax.tree.map(lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, fam)
        st64 = jax.tree.map(lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, start)
        _, hist = fam64.em(jnp.asarray(x, jnp.float64), jnp.ones(500, jnp.float64), st64, record=True)
        hist = np.asarray(hist)
    hist = hist[np.isfinite(hist)]
    assert hist.size == 60
    # EM maximises the likelihood of the M-step's scatter; the floor reg_covar on each covariance can lower
    # the log-likelihood by at most about d * reg_covar / (smallest variance) per iteration
    assert np.min(np.diff(hist)) >= -2 * 1e-6 / 0.01 - 1e-12
    assert hist[-1] > hist[0]


def test_agrees_with_scikit_learn_from_the_same_start():
    sk = pytest.importorskip("sklearn.mixture")
    fam = GMM(2, 2, truth=TWO, em_max_iters=500, tol=1e-6)
    x = _points(fam, 2000)
    w = jnp.ones(2000)
    with jax.enable_x64(True):
        x64 = jnp.asarray(x, jnp.float64)
        fam64 = jax.tree.map(lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, fam)
        start = fam64._kmeans_init(cj.Stream(jnp.zeros((2,), jnp.uint32), jnp.int32(0), 5), x64, w.astype(x64.dtype))
        ours = fam64.em(x64, w.astype(x64.dtype), start)
        ours = jax.tree.map(np.asarray, ours)
        start = jax.tree.map(np.asarray, start)
    ref = sk.GaussianMixture(
        2,
        covariance_type="full",
        tol=1e-6,
        reg_covar=1e-6,
        max_iter=500,
        weights_init=start.weights,
        means_init=start.means,
        precisions_init=np.linalg.inv(start.covs),
    ).fit(np.asarray(x64))
    assert ref.converged_ and bool(ours.converged)
    np.testing.assert_allclose(ours.weights, ref.weights_, rtol=1e-5)
    np.testing.assert_allclose(ours.means, ref.means_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.covs, ref.covariances_, rtol=1e-5, atol=1e-6)
    assert abs(int(ours.iters) - ref.n_iter_) <= 1


def test_l2_distance_matches_numerical_integration():
    from scipy import integrate, stats

    a = GMMParams(jnp.array([0.6, 0.4]), jnp.array([[0.0], [2.0]]), jnp.array([[[1.0]], [[0.3]]]), 0, True)
    b = GMMParams(jnp.array([1.0]), jnp.array([[0.5]]), jnp.array([[[2.0]]]), 0, True)

    def dens(p, t):
        return sum(
            float(w) * stats.norm.pdf(t, float(m[0]), np.sqrt(float(c[0, 0])))
            for w, m, c in zip(p.weights, p.means, p.covs)
        )

    num, _ = integrate.quad(lambda t: (dens(a, t) - dens(b, t)) ** 2, -20, 20, limit=200)
    np.testing.assert_allclose(float(l2_distance_sq(a, b)), num, rtol=1e-5)
    assert float(l2_distance_sq(a, a)) == pytest.approx(0.0, abs=1e-6)


def test_dead_component_is_absorbing():
    fam = GMM(2, 1, em_max_iters=20)
    x = _points(fam, 300)
    start = GMMParams(
        jnp.array([1.0, 0.0]), jnp.array([[0.0], [5.0]]), jnp.array([[[1.0]], [[2.0]]]), jnp.int32(0), jnp.bool_(False)
    )
    p = fam.em(x, jnp.ones(300), start)
    assert float(p.weights[1]) == 0.0
    np.testing.assert_array_equal(np.asarray(p.means[1]), [5.0])
    np.testing.assert_array_equal(np.asarray(p.covs[1]), [[2.0]])
    assert int(fam.diagnostics(p)["dead_components"]) == 1
    # sampling never lands on it
    y = fam.sample(jax.random.key(3), p, 2000)
    assert np.all(np.abs(np.asarray(y)) < 6)


@pytest.mark.parametrize("init", ["refit", "warm"])
def test_kernel_run_collapses_and_reports_diagnostics(init):
    fam = GMM(2, 2, init=init, em_max_iters=50, tol=1e-3)
    res = cj.simulate(fam, cj.Replace(), n=50, generations=30, chains=128, seed=SEED, progress=False)
    tv = res.metrics["total_variance"]
    assert res.metrics["component_sd"].shape == (128, 31, 2)
    assert np.all(np.isfinite(tv))
    # Replace on 50 points loses variance: the median over chains falls (a few standard errors of the median)
    assert np.median(tv[:, -1]) < 0.8 * np.median(tv[:, 0])
    it = res.diagnostics["em_iters"]
    assert np.all((it >= 1) & (it <= 50))
    w = res.metrics["component_weight"]
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(np.diff(w, axis=-1) <= 0)  # sorted by descending weight
    assert np.all(np.isnan(res.metrics["minority_weight"]))  # the truth has one component


def test_minority_weight_tracks_the_small_component():
    truth = ([0.9, 0.1], [[-3.0], [3.0]], [[[1.0]], [[1.0]]])
    fam = GMM(2, 1, truth=truth, em_max_iters=100, tol=1e-4)
    res = cj.simulate(fam, cj.Replace(), n=1000, generations=2, chains=64, seed=SEED, progress=False)
    m = res.metrics["minority_weight"][:, 0]
    # generation 0 fits 1000 real points: weight ~ 0.1 +- sqrt(0.09 / 1000) ~ 0.0095
    assert abs(np.mean(m) - 0.1) <= 5 * 0.0095 / np.sqrt(64)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(components=0), "components must be >= 1"),
        (dict(dim=0), "dim must be >= 1"),
        (dict(covariance="tied"), "covariance must be one of"),
        (dict(init="random"), "init must be one of"),
        (dict(reg_covar=-1.0), "reg_covar must be"),
        (dict(tol=float("nan")), "tol must be"),
        (dict(dim=1, truth=([0.5, 0.6], [[0.0], [1.0]], [[[1.0]], [[1.0]]])), "truth weights"),
        (dict(dim=1, truth=([-0.5, 1.5], [[0.0], [1.0]], [[[1.0]], [[1.0]]])), "truth weights"),
        (dict(dim=2, truth=([1.0], [[0.0]], [np.eye(2)])), "truth means"),
        (dict(dim=1, truth=([1.0], [[0.0]], [[[-1.0]]])), "positive definite"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GMM(**kwargs)


def test_n_below_components_is_refused_before_compiling():
    with pytest.raises(ValueError, match=r"n=2 is too small for GMM\(components=3, dim=1\).*n >= 3"):
        cj.simulate(GMM(3, 1), cj.Replace(), n=2, generations=2, chains=4, progress=False)
