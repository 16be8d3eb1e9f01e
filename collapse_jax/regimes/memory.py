"""Regimes that keep everything generated so far: Accumulate, AccumulateSubsample,
AccumulateMix. Families with sufficient statistics pool them (exact, constant
memory); others store every point, (generations + 1) n per chain (README, "Memory
of the data-storing regimes")."""

from __future__ import annotations

from typing import ClassVar

import jax

from ._protocol import AbstractPlannedRegime, TrainingSet, slots, truth_dtype, unit_fraction


class Accumulate(AbstractPlannedRegime):
    """The original sample plus every synthetic batch so far: generation g trains
    on n * (g + 1) points, batch j drawn from model j - 1 (Gerstgrasser et al.
    2024; Kazdan et al. 2024). Families with sufficient statistics (the Gaussian)
    pool them: exact, constant memory, any number of generations. Others store
    every point (memory grows with ``generations``): (generations + 1) n points per
    chain, each fitted every generation, so a run costs O(generations^2 n) per chain
    (README, "Memory of the data-storing regimes")."""

    def plan(self, family, g, n):
        return TrainingSet(model=n, pool="merge")


class AccumulateSubsample(AbstractPlannedRegime):
    """A uniform n-subset, without replacement, of everything ever generated
    (original sample + every synthetic batch, batch g included) (Kazdan et al.
    2024, "accumulate-subsample"). In general this cannot be reduced to sufficient
    statistics: every point is stored, (generations + 1) * n per chain.

    ``SubsampleStats`` families know the exact law of the statistics of a uniform
    n-subset of the points behind pooled statistics (``subsample_stats(key, stats,
    n)``; Categorical: a multivariate hypergeometric draw from the pooled counts).
    They pool statistics as ``Accumulate`` does (exact, constant memory, and
    ``sampler="exact"`` is allowed); the others use the point buffer."""

    def plan(self, family, g, n):
        return TrainingSet(model=n, pool="subsample")


class AccumulateMix(AbstractPlannedRegime):
    """Accumulate with a fresh-real share: every new batch of n holds
    r = floor(real_fraction * n + 1/2) fresh real points and n - r synthetic points
    from model g - 1, pooled with the original sample and every earlier batch
    (Kanabar and Gastpar). With known variance the Gaussian mean's error decays like
    g^(-2 a) for a share a below 1/2 and like 1/g above it
    (``cj.theory.accumulate_mix_mean_sq_error``; THEORY.md section 12).
    ``real_fraction`` is traced; 0 is ``Accumulate``."""

    real_fraction: jax.Array
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"real_fraction": (0.0, 1.0)}

    def __init__(self, real_fraction=0.5):
        self.real_fraction = unit_fraction("AccumulateMix", "real_fraction", real_fraction)

    def plan(self, family, g, n):
        return TrainingSet(real=slots(self.real_fraction, n, truth_dtype(family)), pool="merge")
