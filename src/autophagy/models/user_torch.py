"""Your own torch generative model in the loop: ``model.family: torch``.

You write plain single-replicate torch, three functions named by import path in the config:

    factory(info, **kwargs) -> torch.nn.Module                       # one replicate's model (info: SourceInfo)
    loss(module, x, generator) -> scalar tensor                      # x: (B, d) minibatch in network space
    sampler(module, n, generator, bias) -> (n, d) tensor             # bias: MAD's sampling bias λ in (0, 1]

autophagy does the rest: R replicate chains (one module per replicate, trained one after another, so
replicate r's numbers cannot depend on R), seeds, devices, Adam for ``train_steps`` minibatch steps,
data scaling (``nets.Scaler``: standardised vectors, images in [−1, 1]), warm start
(``loop.warm_start``: each replicate's module is copied and trained ``finetune_steps`` more steps with a
fresh Adam), checkpoints (``training.save``: every replicate's ``state_dict``) and the loop.

Randomness: ``generator`` is replicate r's own ``torch.Generator`` (seed tree), on the model's device;
draw every random number from it. Code that uses torch's global RNG anyway (``nn.Linear``'s default
initialisation in the factory, dropout) runs inside ``torch.random.fork_rng`` seeded from the same
generator, so it is reproducible too and the caller's global RNG state is left untouched.

The factory and sampler are checked when the run is built (one module on the CPU, two samples): an
import path that does not resolve, a factory that does not return an ``nn.Module``, or samples of the
wrong shape are one-line ``ConfigError``s naming ``model.factory`` / ``model.loss`` / ``model.sampler``.
"""
from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
from pydantic import Field, PositiveInt

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams
from . import nets, training
from .torch_util import require_torch, resolve_device, torch_generator


def _resolve(path: str, field: str):
    from ..components import import_path

    fn = import_path(path, field)
    if not callable(fn):
        raise ConfigError(field, path, "an import path 'package.module:function' naming a callable")
    return fn


@contextlib.contextmanager
def _global_rng(gen, device: str):
    """torch's global RNG seeded from ``gen`` for the block, and restored afterwards."""
    torch = require_torch()
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=gen, device=gen.device).item())
    devices = [torch.device(device).index or 0] if device == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class TorchUserModel:
    """R fitted user modules (one per replicate), their data scaling and training statistics."""

    def __init__(self, family: "TorchFamily", modules: list, scaler: nets.Scaler, stats: dict):
        self.family, self.modules, self.scaler, self.stats = family, modules, scaler, stats
        self.R = len(modules)

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """``(R, m, d)``: each replicate's ``sampler(module, m, generator, bias)``, mapped back to data space."""
        f = self.family
        torch = require_torch()
        out = np.empty((self.R, m, f.info.dim))
        with torch.no_grad():
            for r, (module, g) in enumerate(zip(self.modules, streams.generators())):
                gen = torch_generator(g, f.device)
                with _global_rng(gen, f.device):
                    out[r] = f.draw(module, m, gen, bias)
        return self.scaler.inverse(out)

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """``train_loss``: each replicate's mean loss over the last training steps ``(R,)``."""
        return {k: np.asarray(v, dtype=float) for k, v in self.stats.items()}


