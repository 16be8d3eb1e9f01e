"""How generation g's training set is composed (docs/ARCHITECTURE.md; the table of regimes is README.md, "Regimes").

Generation 0 is always the fit to the chain's original sample of n real points;
a regime decides what generation g >= 1 trains on. Every regime works for every
family through the family interface; none has its own copy of the generation loop.
Fractions and weights are traced (a fixed buffer of slots and a traced mask assign
each slot to a source), so sweeping them never recompiles; sizes are static.
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._rng import STREAM_DECIDE, STREAM_REAL, STREAM_SUBSAMPLE, STREAM_SYNTH, STREAM_SYNTH_EXTRA, Stream
from ._rng import STREAM_USER as STREAM_USER  # streams free for user regimes and synthesis steps
from ._validate import check_number, check_positive
from .families._base import tree_concat, tree_take, tree_update, tree_where
from .families._protocol import AbstractFamily, SubsampleStats
from .synthesis import Synthesis, candidates_needed, first_passing

PLAIN = Synthesis()  # plain draws from the fit


class Context(eqx.Module):
    """What a regime step sees of its chain: key data, the run's static sizes and how
    synthetic data are drawn (``synthesis``; ``None``: plain draws)."""

    chain_key: jax.Array
    n: int = eqx.field(static=True)
    generations: int = eqx.field(static=True)
    exact: bool = eqx.field(static=True)
    safe: bool = eqx.field(static=True, default=True)
    prng: str = eqx.field(static=True, default="threefry")
    synthesis: Synthesis | None = None

    def stream(self, g, s: int) -> Stream:
        return Stream(self.chain_key, jnp.asarray(g, jnp.int32), s, 0, self.safe, None, self.prng)

    def draw(self, family: AbstractFamily, stream: Stream, params, m: int, frame=None):
        """``m`` synthetic points from the fit ``params``: every regime's synthetic draw."""
        return (self.synthesis or PLAIN).draw(family, stream, params, m, frame)

    def draw_stats(self, family: AbstractFamily, stream: Stream, params, m, frame=None):
        """The exact path's :meth:`draw`: statistics of ``m`` synthetic points."""
        return (self.synthesis or PLAIN).draw_stats(family, stream, params, m, frame)


def _slots(fraction, n: int, dtype) -> jax.Array:
    """r = floor(fraction * n + 1/2), traced."""
    return jnp.floor(jnp.asarray(fraction, dtype) * n + 0.5).astype(jnp.int32)


def _check_unit(name: str, cls: str, value) -> Any:
    v = check_number(cls, name, value, 0.0, 1.0)
    return jnp.asarray(v, jnp.float32)


def original_sample(family: AbstractFamily, ctx: Context, frame, prev=None):
    """The chain's original n real points (stream REAL of generation 0)."""
    return family.sample(ctx.stream(0, STREAM_REAL), family.chain_truth(prev), ctx.n, frame)


def generation_zero(family: AbstractFamily, ctx: Context):
    """Generation 0: the fit to the original sample (identical for every regime)."""
    truth = family.truth()
    if ctx.exact:
        stats = family.sample_stats(ctx.stream(0, STREAM_REAL), truth, ctx.n, truth)
        return family.fit_stats(stats, truth)
    data = original_sample(family, ctx, truth)
    return family.fit(ctx.stream(0, STREAM_SYNTH), data, None, truth)


def truth_dtype(family: AbstractFamily):
    leaves = [x for x in jax.tree.leaves(family.truth()) if jnp.issubdtype(x.dtype, jnp.floating)]
    return leaves[0].dtype if leaves else jnp.float32


class AbstractRegime(eqx.Module):
    """A data regime. ``init`` builds the per-chain state after generation 0;
    ``step`` builds generation g's training set from the previous fit ``prev`` and
    returns the new state and fit. Synthetic points are drawn with ``ctx.draw`` (the
    run's synthesis), real ones with ``family.sample_real``. ``needs_points``: the
    regime cannot run on the exact (sufficient-statistics) path (rules:
    :func:`collapse_jax.compat.check`)."""

    needs_points: ClassVar[bool] = False
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {}  # inclusive bounds of sweepable fields

    def validate(self, family: AbstractFamily, n: int, generations: int, exact: bool) -> None:
        """Raise before compiling if a value of this regime cannot run this
        configuration (capability rules live in :func:`collapse_jax.compat.check`)."""

    def generation_zero(self, family: AbstractFamily, ctx: Context):
        """The fit at generation 0 (the same for every regime but graphs'; see
        :func:`generation_zero`)."""
        return generation_zero(family, ctx)

    def init(self, family: AbstractFamily, ctx: Context, params0) -> Any:
        return ()

    def for_run(self, family: AbstractFamily, n: int, generations: int) -> AbstractRegime:
        """The regime as one run uses it (called by ``simulate`` after validation,
        before compiling): regimes whose static sizes depend on n fix them here."""
        return self

    def fit_size(self, family: AbstractFamily, n: int, generations: int) -> int:
        """The largest number of points (buffer slots included) one fit of this
        regime receives: sizes fits that store their data (KDE) and the memory plan."""
        return n

    @abc.abstractmethod
    def step(self, family: AbstractFamily, ctx: Context, state, prev, g) -> tuple[Any, Any]: ...

    def describe(self) -> dict:
        out = {"regime": type(self).__name__}
        for k, v in vars(self).items():
            out[k] = v if isinstance(v, (str, int, float, bool)) else np.asarray(v).tolist()
        return out


