"""Tiny neural generators refitted on their own samples: an MLP softmax density on a
grid (:class:`NeuralDensity`), a variational autoencoder (:class:`VAE`) and a
normalising flow of affine coupling layers (:class:`CouplingFlow`), each fitted
inside ``fit`` by a fixed number of Adam steps (optax) and vmapped over chains like
every family. Their truth is a data set (``data=``, a
:class:`~collapse_jax.Empirical`): real points are rows of its training pool and the
held-out measures of :func:`~collapse_jax.data.heldout_metrics` score every
generation on its test split.

Randomness inside a fit (the initial weights, a VAE's reparameterisation noise) comes
from the chain's fit stream (``STREAM_FIT``), never from the streams that draw the
data, so a study can tell initialisation noise from sampling noise: ``init="random"``
draws fresh weights for every chain and generation, ``"fixed"`` uses one
initialisation for every chain and generation (only sampling noise differs between
chains), ``"warm"`` starts from the previous generation's weights.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jaxtyping import Array, Float

from .._rng import STREAM_FIT, Stream, as_stream
from .._validate import check_int, check_positive, traced_scalar
from ..data import HELDOUT_SAMPLES, Empirical, heldout_metrics
from ._counts import inverse_cdf
from ._nets import MLPParams, adam_fit, mlp_apply, mlp_init, mlp_zeros
from ._ondata import OnData, as_data
from ._protocol import WarmStart

Init = Literal["random", "fixed", "warm"]
INITS: tuple[Init, ...] = get_args(Init)
EDGE_SHIFT = (math.sqrt(2.0) - 1.0) / 2.0  # NeuralDensity: the grid's offset, in cells
MAX_COUPLINGS = 15  # CouplingFlow: coupling k initialised from fit sub-stream k (15 carries the steps' noise)
FIXED_INIT_SEED = 0  # the key data (0, 0) of init="fixed": one initialisation for every chain and generation


class NeuralFit(eqx.Module):
    """A neural family's fit: its network(s), and the optimisation's final loss and
    gradient norm (reported as diagnostics)."""

    net: Any  # an MLPParams (NeuralDensity) or the (encoder, decoder) pair (VAE)
    loss: Float[Array, ""]
    grad_norm: Float[Array, ""]


class _Neural(OnData, WarmStart):
    """What the neural families share: data, optimisation settings, streams."""

    data: Empirical
    steps: int = eqx.field(static=True)
    init: Init = eqx.field(static=True)
    learning_rate: Float[Array, ""]
    _data_first: int = eqx.field(static=True)

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"learning_rate": (1e-12, 10.0)}
    working_set_factor: ClassVar[int] = 8

    def _setup(self, owner: str, data, steps, init, learning_rate) -> Empirical:
        data = as_data(owner, data)
        if data is None:
            raise ValueError(f"{owner}: data= is required (a cj.Empirical, e.g. cj.Empirical.load('digits'))")
        self.steps = check_int(f"{owner}: steps", steps, 1)
        if init not in INITS:
            raise ValueError(f"{owner}: init must be one of {INITS}, got {init!r}")
        self.init = init
        self.learning_rate = traced_scalar(owner, "learning_rate", learning_rate, 1e-12, 10.0)
        self.data = data
        self._data_first = 0
        return data

    def min_points(self) -> int:
        return 2

    def sample_real(self, key, n: int, frame=None) -> jax.Array:
        return self.data.draw_x(key, n, self._data_first or None)

    def diagnostics(self, params: NeuralFit) -> dict[str, jax.Array]:
        return {"final_loss": params.loss, "grad_norm": params.grad_norm}

    def is_finite(self, params: NeuralFit) -> jax.Array:
        return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params.net)]))

    def _fit_stream(self, key) -> Stream:
        """The fit stream: the chain's STREAM_FIT of this generation, or one fixed stream."""
        s = as_stream(key)
        if self.init == "fixed":
            return Stream(jnp.asarray([0, FIXED_INIT_SEED], jnp.uint32), jnp.int32(0), STREAM_FIT)
        return s.sibling(STREAM_FIT)

    def _start(self, key, dtype):
        raise NotImplementedError

    def _summary(self, x, w):
        """What the loss reads of the weighted data, computed once per fit, outside the
        optimiser's loop (default: the points and their normalised weights)."""
        return x, w

    def _loss(self, net, summary, key):
        raise NotImplementedError

    def _optimise(self, key, data, weights, start) -> NeuralFit:
        x = data
        dtype = x.dtype
        w = jnp.ones(x.shape[:1], dtype) if weights is None else weights.astype(dtype)
        w = jnp.maximum(w, 0.0)
        w = w / jnp.sum(w)
        x = jnp.where(w[:, None] > 0, x, 0.0)  # empty slots may hold anything
        # the steps' noise (a VAE's latent draws): sub-stream 15 of the fit stream (the weights use 0..14)
        keys = jax.random.split(as_stream(key).sibling(STREAM_FIT).child(15).key(), self.steps)
        summary = self._summary(x, w)
        net, loss, norm = adam_fit(
            lambda p, k: self._loss(p, summary, k), start, self.steps, self.learning_rate.astype(dtype), keys
        )
        return NeuralFit(net, loss, norm)

    def fit(self, key, data, weights, frame=None) -> NeuralFit:
        return self._optimise(key, data, weights, self._start(self._fit_stream(key), data.dtype))

    def fit_warm(self, key, data, weights, start: NeuralFit) -> NeuralFit:
        if self.init != "warm":
            return self.fit(key, data, weights)
        return self._optimise(key, data, weights, start.net)


