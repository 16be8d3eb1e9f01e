"""Host-side (Python float64) special functions used when building families."""

from __future__ import annotations

import math


def regularized_gamma_p(a: float, x: float) -> float:
    """Regularized lower incomplete gamma P(a, x): a series for x < a + 1, Legendre's
    continued fraction (evaluated by the modified Lentz method) otherwise."""
    if x <= 0:
        return 0.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        k = a
        for _ in range(10_000):
            k += 1
            term *= x / k
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return min(1.0, math.exp(log_front) * total)
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return max(0.0, 1.0 - math.exp(log_front) * h)


def chi2_quantile(df: int, p: float) -> float:
    """The p-quantile of chi-square(df), by bisection on P(df/2, x/2) (1e-13 abs)."""
    lo, hi = 0.0, max(10.0, 10.0 * df)
    while regularized_gamma_p(df / 2, hi / 2) < p:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if regularized_gamma_p(df / 2, mid / 2) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)
