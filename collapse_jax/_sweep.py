"""Sweeps: a grid over traced hyperparameters of the regime or the family, run as
one compiled program with a leading ``sweep`` axis."""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import numpy as np

from ._validate import as_float_array


def apply_sweep(family, regime, values, fields):
    """Family and regime with the swept fields replaced by one sweep point's values."""
    for (target, name), v in zip(fields, values):
        if target == "family":
            family = eqx.tree_at(lambda f, name=name: getattr(f, name), family, v.astype(getattr(family, name).dtype))
        else:
            regime = eqx.tree_at(lambda r, name=name: getattr(r, name), regime, v.astype(getattr(regime, name).dtype))
    return family, regime


def resolve_sweep(family, regime, sweep) -> tuple[tuple[tuple[str, str], ...], tuple[np.ndarray, ...], dict]:
    """Grid over traced hyperparameters -> (fields, flattened values, coords)."""
    if not sweep:
        return (), (), {}
    if not isinstance(sweep, dict):
        raise TypeError(f"simulate: sweep must be a dict {{name: values}}, got {type(sweep).__name__}")
    fields, grids = [], []
    for key, vals in sweep.items():
        target, _, name = key.rpartition(".")
        candidates = []
        for tname, obj in (("regime", regime), ("family", family)):
            if target in ("", tname) and name in {f.name for f in dataclasses.fields(obj)}:
                candidates.append((tname, obj))
        if not candidates:
            raise ValueError(
                f"simulate: sweep key {key!r} names no field of {type(regime).__name__} or {type(family).__name__}"
            )
        if len(candidates) > 1:
            raise ValueError(f"simulate: sweep key {key!r} is ambiguous; write 'regime.{name}' or 'family.{name}'")
        tname, obj = candidates[0]
        field = next(f for f in dataclasses.fields(obj) if f.name == name)
        if field.metadata.get("static", False) or not isinstance(getattr(obj, name), jax.Array):
            raise ValueError(
                f"simulate: sweep key {key!r} is a static field (it sets shapes or code paths); only traced "
                "hyperparameters can be swept in one program"
            )
        arr = as_float_array("simulate", f"sweep values for {key!r}", vals).reshape(-1)
        if arr.size == 0:
            raise ValueError(f"simulate: sweep values for {key!r} are empty")
        current = getattr(obj, name)
        if current.ndim != 0:
            raise ValueError(f"simulate: sweep key {key!r} is not a scalar field")
        # every value must satisfy the bounds the class declares for this traced field
        low, high = getattr(type(obj), "traced_bounds", {}).get(name, (-math.inf, math.inf))
        bad = arr[~((arr >= low) & (arr <= high))]
        if bad.size:
            raise ValueError(
                f"simulate: sweep value {float(bad[0])!r} for {key!r} is invalid: "
                f"{type(obj).__name__}.{name} must lie in [{low}, {high}]"
            )
        fields.append((tname, name))
        grids.append(arr)
    mesh = np.meshgrid(*grids, indexing="ij")
    flat = tuple(m.reshape(-1) for m in mesh)
    coords = {f"{t}.{n}" if sum(1 for _, nn in fields if nn == n) > 1 else n: v for (t, n), v in zip(fields, flat)}
    return tuple(fields), flat, coords
