"""Selection: reward curation of the synthetic data (``cj.Synthesis(curate="luce", candidates=K,
reward=r)``: each kept point is one of K i.i.d. candidates, chosen with probability proportional
to exp(r(x)), Bradley-Terry / Luce). Two families, Replace, 10 generations, the one metric
``mean_reward`` (what the loop computes too), summary results, sample path (and the
Categorical's exact path at K = 4):

- Categorical over 10^3 categories (Zipf-like truth p_k ~ k^-1.1, one N(0, 1) reward per category
  drawn with a fixed seed), n = 10^3 draws per generation;
- Gaussian, d = 10 (truth N(0, I)), linear reward r(x) = b^T x (b drawn with a fixed seed,
  ||b|| ~ 1), n = 10^3.

For K = 4, collapse_jax against a per-chain NumPy loop doing the same work (for each chain and
generation: draw K n candidates from the current fit, choose one per slot by the Gumbel-max of the
reward, refit), in chain-generations per second; and, for K in (1, 2, 4, 8), the library's per-run
time t(K) / t(1). All timings in one process: one untimed call per contender (compiles; its result
feeds the sanity check), then interleaved rounds, medians; compile time reported apart; JSON
written atomically.

    python benchmarks/bench_selection.py          # full run (~3-4 min, 2 cores): benchmarks/results/selection.json
    python benchmarks/bench_selection.py --quick  # smoke test (~1 min): benchmarks/results/selection_quick.json
    python benchmarks/bench_selection.py --repeats 7 --loop-chains 64
    python benchmarks/bench_selection.py --n 100 --out benchmarks/results/selection_n100.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import contender_table, git_info, log, machine, timed, write_json_atomic

REPO = Path(__file__).resolve().parents[1]
SEED = 0
REWARD_SEED = 1
FAMILIES = ("categorical", "gaussian")

# --------------------------------------------------------------------------- configuration


@dataclasses.dataclass(frozen=True)
class Config:
    quick: bool
    categories: int = 1000
    zipf_exponent: float = 1.1
    dim: int = 10
    n: int = 1000
    generations: int = 10  # every contender: generation 0 (a fit to n real draws) + G curated refits
    candidates: tuple[int, ...] = (1, 2, 4, 8)
    headline_k: int = 4  # the K compared with the NumPy loop
    reward_scale: float = 1.0
    categorical_chains: int = 1024  # a multiple of the Categorical's CPU chunk (64)
    gaussian_chains: int = 256
    categorical_loop_chains: int = 64
    gaussian_loop_chains: int = 32
    repeats: int = 5


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        cfg = Config(
            quick=True,
            generations=2,
            candidates=(1, 4),
            categorical_chains=64,
            gaussian_chains=64,
            categorical_loop_chains=8,
            gaussian_loop_chains=4,
            repeats=2,
        )
    else:
        cfg = Config(quick=False)
    over = {
        k: v
        for k, v in {
            "repeats": args.repeats,
            "generations": args.generations,
            "n": args.n,
            "categorical_chains": args.categorical_chains,
            "gaussian_chains": args.gaussian_chains,
        }.items()
        if v is not None
    }
    if args.loop_chains is not None:
        over["categorical_loop_chains"] = over["gaussian_loop_chains"] = args.loop_chains
    cfg = dataclasses.replace(cfg, **over)
    if cfg.headline_k not in cfg.candidates or 1 not in cfg.candidates:
        raise SystemExit(f"candidates {cfg.candidates} must include 1 and {cfg.headline_k}")
    return cfg


def categorical_truth(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """(p, r): p_k ~ k^-s, and one N(0, 1) reward per category (fixed seed)."""
    w = np.arange(1, cfg.categories + 1, dtype=np.float64) ** -cfg.zipf_exponent
    r = np.random.default_rng(REWARD_SEED).standard_normal(cfg.categories)
    return w / w.sum(), r


def gaussian_reward(cfg: Config) -> np.ndarray:
    """Linear coefficients b (fixed seed), ||b|| ~ 1."""
    return np.random.default_rng(REWARD_SEED).standard_normal(cfg.dim) / math.sqrt(cfg.dim)


def one_blas_thread():
    """NumPy's BLAS limited to one thread (the loop's matrices are tiny; extra threads only spin
    on a shared machine). A no-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


