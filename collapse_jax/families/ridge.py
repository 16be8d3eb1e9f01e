"""Recursive linear regression: OLS, ridge and the minimum-norm interpolator,
on fixed or fresh Gaussian designs (Gerstgrasser et al. 2024, arXiv 2404.01413;
Dohmatob, Feng, Kempe 2024, arXiv 2402.07712; Garg, Bhattacharya, Sur 2025,
arXiv 2509.22341; Kazdan et al. 2024, arXiv 2410.16713).

Each generation relabels inputs with the previous fit plus N(0, noise^2) label
noise and refits. Rows are x ~ N(0, Sigma); the truth is y = x^T w* + noise. With
``data=`` (a :class:`~collapse_jax.Empirical` with a target) the rows and the real
labels come from a data set instead (:mod:`collapse_jax.data`).
"""

from __future__ import annotations

import math
from typing import ClassVar, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._rng import STREAM_REAL, Stream, as_stream
from .._validate import as_float_array, check_covariance, check_number
from ..data import Empirical
from . import _linalg as _la
from ._ondata import OnData, as_data
from ._options import Design, Sampler
from ._protocol import Combinable, Correctable, Designed, ExactSampler, Located, MixedSampler, PerChain, Scorable

DESIGNS: tuple[Design, ...] = get_args(Design)
MIXED_BY_PRODUCT = 8  # sample_mixed: up to this many sources, x^T w of every source is computed
SAMPLERS: tuple[Sampler, ...] = get_args(Sampler)


class RegressionData(eqx.Module):
    """``X`` (points, dim) and labels ``y`` (points,)."""

    X: Float[Array, "m d"]
    y: Float[Array, " m"]


class RidgeParams(eqx.Module):
    """One chain's fit: the coefficients ``w``."""

    w: Float[Array, " d"]


class RidgeContext(eqx.Module):
    """What is constant along one chain (:meth:`Ridge.init_chain`): its truth
    ``w_star`` and, on a fixed design, the design rows ``X``, the same design
    transposed ``XT`` and their ``gram`` X^T X (sample path) or the Cholesky factor
    ``gram_chol`` of X^T X (exact path); on a data set's fixed design, ``y`` the
    rows' observed (standardised) targets. Unused parts have size 0.

    ``XT`` duplicates ``X`` on purpose: relabelling (X w) and refitting (X^T y)
    then both contract the design's contiguous axis, which on CPU is about 1.5x
    faster per generation than contracting the rows of ``X``."""

    w_star: Float[Array, " d"]
    X: Float[Array, "m d"]
    XT: Float[Array, "d m"]
    gram_chol: Float[Array, "k k"]
    gram: Float[Array, "j j"]
    y: Float[Array, " r"]


class RidgeStats(eqx.Module):
    """Weighted sufficient statistics: W = sum w_i, X^T W X and X^T W y.
    ``full_rank``: X^T W X is invertible with probability one."""

    count: Float[Array, ""]
    xtx: Float[Array, "d d"]
    xty: Float[Array, " d"]
    full_rank: bool = eqx.field(static=True)


class Downstream(eqx.Module):
    """Dohmatob et al.'s downstream model: at every generation, a fresh ``samples``-row
    design independent of the chain (its own sub-stream), labelled by that
    generation's fit plus N(0, noise^2), fitted by ridge with penalty ``lam`` (the
    same convention); reported as ``downstream_test_error`` against w*. It never
    feeds back into the chain. Generation g is their n = g + 1."""

    samples: int = eqx.field(static=True)
    noise: Float[Array, ""]
    lam: Float[Array, ""]

    def __init__(self, samples: int, noise: float = 1.0, lam: float = 0.0):
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)):
            raise TypeError(f"Downstream: samples must be an int >= 1, got {samples!r}")
        if samples < 1:
            raise ValueError(f"Downstream: samples must be >= 1, got {samples}")
        self.samples = int(samples)
        self.noise = jnp.asarray(_nonneg("Downstream", "noise", noise), jnp.float32)
        self.lam = jnp.asarray(_nonneg("Downstream", "lam", lam), jnp.float32)


def _nonneg(cls: str, name: str, value) -> float:
    v = check_number(cls, name, value)
    if not (v >= 0 and math.isfinite(v)):
        raise ValueError(f"{cls}: {name} must be a finite number >= 0, got {value!r}")
    return v


