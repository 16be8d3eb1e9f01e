"""What the families that accept ``data=`` (a finite data set as the truth) share."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import equinox as eqx

from ..data import Empirical, empirical_from_config
from ._protocol import AbstractFamily


class OnData(AbstractFamily):
    """A family that may take a data set as its truth (``data=``). It records the data's
    description in results (:meth:`config_arg`), leaves out the constructor arguments
    the data replace (``data_truth_args``: a stored configuration rebuilds the truth
    from the data, not from a copy of it), and sizes itself for a run
    (:func:`sized_for_run`)."""

    data: eqx.AbstractVar[Empirical | None]
    _data_first: eqx.AbstractVar[int]

    data_truth_args: ClassVar[tuple[str, ...]] = ()

    def config_arg(self, name: str):
        if name == "data":
            return None if self.data is None else self.data.describe()
        if self.data is not None and name in self.data_truth_args:
            return None  # the data's
        return super().config_arg(name)

    def for_run(self, regime, n: int, generations: int):
        return sized_for_run(super().for_run(regime, n, generations), n)


def as_data(owner: str, data: Any) -> Empirical | None:
    """``data`` as an :class:`~collapse_jax.Empirical` (a stored description of a loaded
    set is rebuilt), or ``None``; else a TypeError naming it."""
    if data is None or isinstance(data, Empirical):
        return data
    if isinstance(data, dict):
        return empirical_from_config(dict(data))
    raise TypeError(
        f"{owner}: data must be a cj.Empirical (e.g. cj.Empirical.load('iris')) or None, got {type(data).__name__}"
    )


def sized_for_run(family, n: int):
    """``family`` with the run's generation-0 size recorded (the offset of later fresh
    real draws in each chain's order of the pool); checks that n rows exist."""
    data = family.data
    if data is None:
        return family
    data.check_size(type(family).__name__, n)
    if family._data_first == n:
        return family
    out = copy.copy(family)
    object.__setattr__(out, "_data_first", int(n))  # a static field: eqx.tree_at cannot set it
    return out


def data_dim(owner: str, data: Empirical | None, dim: int | None, truth_args: dict[str, Any]) -> int:
    """The family's dimension: the data's when ``data`` is given (``dim`` must then be
    unset or equal, and the truth arguments ``truth_args`` unset), else ``dim`` or 1."""
    if data is None:
        return 1 if dim is None else dim
    if dim is not None and dim != data.dim:
        raise ValueError(f"{owner}: dim={dim} but the data set {data.name!r} has {data.dim} features")
    given = [name for name, value in truth_args.items() if value is not None]
    if given:
        raise ValueError(f"{owner}: with data=, the truth is the data's; leave {' and '.join(given)} unset")
    return data.dim
