"""Result <-> xarray (netCDF via h5netcdf): ``to_datatree`` lays a result out as an
``xarray.DataTree``, ``from_dataset`` returns the fields of a stored one
(``Result(**fields)``).

The file (format 2) follows the CF conventions' attributes, one group per kind of
array (docs/ARCHITECTURE.md, "Results on disk"):

- ``/`` (what ``xarray.open_dataset`` opens): every metric by its own name, dims
  ``(*sweep axes, chain, generation, *extra)``, and ``nonfinite``; in summary mode
  the kept chains, along ``kept_chain``. Each sweep key is a dimension with its values as an index
  coordinate (``ds.sel(real_fraction=0.1)``), ``chain`` holds global chain ids.
- ``/diagnostics``: fit diagnostics, the same layout.
- ``/events``: first generations of events, ``(*sweep axes, chain, *extra)``, int32
  with fill value -1 (never happened: a missing value to xarray).
- ``/summary`` (summary mode): per metric its mean, standard error, finite and
  non-finite counts over all chains per generation, the float64 central moment sums
  that combine runs, and the threshold counts.

Every variable has ``long_name`` and ``units``; the root holds ``Conventions``,
``title``, ``history``, ``source``, ``references``, the configuration and versions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import ATTRS as METRIC_ATTRS
from ..metrics import DIM_COORDS

FORMAT_VERSION = 2  # 1: one flat dataset with prefixed names (still read)


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def _dims(res, extra: tuple[str, ...], chain_dim: str, ndim_tail: int) -> tuple[str, ...]:
    lead = ("sweep",) if res.sweep else ()
    names = tuple(extra) if len(extra) == ndim_tail else tuple(f"dim_{i}" for i in range(ndim_tail))
    return lead + (chain_dim, "generation") + names


def _attrs(name: str, kind: str) -> dict:
    """CF ``long_name`` and ``units`` of a metric, diagnostic or event."""
    long_name, units = METRIC_ATTRS.get(name, (name.replace("_", " "), None))
    out = {"long_name": long_name}
    if units is not None:
        out["units"] = units
    if kind == "diagnostic":
        out["long_name"] = f"fit diagnostic: {long_name}"
    return out


def _sweep_layout(res) -> tuple[list[str], list[int], dict]:
    """(dims, lengths, coords) of the sweep axes: one dimension per swept key, the grid
    unflattened (a sweep is a full grid in C order over its axes, config["sweep_axes"]),
    or one ``sweep`` dimension when the axes are unknown."""
    if not res.sweep:
        return [], [], {}
    axes = res.config.get("sweep_axes") or {}
    names = list(res.sweep)
    lengths = [len(v) for v in axes.values()]
    if len(axes) == len(names) and int(np.prod(lengths)) == res.n_sweep:
        coords = {}
        for nm, vals in zip(names, axes.values()):
            coords[nm] = (nm, np.asarray(vals, np.float64), {"long_name": f"swept hyperparameter {nm}"})
        return names, lengths, coords
    coords = {nm: ("sweep", np.asarray(v), {"long_name": f"swept hyperparameter {nm}"}) for nm, v in res.sweep.items()}
    return ["sweep"], [res.n_sweep], coords


def _grid(arr, lengths: list[int]):
    """A leading flat sweep axis as the grid's axes."""
    arr = np.asarray(arr)
    return arr.reshape(tuple(lengths) + arr.shape[1:]) if lengths else arr


def _tail_names(extra: tuple, tail: int, prefix: str) -> tuple[str, ...]:
    return tuple(extra) if len(extra) == tail else tuple(f"{prefix}_{i}" for i in range(tail))