def _fit_synthetic(family, ctx, prev, g, m, s=STREAM_SYNTH, frame="prev"):
    """Fit m synthetic points from ``prev`` (exact path: their exact statistics)."""
    frame = prev if frame == "prev" else frame
    stream = ctx.stream(g, s)
    if ctx.exact:
        return family.fit_stats(ctx.draw_stats(family, stream, prev, m, frame), frame)
    data = ctx.draw(family, stream, prev, m, frame)
    return family.fit(ctx.stream(g, STREAM_SYNTH_EXTRA), data, None, frame)


class Replace(AbstractRegime):
    """Generation g trains on n synthetic points from model g-1 only
    (Shumailov et al. 2024; Kazdan et al. 2024 "replace")."""

    def step(self, family, ctx, state, prev, g):
        return state, _fit_synthetic(family, ctx, prev, g, ctx.n)


class FreshMix(AbstractRegime):
    """r = floor(real_fraction * n + 1/2) fresh real points plus n - r synthetic
    points from model g-1, pooled into one fit (Bertrand et al. 2024; Alemohammad
    et al. 2024 "fresh data loop"). ``real_fraction`` is traced."""

    real_fraction: jax.Array
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"real_fraction": (0.0, 1.0)}

    def __init__(self, real_fraction=0.5):
        self.real_fraction = _check_unit("real_fraction", "FreshMix", real_fraction)

    def step(self, family, ctx, state, prev, g):
        dtype = truth_dtype(family)
        r = _slots(self.real_fraction, ctx.n, dtype)
        real_s, synth_s = ctx.stream(g, STREAM_REAL), ctx.stream(g, STREAM_SYNTH)
        if ctx.exact:
            return state, _fit_pooled_stats(family, ctx, prev, g, r)
        real = family.sample_real(real_s, ctx.n, prev, prev)
        synth = ctx.draw(family, synth_s, prev, ctx.n, prev)
        data = tree_where(jnp.arange(ctx.n) < r, real, synth)
        return state, family.fit(ctx.stream(g, STREAM_SYNTH_EXTRA), data, None, prev)


def _fit_pooled_stats(family, ctx, prev, g, r):
    """Exact path: the fit to r real points and n - r synthetic points from ``prev``
    (r may be traced)."""
    a = family.sample_stats(ctx.stream(g, STREAM_REAL), family.chain_truth(prev), r, prev)
    b = ctx.draw_stats(family, ctx.stream(g, STREAM_SYNTH), prev, ctx.n - r, prev)
    return family.fit_stats(family.merge_stats(a, b), prev)


class RetainOriginal(AbstractRegime):
    """The same first r = floor(fraction * n + 1/2) points of the original sample
    plus n - r synthetic points from model g-1 (Alemohammad et al. 2024
    "synthetic augmentation loop"; Shumailov et al.'s retained-data variant).
    ``fraction`` is traced. The original sample is regenerated from its stream
    rather than stored (same points, no memory)."""

    needs_points: ClassVar[bool] = True
    fraction: jax.Array
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"fraction": (0.0, 1.0)}

    def __init__(self, fraction=0.1):
        self.fraction = _check_unit("fraction", "RetainOriginal", fraction)

    def step(self, family, ctx, state, prev, g):
        dtype = truth_dtype(family)
        r = _slots(self.fraction, ctx.n, dtype)
        original = original_sample(family, ctx, prev, prev)
        synth = ctx.draw(family, ctx.stream(g, STREAM_SYNTH), prev, ctx.n, prev)
        data = tree_where(jnp.arange(ctx.n) < r, original, synth)
        return state, family.fit(ctx.stream(g, STREAM_SYNTH_EXTRA), data, None, prev)


