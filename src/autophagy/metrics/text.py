"""Metrics for token sequences ``(R, n, T)`` int64, with the signature of ``autophagy.metrics``::

    name(reference, samples, *, model=None, info=None, streams=None, **options) -> {key: (R,) array}

* ``exact-kl`` (distance, exact): per token, KL(P_T ‖ Q_T)/T and the cross-entropy −E_P log Q(X)/T
  (keys ``exact-kl``, ``exact-ce``) between the source's sequence law (markov-text, hmm-text) and a model with
  a finite context (``model.context_length``: ngram), by enumerating the source's exact window laws:
  CE_T = Σ_t Σ_w law(w) (−log q(w_last | w_prefix)), KL_T = CE_T − H_T. The KL of the true model is 0.
  With ``hmm-text`` at V^T > 2^20, H_T is a Monte-Carlo value: the key ``exact-kl-se`` then carries its
  standard error per token (``truth["sequence_entropy_se"] / T``; the cross-entropy stays exact).
* ``heldout-ppl`` (distance, Monte-Carlo): perplexity exp(−Σ log q(x) / (n T)) of the held-out real
  sequences under each replicate's model (needs ``log_prob``); keys ``heldout-ppl``, ``heldout-ce``.
  For the true model its expectation of ``heldout-ce`` is H_T / T.
* ``text-entropy`` (diversity): plug-in entropy (nats) of the generated unigram distribution.
* ``distinct-n`` (diversity): distinct n-grams / all n-grams within each replicate's samples
  (Li et al. 2016), keys ``distinct-1`` .. ``distinct-<n>``.
* ``tail-coverage`` (diversity): the share of the reference's rare n-grams (count at most the
  median count of its distinct n-grams) that appear in the samples — Shumailov et al.'s lost tails.
* ``zipf-exponent`` (shape): least-squares slope of −log frequency on log rank of generated tokens.
* ``seq-length``: mean number of non-padding tokens per sequence.

Each applies to token data only (``kinds={"tokens"}``); ``exact-kl`` declares that it reads the source's
``window_law`` and ``sequence_entropy`` and ``heldout-ppl`` that it needs ``log_prob`` (``autophagy.metrics.base``).
"""
from __future__ import annotations

import numpy as np
from pydantic import Field, PositiveInt

from ..errors import ConfigError
from ..options import Options
from ..protocols import PAD
from .base import TOKENS, Metric, NoOptions, parse


class DistinctOptions(Options):
    n: PositiveInt = Field(3, le=8, description="largest n-gram order (distinct-1 .. distinct-n)")


class TailOptions(Options):
    n: PositiveInt = Field(2, le=8, description="n-gram order of the tail")


def _tokens(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"text metrics need (R, n, T) integer tokens, got {x.dtype} {x.shape}")
    return x.astype(np.int64)


def _ngram_ids(x: np.ndarray, n: int, V: int) -> np.ndarray:
    """``(R, n_seq·(T−n+1))`` integer ids of every n-gram inside a sequence (PAD-containing ones = −1)."""
    R, N, T = x.shape
    if n > T:
        return np.full((R, 0), -1, dtype=np.int64)
    ids = np.zeros((R, N, T - n + 1), dtype=np.int64)
    bad = np.zeros(ids.shape, dtype=bool)
    for i in range(n):
        part = x[..., i:T - n + 1 + i]
        ids = ids * V + np.maximum(part, 0)
        bad |= part == PAD
    return np.where(bad, -1, ids).reshape(R, -1)


def _vocab(info, *xs) -> int:
    if info is not None and info.vocab_size:
        return int(info.vocab_size)
    return int(max(x.max() for x in xs)) + 1


