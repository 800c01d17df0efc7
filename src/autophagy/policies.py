"""How each generation's training set is built: the five loops of the literature.

Every policy maps (real set, this generation's synthetic batch, the pool of synthetic batches so
far, fresh real data) to a training set of shape ``(R, n_train, d)``; concatenation is along axis 1.

- ``replace``: fully synthetic loop (MAD §3; Shumailov et al.): train on n_s samples of the last model.
- ``augment``: synthetic augmentation loop (MAD §4; Bertrand et al.'s iterative retraining with
  synthetic ratio λ_B = n_s / n_r): the fixed real set plus n_s synthetic samples.
- ``fresh``: fresh data loop (MAD §5): n_r newly drawn real points plus n_s synthetic samples.
- ``accumulate``: keep everything (Gerstgrasser et al. 2024): the real set plus every synthetic batch so far.
  With ``loop.accumulate_weights: linear`` (Gillman et al. 2024's fine-tuning script) batch i of the g
  so far keeps only its first ⌊(i+1)/g · n_s⌋ points, so older batches fade out.
- ``accumulate-subsample``: a fixed budget of n_r points drawn without replacement from everything
  accumulated so far (Kazdan et al. 2024).

Parts may also be sufficient statistics (``Moments`` of a family that declares
``sufficient_statistics``) instead of points: joining them adds the statistics, which is what
concatenating the points would give. The exact Gaussian paths and the statistics pool use that.

Pools (what ``accumulate`` keeps between generations; ``autophagy.loop`` picks one):

- ``PointPool``: the real set and every batch written once into one preallocated buffer; the
  training set of ``accumulate`` is a view of its filled prefix (no per-generation concatenation,
  O(total) time instead of O(G²)); ``accumulate-subsample`` gathers n_r rows of it.
- ``StatsPool``: running sufficient statistics (families with ``statistics``): memory O(R d²)
  whatever G; with linear weights, per-batch prefix sums (O(G n_s d²)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .rng import Streams


@dataclass(frozen=True)
class Policy:
    name: str
    needs_fresh: bool  # draws n_real new real points each generation
    keeps_history: bool  # needs every synthetic batch so far
    build: Callable[..., np.ndarray]


def join(*parts):
    """Concatenate point sets ``(R, n_i, d)`` along axis 1, or add their sufficient statistics."""
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts, axis=1)
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


def _replace(real, synth, history, fresh, n_real, streams):
    return synth


def _augment(real, synth, history, fresh, n_real, streams):
    return join(real, synth)


def _fresh(real, synth, history, fresh, n_real, streams):
    return join(fresh, synth)


def _accumulate(real, synth, history, fresh, n_real, streams):
    if isinstance(history, list):  # a plain list of batches (direct callers)
        return join(real, *history)
    return history.training_set()


def _accumulate_subsample(real, synth, history, fresh, n_real, streams: Streams):
    if isinstance(history, list):
        pool = PointPool(real, real.shape[1] + sum(h.shape[1] for h in history))
        for h in history:
            pool.add(h)
        history = pool
    return history.subsample(n_real, streams)


POLICIES: dict[str, Policy] = {
    "replace": Policy("replace", False, False, _replace),
    "augment": Policy("augment", False, False, _augment),
    "fresh": Policy("fresh", True, False, _fresh),
    "accumulate": Policy("accumulate", False, True, _accumulate),
    "accumulate-subsample": Policy("accumulate-subsample", False, True, _accumulate_subsample),
}


def linear_keep(sizes: np.ndarray) -> np.ndarray:
    """Gillman et al.'s linear accumulation weights: of g batches of ``sizes (g,)`` points, batch i (0 = the
    oldest) keeps its first ⌊(i+1)/g · m_i⌋ points (the newest keeps all). Integer arithmetic: their script's
    ``int((i + 1) / g * m)`` can round one lower when the product is a whole number (e.g. 0.7 · 10)."""
    g = len(sizes)
    return (np.arange(1, g + 1) * np.asarray(sizes, dtype=np.int64)) // max(g, 1)


def uniform_subset(N: int, k: int, streams: Streams) -> np.ndarray:
    """``(R, k)`` sorted indices of a uniformly random k-subset of ``range(N)`` per replicate, drawing
    O(k) numbers (not one key per pool point): uniform integers in draw order, repeats skipped, the
    first k distinct kept -- sequential sampling without replacement. Draws come in chunks sized so
    that one chunk almost always suffices (expected draws N(H_N − H_{N−k}) ≤ N ln(N/(N−k)) + 1); a
    replicate short of k distinct values after a chunk reads the next chunk of its own stream.
    """
    R = streams.R
    if k >= N:
        return np.broadcast_to(np.arange(N), (R, N)).copy()
    expect = N * (math.log(N / (N - k)) if k < N else 1.0) + 1.0
    chunk = int(expect + 6 * math.sqrt(expect) + 16)
    picked = np.full((R, k), -1, dtype=np.int64)
    done = np.zeros(R, dtype=bool)
    seen: list[np.ndarray] = []
    while not done.all():
        draws = np.minimum((streams.uniform(chunk) * N).astype(np.int64), N - 1)  # (R, chunk), every row drawn
        seen.append(draws)
        rows = np.nonzero(~done)[0]
        allv = seen[0] if len(seen) == 1 else np.concatenate([s[rows] for s in seen], axis=1)  # (all rows at first)
        L = allv.shape[1]
        # one sort of value·2^b + position (2^b >= L): equal values together, each value's first draw first
        b = max(1, (L - 1).bit_length())
        key = allv << b
        key |= np.arange(L)
        key.sort(axis=1)
        value, pos = key >> b, key & ((1 << b) - 1)
        first = np.empty(key.shape, dtype=bool)
        first[:, 0] = True
        np.not_equal(value[:, 1:], value[:, :-1], out=first[:, 1:])
        ok = np.count_nonzero(first, axis=1) >= k
        if not ok.any():
            continue
        if not ok.all():
            value, pos, first, rows = value[ok], pos[ok], first[ok], rows[ok]
        # the k first draws of distinct values: first occurrences at or before the k-th smallest such position
        cut = np.partition(np.where(first, pos, L), k - 1, axis=1)[:, k - 1:k]
        keep = first & (pos <= cut)
        picked[rows] = value[keep].reshape(rows.size, k)  # in value order: sorted, as the pool's order
        done[rows] = True
    return picked


class PointPool:
    """The real set and every synthetic batch, stored once in a preallocated ``(R, capacity, d)`` buffer."""

    def __init__(self, real: np.ndarray, capacity: int, weights: str = "uniform"):
        real = np.asarray(real)
        R, n, d = real.shape
        self.buffer = np.empty((R, max(capacity, n), d), dtype=real.dtype)
        self.buffer[:, :n] = real
        self.size, self.n_real, self.batches, self.weights = n, n, [], weights

    def add(self, batch: np.ndarray) -> None:
        m = batch.shape[1]
        if self.size + m > self.buffer.shape[1]:  # a capacity guess that was short: grow (amortised O(1))
            grown = np.empty((self.buffer.shape[0], max(2 * self.buffer.shape[1], self.size + m), self.buffer.shape[2]),
                             dtype=self.buffer.dtype)
            grown[:, :self.size] = self.buffer[:, :self.size]
            self.buffer = grown
        self.buffer[:, self.size:self.size + m] = batch
        self.batches.append((self.size, m))
        self.size += m

    def training_set(self) -> np.ndarray:
        """``accumulate``: every point so far (a view: no copy), or Gillman's linear weights (a gather)."""
        if self.weights == "uniform":
            view = self.buffer[:, :self.size]
            view.flags.writeable = False  # filled rows are never overwritten: a family may keep the view
            return view
        keep = linear_keep(np.array([m for _, m in self.batches]))
        return np.concatenate([self.buffer[:, :self.n_real]]
                              + [self.buffer[:, s:s + int(k)] for (s, _), k in zip(self.batches, keep)], axis=1)

    def subsample(self, k: int, streams: Streams) -> np.ndarray:
        """``accumulate-subsample``: k points without replacement per replicate (``uniform_subset``), gathered."""
        idx = uniform_subset(self.size, k, streams)
        return np.take_along_axis(self.buffer[:, :self.size], idx[:, :, None], axis=1)


