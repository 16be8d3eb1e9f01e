"""Statistics over chains: moments that stream and merge exactly, the heavy-tail
check, and quantiles with order-statistic confidence intervals."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

# What each built-in metric, diagnostic and event measures: (long_name, units) for the
# netCDF file (CF attributes). The simulated data are numbers in the truth's own units,
# so scales are dimensionless ("1"); log-likelihoods and divergences are in nats.
# A metric of a user's family that is not listed gets its name as long_name and no units.
# extra dims whose coordinate values are a constructor argument of the run's family
# (Result.config["family"][argument]): dim -> (argument, long_name)
DIM_COORDS: dict[str, tuple[str, str]] = {"train_size": ("train_sizes", "memoriser's training size T")}

ATTRS: dict[str, tuple[str, str | None]] = {
    # Gaussian and location families
    "variance": ("fitted variance sigma^2_g", "1"),
    "log_variance": ("log of the fitted variance", "1"),
    "sd": ("fitted standard deviation sigma_g", "1"),
    "mean_sq_error": ("squared distance of the fitted mean to the true mean", "1"),
    "kl_to_truth": ("KL divergence KL(truth || fit) in nats (Categorical: of the smoothed fit)", "1"),
    "w2_sq_to_truth": ("squared 2-Wasserstein distance of the fit to the truth", "1"),
    "heldout_nll": ("mean negative log-likelihood of held-out true draws under the fit, in nats", "1"),
    "tail_mass": ("fit's mass beyond the truth's 1% tail quantiles", "1"),
    "trace_ratio": ("trace of the fitted covariance over the true trace", "1"),
    "logdet_ratio": ("log det of the fitted covariance minus the true log det", "1"),
    "posterior_width": ("posterior standard deviation of the location", "1"),
    # Gaussian mixtures and KDE
    "component_sd": ("fitted standard deviation of each component", "1"),
    "component_weight": ("fitted weight of each component", "1"),
    "minority_weight": ("smallest fitted component weight", "1"),
    "total_variance": ("total variance of the fitted mixture", "1"),
    "l2_to_truth": ("L2 distance between the fitted and the true density", "1"),
    "sample_variance": ("variance of the sample the KDE was fitted to", "1"),
    # regression
    "param_sq_error": ("squared distance of the fitted coefficients to the true ones", "1"),
    "test_error": ("excess test error of the fitted predictor (mean squared)", "1"),
    "coef_norm": ("norm of the fitted coefficients", "1"),
    "heldout_logloss": ("mean logistic loss on held-out true draws, in nats", "1"),
    "noise_variance": ("fitted noise variance", "1"),
    # categorical
    "collision_probability": ("collision probability sum_k p_k^2 of the fit", "1"),
    "entropy": ("entropy of the fitted distribution, in nats", "1"),
    "extinct": ("number of categories with fitted probability zero", "1"),
    "rare_mass": ("fitted mass on the truth's rare categories", "1"),
    "missing_mass": ("truth's mass on the categories the fit gives zero", "1"),
    "support_size": ("number of categories with fitted probability > 0", "1"),
    "good_turing": ("Good-Turing estimate of the missing mass of the fit's sample", "1"),
    "cross_entropy": ("cross-entropy of the (smoothed) fit under the truth, in nats", "1"),
    "l1_to_truth": ("L1 distance between the fit and the truth", "1"),
    "fixed_category": ("index of the category holding all the mass, -1 if none", "1"),
    "memoriser_error": ("test error of a memoriser trained on T draws from the fit", "1"),
    # synthesis and graphs
    "accept_rate": ("share of candidate synthetic points accepted by the filters", "1"),
    "shortfall": ("1 where fewer candidates passed than synthetic points were needed", "1"),
    "homogenisation": ("mean squared distance between the nodes' location parameters", "1"),
    # diagnostics
    "converged": ("1 where the fit's iterations converged", "1"),
    "dead_components": ("number of mixture components with no weight", "1"),
    "em_iters": ("EM iterations of the fit", "1"),
    "divergences": ("divergent NUTS transitions", "1"),
    "grad_norm": ("norm of the objective's gradient at the fit", "1"),
    "objective": ("objective value at the fit", "1"),
    # events: the first generation at which it happened
    "collapse": ("first generation at which the fitted variance fell below collapse_below", "1"),
    "extinction": ("first generation at which a category went extinct", "1"),
    "fixation": ("first generation at which one category held all the mass", "1"),
}


def moments_from_array(x: np.ndarray) -> dict[str, np.ndarray]:
    """Count, non-finite count, mean and central sums M2, M3, M4 over axis 0,
    ignoring non-finite values (float64)."""
    x = np.asarray(x, dtype=np.float64)
    fin = np.isfinite(x)
    cnt = fin.sum(axis=0)
    mean = np.where(fin, x, 0).sum(axis=0) / np.maximum(cnt, 1)
    dev = np.where(fin, x - mean, 0)
    d2 = dev * dev
    return {
        "count": cnt,
        "nonfinite": (~fin).sum(axis=0),
        "mean": mean,
        "m2": d2.sum(axis=0),
        "m3": (d2 * dev).sum(axis=0),
        "m4": (d2 * d2).sum(axis=0),
    }


def combine_moments(a: dict, b: dict) -> dict:
    """Merge two sets of streamed moments (Pebay 2008, "Formulas for robust,
    one-pass parallel computation of covariances and arbitrary-order statistical
    moments", Sandia SAND2008-6212, eqs. 1.1-1.4)."""
    na, nb = a["count"].astype(np.float64), b["count"].astype(np.float64)
    n = na + nb
    safe = np.where(n > 0, n, 1.0)
    delta = b["mean"] - a["mean"]
    mean = a["mean"] + delta * nb / safe
    m2 = a["m2"] + b["m2"] + delta**2 * na * nb / safe
    m3 = a["m3"] + b["m3"] + delta**3 * na * nb * (na - nb) / safe**2 + 3 * delta * (na * b["m2"] - nb * a["m2"]) / safe
    m4 = (
        a["m4"]
        + b["m4"]
        + delta**4 * na * nb * (na * na - na * nb + nb * nb) / safe**3
        + 6 * delta**2 * (na * na * b["m2"] + nb * nb * a["m2"]) / safe**2
        + 4 * delta * (na * b["m3"] - nb * a["m3"]) / safe
    )
    out = {
        "count": a["count"] + b["count"],
        "nonfinite": a["nonfinite"] + b["nonfinite"],
        "mean": mean,
        "m2": m2,
        "m3": m3,
        "m4": m4,
    }
    empty = n == 0
    if np.any(empty):
        for k in ("mean", "m2", "m3", "m4"):
            out[k] = np.where(empty, 0.0, out[k])
    return out


HEAVY_TAIL_RSE = 0.1


def heavy_tail(count, m2, m4) -> bool:
    """True when the standard error of the mean is unreliable: the estimated
    relative standard error of the sample variance, sqrt((kurtosis - 1) / count),
    exceeds 0.1, i.e. fewer than about 100 "effective" chains carry the variance
    (count / kurtosis < 100). Typical case: E[variance] of a long chain, whose law
    is close to log-normal (THEORY.md section 1 item 2). Heavy tails make the
    sample kurtosis itself optimistic, so a False here is no guarantee: prefer
    E[log variance], E[sd] and medians for long chains."""
    if count < 4 or not m2 > 0:
        return False
    if not m4 > 0:  # m2 > 0 forces m4 > 0: it underflowed (values near 1e-100), so kurtosis cannot be assessed
        return True
    kurt = count * (m4 / m2) / m2  # m2 * m2 would underflow first
    return math.sqrt(max(kurt - 1.0, 0.0) / count) > HEAVY_TAIL_RSE


def chain_quantiles(x: np.ndarray, qs) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles ``qs`` over axis 0 (chains), counting every chain that has a value:
    +inf ranks last and -inf first, so the 95th percentile of a generation where
    half the chains have an infinite KL is +inf, not the largest finite value.
    NaN (no value) is left out of the ranking and counted. Linear interpolation
    between order statistics (NumPy's default), where a neighbour at +-inf gives
    that infinity (and -inf next to +inf gives NaN: the quantile lies between them).

    Returns ``(q, n_nan)``: ``q`` of shape ``(len(qs), *x.shape[1:])`` (float64) and
    the number of NaN chains per entry.
    """
    xs = np.sort(np.asarray(x, dtype=np.float64), axis=0)  # NaN sorts last
    nan = np.isnan(xs)
    n = xs.shape[0] - nan.sum(axis=0)
    out = np.full((len(qs),) + xs.shape[1:], np.nan)
    for i, q in enumerate(qs):
        h = (n - 1) * q
        lo = np.clip(np.floor(h).astype(np.int64), 0, max(xs.shape[0] - 1, 0))
        hi = np.clip(np.ceil(h).astype(np.int64), 0, max(xs.shape[0] - 1, 0))
        frac = h - np.floor(h)
        if xs.shape[0] == 0:
            continue
        a = np.take_along_axis(xs, lo[None], axis=0)[0]
        b = np.take_along_axis(xs, hi[None], axis=0)[0]
        with np.errstate(invalid="ignore"):
            lin = a + (b - a) * frac
        val = np.where(
            (frac == 0) | (a == b),
            a,
            np.where(np.isinf(a) & np.isinf(b), np.nan, np.where(np.isinf(b), b, np.where(np.isinf(a), a, lin))),
        )
        out[i] = np.where(n > 0, val, np.nan)
    return out, nan.sum(axis=0)


def quantile_ci(x: np.ndarray, q: float, level: float = 0.95):
    """Quantile ``q`` over axis 0 with a distribution-free confidence interval: the
    order statistics at ranks N q -+ z sqrt(N q (1 - q)) (normal approximation to
    the binomial count below the quantile).

    Every chain with a value is ranked, +-inf included (see :func:`chain_quantiles`):
    where the interval reaches an infinite order statistic its bound is that
    infinity, and where the quantile itself is infinite so is the estimate. NaN
    chains are left out of the ranking (N counts the others); the caller reports them.
    """
    if not 0 < q < 1:
        raise ValueError(f"quantile: q must be in (0, 1), got {q}")
    if not 0 < level < 1:
        raise ValueError(f"quantile: level must be in (0, 1), got {level}")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    xs = np.sort(np.asarray(x, dtype=np.float64), axis=0)  # NaN sorts last
    n = np.sum(~np.isnan(xs), axis=0)
    est = chain_quantiles(xs, (q,))[0][0]
    half = z * np.sqrt(n * q * (1 - q))
    lo_i = np.clip(np.floor(n * q - half).astype(int), 0, np.maximum(n - 1, 0))
    hi_i = np.clip(np.ceil(n * q + half).astype(int), 0, np.maximum(n - 1, 0))
    lo = np.where(n > 0, np.take_along_axis(xs, lo_i[None], axis=0)[0], np.nan)
    hi = np.where(n > 0, np.take_along_axis(xs, hi_i[None], axis=0)[0], np.nan)
    return est, lo, hi
