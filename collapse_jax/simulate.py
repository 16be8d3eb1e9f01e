"""THE recursion kernel, written once for every family and regime.

``simulate`` runs ``chains`` independent recursive-fitting chains as one compiled
program per chunk shape: a ``lax.scan`` over a block of generations whose body is
the generation step ``vmap``-ed over chains (and over a sweep axis). Chains are
split on the host into chunks of one fixed, padded shape chosen under a memory
budget, and generations into blocks, so progress is reported while a long run
works and nothing recompiles between chunks or blocks. Summary-only runs reduce
over chains inside the compiled step: memory is O(chunk), whatever the length.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _checkpoint, _rng, _shards, compat
from ._host import HostArrays
from ._plan import chain_shardings, default_chunk_size, local_devices, memory_cause, names, sizes
from ._progress import Progress
from ._sweep import apply_sweep, resolve_sweep
from ._validate import as_float_array, check_int, check_seed, parse_memory
from .families._base import AbstractFamily
from .pressures import split as split_synthesis
from .regimes import AbstractRegime, Context, Replace
from .results import Result, SummaryAccumulator, run_info
from .synthesis import Synthesis

KEEP_MODES = ("chains", "summary", "auto")
DTYPES = ("float32", "float64")


@dataclasses.dataclass(frozen=True)
class _Static:
    n: int
    generations: int
    exact: bool
    metrics: tuple[str, ...]
    diagnostics: tuple[str, ...]
    events: tuple[str, ...]
    summary: bool
    kept: int
    thresholds: tuple[tuple[str, float], ...]
    sweep_fields: tuple[tuple[str, str], ...]
    block: int
    safe: bool = True  # False: fast mode, rare exact-sampler retries are redone by the host
    prng: str = "threefry"


# --------------------------------------------------------------------------- one chain
def _apply_sweep(model, values, cfg: _Static):
    return apply_sweep(model, values, cfg.sweep_fields)


def _observe(family: AbstractFamily, synthesis: Synthesis, ck, params, g, cfg: _Static):
    stream = _rng.Stream(ck, jnp.asarray(g, jnp.int32), _rng.STREAM_METRICS, prng=cfg.prng)
    allm = {**family.metrics(stream, params), **synthesis.metrics(family, stream, params)}
    nonfinite = ~family.is_finite(params)
    # a metric of a model that is not finite is never a number: comparisons with NaN are False, so
    # a metric such as a tail mass would otherwise read as a finite, plausible value
    met = {k: _nan_where(nonfinite, allm[k]) for k in cfg.metrics}
    diag = {k: v for k, v in family.diagnostics(params).items() if k in cfg.diagnostics}
    ev = family.events(params)
    return met, diag, ev, nonfinite


def _nan_where(mask, x):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return jnp.where(mask, jnp.asarray(jnp.nan, x.dtype), x)


def _sweep_vmap(fn, cfg: _Static, n_sweep_args: int):
    """vmap ``fn(model, chain_key, *args)`` over chains, then over the sweep axis;
    ``model`` is the run's ``(family, regime, synthesis)``."""

    def over_chains(model, values, ck, *args):
        model = _apply_sweep(model, values, cfg)
        return jax.vmap(lambda c, *a: fn(model, c, *a))(ck, *args)

    if not cfg.sweep_fields:
        return over_chains
    in_axes = (None, 0, None) + (0,) * n_sweep_args
    return jax.vmap(over_chains, in_axes=in_axes)


def _context(ck, synthesis: Synthesis, cfg: _Static) -> Context:
    return Context(ck, cfg.n, cfg.generations, cfg.exact, cfg.safe, cfg.prng, synthesis)


def _init_one(model, ck, cfg: _Static):
    family, regime, synthesis = model
    ctx = _context(ck, synthesis, cfg)
    p0 = regime.generation_zero(family, ctx)
    state = regime.init(family, ctx, p0)
    met, diag, ev, nf = _observe(family, synthesis, ck, p0, 0, cfg)
    events = {k: jnp.where(ev[k], 0, -1).astype(jnp.int32) for k in cfg.events}
    return (state, p0, events), (met, diag, nf)


