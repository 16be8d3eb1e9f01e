"""The Gaussian-mixture collapse study of Shumailov et al. (Nature 2024), at scale.

A 2-component, 2-d Gaussian mixture is refitted by EM on N = 1000 of its own samples
per generation (Replace) for 2,000 generations, over many independent chains, in both
EM start modes (``refit``: k-means++ and Lloyd steps every generation, as scikit-learn;
``warm``: from the previous fit), with an EM cap and the non-converged fraction
reported. Two truths: the released notebook's single standard-normal blob fitted with
two components, and two separated components with weights 0.9 / 0.1 (how fast the
minority dies). Output: per-component sd quantiles over chains at generations
0, 50, 100, 150, 200, 350, 2000 (the released single chain ended near sd 1e-2), the
minority weight's trajectory, a figure and a CSV in ``paper_figs/``.

    python experiments/gmm_collapse.py            # full study (1,000 chains x 2,000 generations x 4 runs)
    python experiments/gmm_collapse.py --smoke    # a minute-scale check of the whole pipeline
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import full_run_checks, study_args

import collapse_jax as cj
from collapse_jax.results import atomic_write

CHECKPOINTS = (0, 50, 100, 150, 200, 350, 2000)
TRUTHS = {
    "blob": None,  # one standard-normal blob, fitted with two components
    "minority": ([0.9, 0.1], [[-2.0, 0.0], [2.0, 0.0]], [np.eye(2), np.eye(2)]),
}


def run(truth_name: str, init: str, chains: int, generations: int, n: int, cap: int, seed: int):
    fam = cj.GMM(2, 2, "full", truth=TRUTHS[truth_name], init=init, em_max_iters=cap, tol=1e-3)
    return cj.simulate(
        fam, cj.Replace(), n=n, generations=generations, chains=chains, seed=seed, keep="summary", keep_chains=chains
    )


def main(argv=None) -> int:
    args, chains, generations, out, tag = study_args(__doc__, argv, chains=(32, 1000), generations=(50, 2000))
    n, cap = (100, 30) if args.smoke else (1000, 100)
    checkpoints = [g for g in CHECKPOINTS if g <= generations]

    rows = []
    curves = {}
    for truth_name in TRUTHS:
        for init in ("refit", "warm"):
            res = run(truth_name, init, chains, generations, n, cap, args.seed)
            sd = res.metrics["component_sd"]  # (chains, G + 1, component), sorted by weight
            conv = res.diagnostics["converged"]
            for g in checkpoints:
                for k in range(sd.shape[-1]):
                    q = np.nanquantile(sd[:, g, k], [0.1, 0.5, 0.9])
                    rows.append((truth_name, init, g, k, *q, float(np.mean(~conv[:, g].astype(bool)))))
            curves[(truth_name, init)] = (
                np.nanmedian(sd, axis=0),
                np.nanmean(res.metrics["minority_weight"], axis=0) if truth_name == "minority" else None,
            )

    header = "truth,init,generation,component,sd_q10,sd_median,sd_q90,nonconverged_fraction"
    lines = [header] + [f"{t},{i},{g},{k},{a:.6g},{b:.6g},{c:.6g},{f:.4g}" for t, i, g, k, a, b, c, f in rows]
    csv = out / f"gmm_collapse{tag}.csv"
    atomic_write(csv, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    gens = np.arange(generations + 1)
    for (truth_name, init), (sd_med, minority) in curves.items():
        style = "-" if init == "refit" else "--"
        for k in range(sd_med.shape[-1]):
            axes[0].semilogy(gens, sd_med[:, k], style, label=f"{truth_name}, {init}, component {k}")
        if truth_name == "minority":
            axes[1].plot(gens, minority, style, label=f"{init}")
    axes[0].set(xlabel="generation", ylabel="median component sd over chains", title=f"N = {n}, {chains} chains")
    axes[1].set(xlabel="generation", ylabel="mean weight of the minority component", title="truth 0.9 / 0.1")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        atomic_write(out / f"gmm_collapse{tag}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))
    print(f"wrote {csv} and gmm_collapse{tag}.png/.pdf in {out}")
    if not full_run_checks(args, chains, generations):
        return 0
    for t, i, g, k, _a, b, _c, f in rows:
        if k == 0 and g in (0, checkpoints[-1]):
            print(f"{t:9s} {i:6s} generation {g:5d}: median sd, heaviest component {b:.4g}; non-converged {f:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
