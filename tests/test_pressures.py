"""Pressures and defences (cj.Pressured, cj.Schedule, cj.Provenance): limiting cases
reproduce the plain regimes, closed forms (THEORY.md section 13) hold, bad input is
refused before compiling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import SEED, assert_mc_close, assert_same_draws, summary_at

import collapse_jax as cj
from collapse_jax import theory as T
from collapse_jax.engine.kernel import trace_counts

GENS = [0, 1, 3, 6]


def run(family, regime=None, *, n=20, generations=6, chains=2000, **kw):
    return cj.simulate(family, regime or cj.Replace(), n=n, generations=generations, chains=chains, seed=SEED, **kw)


# ------------------------------------------------------------------ limiting cases: the same draws
LIMITS = [
    dict(temperature=1.0),
    dict(truncate=1.0),
    dict(false_accept=1.0),  # a verifier that accepts everything
    dict(support=1.0),  # a perfect verifier for which every point is good
    dict(correct=0.0),
    dict(temperature=1.0, truncate=1.0, support=1.0, correct=0.0),
]


CASES = [(kw, cj.Replace()) for kw in LIMITS] + [(LIMITS[-1], cj.FreshMix(0.3)), (LIMITS[-1], cj.Accumulate())]


@pytest.mark.parametrize("kw,regime", CASES, ids=lambda x: ",".join(x) if isinstance(x, dict) else type(x).__name__)
def test_neutral_pressures_reproduce_the_plain_regime(kw, regime):
    plain = run(cj.Gaussian(), regime, chains=64, generations=4)
    pressed = run(cj.Pressured(cj.Gaussian(), **kw), regime, chains=64, generations=4)
    assert_same_draws(plain, pressed, ["variance", "mean_sq_error", "tail_mass"])


def test_neutral_pressures_on_other_families():
    cat = cj.Categorical([0.5, 0.3, 0.15, 0.05])
    assert_same_draws(
        run(cat, chains=64), run(cj.Pressured(cat, temperature=1.0, truncate=1.0), chains=64), ["entropy"]
    )
    ridge = cj.Ridge(dim=3, design="fresh")
    assert_same_draws(
        run(ridge, chains=64, n=12),
        run(cj.Pressured(ridge, correct=0.0, false_accept=1.0), chains=64, n=12),
        ["test_error"],
    )


def test_temperature_one_keeps_the_exact_path():
    fam = cj.Gaussian(sampler="exact")
    assert_same_draws(
        run(fam, chains=256), run(cj.Pressured(fam, temperature=1.0), chains=256), ["variance", "mean_sq_error"]
    )


def test_constant_schedule_is_replace():
    plain = run(cj.Gaussian(), chains=128)
    sched = run(cj.Gaussian(), cj.Schedule([20] * 7), chains=128)
    assert_same_draws(plain, sched, ["variance", "mean_sq_error"])


def test_a_sweep_over_a_pressure_shares_random_numbers_with_plain_runs():
    res = run(cj.Pressured(cj.Gaussian(), temperature=0.9), chains=128, sweep={"temperature": [0.8, 1.0]})
    plain = run(cj.Gaussian(), chains=128)
    assert_same_draws(res.sel(1), plain, ["variance"])
    assert np.mean(res.sel(0).metrics["variance"][:, -1]) < np.mean(plain.metrics["variance"][:, -1])


# ------------------------------------------------------------------ sampling bias: theory
@pytest.mark.parametrize(
    "kw,sampler",
    [
        (dict(temperature=0.9), "exact"),
        (dict(temperature=1.1), "samples"),
        (dict(truncate=0.9), "samples"),
        (dict(truncate=0.5, temperature=1.2), "samples"),
    ],
)
def test_sampling_bias_variance_decays_geometrically(kw, sampler):
    fam = cj.Pressured(cj.Gaussian(sampler=sampler), **kw)
    res = run(fam, n=20, chains=4000)
    expected = T.pressure_variance_mean(np.array(GENS), 20, "mle", **kw)
    mean, se = summary_at(res, "variance", GENS)
    assert_mc_close(mean, se, expected, label=f"variance {kw}")


@pytest.mark.parametrize("kw", [dict(truncate=0.8), dict(temperature=0.7, truncate=0.95)])
def test_sampling_bias_known_variance_mean_error(kw):
    res = run(cj.Pressured(cj.Gaussian(learn_cov=False), **kw), n=10, chains=4000)
    mean, se = summary_at(res, "mean_sq_error", GENS)
    assert_mc_close(mean, se, T.pressure_mean_sq_error(np.array(GENS), 10, **kw), label=f"mse {kw}")


def test_truncation_in_two_dimensions_uses_candidates():
    """d-D truncation (candidates kept inside the Mahalanobis ball of mass q):
    E tr Sigma_g follows r (r v_2(q))^g, v_2(q) = F_4(c)/q."""
    res = run(cj.Pressured(cj.Gaussian(dim=2), truncate=0.8), n=20, chains=3000)
    mean, se = summary_at(res, "trace_ratio", GENS)
    expected = T.pressure_variance_mean(np.array(GENS), 20, "mle", truncate=0.8, dim=2)
    assert_mc_close(mean, se, expected, label="2-D truncation")


def test_truncation_acceptance_rate_is_the_kept_mass():
    res = run(cj.Pressured(cj.Gaussian(dim=2), truncate=0.7), n=50, chains=500, generations=2)
    mean, se = summary_at(res, "accept_rate", [0, 1, 2])
    assert_mc_close(mean, se, np.full(3, 0.7), label="accept_rate")
    assert np.all(np.asarray(res.metrics["shortfall"]) == 0)


def test_truncation_kills_tails_before_the_variance():
    """Early collapse (tail mass) precedes late collapse (variance) under truncation."""
    res = run(cj.Pressured(cj.Gaussian(), truncate=0.9), n=100, generations=15, chains=1000)
    tail = np.mean(np.asarray(res.metrics["tail_mass"]), axis=0)
    var = np.mean(np.asarray(res.metrics["variance"]), axis=0)
    g_tail = int(np.argmax(tail < 0.01 * tail[0]))
    g_var = int(np.argmax(var < 0.01 * var[0]))
    assert tail[-1] < 0.01 * tail[0] and var[-1] < 0.01 * var[0]
    assert g_tail + 3 <= g_var, (g_tail, g_var)
    # per chain: every chain loses 99 % of its tail mass before 99 % of its variance
    t = np.asarray(res.metrics["tail_mass"])
    v = np.asarray(res.metrics["variance"])
    first = lambda x, ref: np.argmax(x < 0.01 * ref[:, None], axis=1)  # noqa: E731
    assert np.all(first(t, t[:, 0]) < first(v, v[:, 0]))


def test_categorical_top_p_and_temperature():
    # top-p 0.9 of a fit to 500 draws from (0.6, 0.37, 0.03): the nucleus is the first two categories
    # (their fitted mass is ~0.97 +- 0.008), so the 3 % category dies at generation 1 in every chain
    cat3 = cj.Categorical([0.6, 0.37, 0.03], rare_below=0.1)
    res = run(cj.Pressured(cat3, truncate=0.9), n=500, generations=2, chains=500)
    rare = np.asarray(res.metrics["rare_mass"])
    assert np.all(rare[:, 0] > 0) and np.all(rare[:, 1:] == 0)
    mean, se = summary_at(res, "accept_rate", [0])
    assert_mc_close(mean, se, [0.97], label="nucleus mass")
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    cat = cj.Categorical(probs, rare_below=0.1)
    # temperature 0.5: E[sum p_hat^2] after one generation from p_tau (p_0 itself is random: exact only
    # at generation 0 -> 1 conditional on p_0; compare the one-step law from the truth instead)
    n, tau = 50, 0.5
    res = run(cj.Pressured(cat, temperature=tau), cj.Schedule([10_000, n]), n=10_000, generations=1, chains=2000)
    pt = probs ** (1 / tau) / np.sum(probs ** (1 / tau))
    s2 = np.sum(pt**2)
    expected = s2 + (1 - s2) / n  # E sum p_hat^2 for p_hat ~ Multinomial(n, p_tau)/n, p_0 ~ p to 1/10^4
    mean, se = summary_at(res, "collision_probability", [1])
    assert_mc_close(mean, se, [expected], label="categorical temperature", rate=1e-4)


def test_gmm_and_kde_filters_use_monte_carlo_quantiles():
    gmm = cj.GMM(components=2, truth=([0.5, 0.5], [[-2.0], [2.0]], [[[1.0]], [[1.0]]]))
    res = run(cj.Pressured(gmm, truncate=0.8, temperature=0.9), n=100, generations=2, chains=64)
    rate = np.asarray(res.metrics["accept_rate"])
    assert abs(np.mean(rate) - 0.8) < 0.02, np.mean(rate)
    kde = cj.KDE(bandwidth=0.3)
    res = run(cj.Pressured(kde, truncate=0.8), n=50, generations=2, chains=32)
    assert abs(np.mean(np.asarray(res.metrics["accept_rate"])) - 0.8) < 0.03


# ------------------------------------------------------------------ verification
def test_verifier_acceptance_at_the_truth():
    """A model equal to the truth (known variance, n = 10^4) passes a fraction
    s (1 - fr) + (1 - s) fa of its points."""
    s, fa, fr = 0.9, 0.2, 0.1
    fam = cj.Pressured(cj.Gaussian(learn_cov=False), support=s, false_accept=fa, false_reject=fr)
    res = run(fam, n=10_000, generations=0, chains=200)
    mean, se = summary_at(res, "accept_rate", [0])
    assert_mc_close(mean, se, [s * (1 - fr) + (1 - s) * fa], label="verifier acceptance")


def test_a_perfect_verifier_bounds_the_replace_chain():
    """Feng et al. (ICLR 2025): verified synthetic data stop collapse. Known variance,
    Replace: the unverified error grows like g/n; a perfect verifier on the truth's
    central 50 % keeps it below the first generation's."""
    plain = run(cj.Gaussian(learn_cov=False), n=10, generations=40, chains=2000)
    verified = run(cj.Pressured(cj.Gaussian(learn_cov=False), support=0.5), n=10, generations=40, chains=2000)
    p, _ = summary_at(plain, "mean_sq_error", [40])
    v, _ = summary_at(verified, "mean_sq_error", [40])
    assert v[0] < 0.1 and p[0] > 3.0, (v, p)


