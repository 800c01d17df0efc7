"""autophagy: reproducible, tested simulations of self-consuming training loops.

Public API::

    import autophagy
    result = autophagy.run({"model": {"family": "gaussian"}, "loop": {"policy": "replace"}})
    result.metrics        # long DataFrame: run_id, replicate, generation, metric, value
"""
from .api import Result, build, run
from .config import Config, load_config
from .errors import AutophagyError, ConfigError, DataError
from .rng import Streams

__all__ = ["run", "build", "Result", "Config", "load_config", "Streams", "AutophagyError", "ConfigError", "DataError"]
__version__ = "0.1.0"
