"""Speed benchmark: collapse_jax's Gaussian (d=1, Replace, MLE) against simpler ways to run the same chains.

Every contender runs the same recursion: ``generations + 1`` fits per chain (generation 0 fits the original
sample drawn from the truth N(0, 1); each later generation refits n points drawn from the previous fit). All
contenders are timed in ONE process, with their repeats interleaved round by round so that machine noise hits
them alike; ratios are taken between medians of the same run. See ``benchmarks/README.md``.

    python benchmarks/bench_gaussian.py            # full run, writes benchmarks/results/gaussian.json
    python benchmarks/bench_gaussian.py --quick    # smoke test (< 60 s), writes benchmarks/results/gaussian_quick.json
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _common import git_info, log, timed, write_json_atomic

import collapse_jax as cj

REPO = Path(__file__).resolve().parent.parent
SEED = 0


# --------------------------------------------------------------------------- configuration
@dataclasses.dataclass(frozen=True)
class Config:
    quick: bool
    n: int  # points per generation for the headline comparison
    n_large: int  # the sample path at this n is compared with the exact path
    exact_ns: tuple[int, ...]  # the exact path's cost must not depend on n
    generations: int
    chains: int
    loop_chains: int  # the per-chain Python loop runs on this many chains; its time is extrapolated to `chains`
    repeats: int  # timed repeats of every fast contender
    slow_repeats: int  # timed repeats of the sample path at n_large (10^9 normals per call in the full run)
    overhead_chains: int  # tiny exact run: what one simulate() call costs whatever the work

    @property
    def fits(self) -> int:
        """Fits per chain: generation 0 (fit to the real sample) plus one per generation."""
        return self.generations + 1

    @property
    def chain_generations(self) -> int:
        return self.chains * self.fits


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        cfg = Config(
            quick=True,
            n=100,
            n_large=1000,
            exact_ns=(100, 1000),  # every library configuration compiles once (2-6 s each): keep the smoke test short
            generations=20,
            chains=2000,
            loop_chains=20,
            repeats=3,
            slow_repeats=1,
            overhead_chains=64,
        )
    else:
        cfg = Config(
            quick=False,
            n=100,
            n_large=1000,
            exact_ns=(100, 1000, 10_000),
            generations=100,
            chains=10_000,
            loop_chains=200,
            repeats=9,
            slow_repeats=5,
            overhead_chains=64,
        )
    overrides = {k: v for k, v in (("repeats", args.repeats), ("slow_repeats", args.slow_repeats)) if v is not None}
    if args.loop_chains is not None:
        overrides["loop_chains"] = args.loop_chains
    return dataclasses.replace(cfg, **overrides)


# --------------------------------------------------------------------------- contenders
@dataclasses.dataclass
class Contender:
    """One timed callable. ``run`` does all its work and blocks until it is done; what it returns feeds
    ``check`` (called once, on the warm-up call, outside any timing)."""

    name: str
    description: str
    run: Callable[[], Any]
    repeats: int
    work: int  # chain-generations per call, after extrapolation
    params: dict[str, Any]
    scale: float = 1.0  # measured seconds -> reported seconds (the per-chain loop's extrapolation)
    check: Callable[[Any], dict[str, Any]] | None = None
    measured: list[float] = dataclasses.field(default_factory=list)
    sanity: dict[str, Any] | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def times(self) -> list[float]:
        return [t * self.scale for t in self.measured]

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def variance_check(values: np.ndarray, n: int, fits: int) -> dict[str, Any]:
    """Mean fitted variance after the last fit against theory: E[s^2] = ((n - 1) / n)^fits under MLE."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    se = float(values.std(ddof=1) / math.sqrt(values.size))
    return _check(mean, se, ((n - 1) / n) ** fits, int(values.size))


def _check(mean: float, se: float, theory: float, chains: int) -> dict[str, Any]:
    z = (mean - theory) / se if se > 0 else float("inf")
    return {"final_variance_mean": mean, "se": se, "theory": theory, "z": z, "chains": chains, "ok": abs(z) < 5}


