"""The host loop: chunks of chains, blocks of generations, pipelining, devices,
progress, checkpoints and multi-process shards. It runs a
:class:`~collapse_jax.engine.spec.RunSpec` with the programs of
:mod:`collapse_jax.engine.kernel` and returns a :class:`~collapse_jax.Result`."""

from __future__ import annotations

import dataclasses
import logging
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import _rng
from ..results import Result, SummaryAccumulator, run_info
from . import checkpoint as _checkpoint
from . import kernel
from . import shards as _shards
from .host import HostArrays, LiveSummary
from .kernel import KernelConfig, init_chunk, run_block, run_block_donating
from .plan import chain_shardings, default_chunk_size, local_devices, memory_cause, names, sizes
from .progress import make_progress
from .spec import RunSpec

log = logging.getLogger("collapse_jax")


def run(spec: RunSpec) -> Result | None:
    """Run ``spec``: the result, with the number of fast-mode blocks redone in safe
    mode in ``info["reruns"]``."""
    family, regime, synthesis = spec.model
    values, coords, fields, n_sweep = spec.values, spec.coords, spec.fields, spec.n_sweep
    chosen, thr, n, G, chains, seed = spec.metrics, spec.thresholds, spec.n, spec.generations, spec.chains, spec.seed
    keep, keep_chains, budget, dtype, exact = spec.keep, spec.keep_chains, spec.budget, spec.dtype, spec.exact
    progress, chunk_size, ckpt, prng = spec.progress, spec.chunk_size, spec.checkpoint, spec.prng
    reruns = 0
    _, diag_names, ev_names = names(spec.model)
    chunk_given = chunk_size is not None
    devs = local_devices(spec.devices)
    sweep_n = n_sweep or 1
    block = spec.block

    # per-chain sizes, from shapes only (no compute), cached by static signature, and the memory
    # plan: every array the run holds, by how it grows with the chunk (collapse_jax.engine.plan.MemoryPlan)
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
        draws = family.working_set_factor * synthesis.draws_per_point(family) * regime.working_factor(family, synthesis)
        working = size.carry + draws * sweep_n * fit_bytes
        chunk_size = default_chunk_size(family, chains, memory.max_chunk, working)
    else:
        memory.check_chunk(chunk_size)
    if len(devs) > 1:
        # every device holds the same number of a chunk's chains (rounded down where rounding up
        # would leave the budget)
        up = -(-chunk_size // len(devs)) * len(devs)
        chunk_size = up if up <= memory.max_chunk or chunk_size < len(devs) else chunk_size // len(devs) * len(devs)
    if exact and kernel.FAST_EXACT:
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
        "sweep_axes": spec.axes,
        "prng": prng,
    }
    if ckpt is not None:
        chunk_size, block = ckpt.configure(config, chunk_size, block, adopt=not chunk_given)
        config["chunk_size"] = chunk_size
    kept = min(keep_chains, chunk_size, chains) if summary else 0
    cfg = KernelConfig(n, G, exact, chosen, diag_names, ev_names, summary, kept, thr, fields, block, prng=prng)

    root = _rng.root_key(seed)
    n_chunks = -(-chains // chunk_size)
    n_blocks = -(-G // block) if G > 0 else 0
    acc = SummaryAccumulator(chosen, diag_names, cfg.thresholds, G, n_sweep) if summary else None
    host = HostArrays(chains, G, n_sweep, summary, keep_chains)
    n_proc, proc = (spec.process[1], spec.process[0]) if spec.process else (jax.process_count(), jax.process_index())
    mine = [ci for ci in range(n_chunks) if ci % n_proc == proc]  # this process's chunks (all, in one process)
    own = sum(min(chunk_size, chains - ci * chunk_size) for ci in mine)
    label = "collapse_jax" if n_proc == 1 else f"collapse_jax [process {proc}/{n_proc}]"  # one line per process
    prog = make_progress(progress, own * (G + 1) * sweep_n, "chain-generations", label)
    live = LiveSummary(host, acc, chosen, spec.callback, coords, prog, n_chunks) if spec.callback else None
    log.info(
        "simulate: %s under %s, n=%d, %d generations, %d chains (%d chunk(s) of %d, blocks of %d generations), "
        "keep=%s, %s path",
        type(family).__name__,
        type(regime).__name__,
        n,
        G,
        chains,
        n_chunks,
        chunk_size,
        block,
        "summary" if summary else "chains",
        "exact" if exact else "samples",
    )

    dyn, stat = eqx.partition((family, regime, synthesis), eqx.is_array)
    kernel.bound_compiled_programs()
    if len(devs) > 1:
        chain_sharding, chain_sharding_b, replicated = chain_shardings(devs, n_sweep)
        dyn, values = jax.device_put((dyn, values), replicated)
    ci0, bi0, saved_carry = ckpt.resume(host, acc, prog) if ckpt is not None else (0, 0, None)
    if ci0 or bi0:
        log.info("simulate: resumed from checkpoint %s at chunk %d, block %d", ckpt.path, ci0, bi0)

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
        fast = dataclasses.replace(cfg, safe=False) if (exact and kernel.FAST_EXACT) else cfg
        done_chains = min(chunk_size, chains - start)
        first_block = 0
        if ci == ci0 and bi0 > 0:
            # resume inside this chunk: its carry after block bi0 - 1 comes from the checkpoint
            shapes = jax.eval_shape(init_chunk, dyn, stat, values, ck, valid_b, fast)[0]
            assert saved_carry is not None  # a resumed block always has the chunk's carry
            leaves = [jnp.asarray(x) for x in saved_carry]
            want = [(tuple(x.shape), x.dtype) for x in jax.tree.leaves(shapes)]
            if [(tuple(x.shape), x.dtype) for x in leaves] != want:
                raise _checkpoint.CheckpointError(
                    f"checkpoint {ckpt.path} holds a chain state of another layout ({len(leaves)} arrays, "
                    f"this run's has {len(want)}): it was written by another version of collapse_jax; "
                    "rerun with that version, or remove the file to start afresh"
                )
            if len(devs) > 1:  # every leaf leads with the ([sweep,] chain) axes, as valid_b
                leaves = [jax.device_put(x, chain_sharding_b) for x in leaves]
            carry = jax.tree.unflatten(jax.tree.structure(shapes), leaves)
            first_block = bi0
        else:
            carry, out0, fresh = init_chunk(dyn, stat, values, ck, valid_b, fast)
            if fast is not cfg and bool(fresh):
                reruns += 1
                carry, out0, _ = init_chunk(dyn, stat, values, ck, valid_b, cfg)
            host.add(out0, start, 0, 1, cfg, acc)
            prog.update(done_chains * sweep_n)
            if live is not None:
                live(ci, start + done_chains, 0, 1)
        mode = {"fast": fast}

        def launch(bi, carry_in, c=None, ck=ck, valid_b=valid_b, mode=mode):
            g0 = jnp.int32(1 + bi * block)
            c = c or mode["fast"]
            # a fast-mode block may be rerun from its input, and a checkpoint may read a block's
            # output after the next block started from it: keep it; otherwise donate it
            run = run_block if (c.safe is False or ckpt is not None) else run_block_donating
            return run(dyn, stat, values, ck, valid_b, carry_in, g0, c)

        # Blocks are pipelined: block b + 1 is launched (asynchronously) from block b's
        # fast-mode state before b's rerun flag is read, so host bookkeeping overlaps device
        # work. In the rare case that b needs a safe-mode rerun, b + 1 is launched again.
        cur = (first_block, carry, *launch(first_block, carry)) if first_block < n_blocks else None
        while cur is not None:
            bi, carry_in, carry_out, outs, fresh = cur
            nxt = launch(bi + 1, carry_out) if bi + 1 < n_blocks else None
            if mode["fast"] is not cfg and bool(fresh):
                reruns += 1
                carry_out, outs, safe_fresh = launch(bi, carry_in, cfg)
                if bool(safe_fresh):
                    mode["fast"] = cfg  # genuine numerical failures: stay in safe mode for this chunk
                nxt = launch(bi + 1, carry_out) if bi + 1 < n_blocks else None
            g0 = 1 + bi * block
            width = min(block, G - g0 + 1)
            host.add(outs, start, g0, width, cfg, acc, stacked=True)
            prog.update(done_chains * width * sweep_n)
            if live is not None:
                live(ci, start + done_chains, g0, width)
            carry = carry_out
            if bi + 1 < n_blocks:
                save(ci, bi + 1, carry_out)
            cur = (bi + 1, carry_out, *nxt) if nxt is not None else None
        events = carry[2]
        host.add_events(events, start, cfg)
        save(ci + 1, 0, None, force=ci == mine[-1])
    prog.close()
    if live is not None:
        live.close()
    if reruns:
        log.info("simulate: %d fast-mode block(s) redone in safe mode (exact-sampler retries)", reruns)
    dims = regime.observed_dims(family, synthesis)
    if n_proc > 1:
        args = (config, block, mine, chunk_size, n_chunks, n_sweep, dims, host, acc)
        return _shards.finish(spec.shards, spec.shard_timeout, spec.process, *args)
    return host.result(config, dims, acc, coords, {**run_info(), "reruns": reruns})
