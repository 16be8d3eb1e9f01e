"""Tails and scaling laws (`collapse_jax.theory.tails`, THEORY.md section 14): the exact
memoriser errors against an independent numpy Monte Carlo of the memoriser, the infinite
sums within their stated bounds, the asymptotic laws against the exact errors with derived
bounds, the label chain against a simulation of its model, exponent fits, and bad input.
numpy only (no JAX)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import SEED, assert_mc_close, z_for

from collapse_jax.theory import tails as tt

CHAINS = 4000


def mc_memoriser(rng, T, p, q, chains=CHAINS):
    """Per-chain missed mass: draw T inputs from q (inverse CDF), sum p over the unseen."""
    cdf = np.cumsum(q)
    last = int(np.flatnonzero(q > 0)[-1])
    out = np.empty(chains)
    block = max(1, 2_000_000 // max(T, 1))
    for start in range(0, chains, block):
        n = min(block, chains - start)
        idx = np.minimum(np.searchsorted(cdf, rng.random((n, T)) * cdf[-1], side="right"), last)
        seen = np.zeros((n, p.size), dtype=bool)
        seen[np.arange(n)[:, None], idx] = True
        out[start : start + n] = (~seen) @ p
    return out


def mc_label_chain(rng, sizes, p, num_labels, clean_fraction, chains=CHAINS):
    """Simulate the label chain of `tt.label_chain_error` with actual labels: per chain and
    input a stored label or a default answer, first-draw storage, fresh draws from p.
    Returns the (chains, generations) test errors under the truth."""
    K, rows = p.size, np.arange(chains)[:, None]
    finite = math.isfinite(num_labels)
    truth = rng.integers(0, int(num_labels), K) if finite else np.zeros(K, dtype=np.int64)
    answer = np.broadcast_to(truth, (chains, K))  # "model -1" is the truth
    cdf = np.cumsum(p)
    errs = np.empty((chains, len(sizes)))
    for j, T in enumerate(sizes):
        idx = np.minimum(np.searchsorted(cdf, rng.random((chains, T)) * cdf[-1], side="right"), K - 1)
        clean = rng.random((chains, T)) < clean_fraction
        first = np.full((chains, K), T)
        np.minimum.at(first, (np.broadcast_to(rows, idx.shape), idx), np.broadcast_to(np.arange(T), idx.shape))
        seen = first < T
        first_clean = np.take_along_axis(np.append(clean, np.zeros((chains, 1), bool), axis=1), first, axis=1)
        stored = np.where(first_clean, truth, answer)
        default = rng.integers(0, int(num_labels), (chains, K)) if finite else np.full((chains, K), -1)
        answer = np.where(seen, stored, default)
        errs[:, j] = (answer != truth) @ p
    return errs


def se(x, axis=0):
    return np.std(x, axis=axis, ddof=1) / math.sqrt(np.shape(x)[axis])


# --------------------------------------------------------------------------------------
# Zipf laws
# --------------------------------------------------------------------------------------
def test_zipf_laws_match_direct_sums():
    i = np.arange(1, 501, dtype=np.float64)
    w = i**-1.5
    np.testing.assert_allclose(tt.zipf_probs(1.5, 500), w / w.sum(), rtol=1e-14)
    np.testing.assert_allclose(tt.zipf_normaliser(1.5, 500), w.sum(), rtol=1e-13)
    np.testing.assert_allclose(tt.zipf_normaliser(0.8, 500), np.sum(i**-0.8), rtol=1e-13)
    np.testing.assert_allclose(tt.zipf_normaliser(2.0), math.pi**2 / 6, rtol=1e-14)
    np.testing.assert_allclose(tt.zipf_tail_mass(1.5, 40, 500), w[40:].sum() / w.sum(), rtol=1e-12)
    assert tt.zipf_tail_mass(1.5, 500, 500) == 0.0
    # K = inf: the tail beyond 10^6 ranks is zeta(2, 10^6 + 1) ~ 1e-6
    big = np.arange(1, 10**6 + 1, dtype=np.float64) ** -2.0
    np.testing.assert_allclose(
        tt.zipf_tail_mass(2.0, 40), (big[40:].sum() + 1 / (10**6 + 0.5)) / (math.pi**2 / 6), rtol=1e-9
    )
    p, cut = tt.zipf_probs(1.5, 500), tt.cut_probs(1.5, 40, 500)
    np.testing.assert_allclose(cut[:40], p[:40] / p[:40].sum(), rtol=1e-14)
    assert np.all(cut[40:] == 0)
    np.testing.assert_allclose(tt.narrowed_probs(1.5, 2.5, 500), tt.zipf_probs(2.5, 500), rtol=0)
    np.testing.assert_allclose(tt.mixed_probs(1.5, 40, 0.3, 500), 0.3 * p + 0.7 * cut, rtol=1e-15)


# --------------------------------------------------------------------------------------
# Exact memoriser errors against the Monte Carlo memoriser
# --------------------------------------------------------------------------------------
BETA, K, KCUT, BETA_PRIME, PI = 1.5, 300, 30, 2.5, 0.2
TS = [1, 10, 100, 1000]


def test_memoriser_error_matches_monte_carlo():
    rng = np.random.default_rng(SEED)
    p = tt.zipf_probs(BETA, K)
    laws = {
        "clean": (p, tt.zipf_error(TS, BETA, K)),
        "cut": (tt.cut_probs(BETA, KCUT, K), tt.cut_error(TS, BETA, KCUT, K)),
        "narrowed": (tt.narrowed_probs(BETA, BETA_PRIME, K), tt.narrowed_error(TS, BETA, BETA_PRIME, K)),
        "mixed": (tt.mixed_probs(BETA, KCUT, PI, K), tt.mixed_error(TS, BETA, KCUT, PI, K)),
    }
    means, ses, exact = [], [], []
    for name, (q, closed) in laws.items():
        e = tt.memoriser_error(TS, p, q)
        np.testing.assert_allclose(closed, e, rtol=1e-12, err_msg=name)  # the Zipf forms are the same sums
        for T in TS:
            mc = mc_memoriser(rng, T, p, q)
            means.append(mc.mean())
            ses.append(se(mc))
        exact.extend(e)
    assert_mc_close(means, ses, exact, label="memoriser error")
    # the cut's plateau is reached: at T = 1000 the cut memoriser has seen almost all k inputs
    assert laws["cut"][1][-1] == pytest.approx(tt.zipf_tail_mass(BETA, KCUT, K), rel=0.02)


def test_memoriser_error_extremes_are_stable():
    p = tt.zipf_probs(1.2, 10**6)
    e = tt.memoriser_error([0, 1e9], p, p)
    assert e[0] == pytest.approx(1.0, rel=1e-12)
    assert 0 < e[1] < 1e-3 and np.isfinite(e[1])
    # a training law with q_1 = 1 (cut at k = 1): the memoriser knows input 1 after one draw
    p10, q = tt.zipf_probs(1.2, 10), tt.cut_probs(1.2, 1, 10)
    rest = 1 - p10[0]
    np.testing.assert_allclose(tt.memoriser_error(np.array([0.0, 1.0, 5.0]), p10, q), [1.0, rest, rest], rtol=1e-14)


# --------------------------------------------------------------------------------------
# Infinite sums: the closed-form tail is within its stated bound
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [1.2, 2.0])
def test_closed_form_tail_within_bound(beta):
    T = np.array([0.0, 1.0, 100.0, 1e4, 1e9])
    K = 50_000
    forms = [
        lambda **kw: tt.zipf_error(T, beta, K, **kw),
        lambda **kw: tt.cut_error(T, beta, 5000, K, **kw),
        lambda **kw: tt.narrowed_error(T, beta, beta + 1.0, K, **kw),
        lambda **kw: tt.mixed_error(T, beta, 3000, 0.3, K, **kw),
    ]
    for form in forms:
        exact, zero = form(terms=K, return_bound=True)  # every term summed directly
        assert np.all(zero == 0)
        approx, bound = form(terms=1000, return_bound=True)
        assert np.all(np.abs(approx - exact) <= bound + 1e-15 * exact)
        # informative where the tail is convex (T <= 1e4: f'(M)/16, relative < 1e-6); at T = 1e9 the
        # peak of p_i (1 - q_i)^T lies beyond K and only the unimodal bound (~ f(K)/2) applies
        assert np.all(bound[:-1] <= 1e-6 * exact[:-1])
    # K = inf: two truncations agree within their two bounds
    for form in (lambda **kw: tt.zipf_error(T, beta, **kw), lambda **kw: tt.mixed_error(T, beta, 50, 0.1, **kw)):
        (a, ba), (b, bb) = form(terms=2**12, return_bound=True), form(return_bound=True)
        assert np.all(np.abs(a - b) <= ba + bb + 1e-15 * b)


# --------------------------------------------------------------------------------------
# Scaling laws
# --------------------------------------------------------------------------------------
LAWS = [(1.5, None), (2.5, None), (1.5, 2.5), (2.0, 3.0)]


def exact_infinite(T, beta, beta_prime, terms=tt.DIRECT_TERMS):
    if beta_prime is None:
        return tt.zipf_error(T, beta, terms=terms, return_bound=True)
    return tt.narrowed_error(T, beta, beta_prime, terms=terms, return_bound=True)


@pytest.mark.parametrize("beta, beta_prime", LAWS)
def test_scaling_law_within_rigorous_bound(beta, beta_prime):
    """|E(T) - C T^-s| <= scaling_law_bound (derived), and the relative error shrinks."""
    T = 10.0 ** np.arange(1, 9)
    e, num = exact_infinite(T, beta, beta_prime)
    law = tt.scaling_law(T, beta, beta_prime)
    assert np.all(np.abs(e - law) <= tt.scaling_law_bound(T, beta, beta_prime) + num)
    rel = np.abs(e / law - 1)
    assert np.all(np.diff(rel) < 0), rel
    s = tt.scaling_exponent(beta, beta_prime)
    assert s == pytest.approx((beta - 1) / (beta if beta_prime is None else beta_prime), rel=1e-15)
    if beta_prime is None:
        assert tt.scaling_constant(beta) == pytest.approx(
            math.gamma(1 - 1 / beta) / (beta * tt.zipf_normaliser(beta) ** (1 / beta)), rel=1e-14
        )


@pytest.mark.parametrize("beta, beta_prime", LAWS)
def test_scaling_law_expansion_improves_with_order(beta, beta_prime):
    """Each term of the 1/T expansion reduces the error once the Poissonised sum has
    converged to C T^-s (super-polynomially fast): margins exceed the sums' bound."""
    T = np.array([1e3, 1e4, 1e5])
    e, num = exact_infinite(T, beta, beta_prime, terms=2**16)  # num / e < 1e-11 here
    res = np.array([np.abs(e / tt.scaling_law(T, beta, beta_prime, order=m) - 1) for m in range(3)])
    assert np.all(res[1] + num / e < res[0])
    assert res[2, 1] + num[1] / e[1] < res[1, 1]  # at T = 1e4 (at 1e5 order 2 is at rounding level)
    s = tt.scaling_exponent(beta, beta_prime)
    assert (e[2] / tt.scaling_law(1e5, beta, beta_prime) - 1) * 1e5 == pytest.approx(-s * (s + 1) / 2, rel=1e-3)


