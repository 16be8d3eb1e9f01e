"""A finite data set as the truth: :class:`Empirical`, its loaders and held-out measures.

"Real" draws of a chain come from the data set's training pool instead of a
parametric truth, and a held-out test split, never drawn, scores every generation.
The families that accept ``data=`` (:class:`~collapse_jax.Gaussian`,
:class:`~collapse_jax.GMM`, :class:`~collapse_jax.KDE`,
:class:`~collapse_jax.Categorical`, :class:`~collapse_jax.GLM` and
:class:`~collapse_jax.Ridge` with features and labels, and the neural
:class:`~collapse_jax.NeuralDensity`, :class:`~collapse_jax.VAE` and
:class:`~collapse_jax.CouplingFlow`) take their truth from the training pool (the
pool's own fit: its moments, its mixture, its kernel smoothing, its label
frequencies, its regression), so their usual metrics measure the distance to the best model of the
data in the family, and add the held-out measures of :func:`heldout_metrics`.

**Which rows a chain draws** (THEORY.md section 18). Each chain (each node of an
interaction graph) reads the pool in its own random order, reshuffled every pass
(an "epoch"), and never reuses a row before every row has been used once:

* generation 0's original sample is the first ``n`` rows of the chain's order;
* fresh real data at generation g >= 1 (``m`` rows per generation, a regime's
  constant count) are the next ``m``: positions ``n + (g - 1) m, ...``;
* a position past the pool's end wraps into the next pass, a new random order, so a
  draw that straddles two passes can hold a row twice (at most ``m`` of its rows
  come from the new pass); within one pass a chain never repeats a row.

Draws on any other stream (a verifier's reference sample) are uniform with
replacement from the pool. Generation 0's sample is therefore a simple random
sample without replacement: its moments carry the finite-population correction
(P - n)/(P - 1), which the tests check.

Loaders read data sets that ship inside scikit-learn (no download):
:meth:`Empirical.load` with ``"digits"``, ``"iris"``, ``"wine"``,
``"breast_cancer"`` or ``"diabetes"`` (``pip install "collapse_jax[data]"``).
"""

from __future__ import annotations

import hashlib
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._rng import MAX_SUB, STREAM_REAL, Stream, as_stream

__all__ = [
    "DATASETS",
    "HELDOUT_METRICS",
    "HELDOUT_SAMPLES",
    "Empirical",
    "empirical_from_config",
    "heldout_metrics",
    "label_metrics",
]

DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")
NEIGHBOURS = 5  # k of the k-nearest-neighbour balls of precision / coverage (Naeem et al. 2020)
HELDOUT_SAMPLES = 256  # model draws per chain and generation for the sample-based measures
# a chain's order of the pool in pass e: the real-data stream's last sub-stream at "generation" e
# (families draw real points on sub-streams 0..16 of it, never this one)
ORDER_SUB = MAX_SUB - 1


