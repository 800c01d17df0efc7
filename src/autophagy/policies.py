"""How each generation's training set is built: the five loops of the literature.

Every policy maps (real set, this generation's synthetic batch, the synthetic history, fresh
real data) to a training set of shape ``(R, n_train, d)``; concatenation is along axis 1.

- ``replace``: fully synthetic loop (MAD §3; Shumailov et al.): train on n_s samples of the last model.
- ``augment``: synthetic augmentation loop (MAD §4; Bertrand et al.'s iterative retraining with
  synthetic ratio λ_B = n_s / n_r): the fixed real set plus n_s synthetic samples.
- ``fresh``: fresh data loop (MAD §5): n_r newly drawn real points plus n_s synthetic samples.
- ``accumulate``: keep everything (Gerstgrasser et al. 2024): the real set plus every synthetic batch so far.
- ``accumulate-subsample``: a fixed budget of n_r points drawn without replacement from everything
  accumulated so far (Kazdan et al. 2024).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .rng import Streams


@dataclass(frozen=True)
class Policy:
    name: str
    needs_fresh: bool  # draws n_real new real points each generation
    keeps_history: bool  # needs every synthetic batch so far
    build: Callable[..., np.ndarray]


def _replace(real, synth, history, fresh, n_real, streams):
    return synth


def _augment(real, synth, history, fresh, n_real, streams):
    return np.concatenate([real, synth], axis=1)


def _fresh(real, synth, history, fresh, n_real, streams):
    return np.concatenate([fresh, synth], axis=1)


def _accumulate(real, synth, history, fresh, n_real, streams):
    return np.concatenate([real, *history], axis=1)


def _accumulate_subsample(real, synth, history, fresh, n_real, streams: Streams):
    pool = np.concatenate([real, *history], axis=1)
    # A uniform subset without replacement per replicate: the n_real smallest of iid uniform keys.
    keys = streams.uniform(pool.shape[1])
    idx = np.argpartition(keys, n_real - 1, axis=1)[:, :n_real] if n_real < pool.shape[1] else np.argsort(keys, axis=1)
    idx.sort(axis=1)  # keep pool order (real first), so order-aware families see real points first
    return np.take_along_axis(pool, idx[:, :, None], axis=1)


POLICIES: dict[str, Policy] = {
    "replace": Policy("replace", False, False, _replace),
    "augment": Policy("augment", False, False, _augment),
    "fresh": Policy("fresh", True, False, _fresh),
    "accumulate": Policy("accumulate", False, True, _accumulate),
    "accumulate-subsample": Policy("accumulate-subsample", False, True, _accumulate_subsample),
}


def training_sizes(loop, generations: int) -> tuple[int, ...]:
    """Points in each generation's training set, g = 0..G, under ``loop`` (a ``LoopConfig``; its n_real /
    n_synthetic may be schedules, read at each g). Generation 0 trains on ``n_initial`` real points."""
    sizes, pool = [loop.initial], loop.initial
    for g in range(1, generations + 1):
        n_r, n_s = loop.real_at(g), loop.synthetic_at(g)
        pool += n_s  # accumulate: the real set plus every synthetic batch so far
        sizes.append({"replace": n_s, "augment": loop.initial + n_s, "fresh": n_r + n_s, "accumulate": pool,
                      "accumulate-subsample": min(n_r, pool)}[loop.policy])
    return tuple(sizes)


def smallest_training_set(loop, generations: int | None = None) -> int:
    """The fewest points any generation trains on under ``loop`` (a ``LoopConfig``), over g = 0..G (G from
    ``generations`` or the Config that validated ``loop``; 1 when neither is known and nothing is scheduled).
    Lets families refuse a too-small training set before a run starts instead of at generation g."""
    G = generations if generations is not None else loop._generations
    return min(training_sizes(loop, 1 if G is None else G))
