"""Every compatibility rule between a family, a regime, a synthesis and a path, in one
place, checked before anything compiles.

What a family can do is the capability classes it inherits
(:mod:`collapse_jax.families._protocol`), asked here with ``isinstance``. Rules about a
configuration's *values* (a schedule longer than the run, a prior too weak for n) stay
with the object that owns the values (``regime.validate``, ``family.validate_regime``)
and are called from :func:`check`. A combination that is refused says which
capability or value is missing; one that passes never fails inside tracing.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from .._validate import is_traced
from ..families._protocol import (
    AbstractFamily,
    CountWeights,
    Designed,
    ExactSampler,
    Rewardable,
    SufficientStats,
    check_same_model,
    fixed_design,
)
from ..regimes import AbstractPlannedRegime, AbstractRegime, Accumulate, Provenance, Replace, Weighted
from ..synthesis import Synthesis

_METHODS = {
    "Temperable": "temper",
    "Decodable": "top_k/min_p",
    "Scorable": "score",
    "Correctable": "correct",
    "Rewardable": "reward",
    "Tiltable": "tilt",
}


def _name(family: AbstractFamily) -> str:
    return type(family).__name__


def check_synthesis(family: AbstractFamily, synthesis: Synthesis, owner: str = "simulate") -> None:
    """The capabilities ``synthesis`` needs of ``family`` (path-independent rules)."""
    for cap, what in synthesis.required(family):
        if not isinstance(family, cap):
            raise ValueError(
                f"{owner}: {what} needs a {cap.__name__} family (the method {_METHODS[cap.__name__]}()), which "
                f"{_name(family)} is not; see collapse_jax.families._protocol for who has it"
            )
    if (synthesis.filters or synthesis.chooses) and fixed_design(family):
        raise ValueError(
            f"{owner}: filters draw more candidates than n (as do curation's choices), which a fixed design cannot; "
            f"use {_name(family)}(design='fresh')"
        )
    if synthesis.curate is not None:
        assert synthesis.reward is not None  # set with curate
        if not is_traced(synthesis.reward):
            quad = synthesis.reward_quadratic
            cast(Rewardable, family).check_reward(
                np.asarray(synthesis.reward), None if quad is None or is_traced(quad) else float(quad)
            )
    if synthesis.verifier_kind == "model":
        check_same_model(family, synthesis.verifier_model, f"{owner}: verifier")


def weighted_mode(regime: Weighted, family: AbstractFamily) -> str:
    """The combine mode a ``Weighted`` regime runs with on ``family``."""
    return regime.mode(family)


def stores_points(regime: AbstractRegime, family: AbstractFamily) -> bool:
    """Whether the regime keeps every generation's points (memory grows with G)."""
    return isinstance(regime, AbstractPlannedRegime) and regime.stores_points(family)


def needs_points(regime: AbstractRegime, family: AbstractFamily, n: int = 2) -> bool:
    """Whether the regime needs the data points (so cannot run on the exact path):
    read from a planned regime's training set, declared by one that writes ``step``."""
    if isinstance(regime, AbstractPlannedRegime):
        return regime.needs_points_of(family, n)
    return regime.needs_points


