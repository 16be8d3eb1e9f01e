"""Hooks of long runs: ``progress=`` (a tqdm-like class or a callable),
``callback=`` (partial summaries per finished block) and logging."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

import collapse_jax as cj
from collapse_jax.engine.progress import Progress

KW = dict(n=10, generations=6, chains=30, chunk_size=10, seed=1)


class FakeBar:
    """A tqdm-like class that records what it is told."""

    made: list = []

    def __init__(self, total, unit, desc, unit_scale):
        self.total, self.n, self.closed = total, 0, False
        FakeBar.made.append(self)

    def update(self, k):
        self.n += k

    def close(self):
        self.closed = True


@pytest.mark.parametrize("keep", ["chains", "summary"])
def test_callback_sees_live_means_that_end_at_the_result(keep):
    log = []
    res = cj.simulate(cj.Gaussian(), keep=keep, keep_chains=5, progress=False, callback=log.append, **KW)
    assert log and log[0]["generations"].tolist() == [0]
    assert [p["chunk"] for p in log] == sorted(p["chunk"] for p in log)
    last = {}
    for p in log:
        assert set(p["mean"]) == set(res.metrics) and p["total"] == 30 * 7
        for i, g in enumerate(p["generations"]):
            last[int(g)] = (p["mean"]["variance"][i], p["count"]["variance"][i])
    # the last partial summary of each generation covers every chain: the result's mean
    np.testing.assert_allclose([last[g][0] for g in range(7)], res.mean("variance"), rtol=1e-6)
    assert all(last[g][1] == 30 for g in range(7))
    # earlier ones cover the chains finished so far
    first_chunk = [p for p in log if p["chunk"] == 0]
    assert all(p["chains_done"] == 10 for p in first_chunk)


def test_progress_class_and_callable():
    FakeBar.made.clear()
    cj.simulate(cj.Gaussian(), progress=FakeBar, **KW)
    (bar,) = FakeBar.made
    assert bar.n == bar.total == 30 * 7 and bar.closed
    seen = []
    cj.simulate(cj.Gaussian(), progress=lambda done, total: seen.append((done, total)), **KW)
    assert seen[-1] == (30 * 7, 30 * 7) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    with pytest.raises(TypeError, match="progress must be"):
        cj.simulate(cj.Gaussian(), progress="yes", **KW)
    with pytest.raises(TypeError, match="callback must be a callable"):
        cj.simulate(cj.Gaussian(), callback=3, **KW)


def test_a_failing_callback_is_logged_once_and_the_run_goes_on(caplog):
    def boom(partial):
        raise RuntimeError("dashboard down")

    with caplog.at_level(logging.INFO, logger="collapse_jax"):
        res = cj.simulate(cj.Gaussian(), progress=False, callback=boom, **KW)
    assert res.metrics["variance"].shape == (30, 7)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "dashboard down" in caplog.text
    assert any("the callback raised" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert any("Gaussian under Replace" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_eta_waits_for_compilation():
    out = io.StringIO()
    p = Progress(total=100, enabled=True, interval=0.0, stream=out)
    p.update(10)  # the first update includes compiling: no rate yet
    assert "ETA ? (compiling)" in out.getvalue()
    p.update(10)
    p.update(10)
    assert "compiling" not in out.getvalue().splitlines()[-1]


def test_jupyter_gets_a_widget_not_lines(monkeypatch):
    """In a Jupyter kernel the default progress is tqdm's auto bar (a widget there)."""
    import sys
    import types

    from collapse_jax.engine.progress import _Bar, make_progress

    class ZMQInteractiveShell:  # the class name Jupyter's kernel shell has
        pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: ZMQInteractiveShell()
    monkeypatch.setitem(sys.modules, "IPython", fake)
    made = make_progress(None, 100, "chain-generations", "collapse_jax")
    assert isinstance(made, _Bar) and type(made.bar).__module__.startswith("tqdm")
    made.close()
    assert isinstance(make_progress(False, 100, "x", "y"), Progress)  # False stays silent
