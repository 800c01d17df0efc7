"""Isotropic Gaussian kernel density estimation: p(x) = (1/n) Σ_j N(x; x_j, h² I).

A KDE "fitted" on a training set is the set itself plus a bandwidth h, so a self-consuming KDE
loop resamples its own pool with added kernel noise — the smoothed-bootstrap chain studied as a
non-parametric example by Alemohammad et al. (2023) and Bertrand et al. (2024).

Bandwidth (``bandwidth``): a positive number, or a rule of thumb computed per replicate from the
pool's scale s = sqrt(mean over coordinates of the sample variance, ddof = 1):

* ``scott``: h = s · n^(−1/(d+4))                        (Scott 1992, eq. 6.42)
* ``silverman``: h = s · (n (d+2) / 4)^(−1/(d+4))        (Silverman 1986, eq. 4.15)

MAD's sampling bias λ shrinks the kernel: x = x_I + √λ · h · z with I uniform on the pool.

Shapes: data ``(R, n, d)``; a model holds ``pool (R, n, d)`` and ``h (R,)``.
"""
from __future__ import annotations

import math
from typing import Literal, Optional, Union

import numpy as np
from pydantic import Field, PositiveFloat

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams
from .gaussian import moment_metrics

_LOG_2PI = math.log(2 * math.pi)
MAX_FLOATS = 10_000_000  # log_prob never materialises more pairwise distances than this at once


