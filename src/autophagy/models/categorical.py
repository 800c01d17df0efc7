"""The categorical family: token frequencies with optional additive (Laplace/Lidstone) smoothing.

p̂_k = (c_k + α) / (n + Kα) with counts c_k over the n tokens of a training set and α = ``smoothing``.
Without smoothing a token that drops out of one generation's sample never returns: the support
shrinks monotonically, the discrete face of model collapse (Shumailov et al. 2024, §3.1; Fu et al.
2024). MAD's sampling bias λ is applied as temperature sharpening, q_k ∝ p_k^(1/λ) (λ = 1: p itself;
λ → 0: the mode), computed in log space so tiny probabilities underflow to 0 gracefully.

Shapes: tokens ``(R, n, 1)`` int64; a model holds ``probs (R, K)``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import Field, PositiveInt

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams

_SCALE = 2 ** 40  # integer resolution of the inverse CDF (probabilities below 2^-40 are never drawn)


def sharpen(probs: np.ndarray, bias: float) -> np.ndarray:
    """``(R, K)`` probabilities p^(1/λ) / Σ p^(1/λ); zeros stay zero, no underflow to an all-zero row."""
    if bias == 1.0:
        return probs
    with np.errstate(divide="ignore"):
        logq = np.log(probs) / bias
    logq -= logq.max(axis=1, keepdims=True)
    q = np.exp(logq)
    return q / q.sum(axis=1, keepdims=True)


def counts(tokens: np.ndarray, K: int) -> np.ndarray:
    """``(R, K)`` token counts of ``tokens (R, n)`` (one bincount with per-replicate offsets)."""
    R = tokens.shape[0]
    flat = (tokens + K * np.arange(R)[:, None]).ravel()
    return np.bincount(flat, minlength=R * K).reshape(R, K)


class CategoricalModel:
    """R categorical distributions ``probs (R, K)``."""

    def __init__(self, probs: np.ndarray):
        self.probs = probs

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """``(R, m, 1)`` int64 tokens from the sharpened probabilities, by inverse CDF.

        All R searches are one ``searchsorted`` on integer CDFs offset by r·2^40 per replicate (exact integer
        arithmetic, so a zero-probability token is never returned and no draw spills into another row).
        """
        q = sharpen(self.probs, bias)
        R, K = q.shape
        cdf = np.cumsum(q, axis=1)
        cdf /= cdf[:, -1:]
        offsets = _SCALE * np.arange(R, dtype=np.int64)[:, None]
        icdf = np.floor(cdf * _SCALE).astype(np.int64) + offsets  # (R, K); row r ends at (r + 1)·2^40
        u = np.floor(streams.uniform(m) * _SCALE).astype(np.int64) + offsets  # (R, m), in [r·2^40, (r+1)·2^40)
        idx = np.searchsorted(icdf.ravel(), u.ravel(), side="right").reshape(R, m) - K * np.arange(R)[:, None]
        return idx[..., None].astype(np.int64)

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """gini_simpson = 1 − Σp², support_size = #{p > 0}, entropy (nats), tv = ½Σ|p − p*| (if the truth has probs)."""
        p = self.probs
        with np.errstate(divide="ignore", invalid="ignore"):
            plogp = np.where(p > 0, p * np.log(p), 0.0)
        out = {"gini_simpson": 1.0 - (p ** 2).sum(1), "support_size": (p > 0).sum(1).astype(float), "entropy": -plogp.sum(1)}
        truth = (info.truth or {}).get("probs")
        if truth is not None:
            t = np.asarray(truth, dtype=float)
            K = max(p.shape[1], t.shape[0])
            pp = np.pad(p, ((0, 0), (0, K - p.shape[1])))
            out["tv"] = 0.5 * np.abs(pp - np.pad(t, (0, K - t.shape[0]))).sum(1)
        return out

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log p[token] for ``x (R, n, 1)``: ``(R, n)`` (−inf for unseen or out-of-range tokens)."""
        tok = np.asarray(x)[..., 0].astype(np.int64)
        K = self.probs.shape[1]
        inside = (tok >= 0) & (tok < K)
        p = np.take_along_axis(self.probs, np.where(inside, tok, 0), axis=1)
        with np.errstate(divide="ignore"):
            return np.where(inside, np.log(p), -np.inf)


class CategoricalFamily:
    """The ``categorical`` family: smoothed token frequencies per replicate (vectorised)."""

    batched = True

    class Options(Options):
        smoothing: float = Field(0.0, ge=0, description="additive (Laplace) smoothing α: p = (count + α)/(n + Kα)")
        categories: Optional[PositiveInt] = Field(
            None, description="number of categories K (default: the source's, else the largest token + 1)")

    def __init__(self, options: "CategoricalFamily.Options", info: SourceInfo):
        self.options, self.info = options, info

    def fit(self, data: np.ndarray, streams: Streams, init=None) -> CategoricalModel:
        """probs = (counts + α)/(n + Kα) for tokens ``data (R, n, 1)``."""
        tokens = np.asarray(data)
        if tokens.ndim != 3 or tokens.shape[-1] != 1 or not np.issubdtype(tokens.dtype, np.integer):
            raise ConfigError("model.family", "categorical", "integer token data of shape (R, n, 1)",
                              problem=f"got {tokens.dtype} data of shape {tokens.shape}; use a categorical source")
        tokens = tokens[..., 0].astype(np.int64)
        R, n = tokens.shape
        lo, hi = int(tokens.min()), int(tokens.max())
        K = self.options.categories or self.info.n_categories or hi + 1
        if lo < 0:
            raise ConfigError("data", lo, "non-negative integer tokens", problem=f"the data hold token {lo}")
        if hi >= K:
            field = "model.categories" if self.options.categories else "data.n_categories"
            raise ConfigError(field, K, f"at least {hi + 1} (the data hold token {hi})")
        alpha = self.options.smoothing
        return CategoricalModel((counts(tokens, K) + alpha) / (n + K * alpha))
