"""M-estimators fitted by optax inside the chains: logistic and Poisson regression
(He, Xu, Cheng 2025, arXiv 2502.18049, use such GLMs) and Huber location.

Each fit minimises a weighted mean loss (plus a ridge penalty for the GLMs) over an
equinox module holding the parameter, with an optax optimizer built inside ``fit``:
full-batch L-BFGS (``optax.lbfgs``, zoom line search) or a fixed number of gradient or
Adam steps. The final gradient norm and objective are recorded in ``diagnostics``:
a fixed step count is a budget, not a convergence guarantee, and the diagnostics say
how close each fit got.

Every generation draws a fresh design x ~ N(0, I_d); labels come from the previous
fit (synthetic) or from w* (real).
"""

from __future__ import annotations

import math
from typing import ClassVar, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._rng import STREAM_FIT, as_stream
from .._validate import as_float_array, check_int, check_number, check_positive
from ..data import Empirical
from ._ondata import OnData, as_data
from ._options import GLMKind, Optimizer
from ._protocol import LabelVerifiable, Located
from .ridge import RegressionData

OPTIMIZERS: tuple[Optimizer, ...] = get_args(Optimizer)
GLM_KINDS: tuple[GLMKind, ...] = get_args(GLMKind)
HELDOUT = 1000  # fresh real points behind the held-out loss
# probabilists' Gauss-Hermite rule: E f(Z), Z ~ N(0, 1), for the logistic class share
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(48)
_GH_WEIGHTS = _GH_WEIGHTS / math.sqrt(2 * math.pi)


class Coefficients(eqx.Module):
    """The fitted parameter as an equinox module (what the optimizer updates)."""

    w: Float[Array, " d"]


class MParams(eqx.Module):
    """One chain's fit: the parameter, the final gradient norm and objective value of
    the optimisation (the truth: its coefficients, with zeros)."""

    w: Float[Array, " d"]
    grad_norm: Float[Array, ""]
    objective: Float[Array, ""]


