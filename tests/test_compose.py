"""Keys as seeds, the composable kernel (``cj.chain_fn``) inside the user's own
``jit`` / ``vmap`` / ``grad`` / ``scan``, tracer-safe constructors, and the ``jnp``
closed forms of ``cj.theory.traced``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import collapse_jax as cj

FAM = cj.Gaussian(learn_cov=False)
N, G = 20, 30


# --------------------------------------------------------------------------- keys as seeds
def test_key_seed_is_the_int_seed():
    kw = dict(n=10, generations=3, chains=8, keep="chains", progress=False)
    ref = cj.simulate(cj.Gaussian(), seed=7, **kw)
    for seed in (jax.random.key(7), jax.random.PRNGKey(7), np.asarray(jax.random.PRNGKey(7))):
        res = cj.simulate(cj.Gaussian(), seed=seed, **kw)
        np.testing.assert_array_equal(res.metrics["variance"], ref.metrics["variance"])
        assert res.config["seed"] == 7
    # all 64 bits: key data (hi, lo) is seed hi * 2**32 + lo
    k = jax.random.wrap_key_data(jnp.asarray([3, 5], jnp.uint32))
    assert cj.simulate(cj.Gaussian(), seed=k, **kw).config["seed"] == 3 * 2**32 + 5
    derived = jax.random.fold_in(jax.random.key(1), 2)
    a = cj.simulate(cj.Gaussian(), seed=derived, **kw)
    b = cj.simulate(cj.Gaussian(), seed=a.config["seed"], **kw)  # the recorded int reruns it
    np.testing.assert_array_equal(a.metrics["variance"], b.metrics["variance"])


@pytest.mark.parametrize(
    "seed, match",
    [
        (jax.random.key(0, impl="rbg"), "implementation"),
        (jax.random.split(jax.random.key(0), 2), "batch of keys"),
        (np.zeros(4, np.uint32), "uint32 of shape"),
        (1.5, "int in"),
    ],
)
def test_bad_seed_is_refused(seed, match):
    with pytest.raises((TypeError, ValueError), match=match):
        cj.simulate(cj.Gaussian(), n=10, generations=1, chains=2, seed=seed)


# --------------------------------------------------------------------------- chain_fn
def _keys(seed, chains):
    root = jax.random.key(seed)
    return jax.vmap(lambda c: jax.random.fold_in(root, c))(jnp.arange(chains))


def test_chain_fn_is_simulates_chain():
    """Chain c of simulate(seed=s) is f(fold_in(key(s), c)), to float rounding (XLA
    may fuse the one long scan and the driver's blocks differently)."""
    res = cj.simulate(FAM, cj.Weighted(0.5), n=N, generations=G, chains=16, seed=3, keep="chains", progress=False)
    f = cj.chain_fn(FAM, cj.Weighted(0.5), n=N, generations=G)
    m, ev = jax.jit(jax.vmap(f))(_keys(3, 16))
    assert set(m) == set(res.metrics)
    for k in m:
        np.testing.assert_allclose(np.asarray(m[k]), res.metrics[k], rtol=2e-6, atol=1e-7, err_msg=k)
    assert set(ev) == set(res.events)
    np.testing.assert_array_equal(np.asarray(ev["collapse"]), res.events["collapse"])


def test_chain_fn_composes_with_scan_and_raw_keys():
    f = cj.chain_fn(cj.Gaussian(), n=10, generations=4, metrics=["variance"])

    def body(total, key):
        m, _ = f(key)
        return total + m["variance"][-1], m["variance"]

    keys = _keys(0, 5)
    total, per = jax.lax.scan(body, jnp.float32(0), keys)
    direct, _ = jax.vmap(f)(keys)
    np.testing.assert_allclose(np.asarray(per), np.asarray(direct["variance"]), rtol=1e-6)
    np.testing.assert_allclose(float(total), float(direct["variance"][:, -1].sum()), rtol=1e-6)
    raw, _ = f(jax.random.key_data(keys[0]))  # raw uint32[2] key data is the same key
    np.testing.assert_array_equal(np.asarray(raw["variance"]), np.asarray(f(keys[0])[0]["variance"]))


def test_chain_fn_refuses_bad_input():
    with pytest.raises(ValueError, match="unknown metrics"):
        cj.chain_fn(cj.Gaussian(), n=10, generations=2, metrics=["nope"])
    with pytest.raises(ValueError, match="n must be >= 1|n=1 is too small"):
        cj.chain_fn(cj.Gaussian(), n=1, generations=2)
    f = cj.chain_fn(cj.Gaussian(), n=10, generations=2)
    with pytest.raises(ValueError, match="jax.vmap"):
        f(jax.random.split(jax.random.key(0), 3))
    with pytest.raises(ValueError, match="threefry"):
        f(jax.random.key(0, impl="rbg"))


def test_gradient_of_error_in_real_weight_matches_closed_form():
    """d E[e^2_G] / dw under Weighted: the mean of the chains' pathwise gradients
    (each chain's draws are mu + sigma z, so the gradient is unbiased) against the
    central finite difference of the float64 closed form, within 5 Monte Carlo
    standard errors of the per-chain gradients."""
    w0 = 0.4

    def error_at_g(w, key):
        f = cj.chain_fn(FAM, cj.Weighted(w), n=N, generations=G, metrics=["mean_sq_error"])
        return f(key)[0]["mean_sq_error"][-1]

    grads = jax.jit(jax.vmap(jax.grad(error_at_g), in_axes=(None, 0)))(jnp.float32(w0), _keys(0, 4000))
    grads = np.asarray(grads, np.float64)
    assert np.all(np.isfinite(grads))
    est, se = grads.mean(), grads.std(ddof=1) / np.sqrt(grads.size)
    h = 1e-4
    law = cj.theory.weighted_mean_sq_error
    fd = (law(G, N, w0 + h, 1.0) - law(G, N, w0 - h, 1.0)) / (2 * h)
    assert abs(est - fd) < 5 * se, (est, se, fd)
    # and the traced closed form differentiates to the same number
    exact = jax.grad(lambda w: cj.theory.traced.weighted_mean_sq_error(G, N, w, 1.0))(w0)
    np.testing.assert_allclose(float(exact), fd, rtol=1e-3)


def test_rounded_counts_have_zero_gradient():
    """FreshMix rounds its real share to a count: a zero gradient by construction
    (documented in chain_fn; use Weighted or a sweep's finite difference)."""

    def err(r, key):
        f = cj.chain_fn(FAM, cj.FreshMix(r), n=N, generations=3, metrics=["mean_sq_error"])
        return f(key)[0]["mean_sq_error"][-1]

    g = jax.vmap(jax.grad(err), in_axes=(None, 0))(jnp.float32(0.5), _keys(0, 8))
    np.testing.assert_array_equal(np.asarray(g), 0.0)


def test_constructors_accept_tracers_and_check_concrete_values():
    @jax.jit
    def build(w, t):
        return cj.Weighted(w).real_weight + cj.Synthesis(temperature=t).temperature + cj.FreshMix(w).real_fraction

    assert float(build(0.25, 2.0)) == pytest.approx(2.5)
    with pytest.raises(ValueError, match=r"Weighted: real_weight must lie in \[0, 1\], got 1.5"):
        cj.Weighted(1.5)
    with pytest.raises(ValueError, match="temperature must lie in"):
        cj.Synthesis(temperature=-1.0)
    with pytest.raises(TypeError, match="give oversample"):
        jax.jit(lambda q: cj.Synthesis(truncate=q).for_run(cj.Gaussian(dim=2), 10).oversample)(0.9)


# --------------------------------------------------------------------------- cj.theory.traced
def test_traced_closed_forms_equal_the_float64_oracles():
    T, J = cj.theory, cj.theory.traced
    with jax.enable_x64(True):
        for g in (0, 1, 7, 40):
            for n in (2, 5, 100):
                for est in ("mle", "unbiased"):
                    for name, args in [
                        ("variance_mean", (g, n, est, 2.0)),
                        ("variance_relative_var", (g, n, est)),
                        ("log_variance_mean", (g, n, est, 2.0)),
                        ("mean_sq_error_replace", (g, n, est, 2.0, True, 3)),
                        ("mean_sq_error_replace", (g, n, est, 2.0, False)),
                    ]:
                        np.testing.assert_allclose(float(getattr(J, name)(*args)), getattr(T, name)(*args), rtol=1e-12)
                    # lgamma(n/2) - lgamma((n-1)/2) cancels: about 1e-14 relative per fit
                    np.testing.assert_allclose(float(J.sd_mean(g, n, est, 2.0)), T.sd_mean(g, n, est, 2.0), rtol=1e-11)
                for w in (0.0, 0.3, 1.0):
                    for ratio in (0.5, 1.0, 3.0):
                        a = T.weighted_mean_sq_error(g, n, w, ratio, 2.0)
                        np.testing.assert_allclose(float(J.weighted_mean_sq_error(g, n, w, ratio, 2.0)), a, rtol=1e-12)
                        if w > 0:
                            a = T.weighted_steady_state(n, w, ratio, 2.0)
                            np.testing.assert_allclose(float(J.weighted_steady_state(n, w, ratio, 2.0)), a, rtol=1e-12)
        ks = np.array([0.1, 1.0, 4.0])
        np.testing.assert_allclose(np.asarray(J.optimal_real_weight(ks)), T.optimal_real_weight(ks), rtol=1e-14)


def test_traced_closed_forms_differentiate_and_jit():
    J = cj.theory.traced
    with jax.enable_x64(True):
        w_star = J.optimal_real_weight(1.0)
        # the optimum is a stationary point of the steady state
        assert abs(float(jax.grad(lambda w: J.weighted_steady_state(100, w, 1.0))(w_star))) < 1e-10
        # d/dvar0 of E[sigma^2_g] = E[sigma^2_g] / var0 (linear in var0)
        d = jax.jit(jax.grad(lambda v: J.variance_mean(5, 10, "mle", v)))(2.0)
        np.testing.assert_allclose(float(d), cj.theory.variance_mean(5, 10, "mle", 1.0), rtol=1e-12)
        # a traced generation works under vmap
        gs = jnp.arange(4)
        np.testing.assert_allclose(
            np.asarray(jax.vmap(lambda g: J.variance_mean(g, 10, "mle"))(gs)),
            cj.theory.variance_mean(np.arange(4), 10, "mle"),
            rtol=1e-12,
        )


def test_dtypes_and_prng_names_as_jax_spells_them():
    kw = dict(n=10, generations=1, chains=3, progress=False, keep="chains")
    a = cj.simulate(cj.Gaussian(), dtype=jnp.float64, prng="philox4x32", **kw)
    b = cj.simulate(cj.Gaussian(), dtype="float64", prng="philox", **kw)
    assert a.config["dtype"] == "float64" and a.config["prng"] == "philox"
    np.testing.assert_array_equal(a.metrics["variance"], b.metrics["variance"])
    assert cj.simulate(cj.Gaussian(), dtype=np.float32, prng="threefry2x32", **kw).config["dtype"] == "float32"
    with pytest.raises(ValueError, match="dtype must be one of"):
        cj.simulate(cj.Gaussian(), dtype=np.int32, **kw)
    with pytest.raises(ValueError, match="prng must be one of"):
        cj.simulate(cj.Gaussian(), prng="rbg", **kw)
