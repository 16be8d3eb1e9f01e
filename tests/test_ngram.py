"""The Bigram family (collapse_jax.families.ngram): its samplers against exact laws, the
fit and the metrics against numpy references, seq_len=1 chains (Replace, FreshMix, both
unseen rules, both paths) against the exact means of collapse_jax.theory.ngram, text
chains (seq_len > 1) against the exact Markov chain of the fits enumerated at tiny V and
n, decoding per row, bad input before compiling, and describe()."""

from __future__ import annotations

import itertools
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
from collapse_jax.families import Combinable, Decodable, ExactSampler, SubsampleStats, Temperable
from collapse_jax.families.ngram import Bigram, zipf_markov_matrix
from collapse_jax.theory import ngram as ng_theory

# irreducible, with zeros at a row's end (0 -> 2) and at a row's start (2 -> 0)
P3 = np.array([[0.6, 0.4, 0.0], [0.2, 0.3, 0.5], [0.0, 0.3, 0.7]])
PI3 = ng_theory.stationary_probs(P3)
ALPHA = 1e-4  # family-wise false-alarm rate of each distribution test
CHAINS = 20_000


def stream(i=0, s=2, g=0):
    return Stream(jnp.array([SEED, i], jnp.uint32), jnp.int32(g), s)


def run(fam, regime, **kw):
    args = dict(chains=CHAINS, seed=SEED, progress=False)
    args.update(kw)
    return cj.simulate(fam, regime, **args)


def chisq_pvalue(obs, exp):
    """Chi-square goodness of fit, bins with expected count < 5 pooled into one; a
    count in a bin of probability 0 fails outright."""
    obs, exp = np.asarray(obs, np.float64).ravel(), np.asarray(exp, np.float64).ravel()
    assert np.all(obs[exp == 0] == 0), "an outcome of probability 0 was drawn"
    obs, exp = obs[exp > 0], exp[exp > 0]
    exp = exp * obs.sum() / exp.sum()
    small = exp < 5
    if small.any():
        obs = np.append(obs[~small], obs[small].sum())
        exp = np.append(exp[~small], exp[small].sum())
    return stats.chisquare(obs, exp).pvalue


# ------------------------------------------------------------------------------ numpy references
def ref_counts(data, weights, v):
    c = np.zeros((v, v))
    for (a, b), w in zip(np.asarray(data), np.asarray(weights, np.float64)):
        if w > 0:
            c[a, b] += w
    return c


def ref_fit(counts, unseen):
    v = counts.shape[0]
    rows = counts.sum(axis=1)
    if unseen == "backoff" and counts.sum() > 0:
        fallback = counts.sum(axis=0) / counts.sum()
    else:
        fallback = np.full(v, 1.0 / v)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows[:, None] > 0, counts / rows[:, None], fallback[None, :])


def ref_metrics(p, p0, pi, eps=1e-6):
    v = p.shape[0]
    pos = p > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(pos, p * np.log(np.where(pos, p, 1)), 0)
        h0 = -np.sum(pi * np.sum(np.where(p0 > 0, p0 * np.log(np.where(p0 > 0, p0, 1)), 0), axis=1))
    cross = -np.sum(pi * np.sum(np.where(p0 > 0, p0 * np.log((p + eps) / (1 + v * eps)), 0), axis=1))
    produced0 = (pi @ p0) > 0
    return {
        "entropy_rate": -np.sum(pi * plogp.sum(axis=1)),
        "missing_mass": np.sum(pi[:, None] * np.where(pos, 0, p0)),
        "fixed_contexts": float(np.sum(pos.sum(axis=1) == 1)),
        "support_size": float(pos.sum()),
        "collision_probability": np.sum(pi * np.sum(p * p, axis=1)),
        "match_probability": np.sum(pi * np.sum(p * p0, axis=1)),
        "extinct_tokens": float(np.sum(produced0 & ~pos.any(axis=0))),
        "l1_to_truth": np.sum(pi * np.abs(p - p0).sum(axis=1)),
        "cross_entropy": cross,
        "kl_to_truth": cross - h0,
    }


