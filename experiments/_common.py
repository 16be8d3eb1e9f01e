"""What every study script shares: its command line, its output folder, the Monte
Carlo mean with its standard error and what a smoke run reports."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

SMOKE_OUT = "runs/figures_smoke"  # a smoke run's default folder: never the gallery


def study_args(doc: str, argv, *, chains: tuple[int, int], generations: tuple[int, int]):
    """Parse ``--smoke --chains --generations --out --seed``. ``chains`` and
    ``generations`` are the (smoke, full) defaults; ``--out`` defaults to
    ``paper_figs`` for a full run and ``runs/figures_smoke`` for a smoke run.
    Returns (args, chains, generations, output folder (created), file tag: "_smoke" or "")."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="small and quick: checks the pipeline end to end")
    p.add_argument("--chains", type=int, default=None)
    p.add_argument("--generations", type=int, default=None)
    p.add_argument("--out", default=None, help=f"output folder (default: paper_figs, or {SMOKE_OUT} with --smoke)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    c = args.chains or chains[0 if args.smoke else 1]
    g = args.generations or generations[0 if args.smoke else 1]
    out = Path(args.out or (SMOKE_OUT if args.smoke else "paper_figs"))
    out.mkdir(parents=True, exist_ok=True)
    return args, c, g, out, "_smoke" if args.smoke else ""


def full_run_checks(args, chains: int, generations: int) -> bool:
    """Whether to print the study's comparisons with theory. A smoke run's sizes support
    no statistical verdict: it says so, and the script prints none."""
    if args.smoke:
        print(
            f"smoke run ({chains} chains, {generations} generations): a check that the pipeline runs end to end; "
            "its sizes support no comparison with theory, so the full run's checks are skipped"
        )
        return False
    return True


def mean_se(values, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo mean and its standard error over the chain axis (float64)."""
    x = np.asarray(values, np.float64)
    return x.mean(axis=axis), x.std(axis=axis, ddof=1) / math.sqrt(x.shape[axis])
