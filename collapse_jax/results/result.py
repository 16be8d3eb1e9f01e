"""The result object: per-chain arrays or streamed summaries, statistics over
chains, and one netCDF file per run (plus a tidy CSV summary)."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np

from .._files import atomic_write as atomic_write  # re-exported: the package's one atomic writer
from ..metrics import (
    QUANTILES,
    chain_quantiles,
    heavy_tail,
    moments_from_array,
    quantile_ci,
)
from .store import from_dataset, to_datatree


def _no_chains(mean: np.ndarray) -> np.ndarray:
    """An empty ``(0, generations + 1, *extra)`` array of kept chains (keep_chains=0),
    shaped after the streamed per-generation means."""
    return np.empty((0,) + np.shape(mean), np.float32)


class Result:
    """What :func:`collapse_jax.simulate` returns.

    Attributes:
        metrics: ``{name: array}`` of shape ``(chains, generations + 1, *extra)``
            (a leading ``sweep`` axis when a sweep ran). In summary mode only the
            kept chains 0..keep_chains-1 are here; the streamed moments over all
            chains are used by :meth:`summary`.
        diagnostics: fit diagnostics, same layout.
        events: first-passage generations, ``(chains, *extra)``, -1 = not reached.
        nonfinite: ``(chains, generations + 1)`` bool: the fitted parameters were
            NaN/inf (a genuine numerical failure). None in summary mode (counts are
            in the summary).
        config: the run's configuration (family, regime, sizes, seed, ...).
        sweep: ``{hyperparameter: values}`` along the sweep axis (empty if none).
        info: versions and platform.
    """

    def __init__(
        self,
        *,
        config,
        metrics,
        diagnostics,
        events,
        nonfinite,
        summary_stats,
        metric_dims,
        diagnostic_dims,
        event_dims,
        sweep,
        info,
    ):
        self.config = config
        self.metrics = metrics
        self.diagnostics = diagnostics
        self.events = events
        self.nonfinite = nonfinite
        self.summary_stats = summary_stats
        self.metric_dims = metric_dims
        self.diagnostic_dims = diagnostic_dims
        self.event_dims = event_dims
        self.sweep = {k: np.asarray(v) for k, v in sweep.items()}
        self.info = info

    # ---------------------------------------------------------------- basics
    @property
    def generations(self) -> int:
        return int(self.config["generations"])

    @property
    def chains(self) -> int:
        return int(self.config["chains"])

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def is_summary(self) -> bool:
        return self.config["keep"] == "summary"

    @property
    def n_sweep(self) -> int | None:
        return len(next(iter(self.sweep.values()))) if self.sweep else None

    def __repr__(self) -> str:
        fam = self.config["family"].get("family")
        reg = self.config["regime"].get("regime")
        sw = f", sweep={list(self.sweep)}" if self.sweep else ""
        return (
            f"Result({fam}, {reg}, n={self.config['n']}, generations={self.generations}, chains={self.chains}, "
            f"keep={self.config['keep']!r}{sw})"
        )

    def rerun(self, **overrides) -> Result:
        """Run this result's configuration again (:func:`collapse_jax.from_config`):
        the same seed, chunk size and options give the same numbers, bit for bit, on
        the same machine and versions. ``overrides`` replace simulate options
        (``progress=False``, ``chains=...``, ``checkpoint=...``). The memory budget
        of the original run is reused when it was recorded. A result of one sweep
        point (:meth:`sel`) reruns that point alone."""
        from ..config import from_config

        if "max_memory" in self.info and "max_memory" not in overrides:
            overrides["max_memory"] = self.info["max_memory"]
        res = from_config(self.config, **overrides)()
        return res.sel(0) if self.config.get("sweep_point") else res

    def sel(self, sweep: int) -> Result:
        """The result of one sweep point, as if it had been run alone."""
        n_sweep = self.n_sweep
        if n_sweep is None:  # no sweep
            raise ValueError("Result.sel: this result has no sweep axis")
        if not 0 <= sweep < n_sweep:
            raise ValueError(f"Result.sel: sweep must be in [0, {n_sweep}), got {sweep}")
        pick = lambda d: {k: v[sweep] for k, v in d.items()}  # noqa: E731
        stats = None
        if self.summary_stats is not None:
            st = self.summary_stats
            stats = {
                "groups": {g: {k: pick(v) for k, v in grp.items()} for g, grp in st["groups"].items()},
                "nonfinite_params": st["nonfinite_params"][sweep],
                "below": pick(st["below"]),
            }
        config = dict(self.config)
        config["sweep"] = {}
        config["sweep_axes"] = {}
        config["sweep_point"] = {k: float(v[sweep]) for k, v in self.sweep.items()}
        return Result(
            config=config,
            metrics=pick(self.metrics),
            diagnostics=pick(self.diagnostics),
            events=pick(self.events),
            nonfinite=None if self.nonfinite is None else self.nonfinite[sweep],
            summary_stats=stats,
            metric_dims=self.metric_dims,
            diagnostic_dims=self.diagnostic_dims,
            event_dims=self.event_dims,
            sweep={},
            info=self.info,
        )

    def _points(self):
        n_sweep = self.n_sweep  # None: no sweep
        return [(None, self)] if n_sweep is None else [(i, self.sel(i)) for i in range(n_sweep)]

    def _finite_chains(self) -> np.ndarray:
        if self.nonfinite is None:
            raise ValueError("finite_only needs per-chain arrays (keep='chains')")
        return ~self.nonfinite.any(axis=-1)

    # ---------------------------------------------------------------- summaries
    # ---------------------------------------------------------------- arrays per generation
    def moments(self, metric: str, *, diagnostic: bool = False) -> dict[str, np.ndarray]:
        """Count, mean and central sums (float64) of ``metric`` over every chain with a
        finite value, per generation: arrays of shape ``([sweep], generations + 1,
        *extra)``. In summary mode they are the streamed moments of all chains (not
        the kept ones). :meth:`mean`, :meth:`se` and :meth:`sd` read them."""
        group = self.diagnostics if diagnostic else self.metrics
        if self.is_summary:
            group = self.summary_stats["groups"]["diagnostics" if diagnostic else "metrics"]
        if metric not in group:
            kind = "diagnostic" if diagnostic else "metric"
            raise ValueError(f"Result: unknown {kind} {metric!r}; have {list(group)}")
        if self.is_summary:
            mom = self.summary_stats["groups"]["diagnostics" if diagnostic else "metrics"][metric]
            return {k: np.asarray(mom[k]) for k in ("count", "nonfinite", "mean", "m2", "m3", "m4")}
        arr = group[metric]
        if not self.sweep:
            return moments_from_array(arr)
        per = [moments_from_array(a) for a in arr]
        return {k: np.stack([m[k] for m in per]) for k in per[0]}

    def mean(self, metric: str, *, diagnostic: bool = False) -> np.ndarray:
        """Mean over chains per generation (finite values; every chain in summary mode)."""
        mom = self.moments(metric, diagnostic=diagnostic)
        return np.where(mom["count"] > 0, mom["mean"], np.nan)

    def sd(self, metric: str, *, diagnostic: bool = False) -> np.ndarray:
        """Standard deviation over chains per generation (n - 1 divisor)."""
        mom = self.moments(metric, diagnostic=diagnostic)
        cnt = mom["count"]
        return np.sqrt(np.where(cnt > 1, mom["m2"] / np.maximum(cnt - 1, 1), np.nan))

    def se(self, metric: str, *, diagnostic: bool = False) -> np.ndarray:
        """Monte Carlo standard error of :meth:`mean` per generation (sd / sqrt(count)).
        Check ``summary()['heavy_tail']`` before trusting it for heavy-tailed metrics."""
        cnt = self.moments(metric, diagnostic=diagnostic)["count"]
        return self.sd(metric, diagnostic=diagnostic) / np.sqrt(np.maximum(cnt, 1))

    def quantiles(self, metric: str, qs=QUANTILES) -> np.ndarray:
        """Quantiles ``qs`` over chains per generation, shape ``(len(qs), [sweep],
        generations + 1, *extra)``, from every chain (the kept chains in summary
        mode); NaN values are left out. :meth:`quantile` gives one with its
        confidence interval."""
        arr = np.asarray(self._metric_any(metric), np.float64)
        axis = 1 if self.sweep else 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN
            return np.nanquantile(arr, np.asarray(qs, np.float64), axis=axis)

    def _metric_any(self, metric: str) -> np.ndarray:
        if metric in self.metrics:
            return self.metrics[metric]
        if metric in self.diagnostics:
            return self.diagnostics[metric]
        raise ValueError(f"Result: unknown metric {metric!r}; have {list(self.metrics)}")

    def to_dataframe(self, *, long: bool = True, metrics=None):
        """The per-chain values as a tidy ``pandas.DataFrame``: one row per chain,
        generation and metric (columns ``chain``, ``generation``, ``metric``,
        ``value``, the sweep coordinates and any extra dims), as seaborn's
        ``relplot(x="generation", y="value", hue=..., col="metric")`` and
        parquet/W&B tables expect. ``long=False`` gives one column per metric instead
        (metrics with extra dims are left out there). Summary mode: the kept chains.
        For the per-generation summary use :meth:`summary`.

        Examples:
            >>> import collapse_jax as cj
            >>> res = cj.simulate(cj.Gaussian(), n=10, generations=2, chains=3, progress=False)
            >>> res.to_dataframe(metrics="variance").columns.tolist()
            ['chain', 'generation', 'metric', 'value']
            >>> len(res.to_dataframe(metrics="variance"))
            9
        """
        import pandas as pd

        ds = self.to_xarray()
        names = list(self.metrics) if metrics is None else ([metrics] if isinstance(metrics, str) else list(metrics))
        unknown = [m for m in names if m not in self.metrics]
        if unknown:
            raise ValueError(f"to_dataframe: unknown metrics {unknown}; have {list(self.metrics)}")
        cdim = "kept_chain" if self.is_summary else "chain"
        if not long:
            plain = [m for m in names if ds[m].ndim == ds[names[0]].ndim and not self.metric_dims.get(m)]
            frame = ds[plain].to_dataframe().reset_index()
            return frame.rename(columns={cdim: "chain"})
        frames = []
        for m in names:
            f = ds[m].to_dataframe(name="value").reset_index()
            f.insert(0, "metric", m)
            frames.append(f)
        frame = pd.concat(frames, ignore_index=True)
        frame = frame.rename(columns={cdim: "chain"})
        first = [c for c in (*self.sweep, "chain", "generation", "metric") if c in frame]
        return frame[first + [c for c in frame.columns if c not in first]]

    def summary(self, metrics=None, *, finite_only: bool = False, diagnostics: bool = False):
        """Per generation and metric: mean, standard error, quantiles (5, 25, 50, 75,
        95 %), finite and non-finite counts, and ``heavy_tail`` where the standard
        error is unreliable (the estimated kurtosis says a few chains carry the
        variance; see :func:`collapse_jax.metrics.heavy_tail`). Non-finite metric
        values (+inf KL of a collapsed fit, say) are counted, not averaged.

        In summary mode means and standard errors cover every chain and quantiles
        come from the kept chains (``quantile_chains`` says how many). Quantiles
        rank every chain, +-inf included (a q95 where more than 5 % of the chains
        are +inf is +inf); NaN values cannot be ranked and are left out, counted in
        ``quantile_nan``.

        Returns a tidy ``pandas.DataFrame`` (one row per metric and generation, plus
        sweep coordinates and extra dims).
        """
        import pandas as pd

        frames = []
        for idx, res in self._points():
            df = pd.DataFrame(res._summary_rows(metrics, finite_only, diagnostics))
            if idx is not None:
                for k, v in self.sweep.items():
                    df.insert(0, k, float(v[idx]))
            frames.append(df)
        return pd.concat(frames, ignore_index=True)

    def _summary_rows(self, metrics, finite_only, diagnostics) -> list[dict]:
        group = self.diagnostics if diagnostics else self.metrics
        dims = self.diagnostic_dims if diagnostics else self.metric_dims
        if self.is_summary:  # every streamed metric, kept chains or not (keep_chains=0 keeps none)
            streamed = self.summary_stats["groups"]["diagnostics" if diagnostics else "metrics"]
            group = {k: group.get(k, _no_chains(streamed[k]["mean"])) for k in streamed}
        names = list(group) if metrics is None else ([metrics] if isinstance(metrics, str) else list(metrics))
        for nm in names:
            if nm not in group:
                raise ValueError(
                    f"summary: unknown {'diagnostic' if diagnostics else 'metric'} {nm!r}; have {list(group)}"
                )
        rows = []
        for name in names:
            kept = group[name]
            extra_names = dims.get(name, ())
            if self.is_summary:
                if finite_only:
                    raise ValueError("summary(finite_only=True) needs keep='chains'")
                st = self.summary_stats["groups"]["diagnostics" if diagnostics else "metrics"][name]
                mom = st
            else:
                arr = kept
                if finite_only:
                    arr = arr[self._finite_chains()]
                mom = moments_from_array(arr)
            qs, qsrc, qnan = self._quantiles(
                kept if not (finite_only and not self.is_summary) else kept[self._finite_chains()]
            )
            shape_tail = mom["mean"].shape[1:]
            for g in range(self.generations + 1):
                for ex in np.ndindex(*shape_tail) if shape_tail else [()]:
                    key = (g,) + ex
                    cnt = int(mom["count"][key])
                    var = mom["m2"][key] / (cnt - 1) if cnt > 1 else math.nan
                    row = {"metric": name, "generation": g}
                    for dn, i in zip(extra_names or [f"dim_{j}" for j in range(len(ex))], ex):
                        row[dn] = i
                    row.update(
                        mean=float(mom["mean"][key]) if cnt else math.nan,
                        se=math.sqrt(var / cnt) if cnt > 1 else math.nan,
                        sd=math.sqrt(var) if cnt > 1 else math.nan,
                    )
                    for q, col in zip(QUANTILES, qs):
                        row[f"q{int(round(q * 100)):02d}"] = float(col[key])
                    row.update(
                        n_finite=cnt,
                        n_nonfinite=int(mom["nonfinite"][key]),
                        heavy_tail=bool(heavy_tail(cnt, mom["m2"][key], mom["m4"][key])),
                        quantile_chains=qsrc,
                        quantile_nan=int(qnan[key]),
                    )
                    rows.append(row)
        return rows

    def _quantiles(self, arr):
        """Quantiles over chains (+-inf ranked, NaN left out and counted)."""
        qs, n_nan = chain_quantiles(arr, QUANTILES)
        return qs, int(arr.shape[0]), n_nan

    def quantile(self, metric: str, q: float, *, level: float = 0.95):
        """Quantile ``q`` per generation with a distribution-free confidence interval
        from order statistics (binomial, normal approximation to its ranks), from
        all chains (or the kept chains in summary mode). Returns (estimate, lo, hi),
        each of shape ``(generations + 1, *extra)``.

        Every chain is ranked, +-inf included: where more than 1 - q of the chains
        are +inf the estimate is +inf, and a bound of the interval that reaches an
        infinite order statistic is that infinity. NaN values (a failed fit) cannot
        be ranked: they are left out and a ``RuntimeWarning`` says how many."""
        self._no_sweep("quantile")
        arr = self._metric(metric)
        nan = int(np.isnan(np.asarray(arr, dtype=np.float64)).any(axis=tuple(range(1, arr.ndim))).sum())
        if nan:
            warnings.warn(
                f"quantile: {nan} of {arr.shape[0]} chains have NaN {metric!r} at some generation; "
                "they are left out of the ranking there (summary() counts them per generation in 'quantile_nan')",
                RuntimeWarning,
                stacklevel=2,
            )
        return quantile_ci(arr, q, level)

    def prob_below(self, metric: str, threshold: float):
        """P(metric < threshold) per generation with its binomial standard error.

        Chains mode: from the arrays. Summary mode: from the counts streamed over
        all chains, which needs ``thresholds={metric: threshold}`` in simulate.
        Non-finite values count as not below (NaN) or per their sign (+-inf).
        Returns a DataFrame (generation, p, se, chains[, sweep coords]).
        """
        import pandas as pd

        frames = []
        for idx, res in self._points():
            if res.is_summary:
                key = f"{metric}<{float(threshold)!r}"
                below = res.summary_stats["below"]
                if key not in below:
                    raise ValueError(
                        f"prob_below: summary-mode results need thresholds={{{metric!r}: {threshold}}} "
                        "passed to simulate; "
                        f"streamed: {sorted(below)}"
                    )
                counts = below[key].astype(np.float64)
                total = float(res.chains)
            else:
                arr = res._metric(metric)
                counts = np.sum(arr < threshold, axis=0).astype(np.float64)
                total = float(arr.shape[0])
            p = counts / total
            df = pd.DataFrame(
                {
                    "generation": np.arange(res.generations + 1),
                    "p": p,
                    "se": np.sqrt(p * (1 - p) / total),
                    "chains": int(total),
                }
            )
            if idx is not None:
                for k, v in self.sweep.items():
                    df.insert(0, k, float(v[idx]))
            frames.append(df)
        return pd.concat(frames, ignore_index=True)

    def steady_state(self, metric: str, burn_in: int) -> dict:
        """Per-chain time average over generations ``burn_in..G``, then the mean and
        standard error across chains (chains are independent, so this standard error
        is honest even though generations within a chain are correlated). With a
        sweep, arrays over the sweep axis.

        Summary mode (no per-chain trajectories beyond the kept ones): the mean is
        the average of the per-generation means over *every* chain (the same number,
        by linearity), and ``se`` is an upper bound, the average of the per-generation
        standard errors (the standard deviation of an average is at most the average
        of the standard deviations); ``se_kind`` says which. ``chains`` is the number
        of chains behind the mean."""
        if not 0 <= burn_in <= self.generations:
            raise ValueError(f"steady_state: burn_in must be in [0, {self.generations}], got {burn_in}")
        if self.is_summary:
            mean = self.mean(metric)[..., burn_in:].mean(axis=-1)
            se = self.se(metric)[..., burn_in:].mean(axis=-1)
            cnt = self.moments(metric)["count"][..., burn_in:].min(axis=-1)
            out = {"mean": mean, "se": se, "chains": cnt}
            if not self.sweep:
                return {k: float(v) if k != "chains" else int(v) for k, v in out.items()} | {"se_kind": "upper bound"}
            return out | {"se_kind": "upper bound", "sweep": self.sweep}
        out = {"mean": [], "se": [], "chains": []}
        for _, res in self._points():
            arr = res._metric(metric)[:, burn_in:]
            avg = arr.mean(axis=1)
            avg = avg[np.isfinite(avg)] if avg.ndim == 1 else avg
            out["mean"].append(float(np.mean(avg)))
            out["se"].append(float(np.std(avg, ddof=1) / math.sqrt(len(avg))) if len(avg) > 1 else math.nan)
            out["chains"].append(int(len(avg)))
        if not self.sweep:
            return {k: v[0] for k, v in out.items()} | {"se_kind": "exact"}
        return {k: np.asarray(v) for k, v in out.items()} | {"se_kind": "exact", "sweep": self.sweep}

    def paired_difference(self, other: Result, metric: str):
        """Mean and standard error of (self - other) per generation over chains
        paired by global id. Runs sharing a seed share their original samples and
        real data (common random numbers), so this standard error is usually far
        smaller than that of two independent means. Summary mode uses kept chains."""
        import pandas as pd

        if self.seed != other.seed:
            warnings.warn("paired_difference: the runs have different seeds; chains are not paired", stacklevel=2)
        a, b = self._metric(metric), other._metric(metric)
        k = min(a.shape[0], b.shape[0])
        if a.shape[1:] != b.shape[1:]:
            raise ValueError(f"paired_difference: shapes differ: {a.shape[1:]} vs {b.shape[1:]}")
        d = (a[:k] - b[:k]).astype(np.float64)
        ok = np.isfinite(d)
        cnt = ok.sum(axis=0)
        mean = np.where(ok, d, 0).sum(axis=0) / np.maximum(cnt, 1)
        var = np.where(ok, (d - mean) ** 2, 0).sum(axis=0) / np.maximum(cnt - 1, 1)
        return pd.DataFrame(
            {"generation": np.arange(d.shape[1]), "mean": mean, "se": np.sqrt(var / np.maximum(cnt, 1)), "pairs": cnt}
        )

    def _metric(self, metric: str) -> np.ndarray:
        self._no_sweep(f"metric {metric!r}")
        if metric in self.metrics:
            return self.metrics[metric]
        if metric in self.diagnostics:
            return self.diagnostics[metric]
        raise ValueError(f"unknown metric {metric!r}; have {list(self.metrics)}")

    def _no_sweep(self, what: str):
        if self.sweep:
            raise ValueError(f"{what}: select a sweep point first with result.sel(i)")

    # ---------------------------------------------------------------- storage
    def to_xarray(self):
        """The per-chain metrics as an ``xarray.Dataset``: dims ``(*sweep axes, chain,
        generation, *extra)``, each sweep key an indexed dimension
        (``ds.sel(real_fraction=0.1)``), ``long_name`` and ``units`` on every
        variable. It is the root group of the saved file (``xarray.open_dataset``);
        :meth:`to_datatree` has the diagnostics, events and summary too."""
        return self.to_datatree().to_dataset()

    def to_datatree(self):
        """The whole result as an ``xarray.DataTree``: the metrics at the root, and
        groups ``/diagnostics``, ``/events`` and ``/summary`` (summary mode: means,
        standard errors, counts and moment sums over every chain). What :meth:`save`
        writes (``xarray.open_datatree`` reads it)."""
        return to_datatree(self)

    def save(self, path, *, overwrite: bool = False) -> Path:
        """Write the result: one netCDF file (``xarray.open_dataset`` opens it; config,
        seed and versions as attributes) and a tidy CSV summary beside it.

        Names: a path ending in ``.nc`` is used as given; any other name gets
        ``.nc`` appended (``"run.1"`` writes ``run.1.nc``; nothing of the given name
        is replaced). The CSV is the same name with ``.csv`` for ``.nc``. The return
        value is the netCDF file's path.

        Safety: an existing file is never replaced unless ``overwrite=True``
        (``FileExistsError`` otherwise, before anything is written). The two files
        are replaced together or not at all, each written completely before either
        is renamed into place; a save killed midway is finished by the next save or
        :func:`load` of that result, and temporaries of killed saves are removed. A
        full disk or an unwritable folder raises an ``OSError`` that says so, with
        the old files intact and the result still in memory to be saved elsewhere.
        The file is serialised in memory first (about the file's size in RAM).
        """
        from .._files import write_set

        nc, csv = result_paths(path)
        nc.parent.mkdir(parents=True, exist_ok=True)
        # serialise in memory: the HDF5 library must never see a failing disk write (after a
        # failed write it can crash the interpreter when the file is closed)
        blob = bytes(self.to_datatree().to_netcdf(engine="h5netcdf"))
        table = self.summary().to_csv(index=False).encode()
        write_set({nc: blob, csv: table}, overwrite=overwrite)
        return nc


def result_paths(path) -> tuple[Path, Path]:
    """(netCDF path, CSV path) that :meth:`Result.save` writes for ``path``."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise TypeError(f"Result.save: path must be a file path, got {path!r}")
    path = Path(path)
    if path.suffix == ".csv":
        raise ValueError(f"Result.save: give the netCDF file's name (e.g. {str(path.with_suffix('.nc'))!r}); "
                         "the CSV summary is written beside it")  # fmt: skip
    nc = path if path.suffix == ".nc" else path.with_name(path.name + ".nc")
    return nc, nc.with_suffix(".csv")


def load(path) -> Result:
    """Read a result written by :meth:`Result.save` (finishing first a save of it
    that was killed after both files were written)."""
    from .._files import recover

    path = Path(path)
    try:
        recover(path)
    except OSError:
        pass  # a read-only copy: read what is there

    return Result(**from_dataset(path))