class Empirical(eqx.Module):
    """A finite data set split into a training pool (what chains draw) and a
    held-out test split (what scores every generation).

    Args:
        x: features, shape (rows, d), or (rows,) for one feature; finite.
        y: optional labels or targets, shape (rows,); finite.
        test_fraction: share of the rows held out, in (0, 1); at least 2 rows on
            each side.
        split_seed: the split is a uniformly random one drawn from this seed (a
            threefry key on the host), so a study's split is recorded and fixed.
        standardize: centre and scale every feature by the training pool's mean and
            standard deviation (columns constant in the pool are dropped first,
            since no model of the pool can spread mass along them).
        name: a label for results and errors.

    Attributes: ``x`` / ``y`` (training pool), ``x_test`` / ``y_test``; ``rows``
    (pool size P), ``dim``; ``features`` (the original column of each kept feature).
    """

    x: jax.Array
    x_test: jax.Array
    y: jax.Array | None
    y_test: jax.Array | None
    name: str = eqx.field(static=True)
    test_fraction: float = eqx.field(static=True)
    split_seed: int = eqx.field(static=True)
    standardize: bool = eqx.field(static=True)
    features: tuple[int, ...] = eqx.field(static=True)
    digest: str = eqx.field(static=True)
    source: str | None = eqx.field(static=True)  # JSON {"dataset": name, ...} of a loaded set, else None
    # host-side constants of the held-out measures (test split only)
    _test_pair_mean: jax.Array  # an array, not a static float: another split never recompiles
    _test_radius: jax.Array

    def __init__(
        self,
        x,
        y=None,
        *,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        standardize: bool = False,
        name: str = "data",
        _source: dict | None = None,
    ):
        x = _as_matrix("x", x)
        rows = x.shape[0]
        if y is not None:
            y = np.asarray(y)
            if y.ndim != 1 or y.shape[0] != rows:
                raise ValueError(f"Empirical: y must have shape ({rows},) like x's rows, got {y.shape}")
            if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)):
                raise ValueError(f"Empirical: y must be finite numbers; got dtype {y.dtype} with non-finite values")
        if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.floating)):
            raise TypeError(f"Empirical: test_fraction must be a float in (0, 1), got {test_fraction!r}")
        if not 0.0 < float(test_fraction) < 1.0:
            raise ValueError(f"Empirical: test_fraction must lie in (0, 1), got {test_fraction}")
        if isinstance(split_seed, bool) or not isinstance(split_seed, (int, np.integer)) or split_seed < 0:
            raise ValueError(f"Empirical: split_seed must be an int >= 0, got {split_seed!r}")
        n_test = int(round(float(test_fraction) * rows))
        if n_test < 2 or rows - n_test < 2:
            raise ValueError(
                f"Empirical: {rows} rows with test_fraction={test_fraction} leave {rows - n_test} training and "
                f"{n_test} test rows; each side needs at least 2"
            )
        order = np.asarray(jax.random.permutation(jax.random.key(int(split_seed)), rows))
        test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
        xtr, xte = x[train_rows], x[test_rows]
        features = tuple(range(x.shape[1]))
        if standardize:
            sd = xtr.std(axis=0)
            keep = sd > 0
            if not np.any(keep):
                raise ValueError("Empirical: every feature is constant in the training pool")
            features = tuple(int(i) for i in np.flatnonzero(keep))
            mu = xtr[:, keep].mean(axis=0)
            xtr = (xtr[:, keep] - mu) / sd[keep]
            xte = (xte[:, keep] - mu) / sd[keep]
        self.x = jnp.asarray(xtr, jnp.float32)
        self.x_test = jnp.asarray(xte, jnp.float32)
        self.y = None if y is None else jnp.asarray(y[train_rows])
        self.y_test = None if y is None else jnp.asarray(y[test_rows])
        self.name = str(name)
        self.test_fraction = float(test_fraction)
        self.split_seed = int(split_seed)
        self.standardize = bool(standardize)
        self.features = features
        h = hashlib.sha256(np.ascontiguousarray(x).tobytes())
        if y is not None:
            h.update(np.ascontiguousarray(y).tobytes())
        self.digest = h.hexdigest()[:16]
        self.source = None if _source is None else json.dumps(_source, sort_keys=True)
        dist = np.asarray(_distances(jnp.asarray(xte, jnp.float32), jnp.asarray(xte, jnp.float32)), np.float64)
        t = dist.shape[0]
        self._test_pair_mean = jnp.asarray(dist.sum() / (t * (t - 1)), jnp.float32)
        k = min(NEIGHBOURS, t - 1)
        self._test_radius = jnp.asarray(np.sort(dist, axis=1)[:, k], jnp.float32)  # column 0 is the point itself

    # ------------------------------------------------------------------ loaders
    @classmethod
    def load(
        cls,
        name: str,
        *,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        standardize: bool = True,
        features=None,
    ) -> Empirical:
        """A data set that ships inside scikit-learn (no download).

        ``"digits"`` (1797 8x8 images, 64 pixels in 0..16, labels 0-9), ``"iris"``
        (150 x 4, 3 species), ``"wine"`` (178 x 13, 3 cultivars), ``"breast_cancer"``
        (569 x 30, 2 classes), ``"diabetes"`` (442 x 10, a continuous target).
        ``features``: a list of column indices to keep (e.g. ``[0, 2]`` for a 2-D
        view). ``standardize`` (default ``True``): see the class.
        """
        if name not in DATASETS:
            raise ValueError(f"Empirical.load: name must be one of {DATASETS}, got {name!r}")
        try:
            import sklearn.datasets
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                'Empirical.load reads data sets shipped with scikit-learn: pip install "collapse_jax[data]"'
            ) from err
        bunch = getattr(sklearn.datasets, f"load_{name}")()
        x = np.asarray(bunch.data, np.float64)
        if features is not None:
            cols = np.asarray(features)
            if cols.ndim != 1 or cols.size == 0 or not np.issubdtype(cols.dtype, np.integer):
                raise ValueError(
                    f"Empirical.load: features must be a non-empty list of column indices, got {features!r}"
                )
            if cols.min() < 0 or cols.max() >= x.shape[1] or len(set(cols.tolist())) != cols.size:
                raise ValueError(
                    f"Empirical.load: features must be distinct columns in [0, {x.shape[1]}) of {name!r}, "
                    f"got {features!r}"
                )
            x = x[:, cols]
        source = {
            "dataset": name,
            "test_fraction": float(test_fraction),
            "split_seed": int(split_seed),
            "standardize": bool(standardize),
            "features": None if features is None else [int(c) for c in features],
        }
        return cls(
            x,
            np.asarray(bunch.target),
            test_fraction=test_fraction,
            split_seed=split_seed,
            standardize=standardize,
            name=name,
            _source=source,
        )

    # ------------------------------------------------------------------ facts
    @property
    def rows(self) -> int:
        """Rows in the training pool (P)."""
        return int(self.x.shape[0])

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])

    @property
    def num_labels(self) -> int:
        """Number of distinct integer labels 0..L-1 (labels must be such integers)."""
        if self.y is None:
            raise ValueError(f"Empirical {self.name!r}: no labels (y) were given")
        both = np.concatenate([np.asarray(self.y), np.asarray(self.y_test)])
        if not np.all(both == np.round(both)) or both.min() < 0:
            raise ValueError(f"Empirical {self.name!r}: labels must be integers 0, 1, ..., got values like {both[:5]}")
        return int(both.max()) + 1

    def describe(self) -> dict:
        """JSON form stored with results: a loaded set rebuilds from it; a user's arrays
        are named by a digest of their bytes (rebuild them with the same arrays)."""
        if self.source is not None:
            return json.loads(self.source)
        return {
            "arrays": self.name,
            "rows": self.rows + int(self.x_test.shape[0]),
            "sha256_16": self.digest,
            "test_fraction": self.test_fraction,
            "split_seed": self.split_seed,
            "standardize": self.standardize,
        }

    def check_size(self, owner: str, n: int) -> None:
        """Raise unless a chain can draw ``n`` distinct rows (n <= P)."""
        if n > self.rows:
            raise ValueError(
                f"{owner}: n={n} points per generation but the data set {self.name!r} has only {self.rows} training "
                f"rows (test_fraction={self.test_fraction}); use n <= {self.rows}"
            )

    # ------------------------------------------------------------------ draws
    def draw_rows(self, key, m: int, first: int | None = None) -> jax.Array:
        """Pool row indices of ``m`` real points (the module's rule). ``first``: the
        generation-0 sample size n of the run (default ``m``)."""
        stream = as_stream(key, STREAM_REAL)
        rows = self.rows
        if stream.s != STREAM_REAL:
            u = stream.uniform((m,), jnp.float32)
            return jnp.minimum((u * rows).astype(jnp.int32), rows - 1)
        if m > rows:
            raise ValueError(f"Empirical.draw_rows: m={m} real points exceed the pool's {rows} rows")
        n0 = m if first is None else int(first)
        g = stream.g.astype(jnp.int32)
        start = jnp.where(g == 0, 0, n0 + (g - 1) * m)
        pos = start + jnp.arange(m, dtype=jnp.int32)
        epoch0 = start // rows
        orders = jnp.stack([self._order(stream, epoch0), self._order(stream, epoch0 + 1)])
        within = pos - epoch0 * rows  # in [0, 2 P)
        second = within >= rows
        return orders[second.astype(jnp.int32), jnp.where(second, within - rows, within)]

    def _order(self, stream: Stream, epoch) -> jax.Array:
        """The chain's random order of the pool in pass ``epoch`` (argsort of 32-bit words)."""
        s = Stream(stream.chain_key, epoch.astype(jnp.int32), STREAM_REAL, ORDER_SUB, stream.safe, None, stream.prng)
        return jnp.argsort(s.bits(self.rows)).astype(jnp.int32)

    def draw_x(self, key, m: int, first: int | None = None) -> jax.Array:
        """Features of ``m`` real points, shape (m, d)."""
        return jnp.take(self.x, self.draw_rows(key, m, first), axis=0)

    def draw_y(self, key, m: int, first: int | None = None) -> jax.Array:
        """Labels of ``m`` real points, shape (m,)."""
        if self.y is None:
            raise ValueError(f"Empirical {self.name!r}: no labels (y) to draw")
        return jnp.take(self.y, self.draw_rows(key, m, first))


