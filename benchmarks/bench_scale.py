"""Scale: many chains under a memory budget, summary results; reports wall time,
throughput and the process's peak resident memory.

Gaussian d=1, Replace, exact path (default: 10^6 chains x 1,000 generations), or
``--family gmm``: the 2-component 1-D mixture refitted by EM on n = 100 points per
generation (Replace, sample path).

    python benchmarks/bench_scale.py [--chains 1000000] [--generations 1000] [--out benchmarks/results/scale.json]
    python benchmarks/bench_scale.py --chains 10000000 --generations 100 --out benchmarks/results/scale_1e7.json
    python benchmarks/bench_scale.py --family gmm --chains 100000 --generations 10 \
        --out benchmarks/results/scale_gmm.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

from _common import write_json_atomic


def peak_rss_bytes() -> int:
    """Peak resident set size of this process: Linux's VmHWM (ru_maxrss would carry a
    parent's peak, since it survives fork and exec); elsewhere ru_maxrss (macOS: bytes)."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        pass
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chains", type=int, default=1_000_000)
    p.add_argument("--generations", type=int, default=1000)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--max-memory", default="2GB")
    p.add_argument("--out", default="benchmarks/results/scale.json")
    p.add_argument("--family", choices=("gaussian", "gmm"), default="gaussian")
    args = p.parse_args(argv)

    import jax

    import collapse_jax as cj

    rss_before = peak_rss_bytes()
    t0 = time.perf_counter()
    gmm = args.family == "gmm"
    family = cj.GMM(components=2, dim=1) if gmm else cj.Gaussian(sampler="exact")
    res = cj.simulate(
        family,
        cj.Replace(),
        n=args.n,
        generations=args.generations,
        chains=args.chains,
        seed=0,
        keep="summary",
        max_memory=args.max_memory,
        progress=True,
        thresholds=None if gmm else {"sd": 0.1},
    )
    wall = time.perf_counter() - t0
    peak = peak_rss_bytes()
    if gmm:
        row = res.summary("l2_to_truth").iloc[-1]
        check = {"l2_to_truth_mean_final": float(row["mean"]), "se": float(row["se"]), "chains": int(row["n_finite"])}
    else:
        row = res.summary("log_variance").iloc[-1]
        theory = float(cj.theory.log_variance_mean(args.generations, args.n, "mle"))
        check = {
            "log_variance_mean_final": float(row["mean"]),
            "se": float(row["se"]),
            "theory": theory,
            "z": (float(row["mean"]) - theory) / float(row["se"]),
            "p_sd_below_0.1_final": float(res.prob_below("sd", 0.1)["p"].iloc[-1]),
        }
    out = {
        "benchmark": "scale",
        "config": {
            "family": "GMM(K=2, d=1, EM, refit)" if gmm else "Gaussian(d=1, mle, exact)",
            "regime": "Replace",
            "n": args.n,
            "chains": args.chains,
            "generations": args.generations,
            "keep": "summary",
            "max_memory": args.max_memory,
            "chunk_size": res.config["chunk_size"],
        },
        "wall_s": wall,
        "chain_generations_per_s": args.chains * (args.generations + 1) / wall,
        "peak_rss_bytes": peak,
        "peak_rss_gib": peak / 2**30,
        "rss_before_run_gib": rss_before / 2**30,
        "target_peak_gib": 4.0,
        "met": peak < 4 * 2**30,
        "check": check,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
        },
    }
    path = Path(args.out)
    write_json_atomic(path, out)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
