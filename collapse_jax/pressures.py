"""``cj.Pressured(family, ...)``: a family whose synthetic data pass through a
:class:`collapse_jax.Synthesis`, spelled as one object.

``simulate(cj.Pressured(family, temperature=0.9), regime)`` is exactly
``simulate(family, regime, synthesis=cj.Synthesis(temperature=0.9))``: simulate splits
the two before anything else, so the family keeps every capability it has (its exact
path, a fixed design, its sweepable fields) and the regime sees the family itself.
The pipeline, its order and its sources are documented in :mod:`collapse_jax.synthesis`.
"""

from __future__ import annotations

import equinox as eqx

from .engine.compat import check_synthesis
from .families._protocol import AbstractFamily, fixed_design
from .synthesis import DEFAULT_SUPPORT, PRESSURES, SHORTFALL_LEVEL, Synthesis, candidates_needed, first_passing

__all__ = [
    "DEFAULT_SUPPORT",
    "PRESSURES",
    "SHORTFALL_LEVEL",
    "Pressured",
    "candidates_needed",
    "first_passing",
    "fixed_design",
]


class Pressured(eqx.Module):
    """``family`` whose synthetic data pass through ``Synthesis(**rates)``.

    Args:
        family: any family with the capabilities the rates need (``temperature``:
            Temperable; ``truncate`` and the verifier: Scorable, and not a fixed
            design; ``correct``: Correctable); checked here, naming what is missing.
        **rates: ``temperature``, ``truncate``, ``support``, ``false_accept``,
            ``false_reject``, ``correct``, ``oversample``: as :class:`collapse_jax.Synthesis`.
    """

    family: AbstractFamily
    synthesis: Synthesis

    def __init__(self, family: AbstractFamily, **rates):
        if not isinstance(family, AbstractFamily):
            raise TypeError(f"Pressured: family must be a collapse_jax family (not a Pressured one), got {family!r}")
        self.family = family
        self.synthesis = Synthesis(**rates, owner="Pressured")
        check_synthesis(family, self.synthesis, owner="Pressured")

    def for_run(self, regime, n: int, generations: int) -> Pressured:
        """The pair as a run uses it (the family's ``for_run`` and the synthesis sized)."""
        family = self.family.for_run(regime, n, generations)
        out = object.__new__(Pressured)
        object.__setattr__(out, "family", family)
        object.__setattr__(out, "synthesis", self.synthesis.for_run(family, n))
        return out

    def candidates(self) -> int:
        """Candidates per synthetic slot (see :meth:`collapse_jax.Synthesis.filter_candidates`)."""
        return self.synthesis.filter_candidates(self.family)

    def describe(self) -> dict:
        return {**self.family.describe(), "synthesis": self.synthesis.describe(self.family)}


def split(family, synthesis, owner: str) -> tuple[AbstractFamily, Synthesis]:
    """The run's family and synthesis from ``simulate``'s arguments: a
    :class:`Pressured` family is split in two; ``None`` is plain draws. Both checked."""
    if isinstance(family, Pressured):
        if synthesis is not None:
            raise ValueError(f"{owner}: give the synthesis once, as cj.Pressured(family, ...) or as synthesis=")
        family, synthesis = family.family, family.synthesis
    synthesis = Synthesis() if synthesis is None else synthesis
    if not isinstance(family, AbstractFamily):
        raise TypeError(f"{owner}: family must be a collapse_jax family (e.g. cj.Gaussian()), got {family!r}")
    if not isinstance(synthesis, Synthesis):
        raise TypeError(
            f"{owner}: synthesis must be a cj.Synthesis (e.g. cj.Synthesis(temperature=0.9)), got {synthesis!r}"
        )
    return family, synthesis
