"""Self-correction operators: move synthetic samples towards the real distribution before retraining.

Gillman et al. (2024, "Self-Correcting Self-Consuming Loops", Def. 4.1) define the idealised
correction of strength γ ≥ 0 of a model p_θ as the mixture

    π_γ p_θ = (p_θ + γ p_θ*) / (1 + γ),

p_θ* the best model in the class. Their Theorem 4.3 shows the loop's error contracts by a factor
ρ/(1 + γ) per generation. Config (``correction:``)::

    correction: {method: reference-mix, gamma: 1.0}

The engine calls ``corrector(synth (R, m, d), streams=...) -> (R, m, d)`` every generation g ≥ 1; in a
labelled loop (a conditional model trained on the source's labels) also ``labels=(R, m)``, the class each
sample was generated from: ``nearest-prototype`` with ``per_class`` then moves a sample towards the
nearest centroid *of its class*; the other operators that move points ignore the labels (each sample
keeps its label), and the mixing methods, which replace samples, are refused (``keeps_labels``).

Methods and how γ enters (t = γ / (1 + γ); ``gamma: .inf`` or ``strength: full`` give t = 1;
γ = 0 returns the batch itself, bit-identical, drawing nothing)
----------------------------------------------------------------------------------------------
* ``reference-mix``: Gillman's π_γ exactly in law: each sample is replaced, with probability t, by
  a draw from the reference — the source itself (``reference: source``) or a Gaussian fitted by
  maximum likelihood to ``n_reference`` real points per replicate (``reference: fitted``, the
  best Gaussian, i.e. p_θ* for the Gaussian family).
* ``histogram-mix``: Gillman et al.'s own toy-script correction (``exp_scripts/gaussian_toy_example.py``,
  ``RejectionSamplingCorrection``): the batch is replaced by m draws, by rejection sampling, from
  (1 − t)·h + t·p*, h the density of a ``bins``^d histogram of the batch (range: the batch's min to
  max per axis) and p* the source's Gaussian density; proposal N(μ*, s·Σ*) (s = ``proposal_scale``)
  with bound M = s^{d/2} = max p*/q. Their sampler accepts a candidate when f/(M q) > u, so its law is
  min(f, M q)/Z -- where h exceeds M q the density is clipped there -- and a point within one bin
  below the lower edge counts in the first bin (their ``int()`` truncates towards zero). We draw that
  same law with a tighter envelope (``autophagy.histogram_mix.HistogramMix``: derivation, tests). Unlike
  the other methods it also acts at γ = 0 (t = 0: a resample of the batch's histogram), as theirs does.
* ``nearest-prototype``: k-means centroids (``k``; per class with ``per_class`` on labelled
  sources) of ``n_reference`` real points per replicate; each sample moves towards its nearest centroid.
* ``knn-pull``: each sample moves towards its nearest point of a real reference set (``n_reference``).
* ``physics`` (projectile source): each trajectory moves towards its least-squares physical
  projection (``autophagy.data.projectile.Dynamics``).
* ``grid-projector`` (binomial-grid source): each image moves towards a clean c×c square
  re-rendered at its estimated position (the c×c window of largest total intensity).
* ``project``: a user projector ``projector: "pkg.mod:fn"``, ``fn(x (R, m, d)) -> (R, m, d)``.

For the deterministic operators P (all but reference-mix), ``mode`` says how γ is applied:
``interpolate`` (default) returns x + t (P(x) − x); for an affine projection P this scales the
distance to the valid set by exactly 1/(1 + γ) — Gillman's contraction factor. ``mix`` replaces
each sample by P(x) with probability t, i.e. π_γ with p_θ* read as the push-forward P#p_θ.
Reference sets are drawn once per run from the seed-tree node (generation −1, role
``"correction/reference"``) and cached.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import numpy as np
from pydantic import Field, PositiveInt, ValidationError

from .errors import ConfigError
from .histogram_mix import HistogramMix  # the sampler lives in its own module (long derivation)
from .options import Options
from .rng import Streams


class _Base(Options):
    method: str
    gamma: Optional[float] = Field(None, ge=0.0, allow_inf_nan=True, description="correction strength γ >= 0 (.inf: full)")
    strength: Optional[Literal["full"]] = Field(None, description="'full' = γ = ∞ (replace / project every sample)")

    def fraction(self) -> float:
        """t = γ / (1 + γ) (1 when γ = ∞ or strength: full)."""
        if self.strength == "full" and self.gamma is not None and not math.isinf(self.gamma):
            raise ConfigError("correction.strength", "full", f"either strength: full or a gamma, not both "
                              f"(gamma = {self.gamma} given; strength: full means gamma = .inf)")
        if self.strength == "full" or (self.gamma is not None and math.isinf(self.gamma)):
            return 1.0
        if self.gamma is None:
            raise ConfigError("correction.gamma", None, "a number >= 0 (or strength: full)")
        return self.gamma / (1.0 + self.gamma)


class _Geometric(_Base):
    mode: Literal["interpolate", "mix"] = Field("interpolate", description="x + t(P(x) − x), or P(x) with probability t")


class ReferenceMixOptions(_Base):
    method: Literal["reference-mix"]
    reference: Literal["source", "fitted"] = "source"
    n_reference: int = Field(1000, ge=2, description="real points per replicate for reference: fitted")


class HistogramMixOptions(_Base):
    method: Literal["histogram-mix"]
    bins: PositiveInt = Field(10, description="histogram bins per axis (Gillman et al.: 10)")
    proposal_scale: float = Field(2.0, gt=1.0, description="proposal N(μ*, s Σ*): s (Gillman et al.: 2)")


class PrototypeOptions(_Geometric):
    method: Literal["nearest-prototype"]
    k: PositiveInt = Field(8, description="k-means centroids (per class when per_class)")
    n_reference: int = Field(1000, ge=2, description="real points per replicate clustered once")
    per_class: bool = Field(False, description="cluster each class separately (labelled sources)")
    n_init: PositiveInt = Field(3, description="k-means restarts")


class KnnOptions(_Geometric):
    method: Literal["knn-pull"]
    n_reference: int = Field(1000, ge=1, description="real points per replicate drawn once")


class PhysicsOptions(_Geometric):
    method: Literal["physics"]


class GridOptions(_Geometric):
    method: Literal["grid-projector"]


class ProjectOptions(_Geometric):
    method: Literal["project"]
    projector: str = Field(..., description="import path 'pkg.mod:fn' of fn(x (R, m, d)) -> (R, m, d)")


def _reference_streams(streams: Streams, role: str = "correction/reference") -> Streams:
    """The run's once-only node for reference sets (independent of the generation)."""
    return Streams(streams.seed, streams.R, -1, role, streams.start)


