"""Tiny neural generators (cj.NeuralDensity, cj.VAE, cj.CouplingFlow): fitted by Adam inside the chains,
vmapped over chains, their initialisation noise on the fit stream apart from the
sampling noise, their diagnostics and held-out measures, and bad input. Tiny sizes in
the default suite."""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
import pytest
from conftest import SEED

import collapse_jax as cj
from collapse_jax._rng import STREAM_SYNTH, Stream, root_key

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def wine2():
    return cj.Empirical.load("wine", features=[0, 6])


def _stream(chain: int, s: int = STREAM_SYNTH, g: int = 1) -> Stream:
    return Stream(jax.random.key_data(root_key(chain)), np.int32(g), s)


def test_neural_density_learns_the_pool_and_drifts_under_recursion(wine2):
    fam = cj.NeuralDensity(wine2, grid=12, hidden=(16,), steps=150)
    res = cj.simulate(fam, cj.Replace(), n=120, generations=3, chains=24, seed=SEED, keep="chains", progress=False)
    tv = np.asarray(res.metrics["tv_to_pool"])
    assert np.all(np.isfinite(tv)) and np.all((tv >= 0) & (tv <= 1))
    # the optimiser converged well enough to model the data: the fit beats the uniform density on the grid
    uniform = 0.5 * np.abs(np.asarray(fam.pool_probs) - 1 / fam.pool_probs.size).sum()
    assert tv[:, 0].mean() < 0.8 * uniform
    # diagnostics: the final loss and gradient norm of every fit
    assert set(res.diagnostics) >= {"final_loss", "grad_norm"}
    assert np.all(np.isfinite(np.asarray(res.diagnostics["final_loss"])))
    # recursion loses the data's spread on average (entropy falls), the held-out loss rises
    h = np.asarray(res.metrics["entropy"])
    assert h[:, -1].mean() < h[:, 0].mean()
    for k in cj.data.HELDOUT_METRICS:
        assert np.all(np.isfinite(np.asarray(res.metrics[k]))), k


def test_initialisation_noise_lives_on_the_fit_stream(wine2):
    """The same data fitted on two generations' fit streams: different weights with
    init="random", identical with init="fixed"; the sampling stream is never read."""
    x = wine2.x[:40]
    for init, same in (("random", False), ("fixed", True)):
        fam = cj.NeuralDensity(wine2, grid=8, hidden=(8,), steps=5, init=init)
        a = fam.fit(_stream(0, g=1), x, None)
        b = fam.fit(_stream(0, g=2), x, None)
        eq = all(
            np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(jax.tree.leaves(a.net), jax.tree.leaves(b.net))
        )
        assert eq == same, init


def test_warm_start_continues_from_the_previous_fit(wine2):
    fam = cj.NeuralDensity(wine2, grid=8, hidden=(8,), steps=20, init="warm")
    x = wine2.x[:60]
    first = fam.fit(_stream(0), x, None)
    again = fam.fit_warm(_stream(0), x, None, first)
    assert float(again.loss) <= float(first.loss) + 1e-6


@pytest.mark.slow
def test_vae_runs_vmapped_and_measures_the_test_split():
    dig = cj.Empirical.load("digits")
    vae = cj.VAE(dig, latent=2, hidden=8, steps=20)
    res = cj.simulate(vae, cj.Replace(), n=60, generations=2, chains=4, seed=SEED, keep="chains", progress=False)
    for k in ("test_nelbo", "energy_distance", "coverage", "precision", "diversity", "decoder_sd"):
        v = np.asarray(res.metrics[k])
        assert v.shape == (4, 3) and np.all(np.isfinite(v)), k
    assert np.all(np.asarray(res.metrics["decoder_sd"]) >= np.exp(-1.0) - 1e-6)  # the variance floor
    # chain c of simulate is the composable kernel on its key
    f = cj.chain_fn(vae, cj.Replace(), n=60, generations=2, metrics=["energy_distance"])
    one = np.asarray(f(jax.random.fold_in(jax.random.key(SEED), 2))[0]["energy_distance"])
    np.testing.assert_allclose(one, np.asarray(res.metrics["energy_distance"][2]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: cj.VAE(None), "data= is required"),
        (lambda: cj.NeuralDensity(cj.Empirical.load("iris")), "1 or 2 features"),
        (lambda: cj.NeuralDensity(cj.Empirical.load("iris", features=[0]), grid=1), "grid must be >= 2"),
        (lambda: cj.VAE(cj.Empirical.load("iris"), steps=0), "steps must be >= 1"),
        (lambda: cj.VAE(cj.Empirical.load("iris"), init="zeros"), "init must be one of"),
        (lambda: cj.VAE(cj.Empirical.load("iris"), learning_rate=-1.0), "learning_rate must lie in"),
        (lambda: cj.CouplingFlow(cj.Empirical.load("iris", features=[0])), "at least 2 features"),
        (lambda: cj.CouplingFlow(cj.Empirical.load("iris"), layers=16), "layers must be at most 15"),
        (lambda: cj.CouplingFlow(cj.Empirical.load("iris"), layers=0), "layers must be >= 1"),
        (lambda: cj.CouplingFlow(cj.Empirical.load("iris"), scale_bound=0.0), "scale_bound"),
    ],
)
def test_bad_input_is_a_clear_error(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def _perturbed_flow(flow, scale: float = 0.3):
    """A flow's initial networks with every weight moved off zero (not the identity)."""
    nets = flow._start(_stream(3).sibling(cj._rng.STREAM_FIT), np.float32)
    leaves, tree = jax.tree.flatten(nets)
    keys = jax.random.split(jax.random.key(SEED), len(leaves))
    return jax.tree.unflatten(tree, [a + scale * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)])


