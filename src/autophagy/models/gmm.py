"""Gaussian mixture models fitted by EM (scikit-learn's ``GaussianMixture``), one per replicate.

EM is iterative and data-dependent, so the fit loops over replicates (each with its own
generator from the seed tree, ``streams.generators()``); everything after the fit is
vectorised over R from the stacked parameters ``weights (R, K)``, ``means (R, K, d)``,
``covs (R, K, d, d)``. We never call ``GaussianMixture.sample``: it re-seeds from
``random_state`` on every call (the same draws each generation) and returns the samples
grouped by component. MAD's sampling bias λ draws each component as N(μ_k, λΣ_k).

With ``loop.warm_start`` the previous generation's mixture initialises EM (``weights_init``,
``means_init``, ``precisions_init``), a common practice when retraining a deployed model.
"""
from __future__ import annotations

import math
from typing import Literal, Optional

import numpy as np
from pydantic import Field, PositiveInt

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams
from .gaussian import moment_metrics

_LOG_2PI = math.log(2 * math.pi)


class GMMModel:
    """R mixtures: ``weights (R, K)``, ``means (R, K, d)``, ``covs (R, K, d, d)`` (diagonal ones stored as matrices)."""

    def __init__(self, weights: np.ndarray, means: np.ndarray, covs: np.ndarray):
        self.weights, self.means, self.covs = weights, means, covs
        self.chol = np.linalg.cholesky(covs)  # (R, K, d, d), lower

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """``(R, m, d)``: component k with probability w_k (inverse CDF of a uniform), then N(μ_k, λΣ_k)."""
        R, K, d = self.means.shape
        u = streams.uniform(m)  # (R, m)
        z = streams.normal(m, d)
        cum = np.cumsum(self.weights, axis=1)
        cum /= cum[:, -1:]
        comp = np.minimum((u[..., None] >= cum[:, None, :]).sum(-1), K - 1)  # (R, m)
        out = np.empty((R, m, d))
        scale = math.sqrt(bias)
        for k in range(K):  # K small: one vectorised pass per component
            draw = self.means[:, k, None, :] + scale * (z @ np.swapaxes(self.chol[:, k], -1, -2))
            np.copyto(out, draw, where=(comp == k)[..., None])
        return out

    def parts(self, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Replicate r's ``(weights (K,), means (K, d), covs (K, d, d))``."""
        return self.weights[r], self.means[r], self.covs[r]

    def overall_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mixture mean ``(R, d)`` = Σ w_k μ_k and covariance ``(R, d, d)`` = Σ w_k (Σ_k + μ_k μ_kᵀ) − μ μᵀ."""
        w = self.weights[..., None]
        mean = (w * self.means).sum(1)
        second = (np.einsum("rk,rkij->rij", self.weights, self.covs)
                  + np.einsum("rk,rki,rkj->rij", self.weights, self.means, self.means))
        return mean, second - mean[:, :, None] * mean[:, None, :]

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """mean_sq_error, trace_cov and logdet_cov of the mixture's overall mean and covariance; in 1-D,
        against a source with a density, the total variation ``tv`` (grid quadrature, ``autophagy.tv``)."""
        out = moment_metrics(*self.overall_moments(), info)
        if self.means.shape[-1] == 1:  # 1-D: 1024 nodes per replicate; 2-D: the density-tv metric (opt-in)
            tv = self.tv(info)
            if tv is not None:
                out["tv"] = tv
        return out

    def tv(self, info: SourceInfo) -> Optional[np.ndarray]:
        """Total variation ``(R,)`` to a source with a known density, by quadrature in 1-D and 2-D (else None)."""
        from ..tv import mixture_tv

        return mixture_tv(self.weights, self.means, self.covs, info)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log Σ_k w_k N(x; μ_k, Σ_k) for ``x (R, n, d)``: ``(R, n)``."""
        x = np.asarray(x, dtype=float)
        R, K, d = self.means.shape
        inv = np.linalg.inv(self.chol)  # (R, K, d, d): L⁻¹
        half_logdet = np.log(np.diagonal(self.chol, axis1=-2, axis2=-1)).sum(-1)  # (R, K)
        with np.errstate(divide="ignore"):
            logw = np.log(self.weights)
        terms = np.empty((K,) + x.shape[:2])
        for k in range(K):
            y = (x - self.means[:, k, None, :]) @ np.swapaxes(inv[:, k], -1, -2)
            terms[k] = logw[:, k, None] - half_logdet[:, k, None] - 0.5 * ((y ** 2).sum(-1) + d * _LOG_2PI)
        top = terms.max(0)
        return top + np.log(np.exp(terms - top).sum(0))


class GMMFamily:
    """The ``gmm`` family: R scikit-learn Gaussian mixtures, fitted one replicate at a time."""

    batched = True

    class Options(Options):
        components: PositiveInt = Field(8, description="number of mixture components K")
        covariance_type: Literal["full", "diag"] = "full"
        max_iter: PositiveInt = Field(100, description="EM iterations at most")
        reg_covar: float = Field(1e-6, ge=0, description="added to covariance diagonals for stability")
        n_init: PositiveInt = Field(1, description="EM restarts (best likelihood kept)")

    def __init__(self, options: "GMMFamily.Options", info: SourceInfo):
        self.options, self.info = options, info

    def check_train_size(self, n: int) -> None:
        """EM needs at least as many points as components (checked when a run is built)."""
        if n < self.options.components:
            raise ConfigError("model.components", self.options.components,
                              f"at most the smallest training set of this loop ({n} points)")

    def fit(self, data: np.ndarray, streams: Streams, init: Optional[GMMModel] = None) -> GMMModel:
        """Fit ``data (R, n, d)`` replicate by replicate; ``init`` (warm start) initialises EM."""
        from threadpoolctl import threadpool_limits

        x = np.asarray(data, dtype=float)
        R, n, d = x.shape
        K = self.options.components
        if n < K:
            raise ConfigError("model.components", K, f"at most the training-set size {n}")
        warm = init if isinstance(init, GMMModel) and init.means.shape == (R, K, d) else None
        weights, means, covs = np.empty((R, K)), np.empty((R, K, d)), np.empty((R, K, d, d))
        with threadpool_limits(limits=1):  # tiny per-replicate problems: BLAS/OpenMP threads only add overhead
            for r, g in enumerate(streams.generators()):
                weights[r], means[r], covs[r] = self._fit_one(x[r], g, None if warm is None else warm.parts(r))
        return GMMModel(weights, means, covs)

    def _fit_one(self, x: np.ndarray, g: np.random.Generator, start) -> tuple:
        """EM on one ``(n, d)`` training set; ``start`` = (weights, means, covs) of a previous mixture or None."""
        from sklearn.mixture import GaussianMixture

        o, d = self.options, x.shape[-1]
        kw = {}
        if start is not None:
            w, mu, cov = start
            prec = np.linalg.inv(cov)
            kw = dict(weights_init=w / w.sum(), means_init=mu,
                      precisions_init=prec if o.covariance_type == "full" else np.diagonal(prec, axis1=-2, axis2=-1))
        gm = GaussianMixture(n_components=o.components, covariance_type=o.covariance_type, max_iter=o.max_iter,
                             reg_covar=o.reg_covar, n_init=o.n_init, random_state=int(g.integers(2**31 - 1)), **kw)
        try:
            gm.fit(x)
        except (ValueError, np.linalg.LinAlgError) as exc:  # e.g. singular covariances with reg_covar = 0
            raise ConfigError("model.reg_covar", o.reg_covar, "a larger reg_covar (EM failed on a training set: "
                              f"{str(exc).splitlines()[0][:120]})") from None
        cov = gm.covariances_ if o.covariance_type == "full" else gm.covariances_[..., None] * np.eye(d)
        return gm.weights_, gm.means_, cov
