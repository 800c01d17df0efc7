"""The categorical replace loop as a Wright–Fisher chain (Shumailov et al. 2024 §3.1; Fu et al. 2024).

Fitting frequencies p̂ = c/n and resampling n tokens from p̂ is the neutral haploid Wright–Fisher
model with population size n (Fisher 1930; Wright 1931). Facts used here:

* Marginals (standard): the count c_i of one category is itself a two-allele Wright–Fisher chain,
  c_i' | c ~ Binomial(n_s, p̂_i(c_i)), because p̂_i depends on c_i only. This stays true with additive
  smoothing α (p̂_i = (c_i + α)/(n + Kα)), and, for K = 2 only, with MAD's sampling bias
  (q_1 = p̂_1^{1/λ} / (p̂_1^{1/λ} + p̂_2^{1/λ})). Every recorded metric is a sum over categories of a
  function of one count — gini_simpson = Σ p_i(1 − p_i), support_size = Σ 1[p_i > 0],
  entropy = −Σ p_i log p_i, tv = ½Σ|p_i − p*_i| — so its expectation is exact from the K marginal
  distributions, computed by pushing Binomial(n_0, p*_i) through the (n+1)×(n+1) transition matrix.
* Heterozygosity: for λ = 1, α = 0, E[1 − Σp'²] = (1 − 1/n)(1 − Σp²) (Wright 1931), so
  E gini_g = (1 − 1/n_0)(1 − Σp*²)(1 − 1/n_s)^g.
* Fixation: with λ = 1, α = 0, p̂_i is a martingale absorbed at 0 or 1, so the probability that category
  i takes over equals its initial frequency (Kimura 1962); in the loop, E[c_i/n_0] = p*_i.
* Absorption time from frequency p: exactly t = (I − Q)^{-1} 1 (fundamental matrix of the absorbing
  chain, Kemeny & Snell 1960); the diffusion approximation is Kimura & Ohta's (1969)
  t̄(p) = −2n [p ln p + (1 − p) ln(1 − p)] generations for a haploid population of n (their −4N for
  diploid N, with 2N = n genes).
"""
from __future__ import annotations

import numpy as np


def _binom():
    """scipy.stats' binomial law, imported on first use (importing scipy.stats costs ~2 s; most callers of
    ``autophagy.theory`` never need it)."""
    from scipy.stats import binom

    return binom


def marginal_probability(counts, n: int, K: int, alpha: float = 0.0, bias: float = 1.0) -> np.ndarray:
    """The sampling probability of one category with count ``counts`` out of n (α-smoothed; λ only for K = 2)."""
    c = np.asarray(counts, dtype=float)
    p = (c + alpha) / (n + K * alpha)
    if bias == 1.0:
        return p
    if K != 2:
        raise ValueError("the sampling bias keeps a single category's count Markov only when K = 2")
    with np.errstate(divide="ignore"):
        a, b = np.log(p) / bias, np.log1p(-p) / bias
    top = np.maximum(a, b)
    ea, eb = np.exp(a - top), np.exp(b - top)
    return ea / (ea + eb)


def transition_matrix(n_from: int, n_to: int, K: int = 2, alpha: float = 0.0, bias: float = 1.0) -> np.ndarray:
    """``(n_from + 1, n_to + 1)``: P[c → c'] = Binomial(n_to, q(c)).pmf(c') for one category's count."""
    q = marginal_probability(np.arange(n_from + 1), n_from, K, alpha, bias)
    return _binom().pmf(np.arange(n_to + 1)[None, :], n_to, q[:, None])


def count_distributions(p_star, n_initial: int, n_synthetic: int, generations: int, alpha: float = 0.0,
                        bias: float = 1.0) -> list[np.ndarray]:
    """Per generation, ``(K, n_g + 1)`` distributions of each category's count (n_0 at g = 0, n_s after)."""
    p = np.asarray(p_star, dtype=float)
    K = p.size
    dist = _binom().pmf(np.arange(n_initial + 1)[None, :], n_initial, p[:, None])
    out = [dist]
    if generations >= 1:
        dist = dist @ transition_matrix(n_initial, n_synthetic, K, alpha, bias)
        out.append(dist)
        P = transition_matrix(n_synthetic, n_synthetic, K, alpha, bias)
        for _ in range(generations - 1):
            dist = dist @ P
            out.append(dist)
    return out


