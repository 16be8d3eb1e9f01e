"""Reproducible configurations: describe -> build round trips, ``cj.from_config``,
``Result.rerun``, ``collapse-jax run --config`` and ``collapse-jax rerun --check``."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

import collapse_jax as cj
from collapse_jax.cli import main
from collapse_jax.config import build

KW = dict(n=10, generations=3, progress=False)

OBJECTS = [
    ("family", lambda: cj.Gaussian()),
    ("family", lambda: cj.Gaussian(dim=2, estimator="unbiased", mean=[1.0, 2.0])),
    ("family", lambda: cj.Gaussian(learn_cov=False, sampler="exact")),
    ("family", lambda: cj.GMM(components=2)),
    ("family", lambda: cj.KDE(bandwidth=0.3)),
    ("family", lambda: cj.Ridge(dim=3)),
    ("family", lambda: cj.GLM(dim=2)),
    ("family", lambda: cj.Categorical([0.2, 0.3, 0.5])),
    ("family", lambda: cj.Categorical([0.25] * 4, num_categories=4)),
    ("family", lambda: cj.BayesGaussian()),
    ("family", lambda: cj.BayesLinearRegression(dim=2)),
    ("family", lambda: cj.NUTSLocation()),
    ("family", lambda: cj.HuberLocation()),
    ("family", lambda: cj.HuberRegression(dim=2)),
    ("family", lambda: cj.Pressured(cj.Gaussian(), temperature=0.9, truncate=0.95)),
    ("regime", lambda: cj.Replace()),
    ("regime", lambda: cj.Accumulate()),
    ("regime", lambda: cj.AccumulateMix(0.3)),
    ("regime", lambda: cj.AccumulateSubsample()),
    ("regime", lambda: cj.FreshMix(0.2)),
    ("regime", lambda: cj.RetainOriginal(0.1)),
    ("regime", lambda: cj.Weighted(0.3, 2.0, combine="samples")),
    ("regime", lambda: cj.Schedule([10, 20, 30])),
    ("regime", lambda: cj.Provenance(0.5, 0.1, 0.1)),
    ("synthesis", lambda: cj.Synthesis(temperature=0.8, truncate=0.9, support=0.95, false_accept=0.1)),
]


@pytest.mark.parametrize("kind, make", OBJECTS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(OBJECTS)])
def test_describe_builds_back(kind, make):
    obj = make()
    desc = obj.describe()
    json.dumps(desc)  # plain JSON
    again = build(kind, json.loads(json.dumps(desc)))
    assert again.describe() == desc


def _equal(a, b):
    assert set(a.metrics) == set(b.metrics)
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)
    for k in a.events:
        np.testing.assert_array_equal(a.events[k], b.events[k], err_msg=k)
    if a.is_summary:
        assert a.summary().equals(b.summary())


def test_from_config_reruns_a_swept_summary_bit_for_bit():
    res = cj.simulate(
        cj.Gaussian(),
        cj.FreshMix(0.2),
        synthesis=cj.Synthesis(temperature=1.0),
        chains=20,
        seed=5,
        keep="summary",
        keep_chains=5,
        thresholds={"variance": [0.5]},
        sweep=types.MappingProxyType({"real_fraction": [0.1, 0.3], "synthesis.temperature": [0.9, 1.0]}),
        **KW,
    )
    assert res.config["sweep_axes"] == {"real_fraction": [0.1, 0.3], "synthesis.temperature": [0.9, 1.0]}
    call = cj.from_config(res.config, progress=False)
    assert call.keywords["sweep"] == res.config["sweep_axes"]
    _equal(res, call())
    _equal(res.sel(1), res.sel(1).rerun(progress=False))
    # what a result records about how it was made
    for key in ("argv", "started", "wall_s", "git_revision", "collapse_jax", "max_memory"):
        assert key in res.info
    assert res.info["wall_s"] > 0


def test_rerun_of_a_graph_and_a_pressured_family():
    graph = cj.InteractionGraph([[0.5, 0.2], [0.3, 0.3]], [0.3, 0.4])
    g = cj.simulate_graph(cj.Gaussian(), graph, n=[10, 12], generations=3, chains=8, seed=1, progress=False)
    again = g.rerun(progress=False)
    assert again.config["regime"] == g.config["regime"] and again.metrics["variance"].shape == (8, 4, 2)
    _equal(g, again)
    p = cj.simulate(cj.Pressured(cj.Gaussian(dim=2), truncate=0.9), chains=4, **KW)
    again = p.rerun(progress=False)
    assert again.config["synthesis"] == p.config["synthesis"] and "accept_rate" in again.metrics
    _equal(p, again)


def test_bad_configurations_are_refused():
    base = {"family": {"family": "Gaussian"}, "n": 10, "generations": 2, "chains": 2}
    with pytest.raises(ValueError, match=r"unknown keys \['chians'\]"):
        cj.from_config({**base, "chians": 3})
    with pytest.raises(ValueError, match="unknown family 'Gausian'"):
        cj.from_config({**base, "family": "Gausian"})
    with pytest.raises(ValueError, match="unknown regime 'Nope'"):
        cj.from_config({**base, "regime": {"regime": "Nope"}})
    with pytest.raises(TypeError, match="config: family Gaussian: .*unexpected keyword argument 'dims'"):
        cj.from_config({**base, "family": {"family": "Gaussian", "dims": 2}})
    with pytest.raises(TypeError, match="unknown overrides"):
        cj.from_config(base, chain=3)
    with pytest.raises(ValueError, match="needs a 'family'"):
        cj.from_config({"n": 10})


STUDY = """\
# a FreshMix study with a sweep, in TOML
family = {family = "Gaussian", dim = 1, estimator = "unbiased"}
regime = {regime = "FreshMix", real_fraction = 0.2}
n = 10
generations = 3
chains = 16
seed = 11
keep = "summary"
keep_chains = 4

[sweep]
real_fraction = [0.1, 0.5]
"""


def test_cli_config_run_and_rerun_bit_for_bit(tmp_path, capsys):
    study = tmp_path / "study.toml"
    study.write_text(STUDY)
    assert main(["run", "--config", str(study), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    saved = cj.load(tmp_path / "a" / "result.nc")
    assert saved.config["family"]["estimator"] == "unbiased" and saved.n_sweep == 2
    capsys.readouterr()
    assert main(["rerun", str(tmp_path / "a" / "result.nc"), "--check", "--quiet"]) == 0
    assert "identical" in capsys.readouterr().out
    # the JSON of the saved config runs the same study
    cfg = tmp_path / "study.json"
    cfg.write_text(json.dumps(saved.config))
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    _equal(saved, cj.load(tmp_path / "b" / "result.nc"))


def test_cli_refuses_flags_that_do_not_apply(tmp_path, capsys):
    out = ["--out", str(tmp_path / "x"), "--quiet"]
    assert main(["run", "--regime", "replace", "--real-fraction", "0.3", *out]) == 2
    err = capsys.readouterr().err
    assert "--real-fraction does not apply to --regime replace" in err and "freshmix" in err
    assert main(["run", "--config", "study.toml", "--family", "gaussian", *out]) == 2
    assert "--family cannot be combined with --config" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--regime", "sometimes", *out])
    assert not (tmp_path / "x" / "result.nc").exists()


def test_cli_help_covers_every_flag():
    from collapse_jax.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in subs.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"
