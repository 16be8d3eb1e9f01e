"""Pressures on synthetic data and defences against collapse: sampling bias
(temperature, decoding, tail truncation), reward curation, filtering by a verifier,
and self-correction.

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
   Reward curation's K = infinity rule, ``curate="tilt"`` (the model tilted by
   exp(beta r(x))), is a parameter transform too and comes last.
2. **curation** (Ferbach et al., "Self-Consuming Generative Models with Curated Data
   Provably Optimize Human Preferences", NeurIPS 2024): with ``curate="luce"`` or
   ``"top1"`` every point is chosen among K i.i.d. candidates by its reward (a
   Luce choice, probability proportional to exp(beta r), or the best); the first
   candidate of every slot is the uncurated draw, so K = 1 reproduces it.
   ``"threshold"`` keeps points with r >= t, as a filter (below).
3. **truncation** q: points outside the sampling model's central mass q are dropped
   (score ``family.score(model, x)`` above its q-quantile; the Gaussian's Mahalanobis
   radius, exact chi-square quantile; the Categorical's nucleus, "top-p"; GMM and KDE:
   the negative log-density, its quantile estimated from an independent batch of
   draws).
4. **verification** (Feng et al., "Beyond Model Collapse: Scaling Up with Synthesized
   Data Requires Verification", ICLR 2025): a point is *good* when it lies in the
   truth's central mass ``support`` (the same score, under the chain's truth); the
   verifier accepts a good point with probability 1 - ``false_reject`` and a bad one
   with probability ``false_accept``. The verifier's knowledge may instead be the
   chain's frozen generation-0 model (``verifier="first"``, self-verification) or a
   model of its own (``verifier=<family>``); a classifier's labels are checked
   against the verifier's prediction (:class:`LabelVerifiable`).
5. **self-correction** gamma (Gillman et al., "Self-Correcting Self-Consuming Loops
   for Generative Model Training", ICML 2024): every kept point moves a fraction gamma
   of the way along the transport map from the sampling model to the truth,
   x' = x + gamma (T(x) - x) (Gaussian: T(x) = mu* + L* L^-1 (x - mu), the monotone
   map in 1-D; regression: labels y' = y + gamma x^T (w* - w)). gamma = 1 returns
   exact draws from the truth.

The 1-D Gaussian draws truncated points directly, by inversion of the CDF (exact, no
candidates; its ``accept_rate`` is q). Other filters (a reward threshold, 3, 4) draw ``oversample`` x m
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
    Stream,
    as_stream,
)
from ._validate import is_traced, traced_scalar
from .families._base import tree_concat, tree_take
from .families._protocol import (
    AbstractFamily,
    ChoiceLaw,
    Correctable,
    Decodable,
    DirectTruncation,
    ExactSampler,
    LabelVerifiable,
    Rewardable,
    Scorable,
    Temperable,
    Tiltable,
)

PRESSURES = ("temperature", "top_k", "min_p", "truncate", "support", "false_accept", "false_reject", "correct")
REWARD_SCALARS = ("reward_quadratic", "reward_scale", "reward_threshold")
CURATION_RULES = ("luce", "top1", "threshold", "tilt")
DEFAULT_CANDIDATES = 4
VERIFIERS = ("truth", "first")
# sub-streams of a synthetic draw's stream: a curated draw's extra candidates and its choices
CURATE_CANDIDATES_CHILD = 12
CURATE_CHOICE_CHILD = 11
DEFAULT_SUPPORT = 0.99
SHORTFALL_LEVEL = 1e-6  # automatic oversampling: P(fewer than m candidates pass) below this at the design rate
SYNTHESIS_METRICS = ("accept_rate", "shortfall")
CURATION_METRICS = ("mean_reward", "frac_at_argmax")


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
        curate: reward curation of the synthetic points (Ferbach et al., NeurIPS
            2024; :class:`~collapse_jax.families._protocol.Rewardable` families):
            ``"luce"`` keeps, of ``candidates`` i.i.d. draws, one chosen with
            probability proportional to exp(``reward_scale`` r(x)) (Bradley-Terry /
            Plackett-Luce); ``"top1"`` the one of highest reward (ties: the first
            drawn); ``"threshold"`` keeps draws with r(x) >= ``reward_threshold``,
            as a filter does (``candidates`` per point, failing open, with
            ``accept_rate`` and ``shortfall``); ``"tilt"`` is K = infinity, the
            model tilted by exp(``reward_scale`` r(x)), a parameter transform that
            keeps ``sampler="exact"`` (:class:`~collapse_jax.families._protocol.Tiltable`).
            ``"luce"`` and ``"top1"`` keep it too on a
            :class:`~collapse_jax.families._protocol.ChoiceLaw` family (Categorical),
            which gives the exact law of a kept point.
        candidates: K >= 1 candidates per kept point (static; default 4; not with
            ``"tilt"``). K = 1 reproduces the uncurated run bit for bit.
        reward: the reward's coefficients (traced): one per category for a
            Categorical, the linear coefficients b (shape (d,)) for a Gaussian,
            r(x) = b^T x - (c/2) ||x||^2.
        reward_quadratic: c >= 0 in that reward (continuous families; default 0).
        reward_scale: beta >= 0 multiplying the reward in ``"luce"`` and ``"tilt"``
            (default 1): a sweep over it is a sweep over reward strength.
        reward_threshold: the ``"threshold"`` rule's level.
        verifier: whose knowledge the verifier holds: ``None`` or ``"truth"`` (the
            chain's truth), ``"first"`` (self-verification: the chain's frozen
            generation-0 model, refitted each generation from the chain's original
            sample, so it costs one fit per generation), or a family of the same
            type and shape whose truth is the verifier's own knowledge centre.
            Giving it adds a verifier. Scorable families call a point good when its
            score under the verifier's model is within that model's central mass
            ``support`` (Ridge: the label within the noise band around the
            verifier's x^T w: label verification); a :class:`LabelVerifiable`
            classifier (GLM logistic) when its label is the one the verifier
            predicts (``support`` is then not used).

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
    curate: str | None = eqx.field(static=True)
    candidates: int | None = eqx.field(static=True)
    reward: jax.Array | None
    reward_quadratic: jax.Array | None
    reward_scale: jax.Array | None
    reward_threshold: jax.Array | None
    verifier_kind: str | None = eqx.field(static=True)
    verifier_model: Any
    reference: Any  # verifier="first": the chain's generation-0 model, set inside a run

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "temperature": (1e-30, math.inf),
        "top_k": (1.0, math.inf),
        "min_p": (0.0, 1.0),
        "truncate": (1e-30, 1.0),
        "support": (1e-30, 1.0),
        "false_accept": (0.0, 1.0),
        "false_reject": (0.0, 1.0),
        "correct": (0.0, 1.0),
        "reward_quadratic": (0.0, math.inf),
        "reward_scale": (0.0, math.inf),
        "reward_threshold": (-math.inf, math.inf),
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
        curate: str | None = None,
        candidates: int | None = None,
        reward=None,
        reward_quadratic: float | None = None,
        reward_scale: float | None = None,
        reward_threshold: float | None = None,
        verifier=None,
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
        self._set_curation(owner, curate, candidates, reward, reward_quadratic, reward_scale, reward_threshold)
        self._set_verifier(owner, verifier)
        verify = not (support is None and false_accept is None and false_reject is None and verifier is None)
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

    def _set_curation(self, owner, curate, candidates, reward, quadratic, scale, threshold) -> None:
        self.curate, self.candidates = None, None
        self.reward = self.reward_quadratic = self.reward_scale = self.reward_threshold = None
        given = {"candidates": candidates, "reward": reward, "reward_quadratic": quadratic}
        given.update(reward_scale=scale, reward_threshold=threshold)
        if curate is None:
            extra = [k for k, v in given.items() if v is not None]
            if extra:
                raise ValueError(
                    f"{owner}: {extra[0]} is given without curate=; curate must be one of {CURATION_RULES}"
                )
            return
        if curate not in CURATION_RULES:
            raise ValueError(f"{owner}: curate must be one of {CURATION_RULES}, got {curate!r}")
        self.curate = curate
        if reward is None:
            raise ValueError(f"{owner}: curate={curate!r} needs reward= (per category, or linear coefficients)")
        if is_traced(reward):
            self.reward = jnp.asarray(reward)
        else:
            arr = np.asarray(reward, dtype=np.float64) if not isinstance(reward, str) else None
            if arr is None or arr.ndim != 1 or arr.size == 0:
                raise ValueError(f"{owner}: reward must be a non-empty 1-D vector of numbers, got {reward!r}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{owner}: reward must be finite (no NaN or inf), got {arr.tolist()}")
            self.reward = jnp.asarray(arr, jnp.float32)
        if quadratic is not None:
            self.reward_quadratic = _scalar(owner, "reward_quadratic", quadratic, 0.0, math.inf, open_low=False)
        scale = 1.0 if scale is None else scale
        self.reward_scale = _scalar(owner, "reward_scale", scale, 0.0, math.inf, open_low=False)
        if curate == "threshold":
            if threshold is None:
                raise ValueError(f"{owner}: curate='threshold' needs reward_threshold= (keep r(x) >= it)")
            self.reward_threshold = _scalar(owner, "reward_threshold", threshold, -math.inf, math.inf, open_low=False)
        elif threshold is not None:
            raise ValueError(f"{owner}: reward_threshold is used by curate='threshold' only, got curate={curate!r}")
        if curate == "tilt":
            if candidates is not None:
                raise ValueError(
                    f"{owner}: curate='tilt' is the K = infinity limit (the tilted model itself); "
                    f"candidates must not be given, got {candidates!r}"
                )
            return
        if candidates is None:
            candidates = DEFAULT_CANDIDATES
        if isinstance(candidates, bool) or not isinstance(candidates, (int, np.integer)) or candidates < 1:
            raise ValueError(f"{owner}: candidates must be an int K >= 1, got {candidates!r}")
        self.candidates = int(candidates)

    def _set_verifier(self, owner, verifier) -> None:
        self.verifier_kind, self.verifier_model, self.reference = None, None, None
        if verifier is None:
            return
        if isinstance(verifier, str):
            if verifier not in VERIFIERS:
                raise ValueError(
                    f"{owner}: verifier must be None, one of {VERIFIERS} or a family whose truth is the verifier's "
                    f"knowledge, got {verifier!r}"
                )
            self.verifier_kind = verifier
            return
        if isinstance(verifier, dict):  # as describe() writes it
            from .config import build

            verifier = build("family", verifier)
        if not isinstance(verifier, AbstractFamily):
            raise TypeError(
                f"{owner}: verifier must be None, one of {VERIFIERS} or a family (cj.Gaussian(...), ...), "
                f"got {type(verifier).__name__}"
            )
        self.verifier_kind, self.verifier_model = "model", verifier

    # ---- what is present (static)
    @property
    def filters(self) -> bool:
        """Whether points are filtered (truncation, a verifier, a reward threshold)."""
        return self.truncate is not None or self.support is not None or self.curate == "threshold"

    @property
    def identity(self) -> bool:
        """Whether synthetic draws are plain draws from the fit."""
        return not self.reshapes and not self.filters and self.correct is None and not self.chooses

    @property
    def reshapes(self) -> bool:
        """Whether the sampling model differs from the fit (temperature, top-k, min-p, tilt)."""
        return self.temperature is not None or self.top_k is not None or self.min_p is not None or self.curate == "tilt"

    @property
    def chooses(self) -> bool:
        """Whether each point is chosen among K candidates by its reward (luce, top1)."""
        return self.curate in ("luce", "top1")

    @property
    def needs_points(self) -> bool:
        """Whether a step needs the synthetic points (filters, choices, corrections)."""
        return self.filters or self.chooses or self.correct is not None

    def needs_points_for(self, family: AbstractFamily) -> bool:
        """Whether a step needs the synthetic points on ``family`` (a :class:`ChoiceLaw`
        family gives curated points' law, so its choices keep the exact path)."""
        if type(self).needs_points is not Synthesis.needs_points:  # a subclass says for itself
            return self.needs_points
        chooses = self.chooses and not isinstance(family, ChoiceLaw)
        return self.filters or chooses or self.correct is not None

    @property
    def needs_reference(self) -> bool:
        """Whether the verifier needs the chain's generation-0 model (``verifier="first"``)."""
        return self.verifier_kind == "first"

    def with_reference(self, params) -> Synthesis:
        """This synthesis holding one chain's generation-0 model (``verifier="first"``)."""
        return eqx.tree_at(lambda s: s.reference, self, params, is_leaf=lambda x: x is None)

    def verifier_centre(self, family: AbstractFamily):
        """The verifier's model: ``None`` (the chain's truth), the generation-0 model
        or the given family's truth."""
        if self.verifier_kind == "first":
            if self.reference is None:
                raise ValueError(
                    "Synthesis: verifier='first' needs the chain's generation-0 model, which a run sets "
                    "(call it through cj.simulate or cj.chain_fn)"
                )
            return self.reference
        if self.verifier_kind == "model":
            return self.verifier_model.truth()
        return None

    def required(self, family: AbstractFamily | None = None) -> tuple[tuple[type, str], ...]:
        """(capability, what needs it) for every step present."""
        out: list[tuple[type, str]] = []
        if self.temperature is not None:
            out.append((Temperable, "temperature"))
        if self.top_k is not None:
            out.append((Decodable, "top_k"))
        if self.min_p is not None:
            out.append((Decodable, "min_p"))
        if self.truncate is not None:
            out.append((Scorable, "truncate"))
        if self.support is not None and not (isinstance(family, LabelVerifiable) and not isinstance(family, Scorable)):
            out.append((Scorable, "the verifier"))
        if self.curate is not None:
            out.append((Tiltable if self.curate == "tilt" else Rewardable, f"curate={self.curate!r}"))
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
            if self.verifier_kind not in (None, "truth"):
                s = min(s, 0.5)  # a verifier that is not the truth: size for half of the points being good
            rate *= min(s * (1 - fr) + (1 - s) * fa, 1 - fr)
        return rate  # (a reward threshold's pass rate is unknown before the run: its candidates= sizes it)

    def filter_candidates(self, family: AbstractFamily) -> int:
        """Candidates per synthetic slot of the filters (static: :meth:`for_run` fixes
        the automatic value; a reward threshold uses ``candidates``)."""
        if not self.filters or self.direct_truncation(family):
            return 1
        if self.oversample is not None:
            return self.oversample
        if self.curate == "threshold":
            assert self.candidates is not None  # set for every rule but tilt
            return self.candidates
        rates = (self.truncate, self.support, self.false_accept, self.false_reject)
        if any(map(is_traced, rates)):
            raise TypeError(
                f"{type(self).__name__}: its filter rates are traced values (inside jit, vmap or grad), so the "
                "number of candidates per point cannot be sized from them; give oversample=<int>"
            )
        return candidates_needed(self.design_rate(), self.run_n or 1)  # concrete values only (before tracing)

    def draws_per_point(self, family: AbstractFamily) -> int:
        """How many points one synthetic point costs to draw (filters' candidates times
        curation's choices): the memory plan's working-set factor."""
        k = self.candidates if self.chooses else 1
        return self.filter_candidates(family) * (k or 1)

    def kwargs(self) -> dict:
        """The constructor's rates as floats (``None`` where absent)."""
        return {k: None if getattr(self, k) is None else float(getattr(self, k)) for k in PRESSURES}

    def for_run(self, family: AbstractFamily, n: int) -> Synthesis:
        """The synthesis as a run of ``n`` points per generation uses it: the automatic
        ``oversample`` fixed (concrete values, before tracing). Subclasses keep their type
        and fields."""
        out = copy.copy(self)
        object.__setattr__(out, "run_n", int(n))  # static fields: eqx.tree_at cannot set them
        object.__setattr__(out, "oversample", out.filter_candidates(family))
        return out

    def describe(self, family: AbstractFamily | None = None) -> dict:
        """The constructor's arguments (``type(s)(**d)`` rebuilds it, the first key
        removed): every field that is set, traced ones as floats."""
        out: dict[str, Any] = {"synthesis": type(self).__name__}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None or f.name in ("run_n", "reference", "verifier_kind", "verifier_model"):
                continue
            if f.name == "oversample" and not (self.filters and (family is None or not self.direct_truncation(family))):
                continue
            if f.name == "oversample" and self.curate == "threshold" and v == self.candidates:
                continue
            if f.name == "reward_scale" and float(v) == 1.0:
                continue
            out[f.name] = v if isinstance(v, (str, int, float, bool)) else np.asarray(v).tolist()
        if self.verifier_kind == "first":
            out["verifier"] = "first"
        elif self.verifier_kind == "model":
            out["verifier"] = self.verifier_model.describe()
        elif self.verifier_kind == "truth":
            out["verifier"] = "truth"
        return out

    def metric_names(self, family: AbstractFamily) -> tuple[str, ...]:
        """The metrics this synthesis adds to the family's: ``accept_rate`` and
        ``shortfall`` with filters, ``verifier_rate`` (the verifier's own acceptance)
        when it shares the filter with another, ``mean_reward`` and, where the reward
        has a maximiser, ``frac_at_argmax`` with curation."""
        out: tuple[str, ...] = SYNTHESIS_METRICS if self.filters else ()
        if self.support is not None and (self.truncate is not None or self.curate == "threshold"):
            out += ("verifier_rate",)
        if self.curate is not None:
            out += ("mean_reward",)
            if isinstance(family, Rewardable) and family.reward_maximiser:
                out += ("frac_at_argmax",)
        return out

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
        if self.curate == "tilt":
            assert self.reward is not None and self.reward_scale is not None  # set with curate
            model = cast(Tiltable, family).tilt(model, self.reward, self.reward_quadratic, self.reward_scale)
        return model

    def draw_stats(self, family: AbstractFamily, key, params, m, frame=None):
        """The exact path's :meth:`draw`: statistics of ``m`` synthetic points (curated
        ones from the :class:`ChoiceLaw`'s law of a kept point)."""
        model = self.sampling_model(family, params)
        if self.chooses:
            assert self.curate is not None and self.candidates is not None and self.reward is not None
            model = cast(ChoiceLaw, family).choice_law(
                model, self.reward, self.curate, self.candidates, self.reward_scale
            )
        return cast(ExactSampler, family).sample_stats(key, model, m, frame)

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
            data = self._sample(family, stream, model, n, frame)
        if self.correct is not None:
            gamma = self.correct.astype(_float_dtype(model))
            data = cast(Correctable, family).correct(model, family.truth(), data, gamma, frame)
        return data

    def _filtered(self, family, stream, model, prev, m: int, frame):
        """The first m of ``candidates * m`` draws that pass the filters (failing
        open), and the number that passed."""
        data, accept, _ = self._candidates_passing(family, stream, model, prev, m, frame)
        return tree_take(data, first_passing(accept, m)), jnp.sum(accept.astype(jnp.int32))

    def _candidates_passing(self, family, stream, model, prev, m: int, frame):
        """The filters' ``k m`` candidates, whether each passes, and whether each
        passes the verifier (``None``: no verifier)."""
        k = self.filter_candidates(family)
        total = k * m
        data = self._sample(family, stream, model, m, frame)
        if k > 1:
            extra = self._sample(family, stream.sibling(STREAM_CANDIDATES), model, (k - 1) * m, frame)
            data = tree_concat(data, extra)
        accept, verified = self._accept(family, stream, model, prev, data, total, frame)
        return data, accept, verified

    def _sample(self, family: AbstractFamily, stream, model, m: int, frame):
        """``m`` points from ``model``; under ``"luce"`` or ``"top1"`` curation each is
        chosen among K candidates by its reward (the first candidate of every slot is
        the uncurated draw, so K = 1 is the uncurated run)."""
        if not self.chooses or self.candidates == 1:
            return family.sample(stream, model, m, frame)
        assert self.candidates is not None and self.reward is not None and self.reward_scale is not None
        k = self.candidates
        data = family.sample(stream, model, m, frame)
        extra = family.sample(stream.child(CURATE_CANDIDATES_CHILD), model, (k - 1) * m, frame)
        data = tree_concat(data, extra)  # candidate i of slot j is point i m + j
        r = cast(Rewardable, family).reward(self.reward, self.reward_quadratic, data, frame)
        r = jnp.reshape(r, (k, m))
        if self.curate == "luce":
            pick = _luce_choice(stream.child(CURATE_CHOICE_CHILD), self.reward_scale.astype(r.dtype) * r)
        else:
            pick = jnp.argmax(r, axis=0)  # the first of the highest rewards
        return tree_take(data, pick * m + jnp.arange(m))

    def _accept(self, family, stream, model, prev, data, total: int, frame) -> tuple[jax.Array, jax.Array | None]:
        dtype = _float_dtype(model)
        accept = jnp.ones((total,), bool)
        verified = None
        if self.curate == "threshold":
            assert self.reward is not None and self.reward_threshold is not None  # set with the rule
            r = cast(Rewardable, family).reward(self.reward, self.reward_quadratic, data, frame)
            accept = accept & (r >= self.reward_threshold.astype(r.dtype))
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
            good = self._good(family, stream, data, total, frame, dtype)
            p_accept = jnp.where(good, 1 - self.false_reject.astype(dtype), self.false_accept.astype(dtype))
            u = stream.sibling(STREAM_DECIDE).uniform((total,), dtype)
            verified = u < p_accept
            accept = accept & verified
        return accept, verified

    def _good(self, family, stream, data, total: int, frame, dtype) -> jax.Array:
        """Whether each point is good in the verifier's eyes (before its error rates)."""
        assert self.support is not None  # a verifier is present
        centre = self.verifier_centre(family)
        if isinstance(family, LabelVerifiable) and not isinstance(family, Scorable):
            return family.agrees(family.truth() if centre is None else centre, data, frame)
        q = self.support.astype(dtype)
        ref = stream.sibling(STREAM_REFERENCE_TRUTH)
        if centre is None:
            score = family.score_real(data, frame)
            thr = _threshold(
                q,
                family.score_real_quantile(q),
                lambda: family.score_real(family.sample_real(ref, total, frame), frame),
            )
            return score <= thr
        centre = jax.tree.map(lambda c, t: jnp.asarray(c, t.dtype), centre, family.truth())
        score = family.score(centre, data, frame)
        thr = _threshold(
            q,
            family.score_quantile(centre, q),
            lambda: family.score(centre, family.sample(ref, centre, total, frame), frame),
        )
        return score <= thr

    def metrics(self, family: AbstractFamily, key, params) -> dict[str, jax.Array]:
        """``accept_rate`` and ``shortfall`` of the next generation's draw (filters),
        ``verifier_rate``, and the curation's reward metrics under the fit ``params``."""
        dtype = _float_dtype(params)
        out: dict[str, jax.Array] = {}
        if self.curate is not None:
            assert self.reward is not None  # set with curate
            fam = cast(Rewardable, family)
            reward = self.reward.astype(dtype)
            quad = None if self.reward_quadratic is None else self.reward_quadratic.astype(dtype)
            out["mean_reward"] = fam.mean_reward(params, reward, quad)
            if fam.reward_maximiser:
                mass = fam.argmax_mass(params, reward)
                assert mass is not None  # declared by reward_maximiser
                out["frac_at_argmax"] = mass
        if not self.filters:
            return out
        if self.direct_truncation(family):
            assert self.truncate is not None  # direct_truncation implies it
            return {**out, "accept_rate": self.truncate.astype(dtype), "shortfall": jnp.zeros((), dtype)}
        # The candidates, coin flips and reference draws of this measurement come from the
        # streams of generation g + 1 (the draw it describes), never from generation g's:
        # those built this very fit, and reusing them would correlate the measurement with
        # the fit it measures (the rate of a fit trained on filtered points came out biased
        # low). Nothing of generation g + 1 enters the fit at g, so given the fit the
        # measurement is an independent draw.
        base = as_stream(key)
        stream = Stream(
            base.chain_key, base.g + 1, STREAM_PIPELINE_METRICS, base.sub, base.safe, base.context_key, base.prng
        )
        m = self.run_n or 1
        model = self.sampling_model(family, params)
        _, accept, verified = self._candidates_passing(family, stream, model, params, m, params)
        passed = jnp.sum(accept.astype(jnp.int32))
        total = self.filter_candidates(family) * m
        out["accept_rate"] = passed.astype(dtype) / total
        out["shortfall"] = (passed < m).astype(dtype)
        if "verifier_rate" in self.metric_names(family):
            assert verified is not None  # a verifier is present
            out["verifier_rate"] = jnp.mean(verified.astype(dtype))
        return out


_declare.freeze(Synthesis, ("traced_bounds",))


def _threshold(q, exact: jax.Array | None, reference_scores) -> jax.Array:
    """The q-quantile of a score: the family's closed form ``exact`` or, when it has
    none (``None``), the empirical quantile of ``reference_scores()`` (scores of
    independent draws). q = 1 gives +inf (nothing is dropped)."""
    thr = jnp.quantile(reference_scores(), q) if exact is None else exact
    return jnp.where(q >= 1, jnp.inf, thr)


def _luce_choice(stream, logits: jax.Array) -> jax.Array:
    """Per column of the (K, m) ``logits``, a row i drawn with probability
    exp(logits_i) / sum_j exp(logits_j): a weighted reservoir of size one (candidate i
    replaces the current pick with probability w_i / (w_1 + ... + w_i)), which needs
    K - 1 uniforms and K exponentials per column where the Gumbel-max trick needs K
    uniforms and 2K logarithms."""
    k, m = logits.shape
    w = jnp.exp(logits - jnp.max(logits, axis=0, keepdims=True))  # in (0, 1], the largest is 1
    u = stream.uniform((k - 1, m), logits.dtype)

    def step(i, carry):
        total, pick = carry
        total = total + w[i]
        return total, jnp.where(u[i - 1] * total < w[i], i, pick)

    _, pick = jax.lax.fori_loop(1, k, step, (w[0], jnp.zeros((m,), jnp.int32)))
    return pick


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
