"""The KDE replace loop in closed form (a smoothed bootstrap; derived here).

A KDE with a fixed bandwidth h keeps its training set (the pool) and samples a uniformly chosen pool
point plus N(0, λh²I) noise (``autophagy.models.kde``). With V_g the trace of the pool's 1/n covariance,
a batch of n_s iid draws from the KDE (mean = pool mean, covariance trace V + λh²d) gives
E V_g = (1 − 1/n_s)(E V_{g−1} + λh²d), so, with a = 1 − 1/n_s and V_0 = (1 − 1/n_0) t*,

    E V_g = a^g V_0 + λh²d · a (1 − a^g)/(1 − a)  →  λh²d (n_s − 1),

and the recorded ``param.trace_cov`` = V_g + h²d. Unlike the Gaussian loop the spread does not
collapse: resampling shrinks it by a, the kernel adds λh²d back, and the limit is λh²d(n_s − 1) + h²d.
The pool mean is a martingale whose steps never die out:
E||μ_g − μ*||² = t*/n_0 + Σ_{k<g} (E V_k + λh²d)/n_s, growing linearly in g.
The general policies are handled by ``autophagy.theory.moments`` (``family="kde"``).
"""
from __future__ import annotations

import numpy as np


def kde_replace_pool_trace(t_star: float, h: float, d: int, n_initial: int, n_synthetic: int, generations: int,
                           bias: float = 1.0) -> np.ndarray:
    """E V_g (trace of the pool's 1/n covariance), g = 0..G."""
    a = 1 - 1 / n_synthetic
    g = np.arange(generations + 1)
    kernel = bias * h * h * d
    return a ** g * (1 - 1 / n_initial) * t_star + kernel * a * (1 - a ** g) / (1 - a)


def kde_replace_trace(t_star: float, h: float, d: int, n_initial: int, n_synthetic: int, generations: int,
                      bias: float = 1.0) -> np.ndarray:
    """E param.trace_cov = E V_g + h²d."""
    return kde_replace_pool_trace(t_star, h, d, n_initial, n_synthetic, generations, bias) + h * h * d


def kde_replace_mean_sq_error(t_star: float, h: float, d: int, n_initial: int, n_synthetic: int, generations: int,
                              bias: float = 1.0) -> np.ndarray:
    """E||μ_g − μ*||² = t*/n_0 + Σ_{k<g} (E V_k + λh²d)/n_s."""
    V = kde_replace_pool_trace(t_star, h, d, n_initial, n_synthetic, generations, bias)
    steps = np.concatenate([[t_star / n_initial], (V[:-1] + bias * h * h * d) / n_synthetic])
    return np.cumsum(steps)
