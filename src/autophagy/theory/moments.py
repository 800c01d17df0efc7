"""Exact first- and second-moment propagation for moment-matching families, every loop policy.

What it predicts
----------------
For a family whose fitted "location" is the training mean and whose fitted spread is a fixed
multiple of the training scatter, the expected recorded metrics

* ``E||μ_g − μ*||²``  (``param.mean_sq_error``) and
* ``E tr Σ_g``        (``param.trace_cov``; for the KDE the pool's 1/n covariance plus h²·d)

are *linear* functionals of expected inner products of zero-mean random vectors, and those can be
propagated exactly, generation by generation, for any policy (replace, augment, fresh,
accumulate, accumulate-subsample), ``synthetic_from: last | all``, sampling bias λ and
Gillman et al.'s ``reference-mix`` correction. Nothing here needs the source to be Gaussian: only
its mean μ* and the trace of its covariance tr Σ* enter. This is the moment method behind MAD §3.1
and §5 (Alemohammad et al. 2023) and Bertrand et al.'s (2024) Gaussian warm-up, written once for
all loops. The general bookkeeping below is derived here.

Method (derived here)
---------------------
Every random vector that matters is a mean error: the real set's ``x̄_r − μ*``, a fresh batch's,
a synthetic batch's, a model's ``μ_g − μ*``. Each is written as a deterministic linear combination
of *innovations*: zero-mean vectors ξ_i with E[ξ_i | everything drawn before] = 0. Innovations
are therefore pairwise uncorrelated and E⟨a, b⟩ = Σ_i a_i b_i E||ξ_i||² (``Gram``).

* A real batch of n points has mean error = a new innovation with E||ξ||² = tr Σ*/n and
  E tr(scatter) = (n − 1) tr Σ*.
* A synthetic batch of m points, each drawn independently from a mixture Σ_k w_k q_k of models
  (the last model; or MAD's ``synthetic_from: all``, uniform over all earlier models; or the
  ``reference-mix`` correction, which swaps in the reference with probability t = γ/(1+γ)), where
  q_k has mean error e_k and covariance trace s_k: conditionally on the past its points are iid
  with mean ē = Σ w_k e_k and covariance trace C = Σ w_k s_k + Σ w_k ||e_k||² − ||ē||². Hence
  batch mean = ē + ξ with E||ξ||² = E C / m and E tr(scatter) = (m − 1) E C.
* Concatenated groups j (sizes n_j, mean errors y_j, within-scatters W_j) have mean error
  m = Σ n_j y_j / P and scatter Σ_j W_j + Σ_j n_j (y_j − m)(y_j − m)ᵀ (the ANOVA identity).
* A uniform subsample of n of the P pooled points (``accumulate-subsample``) has mean error
  m + η with E[η | pool] = 0, E||η||² = (P − n)/(n P (P − 1)) · tr(scatter) and expected scatter
  (n − 1)/(P − 1) · scatter (finite-population sampling, Cochran 1977, Thm 2.2 and eq. 2.9).

Families: ``gaussian`` fits Σ = scatter/n (mle) or scatter/(n − 1) (unbiased) — ``covariance:
diag`` keeps the same diagonal, hence the same trace — and samples N(μ, λΣ), so s = λ tr Σ. The
``kde`` family keeps its pool: recorded covariance = scatter/n + h² I, sampled covariance =
scatter/n + λh² I. The categorical family with λ = 1 and no smoothing is the KDE with h = 0 on
one-hot vectors: tr Σ* = 1 − Σ p*², and tr(scatter)/n = 1 − Σ p̂² is ``param.gini_simpson``.

Batches (implementation)
------------------------
``propagate_many`` runs the recursion once for every group of specs that differ only in numbers
(tr Σ*, λ, h, d, the correction's t and reference size), with a leading batch axis on every coefficient
vector and expectation. Every operation is elementwise along that axis and every reduction runs along the
same axis and in the same order as for one spec, so each result is bit for bit ``propagate(spec)``; a
grid of 75 runs costs 15 recursions instead of 75.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence, Union

import numpy as np

Policy = Literal["replace", "augment", "fresh", "accumulate", "accumulate-subsample"]


class Gram:
    """Innovation variances E||ξ_i||², one row per spec of a batch: ``var`` is ``(B, capacity)``; vectors are
    ``(B, capacity)`` coefficient arrays, expectations ``(B,)`` arrays."""

    def __init__(self, capacity: int, batch: int = 1) -> None:
        self.var = np.zeros((batch, capacity))
        self.size = 0

    def new(self, variance) -> np.ndarray:
        """A fresh innovation with E||ξ||² = ``variance`` (per spec); returns its coefficient vector."""
        v = self.zero()
        v[:, self.size] = 1.0
        self.var[:, self.size] = variance
        self.size += 1
        return v

    def zero(self) -> np.ndarray:
        return np.zeros(self.var.shape)

    def combine(self, weights, vectors) -> np.ndarray:
        """Σ_k weights[k] · vectors[k]: weights are numbers or ``(B,)`` arrays; ``vectors`` a list of
        ``(B, capacity)`` vectors or a ``(k, B, capacity)`` array.

        One product and one reduction over the leading axis: numpy adds the terms in order, so this is bit for
        bit the running sum ``out += w_k · v_k`` (it was written that way before, at ~2 µs per term)."""
        if len(weights) == 0:
            return self.zero()
        if len(weights) == 1:  # 0 + w·v = w·v
            return _column(weights[0]) * vectors[0]
        w = np.asarray(weights, dtype=float)
        rows = np.asarray(vectors, dtype=float)
        return np.add.reduce(w.reshape(w.shape[0], -1, 1) * rows, axis=0)

    def inner(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """E⟨a, b⟩ per spec (``np.add.reduce`` is what ``ndarray.sum`` calls, without its Python wrapper)."""
        return np.add.reduce(a * b * self.var, axis=-1)

    def sq(self, a: np.ndarray) -> np.ndarray:
        return self.inner(a, a)


def _column(w):
    """A per-spec weight ``(B,)`` as ``(B, 1)``, to scale ``(B, capacity)`` vectors; a number stays a number."""
    return w[:, None] if np.ndim(w) == 1 else w


@dataclass
class Group:
    """A block of a training set: ``n`` points, mean error vector ``mean``, expected tr(within-scatter) ``scatter``."""

    n: int
    mean: np.ndarray
    scatter: Union[float, np.ndarray]
    msq: Optional[np.ndarray] = None  # cached E||mean||² (innovation variances never change once drawn)


@dataclass
class Fitted:
    """One generation's model in expectation: mean error vector, E tr Σ (recorded) and E tr(sampling covariance)."""

    mean: np.ndarray
    trace: np.ndarray
    sample_trace: np.ndarray
    msq: Optional[np.ndarray] = None  # cached E||mean||²


