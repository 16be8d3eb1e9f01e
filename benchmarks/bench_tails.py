"""Tails: a K = 10^5-category Zipf chain (beta = 1.2), n = 10^5 draws per generation,
Replace (a neutral Wright-Fisher population as large as the support), default
metrics, summary results. collapse_jax's two Categorical samplers ("samples":
n indices by inversion of the CDF, scatter-added; "exact": Multinomial counts down a
binary tree of binomials) against NumPy: a per-chain loop (``rng.multinomial(n, p)``
per chain and generation, renormalised) and NumPy vectorised over chains
(``rng.multinomial(n, P)`` with a (chains, K) ``P``). Reports chain-generations per
second, their ratios, each library path's compile time apart from its run time, and
the peak resident memory of a run at 10^4 chains (one fresh process per
configuration). All timings in one process, repeats interleaved, medians; JSON
written atomically.

    python benchmarks/bench_tails.py            # full run (~10 min on 2 cores), writes benchmarks/results/tails.json
    python benchmarks/bench_tails.py --quick    # smoke test (~1-2 min), writes benchmarks/results/tails_quick.json
    python benchmarks/bench_tails.py --no-memory --repeats 5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import contender_table, git_info, log, machine, timed, write_json_atomic

REPO = Path(__file__).resolve().parents[1]
SEED = 0

# --------------------------------------------------------------------------- configuration


@dataclasses.dataclass(frozen=True)
class Config:
    quick: bool
    K: int = 100_000
    n: int = 100_000
    beta: float = 1.2
    generations: int = 10  # every contender: generation 0 (a fit to n draws from the truth) + G refits
    chains: int = 128  # library "samples" and NumPy vectorised (a multiple of the sample path's CPU chunk, 64)
    exact_chains: int = 4  # library "exact": ~0.3-0.6 s per chain-generation at K = 10^5 on this CPU
    loop_chains: int = 64  # the per-chain NumPy loop
    repeats: int = 3
    mem_chains: int = 10_000
    mem_generations: int = 1
    # samples path: (chunk_size, max_memory): the default chunk under the default budget, and a tighter budget
    mem_cases: tuple[tuple[int | None, str], ...] = ((None, "4GB"), (None, "1GB"))
    memory: bool = True


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        cfg = Config(
            quick=True,
            generations=2,
            chains=64,  # one chunk: fewer chains would still compute a padded chunk of 64
            exact_chains=2,
            loop_chains=8,
            repeats=2,
            mem_chains=500,
            mem_generations=1,
            mem_cases=((None, "4GB"),),
        )
    else:
        cfg = Config(quick=False)
    over = {
        k: v
        for k, v in {
            "repeats": args.repeats,
            "chains": args.chains,
            "generations": args.generations,
            "loop_chains": args.loop_chains,
            "mem_chains": args.mem_chains,
        }.items()
        if v is not None
    }
    if args.no_memory:
        over["memory"] = False
    return dataclasses.replace(cfg, **over)


def zipf(beta: float, k: int) -> np.ndarray:
    w = np.arange(1, k + 1, dtype=np.float64) ** -beta
    return w / w.sum()


# --------------------------------------------------------------------------- contenders


@dataclasses.dataclass
class Contender:
    name: str
    description: str
    run: Callable[[], Any]  # returns (final extinct per chain, final collision probability per chain) or a Result
    work: int  # chain-generations per call
    params: dict[str, Any]
    times: list[float] = dataclasses.field(default_factory=list)
    first_call_s: float = float("nan")
    sanity: dict[str, Any] | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def library(cfg: Config, sampler: str) -> Contender:
    import collapse_jax as cj

    exact = sampler == "exact"
    chains = cfg.exact_chains if exact else cfg.chains
    G = cfg.generations
    fam = cj.Categorical.zipf(cfg.beta, cfg.K, sampler=sampler)
    # a chunk always computes its full (padded) size: the few exact-path chains run as one chunk of their own
    kw = dict(n=cfg.n, generations=G, chains=chains, seed=SEED, keep="summary", progress=False)
    if exact:
        kw["chunk_size"] = chains

    def run():
        return cj.simulate(fam, cj.Replace(), **kw)

    return Contender(
        name=sampler,
        description=f'cj.simulate(cj.Categorical.zipf({cfg.beta}, {cfg.K}, sampler="{sampler}"), cj.Replace(), '
        f'n={cfg.n}, generations={G}, chains={chains}, keep="summary", progress=False'
        + (f", chunk_size={chains}" if exact else "")
        + "): default metrics, float32",
        run=run,
        work=chains * (G + 1),
        params={"chains": chains, "generations": G, **({"chunk_size": chains} if exact else {})},
    )


def numpy_loop(cfg: Config) -> Contender:
    p0 = zipf(cfg.beta, cfg.K)
    n, G, chains = cfg.n, cfg.generations, cfg.loop_chains

    def run():
        rng = np.random.default_rng(SEED)
        extinct, coll = np.empty(chains), np.empty(chains)
        for c in range(chains):
            p = p0
            for _ in range(G + 1):
                p = rng.multinomial(n, p) / n
            extinct[c] = np.count_nonzero(p == 0)
            coll[c] = p @ p
        return extinct, coll

    return Contender(
        name="numpy_loop",
        description="for chain: p = p0; for g in 0..G: p = rng.multinomial(n, p) / n  (NumPy float64, one chain "
        "and generation at a time; numpy.random.Generator.multinomial: conditional binomials, stopping once "
        "every draw is placed)",
        run=run,
        work=chains * (G + 1),
        params={"chains": chains, "generations": G},
    )


def numpy_vectorised(cfg: Config) -> Contender:
    p0 = zipf(cfg.beta, cfg.K)
    n, G, chains = cfg.n, cfg.generations, cfg.chains

    def run():
        rng = np.random.default_rng(SEED)
        P = np.broadcast_to(p0, (chains, cfg.K))
        for _ in range(G + 1):
            P = rng.multinomial(n, P) / n
        return np.count_nonzero(P == 0, axis=1).astype(float), np.einsum("ck,ck->c", P, P)

    return Contender(
        name="numpy_vectorised",
        description="P = p0 broadcast to (chains, K); for g in 0..G: P = rng.multinomial(n, P) / n  (NumPy "
        "float64, every chain of a generation in one call: Generator.multinomial with 2-D pvals)",
        run=run,
        work=chains * (G + 1),
        params={"chains": chains, "generations": G},
    )


# --------------------------------------------------------------------------- timing


def final_stats(result) -> tuple[float, float, float, float, int]:
    """(mean, se) of the final generation's extinct count and collision probability, and the chains."""
    if isinstance(result, tuple):
        ext, coll = result
        k = len(ext)
        se = lambda x: float(np.std(x, ddof=1) / math.sqrt(k)) if k > 1 else float("nan")  # noqa: E731
        return float(np.mean(ext)), se(ext), float(np.mean(coll)), se(coll), k
    e = result.summary("extinct").iloc[-1]
    c = result.summary("collision_probability").iloc[-1]
    return float(e["mean"]), float(e["se"]), float(c["mean"]), float(c["se"]), int(e["n_finite"])


