"""Argument checks that run in Python, before anything is compiled."""

from __future__ import annotations

import math
import re

import numpy as np

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an int >= minimum, else a TypeError/ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def parse_memory(value) -> int:
    """Bytes from an int or a string such as "4GB", "512MiB", "2.5 GB"."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"max_memory must be > 0 bytes, got {value}")
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
        if m and m.group(2).lower() in _UNITS:
            out = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
            if out > 0:
                return out
    raise ValueError(f"max_memory must be a positive number of bytes or a string like '4GB' or '512MiB', got {value!r}")


def check_covariance(owner: str, cov, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``cov`` as a (d, d) symmetric positive definite float64 matrix (None gives I,
    a scalar c gives c I) and its lower Cholesky factor, else a ValueError naming
    the owner, the parameter and what is wrong."""
    sig = np.eye(d) if cov is None else np.asarray(cov, dtype=np.float64)
    if sig.ndim == 0:
        sig = float(sig) * np.eye(d)
    if sig.shape != (d, d) or not np.all(np.isfinite(sig)):
        raise ValueError(f"{owner}: cov must be a finite ({d}, {d}) matrix, got shape {sig.shape}")
    if not np.allclose(sig, sig.T, rtol=1e-10, atol=1e-12 * np.abs(sig).max()):
        raise ValueError(f"{owner}: cov must be symmetric positive definite; it is not symmetric")
    try:
        chol = np.linalg.cholesky(sig)
    except np.linalg.LinAlgError:
        raise ValueError(f"{owner}: cov must be symmetric positive definite; it is not positive definite") from None
    return sig, chol


def check_positive(owner: str, name: str, value) -> float:
    """``value`` as a finite float > 0, else a TypeError/ValueError naming the owner,
    the parameter and the value."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: {name} must be a number > 0, got {value!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return v
