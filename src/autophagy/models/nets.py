"""Replicate-batched layers and small networks shared by the torch families (ddpm, flow-matching, vae, gan).

Replicates are a batch axis (see ``docs/architecture.md``): every layer holds its R replicates'
weights stacked along dim 0 — linear weights ``(R, in, out)`` applied with ``baddbmm``, 3×3
convolutions ``(R, out, in, 3, 3)`` applied replicate by replicate (see ``BConv``). The training loss is the sum of the
R per-replicate losses, so each replicate's gradient and Adam's elementwise update are exactly
those of training it alone, and replicate r's numbers do not depend on R.

* ``MLPNet``: ``(x (R, B, d), cond (R, B, c)) -> (R, B, d)``, an MLP on ``[x, cond]`` with SiLU
  activations and the conditioning vector re-injected into every hidden layer.
* ``ConvNet``: the same signature for flattened images ``(R, B, H*W)``: a one-level U-Net
  (two 3×3 convs, 2×2 average pooling, two convs at half resolution, upsampling, a skip
  connection, two convs); ``cond`` enters each stage as a per-channel bias.
* ``time_features``: sinusoidal features of a time in [0, 1] (Vaswani et al. 2017; Ho et al. 2020).
* ``Scaler``: the per-replicate affine map between data space and the network's space
  (standardisation for vectors; [0, 1] -> [-1, 1] for images, with clipping back).
* ``layers()``: the batched layers themselves, for the other families' networks.

The training loop, per-replicate random draws and checkpoints live in ``training.py``.

torch is imported on first use, so importing this module does not import it.
"""
from __future__ import annotations

import functools
import math
import types

import numpy as np

from ..errors import ConfigError
from .torch_util import require_torch

CONV_GROUP = 8  # replicates per grouped convolution call in BConv(grouped=True)
GROUPED_MAX_PIXELS = 64  # BConv(layout="nhwc"): feature maps up to 8×8 run as grouped blocks, larger ones per replicate