def measure(contenders: list[Contender], repeats: int) -> list[float]:
    """One untimed call each (compiles; feeds the sanity check), then ``repeats`` interleaved rounds,
    the order rotated every round. Returns the 1-minute load average after each round."""
    for c in contenders:
        log(f"warm-up  {c.name}")
        t0 = time.perf_counter()
        result = c.run()
        c.first_call_s = time.perf_counter() - t0
        m_e, se_e, m_c, se_c, k = final_stats(result)
        c.sanity = {
            "extinct_mean_final": m_e,
            "extinct_se": se_e,
            "collision_mean_final": m_c,
            "collision_se": se_c,
            "chains": k,
        }
    loads = []
    for r in range(repeats):
        k = r % len(contenders)
        for c in contenders[k:] + contenders[:k]:
            c.times.append(timed(c.run))
        loads.append(os.getloadavg()[0])
        log(f"round {r + 1}/{repeats}: " + ", ".join(f"{c.name} {c.times[-1]:.2f}s" for c in contenders))
    return loads


# --------------------------------------------------------------------------- peak memory (one process each)

CHILD = r"""
import json, sys, time
spec = json.loads(sys.argv[1])

def status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key + ":"))

import collapse_jax as cj
from collapse_jax.engine import driver as _driver, plan as _plan

seen = {}
_check = _plan.MemoryPlan.check
def spy_check(self):
    seen["plan"] = self
    return _check(self)
_plan.MemoryPlan.check = spy_check
_chunk = _driver.default_chunk_size
def spy_chunk(*a, **k):
    seen["chunk"] = _chunk(*a, **k)
    return seen["chunk"]
_driver.default_chunk_size = spy_chunk

class Stop(Exception):
    pass

ticks = []
def progress(done, total):
    ticks.append((time.perf_counter(), done))
    if spec["first_chunk_only"] and done >= seen["chunk"] * (spec["generations"] + 1):
        raise Stop  # the first chunk has run every generation

fam = cj.Categorical.zipf(spec["beta"], spec["K"], sampler=spec["sampler"])
kw = dict(n=spec["n"], generations=spec["generations"], chains=spec["chains"], seed=0, keep="summary",
          max_memory=spec["max_memory"], progress=progress)
if spec["chunk_size"]:
    kw["chunk_size"] = spec["chunk_size"]
    seen["chunk"] = spec["chunk_size"]
base = status("VmRSS")
t0 = time.perf_counter()
truncated = False
try:
    cj.simulate(fam, cj.Replace(), **kw)
except Stop:
    truncated = True
wall = time.perf_counter() - t0
peak = status("VmHWM")
plan, chunk = seen["plan"], seen["chunk"]
# steady throughput: from the first progress update (generation 0 of the first chunk, compiled by then)
# to the last, so most of the compilation is left out
(t_a, d_a), (t_b, d_b) = ticks[0], ticks[-1]
print(json.dumps({
    "peak_rss_bytes": peak, "rss_before_run_bytes": base, "peak_added_bytes": peak - base,
    "plan_estimate_bytes": plan.need(chunk), "plan_budget_bytes": plan.budget, "plan_max_chunk": plan.max_chunk,
    "plan_per_chain_bytes": plan.per_chain, "chunk_size": chunk, "wall_s": wall, "truncated": truncated,
    "chain_generations_done": d_b, "chain_generations_total": spec["chains"] * (spec["generations"] + 1),
    "steady_chain_generations_per_s": (d_b - d_a) / (t_b - t_a) if t_b > t_a else None,
}))
"""