def library_contender(
    name: str, cfg: Config, *, sampler: str, n: int, metrics: list[str] | None, repeats: int, chains: int | None = None
) -> Contender:
    chains = cfg.chains if chains is None else chains
    family = cj.Gaussian(dim=1, estimator="mle", sampler=sampler)
    regime = cj.Replace()

    def run() -> cj.Result:
        return cj.simulate(
            family,
            regime,
            n=n,
            generations=cfg.generations,
            chains=chains,
            seed=SEED,
            keep="summary",
            progress=False,
            metrics=metrics,
        )

    def check(res: cj.Result) -> dict[str, Any]:
        df = res.summary("variance")
        last = df[df["generation"] == cfg.generations].iloc[0]
        out = _check(float(last["mean"]), float(last["se"]), ((n - 1) / n) ** cfg.fits, chains)
        out["chunk_size"] = res.config["chunk_size"]
        return out

    label = "all default metrics" if metrics is None else f"metrics={metrics}"
    return Contender(
        name=name,
        description=f"cj.simulate, sampler={sampler!r}, keep='summary', {label} (float32)",
        run=run,
        repeats=repeats,
        work=chains * cfg.fits,
        params={"sampler": sampler, "n": n, "chains": chains, "generations": cfg.generations, "metrics": metrics},
        check=check,
    )


def rng_contender(cfg: Config) -> Contender:
    """The floor for any sample path: the same normals, in the same blocks, from plain jax.random.normal."""
    chains, n, fits = cfg.chains, cfg.n, cfg.fits

    @jax.jit
    def draw(key: jax.Array) -> jax.Array:
        def body(acc, t):
            x = jax.random.normal(jax.random.fold_in(key, t), (chains, n), jnp.float32)
            return acc + jnp.sum(x), None

        total, _ = jax.lax.scan(body, jnp.zeros((), jnp.float32), jnp.arange(fits, dtype=jnp.uint32))
        return total

    key = jax.random.key(SEED)
    return Contender(
        name="rng_limit",
        description=(
            f"jitted lax.scan over {fits} blocks, each jax.random.normal(fold_in(key, t), ({chains}, {n}), "
            "float32) summed: the raw cost of the normals alone"
        ),
        run=lambda: draw(key).block_until_ready(),
        repeats=cfg.repeats,
        work=cfg.chain_generations,
        params={"n": n, "chains": chains, "blocks": fits, "dtype": "float32"},
    )


def numpy_samples_contender(cfg: Config) -> Contender:
    """Vectorised over chains: one (chains, n) block of normals per generation, refitted along axis 1."""
    chains, n, fits = cfg.chains, cfg.n, cfg.fits
    rng = np.random.default_rng(SEED)
    buffer = np.empty((chains, n))

    def run() -> np.ndarray:
        x = buffer
        mu = np.zeros(chains)
        sd = np.ones(chains)
        for _ in range(fits):
            rng.standard_normal(out=x)
            x *= sd[:, None]
            x += mu[:, None]
            mu = x.mean(axis=1)
            sd = x.std(axis=1)  # MLE: divides by n
        return sd * sd

    return Contender(
        name="numpy_vectorised",
        description=(
            "NumPy default Generator, float64: per generation standard_normal into a preallocated (chains, n) "
            "block, scaled by sd and shifted by mean, then mean and std (ddof=0) over axis 1"
        ),
        run=run,
        repeats=cfg.repeats,
        work=cfg.chain_generations,
        params={"n": n, "chains": chains, "generations": cfg.generations, "dtype": "float64"},
        check=lambda var: variance_check(var, n, fits),
    )


def loop_contender(cfg: Config) -> Contender:
    """The way most papers' code runs it: one chain at a time, one generation at a time."""
    n, fits, sub = cfg.n, cfg.fits, cfg.loop_chains
    rng = np.random.default_rng(SEED)

    def run() -> np.ndarray:
        out = np.empty(sub)
        for c in range(sub):
            mu, sd = 0.0, 1.0
            for _ in range(fits):
                x = rng.normal(mu, sd, n)
                mu, sd = x.mean(), x.std()
            out[c] = sd * sd
        return out

    return Contender(
        name="python_loop",
        description=(
            f"for chain: for generation: x = rng.normal(mu, sd, n); mu, sd = x.mean(), x.std() (NumPy, float64), "
            f"timed on {sub} chains and extrapolated linearly to {cfg.chains}"
        ),
        run=run,
        repeats=cfg.repeats,
        work=cfg.chain_generations,
        params={"n": n, "chains_measured": sub, "chains_reported": cfg.chains, "generations": cfg.generations},
        scale=cfg.chains / sub,
        check=lambda var: variance_check(var, n, fits),
        extra={"extrapolated": True, "extrapolation_factor": cfg.chains / sub},
    )