class Weighted(AbstractRegime):
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
    combine: str | None = eqx.field(static=True)

    def __init__(self, real_weight=0.5, ratio: float = 1.0, combine: str | None = None):
        self.real_weight = _check_unit("real_weight", "Weighted", real_weight)
        k = check_positive("Weighted", "ratio", ratio)  # k = n_real / n_synth
        if combine not in (None, "estimates", "samples"):
            raise ValueError(f"Weighted: combine must be None, 'estimates' or 'samples', got {combine!r}")
        self.ratio = k
        self.combine = combine

    def synthetic_count(self, n: int) -> int:
        return int(math.floor(n / self.ratio + 0.5))

    def fit_size(self, family, n, generations):
        m = self.synthetic_count(n)
        return n + m if self.mode(family) == "samples" else max(n, m)

    def mode(self, family: AbstractFamily) -> str:
        return self.combine or family.default_combine

    def step(self, family, ctx, state, prev, g):
        dtype = truth_dtype(family)
        n, m = ctx.n, self.synthetic_count(ctx.n)
        w = self.real_weight.astype(dtype)
        if self.mode(family) == "estimates":
            truth = family.chain_truth(prev)
            real_s = ctx.stream(g, STREAM_REAL)
            if ctx.exact:
                p_real = family.fit_stats(family.sample_stats(real_s, truth, n, truth), truth)
            else:
                real = family.sample_real(real_s, n, prev, truth)
                p_real = family.fit(ctx.stream(g, STREAM_SYNTH_EXTRA), real, None, truth)
            p_synth = _fit_synthetic(family, ctx, prev, g, m)
            return state, family.combine(p_real, p_synth, w)
        real = family.sample_real(ctx.stream(g, STREAM_REAL), n, prev, prev)
        synth = ctx.draw(family, ctx.stream(g, STREAM_SYNTH), prev, m, prev)
        weights = jnp.concatenate([jnp.full((n,), w / n, dtype), jnp.full((m,), (1 - w) / m, dtype)])
        data = tree_concat(real, synth)
        return state, family.fit(ctx.stream(g, STREAM_SYNTH_EXTRA), data, weights, prev)


class Accumulate(AbstractRegime):
    """The original sample plus every synthetic batch so far: generation g trains
    on n * (g + 1) points, batch j drawn from model j - 1 (Gerstgrasser et al.
    2024; Kazdan et al. 2024). Families with sufficient statistics (the Gaussian)
    pool them: exact, constant memory, any number of generations. Others store
    every point (memory grows with ``generations``): (generations + 1) n points per
    chain, each fitted every generation, so a run costs O(generations^2 n) per chain
    (README, "Memory of the data-storing regimes")."""

    def fit_size(self, family, n, generations):
        return n if family.has_stats else (generations + 1) * n

    def init(self, family, ctx, params0):
        frame = family.pooled_frame(params0)
        if family.has_stats:
            if ctx.exact:
                return family.sample_stats(ctx.stream(0, STREAM_REAL), family.chain_truth(params0), ctx.n, frame)
            data = original_sample(family, ctx, frame, params0)
            return family.data_stats(data, None)
        return _store_init(family, ctx, params0)

    def step(self, family, ctx, state, prev, g):
        frame = family.pooled_frame(prev)
        if family.has_stats:
            stream = ctx.stream(g, STREAM_SYNTH)
            if ctx.exact:
                batch = ctx.draw_stats(family, stream, prev, ctx.n, frame)
            else:
                data = ctx.draw(family, stream, prev, ctx.n, frame)
                batch = family.data_stats(data, None)
            pooled = family.merge_stats(state, batch)
            return pooled, family.fit_stats(pooled, frame)
        buffer, weights = _store_add(family, ctx, state, prev, g)
        return (buffer, weights), family.fit(ctx.stream(g, STREAM_SYNTH_EXTRA), buffer, weights, frame)


class AccumulateSubsample(AbstractRegime):
    """A uniform n-subset, without replacement, of everything ever generated
    (original sample + every synthetic batch, batch g included) (Kazdan et al.
    2024, "accumulate-subsample"). In general this cannot be reduced to sufficient
    statistics: every point is stored, (generations + 1) * n per chain.

    ``SubsampleStats`` families know the exact law of the statistics of a uniform
    n-subset of the points behind pooled statistics (``subsample_stats(key, stats,
    n)``; Categorical: a multivariate hypergeometric draw from the pooled counts).
    They pool statistics as ``Accumulate`` does (exact, constant memory, and
    ``sampler="exact"`` is allowed); the others use the point buffer."""

    needs_points: ClassVar[bool] = True

    def init(self, family, ctx, params0):
        if _subsamples_stats(family):
            return Accumulate().init(family, ctx, params0)
        return _store_init(family, ctx, params0)

    def step(self, family, ctx, state, prev, g):
        if _subsamples_stats(family):
            pooled, _ = Accumulate().step(family, ctx, state, prev, g)  # the pooled fit is dead code
            subset = family.subsample_stats(ctx.stream(g, STREAM_SUBSAMPLE), pooled, ctx.n)
            return pooled, family.fit_stats(subset, family.pooled_frame(prev))
        buffer, weights = _store_add(family, ctx, state, prev, g)
        u = ctx.stream(g, STREAM_SUBSAMPLE).uniform((weights.shape[0],), truth_dtype(family))
        score = jnp.where(weights > 0, u, 2.0)
        _, idx = jax.lax.top_k(-score, ctx.n)
        data = tree_take(buffer, idx)
        return (buffer, weights), family.fit(ctx.stream(g, STREAM_SYNTH_EXTRA), data, None, family.pooled_frame(prev))