def replace_metrics(p_star, n_initial: int, n_synthetic: int, generations: int, alpha: float = 0.0,
                    bias: float = 1.0) -> dict[str, np.ndarray]:
    """Exact E of gini_simpson, support_size, entropy, tv for g = 0..G (each ``(G+1,)``).

    Needs λ = 1 or K = 2 (see the module docstring); any smoothing α ≥ 0.
    """
    p = np.asarray(p_star, dtype=float)
    K = p.size
    out = {k: [] for k in ("gini_simpson", "support_size", "entropy", "tv")}
    for g, dist in enumerate(count_distributions(p, n_initial, n_synthetic, generations, alpha, bias)):
        n = n_initial if g == 0 else n_synthetic
        phat = (np.arange(n + 1) + alpha) / (n + K * alpha)  # (n + 1,) fitted frequency for each count
        with np.errstate(divide="ignore", invalid="ignore"):
            plogp = np.where(phat > 0, phat * np.log(phat), 0.0)
        out["gini_simpson"].append(float((dist * (phat - phat ** 2)).sum()))
        out["support_size"].append(float((dist * (phat > 0)).sum()))
        out["entropy"].append(float(-(dist * plogp).sum()))
        out["tv"].append(float(0.5 * (dist * np.abs(phat[None, :] - p[:, None])).sum()))
    return {k: np.array(v) for k, v in out.items()}


def gini_simpson_decay(p_star, n_initial: int, n_synthetic: int, generations: int) -> np.ndarray:
    """E gini_g = (1 − 1/n_0)(1 − Σp*²)(1 − 1/n_s)^g (λ = 1, α = 0)."""
    p = np.asarray(p_star, dtype=float)
    g = np.arange(generations + 1)
    return (1 - 1 / n_initial) * (1 - (p ** 2).sum()) * (1 - 1 / n_synthetic) ** g


def _absorbing(n: int, K: int = 2, alpha: float = 0.0, bias: float = 1.0):
    P = transition_matrix(n, n, K, alpha, bias)
    inner = np.arange(1, n)
    return P, inner


def fixation_probability(n: int, bias: float = 1.0) -> np.ndarray:
    """``(n + 1,)``: P(category reaches count n before 0 | count c), exactly from the absorbing chain.

    For λ = 1 this is c/n (the martingale argument); for K = 2 with λ < 1 the majority is favoured.
    """
    P, inner = _absorbing(n, 2, 0.0, bias)
    Q = P[np.ix_(inner, inner)]
    h = np.linalg.solve(np.eye(n - 1) - Q, P[inner, n])
    return np.concatenate([[0.0], h, [1.0]])


def absorption_time(n: int, bias: float = 1.0) -> np.ndarray:
    """``(n + 1,)``: expected generations until one of two categories is lost, from count c (exact, K = 2)."""
    P, inner = _absorbing(n, 2, 0.0, bias)
    Q = P[np.ix_(inner, inner)]
    t = np.linalg.solve(np.eye(n - 1) - Q, np.ones(n - 1))
    return np.concatenate([[0.0], t, [0.0]])


def kimura_absorption_time(p, n: int):
    """Kimura & Ohta's diffusion approximation −2n[p ln p + (1 − p) ln(1 − p)] (haploid population n)."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where((p > 0) & (p < 1), p * np.log(p) + (1 - p) * np.log1p(-p), 0.0)
    return -2.0 * n * h


def loop_absorption_time(p1: float, n: int, bias: float = 1.0) -> float:
    """Expected first generation g at which a K = 2 replace loop (n_0 = n_s = n) has lost a category:
    E over c_0 ~ Binomial(n, p1) of the exact absorption time (0 if generation 0 is already monomorphic)."""
    start = _binom().pmf(np.arange(n + 1), n, p1)
    return float(start @ absorption_time(n, bias))
