"""Variational autoencoders (Kingma & Welling 2014) for R replicate chains, trained as one ensemble.

Follows Tarchi (2024), "Studying data variability in variational autoencoders using a chain
model": each generation's VAE is trained on images decoded by the previous one, and the
variability of the data falls. The loss per example is

    recon(x, x̂) + λ · KL[q(z|x) || N(0, I)]                                  (Tarchi, slide "LOSS")
      + K · | mean_ij ||x_i − x_j||² − mean_ij ||x̂_i − x̂_j||² |               (variability loss, per batch)

with λ = ``kl_weight`` and K = ``variability_weight``. Tarchi sums pairwise MSEs over the
batch; we average over pairs (so K does not scale with the batch size) and compute the mean
exactly as 2·Σ_pixels Var_batch. Generation draws z ~ N(0, s² λ_MAD I) with s =
``latent_scale`` (s > 1 is Tarchi's widening δ, read as s = 1 + δ; s < 1 is a sampling bias)
and λ_MAD the engine's ``sampling.bias``; the decoder mean is returned (``output: mean``) or a
draw from the likelihood (``output: sample``).

Replicates as a batch axis: every layer holds its R replicates' weights stacked along dim 0
(``nets.layers()``, shared with the other torch families: linear weights ``(R, in, out)`` applied with
``baddbmm``; conv weights ``(R, c_out, c_in, 3, 3)`` applied as one channels-last convolution per replicate,
``nets.BConv(layout="nhwc")``, so a call's shape never depends on R). The total loss is the sum of the R replicates' losses, so each
replicate's gradient, and Adam's elementwise update, are exactly those of training it alone.
``batched: loop`` trains the replicates one after another with the same code (R = 1) and the
same random draws, for comparison. Each replicate draws its initial weights, minibatch
orders and noise from its own torch generator seeded from the seed tree
(``streams.generators()``): results do not depend on R.

Architectures (Tarchi's FC1, FC2, Conv and asymmetric): ``fc1`` one hidden layer,
``fc2`` two, ``conv`` two 3×3 conv + 2×2 max-pool stages (decoder: nearest upsampling + conv),
``asymmetric`` the conv encoder with the fc2 decoder.

Speed (benchmarks/bench_vae_batched.py, R = 8): the batched ensemble trains the fully connected
variants several times faster than the loop; the conv variants gain less, because their per-replicate
convolutions dominate (figures in docs/neural.md).
``threads`` sets torch's
intra-op threads on every fit. It defaults to 1, as for the other neural families: on a busy
shared machine 2 threads were up to 10x slower than 1 (spinning threads); on an idle one 2 threads
are about 1.5x faster for the preset's network.
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
from .torch_util import require_torch, resolve_device, torch_generator

_CHUNK = 2048  # latent draws decoded at once per replicate when sampling


@functools.lru_cache(maxsize=None)
def _modules():
    """Torch module classes, defined on first use so importing this file does not import torch."""
    torch = require_torch()
    nn, F = torch.nn, torch.nn.functional

    from .nets import layers

    BLinear, BConv = layers()  # (R, B, ...) replicate-major layers shared with the other torch families

    def upsample(y, size):
        """Nearest-neighbour ×2 upsampling of ``(B, C, h, w)`` to ``size`` = (2h or 2h+1, 2w or 2w+1).

        Written as expand + reshape (+ edge padding): F.interpolate is far slower on CPU here."""
        B, C, h, w = y.shape
        if size == (2 * h, 2 * w):  # interpolate's backward is ~2.5x faster than expand's sum-reduction
            return F.interpolate(y, scale_factor=2, mode="nearest")
        y = y[:, :, :, None, :, None].expand(B, C, h, 2, w, 2).reshape(B, C, 2 * h, 2 * w)
        if size != (2 * h, 2 * w):
            y = F.pad(y, (0, size[1] - 2 * w, 0, size[0] - 2 * h), mode="replicate")
        return y

    class VAENet(nn.Module):
        """Encoder/decoder pair for R replicates; data ``(R, B, d)``, latents ``(R, B, L)``."""

        def __init__(self, R, d, opts, image_shape, gens, device):
            super().__init__()
            self.R, self.d, self.L, self.arch = R, d, opts.latent_dim, opts.architecture
            h, L, c = opts.hidden, opts.latent_dim, opts.channels
            lin = lambda i, o: BLinear(R, i, o, gens, device)  # noqa: E731 - layer order = init draw order
            # batched: grouped convolutions in fixed blocks of replicates (nets.BConv); loop: conv2d per replicate
            conv = lambda i, o: BConv(R, i, o, gens, device, layout="nhwc")  # noqa: E731
            conv_enc = self.arch in ("conv", "asymmetric")
            if conv_enc:
                H, W = image_shape
                self.sizes = [(H, W), (H // 2, W // 2), (H // 4, W // 4)]
                flat = 2 * c * self.sizes[2][0] * self.sizes[2][1]
                self.enc_conv = nn.ModuleList([conv(1, c), conv(c, 2 * c)])
                self.enc_fc = nn.ModuleList([lin(flat, h)])
            else:
                self.enc_fc = nn.ModuleList([lin(d, h)] + ([lin(h, h)] if self.arch == "fc2" else []))
            self.enc_head = lin(h, 2 * L)
            if self.arch == "conv":
                self.dec_fc = nn.ModuleList([lin(L, flat)])
                self.dec_conv = nn.ModuleList([conv(2 * c, c), conv(c, 1)])
                self.c = c
            else:
                widths = [L, h] + ([h] if self.arch != "fc1" else []) + [d]
                self.dec_fc = nn.ModuleList([lin(i, o) for i, o in zip(widths[:-1], widths[1:])])

        def encode(self, x):
            """``(R, B, d) -> (mu, logvar)``, each ``(R, B, L)``."""
            R, B = x.shape[:2]
            if hasattr(self, "enc_conv"):
                y = x.reshape(R, B, 1, *self.sizes[0])
                for conv in self.enc_conv:  # pool, then ReLU: the same values and gradients as ReLU, then pool
                    y = F.relu(F.max_pool2d(conv(y).flatten(0, 1), 2))
                    y = y.reshape(R, B, *y.shape[1:])
                y = y.reshape(R, B, -1)
            else:
                y = x
            for layer in self.enc_fc:
                y = F.relu(layer(y))
            mu, logvar = self.enc_head(y).chunk(2, dim=-1)
            return mu, logvar.clamp(-12.0, 8.0)

        def decode(self, z):
            """``(R, B, L) -> (R, B, d)`` logits (pre-activation outputs)."""
            R, B = z.shape[:2]
            if self.arch == "conv":
                up = lambda y, size: upsample(y.flatten(0, 1).contiguous(memory_format=torch.channels_last),  # noqa: E731
                                              size).reshape(R, B, y.shape[2], *size)
                y = F.relu(self.dec_fc[0](z)).reshape(R, B, 2 * self.c, *self.sizes[2])
                y = F.relu(self.dec_conv[0](up(y, self.sizes[1])))
                y = self.dec_conv[1](up(y, self.sizes[0]))
                return y.reshape(R, B, -1)
            y = z
            for layer in self.dec_fc[:-1]:
                y = F.relu(layer(y))
            return self.dec_fc[-1](y)

    return torch, VAENet


class VAEModel:
    """R fitted VAEs (one ``VAENet`` holding all replicates); see the module docstring."""

    def __init__(self, net, options, info_dim: int, image_shape, device: str, sigmoid: bool, stats: dict):
        self.net, self.options, self.dim, self.image_shape = net, options, info_dim, image_shape
        self.device, self.sigmoid, self.stats = device, sigmoid, stats
        self.R = net.R

    def decode_mean(self, z):
        """Decoder mean E[x|z] for latents ``(R, B, L)``."""
        logits = self.net.decode(z)
        return logits.sigmoid() if self.sigmoid else logits

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """``(R, m, d)`` draws: z ~ N(0, (latent_scale² · bias) I), then the decoder mean (or a likelihood draw)."""
        torch = require_torch()
        gens = [torch_generator(g, self.device) for g in streams.generators()]
        std = self.options.latent_scale * math.sqrt(bias)
        out = np.empty((self.R, m, self.dim), dtype=np.float64)
        with torch.no_grad():
            for start in range(0, m, _CHUNK):
                b = min(_CHUNK, m - start)
                z = torch.stack([torch.randn(b, self.net.L, generator=g, device=self.device) for g in gens]) * std
                x = self.decode_mean(z)
                if self.options.output == "sample":
                    x = torch.stack([self._draw(x[r], g) for r, g in enumerate(gens)])
                out[:, start:start + b] = x.cpu().double().numpy()
        return out

    def _draw(self, mean, gen):
        torch = require_torch()
        if self.options.likelihood == "bernoulli":
            return torch.bernoulli(mean, generator=gen)
        return mean + self.options.output_std * torch.randn(mean.shape, generator=gen, device=mean.device)

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """Last-epoch training loss terms per replicate (per-example means): ``train_loss``, ``train_recon``, ``train_kl``."""
        return {k: np.asarray(v, dtype=float) for k, v in self.stats.items()}


class VAEFamily:
    """The ``vae`` family: ``fit`` trains R VAEs on ``(R, n, d)`` data in ``[0, 1]`` (images flattened)."""

    batched = True
    has_log_prob = False  # an ELBO is only a bound: heldout-nll and likelihood curation are rejected up front

    class Options(Options):
        architecture: Literal["fc1", "fc2", "conv", "asymmetric"] = Field(
            "fc2", description="fc1/fc2: fully connected with 1/2 hidden layers; conv; asymmetric: conv encoder, fc2 decoder")
        latent_dim: PositiveInt = 8
        hidden: PositiveInt = Field(128, description="width of the fully connected hidden layers")
        channels: PositiveInt = Field(8, description="conv channels (c, then 2c)")
        kl_weight: float = Field(1.0, ge=0, description="Tarchi's λ: weight of the KL term")
        variability_weight: float = Field(0.0, ge=0, description="Tarchi's K: weight of the variability loss")
        latent_scale: float = Field(1.0, gt=0, description="std of the generation-time latent (> 1 widens: Tarchi's 1+δ)")
        likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
        output_std: float = Field(math.sqrt(0.5), gt=0,
                                  description="gaussian likelihood std; the default makes recon = summed squared error")
        output_activation: Literal["auto", "sigmoid", "identity"] = Field(
            "auto", description="auto: sigmoid for bernoulli or image data, identity otherwise")
        output: Literal["mean", "sample"] = Field("mean", description="generate the decoder mean or a likelihood draw")
        epochs: PositiveInt = 20
        batch_size: PositiveInt = 64
        lr: float = Field(1e-3, gt=0)
        device: Literal["auto", "cpu", "cuda"] = "auto"
        threads: PositiveInt = Field(1, description="torch intra-op threads, set on every fit (see the module docstring)")
        batched: Literal["auto", "loop"] = Field("auto", description="auto: one batched ensemble; loop: one replicate at a time")

    def __init__(self, options: "VAEFamily.Options", info: SourceInfo):
        self.options, self.info = options, info
        self.image_shape = tuple(info.image_shape) if info.image_shape else None
        if options.architecture in ("conv", "asymmetric"):
            if self.image_shape is None or len(self.image_shape) != 2:
                raise ConfigError("model.architecture", options.architecture,
                                  f"fc1 or fc2 for non-image data (source kind {info.kind!r})")
            if min(self.image_shape) < 4 or self.image_shape[0] * self.image_shape[1] != info.dim:
                raise ConfigError("model.architecture", options.architecture,
                                  f"fc1 or fc2 for images of shape {self.image_shape} (conv needs H, W >= 4 and H*W = dim)")
        act = options.output_activation
        if act == "auto":
            act = "sigmoid" if options.likelihood == "bernoulli" or info.kind == "image" else "identity"
        if options.likelihood == "bernoulli" and act != "sigmoid":
            raise ConfigError("model.output_activation", options.output_activation, "sigmoid or auto for a bernoulli likelihood")
        self.sigmoid = act == "sigmoid"
        self.device = resolve_device(options.device)

    # -- training ---------------------------------------------------------------------------
    def fit(self, data: np.ndarray, streams: Streams, init: Optional[VAEModel] = None) -> VAEModel:
        """Train R VAEs on ``data`` ``(R, n, d)``; ``init`` (warm start) supplies starting weights."""
        torch, VAENet = _modules()
        o = self.options
        data, gens = training.begin_fit(data, streams, self.info.dim, self.device, o.threads, np.float32)
        R, n, d = data.shape
        training.check_init(init, R)
        if o.likelihood == "bernoulli" and (data.min() < 0 or data.max() > 1):
            raise ConfigError("model.likelihood", "bernoulli", "gaussian for data outside [0, 1]")
        x = torch.from_numpy(data).to(self.device)
        if o.batched == "auto":
            net = self._new_net(R, gens, init.net if init is not None else None)
            stats = self._train(net, x, gens)
        else:
            nets, parts = [], []
            for r in range(R):
                start = _slice_state(init.net.state_dict(), init.R, r) if init is not None else None
                net_r = self._new_net(1, gens[r:r + 1], None, start)
                parts.append(self._train(net_r, x[r:r + 1], gens[r:r + 1]))
                nets.append(net_r.state_dict())
            net = self._new_net(R, None, None, _cat_states(nets))
            stats = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        net.eval()
        return VAEModel(net, o, d, self.image_shape, self.device, self.sigmoid, stats)

    def _new_net(self, R, gens, copy_from=None, state=None):
        torch, VAENet = _modules()
        fresh = copy_from is None and state is None  # draw initial weights only for a new network
        net = VAENet(R, self.info.dim, self.options, self.image_shape, gens if fresh else None, self.device)
        if copy_from is not None:
            state = copy_from.state_dict()
        if state is not None:
            net.load_state_dict({k: v.detach().clone() for k, v in state.items()})
        return net

    def _train(self, net, x, gens) -> dict[str, np.ndarray]:
        """Adam on the summed per-replicate losses; returns last-epoch means of the loss terms, each ``(R,)``."""
        torch = require_torch()
        F = torch.nn.functional
        o = self.options
        R, n, d = x.shape
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=o.lr, fused=True)
        bs = min(o.batch_size, n)
        for epoch in range(o.epochs):
            perm = torch.stack([torch.randperm(n, generator=g, device=self.device) for g in gens])  # (R, n)
            tot = torch.zeros(3, R, device=self.device)
            for start in range(0, n, bs):
                idx = perm[:, start:start + bs]
                b = idx.shape[1]
                xb = torch.gather(x, 1, idx.unsqueeze(-1).expand(R, b, d))
                mu, logvar = net.encode(xb)
                eps = torch.stack([torch.randn(b, net.L, generator=g, device=self.device) for g in gens])
                logits = net.decode(mu + (0.5 * logvar).exp() * eps)
                mean = logits.sigmoid() if self.sigmoid else logits
                if o.likelihood == "bernoulli":
                    recon = F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(-1)
                else:
                    recon = ((xb - mean) ** 2).sum(-1) / (2 * o.output_std ** 2)
                kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1)  # (R, b)
                loss = (recon + o.kl_weight * kl).mean(1)  # (R,)
                if o.variability_weight > 0 and b > 1:
                    # mean over pairs (i, j) of ||x_i − x_j||² = 2 Σ_pixels Var_batch(x)
                    spread = lambda y: 2 * y.var(dim=1, correction=0).sum(-1)  # noqa: E731
                    loss = loss + o.variability_weight * (spread(xb) - spread(mean)).abs()
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()  # replicates do not interact: each gets its own loss's gradient
                opt.step()
                if epoch == o.epochs - 1:
                    tot += torch.stack([loss.detach() * b, recon.detach().sum(1), kl.detach().sum(1)])
        tot = (tot / n).cpu().double().numpy()
        return {"train_loss": tot[0], "train_recon": tot[1], "train_kl": tot[2]}

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, model: VAEModel, path: Path) -> None:
        """Write ``weights.pt`` and ``meta.json`` into the directory ``path`` (see ``training.save``)."""
        training.save(path, "vae", self.options, model.R, model.dim, {"net": model.net.state_dict(), "stats": model.stats})

    def load(self, path: Path) -> VAEModel:
        """Read a model written by ``save`` (with this family's options) onto this family's device."""
        groups, meta = training.load(path, "vae", self.options, self.info.dim, self.device)
        net = self._new_net(int(meta["replicates"]), None, None, groups["net"])
        net.eval()
        return VAEModel(net, self.options, self.info.dim, self.image_shape, self.device, self.sigmoid,
                        training.numpy_group(groups["stats"]))


def _slice_state(state: dict, R: int, r: int) -> dict:
    """Replicate r's weights from an R-replicate state dict (every tensor stacks replicates in blocks along dim 0)."""
    out = {}
    for k, v in state.items():
        size = v.shape[0] // R
        out[k] = v[r * size:(r + 1) * size]
    return out


def _cat_states(states: list[dict]) -> dict:
    torch = require_torch()
    return {k: torch.cat([s[k] for s in states], dim=0) for k in states[0]}
