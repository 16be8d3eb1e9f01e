"""Shapes, sizes and names of a configuration, found by tracing once (no compute)
and cached by static signature, so repeated ``simulate`` calls cost no retrace."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from . import _rng


def nbytes(tree) -> int:
    return sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


_SIZE_CACHE: dict = {}


def _signature(*trees) -> tuple:
    return tuple(
        (jax.tree.structure(t), tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(t))) for t in trees
    )


def sizes(family, regime, values, n, G, exact, chosen, diag_names, ev_names, fields, block):
    """(carry, one generation's outputs, one generation's data) bytes per chain."""
    key = (_signature(family, regime, values), n, G, exact, chosen, fields, block)
    if key not in _SIZE_CACHE:
        from .simulate import _init_one, _Static, _sweep_vmap

        probe = _Static(n, G, exact, chosen, diag_names, ev_names, False, 0, (), fields, block)
        ck1 = jnp.zeros((1, 2), jnp.uint32)
        carry_shape, out_shape = jax.eval_shape(
            lambda: _sweep_vmap(lambda f, r, c: _init_one(f, r, c, probe), probe, 0)(family, regime, values, ck1)
        )
        if exact:
            point_bytes = 0  # the exact path never materialises the points
        else:
            stream = _rng.Stream(ck1[0], jnp.int32(0), 0)
            point_bytes = nbytes(jax.eval_shape(lambda: family.sample(stream, family.truth(), n)))
        _SIZE_CACHE[key] = (nbytes(carry_shape), nbytes(out_shape), point_bytes)
    return _SIZE_CACHE[key]


_NAME_CACHE: dict = {}


def names(family) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Metric, diagnostic and event names of a family (cached by signature)."""
    key = _signature(family)
    if key not in _NAME_CACHE:
        t = family.truth
        diag = tuple(jax.eval_shape(lambda: family.diagnostics(t())))
        ev = tuple(jax.eval_shape(lambda: family.events(t())))
        _NAME_CACHE[key] = (family.metric_names(), diag, ev)
    return _NAME_CACHE[key]


CPU_CHUNK_BYTES = 8 * 2**20  # default chunk's working set on CPU (carry and points): cache-sized


def default_chunk_size(family, chains: int, budget: int, per_chain_run: int, working: int, cause: str) -> int:
    """Chains per compiled chunk under the memory budget (results never depend on it)."""
    cpu = jax.default_backend() == "cpu"
    cap = 2**17 if cpu else 2**20
    fit = (budget // 2) // max(per_chain_run, 1)
    if fit < 1:
        raise ValueError(
            f"simulate: one chain needs about {per_chain_run / 2**20:.1f} MiB ({cause}), "
            f"more than half of max_memory={budget / 2**20:.1f} MiB; raise max_memory or lower "
            "generations or n"
        )
    if cpu:
        # every generation streams a chunk's carry (a fixed design is n x d per chain) and its
        # points through every operation: a cache-sized chunk is up to 2x faster on CPU than one
        # large chunk (benchmarks/README.md)
        fit = min(fit, max(64, CPU_CHUNK_BYTES // max(working, 1)))
    # multiples of 64 where the budget allows
    fit = fit // 64 * 64 if fit >= 64 else fit
    limit = (family.max_chunk if cpu else None) or cap  # a CPU measurement (see AbstractFamily)
    chunk_size = int(min(cap, limit, fit, -(-chains // 64) * 64))
    # balance the chunks: 1024 chains in chunks of at most 832 run as 2 x 512, not 832 + 192
    # chains padded to 832 (a chunk always computes its full, padded size)
    n_chunks = -(-chains // chunk_size)
    balanced = -(-chains // n_chunks)
    return min(chunk_size, -(-balanced // 64) * 64 if chunk_size >= 64 else balanced)


def local_devices(devices) -> list:
    """The local devices a run shares its chains over."""
    local = jax.local_devices()
    if devices is None:
        return local
    if isinstance(devices, bool) or not isinstance(devices, (int, np.integer)) or not 1 <= devices <= len(local):
        raise ValueError(f"simulate: devices must be an int in [1, {len(local)}] (local devices), got {devices!r}")
    return local[: int(devices)]


def chain_shardings(devs, n_sweep):
    """Shardings over the devices: of per-chain arrays (chain axis first), of arrays
    with a leading sweep axis when there is one, and replicated."""
    P = jax.sharding.PartitionSpec
    mesh = jax.sharding.Mesh(np.array(devs), ("chains",))
    per_chain = jax.sharding.NamedSharding(mesh, P("chains"))
    lead = jax.sharding.NamedSharding(mesh, P(None, "chains") if n_sweep else P("chains"))
    return per_chain, lead, jax.sharding.NamedSharding(mesh, P())


def memory_cause(regime, family) -> str:
    """What makes one chain large, for the over-budget message."""
    from .regimes import Accumulate, AccumulateSubsample, _subsamples_stats

    stores = (isinstance(regime, Accumulate) and not family.has_stats) or (
        isinstance(regime, AccumulateSubsample) and not _subsamples_stats(family)
    )
    if stores:
        return (
            f"{type(regime).__name__} stores every generation's points for {type(family).__name__}: "
            "(generations + 1) * n per chain"
        )
    return "its state, one generation's data and the outputs of one block of generations"
