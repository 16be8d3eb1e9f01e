"""Pressures and defences at equal cost: early vs late collapse under sampling bias,
and how much real data a verifier, a provenance detector, self-correction or a growing
sample size buys.

(a) Early vs late collapse (learned variance, MLE, n = 100, Replace): the fit's mass in
the truth's 1 % tails (relative to generation 0) and its variance, plain and under
truncation to the central 95 % or temperature 0.9. Variance theory
(cj.theory.pressure_variance_mean) dashed; the tails go generations before the variance.
(b) A verifier (good = inside the truth's central 90 %; accuracy a: false_accept =
false_reject = 1 - a) on FreshMix: the stationary mean error, times n, against the real
fraction lambda (known variance, n = 20; time average over generations G/2..G per chain).
No verifier: FreshMix theory 1/(lambda (2 - lambda)) dashed.
(c) The real fraction needed to keep the stationary error below 2 sigma^2/n (twice one
generation's), read off (b) by log-linear interpolation, against verifier accuracy.
(d) A provenance detector (cj.Provenance, eps = eta): stationary error times n against the
pool's real fraction alpha; theory (binomial FreshMix at the effective fraction rho)
dashed.
(e) Self-correction gamma: stationary error times n (known variance; its steady state
is FreshMix's at lambda = gamma) and the learned-variance MLE's stationary variance;
theory (cj.theory.correction_moments, averaged over the same generations) dashed.
(f) Sample-size schedules n_g = n0 (g + 1)^p (known variance, exact path): E e_g^2 n0
against generation, theory sigma^2 sum 1/n_j dashed: bounded only for p > 1.

    python experiments/defences.py            # full: 10,000 chains (about 10 min on 2 cores)
    python experiments/defences.py --smoke    # about a minute
"""

from __future__ import annotations

import math

import numpy as np
from _common import full_run_checks, study_args

import collapse_jax as cj
from collapse_jax.pressures import candidates_needed
from collapse_jax.results import atomic_write

N_TAIL = 100  # panel (a)
N = 20  # panels (b)-(e)
ACCURACIES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # 0.5: a coin flip, no information
LAMBDAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)  # n = 20: 0, 1, 2, 4, 6, 10 real points
ALPHAS = (0.05, 0.1, 0.2, 0.4, 0.7)
DETECTOR_ERRORS = (0.0, 0.05, 0.2)
GAMMAS = (0.02, 0.05, 0.1, 0.2, 0.4)
POWERS = (0.0, 0.5, 1.0, 1.5, 2.0)
N0 = 10


