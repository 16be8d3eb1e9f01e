"""Sphinx configuration of the collapse_jax documentation site.

Build (from the repository root): ``python docs/build.py`` (``sphinx-build -W --keep-going
-b html docs build/docs/html``). Everything works offline: no intersphinx inventories,
and no page needs MathJax (THEORY.md writes its formulas in Unicode).
"""

from __future__ import annotations

import os
import sys

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, _ROOT)  # the package imports from the checkout even when not installed

from collapse_jax import __version__  # noqa: E402

project = "collapse_jax"
author = "collapse_jax contributors"
copyright = "collapse_jax contributors"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# EXTENDING.md is a page through tutorials/extending.md, which includes it.
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "EXTENDING.md"]

# MyST: anchors for headings down to ###, so pages can link to "page.md#section". No
# dollarmath: the Markdown pages write formulas in Unicode and plain text, and "$" stays "$".
myst_heading_anchors = 3

# autodoc + napoleon: Google-style docstrings with Sphinx roles.
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_preserve_defaults = True
# Keep the theory modules' aliases by name instead of expanding NumPy's unions.
autodoc_type_aliases = {
    "ArrayLike": "numpy.typing.ArrayLike",
    "NDArray": "numpy.typing.NDArray",
    "FloatOrArray": "collapse_jax.theory.gaussian.FloatOrArray",
}
# Sphinx 9 prints an alias nested in a generic (tuple[FloatOrArray, ...]) by its repr,
# "TypeAliasForwardRef('...')": print the alias's name instead.
try:
    from sphinx.util.inspect import TypeAliasForwardRef as _AliasRef

    _AliasRef.__repr__ = lambda self: self.name
except ImportError:  # another Sphinx: nothing to patch
    pass
# Docstrings' literal blocks (formulas) and unlabelled code fences are plain text.
highlight_language = "text"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
add_module_names = False
python_display_short_literal_types = True

html_theme = "furo"
html_title = f"collapse_jax {release}"
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": True,
}


# --------------------------------------------------------------------------- benchmark tables
# The benchmarks write JSON (benchmarks/results/*.json); docs/benchmarks.md renders them at
# build time with two small directives, so the page never drifts from the committed results.
import glob  # noqa: E402
import json  # noqa: E402

from docutils import nodes  # noqa: E402
from docutils.parsers.rst import Directive, directives  # noqa: E402


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return str(v)


def _table(header: list[str], rows: list[list[str]], title: str | None = None) -> nodes.table:
    table = nodes.table(classes=["benchmark-table"])
    if title:
        table += nodes.title(text=title)
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    body = nodes.tbody()
    group += body
    for target, cells in ((head, [header]), (body, rows)):
        for cells_row in cells:
            row = nodes.row()
            for cell in cells_row:
                entry = nodes.entry()
                entry += nodes.paragraph(text=cell)
                row += entry
            target += row
    return table


def _figures(data: dict, keys: list[str]) -> list[list[str]]:
    """Rows (figure, value, detail) from the numbers under ``keys`` of a result file."""
    rows = []
    for key in keys:
        value = data[key]
        if not isinstance(value, dict):
            rows.append([key, _fmt(value), ""])
            continue
        for name, v in value.items():
            label = name if len(keys) == 1 else f"{key}: {name}"
            if isinstance(v, dict) and "value" in v:
                detail = v.get("description", "")
                if v.get("target") is not None:
                    met = {True: "met", False: "not met"}.get(v.get("met"), "")
                    detail = f"{detail}; target {_fmt(v['target'])} {met}".strip("; ")
                rows.append([label, _fmt(v["value"]), detail])
            else:
                rows.append([label, _fmt(v), ""])
    return rows


class BenchmarkJson(Directive):
    """``benchmark-json PATH``: a table of one result file (PATH from the repository root).

    Options: ``keys`` (comma-separated top-level keys whose numbers become rows: figure,
    value, detail) or ``rows`` (a key holding a list of records) with ``columns``.
    The table's caption gives the file, its configuration and its machine."""

    required_arguments = 1
    option_spec = {"keys": directives.unchanged, "rows": directives.unchanged, "columns": directives.unchanged}

    def run(self):
        rel = self.arguments[0]
        path = os.path.join(_ROOT, rel)
        self.state.document.settings.env.note_dependency(path)
        with open(path) as f:
            data = json.load(f)
        if "rows" in self.options:
            columns = [c.strip() for c in self.options["columns"].split(",")]
            rows = [[_fmt(rec.get(c, "")) for c in columns] for rec in data[self.options["rows"]]]
            header = [c.replace("_over_", " / ").replace("_", " ") for c in columns]
            table = _table(header, rows, rel)
        else:
            keys = [k.strip() for k in self.options["keys"].split(",")]
            rows = _figures(data, keys)
            if any(r[2] for r in rows):
                table = _table(["figure", "value", "detail"], rows, rel)
            else:
                table = _table(["figure", "value"], [r[:2] for r in rows], rel)
        out = [table]
        notes = []
        if "config" in data:
            notes.append("Configuration: " + _fmt(data["config"]) + ".")
        machine = data.get("machine", {})
        if machine:
            cpus = machine.get("cpus", machine.get("cpu_count", "?"))
            notes.append(f"Machine: {cpus} CPUs, JAX {machine.get('jax', '?')} on {machine.get('backend', '?')}.")
        if notes:
            out.append(nodes.paragraph(text=" ".join(notes), classes=["benchmark-note"]))
        return out


class BenchmarkAB(Directive):
    """``benchmark-ab GLOB``: one row per A/B result file (``bench_ab.py``): base and new
    revisions, geometric-mean new/base ratios of the run and the first call, and the
    range of the per-workload run ratios."""

    required_arguments = 1

    def run(self):
        env = self.state.document.settings.env
        rows = []
        for path in sorted(glob.glob(os.path.join(_ROOT, self.arguments[0]))):
            env.note_dependency(path)
            with open(path) as f:
                d = json.load(f)
            run = [r["run_s"] for r in d["ratio_new_over_base"].values()]
            rows.append(
                [
                    os.path.basename(path).removesuffix(".json"),
                    f"{d['base'].get('rev', '?')} → {d['new'].get('head', '?')[:7]}",
                    f"{len(run)} x {d['config'].get('repeats', '?')}",
                    _fmt(d["geomean_ratio"]["run_s"]),
                    f"{min(run):.3g}–{max(run):.3g}",
                    _fmt(d["geomean_ratio"]["compile_s"]),
                ]
            )
        header = ["result", "base → new", "workloads x repeats", "run", "run range", "first call"]
        return [_table(header, rows)]


def setup(app):
    app.add_directive("benchmark-json", BenchmarkJson)
    app.add_directive("benchmark-ab", BenchmarkAB)
    return {"parallel_read_safe": True}