def ref_events(p, p0, pi):
    pos = p > 0
    return {
        "extinction": bool(np.any((p0 > 0) & ~pos)),
        "token_extinction": bool(np.any(((pi @ p0) > 0) & ~pos.any(axis=0))),
        "all_fixed": bool(np.all(pos.sum(axis=1) == 1)),
    }


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "args,kwargs,exc,pattern",
    [
        ((P3[:2],), {}, ValueError, r"transition must be a square \(V, V\) matrix with V >= 1, got shape \(2, 3\)"),
        ((P3[0],), {}, ValueError, r"transition must be a square \(V, V\) matrix .* got shape \(3,\)"),
        ((np.zeros((0, 0)),), {}, ValueError, r"got shape \(0, 0\)"),
        (([[0.5, 0.5], [0.5, float("nan")]],), {}, ValueError, r"transition must be finite, got transition\[1, 1\]"),
        (([[1.2, -0.2], [0.5, 0.5]],), {}, ValueError, r"transition must be >= 0, got transition\[0, 1\] = -0.2"),
        (([[0.5, 0.5], [0.5, 0.4]],), {}, ValueError, r"every row of transition must sum to 1 .* got row 1 summing"),
        (("ab",), {}, TypeError, r"transition must be a \(V, V\) row-stochastic matrix"),
        (([[True, False], [False, True]],), {}, TypeError, r"transition must be a \(V, V\) row-stochastic"),
        (([[0.5], [0.2, 0.8]],), {}, ValueError, r"transition must be a \(V, V\) row-stochastic matrix"),
        (({"zipf": 1.0},), {}, ValueError, r"Zipf-Markov recipe with keys 'zipf', 'vocab'"),
        (({"zipf": 0.0, "vocab": 5},), {}, ValueError, r"beta must be a finite number > 0, got 0.0"),
        (({"zipf": 1.0, "vocab": 0},), {}, ValueError, r"vocab must be an int in \[1, 32768\], got 0"),
        ((P3,), {"seq_len": 0}, ValueError, r"seq_len must be >= 1, got 0"),
        ((P3,), {"seq_len": 2.0}, TypeError, r"seq_len must be an int >= 1, got 2.0"),
        ((P3,), {"unseen": "keep"}, ValueError, r"unseen must be one of \('backoff', 'uniform'\), got 'keep'"),
        ((P3,), {"sampler": "fast"}, ValueError, r"sampler must be one of \('samples', 'exact'\), got 'fast'"),
        ((P3,), {"sampler": "exact", "seq_len": 4}, ValueError, r"sampler='exact' needs seq_len=1 .* seq_len=4"),
        ((P3,), {"start_probs": [0.5, 0.5]}, ValueError, r"start_probs must be a vector of V = 3 .* shape \(2,\)"),
        ((P3,), {"start_probs": [0.5, 0.6, -0.1]}, ValueError, r"start_probs must be finite and >= 0"),
        ((P3,), {"start_probs": [0.5, 0.4, 0.0]}, ValueError, r"start_probs must sum to 1 .* got sum 0.9"),
        ((np.eye(2),), {}, ValueError, r"stationary law of transition is not unique .* \(start_probs=...\)"),
        ((P3,), {"smoothing": 0.0}, ValueError, r"smoothing must lie in \(0, 1\], got 0.0"),
    ],
)
def test_bad_arguments_name_the_parameter(args, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        Bigram(*args, **kwargs)
    assert str(info.value).startswith(("Bigram: ", "Bigram.zipf_markov: "))


def test_bad_input_raises_before_compiling():
    before = trace_counts()
    with pytest.raises(ValueError, match=r"Bigram.zipf_markov: beta must be a finite number > 0, got -1"):
        Bigram.zipf_markov(-1, 10)
    with pytest.raises(TypeError, match=r"Bigram.zipf_markov: beta must be a number > 0, got 'x'"):
        Bigram.zipf_markov("x", 10)
    fam = Bigram(P3, seq_len=3)
    assert not fam.has_exact and "seq_len=3: the counts of a Markov text" in str(fam.exact_unavailable())
    with pytest.raises(ValueError, match=r"Bigram.sample: n must be >= 1, got 0"):
        fam.sample(stream(), fam.truth(), 0)
    with pytest.raises(ValueError, match=r"sweep value 0.0 for 'smoothing' is invalid"):
        cj.simulate(fam, cj.Replace(), n=4, generations=2, chains=4, sweep={"smoothing": [0.1, 0.0]})
    with pytest.raises(ValueError, match=r"unseen must be one of"):
        ng_theory.transition_mean(2, 5, P3, unseen="keep")
    # an identity matrix with an explicit start law is fine (every token its own closed class)
    assert Bigram(np.eye(2), start_probs=[0.5, 0.5]).vocab == 2
    assert trace_counts() == before, "an invalid configuration reached the compiler"


# ------------------------------------------------------------------------------ truths
def test_zipf_markov_truth_and_stationary_law():
    m = zipf_markov_matrix(1.3, 40, seed=7)
    z = np.arange(1, 41, dtype=np.float64) ** -1.3
    np.testing.assert_allclose(np.sort(m, axis=1)[:, ::-1], np.broadcast_to(z / z.sum(), (40, 40)), rtol=1e-12)
    rng = np.random.default_rng(7)
    assert np.argmax(m[0]) == rng.permutation(40)[0] and np.argmax(m[1]) == rng.permutation(40)[0]
    np.testing.assert_array_equal(m, zipf_markov_matrix(1.3, 40, seed=7))
    assert not np.array_equal(m, zipf_markov_matrix(1.3, 40, seed=8))
    fam = Bigram.zipf_markov(1.3, 40, seed=7)
    np.testing.assert_array_equal(np.asarray(fam.truth()), m.astype(np.float32))
    pi = ng_theory.stationary_probs(m)
    np.testing.assert_allclose(pi @ m, pi, atol=1e-14)
    np.testing.assert_allclose(np.asarray(fam.start_probs), pi, rtol=1e-6)
    # a periodic chain has a unique stationary law too
    np.testing.assert_allclose(ng_theory.stationary_probs([[0, 1], [1, 0]]), [0.5, 0.5])


# ------------------------------------------------------------------------------ samplers
def test_pairs_with_seq_len_1_are_iid_with_probability_pi_times_p():
    fam = Bigram(P3)
    np.testing.assert_allclose(np.asarray(fam.start_probs), PI3, rtol=1e-6)
    n = 200_000
    x = np.asarray(jax.jit(lambda p: fam.sample(stream(), p, n))(fam.truth()))
    assert x.shape == (n, 2) and x.dtype == np.int32
    counts = ref_counts(x, np.ones(n), 3)
    assert chisq_pvalue(counts, PI3[:, None] * P3) > ALPHA / 3
    np.testing.assert_array_equal(np.asarray(fam.data_stats(jnp.asarray(x), None)), counts)  # exact integers
    # V > 32 (the cumulative sums in several blocks), sparse rows, zeros at both ends
    rng = np.random.default_rng(SEED)
    v = 70
    p = rng.dirichlet(np.full(v, 0.3), size=v) * (rng.random((v, v)) < 0.5)
    p[:, 0], p[:, -1], p[:, 1] = 0.0, 0.0, p[:, 1] + 0.05
    p /= p.sum(axis=1, keepdims=True)
    start = rng.dirichlet(np.ones(v))
    big = Bigram(p, start_probs=start)
    y = np.asarray(jax.jit(lambda q: big.sample(stream(1), q, 200_000))(big.truth()))
    assert chisq_pvalue(ref_counts(y, np.ones(len(y)), v), start[:, None] * p) > ALPHA / 3


def test_documents_follow_the_markov_chain():
    fam = Bigram(P3, seq_len=3)
    docs = 40_000
    x = np.asarray(jax.jit(lambda p: fam.sample(stream(2), p, 3 * docs))(fam.truth())).reshape(docs, 3, 2)
    np.testing.assert_array_equal(x[:, 1:, 0], x[:, :-1, 1])  # each transition continues the previous one
    tokens = np.concatenate([x[:, :1, 0], x[:, :, 1]], axis=1)  # (docs, 4): x0 .. x3
    obs = np.bincount(tokens @ (3 ** np.arange(3, -1, -1)), minlength=81)
    pmf = np.array([PI3[a] * P3[a, b] * P3[b, c] * P3[c, d] for a, b, c, d in itertools.product(range(3), repeat=4)])
    assert chisq_pvalue(obs, pmf) > ALPHA / 3
    # n = 8 with seq_len = 3: documents of 3, 3 and 2 transitions; n < seq_len: one document
    y = np.asarray(fam.sample(stream(3), fam.truth(), 8))
    for a, b in ((0, 1), (1, 2), (3, 4), (4, 5), (6, 7)):
        assert y[b, 0] == y[a, 1]
    z = np.asarray(Bigram(P3, seq_len=50).sample(stream(4), fam.truth(), 5))
    np.testing.assert_array_equal(z[1:, 0], z[:-1, 1])


def _cells_pmf(probs, m):
    support = [c for c in itertools.product(range(m + 1), repeat=len(probs)) if sum(c) == m]
    pmf = [math.factorial(m) / math.prod(math.factorial(k) for k in c) * np.prod(probs**c) for c in support]
    return support, np.array(pmf)


def test_exact_sampler_and_subsample_laws():
    p2 = np.array([[0.7, 0.3], [0.4, 0.6]])
    fam = Bigram(p2, sampler="exact")
    assert isinstance(fam, ExactSampler) and fam.has_exact and not Bigram(p2, seq_len=2).has_exact
    pi = ng_theory.stationary_probs(p2)
    count, m = 30_000, 4
    ids = jnp.arange(count, dtype=jnp.uint32)
    draw = jax.jit(jax.vmap(lambda i, p: fam.sample_stats(stream(i), p, m), in_axes=(0, None)))
    x = np.asarray(draw(ids, fam.truth())).reshape(count, 4)
    assert np.all(x.sum(axis=1) == m)
    support, pmf = _cells_pmf((pi[:, None] * p2).ravel(), m)
    obs = np.zeros(len(support))
    index = {s: k for k, s in enumerate(support)}
    for row in x.astype(int):
        obs[index[tuple(row)]] += 1
    assert chisq_pvalue(obs, pmf) > ALPHA / 2
    # AccumulateSubsample's hook: the exact multivariate hypergeometric law over the cells
    pool, n = np.array([[3.0, 0.0], [2.0, 4.0]]), 4
    sub = jax.jit(jax.vmap(lambda i, s: fam.subsample_stats(stream(i), s, n), in_axes=(0, None)))
    y = np.asarray(sub(ids, jnp.asarray(pool, jnp.float32))).reshape(count, 4)
    assert np.all(y.sum(axis=1) == n) and np.all(y <= pool.ravel())
    flat = pool.ravel().astype(int)
    supp = [c for c in itertools.product(*(range(k + 1) for k in flat)) if sum(c) == n]
    hyper = np.array([math.prod(math.comb(k, c) for k, c in zip(flat, s)) for s in supp]) / math.comb(flat.sum(), n)
    obs = np.zeros(len(supp))
    index = {s: k for k, s in enumerate(supp)}
    for row in y.astype(int):
        obs[index[tuple(row)]] += 1
    assert chisq_pvalue(obs, hyper) > ALPHA / 2


# ------------------------------------------------------------------------------ fit, metrics, decoding
@pytest.mark.parametrize("unseen", ["backoff", "uniform"])
def test_fit_is_the_transition_mle_with_the_unseen_rule(unseen):
    fam = Bigram(P3, unseen=unseen)
    rng = np.random.default_rng(SEED)
    data = np.column_stack([rng.choice([0, 1], 30), rng.choice(3, 30)]).astype(np.int32)  # context 2 unseen
    w = rng.uniform(0.5, 2.0, 30)
    fit = np.asarray(fam.fit(stream(), jnp.asarray(data), jnp.asarray(w, jnp.float32)))
    np.testing.assert_allclose(fit, ref_fit(ref_counts(data, w, 3), unseen), rtol=1e-6)
    np.testing.assert_allclose(fit.sum(axis=1), 1.0, rtol=1e-6)
    if unseen == "backoff":  # the unseen row: the next-token frequencies of the whole sample
        np.testing.assert_allclose(fit[2], np.bincount(data[:, 1], weights=w, minlength=3) / w.sum(), rtol=1e-6)
    else:
        np.testing.assert_array_equal(fit[2], np.full(3, 1 / 3, np.float32))
    # weights: scaling, zero-weight padding holding garbage pairs, permutation; the stats path
    base = fam.fit(stream(), jnp.asarray(data), jnp.asarray(w, jnp.float32))
    garbage = jnp.asarray(np.vstack([data, [[-3, 99], [7, 2], [2, 2]]]), jnp.int32)
    padded = fam.fit(stream(), garbage, jnp.asarray(np.append(w, np.zeros(3)), jnp.float32))
    for other in (
        fam.fit(stream(), jnp.asarray(data), jnp.asarray(3.7 * w, jnp.float32)),
        padded,
        fam.fit(stream(), jnp.asarray(data[::-1]), jnp.asarray(w[::-1], jnp.float32)),
        fam.fit_stats(fam.merge_stats(fam.data_stats(data[:11], w[:11]), fam.data_stats(data[11:], w[11:]))),
    ):
        np.testing.assert_allclose(other, base, rtol=1e-6, atol=1e-7)
    # unit weights: exact frequencies; the truth's rows come back from a large sample
    big = np.asarray(jax.jit(lambda p: fam.fit(stream(), fam.sample(stream(5), p, 100_000), None))(fam.truth()))
    np.testing.assert_allclose(big, P3, atol=0.02)
    assert big[0, 2] == 0.0 and big[2, 0] == 0.0


def test_metrics_and_events_against_numpy():
    fam = Bigram(P3)
    fixed = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    lost = np.array([[0.5, 0.5, 0.0], [0.0, 0.25, 0.75], [0.0, 0.0, 1.0]])
    for p in (P3, fixed, lost, np.full((3, 3), 1 / 3)):
        got = {k: float(v) for k, v in fam.metrics(stream(), jnp.asarray(p, jnp.float32)).items()}
        want = ref_metrics(p, P3, PI3)
        assert set(got) == set(want) == set(fam.metric_names())
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=2e-5, abs=1e-6), k
        ev = {k: bool(v) for k, v in fam.events(jnp.asarray(p, jnp.float32)).items()}
        assert ev == ref_events(p, P3, PI3)
    at_truth = fam.metrics(stream(), fam.truth())
    h = -np.sum(PI3 * np.sum(np.where(P3 > 0, P3 * np.log(np.where(P3 > 0, P3, 1)), 0), axis=1))
    assert float(at_truth["entropy_rate"]) == pytest.approx(h, rel=1e-6)  # the truth's entropy rate
    assert float(at_truth["missing_mass"]) == 0.0 and float(at_truth["kl_to_truth"]) == pytest.approx(0, abs=1e-4)
    assert ref_events(fixed, P3, PI3) == {"extinction": True, "token_extinction": True, "all_fixed": True}
    assert set(Bigram.optional_metrics) == set(ref_metrics(P3, P3, PI3)) - {
        "entropy_rate",
        "missing_mass",
        "fixed_contexts",
        "support_size",
    }


