"""Run every benchmark and write one index (JSON) and one Markdown table of the
headline figures: each benchmark's ratios against its baselines (NumPy vectorised,
per-chain loops, the raw RNG limit, scikit-learn), measured side by side in that
benchmark's own process, plus throughput, scaling curves and peak memory.

Each benchmark runs in its own process (a fresh JAX and clean memory); the device
JAX uses is recorded, so the same command on a GPU machine writes that machine's
figures beside this one's.

    python benchmarks/run_all.py                 # full: about 30 minutes on a 2-core CPU
    python benchmarks/run_all.py --quick         # every benchmark's smoke mode, a few minutes
    python benchmarks/run_all.py --only gaussian pressures
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import machine, write_json_atomic

HERE = Path(__file__).resolve().parent
BENCHES = (
    "gaussian",
    "ridge",
    "gmm",
    "graph",
    "bayes",
    "pressures",
    "matrix",
    "scale",
    "scaling",
    "checkpoint",
    "tails",
    "selection",
    "learned",
    "learned_ceiling",
)
QUICK_ARGS = {"scale": ["--chains", "100000", "--generations", "100"]}


def headline(name: str, data: dict) -> list[tuple[str, float, str]]:
    """(what, value, unit) rows worth quoting from one benchmark's JSON."""
    rows = []
    for key, r in (data.get("ratios") or {}).items():
        value = r.get("value") if isinstance(r, dict) else r
        if isinstance(value, (int, float)):
            rows.append((key, float(value), "x"))
    for key, v in (data.get("ratio_to_plain") or {}).items():
        base = "plain_2d" if key.endswith("_2d") else "plain"
        if key != base:
            rows.append((key if "over" in key else f"{key} / {base}", float(v), "x"))
    for key, v in (data.get("microseconds_per_chain_generation") or {}).items():
        rows.append((key, float(v), "us / chain-generation"))
    cgs = data.get("chain_generations_per_s")
    if isinstance(cgs, (int, float)):
        rows.append(("throughput", float(cgs), "chain-generations / s"))
    elif isinstance(cgs, dict):
        rows += [(k, float(v), "chain-generations / s") for k, v in cgs.items() if isinstance(v, (int, float))]
    if "peak_rss_gib" in data:
        rows.append(("peak resident memory", float(data["peak_rss_gib"]), "GiB"))
        rows.append(("wall time", float(data["wall_s"]), "s"))
    for r in data.get("rows") or []:
        if "us_per_chain_generation" in r:
            what = f"{r['family']}, {r['regime']}, {r['path']}"
            ratio = r.get("ratio_to_replace_samples")
            rows.append((what, r["us_per_chain_generation"], "us / chain-generation"))
            if ratio is not None and not (r["regime"] == "Replace" and r["path"] == "samples"):
                rows.append((f"{what} / Replace samples", ratio, "x"))
    for cname, cur in (data.get("curves") or {}).items():
        for label, ys in cur["series"].items():
            if ys:
                unit = "GiB" if cname.startswith("memory") else "s per run"
                rows.append((f"{cname}: {label} at {cur['x'][len(ys) - 1]:g}", float(ys[-1]), unit))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", nargs="*", choices=BENCHES, default=None)
    p.add_argument("--out-dir", default=None)
    args = p.parse_args(argv)
    out_dir = Path(args.out_dir or HERE / "results" / ("suite_quick" if args.quick else "suite"))
    out_dir.mkdir(parents=True, exist_ok=True)

    index = {"suite": "collapse_jax benchmarks", "quick": args.quick, "machine": machine(), "benchmarks": {}}
    previous = out_dir / "suite.json"
    if args.only and previous.exists():  # a partial rerun updates the index of the last full one
        index["benchmarks"] = json.loads(previous.read_text()).get("benchmarks", {})
    for name in args.only or BENCHES:
        index["benchmarks"].pop(name, None)
        path = out_dir / f"{name}.json"
        cmd = [sys.executable, str(HERE / f"bench_{name}.py"), "--out", str(path)]
        if args.quick:
            cmd += QUICK_ARGS.get(name, ["--quick"])
        print(f"== {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=HERE.parent, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        shown = [str(Path(c).relative_to(HERE.parent)) if c.startswith(str(HERE.parent)) else c for c in cmd[1:]]
        entry = {"command": " ".join(["python", *shown]), "returncode": proc.returncode, "wall_s": wall}
        if proc.returncode == 0 and path.exists():
            entry["json"] = path.name
            entry["headline"] = headline(name, json.loads(path.read_text()))
        index["benchmarks"][name] = entry
        write_json_atomic(out_dir / "suite.json", index)  # after every benchmark: a long suite loses nothing

    lines = [
        f"# Benchmark suite ({'quick' if args.quick else 'full'})",
        "",
        f"Machine: {index['machine'].get('platform', '?')}, {index['machine'].get('cpus', '?')} CPUs, "
        f"JAX {index['machine'].get('jax', '?')} on {index['machine'].get('backend', '?')} "
        f"({', '.join(index['machine'].get('devices', []))}).",
        "",
        "| benchmark | figure | value | unit |",
        "|---|---|---:|---|",
    ]
    for name, entry in index["benchmarks"].items():
        if entry["returncode"] != 0:
            lines.append(f"| {name} | FAILED (exit {entry['returncode']}) | | |")
            continue
        for what, value, unit in entry.get("headline", []):
            lines.append(f"| {name} | {what} | {value:.4g} | {unit} |")
    lines += ["", "Commands: " + "; ".join(f"`{e['command']}`" for e in index["benchmarks"].values())]
    md = out_dir / "SUMMARY.md"
    from collapse_jax.results import atomic_write

    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    print("\n".join(lines))
    failed = [k for k, e in index["benchmarks"].items() if e["returncode"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
