"""Host-side (Python float64) special functions used when building families, from `scipy.special`.

scipy is a dependency of jax, so it is always installed; it is imported on first use
(:func:`scipy_special`), so importing `collapse_jax` does not import it.
"""

from __future__ import annotations

import functools
from types import ModuleType


@functools.cache
def scipy_special() -> ModuleType:
    """`scipy.special`, imported on first use (it takes a noticeable fraction of a second)."""
    import scipy.special

    return scipy.special


def regularized_gamma_p(a: float, x: float) -> float:
    """Regularized lower incomplete gamma P(a, x) (`scipy.special.gammainc`); 0 for x <= 0."""
    if x <= 0:
        return 0.0
    return float(scipy_special().gammainc(a, x))


def chi2_quantile(df: int, p: float) -> float:
    """The p-quantile of chi-square(df): 2 P^-1(df/2, p) (`scipy.special.gammaincinv`)."""
    return 2.0 * float(scipy_special().gammaincinv(0.5 * df, p))
