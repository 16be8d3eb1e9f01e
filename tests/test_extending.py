"""The regime and the synthesis step of docs/EXTENDING.md, written outside the package
as a user would, checked against their closed forms. (The family of that page is
tests/families/test_user_family.py.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED, assert_mc_close

import collapse_jax as cj
from collapse_jax.regimes import STREAM_USER, TrainingSet


# ---------------------------------------------------------------- docs/EXTENDING.md, a regime
class DecayingMix(cj.AbstractPlannedRegime):
    start: jax.Array
    half_life: jax.Array

    def __init__(self, start=0.5, half_life=4.0):
        self.start = jnp.asarray(start, jnp.float32)
        self.half_life = jnp.asarray(half_life, jnp.float32)

    def plan(self, family, g, n):
        share = self.start * 2.0 ** (-(g - 1) / self.half_life)
        return TrainingSet(real=jnp.floor(share * n + 0.5).astype(jnp.int32))


# AccumulateMix as a user would write it on the protocol: the built-in one is these lines
class MyAccumulateMix(cj.AbstractPlannedRegime):
    real_fraction: jax.Array

    def __init__(self, real_fraction=0.5):
        self.real_fraction = jnp.asarray(real_fraction, jnp.float32)

    def plan(self, family, g, n):
        return TrainingSet(real=jnp.floor(self.real_fraction * n + 0.5).astype(jnp.int32), pool="merge")


# ---------------------------------------------------------------- docs/EXTENDING.md, a synthesis step
class Jitter(cj.Synthesis):
    """Synthetic points with Gaussian noise of standard deviation ``scale`` added
    (array-valued families), after the other steps."""

    scale: jax.Array

    def __init__(self, scale=0.1, **steps):
        super().__init__(**steps)
        self.scale = jnp.asarray(scale, jnp.float32)

    @property
    def identity(self):
        return False

    @property
    def needs_points(self):
        return True

    def draw(self, family, key, params, n, frame=None):
        x = super().draw(family, key, params, n, frame)
        z = key.sibling(STREAM_USER[0]).normal(x.shape, x.dtype)  # a stream of its own beside the draw's
        return x + self.scale.astype(x.dtype) * z


N, G = 10, 8


def _run(regime=None, synthesis=None, family=None, chains=4000, **kw):
    return cj.simulate(
        family or cj.Gaussian(),
        regime or cj.Replace(),
        synthesis=synthesis,
        n=N,
        generations=G,
        chains=chains,
        seed=SEED,
        progress=False,
        keep="chains",
        **kw,
    )


def _mean_se(res, metric="variance"):
    x = np.asarray(res.metrics[metric], np.float64)
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_decaying_mix_follows_freshmix_recursion_with_its_real_counts(sampler):
    # FreshMix's exact moments (cj.theory.freshmix_moments) with r_g in place of r; the
    # real count of generation g is r_g = floor(start 2^(-(g-1)/h) n + 1/2)
    start, h = 0.8, 2.0
    res = _run(DecayingMix(start, h), family=cj.Gaussian(sampler=sampler))
    r = np.concatenate([[0], _plan_counts(start, h)])
    e2, v = [1 / N], [(N - 1) / N]
    for k in range(1, G + 1):
        m = N - r[k]
        e2.append(r[k] / N**2 + (m / N) ** 2 * e2[-1] + m * v[-1] / N**2)
        v.append(((r[k] - 1 + m / N) + (m - 1 + r[k] / N) * v[-1] + (r[k] * m / N) * e2[-2]) / N)
    assert_mc_close(*_mean_se(res), np.array(v), label=f"DecayingMix variance {sampler}")
    assert_mc_close(*_mean_se(res, "mean_sq_error"), np.array(e2), label=f"DecayingMix mse {sampler}")


def _plan_counts(start, h):
    """The real counts the regime plans (computed by the regime itself, in float32)."""
    regime = DecayingMix(start, h)
    return np.array([int(regime.plan(cj.Gaussian(), g, N).real) for g in range(1, G + 1)])


def test_decaying_mix_without_decay_is_freshmix_and_without_real_data_is_replace():
    a, b = _run(DecayingMix(0.3, np.inf), chains=64), _run(cj.FreshMix(0.3), chains=64)
    np.testing.assert_array_equal(np.asarray(a.metrics["variance"]), np.asarray(b.metrics["variance"]))
    # the same points; the traced zero count leaves an unused real draw in the program, so
    # XLA fuses the fit differently: equal up to float32 rounding
    a, b = _run(DecayingMix(0.0, 2.0), chains=64), _run(cj.Replace(), chains=64)
    np.testing.assert_allclose(np.asarray(a.metrics["variance"]), np.asarray(b.metrics["variance"]), rtol=1e-5)


def test_decaying_mix_sweeps_and_runs_for_every_kind_of_family():
    res = _run(DecayingMix(), chains=16, sweep={"half_life": [1.0, 4.0, 16.0]})
    assert np.asarray(res.metrics["variance"]).shape == (3, 16, G + 1)
    for family in (cj.KDE(0.5), cj.Ridge(dim=2), cj.Categorical([0.5, 0.3, 0.2], sampler="exact")):
        res = cj.simulate(family, DecayingMix(), n=N, generations=3, chains=4, seed=SEED, progress=False)
        assert all(np.all(np.isfinite(np.asarray(v))) for v in res.metrics.values())


@pytest.mark.parametrize("family", [cj.Gaussian(), cj.Gaussian(sampler="exact"), cj.KDE(0.5)])
def test_accumulate_mix_written_by_a_user_is_the_built_in_one(family):
    a = _run(MyAccumulateMix(0.3), family=family, chains=32)
    b = _run(cj.AccumulateMix(0.3), family=family, chains=32)
    for k in a.metrics:
        np.testing.assert_array_equal(np.asarray(a.metrics[k]), np.asarray(b.metrics[k]))


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_accumulate_mix_all_real_is_one_growing_real_sample(sampler):
    # share 1: generation g is the MLE on (g + 1) n real points, E = (1 - 1/((g + 1) n)) sigma^2
    res = _run(cj.AccumulateMix(1.0), family=cj.Gaussian(sampler=sampler))
    g = np.arange(G + 1)
    assert_mc_close(*_mean_se(res), 1 - 1 / ((g + 1) * N), label=f"AccumulateMix(1) {sampler}")


def test_accumulate_mix_without_real_data_is_accumulate():
    for family in (cj.Gaussian(), cj.KDE(0.5)):
        a = _run(cj.AccumulateMix(0.0), family=family, chains=64)
        b = _run(cj.Accumulate(), family=family, chains=64)
        np.testing.assert_array_equal(np.asarray(a.metrics["variance"]), np.asarray(b.metrics["variance"]))


def test_jitter_follows_its_variance_recursion():
    # x + s z with x from N(mu, v): the MLE variance has E = (n - 1)/n (v + s^2), from v_0 = (n - 1)/n
    s = 0.3
    res = _run(synthesis=Jitter(s))
    v = [(N - 1) / N]
    for _ in range(G):
        v.append((N - 1) / N * (v[-1] + s * s))
    assert_mc_close(*_mean_se(res), np.array(v), label="Jitter")


def test_jitter_composes_with_the_built_in_steps_and_is_refused_on_the_exact_path():
    res = _run(synthesis=Jitter(0.2, temperature=0.9), chains=16, sweep={"scale": [0.0, 0.2]})
    assert np.all(np.isfinite(np.asarray(res.metrics["variance"])))
    assert Jitter(0.2).describe() == {"synthesis": "Jitter", "scale": 0.20000000298023224}
    with pytest.raises(ValueError, match="sampler='exact'"):
        _run(synthesis=Jitter(0.2), family=cj.Gaussian(sampler="exact"), chains=2)
