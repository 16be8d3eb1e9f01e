"""The categorical family: K categories refitted by their empirical frequencies
(Wright-Fisher drift; Shumailov et al. 2024, Nature 631, 755-759, discrete model;
Seddik et al. 2024, arXiv 2404.05090).

Each generation draws n points from the fitted frequencies and refits, so under
``Replace`` the counts are a neutral haploid Wright-Fisher population of size n
(Ewens 2004, "Mathematical Population Genetics", ch. 3): every category is a
martingale, a category that reaches 0 never comes back (tail disappearance), and
the chain ends with one category holding all the mass.

Params are the probability vector itself, shape (K,). The counts are sufficient:
the family implements the sufficient-statistics protocol (statistics = the
weighted counts, shape (K,)), so every regime runs exactly on counts, and
``AccumulateSubsample`` draws the counts of its uniform n-subset from a
multivariate hypergeometric law (:meth:`Categorical.subsample_stats`) instead of
storing every point.
"""

from __future__ import annotations

import copy
import math
from typing import ClassVar, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._rng import MAX_PAIRS, as_stream, words_per_number
from .._validate import check_probs, traced_scalar
from ..data import Empirical, label_metrics
from ._counts import (
    BUCKETED_MIN_K,
    _inverse_cdf_bucketed,
    _live_map,
    _multinomial,
    _multivariate_hypergeometric,
)
from ._ondata import OnData, as_data, sized_for_run
from ._options import Sampler
from ._protocol import ChoiceLaw, Combinable, Decodable, ExactSampler, Scorable, SubsampleStats, Temperable, Tiltable

SAMPLERS: tuple[Sampler, ...] = get_args(Sampler)
SUM_TOLERANCE = 1e-6
CHOICE_NODES = 256  # trapezoid nodes of the Luce choice law's integral
CHOICE_BLOCK = 16  # nodes evaluated together
MAX_TRAIN_SIZE = 2**40  # the memoriser's T: (1 - q)^T is computed as exp(T log1p(-q))
OPTIONAL_METRICS = (
    "missing_mass",
    "support_size",
    "good_turing",
    "kl_to_truth",
    "cross_entropy",
    "l1_to_truth",
    "fixed_category",
    "memoriser_error",
)


def _check_probs(probs, name: str = "probs") -> np.ndarray:
    """``probs`` as a float64 probability vector, renormalised exactly, else a TypeError/ValueError."""
    arr = check_probs("Categorical", probs, name, SUM_TOLERANCE)
    return arr / arr.sum()


def _check_unit(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"Categorical: {name} must be a number in [0, 1], got {value!r}")
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"Categorical: {name} must lie in [0, 1], got {value!r}")
    return v


def _check_train_sizes(train_sizes) -> tuple[int, ...]:
    """The memoriser's training sizes T: ints in [1, 2^40], strictly increasing."""
    try:
        sizes = tuple(train_sizes)
    except TypeError:
        raise TypeError(f"Categorical: train_sizes must be a sequence of ints >= 1, got {train_sizes!r}") from None
    out = []
    for t in sizes:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= MAX_TRAIN_SIZE:
            raise ValueError(f"Categorical: train_sizes must hold ints in [1, 2^40], got {t!r} in {train_sizes!r}")
        out.append(int(t))
    if any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"Categorical: train_sizes must be strictly increasing, got {out}")
    return tuple(out)


def _check_size(where: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"Categorical.{where}: n must be an int >= 1 (it sets a shape), got {n!r}")
    if n < 1:
        raise ValueError(f"Categorical.{where}: n must be >= 1, got {n}")
    return int(n)


