"""Domain metrics that show the curation / correction trade-off, with the signature of
``autophagy.metrics``::

    name(reference, samples, *, model=None, info=None, streams=None, **options) -> {key: (R,) array}

* ``reward-mean`` (quality as the curator sees it): the mean reward of the samples, with the
  reward options of curation (``reward``, ``target``, ``radius``, ``class``; see
  ``autophagy.rewards``). Under reward curation it rises over generations (Ferbach et al. 2024)
  while diversity metrics (variance-ratio, prd recall) fall.
* ``dynamics-residual`` (physical plausibility, projectile source only): the mean over samples of
  the RMS distance from a trajectory to the nearest physically valid one (the least-squares
  re-simulation, ``autophagy.data.projectile.Dynamics.residual``); 0 for noise-free real data.

``DOMAIN_METRICS`` maps names to functions and ``DOMAIN_OPTIONS`` names to their option models;
``autophagy.metrics`` merges both into ``METRICS`` / ``OPTIONS``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from pydantic import ValidationError

from .errors import ConfigError
from .options import Options
from .rewards import RewardOptions, build_reward


class ResidualOptions(Options):
    pass


DOMAIN_OPTIONS: dict[str, type[Options]] = {"reward-mean": RewardOptions, "dynamics-residual": ResidualOptions}


def _options(name: str, options: dict) -> Options:
    cls = DOMAIN_OPTIONS[name]
    try:
        return cls.model_validate(options)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"metrics.{name}", key, "one of " + (", ".join(cls.model_fields) or "no options")) from None
        raise ConfigError(f"metrics.{name}.{key}", options.get(key), err["msg"]) from None


def reward_mean(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Mean reward of the samples ``(R, m, d)`` -> ``{"reward-mean": (R,)}`` (rewards of ``autophagy.rewards``).

    Non-finite rewards (log-likelihood −inf off a degenerate model's support) are kept, so a mean
    of −inf reports that some samples have zero model density.
    """
    if info is None:
        raise TypeError("metric 'reward-mean' needs info=SourceInfo(...) (the data dimension and kind)")
    reward = build_reward(_options("reward-mean", options), info, "metrics.reward-mean")
    return {"reward-mean": np.asarray(reward(np.asarray(samples, dtype=float), model=model), dtype=float).mean(axis=1)}


def dynamics_residual(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Mean per-sample RMS residual of the projectile dynamics: ``(R, m, 2T)`` -> ``{"dynamics-residual": (R,)}``."""
    from .data.projectile import Dynamics

    _options("dynamics-residual", options)
    dyn = Dynamics.from_info(info, "metrics.dynamics-residual")
    return {"dynamics-residual": dyn.residual(np.asarray(samples, dtype=float)).mean(axis=1)}


DOMAIN_METRICS: dict[str, Callable[..., dict]] = {"reward-mean": reward_mean, "dynamics-residual": dynamics_residual}
