"""The ``collapse-jax`` command line: run, rerun, demo, figures, info."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REGIMES = ("replace", "accumulate", "accumulate_subsample", "accumulate_mix", "freshmix", "weighted", "retain_original")
# regime flags and the regimes they apply to
REGIME_FLAGS = {
    "real_fraction": ("freshmix", "accumulate_mix"),
    "fraction": ("retain_original",),
    "real_weight": ("weighted",),
    "ratio": ("weighted",),
    "combine": ("weighted",),
}
MODEL_FLAGS = ("family", "dim", "estimator", "sampler", "known_cov", "regime", *REGIME_FLAGS)
# simulate options: flag -> (simulate keyword, default without --config)
OPTION_FLAGS = {
    "n": 100,
    "generations": 100,
    "chains": 10_000,
    "seed": 0,
    "keep": "auto",
    "dtype": "float32",
    "max_memory": "4GB",
}
RUN_DEFAULTS = {
    "family": "gaussian",
    "dim": 1,
    "estimator": "mle",
    "sampler": "samples",
    "known_cov": False,
    "regime": "replace",
    "real_fraction": 0.5,
    "fraction": 0.1,
    "real_weight": 0.5,
    "ratio": 1.0,
    "combine": None,
}


def _regime_name(text: str) -> str:
    """argparse type of --regime: case and hyphens do not matter (accumulate-mix)."""
    return text.replace("-", "_").lower()


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _given(args, names) -> list[str]:
    """The flags among ``names`` given on the command line (their parsed value is not None)."""
    return [n for n in names if getattr(args, n, None) is not None]


def _family(args):
    from .families import Gaussian

    return Gaussian(dim=args.dim, estimator=args.estimator, learn_cov=not args.known_cov, sampler=args.sampler)


def _regime(args):
    from . import regimes as R

    name = args.regime
    if name == "freshmix":
        return R.FreshMix(args.real_fraction)
    if name == "accumulate_mix":
        return R.AccumulateMix(args.real_fraction)
    if name == "retain_original":
        return R.RetainOriginal(args.fraction)
    if name == "weighted":
        return R.Weighted(args.real_weight, ratio=args.ratio, combine=args.combine)
    return R.REGIMES[name]()


def _study(args):
    """The simulate call the run command's flags (or ``--config``) describe; a flag
    that does not apply is refused, never ignored."""
    from .config import from_config

    options = {k: getattr(args, k) for k in _given(args, OPTION_FLAGS)}
    options["progress"] = False if args.quiet else None
    if args.config is not None:
        clash = _given(args, MODEL_FLAGS)
        if clash:
            raise ValueError(
                f"{', '.join(map(_flag, clash))} cannot be combined with --config: the configuration file describes "
                "the model (simulate options such as --chains or --seed override it)"
            )
        return from_config(args.config, **options)
    if args.regime is not None and args.regime not in REGIMES:
        raise ValueError(f"--regime must be one of {list(REGIMES)}, got {args.regime!r}")
    regime = args.regime or RUN_DEFAULTS["regime"]
    wrong = [f for f in _given(args, REGIME_FLAGS) if regime not in REGIME_FLAGS[f]]
    if wrong:
        uses = "; ".join(f"{_flag(f)} applies to --regime {' or '.join(REGIME_FLAGS[f])}" for f in wrong)
        raise ValueError(f"{', '.join(map(_flag, wrong))} does not apply to --regime {regime} ({uses})")
    for k, v in RUN_DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    for k, v in OPTION_FLAGS.items():
        options.setdefault(k, v)
    import functools

    from .engine.simulate import simulate

    return functools.partial(simulate, _family(args), _regime(args), **options)


def _save(res, nc, force: bool) -> Path | None:
    """Save ``res`` to ``nc``; if that fails, to a fresh temporary folder (the computed
    result is never lost). The path written, or None."""
    try:
        return res.save(nc, overwrite=force)
    except OSError as e:
        import tempfile

        rescue = Path(tempfile.mkdtemp(prefix="collapse_jax-run-")) / "result.nc"
        print(f"collapse-jax: the result could not be saved to {str(nc)!r}: {e}", file=sys.stderr)
        try:
            res.save(rescue)
            print(f"collapse-jax: saved it to {str(rescue)!r} instead", file=sys.stderr)
        except OSError as e2:
            print(f"collapse-jax: it could not be saved to {str(rescue)!r} either: {e2}", file=sys.stderr)
        return None


def _target(out: str, force: bool):
    """(netCDF path, CSV path) in ``out``, checked writable and free before anything runs."""
    from ._files import check_writable
    from .results import result_paths

    nc, csv = result_paths(Path(out) / "result.nc")
    check_writable(nc.parent, "--out")
    existing = [str(p) for p in (nc, csv) if p.exists()]
    if existing and not force:
        raise ValueError(f"--out: {existing[0]!r} exists; pass --force to replace it, or choose another --out")
    return nc, csv


def _report(res, path, quiet: bool) -> None:
    if quiet:
        return
    table = res.summary()
    last = table[table.generation == res.generations]
    cols = ["metric", "mean", "se", "q05", "q50", "q95", "n_finite", "n_nonfinite"]
    if "sweep_index" in last:
        cols = ["sweep_index", *cols]
    print(f"{res}\nGeneration {res.generations}:")
    print(last[[c for c in cols if c in last]].to_string(index=False))
    print(f"\nwrote {path} and {path.with_suffix('.csv')}")


def cmd_run(args) -> int:
    try:
        # where the result goes is checked before anything runs: a long run never ends in a traceback
        nc, _ = _target(args.out, args.force)
        call = _study(args)
        res = call()
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"collapse-jax run: {e}", file=sys.stderr)
        return 2
    path = _save(res, nc, args.force)
    if path is None:
        return 1
    _report(res, path, args.quiet)
    return 0


def cmd_rerun(args) -> int:
    """Rerun a saved result from its own configuration; ``--check`` compares."""
    import numpy as np

    from .results import load

    try:
        old = load(args.result)
        nc, _ = _target(args.out, args.force) if args.out else (None, None)
        res = old.rerun(progress=False if args.quiet else None)
    except (ValueError, TypeError, FileNotFoundError, OSError) as e:
        print(f"collapse-jax rerun: {e}", file=sys.stderr)
        return 2
    if nc is not None:
        path = _save(res, nc, args.force)
        if path is None:
            return 1
        _report(res, path, args.quiet)
    if not args.check:
        return 0
    groups = (("metric", old.metrics, res.metrics), ("diagnostic", old.diagnostics, res.diagnostics))
    differ = [
        f"{g} {k}"
        for g, a, b in groups
        for k in sorted(set(a) | set(b))
        if k not in a or k not in b or not np.array_equal(a[k], b[k], equal_nan=True)
    ]
    differ += [f"event {k}" for k in old.events if not np.array_equal(old.events[k], res.events.get(k))]
    if old.summary_stats is not None:
        if not old.summary().equals(res.summary()):
            differ.append("summary")
    if differ:
        print(f"collapse-jax rerun: DIFFERENT from {args.result}: {', '.join(differ)}", file=sys.stderr)
        return 1
    arrays = len(old.metrics) + len(old.diagnostics) + len(old.events)
    print(f"rerun of {args.result}: identical ({arrays} arrays{', and the summary' if old.is_summary else ''})")
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

    try:
        run_demo(
            args.out,
            n=args.n,
            generations=args.generations,
            chains=args.chains,
            seed=args.seed,
            progress=False if args.quiet else None,
            quiet=args.quiet,
        )
    except ModuleNotFoundError as e:  # the plot extra: said before any compute
        print(f"collapse-jax {e}", file=sys.stderr)
        return 2
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
    out = Path(args.out or ("runs/figures_smoke" if args.smoke else "paper_figs"))
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

    r = sub.add_parser(
        "run",
        help="run one study and save it (netCDF + CSV summary)",
        description="Run one study: a Gaussian family and a regime from flags, or any family, regime, synthesis "
        "and sweep from --config (TOML or JSON, shaped like Result.config; docs/ARCHITECTURE.md, 'Configurations'). "
        "A flag that does not apply to the chosen regime is refused.",
    )
    r.add_argument("--config", default=None, help="study file (.toml, .json, or a saved result .nc) instead of flags")
    r.add_argument("--family", default=None, choices=["gaussian"], help="model family (others: --config)")
    r.add_argument("--dim", type=int, default=None, help="dimension d of the Gaussian (default 1)")
    r.add_argument("--estimator", default=None, choices=["mle", "unbiased"], help="variance divisor n or n - 1")
    r.add_argument(
        "--sampler", default=None, choices=["samples", "exact"], help="draw points, or sufficient statistics exactly"
    )
    r.add_argument("--known-cov", action="store_const", const=True, default=None, help="known covariance: fit the mean")
    r.add_argument(
        "--regime", default=None, type=_regime_name, choices=REGIMES, help="how each generation's training set is built"
    )
    r.add_argument(
        "--real-fraction", type=float, default=None, help="freshmix, accumulate_mix: share of fresh real points"
    )
    r.add_argument("--fraction", type=float, default=None, help="retain_original: share of the original sample kept")
    r.add_argument("--real-weight", type=float, default=None, help="weighted: weight w of the real data")
    r.add_argument("--ratio", type=float, default=None, help="weighted: k = n_real / n_synthetic")
    r.add_argument(
        "--combine", default=None, choices=["estimates", "samples"], help="weighted: average estimates or samples"
    )
    r.add_argument("--n", type=int, default=None, help="points per generation (default 100)")
    r.add_argument("--generations", type=int, default=None, help="generations after the first fit (default 100)")
    r.add_argument("--chains", type=int, default=None, help="independent chains (default 10000)")
    r.add_argument("--seed", type=_seed, default=None, help="root seed, an int in [0, 2**64) (default 0)")
    r.add_argument(
        "--keep",
        default=None,
        choices=["auto", "chains", "summary"],
        help="keep every chain, or streamed moments and the first chains (default auto)",
    )
    r.add_argument(
        "--dtype", default=None, choices=["float32", "float64"], help="floating point type (default float32)"
    )
    r.add_argument("--max-memory", default=None, help="memory budget, e.g. 4GB or 512MiB (default 4GB)")
    r.add_argument("--out", default="runs/run", help="output folder (result.nc and result.csv)")
    r.add_argument("--force", action="store_true", help="replace an existing result in --out")
    r.add_argument("--quiet", action="store_true", help="no progress line and no table")
    r.set_defaults(func=cmd_run)

    rr = sub.add_parser("rerun", help="rerun a saved result from its own configuration")
    rr.add_argument("result", help="a saved result (.nc)")
    rr.add_argument("--out", default=None, help="folder to save the rerun in (default: not saved)")
    rr.add_argument("--check", action="store_true", help="compare with the saved result bit for bit (exit 1 if not)")
    rr.add_argument("--force", action="store_true", help="replace an existing result in --out")
    rr.add_argument("--quiet", action="store_true", help="no progress line and no table")
    rr.set_defaults(func=cmd_rerun)

    d = sub.add_parser(
        "demo", help="the README main job: variance vs generation beside theory (30-50 s on 2 CPU cores)"
    )
    d.add_argument("--out", default="runs/demo", help="output folder (figure, summary CSV)")
    d.add_argument("--n", type=int, default=20, help="points per generation")
    d.add_argument("--generations", type=int, default=100, help="generations after the first fit")
    d.add_argument("--chains", type=int, default=100_000, help="independent chains per study")
    d.add_argument("--seed", type=_seed, default=0, help="root seed, an int in [0, 2**64)")
    d.add_argument("--quiet", action="store_true", help="no progress line and no table")
    d.set_defaults(func=cmd_demo)

    f = sub.add_parser("figures", help="regenerate every figure of paper_figs/ (runs experiments/*.py)")
    f.add_argument("--smoke", action="store_true", help="each script's quick mode (a check, not the figures)")
    f.add_argument("--only", nargs="*", default=None, help="script names (default: all)")
    f.add_argument("--list", action="store_true", help="list the scripts and exit")
    f.add_argument("--experiments", default="experiments", help="folder of the study scripts")
    f.add_argument(
        "--out", default=None, help="output folder (default: paper_figs/, or runs/figures_smoke/ with --smoke)"
    )
    f.set_defaults(func=cmd_figures)

    i = sub.add_parser("info", help="versions, backend and devices")
    i.add_argument("--json", action="store_true", help="print as JSON")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
