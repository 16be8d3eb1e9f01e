"""The regime protocol: a regime *describes* generation g's training set
(:class:`TrainingSet`), one function (:func:`assemble`) builds it.

``assemble`` (with :func:`fit_original`, generation 0's fit) is the only place that
branches on the exact path, picks the random streams and applies the run's synthesis
to model draws; a planned regime is a few lines of ``plan`` (docs/EXTENDING.md). A
regime that simulates a mechanism of its own (``Provenance``'s detector) writes
``step`` instead.

Streams (``collapse_jax._rng``): fresh real points are stream REAL of generation g,
the original sample stream REAL of generation 0, model draws stream SYNTH, the fit's
own key stream SYNTH_EXTRA (generation 0: SYNTH), subsets stream SUBSAMPLE. They
are the streams the regimes used before the protocol existed, so seeded results keep
their values.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Literal, TypeGuard, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _declare, _rng
from .._describe import constructor_args, field_arg
from .._rng import STREAM_REAL, STREAM_SUBSAMPLE, STREAM_SYNTH, STREAM_SYNTH_EXTRA, Stream
from .._validate import traced_scalar
from ..families._base import tree_concat, tree_take, tree_update, tree_where
from ..families._ondata import OnData
from ..families._protocol import (
    AbstractFamily,
    ExactSampler,
    MixedSampler,
    SubsampleStats,
    SufficientStats,
    WarmStart,
)
from ..synthesis import Synthesis

PLAIN = Synthesis()  # plain draws from the fit
SOURCES = ("real", "original", "model")


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
    # a node of an interaction graph (regimes.graph): its index (traced), the number of
    # nodes (static; 0 outside graphs) and its own sample size n_i (None: n)
    node: Any = None
    nodes: int = eqx.field(static=True, default=0)
    own_n: Any = None

    def stream(self, g, s: int, source: int | jax.Array = 0) -> Stream:
        """Stream ``s`` of generation ``g``. On a graph node, each source has its own
        key: 0 the node's real data, fits and metrics, 1 + j node j's model (so every
        node draws its own sample from every source); the chain's key stays the
        context (a random truth, a fixed design) shared by all nodes."""
        g = jnp.asarray(g, jnp.int32)
        if not self.nodes:
            return Stream(self.chain_key, g, s, 0, self.safe, None, self.prng)
        key = _rng.node_key(self.chain_key, self.node * (self.nodes + 1) + source, self.prng)
        return Stream(key, g, s, 0, self.safe, self.chain_key, self.prng)

    def at_node(self, i, nodes: int, own_n=None) -> Context:
        """This chain's context seen from graph node ``i`` (traced) of ``nodes``."""
        return Context(
            self.chain_key, self.n, self.generations, self.exact, self.safe, self.prng, self.synthesis, i, nodes, own_n
        )

    def draw(self, family: AbstractFamily, stream: Stream, params, m: int, frame=None):
        """``m`` synthetic points from the fit ``params``: every regime's synthetic draw."""
        return (self.synthesis or PLAIN).draw(family, stream, params, m, frame)

    def draw_stats(self, family: AbstractFamily, stream: Stream, params, m, frame=None):
        """The exact path's :meth:`draw`: statistics of ``m`` synthetic points."""
        return (self.synthesis or PLAIN).draw_stats(family, stream, params, m, frame)


