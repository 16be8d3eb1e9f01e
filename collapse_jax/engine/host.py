"""Collects chunk outputs on the host into the result's arrays, and the partial
summaries a long run hands to its ``callback``."""

from __future__ import annotations

import logging

import jax
import numpy as np

from ..results import Result


class HostArrays:
    """Collects chunk outputs on the host into the result's arrays."""

    def __init__(self, chains, G, n_sweep, summary, keep_chains):
        self.chains, self.G, self.n_sweep, self.summary = chains, G, n_sweep, summary
        self.keep_chains = min(keep_chains, chains) if summary else chains
        self.metrics: dict[str, np.ndarray] = {}
        self.diagnostics: dict[str, np.ndarray] = {}
        self.events: dict[str, np.ndarray] = {}
        self.nonfinite: np.ndarray | None = None

    def _store(self, dest: dict, name, arr, start, g0, width, stacked, limit):
        # arr: (width, [S,] C, *extra) if stacked else ([S,] C, *extra)
        a = np.asarray(arr)
        if not stacked:
            a = a[None]
        a = a[:width]
        s_ax = 1 if self.n_sweep else None
        c_ax = 2 if self.n_sweep else 1
        count = max(0, min(a.shape[c_ax], limit - start))
        if count == 0:
            return
        a = a[(slice(None),) * c_ax + (slice(0, count),)]  # a view; the assignment below copies once
        if self.n_sweep:
            a = np.moveaxis(a, 0, 2)  # (S, C, width, *extra)
        else:
            a = np.moveaxis(a, 0, 1)  # (C, width, *extra)
        if name not in dest:
            shape = ((self.n_sweep,) if s_ax else ()) + (limit, self.G + 1) + a.shape[(3 if s_ax else 2) :]
            dest[name] = np.zeros(shape, a.dtype)
        if self.n_sweep:
            dest[name][:, start : start + count, g0 : g0 + width] = a
        else:
            dest[name][start : start + count, g0 : g0 + width] = a

    def add(self, out, start, g0, width, cfg, acc, stacked=False):
        if not self.summary:
            met, diag, nf = out
            for k, v in met.items():
                self._store(self.metrics, k, v, start, g0, width, stacked, self.chains)
            for k, v in diag.items():
                self._store(self.diagnostics, k, v, start, g0, width, stacked, self.chains)
            tmp = {} if self.nonfinite is None else {"nf": self.nonfinite}
            self._store(tmp, "nf", nf, start, g0, width, stacked, self.chains)
            self.nonfinite = tmp["nf"]
            return
        out = jax.tree.map(np.asarray, out)
        acc.add(out, g0, width, stacked)
        for k, m in out["metrics"].items():
            self._store(self.metrics, k, m["kept"], start, g0, width, stacked, self.keep_chains)
        for k, m in out["diagnostics"].items():
            self._store(self.diagnostics, k, m["kept"], start, g0, width, stacked, self.keep_chains)

    def state(self) -> dict:
        """What a checkpoint stores (see collapse_jax._checkpoint)."""
        return {
            "metrics": self.metrics,
            "diagnostics": self.diagnostics,
            "events": self.events,
            "nonfinite": self.nonfinite,
        }

    def restore(self, state: dict) -> None:
        self.metrics = dict(state["metrics"])
        self.diagnostics = dict(state["diagnostics"])
        self.events = dict(state["events"])
        self.nonfinite = state["nonfinite"]

    def add_events(self, events, start, cfg):
        for k, v in events.items():
            a = np.asarray(v)
            c_ax = 1 if self.n_sweep else 0  # (sweep?, chains, *event dims)
            count = min(a.shape[c_ax], self.chains - start)
            if k not in self.events:
                shape = ((self.n_sweep,) if self.n_sweep else ()) + (self.chains,) + a.shape[c_ax + 1 :]
                self.events[k] = np.full(shape, -1, np.int32)
            if self.n_sweep:
                self.events[k][:, start : start + count] = a[:, :count]
            else:
                self.events[k][start : start + count] = a[:count]

    def result(self, config, dims, acc, coords, info) -> Result:
        """The run's :class:`Result` (``dims``: the extra dims of its metrics,
        diagnostics and events)."""
        return Result(
            config=config,
            metrics=self.metrics,
            diagnostics=self.diagnostics,
            events=self.events,
            nonfinite=self.nonfinite,
            summary_stats=acc.finish() if acc is not None else None,
            metric_dims=dims[0],
            diagnostic_dims=dims[1],
            event_dims=dims[2],
            sweep=coords,
            info=info,
        )


class LiveSummary:
    """Calls the run's ``callback`` after every finished block with the partial
    summary so far: per metric the mean over every chain finished through those
    generations, and their count (a dict; docs/ARCHITECTURE.md, "Hooks")::

        {"generations": array of g, "mean": {metric: ([sweep,] width, *extra)},
         "count": {...}, "chains_done": int, "chunk": i, "chunks": k,
         "done": chain-generations so far, "total": ..., "sweep": {key: values}}

    An exception raised by the callback is logged (the first with its traceback, the
    rest counted) and the run goes on: a dashboard's hiccup never costs the run."""

    def __init__(self, host: HostArrays, acc, metrics, callback, coords, prog, chunks: int):
        self.host, self.acc, self.metrics, self.callback = host, acc, metrics, callback
        self.coords, self.prog, self.chunks = coords, prog, chunks
        self.errors = 0

    def __call__(self, chunk: int, chains_done: int, g0: int, width: int) -> None:
        mean, count = {}, {}
        gen = slice(g0, g0 + width)
        lead = (slice(None),) if self.host.n_sweep else ()
        for name in self.metrics:
            if self.acc is not None:
                mom = self.acc.data["metrics"][name]
                cnt = mom["count"][lead + (gen,)]
                mean[name] = np.where(cnt > 0, mom["mean"][lead + (gen,)], np.nan)
                count[name] = cnt
                continue
            arr = self.host.metrics[name][lead + (slice(0, chains_done), gen)]
            axis = len(lead)
            fin = np.isfinite(arr)
            cnt = fin.sum(axis=axis)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean[name] = np.where(fin, arr, 0).sum(axis=axis, dtype=np.float64) / cnt
            count[name] = cnt
        payload = {
            "generations": np.arange(g0, g0 + width),
            "mean": mean,
            "count": count,
            "chains_done": chains_done,
            "chunk": chunk,
            "chunks": self.chunks,
            "done": self.prog.done,
            "total": self.prog.total,
            "sweep": self.coords,
        }
        try:
            self.callback(payload)
        except Exception:  # noqa: BLE001 - the user's code; the run must not be lost to it
            self.errors += 1
            log = logging.getLogger("collapse_jax")
            if self.errors == 1:
                log.exception("simulate: the callback raised; the run goes on (later errors are counted)")
            else:
                log.debug("simulate: the callback raised again (%d times so far)", self.errors)

    def close(self) -> None:
        if self.errors > 1:
            logging.getLogger("collapse_jax").warning("simulate: the callback raised %d times", self.errors)