def _step_one(model, ck, carry, g, cfg: _Static):
    family, regime, synthesis = model
    state, prev, events = carry
    ctx = _context(ck, synthesis, cfg)
    state, params = regime.step(family, ctx, state, prev, g)
    met, diag, ev, nf = _observe(family, synthesis, ck, params, g, cfg)
    live = g <= cfg.generations
    events = {k: jnp.where((events[k] < 0) & ev[k] & live, g, events[k]).astype(jnp.int32) for k in cfg.events}
    return (state, params, events), (met, diag, nf)


# --------------------------------------------------------------------------- reductions
def _reduce(out, valid, cfg: _Static):
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

    res = {"metrics": all_moments(met), "diagnostics": all_moments(diag)}
    res["nonfinite"] = jnp.sum(nf & valid, axis=chain_axis).astype(jnp.int32)
    res["below"] = {
        f"{name}<{c!r}": jnp.sum(
            (met[name] < c) & valid.reshape(valid.shape + (1,) * (met[name].ndim - chain_axis - 1)), axis=chain_axis
        ).astype(jnp.int32)
        for name, c in cfg.thresholds
    }
    return res


# --------------------------------------------------------------------------- compiled pieces
TRACE_COUNTS = {"init": 0, "block": 0}  # incremented when (re)traced: tests assert no retrace
RERUNS = {"blocks": 0}  # fast-mode blocks redone in safe mode (see _run_block)
FAST_EXACT = True  # exact path: run blocks in fast mode, redo the rare failures in safe mode


MAX_PROGRAMS = 64  # compiled run configurations kept at once (see _bound_compiled_programs)
_PROGRAMS: set = set()


def _bound_compiled_programs(key) -> None:
    """Keep at most MAX_PROGRAMS compiled configurations of the kernel. Each holds a
    few hundred memory mappings of machine code on CPU, and Linux allows 65,530 per
    process (vm.max_map_count): a session looping over hundreds of static settings
    (n, generations, families) would otherwise crash inside the compiler. Past the
    limit the kernel's compiled programs are dropped and recompiled when needed."""
    if key in _PROGRAMS:
        return
    if len(_PROGRAMS) >= MAX_PROGRAMS:
        for fn in (_init_chunk, _run_block, _run_block_donating):
            fn.clear_cache()
        _PROGRAMS.clear()
    _PROGRAMS.add(key)


@functools.partial(jax.jit, static_argnames=("static", "cfg"))
def _init_chunk(dynamic, static, values, ck, valid, cfg: _Static):
    """Generation 0 of a chunk. ``(dynamic, static)`` is ``eqx.partition((family,
    regime, synthesis), eqx.is_array)``, done once per run: plain ``jax.jit`` with a
    hashable static part dispatches several times faster than re-partitioning every call."""
    model = eqx.combine(dynamic, static)
    TRACE_COUNTS["init"] += 1
    carry, out = _sweep_vmap(lambda m, c: _init_one(m, c, cfg), cfg, 0)(model, values, ck)
    fresh = jnp.any(out[2] & valid)
    return carry, _reduce(out, valid, cfg), fresh


def _chain_nonfinite(family: AbstractFamily, params, lead: int) -> jax.Array:
    fn = lambda p: ~family.is_finite(p)
    for _ in range(lead):
        fn = jax.vmap(fn)
    return fn(params)


def _run_block_impl(dynamic, static, values, ck, valid, carry, g0, cfg: _Static):
    """Generations g0 .. g0 + block - 1. Also returns whether a chain that was
    finite at the start became non-finite (in fast mode: possibly a deferred
    exact-sampler retry, so the host reruns the block in safe mode)."""
    TRACE_COUNTS["block"] += 1
    model = eqx.combine(dynamic, static)
    start_nf = _chain_nonfinite(model[0], carry[1], valid.ndim)

    def body(state, g):
        carry, fresh = state
        step = _sweep_vmap(lambda m, c, cr: _step_one(m, c, cr, g, cfg), cfg, 1)
        carry, out = step(model, values, ck, carry)
        fresh = fresh | jnp.any(out[2] & ~start_nf & valid)
        return (carry, fresh), _reduce(out, valid, cfg)

    gens = g0 + jnp.arange(cfg.block, dtype=jnp.int32)
    (carry, fresh), outs = jax.lax.scan(body, (carry, jnp.bool_(False)), gens)
    return carry, outs, fresh


_run_block = jax.jit(_run_block_impl, static_argnames=("static", "cfg"))
# The same program with the carry's buffers donated: the carry holds every chain's state (a fixed
# design is n x d per chain), and without donation each block would copy all of it. Used whenever
# the host never needs a block's input again (no fast-mode reruns).
_run_block_donating = jax.jit(_run_block_impl, static_argnames=("static", "cfg"), donate_argnames=("carry",))


