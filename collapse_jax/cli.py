"""The ``collapse-jax`` command line: run, demo, info."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _family(args):
    from .families import Gaussian

    if args.family != "gaussian":
        raise SystemExit(f"collapse-jax: --family must be one of ['gaussian'], got {args.family!r}")
    return Gaussian(dim=args.dim, estimator=args.estimator, learn_cov=not args.known_cov, sampler=args.sampler)


def _regime(args):
    from . import regimes as R

    name = args.regime.replace("-", "_").lower()
    if name not in R.REGIMES:
        raise SystemExit(f"collapse-jax: --regime must be one of {sorted(R.REGIMES)}, got {args.regime!r}")
    if name == "freshmix":
        return R.FreshMix(args.real_fraction)
    if name == "accumulate_mix":
        return R.AccumulateMix(args.real_fraction)
    if name == "retain_original":
        return R.RetainOriginal(args.fraction)
    if name == "weighted":
        return R.Weighted(args.real_weight, ratio=args.ratio, combine=args.combine)
    return R.REGIMES[name]()


def cmd_run(args) -> int:
    from ._files import check_writable
    from .engine.simulate import simulate
    from .results import result_paths

    try:
        # where the result goes is checked before anything runs: a long run never ends in a traceback
        nc, csv = result_paths(Path(args.out) / "result.nc")
        check_writable(nc.parent, "--out")
        existing = [str(p) for p in (nc, csv) if p.exists()]
        if existing and not args.force:
            raise ValueError(f"--out: {existing[0]!r} exists; pass --force to replace it, or choose another --out")
        fam, reg = _family(args), _regime(args)
        res = simulate(
            fam,
            reg,
            n=args.n,
            generations=args.generations,
            chains=args.chains,
            seed=args.seed,
            keep=args.keep,
            dtype=args.dtype,
            progress=False if args.quiet else None,
            max_memory=args.max_memory,
        )
    except (ValueError, TypeError) as e:
        print(f"collapse-jax run: {e}", file=sys.stderr)
        return 2
    try:
        path = res.save(nc, overwrite=args.force)
    except OSError as e:
        # the computed result is not lost: it goes to a fresh folder that can be written
        import tempfile

        rescue = Path(tempfile.mkdtemp(prefix="collapse_jax-run-")) / "result.nc"
        print(f"collapse-jax run: the result could not be saved to {str(nc)!r}: {e}", file=sys.stderr)
        try:
            res.save(rescue)
            print(f"collapse-jax run: saved it to {str(rescue)!r} instead", file=sys.stderr)
        except OSError as e2:
            print(f"collapse-jax run: it could not be saved to {str(rescue)!r} either: {e2}", file=sys.stderr)
        return 1
    table = res.summary()
    last = table[table.generation == res.generations]
    cols = ["metric", "mean", "se", "q05", "q50", "q95", "n_finite", "n_nonfinite"]
    if not args.quiet:
        print(f"{res}\nGeneration {res.generations}:")
        print(last[cols].to_string(index=False))
        print(f"\nwrote {path} and {path.with_suffix('.csv')}")
    return 0


def _seed(text: str) -> int:
    """argparse type of --seed: an int in [0, 2**64)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int in [0, 2**64), got {text!r}") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be an int in [0, 2**64), got {value}")
    return value


def cmd_demo(args) -> int:
    from ._demo import run_demo

    run_demo(
        args.out,
        n=args.n,
        generations=args.generations,
        chains=args.chains,
        seed=args.seed,
        progress=False if args.quiet else None,
        quiet=args.quiet,
    )
    return 0