def test_decoding_and_combining_act_per_row():
    fam = Bigram(P3)
    assert isinstance(fam, Temperable) and isinstance(fam, Decodable) and isinstance(fam, Combinable)
    assert isinstance(fam, SubsampleStats)
    p = jnp.asarray([[0.5, 0.3, 0.2], [0.0, 0.4, 0.6], [0.25, 0.25, 0.5]], jnp.float32)
    np.testing.assert_array_equal(fam.temper(p, jnp.float32(1.0)), p)  # bit for bit
    t = np.asarray(fam.temper(p, jnp.float32(0.5)))
    ref = np.asarray(p, np.float64) ** 2
    np.testing.assert_allclose(t, ref / ref.sum(axis=1, keepdims=True), rtol=1e-6)
    assert t[1, 0] == 0.0
    k2 = np.asarray(fam.top_k(p, 2))  # ties with the 2nd largest are kept (row 2)
    np.testing.assert_allclose(k2, [[0.625, 0.375, 0], [0, 0.4, 0.6], [0.25, 0.25, 0.5]], rtol=1e-6)
    mp = np.asarray(fam.min_p(p, 0.6))
    np.testing.assert_allclose(mp, [[0.625, 0.375, 0], [0, 0.4, 0.6], [0, 0, 1]], rtol=1e-6)
    c = np.asarray(fam.combine(p, fam.truth(), 0.25))
    np.testing.assert_allclose(c, 0.25 * np.asarray(p) + 0.75 * P3, rtol=1e-6)


