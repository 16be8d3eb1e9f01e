"""The compiled programs: one chain's generation 0 (:func:`init_one`) and generation
step (:func:`step_one`), what is observed of a fit (:func:`observe`), the reductions
over chains (:func:`reduce`), and the two jitted programs the driver calls
(:func:`init_chunk`, :func:`run_block`): a ``lax.scan`` over a block of generations
whose body is the step ``vmap``-ed over chains and over the sweep axis.

The unit is ``model = (family, regime, synthesis)``, partitioned once per run into
arrays (traced, swept) and a hashable static part (the compiled program's key). No
state lives here but JAX's own compilation caches: :func:`trace_counts` reads how
often each program was traced (``eqx.debug.get_num_traces``) and
:func:`bound_compiled_programs` clears JAX's caches past a limit.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import _rng
from ..families._protocol import bind_chain, chain_context
from ..regimes import Context
from ..synthesis import Synthesis
from .sweep import apply_sweep


@dataclasses.dataclass(frozen=True)
class KernelConfig:
    n: int
    generations: int
    exact: bool
    metrics: tuple[str, ...]
    diagnostics: tuple[str, ...]
    events: tuple[str, ...]
    summary: bool
    kept: int
    thresholds: tuple[tuple[str, float], ...]
    sweep_fields: tuple[tuple[int, str], ...]  # (slot, name): engine.sweep
    block: int
    safe: bool = True  # False: fast mode, rare exact-sampler retries are redone by the host
    prng: str = "threefry"


# --------------------------------------------------------------------------- one chain
def _apply_sweep(model, values, cfg: KernelConfig):
    return apply_sweep(model, values, cfg.sweep_fields)


def observe(model, ck, params, g, cfg: KernelConfig):
    """Metrics (NaN where the fit is not finite), diagnostics, events and the
    non-finite flag of one chain's fit, as its regime observes them."""
    family, regime, synthesis = model
    stream = _rng.Stream(ck, jnp.asarray(g, jnp.int32), _rng.STREAM_METRICS, prng=cfg.prng)
    allm = regime.observe_metrics(family, synthesis, stream, params)
    nonfinite = ~regime.observe_finite(family, params)
    # a metric of a model that is not finite is never a number: comparisons with NaN are False, so
    # a metric such as a tail mass would otherwise read as a finite, plausible value
    met = {k: _nan_where(nonfinite, allm[k]) for k in cfg.metrics}
    diag = {k: v for k, v in regime.observe_diagnostics(family, params).items() if k in cfg.diagnostics}
    ev = regime.observe_events(family, params)
    return met, diag, ev, nonfinite


def _nan_where(mask, x):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return jnp.where(mask, jnp.asarray(jnp.nan, x.dtype), x)


def sweep_vmap(fn, cfg: KernelConfig, n_sweep_args: int):
    """vmap ``fn(model, chain_key, *args)`` over chains, then over the sweep axis;
    ``model`` is the run's ``(family, regime, synthesis)``."""

    def over_chains(model, values, ck, *args):
        model = _apply_sweep(model, values, cfg)
        return jax.vmap(lambda c, *a: fn(model, c, *a))(ck, *args)

    if not cfg.sweep_fields:
        return over_chains
    in_axes = (None, 0, None) + (0,) * n_sweep_args
    return jax.vmap(over_chains, in_axes=in_axes)


def _context(ck, synthesis: Synthesis, cfg: KernelConfig) -> Context:
    return Context(ck, cfg.n, cfg.generations, cfg.exact, cfg.safe, cfg.prng, synthesis)


def chain_one(model, ck, cfg: KernelConfig):
    """One chain's constant context (``None`` for families without one): built from
    generation 0's real stream on the chain's key at generation 0, then carried
    unchanged (the carry's last element) rather than rebuilt by every block."""
    stream = _rng.Stream(ck, jnp.int32(0), _rng.STREAM_REAL, 0, cfg.safe, None, cfg.prng)
    return chain_context(model[0], stream, cfg.n)


def _bound(model, chain):
    family, regime, synthesis = model
    return bind_chain(family, chain), regime, synthesis


def _with_reference(model, ctx: Context, p0=None):
    """``verifier="first"``: the synthesis holding the chain's generation-0 model
    (refitted from the chain's original sample when not given: a deterministic
    function of the chain's key, so every generation sees the same model)."""
    family, regime, synthesis = model
    if not synthesis.needs_reference:
        return model, ctx
    p0 = regime.generation_zero(family, ctx) if p0 is None else p0
    synthesis = synthesis.with_reference(p0)
    return (family, regime, synthesis), dataclasses.replace(ctx, synthesis=synthesis)


