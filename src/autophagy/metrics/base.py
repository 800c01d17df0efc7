"""The metric record, option parsing and the array helpers the metric modules share.

A metric is a pure function ::

    fn(reference, samples, *, model=None, info=None, streams=None, **options) -> {key: (R,) array}

``reference`` is held-out real data ``(R, n, d)``, ``samples`` a generation's samples ``(R, m, d)``
(categorical tokens ``(R, n, 1)``, token sequences ``(R, n, T)`` int64), ``model`` the fitted batch
model, ``info`` the source's ``SourceInfo`` and ``streams`` an ``autophagy.rng.Streams`` (the metric's
own sub-stream) for the few metrics that draw. A ``Metric`` record pairs the function with what it
declares about itself: the data kinds it applies to, the model capabilities it needs, the source truth
it reads and its options model. ``autophagy.metrics.registry`` checks a run's metrics against those
declarations before the first fit; no code elsewhere decides by a metric's name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import numpy as np
from pydantic import ValidationError

from ..errors import ConfigError
from ..options import Options

# ``SourceInfo.kind`` values. Vector metrics take every kind whose samples are float vectors (R, n, d).
VECTORS = frozenset({"vector", "regression", "image"})
CATEGORICAL = frozenset({"categorical"})
TOKENS = frozenset({"tokens"})
IMAGES = frozenset({"image"})
# What to ask for when a metric declares a kind the data are not: (sources that give it, the metric's adjective).
KIND_NAMES = {"tokens": ("a token source (markov-text, text)", "text"),
              "categorical": ("a categorical source (categorical)", "categorical"),
              "image": ("an image source (binomial-grid, digits, images)", "image"),
              "vector": ("a vector source", "vector"), "regression": ("a regression source", "regression")}
DATA_NAMES = {"tokens": "token", "categorical": "categorical", "image": "image", "vector": "vector"}
CAPABILITIES = ("log_prob",)  # model capabilities a metric may declare in ``needs``

_BUDGET = 1 << 22  # array elements per vectorised chunk of replicates (~32 MB of float64)


class NoOptions(Options):
    pass


@dataclass(frozen=True)
class Metric:
    """One metric and what it declares about the data it applies to.

    ``kinds``: the ``SourceInfo.kind`` values it measures (a run on another kind is refused before the
    first fit). ``needs``: model capabilities (``"log_prob"``), checked against the family. ``truth``:
    ``SourceInfo.truth`` keys it reads, each with what to ask for when the source has none. ``options``:
    the pydantic model its options are validated with. ``check(options, info, has_log_prob)``: any
    further check of validated options against the source, raising ``ConfigError``. ``masked``: a
    replicate whose samples hold NaN or inf (a diverged model) records NaN (False for metrics that
    never read the samples, such as heldout-nll).
    """

    name: str
    fn: Callable[..., Any]
    kinds: frozenset = VECTORS
    needs: frozenset = frozenset()
    truth: Mapping[str, str] = field(default_factory=dict)
    options: type = NoOptions
    check: Optional[Callable[[Any, Any, bool], None]] = None
    masked: bool = True


def parse(cls: type, name: str, options: dict) -> Any:
    """Validate metric ``name``'s options with model ``cls``; unknown keys and bad values raise ``ConfigError``."""
    fields = getattr(cls, "model_fields", {})
    for key in options:
        names = {f.alias or n for n, f in fields.items()} | set(fields)
        if key not in names:
            valid = ", ".join(fields) or "no options"
            raise ConfigError(f"metrics.{name}", key, f"one of {valid}" if fields else valid)
    try:
        return cls(**options)
    except ValidationError as exc:
        errs = exc.errors()
        key = str(errs[0]["loc"][0]) if errs[0]["loc"] else "?"
        msgs = [e["msg"] for e in errs if e["loc"] and str(e["loc"][0]) == key]  # one per Union branch
        raise ConfigError(f"metrics.{name}.{key}", options.get(key), "", problem=" or ".join(msgs)) from None


# --------------------------------------------------------------------------- array helpers
def floats(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"{what} must have shape (R, n, d), got {x.shape}")
    return x


def chunks(R: int, per_replicate: int):
    """Slices of the replicate axis holding about ``_BUDGET`` elements each (at least one replicate)."""
    step = max(1, _BUDGET // max(1, per_replicate))
    return [slice(i, min(R, i + step)) for i in range(0, R, step)]


def need_streams(streams, name: str):
    if streams is None:
        raise TypeError(f"metric {name!r} draws random numbers and needs streams=autophagy.rng.Streams(...)")
    return streams


def subsample(x: np.ndarray, k: int, streams) -> np.ndarray:
    """A uniform random subset of ``k`` of the ``n`` points of each replicate: (R, n, d) -> (R, k, d)."""
    if x.shape[1] <= k:
        return x
    idx = np.argsort(streams.permutation_keys(x.shape[1]), axis=1)[:, :k]
    return np.take_along_axis(x, idx[..., None], axis=1)


def sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, (c, n, d) x (c, m, d) -> (c, n, m)."""
    d2 = (a * a).sum(-1)[:, :, None] + (b * b).sum(-1)[:, None, :] - 2.0 * a @ b.transpose(0, 2, 1)
    return np.maximum(d2, 0.0)


def median_distance(x: np.ndarray, d2: Optional[np.ndarray] = None) -> np.ndarray:
    """Median pairwise distance of each replicate's points (the median heuristic): (c, n, d) -> (c,).

    ``d2``: the (c, n, n) squared distances when already computed. Falls back to 1 for a set of
    identical points.
    """
    from scipy.spatial.distance import pdist, squareform

    def pairs(r: int) -> np.ndarray:  # the n(n−1)/2 distances, without an index array of twice that size
        if d2 is None:
            return pdist(x[r])
        return np.sqrt(squareform(d2[r], checks=False))

    med = np.array([np.median(pairs(r)) for r in range(x.shape[0])])
    return np.where(med > 0, med, 1.0)