def to_datatree(res):
    """The result as an ``xarray.DataTree`` (what :meth:`Result.save` writes)."""
    import xarray as xr

    sdims, lengths, scoords = _sweep_layout(res)
    lead = len(lengths) > 0
    chain_n = next(iter(res.metrics.values())).shape[1 if lead else 0] if res.metrics else 0
    # in summary mode the per-chain arrays are the kept chains: their own dimension, since the events
    # (every chain) share the tree's coordinates and a group must align with its parents
    cdim = "kept_chain" if res.is_summary else "chain"
    chain_long = "global chain id" + (" (the kept chains of a summary run)" if res.is_summary else "")
    base = {
        "generation": ("generation", np.arange(res.generations + 1), {"long_name": "generation (fit g + 1)"}),
        **scoords,
    }
    chain = {cdim: (cdim, np.arange(chain_n), {"long_name": chain_long})}

    def per_chain(arrays, dims_map, kind):
        out = {}
        for name, arr in arrays.items():
            tail = arr.ndim - (3 if lead else 2)
            dims = (*sdims, cdim, "generation", *_tail_names(dims_map.get(name, ()), tail, "dim"))
            out[name] = (dims, _grid(arr, lengths), _attrs(name, kind))
        return out

    root_vars = per_chain(res.metrics, res.metric_dims, "metric")
    if res.nonfinite is not None:
        root_vars["nonfinite"] = (
            (*sdims, cdim, "generation"),
            _grid(res.nonfinite, lengths).astype(np.int8),
            {"long_name": "fitted parameters not finite (1) or finite (0)", "units": "1"},
        )
    root = xr.Dataset(root_vars, coords={**base, **chain}, attrs=_global_attrs(res))
    tree = {"/": root}
    if res.diagnostics:
        tree["/diagnostics"] = xr.Dataset(
            per_chain(res.diagnostics, res.diagnostic_dims, "diagnostic"), coords={**base, **chain}
        )
    if res.events:
        ev = {}
        for name, arr in res.events.items():
            tail = arr.ndim - (2 if lead else 1)
            dims = (*sdims, "chain", *_tail_names(res.event_dims.get(name, ()), tail, "edim"))
            attrs = {**_attrs(name, "event"), "units": "1", "comment": "-1 (the fill value): never happened"}
            ev[name] = (dims, _grid(arr, lengths).astype(np.int32), attrs)
        ev_n = next(iter(res.events.values())).shape[1 if lead else 0]
        ids = ("chain", np.arange(ev_n), {"long_name": "global chain id"})
        events = xr.Dataset(ev, coords={**scoords, "chain": ids})
        for name in events.data_vars:
            events[name].encoding["_FillValue"] = np.int32(-1)
        tree["/events"] = events
    if res.summary_stats is not None:
        tree.update(_summary_groups(res, sdims, lengths, base))
    return xr.DataTree.from_dict({path: _with_dim_coords(ds, res) for path, ds in tree.items()})


def _with_dim_coords(ds, res):
    """``ds`` with coordinate values on the extra dims that name a family constructor
    argument (``metrics.DIM_COORDS``: the memoriser's ``train_size`` is the family's
    ``train_sizes``), where the run's config holds them."""
    family = (res.config or {}).get("family") or {}
    for dim, (arg, long_name) in DIM_COORDS.items():
        values = family.get(arg)
        if dim in ds.dims and values is not None and len(values) == ds.sizes[dim]:
            ds = ds.assign_coords({dim: (dim, np.asarray(values), {"long_name": long_name})})
    return ds


MOMENTS = {
    "count": ("number of chains with a finite value", "1"),
    "nonfinite": ("number of chains with a non-finite value", "1"),
    "m2": ("sum of squared deviations from the mean (float64, for combining runs)", None),
    "m3": ("sum of cubed deviations from the mean", None),
    "m4": ("sum of fourth powers of deviations from the mean", None),
}


def _summary_groups(res, sdims, lengths, base) -> dict:
    import xarray as xr

    st = res.summary_stats
    out = {}
    for group, dims_map in (("metrics", res.metric_dims), ("diagnostics", res.diagnostic_dims)):
        data = {}
        for name, mom in st["groups"].get(group, {}).items():
            tail = np.ndim(mom["mean"]) - (2 if lengths else 1)
            dims = (*sdims, "generation", *_tail_names(dims_map.get(name, ()), tail, "dim"))
            long_name, units = METRIC_ATTRS.get(name, (name.replace("_", " "), None))
            unit = {} if units is None else {"units": units}
            cnt = np.asarray(mom["count"])
            with np.errstate(invalid="ignore", divide="ignore"):
                se = np.where(cnt > 1, np.sqrt(np.asarray(mom["m2"]) / np.maximum(cnt - 1, 1) / cnt), np.nan)
            data[name] = (dims, _grid(mom["mean"], lengths), {"long_name": f"mean over chains of {long_name}", **unit})
            se_name = f"standard error of the mean of {long_name}"
            data[f"{name}_se"] = (dims, _grid(se, lengths), {"long_name": se_name, **unit})
            for k, (ln, u) in MOMENTS.items():
                data[f"{name}__{k}"] = (dims, _grid(mom[k], lengths), {"long_name": ln, "units": u or "1"})
        if data:
            out[f"/summary/{group}"] = xr.Dataset(data, coords=base)
    top = {
        "nonfinite_params": (
            (*sdims, "generation"),
            _grid(st["nonfinite_params"], lengths),
            {"long_name": "number of chains whose fitted parameters are not finite", "units": "1"},
        )
    }
    for i, (key, v) in enumerate(sorted(st["below"].items())):
        tail = np.ndim(v) - (2 if lengths else 1)
        dims = (*sdims, "generation", *(f"dim_{j}" for j in range(tail)))
        attrs = {"long_name": f"number of chains with {key}", "threshold": key, "units": "1"}
        top[f"below_{i}"] = (dims, _grid(v, lengths), attrs)
    out["/summary"] = xr.Dataset(top, coords=base)
    return out


