"""Small dense linear algebra written as elementwise operations.

For the d x d systems of one chain (d <= UNROLL_MAX), an unrolled Cholesky
factorisation and triangular solves are cheaper under ``vmap`` on CPU than the
batched LAPACK calls, fuse with the surrounding step, and avoid a pathological
slowdown seen with two batched LAPACK Cholesky calls inside one scanned step at
batch sizes >= 1024 (XLA CPU, jax 0.10). Larger d falls back to ``jnp.linalg``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

UNROLL_MAX = 16


def cholesky(a: jax.Array) -> jax.Array:
    """Lower Cholesky factor of a symmetric positive definite (d, d) matrix."""
    d = a.shape[-1]
    if d > UNROLL_MAX:
        return jnp.linalg.cholesky(a)
    cols: list[list[jax.Array]] = [[jnp.zeros((), a.dtype)] * d for _ in range(d)]  # cols[i][j] = L[i, j]
    for j in range(d):
        s = a[j, j] - sum((cols[j][k] * cols[j][k] for k in range(j)), jnp.zeros((), a.dtype))
        ljj = jnp.sqrt(s)
        cols[j][j] = ljj
        inv = 1.0 / ljj
        for i in range(j + 1, d):
            s = a[i, j] - sum((cols[i][k] * cols[j][k] for k in range(j)), jnp.zeros((), a.dtype))
            cols[i][j] = s * inv
    return jnp.stack([jnp.stack(row) for row in cols])


def solve_lower(lower: jax.Array, b: jax.Array) -> jax.Array:
    """x with L x = b, L lower-triangular (d, d), b (d,)."""
    d = lower.shape[-1]
    if d > UNROLL_MAX:
        return jax.scipy.linalg.solve_triangular(lower, b, lower=True)
    x: list[jax.Array] = []
    for i in range(d):
        s = b[i] - sum((lower[i, k] * x[k] for k in range(i)), jnp.zeros((), b.dtype))
        x.append(s / lower[i, i])
    return jnp.stack(x)


def solve_upper_t(lower: jax.Array, b: jax.Array) -> jax.Array:
    """x with L^T x = b, L lower-triangular (d, d), b (d,)."""
    d = lower.shape[-1]
    if d > UNROLL_MAX:
        return jax.scipy.linalg.solve_triangular(lower.T, b, lower=False)
    x: list[jax.Array] = [jnp.zeros((), b.dtype)] * d
    for i in reversed(range(d)):
        s = b[i] - sum((lower[k, i] * x[k] for k in range(i + 1, d)), jnp.zeros((), b.dtype))
        x[i] = s / lower[i, i]
    return jnp.stack(x)


def cho_solve(lower: jax.Array, b: jax.Array) -> jax.Array:
    """x with (L L^T) x = b."""
    return solve_upper_t(lower, solve_lower(lower, b))
