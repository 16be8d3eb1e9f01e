"""Replace vs Accumulate vs AccumulateSubsample: does keeping the data prevent collapse?

Three ways to build generation g's training set (Gerstgrasser et al., arXiv 2404.01413;
Kazdan et al., arXiv 2410.16713; docs/THEORY.md sections 2, 9, 11, 12): Replace (the n
newest synthetic points only), Accumulate (the original n real points plus every
synthetic batch so far, (g + 1) n points) and AccumulateSubsample (a uniform n-subset,
without replacement, of everything ever generated). n = 100 points per generation,
MLE fits (divide by n), the truth N(0, I).

(a) 1-D Gaussian, learned mean and variance: E(mu_g - mu_0)^2 against generation.
Theory dashed: cj.theory.mean_sq_error_replace (MLE: sigma^2 (1 - ((n-1)/n)^(g+1)),
bounded by sigma^2 only because the variance collapses) and mean_sq_error_accumulate
(sum_j V_(j-1) / (n j^2), V the Accumulate variance). Dotted: the pi^2/6 sigma^2/n
bound (the known-variance limit; with a learned variance V <= sigma^2, so the limit is
slightly lower, quoted in the legend).
(b) The same chains' E[sigma^2_g] / sigma_0^2: theory cj.theory.variance_mean (Replace,
((n-1)/n)^(g+1)) and variance_mean_accumulate (prod_j (1 - 1/(n j^2)), bounded below by
sin(pi/sqrt n)/(pi/sqrt n), dotted). AccumulateSubsample has no closed form: MC only.
(c1-c3) d = 10 Gaussian, learned mean and covariance: E||mu_g - mu_0||^2 (theory with
dim = 10), E[tr Sigma_g / tr Sigma_0] (each coordinate's marginal is the 1-D chain, so
the 1-D laws are exact) and E[log det Sigma_g - log det Sigma_0] (Replace:
cj.theory.logdet_ratio_mean; no closed form for the accumulating regimes).
(d) OLS on a fixed design (cj.Ridge, lam = 0, design="fixed", as Gerstgrasser et al. and
Kazdan et al.'s code): d = 10, T = n = 100 rows, label noise sigma^2 = 1, w* ~ N(0, I) per
chain; test error ||w_g - w*||^2 against generation. Theory dashed:
cj.theory.ols_replace_test_error ((g + 1) sigma^2 d/(T - d - 1), linear growth) and
ols_accumulate_test_error (sigma^2 d/(T - d - 1) sum 1/i^2); dotted: the pi^2/6 bound
(ols_accumulate_limit). AccumulateSubsample: MC only.

AccumulateSubsample stores every point ((G + 1) n per chain): it is 5-30x slower than
Replace or Accumulate here and takes most of the run's time.

    python experiments/accumulate.py            # full: 10,000 chains x 100 generations (8-10 min on 2 shared cores)
    python experiments/accumulate.py --smoke    # 200 chains x 10 generations, ~50 s CPU (nine compilations)
"""

from __future__ import annotations

import csv
import math

import numpy as np
from _common import full_run_checks, study_args

import collapse_jax as cj
from collapse_jax.results import atomic_write

N = 100  # points per generation (Gaussian) = rows of the design (regression)
DIM = 10  # panels (c) and (d)
REGIMES = {"Replace": cj.Replace, "Accumulate": cj.Accumulate, "AccumulateSubsample": cj.AccumulateSubsample}
COLORS = {"Replace": "C3", "Accumulate": "C0", "AccumulateSubsample": "C2"}
PI2_6 = math.pi**2 / 6


