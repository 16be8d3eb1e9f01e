"""A Bayesian location model fitted by NUTS inside the chains (non-conjugate with a
Student-t likelihood): numpyro's functional HMC/NUTS kernel (``numpyro.infer.hmc.hmc``:
``init_kernel`` and ``sample_kernel``, never the stateful ``MCMC`` driver) runs inside
the jitted, vmapped fit, with fixed warm-up and sample counts.

Model: x_k ~ Normal(mu, s^2 I) or independent Student t_nu(mu_j, s) per coordinate,
s known; prior mu ~ N(m0, tau^2 I). With the Normal likelihood the posterior is the
conjugate one of :class:`collapse_jax.BayesGaussian` (known variance), which is how
the sampler is validated.
"""

from __future__ import annotations

import math
from typing import ClassVar, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._rng import as_stream
from .._validate import as_float_array, check_int, check_positive
from ._options import Likelihood, Predictive
from ._protocol import CountWeights, Located

LIKELIHOODS: tuple[Likelihood, ...] = get_args(Likelihood)
PREDICTIVES: tuple[Predictive, ...] = get_args(Predictive)


class NUTSParams(eqx.Module):
    """One chain's posterior: its mean, the ``draws`` (samples, d) after warm-up, the
    mean acceptance probability and the number of divergent transitions after warm-up."""

    mean: Float[Array, " d"]
    draws: Float[Array, "s d"]
    accept_rate: Float[Array, ""]
    divergences: Int[Array, ""]


