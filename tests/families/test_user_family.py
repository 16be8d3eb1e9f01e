"""A family written outside the package, the way a user would (docs/EXTENDING.md):
the exponential distribution's rate, fitted by maximum likelihood. It runs under every
regime, synthesis step it has the capabilities for, sweeps, graphs and checkpoints;
what it lacks is refused before compiling, naming the capability. Its collapse law is
checked against theory: under Replace the log rate is a random walk,

    log(rate_g / rate*) = sum_{j=0..g} log(n / Gamma_j(n, 1)),

so E = (g + 1)(log n - digamma(n)) and Var = (g + 1) trigamma(n), on both paths."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED, assert_mc_close
from scipy import special

import collapse_jax as cj
from collapse_jax.engine.kernel import trace_counts
from collapse_jax.families import ExactSampler, Located, Scorable, Temperable


class ExpStats(eqx.Module):
    count: jax.Array  # total weight
    total: jax.Array  # weighted sum of the points


class Exponential(ExactSampler, Temperable, Scorable, Located):
    """Exponential(rate) data; the fit is the MLE n / sum(x)."""

    rate: jax.Array
    sampler: str = eqx.field(static=True)

    def __init__(self, rate=1.0, sampler: str = "samples"):
        if not float(rate) > 0:
            raise ValueError(f"Exponential: rate must be > 0, got {rate!r}")
        self.rate = jnp.asarray(rate, jnp.float32)
        self.sampler = sampler

    # required
    def truth(self):
        return self.rate

    def sample(self, key, params, n, frame=None):
        return -jnp.log(key.uniform((n,), params.dtype)) / params

    def fit(self, key, data, weights, frame=None):
        return self.fit_stats(self.data_stats(data, weights), frame)

    def metrics(self, key, params):
        return {"rate": params, "log_rate_ratio": jnp.log(params / self.rate.astype(params.dtype))}

    def min_points(self):
        return 1

    # SufficientStats
    def data_stats(self, data, weights):
        w = jnp.ones_like(data) if weights is None else weights.astype(data.dtype)
        return ExpStats(jnp.sum(w), jnp.sum(w * data))

    def merge_stats(self, a, b):
        return ExpStats(a.count + b.count, a.total + b.total)

    def fit_stats(self, stats, frame=None):
        return stats.count / stats.total

    # ExactSampler: the sum of m points is Gamma(m, 1) / rate
    def sample_stats(self, key, params, m, frame=None):
        m = jnp.asarray(m, params.dtype)
        return ExpStats(m, key.gamma(m, params.dtype) / params)

    # Temperable, Scorable, Located
    def temper(self, params, tau):
        return params / tau  # the scale times tau

    def score(self, params, data, frame=None):
        return params * data  # -log p(x) up to a constant

    def score_quantile(self, params, q):
        return -jnp.log1p(-q)

    def location(self, params):
        return params[None]


N, G = 8, 6


def run(family=None, regime=None, **kw):
    base = dict(n=N, generations=G, chains=64, seed=SEED, progress=False, keep="chains")
    base.update(kw)
    return cj.simulate(family or Exponential(), regime or cj.Replace(), **base)


REGIMES = [
    cj.Replace(),
    cj.FreshMix(0.3),
    cj.RetainOriginal(0.2),
    cj.Weighted(0.4, ratio=2.0, combine="samples"),
    cj.Accumulate(),
    cj.AccumulateSubsample(),
    cj.AccumulateMix(0.3),
    cj.Schedule([8, 6, 5, 8, 7, 6, 8]),
    cj.Provenance(0.5, false_real=0.1),
]
SYNTHESES = [
    cj.Synthesis(),
    cj.Synthesis(temperature=0.8),
    cj.Synthesis(truncate=0.9),
    cj.Synthesis(support=0.95, false_accept=0.1, false_reject=0.05),
]


def _label(s):
    return ",".join(k for k in s.describe() if k != "synthesis") or "plain"


# every regime with plain draws and every synthesis under Replace by default; the full product is slow
PAIRS = [
    pytest.param(r, s, marks=() if (i == 0 or j == 0) else pytest.mark.slow, id=f"{type(r).__name__}-{_label(s)}")
    for i, r in enumerate(REGIMES)
    for j, s in enumerate(SYNTHESES)
]


@pytest.mark.parametrize("regime,synthesis", PAIRS)
def test_runs_under_every_regime_and_synthesis(regime, synthesis):
    res = run(regime=regime, synthesis=synthesis, chains=16)
    rate = np.asarray(res.metrics["rate"])
    assert rate.shape == (16, G + 1) and np.all(np.isfinite(rate)) and np.all(rate > 0)
    assert res.config["family"] == Exponential().describe()


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_replace_collapse_law(sampler):
    chains = 4000
    res = run(Exponential(2.0, sampler=sampler), chains=chains)
    x = np.asarray(res.metrics["log_rate_ratio"], np.float64)
    g = np.arange(G + 1)
    mean, se = x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(chains)
    assert_mc_close(mean, se, (g + 1) * (np.log(N) - special.digamma(N)), label=f"E log rate ({sampler})")
    var = x.var(axis=0, ddof=1)
    # the variance's standard error from the fourth central moment
    m4 = ((x - x.mean(axis=0)) ** 4).mean(axis=0)
    se_var = np.sqrt(np.maximum(m4 - var**2, 0) / chains)
    assert_mc_close(var, se_var, (g + 1) * special.polygamma(1, N), label=f"Var log rate ({sampler})")


def test_missing_capabilities_are_refused_before_tracing():
    before = trace_counts()
    with pytest.raises(ValueError, match="Correctable"):
        run(synthesis=cj.Synthesis(correct=0.5))
    with pytest.raises(ValueError, match="estimates.*not a Combinable family"):
        run(regime=cj.Weighted(0.5, combine="estimates"))
    with pytest.raises(ValueError, match="needs the data points"):
        run(Exponential(sampler="exact"), cj.RetainOriginal(0.2))
    assert trace_counts() == before


def test_sweeps_reach_family_regime_and_synthesis_fields():
    res = run(
        regime=cj.FreshMix(0.3),
        synthesis=cj.Synthesis(temperature=0.9),
        sweep={"rate": [1.0, 3.0], "real_fraction": [0.0, 0.5], "temperature": [0.8, 1.0]},
        chains=8,
    )
    rate = np.asarray(res.metrics["rate"])
    assert rate.shape == (8, 8, G + 1) and np.all(np.isfinite(rate))

    # generation 0 fits the same standard exponentials: the rate scales the fit exactly
    def point(rate):
        sw = {k: np.asarray(v) for k, v in res.sweep.items()}
        hit = (sw["rate"] == rate) & (sw["real_fraction"] == 0.0) & (sw["temperature"] == 1.0)
        return np.asarray(res.sel(int(np.flatnonzero(hit)[0])).metrics["rate"])[:, 0]

    one, three = point(1.0), point(3.0)
    np.testing.assert_allclose(np.asarray(three), 3.0 * np.asarray(one), rtol=1e-5)


def test_graph_and_checkpoint(tmp_path):
    graph = cj.InteractionGraph.ring(3, self_weight=0.5)
    res = cj.simulate_graph(Exponential(), graph, n=N, generations=4, chains=8, seed=SEED, progress=False)
    assert np.asarray(res.metrics["rate"]).shape == (8, 5, 3)  # chain, generation, node
    assert np.all(np.isfinite(np.asarray(res.metrics["homogenisation"])))
    swept = cj.simulate_graph(
        Exponential(), graph, n=N, generations=4, chains=8, seed=SEED, progress=False, sweep={"rate": [1.0, 3.0]}
    )
    # generation 0 fits the same standard exponentials at every node: the rate scales the fit exactly
    r = np.asarray(swept.metrics["rate"])
    np.testing.assert_allclose(r[1, :, 0], 3.0 * r[0, :, 0], rtol=1e-5)
    path = tmp_path / "exp.ckpt"
    a = run(checkpoint=path, checkpoint_every=0, chains=8)
    b = run(checkpoint=path, checkpoint_every=0, chains=8)  # resumes from the finished checkpoint
    c = run(chains=8)
    for k in c.metrics:
        np.testing.assert_array_equal(np.asarray(a.metrics[k]), np.asarray(c.metrics[k]))
        np.testing.assert_array_equal(np.asarray(b.metrics[k]), np.asarray(c.metrics[k]))


def test_describe_is_generic_for_a_user_family():
    """A family written outside the package gets describe() from its constructor."""
    d = Exponential(2.0, sampler="exact").describe()
    assert d == {"family": "Exponential", "rate": 2.0, "sampler": "exact"}
    d.pop("family")
    assert Exponential(**d).describe() == Exponential(2.0, sampler="exact").describe()


# ---------------------------------------------------------------- docs/EXTENDING.md, a family on a data set
class WaitingTimes(cj.families.OnData):
    """Exponential(rate) refitted by its MLE; with data=, the truth is the rate of the
    data set's first column (positive numbers)."""

    rate: jnp.ndarray
    data: cj.Empirical | None
    _data_first: int = eqx.field(static=True)
    data_truth_args = ("rate",)

    def __init__(self, rate=1.0, data=None):
        self.data, self._data_first = data, 0
        if data is not None:
            rate = 1.0 / float(jnp.mean(data.x[:, 0]))
        self.rate = jnp.asarray(rate, jnp.float32)

    def truth(self):
        return self.rate

    def sample_real(self, key, n, frame=None):
        if self.data is None:
            return self.sample(key, self.rate, n)
        return self.data.draw_x(key, n, self._data_first or None)[:, 0]

    def sample(self, key, params, n, frame=None):
        return -jnp.log(key.uniform((n,), params.dtype)) / params

    def fit(self, key, data, weights, frame=None):
        w = jnp.ones_like(data) if weights is None else weights.astype(data.dtype)
        return jnp.sum(w) / jnp.sum(w * data)

    def metrics(self, key, params):
        return {"log_rate_ratio": jnp.log(params / self.rate.astype(params.dtype))}

    def min_points(self):
        return 1


def test_a_users_family_on_a_data_set():
    """The page's WaitingTimes: generation 0 fits n rows of the pool drawn without
    replacement (their mean is the pool's, so E[1/rate_0] = 1/rate* exactly: the MLE's
    reciprocal is the sample mean), and results store the data's description in place
    of the rate."""
    rng = np.random.default_rng(SEED)
    waits = cj.Empirical(rng.exponential(2.0, size=(500, 1)), name="waits")
    fam = WaitingTimes(data=waits)
    res = cj.simulate(fam, cj.Replace(), n=50, generations=2, chains=2000, seed=SEED, keep="chains", progress=False)
    inv = np.exp(-np.asarray(res.metrics["log_rate_ratio"][:, 0], np.float64))  # rate* / rate_0 = mean_0 / pool mean
    assert_mc_close(inv.mean(), inv.std(ddof=1) / np.sqrt(inv.size), 1.0, label="sample mean of pool rows")
    desc = fam.describe()
    assert desc["rate"] is None and desc["data"]["arrays"] == "waits"
    assert fam.for_run(cj.Replace(), 50, 2)._data_first == 50
