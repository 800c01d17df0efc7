"""Linear regression with a fixed design, the analytic model of Gerstgrasser et al. (2024),
"Is Model Collapse Inevitable?" (after Dohmatob et al. 2024).

Each generation fits ordinary least squares ŵ = (XᵀX)⁻¹Xᵀy to its training rows [x, y] and then
labels the *training design* afresh: ỹ_i = x_iᵀŵ + σ z_i for the first m design rows. With the
``replace`` policy the errors add up, E||ŵ_g − w*||² = (g + 1) σ² tr((XᵀX)⁻¹); with
``accumulate`` they stay bounded (Gerstgrasser et al., Thms 1–2). MAD's sampling bias λ shrinks
the label noise to √λ·σ.

σ is ``noise_std`` if given, else the source's ``truth["noise_std"]``, else estimated per replicate as
sqrt(RSS/(n − d)) (unbiased for σ²).

Shapes: data ``(R, n, d + 1)`` with the label last; a model holds ``w (R, d)``, ``sigma (R,)`` and the
design ``X (R, n, d)``.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from pydantic import Field, PositiveFloat

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams

_LOG_2PI = math.log(2 * math.pi)


class RegressionModel:
    """R fitted linear models y = xᵀw + σ ε over their training designs."""

    def __init__(self, w: np.ndarray, sigma: np.ndarray, X: np.ndarray):
        self.w, self.sigma, self.X = w, sigma, X

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """``(R, m, d + 1)`` rows [x_i, x_iᵀŵ + √λ σ z] for design rows i = 0..m−1 (the design tiled if m > n)."""
        R, n, d = self.X.shape
        X = self.X[:, np.arange(m) % n]
        y = np.einsum("rmd,rd->rm", X, self.w) + (math.sqrt(bias) * self.sigma)[:, None] * streams.normal(m)
        return np.concatenate([X, y[..., None]], axis=-1)

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """test_error = ||ŵ − w*||² (if the truth has w) and noise_var = σ²."""
        out = {"noise_var": self.sigma ** 2}
        w_star = (info.truth or {}).get("w")
        if w_star is not None:
            out["test_error"] = ((self.w - np.asarray(w_star, dtype=float)) ** 2).sum(-1)
        return out

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """Conditional log-density log N(y; xᵀŵ, σ²) of rows ``x (R, n, d + 1)``: ``(R, n)``."""
        x = np.asarray(x, dtype=float)
        resid = x[..., -1] - np.einsum("rnd,rd->rn", x[..., :-1], self.w)
        s = self.sigma[:, None]
        return -0.5 * (resid / s) ** 2 - np.log(s) - 0.5 * _LOG_2PI


class RegressionFamily:
    """The ``linear-regression`` family: batched OLS on rows [x_1..x_d, y]."""

    batched = True

    class Options(Options):
        noise_std: Optional[PositiveFloat] = Field(
            None, description="label noise σ when sampling (default: the source's noise_std, else the residual estimate)")

    def __init__(self, options: "RegressionFamily.Options", info: SourceInfo):
        self.options, self.info = options, info

    def fit(self, data: np.ndarray, streams: Streams, init=None) -> RegressionModel:
        """ŵ solves XᵀX w = Xᵀy per replicate (one batched solve); ``streams``/``init`` unused."""
        rows = np.asarray(data, dtype=float)
        R, n, cols = rows.shape
        d = cols - 1
        expected = (self.info.truth or {}).get("n_features")
        if d < 1 or (expected is not None and int(expected) != d):
            raise ConfigError("model.family", "linear-regression", "data rows [x_1..x_d, y]",
                              problem=f"got rows of width {cols} (n_features = {expected})")
        if n < d:
            raise ConfigError("loop.n_real", n, f"at least the number of features {d} (OLS needs n >= d)")
        X = rows[..., :d].copy()
        y = rows[..., d]
        gram = np.swapaxes(X, -1, -2) @ X
        try:
            w = np.linalg.solve(gram, np.einsum("rnd,rn->rd", X, y)[..., None])[..., 0]
        except np.linalg.LinAlgError:
            raise ConfigError("data", "design", "a design matrix of full column rank",
                              problem="XᵀX is singular for some replicate (collinear features?)") from None
        sigma = self._sigma(X, y, w)
        return RegressionModel(w, sigma, X)

    def _sigma(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        R, n, d = X.shape
        fixed = self.options.noise_std or (self.info.truth or {}).get("noise_std")
        if fixed is not None:
            return np.full(R, float(fixed))
        if n <= d:
            raise ConfigError("model.noise_std", None, f"a positive number when the training set (n = {n}) has no "
                              f"more rows than features ({d}): the residual estimate needs n > d")
        rss = ((y - np.einsum("rnd,rd->rn", X, w)) ** 2).sum(-1)
        return np.sqrt(rss / (n - d))
