"""Learned generators on real data: a VAE on the 8 x 8 digits, a neural grid density, a
normalising flow, a GMM and a KDE on a real tabular set, and the random-feature width
sweep beside its theory, each with hundreds of chains and their Monte Carlo error bars.

Shumailov, Shumaylov, Zhao, Papernot, Anderson, Gal, "AI models collapse when trained on
recursively generated data" (Nature 2024): a VAE refitted on its own samples loses the
data's spread; fresh real data hold it (here FreshMix(0.5), half of every batch fresh
rows). Kazdan et al. ("Collapse or Thrive?", 2024): KDEs and GMMs on real data sets.
Dohmatob, Feng, Subramonian, Kempe, "Strong Model Collapse" (ICLR 2025): the student's
width against the interpolation threshold.

Panels (markers: simulation, mean +- 2 s.e. over chains; lines: exact theory where
one exists):
  (a) VAE on digits (61 standardised pixels; latent 4, hidden 32, 200 Adam steps per
      fit; n = 200 rows per generation): energy distance of the generated images to
      the held-out test split vs generation, Replace vs FreshMix(0.5);
  (b) the same chains' coverage of the test split (share of held-out images whose
      5-NN ball holds a generated image);
  (c) GMM (3 components) and KDE (h = 0.3) on breast_cancer's first two features, n =
      100: held-out negative log-likelihood vs generation, Replace vs FreshMix(0.5);
  (d) NeuralDensity (24 x 24 grid, MLP (32, 32)) on wine's features 0 and 6, n = 100:
      the fit's mass on the pool's lightest 5 % of cells (its tails) vs generation;
  (e) random features, d = 40, n = 30, noise 0.5, Replace: test error at generation G
      vs width, linear features (exact law ``projection_replace_error``, solid; the
      interpolation threshold width = n dotted) and ReLU features (their Gaussian
      equivalent ``gaussian_equivalent_error``, dashed, where it is defined: width <=
      min(d, n - 2));
  (f) CouplingFlow (4 affine couplings, hidden 16, 50 Adam steps) on wine's features 0
      and 6, n = 100:
      exact held-out negative log-likelihood vs generation, Replace vs FreshMix(0.5).

The default sizes are the CPU's (a few minutes on 2 cores); the captions state them.
Paper scale (thousands of VAE chains, tens of generations) wants an accelerator: pass
``--chains`` and ``--generations`` there.

    python experiments/learned_collapse.py            # CPU size
    python experiments/learned_collapse.py --smoke    # a quick check of the whole pipeline
"""

from __future__ import annotations

import csv
import math

import numpy as np
from _common import full_run_checks, mean_se, study_args

import collapse_jax as cj
from collapse_jax.results import atomic_write

FRESH = 0.5
WIDTHS = (5, 10, 15, 20, 24, 36, 40)  # linear theory exists away from n - 1 <= width <= n + 1 (n = 30)
RELU_WIDTHS = (5, 10, 20, 26, 30, 34, 40, 60, 80)
D_RF, N_RF, SIGMA_RF = 40, 30, 0.5


def _linear_law(g: int, width: int) -> float:
    return float(cj.theory.random_features.projection_replace_error(g, N_RF, D_RF, width, SIGMA_RF))


def _relu_equivalent(g: int, width: int) -> float:
    return float(cj.theory.random_features.gaussian_equivalent_error(g, N_RF, D_RF, width, "relu", SIGMA_RF))


def _regimes():
    return {"Replace": 0.0, f"FreshMix({FRESH:g})": FRESH}


def _by_regime(fam, n, G, chains, metrics, kw):
    """One program over FreshMix's real fraction (0 is Replace): {regime: {metric: (chains, G + 1)}}."""
    res = cj.simulate(fam, cj.FreshMix(FRESH), n=n, generations=G, chains=chains, metrics=metrics,
                      sweep={"real_fraction": list(_regimes().values())}, **kw)  # fmt: skip
    names = list(_regimes())
    return {name: {m: np.asarray(res.sel(i).metrics[m], np.float64) for m in metrics} for i, name in enumerate(names)}


def _generation_rows(panel: str, series: str, values: np.ndarray) -> list[tuple]:
    """CSV rows of one curve: the mean and s.e. over chains at every generation."""
    m, s = mean_se(values)
    return [(panel, series, "generation", g, m[g], s[g], math.nan) for g in range(values.shape[1])]


