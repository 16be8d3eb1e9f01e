"""Every family x regime x synthesis x path combination either runs or is refused
before compiling, with a message naming what is missing (collapse_jax.engine.compat.check):
never an error from inside tracing.

The default test traces each allowed combination's generation 0 and one later
generation (what the memory plan does) and stops before compiling; the slow one runs
them all."""

from __future__ import annotations

import collections
import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import collapse_jax as cj

driver = importlib.import_module("collapse_jax.engine.driver")
kernel = importlib.import_module("collapse_jax.engine.kernel")

N = 12


def _families():
    yield "Gaussian", cj.Gaussian(), cj.Gaussian(sampler="exact")
    yield "Gaussian d=2", cj.Gaussian(dim=2), cj.Gaussian(dim=2, sampler="exact")
    yield "Categorical", cj.Categorical([0.5, 0.3, 0.2]), cj.Categorical([0.5, 0.3, 0.2], sampler="exact")
    yield "GMM", cj.GMM(2, 1, em_max_iters=5), None
    yield "KDE", cj.KDE(0.5), None
    yield "Ridge fixed", cj.Ridge(dim=2), cj.Ridge(dim=2, sampler="exact")
    yield "Ridge fresh", cj.Ridge(dim=2, design="fresh"), cj.Ridge(dim=2, design="fresh", sampler="exact")
    yield "BayesGaussian", cj.BayesGaussian(), cj.BayesGaussian(sampler="exact")
    yield "BayesLinearRegression", cj.BayesLinearRegression(dim=2), None
    yield "NUTSLocation", cj.NUTSLocation(warmup=5, samples=5), None
    yield "HuberLocation", cj.HuberLocation(steps=5), None
    yield "GLM", cj.GLM(dim=2, steps=5), None
    yield "RandomFeatures", cj.RandomFeatures(2, 3, max_width=5), None


REGIMES = {
    "Replace": cj.Replace(),
    "FreshMix": cj.FreshMix(0.3),
    "RetainOriginal": cj.RetainOriginal(0.2),
    "Weighted estimates": cj.Weighted(0.4, combine="estimates"),
    "Weighted samples": cj.Weighted(0.4, ratio=2.0, combine="samples"),
    "Accumulate": cj.Accumulate(),
    "AccumulateSubsample": cj.AccumulateSubsample(),
    "AccumulateMix": cj.AccumulateMix(0.3),
    "Schedule": cj.Schedule([12, 10, 12]),
    "Provenance": cj.Provenance(0.5, false_real=0.1, oversample=3),
}
SYNTHESES = {
    "plain": cj.Synthesis(),
    "temperature": cj.Synthesis(temperature=0.8),
    "filters": cj.Synthesis(truncate=0.9, support=0.95, false_accept=0.1, oversample=3),
    "correct": cj.Synthesis(correct=0.3),
}
# selection (THEORY.md section 17): a reward of one entry fits the 1-D continuous families, of
# three the Categorical; other shapes are refused by the family, by name, before compiling
SELECTION = {
    "curate luce": cj.Synthesis(curate="luce", candidates=2, reward=[1.0]),
    "curate tilt": cj.Synthesis(curate="tilt", reward=[0.5, 0.0, 1.0]),
    "verifier first": cj.Synthesis(verifier="first", support=0.9, oversample=3),
}
CAPABILITY_WORDS = ("Temperable", "Scorable", "Correctable", "Combinable", "ExactSampler", "SufficientStats")


def _regimes(fam):
    yield from REGIMES.items()
    yield "Edit", cj.Edit(0.3)
    yield "MixTeacher", cj.MixTeacher(0.3, teacher=fam)  # the family's own truth as the teacher


def _cases():
    for fname, samples, exact in _families():
        for path, fam in (("samples", samples), ("exact", exact)):
            if fam is None:
                continue
            for rname, regime in _regimes(fam):
                for sname, synthesis in {**SYNTHESES, **SELECTION}.items():
                    yield f"{fname}|{path}|{rname}|{sname}", fam, regime, synthesis


CASES = list(_cases())