def test_a_short_candidate_pool_fails_open_and_says_so():
    """oversample=1 behind a verifier that rejects half the points: the draw cannot
    fill its slots; the run goes on (slots take rejected candidates) and the
    shortfall metric is 1 in every chain."""
    fam = cj.Pressured(cj.Gaussian(), support=0.5, oversample=1)
    res = run(fam, n=50, generations=3, chains=64)
    assert np.all(np.asarray(res.metrics["shortfall"]) == 1.0)
    assert np.all(np.isfinite(np.asarray(res.metrics["variance"])))
    # one candidate per slot: the kept points are a permutation of the unfiltered draw (passing ones
    # first), so the fits equal the plain run's up to summation order
    assert_same_draws(res, run(cj.Gaussian(), n=50, generations=3, chains=64), ["variance", "mean_sq_error"])
    auto = cj.Pressured(cj.Gaussian(), support=0.5).for_run(cj.Replace(), 50, 3)
    assert auto.candidates() >= 3  # the automatic pool for a design rate of 1/2 at n = 50


# ------------------------------------------------------------------ self-correction
@pytest.mark.parametrize("learn_var", [True, False])
@pytest.mark.parametrize("gamma", [0.2, 0.6])
def test_self_correction_moments(gamma, learn_var):
    res = run(cj.Pressured(cj.Gaussian(learn_cov=learn_var), correct=gamma), n=10, generations=12, chains=4000)
    gens = [0, 2, 6, 12]
    th = T.correction_moments(np.array(gens), 10, gamma, "mle", learn_var=learn_var)
    for metric, key in (("mean_sq_error", "mean_sq_error"), ("variance", "variance"), ("sd", "sd")):
        if not learn_var and metric != "mean_sq_error":
            continue
        mean, se = summary_at(res, metric, gens)
        assert_mc_close(mean, se, th[key], label=f"correction {metric} gamma={gamma}")


