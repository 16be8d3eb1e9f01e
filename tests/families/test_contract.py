"""The family contract (collapse_jax.families._protocol), checked on every family:
shapes, finiteness, jit, vmap, determinism, the capability laws and the describe()
round trip through the constructor (also for every regime and the synthesis)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import collapse_jax as cj
from collapse_jax.families import (
    AbstractFamily,
    Combinable,
    ExactSampler,
    Located,
    Scorable,
    SubsampleStats,
    SufficientStats,
    Temperable,
    capabilities,
)

N = 12


def _families() -> dict[str, AbstractFamily]:
    return {
        "Gaussian": cj.Gaussian(),
        "Gaussian d=3 exact": cj.Gaussian(dim=3, sampler="exact"),
        "Categorical": cj.Categorical([0.5, 0.3, 0.2]),
        "Categorical tails": cj.Categorical.zipf(1.2, 6, start=[0.5, 0.5, 0, 0, 0, 0], train_sizes=(3, 30)),
        "Bigram": cj.Bigram([[0.6, 0.4, 0.0], [0.2, 0.3, 0.5], [0.0, 0.3, 0.7]]),
        "Bigram text uniform": cj.Bigram.zipf_markov(1.1, 40, seed=2, seq_len=5, unseen="uniform"),
        "Bigram exact": cj.Bigram([[0.7, 0.3], [0.4, 0.6]], sampler="exact"),
        "LabelChain": cj.LabelChain.zipf(1.2, 6, num_labels=3, clean_fraction=0.2),
        "LabelChain inf": cj.LabelChain([0.5, 0.3, 0.2, 0.0]),
        "Poisson": cj.Poisson(0.4),
        "Poisson exact": cj.Poisson(12.5, sampler="exact"),
        "GMM": cj.GMM(2, 1),
        "KDE": cj.KDE(0.5),
        "Ridge fixed": cj.Ridge(dim=2),
        "Ridge fresh exact": cj.Ridge(dim=2, design="fresh", sampler="exact"),
        "BayesGaussian": cj.BayesGaussian(),
        "BayesLinearRegression": cj.BayesLinearRegression(dim=2),
        "NUTSLocation": cj.NUTSLocation(),
        "HuberLocation": cj.HuberLocation(),
        "HuberRegression": cj.HuberRegression(dim=2),
        "GLM": cj.GLM(dim=2),
        "RandomFeatures": cj.RandomFeatures(2, 3, max_width=5, lam=0.01),  # ridgeless at n = 12 is ill-conditioned
        "Gaussian on data": cj.Gaussian(data=cj.Empirical.load("iris", features=[0, 1])),
        "Ridge on data": cj.Ridge(data=cj.Empirical.load("diabetes", features=[2, 8])),
        "Ridge fresh on data": cj.Ridge(data=cj.Empirical.load("diabetes", features=[2, 8]), design="fresh", lam=0.1),
        "Categorical on data": cj.Categorical(data=cj.Empirical.load("iris", features=[0])),
        "NeuralDensity": cj.NeuralDensity(cj.Empirical.load("iris", features=[0, 1]), grid=4, hidden=(4,), steps=3),
        "VAE": cj.VAE(cj.Empirical.load("iris"), latent=1, hidden=4, steps=3),
        "CouplingFlow": cj.CouplingFlow(cj.Empirical.load("iris", features=[0, 1]), layers=2, hidden=4, steps=3),
    }


FAMILIES = _families()


def _stream(i: int = 0) -> cj.Stream:
    return cj.Stream(jnp.asarray([0, i], jnp.uint32), jnp.int32(1), 0)


def _leading(tree) -> set:
    return {x.shape[0] for x in jax.tree.leaves(tree)}


def _structure(tree):
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


def _same_layout(a, b) -> bool:
    """Same tree and dtypes; shapes equal where both leaves hold data (size-0 leaves are
    per-chain context a path does not carry)."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return jax.tree.structure(a) == jax.tree.structure(b) and all(
        x.dtype == y.dtype and (x.shape == y.shape or 0 in (x.size, y.size)) for x, y in zip(la, lb)
    )


def _fit_truth_sample(family, i=0):
    truth = family.for_run(cj.Replace(), N, 1).truth()
    data = family.sample_real(_stream(i), N, truth)
    return family.fit(_stream(i + 100), data, None, truth)


def _close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol)


def _close_fitted(a, b, rtol=1e-4, atol=1e-5):
    """Equal where both carry a leaf: a fixed design's rows travel with the data on the
    points path and with the frame on the statistics path (a leaf of size 0 there)."""
    pairs = [(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)) if np.shape(x) == np.shape(y)]
    assert pairs and jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in pairs:
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol)


