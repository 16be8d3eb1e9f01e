"""Build the documentation site: ``python docs/build.py`` (from anywhere).

Runs ``sphinx-build -W --keep-going -b html docs build/docs/html``: every warning,
a docstring's reStructuredText included, fails the build, after all of them have been
reported. Needs the ``docs`` extra (``python -m pip install ".[docs]"``: sphinx, furo,
myst-parser). Open ``build/docs/html/index.html`` afterwards (``build/`` is git-ignored).

Options:
    --out DIR          where the HTML goes (default build/docs/html)
    --clean            rebuild everything (a docstring change alone does not mark a
                       page stale: use this after editing docstrings)
    --allow-warnings   report warnings without failing (for local drafts only; the
                       site and tests/test_docs.py build with -W)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

DOCS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DOCS)


def command(out: str, *, warnings_as_errors: bool = True, fresh: bool = False) -> list[str]:
    """The sphinx-build command line for an HTML build of ``docs/`` into ``out``."""
    cmd = [sys.executable, "-m", "sphinx", "--keep-going", "-b", "html"]
    if warnings_as_errors:
        cmd.insert(3, "-W")
    if fresh:
        cmd.append("-E")
    return cmd + [DOCS, out]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "docs", "html"))
    parser.add_argument("--clean", action="store_true")
    parser.add_argument("--allow-warnings", action="store_true")
    args = parser.parse_args(argv)
    if args.clean and os.path.isdir(args.out):
        shutil.rmtree(args.out)
    cmd = command(args.out, warnings_as_errors=not args.allow_warnings, fresh=args.clean)
    print(" ".join(cmd), flush=True)
    start = time.perf_counter()
    rc = subprocess.call(cmd)
    print(f"docs/build.py: exit {rc} after {time.perf_counter() - start:.1f} s; {args.out}/index.html", flush=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