@dataclass
class MomentSpec:
    """Everything the recursion needs (all sizes are points, all traces are expectations).

    family: ``gaussian`` (Σ = scatter·c(n); c = 1/n for ``mle``, 1/(n−1) for ``unbiased``) or ``kde``
    (bandwidth ``h``, dimension ``dim``; h = 0 is plain resampling, e.g. one-hot categorical tokens).
    ``trace_star`` = tr Σ* of the source. ``bias`` = MAD's sampling bias λ. ``correction_t`` = γ/(1+γ)
    of ``reference-mix`` (0: none) with reference ``source`` or ``fitted`` (a Gaussian fitted once on
    ``n_reference`` real points). ``lineage`` ``control`` replaces every synthetic batch by fresh real draws.
    ``n_real`` / ``n_synthetic`` are numbers or per-generation sequences (entry g for generation g, as
    ``LoopConfig.sizes`` gives them): the recursion reads them at each g exactly as the loop does, so
    schedules (Fu et al. 2024) are honoured; an empty batch (size 0) drops out of the training set.
    """

    n_initial: int
    n_real: Union[int, Sequence[int]]
    n_synthetic: Union[int, Sequence[int]]
    generations: int
    trace_star: float
    policy: Policy = "replace"
    family: Literal["gaussian", "kde"] = "gaussian"
    estimator: Literal["mle", "unbiased"] = "mle"
    bias: float = 1.0
    h: float = 0.0
    dim: int = 1
    synthetic_from: Literal["last", "all"] = "last"
    correction_t: float = 0.0
    reference: Literal["source", "fitted"] = "source"
    n_reference: int = 1000
    lineage: Literal["loop", "control"] = "loop"


