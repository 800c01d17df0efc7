"""Token-sequence sources: ``markov-text`` and ``hmm-text`` (languages whose law is known exactly) and ``text``
(a user's files).

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

``hmm-text``: a hidden-Markov language (S hidden states, Zipf-tilted emissions): exact window laws and
log-likelihoods by the forward recursion; its sequence entropy is exact by enumeration where V^T is
small, otherwise a Monte-Carlo value with its standard error (see ``HMMTextSource``).

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


ENUM_LIMIT = 1 << 20  # hmm-text: V^T sequences up to this many give the exact sequence entropy by enumeration


def _inverse_cdf(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index of u (..., ) in the rows cdf (..., K) (the last entry is the row's total)."""
    return np.minimum((cdf <= (u * cdf[..., -1])[..., None]).sum(-1), cdf.shape[-1] - 1)


_ENTROPY: dict = {}  # hmm-text options -> (H_T, s.e., method): computed once per process


def _hmm_entropy(src: "HMMTextSource", key) -> tuple[float, float, str]:
    """``(H_T, its standard error, "exact" | "monte-carlo")`` of ``src``'s sequences."""
    if key not in _ENTROPY:
        V, S, T, o = src.V, src.S, src.T, src.options
        if V ** T <= ENUM_LIMIT:
            _ENTROPY[key] = float(_entropy(src.window_law(T))), 0.0, "exact"
        else:
            nll = -src.log_prob(src._draw(o.entropy_draws, generator(o.structure_seed, 9, V, S, T).random))
            _ENTROPY[key] = float(nll.mean()), float(nll.std(ddof=1) / np.sqrt(nll.size)), "monte-carlo"
    return _ENTROPY[key]


