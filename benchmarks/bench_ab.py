"""A/B: the simulator in the working tree against a base git revision, workload by
workload, to tell whether a change slowed it down.

The base revision is checked out in a temporary `git worktree` (removed at the end,
also on error). Every measurement runs in a fresh subprocess with `PYTHONPATH` and cwd
set to one tree, which imports `collapse_jax` from that tree (checked in the child),
calls the workload once (compile_s: compilation and a first run) and then times a
second identical call (run_s). No persistent compilation cache is configured. Base and
new alternate within each repeat, the order flipped every repeat (AB, BA, AB, ...) so
that slow drifts of a shared machine hit both alike; medians over repeats, ratios
new / base, and the geometric mean of the run ratios. JSON written atomically.

    python benchmarks/bench_ab.py --base REV [--repeats 5] [--quick] [--out benchmarks/results/ab.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

from _common import machine, write_json_atomic

ROOT = Path(__file__).resolve().parent.parent

# name -> (call, chains): `call` is an expression in `cj` and `chains`; every workload
# keeps only the summary so that both trees do the same host-side work.
WORKLOADS: dict[str, tuple[str, int]] = {
    "gaussian_replace": (
        "cj.simulate(cj.Gaussian(), cj.Replace(), n=100, generations=100, chains=chains, seed=0,"
        " progress=False, keep='summary')",
        20_000,
    ),
    "gaussian_replace_exact": (
        "cj.simulate(cj.Gaussian(sampler='exact'), cj.Replace(), n=100, generations=1000, chains=chains, seed=0,"
        " progress=False, keep='summary')",
        20_000,
    ),
    "gaussian_d3_accumulate": (
        "cj.simulate(cj.Gaussian(dim=3), cj.Accumulate(), n=50, generations=100, chains=chains, seed=0,"
        " progress=False, keep='summary')",
        5_000,
    ),
    "gaussian_freshmix_pressured": (
        "cj.simulate(cj.Pressured(cj.Gaussian(), temperature=0.9, truncate=0.95), cj.FreshMix(0.3), n=100,"
        " generations=100, chains=chains, seed=0, progress=False, keep='summary')",
        10_000,
    ),
    "gaussian_freshmix_exact": (
        "cj.simulate(cj.Gaussian(sampler='exact'), cj.FreshMix(0.3), n=100, generations=1000, chains=chains, seed=0,"
        " progress=False, keep='summary')",
        20_000,
    ),
    "kde_accumulate": (
        "cj.simulate(cj.KDE(0.5), cj.Accumulate(), n=50, generations=20, chains=chains, seed=0,"
        " progress=False, keep='summary')",
        1_000,
    ),
    "categorical_replace": (
        "cj.simulate(cj.Categorical([0.5, 0.3, 0.2]), cj.Replace(), n=200, generations=100, chains=chains, seed=0,"
        " progress=False, keep='summary')",
        20_000,
    ),
    "ridge_fixed_replace": (
        "cj.simulate(cj.Ridge(dim=5, design='fixed'), cj.Replace(), n=50, generations=100, chains=chains, seed=0,"
        " progress=False, keep='summary')",
        5_000,
    ),
    "gmm_replace": (
        "cj.simulate(cj.GMM(2, 1), cj.Replace(), n=200, generations=20, chains=chains, seed=0,"
        " progress=False, keep='summary')",
        1_000,
    ),
    "kde_replace": (
        "cj.simulate(cj.KDE(0.5), cj.Replace(), n=100, generations=50, chains=chains, seed=0,"
        " progress=False, keep='summary')",
        2_000,
    ),
    "graph_ring4": (
        "cj.simulate_graph(cj.Gaussian(), cj.InteractionGraph.ring(4, real_fraction=0.1), n=50, generations=100,"
        " chains=chains, seed=0, progress=False, keep='summary')",
        5_000,
    ),
    # a chain's context (a fixed design, its Gram matrix) at sizes where it costs something
    "ridge_fixed_d20_replace": (
        "cj.simulate(cj.Ridge(dim=20), cj.Replace(), n=200, generations=100, chains=chains, seed=0,"
        " progress=False, keep='summary')",
        2_000,
    ),
    "ridge_fixed_exact_accumulate": (
        "cj.simulate(cj.Ridge(dim=10, sampler='exact'), cj.Accumulate(), n=100, generations=200, chains=chains,"
        " seed=0, progress=False, keep='summary')",
        5_000,
    ),
    "graph_ridge_fixed": (
        "cj.simulate_graph(cj.Ridge(dim=5), cj.InteractionGraph.complete(3, 0.2), n=50, generations=100,"
        " chains=chains, seed=0, progress=False, keep='summary')",
        2_000,
    ),
}

# Run in the child with argv = [tree, call, chains]; prints one JSON line.
CHILD = """
import json, sys, time
from pathlib import Path
import collapse_jax as cj
tree = Path(sys.argv[1]).resolve()
where = Path(cj.__file__).resolve()
assert where.is_relative_to(tree), f"collapse_jax imported from {where}, not under {tree}"
chains = int(sys.argv[3])
call = compile(sys.argv[2], "<workload>", "eval")
t0 = time.perf_counter()
eval(call)
t1 = time.perf_counter()
eval(call)
t2 = time.perf_counter()
print(json.dumps({"compile_s": t1 - t0, "run_s": t2 - t1, "collapse_jax": str(where)}))
"""


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def child_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    for k in ("COLLAPSE_JAX_TEST_CACHE", "JAX_COMPILATION_CACHE_DIR"):
        env.pop(k, None)
    return env


def measure(tree: Path, call: str, chains: int, timeout: float) -> dict[str, float | str]:
    """One fresh interpreter on ``tree``: compile_s (first call) and run_s (second call)."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), call, str(chains)],
        cwd=tree,
        env=child_env(tree),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"workload failed in {tree} (exit {proc.returncode}):\n{call}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def remove_worktree(path: Path) -> None:
    """Remove the temporary worktree at ``path`` and its entry in the repository (if it was added)."""
    if not (path / ".git").exists():
        return
    done = subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)
    if done.returncode != 0:
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="git revision to compare the working tree against")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="a tenth of the chains")
    p.add_argument("--out", default="benchmarks/results/ab.json")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed to one child")
    p.add_argument("--only", default="", help="comma-separated workload names (default: all)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")

    try:
        base_rev = git("rev-parse", "--verify", f"{args.base}^{{commit}}")
    except subprocess.CalledProcessError:
        p.error(f"--base {args.base!r} is not a commit of this repository")
    head_rev = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain"))
    chosen = [k.strip() for k in args.only.split(",") if k.strip()] or list(WORKLOADS)
    unknown = sorted(set(chosen) - set(WORKLOADS))
    if unknown:
        p.error(f"--only: unknown workloads {unknown}; known: {sorted(WORKLOADS)}")
    workloads = {k: WORKLOADS[k] for k in chosen}
    chains = {k: max(1, c // 10) if args.quick else c for k, (_, c) in workloads.items()}

    tmp = Path(tempfile.mkdtemp(prefix="collapse_jax_ab_"))
    base_tree = tmp / "base"
    trees = {"new": ROOT}
    raw: dict[str, dict[str, list[dict[str, float | str]]]] = {k: {"base": [], "new": []} for k in workloads}
    try:
        git("worktree", "add", "--detach", str(base_tree), base_rev)
        trees["base"] = base_tree
        for r in range(args.repeats):
            order = ("base", "new") if r % 2 == 0 else ("new", "base")
            for name, (call, _) in workloads.items():
                for side in order:
                    t = measure(trees[side], call, chains[name], args.timeout)
                    raw[name][side].append(t)
                    print(
                        f"repeat {r + 1}/{args.repeats} {name} {side}: run {t['run_s']:.3f} s,"
                        f" compile {t['compile_s']:.3f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        remove_worktree(base_tree)
        shutil.rmtree(tmp, ignore_errors=True)

    medians: dict[str, dict[str, dict[str, float]]] = {}
    ratios: dict[str, dict[str, float]] = {}
    for name, sides in raw.items():
        medians[name] = {
            side: {key: float(median(t[key] for t in ts)) for key in ("run_s", "compile_s")}
            for side, ts in sides.items()
        }
        ratios[name] = {key: medians[name]["new"][key] / medians[name]["base"][key] for key in ("run_s", "compile_s")}
    geomean_run = math.exp(sum(math.log(r["run_s"]) for r in ratios.values()) / len(ratios))
    geomean_compile = math.exp(sum(math.log(r["compile_s"]) for r in ratios.values()) / len(ratios))

    result = {
        "benchmark": "ab",
        "base": {"rev": args.base, "commit": base_rev},
        "new": {"tree": str(ROOT), "head": head_rev, "dirty": dirty},
        "config": {
            "repeats": args.repeats,
            "quick": args.quick,
            "order": "base/new alternating, flipped every repeat",
            "workloads": {k: {"call": call, "chains": chains[k]} for k, (call, _) in workloads.items()},
        },
        "median_s": medians,
        "ratio_new_over_base": ratios,
        "geomean_ratio": {"run_s": geomean_run, "compile_s": geomean_compile},
        "raw": raw,
        "machine": machine(),
    }
    out = Path(args.out)
    write_json_atomic(out, result)

    print(f"base {base_rev[:12]} vs working tree (HEAD {head_rev[:12]}{', dirty' if dirty else ''})")
    print("| workload | chains | base run s | new run s | run ratio | base compile s | new compile s | compile ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in workloads:
        b, n, r = medians[name]["base"], medians[name]["new"], ratios[name]
        print(
            f"| {name} | {chains[name]} | {b['run_s']:.3f} | {n['run_s']:.3f} | {r['run_s']:.3f} |"
            f" {b['compile_s']:.3f} | {n['compile_s']:.3f} | {r['compile_s']:.3f} |"
        )
    print(f"| geometric mean | | | | {geomean_run:.3f} | | | {geomean_compile:.3f} |")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
