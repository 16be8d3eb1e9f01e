"""Special functions for the closed forms: digamma, trigamma and the normal CDF.

Pure numpy float64 (plus `math`), so `collapse_jax.theory` needs neither scipy nor jax.

The polygamma functions shift the argument up with the recurrences

    psi(x)  = psi(x + 1)  - 1/x,
    psi'(x) = psi'(x + 1) + 1/x^2,

until x >= 10, then sum the asymptotic (Stirling) series in 1/x with Bernoulli-number
coefficients (Abramowitz and Stegun 6.3.18 and 6.4.12). At x >= 10 the first omitted
terms are below 1e-16 relative, so the result is accurate to a few ulp; near the
positive root of psi (x ~ 1.4616) the accuracy is absolute, about 1e-15.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["digamma", "log_gamma_ratio", "normal_cdf", "trigamma"]

_SHIFT_TO = 10.0

# B_{2k} / (2k) for k = 1..7: psi(x) ~ log x - 1/(2x) - sum_k B_{2k} / (2k x^{2k}).
_DIGAMMA_COEFFS = (
    1.0 / 12.0,
    -1.0 / 120.0,
    1.0 / 252.0,
    -1.0 / 240.0,
    1.0 / 132.0,
    -691.0 / 32760.0,
    1.0 / 12.0,
)

# B_{2k} for k = 1..7: psi'(x) ~ 1/x + 1/(2x^2) + sum_k B_{2k} / x^{2k+1}.
_TRIGAMMA_COEFFS = (
    1.0 / 6.0,
    -1.0 / 30.0,
    1.0 / 42.0,
    -1.0 / 30.0,
    5.0 / 66.0,
    -691.0 / 2730.0,
    7.0 / 6.0,
)


def _positive_float_array(x: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if np.any(np.isnan(arr)) or np.any(arr <= 0.0):
        raise ValueError(f"{name}: x must be > 0 (and not NaN), got {x!r}")
    return arr


def _series(coeffs: tuple[float, ...], inv_x2: NDArray[np.float64]) -> NDArray[np.float64]:
    """Horner evaluation of sum_k coeffs[k] * inv_x2**(k + 1)."""
    acc = np.zeros_like(inv_x2)
    for c in reversed(coeffs):
        acc = (acc + c) * inv_x2
    return acc


def _as_output(arr: NDArray[np.float64]) -> NDArray[np.float64] | float:
    return float(arr) if arr.ndim == 0 else arr


def digamma(x: ArrayLike) -> NDArray[np.float64] | float:
    """Digamma function psi(x) = d/dx log Gamma(x) for x > 0.

    Args:
        x: positive real number(s), any shape.

    Returns:
        psi(x) as float64, same shape as `x` (a Python float for scalar input).

    Raises:
        ValueError: if any element is <= 0 or NaN.
    """
    x = _positive_float_array(x, "digamma").copy()
    shift = np.zeros_like(x)
    while True:
        small = x < _SHIFT_TO
        if not np.any(small):
            break
        shift = shift - np.where(small, 1.0 / x, 0.0)
        x = np.where(small, x + 1.0, x)
    with np.errstate(divide="ignore"):
        inv_x = 1.0 / x
    result = np.log(x) - 0.5 * inv_x - _series(_DIGAMMA_COEFFS, inv_x * inv_x)
    return _as_output(result + shift)


def trigamma(x: ArrayLike) -> NDArray[np.float64] | float:
    """Trigamma function psi'(x) = d^2/dx^2 log Gamma(x) for x > 0.

    Args:
        x: positive real number(s), any shape.

    Returns:
        psi'(x) as float64, same shape as `x` (a Python float for scalar input).

    Raises:
        ValueError: if any element is <= 0 or NaN.
    """
    x = _positive_float_array(x, "trigamma").copy()
    shift = np.zeros_like(x)
    while True:
        small = x < _SHIFT_TO
        if not np.any(small):
            break
        shift = shift + np.where(small, 1.0 / (x * x), 0.0)
        x = np.where(small, x + 1.0, x)
    inv_x = 1.0 / x
    result = inv_x + 0.5 * inv_x * inv_x + inv_x * _series(_TRIGAMMA_COEFFS, inv_x * inv_x)
    return _as_output(result + shift)


# B_{2k} / (2k (2k - 1)) for k = 1..7: log Gamma(z) ~ (z - 1/2) log z - z + log(2 pi)/2 + sum_k c_k / z^(2k - 1).
_LOG_GAMMA_COEFFS = (
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
)


def _log_gamma_complex(z: NDArray[np.complex128]) -> NDArray[np.complex128]:
    """log Gamma(z) for Re z >= 10 (Stirling series; some branch of the logarithm)."""
    inv_z = 1.0 / z
    acc = np.zeros_like(z)
    inv_z2 = inv_z * inv_z
    for c in reversed(_LOG_GAMMA_COEFFS):
        acc = (acc + c) * inv_z2
    return (z - 0.5) * np.log(z) - z + 0.5 * math.log(2.0 * math.pi) + acc * z


def log_gamma_ratio(a: float, t: ArrayLike) -> NDArray[np.complex128]:
    """log(Gamma(a + i t) / Gamma(a)) for real a > 0 and real t, to a few ulp of |log|.

    The argument is shifted to real part >= 10 with log Gamma(z) = log Gamma(z + 1) -
    log z, then the Stirling series is summed (Abramowitz and Stegun 6.1.41). The
    imaginary part is continuous in t but not reduced to (-pi, pi]: exponentiate it (or
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
    z = a + 1j * t
    z0 = np.asarray(a + 0j)
    shift = np.zeros_like(z)
    shift0 = 0j
    while z0.real < _SHIFT_TO:
        shift = shift - np.log(z)
        shift0 = shift0 - np.log(z0)
        z = z + 1.0
        z0 = z0 + 1.0
    return (_log_gamma_complex(z) + shift) - (_log_gamma_complex(z0) + shift0)


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def normal_cdf(x: ArrayLike) -> NDArray[np.float64] | float:
    """Standard normal CDF Phi(x) = erfc(-x / sqrt(2)) / 2, elementwise.

    Uses `math.erfc`, which keeps full relative accuracy in the lower tail.

    Args:
        x: real number(s), any shape; +-inf give 1 and 0.

    Returns:
        Phi(x) as float64, same shape as `x` (a Python float for scalar input).
    """
    arr = np.asarray(x, dtype=np.float64)
    return _as_output(0.5 * _erfc(-arr / math.sqrt(2.0)))
