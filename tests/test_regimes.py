"""Every regime with both estimators, and their limiting cases."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SEED, assert_mc_close, summary_at

import collapse_jax as cj
from collapse_jax import theory as T

KW = dict(n=12, generations=10, seed=SEED, progress=False, keep="chains")


def run(fam, regime, chains=300, **kw):
    args = dict(KW, chains=chains)
    args.update(kw)
    return cj.simulate(fam, regime, **args)


@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize(
    "regime",
    [
        cj.Replace(),
        cj.Accumulate(),
        cj.AccumulateSubsample(),
        cj.FreshMix(0.3),
        cj.Weighted(0.6, ratio=2.0),
        cj.Weighted(0.6, ratio=0.5, combine="samples"),
        cj.RetainOriginal(0.3),
        cj.AccumulateMix(0.3),
    ],
    ids=["replace", "accumulate", "subsample", "freshmix", "weighted-est", "weighted-samples", "retain", "accmix"],
)
def test_every_regime_runs_with_both_estimators(regime, estimator):
    res = run(cj.Gaussian(estimator=estimator), regime)
    assert not res.nonfinite.any()
    for k, v in res.metrics.items():
        assert v.shape == (300, 11), k
    # generation 0 is the same fit to the same original sample under every regime
    ref = run(cj.Gaussian(estimator=estimator), cj.Replace())
    np.testing.assert_allclose(res.metrics["log_variance"][:, 0], ref.metrics["log_variance"][:, 0], rtol=1e-5)


@pytest.mark.parametrize("learn_cov", [True, False])
def test_freshmix_zero_and_retain_zero_equal_replace(learn_cov):
    fam = cj.Gaussian(learn_cov=learn_cov)
    ref = run(fam, cj.Replace())
    for regime in (cj.FreshMix(0.0), cj.RetainOriginal(0.0)):
        other = run(fam, regime)
        for k in ("mean_sq_error", "log_variance"):
            # float32 last-bit differences from a different fusion, on O(1) values
            np.testing.assert_allclose(other.metrics[k], ref.metrics[k], rtol=1e-5, atol=5e-6)


def test_freshmix_one_refits_fresh_real_data_every_generation():
    res = run(cj.Gaussian(learn_cov=False), cj.FreshMix(1.0), chains=20_000)
    mean, se = summary_at(res, "mean_sq_error", [0, 1, 10])
    assert_mc_close(mean, se, [1 / 12] * 3, label="FreshMix(1)")


def test_retain_original_one_repeats_generation_zero():
    res = run(cj.Gaussian(), cj.RetainOriginal(1.0))
    for k in ("mean_sq_error", "log_variance"):
        x = res.metrics[k]
        np.testing.assert_allclose(x, np.repeat(x[:, :1], x.shape[1], axis=1), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_weighted_zero_is_replace_with_m_points(sampler):
    n, k = 12, 2.0
    m = 6
    res = run(cj.Gaussian(sampler=sampler), cj.Weighted(0.0, ratio=k), chains=20_000)
    g = np.array([0, 1, 5, 10])
    # generation 0 fits n real points; every later fit uses m synthetic points
    expected = np.log(1.0) + T.log_variance_drift(n, "mle") + g * T.log_variance_drift(m, "mle")
    mean, se = summary_at(res, "log_variance", g)
    assert_mc_close(mean, se, expected, label="Weighted(0)")


def test_weighted_one_refits_real_data():
    res = run(cj.Gaussian(learn_cov=False), cj.Weighted(1.0, ratio=1.0), chains=20_000)
    mean, se = summary_at(res, "mean_sq_error", [0, 3, 10])
    assert_mc_close(mean, se, [1 / 12] * 3, label="Weighted(1)")


def test_weighted_samples_with_unit_weight_split_is_pooled_fit():
    # combine="samples" with w = n/(n+m) gives every point weight 1/(n+m): the pooled fit
    n, m = 12, 12
    res = run(
        cj.Gaussian(learn_cov=False),
        cj.Weighted(n / (n + m), ratio=1.0, combine="samples"),
        chains=20_000,
        generations=30,
    )
    # pooled known variance: e_t = (n a + m (e_{t-1} + xi))/(n + m), a ~ N(0, 1/n), xi ~ N(0, 1/m)
    g = np.array([1, 5, 30])
    e2 = [1 / n]
    for _ in range(30):
        e2.append(n / (n + m) ** 2 + (m / (n + m)) ** 2 * (e2[-1] + 1 / m))
    mean, se = summary_at(res, "mean_sq_error", g)
    assert_mc_close(mean, se, np.array(e2)[g], label="Weighted samples pooled")


def test_accumulate_subsample_lies_between_accumulate_and_replace():
    # Kazdan et al.: subsampling degrades, but far more slowly than Replace; paired by common random numbers
    fam = cj.Gaussian()
    kw = dict(chains=4000, generations=30, metrics=["mean_sq_error", "log_variance"])
    acc, sub, rep = (run(fam, r, **kw) for r in (cj.Accumulate(), cj.AccumulateSubsample(), cj.Replace()))
    for hi, lo in ((sub, acc), (rep, sub)):
        d = hi.paired_difference(lo, "mean_sq_error").set_index("generation").loc[30]
        assert d["mean"] > 5 * d["se"]
    # the pool always contains the original sample: the subsample's variance stays far from Replace's collapse
    assert np.median(sub.metrics["log_variance"][:, -1]) > np.median(rep.metrics["log_variance"][:, -1]) + 3


@pytest.mark.parametrize("sampler", ["samples", "exact"])
@pytest.mark.parametrize("share", [0.2, 0.7])
def test_accumulate_mix_mean_error_follows_its_recursion(share, sampler):
    # known variance: S_g = (1 + m/(g n)) S_{g-1} + eps_g, E e_g^2 = Var S_g / ((g + 1) n)^2
    # (cj.theory.accumulate_mix_mean_sq_error); below share 1/2 the error decays like g^(-2 share)
    fam = cj.Gaussian(learn_cov=False, sampler=sampler)
    res = run(fam, cj.AccumulateMix(share), chains=4000, n=10, generations=20)
    x = np.asarray(res.metrics["mean_sq_error"], np.float64)
    g = np.arange(21)
    se = x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])
    assert_mc_close(x.mean(axis=0), se, T.accumulate_mix_mean_sq_error(g, 10, share), label=f"AccumulateMix({share})")
