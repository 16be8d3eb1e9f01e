"""Argument checks and small numeric helpers shared by the closed-form modules.

Private to `collapse_jax.theory`: `gaussian` (the Replace chain) and `mixing` (real data
and accumulation) validate their arguments and shape their outputs with these, so both
follow the conventions in `gaussian`'s module docstring.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatOrArray = float | NDArray[np.float64]
Estimator = Literal["mle", "unbiased"]  # the variance estimator's divisor: n - 0 or n - 1

_ESTIMATOR_DELTA = {"mle": 0, "unbiased": 1}


def _delta(estimator: str) -> int:
    if not isinstance(estimator, str) or estimator not in _ESTIMATOR_DELTA:
        raise ValueError(f"estimator must be 'mle' or 'unbiased', got {estimator!r}")
    return _ESTIMATOR_DELTA[estimator]


def _integer(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _real(value: object, name: str, low: float, high: float, *, open_low: bool) -> float:
    """A finite real number in (low, high] (open_low) or [low, high]."""
    x = math.nan
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        x = float(value)
    above_low = x > low if open_low else x >= low
    if not (math.isfinite(x) and above_low and x <= high):
        interval = f"({low}, {high}]" if open_low else f"[{low}, {high}]"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return x


def _positive(value: object, name: str) -> float:
    return _real(value, name, 0.0, math.inf, open_low=True)


def _fraction(value: object, name: str) -> float:
    return _real(value, name, 0.0, 1.0, open_low=False)


def _generations(g: ArrayLike) -> NDArray[np.int64]:
    arr = np.asarray(g)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"g must be an integer generation or integer array (g >= 0), got {g!r}")
    if np.any(arr < 0):
        raise ValueError(f"g must be >= 0 (generation 0 is the fit to the real data), got {g!r}")
    return arr.astype(np.int64)


def _fits(g: ArrayLike) -> NDArray[np.float64]:
    """t = g + 1, the number of fits behind generation g, as float64."""
    return _generations(g).astype(np.float64) + 1.0


def _out(arr: NDArray[np.float64] | float) -> FloatOrArray:
    arr = np.asarray(arr, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def _count(fraction: float, n: int) -> int:
    """floor(fraction * n + 1/2), the simulator's rounding of a share (collapse_jax.regimes)."""
    return math.floor(fraction * n + 0.5)


def _ratio(n: int, delta: int) -> float:
    """r = (n - 1) / (n - delta), the per-fit factor of E[variance]."""
    return (n - 1) / (n - delta)


def _geometric_sum(q: float, terms: NDArray[np.float64]) -> NDArray[np.float64]:
    """sum_{k=0}^{terms-1} q^k, accurate for q near 1 (q >= 0)."""
    if q == 1.0:
        return terms.copy()
    if q == 0.0:
        return np.where(terms > 0, 1.0, 0.0)
    return np.expm1(terms * math.log(q)) / (q - 1.0)
