"""Peak memory of writing and reading a checkpoint: the archive streamed straight into
the file (``collapse_jax.engine.checkpoint``) against the former method, reimplemented
here as the baseline (the whole ``.npz`` archive built in a ``BytesIO`` and copied out
with ``getvalue()``; the digest over ``tobytes()`` copies of every array).

Each measurement runs in a fresh process holding a state of about ``--mib`` MiB
(a checkpoint's layout: a few large per-chain arrays, a carry, a streamed summary).
Extra memory is the peak *beyond the state*, two ways: the resident high-water mark
(``/proc/self/clear_refs`` resets VmHWM; Linux only; every allocation of 64 KiB or more
mapped on its own, ``MALLOC_MMAP_THRESHOLD_``, so freed buffers leave the resident set)
and Python's ``tracemalloc`` peak (numpy reports its buffers to it). Medians over
``--repeats`` processes per method, their order alternated.

    python benchmarks/bench_checkpoint.py [--mib 400] [--repeats 3] [--quick] \\
        [--out benchmarks/results/checkpoint_memory.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_json_atomic

HERE = Path(__file__).resolve().parent

CHILD = r"""
import ctypes, ctypes.util, gc, hashlib, io, json, os, sys, time, tracemalloc
from pathlib import Path
import numpy as np
from collapse_jax._files import atomic_write
from collapse_jax.engine import checkpoint as ck

method, op, mib, folder = sys.argv[1], sys.argv[2], float(sys.argv[3]), Path(sys.argv[4])

def status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key + ":"))

def old_digest(arrays, meta):
    h = hashlib.sha256()
    h.update(json.dumps({k: meta.get(k) for k in ("format", "config", "skeleton")}, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()

def old_save(path, config, state):  # collapse_jax 0.x before the streamed writer
    arrays = {}
    skeleton = ck._flatten(state, "state", arrays)
    meta = {"format": ck.FORMAT, "config": config, "skeleton": skeleton}
    meta["digest"] = old_digest(arrays, json.loads(json.dumps(meta)))
    def write(tmp):
        buf = io.BytesIO()
        np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
        with open(tmp, "wb") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
    atomic_write(Path(path), write)

def old_load(path):
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["__meta__"]).decode())
        data = {k: z[k] for k in z.files if k != "__meta__"}
    assert old_digest(data, meta) == meta["digest"]
    return ck._unflatten(meta["skeleton"], data)

def new_load(path):
    meta, data = ck._open(path, arrays=True)
    return ck._unflatten(meta["skeleton"], data)

# a checkpoint's layout: per-chain metric arrays (chains x generations), a carry, a summary
chains, gens = 4096, max(1, int(mib * 2**20 / (4096 * 4 * 2.5)))
rng = np.random.default_rng(0)
state = {
    "next_chunk": 3, "next_block": 0, "done": 12345,
    "carry": [rng.standard_normal((chains, gens // 2), dtype=np.float32), np.arange(chains, dtype=np.int32)],
    "host": {"metrics": {m: rng.standard_normal((chains, gens), dtype=np.float32) for m in ("variance", "mse")}},
    "acc": {"count": np.array(7), "sum": rng.standard_normal((2, gens)), "sumsq": rng.standard_normal((2, gens))},
}
arrays = {}
ck._flatten(state, "state", arrays)
state_bytes = sum(a.nbytes for a in arrays.values())
config = {"seed": 1, "n": 100}
path = folder / "ckpt.npz"
save = old_save if method == "old" else ck.save
load = old_load if method == "old" else new_load
if op == "load":
    ck.save(path, config, state)  # the same file for both loaders
    del state, arrays
libc = ctypes.CDLL(ctypes.util.find_library("c"))

def measure(fn):
    gc.collect(); libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM to the current resident set
    base = status("VmRSS")
    t = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t
    rss = status("VmHWM") - base
    del out
    gc.collect(); libc.malloc_trim(0)
    tracemalloc.start()
    base_t = tracemalloc.get_traced_memory()[0]
    out = fn()
    peak_t = tracemalloc.get_traced_memory()[1] - base_t
    tracemalloc.stop()
    return {"extra_rss_mib": rss / 2**20, "extra_tracemalloc_mib": peak_t / 2**20, "wall_s": wall}

fn = (lambda: save(path, config, state)) if op == "save" else (lambda: load(path))
res = measure(fn)
res.update(state_mib=state_bytes / 2**20, file_mib=path.stat().st_size / 2**20)
print(json.dumps(res))
"""


def run_child(method: str, op: str, mib: float, folder: str) -> dict:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = str(HERE.parent) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, method, op, str(mib), folder], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"{method} {op} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", type=float, default=400.0, help="size of the state, MiB")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="a 40 MiB state, one repeat")
    p.add_argument("--out", default=str(HERE / "results" / "checkpoint_memory.json"))
    args = p.parse_args(argv)
    mib, repeats = (40.0, 1) if args.quick else (args.mib, args.repeats)
    runs: dict[str, dict[str, list[dict]]] = {op: {"old": [], "new": []} for op in ("save", "load")}
    t0 = time.time()
    with tempfile.TemporaryDirectory(dir=HERE) as folder:
        for op in ("save", "load"):
            for r in range(repeats):
                for method in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    runs[op][method].append(run_child(method, op, mib, folder))
    first = runs["save"]["new"][0]
    result: dict = {
        "benchmark": "checkpoint peak memory beyond the state (old: archive built in memory; new: streamed)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "state_mib": first["state_mib"],
        "file_mib": first["file_mib"],
        "repeats": repeats,
        "median": {},
        "saved_rss_mib": {},
        "runs": runs,
        "total_s": time.time() - t0,
    }
    for op in ("save", "load"):
        keys = ("extra_rss_mib", "extra_tracemalloc_mib", "wall_s")
        med = {m: {k: statistics.median(r[k] for r in runs[op][m]) for k in keys} for m in ("old", "new")}
        if op == "load":  # what a load holds beyond the state it returns
            for m in med:
                med[m]["beyond_state_rss_mib"] = med[m]["extra_rss_mib"] - first["state_mib"]
        result["median"][op] = med
        result["saved_rss_mib"][op] = med["old"]["extra_rss_mib"] - med["new"]["extra_rss_mib"]
    write_json_atomic(Path(args.out), result)
    print(json.dumps({k: result[k] for k in ("state_mib", "file_mib", "median", "saved_rss_mib")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
