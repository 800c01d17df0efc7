"""The multivariate Gaussian family, fitted by maximum likelihood (or with the 1/(n−1) covariance).

This is MAD's analytic example (Alemohammad et al. 2023, §3.1) and Bertrand et al.'s (2024)
warm-up: μ̂ = x̄ and Σ̂ = S/n (``estimator: mle``) or S/(n−1) (``unbiased``), with the scatter
matrix S = Σ_i (x_i − x̄)(x_i − x̄)ᵀ. With ``covariance: diag`` only the per-coordinate
variances are kept. MAD's sampling bias λ draws from N(μ, λΣ).

Because (x̄, S) are sufficient, one full self-consuming step "sample n points from N(μ, λΣ),
refit" has an exact law that needs no samples (``GaussianModel.exact_refit``):
x̄ ~ N(μ, λΣ/n) and, independently, S ~ Wishart_d(n−1, λΣ) (Anderson 2003, Thm 3.3.2),
drawn with the Bartlett decomposition. This costs O(R d²) per step instead of O(R n d).

Shapes: data ``(R, n, d)``; a model holds ``mean (R, d)`` and ``cov (R, d, d)``.
"""
from __future__ import annotations

import math
from typing import Literal, Optional

import numpy as np
from pydantic import Field

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams

_LOG_2PI = math.log(2 * math.pi)


