"""Deep collapse of the d-dimensional Gaussian is not a numerical failure.

Under Replace the fitted Cholesky factor is a product of Bartlett factors whose
later coordinates shrink faster, so the directions' scales drift apart without
bound. Chains are run far past the point where det Sigma (float32: log det < -87)
and even the scale spread leave the float range, and every chain must stay finite
and follow the log-det law: log det Sigma_g - log det Sigma_0 is a sum of g + 1
i.i.d. terms sum_{i=1}^{d} log(chi^2_{n-i} / (n - delta)) (Bartlett 1933; Shumailov
et al. 2024), mean `logdet_ratio_mean`, variance `logdet_ratio_var`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED, assert_mc_close

import collapse_jax as cj
from collapse_jax import theory as T

CHAINS = 200
# metrics that may legitimately leave the float range upwards once the fit has collapsed
MAY_BE_INF = ("kl_to_truth", "heldout_nll")


def _deep_run(dim: int, sampler: str, generations: int, dtype: str = "float32", all_metrics: bool = True):
    n = dim + 1  # the fastest collapse, and the most nearly singular in-frame scatters
    metrics = None if all_metrics else ["logdet_ratio", "mean_sq_error"]
    res = cj.simulate(
        cj.Gaussian(dim=dim, sampler=sampler),
        cj.Replace(),
        n=n,
        generations=generations,
        chains=CHAINS,
        seed=SEED + dim,
        progress=False,
        dtype=dtype,
        metrics=metrics,
    )
    return res, n


def _check_deep(res, dim: int, n: int, generations: int, depth: float):
    assert not res.nonfinite.any(), f"parameters non-finite in {int(res.nonfinite.any(axis=1).sum())} chains"
    for name, values in res.metrics.items():
        v = np.asarray(values)
        assert not np.isnan(v).any(), f"{name}: NaN in {int(np.isnan(v).any(axis=1).sum())} chains"
        if name not in MAY_BE_INF:
            assert np.isfinite(v).all(), f"{name}: non-finite values"
    if "tail_mass" in res.metrics:
        tail = np.asarray(res.metrics["tail_mass"])
        assert np.all((tail >= 0) & (tail <= 1))
        # KL(truth || fit) has left the float range upwards in every chain: +inf, counted
        assert np.isposinf(res.metrics["kl_to_truth"][:, -1]).all()
    ld = np.asarray(res.metrics["logdet_ratio"], np.float64)
    # deep: the last generation lies far beyond the float range of det Sigma itself
    assert ld[:, -1].max() < depth, f"not deep enough: max log det ratio {ld[:, -1].max():.0f}"
    gens = np.array([generations // 4, generations // 2, generations])
    mean = ld[:, gens].mean(axis=0)
    se = np.sqrt(T.logdet_ratio_var(gens, n, dim) / ld.shape[0])
    assert_mc_close(mean, se, T.logdet_ratio_mean(gens, n, dim, "mle"), label=f"log det d={dim}")


@pytest.mark.parametrize("sampler", ["samples", "exact"])
@pytest.mark.parametrize("dim,generations", [(2, 600), (3, 450), (5, 300)])
def test_deep_collapse_stays_finite_and_follows_the_logdet_law(dim, generations, sampler):
    # E log det ratio at the last generation: about -2000 (d = 2 and 3) and -2070 (d = 5),
    # some 23 times float32's log det range
    # the metrics are the same code on both paths: in float32 the exact path checks the
    # fits only (compiling every d-D metric with the exact sampler costs about 10 s)
    res, n = _deep_run(dim, sampler, generations, all_metrics=sampler == "samples")
    _check_deep(res, dim, n, generations, depth=-1000.0)


@pytest.mark.parametrize("sampler", ["samples", pytest.param("exact", marks=pytest.mark.slow)])
def test_deep_collapse_in_float64(sampler):
    # float64's det underflows near log det -745; run to about -4100
    dim, generations = 3, 900
    res, n = _deep_run(dim, sampler, generations, dtype="float64")
    assert res.metrics["logdet_ratio"].dtype == np.float64
    _check_deep(res, dim, n, generations, depth=-2500.0)


def test_nearly_singular_samples_keep_their_small_direction():
    # d + 1 points almost in a plane: the scatter's smallest pivot is ~1e-4 of the
    # largest, so its square is at float32's resolution of the scatter. The fit must
    # still resolve it; a Cholesky factorisation of the float32 scatter returns NaN
    # for about half of such samples and is off by up to e^10 for the rest.
    fam = cj.Gaussian(dim=3)
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(64, 4, 3))
    x[..., 2] = x[..., :2] @ np.array([0.7, -0.4]) + 1e-4 * rng.normal(size=(64, 4))
    x32 = x.astype(np.float32)
    key = jax.random.key(SEED)
    p = jax.vmap(lambda xi: fam.fit(key, xi, jnp.ones(4, jnp.float32)))(jnp.asarray(x32))
    logdet = np.asarray(jax.vmap(fam._logdet_ratio)(p), np.float64)  # the truth is N(0, I)
    expected = np.array([np.linalg.slogdet(np.cov(xi.T, ddof=0))[1] for xi in x32.astype(np.float64)])
    assert np.all(np.isfinite(logdet))
    err = np.abs(logdet - expected)
    assert err.max() < 0.25, f"log det off by {err.max():.3f} (expected {expected[np.argmax(err)]:.2f})"


def test_tempered_deep_collapse_follows_the_shifted_law():
    # synthetic data from the tempered model N(mu, tau^2 Sigma) in the frame of Sigma:
    # the relative map is tau I exactly, however far the directions' scales have drifted
    # apart. Each synthetic generation adds 2 d log tau to the log det:
    # E log det ratio_g = (g + 1) drift + 2 d g log tau (generation 0 fits real data).
    dim, n, tau, generations = 3, 4, 0.9, 400
    res = cj.simulate(
        cj.Pressured(cj.Gaussian(dim=dim), temperature=tau),
        cj.Replace(),
        n=n,
        generations=generations,
        chains=CHAINS,
        seed=SEED,
        progress=False,
        metrics=["logdet_ratio", "mean_sq_error"],
    )
    assert not res.nonfinite.any()
    ld = np.asarray(res.metrics["logdet_ratio"], np.float64)
    assert np.isfinite(ld).all() and ld[:, -1].max() < -1000
    gens = np.array([generations // 2, generations])
    expected = T.logdet_ratio_mean(gens, n, dim, "mle") + 2 * dim * gens * np.log(tau)
    se = np.sqrt(T.logdet_ratio_var(gens, n, dim) / ld.shape[0])
    assert_mc_close(ld[:, gens].mean(axis=0), se, expected, label="tempered log det")


def _cov(p) -> np.ndarray:
    """Sigma in float64 from (log_scale, log_shape, unit)."""
    chol = np.exp(float(p.log_scale)) * np.asarray(p.unit, np.float64) * np.exp(np.asarray(p.log_shape, np.float64))
    return chol @ chol.T


def _params(mean, log_scale, log_diag_spread, unit):
    shape = np.asarray(log_diag_spread, np.float64)
    return cj.GaussianParams(
        jnp.asarray(mean, jnp.float32),
        jnp.asarray(log_scale, jnp.float32),
        jnp.asarray(shape - shape.mean(), jnp.float32),
        jnp.asarray(unit, jnp.float32),
    )


def test_combining_estimates_with_a_deeply_collapsed_fit():
    # He, Xu, Cheng's estimate averaging: Sigma = w Sigma_real + (1 - w) Sigma_synth
    fam = cj.Gaussian(dim=3)
    unit = np.array([[1.0, 0.0, 0.0], [0.4, 1.0, 0.0], [-0.3, 0.8, 1.0]])
    real = _params([0.1, 0.2, -0.1], 0.1, [0.3, 0.0, -0.2], unit)
    moderate = _params([0.5, -0.5, 0.0], -0.4, [0.5, -0.1, 0.2], [[1.0, 0.0, 0.0], [-0.6, 1.0, 0.0], [0.2, 0.5, 1.0]])
    for w in (0.3, 0.8):
        c = fam.combine(real, moderate, jnp.float32(w))
        np.testing.assert_allclose(_cov(c), w * _cov(real) + (1 - w) * _cov(moderate), rtol=2e-5, atol=1e-6)
    # a synthetic fit collapsed far below float range, its directions' scales e^300 apart
    collapsed = _params([0.3, 0.0, 0.1], -400.0, [150.0, 0.0, -150.0], unit)
    c = fam.combine(real, collapsed, jnp.float32(0.25))
    assert all(np.all(np.isfinite(np.asarray(x))) for x in (c.log_scale, c.log_shape, c.unit))
    np.testing.assert_allclose(_cov(c), 0.25 * _cov(real), rtol=2e-5, atol=1e-7)
    # w = 0 is the synthetic fit itself
    c = fam.combine(real, collapsed, jnp.float32(0.0))
    for a, b in zip((c.log_scale, c.log_shape, c.unit), (collapsed.log_scale, collapsed.log_shape, collapsed.unit)):
        np.testing.assert_array_equal(a, b)
    m = fam.metrics(jax.random.key(SEED), c)
    assert float(m["logdet_ratio"]) == pytest.approx(6 * -400.0, rel=1e-6)
    assert np.isposinf(float(m["kl_to_truth"])) and 0.0 <= float(m["tail_mass"]) <= 1.0