def exact_kl(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Exact per-token KL and cross-entropy of a finite-context model to a markov-text source."""
    parse(NoOptions, "exact-kl", options)
    h = getattr(model, "context_length", None)
    if h is None or not hasattr(model, "next_logp"):
        raise ConfigError("metrics", "exact-kl", "a model family with a finite context (ngram); use heldout-ppl")
    truth = info.truth
    V, T = info.vocab_size, info.seq_len
    ce = np.zeros(model.R)
    for w in range(1, min(h, T - 1) + 2):  # windows of w tokens: position w − 1 (or every later one when w = h + 1)
        law = truth["window_law"](w)  # (V^w,)
        keep = law > 0
        idx = np.flatnonzero(keep)
        windows = np.stack([(idx // V ** (w - 1 - i)) % V for i in range(w)], axis=-1)  # (W, w)
        prefix = np.broadcast_to(windows[None, :, :-1], (model.R, len(idx), w - 1))
        lp = model.next_logp(np.ascontiguousarray(prefix))  # (R, W, V)
        lq = np.take_along_axis(lp, np.broadcast_to(windows[None, :, -1:], (model.R, len(idx), 1)), axis=2)[..., 0]
        with np.errstate(invalid="ignore"):
            term = -(law[keep][None, :] * lq).sum(1)
        ce += term * (T - h if w == h + 1 else 1)
    kl = ce - truth["sequence_entropy"]
    out = {"exact-kl": kl / T, "exact-ce": ce / T}
    se = float(truth.get("sequence_entropy_se", 0.0) or 0.0)
    if se > 0:
        out["exact-kl-se"] = np.full(model.R, se / T)
    return out


def heldout_ppl(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    parse(NoOptions, "heldout-ppl", options)
    ref = _tokens(reference)
    if not hasattr(model, "log_prob"):
        raise ConfigError("metrics", "heldout-ppl", "a model family with log_prob")
    lp = np.asarray(model.log_prob(ref), dtype=float)  # (R, n)
    tokens = (ref != PAD).sum((1, 2))
    ce = -lp.sum(1) / tokens
    return {"heldout-ppl": np.exp(ce), "heldout-ce": ce}


def _unigram_freq(x: np.ndarray, V: int) -> np.ndarray:
    R = x.shape[0]
    flat = x.reshape(R, -1)
    ok = flat != PAD
    idx = (np.arange(R)[:, None] * V + np.maximum(flat, 0))[ok]
    c = np.bincount(idx, minlength=R * V).reshape(R, V).astype(float)
    return c / np.maximum(c.sum(1, keepdims=True), 1)


def text_entropy(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    parse(NoOptions, "text-entropy", options)
    x = _tokens(samples)
    f = _unigram_freq(x, _vocab(info, x))
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"text-entropy": -np.where(f > 0, f * np.log(f), 0.0).sum(1)}


def distinct_n(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    o = parse(DistinctOptions, "distinct-n", options)
    x = _tokens(samples)
    V = _vocab(info, x)
    out = {}
    for n in range(1, o.n + 1):
        ids = _ngram_ids(x, n, V)
        vals = np.empty(x.shape[0])
        for r, row in enumerate(ids):
            row = row[row >= 0]
            vals[r] = np.unique(row).size / row.size if row.size else np.nan
        out[f"distinct-{n}"] = vals
    return out


def tail_coverage(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    o = parse(TailOptions, "tail-coverage", options)
    ref, x = _tokens(reference), _tokens(samples)
    V = _vocab(info, ref, x)
    rid, sid = _ngram_ids(ref, o.n, V), _ngram_ids(x, o.n, V)
    out = np.empty(ref.shape[0])
    for r in range(ref.shape[0]):
        grams, counts = np.unique(rid[r][rid[r] >= 0], return_counts=True)
        rare = grams[counts <= np.median(counts)]
        out[r] = np.isin(rare, sid[r]).mean() if rare.size else np.nan
    return {"tail-coverage": out}


def zipf_exponent(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    parse(NoOptions, "zipf-exponent", options)
    x = _tokens(samples)
    f = -np.sort(-_unigram_freq(x, _vocab(info, x)), axis=1)
    out = np.full(x.shape[0], np.nan)
    for r, row in enumerate(f):
        row = row[row > 0]
        if row.size >= 2:
            out[r] = -np.polyfit(np.log(np.arange(1, row.size + 1)), np.log(row), 1)[0]
    return {"zipf-exponent": out}


def seq_length(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    parse(NoOptions, "seq-length", options)
    x = _tokens(samples)
    return {"seq-length": (x != PAD).sum(-1).mean(-1).astype(float)}


METRICS = (
    Metric("exact-kl", exact_kl, kinds=TOKENS,
           truth={"window_law": "a source with a known law (markov-text, hmm-text); use heldout-ppl",
                  "sequence_entropy": "a source with a known law (markov-text, hmm-text); use heldout-ppl"}),
    Metric("heldout-ppl", heldout_ppl, kinds=TOKENS, needs=frozenset({"log_prob"})),
    Metric("text-entropy", text_entropy, kinds=TOKENS),
    Metric("distinct-n", distinct_n, kinds=TOKENS, options=DistinctOptions),
    Metric("tail-coverage", tail_coverage, kinds=TOKENS, options=TailOptions),
    Metric("zipf-exponent", zipf_exponent, kinds=TOKENS),
    Metric("seq-length", seq_length, kinds=TOKENS),
)
