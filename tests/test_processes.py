"""Several processes (jax.distributed on localhost, CPU): process p runs chunks p, p + P,
... and writes its shard; the merged result equals a one-process run (per-chain arrays,
events and threshold counts exactly; float64 summaries to the order of summation)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import collapse_jax as cj

ROOT = Path(__file__).resolve().parent.parent
ARGS = dict(n=20, generations=12, chains=1000, seed=3, chunk_size=128, keep_chains=200, thresholds={"sd": 0.8})

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax

    pid, port, folder, out, keep = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    jax.distributed.initialize(coordinator_address=f"localhost:{{port}}", num_processes=2, process_id=pid)
    import collapse_jax as cj

    assert jax.process_count() == 2
    res = cj.simulate(cj.Gaussian(), keep=keep, shards=folder, progress=False, shard_timeout=300, **{args})
    res.save(f"{{out}}.{{pid}}.nc")
    """
).format(args=repr(ARGS))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("keep", ["summary", "chains"])
def test_two_processes_equal_one(tmp_path, keep):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(p), port, str(tmp_path / "shards"), str(tmp_path / "r"), keep],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for p in range(2)
    ]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(x[-3000:] for x in logs)

    reference = cj.simulate(cj.Gaussian(), keep=keep, progress=False, **ARGS)
    for merged in (cj.load(tmp_path / "r.0.nc"), cj.load(tmp_path / "r.1.nc"), cj.merge_shards(tmp_path / "shards")):
        assert merged.config["processes"] == 2
        for m in ("variance", "mean_sq_error", "tail_mass"):
            np.testing.assert_array_equal(merged.metrics[m], reference.metrics[m])
            a, b = merged.summary(m), reference.summary(m)
            np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(a["se"], b["se"], rtol=1e-9, atol=1e-15)
        np.testing.assert_array_equal(merged.events["collapse"], reference.events["collapse"])
        np.testing.assert_array_equal(merged.prob_below("sd", 0.8)["p"], reference.prob_below("sd", 0.8)["p"])


def test_merge_refuses_incomplete_or_foreign_shards(tmp_path):
    with pytest.raises(FileNotFoundError, match="no shard files"):
        cj.merge_shards(tmp_path)
    (tmp_path / "shard-00001-of-00002.npz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="missing shards"):
        cj.merge_shards(tmp_path)


INDEPENDENT = dict(n=10, generations=4, chains=64, seed=9, chunk_size=16, keep="chains")
SLURM_SCRIPT = textwrap.dedent(
    """
    import sys
    import collapse_jax as cj

    res = cj.simulate_shard(cj.Gaussian(), process="slurm", shards=sys.argv[1], progress=False, **{args})
    assert res is not None, "the last process finds every shard and merges"
    res.save(sys.argv[2])
    """
).format(args=repr(INDEPENDENT))


def test_independent_processes_merge_to_one_run(tmp_path):
    """Two processes with no coordinator (a SLURM array's task 1 in a subprocess, task 0
    here): each writes its shard; the last one merges; equal to one process bit for bit."""
    shards = tmp_path / "shards"
    first = cj.simulate_shard(cj.Gaussian(), process=(0, 2), shards=shards, progress=False, **INDEPENDENT)
    assert first is None and (shards / "shard-00000-of-00002.npz").exists()
    script = tmp_path / "task.py"
    script.write_text(SLURM_SCRIPT)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "SLURM_ARRAY_TASK_ID": "4",
        "SLURM_ARRAY_TASK_MIN": "3",
        "SLURM_ARRAY_TASK_COUNT": "2",
    }
    done = subprocess.run(
        [sys.executable, str(script), str(shards), str(tmp_path / "merged.nc")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reference = cj.simulate(cj.Gaussian(), progress=False, **INDEPENDENT)
    for merged in (cj.load(tmp_path / "merged.nc"), cj.merge_shards(shards)):
        assert merged.config["processes"] == 2
        for m in reference.metrics:
            np.testing.assert_array_equal(merged.metrics[m], reference.metrics[m])
        np.testing.assert_array_equal(merged.events["collapse"], reference.events["collapse"])
        np.testing.assert_array_equal(merged.nonfinite, reference.nonfinite)


def test_process_argument_is_checked(monkeypatch):
    kw = dict(n=10, generations=1, chains=4, progress=False)
    with pytest.raises(ValueError, match="0 <= p < P"):
        cj.simulate_shard(cj.Gaussian(), process=(2, 2), shards="x", chunk_size=2, **kw)
    with pytest.raises(ValueError, match="chunk_size must be an int"):
        cj.simulate_shard(cj.Gaussian(), process=(0, 2), shards="x", chunk_size=None, **kw)
    with pytest.raises(ValueError, match="pass shards="):
        cj.simulate_shard(cj.Gaussian(), process=(0, 2), shards=None, chunk_size=2, **kw)
    with pytest.raises(TypeError, match="chianz"):
        cj.simulate_shard(cj.Gaussian(), process=(0, 2), shards="x", chunk_size=2, chianz=3, **kw)
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    with pytest.raises(ValueError, match="SLURM array variables"):
        cj.simulate_shard(cj.Gaussian(), process="slurm", shards="x", chunk_size=2, **kw)
