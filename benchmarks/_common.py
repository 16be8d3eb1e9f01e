"""Shared by the benchmark scripts (run as ``python benchmarks/bench_*.py``)."""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and ``os.replace``:
    a reader never sees a partial file, and an interrupted run leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def interleaved_times(contenders: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Wall times of ``repeats`` calls of every contender, the order rotated each
    repeat (so slow drifts of a shared machine hit every contender alike), with the
    garbage collector off while a call is timed."""
    times: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            gc.disable()
            t0 = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - t0)
            gc.enable()
    return times


def machine() -> dict[str, Any]:
    """Where a benchmark ran."""
    import jax

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


def log(msg: str) -> None:
    """Progress on stderr (stdout carries the benchmark's table)."""
    print(msg, file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> float:
    """Wall time of one call, garbage collector off while it runs (as timeit does)."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        gc.enable()


REPO = Path(__file__).resolve().parents[1]


def git_info() -> dict[str, Any]:
    """The checkout's commit and whether the library has uncommitted changes (``None``s
    outside a git checkout)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout

    try:
        return {
            "commit": git("rev-parse", "HEAD").strip(),
            "library_modified": bool(git("status", "--porcelain", "--", "collapse_jax").strip()),
        }
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "library_modified": None}


def contender_table(report: dict[str, Any], *, per_chain_generation: bool = False) -> list[str]:
    """Markdown rows of a report's contenders and ratios (a ratio's ``target_kind``
    ``"at_most"`` reads ``<=``, anything else ``>=``; a ``None`` target or verdict ``-``)."""
    us = " us / chain-gen |" if per_chain_generation else ""
    lines = [
        f"| contender | chains x (G+1) | median (s) | chain-gen/s |{us} compile (s) |",
        "|---|---:|---:|---:|" + ("---:|" if per_chain_generation else "") + "---:|",
    ]
    for name, c in report["contenders"].items():
        p = c["params"]
        comp = f"{c['compile_s']:.1f}" if "compile_s" in c else "-"
        per = f" {c['microseconds_per_chain_generation']:.1f} |" if per_chain_generation else ""
        lines.append(
            f"| {name} | {p['chains']} x {p['generations'] + 1} | {c['median_s']:.3f} | "
            f"{c['chain_generations_per_s']:.3g} |{per} {comp} |"
        )
    lines += ["", "| ratio | value | target | met |", "|---|---:|---:|:---:|"]
    for name, r in report["ratios"].items():
        sign = "<=" if r.get("target_kind") == "at_most" else ">="
        t = "-" if r["target"] is None else f"{sign} {r['target']:g}"
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        lines.append(f"| {name} | {r['value']:.3g} | {t} | {met} |")
    return lines
