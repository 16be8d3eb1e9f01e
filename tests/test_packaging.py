"""The package metadata that `pip install .` reads must agree with the package."""

import re
import tomllib
from pathlib import Path

import collapse_jax as cj

ROOT = Path(__file__).resolve().parents[1]


def test_build_backend_finds_the_version():
    # hatchling reads the version with a regex from the file that pyproject names;
    # a wrong path fails the install before any test runs.
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    source = ROOT / meta["tool"]["hatch"]["version"]["path"]
    assert source.is_file(), source
    found = re.search(r'^__version__\s*=\s*"([^"]+)"', source.read_text(), re.M)
    assert found, f'no __version__ = "..." line in {source}'
    assert found.group(1) == cj.__version__
