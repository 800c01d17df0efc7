"""Real data too large to hold R copies of: a memory-mapped ``.npy`` or a folder of PNGs read on demand.

``data.source: memmap``. The file is opened once with ``np.load(mmap_mode="r")`` (a folder: its sorted
file names are listed once) and shared by all R replicates; each ``sample(n, streams)`` draws row
indices per replicate (uniformly with replacement, from the seed tree, so replicate r's rows do not
depend on R) and reads only the distinct rows drawn, in file order. Memory is O(R·n·d) for the
returned sample, never O(N·d) for the file (the other file sources, ``file`` and ``images``, load the
whole array).

* ``.npy`` of shape ``(N, d)``: vectors (``kind: vector``), or images of ``image_shape`` (H, W) when given;
  ``(N, H, W)``: images; ``(N, H, W, C)``: images averaged over colour channels.
* A folder of ``.png`` files (sorted by name; colour averaged to grey; all of one size).

Images are scaled to [0, 1]: integer dtypes are read as 0..255, floats must already lie in [0, 1]
(decided by dtype, so every draw is scaled alike). Rows that hold NaN/inf, or pixel values outside [0, 255], raise a ``DataError`` naming
``data.path`` when they are first drawn (checking the whole file up front would read all of it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field, PositiveInt

from ..errors import ConfigError, DataError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams


class MemmapSource:
    """P_r = the empirical distribution of a large ``.npy`` file or image folder, read lazily."""

    class Options(Options):
        path: str = Field(..., description="an .npy file or a folder of .png files (relative paths: to the config)")
        kind: Literal["auto", "vector", "image"] = Field(
            "auto", description="auto: image for folders, (N, H, W[, C]) arrays or when image_shape is set; else vector")
        image_shape: Optional[tuple[PositiveInt, PositiveInt]] = Field(
            None, description="(H, W) of an .npy of flattened (N, H*W) image rows")
        max_rows: Optional[PositiveInt] = Field(None, description="use only the first max_rows rows / files")

    def __init__(self, options: "MemmapSource.Options", base_dir: Path = Path(".")):
        self.options = o = options
        path = Path(o.path) if Path(o.path).is_absolute() else Path(base_dir) / o.path
        self.files: Optional[list[Path]] = None
        if path.is_dir():
            self.files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
            if not self.files:
                raise DataError("data.path", o.path, "the folder holds no .png files")
            first = self._read_png(self.files[0])
            shape, n, image = first.shape, len(self.files), True
        elif path.suffix == ".npy" and path.is_file():
            try:
                self.array = np.load(path, mmap_mode="r", allow_pickle=False)
            except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
                raise DataError("data.path", o.path, f"not a readable .npy file ({type(exc).__name__}: {exc})") from None
            shape, n, image = self._array_shape()
        else:
            raise DataError("data.path", o.path, "expected an existing .npy file or a folder of .png files")
        if o.kind == "vector" and image and self.files is not None:
            raise ConfigError("data.kind", o.kind, "image or auto for a folder of images")
        self.image = image if o.kind == "auto" else o.kind == "image"
        self.n_rows = min(n, o.max_rows or n)
        if self.n_rows < 2:
            raise DataError("data.path", o.path, f"need at least 2 rows, found {self.n_rows}")
        self.shape = tuple(int(s) for s in shape)
        dim = int(np.prod(self.shape))
        truth = {"n_rows": self.n_rows, "lazy": True}
        self.info = (SourceInfo(dim=dim, kind="image", image_shape=self.shape, truth=truth) if self.image
                     else SourceInfo(dim=dim, truth=truth))

    def _array_shape(self):
        o, a = self.options, self.array
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise DataError("data.path", o.path, f"expected real numbers, got dtype {a.dtype}")
        if a.ndim == 2:
            if o.image_shape is not None:
                if o.image_shape[0] * o.image_shape[1] != a.shape[1]:
                    raise ConfigError("data.image_shape", list(o.image_shape), f"(H, W) with H*W = {a.shape[1]}")
                return o.image_shape, a.shape[0], True
            if o.kind == "image":
                raise ConfigError("data.image_shape", None, f"(H, W) with H*W = {a.shape[1]} for flattened image rows")
            return (a.shape[1],), a.shape[0], False
        if a.ndim == 3 or (a.ndim == 4 and a.shape[-1] in (1, 3, 4)):
            if o.kind == "vector":
                raise ConfigError("data.kind", o.kind, f"image or auto for an array of shape {a.shape}")
            return a.shape[1:3], a.shape[0], True
        raise DataError("data.path", o.path, f"expected (N, d), (N, H, W) or (N, H, W, C) rows, got shape {a.shape}")

    def _read_png(self, f: Path) -> np.ndarray:
        import matplotlib.image as mpimg

        try:
            img = np.asarray(mpimg.imread(f), dtype=np.float64)  # PNG: floats in [0, 1]
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
            raise DataError("data.path", str(f), f"not a readable PNG ({type(exc).__name__}: {exc})") from None
        img = img[..., :3].mean(axis=-1) if img.ndim == 3 else img
        if self.files and hasattr(self, "shape") and img.shape != self.shape:
            raise DataError("data.path", str(f), f"image shape {img.shape} differs from {self.shape} ({self.files[0].name})")
        return img

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` (sorted, distinct) as ``(len(idx), d)`` float64, images scaled to [0, 1]."""
        if self.files is not None:
            return np.stack([self._read_png(self.files[i]).reshape(-1) for i in idx])
        x = np.asarray(self.array[idx], dtype=np.float64)
        if x.ndim == 4:
            x = x[..., :3].mean(axis=-1)
        x = x.reshape(len(idx), -1)
        if not np.all(np.isfinite(x)):
            raise DataError("data.path", self.options.path, "rows drawn contain NaN or infinite values")
        if self.image:  # decided by dtype, not by the rows drawn, so every draw is scaled alike
            top = 255.0 if np.issubdtype(self.array.dtype, np.integer) else 1.0
            lo, hi = float(x.min()), float(x.max())
            if lo < 0 or hi > top:
                raise DataError("data.path", self.options.path, f"pixel values must lie in [0, {top:g}] for dtype "
                                f"{self.array.dtype} (integers are read as 0..255), found [{lo:g}, {hi:g}]")
            x = x / top
        return x

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, d)``: rows drawn uniformly with replacement per replicate; only the distinct rows are read."""
        idx = streams.integers(self.n_rows, int(n))  # (R, n)
        distinct, where = np.unique(idx, return_inverse=True)
        return self.rows(distinct)[where.reshape(idx.shape)]
