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

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

from .. import _rng
from .._rng import STREAM_METRICS, STREAM_REAL, STREAM_SYNTH, STREAM_SYNTH_EXTRA, Stream
from ..families._base import tree_take
from ..families._protocol import AbstractFamily, Located, MixedSampler
from ..synthesis import Synthesis
from ._protocol import PLAIN, AbstractRegime, Context, truth_dtype


def _stream(ctx: Context, i, source: int, k: int, g, s: int) -> Stream:
    """Stream s of generation g for node i's draws from ``source`` (0: real data and
    the node's own fits and metrics; 1 + j: node j's model)."""
    key = _rng.node_key(ctx.chain_key, i * (k + 1) + source, ctx.prng)
    return Stream(key, jnp.asarray(g, jnp.int32), s, 0, ctx.safe, ctx.chain_key, ctx.prng)


def _mixes(family: AbstractFamily, synthesis: Synthesis) -> bool:
    """Whether a node's training set is one mixed draw (a MixedSampler family with
    plain synthesis: each point from its own source's model)."""
    return isinstance(family, MixedSampler) and synthesis.identity


class GraphRegime(AbstractRegime):
    """Replace or Accumulate at every node of an interaction graph.

    ``counts[t, i]`` are node i's points per source at step t of the graph's schedule
    (real, then node 0..K-1; traced, so a new graph of the same shape never
    recompiles); ``sizes`` the nodes' n_i (static; ``n`` of the run is their maximum).
    """

    counts: Int[Array, "t k k1"]
    graph: eqx.Module  # the InteractionGraph (collapse_jax.graph), for describe()
    node_regime: str = eqx.field(static=True)
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

    # ---- generation 0: every node fits n_i real points
    def generation_zero(self, family, ctx):
        k, truth = self.k, family.truth()
        uniform, sizes = self._uniform(), jnp.asarray(self.sizes, jnp.int32)

        def node(i):
            real = _stream(ctx, i, 0, k, 0, STREAM_REAL)
            if ctx.exact:
                m = ctx.n if uniform else sizes[i]
                return family.fit_stats(family.sample_stats(real, truth, m, truth), truth)
            data = family.sample(real, truth, ctx.n, truth)
            w = None if uniform else (jnp.arange(ctx.n) < sizes[i]).astype(truth_dtype(family))
            return family.fit(_stream(ctx, i, 0, k, 0, STREAM_SYNTH), data, w, truth)

        return jax.vmap(node)(jnp.arange(k))

    def init(self, family, ctx, params0):
        if self.node_regime != "accumulate":
            return ()
        k = self.k
        uniform, sizes = self._uniform(), jnp.asarray(self.sizes, jnp.int32)

        def node(i, p0):
            frame = family.pooled_frame(p0)
            real = _stream(ctx, i, 0, k, 0, STREAM_REAL)
            if ctx.exact:
                return family.sample_stats(real, family.chain_truth(p0), ctx.n if uniform else sizes[i], frame)
            data = family.sample(real, family.chain_truth(p0), ctx.n, frame)
            w = None if uniform else (jnp.arange(ctx.n) < sizes[i]).astype(truth_dtype(family))
            return family.data_stats(data, w)

        return jax.vmap(node)(jnp.arange(k), params0)

    def step(self, family, ctx, state, prev, g):
        k, synthesis = self.k, ctx.synthesis or PLAIN
        t = (jnp.asarray(g, jnp.int32) - 1) % self.counts.shape[0]
        counts = self.counts[t]  # (K, K + 1)
        uniform = self._uniform()
        dtype = truth_dtype(family)
        accumulate = self.node_regime == "accumulate"

        def mixed_stats(i, cnt, prev_i, frame):
            truth = family.chain_truth(prev_i)
            real = family.sample_stats(_stream(ctx, i, 0, k, g, STREAM_REAL), truth, cnt[0], frame)
            synth = jax.vmap(
                lambda j, pj, m: synthesis.draw_stats(family, _stream(ctx, i, 1 + j, k, g, STREAM_SYNTH), pj, m, frame)
            )(jnp.arange(k), prev, cnt[1:])
            out = real
            for j in range(k):
                out = family.merge_stats(out, tree_take(synth, j))
            return out

        def mixed_data(i, cnt, prev_i, frame):
            n = ctx.n
            slot = jnp.arange(n)
            src = jnp.sum(slot[:, None] >= jnp.cumsum(cnt)[None, :], axis=1)  # 0 real, 1 + j, K + 1 empty
            w = None if uniform else (src <= k).astype(dtype)
            if _mixes(family, synthesis):
                # one draw of n points, each from its own source's model (the truth at index 0)
                models = jax.tree.map(lambda t, p: jnp.concatenate([t[None], p]), family.chain_truth(prev_i), prev)
                stream = _stream(ctx, i, 0, k, g, STREAM_SYNTH)
                return family.sample_mixed(stream, models, jnp.minimum(src, k), n, frame), w
            # generic: n points from every source (and n real ones), each slot taking its source's
            real = family.sample_real(_stream(ctx, i, 0, k, g, STREAM_REAL), n, prev_i, frame)
            synth = jax.vmap(
                lambda j, pj: synthesis.draw(family, _stream(ctx, i, 1 + j, k, g, STREAM_SYNTH), pj, n, frame)
            )(jnp.arange(k), prev)
            stacked = jax.tree.map(lambda r, s: jnp.concatenate([r[None], s]), real, synth)  # (K + 1, n, ...)
            data = jax.tree.map(lambda x: x[jnp.minimum(src, k), slot], stacked)
            return data, w

        def node(i, cnt, prev_i, state_i):
            frame = family.pooled_frame(prev_i) if accumulate else prev_i
            fit_stream = _stream(ctx, i, 0, k, g, STREAM_SYNTH_EXTRA)
            if ctx.exact:
                batch = mixed_stats(i, cnt, prev_i, frame)
            else:
                data, w = mixed_data(i, cnt, prev_i, frame)
                if not accumulate:
                    return state_i, family.fit(fit_stream, data, w, frame)
                batch = family.data_stats(data, w)
            if accumulate:
                pooled = family.merge_stats(state_i, batch)
                return pooled, family.fit_stats(pooled, frame)
            return state_i, family.fit_stats(batch, frame)

        if accumulate:
            return jax.vmap(node)(jnp.arange(k), counts, prev, state)
        _, params = jax.vmap(lambda i, c, p: node(i, c, p, ()))(jnp.arange(k), counts, prev)
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
            s = _stream(ctx, i, 0, k, stream.g, STREAM_METRICS)
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
        return self.k * (1 if _mixes(family, synthesis) else self.k + 1)