def _static(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_zero(x) -> bool:
    return _static(x) and int(x) == 0


class TrainingSet(eqx.Module):
    """Generation g's training set, described (counts may be traced; a Python int
    is static and a static 0 draws nothing).

    Sources: ``real`` fresh points from the chain's truth; ``original`` points of the
    chain's original sample (generation 0's data); ``model`` synthetic points from the
    previous fit through the run's synthesis (``None``: every slot the other sources
    leave), or, on an interaction graph, a vector of counts from each node's model
    (``assemble``'s ``models``). ``weights``: the total weight of each source
    ``(real, original, model)``, spread evenly over its points (``None``: unit weight
    per point). ``filled``: the counts are known to fill every slot (no weights needed).

    Layout: when every count is a Python int, each source is a block of exactly its
    count; otherwise the sources share ``size`` slots (default n): real in the first
    ``real`` slots, then original, then model, and the unused slots carry weight 0.
    So a traced fraction never changes a shape (sweeps never recompile).

    ``combine="estimates"``: fit the real and model sources apart and combine the
    fits (``family.combine``, weight ``weights[0]`` on the real fit). ``pool``:
    ``"merge"`` adds the set to everything earlier (sufficient statistics where the
    family has them, a buffer of points otherwise); ``"subsample"`` fits a uniform
    subset of n points of everything so far.
    """

    real: Any = 0
    original: Any = 0
    model: Any = None
    weights: tuple | None = None
    size: int | None = eqx.field(static=True, default=None)
    pool: Literal["merge", "subsample"] | None = eqx.field(static=True, default=None)
    combine: Literal["pool", "estimates"] = eqx.field(static=True, default="pool")
    filled: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if self.pool not in (None, "merge", "subsample"):
            raise ValueError(f"TrainingSet: pool must be None, 'merge' or 'subsample', got {self.pool!r}")
        if self.combine not in ("pool", "estimates"):
            raise ValueError(f"TrainingSet: combine must be 'pool' or 'estimates', got {self.combine!r}")

    def counts(self, n: int) -> tuple:
        """(real, original, model) counts, ``model=None`` resolved against the slots."""
        size = self.slots(n)
        model = size - self.real - self.original if self.model is None else self.model
        return self.real, self.original, model

    def blocks(self) -> bool:
        """Whether every count is static (each source a block of its own)."""
        return self.model is not None and all(_static(c) for c in (self.real, self.original, self.model))

    def sources(self) -> bool:
        """Whether the model points come from several models (a graph node's set)."""
        return self.model is not None and not _static(self.model) and jnp.ndim(self.model) == 1

    def slots(self, n: int) -> int:
        if self.blocks():
            return int(self.real) + int(self.original) + int(self.model)
        return n if self.size is None else self.size

    def uses(self, source: str) -> bool:
        return not _is_zero(getattr(self, source))

    def model_only(self, n: int) -> bool:
        """Only model points, all n slots used (what a fixed design's exact path supports)."""
        full = self.model is None or (_static(self.model) and int(self.model) == n)
        return not self.uses("real") and not self.uses("original") and full and self.combine == "pool"


def truth_dtype(family: AbstractFamily):
    leaves = [x for x in jax.tree.leaves(family.blank_fit()) if jnp.issubdtype(x.dtype, jnp.floating)]
    return leaves[0].dtype if leaves else jnp.float32


def original_sample(family: AbstractFamily, ctx: Context, frame):
    """The chain's original n real points (stream REAL of generation 0)."""
    return family.sample_real(ctx.stream(0, STREAM_REAL), ctx.n, frame)


def fit_points(family: AbstractFamily, key, data, weights, frame, warm=None):
    """``family.fit``, or for a :class:`WarmStart` family its fit started from
    ``warm`` (the previous generation's fit; ``None``: a cold fit)."""
    if warm is not None and isinstance(family, WarmStart):
        return family.fit_warm(key, data, weights, warm)
    return family.fit(key, data, weights, frame)


def fit_original(family: AbstractFamily, ctx: Context, m=None):
    """Generation 0: the fit to the chain's original sample (its first ``m`` points,
    traced; ``None``: the chain's own n), or the family's given
    :meth:`~collapse_jax.families._protocol.AbstractFamily.initial_model`."""
    start = family.initial_model()
    if start is not None:
        return start
    m = ctx.own_n if m is None else m
    truth = family.truth()
    if ctx.exact:  # the exact path runs only on an ExactSampler
        exact = cast(ExactSampler, family)
        stats = exact.sample_real_stats(ctx.stream(0, STREAM_REAL), ctx.n if m is None else m, truth)
        return exact.fit_stats(stats, truth)
    data = original_sample(family, ctx, truth)
    weights = None if m is None else (jnp.arange(ctx.n) < m).astype(truth_dtype(family))
    return family.fit(ctx.stream(0, STREAM_SYNTH), data, weights, truth)


def generation_zero(family: AbstractFamily, ctx: Context):
    """Generation 0: the fit to the original sample (identical for every regime)."""
    return fit_original(family, ctx)


# --------------------------------------------------------------------------- assemble
def _points(family, ctx, plan: TrainingSet, prev, g, frame):
    """The points of ``plan`` and their weights (``None``: unit weights)."""
    n = ctx.n
    counts = plan.counts(n)
    dtype = truth_dtype(family)
    draws = {}
    if plan.blocks():
        m = dict(zip(SOURCES, (int(c) for c in counts)))
    else:
        m = dict.fromkeys(SOURCES, plan.slots(n))
    if plan.uses("real"):
        draws["real"] = family.sample_real(ctx.stream(g, STREAM_REAL), m["real"], frame)
    if plan.uses("original"):
        draws["original"] = original_sample(family, ctx, frame)
    if plan.uses("model"):
        draws["model"] = ctx.draw(family, ctx.stream(g, STREAM_SYNTH), prev, m["model"], frame)
    used = [s for s in SOURCES if s in draws]
    total = plan.weights
    if plan.blocks():
        data = draws[used[0]]
        for s in used[1:]:
            data = tree_concat(data, draws[s])
        if total is None:
            return data, None
        parts = [jnp.full((m[s],), total[SOURCES.index(s)] / m[s], dtype) for s in used]
        return data, jnp.concatenate(parts) if len(parts) > 1 else parts[0]
    # shared slots: source s holds slots [start_s, start_s + count_s)
    slot = jnp.arange(plan.slots(n))
    bounds, start = {}, 0
    for s, c in zip(SOURCES, counts):
        bounds[s] = (start, start + c)
        start = start + c
    data = draws[used[-1]]
    for s in reversed(used[:-1]):  # an earlier source overwrites the slots below its end
        data = tree_where(slot < bounds[s][1], draws[s], data)
    if total is None and plan.model is None:
        return data, None
    weights = jnp.zeros(slot.shape, dtype)
    for s, c in zip(SOURCES, counts):
        if s in draws:
            lo, hi = bounds[s]
            w = 1.0 if total is None else total[SOURCES.index(s)] / c
            weights = jnp.where((slot >= lo) & (slot < hi), w, weights)
    return data, weights.astype(dtype)


def _stats(family, ctx, plan: TrainingSet, prev, g, frame):
    """Exact path: the statistics of ``plan``'s points, drawn from their exact law."""
    real, _, model = plan.counts(ctx.n)
    parts = []
    if plan.uses("real"):
        parts.append(family.sample_real_stats(ctx.stream(g, STREAM_REAL), real, frame))
    if plan.uses("model"):
        parts.append(ctx.draw_stats(family, ctx.stream(g, STREAM_SYNTH), prev, model, frame))
    out = parts[0]
    for p in parts[1:]:
        out = family.merge_stats(out, p)
    return out


def draws_mixed(family: AbstractFamily, synthesis: Synthesis) -> bool:
    """Whether a set with points from several models is one mixed draw (a
    MixedSampler family with plain synthesis: each point from its own source's model).
    Not for a family whose truth is a data set: its real points are the data's rows
    (``sample_real``), not draws from ``truth()``."""
    on_data = isinstance(family, OnData) and family.data is not None
    return isinstance(family, MixedSampler) and synthesis.identity and not on_data


def _points_sources(family, ctx, plan: TrainingSet, prev, g, frame, models):
    """A graph node's points: ``plan.real`` real ones, then ``plan.model[j]`` from node
    j's model (``models`` stacked on a leading node axis), in n slots."""
    n, k = ctx.n, plan.model.shape[0]
    synthesis = ctx.synthesis or PLAIN
    cnt = jnp.concatenate([jnp.reshape(plan.real, (1,)), plan.model])
    slot = jnp.arange(n)
    src = jnp.sum(slot[:, None] >= jnp.cumsum(cnt)[None, :], axis=1)  # 0 real, 1 + j, K + 1 empty
    w = None if plan.filled else (src <= k).astype(truth_dtype(family))
    if draws_mixed(family, synthesis):
        # one draw of n points, each from its own source's model (the truth at index 0)
        stacked = jax.tree.map(lambda t, p: jnp.concatenate([t[None], p]), family.truth(), models)
        return family.sample_mixed(ctx.stream(g, STREAM_SYNTH), stacked, jnp.minimum(src, k), n, frame), w
    # generic: n points from every source (and n real ones), each slot taking its source's
    real = family.sample_real(ctx.stream(g, STREAM_REAL), n, frame)
    draw = lambda j, pj: synthesis.draw(family, ctx.stream(g, STREAM_SYNTH, 1 + j), pj, n, frame)  # noqa: E731
    synth = jax.vmap(draw)(jnp.arange(k), models)
    stacked = jax.tree.map(lambda r, x: jnp.concatenate([r[None], x]), real, synth)  # (K + 1, n, ...)
    return jax.tree.map(lambda x: x[jnp.minimum(src, k), slot], stacked), w


def _stats_sources(family, ctx, plan: TrainingSet, prev, g, frame, models):
    """Exact path of :func:`_points_sources`: the statistics of the same set."""
    k = plan.model.shape[0]
    synthesis = ctx.synthesis or PLAIN
    real = family.sample_real_stats(ctx.stream(g, STREAM_REAL), plan.real, frame)
    draw = lambda j, pj, m: synthesis.draw_stats(family, ctx.stream(g, STREAM_SYNTH, 1 + j), pj, m, frame)  # noqa: E731
    synth = jax.vmap(draw)(jnp.arange(k), models, plan.model)
    out = real
    for j in range(k):
        out = family.merge_stats(out, tree_take(synth, j))
    return out


def _batch(family, ctx, plan, prev, g, frame, models):
    """``plan``'s set: statistics on the exact path, else (points, weights)."""
    if plan.sources():
        if ctx.exact:
            return _stats_sources(family, ctx, plan, prev, g, frame, models)
        return _points_sources(family, ctx, plan, prev, g, frame, models)
    if ctx.exact:
        return _stats(family, ctx, plan, prev, g, frame)
    return _points(family, ctx, plan, prev, g, frame)


def _fit(family, ctx, plan, prev, g, frame, models=None, warm=None):
    """The fit to ``plan``'s training set (no pooling)."""
    batch = _batch(family, ctx, plan, prev, g, frame, models)
    if ctx.exact:
        return family.fit_stats(batch, frame)
    data, weights = batch
    return fit_points(family, ctx.stream(g, STREAM_SYNTH_EXTRA), data, weights, frame, warm)


def _estimates(family, ctx, plan, prev, g):
    """combine="estimates": the real and the model source fitted apart, then combined."""
    real, _, model = plan.counts(ctx.n)
    p_real = _fit(family, ctx, TrainingSet(real=real, model=0), prev, g, family.truth())
    p_model = _fit(family, ctx, TrainingSet(model=model), prev, g, prev, warm=prev)
    return family.combine(p_real, p_model, plan.weights[0])


def pools_stats(family: AbstractFamily, pool: Literal["merge", "subsample"] | None) -> TypeGuard[SufficientStats]:
    """Whether a pooled regime keeps statistics (constant memory) rather than points."""
    if pool == "subsample":
        return isinstance(family, SubsampleStats)
    return isinstance(family, SufficientStats)


def init_state(family: AbstractFamily, ctx: Context, plan: TrainingSet, params0):
    """The state a planned regime carries: for pooled plans, the original sample's
    statistics or a buffer of every point to come."""
    if plan.pool is None:
        return ()
    if pools_stats(family, plan.pool):  # pooled data are in absolute coordinates (no frame)
        m = ctx.n if ctx.own_n is None else ctx.own_n
        if ctx.exact:  # the exact path runs only on an ExactSampler
            return cast(ExactSampler, family).sample_real_stats(ctx.stream(0, STREAM_REAL), m)
        weights = None if ctx.own_n is None else (jnp.arange(ctx.n) < m).astype(truth_dtype(family))
        return family.data_stats(original_sample(family, ctx, None), weights)
    data = original_sample(family, ctx, None)
    size = (ctx.generations + 1) * ctx.n
    buffer = jax.tree.map(lambda x: jnp.zeros((size,) + x.shape[1:], x.dtype), data)
    buffer = tree_update(buffer, data, 0)
    return buffer, (jnp.arange(size) < ctx.n).astype(truth_dtype(family))


def assemble(family: AbstractFamily, ctx: Context, plan: TrainingSet, state, prev, g, models=None) -> tuple[Any, Any]:
    """Build generation g's training set described by ``plan`` and fit it: returns
    the new regime state and the fit. ``models``: every graph node's previous fit
    (stacked), for a plan whose model counts are per node."""
    if plan.combine == "estimates":
        return state, _estimates(family, ctx, plan, prev, g)
    if plan.pool is None:
        return state, _fit(family, ctx, plan, prev, g, prev, models, warm=prev)
    frame = None  # pooled data are in absolute coordinates
    if pools_stats(family, plan.pool):
        batch = _batch(family, ctx, plan, prev, g, frame, models)
        if not ctx.exact:
            batch = family.data_stats(*batch)
        pooled = family.merge_stats(state, batch)
        if plan.pool == "subsample":
            subset = cast(SubsampleStats, family).subsample_stats(ctx.stream(g, STREAM_SUBSAMPLE), pooled, ctx.n)
            return pooled, family.fit_stats(subset, frame)
        return pooled, family.fit_stats(pooled, frame)
    if plan.sources() or (plan.model is not None and not (plan.blocks() and plan.slots(ctx.n) == ctx.n)):
        raise ValueError(f"TrainingSet: a pooled plan that stores points fills exactly n={ctx.n} slots, got {plan!r}")
    buffer, weights = state
    batch, _ = _points(family, ctx, plan, prev, g, frame)
    start = jnp.asarray(g, jnp.int32) * ctx.n
    buffer = tree_update(buffer, batch, start)
    weights = (jnp.arange(weights.shape[0]) < start + ctx.n).astype(weights.dtype)
    if plan.pool == "subsample":
        u = ctx.stream(g, STREAM_SUBSAMPLE).uniform((weights.shape[0],), truth_dtype(family))
        _, idx = jax.lax.top_k(-jnp.where(weights > 0, u, 2.0), ctx.n)
        subset = tree_take(buffer, idx)
        return (buffer, weights), fit_points(family, ctx.stream(g, STREAM_SYNTH_EXTRA), subset, None, None, prev)
    return (buffer, weights), fit_points(family, ctx.stream(g, STREAM_SYNTH_EXTRA), buffer, weights, None, prev)


# --------------------------------------------------------------------------- regimes
class AbstractRegime(eqx.Module):
    """A data regime. ``init`` builds the per-chain state after generation 0;
    ``step`` builds generation g's training set from the previous fit ``prev`` and
    returns the new state and fit. Most regimes only describe the set
    (:class:`AbstractPlannedRegime`); one that writes ``step`` draws synthetic points
    with ``ctx.draw`` (the run's synthesis) and real ones with ``family.sample_real``.
    Compatibility rules: :func:`collapse_jax.engine.compat.check`."""

    needs_points: ClassVar[bool] = False  # cannot run on the exact path (regimes that write step)
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {}  # inclusive bounds of sweepable fields

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _declare.freeze(cls, ("traced_bounds",))  # checked and read-only from class creation on

    def validate(self, family: AbstractFamily, n: int, generations: int, exact: bool) -> None:
        """Raise before compiling if a value of this regime cannot run this
        configuration (capability rules live in :func:`collapse_jax.engine.compat.check`)."""

    def generation_zero(self, family: AbstractFamily, ctx: Context):
        """The fit at generation 0 (the same for every regime but Schedule's)."""
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

    # ---- what the kernel observes of a chain's fit. A regime over a node axis (an
    # interaction graph: params stacked per node) overrides these; the defaults are the
    # family's own observations plus the synthesis's metrics.
    def observe_names(self, family: AbstractFamily, synthesis: Synthesis) -> tuple[tuple[str, ...], ...]:
        """(metric, diagnostic, event) names, found by tracing (no compute)."""
        blank = family.blank_fit
        diag = tuple(jax.eval_shape(lambda: family.diagnostics(blank())))
        ev = tuple(jax.eval_shape(lambda: family.events(blank())))
        return family.metric_names() + synthesis.metric_names(family), diag, ev

    def observe_metrics(self, family: AbstractFamily, synthesis: Synthesis, stream: Stream, params) -> dict:
        return {**family.metrics(stream, params), **synthesis.metrics(family, stream, params)}

    def observe_diagnostics(self, family: AbstractFamily, params) -> dict:
        return family.diagnostics(params)

    def observe_events(self, family: AbstractFamily, params) -> dict:
        return family.events(params)

    def observe_finite(self, family: AbstractFamily, params) -> jax.Array:
        return family.is_finite(params)

    def observed_dims(self, family: AbstractFamily, synthesis: Synthesis) -> tuple[dict, dict, dict]:
        """Extra xarray dims of the (metrics, diagnostics, events) beyond chain and generation."""
        return dict(family.metric_dims), dict(family.diagnostic_dims), dict(family.event_dims)

    def working_factor(self, family: AbstractFamily, synthesis: Synthesis) -> int:
        """How many of the family's point sets one generation of one chain draws at once
        (the memory plan's working set): 1 but for regimes over a node axis."""
        return 1

    def describe(self) -> dict:
        """``{"regime": class name, every constructor argument}`` in JSON types:
        ``type(self)(**rest)`` rebuilds the regime."""
        return constructor_args(self, "regime", self.config_arg)

    def config_arg(self, name: str) -> Any:
        """The constructor argument ``name`` as this regime holds it (default: the
        field of the same name)."""
        return field_arg(self, name)


_declare.freeze(AbstractRegime, ("traced_bounds",))


class AbstractPlannedRegime(AbstractRegime):
    """A regime that describes each generation's training set (:meth:`plan`) and
    leaves building it to :func:`assemble`: the exact path, the streams, the
    synthesis, pooling and the memory plan follow from the plan."""

    @abc.abstractmethod
    def plan(self, family: AbstractFamily, g, n: int) -> TrainingSet:
        """Generation g's (>= 1) training set; ``g`` is traced."""

    def init(self, family, ctx, params0):
        return init_state(family, ctx, self.plan(family, 1, ctx.n), params0)

    def step(self, family, ctx, state, prev, g):
        return assemble(family, ctx, self.plan(family, g, ctx.n), state, prev, g)

    def needs_points_of(self, family: AbstractFamily, n: int) -> bool:
        """Whether the plan needs the data points (so cannot run on the exact path)."""
        p = self.plan(family, 1, n)
        if p.uses("original") or (p.weights is not None and p.combine == "pool"):
            return True
        return p.pool is not None and not pools_stats(family, p.pool)

    def stores_points(self, family: AbstractFamily) -> bool:
        """Whether the regime keeps every generation's points (memory grows with G)."""
        p = self.plan(family, 1, 1)
        return p.pool is not None and not pools_stats(family, p.pool)

    def fit_size(self, family, n, generations):
        p = self.plan(family, 1, n)
        if p.pool is not None:  # a merged buffer is fitted whole; a subsample is n of its points
            return (generations + 1) * n if p.pool == "merge" and self.stores_points(family) else n
        if p.combine == "estimates":
            real, _, model = p.counts(n)
            return max(int(real), int(model))
        return p.slots(n)


def unit_fraction(cls: str, name: str, value) -> jax.Array:
    """A traced fraction in [0, 1] (checked on concrete values; a tracer passes as it is)."""
    return traced_scalar(cls, name, value, 0.0, 1.0)


def slots(fraction, n: int, dtype) -> jax.Array:
    """r = floor(fraction * n + 1/2), traced."""
    return jnp.floor(jnp.asarray(fraction, dtype) * n + 0.5).astype(jnp.int32)
