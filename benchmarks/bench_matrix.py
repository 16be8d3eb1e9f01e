"""Every family under every regime, on each path it supports: microseconds per
chain-generation, and the ratio to the same family's Replace on the sample path,
measured in one process (medians of repeats after a compiling run). Combinations a
family refuses (e.g. AccumulateSubsample on the exact path) are listed with the reason.

n = 100 points per generation, 10 generations, summary results.

    python benchmarks/bench_matrix.py [--quick] [--out benchmarks/results/matrix.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import machine, write_json_atomic

N, G = 100, 10


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import collapse_jax as cj

    repeats = 1 if args.quick else 3
    scale = 0.1 if args.quick else 1.0
    families = {  # name: (constructor by sampler, chains)
        "Gaussian d=1": (lambda s: cj.Gaussian(sampler=s), 20000),
        "Gaussian d=3": (lambda s: cj.Gaussian(dim=3, sampler=s), 5000),
        "Categorical K=10": (lambda s: cj.Categorical(np.full(10, 0.1), sampler=s), 20000),
        "Ridge d=5 fixed": (lambda s: cj.Ridge(dim=5, design="fixed", sampler=s), 5000),
        "GMM K=2 d=1": (lambda s: cj.GMM(components=2, dim=1), 1000),
        "KDE d=1": (lambda s: cj.KDE(bandwidth=0.3), 500),
        "BayesGaussian": (lambda s: cj.BayesGaussian(1, 1.0, prior_var=1.0, sampler=s), 20000),
    }
    regimes = {
        "Replace": cj.Replace(),
        "FreshMix(0.2)": cj.FreshMix(0.2),
        "Accumulate": cj.Accumulate(),
        "AccumulateSubsample": cj.AccumulateSubsample(),
        "Weighted(0.5)": cj.Weighted(0.5),
        "RetainOriginal(0.1)": cj.RetainOriginal(0.1),
    }
    rows = []
    for fname, (make, chains) in families.items():
        chains = max(64, int(chains * scale))
        base = None
        for sampler in ("samples", "exact"):
            try:
                fam = make(sampler)
            except (TypeError, ValueError) as exc:
                rows.append({"family": fname, "path": sampler, "regime": "*", "skipped": str(exc)})
                continue
            if getattr(fam, "sampler", "samples") != sampler:
                continue  # no exact path
            for rname, regime in regimes.items():
                kw = dict(n=N, generations=G, chains=chains, seed=0, keep="summary", progress=False)
                try:
                    cj.simulate(fam, regime, **kw)  # compile (and validate)
                except (TypeError, ValueError) as exc:
                    rows.append({"family": fname, "path": sampler, "regime": rname, "skipped": str(exc)[:160]})
                    continue
                times = []
                for _ in range(repeats):
                    t = time.perf_counter()
                    cj.simulate(fam, regime, **kw)
                    times.append(time.perf_counter() - t)
                us = float(np.median(times)) / (chains * (G + 1)) * 1e6
                if sampler == "samples" and rname == "Replace":
                    base = us
                rows.append(
                    {
                        "family": fname,
                        "path": sampler,
                        "regime": rname,
                        "chains": chains,
                        "us_per_chain_generation": us,
                        "ratio_to_replace_samples": us / base if base else None,
                    }
                )
                print(f"{fname:18s} {sampler:7s} {rname:20s} {us:10.4g} us", flush=True)
    result = {"benchmark": "matrix", "config": {"n": N, "generations": G, "repeats": repeats}, "rows": rows}
    result["machine"] = machine()
    out = Path(args.out or ("benchmarks/results/matrix_quick.json" if args.quick else "benchmarks/results/matrix.json"))
    write_json_atomic(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
