"""Shared plumbing for the torch families. torch is imported lazily (the ``torch`` extra).

* ``require_torch(field)``: import torch or raise a one-line ConfigError naming the extra.
* ``resolve_device("auto" | "cpu" | "cuda")``.
* ``torch_generator(np_gen, device)``: a ``torch.Generator`` seeded from a NumPy generator of the
  seed tree (never torch's global RNG).
* ``set_threads(n)``: set torch's intra-op threads deliberately (default: all cores we are given).
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import ConfigError


def require_torch(field: str = "model.family"):
    try:
        import torch
    except ImportError:
        raise ConfigError(field, "torch", "", problem="this family needs PyTorch: run `make torch` "
                          "(pip install -c constraints.txt -e '.[torch]', which takes torch==2.13.0)") from None
    return torch


def resolve_device(device: str, field: str = "model.device") -> str:
    torch = require_torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(field, device, "auto or cpu (no CUDA device is visible)")
    if device not in ("cpu", "cuda"):
        raise ConfigError(field, device, "auto, cpu or cuda")
    return device


def torch_generator(np_gen: np.random.Generator, device: str = "cpu"):
    """A torch.Generator on ``device`` seeded from the next 63 bits of ``np_gen``."""
    torch = require_torch()
    g = torch.Generator(device=device)
    g.manual_seed(int(np_gen.integers(0, 2**63 - 1)))
    return g


def set_threads(n: int | None = None) -> int:
    """Use ``n`` intra-op threads (default: the CPUs this process may run on). Returns the number set."""
    torch = require_torch()
    if n is None:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - non-Linux
            n = os.cpu_count() or 1
    torch.set_num_threads(max(1, int(n)))
    return torch.get_num_threads()
