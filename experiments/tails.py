"""Tails: rare categories go extinct, and a Gaussian loses its tails before its variance.

Shumailov et al. (Nature 2024; arXiv 2305.17493) observe that the low-probability
events vanish first ("early" collapse) and the distribution then contracts ("late"
collapse). Categorical panels refit empirical frequencies (a Wright-Fisher chain, Seddik
et al. arXiv 2404.05090; THEORY.md section 10.1); Gaussian panels refit a 1-D Gaussian
by maximum likelihood.

(a) Zipf truth over K = 50 categories (p_k proportional to 1/k), n = 200 draws per
generation: E[number of extinct categories] under Replace (exact Wright-Fisher law,
cj.theory.categorical.extinct_mean_replace, dashed), Accumulate and FreshMix(0.1)
(MC only: no closed form). Log generation axis.
(b) The collision probability S_g = sum_k p_k^2 for the same three regimes, each
with its exact law dashed (collision_replace, collision_accumulate, collision_freshmix).
(c) The fitted mass of the rare categories (p_0k < 0.01, 28 categories holding 16 %
of the mass) under Replace: its mean is a martingale (theory: constant, dashed) while
its median and 10 % quantile fall to 0: the mean hides the loss in a typical chain.
(d) First passage: truth (0.7, 0.25, 0.05), n = 50: P(first extinction <= g) and
P(fixation <= g) from the runs' events against the exact absorbing-chain law
(first_passage_cdf, dashed).
(e) Gaussian, n in {10, 100, 1000}: the median over chains of the fit's mass in the
truth's 1 % tails (|x| > 2.576 sigma_0), relative to 0.01, and the median variance;
theory dashed for the variance's exact median (bisection on the exact law of log
sigma^2, a sum of g + 1 i.i.d. log chi^2 terms: cj.theory.collapse_probability with
method="exact"). The tail mass has no closed form (it depends on the mean's drift too).
(f) Early vs late: the generation at which the median tail mass first falls to half its
start against the generation at which the median variance does, for n from 10 to 1000
(log-log). Dashed: theory for the variance (the exact median reaches 1/2); dotted: the
tail mass of N(0, sigma^2) at the median sigma (sigma^2 = 0.842 halves the 1 % tails), an
approximation that ignores the mean's random walk, which widens the fit's spread about
the truth and so delays the tail loss.

    python experiments/tails.py            # full: 10,000 chains
    python experiments/tails.py --smoke    # about half a minute
"""

from __future__ import annotations

import csv
import math

import numpy as np
from _common import full_run_checks, mean_se, study_args

import collapse_jax as cj
from collapse_jax.results import atomic_write

K = 50
N_CAT = 200
RARE = 0.01
FP_PROBS = (0.7, 0.25, 0.05)
N_FP = 50
NS_GAUSS = (10, 30, 100, 300, 1000)
NS_SHOWN = (10, 100, 1000)
TAIL_Z = 2.5758293035489004  # the truth's two-sided 1 % tails
SIGMA2_HALF_TAIL = (TAIL_Z / 2.807033768343811) ** 2  # 2 (1 - Phi(z / sigma)) = 0.005


def zipf(k: int) -> np.ndarray:
    p = 1.0 / np.arange(1, k + 1)
    return p / p.sum()


def first_below(curve: np.ndarray, level: float) -> float:
    """First generation (linear interpolation) where ``curve`` falls to ``level``."""
    idx = np.nonzero(curve <= level)[0]
    if idx.size == 0:
        return math.nan
    i = int(idx[0])
    if i == 0:
        return 0.0
    return i - 1 + (curve[i - 1] - level) / (curve[i - 1] - curve[i])


def median_variance(g: int, n: int) -> float:
    """The exact median of sigma_g^2 (MLE, sigma_0 = 1): bisection on the exact
    collapse probability P(sigma_g < c) = 1/2 (cj.theory.collapse_probability)."""
    lo, hi = float(cj.theory.log_variance_mean(g, n, "mle")) - 5.0, 1.0  # log sigma^2 brackets
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        p = cj.theory.collapse_probability(g, n, "mle", math.exp(0.5 * mid), method="exact")
        lo, hi = (lo, mid) if p > 0.5 else (mid, hi)
    return math.exp(0.5 * (lo + hi))


