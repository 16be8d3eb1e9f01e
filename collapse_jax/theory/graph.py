"""Interaction graphs of models (docs/THEORY.md section 7; Wu, Zhou, Su, arXiv
2605.20151, whose exact statement could not be read: these are the natural model's
derived laws, checked against the simulator).

Model. Node i refits, at generation g >= 1, on n_i points: r_i fresh real ones and
s_ij synthetic ones from each source j's generation-(g - 1) model (each consumer draws
its own sample; real samples are independent across nodes). With the effective
weights W_ij = s_ij / n_i (the integer counts, not the nominal shares) and a known
covariance Sigma, the error e_i = mu_i - mu_0 of the location estimate obeys

    e^(g) = W_g e^(g-1) + xi^(g),    Cov xi^(g) = D (x) Sigma,    D = diag(1 / n_i),

whatever the split between real and synthetic points (each of the n_i points adds
Sigma / n_i^2 of noise), so the node-by-node error covariance (in units of Sigma)
follows C_g = W_g C_(g-1) W_g^T + D with C_0 = D, and E||e_i^(g)||^2 = C_g[i, i] tr Sigma.

Schedules: ``weights`` of shape (T, K, K) are applied cyclically, generation g >= 1
using W[(g - 1) mod T]. Over one period the map is Pi = W[T-1] ... W[0] with
accumulated noise D_Pi; the steady state and growth rates below are those of (Pi, D_Pi)
at generations g = k T, divided by T where a rate per generation is meant.

All functions are float64 NumPy on the host.
"""

from __future__ import annotations

import math
from functools import reduce

import numpy as np

__all__ = [
    "closed_classes",
    "error_covariance",
    "growth_rates",
    "mean_sq_error",
    "ols_mean_sq_error",
    "one_period",
    "period",
    "reach",
    "spectral_radius",
    "steady_state",
    "strong_components",
]


def _as_weights(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3 or w.shape[1] != w.shape[2] or w.shape[1] < 1:
        raise ValueError(f"weights must have shape (K, K) or (T, K, K), got {np.shape(weights)}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and nonnegative")
    if np.any(w.sum(axis=2) > 1 + 1e-9):
        raise ValueError("weights: every row must sum to at most 1 (the rest is real data)")
    return w


def _noise(n, k: int) -> np.ndarray:
    nv = np.broadcast_to(np.asarray(n, dtype=np.float64), (k,))
    if np.any(nv <= 0):
        raise ValueError(f"n must be positive per node, got {np.asarray(n).tolist()}")
    return np.diag(1.0 / nv)


def one_period(weights, n) -> tuple[np.ndarray, np.ndarray]:
    """(Pi, D_Pi): the map and the noise covariance of one period of a schedule
    (T = 1: (W, D))."""
    w = _as_weights(weights)
    d = _noise(n, w.shape[1])
    pi, dp = np.eye(w.shape[1]), np.zeros_like(d)
    for wt in w:
        pi = wt @ pi
        dp = wt @ dp @ wt.T + d
    return pi, dp


def error_covariance(weights, n, generations: int) -> np.ndarray:
    """C_g for g = 0 .. generations, shape (generations + 1, K, K), in units of Sigma:
    the exact finite-generation recursion C_g = W_g C_(g-1) W_g^T + D, C_0 = D."""
    w = _as_weights(weights)
    d = _noise(n, w.shape[1])
    out = np.empty((generations + 1,) + d.shape)
    c = d.copy()
    out[0] = c
    for g in range(1, generations + 1):
        wt = w[(g - 1) % w.shape[0]]
        c = wt @ c @ wt.T + d
        out[g] = c
    return out


def mean_sq_error(weights, n, generations: int, trace_sigma: float = 1.0) -> np.ndarray:
    """E||mu_i^(g) - mu_0||^2 per node, shape (generations + 1, K): the diagonal of
    :func:`error_covariance` times tr Sigma (a known-covariance Gaussian node)."""
    c = error_covariance(weights, n, generations)
    return np.diagonal(c, axis1=1, axis2=2) * float(trace_sigma)


def spectral_radius(matrix) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(matrix, dtype=np.float64)))))


def steady_state(weights, n) -> np.ndarray:
    """The discrete Lyapunov solution C = Pi C Pi^T + D_Pi (T = 1: C = sum_k W^k D W^kT),
    in units of Sigma, at generations g = k T; defined only when rho(Pi) < 1 (else a
    ValueError: some node's error grows without bound, see :func:`growth_rates`)."""
    pi, dp = one_period(weights, n)
    rho = spectral_radius(pi)
    if rho >= 1 - 1e-12:
        raise ValueError(f"steady_state: rho(W) = {rho:.6g} >= 1, the errors of some nodes grow without bound")
    k = pi.shape[0]
    vec = np.linalg.solve(np.eye(k * k) - np.kron(pi, pi), dp.reshape(-1))
    c = vec.reshape(k, k)
    return 0.5 * (c + c.T)


# --------------------------------------------------------------------------- graph structure
def reach(matrix) -> np.ndarray:
    """Boolean reachability (paths of length >= 0) along edges i -> j where
    matrix[i, j] > 0 ("i draws data from j")."""
    a = np.asarray(matrix) > 0
    k = a.shape[0]
    r = a | np.eye(k, dtype=bool)
    for m in range(k):  # Floyd-Warshall closure
        r = r | (r[:, m : m + 1] & r[m : m + 1, :])
    return r


def strong_components(matrix) -> list[list[int]]:
    """Strongly connected components of the support of ``matrix``, each sorted,
    ordered by their smallest node."""
    r = reach(matrix)
    mutual = r & r.T
    seen, out = set(), []
    for i in range(r.shape[0]):
        if i not in seen:
            comp = [int(j) for j in np.flatnonzero(mutual[i])]
            seen.update(comp)
            out.append(comp)
    return out


