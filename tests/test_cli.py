"""The command line: run, demo (the README's main job, at smoke size), info."""

from __future__ import annotations

import json

import pandas as pd

import collapse_jax as cj
from collapse_jax.cli import main


def test_run_writes_result(tmp_path, capsys):
    code = main(
        [
            "run",
            "--regime",
            "freshmix",
            "--real-fraction",
            "0.3",
            "--n",
            "12",
            "--generations",
            "5",
            "--chains",
            "300",
            "--out",
            str(tmp_path),
            "--seed",
            "3",
        ]
    )
    assert code == 0
    res = cj.load(tmp_path / "result.nc")
    assert res.config["regime"]["regime"] == "FreshMix" and res.chains == 300 and res.generations == 5
    assert (tmp_path / "result.csv").exists()
    assert "mean_sq_error" in capsys.readouterr().out


def test_run_accumulate_mix(tmp_path):
    args = ["run", "--regime", "accumulate-mix", "--real-fraction", "0.2", "--n", "10", "--generations", "3"]
    assert main(args + ["--chains", "16", "--quiet", "--out", str(tmp_path)]) == 0
    regime = cj.load(tmp_path / "result.nc").config["regime"]
    assert regime["regime"] == "AccumulateMix" and abs(regime["real_fraction"] - 0.2) < 1e-7


def test_run_reports_bad_input(tmp_path, capsys):
    code = main(["run", "--regime", "freshmix", "--real-fraction", "1.5", "--out", str(tmp_path)])
    assert code == 2
    assert "real_fraction must lie in [0, 1]" in capsys.readouterr().err


def test_demo_smoke(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--chains", "400", "--generations", "8", "--n", "10"]) == 0
    out = capsys.readouterr().out
    assert "Replace" in out and "Accumulate" in out and "FreshMix" in out
    table = pd.read_csv(tmp_path / "demo_summary.csv")
    assert len(table) == 6 * 9
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    # generation 0 has the same law under every regime: E var = (n - 1)/(n - delta)
    g0 = table[table.generation == 0]
    assert g0.variance_theory.nunique() == 2


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "cpu" and info["jax"]


def test_figures_runs_every_study_script_and_records_times(tmp_path, capsys):
    from collapse_jax.cli import main

    assert main(["figures", "--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert {"defences", "gmm_collapse", "graph_collapse", "bayes_collapse"} <= set(listed)
    assert main(["figures", "--only", "no_such_study"]) == 2

    exp = tmp_path / "experiments"
    exp.mkdir()
    (exp / "_common.py").write_text("")  # helpers are not studies
    (exp / "ok_study.py").write_text(
        "import sys, pathlib\nout = pathlib.Path(sys.argv[sys.argv.index('--out') + 1])\n"
        "(out / ('ok' + ('_smoke' if '--smoke' in sys.argv else '') + '.csv')).write_text('x,1')\n"
    )
    out = tmp_path / "figs"
    assert main(["figures", "--experiments", str(exp), "--out", str(out), "--smoke"]) == 0
    assert (out / "ok_smoke.csv").exists()
    timings = json.loads((out / "timings_smoke.json").read_text())
    assert list(timings) == ["ok_study"] and timings["ok_study"]["returncode"] == 0
    (exp / "broken_study.py").write_text("raise SystemExit(3)\n")
    assert main(["figures", "--experiments", str(exp), "--out", str(out)]) == 1
    timings = json.loads((out / "timings.json").read_text())
    assert timings["broken_study"]["returncode"] == 3 and timings["ok_study"]["returncode"] == 0
    # --only reruns some scripts and keeps the others' recorded times
    before = timings["broken_study"]
    assert main(["figures", "--experiments", str(exp), "--out", str(out), "--only", "ok_study"]) == 0
    timings = json.loads((out / "timings.json").read_text())
    assert timings["broken_study"] == before and timings["ok_study"]["cpus"] >= 1


def test_demo_without_matplotlib_says_which_extra(tmp_path, monkeypatch, capsys):
    """The demo's figure needs the 'plot' extra: refused before any compute, naming it."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["demo", "--out", str(tmp_path / "d"), "--quiet"]) == 2
    assert "pip install '.[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
