"""The Poisson family (a critical Galton-Watson process): its sampler against the exact
pmf at every scale of the mean, the exact path against the sample path, Replace,
FreshMix and Accumulate against `collapse_jax.theory.poisson` (extinction probabilities,
mean squared errors with standard errors from the exact cumulants, the extinction
event), the theory against a brute-force transition matrix, and bad input."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED, assert_mc_close, summary_at
from scipy import stats

import collapse_jax as cj
from collapse_jax._rng import Stream
from collapse_jax.engine.kernel import trace_counts
from collapse_jax.families import Combinable, ExactSampler, capabilities
from collapse_jax.families.poisson import Poisson, PoissonStats, _poisson
from collapse_jax.theory import poisson as tp

RATE, N, G, CHAINS = 0.4, 5, 20, 20_000  # n lambda* = 2: most chains die within G generations
GENS = [0, 1, 2, 5, 10, 20]
FRACTION = 0.3  # FreshMix: r = floor(0.3 * 5 + 1/2) = 2 real points per generation
ALPHA = 1e-4  # family-wise false-alarm rate of each test


def run(fam, regime, **kw):
    args = dict(n=N, generations=G, chains=CHAINS, seed=SEED, progress=False, keep="chains")
    args.update(kw)
    return cj.simulate(fam, regime, **args)


def stream(i=0, s=2, safe=True):
    return Stream(jnp.array([SEED, i], jnp.uint32), jnp.int32(0), s, 0, safe)


def gof_pvalue(x, mu):
    """Chi-square goodness of fit of integer draws x to Poisson(mu), over about 60
    bins between its 1e-5 and 1 - 1e-5 quantiles, plus the two tails."""
    lo, hi = stats.poisson.ppf(1e-5, mu), stats.poisson.ppf(1 - 1e-5, mu)
    edges = np.unique(np.round(np.linspace(lo, hi, 60)))
    p = np.diff(np.concatenate([[0.0], stats.poisson.cdf(edges, mu), [1.0]]))
    obs = np.histogram(x, np.concatenate([[-1.0], edges + 0.5, [np.inf]]))[0]
    keep = p * len(x) >= 5
    obs = np.append(obs[keep], obs[~keep].sum())
    exp = np.append(p[keep], p[~keep].sum()) * len(x)
    if exp[-1] < 5:  # the pooled rare bins: too few expected draws to stand alone
        obs, exp = np.append(obs[:-2], obs[-2:].sum()), np.append(exp[:-2], exp[-2:].sum())
    return stats.chisquare(obs, exp).pvalue


def homogeneity_pvalue(a, b):
    """Chi-square test that two samples of integers have the same law (bins with
    fewer than 10 draws pooled)."""
    a, b = (np.rint(np.asarray(x, np.float64)).astype(np.int64) for x in (a, b))
    values = np.union1d(a, b)
    table = np.array([[np.sum(k == v) for v in values] for k in (a, b)])
    small = table.sum(axis=0) < 10
    if small.any():
        table = np.column_stack([table[:, ~small], table[:, small].sum(axis=1)])
    assert table.shape[1] >= 2
    return stats.chi2_contingency(table).pvalue


def sq_error_se(cumulants, chains):
    """Standard error of the mean of (lambda - lambda*)^2 over chains from the exact
    cumulants (mean lambda*): Var((lambda - lambda*)^2) = k4 + 2 k2^2."""
    k2, k4 = cumulants[..., 1], cumulants[..., 3]
    return np.sqrt((k4 + 2 * k2 * k2) / chains)


def binomial_se(p, chains):
    return np.sqrt(p * (1 - p) / chains)


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        (dict(rate=0.0), ValueError, r"rate must be one number > 0 .* got 0.0"),
        (dict(rate=-1), ValueError, r"rate must be one number > 0 .* got -1"),
        (dict(rate=1e-40), ValueError, r"at least 1.1754944e-38.* got 1e-40"),
        (dict(rate=2.0**25), ValueError, r"at most 2\^24 = 16777216 .* got 33554432.0"),
        (dict(rate=float("nan")), ValueError, r"rate must be finite, got nan"),
        (dict(rate="x"), TypeError, r"rate must be one number > 0 .* got 'x'"),
        (dict(rate=[1.0, 2.0]), TypeError, r"rate must be one number > 0 .* got \[1.0, 2.0\]"),
        (dict(rate=True), TypeError, r"rate must be one number > 0 .* got True"),
        (dict(rate=1.0, sampler="fast"), ValueError, r"sampler must be one of \('samples', 'exact'\), got 'fast'"),
    ],
)
def test_bad_family_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        Poisson(**kwargs)


def test_bad_input_raises_before_compiling():
    before = trace_counts()
    fam = Poisson(RATE)
    with pytest.raises(ValueError, match=r"n must be >= 1, got 0"):
        cj.simulate(fam, cj.Replace(), n=0, generations=2, chains=4, progress=False)
    with pytest.raises(ValueError, match=r"sweep value 0.0 for 'rate' is invalid: Poisson.rate must lie in"):
        cj.simulate(fam, cj.Replace(), n=4, generations=2, chains=4, sweep={"rate": [0.5, 0.0]})
    with pytest.raises(ValueError, match=r"Poisson.sample: n must be >= 1, got 0"):
        fam.sample(stream(), fam.truth(), 0)
    with pytest.raises(TypeError, match=r"Poisson.sample: n must be an int"):
        fam.sample(stream(), fam.truth(), 2.5)
    with pytest.raises(ValueError, match=r"rate must be a finite number in \(0.0, inf\], got 0"):
        tp.extinction_replace(3, 5, 0)
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got 0"):
        tp.rate_sq_error_replace(3, 0, 1.0)
    with pytest.raises(ValueError, match=r"real_fraction must be a finite number in \[0.0, 1.0\], got 1.5"):
        tp.extinction_freshmix(3, 5, 1.0, 1.5)
    with pytest.raises(ValueError, match=r"p must be a probability in \(0, 1\), got 1.0"):
        tp.extinction_quantile_replace(1.0, 5, 1.0)
    with pytest.raises(ValueError, match=r"exceeds 10000000 generations"):
        tp.extinction_quantile_replace(0.999999, 10**6, 10.0)
    with pytest.raises(ValueError, match=r"g must be >= 0"):
        tp.rate_cumulants_replace(-1, 5, 1.0)
    assert trace_counts() == before, "an invalid configuration reached the compiler"


# ------------------------------------------------------------------------------ contract
def test_sample_fit_stats_metrics_and_describe():
    fam = Poisson(3.0)
    assert capabilities(fam) == ("SufficientStats", "ExactSampler", "Combinable")
    assert isinstance(fam, ExactSampler) and isinstance(fam, Combinable)
    # jitted: eagerly, every operation of the sampler would compile on its own
    sample = jax.jit(lambda i, lam: fam.sample(stream(i), lam, 50_000))
    sample_stats = jax.jit(lambda i, lam, m: fam.sample_stats(stream(i), lam, m))
    x = sample(0, fam.truth())
    assert x.shape == (50_000,) and x.dtype == jnp.int32 and int(x.min()) >= 0
    lam = fam.fit(stream(1), x, None)
    assert lam.shape == () and lam.dtype == jnp.float32
    assert float(lam) == pytest.approx(float(np.mean(np.asarray(x, np.float64))), rel=1e-6)
    assert abs(float(lam) - 3.0) <= 5 * math.sqrt(3.0 / 50_000)
    # sufficient statistics: fit == fit_stats(data_stats), merge of two halves == the whole
    st = fam.data_stats(x, None)
    assert isinstance(st, PoissonStats) and float(st.weight) == 50_000 and float(st.total) == float(np.sum(x))
    halves = fam.merge_stats(fam.data_stats(x[:20_000], None), fam.data_stats(x[20_000:], None))
    assert float(fam.fit_stats(halves)) == float(fam.fit_stats(st)) == float(lam)
    # the exact path's statistics have the data's layout (tree, shapes, dtypes)
    exact = sample_stats(2, fam.truth(), 7)
    layout = lambda t: (jax.tree.structure(t), [(a.shape, a.dtype) for a in jax.tree.leaves(t)])  # noqa: E731
    assert layout(exact) == layout(st) and float(exact.weight) == 7.0
    assert float(sample_stats(3, fam.truth(), 0).total) == 0.0  # m = 0: nothing drawn
    assert float(sample_stats(3, jnp.float32(0.0), 9).total) == 0.0  # rate 0 draws zeros
    assert np.all(np.asarray(sample(4, jnp.float32(0.0))) == 0)
    # weights: scaling, zero-weight padding holding garbage, permutation
    x, w = x[:40], jnp.linspace(0.5, 2.0, 40)
    base = fam.fit(stream(), x, w)
    padded = fam.fit(stream(), jnp.concatenate([x, jnp.array([-7, 10**6], jnp.int32)]), jnp.append(w, jnp.zeros(2)))
    for other in (fam.fit(stream(), x, 3.7 * w), padded, fam.fit(stream(), x[::-1], w[::-1])):
        np.testing.assert_allclose(other, base, rtol=1e-6)
    np.testing.assert_allclose(base, np.sum(np.asarray(w) * np.asarray(x)) / np.sum(np.asarray(w)), rtol=1e-6)
    assert float(fam.combine(jnp.float32(2.0), jnp.float32(4.0), 0.25)) == pytest.approx(3.5)
    # metrics and events
    m = {k: float(v) for k, v in fam.metrics(stream(), jnp.float32(2.5)).items()}
    assert m == {"rate": 2.5, "rate_sq_error": 0.25, "extinct": 0.0}
    assert float(fam.metrics(stream(), jnp.float32(0.0))["extinct"]) == 1.0
    assert bool(fam.events(jnp.float32(0.0))["extinction"]) and not bool(fam.events(fam.truth())["extinction"])
    assert set(fam.metric_names()) == {"rate", "rate_sq_error", "extinct"}
    # describe() round trip through the constructor, in JSON types
    for f in (Poisson(0.4), Poisson(12.5, sampler="exact")):
        d = json.loads(json.dumps(f.describe()))
        assert d.pop("family") == "Poisson"
        again = Poisson(**d)
        assert again.describe() == f.describe() and float(again.rate) == float(f.rate)


# ------------------------------------------------------------------------------ the sampler
MEANS = [0.3, 4.0, 9.99, 10.0, 37.5, 1e3, 1e6, 1.6e7]  # inversion below 10, PTRS above; float32 integers to 2^24


def test_sample_stats_law_at_every_scale():
    # jax.random.poisson fails this at 1e6 (its float32 log-pmf): the variance is ~3% too high
    fam = Poisson(1.0, sampler="exact")
    count = 40_000
    ids = jnp.arange(count, dtype=jnp.uint32)
    draw = jax.jit(jax.vmap(lambda i, m, lam: fam.sample_stats(stream(i), lam, m).total, in_axes=(0, None, None)))
    pvalues, means, ses = [], [], []
    for mu in MEANS:
        x = np.asarray(draw(ids, jnp.int32(4), jnp.float32(mu / 4)), np.float64)  # m = 4 (traced), rate mu/4
        mu32 = 4 * float(np.float32(mu / 4))
        assert np.all(x == np.rint(x)) and np.all(x >= 0)
        pvalues.append(gof_pvalue(x, mu32))
        means += [x.mean(), x.var()]
        ses += [math.sqrt(mu32 / count), math.sqrt((2 * mu32 * mu32 + mu32) / count)]
    assert min(pvalues) > ALPHA / (2 * len(MEANS)), f"chi-square p-values {pvalues}"
    expected = np.repeat([4 * float(np.float32(mu / 4)) for mu in MEANS], 2)
    assert_mc_close(means, ses, expected, label="Poisson moments", rate=ALPHA / 2)
    np.testing.assert_array_equal(np.asarray(draw(ids[:100], jnp.int32(0), jnp.float32(3.0))), 0)


def test_points_law_and_the_retry_loop():
    # the sample path (int32 points, the retry loop always on), and the loop alone: one
    # proposal per round rejects 11-25% of the time, so most draws above 10 loop
    cases = []
    fam = Poisson(1.0)
    pts = jax.jit(lambda lam: fam.sample(stream(5), lam, 40_000))
    for lam in (3.0, 25.0):
        cases.append((np.asarray(pts(jnp.float32(lam))), lam))
    ids = jnp.arange(40_000, dtype=jnp.uint32)
    one = jax.jit(jax.vmap(lambda i, mu: _poisson(stream(i, 3), mu, (), 1, retry=True), in_axes=(0, None)))
    for mu in (12.0, 1e4):
        cases.append((np.asarray(one(ids, jnp.float32(mu))), mu))
    pvalues = [gof_pvalue(x, mu) for x, mu in cases]
    assert min(pvalues) > ALPHA / len(cases), f"chi-square p-values {pvalues}"
    # fast mode (no loop) is the safe draw wherever it is not NaN, and NaN only where all were rejected
    fast = jax.jit(jax.vmap(lambda i, mu: _poisson(stream(i, 3, False), mu, (), 1, retry=False), in_axes=(0, None)))
    safe, quick = cases[2][0], np.asarray(fast(ids, jnp.float32(12.0)))
    nan = np.isnan(quick)
    np.testing.assert_array_equal(quick[~nan], safe[~nan])
    assert 0.1 < nan.mean() < 0.4  # PTRS rejects about 23% of proposals at mean 12


# ------------------------------------------------------------------------------ Replace and FreshMix
# one compiled program each (a few seconds), so that no test waits for all three
@pytest.fixture(scope="module")
def samples_run():
    """Replace on the sample path."""
    return run(Poisson(RATE), cj.Replace())


@pytest.fixture(scope="module")
def exact_runs():
    """FreshMix(real_fraction in {0, 0.3}) on the exact path: FreshMix(0) merges zero
    real counts with n synthetic ones, i.e. it is Replace in law, and the traced split
    r exercises sample_stats with a traced m."""
    return run(Poisson(RATE, sampler="exact"), cj.FreshMix(), sweep={"real_fraction": [0.0, FRACTION]})


@pytest.fixture(scope="module")
def accumulate_run():
    """Accumulate on the sample path (pooled statistics)."""
    return run(Poisson(RATE), cj.Accumulate())


@pytest.fixture
def runs(request):
    """The runs a test names, built on first use."""
    fixtures = {"samples": ("samples_run", None), "exact": ("exact_runs", 0), "freshmix": ("exact_runs", 1)}
    fixtures["accumulate"] = ("accumulate_run", None)

    def get(name):
        fixture, index = fixtures[name]
        res = request.getfixturevalue(fixture)
        return res if index is None else res.sel(index)

    return get


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_replace_against_theory(runs, sampler):
    res = runs(sampler)
    g = np.array(GENS)
    p = tp.extinction_replace(g, N, RATE)
    mean, _ = summary_at(res, "extinct", GENS)
    checks = [(mean, binomial_se(p, CHAINS), p, "P(extinct)")]
    mean, _ = summary_at(res, "rate_sq_error", GENS)
    cum = tp.rate_cumulants_replace(g, N, RATE)
    checks.append((mean, sq_error_se(cum, CHAINS), tp.rate_sq_error_replace(g, N, RATE), "MSE"))
    mean, _ = summary_at(res, "rate", GENS)
    checks.append((mean, np.sqrt(cum[:, 1] / CHAINS), tp.rate_mean(g, RATE), "E rate"))
    # the extinction event: its first generation has the law P(T <= g) = P(lambda_g = 0)
    t = res.events["extinction"]
    cdf = np.array([np.mean((t >= 0) & (t <= k)) for k in GENS])
    checks.append((cdf, binomial_se(p, CHAINS), p, "P(T <= g)"))
    capped = np.where(t < 0, G + 1, t).astype(np.float64)
    checks.append(
        (
            capped.mean(),
            capped.std() / math.sqrt(CHAINS),
            tp.extinction_time_truncated_mean_replace(G, N, RATE),
            "E min(T, G+1)",
        )
    )
    for mean, se, expected, label in checks:
        assert_mc_close(mean, se, expected, label=f"{label} ({sampler})", rate=ALPHA / len(checks))
    # 0 is absorbing: a chain is extinct at g exactly when its first extinction is <= g
    extinct = res.metrics["extinct"]
    np.testing.assert_array_equal(
        extinct, ((t[:, None] >= 0) & (np.arange(G + 1)[None, :] >= t[:, None])).astype(extinct.dtype)
    )


def test_exact_path_matches_sample_path_in_distribution(runs):
    a, b = runs("samples").metrics["rate"], runs("exact").metrics["rate"]
    gens = (0, 1, 5, G)
    for g in gens:
        p = homogeneity_pvalue(N * a[:, g], N * b[:, g])  # n lambda_g is an integer count
        assert p > ALPHA / len(gens), f"g={g}: chi-square p = {p:.2e}"


def test_freshmix_and_accumulate_against_theory(runs):
    g = np.array(GENS)
    cases = [
        ("freshmix", tp.extinction_freshmix(g, N, RATE, FRACTION), tp.rate_cumulants_freshmix(g, N, RATE, FRACTION)),
        ("accumulate", tp.extinction_accumulate(g, N, RATE), tp.rate_cumulants_accumulate(g, N, RATE)),
    ]
    mse = {
        "freshmix": tp.rate_sq_error_freshmix(g, N, RATE, FRACTION),
        "accumulate": tp.rate_sq_error_accumulate(g, N, RATE),
    }
    for name, p, cum in cases:
        res = runs(name)
        np.testing.assert_allclose(cum[:, 1], mse[name], rtol=1e-12)
        for metric, se, expected in (
            ("extinct", binomial_se(p, CHAINS), p),
            ("rate_sq_error", sq_error_se(cum, CHAINS), mse[name]),
            ("rate", np.sqrt(cum[:, 1] / CHAINS), tp.rate_mean(g, RATE)),
        ):
            mean, _ = summary_at(res, metric, GENS)
            assert_mc_close(mean, se, expected, label=f"{metric} ({name})", rate=ALPHA / 6)
    # under Accumulate the pool keeps the original sample: extinct at g exactly when extinct at 0
    ext = runs("accumulate").metrics["extinct"]
    np.testing.assert_array_equal(ext, np.repeat(ext[:, :1], G + 1, axis=1))


# ------------------------------------------------------------------------------ theory alone
def _brute_force(gens, kernel, initial, scale, states=400):
    """P(X_g = 0) and the cumulants of X_g / scale(g) from the exact law of a Markov
    chain on 0..states-1 (kernel(g) its transition matrix into generation g)."""
    pi = initial
    out = {}
    for t in range(max(gens) + 1):
        if t:
            pi = pi @ kernel(t)
        if t in gens:
            x = np.arange(states) / scale(t)
            m = pi @ x
            c = x - m
            mu2, mu3, mu4 = pi @ c**2, pi @ c**3, pi @ c**4
            out[t] = (pi[0], [m, mu2, mu3, mu4 - 3 * mu2 * mu2], 1 - pi.sum())
    return out


def test_theory_against_the_exact_chain():
    # the branching-process formulas against brute-force propagation of the law of the counts
    n, lam, gens, s = 4, 0.6, [0, 1, 3, 8], np.arange(400)
    pois = lambda mean: stats.poisson.pmf(s[None, :], mean[:, None])  # noqa: E731
    start = stats.poisson.pmf(s, n * lam)
    r = math.floor(0.5 * n + 0.5)
    chains = {
        "replace": (lambda t: pois(s * 1.0), lambda t: n, tp.extinction_replace, tp.rate_cumulants_replace, ()),
        "freshmix": (
            lambda t: pois(r * lam + (n - r) / n * s),
            lambda t: n,
            tp.extinction_freshmix,
            tp.rate_cumulants_freshmix,
            (0.5,),
        ),
        # Accumulate: the pool's total T_g = T_{g-1} + Poisson(T_{g-1} / g)
        "accumulate": (
            lambda t: np.array([np.roll(row, i) * (s >= i) for i, row in enumerate(pois(s / t))]),
            lambda t: n * (t + 1),
            tp.extinction_accumulate,
            tp.rate_cumulants_accumulate,
            (),
        ),
    }
    for name, (kernel, scale, extinction, cumulants, extra) in chains.items():
        exact = _brute_force(gens, kernel, start, scale)
        for t in gens:
            p0, cum, lost = exact[t]
            assert lost < 1e-12, f"{name}: the truncated chain lost {lost:.1e} of its mass"
            assert extinction(t, n, lam, *extra) == pytest.approx(p0, rel=1e-10, abs=1e-14), f"{name} g={t}"
            np.testing.assert_allclose(
                cumulants(t, n, lam, *extra), cum, rtol=1e-8, atol=1e-14, err_msg=f"{name} g={t}"
            )


def test_theory_limits_and_consistency():
    g = np.arange(30)
    np.testing.assert_allclose(tp.extinction_freshmix(g, 7, 0.3, 0.0), tp.extinction_replace(g, 7, 0.3), rtol=1e-13)
    np.testing.assert_allclose(
        tp.rate_sq_error_freshmix(g, 7, 0.3, 0.0), tp.rate_sq_error_replace(g, 7, 0.3), rtol=1e-13
    )
    np.testing.assert_allclose(tp.extinction_freshmix(g, 7, 0.3, 1.0), math.exp(-2.1), rtol=1e-13)
    np.testing.assert_allclose(tp.rate_sq_error_freshmix(g, 7, 0.3, 1.0), 0.3 / 7, rtol=1e-13)
    assert tp.rate_sq_error_accumulate(10**5, 7, 0.3) == pytest.approx(0.3 / 7 * math.pi**2 / 6, rel=1e-4)
    # survival ~ 1 - exp(-2 n lambda* / g): 1/(1 - q_g) = g/2 + log(g)/6 + O(1)
    nl = 3.0
    for big in (10**3, 10**4, 10**5):
        v = -math.log(tp.extinction_replace(big, 1, nl)) / nl  # 1 - q_g
        assert abs(1 / v - big / 2 - math.log(big) / 6 - 0.899) < 0.05
    # the quantile inverts the cdf; the truncated mean is the sum of the survival function
    for p in (0.2, 0.5, 0.9):
        q = tp.extinction_quantile_replace(p, 5, 0.4)
        assert tp.extinction_replace(q, 5, 0.4) >= p and (q == 0 or tp.extinction_replace(q - 1, 5, 0.4) < p)
    assert tp.extinction_quantile_replace(0.1, 5, 0.4) == 0  # P(T = 0) = exp(-2) > 0.1
    assert tp.extinction_quantile_replace(0.5, 1000, 1.0) == pytest.approx(2000 / math.log(2), rel=0.01)
    surv = 1 - tp.extinction_replace(np.arange(G + 1), N, RATE)
    assert tp.extinction_time_truncated_mean_replace(G, N, RATE) == pytest.approx(surv.sum(), rel=1e-13)
    assert tp.rate_cumulants_replace(np.arange(3), 5, 0.4).shape == (3, 4)
    assert isinstance(tp.extinction_replace(2, 5, 0.4), float)