def _size(n, g: int) -> int:
    """Generation g's entry of a size or of a per-generation sequence of sizes."""
    return int(n) if isinstance(n, (int, np.integer)) or np.ndim(n) == 0 else int(n[g])


@dataclass
class _Numbers:
    """The per-spec numbers of a batch, each ``(B,)``, computed spec by spec exactly as one spec would."""

    t_star: np.ndarray
    bias: np.ndarray
    hh: np.ndarray  # h²·d
    t: np.ndarray  # the correction's γ/(1+γ)
    keep: np.ndarray  # (1 − t)/|pool| for a pool of one model
    ref_mean_var: np.ndarray  # E||ξ||² of the fitted reference's mean error, t*/k
    ref_trace: np.ndarray  # (k − 1)/k · t*

    @classmethod
    def of(cls, specs: list[MomentSpec]) -> "_Numbers":
        col = lambda f: np.array([f(s) for s in specs], dtype=float)  # noqa: E731
        return cls(col(lambda s: s.trace_star), col(lambda s: s.bias), col(lambda s: s.h ** 2 * s.dim),
                   col(lambda s: s.correction_t), col(lambda s: (1 - s.correction_t) / 1),
                   col(lambda s: s.trace_star / s.n_reference),
                   col(lambda s: (s.n_reference - 1) / s.n_reference * s.trace_star))


def _real(gram: Gram, n: int, t_star) -> Group:
    """A batch of n fresh real points (n = 0: an empty group)."""
    return Group(n, gram.new(t_star / n) if n else gram.zero(), (n - 1) * t_star if n else 0.0)


def _fit(spec: MomentSpec, gram: Gram, groups: list[Group], subsample: Optional[int] = None,
         nums: Optional[_Numbers] = None) -> Fitted:
    """Expected model fitted to concatenated ``groups`` (optionally a uniform subsample of ``subsample`` points);
    ``nums``: the batch's per-spec numbers (default: ``spec``'s own, a batch of one)."""
    groups = [g for g in groups if g.n > 0]
    P = sum(g.n for g in groups)
    # one group: weight n/P = 1 and 0 + 1·v = v, the group's own vector
    mean = groups[0].mean if len(groups) == 1 else gram.combine([g.n / P for g in groups], [g.mean for g in groups])
    for g in groups:
        if g.msq is None:
            g.msq = gram.sq(g.mean)
    # one group: mean = 1.0 · its mean, the same vector, so the same E||·||²
    msq = groups[0].msq if len(groups) == 1 else gram.sq(mean)
    # ANOVA: Σ n_j ||y_j − m||² = Σ n_j ||y_j||² − P ||m||²
    scatter = sum(g.scatter for g in groups) + sum(g.n * g.msq for g in groups) - P * msq
    return _model(spec, nums or _Numbers.of([spec]), gram, P, mean, scatter, subsample, msq)


def _model(spec: MomentSpec, nums: _Numbers, gram: Gram, P: int, mean: np.ndarray, scatter, subsample=None,
           msq=None) -> Fitted:
    """The model fitted to P pooled points with mean error ``mean`` (E||mean||² = ``msq`` if known) and
    expected tr(scatter) ``scatter``."""
    n = P
    if subsample is not None and subsample < P:
        n = subsample
        mean = mean + gram.new((P - n) / (n * P * (P - 1)) * scatter)
        scatter = (n - 1) / (P - 1) * scatter
        msq = None
    if spec.family == "gaussian":
        denom = n - 1 if spec.estimator == "unbiased" else n
        trace = scatter / denom
        return Fitted(mean, trace, nums.bias * trace, msq)
    pool = scatter / n
    return Fitted(mean, pool + nums.hh, pool + nums.bias * nums.hh, msq)


