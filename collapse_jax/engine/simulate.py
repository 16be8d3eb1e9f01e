"""The public entry: ``simulate`` validates every argument (before anything
compiles), fixes the run's static sizes, resolves sweeps, and hands a frozen
:class:`~collapse_jax.engine.spec.RunSpec` to the driver
(:func:`collapse_jax.engine.driver.run`). docs/ARCHITECTURE.md follows one call.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from .. import _rng
from .._validate import as_float_array, check_int, check_seed, parse_memory
from ..families._protocol import AbstractFamily
from ..regimes import AbstractRegime
from ..results import Result
from ..results.info import provenance
from ..synthesis import Synthesis
from . import checkpoint as _checkpoint
from . import shards as _shards
from .driver import run
from .progress import check_progress
from .spec import RunSpec, choose_metrics, prepare_model
from .sweep import resolve_sweep

KEEP_MODES = ("chains", "summary", "auto")
DTYPES = ("float32", "float64")
PRNG_ALIASES = {"threefry2x32": "threefry", "philox4x32": "philox"}  # JAX's names of the implementations


def _dtype_name(dtype) -> str:
    """``"float32"`` / ``"float64"`` from a name or a dtype (``jnp.float64``, ``np.float32``)."""
    if not isinstance(dtype, str):
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            raise TypeError(f"simulate: dtype must be one of {DTYPES} or a float dtype, got {dtype!r}") from None
    if dtype not in DTYPES:
        raise ValueError(f"simulate: dtype must be one of {DTYPES}, got {dtype!r}")
    return dtype


def simulate(
    family: AbstractFamily,
    regime: AbstractRegime | None = None,
    *,
    synthesis: Synthesis | None = None,
    n: int,
    generations: int,
    chains: int,
    seed: int | jax.Array = 0,
    keep: Literal["chains", "summary", "auto"] = "auto",
    keep_chains: int = 1000,
    max_memory: int | str = "4GB",
    dtype: Literal["float32", "float64"] | type | np.dtype = "float32",
    progress: bool | None | type | Callable[[int, int], Any] = None,
    callback: Callable[[dict], Any] | None = None,
    metrics: list[str] | tuple[str, ...] | None = None,
    thresholds: dict[str, Any] | None = None,
    sweep: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: float = 60.0,
    devices: int | None = None,
    prng: Literal["threefry", "philox", "threefry2x32", "philox4x32"] = "threefry",
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
        seed: root seed, an int in [0, 2**64) (all of its bits reach the root key:
            ``seed`` and ``seed + 2**32`` are different runs), or a threefry key
            (``jax.random.key(...)``, or raw ``jax.random.PRNGKey`` data), which
            becomes the root key itself, so seeds can be derived with
            ``jax.random.split`` / ``fold_in``; the result records it as the int
            ``hi * 2**32 + lo`` of its key data (``jax.random.key(7)`` is seed 7).
            Other PRNG implementations (rbg) are refused. Chain c's draws
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
        dtype: ``"float32"`` (default) or ``"float64"``; ``jnp.float64`` /
            ``np.float32`` (a dtype) are accepted too.
        progress: show a progress line (rate, ETA; the rate is measured after
            compilation); ``None`` shows it only for runs that take longer than a
            few seconds, as a widget in Jupyter (tqdm). A tqdm-like class
            (``tqdm.auto.tqdm``) draws its bar; any other callable is called as
            ``fn(done, total)`` in chain-generations.
        callback: ``fn(partial)`` called after every finished block of generations
            with the partial summary so far (per metric the mean over every chain
            finished through those generations; see
            :class:`~collapse_jax.engine.host.LiveSummary`): live curves for W&B,
            MLflow or TensorBoard with no dependency here (docs/ARCHITECTURE.md,
            "Hooks"). Errors it raises are logged; the run goes on.
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
            (Philox-4x32-10; JAX's implementation names ``"threefry2x32"`` and
            ``"philox4x32"`` are accepted too): the counter-based hash behind every stream. Philox
            is an independent cross-check of a result (a different hash, the same
            key tree): agreement within Monte Carlo error says the result does not
            hang on the generator. It is 5 to 10 times slower on CPU.
        shards: under several processes, a folder shared by all: process p of P
            runs chunks p, p + P, ..., writes its shard there. Under
            ``jax.distributed`` it waits at a barrier for the others (or polls, at
            most ``shard_timeout`` seconds, where the backend has no barrier) and
            returns the merged result. ``cj.merge_shards`` merges a folder later.
            Independent processes with no coordinator: :func:`simulate_shard`.
        devices: how many local devices share each chunk's chain axis (default
            all): per-chain arrays, counts and event generations as on one device,
            floats to last-bit rounding (README, "Long runs").

    Returns:
        A :class:`collapse_jax.Result`.

    Examples:
        >>> import collapse_jax as cj
        >>> res = cj.simulate(cj.Gaussian(), cj.Replace(), n=20, generations=10, chains=500, seed=0,
        ...                   progress=False)
        >>> res.metrics["variance"].shape
        (500, 11)
        >>> bool(abs(res.mean("variance")[10] - cj.theory.variance_mean(10, 20, "mle")) < 4 * res.se("variance")[10])
        True
        >>> sw = cj.simulate(cj.Gaussian(), cj.FreshMix(0.2), n=20, generations=10, chains=500,
        ...                  sweep={"real_fraction": [0.1, 0.5]}, progress=False)
        >>> sw.to_xarray().sel(real_fraction=0.5)["variance"].dims
        ('chain', 'generation')
    """
    res = _simulate(dict(locals()), None)
    assert res is not None  # only an independent process's shard (simulate_shard) returns None
    return res


