"""The frozen description of one run, built by ``simulate`` after every argument is
validated and every static size fixed; the driver reads nothing else."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..families._protocol import AbstractFamily
from ..regimes import AbstractRegime
from ..synthesis import Synthesis


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
    progress: bool | None
    chunk_size: int | None
    exact: bool
    checkpoint: Any = None
    devices: int | None = None
    prng: str = "threefry"
    shards: Any = None
    shard_timeout: float = 3600.0

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