# --------------------------------------------------------------------------- held-out measures
HELDOUT_METRICS = ("test_nll", "energy_distance", "precision", "coverage", "diversity")


def heldout_metrics(data: Empirical, samples: jax.Array, test_logpdf: jax.Array) -> dict[str, jax.Array]:
    """Per-chain measures of a fit against the held-out test split.

    ``samples``: (s, d) draws from the fit; ``test_logpdf``: the fit's log density
    (or log probability) at every test point.

    * ``test_nll``: -mean log p_fit(x_test), nats per point (+inf when a test point
      has zero density under a collapsed fit: counted, never dropped).
    * ``energy_distance``: 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely and Rizzo),
      X from the fit, Y from the data law: E|X - Y| over every (draw, test point)
      pair, E|X - X'| over the draws' consecutive pairs, E|Y - Y'| over every pair
      of distinct test points, so it is unbiased for the squared energy distance
      (0 when the fit is the data law; it can dip below 0 by chance).
    * ``precision``: share of the fit's draws inside some test point's 5-nearest-
      neighbour ball (Kynkaanniemi et al. 2019): the fit's mass on the data's support.
    * ``coverage``: share of test points whose 5-NN ball holds at least one draw of
      the fit (Naeem et al. 2020): how much of the data's support the fit still
      reaches. Collapse lowers it.
    * ``diversity``: mean distance between two draws of the fit over that between
      two test points (about 1 for the data law; 0 for a collapsed fit).
    """
    xt = data.x_test.astype(samples.dtype)
    d_xy = _distances(samples, xt)  # (s, T)
    # E|X - X'| from each draw and the next (cyclically): independent pairs, unbiased, O(s d)
    step = samples - jnp.roll(samples, 1, axis=0)
    mean_xx = jnp.mean(jnp.sqrt(jnp.sum(step * step, axis=1)))
    mean_xy = jnp.mean(d_xy)
    radius = data._test_radius.astype(samples.dtype)
    pair_mean = data._test_pair_mean.astype(samples.dtype)
    inside = d_xy <= radius[None, :]
    return {
        "test_nll": -jnp.mean(test_logpdf),
        "energy_distance": 2.0 * mean_xy - mean_xx - pair_mean,
        "precision": jnp.mean(jnp.any(inside, axis=1).astype(samples.dtype)),
        "coverage": jnp.mean(jnp.any(inside, axis=0).astype(samples.dtype)),
        "diversity": mean_xx / pair_mean,
    }


