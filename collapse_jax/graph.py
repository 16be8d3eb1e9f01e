"""Interaction graphs: several models refitted on each other's synthetic data
(Wu, Zhou, Su, "When Does Model Collapse Occur in Structured Interactive Learning?",
arXiv 2605.20151; the model and its laws: docs/THEORY.md section 7 and
:mod:`collapse_jax.theory.graph`).

Node i of a graph with K nodes refits, at generation g >= 1, on n_i points: r_i fresh
real ones and s_ij synthetic ones from each source j's generation-(g - 1) model, where
(r_i, s_i1, ..., s_iK) is the largest-remainder rounding of n_i (a_i, W_i1, ..., W_iK).
Every consumer draws its own sample from every source, and real samples are
independent across nodes. Generation 0: every node fits n_i real points.

A chain of a graph run is one draw of all K nodes' trajectories. Each (node, source)
pair has its own key derived from the chain's key; the chain's shared context (a
random truth w*, a fixed regression design) comes from the chain's key itself, so all
nodes of a chain estimate the same truth on the same inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._rng import root_key
from ._validate import as_float_array, check_int, check_number, check_seed
from .engine import compat
from .engine.simulate import simulate
from .families._protocol import AbstractFamily, fixed_design
from .pressures import split as split_synthesis
from .regimes import Accumulate, Replace
from .regimes.graph import GraphRegime
from .theory import graph as _tg

StarDirection = Literal["hub_to_spokes", "spokes_to_hub", "both"]
STAR_DIRECTIONS = get_args(StarDirection)
ROW_TOLERANCE = 1e-6


def _fraction_vector(name: str, value, k: int, owner: str) -> np.ndarray:
    arr = as_float_array(owner, name, value)
    if arr.ndim == 0:
        arr = np.full(k, float(arr))
    if arr.shape != (k,):
        raise ValueError(f"{owner}: {name} must be a number or a vector of length {k}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"{owner}: {name} must lie in [0, 1], got {arr.tolist()}")
    return arr


class InteractionGraph(eqx.Module):
    """K models (nodes) and who trains on whose synthetic data.

    ``weights[i, j]`` is the share of node i's training set drawn from node j's current
    model (an edge j -> i: i draws data from j), ``real_fraction[i]`` the share of
    fresh real data; every row satisfies a_i + sum_j W_ij = 1. Both are traced: a new
    graph with the same K (and schedule length) never recompiles.

    Time-varying graphs: ``weights`` of shape (T, K, K) (and ``real_fraction`` of shape
    (T, K), or (K,) or a scalar shared by every step) are a schedule applied
    cyclically, generation g >= 1 using step (g - 1) mod T; with T >= generations it is
    an arbitrary sequence. :meth:`schedule` builds one from several graphs.

    Args:
        weights: (K, K) or (T, K, K), nonnegative.
        real_fraction: a scalar, (K,) or (T, K) in [0, 1]; ``None`` (default):
            1 - the row sums of ``weights``.
    """

    weights: Float[Array, "t k k"]
    real_fraction: Float[Array, "t k"]

    def __init__(self, weights, real_fraction=None):
        w = as_float_array("InteractionGraph", "weights", weights)
        if w.ndim == 2:
            w = w[None]
        if w.ndim != 3 or w.shape[1] != w.shape[2]:
            raise ValueError(f"InteractionGraph: weights must have shape (K, K) or (T, K, K), got {np.shape(weights)}")
        t, k, _ = w.shape
        if k < 1 or t < 1:
            raise ValueError(f"InteractionGraph: the graph is empty (weights of shape {np.shape(weights)})")
        if not np.all(np.isfinite(w)):
            raise ValueError("InteractionGraph: weights must be finite")
        neg = np.argwhere(w < 0)
        if neg.size:
            s, i, j = neg[0]
            where = f"weights[{s}, {i}, {j}]" if t > 1 else f"weights[{i}, {j}]"
            raise ValueError(f"InteractionGraph: {where} = {float(w[s, i, j])!r} is negative; shares must be >= 0")
        rows = w.sum(axis=2)
        if real_fraction is None:
            a = 1.0 - rows
            if np.any(a < -ROW_TOLERANCE):
                s, i = np.argwhere(a < -ROW_TOLERANCE)[0]
                raise ValueError(
                    f"InteractionGraph: row {i} of weights sums to {rows[s, i]:.6g} > 1 (node {i} cannot draw more "
                    "than its whole training set from other models)"
                )
            a = np.clip(a, 0.0, 1.0)
        else:
            a = as_float_array("InteractionGraph", "real_fraction", real_fraction)
            if a.ndim <= 1:
                a = np.broadcast_to(_fraction_vector("real_fraction", a, k, "InteractionGraph"), (t, k))
            elif a.shape != (t, k):
                raise ValueError(
                    f"InteractionGraph: real_fraction must be a number, (K,) = ({k},) or (T, K) = ({t}, {k}), "
                    f"got shape {a.shape}"
                )
            else:
                for row in a:
                    _fraction_vector("real_fraction", row, k, "InteractionGraph")
            total = a + rows
            bad = np.argwhere(np.abs(total - 1) > ROW_TOLERANCE)
            if bad.size:
                s, i = bad[0]
                step = f" at step {s}" if t > 1 else ""
                raise ValueError(
                    f"InteractionGraph: node {i}{step}: real_fraction + sum of weights = {a[s, i]:.6g} + "
                    f"{rows[s, i]:.6g} = {total[s, i]:.6g}; each row must sum to 1"
                )
        self.weights = jnp.asarray(w, jnp.float32)
        self.real_fraction = jnp.asarray(a, jnp.float32)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def ring(cls, nodes: int, real_fraction=0.0, self_weight: float = 0.0) -> InteractionGraph:
        """Node i draws from node i - 1 (mod K), and a share ``self_weight`` of its
        synthetic data from itself."""
        k = check_int("InteractionGraph.ring: nodes", nodes, 1)
        a = _fraction_vector("real_fraction", real_fraction, k, "InteractionGraph.ring")
        sw = float(_fraction_vector("self_weight", self_weight, 1, "InteractionGraph.ring")[0])
        w = np.zeros((k, k))
        for i in range(k):
            w[i, (i - 1) % k] += (1 - a[i]) * (1 - sw)
            w[i, i] += (1 - a[i]) * sw
        return cls(w, a)

    @classmethod
    def star(cls, nodes: int, direction: StarDirection = "both", real_fraction=0.0) -> InteractionGraph:
        """Node 0 is the hub. ``"hub_to_spokes"``: every spoke draws from the hub, the
        hub from itself; ``"spokes_to_hub"``: the hub draws equally from every spoke,
        each spoke from itself; ``"both"``: the hub draws from the spokes and the spokes
        from the hub."""
        k = check_int("InteractionGraph.star: nodes", nodes, 2)
        if direction not in STAR_DIRECTIONS:
            raise ValueError(f"InteractionGraph.star: direction must be one of {STAR_DIRECTIONS}, got {direction!r}")
        a = _fraction_vector("real_fraction", real_fraction, k, "InteractionGraph.star")
        w = np.zeros((k, k))
        if direction == "hub_to_spokes":
            w[0, 0] = 1 - a[0]
        else:
            w[0, 1:] = (1 - a[0]) / (k - 1)
        for s in range(1, k):
            if direction == "spokes_to_hub":
                w[s, s] = 1 - a[s]
            else:
                w[s, 0] = 1 - a[s]
        return cls(w, a)

    @classmethod
    def complete(cls, nodes: int, real_fraction=0.0, self_loops: bool = True) -> InteractionGraph:
        """Every node draws equally from every node (itself included unless
        ``self_loops=False``)."""
        k = check_int("InteractionGraph.complete: nodes", nodes, 1)
        if not self_loops and k < 2:
            raise ValueError("InteractionGraph.complete: self_loops=False needs nodes >= 2")
        a = _fraction_vector("real_fraction", real_fraction, k, "InteractionGraph.complete")
        mask = np.ones((k, k)) - (0 if self_loops else np.eye(k))
        w = (1 - a)[:, None] * mask / mask.sum(axis=1, keepdims=True)
        return cls(w, a)

    @classmethod
    def chain(cls, nodes: int, real_fraction=0.0) -> InteractionGraph:
        """A line 0 -> 1 -> ... -> K - 1: node i >= 1 draws from node i - 1, node 0
        from itself."""
        k = check_int("InteractionGraph.chain: nodes", nodes, 1)
        a = _fraction_vector("real_fraction", real_fraction, k, "InteractionGraph.chain")
        w = np.zeros((k, k))
        w[0, 0] = 1 - a[0]
        for i in range(1, k):
            w[i, i - 1] = 1 - a[i]
        return cls(w, a)

    @classmethod
    def self_loops(cls, nodes: int, real_fraction=0.0) -> InteractionGraph:
        """K independent chains: every node draws only from itself."""
        k = check_int("InteractionGraph.self_loops: nodes", nodes, 1)
        a = _fraction_vector("real_fraction", real_fraction, k, "InteractionGraph.self_loops")
        return cls(np.diag(1 - a), a)

    @classmethod
    def random(
        cls,
        nodes: int,
        seed: int,
        density: float = 0.5,
        real_fraction=0.0,
        self_loops: bool = True,
        concentration: float | None = None,
    ) -> InteractionGraph:
        """Each edge j -> i present with probability ``density`` (``jax.random`` from
        ``seed``); a node left without a source draws from itself; a node's synthetic
        share is split over its sources equally, or, with ``concentration`` c, by a
        Dirichlet(c, ..., c) draw (small c gives tiny shares, which small n cannot
        realise: :meth:`counts` refuses a share that rounds to 0)."""
        k = check_int("InteractionGraph.random: nodes", nodes, 1)
        seed = check_seed("InteractionGraph.random: seed", seed)
        dens = float(_fraction_vector("density", density, 1, "InteractionGraph.random")[0])
        a = _fraction_vector("real_fraction", real_fraction, k, "InteractionGraph.random")
        if concentration is not None:
            c = check_number("InteractionGraph.random", "concentration", concentration)
            if not (c > 0 and np.isfinite(c)):
                raise ValueError(f"InteractionGraph.random: concentration must be > 0, got {concentration!r}")
        # the graph's randomness comes from jax.random (threefry) on the seed, like every draw here
        key_edges, key_split = jax.random.split(root_key(seed))
        edges = np.asarray(jax.random.uniform(key_edges, (k, k), jnp.float32)) < dens
        if not self_loops:
            np.fill_diagonal(edges, False)
        w = np.zeros((k, k))
        for i in range(k):
            src = np.flatnonzero(edges[i])
            if src.size == 0:
                src = np.array([i])
            if concentration is None:
                split = np.full(src.size, 1.0 / src.size)
            else:
                draw = jax.random.dirichlet(jax.random.fold_in(key_split, i), jnp.full(src.size, c, jnp.float32))
                split = np.asarray(draw, np.float64)
                split = split / split.sum()
            w[i, src] = (1 - a[i]) * split
        return cls(w, a)

    @classmethod
    def from_edges(cls, nodes: int, edges, real_fraction=0.0) -> InteractionGraph:
        """Edges ``(j, i)`` (node i draws from node j, equal shares) or ``(j, i, w)``
        (relative share w > 0); each node's synthetic share 1 - a_i is split over its
        in-edges in proportion to w. A node with 1 - a_i > 0 needs an in-edge."""
        k = check_int("InteractionGraph.from_edges: nodes", nodes, 1)
        a = _fraction_vector("real_fraction", real_fraction, k, "InteractionGraph.from_edges")
        raw = np.zeros((k, k))
        for e in edges:
            if len(e) not in (2, 3):
                raise ValueError(f"InteractionGraph.from_edges: an edge is (source, consumer[, weight]), got {e!r}")
            j, i = int(e[0]), int(e[1])
            wt = check_number("InteractionGraph.from_edges", "edge weight", e[2]) if len(e) == 3 else 1.0
            if not (0 <= i < k and 0 <= j < k):
                raise ValueError(f"InteractionGraph.from_edges: edge {e!r} names a node outside 0 .. {k - 1}")
            if not wt > 0:
                raise ValueError(f"InteractionGraph.from_edges: edge {e!r} has weight {wt}; weights must be > 0")
            raw[i, j] += wt
        w = np.zeros((k, k))
        for i in range(k):
            if a[i] < 1:
                if raw[i].sum() == 0:
                    raise ValueError(
                        f"InteractionGraph.from_edges: node {i} has real_fraction {a[i]:g} < 1 but no in-edge "
                        "(no source for its synthetic data)"
                    )
                w[i] = (1 - a[i]) * raw[i] / raw[i].sum()
        return cls(w, a)

    @classmethod
    def schedule(cls, graphs: Sequence[InteractionGraph]) -> InteractionGraph:
        """A time-varying graph: ``graphs[t]`` at generations g with (g - 1) mod T = t."""
        graphs = list(graphs)
        if not graphs or not all(isinstance(g, InteractionGraph) for g in graphs):
            raise ValueError("InteractionGraph.schedule: give a non-empty sequence of InteractionGraph")
        ks = {g.nodes for g in graphs}
        if len(ks) != 1:
            raise ValueError(f"InteractionGraph.schedule: every graph must have the same number of nodes, got {ks}")
        w = np.concatenate([np.asarray(g.weights, np.float64) for g in graphs])
        a = np.concatenate([np.asarray(g.real_fraction, np.float64) for g in graphs])
        return cls(w, a)

    # ------------------------------------------------------------------ host-side views
    @property
    def nodes(self) -> int:
        return int(self.weights.shape[1])

    @property
    def period(self) -> int:
        """Length T of the schedule (1 for a static graph)."""
        return int(self.weights.shape[0])

    def host(self) -> tuple[np.ndarray, np.ndarray]:
        """(weights (T, K, K), real_fraction (T, K)) as float64 NumPy arrays."""
        return np.asarray(self.weights, np.float64), np.asarray(self.real_fraction, np.float64)

    def counts(self, n) -> np.ndarray:
        """Integer sample counts (T, K, K + 1): per node [real, from node 0, ...,
        from node K-1], the largest-remainder rounding of n_i (a_i, W_i.) (ties to the
        lower source index). A positive share that rounds to 0 raises a ValueError
        naming the node, the share and n_i."""
        nv = node_sizes(n, self.nodes)
        w, a = self.host()
        shares = np.concatenate([a[:, :, None], w], axis=2)
        shares = shares / shares.sum(axis=2, keepdims=True)  # float32 storage: renormalise
        out = np.zeros(shares.shape, dtype=np.int64)
        for t in range(shares.shape[0]):
            for i in range(shares.shape[1]):
                exact = np.round(shares[t, i] * nv[i], 9)  # float32 storage: 0.3 * 10 is 3, not 2.99...
                base = np.floor(exact).astype(np.int64)
                rest = int(nv[i] - base.sum())
                order = np.lexsort((np.arange(exact.size), -(exact - base)))
                base[order[:rest]] += 1
                zero = np.flatnonzero((shares[t, i] > 0) & (base == 0))
                if zero.size:
                    s = int(zero[0])
                    src = "real data" if s == 0 else f"node {s - 1}"
                    step = f" at schedule step {t}" if shares.shape[0] > 1 else ""
                    raise ValueError(
                        f"simulate_graph: node {i}{step}: its share {shares[t, i, s]:.6g} from {src} rounds to 0 "
                        f"of n_{i} = {nv[i]} points; raise n_{i} to at least {int(np.ceil(0.5 / shares[t, i, s]))} "
                        "or drop the edge"
                    )
                out[t, i] = base
        return out

    def effective(self, n) -> tuple[np.ndarray, np.ndarray]:
        """(W, a) as the simulator realises them at sizes ``n``: counts / n_i."""
        c = self.counts(n).astype(np.float64)
        nv = node_sizes(n, self.nodes).astype(np.float64)
        return c[:, :, 1:] / nv[None, :, None], c[:, :, 0] / nv[None, :]

    def collapse_condition(self, regime=None, *, n=None, family=None) -> CollapseReport:
        """When does each node collapse? (docs/THEORY.md section 7.)

        Under Replace (default): the errors of every node stay bounded iff rho(W) < 1
        (for a schedule: of the one-period product); node i's error grows without
        bound iff it can reach, along draws-data-from edges, a closed communicating
        class without real data. With ``n`` (a scalar or per node), the weights are the
        realised ones (counts / n_i) and the known-variance growth rate per node is
        reported (in units of Sigma per generation: E||e_i||^2 grows by rate tr Sigma).
        With a ``Ridge`` family (fixed design), the rank condition: the real rows a
        node can reach must span R^d (real rows are the first r_j rows of the shared
        design, so that means max over reachable nodes of r_j >= d).

        Under ``Accumulate``: not derived (reported as such; simulation still works).
        """
        regime = Replace() if regime is None else regime
        if not isinstance(regime, (Replace, Accumulate)):
            raise ValueError(f"collapse_condition: regime must be Replace() or Accumulate(), got {regime!r}")
        k = self.nodes
        if n is not None:
            w_eff, a_eff = self.effective(n)
        else:
            w_eff, a_eff = self.host()
        if isinstance(regime, Accumulate):
            return CollapseReport(
                regime="Accumulate",
                derived=False,
                spectral_radius=float("nan"),
                closed_classes=[],
                real_free_classes=[],
                collapsing=[],
                growth_rate=None,
                rank_ok=None,
                explanation=["not derived for Accumulate nodes (errors can stay bounded even in closed classes)"] * k,
            )
        nv = None if n is None else node_sizes(n, k)
        pi, _ = _tg.one_period(w_eff, 1 if nv is None else nv)
        rho = _tg.spectral_radius(pi) ** (1.0 / w_eff.shape[0])
        closed = _tg.closed_classes(pi)
        row = pi.sum(axis=1)
        free = [c for c in closed if np.all(np.abs(row[c] - 1) < 1e-9)]
        r = _tg.reach(pi)
        collapsing = [i for i in range(k) if any(r[i, c].any() for c in free)]
        rates = _tg.growth_rates(w_eff, nv) if nv is not None else None
        rank_ok = None
        ridge = fixed_design(family)
        d = family.dim if ridge else None
        if ridge and nv is not None:
            real_rows = self.counts(nv)[:, :, 0].min(axis=0)
            rank_ok = [bool(max(real_rows[j] for j in np.flatnonzero(r[i])) >= d) for i in range(k)]
        lines = []
        for i in range(k):
            if i in collapsing:
                cls_i = [c for c in free if r[i, c].any()]
                where = " and ".join("{" + ", ".join(map(str, c)) + "}" for c in cls_i)
                inside = any(i in c for c in cls_i)
                text = (
                    f"collapses: it lies in the closed class {where}, which sees no real data"
                    if inside
                    else f"collapses: it draws (directly or not) from the closed real-free class {where}"
                )
                if rates is not None:
                    text += f"; known-variance error grows by {rates[i]:.4g} tr(Sigma) per generation"
            else:
                text = "bounded: every class it can reach sees real data"
                if rank_ok is not None and not rank_ok[i]:
                    rows_i = max(int(real_rows[j]) for j in np.flatnonzero(r[i]))
                    text = f"grows (Ridge, fixed design): the real rows it can reach ({rows_i}) do not span R^{d}"
            lines.append(text)
        return CollapseReport(
            regime="Replace",
            derived=True,
            spectral_radius=float(rho),
            closed_classes=closed,
            real_free_classes=free,
            collapsing=collapsing,
            growth_rate=rates,
            rank_ok=rank_ok,
            explanation=lines,
        )

    def describe(self) -> dict:
        w, a = self.host()
        return {"weights": w.tolist(), "real_fraction": a.tolist(), "nodes": self.nodes, "period": self.period}


@dataclasses.dataclass(frozen=True)
class CollapseReport:
    """What :meth:`InteractionGraph.collapse_condition` finds.

    Attributes:
        regime: "Replace" or "Accumulate"; ``derived`` False for the latter.
        spectral_radius: rho(W) (a schedule: rho(Pi)^(1/T), per generation).
        closed_classes: closed communicating classes (node lists).
        real_free_classes: those without real data.
        collapsing: nodes whose error grows without bound.
        growth_rate: known-variance growth per node per generation (units of tr
            Sigma), when ``n`` was given; 0 for bounded nodes.
        rank_ok: Ridge on a fixed design: whether the real rows a node reaches span R^d.
        explanation: one line per node.
    """

    regime: str
    derived: bool
    spectral_radius: float
    closed_classes: list
    real_free_classes: list
    collapsing: list
    growth_rate: np.ndarray | None
    rank_ok: list | None
    explanation: list

    @property
    def bounded(self) -> bool:
        return self.derived and not self.collapsing and (self.rank_ok is None or all(self.rank_ok))

    def __str__(self) -> str:
        if not self.derived:
            return f"{self.regime}: collapse condition not derived"
        head = f"{self.regime}: rho(W) = {self.spectral_radius:.4g}; real-free closed classes: {self.real_free_classes}"
        return "\n".join([head] + [f"  node {i}: {line}" for i, line in enumerate(self.explanation)])


def node_sizes(n, k: int) -> np.ndarray:
    """n as a length-K vector of ints >= 1 (a scalar is shared by every node)."""
    if isinstance(n, (int, np.integer)) and not isinstance(n, bool):
        check_int("n", n, 1)
        return np.full(k, int(n), dtype=np.int64)
    arr = np.asarray(n)
    if arr.shape != (k,):
        raise ValueError(f"simulate_graph: n must be an int or a vector of length K = {k}, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"simulate_graph: n must hold ints, got {arr.tolist()}")
    if np.any(arr < 1):
        raise ValueError(f"simulate_graph: every n_i must be >= 1, got {arr.tolist()}")
    return arr.astype(np.int64)


# --------------------------------------------------------------------------- entry point
def simulate_graph(
    family: AbstractFamily,
    graph: InteractionGraph,
    *,
    n,
    generations: int,
    chains: int,
    seed: int = 0,
    regime=None,
    synthesis=None,
    **kwargs,
):
    """Run ``chains`` independent copies of a graph of K models of ``family``.

    Args:
        family: any family (Gaussian, Ridge, GMM, Categorical, KDE); every node uses it.
        graph: an :class:`InteractionGraph`.
        n: points per node per generation: an int, or a length-K vector (n_i).
        regime: ``Replace()`` (default) or ``Accumulate()`` at every node (Accumulate
            needs a family with sufficient statistics: Gaussian, Ridge, Categorical).
        synthesis: how every node's model generates the synthetic data other nodes
            (and itself) draw, e.g. ``cj.Synthesis(temperature=0.9)``; a
            ``cj.Pressured`` family is the same. Its metrics (``accept_rate``,
            ``shortfall`` with filters) are reported per node.
        **kwargs: as :func:`collapse_jax.simulate` (keep, keep_chains, metrics,
            thresholds, max_memory, dtype, progress, chunk_size, checkpoint,
            sweep). A sweep names traced fields of the family or the synthesis
            (``{"lam": [0, 0.1]}``, ``{"temperature": [0.8, 1.0]}``) and runs every
            value in one compiled program, every node sharing it; a new W is a new
            call (it does not recompile).

    Returns:
        A :class:`collapse_jax.Result` whose metrics have shape
        (chains, generations + 1, node, ...) (dim ``node``), plus ``homogenisation``
        (mean over node pairs of the squared distance between their location
        parameters: mu for the Gaussian, w for Ridge) when K >= 2.

    Ridge on a graph (fixed design): every node of a chain shares the chain's design
    (n_max rows; node i uses its first n_i) and w*; node i's rows are partitioned in
    order: the first r_i get real labels X w* + noise, the next s_i0 labels from node
    0's model, and so on. Weights then act as matrices M_ij = (X_i^T X_i)^-1
    X_Sij^T X_Sij (docs/THEORY.md section 7), and a node stays bounded only if the real
    rows it can reach span R^d (see :meth:`InteractionGraph.collapse_condition`).
    On a fresh design every node draws its own inputs every generation.
    """
    if not isinstance(graph, InteractionGraph):
        raise TypeError(f"simulate_graph: graph must be a cj.InteractionGraph, got {graph!r}")
    family, synthesis = split_synthesis(family, synthesis, "simulate_graph")
    regime = Replace() if regime is None else regime
    compat.check_graph(family, regime, synthesis, family.is_exact)
    k = graph.nodes
    sizes = node_sizes(n, k)
    accumulate = isinstance(regime, Accumulate)
    small = [i for i in range(k) if sizes[i] < family.min_points()]
    if small:
        i = small[0]
        raise ValueError(
            f"simulate_graph: n_{i} = {sizes[i]} is too small for {type(family).__name__}: each fit needs n >= "
            f"{family.min_points()}"
        )
    counts = graph.counts(sizes)
    regime = GraphRegime(
        jnp.asarray(counts, jnp.int32), graph, "accumulate" if accumulate else "replace", tuple(int(x) for x in sizes)
    )
    return simulate(
        family,
        regime,
        synthesis=synthesis,
        n=int(sizes.max()),
        generations=generations,
        chains=chains,
        seed=seed,
        **kwargs,
    )