class Corrector:
    """Shared plumbing: γ = 0 is the identity; ``interpolate`` / ``mix`` around a projector ``P``."""

    keeps_labels = True  # moves each sample (a labelled loop keeps its label); the mixing methods replace samples

    def __init__(self, opts: _Base, source):
        self.opts, self.source, self.t = opts, source, opts.fraction()
        self._cache: dict[tuple, Any] = {}

    def cached(self, streams: Streams, make: Callable[[Streams], Any]) -> Any:
        key = (streams.seed, streams.R, streams.start)
        if key not in self._cache:
            self._cache = {key: make(_reference_streams(streams))}
        return self._cache[key]

    def project(self, x: np.ndarray, streams: Streams) -> np.ndarray:
        raise NotImplementedError

    def project_labelled(self, x: np.ndarray, streams: Streams, labels: np.ndarray) -> np.ndarray:
        """``P(x)`` for samples with labels ``(R, m)``; label-blind operators ignore them."""
        return self.project(x, streams)

    def __call__(self, synth: np.ndarray, streams: Streams | None = None, labels: np.ndarray | None = None) -> np.ndarray:
        if self.t == 0.0:
            return synth
        x = np.asarray(synth, dtype=float)
        target = self.project(x, streams) if labels is None else self.project_labelled(x, streams, labels)
        if self.t == 1.0:
            return target
        if self.opts.mode == "mix":
            pick = streams.child("mix").uniform(x.shape[1]) < self.t
            return np.where(pick[..., None], target, x)
        return x + self.t * (target - x)


