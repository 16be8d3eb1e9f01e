"""The frozen description of one run, built by ``simulate`` after every argument is
validated and every static size fixed; the driver reads nothing else."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .. import _rng
from .._validate import check_int
from ..families._protocol import AbstractFamily
from ..pressures import split as split_synthesis
from ..regimes import AbstractRegime, Replace
from ..synthesis import Synthesis
from . import compat
from .plan import names


def prepare_model(owner: str, family, regime, synthesis, n, generations) -> tuple:
    """Check a run's model and sizes (before anything compiles) and fix the model for
    the run: ``(family, regime, synthesis, n, generations)``, each of the three
    ``for_run``-ed. Shared by ``simulate`` and ``chain_fn``."""
    regime = Replace() if regime is None else regime
    family, synthesis = split_synthesis(family, synthesis, owner)
    if not isinstance(regime, AbstractRegime):
        raise TypeError(f"{owner}: regime must be a collapse_jax regime (e.g. cj.Replace()), got {regime!r}")
    prefix = "" if owner == "simulate" else f"{owner}: "
    n = check_int(f"{prefix}n", n, 1)
    generations = check_int(f"{prefix}generations", generations, 0)
    if generations > _rng.MAX_GENERATIONS:
        raise ValueError(f"{owner}: generations must be <= {_rng.MAX_GENERATIONS}, got {generations}")
    if n < family.min_points():
        desc = family.describe()
        args = ", ".join(f"{a}={desc[a]}" for a in ("components", "dim", "learn_cov") if a in desc)
        raise ValueError(
            f"{owner}: n={n} is too small for {type(family).__name__}({args}): "
            f"each fit needs n >= {family.min_points()}"
        )
    compat.check(family, regime, synthesis, n, generations, family.is_exact)
    family = family.for_run(regime, n, generations)
    regime = regime.for_run(family, n, generations)
    synthesis = synthesis.for_run(family, n)
    return family, regime, synthesis, n, generations


def choose_metrics(owner: str, model: tuple, metrics) -> tuple[str, ...]:
    """The metrics a run computes: by default the model's, less the family's
    ``optional_metrics``; ``"all"``: every one; else the named subset (checked)."""
    all_metrics = names(model)[0]
    if metrics is None:
        optional = set(getattr(model[0], "optional_metrics", ()))
        return tuple(m for m in all_metrics if m not in optional)
    if isinstance(metrics, str) and metrics == "all":
        return all_metrics
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in all_metrics]
    if unknown:
        raise ValueError(
            f"{owner}: unknown metrics {unknown}; {type(model[0]).__name__} has {list(all_metrics)} (or metrics='all')"
        )
    return tuple(metrics)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One validated run.

    ``family``, ``regime`` and ``synthesis`` are cast to the run's dtype and fixed for
    the run (``for_run``); ``values`` are the sweep grid's traced values (one array per
    swept field in ``fields``; ``coords`` their names and values for the result);
    ``budget`` is ``max_memory`` in bytes; ``checkpoint`` a ready
    :class:`~collapse_jax.engine.checkpoint.Checkpointer` or ``None``.
    """

    family: AbstractFamily
    regime: AbstractRegime
    synthesis: Synthesis
    values: tuple
    coords: dict
    fields: tuple
    metrics: tuple[str, ...]
    thresholds: tuple[tuple[str, float], ...]
    n: int
    generations: int
    chains: int
    seed: int
    keep: str
    keep_chains: int
    budget: int
    dtype: str
    progress: Any
    chunk_size: int | None
    exact: bool
    checkpoint: Any = None
    devices: int | None = None
    prng: str = "threefry"
    shards: Any = None
    shard_timeout: float = 3600.0
    axes: dict = dataclasses.field(default_factory=dict)
    callback: Any = None
    process: tuple[int, int] | None = None  # independent processes: (p, P); None: jax.distributed's

    @property
    def model(self) -> tuple:
        """The kernel's unit: ``(family, regime, synthesis)``."""
        return self.family, self.regime, self.synthesis

    @property
    def n_sweep(self) -> int | None:
        """Points of the sweep grid (``None``: no sweep axis)."""
        return len(self.values[0]) if self.values else None

    @property
    def block(self) -> int:
        """Generations per compiled block (about ten blocks per run)."""
        G = self.generations
        return max(G if G <= 10 else math.ceil(G / 10), 1)
