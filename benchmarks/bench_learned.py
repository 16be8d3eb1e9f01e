"""Learned generators: the tiny neural families, vmapped over chains, against the same
model trained one seed at a time in a jitted per-seed loop (the field's way, at best).

Two workloads, Replace, G generations, summary results:

- ``density``: ``cj.NeuralDensity`` on wine's features 0 and 6 (a 24 x 24 grid, tanh MLP
  (32, 32), 200 Adam steps per fit), n = 100 points per generation;
- ``vae``: ``cj.VAE`` on the 8 x 8 digits (61 standardised pixels, latent 4, hidden 32,
  100 Adam steps per fit), n = 100.

Contenders per workload: ``cj.simulate`` at ``--chains`` (default 256) chains, and the
loop: ``jax.jit(cj.chain_fn(...))`` called once per seed for ``--loop-chains`` seeds (the
same program for one chain: its key is the one ``simulate`` gives chain c, so the loop's
chains are the library's first chains, which the sanity check compares). Throughput in
chain-generations per second; the ratio library / loop (target >= 10). All timings in
one process: one untimed call per contender (compiles), then interleaved rounds, medians.
Peak memory against chains: the library alone in a fresh process per chain count
(whole-process peak RSS). The device is recorded, so the same script gives the
accelerator's figures when run on one.

    python benchmarks/bench_learned.py            # benchmarks/results/learned.json (~6 min on 2 cores)
    python benchmarks/bench_learned.py --quick    # ~1 min: benchmarks/results/learned_quick.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import contender_table, git_info, interleaved_times, log, machine, timed, write_json_atomic

REPO = Path(__file__).resolve().parents[1]
SEED = 0
TARGET = 10.0

WORKLOADS = {
    "density": {
        "build": "cj.NeuralDensity(cj.Empirical.load('wine', features=[0, 6]), grid=24, hidden=(32, 32), steps=200)",
        "n": 100,
        "metric": "tv_to_pool",
    },
    "vae": {
        "build": "cj.VAE(cj.Empirical.load('digits'), latent=4, hidden=32, steps=100)",
        "n": 100,
        "metric": "energy_distance",
    },
}


def _family(spec: dict):
    import collapse_jax as cj

    return eval(spec["build"], {"cj": cj})  # a fixed expression of this file, recorded in the JSON


def contenders_for(name: str, spec: dict, chains: int, loop_chains: int, generations: int) -> dict[str, Any]:
    import jax

    import collapse_jax as cj

    fam = _family(spec)
    metric = spec["metric"]
    out: dict[str, Any] = {}

    def library():
        res = cj.simulate(fam, cj.Replace(), n=spec["n"], generations=generations, chains=chains, seed=SEED,
                          keep="summary", keep_chains=loop_chains, metrics=[metric], progress=False)  # fmt: skip
        return np.asarray(res.metrics[metric])

    f = jax.jit(cj.chain_fn(fam, cj.Replace(), n=spec["n"], generations=generations, metrics=[metric]))
    root = jax.random.key(SEED)

    def loop():
        rows = []
        for c in range(loop_chains):
            m, _ = f(jax.random.fold_in(root, c))
            rows.append(np.asarray(jax.block_until_ready(m[metric])))
        return np.stack(rows)

    out[f"{name}: collapse_jax"] = {"fn": library, "chains": chains}
    out[f"{name}: jitted per-seed loop"] = {"fn": loop, "chains": loop_chains}
    return out


def peak_rss(name: str, chains: int, generations: int) -> float:
    """Whole-process peak RSS (MB) of one library run in a fresh process."""
    code = (
        "import resource, collapse_jax as cj\n"
        f"fam = eval({WORKLOADS[name]['build']!r}, {{'cj': cj}})\n"
        f"cj.simulate(fam, cj.Replace(), n={WORKLOADS[name]['n']}, generations={generations}, chains={chains}, "
        f"seed={SEED}, keep='summary', metrics=[{WORKLOADS[name]['metric']!r}], progress=False)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return int(res.stdout.strip().splitlines()[-1]) / 1024.0


def add_summaries(report: dict[str, Any]) -> None:
    """Flat views of the recorded numbers for the docs' tables: throughput per contender
    and peak RSS per workload and chain count."""
    report["chain_generations_per_s"] = {k: c["chain_generations_per_s"] for k, c in report["contenders"].items()}
    report["peak_rss_mb"] = {f"{w} @ {c} chains": mb for w, m in report["memory"].items() for c, mb in m.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 chains, 8 loop seeds, 2 rounds")
    parser.add_argument("--chains", type=int, default=None)
    parser.add_argument("--loop-chains", type=int, default=None)
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--memory-chains", type=int, nargs="*", default=None)
    parser.add_argument("--only", nargs="*", choices=list(WORKLOADS), default=None, help="some workloads")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    chains = args.chains or (64 if args.quick else 256)
    loop_chains = args.loop_chains or (8 if args.quick else 32)
    repeats = args.repeats or (2 if args.quick else 3)
    memory_chains = args.memory_chains if args.memory_chains is not None else ([64] if args.quick else [64, 256, 1024])
    out = args.out or REPO / "benchmarks" / "results" / ("learned_quick.json" if args.quick else "learned.json")
    shown = [a.replace(str(REPO) + os.sep, "") for a in (sys.argv[1:] if argv is None else argv)]
    started = time.time()
    g = args.generations

    report: dict[str, Any] = {
        "benchmark": "learned",
        "command": " ".join(["python", "benchmarks/bench_learned.py", *shown]),
        "machine": machine(),
        "git": git_info(),
        "workloads": {k: dict(v) for k, v in WORKLOADS.items()},
        "generations": g,
        "contenders": {},
        "ratios": {},
        "sanity": {},
        "memory": {},
    }
    for name, spec in WORKLOADS.items():
        if args.only and name not in args.only:
            continue
        cons = contenders_for(name, spec, chains, loop_chains, g)
        first: dict[str, np.ndarray] = {}
        for key, c in cons.items():
            log(f"{key}: compile + first call")
            c["compile_s"] = timed(lambda c=c, key=key, first=first: first.__setitem__(key, c["fn"]()))
        times = interleaved_times({k: c["fn"] for k, c in cons.items()}, repeats)
        for key, c in cons.items():
            med = statistics.median(times[key])
            report["contenders"][key] = {
                "params": {"chains": c["chains"], "generations": g, "n": spec["n"]},
                "times_s": times[key],
                "median_s": med,
                "compile_s": c["compile_s"] - med,
                "chain_generations_per_s": c["chains"] * (g + 1) / med,
            }
        lib, loop = (report["contenders"][k]["chain_generations_per_s"] for k in cons)
        value = lib / loop
        report["ratios"][f"{name}: collapse_jax / per-seed loop"] = {
            "value": value,
            "target": TARGET,
            "met": value >= TARGET,
        }
        a, b = (first[k] for k in cons)
        a = a[: b.shape[0]]
        diff = np.abs(a - b)
        # the same chains (keys) in two programs: equal up to rounding, which the optimiser and
        # the inverse-CDF draws can amplify along a chain, so the means are compared too
        report["sanity"][name] = {
            "max_abs_difference": float(np.nanmax(diff)),
            "median_relative_difference": float(np.nanmedian(diff / np.maximum(np.abs(b), 1e-12))),
            "mean_library_last_generation": float(a[:, -1].mean()),
            "mean_loop_last_generation": float(b[:, -1].mean()),
            "se_last_generation": float(b[:, -1].std(ddof=1) / np.sqrt(b.shape[0])),
        }
        report["memory"][name] = {}
        for c in memory_chains:
            log(f"{name}: peak RSS at {c} chains")
            report["memory"][name][str(c)] = peak_rss(name, c, g)
    report["wall_s"] = time.time() - started
    add_summaries(report)
    write_json_atomic(out, report)
    lines = contender_table(report)
    lines += ["", "| workload | chains | peak RSS (MB) |", "|---|---:|---:|"]
    for name, m in report["memory"].items():
        lines += [f"| {name} | {c} | {mb:.0f} |" for c, mb in m.items()]
    lines += ["", f"sanity (library's first chains vs the loop): {report['sanity']}"]
    print("\n".join(lines))
    print(f"\nwrote {out} ({report['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
