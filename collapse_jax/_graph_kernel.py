"""The kernel's view of an interaction graph (see :mod:`collapse_jax.graph`): the K
nodes of a family as one family (``_Nodes``) and Replace or Accumulate at every node as
one regime (``_GraphRegime``), so that graphs run on the same compiled kernel, chunking,
summaries and results as single chains."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

from . import _rng
from ._rng import STREAM_METRICS, STREAM_REAL, STREAM_SYNTH, STREAM_SYNTH_EXTRA, Stream
from .families._base import tree_take
from .families._protocol import AbstractFamily, Located, MixedSampler
from .regimes import AbstractRegime, Accumulate, Context, Replace, truth_dtype
from .synthesis import Synthesis


def _stream(ctx: Context, i, source: int, k: int, g, s: int) -> Stream:
    """Stream s of generation g for node i's draws from ``source`` (0: real data and
    the node's own fits and metrics; 1 + j: node j's model)."""
    key = _rng.node_key(ctx.chain_key, i * (k + 1) + source, ctx.prng)
    return Stream(key, jnp.asarray(g, jnp.int32), s, 0, ctx.safe, ctx.chain_key, ctx.prng)


class _Nodes(AbstractFamily):
    """A family's K nodes as one: parameters stacked on a leading node axis; metrics,
    diagnostics and events gain a ``node`` dim (plus ``homogenisation`` where the
    family has a location, and the synthesis's metrics per node). Fitting is the graph
    regime's job; every node's synthetic draws go through ``synthesis``."""

    base: AbstractFamily
    k: int = eqx.field(static=True)
    sizes: tuple[int, ...] = eqx.field(static=True)
    synthesis: Synthesis

    # ---- forwarded declarations
    @property
    def is_exact(self) -> bool:
        return self.base.is_exact

    @property
    def has_stats(self) -> bool:
        return self.base.has_stats

    @property
    def has_exact(self) -> bool:
        return self.base.has_exact

    @property
    def working_set_factor(self) -> int:  # generic families draw (K + 1) n_max points per node
        sources = 1 if (_mixes(self.base) and self.synthesis.identity) else self.k + 1
        return self.base.working_set_factor * sources * self.synthesis.candidates(self.base)

    @property
    def metric_dims(self) -> dict:
        names = self.base.metric_names() + self.synthesis.metric_names(self.base)
        return {m: ("node",) + self.base.metric_dims.get(m, ()) for m in names}

    @property
    def diagnostic_dims(self) -> dict:
        names = jax.eval_shape(lambda: self.base.diagnostics(self.base.truth()))
        return {m: ("node",) + self.base.diagnostic_dims.get(m, ()) for m in names}

    @property
    def event_dims(self) -> dict:
        names = jax.eval_shape(lambda: self.base.events(self.base.truth()))
        return {m: ("node",) + self.base.event_dims.get(m, ()) for m in names}

    def describe(self) -> dict:
        out = {"family": "graph nodes", "node_family": self.base.describe(), "nodes": self.k, "n": list(self.sizes)}
        if not self.synthesis.identity:
            out["synthesis"] = self.synthesis.describe(self.base)
        return out

    def min_points(self) -> int:
        return self.base.min_points()

    def for_run(self, regime, n: int, generations: int) -> _Nodes:
        accumulate = isinstance(regime, _GraphRegime) and regime.node_regime == "accumulate"
        node_regime = Accumulate() if accumulate else Replace()
        base = self.base.for_run(node_regime, n, generations)
        return _Nodes(base, self.k, self.sizes, self.synthesis.for_run(base, n))

    # ---- per node
    def truth(self):
        t = self.base.truth()
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (self.k,) + x.shape), t)

    def sample(self, key, params, n: int, frame=None):
        """Every node's ``n`` points from its own model (for sizing; a graph generation
        draws from every source, see the graph regime)."""
        s = _rng.as_stream(key)
        ctx = Context(s.chain_key, n, 0, False, prng=s.prng)
        return jax.vmap(lambda i, p: self.base.sample(_stream(ctx, i, 0, self.k, s.g, s.s), p, n))(
            jnp.arange(self.k), params
        )

    def fit(self, key, data, weights, frame=None):
        raise NotImplementedError("graph nodes are fitted by simulate_graph's regime")

    def metrics(self, key, params) -> dict[str, jax.Array]:
        s = _rng.as_stream(key)
        ctx = Context(s.chain_key, 1, 0, False, prng=s.prng)

        def node(i, p):
            stream = _stream(ctx, i, 0, self.k, s.g, STREAM_METRICS)
            return {**self.base.metrics(stream, p), **self.synthesis.metrics(self.base, stream, p)}

        out = jax.vmap(node)(jnp.arange(self.k), params)
        if self.k >= 2 and _has_location(self.base):
            locs = jax.vmap(self.base.location)(params)  # (K, p)
            diff = locs[:, None, :] - locs[None, :, :]
            sq = jnp.sum(diff * diff, axis=-1)
            out["homogenisation"] = jnp.sum(jnp.triu(sq, 1)) / (self.k * (self.k - 1) / 2)
        return out

    def diagnostics(self, params) -> dict[str, jax.Array]:
        return jax.vmap(self.base.diagnostics)(params)

    def events(self, params) -> dict[str, jax.Array]:
        return jax.vmap(self.base.events)(params)

    def is_finite(self, params) -> jax.Array:
        return jnp.all(jax.vmap(self.base.is_finite)(params))


def _mixes(family) -> bool:
    """Whether the family draws a mixed training set in one go (a MixedSampler; its
    real data are draws from ``chain_truth``)."""
    return isinstance(family, MixedSampler)


def _has_location(family) -> bool:
    return isinstance(family, Located)


class _GraphRegime(AbstractRegime):
    """Replace or Accumulate at every node of a graph (see the module docstring)."""

    counts: Int[Array, "t k k1"]
    graph: eqx.Module  # the InteractionGraph (collapse_jax.graph, which builds this regime)
    node_regime: str = eqx.field(static=True)

    def describe(self) -> dict:
        return {
            "regime": "graph",
            "node_regime": "Replace" if self.node_regime == "replace" else "Accumulate",
            "graph": self.graph.describe(),
            "counts": np.asarray(self.counts).tolist(),
        }

    # ---- generation 0: every node fits n_i real points
    def generation_zero(self, family: _Nodes, ctx: Context):
        base, k = family.base, family.k
        truth = base.truth()
        uniform = len(set(family.sizes)) == 1
        sizes = jnp.asarray(family.sizes, jnp.int32)

        def node(i):
            real = _stream(ctx, i, 0, k, 0, STREAM_REAL)
            if ctx.exact:
                m = ctx.n if uniform else sizes[i]
                return base.fit_stats(base.sample_stats(real, truth, m, truth), truth)
            data = base.sample(real, truth, ctx.n, truth)
            w = None if uniform else (jnp.arange(ctx.n) < sizes[i]).astype(truth_dtype(base))
            return base.fit(_stream(ctx, i, 0, k, 0, STREAM_SYNTH), data, w, truth)

        return jax.vmap(node)(jnp.arange(k))

    def init(self, family: _Nodes, ctx: Context, params0):
        if self.node_regime != "accumulate":
            return ()
        base, k = family.base, family.k
        uniform = len(set(family.sizes)) == 1
        sizes = jnp.asarray(family.sizes, jnp.int32)

        def node(i, p0):
            frame = base.pooled_frame(p0)
            real = _stream(ctx, i, 0, k, 0, STREAM_REAL)
            if ctx.exact:
                return base.sample_stats(real, base.chain_truth(p0), ctx.n if uniform else sizes[i], frame)
            data = base.sample(real, base.chain_truth(p0), ctx.n, frame)
            w = None if uniform else (jnp.arange(ctx.n) < sizes[i]).astype(truth_dtype(base))
            return base.data_stats(data, w)

        return jax.vmap(node)(jnp.arange(k), params0)

    def step(self, family: _Nodes, ctx: Context, state, prev, g):
        base, k, synthesis = family.base, family.k, family.synthesis
        t = (jnp.asarray(g, jnp.int32) - 1) % self.counts.shape[0]
        counts = self.counts[t]  # (K, K + 1)
        uniform = len(set(family.sizes)) == 1
        dtype = truth_dtype(base)
        accumulate = self.node_regime == "accumulate"

        def mixed_stats(i, cnt, prev_i, frame):
            truth = base.chain_truth(prev_i)
            real = base.sample_stats(_stream(ctx, i, 0, k, g, STREAM_REAL), truth, cnt[0], frame)
            synth = jax.vmap(
                lambda j, pj, m: synthesis.draw_stats(base, _stream(ctx, i, 1 + j, k, g, STREAM_SYNTH), pj, m, frame)
            )(jnp.arange(k), prev, cnt[1:])
            out = real
            for j in range(k):
                out = base.merge_stats(out, tree_take(synth, j))
            return out

        def mixed_data(i, cnt, prev_i, frame):
            n = ctx.n
            slot = jnp.arange(n)
            src = jnp.sum(slot[:, None] >= jnp.cumsum(cnt)[None, :], axis=1)  # 0 real, 1 + j, K + 1 empty
            w = None if uniform else (src <= k).astype(dtype)
            if _mixes(base) and synthesis.identity:
                # one draw of n points, each from its own source's model (the truth at index 0)
                models = jax.tree.map(lambda t, p: jnp.concatenate([t[None], p]), base.chain_truth(prev_i), prev)
                stream = _stream(ctx, i, 0, k, g, STREAM_SYNTH)
                return base.sample_mixed(stream, models, jnp.minimum(src, k), n, frame), w
            # generic: n points from every source (and n real ones), each slot taking its source's
            real = base.sample_real(_stream(ctx, i, 0, k, g, STREAM_REAL), n, prev_i, frame)
            synth = jax.vmap(
                lambda j, pj: synthesis.draw(base, _stream(ctx, i, 1 + j, k, g, STREAM_SYNTH), pj, n, frame)
            )(jnp.arange(k), prev)
            stacked = jax.tree.map(lambda r, s: jnp.concatenate([r[None], s]), real, synth)  # (K + 1, n, ...)
            data = jax.tree.map(lambda x: x[jnp.minimum(src, k), slot], stacked)
            return data, w

        def node(i, cnt, prev_i, state_i):
            frame = base.pooled_frame(prev_i) if accumulate else prev_i
            fit_stream = _stream(ctx, i, 0, k, g, STREAM_SYNTH_EXTRA)
            if ctx.exact:
                batch = mixed_stats(i, cnt, prev_i, frame)
            else:
                data, w = mixed_data(i, cnt, prev_i, frame)
                if not accumulate:
                    return state_i, base.fit(fit_stream, data, w, frame)
                batch = base.data_stats(data, w)
            if accumulate:
                pooled = base.merge_stats(state_i, batch)
                return pooled, base.fit_stats(pooled, frame)
            return state_i, base.fit_stats(batch, frame)

        if accumulate:
            return jax.vmap(node)(jnp.arange(k), counts, prev, state)
        _, params = jax.vmap(lambda i, c, p: node(i, c, p, ()))(jnp.arange(k), counts, prev)
        return state, params
