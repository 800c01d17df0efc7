"""Closed forms for the Gaussian family (MAD §3.1, §5; Bertrand et al. 2024, §3 warm-up).

Notation: source N(μ*, Σ*) in dimension d, t* = tr Σ*; n_0 = ``n_initial``, n_r = ``n_real``,
n_s = ``n_synthetic``; λ = MAD's *sampling bias* (synthetic draws come from N(μ, λΣ)), not
Bertrand et al.'s synthetic ratio λ_B = n_s/n_r (see ``autophagy.theory.stability``).
The estimator divides the scatter S = Σ(x − x̄)(x − x̄)ᵀ of n points by n (``mle``) or n − 1
(``unbiased``); write c(n) for that factor and a(n) = (n − 1)c(n) (= 1 − 1/n or 1).

Fully synthetic (``replace``) loop
-----------------------------------
Given model g − 1, the n_s samples have x̄ ~ N(μ_{g−1}, λΣ_{g−1}/n_s) and, independently,
S ~ Wishart_d(n_s − 1, λΣ_{g−1}) (Anderson 2003, Thm 3.3.2). Hence (derived here, following
MAD §3.1 and Bertrand et al.'s Prop. 1):

* E tr Σ_g = a(n_0)(λ a(n_s))^g t*                         — Σ_g is a supermartingale (λ a ≤ 1)
* E||μ_g − μ*||² = t*/n_0 + (λ/n_s) Σ_{k<g} E tr Σ_k        — μ_g is a martingale (a random walk)
* d = 1: E σ_g = σ* √c(n_0) κ(n_0 − 1) (√(λ c(n_s)) κ(n_s − 1))^g with κ(m) = E√χ²_m =
  √2 Γ((m+1)/2)/Γ(m/2). For the unbiased estimator and λ = 1 the per-generation factor is
  Bertrand et al.'s α = √(2/(n−1)) Γ(n/2)/Γ((n−1)/2) < 1 (their Prop. 1: E σ_t ≤ α^t σ_0 → 0).
  The same factor holds per coordinate for ``covariance: diag``.
* E log det Σ_g: by the Bartlett decomposition det S / det V ~ Π_{i=1}^d χ²_{m−i+1} for
  S ~ W_d(m, V), independent of V, so
  E log det Σ_g = log det Σ* + ℓ(n_0) + g (d log λ + ℓ(n_s)) with
  ℓ(n) = d log c(n) + Σ_{i=1}^d ψ((n − i)/2) + d log 2 (needs n − 1 ≥ d). ``diag``: the diagonal of a
  Wishart holds χ²_{n−1} variables, so Σ_i ψ((n − i)/2) becomes d ψ((n − 1)/2) and log det Σ* becomes
  Σ_j log Σ*_jj.
* W₂²(N(μ_g, Σ_g), N(μ*, Σ*)) = ||μ_g − μ*||² + tr Σ_g + t* − 2 tr (Σ*^{1/2} Σ_g Σ*^{1/2})^{1/2}
  (Dowson & Landau 1982). Its expectation is exact when d = 1 (the cross term is 2σ* E σ_g), and for
  ``diag`` with a diagonal Σ* (a sum of d independent 1-D chains). For a full covariance in d > 1 the
  cross term has no closed form; ``w2_lower_bound`` gives Jensen's bound (tr A^{1/2} is concave) and is
  *not* registered as a prediction.
"""
from __future__ import annotations

import math

import numpy as np


def c_factor(n, estimator: str = "mle"):
    """c(n): 1/n (``mle``) or 1/(n − 1) (``unbiased``)."""
    n = np.asarray(n, dtype=float)
    return 1.0 / (n - 1.0) if estimator == "unbiased" else 1.0 / n


def a_factor(n, estimator: str = "mle"):
    """a(n) = (n − 1) c(n) = E[tr Σ̂] / tr Σ for n iid points: 1 − 1/n (mle) or 1 (unbiased)."""
    return (np.asarray(n, dtype=float) - 1.0) * c_factor(n, estimator)


