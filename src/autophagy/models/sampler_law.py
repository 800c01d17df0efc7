"""Closed-form output laws of the DDPM and flow-matching samplers for Gaussian data and an exact network.

Why: a sampler that shrinks variance by itself looks exactly like model collapse in a loop
(ARCHITECTURE.md, house rule 9). For 1-D data N(μ, s²) (or one eigen-direction of a Gaussian in
network space) the exact noise predictor and the exact velocity field are affine in x, so every
sampler step maps x to ``A x + b`` plus independent Gaussian noise of variance ``c``. The output is
then Gaussian, with mean and variance following the affine recursion

    m <- A m + b,        v <- A² v + c,

started from the initial noise N(0, λ). ``variance_factor(...)`` = v_out / s², the sampler's
per-generation variance factor: 1 for an exact sampler; below 1 the instrument itself collapses.

Exact predictors (network space; ᾱ_t the DDPM signal level, σ = σ_min):

* DDPM (Ho et al. 2020, eq. 4): x_t ~ N(√ᾱ μ, ᾱ s² + 1 − ᾱ), so ε*(x) = √(1−ᾱ)(x − √ᾱ μ) / (ᾱ s² + 1 − ᾱ).
* Flow matching (Lipman et al. 2023, eqs. 20–23) with independent coupling: x_t = a_t x_0 + t x_1,
  a_t = 1 − (1 − σ)t, so v*(x, t) = μ + (t s² − (1 − σ) a_t)(x − t μ) / (a_t² + t² s²).

All functions work on floats or NumPy arrays of ``s2`` (elementwise), in float64.
"""
from __future__ import annotations

import math

import numpy as np


def _ddpm_step_coeffs(ab_t: float, ab_prev: float, mu, s2):
    """ε* = c·(x − √ᾱ μ) and x̂_0 = p·x + q for the exact predictor at signal level ``ab_t``."""
    c = math.sqrt(1 - ab_t) / (ab_t * s2 + 1 - ab_t)
    p = (1 - math.sqrt(1 - ab_t) * c) / math.sqrt(ab_t)
    q = math.sqrt(1 - ab_t) * c * mu
    return c, p, q


def ddpm_law(betas: np.ndarray, sampler: str, variance: str = "beta", taus=None, mu=0.0, s2=1.0, lam: float = 1.0):
    """Mean and variance of the DDPM sampler's output for data N(μ, s²) and the exact ε.

    ``betas (T,)`` the schedule; ``sampler`` ``ddpm`` (ancestral, noise variance ``beta`` = β_t or
    ``posterior`` = β̃_t, no noise at the last step; Ho et al. eq. 6–7 and §3.2) or ``ddim``
    (Song et al. 2021, η = 0, on the step indices ``taus``). ``lam`` is the temperature λ: x_T ~ N(0, λ)
    and ancestral noise scaled by λ (the unconditional sampling bias of ``DDPMModel``).
    """
    betas = np.asarray(betas, dtype=float)
    ab = np.cumprod(1.0 - betas)
    m, v = 0.0 * np.asarray(s2, dtype=float), lam + 0.0 * np.asarray(s2, dtype=float)
    if sampler == "ddpm":
        for t in range(len(betas) - 1, -1, -1):
            prev = ab[t - 1] if t > 0 else 1.0
            c, p, q = _ddpm_step_coeffs(ab[t], prev, mu, s2)
            k1 = math.sqrt(prev) * betas[t] / (1 - ab[t])
            k2 = math.sqrt(1 - betas[t]) * (1 - prev) / (1 - ab[t])
            noise = 0.0
            if t > 0:
                noise = betas[t] if variance == "beta" else betas[t] * (1 - prev) / (1 - ab[t])
            A = k1 * p + k2
            m, v = A * m + k1 * q, A * A * v + noise * lam
        return m, v
    steps = list(np.asarray(taus)[::-1])
    for i, t in enumerate(steps):
        prev = ab[steps[i + 1]] if i + 1 < len(steps) else 1.0
        c, p, q = _ddpm_step_coeffs(ab[t], prev, mu, s2)
        A = math.sqrt(prev) * p + math.sqrt(1 - prev) * c
        b = math.sqrt(prev) * q - math.sqrt(1 - prev) * c * math.sqrt(ab[t]) * mu
        m, v = A * m + b, A * A * v
    return m, v


