"""Generic descriptions: a configuration object as the keyword arguments of its own
constructor, in JSON types, so that ``type(obj)(**args)`` rebuilds it.

Every constructor argument is read from the field of the same name; a class whose
constructor takes an argument it stores differently (a truth given as a dict, a
``"random"`` marker) says how to read it back in ``config_arg``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

_SKIP = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def field_arg(obj, name: str) -> Any:
    """The constructor argument ``name`` as the field of the same name holds it."""
    if name not in {f.name for f in dataclasses.fields(obj)}:
        raise TypeError(
            f"{type(obj).__name__}: the constructor argument {name!r} is not a field of the same name; "
            f"say how to read it back by overriding config_arg"
        )
    return getattr(obj, name)


def constructor_args(obj, kind: str | None, read: Callable[[str], Any] | None = None) -> dict:
    """``{kind: class name, argument: JSON value, ...}`` for every named argument of
    ``type(obj).__init__`` (``kind=None``: the arguments alone). ``read(name)`` gives an
    argument's value (default: the field of that name)."""
    read = read or (lambda name: field_arg(obj, name))
    out = {} if kind is None else {kind: type(obj).__name__}
    for name, p in inspect.signature(type(obj).__init__).parameters.items():
        if name == "self" or p.kind in _SKIP:
            continue
        out[name] = to_json(read(name), f"{type(obj).__name__}.{name}")
    return out


def to_json(value, where: str = "value"):
    """``value`` in JSON types: arrays as (nested) lists, 0-d arrays as numbers, a
    nested configuration object (an ``equinox.Module``) as its constructor's arguments."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, dict):
        return {str(k): to_json(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v, where) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return constructor_args(value, None)
    try:
        arr = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - named below
        raise TypeError(f"{where}: cannot describe a value of type {type(value).__name__}") from e
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{where}: cannot describe an array of dtype {arr.dtype}")
    return arr.item() if arr.ndim == 0 else arr.tolist()