def moment_metrics(mean: np.ndarray, cov: np.ndarray, info: SourceInfo) -> dict[str, np.ndarray]:
    """``mean_sq_error`` (if the truth has a mean), ``trace_cov`` and ``logdet_cov`` of a model's first two moments.

    ``mean (R, d)``, ``cov (R, d, d)``; returns ``(R,)`` arrays. A singular covariance has log-det −inf.
    Shared by the kde and gmm families, whose overall moments are computed in closed form.
    """
    out: dict[str, np.ndarray] = {}
    truth_mean = info.truth.get("mean") if info.truth else None
    if truth_mean is not None:
        out["mean_sq_error"] = ((mean - np.asarray(truth_mean, dtype=float)) ** 2).sum(-1)
    if cov.shape[-1] == 1:  # 1-D: skip the batched LAPACK calls (the hot path of large replicate studies)
        var = cov[..., 0, 0]
        out["trace_cov"] = var.copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            out["logdet_cov"] = np.where(var > 0, np.log(var), -np.inf)
        return out
    out["trace_cov"] = np.trace(cov, axis1=-2, axis2=-1)
    sign, logdet = np.linalg.slogdet(cov)
    out["logdet_cov"] = np.where(sign > 0, logdet, -np.inf)
    return out


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square roots ``(..., d, d)`` of PSD matrices (eigenvalues clipped at 0; works when singular)."""
    w, v = np.linalg.eigh(cov)
    return (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)


class GaussianModel:
    """R fitted Gaussians N(mean[r], cov[r]).

    ``mean (R, d)``, ``cov (R, d, d)`` (diagonal when ``diag``); ``estimator`` ("mle" | "unbiased")
    is remembered so that ``exact_refit`` reproduces the family's fit.
    """

    def __init__(self, mean: np.ndarray, cov: np.ndarray, diag: bool = False, estimator: str = "mle"):
        self.mean, self.cov, self.diag, self.estimator = mean, cov, bool(diag), estimator
        self._factor: Optional[np.ndarray] = None

    @property
    def factor(self) -> np.ndarray:
        """``(R, d, d)`` matrices F with F Fᵀ = cov (symmetric square roots; valid for singular cov too)."""
        if self._factor is None:
            if self.diag:
                sd = np.sqrt(np.clip(np.diagonal(self.cov, axis1=-2, axis2=-1), 0.0, None))
                self._factor = sd[..., :, None] * np.eye(sd.shape[-1])
            else:
                self._factor = _psd_sqrt(self.cov)
        return self._factor

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """``(R, m, d)`` draws from N(μ, λΣ) (MAD's sampling bias λ = ``bias``)."""
        R, d = self.mean.shape
        if d == 1:  # the hot path of large replicate studies: scaled and shifted block by block, in cache
            sd = math.sqrt(bias) * np.sqrt(np.clip(self.cov[:, 0, 0], 0.0, None))
            return streams.normal(m, 1, scale=sd, shift=self.mean[:, 0])
        z = streams.normal(m, d)
        if self.diag:  # in place
            sd = np.sqrt(np.clip(np.diagonal(self.cov, axis1=-2, axis2=-1), 0.0, None))
            z *= math.sqrt(bias) * sd[:, None, :]
        else:
            z = z @ np.swapaxes(self.factor, -1, -2)
            z *= math.sqrt(bias)
        z += self.mean[:, None, :]
        return z

    def exact_refit(self, n: int, streams: Streams, bias: float = 1.0, estimator: Optional[str] = None) -> "GaussianModel":
        """The model that refitting on ``n`` fresh samples of this one (bias λ) would give, drawn from its exact law.

        x̄ ~ N(μ, λΣ/n); S ~ Wishart(n−1, λΣ) = λ F B Bᵀ Fᵀ with F Fᵀ = Σ and B the Bartlett factor
        (B_ii² ~ χ²_{n−1−i}, B_ij ~ N(0, 1) below the diagonal); when n−1 < d the singular Wishart is
        drawn as Zᵀ Z with Z an (n−1)×d standard normal matrix. ``diag``: S_ii ~ λ σ_i² χ²_{n−1}.
        Returns the family's estimate: Σ' = S/n (mle) or S/(n−1) (unbiased). Cost O(R d²) (+ O(R d³) for F).
        """
        estimator = estimator or self.estimator
        denom = _denominator(n, estimator)
        R, d = self.mean.shape
        k = n - 1
        mean = self.mean + math.sqrt(bias / n) * np.einsum("rij,rj->ri", self.factor, streams.normal(d))
        if self.diag:
            var = np.diagonal(self.cov, axis1=-2, axis2=-1)
            chi2 = streams.draw(lambda g, s: g.chisquare(k, s), (d,)) if k > 0 else np.zeros((R, d))
            return GaussianModel(mean, (bias * var * chi2 / denom)[..., None] * np.eye(d), True, estimator)
        if k >= d:  # Bartlett decomposition of Wishart(k, I_d)
            dof = k - np.arange(d)
            chi2 = streams.draw(lambda g, s: g.chisquare(dof, s), (d,))
            B = np.tril(streams.normal(d, d), -1) + np.sqrt(chi2)[..., None] * np.eye(d)
        else:  # rank-deficient Wishart: W = Zᵀ Z with Z (k, d); B = Zᵀ (d, k)
            B = np.swapaxes(streams.normal(k, d), -1, -2)
        FB = self.factor @ B
        scatter = bias * (FB @ np.swapaxes(FB, -1, -2))
        return GaussianModel(mean, scatter / denom, False, estimator)

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """mean_sq_error, trace_cov, logdet_cov and, for a Gaussian truth, the squared 2-Wasserstein distance
        w2_sq = ||μ−μ*||² + tr(Σ + Σ* − 2(Σ*^{1/2} Σ Σ*^{1/2})^{1/2}) (Dowson & Landau 1982); in 1-D, against a
        source with a density, the total variation ``tv`` (Fu et al. 2024's distance; see ``tv``)."""
        out = moment_metrics(self.mean, self.cov, info)
        truth = info.truth or {}
        if truth.get("gaussian") and truth.get("mean") is not None and truth.get("cov") is not None:
            mu_star, cov_star = np.asarray(truth["mean"], float), np.asarray(truth["cov"], float)
            if cov_star.size == 1:  # 1-D: (σ − σ*)²
                var = np.clip(self.cov[..., 0, 0], 0.0, None)
                bures = var + cov_star.item() - 2 * np.sqrt(var * cov_star.item())
            else:
                root = _psd_sqrt(cov_star)
                cross = np.linalg.eigvalsh(root @ self.cov @ root)
                bures = (np.trace(self.cov, axis1=-2, axis2=-1) + np.trace(cov_star)
                         - 2 * np.sqrt(np.clip(cross, 0, None)).sum(-1))
            out["w2_sq"] = ((self.mean - mu_star) ** 2).sum(-1) + np.clip(bures, 0.0, None)
        if self.mean.shape[-1] == 1:  # 1-D: exact, O(R); 2-D costs a grid per replicate: the density-tv metric
            tv = self.tv(info)
            if tv is not None:
                out["tv"] = tv
        return out

    def tv(self, info: SourceInfo) -> Optional[np.ndarray]:
        """Total variation ``(R,)`` to a source with a known density (``autophagy.tv``): exact against a 1-D
        Gaussian, grid quadrature against a mixture or in 2-D; None in higher dimension or without a density."""
        from ..tv import mixture_tv

        return mixture_tv(np.ones((self.mean.shape[0], 1)), self.mean[:, None], self.cov[:, None], info)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """Gaussian log-density of ``x (R, n, d)`` under each replicate's model: ``(R, n)`` (−inf off a singular support)."""
        d = self.mean.shape[-1]
        w, v = np.linalg.eigh(self.cov)
        proj = (np.asarray(x, float) - self.mean[:, None, :]) @ v  # (R, n, d) in the eigenbasis
        with np.errstate(divide="ignore", invalid="ignore"):
            maha = (proj ** 2 / w[:, None, :]).sum(-1)
            logdet = np.log(w).sum(-1)
        out = -0.5 * (maha + logdet[:, None] + d * _LOG_2PI)
        return np.where(np.isnan(out), -np.inf, out)


def _scatter_1d(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """S = Σ (x_i − x̄)² per row of ``x (R, n)``, as Σ x_i² − n x̄² (one pass, no temporary).

    That form loses about log10(x̄²/(S/n)) digits to cancellation, so rows with x̄² > 10⁶ S/n (where
    fewer than ~9 correct digits would remain) are recomputed from the centred values.
    """
    n = x.shape[1]
    S = np.einsum("rn,rn->r", x, x) - n * mean * mean
    risky = ~(S > 1e-6 * n * mean * mean)  # also catches S <= 0 and NaN
    if risky.any():
        c = x[risky] - mean[risky, None]
        S[risky] = np.einsum("rn,rn->r", c, c)
    return S


def _denominator(n: int, estimator: str) -> int:
    if estimator == "unbiased":
        if n < 2:
            raise ConfigError("model.estimator", estimator, "mle when a training set has a single point (n − 1 = 0)")
        return n - 1
    return n


class GaussianFamily:
    """The ``gaussian`` family: closed-form fit of R Gaussians to ``(R, n, d)`` data."""

    batched = True

    class Options(Options):
        estimator: Literal["mle", "unbiased"] = Field(
            "mle", description="covariance estimator: mle divides the scatter by n, unbiased by n − 1")
        covariance: Literal["full", "diag"] = Field("full", description="full covariance or per-coordinate variances")

    def __init__(self, options: "GaussianFamily.Options", info: SourceInfo):
        self.options, self.info = options, info

    def check_train_size(self, n: int) -> None:
        """The unbiased estimator divides by n − 1 (checked when a run is built)."""
        _denominator(n, self.options.estimator)

    def fit(self, data: np.ndarray, streams: Streams, init=None) -> GaussianModel:
        """μ̂ = x̄, Σ̂ = S/n or S/(n−1) per replicate (vectorised; ``streams`` and ``init`` are unused)."""
        x = np.asarray(data, dtype=float)
        R, n, d = x.shape
        denom = _denominator(n, self.options.estimator)
        mean = x.mean(axis=1)
        if d == 1:  # the hot path of large replicate studies: two passes, no centred copy
            return GaussianModel(mean, _scatter_1d(x[..., 0], mean[:, 0])[:, None, None] / denom,
                                 self.options.covariance == "diag", self.options.estimator)
        c = x - mean[:, None, :]
        if self.options.covariance == "diag":
            cov = ((c ** 2).sum(axis=1) / denom)[..., None] * np.eye(d)
        else:
            cov = (np.swapaxes(c, -1, -2) @ c) / denom
        return GaussianModel(mean, cov, self.options.covariance == "diag", self.options.estimator)
