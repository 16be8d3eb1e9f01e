"""Real data as the truth (cj.Empirical): loaders, bad input, the rule of which rows a
chain draws, the families on data against the exact finite-population laws, the
held-out measures, and configurations that rebuild a loaded set."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED, assert_mc_close

import collapse_jax as cj
from collapse_jax._rng import STREAM_REAL, Stream, root_key
from collapse_jax.data import heldout_metrics

pytest.importorskip("sklearn")

SHAPES = {"digits": (1797, 64), "iris": (150, 4), "wine": (178, 13), "breast_cancer": (569, 30), "diabetes": (442, 10)}


@pytest.fixture(scope="module")
def iris():
    return cj.Empirical.load("iris")


# --------------------------------------------------------------------------- loaders and bad input
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_loaders_split_and_standardise(name):
    rows, cols = SHAPES[name]
    e = cj.Empirical.load(name, test_fraction=0.25, split_seed=3)
    assert e.rows + e.x_test.shape[0] == rows
    assert e.x_test.shape[0] == round(0.25 * rows)
    assert e.dim == len(e.features) <= cols
    x = np.asarray(e.x, np.float64)
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-4)
    assert e.y.shape == (e.rows,) and e.y_test.shape == (e.x_test.shape[0],)
    raw = cj.Empirical.load(name, standardize=False, test_fraction=0.25, split_seed=3)
    assert raw.dim == cols  # nothing dropped without standardising
    # the split is a function of split_seed alone
    np.testing.assert_array_equal(
        np.asarray(raw.y), np.asarray(cj.Empirical.load(name, standardize=False, test_fraction=0.25, split_seed=3).y)
    )


def test_digits_drops_the_pixels_constant_in_the_pool():
    e = cj.Empirical.load("digits")
    raw = np.asarray(cj.Empirical.load("digits", standardize=False).x)
    constant = np.flatnonzero(raw.std(axis=0) == 0)
    assert len(constant) > 0 and not set(constant) & set(e.features)
    assert e.dim == 64 - len(constant)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: cj.Empirical(np.array([[1.0, np.nan]] + [[1.0, 2.0]] * 9)),
            r"x has 1 non-finite values .* row 0, column 1",
        ),
        (lambda: cj.Empirical(np.zeros((4, 2, 2))), r"x must have shape \(rows, d\)"),
        (lambda: cj.Empirical(np.zeros((10, 2)), y=np.zeros(9)), r"y must have shape \(10,\)"),
        (lambda: cj.Empirical(np.zeros((10, 2)), y=[0.0] * 9 + [np.inf]), "y must be finite"),
        (lambda: cj.Empirical(np.zeros((3, 2)), test_fraction=0.2), "each side needs at least 2"),
        (lambda: cj.Empirical(np.zeros((10, 2)), test_fraction=1.0), r"test_fraction must lie in \(0, 1\)"),
        (lambda: cj.Empirical(np.zeros((10, 2)), standardize=True), "every feature is constant"),
        (lambda: cj.Empirical.load("mnist"), "name must be one of"),
        (lambda: cj.Empirical.load("iris", features=[0, 9]), r"distinct columns in \[0, 4\)"),
        (lambda: cj.Categorical(data=cj.Empirical(np.zeros((10, 1)))), "no labels"),
        (
            lambda: cj.Categorical(data=cj.Empirical(np.zeros((10, 1)), y=np.linspace(0, 1, 10))),
            "labels must be integers",
        ),
        (lambda: cj.Gaussian(dim=3, data=cj.Empirical.load("iris")), "dim=3 but the data set 'iris' has 4"),
        (lambda: cj.Gaussian(data=cj.Empirical.load("iris"), sampler="exact"), "needs sampler='samples'"),
        (lambda: cj.Gaussian(data=cj.Empirical.load("iris"), mean=0.0), "leave mean unset"),
        (lambda: cj.GMM(2, data="iris"), "data must be a cj.Empirical"),
        (lambda: cj.GLM(data=cj.Empirical.load("iris")), r"kind='logistic' needs labels in \{0, 1\}"),
        (lambda: cj.GLM(data=cj.Empirical.load("breast_cancer"), dim=3), "dim=3 but the data set"),
    ],
)
def test_bad_data_is_a_clear_error(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_too_few_rows_for_n_is_refused_before_compiling(iris):
    with pytest.raises(ValueError, match=r"n=200 points per generation but the data set 'iris' has only 120"):
        cj.simulate(cj.Gaussian(data=iris), cj.Replace(), n=200, generations=1, chains=2)


# --------------------------------------------------------------------------- which rows a chain draws
def _rows(data, chain, g, m, first):
    key = root_key(chain)
    return np.asarray(data.draw_rows(Stream(jax.random.key_data(key), jnp.int32(g), STREAM_REAL), m, first))


def test_a_chain_never_reuses_a_row_before_the_pool_is_spent_and_each_pass_is_a_permutation():
    data = cj.Empirical(np.arange(40.0)[:, None], test_fraction=0.2)  # 32 training rows
    n, m = 6, 5
    seq = np.concatenate([_rows(data, 7, 0, n, n)] + [_rows(data, 7, g, m, n) for g in range(1, 12)])
    assert seq.size == n + 11 * m == 61
    # positions 0..31: the first pass, a permutation of the pool; 32..63: the second
    assert sorted(seq[:32]) == list(range(32))
    assert len(set(seq[32:61])) == 29
    assert not np.array_equal(seq[:29], seq[32:61])  # the second pass is reshuffled
    # a chain's order is its own
    other = _rows(data, 8, 0, n, n)
    assert not np.array_equal(other, seq[:n])
    # other streams (a verifier's reference draws) are uniform with replacement
    ref = np.asarray(data.draw_rows(Stream(jax.random.key_data(root_key(7)), jnp.int32(0), 10), 2000))
    counts = np.bincount(ref, minlength=32)
    assert counts.min() > 0 and ref.max() < 32


def test_fresh_real_rows_are_new_rows_inside_a_run():
    """Labels that name their row: under AccumulateMix every batch holds r fresh real
    points, so the pooled fit's support is exactly n + g r distinct rows until the pool
    is spent (a slot count of n per generation: the chain's position advances by n)."""
    pool = 120
    data = cj.Empirical(np.arange(150.0)[:, None], y=np.arange(150), test_fraction=0.2)
    assert data.rows == pool
    n, r = 20, 5
    fam = cj.Categorical(data=data)
    res = cj.simulate(
        fam,
        cj.AccumulateMix(r / n),
        n=n,
        generations=4,
        chains=64,
        seed=SEED,
        metrics=["support_size"],
        keep="chains",
        progress=False,
    )
    support = np.asarray(res.metrics["support_size"])
    # generation g < pool / n - 1: support n + g r in every chain (synthetic points repeat seen rows)
    np.testing.assert_array_equal(support, np.broadcast_to(n + r * np.arange(5.0), support.shape))


def test_generation_zero_is_a_sample_without_replacement(iris):
    """The pool as a finite population (P rows, MLE covariance S): generation 0's mean
    has E||xbar - mu_P||^2 = tr(S)/n (P - n)/(P - 1) (the finite-population correction;
    with replacement it would be tr(S)/n, 16 s.e. away here) and its MLE covariance
    E tr = tr(S) P/(P - 1) (n - 1)/n; Replace then multiplies E tr by (n - 1)/n per
    generation."""
    n, gens, chains = 20, 3, 4000
    res = cj.simulate(
        cj.Gaussian(data=iris),
        cj.Replace(),
        n=n,
        generations=gens,
        chains=chains,
        seed=SEED,
        metrics=["mean_sq_error", "trace_ratio"],
        keep="chains",
        progress=False,
    )
    pool = np.asarray(iris.x, np.float64)
    p = pool.shape[0]
    tr = np.trace(np.cov(pool, rowvar=False, bias=True))
    mse = np.asarray(res.metrics["mean_sq_error"][:, 0], np.float64)
    ratio = np.asarray(res.metrics["trace_ratio"], np.float64)
    expected_mse = tr / n * (p - n) / (p - 1)
    expected_ratio = p / (p - 1) * ((n - 1) / n) ** (np.arange(gens + 1) + 1)
    assert_mc_close(
        np.r_[mse.mean(), ratio.mean(0)],
        np.r_[mse.std(ddof=1), ratio.std(0, ddof=1)] / np.sqrt(chains),
        np.r_[expected_mse, expected_ratio],
        label="finite population",
    )


# --------------------------------------------------------------------------- every family on data
@pytest.mark.parametrize(
    "which",
    [
        "gaussian",
        pytest.param("gmm", marks=pytest.mark.slow),
        pytest.param("kde", marks=pytest.mark.slow),
        "categorical",
    ],
)
def test_families_on_data_run_and_measure_against_the_test_split(which):
    wine = cj.Empirical.load("wine", features=[0, 6])
    fam = {
        "gaussian": lambda: cj.Gaussian(data=wine),
        "gmm": lambda: cj.GMM(2, data=wine, em_max_iters=20),
        "kde": lambda: cj.KDE(0.3, data=wine),
        "categorical": lambda: cj.Categorical(data=wine),
    }[which]()
    res = cj.simulate(fam, cj.FreshMix(0.5), n=30, generations=2, chains=16, seed=SEED, keep="chains", progress=False)
    names = ["test_nll", "test_tv"] if which == "categorical" else list(cj.data.HELDOUT_METRICS)
    for k in names:
        v = np.asarray(res.metrics[k])
        assert v.shape == (16, 3) and np.all(np.isfinite(v)), k
    if which != "categorical":
        assert np.all((res.metrics["coverage"] >= 0) & (res.metrics["coverage"] <= 1))
    # the description rebuilds the same family and, rerun, the same numbers
    again = cj.from_config(res.config)(progress=False)
    np.testing.assert_array_equal(np.asarray(again.metrics[names[0]]), np.asarray(res.metrics[names[0]]))


def test_user_arrays_are_described_by_a_digest_and_not_rebuilt():
    data = cj.Empirical(np.random.default_rng(0).normal(size=(30, 2)), name="mine")
    desc = cj.Gaussian(data=data).describe()["data"]
    assert desc["arrays"] == "mine" and len(desc["sha256_16"]) == 16 and desc["rows"] == 30
    with pytest.raises(ValueError, match="built from your own arrays"):
        cj.Gaussian(data=desc)


# --------------------------------------------------------------------------- held-out measures
def test_heldout_measures_on_known_configurations():
    data = cj.Empirical(np.random.default_rng(1).normal(size=(400, 2)), test_fraction=0.5)
    xt = data.x_test
    logp = jnp.zeros(xt.shape[0])
    same = heldout_metrics(data, xt[:256], logp)
    assert float(same["precision"]) == 1.0  # every draw is a test point, inside its own ball
    far = heldout_metrics(data, xt[:256].at[:, 0].add(100.0), logp)
    assert float(far["precision"]) == 0.0 and float(far["coverage"]) == 0.0
    # a shift by 100 along one axis: |X - Y| ~ 100, so the energy distance ~ 2 * 100 - E|X-X'| - E|Y-Y'|
    assert 190.0 < float(far["energy_distance"]) < 200.0
    point = heldout_metrics(data, jnp.zeros((256, 2)), logp)
    assert float(point["diversity"]) == 0.0  # a collapsed fit
    assert float(point["coverage"]) < 0.2


def test_energy_distance_is_unbiased_for_draws_from_the_data_law():
    """Draws from the law the test split came from: mean energy distance 0 within
    Monte Carlo error (over independent draws of the fit's samples)."""
    rng = np.random.default_rng(2)
    data = cj.Empirical(rng.normal(size=(600, 2)), test_fraction=0.5)
    keys = jax.random.split(jax.random.key(0), 400)
    ed = jax.vmap(lambda k: heldout_metrics(data, jax.random.normal(k, (256, 2)), jnp.zeros(300))["energy_distance"])(
        keys
    )
    ed = np.asarray(ed, np.float64)
    assert_mc_close(ed.mean(), ed.std(ddof=1) / np.sqrt(ed.size), 0.0, label="energy distance")


def test_glm_on_data_keeps_real_features_and_scores_the_test_split():
    """Logistic regression on breast_cancer: the truth is the fit of the pool, a synthetic
    point is a pool row's features with the model's label, and the held-out log loss and
    accuracy score every generation."""
    bc = cj.Empirical.load("breast_cancer")
    fam = cj.GLM(data=bc, intercept=True, penalty=1e-2)
    assert fam.dim == bc.dim + 1
    draw = fam.sample(jax.random.key(0), fam.truth(), 50)
    pool = np.asarray(bc.x)
    assert np.all(np.asarray(draw.X[:, 0]) == 1.0)
    assert all(np.any(np.all(pool == row, axis=1)) for row in np.asarray(draw.X[:, 1:]))
    assert set(np.unique(np.asarray(draw.y))) <= {0.0, 1.0}
    res = cj.simulate(fam, cj.Replace(), n=100, generations=2, chains=8, seed=SEED, keep="chains", progress=False)
    acc = np.asarray(res.metrics["test_accuracy"])
    assert np.all((acc >= 0) & (acc <= 1)) and acc[:, 0].mean() > 0.85  # a fit of 100 real rows classifies well
    assert np.all(np.isfinite(np.asarray(res.metrics["test_logloss"])))
    again = cj.GLM(**{k: v for k, v in fam.describe().items() if k != "family"})
    np.testing.assert_array_equal(np.asarray(again.w_star), np.asarray(fam.w_star))
