"""Interaction graphs: the graph object, simulate_graph against the exact recursions
of collapse_jax.theory.graph, and collapse_condition against the recursion's
asymptotics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import SEED, assert_mc_close

import collapse_jax as cj
from collapse_jax.engine.kernel import trace_counts
from collapse_jax.theory import graph as tg

IG = cj.InteractionGraph


def run(fam, graph, **kw):
    base = dict(n=10, generations=20, chains=2000, seed=SEED, progress=False)
    base.update(kw)
    return cj.simulate_graph(fam, graph, **base)


def mean_se(res, metric):
    x = np.asarray(res.metrics[metric], np.float64)
    return x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(x.shape[0])


KNOWN = cj.Gaussian(learn_cov=False, sampler="exact")


# --------------------------------------------------------------------------- the graph object
def test_constructors_have_unit_rows_and_the_stated_edges():
    k = 4
    for g in (
        IG.ring(k, 0.2, self_weight=0.5),
        IG.star(k, "hub_to_spokes", 0.1),
        IG.star(k, "spokes_to_hub"),
        IG.star(k, "both", [0.5, 0, 0, 0]),
        IG.complete(k, 0.3),
        IG.complete(k, 0.0, self_loops=False),
        IG.chain(k, [0.4, 0, 0, 0]),
        IG.self_loops(k, 0.25),
        IG.random(k, seed=3, density=0.4, real_fraction=0.1),
        IG.random(k, seed=3, density=0.4, concentration=1.0),
        IG.from_edges(k, [(0, 1), (1, 2, 2.0), (0, 2), (3, 3), (2, 0)], real_fraction=0.0),
    ):
        w, a = g.host()
        np.testing.assert_allclose(a + w.sum(axis=2), 1.0, atol=1e-6)
        assert g.nodes == k and g.period == 1
    w, _ = IG.ring(3, 0.0).host()
    np.testing.assert_allclose(w[0], [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    w, _ = IG.star(3, "hub_to_spokes").host()
    np.testing.assert_allclose(w[0], [[1, 0, 0], [1, 0, 0], [1, 0, 0]])
    w, _ = IG.star(3, "spokes_to_hub").host()
    np.testing.assert_allclose(w[0], [[0, 0.5, 0.5], [0, 1, 0], [0, 0, 1]])
    w, _ = IG.from_edges(3, [(0, 2), (1, 2, 3.0), (2, 0), (0, 1)], real_fraction=[0.5, 0, 0]).host()
    np.testing.assert_allclose(w[0], [[0, 0, 0.5], [1, 0, 0], [0.25, 0.75, 0]])
    a, b = IG.random(5, seed=7), IG.random(5, seed=7)
    np.testing.assert_array_equal(a.host()[0], b.host()[0])
    sched = IG.schedule([IG.ring(3), IG.complete(3, 0.5)])
    assert sched.period == 2 and sched.host()[0].shape == (2, 3, 3)


def test_counts_are_the_largest_remainder_rounding():
    g = IG([[0.35, 0.35, 0.0], [0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], [0.3, 0.0, 0.0])
    c = g.counts([10, 7, 10])[0]
    np.testing.assert_array_equal(c.sum(axis=1), [10, 7, 10])
    np.testing.assert_array_equal(c[0], [3, 4, 3, 0])  # 3.5, 3.5 tie: the lower source index wins
    np.testing.assert_array_equal(c[1], [0, 0, 4, 3])
    np.testing.assert_array_equal(c[2], [0, 4, 3, 3])
    w, a = g.host()
    shares = np.concatenate([a[0][:, None], w[0]], axis=1) * np.array([10, 7, 10])[:, None]
    assert np.all(np.abs(c - shares) < 1)


@pytest.mark.parametrize(
    "make,exc,pattern",
    [
        (lambda: IG([[0.5, -0.1], [0.5, 0.5]]), ValueError, r"weights\[0, 1\] = -0.1 is negative"),
        (lambda: IG([[0.5, 0.6], [0.5, 0.5]]), ValueError, r"row 0 of weights sums to 1.1 > 1"),
        (
            lambda: IG([[0.5, 0.4], [0.5, 0.5]], [0.2, 0.0]),
            ValueError,
            r"node 0: real_fraction \+ sum of weights = 0.2 \+ 0.9",
        ),
        (lambda: IG([[0.5, 0.5, 0.0]]), ValueError, r"shape \(K, K\) or \(T, K, K\), got \(1, 3\)"),
        (lambda: IG(np.zeros((0, 0))), ValueError, r"the graph is empty"),
        (
            lambda: IG([[1.0, 0], [0, 1.0]], [0.0, 0.0, 0.0]),
            ValueError,
            r"real_fraction must be a number or a vector of length 2",
        ),
        (lambda: IG.ring(3, real_fraction=1.5), ValueError, r"real_fraction must lie in \[0, 1\]"),
        (lambda: IG.star(1), ValueError, r"nodes must be >= 2, got 1"),
        (lambda: IG.star(3, "sideways"), ValueError, r"direction must be one of"),
        (lambda: IG.from_edges(3, [(0, 1)]), ValueError, r"node 0 has real_fraction 0 < 1 but no in-edge"),
        (lambda: IG.from_edges(2, [(0, 5)]), ValueError, r"names a node outside 0 .. 1"),
        (lambda: IG.schedule([IG.ring(2), IG.ring(3)]), ValueError, r"same number of nodes"),
    ],
)
def test_bad_graphs_raise(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_bad_simulations_raise_before_compiling():
    before = trace_counts()
    g = IG.complete(3, 0.1)
    with pytest.raises(ValueError, match=r"node 0: its share 0.1 from real data rounds to 0 of n_0 = 3 points"):
        run(KNOWN, g, n=3)
    with pytest.raises(ValueError, match=r"n must be an int or a vector of length K = 3, got shape \(2,\)"):
        run(KNOWN, g, n=[10, 10])
    with pytest.raises(ValueError, match=r"every n_i must be >= 1"):
        run(KNOWN, g, n=[10, 0, 10])
    with pytest.raises(ValueError, match=r"Accumulate at graph nodes needs sufficient statistics; GMM"):
        run(cj.GMM(2, 1), g, regime=cj.Accumulate(), n=30)
    with pytest.raises(ValueError, match=r"regime must be Replace\(\) or Accumulate\(\)"):
        run(KNOWN, g, regime=cj.FreshMix(0.5))
    with pytest.raises(ValueError, match=r"Ridge\(sampler='exact'\) on a fixed design"):
        run(cj.Ridge(dim=2, sampler="exact"), g)
    with pytest.raises(ValueError, match=r"n_1 = 2 is too small for Gaussian"):
        run(cj.Gaussian(dim=2), IG.self_loops(3), n=[5, 2, 5])
    with pytest.raises(TypeError, match=r"graph must be a cj.InteractionGraph"):
        run(KNOWN, np.eye(2))
    assert trace_counts() == before, "an invalid configuration reached the compiler"


# --------------------------------------------------------------------------- against the recursion
@pytest.mark.parametrize("sampler", ["exact", "samples"])
def test_known_variance_error_follows_the_exact_recursion(sampler):
    """A ring with self-weight, one node with real data, unequal n_i: every node's
    E||e||^2 and the homogenisation equal the recursion C_g = W C W^T + D."""
    g = IG.ring(3, real_fraction=[0.3, 0.0, 0.0], self_weight=0.5)
    sizes, G = [10, 20, 15], 24
    res = run(cj.Gaussian(dim=2, learn_cov=False, sampler=sampler), g, n=sizes, generations=G, chains=3000)
    w_eff, _ = g.effective(sizes)
    cov = tg.error_covariance(w_eff, sizes, G) * 2.0  # tr Sigma = 2
    gens = [0, 1, 3, 8, 24]
    mean, se = mean_se(res, "mean_sq_error")
    assert_mc_close(mean[gens], se[gens], np.diagonal(cov, axis1=1, axis2=2)[gens], label=f"{sampler} mse")
    pair = [(0, 1), (0, 2), (1, 2)]
    homog = np.mean([cov[:, i, i] + cov[:, j, j] - 2 * cov[:, i, j] for i, j in pair], axis=0)
    mean, se = mean_se(res, "homogenisation")
    assert_mc_close(mean[gens], se[gens], homog[gens], label=f"{sampler} homogenisation")


def test_steady_state_and_linear_growth_in_a_closed_real_free_class():
    # nodes 0, 1 mix without real data (closed class: grows linearly); node 2 draws from
    # them and from real data (collapses too, more slowly); node 3 is alone with real data
    w = [[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0.3, 0.3, 0, 0], [0, 0, 0, 0.5]]
    g = IG(w, [0, 0, 0.4, 0.5])
    n, G = 10, 80
    res = run(KNOWN, g, n=n, generations=G, chains=4000)
    rates = tg.growth_rates(g.effective(n)[0], n)
    np.testing.assert_allclose(rates, [0.05, 0.05, 0.36 * 0.05, 0.0], atol=1e-12)
    report = g.collapse_condition(n=n)
    assert report.collapsing == [0, 1, 2] and report.real_free_classes == [[0, 1]]
    np.testing.assert_allclose(report.growth_rate, rates)
    x = np.asarray(res.metrics["mean_sq_error"], np.float64)
    # per-chain slope between generations 40 and 80 (the transient is gone): mean = rate
    slope = (x[:, 80] - x[:, 40]) / 40
    assert_mc_close(slope.mean(0)[:3], slope.std(0, ddof=1)[:3] / math.sqrt(len(slope)), rates[:3], label="slope")
    # node 3: the Lyapunov steady state, time-averaged over generations 20 .. 80 per chain
    c_inf = tg.steady_state(np.asarray(w)[3:, 3:], n)[0, 0]
    avg = x[:, 20:, 3].mean(axis=1)
    assert_mc_close(avg.mean(), avg.std(ddof=1) / math.sqrt(len(avg)), c_inf, label="steady state node 3")


def test_schedule_follows_the_recursion():
    sched = IG.schedule([IG.ring(3, 0.0), IG.complete(3, [0.5, 0.0, 0.0])])
    G = 12
    res = run(KNOWN, sched, generations=G, chains=3000)
    exp = tg.mean_sq_error(sched.effective(10)[0], 10, G)
    mean, se = mean_se(res, "mean_sq_error")
    gens = [1, 2, 5, 12]
    assert_mc_close(mean[gens], se[gens], exp[gens], label="schedule")


@pytest.mark.parametrize("graph_seed", [1, 2, 3])
def test_random_graphs_recursion_and_classification(graph_seed):
    """Property test over random graphs (K = 4): the simulation matches the recursion
    per node, and the nodes whose recursion grows are exactly collapse_condition's."""
    rng = np.random.default_rng(graph_seed)
    a = np.where(rng.random(4) < 0.4, 0.5, 0.0)
    g = IG.random(4, seed=graph_seed, density=0.35, real_fraction=a)
    n, G = 12, 16
    w_eff, _ = g.effective(n)
    exp = tg.mean_sq_error(w_eff, n, G)
    res = run(KNOWN, g, n=n, generations=G, chains=2000)
    mean, se = mean_se(res, "mean_sq_error")
    assert_mc_close(mean[[1, 4, 16]], se[[1, 4, 16]], exp[[1, 4, 16]], label=f"graph {graph_seed}")
    # asymptotics of the recursion itself (no closed form): growth between 2000 and 4000
    long = tg.error_covariance(w_eff, n, 4000)
    growing = np.flatnonzero(np.diagonal(long[4000] - long[2000]) > 1e-6)
    assert sorted(growing.tolist()) == g.collapse_condition(n=n).collapsing


