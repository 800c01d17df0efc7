"""Image metrics for the VAE chains of Tarchi (2024) and for digit images, plus sample grids.

Every metric has the signature of ``autophagy.metrics.base``, with images flattened to d = H·W (shape in
``info.image_shape``), values in [0, 1]. ``distribution-difference`` declares image data only; the
others also take plain vectors (the digit metrics: 64-dimensional ones, read as 8×8 digits).

* ``variability`` (diversity; Tarchi's "variability"): mean squared pixel difference between two
  distinct images of a set, computed exactly over all pairs (= 2 Σ_pixels Var / d, unbiased
  variance) rather than over random pairs; also its ratio to the reference's.
* ``distribution-difference`` (bias; Tarchi's "distribution difference", binomial-grid only):
  total variation between the histogram of the lit square's row (column) and the source's exact
  Binomial law, averaged over rows and columns; plus ``cluster-concentration``, the share of an
  image's intensity inside its brightest c×c window (falls as "images get lighter and more spread").
* ``digit-frechet``: Fréchet distance (FID's formula, Heusel et al. 2017 eq. 6) in the feature
  space of ``autophagy.features`` (an MLP trained on the bundled digits).
* ``digit-precision-recall``: improved precision and recall (Kynkäänniemi et al. 2019) with k-NN
  balls in the same feature space.
* ``class-distribution``: total variation between the predicted-class histograms of samples and
  reference, and the entropy of the samples' one (mode collapse drops it below log 10).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import Field, PositiveInt

from ..errors import ConfigError
from ..options import Options
from .base import IMAGES, Metric, NoOptions, floats, parse


class DistributionOptions(Options):
    cluster: Optional[PositiveInt] = Field(None, description="side of the lit square (default: the source's)")


class FeatureOptions(Options):
    cache_dir: Optional[str] = Field(None, description="where the digit feature network is cached (default ~/.cache/autophagy)")


class PROptions(FeatureOptions):
    k: PositiveInt = Field(3, description="k of the k-NN radii")


def _image_shape(info, name: str, d: int) -> tuple[int, int]:
    shape = getattr(info, "image_shape", None)
    if shape is None or len(shape) != 2 or shape[0] * shape[1] != d:
        raise ConfigError("metrics", name, "an image source (info.image_shape = (H, W) with H*W = d)")
    return int(shape[0]), int(shape[1])


# --------------------------------------------------------------------------- diversity
def pairwise_mse(x: np.ndarray) -> np.ndarray:
    """Mean over pairs i ≠ j of mean_pixels (x_i − x_j)²: ``(R, n, d) -> (R,)`` (exact, all pairs)."""
    return 2.0 * x.var(axis=1, ddof=1).mean(axis=-1)


def variability(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Diversity (Tarchi's variability): ``{"variability": (R,), "variability-ratio": samples / reference}``."""
    parse(NoOptions, "variability", options)
    v_s, v_r = pairwise_mse(floats(samples, "samples")), pairwise_mse(floats(reference, "reference"))
    return {"variability": v_s, "variability-ratio": v_s / np.where(v_r > 0, v_r, np.nan)}


