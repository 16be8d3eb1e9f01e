"""Several processes: process p of P runs chunks p, p + P, p + 2P, ... of the global
chain ids and writes its shard.

Two ways to have several processes:

- JAX's multi-process runtime (``jax.distributed``): after writing its shard every
  process waits at a barrier (``jax.experimental.multihost_utils``) for the others,
  then merges all shards into the one result.
- Independent processes with no coordinator (batch jobs, a SLURM array:
  ``simulate_shard(process=(p, P))`` or ``process="slurm"``): each writes its shard and
  returns; the process that finds every shard in the folder when it is done merges
  them and returns the result, the others return ``None``; ``cj.merge_shards(folder)``
  joins them at any time later.

A shard is a checkpoint-format file (``_checkpoint``: arrays and JSON, digest-checked)
holding the process's rows of the per-chain arrays, chunk by chunk, and its streamed
summary. Merging copies rows by chunk (per-chain arrays, events: identical to one
process) and combines the summaries' moments (Pebay's formulas; float64, equal to one
process's up to the order of summation).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ..metrics import combine_moments
from ..results import Result, run_info
from . import checkpoint as _checkpoint


def resolve_process(process) -> tuple[int, int] | None:
    """``simulate``'s ``process`` argument as ``(p, P)`` (or ``None``): a pair of ints,
    or ``"slurm"`` for a SLURM job array (SLURM_ARRAY_TASK_ID minus
    SLURM_ARRAY_TASK_MIN, of SLURM_ARRAY_TASK_COUNT)."""
    import os

    if process is None:
        return None
    if isinstance(process, str):
        if process != "slurm":
            raise ValueError(f"simulate_shard: process must be (p, P) or 'slurm', got {process!r}")
        names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")
        missing = [k for k in names if k not in os.environ]
        if missing:
            raise ValueError(f"simulate_shard: process='slurm' needs the SLURM array variables; {missing} are not set")
        low = int(os.environ.get("SLURM_ARRAY_TASK_MIN", "0"))
        process = (int(os.environ[names[0]]) - low, int(os.environ[names[1]]))
    ok = isinstance(process, (tuple, list)) and len(process) == 2
    ok = ok and all(isinstance(x, int) and not isinstance(x, bool) for x in process)
    if not ok or not 0 <= process[0] < process[1]:
        raise ValueError(f"simulate_shard: process must be (p, P) with 0 <= p < P, got {process!r}")
    return int(process[0]), int(process[1])


def prepare(shards, checkpoint, p: int, count: int, how: str):
    """Before a run under several processes: the shard folder is required (and made);
    a checkpoint path gets one file per process. Returns the checkpoint path to use."""
    if shards is None:
        raise ValueError(
            f"simulate: this is process {p} of {count} ({how}); "
            "pass shards=<a folder shared by all processes> to merge their results"
        )
    Path(shards).mkdir(parents=True, exist_ok=True)
    if checkpoint is None:
        return None
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}.process{p}of{count}{path.suffix}")


def finish(
    shards, timeout, process, config, block, chunks, chunk_size, n_chunks, n_sweep, dims, host, acc
) -> Result | None:
    """After this process's chunks: write its shard, then (``jax.distributed``) wait at
    a barrier for the others and merge, or (independent processes, ``process`` given)
    merge if every shard is there, else return ``None``."""
    import jax

    independent = process is not None
    p, count = process if independent else (jax.process_index(), jax.process_count())
    meta = {"n_chunks": n_chunks, "n_sweep": n_sweep, "processes": count}
    for k, d in zip(("metric_dims", "diagnostic_dims", "event_dims"), dims):
        meta[k] = {m: list(v) for m, v in d.items()}
    flat = json.loads(json.dumps({**config, "block": block}, default=str))
    write(shards, p, count, flat, chunks, chunk_size, host, acc, meta)
    if independent:
        missing = [q for q in range(count) if not _ready(shard_path(Path(shards), q, count), flat)]
        if missing:
            logging.getLogger("collapse_jax").info(
                "simulate: shard %d of %d written to %s; %d still missing (merge later: cj.merge_shards(%r))",
                p,
                count,
                shards,
                len(missing),
                str(shards),
            )
            return None
        return merge_shards(shards, count)
    if not _barrier():
        return wait_and_merge(shards, count, flat, timeout)
    return merge_shards(shards, count)


def _barrier() -> bool:
    """Wait until every process of ``jax.distributed`` has written its shard; False
    where the backend has no cross-process collectives (then the shards are polled)."""
    try:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("collapse_jax: every shard written")
    except Exception:  # noqa: BLE001 - a backend without multi-process collectives
        logging.getLogger("collapse_jax").info("simulate: no cross-process barrier here; polling the shard folder")
        return False
    return True


def shard_path(folder: Path, p: int, count: int) -> Path:
    return Path(folder) / f"shard-{p:05d}-of-{count:05d}.npz"


def _rows(arrays: dict, start: int, count: int, n_sweep) -> dict:
    if n_sweep:
        return {k: v[:, start : start + count] for k, v in arrays.items()}
    return {k: v[start : start + count] for k, v in arrays.items()}


def write(folder, p: int, count: int, config: dict, chunks, chunk_size: int, host, acc, meta: dict) -> None:
    """Process p's shard: its rows of every per-chain array, by chunk, and its summary."""
    n_sweep = host.n_sweep
    rows = {}
    for ci in chunks:
        start = ci * chunk_size
        keep = host.keep_chains if host.summary else host.chains
        n_rows = max(0, min(chunk_size, keep - start))
        n_events = min(chunk_size, host.chains - start)
        rows[str(ci)] = {
            "metrics": _rows(host.metrics, start, n_rows, n_sweep),
            "diagnostics": _rows(host.diagnostics, start, n_rows, n_sweep),
            "events": _rows(host.events, start, n_events, n_sweep),
            "nonfinite": None if host.nonfinite is None else host.nonfinite[start : start + n_rows],
        }
    state = {"chunks": [int(c) for c in chunks], "rows": rows, "acc": acc.state() if acc is not None else None}
    _checkpoint.save(shard_path(folder, p, count), {**config, "shard_meta": meta}, state)


