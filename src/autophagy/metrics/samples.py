"""Two-sample metrics on vectors ``(R, n, d)``: distances between the held-out real set and the samples
(Wasserstein, sliced Wasserstein, Fréchet, MMD) and k-NN / kernel measures of quality and diversity
(precision/recall/density/coverage, Vendi). Each says whether it measures *quality* (are samples where
real data are), *diversity* (do samples spread like real data) or a *distance* (both at once).
Signature and declarations: ``autophagy.metrics.base``.
"""
from __future__ import annotations

from typing import Callable, Literal, Optional, Union

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt

from ..errors import ConfigError
from ..options import Options
from .base import Metric, NoOptions, chunks, floats, median_distance, need_streams, parse, sqdist, subsample


class SlicedOptions(Options):
    projections: PositiveInt = Field(64, description="random directions per replicate")
    p: float = Field(2.0, ge=1.0, description="order p of SW_p")


class FrechetOptions(Options):
    features: Optional[str] = Field(None, description="'package.module:fn' mapping (n, d) -> (n, k) features")


class MMDOptions(Options):
    bandwidth: Union[PositiveFloat, Literal["median"]] = "median"
    max_points: int = Field(2000, ge=2, description="random subsample per set (bounds memory)")


class PRDOptions(Options):
    k: PositiveInt = Field(5, description="k of the k-NN radii")


class VendiOptions(Options):
    bandwidth: Union[PositiveFloat, Literal["reference", "median"]] = "reference"
    max_points: int = Field(1000, ge=2, description="random subsample of the samples (eigendecomposition is O(n^3))")


def _wpp_sorted(a: np.ndarray, b: np.ndarray, p: float) -> np.ndarray:
    """Exact W_p^p between empirical 1-D distributions from sorted values, (..., n), (..., m) -> (...).

    W_p^p = ∫_0^1 |F^{-1}(u) - G^{-1}(u)|^p du; both quantile functions are step functions,
    constant between the merged breakpoints {i/n} ∪ {j/m}, so the integral is a finite sum.
    """
    n, m = a.shape[-1], b.shape[-1]
    ua, ub = np.arange(1, n + 1) / n, np.arange(1, m + 1) / m
    u = np.unique(np.concatenate([ua, ub]))
    du = np.diff(u, prepend=0.0)
    mid = u - du / 2
    ia = np.minimum(np.searchsorted(ua, mid), n - 1)
    ib = np.minimum(np.searchsorted(ub, mid), m - 1)
    return (np.abs(a[..., ia] - b[..., ib]) ** p * du).sum(-1)