# ------------------------------------------------------------------------------ describe
def test_describe_round_trips_through_the_constructor():
    rng = np.random.default_rng(SEED)
    families = [
        Bigram.zipf_markov(1.1, 30, seed=4, seq_len=5, unseen="uniform", smoothing=1e-3),
        Bigram(P3, sampler="exact"),
        Bigram(P3, start_probs=[0.2, 0.3, 0.5]),
    ] + [Bigram(rng.dirichlet(np.full(v, 0.5), size=v), seq_len=2) for v in (2, 7, 33)]
    for fam in families:
        d = json.loads(json.dumps(fam.describe()))
        assert d.pop("family") == "Bigram"
        again = Bigram(**d)
        assert again.describe() == fam.describe()
        np.testing.assert_array_equal(np.asarray(again.truth()), np.asarray(fam.truth()))
        np.testing.assert_array_equal(np.asarray(again.start_probs), np.asarray(fam.start_probs))
    d = families[0].describe()
    assert d["transition"] == {"zipf": 1.1, "vocab": 30, "seed": 4} and d["start_probs"] is None
    assert families[2].describe()["start_probs"] == pytest.approx([0.2, 0.3, 0.5])


# ------------------------------------------------------------------------------ seq_len = 1: exact means
def _mean_fits(fam, n, generations, chains):
    """E[P_g] over ``chains`` chains refitted on their own draws (the family alone, no
    engine), with the standard errors of the entries."""

    def chain(i):
        def fit_from(p, g):
            s = Stream(jnp.stack([jnp.uint32(SEED), i]), g, 2)
            return fam.fit(s, fam.sample(s, p, n), None)

        p0 = fit_from(fam.truth(), jnp.int32(0))
        _, ps = jax.lax.scan(lambda p, g: (fit_from(p, g),) * 2, p0, jnp.arange(1, generations + 1, dtype=jnp.int32))
        return jnp.concatenate([p0[None], ps])

    ps = np.asarray(jax.jit(jax.vmap(chain))(jnp.arange(chains, dtype=jnp.uint32)), np.float64)
    return ps.mean(axis=0), ps.std(axis=0, ddof=1) / math.sqrt(chains)


