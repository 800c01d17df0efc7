"""Total-variation distance TV(P, Q) = ½ ∫ |p − q| = 1 − ∫ min(p, q) between a fitted model and the source.

Fu et al. (2024) state every bound of the self-consuming loop in TV; this module computes it for
density families whose source density is known (``SourceInfo.truth``: ``gaussian`` with ``mean``
and ``cov``, or mixture ``components``), for all R replicates at once:

* two Gaussians in 1-D: exact (``gaussian_tv_1d``). The log-density ratio is a quadratic; its roots r₁ < r₂ split the
  line into regions where one density dominates, and TV = |[Φ_P − Φ_Q](r₂) − [Φ_P − Φ_Q](r₁)|
  (equal variances: 2Φ(|Δμ|/2σ) − 1) — ``gaussian_tv_1d``;
* mixtures (Gaussian models and GMMs against a mixture, or in 2-D): quadrature on a per-replicate
  grid of M (1-D) or M × M (2-D) nodes spanning both densities (each mean ± 8 sd), TV = 1 − Σ min(p, q) ΔV.
  The ``1 − ∫min`` form stays right when one density is far narrower than the grid spacing (a
  collapsed model): the unresolved spike then contributes ≈ 0 to ∫min and TV ≈ 1, as it should;
* KDEs: the same grid, the KDE evaluated by linear binning and an FFT convolution with the kernel
  (O(n + M log M) per replicate instead of O(nM)); the grid spacing is kept below h/4, so the
  binning error (O((δ/h)²) relative) is ≲ 1e-3 in TV (tests/test_tv.py checks against direct sums).

Cost (per generation, R replicates): 1-D Gaussian O(R); 1-D grids 2048–65536 nodes per replicate;
2-D grids 160² (Gaussian, GMM) or ≤ 256² (KDE, FFT) nodes per replicate, chunked to bound memory.
That is why ``param.tv`` is recorded in 1-D and 2-D only; in higher dimension use the ``density-tv``
metric (``autophagy.metrics``), an unbiased Monte-Carlo estimate with its standard error.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from scipy.special import logsumexp, ndtr

from .protocols import SourceInfo

L_SD = 8.0  # grid half-width in standard deviations (mass beyond: < 1e-15 per coordinate)
M_1D, M_2D = 1024, 96
_BUDGET = 1 << 22  # floats per vectorised chunk


def truth_mixture(info: SourceInfo) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The source density as a Gaussian mixture ``(weights (K,), means (K, d), covs (K, d, d))``, or None
    when the source publishes no density (only moments, or nothing)."""
    truth = (info.truth or {}) if info is not None else {}
    if truth.get("components") is not None:
        w, mu, cov = (np.asarray(a, dtype=float) for a in truth["components"])
        return w / w.sum(), mu.reshape(len(w), -1), cov.reshape(len(w), mu.shape[-1], mu.shape[-1])
    if truth.get("gaussian") and truth.get("mean") is not None and truth.get("cov") is not None:
        mu = np.asarray(truth["mean"], dtype=float).reshape(1, -1)
        return np.ones(1), mu, np.asarray(truth["cov"], dtype=float).reshape(1, mu.shape[1], mu.shape[1])
    return None