def memory_case(cfg: Config, sampler: str, chunk_size: int | None, max_memory: str = "4GB") -> dict[str, Any]:
    """Peak resident memory (VmHWM, the whole process: interpreter and JAX runtime included) of one
    simulate() call at ``mem_chains`` chains in a fresh process. The exact path at K = 10^5 costs
    ~0.3-0.6 s per chain-generation here, so its run is stopped (from the progress callback) once its
    first chunk is done: in summary mode a run holds one chunk at a time and allocates its host arrays
    up front, so the first chunk's peak is the run's."""
    spec = {
        "sampler": sampler,
        "beta": cfg.beta,
        "K": cfg.K,
        "n": cfg.n,
        "chains": cfg.mem_chains,
        "generations": cfg.mem_generations,
        "chunk_size": chunk_size,
        "max_memory": max_memory,
        "first_chunk_only": sampler == "exact",
    }
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, env=env, check=False
    )
    head = {
        "sampler": sampler,
        "chains": cfg.mem_chains,
        "generations": cfg.mem_generations,
        "max_memory": max_memory,
        "chunk_size_given": chunk_size,
    }
    if out.returncode != 0:
        last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit code {out.returncode}"
        log(f"memory case failed: {last}")
        return {**head, "failed": last}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    gib = 2**30
    return {
        **head,
        **r,
        "peak_rss_gib": r["peak_rss_bytes"] / gib,
        "peak_added_gib": r["peak_added_bytes"] / gib,
        "plan_estimate_gib": r["plan_estimate_bytes"] / gib,
        "process_wall_s": time.perf_counter() - t,
    }