def flow_law(solver: str, steps: int, sigma_min: float = 0.0, mu=0.0, s2=1.0, lam: float = 1.0):
    """Mean and variance of the flow-matching ODE sampler's output (``steps`` Euler or Heun steps from
    t = 0 to 1, x_0 ~ N(0, λ)) for data N(μ, s²) and the exact independent-coupling velocity.

    The exact flow ends at N(μ, λ·(s² + σ²)) only for λ = 1 (σ = σ_min widens the target, as in
    Lipman et al.'s model); the ODE solver's error is what this function measures.
    """
    s2 = np.asarray(s2, dtype=float)
    sig = sigma_min

    def coeffs(t):  # v*(x, t) = k x + j
        a = 1 - (1 - sig) * t
        k = (t * s2 - (1 - sig) * a) / (a * a + t * t * s2)
        return k, mu - k * t * mu

    m, v = 0.0 * s2, lam + 0.0 * s2
    h = 1.0 / steps
    for i in range(steps):
        t = i * h
        k, j = coeffs(t)
        if solver == "euler":
            A, b = 1 + h * k, h * j
        else:  # Heun: x + h/2 (v(x, t) + v(x + h v(x, t), t + h))
            k2, j2 = coeffs(t + h)
            A = 1 + 0.5 * h * (k + k2 * (1 + h * k))
            b = 0.5 * h * (j + k2 * h * j + j2)
        m, v = A * m + b, A * A * v
    return m, v


def ddpm_variance_factor(betas, sampler: str, variance: str = "beta", taus=None, s2=1.0) -> np.ndarray:
    """v_out / s² for centred data N(0, s²) (λ = 1): the DDPM sampler's per-generation variance factor."""
    return ddpm_law(betas, sampler, variance, taus, 0.0, s2, 1.0)[1] / np.asarray(s2, dtype=float)


def flow_variance_factor(solver: str, steps: int, sigma_min: float = 0.0, s2=1.0) -> np.ndarray:
    """v_out / s² for centred data N(0, s²) (λ = 1): the flow sampler's per-generation variance factor."""
    return flow_law(solver, steps, sigma_min, 0.0, s2, 1.0)[1] / np.asarray(s2, dtype=float)


# The settings documented in docs/neural.md (table "Sampler fidelity") and tested against the samplers with
# oracle networks in tests/test_oracle.py. Keys are model options; "default" marks the families' defaults.
DDPM_SETTINGS = [
    {"timesteps": 100, "schedule": "linear", "sampler": "ddpm", "variance": "posterior"},  # the old default
    {"timesteps": 100, "schedule": "linear", "sampler": "ddpm", "variance": "beta"},
    {"timesteps": 100, "schedule": "cosine", "sampler": "ddpm", "variance": "posterior"},
    {"timesteps": 100, "schedule": "cosine", "sampler": "ddpm", "variance": "beta", "default": True},
    {"timesteps": 1000, "schedule": "linear", "sampler": "ddpm", "variance": "posterior"},
    {"timesteps": 1000, "schedule": "cosine", "sampler": "ddpm", "variance": "beta"},
    {"timesteps": 100, "schedule": "cosine", "sampler": "ddim", "ddim_steps": 50},
    {"timesteps": 1000, "schedule": "cosine", "sampler": "ddim", "ddim_steps": 500},
]
FLOW_SETTINGS = [
    {"solver": "euler", "steps": 50},  # the old default
    {"solver": "euler", "steps": 200},
    {"solver": "heun", "steps": 10},
    {"solver": "heun", "steps": 25, "default": True},
    {"solver": "heun", "steps": 50},
]
TABLE_S2 = (0.05, 0.25, 1.0, 4.0)  # network-space variances in the table; 1 = standardised data


def ddpm_setting_law(setting: dict, mu=0.0, s2=1.0, lam: float = 1.0):
    """``ddpm_law`` for a dict of ``ddpm`` options (schedule, timesteps, sampler, variance, ddim_steps)."""
    from .ddpm import beta_schedule, ddim_steps

    T = setting["timesteps"]
    betas = beta_schedule(setting["schedule"], T)
    taus = ddim_steps(T, setting.get("ddim_steps", 50))
    return ddpm_law(betas, setting["sampler"], setting.get("variance", "beta"), taus, mu, s2, lam)


def flow_setting_law(setting: dict, mu=0.0, s2=1.0, lam: float = 1.0):
    """``flow_law`` for a dict of ``flow-matching`` options (solver, steps, sigma_min)."""
    return flow_law(setting["solver"], setting["steps"], setting.get("sigma_min", 0.0), mu, s2, lam)


def fidelity_table() -> list[tuple[str, str, list[float]]]:
    """Rows ``(family, setting, [variance factor at each TABLE_S2])`` for docs/neural.md."""
    s2 = np.asarray(TABLE_S2)
    rows = []
    for st in DDPM_SETTINGS:
        label = ", ".join(f"{k}: {v}" for k, v in st.items() if k != "default")
        rows.append(("ddpm", label + (" (default)" if st.get("default") else ""),
                     list(ddpm_setting_law(st, 0.0, s2)[1] / s2)))
    for st in FLOW_SETTINGS:
        label = ", ".join(f"{k}: {v}" for k, v in st.items() if k != "default")
        rows.append(("flow-matching", label + (" (default)" if st.get("default") else ""),
                     list(flow_setting_law(st, 0.0, s2)[1] / s2)))
    return rows
