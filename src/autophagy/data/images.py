"""Image sources: flattened ``(R, n, H*W)`` arrays with values in [0, 1] and ``info.image_shape = (H, W)``.

* ``binomial-grid`` (Tarchi 2024, "Studying data variability in VAEs using a chain model"):
  blank H×W grids with one lit c×c square; its top-left column ~ Binomial(W − c, p_col) and
  row ~ Binomial(H − c, p_row) (Tarchi: 24×24, p_col = 0.3, p_row = 0.8, c = 3). The trials are
  W − c and H − c so the square always fits inside the grid.
* ``digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 images, values 0..16 scaled
  to [0, 1]); an optional ``classes`` subset. Each replicate resamples rows with replacement
  (the empirical distribution is P_r); ``sample_labeled`` also returns the labels.
* ``images``: a user's folder of PNG files or an ``.npz`` array of images (MNIST-style),
  resampled the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import Field, PositiveInt, field_validator

from ..errors import ConfigError, DataError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams


def _resample(pool: np.ndarray, n: int, streams: Streams, labels: Optional[np.ndarray] = None):
    """Rows of ``pool`` ``(N, d)`` drawn uniformly with replacement: ``(R, n, d)`` (and labels ``(R, n)``)."""
    idx = streams.integers(pool.shape[0], n)
    x = pool[idx]
    return x if labels is None else (x, labels[idx])


class BinomialGridSource:
    """Tarchi's synthetic grids: one lit ``cluster``×``cluster`` square at a binomially distributed position."""

    class Options(Options):
        size: PositiveInt = Field(24, description="grid height and width")
        cluster: PositiveInt = Field(3, description="side of the lit square")
        col_prob: float = Field(0.3, ge=0, le=1, description="Binomial probability of the square's column")
        row_prob: float = Field(0.8, ge=0, le=1, description="Binomial probability of the square's row")

    def __init__(self, options: "BinomialGridSource.Options" = None, base_dir: Path = Path(".")):
        o = self.options = options or self.Options()
        if o.cluster >= o.size:
            raise ConfigError("data.cluster", o.cluster, f"an integer below data.size ({o.size})")
        trials = o.size - o.cluster
        self.info = SourceInfo(dim=o.size * o.size, kind="image", image_shape=(o.size, o.size), truth={
            "cluster": o.cluster, "row_trials": trials, "row_prob": o.row_prob,
            "col_trials": trials, "col_prob": o.col_prob, "position": "binomial"})

    def positions(self, n: int, streams: Streams) -> tuple[np.ndarray, np.ndarray]:
        """Top-left ``(row, col)`` of the square, each ``(R, n)`` int64."""
        o = self.options
        trials = o.size - o.cluster
        row = streams.child("row").draw(lambda g, s: g.binomial(trials, o.row_prob, s), (n,))
        col = streams.child("col").draw(lambda g, s: g.binomial(trials, o.col_prob, s), (n,))
        return row.astype(np.int64), col.astype(np.int64)

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, size²)`` grids of zeros with ones on the square."""
        o = self.options
        row, col = self.positions(n, streams)
        ar = np.arange(o.size)
        in_rows = (ar >= row[..., None]) & (ar < row[..., None] + o.cluster)  # (R, n, size)
        in_cols = (ar >= col[..., None]) & (ar < col[..., None] + o.cluster)
        grid = in_rows[..., :, None] & in_cols[..., None, :]
        return grid.reshape(*row.shape, o.size * o.size).astype(np.float64)


class DigitsSource:
    """scikit-learn's bundled 8×8 digits (no download), scaled to [0, 1]; P_r is their empirical distribution."""

    class Options(Options):
        classes: Optional[tuple[int, ...]] = Field(None, description="keep only these digits (0-9); default all")

        @field_validator("classes")
        @classmethod
        def _digits(cls, value):
            if value is not None:
                bad = [c for c in value if not 0 <= c <= 9]
                if bad or not value or len(set(value)) != len(value):
                    raise ConfigError("data.classes", list(value), "a non-empty list of distinct digits 0..9")
            return value

    def __init__(self, options: "DigitsSource.Options" = None, base_dir: Path = Path(".")):
        from sklearn.datasets import load_digits

        self.options = options or self.Options()
        bunch = load_digits()
        x, y = bunch.data / 16.0, bunch.target.astype(np.int64)
        if self.options.classes is not None:
            keep = np.isin(y, self.options.classes)
            x, y = x[keep], y[keep]
        self.pool, self.labels = x, y
        counts = np.bincount(y, minlength=10)
        self.info = SourceInfo(dim=64, kind="image", image_shape=(8, 8), truth={
            "labels_available": True, "n_images": len(y), "class_probs": counts / counts.sum(),
            "classes": tuple(int(c) for c in np.flatnonzero(counts))})

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, 64)`` rows drawn with replacement per replicate."""
        return _resample(self.pool, n, streams)

    def sample_labeled(self, n: int, streams: Streams) -> tuple[np.ndarray, np.ndarray]:
        """The same rows as ``sample(n, streams)`` plus their labels ``(R, n)`` int64."""
        return _resample(self.pool, n, streams, self.labels)


def _to_unit(x: np.ndarray, field: str, path: str) -> np.ndarray:
    """Scale integer (0..255) or float images to [0, 1]; floats above 1 are read as 0..255."""
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(field, path, f"images must be real numbers, got dtype {x.dtype}")
    if x.dtype == np.float16:
        raise DataError(field, path, "half-precision images (float16); save them as uint8, float32 or float64")
    if x.size == 0:
        raise DataError(field, path, f"the images hold no pixels (shape {x.shape})")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise DataError(field, path, "images contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 255:
        raise DataError(field, path, f"pixel values must lie in [0, 1] or [0, 255], found [{lo:g}, {hi:g}]")
    return x / 255.0 if hi > 1 else x


class ImageFileSource:
    """Images from a folder of PNGs (sorted by name; colour converted to grey) or an ``.npz`` file."""

    class Options(Options):
        path: str = Field(..., description="a folder of .png files or an .npz file (relative paths: to the config)")
        key: Optional[str] = Field(None, description="array name in the .npz (default: its only array besides labels_key)")
        labels_key: Optional[str] = Field(None, description="array of integer labels in the .npz (optional)")
        image_shape: Optional[tuple[PositiveInt, PositiveInt]] = Field(
            None, description="(H, W) for an .npz of flattened (N, H*W) rows; inferred when square")
        max_images: Optional[PositiveInt] = Field(None, description="use only the first max_images images")

    def __init__(self, options: "ImageFileSource.Options", base_dir: Path = Path(".")):
        self.options = o = options
        path = Path(o.path) if Path(o.path).is_absolute() else Path(base_dir) / o.path
        labels = None
        if path.is_dir():
            images = self._read_folder(path)
        elif path.suffix == ".npz" and path.is_file():
            images, labels = self._read_npz(path)
        else:
            raise DataError("data.path", o.path, "expected an existing folder of .png files or an .npz file")
        if o.max_images is not None:
            images = images[: o.max_images]
            labels = None if labels is None else labels[: o.max_images]
        if len(images) < 2:
            raise DataError("data.path", o.path, f"need at least 2 images, found {len(images)}")
        shape = images.shape[1:]
        self.pool = _to_unit(images.reshape(len(images), -1), "data.path", o.path)
        self.labels = labels
        truth = {"labels_available": labels is not None, "n_images": len(images)}
        self.info = SourceInfo(dim=int(np.prod(shape)), kind="image", image_shape=tuple(int(s) for s in shape), truth=truth)

    def _read_folder(self, path: Path) -> np.ndarray:
        import matplotlib.image as mpimg

        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
        if not files:
            raise DataError("data.path", str(path), "the folder holds no .png files")
        images = []
        for f in files:
            try:
                img = np.asarray(mpimg.imread(f), dtype=np.float64)  # PNG: floats in [0, 1]
            except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
                raise DataError("data.path", str(f), f"not a readable PNG ({type(exc).__name__}: {exc})") from None
            if img.ndim == 3:
                img = img[..., :3].mean(axis=-1)  # drop alpha, average RGB to grey
            if images and img.shape != images[0].shape:
                raise DataError("data.path", str(f), f"image shape {img.shape} differs from {images[0].shape} "
                                f"({files[0].name})")
            images.append(img)
        return np.stack(images)

    def _read_npz(self, path: Path) -> tuple[np.ndarray, Optional[np.ndarray]]:
        o = self.options
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
            raise DataError("data.path", o.path, f"not a readable .npz file ({type(exc).__name__}: {exc})") from None
        if not arrays:
            raise DataError("data.path", o.path, "the .npz file holds no arrays")
        key = o.key
        if key is None:  # as the file source: the only array (besides the labels), else name one
            names = [k for k in arrays if k != o.labels_key]
            if len(names) != 1:
                raise DataError("data.key", None, f"{o.path} holds several arrays ({', '.join(arrays)}): name one in data.key")
            key = names[0]
        if key not in arrays:
            raise DataError("data.key", key, f"one of the arrays in {o.path}: {', '.join(arrays)}")
        x = arrays[key]
        if x.size == 0 or (x.ndim >= 2 and 0 in x.shape[1:]):
            raise DataError("data.key", key, f"images with at least one pixel; {o.path} holds shape {x.shape}")
        if x.ndim == 2:
            shape = o.image_shape
            side = int(round(np.sqrt(x.shape[1])))
            if shape is None and side * side == x.shape[1]:
                shape = (side, side)
            if shape is None or shape[0] * shape[1] != x.shape[1]:
                raise ConfigError("data.image_shape", shape, f"(H, W) with H*W = {x.shape[1]} for flattened rows")
            x = x.reshape(len(x), *shape)
        elif x.ndim == 4 and x.shape[-1] in (1, 3, 4):
            x = x[..., :3].mean(axis=-1)
        elif x.ndim != 3:
            raise DataError("data.key", key, f"expected images (N, H, W), (N, H, W, C) or (N, H*W), got shape {x.shape}")
        labels = None
        if o.labels_key is not None:
            if o.labels_key not in arrays:
                raise DataError("data.labels_key", o.labels_key, f"one of the arrays in {o.path}: {', '.join(arrays)}")
            labels = np.asarray(arrays[o.labels_key]).reshape(-1)
            if len(labels) != len(x) or not np.issubdtype(labels.dtype, np.integer):
                raise DataError("data.labels_key", o.labels_key, f"{len(x)} integer labels, got {labels.dtype} {labels.shape}")
            labels = labels.astype(np.int64)
        return x, labels

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, H*W)`` images drawn with replacement per replicate."""
        return _resample(self.pool, n, streams)

    def sample_labeled(self, n: int, streams: Streams) -> tuple[np.ndarray, np.ndarray]:
        """The rows of ``sample`` and their labels; a DataError when the file has none."""
        if self.labels is None:
            raise DataError("data.labels_key", self.options.labels_key, "an .npz array of labels (none was given)")
        return _resample(self.pool, n, streams, self.labels)