def test_full_correction_of_regression_labels_is_fresh_real_data():
    ridge = cj.Ridge(dim=3, design="fresh")
    res = run(cj.Pressured(ridge, correct=1.0), n=12, generations=5, chains=4000)
    fresh = run(ridge, cj.FreshMix(1.0), n=12, generations=5, chains=4000)
    a = np.asarray(res.metrics["test_error"])[:, 5]
    b = np.asarray(fresh.metrics["test_error"])[:, 5]
    se = math.sqrt(np.var(a) / a.size + np.var(b) / b.size)
    assert_mc_close(np.mean(a) - np.mean(b), se, 0.0, label="gamma = 1 is fresh data")


# ------------------------------------------------------------------ provenance
@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_provenance_is_binomial_freshmix(sampler):
    alpha, eps, eta, n = 0.4, 0.3, 0.1, 10
    regime = cj.Provenance(alpha, false_real=eps, false_synthetic=eta)
    res = run(cj.Gaussian(learn_cov=False, sampler=sampler), regime, n=n, generations=30, chains=4000)
    gens = [1, 5, 30]
    mean, se = summary_at(res, "mean_sq_error", gens)
    expected = T.provenance_mean_sq_error(np.array(gens), n, alpha, eps, eta)
    assert_mc_close(mean, se, expected, label=f"provenance {sampler}")
    rho = T.effective_real_fraction(alpha, eps, eta)
    assert rho == pytest.approx(0.36 / (0.36 + 0.18))


