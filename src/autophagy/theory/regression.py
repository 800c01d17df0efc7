"""Linear regression with a fixed design (Gerstgrasser et al. 2024, "Is Model Collapse Inevitable?", §2;
after Dohmatob et al. 2024).

Setting (as ``autophagy.models.regression``): a design X (n × d) fixed per replicate, real labels
y = Xw* + σz; each model ŵ = (XᵀX)^{-1}Xᵀy; synthetic labels at the same design, ỹ = Xŵ + √λ σ_m z
(σ_m the model's noise: ``model.noise_std``, else the source's σ). Conditionally on X, the OLS error
of any label set is (previous model's error) + ε with ε = (XᵀX)^{-1}Xᵀ(noise), independent across
label sets, E[||ε||² | X] = (noise variance) · tr (XᵀX)^{-1}. Writing τ = E tr (XᵀX)^{-1}:

* Replace (Gerstgrasser et al., Thm 1 for λ = 1): δ_g = δ_{g−1} + ε_g, so
  E||ŵ_g − w*||² = τ (σ² + g λ σ_m²) = (g + 1) σ² τ when σ_m = σ, λ = 1: linear growth.
* Accumulate (their Thm 2): OLS on the stacked, repeated design is the average of the per-set OLS
  solutions, δ_g = (1/(g+1)) [ε_0 + Σ_{k=1}^g (δ_{k−1} + ε_k)], whose solution is δ_g = Σ_{k=0}^g ε_k/(k+1).
  Hence E||ŵ_g − w*||² = τ (σ² + λσ_m² Σ_{k=2}^{g+1} 1/k²) ≤ σ²τ π²/6 (σ_m = σ, λ = 1): bounded.
* Augment (derived here): δ_g = (ε_0 + δ_{g−1} + ε_g)/2; fresh labels at the same design: ε_0 replaced
  by a new real-label error each generation. All are linear in independent ε's (``_errors``).
* Gaussian design X_ij iid N(0, s²): XᵀX ~ Wishart_d(n, s² I), E (XᵀX)^{-1} = I/(s²(n − d − 1))
  (Anderson 2003, Lemma 7.7.1), so τ = d / (s² (n − d − 1)) for n > d + 1.
* Estimated noise (no ``noise_std`` anywhere; replace only, derived here): σ̂²_g = RSS/(n − d) has
  E σ̂²_g = λ^g σ² and is independent of X and of the OLS error, so E||ŵ_g − w*||² = σ²τ Σ_{k=0}^g λ^k.
"""
from __future__ import annotations

import numpy as np

from .moments import Gram


def design_trace_inverse(n: int, d: int, design_std: float = 1.0) -> float:
    """τ = E tr (XᵀX)^{-1} = d / (s²(n − d − 1)) for an n × d design with iid N(0, s²) entries (n > d + 1)."""
    if n <= d + 1:
        return float("inf")
    return d / (design_std ** 2 * (n - d - 1))


def _errors(policy: str, generations: int, sigma2: float, synth2: float) -> np.ndarray:
    """E||δ_g||² / τ for g = 0..G, given real-label variance σ² and synthetic-label variance λσ_m²."""
    gram = Gram(2 * generations + 2)
    real = gram.new(sigma2)
    deltas = [real]
    for g in range(1, generations + 1):
        synth = deltas[-1] + gram.new(synth2)
        if policy == "replace":
            delta = synth
        elif policy == "augment":
            delta = 0.5 * (real + synth)
        elif policy == "fresh":
            delta = 0.5 * (gram.new(sigma2) + synth)
        elif policy == "accumulate":
            delta = (g * deltas[-1] + synth) / (g + 1)  # = δ_{g−1} + ε_g/(g + 1)
        else:
            raise ValueError(policy)
        deltas.append(delta)
    return np.concatenate([gram.sq(x) for x in deltas])  # a Gram of one row: each sq is a (1,) array


def expected_test_error(policy: str, generations: int, tau: float, sigma: float, sigma_model: float | None = None,
               bias: float = 1.0) -> np.ndarray:
    """E||ŵ_g − w*||², g = 0..G, for ``replace | augment | fresh | accumulate`` with a known model noise σ_m."""
    sm = sigma if sigma_model is None else sigma_model
    return tau * _errors(policy, generations, sigma ** 2, bias * sm ** 2)


def replace_test_error_estimated_noise(generations: int, tau: float, sigma: float, bias: float = 1.0) -> np.ndarray:
    """Replace loop with σ re-estimated from residuals each generation: σ²τ Σ_{k=0}^g λ^k."""
    return sigma ** 2 * tau * np.cumsum(bias ** np.arange(generations + 1))


def accumulate_bound(first_error: float) -> float:
    """Gerstgrasser et al.'s bound: the accumulate loop's error never exceeds π²/6 times generation 0's."""
    return float(first_error * np.pi ** 2 / 6)
