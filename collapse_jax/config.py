"""Reproducible configurations: a study as plain data (a dict, a TOML or JSON file,
``Result.config``) and back (:func:`from_config`).

A configuration has the shape of ``Result.config``::

    {"family": {"family": "Gaussian", "dim": 1},          # class name + constructor args
     "regime": {"regime": "FreshMix", "real_fraction": 0.2},
     "synthesis": {"temperature": 0.9},                     # optional
     "n": 100, "generations": 50, "chains": 10000, "seed": 0,
     "sweep": {"real_fraction": [0.1, 0.2]},                # optional, axis values
     "keep": "summary", ...}                                # any simulate option

so a saved result reruns from its own config, bit for bit (same chunk size, same
seed), and a study written by hand in TOML runs the same way
(``collapse-jax run --config study.toml``). A family or regime is named by its class
name in ``collapse_jax``; pass ``classes={"MyFamily": MyFamily}`` for your own.
Keys a result records about itself (``sampler``, ``version``, ``block``) are read
and ignored; any other unknown key is an error (a typo is never silently dropped).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .families._protocol import AbstractFamily
from .regimes import AbstractRegime
from .synthesis import Synthesis

__all__ = ["build", "from_config", "read_config"]

# simulate options a configuration may set (the rest of simulate's keywords)
OPTIONS = (
    "n",
    "generations",
    "chains",
    "seed",
    "keep",
    "keep_chains",
    "max_memory",
    "dtype",
    "metrics",
    "thresholds",
    "sweep",
    "chunk_size",
    "checkpoint",
    "checkpoint_every",
    "devices",
    "prng",
    "progress",
)
# what a result records about itself and a rerun does not take as an option
RECORDED = ("sampler", "version", "block", "sweep_axes", "sweep_point", "processes")
KINDS = {"family": AbstractFamily, "regime": AbstractRegime, "synthesis": Synthesis}


def _lookup(kind: str, name: Any, classes: Mapping[str, type] | None) -> type:
    import collapse_jax

    base = KINDS[kind]
    if not isinstance(name, str):
        raise TypeError(f"config: {kind} must be named by its class name (a string), got {name!r}")
    cls = (classes or {}).get(name) or getattr(collapse_jax, name, None)
    if not (isinstance(cls, type) and issubclass(cls, base)) or name.startswith("Abstract"):
        known = sorted(
            n
            for n in dir(collapse_jax)
            if isinstance(getattr(collapse_jax, n), type)
            and issubclass(getattr(collapse_jax, n), base)
            and not n.startswith("Abstract")
        )
        raise ValueError(
            f"config: unknown {kind} {name!r}; known: {known} (your own class: from_config(..., classes={{{name!r}: "
            f"{name}}}))"
        )
    return cls


def build(kind: str, desc: Mapping[str, Any], classes: Mapping[str, type] | None = None):
    """The family, regime or synthesis that ``desc`` describes (``obj.describe()``
    rebuilt: ``build("family", fam.describe())`` equals ``fam``).

    ``desc`` holds the class name under ``kind`` (``{"family": "Gaussian", "dim":
    2}``) and the constructor's keyword arguments; a synthesis needs no name
    (``{"temperature": 0.9}``). A family description holding a ``"synthesis"``
    entry is a ``cj.Pressured`` family (what ``Pressured.describe()`` gives).
    """
    if kind not in KINDS:
        raise ValueError(f"config: kind must be one of {tuple(KINDS)}, got {kind!r}")
    if not isinstance(desc, Mapping):
        raise TypeError(f"config: {kind} must be a table/dict of its arguments, got {desc!r}")
    args = dict(desc)
    if kind == "synthesis":
        cls = _lookup(kind, args.pop("synthesis", "Synthesis"), classes)
        return cls(**args)
    if kind not in args:
        raise ValueError(
            f"config: the {kind} table must name its class, e.g. {{{kind!r}: 'Gaussian', ...}}; got {desc}"
        )
    name = args.pop(kind)
    pressure = args.pop("synthesis", None) if kind == "family" else None
    cls = _lookup(kind, name, classes)
    try:
        obj = cls(**args)
    except TypeError as e:
        raise TypeError(f"config: {kind} {name}: {e}") from None
    if pressure is not None:
        from .pressures import Pressured

        if not isinstance(pressure, Mapping):
            raise TypeError(f"config: a family's synthesis must be a table of its rates, got {pressure!r}")
        obj = Pressured(obj, **{k: v for k, v in pressure.items() if k != "synthesis"})
    return obj


def read_config(path: str | os.PathLike) -> dict:
    """A configuration from a ``.toml`` or ``.json`` file, or the ``config`` of a
    saved result (``.nc``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config: no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        with open(path, "rb") as f:
            try:
                return tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"config: {path} is not valid TOML: {e}") from None
    if suffix == ".json":
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"config: {path} is not valid JSON: {e}") from None
    if suffix in (".nc", ".csv"):
        from .results import load

        return load(path).config
    raise ValueError(f"config: {path} must be a .toml, .json or a saved result (.nc), got suffix {suffix!r}")


