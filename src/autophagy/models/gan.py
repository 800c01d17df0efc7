"""Generative adversarial networks (Goodfellow et al. 2014) for R replicate chains, trained as one ensemble.

MAD's headline loops (Alemohammad et al. 2023, §4–5: StyleGAN2 retrained on its own samples) at CPU
size. Objective: the non-saturating GAN loss with an R1 gradient penalty on real data (Mescheder et
al. 2018, eq. 9; the StyleGAN2 recipe):

    L_D = E softplus(−D(x)) + E softplus(D(G(z))) + (γ/2) E ‖∇_x D(x)‖²,     L_G = E softplus(−D(G(z))),

one discriminator step then one generator step per training step, Adam with β = (0.5, 0.99).
Networks: MLPs (LeakyReLU 0.2) for vectors; for image sources a small conv generator
(latent → 2c × H/2 × W/2 → nearest ×2 upsampling → two 3×3 convs → tanh) and conv discriminator
(two 3×3 convs, 2×2 average pooling, two convs, linear head). Data are mapped to network space by
``nets.Scaler`` (standardised vectors; images [0, 1] -> [−1, 1], samples clipped back).

Sampling bias λ (``sampling.bias``) is latent truncation — MAD's ψ (StyleGAN's truncation trick
w' = w̄ + ψ(w − w̄), here with the latent mean 0): z ~ N(0, I) is scaled to ψ·z with ψ = λ. λ = 1 is
plain sampling; smaller λ trades diversity (recall) for quality (precision).

Replicates: every layer holds R replicates' weights (``nets.layers()``), the losses are summed over
replicates and Adam is elementwise, so replicate r trains exactly as if alone; initial weights
(generator first, then discriminator), minibatches and latents come from replicate r's own torch
generator (seed tree). Warm start (``loop.warm_start``) copies both networks and the data scaling and
trains them ``finetune_steps`` more steps with fresh optimisers. Checkpoints: ``training.save``.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field, PositiveInt

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams
from . import nets, training
from .torch_util import require_torch, resolve_device, torch_generator

_SAMPLE_CHUNK = 4096


@functools.lru_cache(maxsize=None)
def _modules():
    """Generator and discriminator classes, defined on first use (no torch import at module import)."""
    torch = require_torch()
    nn, F = torch.nn, torch.nn.functional
    BLinear, BConv = nets.layers()

    class MLP(nn.Module):
        """``(R, B, i) -> (R, B, o)``: ``layers`` hidden layers of width ``hidden``, LeakyReLU(0.2)."""

        def __init__(self, R, i, o, hidden, layers, gens, device):
            super().__init__()
            widths = [i] + [hidden] * layers + [o]
            self.lins = nn.ModuleList([BLinear(R, a, b, gens, device) for a, b in zip(widths[:-1], widths[1:])])

        def forward(self, x):
            x = F.leaky_relu(narrow(self.lins[0], x), 0.2)
            for lin in self.lins[1:-1]:
                x = F.leaky_relu(lin(x), 0.2)
            return head(self.lins[-1], x)

    def narrow(lin, x):
        """``lin(x)``; with few inputs (≤ 8: the discriminator's data dimension) as a sum of products, so that the
        gradient with respect to x (the generator's loss, R1) is a plain reduction: the bmm it replaces gave
        replicate r gradients whose last bits changed with R."""
        if lin.weight.shape[1] > 8:
            return lin(x)
        out = lin.bias
        for i in range(lin.weight.shape[1]):
            out = out + x[..., i:i + 1] * lin.weight[:, i].unsqueeze(1)
        return out

    def head(lin, x):
        """``lin(x)``; a one-output layer as a product and a sum: a (B, h) @ (h, 1) bmm's backward is a k = 1
        product whose kernel (and last bits) changed with R, breaking replicate independence."""
        if lin.weight.shape[-1] != 1:
            return lin(x)
        return (x * lin.weight[..., 0].unsqueeze(1)).sum(-1, keepdim=True) + lin.bias

    def per_image(fn, h):
        """Apply a 4-D op to ``(R, B, C, H, W)`` maps."""
        out = fn(h.flatten(0, 1))
        return out.reshape(*h.shape[:2], *out.shape[1:])

    class ConvG(nn.Module):
        def __init__(self, R, L, shape, c, gens, device):
            super().__init__()
            self.shape, self.c = tuple(shape), c
            self.half = (max(1, shape[0] // 2), max(1, shape[1] // 2))
            self.fc = BLinear(R, L, 2 * c * self.half[0] * self.half[1], gens, device)
            self.c1, self.c2 = BConv(R, 2 * c, c, gens, device), BConv(R, c, 1, gens, device)

        def forward(self, z):
            R, B, _ = z.shape
            h = F.leaky_relu(self.fc(z), 0.2).reshape(R, B, 2 * self.c, *self.half)
            h = per_image(lambda y: F.interpolate(y, size=self.shape, mode="nearest"), h)
            h = F.leaky_relu(self.c1(h), 0.2)
            return nets.aligned(torch.tanh, self.c2(h)).reshape(R, B, -1)

    class ConvD(nn.Module):
        def __init__(self, R, shape, c, gens, device):
            super().__init__()
            self.shape = tuple(shape)
            half = (max(1, shape[0] // 2), max(1, shape[1] // 2))
            self.c1, self.c2 = BConv(R, 1, c, gens, device), BConv(R, c, 2 * c, gens, device)
            self.head = BLinear(R, 2 * c * half[0] * half[1], 1, gens, device)

        def forward(self, x):
            R, B, _ = x.shape
            h = F.leaky_relu(self.c1(x.reshape(R, B, 1, *self.shape)), 0.2)
            h = per_image(lambda y: F.avg_pool2d(y, 2), F.leaky_relu(self.c2(h), 0.2))
            return head(self.head, h.reshape(R, B, -1))

    return MLP, ConvG, ConvD


class GANModel:
    """R fitted generators (one batched network) and their discriminators; see the module docstring."""

    def __init__(self, family: "GANFamily", gen, disc, scaler: nets.Scaler, stats: dict):
        self.family, self.gen, self.disc, self.scaler, self.stats = family, gen, disc, scaler, stats
        self.R, self.dim = scaler.shift.shape[0], family.info.dim

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """``(R, m, d)``: G(ψ·z), z ~ N(0, I), with truncation ψ = ``bias``."""
        torch = require_torch()
        f = self.family
        if not 0 < bias <= 1:
            raise ConfigError("sampling.bias", bias, "a truncation ψ in (0, 1]")
        gens = [torch_generator(g, f.device) for g in streams.generators()]
        out = np.empty((self.R, m, self.dim))
        with torch.no_grad():
            for start in range(0, m, _SAMPLE_CHUNK):
                b = min(_SAMPLE_CHUNK, m - start)
                z = torch.stack([torch.randn(b, f.options.latent_dim, generator=g, device=f.device) for g in gens])
                out[:, start:start + b] = self.scaler.inverse(self.gen(z * bias).cpu().numpy())
        return out

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """``train_loss_d``, ``train_loss_g``: mean losses over the last training steps, per replicate ``(R,)``."""
        return {k: np.asarray(v, dtype=float) for k, v in self.stats.items()}


class GANFamily:
    """The ``gan`` family: ``fit`` trains R GANs on ``(R, n, d)`` data (images flattened)."""

    batched = True
    has_log_prob = False  # implicit models: no density

    class Options(Options):
        architecture: Literal["auto", "mlp", "conv"] = Field("auto", description="auto: conv for image sources, else mlp")
        latent_dim: PositiveInt = Field(8, description="dimension of the generator's latent z")
        hidden: PositiveInt = Field(128, description="MLP width (generator and discriminator)")
        layers: PositiveInt = Field(3, description="MLP hidden layers")
        channels: PositiveInt = Field(16, description="conv channels (c, and 2c at half resolution)")
        train_steps: PositiveInt = Field(3000, description="training steps per fit (one D and one G update each)")
        finetune_steps: Optional[PositiveInt] = Field(
            None, description="steps when fine-tuning the previous generation (loop.warm_start); default train_steps")
        batch_size: PositiveInt = 128
        lr: float = Field(5e-4, gt=0, description="Adam learning rate (both networks)")
        r1: float = Field(0.1, ge=0, description="γ of the R1 penalty (γ/2)·E‖∇D(x_real)‖² (Mescheder et al. 2018)")
        scaling: Literal["auto", "standardize", "image", "none"] = Field(
            "auto", description="auto: image ([0,1] -> [-1,1], clipped) for image sources, else per-replicate standardize")
        device: Literal["auto", "cpu", "cuda"] = "auto"
        threads: Optional[PositiveInt] = Field(1, description="torch intra-op threads; null = all CPUs given")

    def __init__(self, options: "GANFamily.Options", info: SourceInfo):
        self.options, self.info = options, info
        self.arch = nets.architecture(options.architecture, info)
        self.scaling = nets.scaling_mode(options.scaling, info)
        self.device = resolve_device(options.device)

    def _new(self, R: int, gens):
        MLP, ConvG, ConvD = _modules()
        o, dev = self.options, self.device
        if self.arch == "conv":
            shape = tuple(self.info.image_shape)
            return ConvG(R, o.latent_dim, shape, o.channels, gens, dev), ConvD(R, shape, o.channels, gens, dev)
        return (MLP(R, o.latent_dim, self.info.dim, o.hidden, o.layers, gens, dev),
                MLP(R, self.info.dim, 1, o.hidden, o.layers, gens, dev))

    def _copy(self, R: int, g_state: dict, d_state: dict):
        gen, disc = self._new(R, None)
        gen.load_state_dict({k: v.detach().clone().to(self.device) for k, v in g_state.items()})
        disc.load_state_dict({k: v.detach().clone().to(self.device) for k, v in d_state.items()})
        return gen, disc

    def fit(self, data: np.ndarray, streams: Streams, init: Optional[GANModel] = None) -> GANModel:
        """Train R GANs on ``data (R, n, d)``; ``init`` (warm start) supplies both networks and the scaling."""
        torch = require_torch()
        o = self.options
        data, gens = training.begin_fit(data, streams, self.info.dim, self.device, o.threads)
        R = data.shape[0]
        training.check_init(init, R)
        if init is not None:
            gen, disc = self._copy(R, init.gen.state_dict(), init.disc.state_dict())
            scaler = init.scaler
        else:
            gen, disc = self._new(R, gens)
            scaler = nets.Scaler.fit(self.scaling, data)
        x = torch.from_numpy(scaler.forward(data)).to(self.device)
        steps = (o.finetune_steps or o.train_steps) if init is not None else o.train_steps
        tail = self._train(gen, disc, x, gens, steps)
        gen.eval()
        disc.eval()
        return GANModel(self, gen, disc, scaler, {"train_loss_d": tail[0], "train_loss_g": tail[1]})

    def _train(self, gen, disc, x, gens, steps: int) -> np.ndarray:
        """Alternating D / G Adam steps; returns the last steps' mean losses ``(2, R)`` (D, G)."""
        torch = require_torch()
        F = torch.nn.functional
        o = self.options
        R, n, d = x.shape
        B, L = o.batch_size, o.latent_dim
        draws = training.Draws(gens, {"idx": (f"randint:{n}", (B,)), "zd": ("normal", (B, L)), "zg": ("normal", (B, L))},
                               self.device)
        opt_g = training.adam(gen.parameters(), o.lr, betas=(0.5, 0.99))
        opt_d = training.adam(disc.parameters(), o.lr, betas=(0.5, 0.99))
        gen.train()
        disc.train()

        def step(i):
            r = draws.step(i)
            with torch.no_grad():
                fake = gen(r["zd"])
            # one discriminator pass on [real, fake]: two passes whose gradients accumulate gave replicate r
            # results that changed with R in the last bits
            both = torch.cat([training.gather_rows(x, r["idx"]), fake], 1)
            if o.r1 > 0:
                both.requires_grad_(True)
            out = disc(both)
            d_real, d_fake = out[:, :B], out[:, B:]
            # softplus through nets.aligned: a (R, B, 1) tensor's scalar tail made replicate r depend on R
            loss_d = (nets.aligned(F.softplus, -d_real) + nets.aligned(F.softplus, d_fake)).mean(dim=(1, 2))  # (R,)
            total = loss_d
            if o.r1 > 0:
                (grad,) = torch.autograd.grad(d_real.sum(), both, create_graph=True)  # per replicate: D_r sees x_r only
                total = loss_d + 0.5 * o.r1 * (grad[:, :B] ** 2).sum(-1).mean(-1)
            opt_d.zero_grad(set_to_none=True)
            total.sum().backward()
            opt_d.step()
            disc.requires_grad_(False)  # the generator step leaves D's gradients alone
            loss_g = nets.aligned(F.softplus, -disc(gen(r["zg"]))).mean(dim=(1, 2))
            opt_g.zero_grad(set_to_none=True)
            loss_g.sum().backward()
            opt_g.step()
            disc.requires_grad_(True)
            return torch.stack([loss_d.detach(), loss_g.detach()])

        return training.run_steps(steps, step, self.device)

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, model: GANModel, path: Path) -> None:
        """Write ``weights.pt`` and ``meta.json`` into the directory ``path`` (see ``training.save``)."""
        training.save(path, "gan", self.options, model.R, self.info.dim,
                      {"g": model.gen.state_dict(), "d": model.disc.state_dict(), "scaler": model.scaler.state(),
                       "stats": model.stats})

    def load(self, path: Path) -> GANModel:
        """Read a model written by ``save`` (same options and dimension) onto this family's device."""
        groups, meta = training.load(path, "gan", self.options, self.info.dim, self.device)
        gen, disc = self._copy(int(meta["replicates"]), groups["g"], groups["d"])
        gen.eval()
        disc.eval()
        return GANModel(self, gen, disc, nets.Scaler.from_state(self.scaling, groups["scaler"]),
                        training.numpy_group(groups["stats"]))
