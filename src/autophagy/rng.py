"""The seed tree: every random draw in a run comes from a stream named by
``(seed, replicate, generation, role)``.

Why this shape
--------------
Model-collapse statements are about expectations over many independent chains, so results
must not depend on how the chains are batched or spread over workers. Closed-form families
draw for all R replicates in one vectorised call, which rules out building R NumPy generators
per call (13 µs each: 10,000 replicates x 100 generations would cost more than the whole
simulation). We therefore key vectorised streams by replicate *block*:

* ``Streams.draw`` uses one PCG64 stream per block of ``BLOCK`` consecutive replicates, its
  state taken from words 4b..4b+3 of ``SeedSequence(seed, spawn_key=(0, generation + 1, role))``,
  and always draws a full block. Replicate ``r`` therefore sees the same numbers whatever the total R, whatever
  subset of blocks a worker runs, and whatever the run order.
* ``Streams.generators`` gives one generator per replicate,
  ``SeedSequence(seed, spawn_key=(1, r, generation, role))``, for code that loops over
  replicates (neural families, lifted single-dataset models, scikit-learn wrappers).

Roles are strings hashed with CRC-32, so plug-ins can open their own streams without a
registry. Nothing here touches global random state.
"""
from __future__ import annotations

import threading
import zlib
from typing import Callable, Optional, Sequence

import numpy as np

BLOCK = 64

_spare = threading.local()  # per thread: idle (PCG64, Generator) pairs, their states set before every use


def _borrow() -> tuple:
    """A (PCG64, Generator) pair not in use (a nested draw gets another): building one costs a SeedSequence."""
    pool = getattr(_spare, "pool", None)
    if pool:
        return pool.pop()
    bits = np.random.PCG64(0)
    return bits, np.random.Generator(bits)


def _give_back(pair: tuple) -> None:
    pool = getattr(_spare, "pool", None)
    if pool is None:
        pool = _spare.pool = []
    pool.append(pair)


def role_id(role: str) -> int:
    """Stable integer id of a role name (CRC-32, independent of Python's hash seed)."""
    return zlib.crc32(role.encode("utf-8"))


