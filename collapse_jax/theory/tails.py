"""Tails and scaling laws of a memoriser on Zipf data (Hutter's model, "A Tale of Tails").

Setting (Dohmatob, Feng, Yang, Charton, Kempe, "A Tale of Tails: Model Collapse as a
Change of Scaling Laws", ICML 2024, arXiv 2402.07043; their toy model is Hutter 2021,
"Learning Curve Theory", arXiv 2102.04074): inputs i = 1..K (K may be ``math.inf``),
the truth p_i = i^-beta / H_{K,beta} with H_{K,beta} = sum_{i<=K} i^-beta (Zipf), and
every input has one true label. A memoriser trained on T i.i.d. inputs from a training
law q, each with its label, predicts the stored label on the inputs it saw and errs on
the others, so its test error under the truth, averaged over the T draws, is exactly

    E(T) = sum_i p_i (1 - q_i)^T        (the p-mass q's sample missed; Good 1953).

The training laws (THEORY.md section 14): the clean law q = p; the tail cut at rank k,
q = p restricted to i <= k and renormalised; the narrowed tail, q_i proportional to
i^-beta' with beta' > beta on the same inputs; and the mixture pi p + (1 - pi) q_cut.
The paper's theorems are not restated here (their text was not available): every
formula below is marked [DERIVED] and was checked by an independent numpy Monte Carlo
in tests/test_theory_tails.py. Real T >= 0 is accepted everywhere (the formulas are
analytic in T); only integer T is a sample size. Pure numpy float64; scipy.special for
the Hurwitz zeta, Gamma and incomplete beta functions. Scalar ``T`` (or ``g``) gives a
float, an array gives an array of its shape.

Infinite sums (K = inf, or K above ``terms``): the first ``terms`` ranks of a sum
sum_i f(i), f(x) = A x^-beta (1 - B x^-gamma)^T, are added directly and the rest,
sum_{i=M}^{K} f(i), by the trapezoid rule int_M^K f + (f(M) + f(K)) / 2 with the
integral in closed form (an incomplete beta function, ``_tail_integral``), with a
rigorous error ``bound`` (``return_bound=True``) [DERIVED]:

- f is unimodal in x (x f'/f = w - beta with w = T gamma u / (1 - u), u = B x^-gamma,
  decreasing in x), and for a unimodal f >= 0 on [M, K]
  f(M) + f(K) - max f <= sum_{i=M}^{K} f(i) - int_M^K f <= max f, so the trapezoid
  value is within max_[M,K] f - (f(M) + f(K)) / 2 of the sum.
- Where f is convex on [M, inf) the sum exceeds the trapezoid value by between 0 and
  (f'(K) - f'(M)) / 8 (on each unit interval the trapezoid error is
  int x (1 - x) f'' / 2 <= (f'(i + 1) - f'(i)) / 8), so half of that is added and the
  bound is (f'(K) - f'(M)) / 16 ~ beta f(M) / (16 M). With h = x^2 f''/f =
  (beta - w)^2 + (beta - w) - gamma w / (1 - u), which increases with x once w <= beta,
  convexity on [M, inf) holds iff w(M) <= beta and h(M) >= 0; this is checked per T.

With the default 2^20 direct terms the clean error's relative bound is below 2e-14 for
beta >= 1.5 and T <= 1e9, and for beta = 1.1 up to T = 1e7; beyond that (beta near 1,
T ~ 1e8) the peak of f passes M and the unimodal bound, of order max f ~ 1/T, applies
(relative 1e-8 at beta = 1.1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._hostmath import scipy_special
from ._checks import FloatOrArray, _fraction, _generations, _integer, _out, _real

__all__ = [
    "cut_crossover",
    "cut_error",
    "cut_probs",
    "fit_exponent",
    "fit_exponent_ci",
    "label_chain_error",
    "label_chain_growth",
    "label_chain_limit",
    "memoriser_error",
    "mixed_error",
    "mixed_error_bounds",
    "mixed_probs",
    "narrowed_error",
    "narrowed_probs",
    "scaling_constant",
    "scaling_exponent",
    "scaling_law",
    "scaling_law_bound",
    "zipf_error",
    "zipf_normaliser",
    "zipf_probs",
    "zipf_tail_mass",
]

DIRECT_TERMS = 2**20  # ranks summed term by term before the closed-form tail
_CHUNK = 2**16  # ranks per block of a direct sum (bounds the memory of a T sweep)
_PROB_TOL = 1e-6  # tolerance on sum(p) = 1


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------
def _beta(beta: object, name: str = "beta") -> float:
    return _real(beta, name, 0.0, math.inf, open_low=True)


def _support(K: object, beta: float) -> float:
    """K: an integer >= 1 or math.inf; an infinite support needs beta > 1."""
    if isinstance(K, (float, np.floating)) and math.isinf(K) and K > 0:
        if beta <= 1.0:
            raise ValueError(f"beta must be > 1 when K is infinite (sum i^-beta diverges), got beta={beta!r}")
        return math.inf
    return float(_integer(K, "K", 1))


def _rank(k: object, K: float, name: str = "k") -> int:
    k = _integer(k, name, 1)
    if k > K:
        raise ValueError(f"{name} must be an integer in [1, K={K}], got {k!r}")
    return k


def _sizes(T: ArrayLike, name: str = "T", positive: bool = False) -> NDArray[np.float64]:
    arr = np.asarray(T)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must be a real number or array of sample sizes, got {T!r}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else (arr < 0))
    if np.any(bad):
        raise ValueError(f"{name} must be finite and {'> 0' if positive else '>= 0'}, got {T!r}")
    return arr


def _prob_vector(x: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be a 1-D vector of K >= 1 finite non-negative probabilities, got {x!r}")
    total = float(arr.sum())
    if abs(total - 1.0) > _PROB_TOL:
        raise ValueError(f"{name} must sum to 1 (tolerance {_PROB_TOL}), got sum {total!r}")
    return arr / total


def _num_labels(L: object) -> float:
    if isinstance(L, (float, np.floating)) and math.isinf(L) and L > 0:
        return math.inf
    return float(_integer(L, "num_labels", 2))


# --------------------------------------------------------------------------------------
# Zipf laws
# --------------------------------------------------------------------------------------
def _power_sum(beta: float, a: float, b: float) -> float:
    """sum_{i=a}^{b} i^-beta (b may be inf, then beta > 1); 0 if b < a. Hurwitz zeta
    differences for long ranges with beta > 1, else a direct (pairwise) sum."""
    if b < a:
        return 0.0
    if beta > 1.0 and b - a >= DIRECT_TERMS:
        zeta = scipy_special().zeta
        return float(zeta(beta, a) - (zeta(beta, b + 1) if math.isfinite(b) else 0.0))
    total = 0.0
    for start in range(int(a), int(b) + 1, _CHUNK):
        i = np.arange(start, min(start + _CHUNK, int(b) + 1), dtype=np.float64)
        total += float(np.sum(i**-beta))
    return total


def zipf_normaliser(beta: float, K: float = math.inf) -> float:
    """H_{K,beta} = sum_{i=1}^{K} i^-beta: the Riemann zeta(beta) for K = inf (beta > 1),
    zeta(beta) - zeta(beta, K + 1) (Hurwitz) for finite K and beta > 1, a direct sum
    for beta <= 1."""
    beta = _beta(beta)
    return _power_sum(beta, 1.0, _support(K, beta))


def zipf_probs(beta: float, K: int) -> NDArray[np.float64]:
    """p_i = i^-beta / H_{K,beta}, i = 1..K (K finite; beta > 0), shape (K,). The same
    law as ``cj.Categorical.zipf(beta, K)``."""
    beta = _beta(beta)
    K = _integer(K, "K", 1)
    w = np.arange(1, K + 1, dtype=np.float64) ** -beta
    return w / w.sum()


def zipf_tail_mass(beta: float, k: int, K: float = math.inf) -> float:
    """tau_k = sum_{k < i <= K} p_i, the truth's mass beyond rank k, from the Hurwitz
    zeta (beta > 1): (zeta(beta, k + 1) - zeta(beta, K + 1)) / H_{K,beta}. It is the
    plateau of the cut memoriser, lim_T cut_error(T) (see :func:`cut_error`)."""
    beta = _beta(beta)
    K = _support(K, beta)
    k = _rank(k, K)
    return _power_sum(beta, k + 1.0, K) / _power_sum(beta, 1.0, K)


def cut_probs(beta: float, k: int, K: int) -> NDArray[np.float64]:
    """The tail cut at rank k: q_i = i^-beta / H_{k,beta} for i <= k, 0 for k < i <= K
    (the truth restricted to its k most likely inputs and renormalised), shape (K,)."""
    beta = _beta(beta)
    K = _integer(K, "K", 1)
    k = _rank(k, K)
    q = np.zeros(K)
    q[:k] = zipf_probs(beta, k)
    return q


def narrowed_probs(beta: float, beta_prime: float, K: int) -> NDArray[np.float64]:
    """The narrowed tail: q_i = i^-beta' / H_{K,beta'} on the same inputs 1..K, with
    beta' > beta (the same ranks, a thinner tail), shape (K,)."""
    beta = _beta(beta)
    bp = _real(beta_prime, "beta_prime", beta, math.inf, open_low=True)
    return zipf_probs(bp, K)