def _global_attrs(res) -> dict:
    from .._version import __version__

    fam = res.config["family"].get("family")
    reg = res.config["regime"].get("regime")
    started = res.info.get("started", "")
    argv = " ".join(res.info.get("argv", []))
    return {
        "Conventions": "CF-1.10",
        "title": f"collapse_jax: {fam} chains under {reg}, n={res.config['n']}, {res.generations} generations, "
        f"{res.chains} chains",
        "institution": "",
        "source": f"collapse_jax {__version__} (JAX {res.info.get('jax', '?')}, {res.info.get('backend', '?')})",
        "history": f"{started} simulated by collapse_jax {__version__}" + (f": {argv}" if argv else ""),
        "references": "docs/THEORY.md of collapse_jax for the closed forms and their sources",
        "comment": "per-chain metrics at the root; /diagnostics, /events and /summary groups (xarray.open_datatree)",
        "format_version": FORMAT_VERSION,
        "config": _json(res.config),
        "seed": res.seed if res.seed < 2**63 else str(res.seed),
        "info": _json(res.info),
        "metric_dims": _json(res.metric_dims),
        "diagnostic_dims": _json(res.diagnostic_dims),
        "event_dims": _json(res.event_dims),
        "sweep_names": _json(list(res.sweep)),
    }


def from_dataset(path) -> dict[str, Any]:
    """The fields of a stored result (``Result(**fields)``): format 2, or format 1."""
    import xarray as xr

    if not Path(path).is_file():
        raise FileNotFoundError(f"load: no result file {str(path)!r}")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            version = int(ds.attrs.get("format_version", -1))
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"load: {str(path)!r} is not a netCDF file written by collapse_jax's Result.save ({exc})"
        ) from None
    if version == 1:
        return _from_dataset_v1(path)
    if version != FORMAT_VERSION:
        raise ValueError(f"load: {path} is not a collapse_jax result of format 1 or {FORMAT_VERSION}")
    with xr.open_datatree(path, engine="h5netcdf", mask_and_scale=False) as tree:
        tree = tree.load()
    root = tree.to_dataset()
    attrs = root.attrs
    config = json.loads(attrs["config"])
    names = json.loads(attrs["sweep_names"])
    sweep_dims = [d for d in (names if all(n in root.dims for n in names) else ["sweep"]) if d in root.dims]

    def flat(var):
        """The grid's sweep axes flattened back into one leading axis."""
        a = var.values
        if not names:
            return a
        k = len(sweep_dims)
        return a.reshape((-1,) + a.shape[k:])

    if names and sweep_dims != ["sweep"]:
        mesh = np.meshgrid(*(root[n].values for n in names), indexing="ij")
        sweep = {n: m.reshape(-1) for n, m in zip(names, mesh)}
    else:
        sweep = {n: root[n].values for n in names}
    metrics = {k: flat(v) for k, v in root.data_vars.items() if k != "nonfinite"}
    nonfinite = flat(root["nonfinite"]).astype(bool) if "nonfinite" in root else None
    diagnostics = {}
    if "diagnostics" in tree.children:
        diagnostics = {k: flat(v) for k, v in tree["diagnostics"].to_dataset().data_vars.items()}
    events = {}
    if "events" in tree.children:
        events = {k: flat(v).astype(np.int32) for k, v in tree["events"].to_dataset().data_vars.items()}
    summary_stats = None
    if config["keep"] == "summary":
        groups: dict = {"metrics": {}, "diagnostics": {}}
        for group in groups:
            if "summary" in tree.children and group in tree["summary"].children:
                ds = tree["summary"][group].to_dataset()
                for name in map(str, ds.data_vars):  # netCDF variable names are str
                    if "__" in name:
                        base, k = name.split("__")
                        groups[group].setdefault(base, {})[k] = flat(ds[name])
                    elif not name.endswith("_se") or name[:-3] not in ds.data_vars:
                        groups[group].setdefault(name, {})["mean"] = flat(ds[name])
        top = tree["summary"].to_dataset()
        below = {top[k].attrs["threshold"]: flat(top[k]) for k in map(str, top.data_vars) if k.startswith("below_")}
        summary_stats = {"groups": groups, "nonfinite_params": flat(top["nonfinite_params"]), "below": below}
    return dict(
        config=config,
        metrics=metrics,
        diagnostics=diagnostics,
        events=events,
        nonfinite=nonfinite,
        summary_stats=summary_stats,
        sweep=sweep,
        **_recorded(attrs),
    )


def _recorded(attrs) -> dict:
    """The result's fields that the file keeps as JSON attributes."""
    dims = {
        k: {n: tuple(v) for n, v in json.loads(attrs[k]).items()}
        for k in ("metric_dims", "diagnostic_dims", "event_dims")
    }
    return {**dims, "info": json.loads(attrs["info"])}


def _from_dataset_v1(path) -> dict[str, Any]:
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
    config = json.loads(ds.attrs["config"])
    sweep = {k: ds[f"sweep__{k}"].values for k in json.loads(ds.attrs["sweep_names"])}
    metrics, diagnostics, events = {}, {}, {}
    stats_groups: dict = {"metrics": {}, "diagnostics": {}}
    below = {}
    nonfinite_params = None
    for name, var in ds.data_vars.items():
        parts = str(name).split("__")
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
        sweep=sweep,
        **_recorded(ds.attrs),
    )