# --------------------------------------------------------------------------- public
def simulate(
    family: AbstractFamily,
    regime: AbstractRegime | None = None,
    *,
    synthesis: Synthesis | None = None,
    n: int,
    generations: int,
    chains: int,
    seed: int = 0,
    keep: str = "auto",
    keep_chains: int = 1000,
    max_memory: int | str = "4GB",
    dtype: str = "float32",
    progress: bool | None = None,
    metrics: list[str] | tuple[str, ...] | None = None,
    thresholds: dict[str, Any] | None = None,
    sweep: dict[str, Any] | None = None,
    chunk_size: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: float = 60.0,
    devices: int | None = None,
    prng: str = "threefry",
    shards: str | os.PathLike | None = None,
    shard_timeout: float = 3600.0,
) -> Result:
    """Run independent recursive-fitting chains of ``family`` under ``regime``.

    Args:
        family: a model family, e.g. ``cj.Gaussian(dim=1, estimator="mle")``.
        regime: how each generation's training set is built (default ``Replace()``).
        synthesis: how a fitted model generates its synthetic data (temperature,
            truncation, a verifier, self-correction; default plain draws), e.g.
            ``cj.Synthesis(temperature=0.9)``. ``cj.Pressured(family, ...)`` passed
            as ``family`` is the same as the family with this synthesis.
        n: points per generation (see each regime for what n counts); static.
        generations: G >= 0; the result has G + 1 columns, generation 0 being the
            fit to the original real sample (paper fit t = g + 1).
        chains: number of independent chains.
        seed: root seed, an int in [0, 2**64); all of its bits reach the root key
            (``seed`` and ``seed + 2**32`` are different runs). Chain c's draws
            depend only on (seed, c): the first c chains of a larger run equal a
            c-chain run at the same chunk size, and runs sharing a seed share their
            real data (common random numbers).
        keep: ``"chains"`` keeps every chain's trajectory; ``"summary"`` streams
            per-generation moments (float64, fixed chunk order), threshold counts
            and the trajectories of chains 0..keep_chains-1; ``"auto"`` keeps
            chains unless they would exceed ``max_memory`` (then warns).
        keep_chains: chains kept in summary mode (a uniform sample: keys depend
            only on the global id); quantiles come from them.
        max_memory: budget in bytes (or "4GB", "512MiB") for chunk sizes and for
            the kept per-chain arrays.
        dtype: ``"float32"`` (default) or ``"float64"``.
        progress: show a progress line (rate, ETA); ``None`` shows it only for
            runs that take longer than a few seconds.
        metrics: subset of the family's metrics to compute (default all).
        thresholds: ``{metric: value or [values]}``: streamed counts of chains
            with metric < value, for :meth:`Result.prob_below` in summary mode.
        sweep: ``{hyperparameter: values}`` over traced fields of the regime, the
            family or the synthesis (e.g. ``{"real_fraction": [0.1, 0.5]}``; write
            ``"regime.x"``, ``"family.x"`` or ``"synthesis.x"`` where a name is
            shared); several keys form a
            grid. The whole grid runs as one compiled program with a leading
            ``sweep`` axis; every sweep point shares the chains' random numbers.
        chunk_size: chains per compiled chunk (default: chosen from the budget).
        checkpoint: a file path: the run's state is written there atomically after
            finished blocks (at most every ``checkpoint_every`` seconds, 0: every
            block, and at the end); rerunning the same call resumes and ends with
            the uninterrupted result. Corrupt or foreign checkpoints are refused.
        prng: ``"threefry"`` (Threefry-2x32-20, default) or ``"philox"``
            (Philox-4x32-10): the counter-based hash behind every stream.
        shards: under several processes (``jax.distributed``), a folder shared by
            all: process p of P runs chunks p, p + P, ..., writes its shard there,
            waits ``shard_timeout`` seconds at most for the others' and returns the
            merged result (``cj.merge_shards`` merges a folder later).
        devices: how many local devices share each chunk's chain axis (default
            all): per-chain arrays, counts and event generations as on one device,
            floats to last-bit rounding (README, "Long runs").

    Returns:
        A :class:`collapse_jax.Result`.
    """
    regime = Replace() if regime is None else regime
    family, synthesis = split_synthesis(family, synthesis, "simulate")
    if not isinstance(regime, AbstractRegime):
        raise TypeError(f"simulate: regime must be a collapse_jax regime (e.g. cj.Replace()), got {regime!r}")
    n = check_int("n", n, 1)
    generations = check_int("generations", generations, 0)
    chains = check_int("chains", chains, 1)
    seed = check_seed("seed", seed)
    keep_chains = check_int("keep_chains", keep_chains, 0)
    if generations > _rng.MAX_GENERATIONS:
        raise ValueError(f"simulate: generations must be <= {_rng.MAX_GENERATIONS}, got {generations}")
    if keep not in KEEP_MODES:
        raise ValueError(f"simulate: keep must be one of {KEEP_MODES}, got {keep!r}")
    if dtype not in DTYPES:
        raise ValueError(f"simulate: dtype must be one of {DTYPES}, got {dtype!r}")
    budget = parse_memory(max_memory)
    if n < family.min_points():
        desc = family.describe()
        args = ", ".join(f"{a}={desc[a]}" for a in ("components", "dim", "learn_cov") if a in desc)
        raise ValueError(
            f"simulate: n={n} is too small for {type(family).__name__}({args}): "
            f"each fit needs n >= {family.min_points()}"
        )
    exact = family.is_exact
    compat.check(family, regime, synthesis, n, generations, exact)
    family = family.for_run(regime, n, generations)
    regime = regime.for_run(family, n, generations)
    synthesis = synthesis.for_run(family, n)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, 1)
    if progress not in (None, True, False):
        raise TypeError(f"simulate: progress must be None, True or False, got {progress!r}")
    if prng not in _rng.PRNGS:
        raise ValueError(f"simulate: prng must be one of {_rng.PRNGS}, got {prng!r}")
    if jax.process_count() > 1:
        checkpoint = _shards.prepare(shards, checkpoint)
    ckpt = _checkpoint.Checkpointer(checkpoint, checkpoint_every) if checkpoint is not None else None

    all_metrics = names(family)[0] + synthesis.metric_names(family)
    if metrics is None:
        chosen = all_metrics
    else:
        if isinstance(metrics, str):
            metrics = [metrics]
        unknown = [m for m in metrics if m not in all_metrics]
        if unknown:
            raise ValueError(f"simulate: unknown metrics {unknown}; {type(family).__name__} has {list(all_metrics)}")
        chosen = tuple(metrics)
    thr = []
    for name, vals in (thresholds or {}).items():
        if name not in chosen:
            raise ValueError(
                f"simulate: thresholds names metric {name!r}, which is not computed; computed: {list(chosen)}"
            )
        for c in np.atleast_1d(as_float_array("simulate", f"thresholds[{name!r}]", vals, limit=math.inf)):
            thr.append((name, float(c)))

    fields, values, coords = resolve_sweep((family, regime, synthesis), sweep)
    n_sweep = len(values[0]) if values else None

    ctx_x64 = jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()
    with ctx_x64:
        jdtype = jnp.dtype(dtype)
        family = _cast(family, jdtype)
        regime = _cast(regime, jdtype)
        synthesis = _cast(synthesis, jdtype)
        jvalues = tuple(jnp.asarray(v, jdtype) for v in values)
        return _run(
            family,
            regime,
            synthesis,
            jvalues,
            coords,
            fields,
            n_sweep,
            chosen,
            tuple(thr),
            n,
            generations,
            chains,
            seed,
            keep,
            keep_chains,
            budget,
            dtype,
            progress,
            chunk_size,
            exact,
            ckpt,
            devices,
            prng,
            shards,
            float(shard_timeout),
        )


