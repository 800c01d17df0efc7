"""scikit-learn's 2-D toy distributions as i.i.d. sources: ``moons``, ``circles``, ``swiss-roll``, ``blobs``.

Why: these are the low-dimensional non-Gaussian targets on which self-consuming loops are
usually pictured (Alemohammad et al. 2023, Fig. 4; Bertrand et al. 2024, §5). They follow
``sklearn.datasets.make_moons`` / ``make_circles`` / ``make_swiss_roll`` / ``make_blobs``, with one
deliberate difference: scikit-learn spaces the curve parameter evenly (``linspace``) and splits
the classes exactly in half, so its n points are not an i.i.d. sample and depend on n. Here every
point is drawn independently from the limiting distribution (class ~ uniform, parameter
~ uniform, then isotropic N(0, noise²) noise), vectorised over replicates, so a prefix of a sample
is a sample and results are comparable across n. It is also far faster than calling scikit-learn
once per replicate.

* ``moons``: class 0: (cos t, sin t); class 1: (1 − cos t, ½ − sin t); t ~ U(0, π).
* ``circles``: radius 1 (class 0) or ``factor`` (class 1) at angle t ~ U(0, 2π).
* ``swiss-roll``: t ~ U(1.5π, 4.5π), height h ~ U(0, 21); 3-D: (t cos t, h, t sin t); 2-D
  (default): the spiral (t cos t, t sin t). Noise is added in scikit-learn's units, then every
  coordinate is multiplied by ``scale`` (default 0.1, so the spiral fits in about [−1.4, 1.4]²
  like the other toys).
* ``blobs``: an equal-weight isotropic Gaussian mixture; with an integer ``centers`` the centres
  are drawn once, uniformly in ``center_box``, from a generator seeded by ``center_seed`` (an
  option, not the run's seed), so the source is the same distribution in every run and replicate.

``info.truth`` holds the exact ``mean`` and ``cov`` (moons, circles and swiss-roll by Gauss–Legendre
quadrature over the curve parameter, accurate to rounding; blobs in closed form, plus its
``components``) and ``gaussian: False`` (blobs: True only for one centre). ``sample_labeled``
returns the class (or blob) of each point alongside.
"""
from __future__ import annotations

import numbers
from pathlib import Path
from typing import Literal, Optional, Union

import numpy as np
from pydantic import (Field, FiniteFloat, NonNegativeInt, PositiveFloat, PositiveInt, field_validator,
                      model_serializer, model_validator)

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams, generator, role_id
from .gaussian import number_or_list
from .mixtures import mixture_moments, sample_isotropic

_NODES = 64  # Gauss–Legendre nodes per parameter: exact for polynomials of degree 127