def test_cut_plateau_bounds_and_crossover():
    beta, k = 1.5, 20
    T = np.array([1.0, 10.0, 1e2, 1e3, 1e4, 1e5, 1e6])
    tau = tt.zipf_tail_mass(beta, k)
    e, num = tt.cut_error(T, beta, k, return_bound=True)
    p_k = k**-beta / tt.zipf_normaliser(beta)
    assert np.all(e >= tau - num)
    assert np.all(e <= tau + (1 - tau) * np.exp(-T * p_k / (1 - tau)) + num)
    clean, cnum = tt.zipf_error(T / (1 - tau), beta, return_bound=True)
    assert np.all(e <= tau + clean + num + cnum)
    # the crossover T_k ~ (C (beta - 1) zeta)^(beta/(beta-1)) (k + 1/2)^beta (1 + beta^2/(24 (k+1/2)^2) + O(k^-4))
    for b in (1.5, 2.0):
        c0 = (tt.scaling_constant(b) * (b - 1) * tt.zipf_normaliser(b)) ** (b / (b - 1))
        res = []
        for kk in (10, 100):
            tk = tt.cut_crossover(b, kk)
            assert tt.scaling_law(tk, b) == pytest.approx(tt.zipf_tail_mass(b, kk), rel=1e-12)
            res.append(abs(tk / (c0 * (kk + 0.5) ** b) - 1 - b * b / (24 * (kk + 0.5) ** 2)))
        assert res[1] <= res[0] * (10.5 / 100.5) ** 3  # O(k^-4), checked as at least O(k^-3)


