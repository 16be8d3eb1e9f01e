"""Closed forms and exact computations for the categorical family (Wright-Fisher drift).

A categorical model refitted on n draws from its own frequencies is a neutral haploid
Wright-Fisher population of size n: given the counts c_{t-1}, c_t ~ Multinomial(n,
c_{t-1} / n) (Fisher 1930; Wright 1931; Ewens 2004, "Mathematical Population
Genetics I", 2nd ed., section 3.3). Its recursive-training reading is Shumailov et al.
2024 (Nature 631, 755-759, discrete model: "a Markov chain whose only absorbing states
are delta functions", tails disappear first) and Seddik et al. 2024 (arXiv 2404.05090:
E[S_m] for the collision probability S). THEORY.md section 10.1.

Indexing (THEORY.md section 0): every function takes the simulator's generation ``g``;
generation 0 is the fit to the original sample of n draws from the truth p0, so the
original counts are Multinomial(n, p0) and generation g has had t = g + 1 Wright-Fisher
steps. ``g`` may be an int (gives a float) or an integer array (gives an array of that
shape; quantities per category get a trailing (K,) axis). Pure numpy float64.

Notation: S = sum_k p_k^2 (collision probability), H = 1 - S (heterozygosity, the
probability that two draws differ), S0 and H0 their values at the truth. Formulas marked
[DERIVED] were derived here and checked by an independent numpy Monte Carlo and by the
simulator's tests.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import FloatOrArray, _count, _fits, _fraction, _generations, _integer, _out, _positive

__all__ = [
    "absorption_time_diffusion",
    "collision_accumulate",
    "collision_accumulate_limit",
    "collision_accumulate_subsample",
    "collision_freshmix",
    "collision_replace",
    "collision_weighted",
    "extinct_mean_replace",
    "first_passage_cdf",
    "first_passage_mean",
    "fixation_probability",
    "missing_mass_mean_replace",
    "probs_mean",
    "rare_mass_mean",
    "support_size_mean_replace",
]

MAX_STATES = 3000  # largest transient state space of the exact first-passage computation
Event = Literal["extinction", "fixation"]
EVENTS = get_args(Event)


def _probs(probs: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"probs must be a 1-D vector of K >= 1 finite non-negative numbers, got {probs!r}")
    if abs(arr.sum() - 1.0) > 1e-6:
        raise ValueError(f"probs must sum to 1 (tolerance 1e-6), got sum {arr.sum()!r}")
    return arr / arr.sum()


def _heterozygosity(p: NDArray[np.float64]) -> float:
    return float(1.0 - np.sum(p * p))


# --------------------------------------------------------------------------------------
# Means: every regime here keeps E[p_g] = p0
# --------------------------------------------------------------------------------------
def probs_mean(g: ArrayLike, probs: ArrayLike) -> NDArray[np.float64]:
    """E[p_g] = p0 for Replace, Accumulate, AccumulateSubsample, FreshMix and
    Weighted: a multinomial draw's frequencies are unbiased for the probabilities it
    is drawn from, so every category is a martingale (Ewens 2004, section 3.3) or a
    convex mix of martingales and the truth. Shape ``g.shape + (K,)``."""
    gens = _generations(g)
    p = _probs(probs)
    return np.broadcast_to(p, gens.shape + p.shape).copy()


def rare_mass_mean(g: ArrayLike, probs: ArrayLike, rare_below: float) -> FloatOrArray:
    """E[rare_mass_g] = sum of p0_k over the categories with p0_k < rare_below (the
    mean of a martingale; see :func:`probs_mean`)."""
    gens = _generations(g)
    p = _probs(probs)
    rb = _fraction(rare_below, "rare_below")
    return _out(np.full(gens.shape, float(np.sum(p[p < rb]))))


# --------------------------------------------------------------------------------------
# Collision probability
# --------------------------------------------------------------------------------------
def collision_replace(g: ArrayLike, n: int, probs: ArrayLike) -> FloatOrArray:
    """E[S_g] = 1 - (1 - S0)(1 - 1/n)^(g+1) under Replace (Seddik et al. 2024,
    arXiv 2404.05090; THEORY.md section 10.1).

    Derivation: if p' is the frequency vector of n draws from p, E[p'_k^2 | p] =
    p_k^2 + p_k (1 - p_k)/n, so E[H' | p] = (1 - 1/n) H: the heterozygosity decays by
    (1 - 1/n) per Wright-Fisher step (Wright 1931), and generation g is t = g + 1 steps.
    """
    t = _fits(g)
    n = _integer(n, "n", 1)
    p = _probs(probs)
    return _out(1.0 - _heterozygosity(p) * (1.0 - 1.0 / n) ** t)


def collision_accumulate(g: ArrayLike, n: int, probs: ArrayLike) -> FloatOrArray:
    """E[S_g] under Accumulate (pool of the original sample and g synthetic batches of
    n, batch j drawn from fit j - 1) [DERIVED]:

        E[H_g] = H0 prod_{j=1}^{g+1} (1 - 1 / (n j^2)).

    Derivation: the pooled frequencies are P_g = (g P_{g-1} + q_g) / (g + 1) with q_g
    the frequencies of n draws from P_{g-1}, so E[P_g,k^2 | P_{g-1}] = P^2 + P(1 - P)
    / (n (g + 1)^2), i.e. E[H_g | P_{g-1}] = H_{g-1} (1 - 1/(n (g + 1)^2)); the
    original sample gives the j = 1 factor. The product converges (Gerstgrasser et al.
    2024, arXiv 2404.01413: accumulating avoids collapse): see
    :func:`collision_accumulate_limit`.
    """
    gens = _generations(g)
    n = _integer(n, "n", 1)
    p = _probs(probs)
    top = int(gens.max(initial=0)) + 1
    j = np.arange(1, top + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_factors = np.cumsum(np.log1p(-1.0 / (n * j * j)))
    return _out(1.0 - _heterozygosity(p) * np.exp(log_factors[gens]))


def collision_accumulate_limit(n: int, probs: ArrayLike) -> float:
    """lim_g E[S_g] under Accumulate [DERIVED]: by Euler's product
    sin(pi x) / (pi x) = prod_j (1 - x^2 / j^2) with x = n^(-1/2),
    E[H_inf] = H0 sin(pi / sqrt(n)) / (pi / sqrt(n)) (0 at n = 1)."""
    n = _integer(n, "n", 1)
    p = _probs(probs)
    x = math.pi / math.sqrt(n)
    return 1.0 - _heterozygosity(p) * (math.sin(x) / x if n > 1 else 0.0)


def collision_accumulate_subsample(g: ArrayLike, n: int, probs: ArrayLike) -> FloatOrArray:
    """E[S_g] under AccumulateSubsample (fit g uses a uniform n-subset, without
    replacement, of the pool of n (g + 1) points, batch g drawn from fit g - 1)
    [DERIVED].

    With f_j = j / (n (j + 1) - 1) (the finite-population factor (N - n)/(n (N - 1))
    of a subset of n out of N = n (j + 1)), the pool's heterozygosity X_g = E[H(Q_g)]
    (Q_g: the pool's frequencies) obeys X_0 = H0 (1 - 1/n) and

        X_g = X_{g-1} [g^2 + 2g + (1 - f_{g-1})(1 - 1/n)] / (g + 1)^2,

    and the fit's is E[H_g] = X_g (1 - f_g). Derivation: the frequencies P of a
    hypergeometric subset of a pool Q have E[P | Q] = Q and Var(P_k | Q) =
    Q_k (1 - Q_k) f, so E[H(P) | Q] = (1 - f) H(Q); the pool update is Accumulate's
    (see :func:`collision_accumulate`) with the batch drawn from P_{g-1}, whose cross
    term is E[Q . P] = E[S(Q)]. f_0 = 0 (the first subset is the whole pool), and the
    subsample's fit lies between Accumulate's and Replace's (Kazdan et al. 2024,
    arXiv 2410.16713).
    """
    gens = _generations(g)
    n = _integer(n, "n", 1)
    p = _probs(probs)
    top = int(gens.max(initial=0))
    j = np.arange(0, top + 1, dtype=np.float64)
    denom = n * (j + 1) - 1
    f = np.divide(j, denom, out=np.zeros_like(j), where=denom > 0)
    k = j[1:]
    factors = (k * k + 2 * k + (1 - f[:-1]) * (1 - 1.0 / n)) / (k + 1) ** 2
    x = _heterozygosity(p) * (1.0 - 1.0 / n) * np.concatenate([[1.0], np.cumprod(factors)])
    return _out(1.0 - (x * (1 - f))[gens])


def _collision_mix(gens, n: int, p, alpha: float, n_real: int, n_synth: int):
    """E[S_g] when fit g >= 1 is alpha q_real + (1 - alpha) q_synth, q_real the
    frequencies of n_real draws from the truth and q_synth of n_synth draws from fit
    g - 1, independent; fit 0 is n real draws. [DERIVED]: E[S_g] = c + rho E[S_{g-1}],

        c = alpha^2 (S0 + H0 / n_real) + 2 alpha (1 - alpha) S0 + (1 - alpha)^2 / n_synth,
        rho = (1 - alpha)^2 (1 - 1 / n_synth),

    using E[fit_{g-1}] = p0 for the cross term; solved in closed form around the fixed
    point c / (1 - rho)."""
    s0 = 1.0 - _heterozygosity(p)
    h0 = 1.0 - s0
    beta = 1.0 - alpha
    c = 2 * alpha * beta * s0
    if alpha > 0:
        c += alpha**2 * (s0 + h0 / n_real)
    rho = 0.0
    if beta > 0:
        c += beta**2 / n_synth
        rho = beta**2 * (1.0 - 1.0 / n_synth)
    start = s0 + h0 / n
    fixed = c / (1.0 - rho)
    return _out(fixed + rho ** gens.astype(np.float64) * (start - fixed))


def collision_freshmix(g: ArrayLike, n: int, probs: ArrayLike, real_fraction: float) -> FloatOrArray:
    """E[S_g] under FreshMix(real_fraction): r = floor(lam n + 1/2) fresh real draws and
    n - r synthetic draws from fit g - 1, pooled [DERIVED, see ``_collision_mix`` with
    alpha = r/n]. FreshMix(0) is :func:`collision_replace`; FreshMix(1) refits fresh
    real data: S0 + H0/n at every generation."""
    gens = _generations(g)
    n = _integer(n, "n", 1)
    lam = _fraction(real_fraction, "real_fraction")
    r = _count(lam, n)
    return _collision_mix(gens, n, _probs(probs), r / n, max(r, 1), max(n - r, 1))


def collision_weighted(g: ArrayLike, n: int, probs: ArrayLike, real_weight: float, ratio: float = 1.0) -> FloatOrArray:
    """E[S_g] under Weighted(real_weight=w, ratio=k): p_g = w p_real + (1 - w) p_synth
    from n fresh real and m = floor(n / k + 1/2) synthetic draws (He, Xu, Cheng,
    arXiv 2502.18049). For frequencies ``combine="samples"`` (weights w/n and (1-w)/m)
    is the same estimator as ``"estimates"``. [DERIVED, see ``_collision_mix``]."""
    gens = _generations(g)
    n = _integer(n, "n", 1)
    w = _fraction(real_weight, "real_weight")
    k = _positive(ratio, "ratio")
    m = math.floor(n / k + 0.5)  # the simulator's rounding (Weighted.synthetic_count)
    if m < 1:
        raise ValueError(f"ratio={ratio} gives m = floor(n/ratio + 1/2) = {m} synthetic draws; need m >= 1")
    return _collision_mix(gens, n, _probs(probs), w, n, m)


# --------------------------------------------------------------------------------------
# Fixation and extinction under Replace
# --------------------------------------------------------------------------------------
def fixation_probability(probs: ArrayLike) -> NDArray[np.float64]:
    """P(category k eventually holds all the mass) = p0_k under Replace: p_g,k is a
    bounded martingale that converges to 0 or 1 (Ewens 2004, section 3.3; THEORY.md
    section 10.1). Shape (K,)."""
    return _probs(probs).copy()


def _log_factorials(n: int) -> NDArray[np.float64]:
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])


def _multinomial_matrix(states: NDArray[np.int64], targets: NDArray[np.int64], n: int) -> NDArray[np.float64]:
    """P[i, j] = Multinomial(n, states[i] / n) pmf at targets[j] (0^0 = 1)."""
    lf = _log_factorials(n)
    with np.errstate(divide="ignore"):
        logq = np.log(states / n)  # (S, K), -inf where a category is empty
    pos = targets[None, :, :] > 0
    terms = np.where(pos, targets[None, :, :] * np.where(pos, logq[:, None, :], 0.0), 0.0)
    terms = np.where(pos & np.isneginf(logq[:, None, :]), -np.inf, terms)
    log_pmf = lf[n] - lf[targets].sum(axis=1)[None, :] + terms.sum(axis=2)
    return np.exp(log_pmf)


def _compositions(n: int, k: int) -> NDArray[np.int64]:
    """Every vector of k non-negative integers summing to n (stars and bars)."""
    out = []
    for bars in itertools.combinations(range(n + k - 1), k - 1):
        edges = (-1,) + bars + (n + k - 1,)
        out.append([edges[i + 1] - edges[i] - 1 for i in range(k)])
    return np.asarray(out, dtype=np.int64).reshape(-1, k)


def _transient_chain(n: int, probs, event: Event):
    """(pi0, Q): the generation-0 law over the transient states and the transition
    matrix among them, for the first-passage time of ``event`` under Replace."""
    if event not in EVENTS:
        raise ValueError(f"event must be one of {EVENTS}, got {event!r}")
    p = _probs(probs)
    p = p[p > 0]  # categories dead in the truth never come back and never count
    k = p.size
    if k == 1:
        return None, None, k
    count = math.comb(n - 1, k - 1) if event == "extinction" else math.comb(n + k - 1, k - 1) - k
    if count > MAX_STATES:
        raise ValueError(
            f"the exact first-passage chain for n={n} and {k} live categories has {count} transient states "
            f"(max {MAX_STATES}); use a smaller n or fewer categories"
        )
    states = _compositions(n, k)
    alive = (states > 0).sum(axis=1)
    transient = states[alive == k] if event == "extinction" else states[alive >= 2]
    lf = _log_factorials(n)
    logp = np.log(p)
    pi0 = np.exp(lf[n] - lf[transient].sum(axis=1) + transient @ logp) if transient.size else np.zeros(0)
    q = _multinomial_matrix(transient, transient, n) if transient.size else np.zeros((0, 0))
    return pi0, q, k


def first_passage_cdf(g: ArrayLike, n: int, probs: ArrayLike, event: Event = "extinction") -> FloatOrArray:
    """P(T <= g) for the first-passage generation T of ``event`` under Replace, exactly,
    from the absorbing Markov chain of the counts (THEORY.md section 10.1: closed
    forms exist only as diffusion approximations).

    ``event="extinction"``: the first generation at which a category alive in the
    truth has count 0; ``"fixation"``: one category holds all n draws. The states are
    the compositions of n over the live categories (n + 1 states for K = 2; for K = 2
    both events are absorption). Generation 0's counts are Multinomial(n, p0); the
    transition is Multinomial(n, c / n). Cost: O(S^2 K) memory and O(S^2) per
    generation for S transient states (at most 3000).
    """
    gens = _generations(g)
    n = _integer(n, "n", 1)
    pi0, q, k = _transient_chain(n, probs, event)
    if pi0 is None:  # one live category: fixed from the start, never extinct
        return _out(np.full(gens.shape, 1.0 if event == "fixation" else 0.0))
    top = int(gens.max(initial=0))
    survive = np.empty(top + 1)
    v = pi0
    for t in range(top + 1):
        survive[t] = v.sum()
        v = v @ q
    return _out(1.0 - survive[gens])


def first_passage_mean(n: int, probs: ArrayLike, event: Event = "extinction") -> float:
    """E[T] for the first-passage generation of ``event`` under Replace (see
    :func:`first_passage_cdf`): E[T] = sum_g P(T > g) = pi0 (I - Q)^-1 1, the
    fundamental matrix of the absorbing chain (Kemeny and Snell 1960, "Finite Markov
    Chains", Theorem 3.3.5). +inf for extinction with a single live category."""
    n = _integer(n, "n", 1)
    pi0, q, k = _transient_chain(n, probs, event)
    if pi0 is None:
        return 0.0 if event == "fixation" else math.inf
    if pi0.size == 0:
        return 0.0
    t = np.linalg.solve(np.eye(q.shape[0]) - q, np.ones(q.shape[0]))
    return float(pi0 @ t)


def _extinct_by_generation(gens, n: int, probs: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(p of the live categories, P(count_k = 0 at g) for each requested g and live k)
    under Replace, from each category's own two-type Wright-Fisher chain."""
    n = _integer(n, "n", 1)
    if n + 1 > MAX_STATES:
        raise ValueError(f"the exact binomial chain for n={n} has n + 1 states (max {MAX_STATES}); use a smaller n")
    p = _probs(probs)
    p = p[p > 0]
    states = np.stack([np.arange(n + 1), n - np.arange(n + 1)], axis=1)
    step = _multinomial_matrix(states, states, n)  # (n + 1, n + 1): Binomial(n, i/n)
    lf = _log_factorials(n)
    c = np.arange(n + 1)
    sure = p >= 1.0  # a single live category: its count is n for ever
    with np.errstate(divide="ignore"):
        log_q = np.log1p(-np.where(sure, 0.0, p))[:, None]
        log_pi = lf[n] - lf[c] - lf[n - c] + c * np.log(p)[:, None] + (n - c) * log_q
    pi = np.exp(log_pi)
    pi[sure] = np.eye(n + 1)[n]
    top = int(np.max(gens, initial=0))
    out = np.empty((top + 1, p.size))
    for t in range(top + 1):
        out[t] = pi[:, 0]
        pi = pi @ step
    return p, out[gens]


def extinct_mean_replace(g: ArrayLike, n: int, probs: ArrayLike) -> FloatOrArray:
    """E[extinct_g] under Replace: sum over live categories k of P(count_k = 0 at g).

    One category's count against the rest is itself a two-type Wright-Fisher chain
    (c_t ~ Binomial(n, c_{t-1}/n)), started from Binomial(n, p0_k) at generation 0;
    0 is absorbing, so P(extinct by g) is the chain's mass at 0 after g steps, exactly.
    Shumailov et al. 2024: the low-probability tails disappear first. Cost O(K n^2)
    per generation; n + 1 <= 3000.
    """
    _, extinct = _extinct_by_generation(_generations(g), n, probs)
    return _out(extinct.sum(axis=-1))


def missing_mass_mean_replace(g: ArrayLike, n: int, probs: ArrayLike) -> FloatOrArray:
    """E[missing_mass_g] under Replace: sum_k p0_k P(count_k = 0 at g), the truth's
    expected mass on the categories the fit of generation g has lost.

    The same per-category Wright-Fisher chains as :func:`extinct_mean_replace`,
    weighted by p0_k. At g = 0 it is the classical expected missing mass of n draws,
    sum_k p0_k (1 - p0_k)^n (Good 1953; Dohmatob et al. 2024 use it for a Zipf
    truth's tail cut). Exact; cost O(K n^2) per generation; n + 1 <= 3000.
    """
    p, extinct = _extinct_by_generation(_generations(g), n, probs)
    return _out(extinct @ p)


def support_size_mean_replace(g: ArrayLike, n: int, probs: ArrayLike) -> FloatOrArray:
    """E[support_size_g] under Replace: the live categories of the truth minus
    :func:`extinct_mean_replace` (a category never comes back once lost)."""
    p, extinct = _extinct_by_generation(_generations(g), n, probs)
    return _out(p.size - extinct.sum(axis=-1))


def absorption_time_diffusion(n: int, p: float) -> float:
    """Diffusion approximation of E[T] for K = 2 under Replace (first generation at
    which one category is lost), in the simulator's generations:

        E[T] ~ -2n [p ln p + (1 - p) ln(1 - p)] - 1

    (Kimura and Ohta 1969, Genetics 61, 763-771: the mean absorption time of a
    neutral allele at frequency p in a haploid population of n genes, in Wright-Fisher
    steps; generation 0 is already one step). Relative error O(1/n) and worse near
    p = 0 or 1; use :func:`first_passage_mean` for exact values at small n.
    """
    n = _integer(n, "n", 1)
    p = _fraction(p, "p")
    ent = sum(x * math.log(x) for x in (p, 1.0 - p) if x > 0)
    return -2.0 * n * ent - 1.0
