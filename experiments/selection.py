"""Selected synthetic data: curation by a reward, verification, accumulation with fresh
real data, a fixed teacher's labels and partial editing, each beside its exact theory.

Ferbach, Bertrand, Bose, Gidel, "Self-Consuming Generative Models with Curated Data
Provably Optimize Human Preferences" (NeurIPS 2024): synthetic points picked from K
candidates by a Bradley-Terry (Luce) reward model drive the chain to the reward's
maximiser; fresh real data keep it from collapsing there. Feng, Dohmatob, Yang, Charton,
Kempe, "Beyond Model Collapse: Scaling Up with Synthesized Data Requires Verification"
(ICLR 2025): a verifier that keeps good synthetic points. Kanabar and Gastpar
(accumulation with a fresh real share): the error falls like g^(-2a) below a = 1/2 and
like 1/g above it. Dohmatob, Feng, Subramonian, Kempe, "Strong Model Collapse" (ICLR
2025): a fixed share p of labels from a wrong teacher leaves an error p^2 Delta^2 that no
amount of data removes. Zhu et al., "How to Synthesize Text Data without Model Collapse?"
(ToEdit, ICML 2025): relabelling only a share of the data each generation.

Panels (lines: theory; markers: simulation, mean +- 2 s.e.):
  (a1) reward curation on a binary Categorical p0 = (0.7, 0.3), reward r = (0, 1) (the
       minority category is the better one), Luce rule, beta = 1, K = 2 and 4
       candidates, Replace: P(every point on the low-reward category at generation G),
       i.e. the chain fixed on the category the reward disfavours, vs n; theory
       ``cj.theory.selection.curation_chain`` (its g -> infinity limit,
       ``fixation_probabilities``, dotted);
  (a2) the same chains' mean share of the reward's argmax at generation G, Replace
       against FreshMix(0.2) (fresh real data: no absorbing state, so no fixation to
       count); theory ``curation_chain`` (with ``real_fraction``);
  (b)  a verifier (good: inside the truth's central 90 %; false_reject = 0) on a
       known-variance 1-D Gaussian under Replace, n E[(mu_G - mu*)^2] at generation G
       against its false-accept rate, beside FreshMix at real fractions lambda without
       a verifier (exact ``cj.theory.freshmix_moments``). The verified chain has no
       closed form: its theory is the exact Markov chain on mu computed numerically
       (the law of the mean of n kept points by FFT on a lattice, Richardson-
       extrapolated in the lattice step);
  (c)  AccumulateMix(a), known variance, n = 10: E[(mu_g - mu*)^2] vs g, the phase
       transition at a = 1/2; theory ``cj.theory.accumulate_mix_mean_sq_error``;
  (d)  strong model collapse: 1-D OLS on a share p of labels from a teacher w_T =
       w* + Delta (MixTeacher, fresh design): E[(w - w*)^2] vs n; theory
       ``strong_collapse_error``, plateau p^2 Delta^2 dashed (generations are i.i.d.
       replicates: each chain's error is averaged over generations 1..G);
  (e)  ToEdit: OLS on a fixed Gaussian design (n = 20, d = 4), a share f of labels
       relabelled per generation (Edit), E||w_g - w*||^2 vs g; theory
       ``edit_ols_error_gaussian`` (exact given the design, averaged over designs),
       f = 1 (Replace) in closed form.

    python experiments/selection.py            # full study (a few minutes)
    python experiments/selection.py --smoke    # a quick check of the whole pipeline
"""

from __future__ import annotations

import csv
import math
from statistics import NormalDist

import numpy as np
from _common import full_run_checks, mean_se, study_args
from scipy import special

import collapse_jax as cj
from collapse_jax.results import atomic_write
from collapse_jax.theory import selection as sel

