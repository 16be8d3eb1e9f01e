"""Shapes, sizes and names of a configuration, found by tracing once (no compute)
and cached by static signature, so repeated ``simulate`` calls cost no retrace."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from . import _rng


def nbytes(tree) -> int:
    return sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


_SIZE_CACHE: dict = {}


def _signature(*trees) -> tuple:
    return tuple(
        (jax.tree.structure(t), tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(t))) for t in trees
    )


def sizes(family, regime, values, n, G, exact, chosen, diag_names, ev_names, fields, block):
    """(carry, one generation's outputs, one generation's data) bytes per chain."""
    key = (_signature(family, regime, values), n, G, exact, chosen, fields, block)
    if key not in _SIZE_CACHE:
        from .simulate import _init_one, _Static, _sweep_vmap

        probe = _Static(n, G, exact, chosen, diag_names, ev_names, False, 0, (), fields, block)
        ck1 = jnp.zeros((1, 2), jnp.uint32)
        carry_shape, out_shape = jax.eval_shape(
            lambda: _sweep_vmap(lambda f, r, c: _init_one(f, r, c, probe), probe, 0)(family, regime, values, ck1)
        )
        if exact:
            point_bytes = 0  # the exact path never materialises the points
        else:
            stream = _rng.Stream(ck1[0], jnp.int32(0), 0)
            point_bytes = nbytes(jax.eval_shape(lambda: family.sample(stream, family.truth(), n)))
        _SIZE_CACHE[key] = (nbytes(carry_shape), nbytes(out_shape), point_bytes)
    return _SIZE_CACHE[key]


_NAME_CACHE: dict = {}


def names(family) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Metric, diagnostic and event names of a family (cached by signature)."""
    key = _signature(family)
    if key not in _NAME_CACHE:
        t = family.truth
        diag = tuple(jax.eval_shape(lambda: family.diagnostics(t())))
        ev = tuple(jax.eval_shape(lambda: family.events(t())))
        _NAME_CACHE[key] = (family.metric_names(), diag, ev)
    return _NAME_CACHE[key]
