"""Oracle networks: the exact noise predictor / velocity field of a Gaussian or Gaussian-mixture source.

``model.oracle: true`` puts one of these in place of the learned network of a ``ddpm`` or
``flow-matching`` model, so a loop's drift splits into discretisation error (the oracle lineage)
and learning error (learned minus oracle). The oracle ignores the training data: it is the
sampler applied to P_r itself, every generation.

Both processes are ``x_t = c·x_1 + s·ε`` with x_1 the data and ε ~ N(0, I) independent:
DDPM (Ho et al. 2020, eq. 4) has c = √ᾱ_t, s = √(1 − ᾱ_t); flow matching's path (Lipman et al.
2023, eq. 20) has c = t, s = 1 − (1 − σ_min) t. For a mixture Σ_k w_k N(μ_k, Σ_k), given
component k, x_t ~ N(c μ_k, C_k) with C_k = c² Σ_k + s² I, and

    E[ε | x_t, k]   = s · C_k⁻¹ (x − c μ_k)
    E[x_1 | x_t, k] = μ_k + c · Σ_k C_k⁻¹ (x − c μ_k),

averaged over the posterior responsibilities r_k(x) ∝ w_k N(x; c μ_k, C_k). The exact DDPM noise
predictor is E[ε | x_t] (= −s ∇log p_t); the exact flow velocity is E[x_1 | x_t] − (1 − σ_min) E[ε | x_t].
``C_k`` is diagonal in Σ_k's eigenbasis, so each step costs K small matrix products.

Everything is in network space: the truth is mapped through the same per-dimension standardisation
the learned model would use (``oracle_scaler``), computed from the source's exact mean and covariance.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..protocols import SourceInfo
from .torch_util import require_torch


def source_components(info: SourceInfo, family: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(weights (K,), means (K, d), covs (K, d, d))`` of a Gaussian / Gaussian-mixture source, or a ConfigError."""
    truth = info.truth or {}
    if truth.get("components") is not None:
        w, mu, cov = (np.asarray(c, dtype=float) for c in truth["components"])
        return w / w.sum(), mu.reshape(len(w), info.dim), cov.reshape(len(w), info.dim, info.dim)
    if truth.get("gaussian") and truth.get("mean") is not None and truth.get("cov") is not None:
        mean, cov = np.asarray(truth["mean"], dtype=float), np.asarray(truth["cov"], dtype=float)
        return np.ones(1), mean.reshape(1, info.dim), cov.reshape(1, info.dim, info.dim)
    raise ConfigError("model.oracle", True, "false", problem=f"the {family} oracle needs a source with a known "
                      "density; use false, or data.source gaussian, mixture or blobs")


def oracle_scaler(mode: str, info: SourceInfo, R: int, family: str):
    """The network-space map for an oracle model: exact standardisation from the source's moments."""
    from .nets import Scaler

    w, mu, cov = source_components(info, family)
    d = info.dim
    if mode == "standardize":
        mean = (w[:, None] * mu).sum(0)
        second = (w[:, None, None] * (cov + mu[:, :, None] * mu[:, None, :])).sum(0)
        std = np.sqrt(np.clip(np.diag(second) - mean ** 2, 0, None))
        std = np.where(std > 1e-8, std, 1.0)
        return Scaler(mode, np.tile(mean, (R, 1, 1)), np.tile(std, (R, 1, 1)))
    if mode == "none":
        return Scaler(mode, np.zeros((R, 1, d)), np.ones((R, 1, d)))
    raise ConfigError("model.scaling", mode, "auto, standardize or none with model.oracle: true")


class MixtureOracle:
    """Exact posterior expectations for a Gaussian mixture in network space (see the module docstring).

    ``shift``, ``scale`` ``(d,)``: the network-space map z = (x − shift) / scale applied to the truth.
    Call ``posterior(x (R, B, d), c, s, y=None)`` -> ``(E[x_1|x], E[ε|x])``, each ``(R, B, d)``;
    ``y (R, B)`` restricts to one component per point (the class-conditional expectations).
    """

    def __init__(self, info: SourceInfo, shift: np.ndarray, scale: np.ndarray, family: str, device: str = "cpu"):
        torch = require_torch()
        w, mu, cov = source_components(info, family)
        shift, scale = np.asarray(shift, dtype=float).reshape(-1), np.asarray(scale, dtype=float).reshape(-1)
        mu = (mu - shift) / scale
        cov = cov / np.outer(scale, scale)
        lam, U = np.linalg.eigh(cov)  # (K, d), (K, d, d)
        lam = np.clip(lam, 1e-12, None)
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float64, device=device)  # noqa: E731
        self.K = len(w)
        self.logw, self.mu, self.lam, self.U = as_t(np.log(w)), as_t(mu), as_t(lam), as_t(U)

    def posterior(self, x, c: float, s: float, y=None):
        torch = require_torch()
        x = x.double()
        logp, ex1, eeps = [], [], []
        for k in range(self.K):
            D = c * c * self.lam[k] + s * s  # (d,) eigenvalues of C_k
            z = (x - c * self.mu[k]) @ self.U[k]  # eigen-coordinates of x − c μ_k
            logp.append(self.logw[k] - 0.5 * (z * z / D).sum(-1) - 0.5 * torch.log(D).sum())
            ex1.append(self.mu[k] + (c * z * self.lam[k] / D) @ self.U[k].T)
            eeps.append((s * z / D) @ self.U[k].T)
        if y is not None:
            pick = lambda v: torch.stack(v, 2).gather(  # noqa: E731
                2, y[..., None, None].expand(*y.shape, 1, x.shape[-1])).squeeze(2)
            return pick(ex1), pick(eeps)
        r = torch.softmax(torch.stack(logp, -1), -1)[..., None]  # (R, B, K, 1)
        return (r * torch.stack(ex1, 2)).sum(2), (r * torch.stack(eeps, 2)).sum(2)

    def eps(self, x, alpha_bar: float, y=None):
        """Exact DDPM noise prediction E[ε | x_t] at signal level ᾱ ``(R, B, d)`` float32."""
        return self.posterior(x, alpha_bar ** 0.5, (1 - alpha_bar) ** 0.5, y)[1].float()

    def velocity(self, x, t: float, sigma_min: float = 0.0):
        """Exact flow-matching velocity E[x_1 − (1 − σ_min) x_0 | x_t] ``(R, B, d)`` float32."""
        ex1, eeps = self.posterior(x, t, 1 - (1 - sigma_min) * t)
        return (ex1 - (1 - sigma_min) * eeps).float()