def test_perfect_detector_trains_on_real_data_only():
    res = run(cj.Gaussian(learn_cov=False), cj.Provenance(0.2), n=10, generations=20, chains=3000)
    mean, se = summary_at(res, "mean_sq_error", [20])
    assert_mc_close(mean, se, [0.1], label="eps = eta = 0 is fresh real data")


# ------------------------------------------------------------------ schedules
@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_schedule_sums(sampler):
    sizes = np.array([5, 8, 13, 21, 34, 55, 89])
    res = run(cj.Gaussian(learn_cov=False, sampler=sampler), cj.Schedule(sizes), n=89, chains=4000)
    mean, se = summary_at(res, "mean_sq_error", range(7))
    assert_mc_close(mean, se, T.schedule_mean_sq_error(sizes), label="schedule mse")
    res = run(cj.Gaussian(sampler=sampler), cj.Schedule(sizes), n=89, chains=4000)
    mean, se = summary_at(res, "variance", range(7))
    assert_mc_close(mean, se, T.schedule_variance_mean(sizes, "mle"), label="schedule variance")


def test_superlinear_schedule_stays_bounded():
    s = cj.Schedule.power(4, 2.0, 30)
    assert np.asarray(s.sizes)[:3].tolist() == [4, 16, 36]
    th = T.schedule_mean_sq_error(np.asarray(s.sizes))
    assert th[-1] < math.pi**2 / 24  # sum_g 1/(4 (g + 1)^2) < pi^2 / 24: bounded


# ------------------------------------------------------------------ theory values
def test_truncation_factor_values():
    assert T.truncation_variance_factor(1.0) == 1.0
    assert T.truncation_variance_factor(0.9) == pytest.approx(0.62301, abs=2e-5)
    # small q: uniform on [-z, z] with z ~ q sqrt(pi/2): variance z^2 / 3
    assert T.truncation_variance_factor(1e-4) == pytest.approx((1e-4) ** 2 * math.pi / 6, rel=1e-3)
    from scipy import stats

    for q in (0.3, 0.68, 0.95):
        z = stats.norm.ppf(0.5 + q / 2)
        assert T.truncation_variance_factor(q) == pytest.approx(stats.truncnorm(-z, z).var(), rel=1e-9)
        # the d-D formula at d = 1 agrees, and at d = 3 matches a numerical integral of r^2 over the ball
        c1 = stats.chi2.ppf(q, 1)
        assert stats.chi2.cdf(c1, 3) / q == pytest.approx(T.truncation_variance_factor(q), rel=1e-9)
        c3 = stats.chi2.ppf(q, 3)
        num = stats.chi2(3).expect(lambda r2: r2, lb=0, ub=c3) / (3 * q)
        assert T.truncation_variance_factor(q, dim=3) == pytest.approx(num, rel=1e-7)