class NeuralDensity(_Neural):
    """An MLP softmax density on a regular grid over a box: p(cell k) proportional to
    exp(MLP(c_k)), c_k the cell's centre, uniform within a cell. Fitted by Adam on the
    weighted histogram's cross-entropy; sampling picks a cell and a uniform point in
    it. The network's smoothness is its function-approximation error: a tail cell's
    mass is tied to its neighbours' (Shumailov et al. 2024's third error source).

    Args:
        data: the truth, a :class:`~collapse_jax.Empirical` with 1 or 2 features.
        grid: cells per axis (static); the box is the pool's range widened by
            ``margin`` of its width on each side and shifted by 0.207 of a cell, so
            that no cell edge falls on lattice-valued data (points outside count in
            the edge cells).
        hidden: widths of the tanh hidden layers (static).
        steps: Adam steps per fit (static); learning_rate: Adam's (traced).
        init: ``"random"``, ``"fixed"`` or ``"warm"`` (module docstring).

    Metrics: ``tv_to_pool`` (total variation between the fitted cell masses and the
    pool's histogram, the truth), ``entropy`` (of the cell masses, nats),
    ``tail_mass`` (the fit's mass on the cells where the pool's histogram holds its
    lightest 5 %), and the held-out measures (``test_nll`` per point from the cell
    density).
    """

    grid: int = eqx.field(static=True)
    hidden: tuple[int, ...] = eqx.field(static=True)
    margin: float = eqx.field(static=True)
    low: Float[Array, " d"]
    width: Float[Array, " d"]
    centres: Float[Array, "c d"]
    pool_probs: Float[Array, " c"]
    tail_cells: Float[Array, " c"]

    def __init__(self, data, grid: int = 32, hidden=(32, 32), *, steps: int = 200, learning_rate: float = 0.03,
                 init: Init = "random", margin: float = 0.1):  # fmt: skip
        data = self._setup("NeuralDensity", data, steps, init, learning_rate)
        if data.dim > 2:
            raise ValueError(f"NeuralDensity: the data must have 1 or 2 features (a grid), got {data.dim}")
        self.grid = check_int("NeuralDensity: grid", grid, 2)
        self.hidden = tuple(check_int("NeuralDensity: hidden width", h, 1) for h in hidden)
        self.margin = float(check_positive("NeuralDensity", "margin", margin))
        pool = np.asarray(data.x, np.float64)
        lo, hi = pool.min(axis=0), pool.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        cell = span * (1.0 + 2.0 * self.margin) / self.grid
        # the box: the pool's range widened by margin * span, shifted down by an irrational share of a cell
        # so that no cell edge falls on the pool's extremes or on data measured on a lattice (a point on an
        # edge would fall on either side depending on the compiled program's rounding)
        low = lo - self.margin * span - EDGE_SHIFT * cell
        self.low = jnp.asarray(low, jnp.float32)
        self.width = jnp.asarray(cell, jnp.float32)
        axes = [low[j] + (np.arange(self.grid) + 0.5) * cell[j] for j in range(data.dim)]
        mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, data.dim)
        self.centres = jnp.asarray(mesh, jnp.float32)
        counts = np.bincount(np.asarray(self._cells(jnp.asarray(pool, jnp.float32))), minlength=mesh.shape[0])
        probs = counts / counts.sum()
        self.pool_probs = jnp.asarray(probs, jnp.float32)
        order = np.argsort(np.where(probs > 0, probs, np.inf), kind="stable")
        light = np.zeros(probs.size)
        light[order[np.cumsum(probs[order]) <= 0.05]] = 1.0
        self.tail_cells = jnp.asarray(light, jnp.float32)

    def _sizes(self) -> tuple[int, ...]:
        return (self.data.dim, *self.hidden, 1)

    def _cells(self, x: jax.Array) -> jax.Array:
        """The cell of every point (row-major over the axes), edge cells holding the outside."""
        idx = jnp.floor((x - self.low.astype(x.dtype)[None, :]) / self.width.astype(x.dtype)[None, :])
        idx = jnp.clip(idx, 0, self.grid - 1).astype(jnp.int32)
        d = x.shape[1]
        return jnp.ravel_multi_index(tuple(idx[:, j] for j in range(d)), (self.grid,) * d, mode="clip")

    def truth(self) -> jax.Array:
        return self.pool_probs

    def blank_fit(self) -> NeuralFit:
        z = jnp.zeros((), jnp.float32)
        return NeuralFit(mlp_zeros(self._sizes(), jnp.float32, out_bias=False), z, z)

    def _start(self, stream: Stream, dtype) -> MLPParams:
        return mlp_init(stream, self._sizes(), dtype, out_bias=False)

    def log_probs(self, net: MLPParams, dtype) -> jax.Array:
        """log p(cell) of every cell."""
        logits = mlp_apply(net, self.centres.astype(dtype))[:, 0]
        return logits - logsumexp(logits)

    def _summary(self, x, w):
        """The weighted histogram of the cells (one scatter per fit, not per step)."""
        return jnp.zeros((self.centres.shape[0],), x.dtype).at[self._cells(x)].add(w)

    def _loss(self, net, q, key):
        return -jnp.sum(q * self.log_probs(net, q.dtype))

    def sample(self, key, params: NeuralFit, n: int, frame=None) -> jax.Array:
        dtype = params.loss.dtype
        return self._draw(as_stream(key), self.log_probs(params.net, dtype), n)

    def _draw(self, s: Stream, logp: jax.Array, n: int) -> jax.Array:
        """``n`` points from the cell masses exp(``logp``): a cell, then a uniform point in it."""
        dtype = logp.dtype
        cell = inverse_cdf(s.child(0).uniform((n,), dtype), jnp.exp(logp))
        d = self.data.dim
        idx = jnp.stack(jnp.unravel_index(cell, (self.grid,) * d), axis=1).astype(dtype)
        jitter = s.child(1).uniform((n, d), dtype)
        return self.low.astype(dtype)[None, :] + (idx + jitter) * self.width.astype(dtype)[None, :]

    def metrics(self, key, params: NeuralFit) -> dict[str, jax.Array]:
        s = as_stream(key)
        dtype = params.loss.dtype
        logp = self.log_probs(params.net, dtype)
        p = jnp.exp(logp)
        p0 = self.pool_probs.astype(dtype)
        xt = self.data.x_test.astype(dtype)
        log_vol = jnp.sum(jnp.log(self.width.astype(dtype)))
        draws = self._draw(s.child(2), logp, HELDOUT_SAMPLES)  # the network evaluated once
        return {
            "tv_to_pool": 0.5 * jnp.sum(jnp.abs(p - p0)),
            "entropy": -jnp.sum(p * logp),
            "tail_mass": jnp.sum(p * self.tail_cells.astype(dtype)),
        } | heldout_metrics(self.data, draws, jnp.take(logp, self._cells(xt)) - log_vol)


