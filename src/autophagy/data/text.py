"""Token-sequence sources: ``markov-text`` (a language whose law is known exactly) and ``text`` (a user's files).

Data are ``(R, n, T)`` int64 token sequences in [0, V) (``info.kind = "tokens"``, ``info.seq_len = T``,
``info.vocab_size = V``). Every sequence here has the full length T (no padding); ``protocols.PAD``
marks padding for sources that need it.

``markov-text``: an order-k Markov chain over V tokens. Its conditional laws are a Zipf base law
π_j ∝ (j + 1)^(−s) tilted per context c, P(j | c) ∝ π_j exp(β u_{c,j}) with fixed u ~ N(0, 1)
(``structure_seed``), so rare tokens stay rare in every context and the marginal stays close to
Zipf (the exact marginal is ``truth["probs"]``). Sequences start from the chain's exact stationary
law μ over contexts (power iteration on V^k states), so the process is stationary and everything is
exact: the entropy rate H = Σ_c μ(c) H(P(· | c)), the sequence entropy H_T = H(μ) + (T − k) H,
and the law of any window (``window_law``), from which ``autophagy.text_metrics`` computes exact
cross-entropy and KL of n-gram models. (Shumailov et al. 2024 §3 and Fig. 4 study tail loss on such
token statistics; a Zipf law is the shape of word frequencies.)

``text``: a UTF-8 file or a folder of ``.txt``/``.md`` files, tokenised by characters, bytes, words
(the ``vocab_size − 1`` most frequent plus ``<unk>``) or a byte-level BPE trained locally with the
``tokenizers`` package (the ``text`` extra; nothing is downloaded). The token stream is split into
a training part and, at its end, a held-out part (``heldout`` fraction); each sample is a window of
T consecutive tokens at a uniformly random offset. Draws for the held-out set (the stream role
``"heldout"``, which the engine uses for ``metrics.n_heldout``) come from the held-out part.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt

from ..errors import ConfigError, DataError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams, generator
from .categorical import zipf_probs

MAX_STATES = 200_000  # V^k contexts of a Markov source (dense tables)


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis)


def stationary(trans: np.ndarray, V: int, k: int, tol: float = 1e-14, max_iter: int = 100_000) -> np.ndarray:
    """Stationary law ``(V^k,)`` of the context chain (x_1..x_k) -> (x_2..x_k, j) with ``trans (V^k, V)``."""
    C = V ** k
    mu = np.full(C, 1.0 / C)
    for _ in range(max_iter):
        new = (mu[:, None] * trans).reshape(V, C // V, V).sum(0).reshape(C)
        if np.abs(new - mu).sum() < tol:
            return new / new.sum()
        mu = new
    return mu / mu.sum()


class MarkovTextSource:
    """An order-k Markov language with exact law: ``sample`` returns ``(R, n, T)`` int64."""

    class Options(Options):
        vocab: PositiveInt = Field(30, ge=2, description="vocabulary size V")
        order: PositiveInt = Field(1, description="Markov order k (the next token depends on the k previous ones)")
        seq_len: PositiveInt = Field(16, description="tokens per sequence T (> order)")
        exponent: PositiveFloat = Field(1.1, description="Zipf exponent s of the base law π_j ∝ (j+1)^-s")
        strength: float = Field(1.0, ge=0.0, description="context dependence β: P(j|c) ∝ π_j exp(β u_cj)")
        structure_seed: int = Field(0, ge=0, description="seed of the fixed tilts u (the language, not the draws)")

    def __init__(self, options: "MarkovTextSource.Options" = None):
        o = self.options = options or self.Options()
        V, k, T = o.vocab, o.order, o.seq_len
        if T <= k:
            raise ConfigError("data.seq_len", T, f"more than data.order ({k}) tokens per sequence")
        if V ** k > MAX_STATES:
            raise ConfigError("data.vocab", V, f"vocab ** order at most {MAX_STATES} (dense transition tables)")
        base = zipf_probs(o.exponent, V)
        u = generator(o.structure_seed, 7, V, k).standard_normal((V ** k, V))
        logits = np.log(base)[None, :] + o.strength * u
        trans = np.exp(logits - logits.max(1, keepdims=True))
        self.trans = trans / trans.sum(1, keepdims=True)  # (V^k, V); context index: oldest token most significant
        self.init = stationary(self.trans, V, k)  # (V^k,)
        self.V, self.k, self.T = V, k, T
        rate = float(self.init @ _entropy(self.trans))
        seq_entropy = float(_entropy(self.init)) + (T - k) * rate
        marginal = self.window_law(1)
        self.info = SourceInfo(dim=T, kind="tokens", n_categories=V, seq_len=T, vocab_size=V, truth={
            "probs": marginal, "order": k, "init": self.init, "trans": self.trans, "entropy_rate": rate,
            "sequence_entropy": seq_entropy, "window_law": self.window_law})
        self._init_cdf = np.cumsum(self.init)
        self._cdf = np.cumsum(self.trans, axis=1)

    def window_law(self, w: int) -> np.ndarray:
        """Exact law ``(V^w,)`` of w consecutive tokens (the process is stationary); oldest token most significant."""
        V, k = self.V, self.k
        if w <= k:
            return self.init.reshape(V ** (k - w), V ** w).sum(0)
        law = self.init
        for width in range(k, w):
            ctx = np.arange(V ** width) % (V ** k)  # the last k tokens of each window
            law = (law[:, None] * self.trans[ctx]).reshape(-1)
        return law

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, T)``: the first k tokens from μ, then the chain (one uniform per token, inverse CDF)."""
        V, k, T = self.V, self.k, self.T
        u = streams.uniform(int(n), T - k + 1)  # (R, n, T - k + 1)
        ctx = np.minimum(np.searchsorted(self._init_cdf, u[..., 0] * self._init_cdf[-1], side="right"), V ** k - 1)
        out = np.empty(u.shape[:2] + (T,), dtype=np.int64)
        for i in range(k):
            out[..., i] = (ctx // V ** (k - 1 - i)) % V
        for t in range(k, T):
            cdf = self._cdf[ctx]  # (R, n, V)
            tok = np.minimum((cdf <= (u[..., t - k + 1] * cdf[..., -1])[..., None]).sum(-1), V - 1)
            out[..., t] = tok
            ctx = (ctx % V ** (k - 1)) * V + tok if k > 1 else tok
        return out


# --------------------------------------------------------------------------- user text
def _read_text(path: Path, field: str, as_bytes: bool) -> bytes | str:
    files = sorted(p for p in path.rglob("*") if p.suffix in (".txt", ".md") and p.is_file()) if path.is_dir() else [path]
    if not path.exists():
        raise ConfigError(field, str(path), "an existing text file or folder of .txt/.md files")
    if not files:
        raise DataError(field, str(path), "the folder holds no .txt or .md files")
    raw = b"\n".join(p.read_bytes() for p in files)
    if b"\x00" in raw[:1 << 20]:
        raise DataError(field, str(path), "a binary file (NUL bytes); expected UTF-8 text")
    if as_bytes:
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(field, str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


class TextFileSource:
    """Windows of T tokens from a user's text: ``sample`` returns ``(R, n, T)`` int64."""

    class Options(Options):
        path: str = Field(description="a UTF-8 text file or a folder of .txt/.md files (relative to the config)")
        tokenizer: Literal["char", "byte", "word", "bpe"] = "char"
        vocab_size: Optional[PositiveInt] = Field(None, description="word / bpe: vocabulary size (default 1000 / 500)")
        seq_len: PositiveInt = Field(32, description="tokens per sample T")
        heldout: float = Field(0.1, gt=0.0, lt=1.0, description="fraction of the token stream kept for held-out data")

    def __init__(self, options: "TextFileSource.Options", base_dir: Path = Path(".")):
        o = self.options = options
        path = Path(o.path)
        path = path if path.is_absolute() else Path(base_dir) / path
        text = _read_text(path, "data.path", o.tokenizer == "byte")
        if len(text.strip()) == 0:
            raise DataError("data.path", str(path), "the text is empty")
        ids, self.vocab = self._tokenise(text, o)
        T = o.seq_len
        cut = int(round(len(ids) * (1 - o.heldout)))
        if cut < T + 1 or len(ids) - cut < T:
            raise ConfigError("data.seq_len", T, f"at most {max(1, min(cut - 1, len(ids) - cut))} (the text has "
                              f"{len(ids)} tokens, {o.heldout:g} of them held out)")
        self.train, self.test = ids[:cut], ids[cut:]
        V = len(self.vocab)
        self.info = SourceInfo(dim=T, kind="tokens", n_categories=V, seq_len=T, vocab_size=V,
                               truth={"vocab": tuple(self.vocab)})

    @staticmethod
    def _tokenise(text, o) -> tuple[np.ndarray, list[str]]:
        if o.tokenizer == "byte":
            return np.frombuffer(text, dtype=np.uint8).astype(np.int64), [chr(b) for b in range(256)]
        if o.tokenizer == "char":
            vocab = sorted(set(text))
            if o.vocab_size is not None and o.vocab_size != len(vocab):
                raise ConfigError("data.vocab_size", o.vocab_size, f"unset for tokenizer 'char' (the text has "
                                  f"{len(vocab)} distinct characters)")
            index = {c: i for i, c in enumerate(vocab)}
            return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text)), vocab
        if o.tokenizer == "word":
            words = text.split()
            counts = Counter(words)
            V = o.vocab_size or min(1000, len(counts) + 1)
            if V > len(counts) + 1:
                raise ConfigError("data.vocab_size", V, f"at most {len(counts) + 1} (the text has {len(counts)} "
                                  "distinct words, plus <unk>)")
            vocab = ["<unk>"] + [w for w, _ in counts.most_common(V - 1)]
            index = {w: i for i, w in enumerate(vocab)}
            return np.array([index.get(w, 0) for w in words], dtype=np.int64), vocab
        try:
            from tokenizers import Tokenizer, models, pre_tokenizers, trainers
        except ImportError:
            raise ConfigError("data.tokenizer", "bpe", "", problem="needs the `tokenizers` package: pip install "
                              "'autophagy[text]' (or use tokenizer char, byte or word)") from None
        V = o.vocab_size or 500
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(vocab_size=V, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(text.splitlines(), trainer=trainer)
        if tok.get_vocab_size() < V:
            raise ConfigError("data.vocab_size", V, f"at most {tok.get_vocab_size()} (all the merges this text allows)")
        ids = np.array(tok.encode(text).ids, dtype=np.int64)
        vocab = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
        return ids, vocab

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, T)`` windows at uniform offsets of the training part (held-out part for role ``heldout``)."""
        ids = self.test if streams.role.endswith("heldout") else self.train
        T = self.options.seq_len
        start = streams.integers(len(ids) - T + 1, int(n))  # (R, n)
        return ids[start[..., None] + np.arange(T)]
