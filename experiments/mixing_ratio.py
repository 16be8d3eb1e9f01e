"""How much real data, and with what weight: mixing-ratio scaling curves for fresh real
data (He, Xu, Cheng, arXiv 2502.18049, "golden ratio weighting"; Garg, Bhattacharya,
Sur, arXiv 2509.22341; docs/THEORY.md sections 5, 6, 12). Every curve is one sweep.

(a) FreshMix, known variance (1-D Gaussian, pooled fit of lambda n fresh real and
(1 - lambda) n synthetic points): the stationary error n E e^2_inf / sigma^2 against the
real fraction lambda for n = 10, 30, 100, 300 (lambda n an integer; one seed per n),
log-log. Exact theory 1/(lambda (2 - lambda)) (cj.theory.freshmix_steady_state) dashed.
(b) The same with a learned variance (MLE): theory dashed per n, the exact moment
recursion cj.theory.freshmix_moments at a large generation; known-variance curve grey.
(b') Why (b) does not collapse: the stationary error over the known-variance value
against the real points per generation r = lambda n, MLE (filled) and unbiased (open),
recursion dashed; x marks the recursion averaged over the same generations where the
chain is not yet stationary (>2 % off: slow modes of the unbiased chain at r <= 3).
(c) He-Xu-Cheng weighting (cj.Weighted, known variance, combine="estimates"): n = 100
fresh real points and m = n/k synthetic ones, theta = w theta(real) + (1 - w) theta(synth);
n E e^2_inf / sigma^2 against w for k in {0.25, 0.5, 1, 2, 4}; theory
(w^2 + k (1 - w)^2) / (w (2 - w)) (cj.theory.weighted_steady_state) dashed.
(c') The optimal weight: vertex of the parabola through the 5 grid points around the
minimum of the MC curve, +- 2 s.e. from a bootstrap over chains (resampled jointly
across w); golden-ratio law w*(k) = (sqrt(k^2 + 4k) - k)/2 (cj.theory.optimal_real_weight)
dashed, naive k/(1 + k) dotted. CSV column theory_window of the argmin rows: the same
estimator applied to the theory curve (its grid bias, <= 0.002 here).
(d), (d') Label mixing in linear regression on a fixed design (cj.Ridge, cj.Weighted with
ratio 1: labels w y_real + (1 - w) y_synth on the same rows, fresh real labels every
generation), n = 8 rows, noise 1, ||w*|| = 1: stationary test error against w at
d/n = 0.5 (lam = 0: OLS, cj.theory.ols_weighted_test_error dashed) and d/n = 2 (lam = 0:
minimum-norm interpolation, cj.theory.minnorm_weighted_test_error dashed), and ridge
lam = 0.1, 1 (per-point penalty; no closed form in the library: Monte Carlo only).
(d'') The optimal real weight (as in c') against d/n in {0.25, ..., 4}: lam = 0 (OLS below
1, min-norm above; infinite at d = n) against 1/phi dashed; ridge against Garg et al.'s
">= 1/2" (dotted). d/n = 8 (d = 64) is left out: every fit eigendecomposes X^T X.

Stationary values: per-chain time averages over generations G/2..G (a, b; at lambda =
0.01 the known-variance transient (1 - lambda)^(2g) is 1.8 % of its start at g = 200) and
over G_w/5..G_w (c: G_w = G/4; d: G/8 generations; w >= 0.2 contracts the error by
(1 - w)^2 <= 0.64 per generation), then mean and s.e. over chains. The theory_window
column is the exact recursion averaged over the same generations. Sweep points share
their random numbers, so a curve's errors are correlated along it.

    python experiments/mixing_ratio.py            # full: 10,000 chains (5,000 for d)
    python experiments/mixing_ratio.py --smoke    # under a minute
"""

from __future__ import annotations

import csv
import math

import numpy as np
from _common import full_run_checks, study_args

import collapse_jax as cj
from collapse_jax.results import atomic_write

