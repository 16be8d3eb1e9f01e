"""Variance vs generation: a 1-D Gaussian refitted on its own samples (Replace).

Shumailov et al. (Nature 2024; arXiv 2305.17493), the Gaussian case of model
collapse: mean and variance are refitted each generation on n samples drawn from the
previous fit, by maximum likelihood (divide by n) or the unbiased estimator (divide
by n - 1), for n in {10, 100, 1000}. Exact sufficient-statistics path (the sample
mean and scatter of n points are drawn directly: N(mu, sigma^2/n) and sigma^2
chi^2_{n-1}), float64, summary mode over every chain.

Rows: MLE, unbiased. Columns:
(a) E[sigma_g^2] / sigma_0^2 on a log axis: MC mean +- 2 s.e., the median (dotted)
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
from _common import study_args

import collapse_jax as cj
from collapse_jax.results import atomic_write

NS = (10, 100, 1000)
ESTIMATORS = ("mle", "unbiased")
THRESHOLD = 0.1  # the collapse threshold on the standard deviation (sigma_0 = 1)


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
        keep_chains=min(chains, 2000),
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


def _figure(out, tag, args, chains, G, gens, curves) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    colours = {n: f"C{i}" for i, n in enumerate(NS)}
    for row, est in enumerate(ESTIMATORS):
        label_est = "MLE (divide by n)" if est == "mle" else "unbiased (divide by n - 1)"
        ax_v, ax_l, ax_p = axes[row]
        for n in NS:
            c, col = curves[est, n], colours[n]
            v = c["variance"]
            lo = np.maximum(v["mean"] - 2 * v["se"], 1e-300)
            ax_v.plot(gens, v["mean"], color=col, lw=1.2, label=f"n = {n}: MC mean")
            ax_v.fill_between(gens, lo, v["mean"] + 2 * v["se"], color=col, alpha=0.25, lw=0)
            ax_v.plot(gens, v["q50"], ":", color=col, lw=1.0, label=f"n = {n}: median")
            heavy = v["heavy_tail"].astype(bool)
            ax_v.plot(gens[heavy][::25], v["mean"][heavy][::25], "x", color=col, ms=4)
            ax_v.plot(gens, c["theory"]["variance"], "--", color="k", lw=0.8)

            lv = c["log_variance"]  # drawn as -E[log sigma^2] on log-log axes: slope 1, height the drift
            ax_l.plot(gens + 1, -lv["mean"], color=col, lw=1.2, label=f"n = {n}")
            ax_l.fill_between(gens + 1, np.maximum(-lv["mean"] - 2 * lv["se"], 1e-9), -lv["mean"] + 2 * lv["se"],
                              color=col, alpha=0.3, lw=0)  # fmt: skip
            ax_l.plot(gens + 1, -c["theory"]["log_variance"], "--", color="k", lw=0.8)

            p = c["collapse"]
            ax_p.plot(gens + 1, p["mean"], color=col, lw=1.2, label=f"n = {n}")
            ax_p.fill_between(gens + 1, np.maximum(p["mean"] - 2 * p["se"], 1e-9), p["mean"] + 2 * p["se"], color=col,
                              alpha=0.3, lw=0)  # fmt: skip
            ax_p.plot(gens + 1, c["theory"]["collapse"], "--", color="k", lw=0.8)
            ax_p.plot(gens + 1, c["theory"]["collapse_normal"], ":", color="0.5", lw=0.8)
        ax_v.plot([], [], "--", color="k", lw=0.8, label="theory E[sigma^2]")
        ax_v.plot([], [], "x", color="k", ms=4, label="s.e. unreliable (heavy tail)")
        ax_v.set(yscale="log", ylim=(1e-12, 10), xlabel="generation g", ylabel="sigma_g^2 / sigma_0^2 (log)")
        ax_v.set_title(f"(a) E[variance], {label_est}", fontsize=9)
        ax_v.legend(fontsize=6, ncol=2)

        ax_l.plot([], [], "--", color="k", lw=0.8, label="theory -(g+1)(psi((n-1)/2) + log(2/(n-delta)))")
        ax_l.set(xscale="log", yscale="log", ylim=(1e-4, None), xlabel="fits g + 1 (log)",
                 ylabel="-E[log sigma_g^2]  (sigma_0 = 1; log)")  # fmt: skip
        ax_l.set_title(f"(b) minus E[log variance], {label_est}", fontsize=9)
        ax_l.legend(fontsize=7)

        ax_p.plot([], [], "--", color="k", lw=0.8, label="exact law (c.f. inversion)")
        ax_p.plot([], [], ":", color="0.5", lw=0.8, label="normal approximation")
        ax_p.set(xscale="log", yscale="log", ylim=(0.5 / chains, 1.5), xlabel="fits g + 1 (log)",
                 ylabel=f"P(sigma_g < {THRESHOLD:g})")  # fmt: skip
        ax_p.set_title(f"(c) collapse probability, {label_est}", fontsize=9)
        ax_p.legend(fontsize=7)
    fig.suptitle(
        f"1-D Gaussian refitted on its own samples (Replace, exact path, float64): {chains} chains x {G} generations "
        f"per curve, seed {args.seed}; MC mean +- 2 s.e., theory dashed",
        fontsize=9,
    )
    fig.tight_layout()
    for ext in ("png", "pdf"):
        atomic_write(out / f"variance{tag}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))


if __name__ == "__main__":
    raise SystemExit(main())