class StatsPool:
    """``accumulate`` for families fitted from sufficient statistics: the pool's ``Moments``, not its points.

    ``statistics(x, shift)`` is the family's; the shift is the real set's mean, so the sums stay well
    conditioned while the pool's mean stays near it. Batches may be points or Moments (exact paths).
    Linear weights keep per-batch prefix sums ``(R, n_s + 1, ...)`` so any prefix costs one lookup.
    """

    def __init__(self, real, statistics: Callable, weights: str = "uniform"):
        self.statistics, self.weights = statistics, weights
        self.real = real if not isinstance(real, np.ndarray) else statistics(real)
        self.shift = self.real.shift
        self.total = self.real
        self.g, self.sizes, self.keep = 0, [], np.zeros(0, dtype=np.int64)
        self.s1, self.s2 = self.real.s1, self.real.s2  # linear weights: the running sums of the kept prefixes
        # linear weights: per batch the cumulative Σ (x − c) (capacity, R, d, M + 1) and Σ (x − c)(x − c)ᵀ
        # (capacity, R, d, d, M + 1), the prefix length last: each cumsum runs along contiguous memory
        self.p1: Optional[np.ndarray] = None
        self.p2: Optional[np.ndarray] = None

    def add(self, batch) -> None:
        if self.weights == "uniform":
            self.total = self.total + (batch if not isinstance(batch, np.ndarray) else self.statistics(batch, self.shift))
            return
        x = np.asarray(batch, dtype=float)
        R, m, d = x.shape
        y = np.ascontiguousarray(x.transpose(0, 2, 1)) - self.shift[:, :, None]  # (R, d, m)
        if self.p1 is None or self.g == self.p1.shape[0] or m + 1 > self.p1.shape[-1]:
            cap, M = max(16, 2 * self.g), max(m, self.p1.shape[-1] - 1 if self.p1 is not None else 0)
            p1, p2 = np.zeros((cap, R, d, M + 1)), np.zeros((cap, R, d, d, M + 1))
            if self.p1 is not None:  # grow: copy what is there (amortised O(1) per batch)
                p1[:self.g, ..., :self.p1.shape[-1]] = self.p1[:self.g]
                p2[:self.g, ..., :self.p2.shape[-1]] = self.p2[:self.g]
            self.p1, self.p2 = p1, p2
        np.cumsum(y, axis=-1, out=self.p1[self.g, ..., 1:m + 1])
        np.cumsum(y[:, :, None, :] * y[:, None, :, :], axis=-1, out=self.p2[self.g, ..., 1:m + 1])
        self.sizes.append(m)
        self.g += 1

    def training_set(self):
        if self.weights == "uniform":
            return self.total
        # the running sums move only where a batch's kept prefix changed since the last call: about
        # n_s/2 batches a generation, not all g (floor((i+1) m/g) crosses a whole number rarely)
        keep = linear_keep(np.array(self.sizes))
        old = np.zeros(self.g, dtype=np.int64)
        old[:len(self.keep)] = self.keep
        moved = np.nonzero(keep != old)[0]
        self.s1 = self.s1 + (self.p1[moved, ..., keep[moved]] - self.p1[moved, ..., old[moved]]).sum(axis=0)
        self.s2 = self.s2 + (self.p2[moved, ..., keep[moved]] - self.p2[moved, ..., old[moved]]).sum(axis=0)
        self.keep = keep
        return type(self.real)(self.real.n + int(keep.sum()), self.shift, self.s1, self.s2)