def test_learned_variance_collapses_where_predicted():
    # node 0 has real data and feeds node 1; nodes 2, 3 mix with each other only
    w = [[0.5, 0, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]]
    g = IG(w, [0.5, 0, 0, 0])
    assert g.collapse_condition().collapsing == [2, 3]
    res = run(cj.Gaussian(), g, n=10, generations=120, chains=500)
    lv, se = mean_se(res, "log_variance")
    # bounded nodes: E[log variance] settles (late change within noise); collapsing: drifts down
    late = lv[120] - lv[60]
    assert np.all(np.abs(late[:2]) < 6 * np.hypot(se[120, :2], se[60, :2]) + 0.05)
    assert np.all(late[2:] < -1.0) and np.all(lv[120, 2:] < -2.0)


@pytest.mark.parametrize("sampler", ["exact", "samples"])
def test_independent_nodes_are_single_chains(sampler):
    """self-loops without real data: every node is an ordinary chain, so the single-chain
    laws hold per node (learned variance: E[log variance] under Replace; Accumulate:
    the known-variance pi^2/6 sum)."""
    g, n, G = IG.self_loops(2), 10, 12
    res = run(cj.Gaussian(sampler=sampler), g, n=[n, 2 * n], generations=G, chains=3000)
    gens = [0, 4, 12]
    mean, se = mean_se(res, "log_variance")
    for i, ni in enumerate([n, 2 * n]):
        exp = cj.theory.log_variance_mean(np.array(gens), ni, "mle")
        assert_mc_close(mean[gens, i], se[gens, i], exp, label=f"{sampler} log variance node {i}", rate=0.5e-4)
    acc = run(cj.Gaussian(learn_cov=False, sampler=sampler), g, n=n, generations=G, chains=3000, regime=cj.Accumulate())
    mean, se = mean_se(acc, "mean_sq_error")
    exp = cj.theory.mean_sq_error_accumulate(np.array(gens), n, "mle", learn_cov=False)
    assert_mc_close(mean[gens], se[gens], np.stack([exp, exp], axis=1), label=f"{sampler} accumulate", rate=0.5e-4)


