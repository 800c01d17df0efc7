"""The ``file`` source: P_r is the empirical distribution of a user's data file.

Why: self-consuming loops on real data (Shumailov et al. 2024; Bertrand et al. 2024) start from a
finite dataset; resampling it with replacement makes the file's empirical distribution the "real"
distribution, so every replicate draws fresh i.i.d. real points from the same P_r (the bootstrap).

Formats: ``.npy``, ``.npz`` (array ``key``, or the file's only array) and ``.csv`` (numbers
separated by commas; one header row is detected when its first line is not all numbers).
``columns`` selects columns (0-based). A 1-D array is one column, ``(N,) -> (N, 1)``.
The file is read and checked once, at construction; every problem is one ``DataError`` on
``data.path`` naming the file and what is wrong (missing, unknown extension, empty, non-numeric,
NaN or inf, more than 2 dimensions, fewer than 2 rows).

``info.truth``: the empirical ``mean`` (d,) and ``cov`` (d, d, normalised by N) of the rows,
exactly P_r's moments, ``gaussian: False`` and ``n_rows`` N.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import Field

from ..errors import DataError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams

FORMATS = (".npy", ".npz", ".csv")
MAX_CSV_BYTES = 512 * 2**20  # larger text files are refused up front (parsing holds several copies): use .npy
MAX_ARRAY_BYTES = 4 * 2**30  # a pool is held in memory by every worker
MAX_ABS = 1e150  # beyond this, squares (variances, distances) overflow float64 to inf


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv(path: Path, shown: str) -> np.ndarray:
    """A numeric CSV as ``(N, C)`` floats; a first line that is not all numbers is taken as a header."""
    import pandas as pd

    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise DataError("data.path", shown, f"a {size / 2**20:,.0f} MiB CSV: at most {MAX_CSV_BYTES // 2**20} MiB of "
                        "text is read (convert it to .npy: numpy.save, which is read without parsing)")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            first = next((line for line in fh if line.strip()), None)
    except UnicodeDecodeError as exc:
        raise DataError("data.path", shown, f"not UTF-8 text (byte {exc.start}); save the CSV as UTF-8") from None
    if first is None:
        raise DataError("data.path", shown, "the file is empty (0 rows)")
    header = 0 if any(f.strip() and not _is_number(f.strip()) for f in first.split(",")) else None
    try:
        frame = pd.read_csv(path, header=header, skipinitialspace=True, skip_blank_lines=True, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise DataError("data.path", shown, "the file is empty (0 rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError("data.path", shown, f"not a readable CSV file ({line})") from None
    for col in frame.columns:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError("data.path", shown, f"non-numeric value {frame[col].iloc[row]!r} in column "
                            f"{col!r}, data row {row} (counting from 0 after any header)")
        frame[col] = values
    return frame.to_numpy(dtype=np.float64)


def read_array(path: Path, shown: str, key: Optional[str]) -> np.ndarray:
    """The raw array in ``path`` (any shape/dtype; checked by ``validate``)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path, shown)
    try:  # .npy memory-mapped: its size is checked before anything is read
        loaded = np.load(path, allow_pickle=False, mmap_mode="r" if suffix == ".npy" else None)
    except Exception as exc:  # noqa: BLE001 - any reader failure (truncated, pickled, not numpy) is a bad file
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise DataError("data.path", shown, f"not a readable {suffix} file ({type(exc).__name__}: {first})") from None
    if suffix == ".npy":
        _check_bytes(loaded, shown)
        return loaded
    with loaded as z:
        names = list(z.files)
        if not names:
            raise DataError("data.path", shown, "the .npz file is empty (it holds no arrays)")
        if key is None:
            if len(names) > 1:
                raise DataError("data.key", None, f"{shown} holds several arrays ({', '.join(names)}): name one in data.key")
            key = names[0]
        if key not in names:
            raise DataError("data.key", key, f"one of the arrays in {shown}: {', '.join(names)}")
        try:
            return z[key]
        except Exception as exc:  # noqa: BLE001 - a truncated or pickled member
            raise DataError("data.path", shown, f"array {key!r} is not readable ({type(exc).__name__})") from None