def cmd_figures(args) -> int:
    """Run every study script in ``experiments/`` (full or --smoke), one process each,
    and write the per-script wall times to ``<out>/timings.json`` (atomically)."""
    import subprocess
    import time

    from .results import atomic_write

    folder = Path(args.experiments)
    scripts = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    if not scripts:
        print(f"collapse-jax figures: no study scripts in {folder} (run from the repository root, or pass "
              "--experiments <folder>)", file=sys.stderr)  # fmt: skip
        return 2
    names = [p.stem for p in scripts]
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        print(f"collapse-jax figures: unknown scripts {unknown}; available: {names}", file=sys.stderr)
        return 2
    chosen = [p for p in scripts if not args.only or p.stem in args.only]
    if args.list:
        print("\n".join(p.stem for p in chosen))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "timings_smoke.json" if args.smoke else "timings.json"
    timings, failed = {}, []
    if args.only and (out / name).exists():  # a partial rerun updates its scripts' entries in place
        try:
            timings = json.loads((out / name).read_text())
        except (OSError, ValueError):
            timings = {}
    for p in chosen:
        cmd = [sys.executable, str(p), "--out", str(out)] + (["--smoke"] if args.smoke else [])
        print(f"== {p.stem}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        t = time.perf_counter()
        rc = subprocess.run(cmd).returncode
        timings[p.stem] = {
            "wall_s": round(time.perf_counter() - t, 1),
            "returncode": rc,
            "smoke": args.smoke,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cpus": os.cpu_count(),
        }
        if rc != 0:
            failed.append(p.stem)
        # written after every script, so an interrupted regeneration keeps the finished times
        atomic_write(out / name, lambda tmp: Path(tmp).write_text(json.dumps(timings, indent=2) + "\n"))
    total = sum(timings[p.stem]["wall_s"] for p in chosen)
    print(
        f"ran {len(chosen)} scripts in {total:.0f} s; timings in {out / name}"
        + (f"; FAILED: {failed}" if failed else "")
    )
    return 1 if failed else 0


def cmd_info(args) -> int:
    from .results import run_info

    info = run_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:14s} {v}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="collapse-jax", description="Monte Carlo laboratory for model collapse (JAX)")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run one study and save it (netCDF + CSV summary)")
    r.add_argument("--family", default="gaussian")
    r.add_argument("--dim", type=int, default=1)
    r.add_argument("--estimator", default="mle", choices=["mle", "unbiased"])
    r.add_argument("--sampler", default="samples", choices=["samples", "exact"])
    r.add_argument("--known-cov", action="store_true", help="known covariance: refit only the mean")
    r.add_argument(
        "--regime",
        default="replace",
        help="replace | accumulate | accumulate_subsample | accumulate_mix | freshmix | weighted | retain_original",
    )
    r.add_argument(
        "--real-fraction", type=float, default=0.5, help="FreshMix, AccumulateMix: share of fresh real points"
    )
    r.add_argument("--fraction", type=float, default=0.1, help="RetainOriginal: share of the original sample kept")
    r.add_argument("--real-weight", type=float, default=0.5, help="Weighted: weight w of the real data")
    r.add_argument("--ratio", type=float, default=1.0, help="Weighted: k = n_real / n_synth")
    r.add_argument("--combine", default=None, choices=["estimates", "samples"])
    r.add_argument("--n", type=int, default=100, help="points per generation")
    r.add_argument("--generations", type=int, default=100)
    r.add_argument("--chains", type=int, default=10_000)
    r.add_argument("--seed", type=_seed, default=0, help="root seed, an int in [0, 2**64)")
    r.add_argument("--keep", default="auto", choices=["auto", "chains", "summary"])
    r.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    r.add_argument("--max-memory", default="4GB")
    r.add_argument("--out", default="runs/run", help="output folder (result.nc and result.csv)")
    r.add_argument("--force", action="store_true", help="replace an existing result in --out")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser(
        "demo", help="the README main job: variance vs generation beside theory (under a minute on 2 cores)"
    )
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--n", type=int, default=20)
    d.add_argument("--generations", type=int, default=100)
    d.add_argument("--chains", type=int, default=100_000)
    d.add_argument("--seed", type=_seed, default=0, help="root seed, an int in [0, 2**64)")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)

    f = sub.add_parser("figures", help="regenerate every figure of paper_figs/ (runs experiments/*.py)")
    f.add_argument("--smoke", action="store_true", help="each script's quick mode (a check, not the figures)")
    f.add_argument("--only", nargs="*", default=None, help="script names (default: all)")
    f.add_argument("--list", action="store_true", help="list the scripts and exit")
    f.add_argument("--experiments", default="experiments", help="folder of the study scripts")
    f.add_argument("--out", default="paper_figs")
    f.set_defaults(func=cmd_figures)

    i = sub.add_parser("info", help="versions, backend and devices")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