def _cast(tree, dtype):
    return jax.tree.map(
        lambda x: x.astype(dtype) if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


def _run(
    family,
    regime,
    synthesis,
    values,
    coords,
    fields,
    n_sweep,
    chosen,
    thr,
    n,
    G,
    chains,
    seed,
    keep,
    keep_chains,
    budget,
    dtype,
    progress,
    chunk_size,
    exact,
    ckpt=None,
    devices=None,
    prng="threefry",
    shards=None,
    shard_timeout=3600.0,
) -> Result:
    _, diag_names, ev_names = names(family)
    chunk_given = chunk_size is not None
    devs = local_devices(devices)
    sweep_n = n_sweep or 1
    block = G if G <= 10 else math.ceil(G / 10)
    block = max(block, 1)

    # per-chain sizes, from shapes only (no compute), cached by static signature, and the memory
    # plan: every array the run holds, by how it grows with the chunk (collapse_jax._plan.MemoryPlan)
    size = sizes((family, regime, synthesis), values, n, G, exact, chosen, diag_names, ev_names, fields)

    def plan(summary):
        cause = memory_cause(regime, family)
        return size.plan(family, n, chains, G, block, summary, keep_chains, thr, budget, ckpt is not None, cause)

    if keep == "auto":
        full_arrays = plan(False).host
        summary = full_arrays > budget // 2
        if summary:
            warnings.warn(
                f"simulate: per-chain arrays would take {full_arrays / 2**20:,.1f} MiB (> half of max_memory); "
                f"keeping summaries and the first {keep_chains} chains (keep='summary')",
                stacklevel=3,
            )
    else:
        summary = keep == "summary"
    memory = plan(summary)
    memory.check()  # before compiling: a run that cannot fit is refused, naming the cost
    if chunk_size is None:
        # one fit's data: a data-storing regime fits up to (G + 1) n points (Accumulate on a point family)
        fit_bytes = size.points * regime.fit_size(family, n, G) // n
        working = size.carry + family.working_set_factor * synthesis.candidates(family) * sweep_n * fit_bytes
        chunk_size = default_chunk_size(family, chains, memory.max_chunk, working)
    else:
        memory.check_chunk(chunk_size)
    if len(devs) > 1:
        # every device holds the same number of a chunk's chains (rounded down where rounding up
        # would leave the budget)
        up = -(-chunk_size // len(devs)) * len(devs)
        chunk_size = up if up <= memory.max_chunk or chunk_size < len(devs) else chunk_size // len(devs) * len(devs)
    if exact and FAST_EXACT:
        # fast mode redoes a block when one of its draws needs a rejection retry (probability
        # ~1e-7 to 3e-7 per draw): about 2e5 draws per block keeps reruns to a few percent
        block = max(1, min(block, round(2e5 / chunk_size)))
    config = {
        "family": family.describe(),
        "regime": regime.describe(),
        **({} if synthesis.identity else {"synthesis": synthesis.describe(family)}),
        "n": n,
        "generations": G,
        "chains": chains,
        "seed": seed,
        "dtype": dtype,
        "keep": "summary" if summary else "chains",
        "keep_chains": keep_chains if summary else chains,
        "chunk_size": chunk_size,
        "sampler": "exact" if exact else "samples",
        "metrics": list(chosen),
        "thresholds": [list(t) for t in thr],
        "sweep": {k: v.tolist() for k, v in coords.items()},
        "prng": prng,
    }
    if ckpt is not None:
        chunk_size, block = ckpt.configure(config, chunk_size, block, adopt=not chunk_given)
        config["chunk_size"] = chunk_size
    kept = min(keep_chains, chunk_size, chains) if summary else 0
    cfg = _Static(n, G, exact, chosen, diag_names, ev_names, summary, kept, thr, fields, block, prng=prng)

    root = _rng.root_key(seed)
    n_chunks = -(-chains // chunk_size)
    n_blocks = -(-G // block) if G > 0 else 0
    acc = SummaryAccumulator(chosen, diag_names, cfg.thresholds, G, n_sweep) if summary else None
    host = HostArrays(chains, G, n_sweep, summary, keep_chains)
    n_proc, proc = jax.process_count(), jax.process_index()
    mine = [ci for ci in range(n_chunks) if ci % n_proc == proc]  # this process's chunks (all, in one process)
    own = sum(min(chunk_size, chains - ci * chunk_size) for ci in mine)
    label = "collapse_jax" if n_proc == 1 else f"collapse_jax [process {proc}/{n_proc}]"  # one line per process
    prog = Progress(total=own * (G + 1) * sweep_n, enabled=progress, unit="chain-generations", prefix=label)

    dyn, stat = eqx.partition((family, regime, synthesis), eqx.is_array)
    _bound_compiled_programs((stat, cfg, chunk_size, dtype, n_sweep, len(devs)))
    if len(devs) > 1:
        chain_sharding, chain_sharding_b, replicated = chain_shardings(devs, n_sweep)
        dyn, values = jax.device_put((dyn, values), replicated)
    ci0, bi0, saved_carry = ckpt.resume(host, acc, prog) if ckpt is not None else (0, 0, None)

    def save(next_chunk, next_block, carry_now, force=False):
        if ckpt is not None:
            ckpt.save(next_chunk, next_block, carry_now, host, acc, prog, force=force)

    for ci in range(ci0, n_chunks):
        if ci % n_proc != proc:
            continue
        start = ci * chunk_size
        ids = start + jnp.arange(chunk_size, dtype=jnp.uint32)
        valid = jnp.arange(chunk_size) < (chains - start)
        if n_sweep:
            valid_b = jnp.broadcast_to(valid, (n_sweep, chunk_size))
        else:
            valid_b = valid
        ck = _rng.chain_keys(root, ids)
        if len(devs) > 1:
            # the chain axis is split over the devices; every later array follows (jit propagates
            # the sharding), and the summaries' reductions over chains become cross-device sums
            ck = jax.device_put(ck, chain_sharding)
            valid_b = jax.device_put(valid_b, chain_sharding_b)
        fast = dataclasses.replace(cfg, safe=False) if (exact and FAST_EXACT) else cfg
        done_chains = min(chunk_size, chains - start)
        first_block = 0
        if ci == ci0 and bi0 > 0:
            # resume inside this chunk: its carry after block bi0 - 1 comes from the checkpoint
            shapes = jax.eval_shape(_init_chunk, dyn, stat, values, ck, valid_b, fast)[0]
            leaves = [jnp.asarray(x) for x in saved_carry]
            if len(devs) > 1:  # every leaf leads with the ([sweep,] chain) axes, as valid_b
                leaves = [jax.device_put(x, chain_sharding_b) for x in leaves]
            carry = jax.tree.unflatten(jax.tree.structure(shapes), leaves)
            first_block = bi0
        else:
            carry, out0, fresh = _init_chunk(dyn, stat, values, ck, valid_b, fast)
            if fast is not cfg and bool(fresh):
                RERUNS["blocks"] += 1
                carry, out0, _ = _init_chunk(dyn, stat, values, ck, valid_b, cfg)
            host.add(out0, start, 0, 1, cfg, acc)
            prog.update(done_chains * sweep_n)
        mode = {"fast": fast}

        def launch(bi, carry_in, c=None, ck=ck, valid_b=valid_b, mode=mode):
            g0 = jnp.int32(1 + bi * block)
            c = c or mode["fast"]
            # a fast-mode block may be rerun from its input, and a checkpoint may read a block's
            # output after the next block started from it: keep it; otherwise donate it
            run = _run_block if (c.safe is False or ckpt is not None) else _run_block_donating
            return run(dyn, stat, values, ck, valid_b, carry_in, g0, c)

        # Blocks are pipelined: block b + 1 is launched (asynchronously) from block b's
        # fast-mode state before b's rerun flag is read, so host bookkeeping overlaps device
        # work. In the rare case that b needs a safe-mode rerun, b + 1 is launched again.
        cur = (first_block, carry, *launch(first_block, carry)) if first_block < n_blocks else None
        while cur is not None:
            bi, carry_in, carry_out, outs, fresh = cur
            nxt = launch(bi + 1, carry_out) if bi + 1 < n_blocks else None
            if mode["fast"] is not cfg and bool(fresh):
                RERUNS["blocks"] += 1
                carry_out, outs, safe_fresh = launch(bi, carry_in, cfg)
                if bool(safe_fresh):
                    mode["fast"] = cfg  # genuine numerical failures: stay in safe mode for this chunk
                nxt = launch(bi + 1, carry_out) if bi + 1 < n_blocks else None
            g0 = 1 + bi * block
            width = min(block, G - g0 + 1)
            host.add(outs, start, g0, width, cfg, acc, stacked=True)
            prog.update(done_chains * width * sweep_n)
            carry = carry_out
            if bi + 1 < n_blocks:
                save(ci, bi + 1, carry_out)
            cur = (bi + 1, carry_out, *nxt) if nxt is not None else None
        events = carry[2]
        host.add_events(events, start, cfg)
        save(ci + 1, 0, None, force=ci == mine[-1])
    prog.close()
    if n_proc > 1:
        args = (config, block, mine, chunk_size, n_chunks, n_sweep, family, host, acc)
        return _shards.finish(shards, shard_timeout, *args)
    return host.result(config, family, acc, coords, run_info())
