"""The Categorical family (Wright-Fisher drift): its exact samplers against brute-force
pmfs, every regime against the theory of `collapse_jax.theory.categorical`, the exact
path against the sample path, the AccumulateSubsample hook against the point buffer,
first-passage events against the exact absorbing chain, and bad input."""

from __future__ import annotations

import itertools
import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED, assert_mc_close, summary_at, z_for
from scipy import stats

import collapse_jax as cj
from collapse_jax._rng import Stream
from collapse_jax.engine import compat
from collapse_jax.engine.kernel import trace_counts
from collapse_jax.families import Combinable, ExactSampler, Scorable, Temperable
from collapse_jax.families.categorical import Categorical
from collapse_jax.theory import categorical as cat_theory

P0 = np.array([0.5, 0.3, 0.15, 0.05])
RARE = 0.1  # category 3 is rare
N, G, CHAINS = 8, 12, 20_000
GENS = [0, 1, 4, 12]
ALPHA = 1e-4  # family-wise false-alarm rate of each distribution test


def run(fam, regime, **kw):
    args = dict(n=N, generations=G, chains=CHAINS, seed=SEED, progress=False, keep="chains")
    args.update(kw)
    return cj.simulate(fam, regime, **args)


def stream(i=0, s=2):
    return Stream(jnp.array([SEED, i], jnp.uint32), jnp.int32(0), s)


def draws(fn, count, *args):
    """``fn(stream, *args)`` for ``count`` independent streams, vmapped. ``args`` are
    arguments, not constants: XLA would otherwise constant-fold (slowly) everything
    that does not depend on the stream."""
    ids = jnp.arange(count, dtype=jnp.uint32)
    batched = jax.vmap(lambda i, *a: fn(stream(i), *a), in_axes=(0,) + (None,) * len(args))
    return np.asarray(jax.jit(batched)(ids, *args))


def gof_pvalue(observed_rows, support, pmf):
    """Chi-square goodness of fit of sampled rows over an enumerated support, bins
    with expected count < 5 pooled into one."""
    index = {tuple(int(v) for v in s): i for i, s in enumerate(support)}
    obs = np.zeros(len(support))
    for row, c in zip(*np.unique(np.rint(observed_rows).astype(np.int64), axis=0, return_counts=True)):
        obs[index[tuple(int(v) for v in row)]] += c  # a KeyError means an impossible outcome
    exp = pmf * obs.sum()
    small = exp < 5
    if small.any():
        obs = np.append(obs[~small], obs[small].sum())
        exp = np.append(exp[~small], exp[small].sum())
    return stats.chisquare(obs, exp).pvalue


def homogeneity_pvalue(a, b, scale):
    """Chi-square test that two samples of a discrete metric (values on the grid
    1/scale) have the same law; bins with fewer than 10 draws pooled."""
    ka, kb = (np.rint(np.asarray(x, np.float64) * scale).astype(np.int64) for x in (a, b))
    values = np.union1d(ka, kb)
    table = np.array([[np.sum(k == v) for v in values] for k in (ka, kb)])
    small = table.sum(axis=0) < 10
    if small.any():
        table = np.column_stack([table[:, ~small], table[:, small].sum(axis=1)])
    assert table.shape[1] >= 2
    return stats.chi2_contingency(table).pvalue


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        (dict(probs=[0.5, -0.1, 0.6]), ValueError, r"probs must be >= 0, got probs\[1\] = -0.1"),
        (dict(probs=[0.5, 0.4]), ValueError, r"probs must sum to 1 \(tolerance 1e-06\), got sum 0.9"),
        (dict(probs=[[0.5, 0.5]]), ValueError, r"probs must be a 1-D vector with K >= 1 entries, got shape \(1, 2\)"),
        (dict(probs=[]), ValueError, r"1-D vector with K >= 1 entries, got shape \(0,\)"),
        (dict(probs=[0.5, float("nan")]), ValueError, r"probs must be finite"),
        (dict(probs="abc"), TypeError, r"probs must be a 1-D array of probabilities"),
        (dict(probs=[[0.5], [0.2, 0.3]]), ValueError, r"probs must be a 1-D vector of probabilities"),
        (dict(probs=[0.5 + 0j, 0.5]), TypeError, r"probs must be a 1-D array of probabilities \(real numbers\)"),
        (dict(probs=[True, False]), TypeError, r"probs must be a 1-D array of probabilities"),
        (dict(probs=[1.0], rare_below=1.5), ValueError, r"rare_below must lie in \[0, 1\], got 1.5"),
        (dict(probs=[1.0], rare_below=-0.1), ValueError, r"rare_below must lie in \[0, 1\], got -0.1"),
        (dict(probs=[1.0], rare_below="x"), TypeError, r"rare_below must be a number in \[0, 1\], got 'x'"),
        (dict(probs=[1.0], sampler="fast"), ValueError, r"sampler must be one of \('samples', 'exact'\), got 'fast'"),
    ],
)
def test_bad_family_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        Categorical(**kwargs)


