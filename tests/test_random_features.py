"""Random-feature regression (cj.RandomFeatures): the exact law of the linear chain on
both sides of the interpolation threshold, the closed-form test error against Monte
Carlo, width as a swept axis, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SEED, assert_mc_close, z_for

import collapse_jax as cj
from collapse_jax.families.random_features import RFParams

TH = cj.theory.random_features


def _errors(fam, n, gens, chains, widths):
    """test_error per width, chain and generation of a Replace run over ``widths``."""
    res = cj.simulate(fam, cj.Replace(), n=n, generations=gens, chains=chains, seed=SEED, keep="chains",
                      sweep={"width": widths}, metrics=["test_error"], progress=False)  # fmt: skip
    return np.asarray(res.metrics["test_error"], np.float64)


def test_linear_chain_matches_the_projection_law_on_both_sides_of_the_threshold():
    """d = 40, n = 30, sigma = 0.5: width 10 (under-parameterised: linear growth) and
    width 40 (over-parameterised, ridgeless: bounded, forgetting at rate n/k) in one
    program over widths; every generation against THEORY.md section 19."""
    d, n, gens, chains, sigma = 40, 30, 5, 3000, 0.5
    widths = [10, 40]
    err = _errors(cj.RandomFeatures(d, 10, max_width=40, activation="linear", noise=sigma), n, gens, chains, widths)
    g = np.arange(gens + 1)
    expected = np.stack([TH.projection_replace_error(g, n, d, w, sigma) for w in widths])
    assert_mc_close(err.mean(axis=1), err.std(axis=1, ddof=1) / np.sqrt(chains), expected, label="projection law")
    # the over-parameterised chain is bounded: its law converges to projection_limit
    assert TH.projection_replace_error(200, n, d, 40, sigma) == pytest.approx(TH.projection_limit(n, d, 40, sigma))


def test_wider_than_the_input_is_ols_on_x():
    """width >= d with n >= d + 2: the features span R^d and the ridgeless fit is OLS on
    x, the same numbers at every width >= d (the same draws) and E err_g = (g + 1)
    sigma^2 d/(n - d - 1)."""
    d, n, gens, chains = 6, 20, 3, 3000
    err = _errors(cj.RandomFeatures(d, 6, max_width=12, activation="linear"), n, gens, chains, [6, 12])
    np.testing.assert_allclose(err[0], err[1], rtol=2e-3, atol=1e-6)
    law = TH.projection_replace_error(np.arange(gens + 1), n, d, 12)
    np.testing.assert_allclose(law, cj.theory.ols_replace_test_error(np.arange(gens + 1), n, d))
    assert_mc_close(err[1].mean(0), err[1].std(0, ddof=1) / np.sqrt(chains), law, label="OLS on x")


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_closed_form_test_error_matches_fresh_points(activation):
    """The metric's kernel formula against the mean squared excess over 2^17 fresh x."""
    fam = cj.RandomFeatures(5, 12, activation=activation)
    ctx = fam.init_chain(jax.random.key(3), 10)
    bound = fam.with_chain(ctx)
    a = jax.random.normal(jax.random.key(4), (12,)) / 3
    x = jax.random.normal(jax.random.key(5), (2**17, 5))
    excess = np.asarray((bound.features(x) @ a - x @ fam.w_star) ** 2, np.float64)
    exact = float(bound.metrics(jax.random.key(6), RFParams(a))["test_error"])
    assert_mc_close(excess.mean(), excess.std(ddof=1) / np.sqrt(excess.size), exact, label=activation)


def test_feature_directions_are_orthonormal_then_unit():
    fam = cj.RandomFeatures(4, 7, activation="relu")
    W = np.asarray(fam.init_chain(jax.random.key(0), 5).W, np.float64)
    np.testing.assert_allclose(W[:4] @ W[:4].T, np.eye(4), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), 1.0, atol=1e-5)


