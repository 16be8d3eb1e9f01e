"""The family interface every model plugs into (DESIGN.md, "The core abstractions")."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .._rng import Stream

Params = Any  # a pytree of arrays, one chain
Data = Any  # a pytree of arrays whose leaves share a leading "point" axis
Stats = Any  # sufficient statistics (exact path)


class AbstractFamily(eqx.Module):
    """A statistical model family refitted generation after generation.

    Every method acts on ONE chain, takes its randomness first and is pure; the
    kernel vmaps it over chains (and over a sweep axis). ``key`` is a
    :class:`collapse_jax.Stream` (a ``jax.random`` key is accepted when calling a
    family by hand). ``weights`` are importance weights of shape ``(points,)``:
    zero marks an empty slot, and scaling all weights changes nothing.

    **Frames.** ``sample``/``fit`` take an optional ``frame``: parameters of the
    same family relative to which the data are expressed (``None`` = absolute
    coordinates). Location-scale families use it to stay exact while the scale
    collapses (draw standard normals, fit them, compose with the frame: data never
    round to a constant); other families ignore it. The kernel always passes the
    previous generation's fit (the truth at generation 0) or ``None``.

    Class-level declarations:
      * ``metric_dims``: extra xarray dims per metric, e.g. ``{"component_sd":
        ("component",)}``; metrics not listed are scalars per chain and generation.
      * ``diagnostic_dims`` / ``event_dims``: the same for diagnostics and events.
      * ``combine_modes``: the ``Weighted`` combine modes the family supports.
      * ``traced_bounds``: inclusive bounds of traced fields, checked for sweeps.
    """

    metric_dims: ClassVar[dict[str, tuple[str, ...]]] = {}
    diagnostic_dims: ClassVar[dict[str, tuple[str, ...]]] = {}
    event_dims: ClassVar[dict[str, tuple[str, ...]]] = {}
    combine_modes: ClassVar[tuple[str, ...]] = ("samples",)
    default_combine: ClassVar[str] = "samples"
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {}  # inclusive bounds of sweepable fields
    # temporaries of one generation (sampling and fitting), in units of one generation's data: sizes the
    # default CPU chunk so that a chunk's working set stays cache-sized
    working_set_factor: ClassVar[int] = 2
    # largest default chunk of chains on CPU (None: no limit): fits built on batched while loops
    # (NUTS trees) slow down sharply past some batch size there
    max_chunk: ClassVar[int | None] = None

    # ---- required -----------------------------------------------------------
    @abc.abstractmethod
    def truth(self) -> Params:
        """Parameters of the data-generating distribution (never a generation)."""

    @abc.abstractmethod
    def sample(self, key: Stream, params: Params, n: int, frame: Params | None = None) -> Data:
        """``n`` i.i.d. points from the model ``params``, expressed in ``frame``."""

    @abc.abstractmethod
    def fit(self, key: Stream, data: Data, weights: jax.Array, frame: Params | None = None) -> Params:
        """Fit the family to weighted data expressed in ``frame``."""

    @abc.abstractmethod
    def metrics(self, key: Stream, params: Params) -> dict[str, jax.Array]:
        """Per-chain metrics of a fit (a key: some metrics need fresh draws)."""

    @abc.abstractmethod
    def min_points(self) -> int:
        """Smallest number of points one fit accepts."""

    # ---- optional -------------------------------------------------------------
    def metric_names(self) -> tuple[str, ...]:
        """Names of :meth:`metrics`, in order (found by tracing once, no compute)."""
        out = jax.eval_shape(lambda: self.metrics(_dummy_stream(), self.truth()))
        return tuple(out)

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

    def sample_real(self, key: Stream, n: int, prev: Params, frame: Params | None = None) -> Data:
        """``n`` real points (from the truth). ``prev`` is the current model, for
        families whose real data depend on a per-chain context kept in it (e.g. a
        fixed design)."""
        return self.sample(key, self.chain_truth(prev), n, frame)

    def sample_synthetic(self, key: Stream, params: Params, n: int, frame: Params | None = None) -> Data:
        """``n`` synthetic points from the model ``params`` (a previous generation's
        fit): what a regime trains on in place of real data. Default: plain draws,
        :meth:`sample`. :class:`collapse_jax.Pressured` overrides it with sampling bias,
        filtering, verification and self-correction; regimes call it for every
        synthetic draw and :meth:`sample` / :meth:`sample_real` for real data."""
        return self.sample(key, params, n, frame)

    def sample_stats_synthetic(self, key: Stream, params: Params, m, frame: Params | None = None) -> Stats:
        """The exact path's :meth:`sample_synthetic`: statistics of ``m`` synthetic
        points (default :meth:`sample_stats`)."""
        return self.sample_stats(key, params, m, frame)

    def validate_regime(self, regime, n: int, exact: bool) -> None:
        """Raise before compiling if this family cannot run ``regime`` this way."""

    # Optional pressure hooks (collapse_jax.Pressured; THEORY.md section 13):
    #   ``temper(params, tau) -> params``: the model at temperature tau;
    #   ``score(params, data, frame) -> (points,)``: a nonconformity score (larger = further in
    #     the tails), e.g. the squared Mahalanobis radius or -log p(x);
    #   ``score_quantile(params, q) -> scalar``: its exact q-quantile under ``params`` (without it,
    #     filters estimate the quantile from an independent batch of draws);
    #   ``correct(params, truth, data, gamma, frame) -> data``: move points a fraction gamma along
    #     a transport map from the model ``params`` to ``truth``.

    # Optional: ``location(params) -> (p,) vector``, the fit's location parameter (the
    # Gaussian's mean, a regression's w): interaction graphs report ``homogenisation``,
    # the mean squared distance between their nodes' locations, for families that have it.

    def for_run(self, regime, n: int, generations: int) -> AbstractFamily:
        """The family as one run uses it (called by ``simulate`` after validation,
        before compiling): families whose fits have a size fixed by the regime (KDE's
        stored sample) fill it in here from ``regime.fit_size``. Default: ``self``."""
        return self

    def chain_truth(self, prev: Params | None = None) -> Params:
        """The truth of the chain whose current model is ``prev`` (default: the
        family's truth). Families with a per-chain truth (a random w*, a fixed
        design) read it from ``prev``."""
        return self.truth()

    def pooled_frame(self, prev: Params):
        """The frame of fits that pool data across generations (Accumulate,
        AccumulateSubsample): ``None`` = absolute coordinates. Families whose fits
        need the chain's context return ``prev``."""
        return None

    def combine(self, p_real: Params, p_synth: Params, w: jax.Array) -> Params:
        """``Weighted(combine="estimates")``: w * theta(real) + (1 - w) * theta(synth)."""
        raise NotImplementedError(f"{type(self).__name__} cannot average parameters")

    # ---- optional exact path (sufficient statistics) ------------------------------
    @property
    def has_stats(self) -> bool:
        """Whether the family implements the sufficient-statistics protocol."""
        return type(self).data_stats is not AbstractFamily.data_stats

    @property
    def has_exact(self) -> bool:
        """Whether ``sampler="exact"`` can draw statistics from their exact law."""
        return type(self).sample_stats is not AbstractFamily.sample_stats

    def data_stats(self, data: Data, weights: jax.Array) -> Stats:
        raise NotImplementedError

    def sample_stats(self, key: Stream, params: Params, m, frame: Params | None = None) -> Stats:
        raise NotImplementedError

    def merge_stats(self, a: Stats, b: Stats) -> Stats:
        raise NotImplementedError

    def fit_stats(self, stats: Stats, frame: Params | None = None) -> Params:
        raise NotImplementedError

    def describe(self) -> dict:
        """A JSON-able description of the configuration (stored with results)."""
        return {"family": type(self).__name__}


def _dummy_stream() -> Stream:
    return Stream(jnp.zeros((2,), jnp.uint32), jnp.int32(0), 0)


def tree_where(mask: jax.Array, a: Data, b: Data) -> Data:
    """Per-point select between two data pytrees (mask over the leading axis)."""

    def sel(x, y):
        m = mask.reshape(mask.shape + (1,) * (x.ndim - 1))
        return jnp.where(m, x, y)

    return jax.tree.map(sel, a, b)


def tree_concat(a: Data, b: Data) -> Data:
    """Concatenate two data pytrees along the point axis."""
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y], axis=0), a, b)


def tree_take(data: Data, idx: jax.Array) -> Data:
    return jax.tree.map(lambda x: jnp.take(x, idx, axis=0), data)


def tree_update(buffer: Data, data: Data, start) -> Data:
    """Write ``data`` into ``buffer`` at point offset ``start``."""

    def upd(buf, x):
        idx = (start,) + (0,) * (buf.ndim - 1)
        return jax.lax.dynamic_update_slice(buf, x.astype(buf.dtype), idx)

    return jax.tree.map(upd, buffer, data)


def all_finite(params: Params) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)
