"""Every experiment script runs end to end in its --smoke mode and writes its outputs."""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "experiments") not in sys.path:
    sys.path.insert(0, str(ROOT / "experiments"))  # the scripts share experiments/_common.py, as when run as files


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SMOKE_NOTE = "its sizes support no comparison with theory"
VERDICTS = ("|z|", "match", "(theory", "half-life", "argmin", "optimal w", "real fraction for")


def _no_verdicts(out: str) -> None:
    """A smoke run says it is one and prints no comparison its sizes cannot support."""
    assert SMOKE_NOTE in out, out
    for word in VERDICTS:
        assert word not in out, f"a smoke run printed {word!r}:\n{out}"


def test_study_args_smoke_writes_to_a_scratch_folder(tmp_path, monkeypatch):
    """--smoke without --out never writes into the gallery (paper_figs/)."""
    from _common import SMOKE_OUT, study_args

    monkeypatch.chdir(tmp_path)
    _, chains, gens, out, tag = study_args("doc", ["--smoke"], chains=(3, 30), generations=(4, 40))
    assert (chains, gens, tag, out) == (3, 4, "_smoke", Path(SMOKE_OUT)) and out.is_dir()
    _, chains, gens, out, tag = study_args("doc", [], chains=(3, 30), generations=(4, 40))
    assert (chains, gens, tag, out) == (30, 40, "", Path("paper_figs"))


def test_gmm_collapse_smoke(tmp_path, capsys):
    mod = _load("gmm_collapse")
    assert mod.main(["--smoke", "--out", str(tmp_path)]) == 0
    _no_verdicts(capsys.readouterr().out)
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"gmm_collapse_smoke.{ext}").stat().st_size > 0
    with open(tmp_path / "gmm_collapse_smoke.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["truth"] for r in rows} == {"blob", "minority"} and {r["init"] for r in rows} == {"refit", "warm"}
    sd = {(r["truth"], r["init"], int(r["generation"]), int(r["component"])): float(r["sd_median"]) for r in rows}
    # Replace loses spread: the heaviest component's median sd falls between generations 0 and 50
    for truth in ("blob", "minority"):
        for init in ("refit", "warm"):
            assert np.isfinite(sd[(truth, init, 0, 0)]) and sd[(truth, init, 50, 0)] < sd[(truth, init, 0, 0)]


def test_graph_collapse_smoke(tmp_path, capsys):
    mod = _load("graph_collapse")
    assert mod.main(["--smoke", "--out", str(tmp_path)]) == 0
    _no_verdicts(capsys.readouterr().out)
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"graph_collapse_smoke.{ext}").stat().st_size > 0
    with open(tmp_path / "graph_collapse_smoke.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(mod.TOPOLOGIES) * len(mod.FRACTIONS) * mod.K
    # without real data every node of every topology is predicted to collapse
    assert all(r["predicted_collapse"] == "1" for r in rows if float(r["real_fraction_node0"]) == 0.0)
    # self-loops: only node 0 can see real data, the others always collapse
    assert all(r["predicted_collapse"] == "1" for r in rows if r["topology"] == "self-loops" and r["node"] != "0")


def test_bayes_collapse_smoke(tmp_path, capsys):
    mod = _load("bayes_collapse")
    assert mod.main(["--smoke", "--out", str(tmp_path)]) == 0
    _no_verdicts(capsys.readouterr().out)
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"bayes_collapse_smoke.{ext}").stat().st_size > 0
    with open(tmp_path / "bayes_collapse_smoke.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["panel"] for r in rows} == {"a", "b", "c"}
    theory = {(r["panel"], r["learner"], float(r["x"])): float(r["theory"]) for r in rows}
    # a prior centred on the truth bounds the error where the flat-prior MLE grows without bound
    assert theory[("a", "plugin", 40.0)] < theory[("a", "flat prior (MLE)", 40.0)]
    # and the MLE's variance collapses while the Bayesian learner's does not
    assert theory[("c", "MLE", 40.0)] < 0.2 < theory[("c", "plugin", 40.0)]


def test_defences_smoke(tmp_path, capsys):
    mod = _load("defences")
    assert mod.main(["--smoke", "--out", str(tmp_path)]) == 0
    _no_verdicts(capsys.readouterr().out)
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"defences_smoke.{ext}").stat().st_size > 0
    with open(tmp_path / "defences_smoke.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["panel"] for r in rows} == {"a", "b", "c", "d", "e", "f"}
    need = {r["series"]: float(r["mc_mean"]) for r in rows if r["panel"] == "c"}
    # a perfect verifier needs less real data than none at all
    assert need["verifier, accuracy 1"] < need["no verifier"]
    # schedules: superlinear growth (p = 2) ends below constant n (p = 0), in theory and in the simulation
    last = {r["series"]: r for r in rows if r["panel"] == "f" and int(float(r["x"])) == 40}
    assert float(last["p = 2"]["theory"]) < float(last["p = 0"]["theory"])
    assert float(last["p = 2"]["mc_mean"]) < float(last["p = 0"]["mc_mean"])


def test_variance_smoke(tmp_path, capsys):
    mod = _load("variance")
    assert mod.main(["--smoke", "--out", str(tmp_path)]) == 0
    _no_verdicts(capsys.readouterr().out)
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"variance_smoke.{ext}").stat().st_size > 0
    with open(tmp_path / "variance_smoke.csv") as fh:
        rows = list(csv.DictReader(fh))
    at = {(r["estimator"], int(r["n"]), r["metric"], int(r["generation"])): r for r in rows}
    last = max(int(r["generation"]) for r in rows)
    # E[log variance] is the typical chain's drift: exact, so the MC mean sits within 5 s.e. of it
    for est in ("mle", "unbiased"):
        for n in (10, 100):
            r = at[(est, n, "log_variance", last)]
            assert abs(float(r["mc_mean"]) - float(r["theory"])) < 5 * float(r["mc_se"])
    # the smaller the sample, the faster the collapse: P(sd < 0.1) at n = 10 beats n = 1000
    assert float(at[("mle", 10, "collapse", last)]["mc_mean"]) > 0.9
    assert float(at[("mle", 1000, "collapse", last)]["mc_mean"]) == 0.0
    assert float(at[("mle", 1000, "collapse", last)]["theory"]) < 1e-6


