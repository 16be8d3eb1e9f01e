"""Closed forms and exact computations for the Poisson family (a critical branching process).

A Poisson rate refitted by the sample mean of n counts drawn from the previous fit is a
Galton-Watson process: the n-point total S_g = n lambda_g given S_{g-1} is
Poisson(S_{g-1}), a sum of S_{g-1} independent Poisson(1) offspring counts (Harris
1963, "The Theory of Branching Processes"; Athreya and Ney 1972, "Branching
Processes", ch. I), started from S_0 ~ Poisson(n lambda*). Its offspring law has mean 1
(critical) and generating function f(s) = exp(s - 1), so the chain is absorbed at
lambda = 0 with probability 1, slowly. Suresh, Thangaraj and Khandavally 2024 (arXiv
2412.17646, "Rate of Model Collapse in Recursive Training", AISTATS 2025) ask how fast
such chains forget; their abstract's reading for discrete data, a forgetting time
roughly linear in the number of original occurrences, is the n lambda* scale of
:func:`extinction_quantile_replace`. Nothing here is taken from their theorems: every
formula is derived below from the branching structure ([DERIVED]; THEORY.md, Poisson
section).

Indexing (THEORY.md section 0): every function takes the simulator's generation ``g``;
generation 0 is the fit to the original n real draws. ``g`` may be an int (gives a
float) or an integer array (gives an array of that shape; cumulants get a trailing axis
of 4). Pure numpy float64.

Regimes (all keep E[lambda_g] = lambda*: the rate is a martingale, or a mix of one with
fresh real data):

* Replace: S_g | S_{g-1} ~ Poisson(S_{g-1}).
* FreshMix(real_fraction): r = floor(real_fraction n + 1/2) fresh real points and n - r
  synthetic ones, S_g = R_g + M_g with R_g ~ Poisson(r lambda*) and M_g | S_{g-1} ~
  Poisson(beta S_{g-1}), beta = (n - r)/n: a subcritical branching process with
  immigration.
* Accumulate: the pool's total T_g = T_{g-1} + B_g, B_g | T_{g-1} ~ Poisson(T_{g-1}/g)
  (n points at the pooled rate T_{g-1}/(n g)), lambda_g = T_g / (n (g + 1)).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import (
    FloatOrArray,
    _count,
    _fits,
    _fraction,
    _generations,
    _geometric_sum,
    _integer,
    _out,
    _positive,
)

__all__ = [
    "extinction_accumulate",
    "extinction_freshmix",
    "extinction_quantile_replace",
    "extinction_replace",
    "extinction_time_truncated_mean_replace",
    "rate_cumulants_accumulate",
    "rate_cumulants_freshmix",
    "rate_cumulants_replace",
    "rate_mean",
    "rate_sq_error_accumulate",
    "rate_sq_error_freshmix",
    "rate_sq_error_replace",
]

MAX_QUANTILE_GENERATIONS = 10**7  # the quantile iterates the generating function once per generation
_ORDER = 4  # cumulants kept (power series in theta up to theta^4)
_EXPM1 = np.array([0.0, 1.0, 1 / 2, 1 / 6, 1 / 24])  # e^theta - 1 up to theta^4


def _args(n: int, rate: float) -> tuple[int, float]:
    return _integer(n, "n", 1), _positive(rate, "rate")


# --------------------------------------------------------------------------------------
# Moments
# --------------------------------------------------------------------------------------
def rate_mean(g: ArrayLike, rate: float) -> FloatOrArray:
    """E[lambda_g] = lambda* under Replace, FreshMix and Accumulate: given the past, a
    batch of m counts from the previous fit has mean m lambda_{g-1}, so the fit is a
    martingale (Accumulate, Replace) or a convex mix of one with fresh real data."""
    gens = _generations(g)
    return _out(np.full(gens.shape, _positive(rate, "rate")))


def rate_sq_error_replace(g: ArrayLike, n: int, rate: float) -> FloatOrArray:
    """E[(lambda_g - lambda*)^2] = Var(lambda_g) = (g + 1) lambda* / n under Replace
    [DERIVED]: Var(S_g) = E[Var(S_g | S_{g-1})] + Var(E[S_g | S_{g-1}]) = n lambda* +
    Var(S_{g-1}), and Var(S_0) = n lambda*. It grows without bound while E[lambda_g]
    stays lambda*: the mass of the law moves to 0 (extinction) and to a few large values."""
    n, lam = _args(n, rate)
    return _out(_fits(g) * lam / n)


def rate_sq_error_accumulate(g: ArrayLike, n: int, rate: float) -> FloatOrArray:
    """E[(lambda_g - lambda*)^2] = (lambda*/n) sum_{j=1}^{g+1} 1/j^2 under Accumulate,
    -> (lambda*/n) pi^2/6 [DERIVED]: lambda_g = lambda_{g-1} + (B_g - n lambda_{g-1}) /
    (n (g + 1)) with Var(B_g | past) = n lambda_{g-1}, so Var(lambda_g) = Var(lambda_{g-1})
    + lambda* / (n (g + 1)^2): the sum_j 1/j^2 law of the known-variance Gaussian mean
    under accumulation (THEORY.md section 0), with lambda* in place of sigma^2."""
    gens = _generations(g)
    n, lam = _args(n, rate)
    top = int(gens.max(initial=0))
    partial = np.cumsum(1.0 / np.arange(1, top + 2, dtype=np.float64) ** 2)
    return _out(lam / n * partial[gens])


def rate_sq_error_freshmix(g: ArrayLike, n: int, rate: float, real_fraction: float) -> FloatOrArray:
    """E[(lambda_g - lambda*)^2] under FreshMix(real_fraction) [DERIVED]: with r =
    floor(real_fraction n + 1/2) and rho = ((n - r)/n)^2,
    V_g = lambda*/n + rho V_{g-1}, V_0 = lambda*/n, so V_g = (lambda*/n) (1 - rho^(g+1)) /
    (1 - rho) (from Var(R) = r lambda*, Var(M) = (n - r) lambda* + (n - r)^2 V_{g-1}).
    FreshMix(0) is :func:`rate_sq_error_replace`; the limit is lambda*/(n (1 - rho))."""
    gens = _generations(g)
    n, lam = _args(n, rate)
    r = _count(_fraction(real_fraction, "real_fraction"), n)
    rho = ((n - r) / n) ** 2
    return _out(lam / n * _geometric_sum(rho, gens.astype(np.float64) + 1.0))


# --------------------------------------------------------------------------------------
# Cumulants: the cumulant generating function composed generation by generation
# --------------------------------------------------------------------------------------
def _compose(outer: NDArray[np.float64], inner: NDArray[np.float64]) -> NDArray[np.float64]:
    """outer(inner(theta)) as a power series truncated at theta^4 (both without constant)."""
    out = np.zeros(_ORDER + 1)
    power = np.zeros(_ORDER + 1)
    power[0] = 1.0
    for j in range(1, _ORDER + 1):
        power = np.convolve(power, inner)[: _ORDER + 1]
        out += outer[j] * power
    return out


def _cumulants(gens: NDArray[np.int64], scale, step) -> NDArray[np.float64]:
    """Cumulants 1..4 of X_g / scale(g), where K_g, the cumulant generating function of
    X_g (a power series in theta), is K_0 = step(0, None) and K_g = step(g, K_{g-1})."""
    top = int(gens.max(initial=0))
    fact = np.array([math.factorial(j) for j in range(1, _ORDER + 1)], dtype=np.float64)
    table = np.empty((top + 1, _ORDER))
    k = None
    for t in range(top + 1):
        k = step(t, k)
        table[t] = k[1:] * fact / scale(t) ** np.arange(1, _ORDER + 1)
    return table[gens]


def rate_cumulants_replace(g: ArrayLike, n: int, rate: float) -> NDArray[np.float64]:
    """The first four cumulants of lambda_g under Replace, shape ``g.shape + (4,)``
    [DERIVED]. E[e^{theta S_g} | S_{g-1}] = exp(S_{g-1} (e^theta - 1)), so the cumulant
    generating function is K_g(theta) = K_{g-1}(e^theta - 1) with K_0(theta) = n lambda*
    (e^theta - 1): K_g = n lambda* h^{(g+1)}, h = e^theta - 1 iterated g + 1 times.
    Cumulant 2 is (g + 1) lambda*/n; for a Monte Carlo standard error,
    Var((lambda_g - lambda*)^2) = k4 + 2 k2^2."""
    gens = _generations(g)
    n, lam = _args(n, rate)

    def step(t, k):
        return n * lam * _EXPM1 if k is None else _compose(k, _EXPM1)

    return _cumulants(gens, lambda t: n, step)


def rate_cumulants_freshmix(g: ArrayLike, n: int, rate: float, real_fraction: float) -> NDArray[np.float64]:
    """The first four cumulants of lambda_g under FreshMix(real_fraction), shape
    ``g.shape + (4,)`` [DERIVED]: K_g(theta) = r lambda* h(theta) + K_{g-1}(beta h(theta)),
    h = e^theta - 1, beta = (n - r)/n, K_0 = n lambda* h."""
    gens = _generations(g)
    n, lam = _args(n, rate)
    r = _count(_fraction(real_fraction, "real_fraction"), n)
    beta = (n - r) / n

    def step(t, k):
        return n * lam * _EXPM1 if k is None else r * lam * _EXPM1 + _compose(k, beta * _EXPM1)

    return _cumulants(gens, lambda t: n, step)


def rate_cumulants_accumulate(g: ArrayLike, n: int, rate: float) -> NDArray[np.float64]:
    """The first four cumulants of lambda_g under Accumulate, shape ``g.shape + (4,)``
    [DERIVED]: E[e^{theta T_g} | T_{g-1}] = exp(T_{g-1} (theta + (e^theta - 1)/g)), so
    K_g(theta) = K_{g-1}(theta + h(theta)/g), K_0 = n lambda* h, and lambda_g = T_g /
    (n (g + 1))."""
    gens = _generations(g)
    n, lam = _args(n, rate)
    ident = np.array([0.0, 1.0, 0.0, 0.0, 0.0])

    def step(t, k):
        return n * lam * _EXPM1 if k is None else _compose(k, ident + _EXPM1 / t)

    return _cumulants(gens, lambda t: n * (t + 1), step)


# --------------------------------------------------------------------------------------
# Extinction: lambda_g = 0
# --------------------------------------------------------------------------------------
def _distances(top: int, beta: float) -> NDArray[np.float64]:
    """v_j = 1 - u_j, j = 0..top, for u_0 = 0, u_{j+1} = exp(beta (u_j - 1)): v_0 = 1,
    v_{j+1} = -expm1(-beta v_j) (iterating 1 - u keeps its relative precision as
    u -> 1)."""
    v = np.empty(top + 1)
    v[0] = 1.0
    for j in range(top):
        v[j + 1] = -math.expm1(-beta * v[j])
    return v


def extinction_replace(g: ArrayLike, n: int, rate: float) -> FloatOrArray:
    """P(lambda_g = 0) under Replace [DERIVED], which is also P(T <= g) for the first
    extinction generation T (0 is absorbing: a zero rate draws only zeros):

        P(lambda_g = 0) = exp(-n lambda* (1 - q_g)),  q_0 = 0,  q_t = exp(q_{t-1} - 1).

    S_g is a Galton-Watson process with offspring generating function f(s) = e^{s-1}:
    P(S_g = 0 | S_0) = f_g(0)^{S_0} with f_g the g-th iterate (Athreya and Ney 1972,
    section I.1), and E[q^{S_0}] = exp(n lambda* (q - 1)) for S_0 ~ Poisson(n lambda*).
    Equivalently q_{g+1}^{n lambda*}: the original sample acts as n lambda* ancestors
    one generation earlier.

    Large g: 1/(1 - q_t) = t/2 + log(t)/6 + O(1) (from 1/(1 - e^{-r}) = 1/r + 1/2 +
    r/12 + O(r^2)), the critical-branching rate 1 - q_t ~ 2/(sigma^2 t) with offspring
    variance sigma^2 = 1 (Kolmogorov 1938; Athreya and Ney 1972, Theorem I.9.1), so the
    survival probability is about 1 - exp(-2 n lambda* / g): a chain forgets its
    rate after a number of generations of the order of n lambda*, the expected total
    of the original sample. E[T] = sum_g P(T > g) is infinite (the terms decay like
    2 n lambda*/g); quantiles are finite (:func:`extinction_quantile_replace`), and so
    is the mean truncated at a horizon (:func:`extinction_time_truncated_mean_replace`).
    """
    gens = _generations(g)
    n, lam = _args(n, rate)
    v = _distances(int(gens.max(initial=0)), 1.0)
    return _out(np.exp(-n * lam * v[gens]))


def extinction_freshmix(g: ArrayLike, n: int, rate: float, real_fraction: float) -> FloatOrArray:
    """P(lambda_g = 0) under FreshMix(real_fraction) [DERIVED]: with r = floor(real_fraction
    n + 1/2) real points and beta = (n - r)/n, the generating function of S_g is
    G_g(s) = exp(r lambda* (s - 1)) G_{g-1}(exp(beta (s - 1))), G_0(s) = exp(n lambda*
    (s - 1)), so

        P(lambda_g = 0) = exp(-r lambda* sum_{j<g} v_j - n lambda* v_g),
        v_0 = 1, v_{j+1} = 1 - exp(-beta v_j).

    Not absorbing for r >= 1 (fresh real points revive a chain); FreshMix(0) is
    :func:`extinction_replace`, FreshMix(1) gives exp(-n lambda*) at every generation."""
    gens = _generations(g)
    n, lam = _args(n, rate)
    r = _count(_fraction(real_fraction, "real_fraction"), n)
    v = _distances(int(gens.max(initial=0)), (n - r) / n)
    before = np.concatenate([[0.0], np.cumsum(v)[:-1]])  # sum_{j<g} v_j
    return _out(np.exp(-r * lam * before[gens] - n * lam * v[gens]))


def extinction_accumulate(g: ArrayLike, n: int, rate: float) -> FloatOrArray:
    """P(lambda_g = 0) = exp(-n lambda*) under Accumulate, at every generation [DERIVED]:
    the pool keeps the original sample, so lambda_g = 0 exactly when the original total
    S_0 ~ Poisson(n lambda*) is 0 (then every batch is drawn from rate 0)."""
    gens = _generations(g)
    n, lam = _args(n, rate)
    return _out(np.full(gens.shape, math.exp(-n * lam)))


def extinction_quantile_replace(p: float, n: int, rate: float) -> int:
    """The p-quantile of the first extinction generation T under Replace: the smallest g
    with P(T <= g) >= p (see :func:`extinction_replace`), 0 < p < 1. About 2 n lambda* /
    log(1/p) for large n lambda* (the median about 2.89 n lambda*). Iterates once per
    generation: at most 10^7 generations."""
    n, lam = _args(n, rate)
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0.0 < float(p) < 1.0:
        raise ValueError(f"p must be a probability in (0, 1), got {p!r}")
    target = -math.log(float(p)) / (n * lam)  # P(T <= g) >= p  <=>  v_g <= target
    v, g = 1.0, 0
    while v > target:
        if g >= MAX_QUANTILE_GENERATIONS:
            raise ValueError(
                f"the {p}-quantile of the extinction generation for n={n}, rate={rate} exceeds "
                f"{MAX_QUANTILE_GENERATIONS} generations (about 2 n rate / log(1/p) = {2 * n * lam / -math.log(p):.3g})"
            )
        v = -math.expm1(-v)
        g += 1
    return g


def extinction_time_truncated_mean_replace(generations: int, n: int, rate: float) -> float:
    """E[min(T, G + 1)] for the first extinction generation T under Replace and a run of
    G = ``generations`` generations (T > G counted as G + 1): sum_{g=0}^{G} P(T > g).
    The untruncated mean is infinite (see :func:`extinction_replace`); this one grows
    like 2 n lambda* log G."""
    top = _integer(generations, "generations", 0)
    n, lam = _args(n, rate)
    v = _distances(top, 1.0)
    return float(np.sum(-np.expm1(-n * lam * v)))
