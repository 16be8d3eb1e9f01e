"""Selection (THEORY.md section 17): reward curation, verifiers with their own
knowledge, label verification, partial editing and a fixed teacher. Simulation
against the exact theory (``cj.theory.selection``) at Monte Carlo tolerance, the
neutral limits bit for bit, and bad input refused before compiling."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SEED, assert_mc_close, assert_same_draws, summary_at
from scipy.stats import norm

import collapse_jax as cj
from collapse_jax.theory import selection as S


def run(family, regime=None, *, n=12, generations=4, chains=4000, **kw):
    kw.setdefault("progress", False)
    return cj.simulate(family, regime or cj.Replace(), n=n, generations=generations, chains=chains, seed=SEED, **kw)


P0 = [0.5, 0.3, 0.2]
REWARD = [0.0, 1.0, 0.5]  # the maximiser is category 1, not the mode


# ------------------------------------------------------------------ neutral limits
@pytest.mark.slow  # 22 s cold: four programs (test_pressures keeps a bitwise neutral case in the default run)
@pytest.mark.parametrize("rule", ["luce", "top1"])
def test_one_candidate_is_the_uncurated_run(rule):
    cat = cj.Categorical(P0)
    plain = run(cat, chains=64)
    curated = run(cat, chains=64, synthesis=cj.Synthesis(curate=rule, candidates=1, reward=REWARD))
    assert_same_draws(plain, curated, ["entropy", "collision_probability"])
    gauss = cj.Gaussian(dim=2)
    plain = run(gauss, chains=64)
    curated = run(gauss, chains=64, synthesis=cj.Synthesis(curate=rule, candidates=1, reward=[1.0, -1.0]))
    assert_same_draws(plain, curated, ["mean_sq_error", "trace_ratio"])


@pytest.mark.slow  # 15 s cold: four programs
def test_edit_everything_is_replace_and_zero_teacher_is_fresh_data():
    ridge = cj.Ridge(dim=3, design="fixed")
    replace, edit_all = run(ridge, cj.Replace(), n=20, chains=64), run(ridge, cj.Edit(1.0), n=20, chains=64)
    assert_same_draws(replace, edit_all, ["test_error"])
    fresh = cj.Ridge(dim=2, design="fresh")
    teach = cj.MixTeacher(0.0, teacher=cj.Ridge(dim=2, w_star=[3.0, 3.0]))
    assert_same_draws(run(fresh, cj.FreshMix(1.0), n=20, chains=64), run(fresh, teach, n=20, chains=64), ["test_error"])


# ------------------------------------------------------------------ curation vs the exact chain
SLOW = pytest.mark.slow
CURATION = [
    ("luce", 3, cj.Replace(), 0.0, "samples"),
    pytest.param("top1", 2, cj.Replace(), 0.0, "samples", marks=SLOW),
    pytest.param("luce", 2, cj.FreshMix(0.25), 0.25, "samples", marks=SLOW),
    pytest.param("tilt", None, cj.Replace(), 0.0, "exact", marks=SLOW),
]


@pytest.mark.parametrize("rule,k,regime,lam,sampler", CURATION, ids=lambda x: str(x) if not hasattr(x, "plan") else "")
def test_curated_categorical_follows_the_exact_markov_chain(rule, k, regime, lam, sampler):
    n, gens, scale = 12, 5, 1.5
    syn = cj.Synthesis(curate=rule, candidates=k, reward=REWARD, reward_scale=scale)
    res = run(cj.Categorical(P0, sampler=sampler), regime, n=n, generations=gens, synthesis=syn)
    chain = S.curation_chain(P0, REWARD, n, gens, candidates=k or 1, rule=rule, scale=scale, real_fraction=lam)
    g = list(range(gens + 1))
    for metric in ("mean_reward", "frac_at_argmax"):
        mean, se = summary_at(res, metric, g)
        assert_mc_close(mean, se, chain[metric], label=f"{rule} {metric}")
    if lam == 0.0:  # fixation on each category (absorbing under Replace): binomial standard errors
        counts = np.asarray(res.metrics["frac_at_argmax"])  # (chains, generations)
        fixed_best = (counts[:, -1] >= 1.0 - 1e-6).mean()
        p = chain["fixation"][-1, int(np.argmax(REWARD))]
        assert_mc_close(fixed_best, max(np.sqrt(p * (1 - p) / counts.shape[0]), 1e-4), p, label=f"{rule} fixation")


@pytest.mark.slow  # 8 s cold
def test_curation_raises_the_reward_and_tilt_sweeps_are_one_program():
    res = run(
        cj.Categorical(P0, sampler="exact"),
        n=50,
        generations=3,
        chains=256,
        synthesis=cj.Synthesis(curate="tilt", reward=REWARD),
        sweep={"reward_scale": [0.0, 1.0, 3.0]},
    )
    last = np.asarray(res.metrics["mean_reward"])[:, :, -1].mean(axis=1)
    assert last[0] < last[1] < last[2]


@pytest.mark.parametrize("rule", ["luce", "top1"])
@pytest.mark.parametrize("k", [2, 5])
def test_the_choice_law_is_the_exact_law_of_a_curated_category(rule, k):
    """Categorical's choice_law (Horner sum for top1, a trapezoid integral for luce)
    against the theory's exact enumeration, ties and far rewards included."""
    cat = cj.Categorical([0.45, 0.25, 0.2, 0.1, 0.0])
    p = cat.truth()
    for reward, beta in [
        ([0.0, 1.0, 0.5, 2.0, 9.0], 1.5),
        ([0.0, 1.0, 1.0, -1.0, 0.0], 0.7),
        ([3.0, -40.0, 0.0, 1.0, 0.0], 1.0),
    ]:
        q = np.asarray(cat.choice_law(p, np.asarray(reward, np.float32), rule, k, beta))
        live = [0, 1, 2, 3]  # the dead category keeps probability 0 whatever its reward
        expected = S.selection_probs(np.asarray(p)[live], np.asarray(reward)[live], k, rule=rule, scale=beta)
        np.testing.assert_allclose(q[live], expected, atol=2e-7, err_msg=f"{rule} K={k} r={reward}")
        assert q[4] == 0.0


