"""The simple closed forms as ``jax.numpy`` formulas: usable under ``jax.jit``,
``jax.vmap`` and ``jax.grad`` (``cj.theory.traced``).

The float64 functions of :mod:`collapse_jax.theory` are the oracles: they validate
their arguments on the host and return NumPy floats, so they cannot take a tracer.
The functions here compute the same formulas in ``jnp`` for the smooth
(continuous) arguments: a weight, a variance, a generation. Arguments that set a
count (``n``, ``ratio``, which fixes the synthetic count m = floor(n/ratio + 1/2))
and the estimator are static Python values, checked as the oracles check them.
Values are not range-checked (a tracer's value is unknown): outside the oracle's
domain the result is whatever the formula gives. Precision follows JAX's: float32
unless ``jax.config.update("jax_enable_x64", True)``; in float64 they agree with the
oracles to rounding (tests/test_compose.py).

A typical use: the weight on real data that minimises a steady-state error, by
gradient descent, or a sensitivity d(error)/d(w) beside the simulator's pathwise
gradient (:func:`collapse_jax.chain_fn`).

Examples:
    >>> import jax, collapse_jax as cj
    >>> grad = jax.grad(lambda w: cj.theory.traced.weighted_steady_state(100, w, 1.0))
    >>> abs(float(grad(float(cj.theory.optimal_real_weight(1.0))))) < 1e-4
    True
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln

from ._checks import Estimator, _delta, _integer, _positive
from .mixing import _synthetic_count

__all__ = [
    "log_variance_mean",
    "mean_sq_error_replace",
    "optimal_real_weight",
    "sd_mean",
    "variance_mean",
    "variance_relative_var",
    "weighted_mean_sq_error",
    "weighted_steady_state",
]


def _fits(g) -> jax.Array:
    """Fits t = g + 1 of generation ``g`` (traced, float)."""
    return jnp.asarray(g, jnp.result_type(float)) + 1.0


def variance_mean(g, n: int, estimator: Estimator, var0=1.0) -> jax.Array:
    """E[sigma^2_g] under Replace: var0 ((n - 1)/(n - delta))^(g + 1).
    Oracle: :func:`collapse_jax.theory.variance_mean`."""
    n, delta = _integer(n, "n", 2), _delta(estimator)
    return var0 * jnp.exp(_fits(g) * jnp.log((n - 1.0) / (n - delta)))


def variance_relative_var(g, n: int, estimator: Estimator) -> jax.Array:
    """Var(sigma^2_g) / E[sigma^2_g]^2 under Replace: ((n + 1)/(n - 1))^(g + 1) - 1.
    Oracle: :func:`collapse_jax.theory.variance_relative_var`."""
    n = _integer(n, "n", 2)
    _delta(estimator)
    return jnp.expm1(_fits(g) * jnp.log1p(2.0 / (n - 1.0)))


def log_variance_mean(g, n: int, estimator: Estimator, var0=1.0) -> jax.Array:
    """E[log sigma^2_g] under Replace: log var0 + (g + 1)(psi((n - 1)/2) + log(2/(n - delta))).
    Oracle: :func:`collapse_jax.theory.log_variance_mean`."""
    n, delta = _integer(n, "n", 2), _delta(estimator)
    drift = digamma(jnp.asarray((n - 1) / 2, jnp.result_type(float))) + jnp.log(2.0 / (n - delta))
    return jnp.log(var0) + _fits(g) * drift


def sd_mean(g, n: int, estimator: Estimator, var0=1.0) -> jax.Array:
    """E[sigma_g] under Replace: sqrt(var0) c^(g + 1), c = sqrt(2/(n - delta)) Gamma(n/2)/Gamma((n - 1)/2).
    Oracle: :func:`collapse_jax.theory.sd_mean`."""
    n, delta = _integer(n, "n", 2), _delta(estimator)
    half = jnp.asarray(n / 2, jnp.result_type(float))
    log_c = 0.5 * jnp.log(2.0 / (n - delta)) + gammaln(half) - gammaln(half - 0.5)
    return jnp.sqrt(var0) * jnp.exp(_fits(g) * log_c)


def mean_sq_error_replace(g, n: int, estimator: Estimator, var0=1.0, learn_cov: bool = True, dim: int = 1) -> jax.Array:
    """E||mu_g - mu_0||^2 under Replace: d var0/n sum_{j<t} q^j, q = (n - 1)/(n - delta)
    when the covariance is learned, else 1. Oracle:
    :func:`collapse_jax.theory.mean_sq_error_replace`."""
    n, delta, dim = _integer(n, "n", 2), _delta(estimator), _integer(dim, "dim", 1)
    t = _fits(g)
    if not learn_cov or delta == 1:
        total = t
    else:
        q = (n - 1.0) / n
        total = -jnp.expm1(t * jnp.log(q)) / (1.0 - q)
    return dim * var0 / n * total


def weighted_mean_sq_error(g, n: int, real_weight, ratio: float, var0=1.0) -> jax.Array:
    """E[e^2_g] under ``Weighted`` (estimate averaging, 1-D, known variance):
    V_g = q^g var0/n + (w^2 var0/n + q var0/m) sum_{j<g} q^j, q = (1 - w)^2,
    m = floor(n/ratio + 1/2). Smooth in ``real_weight`` and ``var0``. Oracle:
    :func:`collapse_jax.theory.weighted_mean_sq_error`."""
    n = _integer(n, "n", 2)
    m = _synthetic_count(n, _positive(ratio, "ratio"))
    w = jnp.asarray(real_weight, jnp.result_type(float))
    q = (1.0 - w) ** 2
    gens = _fits(g) - 1.0
    step = w * w * var0 / n + q * var0 / m
    qg = q**gens
    # sum_{j<g} q^j = (1 - q^g)/(1 - q), and g at q = 1 (w = 0: Replace with m points)
    geo = jnp.where(q == 1.0, gens, (1.0 - qg) / jnp.where(q == 1.0, 0.5, 1.0 - q))
    return qg * var0 / n + step * geo


def weighted_steady_state(n: int, real_weight, ratio: float, var0=1.0) -> jax.Array:
    """lim_g E[e^2_g] under ``Weighted``: var0 (w^2 + k (1 - w)^2)/(n w (2 - w)), k = n/m.
    Oracle: :func:`collapse_jax.theory.weighted_steady_state`."""
    n = _integer(n, "n", 2)
    k = n / _synthetic_count(n, _positive(ratio, "ratio"))
    w = jnp.asarray(real_weight, jnp.result_type(float))
    return var0 * (w * w + k * (1.0 - w) ** 2) / (n * w * (2.0 - w))


def optimal_real_weight(ratio) -> jax.Array:
    """w* = 2k/(sqrt(k^2 + 4k) + k), the weight minimising the steady state (traced k).
    Oracle: :func:`collapse_jax.theory.optimal_real_weight`."""
    k = jnp.asarray(ratio, jnp.result_type(float))
    return 2.0 * k / (jnp.sqrt(k * k + 4.0 * k) + k)