def gaussian_tv_1d(mu_p, var_p, mu_q, var_q) -> np.ndarray:
    """Exact TV between N(μ_p, σ_p²) and N(μ_q, σ_q²), elementwise over broadcast arrays.

    log p − log q = a x² + b x + c with a = 1/2σ_q² − 1/2σ_p²; where σ_p ≠ σ_q it has two real roots
    (the narrower density exceeds the wider one at its own mode), and P − Q has the same value with
    opposite signs outside and between them. A zero variance (a point mass) gives TV = 1.
    """
    mu_p, var_p, mu_q, var_q = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (mu_p, var_p, mu_q, var_q)))
    out = np.empty(mu_p.shape)
    sp, sq = np.sqrt(np.clip(var_p, 0, None)), np.sqrt(np.clip(var_q, 0, None))
    degenerate = (sp == 0) | (sq == 0)
    same = ~degenerate & np.isclose(sp, sq, rtol=1e-12, atol=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[same] = 2 * ndtr(np.abs(mu_p - mu_q)[same] / (2 * sp[same])) - 1
        k = ~degenerate & ~same
        a = 0.5 / var_q[k] - 0.5 / var_p[k]
        b = mu_p[k] / var_p[k] - mu_q[k] / var_q[k]
        c = 0.5 * mu_q[k] ** 2 / var_q[k] - 0.5 * mu_p[k] ** 2 / var_p[k] + np.log(sq[k] / sp[k])
        disc = np.sqrt(np.clip(b * b - 4 * a * c, 0, None))
        r1, r2 = (-b - disc) / (2 * a), (-b + disc) / (2 * a)
        diff = lambda r: ndtr((r - mu_p[k]) / sp[k]) - ndtr((r - mu_q[k]) / sq[k])  # noqa: E731
        out[k] = np.abs(diff(np.maximum(r1, r2)) - diff(np.minimum(r1, r2)))
    out[degenerate] = np.where((sp == sq) & (mu_p == mu_q), 0.0, 1.0)[degenerate]
    return np.clip(out, 0.0, 1.0)


def _box(centres: np.ndarray, sds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-replicate boxes ``lo, hi (R, d)`` covering every (centre ± L_SD·sd) of ``centres, sds (R, J, d)``."""
    return (centres - L_SD * sds).min(1), (centres + L_SD * sds).max(1)


def _nodes(lo: np.ndarray, hi: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre nodes ``(R, m, d)`` per axis and spacings ``(R, d)``."""
    step = (hi - lo) / m
    return lo[:, None, :] + (np.arange(m)[None, :, None] + 0.5) * step[:, None, :], step


def _grid_points(axes: np.ndarray) -> np.ndarray:
    """All grid points ``(R, m**d, d)`` from per-axis nodes ``(R, m, d)`` (d = 1 or 2)."""
    if axes.shape[-1] == 1:
        return axes
    R, m, _ = axes.shape
    x = np.broadcast_to(axes[:, :, None, 0], (R, m, m))
    y = np.broadcast_to(axes[:, None, :, 1], (R, m, m))
    return np.stack([x, y], axis=-1).reshape(R, m * m, 2)


def mixture_logpdf(x: np.ndarray, weights: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """log Σ_k w_k N(x; μ_k, Σ_k) for ``x (R, P, d)`` with ``weights (R, K)``, ``means (R, K, d)``,
    ``covs (R, K, d, d)`` (PSD; a singular component has density 0 off its support): ``(R, P)``."""
    R, P, d = x.shape
    K = weights.shape[1]
    if d <= 2:
        return _logpdf_small(x, weights, means, covs)
    w, v = np.linalg.eigh(covs)  # (R, K, d), (R, K, d, d)
    w = np.clip(w, 1e-300, None)
    logdet = np.log(w).sum(-1)  # (R, K)
    with np.errstate(divide="ignore"):
        logw = np.log(weights)
    out = np.empty((R, P))
    step = max(1, _BUDGET // max(1, P * K * d))
    for r0 in range(0, R, step):
        r1 = min(R, r0 + step)
        diff = x[r0:r1, None, :, :] - means[r0:r1, :, None, :]  # (c, K, P, d)
        proj = diff @ v[r0:r1]  # coordinates in each component's eigenbasis
        maha = (proj ** 2 / w[r0:r1, :, None, :]).sum(-1)
        terms = logw[r0:r1, :, None] - 0.5 * (maha + logdet[r0:r1, :, None] + d * math.log(2 * math.pi))
        out[r0:r1] = logsumexp(terms, axis=1)
    return out


def _logpdf_small(x: np.ndarray, weights: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """``mixture_logpdf`` for d <= 2 with explicit 2 x 2 inverses (no batched LAPACK on tiny matrices)."""
    R, P, d = x.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        logw = np.log(weights)
        if d == 1:
            var = np.clip(covs[..., 0, 0], 1e-300, None)  # (R, K)
            dx = x[:, None, :, 0] - means[:, :, None, 0]  # (R, K, P)
            terms = logw[..., None] - 0.5 * (dx * dx / var[..., None] + np.log(2 * math.pi * var)[..., None])
        else:
            a, b, c = covs[..., 0, 0], covs[..., 0, 1], covs[..., 1, 1]
            det = np.clip(a * c - b * b, 1e-300, None)
            dx = x[:, None, :, 0] - means[:, :, None, 0]
            dy = x[:, None, :, 1] - means[:, :, None, 1]
            maha = (c[..., None] * dx * dx - 2 * b[..., None] * dx * dy + a[..., None] * dy * dy) / det[..., None]
            terms = logw[..., None] - 0.5 * maha - (math.log(2 * math.pi) + 0.5 * np.log(det))[..., None]
    return terms[:, 0] if terms.shape[1] == 1 else logsumexp(terms, axis=1)


def _tv_from_grid(logp: np.ndarray, logq: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """1 − Σ min(p, q) ΔV per replicate (``logp, logq (R, P)``, ``cell (R,)``), clipped to [0, 1]."""
    overlap = np.exp(np.minimum(logp, logq)).sum(-1) * cell
    return np.clip(1.0 - overlap, 0.0, 1.0)


def mixture_tv(weights: np.ndarray, means: np.ndarray, covs: np.ndarray, info: SourceInfo) -> Optional[np.ndarray]:
    """TV ``(R,)`` between R fitted mixtures (``(R, K)``, ``(R, K, d)``, ``(R, K, d, d)``; a Gaussian is K = 1)
    and the source; exact for two Gaussians in 1-D, grid quadrature otherwise; None if d > 2 or no density."""
    truth = truth_mixture(info)
    R, K, d = means.shape
    if truth is None or d > 2 or truth[1].shape[1] != d:
        return None
    tw, tm, tc = truth
    if d == 1 and K == 1 and tw.size == 1:
        return gaussian_tv_1d(means[:, 0, 0], covs[:, 0, 0, 0], tm[0, 0], tc[0, 0, 0])
    sd = np.sqrt(np.clip(np.diagonal(covs, axis1=-2, axis2=-1), 0, None))
    tsd = np.broadcast_to(np.sqrt(np.diagonal(tc, axis1=-2, axis2=-1)), (R,) + tm.shape)
    lo, hi = _box(np.concatenate([means, np.broadcast_to(tm, (R,) + tm.shape)], 1), np.concatenate([sd, tsd], 1))
    m = M_1D if d == 1 else M_2D
    axes, step = _nodes(lo, hi, m)
    out = np.empty(R)
    chunk = max(1, _BUDGET // (m ** d * max(K, tw.size) * d))
    for r0 in range(0, R, chunk):
        s = slice(r0, min(R, r0 + chunk))
        x = _grid_points(axes[s])
        c = x.shape[0]
        logq = mixture_logpdf(x, weights[s], means[s], covs[s])
        logp = mixture_logpdf(x, np.broadcast_to(tw, (c,) + tw.shape), np.broadcast_to(tm, (c,) + tm.shape),
                              np.broadcast_to(tc, (c,) + tc.shape))
        out[s] = _tv_from_grid(logp, logq, step[s].prod(-1))
    return out


def kde_tv(pool: np.ndarray, h: np.ndarray, info: SourceInfo) -> Optional[np.ndarray]:
    """TV ``(R,)`` between R Gaussian KDEs (``pool (R, n, d)``, bandwidths ``h (R,)``) and the source, on a
    grid: linear binning of the pool, FFT convolution with the sampled kernel; None if d > 2 or no density."""
    truth = truth_mixture(info)
    R, n, d = pool.shape
    if truth is None or d > 2 or truth[1].shape[1] != d:
        return None
    tw, tm, tc = truth
    tsd = np.sqrt(np.diagonal(tc, axis1=-2, axis2=-1))
    lo = np.minimum(pool.min(1) - L_SD * h[:, None], (tm - L_SD * tsd).min(0))
    hi = np.maximum(pool.max(1) + L_SD * h[:, None], (tm + L_SD * tsd).max(0))
    ratio = float(((hi - lo) / h[:, None]).max())  # keep δ <= h/4 (binning error O((δ/h)²))
    cap = 1 << (16 if d == 1 else 9)
    m = int(min(cap, max(1 << (10 if d == 1 else 7), 1 << math.ceil(math.log2(4 * ratio)))))
    axes, step = _nodes(lo, hi, m)
    out = np.empty(R)
    chunk = max(1, _BUDGET // (m ** d * 4))
    for r0 in range(0, R, chunk):
        s = slice(r0, min(R, r0 + chunk))
        dens = _binned_kde(pool[s], h[s], lo[s], step[s], m)  # (c, m**d)
        x = _grid_points(axes[s])
        c = x.shape[0]
        logp = mixture_logpdf(x, np.broadcast_to(tw, (c,) + tw.shape), np.broadcast_to(tm, (c,) + tm.shape),
                              np.broadcast_to(tc, (c,) + tc.shape))
        with np.errstate(divide="ignore"):
            out[s] = _tv_from_grid(logp, np.log(np.clip(dens, 0, None)), step[s].prod(-1))
    return out


def _binned_kde(pool: np.ndarray, h: np.ndarray, lo: np.ndarray, step: np.ndarray, m: int) -> np.ndarray:
    """KDE values ``(c, m**d)`` at the cell centres: linear-binned pool weights convolved (FFT, circular; the
    box has L_SD·h margins, so wrapped kernel mass is < 1e-14) with the kernel sampled on the grid."""
    c, n, d = pool.shape
    t = (pool - lo[:, None, :]) / step[:, None, :] - 0.5  # fractional node index
    base = np.clip(np.floor(t).astype(np.int64), 0, m - 2)
    frac = np.clip(t - base, 0.0, 1.0)
    weights = np.zeros(c * m ** d)
    offset = (np.arange(c) * m ** d)[:, None]
    corners = [(0,), (1,)] if d == 1 else [(0, 0), (0, 1), (1, 0), (1, 1)]
    for corner in corners:
        w = np.prod([frac[..., a] if o else 1 - frac[..., a] for a, o in enumerate(corner)], axis=0)
        flat = offset + sum((base[..., a] + o) * m ** (d - 1 - a) for a, o in enumerate(corner))
        weights += np.bincount(flat.ravel(), weights=w.ravel() / n, minlength=c * m ** d)
    weights = weights.reshape((c,) + (m,) * d)
    kernel = 1.0
    for a in range(d):
        k = np.minimum(np.arange(m), m - np.arange(m))[None, :] * step[:, a, None]  # (c, m) circular distances
        ka = np.exp(-0.5 * (k / h[:, None]) ** 2) / (math.sqrt(2 * math.pi) * h[:, None])
        kernel = ka if a == 0 else kernel[:, :, None] * ka[:, None, :]
    axes = tuple(range(1, d + 1))
    dens = np.fft.irfftn(np.fft.rfftn(weights, axes=axes) * np.fft.rfftn(kernel, axes=axes), s=(m,) * d, axes=axes)
    return dens.reshape(c, -1)
