"""Plug-in points, as ``typing.Protocol``s: third parties implement them without importing us.

Shapes: data are NumPy arrays with a leading replicate axis, ``(R, n, d)`` floats for vectors
(categorical tokens are ``(R, n, 1)`` integers; images are flattened to ``(R, n, H*W)`` with
the shape in ``SourceInfo.image_shape``). Every random call takes a ``Streams`` (see
``autophagy.rng``); nothing uses global random state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Protocol, runtime_checkable

import numpy as np

from .rng import Streams


@dataclass(frozen=True)
class SourceInfo:
    """What a family or metric may know about the real distribution P_r.

    ``truth`` holds the source's exact parameters where they exist: ``mean`` (d,), ``cov``
    (d, d), ``gaussian`` (bool: P_r itself is Gaussian), ``probs`` (K,), ``w`` (d,) for
    regression, ``noise_std``; ``components`` = (weights (K,), means (K, d), covs (K, d, d))
    for Gaussian mixtures.
    """

    dim: int
    kind: str = "vector"  # "vector" | "categorical" | "regression" | "image" | "tokens"
    n_categories: Optional[int] = None
    image_shape: Optional[tuple] = None
    truth: Mapping[str, Any] = field(default_factory=dict)
    # Token sequences (kind "tokens"): data are (R, n, T) int64 with T = seq_len = dim, tokens in
    # [0, vocab_size), padding = PAD (-1) after a sequence's end; see autophagy.data.text.
    seq_len: Optional[int] = None
    vocab_size: Optional[int] = None

    @property
    def tokens(self) -> bool:
        """Whether samples are token sequences ``(R, n, T)`` (the text modality)."""
        return self.kind == "tokens"


PAD = -1  # the padding token of (R, n, T) sequences shorter than T


@runtime_checkable
class Source(Protocol):
    """The real distribution P_r."""

    info: SourceInfo

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """Draw ``(R, n, d)`` real points (R = ``streams.R``)."""


@runtime_checkable
class Model(Protocol):
    """A fitted generative model for all R replicates at once."""

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """Draw ``(R, m, d)`` samples; ``bias`` is MAD's sampling bias λ in (0, 1]."""

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """``param.*`` summaries as ``(R,)`` arrays, e.g. ``{"mean_sq_error": ...}``; may be empty."""


class DensityModel(Model, Protocol):
    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """Log-density (or log-mass) of ``(R, n, d)`` points under each replicate's model: ``(R, n)``."""


@runtime_checkable
class Family(Protocol):
    """A model family: ``fit`` maps a batch of training sets to a batch of models.

    ``init`` is the previous generation's model when ``loop.warm_start`` is on (closed-form
    families ignore it). Set the class attribute ``batched = True``; classes without it are
    treated as single-dataset models and lifted with ``autophagy.models.lifted.Lifted``.
    """

    batched: bool

    def fit(self, data: np.ndarray, streams: Streams, init: Optional[Model] = None) -> Model:
        ...


class SingleModel(Protocol):
    """The simplest plug-in: one model on one dataset. Lifted to R replicates by one adapter.

    ``__init__(**options)`` receives ``model:`` options from the config.
    """

    def fit(self, x: np.ndarray, rng: np.random.Generator) -> Any:
        """Fit to ``(n, d)`` data."""

    def sample(self, m: int, rng: np.random.Generator, bias: float = 1.0) -> np.ndarray:
        """Return ``(m, d)`` samples."""


# A metric: (reference (R, n, d), samples (R, m, d), model, info, streams) -> (R,) values.
Metric = Callable[..., np.ndarray]
