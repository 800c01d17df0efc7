"""autophagy: reproducible, tested simulations of self-consuming training loops.

Public API::

    import autophagy
    result = autophagy.run({"model": {"family": "gaussian"}, "loop": {"policy": "replace"}})
    result.metrics        # long DataFrame: run_id, replicate, generation, metric, value
"""
from ._version import __version__
from .api import Result, load, run
from .build import build
from .config import Config, load_config
from .errors import AutophagyError, ConfigError, DataError
from .rng import Streams

__all__ = ["run", "load", "build", "Result", "Config", "load_config", "Streams", "AutophagyError", "ConfigError", "DataError"]