def main(argv=None) -> int:
    args, chains, G, out, tag = study_args(__doc__, argv, chains=(200, 10000), generations=(10, 100))
    gens = np.arange(G + 1)
    kw = dict(n=N, generations=G, seed=args.seed, progress=not args.smoke, keep="chains")  # every chain's array
    nan = np.full(G + 1, math.nan)
    # panels[key] = (title, ylabel, yscale, {regime: (mean, se, theory, chains)}, [(level, label)])
    panels = {}

    def run(family, metrics):
        return {k: (cj.simulate(family, regime(), chains=chains, metrics=metrics, **kw), chains)
                for k, regime in REGIMES.items()}  # fmt: skip

    # (a), (b): 1-D Gaussian, learned mean and variance
    res = run(cj.Gaussian(), ["mean_sq_error", "variance"])
    th_mse = {
        "Replace": cj.theory.mean_sq_error_replace(gens, N, "mle"),
        "Accumulate": cj.theory.mean_sq_error_accumulate(gens, N, "mle"),
        "AccumulateSubsample": nan,
    }
    th_var = {
        "Replace": cj.theory.variance_mean(gens, N, "mle"),
        "Accumulate": cj.theory.variance_mean_accumulate(gens, N, "mle"),
        "AccumulateSubsample": nan,
    }
    learned_limit = float(cj.theory.mean_sq_error_accumulate(100_000, N, "mle"))
    var_floor = math.sin(math.pi / math.sqrt(N)) / (math.pi / math.sqrt(N))
    panels["a"] = (
        f"(a) 1-D Gaussian, MLE mean and variance, n = {N}: mean error",
        "E (mu_g - mu_0)^2  (log)",
        "log",
        {k: (r.mean("mean_sq_error"), r.se("mean_sq_error"), th_mse[k], c) for k, (r, c) in res.items()},
        [(PI2_6 / N, f"pi^2/6 sigma^2/n = {PI2_6 / N:.5f} (learned-variance limit {learned_limit:.5f})")],
    )
    panels["b"] = (
        f"(b) 1-D Gaussian, n = {N}: variance (Subsample: no closed form, MC only)",
        "E[sigma_g^2] / sigma_0^2  (log)",
        "log",
        {k: (r.mean("variance"), r.se("variance"), th_var[k], c) for k, (r, c) in res.items()},
        [(var_floor, f"Accumulate limit sin(pi/sqrt n)/(pi/sqrt n) = {var_floor:.4f}")],
    )

    # (c1)-(c3): d = 10 Gaussian, learned mean and covariance
    res = run(cj.Gaussian(dim=DIM), ["mean_sq_error", "trace_ratio", "logdet_ratio"])
    th = {
        "mean_sq_error": {
            "Replace": cj.theory.mean_sq_error_replace(gens, N, "mle", dim=DIM),
            "Accumulate": cj.theory.mean_sq_error_accumulate(gens, N, "mle", dim=DIM),
        },
        "trace_ratio": {
            "Replace": cj.theory.trace_ratio_mean(gens, N, "mle"),
            "Accumulate": cj.theory.variance_mean_accumulate(gens, N, "mle"),
        },
        "logdet_ratio": {"Replace": cj.theory.logdet_ratio_mean(gens, N, DIM, "mle")},
    }
    for key, metric, title, ylabel, yscale, lines in (
        ("c1", "mean_sq_error", "mean error", "E ||mu_g - mu_0||^2  (log)", "log",
         [(DIM * PI2_6 / N, f"pi^2/6 d sigma^2/n = {DIM * PI2_6 / N:.4f}")]),
        ("c2", "trace_ratio", "trace ratio", "E[tr Sigma_g / tr Sigma_0]  (log)", "log",
         [(var_floor, f"Accumulate limit {var_floor:.4f}")]),
        ("c3", "logdet_ratio", "log det ratio (accumulating: MC only)",
         "E[log det Sigma_g - log det Sigma_0]  (symlog)", "symlog", []),
    ):  # fmt: skip
        series = {k: (r.mean(metric), r.se(metric), th[metric].get(k, nan), c) for k, (r, c) in res.items()}
        panels[key] = (f"({key}) d = {DIM} Gaussian, MLE, n = {N}: {title}", ylabel, yscale, series, lines)

    # (d): OLS on a fixed design
    ols = cj.Ridge(DIM, lam=0.0, noise=1.0, w_star="random", design="fixed")
    res = run(ols, ["test_error"])
    th_ols = {
        "Replace": cj.theory.ols_replace_test_error(gens, N, DIM, 1.0),
        "Accumulate": cj.theory.ols_accumulate_test_error(gens, N, DIM, 1.0),
        "AccumulateSubsample": nan,
    }
    limit = cj.theory.ols_accumulate_limit(N, DIM, 1.0)
    panels["d"] = (
        f"(d) OLS, fixed design, d = {DIM}, T = {N}, sigma^2 = 1",
        "test error ||w_g - w*||^2  (log)",
        "log",
        {k: (r.mean("test_error"), r.se("test_error"), th_ols[k], c) for k, (r, c) in res.items()},
        [(limit, f"pi^2/6 sigma^2 d/(T-d-1) = {limit:.4f}")],
    )

    rows = []  # panel, series, x_name, x, mc_mean, mc_se, theory, chains
    for key, (_t, _y, _s, series, lines) in panels.items():
        for name, (m, s, t, c) in series.items():
            rows += [(key, name, "generation", g, m[g], s[g], t[g], c) for g in gens]
        for level, label in lines:
            rows.append((key, "line: " + label.split(" = ")[0], "limit", math.inf, math.nan, math.nan, level, 0))
    path = out / f"accumulate{tag}.csv"
    atomic_write(path, lambda tmp: _write_csv(tmp, rows))
    _figure(out, tag, args, chains, G, gens, panels)
    print(f"wrote {path} and accumulate{tag}.png/.pdf in {out}")
    if not full_run_checks(args, chains, G):
        return 0
    for key, (_t, _y, _s, series, _l) in panels.items():  # MC against theory, the whole trajectory
        for name, (m, s, t, _c) in series.items():
            ok = np.isfinite(t) & (s > 0)
            if ok.any():
                z = (m[ok] - t[ok]) / s[ok]
                i = int(np.argmax(np.abs(z)))
                print(f"({key}) {name:12s} at G: MC {m[G]:.5g} +- {s[G]:.2g}, theory {t[G]:.5g}; "
                      f"max |z| {abs(z[i]):.2f} at generation {gens[ok][i]}")  # fmt: skip
            else:
                print(f"({key}) {name:12s} at G: MC {m[G]:.5g} +- {s[G]:.2g} (no closed form)")
    return 0