def _check_bytes(x: np.ndarray, shown: str) -> None:
    if x.nbytes > MAX_ARRAY_BYTES:
        raise DataError("data.path", shown, f"{x.nbytes / 2**30:.1f} GiB of data (shape {x.shape}): at most "
                        f"{MAX_ARRAY_BYTES / 2**30:.0f} GiB are loaded; subsample it (every worker holds the pool)")


def validate(x: np.ndarray, shown: str, columns: Optional[list[int]]) -> np.ndarray:
    """Check the array and return it as ``(N, d)`` float64 (columns selected)."""
    x = np.asarray(x)
    if x.dtype.kind == "b":
        raise DataError("data.path", shown, "boolean data (dtype bool); expected real numbers (cast 0/1 data to "
                        "float if you mean it: noise-free points make a singular covariance)")
    if x.dtype.kind not in "iuf":
        raise DataError("data.path", shown, f"non-numeric data (dtype {x.dtype}); expected real numbers")
    if x.dtype == np.float16:
        raise DataError("data.path", shown, "half-precision data (float16: about 3 digits, so distinct points round "
                        "together and overflow past 65504); save it as float32 or float64")
    if x.ndim == 0 or x.ndim > 2:
        raise DataError("data.path", shown, f"expected a 1-D or 2-D array (rows x columns), got {x.ndim} dims "
                        f"with shape {x.shape}")
    if x.ndim == 1:
        x = x[:, None]
    if x.size == 0:
        raise DataError("data.path", shown, f"the file is empty ({x.shape[0]} rows, {x.shape[1]} columns)")
    if columns is not None:
        bad = [c for c in columns if not -x.shape[1] <= c < x.shape[1]]
        if bad or not columns:
            raise DataError("data.columns", list(columns), f"a non-empty list of column indices below {x.shape[1]}, "
                            f"the number of columns in {shown}")
        x = x[:, list(columns)]
    x = x.astype(np.float64)
    problems = []
    for what, mask in (("NaN or missing", np.isnan(x)), ("inf", np.isinf(x))):
        if mask.any():
            rows = np.flatnonzero(mask.any(axis=1))
            problems.append(f"{int(mask.sum())} {what} value(s) in {len(rows)} row(s) (first: row {int(rows[0])})")
    if problems:
        raise DataError("data.path", shown, "contains " + " and ".join(problems) + "; rows count from 0. "
                        "Remove or impute them")
    big = np.abs(x) > MAX_ABS
    if big.any():
        row = int(np.flatnonzero(big.any(axis=1))[0])
        raise DataError("data.path", shown, f"values up to {float(np.abs(x).max()):.3g} (first: row {row}) overflow "
                        f"float64 when squared; rescale the data (|x| <= {MAX_ABS:g})")
    if x.shape[0] < 2:
        raise DataError("data.path", shown, f"need at least 2 rows, found {x.shape[0]}")
    return x


class FileSource:
    """Rows of a ``.npy`` / ``.npz`` / ``.csv`` file, resampled with replacement per replicate."""

    class Options(Options):
        path: str = Field(..., description="a .npy, .npz or .csv file (relative paths: to the config file)")
        key: Optional[str] = Field(None, description="array name in an .npz (default: its only array)")
        columns: Optional[list[int]] = Field(None, description="0-based columns to keep (default: all)")

    def __init__(self, options: "FileSource.Options", base_dir: Path = Path(".")):
        o = self.options = options
        path = Path(o.path).expanduser()
        if not path.is_absolute():
            path = Path(base_dir) / path
        shown = o.path if path == Path(o.path) else f"{o.path} ({path})"
        if not path.is_file():
            raise DataError("data.path", shown, "no such file" if not path.exists() else "not a file")
        if path.suffix.lower() not in FORMATS:
            raise DataError("data.path", shown, f"unknown extension {path.suffix!r}; expected one of {', '.join(FORMATS)}")
        self.path = path
        self.pool = validate(read_array(path, shown, o.key), shown, o.columns)  # (N, d)
        N, d = self.pool.shape
        mean = self.pool.mean(axis=0)
        centred = self.pool - mean
        self.info = SourceInfo(dim=d, kind="vector", truth={
            "mean": mean, "cov": centred.T @ centred / N, "gaussian": False, "n_rows": N})

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, d)`` rows drawn uniformly with replacement, independently per replicate."""
        return self.pool[streams.integers(self.pool.shape[0], int(n))]