class _Generator(_Neural):
    """A neural generator of points whose networks :meth:`_nets` builds (zeros for
    ``stream=None``); its ``truth()`` is the pool's mean (a summary: the data set itself
    is the truth)."""

    def _nets(self, stream: Stream | None, dtype):
        raise NotImplementedError

    def truth(self) -> jax.Array:
        return self.data.x.mean(axis=0)

    def blank_fit(self) -> NeuralFit:
        z = jnp.zeros((), jnp.float32)
        return NeuralFit(self._nets(None, jnp.float32), z, z)

    def _start(self, stream: Stream, dtype):
        return self._nets(stream, dtype)


class VAE(_Generator):
    """A variational autoencoder with Gaussian encoder and decoder (one tanh hidden
    layer each, a learned per-feature decoder variance), fitted by Adam on the
    negative ELBO with one reparameterised latent draw per point and step (Kingma and
    Welling 2014). It generates x = mu(z) + sigma * eps with z ~ N(0, I): the
    recursive VAE of Shumailov et al. (Nature 2024), here on a data set such as
    ``cj.Empirical.load("digits")`` (8 x 8 images, standardised pixels).

    Args:
        data: the truth, a :class:`~collapse_jax.Empirical`.
        latent: latent dimension (static); hidden: hidden width (static).
        steps, learning_rate, init: as :class:`NeuralDensity`.
        min_log_var: floor of the decoder's log variance (static; default -2, a
            noise sd of at least 0.37 in the data's units, standardised for the
            loaded sets), so a decoder cannot put infinite density on the training
            points.

    Metrics: ``test_nelbo`` (the negative ELBO per test point, an upper bound of the
    held-out negative log-likelihood, one latent draw per point), the held-out
    sample measures (``energy_distance``, ``precision``, ``coverage``,
    ``diversity``), and ``decoder_sd`` (the decoder's mean noise sd, which collapses).
    """

    latent: int = eqx.field(static=True)
    hidden: int = eqx.field(static=True)
    min_log_var: float = eqx.field(static=True)

    def __init__(self, data, latent: int = 4, hidden: int = 32, *, steps: int = 200, learning_rate: float = 0.01,
                 init: Init = "random", min_log_var: float = -2.0):  # fmt: skip
        self._setup("VAE", data, steps, init, learning_rate)
        self.latent = check_int("VAE: latent", latent, 1)
        self.hidden = check_int("VAE: hidden", hidden, 1)
        if not isinstance(min_log_var, (int, float)) or not math.isfinite(min_log_var):
            raise ValueError(f"VAE: min_log_var must be a finite number, got {min_log_var!r}")
        self.min_log_var = float(min_log_var)

    def _nets(self, stream: Stream | None, dtype):
        d, h, k = self.data.dim, self.hidden, self.latent
        enc, dec = (d, h, 2 * k), (k, h, 2 * d)
        if stream is None:
            return (mlp_zeros(enc, dtype), mlp_zeros(dec, dtype))
        return (mlp_init(stream, enc, dtype), mlp_init(stream, dec, dtype, first=len(enc) - 1))

    def _decode(self, dec, z):
        out = mlp_apply(dec, z)
        d = self.data.dim
        return out[..., :d], self.min_log_var + jax.nn.softplus(out[..., d:] - self.min_log_var)

    def elbo(self, nets, x: jax.Array, eps: jax.Array) -> jax.Array:
        """The ELBO of every point (nats) with the latent noise ``eps`` (points, latent)."""
        enc, dec = nets
        out = mlp_apply(enc, x)
        mu, log_var = out[:, : self.latent], out[:, self.latent :]
        z = mu + jnp.exp(0.5 * log_var) * eps
        mean, dlv = self._decode(dec, z)
        rec = -0.5 * jnp.sum((x - mean) ** 2 * jnp.exp(-dlv) + dlv + math.log(2 * math.pi), axis=1)
        kl = 0.5 * jnp.sum(jnp.exp(log_var) + mu * mu - 1.0 - log_var, axis=1)
        return rec - kl

    def _loss(self, nets, summary, key):
        x, w = summary
        eps = jax.random.normal(key, (x.shape[0], self.latent), x.dtype)
        return -jnp.sum(w * self.elbo(nets, x, eps))

    def sample(self, key, params: NeuralFit, n: int, frame=None) -> jax.Array:
        s = as_stream(key)
        dtype = params.loss.dtype
        z = s.child(0).normal((n, self.latent), dtype)
        mean, dlv = self._decode(params.net[1], z)
        return mean + jnp.exp(0.5 * dlv) * s.child(1).normal((n, self.data.dim), dtype)

    def metrics(self, key, params: NeuralFit) -> dict[str, jax.Array]:
        s = as_stream(key)
        dtype = params.loss.dtype
        xt = self.data.x_test.astype(dtype)
        elbo = self.elbo(params.net, xt, s.child(0).normal((xt.shape[0], self.latent), dtype))
        draws = self.sample(s.child(1), params, HELDOUT_SAMPLES)
        held = heldout_metrics(self.data, draws, elbo)
        held["test_nelbo"] = held.pop("test_nll")
        _, dlv = self._decode(params.net[1], jnp.zeros((1, self.latent), dtype))
        return held | {"decoder_sd": jnp.mean(jnp.exp(0.5 * dlv))}


