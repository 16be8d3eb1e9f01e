"""Small multilayer perceptrons for the neural families: parameters as an equinox
module of plain arrays (so they ride in a chain's carry and vmap over chains), and a
fixed number of optax steps inside ``fit``."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from .._rng import Stream


class MLPParams(eqx.Module):
    """Weights (in, out) and biases of every layer."""

    weights: tuple[jax.Array, ...]
    biases: tuple[jax.Array, ...]


def _bias_sizes(sizes: tuple[int, ...], out_bias: bool) -> list[int]:
    return [*sizes[1:-1], sizes[-1] if out_bias else 0]


def mlp_init(stream: Stream, sizes: tuple[int, ...], dtype, first: int = 0, out_bias: bool = True) -> MLPParams:
    """LeCun-normal weights (sd 1/sqrt(fan_in)), zero biases; layer i from sub-stream
    ``first + i`` of ``stream``. ``out_bias=False``: no bias on the last layer (a
    softmax's logits: a constant shift is unidentifiable, its gradient is 0 up to
    rounding, and Adam's normalised steps would turn that rounding into full steps)."""
    weights = [
        stream.child(first + i).normal((a, b), dtype) / math.sqrt(a)
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
    ]
    return MLPParams(tuple(weights), tuple(jnp.zeros((b,), dtype) for b in _bias_sizes(sizes, out_bias)))


def mlp_zeros(sizes: tuple[int, ...], dtype, out_bias: bool = True) -> MLPParams:
    return MLPParams(
        tuple(jnp.zeros((a, b), dtype) for a, b in zip(sizes[:-1], sizes[1:])),
        tuple(jnp.zeros((b,), dtype) for b in _bias_sizes(sizes, out_bias)),
    )


def mlp_apply(net: MLPParams, x: jax.Array) -> jax.Array:
    """tanh hidden layers, a linear last layer; ``x`` (..., in)."""
    last = len(net.weights) - 1
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        x = x @ w
        if b.shape[0]:
            x = x + jnp.expand_dims(b, tuple(range(x.ndim - 1)))
        if i < last:
            x = jnp.tanh(x)
    return x


def adam_fit(loss, params, steps: int, learning_rate, step_keys=None):
    """``steps`` Adam steps on ``loss(params, key_i)`` (``key_i``: the i-th of
    ``step_keys``, or ``None``); returns the final params, the loss and the global
    gradient norm at them (with the last step's key)."""
    import optax

    opt = optax.adam(learning_rate)
    grad = jax.value_and_grad(loss)

    def step(carry, key):
        p, state = carry
        _, g = grad(p, key)
        updates, state = opt.update(g, state, p)
        return (optax.apply_updates(p, updates), state), None

    xs = step_keys if step_keys is not None else None
    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), xs, length=steps)
    last = None if step_keys is None else jax.tree.map(lambda k: k[-1], step_keys)
    value, g = grad(params, last)
    norm = jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree.leaves(g)))
    return params, value, norm