def generator(seed: int, *key: int) -> np.random.Generator:
    """One generator at an arbitrary node of the seed tree."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))))


class Streams:
    """Random streams for replicates ``start .. start+R-1`` at one (generation, role).

    Parameters
    ----------
    seed: the run's seed.
    replicates: R, the number of replicates served (the leading axis of every draw).
    generation: generation index g (use -1 for draws that precede generation 0).
    role: what the numbers are for, e.g. ``"data"``, ``"sample"``, ``"fit"``, ``"policy"``.
    start: index of the first replicate (a worker running a later slice of the chains).
    """

    def __init__(self, seed: int, replicates: int, generation: int, role: str, start: int = 0):
        if start % BLOCK:
            raise ValueError(f"start must be a multiple of {BLOCK}, got {start}")
        self.seed, self.R, self.generation, self.role, self.start = int(seed), int(replicates), int(generation), role, int(start)
        self._states: list[dict] | None = None
        self._owed: dict[int, tuple[str, int]] = {}  # block -> numbers a partial fill left undrawn (see _fill)

    def child(self, role: str) -> "Streams":
        """A sibling stream for a sub-task at the same generation (e.g. ``"sample/indices"``)."""
        return Streams(self.seed, self.R, self.generation, f"{self.role}/{role}", self.start)

    def _block_states(self) -> list[dict]:
        """PCG64 states of this node's blocks, taken from one SeedSequence per (generation, role).

        Block b's 128-bit state and increment are words 4b..4b+3 of
        ``SeedSequence(seed, spawn_key=(0, generation + 1, crc32(role))).generate_state``, whose
        prefix does not depend on how many words are asked for; so block b's stream is the same
        whatever R or the worker's first block. One hash call replaces a SeedSequence per block
        (13 µs each), which dominated large replicate studies.
        """
        if self._states is None:
            first = self.start // BLOCK
            n_blocks = -(-self.R // BLOCK)
            ss = np.random.SeedSequence(self.seed, spawn_key=(0, self.generation + 1, role_id(self.role)))
            words = ss.generate_state(4 * (first + n_blocks), np.uint64)[4 * first:].reshape(n_blocks, 4).tolist()
            self._states = [{"bit_generator": "PCG64", "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3] | 1},
                             "has_uint32": 0, "uinteger": 0} for w in words]
        return self._states

    def _each_block(self, fn: Callable[[int, np.random.Generator], None]) -> None:
        """Call ``fn(block_index, generator)`` with each block's stream, saving where it stopped."""
        states = self._block_states()
        pair = _borrow()
        bits, gen = pair
        try:
            for b, state in enumerate(states):
                bits.state = state
                if b in self._owed:  # first the numbers a partial fill skipped: the stream continues as if drawn
                    kind, count = self._owed.pop(b)
                    (gen.standard_normal if kind == "normal" else gen.random)(count)
                fn(b, gen)
                states[b] = bits.state
        finally:
            _give_back(pair)

    def _fill(self, kind: str, tail: tuple, scale=None, shift=None) -> np.ndarray:
        """``(R, *tail)`` float64 standard normals (``kind = "normal"``) or uniforms, block by block. The last block's
        rows past R are not drawn now: they are owed, and drawn (and dropped) only if the stream is used again, so
        every number, and every later draw, is the one a full block would give."""
        buf = np.empty((self.R, *tail))
        flat = buf.reshape(self.R, -1)  # (rows, prod(tail)): a long inner loop for the per-row ops
        sc = None if scale is None else np.asarray(scale, dtype=float).reshape(self.R, 1)
        sh = None if shift is None else np.asarray(shift, dtype=float).reshape(self.R, 1)
        normal = kind == "normal"

        def fill(b: int, g: np.random.Generator) -> None:
            lo, hi = b * BLOCK, min((b + 1) * BLOCK, self.R)
            if normal:
                g.standard_normal(out=buf[lo:hi])
            else:
                g.random(out=buf[lo:hi])
            if hi - lo < BLOCK:
                self._owed[b] = (kind, (BLOCK - (hi - lo)) * flat.shape[1])
            if sc is not None:
                flat[lo:hi] *= sc[lo:hi]
            if sh is not None:
                flat[lo:hi] += sh[lo:hi]

        self._each_block(fill)
        return buf

    def draw(self, fn: Callable[[np.random.Generator, tuple], np.ndarray], tail: Sequence[int] = ()) -> np.ndarray:
        """Call ``fn(generator, (BLOCK, *tail))`` once per block and return ``(R, *tail)``.

        Successive calls continue the same streams, so a family may draw several arrays.
        """
        tail = tuple(int(t) for t in tail)
        parts: list[np.ndarray] = []
        self._each_block(lambda b, g: parts.append(np.asarray(fn(g, (BLOCK, *tail)))))
        out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        return out[: self.R]

    def normal(self, *tail: int, scale: Optional[np.ndarray] = None, shift: Optional[np.ndarray] = None) -> np.ndarray:
        """Standard normal draws of shape ``(R, *tail)`` (filled in place: no concatenation copy).

        ``scale`` and ``shift``, per-replicate ``(R,)`` arrays, give ``shift + scale · z`` instead, applied
        block by block while the block is still in cache (the same numbers as transforming afterwards,
        with one pass over memory instead of three).
        """
        return self._fill("normal", tuple(int(t) for t in tail), scale, shift)

    def uniform(self, *tail: int) -> np.ndarray:
        """Uniform [0, 1) draws of shape ``(R, *tail)``."""
        return self._fill("uniform", tuple(int(t) for t in tail))

    def integers(self, high: int | np.ndarray, *tail: int) -> np.ndarray:
        """Uniform integers in ``[0, high)``; ``high`` may be an int or an ``(R,)`` array."""
        u = self.uniform(*tail)
        high = np.asarray(high)
        if high.ndim:
            high = high.reshape((-1,) + (1,) * len(tail))
        return np.minimum((u * high).astype(np.int64), high - 1)

    def permutation_keys(self, n: int) -> np.ndarray:
        """``(R, n)`` arg-sort keys: ``np.argsort(keys, axis=1)`` is a uniform permutation per replicate."""
        return self.uniform(n)

    def generators(self) -> list[np.random.Generator]:
        """One independent generator per replicate, for code that loops over replicates."""
        rid = role_id(self.role)
        return [generator(self.seed, 1, self.start + r, self.generation + 1, rid) for r in range(self.R)]

    def subset(self, start: int, stop: int) -> "Streams":
        """Streams for replicates ``start..stop-1`` of this set (``start`` a multiple of BLOCK)."""
        return Streams(self.seed, stop - start, self.generation, self.role, self.start + start)