# --------------------------------------------------------------------------- report


RATIOS = (  # name, library contender, baseline, target
    ("samples_vs_loop", "samples", "numpy_loop", 20.0),
    ("samples_vs_numpy_vectorised", "samples", "numpy_vectorised", 3.0),
    ("exact_vs_loop", "exact", "numpy_loop", 20.0),
    ("exact_vs_numpy_vectorised", "exact", "numpy_vectorised", 3.0),
    ("samples_vs_exact", "samples", "exact", None),
)


def peak_figures(memory: list[dict[str, Any]]) -> dict[str, Any]:
    """``peak_rss_gib``: the sample path's peak at the default budget (one number, as bench_scale.py's,
    which run_all.py quotes); ``peak_rss_gib_by_case``: every configuration's."""
    ok = [m for m in memory if "failed" not in m]
    if not ok:
        return {}
    out: dict[str, Any] = {
        "peak_rss_gib_by_case": {
            f"{m['sampler']}@{m['chains']} chains, max_memory={m['max_memory']}, chunk {m['chunk_size']}"
            + (" (first chunk)" if m["truncated"] else ""): m["peak_rss_gib"]
            for m in ok
        }
    }
    head = [m for m in ok if m["sampler"] == "samples" and m["chunk_size_given"] is None]
    if head:
        out["peak_rss_gib"] = head[0]["peak_rss_gib"]
    return out


def build_report(cfg: Config, contenders: list[Contender], loads: list[float], memory: list[dict], started: float):
    by = {c.name: c for c in contenders}
    results = {}
    for c in contenders:
        entry = {
            "description": c.description,
            "params": c.params,
            "chain_generations_per_call": c.work,
            "times_s": c.times,
            "median_s": c.median,
            "min_s": min(c.times),
            "chain_generations_per_s": c.work / c.median,
            "microseconds_per_chain_generation": 1e6 * c.median / c.work,
            "first_call_s": c.first_call_s,
            "sanity": c.sanity,
        }
        if c.name in ("samples", "exact"):
            # the first call compiles, then runs the same work as a timed call
            entry["compile_s"] = max(c.first_call_s - c.median, 0.0)
        results[c.name] = entry
    ratios = {}
    for name, lib, base, target in RATIOS:
        value = results[lib]["chain_generations_per_s"] / results[base]["chain_generations_per_s"]
        best = (by[lib].work / min(by[lib].times)) / (by[base].work / min(by[base].times))
        ratios[name] = {
            "value": value,
            "value_of_minima": best,
            "numerator": lib,
            "denominator": base,
            "description": f"chain-generations/s of {lib} over {base} (medians)",
            "target": target,
            "met": None if target is None else value >= target,
        }
    # sanity: the library's final mean extinct count and collision probability against NumPy vectorised's
    ref = by["numpy_vectorised"].sanity
    for c in contenders:
        s = c.sanity
        for key in ("extinct", "collision"):
            se = math.hypot(s[f"{key}_se"], ref[f"{key}_se"])
            s[f"{key}_z_vs_numpy_vectorised"] = (s[f"{key}_mean_final"] - ref[f"{key}_mean_final"]) / se
        s["ok"] = all(abs(s[f"{k}_z_vs_numpy_vectorised"]) < 5 for k in ("extinct", "collision"))
    return {
        "benchmark": "tails_categorical_zipf",
        "created_unix": started,
        "wall_s": time.time() - started,
        "machine": {**machine(), "loadavg_1min_per_round": loads, "git": git_info()},
        "config": {
            **{k: v for k, v in dataclasses.asdict(cfg).items()},
            "family": f"Categorical.zipf({cfg.beta}, {cfg.K})",
            "regime": "Replace()",
            "seed": SEED,
            "throughput_unit": "chain-generations per second (a chain-generation: n draws and one refit)",
        },
        "contenders": results,
        "chain_generations_per_s": {c.name: results[c.name]["chain_generations_per_s"] for c in contenders},
        "ratios": ratios,
        "memory": memory,
        **peak_figures(memory),
        "sanity_ok": all(c.sanity["ok"] for c in contenders),
        "notes": [
            "Timings in one process: one untimed call per contender (compiles; its result feeds the sanity check), "
            "then interleaved rounds (order rotated each round); medians. compile_s = first call minus the median "
            "call (both run the same work).",
            "A chain-generation is n = 10^5 draws and a refit: generation 0 fits n draws from the Zipf truth, "
            "every later one n draws from the previous fit. Every contender runs generations + 1 of them per "
            "chain, from the same truth.",
            "The contenders run different numbers of chains (the exact path at K = 10^5 costs ~0.3-0.6 s per "
            "chain-generation here; the loop is per chain anyway): compare chain-generations per second. The "
            "NumPy loop's cost falls as the support shrinks (Generator.multinomial stops once every draw is "
            "placed); the library's does not (every generation costs O(n log K) on the sample path, O(K log K) "
            "binomials on the exact one), so the ratios depend on the number of generations.",
            "NumPy is float64 and single-threaded; XLA may use both cores. Other processes share this machine "
            "(loadavg_1min_per_round).",
            "Memory: one fresh process per configuration, VmHWM of the whole process (interpreter, JAX runtime "
            "and compiled code included); rss_before_run is after imports. The exact path's run is stopped after "
            "its first chunk (it would take hours at 10^4 chains): the host arrays are allocated up front and a "
            "summary run holds one chunk at a time, so the first chunk's peak is the run's.",
            "sanity: the final generation's mean extinct count and collision probability against NumPy "
            "vectorised (z-scores with both standard errors); ok means both |z| < 5.",
        ],
    }