# A Markov chain's accept/reject steps turn last-bit differences between two compiled
# programs (eager vs jit, one chain vs a batch) into different draws; for these the
# contract is determinism of each program, finiteness and equal structure.
CHAOTIC = {"NUTSLocation"}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_required_methods_shapes_and_finiteness(name):
    family = FAMILIES[name].for_run(cj.Replace(), N, 1)
    assert N >= family.min_points() >= 1
    truth = family.truth()
    data = family.sample_real(_stream(), N, truth)
    assert _leading(data) == {N}, f"{name}: every data leaf leads with the point axis"
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(data))
    fit = family.fit(_stream(1), data, None, truth)
    assert bool(family.is_finite(fit))
    met = family.metrics(_stream(2), fit)
    assert set(met) == set(family.metric_names())
    for k, v in met.items():
        extra = family.metric_dims.get(k, ())
        assert np.ndim(v) == len(extra), f"{name}: metric {k} has shape {np.shape(v)}, declared dims {extra}"
    for k, v in family.diagnostics(fit).items():
        assert np.ndim(v) == len(family.diagnostic_dims.get(k, ())), k
    for k, v in family.events(fit).items():
        assert np.asarray(v).dtype == bool, k
    # a fit is a model to draw from, with the same layout as real data
    synth = family.sample(_stream(3), fit, N, fit)
    assert _structure(synth) == _structure(data) and _leading(synth) == {N}
    ranks = lambda t: (jax.tree.structure(t), [(x.ndim, x.dtype) for x in jax.tree.leaves(t)])  # noqa: E731
    assert ranks(family.blank_fit()) == ranks(fit), f"{name}: blank_fit has a fit's tree, dtypes and ranks"


