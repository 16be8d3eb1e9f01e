"""Regimes that train each generation on one fresh set: Replace, FreshMix,
RetainOriginal, Weighted, Schedule, and Provenance (a detector simulated in its own
``step``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._rng import STREAM_DECIDE, STREAM_REAL, STREAM_SYNTH, STREAM_SYNTH_EXTRA
from .._validate import check_positive, is_traced
from ..families._base import tree_take, tree_where
from ..families._protocol import AbstractFamily, check_same_model
from ..synthesis import candidates_needed, first_passing
from ._protocol import (
    AbstractPlannedRegime,
    AbstractRegime,
    TrainingSet,
    assemble,
    fit_original,
    fit_points,
    slots,
    truth_dtype,
    unit_fraction,
)


class Replace(AbstractPlannedRegime):
    """Generation g trains on n synthetic points from model g-1 only
    (Shumailov et al. 2024; Kazdan et al. 2024 "replace")."""

    def plan(self, family, g, n):
        return TrainingSet(model=n)


class FreshMix(AbstractPlannedRegime):
    """r = floor(real_fraction * n + 1/2) fresh real points plus n - r synthetic
    points from model g-1, pooled into one fit (Bertrand et al. 2024; Alemohammad
    et al. 2024 "fresh data loop"). ``real_fraction`` is traced."""

    real_fraction: jax.Array
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"real_fraction": (0.0, 1.0)}

    def __init__(self, real_fraction=0.5):
        self.real_fraction = unit_fraction("FreshMix", "real_fraction", real_fraction)

    def plan(self, family, g, n):
        return TrainingSet(real=slots(self.real_fraction, n, truth_dtype(family)))


class RetainOriginal(AbstractPlannedRegime):
    """The same r = floor(fraction * n + 1/2) points of the original sample plus
    n - r synthetic points from model g-1 (Alemohammad et al. 2024 "synthetic
    augmentation loop"; Shumailov et al.'s retained-data variant). ``fraction`` is
    traced. The original sample is regenerated from its stream rather than stored
    (same points, no memory)."""

    fraction: jax.Array
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"fraction": (0.0, 1.0)}

    def __init__(self, fraction=0.1):
        self.fraction = unit_fraction("RetainOriginal", "fraction", fraction)

    def plan(self, family, g, n):
        return TrainingSet(original=slots(self.fraction, n, truth_dtype(family)))


class Weighted(AbstractPlannedRegime):
    """n fresh real points and m = floor(n / ratio + 1/2) synthetic points from
    model g-1, mixed with real weight w (He, Xu, Cheng, arXiv 2502.18049).

    ``combine="estimates"``: theta = w theta(real) + (1 - w) theta(synth) (the
    family's ``combine``); ``"samples"``: one fit with per-point weights w/n on real
    and (1 - w)/m on synthetic points. ``None`` picks the family's default
    (Gaussian: estimates; regression and GLMs: samples). ``real_weight`` is traced,
    ``ratio`` (k = n_real / n_synth) is static: it sets a buffer size.
    """

    real_weight: jax.Array
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"real_weight": (0.0, 1.0)}
    ratio: float = eqx.field(static=True)
    combine: Literal["estimates", "samples"] | None = eqx.field(static=True)

    def __init__(self, real_weight=0.5, ratio: float = 1.0, combine: Literal["estimates", "samples"] | None = None):
        self.real_weight = unit_fraction("Weighted", "real_weight", real_weight)
        k = check_positive("Weighted", "ratio", ratio)  # k = n_real / n_synth
        if combine not in (None, "estimates", "samples"):
            raise ValueError(f"Weighted: combine must be None, 'estimates' or 'samples', got {combine!r}")
        self.ratio = k
        self.combine = combine

    def synthetic_count(self, n: int) -> int:
        return int(math.floor(n / self.ratio + 0.5))

    def mode(self, family) -> str:
        return self.combine or family.default_combine

    def plan(self, family, g, n):
        w = self.real_weight.astype(truth_dtype(family))
        mode: Literal["pool", "estimates"] = "pool" if self.mode(family) == "samples" else "estimates"
        return TrainingSet(real=n, model=self.synthetic_count(n), weights=(w, 0.0, 1 - w), combine=mode)


class Schedule(AbstractPlannedRegime):
    """Replace with a sample-size schedule: generation g fits ``sizes[g]`` points
    (generation 0: the first ``sizes[0]`` points of the original sample; g >= 1:
    synthetic points from model g - 1). ``n`` (simulate's) is the buffer size, the
    largest ``sizes[g]``; a traced mask selects the first ``sizes[g]`` slots, so a
    new schedule of the same length never recompiles. Shumailov et al. (Nature 2024,
    supplement) show the distance to the truth stays bounded only if the sizes grow
    superlinearly; for the known-variance Gaussian E||mu_g - mu*||^2 =
    sigma^2 sum_{j<=g} 1/n_j (THEORY.md section 13).

    Args:
        sizes: integers, one per generation (at least generations + 1 of them).
    """

    sizes: jax.Array

    def __init__(self, sizes):
        arr = np.asarray(sizes)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"Schedule: sizes must be a non-empty 1-D sequence of ints, got {sizes!r}")
        if not np.issubdtype(arr.dtype, np.integer):
            if not (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr))):
                raise TypeError(f"Schedule: sizes must be integers, got {arr.tolist()[:8]}")
        if np.any(arr < 1):
            bad = int(np.argmax(arr < 1))
            raise ValueError(f"Schedule: sizes must be >= 1, got sizes[{bad}] = {arr[bad]}")
        if np.any(arr > 2**31 - 1):
            raise ValueError("Schedule: sizes must fit in int32")
        self.sizes = jnp.asarray(arr.astype(np.int64), jnp.int32)

    @classmethod
    def power(cls, n0: int, power: float, generations: int) -> Schedule:
        """n_g = floor(n0 (g + 1)^power + 1/2), g = 0..generations (power > 1:
        superlinear growth, bounded error)."""
        g = np.arange(int(generations) + 1, dtype=np.float64)
        return cls(np.floor(float(n0) * (g + 1.0) ** float(power) + 0.5).astype(np.int64))

    def validate(self, family, n, generations, exact):
        super().validate(family, n, generations, exact)
        sizes = np.asarray(self.sizes)
        if sizes.size < generations + 1:
            raise ValueError(
                f"Schedule: {sizes.size} sizes given for generations={generations}; need generations + 1 = "
                f"{generations + 1} (sizes[g] for g = 0..generations)"
            )
        used = sizes[: generations + 1]
        if used.max() > n:
            g = int(np.argmax(used > n))
            raise ValueError(f"Schedule: sizes[{g}] = {used[g]} exceeds n={n}, the buffer; pass n >= max(sizes)")
        need = family.min_points()
        if used.min() < need:
            g = int(np.argmin(used))
            raise ValueError(
                f"Schedule: sizes[{g}] = {used[g]} is below {type(family).__name__}'s minimum of {need} points per fit"
            )

    def _size(self, g):
        return jnp.take(self.sizes, jnp.asarray(g, jnp.int32))

    def generation_zero(self, family, ctx):
        return fit_original(family, ctx, self._size(0))

    def plan(self, family, g, n):
        return TrainingSet(model=self._size(g))


class Provenance(AbstractRegime):
    """Train only on data labelled real, from a pool that mixes real and synthetic
    data (the web scrape), behind an imperfect provenance detector.

    Each pool point is real with probability ``pool_real_fraction`` (alpha) and
    otherwise synthetic, from model g - 1. The detector labels a synthetic point real
    with probability ``false_real`` (eps) and a real point synthetic with probability
    ``false_synthetic`` (eta). Generation g fits the first n pool points labelled
    real. Each is real, independently, with the effective real fraction

        rho = alpha (1 - eta) / (alpha (1 - eta) + (1 - alpha) eps),

    so the regime is ``FreshMix`` with a Binomial(n, rho) real count in place of
    FreshMix's fixed floor(rho n + 1/2) (``cj.theory.effective_real_fraction``;
    THEORY.md section 13). eps = eta = 0 trains on real data alone. The pool holds
    ``oversample`` x n points (default: enough that fewer than n labelled real
    happens with probability < 1e-6; the shortfall is then filled with the first
    points labelled synthetic). The exact path draws the real count from its
    binomial law (and :func:`assemble` builds that set). All three rates are traced.
    """

    pool_real_fraction: jax.Array
    false_real: jax.Array
    false_synthetic: jax.Array
    oversample: int | None = eqx.field(static=True)
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "pool_real_fraction": (0.0, 1.0),
        "false_real": (0.0, 1.0),
        "false_synthetic": (0.0, 1.0),
    }

    def __init__(self, pool_real_fraction=0.5, false_real=0.0, false_synthetic=0.0, oversample: int | None = None):
        self.pool_real_fraction = unit_fraction("Provenance", "pool_real_fraction", pool_real_fraction)
        self.false_real = unit_fraction("Provenance", "false_real", false_real)
        self.false_synthetic = unit_fraction("Provenance", "false_synthetic", false_synthetic)
        if oversample is not None and (
            isinstance(oversample, bool) or not isinstance(oversample, (int, np.integer)) or oversample < 1
        ):
            raise ValueError(f"Provenance: oversample must be an int >= 1, got {oversample!r}")
        self.oversample = None if oversample is None else int(oversample)
        rates = (self.pool_real_fraction, self.false_real, self.false_synthetic)
        if not any(map(is_traced, rates)) and self.labelled_real_rate() <= 0:
            raise ValueError(
                "Provenance: no pool point is ever labelled real (pool_real_fraction * (1 - false_synthetic) + "
                "(1 - pool_real_fraction) * false_real = 0)"
            )

    def labelled_real_rate(self) -> float:
        rates = (self.pool_real_fraction, self.false_real, self.false_synthetic)
        a, e, h = (float(np.min(np.asarray(x))) for x in rates)
        return a * (1 - h) + (1 - a) * e

    def for_run(self, family, n, generations):
        if self.oversample is not None:
            return self
        k = self.pool_size(n) // n
        return Provenance(self.pool_real_fraction, self.false_real, self.false_synthetic, oversample=k)

    def pool_size(self, n: int) -> int:
        if self.oversample is None and any(
            map(is_traced, (self.pool_real_fraction, self.false_real, self.false_synthetic))
        ):
            raise TypeError(
                "Provenance: its rates are traced values (inside jit, vmap or grad), so the pool cannot be sized "
                "from them; give oversample=<int>"
            )
        k = self.oversample if self.oversample is not None else candidates_needed(self.labelled_real_rate(), n)
        return k * n

    def fit_size(self, family, n, generations):
        return 2 * self.pool_size(n)  # real and synthetic candidates for every pool slot

    def effective_real_fraction(self, dtype):
        a, e, h = (x.astype(dtype) for x in (self.pool_real_fraction, self.false_real, self.false_synthetic))
        real = a * (1 - h)
        return real / (real + (1 - a) * e)

    def step(self, family, ctx, state, prev, g):
        dtype = truth_dtype(family)
        n = ctx.n
        decide = ctx.stream(g, STREAM_DECIDE)
        if ctx.exact:  # the real count's law; assemble draws the set
            rho = self.effective_real_fraction(dtype)
            r = jax.random.binomial(decide.key(), jnp.asarray(n, dtype), rho).astype(jnp.int32)
            return assemble(family, ctx, TrainingSet(real=r), state, prev, g)
        size = self.pool_size(n)
        real = family.sample_real(ctx.stream(g, STREAM_REAL), size, prev)
        synth = ctx.draw(family, ctx.stream(g, STREAM_SYNTH), prev, size, prev)
        u = decide.uniform((size, 2), dtype)
        is_real = u[:, 0] < self.pool_real_fraction.astype(dtype)
        labelled_real = jnp.where(
            is_real, u[:, 1] >= self.false_synthetic.astype(dtype), u[:, 1] < self.false_real.astype(dtype)
        )
        pool = tree_where(is_real, real, synth)
        data = tree_take(pool, first_passing(labelled_real, n))
        return state, fit_points(family, ctx.stream(g, STREAM_SYNTH_EXTRA), data, None, prev, prev)


def as_family(owner: str, name: str, value) -> AbstractFamily:
    """A family given as itself or as its ``describe()`` dict (a config's table)."""
    if isinstance(value, Mapping):
        from ..config import build

        value = build("family", value)
    if not isinstance(value, AbstractFamily):
        raise TypeError(f"{owner}: {name} must be a family (e.g. cj.Ridge(dim=1, w_star=[2.0])), got {value!r}")
    return value


class MixTeacher(AbstractPlannedRegime):
    """Every generation trains on n points: r = floor((1 - teacher_fraction) n + 1/2)
    fresh real points and n - r points from a fixed ``teacher`` model (its truth),
    pooled; the chain's own fits are never reused (Dohmatob, Feng, Subramonian and
    Kempe, "Strong Model Collapse", ICLR 2025: a share of the data labelled by a
    fixed synthetic teacher). Generations are then independent replicates of one
    one-shot fit, and the study is over n: with OLS the error tends to
    teacher_fraction^2 ||w_T - w*||^2, not 0 (``cj.theory.selection.strong_collapse_error``,
    THEORY.md section 17). The teacher's points go through the run's synthesis.

    Args:
        teacher_fraction: the teacher's share p in [0, 1] (traced).
        teacher: a family of the run's type and shape whose truth is the teacher
            (``cj.Ridge(dim=1, w_star=[1.5])``), or its ``describe()`` dict.
    """

    teacher_fraction: jax.Array
    teacher: AbstractFamily
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"teacher_fraction": (0.0, 1.0)}

    def __init__(self, teacher_fraction=0.5, teacher=None):
        self.teacher_fraction = unit_fraction("MixTeacher", "teacher_fraction", teacher_fraction)
        if teacher is None:
            raise ValueError("MixTeacher: teacher is required (a family whose truth is the teacher model)")
        self.teacher = as_family("MixTeacher", "teacher", teacher)

    def validate(self, family, n, generations, exact):
        check_same_model(family, self.teacher, "MixTeacher: teacher")

    def plan(self, family, g, n):
        real = slots(1.0 - jnp.asarray(self.teacher_fraction, truth_dtype(family)), n, truth_dtype(family))
        return TrainingSet(real=real)

    def step(self, family, ctx, state, prev, g):
        teacher = jax.tree.map(lambda t, f: jnp.asarray(t, f.dtype), self.teacher.truth(), family.truth())
        return assemble(family, ctx, self.plan(family, g, ctx.n), state, teacher, g)

    def config_arg(self, name):
        return self.teacher.describe() if name == "teacher" else super().config_arg(name)
