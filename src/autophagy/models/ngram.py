"""The ``ngram`` family: a count-based n-gram language model, vectorised over replicates.

An order-n model predicts token x_t from the h = n − 1 previous tokens, left-padded with a start
symbol (index V) so the first tokens of a sequence have contexts too. Fitting counts every
(context, token) pair of the training sequences in one ``bincount`` for all R replicates and keeps a
dense table ``probs (R, (V+1)^h, V)``. Smoothing:

* ``add-alpha`` (Lidstone): p(j | c) = (C(c, j) + α) / (C(c) + Vα); with α = 0 (the MLE) an unseen
  context backs off to the unigram MLE. α = 0 is the Wright–Fisher case of theory/ngram.py: an
  n-gram that drops out of one generation's sample never returns (Shumailov et al. 2024 §3.1).
* ``kneser-ney``: interpolated Kneser–Ney with absolute discount D (Kneser & Ney 1995; Chen &
  Goodman 1998, eq. 4): p(j | c) = max(C(c, j) − D, 0)/C(c) + D N1+(c •)/C(c) · p_lower(j | c'),
  where c' drops the oldest token, lower orders use continuation counts N1+(• c' j), and the unigram
  level interpolates with the uniform law, so no token ever has probability 0.

``start: source`` draws the first h tokens of every sampled sequence from the source's exact law in
fixed proportions (largest remainder of m·μ, shuffled) instead of the model: a fixed context
distribution, as when each generation is prompted with real text. It makes the replace loop a set
of per-context Wright–Fisher chains (``autophagy.theory.ngram``).

Sampling is ``autophagy.models.decoding.decode`` (temperature = ``sampling.bias``, top-k, top-p,
beams, repetition penalty). Shapes: tokens ``(R, n, T)`` int64.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, PositiveInt

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams
from .decoding import decode

MAX_TABLE = 1 << 27  # R·(V+1)^h·V floats of one dense table (1 GiB)


def _contexts(padded: np.ndarray, L: int, V: int, T: int) -> np.ndarray:
    """Context index ``(R, n, T)`` of the L tokens before each position (most recent least significant)."""
    h = padded.shape[-1] - T
    ctx = np.zeros(padded.shape[:-1] + (T,), dtype=np.int64)
    for i in range(1, L + 1):
        ctx += padded[..., h - i:h - i + T] * (V + 1) ** (i - 1)
    return ctx


def _count(tokens: np.ndarray, ctx: np.ndarray, C: int, V: int) -> np.ndarray:
    R = tokens.shape[0]
    flat = (np.arange(R)[:, None, None] * (C * V) + ctx * V + tokens).ravel()
    return np.bincount(flat, minlength=R * C * V).reshape(R, C, V).astype(float)


class NGramModel:
    """R n-gram models: ``probs (R, (V+1)^h, V)``, ``counts`` of the top order, the source's start law (optional)."""

    def __init__(self, probs: np.ndarray, counts: np.ndarray, V: int, h: int, T: int, decoding=None, start=None):
        self.probs, self.counts, self.V, self.h, self.T = probs, counts, V, h, T
        self.decoding, self.start = decoding, start
        self.R = probs.shape[0]

    context_length = property(lambda self: self.h)  # declared: a finite context (exact text metrics apply)

    def next_logp(self, prefix: np.ndarray) -> np.ndarray:
        """``(R, M, V)`` log p(next | the last h tokens of ``prefix (R, M, t)``)."""
        R, M, t = prefix.shape
        V, h = self.V, self.h
        ctx = np.full((R, M), (V + 1) ** h - 1, dtype=np.int64)  # all start symbols
        for i in range(1, min(h, t) + 1):
            ctx += (prefix[..., t - i] - V) * (V + 1) ** (i - 1)
        rows = np.take_along_axis(self.probs, ctx[..., None], axis=1) if h else np.broadcast_to(self.probs, (R, M, V))
        with np.errstate(divide="ignore"):
            return np.log(rows)

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """``(R, m, T)`` int64 sequences (see ``decoding.decode``; ``start: source`` fixes the first h tokens)."""
        R, T = self.R, self.T
        u = streams.uniform(m, T)
        if self.start is None:
            return decode(self.next_logp, R, m, T, u, bias, self.decoding)
        law, w = self.start
        first = _stratified(law, m, streams.child("start"), self.V, w)  # (R, m, w)
        seqs = np.zeros((R, m, T), dtype=np.int64)
        seqs[..., :w] = first
        from .decoding import adjust, draw

        for t in range(w, T):  # the rest by ancestral sampling (beams are not combined with a fixed start)
            p = adjust(self.next_logp(seqs[..., :t]), bias, getattr(self.decoding, "top_k", None),
                       getattr(self.decoding, "top_p", 1.0))
            seqs[..., t] = draw(p, u[..., t])
        return seqs

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log p(sequence) ``(R, n)`` of ``x (R, n, T)`` (−inf where a token has probability 0)."""
        x = np.asarray(x, dtype=np.int64)
        R, n, T = x.shape
        V, h = self.V, self.h
        padded = np.concatenate([np.full((R, n, h), V, dtype=np.int64), x], axis=-1)
        ctx = _contexts(padded, h, V, T).reshape(R, n * T)
        rows = np.take_along_axis(self.probs, ctx[..., None], axis=1)  # (R, nT, V)
        p = np.take_along_axis(rows, np.clip(x.reshape(R, n * T, 1), 0, V - 1), axis=2)[..., 0]
        with np.errstate(divide="ignore"):
            return np.log(p).reshape(R, n, T).sum(-1)

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """ngram_support: distinct n-grams in the training set whose context holds no start symbol;
        unigram_support: tokens seen; mean_context_entropy: the mean of H(p(· | c)) over seen contexts without
        start symbols."""
        V, h = self.V, self.h
        C = (V + 1) ** h
        inner = np.ones(C, dtype=bool)
        for i in range(h):
            inner &= (np.arange(C) // (V + 1) ** i) % (V + 1) != V
        seen = self.counts > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            H = -np.where(self.probs > 0, self.probs * np.log(self.probs), 0.0).sum(-1)  # (R, C)
        used = seen.any(-1)[:, inner]
        return {"ngram_support": seen[:, inner].sum((1, 2)).astype(float),
                "unigram_support": seen.any(1).sum(-1).astype(float),
                "mean_context_entropy": (H[:, inner] * used).sum(1) / np.maximum(used.sum(1), 1)}


def _stratified(law: np.ndarray, m: int, streams: Streams, V: int, w: int) -> np.ndarray:
    """``(R, m, w)`` windows with counts fixed at the largest remainder of m·law, in a random order."""
    exact = m * law
    counts = np.floor(exact).astype(np.int64)
    rest = m - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:rest]] += 1
    windows = np.repeat(np.arange(law.size), counts)  # (m,)
    order = np.argsort(streams.permutation_keys(m), axis=1)
    idx = windows[order]  # (R, m)
    return np.stack([(idx // V ** (w - 1 - i)) % V for i in range(w)], axis=-1)


class NGramFamily:
    """The ``ngram`` family (batched; warm start ignored: the fit is closed-form)."""

    batched = True
    decodes = True  # receives sampling.top_k / top_p / beams / repetition_penalty (autophagy.build)

    class Options(Options):
        order: PositiveInt = Field(2, description="n: the model predicts a token from the n - 1 before it")
        smoothing: Literal["add-alpha", "kneser-ney"] = "add-alpha"
        alpha: float = Field(0.0, ge=0.0, description="add-alpha: pseudo-count α (0 = maximum likelihood)")
        discount: float = Field(0.75, gt=0.0, lt=1.0, description="kneser-ney: absolute discount D")
        start: Literal["fit", "source"] = Field(
            "fit", description="first n - 1 tokens of each sample: from the model, or from the source's exact law "
                               "in fixed proportions (a fixed context distribution; needs markov-text)")

    def __init__(self, options: "NGramFamily.Options", info: SourceInfo):
        self.options, self.info, self.decoding = options, info, None
        if not info.tokens:
            raise ConfigError("model.family", "ngram", f"a token source (markov-text, text), not kind {info.kind!r}")
        V, h = info.vocab_size, options.order - 1
        if (V + 1) ** h * V > MAX_TABLE // 64:
            raise ConfigError("model.order", options.order, f"a smaller order for vocabulary {V} (dense tables of "
                              f"(V+1)^(n-1)·V = {(V + 1) ** h * V} entries per replicate)")
        if options.start == "source" and "window_law" not in info.truth:
            raise ConfigError("model.start", "source", "fit, or a source with a known law (markov-text)")

    def fit(self, data: np.ndarray, streams: Streams, init=None) -> NGramModel:
        tokens = np.asarray(data)
        V, h = self.info.vocab_size, self.options.order - 1
        if tokens.ndim != 3 or not np.issubdtype(tokens.dtype, np.integer):
            raise ConfigError("data", f"{tokens.dtype} {tokens.shape}", "(R, n, T) integer token sequences")
        if tokens.min() < 0 or tokens.max() >= V:
            raise ConfigError("data.vocab_size", V, f"tokens in [0, {V}) (the data hold {tokens.min()}..{tokens.max()})")
        R, n, T = tokens.shape
        padded = np.concatenate([np.full((R, n, h), V, dtype=np.int64), tokens.astype(np.int64)], axis=-1)
        raw = [_count(tokens, _contexts(padded, L, V, T), (V + 1) ** L, V) for L in range(h + 1)]
        if self.options.smoothing == "add-alpha":
            probs = self._add_alpha(raw)
        else:
            probs = self._kneser_ney(raw)
        start = None
        if self.options.start == "source" and h:
            start = (self.info.truth["window_law"](h), h)
        return NGramModel(probs, raw[-1], V, h, T, self.decoding, start)

    def _add_alpha(self, raw):
        V, a = self.info.vocab_size, self.options.alpha
        top = raw[-1]
        tot = top.sum(-1, keepdims=True)
        uni = raw[0] / raw[0].sum(-1, keepdims=True)  # (R, 1, V)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = (top + a) / (tot + V * a)
        return np.where(tot + V * a > 0, p, uni)

    def _kneser_ney(self, raw):
        V, D = self.info.vocab_size, self.options.discount
        h = len(raw) - 1
        p = None
        for L in range(h + 1):
            if L == h:
                c = raw[L]
            else:  # continuation counts N1+(• c j) from the level above
                c = (raw[L + 1].reshape(raw[L + 1].shape[0], V + 1, (V + 1) ** L, V) > 0).sum(1).astype(float)
            tot = c.sum(-1, keepdims=True)
            types = (c > 0).sum(-1, keepdims=True)
            lower = np.full_like(c, 1.0 / V) if p is None else p[:, np.arange((V + 1) ** L) % (V + 1) ** max(L - 1, 0)]
            if p is not None and L == 0:
                lower = p
            with np.errstate(invalid="ignore", divide="ignore"):
                mixed = np.maximum(c - D, 0) / tot + D * types / tot * lower
            p = np.where(tot > 0, mixed, lower)
        return p

    # checkpoints: the model is a pure function of its tables
    def save(self, model: NGramModel, path: Path) -> None:
        np.savez(Path(path) / "ngram.npz", probs=model.probs, counts=model.counts, T=model.T)

    def load(self, path: Path) -> NGramModel:
        z = np.load(Path(path) / "ngram.npz")
        h = self.options.order - 1
        start = (self.info.truth["window_law"](h), h) if self.options.start == "source" and h else None
        return NGramModel(z["probs"], z["counts"], self.info.vocab_size, h, int(z["T"]), self.decoding, start)