# --------------------------------------------------------------------------- contenders


@dataclasses.dataclass
class Contender:
    name: str
    family: str
    k: int | None  # candidates (library contenders)
    description: str
    run: Callable[[], Any]  # returns a Result (library) or each chain's final mean reward (NumPy)
    work: int  # chain-generations per call
    params: dict[str, Any]
    times: list[float] = dataclasses.field(default_factory=list)
    first_call_s: float = float("nan")
    sanity: dict[str, Any] | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def library(self) -> bool:
        return self.k is not None


def library(cfg: Config, family: str, k: int, sampler: str = "samples") -> Contender:
    import collapse_jax as cj

    G = cfg.generations
    if family == "categorical":
        p, r = categorical_truth(cfg)
        fam = cj.Categorical(probs=p, sampler=sampler)
        reward = r
        chains = cfg.categorical_chains
        fam_text = f'cj.Categorical(probs=p, sampler="{sampler}")'
    else:
        fam = cj.Gaussian(dim=cfg.dim, sampler="samples")
        reward = gaussian_reward(cfg)
        chains = cfg.gaussian_chains
        fam_text = f'cj.Gaussian(dim={cfg.dim}, sampler="samples")'
    syn = cj.Synthesis(curate="luce", candidates=k, reward=reward, reward_scale=cfg.reward_scale)
    # the one metric the NumPy loop also computes (equal work: no entropy, tail masses, ... on either side)
    kw = dict(n=cfg.n, generations=G, chains=chains, seed=SEED, keep="summary", progress=False, synthesis=syn)
    kw["metrics"] = ["mean_reward"]

    def run():
        return cj.simulate(fam, cj.Replace(), **kw)

    return Contender(
        name=f"{family}_luce_k{k}" + ("_exact" if sampler == "exact" else ""),
        family=family,
        k=k,
        description=f"cj.simulate({fam_text}, cj.Replace(), n={cfg.n}, generations={G}, chains={chains}, "
        f'seed={SEED}, keep="summary", progress=False, synthesis=cj.Synthesis(curate="luce", candidates={k}, '
        f"reward=r, reward_scale={cfg.reward_scale:g}), metrics=['mean_reward']): float32",
        run=run,
        work=chains * (G + 1),
        params={"chains": chains, "generations": G, "candidates": k},
    )


def categorical_loop(cfg: Config) -> Contender:
    p0, r = categorical_truth(cfg)
    n, G, chains, K, C = cfg.n, cfg.generations, cfg.categorical_loop_chains, cfg.headline_k, cfg.categories
    scale = cfg.reward_scale
    slots = np.arange(n)

    def run():
        rng = np.random.default_rng(SEED)
        final = np.empty(chains)
        for c in range(chains):
            p = p0
            for g in range(G + 1):
                k = 1 if g == 0 else K  # generation 0 fits real (uncurated) draws from the truth
                cdf = np.cumsum(p)
                x = np.searchsorted(cdf, rng.random(k * n) * cdf[-1], side="right")
                np.minimum(x, C - 1, out=x)
                if k > 1:  # candidate i of slot j is x[i n + j]; Gumbel-max over i
                    logits = scale * r[x] + rng.gumbel(size=k * n)
                    x = x.reshape(k, n)[logits.reshape(k, n).argmax(axis=0), slots]
                p = np.bincount(x, minlength=C) / n
            final[c] = p @ r
        return final

    return Contender(
        name="categorical_numpy_loop",
        family="categorical",
        k=None,
        description=f"for chain: p = p0; for g in 0..G: draw (K = {K} if g > 0 else 1) x n categories by inversion "
        "(np.searchsorted on np.cumsum(p)), keep per slot the candidate of largest r[x] + Gumbel noise "
        "(rng.gumbel), p = np.bincount(x, minlength=C) / n  (NumPy float64, one chain and generation at a time)",
        run=run,
        work=chains * (G + 1),
        params={"chains": chains, "generations": G, "candidates": K},
    )


