"""The ``mixture`` source: an isotropic Gaussian mixture P_r = Σ_k w_k N(μ_k, σ_k² I).

Why: multi-modal targets are where self-consuming loops lose diversity first. The 8-mode ring
and the 3×3 grid are the standard 2-D benchmarks for mode collapse (Alemohammad et al. 2023,
"Self-Consuming Generative Models Go MAD", Fig. 4; Bertrand et al. 2024, §5), and a geometric
weight imbalance w_k ∝ r^k shows how rare modes vanish first (Shumailov et al. 2024, "tails
disappear").

Layouts (``layout``):

* ``ring`` (default): ``n_components`` means equally spaced on a circle of ``radius``,
  μ_k = radius · (cos 2πk/K, sin 2πk/K).
* ``grid``: a ``grid_size`` × ``grid_size`` square of means ``spacing`` apart, centred at 0.
* ``custom``: ``means``, a K × d list.

``std`` is σ (one number, or one per component); ``weights`` (positive, normalised) or
``imbalance`` r ∈ (0, 1] (w_k ∝ r^k) set the mixing weights, default uniform.

``info.truth``: ``components`` = (weights (K,), means (K, d), covs (K, d, d)), the mixture's
exact ``mean`` (d,) and ``cov`` (d, d) (law of total covariance), ``gaussian`` (K == 1).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional, Union

import numpy as np
from pydantic import Field, FiniteFloat, PositiveFloat, PositiveInt, field_validator, model_validator

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams
from .gaussian import number_or_list


def mixture_moments(weights: np.ndarray, means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean ``(d,)`` and covariance ``(d, d)`` of Σ_k w_k N(μ_k, Σ_k): E[Σ_K] + Cov[μ_K]."""
    w, mus, covs = np.asarray(weights, float), np.asarray(means, float), np.asarray(covs, float)
    mean = w @ mus
    centred = mus - mean
    cov = np.einsum("k,kij->ij", w, covs) + np.einsum("k,ki,kj->ij", w, centred, centred)
    return mean, cov


def cumulative(weights: np.ndarray) -> np.ndarray:
    """Cumulative weights ``(K,)`` whose last entry is exactly 1, for ``choose``."""
    cdf = np.cumsum(np.asarray(weights, dtype=float))
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


