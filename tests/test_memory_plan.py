"""The memory plan (``collapse_jax.engine.plan.MemoryPlan``): every array a run holds is
counted, a run that cannot fit ``max_memory`` is refused before anything is compiled,
naming the cost and what to change, and an accepted run stays within ``max_memory``.

What ``max_memory`` covers, and what the measurements below measure: the arrays the
run holds (its chains' states, one generation's data and fit temporaries, the outputs
of blocks of generations, the host's per-chain arrays or per-generation summaries and
kept chains), not the interpreter, JAX's runtime or compiled code. Each measured case
runs in a fresh interpreter that first makes the identical call once (compiling and
warming up), returns the freed heap to the system, resets the high-water mark
(``/proc/self/clear_refs``) and measures VmHWM minus the resident memory just before
the second call. Allocations of 64 KiB or more are mapped on their own
(``MALLOC_MMAP_THRESHOLD_``), so freed arrays leave the resident set at once and the
second call's arrays show as growth.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import json
import os
import subprocess
import sys
import time

import pytest

import collapse_jax as cj
from collapse_jax._validate import parse_memory

KERNEL = importlib.import_module("collapse_jax.engine.kernel")


def test_a_fit_too_large_for_max_memory_is_refused_before_compiling():
    # GMM(50, 20) at n = 10^6 holds n x K x d temporaries (4 GB each) per chain: the old plan
    # counted 8 x the data (640 MB) and the run died after minutes in XLA with 16.5 GB
    traces = KERNEL.trace_counts()
    t = time.perf_counter()
    with pytest.raises(ValueError) as err:
        cj.simulate(cj.GMM(50, 20), cj.Replace(), n=10**6, generations=2, chains=2, progress=False)
    elapsed = time.perf_counter() - t
    msg = str(err.value)
    assert "one chain needs about" in msg and "GiB (one generation of GMM at n=1000000" in msg, msg
    assert "max_memory=3.73 GiB (4,000,000,000 bytes)" in msg and "lower n" in msg, msg
    assert KERNEL.trace_counts() == traces  # nothing was compiled
    assert elapsed < 5, f"refusing took {elapsed:.1f} s"


def test_per_generation_summaries_are_counted():
    # the exact Gaussian's float64 moments per generation and metric: 2e6 generations take
    # about 0.9 GiB on the host, and the old plan counted none of it (the run peaked at 1.64 GiB)
    kw = dict(n=10, chains=1, keep="summary", progress=False)
    with pytest.raises(ValueError, match=r"keep='summary' needs [\d.]+ MiB for the per-generation summaries") as err:
        cj.simulate(cj.Gaussian(sampler="exact"), generations=2 * 10**6, max_memory="1GB", **kw)
    assert "2000001 generations x" in str(err.value) and "max_memory=953.7 MiB" in str(err.value)
    # the same summaries at 20,000 generations: about 10 MB, refused under 8 MB, run under 16 MB
    with pytest.raises(ValueError, match="per-generation summaries"):
        cj.simulate(cj.Gaussian(sampler="exact"), generations=20_000, max_memory="8MB", **kw)
    res = cj.simulate(cj.Gaussian(sampler="exact"), generations=20_000, max_memory="16MB", **kw)
    assert res.is_summary and len(res.summary("log_variance")) == 20_001


def test_kept_chains_are_counted():
    with pytest.raises(ValueError, match=r"for the 1000 kept chains"):
        cj.simulate(
            cj.Gaussian(sampler="exact"),
            n=10,
            generations=20_000,
            chains=1000,
            keep="summary",
            max_memory="200MB",
            progress=False,
        )


def test_a_given_chunk_size_over_the_budget_is_refused():
    # 64 chains of 10^5 points: about 2 MB of fit temporaries each
    with pytest.raises(ValueError, match=r"chunk_size=64 needs about .* at most \d+ chains per chunk fit"):
        cj.simulate(
            cj.Gaussian(), n=100_000, generations=1, chains=64, chunk_size=64, max_memory="32MB", progress=False
        )


CHILD = r"""
import ctypes, ctypes.util, gc, json, sys
import numpy as np
import collapse_jax as cj
from collapse_jax.engine import plan as _plan

def status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key + ":"))

plans = []
if hasattr(_plan, "MemoryPlan"):  # (absent before the plan counted every array)
    check = _plan.MemoryPlan.check
    def spy(self):
        plans.append(self)
        return check(self)
    _plan.MemoryPlan.check = spy

