"""What every study script shares: its command line, its output folder and the Monte
Carlo mean with its standard error."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np


def study_args(doc: str, argv, *, chains: tuple[int, int], generations: tuple[int, int]):
    """Parse ``--smoke --chains --generations --out --seed``. ``chains`` and
    ``generations`` are the (smoke, full) defaults. Returns (args, chains,
    generations, output folder (created), file tag: "_smoke" or "")."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="small and quick: checks the pipeline end to end")
    p.add_argument("--chains", type=int, default=None)
    p.add_argument("--generations", type=int, default=None)
    p.add_argument("--out", default="paper_figs")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    c = args.chains or chains[0 if args.smoke else 1]
    g = args.generations or generations[0 if args.smoke else 1]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return args, c, g, out, "_smoke" if args.smoke else ""


def mean_se(values, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo mean and its standard error over the chain axis (float64)."""
    x = np.asarray(values, np.float64)
    return x.mean(axis=axis), x.std(axis=axis, ddof=1) / math.sqrt(x.shape[axis])
