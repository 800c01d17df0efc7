"""The ``categorical`` source: i.i.d. tokens from a K-category distribution p.

Why: the categorical is the discrete model of model collapse. Refitting empirical frequencies
to n of one's own samples is the Wright–Fisher process of population genetics: rare categories
drift to zero and are never recovered (Shumailov et al. 2024, "The Curse of Recursion", §3.1;
Seddik et al. 2024). A Zipf law p_k ∝ (k + 1)^(−s) gives the heavy tail that vanishes first,
the shape of word frequencies in language data.

Options: ``probs`` (an explicit list: non-negative, summing to 1 within 1e-6), or a Zipf law
with ``exponent`` s > 0 (default 1.1) over ``size`` K categories (default 100).

Data are ``(R, n, 1)`` int64 tokens in [0, K); ``info.kind = "categorical"``,
``info.n_categories = K`` and ``info.truth = {"probs": p (K,)}``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import Field, FiniteFloat, PositiveFloat, PositiveInt, model_validator

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams


def zipf_probs(exponent: float, size: int) -> np.ndarray:
    """p_k ∝ (k + 1)^(−exponent), k = 0..size−1: ``(size,)``, summing to 1."""
    p = np.arange(1, size + 1, dtype=float) ** (-float(exponent))
    return p / p.sum()


class CategoricalSource:
    """Tokens from p (explicit ``probs`` or Zipf): ``sample`` returns ``(R, n, 1)`` int64."""

    class Options(Options):
        probs: Optional[list[FiniteFloat]] = Field(None, description="category probabilities (non-negative, sum 1)")
        exponent: Optional[PositiveFloat] = Field(None, description="Zipf exponent s (default 1.1): p_k ∝ (k+1)^-s")
        size: Optional[PositiveInt] = Field(None, description="Zipf: number of categories K (default 100)")

        @model_validator(mode="after")
        def _consistent(self):
            if self.probs is None:
                return self
            if self.exponent is not None or self.size is not None:
                field = "data.exponent" if self.exponent is not None else "data.size"
                raise ConfigError(field, getattr(self, field[5:]), "unset when data.probs is given (probs or a Zipf law)")
            p = np.asarray(self.probs, dtype=float)
            if p.size == 0 or (p < 0).any():
                raise ConfigError("data.probs", self.probs, "a non-empty list of non-negative probabilities")
            if abs(p.sum() - 1.0) > 1e-6:
                raise ConfigError("data.probs", self.probs, "probabilities summing to 1 (within 1e-6)",
                                  problem=f"sums to {p.sum():.9g}; expected probabilities summing to 1 (within 1e-6)")
            return self

    def __init__(self, options: "CategoricalSource.Options" = None, base_dir: Path = Path(".")):
        o = self.options = options or self.Options()
        if o.probs is not None:
            p = np.asarray(o.probs, dtype=float)
            self.probs = p / p.sum()
        else:
            self.probs = zipf_probs(1.1 if o.exponent is None else o.exponent, 100 if o.size is None else o.size)
        K = len(self.probs)
        # Cumulative probabilities with every entry from the last positive category on set to 1,
        # so no rounding can ever select a zero-probability category.
        cdf = np.cumsum(self.probs)
        cdf[int(np.flatnonzero(self.probs)[-1]):] = 1.0
        self._cdf = cdf
        self.info = SourceInfo(dim=1, kind="categorical", n_categories=K, truth={"probs": self.probs.copy()})

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, 1)`` int64 tokens: the category whose cdf interval holds a uniform."""
        u = streams.uniform(int(n))
        return np.searchsorted(self._cdf, u, side="right").astype(np.int64)[..., None]
