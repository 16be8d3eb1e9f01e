"""Regression collapse: OLS, ridge and the minimum-norm interpolator refitted on their
own labels, and Dohmatob et al.'s downstream ridge model (Dohmatob, Feng, Kempe, "Model
collapse demystified: the case of regression", arXiv 2402.07712; Gerstgrasser et al.,
arXiv 2404.01413). Rows x ~ N(0, I_d), truth w* = (1, ..., 1), label noise sigma = 1,
Replace; test error ||w_hat - w*||^2 (excess risk without label noise). Per-point ridge
penalty lambda: each fit solves (X^T X + T lambda I) w = X^T y (cj.Ridge; designs and labels
materialised, sampler="samples", which compiles fastest).

(a) OLS chain (lambda = 0), d = 10, T = 100 rows per generation, fixed design (one X per
chain, relabelled every generation) vs fresh design (new X every generation): test
error vs generation, theory (g + 1) sigma^2 d / (T - d - 1) dashed (the same law for both).
(b) The ridge chain (ridge refitted at every generation) for three penalties, fixed and
fresh design: the fit is shrunk by A = (X^T X + T lambda I)^-1 X^T X each generation, so
the signal decays while the noise stays bounded; the error tends to ||w*||^2 (the zero
predictor's). Theory dashed for the fixed design (cj.theory.ridge_replace_test_error: in
the eigenbasis of X^T X the chain is a scalar recursion per direction; its Wishart
expectation is evaluated by its own Monte Carlo); the fresh design has no closed form
(the shrinkages of different generations do not commute): MC only.
(c) Dohmatob's setting: an OLS chain (fresh design) whose generation g labels a fresh
T-row design that a downstream ridge (penalty lambda_d) is fitted on, never fed back.
Theory dashed: lambda_d = 0, the closed form sigma^2 d/(T-d-1) + (g+1) sigma^2 d/(T-d-1)
(cj.theory.dohmatob_downstream_test_error); lambda_d > 0, the bias-variance decomposition
cj.theory.ridge_downstream_test_error, whose Wishart expectations are evaluated by its
own Monte Carlo (its s.e. is in the CSV).
(d) Ridge-chain penalty sweep (one compiled program per design): the error at g = 1, 10,
50 vs lambda; the fixed-design theory per g dashed. Regularising every generation
buys less than in (e) and its best lambda does not grow with g (the shrinkage compounds too).
(e) Downstream penalty sweep: the error at g = 1, 10, 50 vs lambda_d, theory dashed; the
minimising lambda_d grows with g (adaptive regularisation).
(f) Over-parameterised fixed design, d = 20 > T = 10: ridge-chain sweep at g = 1, 10, 50;
lambda = 0 is the minimum-norm interpolator, theory (1 - T/d)||w*||^2 + (g+1) sigma^2 T /
(d - T - 1) (cj.theory.minnorm_replace_test_error) dotted; the ridge-chain law for every
lambda dashed.

    python experiments/regression.py            # full: 10,000 chains x 100 generations (about 5 minutes on 2 cores)
    python experiments/regression.py --smoke    # 200 chains x 12 generations (about 30 s)
"""

from __future__ import annotations

import math

import numpy as np
from _common import full_run_checks, study_args

import collapse_jax as cj
from collapse_jax.results import atomic_write