LAMBDAS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)  # kept where lambda n is an integer
N_C = 100  # real points per generation in (c)
RATIOS = (0.25, 0.5, 1.0, 2.0, 4.0)
W_C = np.round(np.arange(0.2, 1.0001, 0.025), 4)
N_D = 8  # rows of the fixed design in (d)
D_OVER_N = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
RIDGE = (0.0, 0.1, 1.0)  # lam per point; 0: OLS (d < n) or minimum norm (d > n)
W_D = np.round(np.arange(0.3, 1.0001, 0.05), 4)
INV_PHI = (math.sqrt(5) - 1) / 2


def lambdas_for(n):
    return [lam for lam in LAMBDAS if abs(lam * n - round(lam * n)) < 1e-9]


def per_chain(res, metric, burn):
    """(sweep, chains) per-chain time averages over generations burn..G."""
    return np.asarray(res.metrics[metric], np.float64)[..., burn:].mean(axis=-1)


def vertex(w, curve):
    """Minimiser of a curve on the grid w: vertex of the parabola through the 5 grid
    points around the grid minimum (the grid value at an edge)."""
    i = int(np.argmin(curve))
    if i < 2 or i > len(w) - 3:
        return float(w[i])
    a, b, _ = np.polyfit(w[i - 2 : i + 3], curve[i - 2 : i + 3], 2)
    return float(np.clip(-b / (2 * a), w[i - 2], w[i + 2])) if a > 0 else float(w[i])


def argmin_weight(w, avg, boot, rng):
    """Optimal weight from the mean curve over chains (avg: sweep x chains) and its
    bootstrap s.e. over chains (resampled jointly across w: common random numbers)."""
    c = avg.shape[1]
    reps = [vertex(w, avg[:, rng.integers(0, c, c)].mean(axis=1)) for _ in range(boot)]
    return vertex(w, avg.mean(axis=1)), float(np.std(reps, ddof=1))