def closed_classes(matrix) -> list[list[int]]:
    """Closed communicating classes: strong components with no edge leaving them
    (a set of nodes that draws only from itself)."""
    a = np.asarray(matrix) > 0
    out = []
    for comp in strong_components(matrix):
        outside = np.ones(a.shape[0], dtype=bool)
        outside[comp] = False
        if not a[np.ix_(np.asarray(comp, dtype=np.intp), np.flatnonzero(outside))].any():
            out.append(comp)
    return out


def period(matrix, cls) -> int:
    """Period of a strongly connected class: the gcd of its cycle lengths (0 for a
    single node without a self-loop, which has no cycle)."""
    a = np.asarray(matrix) > 0
    cls = list(cls)
    level = {cls[0]: 0}
    frontier = [cls[0]]
    g = 0
    members = set(cls)
    while frontier:
        nxt = []
        for u in frontier:
            for w in np.flatnonzero(a[u]):
                v = int(w)
                if v not in members:
                    continue
                if v in level:
                    g = math.gcd(g, level[u] + 1 - level[v])
                else:
                    level[v] = level[u] + 1
                    nxt.append(v)
        frontier = nxt
    return abs(g)


def growth_rates(weights, n) -> np.ndarray:
    """Asymptotic growth of C_g[i, i] per generation, lim (C_(g+1) - C_g)[i, i] in the
    Cesaro sense, in units of Sigma (E||e_i||^2 grows by rate_i tr Sigma per
    generation): 0 for bounded nodes.

    Derivation (extends docs/THEORY.md section 7 to periodic classes and schedules):
    C_(kT) = Pi^k C_0 Pi^kT + sum_(s<k) Pi^s D_Pi Pi^sT. With P the lcm of the periods
    of the closed real-free classes of Pi, M = lim_m Pi^(mP) exists (every such class
    is a direct sum of aperiodic stochastic blocks under Pi^P; the rest decays), and
    the increments average to (1/P) sum_(r<P) diag(M Pi^r D_Pi (M Pi^r)^T). For an
    aperiodic closed class with stationary law pi this is pi^T D pi for its nodes and
    h_i^2 pi^T D pi for a node absorbed into it with probability h_i, as in
    THEORY.md; a periodic class of period p gives p sum_j pi_j^2 D_jj."""
    w = _as_weights(weights)
    pi, dp = one_period(w, n)
    periods = [max(period(pi, c), 1) for c in closed_classes(pi) if np.all(np.abs(pi[c].sum(axis=1) - 1) < 1e-12)]
    p = reduce(math.lcm, periods, 1)
    m = np.linalg.matrix_power(pi, p)
    for _ in range(200):
        m2 = m @ m
        if np.max(np.abs(m2 - m)) < 1e-15:
            break
        m = m2
    rate = np.zeros(pi.shape[0])
    mr = m.copy()
    for _ in range(p):
        rate += np.diagonal(mr @ dp @ mr.T)
        mr = mr @ pi
    rate = rate / p / w.shape[0]
    return np.where(rate > 1e-12, rate, 0.0)


# --------------------------------------------------------------------------- OLS on a shared design
def ols_mean_sq_error(counts, design, noise: float, generations: int) -> np.ndarray:
    """E||w_i^(g) - w*||^2 per node, shape (generations + 1, K), for OLS nodes on ONE
    shared fixed design (``simulate_graph``'s construction): node i uses the first
    n_i = sum(counts[i]) rows of ``design`` (n_max, d), the first r_i = counts[i, 0]
    with real labels, then consecutive blocks of counts[i, 1 + j] rows labelled by
    node j's model, each with N(0, noise^2) label noise drawn by that consumer.

    Then e_i' = sum_j M_ij e_j + eta_i with M_ij = G_i^-1 X_Sij^T X_Sij,
    G_i = X_i^T X_i and Cov eta_i = noise^2 G_i^-1 (docs/THEORY.md section 7, "OLS on
    graphs"), so the (K d) x (K d) covariance follows C' = M C M^T + N,
    N = blockdiag(noise^2 G_i^-1), C_0 = N. This is exact given the design; the
    simulator's chains each draw their own design, so compare its mean with this
    averaged over designs. ``counts``: (K, K + 1) or a (T, K, K + 1) schedule."""
    x = np.asarray(design, dtype=np.float64)
    c = np.asarray(counts)
    if c.ndim == 2:
        c = c[None]
    t_len, k, _ = c.shape
    d = x.shape[1]
    sizes = c[0].sum(axis=1)
    ginv = []
    for i in range(k):
        xi = x[: sizes[i]]
        ginv.append(np.linalg.inv(xi.T @ xi))
    nmat = np.zeros((k * d, k * d))
    for i in range(k):
        nmat[i * d : (i + 1) * d, i * d : (i + 1) * d] = noise**2 * ginv[i]
    ms = []
    for t in range(t_len):
        m = np.zeros((k * d, k * d))
        for i in range(k):
            start = c[t, i, 0]
            for j in range(k):
                rows = x[start : start + c[t, i, 1 + j]]
                start += c[t, i, 1 + j]
                m[i * d : (i + 1) * d, j * d : (j + 1) * d] = ginv[i] @ (rows.T @ rows)
        ms.append(m)
    out = np.empty((generations + 1, k))
    cov = nmat.copy()
    for g in range(generations + 1):
        if g > 0:
            m = ms[(g - 1) % t_len]
            cov = m @ cov @ m.T + nmat
        out[g] = [np.trace(cov[i * d : (i + 1) * d, i * d : (i + 1) * d]) for i in range(k)]
    return out
