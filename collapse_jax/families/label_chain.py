"""The label chain: a memoriser refitted on labels from its own previous fit
(Dohmatob, Feng, Yang, Charton, Kempe 2024, "A Tale of Tails: Model Collapse as a
Change of Scaling Laws", arXiv 2402.07043, section 3; the memoriser is Hutter's, 2021,
arXiv 2102.04074).

The model is exactly the one :func:`collapse_jax.theory.tails.label_chain_error`
describes (THEORY.md section 14.4). There are K inputs with a truth p over them, and
every input has one true label among L (L = infinity allowed). Generation g draws T
inputs i.i.d. from p. Each draw is labelled by the truth with probability
``clean_fraction`` = pi, independently, and otherwise by model g - 1's answer;
generation 0 is labelled by the truth. Model g is a lookup table: an input it saw
keeps the label of the draw it stored, and an unseen input answers a default label
drawn uniformly from the L labels once per model and input (L = infinity: always
wrong). Then E[test error of model g] = sum_i p_i e_g(i) with
e_g = r_g l + s_g (1 - pi) e_{g-1}, r_g = (1 - p_i)^T, s_g = 1 - r_g, l = 1 - 1/L.

Only whether a label is right matters: a wrong label copied stays wrong, and its
value never changes a later answer. So a fit is a table of two booleans per input
(:class:`LabelTable`: right? seen?), and a data point is an input index with a flag
saying whether its label is the true one (:class:`LabelledInputs`). The engine's n is
T. Inputs are always drawn from the truth p; only their labels come from a model.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from .._rng import MAX_PAIRS, Stream, as_stream
from .._validate import check_probs, is_traced, traced_scalar
from ._counts import _live_map
from ._protocol import AbstractFamily

SUM_TOLERANCE = 1e-6
MAX_INPUTS = 2**24  # input indices and the number of labels stay exact in float32
OPTIONAL_METRICS = ("inherited_error",)
_TOP = 0xFFFFFFFF  # the largest uint32: the priority of an empty slot


class LabelledInputs(eqx.Module):
    """Labelled draws, one per point: the input's index and whether its label is the
    true one."""

    index: Int[Array, " n"]
    correct: Bool[Array, " n"]


class LabelTable(eqx.Module):
    """A memoriser over K inputs: ``correct[i]`` whether its answer on input i is the
    true label, ``seen[i]`` whether it stored a label for input i (else its answer is
    its default label)."""

    correct: Bool[Array, " k"]
    seen: Bool[Array, " k"]


def _check_probs(probs) -> np.ndarray:
    """``probs`` as a float64 probability vector (kept as given when it sums to 1
    within 1e-6, so that ``describe`` round-trips exactly), else a TypeError/ValueError."""
    arr = check_probs("LabelChain", probs, "probs", SUM_TOLERANCE)
    if arr.size > MAX_INPUTS:
        raise ValueError(f"LabelChain: probs must be a 1-D vector of K in [1, 2^24] entries, got shape {arr.shape}")
    return arr


def _check_num_labels(num_labels) -> jax.Array:
    """L as a float32 scalar (inf for ``None`` or ``math.inf``), else a TypeError/ValueError."""
    if is_traced(num_labels):
        return jnp.asarray(num_labels, jnp.float32)
    if num_labels is None or (
        isinstance(num_labels, (float, np.floating)) and math.isinf(num_labels) and num_labels > 0
    ):
        return jnp.asarray(math.inf, jnp.float32)
    if isinstance(num_labels, bool) or not isinstance(num_labels, (int, np.integer)):
        raise TypeError(
            f"LabelChain: num_labels must be an int in [2, 2^24], or None (infinitely many labels: an unseen "
            f"input is always wrong), got {num_labels!r}"
        )
    if not 2 <= num_labels <= MAX_INPUTS:
        raise ValueError(f"LabelChain: num_labels must be an int in [2, 2^24] or None, got {num_labels!r}")
    return jnp.asarray(float(num_labels), jnp.float32)


def _check_size(where: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"LabelChain.{where}: n must be an int >= 1 (it sets a shape), got {n!r}")
    if not 1 <= n <= MAX_PAIRS:
        raise ValueError(f"LabelChain.{where}: n must be an int in [1, 2^24], got {n}")
    return int(n)


class LabelChain(AbstractFamily):
    """Hutter's memoriser relabelled by its own previous fit: the label chain of
    Dohmatob et al. 2024 ("A Tale of Tails", section 3), exactly the model of
    :func:`collapse_jax.theory.tails.label_chain_error`.

    Args:
        probs: the truth p over the K inputs, a 1-D vector of K in [1, 2^24]
            non-negative numbers summing to 1 (tolerance 1e-6; kept as given, and the
            sampler normalises by the total). An input with p_i = 0 is never drawn.
            :meth:`zipf` builds p_i proportional to i^-beta.
        num_labels: L, the number of labels: an int in [2, 2^24], or ``None`` (or
            ``math.inf``) for infinitely many, when an unseen input is always wrong.
            An unseen input answers a default label drawn uniformly from the L labels
            once per model and input, so it is right with probability 1/L (traced:
            sweepable over finite values in [2, 2^24], as a sweep takes finite numbers).
        clean_fraction: pi in [0, 1], the probability that a model draw is labelled
            by the truth instead of by the previous model, independently per draw
            (the theory's clean share; traced: sweepable).
        num_inputs: K, checked against ``probs`` when given.

    Data (:class:`LabelledInputs`): n draws, each an input index (int32) drawn from
    p and a flag (bool) whether its label is the true one. :meth:`sample` labels a
    draw by the truth with probability pi and otherwise by the model's table;
    :meth:`sample_real` labels every draw by the truth. Params (:class:`LabelTable`):
    per input, whether the model's answer is right and whether it saw the input.
    :meth:`truth` is the all-right, all-seen table.

    The fit stores, for every input, the label of ONE of its draws of positive weight,
    chosen uniformly at random (the smallest of independent 64-bit random keys, one
    per draw, from the fit's stream): the first draw in a uniformly random time
    order. The theory's "first draw" may be any rule that picks a draw independently
    of the labels; the slot order of a training set is not such a rule (FreshMix puts
    its real points first, and "first slot" would then store a clean label whenever
    any real draw hit the input). Weights only mark empty slots (zero): a memoriser
    stores a label, it does not average, so positive weights are all alike and
    ``Weighted`` is refused. Every unseen input gets its default label then.

    Metrics (scalars per chain): ``test_error`` sum_i p_i [answer_i wrong], the exact
    test error under the truth of the generation's table; ``seen_mass`` sum_i p_i
    [input i seen]. Optional (named in ``metrics=``): ``inherited_error`` sum_i p_i
    [seen and wrong], the error copied from earlier generations (test_error minus
    the unseen inputs' default errors).

    Regimes (E = :func:`~collapse_jax.theory.tails.label_chain_error`, r =
    floor(rho n + 1/2)):

      * ``Replace``: E[test_error at g] = E(g, n, probs, num_labels=L,
        clean_fraction=pi), the theory exactly.
      * ``FreshMix(real_fraction=rho)``: the same with the effective clean share
        pi_eff = r/n + (1 - r/n) pi. Proof: the input of a draw is i.i.d. from p
        whatever its source, so input i is seen with probability 1 - (1 - p_i)^n;
        given that it was hit N >= 1 times, which N of the n slots hit it is a
        uniform N-subset, so the stored (uniformly chosen) draw is a real one with
        probability E[R/N | N] = r/n, and a model draw is clean with probability pi;
        a model draw is otherwise right iff model g - 1 is, independently of
        generation g's draws. Only the mean matches: the per-draw Bernoulli and the
        fixed real count give the per-input errors different correlations, so the
        spread of test_error over chains differs slightly.
      * ``Schedule(sizes)``: T_g = sizes[g] (the theory's schedule form).
      * ``Accumulate``, ``AccumulateSubsample``, ``RetainOriginal`` run (a memoriser
        over the pooled or retained points), with no closed form here.

    Float precision: a uniform of the run's dtype (a 2^-23 grid in float32) is
    compared with pi and 1/L, so each is rounded to that grid (an error below 6e-8
    in float32); two draws of one input tie on their 64-bit keys with probability
    below n^2 2^-64.
    """

    num_inputs: int = eqx.field(static=True)
    probs: Float[Array, " k"]
    num_labels: Float[Array, ""]
    clean_fraction: Float[Array, ""]

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "num_labels": (2.0, float(MAX_INPUTS)),
        "clean_fraction": (0.0, 1.0),
    }
    optional_metrics: ClassVar[tuple[str, ...]] = OPTIONAL_METRICS

    def __init__(self, probs, num_labels: int | None = None, *, clean_fraction: float = 0.0, num_inputs=None):
        p = _check_probs(probs)
        if num_inputs is not None and (
            isinstance(num_inputs, bool) or not isinstance(num_inputs, (int, np.integer)) or num_inputs != p.size
        ):
            raise ValueError(f"LabelChain: num_inputs (K) = {num_inputs!r} but probs has {p.size} entries")
        self.num_inputs = int(p.size)
        self.probs = jnp.asarray(p, jnp.float32)
        self.num_labels = _check_num_labels(num_labels)
        self.clean_fraction = traced_scalar("LabelChain", "clean_fraction", clean_fraction, 0.0, 1.0)

    @classmethod
    def zipf(cls, beta: float, num_inputs: int, **kwargs) -> LabelChain:
        """A Zipf truth over ranks 1..K: p_i = i^-beta / H_{K,beta} (beta > 0, K =
        ``num_inputs`` in [1, 2^24]), the same law as
        :func:`collapse_jax.theory.tails.zipf_probs`. ``kwargs`` as the constructor.

        Examples:
            >>> from collapse_jax.families.label_chain import LabelChain
            >>> fam = LabelChain.zipf(1.5, 1000, num_labels=10)
            >>> fam.num_inputs, round(float(fam.probs[0]), 4)
            (1000, 0.3923)
        """
        if isinstance(num_inputs, bool) or not isinstance(num_inputs, (int, np.integer)):
            raise TypeError(f"LabelChain.zipf: num_inputs (K) must be an int in [1, 2^24], got {num_inputs!r}")
        if not 1 <= num_inputs <= MAX_INPUTS:
            raise ValueError(f"LabelChain.zipf: num_inputs (K) must be an int in [1, 2^24], got {num_inputs!r}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
            raise TypeError(f"LabelChain.zipf: beta must be a finite number > 0, got {beta!r}")
        if not (math.isfinite(float(beta)) and float(beta) > 0):
            raise ValueError(f"LabelChain.zipf: beta must be a finite number > 0, got {beta!r}")
        w = np.arange(1, int(num_inputs) + 1, dtype=np.float64) ** -float(beta)
        return cls(w / w.sum(), **kwargs)

    def config_arg(self, name: str):
        if name == "num_labels":
            labels = float(self.num_labels)
            return None if math.isinf(labels) else int(labels)
        return super().config_arg(name)

    def validate_regime(self, regime, n: int, exact: bool) -> None:
        from ..regimes import Weighted

        if isinstance(regime, Weighted):
            raise ValueError(
                "LabelChain: Weighted weighs real against synthetic points, but a memoriser stores one draw's label "
                "per input and ignores the size of a weight; use FreshMix (a fixed real share) or clean_fraction "
                "(a per-draw clean share)"
            )

    # ------------------------------------------------------------------ basics
    def truth(self) -> LabelTable:
        ones = jnp.ones((self.num_inputs,), bool)
        return LabelTable(correct=ones, seen=ones)

    def min_points(self) -> int:
        return 1

    # ------------------------------------------------------------------ sample / fit
    def _inputs(self, key: Stream, n: int) -> Int[Array, " n"]:
        """n i.i.d. inputs from the truth p (inversion of the CDF, as Categorical's
        sampler: an input with p_i = 0 is never drawn)."""
        p = jnp.maximum(self.probs, 0)
        cdf = jnp.cumsum(p)
        u = key.child(0).uniform((n,), p.dtype)
        idx = jnp.searchsorted(cdf, u * cdf[-1], side="right")
        return _live_map(p)[jnp.minimum(idx, self.num_inputs - 1)]

    def sample(self, key, params: LabelTable, n: int, frame=None) -> LabelledInputs:
        """n draws: inputs i.i.d. from the truth, each labelled by the truth with
        probability ``clean_fraction`` (independently) and otherwise by ``params``'s
        answer (``frame`` is ignored)."""
        n = _check_size("sample", n)
        key = as_stream(key)
        idx = self._inputs(key, n)
        clean = key.child(1).uniform((n,), self.probs.dtype) < self.clean_fraction.astype(self.probs.dtype)
        return LabelledInputs(idx, clean | params.correct[idx])

    def sample_real(self, key, n: int, frame=None) -> LabelledInputs:
        """n draws labelled by the truth (the same inputs as :meth:`sample` on the same key)."""
        n = _check_size("sample_real", n)
        return LabelledInputs(self._inputs(as_stream(key), n), jnp.ones((n,), bool))

    def fit(self, key, data: LabelledInputs, weights, frame=None) -> LabelTable:
        """The memoriser of ``data``: per input, the label of one of its draws of
        positive weight chosen uniformly at random (the smallest 64-bit key, compared
        as two uint32 words), else a default label, right with probability 1/L."""
        key = as_stream(key)
        k = self.num_inputs
        n = data.index.shape[0]
        live = jnp.ones((n,), bool) if weights is None else weights > 0
        idx = jnp.where(live, jnp.clip(data.index, 0, k - 1), 0)
        top = jnp.uint32(_TOP)
        hi = jnp.where(live, key.child(0).bits(n), top)
        best_hi = jnp.full((k,), top).at[idx].min(hi)
        first = live & (hi == best_hi[idx])
        lo = jnp.where(first, key.child(1).bits(n), top)
        best_lo = jnp.full((k,), top).at[idx].min(lo)
        chosen = first & (lo == best_lo[idx])
        seen = jnp.zeros((k,), bool).at[idx].max(live)
        stored = jnp.zeros((k,), bool).at[idx].max(chosen & data.correct)
        dtype = self.probs.dtype
        default = key.child(2).uniform((k,), dtype) * self.num_labels.astype(dtype) < 1  # L = inf: never right
        return LabelTable(correct=jnp.where(seen, stored, default), seen=seen)

    # ------------------------------------------------------------------ metrics
    def metrics(self, key, params: LabelTable) -> dict[str, jax.Array]:
        p = self.probs
        wrong = ~params.correct
        return {
            "test_error": jnp.sum(jnp.where(wrong, p, 0)),
            "seen_mass": jnp.sum(jnp.where(params.seen, p, 0)),
            "inherited_error": jnp.sum(jnp.where(wrong & params.seen, p, 0)),
        }