P0 = (0.7, 0.3)  # (a): the reward favours the minority category
REWARD = (0.0, 1.0)
CANDIDATES = (2, 4)
FRESH = 0.2  # (a2): FreshMix real fraction (n a multiple of 5: lambda n is an integer)
N_CUR = (5, 10, 15, 20, 25, 30)
N_VER = 20  # (b)
SUPPORT = 0.9
FALSE_ACCEPTS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
LAMBDAS = (0.1, 0.2, 0.5)  # n = 20: 2, 4, 10 fresh points
LATTICE = 0.04  # (b): the theory's lattice step (and half of it, for the extrapolation)
N_ACC = 10  # (c)
ACC_FRACTIONS = (0.0, 0.1, 0.3, 0.5, 0.7)
DELTA = 1.0  # (d): teacher w_T = w* + Delta
W_STAR = 1.0
TEACHER_FRACTIONS = (0.0, 0.1, 0.3)
N_TEACHER = (10, 20, 40, 80, 160, 320, 640, 1280, 2560)  # p n is an integer for every p
N_EDIT, D_EDIT = 20, 4  # (e)
EDIT_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
DESIGNS = 2000  # (e): designs averaged by the theory


def main(argv=None) -> int:
    args, chains, G, out, tag = study_args(__doc__, argv, chains=(200, 10000), generations=(10, 40))
    smoke = args.smoke
    kw = dict(seed=args.seed, progress=not smoke, keep="chains")
    n_cur = (5, 10) if smoke else N_CUR
    n_teacher = (10, 80) if smoke else N_TEACHER
    chains_a, chains_d = 2 * chains, max(chains // 5, 2)
    g_acc, g_teacher = 25 * G, max(G // 2, 2)
    rows: list[tuple] = []  # panel, series, x_name, x, mc_value, mc_se, theory, theory_se

    # (a1), (a2) reward curation: Replace and FreshMix(0.2) in one program (real fraction 0 is Replace)
    cat = cj.Categorical(probs=list(P0))
    cur = {}
    for k in CANDIDATES:
        syn = cj.Synthesis(curate="luce", candidates=k, reward=list(REWARD), reward_scale=1.0)
        for n in n_cur:
            res = cj.simulate(cat, cj.FreshMix(FRESH), n=n, generations=G, chains=chains_a, synthesis=syn,
                              metrics=["frac_at_argmax"], sweep={"real_fraction": [0.0, FRESH]}, **kw)  # fmt: skip
            rep = res.sel(0).metrics["frac_at_argmax"][:, G].astype(np.float64)
            fm = res.sel(1).metrics["frac_at_argmax"][:, G].astype(np.float64)
            th_rep = sel.curation_chain(P0, REWARD, n, G, k, "luce", 1.0)
            th_fm = sel.curation_chain(P0, REWARD, n, G, k, "luce", 1.0, real_fraction=FRESH)
            p_fix = float(th_rep["fixation"][G, 0])
            fixed = float(np.mean(rep == 0.0))
            rows.append(("a1", f"Replace, K = {k}", "n", n, fixed, _binomial_se(p_fix, chains_a), p_fix, 0.0))
            for name, share, th in ((f"Replace, K = {k}", rep, th_rep), (f"FreshMix({FRESH:g}), K = {k}", fm, th_fm)):
                m, s = mean_se(share)
                rows.append(("a2", name, "n", n, float(m), float(s), float(th["frac_at_argmax"][G]), 0.0))
        n_line = np.arange(2, max(n_cur) + 1)
        cur[k] = {
            "n_line": n_line,
            "fix_line": [sel.curation_chain(P0, REWARD, int(n), G, k)["fixation"][G, 0] for n in n_line],
            "fix_limit": [sel.fixation_probabilities(P0, REWARD, int(n), k)[0] for n in n_line],
            "share_line": [sel.curation_chain(P0, REWARD, int(n), G, k)["frac_at_argmax"][G] for n in n_line],
            "n_fresh": np.arange(5, max(n_cur) + 1, 5),
        }
        cur[k]["fresh_line"] = [
            sel.curation_chain(P0, REWARD, int(n), G, k, real_fraction=FRESH)["frac_at_argmax"][G]
            for n in cur[k]["n_fresh"]
        ]

    # (b) a verifier under Replace vs fresh real data without one (known variance)
    known = cj.Gaussian(dim=1, learn_cov=False)
    syn = cj.Synthesis(support=SUPPORT, false_accept=0.5, false_reject=0.0, oversample=4)
    res = cj.simulate(known, cj.Replace(), n=N_VER, generations=G, chains=chains, synthesis=syn,
                      metrics=["mean_sq_error", "accept_rate", "shortfall"],
                      sweep={"false_accept": list(FALSE_ACCEPTS)}, **kw)  # fmt: skip
    lattice = 4 * LATTICE if smoke else LATTICE
    verifier = {"accept_rate": [], "shortfall": 0.0}
    for i, fa in enumerate(FALSE_ACCEPTS):
        r = res.sel(i)
        m, s = mean_se(N_VER * r.metrics["mean_sq_error"][:, G])
        th = N_VER * _verified_error(N_VER, SUPPORT, fa, G, lattice)
        rows.append(("b", "Replace + verifier", "false_accept", fa, float(m), float(s), th, 0.0))
        verifier["accept_rate"].append(float(r.mean("accept_rate")[G]))
        verifier["shortfall"] = max(verifier["shortfall"], float(np.max(r.mean("shortfall"))))
    res = cj.simulate(known, cj.FreshMix(0.5), n=N_VER, generations=G, chains=chains, metrics=["mean_sq_error"],
                      sweep={"real_fraction": list(LAMBDAS)}, **kw)  # fmt: skip
    for i, lam in enumerate(LAMBDAS):
        m, s = mean_se(N_VER * res.sel(i).metrics["mean_sq_error"][:, G])
        th = N_VER * float(cj.theory.freshmix_moments(G, N_VER, lam, "mle", learn_cov=False)[0])
        rows.append(("b", f"FreshMix({lam:g}), no verifier", "real_fraction", lam, float(m), float(s), th, 0.0))

    # (c) AccumulateMix: the phase transition at a = 1/2
    res = cj.simulate(known, cj.AccumulateMix(0.5), n=N_ACC, generations=g_acc, chains=chains,
                      metrics=["mean_sq_error"], sweep={"real_fraction": list(ACC_FRACTIONS)}, **kw)  # fmt: skip
    g_show = np.unique(np.round(np.logspace(0, math.log10(g_acc), 13)).astype(int))
    acc = {}
    for i, a in enumerate(ACC_FRACTIONS):
        m, s = mean_se(res.sel(i).metrics["mean_sq_error"])
        th = np.asarray(cj.theory.accumulate_mix_mean_sq_error(np.arange(g_acc + 1), N_ACC, a))
        lo = max(1, g_acc // 10)
        slope_mc = _slope(np.arange(lo, g_acc + 1), m[lo:])
        slope_th = _slope(np.arange(lo, g_acc + 1), th[lo:])
        acc[a] = (m, s, th, slope_mc, slope_th)
        for g in g_show:
            rows.append(("c", f"a = {a:g}", "generation", g, m[g], s[g], th[g], 0.0))

    # (d) strong model collapse: a fixed share of a wrong teacher's labels
    fam = cj.Ridge(dim=1, lam=0.0, noise=1.0, w_star=[W_STAR], design="fresh")
    teacher = cj.Ridge(dim=1, lam=0.0, noise=1.0, w_star=[W_STAR + DELTA], design="fresh")
    for n in n_teacher:
        res = cj.simulate(fam, cj.MixTeacher(teacher_fraction=0.1, teacher=teacher), n=n, generations=g_teacher,
                          chains=chains_d, metrics=["param_sq_error"],
                          sweep={"teacher_fraction": list(TEACHER_FRACTIONS)}, **kw)  # fmt: skip
        for i, p in enumerate(TEACHER_FRACTIONS):
            per_chain = res.sel(i).metrics["param_sq_error"][:, 1:].astype(np.float64).mean(axis=1)
            m, s = mean_se(per_chain)
            th = float(sel.strong_collapse_error(n, p, DELTA, 1.0))
            rows.append(("d", f"p = {p:g}", "n", n, float(m), float(s), th, 0.0))

    # (e) ToEdit: relabel a share f of a fixed design's labels per generation
    res = cj.simulate(cj.Ridge(dim=D_EDIT, lam=0.0, noise=1.0, design="fixed"), cj.Edit(0.5), n=N_EDIT,
                      generations=G, chains=chains, metrics=["param_sq_error"],
                      sweep={"fraction": list(EDIT_FRACTIONS)}, **kw)  # fmt: skip
    gens = np.arange(G + 1)
    designs = 50 if smoke else DESIGNS
    edit = {}
    for i, f in enumerate(EDIT_FRACTIONS):
        m, s = mean_se(res.sel(i).metrics["param_sq_error"])
        if f == 1.0:  # Replace on a Gaussian design: sigma^2 d (g + 1) / (n - d - 1)
            th, th_se = D_EDIT * (gens + 1.0) / (N_EDIT - D_EDIT - 1), np.zeros(G + 1)
        else:
            th, th_se = sel.edit_ols_error_gaussian(N_EDIT, D_EDIT, f, G, 1.0, designs=designs, seed=args.seed)
        edit[f] = (m, s, th, th_se)
        for g in range(0, G + 1, max(1, G // 10)):
            rows.append(("e", f"f = {f:g}", "generation", g, m[g], s[g], th[g], th_se[g]))

    csv_path = out / f"selection{tag}.csv"
    atomic_write(csv_path, lambda tmp: _write_csv(tmp, rows))
    _figure(out, tag, args, chains, G, g_acc, g_teacher, chains_a, chains_d, rows, cur, verifier, acc, edit)
    print(f"wrote {csv_path} and selection{tag}.png/.pdf in {out}")
    if not full_run_checks(args, chains, G):
        return 0
    for panel in ("a1", "a2", "b", "c", "d", "e"):
        pr = [r for r in rows if r[0] == panel]
        zs = np.array([_z(r) for r in pr])
        j = int(np.nanargmax(np.abs(zs)))
        print(f"({panel}) largest |z| = {abs(zs[j]):.2f} of {len(pr)} points ({pr[j][1]}, {pr[j][2]} = {pr[j][3]:g}: "
              f"{pr[j][4]:.5g} +- {pr[j][5]:.2g}, theory {pr[j][6]:.5g})")  # fmt: skip
    print(f"(b) verifier acceptance rate at generation {G}: "
          + ", ".join(f"f_a = {fa:g}: {a:.3f}" for fa, a in zip(FALSE_ACCEPTS, verifier["accept_rate"]))
          + f"; largest shortfall {verifier['shortfall']:.2g}")  # fmt: skip
    for a, (_m, _s, _th, smc, sth) in acc.items():
        print(f"(c) a = {a:g}: log-log slope over g in [{g_acc // 10}, {g_acc}]: {smc:.3f} (theory curve {sth:.3f})")
    return 0


def _binomial_se(p: float, chains: int) -> float:
    """The standard error of a proportion over ``chains`` chains at the theory's p."""
    return math.sqrt(max(p * (1 - p), 0.0) / chains)


def _z(row) -> float:
    m, s, t, ts = row[4:8]
    sd = math.hypot(s, ts)
    return (m - t) / sd if sd > 0 else math.nan


def _slope(g, y) -> float:
    return float(np.polyfit(np.log(g), np.log(y), 1)[0])


def _verified_chain(n: int, support: float, false_accept: float, generations: int, step: float) -> float:
    """E[(mu_G - mu*)^2] of the verified known-variance chain on a lattice of step ``step``.

    The model is N(mu, 1), the truth N(0, 1); a point x is good when |x| <= z, z =
    Phi^-1((1 + support)/2), and is kept with probability 1 (good) or ``false_accept``
    (bad). mu_{g+1} is the mean of n kept points, so mu is a Markov chain whose kernel
    is the law of that mean: each kept point's law is put on the lattice mu + k step
    (cell masses, exact), its n-fold convolution taken by FFT, and the mean's lattice
    of step step/n split linearly onto the mu lattice (mean-preserving). mu_0 ~ N(0,
    1/n) (the fit to the real sample). The lattice adds O(step^2) to the answer."""
    z = NormalDist().inv_cdf(0.5 + 0.5 * support)
    fa = false_accept
    reach = 8.0 * math.sqrt((generations + 1) / n) if fa == 1.0 else 5.0  # Replace spreads like sqrt(g/n)
    half = int(math.ceil(reach / step))
    mu = np.arange(-half, half + 1) * step
    size = mu.size
    width = int(math.ceil(7.0 / step))  # each point within 7 sds of mu
    span = 2 * n * width + 1
    length = 1 << int(math.ceil(math.log2(span)))
    total = np.arange(span) - n * width  # sum of the n lattice offsets
    shift, frac = np.floor_divide(total, n), np.mod(total, n) / n
    cells = (np.arange(-width, width + 2) - 0.5) * step

    def weighted_cdf(x, m):  # int_{-inf}^x phi(t - m) w(t) dt, w = 1 on |t| <= z, fa outside
        return (
            fa * special.ndtr(np.minimum(x, -z) - m)
            + special.ndtr(np.clip(x, -z, z) - m)
            - special.ndtr(-z - m)
            + fa * (special.ndtr(np.maximum(x, z) - m) - special.ndtr(z - m))
        )

    kernel = np.zeros((size, size))
    for start in range(0, size, 64):
        m = mu[start : start + 64, None]
        mass = np.diff(weighted_cdf(m + cells[None, :], m), axis=1)
        mass /= mass.sum(axis=1, keepdims=True)
        law = np.clip(np.fft.irfft(np.fft.rfft(mass, length, axis=1) ** n, length, axis=1)[:, :span], 0.0, None)
        row = np.arange(start, start + m.shape[0])[:, None]
        lo = np.clip(row + shift[None, :], 0, size - 1)
        hi = np.clip(row + shift[None, :] + 1, 0, size - 1)
        idx = np.concatenate([(row * size + lo).ravel(), (row * size + hi).ravel()])
        kernel += np.bincount(
            idx, np.concatenate([(law * (1 - frac)).ravel(), (law * frac).ravel()]), minlength=size * size
        ).reshape(size, size)
    kernel /= kernel.sum(axis=1, keepdims=True)
    edges = (np.arange(-half, half + 2) - 0.5) * step
    dist = np.diff(special.ndtr(edges * math.sqrt(n)))
    dist /= dist.sum()
    for _ in range(generations):
        dist = dist @ kernel
    return float(dist @ mu**2)


def _verified_error(n: int, support: float, false_accept: float, generations: int, step: float) -> float:
    """:func:`_verified_chain` at steps 2h and h, Richardson-extrapolated (the lattice's error
    is O(h^2)): at h = 0.04 within 0.05 % of the extrapolation from h = 0.02."""
    coarse = _verified_chain(n, support, false_accept, generations, 2 * step)
    fine = _verified_chain(n, support, false_accept, generations, step)
    return (4 * fine - coarse) / 3


def _write_csv(path, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["panel", "series", "x_name", "x", "mc_value", "mc_se", "theory", "theory_se", "z"])
        for r in rows:
            p, who, xn, x, m, s, t, ts = r
            w.writerow([p, who, xn, f"{x:g}", f"{m:.6g}", f"{s:.4g}", f"{t:.6g}", f"{ts:.4g}", f"{_z(r):.3f}"])


def _series(rows, panel: str, name: str):
    pr = [r for r in rows if r[0] == panel and r[1] == name]
    return tuple(np.array([r[i] for r in pr], np.float64) for i in (3, 4, 5, 6))


def _figure(out, tag, args, chains, G, g_acc, g_teacher, chains_a, chains_d, rows, cur, verifier, acc, edit) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))

    ax = axes[0, 0]
    for i, k in enumerate(CANDIDATES):
        x, m, s, _t = _series(rows, "a1", f"Replace, K = {k}")
        c = cur[k]
        ax.plot(c["n_line"], c["fix_line"], "-", color=f"C{i}", lw=1)
        ax.plot(c["n_line"], c["fix_limit"], ":", color="k", lw=0.8)
        seen = m > 0
        ax.errorbar(x[seen], m[seen], 2 * s[seen], fmt="o", ms=4, color=f"C{i}", capsize=2, label=f"K = {k}")
        if np.any(~seen):  # no chain fixed: at most 1/chains
            ax.plot(x[~seen], np.full((~seen).sum(), 1.0 / chains_a), "v", mfc="none", color=f"C{i}")
    ax.plot([], [], ":", color="k", lw=0.8, label="g -> infinity (fixation_probabilities)")
    ax.set(yscale="log", xlabel="n (points per generation)", ylabel=f"P(all n on the low-reward category), g = {G}")
    ax.set_title(
        f"(a1) reward curation, p0 = {P0}, r = {REWARD}, Luce beta = 1, Replace:\n"
        f"chains fixed on the disfavoured (majority) category ({chains_a} chains)",
        fontsize=9,
    )
    ax.legend(fontsize=7)

    ax = axes[0, 1]
    for i, k in enumerate(CANDIDATES):
        c = cur[k]
        for name, xl, yl, mk, ls in (
            (f"Replace, K = {k}", c["n_line"], c["share_line"], "o", "-"),
            (f"FreshMix({FRESH:g}), K = {k}", c["n_fresh"], c["fresh_line"], "s", "--"),
        ):
            x, m, s, _t = _series(rows, "a2", name)
            ax.plot(xl, yl, ls, color=f"C{i}", lw=1)
            ax.errorbar(x, m, 2 * s, fmt=mk, ms=4, mfc="none" if mk == "s" else None, color=f"C{i}", capsize=2,
                        label=name)  # fmt: skip
    ax.axhline(P0[1], ls=":", color="k", lw=0.8, label="p0 of the argmax (no curation)")
    ax.set(xlabel="n (points per generation)", ylabel=f"E[share of the reward's argmax category], g = {G}")
    ax.set_title(
        "(a2) the same curation: Replace collapses onto the argmax,\nfresh real data (FreshMix) keep diversity",
        fontsize=9,
    )
    ax.legend(fontsize=7)

    ax = axes[0, 2]
    x, m, s, t = _series(rows, "b", "Replace + verifier")
    ax.plot(x, t, "-", color="C0", lw=1)
    ax.errorbar(x, m, 2 * s, fmt="o", ms=4, color="C0", capsize=2, label="Replace + verifier (theory: numerical chain)")
    for i, lam in enumerate(LAMBDAS):
        _x, mm, ss, tt = _series(rows, "b", f"FreshMix({lam:g}), no verifier")
        ax.axhline(tt[0], ls="--", color=f"C{i + 1}", lw=1)
        ax.axhspan(mm[0] - 2 * ss[0], mm[0] + 2 * ss[0], color=f"C{i + 1}", alpha=0.25, lw=0,
                   label=f"FreshMix({lam:g}), no verifier")  # fmt: skip
    ax.set(yscale="log", xlabel="verifier's false-accept rate (false_reject = 0)",
           ylabel=f"n E[(mu_g - mu*)^2], g = {G}")  # fmt: skip
    ax.set_title(
        f"(b) verifier (good: truth's central {SUPPORT:.0%}) vs fresh real data, n = {N_VER},\n"
        "known variance; FreshMix: exact theory (dashed), MC +- 2 s.e. (band)",
        fontsize=9,
    )
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    g_all = np.arange(1, g_acc + 1)
    for i, (a, (_m, _s, th, smc, _sth)) in enumerate(acc.items()):
        x, m, s, _t = _series(rows, "c", f"a = {a:g}")
        keep = x >= 1
        law = "0" if a == 0 else (f"-{2 * a:g}" if a < 0.5 else ("-1 (x log g)" if a == 0.5 else "-1"))
        ax.plot(g_all, th[1:], "-", color=f"C{i}", lw=1)
        ax.errorbar(x[keep], m[keep], 2 * s[keep], fmt="o", ms=3.5, color=f"C{i}", capsize=2,
                    label=f"a = {a:g}: slope {smc:.2f} (law {law})")  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="generation g", ylabel="E[(mu_g - mu*)^2]")
    ax.set_title(f"(c) AccumulateMix(a), known variance, n = {N_ACC}, {chains} chains x {g_acc} generations:\n"
                 f"g^(-2a) below a = 1/2, 1/g above (slope fitted over the last decade)", fontsize=9)  # fmt: skip
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    n_line = np.arange(10, max(N_TEACHER) + 1, 10)  # p n an integer: no rounding steps in the theory
    for i, p in enumerate(TEACHER_FRACTIONS):
        x, m, s, _t = _series(rows, "d", f"p = {p:g}")
        ax.plot(n_line, sel.strong_collapse_error(n_line, p, DELTA, 1.0), "-", color=f"C{i}", lw=1)
        ax.errorbar(x, m, 2 * s, fmt="o", ms=4, color=f"C{i}", capsize=2, label=f"teacher share p = {p:g}")
        if p > 0:
            ax.axhline(sel.strong_collapse_plateau(p, DELTA), ls="--", color=f"C{i}", lw=0.8)
    ax.plot([], [], "--", color="k", lw=0.8, label="plateau p^2 Delta^2")
    ax.set(xscale="log", yscale="log", xlabel="n (points per fit)", ylabel="E[(w - w*)^2]")
    ax.set_title(
        f"(d) strong model collapse: 1-D OLS, teacher w* + {DELTA:g}, noise 1,\n"
        f"{chains_d} chains x {g_teacher} i.i.d. generations per point",
        fontsize=9,
    )
    ax.legend(fontsize=7)

    ax = axes[1, 2]
    gens = np.arange(G + 1)
    for i, (f, (_m, _s, th, th_se)) in enumerate(edit.items()):
        x, m, s, _t = _series(rows, "e", f"f = {f:g}")
        ax.plot(gens, th, "-", color=f"C{i}", lw=1)
        ax.fill_between(gens, th - 2 * th_se, th + 2 * th_se, color=f"C{i}", alpha=0.2, lw=0)
        name = f"f = {f:g}" + (" (Replace)" if f == 1.0 else "")
        ax.errorbar(x, m, 2 * s, fmt="o", ms=4, color=f"C{i}", capsize=2, label=name)
    ax.set(xlabel="generation g", ylabel="E||w_g - w*||^2")
    ax.set_title(
        f"(e) ToEdit: OLS, fixed Gaussian design n = {N_EDIT}, d = {D_EDIT}, share f relabelled\n"
        f"per generation; theory averaged over designs (band: +- 2 s.e.)",
        fontsize=9,
    )
    ax.legend(fontsize=7)

    fig.suptitle(
        f"Selected synthetic data: lines = theory, markers = simulation (mean +- 2 s.e.); {chains} chains x {G} "
        f"generations unless stated, seed {args.seed}",
        fontsize=10,
    )
    fig.tight_layout()
    for ext in ("png", "pdf"):
        atomic_write(out / f"selection{tag}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