def main(argv=None) -> int:
    args, chains, G, out, tag = study_args(__doc__, argv, chains=(4, 128), generations=(2, 10))
    smoke = args.smoke
    kw = dict(seed=args.seed, progress=not smoke, keep="chains")
    steps = 10 if smoke else 200
    rows: list[tuple] = []  # panel, series, x_name, x, mc_value, mc_se, theory
    sizes = {}

    digits = cj.Empirical.load("digits")
    g_vae = max(G // 2, 2)
    vae = cj.VAE(digits, latent=4, hidden=32, steps=steps)
    runs = _by_regime(vae, 200 if not smoke else 60, g_vae, chains, ["energy_distance", "coverage", "diversity"], kw)
    sizes["vae"] = (chains, g_vae)
    for name, r in runs.items():
        for panel, metric in (("a", "energy_distance"), ("b", "coverage")):
            rows += _generation_rows(panel, name, r[metric])

    bc = cj.Empirical.load("breast_cancer", features=[0, 1])
    tab_chains = 8 * chains
    for label, fam in (("GMM(3)", cj.GMM(3, data=bc, em_max_iters=50)), ("KDE(0.3)", cj.KDE(0.3, data=bc))):
        r = _by_regime(fam, 100, G, tab_chains, ["test_nll"], kw)
        for name, v in r.items():
            rows += _generation_rows("c", f"{label}, {name}", v["test_nll"])
    sizes["tabular"] = (tab_chains, G)

    wine = cj.Empirical.load("wine", features=[0, 6])
    dens = cj.NeuralDensity(wine, grid=24, hidden=(32, 32), steps=steps)
    r = _by_regime(dens, 100, G, chains, ["tail_mass"], kw)
    for name, v in r.items():
        rows += _generation_rows("d", name, v["tail_mass"])
    sizes["density"] = (chains, G)

    rf_chains = 16 * chains
    g_rf = max(G // 2, 2)
    sweeps = (
        ("linear", "linear", WIDTHS, lambda w: _linear_law(g_rf, w)),
        ("ReLU", "relu", RELU_WIDTHS, lambda w: _relu_equivalent(g_rf, w) if w <= min(D_RF, N_RF - 2) else math.nan),
    )
    for series, activation, widths, theory in sweeps:
        fam = cj.RandomFeatures(D_RF, widths[0], max_width=max(widths), activation=activation, noise=SIGMA_RF)
        res = cj.simulate(fam, cj.Replace(), n=N_RF, generations=g_rf, chains=rf_chains, metrics=["test_error"],
                          sweep={"width": list(widths)}, **kw)  # fmt: skip
        for i, w in enumerate(widths):
            m, s = mean_se(np.asarray(res.sel(i).metrics["test_error"], np.float64)[:, g_rf])
            rows.append(("e", series, "width", w, float(m), float(s), theory(w)))
    sizes["random_features"] = (rf_chains, g_rf)

    # 50 steps at rate 0.02 and log-scales bounded by 1: on 100 points the family's defaults (200 steps at rate
    # 0.01, bound 2) overfit (held-out NLL 4.1 at generation 0, 64 chains, against 2.95 for a Gaussian of the
    # same rows); this early-stopped flow reaches 2.88
    flow = cj.CouplingFlow(wine, layers=4, hidden=16, steps=10 if smoke else 50, learning_rate=0.02, scale_bound=1.0)
    r = _by_regime(flow, 100, g_vae, chains, ["test_nll"], kw)
    for name, v in r.items():
        rows += _generation_rows("f", name, v["test_nll"])
    sizes["flow"] = (chains, g_vae)

    csv_path = out / f"learned_collapse{tag}.csv"
    atomic_write(csv_path, lambda tmp: _write_csv(tmp, rows))
    _figure(out, tag, rows, sizes, steps)
    print(f"wrote {csv_path} and learned_collapse{tag}.png/.pdf in {out}")
    if not full_run_checks(args, chains, G):
        return 0
    lin_rows = [r for r in rows if r[0] == "e" and r[1] == "linear"]
    z = [(r[4] - r[6]) / r[5] for r in lin_rows]
    print(f"(e) linear random features vs the projection law: largest |z| = {max(abs(v) for v in z):.2f} "
          f"over {len(z)} widths ({rf_chains} chains, generation {g_rf})")  # fmt: skip
    for r in rows:
        if r[0] == "e" and r[1] == "ReLU" and not math.isnan(r[6]):
            print(f"(e) ReLU width {r[3]}: {r[4]:.4f} +- {r[5]:.4f}, Gaussian equivalent {r[6]:.4f} "
                  f"(relative gap {r[4] / r[6] - 1:+.3f})")  # fmt: skip
    last = {r[1]: r for r in rows if r[0] == "f" and r[3] == g_vae}
    first = {r[1]: r for r in rows if r[0] == "f" and r[3] == 0}
    print(f"(f) CouplingFlow held-out NLL, generation 0 -> {g_vae}: "
          + ", ".join(f"{k} {first[k][4]:.3f} -> {v[4]:.3f} +- {v[5]:.3f}" for k, v in last.items()))  # fmt: skip
    for panel, metric in (("a", "energy distance"), ("b", "coverage")):
        last = {r[1]: r for r in rows if r[0] == panel and r[3] == g_vae}
        print(f"({panel}) VAE {metric} at generation {g_vae}: "
              + ", ".join(f"{k} {v[4]:.3f} +- {v[5]:.3f}" for k, v in last.items()))  # fmt: skip
    return 0


def _write_csv(path, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["panel", "series", "x_name", "x", "mc_value", "mc_se", "theory", "z"])
        for p, who, xn, x, m, s, t in rows:
            z = (m - t) / s if math.isfinite(t) and s > 0 else math.nan
            w.writerow([p, who, xn, f"{x:g}", f"{m:.6g}", f"{s:.4g}", f"{t:.6g}", f"{z:.3f}"])


def _series(rows, panel: str, name: str):
    pr = [r for r in rows if r[0] == panel and r[1] == name]
    return tuple(np.array([r[i] for r in pr], np.float64) for i in (3, 4, 5, 6))


def _regime_panel(ax, rows, panel: str, ylabel: str, title: str, ms: int = 4) -> None:
    """One curve per regime against the generation (mean +- 2 s.e.)."""
    for i, name in enumerate(_regimes()):
        x, m, s, _ = _series(rows, panel, name)
        ax.errorbar(x, m, 2 * s, fmt="o-", ms=ms, color=f"C{i}", capsize=2, label=name)
    ax.set(xlabel="generation", ylabel=ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)


def _figure(out, tag, rows, sizes, steps) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    c_vae, g_vae = sizes["vae"]
    for ax, panel, ylabel in ((axes[0, 0], "a", "energy distance to the test split"),
                              (axes[0, 1], "b", "coverage of the test split")):  # fmt: skip
        _regime_panel(ax, rows, panel, ylabel, f"({panel}) VAE on digits (latent 4, {steps} Adam steps, n = 200)\n"
                      f"{c_vae} chains per regime")  # fmt: skip

    ax = axes[0, 2]
    c_tab, g_tab = sizes["tabular"]
    series = sorted({r[1] for r in rows if r[0] == "c"})
    for i, name in enumerate(series):
        x, m, s, _ = _series(rows, "c", name)
        ax.errorbar(x, m, 2 * s, fmt="o-" if "Replace" in name else "s--", ms=3, color=f"C{i // 2}", capsize=2,
                    label=name)  # fmt: skip
    ax.set(xlabel="generation", ylabel="held-out NLL (nats per point)")
    ax.set_title(f"(c) GMM and KDE on breast_cancer (features 0, 1), n = 100\n{c_tab} chains per curve", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    c_d, g_d = sizes["density"]
    ax.axhline(0.05, color="k", lw=0.8, ls=":", label="the pool's tail mass (0.05)")
    _regime_panel(ax, rows, "d", "fitted mass on the pool's lightest 5 % of cells",
                  f"(d) NeuralDensity on wine (features 0, 6), 24 x 24 grid, n = 100\n{c_d} chains per "
                  "regime")  # fmt: skip

    ax = axes[1, 1]
    c_rf, g_rf = sizes["random_features"]
    x, m, s, t = _series(rows, "e", "linear")
    ax.errorbar(x, m, 2 * s, fmt="o", ms=4, color="C0", capsize=2, label="linear features (simulation)")
    for lo, hi in ((1, N_RF - 2), (N_RF + 2, D_RF)):
        ws = np.arange(lo, hi + 1)
        th = [_linear_law(g_rf, int(w)) for w in ws]
        ax.plot(ws, th, "-", color="C0", lw=1, label="exact law (linear)" if lo == 1 else None)
    x, m, s, _ = _series(rows, "e", "ReLU")
    ax.errorbar(x, m, 2 * s, fmt="s", ms=4, color="C3", capsize=2, label="ReLU features (simulation)")
    ws = np.arange(1, min(D_RF, N_RF - 2) + 1)
    ax.plot(ws, [_relu_equivalent(g_rf, int(w)) for w in ws], "--", color="C3", lw=1,
            label="Gaussian equivalent (ReLU)")  # fmt: skip
    ax.axvline(N_RF, color="k", lw=0.8, ls=":", label="interpolation threshold (width = n)")
    ax.set(xlabel="width", ylabel=f"test error at generation {g_rf}", yscale="log")
    ax.set_title(f"(e) random features, d = {D_RF}, n = {N_RF}, noise {SIGMA_RF}, Replace, ridgeless\n"
                 f"{c_rf} chains per width", fontsize=9)  # fmt: skip
    ax.legend(fontsize=7)

    c_f, g_f = sizes["flow"]
    _regime_panel(axes[1, 2], rows, "f", "held-out negative log-likelihood (nats)",
                  f"(f) CouplingFlow on wine (features 0, 6), 4 couplings, 50 steps, n = 100\n{c_f} chains per regime",
                  ms=3)  # fmt: skip

    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(out / f"learned_collapse{tag}.{ext}", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