spec = json.loads(sys.argv[1])
family, regime = (eval(spec[k], {"cj": cj, "np": np}) for k in ("family", "regime"))
run = lambda: cj.simulate(family, regime, progress=False, **spec["kw"])
run()  # compiles and warms up: not measured
gc.collect()
ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # VmHWM := VmRSS
base = status("VmRSS")
res = run()
peak = status("VmHWM") - base
chunk = res.config["chunk_size"]
plan = {"estimate": plans[-1].need(chunk), "host": plans[-1].host} if plans else {"estimate": None, "host": None}
print(json.dumps({"peak": peak, "chunk": chunk, **plan}))
"""


def measure(family: str, regime: str, **kw) -> dict:
    """Peak memory of ``simulate(family, regime, **kw)`` in a fresh interpreter (see the
    module docstring), with the plan's estimate for the chunk size it chose."""
    spec = json.dumps({"family": family, "regime": regime, "kw": kw})
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, spec], capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# Budgets small enough that the chunk size is set by the budget, or the host's arrays fill a third
# of it or more: a plan that left out the fit's temporaries, the state, the outputs or the host's
# arrays would run larger chunks, or keep more, than fit. (name, family, regime, simulate keywords)
CASES = [
    ("gaussian_samples", "cj.Gaussian()", "cj.Replace()", dict(n=100_000, generations=3, chains=64, max_memory="48MB")),
    (
        "gaussian_exact_summary",
        "cj.Gaussian(sampler='exact')",
        "cj.Replace()",
        dict(n=10, generations=50_000, chains=1, keep="summary", max_memory="40MB"),
    ),
    # EM holds K x n log-densities and responsibilities: the old plan's 8 x the data ran all 16 chains
    ("gmm_k20", "cj.GMM(20, 1)", "cj.Replace()", dict(n=20_000, generations=2, chains=16, max_memory="64MB")),
    (
        "ridge_fixed_design",
        "cj.Ridge(dim=3)",
        "cj.Replace()",
        dict(n=100_000, generations=3, chains=64, max_memory="96MB"),
    ),
    (
        "categorical",
        "cj.Categorical(np.ones(5) / 5)",
        "cj.Replace()",
        dict(n=100_000, generations=3, chains=64, max_memory="96MB"),
    ),
]
SLOW_CASES = [
    ("gmm_em", "cj.GMM(2, 1)", "cj.Replace()", dict(n=100_000, generations=2, chains=32, max_memory="96MB")),
    ("kde", "cj.KDE(0.3)", "cj.Replace()", dict(n=2_000, generations=3, chains=256, max_memory="24MB")),
    ("kde_accumulate", "cj.KDE(0.3)", "cj.Accumulate()", dict(n=100, generations=100, chains=64, max_memory="24MB")),
    (
        "gaussian_chains_long",
        "cj.Gaussian()",
        "cj.Replace()",
        dict(n=10, generations=10_000, chains=128, keep="chains", max_memory="96MB"),
    ),
]


@pytest.fixture(scope="module")
def measured(request):
    """The selected cases, measured two at a time (one process each) from the first use."""
    selected = {
        item.callspec.id
        for item in request.session.items
        if item.originalname == "test_measured_peak_is_within_max_memory"
    }
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            name: pool.submit(measure, family, regime, **kw)
            for name, family, regime, kw in CASES + SLOW_CASES
            if name in selected
        }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="measures /proc/self/status")
@pytest.mark.parametrize(
    "name, family, regime, kw",
    [pytest.param(*c, id=c[0]) for c in CASES]
    + [pytest.param(*c, id=c[0], marks=pytest.mark.slow) for c in SLOW_CASES],
)
def test_measured_peak_is_within_max_memory(measured, name, family, regime, kw):
    budget = parse_memory(kw["max_memory"])
    r = measured[name].result()
    mib = lambda b: "-" if b is None else f"{b / 2**20:.1f} MiB"  # noqa: E731
    report = f"{name}: budget {mib(budget)}, plan {mib(r['estimate'])} at chunk {r['chunk']}, measured {mib(r['peak'])}"
    assert r["peak"] <= budget, report
    assert r["estimate"] is not None and r["peak"] <= r["estimate"] <= budget, report
    assert r["chunk"] < kw["chains"] or r["host"] >= budget // 3, f"the budget does not bind: {report}"
