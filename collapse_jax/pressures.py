"""Pressures on synthetic data and defences against collapse: sampling bias
(temperature, tail truncation), filtering by a verifier, and self-correction.

A :class:`Pressured` family wraps any family and changes only how a fitted model
generates its synthetic data (the family's ``sample_synthetic`` hook); real data,
fitting and metrics are the wrapped family's. Every regime draws its synthetic points
through that hook, so each pressure composes with every regime: ``Replace`` under
temperature 0.8, ``FreshMix(0.1)`` behind a 95 %-accurate verifier, ``Accumulate``
with self-correction.

A synthetic draw of m points from the previous fit ``prev`` goes through, in order:

1. **temperature** tau (Alemohammad et al., "Self-Consuming Generative Models Go
   MAD", ICLR 2024: the quality-diversity trade-off): points come from the tempered
   model ``family.temper(prev, tau)`` (Gaussian: covariance tau^2 Sigma; Categorical:
   p^(1/tau) renormalised; GMM: every component's covariance tau^2 Sigma_k).
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

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._rng import (
    STREAM_CANDIDATES,
    STREAM_DECIDE,
    STREAM_PIPELINE_METRICS,
    STREAM_REFERENCE,
    STREAM_REFERENCE_TRUTH,
    as_stream,
)
from .families._base import AbstractFamily, tree_concat, tree_take

PRESSURES = ("temperature", "truncate", "support", "false_accept", "false_reject", "correct")
DEFAULT_SUPPORT = 0.99
SHORTFALL_LEVEL = 1e-6  # automatic oversampling: P(fewer than m candidates pass) below this at the design rate


def _scalar(cls: str, name: str, value, low: float, high: float, *, open_low: bool) -> jax.Array:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{cls}: {name} must be a number, got {value!r}") from None
    ok = (v > low if open_low else v >= low) and v <= high and math.isfinite(v)
    if not ok:
        lo = "(" if open_low else "["
        hi = "inf)" if math.isinf(high) else f"{high:g}]"
        raise ValueError(f"{cls}: {name} must lie in {lo}{low:g}, {hi}, got {value!r}")
    return jnp.asarray(v, jnp.float32)


def fixed_design(family: AbstractFamily) -> bool:
    """Whether the family's inputs are a fixed design of exactly n rows (then no
    filter can draw more candidates than n)."""
    return getattr(family, "design", None) == "fixed"


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


class Pressured(AbstractFamily):
    """``family`` whose synthetic data pass through sampling bias, filters and
    self-correction (see the module docstring for the order and the sources).

    Args:
        family: any family with the hooks a pressure needs (``temper`` for
            temperature; ``score`` for truncation and verification; ``correct`` for
            self-correction): Gaussian, Categorical, GMM, KDE, Ridge (fresh design
            for filters).
        temperature: tau > 0; synthetic data come from the tempered model.
        truncate: central mass q in (0, 1] of the sampling model that is kept
            (q = 1: no truncation).
        support: the truth's central mass in (0, 1] that a verifier calls good
            (default 0.99 when a verifier rate is given).
        false_accept: probability in [0, 1] that the verifier accepts a bad point.
        false_reject: probability in [0, 1] that it rejects a good one. Giving any of
            ``support``, ``false_accept``, ``false_reject`` adds a verifier (missing
            rates are 0: a perfect verifier).
        correct: self-correction strength gamma in [0, 1].
        oversample: candidates per synthetic slot for the filters (static). Default:
            the smallest number for which, at the design acceptance rate (q times
            the verifier's rate at a model equal to, or concentrated inside, the
            truth), a draw falls short with probability below 1e-6 at the run's n.
            A model that drifts away from the truth passes fewer points: watch the
            ``shortfall`` metric, and give ``oversample`` when sweeping the rates.

    Sampling bias alone (temperature) keeps the wrapped family's exact path
    (``sampler="exact"``); filters and corrections need the points.
    """

    family: AbstractFamily
    temperature: jax.Array | None
    truncate: jax.Array | None
    support: jax.Array | None
    false_accept: jax.Array | None
    false_reject: jax.Array | None
    correct: jax.Array | None
    oversample: int | None = eqx.field(static=True)
    run_n: int | None = eqx.field(static=True)  # the run's n, set by ``for_run`` (sizes the metric's batch)

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "temperature": (1e-30, math.inf),
        "truncate": (1e-30, 1.0),
        "support": (1e-30, 1.0),
        "false_accept": (0.0, 1.0),
        "false_reject": (0.0, 1.0),
        "correct": (0.0, 1.0),
    }

    def __init__(
        self,
        family: AbstractFamily,
        *,
        temperature: float | None = None,
        truncate: float | None = None,
        support: float | None = None,
        false_accept: float | None = None,
        false_reject: float | None = None,
        correct: float | None = None,
        oversample: int | None = None,
        run_n: int | None = None,
    ):
        if not isinstance(family, AbstractFamily) or isinstance(family, Pressured):
            raise TypeError(f"Pressured: family must be a collapse_jax family (not a Pressured one), got {family!r}")
        name = type(family).__name__
        self.family = family
        self.temperature = None
        if temperature is not None:
            self.temperature = _scalar("Pressured", "temperature", temperature, 0.0, math.inf, open_low=True)
            _need(family, "temper", "temperature")
        self.truncate = None
        if truncate is not None:
            self.truncate = _scalar("Pressured", "truncate", truncate, 0.0, 1.0, open_low=True)
        verify = not (support is None and false_accept is None and false_reject is None)
        self.support = self.false_accept = self.false_reject = None
        if verify:
            self.support = _scalar(
                "Pressured", "support", DEFAULT_SUPPORT if support is None else support, 0.0, 1.0, open_low=True
            )
            self.false_accept = _scalar("Pressured", "false_accept", false_accept or 0.0, 0.0, 1.0, open_low=False)
            self.false_reject = _scalar("Pressured", "false_reject", false_reject or 0.0, 0.0, 1.0, open_low=False)
            if float(self.false_reject) == 1.0 and float(self.false_accept) == 0.0:
                raise ValueError("Pressured: false_reject=1 with false_accept=0 rejects every point")
        if self.truncate is not None or verify:
            _need(family, "score", "truncate and the verifier")
            if fixed_design(family):
                raise ValueError(
                    f"Pressured: filters draw more candidates than n, which a fixed design cannot; "
                    f"use {name}(design='fresh')"
                )
        self.correct = None
        if correct is not None:
            self.correct = _scalar("Pressured", "correct", correct, 0.0, 1.0, open_low=False)
            _need(family, "correct", "correct")
        if oversample is not None:
            if isinstance(oversample, bool) or not isinstance(oversample, (int, np.integer)) or oversample < 1:
                raise ValueError(f"Pressured: oversample must be an int >= 1, got {oversample!r}")
            oversample = int(oversample)
        self.oversample = oversample
        self.run_n = run_n

    # ---- what is present (static)
    @property
    def filters(self) -> bool:
        return self.truncate is not None or self.support is not None

    @property
    def direct_truncation(self) -> bool:
        """Truncation alone, on a family that draws truncated points directly (the 1-D
        Gaussian, by inversion): no candidates, no selection, acceptance exactly q."""
        return self.truncate is not None and self.support is None and getattr(self.family, "truncates_directly", False)

    def design_rate(self) -> float:
        """The acceptance rate the automatic ``oversample`` is sized for."""
        rate = 1.0 if self.truncate is None else float(self.truncate)
        if self.support is not None:
            s, fa, fr = float(self.support), float(self.false_accept), float(self.false_reject)
            rate *= min(s * (1 - fr) + (1 - s) * fa, 1 - fr)
        return rate

    def candidates(self) -> int:
        """Candidates per synthetic slot (static: ``for_run`` fixes the automatic value)."""
        if not self.filters or self.direct_truncation:
            return 1
        if self.oversample is not None:
            return self.oversample
        return candidates_needed(self.design_rate(), self.run_n or 1)  # concrete values only (before tracing)

    # ---- forwarded declarations
    @property
    def sampler(self) -> str:
        return getattr(self.family, "sampler", "samples")

    @property
    def has_stats(self) -> bool:
        return self.family.has_stats

    @property
    def has_exact(self) -> bool:
        return self.family.has_exact

    @property
    def metric_dims(self) -> dict:
        return self.family.metric_dims

    @property
    def diagnostic_dims(self) -> dict:
        return self.family.diagnostic_dims

    @property
    def event_dims(self) -> dict:
        return self.family.event_dims

    @property
    def combine_modes(self) -> tuple[str, ...]:
        return self.family.combine_modes

    @property
    def default_combine(self) -> str:
        return self.family.default_combine

    @property
    def working_set_factor(self) -> int:
        return self.family.working_set_factor * self.candidates()

    @property
    def max_chunk(self) -> int | None:
        return self.family.max_chunk

    def describe(self) -> dict:
        out = {"family": "Pressured", "wrapped": self.family.describe()}
        for k in PRESSURES:
            v = getattr(self, k)
            if v is not None:
                out[k] = float(v)
        if self.filters and not self.direct_truncation:
            out["oversample"] = self.candidates()
        return out

    def min_points(self) -> int:
        return self.family.min_points()

    def validate_regime(self, regime, n: int, exact: bool) -> None:
        if exact and (self.filters or self.correct is not None):
            raise ValueError(
                "Pressured: filters (truncate, verifier) and correct need the synthetic points; "
                "sampler='exact' supports temperature alone"
            )
        self.family.validate_regime(regime, n, exact)

    def for_run(self, regime, n: int, generations: int) -> Pressured:
        kw = {k: None if getattr(self, k) is None else float(getattr(self, k)) for k in PRESSURES}
        sized = Pressured(self.family, **kw, oversample=self.oversample, run_n=n)
        return Pressured(self.family.for_run(regime, n, generations), **kw, oversample=sized.candidates(), run_n=n)

    def truth(self):
        return self.family.truth()

    def chain_truth(self, prev=None):
        return self.family.chain_truth(prev)

    def pooled_frame(self, prev):
        return self.family.pooled_frame(prev)

    def sample(self, key, params, n: int, frame=None):
        return self.family.sample(key, params, n, frame)

    def sample_real(self, key, n: int, prev, frame=None):
        return self.family.sample_real(key, n, prev, frame)

    def fit(self, key, data, weights, frame=None):
        return self.family.fit(key, data, weights, frame)

    def data_stats(self, data, weights):
        return self.family.data_stats(data, weights)

    def merge_stats(self, a, b):
        return self.family.merge_stats(a, b)

    def fit_stats(self, stats, frame=None):
        return self.family.fit_stats(stats, frame)

    def sample_stats(self, key, params, m, frame=None):
        return self.family.sample_stats(key, params, m, frame)

    def combine(self, p_real, p_synth, w):
        return self.family.combine(p_real, p_synth, w)

    def diagnostics(self, params):
        return self.family.diagnostics(params)

    def events(self, params):
        return self.family.events(params)

    def is_finite(self, params):
        return self.family.is_finite(params)

    # ---- the synthetic pipeline
    def sampling_model(self, params):
        """The model synthetic points are drawn from: ``params`` at the temperature."""
        if self.temperature is None:
            return params
        return self.family.temper(params, self.temperature)

    def sample_stats_synthetic(self, key, params, m, frame=None):
        return self.family.sample_stats(key, self.sampling_model(params), m, frame)

    def sample_synthetic(self, key, params, n: int, frame=None):
        stream = as_stream(key)
        model = self.sampling_model(params)
        if self.direct_truncation:
            q = self.truncate.astype(_float_dtype(model))
            data = self.family.sample_truncated(stream, model, n, q, frame)
        elif self.filters:
            data, _ = self._filtered(stream, model, params, n, frame)
        else:
            data = self.family.sample(stream, model, n, frame)
        if self.correct is not None:
            gamma = self.correct.astype(_float_dtype(model))
            data = self.family.correct(model, self.family.chain_truth(params), data, gamma, frame)
        return data

    def _filtered(self, stream, model, prev, m: int, frame):
        """The first m of ``candidates() * m`` draws that pass the filters (failing
        open), and the number that passed."""
        k = self.candidates()
        total = k * m
        data = self.family.sample(stream, model, m, frame)
        if k > 1:
            extra = self.family.sample(stream.sibling(STREAM_CANDIDATES), model, (k - 1) * m, frame)
            data = tree_concat(data, extra)
        accept = self._accept(stream, model, prev, data, total, frame)
        return tree_take(data, first_passing(accept, m)), jnp.sum(accept.astype(jnp.int32))

    def _accept(self, stream, model, prev, data, total: int, frame) -> jax.Array:
        dtype = _float_dtype(model)
        accept = jnp.ones((total,), bool)
        if self.truncate is not None:
            q = self.truncate.astype(dtype)
            score = self.family.score(model, data, frame)
            thr = self._threshold(stream.sibling(STREAM_REFERENCE), model, q, total, frame)
            accept = accept & (score <= thr)
        if self.support is not None:
            truth = self.family.chain_truth(prev)
            score = self.family.score(truth, data, frame)
            ref = stream.sibling(STREAM_REFERENCE_TRUTH)
            thr = self._threshold(ref, truth, self.support.astype(dtype), total, frame)
            good = score <= thr
            p_accept = jnp.where(good, 1 - self.false_reject.astype(dtype), self.false_accept.astype(dtype))
            u = stream.sibling(STREAM_DECIDE).uniform((total,), dtype)
            accept = accept & (u < p_accept)
        return accept

    def _threshold(self, stream, model, q, size: int, frame) -> jax.Array:
        """The q-quantile of the score under ``model``: the family's closed form
        (``score_quantile``) or the empirical quantile of ``size`` independent draws.
        q = 1 gives +inf (nothing is dropped)."""
        hook = getattr(self.family, "score_quantile", None)
        if callable(hook):
            thr = hook(model, q)
        else:
            ref = self.family.sample(stream, model, size, frame)
            thr = jnp.quantile(self.family.score(model, ref, frame), q)
        return jnp.where(q >= 1, jnp.inf, thr)

    def metrics(self, key, params) -> dict[str, jax.Array]:
        out = dict(self.family.metrics(key, params))
        if self.direct_truncation:
            dtype = _float_dtype(params)
            out["accept_rate"] = self.truncate.astype(dtype)
            out["shortfall"] = jnp.zeros((), dtype)
        elif self.filters:
            stream = as_stream(key).sibling(STREAM_PIPELINE_METRICS)
            m = self.run_n or 1
            _, passed = self._filtered(stream, self.sampling_model(params), params, m, params)
            dtype = _float_dtype(params)
            out["accept_rate"] = passed.astype(dtype) / (self.candidates() * m)
            out["shortfall"] = (passed < m).astype(dtype)
        return out


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


def _need(family: AbstractFamily, hook: str, what: str) -> None:
    if not callable(getattr(family, hook, None)):
        raise ValueError(
            f"Pressured: {what} needs the family hook {hook}(), which {type(family).__name__} does not have "
            "(see collapse_jax.pressures for the families that support each pressure)"
        )


def _float_dtype(params):
    leaves = [x for x in jax.tree.leaves(params) if jnp.issubdtype(x.dtype, jnp.floating)]
    return leaves[0].dtype if leaves else jnp.float32
