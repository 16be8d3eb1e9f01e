"""Pressures on synthetic data and defences against collapse: sampling bias
(temperature, tail truncation), filtering by a verifier, and self-correction.

A :class:`Synthesis` changes only how a fitted model generates its synthetic data;
real data, fitting and metrics are the family's. It is passed beside the family,
``simulate(family, regime, synthesis=cj.Synthesis(temperature=0.8))``, and every
regime draws its synthetic points through it (:meth:`Synthesis.draw`), so each
pressure composes with every regime: ``Replace`` under temperature 0.8,
``FreshMix(0.1)`` behind a 95 %-accurate verifier, ``Accumulate`` with
self-correction. ``cj.Pressured(family, ...)`` is the same thing spelled as a
wrapped family. What a family must be able to do for each step is a capability
class (:mod:`collapse_jax.families._protocol`): ``temperature`` needs
:class:`Temperable`, ``truncate`` and the verifier :class:`Scorable`, ``correct``
:class:`Correctable`.

A synthetic draw of m points from the previous fit ``prev`` goes through, in order:

1. **temperature** tau (Alemohammad et al., "Self-Consuming Generative Models Go
   MAD", ICLR 2024: the quality-diversity trade-off): points come from the tempered
   model ``family.temper(prev, tau)`` (Gaussian: covariance tau^2 Sigma; Categorical:
   p^(1/tau) renormalised; GMM: every component's covariance tau^2 Sigma_k).
   Then the decoding rules of discrete models (:class:`Decodable`: the Categorical):
   **top-k**, the k most probable categories renormalised, and **min-p** (Nguyen et
   al., "Turning Up the Heat: Min-p Sampling for Creative and Coherent LLM
   Outputs", arXiv 2407.01082), the categories with probability >= min_p times the
   largest, renormalised; both are parameter transforms, exact and compatible with
   ``sampler="exact"``, applied after the temperature in that order.
2. **truncation** q: points outside the sampling model's central mass q are dropped
   (score ``family.score(model, x)`` above its q-quantile; the Gaussian's Mahalanobis
   radius, exact chi-square quantile; the Categorical's nucleus, "top-p"; GMM and KDE:
   the negative log-density, its quantile estimated from an independent batch of
   draws).
3. **verification** (Feng et al., "Beyond Model Collapse: Scaling Up with Synthesized
   Data Requires Verification", ICLR 2025): a point is *good* when it lies in the
   truth's central mass ``support`` (the same score, under the chain's truth); the
   verifier accepts a good point with probability 1 - ``false_reject`` and a bad one
   with probability ``false_accept``.
4. **self-correction** gamma (Gillman et al., "Self-Correcting Self-Consuming Loops
   for Generative Model Training", ICML 2024): every kept point moves a fraction gamma
   of the way along the transport map from the sampling model to the truth,
   x' = x + gamma (T(x) - x) (Gaussian: T(x) = mu* + L* L^-1 (x - mu), the monotone
   map in 1-D; regression: labels y' = y + gamma x^T (w* - w)). gamma = 1 returns
   exact draws from the truth.

The 1-D Gaussian draws truncated points directly, by inversion of the CDF (exact, no
candidates; its ``accept_rate`` is q). Other filters (2, 3) draw ``oversample`` x m
candidates, the first m of them with the unfiltered draw's stream, and keep the first
m that pass, in draw order: a filter that passes everything reproduces the unfiltered run bit for bit. Slots left empty
when fewer than m pass take the first rejected candidates (the filter fails open);
the metric ``shortfall`` (the fraction of chains whose next draw would fall short)
shows when that happens, ``accept_rate`` the fraction of candidates that pass. Both
are measured on an independent batch from the generation's fit, i.e. for the draw
that builds the next generation.

Every pressure parameter is traced (a sweep over it is one compiled program); which
pressures are present is static. Sources and closed forms: THEORY.md section 13.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, ClassVar, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _declare
from ._rng import (
    STREAM_CANDIDATES,
    STREAM_DECIDE,
    STREAM_PIPELINE_METRICS,
    STREAM_REFERENCE,
    STREAM_REFERENCE_TRUTH,
    as_stream,
)
from ._validate import is_traced, traced_scalar
from .families._base import tree_concat, tree_take
from .families._protocol import (
    AbstractFamily,
    Correctable,
    Decodable,
    DirectTruncation,
    ExactSampler,
    Scorable,
    Temperable,
)

PRESSURES = ("temperature", "top_k", "min_p", "truncate", "support", "false_accept", "false_reject", "correct")
DEFAULT_SUPPORT = 0.99
SHORTFALL_LEVEL = 1e-6  # automatic oversampling: P(fewer than m candidates pass) below this at the design rate
SYNTHESIS_METRICS = ("accept_rate", "shortfall")


def _scalar(cls: str, name: str, value, low: float, high: float, *, open_low: bool) -> jax.Array:
    return traced_scalar(cls, name, value, low, high, open_low=open_low)


def candidates_needed(rate: float, m: int, level: float = SHORTFALL_LEVEL) -> int:
    """Smallest k such that, with candidates passing independently at ``rate``,
    P(Binomial(k m, rate) < m) < ``level`` (normal approximation with a
    continuity margin; k >= 1)."""
    if rate >= 1.0:
        return 1
    z = -_ndtri(level)
    # k m rate - z sqrt(k m rate (1 - rate)) >= m: a quadratic in sqrt(k)
    a, b, c = m * rate, -z * math.sqrt(m * rate * (1 - rate)), -(m + 1.0)
    root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    return max(1, math.ceil(root * root))


def _ndtri(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


class Synthesis(eqx.Module):
    """How a fitted model generates its synthetic data: sampling bias, filters and
    self-correction (see the module docstring for the order and the sources).
    ``Synthesis()`` is plain draws.

    Args:
        temperature: tau > 0; synthetic data come from the tempered model
            (:class:`~collapse_jax.families._protocol.Temperable` families).
        top_k: k >= 1; synthetic data come from the model's k most probable
            categories, renormalised (categories tied with the k-th are kept)
            (:class:`~collapse_jax.families._protocol.Decodable` families).
        min_p: a ratio in [0, 1]; synthetic data come from the categories with
            probability >= min_p times the largest, renormalised (Decodable).
        truncate: central mass q in (0, 1] of the sampling model that is kept
            (q = 1: no truncation; :class:`Scorable` families).
        support: the truth's central mass in (0, 1] that a verifier calls good
            (default 0.99 when a verifier rate is given).
        false_accept: probability in [0, 1] that the verifier accepts a bad point.
        false_reject: probability in [0, 1] that it rejects a good one. Giving any of
            ``support``, ``false_accept``, ``false_reject`` adds a verifier (missing
            rates are 0: a perfect verifier).
        correct: self-correction strength gamma in [0, 1] (:class:`Correctable`).
        oversample: candidates per synthetic slot for the filters (static). Default:
            the smallest number for which, at the design acceptance rate (q times
            the verifier's rate at a model equal to, or concentrated inside, the
            truth), a draw falls short with probability below 1e-6 at the run's n.
            A model that drifts away from the truth passes fewer points: watch the
            ``shortfall`` metric, and give ``oversample`` when sweeping the rates.
        run_n: the run's n (set by :meth:`for_run`; sizes the metrics' batch).

    Sampling bias alone (temperature) keeps the family's exact path
    (``sampler="exact"``); filters and corrections need the points. Every rate is
    traced: ``sweep={"temperature": [...]}`` (or ``"synthesis.temperature"``) is one
    compiled program.
    """

    temperature: jax.Array | None
    top_k: jax.Array | None
    min_p: jax.Array | None
    truncate: jax.Array | None
    support: jax.Array | None
    false_accept: jax.Array | None
    false_reject: jax.Array | None
    correct: jax.Array | None
    oversample: int | None = eqx.field(static=True)
    run_n: int | None = eqx.field(static=True)

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "temperature": (1e-30, math.inf),
        "top_k": (1.0, math.inf),
        "min_p": (0.0, 1.0),
        "truncate": (1e-30, 1.0),
        "support": (1e-30, 1.0),
        "false_accept": (0.0, 1.0),
        "false_reject": (0.0, 1.0),
        "correct": (0.0, 1.0),
    }

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _declare.freeze(cls, ("traced_bounds",))  # checked and read-only from class creation on

    def __init__(
        self,
        *,
        temperature: float | None = None,
        top_k: int | None = None,
        min_p: float | None = None,
        truncate: float | None = None,
        support: float | None = None,
        false_accept: float | None = None,
        false_reject: float | None = None,
        correct: float | None = None,
        oversample: int | None = None,
        run_n: int | None = None,
        owner: str = "Synthesis",
    ):
        self.temperature = None
        if temperature is not None:
            self.temperature = _scalar(owner, "temperature", temperature, 0.0, math.inf, open_low=True)
        self.top_k = None
        if top_k is not None:
            self.top_k = _scalar(owner, "top_k", top_k, 1.0, math.inf, open_low=False)
            if not is_traced(top_k) and float(self.top_k) != math.floor(float(self.top_k)):
                raise ValueError(f"{owner}: top_k must be a whole number >= 1, got {top_k!r}")
        self.min_p = None
        if min_p is not None:
            self.min_p = _scalar(owner, "min_p", min_p, 0.0, 1.0, open_low=False)
        self.truncate = None
        if truncate is not None:
            self.truncate = _scalar(owner, "truncate", truncate, 0.0, 1.0, open_low=True)
        verify = not (support is None and false_accept is None and false_reject is None)
        self.support = self.false_accept = self.false_reject = None
        if verify:
            self.support = _scalar(
                owner, "support", DEFAULT_SUPPORT if support is None else support, 0.0, 1.0, open_low=True
            )
            fa = 0.0 if false_accept is None else false_accept
            fr = 0.0 if false_reject is None else false_reject
            self.false_accept = _scalar(owner, "false_accept", fa, 0.0, 1.0, open_low=False)
            self.false_reject = _scalar(owner, "false_reject", fr, 0.0, 1.0, open_low=False)
            rates = (self.false_reject, self.false_accept)
            if not any(map(is_traced, rates)) and float(self.false_reject) == 1.0 and float(self.false_accept) == 0.0:
                raise ValueError(f"{owner}: false_reject=1 with false_accept=0 rejects every point")
        self.correct = None
        if correct is not None:
            self.correct = _scalar(owner, "correct", correct, 0.0, 1.0, open_low=False)
        if oversample is not None:
            if isinstance(oversample, bool) or not isinstance(oversample, (int, np.integer)) or oversample < 1:
                raise ValueError(f"{owner}: oversample must be an int >= 1, got {oversample!r}")
            oversample = int(oversample)
        self.oversample = oversample
        if run_n is not None and (isinstance(run_n, bool) or not isinstance(run_n, (int, np.integer)) or run_n < 1):
            raise ValueError(f"{owner}: run_n must be an int >= 1, got {run_n!r}")
        self.run_n = None if run_n is None else int(run_n)

    # ---- what is present (static)
    @property
    def filters(self) -> bool:
        """Whether points are filtered (truncation or a verifier)."""
        return self.truncate is not None or self.support is not None

    @property
    def identity(self) -> bool:
        """Whether synthetic draws are plain draws from the fit."""
        return not self.reshapes and not self.filters and self.correct is None

    @property
    def reshapes(self) -> bool:
        """Whether the sampling model differs from the fit (temperature, top-k, min-p)."""
        return self.temperature is not None or self.top_k is not None or self.min_p is not None

    @property
    def needs_points(self) -> bool:
        """Whether a step needs the synthetic points (filters, corrections)."""
        return self.filters or self.correct is not None

    def required(self) -> tuple[tuple[type, str], ...]:
        """(capability, what needs it) for every step present."""
        out: list[tuple[type, str]] = []
        if self.temperature is not None:
            out.append((Temperable, "temperature"))
        if self.top_k is not None:
            out.append((Decodable, "top_k"))
        if self.min_p is not None:
            out.append((Decodable, "min_p"))
        if self.filters:
            out.append((Scorable, "filtering (truncate, verifier)"))
        if self.correct is not None:
            out.append((Correctable, "correct"))
        return tuple(out)

    def direct_truncation(self, family: AbstractFamily) -> bool:
        """Truncation alone, on a family that draws truncated points directly (the 1-D
        Gaussian, by inversion): no candidates, no selection, acceptance exactly q."""
        return (
            self.truncate is not None
            and self.support is None
            and isinstance(family, DirectTruncation)
            and family.truncates_directly()
        )

    def design_rate(self) -> float:
        """The acceptance rate the automatic ``oversample`` is sized for."""
        rate = 1.0 if self.truncate is None else float(self.truncate)
        if self.support is not None:
            assert self.false_accept is not None and self.false_reject is not None  # set with support
            s, fa, fr = float(self.support), float(self.false_accept), float(self.false_reject)
            rate *= min(s * (1 - fr) + (1 - s) * fa, 1 - fr)
        return rate

    def candidates(self, family: AbstractFamily) -> int:
        """Candidates per synthetic slot (static: :meth:`for_run` fixes the automatic value)."""
        if not self.filters or self.direct_truncation(family):
            return 1
        if self.oversample is not None:
            return self.oversample
        rates = (self.truncate, self.support, self.false_accept, self.false_reject)
        if any(map(is_traced, rates)):
            raise TypeError(
                f"{type(self).__name__}: its filter rates are traced values (inside jit, vmap or grad), so the "
                "number of candidates per point cannot be sized from them; give oversample=<int>"
            )
        return candidates_needed(self.design_rate(), self.run_n or 1)  # concrete values only (before tracing)

    def kwargs(self) -> dict:
        """The constructor's rates as floats (``None`` where absent)."""
        return {k: None if getattr(self, k) is None else float(getattr(self, k)) for k in PRESSURES}

    def for_run(self, family: AbstractFamily, n: int) -> Synthesis:
        """The synthesis as a run of ``n`` points per generation uses it: the automatic
        ``oversample`` fixed (concrete values, before tracing). Subclasses keep their type
        and fields."""
        out = copy.copy(self)
        object.__setattr__(out, "run_n", int(n))  # static fields: eqx.tree_at cannot set them
        object.__setattr__(out, "oversample", out.candidates(family))
        return out

    def describe(self, family: AbstractFamily | None = None) -> dict:
        """The constructor's arguments (``type(s)(**d)`` rebuilds it, the first key
        removed): every field that is set, traced ones as floats."""
        out: dict[str, Any] = {"synthesis": type(self).__name__}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None or f.name == "run_n":
                continue
            if f.name == "oversample" and not (self.filters and (family is None or not self.direct_truncation(family))):
                continue
            out[f.name] = v if isinstance(v, (str, int, float, bool)) else np.asarray(v).tolist()
        return out

    def metric_names(self, family: AbstractFamily) -> tuple[str, ...]:
        """The metrics this synthesis adds to the family's."""
        return SYNTHESIS_METRICS if self.filters else ()

    # ---- the synthetic pipeline
    def sampling_model(self, family: AbstractFamily, params):
        """The model synthetic points are drawn from: ``params`` at the temperature,
        then cut to its top k, then to min-p (each where given)."""
        model = params
        if self.temperature is not None:
            model = cast(Temperable, family).temper(model, self.temperature)  # check_synthesis: a Temperable
        if self.top_k is not None:
            model = cast(Decodable, family).top_k(model, self.top_k)  # check_synthesis: a Decodable
        if self.min_p is not None:
            model = cast(Decodable, family).min_p(model, self.min_p)
        return model

    def draw_stats(self, family: AbstractFamily, key, params, m, frame=None):
        """The exact path's :meth:`draw`: statistics of ``m`` synthetic points."""
        return cast(ExactSampler, family).sample_stats(key, self.sampling_model(family, params), m, frame)

    def draw(self, family: AbstractFamily, key, params, n: int, frame=None):
        """``n`` synthetic points from the fit ``params``, in ``frame`` coordinates."""
        stream = as_stream(key)
        model = self.sampling_model(family, params)
        if self.direct_truncation(family):
            assert self.truncate is not None  # direct_truncation implies it
            q = self.truncate.astype(_float_dtype(model))
            data = cast(DirectTruncation, family).sample_truncated(stream, model, n, q, frame)
        elif self.filters:
            data, _ = self._filtered(family, stream, model, params, n, frame)
        else:
            data = family.sample(stream, model, n, frame)
        if self.correct is not None:
            gamma = self.correct.astype(_float_dtype(model))
            data = cast(Correctable, family).correct(model, family.truth(), data, gamma, frame)
        return data

    def _filtered(self, family, stream, model, prev, m: int, frame):
        """The first m of ``candidates * m`` draws that pass the filters (failing
        open), and the number that passed."""
        k = self.candidates(family)
        total = k * m
        data = family.sample(stream, model, m, frame)
        if k > 1:
            extra = family.sample(stream.sibling(STREAM_CANDIDATES), model, (k - 1) * m, frame)
            data = tree_concat(data, extra)
        accept = self._accept(family, stream, model, prev, data, total, frame)
        return tree_take(data, first_passing(accept, m)), jnp.sum(accept.astype(jnp.int32))

    def _accept(self, family, stream, model, prev, data, total: int, frame) -> jax.Array:
        dtype = _float_dtype(model)
        accept = jnp.ones((total,), bool)
        if self.truncate is not None:
            q = self.truncate.astype(dtype)
            score = family.score(model, data, frame)
            ref = stream.sibling(STREAM_REFERENCE)
            thr = _threshold(
                q,
                family.score_quantile(model, q),
                lambda: family.score(model, family.sample(ref, model, total, frame), frame),
            )
            accept = accept & (score <= thr)
        if self.support is not None:
            assert self.false_accept is not None and self.false_reject is not None  # set with support
            score = family.score_real(data, frame)
            q = self.support.astype(dtype)
            ref = stream.sibling(STREAM_REFERENCE_TRUTH)
            thr = _threshold(
                q,
                family.score_real_quantile(q),
                lambda: family.score_real(family.sample_real(ref, total, frame), frame),
            )
            good = score <= thr
            p_accept = jnp.where(good, 1 - self.false_reject.astype(dtype), self.false_accept.astype(dtype))
            u = stream.sibling(STREAM_DECIDE).uniform((total,), dtype)
            accept = accept & (u < p_accept)
        return accept

    def metrics(self, family: AbstractFamily, key, params) -> dict[str, jax.Array]:
        """``accept_rate`` and ``shortfall`` of the next generation's draw (filters only)."""
        if not self.filters:
            return {}
        dtype = _float_dtype(params)
        if self.direct_truncation(family):
            assert self.truncate is not None  # direct_truncation implies it
            return {"accept_rate": self.truncate.astype(dtype), "shortfall": jnp.zeros((), dtype)}
        stream = as_stream(key).sibling(STREAM_PIPELINE_METRICS)
        m = self.run_n or 1
        _, passed = self._filtered(family, stream, self.sampling_model(family, params), params, m, params)
        return {
            "accept_rate": passed.astype(dtype) / (self.candidates(family) * m),
            "shortfall": (passed < m).astype(dtype),
        }