# --------------------------------------------------------------------------- distances
def wasserstein_1d(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Distance: exact W1 between the empirical marginals, averaged over the d dimensions.

    W1(P, Q) = ∫ |F_P^{-1}(u) - F_Q^{-1}(u)| du per coordinate (equal to scipy's
    ``wasserstein_distance``). Shapes: (R, n, d), (R, m, d) -> {"wasserstein-1d": (R,)}.
    """
    parse(NoOptions, "wasserstein-1d", options)
    x, y = floats(reference, "reference"), floats(samples, "samples")
    out = np.empty(x.shape[0])
    for s in chunks(x.shape[0], x.shape[2] * 2 * (x.shape[1] + y.shape[1])):
        xs, ys = np.sort(x[s], axis=1).transpose(0, 2, 1), np.sort(y[s], axis=1).transpose(0, 2, 1)
        out[s] = _wpp_sorted(xs, ys, 1.0).mean(axis=1)
    return {"wasserstein-1d": out}


def sliced_wasserstein(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Distance: sliced Wasserstein SW_p (Rabin et al. 2011; Bonneel et al. 2015).

    SW_p(P, Q) = (E_θ W_p^p(θ#P, θ#Q))^{1/p}, θ uniform on the sphere, estimated with
    ``projections`` random directions per replicate drawn from ``streams``; each 1-D W_p^p is
    exact (sorted projections; unequal sizes via the merged quantile grid). Matches POT's
    ``ot.sliced_wasserstein_distance`` given the same directions. Returns SW_p, not its p-th
    power. Shapes: (R, n, d), (R, m, d) -> {"sliced-wasserstein": (R,)}.
    """
    o = parse(SlicedOptions, "sliced-wasserstein", options)
    x, y = floats(reference, "reference"), floats(samples, "samples")
    R, n, d = x.shape
    theta = need_streams(streams, "sliced-wasserstein").normal(o.projections, d)  # (R, L, d)
    theta /= np.linalg.norm(theta, axis=-1, keepdims=True)
    out = np.empty(R)
    for s in chunks(R, o.projections * (n + 2 * y.shape[1])):
        px = np.sort(x[s] @ theta[s].transpose(0, 2, 1), axis=1).transpose(0, 2, 1)  # (c, L, n)
        py = np.sort(y[s] @ theta[s].transpose(0, 2, 1), axis=1).transpose(0, 2, 1)
        out[s] = _wpp_sorted(px, py, o.p).mean(axis=1) ** (1.0 / o.p)
    return {"sliced-wasserstein": out}


def _mean_cov(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = x.mean(axis=1)
    xc = x - mu[:, None, :]
    return mu, np.einsum("rni,rnj->rij", xc, xc) / (x.shape[1] - 1)


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ v.transpose(0, 2, 1)


def frechet(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Distance: squared Fréchet (2-Wasserstein) distance between fitted Gaussians, as in FID.

    d² = ||μ1 − μ2||² + tr(Σ1 + Σ2 − 2 (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2})  (Dowson & Landau 1982;
    Heusel et al. 2017, eq. 6), with unbiased covariances. Option ``features``: an import path
    ``"pkg.mod:fn"`` to a function mapping one set (n, d) -> (n, k) before fitting (e.g. an image
    embedding). Shapes: (R, n, d), (R, m, d) -> {"frechet": (R,)}.
    """
    o = parse(FrechetOptions, "frechet", options)
    x, y = floats(reference, "reference"), floats(samples, "samples")
    if o.features:
        from ..components import import_path

        fn: Callable = import_path(o.features, "metrics.frechet.features")
        x = np.stack([np.asarray(fn(xi), dtype=float) for xi in x])
        y = np.stack([np.asarray(fn(yi), dtype=float) for yi in y])
    out = np.empty(x.shape[0])
    for s in chunks(x.shape[0], 6 * x.shape[2] ** 2):
        (m1, c1), (m2, c2) = _mean_cov(x[s]), _mean_cov(y[s])
        h = _psd_sqrt(c1)
        cross = np.sqrt(np.clip(np.linalg.eigvalsh(h @ c2 @ h), 0.0, None)).sum(-1)
        d2 = ((m1 - m2) ** 2).sum(-1) + np.trace(c1, axis1=1, axis2=2) + np.trace(c2, axis1=1, axis2=2) - 2 * cross
        out[s] = np.maximum(d2, 0.0)
    return {"frechet": out}


def mmd(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Distance: unbiased MMD² with a Gaussian (RBF) kernel (Gretton et al. 2012, Lemma 6).

    MMD²_u = Σ_{i≠j} k(x_i,x_j)/(n(n−1)) + Σ_{i≠j} k(y_i,y_j)/(m(m−1)) − 2 Σ_{ij} k(x_i,y_j)/(nm),
    k(x, y) = exp(−||x − y||² / (2σ²)); σ = ``bandwidth`` or, with "median", the median pairwise
    distance of the pooled sets of that replicate. Each set is first subsampled (via ``streams``)
    to at most ``max_points`` points, so memory is about 3·(2·max_points)²·8 bytes per replicate.
    Can be slightly negative; ≈ 0 when P = Q. Shapes: (R, n, d), (R, m, d) -> {"mmd": (R,)}.
    """
    o = parse(MMDOptions, "mmd", options)
    x, y = floats(reference, "reference"), floats(samples, "samples")
    if max(x.shape[1], y.shape[1]) > o.max_points:
        s = need_streams(streams, "mmd")
        x, y = subsample(x, o.max_points, s.child("reference")), subsample(y, o.max_points, s.child("samples"))
    n, m = x.shape[1], y.shape[1]
    out = np.empty(x.shape[0])
    for s in chunks(x.shape[0], (n + m) ** 2):
        z = np.concatenate([x[s], y[s]], axis=1)
        k = sqdist(z, z)
        sigma = median_distance(z, k) if o.bandwidth == "median" else np.full(len(z), float(o.bandwidth))
        k *= -0.5 / sigma[:, None, None] ** 2
        np.exp(k, out=k)  # in place: one (c, n+m, n+m) array
        kxx, kyy, kxy = k[:, :n, :n], k[:, n:, n:], k[:, :n, n:]
        sxx = kxx.sum((1, 2)) - np.trace(kxx, axis1=1, axis2=2)
        syy = kyy.sum((1, 2)) - np.trace(kyy, axis1=1, axis2=2)
        out[s] = sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2 * kxy.sum((1, 2)) / (n * m)
    return {"mmd": out}

# --------------------------------------------------------------------------- sets and modes
def _tree(x: np.ndarray):
    from sklearn.neighbors import BallTree, KDTree

    return (KDTree if x.shape[1] <= 16 else BallTree)(x)


def prd(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Quality and diversity from k-NN balls: precision, recall (Kynkäänniemi et al. 2019) and
    density, coverage (Naeem et al. 2020).

    r_i = distance from real x_i to its k-th nearest real neighbour, s_j likewise for sample y_j:
    precision = share of samples inside some real ball  (quality; "are samples realistic"),
    recall    = share of real points inside some sample ball  (diversity),
    density   = Σ_j #{i: ||y_j − x_i|| ≤ r_i} / (k m)  (≈ 1 for P = Q; > 1 on crowded regions),
    coverage  = share of real points whose ball holds at least one sample.
    Shrinking the samples towards the centre (0.5·y) raises precision and lowers recall.
    Exact and sparse: k-NN radii and variable-radius ball queries on sklearn KD/Ball trees, never
    an n × m matrix, so memory stays O(n + m). Time grows with d as k-d trees do: n = m = 10,000 took
    0.12 s per replicate in d = 2 and 6.4 s in d = 10 (two shared CPU cores).
    Shapes: (R, n, d), (R, m, d) -> {"precision", "recall", "density", "coverage": (R,)}.
    """
    o = parse(PRDOptions, "prd", options)
    x, y = floats(reference, "reference"), floats(samples, "samples")
    n, m = x.shape[1], y.shape[1]
    if o.k >= min(n, m):
        raise ConfigError("metrics.prd.k", o.k, f"fewer than the set sizes ({n}, {m})")
    out = {key: np.empty(x.shape[0]) for key in ("precision", "recall", "density", "coverage")}
    for r in range(x.shape[0]):
        tx, ty = _tree(x[r]), _tree(y[r])
        rx = tx.query(x[r], k=o.k + 1)[0][:, -1]  # +1: each point is its own nearest neighbour
        ry = ty.query(y[r], k=o.k + 1)[0][:, -1]
        in_real = ty.query_radius(x[r], rx)  # per real ball: the samples inside
        in_fake = tx.query_radius(y[r], ry)  # per sample ball: the real points inside
        counts = np.array([len(i) for i in in_real])
        out["precision"][r] = np.unique(np.concatenate(in_real)).size / m
        out["recall"][r] = np.unique(np.concatenate(in_fake)).size / n
        out["density"][r] = counts.sum() / (o.k * m)
        out["coverage"][r] = np.mean(counts > 0)
    return out


def vendi(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Diversity of the samples alone: the Vendi score (Friedman & Dieng 2023, eq. 2).

    VS = exp(−Σ_i λ_i log λ_i), λ the eigenvalues of K/m, K_ij = exp(−||y_i − y_j||² / (2σ²)):
    the effective number of distinct samples (k far-apart identical clusters give k). σ is
    ``bandwidth``; "reference" (default) takes the median pairwise distance of the held-out real
    set, a scale fixed by P_r, so a collapsing spread lowers the score; "median" uses the samples'
    own median distance, which is scale-invariant and hides variance collapse. More than
    ``max_points`` samples (or reference points for σ) are subsampled via ``streams``.
    Shapes: (R, m, d) -> {"vendi": (R,)}.
    """
    o = parse(VendiOptions, "vendi", options)
    x, y = floats(reference, "reference"), floats(samples, "samples")
    if y.shape[1] > o.max_points:
        y = subsample(y, o.max_points, need_streams(streams, "vendi").child("samples"))
    if o.bandwidth == "reference":
        if x.shape[1] > o.max_points:
            x = subsample(x, o.max_points, need_streams(streams, "vendi").child("reference"))
        sigma = median_distance(x)
    else:
        sigma = median_distance(y) if o.bandwidth == "median" else np.full(len(y), float(o.bandwidth))
    m = y.shape[1]
    out = np.empty(len(y))
    for s in chunks(len(y), m * m):
        lam = np.clip(np.linalg.eigvalsh(np.exp(-sqdist(y[s], y[s]) / (2 * sigma[s, None, None] ** 2)) / m), 0, None)
        out[s] = np.exp(-(lam * np.log(np.where(lam > 0, lam, 1.0))).sum(-1))
    return {"vendi": out}


def _probe_features(o: FrechetOptions, info, has_log_prob: bool) -> None:
    """A ``frechet`` features function must map (n, d) to (n, k) finite floats: tried on a (3, d) probe."""
    if not o.features:
        return
    from ..components import import_path

    path = o.features
    fn = import_path(path, "metrics.frechet.features")
    n, d = 3, max(1, int(getattr(info, "dim", 1) or 1))
    probe = np.linspace(0.0, 1.0, n * d).reshape(n, d)
    try:
        out = np.asarray(fn(probe), dtype=float)
    except Exception as exc:  # noqa: BLE001 - a user's function: any failure is a bad option
        raise ConfigError("metrics.frechet.features", path, "", problem=f"failed on a ({n}, {d}) array "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if out.ndim != 2 or out.shape[0] != n or out.shape[1] < 1:
        raise ConfigError("metrics.frechet.features", path, f"a function mapping (n, d) arrays to (n, k) features; "
                          f"on a ({n}, {d}) array it returned shape {out.shape}")


METRICS = (
    Metric("wasserstein-1d", wasserstein_1d),
    Metric("sliced-wasserstein", sliced_wasserstein, options=SlicedOptions),
    Metric("frechet", frechet, options=FrechetOptions, check=_probe_features),
    Metric("mmd", mmd, options=MMDOptions),
    Metric("prd", prd, options=PRDOptions),
    Metric("vendi", vendi, options=VendiOptions),
)
