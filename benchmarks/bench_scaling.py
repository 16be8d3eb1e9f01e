"""Scaling curves: time per run against the number of chains, the points per
generation n and the number of generations, and peak memory against the number of
chains (each memory point in its own process), for the 1-D Gaussian under Replace on
the sample path and the exact path, summary results. Times are medians of repeats
after a compiling run. Writes JSON and a figure (PNG) atomically.

    python benchmarks/bench_scaling.py [--quick] [--out benchmarks/results/scaling.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import machine, write_json_atomic

MEMORY_SCRIPT = """
import json, resource, sys, time
import collapse_jax as cj
chains = int(sys.argv[1])
t = time.perf_counter()
cj.simulate(cj.Gaussian(sampler="exact"), n=100, generations=10, chains=chains, seed=0, keep="summary",
            progress=False, max_memory="2GB")
wall = time.perf_counter() - t
try:  # this process's own high-water mark (ru_maxrss would include the parent's: it survives fork and exec)
    with open("/proc/self/status") as fh:
        peak = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
print(json.dumps({"chains": chains, "peak_rss_bytes": peak, "wall_s": wall}))
"""


def _time(fn, repeats: int) -> float:
    fn()  # compile
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return float(np.median(out))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import collapse_jax as cj

    q = args.quick
    repeats = 1 if q else 3
    sample, exact = cj.Gaussian(), cj.Gaussian(sampler="exact")

    def run(fam, n, g, c):
        return lambda: cj.simulate(fam, n=n, generations=g, chains=c, seed=0, keep="summary", progress=False)

    curves = {}
    chains_grid = [10**3, 10**4] if q else [10**3, 10**4, 10**5, 10**6]
    curves["time_vs_chains"] = {
        "x": chains_grid,
        "x_name": "chains (n = 100, 20 generations)",
        "series": {
            "sample path": [_time(run(sample, 100, 20, c), repeats) for c in chains_grid[:3]],
            "exact path": [_time(run(exact, 100, 20, c), repeats) for c in chains_grid],
        },
    }
    n_grid = [10, 100] if q else [10, 100, 1000, 10000]
    curves["time_vs_n"] = {
        "x": n_grid,
        "x_name": "points per generation n (10^4 chains, 20 generations)",
        "series": {
            "sample path": [_time(run(sample, n, 20, 10**4), repeats) for n in n_grid],
            "exact path": [_time(run(exact, n, 20, 10**4), repeats) for n in n_grid],
        },
    }
    g_grid = [10, 100] if q else [10, 100, 1000]
    curves["time_vs_generations"] = {
        "x": g_grid,
        "x_name": "generations (10^4 chains, n = 100)",
        "series": {
            "sample path": [_time(run(sample, 100, g, 10**4), repeats) for g in g_grid],
            "exact path": [_time(run(exact, 100, g, 10**4), repeats) for g in g_grid],
        },
    }
    mem_grid = [10**4, 10**5] if q else [10**4, 10**5, 10**6, 10**7]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    mem = []
    for c in mem_grid:
        out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(c)], capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        mem.append(json.loads(out.stdout.strip().splitlines()[-1]))
    curves["memory_vs_chains"] = {
        "x": mem_grid,
        "x_name": "chains (exact path, n = 100, 10 generations, summary, max_memory 2GB)",
        "series": {"peak RSS (GiB)": [m["peak_rss_bytes"] / 2**30 for m in mem]},
        "wall_s": [m["wall_s"] for m in mem],
    }
    result = {"benchmark": "scaling", "quick": q, "repeats": repeats, "curves": curves, "machine": machine()}
    out = Path(args.out or ("benchmarks/results/scaling_quick.json" if q else "benchmarks/results/scaling.json"))
    write_json_atomic(out, result)
    _figure(curves, out.with_suffix(".png"))
    print(json.dumps(curves, indent=1))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


def _figure(curves, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from collapse_jax.results import atomic_write

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    for ax, (name, cur) in zip(axes, curves.items()):
        for label, ys in cur["series"].items():
            ax.plot(cur["x"][: len(ys)], ys, "o-", label=label)
        ax.set(xscale="log", yscale="log", xlabel=cur["x_name"])
        ax.set_ylabel("peak RSS (GiB)" if name == "memory_vs_chains" else "wall time per run (s)")
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.xaxis.label.set_fontsize(8)
        ax.legend(fontsize=7)
    fig.suptitle("collapse_jax scaling, 1-D Gaussian, Replace, summary results (medians)", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


if __name__ == "__main__":
    raise SystemExit(main())