def test_bad_input_raises_before_compiling():
    before = trace_counts()
    fam = Categorical([0.5, 0.5 + 5e-7])  # within the tolerance: accepted and renormalised
    assert float(jnp.sum(fam.probs)) == pytest.approx(1.0, abs=1e-7)
    with pytest.raises(ValueError, match=r"n must be >= 1, got 0"):
        cj.simulate(fam, cj.Replace(), n=0, generations=2, chains=4, progress=False)
    with pytest.raises(ValueError, match=r"Categorical.sample: n must be >= 1, got 0"):
        fam.sample(stream(), fam.truth(), 0)
    with pytest.raises(TypeError, match=r"Categorical.subsample_stats: n must be an int"):
        fam.subsample_stats(stream(), jnp.array([3.0, 4.0]), 2.5)
    with pytest.raises(ValueError, match=r"sweep value 1.5 for 'rare_below' is invalid"):
        cj.simulate(fam, cj.Replace(), n=4, generations=2, chains=4, sweep={"rare_below": [0.2, 1.5]})
    with pytest.raises(ValueError, match=r"probs must sum to 1"):
        cat_theory.collision_replace(3, 10, [0.5, 0.6])
    with pytest.raises(ValueError, match=r"event must be one of"):
        cat_theory.first_passage_mean(5, [0.5, 0.5], event="loss")
    assert trace_counts() == before, "an invalid configuration reached the compiler"


# ------------------------------------------------------------------------------ contract
def test_sample_fit_weights_and_dead_categories():
    fam = Categorical([0.1, 0.0, 0.6, 0.3, 0.0])
    x = fam.sample(stream(), fam.truth(), 100_000)
    assert x.shape == (100_000,) and x.dtype == jnp.int32
    counts = np.bincount(np.asarray(x), minlength=5)
    assert counts[1] == 0 and counts[4] == 0, "a category of probability 0 was drawn"
    p = np.asarray(fam.fit(stream(1), x, None))
    np.testing.assert_array_equal(fam.data_stats(x, None), counts)  # integer counts, exactly
    np.testing.assert_allclose(p, counts / 100_000, rtol=1e-6)
    p0 = np.asarray(fam.probs, np.float64)
    se = np.sqrt(p0 * (1 - p0) / 100_000)
    assert np.all(np.abs(p - p0) <= z_for(5) * se + 1e-12)
    # a fitted vector with zeros anywhere (ends included) never draws them either
    dead_ends = jnp.array([0.0, 0.5, 0.0, 0.5, 0.0])
    assert set(np.unique(np.asarray(fam.sample(stream(2), dead_ends, 100_000)))) == {1, 3}
    # weights: scaling, zero-weight padding holding garbage indices, permutation
    x, w = x[:40], jnp.linspace(0.5, 2.0, 40)
    base = fam.fit(stream(), x, w)
    padded = fam.fit(stream(), jnp.concatenate([x, jnp.array([-3, 99, 2], jnp.int32)]), jnp.append(w, jnp.zeros(3)))
    for other in (fam.fit(stream(), x, 3.7 * w), padded, fam.fit(stream(), x[::-1], w[::-1])):
        np.testing.assert_allclose(other, base, rtol=1e-6, atol=1e-7)
    expected = np.bincount(np.asarray(x), weights=np.asarray(w), minlength=5)
    np.testing.assert_allclose(base, expected / expected.sum(), rtol=1e-6)
    np.testing.assert_allclose(fam.combine(jnp.array([1.0, 0, 0, 0, 0]), base, 0.25), 0.25 * np.eye(5)[0] + 0.75 * base)


