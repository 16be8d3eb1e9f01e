"""An interaction graph as a regime over a node axis (built by
:func:`collapse_jax.simulate_graph`; the graph object and its theory are
:mod:`collapse_jax.graph`).

A chain's parameters are the K nodes' fits stacked on a leading node axis; every
generation each node fits its own training set, drawn from the real data and from
every node's previous model through the run's synthesis. The regime also says what
the kernel observes of a chain: every node's metrics (a ``node`` dim), the
synthesis's metrics per node, and ``homogenisation`` where the family is ``Located``.
No wrapper family: the family, the synthesis and their sweeps are the run's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

from .._rng import STREAM_METRICS
from ..families._protocol import Located
from ._protocol import AbstractRegime, Context, TrainingSet, assemble, draws_mixed, fit_original, init_state

if TYPE_CHECKING:  # collapse_jax.graph imports this module
    from ..graph import InteractionGraph


class GraphRegime(AbstractRegime):
    """Replace or Accumulate at every node of an interaction graph.

    ``counts[t, i]`` are node i's points per source at step t of the graph's schedule
    (real, then node 0..K-1; traced, so a new graph of the same shape never
    recompiles); ``sizes`` the nodes' n_i (static; ``n`` of the run is their maximum).
    """

    counts: Int[Array, "t k k1"]
    graph: InteractionGraph  # for describe()
    node_regime: Literal["replace", "accumulate"] = eqx.field(static=True)
    sizes: tuple[int, ...] = eqx.field(static=True)

    @property
    def k(self) -> int:
        return len(self.sizes)

    def describe(self) -> dict:
        return {
            "regime": "graph",
            "node_regime": "Replace" if self.node_regime == "replace" else "Accumulate",
            "graph": self.graph.describe(),
            "counts": np.asarray(self.counts).tolist(),
            "n": list(self.sizes),
        }

    def _uniform(self) -> bool:
        return len(set(self.sizes)) == 1

    # ---- one chain, node by node: generation 0 fits n_i real points; later generations
    # fit the node's planned set (real points, then points from each node's model)
    def _nodes(self, ctx):
        """Every node's view of the chain's context, for ``jax.vmap`` over nodes."""
        own = None if self._uniform() else jnp.asarray(self.sizes, jnp.int32)
        return lambda i: ctx.at_node(i, self.k, None if own is None else own[i])

    def generation_zero(self, family, ctx):
        at = self._nodes(ctx)
        return jax.vmap(lambda i: fit_original(family, at(i)))(jnp.arange(self.k))

    def node_plan(self, g, i) -> TrainingSet:
        """Node i's training set at generation g (counts traced)."""
        t = (jnp.asarray(g, jnp.int32) - 1) % self.counts.shape[0]
        cnt = self.counts[t, i]  # (K + 1,): real, then node 0 .. K - 1
        pool: Literal["merge"] | None = "merge" if self.node_regime == "accumulate" else None
        return TrainingSet(real=cnt[0], model=cnt[1:], pool=pool, filled=self._uniform())

    def init(self, family, ctx, params0):
        if self.node_regime != "accumulate":
            return ()
        at = self._nodes(ctx)
        return jax.vmap(lambda i, p0: init_state(family, at(i), self.node_plan(1, i), p0))(jnp.arange(self.k), params0)

    def step(self, family, ctx, state, prev, g):
        at = self._nodes(ctx)

        def node(i, state_i, prev_i):
            return assemble(family, at(i), self.node_plan(g, i), state_i, prev_i, g, models=prev)

        if self.node_regime == "accumulate":
            return jax.vmap(node)(jnp.arange(self.k), state, prev)
        _, params = jax.vmap(lambda i, p: node(i, (), p))(jnp.arange(self.k), prev)
        return state, params

    # ---- what the kernel observes: every node, plus homogenisation
    def _homogenises(self, family) -> bool:
        return self.k >= 2 and isinstance(family, Located)

    def observe_names(self, family, synthesis):
        metrics, diag, ev = super().observe_names(family, synthesis)
        return metrics + (("homogenisation",) if self._homogenises(family) else ()), diag, ev

    def observe_metrics(self, family, synthesis, stream, params):
        k = self.k
        ctx = Context(stream.chain_key, 1, 0, False, prng=stream.prng)

        def node(i, p):
            s = ctx.at_node(i, k).stream(stream.g, STREAM_METRICS)
            return {**family.metrics(s, p), **synthesis.metrics(family, s, p)}

        out = jax.vmap(node)(jnp.arange(k), params)
        if self._homogenises(family):
            locs = jax.vmap(family.location)(params)  # (K, p)
            diff = locs[:, None, :] - locs[None, :, :]
            sq = jnp.sum(diff * diff, axis=-1)
            out["homogenisation"] = jnp.sum(jnp.triu(sq, 1)) / (k * (k - 1) / 2)
        return out

    def observe_diagnostics(self, family, params):
        return jax.vmap(family.diagnostics)(params)

    def observe_events(self, family, params):
        return jax.vmap(family.events)(params)

    def observe_finite(self, family, params):
        return jnp.all(jax.vmap(family.is_finite)(params))

    def observed_dims(self, family, synthesis):
        metrics, diag, ev = super().observe_names(family, synthesis)
        return (
            {m: ("node",) + family.metric_dims.get(m, ()) for m in metrics},
            {m: ("node",) + family.diagnostic_dims.get(m, ()) for m in diag},
            {m: ("node",) + family.event_dims.get(m, ()) for m in ev},
        )

    def working_factor(self, family, synthesis):
        # every node draws n_max points from each of its sources (one mixed draw where it can)
        return self.k * (1 if draws_mixed(family, synthesis) else self.k + 1)