def mixed_probs(beta: float, k: int, pi: float, K: int) -> NDArray[np.float64]:
    """q = pi p + (1 - pi) q_cut: a fraction pi of clean draws mixed with draws from
    the tail cut at rank k (:func:`cut_probs`), shape (K,)."""
    pi = _fraction(pi, "pi")
    return pi * zipf_probs(beta, K) + (1.0 - pi) * cut_probs(beta, k, K)


# --------------------------------------------------------------------------------------
# Exact memoriser errors
# --------------------------------------------------------------------------------------
def memoriser_error(T: ArrayLike, p: ArrayLike, q: ArrayLike) -> FloatOrArray:
    """E(T) = sum_i p_i (1 - q_i)^T, the exact expected test error under the truth p of a
    memoriser trained on T i.i.d. draws from q (each input right if seen, wrong if not).

    Computed as sum_i p_i exp(T log1p(-q_i)): stable for T up to 1e9 and beyond, no
    cancellation (every term is >= 0), memory O(K) per block of T values.

    Args:
        T: sample size(s) >= 0, any shape (real T is the analytic continuation).
        p, q: probability vectors of the same length K (checked: finite, >= 0, sum 1).

    Returns:
        E(T), shape of ``T`` (a float for scalar T).
    """
    t = _sizes(T)
    p = _prob_vector(p, "p")
    q = _prob_vector(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same length, got {p.size} and {q.size}")
    with np.errstate(divide="ignore"):
        lq = np.log1p(-q)  # -inf where q_i = 1
    flat = t.ravel()
    out = np.zeros(flat.size)
    for start in range(0, p.size, _CHUNK):
        sl = slice(start, start + _CHUNK)
        with np.errstate(invalid="ignore"):  # 0 * -inf, replaced by (1 - q)^0 = 1
            expo = np.where(flat[:, None] == 0, 0.0, flat[:, None] * lq[None, sl])
        out += np.exp(expo) @ p[sl]
    return _out(out.reshape(t.shape))


def _f(t, beta, gamma, A, B, x):
    """f(x) = A x^-beta (1 - B x^-gamma)^t for each t; 0 at x = inf."""
    if math.isinf(x):
        return np.zeros_like(t)
    expo = (
        np.where(t == 0, 0.0, t * math.log1p(-B * x**-gamma)) if B * x**-gamma < 1 else np.where(t == 0, 0.0, -np.inf)
    )
    return A * x**-beta * np.exp(expo)


def _tail_integral(t, beta, gamma, A, B, lo, hi):
    """int_lo^hi A x^-beta (1 - B x^-gamma)^t dx (beta > 1, B > 0) [DERIVED]: with
    u = B x^-gamma and s = (beta - 1)/gamma it is (A/gamma) B^-s B(s, t + 1)
    [I_{u(lo)}(s, t + 1) - I_{u(hi)}(s, t + 1)], I the regularised incomplete beta,
    B(s, t + 1) = Gamma(s) / poch(t + 1, s)."""
    sp = scipy_special()
    s = (beta - 1.0) / gamma
    full = A / gamma * B**-s * math.gamma(s) / sp.poch(t + 1.0, s)
    u_lo, u_hi = B * lo**-gamma, (0.0 if math.isinf(hi) else B * hi**-gamma)
    upper = u_hi * (s + t + 1.0) >= s  # both past the beta law's mean: difference of complements
    lower_part = sp.betainc(s, t + 1.0, u_lo) - sp.betainc(s, t + 1.0, u_hi)
    upper_part = sp.betaincc(s, t + 1.0, u_hi) - sp.betaincc(s, t + 1.0, u_lo)
    return full * np.where(upper, upper_part, lower_part)


def _segment(t, beta, gamma, A, B, a, b, terms):
    """(S, bound): S(t) = sum_{i=a}^{b} A i^-beta (1 - B i^-gamma)^t (B a^-gamma <= 1),
    the first ``terms`` ranks directly, the rest by the trapezoid rule (module docstring)."""
    if B == 0.0:  # (1 - 0)^t = 1: a plain power sum
        return np.full_like(t, A * _power_sum(beta, a, b)), np.zeros_like(t)
    last = b if (b - a + 1 <= terms or beta <= 1.0) else a + terms - 1
    total = np.zeros_like(t)
    for start in range(int(a), int(last) + 1, _CHUNK):
        i = np.arange(start, min(start + _CHUNK, int(last) + 1), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) and 0 * -inf at B = 1, i = 1
            lq = np.log1p(-B * i**-gamma)
            expo = np.where(t[:, None] == 0, 0.0, t[:, None] * lq[None, :])
        total += np.exp(expo) @ (A * i**-beta)
    bound = np.zeros_like(t)
    if last < b:
        m = last + 1.0
        fm, fb = _f(t, beta, gamma, A, B, m), _f(t, beta, gamma, A, B, b)
        peak = np.clip((B * (t * gamma + beta) / beta) ** (1.0 / gamma), m, b)
        fmax = np.array([_f(np.array([ti]), beta, gamma, A, B, float(x))[0] for ti, x in zip(t, peak)])
        total += _tail_integral(t, beta, gamma, A, B, m, b) + 0.5 * (fm + fb)
        bound = np.maximum(fmax - 0.5 * (fm + fb), 0.0)
        # f convex on [m, inf): the sum exceeds the trapezoid value by 0..(f'(b) - f'(m))/8
        w = lambda x: t * gamma * B * x**-gamma / (1.0 - B * x**-gamma)  # x f'/f = w - beta
        wm = w(m)
        convex = (wm <= beta) & ((beta - wm) ** 2 + (beta - wm) >= gamma * wm / (1.0 - B * m**-gamma))
        slope = (0.0 if math.isinf(b) else fb * (w(b) - beta) / b) - fm * (wm - beta) / m
        total += np.where(convex, slope / 16.0, 0.0)
        bound = np.where(convex, np.abs(slope) / 16.0, bound)
    return total, bound


def _zipf_sum(T, beta, K, pieces, constant, terms, return_bound):
    """sum over pieces (gamma, B, a, b) of segment sums with A = 1/H_{K,beta}, plus constant."""
    terms = _integer(terms, "terms", 1)
    t = _sizes(T)
    flat = t.ravel()
    A = 1.0 / _power_sum(beta, 1.0, K)
    value, bound = np.full(flat.size, constant), np.zeros(flat.size)
    for gamma, B, a, b in pieces:
        if b >= a:
            v, e = _segment(flat, beta, gamma, A, B, a, b, terms)
            value, bound = value + v, bound + e
    out = _out(value.reshape(t.shape))
    return (out, _out(bound.reshape(t.shape))) if return_bound else out


def zipf_error(
    T: ArrayLike, beta: float, K: float = math.inf, *, terms: int = DIRECT_TERMS, return_bound: bool = False
) -> Any:
    """E(T) = sum_{i<=K} p_i (1 - p_i)^T: the memoriser trained on clean Zipf data, exactly
    (up to ``bound``, see the module docstring; 0 when K <= terms). K = inf needs beta > 1.
    Returns E, or (E, bound) with ``|E - exact| <= bound`` if ``return_bound``."""
    beta = _beta(beta)
    K = _support(K, beta)
    B = 1.0 / _power_sum(beta, 1.0, K)
    return _zipf_sum(T, beta, K, [(beta, B, 1.0, K)], 0.0, terms, return_bound)


def cut_error(
    T: ArrayLike, beta: float, k: int, K: float = math.inf, *, terms: int = DIRECT_TERMS, return_bound: bool = False
) -> Any:
    """E_cut(T) = tau_k + sum_{i<=k} p_i (1 - p_i / (1 - tau_k))^T: trained on the tail
    cut at rank k (:func:`cut_probs`), tau_k = :func:`zipf_tail_mass`. Exact bounds
    [DERIVED]: tau_k <= E_cut(T) <= tau_k + (1 - tau_k) exp(-T p_k / (1 - tau_k)), so
    E_cut(T) -> tau_k (the plateau) exponentially fast in T p_k; and E_cut(T) <= tau_k +
    E(T / (1 - tau_k)) (Bernoulli: 1 - a x <= (1 - x)^a for a >= 1)."""
    beta = _beta(beta)
    K = _support(K, beta)
    k = _rank(k, K)
    tau = _power_sum(beta, k + 1.0, K) / _power_sum(beta, 1.0, K)
    return _zipf_sum(T, beta, K, [(beta, 1.0 / _power_sum(beta, 1.0, k), 1.0, k)], tau, terms, return_bound)


def narrowed_error(
    T: ArrayLike,
    beta: float,
    beta_prime: float,
    K: float = math.inf,
    *,
    terms: int = DIRECT_TERMS,
    return_bound: bool = False,
) -> Any:
    """E(T) = sum_{i<=K} p_i (1 - q_i)^T with q the narrowed tail (:func:`narrowed_probs`):
    q_i = i^-beta' / H_{K,beta'}, beta' > beta. Asymptotically C' T^-((beta - 1)/beta')
    (:func:`scaling_law` with ``beta_prime``): a slower scaling law than the clean one."""
    beta = _beta(beta)
    bp = _real(beta_prime, "beta_prime", beta, math.inf, open_low=True)
    K = _support(K, beta)
    return _zipf_sum(T, beta, K, [(bp, 1.0 / _power_sum(bp, 1.0, K), 1.0, K)], 0.0, terms, return_bound)


def mixed_error(
    T: ArrayLike,
    beta: float,
    k: int,
    pi: float,
    K: float = math.inf,
    *,
    terms: int = DIRECT_TERMS,
    return_bound: bool = False,
) -> Any:
    """E_mix(T) = sum_{i<=k} p_i (1 - c p_i)^T + sum_{k<i<=K} p_i (1 - pi p_i)^T with
    c = pi + (1 - pi)/(1 - tau_k): trained on q = pi p + (1 - pi) q_cut
    (:func:`mixed_probs`). For its law in terms of the clean error see
    :func:`mixed_error_bounds`."""
    beta = _beta(beta)
    K = _support(K, beta)
    k = _rank(k, K)
    pi = _fraction(pi, "pi")
    h_k, h_K = _power_sum(beta, 1.0, k), _power_sum(beta, 1.0, K)
    pieces = [(beta, pi / h_K + (1.0 - pi) / h_k, 1.0, k), (beta, pi / h_K, k + 1.0, K)]
    return _zipf_sum(T, beta, K, pieces, 0.0, terms, return_bound)


def mixed_error_bounds(T: ArrayLike, beta: float, k: int, pi: float, K: float = math.inf, *, terms: int = DIRECT_TERMS):
    """(lower, upper) with lower <= E_mix(T) <= upper exactly [DERIVED] (up to the
    ``bound`` of the infinite sums), E the clean error (:func:`zipf_error`):

        lower = max(E(pi T) - (1 - tau_k)(1 - p_k)^(pi T),  tau_k (1 - pi p_{k+1})^T),
        upper = min(sum_i p_i (1 - pi p_i)^T,  tau_k + (1 - tau_k)(1 - c p_k)^T),

    c = pi + (1 - pi)/(1 - tau_k). Proof: the head i <= k has training mass c p_i >= pi p_i
    and c p_i >= c p_k, the tail i > k has pi p_i <= pi p_{k+1} and mass tau_k; on the tail
    1 - pi x >= (1 - x)^pi (Bernoulli, pi in [0, 1]), and the clean head error at pi T is at
    most (1 - tau_k)(1 - p_k)^(pi T). Also sum_i p_i (1 - pi p_i)^T = E_{N ~ Bin(T, pi)} E(N)
    <= sum_i p_i e^(-pi T p_i).

    Reading: for T >> 1/p_k the head is learnt and E_mix sits on the plateau tau_k until
    T ~ 1/(pi p_{k+1}); once pi T p_k >> 1, E_mix(T) = E(pi T) up to (1 - tau_k) e^(-pi T p_k):
    the clean law at the clean sample size pi T. (With N ~ Poisson(T) draws the clean ones
    are Poisson(pi T) by thinning, and E_mix = sum_i p_i e^(-pi T p_i) minus a head term in
    [0, (1 - tau_k) e^(-pi T p_k)], exactly.)"""
    beta = _beta(beta)
    K = _support(K, beta)
    k = _rank(k, K)
    pi = _fraction(pi, "pi")
    t = _sizes(T)
    h_K = _power_sum(beta, 1.0, K)
    tau = _power_sum(beta, k + 1.0, K) / h_K
    p_k = k**-beta / h_K
    c = pi + (1.0 - pi) / (1.0 - tau)
    clean = np.asarray(_zipf_sum(pi * t, beta, K, [(beta, 1.0 / h_K, 1.0, K)], 0.0, terms, False), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) at p_k = 1 or c p_k = 1; 0 * -inf at T = 0
        head = (1.0 - tau) * np.where(pi * t == 0, 1.0, np.exp(pi * t * np.log1p(-p_k)))
        head_mix = (1.0 - tau) * np.where(t == 0, 1.0, np.exp(t * np.log1p(-c * p_k)))
    plateau = tau * np.exp(t * math.log1p(-pi * (k + 1.0) ** -beta / h_K)) if k < K else np.zeros_like(t)
    lower = np.maximum(clean - head, plateau)
    binomial = np.asarray(_zipf_sum(t, beta, K, [(beta, pi / h_K, 1.0, K)], 0.0, terms, False), dtype=np.float64)
    upper = np.minimum(binomial, tau + head_mix)
    return _out(lower), _out(upper)


# --------------------------------------------------------------------------------------
# Scaling laws (K = inf)
# --------------------------------------------------------------------------------------
def _law_parameters(beta: float, beta_prime: float | None):
    beta = _beta(beta)
    if beta <= 1.0:
        raise ValueError(f"beta must be > 1 for a scaling law (infinite K), got {beta!r}")
    gamma = beta if beta_prime is None else _real(beta_prime, "beta_prime", beta, math.inf, open_low=True)
    z, w = _power_sum(beta, 1.0, math.inf), _power_sum(gamma, 1.0, math.inf)
    return beta, gamma, z, w, (beta - 1.0) / gamma


def scaling_exponent(beta: float, beta_prime: float | None = None) -> float:
    """s = (beta - 1) / beta' (beta' = beta for clean data: s = 1 - 1/beta), the exponent of
    E(T) ~ C T^-s for a Zipf(beta) truth and a Zipf(beta') training law, K = inf [DERIVED]."""
    return _law_parameters(beta, beta_prime)[4]


def scaling_constant(beta: float, beta_prime: float | None = None) -> float:
    """C = Gamma(s) W^s / (beta' Z), Z = zeta(beta), W = zeta(beta'), s = (beta - 1)/beta'
    [DERIVED]: C T^-s = int_0^inf x^-beta / Z exp(-T x^-beta' / W) dx (substitute
    u = T x^-beta' / W). Clean data: C = Gamma(1 - 1/beta) / (beta zeta(beta)^(1/beta))."""
    beta, gamma, z, w, s = _law_parameters(beta, beta_prime)
    return math.gamma(s) * w**s / (gamma * z)


def scaling_law(T: ArrayLike, beta: float, beta_prime: float | None = None, *, order: int = 0) -> FloatOrArray:
    """C T^-s (1 + a_1 / T + a_2 / T^2) truncated after ``order`` (0, 1 or 2) [DERIVED]:

        a_1 = -s (s + 1) / 2,    a_2 = s (s + 1)(s + 2) [(s + 3)/8 - 1/3],

    from (1 - q)^T = e^(-Tq) [1 - T q^2/2 - T q^3/3 + T^2 q^4/8 + ...] and
    int_0^inf u^(s-1+m) e^-u du = Gamma(s + m). The Poissonised sum sum_i p_i e^(-T q_i)
    equals C T^-s up to a term smaller than every power of T (its Mellin transform,
    Gamma(z) W^z zeta(beta - beta' z) / Z, has no pole right of z = s), so the relative
    error of order m is O(T^-(m+1)). Rigorous: :func:`scaling_law_bound`."""
    t = _sizes(T, positive=True)
    order = _integer(order, "order", 0)
    if order > 2:
        raise ValueError(f"order must be 0, 1 or 2, got {order!r}")
    s = scaling_exponent(beta, beta_prime)
    coef = [1.0, -s * (s + 1) / 2, s * (s + 1) * (s + 2) * ((s + 3) / 8 - 1 / 3)]
    series = sum(coef[m] * t**-m for m in range(order + 1))
    return _out(scaling_constant(beta, beta_prime) * t**-s * series)


def scaling_law_bound(T: ArrayLike, beta: float, beta_prime: float | None = None) -> FloatOrArray:
    """A rigorous bound on ``|E(T) - C T^-s|``, E the exact error for K = inf, T > 0 [DERIVED]:

        phi_max + [Gamma(s + 2) W^s T^-(s+1) / (beta' Z) + psi_max] / (2 (1 - q_1)),

    phi_max = (W u / T)^(beta/beta') e^-u / Z at u = beta/beta', psi_max the same times
    v^2 / T at v = beta/beta' + 2, q_1 = 1/W. Proof: 0 <= e^(-Tq) - (1 - q)^T <=
    e^(-Tq) T q^2 / (2(1 - q)) (log(1 - q) >= -q - q^2/(2(1 - q))), and the unimodal
    sum-integral lemma (module docstring) for x^-beta e^(-T q(x)) and for
    x^-beta T q^2 e^(-T q). Relative size O(T^-(1/beta')): loose, as the true error is
    O(1/T) (:func:`scaling_law`)."""
    t = _sizes(T, positive=True)
    beta, gamma, z, w, s = _law_parameters(beta, beta_prime)
    u, v = beta / gamma, beta / gamma + 2.0
    phi = (w * u / t) ** (beta / gamma) * math.exp(-u) / z
    psi = (w * v / t) ** (beta / gamma) * v * v * math.exp(-v) / (z * t)
    poisson = (math.gamma(s + 2) * w**s * t ** -(s + 1) / (gamma * z) + psi) / (2.0 * (1.0 - 1.0 / w))
    return _out(phi + poisson)


def cut_crossover(beta: float, k: int) -> float:
    """T_k = (C / tau_k)^(1/s), s = 1 - 1/beta: where the clean law C T^-s meets the cut's
    plateau tau_k (K = inf) [DERIVED]: the scale at which tau_k <= E_cut(T) <=
    tau_k + E(T / (1 - tau_k)) (:func:`cut_error`) turns from the clean law to the plateau.
    Since
    tau_k = (k + 1/2)^(1 - beta) / ((beta - 1) zeta(beta)) (1 + O(k^-2)) (midpoint rule),
    T_k = (C (beta - 1) zeta(beta))^(beta/(beta - 1)) (k + 1/2)^beta (1 + O(k^-2))."""
    s = scaling_exponent(beta)
    return (scaling_constant(beta) / zipf_tail_mass(beta, k, math.inf)) ** (1.0 / s)


# --------------------------------------------------------------------------------------
# The label chain over generations
# --------------------------------------------------------------------------------------
def _label_setup(T, p, num_labels, clean_fraction, top):
    p = _prob_vector(p, "p")
    ell = 1.0 - 1.0 / _num_labels(num_labels)
    pi = _fraction(clean_fraction, "clean_fraction")
    sizes = _sizes(T)
    if sizes.ndim > 1 or (sizes.ndim == 1 and sizes.size < top + 1):
        raise ValueError(f"T must be a number or a 1-D schedule with one size per generation 0..{top}, got {T!r}")
    return p, ell, pi, sizes


def label_chain_error(
    g: ArrayLike, T: ArrayLike, p: ArrayLike, *, num_labels: float = math.inf, clean_fraction: float = 0.0
) -> FloatOrArray:
    """E_g, the exact expected test error of the generation-g memoriser in the label chain.

    Model (THEORY.md section 14.4): L labels (``num_labels``, math.inf allowed), input i's
    true label y_i. Model g is a table: the inputs it saw keep the label they were stored
    with; on an unseen input it answers a default label drawn uniformly from the L labels
    once per model and input, independently of everything (L = inf: always wrong).
    Generation g draws T_g inputs i.i.d. from the truth p; each draw is labelled by the
    truth with probability ``clean_fraction`` = pi, independently, otherwise by model
    g - 1's answer (generation 0: by the truth); the model stores the label of an input's
    first draw. Then [DERIVED], with r_j = (1 - p_i)^(T_j), s_j = 1 - r_j, l = 1 - 1/L,
    the probability e_g that model g answers input i wrongly obeys

        e_g = r_g l + s_g (1 - pi) e_{g-1},   e_{-1} = 0,

    (unseen: wrong with probability l; seen: right if the first draw was clean, else
    right iff model g - 1 was), and E_g = sum_i p_i e_g. For constant T,
    e_g = r l [1 - rho^(g+1)] / (1 - rho), rho = s (1 - pi); for pi = 0,
    E_g = l sum_i p_i [1 - (1 - r_i)^(g+1)] <= (g + 1) E_0 (union bound).

    Args:
        g: generation(s) >= 0, int or integer array.
        T: draws per generation: a number (every generation) or a 1-D schedule T[j].
        p: the truth, a probability vector (finite K).
        num_labels: L >= 2, or math.inf.
        clean_fraction: pi in [0, 1].

    Returns:
        E_g, shape of ``g``.
    """
    gens = _generations(g)
    top = int(gens.max(initial=0))
    pv, ell, pi, sizes = _label_setup(T, p, num_labels, clean_fraction, top)
    with np.errstate(divide="ignore"):
        lp = np.log1p(-pv)
    if sizes.ndim == 0:
        t = float(sizes)
        log_r: NDArray[np.float64] = np.zeros_like(pv) if t == 0 else t * lp
        r = np.exp(log_r)
        seen = 1.0 - r if t == 0 else np.negative(np.expm1(log_r))  # s = 1 - r without cancellation
        with np.errstate(divide="ignore"):
            log_rho = np.log(seen) + math.log1p(-pi) if pi < 1 else np.full_like(pv, -np.inf)
        denom = r + pi - r * pi  # 1 - rho
        gp1 = gens.reshape(-1).astype(np.float64)[:, None] + 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            grow = np.negative(np.expm1(gp1 * log_rho))  # 1 - rho^(g+1)
            e = np.where(denom > 0, r * ell * grow / np.where(denom > 0, denom, 1.0), 0.0)
        return _out(np.asarray(e @ pv, dtype=np.float64).reshape(gens.shape))
    e = np.zeros_like(pv)
    out = np.empty(top + 1)
    for j in range(top + 1):
        r = np.exp(np.zeros_like(pv) if sizes[j] == 0 else sizes[j] * lp)
        e = r * ell + (1.0 - r) * (1.0 - pi) * e
        out[j] = e @ pv
    return _out(out[gens])


def label_chain_limit(T: float, p: ArrayLike, *, num_labels: float = math.inf, clean_fraction: float = 0.0) -> float:
    """lim_{g -> inf} E_g of :func:`label_chain_error` for constant T [DERIVED]:

        E_inf = l sum_i p_i r_i / (r_i + pi (1 - r_i)),   r_i = (1 - p_i)^T,

    (terms with r_i = 0 are 0). So E_0 <= E_inf <= E_0 / pi: a clean fraction pi keeps
    the error within 1/pi of one generation's; with pi = 0 every input with r_i > 0 is
    eventually wrong (E_inf = l sum_{r_i > 0} p_i: complete collapse)."""
    size = _sizes(T)
    if size.ndim != 0:
        raise ValueError(f"T must be a single number of draws per generation, got {T!r}")
    t = float(size)
    pv, ell, pi, _ = _label_setup(t, p, num_labels, clean_fraction, 0)
    with np.errstate(divide="ignore"):
        r = np.exp(0.0 if t == 0 else t * np.log1p(-pv))
    denom = r + pi * (1.0 - r)
    return float(np.sum(pv * ell * np.divide(r, denom, out=np.zeros_like(r), where=denom > 0)))


def _max_exp_moment(G: int, a: float) -> float:
    """E[M^a], M the maximum of G i.i.d. Exp(1): int_0^inf a u^(a-1) [1 - (1 - e^-u)^G] du."""
    from scipy import integrate

    def tail(u: float) -> float:  # P(M > u)
        with np.errstate(divide="ignore"):
            return -math.expm1(G * float(np.log1p(-math.exp(-u))))

    knee = max(1.0, math.log(G))
    head, _ = integrate.quad(lambda u: a * tail(u), 0.0, knee, weight="alg", wvar=(a - 1.0, 0.0), limit=200)
    rest, _ = integrate.quad(lambda u: a * u ** (a - 1.0) * tail(u), knee, knee + 60.0, limit=200)
    return head + rest


def label_chain_growth(g: ArrayLike, beta: float, T: float = math.inf) -> FloatOrArray:
    """R_{g+1} = lim_{T -> inf} E_g / E_0 for a Zipf(beta) truth, K = inf, constant T,
    clean_fraction 0, any L [DERIVED]:

        R_G = E[M_G^c] / Gamma(1 + c),   c = 1 - 1/beta,   M_G = max of G i.i.d. Exp(1),

    = sum_{j=1}^{G} (-1)^(j+1) binom(G, j) j^-c (from 1 - (1 - e^-u)^G = P(M_G > u) and
    the integrals of :func:`scaling_constant`). 1 <= R_G <= min(G, H_G^c / Gamma(1 + c))
    (union bound; Jensen with E M_G = H_G, the harmonic number), so R_G ~ (log G)^c /
    Gamma(1 + c): errors accumulate over generations, but sub-linearly, because the
    inputs a generation misses are mostly the same tail every generation. A finite ``T``
    adds the first-order term: (E[M^c]/c - E[M^(c+1)]/(2T)) / (Gamma(c) - Gamma(c+2)/(2T))."""
    gens = _generations(g)
    beta = _beta(beta)
    if beta <= 1.0:
        raise ValueError(f"beta must be > 1 (infinite K), got {beta!r}")
    t = (
        math.inf
        if isinstance(T, (float, np.floating)) and T == math.inf
        else _real(T, "T", 0.0, math.inf, open_low=True)
    )
    c = 1.0 - 1.0 / beta
    out = np.empty(gens.size)
    for idx, G in enumerate(gens.reshape(-1) + 1):
        lead = _max_exp_moment(int(G), c) / c
        if math.isinf(t):
            out[idx] = lead / math.gamma(c)
        else:
            out[idx] = (lead - _max_exp_moment(int(G), c + 1.0) / (2 * t)) / (
                math.gamma(c) - math.gamma(c + 2) / (2 * t)
            )
    return _out(out.reshape(gens.shape))


# --------------------------------------------------------------------------------------
# Fitting scaling exponents
# --------------------------------------------------------------------------------------
def _fit_grid(T, T_min, T_max, length):
    t = _sizes(T, positive=True)
    if t.ndim != 1 or t.size != length:
        raise ValueError(f"T must be a 1-D array with one size per error column ({length}), got shape {t.shape}")
    lo = -math.inf if T_min is None else _real(T_min, "T_min", 0.0, math.inf, open_low=True)
    hi = math.inf if T_max is None else _real(T_max, "T_max", lo, math.inf, open_low=False)
    keep = (t >= lo) & (t <= hi)
    x = np.log(t[keep])
    if np.unique(x).size < 2:
        raise ValueError(f"need at least 2 distinct T in [T_min={T_min}, T_max={T_max}], got {t[keep]!r}")
    return keep, x - x.mean()


def fit_exponent(T: ArrayLike, err: ArrayLike, *, T_min: float | None = None, T_max: float | None = None) -> float:
    """alpha = -slope of the least-squares line of log err on log T over T_min <= T <= T_max,
    so that err ~ A T^-alpha (alpha > 0 for a decaying error); exact for a power law.
    err must be finite and > 0 in the range."""
    e = np.asarray(err, dtype=np.float64)
    if e.ndim != 1:
        raise ValueError(f"err must be a 1-D array (one error per T), got shape {e.shape}")
    keep, xc = _fit_grid(T, T_min, T_max, e.size)
    y = e[keep]
    if not (np.all(np.isfinite(y)) and np.all(y > 0)):
        raise ValueError(f"err must be finite and > 0 in the fitted range, got {y!r}")
    return float(-(xc @ np.log(y)) / (xc @ xc))


def fit_exponent_ci(
    T: ArrayLike,
    errs: ArrayLike,
    *,
    T_min: float | None = None,
    T_max: float | None = None,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float, float]:
    """(estimate, low, high): :func:`fit_exponent` of the mean over chains of ``errs``
    (shape (chains, len(T)), per-chain errors >= 0) and a percentile bootstrap interval at
    ``level`` from ``n_boot`` resamplings of whole chains with replacement (numpy
    Generator from ``seed``), which keeps each chain's correlation across T."""
    e = np.asarray(errs, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] < 2 or not np.all(np.isfinite(e)) or np.any(e < 0):
        raise ValueError(f"errs must be a (chains >= 2, len(T)) array of finite errors >= 0, got shape {e.shape}")
    keep, xc = _fit_grid(T, T_min, T_max, e.shape[1])
    level = _real(level, "level", 0.0, 1.0, open_low=True)
    n_boot = _integer(n_boot, "n_boot", 1)
    e = e[:, keep]
    mean = e.mean(axis=0)
    if np.any(mean <= 0):
        raise ValueError("the mean error over chains must be > 0 at every fitted T")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(_integer(seed, "seed", 0))
    chains = e.shape[0]
    weights = rng.multinomial(chains, np.full(chains, 1.0 / chains), size=n_boot) / chains
    boot = weights @ e
    if np.any(boot <= 0):
        raise ValueError("a bootstrap resample has a zero mean error at some T: use more chains or drop that T")
    alphas = -(np.log(boot) @ xc) / (xc @ xc)
    low, high = np.quantile(alphas, [(1 - level) / 2, (1 + level) / 2])
    return float(-(xc @ np.log(mean)) / (xc @ xc)), float(low), float(high)