@pytest.mark.parametrize("K", [math.inf, 2000])
def test_mixing_law_bounds(K):
    beta, k, pi = 1.5, 20, 0.1
    T = np.array([1.0, 10.0, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7])
    e, num = tt.mixed_error(T, beta, k, pi, K, return_bound=True)
    lower, upper = tt.mixed_error_bounds(T, beta, k, pi, K)
    assert np.all(lower <= e + num) and np.all(e <= upper + num)
    if math.isinf(K):  # E_mix(T) -> C (pi T)^-s, within the clean law's bound plus the head term
        tau = tt.zipf_tail_mass(beta, k)
        p_k = k**-beta / tt.zipf_normaliser(beta)
        gap = tt.scaling_law_bound(pi * T, beta) + (1 - tau) * np.exp(pi * T * math.log1p(-p_k))
        assert np.all(np.abs(e - tt.scaling_law(pi * T, beta)) <= gap + 2 * num)
        assert np.abs(e[-1] / tt.scaling_law(pi * T[-1], beta) - 1) < 1e-3
    # the plateau: with little clean data the bounds pin E_mix to tau_k for 10/p_k <= T <= 0.01/(pi p_{k+1})
    pi = 1e-3
    h = tt.zipf_normaliser(beta, K)
    stretch = np.geomspace(10 * h * k**beta, 0.01 * h * (k + 1) ** beta / pi, 5)
    lower, upper = tt.mixed_error_bounds(stretch, beta, k, pi, K)
    tau = tt.zipf_tail_mass(beta, k, K)
    assert np.all(lower >= 0.99 * tau) and np.all(upper <= tau * (1 + 1e-3))
    assert np.all(
        (lower <= tt.mixed_error(stretch, beta, k, pi, K)) & (tt.mixed_error(stretch, beta, k, pi, K) <= upper)
    )