def chi_mean(m) -> np.ndarray:
    """κ(m) = E √χ²_m = √2 Γ((m + 1)/2) / Γ(m/2)."""
    from scipy.special import gammaln  # imported on first use, not with autophagy.theory

    m = np.asarray(m, dtype=float)
    return np.sqrt(2.0) * np.exp(gammaln((m + 1) / 2) - gammaln(m / 2))


def bertrand_alpha(n: int, estimator: str = "unbiased", bias: float = 1.0) -> float:
    """Per-generation contraction of E σ in the 1-D replace loop: √(λ c(n)) κ(n − 1).

    Unbiased, λ = 1: α = √(2/(n − 1)) Γ(n/2)/Γ((n − 1)/2) (Bertrand et al. 2024, Prop. 1).
    """
    return float(np.sqrt(bias * c_factor(n, estimator)) * chi_mean(n - 1))


def replace_trace(t_star: float, n_initial: int, n_synthetic: int, generations: int, estimator: str = "mle",
                  bias: float = 1.0) -> np.ndarray:
    """E tr Σ_g, g = 0..G: a(n_0) (λ a(n_s))^g t* (``(G+1,)``)."""
    g = np.arange(generations + 1)
    return t_star * a_factor(n_initial, estimator) * (bias * a_factor(n_synthetic, estimator)) ** g


def replace_mean_sq_error(t_star: float, n_initial: int, n_synthetic: int, generations: int, estimator: str = "mle",
                          bias: float = 1.0) -> np.ndarray:
    """E||μ_g − μ*||² = t*/n_0 + (λ/n_s) Σ_{k<g} E tr Σ_k (MAD §3.1's random walk of the mean)."""
    tr = replace_trace(t_star, n_initial, n_synthetic, generations, estimator, bias)
    steps = np.concatenate([[t_star / n_initial], bias * tr[:-1] / n_synthetic])
    return np.cumsum(steps)


def replace_std(sigma_star: float, n_initial: int, n_synthetic: int, generations: int, estimator: str = "mle",
                bias: float = 1.0) -> np.ndarray:
    """1-D (or one ``diag`` coordinate): E σ_g = σ* √c(n_0) κ(n_0 − 1) · (√(λ c(n_s)) κ(n_s − 1))^g."""
    g = np.arange(generations + 1)
    first = sigma_star * np.sqrt(c_factor(n_initial, estimator)) * chi_mean(n_initial - 1)
    return first * bertrand_alpha(n_synthetic, estimator, bias) ** g


def logdet_increment(n: int, d: int, estimator: str = "mle", diag: bool = False) -> float:
    """ℓ(n) = E log det Σ̂ − log det Σ for Σ̂ fitted to n iid N(μ, Σ) points (Σ diagonal when ``diag``)."""
    if n - 1 < d and not diag:
        return -math.inf
    if n < 2:
        return -math.inf
    from scipy.special import digamma  # imported on first use, not with autophagy.theory

    i = np.arange(1, d + 1)
    psi = d * digamma((n - 1) / 2) if diag else digamma((n - i) / 2).sum()
    return float(d * np.log(c_factor(n, estimator)) + psi + d * math.log(2.0))


def replace_logdet(logdet_star: float, d: int, n_initial: int, n_synthetic: int, generations: int,
                   estimator: str = "mle", bias: float = 1.0, diag: bool = False) -> np.ndarray:
    """E log det Σ_g = log det Σ* + ℓ(n_0) + g (d log λ + ℓ(n_s)); ``logdet_star`` = Σ_j log Σ*_jj when ``diag``."""
    g = np.arange(generations + 1)
    step = d * math.log(bias) + logdet_increment(n_synthetic, d, estimator, diag)
    return logdet_star + logdet_increment(n_initial, d, estimator, diag) + g * step


