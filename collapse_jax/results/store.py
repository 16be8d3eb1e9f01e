"""Result <-> xarray.Dataset (netCDF via h5netcdf): ``to_dataset`` reads a result's
fields, ``from_dataset`` returns the fields of a stored one (``Result(**fields)``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def _dims(res, extra: tuple[str, ...], chain_dim: str, ndim_tail: int) -> tuple[str, ...]:
    lead = ("sweep",) if res.sweep else ()
    names = tuple(extra) if len(extra) == ndim_tail else tuple(f"dim_{i}" for i in range(ndim_tail))
    return lead + (chain_dim, "generation") + names


def to_dataset(res):
    import xarray as xr

    chain_dim = "kept_chain" if res.is_summary else "chain"
    data_vars = {}
    for group, arrays, dims in (
        ("metric", res.metrics, res.metric_dims),
        ("diag", res.diagnostics, res.diagnostic_dims),
    ):
        for name, arr in arrays.items():
            tail = arr.ndim - (3 if res.sweep else 2)
            data_vars[f"{group}__{name}"] = (_dims(res, dims.get(name, ()), chain_dim, tail), arr)
    for name, arr in res.events.items():
        lead = ("sweep",) if res.sweep else ()
        tail = arr.ndim - len(lead) - 1
        extra = res.event_dims.get(name, ())
        names = tuple(extra) if len(extra) == tail else tuple(f"edim_{i}" for i in range(tail))
        data_vars[f"event__{name}"] = (lead + ("chain",) + names, arr)
    if res.nonfinite is not None:
        data_vars["nonfinite"] = (
            (("sweep",) if res.sweep else ()) + ("chain", "generation"),
            res.nonfinite.astype(np.int8),
        )
    if res.summary_stats is not None:
        st = res.summary_stats
        lead = ("sweep",) if res.sweep else ()
        for group, grp in st["groups"].items():
            dims_map = res.metric_dims if group == "metrics" else res.diagnostic_dims
            for name, mom in grp.items():
                tail = mom["mean"].ndim - len(lead) - 1
                extra = dims_map.get(name, ())
                names = tuple(extra) if len(extra) == tail else tuple(f"dim_{i}" for i in range(tail))
                for k, v in mom.items():
                    data_vars[f"stat__{group}__{name}__{k}"] = (lead + ("generation",) + names, v)
        data_vars["stat__nonfinite_params"] = (lead + ("generation",), st["nonfinite_params"])
        for i, (key, v) in enumerate(sorted(st["below"].items())):
            data_vars[f"below__{i}"] = (lead + ("generation",), v, {"threshold": key})
    coords = {"generation": np.arange(res.generations + 1)}
    for k, v in res.sweep.items():
        coords[f"sweep__{k}"] = ("sweep", np.asarray(v))
    attrs = {
        "title": "collapse_jax simulation result",
        "format_version": FORMAT_VERSION,
        "config": _json(res.config),
        "seed": res.seed,
        "info": _json(res.info),
        "metric_dims": _json(res.metric_dims),
        "diagnostic_dims": _json(res.diagnostic_dims),
        "event_dims": _json(res.event_dims),
        "sweep_names": _json(list(res.sweep)),
    }
    return xr.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)


def from_dataset(path) -> dict[str, Any]:
    import xarray as xr

    if not Path(path).is_file():
        raise FileNotFoundError(f"load: no result file {str(path)!r}")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"load: {str(path)!r} is not a netCDF file written by collapse_jax's Result.save ({exc})"
        ) from None
    if int(ds.attrs.get("format_version", -1)) != FORMAT_VERSION:
        raise ValueError(f"load: {path} is not a collapse_jax result of format {FORMAT_VERSION}")
    config = json.loads(ds.attrs["config"])
    sweep = {k: ds[f"sweep__{k}"].values for k in json.loads(ds.attrs["sweep_names"])}
    metrics, diagnostics, events = {}, {}, {}
    stats_groups: dict = {"metrics": {}, "diagnostics": {}}
    below = {}
    nonfinite_params = None
    for name, var in ds.data_vars.items():
        parts = name.split("__")
        if parts[0] == "metric":
            metrics[parts[1]] = var.values
        elif parts[0] == "diag":
            diagnostics[parts[1]] = var.values
        elif parts[0] == "event":
            events[parts[1]] = var.values.astype(np.int32)
        elif parts[0] == "stat" and parts[1] == "nonfinite_params":
            nonfinite_params = var.values
        elif parts[0] == "stat":
            stats_groups[parts[1]].setdefault(parts[2], {})[parts[3]] = var.values
        elif parts[0] == "below":
            below[var.attrs["threshold"]] = var.values
    summary_stats = None
    if config["keep"] == "summary":
        summary_stats = {"groups": stats_groups, "nonfinite_params": nonfinite_params, "below": below}
    nonfinite = ds["nonfinite"].values.astype(bool) if "nonfinite" in ds else None
    return dict(
        config=config,
        metrics=metrics,
        diagnostics=diagnostics,
        events=events,
        nonfinite=nonfinite,
        summary_stats=summary_stats,
        metric_dims={k: tuple(v) for k, v in json.loads(ds.attrs["metric_dims"]).items()},
        diagnostic_dims={k: tuple(v) for k, v in json.loads(ds.attrs["diagnostic_dims"]).items()},
        event_dims={k: tuple(v) for k, v in json.loads(ds.attrs["event_dims"]).items()},
        sweep=sweep,
        info=json.loads(ds.attrs["info"]),
    )
