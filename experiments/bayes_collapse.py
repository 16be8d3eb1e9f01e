"""Does a Bayesian learner collapse? Plug-in versus posterior-predictive generation,
and the prior's strength against fresh real data.

(a) Known variance (sigma = 1, n = 20 points per generation, Replace): E||m_g - mu_0||^2
of the posterior mean for the three predictive modes of cj.BayesGaussian with a prior
N(mu_0, tau^2) whose weight is n0 = sigma^2 / tau^2 = 2 points, and for the flat-prior
plug-in MLE (the usual collapsing chain). Theory (cj.theory.bayes) dashed.
(b) The prior as an anchor: the stationary error against the anchor's share of the
information, n0 / (n + n0) for the prior and the real fraction lambda for FreshMix
(the plug-in MLE refitted on lambda n fresh real + (1 - lambda) n synthetic points), both
from simulation (time average over generations 100-200 per chain) beside their closed
forms rho^2 v / (1 - rho^2) and sigma^2 / (n lambda (2 - lambda)).
(c) Learned covariance (Normal-Inverse-Gamma prior, kappa0 = 1, nu0 = 3, Psi0 = 1, so
E[sigma^2] = 1 a priori): E[E[sigma^2 | D]] per generation for the three modes, beside
the MLE Gaussian chain, whose variance collapses; the exact moment recursion dashed.

    python experiments/bayes_collapse.py            # full: 20,000 chains
    python experiments/bayes_collapse.py --smoke    # seconds
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import full_run_checks, study_args

import collapse_jax as cj
from collapse_jax.results import atomic_write

N = 20
MODES = ("plugin", "posterior", "marginal")


def main(argv=None) -> int:
    args, chains, G, out, tag = study_args(__doc__, argv, chains=(500, 20000), generations=(40, 200))
    kw = dict(n=N, chains=chains, seed=args.seed, progress=False, keep="chains")  # every chain's array
    tau2 = 0.5  # n0 = 2
    gens = np.arange(G + 1)
    rows = []

    # (a) known variance, three modes and the flat-prior MLE
    panel_a = {}
    for mode in MODES:
        fam = cj.BayesGaussian(1, 1.0, prior_var=tau2, predictive=mode, sampler="exact")
        res = cj.simulate(fam, cj.Replace(), generations=G, **kw)
        panel_a[mode] = (
            res.mean("mean_sq_error"),
            res.se("mean_sq_error"),
            cj.theory.bayes.known_variance_mean_sq_error(gens, N, 1.0, tau2, mode),
        )
    mle = cj.simulate(cj.Gaussian(learn_cov=False, sampler="exact"), cj.Replace(), generations=G, **kw)
    panel_a["flat prior (MLE)"] = (mle.mean("mean_sq_error"), mle.se("mean_sq_error"), (gens + 1) / N)
    for name, (m, s, t) in panel_a.items():
        for g in (0, G // 4, G // 2, G):
            rows.append(("a", name, "generation", g, m[g], s[g], t[g]))

    # (b) prior weight vs fresh real data: stationary error against the anchor share
    burn = G // 2
    shares = np.array([0.05, 0.1, 0.2, 0.4, 0.6])
    panel_b = {mode: [] for mode in MODES}
    panel_b["FreshMix (MLE)"] = []
    for share in shares:
        n0 = share * N / (1 - share)
        for mode in MODES:
            fam = cj.BayesGaussian(1, 1.0, prior_var=1.0 / n0, predictive=mode, sampler="exact")
            res = cj.simulate(fam, cj.Replace(), generations=G, **kw)
            st = res.steady_state("mean_sq_error", burn)
            th = cj.theory.bayes.known_variance_steady_state(N, 1.0, 1.0 / n0, mode)
            panel_b[mode].append((st["mean"], st["se"], th))
        res = cj.simulate(cj.Gaussian(learn_cov=False, sampler="exact"), cj.FreshMix(share), generations=G, **kw)
        st = res.steady_state("mean_sq_error", burn)
        panel_b["FreshMix (MLE)"].append((st["mean"], st["se"], cj.theory.freshmix_steady_state(N, share)))
    for name, vals in panel_b.items():
        for share, (m, s, t) in zip(shares, vals):
            rows.append(("b", name, "anchor_share", share, m, s, t))

    # (c) learned variance: does the Bayesian learner's variance collapse?
    panel_c = {}
    prior = dict(prior_count=1.0, prior_df=3.0, prior_scale=1.0)
    for mode in MODES:
        sampler = "samples" if mode == "marginal" else "exact"
        res = cj.simulate(
            cj.BayesGaussian(1, predictive=mode, sampler=sampler, **prior), cj.Replace(), generations=G, **kw
        )
        th = cj.theory.bayes.replace_moments(G, N, mode, prior_count=1.0, prior_df=3.0, prior_scale_trace=1.0)
        panel_c[mode] = (res.mean("variance"), res.se("variance"), th["trace_cov"])
    mle = cj.simulate(cj.Gaussian(sampler="exact"), cj.Replace(), generations=G, **kw)
    panel_c["MLE"] = (mle.mean("variance"), mle.se("variance"), cj.theory.variance_mean(gens, N, "mle"))
    for name, (m, s, t) in panel_c.items():
        for g in (0, G // 4, G // 2, G):
            rows.append(("c", name, "generation", g, m[g], s[g], t[g]))

    header = "panel,learner,x_name,x,mc_mean,mc_se,theory"
    lines = [header] + [f"{p},{who},{xn},{x:g},{m:.6g},{s:.3g},{t:.6g}" for p, who, xn, x, m, s, t in rows]
    csv = out / f"bayes_collapse{tag}.csv"
    atomic_write(csv, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    for ax, panel, ylabel in (
        (axes[0], panel_a, "E ||posterior mean - mu_0||^2"),
        (axes[2], panel_c, "E[ E[sigma^2 | D] ]  (MLE: E[sigma_hat^2])"),
    ):
        for name, (m, s, t) in panel.items():
            line = ax.plot(gens, m, lw=1, label=name)[0]
            ax.fill_between(gens, m - 2 * s, m + 2 * s, color=line.get_color(), alpha=0.25, lw=0)
            ax.plot(gens, t, "--", color="k", lw=0.7)
        ax.set_yscale("log")
        ax.set(xlabel="generation", ylabel=ylabel)
        ax.legend(fontsize=7)
    axes[0].set_title(f"(a) known variance, prior weight n0 = 2, n = {N}", fontsize=9)
    axes[2].set_title("(c) learned variance, NIG prior kappa0 = 1, nu0 = 3, Psi0 = 1", fontsize=9)
    ax = axes[1]
    for name, vals in panel_b.items():
        m = np.array([v[0] for v in vals])
        s = np.array([v[1] for v in vals])
        t = np.array([v[2] for v in vals])
        line = ax.errorbar(shares, m, yerr=2 * s, fmt="o", ms=3, label=name)
        ax.plot(shares, t, "--", color=line[0].get_color(), lw=0.8)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="anchor share: n0/(n+n0) (prior) or real fraction (FreshMix)",
        ylabel="stationary E ||mean - mu_0||^2",
        title="(b) a prior centred on the truth vs fresh real data",
    )
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    fig.suptitle(
        f"Bayesian learners, Replace, {chains} chains, seed {args.seed}; MC mean +- 2 s.e., theory dashed", fontsize=9
    )
    fig.tight_layout()
    for ext in ("png", "pdf"):
        atomic_write(out / f"bayes_collapse{tag}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))
    print(f"wrote {csv} and bayes_collapse{tag}.png/.pdf in {out}")
    if not full_run_checks(args, chains, G):
        return 0
    for name, (m, s, t) in panel_c.items():
        print(f"(c) {name:10s} E[variance] at generation {G}: {m[G]:.4g} +- {s[G]:.2g} (theory {t[G]:.4g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
