"""Class-level declarations of families, regimes and synthesis steps, checked and
frozen when a class is created: a bad declaration names the class and the value at
import time, and no instance or caller can change one later (dicts become read-only
mappings)."""

from __future__ import annotations

import math
import types
from collections.abc import Mapping


def _dims(cls: str, name: str, value) -> Mapping:
    if not isinstance(value, Mapping):
        raise TypeError(f"{cls}.{name} must be a dict {{name: (dim, ...)}}, got {value!r}")
    out = {}
    for k, dims in value.items():
        if not (isinstance(dims, tuple) and all(isinstance(d, str) for d in dims)):
            raise TypeError(f"{cls}.{name}[{k!r}] must be a tuple of dim names, got {dims!r}")
        out[k] = dims
    return types.MappingProxyType(out)


def _bounds(cls: str, name: str, value) -> Mapping:
    if not isinstance(value, Mapping):
        raise TypeError(f"{cls}.{name} must be a dict {{field: (low, high)}}, got {value!r}")
    for k, b in value.items():
        ok = isinstance(b, tuple) and len(b) == 2 and all(isinstance(x, (int, float)) for x in b)
        if not ok or math.isnan(b[0]) or math.isnan(b[1]) or b[0] > b[1]:
            raise ValueError(f"{cls}.{name}[{k!r}] must be (low, high) numbers with low <= high, got {b!r}")
    return types.MappingProxyType(dict(value))


def _count(cls: str, name: str, value, none_ok: bool):
    if value is None and none_ok:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        allowed = "an int >= 1" + (" or None" if none_ok else "")
        raise ValueError(f"{cls}.{name} must be {allowed}, got {value!r}")
    return value


def _names(cls: str, name: str, value) -> tuple[str, ...]:
    if not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
        raise TypeError(f"{cls}.{name} must be a tuple of metric names, got {value!r}")
    return value


CHECKS = {
    "optional_metrics": _names,
    "metric_dims": _dims,
    "diagnostic_dims": _dims,
    "event_dims": _dims,
    "traced_bounds": _bounds,
    "working_set_factor": lambda c, n, v: _count(c, n, v, False),
    "max_chunk": lambda c, n, v: _count(c, n, v, True),
}


def freeze(cls: type, names: tuple[str, ...]) -> None:
    """Check and freeze the declarations ``names`` that ``cls`` itself sets."""
    for name in names:
        if name in cls.__dict__:
            setattr(cls, name, CHECKS[name](cls.__name__, name, cls.__dict__[name]))
