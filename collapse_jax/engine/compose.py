"""One chain as a pure JAX function, for the user's own ``jit``, ``vmap``, ``grad`` and
``lax.scan`` (:func:`chain_fn`).

``simulate`` owns the host loop: chunks, blocks, checkpoints, summaries. ``chain_fn``
gives the kernel underneath it with none of that: ``f(key) -> (metrics, events)``
for one chain, traced like any JAX function, so a chain is a building block of a
larger program (an outer optimisation over a hyperparameter, a nested scan, a
pipeline that derives its keys with ``jax.random.split``). Chain ``c`` of
``simulate(..., seed=s)`` is ``f(jax.random.fold_in(jax.random.key(s), c))``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .. import _rng
from ..families._protocol import AbstractFamily
from ..regimes import AbstractRegime
from ..synthesis import Synthesis
from .kernel import KernelConfig, chain_one, init_one, step_one
from .plan import names
from .spec import choose_metrics, prepare_model


def chain_fn(
    family: AbstractFamily,
    regime: AbstractRegime | None = None,
    *,
    synthesis: Synthesis | None = None,
    n: int,
    generations: int,
    metrics: list[str] | tuple[str, ...] | None = None,
    prng: str = "threefry",
) -> Callable[[jax.Array], tuple[dict[str, jax.Array], dict[str, jax.Array]]]:
    """One recursive-fitting chain as a pure function of its key.

    The configuration is checked here, in Python, as ``simulate`` checks it; the
    returned function is then traced and compiled by whoever calls it. The family,
    regime and synthesis may hold tracers (construct them inside your function: a
    traced ``real_weight`` is a gradient's input), so their range checks run only on
    concrete values.

    Args:
        family: a model family (or ``cj.Pressured(family, ...)``).
        regime: how each generation's training set is built (default ``Replace()``).
        synthesis: how a fit generates its synthetic data (default plain draws).
        n: points per generation (static).
        generations: G >= 0 (static); the metrics have G + 1 rows.
        metrics: the metrics to return (default: all of the run's).
        prng: ``"threefry"`` or ``"philox"``, as in ``simulate``.

    Returns:
        ``f(key) -> (metrics, events)``: ``key`` is one threefry key (typed,
        ``jax.random.key``, or raw ``uint32[2]``); ``metrics`` maps each name to an
        array of shape ``(G + 1, ...)`` (NaN where the fit is not finite), ``events``
        each event name to the first generation it happened at (``-1``: never).
        ``f`` is pure: ``jax.vmap(f)(keys)`` runs chains, ``jax.jit`` compiles it,
        ``jax.grad`` differentiates a scalar of its metrics through every
        reparameterised draw.

    Examples:
        >>> import jax, collapse_jax as cj
        >>> f = cj.chain_fn(cj.Gaussian(), cj.Replace(), n=10, generations=5, metrics=["variance"])
        >>> keys = jax.random.split(jax.random.key(0), 4)
        >>> m, ev = jax.jit(jax.vmap(f))(keys)
        >>> m["variance"].shape
        (4, 6)

    Gradients: draws are reparameterised (a point is ``mu + sigma z``), so a metric's
    pathwise derivative in a traced hyperparameter is an unbiased estimate of the
    derivative of its expectation, where the hyperparameter enters smoothly.
    Regimes that turn a hyperparameter into a count have zero gradient by
    construction: ``FreshMix``, ``RetainOriginal``, ``AccumulateMix`` and
    ``AccumulateSubsample`` round a fraction to a number of points, so use
    ``Weighted`` (a real weight, smooth) or a finite difference over a ``sweep``
    instead. Filters (``truncate``, a verifier) select points, which is not
    differentiable either. docs/ARCHITECTURE.md, "Composable kernels".
    """
    family, regime, synthesis, n, generations = prepare_model("chain_fn", family, regime, synthesis, n, generations)
    if prng not in _rng.PRNGS:
        raise ValueError(f"chain_fn: prng must be one of {_rng.PRNGS}, got {prng!r}")
    model = (family, regime, synthesis)
    chosen = choose_metrics("chain_fn", model, metrics)
    exact = family.is_exact
    events = names(model)[2]
    cfg = KernelConfig(n, generations, exact, chosen, (), events, False, 0, (), (), max(generations, 1), prng=prng)

    def one_chain(key: jax.Array) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
        ck = _raw_key(key)
        chain = chain_one(model, ck, cfg)
        carry, (met0, _, _) = init_one(model, ck, chain, cfg)

        def body(carry, g):
            carry, (met, _, _) = step_one(model, ck, chain, carry, g, cfg)
            return carry, met

        gens = jnp.arange(1, generations + 1, dtype=jnp.int32)
        carry, mets = jax.lax.scan(body, carry, gens)
        out = {k: jnp.concatenate([jnp.asarray(met0[k])[None], mets[k]]) for k in chosen}
        return out, carry[2]

    return one_chain


def _raw_key(key) -> jax.Array:
    """A chain key as the kernel's raw ``uint32[2]`` threefry data."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        impl = str(jax.random.key_impl(key))
        if "threefry2x32" not in impl:
            raise ValueError(f"chain_fn: key must be a threefry key, got PRNG implementation {impl!r}")
        key = jax.random.key_data(key)
    if key.dtype != jnp.uint32 or key.shape != (2,):
        raise ValueError(
            f"chain_fn: key must be one threefry key (jax.random.key) or uint32[2] key data, got {key.dtype}"
            f"{list(key.shape)}; for many chains use jax.vmap(f)(keys)"
        )
    return key