def test_metrics_events_and_describe():
    fam = Categorical([0.4, 0.3, 0.2, 0.1, 0.0], rare_below=0.25)
    p = jnp.array([0.5, 0.2, 0.3, 0.0, 0.0])
    m = {k: float(v) for k, v in fam.metrics(stream(), p).items()}
    assert m["collision_probability"] == pytest.approx(0.25 + 0.04 + 0.09)
    assert m["entropy"] == pytest.approx(-(0.5 * math.log(0.5) + 0.2 * math.log(0.2) + 0.3 * math.log(0.3)))
    assert m["extinct"] == 1.0  # category 4 was never alive
    assert m["rare_mass"] == pytest.approx(0.3)  # categories 2, 3 (and the dead 4) have p0 < 0.25
    ev = fam.events(p)
    assert bool(ev["extinction"]) and not bool(ev["fixation"])
    ev = fam.events(jnp.array([0.0, 0.0, 1.0, 0.0, 0.0]))
    assert bool(ev["extinction"]) and bool(ev["fixation"])
    ev = fam.events(fam.truth())
    assert not bool(ev["extinction"]) and not bool(ev["fixation"])
    at_truth = fam.metrics(stream(), fam.truth())
    assert float(at_truth["extinct"]) == 0.0 and float(at_truth["rare_mass"]) == pytest.approx(0.3)
    assert m["missing_mass"] == pytest.approx(0.1) and m["support_size"] == 3.0  # category 3 lost: p0 = 0.1
    assert float(at_truth["missing_mass"]) == 0.0 and float(at_truth["support_size"]) == 4.0
    assert m["l1_to_truth"] == pytest.approx(0.1 + 0.1 + 0.1 + 0.1) and m["fixed_category"] == -1.0
    eps = 1e-6
    ps = (np.array([0.5, 0.2, 0.3, 0.0, 0.0]) + eps) / (1 + 5 * eps)
    p0 = np.array([0.4, 0.3, 0.2, 0.1])
    assert m["cross_entropy"] == pytest.approx(-np.sum(p0 * np.log(ps[:4])), rel=1e-5)
    assert m["kl_to_truth"] == pytest.approx(np.sum(p0 * np.log(p0 / ps[:4])), rel=1e-5)
    fixed = fam.metrics(stream(), jnp.array([0.0, 0.0, 1.0, 0.0, 0.0]))
    assert float(fixed["fixed_category"]) == 2.0
    base = {"collision_probability", "entropy", "extinct", "rare_mass"}
    optional = {"missing_mass", "support_size", "l1_to_truth", "fixed_category", "cross_entropy", "kl_to_truth"}
    assert set(fam.metric_names()) == base | optional  # good_turing needs fit_points, memoriser_error train_sizes
    assert set(Categorical.optional_metrics) >= optional
    d = json.loads(json.dumps(fam.describe()))
    assert d["family"] == "Categorical" and d["num_categories"] == 5 and d["rare_below"] == 0.25


# ------------------------------------------------------------------------------ exact samplers
def test_multinomial_sample_stats_law_with_traced_m():
    # K = 5 (a tree padded to 8 leaves) with two dead categories; m is traced, as in FreshMix
    probs = jnp.array([0.45, 0.0, 0.35, 0.2, 0.0])
    fam = Categorical(probs)
    count = 40_000
    sampler = jax.jit(jax.vmap(lambda i, m: fam.sample_stats(stream(i), probs, m), in_axes=(0, None)))
    ids = jnp.arange(count, dtype=jnp.uint32)
    x = np.asarray(sampler(ids, jnp.int32(6)))
    assert np.all(x[:, [1, 4]] == 0) and np.all(x.sum(axis=1) == 6)
    support = [c for c in itertools.product(range(7), repeat=3) if sum(c) == 6]
    p = np.array([0.45, 0.35, 0.2])
    pmf = np.array([math.factorial(6) / math.prod(math.factorial(v) for v in c) * np.prod(p**c) for c in support])
    assert gof_pvalue(x[:, [0, 2, 3]], support, pmf) > ALPHA / 2
    # large counts go through the rejection branch (count * q > 10): check mean and variance
    big = np.asarray(sampler(ids, jnp.int32(1000)))[:, 0].astype(np.float64)
    assert_mc_close(
        [big.mean(), big.var()],
        [np.sqrt(1000 * 0.45 * 0.55 / count), 1000 * 0.45 * 0.55 * np.sqrt(2 / count)],
        [450.0, 1000 * 0.45 * 0.55],
        label="binomial moments",
        rate=ALPHA / 2,
    )
    np.testing.assert_array_equal(np.asarray(sampler(ids, jnp.int32(0))), 0)