def markdown(report: dict[str, Any]) -> str:
    lines = contender_table(report)
    if report["memory"]:
        lines += [
            "",
            "| memory | chains | chunk | peak RSS (GiB) | added by the run (GiB) | plan estimate (GiB) | note |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for m in report["memory"]:
            if "failed" in m:
                lines.append(f"| {m['sampler']} ({m['max_memory']}) | {m['chains']} | - | - | - | - | {m['failed']} |")
                continue
            note = "stopped after the first chunk" if m["truncated"] else f"{m['wall_s']:.0f} s"
            lines.append(
                f"| {m['sampler']} ({m['max_memory']}) | {m['chains']} | {m['chunk_size']} | {m['peak_rss_gib']:.2f} | "
                f"{m['peak_added_gib']:.2f} | {m['plan_estimate_gib']:.2f} | {note} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small chain counts, few repeats (~1-2 min)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--chains", type=int, default=None, help="chains of the sample path and NumPy vectorised")
    parser.add_argument("--generations", type=int, default=None)
    parser.add_argument("--loop-chains", type=int, default=None)
    parser.add_argument("--mem-chains", type=int, default=None, help="chains of the peak-memory runs (10^4)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    args = parser.parse_args(argv)
    cfg = make_config(args)
    out = args.out or REPO / "benchmarks" / "results" / ("tails_quick.json" if cfg.quick else "tails.json")

    started = time.time()
    contenders = [library(cfg, "samples"), library(cfg, "exact"), numpy_loop(cfg), numpy_vectorised(cfg)]
    loads = measure(contenders, cfg.repeats)
    memory: list[dict[str, Any]] = []
    write_json_atomic(out, build_report(cfg, contenders, loads, memory, started))  # the timings, should memory fail
    if cfg.memory:
        for chunk, budget in cfg.mem_cases:
            log(f"memory   samples, {cfg.mem_chains} chains, chunk_size={chunk}, max_memory={budget}")
            memory.append(memory_case(cfg, "samples", chunk, budget))
        log(f"memory   exact, {cfg.mem_chains} chains (first chunk)")
        memory.append(memory_case(cfg, "exact", None))
    report = build_report(cfg, contenders, loads, memory, started)
    write_json_atomic(out, report)
    print(markdown(report))
    print(f"\nwrote {out} ({report['wall_s']:.0f} s; sanity {'ok' if report['sanity_ok'] else 'FAILED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