def init_one(model, ck, chain, cfg: KernelConfig):
    model = _bound(model, chain)
    family, regime, synthesis = model
    ctx = _context(ck, synthesis, cfg)
    p0 = regime.generation_zero(family, ctx)
    model, ctx = _with_reference(model, ctx, p0)
    state = regime.init(family, ctx, p0)
    met, diag, ev, nf = observe(model, ck, p0, 0, cfg)
    events = {k: jnp.where(ev[k], 0, -1).astype(jnp.int32) for k in cfg.events}
    return (state, p0, events), (met, diag, nf)


def step_one(model, ck, chain, carry, g, cfg: KernelConfig):
    model = _bound(model, chain)
    family, regime, synthesis = model
    state, prev, events = carry
    ctx = _context(ck, synthesis, cfg)
    model, ctx = _with_reference(model, ctx)
    state, params = regime.step(family, ctx, state, prev, g)
    met, diag, ev, nf = observe(model, ck, params, g, cfg)
    live = g <= cfg.generations
    events = {k: jnp.where((events[k] < 0) & ev[k] & live, g, events[k]).astype(jnp.int32) for k in cfg.events}
    return (state, params, events), (met, diag, nf)


# --------------------------------------------------------------------------- reductions
def reduce_chains(out, valid, cfg: KernelConfig):
    """Per-generation output of a batch (.., chains, *extra): full arrays in chains
    mode; moments, counts and the kept chains in summary mode."""
    met, diag, nf = out
    if not cfg.summary:
        return out
    chain_axis = nf.ndim - 1

    def moments(x, ax):
        lead = ax + 1 - valid.ndim  # a stacked metric axis in front
        v = valid.reshape((1,) * lead + valid.shape + (1,) * (x.ndim - ax - 1))
        fin = jnp.isfinite(x) & v
        cnt = jnp.sum(fin, axis=ax)
        mean = jnp.sum(jnp.where(fin, x, 0), axis=ax) / jnp.maximum(cnt, 1)
        dev = jnp.where(fin, x - jnp.expand_dims(mean, ax), 0)
        # central sums of dev / scale (|.| <= 1): no float32 overflow in M4 of large metrics
        scale = jnp.max(jnp.abs(dev), axis=ax)
        r = dev * jnp.expand_dims(jnp.where(scale > 0, 1.0 / scale, 0.0), ax)
        r2 = r * r
        return {
            "count": cnt.astype(jnp.int32),
            "nonfinite": jnp.sum(v & ~jnp.isfinite(x), axis=ax).astype(jnp.int32),
            "mean": mean,
            "scale": scale,
            "m2": jnp.sum(r2, axis=ax),
            "m3": jnp.sum(r2 * r, axis=ax),
            "m4": jnp.sum(r2 * r2, axis=ax),
            "kept": jax.lax.slice_in_dim(x, 0, cfg.kept, axis=ax),
        }

    def all_moments(xs: dict) -> dict:
        # metrics of one shape and dtype are stacked and reduced together: one pass per moment for
        # all of them instead of one per metric (the exact path's cost is mostly these reductions)
        xs = {k: v if jnp.issubdtype(v.dtype, jnp.floating) else v.astype(jnp.float32) for k, v in xs.items()}
        groups: dict = {}
        for k, v in xs.items():
            groups.setdefault((v.shape, v.dtype), []).append(k)
        res = {}
        for keys in groups.values():
            if len(keys) == 1:
                res[keys[0]] = moments(xs[keys[0]], chain_axis)
                continue
            stacked = moments(jnp.stack([xs[k] for k in keys]), chain_axis + 1)
            for i, k in enumerate(keys):
                res[k] = {name: a[i] for name, a in stacked.items()}
        return {k: res[k] for k in xs}

    res: dict[str, Any] = {"metrics": all_moments(met), "diagnostics": all_moments(diag)}
    res["nonfinite"] = jnp.sum(nf & valid, axis=chain_axis).astype(jnp.int32)
    res["below"] = {
        f"{name}<{c!r}": jnp.sum(
            (met[name] < c) & valid.reshape(valid.shape + (1,) * (met[name].ndim - chain_axis - 1)), axis=chain_axis
        ).astype(jnp.int32)
        for name, c in cfg.thresholds
    }
    return res


