"""Closed forms for kernel density estimates refitted on their own samples, with a
fixed absolute bandwidth h (Kazdan et al. 2024, "Collapse or Thrive?", arXiv
2410.16713, KDE task; THEORY.md section 12, "KDE, Replace, fixed bandwidth h").

Conventions are those of `collapse_jax.theory.gaussian`: every function takes the
simulator's generation ``g`` (int or integer array; generation 0 is the KDE fitted to
the chain's original n real points, generation g has had g + 1 fits), returns a float
for scalar ``g`` and an array otherwise, and works in numpy float64.

Quantities (those of `collapse_jax.KDE`'s metrics; in d dimensions, traces):

  * s^2_g, ``sample_variance``: the weighted MLE variance of the stored sample,
    sum_i w_i ||x_i - xbar||^2 with sum_i w_i = 1;
  * ``variance``: the KDE density's variance, s^2_g + d h^2;
  * ``mean_sq_error``: ||xbar_g - mu_0||^2.

``var0`` is the truth's total variance tr Cov_0 (sigma_0^2 in 1-D) and ``dim`` the
dimension d. Only second moments enter, so every formula holds for any truth with
finite variance (a Gaussian mixture included), not only a Gaussian.

Derivation (the only fact used): a draw from a KDE is y = x_J + h z with J chosen
with probability w_J and z ~ N(0, I) independent. Given the store, y therefore has mean
xbar and covariance trace s^2 + d h^2, and m i.i.d. draws have a sample variance
(divide by m) of expectation ((m - 1)/m)(s^2 + d h^2) and a mean ybar with
E||ybar - xbar||^2 = (s^2 + d h^2)/m.

**Replace** (n points from the last fit): with r = (n - 1)/n and V_g = E[s^2_g]::

    V_0 = r var0,   V_g = r (V_{g-1} + d h^2),

so  V_g = r^(g+1) var0 + (n - 1) d h^2 (1 - r^g),
moving geometrically (rate r per generation) from r var0 to the fixed point
(n - 1) d h^2, the density variance s^2 + d h^2 to n d h^2. The chain forgets the truth:
it **inflates** when n d h^2 > var0 (the usual case: a rule-of-thumb bandwidth has
h^2 ~ sigma_0^2 n^(-2/5) >> sigma_0^2 / n) and shrinks to the floor (n - 1) d h^2,
never to 0, when n d h^2 < var0 (e.g. h = 0.1, n = 10, var0 = 1).

**Accumulate** (the original sample plus g batches of n, batch j from fit j - 1, all
weights equal): with T_g = (g + 1) n s^2_g the pooled scatter, the parallel-variance
merge of the batch drawn from fit g - 1 (pooled size N = g n) gives::

    E[T_g | fit g-1] = T_{g-1} + (n - 1)(s^2 + d h^2) + (N n/(N + n)) (s^2 + d h^2)/n,

i.e.  V_g = (1 - 1/(n (g+1)^2)) V_{g-1} + (d h^2/(g + 1)) (1 - 1/(n (g + 1))).
With h = 0 this is the Gaussian MLE chain of THEORY.md section 12; with h > 0 each
generation adds about d h^2/(g + 1): s^2 stays anchored near var0 (the original
sample keeps its weight 1/(g + 1)) and drifts up like d h^2 log g, without bound but
only logarithmically. Where Replace inflates (n d h^2 > var0) it grows about d h^2 per
generation while g << n, so Accumulate inflates far more slowly; where Replace shrinks,
Accumulate stays above it.

**Real and synthetic points mixed** (`Weighted(combine="samples")` and `FreshMix`):
the store holds r fresh real points of total weight w and m points from fit g - 1 of
total weight 1 - w (each group uniform within). With S_x, S_y, xbar_r, ybar the groups'
MLE variances and means, the mixture identity::

    s^2 = w S_x + (1 - w) S_y + w (1 - w) ||xbar_r - ybar||^2

and the mean xbar = w xbar_r + (1 - w) ybar give, with e_g = E||xbar_g - mu_0||^2::

    e_g = w^2 var0/r + (1 - w)^2 (e_{g-1} + (V_{g-1} + d h^2)/m),
    V_g = w ((r - 1)/r) var0 + (1 - w) ((m - 1)/m)(V_{g-1} + d h^2)
          + w (1 - w) (var0/r + e_{g-1} + (V_{g-1} + d h^2)/m),

from V_0 = ((n - 1)/n) var0 and e_0 = var0/n (generation 0 fits the n original real
points). ``Weighted(w, ratio=k)``: r = n, m = floor(n/k + 1/2); ``FreshMix(lam)``:
r = floor(lam n + 1/2), m = n - r, w = r/n (every point has weight 1/n). w = 0 with
m = n is Replace; w = 1 refits n fresh real points every generation.

The Replace, Accumulate and Weighted recursions were checked against an independent
numpy Monte Carlo (20,000 chains); all of them, FreshMix included, are tested against the
simulator in tests/test_kde.py.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from ._checks import FloatOrArray, _count, _fraction, _generations, _integer, _out, _positive, _real

__all__ = [
    "freshmix_moments",
    "mixed_moments",
    "replace_limit",
    "sample_variance_accumulate",
    "sample_variance_replace",
    "variance_accumulate",
    "variance_replace",
    "weighted_moments",
]


def _common(n, bandwidth, var0, dim) -> tuple[int, float, float, int]:
    n = _integer(n, "n", 1)
    h = _positive(bandwidth, "bandwidth")
    var0 = _real(var0, "var0", 0.0, math.inf, open_low=False)
    dim = _integer(dim, "dim", 1)
    return n, h, var0, dim


# --------------------------------------------------------------------------------------
# Replace
# --------------------------------------------------------------------------------------


def sample_variance_replace(g: ArrayLike, n: int, bandwidth: float, var0: float = 1.0, dim: int = 1) -> FloatOrArray:
    """E[s^2_g] in the Replace regime: the stored sample's MLE variance (trace in d-D).

    E[s^2_g] = r^(g+1) var0 + (n - 1) d h^2 (1 - r^g),  r = (n - 1)/n,

    the solution of E[s^2_g] = r (E[s^2_{g-1}] + d h^2) from E[s^2_0] = r var0. It
    tends to (n - 1) d h^2: up (inflation) when n d h^2 > var0, down otherwise.

    Args:
        g: generation(s), g >= 0 (generation 0 = the fit to the n real points).
        n: points per generation, n >= 1.
        bandwidth: the kernel's sd h > 0 (fixed across generations).
        var0: the truth's total variance tr Cov_0 >= 0.
        dim: dimension d >= 1.

    Returns:
        E[s^2_g], float or array shaped like ``g``.

    Source: THEORY.md section 12 (KDE, Replace); Kazdan et al., arXiv 2410.16713.
    """
    g_arr = _generations(g).astype(np.float64)
    n, h, var0, dim = _common(n, bandwidth, var0, dim)
    r = (n - 1) / n
    if r == 0.0:  # n = 1: a single stored point has variance 0
        return _out(np.zeros_like(g_arr))
    return _out(r ** (g_arr + 1) * var0 - (n - 1) * dim * h * h * np.expm1(g_arr * math.log(r)))


def variance_replace(g: ArrayLike, n: int, bandwidth: float, var0: float = 1.0, dim: int = 1) -> FloatOrArray:
    """E[variance_g] of the KDE density in the Replace regime: E[s^2_g] + d h^2 (see
    `sample_variance_replace`); it tends to n d h^2.

    Source: THEORY.md section 12 (KDE, Replace); Kazdan et al., arXiv 2410.16713.
    """
    _, h, _, d = _common(n, bandwidth, var0, dim)
    return _out(np.asarray(sample_variance_replace(g, n, bandwidth, var0, dim)) + d * h * h)


def replace_limit(n: int, bandwidth: float, dim: int = 1) -> tuple[float, float]:
    """Limits as g -> infinity in the Replace regime: (E[s^2], E[variance]) =
    ((n - 1) d h^2, n d h^2), whatever the truth.

    Source: THEORY.md section 12 (KDE, Replace).
    """
    n, h, _, dim = _common(n, bandwidth, 0.0, dim)
    return (n - 1) * dim * h * h, n * dim * h * h


# --------------------------------------------------------------------------------------
# Accumulate
# --------------------------------------------------------------------------------------


def sample_variance_accumulate(g: ArrayLike, n: int, bandwidth: float, var0: float = 1.0, dim: int = 1) -> FloatOrArray:
    """E[s^2_g] in the Accumulate regime (original sample + g synthetic batches of n,
    batch j drawn from fit j - 1, all points weighted equally).

    V_0 = ((n - 1)/n) var0,
    V_g = (1 - 1/(n (g+1)^2)) V_{g-1} + (d h^2/(g + 1)) (1 - 1/(n (g + 1))),

    unbounded but growing only like d h^2 log g (see the module docstring).

    Args:
        g: generation(s), g >= 0.
        n: batch size (the original sample and every synthetic batch), n >= 1.
        bandwidth: the kernel's sd h > 0.
        var0: the truth's total variance tr Cov_0 >= 0.
        dim: dimension d >= 1.

    Returns:
        E[s^2_g], float or array shaped like ``g``.

    Source: THEORY.md section 12 (Accumulate, with h = 0); derived in this module's
    docstring.
    """
    g_arr = _generations(g)
    n, h, var0, dim = _common(n, bandwidth, var0, dim)
    t_max = int(g_arr.max(initial=0))
    v = np.empty(t_max + 1)
    v[0] = (n - 1) / n * var0
    for k in range(1, t_max + 1):
        t = k + 1.0
        v[k] = (1 - 1 / (n * t * t)) * v[k - 1] + dim * h * h / t * (1 - 1 / (n * t))
    return _out(v[g_arr])


def variance_accumulate(g: ArrayLike, n: int, bandwidth: float, var0: float = 1.0, dim: int = 1) -> FloatOrArray:
    """E[variance_g] of the KDE density in the Accumulate regime: E[s^2_g] + d h^2 (see
    `sample_variance_accumulate`)."""
    _, h, _, d = _common(n, bandwidth, var0, dim)
    return _out(np.asarray(sample_variance_accumulate(g, n, bandwidth, var0, dim)) + d * h * h)


# --------------------------------------------------------------------------------------
# Real and synthetic points mixed in one store
# --------------------------------------------------------------------------------------


def mixed_moments(
    g: ArrayLike,
    n: int,
    n_real: int,
    n_synth: int,
    real_weight: float,
    bandwidth: float,
    var0: float = 1.0,
    dim: int = 1,
) -> tuple[FloatOrArray, FloatOrArray]:
    """(E[s^2_g], E||xbar_g - mu_0||^2) when every generation g >= 1 stores ``n_real``
    fresh real points of total weight w and ``n_synth`` points drawn from fit g - 1 of
    total weight 1 - w; generation 0 stores the ``n`` original real points.

    The exact 2 x 2 linear recursion of the module docstring. Groups with zero total
    weight may be empty (w = 0 and n_real = 0 is Replace with n_synth points).

    Args:
        g: generation(s), g >= 0.
        n: size of the original sample (generation 0), n >= 1.
        n_real: fresh real points per generation (>= 1 unless w = 0).
        n_synth: synthetic points per generation (>= 1 unless w = 1).
        real_weight: total weight w in [0, 1] of the real points.
        bandwidth: the kernel's sd h > 0.
        var0: the truth's total variance tr Cov_0 >= 0.
        dim: dimension d >= 1.

    Returns:
        (E[sample_variance_g], E[mean_sq_error_g]), floats or arrays shaped like ``g``.

    Source: derived in this module's docstring (the KDE analogue of THEORY.md section
    12, "FreshMix, learned variance").
    """
    g_arr = _generations(g)
    n, h, var0, dim = _common(n, bandwidth, var0, dim)
    w = _fraction(real_weight, "real_weight")
    r = _integer(n_real, "n_real", 0 if w == 0 else 1)
    m = _integer(n_synth, "n_synth", 0 if w == 1 else 1)
    dh2 = dim * h * h
    t_max = int(g_arr.max(initial=0))
    v, e = np.empty(t_max + 1), np.empty(t_max + 1)
    v[0], e[0] = (n - 1) / n * var0, var0 / n
    for k in range(1, t_max + 1):
        spread = v[k - 1] + dh2  # trace of the covariance of one draw from fit k - 1
        real_v = (r - 1) / r * var0 if w > 0 else 0.0
        real_e = var0 / r if w > 0 else 0.0
        synth_v = (m - 1) / m * spread if w < 1 else 0.0
        synth_e = e[k - 1] + spread / m if w < 1 else 0.0
        e[k] = w * w * real_e + (1 - w) ** 2 * synth_e
        v[k] = w * real_v + (1 - w) * synth_v + w * (1 - w) * (real_e + synth_e)
    return _out(v[g_arr]), _out(e[g_arr])


def weighted_moments(
    g: ArrayLike,
    n: int,
    real_weight: float,
    ratio: float,
    bandwidth: float,
    var0: float = 1.0,
    dim: int = 1,
) -> tuple[FloatOrArray, FloatOrArray]:
    """(E[s^2_g], E||xbar_g - mu_0||^2) under ``Weighted(real_weight, ratio,
    combine="samples")``: n fresh real points of weight w/n each and m = floor(n/ratio
    + 1/2) synthetic points of weight (1 - w)/m each (`mixed_moments`).

    Source: derived in this module's docstring; He, Xu, Cheng (arXiv 2502.18049) for the
    weighting scheme.
    """
    k = _positive(ratio, "ratio")
    n = _integer(n, "n", 1)
    m = math.floor(n / k + 0.5)
    return mixed_moments(g, n, n, m, real_weight, bandwidth, var0, dim)


def freshmix_moments(
    g: ArrayLike,
    n: int,
    real_fraction: float,
    bandwidth: float,
    var0: float = 1.0,
    dim: int = 1,
) -> tuple[FloatOrArray, FloatOrArray]:
    """(E[s^2_g], E||xbar_g - mu_0||^2) under ``FreshMix(real_fraction)``: r =
    floor(lam n + 1/2) fresh real and n - r synthetic points pooled with equal weights,
    i.e. `mixed_moments` with w = r/n.

    Source: derived in this module's docstring (THEORY.md section 12, "FreshMix,
    learned variance", for the Gaussian analogue).
    """
    n = _integer(n, "n", 1)
    lam = _fraction(real_fraction, "real_fraction")
    r = _count(lam, n)
    return mixed_moments(g, n, r, n - r, r / n, bandwidth, var0, dim)