def make_pool(real, family, loop, capacity: int, exact: bool):
    """The pool ``accumulate`` keeps: running statistics where the family has them and nobody needs the
    points (accumulate, or any exact path), else the points stored once."""
    weights = getattr(loop, "accumulate_weights", "uniform")
    if getattr(family, "sufficient_statistics", False) and (exact or loop.policy == "accumulate"):
        return StatsPool(real, family.statistics, weights)
    return PointPool(real, capacity, weights)


def training_sizes(loop, generations: int) -> tuple[int, ...]:
    """Points in each generation's training set, g = 0..G, under ``loop`` (a ``LoopConfig``; its n_real /
    n_synthetic may be schedules, read at each g). Generation 0 trains on ``n_initial`` real points."""
    G, n0 = generations, loop.initial
    n_r = np.array([loop.real_at(g) for g in range(1, G + 1)], dtype=np.int64)
    n_s = np.array([loop.synthetic_at(g) for g in range(1, G + 1)], dtype=np.int64)
    pool = n0 + np.cumsum(n_s)  # accumulate: the real set plus every synthetic batch so far
    if loop.policy == "replace":
        later = n_s
    elif loop.policy == "augment":
        later = n0 + n_s
    elif loop.policy == "fresh":
        later = n_r + n_s
    elif loop.policy == "accumulate-subsample":
        later = np.minimum(n_r, pool)
    elif getattr(loop, "accumulate_weights", "uniform") == "linear":
        # generation g keeps sum over i < g of linear_keep's floor((i+1) m_i / g): the lower triangle of a
        # (G, G) array, built a block of rows at a time (O(G^2) integer work, no Python loop over g)
        later, w = np.empty(G, dtype=np.int64), np.arange(1, G + 1) * n_s
        step = max(1, (1 << 22) // max(G, 1))
        for a in range(0, G, step):
            g = np.arange(a + 1, min(G, a + step) + 1)[:, None]
            kept = w[None, :g[-1, 0]] // g
            kept[np.arange(kept.shape[1])[None, :] >= g] = 0
            later[a:a + len(g)] = n0 + kept.sum(axis=1)
    else:
        later = pool
    return (n0, *(int(v) for v in later))


def smallest_training_set(loop, generations: Optional[int] = None) -> int:
    """The fewest points any generation trains on under ``loop`` (a ``LoopConfig``), over g = 0..G (G from
    ``generations`` or the Config that validated ``loop``; 1 when neither is known and nothing is scheduled).
    Lets families refuse a too-small training set before a run starts instead of at generation g."""
    G = generations if generations is not None else loop._generations
    return min(training_sizes(loop, 1 if G is None else G))
