"""Curation: what users do to synthetic samples before they re-enter the training set.

The engine draws ``curator.candidates(m)`` candidates per replicate from the previous model and
``curator(cands (R, M, d), model=..., streams=...)`` returns exactly ``m`` per replicate, so the
per-generation synthetic count never changes (``loop.n_synthetic``). Config (``curation:``)::

    curation: {method: top-k, oversample: 4, reward: log-likelihood}

Methods
-------
* ``top-k`` / ``bottom-k`` / ``random-k``: draw ``oversample · m`` candidates and keep the m of
  highest / lowest reward / a uniform subset. ``top-k`` by the model's own log-likelihood is
  cherry-picking (MAD, Alemohammad et al. 2023, §2.3 and Fig. 6: quality is kept, diversity
  falls faster); ``random-k`` is the unbiased control (it ignores the reward).
* ``bradley-terry`` (Ferbach et al. 2024, eq. 2): for each output slot draw ``k`` candidates and
  keep candidate i with probability ``exp(r_i/T) / Σ_j exp(r_j/T)`` (``temperature`` T).
  Retraining on such choices provably drifts towards the reward's maximisers.
* ``threshold``: among ``oversample · m`` candidates keep those with reward ≥ ``threshold``.
  Filling to m (documented contract): if c ≥ m pass, a uniform subset of m of them is kept; if
  0 < c < m, all c are kept and the remaining m − c slots are uniform draws *with replacement*
  among the c passing ones (so duplicates appear: the curated set is an i.i.d.-like sample of the
  passing region); if none pass, the m highest-reward candidates are kept.
* ``denoise`` (Tarchi 2024, mitigation "denoising threshold"): pixels below ``fraction`` of
  each image's maximum are set to 0 (no oversampling; image sources only).

Rewards are those of ``autophagy.rewards`` (``reward``, ``target``, ``radius``, ``class``).
Every random draw uses the ``streams`` given (the engine's ``(generation, "curate")`` node).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, PositiveInt, ValidationError

from .errors import ConfigError
from .options import Options
from .protocols import SourceInfo
from .rewards import RewardOptions, build_reward
from .rng import Streams


class RankOptions(RewardOptions):
    method: Literal["top-k", "bottom-k", "random-k"]
    oversample: PositiveInt = Field(4, description="candidates drawn per kept sample (M = oversample · m)")


class BradleyTerryOptions(RewardOptions):
    method: Literal["bradley-terry"]
    k: PositiveInt = Field(4, description="candidates drawn per output slot (Ferbach et al.'s K)")
    temperature: float = Field(1.0, gt=0.0, description="T in P(keep i) ∝ exp(r_i / T); small T = greedy")


class ThresholdOptions(RewardOptions):
    method: Literal["threshold"]
    threshold: float = Field(..., description="keep candidates with reward >= threshold")
    oversample: PositiveInt = Field(4, description="candidates drawn per kept sample (M = oversample · m)")


class DenoiseOptions(Options):
    method: Literal["denoise"]
    fraction: float = Field(0.5, ge=0.0, le=1.0, description="pixels below fraction · (image maximum) are set to 0")


def _rewards(reward, cands: np.ndarray, model) -> np.ndarray:
    r = np.asarray(reward(cands, model=model), dtype=float)
    return np.where(np.isnan(r), -np.inf, r)  # a NaN reward never wins a comparison


def _take(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``x (R, M, d)``, ``idx (R, m)`` -> ``(R, m, d)``."""
    return np.take_along_axis(x, idx[..., None], axis=1)


def _per_slot(cands: np.ndarray, per: int, method: str) -> int:
    if cands.ndim != 3 or cands.shape[1] % per:
        raise ValueError(f"curation {method!r}: candidates must have shape (R, {per}·m, d), got {cands.shape}")
    return cands.shape[1] // per


class RankCurator:
    """``top-k`` / ``bottom-k`` / ``random-k`` among ``oversample · m`` candidates."""

    def __init__(self, opts: RankOptions, info: SourceInfo):
        self.opts = opts
        self.reward = None if opts.method == "random-k" else build_reward(opts, info, "curation")

    def candidates(self, m: int) -> int:
        return self.opts.oversample * m

    def __call__(self, cands: np.ndarray, model=None, streams: Streams | None = None) -> np.ndarray:
        m = _per_slot(cands, self.opts.oversample, self.opts.method)
        if self.opts.oversample == 1:
            return cands
        if self.reward is None:
            keys = streams.child("keys").uniform(cands.shape[1])
        else:
            r = _rewards(self.reward, cands, model)
            keys = -r if self.opts.method == "top-k" else r
        idx = np.sort(np.argsort(keys, axis=1, kind="stable")[:, :m], axis=1)  # keep draw order
        return _take(cands, idx)


