"""The ``gaussian`` source: P_r = N(μ, Σ) in d dimensions.

Why: the Gaussian is the one setting where every self-consuming result has a closed form
(Shumailov et al. 2024, §3; Bertrand et al. 2024, Prop. 1; Alemohammad et al. 2023, §4:
the fitted covariance shrinks like ∏ (n−1)/n and its determinant collapses under ``replace``).
So ``info.truth`` carries the exact ``mean`` (d,), ``cov`` (d, d) and ``gaussian: True``.

Options: ``dim`` (default 2, or the length of ``mean`` / ``std`` / ``cov`` when those are lists),
``mean`` (a number for every coordinate, or a list), and the spread as either ``cov`` (a
symmetric positive-definite d×d matrix) or ``std`` (a number or a per-coordinate list: a
diagonal covariance). Default: N(0, I₂).

Sampling: x = μ + z Lᵀ with Σ = L Lᵀ (Cholesky) and z ~ N(0, I) from ``streams.normal(n, d)``.
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from pydantic import Field, FiniteFloat, PositiveFloat, PositiveInt, field_validator, model_validator

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams


def number_or_list(value: Any, field: str, positive: bool = False) -> Any:
    """Check a raw option that is one number or a non-empty list of numbers (finite; > 0 if ``positive``).

    Run as a ``mode="before"`` validator so a bad value gets one ConfigError naming ``field``
    instead of pydantic's report on each branch of the ``Union``.
    """
    is_list = isinstance(value, (list, tuple))
    items = list(value) if is_list else [value]
    ok = bool(items) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
                             and (v > 0 or not positive) for v in items)
    if not ok:
        kind = "positive" if positive else "finite"
        raise ConfigError(field, list(value) if is_list else value, f"a {kind} number or a list of {kind} numbers")
    return value


def cholesky_spd(cov: np.ndarray, field: str) -> np.ndarray:
    """Lower Cholesky factor of a symmetric positive-definite ``cov (d, d)``; ConfigError on ``field`` otherwise."""
    cov = np.asarray(cov, dtype=float)
    valid = f"a symmetric positive-definite {cov.shape[0]} x {cov.shape[0]} matrix"
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise ConfigError(field, cov.tolist(), "a square (d x d) list of lists")
    if not np.all(np.isfinite(cov)):
        raise ConfigError(field, cov.tolist(), valid, problem=f"not finite; expected {valid}")
    scale = max(float(np.abs(cov).max()), 1e-300)
    if not np.allclose(cov, cov.T, rtol=0.0, atol=1e-10 * scale):
        raise ConfigError(field, cov.tolist(), valid, problem=f"not symmetric; expected {valid}")
    try:
        return np.linalg.cholesky((cov + cov.T) / 2)
    except np.linalg.LinAlgError:
        low = float(np.linalg.eigvalsh((cov + cov.T) / 2).min())
        raise ConfigError(field, cov.tolist(), valid,
                          problem=f"not positive definite (smallest eigenvalue {low:.3g}); expected {valid}") from None


class GaussianSource:
    """P_r = N(μ, Σ): ``sample`` returns ``(R, n, d)`` floats."""

    class Options(Options):
        dim: Optional[PositiveInt] = Field(None, description="d (default 2, or the length of mean/std/cov lists)")
        mean: Union[FiniteFloat, list[FiniteFloat]] = Field(0.0, description="μ: one number for all coordinates, or a list")
        cov: Optional[list[list[FiniteFloat]]] = Field(None, description="Σ: a symmetric positive-definite d x d matrix")
        std: Optional[Union[PositiveFloat, list[PositiveFloat]]] = Field(
            None, description="per-coordinate standard deviation(s), Σ = diag(std²); exclusive with cov")

        @field_validator("mean", "std", mode="before")
        @classmethod
        def _numbers(cls, value, info):
            return value if value is None else number_or_list(value, f"data.{info.field_name}", info.field_name == "std")

        @model_validator(mode="after")
        def _consistent(self):
            if self.cov is not None and self.std is not None:
                raise ConfigError("data.std", self.std, "either data.cov or data.std, not both")
            sizes = {"data.dim": self.dim}
            if isinstance(self.mean, list):
                sizes["data.mean"] = len(self.mean)
            if isinstance(self.std, list):
                sizes["data.std"] = len(self.std)
            if self.cov is not None:
                sizes["data.cov"] = len(self.cov)
            given = {k: v for k, v in sizes.items() if v is not None}
            if 0 in given.values():
                field = next(k for k, v in given.items() if v == 0)
                raise ConfigError(field, [], "a non-empty list")
            if len(set(given.values())) > 1:
                first = next(iter(given))
                field = next(k for k, v in given.items() if v != given[first])
                raise ConfigError(field, getattr(self, field.split(".")[1]),
                                  f"length {given[first]} to match {first} = {given[first]}")
            if self.cov is not None:
                if any(len(row) != len(self.cov) for row in self.cov):
                    raise ConfigError("data.cov", self.cov, "a square (d x d) list of lists")
                cholesky_spd(np.array(self.cov, dtype=float), "data.cov")
            return self

        def resolved_dim(self) -> int:
            """d: ``dim`` if given, else the length of a list option, else 2."""
            for value in (self.dim, self.cov, self.mean, self.std):
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
                if isinstance(value, list):
                    return len(value)
            return 2

    def __init__(self, options: "GaussianSource.Options" = None, base_dir: Path = Path(".")):
        o = self.options = options or self.Options()
        d = o.resolved_dim()
        self.mean = np.broadcast_to(np.asarray(o.mean, dtype=float), (d,)).copy()
        if o.cov is not None:
            self.cov = np.asarray(o.cov, dtype=float)
            self.chol = cholesky_spd(self.cov, "data.cov")
        else:
            std = np.broadcast_to(np.asarray(1.0 if o.std is None else o.std, dtype=float), (d,))
            self.cov, self.chol = np.diag(std ** 2), np.diag(std)
        self.info = SourceInfo(dim=d, kind="vector", truth={"mean": self.mean.copy(), "cov": self.cov.copy(),
                                                            "gaussian": True})

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, d)`` draws μ + z Lᵀ."""
        z = streams.normal(int(n), self.info.dim)
        return self.mean + z @ self.chol.T
