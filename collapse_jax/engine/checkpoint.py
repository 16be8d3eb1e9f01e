"""Checkpoints of a running ``simulate``: everything the host holds after a finished
block of generations (the result's arrays, the streamed summary, the chunk's carry),
written atomically, so that a killed run, rerun with the same arguments, resumes
where it stopped and ends with the result an uninterrupted run gives.

File format (no pickle: a checkpoint is data, never code): an ``.npz`` archive with
the arrays under flat names plus one JSON entry, ``__meta__``, holding the run's
configuration, the position reached, the nested structure, and a SHA-256 digest of
every array's bytes. The arrays are streamed into the archive, hashed as they are
written, and the metadata goes last, so a write needs no second copy of the state in
memory; a read hashes the loaded arrays in place. A file that fails to parse, whose
digest does not match, or whose configuration differs from the current call's is
refused with a message naming the cause; it is never silently overwritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np

from .._files import atomic_write, check_writable

FORMAT = "collapse_jax checkpoint 1"
# configuration keys that a resumed run takes from its checkpoint instead of choosing them (they
# are picked from the machine and the memory budget, and results must not depend on the machine)
ADOPTED = ("chunk_size", "block")
_CHUNK = 1 << 22  # bytes hashed and written at a time


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used for this run."""


def _flatten(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Nested dicts / lists of arrays and JSON scalars -> a JSON skeleton; arrays go to
    ``arrays`` under a path-like name."""
    if isinstance(obj, dict):
        return {"dict": {str(k): _flatten(v, f"{prefix}/{k}", arrays) for k, v in obj.items()}}
    if isinstance(obj, (list, tuple)):
        return {"list": [_flatten(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array__") and not isinstance(obj, (int, float, bool)):
        arrays[prefix] = np.asarray(obj)
        return {"array": prefix}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise TypeError(f"checkpoint: cannot store {type(obj).__name__} at {prefix}")


def _unflatten(skel: dict, arrays) -> Any:
    if "dict" in skel:
        return {k: _unflatten(v, arrays) for k, v in skel["dict"].items()}
    if "list" in skel:
        return [_unflatten(v, arrays) for v in skel["list"]]
    if "array" in skel:
        return arrays[skel["array"]]
    return skel["value"]


def _contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` in C order, same shape (a copy only when it is not C-contiguous already)."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a).reshape(a.shape)


def _bytes(a: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, without a copy."""
    return a.reshape(-1).view(np.uint8).data


def _start_digest(meta: dict) -> Any:
    """A SHA-256 of the metadata's format, configuration and structure (with the scalar
    positions it holds); :func:`_digest_array` adds every array, in sorted name order."""
    h = hashlib.sha256()
    h.update(json.dumps({k: meta.get(k) for k in ("format", "config", "skeleton")}, sort_keys=True).encode())
    return h


def _digest_array(h: Any, name: str, a: np.ndarray) -> None:
    """Add an array's name, dtype and shape to ``h`` (its bytes are added by the caller).
    A 0-d array's shape is hashed as ``(1,)``, as ``np.ascontiguousarray`` gave it when
    the digest was defined, so that files already written keep their digest."""
    h.update(name.encode())
    h.update(str(a.dtype).encode() + str(a.shape if a.ndim else (1,)).encode())


def _digest(arrays: dict[str, np.ndarray], meta: dict) -> str:
    """SHA-256 over the metadata (format, configuration, structure and the scalar
    positions it holds) and every array's name, dtype, shape and bytes."""
    h = _start_digest(meta)
    for name in sorted(arrays):
        a = _contiguous(arrays[name])
        _digest_array(h, name, a)
        h.update(_bytes(a))
    return h.hexdigest()


def _npy_header(a: np.ndarray) -> bytes:
    """The ``.npy`` header ``np.save`` would write for the C-contiguous array ``a``."""
    buf = io.BytesIO()
    d = np.lib.format.header_data_from_array_1_0(a)
    try:
        np.lib.format.write_array_header_1_0(buf, d)
    except ValueError:  # a header over 64 KiB (a very large structured dtype)
        buf = io.BytesIO()
        np.lib.format.write_array_header_2_0(buf, d)
    return buf.getvalue()


def _write_archive(fh, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Stream the arrays into the ``.npz`` archive ``fh`` entry by entry (the layout of
    ``np.savez``), hashing each chunk as it is written; the metadata, with the digest,
    goes last. Memory used beyond the arrays themselves: a few small buffers."""
    h = _start_digest(json.loads(json.dumps(meta)))
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name in sorted(arrays):
            a = _contiguous(arrays[name])  # no copy for the usual, contiguous arrays
            if a.dtype.hasobject:
                raise TypeError(f"checkpoint: cannot store an array of Python objects at {name}")
            _digest_array(h, name, a)
            data = _bytes(a)
            with zf.open(name + ".npy", "w", force_zip64=True) as entry:  # force_zip64: as np.savez
                entry.write(_npy_header(a))
                for i in range(0, len(data), _CHUNK):
                    chunk = data[i : i + _CHUNK]
                    h.update(chunk)
                    entry.write(chunk)
        meta = {**meta, "digest": h.hexdigest()}
        with zf.open("__meta__.npy", "w", force_zip64=True) as entry:
            np.lib.format.write_array(entry, np.frombuffer(json.dumps(meta).encode(), np.uint8), allow_pickle=False)


def save(path: Path, config: dict, state: dict) -> None:
    """Write ``state`` (nested dicts of arrays) for the run ``config``, atomically,
    streaming the arrays straight into the file (no copy of the archive in memory)."""
    arrays: dict[str, np.ndarray] = {}
    skeleton = _flatten(state, "state", arrays)
    meta = {"format": FORMAT, "config": config, "skeleton": skeleton}

    def write(tmp):
        with open(tmp, "xb") as fh:
            _write_archive(fh, arrays, meta)
            fh.flush()
            os.fsync(fh.fileno())

    atomic_write(Path(path), write)  # also removes temporaries of writes killed mid-way


def read_config(path: Path) -> dict | None:
    """The configuration stored in a checkpoint (None when there is no file)."""
    meta, _ = _open(path, arrays=False)
    return None if meta is None else meta["config"]


def load(path: Path, config: dict) -> dict | None:
    """The state stored for the run ``config``; None when there is no file. Raises
    :class:`CheckpointError` for a corrupt file or one written by a different run."""
    meta, arrays = _open(path, arrays=True)
    if meta is None:
        return None
    diff = sorted(k for k in set(meta["config"]) | set(config) if meta["config"].get(k) != config.get(k))
    if diff:
        detail = "; ".join(f"{k}: checkpoint {meta['config'].get(k)!r}, this call {config.get(k)!r}" for k in diff[:4])
        raise CheckpointError(
            f"checkpoint {path} was written by a different run ({detail}); "
            "rerun with the original arguments, or remove the file to start afresh"
        )
    return _unflatten(meta["skeleton"], arrays)


def _open(path: Path, arrays: bool):
    path = Path(path)
    if not path.exists():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["__meta__"]).decode())
            data = {k: z[k] for k in z.files if k != "__meta__"} if arrays else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, EOFError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a collapse_jax checkpoint ({type(exc).__name__}: {exc}); "
            "remove it to start afresh"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has an unknown format {meta.get('format')!r}; remove it to start afresh"
        )
    if data is not None and _digest(data, meta) != meta.get("digest"):  # data is None iff not arrays
        raise CheckpointError(
            f"checkpoint {path} is corrupt (its arrays or metadata do not match their digest); remove it"
        )
    return meta, data


class Checkpointer:
    """One run's checkpoint file: validated before anything compiles, then
    ``configure`` (the run's configuration; sizes adopted from an existing
    checkpoint), ``resume`` (restore the host's state) and ``save`` (throttled to
    one write every ``every`` seconds, or forced)."""

    def __init__(self, path, every: float):
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise TypeError(f"simulate: checkpoint must be a file path, got {path!r}")
        self.path = Path(path)
        if self.path.is_dir() or not self.path.parent.is_dir():
            raise ValueError(f"simulate: checkpoint={str(self.path)!r} must be a file in an existing folder")
        # a checkpoint that cannot be written is refused now, not after the first block has computed
        check_writable(self.path.parent, f"simulate: checkpoint={str(self.path)!r}")
        try:
            self.every = float(every)
        except (TypeError, ValueError):
            raise TypeError(f"simulate: checkpoint_every must be a number of seconds, got {every!r}") from None
        if not self.every >= 0:
            raise ValueError(f"simulate: checkpoint_every must be >= 0 seconds, got {every!r}")
        self.config: dict | None = None
        self.last = time.monotonic()
        self.failed: str | None = None  # the first write error, once a write has failed

    def configure(self, config: dict, chunk_size: int, block: int, adopt: bool) -> tuple[int, int]:
        """Fix the configuration the checkpoint is keyed by; a run whose only
        differences from an existing checkpoint are the sizes picked from the
        machine and the budget (``ADOPTED``) takes the checkpoint's sizes."""
        from .._version import __version__

        self.config = json.loads(json.dumps({**config, "block": block, "version": __version__}, default=str))
        previous = read_config(self.path)
        if previous is not None and adopt:
            keys = (set(previous) | set(self.config)) - set(ADOPTED)
            sizes = [previous.get(k) for k in ADOPTED]
            if all(previous.get(k) == self.config.get(k) for k in keys) and all(isinstance(v, int) for v in sizes):
                chunk_size, block = cast("list[int]", sizes)
                self.config.update(chunk_size=chunk_size, block=block)
        return chunk_size, block

    def resume(self, host, acc, prog) -> tuple[int, int, list | None]:
        """(next chunk, next block, the chunk's carry leaves or None), restoring the
        host's arrays, the streamed summary and the progress count."""
        assert self.config is not None, "Checkpointer.configure must come first"
        state = load(self.path, self.config)
        if state is None:
            return 0, 0, None
        host.restore(state["host"])
        if acc is not None:
            acc.restore(state["acc"])
        prog.update(state["done"])
        return state["next_chunk"], state["next_block"], state["carry"]

    def save(self, next_chunk: int, next_block: int, carry, host, acc, prog, force: bool = False) -> None:
        if not (force or time.monotonic() - self.last >= self.every):
            return
        import jax

        state = {
            "next_chunk": next_chunk,
            "next_block": next_block,
            "carry": None if carry is None else [np.asarray(x) for x in jax.tree.leaves(carry)],
            "host": host.state(),
            "acc": acc.state() if acc is not None else None,
            "done": prog.done,
        }
        assert self.config is not None, "Checkpointer.configure must come first"
        try:
            save(self.path, self.config, state)
        except OSError as exc:
            # the run goes on and returns its result in memory; the next write is tried again
            if self.failed is None:
                warnings.warn(
                    f"simulate: checkpoint could not be written ({exc}); the run goes on and its result is "
                    "returned in memory, but it cannot resume from this file if interrupted",
                    RuntimeWarning,
                    stacklevel=4,
                )
            self.failed = str(exc)
        self.last = time.monotonic()