# --------------------------------------------------------------------------------------
# The label chain
# --------------------------------------------------------------------------------------
GENS = [0, 1, 3, 8]


@pytest.mark.parametrize("num_labels, clean_fraction", [(math.inf, 0.0), (3, 0.0), (math.inf, 0.3), (4, 0.5)])
def test_label_chain_matches_simulation(num_labels, clean_fraction):
    rng = np.random.default_rng([SEED, int(min(num_labels, 99)), int(100 * clean_fraction)])
    p = tt.zipf_probs(1.3, 30)
    errs = mc_label_chain(rng, [20] * (max(GENS) + 1), p, num_labels, clean_fraction)[:, GENS]
    exact = tt.label_chain_error(np.array(GENS), 20, p, num_labels=num_labels, clean_fraction=clean_fraction)
    assert_mc_close(errs.mean(axis=0), se(errs), exact, label=f"label chain L={num_labels} pi={clean_fraction}")


def test_label_chain_schedule_matches_simulation():
    rng = np.random.default_rng([SEED, 7])
    p = tt.zipf_probs(1.1, 25)
    sizes = [5, 60, 10, 30, 3]
    errs = mc_label_chain(rng, sizes, p, 2, 0.2)
    exact = tt.label_chain_error(np.arange(5), np.array(sizes), p, num_labels=2, clean_fraction=0.2)
    assert_mc_close(errs.mean(axis=0), se(errs), exact, label="label chain schedule")


def test_label_chain_closed_form_and_bounds():
    p = tt.zipf_probs(1.5, 400)
    g = np.arange(0, 60)
    for L, pi in [(math.inf, 0.0), (5, 0.0), (math.inf, 0.25), (2, 1.0)]:
        kw = dict(num_labels=L, clean_fraction=pi)
        closed = tt.label_chain_error(g, 50, p, **kw)
        recursion = tt.label_chain_error(g, np.full(g.size, 50), p, **kw)
        np.testing.assert_allclose(closed, recursion, rtol=1e-12)
        ell = 1 - 1 / L
        np.testing.assert_allclose(closed[0], ell * tt.memoriser_error(50, p, p), rtol=1e-12)
        assert np.all(np.diff(closed) >= -1e-15)  # errors only accumulate (e_{-1} = 0 is the minimum)
        assert np.all(closed <= (g + 1) * closed[0] * (1 + 1e-12))  # union bound
        limit = tt.label_chain_limit(50, p, **kw)
        np.testing.assert_allclose(tt.label_chain_error(10**15, 50, p, **kw), limit, rtol=1e-9)
        assert closed[0] <= limit * (1 + 1e-12)
        if pi > 0:
            assert limit <= closed[0] / pi * (1 + 1e-12)
        else:
            assert limit == pytest.approx(ell, rel=1e-12)  # complete collapse