class HMMTextSource:
    """A hidden-Markov language with exact window laws: ``sample`` returns ``(R, n, T)`` int64.

    S hidden states follow a Markov chain A = stay·I + (1 − stay)·K (K's rows ∝ exp(z), z ~ N(0, 1)),
    started from its stationary law π; state s emits token j with B[s, j] ∝ π_j^Zipf exp(β u_sj) (the
    ``markov-text`` tilt, per state instead of per context). The token process is stationary but of
    no finite order, so an n-gram model of any order is misspecified (its exact KL stays > 0).

    Exact: every window law, by the forward recursion α_{w+1}(x, v; s') = Σ_s α_w(x; s) A[s, s'] B[s', v]
    over all V^w windows (``window_law``), and log p(x) of any sequence (``log_prob``, the scaled forward
    algorithm). The sequence entropy H_T = −E log p(X_{1..T}) has no closed form: it is exact (enumeration
    of all V^T sequences) when V^T ≤ ``ENUM_LIMIT``, otherwise a Monte-Carlo mean of −log p over
    ``entropy_draws`` sequences drawn from the fixed structure seed, with its standard error in
    ``truth["sequence_entropy_se"]`` (``truth["sequence_entropy_method"]`` says which). ``exact-kl`` is then
    exact in its cross-entropy and carries that s.e. / T in its KL.
    """

    class Options(Options):
        vocab: PositiveInt = Field(30, ge=2, description="vocabulary size V")
        states: PositiveInt = Field(4, le=1000, description="hidden states S")
        seq_len: PositiveInt = Field(16, ge=2, description="tokens per sequence T")
        exponent: PositiveFloat = Field(1.1, description="Zipf exponent s of the base emission law π_j ∝ (j+1)^-s")
        strength: float = Field(2.0, ge=0.0, description="state dependence β of the emissions: B[s, j] ∝ π_j exp(β u_sj)")
        stay: float = Field(0.8, ge=0.0, lt=1.0, description="extra probability of keeping the hidden state")
        structure_seed: int = Field(0, ge=0, description="seed of the fixed structure (the language, not the draws)")
        entropy_draws: PositiveInt = Field(100_000, ge=1000, description="Monte-Carlo sequences for H_T when "
                                           "V^T exceeds the enumeration limit (2^20)")

    def __init__(self, options: "HMMTextSource.Options" = None):
        o = self.options = options or self.Options()
        V, S, T = o.vocab, o.states, o.seq_len
        g = generator(o.structure_seed, 8, V, S)
        logits = np.log(zipf_probs(o.exponent, V))[None, :] + o.strength * g.standard_normal((S, V))
        B = np.exp(logits - logits.max(1, keepdims=True))
        self.emit = B / B.sum(1, keepdims=True)  # (S, V)
        K = np.exp(g.standard_normal((S, S)))
        self.hidden_trans = o.stay * np.eye(S) + (1 - o.stay) * K / K.sum(1, keepdims=True)  # (S, S)
        self.hidden_init = stationary(self.hidden_trans, S, 1)  # (S,)
        self.V, self.S, self.T = V, S, T
        self._emit_t = np.ascontiguousarray(self.emit.T)  # (V, S)
        h, se, method = _hmm_entropy(self, tuple(sorted(o.model_dump().items())))
        self.info = SourceInfo(dim=T, kind="tokens", n_categories=V, seq_len=T, vocab_size=V, truth={
            "probs": self.window_law(1), "hidden_init": self.hidden_init, "hidden_trans": self.hidden_trans,
            "emission": self.emit, "sequence_entropy": h, "sequence_entropy_se": se,
            "sequence_entropy_method": method, "window_law": self.window_law, "log_prob": self.log_prob})

    def window_law(self, w: int) -> np.ndarray:
        """Exact law ``(V^w,)`` of w consecutive tokens (stationary); oldest token most significant."""
        if self.V ** w > MAX_STATES * 8:
            raise ConfigError("data.vocab", self.V, f"vocab ** {w} at most {MAX_STATES * 8} (dense window laws)")
        alpha = self.hidden_init[None, :] * self._emit_t  # (V, S): P(x_1 = v, h_1 = s)
        for _ in range(1, w):
            alpha = (np.einsum("ws,st->wt", alpha, self.hidden_trans)[:, None, :] * self._emit_t[None, :, :]).reshape(-1, self.S)
        return alpha.sum(1)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """Exact log p(x) ``(...)`` of token sequences ``x (..., t)`` (scaled forward algorithm)."""
        x = np.asarray(x, dtype=np.int64)
        alpha = self.hidden_init * self._emit_t[x[..., 0]]  # (..., S)
        out = np.zeros(x.shape[:-1])
        for t in range(x.shape[-1]):
            if t:
                # einsum, not @: BLAS threads on (n, S) x (S, S) were 7x slower on a loaded machine
                alpha = np.einsum("...s,st->...t", alpha, self.hidden_trans) * self._emit_t[x[..., t]]
            c = alpha.sum(-1)
            out += np.log(c)
            alpha = alpha / c[..., None]
        return out

    def _draw(self, shape, uniform) -> np.ndarray:
        """Sequences of shape ``(*shape, T)`` from ``uniform(shape + (2T,))`` (hidden and emission uniforms)."""
        shape = (shape,) if np.isscalar(shape) else tuple(shape)
        u = uniform(shape + (2 * self.T,))  # Streams.uniform prepends the replicate axis
        trans_cdf, emit_cdf = np.cumsum(self.hidden_trans, 1), np.cumsum(self.emit, 1)
        state = _inverse_cdf(np.cumsum(self.hidden_init), u[..., 0])
        out = np.empty(u.shape[:-1] + (self.T,), dtype=np.int64)
        for t in range(self.T):
            if t:
                state = _inverse_cdf(trans_cdf[state], u[..., 2 * t])
            out[..., t] = _inverse_cdf(emit_cdf[state], u[..., 2 * t + 1])
        return out

    def sample(self, n: int, streams: Streams) -> np.ndarray:
        """``(R, n, T)``: h_1 ~ π, then per token one uniform for the emission and one for the next state."""
        return self._draw((int(n),), lambda shape: streams.uniform(*shape))


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