D, T, SIGMA = 10, 100, 1.0  # panels (a)-(e): T >= d + 8, so OLS means and their s.e. are finite
D_OVER, T_OVER = 20, 10  # panel (f): d >= T + 2, the min-norm law's condition
CHAIN_LAMS = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
SHOW_LAMS = (3e-3, 3e-2, 0.3)  # panel (b)
DOWN_LAMS = (0.0, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
SHOW_DOWN = (0.0, 0.1, 1.0)  # panel (c)
HEADER = ("panel", "series", "design", "generation", "x_name", "x", "mc_mean", "mc_se", "theory", "theory_se")


def main(argv=None) -> int:
    args, chains, G, out, tag = study_args(__doc__, argv, chains=(200, 10000), generations=(12, 100))
    kw = dict(chains=chains, seed=args.seed, progress=not args.smoke, keep="chains")  # every chain's array
    sweep_gens = tuple(g for g in (1, 10, 50) if g <= G)
    gens = np.arange(G + 1)
    every = sorted(set(range(0, G + 1, max(1, G // 20))) | set(sweep_gens))
    ols = cj.theory.ols_replace_test_error(gens, T, D, SIGMA)
    wsq = float(D)  # ||w*||^2
    rows = []

    def row(panel, series, design, g, x_name, x, m, s, th=math.nan, th_se=None):
        # theory_se: 0 for a closed form, nan where no theory applies
        th_se = (0.0 if np.isfinite(th) else math.nan) if th_se is None else th_se
        rows.append((panel, series, design, g, x_name, x, m, s, th, th_se))

    # (a), (b), (d): the ridge chain over the penalty grid (lambda = 0: OLS), one program per design
    mc = 2000 if args.smoke else 20000  # draws for the theories' own Wishart expectations
    # the fixed-design ridge chain's law, per penalty: (value, its Monte Carlo s.e.), each (generation,)
    chain_th = {lam: cj.theory.ridge_replace_test_error(gens, T, D, SIGMA, lam, wsq, mc=mc) for lam in CHAIN_LAMS}
    chain = {}
    for design in ("fixed", "fresh"):
        fam = cj.Ridge(D, noise=SIGMA, design=design, sampler="samples")
        sweep = {"lam": list(CHAIN_LAMS)}
        res = cj.simulate(fam, cj.Replace(), n=T, generations=G, sweep=sweep, metrics=["test_error"], **kw)
        m, s = chain[design] = (res.mean("test_error"), res.se("test_error"))  # (lambda, generation) each
        for g in every:
            row("a", "OLS", design, g, "generation", g, m[0, g], s[0, g], ols[g])
            for lam in SHOW_LAMS:
                i = CHAIN_LAMS.index(lam)
                th, ts = chain_th[lam] if design == "fixed" else (np.full(G + 1, math.nan),) * 2
                row("b", f"ridge chain lambda={lam:g}", design, g, "generation", g, m[i, g], s[i, g], th[g], ts[g])
        for g in sweep_gens:
            for i, lam in enumerate(CHAIN_LAMS):
                if lam == 0:
                    th, ts = ols[g], 0.0
                elif design == "fixed":
                    th, ts = chain_th[lam][0][g], chain_th[lam][1][g]
                else:
                    th, ts = math.nan, math.nan
                row("d", "ridge chain", design, g, "lambda", lam, m[i, g], s[i, g], th, ts)

    # (c), (e): Dohmatob's downstream ridge on an OLS chain; lambda_d is traced, so every call reuses one program
    down = {}
    for lam_d in DOWN_LAMS:
        fam = cj.Ridge(D, noise=SIGMA, design="fresh", sampler="samples", downstream=cj.Downstream(T, SIGMA, lam_d))
        res = cj.simulate(fam, cj.Replace(), n=T, generations=G, metrics=["downstream_test_error"], **kw)
        m, s = (res.mean("downstream_test_error"), res.se("downstream_test_error"))
        if lam_d == 0:
            th, ts = cj.theory.dohmatob_downstream_test_error(gens, T, D, SIGMA, T, SIGMA), np.zeros(G + 1)
        else:
            th, ts = cj.theory.ridge_downstream_test_error(gens, T, D, SIGMA, T, SIGMA, lam_d, wsq, mc=mc)
        down[lam_d] = (m, s, th, ts)
        for g in every if lam_d in SHOW_DOWN else ():
            row("c", f"downstream lambda_d={lam_d:g}", "fresh", g, "generation", g, m[g], s[g], th[g], ts[g])
        for g in sweep_gens:
            row("e", "downstream ridge", "fresh", g, "lambda_d", lam_d, m[g], s[g], th[g], ts[g])

    # (f): over-parameterised fixed design; lambda = 0 is the minimum-norm interpolator
    g_over = max(sweep_gens)
    fam = cj.Ridge(D_OVER, noise=SIGMA, design="fixed", sampler="samples")
    sweep = {"lam": list(CHAIN_LAMS)}
    res = cj.simulate(fam, cj.Replace(), n=T_OVER, generations=g_over, sweep=sweep, metrics=["test_error"], **kw)
    over = m, s = (res.mean("test_error"), res.se("test_error"))
    mn = cj.theory.minnorm_replace_test_error(np.arange(g_over + 1), T_OVER, D_OVER, SIGMA, w_star_sq=float(D_OVER))
    g_arr = np.array(sweep_gens)
    over_th = {
        lam: cj.theory.ridge_replace_test_error(g_arr, T_OVER, D_OVER, SIGMA, lam, float(D_OVER), mc=mc)
        for lam in CHAIN_LAMS
        if lam > 0
    }
    for g in range(g_over + 1):
        row("f", "min-norm", "fixed", g, "generation", g, m[0, g], s[0, g], mn[g])
    for j, g in enumerate(sweep_gens):
        for i, lam in enumerate(CHAIN_LAMS):
            th, ts = (mn[g], 0.0) if lam == 0 else (over_th[lam][0][j], over_th[lam][1][j])
            row("f", "ridge chain, d > T", "fixed", g, "lambda", lam, m[i, g], s[i, g], th, ts)

    csv_path = out / f"regression{tag}.csv"
    atomic_write(csv_path, lambda tmp: _write_csv(tmp, rows))
    _figure(out, tag, args, chains, G, g_over, sweep_gens, gens, ols, wsq, chain, chain_th, down, over, mn, over_th)
    print(f"wrote {csv_path} and regression{tag}.png/.pdf in {out}")
    if not full_run_checks(args, chains, G):
        return 0
    for g in sweep_gens:
        best = {d: CHAIN_LAMS[int(np.argmin(chain[d][0][:, g]))] for d in chain}
        best_down = DOWN_LAMS[int(np.argmin([down[lam][0][g] for lam in DOWN_LAMS]))]
        best_over = CHAIN_LAMS[int(np.argmin(over[0][:, g]))]
        print(
            f"g = {g:3d}: argmin lambda, ridge chain fixed {best['fixed']:g}, fresh {best['fresh']:g}; "
            f"downstream {best_down:g}; over-parameterised {best_over:g}"
        )
    z = [((r[6] - r[8]) / math.hypot(r[7], r[9]), r) for r in rows if np.isfinite(r[8]) and r[7] > 0]
    for zz, r in sorted(z, key=lambda t: -abs(t[0]))[:5]:
        print(f"largest |z| = {abs(zz):.2f}: panel {r[0]} {r[1]} ({r[2]}) g = {r[3]} {r[4]} = {r[5]:g}")
    return 0


def _write_csv(path, rows) -> None:
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for p, who, design, g, xn, x, m, s, t, ts in rows:
            w.writerow([p, who, design, g, xn, f"{x:g}", f"{m:.6g}", f"{s:.3g}", f"{t:.6g}", f"{ts:.3g}"])


def _figure(out, tag, args, chains, G, g_over, sweep_gens, gens, ols, wsq, chain, chain_th, down, over, mn, over_th):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def band(ax, x, m, s, label, **style):
        line = ax.plot(x, m, lw=1.1, label=label, **style)[0]
        ax.fill_between(x, np.maximum(m - 2 * s, 1e-9), m + 2 * s, color=line.get_color(), alpha=0.25, lw=0)
        return line.get_color()

    def sweep_axis(ax, lams, linthresh, xlabel, **legend):
        ax.set_xscale("symlog", linthresh=linthresh)
        ax.set_yscale("log")
        ticks = [lam for lam in lams if lam == 0 or math.log10(lam).is_integer()]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlim(-0.3 * linthresh, 1.5 * lams[-1])
        ax.set(xlabel=xlabel + " (symlog: 0 at the left)")
        ax.legend(fontsize=6, **legend)

    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    ax = axes[0, 0]
    for design, style in (("fixed", "-"), ("fresh", ":")):
        m, s = chain[design]
        band(ax, gens, m[0], s[0], f"OLS, {design} design", ls=style)
    ax.plot(gens, ols, "--", color="k", lw=0.9, label="theory (g+1) sigma^2 d/(T-d-1)")
    ax.set(xlabel="generation g", ylabel="test error ||w_g - w*||^2")
    ax.set_title(f"(a) OLS chain, d = {D}, T = {T}: linear growth, fixed = fresh", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[0, 1]
    for k, lam in enumerate(SHOW_LAMS):
        i = CHAIN_LAMS.index(lam)
        for design, style in (("fixed", "-"), ("fresh", ":")):
            m, s = chain[design]
            band(ax, gens, m[i], s[i], f"lambda = {lam:g}, {design}", ls=style, color=f"C{k}")
        ax.plot(gens, chain_th[lam][0], "--", color="k", lw=0.8, zorder=3)
    m, s = chain["fixed"]
    band(ax, gens, m[0], s[0], "OLS (lambda = 0), fixed", color="C3")
    ax.plot(gens, ols, "--", color="k", lw=0.9, label="theory, fixed design (fresh: none)")
    ax.axhline(wsq, color="grey", lw=0.7, label="||w*||^2 (the zero predictor)")
    ax.set(yscale="log", xlabel="generation g", ylabel="test error (log)")
    ax.set_title("(b) ridge refitted every generation (theory: fixed design only)", fontsize=9)
    ax.legend(fontsize=6, ncol=2)

    ax = axes[0, 2]
    for k, lam in enumerate(SHOW_DOWN):
        m, s, th, _ = down[lam]
        band(ax, gens, m, s, f"downstream lambda_d = {lam:g}", color=f"C{k}")
        ax.plot(
            gens,
            th,
            "--",
            color="k",
            lw=0.8,
            zorder=3,
            label="theory (for lambda_d > 0 MC-evaluated)" if k == 2 else None,
        )
    ax.set(yscale="log", xlabel="generation g of the OLS chain", ylabel="downstream test error (log)")
    ax.set_title(f"(c) downstream ridge on T = {T} rows labelled by generation g", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    x = np.array(CHAIN_LAMS)
    for k, g in enumerate(sweep_gens):
        for design, fmt in (("fixed", "o-"), ("fresh", "s:")):
            m, s = chain[design]
            best = CHAIN_LAMS[int(np.argmin(m[:, g]))]
            label = f"g = {g}, {design} (argmin {best:g})"
            mfc = "none" if design == "fresh" else None
            ax.errorbar(x, m[:, g], yerr=2 * s[:, g], fmt=fmt, ms=3, lw=0.8, color=f"C{k}", mfc=mfc, label=label)
        th = np.array([ols[g] if lam == 0 else chain_th[lam][0][g] for lam in CHAIN_LAMS])
        ax.plot(x, th, "--", color=f"C{k}", lw=0.8)
    ax.axhline(wsq, color="grey", lw=0.7, label="||w*||^2 (the zero predictor)")
    ax.set(ylabel="test error at generation g (log)")
    ax.set_title("(d) ridge chain vs penalty: the best lambda does not grow; dashed: fixed-design theory", fontsize=9)
    sweep_axis(ax, CHAIN_LAMS, 1e-4, "ridge penalty lambda (every generation)", ncol=2, loc="upper left")
    ax.set_ylim(top=80)  # room for the legend above the curves

    ax = axes[1, 1]
    x = np.array(DOWN_LAMS)
    for k, g in enumerate(sweep_gens):
        m = np.array([down[lam][0][g] for lam in DOWN_LAMS])
        s = np.array([down[lam][1][g] for lam in DOWN_LAMS])
        th = np.array([down[lam][2][g] for lam in DOWN_LAMS])
        best = DOWN_LAMS[int(np.argmin(m))]
        ax.errorbar(x, m, yerr=2 * s, fmt="o", ms=3, color=f"C{k}", label=f"g = {g} (argmin lambda_d = {best:g})")
        ax.plot(x, th, "--", color=f"C{k}", lw=0.8)
    ax.set(ylabel="downstream test error at generation g (log)")
    ax.set_title("(e) downstream ridge vs penalty: the best lambda_d grows with g", fontsize=9)
    sweep_axis(ax, DOWN_LAMS, 1e-3, "downstream penalty lambda_d")

    ax = axes[1, 2]
    x = np.array(CHAIN_LAMS)
    m, s = over
    for k, g in enumerate(sweep_gens):
        best = CHAIN_LAMS[int(np.argmin(m[:, g]))]
        ax.errorbar(
            x, m[:, g], yerr=2 * s[:, g], fmt="o-", ms=3, lw=0.8, color=f"C{k}", label=f"g = {g} (argmin {best:g})"
        )
        ax.axhline(mn[g], ls=":", color=f"C{k}", lw=0.8)
        th = np.array([mn[g] if lam == 0 else over_th[lam][0][k] for lam in CHAIN_LAMS])  # k indexes sweep_gens
        ax.plot(x, th, "--", color=f"C{k}", lw=0.8)
    ax.axhline(float(D_OVER), color="grey", lw=0.7, label="||w*||^2 (the zero predictor)")
    ax.set(ylabel="test error at generation g (log)")
    ax.set_title(f"(f) d = {D_OVER} > T = {T_OVER}, fixed: ridge-chain theory dashed, min-norm dotted", fontsize=9)
    sweep_axis(ax, CHAIN_LAMS, 1e-4, "ridge penalty lambda (every generation)")

    fig.suptitle(
        f"Recursive linear regression (Sigma = I, w* = 1, sigma = 1, Replace), {chains} chains, {G} generations "
        f"(panel f: {g_over}), seed {args.seed}; MC mean +- 2 s.e., theory dashed",
        fontsize=10,
    )
    fig.tight_layout()
    for ext in ("png", "pdf"):
        atomic_write(out / f"regression{tag}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))


if __name__ == "__main__":
    raise SystemExit(main())
