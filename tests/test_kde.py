"""The KDE family (fixed bandwidth, Kazdan et al. 2024) and its closed forms:
bad input, the exact mixture sampler, the fit's weight conventions, the held-out NLL,
and the simulator against `collapse_jax.theory.kde` with tolerances from the Monte
Carlo standard error (STYLE.md section 6)."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED, assert_mc_close, summary_at, z_for
from scipy import integrate, special, stats

import collapse_jax as cj
from collapse_jax._rng import Stream
from collapse_jax.engine.kernel import trace_counts
from collapse_jax.families._counts import inverse_cdf
from collapse_jax.families.kde import KDE, MixtureTruth
from collapse_jax.theory import kde as kde_theory

MIXTURE_2D = {"means": [[0.0, 0.0], [3.0, 1.0]], "covs": [0.5, [[1.0, 0.3], [0.3, 0.8]]], "weights": [0.3, 0.7]}
KS_ALPHA = 1e-4  # per-test false-alarm rate of the distribution tests


def stream(i=0, s=2):
    return Stream(jnp.array([SEED, i], jnp.uint32), jnp.int32(0), s)


# family methods compiled once per shape (eager dispatch compiles every primitive anew)
fit = jax.jit(lambda fam, s, x, w: fam.fit(s, x, w))
sample = jax.jit(lambda fam, s, p, n: fam.sample(s, p, n), static_argnums=3)
real = jax.jit(lambda fam, s, n: fam.sample_real(s, n), static_argnums=2)
log_density = jax.jit(lambda fam, p, y: fam.log_density(p, y))
metrics = jax.jit(lambda fam, s, p: fam.metrics(s, p))
categorical = jax.jit(inverse_cdf)


def run(fam, regime, **kw):
    args = dict(seed=SEED, progress=False, keep="chains")
    args.update(kw)
    return cj.simulate(fam, regime, **args)


def mixture_cdf(t, centres, sds, weights):
    """CDF at t of sum_i weights_i N(centres_i, sds_i^2) (1-D)."""
    t = np.asarray(t, np.float64)[:, None]
    return np.sum(weights * stats.norm.cdf((t - centres) / sds), axis=1)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        (dict(bandwidth=0.0), ValueError, r"bandwidth must be a finite number in \[1e-18, 1e\+18\].*got 0.0"),
        (dict(bandwidth=-1.0), ValueError, r"bandwidth .*got -1.0"),
        (dict(bandwidth=math.nan), ValueError, r"bandwidth .*got nan"),
        (dict(bandwidth=math.inf), ValueError, r"bandwidth .*got inf"),
        (dict(bandwidth="wide"), TypeError, r"bandwidth must be a number .*'wide'"),
        (dict(bandwidth=[0.1, 0.2]), TypeError, r"bandwidth must be a number"),
        (dict(bandwidth=True), TypeError, r"bandwidth must be a number"),
        (dict(kernel="tophat"), ValueError, r"kernel must be one of \('gaussian',\), got 'tophat'"),
        (dict(dim=0), ValueError, r"dim must be >= 1, got 0"),
        (dict(dim=1.5), TypeError, r"dim must be an int >= 1, got 1.5"),
        (dict(dim=True), TypeError, r"dim must be an int"),
        (dict(heldout_size=0), ValueError, r"heldout_size must be >= 1, got 0"),
        (dict(capacity=0), ValueError, r"capacity must be >= 1, got 0"),
        (dict(truth=[0.0, 1.0]), TypeError, r"truth must be None, \{'mean'"),
        (dict(truth={"mean": 0.0, "sd": 1.0}), ValueError, r"unknown keys \['sd'\]"),
        (dict(truth={"mean": [0.0, 1.0]}), ValueError, r"truth\['mean'\] must be a scalar or a vector of shape \(1,\)"),
        (dict(truth={"mean": math.nan}), ValueError, r"truth\['mean'\] must be finite"),
        (dict(truth={"cov": -1.0}), ValueError, r"truth\['cov'\].*positive definite"),
        (dict(dim=2, truth={"cov": [[1.0, 2.0], [0.0, 1.0]]}), ValueError, r"not symmetric"),
        (dict(truth={"means": [[0.0, 1.0]]}), ValueError, r"truth\['means'\] must have shape \(K, 1\)"),
        (dict(truth={"means": [0.0, 1.0], "covs": [1.0]}), ValueError, r"truth\['covs'\] must hold K = 2"),
        (dict(truth={"means": [0.0, 1.0], "weights": [1.0, -1.0]}), ValueError, r"truth\['weights'\] must be 2"),
        (dict(truth={"means": [0.0, 1.0], "mean": 0.0}), ValueError, r"a mixture takes"),
        (dict(truth={"means": [0.0], "cov": 1.0, "covs": [1.0]}), ValueError, r"one of cov, covs"),
    ],
)
def test_bad_arguments_raise(kwargs, exc, pattern):
    args = dict(bandwidth=0.5)
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        KDE(**args)


def test_bad_configurations_raise_before_compiling():
    before = trace_counts()
    kw = dict(n=10, generations=3, chains=4)
    with pytest.raises(ValueError, match=r"capacity=39 is smaller than 40, the largest fit of Accumulate at n=10"):
        run(KDE(0.5, capacity=39), cj.Accumulate(), **kw)
    with pytest.raises(ValueError, match=r"capacity=12 is smaller than 15, the largest fit of Weighted"):
        run(KDE(0.5, capacity=12), cj.Weighted(0.5, ratio=2.0), **kw)
    with pytest.raises(ValueError, match=r"capacity=5 is smaller than n=10"):
        run(KDE(0.5, capacity=5), cj.Replace(), **kw)
    with pytest.raises(ValueError, match=r"combine='estimates' is not supported by KDE"):
        run(KDE(0.5), cj.Weighted(0.5, combine="estimates"), **kw)
    with pytest.raises(ValueError, match=r"sweep value 0.0 for 'bandwidth' is invalid: KDE.bandwidth must lie in"):
        run(KDE(0.5), cj.Replace(), sweep={"bandwidth": [0.1, 0.0]}, **kw)
    assert trace_counts() == before, "an invalid configuration reached the compiler"
    # a store too small for the data is caught while tracing, with the fix in the message
    with pytest.raises(ValueError, match=r"received 20 points but capacity=10"):
        KDE(0.5, capacity=10).fit(stream(), jnp.zeros((20, 1)), None)


# --------------------------------------------------------------------------- fit and sample
def test_fit_normalises_weights_and_empties_zero_slots():
    fam = KDE(0.4, dim=2, truth=MIXTURE_2D, heldout_size=300)
    x = real(fam, stream(), 25)
    assert x.shape == (25, 2)
    w = jnp.linspace(0.5, 2.0, 25)
    base = fit(fam, stream(1), x, w)
    np.testing.assert_allclose(float(jnp.sum(base.weights)), 1.0, rtol=1e-6)
    padded_x = jnp.concatenate([x[:10], jnp.full((4, 2), jnp.inf), x[10:]])
    padded_w = jnp.concatenate([w[:10], jnp.zeros(4), w[10:]])
    variants = [fit(fam, stream(1), x, 3.7 * w), fit(fam, stream(1), x[::-1], w[::-1])]
    variants.append(fit(fam, stream(1), padded_x, padded_w))
    assert np.all(np.asarray(variants[2].points)[10:14] == 0) and np.all(np.asarray(variants[2].weights)[10:14] == 0)
    # a larger capacity pads the store with empty slots
    big = fit(KDE(0.4, dim=2, truth=MIXTURE_2D, capacity=40), stream(1), x, w)
    assert big.points.shape == (40, 2) and np.all(np.asarray(big.weights)[25:] == 0)
    np.testing.assert_array_equal(big.points[:25], base.points)
    np.testing.assert_array_equal(big.weights[:25], base.weights)
    ref = metrics(fam, stream(2), base)
    for p in variants:
        m = metrics(fam, stream(2), p)
        for k in ref:
            np.testing.assert_allclose(float(m[k]), float(ref[k]), rtol=2e-5, atol=1e-6, err_msg=k)
    # against numpy: weighted mean, weighted (MLE) variance, density variance
    xn, wn = np.asarray(x, np.float64), np.asarray(w, np.float64) / float(np.sum(w))
    xbar = wn @ xn
    svar = float(np.sum(wn[:, None] * (xn - xbar) ** 2))
    np.testing.assert_allclose(float(ref["sample_variance"]), svar, rtol=1e-5)
    np.testing.assert_allclose(float(ref["variance"]), svar + 2 * 0.4**2, rtol=1e-5)
    mu0, _ = fam.truth_moments()
    np.testing.assert_allclose(float(ref["mean_sq_error"]), np.sum((xbar - mu0) ** 2), rtol=1e-4)


def test_categorical_draw_is_exact():
    w = jnp.array([0.0, 0.1, 0.0, 0.3, 0.6, 0.0, 0.0])
    m = 200_000
    idx = np.asarray(categorical(stream().uniform((m,), jnp.float32), w))
    counts = np.bincount(idx, minlength=7)
    assert counts[[0, 2, 5, 6]].sum() == 0, "an empty slot was chosen"
    pos = np.array([1, 3, 4])
    w64 = np.asarray(w, np.float64)[pos]
    p = stats.chisquare(counts[pos], m * w64 / w64.sum()).pvalue
    assert p > KS_ALPHA, p
    # the top of the unit interval falls on the last nonempty slot, never past it
    assert int(categorical(jnp.array([1.0 - 2.0**-24, 1.0]), w)[1]) == 4


@pytest.mark.parametrize("dim", [1, 2])
def test_sample_draws_exactly_from_the_kde(dim):
    # a weighted store with empty slots (holding garbage): the law of a draw is the
    # mixture sum_i w_i N(x_i, h^2 I); in 2-D its projection on u is a 1-D mixture
    h = 0.3
    pts = np.array([[-2.0, 0.5], [np.nan, np.nan], [1.0, -1.0], [3.0, 2.0], [0.0, 0.0]])[:, :dim]
    w = np.array([0.2, 0.0, 0.5, 0.3, 0.0])
    fam = KDE(h, dim=dim)
    params = fit(fam, stream(), jnp.asarray(pts, jnp.float32), jnp.asarray(w, jnp.float32))
    y = np.asarray(sample(fam, stream(7), params, 100_000), np.float64)
    u = np.array([1.0, -0.6])[:dim]
    proj = y @ u
    keep = w > 0
    centres = np.nan_to_num(pts[keep]) @ u
    cdf = lambda t: mixture_cdf(t, centres, h * np.linalg.norm(u), w[keep] / w.sum())  # noqa: E731
    assert stats.kstest(proj, cdf).pvalue > KS_ALPHA


@pytest.mark.parametrize("dim", [1, 2])
def test_truth_sample_is_the_mixture(dim):
    if dim == 1:
        truth = {"means": [-1.0, 2.0], "covs": [0.25, 1.0], "weights": [1.0, 3.0]}
        u = np.array([1.0])
    else:
        truth, u = MIXTURE_2D, np.array([0.8, 0.5])
    fam = KDE(0.5, dim=dim, truth=truth)
    y = np.asarray(real(fam, stream(3), 100_000), np.float64)
    means = np.asarray(fam.truth_means, np.float64)
    chols = np.asarray(fam.truth_chols, np.float64)
    sds = np.sqrt(np.einsum("i,kij,klj,l->k", u, chols, chols, u))
    cdf = lambda t: mixture_cdf(t, means @ u, sds, np.asarray(fam.truth_weights, np.float64))  # noqa: E731
    assert stats.kstest(y @ u, cdf).pvalue > KS_ALPHA
    # and the truth's log density against scipy
    pts = y[:50]
    ref = np.log(
        sum(
            p * stats.multivariate_normal(mu, c @ c.T).pdf(pts)
            for p, mu, c in zip(np.asarray(fam.truth_weights, np.float64), means, chols)
        )
    )
    got = -np.asarray(fam.score_real(jnp.asarray(pts, jnp.float32)))
    np.testing.assert_allclose(got, ref.reshape(-1), rtol=1e-4, atol=1e-4)


def test_log_density_in_blocks_matches_numpy():
    # 2000 stored points x 40 test points exceeds one block: the padded lax.map path
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(2000, 2)) * [1.0, 2.0]
    w = rng.random(2000) * (rng.random(2000) > 0.2)
    h = 0.25
    fam = KDE(h, dim=2)
    params = fit(fam, stream(), jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32))
    y = rng.normal(size=(40, 2)) * 1.5
    got = np.asarray(log_density(fam, params, jnp.asarray(y, jnp.float32)))
    d2 = np.sum((y[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    dens = (np.exp(-0.5 * d2 / h**2) / (2 * np.pi * h**2)) @ (w / w.sum())
    np.testing.assert_allclose(got, np.log(dens), rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- held-out NLL
def test_heldout_nll_is_an_unbiased_cross_entropy():
    # for one fixed fit, E[heldout_nll] over the metric stream = int -log p(y) dN(y; mu0, s0^2)
    mu0, var0, h = 1.0, 2.0, 0.4
    fam = KDE(h, truth={"mean": mu0, "cov": var0}, heldout_size=200)
    x = real(fam, stream(), 30)
    params = fit(fam, stream(1), x, None)
    ids = jnp.arange(400, dtype=jnp.uint32)
    many = jax.jit(jax.vmap(lambda p, i: fam.metrics(stream(i, 4), p)["heldout_nll"], in_axes=(None, 0)))
    nll = np.asarray(many(params, ids), np.float64)
    xs, sd0 = np.asarray(x, np.float64)[:, 0], math.sqrt(var0)

    def integrand(t):
        kde = np.mean(np.exp(-0.5 * ((t - xs) / h) ** 2)) / (h * math.sqrt(2 * math.pi))
        return -math.log(kde) * math.exp(-0.5 * ((t - mu0) / sd0) ** 2) / (sd0 * math.sqrt(2 * math.pi))

    cross_entropy = integrate.quad(integrand, mu0 - 8 * sd0, mu0 + 8 * sd0, limit=200)[0]
    assert_mc_close(nll.mean(), nll.std(ddof=1) / math.sqrt(nll.size), cross_entropy, label="heldout_nll | fit")
    # the truth's own -log density, averaged over as many real draws, estimates the entropy
    truth_nll = jax.jit(jax.vmap(lambda i: jnp.mean(fam.score_real(fam.sample_real(stream(i, 4).child(0), 200)))))
    ent = np.asarray(truth_nll(ids), np.float64)
    entropy = 0.5 * math.log(2 * math.pi * math.e * var0)
    assert_mc_close(ent.mean(), ent.std(ddof=1) / math.sqrt(ent.size), entropy, label="heldout_nll at truth")


def test_generation_zero_matches_gaussian_family_and_expected_nll():
    n, mu0, var0, h, chains = 30, 1.0, 2.0, 0.4, 4000
    kde = KDE(h, truth={"mean": mu0, "cov": var0}, heldout_size=100)
    res = run(kde, cj.Replace(), n=n, generations=0, chains=chains)
    assert set(res.metrics) == {"heldout_nll", "variance", "sample_variance", "mean_sq_error"}
    assert res.metrics["variance"].shape == (chains, 1)
    # the original sample is the Gaussian family's, draw for draw (common random numbers)
    gauss = run(cj.Gaussian(mean=mu0, cov=var0), cj.Replace(), n=n, generations=0, chains=chains)
    np.testing.assert_allclose(res.metrics["sample_variance"], gauss.metrics["variance"], rtol=2e-5)
    np.testing.assert_allclose(res.metrics["mean_sq_error"], gauss.metrics["mean_sq_error"], rtol=1e-4, atol=1e-8)
    # E[heldout_nll_0] = E_X E_Y[-log p_X(Y)]: by Gauss-Hermite over Y for 10,000 numpy stores X
    rng = np.random.default_rng(SEED)
    stores = mu0 + math.sqrt(var0) * rng.standard_normal((10_000, n))
    nodes, gh_w = np.polynomial.hermite.hermgauss(40)  # 80 nodes move the mean by < 0.1 se
    z = (mu0 + math.sqrt(2 * var0) * nodes[None, :, None] - stores[:, None, :]) / h
    log_dens = special.logsumexp(-0.5 * z * z, axis=2) - math.log(n * h * math.sqrt(2 * math.pi))
    ce = -(log_dens @ gh_w) / math.sqrt(math.pi)
    sim = res.metrics["heldout_nll"][:, 0].astype(np.float64)
    se = math.sqrt(sim.var(ddof=1) / sim.size + ce.var(ddof=1) / ce.size)
    assert_mc_close(sim.mean(), se, ce.mean(), label="E heldout_nll at generation 0")
    assert sim.mean() > 0.5 * math.log(2 * math.pi * math.e * var0)  # cross-entropy >= entropy


# --------------------------------------------------------------------------- simulator vs theory
def test_replace_inflates_as_theory_with_a_bandwidth_sweep():
    # n = 100, g <= 20: s^2 is light-tailed enough here for a standard-error test (the chain's
    # stationary law is heavy-tailed, relative variance of order n, so late generations are not used)
    n, G, chains, var0 = 100, 20, 2000, 1.5
    bws = [0.25, 0.5]
    res = run(
        KDE(0.5, truth={"mean": -1.0, "cov": var0}),
        cj.Replace(),
        n=n,
        generations=G,
        chains=chains,
        sweep={"bandwidth": bws},
        metrics=["sample_variance", "variance", "mean_sq_error"],
    )
    gens = np.array([0, 1, 5, 10, 20])
    for i, h in enumerate(bws):
        r = res.sel(i)
        expected = {
            "sample_variance": kde_theory.sample_variance_replace(gens, n, h, var0),
            "variance": kde_theory.variance_replace(gens, n, h, var0),
            "mean_sq_error": kde_theory.mixed_moments(gens, n, 0, n, 0.0, h, var0)[1],
        }
        for metric, exp in expected.items():
            mean, se = summary_at(r, metric, gens)
            assert_mc_close(mean, se, exp, label=f"Replace {metric} h={h}", rate=1e-4 / (2 * len(expected)))
    # the claim: at h = 0.5 the density's variance grows by more than var0 by g = 20 (theory: 1.74 -> 5.97)
    mean, se = summary_at(res.sel(1), "variance", [0, G])
    assert mean[1] - mean[0] > var0 + z_for(1) * math.hypot(*se)


@pytest.fixture(scope="module")
def mixture_runs():
    """Accumulate and FreshMix({0, 0.3}) on a 2-D Gaussian-mixture truth, same seed."""
    n, G, chains, h = 20, 10, 2000, 0.5
    mets = ["sample_variance", "variance", "mean_sq_error"]
    kw = dict(n=n, generations=G, chains=chains, metrics=mets)
    acc = run(KDE(h, dim=2, truth=MIXTURE_2D), cj.Accumulate(), **kw)  # capacity sized by the regime
    fresh = run(KDE(h, dim=2, truth=MIXTURE_2D), cj.FreshMix(0.3), sweep={"real_fraction": [0.0, 0.3]}, **kw)
    return dict(n=n, G=G, h=h, acc=acc, replace=fresh.sel(0), fresh=fresh.sel(1))


def test_accumulate_2d_matches_theory(mixture_runs):
    n, h, acc = mixture_runs["n"], mixture_runs["h"], mixture_runs["acc"]
    _, var0 = KDE(h, dim=2, truth=MIXTURE_2D).truth_moments()
    gens = np.array([0, 1, 3, 6, 10])
    for metric, fn in (
        ("sample_variance", kde_theory.sample_variance_accumulate),
        ("variance", kde_theory.variance_accumulate),
    ):
        mean, se = summary_at(acc, metric, gens)
        assert_mc_close(mean, se, fn(gens, n, h, var0, 2), label=f"Accumulate {metric}", rate=0.5e-4)


def test_replace_2d_and_freshmix_match_theory(mixture_runs):
    n, h = mixture_runs["n"], mixture_runs["h"]
    _, var0 = KDE(h, dim=2, truth=MIXTURE_2D).truth_moments()
    gens = np.array([0, 1, 3, 6, 10])
    checks = [
        ("replace", kde_theory.sample_variance_replace(gens, n, h, var0, 2), None),
        ("replace", *kde_theory.freshmix_moments(gens, n, 0.0, h, var0, 2)),
        ("fresh", *kde_theory.freshmix_moments(gens, n, 0.3, h, var0, 2)),
    ]
    np.testing.assert_allclose(checks[0][1], checks[1][1], rtol=1e-12)  # FreshMix(0) is Replace
    for name, svar, mse in checks[1:]:
        res = mixture_runs[name]
        for metric, exp in (("sample_variance", svar), ("mean_sq_error", mse)):
            mean, se = summary_at(res, metric, gens)
            assert_mc_close(mean, se, exp, label=f"{name} {metric}", rate=0.25e-4)


def test_accumulate_inflates_slower_than_replace(mixture_runs):
    n, G, h = mixture_runs["n"], mixture_runs["G"], mixture_runs["h"]
    _, var0 = KDE(h, dim=2, truth=MIXTURE_2D).truth_moments()
    # theory: Replace forgets the truth and tends to (n - 1) d h^2; here n d h^2 = 10 > var0 = 3.66,
    # so it inflates, about d h^2 per generation while g << n. Accumulate stays anchored near var0
    # and drifts up like d h^2 log g: unbounded, but below Replace for every g up to 10^4
    assert n * 2 * h * h > var0
    g = np.arange(1, 10_001)
    acc_t = kde_theory.sample_variance_accumulate(g, n, h, var0, 2)
    rep_t = kde_theory.sample_variance_replace(g, n, h, var0, 2)
    assert np.all(acc_t < rep_t) and np.all(np.diff(acc_t) > 0)
    assert np.isclose(acc_t[-1] - acc_t[999], 2 * h * h * math.log(10), rtol=0.02)  # d h^2 log g growth
    assert rep_t[-1] == pytest.approx(kde_theory.replace_limit(n, h, 2)[0], rel=1e-9)
    # where n d h^2 < var0 Replace shrinks to its floor and Accumulate stays above it
    small = kde_theory.sample_variance_replace(g, n, 0.1, var0, 2)
    assert np.all(np.diff(small) <= 0) and small[-1] == pytest.approx(kde_theory.replace_limit(n, 0.1, 2)[0])
    assert np.all(kde_theory.sample_variance_accumulate(g, n, 0.1, var0, 2) > small)
    # simulator, paired by common random numbers (the same original samples)
    a = mixture_runs["acc"].metrics["sample_variance"].astype(np.float64)
    r = mixture_runs["replace"].metrics["sample_variance"].astype(np.float64)
    np.testing.assert_allclose(a[:, 0], r[:, 0], rtol=1e-5)
    diff = r[:, G] - a[:, G]
    assert diff.mean() > z_for(1) * diff.std(ddof=1) / math.sqrt(diff.size)


def test_weighted_samples_theory_and_real_only_limit():
    n, G, chains, h, var0 = 20, 8, 3000, 0.5, 1.0
    ratio = 2.0
    fam = KDE(h)
    res = run(
        fam,
        cj.Weighted(0.5, ratio=ratio, combine="samples"),
        n=n,
        generations=G,
        chains=chains,
        sweep={"real_weight": [0.5, 1.0]},
        metrics=["sample_variance", "mean_sq_error"],
    )
    gens = np.array([0, 1, 4, 8])
    half = res.sel(0)
    svar, mse = kde_theory.weighted_moments(gens, n, 0.5, ratio, h, var0)
    for metric, exp in (("sample_variance", svar), ("mean_sq_error", mse)):
        mean, se = summary_at(half, metric, gens)
        assert_mc_close(mean, se, exp, label=f"Weighted(0.5) {metric}", rate=1e-4 / 3)
    # w = 1: every generation is a KDE of n fresh real points, the law of generation 0
    one = res.sel(1)
    mean, se = summary_at(one, "sample_variance", gens)
    assert_mc_close(mean, se, (n - 1) / n * var0, label="Weighted(1) sample_variance", rate=1e-4 / 3)
    for metric in ("sample_variance", "mean_sq_error"):
        x = one.metrics[metric]
        p = stats.ks_2samp(x[:, 0], x[:, G]).pvalue
        assert p > KS_ALPHA / 6, (metric, p)


def test_theory_special_cases():
    g = np.arange(0, 30)
    n, h = 12, 0.7
    # Replace: the closed form solves its recursion; Weighted(0) with ratio 1 is Replace
    v = kde_theory.sample_variance_replace(g, n, h, 2.0, 3)
    r = (n - 1) / n
    np.testing.assert_allclose(v[1:], r * (v[:-1] + 3 * h * h), rtol=1e-12)
    assert v[0] == pytest.approx(r * 2.0)
    np.testing.assert_allclose(kde_theory.weighted_moments(g, n, 0.0, 1.0, h, 2.0, 3)[0], v, rtol=1e-12)
    np.testing.assert_allclose(kde_theory.variance_replace(g, n, h, 2.0, 3), v + 3 * h * h, rtol=1e-12)
    # Weighted(1) and FreshMix(1) refit fresh real data: constant
    for sv in (kde_theory.weighted_moments(g, n, 1.0, 2.0, h)[0], kde_theory.freshmix_moments(g, n, 1.0, h)[0]):
        np.testing.assert_allclose(sv, r, rtol=1e-12)
    # h -> 0 Accumulate is the Gaussian MLE Accumulate chain (THEORY.md section 12)
    np.testing.assert_allclose(
        kde_theory.sample_variance_accumulate(g, n, 1e-12, 1.0),
        cj.theory.variance_mean_accumulate(g, n, "mle"),
        rtol=1e-10,
    )
    assert isinstance(kde_theory.sample_variance_replace(3, n, h), float)
    with pytest.raises(ValueError, match="bandwidth must be a finite number"):
        kde_theory.sample_variance_replace(g, n, 0.0)
    with pytest.raises(ValueError, match="g must be >= 0"):
        kde_theory.variance_accumulate(-1, n, h)


# --------------------------------------------------------------------------- contract
def test_regime_sizes_the_store_and_padding_changes_nothing():
    """capacity=None is filled in from the regime (Accumulate: (G + 1) n); a larger
    explicit capacity only adds empty slots, which are never sampled and add nothing."""
    n, G = 6, 4
    kw = dict(n=n, generations=G, chains=8, metrics=["sample_variance", "heldout_nll"])
    auto = run(KDE(0.5), cj.Accumulate(), **kw)
    assert auto.config["family"]["capacity"] == (G + 1) * n
    assert run(KDE(0.5), cj.Replace(), **kw).config["family"]["capacity"] is None
    assert run(KDE(0.5), cj.Weighted(0.5, ratio=2.0), **kw).config["family"]["capacity"] == n + n // 2
    padded = run(KDE(0.5, capacity=(G + 1) * n + 7), cj.Accumulate(), **kw)
    for name in kw["metrics"]:
        np.testing.assert_allclose(padded.metrics[name], auto.metrics[name], rtol=1e-6, err_msg=name)


def test_describe_is_json_and_bandwidth_is_traced():
    fam = KDE(0.5, dim=2, truth=MIXTURE_2D, capacity=100)
    d = json.loads(json.dumps(fam.describe()))
    assert d["family"] == "KDE" and d["bandwidth"] == 0.5 and d["capacity"] == 100 and d["dim"] == 2
    assert d["truth"]["weights"] == [0.3, 0.7]
    assert fam.min_points() == 1
    assert isinstance(fam.truth(), MixtureTruth) and fam.truth().means.shape == (2, 2)
    # float64, and the n = 1 edge case: one stored point, variance 0, density variance h^2
    kw = dict(n=1, generations=3, chains=64, dtype="float64", metrics=["sample_variance", "variance"])
    a = run(KDE(0.5), cj.Replace(), **kw)
    mid = trace_counts()
    b = run(KDE(0.25), cj.Replace(), **kw)
    assert trace_counts() == mid, "a new bandwidth retraced the kernel"
    assert not a.nonfinite.any() and not b.nonfinite.any()
    assert a.config["family"]["bandwidth"] == 0.5
    assert a.metrics["sample_variance"].dtype == np.float64 and np.all(a.metrics["sample_variance"] == 0)
    np.testing.assert_allclose(b.metrics["variance"], 0.25**2, rtol=1e-12)


def test_retain_original_and_accumulate_subsample_run():
    kw = dict(n=10, generations=3, chains=64, metrics=["sample_variance"])
    # RetainOriginal(1) refits the original sample every generation: the fit, hence its metrics, repeat
    ret = run(KDE(0.5), cj.RetainOriginal(1.0), **kw)
    sv = ret.metrics["sample_variance"]
    np.testing.assert_allclose(sv, np.repeat(sv[:, :1], 4, axis=1), rtol=1e-6)
    sub = run(KDE(0.5), cj.AccumulateSubsample(), **kw)
    assert not sub.nonfinite.any() and np.all(np.isfinite(sub.metrics["sample_variance"]))
    np.testing.assert_allclose(sub.metrics["sample_variance"][:, 0], sv[:, 0], rtol=1e-6)
