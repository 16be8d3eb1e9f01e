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