def gaussian_loop(cfg: Config) -> Contender:
    b = gaussian_reward(cfg)
    n, G, chains, K, d = cfg.n, cfg.generations, cfg.gaussian_loop_chains, cfg.headline_k, cfg.dim
    scale = cfg.reward_scale
    slots = np.arange(n)

    def run():
        rng = np.random.default_rng(SEED)
        final = np.empty(chains)
        with one_blas_thread():
            for c in range(chains):
                mu, chol = np.zeros(d), np.eye(d)
                for g in range(G + 1):
                    k = 1 if g == 0 else K  # generation 0 fits real (uncurated) draws from the truth
                    x = mu + rng.standard_normal((k * n, d)) @ chol.T
                    if k > 1:  # candidate i of slot j is x[i n + j]; Gumbel-max over i
                        logits = scale * (x @ b) + rng.gumbel(size=k * n)
                        x = x.reshape(k, n, d)[logits.reshape(k, n).argmax(axis=0), slots]
                    mu = x.mean(axis=0)
                    xc = x - mu
                    chol = np.linalg.cholesky(xc.T @ xc / n)  # MLE covariance
                final[c] = mu @ b
        return final

    return Contender(
        name="gaussian_numpy_loop",
        family="gaussian",
        k=None,
        description=f"for chain: mu, L = 0, I; for g in 0..G: x = mu + Z L^T with Z ~ N(0, I) of shape "
        f"((K = {K} if g > 0 else 1) n, {d}), keep per slot the candidate of largest b^T x + Gumbel noise "
        "(rng.gumbel), mu = mean, L = cholesky(MLE covariance)  (NumPy float64, one BLAS thread, one chain and "
        "generation at a time)",
        run=run,
        work=chains * (G + 1),
        params={"chains": chains, "generations": G, "candidates": K},
    )


# --------------------------------------------------------------------------- timing


def final_reward(result) -> dict[str, Any]:
    """Mean and standard error over chains of the final generation's mean reward (E_model r)."""
    if isinstance(result, np.ndarray):
        k = len(result)
        se = float(np.std(result, ddof=1) / math.sqrt(k)) if k > 1 else float("nan")
        return {"mean_reward_final": float(np.mean(result)), "mean_reward_se": se, "chains": k}
    s = result.summary("mean_reward").iloc[-1]
    return {"mean_reward_final": float(s["mean"]), "mean_reward_se": float(s["se"]), "chains": int(s["n_finite"])}


def measure(contenders: list[Contender], repeats: int) -> list[float]:
    """One untimed call each (compiles; feeds the sanity check), then ``repeats`` interleaved rounds,
    the order rotated every round. Returns the 1-minute load average after each round."""
    for c in contenders:
        log(f"warm-up  {c.name}")
        t0 = time.perf_counter()
        result = c.run()
        c.first_call_s = time.perf_counter() - t0
        c.sanity = final_reward(result)
    loads = []
    for r in range(repeats):
        k = r % len(contenders)
        for c in contenders[k:] + contenders[:k]:
            c.times.append(timed(c.run))
        loads.append(os.getloadavg()[0])
        log(f"round {r + 1}/{repeats}: " + ", ".join(f"{c.name} {c.times[-1]:.2f}s" for c in contenders))
    return loads


# --------------------------------------------------------------------------- report


LOOP_TARGET = 20.0  # library chain-generations/s over the NumPy loop's, at K = headline_k