def _minimise(objective, w0, optimizer: str, steps: int, learning_rate):
    """Minimise ``objective(Coefficients)`` from ``w0`` with optax; returns the final
    module, gradient norm and objective value."""
    import optax

    params = Coefficients(w0)
    if optimizer == "lbfgs":
        opt = optax.lbfgs()
        value_and_grad = optax.value_and_grad_from_state(objective)

        def step(carry, _):
            p, state = carry
            value, grad = value_and_grad(p, state=state)
            updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=objective)
            return (optax.apply_updates(p, updates), state), None

    else:
        opt = optax.sgd(learning_rate) if optimizer == "gd" else optax.adam(learning_rate)
        grad_fn = jax.grad(objective)

        def step(carry, _):
            p, state = carry
            updates, state = opt.update(grad_fn(p), state, p)
            return (optax.apply_updates(p, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    value, grad = jax.value_and_grad(objective)(params)
    return params, jnp.sqrt(jnp.sum(grad.w * grad.w)), value


class _MEstimator(Located):
    """Shared machinery: validation of the optimizer settings, fit, metrics."""

    dim: int = eqx.field(static=True)
    optimizer: Optimizer = eqx.field(static=True)
    steps: int = eqx.field(static=True)
    learning_rate: Float[Array, ""]
    w_star: Float[Array, " d"]

    def _setup(self, owner, dim, w_star, default_scale, optimizer, steps, learning_rate, truth_name="w_star"):
        """Validate and store; the default truth has every coordinate default_scale / sqrt(d)."""
        d = check_int(f"{owner}: dim", dim, 1)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"{owner}: optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        self.steps = check_int(f"{owner}: steps", steps, 1)
        if optimizer != "lbfgs" and learning_rate is None:
            raise ValueError(f"{owner}: optimizer={optimizer!r} needs a learning_rate > 0")
        lr = 1.0 if learning_rate is None else check_positive(owner, "learning_rate", learning_rate)
        ws = np.full(d, default_scale / math.sqrt(d)) if w_star is None else as_float_array(owner, truth_name, w_star)
        if ws.ndim == 0:
            ws = np.full(d, float(ws))
        if ws.shape != (d,) or not np.all(np.isfinite(ws)):
            raise ValueError(f"{owner}: the truth must be a finite vector of shape ({d},), got {w_star!r}")
        self.dim, self.optimizer = d, optimizer
        self.learning_rate = jnp.asarray(lr, jnp.float32)
        self.w_star = jnp.asarray(ws, jnp.float32)

    def truth(self) -> MParams:
        z = jnp.zeros((), self.w_star.dtype)
        return MParams(self.w_star, z, z)

    def min_points(self) -> int:
        return 1

    def is_finite(self, params: MParams) -> jax.Array:
        return jnp.all(jnp.isfinite(params.w))

    def diagnostics(self, params: MParams) -> dict[str, jax.Array]:
        return {"grad_norm": params.grad_norm, "objective": params.objective}

    def location(self, params: MParams) -> jax.Array:
        return params.w

    def _loss(self, data, w):  # per point
        raise NotImplementedError

    def _penalty(self, w, dtype):
        return jnp.zeros((), dtype)

    def _start(self, data, weights):
        """Every fit starts from 0 (no information from the previous generation)."""
        return jnp.zeros((self.dim,), self._dtype(data))

    def _dtype(self, data):
        return data.y.dtype if isinstance(data, RegressionData) else data.dtype

    def fit(self, key, data, weights, frame=None) -> MParams:
        dtype = self._dtype(data)
        n = jax.tree.leaves(data)[0].shape[0]
        w = jnp.ones((n,), dtype) if weights is None else weights.astype(dtype)
        wn = w / jnp.sum(w)

        def objective(p: Coefficients):
            per = self._loss(data, p.w)
            return jnp.sum(jnp.where(wn > 0, wn * per, 0.0)) + self._penalty(p.w, dtype)

        p, gnorm, value = _minimise(
            objective, self._start(data, weights), self.optimizer, self.steps, self.learning_rate.astype(dtype)
        )
        return MParams(p.w, gnorm, value)


class GLM(OnData, _MEstimator, LabelVerifiable):
    """Logistic or Poisson regression refitted on its own labels.

    Args:
        kind: ``"logistic"`` (y ~ Bernoulli(sigmoid(x^T w))) or ``"poisson"``
            (y ~ Poisson(exp(x^T w))).
        dim: number of features d (static); x ~ N(0, I_d) fresh every generation.
        w_star: the truth (default: every coordinate 1 / sqrt(d) for logistic, 0.3 /
            sqrt(d) for Poisson, so that x^T w* has sd 1 or 0.3).
        penalty: lam >= 0 in lam / 2 ||w||^2 added to the mean negative
            log-likelihood (traced). Recursive synthetic labels drive logistic
            regression toward separation (||w|| -> infinity: the refitted model labels
            its own data more and more deterministically), where the unpenalised MLE
            does not exist; the default 1e-3 keeps every fit finite and is small next
            to the data's information at moderate n. ``penalty=0`` is allowed (the
            plain MLE): a separable data set then yields the optimizer's iterate after
            ``steps`` steps, its ``grad_norm`` in ``diagnostics`` showing it did not
            converge.
        optimizer: ``"lbfgs"`` (default), ``"gd"`` or ``"adam"`` (those two need
            ``learning_rate``); ``steps`` iterations (static, >= 1).
        intercept: whether the first feature is the constant 1 (static), so that
            ``w_star[0]`` is an intercept and the classes can be unbalanced; the
            other features are N(0, 1).
        data: a :class:`~collapse_jax.Empirical` with features and labels (0/1 for
            logistic, counts for Poisson) as the truth. Real points are rows of its
            training pool, features and labels (:mod:`collapse_jax.data`); a synthetic
            point keeps real features, drawn uniformly from the pool, and takes its
            label from the model ("real covariates, synthetic labels"). ``dim`` is the
            data's feature count (+1 with ``intercept``); ``w_star`` is this family's
            fit of the whole pool (``w_star`` and ``dim`` left unset); ``class_share``
            averages over the pool's features; adds ``test_logloss`` and
            ``test_accuracy`` (logistic) or ``test_deviance`` (Poisson) on the test
            split.

    Metrics: ``param_sq_error`` ||w - w*||^2, ``coef_norm`` ||w||, and the held-out
    loss on 1000 fresh real points: ``heldout_logloss`` (mean negative
    log-likelihood, nats) for logistic, ``heldout_deviance`` (mean Poisson deviance)
    for Poisson. Optional (logistic): ``class_share``, the model's share of label 1
    over the input law, E sigmoid(x^T w) (48-point Gauss-Hermite, exact to float
    precision), and ``share_drift``, its difference from the truth's share: the bias
    amplification of a recursive classifier.

    Label verification (synthesis ``verifier``): a synthetic label is good when it is
    the verifier model's most likely label (logistic: 1 when x^T w > 0; Poisson: the
    mode floor(exp(x^T w))).
    """

    kind: GLMKind = eqx.field(static=True)
    intercept: bool = eqx.field(static=True)
    penalty: Float[Array, ""]
    data: Empirical | None
    _data_first: int = eqx.field(static=True)
    optional_metrics: ClassVar[tuple[str, ...]] = ("class_share", "share_drift")

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"penalty": (0.0, math.inf)}
    data_truth_args: ClassVar[tuple[str, ...]] = ("w_star",)  # with data=: the fit of the pool

    def __init__(
        self,
        kind: GLMKind = "logistic",
        dim: int | None = None,
        *,
        w_star=None,
        penalty: float = 1e-3,
        optimizer: Optimizer = "lbfgs",
        steps: int = 30,
        learning_rate=None,
        intercept: bool = False,
        data=None,
    ):
        if kind not in GLM_KINDS:
            raise ValueError(f"GLM: kind must be one of {GLM_KINDS}, got {kind!r}")
        data = as_data("GLM", data)
        if data is not None:
            if w_star is not None:
                raise ValueError("GLM: with data=, the truth is the fit of the data; leave w_star unset")
            if data.y is None:
                raise ValueError(f"GLM: the data set {data.name!r} has no labels (y)")
            y = np.concatenate([np.asarray(data.y), np.asarray(data.y_test)])
            ok = np.isin(y, (0, 1)).all() if kind == "logistic" else bool(np.all((y >= 0) & (y == np.round(y))))
            if not ok:
                need = "labels in {0, 1}" if kind == "logistic" else "non-negative integer labels"
                raise ValueError(f"GLM: kind={kind!r} needs {need}; the data set {data.name!r} has values like {y[:5]}")
            want = data.dim + (1 if intercept else 0)
            if dim is not None and dim != want:
                raise ValueError(f"GLM: dim={dim} but the data set {data.name!r} gives {want} features")
            dim = want
        dim = 5 if dim is None else dim
        self._setup("GLM", dim, w_star, 1.0 if kind == "logistic" else 0.3, optimizer, steps, learning_rate)
        self.kind = kind
        lam = check_number("GLM", "penalty", penalty)
        if not (lam >= 0 and math.isfinite(lam)):
            raise ValueError(f"GLM: penalty must be a finite number >= 0, got {penalty!r}")
        self.penalty = jnp.asarray(lam, jnp.float32)
        if not isinstance(intercept, bool):
            raise TypeError(f"GLM: intercept must be True or False, got {intercept!r}")
        if intercept and self.dim < 1:
            raise ValueError("GLM: intercept=True needs dim >= 1 (the first feature is the constant)")
        self.intercept = intercept
        self.data = None
        self._data_first = 0
        if data is not None:
            self.data = data
            # the truth: this family's fit of the whole pool (a fixed key; L-BFGS needs none)
            pool = RegressionData(self._design(data.x), jnp.asarray(data.y, jnp.float32))
            self.w_star = self.fit(as_stream(jax.random.key(data.split_seed), STREAM_FIT), pool, None).w

    def _design(self, x: jax.Array) -> jax.Array:
        """A data set's features as this family's inputs (a leading constant with an intercept)."""
        x = x.astype(jnp.float32) if not jnp.issubdtype(x.dtype, jnp.floating) else x
        return jnp.concatenate([jnp.ones((x.shape[0], 1), x.dtype), x], axis=1) if self.intercept else x

    def sample_real(self, key, n: int, frame=None) -> RegressionData:
        """``n`` real points: from the truth, or rows (features and labels) of the data set."""
        if self.data is None:
            return self.sample(key, self.truth(), n, frame)
        data, dtype = self.data, self.w_star.dtype
        assert data.y is not None  # checked at construction
        rows = data.draw_rows(key, n, self._data_first or None)  # one draw: features and labels of the same rows
        X = self._design(jnp.take(data.x, rows, axis=0).astype(dtype))
        return RegressionData(X, jnp.take(data.y, rows).astype(dtype))

    def sample(self, key, params: MParams, n: int, frame=None) -> RegressionData:
        s = as_stream(key)
        dtype = params.w.dtype
        if self.data is not None:  # real features, uniform from the pool (not the real stream: with replacement)
            X = self._design(self.data.draw_x(s.child(0), n).astype(dtype))
        else:
            X = s.child(0).normal((n, self.dim), dtype)
            if self.intercept:
                X = X.at[:, 0].set(1.0)
        eta = X @ params.w
        u = s.child(1).uniform((n,), dtype)
        if self.kind == "logistic":
            y = (u < jax.nn.sigmoid(eta)).astype(dtype)
        else:
            y = jax.random.poisson(s.child(2).key(), jnp.exp(eta), shape=(n,)).astype(dtype)
        return RegressionData(X, y)

    def _loss(self, data: RegressionData, w):
        eta = data.X @ w
        if self.kind == "logistic":
            return jax.nn.softplus(eta) - data.y * eta
        return jnp.exp(eta) - data.y * eta

    def _penalty(self, w, dtype):
        return 0.5 * self.penalty.astype(dtype) * jnp.sum(w * w)

    def agrees(self, params: MParams, data: RegressionData, frame=None) -> jax.Array:
        """Whether each label is the model's most likely one (label verification)."""
        eta = data.X @ params.w.astype(data.X.dtype)
        if self.kind == "logistic":
            return data.y == (eta > 0).astype(data.y.dtype)
        return data.y == jnp.floor(jnp.exp(eta))

    def class_share(self, w: jax.Array) -> jax.Array:
        """E sigmoid(x^T w) over the input law: x^T w ~ N(w_0, ||w_1:||^2) with an
        intercept, N(0, ||w||^2) without (then exactly 1/2); with data, the mean over
        the pool's features."""
        if self.data is not None:
            return jnp.mean(jax.nn.sigmoid(self._design(self.data.x.astype(w.dtype)) @ w))
        loc = w[0] if self.intercept else jnp.zeros((), w.dtype)
        rest = w[1:] if self.intercept else w
        scale = jnp.sqrt(jnp.sum(rest * rest))
        nodes, weights = jnp.asarray(_GH_NODES, w.dtype), jnp.asarray(_GH_WEIGHTS, w.dtype)
        return jnp.sum(weights * jax.nn.sigmoid(loc + scale * nodes))

    def metrics(self, key, params: MParams) -> dict[str, jax.Array]:
        dtype = params.w.dtype
        err = params.w - self.w_star.astype(dtype)
        test = self.sample(as_stream(key), self.truth(), HELDOUT)
        eta = test.X @ params.w
        out = {"param_sq_error": jnp.sum(err * err), "coef_norm": jnp.sqrt(jnp.sum(params.w * params.w))}
        if self.kind == "logistic":
            out["heldout_logloss"] = jnp.mean(jax.nn.softplus(eta) - test.y * eta)
            share = self.class_share(params.w)
            out["class_share"] = share
            out["share_drift"] = share - self.class_share(self.w_star.astype(dtype))
        else:
            out["heldout_deviance"] = _deviance(test.y, jnp.exp(eta))
        if self.data is not None:
            xt = self._design(self.data.x_test.astype(dtype))
            yt = jnp.asarray(self.data.y_test).astype(dtype)
            eta_t = xt @ params.w
            if self.kind == "logistic":
                out["test_logloss"] = jnp.mean(jax.nn.softplus(eta_t) - yt * eta_t)
                out["test_accuracy"] = jnp.mean(((eta_t > 0).astype(dtype) == yt).astype(dtype))
            else:
                out["test_deviance"] = _deviance(yt, jnp.exp(eta_t))
        return out


def _deviance(y: jax.Array, mu: jax.Array) -> jax.Array:
    """Mean Poisson deviance of counts ``y`` under means ``mu``."""
    ylog = jnp.where(y > 0, y * jnp.log(jnp.where(y > 0, y, 1.0) / mu), 0.0)
    return jnp.mean(2 * (ylog - (y - mu)))


class HuberLocation(_MEstimator):
    """The Huber M-estimator of a location, refitted on its own samples.

    Data x ~ N(mu, I_d) (the model at its location; the truth at ``mean``). The fit
    minimises the weighted mean of sum_j rho_delta(x_j - mu_j), ``rho_delta(r) = r^2 / 2``
    for ``|r| <= delta`` and ``delta (|r| - delta / 2)`` beyond. ``delta`` large is the sample
    mean (the Gaussian MLE; a closed form the tests check the optimizer against);
    ``delta`` 1.345 has 95 % efficiency at the Normal. Every fit starts from 0.

    Args:
        dim: dimension (static). delta: > 0 (traced). mean: the truth's location.
        optimizer, steps, learning_rate: as :class:`GLM`.

    Metrics: ``mean_sq_error`` ||mu - mu_0||^2.
    """

    delta: Float[Array, ""]

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"delta": (1e-30, math.inf)}

    def __init__(
        self,
        dim: int = 1,
        delta: float = 1.345,
        *,
        mean=None,
        optimizer: Optimizer = "lbfgs",
        steps: int = 30,
        learning_rate=None,
    ):
        self._setup("HuberLocation", dim, mean, 0.0, optimizer, steps, learning_rate, truth_name="mean")
        self.delta = jnp.asarray(check_positive("HuberLocation", "delta", delta), jnp.float32)

    def config_arg(self, name: str):
        return self.w_star if name == "mean" else super().config_arg(name)

    def sample(self, key, params: MParams, n: int, frame=None) -> jax.Array:
        return params.w[None, :] + as_stream(key).normal((n, self.dim), params.w.dtype)

    def _loss(self, data, w):
        r = jnp.abs(data - w[None, :])
        delta = self.delta.astype(data.dtype)
        return jnp.sum(jnp.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta)), axis=1)

    def metrics(self, key, params: MParams) -> dict[str, jax.Array]:
        err = params.w - self.w_star.astype(params.w.dtype)
        return {"mean_sq_error": jnp.sum(err * err)}


