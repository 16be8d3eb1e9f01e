"""Argument checks that run in Python, before anything is compiled."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
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


def check_seed(name: str, value) -> int:
    """``value`` as a seed: an int in [0, 2**64) (all 64 bits reach the root key), or
    a threefry key (typed, ``jax.random.key``, or raw ``uint32[2]``,
    ``jax.random.PRNGKey``), which becomes the root key itself; else a
    TypeError/ValueError naming it and what is allowed.

    A key is returned as the int whose root key it is: a threefry key with data
    ``(hi, lo)`` is the root of seed ``hi * 2**32 + lo`` (``_rng.root_key``), so
    ``jax.random.key(7)`` and ``7`` are the same run, and a key derived with
    ``jax.random.split`` / ``fold_in`` is recorded, and rerun, as its int.
    """
    if isinstance(value, jax.Array) or (isinstance(value, np.ndarray) and value.ndim > 0):
        return _key_seed(name, value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be an int in [0, 2**64) or a threefry key (jax.random.key), got {value!r} "
            f"({type(value).__name__})"
        )
    if not 0 <= value < 2**64:
        raise ValueError(f"{name} must be an int in [0, 2**64), got {value}")
    return int(value)


def _key_seed(name: str, value) -> int:
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{name} must be a concrete key or int, got a traced value: simulate runs outside jit; "
            "inside your own jit/vmap/grad use cj.chain_fn(...)(key)"
        )
    if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        impl = str(jax.random.key_impl(value))
        if "threefry2x32" not in impl:
            raise ValueError(
                f"{name}: a key of PRNG implementation {impl!r} cannot seed a run; use a threefry key "
                f"(jax.random.key(seed, impl='threefry2x32'), the default) or an int"
            )
        if value.shape != ():
            raise ValueError(f"{name} must be one key, got a batch of keys of shape {value.shape}")
        data = np.asarray(jax.random.key_data(value))
    else:
        data = np.asarray(value)
        if data.dtype != np.uint32 or data.shape != (2,):
            raise ValueError(
                f"{name}: a raw key must be threefry key data, uint32 of shape (2,) (jax.random.PRNGKey), got "
                f"{data.dtype} of shape {data.shape}; other PRNG implementations (rbg, unsafe_rbg) cannot seed a run"
            )
    return (int(data[0]) << 32) | int(data[1])


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


FLOAT32_MAX = float(np.finfo(np.float32).max)


def as_float_array(owner: str, name: str, value, *, limit: float = FLOAT32_MAX) -> np.ndarray:
    """``value`` as a finite float64 array whose entries a float32 run can hold
    (|x| <= ``limit``), else a TypeError/ValueError naming the owner, the parameter
    and the value. Strings, booleans and other non-numbers are refused."""
    try:
        if isinstance(value, (str, bytes)) or np.asarray(value).dtype.kind not in "iuf":
            raise TypeError
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: {name} must be numbers, got {value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    if arr.size and np.max(np.abs(arr)) > limit:
        raise ValueError(f"{owner}: {name} must lie within +-{limit:.4g} (float32's range), got {value!r}")
    return arr


def _one_float(owner: str, name: str, value, expect: str) -> float:
    """One Python or NumPy number as a float; booleans, strings and arrays are refused
    with a TypeError saying what was expected."""
    if not isinstance(value, (bool, np.bool_, str, bytes)) and np.ndim(value) == 0:
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"{owner}: {name} must be {expect}, got {value!r}")


def check_number(owner: str, name: str, value, lo: float = -math.inf, hi: float = math.inf) -> float:
    """``value`` as one float in [lo, hi] (not a bool, a string or an array), else a
    TypeError/ValueError naming the owner, the parameter, the value and the range."""
    if math.isfinite(lo) and math.isfinite(hi):
        rng = f"lie in [{lo:g}, {hi:g}]"
    elif math.isfinite(lo) or math.isfinite(hi):
        rng = f"be >= {lo:g}" if math.isfinite(lo) else f"be <= {hi:g}"
    else:
        rng = "be finite"
    v = _one_float(owner, name, value, f"a number (one value) and {rng}")
    if not (lo <= v <= hi) or math.isnan(v):
        raise ValueError(f"{owner}: {name} must {rng}, got {value!r}")
    return v


def traced_scalar(owner: str, name: str, value, lo: float, hi: float, *, open_low: bool = False) -> jax.Array:
    """A traced hyperparameter: ``value`` checked to lie in [lo, hi] (or (lo, hi]) and
    returned as a float32 scalar array, else a TypeError/ValueError naming the owner,
    the parameter, the value and the range.

    A JAX tracer (the constructor called inside the user's ``jit``, ``vmap`` or
    ``grad``) is kept as it is, unchecked: its value is not known until run time, so
    the range is the caller's to respect (docs/ARCHITECTURE.md, "Composable kernels").
    """
    if isinstance(value, jax.core.Tracer):
        if jnp.ndim(value) != 0:
            raise TypeError(f"{owner}: {name} must be one number, got a traced array of shape {jnp.shape(value)}")
        if not jnp.issubdtype(value.dtype, jnp.floating):
            value = value.astype(jnp.float32)
        return value
    lo_ok = "(" if open_low else "["
    hi_txt = "inf)" if math.isinf(hi) else f"{hi:g}]"
    v = _one_float(owner, name, value, f"a number (one value) in {lo_ok}{lo:g}, {hi_txt}")
    ok = (v > lo if open_low else v >= lo) and v <= hi and math.isfinite(v)
    if not ok:
        raise ValueError(f"{owner}: {name} must lie in {lo_ok}{lo:g}, {hi_txt}, got {value!r}")
    return jnp.asarray(v, jnp.float32)


def is_traced(x) -> bool:
    """Whether ``x`` is a JAX tracer (a value known only when the program runs)."""
    return isinstance(x, jax.core.Tracer)


def check_covariance(owner: str, cov, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``cov`` as a (d, d) symmetric positive definite float64 matrix (None gives I,
    a scalar c gives c I) and its lower Cholesky factor, else a ValueError naming
    the owner, the parameter and what is wrong."""
    sig = np.eye(d) if cov is None else as_float_array(owner, "cov", cov)
    if sig.ndim == 0:
        sig = float(sig) * np.eye(d)
    if sig.shape != (d, d):
        raise ValueError(f"{owner}: cov must be a ({d}, {d}) matrix (or a scalar), got shape {sig.shape}")
    if not np.allclose(sig, sig.T, rtol=1e-10, atol=1e-12 * np.abs(sig).max()):
        raise ValueError(f"{owner}: cov must be symmetric positive definite; it is not symmetric")
    try:
        chol = np.linalg.cholesky(sig)
    except np.linalg.LinAlgError:
        raise ValueError(f"{owner}: cov must be symmetric positive definite; it is not positive definite") from None
    return sig, chol