def half_life(n: int, level: float) -> float:
    """First generation (interpolated) at which the exact median of sigma_g^2 falls to
    ``level``: where P(sigma_g^2 < level) first reaches 1/2."""
    g = np.arange(int(4.0 * math.log(level) / cj.theory.log_variance_drift(n, "mle")) + 20)
    p = np.asarray(cj.theory.collapse_probability(g, n, "mle", math.sqrt(level), method="exact"))
    i = int(np.argmax(p >= 0.5))  # the exact median is <= level from generation i on
    if i == 0:
        return 0.0
    # interpolate the median linearly between generations i - 1 and i, as for the MC medians
    m0, m1 = median_variance(i - 1, n), median_variance(i, n)
    return i - 1 + (m0 - level) / (m0 - m1)


def main(argv=None) -> int:
    args, chains, G, out, tag = study_args(__doc__, argv, chains=(300, 10000), generations=(30, 500))
    kw = dict(chains=chains, seed=args.seed, progress=not args.smoke)
    n_cat = 40 if args.smoke else N_CAT  # the exact extinction law costs O(K n^2) per generation
    ns_gauss = (10, 100) if args.smoke else NS_GAUSS  # one compiled program per n
    gens = np.arange(G + 1)
    rows = []  # panel, series, x_name, x, mc_mean, mc_se, theory

    # (a)-(c) categorical, Zipf truth
    p0 = zipf(K)
    cat = cj.Categorical(p0, rare_below=RARE)
    regimes = {"Replace": cj.Replace(), "Accumulate": cj.Accumulate(), "FreshMix(0.1)": cj.FreshMix(0.1)}
    theory_s = {
        "Replace": cj.theory.categorical.collision_replace(gens, n_cat, p0),
        "Accumulate": cj.theory.categorical.collision_accumulate(gens, n_cat, p0),
        "FreshMix(0.1)": cj.theory.categorical.collision_freshmix(gens, n_cat, p0, 0.1),
    }
    ext_theory = cj.theory.categorical.extinct_mean_replace(gens, n_cat, p0)
    cat_curves = {}
    for name, regime in regimes.items():
        res = cj.simulate(cat, regime, n=n_cat, generations=G, metrics=["extinct", "collision_probability",
                          "rare_mass"], keep="chains", **kw)  # fmt: skip
        cat_curves[name] = res
        em, es = (res.mean("extinct"), res.se("extinct"))
        sm, ss = (res.mean("collision_probability"), res.se("collision_probability"))
        et = ext_theory if name == "Replace" else np.full(G + 1, math.nan)
        for g in _table_gens(G):
            rows.append(("a", name, "generation", g, em[g], es[g], et[g]))
            rows.append(("b", name, "generation", g, sm[g], ss[g], theory_s[name][g]))
    rare = np.asarray(cat_curves["Replace"].metrics["rare_mass"], np.float64)
    rare_true = float(p0[p0 < RARE].sum())
    rare_stats = {
        "mean": mean_se(rare),
        "median": (np.median(rare, axis=0), None),
        "10 % quantile": (np.quantile(rare, 0.1, axis=0), None),
    }
    for name, (m, s) in rare_stats.items():
        for g in _table_gens(G):
            rows.append(("c", name, "generation", g, m[g], s[g] if s is not None else math.nan,
                         rare_true if name == "mean" else math.nan))  # fmt: skip

    # (d) first passage, K = 3
    fp_gens = np.arange(min(G, 200) + 1)
    res = cj.simulate(cj.Categorical(FP_PROBS), n=N_FP, generations=int(fp_gens[-1]), metrics=["extinct"],
                      keep="chains", **kw)  # fmt: skip
    fp = {}
    for event in ("extinction", "fixation"):
        t = np.asarray(res.events[event])
        hit = (t[:, None] >= 0) & (t[:, None] <= fp_gens[None, :])
        p = hit.mean(axis=0)
        se = np.sqrt(p * (1 - p) / t.shape[0])
        exact = cj.theory.categorical.first_passage_cdf(fp_gens, N_FP, FP_PROBS, event=event)
        fp[event] = (p, se, exact)
        for g in _table_gens(int(fp_gens[-1])):
            rows.append(("d", f"P({event} <= g)", "generation", g, p[g], se[g], exact[g]))

    # (e)-(f) Gaussian tails vs variance
    G_gauss = 60 if args.smoke else max(G, 2000)
    gg = np.arange(G_gauss + 1)
    gauss = {}
    for n in ns_gauss:
        res = cj.simulate(cj.Gaussian(sampler="exact"), n=n, generations=G_gauss, metrics=["tail_mass", "variance"],
                          keep="summary", keep_chains=min(chains, 5000), **{**kw, "chains": chains})  # fmt: skip
        summ = res.summary()
        tail = summ[summ.metric == "tail_mass"].sort_values("generation")
        var = summ[summ.metric == "variance"].sort_values("generation")
        tail_med = tail["q50"].to_numpy() / 0.01
        var_med = var["q50"].to_numpy()
        var_med_theory = np.full(G_gauss + 1, math.nan)
        if n in NS_SHOWN or args.smoke:
            for g in np.unique(np.geomspace(1, G_gauss + 1, 40).astype(int) - 1):
                var_med_theory[g] = median_variance(int(g), n)
        half = {
            "tail": first_below(tail_med, 0.5 * tail_med[0]),
            "variance": first_below(var_med, 0.5),
            "variance theory": half_life(n, 0.5),
            "tail approx": half_life(n, SIGMA2_HALF_TAIL),
        }
        gauss[n] = (tail_med, var_med, var_med_theory, half)
        for g in _table_gens(G_gauss):
            rows.append(("e", f"n = {n}: median tail mass / 0.01", "generation", g, tail_med[g], math.nan, math.nan))
            rows.append(("e", f"n = {n}: median variance", "generation", g, var_med[g], math.nan, var_med_theory[g]))
        rows.append(("f", "tail mass half-life", "n", n, half["tail"], math.nan, half["tail approx"]))
        rows.append(("f", "variance half-life", "n", n, half["variance"], math.nan, half["variance theory"]))

    csv_path = out / f"tails{tag}.csv"
    atomic_write(csv_path, lambda tmp: _write_csv(tmp, rows))
    _figure(out, tag, args, chains, G, gens, gg, n_cat, cat_curves, ext_theory, theory_s, rare_stats, rare_true,
            fp_gens, fp, gauss)  # fmt: skip
    print(f"wrote {csv_path} and tails{tag}.png/.pdf in {out}")
    if not full_run_checks(args, chains, G):
        return 0
    for n, (_, _, _, h) in gauss.items():
        print(f"n = {n:4d}: tail half-life {h['tail']:.1f} (sigma-only approx {h['tail approx']:.1f}); "
              f"variance half-life {h['variance']:.1f} (theory {h['variance theory']:.1f})")  # fmt: skip
    return 0