@pytest.mark.parametrize("name", list(FAMILIES))
def test_deterministic_and_jit_equals_eager(name):
    family = FAMILIES[name]
    a = _fit_truth_sample(family)
    b = _fit_truth_sample(family)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    jitted = jax.jit(lambda f: _fit_truth_sample(f))(family)
    assert _structure(jitted) == _structure(a)
    assert bool(family.is_finite(jitted))
    again = jax.jit(lambda f: _fit_truth_sample(f))(family)
    for x, y in zip(jax.tree.leaves(jitted), jax.tree.leaves(again)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    if name not in CHAOTIC:
        _close(jitted, a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_vmap_over_chains_equals_one_chain_at_a_time(name):
    family = FAMILIES[name]
    many = jax.vmap(lambda i: _fit_truth_sample(family, i))(jnp.arange(3, dtype=jnp.uint32))
    for i in range(3):
        one = _fit_truth_sample(family, i)
        row = jax.tree.map(lambda x, i=i: x[i], many)
        assert _structure(row) == _structure(one) and bool(family.is_finite(row))
        if name not in CHAOTIC:
            _close(row, one, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_capability_laws(name):
    family = FAMILIES[name].for_run(cj.Replace(), N, 1)
    truth = family.truth()
    data = family.sample_real(_stream(), N, truth)
    fit = family.fit(_stream(1), data, None, truth)
    if isinstance(family, SufficientStats):
        # fit == fit_stats(data_stats(...)), and merging two halves equals the whole
        via_stats = family.fit_stats(family.data_stats(data, None), truth)
        _close_fitted(via_stats, fit)
        half = jax.tree.map(lambda x: x[: N // 2], data), jax.tree.map(lambda x: x[N // 2 :], data)
        merged = family.merge_stats(family.data_stats(half[0], None), family.data_stats(half[1], None))
        _close_fitted(family.fit_stats(merged, truth), fit)
    if isinstance(family, ExactSampler):
        stats = family.sample_real_stats(_stream(3), N, truth)
        assert _same_layout(stats, family.data_stats(data, None))
        assert _same_layout(family.sample_stats(_stream(4), fit, N, fit), stats)
        assert family.sampler in ("samples", "exact")
    if isinstance(family, SubsampleStats):
        pooled = family.merge_stats(family.data_stats(data, None), family.data_stats(data, None))
        sub = family.subsample_stats(_stream(4), pooled, N)
        assert _same_layout(sub, pooled)
    if isinstance(family, Combinable):
        assert "estimates" in family.combine_modes
        _close_fitted(family.combine(fit, fit, jnp.float32(0.3)), fit)
    if isinstance(family, Temperable):
        _close_fitted(family.temper(fit, jnp.float32(1.0)), fit, rtol=1e-6, atol=1e-7)
    if isinstance(family, Scorable):
        score = family.score(fit, data, truth)
        assert score.shape == (N,)
    if isinstance(family, Located):
        assert family.location(fit).ndim == 1


@pytest.mark.parametrize("name", list(FAMILIES))
def test_describe_round_trips_through_the_constructor(name):
    family = FAMILIES[name]
    d = family.describe()
    assert d.pop("family") == type(family).__name__
    again = type(family)(**d)
    assert again.describe() == family.describe()
    assert capabilities(again) == capabilities(family)


@pytest.mark.parametrize(
    "family",
    [
        cj.Ridge(dim=2, w_star="random", downstream=cj.Downstream(5, noise=0.5), design="fresh"),
        cj.Ridge(dim=3, spectrum=1.0, lam=0.1),
        cj.BayesGaussian(2, known_variance=0.5, predictive="posterior"),
        cj.GMM(3, 2, truth={"weights": [0.2, 0.8], "means": [[0, 0], [2, 1]], "covs": [[[1, 0], [0, 1]]] * 2}),
    ],
    ids=lambda f: type(f).__name__,
)
def test_describe_round_trips_arguments_stored_another_way(family):
    d = json.loads(json.dumps(family.describe()))
    name = d.pop("family")
    again = getattr(cj, name)(**d)
    assert again.describe() == family.describe()


def test_describe_is_generic():
    """No family or regime of the package writes its own describe(): every one is the
    constructor's arguments read back (docs/EXTENDING.md)."""
    import collapse_jax.families as fams
    import collapse_jax.regimes as regs
    from collapse_jax.families import AbstractFamily
    from collapse_jax.regimes import AbstractRegime
    from collapse_jax.regimes.graph import GraphRegime

    families = [c for c in vars(fams).values() if isinstance(c, type) and issubclass(c, AbstractFamily)]
    regimes = [c for c in vars(regs).values() if isinstance(c, type) and issubclass(c, AbstractRegime)]
    assert len(families) >= 11 and len(regimes) >= 9
    generic = (AbstractFamily, AbstractRegime, GraphRegime)  # the generic ones; a graph is described by its graph
    own = [c.__name__ for c in families + regimes if "describe" in vars(c) and c not in generic]
    assert own == [], f"hand-written describe(): {own}"


REGIMES = [
    cj.Replace(),
    cj.FreshMix(0.3),
    cj.RetainOriginal(0.2),
    cj.Weighted(0.4, ratio=2.0, combine="samples"),
    cj.Accumulate(),
    cj.AccumulateSubsample(),
    cj.Schedule([5, 6, 7]),
    cj.Provenance(0.5, false_real=0.1, oversample=3),
]


@pytest.mark.parametrize("regime", REGIMES, ids=lambda r: type(r).__name__)
def test_regime_describe_round_trips(regime):
    d = regime.describe()
    assert d.pop("regime") == type(regime).__name__
    assert type(regime)(**d).describe() == regime.describe()


@pytest.mark.parametrize(
    "kw", [{}, {"temperature": 0.8}, {"truncate": 0.9, "oversample": 2}, {"support": 0.95, "false_accept": 0.1}]
)
def test_synthesis_describe_round_trips(kw):
    s = cj.Synthesis(**kw)
    d = s.describe()
    assert d.pop("synthesis") == "Synthesis"
    assert cj.Synthesis(**d).describe() == s.describe()


def test_capabilities_are_classes_not_probes():
    """What each family can do is what it inherits: the table of docs/EXTENDING.md."""
    assert set(capabilities(cj.Gaussian())) >= {"ExactSampler", "Combinable", "Temperable", "Correctable"}
    assert "SubsampleStats" in capabilities(cj.Categorical([0.5, 0.5]))
    assert capabilities(cj.KDE(0.5)) == ("Scorable",)
    assert "Designed" in capabilities(cj.Ridge(dim=2))
    assert "CountWeights" in capabilities(cj.BayesGaussian())
    assert not cj.Gaussian().is_exact and cj.Gaussian(sampler="exact").is_exact


def test_declarations_are_checked_at_class_creation_and_read_only():
    with pytest.raises(ValueError, match=r"Bad.traced_bounds\['lam'\] must be \(low, high\) numbers with low <= high"):

        class Bad(cj.Ridge):
            traced_bounds = {"lam": (1.0, 0.0)}

    with pytest.raises(TypeError, match=r"Bad2.metric_dims\['x'\] must be a tuple of dim names, got \['a'\]"):

        class Bad2(cj.Gaussian):
            metric_dims = {"x": ["a"]}

    with pytest.raises(ValueError, match=r"Bad3.working_set_factor must be an int >= 1, got 0"):

        class Bad3(cj.Gaussian):
            working_set_factor = 0

    with pytest.raises(ValueError, match=r"BadRegime.traced_bounds"):

        class BadRegime(cj.FreshMix):
            traced_bounds = {"real_fraction": (0.5, float("nan"))}

    for obj in (cj.GMM, cj.FreshMix, cj.Synthesis, cj.Ridge):
        with pytest.raises(TypeError):
            obj.traced_bounds["x"] = (0.0, 1.0)  # read-only: no caller changes a class's declaration
    with pytest.raises(TypeError):
        cj.GMM.metric_dims["x"] = ()
