"""Every Gaussian closed form against the simulator, with tolerances from the
Monte Carlo standard error (STYLE.md section 6). Light-tailed targets only:
E[log variance], E[sd], mean errors, and E[variance] where its relative variance
is small (THEORY.md section 12)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SEED, assert_mc_close, summary_at

import collapse_jax as cj
from collapse_jax import theory as T

CHAINS = 20_000
N = 10
G = 30
GENS = [0, 1, 2, 5, 10, 30]
BOTH = [(e, s) for e in ("mle", "unbiased") for s in ("samples", "exact")]


def run(fam, regime, n=N, generations=G, chains=CHAINS, **kw):
    return cj.simulate(fam, regime, n=n, generations=generations, chains=chains, seed=SEED, progress=False, **kw)


@pytest.mark.parametrize("estimator,sampler", BOTH)
def test_replace_learned_variance(estimator, sampler):
    res = run(cj.Gaussian(estimator=estimator, sampler=sampler), cj.Replace())
    g = np.array(GENS)
    checks = {
        "log_variance": T.log_variance_mean(g, N, estimator),
        "sd": T.sd_mean(g, N, estimator),
        "mean_sq_error": T.mean_sq_error_replace(g, N, estimator),
        "w2_sq_to_truth": T.w2_sq_mean(g, N, estimator),
    }
    for metric, expected in checks.items():
        mean, se = summary_at(res, metric, GENS)
        assert_mc_close(mean, se, expected, label=f"{metric} {estimator} {sampler}", rate=1e-4 / len(checks))
    # Var[log variance] = (g+1) trigamma((n-1)/2): check the sample variance via its own se
    lv = res.metrics["log_variance"].astype(np.float64)
    for gi in (0, 10, 30):
        x = lv[:, gi]
        v = x.var(ddof=1)
        se_v = np.sqrt(np.var((x - x.mean()) ** 2, ddof=1) / len(x))
        assert_mc_close(v, se_v, T.log_variance_var(gi, N), label=f"Var log variance g={gi}")


def test_replace_variance_where_light_tailed():
    # n = 100, g <= 20: relative variance of sigma^2 below 0.5 (THEORY.md section 12)
    for est in ("mle", "unbiased"):
        res = run(cj.Gaussian(estimator=est), cj.Replace(), n=100, generations=20)
        g = np.array([0, 5, 20])
        assert T.variance_relative_var(20, 100, est) < 0.6
        mean, se = summary_at(res, "variance", g)
        assert_mc_close(mean, se, T.variance_mean(g, 100, est), label=f"E variance {est}")


@pytest.mark.parametrize("estimator,sampler", BOTH)
def test_accumulate(estimator, sampler):
    res = run(cj.Gaussian(estimator=estimator, sampler=sampler), cj.Accumulate())
    g = np.array(GENS)
    for metric, expected in (
        ("mean_sq_error", T.mean_sq_error_accumulate(g, N, estimator)),
        ("variance", T.variance_mean_accumulate(g, N, estimator)),
    ):
        mean, se = summary_at(res, metric, GENS)
        assert_mc_close(mean, se, expected, label=f"accumulate {metric} {estimator} {sampler}", rate=5e-5)


def test_accumulate_known_variance():
    res = run(cj.Gaussian(learn_cov=False), cj.Accumulate())
    g = np.array(GENS)
    mean, se = summary_at(res, "mean_sq_error", GENS)
    assert_mc_close(mean, se, T.mean_sq_error_accumulate(g, N, "mle", learn_cov=False), label="accumulate known var")


def test_accumulate_stays_bounded_for_many_generations():
    # Barzilai-Shamir / Kazdan: accumulate-MLE stays bounded; exact and O(1) per generation
    res = run(cj.Gaussian(sampler="exact"), cj.Accumulate(), generations=400, chains=5000, keep="summary")
    g = [100, 400]
    mean, se = summary_at(res, "variance", g)
    assert_mc_close(mean, se, T.variance_mean_accumulate(np.array(g), N, "mle"), label="accumulate long")


@pytest.mark.parametrize("estimator,sampler", BOTH)
@pytest.mark.parametrize("lam", [0.3, 0.7])
def test_freshmix_learned_variance(estimator, sampler, lam):
    res = run(cj.Gaussian(estimator=estimator, sampler=sampler), cj.FreshMix(lam))
    g = np.array(GENS)
    e2, v = T.freshmix_moments(g, N, lam, estimator)
    for metric, expected in (("mean_sq_error", e2), ("variance", v)):
        mean, se = summary_at(res, metric, GENS)
        assert_mc_close(mean, se, expected, label=f"freshmix {lam} {metric} {estimator} {sampler}", rate=5e-5)


def test_freshmix_known_variance_steady_state():
    lam, n = 0.25, 20
    res = run(cj.Gaussian(learn_cov=False), cj.FreshMix(lam), n=n, generations=60)
    g = np.array([0, 1, 3, 10, 60])
    mean, se = summary_at(res, "mean_sq_error", g)
    e2, _ = T.freshmix_moments(g, n, lam, "mle", learn_cov=False)
    assert_mc_close(mean, se, e2, label="freshmix known var")
    assert abs(e2[-1] - T.freshmix_steady_state(n, lam)) < 1e-6


def test_retain_original_known_variance():
    n = 20
    for f in (0.25, 0.6):
        res = run(cj.Gaussian(learn_cov=False), cj.RetainOriginal(f), n=n, generations=40)
        g = np.array([0, 1, 5, 40])
        mean, se = summary_at(res, "mean_sq_error", g)
        assert_mc_close(mean, se, T.retain_original_mean_sq_error(g, n, f), label=f"retain {f}", rate=5e-5)


def test_weighted_golden_ratio_known_variance():
    n, k = 20, 2.0
    w_star = float(T.optimal_real_weight(k))
    res = run(cj.Gaussian(learn_cov=False), cj.Weighted(w_star, ratio=k), n=n, generations=40)
    g = np.array([0, 1, 5, 40])
    mean, se = summary_at(res, "mean_sq_error", g)
    assert_mc_close(mean, se, T.weighted_mean_sq_error(g, n, w_star, k), label="weighted golden")


@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_weighted_unbiased_learned_steady_state(sampler):
    # He-Xu-Cheng: estimate averaging with the unbiased estimator keeps E sigma^2 = sigma0^2,
    # so the known-variance error recursion is exact for the mean error
    n, k, w = 20, 1.0, 0.6
    res = run(cj.Gaussian(estimator="unbiased", sampler=sampler), cj.Weighted(w, ratio=k), n=n, generations=40)
    g = np.array([0, 1, 5, 40])
    mean, se = summary_at(res, "mean_sq_error", g)
    assert_mc_close(mean, se, T.weighted_mean_sq_error(g, n, w, k), label="weighted unbiased")


def test_multivariate_trace_and_logdet():
    d, n = 3, 20
    cov = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
    for est in ("mle", "unbiased"):
        for sampler in ("samples", "exact"):
            res = run(
                cj.Gaussian(dim=d, estimator=est, cov=cov, sampler=sampler),
                cj.Replace(),
                n=n,
                generations=10,
                chains=10_000,
                metrics=["logdet_ratio", "trace_ratio", "mean_sq_error"],
            )
            g = np.array([0, 3, 10])
            mean, se = summary_at(res, "logdet_ratio", g)
            assert_mc_close(mean, se, T.logdet_ratio_mean(g, n, d, est), label=f"logdet {est} {sampler}", rate=3e-5)
            # Var[log det ratio] = (g+1) sum_i trigamma((n-i)/2), checked through the se of a variance
            x = res.metrics["logdet_ratio"][:, 10].astype(np.float64)
            se_v = np.sqrt(np.var((x - x.mean()) ** 2, ddof=1) / len(x))
            assert_mc_close(
                x.var(ddof=1), se_v, T.logdet_ratio_var(10, n, d), label=f"Var logdet {est} {sampler}", rate=3e-5
            )
            mean, se = summary_at(res, "trace_ratio", g)
            assert_mc_close(mean, se, T.trace_ratio_mean(g, n, est), label=f"trace {est} {sampler}", rate=3e-5)
            # mean error: sum_k E tr Sigma_k / n with E tr Sigma_k = tr Sigma0 r^k
            r = (n - 1) / (n - (1 if est == "unbiased" else 0))
            expected = np.array([np.trace(cov) * sum(r**j for j in range(gi + 1)) / n for gi in g])
            mean, se = summary_at(res, "mean_sq_error", g)
            assert_mc_close(mean, se, expected, label=f"mse d=3 {est} {sampler}", rate=3e-5)


def test_collapse_probability_normal_approximation():
    # the normal approximation is not exact: compare within MC error plus 0.02
    res = run(cj.Gaussian(sampler="exact"), cj.Replace(), generations=40, thresholds={"sd": 0.3}, keep="summary")
    p = res.prob_below("sd", 0.3).set_index("generation")
    for g in (10, 20, 40):
        approx = T.collapse_probability(g, N, "mle", 0.3)
        assert abs(p.loc[g, "p"] - approx) < 0.02 + 5 * p.loc[g, "se"]