def _mvhg_pmf(pool, n):
    support = [c for c in itertools.product(*(range(min(k, n) + 1) for k in pool)) if sum(c) == n]
    total = math.comb(sum(pool), n)
    return support, np.array([math.prod(math.comb(k, c) for k, c in zip(pool, s)) / total for s in support])


def test_multivariate_hypergeometric_against_exact_pmf():
    # brute force: the exact pmf prod_k C(N_k, x_k) / C(N, n) over every outcome
    pool, n = [5, 0, 3, 4, 2], 6
    fam = Categorical(np.full(5, 0.2))
    x = draws(lambda s, pool: fam.subsample_stats(s, pool, n), 40_000, jnp.asarray(pool, jnp.float32))
    assert np.all(x.sum(axis=1) == n) and np.all(x[:, 1] == 0) and np.all(x <= np.array(pool))
    support, pmf = _mvhg_pmf(pool, n)
    assert gof_pvalue(x, support, pmf) > ALPHA / 3
    # a large pool (float32 counts up to 10^5): the ratio form keeps the pmf accurate
    good, bad, n = 30_000, 70_000, 50
    fam2 = Categorical([0.5, 0.5])
    x = draws(lambda s, pool: fam2.subsample_stats(s, pool, n), 40_000, jnp.array([good, bad], jnp.float32))[:, 0]
    support = [(k,) for k in range(n + 1)]
    pmf = stats.hypergeom(good + bad, good, n).pmf(np.arange(n + 1))
    assert gof_pvalue(x[:, None], support, pmf / pmf.sum()) > ALPHA / 3
    # edge cases: the whole pool, and a pool of one category
    np.testing.assert_array_equal(fam.subsample_stats(stream(), jnp.asarray(pool, jnp.float32), 14), pool)
    np.testing.assert_array_equal(fam.subsample_stats(stream(), jnp.array([0, 0, 9.0, 0, 0]), 4), [0, 0, 4, 0, 0])


# ------------------------------------------------------------------------------ Replace
@pytest.fixture(scope="module")
def replace_runs():
    """Replace on the sample path, and FreshMix(real_fraction in {0, 0.3}) on the exact
    path: FreshMix(0) merges zero real counts with n synthetic ones, i.e. it is Replace
    in law, and the traced split r = floor(lam n + 1/2) exercises sample_stats with a
    traced m (one exact compile instead of two: the binomial sampler compiles slowly)."""
    kw = {"metrics": "all"}
    exact = run(
        Categorical(P0, rare_below=RARE, sampler="exact"), cj.FreshMix(), sweep={"real_fraction": [0.0, 0.3]}, **kw
    )
    samples = run(Categorical(P0, rare_below=RARE), cj.Replace(), **kw)
    return {"samples": samples, "exact": exact.sel(0), "freshmix": exact}


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_replace_against_theory(replace_runs, sampler):
    res = replace_runs[sampler]
    g = np.array(GENS)
    for metric, expected in (
        ("collision_probability", cat_theory.collision_replace(g, N, P0)),
        ("rare_mass", cat_theory.rare_mass_mean(g, P0, RARE)),
        ("extinct", cat_theory.extinct_mean_replace(g, N, P0)),
        ("missing_mass", cat_theory.missing_mass_mean_replace(g, N, P0)),
        ("support_size", cat_theory.support_size_mean_replace(g, N, P0)),
    ):
        mean, se = summary_at(res, metric, GENS)
        assert_mc_close(mean, se, expected, label=f"{metric} ({sampler})", rate=1e-4 / 8)
    # Good-Turing at generation 0: E[N1 / n] = sum_k p_k (1 - p_k)^(n - 1), the missing mass of n - 1 draws
    mean, se = summary_at(res, "good_turing", [0])
    assert_mc_close(mean, se, np.sum(P0 * (1 - P0) ** (N - 1)), label=f"good_turing ({sampler})", rate=1e-4 / 8)
    # first-passage events against the exact absorbing chain over compositions of n
    for event, gens in (("extinction", [0, 1, 3]), ("fixation", [2, 6, 12])):
        t = res.events[event]
        cdf = cat_theory.first_passage_cdf(np.array(gens), N, P0, event)
        mc = np.array([np.mean((t >= 0) & (t <= k)) for k in gens])
        assert_mc_close(mc, np.sqrt(cdf * (1 - cdf) / CHAINS), cdf, label=f"{event} ({sampler})", rate=1e-4 / 8)


