"""Stability conditions of iterative retraining, as functions.

Two different λ's
-----------------
* λ_B (``lam_B`` here) is Bertrand et al.'s (2024) and Gillman et al.'s (2024) *synthetic ratio*: generation
  t + 1 maximises E_{x∼p̂_data} log p_θ(x) + λ_B E_{x̃∼p_θt} log p_θ(x̃), i.e. it trains on n real points and
  λ_B·n synthetic ones. In this package λ_B = ``loop.n_synthetic / loop.n_real`` of the ``augment`` policy.
* λ (``sampling.bias``) is MAD's sampling bias (Alemohammad et al. 2023), a different thing.

Bertrand et al. 2024, Theorem 1 (infinite-sample stability)
-----------------------------------------------------------
Assume the log-likelihood is α-strongly concave in θ near θ* and its gradient in θ is L-Lipschitz in x,
and the best model is ε-close to the data, W₁(p_θ*, p_data) ≤ ε. Then if λ_B (1 + Lε/α) < 1/2 the
retraining map G is a contraction around θ*:

    ||G(θ) − θ*|| ≤ ρ(λ_B) ||θ − θ*||,   ρ(λ_B) = λ_B (α + εL) / (α − λ_B (α + εL)) < 1,

so θ_t → θ* geometrically. Write C = 1 + Lε/α; then ρ(λ_B) = λ_B C / (1 − λ_B C), and ρ < 1 ⟺ λ_B C < 1/2.

Gillman et al. 2024, Theorem 4.3 (stability with self-correction)
----------------------------------------------------------------
With the idealised correction π_γ p_θ = (p_θ + γ p_θ*)/(1 + γ) applied to the synthetic data, the
same argument gives the rate ρ(λ_B)/(1 + γ), which is < 1 ⟺ λ_B C < (1 + γ)/(2 + γ). With γ = 0 this is
Bertrand et al.'s condition; as γ → ∞ any λ_B C < 1 is admissible. (Their finite-sample statement adds
a statistical term c Σ_i (ρ/(1+γ))^i with high probability.)

The Gaussian ``reference-mix`` correction, exactly (derived here)
-----------------------------------------------------------------
For the Gaussian MLE in the population limit of the augment loop with ``reference-mix`` (each synthetic
point replaced by a source draw with probability t = γ/(1+γ)), the fitted mean is
μ_{t+1} = [μ* + λ_B((1 − t) μ_t + t μ*)]/(1 + λ_B), so μ_{t+1} − μ* = κ (μ_t − μ*) with

    κ = λ_B / ((1 + λ_B)(1 + γ)),

and Σ_{t+1} − Σ* = κ (Σ_t − Σ*) + O(||μ_t − μ*||²). κ < 1 for every λ_B and γ: the Gaussian MLE is
stable for any synthetic ratio, well inside Gillman's sufficient bound ρ(λ_B)/(1 + γ) ≥ κ. In finite
samples the same κ is the slope of E[μ_g − μ* | real set, μ_{g−1}] (``finite_sample_mean_slope``).
"""
from __future__ import annotations

import math


def _C(alpha: float, L: float, eps: float) -> float:
    if alpha <= 0:
        raise ValueError("alpha (strong concavity) must be > 0")
    return 1.0 + L * eps / alpha


def bertrand_rate(lam_B: float, alpha: float, L: float, eps: float) -> float:
    """ρ(λ_B) = λ_B (α + εL)/(α − λ_B(α + εL)) (``inf`` when the denominator is ≤ 0: no guarantee)."""
    x = lam_B * _C(alpha, L, eps)
    return x / (1 - x) if x < 1 else math.inf


def bertrand_stable(lam_B: float, alpha: float, L: float, eps: float) -> bool:
    """Bertrand et al.'s Theorem 1 condition λ_B (1 + Lε/α) < 1/2."""
    return lam_B * _C(alpha, L, eps) < 0.5


def bertrand_max_ratio(alpha: float, L: float, eps: float) -> float:
    """Largest admissible synthetic ratio: λ_B < 1 / (2 (1 + Lε/α))."""
    return 0.5 / _C(alpha, L, eps)


def _gillman_threshold(gamma: float) -> float:
    """(1 + γ)/(2 + γ), with its limit 1 at γ = ∞ (full correction)."""
    return 1.0 if math.isinf(gamma) else (1.0 + gamma) / (2.0 + gamma)


def gillman_rate(lam_B: float, gamma: float, alpha: float, L: float, eps: float) -> float:
    """Gillman et al.'s contraction rate with correction strength γ: ρ(λ_B)/(1 + γ).

    ``inf`` where ρ has no guarantee (λ_B C ≥ 1); 0 at γ = ∞ otherwise."""
    rho = bertrand_rate(lam_B, alpha, L, eps)
    if math.isinf(rho):
        return math.inf
    return 0.0 if math.isinf(gamma) else rho / (1.0 + gamma)


def gillman_stable(lam_B: float, gamma: float, alpha: float, L: float, eps: float) -> bool:
    """Gillman et al.'s Theorem 4.3 condition λ_B (1 + Lε/α) < (1 + γ)/(2 + γ) (< 1 at γ = ∞)."""
    return lam_B * _C(alpha, L, eps) < _gillman_threshold(gamma)


def gillman_max_ratio(gamma: float, alpha: float = 1.0, L: float = 0.0, eps: float = 0.0) -> float:
    """Largest admissible synthetic ratio with correction: λ_B < (1 + γ) / ((2 + γ)(1 + Lε/α))."""
    return _gillman_threshold(gamma) / _C(alpha, L, eps)


def reference_mix_factor(lam_B: float, gamma: float) -> float:
    """Exact population contraction of the Gaussian MLE's mean error under ``reference-mix``: λ_B/((1+λ_B)(1+γ))."""
    return 0.0 if math.isinf(gamma) else lam_B / ((1.0 + lam_B) * (1.0 + gamma))


def finite_sample_mean_slope(n_real: int, n_synthetic: int, gamma: float) -> float:
    """In the finite augment loop, E[μ_g − μ* | real set, μ_{g−1}] = n_r(x̄_r − μ*)/N + slope·(μ_{g−1} − μ*) with
    slope = n_s/(N(1+γ)) = ``reference_mix_factor(n_s/n_r, γ)`` (N = n_r + n_s)."""
    return n_synthetic / ((n_real + n_synthetic) * (1.0 + gamma))
