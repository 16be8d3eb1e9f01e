"""Special functions for the closed forms: digamma, trigamma, log Gamma ratios and the normal CDF.

Thin float64 wrappers around `scipy.special` (scipy is a dependency of jax, so it is always
installed) that add the argument checks and return a Python float for scalar input. scipy is
imported on first use, so importing `collapse_jax` or `collapse_jax.theory` does not import it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._hostmath import scipy_special

__all__ = ["digamma", "log_gamma_ratio", "normal_cdf", "trigamma"]


def _positive_float_array(x: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if np.any(np.isnan(arr)) or np.any(arr <= 0.0):
        raise ValueError(f"{name}: x must be > 0 (and not NaN), got {x!r}")
    return arr


def _as_output(arr) -> NDArray[np.float64] | float:
    arr = np.asarray(arr, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def digamma(x: ArrayLike) -> NDArray[np.float64] | float:
    """Digamma function psi(x) = d/dx log Gamma(x) for x > 0 (`scipy.special.digamma`).

    Args:
        x: positive real number(s), any shape.

    Returns:
        psi(x) as float64, same shape as `x` (a Python float for scalar input).

    Raises:
        ValueError: if any element is <= 0 or NaN.
    """
    x = _positive_float_array(x, "digamma")
    return _as_output(scipy_special().digamma(x))


def trigamma(x: ArrayLike) -> NDArray[np.float64] | float:
    """Trigamma function psi'(x) = d^2/dx^2 log Gamma(x) for x > 0 (`scipy.special.polygamma(1, x)`).

    Args:
        x: positive real number(s), any shape.

    Returns:
        psi'(x) as float64, same shape as `x` (a Python float for scalar input).

    Raises:
        ValueError: if any element is <= 0 or NaN.
    """
    x = _positive_float_array(x, "trigamma")
    return _as_output(scipy_special().polygamma(1, x))


def log_gamma_ratio(a: float, t: ArrayLike) -> NDArray[np.complex128]:
    """log(Gamma(a + i t) / Gamma(a)) for real a > 0 and real t (`scipy.special.loggamma`).

    `scipy.special.loggamma` is the analytic continuation of the real log Gamma, so the
    imaginary part is continuous in t and not reduced to (-pi, pi]: exponentiate it (or
    an integer multiple of it), which is all a characteristic function needs.

    Args:
        a: the real part, a > 0.
        t: the imaginary part(s), any shape.

    Returns:
        complex128, same shape as `t`.
    """
    if not (math.isfinite(a) and a > 0.0):
        raise ValueError(f"log_gamma_ratio: a must be a finite number > 0, got {a!r}")
    t = np.asarray(t, dtype=np.float64)
    loggamma = scipy_special().loggamma
    # the same complex evaluation at t = 0, so the ratio is exactly 0 there
    return loggamma(a + 1j * t) - loggamma(complex(a))


def normal_cdf(x: ArrayLike) -> NDArray[np.float64] | float:
    """Standard normal CDF Phi(x), elementwise (`scipy.special.ndtr`).

    Keeps full relative accuracy in the lower tail (it uses erfc there).

    Args:
        x: real number(s), any shape; +-inf give 1 and 0.

    Returns:
        Phi(x) as float64, same shape as `x` (a Python float for scalar input).
    """
    arr = np.asarray(x, dtype=np.float64)
    return _as_output(scipy_special().ndtr(arr))