def simulate_shard(
    family: AbstractFamily,
    regime: AbstractRegime | None = None,
    *,
    process: tuple[int, int] | str,
    shards: str | os.PathLike,
    chunk_size: int,
    **options: Any,
) -> Result | None:
    """Process p of P's share of a run, for independent processes with no
    coordinator (batch jobs, a SLURM job array).

    Process p runs chunks p, p + P, ... of the global chain ids and writes its shard
    into ``shards``. It returns ``None``, unless every shard is in the folder when it
    is done: that process merges them and returns the result. ``cj.merge_shards``
    joins a complete folder at any time. Merged, the result equals one process's run
    of the same call (per-chain arrays exactly; summaries to the order of
    summation). Under ``jax.distributed`` use :func:`simulate` with ``shards=``.

    Args:
        family, regime: as :func:`simulate`.
        process: ``(p, P)`` with 0 <= p < P, or ``"slurm"``: a SLURM job array's
            task (``SLURM_ARRAY_TASK_ID`` minus ``SLURM_ARRAY_TASK_MIN``) of
            ``SLURM_ARRAY_TASK_COUNT``.
        shards: a folder every process can write.
        chunk_size: chains per chunk, the same for every process (the processes
            must cut the chains alike, whatever machine each runs on).
        **options: every other :func:`simulate` keyword (``n``, ``generations``,
            ``chains``, ``seed``, ``keep``, ...).

    Returns:
        The merged :class:`collapse_jax.Result`, or ``None`` while shards are missing.
    """
    import inspect

    bound = inspect.signature(simulate).bind(family, regime, shards=shards, chunk_size=chunk_size, **options)
    bound.apply_defaults()
    return _simulate(dict(bound.arguments), process)