class BradleyTerryCurator:
    """One of ``k`` candidates per slot, chosen with probability softmax(reward / temperature)."""

    def __init__(self, opts: BradleyTerryOptions, info: SourceInfo):
        self.opts = opts
        self.reward = build_reward(opts, info, "curation")

    def candidates(self, m: int) -> int:
        return self.opts.k * m

    def __call__(self, cands: np.ndarray, model=None, streams: Streams | None = None) -> np.ndarray:
        K = self.opts.k
        m = _per_slot(cands, K, "bradley-terry")
        R, _, d = cands.shape
        logits = _rewards(self.reward, cands, model).reshape(R, m, K) / self.opts.temperature
        inf = np.isposinf(logits)  # slots with +inf rewards: uniform among those candidates
        logits = np.where(inf.any(-1, keepdims=True), np.where(inf, 0.0, -np.inf), logits)
        top = logits.max(-1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        w = np.exp(logits - top)
        total = w.sum(-1, keepdims=True)
        p = np.where(total > 0, w / np.where(total > 0, total, 1.0), 1.0 / K)  # all −inf: uniform
        u = streams.child("choice").uniform(m)[..., None]
        choice = np.minimum((np.cumsum(p, -1) < u).sum(-1), K - 1)  # inverse CDF, (R, m)
        return _take(cands, np.arange(m) * K + choice)


class ThresholdCurator:
    """Keep candidates with reward ≥ threshold; fill to m by resampling the passing ones (see module doc)."""

    def __init__(self, opts: ThresholdOptions, info: SourceInfo):
        self.opts = opts
        self.reward = build_reward(opts, info, "curation")

    def candidates(self, m: int) -> int:
        return self.opts.oversample * m

    def __call__(self, cands: np.ndarray, model=None, streams: Streams | None = None) -> np.ndarray:
        m = _per_slot(cands, self.opts.oversample, "threshold")
        r = _rewards(self.reward, cands, model)
        ok = r >= self.opts.threshold  # (R, M)
        c = ok.sum(1, keepdims=True)  # (R, 1)
        u = streams.child("order").uniform(cands.shape[1])
        # passing ones first in uniformly random order; then the others by decreasing reward
        order = np.lexsort((np.where(ok, u, -r), ~ok), axis=1)
        fill = np.minimum((streams.child("fill").uniform(m) * c).astype(np.int64), np.maximum(c - 1, 0))
        slot = np.arange(m)[None, :]
        pos = np.where((slot < c) | (c == 0), slot, fill)  # (R, m) positions in `order`
        return _take(cands, np.take_along_axis(order, pos, axis=1))


class DenoiseCurator:
    """Tarchi's denoising threshold: ``x · [x ≥ fraction · max(x)]`` per image."""

    def __init__(self, opts: DenoiseOptions, info: SourceInfo):
        if info.kind != "image":
            raise ConfigError("curation.method", "denoise", "an image source (digits, binomial-grid, images) for denoise")
        self.opts = opts

    def candidates(self, m: int) -> int:
        return m

    def __call__(self, cands: np.ndarray, model=None, streams: Streams | None = None) -> np.ndarray:
        x = np.asarray(cands, dtype=float)
        keep = x >= self.opts.fraction * x.max(-1, keepdims=True)
        return np.where(keep, x, 0.0)


METHODS: dict[str, tuple[type, type]] = {
    "top-k": (RankOptions, RankCurator), "bottom-k": (RankOptions, RankCurator), "random-k": (RankOptions, RankCurator),
    "bradley-terry": (BradleyTerryOptions, BradleyTerryCurator), "threshold": (ThresholdOptions, ThresholdCurator),
    "denoise": (DenoiseOptions, DenoiseCurator),
}


def build(cfg: dict[str, Any], info: SourceInfo, base_dir: Path = Path(".")):
    """Validate a ``curation:`` block and return its curator (see the module docstring)."""
    from .config import from_validation_error

    cfg = dict(cfg or {})
    method = cfg.get("method")
    if method not in METHODS:
        raise ConfigError("curation.method", method, "one of " + ", ".join(METHODS))
    opts_cls, cls = METHODS[method]
    try:
        opts = opts_cls.model_validate(cfg)
    except ValidationError as err:
        raise from_validation_error(err, "curation", opts_cls) from None
    return cls(opts, info)
