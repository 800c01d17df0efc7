"""Domain metrics that show the curation / correction trade-off, with the signature of
``autophagy.metrics.base``:

* ``reward-mean`` (quality as the curator sees it): the mean reward of the samples, with the
  reward options of curation (``reward``, ``target``, ``radius``, ``class``; see
  ``autophagy.rewards``). Under reward curation it rises over generations (Ferbach et al. 2024)
  while diversity metrics (variance-ratio, prd recall) fall.
* ``dynamics-residual`` (physical plausibility, projectile source only): the mean over samples of
  the RMS distance from a trajectory to the nearest physically valid one (the least-squares
  re-simulation, ``autophagy.data.projectile.Dynamics.residual``); 0 for noise-free real data.

Both check their source before the first fit: the reward against the data dimension, the residual that
the source is the projectile one.
"""
from __future__ import annotations

import numpy as np

from ..rewards import RewardOptions, build_reward
from .base import Metric, NoOptions, parse


def reward_mean(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Mean reward of the samples ``(R, m, d)`` -> ``{"reward-mean": (R,)}`` (rewards of ``autophagy.rewards``).

    Non-finite rewards (log-likelihood −inf off a degenerate model's support) are kept, so a mean
    of −inf reports that some samples have zero model density.
    """
    if info is None:
        raise TypeError("metric 'reward-mean' needs info=SourceInfo(...) (the data dimension and kind)")
    reward = build_reward(parse(RewardOptions, "reward-mean", options), info, "metrics.reward-mean")
    return {"reward-mean": np.asarray(reward(np.asarray(samples, dtype=float), model=model), dtype=float).mean(axis=1)}


def dynamics_residual(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Mean per-sample RMS residual of the projectile dynamics: ``(R, m, 2T)`` -> ``{"dynamics-residual": (R,)}``."""
    from ..data.projectile import Dynamics

    parse(NoOptions, "dynamics-residual", options)
    dyn = Dynamics.from_info(info, "metrics.dynamics-residual")
    return {"dynamics-residual": dyn.residual(np.asarray(samples, dtype=float)).mean(axis=1)}


def _check_reward(o: RewardOptions, info, has_log_prob: bool) -> None:  # a target of the wrong dimension fails here
    build_reward(o, info, "metrics.reward-mean")


def _check_dynamics(o, info, has_log_prob: bool) -> None:
    from ..data.projectile import Dynamics

    Dynamics.from_info(info, "metrics.dynamics-residual")


METRICS = (
    Metric("reward-mean", reward_mean, options=RewardOptions, check=_check_reward),
    Metric("dynamics-residual", dynamics_residual, check=_check_dynamics),
)