@pytest.mark.slow  # 15 s cold (choice_law's own test is in the default run)
def test_exact_path_curation_follows_the_markov_chain_at_large_n_in_no_time():
    """sampler='exact' draws Multinomial(n, q): the chain's law at n = 12 (theory) and
    the same fixation statistics as the sample path at a size where candidates cost."""
    n, gens = 12, 5
    syn = cj.Synthesis(curate="luce", candidates=3, reward=REWARD, reward_scale=1.5)
    res = run(cj.Categorical(P0, sampler="exact"), n=n, generations=gens, chains=8000, synthesis=syn)
    chain = S.curation_chain(P0, REWARD, n, gens, candidates=3, rule="luce", scale=1.5)
    mean, se = summary_at(res, "frac_at_argmax", list(range(gens + 1)))
    assert_mc_close(mean, se, chain["frac_at_argmax"], label="exact path, luce")
    top = cj.Synthesis(curate="top1", candidates=2, reward=REWARD)
    res = run(cj.Categorical(P0, sampler="exact"), cj.FreshMix(0.25), n=n, generations=gens, synthesis=top)
    chain = S.curation_chain(P0, REWARD, n, gens, candidates=2, rule="top1", real_fraction=0.25)
    mean, se = summary_at(res, "mean_reward", list(range(gens + 1)))
    assert_mc_close(mean, se, chain["mean_reward"], label="exact path, top1, FreshMix")