def test_tails_smoke(tmp_path, capsys):
    mod = _load("tails")
    assert mod.main(["--smoke", "--out", str(tmp_path)]) == 0
    _no_verdicts(capsys.readouterr().out)
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"tails_smoke.{ext}").stat().st_size > 0
    with open(tmp_path / "tails_smoke.csv") as fh:
        rows = list(csv.DictReader(fh))
    last = max(int(float(r["x"])) for r in rows if r["panel"] == "a")
    a = {r["series"]: r for r in rows if r["panel"] == "a" and int(float(r["x"])) == last}
    b = {r["series"]: float(r["mc_value"]) for r in rows if r["panel"] == "b" and int(float(r["x"])) == last}
    # Replace loses categories that Accumulate keeps (its pool holds the real sample)
    assert float(a["Replace"]["mc_value"]) > float(a["Accumulate"]["mc_value"]) + 5
    r = a["Replace"]
    assert abs(float(r["mc_value"]) - float(r["theory"])) < 5 * float(r["mc_se"])
    assert b["Replace"] > b["FreshMix(0.1)"] > b["Accumulate"]
    # the 1 % tails halve before the variance does
    f = {(r["series"], int(float(r["x"]))): float(r["mc_value"]) for r in rows if r["panel"] == "f"}
    assert f[("tail mass half-life", 100)] < f[("variance half-life", 100)]


