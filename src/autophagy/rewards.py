"""Rewards: scores of candidate samples, shared by curation (``curation.reward``) and the
``reward-mean`` metric (``autophagy.domain_metrics``).

A reward maps ``(R, n, d)`` samples (and the batch model that produced them) to ``(R, n)``
scores, higher is better. Curation by reward is how users cherry-pick synthetic data: MAD's
sampling bias (Alemohammad et al. 2023, §2.3) and the human-preference curation of Ferbach et
al. (2024, "Self-consuming generative models with curated data provably optimize human
preferences"), where the retrained model drifts towards the reward's maximisers.

Built-in rewards (key ``reward:``)
----------------------------------
* ``log-likelihood``: the model's own ``log_prob`` (needs a family that has one).
* ``distance``: ``−dist(x, region)`` to the ball of ``radius`` (default 0: a point) around
  ``target`` (a list of d numbers): ``−max(0, ||x − target|| − radius)``.
* ``classifier``: the probability of class ``class`` under the in-project digit classifier
  (``autophagy.features``); images of another size are resized to 8×8 first.
* ``"package.module:fn"``: a user function ``fn(x (R, n, d)) -> (R, n)``; the shape is checked
  on every call.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from pydantic import Field

from .errors import ConfigError
from .options import Options
from .protocols import SourceInfo

BUILTIN = ("log-likelihood", "distance", "classifier")
Reward = Callable[..., np.ndarray]  # reward(x (R, n, d), model=None) -> (R, n)


class RewardOptions(Options):
    """The reward keys, shared by every curation method and by the ``reward-mean`` metric."""

    reward: str = Field("log-likelihood", description="log-likelihood | distance | classifier | 'pkg.mod:fn'")
    target: Optional[tuple[float, ...]] = Field(None, description="distance reward: the target point (d numbers)")
    radius: float = Field(0.0, ge=0.0, description="distance reward: radius of the target ball (0 = a point)")
    class_: Optional[int] = Field(None, alias="class", ge=0, description="classifier reward: the class whose probability is the reward")


def _check_shape(values, x: np.ndarray, field: str, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.shape != x.shape[:2]:
        raise ConfigError(field, name, f"a function returning shape (R, n) = {x.shape[:2]} for input {x.shape}",
                          problem=f"returned shape {values.shape}; expected (R, n) = {x.shape[:2]} for input {x.shape}")
    return values


def log_likelihood(x: np.ndarray, model=None, *, field: str = "reward") -> np.ndarray:
    """``model.log_prob(x)``: ``(R, n, d) -> (R, n)``."""
    if model is None or not callable(getattr(model, "log_prob", None)):
        raise ConfigError(field, "log-likelihood", "a model family with log_prob (e.g. gaussian, gmm, kde), "
                          "or another reward (distance, classifier, 'pkg.mod:fn')")
    return _check_shape(model.log_prob(x), x, field, "log-likelihood")


def build_reward(opts: RewardOptions, info: SourceInfo, prefix: str) -> Reward:
    """A reward function ``f(x (R, n, d), model=None) -> (R, n)`` from validated options.

    ``prefix`` names the config block for errors (``"curation"`` or ``"metrics.reward-mean"``).
    """
    name, field = opts.reward, f"{prefix}.reward"
    if name == "log-likelihood":
        return lambda x, model=None: log_likelihood(x, model, field=field)
    if name == "distance":
        if opts.target is None:
            raise ConfigError(f"{prefix}.target", None, f"a list of {info.dim} numbers (the distance reward's target point)")
        target = np.asarray(opts.target, dtype=float)
        if target.shape != (info.dim,):
            raise ConfigError(f"{prefix}.target", list(opts.target), f"a list of {info.dim} numbers (data dimension)")
        radius = opts.radius

        def distance(x, model=None):
            dist = np.sqrt(((np.asarray(x, dtype=float) - target) ** 2).sum(-1))
            return -np.maximum(dist - radius, 0.0)

        return distance
    if name == "classifier":
        return _classifier(opts, info, prefix)
    if ":" not in name:
        raise ConfigError(field, name, "one of " + ", ".join(BUILTIN) + " or an import path 'package.module:fn'")
    from .components import import_path

    fn = import_path(name, field)
    if not callable(fn):
        raise ConfigError(field, name, "an import path to a callable fn(x (R, n, d)) -> (R, n)")
    return lambda x, model=None: _check_shape(fn(x), x, field, name)


def _classifier(opts: RewardOptions, info: SourceInfo, prefix: str) -> Reward:
    """Confidence of class ``class`` under the in-project digit classifier (features.py)."""
    field = f"{prefix}.reward"
    if info.kind != "image":
        raise ConfigError(field, "classifier", "an image source (digits, binomial-grid, images) for the classifier reward")
    try:
        from . import features
    except ImportError:
        raise ConfigError(field, "classifier", "an available autophagy.features module (the in-project digit "
                          "classifier is not installed)") from None
    if opts.class_ is None or opts.class_ > 9:
        raise ConfigError(f"{prefix}.class", opts.class_, "a digit class 0-9 (the classifier reward's target class)")
    k, shape = opts.class_, info.image_shape

    def classifier(x, model=None):
        x = np.asarray(x, dtype=float)
        R, n, d = x.shape
        net = features.digit_features()
        p = net.classify(features.to_digit_resolution(x.reshape(R * n, d), shape))
        return p[:, k].reshape(R, n)

    return classifier
