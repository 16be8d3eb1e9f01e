"""README.md works as written: every ```python block runs verbatim in a fresh namespace,
and every command-line example uses commands and flags the CLI has.

A block is skipped only when an HTML comment ``<!-- skip: reason -->`` stands on the line
before it; the reason is shown in the test report. Blocks that compile several programs
take more than the default suite's ~6 s each (tests/README.md) and are marked slow here,
by the heading of their section.
"""

from __future__ import annotations

import ast
import builtins
import re
import shlex
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# section heading slug -> why its block is slow (cold JAX cache, the 2-core CPU shared with other work)
SLOW = {
    "pressures-and-defences": "six programs, one per pressure or defence: 10-18 s",
    "gaussian-mixtures": "EM vmapped over chains: 7-8.5 s",
    "tails-and-scaling-laws": "seven programs, one per paper's setup: about 20 s",
    "selection-curation-verification-editing-teachers": "four programs, one per paper's setup: about 17 s",
    "random-features-collapse-along-the-width": "six widths of 300 ReLU features, eigen-solves per fit: about 15 s",
    "real-data-as-the-truth": "1,000 Gaussian chains on iris with the held-out measures: 9.6 s",
    "neural-generators-on-real-data": "a VAE trained by 100 Adam steps per fit, 64 chains x 4 generations: about 40 s",
}


def _slug(heading: str) -> str:
    words = re.sub(r"\(.*?\)", "", heading).lower()
    return re.sub(r"[^a-z0-9]+", "-", words).strip("-")


def _blocks() -> list[tuple[str, int, str, str | None]]:
    """(id, line number, source, skip reason or None) of every ```python block."""
    lines = README.read_text().splitlines()
    out, section, per_section, i = [], "top", {}, 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = _slug(line.lstrip("#"))
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if fence and fence.group(1) != "python":  # another language: its lines are no headings
            i += 1
            while not re.match(r"^\s*```\s*$", lines[i]):
                i += 1
        if not (fence and fence.group(1) == "python"):
            i += 1
            continue
        start = i + 1
        j = start
        while not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        src = textwrap.dedent("\n".join(lines[start:j]))
        prev = next((ln.strip() for ln in reversed(lines[:i]) if ln.strip()), "")
        skip = re.fullmatch(r"<!--\s*skip:\s*(.+?)\s*-->", prev)
        per_section[section] = per_section.get(section, 0) + 1
        ident = section if per_section[section] == 1 else f"{section}-{per_section[section]}"
        out.append((ident, start + 1, src, skip.group(1) if skip else None))
        i = j + 1
    return out


BLOCKS = _blocks()


def test_readme_has_python_blocks_and_no_stale_slow_entries():
    ids = {b[0] for b in BLOCKS}
    assert len(BLOCKS) >= 5, f"found only {len(BLOCKS)} ```python blocks in README.md"
    assert set(SLOW) <= ids, f"SLOW names sections without a block: {sorted(set(SLOW) - ids)}"


def _free_names(tree: ast.AST) -> set[str]:
    """Names a block reads that neither it nor the builtins define (the block's own
    imports, assignments, loop and comprehension variables count as defined)."""
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound


def _cj_attributes(tree: ast.AST) -> set[str]:
    """Every dotted name ``cj.a.b`` a block reads."""
    found = set()
    for node in ast.walk(tree):
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id == "cj" and parts:
            found.add(".".join(reversed(parts)))
    return found


@pytest.mark.parametrize("ident,line,src,skip", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_readme_block_is_self_contained(ident, line, src, skip):
    """Fast and for every block, skipped ones included: it parses, defines every name it
    uses (its own imports) and every ``cj.`` name it reads exists."""
    import collapse_jax as cj

    tree = ast.parse(src, filename=f"README.md:{line}")
    free = _free_names(tree)
    assert not free, f"README.md block at line {line} uses names it does not define or import: {sorted(free)}"
    for dotted in sorted(_cj_attributes(tree)):
        obj = cj
        for part in dotted.split("."):
            if not hasattr(obj, part):
                # a method of an object the block builds (cj.Schedule.power) or a module attribute must exist
                pytest.fail(f"README.md block at line {line}: cj.{dotted} does not exist")
            obj = getattr(obj, part)


def _run_params():
    params = []
    for ident, line, src, skip in BLOCKS:
        marks = []
        if skip:
            marks.append(pytest.mark.skip(reason=f"README.md line {line}: {skip}"))
        elif ident in SLOW:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(line, src, id=ident, marks=marks))
    return params


@pytest.mark.parametrize("line,src", _run_params())
def test_readme_block_runs(line, src, tmp_path, monkeypatch):
    """The block runs verbatim, alone, in a fresh namespace (and a scratch folder)."""
    monkeypatch.chdir(tmp_path)
    code = compile(src, f"README.md:{line}", "exec")
    namespace: dict = {"__name__": "__readme__"}
    exec(code, namespace)  # an exception fails the test
    assert "cj" in namespace, f"README.md line {line}: the block does not import collapse_jax as cj"


# ------------------------------------------------------------------ command lines
_PROGS = (("collapse-jax",), ("python", "-m", "collapse_jax"), ("python3", "-m", "collapse_jax"))


def _cli_commands() -> list[tuple[str, list[str]]]:
    """(command as written, its argv after the program) for every CLI call in README's
    ```bash blocks and inline code spans."""
    text = README.read_text()
    snippets = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        snippets += [ln.split("  #")[0] for ln in block.replace("\\\n", " ").splitlines()]  # joined continuations
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    snippets += [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", prose)]
    out = []
    for snippet in snippets:
        for part in re.split(r"&&|;|\|", snippet):
            try:
                words = shlex.split(part)
            except ValueError:
                continue
            for prog in _PROGS:
                if tuple(words[: len(prog)]) == prog and len(words) > len(prog):
                    out.append((part.strip(), words[len(prog) :]))
    return out


CLI = _cli_commands()


def test_readme_cli_examples_parse():
    """Every CLI example parses with the CLI's own parser (a misspelt command or flag, or
    a value outside a flag's choices, fails here). Parsed only: nothing is run."""
    from collapse_jax import cli

    commands = {argv[0] for _, argv in CLI}
    assert {"run", "demo", "figures", "info"} <= commands, f"README CLI examples found: {sorted(commands)}"
    parser = cli.build_parser()
    for written, argv in CLI:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"README.md CLI example does not parse: {written!r}")