class _Pool:
    """The accumulated training set (the real set, then every synthetic batch) for ``accumulate*`` policies.

    ``_fit`` on the whole list re-adds every group's scatter and n·||mean||² each generation (O(G) Python per
    generation). Those sums only ever gain a term at the end, so running totals, updated in the same order,
    are the same floating-point sums; the mean is re-weighted every generation (weights n_j / P change) by one
    product and one in-order reduction over the stacked mean vectors (over the innovations drawn so far; the
    other coefficients are 0 either way). Bit for bit ``_fit(spec, gram, groups)``.
    """

    def __init__(self, gram: Gram, rows: int) -> None:
        self.means = np.zeros((rows, *gram.var.shape))
        self.ns = np.zeros(rows, dtype=np.int64)
        self.k = self.P = 0
        self.scatter = self.nmsq = 0  # Python's sum() starts from the integer 0 too

    def add(self, gram: Gram, group: Group) -> None:
        if group.n == 0:  # an empty batch drops out of the training set
            return
        if group.msq is None:
            group.msq = gram.sq(group.mean)
        self.means[self.k], self.ns[self.k] = group.mean, group.n
        self.k += 1
        self.P += group.n
        self.scatter = self.scatter + group.scatter
        self.nmsq = self.nmsq + group.n * group.msq

    def fit(self, spec: MomentSpec, nums: _Numbers, gram: Gram, subsample: Optional[int] = None) -> Fitted:
        P, used = self.P, gram.size  # innovations drawn so far: every later coefficient is still 0
        mean = gram.zero()
        mean[:, :used] = gram.combine(self.ns[:self.k] / P, self.means[:self.k, :, :used])
        msq = gram.sq(mean)
        scatter = self.scatter + self.nmsq - P * msq
        return _model(spec, nums, gram, P, mean, scatter, subsample, msq)


def _msq(gram: Gram, q: Fitted) -> np.ndarray:
    """E||mean||² of a model, computed once (innovation variances never change once drawn)."""
    if q.msq is None:
        q.msq = gram.sq(q.mean)
    return q.msq


def _synthetic(gram: Gram, m: int, weights: list, means: list[np.ndarray], traces: list,
               msqs: Optional[list] = None) -> Group:
    """A batch of m iid draws from the mixture Σ w_k q_k (q_k: mean error ``means[k]``, covariance trace
    ``traces[k]``, E||means[k]||² = ``msqs[k]`` when already known)."""
    msqs = [gram.sq(e) for e in means] if msqs is None else msqs
    if len(weights) == 1 and np.all(np.asarray(weights[0]) == 1.0):
        # a single component of weight 1 (the last model, no correction): 0 + 1·v = v, that model's own vector
        centre, centre_sq = means[0], msqs[0]
    else:
        centre = gram.combine(weights, means)
        centre_sq = gram.sq(centre)
    spread = sum(w * s for w, s in zip(weights, traces)) + sum(w * q for w, q in zip(weights, msqs)) - centre_sq
    if m == 0:
        return Group(0, centre, 0.0)
    return Group(m, centre + gram.new(spread / m), (m - 1) * spread)


def _structure(spec: MomentSpec) -> tuple:
    """What decides the recursion's steps (as opposed to its numbers): specs with equal keys share a batch."""
    G = spec.generations
    t = spec.correction_t > 0
    return (spec.policy, spec.family, spec.estimator, spec.synthetic_from, spec.lineage, spec.n_initial, G,
            tuple(_size(spec.n_real, g) for g in range(G + 1)), tuple(_size(spec.n_synthetic, g) for g in range(G + 1)),
            t, spec.reference if t else None)


