"""Bayesian and gradient-fitted families: cost per chain-generation and how it scales
with the number of chains. Conjugate `BayesGaussian` (known variance, exact and sample
paths, n = 100), `NUTSLocation` (Student t, n = 50, 200 warm-up + 200 draws),
`GLM` (logistic, d = 5, n = 200, 30 L-BFGS steps) and `HuberLocation` (d = 1, n = 100,
30 L-BFGS steps), Replace, 5 generations after a warm-up run that compiles. Times are
medians of interleaved repeats in one process; JSON written atomically.

    python benchmarks/bench_bayes.py [--quick] [--out benchmarks/results/bayes.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import interleaved_times, machine, write_json_atomic

G = 5


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import collapse_jax as cj

    repeats = 1 if args.quick else 3
    cases = {
        "bayes_gaussian_exact": (cj.BayesGaussian(1, 1.0, prior_var=0.1, sampler="exact"), 100, (10**4, 10**5)),
        "bayes_gaussian_samples": (cj.BayesGaussian(1, 1.0, prior_var=0.1), 100, (10**3, 10**4)),
        "nuts_student_t": (cj.NUTSLocation(1, "student_t"), 50, (16, 64, 256)),
        "glm_logistic_lbfgs": (cj.GLM("logistic", 5), 200, (64, 256, 1024)),
        "huber_lbfgs": (cj.HuberLocation(1), 100, (256, 1024, 4096)),
    }
    if args.quick:
        cases = {k: (f, n, c[:1]) for k, (f, n, c) in cases.items()}
    contenders, work = {}, {}
    for name, (fam, n, chain_counts) in cases.items():
        for c in chain_counts:

            def run(fam=fam, n=n, c=c):
                cj.simulate(fam, cj.Replace(), n=n, generations=G, chains=c, seed=0, keep="summary", progress=False)

            contenders[f"{name}@{c}"] = run
            work[f"{name}@{c}"] = c * (G + 1)
    for f in contenders.values():
        f()  # compile
    times = interleaved_times(contenders, repeats)
    per = {k: float(np.median(v)) / work[k] * 1e6 for k, v in times.items()}  # microseconds per chain-generation
    result = {
        "benchmark": "bayes",
        "config": {"generations": G, "repeats": repeats, "n": {k: v[1] for k, v in cases.items()}},
        "microseconds_per_chain_generation": per,
        "times_s": times,
        "machine": machine(),
    }
    out = Path(args.out or ("benchmarks/results/bayes_quick.json" if args.quick else "benchmarks/results/bayes.json"))
    write_json_atomic(out, result)
    print("| family @ chains | microseconds per chain-generation |\n|---|---:|")
    for k, v in per.items():
        print(f"| {k} | {v:.4g} |")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