@pytest.mark.slow  # 12 s cold: two graph programs
def test_curation_composes_with_interaction_graphs():
    syn = cj.Synthesis(curate="tilt", reward=[1.0])
    kw = dict(n=20, generations=3, chains=256, seed=SEED, progress=False)
    plain = cj.simulate_graph(cj.Gaussian(), cj.InteractionGraph.ring(3), **kw)
    tilted = cj.simulate_graph(cj.Gaussian(), cj.InteractionGraph.ring(3), synthesis=syn, **kw)
    assert "mean_reward" in tilted.metrics and "mean_reward" not in plain.metrics
    reward = np.asarray(tilted.metrics["mean_reward"])
    assert np.all(np.diff(reward.mean(axis=tuple(i for i in range(reward.ndim) if i != 1)))[1:] > 0)


def test_gmm_tilt_is_the_normalised_tilted_density():
    gmm = cj.GMM(2, 1, truth=dict(weights=[0.5, 0.5], means=[[-2.0], [2.0]], covs=[[[1.0]], [[0.25]]]))
    p = gmm.truth()
    t = gmm.tilt(p, np.asarray([0.7], np.float32), np.asarray(0.3, np.float32), 1.5)
    x = np.linspace(-20, 20, 400001)

    def mixture(w, m, c):
        return sum(wk * norm.pdf(x, mk, np.sqrt(ck)) for wk, mk, ck in zip(w, m, c))

    target = mixture(np.asarray(p.weights), np.asarray(p.means)[:, 0], np.asarray(p.covs)[:, 0, 0])
    target = target * np.exp(1.5 * (0.7 * x - 0.15 * x * x))
    target /= np.trapezoid(target, x)
    got = mixture(np.asarray(t.weights), np.asarray(t.means)[:, 0], np.asarray(t.covs)[:, 0, 0])
    np.testing.assert_allclose(got, target, atol=1e-6)


# ------------------------------------------------------------------ Gaussian tilting
@pytest.mark.parametrize("sampler", ["samples", pytest.param("exact", marks=pytest.mark.slow)])
def test_linear_tilt_moves_the_gaussian_mean_as_the_exact_recursion(sampler):
    n, gens, b, beta = 20, 4, 0.8, 0.5
    syn = cj.Synthesis(curate="tilt", reward=[b], reward_scale=beta)
    res = run(cj.Gaussian(dim=1, sampler=sampler), n=n, generations=gens, synthesis=syn)
    th = S.gaussian_tilt_moments(np.arange(gens + 1), n, b, scale=beta)
    g = list(range(gens + 1))
    mean, se = summary_at(res, "mean_reward", g)  # b mu_g: the reward's mean under the fit
    assert_mc_close(mean, se, b * th["mean"], label="b E[mu_g]")
    mean, se = summary_at(res, "variance", g)
    assert_mc_close(mean, se, th["variance"], label="E[s2_g]")