def test_provenance_maps_onto_freshmix():
    # rho from the rates; FreshMix at rho differs only by the binomial term rho (1 - rho) / n
    n, a, e, h = 1000, 0.3, 0.05, 0.1
    rho = T.effective_real_fraction(a, e, h)
    binom = T.provenance_steady_state(n, a, e, h)
    fixed = T.provenance_steady_state(n, a, e, h, binomial=False)
    assert binom == pytest.approx(fixed, rel=5e-3) and binom > fixed
    assert fixed == pytest.approx(T.freshmix_steady_state(n, rho), rel=1e-12)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=-1.0), "temperature"),
        (dict(truncate=0.0), "truncate"),
        (dict(truncate=1.5), "truncate"),
        (dict(support=0.0), "support"),
        (dict(false_accept=-0.1), "false_accept"),
        (dict(false_reject=1.1), "false_reject"),
        (dict(false_reject=1.0), "rejects every point"),
        (dict(correct=1.5), "correct"),
        (dict(truncate=0.9, oversample=0), "oversample"),
    ],
)
def test_bad_pressures_are_refused(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cj.Pressured(cj.Gaussian(), **kw)


def test_missing_hooks_and_paths_are_refused():
    with pytest.raises(ValueError, match="temper"):
        cj.Pressured(cj.KDE(bandwidth=0.3), temperature=0.9)
    with pytest.raises(ValueError, match="correct"):
        cj.Pressured(cj.Categorical([0.5, 0.5]), correct=0.5)
    with pytest.raises(ValueError, match="fixed design"):
        cj.Pressured(cj.Ridge(dim=2, design="fixed"), truncate=0.9)
    with pytest.raises(ValueError, match="sampler='exact'"):
        run(cj.Pressured(cj.Gaussian(sampler="exact"), truncate=0.9), chains=4)
    with pytest.raises(TypeError, match="Pressured"):
        cj.Pressured(cj.Pressured(cj.Gaussian(), temperature=0.9), truncate=0.9)
    with pytest.raises(ValueError, match="simulate_graph: .*sampler='exact'"):
        cj.simulate_graph(
            cj.Pressured(cj.Gaussian(sampler="exact"), truncate=0.9), cj.InteractionGraph.ring(3), n=10,
            generations=1, chains=2,
        )  # fmt: skip
    with pytest.raises(ValueError, match="simulate_graph: filters draw more candidates"):
        cj.simulate_graph(
            cj.Ridge(dim=2), cj.InteractionGraph.ring(3), n=10, generations=1, chains=2,
            synthesis=cj.Synthesis(truncate=0.9),
        )  # fmt: skip
    with pytest.raises(ValueError, match="truncate must lie"):
        run(cj.Pressured(cj.Gaussian(), truncate=0.9), chains=4, sweep={"truncate": [0.5, 0.0]})


@pytest.mark.parametrize(
    "sizes,n,generations,match",
    [
        ([10, 10, 1], 10, 2, "minimum"),
        ([10, 10], 10, 2, "generations \\+ 1"),
        ([10, 20, 10], 10, 2, "exceeds n=10"),
        ([10, 0], 10, 1, ">= 1"),
        ([[10]], 10, 0, "1-D"),
        ([10.5, 10], 10, 1, "integers"),
    ],
)
def test_bad_schedules_are_refused(sizes, n, generations, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cj.simulate(cj.Gaussian(), cj.Schedule(sizes), n=n, generations=generations, chains=2)


def test_bad_provenance_is_refused():
    with pytest.raises(ValueError, match="false_real"):
        cj.Provenance(0.5, false_real=2.0)
    with pytest.raises(ValueError, match="pool_real_fraction"):
        cj.Provenance(-0.1)
    with pytest.raises(ValueError, match="labelled real"):
        cj.Provenance(0.0, false_real=0.0)
    with pytest.raises(ValueError, match="design='fresh'"):
        cj.simulate(cj.Ridge(dim=2, design="fixed"), cj.Provenance(0.5), n=10, generations=1, chains=2)


# ------------------------------------------------------------------ the synthesis beside the family
def _same(a, b):
    for k in a.metrics:
        np.testing.assert_array_equal(np.asarray(a.metrics[k]), np.asarray(b.metrics[k]), err_msg=k)


def test_pressured_is_the_family_with_a_synthesis():
    kw = dict(n=20, generations=3, chains=16)
    fam = cj.Gaussian()
    a = run(cj.Pressured(fam, temperature=0.9, truncate=0.9), **kw)
    b = run(fam, synthesis=cj.Synthesis(temperature=0.9, truncate=0.9), **kw)
    _same(a, b)
    assert a.config["family"] == fam.describe() and a.config["synthesis"]["temperature"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="give the synthesis once"):
        run(cj.Pressured(fam, temperature=0.9), synthesis=cj.Synthesis(truncate=0.9), **kw)
    with pytest.raises(TypeError, match="synthesis must be a cj.Synthesis"):
        run(fam, synthesis={"temperature": 0.9}, **kw)


def test_pressured_keeps_the_exact_path_of_a_subsampling_family():
    """Was: a tempered exact Categorical under AccumulateSubsample failed while the bare family ran."""
    fam = cj.Categorical([0.5, 0.3, 0.2], sampler="exact")
    res = run(cj.Pressured(fam, temperature=0.9), cj.AccumulateSubsample(), n=20, generations=3, chains=8)
    assert res.config["sampler"] == "exact"
    assert np.all(np.isfinite(np.asarray(res.metrics["entropy"])))


def test_pressured_keeps_a_fixed_design_and_its_sweepable_fields():
    """Was: Pressured(Ridge(dim=2), correct=...) lost the fixed design, and a sweep over lam was refused."""
    ridge = cj.Ridge(dim=2)
    kw = dict(n=12, generations=3, chains=16)
    assert run(cj.Pressured(ridge, correct=0.2), **kw).config["family"]["design"] == "fixed"
    _same(run(cj.Pressured(ridge, correct=0.0), **kw), run(ridge, **kw))  # gamma = 0 is the plain fixed-design run
    swept = run(cj.Pressured(ridge, correct=0.2), sweep={"lam": [0.0, 0.5]}, **kw)
    for i, lam in enumerate([0.0, 0.5]):
        alone = run(cj.Pressured(cj.Ridge(dim=2, lam=lam), correct=0.2), **kw)
        np.testing.assert_allclose(
            np.asarray(swept.sel(i).metrics["test_error"]), np.asarray(alone.metrics["test_error"]), rtol=1e-5
        )


def test_pressured_fixed_design_under_provenance_is_refused_before_tracing():
    """Was: a fixed-design Ridge under Pressured + Provenance failed during tracing."""
    before = trace_counts()
    with pytest.raises(ValueError, match="design='fresh'"):
        run(cj.Pressured(cj.Ridge(dim=2), correct=0.2), cj.Provenance(0.5), n=10, generations=2, chains=4)
    assert trace_counts() == before


def test_sweeps_reach_synthesis_fields_by_name():
    res = run(cj.Gaussian(), synthesis=cj.Synthesis(temperature=0.9), n=20, generations=3, chains=16,
              sweep={"synthesis.temperature": [0.8, 1.0]})  # fmt: skip
    alone = run(cj.Gaussian(), synthesis=cj.Synthesis(temperature=1.0), n=20, generations=3, chains=16)
    for k in alone.metrics:
        np.testing.assert_allclose(
            np.asarray(res.sel(1).metrics[k]), np.asarray(alone.metrics[k]), rtol=1e-5, atol=1e-7
        )
    with pytest.raises(ValueError, match="synthesis step the run does not have"):
        run(cj.Gaussian(), n=20, generations=3, chains=4, sweep={"truncate": [0.8, 0.9]})
