"""The Gaussian family's parameters and sufficient statistics (one chain), apart from
the family (:mod:`collapse_jax.families.gaussian`) that draws and fits them."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class GaussianParams(eqx.Module):
    """One chain's fit: Sigma = L L^T with Cholesky factor
    L = exp(log_scale) unit diag(exp(log_shape)).

    Attributes:
        mean: the mean, shape (d,).
        log_scale: (1/(2d)) log det Sigma, the log of the geometric-mean standard
            deviation (in 1-D the log sd), shape ().
        log_shape: log of the unit-determinant shape's diagonal, shape (d,), summing
            to 0 (in 1-D always 0).
        unit: L with its columns divided by their diagonal entries, shape (d, d):
            unit lower-triangular (in 1-D always 1).
    """

    mean: Float[Array, " d"]
    log_scale: Float[Array, ""]
    log_shape: Float[Array, " d"]
    unit: Float[Array, "d d"]

    @property
    def log_diag(self) -> jax.Array:
        """log diag L = log_scale + log_shape."""
        return self.log_scale[..., None] + self.log_shape

    @property
    def chol(self) -> jax.Array:
        """L exp(-log_scale): the unit-determinant shape in linear scale (its entries
        overflow once the directions' scales differ by more than the float range;
        computations use ``log_shape`` and ``unit``)."""
        return self.unit * jnp.exp(self.log_shape)[..., None, :]


class GaussianStats(eqx.Module):
    """Weighted sufficient statistics: total weight W, sum of squared weights W2,
    weighted mean, weighted scatter S = sum_i w_i (x_i - mean)(x_i - mean)^T and a
    lower-triangular root of it (root root^T = S), computed without squaring so that
    a nearly singular scatter keeps its small directions (in 1-D sqrt(S))."""

    count: Float[Array, ""]
    count2: Float[Array, ""]
    mean: Float[Array, " d"]
    scatter: Float[Array, "d d"]
    root: Float[Array, "d d"]


def _stats_1d(count, count2, mean, scatter) -> GaussianStats:
    return GaussianStats(count, count2, mean, scatter, jnp.sqrt(scatter))


def _stats_nd(count, count2, mean, root) -> GaussianStats:
    return GaussianStats(count, count2, mean, root @ root.T, root)