class HuberRegression(_MEstimator):
    """Huber regression refitted on its own labels: y = x^T w + noise z, x ~ N(0, I_d)
    fresh every generation, the fit minimising the weighted mean Huber loss
    rho_delta(y - x^T w) (see :class:`HuberLocation`). A huge ``delta`` is OLS, whose
    chain law E||w_g - w*||^2 = (g + 1) noise^2 d / (n - d - 1) the tests check.

    Args:
        dim: number of features (static). delta: > 0 (traced). w_star: the truth
            (default ones). noise: label noise sd > 0 (traced). optimizer, steps,
            learning_rate: as :class:`GLM`.

    Metrics: ``param_sq_error`` ||w - w*||^2.
    """

    delta: Float[Array, ""]
    noise: Float[Array, ""]

    traced_bounds: ClassVar[dict[str, tuple[float, float]]] = {"delta": (1e-30, math.inf), "noise": (1e-30, math.inf)}

    def __init__(
        self,
        dim: int = 5,
        delta: float = 1.345,
        *,
        w_star=None,
        noise: float = 1.0,
        optimizer: Optimizer = "lbfgs",
        steps: int = 30,
        learning_rate=None,
    ):
        ones = 1.0 if w_star is None else w_star  # default truth: ones
        self._setup("HuberRegression", dim, ones, 0.0, optimizer, steps, learning_rate)
        self.delta = jnp.asarray(check_positive("HuberRegression", "delta", delta), jnp.float32)
        self.noise = jnp.asarray(check_positive("HuberRegression", "noise", noise), jnp.float32)

    def sample(self, key, params: MParams, n: int, frame=None) -> RegressionData:
        s = as_stream(key)
        dtype = params.w.dtype
        X = s.child(0).normal((n, self.dim), dtype)
        return RegressionData(X, X @ params.w + self.noise.astype(dtype) * s.child(1).normal((n,), dtype))

    def _loss(self, data: RegressionData, w):
        r = jnp.abs(data.y - data.X @ w)
        delta = self.delta.astype(r.dtype)
        return jnp.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta))

    def metrics(self, key, params: MParams) -> dict[str, jax.Array]:
        err = params.w - self.w_star.astype(params.w.dtype)
        return {"param_sq_error": jnp.sum(err * err)}