class _CurveSource:
    """A mixture of ``n_classes`` equally likely curves x = clean(label, u), u ~ U[0, 1]^k, plus noise.

    Subclasses set ``n_classes``, ``n_params`` (k) and ``scale`` and define ``clean(label (...,), u (..., k))``
    returning ``(..., d)``. A point is ``scale · (clean + noise · z)``.
    """

    n_classes = 2
    n_params = 1
    scale = 1.0

    def _finish(self, dim: int) -> None:
        mean, cov = self._moments(dim)
        self.info = SourceInfo(dim=dim, kind="vector", truth={
            "mean": mean, "cov": cov, "gaussian": False,
            "labels_available": True, "classes": tuple(range(self.n_classes))})

    def _moments(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact mean ``(d,)`` and covariance ``(d, d)`` by tensor Gauss–Legendre quadrature on [0, 1]^k."""
        x, w = np.polynomial.legendre.leggauss(_NODES)
        x, w = (x + 1) / 2, w / 2
        grids = np.meshgrid(*([x] * self.n_params), indexing="ij")
        u = np.stack([g.ravel() for g in grids], axis=-1)  # (M, k)
        weight = np.prod(np.meshgrid(*([w] * self.n_params), indexing="ij"), axis=0).ravel()  # (M,)
        first, second = np.zeros(dim), np.zeros((dim, dim))
        for label in range(self.n_classes):
            pts = self.clean(np.full(len(u), label), u)
            first += weight @ pts / self.n_classes
            second += np.einsum("m,mi,mj->ij", weight, pts, pts) / self.n_classes
        cov = second - np.outer(first, first) + self.options.noise ** 2 * np.eye(dim)
        return self.scale * first, self.scale ** 2 * cov

    def sample_labeled(self, n: int, streams: Streams) -> tuple[np.ndarray, np.ndarray]:
        """``(R, n, d)`` points and their ``(R, n)`` int64 class labels."""
        n = int(n)
        if self.n_classes > 1:
            label = np.minimum((streams.child("label").uniform(n) * self.n_classes).astype(np.int64), self.n_classes - 1)
        else:
            label = np.zeros((streams.R, n), dtype=np.int64)
        x = self.clean(label, streams.child("position").uniform(n, self.n_params))
        if self.options.noise > 0:
            x = x + self.options.noise * streams.child("noise").normal(n, x.shape[-1])
        return self.scale * x, label

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, d)`` i.i.d. points."""
        return self.sample_labeled(n, streams)[0]


class MoonsSource(_CurveSource):
    """Two interleaving half circles (``make_moons``)."""

    class Options(Options):
        noise: float = Field(0.05, ge=0, description="std of the isotropic Gaussian noise")
        spacing: Literal["random", "even"] = Field(
            "random", description="random: i.i.d. angles t ~ U(0, π); even: make_moons' own layout -- n // 2 "
                                  "outer and n − n // 2 inner points at linspace(0, π) angles, rows shuffled per "
                                  "replicate (a draw of n points is then not i.i.d. and depends on n)")

        @model_serializer(mode="wrap")
        def _drop_default_spacing(self, handler):
            """spacing at its default is left out of the resolved options, so adding it changed no run id."""
            out = handler(self)
            if out.get("spacing") == "random":
                out.pop("spacing")
            return out

    def __init__(self, options: "MoonsSource.Options" = None, base_dir: Path = Path(".")):
        self.options = options or self.Options()
        self._finish(2)  # info.truth: the limiting (i.i.d.) law, also for spacing: even

    def sample_labeled(self, n: int, streams: Streams) -> tuple[np.ndarray, np.ndarray]:
        """``(R, n, d)`` points and labels; with ``spacing: even`` scikit-learn's ``make_moons(n, shuffle=True)``
        layout (Kazdan et al.'s KDE task), the shuffle and the noise drawn per replicate from ``streams``."""
        if self.options.spacing == "random":
            return super().sample_labeled(n, streams)
        n = int(n)
        n_out = n // 2
        label = np.r_[np.zeros(n_out, np.int64), np.ones(n - n_out, np.int64)]
        u = np.r_[np.linspace(0, 1, n_out), np.linspace(0, 1, n - n_out)]  # t = π u: linspace(0, π, ·)
        perm = np.argsort(streams.child("shuffle").uniform(n), axis=1)  # (R, n) a uniform shuffle per replicate
        label = label[perm]
        x = self.clean(label, u[perm][..., None])
        if self.options.noise > 0:
            x = x + self.options.noise * streams.child("noise").normal(n, 2)
        return self.scale * x, label

    def clean(self, label: np.ndarray, u: np.ndarray) -> np.ndarray:
        t = np.pi * u[..., 0]
        c, s = np.cos(t), np.sin(t)
        inner = label == 1
        return np.stack([np.where(inner, 1 - c, c), np.where(inner, 0.5 - s, s)], axis=-1)


class CirclesSource(_CurveSource):
    """A unit circle around a smaller one of radius ``factor`` (``make_circles``)."""

    class Options(Options):
        noise: float = Field(0.05, ge=0, description="std of the isotropic Gaussian noise")
        factor: float = Field(0.5, ge=0, lt=1, description="radius of the inner circle (the outer has radius 1)")

    def __init__(self, options: "CirclesSource.Options" = None, base_dir: Path = Path(".")):
        self.options = options or self.Options()
        self._finish(2)

    def clean(self, label: np.ndarray, u: np.ndarray) -> np.ndarray:
        t = 2 * np.pi * u[..., 0]
        r = np.where(label == 1, self.options.factor, 1.0)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=-1)