@functools.lru_cache(maxsize=None)
def _modules():
    """Module classes, defined on first use so importing this file does not import torch."""
    torch = require_torch()
    nn, F = torch.nn, torch.nn.functional

    def uniform(gens, R, shape, bound, device):
        if gens is None:  # weights to be filled by load_state_dict
            return torch.zeros((R, *shape), device=device)
        return torch.stack([(torch.rand(shape, generator=g, device=device) * 2 - 1) * bound for g in gens])

    class BLinear(nn.Module):
        """R independent affine maps ``(R, B, fan_in) -> (R, B, fan_out)`` (nn.Linear's default init)."""

        def __init__(self, R, fan_in, fan_out, gens, device):
            super().__init__()
            bound = 1.0 / math.sqrt(fan_in)
            self.weight = nn.Parameter(uniform(gens, R, (fan_in, fan_out), bound, device))
            self.bias = nn.Parameter(uniform(gens, R, (1, fan_out), bound, device))

        def forward(self, x):
            return torch.baddbmm(self.bias, x, self.weight)

    class BConv(nn.Module):
        """R independent 3×3 convolutions ``(R, B, c_in, H, W) -> (R, B, c_out, H, W)``.

        ``grouped=False``: one ``conv2d`` call per replicate. ``grouped=True``: replicates in fixed blocks
        of ``CONV_GROUP``, each block one grouped convolution (replicates as channel groups), the last
        block padded with zero replicates. A single grouped call over all R replicates is not used:
        oneDNN picks its algorithm by shape, so replicate r's results changed with R; with blocks of a
        fixed size every call has the same shape whatever R, replicate r always sits at the same place
        in the same block, and groups do not mix, so its numbers do not depend on R (the conformance
        suite checks R = 70 vs 3 and changing the other replicates' data).

        ``layout="nhwc"`` (the VAE's): one channels-last ``conv2d`` per replicate, returning the
        ``(R, B, c_out, H, W)`` result as a permuted view of ``(R, B, H, W, c_out)`` memory. Every call has
        one replicate's shape whatever R, so replicate r's numbers do not depend on R by construction, and
        R = 1 pays for one replicate (the grouped blocks pay for 8). Measured on the 2-core AVX2 CPU
        (threads 1, B = 32, the VAE's 1→8, 8→16, 16→8, 8→1 layers at 24×24 / 12×12): channels-last
        oneDNN per replicate was the fastest R-independent choice; grouped calls over all R were at most
        1.5× faster on the middle layers (and slower on the 1- and 8→1-channel ones, whose results also
        changed with R), and im2col + ``bmm`` variants (unfold, 9 shifted views, one GEMM with shifted
        adds on a padded flat grid) were 1.2–9× slower (docs/neural.md, "Speed").
        """

        def __init__(self, R, c_in, c_out, gens, device, grouped=False, layout="nchw"):
            super().__init__()
            bound = 1.0 / math.sqrt(c_in * 9)
            self.grouped, self.layout = grouped, layout
            self.weight = nn.Parameter(uniform(gens, R, (c_out, c_in, 3, 3), bound, device))
            self.bias = nn.Parameter(uniform(gens, R, (c_out,), bound, device))

        def forward(self, x):
            if self.layout == "nhwc":
                return self._forward_nhwc(x)
            if not self.grouped:  # unbind, not x[r]: x[r]'s backward writes R full-size zero tensors
                return torch.stack([F.conv2d(xr, self.weight[r], self.bias[r], padding=1)
                                    for r, xr in enumerate(x.unbind(0))])
            R, B, C, H, W = x.shape
            G, O = CONV_GROUP, self.weight.shape[1]
            outs = []
            for k, xs, w, b in self._blocks(x):
                y = xs.transpose(0, 1).reshape(B, G * C, H, W)
                out = F.conv2d(y, w.reshape(G * O, C, 3, 3), b.reshape(G * O), padding=1, groups=G)
                outs.append(out.reshape(B, G, O, H, W).transpose(0, 1)[:k])
            return outs[0] if len(outs) == 1 else torch.cat(outs)

        def _blocks(self, x):
            """Fixed blocks of ``CONV_GROUP`` replicates: ``(k, x, weight, bias)`` with the last block padded by
            zero replicates to ``CONV_GROUP``, so a grouped call's shape never depends on R."""
            G = CONV_GROUP
            for s in range(0, x.shape[0], G):
                k = min(G, x.shape[0] - s)
                xs, w, b = x[s:s + k], self.weight[s:s + k], self.bias[s:s + k]
                if k < G:
                    xs, w, b = (torch.cat([t, t.new_zeros(G - k, *t.shape[1:])]) for t in (xs, w, b))
                yield k, xs, w, b

        def _forward_nhwc(self, x):
            """Channels-last convolutions; the result is ``(R, B, c_out, H, W)`` stored as ``(R, B, H, W, c_out)``
            (a permuted view), so pooling, upsampling and the next layer stay channels-last. Feature maps of at
            most ``GROUPED_MAX_PIXELS`` pixels: fixed blocks of ``CONV_GROUP`` replicates as grouped calls (such
            calls cost little more than one replicate's); larger ones: one call per replicate. The choice
            depends on the layer's shape only, never on R."""
            cl = torch.channels_last
            R, B, C, H, W = x.shape
            if H * W <= GROUPED_MAX_PIXELS:
                G, O = CONV_GROUP, self.weight.shape[1]
                outs = []
                for k, xs, w, b in self._blocks(x):
                    y = xs.permute(1, 3, 4, 0, 2).reshape(B, H, W, G * C).permute(0, 3, 1, 2)  # channels-last
                    out = F.conv2d(y, w.reshape(G * O, C, 3, 3).contiguous(memory_format=cl), b.reshape(G * O),
                                   padding=1, groups=G)  # (B, G*O, H, W), channels-last
                    # contiguous (k, B, H, W, O): the same memory layout for every R, so later elementwise
                    # kernels (vectorised vs scalar exp/log) treat replicate r's elements alike
                    outs.append(out.permute(0, 2, 3, 1).reshape(B, H, W, G, O)[:, :, :, :k].permute(3, 0, 1, 2, 4)
                                .contiguous())
                y = outs[0] if len(outs) == 1 else torch.cat(outs)
                return y.permute(0, 1, 4, 2, 3)
            outs = [F.conv2d(xr.contiguous(memory_format=cl), self.weight[r].contiguous(memory_format=cl),
                             self.bias[r], padding=1).permute(0, 2, 3, 1) for r, xr in enumerate(x.unbind(0))]
            y = outs[0].unsqueeze(0) if len(outs) == 1 else torch.stack(outs)
            return y.permute(0, 1, 4, 2, 3)

    class MLPNet(nn.Module):
        """``layers`` hidden layers of width ``hidden``; input ``[x, cond]``, cond added to every hidden layer."""

        def __init__(self, R, d, cond_dim, hidden, layers, gens, device):
            super().__init__()
            self.R = R
            self.inp = BLinear(R, d + cond_dim, hidden, gens, device)
            self.hid = nn.ModuleList([BLinear(R, hidden, hidden, gens, device) for _ in range(layers - 1)])
            self.emb = nn.ModuleList([BLinear(R, cond_dim, hidden, gens, device) for _ in range(layers - 1)])
            self.out = BLinear(R, hidden, d, gens, device)

        def forward(self, x, cond):
            h = F.silu(self.inp(torch.cat([x, cond], dim=-1)))
            for lin, emb in zip(self.hid, self.emb):
                h = F.silu(lin(h) + emb(cond))
            return self.out(h)

    class ConvNet(nn.Module):
        """One-level U-Net on ``image_shape`` images with ``c`` channels (2c at half resolution)."""

        def __init__(self, R, image_shape, cond_dim, c, gens, device):
            super().__init__()
            self.R, self.shape, self.c = R, tuple(image_shape), c
            H, W = self.shape
            self.half = (max(1, H // 2), max(1, W // 2))
            conv = lambda i, o: BConv(R, i, o, gens, device)  # noqa: E731 - creation order = init draw order
            self.c1, self.c2 = conv(1, c), conv(c, c)
            self.c3, self.c4 = conv(c, 2 * c), conv(2 * c, 2 * c)
            self.c5, self.c6 = conv(3 * c, c), conv(c, c)
            self.out = conv(c, 1)
            self.e1 = BLinear(R, cond_dim, c, gens, device)
            self.e2 = BLinear(R, cond_dim, 2 * c, gens, device)
            self.e3 = BLinear(R, cond_dim, c, gens, device)

        @staticmethod
        def _bias(lin, cond):
            """``cond (R, B, k) -> (R, B, C, 1, 1)`` per-channel biases."""
            return lin(cond)[..., None, None]

        @staticmethod
        def _resize(h, size, fn):
            """Apply a 2-D resampling ``fn`` to ``(R, B, C, H, W)`` feature maps."""
            R, B = h.shape[:2]
            out = fn(h.flatten(0, 1), size)
            return out.reshape(R, B, *out.shape[1:])

        def forward(self, x, cond):
            R, B, _ = x.shape
            H, W = self.shape
            y = x.reshape(R, B, 1, H, W)
            h1 = F.silu(self.c1(y) + self._bias(self.e1, cond))
            h1 = F.silu(self.c2(h1))
            h2 = self._resize(h1, self.half, F.adaptive_avg_pool2d)
            h2 = F.silu(self.c3(h2) + self._bias(self.e2, cond))
            h2 = F.silu(self.c4(h2))
            u = self._resize(h2, self.shape, lambda z, s: F.interpolate(z, size=s, mode="nearest"))
            h = F.silu(self.c5(torch.cat([u, h1], dim=2)) + self._bias(self.e3, cond))
            h = F.silu(self.c6(h))
            return self.out(h).reshape(R, B, H * W)

    return types.SimpleNamespace(BLinear=BLinear, BConv=BConv, MLPNet=MLPNet, ConvNet=ConvNet, uniform=uniform)


def layers():
    """The batched layer classes ``(BLinear, BConv)`` for other families' networks (vae, gan, user models).

    ``BLinear(R, fan_in, fan_out, gens, device)``: ``(R, B, fan_in) -> (R, B, fan_out)``;
    ``BConv(R, c_in, c_out, gens, device, grouped=False, layout="nchw")``: ``(R, B, c_in, H, W) -> (R, B, c_out, H, W)``,
    3×3, padding 1; ``grouped=True`` runs blocks of ``CONV_GROUP`` replicates as one grouped convolution;
    ``layout="nhwc"`` one channels-last convolution per replicate (output stored channels-last).
    ``gens`` (one torch generator per replicate) draws nn.Linear/nn.Conv2d's default uniform init in
    creation order; ``gens=None`` leaves zeros for ``load_state_dict``.
    """
    m = _modules()
    return m.BLinear, m.BConv


LANES = 64  # elements: a multiple of every CPU vector loop's unroll (AVX-512 float: 2 × 16)


def aligned(fn, x):
    """``fn(x)`` for an elementwise ``fn`` on ``x (R, ...)``, computed so that replicate r's numbers do not
    depend on R.

    torch's CPU elementwise loops run whole vectors (two at a time) and finish the last ``numel mod 32``
    elements with scalar code, whose exp/log (libm) differ from the vectorised ones (Sleef) in the last
    bit. A contiguous ``(R, k)`` tensor with k not a multiple of 32 therefore puts replicate R − 1's last
    elements in the scalar tail for one R and not for another. Padding every replicate's block to a
    multiple of ``LANES`` keeps all elements in the vector loop for every R (the GAN's ``(R, B, 1)``
    discriminator logits with B = 16 showed this in ``softplus`` and its backward). Single-threaded
    (``threads: 1``): with more threads the loops are also split at R-dependent offsets.
    """
    torch = require_torch()
    R = x.shape[0]
    flat = x.reshape(R, -1)
    k = flat.shape[1]
    pad = -k % LANES
    if pad:
        flat = torch.nn.functional.pad(flat, (0, pad))
    return fn(flat)[:, :k].reshape(x.shape)


def architecture(choice: str, info, field: str = "model.architecture") -> str:
    """Resolve ``auto`` (conv for image sources, mlp otherwise) and check that conv fits the data."""
    shape = tuple(info.image_shape) if info.image_shape else None
    if choice == "auto":
        return "conv" if shape is not None and len(shape) == 2 and shape[0] * shape[1] == info.dim else "mlp"
    if choice == "conv" and (shape is None or len(shape) != 2 or shape[0] * shape[1] != info.dim):
        raise ConfigError(field, choice, f"mlp for non-image data (source kind {info.kind!r}, no image_shape)")
    return choice


def make_net(arch: str, R: int, info, cond_dim: int, hidden: int, layers: int, channels: int, gens, device: str):
    """A fresh ``MLPNet`` or ``ConvNet`` for R replicates; ``gens`` None leaves the weights to ``load_state_dict``."""
    m = _modules()
    if arch == "conv":
        return m.ConvNet(R, tuple(info.image_shape), cond_dim, channels, gens, device)
    return m.MLPNet(R, info.dim, cond_dim, hidden, layers, gens, device)


def copy_net(arch: str, R: int, info, cond_dim: int, hidden: int, layers: int, channels: int, state: dict, device: str):
    """A network holding a copy of ``state`` (warm start, or loading a checkpoint)."""
    net = make_net(arch, R, info, cond_dim, hidden, layers, channels, None, device)
    net.load_state_dict({k: v.detach().clone().to(device) for k, v in state.items()})
    return net


def start(arch: str, R: int, info, cond_dim: int, o, gens, init, data, scaling: str, device: str):
    """``(net, scaler)`` for a fit: a copy of ``init``'s network and scaling (warm start) or fresh ones."""
    if init is not None:
        return copy_net(arch, R, info, cond_dim, o.hidden, o.layers, o.channels, init.net.state_dict(), device), init.scaler
    scaler = Scaler.fit(scaling, data)
    return make_net(arch, R, info, cond_dim, o.hidden, o.layers, o.channels, gens, device), scaler


def time_features(t, n: int = 16):
    """Sinusoidal features ``(..., n)`` of times ``t (...)`` in [0, 1]; frequencies 1..1000 rad, geometric."""
    torch = require_torch()
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), n // 2, device=t.device, dtype=t.dtype))
    arg = t.unsqueeze(-1) * freqs
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)


