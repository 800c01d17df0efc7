"""The ``transformer`` family: a small decoder-only transformer LM per replicate, trained as one batched ensemble.

Architecture (Vaswani et al. 2017; GPT-style pre-norm, Radford et al. 2019): token and learned
position embeddings of width D, ``layers`` blocks of causal multi-head self-attention and a 4D MLP
(GELU), a final LayerNorm and a linear head over the V tokens. Position 0 reads a start symbol
(index V), so p(x_0) is modelled too and ``log_prob`` is the exact sequence log-likelihood.

Replicates are a batch axis: every weight is stored ``(R, ...)`` and applied with ``baddbmm``; the
loss is the sum of the R per-replicate mean cross-entropies, so each replicate's gradient and
Adam's elementwise update are those of training it alone (``training.minimise``). Initial weights
and minibatch indices come from each replicate's own generator (``streams.generators()``), so
replicate r's numbers do not depend on R. ``ensemble: sequential`` trains the R models one after
another instead (the benchmark's baseline; same law, not the same bits).

Warm start (``loop.warm_start``): generation g starts from generation g − 1's weights and trains
``finetune_steps`` steps — fine-tuning from the previous generation, as in Shumailov et al. (2024,
OPT-125m) and Gerstgrasser et al. (2024). Sampling is ``decoding.decode`` on the network's
next-token log-probabilities (temperature = ``sampling.bias``, top-k, top-p, beams, repetition penalty).

torch is imported on first use. Shapes: tokens ``(R, n, T)`` int64.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field, PositiveInt

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams
from . import training
from .decoding import decode
from .torch_util import require_torch, resolve_device


@functools.lru_cache(maxsize=None)
def _net_class():
    torch = require_torch()
    nn, F = torch.nn, torch.nn.functional

    def normal(gens, R, shape, std, device):
        if gens is None:
            return torch.zeros((R, *shape), device=device)
        return torch.stack([torch.randn(shape, generator=g, device=device) * std for g in gens])

    class BatchedLM(nn.Module):
        """R decoder-only transformers: ``forward(x (R, B, t) int64) -> logits (R, B, t, V)``."""

        def __init__(self, R, V, T, D, heads, layers, gens, device):
            super().__init__()
            self.R, self.V, self.D, self.heads = R, V, D, heads
            P = lambda *shape, std=0.02: nn.Parameter(normal(gens, R, shape, std, device))  # noqa: E731
            Z = lambda *shape: nn.Parameter(torch.zeros((R, *shape), device=device))  # noqa: E731
            O = lambda *shape: nn.Parameter(torch.ones((R, *shape), device=device))  # noqa: E731
            self.emb, self.pos = P(V + 1, D), P(T, D)
            proj_std = 0.02 / math.sqrt(2 * layers)
            self.blocks = nn.ModuleList()
            for _ in range(layers):
                b = nn.ParameterDict({
                    "g1": O(1, D), "b1": Z(1, D), "wqkv": P(D, 3 * D), "bqkv": Z(1, 3 * D),
                    "wo": P(D, D, std=proj_std), "bo": Z(1, D), "g2": O(1, D), "b2": Z(1, D),
                    "w1": P(D, 4 * D), "c1": Z(1, 4 * D), "w2": P(4 * D, D, std=proj_std), "c2": Z(1, D)})
                self.blocks.append(b)
            self.gf, self.bf = O(1, D), Z(1, D)
            self.head, self.bh = P(D, V), Z(1, V)

        @staticmethod
        def _ln(h, g, b):
            # the fused kernel normalises each row; the per-replicate gain and bias (R, 1, D) follow
            # (h.var(-1) alone was 14% of a training step)
            return torch.addcmul(b, F.layer_norm(h, h.shape[-1:], eps=1e-5), g)

        def forward(self, x):
            R, B, t = x.shape
            D, H = self.D, self.heads
            rows = torch.arange(R, device=x.device)[:, None, None]
            h = (self.emb[rows, x] + self.pos[:, None, :t, :]).reshape(R, B * t, D)
            for blk in self.blocks:
                a = torch.baddbmm(blk["bqkv"], self._ln(h, blk["g1"], blk["b1"]), blk["wqkv"])  # (R, Bt, 3D)
                q, k, v = a.reshape(R * B, t, 3, H, D // H).permute(2, 0, 3, 1, 4)  # each (RB, H, t, dh)
                att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                att = att.permute(0, 2, 1, 3).reshape(R, B * t, D)
                h = h + torch.baddbmm(blk["bo"], att, blk["wo"])
                m = F.gelu(torch.baddbmm(blk["c1"], self._ln(h, blk["g2"], blk["b2"]), blk["w1"]))
                h = h + torch.baddbmm(blk["c2"], m, blk["w2"])
            out = torch.baddbmm(self.bh, self._ln(h, self.gf, self.bf), self.head)
            return out.reshape(R, B, t, self.V)

    return BatchedLM


class TransformerModel:
    """R trained transformers (``net``) with the family's decoding rules."""

    def __init__(self, net, V: int, T: int, device: str, decoding=None, train_loss=None, chunk: int = 4096):
        self.net, self.V, self.T, self.device, self.decoding = net, V, T, device, decoding
        self.R = net.R
        self.train_loss = np.zeros(self.R) if train_loss is None else train_loss
        self.chunk = chunk

    def _inputs(self, x):
        torch = require_torch()
        x = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.long, device=self.device)
        bos = torch.full(x.shape[:2] + (1,), self.V, dtype=torch.long, device=self.device)
        return torch.cat([bos, x], dim=-1)

    def next_logp(self, prefix: np.ndarray) -> np.ndarray:
        """``(R, M, V)`` log p(next token | prefix (R, M, t))."""
        torch = require_torch()
        R, M, t = prefix.shape
        out = []
        with torch.no_grad():
            step = max(1, self.chunk // max(t + 1, 1))
            for lo in range(0, M, step):
                logits = self.net(self._inputs(prefix[:, lo:lo + step]))[:, :, -1]
                out.append(torch.log_softmax(logits.double(), -1).cpu().numpy())
        return np.concatenate(out, axis=1)

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        return decode(self.next_logp, self.R, m, self.T, streams.uniform(m, self.T), bias, self.decoding)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log p(sequence) ``(R, n)``."""
        torch = require_torch()
        x = np.asarray(x, dtype=np.int64)
        out = []
        with torch.no_grad():
            step = max(1, self.chunk // self.T)
            for lo in range(0, x.shape[1], step):
                part = x[:, lo:lo + step]
                logits = self.net(self._inputs(part[..., :-1]))
                lp = torch.log_softmax(logits.double(), -1)
                tgt = torch.as_tensor(part, device=self.device)
                out.append(lp.gather(-1, tgt[..., None])[..., 0].sum(-1).cpu().numpy())
        return np.concatenate(out, axis=1)

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        return {"train_loss": np.asarray(self.train_loss, dtype=float)}


class TransformerFamily:
    """The ``transformer`` family (batched replicate ensemble; warm start fine-tunes)."""

    batched = True
    decodes = True

    class Options(Options):
        width: PositiveInt = Field(32, description="model width D")
        heads: PositiveInt = Field(2, description="attention heads (must divide width)")
        layers: PositiveInt = Field(1, description="transformer blocks")
        steps: PositiveInt = Field(300, description="Adam steps when trained from scratch")
        finetune_steps: Optional[PositiveInt] = Field(None, description="steps when warm-started (default: steps)")
        batch_size: PositiveInt = Field(32, description="sequences per step per replicate")
        lr: float = Field(3e-3, gt=0.0, description="Adam learning rate")
        ensemble: Literal["batched", "sequential"] = Field(
            "batched", description="train all R replicates as one batched network, or one after another")
        device: str = Field("cpu", description="auto, cpu or cuda")
        threads: Optional[PositiveInt] = Field(None, description="torch intra-op threads (default: all given)")

    def __init__(self, options: "TransformerFamily.Options", info: SourceInfo):
        self.options, self.info, self.decoding = options, info, None
        if not info.tokens:
            raise ConfigError("model.family", "transformer", f"a token source (markov-text, text), not kind {info.kind!r}")
        if options.width % options.heads:
            raise ConfigError("model.heads", options.heads, f"a divisor of model.width ({options.width})")
        require_torch()
        self.device = resolve_device(options.device)

    def _net(self, R, gens):
        o = self.options
        return _net_class()(R, self.info.vocab_size, self.info.seq_len, o.width, o.heads, o.layers, gens, self.device)

    def _train(self, net, x, gens, steps):
        torch = require_torch()
        R, n, T = x.shape
        V = self.info.vocab_size
        data = torch.as_tensor(x, device=self.device)
        bos = torch.full((R, n, 1), V, dtype=torch.long, device=self.device)
        inputs = torch.cat([bos, data[..., :-1]], -1)
        draws = training.Draws(gens, {"idx": (f"randint:{n}", (self.options.batch_size,))}, self.device)

        def loss(i):
            idx = draws.step(i)["idx"]  # (R, B)
            xb = inputs.gather(1, idx[..., None].expand(-1, -1, T))
            yb = data.gather(1, idx[..., None].expand(-1, -1, T))
            logits = net(xb)
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), yb.reshape(-1), reduction="none")
            return ce.reshape(R, -1).mean(1)

        return training.minimise(net, self.options.lr, steps, loss, self.device)

    def fit(self, data: np.ndarray, streams: Streams, init: Optional[TransformerModel] = None) -> TransformerModel:
        o, V = self.options, self.info.vocab_size
        x, gens = training.begin_fit(data, streams, self.info.seq_len, self.device, o.threads, dtype=np.int64)
        if x.min() < 0 or x.max() >= V:
            raise ConfigError("data.vocab_size", V, f"tokens in [0, {V}) (the data hold {x.min()}..{x.max()})")
        training.check_init(init, x.shape[0])
        steps = o.steps if init is None else (o.finetune_steps or o.steps)
        if o.ensemble == "sequential":
            nets, losses = [], []
            for r in range(x.shape[0]):
                net = self._net(1, [gens[r]])
                if init is not None:
                    net.load_state_dict({k: v[r:r + 1] for k, v in init.net.state_dict().items()})
                losses.append(self._train(net, x[r:r + 1], [gens[r]], steps))
                nets.append(net)
            net = self._net(x.shape[0], None)
            net.load_state_dict({k: require_torch().cat([n.state_dict()[k] for n in nets]) for k in net.state_dict()})
            return TransformerModel(net.eval(), V, self.info.seq_len, self.device, self.decoding, np.concatenate(losses))
        net = self._net(x.shape[0], gens)
        if init is not None:
            net.load_state_dict(init.net.state_dict())
        loss = self._train(net, x, gens, steps)
        return TransformerModel(net.eval(), V, self.info.seq_len, self.device, self.decoding, loss)

    def save(self, model: TransformerModel, path: Path) -> None:
        training.save(path, "transformer", self.options, model.R, self.info.seq_len,
                      {"net": model.net.state_dict(), "stats": {"train_loss": model.train_loss}})

    def load(self, path: Path) -> TransformerModel:
        groups, meta = training.load(path, "transformer", self.options, self.info.seq_len, self.device)
        net = self._net(meta["replicates"], None)
        net.load_state_dict(groups["net"])
        loss = training.numpy_group(groups["stats"])["train_loss"]
        return TransformerModel(net.eval(), self.info.vocab_size, self.info.seq_len, self.device, self.decoding, loss)
