"""The ``linear-regression`` source: y = xᵀw* + σ ε on a fixed Gaussian design.

Why: Gerstgrasser et al. (2024, "Is Model Collapse Inevitable?", §3, after Dohmatob et al. 2024)
analyse model collapse exactly in linear regression with a *fixed* design X (n × d): every
generation relabels the same inputs, so ``replace`` accumulates test error (g + 1) σ² tr((XᵀX)⁻¹)
while ``accumulate`` keeps it bounded. This source provides that setting.

Rows are [x_1..x_d, y]: data ``(R, n, d + 1)``, ``info.dim = d + 1``, ``info.kind = "regression"``.
The design is fixed per replicate: x_i ~ N(0, ``design_std``² I) comes from its own stream
(role ``"design"``, generation −1) whatever stream is passed to ``sample``, so every call
returns the same first n design rows for a replicate (also under the ``fresh`` policy and for
held-out data); only the label noise ε ~ N(0, 1) comes from the passed streams.
Default w* = (1, ..., 1)/√d, so ||w*|| = 1.

``info.truth``: ``w`` (d,), ``noise_std`` σ, ``n_features`` d, ``design_std`` and
``design: "gaussian"`` (the closed forms of ``autophagy.theory.regression`` need them).
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

DESIGN_CHUNK = 256  # design rows per stream: row i of a replicate comes from chunk i // DESIGN_CHUNK


def design(n: int, d: int, streams: Streams) -> np.ndarray:
    """The fixed standard-normal design ``(R, n, d)`` of ``streams``' replicates.

    Rows are drawn in chunks of ``DESIGN_CHUNK`` from the streams ``(seed, -1, "design/<chunk>")``:
    a block stream fills ``(BLOCK, rows, d)`` in replicate order, so drawing exactly n rows would
    make replicate r's rows depend on n. Fixed-size chunks make row i the same for every n (the
    first n rows of a larger draw are the smaller draw) and every R.
    """
    base = Streams(streams.seed, streams.R, -1, "design", streams.start)
    n_chunks = max(1, -(-int(n) // DESIGN_CHUNK))
    chunks = [base.child(str(c)).normal(DESIGN_CHUNK, d) for c in range(n_chunks)]
    return np.concatenate(chunks, axis=1)[:, : int(n)]


class RegressionSource:
    """Gerstgrasser et al.'s fixed-design linear regression: ``sample`` returns ``(R, n, d + 1)`` rows [x, y]."""

    class Options(Options):
        dim: PositiveInt = Field(10, description="number of features d")
        noise_std: PositiveFloat = Field(1.0, description="label noise σ")
        w: Optional[list[FiniteFloat]] = Field(None, description="true weights w* (length d; default ones(d)/√d)")
        design_std: PositiveFloat = Field(1.0, description="std of each design entry: x ~ N(0, design_std² I)")

        @model_validator(mode="after")
        def _consistent(self):
            if self.w is not None and len(self.w) != self.dim:
                raise ConfigError("data.w", self.w, f"a list of data.dim = {self.dim} numbers")
            return self

    def __init__(self, options: "RegressionSource.Options" = None, base_dir: Path = Path(".")):
        o = self.options = options or self.Options()
        d = o.dim
        self.w = np.full(d, 1.0 / np.sqrt(d)) if o.w is None else np.asarray(o.w, dtype=float)
        self.info = SourceInfo(dim=d + 1, kind="regression", truth={
            "w": self.w.copy(), "noise_std": float(o.noise_std), "n_features": d,
            "design_std": float(o.design_std), "design": "gaussian"})
        self._cache: Optional[tuple[tuple, np.ndarray]] = None

    def design(self, n: int, streams: Streams) -> np.ndarray:
        """The fixed design ``(R, n, d)`` of ``streams``' replicates (cached: the loop asks every generation)."""
        key = (streams.seed, streams.R, streams.start)
        if self._cache is None or self._cache[0] != key or self._cache[1].shape[1] < n:
            self._cache = (key, self.options.design_std * design(n, self.options.dim, streams))
        return self._cache[1][:, :n]

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, d + 1)`` rows [x_i, x_iᵀw* + σ ε_i] on the first n rows of each replicate's design."""
        n = int(n)
        X = self.design(n, streams)
        y = X @ self.w + self.options.noise_std * streams.normal(n)
        return np.concatenate([X, y[..., None]], axis=-1)
