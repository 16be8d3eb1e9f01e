"""Curation of a categorical model (Ferbach, Bertrand, Bose, Gidel, NeurIPS 2024, arXiv
2407.09499): the exact law of a curated point and the exact Markov chain of the refitted
frequencies, with its fixation probabilities. Public through
:mod:`collapse_jax.theory.selection` (THEORY.md section 17.1)."""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._hostmath import scipy_special
from ._checks import _count, _fraction, _integer, _real

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