@pytest.mark.parametrize("unseen", ["backoff", "uniform"])
def test_mean_fit_follows_the_exact_recursion(unseen):
    # n = 4: every context is unseen in a generation with probability (1 - pi_c)^4 = 0.07 .. 0.3
    n, gens = 4, 6
    mean, se = _mean_fits(Bigram(P3, unseen=unseen), n, gens, CHAINS)
    expected = ng_theory.transition_mean(np.arange(gens + 1), n, P3, unseen=unseen)
    assert_mc_close(mean, se, expected, label=f"E[P_g] ({unseen})")
    # the unseen rule matters: the rows drift away from P0 (the martingale of a fully seen row)
    assert np.max(np.abs(expected[-1] - P3)) > 20 * np.max(se[-1])


PROMPTED = dict(n=5, generations=8, metrics=["match_probability", "collision_probability", "entropy_rate"])
GENS = [0, 1, 3, 8]


@pytest.fixture(scope="module")
def prompted_runs():
    """seq_len=1 on the sample path: FreshMix(real_fraction in {0, 0.4}) with backoff
    (FreshMix(0) is Replace in law: one compile for both), Replace with uniform rows."""
    return {
        "backoff": run(Bigram(P3), cj.FreshMix(), sweep={"real_fraction": [0.0, 0.4]}, **PROMPTED),
        "uniform": run(Bigram(P3, unseen="uniform"), cj.Replace(), **PROMPTED),
    }


