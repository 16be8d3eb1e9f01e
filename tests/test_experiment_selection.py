"""experiments/selection.py runs end to end in its --smoke mode and writes its outputs."""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "experiments") not in sys.path:
    sys.path.insert(0, str(ROOT / "experiments"))  # the scripts share experiments/_common.py, as when run as files

SMOKE_NOTE = "its sizes support no comparison with theory"
VERDICTS = ("|z|", "match", "(theory", "half-life", "argmin", "optimal w", "real fraction for")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _no_verdicts(out: str) -> None:
    """A smoke run says it is one and prints no comparison its sizes cannot support."""
    assert SMOKE_NOTE in out, out
    for word in VERDICTS:
        assert word not in out, f"a smoke run printed {word!r}:\n{out}"


@pytest.mark.slow  # about 45 s with a cold compilation cache (eleven programs)
def test_selection_smoke(tmp_path, capsys):
    mod = _load("selection")
    assert mod.main(["--smoke", "--out", str(tmp_path)]) == 0
    _no_verdicts(capsys.readouterr().out)
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"selection_smoke.{ext}").stat().st_size > 0
    with open(tmp_path / "selection_smoke.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["panel"] for r in rows} == {"a1", "a2", "b", "c", "d", "e"}
    for r in rows:
        for col in ("mc_value", "mc_se", "theory", "theory_se", "z"):
            assert math.isfinite(float(r[col])), r
    G = max(int(float(r["x"])) for r in rows if r["panel"] == "e")

    def series(panel, name):
        picked = (r for r in rows if (r["panel"], r["series"]) == (panel, name))
        return [(float(r["x"]), float(r["mc_value"]), float(r["theory"])) for r in picked]

    # (a1) curation: more data and more candidates both make fixing on the disfavoured category rarer
    fix2, fix4 = series("a1", "Replace, K = 2"), series("a1", "Replace, K = 4")
    assert [t for *_, t in fix2] == sorted((t for *_, t in fix2), reverse=True)
    assert all(t4 < t2 for (*_, t2), (*_, t4) in zip(fix2, fix4))
    # (a2) fresh real data keep the chain off the reward's argmax
    for k in (2, 4):
        rep, fresh = series("a2", f"Replace, K = {k}"), series("a2", f"FreshMix(0.2), K = {k}")
        assert all(tf < tr for (*_, tr), (*_, tf) in zip(rep, fresh))
    # (b) a verifier that accepts everything is Replace: n E e_G^2 = G + 1 (the numerical chain reproduces it)
    ver = series("b", "Replace + verifier")
    assert [fa for fa, *_ in ver][-1] == 1.0 and ver[-1][2] == pytest.approx(G + 1, rel=1e-3)
    assert [t for *_, t in ver] == sorted(t for *_, t in ver)
    # (c) AccumulateMix: a larger fresh share ends lower
    last = [series("c", f"a = {a:g}")[-1][2] for a in (0.0, 0.1, 0.3, 0.5, 0.7)]
    assert last == sorted(last, reverse=True)
    # (d) strong model collapse: no teacher is 1/(n - 2); at the largest n the teacher's share orders the error
    for n, _m, t in series("d", "p = 0"):
        assert t == pytest.approx(1 / (n - 2), rel=1e-5)
    big = [series("d", f"p = {p:g}")[-1][1] for p in (0.0, 0.1, 0.3)]
    assert big == sorted(big)
    # (e) ToEdit: generation 0 is one shared fit; f = 1 is Replace, d (g + 1) / (n - d - 1)
    g0 = {r["mc_value"] for r in rows if r["panel"] == "e" and float(r["x"]) == 0}
    assert len(g0) == 1
    for g, _m, t in series("e", "f = 1"):
        assert t == pytest.approx(4 * (g + 1) / 15, rel=1e-5)
