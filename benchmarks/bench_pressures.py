"""Pressures and defences: cost per chain-generation of each pressure against the plain
regime, and truncated Replace against the field's per-chain NumPy loop (draw, reject
outside the central mass q, refit), all measured side by side in one process.

1-D Gaussian (learned variance, MLE), n = 100, Replace unless named, 20 generations,
10,000 chains (the NumPy loop: 200 chains, scaled per chain-generation); `_2d`: the 2-D
Gaussian, whose truncation goes through candidates and selection (ratios against
`plain_2d`). 1-D truncation draws by inversion, without candidates. Times are
medians of interleaved repeats after a compiling run; JSON written atomically.

    python benchmarks/bench_pressures.py [--quick] [--out benchmarks/results/pressures.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from statistics import NormalDist

import numpy as np
from _common import interleaved_times, machine, write_json_atomic

N = 100
G = 20
Q = 0.9


def numpy_loop(chains: int, seed: int = 0) -> float:
    """Truncated Replace the usual way: one chain, one generation at a time."""
    rng = np.random.default_rng(seed)
    z = NormalDist().inv_cdf(0.5 + Q / 2)
    out = 0.0
    for _ in range(chains):
        x = rng.normal(0.0, 1.0, N)
        mu, sd = x.mean(), x.std()
        for _g in range(G):
            kept = np.empty(0)
            while kept.size < N:
                y = rng.normal(mu, sd, 2 * N)
                kept = np.concatenate([kept, y[np.abs(y - mu) <= z * sd]])
            x = kept[:N]
            mu, sd = x.mean(), x.std()
        out += sd
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import collapse_jax as cj

    chains = 1000 if args.quick else 10_000
    loop_chains = 20 if args.quick else 200
    repeats = 1 if args.quick else 5
    g = cj.Gaussian()
    cases = {
        "plain": (g, cj.Replace()),
        "temperature": (cj.Pressured(g, temperature=0.9), cj.Replace()),
        "truncate": (cj.Pressured(g, truncate=Q), cj.Replace()),
        "verifier": (cj.Pressured(g, support=0.99, false_accept=0.05, false_reject=0.05), cj.Replace()),
        "correct": (cj.Pressured(g, correct=0.2), cj.Replace()),
        "freshmix": (g, cj.FreshMix(0.2)),
        "provenance": (g, cj.Provenance(0.3, false_real=0.05, false_synthetic=0.1)),
        "schedule": (g, cj.Schedule([N] * (G + 1))),
        "plain_2d": (cj.Gaussian(dim=2), cj.Replace()),
        "truncate_2d": (cj.Pressured(cj.Gaussian(dim=2), truncate=Q), cj.Replace()),
    }
    contenders, work = {}, {}
    for name, (fam, regime) in cases.items():

        def run(fam=fam, regime=regime):
            cj.simulate(fam, regime, n=N, generations=G, chains=chains, seed=0, keep="summary", progress=False,
                        metrics=["trace_ratio", "tail_mass"])  # fmt: skip

        contenders[name] = run
        work[name] = chains * (G + 1)
    contenders["numpy_loop_truncate"] = lambda: numpy_loop(loop_chains)
    work["numpy_loop_truncate"] = loop_chains * (G + 1)
    for f in contenders.values():
        f()  # compile (and warm the NumPy loop)
    times = interleaved_times(contenders, repeats)
    per = {k: float(np.median(v)) / work[k] * 1e6 for k, v in times.items()}  # microseconds per chain-generation
    ratios = {k: per[k] / per["plain_2d" if k.endswith("_2d") else "plain"] for k in cases}
    ratios["numpy_loop_truncate_over_truncate"] = per["numpy_loop_truncate"] / per["truncate"]
    result = {
        "benchmark": "pressures",
        "config": {"n": N, "generations": G, "chains": chains, "loop_chains": loop_chains, "repeats": repeats, "q": Q},
        "microseconds_per_chain_generation": per,
        "ratio_to_plain": ratios,
        "times_s": times,
        "machine": machine(),
    }
    out = Path(
        args.out or ("benchmarks/results/pressures_quick.json" if args.quick else "benchmarks/results/pressures.json")
    )
    write_json_atomic(out, result)
    print("| case | microseconds per chain-generation | ratio |\n|---|---:|---:|")
    for k, v in per.items():
        r = ratios.get(k, ratios["numpy_loop_truncate_over_truncate"])
        print(f"| {k} | {v:.4g} | {r:.3g} |")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
