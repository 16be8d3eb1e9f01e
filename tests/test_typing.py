"""The package type-checks: mypy, with the project's configuration ([tool.mypy] in
pyproject.toml), reports no errors in collapse_jax.

``COLLAPSE_JAX_MYPY_CONFIG=path`` checks with another configuration file instead (a
mypy.ini, setup.cfg or pyproject.toml). mypy runs in a child process without a cache,
as on a fresh checkout: about 10 s and 600 MB on two cores. (In this process,
``mypy.api.run`` takes as long and then another 10-20 s to free what it built.)
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"


def _config() -> str:
    """The configuration file mypy reads; skips while pyproject.toml has no [tool.mypy]."""
    chosen = os.environ.get("COLLAPSE_JAX_MYPY_CONFIG")
    if chosen:
        return chosen
    with open(PYPROJECT, "rb") as f:
        if "mypy" not in tomllib.load(f).get("tool", {}):
            pytest.skip("pyproject.toml has no [tool.mypy] section (or set COLLAPSE_JAX_MYPY_CONFIG)")
    return str(PYPROJECT)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed (pip install mypy)")
def test_package_type_checks():
    config = _config()
    cmd = [sys.executable, "-m", "mypy", "--config-file", config, f"--cache-dir={os.devnull}", "collapse_jax"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mypy (config {config}) exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}"