def test_exact_path_matches_sample_path_in_distribution(replace_runs):
    a, b = replace_runs["samples"].metrics, replace_runs["exact"].metrics
    checks = [(m, g) for m in ("collision_probability", "extinct", "fixed_category") for g in (0, 1, G)]
    for metric, g in checks:
        scale = N * N if metric == "collision_probability" else 1  # n^2 S is an integer; the others are
        p = homogeneity_pvalue(a[metric][:, g], b[metric][:, g], scale)
        assert p > ALPHA / len(checks), f"{metric} at g={g}: chi-square p = {p:.2e}"


def test_absorption_time_and_fixation_probability_two_categories():
    # K = 2, n = 5: the (n + 1)-state Wright-Fisher chain; every chain is absorbed long before g = 100
    n, p0 = 5, [0.3, 0.7]
    res = run(Categorical(p0, rare_below=0.5), cj.Replace(), n=n, generations=100, metrics=["rare_mass"])
    t = res.events["extinction"]
    assert np.all(t >= 0)
    np.testing.assert_array_equal(res.events["fixation"], t)  # for K = 2 the two events coincide
    gens = np.array([0, 1, 2, 5, 10])
    cdf = cat_theory.first_passage_cdf(gens, n, p0)
    mc = np.array([np.mean(t <= k) for k in gens])
    expected_mean = cat_theory.first_passage_mean(n, p0)
    fixed0 = res.metrics["rare_mass"][:, -1]  # 1 where category 0 fixed, else 0
    assert set(np.unique(fixed0)) == {0.0, 1.0}
    fix = cat_theory.fixation_probability(p0)[0]
    assert_mc_close(
        np.append(mc, [t.mean(), fixed0.mean()]),
        np.append(np.sqrt(cdf * (1 - cdf) / CHAINS), [t.std() / np.sqrt(CHAINS), np.sqrt(fix * (1 - fix) / CHAINS)]),
        np.append(cdf, [expected_mean, fix]),
        label="absorption time and fixation",
    )


def test_first_passage_theory_is_consistent():
    # two independent exact computations agree: for K = 2 the composition chain's
    # extinction law is the binomial chain's P(count at 0 or n) = E[extinct]
    gens = np.arange(8)
    for p0 in ([0.3, 0.7], [0.5, 0.5]):
        ext = cat_theory.first_passage_cdf(gens, 6, p0)
        np.testing.assert_allclose(ext, cat_theory.extinct_mean_replace(gens, 6, p0), rtol=1e-12)
        np.testing.assert_allclose(ext, cat_theory.first_passage_cdf(gens, 6, p0, "fixation"), rtol=1e-12)
        assert ext[0] == pytest.approx(p0[0] ** 6 + p0[1] ** 6)
    # the mean absorption time is the diffusion approximation up to O(1) (relative O(1/n))
    exact = cat_theory.first_passage_mean(200, [0.3, 0.7])
    assert abs(exact - cat_theory.absorption_time_diffusion(200, 0.3)) < 0.02 * exact
    # the mean is the sum of the survival function
    surv = 1 - cat_theory.first_passage_cdf(np.arange(400), 10, [0.2, 0.3, 0.5], "fixation")
    assert surv.sum() == pytest.approx(cat_theory.first_passage_mean(10, [0.2, 0.3, 0.5], "fixation"), rel=1e-9)
    assert cat_theory.probs_mean(np.arange(3), P0).shape == (3, 4)
    with pytest.raises(ValueError, match=r"n=5000 has n \+ 1 states"):
        cat_theory.extinct_mean_replace(1, 5000, P0)
    # limits of the mixing formulas
    g = np.arange(6)
    replace = cat_theory.collision_replace(g, 9, P0)
    np.testing.assert_allclose(cat_theory.collision_freshmix(g, 9, P0, 0.0), replace, rtol=1e-12)
    np.testing.assert_allclose(cat_theory.collision_weighted(g, 9, P0, 0.0, 1.0), replace, rtol=1e-12)
    np.testing.assert_allclose(cat_theory.collision_freshmix(g, 9, P0, 1.0), replace[0], rtol=1e-12)
    assert cat_theory.collision_accumulate(10**6, 9, P0) == pytest.approx(
        cat_theory.collision_accumulate_limit(9, P0), rel=1e-6
    )