def main(argv=None) -> int:
    args, chains, G, out, tag = study_args(__doc__, argv, chains=(200, 10000), generations=(40, 400))
    kw = dict(seed=args.seed, progress=not args.smoke, keep="chains")  # steady_state: every chain
    kw_n = [{**kw, "seed": args.seed + j} for j in range(4)]  # (a, b): one seed per n (independent curves)
    burn = G // 2
    window = np.arange(burn, G + 1)
    rng = np.random.default_rng(args.seed)
    boot = 30 if args.smoke else 200
    ns = (10, 100) if args.smoke else (10, 30, 100, 300)
    rows = []  # panel, series, x_name, x, mc_mean, mc_se, theory, theory_window

    # (a), (b), (b'): FreshMix, known and learned variance
    fm = {}  # (kind, n) -> (lambdas, mean, se, theory, theory over the averaging window)
    for kind, fam in (
        ("known", cj.Gaussian(learn_cov=False, sampler="exact")),
        ("mle", cj.Gaussian(estimator="mle", sampler="exact")),
        ("unbiased", cj.Gaussian(estimator="unbiased", sampler="exact")),
    ):
        for j, n in enumerate(ns[:1] if args.smoke and kind == "unbiased" else ns):  # smoke: fewer compilations
            lams = lambdas_for(n)
            res = cj.simulate(fam, cj.FreshMix(0.5), n=n, generations=G, chains=chains,
                              sweep={"real_fraction": lams}, metrics=["mean_sq_error"], **kw_n[j])  # fmt: skip
            st = res.steady_state("mean_sq_error", burn)
            est, learn = ("mle", False) if kind == "known" else (kind, True)
            th, tw = [], []
            for lam in lams:
                e_inf = cj.theory.freshmix_moments(20 * G + 5000, n, lam, est, learn_cov=learn)[0]
                th.append(cj.theory.freshmix_steady_state(n, lam) if kind == "known" else e_inf)
                tw.append(np.mean(cj.theory.freshmix_moments(window, n, lam, est, learn_cov=learn)[0]))
            fm[kind, n] = (np.array(lams), st["mean"] * n, st["se"] * n, np.array(th) * n, np.array(tw) * n)
            for row in zip(*fm[kind, n]):
                rows.append(("a" if kind == "known" else "b", f"{kind}, n = {n}", "real_fraction", *row))

    # (c), (c'): He-Xu-Cheng weighting, known variance
    wc, wstar = {}, {}
    fam = cj.Gaussian(learn_cov=False, sampler="exact")
    g_w = max(G // 4, 10)
    burn_w = g_w // 5
    win_w = np.arange(burn_w, g_w + 1)
    for k in RATIOS[1:4] if args.smoke else RATIOS:
        res = cj.simulate(fam, cj.Weighted(0.5, ratio=k), n=N_C, generations=g_w, chains=chains,
                          sweep={"real_weight": W_C}, metrics=["mean_sq_error"], **kw)  # fmt: skip
        avg = per_chain(res, "mean_sq_error", burn_w) * N_C
        th = np.array([cj.theory.weighted_steady_state(N_C, w, k) for w in W_C]) * N_C
        tw = np.array([np.mean(cj.theory.weighted_mean_sq_error(win_w, N_C, w, k)) for w in W_C]) * N_C
        wc[k] = (avg.mean(axis=1), avg.std(axis=1, ddof=1) / math.sqrt(chains), th)
        for row in zip(W_C, wc[k][0], wc[k][1], th, tw):
            rows.append(("c", f"k = {k:g}", "real_weight", *row))
        wstar[k] = argmin_weight(W_C, avg, boot, rng)
        # theory_window: the same estimator applied to the theory curve (its grid/parabola bias)
        rows.append(("c'", "argmin", "ratio_k", k, *wstar[k], float(cj.theory.optimal_real_weight(k)), vertex(W_C, th)))

    # (d), (d'), (d''): label mixing, OLS / min-norm / ridge on a fixed design
    chains_d = max(chains // 2, 100)
    g_d = max(G // 8, 10)
    burn_d = g_d // 5
    win_d = np.arange(burn_d, g_d + 1)
    dn_grid = (0.5, 2.0) if args.smoke else D_OVER_N
    curves_d, opt_d = {}, {}
    for dn in dn_grid:
        d = round(dn * N_D)
        lams = [lam for lam in RIDGE if lam > 0 or abs(d - N_D) >= 2]  # OLS / min-norm infinite at |d - n| < 2
        fam = cj.Ridge(d, lam=0.1, noise=1.0, w_star=np.ones(d) / math.sqrt(d), design="fixed")
        res = cj.simulate(fam, cj.Weighted(0.5, ratio=1.0), n=N_D, generations=g_d, chains=chains_d,
                          sweep={"lam": lams, "real_weight": W_D}, metrics=["test_error"], **kw)  # fmt: skip
        avg = per_chain(res, "test_error", burn_d).reshape(len(lams), len(W_D), -1)
        for i, lam in enumerate(lams):
            m, s = avg[i].mean(axis=1), avg[i].std(axis=1, ddof=1) / math.sqrt(chains_d)
            th, tw = np.full(len(W_D), math.nan), np.full(len(W_D), math.nan)
            if lam == 0:
                f = cj.theory.ols_weighted_test_error if d < N_D else cj.theory.minnorm_weighted_test_error
                th = np.array([f(50 * g_d + 1000, N_D, d, 1.0, w) for w in W_D])
                tw = np.array([np.mean(f(win_d, N_D, d, 1.0, w)) for w in W_D])
            curves_d[dn, lam] = (m, s, th)
            name = f"lam = {lam:g}, d/n = {dn:g}"
            for row in zip(W_D, m, s, th, tw):
                rows.append(("d", name, "real_weight", *row))
            opt_d[dn, lam] = argmin_weight(W_D, avg[i], boot, rng)
            rows.append(("d''", f"argmin, lam = {lam:g}", "d_over_n", dn, *opt_d[dn, lam],
                         INV_PHI if lam == 0 else math.nan, vertex(W_D, th) if lam == 0 else math.nan))  # fmt: skip

    path = out / f"mixing_ratio{tag}.csv"
    atomic_write(path, lambda tmp: _write_csv(tmp, rows))
    _figure(out, tag, args, chains, chains_d, G, g_w, g_d, ns, fm, wc, wstar, dn_grid, curves_d, opt_d)
    print(f"wrote {path} and mixing_ratio{tag}.png/.pdf in {out}")
    if not full_run_checks(args, chains, G):
        return 0
    for k, (w, s) in wstar.items():
        law = cj.theory.optimal_real_weight(k)
        print(f"(c') k = {k:g}: optimal w = {w:.3f} +- {s:.3f} (golden-ratio law {law:.3f})")
    for (dn, lam), (w, s) in opt_d.items():
        print(f"(d'') d/n = {dn:g}, lam = {lam:g}: optimal w = {w:.3f} +- {s:.3f}")
    return 0


def _write_csv(path, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["panel", "series", "x_name", "x", "mc_mean", "mc_se", "theory", "theory_window"])
        for p, who, xn, x, m, s, t, tw in rows:
            w.writerow([p, who, xn, f"{x:g}", f"{m:.6g}", f"{s:.3g}", f"{t:.6g}", f"{tw:.6g}"])


def _band(ax, x, m, s, **kw):
    return ax.errorbar(x, m, yerr=2 * s, fmt="o", ms=3, capsize=2, lw=0.8, **kw)[0].get_color()


def _figure(out, tag, args, chains, chains_d, G, g_w, g_d, ns, fm, wc, wstar, dn_grid, curves_d, opt_d):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(20, 9))
    lam_fine = np.geomspace(0.008, 1, 200)
    for ax, kind, title in ((axes[0, 0], "known", "(a) FreshMix, known variance"),
                            (axes[0, 1], "mle", "(b) FreshMix, learned variance (MLE)")):  # fmt: skip
        for j, n in enumerate(ns):
            lams, m, s, th, _ = fm[kind, n]
            col = _band(ax, lams * 1.05 ** (j - 1.5), m, s, label=f"n = {n}")  # x nudged apart per n
            if kind != "known":
                ax.plot(lams, th, "--", color=col, lw=0.9)
        ref = dict(color="k", label="1/(lambda(2 - lambda))") if kind == "known" else dict(color="grey", alpha=0.6)
        ax.plot(lam_fine, 1 / (lam_fine * (2 - lam_fine)), "--", lw=0.9, **ref)
        ax.set(xscale="log", yscale="log", xlabel="real fraction lambda (log)", ylabel="n E e^2_inf / sigma^2 (log)")
        ax.set_title(title + (": theory dashed per n (exact recursion)" if kind != "known" else ""), fontsize=9)
        ax.legend(fontsize=7)

    ax = axes[0, 2]
    for kind, mk in (("mle", "o"), ("unbiased", "s")):
        for j, n in enumerate(ns):
            if (kind, n) not in fm:
                continue
            lams, m, s, th, tw = fm[kind, n]
            ratio = lams * (2 - lams)
            r = lams * n
            line = ax.errorbar(r, m * ratio, yerr=2 * s * ratio, fmt=mk, ms=3.5, capsize=2, lw=0.8, color=f"C{j}",
                               mfc="none" if kind == "unbiased" else f"C{j}", label=f"{kind}, n = {n}")  # fmt: skip
            ax.plot(r, th * ratio, "--", color=line[0].get_color(), lw=0.8)
            lag = np.abs(tw - th) > 0.02 * th  # not yet stationary over the averaging window
            if lag.any():
                ax.plot(r[lag], (tw * ratio)[lag], "x", color="k", ms=6)
    ax.axhline(1, color="k", lw=0.6)
    ax.set(xscale="log", xlabel="real points per generation r = lambda n (log)",
           ylabel="n lambda(2 - lambda) E e^2_inf / sigma^2")  # fmt: skip
    ax.set_title(f"(b') learned / known-variance law (x: recursion averaged over {G // 2}-{G})", fontsize=9)
    ax.legend(fontsize=6, ncol=2)

    ax = axes[0, 3]
    for k, (m, s, th) in wc.items():
        col = _band(ax, W_C, m, s, label=f"k = n/m = {k:g}")
        ax.plot(W_C, th, "--", color=col, lw=0.9)
    ax.set(yscale="log", xlabel="real weight w", ylabel="n E e^2_inf / sigma^2 (log)")
    ax.set_yticks([0.4, 0.6, 1, 2, 4, 7], ["0.4", "0.6", "1", "2", "4", "7"])
    ax.minorticks_off()
    ax.set_title(f"(c) He-Xu-Cheng weighting, known variance, n = {N_C} real", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    k_fine = np.geomspace(0.2, 5, 200)
    ks = np.array(list(wstar))
    _band(ax, ks, np.array([v[0] for v in wstar.values()]), np.array([v[1] for v in wstar.values()]),
          color="C3", label="Monte Carlo argmin")  # fmt: skip
    ax.plot(k_fine, cj.theory.optimal_real_weight(k_fine), "--", color="k", label="w*(k) = (sqrt(k^2+4k) - k)/2")
    ax.plot(k_fine, k_fine / (1 + k_fine), ":", color="grey", label="naive k/(1 + k)")
    ax.set(xscale="log", xlabel="ratio k = n_real / n_synth (log)", ylabel="optimal real weight")
    ax.set_xticks(ks, [f"{k:g}" for k in ks])
    ax.minorticks_off()
    ax.set_title("(c') optimal weight vs ratio (golden ratio at k = 1)", fontsize=9)
    ax.legend(fontsize=7)

    for ax, dn, label, tag_d in ((axes[1, 1], 0.5, "OLS", "(d)"), (axes[1, 2], 2.0, "min-norm", "(d')")):
        for lam in RIDGE:
            if (dn, lam) not in curves_d:
                continue
            m, s, th = curves_d[dn, lam]
            col = _band(ax, W_D, m, s, label=f"lam = {lam:g}" + (f" ({label})" if lam == 0 else " (ridge)"))
            if lam == 0:
                ax.plot(W_D, th, "--", color=col, lw=0.9, label=f"{label} theory")
        ax.axvline(INV_PHI, color="grey", lw=0.6)
        ax.set(xlabel="real label weight w", ylabel="stationary test error ||w_hat - w*||^2")
        ax.set_title(
            f"{tag_d} label mixing, fixed design, n = {N_D}, d = {round(dn * N_D)}; ridge: MC only", fontsize=9
        )
        ax.legend(fontsize=7)

    ax = axes[1, 3]
    for j, lam in enumerate(RIDGE):
        pts = [(dn, *opt_d[dn, lam]) for dn in dn_grid if (dn, lam) in opt_d]
        x, m, s = (np.array(v) for v in zip(*pts))
        name = "lam = 0 (OLS | min-norm)" if lam == 0 else f"ridge lam = {lam:g}"
        ax.errorbar(x * (1 + 0.03 * (j - 1)), m, yerr=2 * s, fmt="o-", ms=3.5, capsize=2, lw=0.8, label=name)
    ax.axhline(INV_PHI, ls="--", color="k", lw=0.9, label="1/phi = 0.618 (theory, lam = 0)")
    ax.axhline(0.5, ls=":", color="grey", lw=0.9, label="1/2 (Garg et al.: ridge optimum >= 1/2)")
    ax.axvline(1, color="grey", lw=0.5)
    ax.set(xscale="log", xlabel="aspect ratio d/n (log)", ylabel="optimal real label weight", ylim=(0.4, 1.02))
    ax.set_xticks(dn_grid, [f"{x:g}" for x in dn_grid])
    ax.minorticks_off()
    ax.set_title("(d'') optimal real weight vs d/n (grid edge: 1.0)", fontsize=9)
    ax.legend(fontsize=7)

    fig.suptitle(
        f"Mixing ratios, seed {args.seed} (a, b: seed + index of n): (a, b) {chains} chains x {G} generations "
        f"(mean over {G // 2}-{G}); "
        f"(c) {chains} chains x {g_w} gens; (d) {chains_d} chains x {g_d} gens; MC mean +- 2 s.e., theory dashed",
        fontsize=10,
    )
    fig.tight_layout()
    for ext in ("png", "pdf"):
        atomic_write(out / f"mixing_ratio{tag}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))


if __name__ == "__main__":
    raise SystemExit(main())