class Ridge(OnData, ExactSampler, Combinable, Scorable, Correctable, Located, MixedSampler, Designed, PerChain):
    """Ridge regression refitted on its own labels.

    The weighted ridge fit minimises sum_i w_i (y_i - x_i^T b)^2 / sum_i w_i
    + lam ||b||^2, i.e. solves (X^T W X + (sum w) lam I) b = X^T W y: with unit
    weights this is scikit-learn's ``Ridge(alpha=n * lam)``. Under ``Accumulate``
    the pooled fit has sum w = (g + 1) n, so the penalty scales with the pooled
    size (lam stays the per-point penalty). ``lam = 0`` is OLS, and the
    minimum-norm interpolator when a fit has fewer points than ``dim``.

    Args:
        dim: number of features d (static).
        lam: ridge penalty per point (traced), >= 0.
        noise: label noise sd sigma (traced), >= 0.
        w_star: the truth, a vector of shape (dim,), or ``"random"``: N(0, I) per
            chain, drawn from the chain's key (as Kazdan et al.). Default: ones.
        cov: covariance Sigma of the rows (symmetric positive definite), or
        spectrum: a power-law exponent a: eigenvalues proportional to i^-a,
            normalised to trace d, identity eigenvectors. Default: identity.
        design: ``"fixed"``: the chain's design is drawn once (with its original
            sample) and every generation relabels the same rows; ``"fresh"``: every
            point of every generation has new inputs. Designs are drawn per chain.
        downstream: a :class:`Downstream` model evaluated at every generation.
        sampler: ``"samples"`` materialises every design and label; ``"exact"``
            draws X^T X from its Wishart law (fresh design) or keeps it (fixed
            design) and X^T y = X^T X w + sigma L z exactly, O(d^3) per generation
            whatever n (Replace and Accumulate on a fixed design; every regime that
            never needs the points on a fresh design).
        data: a :class:`~collapse_jax.Empirical` with features and a numeric target
            (e.g. ``cj.Empirical.load("diabetes")``) as the truth. The family works
            on the features centred by the training pool's mean and on the target
            centred and scaled by the pool's mean and standard deviation (so no
            intercept is needed and errors are in units of the pool's target
            variance). ``w_star`` is the pool's least-squares fit (minimum norm),
            ``cov`` the pool's feature covariance, and ``noise`` defaults to the
            fit's residual sd sqrt(RSS / (P - rank - 1)): the truth is the best linear
            model of the pool and its residual spread. Real points are rows of the
            pool with their targets: on a fixed design the chain's design is its
            generation-0 sample (the first n rows of its order of the pool), and a
            row's real label is always its observed target (so ``FreshMix`` there
            keeps the observed labels of rows [0, r), as ``RetainOriginal``); on a
            fresh design real points are new rows by the draw rule and a synthetic
            point takes a row's features (uniform from the pool) and the model's
            label. ``dim``, if given, must equal the features; ``w_star``, ``cov``,
            ``spectrum`` and ``sampler="exact"`` are refused. Adds ``test_mse``,
            the mean squared error of x^T w on the test split's standardised
            targets (1 - R^2 against the pool's variance).

    Metrics: ``test_error`` ||w_hat - w*||^2_Sigma (excess risk without label
    noise), ``param_sq_error`` ||w_hat - w*||^2, and ``downstream_test_error``.

    Regimes on a fixed design: ``FreshMix`` gives rows [0, r) fresh labels
    X w* + noise each generation; ``RetainOriginal`` keeps rows [0, r) with their
    generation-0 labels; ``Weighted`` fits real and synthetic labels on the same
    rows and needs ratio 1. On a fresh design every x is new, real and synthetic.
    """

    dim: int = eqx.field(static=True)
    design: Design = eqx.field(static=True)
    sampler: Sampler = eqx.field(static=True)
    random_w_star: bool = eqx.field(static=True)
    lam: Float[Array, ""]
    noise: Float[Array, ""]
    w_star: Float[Array, " d"]
    cov: Float[Array, "d d"]
    downstream: Downstream | None
    _chol_cov: Float[Array, "d d"]
    chain: RidgeContext | None  # one chain's context (None: the family as constructed)
    data: Empirical | None
    _pool: RegressionData | None  # with data: the pool's centred features and standardised target
    _test: RegressionData | None  # the same for the test split
    _data_first: int = eqx.field(static=True)
    _pool_deficient: bool = eqx.field(static=True)  # a data set whose features are collinear (rank < dim)

    combine_modes: ClassVar[tuple[str, ...]] = ("samples", "estimates")
    default_combine: ClassVar[str] = "samples"
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"lam": (0.0, math.inf), "noise": (0.0, math.inf)}
    data_truth_args: ClassVar[tuple[str, ...]] = ("w_star", "cov")  # with data=: the fit of the pool

    def __init__(
        self,
        dim: int | None = None,
        lam: float = 0.0,
        noise: float | None = None,
        *,
        w_star=None,
        cov=None,
        spectrum: float | None = None,
        design: Design = "fixed",
        downstream: Downstream | None = None,
        sampler: Sampler = "samples",
        data=None,
    ):
        data = as_data("Ridge", data)
        pool = None
        if data is not None:
            given = [k for k, v in (("w_star", w_star), ("cov", cov), ("spectrum", spectrum)) if v is not None]
            if given:
                raise ValueError(
                    f"Ridge: with data=, the truth is the fit of the data; leave {' and '.join(given)} unset"
                )
            if sampler == "exact":
                raise ValueError("Ridge: sampler='exact' draws Gaussian designs; with data= use sampler='samples'")
            if data.y is None:
                raise ValueError(f"Ridge: the data set {data.name!r} has no target (y)")
            if dim is not None and dim != data.dim:
                raise ValueError(f"Ridge: dim={dim} but the data set {data.name!r} has {data.dim} features")
            dim = data.dim
            pool = _pool_regression(data)
            w_star, cov = pool["w_star"], pool["cov"]
            if noise is None:
                noise = pool["noise"]
        if dim is None:
            raise TypeError("Ridge: dim (the number of features) is required without data=")
        if noise is None:
            noise = 1.0
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"Ridge: dim must be an int, got {dim!r}")
        if dim < 1:
            raise ValueError(f"Ridge: dim must be >= 1, got {dim}")
        if design not in DESIGNS:
            raise ValueError(f"Ridge: design must be one of {DESIGNS}, got {design!r}")
        if sampler not in SAMPLERS:
            raise ValueError(f"Ridge: sampler must be one of {SAMPLERS}, got {sampler!r}")
        if isinstance(downstream, dict):  # as describe() writes it
            downstream = Downstream(**downstream)
        if downstream is not None and not isinstance(downstream, Downstream):
            raise TypeError(
                f"Ridge: downstream must be a cj.Downstream, its describe() dict or None, got {downstream!r}"
            )
        d = int(dim)
        if isinstance(w_star, str):
            if w_star != "random":
                raise ValueError(f"Ridge: w_star must be a vector of shape ({d},) or 'random', got {w_star!r}")
            ws, random_ws = np.zeros(d), True
        else:
            ws = np.ones(d) if w_star is None else as_float_array("Ridge", "w_star", w_star)
            if ws.shape != (d,) or not np.all(np.isfinite(ws)):
                raise ValueError(
                    f"Ridge: w_star must be a finite vector of shape ({d},) or 'random', got shape {ws.shape}"
                )
            random_ws = False
        if cov is not None and spectrum is not None:
            raise ValueError("Ridge: give cov or spectrum, not both")
        if spectrum is not None:
            a = check_number("Ridge", "spectrum", spectrum, 0.0, 1e3)
            eig = np.arange(1, d + 1, dtype=np.float64) ** (-a)
            cov = np.diag(eig * d / eig.sum())
        if pool is None:
            sig, chol = check_covariance("Ridge", cov, d)
        else:  # a pool's covariance may be singular (collinear features): any factor with L L^T = cov
            sig, chol = cov, pool["factor"]
        self.dim, self.design, self.sampler, self.random_w_star = d, design, sampler, random_ws
        self.lam = jnp.asarray(_nonneg("Ridge", "lam", lam), jnp.float32)
        self.noise = jnp.asarray(_nonneg("Ridge", "noise", noise), jnp.float32)
        self.w_star = jnp.asarray(ws, jnp.float32)
        self.cov = jnp.asarray(sig, jnp.float32)
        self.downstream = downstream
        self._chol_cov = jnp.asarray(chol, jnp.float32)
        self.chain = None
        self.data = data
        self._data_first = 0
        self._pool = self._test = None
        self._pool_deficient = False
        if pool is not None:
            self._pool, self._test = pool["pool"], pool["test"]
            self._pool_deficient = pool["rank"] < d

    # ------------------------------------------------------------------ context
    def truth(self) -> RidgeParams:
        """The chain's truth w* (the family's own ``w_star`` outside a chain; with
        ``w_star="random"`` that is zeros until the family is bound to a chain)."""
        return RidgeParams(self.w_star if self.chain is None else self.chain.w_star)

    def init_chain(self, key, n: int) -> RidgeContext:
        """The chain's w* (``"random"``: N(0, I) from sub-stream 14 of ``key``) and, on a
        fixed design, its n rows (sub-stream 0: the original sample's design) with
        X^T X, or on the exact path a Cholesky factor of X^T X ~ Wishart_d(n, Sigma)."""
        s = as_stream(key)
        d, dtype = self.dim, self.w_star.dtype
        w_star = s.child(14).normal((d,), dtype) if self.random_w_star else self.w_star
        empty = jnp.zeros((0, 0), dtype)
        X, XT, gram, gram_chol = jnp.zeros((0, d), dtype), jnp.zeros((d, 0), dtype), empty, empty
        y = jnp.zeros((0,), dtype)
        if self.design == "fixed" and self._pool is not None:
            # the chain's generation-0 sample: the first n rows of its order of the pool (``key`` is
            # generation 0's real stream on the context key)
            X, y = self._pool_rows(self._data_rows(key, n), dtype)
            XT = X.T
            gram = XT @ X
        elif self.design == "fixed" and self.sampler == "samples":
            X = self._draw_design(s.child(0), n, dtype)
            XT = X.T
            gram = XT @ X
        elif self.design == "fixed":
            gram_chol = self._chol_cov.astype(dtype) @ self._bartlett(s.child(0), n, dtype)
        return RidgeContext(w_star, X, XT, gram_chol, gram, y)

    def min_points(self) -> int:
        return 1

    def config_arg(self, name: str):
        if name == "w_star" and self.data is None:
            return "random" if self.random_w_star else self.w_star
        if name == "spectrum":
            return None  # held as the covariance it gives
        return super().config_arg(name)

    # ------------------------------------------------------------------ a data set as the truth
    def _data_rows(self, key, n: int) -> jax.Array:
        """Pool rows of ``n`` real points by the draw rule of :mod:`collapse_jax.data`."""
        assert self.data is not None
        return self.data.draw_rows(key, n, self._data_first or None)

    def _pool_rows(self, rows: jax.Array, dtype) -> tuple[jax.Array, jax.Array]:
        """Centred features and standardised targets of the pool's ``rows``."""
        assert self._pool is not None
        return jnp.take(self._pool.X, rows, axis=0).astype(dtype), jnp.take(self._pool.y, rows).astype(dtype)

    def sample_real(self, key, n: int, frame=None) -> RegressionData:
        """``n`` real points: from the truth, or rows of the data set with their observed
        targets (a fixed design: the chain's own rows)."""
        if self._pool is None:
            return self.sample(key, self.truth(), n, frame)
        dtype = self.w_star.dtype
        if self.design == "fixed":
            if self.chain is not None and self._rows() > 0:
                self._chain_rows(n)  # (checks the size)
                return RegressionData(self.chain.X, self.chain.y)
            # no chain bound: the rows init_chain takes (generation 0's real stream on the context key)
            ctx = as_stream(key).context
            g0 = Stream(ctx.chain_key, jnp.zeros((), jnp.int32), STREAM_REAL, 0, ctx.safe, None, ctx.prng)
            return RegressionData(*self._pool_rows(self._data_rows(g0, n), dtype))
        return RegressionData(*self._pool_rows(self._data_rows(key, n), dtype))

    def _chain_rows(self, n: int) -> jax.Array | None:
        """The chain's fixed design (its n rows), or ``None``: a fresh design, or no chain bound."""
        rows = self._rows()
        if self.design != "fixed" or self.chain is None or rows == 0:  # (no chain: rows == 0)
            return None
        if rows != n:
            raise ValueError(f"Ridge: a fixed design has {rows} rows; cannot draw {n} points from it")
        return self.chain.X

    def _inputs(self, s: Stream, n: int, dtype) -> jax.Array:
        """A sample's n input rows: the chain's fixed design, else new rows (outside a chain a
        fixed design is drawn from the context key, as init_chain does)."""
        X = self._chain_rows(n)
        if X is not None:
            return X
        return self._draw_design((s.context if self.design == "fixed" else s).child(0), n, dtype)

    def _rows(self) -> int:
        """Rows of the chain's fixed design held in its context (0: none)."""
        return 0 if self.chain is None else self.chain.X.shape[0]

    def _draw_design(self, stream: Stream, m: int, dtype) -> jax.Array:
        if self._pool is not None:  # a data set: rows uniform from the pool (off the real stream)
            return self._pool_rows(self._data_rows(stream, m), dtype)[0]
        z = stream.normal((m, self.dim), dtype)
        # (z @ L^T even for a diagonal Sigma: an elementwise scaling here is fused into every consumer
        # of the rows and recomputes the normals in each, about 2x slower on CPU)
        return z @ self._chol_cov.astype(dtype).T

    # ------------------------------------------------------------------ sample / fit
    def sample(self, key, params: RidgeParams, n: int, frame=None) -> RegressionData:
        s = as_stream(key)
        dtype = params.w.dtype
        if self.chain is not None and self._chain_rows(n) is not None:  # (no chain: _chain_rows is None)
            X = self.chain.X
            xw = params.w @ self.chain.XT  # = X w, contracting XT's contiguous axis
        else:
            X = self._inputs(s, n, dtype)
            xw = X @ params.w
        y = xw + self.noise.astype(dtype) * s.child(1).normal((n,), dtype)
        return RegressionData(X, y)

    def sample_mixed(self, key, models: RidgeParams, source, n: int, frame=None) -> RegressionData:
        """``n`` points, point k labelled by the model ``models[source[k]]`` (stacked on
        a leading axis): on a fixed design row k of the chain's design, on a fresh
        design a new input (interaction graphs' training sets)."""
        s = as_stream(key)
        dtype = models.w.dtype
        X = self._inputs(s, n, dtype)
        sources = models.w.shape[0]
        if sources <= MIXED_BY_PRODUCT:
            # every row under every source's coefficients (one small matrix product), then each
            # row's own: on a graph the design is the chain's while the sources vary by node, and
            # XLA's CPU backend runs the gather-and-sum form about 3x slower there
            xw = X @ models.w.T  # (n, sources)
            xb = xw[:, 0]
            for j in range(1, sources):
                xb = jnp.where(source == j, xw[:, j], xb)
        else:  # many sources: O(n d) whatever their number
            xb = jnp.sum(X * jnp.take(models.w, source, axis=0), axis=1)
        y = xb + self.noise.astype(dtype) * s.child(1).normal((n,), dtype)
        return RegressionData(X, y)

    def data_stats(self, data: RegressionData, weights) -> RidgeStats:
        dtype = data.y.dtype
        if weights is None:  # unit weights
            count, xtx, xty = jnp.asarray(data.y.shape[0], dtype), data.X.T @ data.X, data.X.T @ data.y
        else:
            w = weights.astype(dtype)
            pos = w > 0
            X = jnp.where(pos[:, None], data.X, 0.0)
            wx = w[:, None] * X
            count, xtx, xty = jnp.sum(w), wx.T @ X, wx.T @ jnp.where(pos, data.y, 0.0)
        return RidgeStats(count, xtx, xty, self._posed(data.y.shape[0]))

    def merge_stats(self, a: RidgeStats, b: RidgeStats) -> RidgeStats:
        return RidgeStats(a.count + b.count, a.xtx + b.xtx, a.xty + b.xty, a.full_rank or b.full_rank)

    def _posed(self, rows: int) -> bool:
        """Whether a fit of ``rows`` rows solves by Cholesky (:func:`_well_posed`); never on a
        data set with collinear features, whose X^T X is singular at any size (the
        eigen-decomposition then gives the minimum-norm fit)."""
        return _well_posed(rows, self.dim) and not self._pool_deficient

    def _solve(self, stats: RidgeStats) -> jax.Array:
        dtype = stats.xty.dtype
        a = stats.xtx + stats.count * self.lam.astype(dtype) * jnp.eye(self.dim, dtype=dtype)
        if stats.full_rank:
            return _la.cho_solve(_la.cholesky(a), stats.xty)
        # rank-deficient (fewer points than features): the minimum-norm solution
        evals, evecs = jnp.linalg.eigh(a)
        tol = jnp.max(evals) * self.dim * jnp.finfo(dtype).eps * 10
        inv = jnp.where(evals > tol, 1.0 / jnp.where(evals > tol, evals, 1.0), 0.0)
        return evecs @ (inv * (evecs.T @ stats.xty))

    def fit_stats(self, stats: RidgeStats, frame: RidgeParams | None = None) -> RidgeParams:
        return RidgeParams(self._solve(stats))

    def fit(self, key, data: RegressionData, weights, frame: RidgeParams | None = None) -> RidgeParams:
        rows, chain = self._rows(), self.chain
        if weights is None and chain is not None and rows > 0 and chain.gram.shape[0] > 0 and data.X is chain.X:
            # unit weights on exactly the chain's fixed design (the very array its context holds,
            # rows in order, as a fixed-design sample hands it over; one trace, so identity means
            # equal values): X^T X is the context's gram and only X^T y is new
            y = data.y
            stats = RidgeStats(jnp.asarray(y.shape[0], y.dtype), chain.gram, chain.XT @ y, self._posed(rows))
            return self.fit_stats(stats)
        stats = self.data_stats(data, weights)
        if self.design == "fixed" and rows > 0:
            # stacked copies of one fixed design have its rank: decide by its own rows
            stats = RidgeStats(stats.count, stats.xtx, stats.xty, self._posed(rows))
        return self.fit_stats(stats)

    def sample_stats(self, key, params: RidgeParams, m, frame=None) -> RidgeStats:
        """Exact law of (X^T X, X^T y) for m points labelled by ``params`` (m may be
        traced). Fixed design: X^T X is the chain's own; fresh: Wishart_d(m, Sigma)
        by Bartlett's decomposition. Given X, X^T y ~ N(X^T X w, sigma^2 X^T X)."""
        s = as_stream(key)
        dtype = params.w.dtype
        d = self.dim
        w_gen = params.w
        if self.design == "fixed" and self.chain is not None and self.chain.gram_chol.shape[0] == d:
            lg = self.chain.gram_chol
        else:
            lg = self._chol_cov.astype(dtype) @ self._bartlett(s.child(0), m, dtype)
        gram = lg @ lg.T
        z = s.child(1).normal((d,), dtype)
        xty = gram @ w_gen + self.noise.astype(dtype) * (lg @ z)
        full = isinstance(m, (int, np.integer)) and _well_posed(int(m), d)
        return RidgeStats(jnp.asarray(m, dtype), gram, xty, bool(full))

    def _bartlett(self, stream: Stream, m, dtype) -> jax.Array:
        """Lower factor B with B B^T ~ Wishart_d(m, I) (m rows, no centring); for
        m < d the trailing columns vanish (a rank-m Wishart)."""
        d = self.dim
        mf = jnp.asarray(m, dtype)
        cols = jnp.arange(d) < mf
        off = jnp.tril(stream.child(0).normal((d, d), dtype), -1) * cols[None, :]
        diag = [jnp.sqrt(stream.child(1).chi2(jnp.maximum(mf - i, 0.0), dtype, offset=i * 64)) for i in range(d)]
        return off + jnp.diag(jnp.stack(diag))

    # ------------------------------------------------------------------ pressures (collapse_jax.Pressured)
    def score(self, params: RidgeParams, data: RegressionData, frame=None) -> jax.Array:
        """Squared standardised residual (y - x^T w)^2 / noise^2 under ``params``:
        chi-square with 1 degree of freedom for labels drawn from it."""
        r = (data.y - data.X @ params.w) / self.noise.astype(data.y.dtype)
        return r * r

    def score_quantile(self, params: RidgeParams, q) -> jax.Array:
        """chi2_1's q-quantile, Phi^-1((1 + q)/2)^2."""
        z = jax.scipy.special.ndtri(0.5 + 0.5 * jnp.asarray(q, params.w.dtype))
        return z * z

    def correct(self, params: RidgeParams, truth: RidgeParams, data: RegressionData, gamma, frame=None):
        """Self-correction of labels: y + gamma x^T (w* - w), the shift carrying
        N(x^T w, noise^2) onto the truth's N(x^T w*, noise^2)."""
        return RegressionData(data.X, data.y + gamma * (data.X @ (truth.w - params.w)))

    def location(self, params: RidgeParams) -> jax.Array:
        """The coefficients w (interaction graphs' ``homogenisation``)."""
        return params.w

    def combine(self, p_real: RidgeParams, p_synth: RidgeParams, w) -> RidgeParams:
        """w * w_hat(real) + (1 - w) * w_hat(synth) (He, Xu, Cheng); on one fixed
        design and lam = 0 this equals one fit on the mixed label vector."""
        w = jnp.asarray(w, p_real.w.dtype)
        return RidgeParams(w * p_real.w + (1 - w) * p_synth.w)

    # ------------------------------------------------------------------ metrics
    def metrics(self, key, params: RidgeParams) -> dict[str, jax.Array]:
        s = as_stream(key)
        dtype = params.w.dtype
        w_star = self.truth().w
        lc = self._chol_cov.astype(dtype)
        err = params.w - w_star
        out = {"test_error": jnp.sum((lc.T @ err) ** 2), "param_sq_error": jnp.sum(err**2)}
        if self._test is not None:
            resid = self._test.y.astype(dtype) - self._test.X.astype(dtype) @ params.w
            out["test_mse"] = jnp.mean(resid * resid)
        ds = self.downstream
        if ds is not None:
            t = ds.samples
            X = self._draw_design(s.child(0), t, dtype)
            y = X @ params.w + ds.noise.astype(dtype) * s.child(1).normal((t,), dtype)
            stats = RidgeStats(jnp.asarray(t, dtype), X.T @ X, X.T @ y, self._posed(t))
            b = Ridge._solve(eqx.tree_at(lambda f: f.lam, self, ds.lam.astype(self.lam.dtype)), stats)
            out["downstream_test_error"] = jnp.sum((lc.T @ (b - w_star)) ** 2)
        return out


