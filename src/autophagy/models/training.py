"""One training loop, per-replicate random draws and checkpoints for every torch family.

The neural families (``ddpm``, ``flow-matching``, ``gan``, ``vae`` and user torch models) differ only in
their algorithm; what they share lives here (layers in ``nets.py``, devices in ``torch_util.py``):

* ``begin_fit``: threads, the data-dimension check and one ``torch.Generator`` per replicate, seeded
  from the seed tree (``streams.generators()``), so replicate r's numbers do not depend on R.
* ``Draws``: per-replicate random numbers for a training loop, drawn in chunks of steps from each
  replicate's own generator (never the global RNG).
* ``run_steps`` / ``minimise``: the fixed-budget loop. The loss is the sum of the R per-replicate
  losses, so each replicate's gradient, and Adam's elementwise update, are exactly those of training
  it alone; the return value is each replicate's mean loss over the last ``STAT_STEPS`` steps ``(R,)``.
* ``save`` / ``load``: a checkpoint directory with ``weights.pt`` (plain tensors, read back with
  ``torch.load(weights_only=True)``) and ``meta.json`` (family, format, replicates, dimension,
  options); loading with other options or another family is a one-line ``ConfigError``.

torch is imported on first use, so importing this module does not import it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import ConfigError
from .torch_util import require_torch, set_threads, torch_generator

STAT_STEPS = 100  # train_loss = mean loss over the last steps
_CHUNK_STEPS = 64  # training steps whose random numbers are drawn in one call per replicate


def begin_fit(data: np.ndarray, streams, dim: int, device: str, threads, dtype=np.float64):
    """``(data as a (R, n, d) array of dtype, [one torch.Generator per replicate])``; checks d against ``dim``."""
    set_threads(threads)
    data = np.asarray(data, dtype=dtype)
    if data.ndim != 3 or data.shape[-1] != dim:
        raise ConfigError("data", f"shape {data.shape}", f"(R, n, {dim}) arrays (the source's dimension)")
    return data, [torch_generator(g, device) for g in streams.generators()]


def check_init(init, R: int) -> None:
    """A warm-start model must hold the same number of replicates."""
    if init is not None and init.R != R:
        raise ConfigError("init", f"{init.R} replicates", f"a model with {R} replicates")


def adam(params, lr: float, betas=(0.9, 0.999)):
    """Adam with the foreach kernel (elementwise, so replicates stay independent)."""
    torch = require_torch()
    return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


def run_steps(steps: int, step: Callable[[int], object], device: str) -> np.ndarray:
    """Call ``step(i) -> (R,) detached loss tensor`` for i < ``steps``; mean of the last STAT_STEPS ``(R,)``."""
    torch = require_torch()
    first_tail = max(0, steps - STAT_STEPS)
    tail = None
    for i in range(steps):
        loss = step(i)
        if i >= first_tail:
            tail = loss.clone() if tail is None else tail + loss
    if tail is None:
        return np.zeros(0)
    return (tail / (steps - first_tail)).cpu().double().numpy()


def minimise(net, lr: float, steps: int, loss: Callable[[int], object], device: str) -> np.ndarray:
    """Adam on ``loss(i) -> (R,)`` summed over replicates for ``steps`` steps; see ``run_steps``."""
    opt = adam(net.parameters(), lr)
    net.train()

    def step(i):
        value = loss(i)
        opt.zero_grad(set_to_none=True)
        value.sum().backward()  # replicates do not interact: each gets its own loss's gradient
        opt.step()
        return value.detach()

    out = run_steps(steps, step, device)
    net.eval()
    return out


class Draws:
    """Per-replicate random numbers for a training loop, drawn ``_CHUNK_STEPS`` steps at a time.

    ``spec`` maps a name to ``(kind, tail)`` with kind ``randint:<high>``, ``normal`` or ``uniform``;
    ``step(i)`` returns ``{name: (R, *tail)}`` tensors for training step i. Each replicate's
    numbers come from its own generator in a fixed order, so they do not depend on R.
    """

    def __init__(self, gens, spec: dict, device: str):
        self.gens, self.spec, self.device = gens, spec, device
        self._start, self._cache = None, None

    def _refill(self, start: int) -> None:
        torch = require_torch()
        out = {}
        for name, (kind, tail) in self.spec.items():
            shape = (_CHUNK_STEPS, *tail)
            if kind.startswith("randint:"):
                high = int(kind.split(":")[1])
                parts = [torch.randint(high, shape, generator=g, device=self.device) for g in self.gens]
            elif kind == "normal":
                parts = [torch.randn(shape, generator=g, device=self.device) for g in self.gens]
            else:
                parts = [torch.rand(shape, generator=g, device=self.device) for g in self.gens]
            out[name] = torch.stack(parts, dim=1)  # (steps, R, *tail)
        self._start, self._cache = start, out

    def step(self, i: int) -> dict:
        start = i - i % _CHUNK_STEPS
        if self._start != start:
            self._refill(start)
        return {k: v[i - start] for k, v in self._cache.items()}


def gather_rows(x, idx):
    """``x (R, n, d)``, ``idx (R, B)`` -> ``(R, B, d)``."""
    return x.gather(1, idx.unsqueeze(-1).expand(*idx.shape, x.shape[-1]))


def as_numpy_labels(labels: Optional[np.ndarray], R: int, n: int) -> Optional[np.ndarray]:
    """Validate externally supplied labels: ``(R, n)`` non-negative integers."""
    if labels is None:
        return None
    y = np.asarray(labels)
    if y.shape != (R, n) or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
        raise ConfigError("labels", f"shape {y.shape}", f"non-negative integer labels of shape {(R, n)}")
    return y.astype(np.int64)


# -- checkpoints -------------------------------------------------------------------------------
def save(path: Path, family: str, options, R: int, dim: int, groups: dict) -> None:
    """Write ``groups`` = ``{prefix: {name: tensor or array}}`` as ``weights.pt`` plus ``meta.json``."""
    torch = require_torch()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for prefix, items in groups.items():
        for k, v in (items or {}).items():
            t = v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v))
            tensors[f"{prefix}.{k}"] = t.detach().cpu().contiguous()
    torch.save(tensors, path / "weights.pt")
    meta = {"family": family, "format": 2, "replicates": int(R), "dim": int(dim),
            "options": options.model_dump(mode="json"), "groups": sorted(groups)}
    (path / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))


def load(path: Path, family: str, options, dim: int, device: str = "cpu") -> tuple[dict, dict]:
    """``(groups, meta)`` of a checkpoint written by ``save`` with the same family, options and dimension."""
    torch = require_torch()
    path = Path(path)
    try:
        meta = json.loads((path / "meta.json").read_text())
        tensors = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError("model", str(path), "", problem=f"not a readable {family} checkpoint ({exc})") from None
    if meta.get("family") != family or meta.get("options") != options.model_dump(mode="json") or meta.get("dim") != dim:
        raise ConfigError("model", str(path), f"a {family} checkpoint written with the same model options and data dimension")
    groups: dict = {g: {} for g in meta.get("groups", [])}
    for k, v in tensors.items():
        prefix, _, name = k.partition(".")
        groups.setdefault(prefix, {})[name] = v.to(device)
    return groups, meta


def numpy_group(group: dict) -> dict:
    """A checkpoint group's tensors as NumPy arrays (stats, class frequencies)."""
    return {k: v.cpu().numpy() for k, v in group.items()}