# --------------------------------------------------------------------------- ridge on a graph
def test_ridge_graph_matches_the_matrix_recursion_averaged_over_designs():
    g = IG.complete(2, real_fraction=[0.3, 0.0])
    n, d, G = 20, 3, 8
    res = run(cj.Ridge(dim=d, noise=1.0), g, n=n, generations=G, chains=3000)
    counts = g.counts(n)
    rng = np.random.default_rng(SEED)
    draws = np.stack([tg.ols_mean_sq_error(counts, rng.standard_normal((n, d)), 1.0, G) for _ in range(3000)])
    mean, se = mean_se(res, "param_sq_error")
    th, th_se = draws.mean(0), draws.std(0, ddof=1) / math.sqrt(len(draws))
    gens = [0, 1, 4, 8]
    assert_mc_close(mean[gens], np.hypot(se, th_se)[gens], th[gens], label="ridge graph")


def test_ridge_rank_condition_is_reported():
    g = IG.self_loops(2, real_fraction=[0.05, 0.3])  # n = 100: 5 and 30 real rows, d = 10
    rep = g.collapse_condition(n=100, family=cj.Ridge(dim=10))
    assert rep.rank_ok == [False, True] and not rep.bounded
    assert "do not span R^10" in rep.explanation[0]
    assert cj.InteractionGraph.complete(2).collapse_condition(regime=cj.Accumulate()).derived is False


