"""Memory plan against measured peak memory: for each case, the budget (``max_memory``),
the plan's estimate for the chunk size it chose and the peak resident memory the run
added, measured in a fresh process.

What is measured is what the budget covers: the arrays the run holds, not the
interpreter, JAX's runtime or compiled code. Each case runs twice in its own process:
the first call compiles and warms up; then the freed heap is returned to the system
(``malloc_trim``), the high-water mark is reset (``/proc/self/clear_refs``) and the
second, identical call is measured as VmHWM minus the resident memory before it
(Linux only). The process maps every allocation of 64 KiB or more on its own
(``MALLOC_MMAP_THRESHOLD_``), so that freed arrays leave the resident set at once and
the next run's arrays show as growth instead of reusing pages the allocator kept.

    python benchmarks/bench_memory_plan.py [--quick] [--out benchmarks/results/memory_plan.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import machine, write_json_atomic

CHILD = r"""
import ctypes, ctypes.util, gc, json, sys, time
import numpy as np
import collapse_jax as cj
from collapse_jax.engine import plan as _plan

def status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key + ":"))

plans = []
check = _plan.MemoryPlan.check
def spy(self):
    plans.append(self)
    return check(self)
_plan.MemoryPlan.check = spy

spec = json.loads(sys.argv[1])
env = {"cj": cj, "np": np}
family, regime = eval(spec["family"], env), eval(spec.get("regime", "cj.Replace()"), env)
run = lambda: cj.simulate(family, regime, progress=False, **spec["kw"])
t = time.perf_counter()
run()  # compiles; not measured
warm = time.perf_counter() - t
gc.collect()
ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # resets VmHWM to the current resident set
base = status("VmRSS")
t = time.perf_counter()
res = run()
wall = time.perf_counter() - t
peak = status("VmHWM") - base
plan = plans[-1]
chunk = res.config["chunk_size"]
print(json.dumps({
    "peak_bytes": peak,
    "estimate_bytes": plan.need(chunk),
    "host_bytes": plan.host, "fixed_bytes": plan.fixed, "per_chain_bytes": plan.per_chain,
    "chunk_size": chunk, "keep": res.config["keep"], "baseline_bytes": base,
    "warmup_s": warm, "run_s": wall,
}))
"""

# (name, family, regime, simulate keywords): budgets small enough that the chunk size is set by
# the budget (or the host arrays fill most of it), so a cost the plan ignored would show; a superset
# of tests/test_memory_plan.py's cases
CASES = [
    ("gaussian_samples", "cj.Gaussian()", "cj.Replace()", dict(n=100_000, generations=3, chains=64, max_memory="48MB")),
    (
        "gaussian_exact_summary",
        "cj.Gaussian(sampler='exact')",
        "cj.Replace()",
        dict(n=10, generations=200_000, chains=1, keep="summary", max_memory="160MB"),
    ),
    (
        "gaussian_exact_summary_short",
        "cj.Gaussian(sampler='exact')",
        "cj.Replace()",
        dict(n=10, generations=50_000, chains=1, keep="summary", max_memory="40MB"),
    ),
    ("gmm_em", "cj.GMM(2, 1)", "cj.Replace()", dict(n=100_000, generations=2, chains=32, max_memory="96MB")),
    ("gmm_k20_small", "cj.GMM(20, 1)", "cj.Replace()", dict(n=20_000, generations=2, chains=16, max_memory="64MB")),
    ("gmm_k20", "cj.GMM(20, 1)", "cj.Replace()", dict(n=50_000, generations=2, chains=16, max_memory="96MB")),
    ("gmm_d20", "cj.GMM(5, 20)", "cj.Replace()", dict(n=5_000, generations=2, chains=8, max_memory="96MB")),
    (
        "ridge_fixed_design",
        "cj.Ridge(dim=3)",
        "cj.Replace()",
        dict(n=100_000, generations=3, chains=64, max_memory="96MB"),
    ),
    (
        "categorical",
        "cj.Categorical(np.ones(5) / 5)",
        "cj.Replace()",
        dict(n=100_000, generations=3, chains=64, max_memory="96MB"),
    ),
    ("kde", "cj.KDE(0.3)", "cj.Replace()", dict(n=2_000, generations=3, chains=256, max_memory="24MB")),
    (
        "gaussian_chains_long",
        "cj.Gaussian()",
        "cj.Replace()",
        dict(n=10, generations=10_000, chains=128, keep="chains", max_memory="96MB"),
    ),
    ("kde_accumulate", "cj.KDE(0.3)", "cj.Accumulate()", dict(n=100, generations=100, chains=64, max_memory="24MB")),
]
QUICK = ("gaussian_samples", "gaussian_exact_summary", "gmm_em")


def measure(family: str, regime: str, kw: dict, timeout: float = 600) -> dict:
    """Run one case in a fresh interpreter (see the module docstring)."""
    spec = json.dumps({"family": family, "regime": regime, "kw": kw})
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, spec], capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if out.returncode != 0:
        last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""
        if last.startswith("ValueError: simulate:"):
            return {"refused": last.removeprefix("ValueError: ")}
        raise RuntimeError(f"case failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--only", nargs="*", choices=[c[0] for c in CASES], default=None)
    args = p.parse_args(argv)
    from collapse_jax._validate import parse_memory

    rows = []
    for name, family, regime, kw in CASES:
        if (args.quick and name not in QUICK) or (args.only and name not in args.only):
            continue
        t = time.perf_counter()
        r = measure(family, regime, kw)
        budget = parse_memory(kw["max_memory"])
        if "refused" in r:
            rows.append({"case": name, "family": family, "regime": regime, "kw": kw, "budget_bytes": budget, **r})
            print(f"{name:24s} refused: {r['refused']}", flush=True)
            continue
        row = {
            "case": name,
            "family": family,
            "regime": regime,
            "kw": kw,
            "budget_bytes": budget,
            **r,
            "peak_over_budget": r["peak_bytes"] / budget,
            "peak_over_estimate": r["peak_bytes"] / r["estimate_bytes"],
            "within_budget": r["peak_bytes"] <= budget,
            "wall_s": time.perf_counter() - t,
        }
        rows.append(row)
        mib = 2**20
        print(
            f"{name:24s} budget {budget / mib:7.1f} MiB  estimate {r['estimate_bytes'] / mib:7.1f} MiB  "
            f"measured {r['peak_bytes'] / mib:7.1f} MiB  chunk {r['chunk_size']:4d}  ({row['wall_s']:.0f} s)",
            flush=True,
        )
    out = {"benchmark": "memory_plan", "quick": args.quick, "cases": rows, "machine": machine()}
    path = Path(args.out or f"benchmarks/results/memory_plan{'_quick' if args.quick else ''}.json")
    write_json_atomic(path, out)
    return 0 if all(r.get("within_budget", True) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