# ------------------------------------------------------------------------------ other regimes
class _PointsOnly(ExactSampler, Combinable, Temperable, Scorable):
    """Categorical without the SubsampleStats capability (its other laws and methods,
    reused): AccumulateSubsample stores every point."""

    num_categories: int = eqx.field(static=True)
    sampler: str = eqx.field(static=True)
    train_sizes: tuple = eqx.field(static=True)
    fit_points: int = eqx.field(static=True)
    probs: jax.Array
    rare_below: jax.Array
    smoothing: jax.Array
    clean_fraction: jax.Array
    start: jax.Array | None
    data: object
    _data_first: int = eqx.field(static=True)
    optional_metrics = Categorical.optional_metrics
    metric_dims = Categorical.metric_dims
    event_dims = Categorical.event_dims
    traced_bounds = Categorical.traced_bounds

    __init__ = Categorical.__init__
    truth = Categorical.truth
    min_points = Categorical.min_points
    sample = Categorical.sample
    data_stats = Categorical.data_stats
    merge_stats = Categorical.merge_stats
    fit_stats = Categorical.fit_stats
    fit = Categorical.fit
    sample_stats = Categorical.sample_stats
    combine = Categorical.combine
    temper = Categorical.temper
    score = Categorical.score
    score_quantile = Categorical.score_quantile
    metrics = Categorical.metrics
    events = Categorical.events
    initial_model = Categorical.initial_model


@pytest.fixture(scope="module")
def pooled_runs():
    fam = Categorical(P0, rare_below=RARE)
    return {
        "accumulate": run(fam, cj.Accumulate()),
        "subsample": run(fam, cj.AccumulateSubsample()),
        "subsample_points": run(_PointsOnly(P0, rare_below=RARE), cj.AccumulateSubsample()),
    }


def test_accumulate_and_subsample_against_theory(pooled_runs):
    g = np.array(GENS)
    cases = [
        ("accumulate", cat_theory.collision_accumulate(g, N, P0)),
        ("subsample", cat_theory.collision_accumulate_subsample(g, N, P0)),
        ("subsample_points", cat_theory.collision_accumulate_subsample(g, N, P0)),
    ]
    for name, expected in cases:
        res = pooled_runs[name]
        mean, se = summary_at(res, "collision_probability", GENS)
        assert_mc_close(mean, se, expected, label=name, rate=1e-4 / 6)
        mean, se = summary_at(res, "rare_mass", GENS)
        assert_mc_close(mean, se, cat_theory.rare_mass_mean(g, P0, RARE), label=f"{name} rare", rate=1e-4 / 6)


def test_subsample_hook_matches_point_buffer(pooled_runs):
    # the multivariate hypergeometric on pooled counts is the same law as a uniform subset of the stored points
    a, b = pooled_runs["subsample"].metrics, pooled_runs["subsample_points"].metrics
    for g in (1, G):
        p = homogeneity_pvalue(a["collision_probability"][:, g], b["collision_probability"][:, g], N * N)
        assert p > ALPHA / 2, f"g={g}: chi-square p = {p:.2e}"


def test_accumulate_keeps_collision_below_replace(pooled_runs, replace_runs):
    # paired by common random numbers (same seed: the same original samples)
    for name in ("accumulate", "subsample_points"):
        d = replace_runs["samples"].paired_difference(pooled_runs[name], "collision_probability")
        d = d.set_index("generation")
        assert d.loc[0, "mean"] == 0.0  # generation 0 is the same fit
        assert np.all(d.loc[GENS[1:], "mean"] > z_for(3) * d.loc[GENS[1:], "se"])
    acc = summary_at(pooled_runs["accumulate"], "collision_probability", [G])[0][0]
    sub = summary_at(pooled_runs["subsample"], "collision_probability", [G])[0][0]
    assert acc < sub < summary_at(replace_runs["exact"], "collision_probability", [G])[0][0]


