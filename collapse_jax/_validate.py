"""Argument checks that run in Python, before anything is compiled."""

from __future__ import annotations

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
