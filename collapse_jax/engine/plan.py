"""Shapes, sizes and names of a configuration, found by tracing once (no compute)
and cached by static signature, so repeated ``simulate`` calls cost no retrace;
the memory plan that sizes chunks from them and refuses, before anything is
compiled, a run whose arrays cannot fit ``max_memory``."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from .. import _rng
from .compat import stores_points
from .kernel import KernelConfig, chain_one, init_one, step_one, sweep_vmap


def nbytes(tree) -> int:
    return sum(math.prod(x.shape) * _itemsize(x.dtype) for x in jax.tree.leaves(tree))


def _itemsize(dtype) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:  # a typed PRNG key: at most four 32-bit words
        return 16


def _var_bytes(v) -> int:
    aval = getattr(v, "aval", None)
    if isinstance(v, jcore.DropVar) or aval is None or not hasattr(aval, "shape"):
        return 0
    return math.prod(aval.shape) * _itemsize(aval.dtype)


# primitives whose outputs are the outputs of the jaxpr they call (no buffers of their own)
_CALLS = frozenset(
    {"jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call", "remat", "checkpoint"}
)
# loops: XLA copies their operands into the loop's state
_LOOPS = frozenset({"while", "scan"})
# elementwise primitives: XLA fuses one into an elementwise reader
_ELEMENTWISE = frozenset(
    """abs acos acosh add and asin asinh atan atan2 atanh bitcast_convert_type broadcast_in_dim cbrt ceil clamp
    convert_element_type copy copy_p cos cosh digamma div eq erf erf_inv erfc exp exp2 expand_dims expm1 floor ge
    gt imag integer_pow iota is_finite le lgamma log log1p logistic lt max min mul ne neg nextafter not or pow
    random_bits real reduce_precision rem reshape round rsqrt select_n shift_left shift_right_arithmetic
    shift_right_logical sign sin sinh sqrt square squeeze sub tan tanh xor""".split()
)
# reductions: XLA's CPU kernels for them hold a copy of their operand while they run
_REDUCTIONS = frozenset(
    {"reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and", "reduce_or", "argmax", "argmin"}
)


def jaxpr_peak(jaxpr) -> int:
    """Largest total size of the values a jaxpr holds at once: every value lives from
    the equation that computes it to its last use, outputs to the end; inputs are not
    counted. An elementwise value read once, by another elementwise operation, is fused
    into its reader as XLA does (its inputs live until then). A call adds the peak of
    its body; a loop adds the peak of its body and a copy of its operands, and a
    reduction a copy of its operand (XLA's CPU reduction kernels hold one), while their
    own outputs are held.

    Measured resident growth per chain is 0.5x to 1.07x of this (see
    ``WORKING_SAFETY``): XLA fuses more than is modelled here (across calls, values read
    twice, elementwise work into reductions)."""
    eqns = jaxpr.eqns
    uses: dict = {}
    for i, eqn in enumerate(eqns):
        for v in eqn.invars:
            if isinstance(v, jcore.Var):
                uses.setdefault(v, []).append(i)
    outs = {v for v in jaxpr.outvars if isinstance(v, jcore.Var)}
    # where each equation's work happens: a fused one's in its reader's
    at = list(range(len(eqns)))
    fused: set = set()
    for i in reversed(range(len(eqns))):
        eqn = eqns[i]
        if eqn.primitive.name not in _ELEMENTWISE or len(eqn.outvars) != 1:
            continue
        (v,) = eqn.outvars
        readers = uses.get(v, [])
        if v in outs or len(readers) != 1:
            continue
        reader = eqns[readers[0]].primitive.name
        if reader in _ELEMENTWISE:
            fused.add(v)
            at[i] = at[readers[0]]
    last: dict = {}
    for i, eqn in enumerate(eqns):
        for v in eqn.invars:
            if isinstance(v, jcore.Var):
                last[v] = max(last.get(v, -1), at[i])
    for v in outs:
        last[v] = len(eqns)
    frees: dict = {}
    for v, i in last.items():
        frees.setdefault(i, []).append(v)
    held: set = set()
    live = top = 0
    for i, eqn in enumerate(eqns):
        out = sum(_var_bytes(v) for v in eqn.outvars if v not in fused)
        inner = max((jaxpr_peak(sub) for sub in jcore.jaxprs_in_params(eqn.params)), default=0)
        name = eqn.primitive.name
        if name in _CALLS:
            top = max(top, live + max(out, inner))
        else:
            operands = sum(_var_bytes(v) for v in eqn.invars) if name in _LOOPS or name in _REDUCTIONS else 0
            top = max(top, live + out + inner + operands)
        for v in eqn.outvars:
            if v not in fused and last.get(v, -1) > i:
                held.add(v)
                live += _var_bytes(v)
        for v in frees.get(i, ()):
            if v in held:
                held.discard(v)
                live -= _var_bytes(v)
    return top


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Bytes of one chain (every sweep point included), from shapes only.

    Attributes:
        carry: its state between generations (a data-storing regime's buffer and the
            chain's constant context included).
        out: one generation's outputs in keep='chains' mode (metrics, diagnostics and
            the non-finite flag), as the host stores them.
        points: one generation's data (0 on the exact path).
        working: the peak of one generation (generation 0 or a later one): its data,
            the fit's and the metrics' temporaries, the new state and the outputs.
        events: its first-passage generations (int32, kept on the host in every mode).
        values: metric and diagnostic values per generation (summary moments are
            taken of each).
        value_bytes: their bytes as summary mode keeps them (integer diagnostics as float32).
        metric_values: values per generation of each metric (threshold counts).
        largest: values per generation of the largest metric or diagnostic.
        sweep: sweep points (1 without a sweep).
    """

    carry: int
    out: int
    points: int
    working: int
    events: int
    values: int
    value_bytes: int
    metric_values: dict
    largest: int
    sweep: int

    def plan(self, family, n, chains, G, block, summary, keep_chains, thresholds, budget, checkpoint, cause):
        """The :class:`MemoryPlan` of a run with these per-chain sizes (``cause``: what
        makes a chain grow with the generations, from :func:`memory_cause`)."""
        run = _Run(type(family).__name__, n, chains, G, block, summary, keep_chains, thresholds, checkpoint, cause)
        return plan_memory(self, run, budget)


class _Keyed:
    """An argument that ``functools.lru_cache`` hashes by ``key`` alone (the payload
    holds arrays, which do not hash): configurations with one static signature
    share their sizes."""

    __slots__ = ("key", "payload")

    def __init__(self, key, payload):
        self.key, self.payload = key, payload

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        return isinstance(other, _Keyed) and self.key == other.key


def _signature(*trees) -> tuple:
    return tuple(
        (jax.tree.structure(t), tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(t))) for t in trees
    )


