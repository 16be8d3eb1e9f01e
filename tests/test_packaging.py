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


def test_package_metadata():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = meta["project"]
    assert project["license"] == "Apache-2.0" and (ROOT / "LICENSE").is_file()  # PEP 639
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "collapse_jax" / "py.typed").is_file() and (ROOT / "CITATION.cff").is_file()
    deps = [re.split(r"[<>=!~ ]", d)[0] for d in project["dependencies"]]
    assert "jaxlib" not in deps, "jax brings its own jaxlib"
    assert "matplotlib" not in deps, "figures are the 'plot' extra"
    jax = next(d for d in project["dependencies"] if d.startswith("jax"))
    assert "<" in jax, "jax needs an upper bound (a tested range)"
    extras = project["optional-dependencies"]
    assert "all" not in extras and {"plot", "docs", "test"} <= set(extras)
    assert any(d.startswith("matplotlib") for d in extras["plot"])
    cited = meta["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    for doc in ("THEORY.md", "ARCHITECTURE.md", "EXTENDING.md"):
        assert (ROOT / "docs" / doc).is_file() and cited[f"docs/{doc}"] == f"collapse_jax/docs/{doc}"
    cff = (ROOT / "CITATION.cff").read_text()
    assert f'version: "{cj.__version__}"' in cff
