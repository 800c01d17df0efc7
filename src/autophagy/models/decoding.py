"""Decoding rules shared by the token families (ngram, transformer, hf-causal-lm), in NumPy.

A token model only supplies ``next_logp(prefix (R, M, t) int64) -> (R, M, K)`` log-probabilities of
the next token (t = 0: the start of a sequence). ``decode`` turns that into ``(R, m, T)`` samples:

* temperature τ = ``sampling.bias`` (MAD's λ): q ∝ p^(1/τ) (τ = 1: p itself; τ → 0: greedy);
* ``top_k``: keep the k most likely tokens (Fan et al. 2018); ties at the k-th value are kept;
* ``top_p``: nucleus sampling, the smallest most-likely set with mass ≥ p (Holtzman et al. 2020);
* ``repetition_penalty`` θ ≥ 1: log p of a token already in the sequence is multiplied by θ
  (Keskar et al. 2019, CTRL, for log-probabilities ≤ 0), then renormalised;
* ``beams`` B > 1: the first token is drawn as above, the rest by beam search with B beams
  maximising the (tempered, penalised) log-probability (Shumailov et al. 2024 fine-tuned OPT on
  5-beam continuations). Beam search is deterministic given the first token, which is the point:
  it discards the tails by construction.

With every option at its default the draw is exact ancestral sampling (tests/test_text.py checks
the identity on the true model of a Markov source). Randomness: one uniform per token from the
caller's ``Streams`` (``u (R, m, T)``), so replicate r's draws do not depend on R.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np


def adjust(logp: np.ndarray, temperature: float = 1.0, top_k: Optional[int] = None, top_p: float = 1.0,
           seen: Optional[np.ndarray] = None, penalty: float = 1.0) -> np.ndarray:
    """Probabilities ``(..., K)`` after penalty, temperature, top-k and top-p (rows sum to 1)."""
    lp = np.array(logp, dtype=float)
    if seen is not None and penalty != 1.0:
        lp = np.where(seen & np.isfinite(lp), lp * penalty, lp)
    if temperature != 1.0:
        lp = lp / temperature
    lp -= lp.max(axis=-1, keepdims=True)
    p = np.exp(lp)
    p /= p.sum(axis=-1, keepdims=True)
    K = p.shape[-1]
    if top_k is not None and top_k < K:
        kth = -np.partition(-p, top_k - 1, axis=-1)[..., top_k - 1:top_k]
        p = np.where(p >= kth, p, 0.0)
        p /= p.sum(axis=-1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-p, axis=-1, kind="stable")
        ps = np.take_along_axis(p, order, axis=-1)
        before = np.cumsum(ps, axis=-1) - ps  # mass strictly above each sorted token
        keep_sorted = before < top_p  # the most likely token is always kept
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=-1, keepdims=True)
    return p


def draw(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw: ``p (..., K)``, ``u (...)`` in [0, 1) -> ``(...)`` int64; a zero-mass token is never drawn."""
    cdf = np.cumsum(p, axis=-1)
    idx = (cdf <= (u * cdf[..., -1])[..., None]).sum(-1)
    last = p.shape[-1] - 1 - np.argmax(p[..., ::-1] > 0, axis=-1)  # guard against rounding past the last positive
    return np.minimum(idx, last).astype(np.int64)


def _logsoftmax(lp: np.ndarray) -> np.ndarray:
    top = lp.max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        return lp - top - np.log(np.exp(lp - top).sum(axis=-1, keepdims=True))


def decode(next_logp: Callable[[np.ndarray], np.ndarray], R: int, m: int, T: int, u: np.ndarray,
           temperature: float = 1.0, decoding=None) -> np.ndarray:
    """``(R, m, T)`` int64 sequences; ``decoding`` has ``top_k, top_p, beams, repetition_penalty`` (or None)."""
    top_k = getattr(decoding, "top_k", None)
    top_p = getattr(decoding, "top_p", 1.0)
    beams = getattr(decoding, "beams", 1)
    penalty = getattr(decoding, "repetition_penalty", 1.0)
    seqs = np.zeros((R, m, T), dtype=np.int64)
    seen = None
    for t in range(T if beams == 1 else 1):
        lp = next_logp(seqs[:, :, :t])
        if seen is None:
            seen = np.zeros(lp.shape, dtype=bool)
        p = adjust(lp, temperature, top_k, top_p, seen, penalty)
        tok = draw(p, u[:, :, t])
        seqs[:, :, t] = tok
        np.put_along_axis(seen, tok[..., None], True, axis=-1)
    if beams == 1 or T == 1:
        return seqs
    return beam_search(next_logp, seqs[:, :, :1], T, beams, temperature, penalty)


def beam_search(next_logp, first: np.ndarray, T: int, beams: int, temperature: float = 1.0,
                penalty: float = 1.0) -> np.ndarray:
    """Continue ``first (R, m, 1)`` to length T with ``beams`` beams; returns the best beam ``(R, m, T)``.

    Scores are sums of tempered, penalised log-probabilities (ties are broken arbitrarily but deterministically).
    """
    R, m, _ = first.shape
    seqs = first[:, :, None, :]  # (R, m, b, t)
    scores = np.zeros((R, m, 1))
    for t in range(1, T):
        b = seqs.shape[2]
        lp = next_logp(seqs.reshape(R, m * b, t)).reshape(R, m, b, -1)
        K = lp.shape[-1]
        if penalty != 1.0:
            seen = np.zeros(lp.shape, dtype=bool)
            np.put_along_axis(seen, seqs, True, axis=-1)
            lp = np.where(seen & np.isfinite(lp), lp * penalty, lp)
        lp = _logsoftmax(lp / temperature)
        total = (scores[..., None] + lp).reshape(R, m, b * K)
        keep = min(beams, b * K)
        best = np.argpartition(-total, keep - 1, axis=-1)[..., :keep] if keep < b * K else \
            np.broadcast_to(np.arange(b * K), total.shape)
        scores = np.take_along_axis(total, best, axis=-1)
        order = np.argsort(-scores, axis=-1, kind="stable")  # best beam first
        best, scores = np.take_along_axis(best, order, -1), np.take_along_axis(scores, order, -1)
        parent, token = best // K, best % K
        seqs = np.concatenate([np.take_along_axis(seqs, parent[..., None], axis=2), token[..., None]], axis=-1)
    return seqs[:, :, 0, :]