def test_accumulate_smoke(tmp_path, capsys):
    mod = _load("accumulate")
    assert mod.main(["--smoke", "--out", str(tmp_path)]) == 0
    _no_verdicts(capsys.readouterr().out)
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"accumulate_smoke.{ext}").stat().st_size > 0
    with open(tmp_path / "accumulate_smoke.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["x_name"] == "generation"]
    last = max(int(float(r["x"])) for r in rows)
    val = {(r["panel"], r["series"], int(float(r["x"]))): float(r["mc_mean"]) for r in rows}
    # the three regimes share generation 0's fit to the real sample
    for panel in ("a", "b", "c1", "c2", "c3", "d"):
        starts = {val[(panel, s, 0)] for s in ("Replace", "Accumulate", "AccumulateSubsample")}
        assert len(starts) == 1
    # Replace collapses (theory ratios about 7 at generation 10); keeping the data does not
    for panel in ("a", "c1", "d"):
        assert val[(panel, "Replace", last)] > 2 * val[(panel, "Accumulate", last)]
    assert val[("d", "Accumulate", last)] < val[("d", "AccumulateSubsample", last)] < val[("d", "Replace", last)]
    assert val[("d", "Accumulate", last)] < 1.5 * math.pi**2 / 6 * 10 / 89


def test_regression_smoke(tmp_path, capsys):
    mod = _load("regression")
    assert mod.main(["--smoke", "--out", str(tmp_path)]) == 0
    _no_verdicts(capsys.readouterr().out)
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"regression_smoke.{ext}").stat().st_size > 0
    with open(tmp_path / "regression_smoke.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["panel"] for r in rows} == {"a", "b", "c", "d", "e", "f"}
    gen = [r for r in rows if r["x_name"] == "generation"]
    last = max(int(float(r["x"])) for r in gen if r["panel"] == "a")
    val = {(r["panel"], r["series"], r["design"], int(float(r["x"]))): float(r["mc_mean"]) for r in gen}
    for design in ("fixed", "fresh"):
        # the OLS chain's error grows linearly (theory: 13x from generation 0 to 12)
        assert val[("a", "OLS", design, last)] > 5 * val[("a", "OLS", design, 0)]
        # a strong ridge penalty refitted every generation shrinks the fit to zero (error ||w*||^2 = 10)
        assert val[("b", "ridge chain lambda=0.3", design, last)] > 5 > val[("a", "OLS", design, last)]
    # over-parameterised: the min-norm fit never learns the (1 - T/d) ||w*||^2 = 10 part
    assert val[("f", "min-norm", "fixed", 10)] > 10


def test_mixing_ratio_smoke(tmp_path, capsys):
    mod = _load("mixing_ratio")
    assert mod.main(["--smoke", "--out", str(tmp_path)]) == 0
    _no_verdicts(capsys.readouterr().out)
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"mixing_ratio_smoke.{ext}").stat().st_size > 0
    with open(tmp_path / "mixing_ratio_smoke.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["panel"] for r in rows} == {"a", "b", "c", "c'", "d", "d''"}
    v = {(r["panel"], r["series"], float(r["x"])): float(r["mc_mean"]) for r in rows}
    # weighting real and synthetic estimates has an interior optimum (theory 1.89 vs 0.62 at k = 1)
    assert v[("c", "k = 1", 0.2)] > 2 * v[("c", "k = 1", 0.6)]
    # with a learned variance the estimator matters: the unbiased one inflates the error (theory 10.0 vs 3.57)
    assert v[("b", "unbiased, n = 10", 0.1)] > 1.5 * v[("b", "mle, n = 10", 0.1)]
    # the min-norm / OLS optimal real label weight sits near 1/phi = 0.618
    assert 0.55 < v[("d''", "argmin, lam = 0", 2.0)] < 0.70


def test_tails_scaling_smoke(tmp_path, capsys):
    mod = _load("tails_scaling")
    assert mod.main(["--smoke", "--out", str(tmp_path)]) == 0
    _no_verdicts(capsys.readouterr().out)
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"tails_scaling_smoke.{ext}").stat().st_size > 0
    with open(tmp_path / "tails_scaling_smoke.csv") as fh:
        rows = list(csv.DictReader(fh))
    # (a), (b): generation 0 is the given generator, so the simulator's error is the exact one
    for r in (r for r in rows if r["panel"] in "ab" and r["x_name"] == "T"):
        assert float(r["mc_value"]) == pytest.approx(float(r["theory"]), rel=1e-4, abs=1e-9), r
    # beyond a cut's crossover the error stops falling: the exponent is ~0 (Tale of Tails, Thm 2.1)
    above = [float(r["mc_value"]) for r in rows if r["panel"] == "a" and "T > 10 T_k" in r["series"]]
    assert len(above) == 3 and max(abs(a) for a in above) < 1e-3
    # recursion loses the tail: the plateau (largest T) rises with the generation
    last = max(int(float(r["x"])) for r in rows if r["panel"] == "c" and r["x_name"] == "T")
    plateau = [float(r["mc_value"]) for r in rows if r["panel"] == "c" and r["x"] == f"{last:g}"]
    assert len(plateau) >= 3 and plateau == sorted(plateau)


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


def test_learned_collapse_smoke(tmp_path, capsys):
    mod = _load("learned_collapse")
    assert mod.main(["--smoke", "--out", str(tmp_path)]) == 0
    _no_verdicts(capsys.readouterr().out)
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"learned_collapse_smoke.{ext}").stat().st_size > 0
    with open(tmp_path / "learned_collapse_smoke.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["panel"] for r in rows} == {"a", "b", "c", "d", "e", "f"}
    for r in rows:
        assert math.isfinite(float(r["mc_value"])) and math.isfinite(float(r["mc_se"])), r
    # the linear random-feature widths carry their exact law; ReLU widths <= min(d, n - 2) = 28 their Gaussian
    # equivalent, wider ones none
    assert all(math.isfinite(float(r["theory"])) for r in rows if (r["panel"], r["series"]) == ("e", "linear"))
    relu = [(float(r["x"]), float(r["theory"])) for r in rows if (r["panel"], r["series"]) == ("e", "ReLU")]
    assert relu and all(math.isfinite(t) == (w <= 28) for w, t in relu), relu
