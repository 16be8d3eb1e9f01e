"""Sweeps: a grid over traced hyperparameters of the family, the regime or the
synthesis, run as one compiled program with a leading ``sweep`` axis.

A swept field is ``(slot, name)``: the model's slot (0 family, 1 regime, 2
synthesis) and the field's name."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import numpy as np

from .._validate import as_float_array

TARGETS = ("family", "regime", "synthesis")


def apply_sweep(model, values, fields):
    """The run's ``(family, regime, synthesis)`` with the swept fields replaced by one
    sweep point's values."""
    for (slot, name), v in zip(fields, values):
        current = getattr(model[slot], name)

        def where(m, s=slot, f=name):
            return getattr(m[s], f)

        model = eqx.tree_at(where, model, v.astype(current.dtype))
    return model


def targets(model) -> list[tuple[str, int, Any]]:
    """What a sweep key may name: ``(label, slot, object)`` for the regime, the family
    and the synthesis (for a graph too: its family and synthesis are the run's)."""
    family, regime, synthesis = model
    return [("regime", 1, regime), ("family", 0, family), ("synthesis", 2, synthesis)]


def resolve_sweep(model, sweep) -> tuple[tuple[tuple[int, str], ...], tuple[np.ndarray, ...], dict, dict]:
    """Grid over traced hyperparameters of the run's ``(family, regime, synthesis)``
    -> (fields, flattened values, coords, axes). ``sweep`` is any ``Mapping`` (a
    Hydra ``DictConfig`` too); ``axes`` are its keys and values as given, in float64
    lists (what reruns the sweep), ``coords`` the flattened grid per coordinate."""
    family, regime, _ = model
    if not sweep:
        return (), (), {}, {}
    if not isinstance(sweep, Mapping):
        raise TypeError(f"simulate: sweep must be a mapping {{name: values}}, got {type(sweep).__name__}")
    fields: list[tuple[int, str]] = []
    labels: list[tuple[str, str]] = []
    grids: list[np.ndarray] = []
    for key, vals in sweep.items():
        target, _, name = key.rpartition(".")
        candidates = []
        for tname, slot, obj in targets(model):
            if target in ("", tname) and name in {f.name for f in dataclasses.fields(obj)}:
                candidates.append((tname, obj, slot))
        if not candidates:
            raise ValueError(
                f"simulate: sweep key {key!r} names no field of {type(regime).__name__}, {type(family).__name__} "
                "or the synthesis"
            )
        if len(candidates) > 1:
            which = " or ".join(f"'{t}.{name}'" for t, _, _ in candidates)
            raise ValueError(f"simulate: sweep key {key!r} is ambiguous; write {which}")
        tname, obj, slot = candidates[0]
        field = next(f for f in dataclasses.fields(obj) if f.name == name)
        if getattr(obj, name) is None and tname == "synthesis":
            raise ValueError(
                f"simulate: sweep key {key!r} names a synthesis step the run does not have; give it a value, "
                f"e.g. cj.Synthesis({name}=...)"
            )
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
        low, high = type(obj).traced_bounds.get(name, (-math.inf, math.inf))
        bad = arr[~((arr >= low) & (arr <= high))]
        if bad.size:
            raise ValueError(
                f"simulate: sweep value {float(bad[0])!r} for {key!r} is invalid: "
                f"{type(obj).__name__}.{name} must lie in [{low}, {high}]"
            )
        check = getattr(obj, "check_sweep", None)  # a rule the bounds cannot state (AbstractFamily.check_sweep)
        if check is not None:
            check(name, arr)
        fields.append((slot, name))
        labels.append((tname, name))
        grids.append(arr)
    mesh = np.meshgrid(*grids, indexing="ij")
    flat = tuple(m.reshape(-1) for m in mesh)
    coords = {f"{t}.{n}" if sum(1 for _, nn in labels if nn == n) > 1 else n: v for (t, n), v in zip(labels, flat)}
    axes = {str(key): grid.tolist() for key, grid in zip(sweep, grids)}
    return tuple(fields), flat, coords, axes
