"""Partial editing: each generation relabels a random share of a fixed design's
current labels with the current model (Zhu et al., "How to Synthesize Text Data
without Model Collapse?", ICML 2025: token-level editing, ToEdit)."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from .._rng import STREAM_SUBSAMPLE, STREAM_SYNTH, STREAM_SYNTH_EXTRA
from ..families._base import tree_where
from ..families._protocol import Designed
from ._protocol import AbstractRegime, fit_points, original_sample, slots, truth_dtype, unit_fraction


class Edit(AbstractRegime):
    """On a fixed design, generation g keeps the chain's current labels but for
    r = floor(fraction * n + 1/2) rows chosen uniformly at random (without
    replacement), which get new labels drawn from model g - 1, and refits on all n
    rows. Generation 0's labels are the original sample's. ``fraction = 1`` is
    ``Replace``; ``fraction = 0`` refits the original labels forever. With OLS the
    error grows linearly, at least ``fraction`` times as fast as under Replace
    (``cj.theory.selection.edit_ols_error``, exact given the design; THEORY.md
    section 17). The regime carries the n current labelled rows per chain; the new
    labels go through the run's synthesis (which must draw exactly n rows: no
    filters on a fixed design).

    Args:
        fraction: the share of rows relabelled each generation, in [0, 1] (traced).
    """

    fraction: jax.Array
    needs_points: ClassVar[bool] = True
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"fraction": (0.0, 1.0)}

    def __init__(self, fraction=0.5):
        self.fraction = unit_fraction("Edit", "fraction", fraction)

    def validate(self, family, n, generations, exact):
        if not (isinstance(family, Designed) and family.design == "fixed"):
            what = f"design={family.design!r}" if isinstance(family, Designed) else "no design"
            raise ValueError(
                f"Edit relabels the rows of a fixed design; {type(family).__name__} has {what}. "
                "Use a regression family with design='fixed' (e.g. cj.Ridge(dim, design='fixed'))"
            )

    def init(self, family, ctx, params0):
        return original_sample(family, ctx, None)  # the current labelled rows, absolute coordinates

    def step(self, family, ctx, state, prev, g):
        n, dtype = ctx.n, truth_dtype(family)
        r = slots(self.fraction, n, dtype)
        u = ctx.stream(g, STREAM_SUBSAMPLE).uniform((n,), dtype)
        # the r rows of smallest u: r rows uniformly at random, without replacement (one sort)
        edited = jnp.zeros((n,), bool).at[jnp.argsort(u)].set(jnp.arange(n) < r, unique_indices=True)
        relabelled = ctx.draw(family, ctx.stream(g, STREAM_SYNTH), prev, n, None)
        data = tree_where(edited, relabelled, state)
        return data, fit_points(family, ctx.stream(g, STREAM_SYNTH_EXTRA), data, None, None, prev)