def ratios(cfg: Config, by: dict[str, Contender]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    K = cfg.headline_k
    for fam in FAMILIES:
        lib, base = by[f"{fam}_luce_k{K}"], by[f"{fam}_numpy_loop"]
        value = (lib.work / lib.median) / (base.work / base.median)
        best = (lib.work / min(lib.times)) / (base.work / min(base.times))
        out[f"{fam}_luce{K}_vs_loop"] = {
            "value": value,
            "value_of_minima": best,
            "numerator": lib.name,
            "denominator": base.name,
            "description": f"chain-generations/s of {lib.name} over {base.name} (medians; target: at least)",
            "target": LOOP_TARGET,
            "target_kind": "at_least",
            "met": value >= LOOP_TARGET,
        }
    exact = by.get(f"categorical_luce_k{K}_exact")
    if exact is not None:
        base = by["categorical_numpy_loop"]
        value = (exact.work / exact.median) / (base.work / base.median)
        out[f"categorical_exact_luce{K}_vs_loop"] = {
            "value": value,
            "value_of_minima": (exact.work / min(exact.times)) / (base.work / min(base.times)),
            "numerator": exact.name,
            "denominator": base.name,
            "description": f"chain-generations/s of {exact.name} (sampler='exact': the law of a curated "
            f"category, then a multinomial) over {base.name} (medians; target: at least)",
            "target": LOOP_TARGET,
            "target_kind": "at_least",
            "met": value >= LOOP_TARGET,
        }
    for fam in FAMILIES:
        one = by[f"{fam}_luce_k1"]
        for k in cfg.candidates:
            if k == 1:
                continue
            c = by[f"{fam}_luce_k{k}"]
            value = c.median / one.median
            out[f"{fam}_t_k{k}_over_t_k1"] = {
                "value": value,
                "value_of_minima": min(c.times) / min(one.times),
                "numerator": c.name,
                "denominator": one.name,
                "description": f"per-run time of {c.name} over {one.name} (medians, same chains; target: at most)",
                "target": float(k),
                "target_kind": "at_most",
                "met": value <= k,
            }
    return out


def sanity(cfg: Config, by: dict[str, Contender]) -> bool:
    """The library at K = headline_k against the NumPy loop: the final generation's mean reward
    (z with both standard errors; ok: |z| < 5). Every library contender also records whether its
    final mean reward rises with K."""
    ok = True
    for fam in FAMILIES:
        lib, base = by[f"{fam}_luce_k{cfg.headline_k}"], by[f"{fam}_numpy_loop"]
        s, ref = lib.sanity, base.sanity
        assert s is not None and ref is not None
        z = (s["mean_reward_final"] - ref["mean_reward_final"]) / math.hypot(s["mean_reward_se"], ref["mean_reward_se"])
        s["mean_reward_z_vs_numpy_loop"] = base.sanity["mean_reward_z_vs_library"] = z
        s["ok"] = base.sanity["ok"] = abs(z) < 5
        ok = ok and s["ok"]
        exact = by.get(f"{fam}_luce_k{cfg.headline_k}_exact")
        if exact is not None and exact.sanity is not None:
            e = exact.sanity
            gap = e["mean_reward_final"] - ref["mean_reward_final"]
            z = gap / math.hypot(e["mean_reward_se"], ref["mean_reward_se"])
            e["mean_reward_z_vs_numpy_loop"] = z
            e["ok"] = abs(z) < 5
            ok = ok and e["ok"]
        finals = [by[f"{fam}_luce_k{k}"].sanity["mean_reward_final"] for k in sorted(cfg.candidates)]
        for k in cfg.candidates:
            by[f"{fam}_luce_k{k}"].sanity["mean_reward_increases_with_k"] = all(
                a < b for a, b in zip(finals, finals[1:], strict=False)
            )
    return ok


def build_report(cfg: Config, contenders: list[Contender], loads: list[float], started: float, command: str):
    by = {c.name: c for c in contenders}
    sanity_ok = sanity(cfg, by)
    results = {}
    for c in contenders:
        entry = {
            "family": c.family,
            "description": c.description,
            "params": c.params,
            "chain_generations_per_call": c.work,
            "times_s": c.times,
            "median_s": c.median,
            "min_s": min(c.times),
            "chain_generations_per_s": c.work / c.median,
            "microseconds_per_chain_generation": 1e6 * c.median / c.work,
            "first_call_s": c.first_call_s,
            "sanity": c.sanity,
        }
        if c.library:
            # the first call compiles, then runs the same work as a timed call
            entry["compile_s"] = max(c.first_call_s - c.median, 0.0)
        else:
            # the loop's time for as many chains as the library's contenders run
            lib_chains = by[f"{c.family}_luce_k{cfg.headline_k}"].params["chains"]
            entry["extrapolated_s_at_library_chains"] = c.median / c.work * lib_chains * (cfg.generations + 1)
            entry["library_chains"] = lib_chains
        results[c.name] = entry
    rat = ratios(cfg, by)
    return {
        "benchmark": "selection_reward_curation",
        "created_unix": started,
        "wall_s": time.time() - started,
        "command": command,
        "machine": {**machine(), "loadavg_1min_per_round": loads, "git": git_info()},
        "config": {
            **dataclasses.asdict(cfg),
            "families": {
                "categorical": f"Categorical(probs=p), p_k ~ k^-{cfg.zipf_exponent} over {cfg.categories} categories; "
                f"reward r ~ N(0, 1) per category (numpy default_rng({REWARD_SEED}))",
                "gaussian": f"Gaussian(dim={cfg.dim}), truth N(0, I); reward r(x) = b^T x, b ~ N(0, I/{cfg.dim}) "
                f"(numpy default_rng({REWARD_SEED}))",
            },
            "regime": "Replace()",
            "synthesis": f'Synthesis(curate="luce", candidates=K, reward=r, reward_scale={cfg.reward_scale:g})',
            "seed": SEED,
            "throughput_unit": "chain-generations per second (a chain-generation: K n candidates, one choice per "
            "slot, one refit; generation 0: n real draws and a fit)",
        },
        "contenders": results,
        "chain_generations_per_s": {c.name: results[c.name]["chain_generations_per_s"] for c in contenders},
        "ratios": rat,
        "targets_met": {k: r["met"] for k, r in rat.items()},
        "sanity_ok": sanity_ok,
        "notes": [
            "Timings in one process: one untimed call per contender (compiles; its result feeds the sanity check), "
            "then interleaved rounds (order rotated each round); medians. compile_s = first call minus the median "
            "call (both run the same work); every K is its own compiled program (candidates is static).",
            "A chain-generation is a refit: generation 0 fits n real draws from the truth (no curation, in the "
            "library and in the loops alike), every later one fits n points, each chosen among K candidates drawn "
            "from the previous fit. Every contender runs generations + 1 of them per chain.",
            "The NumPy loops run fewer chains (they are per chain anyway): compare chain-generations per second; "
            "extrapolated_s_at_library_chains scales the loop's median to the library's chain count.",
            "t(K) / t(1) is the library's whole run (its one metric, mean_reward, the same for every K) at the same "
            "chains and generations: the fixed per-generation cost of the refit dilutes the candidates' cost.",
            "NumPy is float64 and single-threaded (one BLAS thread); XLA may use both cores. Other processes share "
            "this machine (loadavg_1min_per_round).",
            "sanity: the final generation's mean reward of the library at K = headline_k against the NumPy loop's "
            "(z with both standard errors; ok means |z| < 5); mean_reward_increases_with_k: the library's final "
            "mean reward rises strictly with K.",
        ],
    }


def markdown(report: dict[str, Any]) -> str:
    return "\n".join(contender_table(report, per_chain_generation=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small chain counts, K in (1, 4), few repeats (~1 min)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--generations", type=int, default=None)
    parser.add_argument("--n", type=int, default=None, help="points per generation (both families)")
    parser.add_argument("--categorical-chains", type=int, default=None)
    parser.add_argument("--gaussian-chains", type=int, default=None)
    parser.add_argument("--loop-chains", type=int, default=None, help="chains of both NumPy loops")
    args = parser.parse_args(argv)
    cfg = make_config(args)
    out = args.out or REPO / "benchmarks" / "results" / ("selection_quick.json" if cfg.quick else "selection.json")
    shown = [a.replace(str(REPO) + os.sep, "") for a in (sys.argv[1:] if argv is None else argv)]
    command = " ".join(["python", "benchmarks/bench_selection.py", *shown])

    started = time.time()
    contenders = [library(cfg, fam, k) for fam in FAMILIES for k in cfg.candidates]
    # the Categorical's exact path: Multinomial(n, q) from the exact law q of a curated category
    contenders.append(library(cfg, "categorical", cfg.headline_k, sampler="exact"))
    contenders += [categorical_loop(cfg), gaussian_loop(cfg)]
    loads = measure(contenders, cfg.repeats)
    report = build_report(cfg, contenders, loads, started, command)
    write_json_atomic(out, report)
    print(markdown(report))
    print(f"\nwrote {out} ({report['wall_s']:.0f} s; sanity {'ok' if report['sanity_ok'] else 'FAILED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