def numpy_exact_contender(cfg: Config, n: int) -> Contender:
    """Vectorised exact law of the MLE fit: mean ~ N(mu, var / n), n * var' / var ~ chi2(n - 1)."""
    chains, fits = cfg.chains, cfg.fits
    rng = np.random.default_rng(SEED)
    inv_sqrt_n = 1.0 / math.sqrt(n)

    def run() -> np.ndarray:
        mu = np.zeros(chains)
        var = np.ones(chains)
        for _ in range(fits):
            mu += np.sqrt(var) * rng.standard_normal(chains) * inv_sqrt_n
            var *= rng.chisquare(n - 1, chains) / n
        return var

    return Contender(
        name=f"numpy_exact_n{n}",
        description=(
            "NumPy default Generator, float64: per generation mu += sd * standard_normal(chains) / sqrt(n); "
            "var *= chisquare(n - 1, chains) / n"
        ),
        run=run,
        repeats=cfg.repeats,
        work=cfg.chain_generations,
        params={"n": n, "chains": chains, "generations": cfg.generations, "dtype": "float64"},
        check=lambda var: variance_check(var, n, fits),
    )


def build_contenders(cfg: Config) -> list[Contender]:
    lib = library_contender
    out = [
        lib(f"sample_n{cfg.n}_all", cfg, sampler="samples", n=cfg.n, metrics=None, repeats=cfg.repeats),
        lib(f"sample_n{cfg.n}_variance", cfg, sampler="samples", n=cfg.n, metrics=["variance"], repeats=cfg.repeats),
        rng_contender(cfg),
        numpy_samples_contender(cfg),
        loop_contender(cfg),
        lib(
            f"sample_n{cfg.n_large}_all", cfg, sampler="samples", n=cfg.n_large, metrics=None, repeats=cfg.slow_repeats
        ),
        lib(
            f"sample_n{cfg.n_large}_variance",
            cfg,
            sampler="samples",
            n=cfg.n_large,
            metrics=["variance"],
            repeats=cfg.slow_repeats,
        ),
    ]
    for n in cfg.exact_ns:
        out.append(lib(f"exact_n{n}_all", cfg, sampler="exact", n=n, metrics=None, repeats=cfg.repeats))
        out.append(lib(f"exact_n{n}_variance", cfg, sampler="exact", n=n, metrics=["variance"], repeats=cfg.repeats))
        out.append(numpy_exact_contender(cfg, n))
    probe = lib(
        "exact_overhead_probe",
        cfg,
        sampler="exact",
        n=cfg.n,
        metrics=["variance"],
        repeats=cfg.repeats,
        chains=cfg.overhead_chains,
    )
    probe.description += f"; only {cfg.overhead_chains} chains: roughly the fixed cost of one simulate() call"
    out.append(probe)
    return out


# --------------------------------------------------------------------------- timing


def measure(contenders: list[Contender]) -> list[float]:
    """Warm every contender up (compiles; its result feeds the sanity check), then time them in interleaved
    rounds. A contender with fewer repeats is spread evenly over the rounds; the order rotates every round.
    Returns the 1-minute load average after each round (other processes competing for the cores show up there)."""
    for c in contenders:
        log(f"warm-up  {c.name}")
        t0 = time.perf_counter()
        result = c.run()
        c.extra["warmup_s"] = time.perf_counter() - t0
        if c.check is not None:
            c.sanity = c.check(result)
    rounds = max(c.repeats for c in contenders)
    loads = []
    for r in range(rounds):
        due = [c for c in contenders if len(c.measured) < math.ceil((r + 1) * c.repeats / rounds)]
        k = r % len(due)
        for c in due[k:] + due[:k]:
            c.measured.append(timed(c.run))
        loads.append(os.getloadavg()[0])
        log(f"round {r + 1}/{rounds}: timed {', '.join(c.name for c in due)}")
    return loads


# --------------------------------------------------------------------------- report
@dataclasses.dataclass(frozen=True)
class Ratio:
    name: str
    numerator: str  # the slower / reference contender
    denominator: str  # the library contender
    target: float | None
    description: str
    stretch: float | None = None


