"""The documentation site (docs/): every public name has an API entry, the site builds
with warnings as errors, and the tutorials' code runs.

The API pages (docs/api/**/*.rst) name every object by its full path in an autodoc
directive (``.. autoclass:: collapse_jax.Gaussian``); the first tests read those lines,
so they need neither sphinx nor a build.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import time

import pytest

import collapse_jax as cj

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
API = os.path.join(DOCS, "api")
_KINDS = "function|class|data|module|exception|attribute|method"
_DIRECTIVE = re.compile(rf"^\s*\.\. (?:auto|py:)(?:{_KINDS})::\s+(\S+)", re.M)
TUTORIALS = ["index.md", "tutorials/quickstart.md", "tutorials/mixing.md", "tutorials/graph.md", "tutorials/jax.md"]


def _documented() -> dict[str, str]:
    """Every name an API page documents, mapped to the page."""
    found = {}
    for folder, _, files in os.walk(API):
        for name in files:
            if name.endswith((".rst", ".md")):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    for match in _DIRECTIVE.finditer(f.read()):
                        found.setdefault(match.group(1), os.path.relpath(path, DOCS))
    return found


def _public(module) -> list[str]:
    """A module's public names: its ``__all__``, else every name not starting with ``_``
    (the package itself re-exports with ``from ._x import Y as Y``)."""
    names = getattr(module, "__all__", None)
    return sorted(names if names is not None else (n for n in dir(module) if not n.startswith("_")))


def _theory_submodules() -> list:
    return [
        obj
        for name in _public(cj.theory)
        if inspect.ismodule(obj := getattr(cj.theory, name)) and obj.__name__.startswith("collapse_jax.theory.")
    ]


def test_api_pages_document_every_public_name():
    documented = _documented()
    missing = [f"collapse_jax.{n}" for n in _public(cj) if f"collapse_jax.{n}" not in documented]
    missing += [f"collapse_jax.theory.{n}" for n in _public(cj.theory) if f"collapse_jax.theory.{n}" not in documented]
    subs = _theory_submodules()
    assert {m.__name__.rsplit(".", 1)[1] for m in subs} >= {"gaussian", "mixing", "bayes", "graph"}, subs
    for mod in subs:
        for n in _public(mod):
            # a re-exported closed form is documented once, as cj.theory.<name>
            reexported = getattr(cj.theory, n, None) is getattr(mod, n) and f"collapse_jax.theory.{n}" in documented
            if f"{mod.__name__}.{n}" not in documented and not reexported:
                missing.append(f"{mod.__name__}.{n}")
    assert not missing, (
        f"{len(missing)} public names have no API entry in docs/api/: {missing}. Add an autodoc directive "
        "(`.. autofunction:: collapse_jax.NAME`, `.. autoclass::`, `.. autodata::`, `.. automodule::`) "
        "to the page where the name belongs."
    )


def test_api_pages_name_only_existing_objects():
    """A stale entry (a renamed or removed name) would only show at build time."""
    stale = []
    for name, page in _documented().items():
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                stale.append(f"{page}: {name}")
            break
        else:
            stale.append(f"{page}: {name}")
    assert not stale, f"API pages name objects that do not exist: {stale}"


def test_existing_docs_are_pages_of_the_site():
    with open(os.path.join(DOCS, "index.md"), encoding="utf-8") as f:
        index = f.read()
    for page in ("ARCHITECTURE", "THEORY", "benchmarks", "api/index", "tutorials/extending"):
        assert re.search(rf"^{re.escape(page)}$", index, re.M), f"docs/index.md's toctrees lack {page}"
    with open(os.path.join(DOCS, "tutorials", "extending.md"), encoding="utf-8") as f:
        assert "{include} ../EXTENDING.md" in f.read()


def _sphinx_missing() -> str | None:
    missing = [m for m in ("sphinx", "furo", "myst_parser") if importlib.util.find_spec(m) is None]
    return f"the docs extra is not installed (missing {', '.join(missing)}): pip install '.[docs]'" if missing else None


@pytest.mark.slow  # .ci/run runs the same build (python3 docs/build.py)
@pytest.mark.skipif(_sphinx_missing() is not None, reason=str(_sphinx_missing()))
def test_site_builds_with_warnings_as_errors(tmp_path):
    """The whole site, docstrings included, with -W (about 20 s on 2 CPU cores)."""
    spec = importlib.util.spec_from_file_location("_docs_build", os.path.join(DOCS, "build.py"))
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    start = time.perf_counter()
    proc = subprocess.run(
        build.command(str(tmp_path / "html")), capture_output=True, text=True, timeout=900, cwd=os.path.dirname(DOCS)
    )
    took = time.perf_counter() - start
    problems = [line for line in proc.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert proc.returncode == 0, f"sphinx-build -W failed after {took:.0f} s:\n" + "\n".join(problems or [proc.stderr])
    for page in ("index.html", "api/simulate.html", "tutorials/graph.html", "THEORY.html", "benchmarks.html"):
        assert (tmp_path / "html" / page).is_file(), page


def _python_blocks(page: str) -> list[str]:
    with open(os.path.join(DOCS, page), encoding="utf-8") as f:
        return re.findall(r"^```python\n(.*?)^```", f.read(), re.S | re.M)


@pytest.mark.slow
@pytest.mark.parametrize("page", TUTORIALS)
def test_tutorial_code_runs(page, tmp_path):
    """Every ```python block of a page, in order, in one fresh interpreter (10-40 s each)."""
    blocks = _python_blocks(page)
    assert blocks, f"{page} has no python code blocks"
    script = "\n\n".join(f"# --- block {i}\n{b}" for i, b in enumerate(blocks))
    (tmp_path / "page.py").write_text(script, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "page.py")], capture_output=True, text=True, timeout=900, cwd=tmp_path
    )
    assert proc.returncode == 0, f"{page}: the code fails:\n{proc.stderr[-4000:]}"


DOCTEST_MODULES = [
    "collapse_jax.engine.simulate",
    "collapse_jax.engine.compose",
    "collapse_jax.config",
    "collapse_jax.theory.traced",
    "collapse_jax.results.result",
    "collapse_jax.families.ngram",
    "collapse_jax.families.categorical",
]


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples_run(name):
    """The ``Examples:`` of the main docstrings run as doctests."""
    import doctest
    import importlib

    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False, report=True)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed (see above)"