class SwissRollSource(_CurveSource):
    """The swiss roll (``make_swiss_roll``): the 2-D spiral (x, z) or the 3-D roll (x, y, z), times ``scale``."""

    n_classes = 1

    class Options(Options):
        noise: float = Field(0.0, ge=0, description="std of the Gaussian noise, in scikit-learn's (unscaled) units")
        dim: Literal[2, 3] = Field(2, description="2: the spiral (x, z); 3: the roll (x, y, z)")
        scale: PositiveFloat = Field(0.1, description="factor applied to every coordinate after the noise")

    def __init__(self, options: "SwissRollSource.Options" = None, base_dir: Path = Path(".")):
        self.options = o = options or self.Options()
        self.n_params, self.scale = o.dim - 1, float(o.scale)
        self._finish(o.dim)

    def clean(self, label: np.ndarray, u: np.ndarray) -> np.ndarray:
        t = 1.5 * np.pi * (1 + 2 * u[..., 0])
        x, z = t * np.cos(t), t * np.sin(t)
        if self.options.dim == 2:
            return np.stack([x, z], axis=-1)
        return np.stack([x, 21.0 * u[..., 1], z], axis=-1)


class BlobsSource:
    """Equal-weight isotropic Gaussian blobs (``make_blobs``) around centres fixed by the options."""

    class Options(Options):
        centers: Union[PositiveInt, list[list[FiniteFloat]]] = Field(
            3, description="number of blobs (centres drawn in center_box), or the K x d list of centres")
        cluster_std: Union[PositiveFloat, list[PositiveFloat]] = Field(1.0, description="blob std, or one per blob")
        dim: Optional[PositiveInt] = Field(None, description="d (default 2, or the width of a centres list)")
        center_box: tuple[FiniteFloat, FiniteFloat] = Field((-10.0, 10.0), description="box for random centres")
        center_seed: NonNegativeInt = Field(0, description="seed of the (fixed) random centres; not the run's seed")

        @field_validator("cluster_std", mode="before")
        @classmethod
        def _std(cls, value):
            return number_or_list(value, "data.cluster_std", positive=True)

        @field_validator("centers", mode="before")
        @classmethod
        def _centers(cls, value):
            if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
                return value
            if isinstance(value, (list, tuple)) and value and all(isinstance(c, (list, tuple)) for c in value):
                try:
                    for c in value:
                        number_or_list(c, "data.centers")
                    return value
                except ConfigError:
                    pass
            raise ConfigError("data.centers", value, "a positive integer or a K x d list of centres")

        @model_validator(mode="after")
        def _consistent(self):
            if self.center_box[0] >= self.center_box[1]:
                raise ConfigError("data.center_box", list(self.center_box), "[low, high] with low < high")
            if isinstance(self.centers, list):
                d = len(self.centers[0]) if self.centers else 0
                if d == 0 or any(len(c) != d for c in self.centers):
                    raise ConfigError("data.centers", self.centers, "a positive integer or a K x d list of centres")
                if self.dim is not None and self.dim != d:
                    raise ConfigError("data.dim", self.dim, f"{d}, the width of data.centers (or leave it unset)")
            K = self.centers if isinstance(self.centers, int) else len(self.centers)
            if isinstance(self.cluster_std, list) and len(self.cluster_std) != K:
                raise ConfigError("data.cluster_std", self.cluster_std, f"one number or a list of K = {K} numbers")
            return self

    def __init__(self, options: "BlobsSource.Options" = None, base_dir: Path = Path(".")):
        o = self.options = options or self.Options()
        if isinstance(o.centers, int):
            d = o.dim or 2
            lo, hi = o.center_box
            g = generator(o.center_seed, role_id("blobs/centers"))
            self.means = lo + (hi - lo) * g.random((o.centers, d))
        else:
            self.means = np.asarray(o.centers, dtype=float)
        K, d = self.means.shape
        self.stds = np.broadcast_to(np.asarray(o.cluster_std, dtype=float), (K,)).copy()
        self.weights = np.full(K, 1.0 / K)
        covs = self.stds[:, None, None] ** 2 * np.eye(d)
        mean, cov = mixture_moments(self.weights, self.means, covs)
        self.info = SourceInfo(dim=d, kind="vector", truth={
            "mean": mean, "cov": cov, "gaussian": K == 1,
            "components": (self.weights.copy(), self.means.copy(), covs)})

    def sample_labeled(self, n: int, streams: Streams) -> tuple[np.ndarray, np.ndarray]:
        """``(R, n, d)`` points and their ``(R, n)`` blob indices."""
        return sample_isotropic(self.weights, self.means, self.stds, n, streams)

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, d)`` i.i.d. points."""
        return self.sample_labeled(n, streams)[0]