class CouplingFlow(_Generator):
    """A normalising flow of affine coupling layers (RealNVP: Dinh, Sohl-Dickstein and
    Bengio 2017, "Density estimation using Real NVP"), fitted by Adam on the exact
    weighted negative log-likelihood. It generates x = T^-1(z) with z ~ N(0, I): the
    flows that Bertrand et al. (ICLR 2024) retrain on their own samples.

    The map T (data to latent) is ``layers`` couplings followed by an elementwise
    affine map. Coupling k keeps the coordinates j with j = k (mod 2) and moves the
    others: u_j -> u_j exp(s_j) + t_j, with (s, t) an MLP of the kept coordinates and
    s bounded by ``scale_bound`` tanh(. / scale_bound), so log abs(det dT/dx) is the sum of
    the s_j and every log-density is exact (no bound, unlike :class:`VAE`). The last
    layer of every coupling network starts at zero (the flow starts as the identity,
    as in Glow: Kingma and Dhariwal 2018), so the initialisation noise is in its
    hidden layers.

    Args:
        data: the truth, a :class:`~collapse_jax.Empirical` with at least 2 features
            (a coupling needs a coordinate to keep and one to move; for one feature use
            :class:`NeuralDensity`).
        layers: number of coupling layers (static, 1..15); hidden: the coupling
            networks' two tanh hidden widths (static).
        steps, learning_rate, init: as :class:`NeuralDensity`.
        scale_bound: bound of every log-scale s_j (static, > 0).

    Metrics: ``test_nll`` (exact, nats per test point) and the other held-out measures
    (``energy_distance``, ``precision``, ``coverage``, ``diversity``), and
    ``log_det`` (the mean over the test split of log abs(det dT/dx): the volume the flow
    gives the data; it grows as the fit contracts onto fewer points).
    """

    layers: int = eqx.field(static=True)
    hidden: int = eqx.field(static=True)
    scale_bound: float = eqx.field(static=True)

    def __init__(self, data, layers: int = 4, hidden: int = 32, *, steps: int = 200, learning_rate: float = 0.01,
                 init: Init = "random", scale_bound: float = 2.0):  # fmt: skip
        data = self._setup("CouplingFlow", data, steps, init, learning_rate)
        if data.dim < 2:
            raise ValueError(
                f"CouplingFlow: the data must have at least 2 features (a coupling keeps some and moves the others), "
                f"got {data.dim}; for one feature use cj.NeuralDensity"
            )
        self.layers = check_int("CouplingFlow: layers", layers, 1)
        if self.layers > MAX_COUPLINGS:
            raise ValueError(f"CouplingFlow: layers must be at most {MAX_COUPLINGS}, got {layers}")
        self.hidden = check_int("CouplingFlow: hidden", hidden, 1)
        self.scale_bound = float(check_positive("CouplingFlow", "scale_bound", scale_bound))

    def _sizes(self) -> tuple[int, ...]:
        d = self.data.dim
        return (d, self.hidden, self.hidden, 2 * d)

    def _kept(self, k: int, dtype) -> jax.Array:
        """Coupling k's mask: 1 on the coordinates it keeps (j = k mod 2)."""
        return (jnp.arange(self.data.dim) % 2 == k % 2).astype(dtype)

    def _nets(self, stream: Stream | None, dtype):
        d, sizes = self.data.dim, self._sizes()
        if stream is None:
            couplings = tuple(mlp_zeros(sizes, dtype) for _ in range(self.layers))
        else:
            # coupling k from sub-stream k of the fit stream (its layers from that stream's children);
            # the last layer zero: the flow starts as the identity
            couplings = tuple(
                eqx.tree_at(
                    lambda m: m.weights[-1], mlp_init(stream.child(k), sizes, dtype), jnp.zeros(sizes[-2:], dtype)
                )
                for k in range(self.layers)
            )
        return couplings, jnp.zeros((d,), dtype), jnp.zeros((d,), dtype)

    def _shift_scale(self, net: MLPParams, kept: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(s, t) of one coupling at u (zero on the kept coordinates)."""
        d = self.data.dim
        h = mlp_apply(net, u * kept[None, :])
        b = self.scale_bound
        moved = (1.0 - kept)[None, :]
        return b * jnp.tanh(h[:, :d] / b) * moved, h[:, d:] * moved

    def to_latent(self, nets, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """T(x) and log abs(det dT/dx) of every point (x: (points, d))."""
        couplings, loc, log_scale = nets
        u, log_det = x, jnp.zeros(x.shape[:1], x.dtype)
        for k, net in enumerate(couplings):
            s, t = self._shift_scale(net, self._kept(k, x.dtype), u)
            u = u * jnp.exp(s) + t
            log_det = log_det + jnp.sum(s, axis=1)
        z = (u - loc[None, :]) * jnp.exp(-log_scale)[None, :]
        return z, log_det - jnp.sum(log_scale)

    def from_latent(self, nets, z: jax.Array) -> jax.Array:
        """T^-1(z): the inverse map, the couplings undone in reverse order."""
        couplings, loc, log_scale = nets
        u = z * jnp.exp(log_scale)[None, :] + loc[None, :]
        for k in reversed(range(len(couplings))):
            s, t = self._shift_scale(couplings[k], self._kept(k, z.dtype), u)  # the kept coordinates are unchanged
            u = (u - t) * jnp.exp(-s)
        return u

    def log_density(self, nets, x: jax.Array) -> jax.Array:
        """log p(x) of every point (nats): log N(T(x); 0, I) + log abs(det dT/dx)."""
        return self._log_density(*self.to_latent(nets, x))

    def _log_density(self, z: jax.Array, log_det: jax.Array) -> jax.Array:
        return -0.5 * jnp.sum(z * z, axis=1) - 0.5 * self.data.dim * math.log(2 * math.pi) + log_det

    def _loss(self, nets, summary, key):
        x, w = summary
        return -jnp.sum(w * self.log_density(nets, x))

    def sample(self, key, params: NeuralFit, n: int, frame=None) -> jax.Array:
        dtype = params.loss.dtype
        return self.from_latent(params.net, as_stream(key).child(0).normal((n, self.data.dim), dtype))

    def metrics(self, key, params: NeuralFit) -> dict[str, jax.Array]:
        s = as_stream(key)
        dtype = params.loss.dtype
        xt = self.data.x_test.astype(dtype)
        z, log_det = self.to_latent(params.net, xt)
        draws = self.sample(s.child(1), params, HELDOUT_SAMPLES)
        return heldout_metrics(self.data, draws, self._log_density(z, log_det)) | {"log_det": jnp.mean(log_det)}