def ratio_specs(cfg: Config) -> list[Ratio]:
    big, n0 = cfg.n_large, cfg.n
    specs = [
        Ratio("sample_vs_rng", "rng_limit", f"sample_n{n0}_all", 0.8, f"t_rng / t_sample (n={n0}, all metrics)"),
        Ratio(
            "sample_vs_numpy", "numpy_vectorised", f"sample_n{n0}_all", 3.0, f"t_numpy / t_sample (n={n0}, all metrics)"
        ),
        Ratio("sample_vs_loop", "python_loop", f"sample_n{n0}_all", 25.0, "t_loop (extrapolated) / t_sample"),
        Ratio(
            f"exact_vs_sample_n{big}",
            f"sample_n{big}_all",
            f"exact_n{big}_all",
            50.0,
            f"t_sample / t_exact at n={big}, all metrics",
        ),
        Ratio(
            "exact_vs_numpy_exact",
            f"numpy_exact_n{n0}",
            f"exact_n{n0}_all",
            1.0,
            f"t_numpy_exact / t_exact at n={n0}, library computing all metrics",
            stretch=2.0,
        ),
        Ratio(
            "exact_vs_numpy_exact_variance",
            f"numpy_exact_n{n0}",
            f"exact_n{n0}_variance",
            1.0,
            f"t_numpy_exact / t_exact at n={n0}, library computing only the variance (like for like)",
            stretch=2.0,
        ),
        # informational: variance-only twins and the other n
        Ratio("sample_variance_vs_rng", "rng_limit", f"sample_n{n0}_variance", None, "t_rng / t_sample (variance)"),
        Ratio("sample_variance_vs_numpy", "numpy_vectorised", f"sample_n{n0}_variance", None, "variance-only twin"),
        Ratio("sample_variance_vs_loop", "python_loop", f"sample_n{n0}_variance", None, "variance-only twin"),
        Ratio(
            f"exact_vs_sample_n{big}_variance",
            f"sample_n{big}_variance",
            f"exact_n{big}_variance",
            None,
            "variance-only twin",
        ),
    ]
    for n in cfg.exact_ns:
        if n != n0:
            specs.append(
                Ratio(
                    f"exact_vs_numpy_exact_variance_n{n}",
                    f"numpy_exact_n{n}",
                    f"exact_n{n}_variance",
                    None,
                    f"t_numpy_exact / t_exact at n={n} (variance only)",
                )
            )
    return specs


def compute_ratios(cfg: Config, by_name: dict[str, Contender]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for spec in ratio_specs(cfg):
        num, den = by_name[spec.numerator], by_name[spec.denominator]
        value = num.median / den.median
        entry: dict[str, Any] = {
            "value": value,
            "value_of_minima": min(num.times) / min(den.times),
            "numerator": spec.numerator,
            "denominator": spec.denominator,
            "description": spec.description,
            "target": spec.target,
            "met": None if spec.target is None else value >= spec.target,
        }
        if spec.stretch is not None:
            entry["stretch"] = spec.stretch
            entry["stretch_met"] = value >= spec.stretch
        out[spec.name] = entry
    # the exact path's cost must not grow with n: slowest over fastest median across n (at most 1.25)
    for label in ("all", "variance"):
        medians = {n: by_name[f"exact_n{n}_{label}"].median for n in cfg.exact_ns}
        spread = max(medians.values()) / min(medians.values())
        out[f"exact_flat_in_n_{label}"] = {
            "value": spread,
            "medians_s": {str(n): t for n, t in medians.items()},
            "description": f"max / min median of the exact path ({label}) over n in {list(cfg.exact_ns)}",
            "target": 1.25,
            "direction": "at_most",
            "met": spread <= 1.25,
        }
    return out


def machine_info() -> dict[str, Any]:
    import jaxlib

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "collapse_jax": cj.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS"),
    }


def notes(cfg: Config) -> list[str]:
    return [
        "All contenders ran in one process; their timed repeats were interleaved round by round (order rotated "
        "every round) after one untimed warm-up call each, which also compiles. Ratios are between medians.",
        f"Work per call: {cfg.chains} chains x {cfg.fits} fits (generation 0 on the real sample plus "
        f"{cfg.generations} generations); throughput is chain-generations per second over those "
        f"{cfg.chain_generations} chain-generations. The raw-RNG limit draws {cfg.fits} blocks for the same reason.",
        "Library runs use keep='summary', progress=False, float32; their time is the whole cj.simulate() call "
        "(host-side setup and summary accumulation included, compilation excluded).",
        "NumPy baselines are float64 and single-threaded (NumPy's Generator has no threading); XLA may use every "
        f"core the machine has ({os.cpu_count()} here).",
        f"python_loop was timed on {cfg.loop_chains} chains and multiplied by {cfg.chains / cfg.loop_chains:g} "
        "(linear extrapolation: chains are independent and the loop does the same work per chain); "
        "times_s are extrapolated, measured_times_s are as measured.",
        "The NumPy exact baseline computes only the recursion (mean and variance). The library's all-metrics run "
        "also computes 10 metrics and their per-generation moments; exact_vs_numpy_exact_variance (library "
        "computing only the variance) is the like-for-like comparison.",
        "exact_overhead_probe runs the exact path on a handful of chains: it approximates the fixed cost of one "
        "simulate() call (tracing, setup, host transfers), independent of chains.",
        "sanity: mean fitted variance after the last fit against theory ((n-1)/n)^(generations+1) for every "
        "contender that fits; ok means |z| < 5.",
        "value_of_minima (ratio of the fastest repeats) is informational: when another process competes for the "
        "cores (see loadavg_1min_per_round), the multi-threaded XLA contenders slow down more than the "
        "single-threaded NumPy ones, and the minima approximate an idle machine. Targets are judged on medians.",
        "The library measured is the code imported when the run started (machine.git_at_start); git_at_end "
        "differing from it means the repository changed during the run.",
    ]