# --------------------------------------------------------------------------- binomial grids
def locate_square(x: np.ndarray, shape: tuple[int, int], c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-left (row, col) of each image's brightest c×c window and that window's share of the intensity.

    ``x``: ``(..., H*W)``; returns three ``(...)`` arrays (ties: the first window in raster order).
    """
    H, W = shape
    img = x.reshape(*x.shape[:-1], H, W)
    s = np.zeros((*img.shape[:-2], H + 1, W + 1))
    s[..., 1:, 1:] = img.cumsum(-2).cumsum(-1)  # summed-area table
    box = s[..., c:, c:] - s[..., :-c, c:] - s[..., c:, :-c] + s[..., :-c, :-c]  # (..., H-c+1, W-c+1)
    flat = box.reshape(*box.shape[:-2], -1)
    best = flat.argmax(-1)
    total = img.sum((-2, -1))
    share = np.take_along_axis(flat, best[..., None], -1)[..., 0] / np.where(total > 0, total, np.nan)
    return best // box.shape[-1], best % box.shape[-1], share


def _binomial_pmf(trials: int, p: float) -> np.ndarray:
    from scipy.stats import binom

    return binom.pmf(np.arange(trials + 1), trials, p)


def _hist(pos: np.ndarray, bins: int) -> np.ndarray:
    """``(R, m)`` ints in [0, bins) -> ``(R, bins)`` frequencies."""
    R, m = pos.shape
    return np.bincount((np.arange(R)[:, None] * bins + pos).ravel(), minlength=R * bins).reshape(R, bins) / m


def distribution_difference(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Bias (Tarchi's distribution difference) for ``binomial-grid`` data.

    TV_row = ½ Σ_k |f̂_row(k) − Binom(k; T, p_row)| with f̂ the samples' histogram of square rows
    (likewise columns); when the source's law is unknown, the reference's histogram replaces it.
    Returns ``distribution-difference`` (mean of the two), ``-row``, ``-col`` and
    ``cluster-concentration``, each ``(R,)``. With m samples, even a perfect model scores about
    ½ Σ_k sqrt(2 p_k (1 − p_k) / (π m)) (sampling noise), so compare across generations, not to 0.
    """
    o = parse(DistributionOptions, "distribution-difference", options)
    y = floats(samples, "samples")
    shape = _image_shape(info, "distribution-difference", y.shape[-1])
    truth = dict(getattr(info, "truth", {}) or {})
    c = o.cluster or int(truth.get("cluster", 3))
    bins_r, bins_c = shape[0] - c + 1, shape[1] - c + 1
    row, col, share = locate_square(y, shape, c)
    if truth.get("position") == "binomial" and o.cluster in (None, truth.get("cluster")):
        ref_r = _binomial_pmf(int(truth["row_trials"]), float(truth["row_prob"]))[None]
        ref_c = _binomial_pmf(int(truth["col_trials"]), float(truth["col_prob"]))[None]
    else:
        r_row, r_col, _ = locate_square(floats(reference, "reference"), shape, c)
        ref_r, ref_c = _hist(r_row, bins_r), _hist(r_col, bins_c)
    tv_r = 0.5 * np.abs(_hist(row, bins_r) - ref_r).sum(-1)
    tv_c = 0.5 * np.abs(_hist(col, bins_c) - ref_c).sum(-1)
    return {"distribution-difference": (tv_r + tv_c) / 2, "distribution-difference-row": tv_r,
            "distribution-difference-col": tv_c, "cluster-concentration": np.nanmean(share, axis=1)}


# --------------------------------------------------------------------------- digit features
def _features(x: np.ndarray, info, cache_dir: Optional[str], what: str):
    """``(R, n, d)`` images -> the feature network and ``(R, n, 64)`` digit-resolution images."""
    from ..features import digit_features, to_digit_resolution

    net = digit_features(Path(cache_dir) if cache_dir else None)
    shape = getattr(info, "image_shape", None)
    if shape is None and x.shape[-1] != 64:
        raise ConfigError("metrics", what, "8×8 digit images or an image source with info.image_shape")
    small = np.stack([to_digit_resolution(xi, shape) for xi in x])
    return net, small


def frechet_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Fréchet distance between Gaussians fitted to ``(R, n, k)`` and ``(R, m, k)``: ``(R,)``."""
    def mean_cov(x):
        mu = x.mean(axis=1)
        xc = x - mu[:, None]
        return mu, np.einsum("rni,rnj->rij", xc, xc) / (x.shape[1] - 1)

    (m1, c1), (m2, c2) = mean_cov(a), mean_cov(b)
    w, v = np.linalg.eigh(c1)
    h = (v * np.sqrt(np.clip(w, 0, None))[:, None, :]) @ v.transpose(0, 2, 1)  # C1^{1/2}
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(h @ c2 @ h), 0, None)).sum(-1)  # tr (C1^{1/2} C2 C1^{1/2})^{1/2}
    d2 = ((m1 - m2) ** 2).sum(-1) + np.trace(c1, axis1=1, axis2=2) + np.trace(c2, axis1=1, axis2=2) - 2 * cross
    return np.maximum(d2, 0.0)


def digit_frechet(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Distance: Fréchet distance of digit features (an offline, 8×8 stand-in for FID) -> ``{"digit-frechet": (R,)}``."""
    o = parse(FeatureOptions, "digit-frechet", options)
    net, x = _features(floats(reference, "reference"), info, o.cache_dir, "digit-frechet")
    _, y = _features(floats(samples, "samples"), info, o.cache_dir, "digit-frechet")
    fx = net.embed(x.reshape(-1, 64)).reshape(*x.shape[:2], -1)
    fy = net.embed(y.reshape(-1, 64)).reshape(*y.shape[:2], -1)
    return {"digit-frechet": frechet_distance(fx, fy)}


def _knn_radius(f: np.ndarray, k: int) -> np.ndarray:
    """Distance from each of ``(n, k')`` points to its k-th nearest other point: ``(n,)``."""
    d2 = np.maximum((f * f).sum(1)[:, None] + (f * f).sum(1)[None] - 2 * f @ f.T, 0.0)
    return np.sqrt(np.partition(d2, k, axis=1)[:, k])  # column 0 is the point itself


def digit_precision_recall(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Quality and coverage (Kynkäänniemi et al. 2019) in digit-feature space.

    precision = share of samples inside some reference point's k-NN ball; recall = share of
    reference points inside some sample's k-NN ball. -> ``{"digit-precision", "digit-recall"}``.
    """
    o = parse(PROptions, "digit-precision-recall", options)
    net, x = _features(floats(reference, "reference"), info, o.cache_dir, "digit-precision-recall")
    _, y = _features(floats(samples, "samples"), info, o.cache_dir, "digit-precision-recall")
    prec, rec = np.empty(len(x)), np.empty(len(x))
    for r in range(len(x)):
        fx, fy = net.embed(x[r]), net.embed(y[r])
        rx, ry = _knn_radius(fx, o.k), _knn_radius(fy, o.k)
        d = np.sqrt(np.maximum((fy * fy).sum(1)[:, None] + (fx * fx).sum(1)[None] - 2 * fy @ fx.T, 0.0))  # (m, n)
        prec[r] = (d <= rx[None, :]).any(axis=1).mean()
        rec[r] = (d <= ry[:, None]).any(axis=0).mean()
    return {"digit-precision": prec, "digit-recall": rec}


def class_distribution(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Mode balance: TV between the classifier's predicted-class histograms of samples and reference.

    Returns ``class-distribution`` (TV, (R,)) and ``class-entropy`` (entropy of the samples'
    predicted classes in nats; log 10 ≈ 2.30 for balanced digits).
    """
    o = parse(FeatureOptions, "class-distribution", options)
    net, x = _features(floats(reference, "reference"), info, o.cache_dir, "class-distribution")
    _, y = _features(floats(samples, "samples"), info, o.cache_dir, "class-distribution")
    px = _hist(net.classify(x.reshape(-1, 64)).argmax(1).reshape(x.shape[:2]), 10)
    py = _hist(net.classify(y.reshape(-1, 64)).argmax(1).reshape(y.shape[:2]), 10)
    ent = -(py * np.log(np.where(py > 0, py, 1.0))).sum(-1)
    return {"class-distribution": 0.5 * np.abs(px - py).sum(-1), "class-entropy": ent}


def _cache_check(name: str):
    """A check that a digit metric's feature cache stays in the user cache or results/ (``features.check_cache_dir``)."""
    def check(o: FeatureOptions, info, has_log_prob: bool) -> None:
        if o.cache_dir:
            from ..features import check_cache_dir

            check_cache_dir(o.cache_dir, f"metrics.{name}.cache_dir")
    return check


METRICS = (
    Metric("variability", variability),
    Metric("distribution-difference", distribution_difference, kinds=IMAGES, options=DistributionOptions),
    Metric("digit-frechet", digit_frechet, options=FeatureOptions, check=_cache_check("digit-frechet")),
    Metric("digit-precision-recall", digit_precision_recall, options=PROptions,
           check=_cache_check("digit-precision-recall")),
    Metric("class-distribution", class_distribution, options=FeatureOptions, check=_cache_check("class-distribution")),
)


# --------------------------------------------------------------------------- sample grids
def save_grid(samples: np.ndarray, image_shape: tuple, path, ncols: Optional[int] = None, min_width: int = 400) -> Path:
    """Write ``(n, H*W)`` images in [0, 1] as one grey PNG mosaic (1-pixel mid-grey gutters), upscaled
    by an integer factor to at least ``min_width`` pixels. Uses ``matplotlib.image.imsave`` (no pyplot, no display)."""
    import matplotlib.image as mpimg

    x = np.clip(np.asarray(samples, dtype=np.float64), 0.0, 1.0)
    H, W = int(image_shape[0]), int(image_shape[1])
    n = len(x)
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    mosaic = np.full((nrows * (H + 1) + 1, ncols * (W + 1) + 1), 0.5)
    for i, img in enumerate(x.reshape(n, H, W)):
        r, c = divmod(i, ncols)
        mosaic[1 + r * (H + 1):1 + r * (H + 1) + H, 1 + c * (W + 1):1 + c * (W + 1) + W] = img
    scale = max(1, -(-min_width // mosaic.shape[1]))
    mosaic = np.repeat(np.repeat(mosaic, scale, axis=0), scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mpimg.imsave(path, mosaic, cmap="gray", vmin=0.0, vmax=1.0)
    return path
