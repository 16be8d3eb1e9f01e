"""Interaction graphs: which nodes collapse, by topology and real-data fraction
(Wu, Zhou, Su, arXiv 2605.20151; the natural model of docs/THEORY.md section 7).

K = 6 known-variance Gaussian nodes (the mean is refitted, Replace at every node,
n = 20 points per node and generation); only node 0 sees real data, a share a of its
training set. For each topology (self-loops, ring, chain, star hub-to-spokes, star
spokes-to-hub, star both ways, complete) and each a, a node is measured as collapsing
when its mean squared error still grows over the second half of the run (per-chain
slope, > 4 standard errors above 0; with 400 generations the transients of bounded
nodes are over, their relaxation times being at most about 60 generations here), and
compared with the prediction of
``InteractionGraph.collapse_condition`` (a node collapses iff it can reach a closed
class without real data). Second panel: per-node E||mu - mu_0||^2 over generations for
ring, chain and star (a = 0.2), Monte Carlo bands (+- 2 s.e.) with the exact recursion
C_g = W C W^T + D dashed.

    python experiments/graph_collapse.py            # full: 10,000 chains x 400 generations per cell
    python experiments/graph_collapse.py --smoke    # seconds: the whole pipeline, small
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from _common import full_run_checks, study_args

import collapse_jax as cj
from collapse_jax.results import atomic_write

K = 6
N = 20
FRACTIONS = (0.0, 0.1, 0.2, 0.5)
TOPOLOGIES = {
    "self-loops": lambda a: cj.InteractionGraph.self_loops(K, a),
    "ring": lambda a: cj.InteractionGraph.ring(K, a, self_weight=0.5),
    "chain": lambda a: cj.InteractionGraph.chain(K, a),
    "star hub->spokes": lambda a: cj.InteractionGraph.star(K, "hub_to_spokes", a),
    "star spokes->hub": lambda a: cj.InteractionGraph.star(K, "spokes_to_hub", a),
    "star both": lambda a: cj.InteractionGraph.star(K, "both", a),
    "complete": lambda a: cj.InteractionGraph.complete(K, a),
}
TRAJECTORIES = ("ring", "chain", "star both")


def real_at_node0(a: float) -> np.ndarray:
    v = np.zeros(K)
    v[0] = a
    return v


def main(argv=None) -> int:
    args, chains, G, out, tag = study_args(__doc__, argv, chains=(200, 10000), generations=(30, 400))
    fam = cj.Gaussian(learn_cov=False, sampler="exact")

    rows, grid, curves, worst_z = [], {}, {}, 0.0
    for name, make in TOPOLOGIES.items():
        for a in FRACTIONS:
            graph = make(real_at_node0(a))
            report = graph.collapse_condition(n=N)
            res = cj.simulate_graph(fam, graph, n=N, generations=G, chains=chains, seed=args.seed, progress=False,
                                   keep="chains")  # fmt: skip
            x = np.asarray(res.metrics["mean_sq_error"], np.float64)  # (chains, G + 1, node)
            half = G // 2
            slope = (x[:, G] - x[:, half]) / (G - half)
            se = slope.std(axis=0, ddof=1) / math.sqrt(chains)
            measured = (slope.mean(axis=0) > 4 * se).astype(int)
            predicted = np.isin(np.arange(K), report.collapsing).astype(int)
            w_eff, _ = graph.effective(N)
            exact = cj.theory.graph.mean_sq_error(w_eff, N, G)
            exact_slope = (exact[G] - exact[half]) / (G - half)  # E[slope] from the recursion, transient included
            z_slope = np.abs(slope.mean(axis=0) - exact_slope) / se
            worst_z = max(worst_z, float(z_slope.max()))
            grid[(name, a)] = (int(measured.sum()), int(predicted.sum()), bool(np.all(measured == predicted)))
            for i in range(K):
                rows.append(
                    (
                        name,
                        a,
                        i,
                        int(predicted[i]),
                        int(measured[i]),
                        slope.mean(axis=0)[i],
                        se[i],
                        exact_slope[i],
                        report.growth_rate[i],
                    )
                )
            if a == 0.2 and name in TRAJECTORIES:
                curves[name] = (x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(chains), exact)

    header = (
        "topology,real_fraction_node0,node,predicted_collapse,measured_collapse,late_slope,late_slope_se,"
        "recursion_late_slope,asymptotic_rate"
    )
    lines = [header] + [f"{t},{a},{i},{p_},{m},{s:.6g},{e:.3g},{x:.6g},{r:.6g}" for t, a, i, p_, m, s, e, x, r in rows]
    csv = out / f"graph_collapse{tag}.csv"
    atomic_write(csv, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(curves), figsize=(5 + 4 * len(curves), 4.2))
    ax = axes[0]
    names = list(TOPOLOGIES)
    mat = np.array([[grid[(t, a)][0] for a in FRACTIONS] for t in names])
    ax.imshow(mat, cmap="Reds", vmin=0, vmax=K, aspect="auto")
    for r_, t in enumerate(names):
        for c_, a in enumerate(FRACTIONS):
            meas, pred, agree = grid[(t, a)]
            ax.text(c_, r_, f"{meas}/{pred}" + ("" if agree else " !"), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(FRACTIONS)), [str(a) for a in FRACTIONS])
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="real fraction at node 0 (others: none)", title=f"collapsing nodes of {K}: measured/predicted")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    gens = np.arange(G + 1)
    for ax, (name, (mean, se, theory)) in zip(axes[1:], curves.items()):
        for i in range(K):
            col = colours[i % len(colours)]
            ax.fill_between(gens, mean[:, i] - 2 * se[:, i], mean[:, i] + 2 * se[:, i], color=col, alpha=0.25, lw=0)
            ax.plot(gens, mean[:, i], color=col, lw=1, label=f"node {i}")
            ax.plot(gens, theory[:, i], "k--", lw=0.8)
        ax.set_yscale("log")
        ax.set(xlabel="generation", ylabel="E ||mu - mu_0||^2 (sigma = 1)", title=f"{name}, a = 0.2 at node 0")
    axes[1].legend(fontsize=7, title="MC mean +- 2 s.e.; dashed: recursion", title_fontsize=7)
    fig.suptitle(f"Known-variance Gaussian nodes, Replace, n = {N}, {chains} chains, seed {args.seed}", fontsize=9)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        path = out / f"graph_collapse{tag}.{ext}"
        atomic_write(path, lambda tmp, ext=ext: fig.savefig(tmp, format=ext))
    agree = sum(v[2] for v in grid.values())
    print(f"wrote {csv} and graph_collapse{tag}.png/.pdf in {out}")
    if not full_run_checks(args, chains, G):
        return 0
    print(f"cells where every node's measured behaviour matches the prediction: {agree}/{len(grid)}")
    print(f"largest |measured late slope - recursion| / s.e. over {len(rows)} nodes: {worst_z:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