def _table_gens(G: int) -> list[int]:
    return sorted(set(list(range(0, min(G, 20) + 1)) + list(range(0, G + 1, max(1, G // 50))) + [G]))


def _write_csv(path, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["panel", "series", "x_name", "x", "mc_value", "mc_se", "theory"])
        for p, who, xn, x, m, s, t in rows:
            w.writerow([p, who, xn, f"{x:g}", f"{m:.6g}", f"{s:.3g}", f"{t:.6g}"])


def _figure(out, tag, args, chains, G, gens, gg, n_cat, cat, ext_theory, theory_s, rare_stats, rare_true, fp_gens,
            fp, gauss) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    colours = {"Replace": "C0", "Accumulate": "C1", "FreshMix(0.1)": "C2"}
    x = gens + 1
    ax_a, ax_b = axes[0, 0], axes[0, 1]
    for name, res in cat.items():
        col = colours[name]
        m, s = (res.mean("extinct"), res.se("extinct"))
        ax_a.plot(x, m, color=col, lw=1.2, label=f"{name}")
        ax_a.fill_between(x, m - 2 * s, m + 2 * s, color=col, alpha=0.3, lw=0)
        m, s = (res.mean("collision_probability"), res.se("collision_probability"))
        ax_b.plot(x, m, color=col, lw=1.2, label=name)
        ax_b.fill_between(x, m - 2 * s, m + 2 * s, color=col, alpha=0.3, lw=0)
        ax_b.plot(x, theory_s[name], "--", color="k", lw=0.8)
    ax_a.plot(x, ext_theory, "--", color="k", lw=0.8, label="Replace: exact Wright-Fisher law")
    ax_a.set(xscale="log", xlabel="fits g + 1 (log)", ylabel=f"extinct categories (of {K})")
    ax_a.set_title(f"(a) extinction, Zipf truth K = {K}, n = {n_cat}", fontsize=9)
    ax_a.legend(fontsize=7)
    ax_b.plot([], [], "--", color="k", lw=0.8, label="exact law (each regime)")
    ax_b.set(xscale="log", yscale="log", xlabel="fits g + 1 (log)", ylabel="collision probability sum p_k^2 (log)")
    ax_b.set_title(f"(b) collision probability, n = {n_cat}", fontsize=9)
    ax_b.legend(fontsize=7)

    ax = axes[0, 2]
    for (name, (m, s)), col in zip(rare_stats.items(), ("C0", "C3", "C4")):
        ax.plot(x, m, color=col, lw=1.2, label=f"Replace: {name}")
        if s is not None:
            ax.fill_between(x, m - 2 * s, m + 2 * s, color=col, alpha=0.3, lw=0)
    ax.axhline(rare_true, ls="--", color="k", lw=0.8, label="theory: E = truth's rare mass (martingale)")
    ax.set(xscale="log", xlabel="fits g + 1 (log)", ylabel=f"fitted mass of categories with p_0 < {RARE:g}")
    ax.set_title("(c) the rare categories' mass: mean vs typical chain", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    for (event, (p, se, exact)), col in zip(fp.items(), ("C0", "C1")):
        ax.plot(fp_gens, p, color=col, lw=1.2, label=f"P({event} by g)")
        ax.fill_between(fp_gens, p - 2 * se, p + 2 * se, color=col, alpha=0.3, lw=0)
        ax.plot(fp_gens, exact, "--", color="k", lw=0.8)
    ax.plot([], [], "--", color="k", lw=0.8, label="exact absorbing-chain law")
    ax.set(xlabel="generation g", ylabel="cumulative probability")
    ax.set_title(f"(d) first passage, truth {FP_PROBS}, n = {N_FP}", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    for i, n in enumerate(n for n in NS_SHOWN if n in gauss):
        tail_med, var_med, var_th, _ = gauss[n]
        col = f"C{i}"
        ax.plot(gg + 1, tail_med, color=col, lw=1.4, label=f"n = {n}: median tail mass / 0.01")
        ax.plot(gg + 1, var_med, ":", color=col, lw=1.4, label=f"n = {n}: median variance")
        ok = np.isfinite(var_th)
        ax.plot(gg[ok] + 1, var_th[ok], "--", color="k", lw=0.7)
    ax.plot([], [], "--", color="k", lw=0.7, label="theory: exact median of sigma^2")
    ax.set(xscale="log", yscale="log", ylim=(1e-4, 2), xlabel="fits g + 1 (log)", ylabel="relative to the truth (log)")
    ax.set_title("(e) Gaussian (MLE): tails go before the variance", fontsize=9)
    ax.legend(fontsize=6)

    ax = axes[1, 2]
    ns = np.array(sorted(gauss))
    h = {k: np.array([gauss[n][3][k] for n in ns]) for k in ("tail", "variance", "variance theory", "tail approx")}
    ax.plot(ns, h["variance"] + 1, "o-", color="C0", label="median variance halves (MC)")
    ax.plot(ns, h["variance theory"] + 1, "--", color="C0", lw=0.8, label="theory: exact median of sigma^2 = 1/2")
    ax.plot(ns, h["tail"] + 1, "s-", color="C3", label="median 1 % tail mass halves (MC)")
    ax.plot(ns, h["tail approx"] + 1, ":", color="C3", lw=1.0, label="approx.: N(0, median sigma^2), no mean drift")
    ax.set(xscale="log", yscale="log", xlabel="n (points per generation, log)", ylabel="half-life in fits g + 1 (log)")
    ax.set_title("(f) early vs late collapse: half-lives", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle(
        f"Tails: {chains} chains per curve ({G} generations; Gaussian {len(gg) - 1}), seed {args.seed}; "
        "MC mean +- 2 s.e. (medians where stated), theory dashed",
        fontsize=9,
    )
    fig.tight_layout()
    for ext in ("png", "pdf"):
        atomic_write(out / f"tails{tag}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))


if __name__ == "__main__":
    raise SystemExit(main())