def choose(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Component indices (shape of ``u``) for uniforms ``u`` in [0, 1): P(k) = cdf[k] − cdf[k−1]."""
    return np.searchsorted(cdf, u, side="right").astype(np.int64)


def sample_isotropic(weights: np.ndarray, means: np.ndarray, stds: np.ndarray, n: int,
                     streams: Streams) -> tuple[np.ndarray, np.ndarray]:
    """``(R, n, d)`` draws from Σ_k w_k N(μ_k, σ_k² I) and their ``(R, n)`` int64 components.

    ``weights (K,)``, ``means (K, d)``, ``stds (K,)``.

    The component comes from ``streams.child("component")`` and the noise from
    ``streams.child("noise")``, so both are independent of each other's sizes.
    """
    k = choose(cumulative(weights), streams.child("component").uniform(int(n)))  # (R, n)
    z = streams.child("noise").normal(int(n), means.shape[1])
    return means[k] + stds[k][..., None] * z, k


class MixtureSource:
    """An isotropic Gaussian mixture (see the module docstring): ``sample`` returns ``(R, n, d)``."""

    class Options(Options):
        layout: Literal["ring", "grid", "custom"] = Field("ring", description="where the component means sit")
        n_components: PositiveInt = Field(8, description="ring: number of components K")
        radius: PositiveFloat = Field(2.0, description="ring: radius of the circle of means")
        grid_size: PositiveInt = Field(3, description="grid: g, giving K = g² components")
        spacing: PositiveFloat = Field(2.0, description="grid: distance between neighbouring means")
        means: Optional[list[list[FiniteFloat]]] = Field(None, description="custom: the K x d component means")
        std: Union[PositiveFloat, list[PositiveFloat]] = Field(0.2, description="component std σ, or one per component")
        weights: Optional[list[FiniteFloat]] = Field(None, description="mixing weights (positive; normalised)")
        imbalance: Optional[float] = Field(None, gt=0, le=1, description="r: weights ∝ r^k (exclusive with weights)")

        @field_validator("std", mode="before")
        @classmethod
        def _std(cls, value):
            return number_or_list(value, "data.std", positive=True)

        @model_validator(mode="after")
        def _consistent(self):
            only = {"ring": ("n_components", "radius"), "grid": ("grid_size", "spacing"), "custom": ("means",)}
            for layout, names in only.items():
                for name in names:
                    # a non-default value for another layout is a mistake; defaults (a dumped config) pass
                    if layout != self.layout and getattr(self, name) != type(self).model_fields[name].default:
                        raise ConfigError(f"data.{name}", getattr(self, name), f"data.layout: {layout}",
                                          problem=f"only used with data.layout: {layout} (layout is {self.layout})")
            if self.layout == "custom":
                if not self.means:
                    raise ConfigError("data.means", self.means, "a non-empty K x d list of component means")
                d = len(self.means[0])
                if d == 0 or any(len(row) != d for row in self.means):
                    raise ConfigError("data.means", self.means, "a K x d list whose rows all have the same length d >= 1")
            K = self.n_components_resolved()
            if isinstance(self.std, list) and len(self.std) != K:
                raise ConfigError("data.std", self.std, f"one number, or a list of K = {K} positive numbers")
            if self.weights is not None and self.imbalance is not None:
                raise ConfigError("data.imbalance", self.imbalance, "either data.weights or data.imbalance, not both")
            if self.weights is not None:
                if len(self.weights) != K or min(self.weights) <= 0:
                    raise ConfigError("data.weights", self.weights, f"a list of K = {K} positive numbers")
            return self

        def n_components_resolved(self) -> int:
            """K for this layout."""
            return {"ring": self.n_components, "grid": self.grid_size ** 2,
                    "custom": len(self.means or ())}[self.layout]

    def __init__(self, options: "MixtureSource.Options" = None, base_dir: Path = Path(".")):
        o = self.options = options or self.Options()
        self.means = self._means()
        K, d = self.means.shape
        self.stds = np.broadcast_to(np.asarray(o.std, dtype=float), (K,)).copy()
        if o.weights is not None:
            w = np.asarray(o.weights, dtype=float)
        elif o.imbalance is not None:
            w = float(o.imbalance) ** np.arange(K)
        else:
            w = np.ones(K)
        self.weights = w / w.sum()
        covs = self.stds[:, None, None] ** 2 * np.eye(d)
        mean, cov = mixture_moments(self.weights, self.means, covs)
        self.info = SourceInfo(dim=d, kind="vector", truth={
            "mean": mean, "cov": cov, "gaussian": K == 1,
            "components": (self.weights.copy(), self.means.copy(), covs)})

    def _means(self) -> np.ndarray:
        """Component means ``(K, d)``."""
        o = self.options
        if o.layout == "ring":
            angle = 2 * np.pi * np.arange(o.n_components) / o.n_components
            return o.radius * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
        if o.layout == "grid":
            axis = (np.arange(o.grid_size) - (o.grid_size - 1) / 2) * o.spacing
            xx, yy = np.meshgrid(axis, axis, indexing="ij")
            return np.stack([xx.ravel(), yy.ravel()], axis=-1)
        return np.asarray(o.means, dtype=float)

    def sample_labeled(self, n: int, streams: Streams) -> tuple[np.ndarray, np.ndarray]:
        """The points of ``sample(n, streams)`` and their ``(R, n)`` int64 component indices."""
        return sample_isotropic(self.weights, self.means, self.stds, n, streams)

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, d)`` i.i.d. mixture draws (component from uniforms vs the cumulative weights, then noise)."""
        return self.sample_labeled(n, streams)[0]
