"""The whole family contract on one page.

A family is an :class:`AbstractFamily` (five required methods) plus the capability
classes it inherits. The engine asks what a family can do with ``isinstance`` in one
place, :func:`collapse_jax.engine.compat.check`; nothing probes for methods by name.

========================  =========================================================
capability                what it adds, and what needs it
========================  =========================================================
:class:`SufficientStats`  ``data_stats``, ``merge_stats``, ``fit_stats``: Accumulate
                          pools statistics (constant memory) instead of points
:class:`ExactSampler`     ``sample_stats`` and the ``sampler`` field: ``sampler="exact"``
                          draws a generation's statistics from their exact law
:class:`SubsampleStats`   ``subsample_stats``: AccumulateSubsample on statistics
:class:`Combinable`       ``combine``: ``Weighted(combine="estimates")``
:class:`Temperable`       ``temper``: synthesis ``temperature``
:class:`Decodable`        ``top_k``, ``min_p``: the decoding rules of synthesis
                          ``top_k`` and ``min_p`` (a discrete model's support cut)
:class:`Scorable`         ``score`` (and optionally ``score_quantile``): synthesis
                          ``truncate`` and the verifier
:class:`LabelVerifiable`  ``agrees``: a label verifier for classifiers (synthesis
                          ``verifier`` on a family that is not Scorable)
:class:`DirectTruncation` ``sample_truncated``: truncated draws without candidates
:class:`Rewardable`       ``reward``, ``mean_reward``: synthesis curation (``curate``)
:class:`Tiltable`         ``tilt``: ``curate="tilt"``, the exponentially tilted model
:class:`ChoiceLaw`        ``choice_law``: the exact law of a curated point, so curation
                          keeps ``sampler="exact"``
:class:`Correctable`      ``correct``: synthesis ``correct`` (self-correction)
:class:`Located`          ``location``: graphs report ``homogenisation``
:class:`MixedSampler`     ``sample_mixed``: a graph node draws from all sources at once
:class:`Designed`         ``design``: regression inputs, ``"fixed"`` rows per chain or
                          ``"fresh"`` ones; a fixed design cannot give more than n rows
:class:`PerChain`         ``init_chain``: what is constant along one chain (a random
                          truth, a fixed design), built once per chain and bound to
                          the family (``with_chain``) before anything else runs
:class:`WarmStart`        ``fit_warm``: fits after generation 0 start from the
                          previous generation's fit
:class:`CountWeights`     a marker: weights are numbers of points (posteriors), so
                          ``Weighted`` is refused
========================  =========================================================

Every method acts on ONE chain, takes its randomness first and is pure; the kernel
vmaps it over chains (and over a sweep axis). ``key`` is a :class:`collapse_jax.Stream`
(a ``jax.random`` key is accepted when calling a family by hand). ``weights`` are
importance weights of shape ``(points,)`` (``None``: all equal): zero marks an empty
slot, and scaling all weights changes nothing.

**Frames.** ``sample``/``fit`` take an optional ``frame``: parameters of the same
family relative to which the data are expressed (``None`` = absolute coordinates),
and nothing else. Location-scale families use it to stay exact while the scale
collapses (draw standard normals, fit them, compose with the frame: data never round
to a constant); other families ignore it. The kernel passes the previous
generation's fit (the truth at generation 0) or ``None`` (pooled data).

**One chain.** A chain's constant context (a random w*, a fixed design and its Gram
matrix) is not a parameter and not a frame: a :class:`PerChain` family builds it
with ``init_chain(key, n)`` from the chain's context key, once per chain (every node
of an interaction graph shares it), and the kernel calls every method on
``family.with_chain(ctx)``, whose :meth:`~AbstractFamily.truth` is that chain's
truth. Real points are drawn with :meth:`~AbstractFamily.sample_real`.

docs/EXTENDING.md writes a family from scratch.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _declare
from .._describe import constructor_args, field_arg
from .._rng import Stream

Params = Any  # a pytree of arrays, one chain
Data = Any  # a pytree of arrays whose leaves share a leading "point" axis
Stats = Any  # sufficient statistics (exact path)


DECLARATIONS = (
    "optional_metrics",
    "metric_dims",
    "diagnostic_dims",
    "event_dims",
    "traced_bounds",
    "working_set_factor",
    "max_chunk",
)


class AbstractFamily(eqx.Module):
    """A statistical model family refitted generation after generation.

    Required: :meth:`truth`, :meth:`sample`, :meth:`fit`, :meth:`metrics`,
    :meth:`min_points`. Everything else has a default; abilities beyond the basics are
    the capability classes of this module.

    Class-level declarations (checked and frozen when the class is created, so a bad
    one is an error at import naming it, and none changes later):

      * ``optional_metrics``: metrics computed only when a run names them
        (``metrics=[...]``, or ``metrics="all"``): specialised or costly ones, so
        that a default run pays nothing for them (in summary mode every metric
        costs a moment reduction per generation).
      * ``metric_dims``: extra xarray dims per metric, e.g. ``{"component_sd":
        ("component",)}``; metrics not listed are scalars per chain and generation.
      * ``diagnostic_dims`` / ``event_dims``: the same for diagnostics and events.
      * ``traced_bounds``: inclusive bounds of traced fields, checked for sweeps.
      * ``combine_modes`` / ``default_combine``: the ``Weighted`` combine modes.
      * ``working_set_factor``: temporaries of one generation (sampling and fitting)
        in units of one generation's data; sizes the default CPU chunk.
      * ``max_chunk``: largest default chunk of chains on CPU (``None``: no limit).
    """

    optional_metrics: ClassVar[tuple[str, ...]] = ()
    metric_dims: ClassVar[dict[str, tuple[str, ...]]] = {}
    diagnostic_dims: ClassVar[dict[str, tuple[str, ...]]] = {}
    event_dims: ClassVar[dict[str, tuple[str, ...]]] = {}
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {}
    combine_modes: ClassVar[tuple[str, ...]] = ("samples",)  # Weighted's modes (Combinable adds "estimates")
    default_combine: ClassVar[str] = "samples"
    working_set_factor: ClassVar[int] = 2
    max_chunk: ClassVar[int | None] = None

    def __init_subclass__(cls, **kwargs):
        # the declarations above, checked and frozen (read-only) when a family class is created
        super().__init_subclass__(**kwargs)
        _declare.freeze(cls, DECLARATIONS)

    # ---- required -----------------------------------------------------------
    @abc.abstractmethod
    def truth(self) -> Params:
        """Parameters of the data-generating distribution (never a generation). For
        most families a member of the family (a fit can equal it); a family whose
        fits are of another kind (a posterior, a KDE's stored points) returns the
        truth's own parameters and overrides :meth:`sample_real` (and, with those
        capabilities, :meth:`ExactSampler.sample_real_stats` and
        :meth:`Scorable.score_real`) and :meth:`blank_fit`."""

    @abc.abstractmethod
    def sample(self, key: Stream, params: Params, n: int, frame: Params | None = None) -> Data:
        """``n`` i.i.d. points from the model ``params``, expressed in ``frame``."""

    @abc.abstractmethod
    def fit(self, key: Stream, data: Data, weights: jax.Array | None, frame: Params | None = None) -> Params:
        """Fit the family to weighted data expressed in ``frame``."""

    @abc.abstractmethod
    def metrics(self, key: Stream, params: Params) -> dict[str, jax.Array]:
        """Per-chain metrics of a fit (a key: some metrics need fresh draws)."""

    @abc.abstractmethod
    def min_points(self) -> int:
        """Smallest number of points one fit accepts."""

    # ---- optional, with defaults ----------------------------------------------
    def metric_names(self) -> tuple[str, ...]:
        """Names of :meth:`metrics`, in order (found by tracing once, no compute)."""
        out = jax.eval_shape(lambda: self.metrics(_dummy_stream(), self.blank_fit()))
        return tuple(out)

    def blank_fit(self) -> Params:
        """A value with a fit's structure and placeholder numbers: what tracing needs
        (metric names, shapes), never a result. Default: :meth:`truth`."""
        return self.truth()

    def initial_model(self) -> Params | None:
        """A given generation-0 model, a generator that is not a fit (e.g. the truth
        with its tail cut), or ``None`` (default): generation 0 fits the chain's
        original sample. Real draws (fresh data, the original sample) always come
        from :meth:`truth`."""
        return None

    def diagnostics(self, params: Params) -> dict[str, jax.Array]:
        """Fit diagnostics (iterations, convergence flags, ...) carried in params."""
        return {}

    def events(self, params: Params) -> dict[str, jax.Array]:
        """Boolean conditions; the kernel records the first generation each holds."""
        return {}

    def is_finite(self, params: Params) -> jax.Array:
        """Whether a fit is usable (counted as ``nonfinite`` otherwise): by default
        every inexact leaf is finite. Families carrying a large constant per-chain
        context (a fixed design) check only what a generation changes."""
        return all_finite(params)

    def sample_real(self, key: Stream, n: int, frame: Params | None = None) -> Data:
        """``n`` real points: draws from this (chain's) truth, in ``frame``. The only
        way the engine draws real data."""
        return self.sample(key, self.truth(), n, frame)

    def validate_regime(self, regime, n: int, exact: bool) -> None:
        """Raise before compiling if a value of this family's configuration cannot run
        ``regime`` at this ``n`` (rules about capabilities live in
        :func:`collapse_jax.engine.compat.check`)."""

    def check_sweep(self, name: str, values: np.ndarray) -> None:
        """Raise if a sweep's ``values`` for the traced field ``name`` cannot run,
        beyond the ``traced_bounds`` checked before (e.g. a width above the features
        drawn). Default: nothing more to check."""

    def for_run(self, regime, n: int, generations: int) -> AbstractFamily:
        """The family as one run uses it (called after validation, before compiling):
        families whose fits have a size fixed by the regime (KDE's stored sample) fill
        it in here from ``regime.fit_size``. Default: ``self``."""
        return self

    def describe(self) -> dict:
        """``{"family": class name, every constructor argument}`` in JSON types, so
        that ``type(self)(**rest)`` rebuilds the family (stored with results)."""
        return constructor_args(self, "family", self.config_arg)

    def config_arg(self, name: str) -> Any:
        """The constructor argument ``name`` as this family holds it: by default the
        field of the same name. Override for arguments stored another way (a truth
        given as a dict, a ``"random"`` marker), calling ``super()`` for the rest."""
        return field_arg(self, name)

    # ---- what the family can do (read-only views of the capability classes) -----
    @property
    def has_stats(self) -> bool:
        """Whether the family pools sufficient statistics (:class:`SufficientStats`)."""
        return isinstance(self, SufficientStats)

    @property
    def has_exact(self) -> bool:
        """Whether ``sampler="exact"`` is available (:class:`ExactSampler`)."""
        return isinstance(self, ExactSampler) and self.exact_unavailable() is None

    @property
    def is_exact(self) -> bool:
        """Whether this configuration runs on the exact path (``sampler="exact"``)."""
        return isinstance(self, ExactSampler) and self.sampler == "exact"


_declare.freeze(AbstractFamily, DECLARATIONS)


# --------------------------------------------------------------------------- capabilities
class SufficientStats(AbstractFamily):
    """Fits that depend on the data only through additive statistics."""

    @abc.abstractmethod
    def data_stats(self, data: Data, weights: jax.Array | None) -> Stats:
        """Statistics of weighted points (``None``: unit weights)."""

    @abc.abstractmethod
    def merge_stats(self, a: Stats, b: Stats) -> Stats:
        """Statistics of the union of two samples."""

    @abc.abstractmethod
    def fit_stats(self, stats: Stats, frame: Params | None = None) -> Params:
        """The fit to the points behind ``stats``: ``fit(data) == fit_stats(data_stats(data))``."""


class ExactSampler(SufficientStats):
    """Statistics of ``m`` points drawn from their exact law, never the points
    (``sampler="exact"``: O(1) in n per generation)."""

    sampler: eqx.AbstractVar[str]  # "samples" or "exact"

    @abc.abstractmethod
    def sample_stats(self, key: Stream, params: Params, m, frame: Params | None = None) -> Stats:
        """Statistics of ``m`` i.i.d. points from ``params`` (``m`` may be traced)."""

    def sample_real_stats(self, key: Stream, m, frame: Params | None = None) -> Stats:
        """Statistics of ``m`` real points (the exact path's :meth:`sample_real`)."""
        return self.sample_stats(key, self.truth(), m, frame)

    def exact_unavailable(self) -> str | None:
        """Why this configuration has no exact law (``None``: it has one)."""
        return None


class SubsampleStats(SufficientStats):
    """The exact law of the statistics of a uniform n-subset of pooled points
    (AccumulateSubsample pools statistics and runs on the exact path)."""

    @abc.abstractmethod
    def subsample_stats(self, key: Stream, stats: Stats, n: int) -> Stats: ...


class Combinable(AbstractFamily):
    """Parameter averages: ``Weighted(combine="estimates")``."""

    combine_modes: ClassVar[tuple[str, ...]] = ("estimates", "samples")
    default_combine: ClassVar[str] = "estimates"

    @abc.abstractmethod
    def combine(self, p_real: Params, p_synth: Params, w: jax.Array) -> Params:
        """w * theta(real) + (1 - w) * theta(synth)."""


class Temperable(AbstractFamily):
    """Sampling at a temperature (synthesis ``temperature``)."""

    @abc.abstractmethod
    def temper(self, params: Params, tau) -> Params:
        """The model ``params`` at temperature ``tau``."""


class Decodable(AbstractFamily):
    """Decoding rules of a discrete model (synthesis ``top_k`` and ``min_p``): the
    model restricted to a set of its categories and renormalised. Parameter
    transforms, like a temperature, so they keep the exact path."""

    @abc.abstractmethod
    def top_k(self, params: Params, k) -> Params:
        """The model restricted to its ``k`` most probable categories (``k`` traced)."""

    @abc.abstractmethod
    def min_p(self, params: Params, ratio) -> Params:
        """The model restricted to the categories with probability >= ``ratio`` times
        the largest (Nguyen et al., "min-p sampling", arXiv 2407.01082)."""


class Scorable(AbstractFamily):
    """A nonconformity score (synthesis ``truncate`` and the verifier)."""

    @abc.abstractmethod
    def score(self, params: Params, data: Data, frame: Params | None = None) -> jax.Array:
        """Per-point score, larger = further in the tails (e.g. -log p(x))."""

    def score_quantile(self, params: Params, q) -> jax.Array | None:
        """The exact q-quantile of the score under ``params``, or ``None``: filters then
        estimate it from an independent batch of draws."""
        return None

    def score_real(self, data: Data, frame: Params | None = None) -> jax.Array:
        """Per-point score under the truth (the verifier's)."""
        return self.score(self.truth(), data, frame)

    def score_real_quantile(self, q) -> jax.Array | None:
        """The exact q-quantile of :meth:`score_real` under the truth, or ``None``."""
        return self.score_quantile(self.truth(), q)


class LabelVerifiable(AbstractFamily):
    """A label verifier for a family of labelled points that is not :class:`Scorable`
    (a classifier): a synthetic label is *good* when it agrees with the verifier's
    model (Feng et al., ICLR 2025, label verification)."""

    @abc.abstractmethod
    def agrees(self, params: Params, data: Data, frame: Params | None = None) -> jax.Array:
        """Per point: whether the label is the one the model ``params`` predicts."""


class Rewardable(AbstractFamily):
    """A reward on points: synthesis curation keeps, of K candidates, one chosen by
    its reward (Ferbach et al., NeurIPS 2024). The reward's coefficients are traced:
    ``reward`` (per category, or linear coefficients) and ``quadratic`` (a scalar
    c >= 0 or ``None``). ``reward_maximiser``: whether the reward has a maximising
    point, whose mass is the metric ``frac_at_argmax`` (:meth:`argmax_mass`)."""

    reward_maximiser: ClassVar[bool] = False

    @abc.abstractmethod
    def check_reward(self, reward: np.ndarray, quadratic: float | None) -> None:
        """Raise ``ValueError`` naming the parameter if the reward's shape or values
        do not fit this family (concrete values, before compiling)."""

    @abc.abstractmethod
    def reward(
        self, reward: jax.Array, quadratic: jax.Array | None, data: Data, frame: Params | None = None
    ) -> jax.Array:
        """Per-point reward of ``data`` (in ``frame`` coordinates)."""

    @abc.abstractmethod
    def mean_reward(self, params: Params, reward: jax.Array, quadratic: jax.Array | None) -> jax.Array:
        """The reward's expectation under the model ``params`` (metric ``mean_reward``)."""

    def argmax_mass(self, params: Params, reward: jax.Array) -> jax.Array | None:
        """The model's mass on the reward's maximiser (metric ``frac_at_argmax``), or
        ``None`` where the reward has no maximising point."""
        return None


class Tiltable(Rewardable):
    """The exponentially tilted model, p(x) exp(beta r(x)) normalised: curation's
    K -> infinity limit (``curate="tilt"``), a parameter transform."""

    @abc.abstractmethod
    def tilt(self, params: Params, reward: jax.Array, quadratic: jax.Array | None, scale) -> Params:
        """``params`` tilted by exp(``scale`` r(x))."""


class ChoiceLaw(Rewardable):
    """The exact law of one curated point (``curate="luce"`` or ``"top1"`` among K
    candidates) as a model: the exact path (``sampler="exact"``) draws curated
    statistics from it instead of K candidates per point."""

    @abc.abstractmethod
    def choice_law(self, params: Params, reward: jax.Array, rule: str, candidates: int, scale) -> Params:
        """The law of the point that ``rule`` keeps of ``candidates`` i.i.d. draws from ``params``."""


class DirectTruncation(Scorable):
    """Truncated draws without candidates (by inversion)."""

    def truncates_directly(self) -> bool:
        """Whether this configuration draws truncated points directly."""
        return True

    @abc.abstractmethod
    def sample_truncated(self, key: Stream, params: Params, n: int, q, frame: Params | None = None) -> Data:
        """``n`` points from ``params`` restricted to its central mass ``q``."""


class Correctable(AbstractFamily):
    """A transport map towards the truth (synthesis ``correct``)."""

    @abc.abstractmethod
    def correct(self, params: Params, truth: Params, data: Data, gamma, frame: Params | None = None) -> Data:
        """Move points a fraction ``gamma`` along the map from ``params`` to ``truth``."""


class Located(AbstractFamily):
    """A location parameter (the Gaussian's mean, a regression's w)."""

    @abc.abstractmethod
    def location(self, params: Params) -> jax.Array:
        """The fit's location vector, shape ``(p,)``."""


class MixedSampler(AbstractFamily):
    """One draw of n points, each from its own source's model (graphs). Real points
    are taken as draws from :meth:`~AbstractFamily.truth` (a family with its own
    ``sample_real`` is not a MixedSampler; a family on a data set, ``data=``, is
    drawn the generic way: real points from ``sample_real``)."""

    @abc.abstractmethod
    def sample_mixed(self, key: Stream, models: Params, source, n: int, frame: Params | None = None) -> Data:
        """Point k from ``models[source[k]]`` (models stacked on a leading axis)."""


class Designed(AbstractFamily):
    """Regression inputs: ``design="fixed"`` draws each chain's n rows once;
    ``"fresh"`` draws new rows for every sample."""

    design: eqx.AbstractVar[str]
    dim: eqx.AbstractVar[int]  # input dimension: a fixed design's rows must span R^dim


class PerChain(AbstractFamily):
    """A context constant along one chain (a random truth, a fixed design), drawn
    once per chain. ``chain`` is ``None`` on the family as constructed (a family
    called by hand then behaves as a chain without context: its fixed truth, a fresh
    design per draw); inside a run every method is called on
    ``family.with_chain(family.init_chain(key, n))``."""

    chain: eqx.AbstractVar[Any]

    @abc.abstractmethod
    def init_chain(self, key: Stream, n: int) -> Any:
        """The chain's context: ``key`` is generation 0's real-data stream on the
        chain's context key, ``n`` the points per generation (a pytree of arrays)."""

    def with_chain(self, ctx: Any) -> AbstractFamily:
        """This family bound to one chain's context."""
        return eqx.tree_at(lambda f: f.chain, self, ctx, is_leaf=lambda x: x is None)


class WarmStart(AbstractFamily):
    """Iterative fits that may start from the previous generation's fit (generation 0
    and fits of fresh real data alone start cold, with :meth:`~AbstractFamily.fit`)."""

    @abc.abstractmethod
    def fit_warm(self, key: Stream, data: Data, weights: jax.Array | None, start: Params) -> Params:
        """The fit of :meth:`~AbstractFamily.fit`, started from ``start``."""


class CountWeights(AbstractFamily):
    """A fit that reads weights as numbers of points (a posterior): rescaled weights
    (``Weighted``) would change its meaning, so that regime is refused."""


def chain_context(family: AbstractFamily, key: Stream, n: int) -> Any:
    """The context of the chain whose context stream is ``key`` (``None``: the family
    has none)."""
    return family.init_chain(key, n) if isinstance(family, PerChain) else None


def bind_chain(family: AbstractFamily, ctx: Any) -> AbstractFamily:
    """``family`` as the chain with context ``ctx`` (from :func:`chain_context`) sees it."""
    return family.with_chain(ctx) if isinstance(family, PerChain) else family


def fixed_design(family: AbstractFamily) -> bool:
    """Whether the family's inputs are a fixed design of exactly n rows (then nothing
    can draw more than n points of it)."""
    return isinstance(family, Designed) and family.design == "fixed"


CAPABILITIES = (
    SufficientStats,
    ExactSampler,
    SubsampleStats,
    Combinable,
    Temperable,
    Decodable,
    Scorable,
    LabelVerifiable,
    Rewardable,
    Tiltable,
    ChoiceLaw,
    DirectTruncation,
    Correctable,
    Located,
    MixedSampler,
    Designed,
    PerChain,
    WarmStart,
    CountWeights,
)


def check_same_model(family: AbstractFamily, other, what: str) -> None:
    """Raise unless ``other`` is a family of ``family``'s type whose truth has the
    same structure and shapes (a verifier's or a teacher's model)."""
    if type(other) is not type(family):
        raise ValueError(
            f"{what} must be a {type(family).__name__} like the run's family (its truth is the model used), "
            f"got {type(other).__name__}"
        )
    truth, fit = jax.eval_shape(family.truth), jax.eval_shape(family.blank_fit)
    if str(jax.tree.structure(truth)) != str(jax.tree.structure(fit)):
        raise ValueError(
            f"{what}: {type(family).__name__}'s truth is not a fitted model ({type(truth).__name__}, while its fits "
            f"are {type(fit).__name__}), so it cannot stand in for one; use a family whose truth is a fit "
            "(Gaussian, Categorical, Ridge, GLM, ...)"
        )
    theirs = jax.eval_shape(other.truth)
    expected = [a.shape for a in jax.tree.leaves(fit)]
    shapes = [a.shape for a in jax.tree.leaves(theirs)]
    if str(jax.tree.structure(fit)) != str(jax.tree.structure(theirs)) or shapes != expected:
        raise ValueError(f"{what}: its model has shapes {shapes}, the run's family {expected} (a different dimension)")


def capabilities(family: AbstractFamily) -> tuple[str, ...]:
    """Names of the capability classes ``family`` has."""
    return tuple(c.__name__ for c in CAPABILITIES if isinstance(family, c))


def _dummy_stream() -> Stream:
    return Stream(jnp.zeros((2,), jnp.uint32), jnp.int32(0), 0)


def all_finite(params: Params) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)
