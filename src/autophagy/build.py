"""RunSpec (or Config) -> Plan: construct and validate every component of one run.

Everything a run can know before its first fit is checked here (component options, training-set
sizes, which metrics apply, curation rewards that need a density), for every run of a study
before any of them starts. Constructors are called once, with the arguments their signature
declares: a ``TypeError`` inside a constructor is a bug to see, never a cue to retry differently.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import components
from .config import Config, from_validation_error
from .errors import ConfigError
from .loop import Plan


def _options(cls, raw: dict, prefix: str):
    model = components.options_model(cls)
    if model is None:
        return raw
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise from_validation_error(err, prefix, model) from None


def _accepts(cls, name: str) -> bool:
    """Whether ``cls(...)`` declares a keyword ``name`` (or ``**kwargs``)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def build_source(cfg: Config, base_dir: Path = Path(".")):
    """The ``data:`` block's source; sources that read files declare a ``base_dir`` parameter."""
    cls = components.resolve("source", cfg.data.source, "data.source")
    opts = _options(cls, dict(cfg.data.model_extra or {}), "data")
    return cls(opts, base_dir=base_dir) if _accepts(cls, "base_dir") else cls(opts)


def build_family(cfg: Config, info):
    """The ``model:`` block's family: a batched family, or a single-dataset model lifted to R replicates."""
    cls = components.resolve("family", cfg.model.family, "model.family")
    raw = dict(cfg.model.model_extra or {})
    if getattr(cls, "batched", False):
        return cls(_options(cls, raw, "model"), info)
    from .models.lifted import Lifted

    if not callable(getattr(cls, "fit", None)) or not callable(getattr(cls, "sample", None)):
        raise ConfigError("model.family", cfg.model.family, "a class with fit(x, rng) and sample(m, rng, bias) methods")
    try:
        inspect.signature(cls).bind(**raw)
    except TypeError as exc:
        raise ConfigError("model", "{...}", f"options accepted by {cfg.model.family} ({exc})") from None
    except ValueError:  # no introspectable signature: the constructor below decides
        pass
    try:
        cls(**raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError("model", "{...}", "", problem=f"{cfg.model.family} rejected its options: {exc}") from None
    return Lifted(cls, raw, info)


def _decoding(cfg: Config, family) -> None:
    """Token families declare ``decodes = True`` and get ``sampling`` (top-k, top-p, beams, repetition
    penalty) once here; ``sampling.bias`` still reaches ``model.sample`` as the temperature."""
    if getattr(family, "decodes", False):
        family.decoding = cfg.sampling
    elif cfg.sampling.decoding_set:
        field = cfg.sampling.decoding_set[0]
        raise ConfigError(field, getattr(cfg.sampling, field.split(".")[1]),
                          f"its default for model.family {cfg.model.family!r}: decoding options apply to token "
                          "families (ngram, transformer, hf-causal-lm)")


def build(config: Any, base_dir: Path | str = Path("."), control: bool = False) -> Plan:
    """Resolve and validate every component of one run: a ``RunSpec``, or a grid-free ``Config``
    (with ``control`` for its real-only control lineage)."""
    from .spec import RunSpec

    if isinstance(config, RunSpec):
        cfg, base_dir, control = config.config, Path(config.base_dir), config.control
    else:
        cfg, base_dir = config, Path(base_dir)
    source = build_source(cfg, base_dir)
    family = build_family(cfg, source.info)
    _decoding(cfg, family)
    if hasattr(family, "check_train_size"):
        from .policies import smallest_training_set

        family.check_train_size(smallest_training_set(cfg.loop))
    specs = [(m.name, dict(m.options)) for m in cfg.metrics.use]
    if (cfg.curation or cfg.correction) and cfg.metrics.tradeoff:
        from .metrics import with_tradeoff

        specs = with_tradeoff(specs, source.info, cfg.curation)
    if specs:
        from . import metrics as metric_lib

        metric_lib.check_applicable(specs, source.info, has_log_prob=getattr(family, "has_log_prob", True))
    curator = corrector = None
    if cfg.curation:
        from . import curation

        curator = curation.build(cfg.curation, source.info, base_dir)
        ranks_by_density = getattr(curator, "reward", None) is not None and curator.opts.reward == "log-likelihood"
        if ranks_by_density and not getattr(family, "has_log_prob", True):
            raise ConfigError("curation.reward", "log-likelihood",
                              f"a reward that needs no density (distance, classifier or 'pkg.mod:fn'): "
                              f"model.family {cfg.model.family} has no log_prob")
    if cfg.correction:
        from . import correction

        corrector = correction.build(cfg.correction, source, base_dir)
    return Plan(cfg, source, family, specs, curator, corrector, control)


def source_info(cfg: Config, base_dir: Path | str = Path(".")):
    """The ``SourceInfo`` a config's source publishes (what theory needs of a run)."""
    return build_source(cfg, Path(base_dir)).info
