"""autophagy: reproducible, tested simulations of self-consuming training loops.

Public API::

    import autophagy
    result = autophagy.run({"model": {"family": "gaussian"}, "loop": {"policy": "replace"}})
    result.metrics        # long DataFrame: run_id, replicate, generation, metric, value
"""
import sys as _sys
import types as _types

from ._version import __version__
from .errors import AutophagyError, ConfigError, DataError

# Lazy imports (PEP 562): `import autophagy` and the CLI's --help load neither pandas nor pydantic nor
# numpy until a name below is first used.
_LAZY = {"run": "api", "load": "api", "Result": "api", "Config": "config", "load_config": "config", "Streams": "rng"}


class _Package(_types.ModuleType):
    @property
    def build(self):
        """``autophagy.build(spec)`` is the function: the import system's setattr of the submodule is ignored."""
        from .build import build

        return build

    @build.setter
    def build(self, value):
        pass

    def __getattr__(self, name):
        if name in _LAZY:
            import importlib

            value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
            setattr(self, name, value)
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_LAZY) | {"build"})


_sys.modules[__name__].__class__ = _Package

__all__ = ["run", "load", "build", "Result", "Config", "load_config", "Streams", "AutophagyError", "ConfigError", "DataError"]