class TorchFamily:
    """The ``torch`` family: a user's single-replicate torch model, run as R replicate chains."""

    batched = True
    has_log_prob = False  # the protocol has no density; add a batched family of your own for one

    class Options(Options):
        factory: str = Field(..., description="'package.module:function': (info, **kwargs) -> torch.nn.Module")
        loss: str = Field(..., description="'package.module:function': (module, x (B, d), generator) -> scalar tensor")
        sampler: str = Field(..., description="'package.module:function': (module, n, generator, bias) -> (n, d) tensor")
        kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the factory")
        train_steps: PositiveInt = Field(1000, description="Adam steps per fit (one minibatch each)")
        finetune_steps: Optional[PositiveInt] = Field(
            None, description="steps when fine-tuning the previous generation (loop.warm_start); default train_steps")
        batch_size: PositiveInt = 128
        lr: float = Field(1e-3, gt=0, description="Adam learning rate")
        scaling: Literal["auto", "standardize", "image", "none"] = Field(
            "auto", description="auto: image ([0,1] -> [-1,1], clipped) for image sources, else per-replicate standardize")
        device: Literal["auto", "cpu", "cuda"] = "auto"
        threads: Optional[PositiveInt] = Field(1, description="torch intra-op threads; null = all CPUs given")

    def __init__(self, options: "TorchFamily.Options", info: SourceInfo):
        require_torch()
        self.options, self.info = options, info
        self.factory = _resolve(options.factory, "model.factory")
        self.loss = _resolve(options.loss, "model.loss")
        self.sampler = _resolve(options.sampler, "model.sampler")
        self.scaling = nets.scaling_mode(options.scaling, info)
        self.device = resolve_device(options.device)
        self._probe()

    # -- the user's three functions, checked -------------------------------------------------
    def make(self, gen):
        """One replicate's fresh module (factory under the replicate-seeded global RNG), on the device."""
        torch = require_torch()
        with _global_rng(gen, "cpu"):
            try:
                module = self.factory(self.info, **self.options.kwargs)
            except TypeError as exc:
                raise ConfigError("model.factory", self.options.factory, "", problem=f"calling it with "
                                  f"(info, **model.kwargs) failed: {exc}") from None
        if not isinstance(module, torch.nn.Module):
            raise ConfigError("model.factory", self.options.factory,
                              f"a function returning a torch.nn.Module (it returned {type(module).__name__})")
        return module.to(self.device)

    def draw(self, module, n: int, gen, bias: float) -> np.ndarray:
        """``sampler(module, n, gen, bias)`` as a checked ``(n, d)`` float64 array (network space)."""
        torch = require_torch()
        x = self.sampler(module, n, gen, bias)
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        if shape != (n, self.info.dim):
            raise ConfigError("model.factory", self.options.factory, f"a model whose samples have shape (n, d) = "
                              f"({n}, {self.info.dim}) (model.sampler returned {shape})")
        return x.detach().to("cpu", torch.float64).numpy()

    def _probe(self) -> None:
        """Build one module and draw two samples on the CPU, so bad user code fails before the first fit."""
        torch = require_torch()
        gen = torch.Generator().manual_seed(0)
        module = self.make(gen).to("cpu")
        with torch.no_grad():
            x = self.sampler(module, 2, gen, 1.0)
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        if shape != (2, self.info.dim):
            raise ConfigError("model.factory", self.options.factory, f"a model whose samples have shape (n, d) = "
                              f"(2, {self.info.dim}) (model.sampler returned {shape})")

    def _step_loss(self, module, batch, gen):
        torch = require_torch()
        value = self.loss(module, batch, gen)
        if not isinstance(value, torch.Tensor) or value.numel() != 1 or not value.requires_grad:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ConfigError("model.loss", self.options.loss,
                              f"a function returning a scalar tensor that depends on the module's parameters (got {got})")
        return value.reshape(())

    # -- fit ------------------------------------------------------------------------------
    def fit(self, data: np.ndarray, streams: Streams, init: Optional[TorchUserModel] = None) -> TorchUserModel:
        """Train R modules on ``data (R, n, d)``, one replicate at a time; ``init`` (warm start) supplies the
        modules to copy and the scaling."""
        torch = require_torch()
        o = self.options
        data, gens = training.begin_fit(data, streams, self.info.dim, self.device, o.threads)
        R, n, _ = data.shape
        training.check_init(init, R)
        scaler = init.scaler if init is not None else nets.Scaler.fit(self.scaling, data)
        x = torch.from_numpy(scaler.forward(data)).to(self.device)
        steps = (o.finetune_steps or o.train_steps) if init is not None else o.train_steps
        modules, tail = [], np.empty(R)
        for r, gen in enumerate(gens):
            module = copy.deepcopy(init.modules[r]) if init is not None else self.make(gen)
            tail[r] = self._train(module, x[r], gen, steps)
            module.eval()
            modules.append(module)
        return TorchUserModel(self, modules, scaler, {"train_loss": tail})

    def _train(self, module, x, gen, steps: int) -> float:
        """Adam on the user's loss over minibatches drawn with ``gen``; mean loss of the last steps."""
        torch = require_torch()
        o = self.options
        opt = training.adam(module.parameters(), o.lr)
        module.train()
        B, n = o.batch_size, x.shape[0]
        last = []
        with _global_rng(gen, self.device):
            for i in range(steps):
                idx = torch.randint(n, (B,), generator=gen, device=self.device)
                value = self._step_loss(module, x[idx], gen)
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
                if i >= steps - training.STAT_STEPS:
                    last.append(value.detach())
        return float(torch.stack(last).double().mean().cpu())

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, model: TorchUserModel, path: Path) -> None:
        """``weights.pt`` (every replicate's ``state_dict`` as group ``r<i>``) and ``meta.json``."""
        groups = {f"r{r}": m.state_dict() for r, m in enumerate(model.modules)}
        training.save(path, "torch", self.options, model.R, self.info.dim,
                      {**groups, "scaler": model.scaler.state(), "stats": model.stats})

    def load(self, path: Path) -> TorchUserModel:
        """Read a model written by ``save`` (same options and dimension) onto this family's device."""
        torch = require_torch()
        groups, meta = training.load(path, "torch", self.options, self.info.dim, self.device)
        modules = []
        for r in range(int(meta["replicates"])):
            module = self.make(torch.Generator().manual_seed(0))
            module.load_state_dict(groups[f"r{r}"])
            module.eval()
            modules.append(module)
        return TorchUserModel(self, modules, nets.Scaler.from_state(self.scaling, groups["scaler"]),
                              training.numpy_group(groups["stats"]))
