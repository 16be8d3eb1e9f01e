"""Small dense linear algebra written as elementwise operations.

For the d x d systems of one chain (d <= UNROLL_MAX), an unrolled Cholesky
factorisation and triangular solves are cheaper under ``vmap`` on CPU than the
batched LAPACK calls, fuse with the surrounding step, and avoid a pathological
slowdown seen with two batched LAPACK Cholesky calls inside one scanned step at
batch sizes >= 1024 (XLA CPU, jax 0.10). Larger d falls back to ``jnp.linalg``.

**Log-diagonal factors.** A lower-triangular factor with positive diagonal is held
as L = U diag(exp(log_diag)) with U unit lower-triangular (U_ij = L_ij / L_jj).
Products L' = L T (:func:`compose_factor`) and relative maps L_f^-1 L_p
(:func:`relative_factor`) are formed in that representation, so a factor whose
diagonal spans far more than the floating-point range (a d-dimensional Gaussian
deep into collapse, whose directions shrink at different rates) stays finite:
log_diag carries the scales and U converges. :func:`gram_root` gives the factor of
a Gram matrix X^T X from X itself (Gram-Schmidt), without squaring, so nearly
rank-deficient data keep their small directions.
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


def solve_unit_lower(unit: jax.Array, b: jax.Array) -> jax.Array:
    """x with U x = b, U unit lower-triangular (d, d) (its diagonal is not read), b
    (d,) or (d, m)."""
    d = unit.shape[-1]
    if d > UNROLL_MAX:
        return jax.scipy.linalg.solve_triangular(unit, b, lower=True, unit_diagonal=True)
    x: list[jax.Array] = []
    for i in range(d):
        s = b[i]
        for k in range(i):
            s = s - unit[i, k] * x[k]
        x.append(s)
    return jnp.stack(x)


def gram_root(x: jax.Array) -> jax.Array:
    """Lower-triangular L with non-negative diagonal and L L^T = X^T X, X (rows, d).

    Modified Gram-Schmidt on the columns of X (L^T is the R of X = Q R): the
    squared Gram matrix is never formed, so a column nearly in the span of the
    others keeps its residual norm to about machine precision relative to the
    column, where a Cholesky factorisation of X^T X loses it at the square root of
    machine precision, or breaks down (Golub and Van Loan, "Matrix Computations",
    4th ed., sections 5.2.8-5.2.9; Bjorck 1967). An exactly dependent column gives
    a zero diagonal entry.
    """
    rows, d = x.shape
    if d > UNROLL_MAX:
        if rows < d:
            x = jnp.concatenate([x, jnp.zeros((d - rows, d), x.dtype)])
        r = jnp.linalg.qr(x, mode="r")[:d]
        sign = jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(x.dtype)
        return (sign[:, None] * r).T
    zero = jnp.zeros((), x.dtype)
    cols: list[list[jax.Array]] = [[zero] * d for _ in range(d)]  # cols[i][j] = L[i, j]
    qs: list[jax.Array] = []
    for j in range(d):
        v = x[:, j]
        for k, q in enumerate(qs):
            r = jnp.sum(q * v)
            cols[j][k] = r
            v = v - r * q
        norm = jnp.sqrt(jnp.sum(v * v))
        cols[j][j] = norm
        qs.append(jnp.where(norm > 0, v / jnp.where(norm > 0, norm, 1.0), 0.0))
    return jnp.stack([jnp.stack(row) for row in cols])


def split_factor(t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(log_diag, U) of a lower-triangular factor T = U diag(exp(log_diag)).

    A zero (or negative) pivot, i.e. exactly rank-deficient data after rounding, is
    raised to the smallest normal float: a direction collapsed below the float
    range rather than log 0 = -inf, which would turn the next composition into NaN.
    """
    d = t.shape[-1]
    diag = jnp.maximum(jnp.diagonal(t), jnp.finfo(t.dtype).tiny)
    strict = jnp.tril(jnp.ones((d, d), bool), -1)
    unit = jnp.where(strict, t / diag[None, :], jnp.eye(d, dtype=t.dtype))
    return jnp.log(diag), unit


def _scaled_lower(k: jax.Array, log_factor: jax.Array) -> jax.Array:
    """K * exp(log_factor) on the lower triangle (upper triangle 0); an exact zero
    of K stays 0 even where exp(log_factor) overflows."""
    d = k.shape[-1]
    lower = jnp.tril(jnp.ones((d, d), bool))
    return jnp.where(lower & (k != 0), k * jnp.exp(jnp.where(lower, log_factor, 0.0)), 0.0)


def compose_factor(log_diag: jax.Array, unit: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(log_diag', U') of L' = L T, L = U diag(exp(log_diag)), T lower-triangular with
    positive diagonal (T = V diag(t)).

    L' = U (D V D^-1) D diag(t), so log_diag' = log_diag + log t and
    U'_ij = sum_{k=j..i} U_ik V_kj exp(log_diag_k - log_diag_j). Only differences of
    log_diag are exponentiated; when later coordinates shrink faster (as Bartlett's
    decomposition makes them in a collapsing Gaussian chain), those factors decay
    and U converges.
    """
    d = t.shape[-1]
    log_t, v = split_factor(t)
    w = _scaled_lower(v, log_diag[:, None] - log_diag[None, :])
    strict = jnp.tril(jnp.ones((d, d), bool), -1)
    w = jnp.where(strict, w, jnp.eye(d, dtype=t.dtype))
    u = jnp.where(strict, unit @ w, jnp.eye(d, dtype=t.dtype))
    return log_diag + log_t, u


def relative_factor(unit_f: jax.Array, unit_p: jax.Array, log_gap: jax.Array) -> jax.Array:
    """M = L_f^-1 L_p (lower-triangular) for factors in log-diagonal form,
    L = U diag(exp(l)): M_ij = (U_f^-1 U_p)_ij exp(log_gap_ij) with
    log_gap_ij = l_p_j - l_f_i. Entries of U_f^-1 U_p that are exactly zero (a model
    sharing the frame's shape, e.g. a tempered copy) stay zero whatever the scale
    factor."""
    return _scaled_lower(solve_unit_lower(unit_f, unit_p), log_gap)


def factor(log_diag: jax.Array, unit: jax.Array) -> jax.Array:
    """The factor L = U diag(exp(log_diag)) in linear scale (underflows to 0, never NaN)."""
    return unit * jnp.exp(log_diag)[None, :]