def _match_mean(g, n, unseen="backoff", real_fraction=0.0):
    mean = ng_theory.transition_mean(np.asarray(g), n, P3, unseen=unseen, real_fraction=real_fraction)
    return np.einsum("c,gcx,cx->g", PI3, mean, P3)


def test_replace_and_freshmix_runs_against_theory(prompted_runs):
    for k, lam in enumerate([0.0, 0.4]):
        mean, se = summary_at(prompted_runs["backoff"].sel(k), "match_probability", GENS)
        assert_mc_close(mean, se, _match_mean(GENS, 5, real_fraction=lam), label=f"FreshMix({lam})", rate=1e-4 / 4)
    res = prompted_runs["uniform"]
    mean, se = summary_at(res, "match_probability", GENS)
    assert_mc_close(mean, se, _match_mean(GENS, 5, "uniform"), label="match_probability (uniform)", rate=1e-4 / 4)
    # the rows never interact: Seddik et al.'s S per context with N_c ~ Binomial(n, pi_c)
    expected = ng_theory.collision_mean_uniform(np.array(GENS), 5, P3) @ PI3
    mean, se = summary_at(res, "collision_probability", GENS)
    assert_mc_close(mean, se, expected, label="collision_probability (uniform)", rate=1e-4 / 4)


@pytest.mark.slow  # the binomial sampler compiles in about 20 s
def test_exact_path_freshmix_against_theory_and_the_sample_path(prompted_runs):
    res = run(Bigram(P3, sampler="exact"), cj.FreshMix(), sweep={"real_fraction": [0.0, 0.4]}, **PROMPTED)
    for k, lam in enumerate([0.0, 0.4]):
        mean, se = summary_at(res.sel(k), "match_probability", GENS)
        assert_mc_close(mean, se, _match_mean(GENS, 5, real_fraction=lam), label=f"exact FreshMix({lam})", rate=5e-5)
        # the two paths agree on a nonlinear metric too
        a = summary_at(prompted_runs["backoff"].sel(k), "entropy_rate", GENS)
        b = summary_at(res.sel(k), "entropy_rate", GENS)
        assert_mc_close(
            a[0] - b[0], np.hypot(a[1], b[1]), 0.0, label=f"entropy_rate samples vs exact ({lam})", rate=5e-5
        )


