"""Random-feature regression: a ridge fit on features phi(w_i^T x) drawn once per chain.

The student of Strong Model Collapse (Dohmatob, Feng, Subramonian, Kempe, ICLR 2025)
and of the random-projection view of double descent (Bach 2023): the teacher is
linear, y = x^T w* + noise with x ~ N(0, I_d), and the model is
f(x) = sum_i a_i phi(w_i^T x) with ``width`` unit feature directions w_i that stay
fixed along a chain (its context, drawn once) and coefficients a refitted every
generation by ridge regression. The width is a traced hyperparameter: the features
are drawn at ``max_width`` and the first ``width`` kept, so a sweep over widths
(``sweep={"width": [...]}``) is one compiled program, every width sharing each
chain's feature directions (common random numbers across widths).

Feature directions: the first min(max_width, d) are orthonormal (the rows of a
Haar-random orthogonal frame, by QR of a Gaussian matrix with the signs fixed), any
beyond d are independent uniform unit vectors. With ``activation="linear"`` and
width <= d the model is least squares on a uniformly random width-dimensional
projection of x, whose recursion has an exact law (``cj.theory.random_features``;
THEORY.md section 19).
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._rng import Stream, as_stream
from .._validate import as_float_array, check_int, traced_scalar
from ..theory.random_features import HERMITE
from ._protocol import PerChain
from .ridge import RegressionData

Activation = Literal["linear", "relu", "erf"]
ACTIVATIONS: tuple[Activation, ...] = get_args(Activation)
# E phi'(z), z ~ N(0, 1) (Stein: E[phi(w^T x) x] = E phi'(z) w for a unit vector w): the first Hermite
# coefficient, from the one table of the activations' coefficients
_SLOPE = {name: float(mu1) for name, (_, mu1, _) in HERMITE.items()}


class RFParams(eqx.Module):
    """One chain's fit: the coefficients ``a`` of the ``max_width`` features (those
    beyond ``width`` are 0)."""

    a: Float[Array, " m"]


class RFTruth(eqx.Module):
    """The linear teacher: y = x^T w + noise."""

    w: Float[Array, " d"]


class RFContext(eqx.Module):
    """One chain's feature directions, unit rows of shape (max_width, d)."""

    W: Float[Array, "m d"]


