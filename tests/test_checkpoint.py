"""Checkpoint and resume: a run killed mid-way (SIGKILL) and rerun with the same
arguments ends with the result of an uninterrupted run; corrupt or mismatched
checkpoints are refused."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import collapse_jax as cj
from collapse_jax.engine import checkpoint as _checkpoint

ROOT = Path(__file__).resolve().parent.parent
ARGS = dict(n=50, generations=400, chains=4096, seed=11, chunk_size=512, metrics=["variance", "mean_sq_error"])

SCRIPT = textwrap.dedent(
    """
    import sys
    import collapse_jax as cj
    ckpt, out, keep = sys.argv[1], sys.argv[2], sys.argv[3]
    res = cj.simulate(cj.Gaussian(), cj.Replace(), keep=keep, checkpoint=ckpt, checkpoint_every=0.0,
                      progress=False, **{args})
    res.save(out)
    """
).format(args=repr(ARGS))


def _position(path: Path) -> tuple[int, int]:
    meta, arrays = _checkpoint._open(path, arrays=True)
    state = _checkpoint._unflatten(meta["skeleton"], arrays)
    return state["next_chunk"], state["next_block"]


def _run_script(tmp_path: Path, keep: str) -> subprocess.Popen:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "ckpt.npz"), str(tmp_path / "result.nc"), keep], env=env
    )


@pytest.mark.parametrize("keep", ["summary", "chains"])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, keep):
    ckpt, result = tmp_path / "ckpt.npz", tmp_path / "result.nc"
    proc = _run_script(tmp_path, keep)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.exists() and _position(ckpt) >= (1, 0):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not result.exists()  # a killed run leaves no result file
    chunk, block = _position(ckpt)
    assert (chunk, block) >= (1, 0) and chunk < 8  # stopped part-way: 8 chunks of 512 chains

    proc = _run_script(tmp_path, keep)
    assert proc.wait(timeout=600) == 0
    resumed = cj.load(result)
    reference = cj.simulate(cj.Gaussian(), cj.Replace(), keep=keep, progress=False, **ARGS)
    for m in ARGS["metrics"]:
        np.testing.assert_array_equal(np.asarray(resumed.metrics[m]), np.asarray(reference.metrics[m]))
        a, b = resumed.summary(m), reference.summary(m)
        np.testing.assert_array_equal(a["mean"].to_numpy(), b["mean"].to_numpy())
        np.testing.assert_array_equal(a["se"].to_numpy(), b["se"].to_numpy())
    assert _position(ckpt) == (8, 0)  # finished
    assert not list(tmp_path.glob(".*.tmp"))  # no partial file left behind


def test_finished_checkpoint_returns_the_same_result_without_running(tmp_path):
    ckpt = tmp_path / "c.npz"
    kw = dict(n=20, generations=30, chains=300, seed=2, chunk_size=128, progress=False)
    first = cj.simulate(cj.Gaussian(), checkpoint=ckpt, checkpoint_every=0, **kw)
    t = time.perf_counter()
    again = cj.simulate(cj.Gaussian(), checkpoint=ckpt, **kw)
    assert time.perf_counter() - t < 5.0
    np.testing.assert_array_equal(again.metrics["variance"], first.metrics["variance"])


def test_a_mid_chunk_checkpoint_resumes_in_process(tmp_path):
    """Resume from each saved position of a run with one chunk and several blocks (the
    carry is restored from the file)."""
    ckpt = tmp_path / "c.npz"
    kw = dict(n=20, generations=50, chains=200, seed=5, progress=False, keep="summary", keep_chains=50)
    reference = cj.simulate(cj.Gaussian(), **kw)
    cj.simulate(cj.Gaussian(), checkpoint=ckpt, checkpoint_every=0, **kw)
    assert _position(ckpt) == (1, 0)  # finished: one chunk
    ckpt.unlink()
    calls = {"n": 0}
    original = _checkpoint.save

    def stop_after_three(path, config, state):
        original(path, config, state)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as a user's Ctrl-C between blocks

    _checkpoint.save = stop_after_three
    try:
        with pytest.raises(KeyboardInterrupt):
            cj.simulate(cj.Gaussian(), checkpoint=ckpt, checkpoint_every=0, **kw)
    finally:
        _checkpoint.save = original
    assert _position(ckpt) == (0, 3)
    resumed = cj.simulate(cj.Gaussian(), checkpoint=ckpt, **kw)
    for m in ("variance", "mean_sq_error"):
        np.testing.assert_array_equal(resumed.summary(m)["mean"].to_numpy(), reference.summary(m)["mean"].to_numpy())
        np.testing.assert_array_equal(resumed.metrics[m], reference.metrics[m])


def test_mismatched_and_corrupt_checkpoints_are_refused(tmp_path):
    ckpt = tmp_path / "c.npz"
    kw = dict(n=20, generations=10, chains=100, progress=False)
    cj.simulate(cj.Gaussian(), checkpoint=ckpt, seed=1, **kw)
    with pytest.raises(_checkpoint.CheckpointError, match="different run.*seed"):
        cj.simulate(cj.Gaussian(), checkpoint=ckpt, seed=2, **kw)
    with pytest.raises(_checkpoint.CheckpointError, match="different run.*family"):
        cj.simulate(cj.Gaussian(estimator="unbiased"), checkpoint=ckpt, seed=1, **kw)
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the archive
    ckpt.write_bytes(bytes(data))
    with pytest.raises(_checkpoint.CheckpointError, match="corrupt"):
        cj.simulate(cj.Gaussian(), checkpoint=ckpt, seed=1, **kw)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(_checkpoint.CheckpointError, match="corrupt or not"):
        cj.simulate(cj.Gaussian(), checkpoint=ckpt, seed=1, **kw)
    with pytest.raises(ValueError, match="existing folder"):
        cj.simulate(cj.Gaussian(), checkpoint=tmp_path / "missing" / "c.npz", seed=1, **kw)
    with pytest.raises(ValueError, match="checkpoint_every"):
        cj.simulate(cj.Gaussian(), checkpoint=ckpt, checkpoint_every=-1, seed=1, **kw)


def _odd_state() -> dict:
    """Arrays of every layout a state may hold: 0-d, empty, bool, small ints, complex,
    Fortran order, a strided view, big-endian."""
    rng = np.random.default_rng(3)
    grid = rng.standard_normal((6, 5))
    return {
        "next_chunk": 2,
        "carry": [np.array(1.5), np.zeros((0, 3), np.float32), np.array([True, False, True])],
        "host": {
            "ints": np.arange(-4, 4, dtype=np.int8),
            "complex": rng.standard_normal(4) + 1j * rng.standard_normal(4),
            "fortran": np.asfortranarray(grid),
            "strided": grid[::2, 1::2],
            "big_endian": np.arange(5, dtype=">f8"),
        },
        "acc": None,
        "done": 17,
    }


def _assert_same_state(got, want) -> None:
    if isinstance(want, dict):
        assert set(got) == set(want)
        for k in want:
            _assert_same_state(got[k], want[k])
    elif isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _assert_same_state(g, w)
    elif isinstance(want, np.ndarray):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    else:
        assert got == want


def test_streamed_checkpoint_round_trips_every_array_layout(tmp_path):
    ckpt, config = tmp_path / "c.npz", {"seed": 1}
    state = _odd_state()
    _checkpoint.save(ckpt, config, state)
    _assert_same_state(_checkpoint.load(ckpt, config), state)
    with np.load(ckpt, allow_pickle=False) as z:  # still a plain .npz archive
        assert "__meta__" in z.files and z["state/carry/0"].shape == ()
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(TypeError, match="Python objects at state/bad"):
        _checkpoint.save(tmp_path / "d.npz", config, {"bad": np.array([None, 1])})
    assert not (tmp_path / "d.npz").exists() and not list(tmp_path.glob(".*.tmp"))


def _save_in_memory(path: Path, config: dict, state: dict) -> None:
    """How checkpoints were written before they were streamed: the digest over
    ``tobytes()`` of ``np.ascontiguousarray`` copies, the archive built by ``np.savez``."""
    arrays: dict = {}
    skeleton = _checkpoint._flatten(state, "state", arrays)
    meta = {"format": _checkpoint.FORMAT, "config": config, "skeleton": skeleton}
    h = hashlib.sha256()
    h.update(json.dumps({k: meta[k] for k in ("format", "config", "skeleton")}, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    meta["digest"] = h.hexdigest()
    np.savez(path, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)


def test_checkpoints_written_in_memory_still_load(tmp_path):
    ckpt, config = tmp_path / "c.npz", {"seed": 1}
    state = _odd_state()
    _save_in_memory(ckpt, config, state)
    _assert_same_state(_checkpoint.load(ckpt, config), state)
    data = bytearray(ckpt.read_bytes())
    data[data.index(np.arange(5, dtype=">f8").tobytes())] ^= 0x01  # one bit of an array's data
    ckpt.write_bytes(bytes(data))
    with pytest.raises(_checkpoint.CheckpointError, match="corrupt"):
        _checkpoint.load(ckpt, config)