class Scaler:
    """Per-replicate affine map between data space and network space: ``z = (x − shift) / scale``.

    ``mode``: ``standardize`` (per-replicate, per-dimension mean and std of the training set;
    a constant dimension keeps scale 1), ``image`` ([0, 1] -> [-1, 1]; ``inverse`` clips back
    to [0, 1]) or ``none``. ``shift``/``scale`` are ``(R, 1, d)`` float32 arrays.
    """

    def __init__(self, mode: str, shift: np.ndarray, scale: np.ndarray):
        self.mode, self.shift, self.scale = mode, shift.astype(np.float32), scale.astype(np.float32)

    @classmethod
    def fit(cls, mode: str, data: np.ndarray) -> "Scaler":
        R, _, d = data.shape
        if mode == "standardize":
            std = data.std(axis=1, keepdims=True)
            return cls(mode, data.mean(axis=1, keepdims=True), np.where(std > 1e-8, std, 1.0))
        if mode == "image":
            return cls(mode, np.full((R, 1, d), 0.5), np.full((R, 1, d), 0.5))
        return cls(mode, np.zeros((R, 1, d)), np.ones((R, 1, d)))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.shift) / self.scale).astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        x = z.astype(np.float64) * self.scale + self.shift
        return np.clip(x, 0.0, 1.0) if self.mode == "image" else x

    def state(self) -> dict:
        """The checkpoint group ``{"shift", "scale"}`` (NumPy arrays)."""
        return {"shift": self.shift.copy(), "scale": self.scale.copy()}

    @classmethod
    def from_state(cls, mode: str, group: dict) -> "Scaler":
        return cls(mode, group["shift"].cpu().numpy(), group["scale"].cpu().numpy())


def scaling_mode(option: str, info) -> str:
    """``auto``: ``image`` for image sources (values in [0, 1]), ``standardize`` otherwise."""
    if option != "auto":
        return option
    return "image" if info.kind == "image" else "standardize"