def test_width_in_a_sweep_is_the_same_model_as_a_run_at_that_width():
    base = dict(dim=8, max_width=16, activation="relu", noise=0.3)
    kw = dict(n=12, generations=2, chains=8, seed=SEED, keep="chains", progress=False, metrics=["test_error"])
    sw = cj.simulate(cj.RandomFeatures(width=16, **base), cj.Replace(), sweep={"width": [4, 16]}, **kw)
    one = cj.simulate(cj.RandomFeatures(width=4, **base), cj.Replace(), **kw)
    np.testing.assert_allclose(
        np.asarray(sw.metrics["test_error"][0]), np.asarray(one.metrics["test_error"]), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: cj.RandomFeatures(4, 0), "width must be a whole number >= 1"),
        (lambda: cj.RandomFeatures(4, 2.5), "width must be a whole number >= 1"),
        (lambda: cj.RandomFeatures(4, 9, max_width=8), "width=9 exceeds max_width=8"),
        (lambda: cj.RandomFeatures(4, 2, activation="tanh"), "activation must be one of"),
        (lambda: cj.RandomFeatures(4, 2, lam=-1.0), "lam must lie in"),
        (lambda: cj.RandomFeatures(4, 2, w_star=[1.0, 2.0]), r"w_star must be a finite vector of shape \(4,\)"),
        (lambda: TH.projection_replace_error(0, 30, 40, 30), "interpolation threshold"),
        (lambda: TH.projection_replace_error(0, 20, 30, 35), "no closed form"),
    ],
)
def test_bad_input_is_a_clear_error(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_sweeping_past_max_width_is_refused_before_compiling():
    fam = cj.RandomFeatures(4, 2, max_width=8)
    with pytest.raises(ValueError, match=r"sweep value 9.0 for 'width' is invalid: .* max_width=8"):
        cj.simulate(fam, cj.Replace(), n=10, generations=1, chains=2, sweep={"width": [2, 9]})
    with pytest.raises(ValueError, match="whole number"):
        cj.simulate(fam, cj.Replace(), n=10, generations=1, chains=2, sweep={"width": [2.5]})


def test_a_traced_width_inside_the_users_jit():
    @jax.jit
    def err(width):
        fam = cj.RandomFeatures(6, width, max_width=10, activation="linear")
        f = cj.chain_fn(fam, cj.Replace(), n=20, generations=1, metrics=["test_error"])
        return f(jax.random.key(1))[0]["test_error"]

    assert np.all(np.isfinite(np.asarray(err(jnp.float32(3.0)))))
    assert not np.allclose(np.asarray(err(jnp.float32(3.0))), np.asarray(err(jnp.float32(9.0))))


# --------------------------------------------------------------------------- the Gaussian equivalent
def test_gaussian_equivalent_of_linear_features_is_the_exact_law_and_bad_input_is_refused():
    ge = cj.theory.random_features.gaussian_equivalent_error
    g = np.arange(6)
    for n, d, width in ((80, 40, 20), (30, 40, 10), (100, 12, 12)):
        np.testing.assert_allclose(
            ge(g, n, d, width, "linear", 0.7, 2.0),
            cj.theory.random_features.projection_replace_error(g, n, d, width, 0.7, 2.0),
            rtol=1e-12,
        )
    with pytest.raises(ValueError, match="at most min"):
        ge(0, 30, 40, 29)
    with pytest.raises(ValueError, match="activation must be one of"):
        ge(0, 80, 40, 20, "tanh")


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_gaussian_equivalent_is_approached_as_the_dimension_grows(activation):
    """The Gaussian equivalent is a deterministic equivalent, not a finite-d law: at
    fixed N/d = 1 and n/d = 3 the simulation's relative gap to it at d = 40 is smaller
    than at d = 5, by more than the Monte Carlo error of the difference (generation
    0..2, 4000 chains each)."""
    ge = cj.theory.random_features.gaussian_equivalent_error
    gaps, ses = [], []
    for d in (5, 40):
        fam = cj.RandomFeatures(d, d, activation=activation)
        res = cj.simulate(fam, cj.Replace(), n=3 * d, generations=2, chains=4000, seed=SEED, metrics=["test_error"],
                          progress=False)  # fmt: skip
        th = ge(np.arange(3), 3 * d, d, d, activation)
        gaps.append(np.abs(np.asarray(res.mean("test_error")) / th - 1.0))
        ses.append(np.asarray(res.se("test_error")) / th)
    shrink = gaps[0] - gaps[1]
    z = z_for(shrink.size)
    assert np.all(shrink > z * np.hypot(ses[0], ses[1])), (gaps, ses)


def test_gaussian_equivalent_is_exact_for_the_equivalent_model():
    """The formula's algebra, under its own assumption: a host Monte Carlo of the
    Gaussian-equivalent model itself (features mu_1 W x + mu_* xi, exactly Gaussian;
    erf's mu_0 = 0, so the rows are centred and the OLS identities are exact), with its
    excess risk a^T Sigma_F a - 2 mu_1 a^T W w* + s^2, matches the law at every
    generation within Monte Carlo error."""
    mu0, mu1, second = cj.theory.random_features.HERMITE["erf"]
    mu_star = np.sqrt(second - mu0 * mu0 - mu1 * mu1)
    d, width, n, gens, chains, sigma = 20, 10, 40, 3, 4000, 0.7
    rng = np.random.default_rng(SEED)
    w_star = np.full(d, 1.0 / np.sqrt(d))
    q, r = np.linalg.qr(rng.normal(size=(chains, d, width)))
    W = np.swapaxes(q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :], 1, 2)  # (chains, N, d) Haar rows
    c = mu1 * mu1 + mu_star * mu_star  # Sigma_F = c I on orthonormal directions

    def design():
        x = rng.normal(size=(chains, n, d))
        return x, mu1 * np.einsum("cnd,cjd->cnj", x, W) + mu_star * rng.normal(size=(chains, n, width))

    def ols(F, y):
        return np.linalg.solve(np.einsum("cni,cnj->cij", F, F), np.einsum("cni,cn->ci", F, y)[..., None])[..., 0]

    def risk(a):
        return c * np.sum(a * a, axis=1) - 2 * mu1 * np.einsum("ci,cid,d->c", a, W, w_star) + w_star @ w_star

    x, F = design()
    a = ols(F, x @ w_star + sigma * rng.normal(size=(chains, n)))
    errs = [risk(a)]
    for _ in range(gens):
        _, F = design()
        a = ols(F, np.einsum("cni,ci->cn", F, a) + sigma * rng.normal(size=(chains, n)))
        errs.append(risk(a))
    errs = np.stack(errs, axis=1)
    law = cj.theory.random_features.gaussian_equivalent_error(np.arange(gens + 1), n, d, width, "erf", sigma)
    assert_mc_close(errs.mean(0), errs.std(0, ddof=1) / np.sqrt(chains), law, label="Gaussian-equivalent model")