def _subsamples_stats(family) -> bool:
    """Whether ``family`` is a ``SubsampleStats`` family (see AccumulateSubsample)."""
    return isinstance(family, SubsampleStats)


def _store_init(family, ctx, params0):
    data = original_sample(family, ctx, family.pooled_frame(params0), params0)
    size = (ctx.generations + 1) * ctx.n
    buffer = jax.tree.map(lambda x: jnp.zeros((size,) + x.shape[1:], x.dtype), data)
    buffer = tree_update(buffer, data, 0)
    weights = (jnp.arange(size) < ctx.n).astype(truth_dtype(family))
    return buffer, weights


def _store_add(family, ctx, state, prev, g):
    buffer, weights = state
    batch = ctx.draw(family, ctx.stream(g, STREAM_SYNTH), prev, ctx.n, family.pooled_frame(prev))
    start = jnp.asarray(g, jnp.int32) * ctx.n
    buffer = tree_update(buffer, batch, start)
    weights = (jnp.arange(weights.shape[0]) < start + ctx.n).astype(weights.dtype)
    return buffer, weights


class Schedule(AbstractRegime):
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
        truth = family.truth()
        m = self._size(0)
        if ctx.exact:
            return family.fit_stats(family.sample_stats(ctx.stream(0, STREAM_REAL), truth, m, truth), truth)
        data = original_sample(family, ctx, truth)
        weights = (jnp.arange(ctx.n) < m).astype(truth_dtype(family))
        return family.fit(ctx.stream(0, STREAM_SYNTH), data, weights, truth)

    def step(self, family, ctx, state, prev, g):
        m = self._size(g)
        stream = ctx.stream(g, STREAM_SYNTH)
        if ctx.exact:
            return state, family.fit_stats(ctx.draw_stats(family, stream, prev, m, prev), prev)
        data = ctx.draw(family, stream, prev, ctx.n, prev)
        weights = (jnp.arange(ctx.n) < m).astype(truth_dtype(family))
        return state, family.fit(ctx.stream(g, STREAM_SYNTH_EXTRA), data, weights, prev)


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
    binomial law. All three rates are traced.
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
        self.pool_real_fraction = _check_unit("pool_real_fraction", "Provenance", pool_real_fraction)
        self.false_real = _check_unit("false_real", "Provenance", false_real)
        self.false_synthetic = _check_unit("false_synthetic", "Provenance", false_synthetic)
        if oversample is not None and (
            isinstance(oversample, bool) or not isinstance(oversample, (int, np.integer)) or oversample < 1
        ):
            raise ValueError(f"Provenance: oversample must be an int >= 1, got {oversample!r}")
        self.oversample = None if oversample is None else int(oversample)
        if self.labelled_real_rate() <= 0:
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
        real_s, synth_s = ctx.stream(g, STREAM_REAL), ctx.stream(g, STREAM_SYNTH)
        decide = ctx.stream(g, STREAM_DECIDE)
        if ctx.exact:
            rho = self.effective_real_fraction(dtype)
            r = jax.random.binomial(decide.key(), jnp.asarray(n, dtype), rho).astype(jnp.int32)
            return state, _fit_pooled_stats(family, ctx, prev, g, r)
        size = self.pool_size(n)
        real = family.sample_real(real_s, size, prev, prev)
        synth = ctx.draw(family, synth_s, prev, size, prev)
        u = decide.uniform((size, 2), dtype)
        is_real = u[:, 0] < self.pool_real_fraction.astype(dtype)
        labelled_real = jnp.where(
            is_real, u[:, 1] >= self.false_synthetic.astype(dtype), u[:, 1] < self.false_real.astype(dtype)
        )
        pool = tree_where(is_real, real, synth)
        data = tree_take(pool, first_passing(labelled_real, n))
        return state, family.fit(ctx.stream(g, STREAM_SYNTH_EXTRA), data, None, prev)


REGIMES = {
    "replace": Replace,
    "accumulate": Accumulate,
    "accumulate_subsample": AccumulateSubsample,
    "freshmix": FreshMix,
    "weighted": Weighted,
    "retain_original": RetainOriginal,
}