def _logsumexp_kernels(pool: np.ndarray, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``(R, k)``: log Σ_j exp(−‖x_i − p_j‖² / (2h²)) over ``pool (R, n, d)``, in chunks of ≤ MAX_FLOATS."""
    R, n, d = pool.shape
    k = x.shape[1]
    out = np.empty((R, k))
    # chunk sizes depend on (n, k) only, never on R, so a replicate's numbers do not depend on R
    cols = max(1, min(k, MAX_FLOATS // (64 * n)))
    rows = max(1, MAX_FLOATS // (cols * n))
    p_sq = (pool ** 2).sum(-1)  # (R, n)
    for r0 in range(0, R, rows):
        r1 = min(R, r0 + rows)
        part, psq = pool[r0:r1], p_sq[r0:r1]
        inv2h2 = 0.5 / (h[r0:r1] ** 2)
        for c0 in range(0, k, cols):
            xc = x[r0:r1, c0:c0 + cols]
            # e = −max(‖x − p‖², 0) / (2h²), computed in one buffer (rows, cols, n): in-place passes only
            e = xc @ np.swapaxes(part, -1, -2)
            e *= -2.0
            e += (xc ** 2).sum(-1)[..., None]
            e += psq[:, None, :]
            np.maximum(e, 0.0, out=e)
            e *= -inv2h2[:, None, None]
            top = e.max(-1, keepdims=True)
            e -= top
            np.exp(e, out=e)
            out[r0:r1, c0:c0 + cols] = (top + np.log(e.sum(-1, keepdims=True)))[..., 0]
    return out


def _extends(old: np.ndarray, new: np.ndarray) -> bool:
    """Whether ``old (R, n0, d)`` is a prefix of ``new (R, n, d)`` in the same read-only buffer (an accumulate
    pool's filled prefix, whose rows are never overwritten)."""
    return (not old.flags.writeable and not new.flags.writeable and old.shape[0] == new.shape[0]
            and old.shape[2] == new.shape[2] and old.shape[1] <= new.shape[1] and old.strides == new.strides
            and old.__array_interface__["data"][0] == new.__array_interface__["data"][0])


class KDEModel:
    """R kernel density estimates: ``pool (R, n, d)``, bandwidths ``h (R,)``.

    ``grows`` is the previous generation's model when this pool extends its pool in place with the same
    bandwidths (``accumulate`` with a fixed bandwidth): ``log_prob`` of the same points then adds only
    the new pool points' kernels to the previous logsumexp, O(k · batch) a generation instead of
    O(k · pool) — equal to the full sum up to rounding (≈ 1e-15 relative; tests/test_families.py).
    """

    def __init__(self, pool: np.ndarray, h: np.ndarray, grows: Optional["KDEModel"] = None):
        self.pool, self.h = pool, h
        self._grows = grows
        self._lse: Optional[tuple[np.ndarray, np.ndarray]] = None  # (points, their logsumexp over the pool)

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """``(R, m, d)``: a uniformly chosen pool point plus N(0, λ h² I) noise."""
        R, n, d = self.pool.shape
        idx = streams.integers(n, m)  # (R, m)
        z = streams.normal(m, d)
        picked = np.take_along_axis(self.pool, idx[..., None], axis=1)
        return picked + (math.sqrt(bias) * self.h)[:, None, None] * z

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """Moments of the KDE density itself: mean = pool mean, covariance = pool covariance (1/n) + h² I;
        in 1-D, against a source with a density, its total variation ``tv`` (``autophagy.tv``)."""
        R, n, d = self.pool.shape
        mean = self.pool.mean(axis=1)
        c = self.pool - mean[:, None, :]
        cov = (np.swapaxes(c, -1, -2) @ c) / n + (self.h ** 2)[:, None, None] * np.eye(d)
        out = moment_metrics(mean, cov, info)
        if d == 1:  # 1-D: binned FFT on >= 1024 nodes; 2-D grids cost ~50 ms per replicate: density-tv metric
            tv = self.tv(info)
            if tv is not None:
                out["tv"] = tv
        return out

    def tv(self, info: SourceInfo) -> Optional[np.ndarray]:
        """Total variation ``(R,)`` to a source with a known density, by binned-FFT quadrature (1-D and 2-D)."""
        from ..tv import kde_tv

        return kde_tv(self.pool, self.h, info)

    def _kernel_lse(self, x: np.ndarray) -> np.ndarray:
        if self._lse is not None and self._lse[0].shape == x.shape and np.array_equal(self._lse[0], x):
            return self._lse[1]
        prev, self._grows = self._grows, None  # used once: the chain of earlier models is not kept alive
        cached = prev._lse if prev is not None else None
        if cached is not None and cached[0].shape == x.shape and np.array_equal(cached[0], x):
            n0 = prev.pool.shape[1]
            lse = cached[1]
            if n0 < self.pool.shape[1]:
                lse = np.logaddexp(lse, _logsumexp_kernels(self.pool[:, n0:], x, self.h))
        else:
            lse = _logsumexp_kernels(self.pool, x, self.h)
        self._lse = (x.copy(), lse)
        return lse

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log p(x) for ``x (R, k, d)``: ``(R, k)``, a logsumexp over the pool computed in chunks of ≤ MAX_FLOATS."""
        x = np.asarray(x, dtype=float)
        R, n, d = self.pool.shape
        norm = math.log(n) + 0.5 * d * (_LOG_2PI + np.log(self.h ** 2))  # (R,)
        return self._kernel_lse(x) - norm[:, None]


def bandwidth(data: np.ndarray, rule: Union[str, float]) -> np.ndarray:
    """Per-replicate bandwidths ``(R,)`` for ``data (R, n, d)`` by rule ``"scott"`` / ``"silverman"`` or a fixed value."""
    R, n, d = data.shape
    if not isinstance(rule, str):
        return np.full(R, float(rule))
    if n < 2:
        raise ConfigError("model.bandwidth", rule, "a fixed positive number when a training set has a single point")
    s = np.sqrt(data.var(axis=1, ddof=1).mean(-1))
    if not np.all(s > 0):
        raise ConfigError("model.bandwidth", rule, f"a fixed positive number: a training set with no spread "
                          f"(replicate {int(np.argmin(s))}) gives the {rule} rule h = 0")
    if rule == "scott":
        return s * n ** (-1.0 / (d + 4))
    return s * (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))


class KDEFamily:
    """The ``kde`` family: keep the training set, pick a bandwidth per replicate."""

    batched = True

    class Options(Options):
        bandwidth: Union[Literal["scott", "silverman"], PositiveFloat] = Field(
            "scott", description="kernel bandwidth h: a positive number, or the rule scott | silverman (per replicate)")

    def __init__(self, options: "KDEFamily.Options", info: SourceInfo):
        self.options, self.info = options, info

    def fit(self, data: np.ndarray, streams: Streams, init=None) -> KDEModel:
        """Store the pool ``(R, n, d)`` and its bandwidths (``streams``, ``init`` unused)."""
        # a copy, since the caller may reuse its buffer -- unless it is read-only (an accumulate pool's
        # filled prefix, never overwritten): then keeping it saves an O(pool) copy per generation
        data = np.asarray(data)
        pool = data if (not data.flags.writeable and data.dtype == float) else np.array(data, dtype=float)
        h = bandwidth(pool, self.options.bandwidth)
        last = getattr(self, "_last", None)
        grows = last if last is not None and _extends(last.pool, pool) and np.array_equal(last.h, h) else None
        model = KDEModel(pool, h, grows)
        self._last = model
        return model