def check(
    family: AbstractFamily,
    regime: AbstractRegime,
    synthesis: Synthesis,
    n: int,
    generations: int,
    exact: bool,
) -> None:
    """Raise, naming what is missing, if this combination cannot run."""
    fam, reg = _name(family), type(regime).__name__
    # ---- the synthesis: what it needs of the family comes first (the most basic rule)
    check_synthesis(family, synthesis)
    # ---- the path
    if exact:
        if not family.has_exact:
            why = family.exact_unavailable() if isinstance(family, ExactSampler) else "it is not an ExactSampler family"
            raise ValueError(f"{fam} has no exact path ({why}); use sampler='samples'")
        if needs_points(regime, family, n):
            raise ValueError(
                f"{reg} needs the data points; sampler='exact' works only with regimes that never need them "
                "(Replace, Accumulate, FreshMix, Weighted with combine='estimates'; AccumulateSubsample for "
                "SubsampleStats families, such as Categorical)"
            )
        if synthesis.needs_points_for(family):
            raise ValueError(
                f"synthesis: {type(synthesis).__name__}'s steps (filters: truncate, verifier; correct; or a step of "
                "its own) need the synthetic points; sampler='exact' supports temperature, top_k, min_p and "
                "curation by a tilt (or by a choice, on a ChoiceLaw family such as Categorical) alone"
            )
        model_only = isinstance(regime, AbstractPlannedRegime) and regime.plan(family, 1, n).model_only(n)
        if fixed_design(family) and not model_only:
            raise ValueError(
                f"{reg} on a fixed design needs the data points (it mixes label vectors row by row); "
                "sampler='exact' supports regimes that train on n model points alone (Replace, Accumulate) there. "
                "Use sampler='samples' or design='fresh'"
            )
    # ---- the regime
    if isinstance(regime, Weighted):
        mode = weighted_mode(regime, family)
        if mode not in family.combine_modes:
            need = " (it is not a Combinable family)" if mode == "estimates" else ""
            raise ValueError(
                f"Weighted: combine={mode!r} is not supported by {fam}{need}; allowed: {family.combine_modes}"
            )
        if isinstance(family, CountWeights):
            raise ValueError(
                f"{fam}: Weighted rescales the weights, which a posterior reads as numbers of points; use "
                "FreshMix (pooled real and synthetic points) or Replace/Accumulate"
            )
        if isinstance(family, Designed) and family.design == "fixed" and regime.ratio != 1.0:
            raise ValueError(
                f"Weighted: ratio={regime.ratio} on a fixed design; real and synthetic labels share the design's "
                f"rows, so ratio must be 1 (or use {fam}(design='fresh'))"
            )
        m = regime.synthetic_count(n)
        fewest = family.min_points() if mode == "estimates" else 1
        if m < fewest:
            raise ValueError(
                f"Weighted: ratio={regime.ratio} gives m = floor(n/ratio + 1/2) = {m} synthetic points at n={n}; "
                f"{fam} needs m >= {fewest}"
            )
    if isinstance(regime, Provenance) and fixed_design(family) and not exact:
        raise ValueError("Provenance: the pool holds more points than a fixed design's n rows; use design='fresh'")
    # ---- values owned by the regime and the family
    regime.validate(family, n, generations, exact)
    family.validate_regime(regime, n, exact)


def check_graph(family: AbstractFamily, regime: AbstractRegime, synthesis: Synthesis, exact: bool) -> None:
    """The rules of interaction graphs (Replace or Accumulate at every node)."""
    fam = _name(family)
    check_synthesis(family, synthesis, owner="simulate_graph")
    if synthesis.needs_reference:
        raise ValueError(
            "simulate_graph: verifier='first' (self-verification against generation 0) is not supported on "
            "interaction graphs; give the verifier a model of its own (verifier=<family>)"
        )
    if exact and synthesis.needs_points_for(family):
        raise ValueError(
            f"simulate_graph: {type(synthesis).__name__}'s steps (filters, correct, or a step of its own) need the "
            "synthetic points; sampler='exact' supports temperature, top_k and min_p alone"
        )
    if type(regime) not in (Replace, Accumulate):
        raise ValueError(f"simulate_graph: regime must be Replace() or Accumulate() (per node), got {regime!r}")
    if isinstance(regime, Accumulate) and not isinstance(family, SufficientStats):
        raise ValueError(
            f"simulate_graph: Accumulate at graph nodes needs sufficient statistics; {fam} has none "
            "(it is not a SufficientStats family; use Replace)"
        )
    if exact and fixed_design(family):
        raise ValueError(
            f"simulate_graph: {fam}(sampler='exact') on a fixed design cannot mix label vectors row by row; "
            "use sampler='samples' or design='fresh'"
        )
