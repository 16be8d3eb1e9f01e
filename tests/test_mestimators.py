"""M-estimators fitted by optax (cj.GLM, cj.HuberLocation): the optimizer reaches the
closed form or a float64 Newton solution, and the chains follow their laws."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED, assert_mc_close

import collapse_jax as cj
from collapse_jax._rng import Stream
from collapse_jax.engine.kernel import trace_counts
from collapse_jax.families.ridge import RegressionData

STREAM = Stream(jnp.array([5, 6], jnp.uint32), jnp.int32(1), 6)


def newton(kind, X, y, w, lam):
    """Float64 Newton's method for the weighted mean negative log-likelihood + lam/2 ||b||^2."""
    X, y, w = (np.asarray(a, np.float64) for a in (X, y, w))
    w = w / w.sum()
    b = np.zeros(X.shape[1])
    for _ in range(50):
        eta = X @ b
        mu = 1 / (1 + np.exp(-eta)) if kind == "logistic" else np.exp(eta)
        v = mu * (1 - mu) if kind == "logistic" else mu
        grad = X.T @ (w * (mu - y)) + lam * b
        hess = (X * (w * v)[:, None]).T @ X + lam * np.eye(len(b))
        b = b - np.linalg.solve(hess, grad)
    return b


@pytest.mark.parametrize("kind", ["logistic", "poisson"])
def test_lbfgs_reaches_the_newton_solution(kind):
    fam = cj.GLM(kind, 4, penalty=1e-2)
    data = fam.sample(STREAM, fam.truth(), 300)
    weights = jnp.where(jnp.arange(300) < 250, 1.0, 0.0)  # an empty tail, as a regime's buffer
    p = fam.fit(STREAM, data, weights)
    ref = newton(kind, data.X[:250], data.y[:250], np.ones(250), 1e-2)
    np.testing.assert_allclose(p.w, ref, atol=2e-4)
    assert float(p.grad_norm) < 1e-4


def test_huber_with_a_huge_delta_is_the_sample_mean():
    x = 1.5 + Stream(jnp.array([1, 2], jnp.uint32), jnp.int32(0), 1).normal((200, 3), jnp.float32)
    for fam in (
        cj.HuberLocation(3, delta=1e6),
        cj.HuberLocation(3, delta=1e6, optimizer="gd", learning_rate=0.5, steps=40),
        cj.HuberLocation(3, delta=1e6, optimizer="adam", learning_rate=0.1, steps=400),
    ):
        p = fam.fit(STREAM, x, None)
        # the closed form (the Gaussian MLE); tolerance: float32 optimisation of an O(1) objective
        np.testing.assert_allclose(p.w, np.asarray(x, np.float64).mean(0), atol=1e-4, err_msg=fam.optimizer)


def test_huber_matches_a_float64_solution():
    from scipy.optimize import minimize

    x = Stream(jnp.array([3, 4], jnp.uint32), jnp.int32(0), 1).normal((150, 1), jnp.float32) ** 3
    p = cj.HuberLocation(1, delta=1.0).fit(STREAM, x, None)
    xx = np.asarray(x, np.float64)[:, 0]

    def loss(m):
        r = np.abs(xx - m[0])
        return np.mean(np.where(r <= 1, 0.5 * r * r, r - 0.5))

    ref = minimize(loss, [0.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14}).x
    np.testing.assert_allclose(p.w, ref, atol=1e-4)


def test_huber_chain_with_a_huge_delta_is_the_known_variance_gaussian_chain():
    n, G = 20, 6
    res = cj.simulate(cj.HuberLocation(2, delta=1e6), cj.Replace(), n=n, generations=G, chains=3000, seed=SEED)
    x = np.asarray(res.metrics["mean_sq_error"], np.float64)
    exp = 2 * (np.arange(G + 1) + 1) / n  # E||mu_g - mu_0||^2 = d (g + 1) / n
    assert_mc_close(x.mean(0), x.std(0, ddof=1) / math.sqrt(len(x)), exp, label="Huber = mean")
    assert float(np.max(res.diagnostics["grad_norm"])) < 1e-3