class ReferenceMix(Corrector):
    """Gillman's π_γ: each sample replaced by a reference draw with probability γ/(1+γ)."""

    keeps_labels = False

    def __call__(self, synth: np.ndarray, streams: Streams | None = None, labels=None) -> np.ndarray:
        if self.t == 0.0:
            return synth
        R, m, d = synth.shape
        if self.opts.reference == "source":
            ref = self.source.sample(m, streams.child("reference"))
        else:
            mean, root = self.cached(streams, self._fit)
            ref = mean[:, None, :] + streams.child("reference").normal(m, d) @ np.swapaxes(root, -1, -2)
        if self.t == 1.0:
            return np.asarray(ref, dtype=synth.dtype)
        pick = streams.child("mix").uniform(m) < self.t
        return np.where(pick[..., None], ref, synth)

    def _fit(self, streams: Streams):
        """MLE Gaussian of n_reference real points per replicate: mean (R, d), a covariance square root (R, d, d)."""
        x = np.asarray(self.source.sample(self.opts.n_reference, streams), dtype=float)
        mean = x.mean(1)
        c = x - mean[:, None, :]
        w, v = np.linalg.eigh(np.swapaxes(c, -1, -2) @ c / x.shape[1])
        return mean, v * np.sqrt(np.clip(w, 0.0, None))[:, None, :]


def _nearest(x: np.ndarray, points: np.ndarray, labels=None, point_labels=None) -> np.ndarray:
    """For each ``x (R, m, d)`` its nearest row of ``points (R, K, d)``: ``(R, m, d)`` (exact, chunked by replicate).
    With ``labels (R, m)`` and ``point_labels (R, K)`` only points of the sample's label count (any point when
    its label has none)."""
    out = np.empty_like(x)
    p_sq = (points ** 2).sum(-1)
    for r in range(x.shape[0]):
        d2 = p_sq[r][None, :] - 2.0 * x[r] @ points[r].T  # ||x||² omitted: same for every candidate
        if labels is not None:
            same = labels[r][:, None] == point_labels[r][None, :]
            d2 = np.where(same | ~same.any(1, keepdims=True), d2, np.inf)
        out[r] = points[r][d2.argmin(1)]
    return out


class NearestPrototype(Corrector):
    """Move samples towards their nearest k-means centroid of real data (sklearn KMeans, seeded per replicate)."""

    def __init__(self, opts: PrototypeOptions, source):
        super().__init__(opts, source)
        labelled = callable(getattr(source, "sample_labeled", None))
        if opts.per_class and not labelled:
            raise ConfigError("correction.per_class", True, "false: the source has no labels (sample_labeled)")
        if opts.k > opts.n_reference:
            raise ConfigError("correction.k", opts.k, f"at most correction.n_reference ({opts.n_reference}) centroids")

    def _centroids(self, streams: Streams) -> np.ndarray:
        import warnings

        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning
        from threadpoolctl import threadpool_limits

        o = self.opts
        if o.per_class:
            x, y = self.source.sample_labeled(o.n_reference, streams)
        else:
            x, y = self.source.sample(o.n_reference, streams), None
        x = np.asarray(x, dtype=float)
        seeds = [int(g.integers(2 ** 31 - 1)) for g in streams.child("kmeans").generators()]
        out, classes = [], []
        # tiny per-replicate problems: threads only add overhead; duplicate points (resampled
        # sources) may leave fewer distinct clusters than k, which is harmless here
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for r in range(x.shape[0]):
                names = [-1] if y is None else list(np.unique(y[r]))
                groups = [x[r]] if y is None else [x[r][y[r] == c] for c in names]
                cents = [KMeans(n_clusters=min(o.k, len(g)), n_init=o.n_init, random_state=seeds[r]).fit(g).cluster_centers_
                         for g in groups]
                out.append(np.concatenate(cents, axis=0))
                classes.append(np.concatenate([np.full(len(c), name) for c, name in zip(cents, names)]))
        K = max(len(c) for c in out)  # pad ragged (per-class) sets by repeating a centroid: nearest is unchanged
        pad = lambda a: np.concatenate([a, np.repeat(a[:1], K - len(a), 0)])  # noqa: E731
        return np.stack([pad(c) for c in out]), np.stack([pad(c) for c in classes])

    def project(self, x: np.ndarray, streams: Streams) -> np.ndarray:
        return _nearest(x, self.cached(streams, self._centroids)[0])

    def project_labelled(self, x: np.ndarray, streams: Streams, labels: np.ndarray) -> np.ndarray:
        """``per_class``: the nearest centroid of the sample's own class (Gillman et al.'s class-wise correction)."""
        if not self.opts.per_class:
            return self.project(x, streams)
        cents, classes = self.cached(streams, self._centroids)
        return _nearest(x, cents, labels, classes)


class KnnPull(Corrector):
    """Move samples towards their nearest real point (a reference set drawn once)."""

    def project(self, x: np.ndarray, streams: Streams) -> np.ndarray:
        ref = self.cached(streams, lambda s: np.asarray(self.source.sample(self.opts.n_reference, s), dtype=float))
        return _nearest(x, ref)