def replace_w2_sq(sigmas_star, n_initial: int, n_synthetic: int, generations: int, estimator: str = "mle",
                  bias: float = 1.0) -> np.ndarray:
    """Exact E W₂² for independent 1-D chains with true standard deviations ``sigmas_star`` (d = 1, or
    ``diag`` with a diagonal Σ*): E||μ_g − μ*||² + E tr Σ_g + t* − 2 Σ_j σ*_j E σ_{j,g}."""
    s = np.asarray(sigmas_star, dtype=float).ravel()
    t_star = float((s ** 2).sum())
    mse = replace_mean_sq_error(t_star, n_initial, n_synthetic, generations, estimator, bias)
    tr = replace_trace(t_star, n_initial, n_synthetic, generations, estimator, bias)
    cross = replace_std(1.0, n_initial, n_synthetic, generations, estimator, bias) * t_star  # Σ σ*_j · σ*_j E[σ/σ*]
    return mse + tr + t_star - 2 * cross


def w2_lower_bound(t_star: float, n_initial: int, n_synthetic: int, generations: int, estimator: str = "mle",
                   bias: float = 1.0) -> np.ndarray:
    """A lower bound (not a prediction) on E W₂² for a full covariance in d > 1, by Jensen's inequality:
    E tr(Σ*^{1/2}Σ_gΣ*^{1/2})^{1/2} ≤ tr(Σ*^{1/2} E[Σ_g] Σ*^{1/2})^{1/2} = √f_g tr Σ* with E Σ_g = f_g Σ*, so
    E W₂² ≥ E||μ_g − μ*||² + t* (1 − √f_g)², f_g = a(n_0)(λ a(n_s))^g."""
    mse = replace_mean_sq_error(t_star, n_initial, n_synthetic, generations, estimator, bias)
    f = replace_trace(1.0, n_initial, n_synthetic, generations, estimator, bias)
    return mse + t_star * (1 - np.sqrt(f)) ** 2


# --------------------------------------------------------------------------- fresh data loop (MAD §5)
def fresh_recursion(n_real: int, n_synthetic: int, bias: float = 1.0, estimator: str = "mle", t_star: float = 1.0):
    """The exact affine recursion v_g = A v_{g−1} + b of v = (E tr Σ_g, E||μ_g − μ*||²) in the fresh data loop.

    Training set = n_r fresh real points + n_s draws from N(μ_{g−1}, λΣ_{g−1}); N = n_r + n_s, k = n_r n_s/N.
    With x̄_r the fresh mean and x̄_s the synthetic mean, E||x̄_r − x̄_s||² = t*/n_r + M + λT/n_s and (derived here)

        T_g = c(N) [ (n_r − 1 + n_s/N) t* + (n_s − 1 + n_r/N) λ T_{g−1} + k M_{g−1} ]
        M_g = [ n_r t* + n_s λ T_{g−1} + n_s² M_{g−1} ] / N².

    Returns ``(A (2, 2), b (2,))``. Valid for full and diag covariances (only traces enter) and for any
    source with mean μ* and tr Σ* = ``t_star``.
    """
    n_r, n_s = float(n_real), float(n_synthetic)
    N = n_r + n_s
    c = float(c_factor(N, estimator))
    A = np.array([[c * (n_s - 1 + n_r / N) * bias, c * n_r * n_s / N],
                  [n_s * bias / N ** 2, n_s ** 2 / N ** 2]])
    b = np.array([c * (n_r - 1 + n_s / N) * t_star, n_r * t_star / N ** 2])
    return A, b


def fresh_fixed_point(n_real: int, n_synthetic: int, bias: float = 1.0, estimator: str = "mle",
                      t_star: float = 1.0) -> tuple[float, float]:
    """lim_g (E tr Σ_g, E||μ_g − μ*||²) = (I − A)^{-1} b: it does not involve n_0 (MAD §5: the limit depends only
    on n_r, n_s and λ). The spectral radius of A is < 1 whenever n_r ≥ 1, so the limit exists."""
    A, b = fresh_recursion(n_real, n_synthetic, bias, estimator, t_star)
    T, M = np.linalg.solve(np.eye(2) - A, b)
    return float(T), float(M)