def test_recursive_logistic_labels_drift_toward_separation():
    """Self-labelled logistic regression grows ||w|| generation after generation; the
    default penalty keeps every fit finite, and a penalty-free run reports it."""
    kw = dict(n=100, generations=8, chains=256, seed=SEED, progress=False)
    res = cj.simulate(cj.GLM("logistic", 3), cj.Replace(), **kw)
    norm = np.asarray(res.metrics["coef_norm"], np.float64)
    growth = norm[:, 8] - norm[:, 0]
    assert growth.mean() > 6 * growth.std(ddof=1) / math.sqrt(len(growth))
    assert np.all(np.isfinite(norm))
    free = cj.simulate(cj.GLM("logistic", 3, penalty=0.0), cj.Replace(), **kw)
    assert free.diagnostics["grad_norm"].shape == (256, 9)


def test_weighted_regime_and_traced_penalty():
    fam = cj.GLM("poisson", 2, penalty=0.01)
    res = cj.simulate(fam, cj.Weighted(0.5), n=50, generations=2, chains=64, seed=SEED, progress=False)
    assert np.all(np.isfinite(res.metrics["heldout_deviance"]))
    before = trace_counts()
    cj.simulate(cj.GLM("poisson", 2, penalty=0.5), cj.Weighted(0.3), n=50, generations=2, chains=64, seed=SEED)
    assert trace_counts() == before, "a new penalty or weight retraced the kernel"


@pytest.mark.parametrize(
    "make,exc,pattern",
    [
        (lambda: cj.GLM("probit"), ValueError, r"kind must be one of \('logistic', 'poisson'\), got 'probit'"),
        (lambda: cj.GLM(steps=0), ValueError, r"GLM: steps must be >= 1, got 0"),
        (lambda: cj.GLM(optimizer="gd"), ValueError, r"optimizer='gd' needs a learning_rate > 0"),
        (lambda: cj.GLM(optimizer="adam", learning_rate=0.0), ValueError, r"learning_rate must be a finite number > 0"),
        (lambda: cj.GLM(optimizer="newton"), ValueError, r"optimizer must be one of \('lbfgs', 'gd', 'adam'\)"),
        (lambda: cj.GLM(penalty=-1.0), ValueError, r"penalty must be a finite number >= 0, got -1.0"),
        (lambda: cj.GLM(dim=3, w_star=[1.0, 2.0]), ValueError, r"the truth must be a finite vector of shape \(3,\)"),
        (lambda: cj.HuberLocation(delta=0.0), ValueError, r"HuberLocation: delta must be a finite number > 0"),
        (lambda: cj.HuberLocation(dim=0), ValueError, r"HuberLocation: dim must be >= 1, got 0"),
    ],
)
def test_bad_arguments_raise(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_data_container_is_the_regression_one():
    fam = cj.GLM("logistic", 2)
    assert isinstance(fam.sample(STREAM, fam.truth(), 5), RegressionData)


def test_huber_regression_with_a_huge_delta_is_the_ols_chain():
    n, d, G = 20, 3, 5
    res = cj.simulate(cj.HuberRegression(d, delta=1e6), cj.Replace(), n=n, generations=G, chains=3000, seed=SEED)
    x = np.asarray(res.metrics["param_sq_error"], np.float64)
    exp = (np.arange(G + 1) + 1) * d / (n - d - 1)  # fresh Gaussian design, noise 1: each refit adds d / (n - d - 1)
    assert_mc_close(x.mean(0), x.std(0, ddof=1) / math.sqrt(len(x)), exp, label="Huber regression = OLS")
    with pytest.raises(ValueError, match=r"HuberRegression: noise must be a finite number > 0"):
        cj.HuberRegression(noise=-1.0)
