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
from collapse_jax.families import SufficientStats, tree_where
from collapse_jax.regimes import STREAM_REAL, STREAM_SYNTH, STREAM_USER


# ---------------------------------------------------------------- docs/EXTENDING.md, a regime
class AccumulateMix(cj.AbstractRegime):
    """Accumulate where each new batch of n has a fresh-real share alpha: generation g
    fits the original sample and g batches of r = floor(alpha n + 1/2) fresh real and
    n - r synthetic points from model g - 1, pooled (a SufficientStats family)."""

    alpha: jax.Array

    def __init__(self, alpha=0.5):
        self.alpha = jnp.asarray(alpha, jnp.float32)

    def validate(self, family, n, generations, exact):
        if not isinstance(family, SufficientStats):
            raise ValueError(f"AccumulateMix pools sufficient statistics; {type(family).__name__} has none")

    def init(self, family, ctx, params0):
        return cj.Accumulate().init(family, ctx, params0)  # the original sample's statistics

    def step(self, family, ctx, state, prev, g):
        frame = family.pooled_frame(prev)
        r = jnp.floor(self.alpha * ctx.n + 0.5).astype(jnp.int32)
        real_s, synth_s = ctx.stream(g, STREAM_REAL), ctx.stream(g, STREAM_SYNTH)
        if ctx.exact:
            real = family.sample_stats(real_s, family.chain_truth(prev), r, frame)
            batch = family.merge_stats(real, ctx.draw_stats(family, synth_s, prev, ctx.n - r, frame))
        else:
            real = family.sample_real(real_s, ctx.n, prev, frame)
            synth = ctx.draw(family, synth_s, prev, ctx.n, frame)
            batch = family.data_stats(tree_where(jnp.arange(ctx.n) < r, real, synth), None)
        pooled = family.merge_stats(state, batch)
        return pooled, family.fit_stats(pooled, frame)


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
def test_accumulate_mix_all_real_is_one_growing_real_sample(sampler):
    # alpha = 1: generation g is the MLE on (g + 1) n real points, E = (1 - 1/((g + 1) n)) sigma^2
    res = _run(AccumulateMix(1.0), family=cj.Gaussian(sampler=sampler))
    g = np.arange(G + 1)
    assert_mc_close(*_mean_se(res), 1 - 1 / ((g + 1) * N), label=f"AccumulateMix(1) {sampler}")


def test_accumulate_mix_without_real_data_is_accumulate():
    a = _run(AccumulateMix(0.0), chains=64)
    b = _run(cj.Accumulate(), chains=64)
    np.testing.assert_allclose(np.asarray(a.metrics["variance"]), np.asarray(b.metrics["variance"]), rtol=1e-5)


def test_accumulate_mix_sweeps_and_refuses_what_it_cannot_pool():
    res = _run(AccumulateMix(), chains=16, sweep={"alpha": [0.0, 0.5, 1.0]})
    assert np.asarray(res.metrics["variance"]).shape == (3, 16, G + 1)
    with pytest.raises(ValueError, match="AccumulateMix pools sufficient statistics; KDE"):
        _run(AccumulateMix(), family=cj.KDE(0.5), chains=2)


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