class Categorical(
    OnData, ExactSampler, SubsampleStats, Combinable, Temperable, Decodable, Scorable, Tiltable, ChoiceLaw
):
    """A categorical distribution over K categories, refitted by (weighted) empirical
    frequencies: n draws from the fitted frequencies each generation.

    Args:
        probs: the truth p_0, a 1-D vector of K >= 1 non-negative numbers summing
            to 1 (tolerance 1e-6; renormalised exactly). Zeros are allowed: such
            categories are never drawn and never count as extinct.
        rare_below: the ``rare_mass`` metric sums the fitted mass of the categories
            whose TRUE probability is < rare_below (traced: sweepable in [0, 1]).
        sampler: ``"samples"`` draws the n category indices (int32) of every batch
            by inversion of the fitted CDF, O(n log K); ``"exact"`` draws their
            counts directly, Multinomial(m, p) as conditional binomials down a
            binary tree over the categories (ceil(log2 K) levels of K/2
            ``jax.random.binomial`` draws), O(K log K) whatever n: it pays off when
            n >> K (for K of the order of n the sample path is faster), and its
            binomial sampler adds a few seconds of compilation. Only for regimes
            that never need the points (not RetainOriginal, nor Weighted with
            combine="samples").
        num_categories: K, checked against ``probs`` when given.
        start: a generator that is not a fit (a probability vector over the same K
            categories, e.g. :meth:`cut`): generation 0 IS this model instead of a
            fit to n real draws; every later generation fits draws from its
            predecessor as usual (Dohmatob et al. 2024, "A Tale of Tails", Theorems
            2.1 and 3.2: data from a cut Zipf). Real draws still come from ``probs``.
        train_sizes: the memoriser's training sizes T (strictly increasing ints:
            the ``memoriser_error`` metric, one entry per T along dim ``train_size``).
        clean_fraction: pi in [0, 1], the share of clean (truth) draws in the
            memoriser's training data (traced: sweepable).
        smoothing: eps in (0, 1], the additive smoothing of ``kl_to_truth`` and
            ``cross_entropy``: the fit is scored as (p + eps) / (1 + K eps), so a lost
            category costs about log(1/eps) nats instead of infinity (traced).
        data: a :class:`~collapse_jax.Empirical` with integer labels 0..L-1 as the
            truth (``probs`` left unset): real points are the labels of its training
            pool's rows (:mod:`collapse_jax.data`), p_0 their frequencies in the pool;
            adds ``test_nll`` (smoothed as ``cross_entropy``) and ``test_tv`` on the
            test split's labels (:func:`~collapse_jax.data.label_metrics`). Samples
            path only.

    Data are category indices, shape (points,), int32; weights are importance
    weights. Statistics are the weighted counts, shape (K,), in the float dtype of
    the run: in float32 they stay exact integers while a pooled total is < 2^24
    (``Accumulate``: n (G + 1) < 16.7 million); use ``dtype="float64"`` beyond.
    A count of 0 stays exactly 0, so extinction is never blurred by rounding.

    Metrics (scalars per chain): ``collision_probability`` sum_k p_k^2 (Seddik et
    al.'s S); ``entropy`` -sum_k p_k log p_k in nats (0 log 0 = 0);
    ``extinct`` the number of categories alive in the truth (p_0k > 0) whose fitted
    probability is exactly 0, as a float; ``rare_mass`` the fitted mass of the
    categories with p_0k < rare_below (Shumailov et al.'s tails, which vanish
    first).

    Optional metrics, computed only when a run names them (``metrics=[...]`` or
    ``metrics="all"``), so a default run pays nothing for them:

      * ``missing_mass``: the truth's probability on the categories the fit gives 0,
        sum_k p_0k [p_k = 0], the mass no later generation can produce again under
        Replace (Dohmatob et al. 2024; Suresh et al. 2024);
      * ``support_size``: the number of categories with p_k > 0;
      * ``good_turing``: the Good-Turing estimate N_1 / n of the missing mass of the
        fit's own sample (N_1: categories seen exactly once; Good 1953), what a
        practitioner without the truth would estimate. Only where every fit is the
        frequencies of exactly n unit-weight points (Replace, FreshMix,
        RetainOriginal, AccumulateSubsample), absent otherwise; meaningless at
        generation 0 when ``start`` is given;
      * ``kl_to_truth`` KL(p_0 || p_eps) and ``cross_entropy`` -sum_k p_0k log p_eps,k,
        in nats, with p_eps = (p + eps) / (1 + K eps) (``smoothing``);
      * ``l1_to_truth``: sum_k abs(p_k - p_0k) (twice the total-variation distance);
      * ``fixed_category``: the category holding all the mass, or -1 while none does
        (which category the ``fixation`` event fixed; Seddik et al. 2024);
      * ``memoriser_error`` (dim ``train_size``, one entry per T of ``train_sizes``):
        the test error under the truth of a memoriser trained on T draws from
        q = pi p_0 + (1 - pi) p (Hutter's memoriser in Dohmatob et al. 2024): it errs
        exactly on the inputs it never saw, so its error averaged over the T draws
        is sum_k p_0k (1 - q_k)^T, computed exactly given the generation's fit (only
        the fit is random: a Rao-Blackwellised Monte Carlo over chains).

    Events: ``extinction`` the first generation at which a category alive in the
    truth has fitted probability 0; ``fixation`` the first generation at which one
    category holds all the mass.

    Regimes: every regime runs on counts. ``Accumulate`` pools them (exact,
    constant memory). ``AccumulateSubsample`` uses the :meth:`subsample_stats`
    hook: the counts of the uniform n-subset of the pool are one multivariate
    hypergeometric draw, O((n + K) log K) per generation whatever the generation
    (the point buffer costs O((G + 1) n) memory and a top-k over all points), and
    it also runs with ``sampler="exact"``. ``Weighted(combine="estimates")``
    averages probability vectors, w p_real + (1 - w) p_synth; ``"samples"`` fits
    the per-point weights w/n and (1 - w)/m, which for frequencies is the same
    estimator.
    """

    num_categories: int = eqx.field(static=True)
    sampler: Sampler = eqx.field(static=True)
    train_sizes: tuple[int, ...] = eqx.field(static=True)
    fit_points: int = eqx.field(static=True)
    probs: Float[Array, " k"]
    rare_below: Float[Array, ""]
    smoothing: Float[Array, ""]
    clean_fraction: Float[Array, ""]
    start: Float[Array, " k"] | None
    data: Empirical | None
    _data_first: int = eqx.field(static=True)

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "rare_below": (0.0, 1.0),
        "smoothing": (1e-30, 1.0),
        "clean_fraction": (0.0, 1.0),
    }
    optional_metrics: ClassVar[tuple[str, ...]] = OPTIONAL_METRICS
    metric_dims: ClassVar[dict[str, tuple[str, ...]]] = {"memoriser_error": ("train_size",)}
    data_truth_args: ClassVar[tuple[str, ...]] = ("probs",)  # with data=: the labels' frequencies

    def __init__(
        self,
        probs=None,
        rare_below: float = 0.05,
        *,
        sampler: Sampler = "samples",
        num_categories: int | None = None,
        start=None,
        train_sizes=(),
        clean_fraction: float = 0.0,
        smoothing: float = 1e-6,
        data=None,
    ):
        data = as_data("Categorical", data)
        if data is not None:
            if probs is not None:
                raise ValueError("Categorical: with data=, the truth is the labels' frequencies; leave probs unset")
            if sampler != "samples":
                raise ValueError(
                    "Categorical: data= needs sampler='samples' (a data set's labels are drawn row by row), "
                    f"got {sampler!r}"
                )
            k = data.num_labels  # checks there are labels, integers 0..L-1
            labels = np.asarray(data.y, np.int64)
            probs = np.bincount(labels, minlength=k) / labels.size
        elif probs is None:
            raise TypeError("Categorical: give probs (the truth) or data= (a cj.Empirical with labels)")
        p = _check_probs(probs)
        if num_categories is not None and num_categories != p.size:
            raise ValueError(f"Categorical: num_categories={num_categories!r} but probs has {p.size} entries")
        rb = _check_unit("rare_below", rare_below)
        if sampler not in SAMPLERS:
            raise ValueError(f"Categorical: sampler must be one of {SAMPLERS}, got {sampler!r}")
        self.num_categories = int(p.size)
        self.sampler = sampler
        self.train_sizes = _check_train_sizes(train_sizes)
        self.fit_points = 0
        self.probs = jnp.asarray(p, dtype=jnp.float32)
        self.rare_below = jnp.asarray(rb, dtype=jnp.float32)
        self.smoothing = traced_scalar("Categorical", "smoothing", smoothing, 0.0, 1.0, open_low=True)
        self.clean_fraction = traced_scalar("Categorical", "clean_fraction", clean_fraction, 0.0, 1.0)
        self.start = None
        if start is not None:
            q = _check_probs(start, "start")
            if q.size != p.size:
                raise ValueError(f"Categorical: start must have K = {p.size} entries like probs, got {q.size}")
            self.start = jnp.asarray(q, dtype=jnp.float32)
        self.data = data
        self._data_first = 0

    @classmethod
    def zipf(cls, beta: float, num_categories: int, **kwargs) -> Categorical:
        """A Zipf truth over ranks 1..K: p_k proportional to k^-beta (beta > 0; the
        law of word frequencies, beta near 1, and of the tails in Dohmatob et al.,
        "A Tale of Tails", 2024). ``kwargs`` as the constructor (``rare_below``,
        ``sampler``).

        Examples:
            >>> import collapse_jax as cj
            >>> fam = cj.Categorical.zipf(1.5, 1000)
            >>> fam.num_categories, round(float(fam.probs[0]), 4)
            (1000, 0.3923)
        """
        return cls(zipf_probs(beta, num_categories), **kwargs)

    @classmethod
    def from_wordfreq(cls, lang: str = "en", num_categories: int = 10_000, **kwargs) -> Categorical:
        """A truth from the word frequencies of a language: the ``num_categories``
        most frequent words of ``lang`` in the ``wordfreq`` package's shipped tables
        (Speer et al., wordfreq, "large" list where it exists, else "best"),
        renormalised over those words (p_k ~ the k-th word's frequency). Needs the
        ``wordfreq`` extra: ``pip install "collapse-jax[wordfreq]"``. The words
        themselves are :func:`wordfreq_words` (same order)."""
        return cls(wordfreq_probs(lang, num_categories), **kwargs)

    def cut(self, k: int) -> jax.Array:
        """The truth with its tail cut at rank ``k`` (Dohmatob et al. 2024, "A Tale of
        Tails", section 2: the k most probable categories, renormalised), as a
        probability vector: pass it as ``start=`` for a chain whose generation 0 is
        the cut model. Ties at the k-th probability are broken by index."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self.num_categories:
            raise ValueError(f"Categorical.cut: k must be an int in [1, {self.num_categories}], got {k!r}")
        p = np.asarray(self.probs, dtype=np.float64)
        keep = np.zeros(p.size, bool)
        keep[np.argsort(-p, kind="stable")[: int(k)]] = True
        q = np.where(keep, p, 0.0)
        return jnp.asarray(q / q.sum(), jnp.float32)

    def config_arg(self, name: str):
        if name == "start":
            return None if self.start is None else np.asarray(self.start, np.float64)
        return super().config_arg(name)

    def for_run(self, regime, n: int, generations: int) -> Categorical:
        """The family as a run uses it: ``fit_points`` is n where every fit is the
        frequencies of exactly n unit-weight points (Replace, FreshMix,
        RetainOriginal, AccumulateSubsample), which the ``good_turing`` metric needs;
        0 otherwise (then the metric is absent)."""
        from ..regimes import AccumulateSubsample, FreshMix, Replace, RetainOriginal

        points = n if type(regime) in (Replace, FreshMix, RetainOriginal, AccumulateSubsample) else 0
        out = copy.copy(self)
        object.__setattr__(out, "fit_points", int(points))  # static field
        return sized_for_run(out, n)

    def sample_real(self, key, n: int, frame=None) -> Int[Array, " n"]:
        """``n`` real points: draws from the truth, or labels of the data set's rows."""
        if self.data is None:
            return self.sample(key, self.truth(), n, frame)
        return self.data.draw_y(key, n, self._data_first or None).astype(jnp.int32)

    def initial_model(self) -> Float[Array, " k"] | None:
        """``start`` (a generator that is not a fit), else ``None``."""
        return self.start

    # ------------------------------------------------------------------ basics
    def truth(self) -> Float[Array, " k"]:
        return self.probs

    def min_points(self) -> int:
        return 1

    # ------------------------------------------------------------------ sample / fit
    def sample(self, key, params: Float[Array, " k"], n: int, frame=None) -> Int[Array, " n"]:
        """``n`` i.i.d. category indices (int32) from ``params`` (``frame`` is ignored).

        Inversion of the CDF with uniforms on the open interval (0, 1) (a 2^-23
        grid in float32, 2^-52 in float64). A category with probability exactly 0
        is never drawn, whatever the rounding of the cumulative sum: an index that
        lands on one is moved to the next live category (it can only land there
        by a rounding of the CDF, with probability at most a few ulp). From
        K = 1024 categories on, the search runs through a guide table over the live
        categories (:func:`_inverse_cdf_bucketed`), about 1.5x faster at K = n = 10^5
        in a whole run (docs/benchmarks.md, "Tails"): the same inversion, so the same
        law; only the CDF's float32 rounding (XLA compiles the two searches'
        cumulative sums apart) moves about 1 draw in 10^4 to a neighbouring
        category compared with a plain binary search.
        """
        n = _check_size("sample", n)
        if n * words_per_number(params.dtype) > 2 * MAX_PAIRS:  # Stream.uniform does not check this itself
            raise ValueError(f"Categorical.sample: at most {2 * MAX_PAIRS} words per stream, got n={n}")
        p = jnp.maximum(params, 0)
        u = as_stream(key).uniform((n,), p.dtype)
        if self.num_categories >= BUCKETED_MIN_K:  # the same indices, found faster (_inverse_cdf_bucketed)
            return _inverse_cdf_bucketed(p, u)
        cdf = jnp.cumsum(p)
        idx = jnp.searchsorted(cdf, u * cdf[-1], side="right")
        return _live_map(p)[jnp.minimum(idx, self.num_categories - 1)]

    def data_stats(self, data, weights) -> Float[Array, " k"]:
        """Weighted counts per category, shape (K,). Zero-weight slots may hold any
        index (even out of range): they contribute nothing."""
        dtype = self.probs.dtype
        w = jnp.ones(data.shape[:1], dtype) if weights is None else weights.astype(dtype)
        live = w > 0
        idx = jnp.clip(jnp.where(live, data, 0), 0, self.num_categories - 1)
        return jnp.zeros((self.num_categories,), dtype).at[idx].add(jnp.where(live, w, 0))

    def merge_stats(self, a, b) -> Float[Array, " k"]:
        return a + b

    def fit_stats(self, stats, frame=None) -> Float[Array, " k"]:
        """Frequencies counts / total (the MLE)."""
        total = jnp.sum(stats)
        return stats / jnp.where(total > 0, total, 1)

    def fit(self, key, data, weights, frame=None) -> Float[Array, " k"]:
        return self.fit_stats(self.data_stats(data, weights))

    def sample_stats(self, key, params: Float[Array, " k"], m, frame=None) -> Float[Array, " k"]:
        """Counts of ``m`` draws from ``params``: Multinomial(m, params), exactly.

        A multinomial is a sequence of conditional binomials. Here they run down a
        binary tree over the (zero-padded) categories: a node holding c draws gives
        Binomial(c, a / (a + b)) of them to its left subtree (masses a and b), one
        vectorised ``jax.random.binomial`` per level (exact: inversion for c q <= 10,
        Hormann's 1993 BTRS rejection otherwise): ceil(log2 K) levels of 2^(L-1)
        binomials (:func:`_multinomial`), whatever m. A subtree of mass 0 gets
        exactly 0 draws. ``m`` may be traced (a FreshMix split); m = 0 gives zero
        counts.
        """
        dtype = params.dtype
        key = as_stream(key).key()
        return _multinomial(key, jnp.asarray(m, dtype), jnp.maximum(params, 0), self.num_categories)

    def subsample_stats(self, key, stats, n: int) -> Float[Array, " k"]:
        """Counts of a uniform n-subset, without replacement, of the points behind
        the pooled counts ``stats`` (the ``SubsampleStats`` capability, for ``AccumulateSubsample``): a
        multivariate hypergeometric draw, exactly.

        Conditional univariate hypergeometrics down a binary tree over the
        categories (:func:`_multivariate_hypergeometric`): a node whose subtree
        receives c of the n draws gives Hypergeometric(N_left good, N_right bad, c)
        of them to its left subtree, each drawn by inversion of its CDF
        (:func:`_hypergeometric_level`). The draws of a level sum to n, so a level
        costs O(n + K/2): O((n + K) log K) per call, no rejection loop, against the
        point buffer's O((G + 1) n) memory and top-k over (G + 1) n points per
        generation. Assumes integer counts with total >= n (true for the regime's
        pool).
        """
        n = _check_size("subsample_stats", n)
        return _multivariate_hypergeometric(as_stream(key), stats, n, self.num_categories)

    # ------------------------------------------------------------------ weighted mixing
    def combine(self, p_real, p_synth, w) -> Float[Array, " k"]:
        """w p_real + (1 - w) p_synth (He, Xu, Cheng, arXiv 2502.18049, "estimates")."""
        w = jnp.asarray(w, p_real.dtype)
        return w * p_real + (1 - w) * p_synth

    # ------------------------------------------------------------------ pressures (collapse_jax.Pressured)
    def temper(self, params: Float[Array, " k"], tau) -> Float[Array, " k"]:
        """p^(1/tau) renormalised (tau = 1: ``params`` unchanged, bit for bit; a
        category with probability 0 stays at 0)."""
        pos = params > 0
        logp = jnp.where(pos, jnp.log(jnp.where(pos, params, 1)), -jnp.inf) / tau
        w = jnp.exp(logp - jnp.max(logp))
        return jnp.where(tau == 1, params, w / jnp.sum(w))

    def top_k(self, params: Float[Array, " k"], k) -> Float[Array, " k"]:
        """The k most probable categories, renormalised (synthesis ``top_k``):
        every category with probability >= the k-th largest is kept (ties with the
        k-th are kept too, so the choice never depends on the order of ties)."""
        kk = jnp.clip(jnp.asarray(k, jnp.int32), 1, self.num_categories)
        kth = jnp.sort(params)[self.num_categories - kk]
        kept = jnp.where((params >= kth) & (params > 0), params, 0)
        return kept / jnp.sum(kept)

    def min_p(self, params: Float[Array, " k"], ratio) -> Float[Array, " k"]:
        """The categories with probability >= ``ratio`` times the largest,
        renormalised (synthesis ``min_p``; ratio 0 keeps every live category)."""
        kept = jnp.where((params >= ratio * jnp.max(params)) & (params > 0), params, 0)
        return kept / jnp.sum(kept)

    def score(self, params: Float[Array, " k"], data, frame=None) -> jax.Array:
        """-log p of each drawn category."""
        p = jnp.take(params, jnp.clip(data, 0, self.num_categories - 1))
        return -jnp.log(p)

    def score_quantile(self, params: Float[Array, " k"], q) -> jax.Array:
        """The nucleus ("top-p") threshold: -log of the smallest probability in the
        smallest set of most probable categories whose mass reaches q (categories
        tied with it are kept as well)."""
        p = jnp.sort(params)[::-1]
        mass = jnp.cumsum(p) / jnp.sum(p)
        j = jnp.minimum(jnp.sum(mass < jnp.asarray(q, p.dtype)), self.num_categories - 1)
        return -jnp.log(p[j])

    # ------------------------------------------------------------------ curation (synthesis curate=)
    reward_maximiser: ClassVar[bool] = True

    def check_reward(self, reward: np.ndarray, quadratic: float | None) -> None:
        """One reward per category; no quadratic term."""
        if reward.shape != (self.num_categories,):
            raise ValueError(
                f"Categorical: reward must have one entry per category, shape ({self.num_categories},), "
                f"got shape {reward.shape}"
            )
        if quadratic is not None:
            raise ValueError("Categorical: reward_quadratic applies to continuous families only; leave it None")

    def reward(self, reward, quadratic, data, frame=None) -> jax.Array:
        """The drawn categories' rewards r[x]."""
        return jnp.take(reward, jnp.clip(data, 0, self.num_categories - 1))

    def mean_reward(self, params: Float[Array, " k"], reward, quadratic) -> jax.Array:
        """sum_k p_k r_k."""
        return jnp.sum(params * reward.astype(params.dtype))

    def argmax_mass(self, params: Float[Array, " k"], reward) -> jax.Array:
        """p at the reward's maximiser (the first one when several tie)."""
        return params[jnp.argmax(reward)]

    def tilt(self, params: Float[Array, " k"], reward, quadratic, scale) -> Float[Array, " k"]:
        """p_k exp(beta r_k) renormalised (a category with probability 0 stays at 0)."""
        pos = params > 0
        logw = jnp.where(pos, jnp.log(jnp.where(pos, params, 1)) + scale * reward.astype(params.dtype), -jnp.inf)
        w = jnp.exp(logw - jnp.max(logw))
        return w / jnp.sum(w)

    def choice_law(self, params: Float[Array, " k"], reward, rule: str, candidates: int, scale) -> Float[Array, " k"]:
        """The law q of the category that ``rule`` keeps of K i.i.d. draws from p (the
        exact path of ``curate="luce"`` and ``"top1"``; THEORY.md section 17.1).

        ``"top1"``: with F(<=) and F(<) the model's mass at rewards up to and below
        r_k, q_k = p_k sum_{i<K} F(<=)^i F(<)^(K-1-i), which is (p_k / P(r = r_k))
        (F(<=)^K - F(<)^K) without the cancellation (exact; ties share their level in
        proportion to p). ``"luce"``: with w_k = exp(beta r_k), q_k = K p_k w_k
        E[1 / (w_k + S)], S the sum of the other K - 1 candidates' weights, and
        1/a = int_0^inf e^(-t a) dt gives q_k = K p_k w_k int_0^inf e^(-t w_k)
        phi(t)^(K-1) dt, phi(t) = sum_j p_j e^(-t w_j): a 1-D integral, taken by the
        trapezoid rule in u = log t over 256 nodes (an integrand analytic in a strip,
        so the error falls like exp(-pi^2 / h): below 1e-9 relative at the step used),
        one pass of O(K_categories) per node. Weight ratios below e^-80 count as
        e^-80 (float32's range)."""
        p = params
        dtype = p.dtype
        live = p > 0
        if candidates == 1:
            return p
        if rule == "top1":
            r = jnp.where(live, reward.astype(dtype), -jnp.inf)  # a dead category is never drawn
            order = jnp.argsort(r)
            rs = r[order]
            cum = jnp.concatenate([jnp.zeros((1,), dtype), jnp.cumsum(p[order])])
            f_le = cum[jnp.searchsorted(rs, r, side="right")]
            f_lt = cum[jnp.searchsorted(rs, r, side="left")]

            def horner(_, carry):  # H_1 = 1, H_(k+1) = F(<=)^k + F(<) H_k
                h, a_pow = carry
                return f_lt * h + a_pow, a_pow * f_le

            h, _ = jax.lax.fori_loop(0, candidates, horner, (jnp.zeros_like(p), jnp.ones_like(p)))
            q = jnp.where(live, p * h, 0.0)
            return q / jnp.sum(q)
        x = jnp.asarray(scale, dtype) * reward.astype(dtype)
        xmax = jnp.max(jnp.where(live, x, -jnp.inf))
        logw = jnp.maximum(jnp.where(live, x - xmax, 0.0), -80.0)
        w = jnp.exp(logw)
        u_lo = jnp.asarray(-30.0, dtype)
        u_hi = jnp.log(jnp.asarray(40.0, dtype)) - jnp.min(jnp.where(live, logw, 0.0))
        nodes = CHOICE_NODES
        h = (u_hi - u_lo) / (nodes - 1)

        def block(acc, i):  # CHOICE_BLOCK nodes at once: (block, K_categories) per step
            t = jnp.exp(u_lo + h * i)
            e = jnp.exp(-t[:, None] * w[None, :])
            phi = jnp.sum(jnp.where(live, p, 0.0)[None, :] * e, axis=1)
            edge = jnp.where((i == 0) | (i == nodes - 1), 0.5, 1.0)
            return acc + jnp.sum((edge * t * phi ** (candidates - 1))[:, None] * e, axis=0), None

        steps = jnp.arange(nodes, dtype=dtype).reshape(nodes // CHOICE_BLOCK, CHOICE_BLOCK)
        integral, _ = jax.lax.scan(block, jnp.zeros_like(p), steps)
        q = jnp.where(live, p * w * integral, 0.0)
        return q / jnp.sum(q)

    # ------------------------------------------------------------------ metrics
    def metrics(self, key, params: Float[Array, " k"]) -> dict[str, jax.Array]:
        p = params
        dtype = p.dtype
        p0 = self.probs.astype(dtype)
        pos = p > 0
        plogp = jnp.where(pos, p * jnp.log(jnp.where(pos, p, 1)), 0)
        rare = p0 < self.rare_below.astype(dtype)
        out = {
            "collision_probability": jnp.sum(p * p),
            "entropy": -jnp.sum(plogp),
            "extinct": jnp.sum((p0 > 0) & ~pos).astype(dtype),
            "rare_mass": jnp.sum(jnp.where(rare, p, 0)),
            # optional (OPTIONAL_METRICS): computed only when a run names them
            "missing_mass": jnp.sum(jnp.where(pos, 0, p0)),
            "support_size": jnp.sum(pos).astype(dtype),
            "l1_to_truth": jnp.sum(jnp.abs(p - p0)),
            "fixed_category": jnp.where(jnp.sum(pos) == 1, jnp.argmax(p), -1).astype(dtype),
        }
        eps = self.smoothing.astype(dtype)
        log_ps = jnp.log((p + eps) / (1 + self.num_categories * eps))
        alive0 = p0 > 0
        cross = -jnp.sum(jnp.where(alive0, p0 * log_ps, 0))
        h0 = -jnp.sum(jnp.where(alive0, p0 * jnp.log(jnp.where(alive0, p0, 1)), 0))
        out["cross_entropy"] = cross
        out["kl_to_truth"] = cross - h0
        if self.data is not None:
            out |= label_metrics(self.data, log_ps)
        if self.fit_points:
            single = jnp.abs(p * self.fit_points - 1) < 0.5
            out["good_turing"] = jnp.sum(single).astype(dtype) / self.fit_points
        if self.train_sizes:
            pi = self.clean_fraction.astype(dtype)
            q = pi * p0 + (1 - pi) * p
            t = jnp.asarray(self.train_sizes, dtype)
            unseen = jnp.exp(t[:, None] * jnp.log1p(-jnp.minimum(q, 1))[None, :])  # (1 - q_k)^T
            out["memoriser_error"] = jnp.sum(p0[None, :] * unseen, axis=1)
        return out

    def events(self, params: Float[Array, " k"]) -> dict[str, jax.Array]:
        pos = params > 0
        return {
            "extinction": jnp.any((self.probs > 0) & ~pos),
            "fixation": jnp.sum(pos) == 1,
        }


# ---------------------------------------------------------------------------- helpers
def zipf_probs(beta: float, num_categories: int) -> np.ndarray:
    """p_k = k^-beta / H_{K,beta}, k = 1..K (float64), checked: beta > 0 finite, K >= 1."""
    if isinstance(num_categories, bool) or not isinstance(num_categories, (int, np.integer)) or num_categories < 1:
        raise ValueError(f"Categorical.zipf: num_categories must be an int >= 1, got {num_categories!r}")
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
        raise TypeError(f"Categorical.zipf: beta must be a number > 0, got {beta!r}")
    if not (math.isfinite(float(beta)) and float(beta) > 0):
        raise ValueError(f"Categorical.zipf: beta must be a finite number > 0, got {beta!r}")
    w = np.arange(1, int(num_categories) + 1, dtype=np.float64) ** -float(beta)
    return w / w.sum()


def _wordfreq_table(lang: str, num_categories: int) -> tuple[list[str], np.ndarray]:
    """The ``num_categories`` most frequent words of ``lang`` and their frequencies."""
    try:
        import wordfreq
    except ImportError:
        raise ImportError(
            'Categorical.from_wordfreq needs the wordfreq package: pip install "collapse-jax[wordfreq]"'
        ) from None
    if isinstance(num_categories, bool) or not isinstance(num_categories, (int, np.integer)) or num_categories < 1:
        raise ValueError(f"Categorical.from_wordfreq: num_categories must be an int >= 1, got {num_categories!r}")
    large = wordfreq.available_languages("large")
    best = wordfreq.available_languages("best")
    if lang not in best:
        raise ValueError(f"Categorical.from_wordfreq: lang must be one of {sorted(best)}, got {lang!r}")
    table = wordfreq.get_frequency_dict(lang, "large" if lang in large else "best")
    if num_categories > len(table):
        raise ValueError(
            f"Categorical.from_wordfreq: num_categories must be <= {len(table)} (the words wordfreq lists for "
            f"{lang!r}), got {num_categories}"
        )
    items = sorted(table.items(), key=lambda kv: -kv[1])[: int(num_categories)]  # stable: ties keep table order
    return [w for w, _ in items], np.array([f for _, f in items], dtype=np.float64)


def wordfreq_probs(lang: str, num_categories: int) -> np.ndarray:
    """Frequencies of the ``num_categories`` most frequent words of ``lang``
    (the ``wordfreq`` package), renormalised to sum to 1, most frequent first."""
    f = _wordfreq_table(lang, num_categories)[1]
    return f / f.sum()


def wordfreq_words(lang: str, num_categories: int) -> list[str]:
    """The words behind :func:`wordfreq_probs`, in the same order."""
    return _wordfreq_table(lang, num_categories)[0]