def test_new_weights_do_not_recompile_and_results_carry_the_node_dim(tmp_path):
    res = run(KNOWN, IG.ring(3, 0.2), generations=3, chains=64)
    mid = trace_counts()
    res2 = run(KNOWN, IG.complete(3, 0.5), generations=3, chains=64)
    assert trace_counts() == mid, "a new graph with the same K retraced the kernel"
    assert res.metric_dims["mean_sq_error"] == ("node",)
    assert res.metrics["mean_sq_error"].shape == (64, 4, 3)
    assert not np.array_equal(res.metrics["mean_sq_error"], res2.metrics["mean_sq_error"])
    # generation 0 (real data only) is the same whatever the graph: common random numbers
    np.testing.assert_array_equal(res.metrics["mean_sq_error"][:, 0], res2.metrics["mean_sq_error"][:, 0])
    path = tmp_path / "graph.nc"
    res.save(path)
    back = cj.load(path)
    np.testing.assert_array_equal(back.metrics["mean_sq_error"], res.metrics["mean_sq_error"])


def test_other_families_run_on_a_graph():
    g = IG.complete(2, 0.5)
    cat = run(cj.Categorical([0.5, 0.3, 0.2]), g, generations=3, chains=64, regime=cj.Accumulate())
    assert cat.metrics["collision_probability"].shape == (64, 4, 2)
    gmm = run(cj.GMM(2, 1, em_max_iters=10), g, n=30, generations=2, chains=64)
    assert np.all(np.isfinite(gmm.metrics["heldout_nll"]))
    assert gmm.diagnostics["em_iters"].shape[-1] == 2


def test_sample_mixed_equals_sample_when_every_point_has_one_source():
    import jax.numpy as jnp

    from collapse_jax._rng import Stream

    stream = Stream(jnp.array([3, 4], jnp.uint32), jnp.int32(2), 2)
    for fam in (cj.Gaussian(dim=1, mean=0.5, cov=2.0), cj.Gaussian(dim=3)):
        p = fam.truth()
        models = jax_stack([p, p])
        a = fam.sample_mixed(stream, models, jnp.ones(50, jnp.int32), 50)
        np.testing.assert_allclose(a, fam.sample(stream, p, 50), rtol=1e-6, atol=1e-6)
    ridge = cj.Ridge(dim=3, w_star="random")
    p0 = ridge.fit(stream, ridge.sample(stream, ridge.truth(), 20), None, ridge.truth())
    a = ridge.sample_mixed(stream, jax_stack([p0, p0]), jnp.zeros(20, jnp.int32), 20)
    b = ridge.sample(stream, p0, 20)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_allclose(a.y, b.y, rtol=1e-5, atol=1e-5)


