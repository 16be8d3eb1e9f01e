"""Ridge regression on a data set (cj.Ridge(data=...)): the truth is the pool's
least-squares fit on centred features and a standardised target, real points are pool
rows with their observed targets, and the recursion's laws hold given the pool's rows."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import SEED, assert_mc_close

import collapse_jax as cj

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def diabetes():
    return cj.Empirical.load("diabetes")


def test_the_truth_is_the_pools_least_squares_fit(diabetes):
    """w* is the pool's OLS fit (scikit-learn's, with its intercept, on the same
    standardised scale), noise its residual sd (P - d - 1 degrees of freedom), and test_mse of w* is the test split's
    mean squared error in units of the pool's target variance."""
    from sklearn.linear_model import LinearRegression

    fam = cj.Ridge(data=diabetes)
    x, y = np.asarray(diabetes.x, np.float64), np.asarray(diabetes.y, np.float64)
    xt, yt = np.asarray(diabetes.x_test, np.float64), np.asarray(diabetes.y_test, np.float64)
    lr = LinearRegression().fit(x, y)
    np.testing.assert_allclose(np.asarray(fam.w_star), lr.coef_ / y.std(), rtol=1e-5, atol=1e-6)
    resid = y - lr.predict(x)
    dof = x.shape[0] - x.shape[1] - 1  # the intercept spends one degree of freedom
    np.testing.assert_allclose(float(fam.noise), np.sqrt(resid @ resid / dof) / y.std(), 1e-5)
    m = fam.metrics(jax.random.key(0), fam.truth())
    expected = np.mean((yt - lr.predict(xt)) ** 2) / y.var()
    np.testing.assert_allclose(float(m["test_mse"]), expected, rtol=1e-4)
    np.testing.assert_allclose(float(m["test_error"]), 0.0, atol=1e-10)


def test_a_fixed_design_is_the_chains_first_rows_with_their_observed_targets(diabetes):
    fam = cj.Ridge(data=diabetes, design="fixed").for_run(cj.Replace(), 40, 2)
    key = cj.Stream(jax.random.key_data(jax.random.key(3)), np.int32(0), cj._rng.STREAM_REAL)
    bound = fam.with_chain(fam.init_chain(key, 40))
    real = bound.sample_real(key, 40)
    rows = np.asarray(diabetes.draw_rows(key, 40))
    assert len(set(rows.tolist())) == 40  # without replacement
    pool = np.asarray(fam._pool.X)
    np.testing.assert_array_equal(np.asarray(real.X), pool[rows])
    np.testing.assert_array_equal(np.asarray(real.y), np.asarray(fam._pool.y)[rows])
    synth = bound.sample(key.sibling(cj._rng.STREAM_SYNTH), bound.truth(), 40)
    assert synth.X is real.X or np.array_equal(np.asarray(synth.X), np.asarray(real.X))  # the same rows, relabelled


def _host_law(pool_x, resid, n, draws, rng, replace):
    """Host Monte Carlo over n-row designs from the pool (without or with replacement):
    tr(Sigma (X^T X)^-1) and ||(X^T X)^-1 X^T r||^2_Sigma (OLS on the rows' residuals
    from w*), their means and standard errors."""
    p = pool_x.shape[0]
    cov = pool_x.T @ pool_x / p
    if replace:
        idx = rng.integers(0, p, size=(draws, n))
    else:
        idx = np.argsort(rng.random((draws, p)), axis=1)[:, :n]
    X, r = pool_x[idx], resid[idx]
    gram = np.einsum("mni,mnj->mij", X, X)
    inv = np.linalg.inv(gram)
    tr = np.einsum("ij,mji->m", cov, inv)
    e0 = np.linalg.solve(gram, np.einsum("mni,mn->mi", X, r)[..., None])[..., 0]
    err0 = np.einsum("mi,ij,mj->m", e0, cov, e0)
    return (tr.mean(), tr.std(ddof=1) / np.sqrt(draws)), (err0.mean(), err0.std(ddof=1) / np.sqrt(draws))


@pytest.mark.parametrize("design", ["fixed", "fresh"])
def test_ols_on_data_follows_its_exact_law(diabetes, design):
    """OLS on the pool's rows under Replace. Generation 0 fits n real rows (a simple
    random sample): E||w_0 - w*||^2_Sigma by host Monte Carlo over the same law of
    rows. Each later generation adds sigma^2 tr(Sigma (X^T X)^-1) in expectation,
    on the chain's own rows (fixed design: the generation-0 rows; fresh: n rows
    uniform with replacement), so E[e_g - e_0] = g sigma^2 E tr(Sigma (X^T X)^-1)."""
    n, gens, chains = 40, 3, 3000
    fam = cj.Ridge(data=diabetes, design=design)
    res = cj.simulate(fam, cj.Replace(), n=n, generations=gens, chains=chains, seed=SEED, keep="chains",
                      metrics=["test_error"], progress=False)  # fmt: skip
    err = np.asarray(res.metrics["test_error"], np.float64)
    pool_x, pool_y = np.asarray(fam._pool.X, np.float64), np.asarray(fam._pool.y, np.float64)
    w_star = np.asarray(fam.w_star, np.float64)
    rng = np.random.default_rng(SEED)
    (tr0, tr0_se), (e0, e0_se) = _host_law(pool_x, pool_y - pool_x @ w_star, n, 20000, rng, replace=False)
    if design == "fresh":
        (tr, tr_se), _ = _host_law(pool_x, pool_y - pool_x @ w_star, n, 20000, rng, replace=True)
    else:
        tr, tr_se = tr0, tr0_se
    s2 = float(fam.noise) ** 2
    g = np.arange(1, gens + 1)
    growth = err[:, 1:] - err[:, :1]
    mean = np.r_[err[:, 0].mean(), growth.mean(0)]
    se_mc = np.r_[err[:, 0].std(ddof=1), growth.std(0, ddof=1)] / np.sqrt(chains)
    expected = np.r_[e0, g * s2 * tr]
    se = np.hypot(se_mc, np.r_[e0_se, g * s2 * tr_se])
    assert_mc_close(mean, se, expected, label=f"OLS on data, {design} design")