def test_quadratic_tilt_is_the_exact_tilted_gaussian():
    fam = cj.Gaussian(dim=1)
    p = fam.truth()
    syn = cj.Synthesis(curate="tilt", reward=[0.4], reward_quadratic=2.0, reward_scale=0.5)
    tilted = fam.tilt(p, syn.reward, syn.reward_quadratic, syn.reward_scale)
    mu, s2 = S.gaussian_tilt_population(1, 0.4, 2.0, scale=0.5)
    np.testing.assert_allclose(float(tilted.mean[0]), mu, rtol=1e-6)
    np.testing.assert_allclose(float(np.exp(2 * tilted.log_scale)), s2, rtol=1e-6)
    d3 = cj.Gaussian(dim=3)
    t3 = d3.tilt(d3.truth(), np.array([0.4, 0.0, -0.4], np.float32), syn.reward_quadratic, syn.reward_scale)
    np.testing.assert_allclose(np.asarray(t3.mean), [mu, 0.0, -mu], rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------ verifiers
def test_ridge_label_verification_rate_matches_the_closed_form_chain_by_chain():
    """accept_rate given the fit w_g: P(|y - x^T w*| <= z sigma) with y - x^T w* ~
    N(0, ||w_g - w*||^2 + sigma^2), per chain (param_sq_error is ||w_g - w*||^2). This
    also pins that the rate is measured on draws independent of the fit."""
    n, s, fa, fr = 40, 0.8, 0.1, 0.05
    syn = cj.Synthesis(verifier="truth", support=s, false_accept=fa, false_reject=fr)
    # 8000 chains: measured on the streams that built the fit, the rate came out 0.002 low at
    # g >= 1 (z about -4 here); it must be an independent draw given the fit
    res = run(cj.Ridge(dim=3, design="fresh"), n=n, generations=3, chains=8000, synthesis=syn)
    err = np.asarray(res.metrics["param_sq_error"], np.float64)
    rate = np.asarray(res.metrics["accept_rate"], np.float64)
    zero = np.zeros(3)
    expected = S.label_verification_rate(np.sqrt(err)[..., None] * np.eye(3)[0], zero, 1.0, s, fa, fr)
    diff = rate - expected
    assert_mc_close(diff.mean(axis=0), diff.std(axis=0, ddof=1) / np.sqrt(diff.shape[0]), 0.0, label="label rate")


@pytest.mark.slow
def test_a_verifier_with_its_own_centre_passes_its_closed_form_rate():
    """A verifier centred at the truth's mean with its own, wider sd: the rate given
    the fit (mu, s2) depends on mu^2 (mean_sq_error) and s2 (variance) only."""
    verifier = cj.Gaussian(dim=1, cov=[[4.0]])
    syn = cj.Synthesis(verifier=verifier, support=0.6, false_accept=0.05, false_reject=0.1)
    res = run(cj.Gaussian(dim=1), n=30, generations=3, chains=2000, synthesis=syn)
    mu = np.sqrt(np.asarray(res.metrics["mean_sq_error"], np.float64))
    s2 = np.asarray(res.metrics["variance"], np.float64)
    expected = np.vectorize(lambda m, v: S.verified_gaussian_law(m, v, 0.0, 2.0, 0.6, 0.05, 0.1)[0])(mu, s2)
    diff = np.asarray(res.metrics["accept_rate"], np.float64) - expected
    assert_mc_close(diff.mean(axis=0), diff.std(axis=0, ddof=1) / np.sqrt(diff.shape[0]), 0.0, label="own centre")


@pytest.mark.slow  # 8 s cold: three programs
def test_self_verification_checks_against_generation_zero():
    """At generation 0 the sampling model is the verifier's own model: the rate is
    support (1 - false_reject) + (1 - support) false_accept exactly in expectation;
    later the verifier stays frozen, and it holds the chain near generation 0."""
    s, fa, fr = 0.7, 0.2, 0.1
    syn = cj.Synthesis(verifier="first", support=s, false_accept=fa, false_reject=fr)
    res = run(cj.Gaussian(dim=1), n=30, generations=12, chains=2000, synthesis=syn)
    mean, se = summary_at(res, "accept_rate", [0])
    assert_mc_close(mean, se, s * (1 - fr) + (1 - s) * fa, label="rate at g = 0")
    strict = cj.Synthesis(verifier="first", support=0.5)
    held = run(cj.Gaussian(dim=1), n=30, generations=12, chains=2000, synthesis=strict)
    plain = run(cj.Gaussian(dim=1), n=30, generations=12, chains=2000)
    gap = plain.mean("mean_sq_error")[-1] - held.mean("mean_sq_error")[-1]
    assert gap > 4 * np.hypot(plain.se("mean_sq_error")[-1], held.se("mean_sq_error")[-1])


@pytest.mark.slow
def test_logistic_label_verification_keeps_agreeing_labels_and_amplifies_the_majority():
    glm = cj.GLM("logistic", dim=2, w_star=[-1.0, 1.0], intercept=True, steps=15)
    res = run(glm, n=100, generations=3, chains=64, synthesis=cj.Synthesis(verifier="truth"), metrics="all")
    share = res.mean("class_share")
    assert share[0] < 0.5 and share[-1] < share[0]  # the majority class (0) grows: bias amplification
    np.testing.assert_allclose(res.mean("share_drift"), share - share[0] + res.mean("share_drift")[0], atol=1e-6)
    x = np.linspace(-8, 8, 200001)
    truth_share = np.trapezoid(norm.pdf(x) * 1 / (1 + np.exp(-(-1.0 + x))), x)
    np.testing.assert_allclose(float(glm.class_share(glm.w_star)), truth_share, rtol=1e-5)


# ------------------------------------------------------------------ editing and teachers vs theory
def test_strong_collapse_plateau_matches_the_one_dimensional_law():
    n, p, delta = 40, 0.3, 1.0
    teacher = cj.Ridge(dim=1, w_star=[1.0 + delta])
    res = run(cj.Ridge(dim=1, w_star=[1.0], design="fresh"), cj.MixTeacher(p, teacher), n=n, generations=3)
    mean, se = summary_at(res, "param_sq_error", [1, 2, 3])
    assert_mc_close(mean, se, S.strong_collapse_error(n, p, delta), label="strong collapse")


def test_edit_error_grows_as_the_exact_recursion_on_gaussian_designs():
    n, d, f, gens = 16, 2, 0.25, 4
    res = run(cj.Ridge(dim=d, design="fixed"), cj.Edit(f), n=n, generations=gens, chains=4000)
    th, th_se = S.edit_ols_error_gaussian(n, d, f, gens, 1.0, designs=4000, seed=1)
    mean, se = summary_at(res, "param_sq_error", list(range(gens + 1)))
    assert_mc_close(mean, np.hypot(se, th_se), th, label="edit")


# ------------------------------------------------------------------ bad input, before compiling
@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(curate="best", reward=[1.0]), "curate must be one of"),
        (dict(curate="luce"), "needs reward"),
        (dict(curate="luce", reward=[1.0, float("nan")]), "reward must be finite"),
        (dict(curate="luce", reward=[1.0], candidates=0), "candidates must be an int K >= 1"),
        (dict(curate="tilt", reward=[1.0], candidates=3), "candidates must not be given"),
        (dict(curate="threshold", reward=[1.0]), "needs reward_threshold"),
        (dict(curate="luce", reward=[1.0], reward_scale=-1.0), "reward_scale"),
        (dict(curate="tilt", reward=[1.0], reward_quadratic=-0.5), "reward_quadratic"),
        (dict(reward=[1.0]), "without curate"),
        (dict(verifier="oracle"), "verifier must be None"),
        (dict(verifier=3), "verifier must be None"),
        (dict(false_accept=1.5), "false_accept"),
    ],
)
def test_bad_synthesis_is_refused(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cj.Synthesis(**kw)


def test_bad_combinations_are_refused_before_compiling():
    with pytest.raises(ValueError, match="one entry per category"):
        run(cj.Categorical(P0), synthesis=cj.Synthesis(curate="luce", reward=[1.0, 2.0]))
    with pytest.raises(ValueError, match="Rewardable"):
        run(cj.Ridge(dim=2, design="fresh"), synthesis=cj.Synthesis(curate="luce", reward=[1.0, 2.0]))
    with pytest.raises(ValueError, match="Tiltable"):
        run(cj.KDE(bandwidth=0.3), synthesis=cj.Synthesis(curate="tilt", reward=[1.0]))
    with pytest.raises(ValueError, match="verifier must be a Gaussian"):
        run(cj.Gaussian(), synthesis=cj.Synthesis(verifier=cj.Categorical(P0)))
    with pytest.raises(ValueError, match="different dimension"):
        run(cj.Gaussian(dim=2), synthesis=cj.Synthesis(verifier=cj.Gaussian(dim=3)))
    with pytest.raises(ValueError, match="teacher must be a Ridge"):
        run(cj.Ridge(dim=2), cj.MixTeacher(0.2, teacher=cj.Gaussian(dim=2)))
    with pytest.raises(ValueError, match="different dimension"):
        run(cj.Ridge(dim=2), cj.MixTeacher(0.2, teacher=cj.Ridge(dim=3)))
    with pytest.raises(ValueError, match="teacher is required"):
        cj.MixTeacher(0.2)
    with pytest.raises(ValueError, match="teacher_fraction"):
        cj.MixTeacher(1.5, teacher=cj.Ridge(dim=2))
    with pytest.raises(ValueError, match="fixed design"):
        run(cj.Ridge(dim=2, design="fresh"), cj.Edit(0.3))
    with pytest.raises(ValueError, match="fixed design"):
        run(cj.Gaussian(), cj.Edit(0.3))
    with pytest.raises(ValueError, match="fraction"):
        cj.Edit(-0.1)
    with pytest.raises(ValueError, match="fixed design"):
        run(cj.Ridge(dim=2, design="fixed"), synthesis=cj.Synthesis(verifier=cj.Ridge(dim=2)))
    with pytest.raises(ValueError, match="first"):
        cj.simulate_graph(
            cj.Gaussian(), cj.InteractionGraph.ring(3), n=10, generations=1, chains=2,
            synthesis=cj.Synthesis(verifier="first"),
        )  # fmt: skip


# ------------------------------------------------------------------ configs round trip
@pytest.mark.slow
def test_describe_round_trips_for_the_new_pieces():
    syn = cj.Synthesis(curate="luce", candidates=3, reward=REWARD, reward_scale=2.0, verifier=cj.Categorical(P0))
    again = cj.Synthesis(**{k: v for k, v in syn.describe().items() if k != "synthesis"})
    assert again.describe() == syn.describe()
    reg = cj.MixTeacher(0.25, teacher=cj.Ridge(dim=2, w_star=[1.0, 2.0]))
    assert type(reg)(**{k: v for k, v in reg.describe().items() if k != "regime"}).describe() == reg.describe()
    for regime, fam, syn in [
        (cj.Edit(0.5), cj.Ridge(dim=2, design="fixed"), None),
        (reg, cj.Ridge(dim=2, design="fresh"), cj.Synthesis(verifier=cj.Ridge(dim=2, w_star=[0.5, 0.5]))),
        (cj.Replace(), cj.Categorical(P0), cj.Synthesis(curate="top1", candidates=2, reward=REWARD)),
    ]:
        res = run(fam, regime, n=10, generations=2, chains=8, synthesis=syn)
        again = cj.from_config(res.config, progress=False)()
        for m in res.metrics:
            np.testing.assert_array_equal(np.asarray(again.metrics[m]), np.asarray(res.metrics[m]), err_msg=m)


@pytest.mark.slow  # two graph programs
def test_exact_path_curation_on_a_graph_matches_the_candidates():
    """On an interaction graph the exact path draws each source's curated counts from the
    choice law; the sample path draws the candidates: the same law of the chain."""
    syn = cj.Synthesis(curate="luce", candidates=3, reward=REWARD)
    kw = dict(n=30, generations=4, chains=3000, seed=SEED, progress=False, synthesis=syn)
    exact = cj.simulate_graph(cj.Categorical(P0, sampler="exact"), cj.InteractionGraph.ring(3), **kw)
    drawn = cj.simulate_graph(cj.Categorical(P0), cj.InteractionGraph.ring(3), **kw)
    a = np.asarray(exact.metrics["frac_at_argmax"], np.float64).mean(axis=-1)  # (chains, generations)
    b = np.asarray(drawn.metrics["frac_at_argmax"], np.float64).mean(axis=-1)
    se = np.hypot(a.std(axis=0, ddof=1), b.std(axis=0, ddof=1)) / np.sqrt(a.shape[0])
    assert_mc_close(a.mean(axis=0)[1:] - b.mean(axis=0)[1:], se[1:], 0.0, label="graph: exact vs candidates")
