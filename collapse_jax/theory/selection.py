"""Exact results for selected synthetic data: curation by a reward, verification, partial
editing and a fixed teacher's labels.

* Curation (Ferbach, Bertrand, Bose, Gidel, NeurIPS 2024, arXiv 2407.09499): every
  synthetic point is picked from K i.i.d. candidates of the current model by a reward r,
  by the Luce / Bradley-Terry choice rule (``"luce"``), by the best candidate
  (``"top1"``), or in the K -> infinity limit, the tilt q ~ p exp(beta r) (``"tilt"``).
  For a categorical model refitted by frequencies the chain is a Markov chain on the
  count vectors, solved exactly (:func:`selection_probs`, :func:`curation_chain`,
  :func:`fixation_probabilities`); for a 1-D Gaussian with a linear or quadratic reward
  the tilt keeps the model Gaussian (:func:`gaussian_tilt_moments`,
  :func:`gaussian_tilt_population`).
* Verification (Feng, Dohmatob, Yang, Charton, Kempe, ICLR 2025, arXiv 2406.07515): a
  verifier keeps the synthetic points that it judges good, with false accepts and
  false rejects (:func:`verified_gaussian_law`, :func:`label_verification_rate`).
* Strong model collapse (Dohmatob, Feng, Subramonian, Kempe, ICLR 2025, arXiv
  2410.04840): a fixed fraction of the labels comes from a wrong teacher, and the OLS
  error plateaus at p^2 Delta^2 however many points are added
  (:func:`strong_collapse_error`, :func:`strong_collapse_plateau`).
* Token-level editing (ToEdit; Zhu et al., ICML 2025, arXiv 2412.14689): each
  generation relabels only a fraction of the points by the current model
  (:func:`edit_ols_error`, :func:`edit_ols_error_gaussian`).

Indexing as everywhere in :mod:`collapse_jax.theory`: generation 0 is the fit to the real
data; generation g has had g + 1 fits. Shares of n are rounded as the simulator rounds
them, floor(fraction n + 1/2). Pure numpy float64. Every formula is [DERIVED] here
(THEORY.md section 17) and checked against an independent numpy Monte Carlo in
``tests/test_theory_selection.py``.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._hostmath import scipy_special
from ._checks import (
    Estimator,
    FloatOrArray,
    _count,
    _delta,
    _fraction,
    _generations,
    _integer,
    _out,
    _positive,
    _real,
)

__all__ = [
    "curation_chain",
    "edit_ols_error",
    "edit_ols_error_gaussian",
    "fixation_probabilities",
    "gaussian_tilt_moments",
    "gaussian_tilt_population",
    "label_verification_rate",
    "selection_probs",
    "strong_collapse_error",
    "strong_collapse_plateau",
    "verified_gaussian_law",
]

Rule = Literal["luce", "top1", "tilt"]
RULES = get_args(Rule)
SUM_TOLERANCE = 1e-6
MAX_STATES = 2500  # count states of a curation chain: the (S, S) transition matrix stays below 50 MB
MAX_CANDIDATE_COMPOSITIONS = 2_000_000  # compositions of K - 1 candidates enumerated by the Luce rule
_TOP_SUM_MAX = 1024  # top1: the best level's probability as a K-term sum up to here
_BLOCK = 4_000_000  # entries of one (models x compositions) block of multinomial probabilities
_MAX_EXPONENT = 700.0  # exp(700) ~ 1e304: relative Luce weights are clipped here (the result is ~0 anyway)


# --------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------


def _probs(probs: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(probs, dtype=np.float64)
    if (
        arr.ndim != 1
        or arr.size < 1
        or not np.all(np.isfinite(arr))
        or np.any(arr < 0)
        or abs(arr.sum() - 1.0) > SUM_TOLERANCE
    ):
        raise ValueError(f"{name} must be a 1-D vector of finite non-negative numbers summing to 1, got {probs!r}")
    return arr / arr.sum()


def _reward(reward: ArrayLike, size: int) -> NDArray[np.float64]:
    arr = np.asarray(reward, dtype=np.float64)
    if arr.shape != (size,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"reward must be {size} finite numbers (one per category), got {reward!r}")
    return arr


def _rule(rule: object) -> str:
    if not isinstance(rule, str) or rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    return rule


def _scale(scale: object) -> float:
    return _real(scale, "scale", 0.0, math.inf, open_low=False)


def _finite(value: object, name: str) -> float:
    return _real(value, name, -math.inf, math.inf, open_low=False)


def _non_negative(value: object, name: str) -> float:
    return _real(value, name, 0.0, math.inf, open_low=False)


# --------------------------------------------------------------------------------------
# categorical curation
# --------------------------------------------------------------------------------------


def _compositions(total: int, parts: int) -> NDArray[np.int64]:
    """Every vector of ``parts`` non-negative integers summing to ``total``, shape
    (comb(total + parts - 1, parts - 1), parts), the first coordinate ascending, then
    the second, ... (lexicographic)."""
    if parts == 1:
        return np.array([[total]], dtype=np.int64)
    blocks = []
    for first in range(total + 1):
        rest = _compositions(total - first, parts - 1)
        blocks.append(np.concatenate([np.full((rest.shape[0], 1), first, dtype=np.int64), rest], axis=1))
    return np.concatenate(blocks, axis=0)


def _multinomial_pmf(comps: NDArray[np.int64], probs: NDArray[np.float64]) -> NDArray[np.float64]:
    """P(counts = comps[m]) under Multinomial(total, probs[b]) for every row b of
    ``probs`` (B, C) and composition m: shape (B, M). Zero probabilities are exact."""
    special = scipy_special()
    total = int(comps[0].sum())
    log_coef = special.gammaln(total + 1.0) - special.gammaln(comps + 1.0).sum(axis=1)
    out = np.empty((probs.shape[0], comps.shape[0]))
    step = max(1, _BLOCK // max(comps.shape[0], 1))
    for start in range(0, probs.shape[0], step):
        block = probs[start : start + step]
        log_p = special.xlogy(comps[None, :, :], block[:, None, :]).sum(axis=2)
        out[start : start + step] = np.exp(log_coef[None, :] + log_p)
    return out


def _top_ratio(f_le: NDArray[np.float64], f_lt: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """(F(L)^K - F(L-)^K) / (F(L) - F(L-)): the probability that the best level is L,
    per unit of L's mass. Up to K = 1024 as sum_j F(L)^j F(L-)^(K-1-j), free of
    cancellation; above, the difference quotient (0 where L has no mass)."""
    if k <= _TOP_SUM_MAX:
        powers = np.arange(k, dtype=np.float64)
        return (f_le[:, None] ** powers[None, :] * f_lt[:, None] ** powers[None, ::-1]).sum(axis=1)
    mass = f_le - f_lt
    return np.where(mass > 0, (f_le**k - f_lt**k) / np.where(mass > 0, mass, 1.0), 0.0)


def _selection(
    probs: NDArray[np.float64], reward: NDArray[np.float64], candidates: int, rule: str, scale: float
) -> NDArray[np.float64]:
    """The law of one selected point for every row of ``probs`` (B, C): shape (B, C)."""
    if rule == "tilt":
        log_w = np.where(probs > 0, scale * reward[None, :], -np.inf)
        weight = probs * np.exp(log_w - log_w.max(axis=1, keepdims=True))
    elif candidates == 1 or scale == 0.0:
        weight = probs.copy()  # one candidate, or every candidate tied: the first (a draw from p)
    elif rule == "top1":
        weight = np.zeros_like(probs)
        for level in np.unique(reward):
            at = reward == level
            f_le = probs[:, reward <= level].sum(axis=1)
            f_lt = probs[:, reward < level].sum(axis=1)
            weight[:, at] = probs[:, at] * _top_ratio(f_le, f_lt, candidates)[:, None]
    else:  # luce: the first candidate is in c and is chosen, times K (exchangeability)
        others = _compositions(candidates - 1, probs.shape[1])
        gap = np.minimum(scale * (reward[None, :] - reward[:, None]), _MAX_EXPONENT)  # [c, d]: beta (r_d - r_c)
        chosen = 1.0 / (1.0 + others.astype(np.float64) @ np.exp(gap).T)  # (M, C): P(pick | c, others)
        weight = candidates * probs * (_multinomial_pmf(others, probs) @ chosen)
    return weight / weight.sum(axis=1, keepdims=True)


def _luce_size(candidates: int, categories: int) -> None:
    size = math.comb(candidates - 1 + categories - 1, categories - 1)
    if size > MAX_CANDIDATE_COMPOSITIONS:
        raise ValueError(
            f"candidates={candidates} with {categories} categories has {size} compositions of the other "
            f"candidates to enumerate (limit {MAX_CANDIDATE_COMPOSITIONS}); use fewer candidates or rule='tilt'"
        )


def selection_probs(
    p: ArrayLike, reward: ArrayLike, candidates: int, rule: Rule = "luce", scale: float = 1.0
) -> NDArray[np.float64]:
    """The law q of one curated point: the pick from K i.i.d. candidates of the model p.

    * ``"luce"``: candidate j is picked with probability exp(beta r_{x_j}) / sum_i
      exp(beta r_{x_i}). By exchangeability q_c = K p_c E[w_c / (w_c + sum_d M_d w_d)],
      w = exp(beta r), M ~ Multinomial(K - 1, p) the other candidates: an exact sum over
      the comb(K + C - 2, C - 1) compositions of K - 1.
    * ``"top1"``: the candidate of highest reward beta r, ties to the first drawn. With
      F(L) = P(r_X <= L), the best level is L with probability F(L)^K - F(L-)^K, and the
      first candidate at that level is in c with probability p_c / (F(L) - F(L-)). At
      beta = 0 every candidate ties and q = p.
    * ``"tilt"``: the K -> infinity limit of both, q_c ~ p_c exp(beta r_c) (Ferbach et
      al.'s RLHF-like limit for ``"luce"``); ``candidates`` is checked but not used.

    K = 1 or beta = 0 give q = p (neutral); categories with p_c = 0 keep q_c = 0.

    Args:
        p: the model's category probabilities, shape (C,), summing to 1 (tolerance 1e-6).
        reward: per-category rewards r, shape (C,), finite.
        candidates: K >= 1 candidates per curated point.
        rule: ``"luce"``, ``"top1"`` or ``"tilt"``.
        scale: beta >= 0, the reward's scale.

    Returns:
        q, shape (C,), float64, summing to 1.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Ferbach et al., NeurIPS 2024, arXiv 2407.09499).
    """
    probs = _probs(p, "p")
    r = _reward(reward, probs.size)
    k = _integer(candidates, "candidates", 1)
    kind = _rule(rule)
    beta = _scale(scale)
    if kind == "luce":
        _luce_size(k, probs.size)
    return _selection(probs[None, :], r, k, kind, beta)[0]


def _states(n: int, categories: int) -> NDArray[np.int64]:
    size = math.comb(n + categories - 1, categories - 1)
    if size > MAX_STATES:
        raise ValueError(
            f"n={n} with {categories} categories gives {size} count states (limit {MAX_STATES}); use a smaller n"
        )
    return _compositions(n, categories)


def _state_index(states: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    """A lookup table from the mixed-radix code of a count vector's first C - 1
    entries to its row in ``states``."""
    radix = (n + 1) ** np.arange(states.shape[1] - 1, dtype=np.int64)
    table = np.full((n + 1) ** (states.shape[1] - 1), -1, dtype=np.int64)
    table[states[:, :-1] @ radix] = np.arange(states.shape[0])
    return table


def _vertices(states: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    """The rows of ``states`` that are n e_c (everything in category c), c = 0..C-1."""
    c = states.shape[1]
    radix = (n + 1) ** np.arange(c - 1, dtype=np.int64)
    return _state_index(states, n)[(n * np.eye(c, dtype=np.int64))[:, :-1] @ radix]


def _transition(
    states: NDArray[np.int64],
    n: int,
    p0: NDArray[np.float64],
    reward: NDArray[np.float64],
    candidates: int,
    rule: str,
    scale: float,
    real: int,
) -> NDArray[np.float64]:
    """T[s, t] = P(counts_{g+1} = states[t] | counts_g = states[s]): ``real`` fresh
    points from p0 plus n - real curated points from q(states[s] / n)."""
    categories = states.shape[1]
    q = _selection(states / n, reward, candidates, rule, scale)
    synthetic = _compositions(n - real, categories)
    fresh = _compositions(real, categories)
    p_fresh = _multinomial_pmf(fresh, p0[None, :])[0]
    table = _state_index(states, n)
    radix = (n + 1) ** np.arange(categories - 1, dtype=np.int64)
    target = table[(fresh[:, None, :-1] + synthetic[None, :, :-1]) @ radix]  # (fresh, synthetic)
    place = np.zeros((synthetic.shape[0], states.shape[0]))
    np.add.at(place, (np.broadcast_to(np.arange(synthetic.shape[0])[None, :], target.shape), target), p_fresh[:, None])
    return _multinomial_pmf(synthetic, q) @ place


def _chain_args(
    p0: ArrayLike, reward: ArrayLike, n: int, candidates: int, rule: str, scale: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], int, int, str, float]:
    probs = _probs(p0, "p0")
    r = _reward(reward, probs.size)
    n = _integer(n, "n", 1)
    k = _integer(candidates, "candidates", 1)
    kind = _rule(rule)
    beta = _scale(scale)
    if kind == "luce":
        _luce_size(k, probs.size)
    return probs, r, n, k, kind, beta


def curation_chain(
    p0: ArrayLike,
    reward: ArrayLike,
    n: int,
    generations: int,
    candidates: int,
    rule: Rule = "luce",
    scale: float = 1.0,
    real_fraction: float = 0.0,
) -> dict[str, NDArray[Any]]:
    """The exact law of the curated categorical chain, generation by generation.

    The model at generation g is the empirical law counts_g / n. Generation 0: counts_0
    ~ Multinomial(n, p0). Then (r = floor(real_fraction n + 1/2); r = 0 is Replace)

        counts_{g+1} = R + Y,  R ~ Multinomial(r, p0),  Y ~ Multinomial(n - r, q(counts_g / n)),

    q from :func:`selection_probs`. This is a Markov chain on the comb(n + C - 1, C - 1)
    compositions of n; its transition matrix is built from multinomial pmfs (a
    convolution for FreshMix) and the law is propagated exactly. Under Replace the
    vertices n e_c are absorbing (q of a point mass is that point mass).

    Args:
        p0: the real law, shape (C,), summing to 1 (tolerance 1e-6).
        reward: per-category rewards r, shape (C,), finite, with a unique maximum.
        n: points per generation, n >= 1 (at most 2500 count states).
        generations: the last generation G >= 0.
        candidates: K >= 1 candidates per curated point.
        rule: ``"luce"``, ``"top1"`` or ``"tilt"`` (see :func:`selection_probs`).
        scale: beta >= 0.
        real_fraction: lambda in [0, 1], the FreshMix share of fresh real points.

    Returns:
        A dict of arrays (S count states, C categories):

        * ``"states"``: (S, C) int64, the count vectors, lexicographic.
        * ``"transition"``: (S, S), one generation's transition matrix (rows sum to 1).
        * ``"distribution"``: (G + 1, S), P(counts_g = states[s]).
        * ``"mean_reward"``: (G + 1,), E[sum_c (counts_g[c] / n) r_c] (unscaled r).
        * ``"frac_at_argmax"``: (G + 1,), E[counts_g[c*] / n], c* = argmax r.
        * ``"fixation"``: (G + 1, C), P(counts_g = n e_c): under Replace, where n e_c
          is absorbing, the probability of being fixed on c by generation g.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Ferbach et al., NeurIPS 2024, arXiv 2407.09499).
    """
    probs, r, n, k, kind, beta = _chain_args(p0, reward, n, candidates, rule, scale)
    gens = _integer(generations, "generations", 0)
    lam = _fraction(real_fraction, "real_fraction")
    best = np.flatnonzero(r == r.max())
    if best.size != 1:
        raise ValueError(f"reward must have a unique maximum (frac_at_argmax needs one category), got {reward!r}")
    states = _states(n, probs.size)
    transition = _transition(states, n, probs, r, k, kind, beta, _count(lam, n))
    dist = np.empty((gens + 1, states.shape[0]))
    dist[0] = _multinomial_pmf(states, probs[None, :])[0]
    for g in range(1, gens + 1):
        dist[g] = dist[g - 1] @ transition
    freq = states / n
    vertices = _vertices(states, n)
    return {
        "states": states,
        "transition": transition,
        "distribution": dist,
        "mean_reward": dist @ (freq @ r),
        "frac_at_argmax": dist @ freq[:, int(best[0])],
        "fixation": dist[:, vertices],
    }


def fixation_probabilities(
    p0: ArrayLike, reward: ArrayLike, n: int, candidates: int, rule: Rule = "luce", scale: float = 1.0
) -> NDArray[np.float64]:
    """lim_g P(counts_g = n e_c) under Replace: the probability that the curated chain
    of :func:`curation_chain` ends fixed on category c.

    The vertices n e_c are the absorbing states; with Q the transient block of the
    transition matrix and R its transient-to-vertex block, the absorption probabilities
    from the transient states are B = (I - Q)^-1 R, so the answer is pi_0[transient] B +
    pi_0[vertices], pi_0 = Multinomial(n, p0). K = 1 or beta = 0 (neutral Wright-Fisher,
    where counts/n is a martingale) give p0.

    Args:
        p0: the real law, shape (C,), summing to 1 (tolerance 1e-6).
        reward: per-category rewards r, shape (C,), finite (ties allowed).
        n: points per generation, n >= 1 (at most 2500 count states).
        candidates: K >= 1.
        rule: ``"luce"``, ``"top1"`` or ``"tilt"``.
        scale: beta >= 0.

    Returns:
        Shape (C,), the fixation probabilities (summing to 1).

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Ferbach et al., NeurIPS 2024, arXiv 2407.09499).
    """
    probs, r, n, k, kind, beta = _chain_args(p0, reward, n, candidates, rule, scale)
    c = probs.size
    states = _states(n, c)
    transition = _transition(states, n, probs, r, k, kind, beta, 0)
    start = _multinomial_pmf(states, probs[None, :])[0]
    vertices = _vertices(states, n)
    transient = np.setdiff1d(np.arange(states.shape[0]), vertices)
    out = start[vertices].copy()
    if transient.size:
        q = transition[np.ix_(transient, transient)]
        absorb = np.linalg.solve(np.eye(transient.size) - q, transition[np.ix_(transient, vertices)])
        out += start[transient] @ absorb
    return np.clip(out, 0.0, 1.0)


# --------------------------------------------------------------------------------------
# Gaussian tilting
# --------------------------------------------------------------------------------------


def gaussian_tilt_moments(
    g: ArrayLike,
    n: int,
    b: float,
    mu0: float = 0.0,
    var0: float = 1.0,
    scale: float = 1.0,
    estimator: Estimator = "mle",
) -> dict[str, FloatOrArray]:
    """Moments of the 1-D Gaussian Replace chain curated by the tilt with a linear reward.

    The tilt of N(mu, s2) by exp(beta b x) is N(mu + beta b s2, s2). Generation 0 fits n
    real points from N(mu0, var0); generation g fits n points of the tilted fit g - 1
    (mean: sample mean; variance: sum of squares / (n - delta)). With W_j ~ chi2_{n-1} /
    (n - delta) and Z_j ~ N(0, 1), all independent, a = beta b, rho = E W = (n - 1)/(n -
    delta), rho2 = E W^2 = (n - 1)(n + 1)/(n - delta)^2:

        s2_g = var0 W_0 ... W_g,   mu_g = mu_{g-1} + a s2_{g-1} + sqrt(s2_{g-1} / n) Z_g,

    so E[s2_g] = var0 rho^(g+1), E[mu_g] = mu0 + a var0 sum_{j<g} rho^(j+1) and

        Var(mu_g) = a^2 sum_{j,k<g} Cov(s2_j, s2_k) + (var0 / n) sum_{j<=g} rho^j,
        Cov(s2_j, s2_k) = var0^2 rho^(k-j) (rho2^(j+1) - rho^(2j+2)),  j <= k,

    (the drift a S_g, S_g = sum_{j<g} s2_j, is uncorrelated with the noise: the Z's are
    independent of every W).

    Args:
        g: generation(s), g >= 0.
        n: points per generation, n >= 2.
        b: the reward's slope (any finite number).
        mu0: the real mean.
        var0: the real variance > 0.
        scale: beta >= 0.
        estimator: "mle" (delta = 0) or "unbiased" (delta = 1).

    Returns:
        ``{"mean": E[mu_g], "variance": E[s2_g], "mean_var": Var(mu_g)}``, floats or
        arrays shaped like ``g``.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (the tilt: Ferbach et al., NeurIPS 2024, arXiv 2407.09499).
    """
    gens = _generations(g)
    n = _integer(n, "n", 2)
    a = _scale(scale) * _finite(b, "b")
    mu0 = _finite(mu0, "mu0")
    v0 = _positive(var0, "var0")
    delta = _delta(estimator)
    rho = (n - 1) / (n - delta)
    top = int(gens.max()) if gens.size else 0
    k = np.arange(top + 1, dtype=np.float64)
    e_s2 = v0 * rho ** (k + 1.0)
    mean = mu0 + a * np.concatenate([[0.0], np.cumsum(e_s2[:-1])])
    # Cov(s2_j, s2_k), j <= k: var0^2 rho^(k - j) rho^(2j + 2) ((rho2 / rho^2)^(j + 1) - 1), rho2 / rho^2 = (n+1)/(n-1)
    j = np.minimum.outer(k, k)
    cov = (
        v0
        * v0
        * rho ** (np.abs(k[:, None] - k[None, :]) + 2.0 * j + 2.0)
        * np.expm1((j + 1.0) * math.log1p(2.0 / (n - 1)))
    )
    drift_var = np.concatenate([[0.0], np.diagonal(cov.cumsum(axis=0).cumsum(axis=1))[:-1]])
    noise = v0 / n * np.cumsum(rho**k)
    return {"mean": _out(mean[gens]), "variance": _out(e_s2[gens]), "mean_var": _out((a * a * drift_var + noise)[gens])}


def gaussian_tilt_population(
    g: ArrayLike, b: float, c: float, mu0: float = 0.0, var0: float = 1.0, scale: float = 1.0
) -> tuple[FloatOrArray, FloatOrArray]:
    """The n = infinity tilted chain with the quadratic reward r(x) = b x - (c/2) x^2.

    The tilt of N(mu, s2) by exp(beta r) is Gaussian with precision 1/s2 + beta c and
    precision-weighted mean mu/s2 + beta b; both add up over generations, from (mu0,
    var0) at generation 0:

        1/s2_g = 1/var0 + g beta c,   mu_g = (mu0/var0 + g beta b) s2_g.

    c > 0: the chain converges to the reward's maximiser b/c with variance ~ 1/(g beta c);
    c = 0: the mean moves by beta b var0 per generation, the variance stays.

    Args:
        g: generation(s), g >= 0.
        b: the reward's slope (finite).
        c: the reward's curvature, c >= 0.
        mu0: the real mean.
        var0: the real variance > 0.
        scale: beta >= 0.

    Returns:
        (mu_g, s2_g), floats or arrays shaped like ``g``.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (the tilt: Ferbach et al., NeurIPS 2024, arXiv 2407.09499).
    """
    gens = _generations(g).astype(np.float64)
    beta = _scale(scale)
    b = _finite(b, "b")
    c = _non_negative(c, "c")
    mu0 = _finite(mu0, "mu0")
    v0 = _positive(var0, "var0")
    s2 = 1.0 / (1.0 / v0 + gens * beta * c)
    return _out((mu0 / v0 + gens * beta * b) * s2), _out(s2)


# --------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------


def _support_z(support: object) -> float:
    """z = Phi^-1((1 + support) / 2): the half-width, in verifier sds, of the good set."""
    s = _fraction(support, "support")
    return math.inf if s == 1.0 else NormalDist().inv_cdf(0.5 + 0.5 * s)


def _verifier_errors(false_accept: object, false_reject: object) -> tuple[float, float]:
    fa = _fraction(false_accept, "false_accept")
    fr = _fraction(false_reject, "false_reject")
    return fa, fr


def verified_gaussian_law(
    mu: float,
    s2: float,
    centre: float,
    sv: float,
    support: float,
    false_accept: float = 0.0,
    false_reject: float = 0.0,
) -> tuple[float, float, float]:
    """The law of the points that a verifier keeps from the model N(mu, s2).

    A point is good when ``|x - centre| <= z sv``, z = Phi^-1((1 + support)/2); the verifier
    accepts a good point with probability 1 - false_reject and a bad one with probability
    false_accept, independently. With Y = (x - mu)/s, the good set alpha <= Y <= beta
    (alpha = (centre - z sv - mu)/s, beta = (centre + z sv - mu)/s), P = Phi(beta) -
    Phi(alpha), and the partial moments

        E[Y; good] = phi(alpha) - phi(beta),  E[Y^2; good] = P + alpha phi(alpha) - beta phi(beta)

    (the bad set's are (0, 1) minus these), the acceptance rate is A = (1 - f_r) P + f_a
    (1 - P) and the kept law's first two moments are the accepted partial moments over A.

    The kept points are i.i.d. from this law, so a generation fitted to n kept points
    has E[mean] = kept_mean and E[mle variance] = kept_var (n - 1)/n (kept_var for the
    unbiased estimator), whatever the law's shape.

    Args:
        mu: the model's mean.
        s2: the model's variance > 0.
        centre: the verifier's centre.
        sv: the verifier's sd > 0.
        support: the verifier's central mass in [0, 1] (1: every point is good).
        false_accept: f_a in [0, 1], the probability of accepting a bad point.
        false_reject: f_r in [0, 1], the probability of rejecting a good point.

    Returns:
        (acceptance_rate, kept_mean, kept_var).

    Raises:
        ValueError: naming the bad argument and its value, or when nothing is ever
            accepted (acceptance rate 0).

    Source: THEORY.md section 17 (Feng et al., ICLR 2025, arXiv 2406.07515).
    """
    mu = _finite(mu, "mu")
    sd = math.sqrt(_positive(s2, "s2"))
    centre = _finite(centre, "centre")
    sv = _positive(sv, "sv")
    z = _support_z(support)
    fa, fr = _verifier_errors(false_accept, false_reject)
    if math.isinf(z):
        good, m1_good, m2_good = 1.0, 0.0, 1.0
    else:
        special = scipy_special()
        lo, hi = (centre - z * sv - mu) / sd, (centre + z * sv - mu) / sd
        # P(lo <= Y <= hi) from the nearer tail, so a far window keeps its precision
        good = float(special.ndtr(-lo) - special.ndtr(-hi)) if lo > 0 else float(special.ndtr(hi) - special.ndtr(lo))
        phi_lo, phi_hi = math.exp(-0.5 * lo * lo), math.exp(-0.5 * hi * hi)
        phi_lo, phi_hi = phi_lo / math.sqrt(2 * math.pi), phi_hi / math.sqrt(2 * math.pi)
        m1_good = phi_lo - phi_hi
        m2_good = good + lo * phi_lo - hi * phi_hi
    rate = (1 - fr) * good + fa * (1 - good)
    if not rate > 0:
        raise ValueError(
            "the verifier accepts nothing: the model puts no mass on the good set with false_reject=1 or "
            f"false_accept=0 (support={support!r}, false_accept={false_accept!r}, false_reject={false_reject!r})"
        )
    m1 = ((1 - fr) * m1_good + fa * (0.0 - m1_good)) / rate
    m2 = ((1 - fr) * m2_good + fa * (1.0 - m2_good)) / rate
    return rate, mu + sd * m1, sd * sd * max(m2 - m1 * m1, 0.0)


def label_verification_rate(
    w: ArrayLike,
    w_v: ArrayLike,
    noise: float,
    support: float,
    false_accept: float = 0.0,
    false_reject: float = 0.0,
) -> FloatOrArray:
    """The acceptance rate of synthetic regression labels checked by a verifier.

    x ~ N(0, I_d), the label y = x^T w + noise eps from the model w; the verifier with
    coefficients w_v calls the label good when ``|y - x^T w_v| <= z noise``, z =
    Phi^-1((1 + support)/2), and accepts good labels with probability 1 - f_r, bad ones
    with f_a.
    Since y - x^T w_v ~ N(0, ||w - w_v||^2 + noise^2),

        P(good) = 2 Phi(z noise / sqrt(||w - w_v||^2 + noise^2)) - 1,
        rate = (1 - f_r) P(good) + f_a (1 - P(good)).

    w = w_v gives support (1 - f_r) + (1 - support) f_a.

    Args:
        w: the model's coefficients, shape (d,) or (..., d).
        w_v: the verifier's coefficients, broadcastable against ``w``.
        noise: the label noise sd > 0.
        support: the verifier's central mass in [0, 1].
        false_accept: f_a in [0, 1].
        false_reject: f_r in [0, 1].

    Returns:
        The acceptance rate, a float, or an array of ``w``'s and ``w_v``'s broadcast
        leading shape.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Feng et al., ICLR 2025, arXiv 2406.07515).
    """
    wm = np.atleast_1d(np.asarray(w, dtype=np.float64))
    wv = np.atleast_1d(np.asarray(w_v, dtype=np.float64))
    if not np.all(np.isfinite(wm)):
        raise ValueError(f"w must hold finite numbers, got {w!r}")
    if not np.all(np.isfinite(wv)):
        raise ValueError(f"w_v must hold finite numbers, got {w_v!r}")
    try:
        diff = wm - wv
    except ValueError:
        raise ValueError(f"w_v must broadcast against w, got shapes {wm.shape} and {wv.shape}") from None
    sigma = _positive(noise, "noise")
    z = _support_z(support)
    fa, fr = _verifier_errors(false_accept, false_reject)
    if math.isinf(z):
        good = np.ones(diff.shape[:-1])
    else:
        spread = np.sqrt(np.sum(diff * diff, axis=-1) + sigma * sigma)
        good = 2.0 * scipy_special().ndtr(z * sigma / spread) - 1.0
    return _out((1 - fr) * good + fa * (1 - good))


# --------------------------------------------------------------------------------------
# strong model collapse: a fixed teacher's labels
# --------------------------------------------------------------------------------------


def _sample_sizes(n: ArrayLike, minimum: int) -> NDArray[np.int64]:
    arr = np.asarray(n)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer) or np.any(arr < minimum):
        raise ValueError(f"n must be an integer or integer array with every n >= {minimum}, got {n!r}")
    return arr.astype(np.int64)


def strong_collapse_error(n: ArrayLike, teacher_fraction: float, delta: float, noise: float = 1.0) -> FloatOrArray:
    """E[(w_hat - w*)^2] of 1-D OLS (no intercept) on a mix of true and teacher labels.

    x ~ N(0, 1); of the n points, r = floor((1 - p) n + 1/2) carry y = x w* + sigma eps
    and m = n - r carry the fixed teacher's y = x w_T + sigma eps. Then

        w_hat - w* = B Delta + sum(x eps) / sum(x^2),   B = sum_teacher x^2 / sum x^2 ~ Beta(m/2, r/2),

    Delta = w_T - w*, and the two terms are uncorrelated (eps is symmetric), so

        E[(w_hat - w*)^2] = Delta^2 m (m + 2) / (n (n + 2)) + sigma^2 / (n - 2),

    which is also the excess test risk under x ~ N(0, 1). As n grows with m/n -> p the
    variance term vanishes and the error tends to p^2 Delta^2
    (:func:`strong_collapse_plateau`): more data does not help.

    Args:
        n: points per fit, an integer or integer array, n >= 3.
        teacher_fraction: p in [0, 1], the share of teacher labels.
        delta: Delta = w_T - w*, the teacher's error (finite).
        noise: sigma >= 0, the label noise sd (the same for both sources).

    Returns:
        The mean squared parameter error, a float or an array shaped like ``n``.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Dohmatob, Feng, Subramonian, Kempe, ICLR 2025, arXiv 2410.04840).
    """
    sizes = _sample_sizes(n, 3)
    p = _fraction(teacher_fraction, "teacher_fraction")
    d = _finite(delta, "delta")
    sigma = _non_negative(noise, "noise")
    nf = sizes.astype(np.float64)
    m = nf - np.floor((1.0 - p) * nf + 0.5)
    return _out(d * d * m * (m + 2.0) / (nf * (nf + 2.0)) + sigma * sigma / (nf - 2.0))


def strong_collapse_plateau(teacher_fraction: float, delta: float) -> float:
    """lim_{n -> infinity} of :func:`strong_collapse_error`: p^2 Delta^2.

    Args:
        teacher_fraction: p in [0, 1].
        delta: Delta = w_T - w* (finite).

    Returns:
        p^2 Delta^2.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Dohmatob, Feng, Subramonian, Kempe, ICLR 2025, arXiv 2410.04840).
    """
    p = _fraction(teacher_fraction, "teacher_fraction")
    d = _finite(delta, "delta")
    return p * p * d * d


# --------------------------------------------------------------------------------------
# token-level editing (ToEdit) on a fixed OLS design
# --------------------------------------------------------------------------------------


def _design(X: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1 or arr.shape[0] < arr.shape[1] or not np.all(np.isfinite(arr)):
        raise ValueError(f"X must be a finite (n, d) design with n >= d >= 1, got shape {arr.shape}")
    if np.linalg.matrix_rank(arr) < arr.shape[1]:
        raise ValueError(f"X must have full column rank {arr.shape[1]}, got rank {np.linalg.matrix_rank(arr)}")
    return arr


def _edit_error(x: NDArray[np.float64], edited: int, generations: int, sigma2: float) -> NDArray[np.float64]:
    n = x.shape[0]
    pinv = np.linalg.solve(x.T @ x, x.T)  # G^-1 X^T, (d, n)
    resid = np.eye(n) - x @ pinv  # I - H
    f = edited / n
    f2 = edited * (edited - 1) / (n * (n - 1)) if n > 1 else 0.0
    cov = sigma2 * np.eye(n)
    out = np.empty(generations + 1)
    out[0] = np.sum((pinv @ cov) * pinv)
    for g in range(1, generations + 1):
        mc = resid @ cov
        a = mc @ resid
        cov = cov - f * (mc + mc.T) + f2 * a + (f - f2) * np.diag(np.diag(a)) + sigma2 * f * np.eye(n)
        cov = 0.5 * (cov + cov.T)
        out[g] = np.sum((pinv @ cov) * pinv)
    return out


def edit_ols_error(X: ArrayLike, fraction: float, generations: int, noise: float = 1.0) -> NDArray[np.float64]:
    """E||w_g - w*||^2 of the OLS chain with token-level editing, given the design X.

    Generation 0 fits y_0 = X w* + sigma eps_0. Generation g >= 1 picks exactly r =
    floor(fraction n + 1/2) rows uniformly without replacement, relabels them by the
    current model (x_i^T w_{g-1} + sigma eps_i) and keeps the other labels; then refits.
    With e_g = y_g - X w*, H = X G^-1 X^T (G = X^T X) and D_g the 0/1 diagonal of the
    picked rows,

        e_g = e_{g-1} - D_g (I - H) e_{g-1} + sigma D_g eps_g,

    so C_g = E[e_g e_g^T] follows, with f = r/n, A = (I - H) C (I - H) and f2 = r (r -
    1)/(n (n - 1)),

        C_g = C - f ((I - H) C + C (I - H)) + f2 A + (f - f2) diag(A) + sigma^2 f I,

    from C_0 = sigma^2 I, and E||w_g - w*||^2 = tr(G^-1 X^T C_g X G^-1). fraction = 1 is
    Replace, sigma^2 tr(G^-1) (g + 1); fraction = 0 keeps sigma^2 tr(G^-1).

    Args:
        X: the fixed design, shape (n, d), full column rank.
        fraction: the edited share in [0, 1].
        generations: the last generation G >= 0.
        noise: sigma > 0.

    Returns:
        Shape (G + 1,): E||w_g - w*||^2 for g = 0..G, conditional on X.

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Zhu et al., ICML 2025, arXiv 2412.14689).
    """
    x = _design(X)
    f = _fraction(fraction, "fraction")
    gens = _integer(generations, "generations", 0)
    sigma = _positive(noise, "noise")
    return _edit_error(x, _count(f, x.shape[0]), gens, sigma * sigma)


def edit_ols_error_gaussian(
    n: int,
    d: int,
    fraction: float,
    generations: int,
    noise: float = 1.0,
    designs: int = 200,
    seed: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`edit_ols_error` averaged over random designs with i.i.d. N(0, 1) entries.

    For comparison with a simulator whose every chain draws its own design: the exact
    conditional error is averaged over ``designs`` designs drawn by
    ``numpy.random.default_rng(seed)``, so the result carries a Monte Carlo error over
    designs, reported as a standard error. (fraction = 1 and 0 have the closed forms
    sigma^2 d (g + 1)/(n - d - 1) and sigma^2 d/(n - d - 1), E tr(G^-1) = d/(n - d - 1).)

    Args:
        n: points, n >= d.
        d: dimension, d >= 1.
        fraction: the edited share in [0, 1].
        generations: the last generation G >= 0.
        noise: sigma > 0.
        designs: number of designs averaged, >= 2.
        seed: the numpy Generator's seed, >= 0.

    Returns:
        (mean, se), each of shape (G + 1,).

    Raises:
        ValueError: naming the bad argument and its value.

    Source: THEORY.md section 17 (Zhu et al., ICML 2025, arXiv 2412.14689).
    """
    d = _integer(d, "d", 1)
    n = _integer(n, "n", d)
    f = _fraction(fraction, "fraction")
    gens = _integer(generations, "generations", 0)
    sigma = _positive(noise, "noise")
    count = _integer(designs, "designs", 2)
    rng = np.random.default_rng(_integer(seed, "seed", 0))
    edited = _count(f, n)
    errors = np.stack(
        [_edit_error(_design(rng.standard_normal((n, d))), edited, gens, sigma * sigma) for _ in range(count)]
    )
    return errors.mean(axis=0), errors.std(axis=0, ddof=1) / math.sqrt(count)
