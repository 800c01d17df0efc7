"""Denoising diffusion (DDPM; Ho et al. 2020) for R replicate chains, trained as one batched ensemble.

Forward process (Ho et al. eq. 4): x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε, ε ~ N(0, I), with
ᾱ_t = Π_{s≤t} (1 − β_s) over ``timesteps`` T steps; ``schedule: linear`` uses β from 1e-4 to
0.02 rescaled by 1000/T (so ᾱ_T is as small as for Ho's T = 1000), ``cosine`` uses Nichol &
Dhariwal (2021, eq. 17). The network ε_θ(x_t, t[, c]) is trained on the simple loss ‖ε − ε_θ‖²
(Ho et al. eq. 14) for ``train_steps`` Adam steps of ``batch_size`` points drawn with replacement:
the training budget is an option so that the early stopping of Fu et al. (2024, Thm. 2) can
be studied. An MLP serves vectors, a small U-Net (``nets.ConvNet``) serves image sources.

Sampling: ``sampler: ddpm`` is ancestral sampling with the posterior variance β̃_t (Ho et al.
eqs. 6–7, via the predicted x̂_0, clipped to the data range for images); ``ddim`` is Song et
al. (2021)'s deterministic sampler (η = 0) on ``ddim_steps`` evenly spaced steps.

Sampling bias λ (MAD, Alemohammad et al. 2023):
* ``conditional: true`` — classifier-free guidance (Ho & Salimans 2022): labels are dropped
  with probability ``p_uncond`` in training, and sampling uses
  ε̃ = (1 + w) ε_θ(x, c) − w ε_θ(x, ∅) with MAD's λ = 1/(1 + w), i.e. w = 1/λ − 1 (λ = 1: no
  guidance). Classes are drawn i.i.d. from ``class_probs`` (below).
* unconditional — a temperature: the initial noise x_T ~ N(0, λ I) and every ancestral noise
  draw is scaled by sqrt(λ). With the DDIM sampler only x_T is scaled; for Gaussian data and an
  exact score the probability-flow map is then affine, so samples have covariance λΣ — exactly
  MAD's Gaussian sampling bias.

Labels for conditioning (``labels``): ``source`` — the source's own labels (digits' classes, a
mixture's component index): the family declares ``uses_labels``, so the engine draws the real
sets with ``source.sample_labeled``, keeps each synthetic sample's label (the class it was
generated from, ``sample_labeled``) through correction and the training-set policy, and passes
them to ``fit(..., labels=(R, n))`` (Gillman et al. 2024's conditional loops). The other modes
label a training set without the engine's help: ``components`` — the Bayes classifier of the
source's true Gaussian mixture (``info.truth['components']``), applied to real and synthetic
points alike; ``kmeans`` — per-replicate k-means clusters (self-labelling, as in Hu et al. 2023's
self-guided diffusion), the ``auto`` choice for labelled image sources. ``class_probs`` says how
often each class is generated: its frequency in the training set (``training``, a random walk
over generations in a fully synthetic loop), the source's frequency (``source``) or equally
often (``uniform``).

Warm start (``loop.warm_start``): ``fit(data, streams, init=model)`` copies the previous
generation's weights and data scaling and fine-tunes them with a fresh Adam for
``finetune_steps`` steps (default ``train_steps``): the iterative fine-tuning of Bertrand et al.
(2024) and Gillman et al. (2024).

Randomness: each replicate's initial weights, minibatches, times, noise, label dropout and
sampling draws come from its own torch generator seeded from ``streams.generators()``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field, PositiveInt

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams
from . import nets, training
from .oracle import MixtureOracle, oracle_scaler, source_components
from .torch_util import require_torch, resolve_device, torch_generator

_T_FEATURES = 16  # sinusoidal time features
_SAMPLE_CHUNK = 2048  # samples per replicate denoised at once


COSINE_BETA_MAX = 0.5


def beta_schedule(kind: str, T: int) -> np.ndarray:
    """β_1..β_T ``(T,)`` float64: ``linear`` (Ho et al., rescaled by 1000/T) or ``cosine`` (Nichol & Dhariwal).

    The cosine β are clipped at ``COSINE_BETA_MAX`` = 0.5, not Nichol & Dhariwal's 0.999: an ancestral step
    multiplies the network's error by β_t / (√(1 − ᾱ_t) √(1 − β_t)), 32 at β = 0.999, and at T = 100 that
    last step turned small errors of a learned network into outliers (|x| = 14 for N(0, 1) data, measured).
    The clipped steps are pure noise (ᾱ_T = 2.7e-4 at T = 100), so the exact-score law is unchanged."""
    if kind == "linear":
        scale = 1000.0 / T
        return np.linspace(1e-4 * scale, min(0.02 * scale, 0.999), T)
    s = 0.008
    f = np.cos((np.arange(T + 1) / T + s) / (1 + s) * math.pi / 2) ** 2
    return np.clip(1.0 - f[1:] / f[:-1], 0.0, COSINE_BETA_MAX)


def ddim_steps(T: int, k: int) -> np.ndarray:
    """The DDIM step indices: ``k`` (at most T) evenly spaced in 0..T−1, ascending."""
    return np.unique(np.linspace(0, T - 1, min(k, T)).round().astype(int))


def mixture_labels(x: np.ndarray, components) -> np.ndarray:
    """Bayes classifier of a Gaussian mixture: ``argmax_k log w_k + log N(x; μ_k, Σ_k)`` for ``x (R, n, d)`` -> ``(R, n)``."""
    w, mu, cov = (np.asarray(c, dtype=float) for c in components)
    chol = np.linalg.cholesky(cov)  # (K, d, d)
    score = np.empty(x.shape[:2] + (len(w),))
    for k in range(len(w)):
        z = np.linalg.solve(chol[k], (x - mu[k]).reshape(-1, x.shape[-1]).T).T.reshape(x.shape)
        score[..., k] = math.log(max(w[k], 1e-300)) - np.log(np.diag(chol[k])).sum() - 0.5 * (z ** 2).sum(-1)
    return score.argmax(-1)


class DDPMModel:
    """R fitted diffusion models (one batched network); see the module docstring."""

    def __init__(self, family: "DDPMFamily", net, scaler: nets.Scaler, class_probs, stats: dict):
        self.family, self.net, self.scaler, self.class_probs, self.stats = family, net, scaler, class_probs, stats
        self.R, self.dim = scaler.shift.shape[0], family.info.dim

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """``(R, m, d)`` draws; ``bias`` = λ is guidance (conditional) or a noise temperature (unconditional)."""
        return self._generate(m, streams, bias)[0]

    def sample_labeled(self, m: int, streams: Streams, bias: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Conditional models: the same draws as ``sample`` plus the class each was generated from ``(R, m)``."""
        if self.class_probs is None:
            raise ConfigError("model.conditional", False, "true to draw labelled samples")
        return self._generate(m, streams, bias)

    def _generate(self, m: int, streams: Streams, bias: float):
        torch = require_torch()
        f = self.family
        if not 0 < bias <= 1:
            raise ConfigError("sampling.bias", bias, "a number in (0, 1]")
        gens = [torch_generator(g, f.device) for g in streams.generators()]
        out = np.empty((self.R, m, self.dim))
        labels = np.zeros((self.R, m), dtype=np.int64)
        with torch.no_grad():
            for start in range(0, m, _SAMPLE_CHUNK):
                b = min(_SAMPLE_CHUNK, m - start)
                y = None
                if self.class_probs is not None:
                    probs = torch.as_tensor(self.class_probs, dtype=torch.float32, device=f.device)
                    y = torch.stack([torch.multinomial(probs[r], b, replacement=True, generator=g) for r, g in enumerate(gens)])
                    labels[:, start:start + b] = y.cpu().numpy()
                z = self._denoise(b, gens, y, bias)
                out[:, start:start + b] = self.scaler.inverse(z.cpu().numpy())
        return out, labels

    def _eps(self, x, t: int, y, w: float):
        """Predicted noise ``(R, B, d)`` at step index t (guided when w > 0)."""
        torch = require_torch()
        f = self.family
        R, B, _ = x.shape
        if f.options.oracle:  # exact E[ε | x_t] (or E[ε | x_t, class]) of the source, see oracle.py
            ab = float(f.alpha_bar[t])
            if y is None:
                return self.net.eps(x, ab)
            cond = self.net.eps(x, ab, y)
            return cond if w == 0 else (1 + w) * cond - w * self.net.eps(x, ab)
        tf = nets.time_features(torch.full((R, B), (t + 1) / f.T, device=x.device))
        if y is None:
            return self.net(x, tf)
        onehot = lambda lab: torch.nn.functional.one_hot(lab, f.K + 1).float()  # noqa: E731
        if w == 0:
            return self.net(x, torch.cat([tf, onehot(y)], -1))
        both = self.net(torch.cat([x, x], 1), torch.cat([torch.cat([tf, onehot(y)], -1),
                                                         torch.cat([tf, onehot(torch.full_like(y, f.K))], -1)], 1))
        cond, uncond = both[:, :B], both[:, B:]
        return (1 + w) * cond - w * uncond

    def _denoise(self, b: int, gens, y, bias: float):
        """Run the reverse process for ``b`` samples per replicate; returns network-space ``(R, b, d)``."""
        torch = require_torch()
        f, o = self.family, self.family.options
        guided = y is not None
        temp = 1.0 if guided else bias
        w = (1.0 / bias - 1.0) if guided else 0.0
        d, dev = self.dim, f.device
        noise = lambda: torch.stack([torch.randn(b, d, generator=g, device=dev) for g in gens])  # noqa: E731
        x = noise() * math.sqrt(temp)
        ab = f.alpha_bar
        clip = self.scaler.mode == "image"
        if o.sampler == "ddpm":
            for t in range(f.T - 1, -1, -1):
                eps = self._eps(x, t, y, w)
                ab_t, ab_prev, beta = ab[t], (ab[t - 1] if t > 0 else 1.0), f.betas[t]
                x0 = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
                if clip:
                    x0 = x0.clamp(-1.0, 1.0)
                mean = (math.sqrt(ab_prev) * beta / (1 - ab_t)) * x0 + (math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab_t)) * x
                if t > 0:  # no noise at the last step (Ho et al. Alg. 2)
                    var = beta if o.variance == "beta" else beta * (1 - ab_prev) / (1 - ab_t)
                    x = mean + math.sqrt(var * temp) * noise()
                else:
                    x = mean
            return x
        taus = f.ddim_taus
        for i in range(len(taus) - 1, -1, -1):
            t = int(taus[i])
            ab_t, ab_prev = ab[t], (ab[int(taus[i - 1])] if i > 0 else 1.0)
            eps = self._eps(x, t, y, w)
            x0 = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
            if clip:
                x0 = x0.clamp(-1.0, 1.0)
                eps = (x - math.sqrt(ab_t) * x0) / math.sqrt(1 - ab_t)
            x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
        return x

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """``train_loss``: mean denoising loss over the last training steps, per replicate ``(R,)``."""
        return {k: np.asarray(v, dtype=float) for k, v in self.stats.items()}