def main(argv=None) -> int:
    args, chains, G, out, tag = study_args(__doc__, argv, chains=(300, 10000), generations=(40, 200))
    kw = dict(chains=chains, seed=args.seed, progress=not args.smoke, keep="chains")  # steady_state: every chain
    burn = G // 2
    rows = []  # panel, series, x_name, x, mc_mean, mc_se, theory

    # (a) early vs late collapse
    g_a = min(G, 60)
    gens_a = np.arange(g_a + 1)
    panel_a = {}
    for name, pk in (("plain", {}), ("truncate 0.95", {"truncate": 0.95}), ("temperature 0.9", {"temperature": 0.9})):
        fam = cj.Pressured(cj.Gaussian(), **pk) if pk else cj.Gaussian()
        res = cj.simulate(fam, cj.Replace(), n=N_TAIL, generations=g_a, metrics=["tail_mass", "variance"], **kw)
        tm, ts = (res.mean("tail_mass"), res.se("tail_mass"))
        vm, vs = (res.mean("variance"), res.se("variance"))
        vt = cj.theory.pressure_variance_mean(gens_a, N_TAIL, "mle", **pk)
        panel_a[name] = (tm / 0.01, ts / 0.01, vm, vs, vt)
        for g in range(0, g_a + 1, 5):
            rows.append(("a", f"{name}: tail mass / 0.01", "generation", g, tm[g] / 0.01, ts[g] / 0.01, math.nan))
            rows.append(("a", f"{name}: variance", "generation", g, vm[g], vs[g], vt[g]))

    # (b) verifier accuracy vs the real fraction
    known = cj.Gaussian(learn_cov=False)
    sweep = {"real_fraction": list(LAMBDAS)}
    panel_b = {}
    res = cj.simulate(known, cj.FreshMix(0.5), n=N, generations=G, sweep=sweep, metrics=["mean_sq_error"], **kw)
    st = res.steady_state("mean_sq_error", burn)
    theory = np.array([cj.theory.freshmix_steady_state(N, lam) if lam > 0 else math.nan for lam in LAMBDAS])
    panel_b["no verifier"] = (st["mean"] * N, st["se"] * N, theory * N)
    for acc in ACCURACIES:
        fam = cj.Pressured(known, support=0.9, false_accept=1 - acc, false_reject=1 - acc)
        res = cj.simulate(fam, cj.FreshMix(0.5), n=N, generations=G, sweep=sweep, metrics=["mean_sq_error"], **kw)
        st = res.steady_state("mean_sq_error", burn)
        panel_b[f"verifier, accuracy {acc:g}"] = (st["mean"] * N, st["se"] * N, np.full(len(LAMBDAS), math.nan))
    for name, (m, s, t) in panel_b.items():
        for lam, mm, ss, tt in zip(LAMBDAS, m, s, t):
            rows.append(("b", name, "real_fraction", lam, mm, ss, tt))

    # (c) the real fraction needed for a stationary error <= 2 sigma^2 / n
    target = 2.0
    panel_c = {}
    for name, (m, _s, _t) in panel_b.items():
        panel_c[name] = _crossing(np.array(LAMBDAS), m, target)
        rows.append(("c", name, "target_n_error", target, panel_c[name], math.nan, 1 - math.sqrt(0.5)))

    # (d) provenance detector
    panel_d = {}
    for err in DETECTOR_ERRORS:
        k = candidates_needed(min(ALPHAS) * (1 - err) + (1 - min(ALPHAS)) * err, N)
        regime = cj.Provenance(0.5, false_real=err, false_synthetic=err, oversample=k)
        res = cj.simulate(known, regime, n=N, generations=G, metrics=["mean_sq_error"],
                          sweep={"pool_real_fraction": list(ALPHAS)}, **kw)  # fmt: skip
        st = res.steady_state("mean_sq_error", burn)
        th = np.array([cj.theory.provenance_steady_state(N, a, err, err) for a in ALPHAS])
        panel_d[f"eps = eta = {err:g}"] = (st["mean"] * N, st["se"] * N, th * N)
        for a, mm, ss, tt in zip(ALPHAS, st["mean"] * N, st["se"] * N, th * N):
            rows.append(("d", f"eps = eta = {err:g}", "pool_real_fraction", a, mm, ss, tt))

    # (e) self-correction
    panel_e = {}
    res = cj.simulate(cj.Pressured(known, correct=0.1), n=N, generations=G, metrics=["mean_sq_error"],
                      sweep={"correct": list(GAMMAS)}, **kw)  # fmt: skip
    st = res.steady_state("mean_sq_error", burn)
    window = np.arange(burn, G + 1)  # theory averaged over the same generations as the simulation
    th = np.array(
        [np.mean(cj.theory.correction_moments(window, N, gm, learn_var=False)["mean_sq_error"]) for gm in GAMMAS]
    )
    panel_e["known variance: n E e^2"] = (st["mean"] * N, st["se"] * N, th * N)
    res = cj.simulate(cj.Pressured(cj.Gaussian(), correct=0.1), n=N, generations=G, metrics=["variance"],
                      sweep={"correct": list(GAMMAS)}, **kw)  # fmt: skip
    st = res.steady_state("variance", burn)
    th = np.array([np.mean(cj.theory.correction_moments(window, N, gm)["variance"]) for gm in GAMMAS])
    panel_e["learned variance (MLE): E sigma^2"] = (st["mean"], st["se"], th)
    for name, (m, s, t) in panel_e.items():
        for gm, mm, ss, tt in zip(GAMMAS, m, s, t):
            rows.append(("e", name, "correct", gm, mm, ss, tt))

    # (f) sample-size schedules
    gens = np.arange(G + 1)
    panel_f = {}
    exact = cj.Gaussian(learn_cov=False, sampler="exact")
    for p in POWERS:
        sched = cj.Schedule.power(N0, p, G)
        sizes = np.asarray(sched.sizes)
        res = cj.simulate(exact, sched, n=int(sizes.max()), generations=G, metrics=["mean_sq_error"], **kw)
        m, s = (res.mean("mean_sq_error"), res.se("mean_sq_error"))
        t = cj.theory.schedule_mean_sq_error(sizes)
        panel_f[f"p = {p:g}"] = (m * N0, s * N0, t * N0)
        for g in range(0, G + 1, max(1, G // 10)):
            rows.append(("f", f"p = {p:g}", "generation", g, m[g] * N0, s[g] * N0, t[g] * N0))

    csv = out / f"defences{tag}.csv"
    atomic_write(csv, lambda tmp: _write_csv(tmp, rows))
    _figure(out, tag, args, chains, G, gens_a, gens, panel_a, panel_b, panel_c, panel_d, panel_e, panel_f)
    print(f"wrote {csv} and defences{tag}.png/.pdf in {out}")
    if not full_run_checks(args, chains, G):
        return 0
    for name, lam in panel_c.items():
        print(f"(c) {name:24s} real fraction for n E e^2 <= {target:g}: {lam:.3f}")
    return 0


def _write_csv(path, rows) -> None:
    """The table, quoted where a series name holds a comma."""
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["panel", "series", "x_name", "x", "mc_mean", "mc_se", "theory"])
        for p, who, xn, x, m, s, t in rows:
            w.writerow([p, who, xn, f"{x:g}", f"{m:.6g}", f"{s:.3g}", f"{t:.6g}"])


def _crossing(lams, err, target) -> float:
    """Smallest real fraction whose stationary error is <= target (log-linear
    interpolation between the swept fractions; nan when none reaches it)."""
    ok = err <= target
    if not ok.any():
        return math.nan
    i = int(np.argmax(ok))
    if i == 0:
        return float(lams[0])
    x0, x1, y0, y1 = lams[i - 1], lams[i], math.log(err[i - 1]), math.log(err[i])
    return float(x0 + (math.log(target) - y0) * (x1 - x0) / (y1 - y0))


def _readable_log(ax, axis: str = "y") -> None:
    """Label a log axis in plain numbers at 1, 2 and 5 times each power of ten (1, 1.5,
    2, 3, 5, 7 where the data span less than a decade and a half): by default a range of
    one or two decades shows one label or none. Call it after the data are drawn."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    subs = (1.0, 2.0, 5.0) if hi / lo > 30 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
    target.set_major_locator(LogLocator(base=10, subs=subs))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def _figure(out, tag, args, chains, G, gens_a, gens, pa, pb, pc, pd, pe, pf):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullLocator

    theory = Line2D([], [], ls="--", color="k", lw=0.9, label="theory (dashed, the series' colour)")
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    ax = axes[0, 0]
    for name, (tm, ts, vm, vs, vt) in pa.items():
        line = ax.plot(gens_a, tm, lw=1.2, label=f"{name}: tail mass / 0.01")[0]
        ax.fill_between(gens_a, np.maximum(tm - 2 * ts, 1e-12), tm + 2 * ts, color=line.get_color(), alpha=0.25, lw=0)
        ax.plot(gens_a, vm, ":", lw=1.5, color=line.get_color(), label=f"{name}: variance")
        ax.fill_between(gens_a, np.maximum(vm - 2 * vs, 1e-12), vm + 2 * vs, color=line.get_color(), alpha=0.15, lw=0)
        ax.plot(gens_a, vt, "--", lw=0.9, color="k")
    ax.set(yscale="log", ylim=(1e-10, 10), xlabel="generation", ylabel="relative to the truth (log)")
    ax.set_title(f"(a) early (tails) vs late (variance) collapse, MLE, n = {N_TAIL}", fontsize=10)
    dashed = Line2D([], [], ls="--", color="k", lw=0.9, label="theory E[variance]")
    handles = [*ax.get_legend_handles_labels()[0], dashed]
    ax.legend(handles=handles, fontsize=8, loc="lower left", bbox_to_anchor=(0.27, 0.0))  # right of the falling tails

    ax = axes[0, 1]
    for name, (m, s, t) in pb.items():
        line = ax.errorbar(LAMBDAS, m, yerr=2 * s, fmt="o-", ms=3, lw=0.8, label=name)
        ok = np.isfinite(t)
        if ok.any():
            ax.plot(np.array(LAMBDAS)[ok], t[ok], "--", color=line[0].get_color(), lw=0.8)
    ax.axhline(2.0, color="grey", lw=0.6)
    ax.set_xscale("symlog", linthresh=0.05)
    ax.set(yscale="log", xlabel="real fraction lambda (FreshMix; symlog)", ylabel="stationary n E e^2")
    ax.set_xticks(LAMBDAS, [f"{x:g}" for x in LAMBDAS])
    ax.set_ylim(top=ax.get_ylim()[1] * 8)  # room for the legend above the curves
    _readable_log(ax)
    ax.set_title(f"(b) verifier (good: truth's central 90 %), known variance, n = {N}", fontsize=10)
    ax.legend(handles=[*ax.get_legend_handles_labels()[0], theory], fontsize=8, loc="upper right")

    ax = axes[0, 2]
    names = list(pc)
    vals = [pc[k] for k in names]
    ax.bar(range(len(names)), vals, color="C0")
    for i, v in enumerate(vals):
        ax.text(i, v + 0.004, f"{v:.3f}" if np.isfinite(v) else "n/a", ha="center", fontsize=8)
    ax.axhline(1 - math.sqrt(0.5), ls="--", color="k", lw=0.8, label="theory, no verifier: 1 - 1/sqrt(2)")
    ax.set_xticks(range(len(names)), [k.replace("verifier, accuracy ", "acc. ") for k in names], fontsize=8)
    ax.set(ylabel="real fraction needed (0: none)", xlabel="verifier")
    ax.set_title("(c) real data needed for stationary n E e^2 <= 2", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    for name, (m, s, t) in pd.items():
        line = ax.errorbar(ALPHAS, m, yerr=2 * s, fmt="o", ms=3, label=name)
        ax.plot(ALPHAS, t, "--", color=line[0].get_color(), lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="pool real fraction alpha", ylabel="stationary n E e^2")
    ax.set_xticks(ALPHAS, [f"{x:g}" for x in ALPHAS])
    ax.xaxis.set_minor_locator(NullLocator())
    _readable_log(ax)
    ax.set_title("(d) training on data labelled real (cj.Provenance)", fontsize=10)
    ax.legend(handles=[*ax.get_legend_handles_labels()[0], theory], fontsize=8)

    ax = axes[1, 1]
    for name, (m, s, t) in pe.items():
        line = ax.errorbar(GAMMAS, m, yerr=2 * s, fmt="o", ms=3, label=name)
        ax.plot(GAMMAS, t, "--", color=line[0].get_color(), lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="correction strength gamma", ylabel="stationary value")
    ax.set_xticks(GAMMAS, [f"{x:g}" for x in GAMMAS])
    ax.xaxis.set_minor_locator(NullLocator())
    _readable_log(ax)
    ax.set_title("(e) self-correction gamma (theory: cj.theory.correction_moments)", fontsize=10)
    ax.legend(handles=[*ax.get_legend_handles_labels()[0], theory], fontsize=8)

    ax = axes[1, 2]
    for name, (m, s, t) in pf.items():
        line = ax.plot(gens, m, lw=1, label=name)[0]
        ax.fill_between(gens, m - 2 * s, m + 2 * s, color=line.get_color(), alpha=0.25, lw=0)
        ax.plot(gens, t, "--", color="k", lw=0.9)
    ax.set(yscale="log", xlabel="generation", ylabel=f"n0 E e_g^2, n0 = {N0}")
    _readable_log(ax)
    ax.set_title("(f) sample-size schedules n_g = n0 (g + 1)^p", fontsize=10)
    handles = [*ax.get_legend_handles_labels()[0], Line2D([], [], ls="--", color="k", lw=0.9, label="theory sum 1/n_j")]
    ax.legend(handles=handles, fontsize=8, loc="upper left")

    fig.suptitle(
        f"Pressures and defences, 1-D Gaussian, {chains} chains, {G} generations (panel a: {len(gens_a) - 1}), "
        f"seed {args.seed}; MC mean +- 2 s.e., theory dashed",
        fontsize=11,
    )
    fig.tight_layout()
    for ext in ("png", "pdf"):
        atomic_write(out / f"defences{tag}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))


if __name__ == "__main__":
    raise SystemExit(main())