def _well_posed(rows: int, d: int) -> bool:
    """Cholesky is used when a fit has at least d + 2 rows (X^T X is then
    comfortably invertible); with fewer, the eigen-decomposition gives OLS, the
    minimum-norm interpolator or ridge robustly, also in the band d - 1 <= n <= d + 1
    where E[(X^T X)^-1] is infinite and single fits are badly conditioned."""
    return rows >= d + 2


def _pool_regression(data: Empirical) -> dict:
    """A data set's regression truth, on the host in float64: the pool's centred
    features and standardised target (and the test split's, by the pool's means and
    scale), the minimum-norm least-squares fit ``w_star``, its residual sd ``noise``
    (sqrt(RSS / (P - rank - 1)): centring spends one degree of freedom), its ``rank``,
    the feature covariance ``cov`` and a factor of it (L L^T = cov, by eigenvalues:
    collinear features give a singular covariance)."""
    assert data.y is not None and data.y_test is not None
    x, y = np.asarray(data.x, np.float64), np.asarray(data.y, np.float64)
    xt, yt = np.asarray(data.x_test, np.float64), np.asarray(data.y_test, np.float64)
    rows, d = x.shape
    mu, y_mu, y_sd = x.mean(axis=0), y.mean(), y.std()
    if not y_sd > 0:
        raise ValueError(f"Ridge: the target of the data set {data.name!r} is constant in the training pool")
    xc, ys = x - mu, (y - y_mu) / y_sd
    w_star, _, rank, _ = np.linalg.lstsq(xc, ys, rcond=None)
    dof = rows - rank - 1  # centring spends one degree of freedom (the intercept)
    if dof < 1:
        raise ValueError(
            f"Ridge: the data set {data.name!r} has {rows} training rows for {rank} independent features; the "
            f"residual noise needs at least rank + 2 = {rank + 2} rows"
        )
    resid = ys - xc @ w_star
    cov = xc.T @ xc / rows
    evals, evecs = np.linalg.eigh(cov)
    factor = evecs * np.sqrt(np.maximum(evals, 0.0))[None, :]

    def reg(a, b):
        return RegressionData(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))

    return {
        "pool": reg(xc, ys),
        "test": reg(xt - mu, (yt - y_mu) / y_sd),
        "w_star": w_star,
        "noise": float(np.sqrt(resid @ resid / dof)),
        "rank": int(rank),
        "cov": cov,
        "factor": factor,
    }
