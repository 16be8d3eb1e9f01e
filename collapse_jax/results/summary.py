"""Streamed per-generation moments over chains (summary mode): float64 totals merged
chunk by chunk in a fixed order."""

from __future__ import annotations

import numpy as np

from ..metrics import combine_moments


class SummaryAccumulator:
    """Streams per-chunk moments into float64 totals (count, mean, M2, M3, M4 by
    Pebay's pairwise formulas), in the fixed order chunks arrive."""

    def __init__(self, metrics, diagnostics, thresholds, generations, n_sweep):
        self.G, self.n_sweep = generations, n_sweep
        self.thresholds = thresholds
        self.data: dict[str, dict[str, dict[str, np.ndarray]]] = {"metrics": {}, "diagnostics": {}}
        self.nonfinite_params: np.ndarray | None = None
        self.below: dict[str, np.ndarray] = {}
        self.valid: np.ndarray | None = None

    def _slot(self, shape_tail):
        lead = (self.n_sweep,) if self.n_sweep else ()
        shape = lead + (self.G + 1,) + shape_tail
        return {
            "count": np.zeros(shape, np.int64),
            "nonfinite": np.zeros(shape, np.int64),
            "mean": np.zeros(shape),
            "m2": np.zeros(shape),
            "m3": np.zeros(shape),
            "m4": np.zeros(shape),
        }

    def _gen_axis_first(self, a, stacked):
        a = np.asarray(a)
        if not stacked:
            a = a[None]
        if self.n_sweep:
            a = np.moveaxis(a, 0, 1)  # (S, width, *extra)
        return a

    def add(self, out, g0, width, stacked):
        sl = (slice(None),) if self.n_sweep else ()
        gsl = sl + (slice(g0, g0 + width),)
        for group in ("metrics", "diagnostics"):
            for name, m in out[group].items():
                parts = {
                    k: self._gen_axis_first(m[k], stacked)
                    for k in ("count", "nonfinite", "mean", "scale", "m2", "m3", "m4")
                }
                parts = {k: v[(slice(None),) * len(sl) + (slice(0, width),)] for k, v in parts.items()}
                if name not in self.data[group]:
                    tail = parts["mean"].shape[len(sl) + 1 :]
                    self.data[group][name] = self._slot(tail)
                tot = self.data[group][name]
                a = {k: tot[k][gsl] for k in tot}
                b = {k: parts[k].astype(np.float64 if k not in ("count", "nonfinite") else np.int64) for k in parts}
                scale = b.pop("scale")
                for power, k in ((2, "m2"), (3, "m3"), (4, "m4")):
                    b[k] = b[k] * scale**power
                merged = combine_moments(a, b)
                for k in tot:
                    tot[k][gsl] = merged[k]
        nf = self._gen_axis_first(out["nonfinite"], stacked)[(slice(None),) * len(sl) + (slice(0, width),)]
        if self.nonfinite_params is None:
            self.nonfinite_params = np.zeros(((self.n_sweep,) if self.n_sweep else ()) + (self.G + 1,), np.int64)
        self.nonfinite_params[gsl] += nf
        for key, v in out["below"].items():
            v = self._gen_axis_first(v, stacked)[(slice(None),) * len(sl) + (slice(0, width),)]
            if key not in self.below:
                self.below[key] = np.zeros(
                    ((self.n_sweep,) if self.n_sweep else ()) + (self.G + 1,) + v.shape[len(sl) + 1 :], np.int64
                )
            self.below[key][gsl] += v

    def finish(self) -> dict:
        return {"groups": self.data, "nonfinite_params": self.nonfinite_params, "below": self.below}

    def state(self) -> dict:
        """What a checkpoint stores: the float64 totals so far (exact, so a resumed run
        continues the same sums in the same order)."""
        return {"data": self.data, "nonfinite_params": self.nonfinite_params, "below": self.below}

    def restore(self, state: dict) -> None:
        self.data = {g: {k: dict(v) for k, v in state["data"].get(g, {}).items()} for g in ("metrics", "diagnostics")}
        self.nonfinite_params = state["nonfinite_params"]
        self.below = dict(state["below"])
