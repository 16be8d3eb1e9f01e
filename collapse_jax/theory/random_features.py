"""Random-feature regression under recursion: the exact law of the linear case
(THEORY.md section 19; ``cj.RandomFeatures(activation="linear")``).

Setting: x ~ N(0, I_d), teacher y = x^T w* + N(0, sigma^2), and a student that is
least squares (the minimum-norm fit when it interpolates, the limit lam -> 0 of the
family's ridge) on k = min(width, d) features Q x, Q a uniformly random k x d matrix
with orthonormal rows, the same along a chain. A fresh design every generation
(Replace). With s^2 = ||w*||^2 and b = ||(I - Q^T Q) w*||^2 the part of w* outside
the features' span (E b = s^2 (1 - k/d)):

* under-parameterised, k <= n - 2: every generation adds an OLS variance,
  E err_g = b + (sigma^2 + b) k/(n - k - 1) + g sigma^2 k/(n - k - 1): unbounded
  linear growth, steeper as k approaches the interpolation threshold n;
* over-parameterised, k >= n + 2 (and k <= d): the minimum-norm fit keeps only the
  projection of the previous model on the n-dimensional row space of a fresh
  design, so the error relative to the best feature model, e_g, obeys
  e_g = (n/k) e_(g-1) + (1 - n/k) ||beta*||^2 + sigma^2 n/(k - n - 1) with
  E ||beta*||^2 = s^2 k/d, and E err_g = E e_g + E b: bounded, converging
  geometrically at rate n/k to ||beta*||^2 + sigma^2 n k/((k - n)(k - n - 1)) above
  E b: the chain forgets the signal (E beta_g = (n/k)^g E beta_0 -> 0) but its
  variance stays bounded.

Wider than the inputs (width >= d) with d <= n - 2 the features span R^d and the
student is OLS on x: k = d, b = 0. The band n - 1 <= k <= n + 1 (the interpolation
threshold) has an infinite expected error and is refused, as are widths above d
with d >= n - 1 (the minimum-norm fit then depends on the feature directions
beyond d). Sources: the random-projection view of double descent (Bach 2023, SIAM
J. Math. Data Sci.); the finite-sample Wishart moments E tr (X^T X)^-1 = k/(n - k - 1)
and E tr (X X^T)^-1 = n/(k - n - 1) (Hastie, Montanari, Rosset, Tibshirani 2022);
the setting of Strong Model Collapse (Dohmatob, Feng, Subramonian, Kempe, ICLR 2025).
"""

from __future__ import annotations

import numpy as np

from ._checks import FloatOrArray, _out
from .regression import _gen, _nonneg, _pos_int

__all__ = ["gaussian_equivalent_error", "projection_replace_error", "projection_limit"]


def _regime(n: int, d: int, width: int) -> int:
    """k, the features' effective dimension, after checking the law exists."""
    k = min(width, d)
    if width > d and d > n - 2:
        raise ValueError(
            f"width={width} > d={d} with d >= n - 1 = {n - 1}: the minimum-norm fit depends on the feature directions "
            "beyond d, no closed form here"
        )
    if n - 1 <= k <= n + 1:
        raise ValueError(
            f"k = min(width, d) = {k} lies at the interpolation threshold n - 1 <= k <= n + 1 (n = {n}): the expected "
            "error is infinite"
        )
    return k


def projection_replace_error(g, n: int, d: int, width: int, noise: float = 1.0, signal_sq: float = 1.0) -> FloatOrArray:
    """E test error (excess risk, E_x (f_g(x) - x^T w*)^2) of the linear random-feature
    chain under Replace at generation ``g``, averaged over the chains' feature
    directions: the module's law. ``signal_sq`` is ||w*||^2.

    Examples:
        >>> import collapse_jax as cj
        >>> round(float(cj.theory.random_features.projection_replace_error(0, 50, 40, 20, 0.5)), 4)
        1.0172
    """
    g = _gen(g)
    n, d, width = _pos_int("n", n), _pos_int("d", d), _pos_int("width", width)
    s2, var = _nonneg("signal_sq", signal_sq), _nonneg("noise", noise) ** 2
    k = _regime(n, d, width)
    b = s2 * (1.0 - k / d)
    if k <= n - 2:
        unit = k / (n - k - 1)
        return _out(b + (var + b) * unit + g * var * unit)
    beta_sq = s2 * k / d
    rate = n / k
    step = (1.0 - rate) * beta_sq + var * n / (k - n - 1)
    e0 = (1.0 - rate) * beta_sq + (var + b) * n / (k - n - 1)
    fixed = step / (1.0 - rate)
    return _out(b + fixed + (e0 - fixed) * rate ** g.astype(np.float64))


