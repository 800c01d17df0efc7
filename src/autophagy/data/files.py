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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv(path: Path, shown: str) -> np.ndarray:
    """A numeric CSV as ``(N, C)`` floats; a first line that is not all numbers is taken as a header."""
    import pandas as pd

    with open(path, newline="") as fh:
        first = next((line for line in fh if line.strip()), None)
    if first is None:
        raise DataError("data.path", shown, "the file is empty (0 rows)")
    header = 0 if any(f.strip() and not _is_number(f.strip()) for f in first.split(",")) else None
    try:
        frame = pd.read_csv(path, header=header, skipinitialspace=True, skip_blank_lines=True)
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
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure (truncated, pickled, not numpy) is a bad file
        raise DataError("data.path", shown, f"not a readable {suffix} file ({type(exc).__name__}: {exc})") from None
    if suffix == ".npy":
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
        return z[key]


def validate(x: np.ndarray, shown: str, columns: Optional[list[int]]) -> np.ndarray:
    """Check the array and return it as ``(N, d)`` float64 (columns selected)."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError("data.path", shown, f"non-numeric data (dtype {x.dtype}); expected real numbers")
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
