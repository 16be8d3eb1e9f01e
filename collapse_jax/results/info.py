"""What a result records about how it was made: versions and platform (:func:`run_info`),
and the command line, times, source revision and memory budget (:func:`provenance`)."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np


def run_info() -> dict:
    """Versions and platform, stored with every result."""
    import equinox
    import jax
    import jaxlib

    from .._version import __version__

    return {
        "collapse_jax": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "equinox": equinox.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


def git_revision() -> str | None:
    """The git commit of the package's source tree when it runs from a checkout
    (``None`` for an installed copy), read from ``.git`` without running git."""
    here = Path(__file__).resolve().parents[2]
    git = here / ".git"
    try:
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            git = (here / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except (OSError, IndexError):
        return None
    return None


def provenance(started: float, wall: float, max_memory: int | None = None) -> dict:
    """How a result was made, beside :func:`run_info`: the command line, the start
    time (UTC, ISO 8601), the wall time in seconds, the source revision when known
    and the memory budget (what :meth:`Result.rerun` reuses)."""
    import datetime
    import sys

    out = {
        "argv": list(sys.argv),
        "started": datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(timespec="seconds"),
        "wall_s": round(float(wall), 3),
        "git_revision": git_revision(),
    }
    if max_memory is not None:
        out["max_memory"] = int(max_memory)
    return out
