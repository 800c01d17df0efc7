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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence, Union

import numpy as np

Policy = Literal["replace", "augment", "fresh", "accumulate", "accumulate-subsample"]


class Gram:
    """Innovation variances E||ξ_i||²; vectors are coefficient arrays over a fixed capacity of innovations."""

    def __init__(self, capacity: int) -> None:
        self.var = np.zeros(capacity)
        self.size = 0

    def new(self, variance: float) -> np.ndarray:
        """A fresh innovation with E||ξ||² = ``variance``; returns its coefficient vector."""
        v = self.zero()
        v[self.size] = 1.0
        self.var[self.size] = float(variance)
        self.size += 1
        return v

    def zero(self) -> np.ndarray:
        return np.zeros(self.var.size)

    def combine(self, weights, vectors) -> np.ndarray:
        """Σ_k weights[k] · vectors[k]."""
        out = self.zero()
        for w, v in zip(weights, vectors):
            out += w * v
        return out

    def inner(self, a: np.ndarray, b: np.ndarray) -> float:
        """E⟨a, b⟩."""
        return float((a * b * self.var).sum())

    def sq(self, a: np.ndarray) -> float:
        return self.inner(a, a)


@dataclass
class Group:
    """A block of a training set: ``n`` points, mean error vector ``mean``, expected tr(within-scatter) ``scatter``."""

    n: int
    mean: np.ndarray
    scatter: float
    msq: Optional[float] = None  # cached E||mean||² (innovation variances never change once drawn)


@dataclass
class Fitted:
    """One generation's model in expectation: mean error vector, E tr Σ (recorded) and E tr(sampling covariance)."""

    mean: np.ndarray
    trace: float
    sample_trace: float


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
    return int(n) if np.ndim(n) == 0 else int(n[g])


def _real(gram: Gram, n: int, t_star: float) -> Group:
    """A batch of n fresh real points (n = 0: an empty group)."""
    return Group(n, gram.new(t_star / n) if n else gram.zero(), (n - 1) * t_star if n else 0.0)


def _fit(spec: MomentSpec, gram: Gram, groups: list[Group], subsample: Optional[int] = None) -> Fitted:
    """Expected model fitted to concatenated ``groups`` (optionally a uniform subsample of ``subsample`` points)."""
    groups = [g for g in groups if g.n > 0]
    P = sum(g.n for g in groups)
    mean = gram.combine([g.n / P for g in groups], [g.mean for g in groups])
    for g in groups:
        if g.msq is None:
            g.msq = gram.sq(g.mean)
    # ANOVA: Σ n_j ||y_j − m||² = Σ n_j ||y_j||² − P ||m||²
    scatter = sum(g.scatter for g in groups) + sum(g.n * g.msq for g in groups) - P * gram.sq(mean)
    n = P
    if subsample is not None and subsample < P:
        n = subsample
        mean = mean + gram.new((P - n) / (n * P * (P - 1)) * scatter)
        scatter = (n - 1) / (P - 1) * scatter
    if spec.family == "gaussian":
        denom = n - 1 if spec.estimator == "unbiased" else n
        trace = scatter / denom
        return Fitted(mean, trace, spec.bias * trace)
    pool = scatter / n
    hh = spec.h ** 2 * spec.dim
    return Fitted(mean, pool + hh, pool + spec.bias * hh)


def _synthetic(gram: Gram, m: int, weights: list[float], means: list[np.ndarray], traces: list[float]) -> Group:
    """A batch of m iid draws from the mixture Σ w_k q_k (q_k: mean error ``means[k]``, covariance trace ``traces[k]``)."""
    centre = gram.combine(weights, means)
    spread = (sum(w * s for w, s in zip(weights, traces)) + sum(w * gram.sq(e) for w, e in zip(weights, means))
              - gram.sq(centre))
    if m == 0:
        return Group(0, centre, 0.0)
    return Group(m, centre + gram.new(spread / m), (m - 1) * spread)


def propagate(spec: MomentSpec) -> dict[str, np.ndarray]:
    """Exact E||μ_g − μ*||² and E tr Σ_g for g = 0..G: ``{"mean_sq_error": (G+1,), "trace_cov": (G+1,)}``.

    Semantics follow ``autophagy.loop.simulate`` and ``autophagy.policies`` exactly (see the module docstring).
    """
    gram, t_star = Gram(4 * spec.generations + 4), spec.trace_star
    real = Group(spec.n_initial, gram.new(t_star / spec.n_initial), (spec.n_initial - 1) * t_star)
    model = _fit(spec, gram, [real])
    models, history = [model], []
    reference = None
    if spec.correction_t > 0 and spec.reference == "fitted":
        k = spec.n_reference
        reference = Fitted(gram.new(t_star / k), (k - 1) / k * t_star, (k - 1) / k * t_star)
    mse, trace = [gram.sq(model.mean)], [model.trace]
    for g in range(1, spec.generations + 1):
        n_r, n_s = _size(spec.n_real, g), _size(spec.n_synthetic, g)
        if spec.lineage == "control":
            synth = _real(gram, n_s, t_star)
        else:
            pool = models if spec.synthetic_from == "all" else [models[-1]]
            t = spec.correction_t
            weights = [(1 - t) / len(pool)] * len(pool)
            means = [q.mean for q in pool]
            traces = [q.sample_trace for q in pool]
            if t > 0:
                weights.append(t)
                means.append(reference.mean if reference else gram.zero())
                traces.append(reference.sample_trace if reference else t_star)
            synth = _synthetic(gram, n_s, weights, means, traces)
        history.append(synth)
        if spec.policy == "replace":
            model = _fit(spec, gram, [synth])
        elif spec.policy == "augment":
            model = _fit(spec, gram, [real, synth])
        elif spec.policy == "fresh":
            fresh = _real(gram, n_r, t_star)
            model = _fit(spec, gram, [fresh, synth])
        elif spec.policy == "accumulate":
            model = _fit(spec, gram, [real, *history])
        elif spec.policy == "accumulate-subsample":
            model = _fit(spec, gram, [real, *history], subsample=n_r)
        else:  # pragma: no cover - config validation forbids it
            raise ValueError(spec.policy)
        models = models + [model] if spec.synthetic_from == "all" else [model]
        mse.append(gram.sq(model.mean))
        trace.append(model.trace)
    return {"mean_sq_error": np.array(mse), "trace_cov": np.array(trace)}
