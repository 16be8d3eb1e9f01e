"""What vmapping over chains can gain for the tiny neural fits on this device: one fit
(the Adam loop of ``fit``, nothing else) timed for one chain under ``jax.jit`` against
the same fit ``jax.vmap``-ed over B chains, per chain; and the device's rate on the
fits' dominant arithmetic, a chain of (100 x 61) @ (61 x 32) products with tanh
(the VAE encoder's first layer), for one chain and batched.

If one chain's fit already runs the device at the rate a batch reaches, batching has
nothing left to fill and the library's ratio over a jitted per-seed loop stays near 1
(``bench_learned.py``); on an accelerator a single small fit leaves the device idle
and the batch fills it. Medians of interleaved rounds, one process, after one
untimed (compiling) call per contender.

    python benchmarks/bench_learned_ceiling.py          # benchmarks/results/learned_ceiling.json (~2 min on 2 cores)
    python benchmarks/bench_learned_ceiling.py --quick  # learned_ceiling_quick.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import git_info, log, machine, write_json_atomic

REPO = Path(__file__).resolve().parents[1]
BATCHES = (16, 64, 256)
LINKS = 50  # products in the arithmetic chain


def _fits():
    import jax
    import jax.numpy as jnp

    import collapse_jax as cj
    from collapse_jax._rng import STREAM_SYNTH, Stream

    digits = cj.Empirical.load("digits")
    wine = cj.Empirical.load("wine", features=[0, 6])
    fams = {
        "vae": (cj.VAE(digits, latent=4, hidden=32, steps=100), digits.x[:100]),
        "density": (cj.NeuralDensity(wine, grid=24, hidden=(32, 32), steps=200), wine.x[:100]),
    }
    out = {}
    for name, (fam, x) in fams.items():

        def one(i, fam=fam, x=x):
            s = Stream(jnp.stack([jnp.uint32(0), i.astype(jnp.uint32)]), jnp.int32(1), STREAM_SYNTH)
            return fam.fit(s, x, None).loss

        out[name] = (jax.jit(one), jax.jit(jax.vmap(one)))
    return out


def _arithmetic():
    import jax
    import jax.numpy as jnp

    def chain(x, w):
        return jax.lax.scan(lambda c, _: (jnp.tanh(c @ w) @ w.T * 0.1, None), x, None, length=LINKS)[0]

    key = jax.random.key(0)
    single = (jax.random.normal(key, (100, 61)), jax.random.normal(key, (61, 32)))
    batched = (jax.random.normal(key, (256, 100, 61)), jax.random.normal(key, (256, 61, 32)))
    flops = 2 * 2 * 100 * 61 * 32 * LINKS
    return jax.jit(chain), jax.jit(jax.vmap(chain)), single, batched, flops


def _median_time(fn, args, rounds: int) -> float:
    fn(*args).block_until_ready()  # compile
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn(*args).block_until_ready()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="3 rounds (a check that the script runs)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds = 3
    if args.out is None:
        args.out = REPO / "benchmarks" / "results" / f"learned_ceiling{'_quick' if args.quick else ''}.json"
    import jax.numpy as jnp

    report: dict[str, Any] = {
        "benchmark": "learned_ceiling",
        "command": "python benchmarks/bench_learned_ceiling.py",
        "machine": machine(),
        "git": git_info(),
        "fits": {},
        "ratios": {},
    }
    t0 = time.perf_counter()
    single, batched, a1, ab, flops = _arithmetic()
    s1 = _median_time(single, a1, 20 * args.rounds)
    sb = _median_time(batched, ab, args.rounds) / 256
    report["ratios"]["arithmetic rate, batched / one chain"] = {"value": s1 / sb, "target": None}
    report["arithmetic"] = {
        "what": f"{LINKS} chained (100 x 61) @ (61 x 32) products with tanh, per chain",
        "gflops_one_chain": flops / s1 / 1e9,
        "gflops_batched_256": flops / sb / 1e9,
        "batched_over_one": s1 / sb,
    }
    log(f"arithmetic: {flops / s1 / 1e9:.1f} GFlop/s for one chain, {flops / sb / 1e9:.1f} batched (256)")
    for name, (one, many) in _fits().items():
        t_one = statistics.median(
            [_median_time(one, (jnp.int32(i),), 1) for i in range(args.rounds)]
        )  # a new seed each round
        row: dict[str, Any] = {"one_chain_s": t_one, "per_chain_s": {}, "speedup_per_chain": {}}
        for b in BATCHES:
            t_b = _median_time(many, (jnp.arange(b, dtype=jnp.int32),), args.rounds) / b
            row["per_chain_s"][str(b)] = t_b
            row["speedup_per_chain"][str(b)] = t_one / t_b
            log(f"{name}: one chain {t_one * 1e3:.1f} ms, vmapped over {b}: {t_b * 1e3:.1f} ms per chain")
        report["fits"][name] = row
        top = str(BATCHES[-1])
        report["ratios"][f"{name}: per-chain time, one chain / vmapped over {top}"] = {
            "value": row["speedup_per_chain"][top],
            "target": None,
        }
    report["wall_s"] = time.perf_counter() - t0
    write_json_atomic(args.out, report)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