def test_coupling_flow_is_invertible_and_its_log_det_is_the_jacobians():
    """The density is exact: from_latent inverts to_latent, and the flow's log |det|
    equals that of the Jacobian computed by autodiff, at random (non-identity) weights,
    in 3 dimensions (odd: the couplings keep 2 and 1 coordinates in turn)."""
    for data in (cj.Empirical.load("wine", features=[0, 6, 9]),):
        flow = cj.CouplingFlow(data, layers=3, hidden=8)
        nets = _perturbed_flow(flow)
        x = data.x[:16]

        @jax.jit
        def check(nets, x, flow=flow):
            z, log_det = flow.to_latent(nets, x)
            jac = jax.vmap(jax.jacfwd(lambda v: flow.to_latent(nets, v[None])[0][0]))(x)
            return z, log_det, flow.from_latent(nets, z), jac

        z, log_det, back, jac = check(nets, x)
        np.testing.assert_allclose(np.asarray(back), np.asarray(x), atol=2e-5)
        np.testing.assert_allclose(np.asarray(log_det), np.asarray(np.linalg.slogdet(jac)[1]), atol=1e-4)
        assert float(np.std(np.asarray(log_det))) > 0.05  # the check saw a non-constant Jacobian


def test_coupling_flow_starts_as_the_identity_and_its_init_noise_is_on_the_fit_stream():
    data = cj.Empirical.load("wine", features=[0, 6])
    flow = cj.CouplingFlow(data, layers=2, hidden=8, steps=5)
    start = flow._start(flow._fit_stream(_stream(0)), np.float32)
    z, log_det = flow.to_latent(start, data.x[:8])
    np.testing.assert_array_equal(np.asarray(z), np.asarray(data.x[:8]))
    np.testing.assert_array_equal(np.asarray(log_det), 0.0)
    x = data.x[:40]
    for init, same in (("random", False), ("fixed", True)):
        f = cj.CouplingFlow(data, layers=2, hidden=8, steps=5, init=init)
        fit = eqx.filter_jit(lambda s, f=f: f.fit(s, x, None))
        a, b = fit(_stream(0, g=1)), fit(_stream(0, g=2))
        eq = all(
            np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(jax.tree.leaves(a.net), jax.tree.leaves(b.net))
        )
        assert eq == same, init


def test_coupling_flow_learns_a_curved_density_the_gaussian_cannot():
    """On a banana-shaped data set the fitted flow's held-out log-likelihood beats the
    pool's Gaussian (the best Gaussian) by more than 3 standard errors of the paired
    per-point difference."""
    rng = np.random.default_rng(SEED)
    u = rng.normal(size=(1500, 2))
    x = np.stack([u[:, 0], u[:, 1] * 0.4 + 0.8 * (u[:, 0] ** 2 - 1.0)], axis=1)
    data = cj.Empirical(x, test_fraction=0.3, name="banana")
    flow = cj.CouplingFlow(data, layers=4, hidden=16, steps=400, learning_rate=0.01)
    fit = flow.fit(_stream(0), data.x, None)
    xt = np.asarray(data.x_test, np.float64)
    pool = np.asarray(data.x, np.float64)
    mu, cov = pool.mean(0), np.cov(pool.T, bias=True)
    r = np.linalg.solve(np.linalg.cholesky(cov), (xt - mu).T)
    gauss = 0.5 * np.sum(r * r, axis=0) + 0.5 * np.linalg.slogdet(2 * np.pi * cov)[1]
    diff = gauss - (-np.asarray(flow.log_density(fit.net, data.x_test), np.float64))
    z = diff.mean() / (diff.std(ddof=1) / np.sqrt(diff.size))
    assert z > 3, (diff.mean(), z)
