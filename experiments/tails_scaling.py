"""Tails and scaling laws: a memoriser trained on model-generated Zipf data, the missing
mass under recursion, Poisson survival and real English word frequencies.

Dohmatob, Feng, Yang, Charton, Kempe, "A Tale of Tails: Model Collapse as a Change of
Scaling Laws" (ICML 2024): a memoriser ("Hutter LLM") trained on T draws errs on the
inputs it never saw; on clean Zipf(beta) data its test error falls as T^-(beta-1)/beta,
on data whose tail is cut at rank k it plateaus at the tail's mass, and a fraction pi
of clean data brings the descent back. Suresh, Thangaraj, Khandavally, "Rate of Model
Collapse in Recursive Training" (2024): Poisson rates die out, at a rate set by
n lambda*.

Panels:
  (a) test error vs T for clean data and tails cut at k = 10, 100, 1000 (Theorem 2.1),
      generation 0 given as the cut model (``start=``); exact theory
      (``cj.theory.tails.cut_error``), the scaling law and the plateaus dashed; the
      fitted exponents below and above each cut's crossover T_k;
  (b) mixing a clean fraction pi into data cut at k = 100 (Theorem 3.2), pi swept in
      one compiled program; theory ``mixed_error``;
  (c) recursion: the memoriser trained on generation g's model under Replace (MC mean
      +- 2 s.e.), theory at g = 0 (the exact binomial average), and the exponent
      fitted per generation with a bootstrap interval over chains;
  (d) the missing mass (the truth's mass the fit has lost) vs generation, Replace and
      FreshMix(0.1), with Replace's exact Wright-Fisher law;
  (e) Poisson extinction P(lambda_g = 0) under Replace for n lambda* = 1, 4, 16, with
      the exact branching-process law (``cj.theory.poisson.extinction_replace``);
  (f) the same recursion as (c) on English word frequencies (``wordfreq``: the 10,000
      most frequent words), with the exponent per generation.

    python experiments/tails_scaling.py            # full study (minutes)
    python experiments/tails_scaling.py --smoke    # a quick check of the whole pipeline
"""

from __future__ import annotations

import csv
import math

import numpy as np
from _common import full_run_checks, study_args
from scipy import stats

import collapse_jax as cj
from collapse_jax.results import atomic_write
from collapse_jax.theory import categorical as cat_theory
from collapse_jax.theory import poisson as pois_theory
from collapse_jax.theory import tails as tt

BETA = 1.5  # clean exponent (beta - 1) / beta = 1/3
K = 10_000  # categories of the Zipf truth in (a), (b)
CUTS = (10, 100, 1000)
PIS = (0.0, 0.001, 0.01, 0.1)
T_GRID = np.unique(np.round(np.logspace(0, 8, 33)).astype(np.int64))
K_REC, N_REC = 1000, 1000  # (c), (d): categories and points per generation
SHOW_GENS = (0, 3, 10, 30)
RATES = (1, 4, 16)  # (e): n lambda*
N_POIS = 20
K_EN, N_EN = 10_000, 10_000  # (f)


