"""Files that are never half written: atomic writes, sets of files replaced together,
stale temporaries cleaned, and writability checked before a run computes.

A single file is written to a temporary beside it, flushed to disk and renamed into
place. A *set* of files (a result's netCDF file and its CSV summary) is replaced
together or not at all by a small write-ahead journal: every member is first written
to its temporary; then a journal naming the renames is written atomically; then the
renames run and the journal is removed. A save killed before the journal exists
leaves only temporaries (removed by the next save into that folder once their
process is gone); one killed after it is rolled forward by the next save or load of
that result, so a reader through :func:`collapse_jax.load` never sees the new netCDF
file beside the old CSV.

Temporaries are named ``.<target>.cjtmp-<pid>-<random>.tmp``: the process id tells a
stale temporary (its writer is dead) from one that another process is writing now.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

_TMP = re.compile(r"^\..+\.cjtmp-(\d+)-[0-9a-f]+\.tmp$")
JOURNAL_SUFFIX = ".cjsave.json"


class WriteError(OSError):
    """A file could not be written; nothing that existed before was changed."""


def _tmp_path(target: Path) -> Path:
    return target.parent / f".{target.name}.cjtmp-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale(folder: Path) -> list[Path]:
    """Remove temporaries in ``folder`` whose writing process is gone (a save or
    checkpoint killed mid-way). Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TMP.match(p.name)
        if m and not _alive(int(m.group(1))):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _explain(target: Path, exc: OSError, size: int | None = None) -> WriteError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        free = shutil.disk_usage(target.parent).free if target.parent.exists() else 0
        need = f", {size:,} bytes needed" if size is not None else ""
        why = f"no space left on the device ({free:,} bytes free{need})"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = f"the folder {str(target.parent)!r} is not writable ({exc.strerror})"
    else:
        why = f"{type(exc).__name__}: {exc}"
    err = WriteError(exc.errno, f"could not write {str(target)!r}: {why}; nothing was replaced")
    return err


def _write_tmp(target: Path, content: bytes | Callable[[str], object]) -> Path:
    """Write ``content`` (bytes, or a writer called with the temporary's path) to a
    temporary beside ``target``, flushed to disk; removed again on any failure."""
    tmp = _tmp_path(target)
    try:
        if callable(content):
            content(str(tmp))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        else:
            with open(tmp, "xb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # what a plain open() would have given
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise _explain(target, exc, None if callable(content) else len(content)) from exc
        raise
    return tmp


def atomic_write(path, writer: Callable[[str], object] | bytes) -> None:
    """Write one file atomically: ``writer(tmp_path)`` (or the given bytes) goes to a
    temporary beside ``path``, which is renamed onto ``path`` only on success."""
    path = Path(path)
    clean_stale(path.parent)
    tmp = _write_tmp(path, writer)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _explain(path, exc) from exc
    _fsync_dir(path.parent)


def journal_path(first: Path) -> Path:
    return first.parent / f".{first.name}{JOURNAL_SUFFIX}"


def recover(first: Path) -> bool:
    """Finish a set save of which ``first`` is the first member, if one was killed
    after its journal was written (roll forward). Returns whether anything was done."""
    first = Path(first)
    jp = journal_path(first)
    if not jp.exists():
        return False
    try:
        renames = json.loads(jp.read_text())["renames"]
    except (OSError, ValueError, KeyError, TypeError):
        jp.unlink(missing_ok=True)  # a journal is written atomically: an unreadable one is foreign
        return False
    for tmp, target in renames:
        tmp_p, target_p = first.parent / tmp, first.parent / target
        if tmp_p.exists():  # not yet renamed when the save was killed
            os.replace(tmp_p, target_p)
    _fsync_dir(first.parent)
    jp.unlink(missing_ok=True)
    return True


def write_set(files: Mapping[Path, bytes], *, overwrite: bool) -> None:
    """Replace every file of ``files`` (target -> content), all in one folder,
    together or not at all. Refuses (FileExistsError) to replace an existing file
    unless ``overwrite``."""
    targets = [Path(p) for p in files]
    folder = targets[0].parent
    if any(t.parent != folder for t in targets):
        raise ValueError("write_set: every file of a set must be in one folder")
    clean_stale(folder)
    recover(targets[0])
    if not overwrite:
        existing = [str(t) for t in targets if t.exists()]
        if existing:
            raise FileExistsError(
                errno.EEXIST, f"{existing[0]!r} exists; pass overwrite=True to replace it (nothing was written)"
            )
    tmps: list[Path] = []
    try:
        for t, content in zip(targets, files.values()):
            tmps.append(_write_tmp(t, content))
        journal = json.dumps({"renames": [[tmp.name, t.name] for tmp, t in zip(tmps, targets)]})
        atomic_write(journal_path(targets[0]), journal.encode())
    except BaseException:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise
    recover(targets[0])


def check_writable(folder, what: str) -> Path:
    """Create ``folder`` if needed and prove that a file can be written there (a
    probe file is created and removed), else a ValueError naming ``what``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what}: {str(folder)!r} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = _tmp_path(folder / "probe")
        with open(probe, "xb"):
            pass
        probe.unlink()
    except OSError as exc:
        raise ValueError(
            f"{what}: cannot write into {str(folder)!r} ({exc.strerror or exc}); choose a writable location"
        ) from None
    return folder