class Physics(Corrector):
    """Fit each trajectory's initial conditions by least squares and re-simulate (projectile source)."""

    def __init__(self, opts: PhysicsOptions, source):
        super().__init__(opts, source)
        from .data.projectile import Dynamics

        self.dynamics = Dynamics.from_info(source.info, "correction.method")

    def project(self, x: np.ndarray, streams: Streams) -> np.ndarray:
        return self.dynamics.project(x)


class GridProjector(Corrector):
    """Re-render a clean c×c square at each image's estimated position (binomial-grid source)."""

    def __init__(self, opts: GridOptions, source):
        super().__init__(opts, source)
        truth, shape = source.info.truth or {}, source.info.image_shape
        if source.info.kind != "image" or "cluster" not in truth or shape is None:
            raise ConfigError("correction.method", "grid-projector", "a binomial-grid source (data.source: binomial-grid)")
        self.c, self.shape = int(truth["cluster"]), tuple(shape)

    def project(self, x: np.ndarray, streams: Streams) -> np.ndarray:
        return render_square(locate_square(x, self.shape, self.c), self.shape, self.c)


def locate_square(x: np.ndarray, shape: tuple, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left ``(row, col)`` ``(R, m)`` of the c×c window with the largest pixel sum (summed-area table)."""
    H, W = shape
    img = np.asarray(x, dtype=float).reshape(*x.shape[:-1], H, W)
    s = np.zeros((*x.shape[:-1], H + 1, W + 1))
    s[..., 1:, 1:] = img.cumsum(-2).cumsum(-1)
    win = s[..., c:, c:] - s[..., :-c, c:] - s[..., c:, :-c] + s[..., :-c, :-c]  # (..., H-c+1, W-c+1)
    flat = win.reshape(*win.shape[:-2], -1).argmax(-1)
    return flat // (W - c + 1), flat % (W - c + 1)


def render_square(pos: tuple[np.ndarray, np.ndarray], shape: tuple, c: int) -> np.ndarray:
    """Images ``(..., H·W)`` of zeros with ones on the c×c square at top-left ``pos`` (rows, cols)."""
    row, col = pos
    H, W = shape
    rows = (np.arange(H) >= row[..., None]) & (np.arange(H) < row[..., None] + c)
    cols = (np.arange(W) >= col[..., None]) & (np.arange(W) < col[..., None] + c)
    return (rows[..., :, None] & cols[..., None, :]).reshape(*row.shape, H * W).astype(float)


class Project(Corrector):
    """A user projector by import path; its output shape is checked on every call."""

    def __init__(self, opts: ProjectOptions, source):
        super().__init__(opts, source)
        from .components import import_path

        self.fn = import_path(opts.projector, "correction.projector")
        if not callable(self.fn):
            raise ConfigError("correction.projector", opts.projector, "an import path to a callable fn(x (R, m, d)) -> (R, m, d)")

    def project(self, x: np.ndarray, streams: Streams) -> np.ndarray:
        out = np.asarray(self.fn(x), dtype=float)
        if out.shape != x.shape:
            raise ConfigError("correction.projector", self.opts.projector, f"a function returning the input's shape {x.shape}",
                              problem=f"returned shape {out.shape}; expected the input's shape {x.shape}")
        return out


METHODS: dict[str, tuple[type, type]] = {
    "reference-mix": (ReferenceMixOptions, ReferenceMix), "histogram-mix": (HistogramMixOptions, HistogramMix),
    "nearest-prototype": (PrototypeOptions, NearestPrototype),
    "knn-pull": (KnnOptions, KnnPull), "physics": (PhysicsOptions, Physics), "grid-projector": (GridOptions, GridProjector),
    "project": (ProjectOptions, Project),
}


def build(cfg: dict[str, Any], source, base_dir: Path = Path(".")) -> Corrector:
    """Validate a ``correction:`` block and return its corrector (see the module docstring)."""
    from .config import from_validation_error

    cfg = dict(cfg or {})
    method = cfg.get("method")
    if method not in METHODS:
        raise ConfigError("correction.method", method, "one of " + ", ".join(METHODS))
    opts_cls, cls = METHODS[method]
    try:
        opts = opts_cls.model_validate(cfg)
    except ValidationError as err:
        raise from_validation_error(err, "correction", opts_cls) from None
    opts.fraction()  # gamma or strength must be given
    return cls(opts, source)