def test_label_chain_growth():
    """R_G = lim_T E_g / E_0: the alternating-sum form, its bounds, and the exact ratio."""
    beta = 3.0
    c = 1 - 1 / beta
    for G in range(1, 9):
        alt = sum((-1) ** (j + 1) * math.comb(G, j) * j**-c for j in range(1, G + 1))
        r = tt.label_chain_growth(G - 1, beta)
        assert r == pytest.approx(alt, rel=1e-9)
        h = sum(1 / j for j in range(1, G + 1))
        assert 1 - 1e-12 <= r <= min(G, h**c / math.gamma(1 + c)) + 1e-12
    for G in (10**3, 10**6):  # Jensen: R_G <= H_G^c / Gamma(1 + c) ~ (log G)^c, far below G
        h = float(np.sum(1.0 / np.arange(1, G + 1)))
        assert 1 <= tt.label_chain_growth(G - 1, beta) <= h**c / math.gamma(1 + c) < G / 100
    p = tt.zipf_probs(beta, 200_000)  # tail beyond K: ~1e-11 of the mass, negligible here
    g = np.array([1, 4, 9])
    prev0 = prev1 = math.inf
    for T in (1e3, 1e4):
        e = tt.label_chain_error(np.concatenate([[0], g]), T, p)
        ratio = e[1:] / e[0]
        r0 = np.abs(ratio - tt.label_chain_growth(g, beta)).max()
        r1 = np.abs(ratio - tt.label_chain_growth(g, beta, T)).max()
        assert r1 < r0 < prev0 and r1 < prev1
        prev0, prev1 = r0, r1


# --------------------------------------------------------------------------------------
# Exponent fits
# --------------------------------------------------------------------------------------
def test_fit_exponent_exact_and_ranges():
    T = np.logspace(1, 6, 11)
    assert tt.fit_exponent(T, 3.0 * T**-0.4) == pytest.approx(0.4, abs=1e-12)
    broken = np.where(T < 1e3, 1.0, 3.0 * T**-0.4)
    assert tt.fit_exponent(T, broken, T_min=1e3) == pytest.approx(0.4, abs=1e-12)
    assert tt.fit_exponent(T, np.where(T > 1e4, 1.0, 2 * T**-1.5), T_max=1e4) == pytest.approx(1.5, abs=1e-12)


@pytest.mark.parametrize("beta", [1.5, 2.0])
def test_fit_exponent_recovers_zipf_law(beta):
    """The LS slope of log E moves from -s by at most max_j |log(E_j / L_j)| sum|x_j - x| / sum (x_j - x)^2."""
    T = np.logspace(4, 8, 9)
    e, num = tt.zipf_error(T, beta, return_bound=True)
    law = tt.scaling_law(T, beta)
    b = (tt.scaling_law_bound(T, beta) + num) / law
    xc = np.log(T) - np.log(T).mean()
    bound = np.max(-np.log1p(-b)) * np.abs(xc).sum() / (xc @ xc)
    assert abs(tt.fit_exponent(T, e) - tt.scaling_exponent(beta)) <= bound
    assert bound < 0.01


def test_fit_exponent_ci_covers_truth():
    rng = np.random.default_rng([SEED, 11])
    T = np.logspace(1, 4, 6)
    alpha, reps, chains = 0.6, 200, 100
    hits = 0
    for r in range(reps):
        z = 0.3 * rng.normal(size=(chains, 1)) + 0.4 * rng.normal(size=(chains, T.size))
        errs = 2.0 * T**-alpha * np.exp(z - 0.125)  # E[err] = 2 T^-alpha exactly
        est, lo, hi = tt.fit_exponent_ci(T, errs, n_boot=500, seed=r)
        assert lo <= est <= hi
        hits += lo <= alpha <= hi
    assert abs(hits / reps - 0.95) <= z_for(1) * math.sqrt(0.95 * 0.05 / reps)
    errs = np.abs(rng.normal(size=(20, T.size))) + 0.1
    assert tt.fit_exponent_ci(T, errs, seed=3) == tt.fit_exponent_ci(T, errs, seed=3)


