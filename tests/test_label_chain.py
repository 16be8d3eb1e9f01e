"""The label chain (collapse_jax.families.label_chain): Hutter's memoriser relabelled by
its own previous fit (Dohmatob et al. 2024, "A Tale of Tails", section 3), against the
exact mean error of `collapse_jax.theory.tails.label_chain_error` at Monte Carlo
tolerance, under Replace (the theory's per-draw clean share), FreshMix (a fixed real
count: the effective share r/n + (1 - r/n) pi) and Schedule (a T schedule); the fit's
draw choice and default labels; bad input; the describe() round trip."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED, assert_mc_close, summary_at, z_for

import collapse_jax as cj
from collapse_jax._rng import Stream
from collapse_jax.engine.kernel import trace_counts
from collapse_jax.families.label_chain import LabelChain, LabelledInputs
from collapse_jax.theory import tails

K, BETA, T, G, CHAINS = 40, 1.0, 40, 6, 10_000
GENS = list(range(G + 1))
METRICS = ["test_error", "seen_mass", "inherited_error"]


def run(fam, regime, n=T):
    return cj.simulate(
        fam, regime, n=n, generations=G, chains=CHAINS, seed=SEED, keep="chains", progress=False, metrics=METRICS
    )


def truth_probs(fam) -> np.ndarray:
    return np.asarray(fam.probs, np.float64)


def expected(fam, sizes, pi, labels):
    """E[test_error] at GENS, E[seen_mass] at GENS and E[inherited_error] at GENS[1:],
    exactly: the theory's E_g, 1 - sum_i p_i r_i, and E_g - l sum_i p_i r_i (the unseen
    inputs' default errors), r_i = (1 - p_i)^T_g. (inherited_error is exactly 0 at
    generation 0, checked by :func:`observed`.)"""
    p = truth_probs(fam)
    err = tails.label_chain_error(np.array(GENS), sizes, p, num_labels=labels, clean_fraction=pi)
    t = np.broadcast_to(np.asarray(sizes, np.float64), (G + 1,))[GENS]
    missed = np.array([tails.memoriser_error(ti, p, p) for ti in t])
    ell = 1.0 - 1.0 / labels
    return np.concatenate([err, 1.0 - missed, (err - ell * missed)[1:]])


def observed(res):
    """(mean, se) over chains of the metrics :func:`expected` gives."""
    assert np.all(res.metrics["inherited_error"][:, 0] == 0), "generation 0 is labelled by the truth"
    pairs = [summary_at(res, m, GENS if m != "inherited_error" else GENS[1:]) for m in METRICS]
    return np.concatenate([m for m, _ in pairs]), np.concatenate([s for _, s in pairs])


def assert_rejected(mean, se, wrong, label):
    """The test has power: a law that differs from the claimed one is rejected."""
    n = mean.size
    dev = np.abs(mean - wrong) / se
    assert np.max(dev) > 2 * z_for(n), f"{label}: the alternative is not rejected (max z {np.max(dev):.1f})"


def stream(i=0, s=0):
    return Stream(jnp.array([SEED, i], jnp.uint32), jnp.int32(0), s)


# ------------------------------------------------------------------------------ against the theory
def test_replace_matches_label_chain_error_for_finite_and_infinite_labels_and_clean_shares():
    """Replace runs the theory's model exactly: per-draw clean labels with probability pi,
    default labels right with probability 1/L. Traced pi and L: one compiled program."""
    baseline = None
    before = None
    for labels, pi in ((math.inf, 0.0), (3, 0.0), (math.inf, 0.3), (4, 0.25)):
        fam = LabelChain.zipf(BETA, K, num_labels=None if math.isinf(labels) else labels, clean_fraction=pi)
        res = run(fam, cj.Replace())
        if before is not None:
            assert trace_counts() == before, "a new clean_fraction or num_labels recompiled"
        before = trace_counts()
        mean, se = observed(res)
        assert_mc_close(mean, se, expected(fam, T, pi, labels), label=f"Replace L={labels} pi={pi}")
        if baseline is None:
            baseline = expected(fam, T, 0.0, math.inf)
        else:
            assert_rejected(mean, se, baseline, f"L={labels} pi={pi} vs L=inf pi=0")
    assert res.metrics["test_error"].shape == (CHAINS, G + 1)


def test_fresh_mix_matches_the_theory_with_the_effective_clean_share():
    """FreshMix(rho) trains on r = floor(rho n + 1/2) real and n - r model draws; the
    stored draw of an input is a uniformly chosen one, so it is real with probability
    r/n: the theory with pi_eff = r/n + (1 - r/n) pi. The 'first slot' rule (real
    points first: clean whenever any real draw hit the input) is rejected."""
    for rho, pi in ((0.3, 0.0), (0.25, 0.2)):
        fam = LabelChain.zipf(BETA, K, clean_fraction=pi)
        res = run(fam, cj.FreshMix(rho))
        mean, se = observed(res)
        r = math.floor(rho * T + 0.5)
        pi_eff = r / T + (1 - r / T) * pi
        assert_mc_close(mean, se, expected(fam, T, pi_eff, math.inf), label=f"FreshMix rho={rho} pi={pi}")
        # first slot: input i's label is clean iff a real draw hit it or the first model draw is clean
        p = truth_probs(fam)
        e, first_slot = np.zeros(K), []
        for g in GENS:
            unseen = (1 - p) ** T
            only_model = (1 - p) ** r - unseen
            e = unseen if g == 0 else unseen + only_model * (1 - pi) * e
            first_slot.append(e @ p)
        assert_rejected(mean[: G + 1], se[: G + 1], np.array(first_slot), f"FreshMix rho={rho}: first slot")


def test_schedule_matches_the_theory_with_a_size_schedule():
    sizes = [40, 20, 60, 10, 40, 25, 60]
    fam = LabelChain.zipf(BETA, K, num_labels=5, clean_fraction=0.1)
    res = run(fam, cj.Schedule(sizes), n=max(sizes))
    mean, se = observed(res)
    assert_mc_close(mean, se, expected(fam, np.array(sizes), 0.1, 5), label="Schedule")
    assert_rejected(mean, se, expected(fam, T, 0.1, 5), "Schedule vs constant T")


# ------------------------------------------------------------------------------ the fit and the sampler
def test_fit_stores_a_uniformly_chosen_draw_and_default_labels():
    """Input 0 drawn three times (right, wrong, wrong; the right one in the first slot):
    right with probability 1/3. Input 1 drawn once, wrong. Input 2's only draw has
    weight 0: unseen. Input 3 never drawn. Unseen inputs are right with probability 1/L."""
    data = LabelledInputs(jnp.array([0, 0, 0, 1, 2], jnp.int32), jnp.array([True, False, False, False, True]))
    weights = jnp.array([1.0, 1.0, 1.0, 1.0, 0.0])
    count = 20_000
    ids = jnp.arange(count, dtype=jnp.uint32)
    checks = []
    for labels in (4, None):
        fam = LabelChain([0.25] * 4, num_labels=labels)
        fit = jax.jit(jax.vmap(lambda i, w, f=fam: f.fit(stream(i), data, w), in_axes=(0, None)))
        table = fit(ids, weights)
        again = fit(ids, 7.5 * weights)  # only w > 0 matters
        np.testing.assert_array_equal(np.asarray(table.correct), np.asarray(again.correct))
        np.testing.assert_array_equal(np.asarray(table.seen), np.array([[True, True, False, False]] * count))
        assert not np.any(np.asarray(table.correct)[:, 1])
        right = np.asarray(table.correct, np.float64)
        p_default = 0.0 if labels is None else 1.0 / labels
        for col, prob in ((0, 1 / 3), (2, p_default), (3, p_default)):
            checks.append((right[:, col].mean(), max(math.sqrt(prob * (1 - prob) / count), 1e-12), prob))
    mean, se, want = (np.array(x) for x in zip(*checks))
    exact = se == 1e-12  # L = inf: never right, exactly
    assert np.all(mean[exact] == want[exact])
    assert_mc_close(mean[~exact], se[~exact], want[~exact], label="fit: draw choice and defaults")


def test_sample_labels_by_the_truth_with_the_clean_share():
    fam = LabelChain.zipf(BETA, K, clean_fraction=0.3)
    wrong = fam.truth()
    wrong = type(wrong)(correct=jnp.zeros((K,), bool), seen=wrong.seen)
    n = 200_000
    x = fam.sample(stream(), wrong, n)
    assert x.index.shape == (n,) and x.index.dtype == jnp.int32 and x.correct.dtype == jnp.bool_
    share = float(np.mean(np.asarray(x.correct)))
    assert_mc_close(share, math.sqrt(0.3 * 0.7 / n), 0.3, label="clean share")
    real = fam.sample_real(stream(), n)
    assert bool(np.all(np.asarray(real.correct)))
    np.testing.assert_array_equal(np.asarray(real.index), np.asarray(x.index))  # same inputs, other labels
    counts = np.bincount(np.asarray(x.index), minlength=K)
    p = truth_probs(fam)
    assert_mc_close(counts / n, np.sqrt(p * (1 - p) / n), p, label="inputs drawn from the truth")


# ------------------------------------------------------------------------------ configuration
def test_bad_input_raises_before_compiling_naming_the_parameter():
    before = trace_counts()
    cases = [
        (lambda: LabelChain([0.5, 0.6]), ValueError, "probs must sum to 1"),
        (lambda: LabelChain([1.5, -0.5]), ValueError, r"probs must be >= 0, got probs\[1\]"),
        (lambda: LabelChain([[0.5, 0.5]]), ValueError, "probs must be a 1-D vector"),
        (lambda: LabelChain([np.nan, 1.0]), ValueError, "probs must be finite"),
        (lambda: LabelChain("ab"), TypeError, "probs must be a 1-D array"),
        (lambda: LabelChain([0.5, 0.5], num_inputs=3), ValueError, r"num_inputs \(K\) = 3 but probs has 2"),
        (lambda: LabelChain.zipf(0.0, 10), ValueError, "beta must be a finite number > 0"),
        (lambda: LabelChain.zipf(math.inf, 10), ValueError, "beta must be a finite number > 0"),
        (lambda: LabelChain.zipf("1", 10), TypeError, "beta must be"),
        (lambda: LabelChain.zipf(1.0, 0), ValueError, r"num_inputs \(K\) must be an int in \[1, 2\^24\]"),
        (lambda: LabelChain.zipf(1.0, 2.5), TypeError, r"num_inputs \(K\) must be an int"),
        (lambda: LabelChain([0.5, 0.5], num_labels=1), ValueError, r"num_labels must be an int in \[2, 2\^24\]"),
        (lambda: LabelChain([0.5, 0.5], num_labels=2.5), TypeError, "num_labels must be an int"),
        (lambda: LabelChain([0.5, 0.5], num_labels=True), TypeError, "num_labels must be an int"),
        (lambda: LabelChain([0.5, 0.5], clean_fraction=1.5), ValueError, r"clean_fraction must lie in \[0, 1\]"),
        (lambda: LabelChain([0.5, 0.5], clean_fraction="x"), TypeError, "clean_fraction must be a number"),
        (lambda: LabelChain([0.5, 0.5]).sample(stream(), LabelChain([0.5, 0.5]).truth(), 0), ValueError, "n must"),
        (
            lambda: cj.simulate(LabelChain([0.5, 0.5]), cj.Weighted(0.5), n=4, generations=1, chains=2, progress=False),
            ValueError,
            "LabelChain: Weighted",
        ),
    ]
    for make, error, match in cases:
        with pytest.raises(error, match=match):
            make()
    assert trace_counts() == before, "an invalid configuration reached the compiler"


@pytest.mark.parametrize(
    "fam",
    [
        LabelChain.zipf(1.1, 30, num_labels=4, clean_fraction=0.25),
        LabelChain([0.5, 0.3, 0.2]),
        LabelChain([0.5, 0.5 + 5e-7, 0.0], num_labels=2),
    ],
    ids=["zipf", "plain", "within tolerance"],
)
def test_describe_round_trips_through_the_constructor(fam):
    d = json.loads(json.dumps(fam.describe()))
    assert d.pop("family") == "LabelChain"
    again = LabelChain(**d)
    assert again.describe() == fam.describe()
    np.testing.assert_array_equal(np.asarray(again.probs), np.asarray(fam.probs))
    assert float(again.num_labels) == float(fam.num_labels)
    assert float(again.clean_fraction) == float(fam.clean_fraction)
    assert set(fam.metric_names()) == set(METRICS)