# ------------------------------------------------------------------------------ text: the exact chain of fits
def _doc_laws(p, pi, n, seq_len):
    """The law of each document's transition counts, as {counts (flat tuple): prob}."""
    v = p.shape[0]
    steps = min(seq_len, n)
    lengths = [steps] * (-(-n // steps) - 1) + [n - steps * (-(-n // steps) - 1)]
    laws = []
    for length in lengths:
        law: dict = {}
        for seq in itertools.product(range(v), repeat=length + 1):
            prob = pi[seq[0]] * math.prod(p[a, b] for a, b in zip(seq, seq[1:]))
            if prob > 0:
                c = np.zeros(v * v, int)
                for a, b in zip(seq, seq[1:]):
                    c[a * v + b] += 1
                law[tuple(c)] = law.get(tuple(c), 0.0) + prob
        laws.append(law)
    return laws


def _fit_law(p, pi, n, seq_len, unseen):
    """{fit (as a tuple of its entries): prob} of one generation's fit given the model p."""
    total: dict = {tuple([0] * p.size): 1.0}
    for law in _doc_laws(p, pi, n, seq_len):
        new: dict = {}
        for a, pa in total.items():
            for b, pb in law.items():
                key = tuple(x + y for x, y in zip(a, b))
                new[key] = new.get(key, 0.0) + pa * pb
        total = new
    v = p.shape[0]
    out: dict = {}
    for c, prob in total.items():
        fit = tuple(np.round(ref_fit(np.reshape(c, (v, v)).astype(float), unseen).ravel(), 12))
        out[fit] = out.get(fit, 0.0) + prob
    return out


def exact_chain(p0, pi, n, seq_len, unseen, generations, events):
    """E[metric_g] and P(first generation of each event <= g), g = 0..generations,
    from the exact law of the chain of fits (states: the fit and the events seen)."""
    v = p0.shape[0]
    cache: dict = {}

    def step(p):
        key = tuple(p.ravel())
        if key not in cache:
            cache[key] = _fit_law(p, pi, n, seq_len, unseen)
        return cache[key]

    dist: dict = {}
    for fit, prob in step(p0).items():
        f = np.reshape(fit, (v, v))
        flags = tuple(ref_events(f, p0, pi)[e] for e in events)
        dist[(fit, flags)] = dist.get((fit, flags), 0.0) + prob
    means, cdfs = [], []
    for g in range(generations + 1):
        if g > 0:
            new: dict = {}
            for (fit, flags), prob in dist.items():
                for nxt, q in step(np.reshape(fit, (v, v))).items():
                    f = np.reshape(nxt, (v, v))
                    hit = tuple(a or ref_events(f, p0, pi)[e] for a, e in zip(flags, events))
                    new[(nxt, hit)] = new.get((nxt, hit), 0.0) + prob * q
            dist = new
        metric = {}
        for (fit, _), prob in dist.items():
            for k, val in ref_metrics(np.reshape(fit, (v, v)), p0, pi).items():
                metric[k] = metric.get(k, 0.0) + prob * val
        means.append(metric)
        cdfs.append({e: sum(prob for (_, fl), prob in dist.items() if fl[i]) for i, e in enumerate(events)})
    return means, cdfs


@pytest.mark.parametrize("unseen", ["backoff", pytest.param("uniform", marks=pytest.mark.slow)])
def test_text_chain_against_its_exact_law(unseen):
    # V = 3, n = 4 transitions as 2 documents of 2: contexts come from the model's own text
    n, seq_len, generations = 4, 2, 5
    events = ("extinction", "token_extinction", "all_fixed")
    means, cdfs = exact_chain(P3, PI3, n, seq_len, unseen, generations, events)
    names = ("entropy_rate", "missing_mass", "fixed_contexts", "support_size")
    fam = Bigram(P3, seq_len=seq_len, unseen=unseen)
    res = run(fam, cj.Replace(), n=n, generations=generations, keep="chains", metrics=[*names, "extinct_tokens"])
    gens = [0, 1, 2, 5]
    checks = len(names) * len(gens) + len(events) * len(gens)
    for metric in names:
        mean, se = summary_at(res, metric, gens)
        assert_mc_close(mean, se, [means[g][metric] for g in gens], label=f"{metric} ({unseen})", rate=1e-4 / 2)
    for e in events:
        t = res.events[e]
        p = np.array([cdfs[g][e] for g in gens])
        mc = np.array([np.mean((t >= 0) & (t <= g)) for g in gens])
        se = np.sqrt(np.maximum(p * (1 - p), 1e-12) / CHAINS)
        assert_mc_close(mc, se, p, label=f"{e} ({unseen})", rate=1e-4 * len(gens) / checks)
    # with backoff a token that no row produces never comes back (an unseen row is built
    # from the tokens the data produced); a uniform row revives every token
    steps = np.diff(res.metrics["extinct_tokens"], axis=1)
    assert np.any(res.metrics["extinct_tokens"] > 0)
    assert np.all(steps >= 0) if unseen == "backoff" else np.any(steps < 0)


# ------------------------------------------------------------------------------ other regimes
@pytest.mark.slow  # two compiles (about 13 s); the subsample law itself is checked above
def test_pooled_regimes_run_on_counts():
    fam = Bigram.zipf_markov(1.0, 5, seed=1, seq_len=4)
    for regime in (cj.Accumulate(), cj.AccumulateSubsample()):
        res = run(fam, regime, n=24, generations=4, chains=64, metrics="all")
        for metric in ("entropy_rate", "missing_mass", "kl_to_truth"):
            assert np.all(np.isfinite(res.mean(metric))), (type(regime).__name__, metric)
        assert np.all(res.mean("missing_mass") >= 0)