# --------------------------------------------------------------------------- compiled pieces
FAST_EXACT = True  # exact path: run blocks in fast mode, redo the rare failures in safe mode
MAX_PROGRAMS = 128  # compiled programs kept at once (a run compiles two or three; see bound_compiled_programs)


def _init_chunk_impl(dynamic, static, values, ck, valid, cfg: KernelConfig):
    """Generation 0 of a chunk. ``(dynamic, static)`` is ``eqx.partition((family,
    regime, synthesis), eqx.is_array)``, done once per run: plain ``jax.jit`` with a
    hashable static part dispatches several times faster than re-partitioning every call."""
    model = eqx.combine(dynamic, static)
    chains = sweep_vmap(lambda m, c: chain_one(m, c, cfg), cfg, 0)(model, values, ck)
    carry, out = sweep_vmap(lambda m, c, ch: init_one(m, c, ch, cfg), cfg, 1)(model, values, ck, chains)
    fresh = jnp.any(out[2] & valid)
    return (*carry, chains), reduce_chains(out, valid, cfg), fresh


def _chain_nonfinite(model, params, lead: int) -> jax.Array:
    family, regime, _ = model
    fn = lambda p: ~regime.observe_finite(family, p)
    for _ in range(lead):
        fn = jax.vmap(fn)
    return fn(params)


def _run_block_impl(dynamic, static, values, ck, valid, carry, g0, cfg: KernelConfig):
    """Generations g0 .. g0 + block - 1. Also returns whether a chain that was
    finite at the start became non-finite (in fast mode: possibly a deferred
    exact-sampler retry, so the host reruns the block in safe mode)."""
    model = eqx.combine(dynamic, static)
    start_nf = _chain_nonfinite(model, carry[1], valid.ndim)
    *carry, chains = carry  # (regime state, fit, events, the chains' constant context)

    def body(state, g):
        carry, chains, fresh = state
        step = sweep_vmap(lambda m, c, ch, cr: step_one(m, c, ch, cr, g, cfg), cfg, 2)
        carry, out = step(model, values, ck, chains, carry)
        fresh = fresh | jnp.any(out[2] & ~start_nf & valid)
        return (carry, chains, fresh), reduce_chains(out, valid, cfg)

    gens = g0 + jnp.arange(cfg.block, dtype=jnp.int32)
    (carry, chains, fresh), outs = jax.lax.scan(body, (tuple(carry), chains, jnp.bool_(False)), gens)
    return (*carry, chains), outs, fresh


# Tracing is counted by equinox (eqx.debug.get_num_traces): tests assert that a new traced
# value never retraces and that an invalid configuration never reaches the compiler.
_traced_init = eqx.debug.assert_max_traces(_init_chunk_impl, max_traces=None)
_traced_block = eqx.debug.assert_max_traces(_run_block_impl, max_traces=None)
init_chunk = jax.jit(_traced_init, static_argnames=("static", "cfg"))
run_block = jax.jit(_traced_block, static_argnames=("static", "cfg"))
# The same program with the carry's buffers donated: the carry holds every chain's state (a fixed
# design is n x d per chain), and without donation each block would copy all of it. Used whenever
# the host never needs a block's input again (no fast-mode reruns).
run_block_donating = jax.jit(_traced_block, static_argnames=("static", "cfg"), donate_argnames=("carry",))
# (Any: jax's JitWrapped type does not declare the _cache_size and clear_cache the jitted functions have)
PROGRAMS: tuple[Any, ...] = (init_chunk, run_block, run_block_donating)


def trace_counts() -> dict[str, int]:
    """How many times the kernel's programs were traced in this process."""
    return {"init": eqx.debug.get_num_traces(_traced_init), "block": eqx.debug.get_num_traces(_traced_block)}


def bound_compiled_programs(limit: int | None = None) -> None:
    """Keep at most ``limit`` (default MAX_PROGRAMS) compiled configurations of the
    kernel in JAX's caches. Each holds a few hundred memory mappings of machine code on
    CPU, and Linux allows 65,530 per process (vm.max_map_count): a session looping
    over hundreds of static settings (n, generations, families) would otherwise crash
    inside the compiler. Called before a run compiles; past the limit the kernel's
    caches are cleared and programs recompile when needed."""
    limit = MAX_PROGRAMS if limit is None else limit
    if sum(fn._cache_size() for fn in PROGRAMS) >= limit:
        for fn in PROGRAMS:
            fn.clear_cache()
