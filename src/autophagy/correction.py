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
  same law with a tighter envelope (``HistogramMix``: derivation, tests). Unlike the other methods it
  also acts at γ = 0 (t = 0: a resample of the batch's histogram), as theirs does.
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


class HistogramMix(Corrector):
    """Draws from min(f, M q)/Z, f = (1 − t)·h + t·p*: the law of Gillman et al.'s rejection sampler (module
    docstring), drawn with a tighter envelope. Derivation:

    * Their sampler proposes x ~ q = N(μ*, s Σ*) and accepts when u < f(x)/(M q(x)), u ~ U[0, 1): an accepted
      point has density q · min(1, f/(M q)) / P(accept) = min(f, M q)/Z, Z = ∫ min(f, M q). That is f only
      where f ≤ M q: the histogram's dense cells are clipped to M q. With y = L*⁻¹(x − μ*) (Σ* = L* L*ᵀ) and
      M = s^{d/2}: M q(x) = exp(log_norm − |y|²/(2s)), p*(x) = exp(log_norm − |y|²/2), so p* ≤ M q.
    * h as their code evaluates it. The batch's histogram (numpy's conventions: range [lo, hi] per axis, the
      maximum in the last bin; a flat axis widened to lo ± 0.5) has densities h_c = n_c/(m Π w). A point is
      looked up by truncating rel = (x − lo)/w towards zero (their int()) and counts when 0 ≤ trunc(rel) < b
      on every axis; rel ∈ (−1, 0) truncates to −0.0, which passes. So cell c's box B_c is, per axis,
      (lo − w, lo + w) in the first bin (a 'phantom' strip one width below lo) and [lo + i w, lo + (i + 1) w)
      in bin i ≥ 1, and h = 0 at or past hi and at or below lo − w. The boxes are disjoint,
      |B_c| = Π w · 2^(axes where c is in the first bin), and ∫ h = Σ_c h_c |B_c| ≥ 1 (the strips' extra mass).
    * An envelope: min(a + b, c) ≤ a + min(b, c) for a ≥ 0, so min(f, M q)(x) ≤ t p*(x) + E_c on B_c (and t p*
      outside the boxes), E_c = min((1 − t) h_c, max of M q over B_c); the max is bounded by M q at the point of
      B_c nearest μ*, using |y|² ≥ λ_min(Σ*⁻¹)|x − μ*|² (exact when Σ* ∝ I). Masses are rounded up to whole
      multiples of δ = (t + Σ_c E_c |B_c|)/K, K = 16 (m + 1) (a sampling table, at most (m + 1)/K ≈ 6% looser):
      t' = δ⌈t/δ⌉ for the target and, sharing cell c's mass among its n_c points, δ⌈E_c|B_c|/(n_c δ)⌉ per point;
      E'_c = n_c δ⌈E_c|B_c|/(n_c δ)⌉/|B_c| ≥ E_c. So e(x) = t' p*(x) + E'_c (on B_c) ≥ min(f, M q)(x), a mixture:
      one table entry drawn uniformly gives the target (then x ~ p*) or a batch point (then x uniform in its
      cell's box). Accepting when u · e(x) < min(f(x), M q(x)) leaves the density e · min(f, M q)/e ∝ min(f, M q):
      the same law as theirs. Acceptance is Z/∫e instead of Z/M: about 0.65–0.95 instead of 0.05–0.5 for the
      preset's batches (d = 2, s = 2), and there are no normal draws at t = 0. u is the fractional part of the
      table draw (independent of the entry; 2^-44 resolution).

    Numbers differ from their sampler's (other candidates, streams ``propose`` and ``target``); the law does
    not: tests/test_correction.py keeps their sampler as the reference and checks both against min(f, M q)/Z by
    quadrature (χ² of cell counts) and against each other (means, covariances over replicates). Only the
    target's draws are looked up; a box's draw is judged by its box (one that rounds across the box's edge,
    probability ~1e-16, is still judged by it).
    """

    keeps_labels = False

    def __init__(self, opts: HistogramMixOptions, source):
        super().__init__(opts, source)
        truth = source.info.truth or {}
        if not truth.get("gaussian") or truth.get("mean") is None or truth.get("cov") is None:
            raise ConfigError("correction.method", "histogram-mix", "a source with a Gaussian truth (data.source: gaussian)")
        self.mu = np.asarray(truth["mean"], dtype=float).reshape(-1)
        cov = np.asarray(truth["cov"], dtype=float).reshape(self.mu.size, self.mu.size)
        d = self.mu.size
        if opts.bins ** d > 10 ** 6:
            raise ConfigError("correction.bins", opts.bins, f"at most {int(10 ** (6 / d))} bins per axis in {d} dimensions")
        self.root = np.linalg.cholesky(cov)
        self.inv_root_t = np.linalg.inv(self.root).T  # y = (x − μ*) @ inv_root_t
        self.standard = bool(np.array_equal(self.root, np.eye(d)) and not self.mu.any())  # then y = x exactly
        self.lam = 1.0 / np.linalg.eigvalsh(cov).max()  # the smallest eigenvalue of Σ*⁻¹
        self.log_norm = -0.5 * (d * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1])
        self.s = opts.proposal_scale
        self.log_M = 0.5 * d * math.log(self.s)  # max over x of p*(x) / q(x), at the mean
        self._codes: np.ndarray | None = None

    def _histogram(self, x: np.ndarray):
        """Axis-major: lower edges and bin widths (d, R), counts (R · bins^d, flat: replicate r's cells at
        r · bins^d), each point's bin per axis (d, R, m) and flat cell (R, m); numpy's conventions."""
        R, m, d = x.shape
        b = self.opts.bins
        xt = np.ascontiguousarray(x.transpose(2, 0, 1))  # (d, R, m): long inner loops for the per-axis work
        lo, hi = xt.min(axis=2), xt.max(axis=2)
        flat = hi == lo  # numpy's histogram: a zero-width range becomes (lo − 0.5, hi + 0.5)
        if flat.any():
            lo, hi = np.where(flat, lo - 0.5, lo), np.where(flat, hi + 0.5, hi)
        width = (hi - lo) / b
        idx = np.floor((xt - lo[..., None]) / width[..., None])
        np.clip(idx, 0, b - 1, out=idx)  # the maximum in the last bin
        idx = idx.astype(np.intp)
        cell = (np.arange(R) * b ** d)[:, None] + idx[0] * b ** (d - 1)
        for k in range(1, d):  # row-major over the axes
            cell += idx[k] * b ** (d - 1 - k)
        return lo, width, np.bincount(cell.ravel(), minlength=R * b ** d), idx, cell

    def _table(self, R: int, m: int) -> np.ndarray:
        """Entry codes → global point index r·m + j (r·m − 1: the target), for R·(m + 1) entries."""
        if self._codes is None or self._codes.size != R * (m + 1):
            self._codes = np.arange(R * (m + 1)) - np.repeat(np.arange(R), m + 1) - 1
        return self._codes

    def __call__(self, synth: np.ndarray, streams: Streams | None = None, labels=None) -> np.ndarray:
        x = np.asarray(synth, dtype=float)
        R, m, d = x.shape
        b, t, s, mu = self.opts.bins, self.t, self.s, self.mu
        lo, width, counts, idx, cell = self._histogram(x)
        scale = 1.0 / (m * width.prod(0))  # h_c = n_c · scale, per replicate
        # each point's cell box per axis (the first bin reaches one width below lo), its volume and E_c
        p_low, p_len, g2, vol = [], [], 0.0, 1.0
        for k in range(d):
            first = idx[k] == 0
            w = width[k, :, None]
            length = w * (1.0 + first)
            low = lo[k, :, None] + w * (idx[k] - first)
            gap = np.maximum(low - mu[k], 0.0) + np.maximum(mu[k] - (low + length), 0.0)  # from μ* to the box
            g2 = g2 + gap * gap
            vol = vol * length
            p_low.append(low.ravel())
            p_len.append(length.ravel())
        n_pt = counts[cell]  # (R, m): n_c of each point's cell
        E = np.minimum((1.0 - t) * scale[:, None] * n_pt, np.exp(self.log_norm - (0.5 * self.lam / s) * g2))
        share = E * vol / n_pt  # E_c |B_c| / n_c
        # the sampling table: per replicate, entry 0 the target, 1 + j batch point j, ⌈mass / δ⌉ copies each
        delta = (t + share.sum(1)) / (16 * (m + 1))
        if not (delta > 0).all():
            raise ValueError("histogram-mix: a batch whose cells carry no M q mass at t = 0 (all far from the target)")
        copies = np.empty((R, m + 1), dtype=np.intp)
        copies[:, 0] = np.ceil(t / delta)
        copies[:, 1:] = np.ceil(share / delta[:, None])
        length = copies.sum(1)
        start = np.cumsum(length) - length
        table = np.repeat(self._table(R, m), copies.ravel())
        e_pt = (n_pt * delta[:, None] * copies[:, 1:] / vol).ravel()  # E'_c of each point's cell
        f_pt = ((1.0 - t) * scale[:, None] * n_pt).ravel()  # (1 − t) h_c of each point's cell
        if t:  # target draws are looked up: the same per flat cell (0 where empty)
            env = np.zeros(counts.size)
            env[cell] = e_pt.reshape(R, m)
            dens = (counts.reshape(R, -1) * ((1.0 - t) * scale)[:, None]).ravel()
        norm = math.exp(self.log_norm)
        t_env = copies[:, 0] * delta * norm  # t' · exp(log_norm) per replicate
        inv_w = 1.0 / width
        # acceptance is about 0.7 or more for such batches: one chunk nearly always suffices (a constant of the
        # run, so a replicate's draws never depend on the others'); the few short replicates continue their streams
        chunk = int(m / 0.7 + 2.0 * math.sqrt(m) + 2)
        propose = streams.child("propose")  # per candidate: table entry (its fraction: the acceptance), d offsets
        target = streams.child("target") if t > 0 else None
        out = np.empty((d, R, m))
        have = np.zeros(R, dtype=np.int64)
        rows = np.arange(R)  # the replicates still short of m: every chunk is drawn for all, used by these
        while rows.size:
            u = propose.uniform(d + 1, chunk)
            z = target.normal(d, chunk) if target is not None else None
            if rows.size < R:
                u = u[rows]
                z = z[rows] if z is not None else None
            a = u[:, 0] * length[rows, None]
            pos = a.astype(np.intp)
            a -= pos  # the acceptance uniform
            np.minimum(pos, (length[rows] - 1)[:, None], out=pos)
            pos += start[rows, None]
            pt = np.take(table, pos)  # (rows, chunk): a global point index, below rows · m for the target
            if t:
                ti = np.flatnonzero(pt < (rows * m)[:, None])  # the target's entries
                np.maximum(pt, 0, out=pt)
            cand = []
            for k in range(d):
                c = np.take(p_len[k], pt)
                c *= u[:, k + 1]
                c += np.take(p_low[k], pt)  # a uniform point of the entry's box
                cand.append(c)
            f, e = np.take(f_pt, pt), np.take(e_pt, pt)  # a box's candidate is judged by its box
            if t:  # x = μ* + L* z for the target's entries, and their look-up of h: truncation towards zero,
                r_i = ti // chunk  # counted when 0 <= trunc(rel) < b (i.e. −1 < rel < b) on every axis
                r_t = rows[r_i] if rows.size < R else r_i
                zi = ti + r_i * ((d - 1) * chunk)  # z is (rows, d, chunk)
                zt = [np.take(z, zi + k * chunk) for k in range(d)]
                inside, at = True, r_t * b ** d
                for k in range(d):
                    xt = zt[k] if self.standard else mu[k] + sum(self.root[k, l] * zt[l] for l in range(k + 1))
                    np.put(cand[k], ti, xt)
                    rel = xt - np.take(lo[k], r_t)
                    rel *= np.take(inv_w[k], r_t)
                    inside = inside & (rel > -1) & (rel < b)
                    np.clip(rel, 0, b - 1, out=rel)
                    at = at + rel.astype(np.intp) * b ** (d - 1 - k)
                np.put(f, ti, np.take(dens, at) * inside)
                np.put(e, ti, np.take(env, at) * inside)
            y = cand if self.standard else \
                [sum((cand[l] - mu[l]) * self.inv_root_t[l, k] for l in range(d)) for k in range(d)]
            yy = y[0] * y[0]
            for k in range(1, d):
                yy += y[k] * y[k]
            mq = np.exp(-(0.5 / s) * yy)  # M q and p* over exp(log_norm)
            if t:
                p = mq * mq if s == 2.0 else np.exp(-0.5 * yy)
                f += (t * norm) * p
                p *= t_env[rows, None]
                e += p
            mq *= norm
            np.minimum(f, mq, out=f)
            ok = a * e < f  # (rows, chunk)
            rank = np.cumsum(ok, axis=1)
            if rows.size == R and rank[:, -1].min() >= m:  # the usual case: every replicate done in one chunk
                flat = np.flatnonzero(ok & (rank <= m))
                return np.stack([np.take(c, flat) for c in cand], axis=-1).reshape(R, m, d)
            rank += have[rows, None]  # the accepted candidate's slot in the output
            flat = np.flatnonzero(ok & (rank <= m))
            i, slot = rows[flat // chunk], rank.ravel()[flat] - 1
            for k in range(d):
                out[k, i, slot] = np.take(cand[k], flat)
            have[rows] = np.minimum(rank[:, -1], m)
            rows = rows[have[rows] < m]
            chunk = max(8, m // 2)
        return np.ascontiguousarray(out.transpose(1, 2, 0))


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