def _simulate(args: dict[str, Any], process) -> Result | None:
    """``simulate``'s body (``args``: its arguments by name); ``process``: independent
    processes' ``(p, P)``, ``"slurm"`` or ``None``."""
    started, clock = time.time(), time.monotonic()
    family, regime, synthesis = args["family"], args["regime"], args["synthesis"]
    n, generations, chains, seed = args["n"], args["generations"], args["chains"], args["seed"]
    keep, keep_chains, max_memory, dtype = args["keep"], args["keep_chains"], args["max_memory"], args["dtype"]
    progress, callback, metrics, thresholds = args["progress"], args["callback"], args["metrics"], args["thresholds"]
    sweep, chunk_size, checkpoint = args["sweep"], args["chunk_size"], args["checkpoint"]
    checkpoint_every, devices, prng = args["checkpoint_every"], args["devices"], args["prng"]
    shards, shard_timeout = args["shards"], args["shard_timeout"]
    chains = check_int("chains", chains, 1)
    seed = check_seed("seed", seed)
    keep_chains = check_int("keep_chains", keep_chains, 0)
    if keep not in KEEP_MODES:
        raise ValueError(f"simulate: keep must be one of {KEEP_MODES}, got {keep!r}")
    dtype_name = _dtype_name(dtype)
    budget = parse_memory(max_memory)
    family, regime, synthesis, n, generations = prepare_model("simulate", family, regime, synthesis, n, generations)
    exact = family.is_exact
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, 1)
    check_progress(progress)
    if callback is not None and not callable(callback):
        raise TypeError(f"simulate: callback must be a callable fn(partial_summary), got {callback!r}")
    prng_name = PRNG_ALIASES.get(prng, prng) if isinstance(prng, str) else prng
    if prng_name not in _rng.PRNGS:
        raise ValueError(f"simulate: prng must be one of {_rng.PRNGS} (or {tuple(PRNG_ALIASES)}), got {prng!r}")
    proc = _shards.resolve_process(process)
    if proc is not None and jax.process_count() > 1:
        raise ValueError("simulate_shard is for independent processes; under jax.distributed use simulate(shards=...)")
    if proc is not None and chunk_size is None:
        raise ValueError(
            "simulate_shard: chunk_size must be an int: every process must cut the chains into the same chunks"
        )
    if proc is not None and proc[1] > 1:
        checkpoint = _shards.prepare(shards, checkpoint, proc[0], proc[1], "process=")
    elif jax.process_count() > 1:
        checkpoint = _shards.prepare(shards, checkpoint, jax.process_index(), jax.process_count(), "jax.distributed")
    ckpt = _checkpoint.Checkpointer(checkpoint, checkpoint_every) if checkpoint is not None else None

    chosen = choose_metrics("simulate", (family, regime, synthesis), metrics)
    thr = []
    for name, vals in (thresholds or {}).items():
        if name not in chosen:
            raise ValueError(
                f"simulate: thresholds names metric {name!r}, which is not computed; computed: {list(chosen)}"
            )
        for c in np.atleast_1d(as_float_array("simulate", f"thresholds[{name!r}]", vals, limit=math.inf)):
            thr.append((name, float(c)))

    fields, values, coords, axes = resolve_sweep((family, regime, synthesis), sweep)

    ctx_x64 = jax.enable_x64(True) if dtype_name == "float64" else contextlib.nullcontext()
    with ctx_x64:
        jdtype = jnp.dtype(dtype_name)
        spec = RunSpec(
            family=_cast(family, jdtype),
            regime=_cast(regime, jdtype),
            synthesis=_cast(synthesis, jdtype),
            values=tuple(jnp.asarray(v, jdtype) for v in values),
            coords=coords,
            axes=axes,
            callback=callback,
            process=proc if proc is not None and proc[1] > 1 else None,
            fields=fields,
            metrics=chosen,
            thresholds=tuple(thr),
            n=n,
            generations=generations,
            chains=chains,
            seed=seed,
            keep=keep,
            keep_chains=keep_chains,
            budget=budget,
            dtype=dtype_name,
            progress=progress,
            chunk_size=chunk_size,
            exact=exact,
            checkpoint=ckpt,
            devices=devices,
            prng=prng_name,
            shards=shards,
            shard_timeout=float(shard_timeout),
        )
        res = run(spec)
    if res is not None:  # None: an independent process whose shard is written, others still running
        res.info.update(provenance(started, time.monotonic() - clock, budget))
    return res


def _cast(tree, dtype):
    return jax.tree.map(
        lambda x: x.astype(dtype) if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )
