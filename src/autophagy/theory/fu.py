"""Fu, Zhang, Wang, Tian & Tao (ICML 2024), "Towards Theoretical Understandings of Self-Consuming
Generative Models": total-variation bounds for mixed real/synthetic training, in this package's terms.

Setting and notation (the paper's, as summarised in ../shared/seeds/003)
-----------------------------------------------------------------------
Generation i trains on n_i points, a share α_i of them real (from P_r = P_0's source) and the rest
synthetic from generation i−1's model P_{i−1}; generation 0 trains on real data only (α_0 = 1).
Cycles: *general* (any α_i, n_i), *balanced* (a constant real share, e.g. α = ½: ``fresh`` with
n_real = n_synthetic), *full synthetic* (α_i = 0 for i ≥ 1: ``replace``). Here n_i and α_i come from
``loop.n_real`` / ``loop.n_synthetic`` (numbers or schedules) and the policy (``mixture_weights``).

The recursion (derived here from the summary's step (2); exact, no constants)
----------------------------------------------------------------------------
Let M_i = α_i P_r + Σ_k w_{ik} P_k be the law of one training point of generation i (fresh: α_i =
n_r/(n_r + n_s), w_{i,i−1} = 1 − α_i; accumulate: the synthetic weight spread over all earlier
models). TV is a norm, so the triangle inequality and TV(αP + (1−α)Q, P) = (1−α) TV(Q, P) give ::

    TV_i ≤ ε_i + Σ_k w_{ik} TV_k,    ε_i = TV(P_i, M_i)  (the learner's one-step error)      (F1)

and, unrolled for the fresh/replace/augment chain, TV_G ≤ Σ_i ε_i Π_{j>i} (1 − α_j).   (F2)

Assumptions for a computable bound (named; they are what the tests check against the simulation)
--------------------------------------------------------------------------------------------
A1  Each training set is n_i iid draws from M_i. True for ``fresh`` given the past; for ``augment`` the
    real part is the same set every generation (reused, so correlated with P_{i−1}).
A2  E ε_i ≤ ε(n_i), the expected TV of the learner fitted to n_i iid points *of the real source*: the
    learner is no worse on the mixture M_i than on P_r. Not a theorem (M_i is not in the model class
    for a Gaussian fit); it is the paper's KDE-type uniform rate used with P_r's constant.
A3  ε(n): Gaussian MLE in 1-D, ``gaussian_step_error(n)`` = E TV(N(x̄, s²), N(μ, σ²)), scale-free and
    computed here by quadrature over the exact law of (x̄, s²) (x̄ ~ N(μ, σ²/n), n s²/σ² ~ χ²_{n−1}).
    KDE (the paper's non-parametric case): for a rule bandwidth h ∝ n^{−1/5} (Scott, d = 1) the
    L1 rate of a twice-differentiable density is n^{−2/5} = n^{−β/(2β+d)} with β = 2 (Devroye & Györfi
    1985), so ε(n) = C n^{−2/5} with C *measured* from generation 0 (``kde_step_error``); with a fixed
    h, ε(n) = TV(P_r, K_h * P_r) + c n^{−1/2} (bias exact for a Gaussian source, c measured). The
    paper's constants (Lipschitz/smoothness constants, concentration terms with δ) are not
    computable here, which is why C and c are measured: this is the recursion's shape, not their theorem.

Consequences (derived here from F2 with ε(n) = C n^{−r})
--------------------------------------------------------
* Full synthetic cycle: TV_G ≤ Σ_i ε(n_i). Bounded as G → ∞ iff Σ n_i^{−r} < ∞: with the parametric
  r = ½ that needs n_i growing faster than i² (super-quadratic, Fu et al.'s Remark 1), e.g.
  n_i = n_0 (i+1)³; constant n grows the bound linearly (``full_synthetic_bound``).
* Balanced cycle: α constant gives B_G = ε(n) (1 − (1−α)^{G+1})/α → ε(n)/α, bounded.
* Phase transition (fixed real n_r, synthetic n_s, ``fresh``): the bound at a finite G is
  ε(n_r + n_s) Σ_{i≥1} (1−α)^{G−i} + (1−α)^G ε(n_r), α = n_r/(n_r + n_s); it rises from ε(n_r) at n_s =
  0, peaks, and falls back to ε(n_r) as n_s → ∞ (for G = 1, r = ½: the peak is 1.25 ε(n_r) at n_s = 3 n_r)
  — ``phase_transition_bound``. Whether the *measured* TV does the same is a separate, empirical
  question (configs/fu_phase_transition.yaml, docs/theory.md).
* Diffusion with early stopping (their Theorem 2, shape only): ε(n, τ) = ε_opt(τ) + ε_gen(n, τ), the
  optimisation error falling and the generalisation (memorisation) error rising with the training
  budget τ; the loop bound is F2 with ε(n_i, τ), so the τ minimising ε also minimises every TV_G bound:
  early stopping at τ* is optimal inside the loop (``diffusion_bound`` takes measured ε(n, τ)).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
from scipy import stats

from ..tv import gaussian_tv_1d

KDE_RATE = 0.4  # β/(2β+d) with β = 2, d = 1 (Scott-rule KDE, L1 rate)


def mixture_weights(loop, generations: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(n (G+1,), alpha (G+1,), W (G+1, G+1))``: generation i's training-set size, real share α_i and
    synthetic weights W[i, k] on model k < i, from a ``LoopConfig`` (schedules read per generation).

    ``augment``/``accumulate`` reuse generation 0's real set (assumption A1 fails for that part);
    ``accumulate-subsample`` keeps the accumulated pool's shares in expectation (a uniform subsample)."""
    from ..policies import training_sizes

    G = generations
    n = np.array(training_sizes(loop, G), dtype=float)
    alpha, W = np.zeros(G + 1), np.zeros((G + 1, G + 1))
    alpha[0] = 1.0
    n0 = loop.initial
    syn = [0] + [loop.synthetic_at(g) for g in range(1, G + 1)]
    for i in range(1, G + 1):
        p = loop.policy
        if p == "replace":
            W[i, i - 1] = 1.0
        elif p in ("augment", "fresh"):
            real = n0 if p == "augment" else loop.real_at(i)
            alpha[i] = real / (real + syn[i])
            W[i, i - 1] = 1.0 - alpha[i]
        else:  # accumulate(-subsample): real set plus batch k from model k−1, k = 1..i
            pool = n0 + sum(syn[1:i + 1])
            alpha[i] = n0 / pool
            for k in range(1, i + 1):
                W[i, k - 1] = syn[k] / pool
    return n, alpha, W


def propagation_bound(eps: Sequence[float], alpha: Sequence[float] | None = None,
                      W: Optional[np.ndarray] = None) -> np.ndarray:
    """B_i = ε_i + Σ_k W[i, k] B_k (F1), or with ``alpha`` only the chain B_i = ε_i + (1 − α_i) B_{i−1} (F2).
    ``eps`` ``(G+1,)``; returns ``(G+1,)`` (clipped at 1, TV's maximum)."""
    eps = np.asarray(eps, dtype=float)
    G = eps.size - 1
    if W is None:
        a = np.asarray(alpha, dtype=float)
        W = np.zeros((G + 1, G + 1))
        W[np.arange(1, G + 1), np.arange(G)] = 1.0 - a[1:]
    B = np.zeros(G + 1)
    for i in range(G + 1):
        B[i] = eps[i] + W[i, :i] @ B[:i]
    return np.minimum(B, 1.0)


def gaussian_step_error(n: int, nodes: int = 400) -> float:
    """ε(n) = E TV(N(x̄, s²), N(μ, σ²)) for the 1-D Gaussian MLE on n iid points (assumption A3), by quadrature:
    x̄ = z/√n on Gauss–Hermite nodes, s² = q/n on mid-probability quantiles of χ²_{n−1}. Accurate to ~1e-4."""
    n = int(n)
    if n < 2:
        return 1.0
    z, wz = np.polynomial.hermite_e.hermegauss(48)
    wz = wz / wz.sum()
    q = stats.chi2.ppf((np.arange(nodes) + 0.5) / nodes, n - 1)
    tv = gaussian_tv_1d(z[:, None] / math.sqrt(n), q[None, :] / n, 0.0, 1.0)
    return float((wz[:, None] * tv).sum() / nodes)


def kde_step_error(eps0: float, n0: int, n, bandwidth: Any = "scott", bias: float = 0.0) -> np.ndarray:
    """ε(n) for the KDE (A3) from the measured generation-0 error ``eps0`` at ``n0`` points: rule bandwidths
    C n^{−2/5} with C = eps0 n0^{2/5}; a fixed bandwidth ``bias + c n^{−1/2}`` with c = (eps0 − bias) √n0,
    ``bias`` = TV(P_r, K_h * P_r) (``kde_smoothing_bias``)."""
    n = np.asarray(n, dtype=float)
    if isinstance(bandwidth, str):
        return eps0 * (n0 / n) ** KDE_RATE
    return bias + max(eps0 - bias, 0.0) * np.sqrt(n0 / n)


def kde_smoothing_bias(h: float, var: float = 1.0) -> float:
    """TV(N(μ, σ²), N(μ, σ² + h²)): the KDE's bias term for a 1-D Gaussian source (K_h * P_r is exact)."""
    return float(gaussian_tv_1d(0.0, var, 0.0, var + h * h))


def full_synthetic_bound(eps: Callable[[np.ndarray], np.ndarray], n: Sequence[int]) -> np.ndarray:
    """Full synthetic cycle (α_i = 0, i ≥ 1): B_G = Σ_{i≤G} ε(n_i), ``(G+1,)``. Bounded iff Σ ε(n_i) converges."""
    return np.minimum(np.cumsum(eps(np.asarray(n, dtype=float))), 1.0)


def phase_transition_bound(eps: Callable[[np.ndarray], np.ndarray], n_real: int, n_synthetic, generations: int):
    """The fresh loop's bound at generation G vs the synthetic amount at fixed real data (F2):
    B_G(n_s) = ε(n_r + n_s) Σ_{i=1..G} (1−α)^{G−i} + (1−α)^G ε(n_r), α = n_r/(n_r + n_s). Vectorised over n_s;
    returns ``(bound, n_s at the peak)``."""
    ns = np.asarray(n_synthetic, dtype=float)
    a = n_real / (n_real + ns)
    G = generations
    geo = np.where(a > 0, (1 - (1 - a) ** G) / np.where(a > 0, a, 1.0), G)
    bound = eps(n_real + ns) * geo + (1 - a) ** G * eps(np.full_like(ns, float(n_real)))
    return np.minimum(bound, 1.0), float(ns[int(np.argmax(bound))])


def diffusion_bound(eps_budget: np.ndarray, alpha: Sequence[float]) -> np.ndarray:
    """Theorem 2's shape: ``eps_budget (B, G+1)`` = measured one-step errors ε(n_i, τ_b) per training budget τ_b;
    returns the F2 bounds ``(B, G+1)``. The budget with the smallest ε minimises every generation's bound."""
    return np.stack([propagation_bound(e, alpha) for e in np.atleast_2d(eps_budget)])


def tv_table(config: Any, metrics) -> "pd.DataFrame":
    """Measured ``param.tv`` (mean ± s.e. over replicates) beside Fu et al.'s recursion bound (F1 with A2–A3),
    one row per run and generation: ``run_id, name, generation, n, alpha, eps, bound, measured, se, below``.

    ``config``: a config (path, dict or Config, grids expanded); ``metrics``: ``Result.metrics``. Runs of the
    gaussian family (1-D; ε exact by quadrature) and kde family (ε's constant measured at generation 0) with
    ``param.tv`` recorded; other runs are skipped. ``below`` = measured ≤ bound + 2 s.e."""
    import pandas as pd

    from ..spec import specs_for

    rows = []
    df = metrics[metrics.metric == "param.tv"]
    ids = set(df.run_id.astype(str))
    for spec in specs_for(config):  # matched by run id, never by position
        c, run_id = spec.config, spec.run_id
        if spec.control or run_id not in ids or c.model.family not in ("gaussian", "kde"):
            continue
        sub = df[df.run_id.astype(str) == run_id]
        stat = sub.groupby("generation")["value"].agg(["mean", "std", "count"])
        G = c.generations
        n, alpha, W = mixture_weights(c.loop, G)
        if c.model.family == "gaussian":
            eps = np.array([gaussian_step_error(int(m)) for m in n])
        else:
            bw = (c.model.model_extra or {}).get("bandwidth", "scott")
            bias = kde_smoothing_bias(float(bw)) if not isinstance(bw, str) else 0.0
            eps = kde_step_error(float(stat.loc[0, "mean"]), int(n[0]), n, bw, bias)
        bound = propagation_bound(eps, W=W)
        for g in range(G + 1):
            m = stat.loc[g, "mean"] if g in stat.index else np.nan
            se = stat.loc[g, "std"] / math.sqrt(stat.loc[g, "count"]) if g in stat.index else np.nan
            rows.append({"run_id": run_id, "name": c.name, "generation": g, "n": int(n[g]), "alpha": alpha[g],
                         "eps": eps[g], "bound": bound[g], "measured": m, "se": se, "below": bool(m <= bound[g] + 2 * se)})
    return pd.DataFrame(rows, columns=["run_id", "name", "generation", "n", "alpha", "eps", "bound", "measured", "se",
                                       "below"])
