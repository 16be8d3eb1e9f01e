"""Interaction graphs: K = 6 known-variance Gaussian nodes (1-D, n = 100 per node and
generation, a ring with self-weight 0.5 and real data at node 0 only, 20 %), Replace,
100 generations. collapse_jax's sample and exact paths against NumPy, vectorised over
chains (float64, one generation and node at a time, every point drawn) and a
per-chain Python loop (the field's way: one chain, generation and node at a time).
Reports chain-generations per second (a chain-generation refits all K nodes). All in
one process, repeats interleaved, medians; JSON written atomically.

    python benchmarks/bench_graph.py [--quick] [--out benchmarks/results/graph.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import interleaved_times, machine, write_json_atomic

K, N, G = 6, 100, 100


def _counts():
    import collapse_jax as cj

    a = np.zeros(K)
    a[0] = 0.2
    graph = cj.InteractionGraph.ring(K, a, self_weight=0.5)
    return graph, graph.counts(N)[0]


def numpy_vectorised(chains: int, counts: np.ndarray, seed: int = 0) -> float:
    """Every chain at once, one generation and node at a time; returns the final mean error."""
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((chains, K, N)).mean(axis=2)
    for _ in range(G):
        new = np.empty_like(mu)
        for i in range(K):
            total = rng.standard_normal((chains, counts[i, 0])).sum(axis=1)
            for j in range(K):
                m = counts[i, 1 + j]
                if m:
                    total += (mu[:, j : j + 1] + rng.standard_normal((chains, m))).sum(axis=1)
            new[:, i] = total / N
        mu = new
    return float(np.mean(mu**2))


def numpy_loop(chains: int, counts: np.ndarray, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    out = 0.0
    for _ in range(chains):
        mu = [rng.standard_normal(N).mean() for _ in range(K)]
        for _g in range(G):
            new = []
            for i in range(K):
                parts = [rng.standard_normal(counts[i, 0])]
                for j in range(K):
                    if counts[i, 1 + j]:
                        parts.append(mu[j] + rng.standard_normal(counts[i, 1 + j]))
                new.append(np.concatenate(parts).mean())
            mu = new
        out += float(np.mean(np.square(mu)))
    return out / chains


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import collapse_jax as cj

    graph, counts = _counts()
    chains = 500 if args.quick else 4000
    loop_chains = 5 if args.quick else 20
    repeats = 1 if args.quick else 5

    def lib(sampler):
        fam = cj.Gaussian(learn_cov=False, sampler=sampler)

        def run():
            res = cj.simulate_graph(
                fam, graph, n=N, generations=G, chains=chains, seed=0, keep="summary", progress=False
            )
            return float(res.summary("mean_sq_error").query(f"generation == {G}")["mean"].mean())

        return run

    contenders = {
        "exact": lib("exact"),
        "samples": lib("samples"),
        "numpy_vectorised": lambda: numpy_vectorised(chains, counts),
        "numpy_loop": lambda: numpy_loop(loop_chains, counts),
    }
    work = {"exact": chains, "samples": chains, "numpy_vectorised": chains, "numpy_loop": loop_chains}
    final = {name: f() for name, f in contenders.items()}  # warm-up (compiles); final mean errors
    times = interleaved_times(contenders, repeats)
    rate = {k: work[k] * (G + 1) / float(np.median(v)) for k, v in times.items()}
    ratios = {
        "samples_vs_numpy_vectorised": rate["samples"] / rate["numpy_vectorised"],
        "samples_vs_loop": rate["samples"] / rate["numpy_loop"],
        "exact_vs_numpy_vectorised": rate["exact"] / rate["numpy_vectorised"],
        "exact_vs_loop": rate["exact"] / rate["numpy_loop"],
        "exact_vs_samples": rate["exact"] / rate["samples"],
    }
    w_eff, _ = graph.effective(N)
    result = {
        "benchmark": "graph",
        "config": {
            "nodes": K,
            "n": N,
            "generations": G,
            "graph": "ring, self_weight 0.5, real fraction 0.2 at node 0 only",
            "family": "Gaussian(learn_cov=False), d = 1",
            "chains": chains,
            "chains_loop": loop_chains,
            "repeats": repeats,
        },
        "chain_generations_per_s": rate,
        "times_s": times,
        "final_mean_sq_error": final,
        "final_mean_sq_error_theory": float(cj.theory.graph.mean_sq_error(w_eff, N, G)[G].mean()),
        "ratios": ratios,
        "machine": machine(),
    }
    out = Path(args.out or ("benchmarks/results/graph_quick.json" if args.quick else "benchmarks/results/graph.json"))
    write_json_atomic(out, result)
    print("| contender | chain-generations / s | final mean error |\n|---|---:|---:|")
    for k in contenders:
        print(f"| {k} | {rate[k]:.4g} | {final[k]:.4g} |")
    print(f"theory: {result['final_mean_sq_error_theory']:.4g}")
    for k, v in ratios.items():
        print(f"{k}: {v:.3g}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
