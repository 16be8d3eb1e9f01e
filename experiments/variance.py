"""Variance vs generation: a 1-D Gaussian refitted on its own samples (Replace).

Shumailov et al. (Nature 2024; arXiv 2305.17493), the Gaussian case of model
collapse: mean and variance are refitted each generation on n samples drawn from the
previous fit, by maximum likelihood (divide by n) or the unbiased estimator (divide
by n - 1), for n in {10, 100, 1000}. Exact sufficient-statistics path (the sample
mean and scatter of n points are drawn directly: N(mu, sigma^2/n) and sigma^2
chi^2_{n-1}), float64, summary mode over every chain.

Rows: MLE (panels a1, b1, c1), unbiased (a2, b2, c2); one legend below them. Columns:
(a) E[sigma_g^2] / sigma_0^2 on a log axis: MC mean +- 2 s.e. (drawn as mean times or over
exp(2 s.e./mean), which never crosses zero), the median of the first 2,000 chains (dotted)
and theory ((n - 1)/(n - delta))^(g + 1) dashed (cj.theory.variance_mean). The unbiased
chain's variance is a martingale (E = sigma_0^2 at every generation) while almost
every chain collapses: its mean is carried by ever rarer chains, its relative
variance (1 + 2/(n - 1))^(g + 1) - 1 explodes, and a finite Monte Carlo sample falls
below it. Points where the standard error is unreliable (Result.summary's
``heavy_tail``: a few chains carry the variance) are marked with crosses.
(b) -E[log sigma_g^2] on log-log axes (a straight line of slope 1 whose height is the
per-fit drift): MC mean +- 2 s.e., theory -(g + 1)(psi((n - 1)/2) + log(2/(n - delta)))
dashed (cj.theory.log_variance_mean): the typical chain's drift, the quantity that does
not suffer the heavy tail.
(c) The collapse probability P(sigma_g < 0.1): MC +- 2 binomial s.e. (log axis),
the exact law (characteristic-function inversion; cj.theory.collapse_probability with
method="exact") dashed, its normal approximation dotted grey.

    python experiments/variance.py            # full: 100,000 chains x 2,000 generations per curve
    python experiments/variance.py --smoke    # seconds
"""

from __future__ import annotations

import csv
import math

import numpy as np
from _common import full_run_checks, study_args

import collapse_jax as cj
from collapse_jax.results import atomic_write

NS = (10, 100, 1000)
ESTIMATORS = ("mle", "unbiased")
THRESHOLD = 0.1  # the collapse threshold on the standard deviation (sigma_0 = 1)
KEPT = 2000  # chains kept for the medians; means, s.e. and P(sd < 0.1) stream over every chain


def run_curve(estimator: str, n: int, chains: int, G: int, seed: int, progress: bool) -> dict:
    """One (estimator, n) chain: per-generation summaries and the collapse probability."""
    res = cj.simulate(
        cj.Gaussian(estimator=estimator, sampler="exact"),
        cj.Replace(),
        n=n,
        generations=G,
        chains=chains,
        seed=seed,
        keep="summary",
        keep_chains=min(chains, KEPT),
        dtype="float64",  # the MLE variance at n = 10 reaches 1e-190 by generation 2,000
        metrics=["variance", "log_variance", "sd"],
        thresholds={"sd": THRESHOLD},
        progress=progress,
    )
    summary = res.summary()
    out = {}
    for metric in ("variance", "log_variance"):
        rows = summary[summary.metric == metric].sort_values("generation")
        out[metric] = {k: rows[k].to_numpy() for k in ("mean", "se", "q50", "heavy_tail")}
    prob = res.prob_below("sd", THRESHOLD).sort_values("generation")
    out["collapse"] = {"mean": prob["p"].to_numpy(), "se": prob["se"].to_numpy()}
    gens = np.arange(G + 1)
    out["theory"] = {
        "variance": np.asarray(cj.theory.variance_mean(gens, n, estimator)),
        "log_variance": np.asarray(cj.theory.log_variance_mean(gens, n, estimator)),
        "collapse": np.asarray(cj.theory.collapse_probability(gens, n, estimator, THRESHOLD, method="exact")),
        "collapse_normal": np.asarray(cj.theory.collapse_probability(gens, n, estimator, THRESHOLD)),
    }
    return out


def main(argv=None) -> int:
    args, chains, G, out, tag = study_args(__doc__, argv, chains=(500, 100_000), generations=(60, 2000))
    gens = np.arange(G + 1)
    curves = {}
    for est in ESTIMATORS:
        for n in NS:
            curves[est, n] = run_curve(est, n, chains, G, args.seed, progress=not args.smoke)

    # the table: every generation up to 50, then every 10th
    keep = np.unique(np.concatenate([gens[:51], gens[::10], [G]]))
    csv_path = out / f"variance{tag}.csv"
    atomic_write(csv_path, lambda tmp: _write_csv(tmp, curves, keep))
    _figure(out, tag, args, chains, G, gens, curves)
    print(f"wrote {csv_path} and variance{tag}.png/.pdf in {out}")
    if not full_run_checks(args, chains, G):
        return 0
    for (est, n), c in curves.items():
        z = (c["log_variance"]["mean"] - c["theory"]["log_variance"]) / c["log_variance"]["se"]
        dp = np.abs(c["collapse"]["mean"] - c["theory"]["collapse"])
        print(
            f"{est:8s} n={n:4d}: max |z| E log var {np.nanmax(np.abs(z)):.2f}; "
            f"max |P_mc - P_exact| {dp.max():.4f} (max 2 s.e. {2 * c['collapse']['se'].max():.4f})"
        )
    return 0