def test_ridge_on_data_describes_itself_and_reruns(diabetes):
    fam = cj.Ridge(data=diabetes, lam=0.01, design="fresh")
    res = cj.simulate(fam, cj.FreshMix(0.5), n=50, generations=2, chains=8, seed=SEED, progress=False)
    again = cj.from_config(res.config)(progress=False)
    np.testing.assert_array_equal(np.asarray(again.metrics["test_mse"]), np.asarray(res.metrics["test_mse"]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"w_star": [1.0] * 10}, "leave w_star unset"),
        ({"spectrum": 1.0}, "leave spectrum unset"),
        ({"sampler": "exact"}, "sampler='exact'"),
        ({"dim": 3}, "dim=3 but the data set"),
    ],
)
def test_bad_input_on_data_is_a_clear_error(diabetes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cj.Ridge(data=diabetes, **kwargs)


def test_data_without_a_target_is_refused():
    with pytest.raises(ValueError, match="no target"):
        cj.Ridge(data=cj.Empirical(np.random.default_rng(0).normal(size=(50, 3))))
    with pytest.raises(TypeError, match="dim"):
        cj.Ridge()


def test_graph_nodes_on_data_refit_their_rows_with_observed_targets(diabetes):
    """On an interaction graph with only real data, a fixed design's node refits its own
    rows with their observed targets every generation: the same fit, a constant error
    (drawn from the fitted truth instead, the error moved by a third)."""
    graph = cj.InteractionGraph(np.zeros((2, 2)), real_fraction=1.0)
    res = cj.simulate_graph(cj.Ridge(data=diabetes, design="fixed"), graph, n=40, generations=2, chains=4, seed=SEED,
                            metrics=["test_error"], progress=False)  # fmt: skip
    err = np.asarray(res.metrics["test_error"], np.float64)  # (chains, generations, nodes)
    np.testing.assert_allclose(err, np.broadcast_to(err[:, :1], err.shape), rtol=1e-4)


@pytest.mark.slow
def test_gaussian_graph_nodes_on_data_fit_pool_rows():
    """A Gaussian node on data with only real data fits pool rows drawn without
    replacement: the finite-population law of generation 0 holds at every generation."""
    graph = cj.InteractionGraph(np.zeros((2, 2)), real_fraction=1.0)
    iris = cj.Empirical.load("iris")
    n, chains = 20, 2000
    res = cj.simulate_graph(cj.Gaussian(data=iris), graph, n=n, generations=2, chains=chains, seed=SEED,
                            metrics=["mean_sq_error"], progress=False)  # fmt: skip
    mse = np.asarray(res.metrics["mean_sq_error"], np.float64)[:, :, 0]  # node 0
    pool = np.asarray(iris.x, np.float64)
    p = pool.shape[0]
    expected = np.trace(np.cov(pool, rowvar=False, bias=True)) / n * (p - n) / (p - 1)
    assert_mc_close(mse.mean(0), mse.std(0, ddof=1) / np.sqrt(chains), expected, label="graph node on data")


def test_collinear_features_give_the_minimum_norm_fit_not_nan():
    """A pool whose features are collinear (a duplicated column) has a singular X^T X at
    any n: OLS is then the minimum-norm fit (its predictions are the least-squares
    ones), finite on both designs; a pool too small for the residual noise is refused."""
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(400, 3))
    x = np.concatenate([x, x[:, :1]], axis=1)
    y = x[:, :3] @ np.array([1.0, -0.5, 0.3]) + rng.normal(size=400)  # (Cholesky gave NaN on the fresh design)
    data = cj.Empirical(x, y, name="collinear")
    for design in ("fixed", "fresh"):
        res = cj.simulate(cj.Ridge(data=data, design=design), cj.Replace(), n=40, generations=2, chains=8, seed=SEED,
                          progress=False)  # fmt: skip
        for k in ("test_error", "test_mse"):
            assert np.all(np.isfinite(np.asarray(res.mean(k)))), (design, k)
    with pytest.raises(ValueError, match="needs at least rank \\+ 2"):
        cj.Ridge(data=cj.Empirical(rng.normal(size=(6, 4)), rng.normal(size=6), test_fraction=0.34))