def main(argv=None) -> int:
    args, chains, G, out, tag = study_args(__doc__, argv, chains=(64, 2000), generations=(10, 30))
    kw = dict(chains=chains, seed=args.seed, progress=not args.smoke)
    k_rec, n_rec = (200, 200) if args.smoke else (K_REC, N_REC)
    k_en, n_en = (2000, 2000) if args.smoke else (K_EN, N_EN)
    gens_shown = [g for g in SHOW_GENS if g <= G]
    sizes = tuple(int(t) for t in T_GRID)
    rows: list[tuple] = []

    # (a) cut tails: generation 0 is the cut model itself, so the error is exact per chain
    truth = cj.Categorical.zipf(BETA, K)
    cut_curves, exponents = {}, {}
    for k in (None, *CUTS):
        start = truth.truth() if k is None else truth.cut(k)
        fam = cj.Categorical.zipf(BETA, K, start=start, train_sizes=sizes)
        res = cj.simulate(fam, cj.Replace(), n=10, generations=0, chains=1, seed=args.seed, metrics=["memoriser_error"])
        got = res.metrics["memoriser_error"][0, 0]
        theory = tt.zipf_error(T_GRID, BETA, K) if k is None else tt.cut_error(T_GRID, BETA, k, K)
        cut_curves[k] = (got, theory)
        name = "clean" if k is None else f"cut k = {k}"
        for t, m, th in zip(sizes, got, theory):
            rows.append(("a", name, "T", t, m, math.nan, th))
        if k is not None:
            tk = tt.cut_crossover(BETA, k)
            below = tt.fit_exponent(T_GRID, got, T_max=tk / 10) if tk / 10 >= 10 else math.nan
            above = tt.fit_exponent(T_GRID, got, T_min=tk * 10)
            exponents[k] = (tk, below, above)
            rows.append(
                ("a", f"{name}: exponent for T < T_k / 10", "T_k", tk, below, math.nan, tt.scaling_exponent(BETA))
            )
            rows.append(("a", f"{name}: exponent for T > 10 T_k", "T_k", tk, above, math.nan, 0.0))

    # (b) mixing a clean fraction into cut data: one program over pi
    fam = cj.Categorical.zipf(BETA, K, start=truth.cut(100), train_sizes=sizes)
    res = cj.simulate(
        fam, cj.Replace(), n=10, generations=0, chains=1, seed=args.seed, metrics=["memoriser_error"],
        sweep={"clean_fraction": list(PIS)},
    )  # fmt: skip
    mix_curves = {}
    for i, pi in enumerate(PIS):
        got = res.sel(i).metrics["memoriser_error"][0, 0]
        theory = tt.mixed_error(T_GRID, BETA, 100, pi, K)
        mix_curves[pi] = (got, theory)
        for t, m, th in zip(sizes, got, theory):
            rows.append(("b", f"pi = {pi:g}", "T", t, m, math.nan, th))

    # (c), (d) recursion under Replace and FreshMix(0.1)
    p_rec = tt.zipf_probs(BETA, k_rec)
    rec_sizes = tuple(int(t) for t in T_GRID[T_GRID <= 10**7])
    rec = {}
    for name, regime in (("Replace", cj.Replace()), ("FreshMix(0.1)", cj.FreshMix(0.1))):
        fam = cj.Categorical(p_rec, train_sizes=rec_sizes)
        rec[name] = cj.simulate(
            fam, regime, n=n_rec, generations=G, keep="chains", metrics=["memoriser_error", "missing_mass"], **kw
        )
    res_c = rec["Replace"]
    t_rec = np.array(rec_sizes, np.float64)
    g0_theory = _memoriser_error_fit_mean(t_rec, n_rec, p_rec)
    rec_exponents = {}
    for g in gens_shown:
        e = res_c.metrics["memoriser_error"][:, g, :]
        m, s = e.mean(axis=0), e.std(axis=0, ddof=1) / math.sqrt(chains)
        for t, mm, ss, th in zip(rec_sizes, m, s, g0_theory if g == 0 else [math.nan] * len(rec_sizes)):
            rows.append(("c", f"g = {g}", "T", t, mm, ss, th))
        lo_range = tt.fit_exponent_ci(t_rec, e, T_min=10, T_max=n_rec / 10, seed=args.seed)
        hi_range = tt.fit_exponent_ci(t_rec, e, T_min=n_rec * 100, seed=args.seed)
        rec_exponents[g] = (lo_range, hi_range)
        rows.append(
            ("c", f"g = {g}: exponent, 10 <= T <= n/10", "g", g, lo_range[0], math.nan, math.nan, *lo_range[1:])
        )
        rows.append(("c", f"g = {g}: exponent, T >= 100 n", "g", g, hi_range[0], math.nan, math.nan, *hi_range[1:]))
    mm_theory = cat_theory.missing_mass_mean_replace(np.arange(G + 1), n_rec, p_rec)
    for name, r in rec.items():
        m, s = r.mean("missing_mass"), r.se("missing_mass")
        for g in range(G + 1):
            rows.append(("d", name, "generation", g, m[g], s[g], mm_theory[g] if name == "Replace" else math.nan))

    # (e) Poisson survival
    pois = {}
    g_pois = np.arange(G + 1)
    for nl in RATES:
        r = cj.simulate(cj.Poisson(nl / N_POIS), cj.Replace(), n=N_POIS, generations=G, keep="chains", **kw)
        dead = r.metrics["extinct"]
        m = dead.mean(axis=0)
        exact = pois_theory.extinction_replace(g_pois, N_POIS, nl / N_POIS)
        pois[nl] = (m, np.sqrt(exact * (1 - exact) / chains), exact)
        for g in g_pois:
            rows.append(("e", f"n lambda* = {nl}", "generation", g, m[g], pois[nl][1][g], exact[g]))

    # (f) English word frequencies
    en = None
    try:
        fam = cj.Categorical.from_wordfreq("en", k_en, train_sizes=rec_sizes)
    except ImportError as e:
        print(f"panel (f) skipped: {e}")
    else:
        r = cj.simulate(fam, cj.Replace(), n=n_en, generations=G, keep="chains", metrics=["memoriser_error"], **kw)
        en = {}
        for g in gens_shown:
            e = r.metrics["memoriser_error"][:, g, :]
            m, s = e.mean(axis=0), e.std(axis=0, ddof=1) / math.sqrt(chains)
            fit = tt.fit_exponent_ci(t_rec, e, T_min=10, T_max=n_en / 10, seed=args.seed)
            en[g] = (m, s, fit)
            for t, mm, ss in zip(rec_sizes, m, s):
                rows.append(("f", f"English, g = {g}", "T", t, mm, ss, math.nan))
            rows.append(
                ("f", f"English, g = {g}: exponent, 10 <= T <= n/10", "g", g, fit[0], math.nan, math.nan, *fit[1:])
            )

    csv_path = out / f"tails_scaling{tag}.csv"
    atomic_write(csv_path, lambda tmp: _write_csv(tmp, rows))
    _figure(out, tag, args, chains, G, sizes, cut_curves, exponents, mix_curves, res_c, rec_sizes, g0_theory,
            rec_exponents, gens_shown, rec, mm_theory, pois, en, k_rec, n_rec, k_en, n_en)  # fmt: skip
    print(f"wrote {csv_path} and tails_scaling{tag}.png/.pdf in {out}")
    for k, (tk, below, above) in exponents.items():
        print(f"(a) cut k = {k:5d}: T_k = {tk:10.3g}; exponent {below:.3f} below T_k/10, {above:.4f} above 10 T_k "
              f"(clean law: {tt.scaling_exponent(BETA):.3f})")  # fmt: skip
    if not full_run_checks(args, chains, G):
        return 0
    for g, (lo, hi) in rec_exponents.items():
        print(f"(c) g = {g:3d}: exponent {lo[0]:.3f} [{lo[1]:.3f}, {lo[2]:.3f}] for 10 <= T <= n/10, "
              f"{hi[0]:.4f} [{hi[1]:.4f}, {hi[2]:.4f}] for T >= 100 n")  # fmt: skip
    e0 = res_c.metrics["memoriser_error"][:, 0, :]
    z = (e0.mean(axis=0) - g0_theory) / (e0.std(axis=0, ddof=1) / math.sqrt(chains))
    print(f"(c) g = 0 against the exact binomial average: max |z| = {np.max(np.abs(z)):.2f} over {z.size} T")
    zmm = (rec["Replace"].mean("missing_mass") - mm_theory) / rec["Replace"].se("missing_mass")
    print(f"(d) Replace missing mass against the exact law: max |z| = {np.max(np.abs(zmm)):.2f} over {G + 1} gens")
    for nl, (m, se, exact) in pois.items():
        ok = se > 0
        print(f"(e) n lambda* = {nl:2d}: max |z| = {np.max(np.abs((m - exact)[ok] / se[ok])):.2f}")
    return 0