def jax_stack(trees):
    import jax
    import jax.numpy as jnp

    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


# ------------------------------------------------------------------ synthesis on graphs
@pytest.mark.parametrize("sampler", ["samples", "exact"])
def test_tempered_independent_nodes_follow_the_tempered_chain(sampler):
    """Self-loop nodes with temperature tau are K single Replace chains whose synthetic
    data come from the tempered fit: E[variance_g] = r (r tau^2)^g, r = (n - 1)/n."""
    tau, n, gens, chains = 0.9, 20, 6, 3000
    res = run(
        cj.Gaussian(sampler=sampler), cj.InteractionGraph.self_loops(3), n=n, generations=gens, chains=chains,
        synthesis=cj.Synthesis(temperature=tau),
    )  # fmt: skip
    v = np.asarray(res.metrics["variance"], np.float64)  # (chain, generation, node)
    g = np.arange(gens + 1)
    theory = cj.theory.pressure_variance_mean(g, n, "mle", temperature=tau)
    for node in range(3):
        x = v[:, :, node]
        assert_mc_close(x.mean(0), x.std(0, ddof=1) / math.sqrt(chains), theory, label=f"node {node} ({sampler})")


def test_filters_on_a_graph_report_per_node_acceptance():
    res = run(
        cj.Pressured(cj.Gaussian(dim=2), truncate=0.9), cj.InteractionGraph.ring(3, real_fraction=0.2), n=30,
        generations=3, chains=32,
    )  # fmt: skip
    acc = np.asarray(res.metrics["accept_rate"])
    assert acc.shape == (32, 4, 3)
    # at generation 0 every node's fit is close to the truth: about q of the candidates pass
    assert abs(float(acc[:, 0].mean()) - 0.9) < 0.05
    assert res.config["synthesis"]["truncate"] == pytest.approx(0.9)  # as for single chains


# --------------------------------------------------------------------------- sweeps
def _close(a, b, metrics):
    """One program with a sweep axis vs one run per value: the same random numbers,
    equal up to float32 last-bit differences of a different compiled program."""
    for m in metrics:
        np.testing.assert_allclose(np.asarray(a.metrics[m]), np.asarray(b.metrics[m]), rtol=1e-5, atol=5e-7, err_msg=m)


def test_graph_sweeps_reach_the_family_and_the_synthesis_in_one_program():
    g = IG.complete(3, 0.2)
    kw = dict(n=20, generations=4, chains=32)
    swept = run(cj.Ridge(dim=2), g, sweep={"lam": [0.0, 0.5]}, **kw)
    assert np.asarray(swept.metrics["test_error"]).shape == (2, 32, 5, 3)
    for i, lam in enumerate((0.0, 0.5)):
        _close(swept.sel(i), run(cj.Ridge(dim=2, lam=lam), g, **kw), ["test_error", "homogenisation"])
    swept = run(cj.Gaussian(), g, synthesis=cj.Synthesis(temperature=0.9), sweep={"temperature": [0.8, 1.0]}, **kw)
    _close(swept.sel(0), run(cj.Gaussian(), g, synthesis=cj.Synthesis(temperature=0.8), **kw), ["variance"])
    _close(swept.sel(1), run(cj.Gaussian(), g, synthesis=cj.Synthesis(temperature=1.0), **kw), ["variance"])
    assert swept.config["sweep"] == {"temperature": [0.8, 1.0]}


def test_graph_sweep_values_are_checked_before_compiling():
    before = trace_counts()
    with pytest.raises(ValueError, match=r"sweep value -1.0 for 'lam' is invalid: Ridge.lam must lie in \[0.0, inf\]"):
        run(cj.Ridge(dim=2), IG.complete(3, 0.2), sweep={"lam": [0.1, -1.0]})
    with pytest.raises(ValueError, match=r"sweep key 'real_fraction' names no field"):
        run(KNOWN, IG.complete(3, 0.2), sweep={"real_fraction": [0.1]})
    assert trace_counts() == before