def build_report(cfg: Config, contenders: list[Contender], started: float, run_info: dict[str, Any]) -> dict[str, Any]:
    by_name = {c.name: c for c in contenders}
    results: dict[str, Any] = {}
    for c in contenders:
        entry: dict[str, Any] = {
            "description": c.description,
            "params": c.params,
            "repeats": len(c.measured),
            "times_s": c.times,
            "median_s": c.median,
            "min_s": min(c.times),
            "throughput": c.work / c.median,
            **c.extra,
        }
        if c.scale != 1.0:
            entry["measured_times_s"] = list(c.measured)
            entry["measured_median_s"] = statistics.median(c.measured)
        if c.sanity is not None:
            entry["sanity"] = c.sanity
        results[c.name] = entry
    return {
        "benchmark": "gaussian_d1_replace_mle",
        "created_unix": started,
        "wall_s": time.time() - started,
        "machine": {**machine_info(), **run_info},
        "config": {
            **dataclasses.asdict(cfg),
            "fits_per_chain": cfg.fits,
            "chain_generations": cfg.chain_generations,
            "family": "Gaussian(dim=1, estimator='mle')",
            "regime": "Replace()",
            "seed": SEED,
            "throughput_unit": "chain-generations per second",
        },
        "contenders": results,
        "ratios": compute_ratios(cfg, by_name),
        "sanity_ok": all(c.sanity["ok"] for c in contenders if c.sanity is not None),
        "notes": notes(cfg),
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| contender | median (s) | chain-gen/s | repeats |",
        "|---|---:|---:|---:|",
    ]
    for name, c in report["contenders"].items():
        star = " (extrapolated)" if c.get("extrapolated") else ""
        lines.append(f"| {name}{star} | {c['median_s']:.4f} | {c['throughput']:.3g} | {c['repeats']} |")
    lines += ["", "| ratio | value | target | met |", "|---|---:|---:|:---:|"]
    for name, r in report["ratios"].items():
        if r["target"] is None:
            target, met = "-", "-"
        else:
            sign = "<=" if r.get("direction") == "at_most" else ">="
            target = f"{sign} {r['target']:g}" + (f" (stretch {r['stretch']:g})" if "stretch" in r else "")
            met = "yes" if r["met"] else "NO"
            if r.get("stretch_met"):
                met += ", stretch yes"
        lines.append(f"| {name} | {r['value']:.3g} | {target} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats: a smoke test (< 60 s)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats of the fast contenders")
    parser.add_argument("--slow-repeats", type=int, default=None, help="timed repeats of the sample path at n_large")
    parser.add_argument("--loop-chains", type=int, default=None, help="chains the per-chain Python loop really runs")
    args = parser.parse_args(argv)
    cfg = make_config(args)
    if min(cfg.repeats, cfg.slow_repeats, cfg.loop_chains) < 1:
        parser.error("--repeats, --slow-repeats and --loop-chains must be >= 1")
    out = args.out or REPO / "benchmarks" / "results" / ("gaussian_quick.json" if cfg.quick else "gaussian.json")

    started = time.time()
    run_info: dict[str, Any] = {"git_at_start": git_info(), "loadavg_before": os.getloadavg()}
    contenders = build_contenders(cfg)
    run_info["loadavg_1min_per_round"] = measure(contenders)
    run_info["loadavg_after"] = os.getloadavg()
    run_info["git_at_end"] = git_info()
    if run_info["git_at_end"] != run_info["git_at_start"]:
        log("warning: the repository changed during the run; the library measured is the one imported at the start")
    report = build_report(cfg, contenders, started, run_info)
    write_json_atomic(out, report)
    print(markdown(report))
    print(f"\nwrote {out} ({report['wall_s']:.0f} s; sanity {'ok' if report['sanity_ok'] else 'FAILED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
