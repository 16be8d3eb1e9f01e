"""Several devices: the chain axis of every chunk is shared over the local devices.
Tested on CPU with 2 and 4 forced host devices, in a subprocess (the flag must be set
before JAX starts): per-chain arrays and summaries equal the one-device run's
to float rounding (last-bit differences of a differently fused program), event
generations and threshold counts exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import jax
    import numpy as np
    import collapse_jax as cj

    assert len(jax.local_devices()) == {devices}, jax.local_devices()


    def close(a, b, label):
        # the same draws and fits; a program compiled for several devices may fuse float32
        # operations differently (last-bit differences)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6, err_msg=label)

    cases = [
        (cj.Gaussian(), cj.Replace(), dict(keep="chains")),
        (cj.Gaussian(sampler="exact"), cj.FreshMix(0.2), dict(keep="summary", keep_chains=64,
                                                             thresholds={{"sd": 0.5}})),
        (cj.Categorical([0.5, 0.3, 0.2]), cj.Accumulate(), dict(keep="chains")),
        (cj.Pressured(cj.Gaussian(), support=0.9, false_accept=0.1), cj.Replace(),
         dict(keep="chains", sweep={{"false_accept": [0.1, 0.3]}})),
    ]
    kw = dict(n=20, generations=24, chains=1000, seed=4, progress=False)
    for fam, reg, extra in cases:
        one = cj.simulate(fam, reg, devices=1, **kw, **extra)
        many = cj.simulate(fam, reg, **kw, **extra)
        assert many.config["chunk_size"] % {devices} == 0
        for m in one.metrics:
            close(one.metrics[m], many.metrics[m], m)
        for e in one.events:
            np.testing.assert_array_equal(one.events[e], many.events[e], err_msg=e)
        if extra["keep"] == "summary":
            for m in ("variance", "mean_sq_error"):
                a, b = one.summary(m), many.summary(m)
                np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-5, err_msg=m)
                np.testing.assert_allclose(a["se"], b["se"], rtol=1e-4, err_msg=m)
            # threshold counts are integers: exact
            np.testing.assert_array_equal(one.prob_below("sd", 0.5)["p"], many.prob_below("sd", 0.5)["p"])
    g = cj.InteractionGraph.ring(4, self_weight=0.5)
    one = cj.simulate_graph(cj.Gaussian(learn_cov=False), g, n=10, generations=10, chains=256, seed=1,
                            progress=False, devices=1)
    many = cj.simulate_graph(cj.Gaussian(learn_cov=False), g, n=10, generations=10, chains=256, seed=1,
                             progress=False)
    close(one.metrics["mean_sq_error"], many.metrics["mean_sq_error"], "graph")
    # a checkpoint taken inside a chunk resumes onto the devices
    from collapse_jax.engine import checkpoint as _checkpoint

    ckw = dict(n=20, generations=50, chains=256, seed=5, progress=False, keep="summary", keep_chains=32)
    reference = cj.simulate(cj.Gaussian(), **ckw)
    original, calls = _checkpoint.save, []

    def stop_after_three(path, config, state):
        original(path, config, state)
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    _checkpoint.save = stop_after_three
    try:
        cj.simulate(cj.Gaussian(), checkpoint="{ckpt}", checkpoint_every=0, **ckw)
    except KeyboardInterrupt:
        pass
    _checkpoint.save = original
    resumed = cj.simulate(cj.Gaussian(), checkpoint="{ckpt}", **ckw)
    close(resumed.summary("variance")["mean"], reference.summary("variance")["mean"], "resumed")
    print("ok")
    """
)


@pytest.mark.parametrize("devices", [2, 4])
def test_forced_host_devices_match_one_device(tmp_path, devices):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(devices=devices, ckpt=tmp_path / "c.npz"))
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout.strip().endswith("ok")


def test_bad_device_count_is_refused():
    import collapse_jax as cj

    with pytest.raises(ValueError, match="devices must be an int"):
        cj.simulate(cj.Gaussian(), n=10, generations=1, chains=4, devices=0)