def check_positive(owner: str, name: str, value) -> float:
    """``value`` as a finite float > 0, else a TypeError/ValueError naming the owner,
    the parameter and the value (booleans, strings and arrays are refused; so is a
    value beyond float32's range, which a float32 run could not hold)."""
    v = _one_float(owner, name, value, "a number > 0")
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    if v > FLOAT32_MAX:
        raise ValueError(f"{owner}: {name} must be <= {FLOAT32_MAX:.4g} (float32's range), got {value!r}")
    return v


def check_probs(owner: str, probs, name: str = "probs", tolerance: float = 1e-6) -> np.ndarray:
    """``probs`` as a float64 probability vector, as given (not renormalised): 1-D with
    K >= 1 finite entries >= 0 summing to 1 within ``tolerance``, else a
    TypeError/ValueError naming the owner, the parameter and the offending entry."""
    try:
        raw = None if isinstance(probs, (str, bytes)) else np.asarray(probs)
    except (TypeError, ValueError):  # ragged nested sequences
        raise ValueError(f"{owner}: {name} must be a 1-D vector of probabilities, got {probs!r}") from None
    if raw is None or not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
        raise TypeError(f"{owner}: {name} must be a 1-D array of probabilities (real numbers), got {probs!r}")
    arr = raw.astype(np.float64)
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"{owner}: {name} must be a 1-D vector with K >= 1 entries, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        k = int(np.argmax(~np.isfinite(arr)))
        raise ValueError(f"{owner}: {name} must be finite, got {name}[{k}] = {float(arr[k])!r}")
    if np.any(arr < 0):
        k = int(np.argmax(arr < 0))
        raise ValueError(f"{owner}: {name} must be >= 0, got {name}[{k}] = {float(arr[k])!r}")
    total = float(arr.sum())
    if abs(total - 1.0) > tolerance:
        raise ValueError(f"{owner}: {name} must sum to 1 (tolerance {tolerance:g}), got sum {total!r}")
    return arr
