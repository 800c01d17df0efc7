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
from .loop import Plan, check_labels


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
    if not isinstance(cls, type):  # e.g. 'numpy:array': importable, but not a source class
        raise ConfigError("data.source", cfg.data.source, "a source class with an info attribute and a "
                          f"sample(n, streams) method (this names a {type(cls).__name__})")
    opts = _options(cls, dict(cfg.data.model_extra or {}), "data")
    try:
        source = cls(opts, base_dir=base_dir) if _accepts(cls, "base_dir") else cls(opts)
    except (TypeError, ValueError) as exc:
        if str(getattr(cls, "__module__", "")).startswith("autophagy"):
            raise  # a bug in a built-in source: to see, not to hide
        raise ConfigError("data.source", cfg.data.source, "", problem=f"rejected its options ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not callable(getattr(source, "sample", None)) or getattr(source, "info", None) is None:
        raise ConfigError("data.source", cfg.data.source, "a source class with an info attribute (SourceInfo) and "
                          "a sample(n, streams) method")
    return source


def build_family(cfg: Config, info):
    """The ``model:`` block's family: a batched family, or a single-dataset model lifted to R replicates."""
    cls = components.resolve("family", cfg.model.family, "model.family")
    raw = dict(cfg.model.model_extra or {})
    if not isinstance(cls, type):
        raise ConfigError("model.family", cfg.model.family, "a family class, or a class with fit(x, rng) and "
                          f"sample(m, rng, bias) methods (this names a {type(cls).__name__})")
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


_KNN_METRICS = {"prd": ("metrics.prd.k", 5), "digit-precision-recall": ("metrics.digit-precision-recall.k", 3)}


def _check_knn(cfg: Config, specs) -> None:
    """k-NN radii need k below both set sizes: checked here, not after generation 0 is fitted."""
    n_eval, n_held = cfg.metrics.n_eval, cfg.metrics.n_heldout
    for name, options in specs:
        if name in _KNN_METRICS:
            field, default = _KNN_METRICS[name]
            k = dict(options or {}).get("k", default)
            if isinstance(k, int) and k >= min(n_eval, n_held):
                raise ConfigError(field, k, f"an integer below metrics.n_eval ({n_eval}) and metrics.n_heldout "
                                            f"({n_held}): the k-th neighbour must exist in both sets")


def _check_fit_size(cfg: Config, info, family, warn: bool) -> None:
    """Family x source: a Gaussian needs two points to estimate a spread; fewer points than dimensions fit a
    singular covariance (log det = −inf, sampling confined to a subspace), which is said before the run."""
    import warnings

    from .policies import smallest_training_set

    if cfg.model.family != "gaussian" or info.kind not in ("vector", "image"):
        return
    n = smallest_training_set(cfg.loop)
    if n < 2:
        raise ConfigError("loop.n_real", cfg.loop.n_real, f"at least 2 points per training set for model.family "
                          f"gaussian (a covariance needs two points; the smallest training set has {n})")
    full = getattr(getattr(family, "options", None), "covariance", "full") == "full"
    if warn and full and n <= info.dim:
        warnings.warn(f"{cfg.name}: model.family gaussian fits a {info.dim}-dimensional covariance to {n} points: "
                      f"singular (rank <= {n - 1}), so param.logdet_cov is -inf; use model.covariance: diag, more "
                      "points, or another family", UserWarning, stacklevel=3)


MEMORY_FRACTION = 0.8  # of physical memory a study's arrays may take before it is refused


def memory_estimate(cfg: Config, info, specs, curator=None) -> int:
    """Bytes the largest arrays of one run hold at once (float64 points, R replicates): generation 0's and
    the largest training set, curation candidates, an accumulate pool, held-out and evaluation sets, and the
    recorded metrics ``(G+1, R)`` per key in the worker and the driver's long frame."""
    from .policies import training_sizes

    R, G, d, loop = cfg.replicates, cfg.generations, max(1, int(info.dim or 1)), cfg.loop
    sizes = training_sizes(loop, G)
    synth = max([loop.synthetic_at(g) for g in range(1, G + 1)] or [0])
    cands = curator.candidates(synth) if curator is not None and synth else synth
    capacity = loop.initial + sum(loop.synthetic_at(g) for g in range(1, G + 1))  # the pool of points stored
    pool = capacity if loop.policy in ("accumulate", "accumulate-subsample") else 0
    fresh = max([loop.real_at(g) for g in range(1, G + 1)] or [0]) if loop.policy == "fresh" else 0
    evals = (cfg.metrics.n_eval + cfg.metrics.n_heldout) if specs else 0
    keys = 6 + 4 * len(specs)
    if _statistics_path(cfg, specs, curator):  # loop._exact_step_ok: no pool of points is stored
        r = min(d, loop.initial - 1) if loop.initial <= d and loop.policy != "replace" else d  # the real set's hull
        per = d * (loop.initial + 2 * synth) + 8 * d * d  # the real set, one batch, a few d x d statistics
        if loop.policy == "accumulate-subsample":  # LiveSubsetPool: the live points (float32, about a quarter
            k = max([loop.real_at(g) for g in range(1, G + 1)] or [0])  # of the pool; a third for safety), the
            per += r * capacity / 6 + 0.75 * capacity + G * k / 2  # slot and last-use maps, the selections
        return int(8 * R * per + 48 * (G + 1) * R * keys)
    points = loop.initial + 2 * max(sizes) + cands + pool + fresh + evals
    return 8 * R * d * points + 48 * (G + 1) * R * keys


def _statistics_path(cfg: Config, specs, curator) -> bool:
    """Whether the run takes a Gaussian statistics path (``loop._exact_step_ok``, from the config alone)."""
    loop = cfg.loop
    return (loop.sufficient_stats == "auto" and cfg.model.family == "gaussian" and not specs and curator is None
            and not cfg.correction and not loop.control and loop.accumulate_weights == "uniform"
            and loop.synthetic_from == "last")


def _physical_memory() -> int | None:
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"


def check_fits_memory(cfg: Config, info, specs, curator=None) -> None:
    """Refuse a run whose arrays would not fit in this machine's memory (one line naming the sizes)."""
    need, have = memory_estimate(cfg, info, specs, curator), _physical_memory()
    if have is not None and need > MEMORY_FRACTION * have:
        raise ConfigError("replicates", cfg.replicates, "", problem=(
            f"this run needs about {_size(need)} of arrays (R = {cfg.replicates} replicates x up to "
            f"{_size(need / max(1, cfg.replicates))} each; d = {info.dim}, G = {cfg.generations}), more than "
            f"{MEMORY_FRACTION:.0%} of this machine's {_size(have)}; lower replicates, sizes or generations, or "
            "pass --no-memory-check (autophagy.run(..., check_memory=False)) if you know better"))


def build(config: Any, base_dir: Path | str = Path("."), control: bool = False, *,
          preflight: bool = False, check_memory: bool = True) -> Plan:
    """Resolve and validate every component of one run: a ``RunSpec``, or a grid-free ``Config``
    (with ``control`` for its real-only control lineage). ``preflight`` (the driver's check of every run
    before any starts, ``autophagy.run``): also warn about fits that will be degenerate and, with
    ``check_memory``, refuse a run whose arrays would not fit in memory (``memory_estimate``)."""
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
    _check_knn(cfg, specs)
    _check_fit_size(cfg, source.info, family, warn=preflight)
    if preflight and check_memory:
        check_fits_memory(cfg, source.info, specs, curator)
    plan = Plan(cfg, source, family, specs, curator, corrector, control)
    check_labels(plan)  # labelled loops (model.labels: source): a labelled source, label-keeping steps
    return plan


def source_info(cfg: Config, base_dir: Path | str = Path(".")):
    """The ``SourceInfo`` a config's source publishes (what theory needs of a run)."""
    return build_source(cfg, Path(base_dir)).info