class _Traced(Exception):
    """Raised in place of compiling: every check and the tracing passed."""


def _stop(*args, **kwargs):
    raise _Traced


_stop.clear_cache = lambda: None


def _outcome(fam, regime, synthesis, **kw):
    try:
        cj.simulate(fam, regime, synthesis=synthesis, n=N, generations=2, chains=2, progress=False, **kw)
    except _Traced:
        return "runs", ""
    except ValueError as e:
        return "refused", str(e)
    return "ran", ""


# one family of each capability profile in the default run; every family in the slow one
DEFAULT = {"Gaussian", "Categorical", "KDE", "Ridge fixed", "BayesGaussian"}


def _default(name: str) -> bool:
    fam, _, regime, synthesis = name.split("|")
    if fam not in DEFAULT:
        return False
    if synthesis in SELECTION:  # the selection steps with two regimes, the new regimes plainly
        return regime in ("Replace", "FreshMix")
    return regime in REGIMES or synthesis == "plain"


def test_every_combination_runs_or_is_refused_before_compiling(monkeypatch):
    _check_matrix(monkeypatch, [c for c in CASES if _default(c[0])], 90, 60)


@pytest.mark.slow
def test_every_combination_of_every_family(monkeypatch):
    _check_matrix(monkeypatch, CASES, 250, 350)


def _check_matrix(monkeypatch, cases, min_runs, min_refused):
    monkeypatch.setattr(driver, "init_chunk", _stop)
    counts = collections.Counter()
    for name, fam, regime, synthesis in cases:
        before = kernel.trace_counts()
        outcome, msg = _outcome(fam, regime, synthesis)
        counts[outcome] += 1
        assert outcome in ("runs", "refused"), name
        assert kernel.trace_counts() == before, f"{name}: traced the compiled kernel"
        if outcome == "refused":
            assert len(msg) > 20, f"{name}: {msg!r}"
        fam_name, path, _, sname = name.split("|")
        # refusals that are about a missing capability name it
        if sname == "correct" and not isinstance(fam, cj.families.Correctable):
            assert outcome == "refused" and "Correctable" in msg, (name, msg)
        if sname == "temperature" and not isinstance(fam, cj.families.Temperable):
            assert outcome == "refused" and "Temperable" in msg, (name, msg)
        if sname == "filters" and not isinstance(fam, cj.families.Scorable):
            assert outcome == "refused" and "Scorable" in msg, (name, msg)
        if sname == "curate luce" and not isinstance(fam, cj.families.Rewardable):
            assert outcome == "refused" and "Rewardable" in msg, (name, msg)
        if sname == "curate tilt" and not isinstance(fam, cj.families.Tiltable):
            assert outcome == "refused" and "Tiltable" in msg, (name, msg)
        verifies = isinstance(fam, (cj.families.Scorable, cj.families.LabelVerifiable))
        if sname == "verifier first" and not verifies:
            assert outcome == "refused" and "Scorable" in msg, (name, msg)
    print(f"\ncombinations: {len(cases)}; traced and ready to compile: {counts['runs']}; refused: {counts['refused']}")
    assert counts["runs"] >= min_runs and counts["refused"] >= min_refused


def _run_family(family_name: str) -> int:
    """Compile and run every allowed combination of one family; the number run."""
    done = 0
    for name, fam, regime, synthesis in CASES:
        if name.split("|")[0] != family_name:
            continue
        try:
            res = cj.simulate(fam, regime, synthesis=synthesis, n=N, generations=2, chains=2, progress=False)
        except ValueError:
            continue
        done += 1
        assert res.metrics, name
        assert all(np.asarray(v).shape[:2] == (2, 3) for v in res.metrics.values()), name
    return done


@pytest.mark.slow
@pytest.mark.parametrize("family_name", [f for f, _, _ in _families()])
def test_every_allowed_combination_runs(family_name):
    # one process per family: a process that compiles several hundred distinct programs can
    # exhaust the operating system's memory-map limit inside XLA
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_compat_matrix as t; "
        f"print('ran', t._run_family({family_name!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.split("ran")[-1]) >= 1