_declare.freeze(Synthesis, ("traced_bounds",))


def _threshold(q, exact: jax.Array | None, reference_scores) -> jax.Array:
    """The q-quantile of a score: the family's closed form ``exact`` or, when it has
    none (``None``), the empirical quantile of ``reference_scores()`` (scores of
    independent draws). q = 1 gives +inf (nothing is dropped)."""
    thr = jnp.quantile(reference_scores(), q) if exact is None else exact
    return jnp.where(q >= 1, jnp.inf, thr)


def first_passing(passed: jax.Array, m: int) -> jax.Array:
    """Indices of the first ``m`` entries of the boolean vector ``passed`` that are
    True, in order, followed (when fewer pass) by the first ones that are False.

    A scatter of each entry's rank among its kind: O(len) per chain, about 5x faster
    on CPU than selecting by ``lax.top_k`` or a stable sort."""
    total = passed.shape[0]
    ok = passed.astype(jnp.int32)
    rank_ok = jnp.cumsum(ok) - 1
    rank_bad = rank_ok[-1] + jnp.cumsum(1 - ok)  # after every passing entry
    slot = jnp.where(passed, rank_ok, rank_bad)
    order = jnp.arange(total, dtype=jnp.int32)
    return jnp.zeros((m,), jnp.int32).at[slot].set(order, mode="drop", unique_indices=True)


def _float_dtype(params):
    leaves = [x for x in jax.tree.leaves(params) if jnp.issubdtype(x.dtype, jnp.floating)]
    return leaves[0].dtype if leaves else jnp.float32