def wait_and_merge(folder, count: int, config: dict, timeout: float) -> Result:
    """Wait (polling) until all ``count`` shards of this run exist, then merge them."""
    folder = Path(folder)
    deadline = time.monotonic() + timeout
    while True:
        missing = [p for p in range(count) if not _ready(shard_path(folder, p, count), config)]
        if not missing:
            return merge_shards(folder, count)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"simulate: shards of processes {missing} did not appear in {folder} within {timeout:g} s; "
                f"merge them later with cj.merge_shards({str(folder)!r})"
            )
        time.sleep(0.2)


def _ready(path: Path, config: dict) -> bool:
    if not path.exists():
        return False
    stored = _checkpoint.read_config(path)
    return stored is not None and {k: v for k, v in stored.items() if k != "shard_meta"} == config


def merge_shards(folder, count: int | None = None) -> Result:
    """One result from the shards in ``folder`` (every process's chunks exactly once)."""
    folder = Path(folder)
    paths = sorted(folder.glob("shard-*-of-*.npz"))
    if count is None:
        if not paths:
            raise FileNotFoundError(f"merge_shards: no shard files (shard-*-of-*.npz) in {folder}")
        count = int(paths[0].stem.split("-of-")[1])
    paths = [shard_path(folder, p, count) for p in range(count)]
    absent = [str(p) for p in paths if not p.exists()]
    if absent:
        raise FileNotFoundError(f"merge_shards: missing shards {absent}")
    configs: list[dict] = []
    for p in paths:
        c = _checkpoint.read_config(p)
        if c is None:
            raise FileNotFoundError(f"merge_shards: shard {p} vanished while it was read")
        configs.append(c)
    states: list[dict] = []
    for p, c in zip(paths, configs):
        st = _checkpoint.load(p, c)
        if st is None:
            raise FileNotFoundError(f"merge_shards: shard {p} vanished while it was read")
        states.append(st)
    base = {k: v for k, v in configs[0].items() if k != "shard_meta"}
    for p, c in zip(paths, configs):
        if {k: v for k, v in c.items() if k != "shard_meta"} != base:
            raise ValueError(f"merge_shards: {p} belongs to a different run than {paths[0]}")
    meta = configs[0]["shard_meta"]
    chunk_size, chains, n_chunks = base["chunk_size"], base["chains"], meta["n_chunks"]
    owner: dict[int, int] = {}
    for p, st in enumerate(states):
        for ci in st["chunks"]:
            if ci in owner:
                raise ValueError(f"merge_shards: chunk {ci} appears in shards {owner[ci]} and {p}")
            owner[ci] = p
    if sorted(owner) != list(range(n_chunks)):
        raise ValueError(f"merge_shards: chunks {sorted(set(range(n_chunks)) - set(owner))} are in no shard")

    n_sweep = meta["n_sweep"]
    summary = base["keep"] == "summary"
    keep = base["keep_chains"]
    out: dict[str, dict[str, np.ndarray]] = {"metrics": {}, "diagnostics": {}, "events": {}}
    nonfinite = None
    for ci in range(n_chunks):
        rows = states[owner[ci]]["rows"][str(ci)]
        start = ci * chunk_size
        for group in out:
            limit = chains if group == "events" or not summary else keep
            for name, a in rows[group].items():
                if name not in out[group]:
                    lead = (n_sweep,) if n_sweep else ()
                    shape = lead + (limit,) + a.shape[len(lead) + 1 :]
                    out[group][name] = np.full(shape, -1 if group == "events" else 0, a.dtype)
                m = a.shape[1 if n_sweep else 0]
                if n_sweep:
                    out[group][name][:, start : start + m] = a
                else:
                    out[group][name][start : start + m] = a
        if rows["nonfinite"] is not None:
            if nonfinite is None:
                nonfinite = np.zeros((chains,) + rows["nonfinite"].shape[1:], rows["nonfinite"].dtype)
            nonfinite[start : start + len(rows["nonfinite"])] = rows["nonfinite"]

    summary_stats = None
    if summary:
        summary_stats = _merge_summaries([st["acc"] for st in states])
    config = {k: v for k, v in base.items() if k not in ("block", "version")}
    config["processes"] = count
    return Result(
        config=config,
        metrics=out["metrics"],
        diagnostics=out["diagnostics"],
        events=out["events"],
        nonfinite=nonfinite,
        summary_stats=summary_stats,
        metric_dims={k: tuple(v) for k, v in meta["metric_dims"].items()},
        diagnostic_dims={k: tuple(v) for k, v in meta["diagnostic_dims"].items()},
        event_dims={k: tuple(v) for k, v in meta["event_dims"].items()},
        sweep={k: np.asarray(v) for k, v in base["sweep"].items()},
        info=run_info(),
    )


def _merge_summaries(accs: list[dict]) -> dict:
    groups: dict = {"metrics": {}, "diagnostics": {}}
    nonfinite_params = None
    below: dict[str, np.ndarray] = {}
    for acc in accs:
        for group in groups:
            for name, tot in acc["data"].get(group, {}).items():
                prev = groups[group].get(name)
                groups[group][name] = dict(tot) if prev is None else combine_moments(prev, tot)
        if acc["nonfinite_params"] is not None:
            nf = acc["nonfinite_params"]
            nonfinite_params = nf.copy() if nonfinite_params is None else nonfinite_params + nf
        for k, v in acc["below"].items():
            below[k] = v.copy() if k not in below else below[k] + v
    return {"groups": groups, "nonfinite_params": nonfinite_params, "below": below}
