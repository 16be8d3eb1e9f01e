"""The Ridge family: every regression closed form against the simulator (n >= d + 8,
where the sample standard error is trustworthy), the infinite-expectation band,
min-norm, exact vs sample paths, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SEED, assert_mc_close, summary_at
from scipy import stats

import collapse_jax as cj
from collapse_jax import theory as T
from collapse_jax.engine.kernel import trace_counts

D, N = 5, 20  # n = d + 15
GENS = [0, 1, 4, 10]
CHAINS = 20_000


def run(fam, regime=None, n=N, generations=10, chains=CHAINS, **kw):
    return cj.simulate(
        fam, regime or cj.Replace(), n=n, generations=generations, chains=chains, seed=SEED, progress=False, **kw
    )


@pytest.mark.parametrize("design", ["fixed", "fresh"])
@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_ols_replace(design, sampler):
    res = run(cj.Ridge(D, noise=0.7, design=design, sampler=sampler, cov=np.diag([2.0, 1.0, 1.0, 0.5, 0.25])))
    mean, se = summary_at(res, "test_error", GENS)
    assert_mc_close(mean, se, T.ols_replace_test_error(np.array(GENS), N, D, 0.7), label=f"OLS replace {design}")


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_ols_accumulate_fixed_design(sampler):
    res = run(cj.Ridge(D, design="fixed", sampler=sampler), cj.Accumulate(), generations=30)
    g = [0, 1, 5, 30]
    mean, se = summary_at(res, "test_error", g)
    assert_mc_close(mean, se, T.ols_accumulate_test_error(np.array(g), N, D), label="OLS accumulate")
    assert T.ols_accumulate_test_error(10_000, N, D) == pytest.approx(T.ols_accumulate_limit(N, D), rel=1e-3)


def test_fresh_design_accumulate_is_below_fixed():
    # THEORY.md section 2: accumulating over fresh designs does slightly better than the fixed-design law
    res = run(cj.Ridge(D, design="fresh", sampler="exact"), cj.Accumulate(), generations=10)
    mean, se = summary_at(res, "test_error", [10])
    assert mean[0] + 5 * se[0] < T.ols_accumulate_test_error(10, N, D)


@pytest.mark.parametrize("design", ["fixed", "fresh"])
def test_dohmatob_downstream(design):
    t = 25
    res = run(cj.Ridge(D, noise=1.0, design=design, downstream=cj.Downstream(t, noise=0.5)))
    mean, se = summary_at(res, "downstream_test_error", GENS)
    assert_mc_close(mean, se, T.dohmatob_downstream_test_error(np.array(GENS), N, D, 1.0, t, 0.5), label="Dohmatob")


def test_ridge_downstream_decomposition():
    t, lam_d = 25, 0.2
    res = run(cj.Ridge(D, noise=1.0, w_star="random", downstream=cj.Downstream(t, noise=0.5, lam=lam_d)))
    value, mc_se = T.ridge_downstream_test_error(np.array(GENS), N, D, 1.0, t, 0.5, lam_d, w_star_sq=D, mc=20_000)
    mean, se = summary_at(res, "downstream_test_error", GENS)
    # the theory's own Monte Carlo error adds to the simulator's
    assert_mc_close(mean, np.sqrt(se**2 + mc_se**2), value, label="ridge downstream")


@pytest.mark.parametrize("lam", [0.05, 0.5])
def test_ridge_chain_fixed_design(lam):
    # ridge refitted at every generation: the shrinkage compounds (bias -> ||w*||^2)
    g = [0, 1, 4, 10, 30]
    res = run(cj.Ridge(D, lam=lam, noise=0.8, design="fixed"), generations=30)
    value, mc_se = T.ridge_replace_test_error(np.array(g), N, D, 0.8, lam, w_star_sq=D, mc=20_000)
    mean, se = summary_at(res, "test_error", g)
    assert_mc_close(mean, np.sqrt(se**2 + mc_se**2), value, label=f"ridge chain lam={lam}")


def test_ridge_chain_law_reduces_to_ols_and_min_norm():
    g = np.array([0, 3, 20])
    value, mc_se = T.ridge_replace_test_error(g, N, D, 0.7, 0.0, w_star_sq=D, mc=20_000)
    assert_mc_close(value, mc_se, T.ols_replace_test_error(g, N, D, 0.7), label="lam = 0: OLS")
    value, mc_se = T.ridge_replace_test_error(g, 10, 25, 0.7, 0.0, w_star_sq=25.0, mc=20_000)
    assert_mc_close(value, mc_se, T.minnorm_replace_test_error(g, 10, 25, 0.7, w_star_sq=25.0), label="min-norm")
    # a large penalty forgets w*: the error tends to ||w*||^2 (plus a vanishing noise term)
    far, _ = T.ridge_replace_test_error(np.array([2000]), N, D, 0.7, 5.0, w_star_sq=D, mc=2000)
    assert abs(far[0] - D) < 0.01 * D
    # vectorised over any shape of g, like every closed form
    grid, grid_se = T.ridge_replace_test_error(np.array([[0, 3], [20, 3]]), N, D, 0.7, 0.1, w_star_sq=D, mc=500)
    one, _ = T.ridge_replace_test_error(3, N, D, 0.7, 0.1, w_star_sq=D, mc=500)
    assert grid.shape == grid_se.shape == (2, 2) and grid[0, 1] == grid[1, 1] == one


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_min_norm_replace(sampler):
    d, n = 30, 12  # n <= d - 2
    res = run(cj.Ridge(d, noise=0.5, sampler=sampler), n=n, chains=10_000)
    mean, se = summary_at(res, "test_error", GENS)
    expected = T.minnorm_replace_test_error(np.array(GENS), n, d, 0.5, w_star_sq=d)
    assert_mc_close(mean, se, expected, label=f"min-norm {sampler}")


@pytest.mark.parametrize("combine", ["samples", "estimates"])
def test_label_mixing_golden_ratio_ols(combine):
    w = T.optimal_label_mixing_weight()
    res = run(cj.Ridge(D), cj.Weighted(w, ratio=1.0, combine=combine))
    mean, se = summary_at(res, "test_error", GENS)
    assert_mc_close(mean, se, T.ols_weighted_test_error(np.array(GENS), N, D, 1.0, w), label=f"label mixing {combine}")


def test_label_mixing_min_norm():
    d, n, w = 30, 12, 0.4
    res = run(cj.Ridge(d), cj.Weighted(w), n=n, chains=10_000)
    mean, se = summary_at(res, "test_error", GENS)
    assert_mc_close(
        mean, se, T.minnorm_weighted_test_error(np.array(GENS), n, d, 1.0, w, w_star_sq=d), label="min-norm mixing"
    )


@pytest.mark.parametrize("n", [4, 5, 6])
def test_infinite_expectation_band_is_finite_and_flagged(n):
    # d - 1 <= n <= d + 1: E[(X^T X)^-1] is infinite; chains stay finite and the mean is flagged
    res = run(cj.Ridge(D), n=n, generations=5, chains=5000)
    assert np.isfinite(res.metrics["test_error"]).all() and not res.nonfinite.any()
    assert res.summary("test_error")["heavy_tail"].iloc[1:].all()


def test_ridge_shrinks_and_regularisation_mitigates_collapse():
    a = run(cj.Ridge(D, lam=0.0), generations=20, chains=5000)
    b = run(cj.Ridge(D, lam=0.5), generations=20, chains=5000)
    d = a.paired_difference(b, "test_error").set_index("generation").loc[20]
    assert d["mean"] > 5 * d["se"]


@pytest.mark.parametrize("design", ["fixed", "fresh"])
@pytest.mark.parametrize("lam", [0.0, 0.3])
@pytest.mark.parametrize("regime", [cj.Replace(), cj.Accumulate()], ids=["replace", "accumulate"])
def test_exact_matches_samples(design, lam, regime):
    kw = dict(n=14, generations=6, chains=6000, progress=False, metrics=["test_error", "param_sq_error"])
    a = cj.simulate(cj.Ridge(4, lam=lam, design=design), regime, seed=SEED, **kw)
    b = cj.simulate(cj.Ridge(4, lam=lam, design=design, sampler="exact"), regime, seed=SEED + 3, **kw)
    checks = [(m, g) for m in ("test_error", "param_sq_error") for g in (0, 1, 6)]
    for m, g in checks:
        p = stats.ks_2samp(a.metrics[m][:, g], b.metrics[m][:, g]).pvalue
        assert p > 1e-4 / len(checks), f"{m} g={g}: KS p = {p:.2e}"


@pytest.mark.parametrize(
    "regime",
    [cj.FreshMix(0.3), cj.RetainOriginal(0.3), cj.AccumulateSubsample(), cj.Weighted(0.6)],
    ids=["freshmix", "retain", "subsample", "weighted"],
)
@pytest.mark.parametrize("design", ["fixed", "fresh"])
def test_every_regime_runs(regime, design):
    res = run(cj.Ridge(D, design=design), regime, generations=6, chains=500)
    assert not res.nonfinite.any()
    assert res.metrics["test_error"].shape == (500, 7)


def test_fixed_design_regimes_share_rows_and_limits():
    base = run(cj.Ridge(D), cj.Replace(), chains=300)
    for regime in (cj.FreshMix(0.0), cj.RetainOriginal(0.0)):
        other = run(cj.Ridge(D), regime, chains=300)
        np.testing.assert_allclose(other.metrics["test_error"], base.metrics["test_error"], rtol=1e-4, atol=1e-6)
    keep = run(cj.Ridge(D), cj.RetainOriginal(1.0), chains=300)
    x = keep.metrics["test_error"]
    np.testing.assert_allclose(x, np.repeat(x[:, :1], x.shape[1], axis=1), rtol=1e-4, atol=1e-6)
    fresh = run(cj.Ridge(D, noise=0.8), cj.FreshMix(1.0), chains=20_000)
    mean, se = summary_at(fresh, "test_error", [0, 3, 10])
    assert_mc_close(mean, se, [0.64 * D / (N - D - 1)] * 3, label="FreshMix(1) refits real labels")


def test_random_w_star_per_chain():
    res = run(cj.Ridge(D, w_star="random"), generations=2, chains=200)
    g0 = res.metrics["param_sq_error"][:, 0]
    assert np.std(g0) > 0
    fixed = run(cj.Ridge(D, w_star=np.arange(D, dtype=float)), generations=2, chains=200)
    assert fixed.metrics["param_sq_error"].shape == (200, 3)


@pytest.mark.parametrize(
    "make,exc,pattern",
    [
        (lambda: cj.Ridge(0), ValueError, r"Ridge: dim must be >= 1, got 0"),
        (lambda: cj.Ridge(3, lam=-1), ValueError, r"Ridge: lam must be a finite number >= 0, got -1"),
        (lambda: cj.Ridge(3, noise=-0.5), ValueError, r"Ridge: noise must be a finite number >= 0"),
        (lambda: cj.Ridge(2, cov=[[1.0, 2.0], [2.0, 1.0]]), ValueError, r"not positive definite"),
        (lambda: cj.Ridge(2, cov=[[1.0, 0.1], [0.2, 1.0]]), ValueError, r"not symmetric"),
        (lambda: cj.Ridge(3, w_star=[1.0, 2.0]), ValueError, r"w_star must be a finite vector of shape \(3,\)"),
        (lambda: cj.Ridge(3, w_star="gaussian"), ValueError, r"w_star must be a vector of shape \(3,\) or 'random'"),
        (lambda: cj.Ridge(3, design="random"), ValueError, r"design must be one of"),
        (lambda: cj.Downstream(0), ValueError, r"Downstream: samples must be >= 1, got 0"),
        (lambda: cj.Downstream(10, noise=-1), ValueError, r"Downstream: noise must be"),
    ],
)
def test_bad_input(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_bad_regime_combinations_raise_before_compiling():
    before = trace_counts()
    with pytest.raises(ValueError, match=r"ratio=2.0 on a fixed design"):
        run(cj.Ridge(D), cj.Weighted(0.5, ratio=2.0), chains=4)
    with pytest.raises(ValueError, match=r"FreshMix on a fixed design needs the data points"):
        run(cj.Ridge(D, sampler="exact"), cj.FreshMix(0.5), chains=4)
    with pytest.raises(ValueError, match=r"n must be >= 1"):
        run(cj.Ridge(D), n=0, chains=4)
    assert trace_counts() == before


def test_power_law_spectrum():
    fam = cj.Ridge(6, spectrum=1.0)
    eig = np.linalg.eigvalsh(np.asarray(fam.cov, np.float64))
    assert eig.sum() == pytest.approx(6.0, rel=1e-5) and eig.max() / eig.min() == pytest.approx(6.0, rel=1e-4)
    res = run(fam, n=30, generations=5, chains=10_000)
    mean, se = summary_at(res, "test_error", [0, 5])
    assert_mc_close(mean, se, T.ols_replace_test_error(np.array([0, 5]), 30, 6), label="spectrum")
    with pytest.raises(ValueError, match="give cov or spectrum, not both"):
        cj.Ridge(3, cov=np.eye(3), spectrum=1.0)


def test_chain_context_is_a_function_of_the_key_bound_to_the_family():
    """A fixed design and a random w* are the chain's context (PerChain.init_chain): a
    function of the chain's key, bound to the family, absent from the fit."""
    import jax
    import jax.numpy as jnp

    from collapse_jax._rng import STREAM_REAL, Stream
    from collapse_jax.families import PerChain

    fam = cj.Ridge(dim=3, w_star="random")
    assert isinstance(fam, PerChain) and fam.chain is None
    key = lambda i: Stream(jax.random.key_data(jax.random.key(i)), jnp.int32(0), STREAM_REAL)  # noqa: E731
    a, again, other = fam.init_chain(key(0), 10), fam.init_chain(key(0), 10), fam.init_chain(key(1), 10)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(again)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.allclose(np.asarray(a.w_star), np.asarray(other.w_star))
    assert a.X.shape == (10, 3) and a.XT.shape == (3, 10)
    np.testing.assert_allclose(np.asarray(a.gram), np.asarray(a.X.T @ a.X), rtol=1e-5)
    bound = fam.with_chain(a)
    np.testing.assert_array_equal(np.asarray(bound.truth().w), np.asarray(a.w_star))
    data = bound.sample(key(2), bound.truth(), 10)
    assert data.X is a.X  # every sample of the chain relabels its own rows
    assert jax.tree.leaves(bound.fit(key(3), data, None)) != [] and fam.chain is None
    exact = cj.Ridge(dim=3, sampler="exact").init_chain(key(0), 10)
    assert exact.X.shape == (0, 3) and exact.gram_chol.shape == (3, 3)


@pytest.mark.parametrize("sources", [3, 12])
def test_mixed_draw_labels_each_row_by_its_source(sources):
    """Ridge.sample_mixed (interaction graphs): row k is labelled by models[source[k]], by a
    small matrix product for a few sources and by a gather for many; both give x^T w + noise."""
    import jax
    import jax.numpy as jnp

    from collapse_jax._rng import STREAM_REAL, Stream
    from collapse_jax.families import RidgeParams

    key = lambda i: Stream(jax.random.key_data(jax.random.key(i)), jnp.int32(0), STREAM_REAL)  # noqa: E731
    fam = cj.Ridge(dim=4, noise=0.0)
    fam = fam.with_chain(fam.init_chain(key(0), 30))
    w = jax.random.normal(jax.random.key(1), (sources, 4))
    source = jnp.arange(30) % sources
    data = fam.sample_mixed(key(2), RidgeParams(w), source, 30)
    assert data.X is fam.chain.X
    want = np.einsum("nd,nd->n", np.asarray(data.X, np.float64), np.asarray(w, np.float64)[np.asarray(source)])
    np.testing.assert_allclose(np.asarray(data.y), want, rtol=1e-5, atol=1e-5)
