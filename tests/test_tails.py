"""Tails of discrete models (issue: tails and scaling laws): Zipf and word-frequency
truths, the optional tail metrics, a generator that is not a fit (``start``), the
memoriser's test error, the decoding rules top-k and min-p, and which category a chain
fixes on (Seddik et al.'s law), each against an exact value or at Monte Carlo
tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SEED, assert_mc_close, summary_at

import collapse_jax as cj
from collapse_jax.families.categorical import Categorical, zipf_probs
from collapse_jax.theory import categorical as cat_theory
from collapse_jax.theory.tails import memoriser_error


# ------------------------------------------------------------------------------ optional metrics
def test_optional_metrics_are_computed_only_when_named():
    fam = Categorical.zipf(1.5, 20)
    kw = dict(n=30, generations=2, chains=8, seed=SEED, progress=False)
    plain = cj.simulate(fam, cj.Replace(), **kw)
    assert set(plain.metrics) == {"collision_probability", "entropy", "extinct", "rare_mass"}
    every = cj.simulate(fam, cj.Replace(), metrics="all", **kw)
    assert set(every.metrics) == set(plain.metrics) | {
        "missing_mass",
        "support_size",
        "good_turing",
        "kl_to_truth",
        "cross_entropy",
        "l1_to_truth",
        "fixed_category",
    }
    np.testing.assert_array_equal(every.metrics["entropy"], plain.metrics["entropy"])  # same draws
    one = cj.simulate(fam, cj.Replace(), metrics=["missing_mass"], **kw)
    np.testing.assert_array_equal(one.metrics["missing_mass"], every.metrics["missing_mass"])
    with pytest.raises(ValueError, match=r"unknown metrics \['good_turing'\].*metrics='all'"):
        cj.simulate(fam, cj.Accumulate(), metrics=["good_turing"], **kw)  # pooled fits: no fixed n


def test_guide_table_search_is_the_binary_search():
    """From K = 1024 on, Categorical.sample searches a guide table over the live
    categories: the index of every draw is the plain binary search's, up to the CDF's
    float32 rounding (a neighbouring live category, rarely), and a dead category is never
    drawn."""
    import jax
    import jax.numpy as jnp

    from collapse_jax._rng import Stream
    from collapse_jax.families._counts import _inverse_cdf_bucketed, _live_map

    k, n = 4096, 20_000
    rng = np.random.default_rng(SEED)
    truth = zipf_probs(1.1, k)
    fit = rng.multinomial(n, truth) / n  # a Replace fit: most categories dead
    fit[: k // 2 : 7] = 0.0  # and dead ones among the head
    fit /= fit.sum()

    def both(key_data, p):
        u = Stream(key_data, jnp.int32(1), 2).uniform((n,), p.dtype)
        cdf = jnp.cumsum(p)
        plain = _live_map(p)[jnp.minimum(jnp.searchsorted(cdf, u * cdf[-1], side="right"), k - 1)]
        return plain, _inverse_cdf_bucketed(p, u)

    keys = jax.random.key_data(jax.random.split(jax.random.key(SEED), 4))
    for p in (truth, fit):
        a, b = (np.asarray(x) for x in jax.jit(jax.vmap(both, in_axes=(0, None)))(keys, jnp.asarray(p, jnp.float32)))
        assert np.all(p[b] > 0)
        moved = a != b
        assert moved.mean() < 1e-3
        live = np.flatnonzero(p > 0)
        rank = np.searchsorted(live, np.stack([a[moved], b[moved]]))
        assert np.all(np.abs(rank[0] - rank[1]) == 1)  # a neighbouring live category


# ------------------------------------------------------------------------------ truths and start
def test_zipf_cut_and_wordfreq_truths():
    p = zipf_probs(1.3, 1000)
    np.testing.assert_allclose(p, np.arange(1, 1001) ** -1.3 / np.sum(np.arange(1, 1001) ** -1.3), rtol=1e-12)
    fam = Categorical.zipf(1.3, 1000)
    cut = np.asarray(fam.cut(10), np.float64)
    assert np.count_nonzero(cut) == 10 and cut[:10] == pytest.approx(p[:10] / p[:10].sum(), rel=1e-6)
    for bad in (0, 1001, 2.5):
        with pytest.raises(ValueError, match=r"Categorical.cut: k must be an int in \[1, 1000\]"):
            fam.cut(bad)
    pytest.importorskip("wordfreq")
    en = Categorical.from_wordfreq("en", 500)
    q = np.asarray(en.probs, np.float64)
    assert q.size == 500 and np.all(np.diff(q) <= 0) and q.sum() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="lang must be one of"):
        Categorical.from_wordfreq("xx", 10)
    with pytest.raises(ValueError, match="num_categories must be <="):
        Categorical.from_wordfreq("en", 10**9)


def test_bad_tail_arguments_raise_before_compiling():
    p = [0.5, 0.5]
    for kwargs, match in (
        ({"start": [0.5, 0.6]}, "start must sum to 1"),
        ({"start": [1.0, 0.0, 0.0]}, "start must have K = 2 entries"),
        ({"start": [np.nan, 1.0]}, r"start must be finite, got start\[0\] = nan"),
        ({"train_sizes": [10, 5]}, "train_sizes must be strictly increasing"),
        ({"train_sizes": [0]}, r"train_sizes must hold ints in \[1, 2\^40\]"),
        ({"clean_fraction": 1.5}, r"clean_fraction must lie in \[0, 1\]"),
        ({"smoothing": 0.0}, r"smoothing must lie in \(0, 1\]"),
    ):
        with pytest.raises(ValueError, match=match):
            Categorical(p, **kwargs)
    for kwargs, match in (({"top_k": 0}, r"top_k must lie in \[1, inf\)"), ({"min_p": 1.5}, r"min_p must lie in")):
        with pytest.raises(ValueError, match=match):
            cj.Synthesis(**kwargs)
    with pytest.raises(ValueError, match="top_k needs a Decodable family"):
        cj.simulate(cj.Gaussian(), cj.Replace(), n=5, generations=1, chains=2, synthesis=cj.Synthesis(top_k=2))


def test_start_is_generation_zero_and_memoriser_error_is_exact():
    """With ``start`` (the truth cut at rank k) and generations=0, generation 0 is that
    model exactly, so the memoriser's error is deterministic: sum_k p_k (1 - q_k)^T with
    q = pi p + (1 - pi) p_cut (Tale of Tails' Theorems 2.1 and 3.2 as one call)."""
    beta, k_cats, cut = 1.5, 2000, 50
    sizes = (10, 100, 1_000, 10_000, 100_000)
    fam = Categorical.zipf(beta, k_cats)
    start = fam.cut(cut)
    p = zipf_probs(beta, k_cats)
    q_cut = np.asarray(start, np.float64)
    for pi in (0.0, 0.2):
        chain = Categorical.zipf(beta, k_cats, start=start, train_sizes=sizes, clean_fraction=pi)
        res = cj.simulate(chain, cj.Replace(), n=10, generations=0, chains=2, seed=SEED, metrics=["memoriser_error"])
        got = res.metrics["memoriser_error"][:, 0, :]
        want = memoriser_error(sizes, p, pi * p + (1 - pi) * q_cut)
        np.testing.assert_allclose(got[0], want, rtol=2e-5)  # float32 against float64
        np.testing.assert_array_equal(got[0], got[1])
    # without clean data the error plateaus at the cut tail's mass
    assert want[-1] > 0  # (pi = 0.2 here); at pi = 0 the largest T is within 1e-5 of the tail mass:
    tail = p[cut:].sum()
    res0 = cj.simulate(
        Categorical.zipf(beta, k_cats, start=start, train_sizes=(10**9,)),
        cj.Replace(),
        n=10,
        generations=0,
        chains=1,
        seed=SEED,
        metrics=["memoriser_error", "missing_mass", "support_size"],
    )
    assert res0.metrics["memoriser_error"][0, 0, 0] == pytest.approx(tail, rel=1e-5)
    assert res0.metrics["missing_mass"][0, 0] == pytest.approx(tail, rel=1e-5)
    assert res0.metrics["support_size"][0, 0] == cut


def test_memoriser_error_under_replace_at_generation_zero():
    """E over generation 0's fit (n draws from p) of sum_k p_k (1 - q_k)^T: by the
    multinomial's marginals, E[(1 - c_k / n)^T] is a binomial expectation, summed
    exactly here; the simulator's mean must match at Monte Carlo tolerance."""
    from scipy import stats

    p = zipf_probs(1.2, 30)
    n, sizes, chains = 20, (1, 5, 50), 20_000
    fam = Categorical(p, train_sizes=sizes)
    res = cj.simulate(
        fam, cj.Replace(), n=n, generations=0, chains=chains, seed=SEED, keep="chains", progress=False,
        metrics=["memoriser_error"],
    )  # fmt: skip
    c = np.arange(n + 1)
    pmf = stats.binom.pmf(c[None, :], n, p[:, None])  # (K, n + 1)
    for j, t in enumerate(sizes):
        expected = float(np.sum(p[:, None] * pmf * (1 - c[None, :] / n) ** t))
        x = res.metrics["memoriser_error"][:, 0, j]
        assert_mc_close(x.mean(), x.std(ddof=1) / np.sqrt(chains), expected, label=f"T={t}", rate=1e-4 / 3)


# ------------------------------------------------------------------------------ decoding
@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_top_k_and_min_p_draw_from_the_cut_model(sampler):
    """Generation 1 under Replace with top-k / min-p draws n points from the cut and
    renormalised generation-0 model: with ``start`` fixed, E[p_1] is exactly that model."""
    q = np.array([0.4, 0.25, 0.2, 0.1, 0.05])
    n, chains = 5, 4000  # small n: the kept categories are lost often, so the missing mass varies
    for synth, kept in (
        (cj.Synthesis(top_k=3), q * (np.arange(5) < 3)),
        (cj.Synthesis(min_p=0.3), q * (q >= 0.3 * q.max())),
        (cj.Synthesis(top_k=4, min_p=0.3), q * (q >= 0.3 * q.max())),
    ):
        fam = Categorical(q, start=q, sampler=sampler)
        res = cj.simulate(
            fam, cj.Replace(), n=n, generations=1, chains=chains, seed=SEED, keep="chains", progress=False,
            synthesis=synth, metrics=["l1_to_truth", "support_size", "missing_mass"],
        )  # fmt: skip
        target = kept / kept.sum()
        # the truth is q, so missing_mass_1 = sum_k q_k [p_1k = 0]: its mean over the multinomial
        expected = np.sum(q * (1 - target) ** n)
        x = res.metrics["missing_mass"][:, 1]
        assert_mc_close(
            x.mean(),
            x.std(ddof=1) / np.sqrt(chains),
            expected,
            label=f"top_k={synth.top_k}, min_p={synth.min_p}",
            rate=1e-4 / 6,
        )
        assert np.all(res.metrics["support_size"][:, 1] <= np.count_nonzero(kept))


def test_top_k_sweep_is_one_program_and_ties_are_kept():
    fam = Categorical([0.3, 0.3, 0.2, 0.2])
    q = np.asarray(fam.top_k(fam.probs, 1))
    np.testing.assert_allclose(q, [0.5, 0.5, 0, 0])  # the tie with the first is kept
    np.testing.assert_allclose(np.asarray(fam.min_p(fam.probs, 0.0)), [0.3, 0.3, 0.2, 0.2], rtol=1e-6)
    res = cj.simulate(
        fam, cj.Replace(), n=20, generations=2, chains=16, seed=SEED, progress=False,
        synthesis=cj.Synthesis(top_k=1), sweep={"top_k": [1, 2, 4]}, metrics=["support_size"],
    )  # fmt: skip
    assert res.metrics["support_size"].shape[0] == 3
    assert np.all(res.sel(0).metrics["support_size"][:, 1:] <= 2)


# ------------------------------------------------------------------------------ fixation
def test_fixation_category_law():
    """Seddik et al. (2024): under Replace every category is a martingale, so a chain
    fixes on category k with probability p0_k (cj.theory.categorical.fixation_probability);
    ``fixed_category`` says which one."""
    p0 = np.array([0.5, 0.3, 0.2])
    n, g, chains = 6, 150, 20_000
    res = cj.simulate(
        Categorical(p0), cj.Replace(), n=n, generations=g, chains=chains, seed=SEED, keep="chains",
        progress=False, metrics=["fixed_category"],
    )  # fmt: skip
    last = res.metrics["fixed_category"][:, -1]
    assert np.mean(last < 0) < 1e-3  # P(not fixed by generation 150) is ~1e-9 at n = 6
    law = cat_theory.fixation_probability(p0)
    for k in range(3):
        share = np.mean(last == k)
        assert_mc_close(share, np.sqrt(law[k] * (1 - law[k]) / chains), law[k], label=f"fix on {k}", rate=1e-4 / 3)
    # the fixation event and the category agree: fixed from the event's generation on
    t = res.events["fixation"]
    rows = np.flatnonzero(t >= 0)[:200]
    for r in rows:
        assert np.all(res.metrics["fixed_category"][r, t[r] :] == last[r])
        assert t[r] == 0 or res.metrics["fixed_category"][r, t[r] - 1] == -1


def test_missing_mass_summary_mode_matches_theory():
    """The Zipf truth in summary mode (the default keep): the mean missing mass and
    support size under Replace against the exact Wright-Fisher marginals."""
    p = zipf_probs(1.1, 12)
    n, gens = 15, [0, 3, 10]
    res = cj.simulate(
        Categorical(p), cj.Replace(), n=n, generations=10, chains=20_000, seed=SEED, progress=False,
        metrics=["missing_mass", "support_size"],
    )  # fmt: skip
    for metric, theory in (
        ("missing_mass", cat_theory.missing_mass_mean_replace),
        ("support_size", cat_theory.support_size_mean_replace),
    ):
        mean, se = summary_at(res, metric, gens)
        assert_mc_close(mean, se, theory(np.array(gens), n, p), label=metric, rate=1e-4 / 2)


def test_memoriser_train_sizes_are_the_xarray_coordinate(tmp_path):
    """The memoriser's T axis is an indexed coordinate in memory and on disk, in both
    keep modes, so ``ds.sel(train_size=T)`` picks one T."""
    sizes = (10, 100, 1000)
    fam = Categorical.zipf(1.5, 50, train_sizes=sizes)
    for keep in ("chains", "summary"):
        res = cj.simulate(
            fam, cj.Replace(), n=100, generations=2, chains=16, seed=SEED, keep=keep, progress=False,
            metrics=["memoriser_error"],
        )  # fmt: skip
        ds = res.to_xarray()
        np.testing.assert_array_equal(ds["train_size"].values, sizes)
        np.testing.assert_array_equal(
            ds["memoriser_error"].sel(train_size=100).values, res.metrics["memoriser_error"][..., 1]
        )
        back = cj.load(res.save(tmp_path / f"run_{keep}.nc")).to_datatree()
        np.testing.assert_array_equal(back["train_size"].values, sizes)
        if keep == "summary":
            np.testing.assert_array_equal(back["/summary/metrics"]["train_size"].values, sizes)