def test_fit_exponent_ci_on_monte_carlo_memoriser():
    """Per-chain MC errors of the clean memoriser: the bootstrap estimate agrees with the
    exponent fitted to the exact curve, |z| <= z_for(1) with se from the interval."""
    rng = np.random.default_rng([SEED, 13])
    p = tt.zipf_probs(2.0, 400)
    T = [30, 100, 300, 1000]
    errs = np.stack([mc_memoriser(rng, t, p, p, chains=1000) for t in T], axis=1)
    est, lo, hi = tt.fit_exponent_ci(T, errs, n_boot=1000, seed=1)
    truth = tt.fit_exponent(T, tt.memoriser_error(T, p, p))
    assert abs(est - truth) <= z_for(1) * (hi - lo) / (2 * 1.96)


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------
P3 = np.array([0.5, 0.3, 0.2])
BAD = [
    (lambda: tt.zipf_error(10, 1.0), "beta must be > 1 when K is infinite"),
    (lambda: tt.cut_error(10, 0.9, 3), "beta must be > 1 when K is infinite"),
    (lambda: tt.zipf_probs(1.5, 0), "K must be an integer >= 1"),
    (lambda: tt.zipf_probs(1.5, 2.5), "K must be an integer >= 1"),
    (lambda: tt.zipf_probs(-1.0, 5), "beta must be"),
    (lambda: tt.cut_error(10, 1.5, 0), "k must be an integer"),
    (lambda: tt.cut_probs(1.5, 11, 10), r"k must be an integer in \[1, K=10"),
    (lambda: tt.mixed_error(10, 1.5, math.inf, 0.5), "k must be an integer"),
    (lambda: tt.mixed_error(10, 1.5, 5, 1.5), "pi must be"),
    (lambda: tt.narrowed_probs(2.0, 1.5, 10), "beta_prime must be"),
    (lambda: tt.narrowed_error(10, 2.0, 2.0), "beta_prime must be"),
    (lambda: tt.zipf_error(-1, 2.0), "T must be finite and >= 0"),
    (lambda: tt.memoriser_error(np.nan, P3, P3), "T must be finite and >= 0"),
    (lambda: tt.memoriser_error("ten", P3, P3), "T must be a real number"),
    (lambda: tt.memoriser_error(10, [0.5, -0.1, 0.6], P3), "p must be a 1-D vector"),
    (lambda: tt.memoriser_error(10, P3, [0.5, np.nan, 0.5]), "q must be a 1-D vector"),
    (lambda: tt.memoriser_error(10, P3, [0.5, 0.3, 0.3]), "q must sum to 1"),
    (lambda: tt.memoriser_error(10, P3, [0.5, 0.5]), "p and q must have the same length"),
    (lambda: tt.zipf_error(10, 2.0, terms=0), "terms must be an integer >= 1"),
    (lambda: tt.scaling_law(0, 2.0), "T must be finite and > 0"),
    (lambda: tt.scaling_law(10, 1.0), "beta must be > 1"),
    (lambda: tt.scaling_law(10, 2.0, order=3), "order must be 0, 1 or 2"),
    (lambda: tt.label_chain_error(1, 10, P3, num_labels=1), "num_labels must be an integer >= 2"),
    (lambda: tt.label_chain_error(-1, 10, P3), "g must be >= 0"),
    (lambda: tt.label_chain_error(3, [10, 10], P3), "T must be a number or a 1-D schedule"),
    (lambda: tt.label_chain_error(1, 10, P3, clean_fraction=-0.1), "clean_fraction must be"),
    (lambda: tt.label_chain_error(1, 10, [0.6, 0.6]), "p must sum to 1"),
    (lambda: tt.label_chain_growth(1, 1.0), "beta must be > 1"),
    (lambda: tt.fit_exponent([1, 10], [1.0, 0.0]), "err must be finite and > 0"),
    (lambda: tt.fit_exponent([1, 1], [1.0, 2.0]), "need at least 2 distinct T"),
    (lambda: tt.fit_exponent([1, 10, 100], [1.0, 0.1, 0.01], T_min=20), "need at least 2 distinct T"),
    (lambda: tt.fit_exponent([1, 10], [1.0, 0.1, 0.01]), "T must be a 1-D array with one size per error"),
    (lambda: tt.fit_exponent_ci([1, 10], np.ones((1, 2))), "errs must be a"),
    (lambda: tt.fit_exponent_ci([1, 10], np.ones((5, 2)), level=1.5), "level must be"),
]


@pytest.mark.parametrize("call, match", BAD, ids=[m for _, m in BAD])
def test_bad_input_raises_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()