def label_metrics(data: Empirical, log_probs: jax.Array) -> dict[str, jax.Array]:
    """Held-out measures of a categorical fit of the labels: ``test_nll`` (nats per
    test label) and ``test_tv``, the total-variation distance to the test split's
    label frequencies."""
    if data.y_test is None:
        raise ValueError(f"label_metrics: the data set {data.name!r} has no labels")
    yt = data.y_test.astype(jnp.int32)
    freq = jnp.bincount(yt, length=log_probs.shape[0]).astype(log_probs.dtype) / yt.shape[0]
    return {
        "test_nll": -jnp.mean(jnp.take(log_probs, yt)),
        "test_tv": 0.5 * jnp.sum(jnp.abs(jnp.exp(log_probs) - freq)),
    }


def _distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """Euclidean distances between the rows of ``a`` and ``b`` (one matrix product)."""
    sq = jnp.sum(a * a, axis=1)[:, None] + jnp.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T
    return jnp.sqrt(jnp.maximum(sq, 0.0))


def _as_matrix(name: str, x) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"Empirical: {name} must be an array of numbers, got {type(x).__name__}") from err
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"Empirical: {name} must have shape (rows, d) or (rows,), got {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(
            f"Empirical: {name} has {int(bad.sum())} non-finite values (NaN or inf), the first at row {r}, column {c}; "
            "drop or impute them first"
        )
    return arr


def empirical_from_config(spec: dict) -> Empirical:
    """Rebuild a loaded data set from :meth:`Empirical.describe` (user arrays cannot be
    rebuilt from a description: a clear error says so)."""
    if "dataset" not in spec:
        raise ValueError(
            f"data: {spec.get('arrays', 'user arrays')!r} was built from your own arrays "
            f"(sha256 prefix {spec.get('sha256_16')}); pass data=cj.Empirical(x, y, ...) again to rebuild it"
        )
    rest = {k: v for k, v in spec.items() if k != "dataset"}
    return Empirical.load(spec["dataset"], **rest)