def _write_csv(path, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["panel", "series", "x_name", "x", "mc_mean", "mc_se", "theory", "chains"])
        for p, who, xn, x, m, s, t, c in rows:
            w.writerow([p, who, xn, f"{x:g}", f"{m:.6g}", f"{s:.3g}", f"{t:.6g}", c])


def _figure(out, tag, args, chains, G, gens, panels):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    for ax, (_key, (title, ylabel, yscale, series, lines)) in zip(axes.flat, panels.items()):
        for name, (m, s, t, c) in series.items():
            col = COLORS[name]
            label = f"{name} ({c:,} chains)" + ("" if np.isfinite(t).any() else ", MC only")
            ax.plot(gens, m, lw=1.2, color=col, label=label)
            lo = np.maximum(m - 2 * s, m * 1e-3) if yscale == "log" else m - 2 * s
            ax.fill_between(gens, lo, m + 2 * s, color=col, alpha=0.25, lw=0)
            if np.isfinite(t).any():
                ax.plot(gens, t, "--", color="k", lw=0.8)
        for level, label in lines:
            ax.axhline(level, ls=":", color="grey", lw=1.2, label=label)
        ax.plot([], [], "--", color="k", lw=0.8, label="theory")
        ax.set_yscale(yscale, **({"linthresh": 1.0} if yscale == "symlog" else {}))
        ax.set(xlabel="generation g (linear)", ylabel=ylabel)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Replace vs Accumulate vs AccumulateSubsample, n = {N}, {chains:,} chains per regime, {G} generations, "
        f"seed {args.seed}; MC mean +- 2 s.e., theory dashed",
        fontsize=9,
    )
    fig.tight_layout()
    for ext in ("png", "pdf"):
        atomic_write(out / f"accumulate{tag}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))


if __name__ == "__main__":
    raise SystemExit(main())
