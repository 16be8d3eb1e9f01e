"""Tree helpers over data pytrees (a leading "point" axis). The family contract is
:mod:`collapse_jax.families._protocol`; its names are re-exported here for older imports."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._protocol import AbstractFamily as AbstractFamily
from ._protocol import Data as Data
from ._protocol import Params as Params
from ._protocol import Stats as Stats
from ._protocol import all_finite as all_finite


def tree_where(mask: jax.Array, a: Data, b: Data) -> Data:
    """Per-point select between two data pytrees (mask over the leading axis)."""

    def sel(x, y):
        m = mask.reshape(mask.shape + (1,) * (x.ndim - 1))
        return jnp.where(m, x, y)

    return jax.tree.map(sel, a, b)


def tree_concat(a: Data, b: Data) -> Data:
    """Concatenate two data pytrees along the point axis."""
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y], axis=0), a, b)


def tree_take(data: Data, idx: jax.Array | int) -> Data:
    return jax.tree.map(lambda x: jnp.take(x, idx, axis=0), data)


def tree_update(buffer: Data, data: Data, start) -> Data:
    """Write ``data`` into ``buffer`` at point offset ``start``."""

    def upd(buf, x):
        idx = (start,) + (0,) * (buf.ndim - 1)
        return jax.lax.dynamic_update_slice(buf, x.astype(buf.dtype), idx)

    return jax.tree.map(upd, buffer, data)
