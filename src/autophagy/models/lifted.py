"""The one adapter that lifts a single-dataset model to R replicate chains.

A user plug-in only has to implement ``autophagy.protocols.SingleModel``:

    class MyModel:
        def __init__(self, **options): ...
        def fit(self, x, rng): ...                      # x (n, d), rng a numpy Generator
        def sample(self, m, rng, bias=1.0): ...         # -> (m, d)
        def log_prob(self, x): ...                      # optional: (n, d) -> (n,)
        def param_metrics(self): ...                    # optional: {name: float}

``Lifted(MyModel, options, info)`` holds one instance per replicate and gives each replicate its own
generator from the seed tree (``streams.generators()``), so results do not depend on R. With
``loop.warm_start`` each replicate's new instance is a deep copy of its previous one (then refitted).
"""
from __future__ import annotations

import copy
import inspect
from typing import Any, Optional

import numpy as np

from ..errors import ConfigError
from ..protocols import SourceInfo
from ..rng import Streams


def class_path(cls: type) -> str:
    """``"package.module:Name"`` of a class (how the config names it)."""
    return f"{cls.__module__}:{cls.__qualname__}"


class LiftedModel:
    """R fitted single-dataset model instances (one per replicate)."""

    def __init__(self, instances: list, dim: int, path: str, info: Optional[SourceInfo] = None):
        self.instances, self.dim, self.path, self.info = instances, dim, path, info

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """``(R, m, d)``: each instance's ``sample(m, rng, bias)`` with its replicate's generator, stacked."""
        out = []
        for inst, g in zip(self.instances, streams.generators()):
            x = np.asarray(inst.sample(m, g, bias=bias))
            if x.shape != (m, self.dim):
                raise ConfigError("model.family", self.path,
                                  f"sample(m, rng, bias) returning an array of shape (m, d) = ({m}, {self.dim}); "
                                  f"got shape {x.shape}")
            out.append(x)
        return np.stack(out)

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """The instances' own ``param_metrics()`` (or ``param_metrics(info)``) stacked to ``(R,)``; else ``{}``."""
        first = self.instances[0] if self.instances else None
        fn = getattr(first, "param_metrics", None)
        if not callable(fn):
            return {}
        takes_info = len(inspect.signature(fn).parameters) >= 1
        rows = [inst.param_metrics(info) if takes_info else inst.param_metrics() for inst in self.instances]
        return {k: np.array([float(row[k]) for row in rows]) for k in rows[0]}


class LiftedDensityModel(LiftedModel):
    """A ``LiftedModel`` whose instances have ``log_prob``."""

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """``(R, n)``: each instance's ``log_prob`` of its replicate's ``(n, d)`` points."""
        return np.stack([np.asarray(inst.log_prob(xr), dtype=float).reshape(xr.shape[0])
                         for inst, xr in zip(self.instances, np.asarray(x))])


class Lifted:
    """A batched family made of R instances of a single-dataset model class ``cls(**options)``."""

    batched = True

    def __init__(self, cls: type, options: dict[str, Any], info: SourceInfo):
        self.cls, self.options, self.info = cls, dict(options), info
        self.path = class_path(cls)
        self.has_log_prob = callable(getattr(cls, "log_prob", None))  # checked before a run starts

    def fit(self, data: np.ndarray, streams: Streams, init: Optional[LiftedModel] = None) -> LiftedModel:
        """Fit one instance per replicate of ``data (R, n, d)``; a ``LiftedModel`` ``init`` is deep-copied (warm start)."""
        data = np.asarray(data)
        R, n, d = data.shape
        warm = isinstance(init, LiftedModel) and len(init.instances) == R
        instances = []
        for r, g in enumerate(streams.generators()):
            inst = copy.deepcopy(init.instances[r]) if warm else self.cls(**self.options)
            inst.fit(np.array(data[r]), g)  # a copy: the instance may keep or modify it
            instances.append(inst)
        kind = LiftedDensityModel if callable(getattr(instances[0], "log_prob", None)) else LiftedModel
        return kind(instances, d, self.path, self.info)
