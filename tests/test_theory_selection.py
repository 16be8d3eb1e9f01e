"""Selection of synthetic data (`collapse_jax.theory.selection`, THEORY.md section 17): the
exact curation laws and chains, Gaussian tilting, verification, strong model collapse and
token-level editing against hand values, limiting cases and an independent numpy Monte
Carlo of each mechanism (the selection itself is simulated, not its closed form), and bad
input. numpy only (no JAX)."""

from __future__ import annotations

import math
import re
from statistics import NormalDist

import numpy as np
import pytest
from conftest import SEED, assert_mc_close, z_for

from collapse_jax.theory import selection as sel
from collapse_jax.theory.pressures import truncation_variance_factor

RULES = ("luce", "top1", "tilt")


# --------------------------------------------------------------------------------------
# independent Monte Carlo of the curation step
# --------------------------------------------------------------------------------------


def draw_categories(rng, probs, shape):
    """Categorical draws, one law per row of ``probs`` (N, C): shape (N, *shape)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((probs.shape[0], *shape))
    cdf = cdf.reshape(probs.shape[0], *([1] * len(shape)), probs.shape[1])
    return np.minimum((u[..., None] >= cdf).sum(axis=-1), probs.shape[1] - 1)


def curate(rng, probs, reward, m, k, rule, scale):
    """m curated points per row of ``probs`` (N, C), each picked from k candidates:
    the picked categories, shape (N, m)."""
    if rule == "tilt":
        w = probs * np.exp(scale * (reward - reward.max()))
        return draw_categories(rng, w / w.sum(axis=1, keepdims=True), (m,))
    cand = draw_categories(rng, probs, (m, k))
    if rule == "top1":
        pick = np.argmax(scale * reward[cand], axis=-1)  # the first candidate among the best
    else:
        w = np.exp(scale * reward[cand])
        cum = np.cumsum(w, axis=-1)
        u = rng.random(cand.shape[:-1])[..., None] * cum[..., -1:]
        pick = np.minimum((u >= cum).sum(axis=-1), k - 1)
    return np.take_along_axis(cand, pick[..., None], axis=-1)[..., 0]


def counts_of(cats, c):
    return (cats[..., None] == np.arange(c)).sum(axis=-2)


def check_exact(mc, mean, sd, chains, label):
    """|mc - mean| <= z sd / sqrt(chains), z Bonferroni over the entries; the sd is the
    exact one (from the exact law), and an entry of sd 0 must match exactly."""
    mc, mean, sd = (np.asarray(a, dtype=np.float64) for a in (mc, mean, sd))
    fixed = sd < 1e-12
    assert np.allclose(mc[fixed], mean[fixed], atol=1e-9), f"{label}: deterministic entries differ"
    z = np.abs(mc - mean)[~fixed] / (sd[~fixed] / math.sqrt(chains))
    assert np.all(z <= z_for(max(z.size, 1))), f"{label}: worst |z| = {z.max():.2f}"


# --------------------------------------------------------------------------------------
# A. categorical curation
# --------------------------------------------------------------------------------------


def test_selection_probs_by_hand():
    p, r = np.array([0.7, 0.3]), np.array([0.0, 1.0])
    e = math.e
    q1 = 2 * 0.3 * (0.7 * e / (1 + e) + 0.3 * 0.5)  # the other candidate in category 0 or 1
    np.testing.assert_allclose(sel.selection_probs(p, r, 2, "luce"), [1 - q1, q1], rtol=1e-13)
    np.testing.assert_allclose(sel.selection_probs(p, r, 3, "top1"), [0.7**3, 1 - 0.7**3], rtol=1e-13)
    tilt = p * np.exp(2.0 * r) / (p * np.exp(2.0 * r)).sum()
    np.testing.assert_allclose(sel.selection_probs(p, r, 5, "tilt", scale=2.0), tilt, rtol=1e-13)
    # ties under top1: the first of the best candidates, so the tied categories split in proportion to p
    q = sel.selection_probs([0.5, 0.2, 0.3], [0.0, 1.0, 1.0], 2, "top1")
    top = 1 - 0.5**2
    np.testing.assert_allclose(q, [0.25, top * 0.4, top * 0.6], rtol=1e-13)


@pytest.mark.parametrize("rule", RULES)
def test_selection_probs_neutral_cases(rule):
    p, r = np.array([0.5, 0.3, 0.2]), np.array([0.0, 2.0, 1.0])
    if rule != "tilt":
        np.testing.assert_allclose(sel.selection_probs(p, r, 1, rule, scale=3.0), p, rtol=1e-13)
    np.testing.assert_allclose(sel.selection_probs(p, r, 4, rule, scale=0.0), p, rtol=1e-13)
    # a category the model never draws is never selected, however high its reward
    q = sel.selection_probs([0.6, 0.4, 0.0], [0.0, 1.0, 9.0], 4, rule)
    assert q[2] == 0.0 and abs(q.sum() - 1) < 1e-13


def test_selection_probs_against_sampling():
    rng = np.random.default_rng(SEED)
    p, r = np.array([0.45, 0.25, 0.2, 0.1]), np.array([0.0, 1.0, 1.0, -0.5])
    draws = 200_000
    for rule, k, scale in [("luce", 4, 0.8), ("luce", 2, 2.5), ("top1", 3, 1.0), ("top1", 1, 1.0)]:
        q = sel.selection_probs(p, r, k, rule, scale)
        freq = np.bincount(curate(rng, p[None, :], r, draws, k, rule, scale)[0], minlength=4) / draws
        assert_mc_close(freq, np.sqrt(q * (1 - q) / draws), q, label=f"{rule} K={k}")


def test_luce_tends_to_the_tilt():
    p, r = np.array([0.7, 0.3]), np.array([0.0, 1.0])
    tilt = sel.selection_probs(p, r, 1, "tilt")
    gaps = [np.abs(sel.selection_probs(p, r, k, "luce") - tilt).max() for k in (5, 20, 60, 240)]
    assert gaps[2] < 0.01, gaps
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[3] * 240 < 1.5 * gaps[2] * 60  # O(1/K)
    q3 = sel.selection_probs([0.5, 0.3, 0.2], [0.0, 1.0, 0.5], 80, "luce")
    np.testing.assert_allclose(q3, sel.selection_probs([0.5, 0.3, 0.2], [0.0, 1.0, 0.5], 1, "tilt"), atol=0.01)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("real_fraction", [0.0, 0.3, 1.0])
def test_transition_rows_sum_to_one(rule, real_fraction):
    res = sel.curation_chain([0.5, 0.3, 0.2], [0.0, 2.0, 1.0], 9, 3, 3, rule, 1.5, real_fraction)
    t = res["transition"]
    assert t.shape == (55, 55) and np.all(t >= 0)
    np.testing.assert_allclose(t.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(res["distribution"].sum(axis=1), 1.0, atol=1e-12)
    assert res["states"].shape == (55, 3) and np.all(res["states"].sum(axis=1) == 9)
    if real_fraction == 1.0:  # all real: every generation is Multinomial(n, p0)
        np.testing.assert_allclose(res["distribution"], np.broadcast_to(res["distribution"][0], (4, 55)), atol=1e-13)


@pytest.mark.parametrize("rule", RULES)
def test_neutral_chain_is_wright_fisher(rule):
    p0, r = np.array([0.5, 0.3, 0.2]), np.array([0.0, 2.0, 1.0])
    k, scale = (1, 2.0) if rule != "tilt" else (1, 0.0)
    np.testing.assert_allclose(sel.fixation_probabilities(p0, r, 14, k, rule, scale), p0, atol=1e-10)
    res = sel.curation_chain(p0, r, 14, 6, k, rule, scale)
    np.testing.assert_allclose(res["frac_at_argmax"], 0.3, atol=1e-12)  # counts/n is a martingale
    np.testing.assert_allclose(res["mean_reward"], p0 @ r, atol=1e-12)
    np.testing.assert_allclose(sel.fixation_probabilities(p0, r, 14, 3, "luce", 0.0), p0, atol=1e-10)


def test_fixation_is_the_chain_limit():
    p0, r = np.array([0.6, 0.4]), np.array([0.0, 0.7])
    for rule in RULES:
        fix = sel.fixation_probabilities(p0, r, 10, 3, rule)
        res = sel.curation_chain(p0, r, 10, 400, 3, rule)
        np.testing.assert_allclose(res["fixation"][-1], fix, atol=1e-9)
        assert np.all(np.diff(res["fixation"], axis=0) >= -1e-15)  # absorbing: fixed stays fixed
        # q / p increases with the reward, so E_q r >= E_p r: the mean reward is a submartingale
        assert np.all(np.diff(res["mean_reward"]) >= -1e-12)
        assert fix[1] > p0[1]  # curation favours the high reward


def mc_curation_chain(rng, p0, r, n, gens, k, rule, scale, real_fraction, chains):
    c = p0.size
    real = math.floor(real_fraction * n + 0.5)
    counts = rng.multinomial(n, p0, size=chains)
    out = [counts]
    for _ in range(gens):
        synthetic = counts_of(curate(rng, counts / n, r, n - real, k, rule, scale), c)
        counts = synthetic + (rng.multinomial(real, p0, size=chains) if real else 0)
        out.append(counts)
    return np.stack(out)  # (gens + 1, chains, C)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("real_fraction", [0.0, 0.25])
def test_curation_chain_against_monte_carlo(rule, real_fraction):
    rng = np.random.default_rng([SEED, RULES.index(rule), int(real_fraction * 100)])
    p0, r, n, gens, k, scale, chains = np.array([0.5, 0.3, 0.2]), np.array([0.0, 1.0, 0.4]), 12, 4, 3, 0.9, 4000
    res = sel.curation_chain(p0, r, n, gens, k, rule, scale, real_fraction)
    freq = res["states"] / n
    dist = res["distribution"]
    counts = mc_curation_chain(rng, p0, r, n, gens, k, rule, scale, real_fraction, chains)
    for name, per_state, per_chain in [
        ("mean_reward", freq @ r, counts / n @ r),
        ("frac_at_argmax", freq[:, 1], counts[..., 1] / n),
        ("fixed on 0", (res["states"][:, 0] == n).astype(float), (counts[..., 0] == n).astype(float)),
        ("fixed on 1", (res["states"][:, 1] == n).astype(float), (counts[..., 1] == n).astype(float)),
    ]:
        mean = dist @ per_state
        if name in ("mean_reward", "frac_at_argmax"):
            np.testing.assert_allclose(mean, res[name], rtol=1e-12)
        else:
            np.testing.assert_allclose(mean, res["fixation"][:, 0 if name.endswith("0") else 1], rtol=1e-12)
        sd = np.sqrt(np.maximum(dist @ per_state**2 - mean**2, 0.0))
        check_exact(per_chain.mean(axis=1), mean, sd, chains, f"{rule} lambda={real_fraction} {name}")
    if real_fraction == 0.0:
        assert res["mean_reward"][-1] > res["mean_reward"][0]  # curation raises the expected reward


# --------------------------------------------------------------------------------------
# B. Gaussian tilting
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_gaussian_tilt_moments_against_monte_carlo(estimator):
    rng = np.random.default_rng([SEED, len(estimator)])
    n, b, scale, mu0, var0, gens, chains = 6, 0.5, 1.2, 0.3, 2.0, 5, 40_000
    delta = 0 if estimator == "mle" else 1
    fit = lambda x: (x.mean(axis=1), x.var(axis=1) * n / (n - delta))  # noqa: E731
    mu, s2 = fit(rng.normal(mu0, math.sqrt(var0), (chains, n)))
    mus, s2s = [mu], [s2]
    for _ in range(gens):  # n points from the tilted fit N(mu + beta b s2, s2)
        mu, s2 = fit((mu + scale * b * s2)[:, None] + np.sqrt(s2)[:, None] * rng.standard_normal((chains, n)))
        mus.append(mu)
        s2s.append(s2)
    mus, s2s = np.array(mus), np.array(s2s)
    th = sel.gaussian_tilt_moments(np.arange(gens + 1), n, b, mu0, var0, scale, estimator)
    se = lambda a: a.std(axis=1, ddof=1) / math.sqrt(chains)  # noqa: E731
    assert_mc_close(mus.mean(axis=1), se(mus), th["mean"], label="E mu_g")
    assert_mc_close(s2s.mean(axis=1), se(s2s), th["variance"], label="E s2_g")
    sq = (mus - np.asarray(th["mean"])[:, None]) ** 2
    assert_mc_close(sq.mean(axis=1), se(sq), th["mean_var"], label="Var mu_g")


def test_gaussian_tilt_moments_limits():
    g = np.arange(6)
    rho = 9 / 10
    base = sel.gaussian_tilt_moments(g, 10, 0.0, mu0=1.0, var0=2.0)
    np.testing.assert_allclose(base["mean"], 1.0)
    np.testing.assert_allclose(base["variance"], 2.0 * rho ** (g + 1.0), rtol=1e-13)
    np.testing.assert_allclose(base["mean_var"], 2.0 / 10 * np.cumsum(rho**g), rtol=1e-13)  # the Replace mean's
    one = sel.gaussian_tilt_moments(1, 10, 0.7, var0=2.0, scale=2.0)
    assert isinstance(one["mean"], float)
    a = 1.4
    # Var(mu_1) = a^2 Var(s2_0) + var0 (1 + rho) / n, Var(s2_0) = var0^2 (rho2 - rho^2)
    rho2 = 9 * 11 / 100
    assert abs(one["mean_var"] - (a * a * 4.0 * (rho2 - rho * rho) + 2.0 * (1 + rho) / 10)) < 1e-13
    assert abs(one["mean"] - a * 2.0 * rho) < 1e-13


def test_gaussian_tilt_population():
    b, c, scale, mu, s2 = 1.5, 0.5, 0.8, -1.0, 3.0
    for g in range(1, 8):  # iterate the tilt itself
        prec = 1 / s2 + scale * c
        mu, s2 = (mu / s2 + scale * b) / prec, 1 / prec
        m, v = sel.gaussian_tilt_population(g, b, c, -1.0, 3.0, scale)
        assert abs(m - mu) < 1e-12 and abs(v - s2) < 1e-12
    m, v = sel.gaussian_tilt_population(np.array([0, 10**6]), b, c, -1.0, 3.0, scale)
    np.testing.assert_allclose(m, [-1.0, b / c], rtol=1e-5)
    assert v[0] == 3.0 and v[1] < 1e-5
    m, v = sel.gaussian_tilt_population(np.arange(4), b, 0.0, -1.0, 3.0, scale)
    np.testing.assert_allclose(m, -1.0 + np.arange(4) * scale * b * 3.0)
    np.testing.assert_allclose(v, 3.0)


# --------------------------------------------------------------------------------------
# C, D. verification
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        dict(mu=0.0, s2=1.0, centre=0.0, sv=1.0, support=0.9),
        dict(mu=0.4, s2=2.0, centre=-0.5, sv=0.8, support=0.8, false_accept=0.1, false_reject=0.2),
        dict(mu=3.0, s2=0.5, centre=0.0, sv=1.0, support=0.95, false_accept=0.05),
    ],
)
def test_verified_gaussian_law_against_monte_carlo(case):
    rng = np.random.default_rng([SEED, int(10 * case["mu"])])
    draws, n = 400_000, 5
    z = NormalDist().inv_cdf(0.5 + 0.5 * case["support"])
    x = rng.normal(case["mu"], math.sqrt(case["s2"]), draws)
    good = np.abs(x - case["centre"]) <= z * case["sv"]
    u = rng.random(draws)
    keep = np.where(good, u < 1 - case.get("false_reject", 0.0), u < case.get("false_accept", 0.0))
    rate, mean, var = sel.verified_gaussian_law(**case)
    kept = x[keep]
    assert_mc_close(keep.mean(), math.sqrt(rate * (1 - rate) / draws), rate, label="rate")
    assert_mc_close(kept.mean(), kept.std() / math.sqrt(kept.size), mean, label="kept mean")
    dev2 = (kept - kept.mean()) ** 2
    assert_mc_close(dev2.mean(), dev2.std() / math.sqrt(kept.size), var, label="kept var")
    fits = kept[: kept.size // n * n].reshape(-1, n)  # i.i.d. kept points, n per generation-1 fit
    mle = fits.var(axis=1)
    assert_mc_close(mle.mean(), mle.std() / math.sqrt(mle.size), var * (n - 1) / n, label="E mle var")


def test_verified_gaussian_law_special_cases():
    # verifier centred on the model with its sd: the truncation of pressures.truncation_variance_factor
    rate, mean, var = sel.verified_gaussian_law(1.0, 4.0, 1.0, 2.0, 0.9)
    assert abs(rate - 0.9) < 1e-12 and abs(mean - 1.0) < 1e-12
    assert abs(var - 4.0 * truncation_variance_factor(0.9)) < 1e-12
    assert sel.verified_gaussian_law(1.0, 4.0, -3.0, 0.5, 1.0, false_reject=0.3) == pytest.approx((0.7, 1.0, 4.0))
    # false_accept = 1 - false_reject: acceptance ignores the verdict
    rate, mean, var = sel.verified_gaussian_law(1.0, 4.0, 0.0, 1.0, 0.6, false_accept=0.4, false_reject=0.6)
    assert rate == pytest.approx(0.4) and mean == pytest.approx(1.0) and var == pytest.approx(4.0)
    # a far window keeps its precision: the kept law is the window's truncated normal, mean inside it
    rate, mean, var = sel.verified_gaussian_law(0.0, 1.0, 12.0, 0.1, 0.5)
    assert 0 < rate < 1e-30 and 12.0 - 0.1 < mean < 12.0 and 0 < var < 0.01


def test_label_verification_rate():
    rng = np.random.default_rng([SEED, 4])
    w, wv, noise, support, fa, fr = np.array([1.0, -0.5, 0.3]), np.array([0.6, 0.0, 0.3]), 0.7, 0.9, 0.1, 0.05
    draws = 400_000
    x = rng.standard_normal((draws, 3))
    y = x @ w + noise * rng.standard_normal(draws)
    good = np.abs(y - x @ wv) <= NormalDist().inv_cdf(0.5 + 0.5 * support) * noise
    u = rng.random(draws)
    keep = np.where(good, u < 1 - fr, u < fa)
    rate = sel.label_verification_rate(w, wv, noise, support, fa, fr)
    assert isinstance(rate, float)
    assert_mc_close(keep.mean(), math.sqrt(rate * (1 - rate) / draws), rate, label="label rate")
    assert sel.label_verification_rate(w, w, noise, support, fa, fr) == pytest.approx(0.9 * 0.95 + 0.1 * 0.1)
    batch = sel.label_verification_rate(np.stack([w, wv]), wv, noise, support, fa, fr)
    assert batch.shape == (2,) and batch[0] == pytest.approx(rate)


# --------------------------------------------------------------------------------------
# E. strong model collapse
# --------------------------------------------------------------------------------------


def test_strong_collapse_error_against_monte_carlo():
    rng = np.random.default_rng([SEED, 5])
    p, delta, noise, w_star, chains = 0.3, 1.5, 0.7, 0.4, 40_000
    sizes = np.array([8, 20, 80])
    errs = []
    for n in sizes:
        m = n - math.floor((1 - p) * n + 0.5)
        x = rng.standard_normal((chains, n))
        w = np.where(np.arange(n) < n - m, w_star, w_star + delta)
        y = x * w + noise * rng.standard_normal((chains, n))
        errs.append(((x * y).sum(axis=1) / (x * x).sum(axis=1) - w_star) ** 2)
    errs = np.array(errs)
    th = sel.strong_collapse_error(sizes, p, delta, noise)
    assert th.shape == (3,)
    assert_mc_close(errs.mean(axis=1), errs.std(axis=1, ddof=1) / math.sqrt(chains), th, label="strong collapse")


def test_strong_collapse_plateau():
    assert sel.strong_collapse_plateau(0.3, 1.5) == pytest.approx(0.09 * 2.25)
    big = sel.strong_collapse_error(10**7, 0.3, 1.5, 0.7)
    assert abs(big - sel.strong_collapse_plateau(0.3, 1.5)) < 1e-6
    assert sel.strong_collapse_error(50, 0.0, 1.5, 0.7) == pytest.approx(0.49 / 48)  # clean OLS: sigma^2 / (n - 2)
    assert sel.strong_collapse_error(50, 1.0, 1.5, 0.0) == pytest.approx(2.25)  # all teacher
    errs = sel.strong_collapse_error(np.array([10, 100, 1000, 10**5]), 0.01, 1.0)
    assert np.all(np.diff(errs) < 0) and errs[-1] > 1e-4  # still above p^2 Delta^2 = 1e-4


# --------------------------------------------------------------------------------------
# F. token-level editing
# --------------------------------------------------------------------------------------


def test_edit_ols_error_limits():
    rng = np.random.default_rng([SEED, 6])
    x = rng.standard_normal((15, 4))
    base = 0.8**2 * np.trace(np.linalg.inv(x.T @ x))
    np.testing.assert_allclose(sel.edit_ols_error(x, 1.0, 6, 0.8), base * np.arange(1, 8), rtol=1e-10)
    np.testing.assert_allclose(sel.edit_ols_error(x, 0.0, 6, 0.8), base, rtol=1e-10)
    np.testing.assert_allclose(sel.edit_ols_error(x, 0.02, 3, 0.8), base, rtol=1e-10)  # rounds to 0 rows
    # a fixed fraction f re-drawn every generation: no plateau, each generation adds at least f sigma^2 tr(G^-1)
    part = sel.edit_ols_error(x, 0.5, 40, 0.8)
    assert np.all(np.diff(part) >= 0.5 * base * (1 - 1e-12))
    assert np.all(part[1:] < base * np.arange(2, 42))  # below Replace
    # n = d: the fit interpolates (H = I), so an edit only adds fresh noise: exactly (r/n) sigma^2 tr(G^-1) a generation
    square = rng.standard_normal((3, 3))
    sq_base = np.trace(np.linalg.inv(square.T @ square))
    np.testing.assert_allclose(sel.edit_ols_error(square, 0.7, 3), sq_base * (1 + np.arange(4) * 2 / 3), rtol=1e-8)


@pytest.mark.parametrize("fraction", [0.25, 0.6])
def test_edit_ols_error_against_monte_carlo(fraction):
    rng = np.random.default_rng([SEED, 7, int(fraction * 100)])
    n, d, gens, noise, chains = 12, 3, 6, 0.8, 20_000
    x = rng.standard_normal((n, d))
    w_star = rng.standard_normal(d)
    pinv = np.linalg.pinv(x)
    hat = x @ pinv
    r = math.floor(fraction * n + 0.5)
    y = x @ w_star + noise * rng.standard_normal((chains, n))
    errs = [((y - x @ w_star) @ pinv.T) ** 2]
    for _ in range(gens):
        fitted = y @ hat.T
        rows = np.argsort(rng.random((chains, n)), axis=1)[:, :r]
        mask = np.zeros((chains, n), dtype=bool)
        np.put_along_axis(mask, rows, True, axis=1)
        y = np.where(mask, fitted + noise * rng.standard_normal((chains, n)), y)
        errs.append(((y - x @ w_star) @ pinv.T) ** 2)
    errs = np.array(errs).sum(axis=2)
    th = sel.edit_ols_error(x, fraction, gens, noise)
    assert_mc_close(errs.mean(axis=1), errs.std(axis=1, ddof=1) / math.sqrt(chains), th, label=f"edit {fraction}")


def test_edit_ols_error_gaussian():
    n, d, gens = 20, 3, 4
    mean, se = sel.edit_ols_error_gaussian(n, d, 1.0, gens, noise=0.5, designs=300, seed=3)
    assert mean.shape == se.shape == (gens + 1,)
    # E tr(G^-1) = d / (n - d - 1) for an N(0, 1) design
    assert_mc_close(mean, se, 0.25 * d / (n - d - 1) * np.arange(1, gens + 2), label="gaussian designs")
    again = sel.edit_ols_error_gaussian(n, d, 1.0, gens, noise=0.5, designs=300, seed=3)
    np.testing.assert_array_equal(mean, again[0])
    # the designs are the seed's successive standard-normal draws
    one, _ = sel.edit_ols_error_gaussian(n, d, 0.3, gens, noise=0.5, designs=2, seed=3)
    draws = np.random.default_rng(3)
    avg = sum(sel.edit_ols_error(draws.standard_normal((n, d)), 0.3, gens, 0.5) for _ in range(2)) / 2
    np.testing.assert_allclose(one, avg, rtol=1e-12)


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------

P3, R3 = [0.5, 0.3, 0.2], [0.0, 1.0, 2.0]
X_OK = np.arange(12.0).reshape(6, 2) ** [1, 2]

BAD = [
    (sel.selection_probs, ([0.5, 0.6], [0, 1], 2), {}, "p"),
    (sel.selection_probs, ([0.5, -0.5, 1.0], R3, 2), {}, "p"),
    (sel.selection_probs, (P3, [0, 1], 2), {}, "reward"),
    (sel.selection_probs, (P3, [0, np.nan, 1], 2), {}, "reward"),
    (sel.selection_probs, (P3, R3, 0), {}, "candidates"),
    (sel.selection_probs, (P3, R3, 2.0), {}, "candidates"),
    (sel.selection_probs, ([0.25] * 4, [0, 1, 2, 3], 10**4), {}, "candidates"),
    (sel.selection_probs, (P3, R3, 2), {"rule": "best"}, "rule"),
    (sel.selection_probs, (P3, R3, 2), {"scale": -1.0}, "scale"),
    (sel.curation_chain, (P3, [0.0, 2.0, 2.0], 5, 2, 2), {}, "reward"),
    (sel.curation_chain, ([0.6, 0.6], [0, 1], 5, 2, 2), {}, "p0"),
    (sel.curation_chain, (P3, R3, 0, 2, 2), {}, "n"),
    (sel.curation_chain, ([0.25] * 4, [0, 1, 2, 3], 200, 2, 2), {}, "n"),
    (sel.curation_chain, (P3, R3, 5, -1, 2), {}, "generations"),
    (sel.curation_chain, (P3, R3, 5, 2, 2), {"real_fraction": 1.5}, "real_fraction"),
    (sel.fixation_probabilities, (P3, R3, True, 2), {}, "n"),
    (sel.fixation_probabilities, (P3, R3, 5, 2), {"rule": "tilted"}, "rule"),
    (sel.gaussian_tilt_moments, (2, 1, 0.5), {}, "n"),
    (sel.gaussian_tilt_moments, (-1, 5, 0.5), {}, "g"),
    (sel.gaussian_tilt_moments, (2, 5, np.nan), {}, "b"),
    (sel.gaussian_tilt_moments, (2, 5, 0.5), {"var0": 0.0}, "var0"),
    (sel.gaussian_tilt_moments, (2, 5, 0.5), {"estimator": "ml"}, "estimator"),
    (sel.gaussian_tilt_moments, (2, 5, 0.5), {"scale": -0.1}, "scale"),
    (sel.gaussian_tilt_population, (2, 0.5, -1.0), {}, "c"),
    (sel.gaussian_tilt_population, (2.5, 0.5, 1.0), {}, "g"),
    (sel.gaussian_tilt_population, (2, 0.5, 1.0), {"mu0": math.inf}, "mu0"),
    (sel.verified_gaussian_law, (0.0, 0.0, 0.0, 1.0, 0.9), {}, "s2"),
    (sel.verified_gaussian_law, (0.0, 1.0, 0.0, -1.0, 0.9), {}, "sv"),
    (sel.verified_gaussian_law, (0.0, 1.0, 0.0, 1.0, 1.5), {}, "support"),
    (sel.verified_gaussian_law, (0.0, 1.0, 0.0, 1.0, 0.9), {"false_accept": 2.0}, "false_accept"),
    (sel.verified_gaussian_law, (0.0, 1.0, 0.0, 1.0, 0.9), {"false_reject": -0.1}, "false_reject"),
    (sel.verified_gaussian_law, (0.0, 1.0, 0.0, 1.0, 0.9), {"false_reject": 1.0}, "accepts nothing"),
    (sel.label_verification_rate, ([1.0, 0.0], [0.0, 0.0], 0.0, 0.9), {}, "noise"),
    (sel.label_verification_rate, ([1.0, np.nan], [0.0, 0.0], 1.0, 0.9), {}, "w"),
    (sel.label_verification_rate, ([1.0, 0.0], [0.0, 0.0, 0.0], 1.0, 0.9), {}, "w_v"),
    (sel.label_verification_rate, ([1.0, 0.0], [0.0, 0.0], 1.0, -0.9), {}, "support"),
    (sel.strong_collapse_error, (2, 0.3, 1.0), {}, "n"),
    (sel.strong_collapse_error, (np.array([5, 2]), 0.3, 1.0), {}, "n"),
    (sel.strong_collapse_error, (5.0, 0.3, 1.0), {}, "n"),
    (sel.strong_collapse_error, (5, 1.2, 1.0), {}, "teacher_fraction"),
    (sel.strong_collapse_error, (5, 0.3, math.inf), {}, "delta"),
    (sel.strong_collapse_error, (5, 0.3, 1.0), {"noise": -1.0}, "noise"),
    (sel.strong_collapse_plateau, (-0.1, 1.0), {}, "teacher_fraction"),
    (sel.edit_ols_error, (np.ones((5, 2)), 0.5, 2), {}, "X"),
    (sel.edit_ols_error, (np.ones((2, 3)), 0.5, 2), {}, "X"),
    (sel.edit_ols_error, (np.ones(5), 0.5, 2), {}, "X"),
    (sel.edit_ols_error, (X_OK, -0.1, 2), {}, "fraction"),
    (sel.edit_ols_error, (X_OK, 0.5, 1.5), {}, "generations"),
    (sel.edit_ols_error, (X_OK, 0.5, 2), {"noise": 0.0}, "noise"),
    (sel.edit_ols_error_gaussian, (2, 3, 0.5, 2), {}, "n"),
    (sel.edit_ols_error_gaussian, (5, 0, 0.5, 2), {}, "d"),
    (sel.edit_ols_error_gaussian, (5, 2, 0.5, 2), {"designs": 1}, "designs"),
    (sel.edit_ols_error_gaussian, (5, 2, 0.5, 2), {"seed": -1}, "seed"),
]


@pytest.mark.parametrize(
    ("func", "args", "kwargs", "name"), BAD, ids=[f"{f.__name__}-{n}-{i}" for i, (f, _, _, n) in enumerate(BAD)]
)
def test_bad_input_names_the_parameter(func, args, kwargs, name):
    with pytest.raises(ValueError, match=rf"(?<![\w.]){re.escape(name)}(?!\w)"):
        func(*args, **kwargs)