def _write_csv(path, curves, keep) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["estimator", "n", "metric", "generation", "mc_mean", "mc_se", "mc_median", "heavy_tail", "theory",
                    "theory_normal_approx"])  # fmt: skip
        for (est, n), c in curves.items():
            for metric in ("variance", "log_variance", "collapse"):
                m = c[metric]
                for g in keep:
                    med = m["q50"][g] if "q50" in m else math.nan
                    heavy = int(m["heavy_tail"][g]) if "heavy_tail" in m else 0
                    approx = c["theory"]["collapse_normal"][g] if metric == "collapse" else math.nan
                    w.writerow([est, n, metric, int(g), f"{m['mean'][g]:.6g}", f"{m['se'][g]:.3g}", f"{med:.6g}", heavy,
                                f"{c['theory'][metric][g]:.6g}", f"{approx:.6g}"])  # fmt: skip


def _band(ax, x, m, se, col, alpha, floor, log_symmetric=False):
    """The Monte Carlo band m +- 2 s.e. on a log axis, its lower edge clipped at the
    axis floor. ``log_symmetric``: drawn as m exp(+-2 se/m) instead, the same band
    where se << m and never below zero where the standard error is as large as the
    mean (E[variance] under heavy tails)."""
    if log_symmetric:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            f = np.exp(np.minimum(2 * se / np.abs(m), 700.0))
        lo, hi = m / f, m * f
    else:
        lo, hi = m - 2 * se, m + 2 * se
    ok = np.isfinite(lo) & np.isfinite(hi) & (m > 0)
    ax.fill_between(x[ok], np.maximum(lo[ok], floor), hi[ok], color=col, alpha=alpha, lw=0)


def _figure(out, tag, args, chains, G, gens, curves) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(2, 3, figsize=(16, 10))
    colours = {n: f"C{i}" for i, n in enumerate(NS)}
    floor_p = 0.5 / chains
    mark_every = max(1, G // 80)
    for row, est in enumerate(ESTIMATORS):
        label_est = "MLE (divide by n)" if est == "mle" else "unbiased (divide by n - 1)"
        ax_v, ax_l, ax_p = axes[row]
        for n in NS:
            c, col = curves[est, n], colours[n]
            v = c["variance"]
            ax_v.plot(gens, v["mean"], color=col, lw=1.3)
            _band(ax_v, gens, v["mean"], v["se"], col, 0.25, 1e-12, log_symmetric=True)
            ax_v.plot(gens, v["q50"], ":", color=col, lw=1.2)
            heavy = v["heavy_tail"].astype(bool)
            ax_v.plot(gens[heavy][::mark_every], v["mean"][heavy][::mark_every], "x", color=col, ms=4)
            ax_v.plot(gens, c["theory"]["variance"], "--", color="k", lw=0.9)

            lv = c["log_variance"]  # drawn as -E[log sigma^2] on log-log axes: slope 1, height the drift
            ax_l.plot(gens + 1, -lv["mean"], color=col, lw=1.3)
            _band(ax_l, gens + 1, -lv["mean"], lv["se"], col, 0.3, 1e-4)
            ax_l.plot(gens + 1, -c["theory"]["log_variance"], "--", color="k", lw=0.9)

            p = c["collapse"]
            ax_p.plot(gens + 1, p["mean"], color=col, lw=1.3)
            _band(ax_p, gens + 1, p["mean"], p["se"], col, 0.3, floor_p)
            ax_p.plot(gens + 1, c["theory"]["collapse"], "--", color="k", lw=0.9)
            ax_p.plot(gens + 1, c["theory"]["collapse_normal"], ":", color="0.45", lw=1.0)
        a, b, c_ = (f"({k}{row + 1})" for k in "abc")
        ax_v.set(yscale="log", ylim=(1e-12, 10), xlabel="generation g", ylabel="sigma_g^2 / sigma_0^2 (log)")
        ax_v.set_title(f"{a} E[variance], {label_est}", fontsize=10)
        ax_l.set(xscale="log", yscale="log", ylim=(1e-4, None), xlabel="fits g + 1 (log)",
                 ylabel="-E[log sigma_g^2]  (sigma_0 = 1; log)")  # fmt: skip
        ax_l.set_title(f"{b} minus E[log variance], {label_est}", fontsize=10)
        ax_p.set(xscale="log", yscale="log", ylim=(floor_p, 1.5), xlabel="fits g + 1 (log)",
                 ylabel=f"P(sigma_g < {THRESHOLD:g})  (log)")  # fmt: skip
        ax_p.set_title(f"{c_} collapse probability, {label_est}", fontsize=10)
    # one legend for all six panels, below them (in the panels it hid the curves)
    handles = [Line2D([], [], color=colours[n], lw=2.5, label=f"n = {n}") for n in NS] + [
        Line2D([], [], color="k", lw=1.3, label="Monte Carlo mean (a, b) or fraction (c); band +- 2 s.e."),
        Line2D([], [], ls=":", color="k", lw=1.2, label=f"Monte Carlo median (a; first {min(chains, KEPT):,} chains)"),
        Line2D([], [], ls="", marker="x", color="k", ms=5, label="s.e. unreliable: heavy tail (a)"),
        Line2D([], [], ls="--", color="k", lw=0.9, label="theory: E[sigma^2] (a), E[log sigma^2] (b), exact law (c)"),
        Line2D([], [], ls=":", color="0.45", lw=1.0, label="normal approximation to the law (c)"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=10, frameon=False)
    fig.suptitle(
        f"1-D Gaussian refitted on its own samples (Replace, exact path, float64): {chains:,} chains x {G:,} "
        f"generations per curve, seed {args.seed}. Row 1: MLE; row 2: unbiased estimator",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    for ext in ("png", "pdf"):
        atomic_write(out / f"variance{tag}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))


if __name__ == "__main__":
    raise SystemExit(main())