def test_subsample_hook_allows_the_exact_path():
    # with the capability, AccumulateSubsample never needs the points; without it, sampler="exact" is refused
    def check(family):
        compat.check(family, cj.AccumulateSubsample(), cj.Synthesis(), N, G, True)

    check(Categorical(P0, sampler="exact"))
    with pytest.raises(ValueError, match="needs the data points"):
        check(cj.Gaussian(sampler="exact"))
    with pytest.raises(ValueError, match="needs the data points"):
        check(_PointsOnly(P0, sampler="exact"))


def test_freshmix_exact_against_theory(replace_runs):
    lam = 0.3
    mean, se = summary_at(replace_runs["freshmix"].sel(1), "collision_probability", GENS)
    assert_mc_close(mean, se, cat_theory.collision_freshmix(np.array(GENS), N, P0, lam), label=f"FreshMix({lam})")


def test_weighted_against_theory():
    w, k = 0.4, 2.0
    res = run(Categorical(P0, rare_below=RARE), cj.Weighted(w, ratio=k))
    mean, se = summary_at(res, "collision_probability", GENS)
    assert_mc_close(mean, se, cat_theory.collision_weighted(np.array(GENS), N, P0, w, k), label="Weighted")
    # rare_below is traced: a new value reuses the compiled program (and the same chains)
    before = trace_counts()
    other = run(Categorical(P0, rare_below=0.2), cj.Weighted(w, ratio=k))
    assert trace_counts() == before, "a new rare_below recompiled"
    np.testing.assert_array_equal(other.metrics["collision_probability"], res.metrics["collision_probability"])
    mean, se = summary_at(other, "rare_mass", GENS)
    assert_mc_close(mean, se, cat_theory.rare_mass_mean(np.array(GENS), P0, 0.2), label="Weighted rare_mass")


@pytest.mark.slow
def test_weighted_samples_is_the_estimates_estimator():
    # weights w/n and (1 - w)/m on the same draws give w p_real + (1 - w) p_synth
    fam = Categorical(P0, rare_below=RARE)
    kw = dict(chains=500, generations=5)
    a = run(fam, cj.Weighted(0.4, ratio=2.0, combine="estimates"), **kw)
    b = run(fam, cj.Weighted(0.4, ratio=2.0, combine="samples"), **kw)
    for k in a.metrics:
        np.testing.assert_allclose(a.metrics[k], b.metrics[k], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_retain_original_limits(replace_runs):
    res = run(Categorical(P0, rare_below=RARE), cj.RetainOriginal(), sweep={"fraction": [0.0, 1.0]})
    ref = replace_runs["samples"]
    for k in ("collision_probability", "extinct"):
        np.testing.assert_allclose(res.sel(0).metrics[k], ref.metrics[k], rtol=1e-6)  # RetainOriginal(0) = Replace
        x = res.sel(1).metrics[k]
        np.testing.assert_allclose(x, np.repeat(x[:, :1], G + 1, axis=1), rtol=1e-6)  # repeats generation 0


def test_zipf_truth_and_missing_mass_at_generation_zero():
    """Categorical.zipf: p_k proportional to k^-beta; E[missing_mass_0] is the classical
    sum_k p_k (1 - p_k)^n (the exact chain's g = 0)."""
    fam = Categorical.zipf(1.2, 200)
    p = np.arange(1, 201, dtype=np.float64) ** -1.2
    np.testing.assert_allclose(np.asarray(fam.probs), p / p.sum(), rtol=1e-6)
    n = 50
    classical = float(np.sum(p / p.sum() * (1 - p / p.sum()) ** n))
    assert cat_theory.missing_mass_mean_replace(0, n, p / p.sum()) == pytest.approx(classical, rel=1e-12)
    for bad, match in (((0.0, 10), "beta must be a finite number > 0"), ((1.1, 0), "num_categories must be")):
        with pytest.raises(ValueError, match=match):
            Categorical.zipf(*bad)