class NUTSLocation(Located, CountWeights):
    """A location model whose posterior is sampled by NUTS every generation.

    Args:
        dim: dimension d (static).
        likelihood: ``"normal"`` (conjugate: the validation case) or ``"student_t"``.
        df: the Student t degrees of freedom nu > 0 (traced).
        scale: the known scale s > 0 (traced).
        prior_mean: m0, scalar or (d,) (traced). prior_scale: tau > 0 (traced).
        mean: the truth's location (default 0); the truth is the likelihood at it.
        predictive: ``"plugin"`` (data from the likelihood at the posterior mean),
            ``"posterior"`` (one posterior draw per chain and generation, then all n
            points), ``"marginal"`` (every point with its own posterior draw).
        warmup, samples: NUTS warm-up (step size and diagonal mass adaptation) and kept
            draws per fit (static; defaults 200 and 200).
        max_tree_depth: NUTS tree depth cap (static; default 6: at most 63 leapfrog
            steps per draw). Under vmap every chain runs as long as its chunk's longest
            trajectory.

    Cost: about ``(warmup + samples) x leapfrog steps`` gradient evaluations of an
    n-point likelihood per chain and generation: about 1.3 ms per chain-generation on
    the 2-core CPU at the defaults, n = 50 (``benchmarks/bench_bayes.py``), in chunks of
    at most 64 chains (``max_chunk``: larger vmapped batches of NUTS trees run about 8x
    slower there). Size runs for <= 10^4 chains.

    Metrics: ``mean_sq_error`` ||E[mu | D] - mu_0||^2 and ``posterior_width``
    sqrt(mean over coordinates of Var(mu_j | D)) from the draws. Diagnostics:
    ``accept_rate`` and ``divergences``.
    """

    dim: int = eqx.field(static=True)
    likelihood: Likelihood = eqx.field(static=True)
    predictive: Predictive = eqx.field(static=True)
    warmup: int = eqx.field(static=True)
    samples: int = eqx.field(static=True)
    max_tree_depth: int = eqx.field(static=True)
    df: Float[Array, ""]
    scale: Float[Array, ""]
    prior_mean: Float[Array, " d"]
    prior_scale: Float[Array, ""]
    true_mean: Float[Array, " d"]

    # vmapped NUTS trees run batched while loops: on the 2-core CPU a chunk of 64 chains costs
    # ~1.3 ms per chain-generation, 128 or more ~11 ms (benchmarks/README.md, bench_bayes)
    max_chunk: ClassVar[int | None] = 64
    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "df": (1e-6, math.inf),
        "scale": (1e-30, math.inf),
        "prior_scale": (1e-30, math.inf),
    }

    def __init__(
        self,
        dim: int = 1,
        likelihood: Likelihood = "student_t",
        *,
        df: float = 4.0,
        scale: float = 1.0,
        prior_mean=0.0,
        prior_scale: float = 1.0,
        mean=None,
        predictive: Predictive = "plugin",
        warmup: int = 200,
        samples: int = 200,
        max_tree_depth: int = 6,
    ):
        d = check_int("NUTSLocation: dim", dim, 1)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"NUTSLocation: likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        if predictive not in PREDICTIVES:
            raise ValueError(f"NUTSLocation: predictive must be one of {PREDICTIVES}, got {predictive!r}")
        self.warmup = check_int("NUTSLocation: warmup", warmup, 1)
        self.samples = check_int("NUTSLocation: samples", samples, 1)
        self.max_tree_depth = check_int("NUTSLocation: max_tree_depth", max_tree_depth, 1)
        vecs = []
        for name, value in (("prior_mean", prior_mean), ("mean", 0.0 if mean is None else mean)):
            v = as_float_array("NUTSLocation", name, value)
            v = np.full(d, float(v)) if v.ndim == 0 else v
            if v.shape != (d,) or not np.all(np.isfinite(v)):
                raise ValueError(
                    f"NUTSLocation: {name} must be a finite number or vector of shape ({d},), got {value!r}"
                )
            vecs.append(v)
        self.dim, self.likelihood, self.predictive = d, likelihood, predictive
        self.df = jnp.asarray(check_positive("NUTSLocation", "df", df), jnp.float32)
        self.scale = jnp.asarray(check_positive("NUTSLocation", "scale", scale), jnp.float32)
        self.prior_scale = jnp.asarray(check_positive("NUTSLocation", "prior_scale", prior_scale), jnp.float32)
        self.prior_mean = jnp.asarray(vecs[0], jnp.float32)
        self.true_mean = jnp.asarray(vecs[1], jnp.float32)

    # ------------------------------------------------------------------ basics
    def truth(self) -> jax.Array:
        """The true location (not a posterior: real data come from :meth:`sample_real`)."""
        return self.true_mean

    def config_arg(self, name: str):
        return self.true_mean if name == "mean" else super().config_arg(name)

    def blank_fit(self) -> NUTSParams:
        dtype = self.true_mean.dtype
        return NUTSParams(self.true_mean, self.true_mean[None, :], jnp.ones((), dtype), jnp.zeros((), jnp.int32))

    def sample_real(self, key, n: int, frame=None) -> jax.Array:
        """``n`` points from the likelihood at the true location."""
        return self._draw(as_stream(key), self.true_mean[None, :], n, self.true_mean.dtype)

    def min_points(self) -> int:
        return 1

    def is_finite(self, params: NUTSParams) -> jax.Array:
        return jnp.all(jnp.isfinite(params.mean))

    # ------------------------------------------------------------------ likelihood
    def _log_lik(self, x, mu):
        """Log density of the points x (m, d) at location mu (d,), per point."""
        s = self.scale.astype(x.dtype)
        z = (x - mu[None, :]) / s
        if self.likelihood == "normal":
            return jnp.sum(-0.5 * z * z - jnp.log(s) - 0.5 * math.log(2 * math.pi), axis=1)
        nu = self.df.astype(x.dtype)
        const = (
            jax.scipy.special.gammaln((nu + 1) / 2)
            - jax.scipy.special.gammaln(nu / 2)
            - 0.5 * jnp.log(nu * math.pi)
            - jnp.log(s)
        )
        return jnp.sum(const - (nu + 1) / 2 * jnp.log1p(z * z / nu), axis=1)

    def _draw(self, stream, loc, n: int, dtype):
        """n points around the locations ``loc`` ((n, d) or (d,))."""
        z = stream.child(0).normal((n, self.dim), dtype)
        if self.likelihood == "student_t":
            nu = self.df.astype(dtype)
            chi2 = 2.0 * jax.random.gamma(stream.child(1).key(), nu / 2, shape=(n, self.dim), dtype=dtype)
            z = z * jnp.sqrt(nu / chi2)
        return loc + self.scale.astype(dtype) * z

    # ------------------------------------------------------------------ sample / fit
    def sample(self, key, params: NUTSParams, n: int, frame=None) -> jax.Array:
        s = as_stream(key)
        dtype = params.mean.dtype
        if self.predictive == "plugin":
            return self._draw(s, params.mean[None, :], n, dtype)
        k = params.draws.shape[0]
        if self.predictive == "posterior":
            idx = jnp.minimum((s.child(2).uniform((1,), dtype) * k).astype(jnp.int32), k - 1)[0]
            return self._draw(s, params.draws[idx][None, :], n, dtype)
        idx = jnp.minimum((s.child(2).uniform((n,), dtype) * k).astype(jnp.int32), k - 1)
        return self._draw(s, params.draws[idx], n, dtype)

    def fit(self, key, data, weights, frame=None) -> NUTSParams:
        from numpyro.infer.hmc import hmc

        dtype = data.dtype
        w = jnp.ones(data.shape[:1], dtype) if weights is None else weights.astype(dtype)
        x = jnp.where((w > 0)[:, None], data, 0.0)
        m0, tau = self.prior_mean.astype(dtype), self.prior_scale.astype(dtype)

        def potential(mu):
            prior = 0.5 * jnp.sum(((mu - m0) / tau) ** 2)
            return prior - jnp.sum(w * self._log_lik(x, mu))

        init = jnp.sum(w[:, None] * x, axis=0) / jnp.maximum(jnp.sum(w), 1.0)
        init_kernel, sample_kernel = hmc(potential_fn=potential, algo="NUTS")
        rng = as_stream(key).child(3).key()
        state = init_kernel(init, self.warmup, max_tree_depth=self.max_tree_depth, rng_key=rng)

        def step(st, _):
            st = sample_kernel(st)
            return st, (st.z, st.accept_prob, st.diverging)

        state, _ = jax.lax.scan(step, state, None, length=self.warmup)
        _, (draws, acc, div) = jax.lax.scan(step, state, None, length=self.samples)
        return NUTSParams(jnp.mean(draws, axis=0), draws, jnp.mean(acc), jnp.sum(div).astype(jnp.int32))

    # ------------------------------------------------------------------ metrics
    def metrics(self, key, params: NUTSParams) -> dict[str, jax.Array]:
        err = params.mean - self.true_mean.astype(params.mean.dtype)
        width = jnp.sqrt(jnp.mean(jnp.var(params.draws, axis=0)))
        return {"mean_sq_error": jnp.sum(err * err), "posterior_width": width}

    def diagnostics(self, params: NUTSParams) -> dict[str, jax.Array]:
        return {"accept_rate": params.accept_rate, "divergences": params.divergences}

    def location(self, params: NUTSParams) -> jax.Array:
        return params.mean