class DDPMFamily:
    """The ``ddpm`` family: ``fit`` trains R diffusion models on ``(R, n, d)`` data (images flattened)."""

    batched = True
    has_log_prob = False  # sample-only models: heldout-nll is rejected before a run starts

    class Options(Options):
        timesteps: PositiveInt = Field(100, description="T, the number of diffusion steps")
        schedule: Literal["linear", "cosine"] = Field("cosine", description="β schedule (Ho et al.; Nichol & Dhariwal)")
        variance: Literal["beta", "posterior"] = Field(
            "beta", description="ancestral noise variance: β_t (exact for standardised Gaussian data) or the posterior β̃_t "
                                "(under-disperses: ×0.95 per generation at T = 100, see docs/neural.md)")
        architecture: Literal["auto", "mlp", "conv"] = Field("auto", description="auto: conv for image sources, else mlp")
        hidden: PositiveInt = Field(128, description="MLP width")
        layers: PositiveInt = Field(3, description="MLP hidden layers")
        channels: PositiveInt = Field(16, description="conv channels (c, and 2c at half resolution)")
        train_steps: PositiveInt = Field(2000, description="Adam steps per fit (the training budget; Fu et al.'s early stopping)")
        finetune_steps: Optional[PositiveInt] = Field(
            None, description="Adam steps when fine-tuning the previous generation (loop.warm_start); default train_steps")
        batch_size: PositiveInt = 128
        lr: float = Field(2e-3, gt=0)
        sampler: Literal["ddpm", "ddim"] = Field("ddpm", description="ancestral (Ho et al.) or deterministic DDIM (Song et al.)")
        ddim_steps: PositiveInt = Field(50, description="DDIM steps (at most timesteps)")
        conditional: bool = Field(False, description="class-conditional with classifier-free guidance; bias = 1/(1+w)")
        labels: Literal["auto", "components", "kmeans", "source"] = Field(
            "auto", description="how a conditional model labels its data: true mixture components, k-means clusters, "
                                "or the source's labels carried through the loop (source)")
        class_probs: Literal["training", "source", "uniform"] = Field(
            "training", description="how often each class is sampled: training-set frequency, the source's, or uniform")
        n_classes: Optional[PositiveInt] = Field(None, description="classes for labels: kmeans (default: the source's class count)")
        label_check: int = Field(
            0, ge=0, description="labels: source on digit images: after each fit, this many labelled samples per "
                                 "replicate are classified by the digit network (param.label_accuracy); 0 = off")
        p_uncond: float = Field(0.1, ge=0, lt=1, description="label dropout probability in training (classifier-free guidance)")
        scaling: Literal["auto", "standardize", "image", "none"] = Field(
            "auto", description="auto: image ([0,1] -> [-1,1], clipped) for image sources, else per-replicate standardize")
        oracle: bool = Field(False, description="use the source's exact noise predictor instead of a trained network "
                                                "(Gaussian / Gaussian-mixture sources): isolates the sampler's error")
        device: Literal["auto", "cpu", "cuda"] = "auto"
        threads: Optional[PositiveInt] = Field(
            1, description="torch intra-op threads; null = all CPUs given. 1 by default: these networks are small, "
                           "and extra threads spin and stall when other processes share the cores")

    def __init__(self, options: "DDPMFamily.Options", info: SourceInfo):
        o = self.options = options
        self.info = info
        self.arch = nets.architecture(o.architecture, info)
        self.scaling = nets.scaling_mode(o.scaling, info)
        if o.sampler == "ddim" and o.ddim_steps > o.timesteps:
            raise ConfigError("model.ddim_steps", o.ddim_steps, f"at most model.timesteps ({o.timesteps})")
        self.T = o.timesteps
        self.betas = beta_schedule(o.schedule, self.T)
        self.alpha_bar = np.cumprod(1.0 - self.betas)
        self.ddim_taus = ddim_steps(self.T, o.ddim_steps)
        self.label_mode, self.K = self._resolve_labels(o, info)
        self.uses_labels = self.label_mode == "source"  # the engine carries the source's labels (module docstring)
        if o.label_check and not (self.uses_labels and info.kind == "image"):
            raise ConfigError("model.label_check", o.label_check, "0 unless model.conditional: true with "
                              "model.labels: source on a labelled image source (the digit classifier checks the labels)")
        if o.class_probs != "training" and not o.conditional:
            raise ConfigError("model.class_probs", o.class_probs, "training (the default) unless model.conditional: true")
        if o.class_probs == "source" and (info.truth or {}).get("class_probs") is None \
                and (info.truth or {}).get("components") is None:
            raise ConfigError("model.class_probs", "source", "training or uniform: the source states no class frequencies")
        self.cond_dim = _T_FEATURES + (self.K + 1 if o.conditional else 0)
        self.device = resolve_device(o.device)
        if o.oracle:
            oracle_scaler(self.scaling, info, 1, "ddpm")  # a ConfigError now if the source has no known density
            if o.conditional and self.label_mode not in ("components", "source"):
                raise ConfigError("model.labels", o.labels, "components (the oracle's classes are the mixture's components)")

    @staticmethod
    def _resolve_labels(o, info) -> tuple[Optional[str], int]:
        if not o.conditional:
            return None, 0
        truth = info.truth or {}
        mode = o.labels
        if mode == "auto":
            if truth.get("components") is not None:
                mode = "components"
            elif truth.get("labels_available"):
                mode = "kmeans"
            else:
                raise ConfigError("model.conditional", True, "false, or model.labels: kmeans with model.n_classes "
                                  "(the source offers no labels: neither mixture components nor labelled images)")
        if mode == "source":
            labelled = truth.get("labels_available") or truth.get("components") is not None
            if not labelled:
                raise ConfigError("model.labels", "source", "components or kmeans: the source has no labels "
                                  "(a labelled source: digits, mixture, an images .npz with data.labels_key)")
            if truth.get("components") is not None:
                known = len(truth["components"][0])
            else:
                known = max(truth["classes"]) + 1 if truth.get("classes") is not None else None
            K = o.n_classes or known
            if K is None:
                raise ConfigError("model.n_classes", None, "a positive integer: the source does not state its classes")
            if known is not None and K < known:
                raise ConfigError("model.n_classes", K, f"unset or at least {known} (the source's largest label + 1)")
            return mode, int(K)
        if mode == "components":
            if truth.get("components") is None:
                raise ConfigError("model.labels", "components", "kmeans: the source is not a Gaussian mixture")
            K = len(truth["components"][0])
            if o.n_classes is not None and o.n_classes != K:
                raise ConfigError("model.n_classes", o.n_classes, f"unset or {K} (the mixture's component count)")
            return mode, K
        K = o.n_classes or (len(truth["classes"]) if truth.get("classes") is not None else None)
        if K is None:
            raise ConfigError("model.n_classes", None, "a positive integer: the number of k-means classes")
        return mode, int(K)

    # -- labels ----------------------------------------------------------------------------
    def _labels(self, data: np.ndarray, streams: Streams, labels) -> Optional[np.ndarray]:
        """``(R, n)`` class labels of the training set (conditional models), else None."""
        if not self.options.conditional:
            return None
        R, n, _ = data.shape
        y = training.as_numpy_labels(labels, R, n)
        if y is not None:
            if (y >= self.K).any():
                raise ConfigError("labels", int(y.max()), f"labels below the class count {self.K}")
            return y
        if self.label_mode == "source":
            raise ConfigError("labels", None, f"labels of shape {(R, n)}: model.labels: source trains on the labels "
                              "the loop passes (fit(..., labels=...))")
        if self.label_mode == "components":
            return mixture_labels(data, self.info.truth["components"])
        from sklearn.cluster import KMeans

        seeds = [int(g.integers(2 ** 31 - 1)) for g in streams.child("labels").generators()]
        K = min(self.K, n)
        return np.stack([KMeans(n_clusters=K, n_init=3, random_state=s).fit(x).labels_ for x, s in zip(data, seeds)]).astype(np.int64)

    # -- training ---------------------------------------------------------------------------
    def fit(self, data: np.ndarray, streams: Streams, init: Optional[DDPMModel] = None, labels=None) -> DDPMModel:
        """Train R models on ``data (R, n, d)``; ``init`` (warm start) supplies weights and scaling;
        ``labels (R, n)`` optionally gives a conditional model its classes."""
        torch = require_torch()
        o = self.options
        data, gens = training.begin_fit(data, streams, self.info.dim, self.device, o.threads)
        R = data.shape[0]
        if o.oracle:
            return self._oracle_model(R)
        training.check_init(init, R)
        y_np = self._labels(data, streams, labels)
        net, scaler = nets.start(self.arch, R, self.info, self.cond_dim, o, gens, init, data, self.scaling, self.device)
        x = torch.from_numpy(scaler.forward(data)).to(self.device)
        y = torch.from_numpy(y_np).to(self.device) if y_np is not None else None
        steps = (o.finetune_steps or o.train_steps) if init is not None else o.train_steps
        loss_tail = self._train(net, x, y, gens, steps)
        class_probs = None
        if y_np is not None:
            class_probs = self._class_probs(y_np)
        model = DDPMModel(self, net, scaler, class_probs, {"train_loss": loss_tail})
        if o.label_check:
            model.stats["label_accuracy"] = self._label_accuracy(model, streams.child("label-check"))
        return model

    def _label_accuracy(self, model: DDPMModel, streams: Streams) -> np.ndarray:
        """Share of ``label_check`` unguided conditional samples per replicate that the digit classifier
        (``autophagy.features``) assigns to the class they were generated from ``(R,)``: class fidelity."""
        from ..features import digit_features, to_digit_resolution

        x, y = model.sample_labeled(self.options.label_check, streams)
        net = digit_features()
        pred = net.classify(to_digit_resolution(x.reshape(-1, x.shape[-1]), self.info.image_shape)).argmax(-1)
        return (pred.reshape(y.shape) == y).mean(1)

    def _class_probs(self, y: np.ndarray) -> np.ndarray:
        """``(R, K)`` sampling frequencies of the classes (``model.class_probs``) given training labels ``y (R, n)``."""
        R, mode, truth = y.shape[0], self.options.class_probs, self.info.truth or {}
        if mode == "uniform":
            return np.full((R, self.K), 1.0 / self.K)
        if mode == "source":
            p = truth["class_probs"] if truth.get("class_probs") is not None else truth["components"][0]
            probs = np.zeros(self.K)
            probs[:len(p)] = np.asarray(p, dtype=float)[:self.K]
            return np.tile(probs / probs.sum(), (R, 1))
        counts = np.stack([np.bincount(row, minlength=self.K) for row in y]).astype(float)
        return counts / counts.sum(1, keepdims=True)

    def _oracle_model(self, R: int) -> DDPMModel:
        """The source's exact noise predictor for R replicates (``model.oracle``); class frequencies = mixture weights."""
        scaler = oracle_scaler(self.scaling, self.info, R, "ddpm")
        net = MixtureOracle(self.info, scaler.shift[0, 0], scaler.scale[0, 0], "ddpm", self.device)
        probs = None
        if self.options.conditional:
            probs = np.tile(source_components(self.info, "ddpm")[0], (R, 1))
        return DDPMModel(self, net, scaler, probs, {})

    def _train(self, net, x, y, gens, steps: int) -> np.ndarray:
        """The simple loss (Ho et al. eq. 14) per replicate; returns the mean loss over the last steps ``(R,)``."""
        torch = require_torch()
        o = self.options
        R, n, d = x.shape
        B = o.batch_size
        spec = {"idx": (f"randint:{n}", (B,)), "t": (f"randint:{self.T}", (B,)), "eps": ("normal", (B, d))}
        if y is not None:
            spec["drop"] = ("uniform", (B,))
        draws = training.Draws(gens, spec, self.device)
        sab = torch.as_tensor(np.sqrt(self.alpha_bar), dtype=torch.float32, device=self.device)
        s1m = torch.as_tensor(np.sqrt(1 - self.alpha_bar), dtype=torch.float32, device=self.device)

        def loss(step):
            r = draws.step(step)
            x0 = training.gather_rows(x, r["idx"])
            t = r["t"]
            xt = sab[t].unsqueeze(-1) * x0 + s1m[t].unsqueeze(-1) * r["eps"]
            cond = nets.time_features((t + 1).float() / self.T)
            if y is not None:
                lab = y.gather(1, r["idx"]).masked_fill(r["drop"] < o.p_uncond, self.K)
                cond = torch.cat([cond, torch.nn.functional.one_hot(lab, self.K + 1).float()], -1)
            return ((net(xt, cond) - r["eps"]) ** 2).mean(dim=(1, 2))  # (R,)

        return training.minimise(net, o.lr, steps, loss, self.device)

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, model: DDPMModel, path: Path) -> None:
        """Write ``weights.pt`` and ``meta.json`` into the directory ``path`` (see ``training.save``)."""
        groups = {"scaler": model.scaler.state(), "stats": model.stats}
        if not self.options.oracle:
            groups["net"] = model.net.state_dict()
        if model.class_probs is not None:
            groups["labels"] = {"class_probs": model.class_probs}
        training.save(path, "ddpm", self.options, model.R, self.info.dim, groups)

    def load(self, path: Path) -> DDPMModel:
        """Read a model written by ``save`` (same options and dimension) onto this family's device."""
        groups, meta = training.load(path, "ddpm", self.options, self.info.dim, self.device)
        if self.options.oracle:
            return self._oracle_model(int(meta["replicates"]))
        o = self.options
        net = nets.copy_net(self.arch, int(meta["replicates"]), self.info, self.cond_dim, o.hidden, o.layers,
                            o.channels, groups["net"], self.device)
        net.eval()
        probs = groups.get("labels", {}).get("class_probs")
        return DDPMModel(self, net, nets.Scaler.from_state(self.scaling, groups["scaler"]),
                         None if probs is None else probs.cpu().numpy(), training.numpy_group(groups["stats"]))