def fresh_trajectory(n_initial: int, n_real: int, n_synthetic: int, generations: int, bias: float = 1.0,
                     estimator: str = "mle", t_star: float = 1.0) -> np.ndarray:
    """``(G+1, 2)``: (E tr Σ_g, E||μ_g − μ*||²) by the recursion from v_0 = (a(n_0) t*, t*/n_0)."""
    A, b = fresh_recursion(n_real, n_synthetic, bias, estimator, t_star)
    v = np.array([float(a_factor(n_initial, estimator)) * t_star, t_star / n_initial])
    out = [v]
    for _ in range(generations):
        v = A @ v + b
        out.append(v)
    return np.array(out)


# --------------------------------------------------------------------------- augmentation loop (fixed real set)
def augment_recursion(n_real: int, n_synthetic: int, bias: float = 1.0, estimator: str = "mle", t_star: float = 1.0):
    """Averaged over the real set: the exact affine recursion of v = (E tr Σ_g, E||μ_g − μ*||²).

    With r = x̄_r − μ* of the fixed real set, C_g = E⟨r, μ_g − μ*⟩ stays at t*/n_r for all g (μ_0 = x̄_r and
    C_g = (n_r t*/n_r + n_s C_{g−1})/N). Then (derived here)

        M_g = [ n_r t* + 2 n_r n_s t*/n_r + n_s² M_{g−1} + n_s λ T_{g−1} ] / N²
            = [ (n_r + 2 n_s) t* + n_s² M_{g−1} + n_s λ T_{g−1} ] / N²
        T_g = c(N) [ (n_r − 1) t* + (n_s − 1) λ T_{g−1} + k (M_{g−1} − t*/n_r + λ T_{g−1}/n_s) ],  k = n_r n_s / N.

    Returns ``(A, b)``.
    """
    n_r, n_s = float(n_real), float(n_synthetic)
    N = n_r + n_s
    c = float(c_factor(N, estimator))
    k = n_r * n_s / N
    A = np.array([[c * ((n_s - 1) * bias + k * bias / n_s), c * k],
                  [n_s * bias / N ** 2, n_s ** 2 / N ** 2]])
    b = np.array([c * ((n_r - 1) * t_star - k * t_star / n_r), (n_r + 2 * n_s) * t_star / N ** 2])
    return A, b


def augment_fixed_point(n_real: int, n_synthetic: int, bias: float = 1.0, estimator: str = "mle",
                        t_star: float = 1.0) -> tuple[float, float]:
    """Stationary (E tr Σ_∞, E||μ_∞ − μ*||²) of the augmentation loop, *averaged over the real set*."""
    A, b = augment_recursion(n_real, n_synthetic, bias, estimator, t_star)
    T, M = np.linalg.solve(np.eye(2) - A, b)
    return float(T), float(M)


def augment_conditional_fixed_point(real_scatter_trace: float, real_mean_err_sq: float, n_real: int,
                                    n_synthetic: int, bias: float = 1.0, estimator: str = "mle") -> tuple[float, float]:
    """Stationary moments *conditional on the real set* (scatter trace tr S_r, ||x̄_r − μ*||²).

    Given the real set, E[μ_g | real] = x̄_r for all g, and D_g = E||μ_g − x̄_r||² obeys (derived here)

        D_g = n_s² (D_{g−1} + λ T_{g−1}/n_s) / N²
        T_g = c(N) [ tr S_r + (n_s − 1) λ T_{g−1} + k (D_{g−1} + λ T_{g−1}/n_s) ]

    Returns (E[tr Σ_∞ | real], E[||μ_∞ − μ*||² | real] = ||x̄_r − μ*||² + D_∞). Both are linear in
    (tr S_r, ||x̄_r − μ*||²), so averaging them over the real set (E tr S_r = (n_r − 1) t*,
    E||x̄_r − μ*||² = t*/n_r) gives ``augment_fixed_point``.
    """
    n_r, n_s = float(n_real), float(n_synthetic)
    N = n_r + n_s
    c = float(c_factor(N, estimator))
    k = n_r * n_s / N
    A = np.array([[c * ((n_s - 1) * bias + k * bias / n_s), c * k],
                  [n_s * bias / N ** 2, n_s ** 2 / N ** 2]])
    b = np.array([c * real_scatter_trace, 0.0])
    T, D = np.linalg.solve(np.eye(2) - A, b)
    return float(T), float(real_mean_err_sq + D)