def projection_limit(n: int, d: int, width: int, noise: float = 1.0, signal_sq: float = 1.0) -> float:
    """lim_g E err_g: infinite under-parameterised (k <= n - 2), and
    E b + s^2 k/d + sigma^2 n k/((k - n)(k - n - 1)) over-parameterised."""
    n, d, width = _pos_int("n", n), _pos_int("d", d), _pos_int("width", width)
    s2, var = _nonneg("signal_sq", signal_sq), _nonneg("noise", noise) ** 2
    k = _regime(n, d, width)
    if k <= n - 2:
        return float("inf")
    return float(s2 * (1.0 - k / d) + s2 * k / d + var * n * k / ((k - n) * (k - n - 1)))


# E phi(z), E phi'(z) = E z phi(z) and E phi(z)^2 for z ~ N(0, 1): the Hermite coefficients the
# Gaussian equivalent keeps, and the slope cj.RandomFeatures' exact metric reads
# (relu: 1/sqrt(2 pi), 1/2, 1/2; erf: 0, 2/sqrt(3 pi), (2/pi) arcsin(2/3))
HERMITE = {
    "linear": (0.0, 1.0, 1.0),
    "relu": (1.0 / np.sqrt(2.0 * np.pi), 0.5, 0.5),
    "erf": (0.0, 2.0 / np.sqrt(3.0 * np.pi), 2.0 / np.pi * np.arcsin(2.0 / 3.0)),
}


def gaussian_equivalent_error(
    g, n: int, d: int, width: int, activation: str = "relu", noise: float = 1.0, signal_sq: float = 1.0
) -> FloatOrArray:
    """The Gaussian-equivalent law of E test error of the nonlinear random-feature
    chain under Replace at generation ``g`` (ridgeless, under-parameterised, features
    no more than inputs: ``width <= min(d, n - 2)``; THEORY.md section 19).

    The features phi(w_i^T x) are replaced by their Gaussian equivalent
    mu_0 + mu_1 w_i^T x + mu_* xi_i (xi independent N(0, I); Goldt et al. 2022; Hu and
    Lu 2023; Mei and Montanari 2022), whose second moment on orthonormal directions is
    Sigma_F = c I + mu_0^2 1 1^T with c = E phi^2 - mu_0^2. The best feature model
    leaves b = s^2 (1 - mu_1^2 tr(Sigma_F^-1)/d) of the signal, tr(Sigma_F^-1) =
    (N - 1)/c + 1/(c + N mu_0^2), and OLS on n Gaussian rows adds (sigma^2 + b)
    N/(n - N - 1) at generation 0 and sigma^2 N/(n - N - 1) at every later one:
    E err_g = b + (sigma^2 + b + g sigma^2) N/(n - N - 1).

    A deterministic equivalent, not an exact law: the features are not Gaussian at
    finite d, and the simulation's gap to it shrinks as d grows at fixed N/d and n/d
    (relative gap 2.6 % at d = 40, 1.0 % at d = 100 for ReLU with N = d, n = 2 d,
    generation 3). With ``activation="linear"`` it is the exact
    :func:`projection_replace_error`.

    Examples:
        >>> import collapse_jax as cj
        >>> round(float(cj.theory.random_features.gaussian_equivalent_error(3, 200, 100, 100, "relu")), 4)
        4.5906
    """
    g = _gen(g)
    n, d, width = _pos_int("n", n), _pos_int("d", d), _pos_int("width", width)
    if activation not in HERMITE:
        raise ValueError(f"activation must be one of {tuple(HERMITE)}, got {activation!r}")
    if width > min(d, n - 2):
        raise ValueError(
            f"width={width} must be at most min(d, n - 2) = {min(d, n - 2)} (d = {d}, n = {n}): the Gaussian "
            "equivalent here covers the under-parameterised chain on no more features than inputs"
        )
    s2, var = _nonneg("signal_sq", signal_sq), _nonneg("noise", noise) ** 2
    mu0, mu1, second = HERMITE[activation]
    c = second - mu0 * mu0
    tr_inv = (width - 1) / c + 1.0 / (c + width * mu0 * mu0)
    b = s2 * (1.0 - mu1 * mu1 * tr_inv / d)
    unit = width / (n - width - 1)
    return _out(b + (var + b) * unit + g * var * unit)