def propagate(spec: MomentSpec) -> dict[str, np.ndarray]:
    """Exact E||μ_g − μ*||² and E tr Σ_g for g = 0..G: ``{"mean_sq_error": (G+1,), "trace_cov": (G+1,)}``.

    Semantics follow ``autophagy.loop.simulate`` and ``autophagy.policies`` exactly (see the module docstring).
    """
    return propagate_many([spec])[0]


def propagate_many(specs: Sequence[MomentSpec]) -> list[dict[str, np.ndarray]]:
    """``[propagate(s) for s in specs]``, bit for bit, with specs that differ only in numbers run as one batch."""
    batches: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        batches.setdefault(_structure(spec), []).append(i)
    out: list = [None] * len(specs)
    for members in batches.values():
        for i, result in zip(members, _propagate_batch([specs[i] for i in members])):
            out[i] = result
    return out


def _propagate_batch(specs: list[MomentSpec]) -> list[dict[str, np.ndarray]]:
    """The recursion for specs of one structure (``_structure``), each expectation a ``(B,)`` array."""
    spec, nums = specs[0], _Numbers.of(specs)  # spec: the shared structure; nums: the per-spec numbers
    gram, t_star = Gram(4 * spec.generations + 4, len(specs)), nums.t_star
    real = Group(spec.n_initial, gram.new(t_star / spec.n_initial), (spec.n_initial - 1) * t_star)
    model = _fit(spec, gram, [real], nums=nums)
    models, history = [model], []
    reference = None
    if spec.correction_t > 0 and spec.reference == "fitted":
        reference = Fitted(gram.new(nums.ref_mean_var), nums.ref_trace, nums.ref_trace)
    mse, trace = [_msq(gram, model)], [model.trace]
    pooled = None
    if spec.policy in ("accumulate", "accumulate-subsample"):
        pooled = _Pool(gram, spec.generations + 1)
        pooled.add(gram, real)
    for g in range(1, spec.generations + 1):
        n_r, n_s = _size(spec.n_real, g), _size(spec.n_synthetic, g)
        if spec.lineage == "control":
            synth = _real(gram, n_s, t_star)
        else:
            pool = models if spec.synthetic_from == "all" else [models[-1]]
            t = nums.t
            if len(pool) == 1 and spec.correction_t == 0:  # (1 − 0)/1 for every spec of the batch
                weights = [1.0]
            else:
                share = nums.keep if len(pool) == 1 else np.array([(1 - s.correction_t) / len(pool) for s in specs])
                weights = [share] * len(pool)
            means = [q.mean for q in pool]
            traces = [q.sample_trace for q in pool]
            msqs = [_msq(gram, q) for q in pool]
            if spec.correction_t > 0:
                weights.append(t)
                means.append(reference.mean if reference else gram.zero())
                traces.append(reference.sample_trace if reference else t_star)
                msqs.append(_msq(gram, reference) if reference else 0.0)
            synth = _synthetic(gram, n_s, weights, means, traces, msqs)
        history.append(synth)
        if pooled is not None:
            pooled.add(gram, synth)
        if spec.policy == "replace":
            model = _fit(spec, gram, [synth], nums=nums)
        elif spec.policy == "augment":
            model = _fit(spec, gram, [real, synth], nums=nums)
        elif spec.policy == "fresh":
            fresh = _real(gram, n_r, t_star)
            model = _fit(spec, gram, [fresh, synth], nums=nums)
        elif spec.policy == "accumulate":
            model = pooled.fit(spec, nums, gram)  # = _fit(spec, gram, [real, *history])
        elif spec.policy == "accumulate-subsample":
            model = pooled.fit(spec, nums, gram, subsample=n_r)  # = _fit(..., [real, *history], subsample=n_r)
        else:  # pragma: no cover - config validation forbids it
            raise ValueError(spec.policy)
        models = models + [model] if spec.synthetic_from == "all" else [model]
        mse.append(_msq(gram, model))
        trace.append(model.trace)
    mse, trace = np.array(mse), np.array(trace)  # (G+1, B)
    return [{"mean_sq_error": np.ascontiguousarray(mse[:, b]), "trace_cov": np.ascontiguousarray(trace[:, b])}
            for b in range(len(specs))]