class RandomFeatures(PerChain):
    """Ridge regression on ``width`` random features phi(w_i^T x), refitted on its
    own labels.

    Args:
        dim: input dimension d (static).
        width: the number of features used, 1 <= width <= max_width (traced: a
            sweep over widths is one program).
        max_width: the number of features drawn per chain (static; default
            ``width``). Set it to the largest width of a sweep.
        activation: ``"linear"`` (phi(u) = u: a random projection), ``"relu"`` or
            ``"erf"`` (static).
        lam: ridge penalty in per-point scale, minimising
            (1/W) sum_i w_i (f(x_i) - y_i)^2 + lam ||a||^2 (traced, >= 0; 0, the
            default, is the minimum-norm least-squares fit, "ridgeless").
        noise: label noise sd sigma of the teacher and of every synthetic label
            (traced, >= 0).
        w_star: the teacher's coefficients (default: every entry 1/sqrt(d), so
            ||w*|| = 1).

    Data are :class:`~collapse_jax.RegressionData` with x ~ N(0, I_d) drawn fresh for
    every sample; a synthetic label is f(x) + sigma z. The fit solves the ridge
    normal equations in the primal (max_width x max_width) or, when max_width
    exceeds the points per fit, the dual (points x points), through the symmetric
    eigen-decomposition with a pseudo-inverse's cutoff (:func:`_psd_solve`), so
    masked features and interpolation are handled exactly, not by a tiny ridge.

    Metrics, exact given the fit and the chain's features (no Monte Carlo):
    ``test_error`` E_x (f(x) - x^T w*)^2, the excess risk over the noise, from the
    features' closed-form kernel E phi(u_i) phi(u_j) (linear: rho_ij; relu: the
    arc-cosine kernel (sqrt(1 - rho^2) + (pi - arccos rho) rho)/(2 pi); erf:
    (2/pi) arcsin(2 rho/3); rho_ij = w_i^T w_j) and E[phi(w_i^T x) x] = E phi'(z) w_i;
    ``weight_norm`` ||a||^2.
    """

    dim: int = eqx.field(static=True)
    max_width: int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)
    width: Float[Array, ""]
    lam: Float[Array, ""]
    noise: Float[Array, ""]
    w_star: Float[Array, " d"]
    chain: RFContext | None  # one chain's feature directions (None: the family as constructed)

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "width": (1.0, math.inf),
        "lam": (0.0, math.inf),
        "noise": (0.0, math.inf),
    }
    # the features of a fit's points and the normal equations' matrix
    working_set_factor: ClassVar[int] = 4

    def __init__(
        self,
        dim: int,
        width: int,
        *,
        max_width: int | None = None,
        activation: Activation = "relu",
        lam: float = 0.0,
        noise: float = 1.0,
        w_star=None,
    ):
        d = check_int("RandomFeatures: dim", dim, 1)
        if activation not in ACTIVATIONS:
            raise ValueError(f"RandomFeatures: activation must be one of {ACTIVATIONS}, got {activation!r}")
        if isinstance(width, jax.core.Tracer):
            if max_width is None:
                raise ValueError("RandomFeatures: a traced width needs max_width (the static number of features)")
            wf = width.astype(jnp.float32)
        else:
            w_int = _integral("width", width)
            max_width = w_int if max_width is None else max_width
            wf = jnp.asarray(float(w_int), jnp.float32)
        mw = check_int("RandomFeatures: max_width", max_width, 1)
        if not isinstance(width, jax.core.Tracer) and _integral("width", width) > mw:
            raise ValueError(f"RandomFeatures: width={width} exceeds max_width={mw}")
        if w_star is None:
            ws = np.full(d, 1.0 / math.sqrt(d))
        else:
            ws = as_float_array("RandomFeatures", "w_star", w_star).reshape(-1)
            if ws.shape != (d,) or not np.all(np.isfinite(ws)):
                raise ValueError(
                    f"RandomFeatures: w_star must be a finite vector of shape ({d},), got {np.shape(w_star)}"
                )
        self.dim, self.max_width, self.activation = d, mw, activation
        self.width = wf
        self.lam = traced_scalar("RandomFeatures", "lam", lam, 0.0, math.inf)
        self.noise = traced_scalar("RandomFeatures", "noise", noise, 0.0, math.inf)
        self.w_star = jnp.asarray(ws, jnp.float32)
        self.chain = None

    # ------------------------------------------------------------------ basics
    def truth(self) -> RFTruth:
        return RFTruth(self.w_star)

    def blank_fit(self) -> RFParams:
        return RFParams(jnp.zeros((self.max_width,), self.w_star.dtype))

    def min_points(self) -> int:
        return 1

    def config_arg(self, name: str):
        if name == "width":
            return int(round(float(self.width)))
        if name == "w_star":
            return np.asarray(self.w_star, np.float64)
        return super().config_arg(name)

    def check_sweep(self, name: str, values: np.ndarray) -> None:
        """Sweep values must be whole widths up to ``max_width`` (the features drawn)."""
        if name != "width":
            return
        bad = values[(values != np.round(values)) | (values > self.max_width)]
        if bad.size:
            raise ValueError(
                f"simulate: sweep value {float(bad[0])!r} for 'width' is invalid: RandomFeatures.width must be a whole "
                f"number in [1, max_width={self.max_width}] (raise max_width to sweep wider)"
            )

    # ------------------------------------------------------------------ the chain's features
    def init_chain(self, key, n: int) -> RFContext:
        """The chain's feature directions from sub-stream 13 of ``key``."""
        s = as_stream(key).child(13)
        m, d = self.max_width, self.dim
        g = s.normal((m, d), self.w_star.dtype)
        k = min(m, d)
        q, r = jnp.linalg.qr(g[:k].T)  # (d, k): orthonormal columns
        q = q * jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0)[None, :]  # signs fixed: a Haar frame
        rows = [q.T]
        if m > d:
            extra = g[k:]
            rows.append(extra / jnp.linalg.norm(extra, axis=1, keepdims=True))
        return RFContext(jnp.concatenate(rows) if len(rows) > 1 else rows[0])

    def _directions(self, dtype) -> jax.Array:
        ctx = self.chain if self.chain is not None else self.init_chain(jax.random.key(0), 1)
        return ctx.W.astype(dtype)

    def _mask(self, dtype) -> jax.Array:
        return (jnp.arange(self.max_width) < self.width.astype(dtype)).astype(dtype)

    def features(self, X: jax.Array) -> jax.Array:
        """phi(X W^T) of the chain's first ``width`` features (the rest are 0), (points, max_width)."""
        u = X @ self._directions(X.dtype).T
        if self.activation == "relu":
            u = jnp.maximum(u, 0.0)
        elif self.activation == "erf":
            u = jax.lax.erf(u)
        return u * self._mask(X.dtype)[None, :]

    # ------------------------------------------------------------------ sample / fit
    def _inputs(self, s: Stream, n: int, dtype) -> jax.Array:
        return s.child(0).normal((n, self.dim), dtype)

    def sample(self, key, params: RFParams, n: int, frame=None) -> RegressionData:
        s = as_stream(key)
        dtype = params.a.dtype
        X = self._inputs(s, n, dtype)
        y = self.features(X) @ params.a + self.noise.astype(dtype) * s.child(1).normal((n,), dtype)
        return RegressionData(X, y)

    def sample_real(self, key, n: int, frame=None) -> RegressionData:
        s = as_stream(key)
        dtype = self.w_star.dtype
        X = self._inputs(s, n, dtype)
        return RegressionData(X, X @ self.w_star + self.noise.astype(dtype) * s.child(1).normal((n,), dtype))

    def fit(self, key, data: RegressionData, weights, frame=None) -> RFParams:
        dtype = data.y.dtype
        n = data.y.shape[0]
        w = jnp.ones((n,), dtype) if weights is None else weights.astype(dtype)
        w = jnp.maximum(w, 0.0)
        root = jnp.sqrt(w)
        psi = self.features(data.X) * root[:, None]  # D^(1/2) Phi
        z = jnp.where(w > 0, data.y, 0.0) * root  # empty slots may hold anything
        ridge = jnp.sum(w) * self.lam.astype(dtype)
        if self.max_width <= n:  # primal: a = (Psi^T Psi + W lam I)^+ Psi^T z
            a = _psd_solve(psi.T @ psi, psi.T @ z, ridge)
        else:  # dual: a = Psi^T (Psi Psi^T + W lam I)^+ z
            a = psi.T @ _psd_solve(psi @ psi.T, z, ridge)
        return RFParams(a * self._mask(dtype))

    # ------------------------------------------------------------------ metrics
    def kernel(self, dtype, rho: jax.Array | None = None) -> jax.Array:
        """E phi(w_i^T x) phi(w_j^T x) over x ~ N(0, I), (max_width, max_width), from the
        directions' correlations ``rho`` (default: computed here)."""
        if rho is None:
            W = self._directions(dtype)
            rho = jnp.clip(W @ W.T, -1.0, 1.0)
        if self.activation == "linear":
            return rho
        if self.activation == "relu":
            return (jnp.sqrt(jnp.maximum(1.0 - rho * rho, 0.0)) + (math.pi - jnp.arccos(rho)) * rho) / (2 * math.pi)
        return (2.0 / math.pi) * jnp.arcsin(2.0 * rho / 3.0)

    def metrics(self, key, params: RFParams) -> dict[str, jax.Array]:
        dtype = params.a.dtype
        a = params.a
        W = self._directions(dtype)
        slope = _SLOPE[self.activation]
        # phi's Hermite expansion: E phi(u_i) phi(u_j) = slope^2 rho_ij + R_ij, R positive semi-definite
        # (the constant and order >= 2 terms), and E[phi(u_i) x] = slope w_i, so the excess risk is
        # ||slope W^T a - w*||^2 + a^T R a: a sum of two non-negative terms, without cancellation
        linear = slope * (W.T @ a) - self.w_star.astype(dtype)
        rho = jnp.clip(W @ W.T, -1.0, 1.0)
        rest = self.kernel(dtype, rho) - slope * slope * rho
        return {"test_error": linear @ linear + a @ (rest @ a), "weight_norm": a @ a}


def _psd_solve(gram: jax.Array, rhs: jax.Array, ridge: jax.Array) -> jax.Array:
    """(gram + ridge I)^+ rhs for a positive semi-definite ``gram``, by its eigen-
    decomposition with eigenvalues below max * size * eps treated as 0 (a pseudo-
    inverse): stable when the features are rank-deficient (masked widths, more
    features than points), where a Cholesky factor of a nearly singular matrix
    would leak rounding errors divided by the ridge. With ridge 0 it is the
    minimum-norm least-squares fit, Psi^+ z, in both forms."""
    lam, vec = jnp.linalg.eigh(gram)
    cutoff = jnp.max(lam) * gram.shape[0] * jnp.finfo(gram.dtype).eps
    inv = jnp.where(lam > cutoff, 1.0 / (lam + ridge), 0.0)
    return vec @ (inv * (vec.T @ rhs))


def _integral(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"RandomFeatures: {name} must be a whole number >= 1, got {value!r}")
    if value != round(value) or value < 1:
        raise ValueError(f"RandomFeatures: {name} must be a whole number >= 1, got {value!r}")
    return int(round(value))