def sizes(model, values, n, G, exact, chosen, diag_names, ev_names, fields) -> Sizes:
    """Per-chain sizes of a configuration (see :class:`Sizes`; ``model`` is the run's
    ``(family, regime, synthesis)``), found by tracing generation 0 and one later
    generation of one chain (no compute)."""
    key = (_signature(model, values), n, G, exact, chosen, fields)
    return _sizes(_Keyed(key, (model, values, diag_names, ev_names)))


@functools.lru_cache(maxsize=256)
def _sizes(keyed: _Keyed) -> Sizes:
    (model, values, diag_names, ev_names), keyed.payload = keyed.payload, None  # the cache keeps no arrays
    _, n, G, exact, chosen, fields = keyed.key
    family = model[0]
    probe = KernelConfig(n, G, exact, chosen, diag_names, ev_names, False, 0, (), fields, 1)
    ck1 = jnp.zeros((1, 2), jnp.uint32)
    chains = jax.eval_shape(lambda: sweep_vmap(lambda m, c: chain_one(m, c, probe), probe, 0)(model, values, ck1))
    init = sweep_vmap(lambda m, c, ch: init_one(m, c, ch, probe), probe, 1)
    init_jaxpr, (carry_shape, out_shape) = jax.make_jaxpr(lambda ch: init(model, values, ck1, ch), return_shape=True)(
        chains
    )

    def step(chains, carry, g):
        one = lambda m, c, ch, cr: step_one(m, c, ch, cr, g, probe)  # noqa: E731
        return sweep_vmap(one, probe, 2)(model, values, ck1, chains, carry)

    step_jaxpr = jax.make_jaxpr(step)(chains, carry_shape, jax.ShapeDtypeStruct((), jnp.int32))
    if exact:
        point_bytes = 0  # the exact path never materialises the points
    else:
        stream = _rng.Stream(ck1[0], jnp.int32(0), 0)
        point_bytes = nbytes(jax.eval_shape(lambda: family.sample_real(stream, n)))
    met, diag, _ = out_shape
    leaves = list(met.values()) + list(diag.values())
    floats = lambda x: _itemsize(x.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else 4  # noqa: E731
    return Sizes(
        carry=nbytes(carry_shape) + nbytes(chains),  # the chains' constant context is carried too
        out=nbytes(out_shape),
        points=point_bytes,
        working=max(jaxpr_peak(init_jaxpr.jaxpr), jaxpr_peak(step_jaxpr.jaxpr)),
        events=nbytes(carry_shape[2]),
        values=sum(math.prod(x.shape) for x in leaves),
        value_bytes=sum(math.prod(x.shape) * floats(x) for x in leaves),
        metric_values={k: math.prod(v.shape) for k, v in met.items()},
        largest=max((math.prod(x.shape) for x in leaves), default=0),
        sweep=len(values[0]) if values else 1,
    )


def names(model) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Metric, diagnostic and event names of a run's ``(family, regime, synthesis)``
    (as its regime observes them; cached by signature)."""
    return _names(_Keyed(_signature(model), model))


@functools.lru_cache(maxsize=256)
def _names(keyed: _Keyed) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    (family, regime, synthesis), keyed.payload = keyed.payload, None
    return regime.observe_names(family, synthesis)


# per chain of a chunk, PROGRAMS times the traced peak of one generation (jaxpr_peak) times WORKING_SAFETY,
# and once per chunk RUNTIME_SCRATCH times that peak more (a chunk of one chain counts as two:
# MemoryPlan.need). Measured on CPU (VmHWM growth of a compiled chunk's runs; Gaussian, GMM, Ridge,
# Categorical, KDE, BayesGaussian, n up to 1e5; chunks of 1, 2 and 8 chains): one program of 2 or 8
# chains grows by 0.5x to 1.07x the traced peak per chain (XLA fuses elementwise work the trace counts;
# EM loops hold more), plus at most 0.3x once; a chunk of one chain grows by up to 2.5x (GMM), about
# what a chunk of two does. A run of several chunks or blocks at times holds two programs' buffers at
# once (a finished program's are released after its outputs are ready, while the next one starts:
# Categorical, chunks of 7, peaks of 20 or 33 MiB from run to run), hence PROGRAMS = 2.
WORKING_SAFETY = 1.25
PROGRAMS = 2
RUNTIME_SCRATCH = 0.5
# a checkpoint save streams the host arrays into the file (engine.checkpoint): no second copy
# (benchmarks/bench_checkpoint.py: +0.0 MiB resident for a 400 MiB state; the in-memory archive it
# replaced held about two copies more)
CHECKPOINT_COPIES = 1
# host bytes per summarised value and generation: float64 mean, M2, M3, M4 and int64 counts of finite
# and non-finite chains (collapse_jax.results.SummaryAccumulator)
SUMMARY_BYTES = 48


def _size(b: float) -> str:
    return f"{b / 2**30:,.2f} GiB" if b >= 2**30 else f"{b / 2**20:,.1f} MiB" if b >= 2**20 else f"{b / 2**10:,.1f} KiB"


@dataclasses.dataclass(frozen=True)
class _Run:
    family: str
    n: int
    chains: int
    G: int
    block: int
    summary: bool
    keep_chains: int
    thresholds: tuple
    checkpoint: bool
    cause: str | None


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """What a run holds, split by how it grows with the chunk of chains run at once.

    Memory of a run with chunks of C chains = ``host + fixed + max(C, 2) * per_chain``:

    * ``host``: arrays the host keeps for the whole run. keep='chains': every chain's
      metrics, diagnostics and non-finite flags per generation; keep='summary': float64
      moments and counts per generation and value, and the kept chains' values; both: every
      chain's event generations. Times three while a checkpoint is written.
    * ``fixed``: per chunk, whatever its size: what a compiled chunk holds beyond its
      chains' traced peaks (``RUNTIME_SCRATCH`` times one chain's); keep='summary': the reduced
      outputs of two blocks of generations on the device (one read by the host while the
      next runs), one block's copy on the host and its float64 merge into the totals.
    * ``per_chain``: one chain of a chunk. Its state three times (a block's input kept for
      a rerun, the block's output and the loop's copy; three more on the host while a
      checkpoint is written), the peak of one generation (data, fit and metric
      temporaries: :func:`jaxpr_peak` of the traced generation, times ``WORKING_SAFETY``)
      for each of two programs (one may still hold its buffers while the next runs),
      and its outputs: keep='chains', two blocks' on the device and one block's copied to
      the host; keep='summary', the reductions' temporaries.

    The budget covers these arrays, not the interpreter, JAX's runtime or compiled code.
    """

    host: int
    fixed: int
    per_chain: int
    max_chunk: int
    budget: int
    host_parts: tuple[tuple[str, int], ...]
    chain_parts: tuple[tuple[str, int], ...]
    run: _Run
    size: Sizes

    def need(self, chunk_size: int) -> int:
        """Bytes of the run with chunks of ``chunk_size`` chains. A chunk of one chain
        counts as two: on CPU it holds about as much (its size-1 batch axes compile to
        other layouts and kernels; measured up to 2.5x one chain's traced peak, GMM)."""
        return self.host + self.fixed + max(chunk_size, 2) * self.per_chain

    def check(self) -> None:
        """Raise, naming the costs, when not even one chain per chunk fits."""
        if self.max_chunk < 1:
            raise ValueError(self._refusal())

    def check_chunk(self, chunk_size: int) -> None:
        """Raise when a given ``chunk_size`` does not fit ``max_memory``."""
        if chunk_size > self.max_chunk:
            raise ValueError(
                f"simulate: chunk_size={chunk_size} needs about {_size(self.need(chunk_size))} "
                f"({_size(self.per_chain)} per chain), "
                f"more than max_memory={_size(self.budget)}; at most {self.max_chunk} chains per chunk fit: "
                "lower chunk_size (or leave it None to choose it), or raise max_memory"
            )

    def _refusal(self) -> str:
        run, size = self.run, self.size
        budget = f"max_memory={_size(self.budget)} ({self.budget:,} bytes)"
        one = self.need(1) - self.host  # a chunk of one chain
        copies = (
            f" (x{CHECKPOINT_COPIES} while a checkpoint is written)" if run.checkpoint and CHECKPOINT_COPIES > 1 else ""
        )
        if self.host >= one:
            if not run.summary:
                return (
                    f"simulate: keep='chains' needs {self.host / 2**30:.2f} GiB of per-chain arrays ({run.chains} "
                    f"chains x {run.G + 1} generations x {size.out} bytes{copies}) and {_size(one)} for a chunk of "
                    f"one chain, more than {budget}; use keep='summary', fewer chains or generations, or raise "
                    "max_memory"
                )
            summaries, kept = self.host_parts[0][1], self.host_parts[1][1]
            return (
                f"simulate: keep='summary' needs {_size(summaries)} for the per-generation summaries on the host "
                f"({run.G + 1} generations x {size.values} metric values x {SUMMARY_BYTES} bytes of float64 moments "
                f"and counts{copies}), {_size(kept)} for the {min(run.keep_chains, run.chains)} kept chains and "
                f"{_size(one)} for a chunk of one chain, more than {budget}; lower generations, compute fewer "
                "metrics (metrics=[...]), lower keep_chains, or raise max_memory"
            )
        state, generation, _ = (2 * b for _, b in self.chain_parts)  # a chunk of one counts as two chains
        generation += int(RUNTIME_SCRATCH * size.working)  # a chunk's extra is the generation's too
        parts = {
            "its state": state,
            f"one generation of {run.family} at n={run.n} (its data, the fit's and the metrics' temporaries)": (
                generation
            ),
            "its outputs": one - state - generation,
        }
        label = max(parts, key=parts.__getitem__)
        cause = run.cause or f"{label}: {_size(parts[label])}"
        advice = "lower n or generations" if run.cause else "lower n"
        if label == "its outputs":
            advice += ", use keep='summary'" if not run.summary else ", lower keep_chains"
        return (
            f"simulate: one chain needs about {_size(one)} ({cause}), and the run's host arrays "
            f"{_size(self.host)}: more than {budget}; chains already run one at a time, so {advice}, or raise "
            "max_memory"
        )


def plan_memory(size: Sizes, run: _Run, budget: int) -> MemoryPlan:
    """The :class:`MemoryPlan` of a run (see there for what is counted)."""
    gens, block = run.G + 1, run.block
    thr = sum(size.metric_values.get(name, 0) for name, _ in run.thresholds)
    if run.summary:
        kept = min(run.keep_chains, run.chains)
        # one generation's reduced outputs on the device: int32 counts, five moments and the kept values
        gen_out = 8 * size.values + (5 + kept) * size.value_bytes + 4 * size.sweep + 4 * thr
        host_parts = [
            ("per-generation summaries", gens * (SUMMARY_BYTES * size.values + 8 * size.sweep + 8 * thr)),
            ("kept chains", gens * kept * size.value_bytes),
        ]
        # two blocks' outputs on the device, one copied to the host, and the float64 temporaries of
        # merging one value's moments of a block into the totals (about 32 arrays of a block)
        fixed = 3 * block * gen_out + 32 * 8 * block * size.largest
        outputs = 8 * size.out  # the reductions' temporaries
    else:
        host_parts = [("per-chain arrays", run.chains * gens * size.out)]
        fixed = 0
        outputs = 3 * block * size.out  # two blocks' on the device, one copied to the host
    fixed += int(RUNTIME_SCRATCH * size.working)
    host_parts.append(("event generations", run.chains * size.events))
    host = (CHECKPOINT_COPIES if run.checkpoint else 1) * sum(b for _, b in host_parts)
    chain_parts = (
        ("its state", (6 if run.checkpoint else 3) * size.carry),
        (
            f"one generation at n={run.n} (data, fit and metric temporaries)",
            int(PROGRAMS * WORKING_SAFETY * size.working),
        ),
        (f"its outputs of a block of {block} generations", outputs),
    )
    per_chain = max(1, sum(b for _, b in chain_parts))
    max_chunk = (budget - host - fixed) // per_chain if host + fixed + 2 * per_chain <= budget else 0
    return MemoryPlan(host, fixed, per_chain, max_chunk, budget, tuple(host_parts), chain_parts, run, size)


CPU_CHUNK_BYTES = 8 * 2**20  # default chunk's working set on CPU (carry and points): cache-sized


def default_chunk_size(family, chains: int, max_chunk: int, working: int) -> int:
    """Chains per compiled chunk, at most ``max_chunk`` (the memory plan's) (results never
    depend on it)."""
    cpu = jax.default_backend() == "cpu"
    cap = 2**17 if cpu else 2**20
    fit = max(1, max_chunk)
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


def memory_cause(regime, family) -> str | None:
    """What makes one chain grow with the generations, for the over-budget message
    (None when nothing does)."""

    if stores_points(regime, family):
        return (
            f"{type(regime).__name__} stores every generation's points for {type(family).__name__}: "
            "(generations + 1) * n per chain"
        )
    return None
