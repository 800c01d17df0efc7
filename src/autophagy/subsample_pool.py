"""``accumulate-subsample`` on the statistics path: only the pool points some later training set uses.

Kazdan et al.'s accumulate-subsample trains generation g on a uniform k_g-subset of everything so far
(the real set and batches 1..g). Which pool points generation g selects does not depend on their values,
so every selection is drawn up front (``policies.uniform_subset`` from generation g's own "policy" stream:
the same indices as ``PointPool.subsample``). That tells, for every pool point, the last generation that
uses it (``last``), and so:

* a batch needs only its points that some training set will select (about half of them: a point of batch
  b is unused with probability b/(G+1) under constant sizes). The loop draws only those
  (``GaussianModel.sample_rows``): points of a batch are exchangeable and the selections independent of
  their values, so giving replicate r's u_r used points its first u_r draws has the batch's law;
* a point is stored from its batch's arrival until its last use, in the slot of a point whose last use
  has passed (per replicate), so the store holds the live points only: at most about n·G/4 per replicate
  under constant sizes, against the n·G of a point pool;
* generation g's statistics are one gather of its k_g points and one batched Gram matrix: O(k d²) a
  generation in large BLAS calls.

Storage is float32 (``STORE_DTYPE``): the batch is drawn and transformed in float32 (numpy's float32
normals: other numbers, the same law), each stored coordinate carries float32's 2⁻²⁴ relative rounding, and a
training set's sums and Gram matrix are formed in float64 from the stored values. Tolerance, tested: every
recorded ``param.*`` within 1e-5 relative of a float64 store with the same draws (tests/test_subsample_pool.py,
including the nearly singular hull case k = r + 1; measured over 99 generations at d = 100, R = 10: 3e-8 at
n = 100, 2e-8 at n = 316); the law is the sample path's (tests/test_exact_paths.py).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .policies import uniform_subset
from .rng import Streams


STORE_DTYPE = np.float32  # the store's dtype (module docstring); tests set float64 to measure the rounding


class LiveSubsetPool:
    """Statistics of accumulate-subsample's training sets from a store of the points still to be used.

    ``real``: the real set ``(R, n0, r)`` in the chain's coordinates; ``sizes``: batch sizes m_g and ``ks``:
    subsample sizes k_g for g = 1..G; ``streams_at(g)``: generation g's "policy" streams; ``moments(n, s1,
    s2)`` builds the family's statistics from sums about 0. Protocol per generation g: ``needed()`` (how
    many points of batch g each replicate uses), ``add(points)`` (replicate r's first ``needed()[r]`` rows
    are those points), then ``subsample(k)``.
    """

    def __init__(self, real: np.ndarray, sizes, ks, streams_at: Callable[[int], Streams], moments: Callable,
                 dtype=None):
        real = np.asarray(real, dtype=float)
        R, n0, r = real.shape
        self.R, self.r, self.moments = R, r, moments
        self.dtype = np.dtype(STORE_DTYPE if dtype is None else dtype)
        self.sizes = [int(m) for m in sizes]
        self.starts = np.concatenate([[0, n0], n0 + np.cumsum(np.asarray(self.sizes, dtype=np.int64))]).astype(np.int64)
        N = int(self.starts[-1])
        G = len(self.sizes)
        index = np.int32 if N < 2 ** 31 else np.int64
        self.last = np.full((R, N), -1, dtype=np.int16 if G < 2 ** 15 else np.int32)  # last generation using a point
        self.idx: dict[int, np.ndarray] = {}
        self.ks: list[int] = []
        rows = np.arange(R)[:, None]
        for g, k in enumerate(ks, start=1):
            idx = uniform_subset(int(self.starts[g + 1]), int(k), streams_at(g))
            self.last[rows, idx] = g  # g increases: the last write is the largest
            self.idx[g] = idx.astype(index)
            self.ks.append(idx.shape[1])
        self.slot = np.full((R, N), -1, dtype=index)  # where a pool point is stored (−1: not stored)
        self.capacity = self._peak_live()
        self.store = np.zeros((R, self.capacity, r), dtype=self.dtype)
        # free slots, a stack per replicate: stack[r, :top[r]] (pushed when a point's last use has passed)
        self.stack = np.broadcast_to(np.arange(self.capacity, dtype=index)[::-1], (R, self.capacity)).copy()
        self.top = np.full(R, self.capacity, dtype=np.int64)
        self.batch = 0
        self._gather: np.ndarray | None = None
        self._insert(0, real, compact=False)

    def expected_used(self, b: int) -> tuple[float, float]:
        """Mean and an upper bound of the standard deviation of how many points of batch b (≥ 1) one
        replicate uses (constants of the run: a draw's width may not depend on other replicates)."""
        m = self.sizes[b - 1]
        unused = 1.0
        for g in range(b, len(self.ks) + 1):
            unused *= 1.0 - self.ks[g - 1] / float(self.starts[g + 1])
        p = 1.0 - unused
        return m * p, math.sqrt(m * p * (1.0 - p))

    def draw_width(self) -> int:
        """The first chunk's width for the next batch's draws: the expected count plus 1 s.d. (the one
        replicate in six or so with more draws the rest from its own stream: ``GaussianModel.sample_rows``)."""
        b = self.batch + 1
        mean, sd = self.expected_used(b)
        return min(self.sizes[b - 1], int(math.ceil(mean + sd)) + 1)

    def needed(self) -> np.ndarray:
        """``(R,)``: how many points of the next batch each replicate's later training sets select."""
        b = self.batch + 1
        st, m = int(self.starts[b]), self.sizes[b - 1]
        return (self.last[:, st:st + m] >= b).sum(axis=1)

    def _peak_live(self) -> int:
        """The most points any replicate must hold at once: a used point of batch b is live from generation b
        (the real set's from 1) through its last use (known up front from the selections)."""
        R, G = self.R, len(self.sizes)
        batch = np.repeat(np.arange(G + 1), np.diff(self.starts))  # each pool point's batch
        arrive = np.maximum(batch, 1)[None, :]
        used = self.last >= arrive
        rows = np.broadcast_to(np.arange(R)[:, None] * (G + 2), used.shape)
        delta = np.bincount((rows + arrive)[used], minlength=R * (G + 2))
        delta -= np.bincount((rows + self.last.astype(np.int64) + 1)[used], minlength=R * (G + 2))
        return int(np.cumsum(delta.reshape(R, G + 2), axis=1).max(initial=0))

    def _insert(self, b: int, points: np.ndarray, compact: bool) -> None:
        """Store batch b's used points: replicate r's q-th used point (in pool order) is ``points[r, q]``
        (``compact``) or ``points[r, its position in the batch]``."""
        st, m = int(self.starts[b]), int(self.starts[b + 1] - self.starts[b])
        last = self.last[:, st:st + m]
        used = last >= max(b, 1)
        u = used.sum(axis=1)
        ur, uc = np.nonzero(used)  # each replicate's used points in pool order
        q = np.arange(ur.size) - np.concatenate([[0], np.cumsum(u)[:-1]])[ur]  # rank among the replicate's used
        slots = self.stack[ur, self.top[ur] - 1 - q]  # popped from the top (enough of them: _peak_live)
        self.top -= u
        flat = self.store.reshape(-1, self.r)  # one index per row: a gather of whole rows
        src = np.ascontiguousarray(points, dtype=self.dtype).reshape(-1, self.r)
        flat[ur * self.capacity + slots] = src[ur * points.shape[1] + (q if compact else uc)]
        self.slot[ur, st + uc] = slots

    def add(self, points: np.ndarray) -> None:
        """Batch g's used points ``(R, ≥ max needed, r)``: replicate r's first ``needed()[r]`` rows."""
        self.batch += 1
        self._insert(self.batch, points, compact=True)

    def subsample(self, k: int, streams: Streams | None = None):
        """Generation g's training set (the latest batch's g): its statistics, from one gather."""
        g = self.batch
        if k != self.ks[g - 1] and not (k >= self.starts[g + 1] and self.ks[g - 1] == self.starts[g + 1]):
            raise ValueError(f"accumulate-subsample: generation {g} asks for {k} points, {self.ks[g - 1]} were drawn")
        idx = self.idx.pop(g)
        R, k = idx.shape
        at = idx + (np.arange(R, dtype=np.int64) * self.slot.shape[1])[:, None]  # into the flat (R, N) maps
        slots = np.take(self.slot, at)  # (half the time of take_along_axis's broadcast fancy index)
        done = np.take(self.last, at) == g  # their last use: the slots are free again
        fr, fc = np.nonzero(done)
        cnt = done.sum(axis=1)
        q = np.arange(fr.size) - np.concatenate([[0], np.cumsum(cnt)[:-1]])[fr]
        self.stack[fr, self.top[fr] + q] = slots[fr, fc]
        self.top += cnt
        if self.r < 32:  # small points: one gather for all replicates
            flat = slots.astype(np.intp)
            flat += (np.arange(R) * self.capacity)[:, None]
            x = np.take(self.store.reshape(-1, self.r), flat.ravel(), axis=0).astype(float).reshape(R, k, self.r)
            return self.moments(k, x.sum(axis=1), np.swapaxes(x, -1, -2) @ x)
        if self._gather is None or self._gather.shape[0] < k:  # buffers reused: no fresh pages every generation
            self._gather, self._x = np.empty((k, self.r), dtype=self.dtype), np.empty((k, self.r))
        gathered, x = self._gather[:k], self._x[:k]
        s1, s2 = np.empty((R, self.r)), np.empty((R, self.r, self.r))
        for i in range(R):  # one replicate at a time: its k points stay in cache from the gather to the Gram
            np.take(self.store[i], slots[i], axis=0, out=gathered)
            np.copyto(x, gathered)
            # float64 products: a float32 Gram matrix (sgemm, twice as fast) loses the small eigenvalues of an
            # ill-conditioned scatter (k close to r: 5 % on trace_cov after 99 generations at d = 100, k = 100)
            np.matmul(x.T, x, out=s2[i])
            np.sum(x, axis=0, out=s1[i])
        return self.moments(k, s1, s2)

    @property
    def nbytes(self) -> int:
        """Bytes held now (the store, the slot and last-use maps, the selections not yet used)."""
        return (self.store.nbytes + self.stack.nbytes + self.slot.nbytes + self.last.nbytes
                + sum(a.nbytes for a in self.idx.values()))