def _memoriser_error_fit_mean(t, n: int, p) -> np.ndarray:
    """E over generation 0's fit (counts c ~ Multinomial(n, p)) of sum_k p_k (1 - c_k/n)^T:
    each c_k is Binomial(n, p_k), so the average is a finite sum (exact)."""
    c = np.arange(n + 1)
    pmf = stats.binom.pmf(c[None, :], n, p[:, None])  # (K, n + 1)
    w = p[:, None] * pmf
    with np.errstate(divide="ignore"):
        base = np.log1p(-np.minimum(c / n, 1.0))  # -inf at c = n: (1 - 1)^T = 0
    return np.array([float(np.sum(w * np.exp(tt_ * base))) for tt_ in t])


def _write_csv(path, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["panel", "series", "x_name", "x", "mc_value", "mc_se", "theory", "ci_low", "ci_high"])
        for p, who, xn, x, m, s, t, *ci in rows:
            lo, hi = ci or (math.nan, math.nan)  # exponents: a bootstrap interval over chains
            w.writerow([p, who, xn, f"{x:g}", f"{m:.6g}", f"{s:.4g}", f"{t:.6g}", f"{lo:.6g}", f"{hi:.6g}"])


def _figure(out, tag, args, chains, G, sizes, cut_curves, exponents, mix_curves, res_c, rec_sizes, g0_theory,
            rec_exponents, gens_shown, rec, mm_theory, pois, en, k_rec, n_rec, k_en, n_en) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    t = np.array(sizes, np.float64)
    law = tt.scaling_law(t, BETA)

    ax = axes[0, 0]
    for i, (k, (got, theory)) in enumerate(cut_curves.items()):
        label = "clean" if k is None else f"cut k = {k}: exponent {exponents[k][1]:.2f} -> {exponents[k][2]:.3f}"
        ax.plot(t, got, "o", ms=3, color=f"C{i}", label=label)
        ax.plot(t, theory, "-", color=f"C{i}", lw=0.8)
        if k is not None:
            ax.axhline(tt.zipf_tail_mass(BETA, k, K), ls=":", color=f"C{i}", lw=0.8)
    ax.plot(t, law, "--", color="k", lw=0.8, label=f"C T^-{tt.scaling_exponent(BETA):.3f} (K = inf)")
    ax.set(xscale="log", yscale="log", ylim=(1e-5, 2), xlabel="T (training draws)", ylabel="memoriser test error")
    ax.set_title(f"(a) tail cut (Thm 2.1), Zipf beta = {BETA}, K = {K}: simulator (dots), exact (lines)", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[0, 1]
    for i, (pi, (got, theory)) in enumerate(mix_curves.items()):
        ax.plot(t, got, "o", ms=3, color=f"C{i}", label=f"pi = {pi:g}")
        ax.plot(t, theory, "-", color=f"C{i}", lw=0.8)
    ax.plot(t, law, "--", color="k", lw=0.8, label="clean scaling law")
    ax.set(xscale="log", yscale="log", ylim=(1e-5, 2), xlabel="T", ylabel="memoriser test error")
    ax.set_title("(b) clean fraction pi mixed into data cut at k = 100 (Thm 3.2)", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[0, 2]
    tr = np.array(rec_sizes, np.float64)
    for i, g in enumerate(gens_shown):
        e = res_c.metrics["memoriser_error"][:, g, :]
        m, s = e.mean(axis=0), e.std(axis=0, ddof=1) / math.sqrt(chains)
        (est, lo, hi), _ = rec_exponents[g]
        ax.plot(tr, m, color=f"C{i}", lw=1.2, label=f"g = {g}: exponent {est:.3f} [{lo:.3f}, {hi:.3f}]")
        ax.fill_between(tr, m - 2 * s, m + 2 * s, color=f"C{i}", alpha=0.3, lw=0)
    ax.plot(tr, g0_theory, "--", color="k", lw=0.8, label="g = 0: exact average over the fit")
    ax.set(xscale="log", yscale="log", xlabel="T", ylabel="memoriser test error")
    ax.set_title(f"(c) memoriser on generation g's model, Replace, K = {k_rec}, n = {n_rec}", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    x = np.arange(G + 1) + 1
    for i, (name, r) in enumerate(rec.items()):
        m, s = r.mean("missing_mass"), r.se("missing_mass")
        ax.plot(x, m, color=f"C{i}", lw=1.2, label=name)
        ax.fill_between(x, m - 2 * s, m + 2 * s, color=f"C{i}", alpha=0.3, lw=0)
    ax.plot(x, mm_theory, "--", color="k", lw=0.8, label="Replace: exact Wright-Fisher law")
    ax.set(xscale="log", xlabel="fits g + 1 (log)", ylabel="missing mass (truth's mass the fit lost)")
    ax.set_title(f"(d) missing mass, Zipf beta = {BETA}, K = {k_rec}, n = {n_rec}", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    g = np.arange(G + 1)
    for i, (nl, (m, se, exact)) in enumerate(pois.items()):
        ax.plot(g, m, color=f"C{i}", lw=1.2, label=f"n lambda* = {nl}")
        ax.fill_between(g, m - 2 * se, m + 2 * se, color=f"C{i}", alpha=0.3, lw=0)
        ax.plot(g, exact, "--", color="k", lw=0.8)
    ax.plot([], [], "--", color="k", lw=0.8, label="exact: exp(-n lambda* (1 - q_g))")
    ax.set(xlabel="generation g", ylabel="P(lambda_g = 0)")
    ax.set_title(f"(e) Poisson rates die out (Suresh et al.), n = {N_POIS}", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1, 2]
    if en is None:
        ax.text(0.5, 0.5, "wordfreq not installed:\npip install 'collapse-jax[wordfreq]'", ha="center")
    else:
        for i, (gg, (m, s, (est, lo, hi))) in enumerate(en.items()):
            ax.plot(tr, m, color=f"C{i}", lw=1.2, label=f"g = {gg}: exponent {est:.3f} [{lo:.3f}, {hi:.3f}]")
            ax.fill_between(tr, m - 2 * s, m + 2 * s, color=f"C{i}", alpha=0.3, lw=0)
        ax.set(xscale="log", yscale="log", xlabel="T", ylabel="memoriser test error")
        ax.legend(fontsize=7)
    ax.set_title(f"(f) English word frequencies (wordfreq, top {k_en} words), n = {n_en}, Replace", fontsize=9)
    fig.suptitle(
        f"Tails and scaling laws: {chains} chains per curve in (c)-(f), {G} generations, seed {args.seed}; "
        "MC mean +- 2 s.e., theory dashed or solid",
        fontsize=9,
    )
    fig.tight_layout()
    for ext in ("png", "pdf"):
        atomic_write(out / f"tails_scaling{tag}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))


if __name__ == "__main__":
    raise SystemExit(main())