def from_config(
    config: Mapping[str, Any] | str | os.PathLike, *, classes: Mapping[str, type] | None = None, **overrides
) -> Callable[[], Any]:
    """The ``simulate`` (or ``simulate_graph``) call a configuration describes, ready
    to run: ``cj.from_config(result.config)()`` reruns a result bit for bit.

    Args:
        config: a dict shaped like ``Result.config`` (any ``Mapping``: Hydra's
            ``DictConfig`` too), or a path to a ``.toml`` / ``.json`` file or a
            saved result.
        classes: your own family, regime or synthesis classes by name.
        **overrides: simulate options that replace the configuration's
            (``progress=False``, ``checkpoint="run.ckpt"``, ``chains=...``).

    Returns:
        A ``functools.partial`` of ``cj.simulate`` (or ``cj.simulate_graph``);
        ``.keywords`` shows the rebuilt arguments.

    Examples:
        >>> import collapse_jax as cj
        >>> call = cj.from_config({"family": {"family": "Gaussian"}, "regime": {"regime": "Replace"},
        ...                        "n": 10, "generations": 2, "chains": 4}, progress=False)
        >>> call().metrics["variance"].shape
        (4, 3)
    """
    if not isinstance(config, Mapping):
        config = read_config(config)
    cfg = _plain(config)
    unknown = sorted(set(cfg) - set(OPTIONS) - set(RECORDED) - set(KINDS) - {"graph"})
    if unknown:
        raise ValueError(f"config: unknown keys {unknown}; allowed: {sorted({*KINDS, *OPTIONS})}")
    if "family" not in cfg:
        raise ValueError("config: a configuration needs a 'family' table, e.g. {'family': 'Gaussian'}")
    bad = sorted(set(overrides) - set(OPTIONS))
    if bad:
        raise TypeError(f"from_config: unknown overrides {bad}; allowed: {list(OPTIONS)}")
    family = build("family", _named(cfg["family"], "family"), classes)
    regime_desc = _named(cfg.get("regime", {"regime": "Replace"}), "regime")
    kwargs = {k: cfg[k] for k in OPTIONS if k in cfg}
    if "sweep_axes" in cfg:  # a result's own record of the sweep's axes (``sweep`` holds the flat grid)
        kwargs["sweep"] = cfg["sweep_axes"]
    if cfg.get("sweep_point"):  # one point of a sweep (Result.sel): a sweep of that point alone
        kwargs["sweep"] = {k: [v] for k, v in cfg["sweep_point"].items()}
    if not kwargs.get("sweep"):
        kwargs.pop("sweep", None)
    thresholds = kwargs.get("thresholds")
    if isinstance(thresholds, list):  # a result records [[metric, value], ...]
        merged: dict[str, list] = {}
        for name, value in thresholds:
            merged.setdefault(name, []).append(value)
        kwargs["thresholds"] = merged
    if not kwargs.get("thresholds"):
        kwargs.pop("thresholds", None)
    kwargs.update(overrides)
    if "synthesis" in cfg:
        kwargs["synthesis"] = build("synthesis", cfg["synthesis"], classes)
    if regime_desc.get("regime") == "graph":
        return _graph_call(family, regime_desc, kwargs, classes)
    from .engine.simulate import simulate

    return functools.partial(simulate, family, build("regime", regime_desc, classes), **kwargs)


def _graph_call(family, desc: dict, kwargs: dict, classes) -> Callable[[], Any]:
    from .graph import InteractionGraph, simulate_graph

    graph = desc.get("graph")
    if not isinstance(graph, Mapping) or "weights" not in graph:
        raise ValueError("config: a graph regime needs its 'graph' table with 'weights' (and 'real_fraction')")
    node = build("regime", {"regime": desc.get("node_regime", "Replace")}, classes)
    sizes = desc.get("n", kwargs.pop("n", None))
    kwargs.pop("n", None)
    g = InteractionGraph(graph["weights"], graph.get("real_fraction"))
    return functools.partial(simulate_graph, family, g, n=sizes, regime=node, **kwargs)


def _named(value, kind: str) -> dict:
    """A table, or a bare class name (``family = "Gaussian"``) as a table."""
    if isinstance(value, str):
        return {kind: value}
    if not isinstance(value, Mapping):
        raise TypeError(f"config: {kind} must be a class name or a table of its arguments, got {value!r}")
    return dict(value)


def _plain(value):
    """Any Mapping / sequence (a Hydra DictConfig, a TOML table) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and type(value).__name__ == "ListConfig"):
        return [_plain(v) for v in value]
    return value
