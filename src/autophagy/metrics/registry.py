"""The metric table: built-in records, third-party metrics from entry points, the checks a run's metrics
pass before the first fit, and ``compute``, which evaluates them each generation.

Built-in metrics are the ``METRICS`` tuples of the kind modules (``samples``, ``histograms``, ``density``,
``spread``, ``domain``, ``images``, ``text``). Third-party metrics are entry points of the group
``autophagy.metrics``, looked up only when a name is not built in (or when every metric is listed), so
an installed plug-in costs nothing until it is used. An entry point names either a ``Metric`` record or
a plain function that declares itself with optional attributes (third parties need not import us)::

    def my_metric(reference, samples, *, model=None, info=None, streams=None, **options):
        return {"my-metric": ...}                  # {key: (R,) array}, or one (R,) array
    my_metric.kinds = {"vector"}                  # SourceInfo.kind values (default: vector, regression, image)
    my_metric.needs = {"log_prob"}                # model capabilities (default: none)
    my_metric.Options = MyOptions                 # a pydantic model of its options (default: none allowed)
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Iterator

import numpy as np

from ..errors import ConfigError
from . import density, domain, histograms, images, samples, spread, text
from .base import CAPABILITIES, DATA_NAMES, KIND_NAMES, VECTORS, Metric, NoOptions, parse

GROUP = "autophagy.metrics"
BUILTIN: dict[str, Metric] = {m.name: m for mod in (samples, histograms, density, spread, domain, images, text)
                              for m in mod.METRICS}
_LOADED: dict[str, Metric] = {}  # entry-point metrics already imported in this process


def _from_entry_point(name: str, obj: Any) -> Metric:
    """A ``Metric`` record, or one built from a plain function's declared attributes."""
    if isinstance(obj, Metric):
        return obj if obj.name == name else replace(obj, name=name)
    field = f"metrics.{name}"
    if not callable(obj):
        raise ConfigError(field, repr(obj), "an entry point naming a metric function or an autophagy.metrics.Metric")
    kinds = getattr(obj, "kinds", VECTORS)
    kinds = frozenset({kinds} if isinstance(kinds, str) else kinds)
    if not kinds:
        raise ConfigError(f"{field}.kinds", "set()", "the SourceInfo.kind values it measures, e.g. {'vector'}")
    needs = getattr(obj, "needs", ())
    needs = frozenset({needs} if isinstance(needs, str) else needs)
    unknown = sorted(needs - set(CAPABILITIES))
    if unknown:
        raise ConfigError(f"{field}.needs", unknown[0], "one of " + ", ".join(CAPABILITIES))
    opts = getattr(obj, "Options", None) or NoOptions
    return Metric(name, obj, kinds=kinds, needs=needs, options=opts)


def _plugins() -> dict[str, Any]:
    from ..components import entry_points

    return {n: ep for n, ep in entry_points(GROUP).items() if n not in BUILTIN}


def lookup(name: str) -> Metric:
    """The record of metric ``name``: built in, else an installed ``autophagy.metrics`` entry point."""
    if name in BUILTIN:
        return BUILTIN[name]
    if name not in _LOADED:
        ep = _plugins().get(name) if isinstance(name, str) else None
        if ep is None:
            raise ConfigError("metrics", name, "one of " + ", ".join(sorted(names())))
        from ..components import load_entry_point

        _LOADED[name] = _from_entry_point(name, load_entry_point(ep, f"metrics.{name}"))
    return _LOADED[name]


def _unavailable(err: ConfigError):
    def fn(*args, **kwargs):
        raise err
    fn.__doc__ = f"(unavailable: {err})"
    return fn


def names() -> list[str]:
    """Every metric name: the built-in ones, then installed entry points."""
    return [*BUILTIN, *sorted(_plugins())]


class _Table(Mapping):
    """A read-only view ``name -> attribute of the record`` over built-in and entry-point metrics."""

    def __init__(self, attr: str):
        self._attr = attr

    def __getitem__(self, name: str):
        if name not in self:
            raise KeyError(name)
        try:
            return getattr(lookup(name), self._attr)
        except ConfigError as err:  # a plug-in that fails to import is listed as unavailable, not a crash
            return getattr(Metric(name, _unavailable(err)), self._attr)

    def __contains__(self, name: object) -> bool:
        return name in BUILTIN or (isinstance(name, str) and name in _plugins())

    def __iter__(self) -> Iterator[str]:
        return iter(names())

    def __len__(self) -> int:
        return len(names())


METRICS: Mapping[str, Any] = _Table("fn")  # name -> function (what docs and `autophagy components` list)
OPTIONS: Mapping[str, type] = _Table("options")  # name -> options model


def parse_options(name: str, options: dict) -> Any:
    """Validate a metric's options; unknown keys and bad values raise ``ConfigError``."""
    return parse(lookup(name).options, name, options)


def _check_names(specs) -> None:
    seen = set()
    for name, _ in specs:
        lookup(name)
        if name in seen:
            raise ConfigError("metrics", name, "each metric at most once",
                              problem="listed twice; list each metric once")
        seen.add(name)


def _kinds(name: str) -> frozenset:
    try:
        return lookup(name).kinds
    except ConfigError:  # a plug-in that fails to import is not offered as an alternative
        return frozenset()


def _kind_error(metric: Metric, info) -> ConfigError:
    """What to say when ``metric`` does not declare the data's kind: for a vector metric on data that are
    not vectors (tokens, categories), the metrics those data take; otherwise the source the metric needs."""
    if metric.kinds & VECTORS and info.kind not in VECTORS:
        fits = sorted(n for n in names() if info.kind in _kinds(n))
        data = DATA_NAMES.get(info.kind, info.kind)
        return ConfigError("metrics", metric.name, f"for {data} data one of " + ", ".join(fits))
    wanted = sorted(metric.kinds)
    sources = " or ".join(KIND_NAMES.get(k, (f"a {k} source", k))[0] for k in wanted)
    adjective = KIND_NAMES.get(wanted[0], ("", wanted[0]))[1] if len(wanted) == 1 else "/".join(wanted)
    article = "an" if adjective[:1] in tuple("aeiou") else "a"
    return ConfigError("metrics", metric.name, f"{sources} for {article} {adjective} metric")


def check_applicable(specs, info, has_log_prob: bool) -> None:
    """Raise ``ConfigError`` before a run starts if a metric is unknown, listed twice, badly configured or
    does not apply, judged by what each metric declares: the data ``kinds`` it measures, the model
    capabilities it ``needs`` (``has_log_prob``), the source ``truth`` it reads, and its own ``check``
    of the options against the source. ``specs`` = [(name, options), ...]."""
    _check_names(specs)
    have = {"log_prob": has_log_prob}
    for name, options in specs:
        metric = lookup(name)
        o = parse(metric.options, name, dict(options or {}))
        if info.kind not in metric.kinds:
            raise _kind_error(metric, info)
        for need in sorted(metric.needs):
            if not have.get(need, False):
                raise ConfigError("metrics", name, f"a model family with {need} (this one has none): drop {name}")
        for key, wanted in metric.truth.items():
            if (info.truth or {}).get(key) is None:
                raise ConfigError("metrics", name, wanted)
        if metric.check is not None:
            metric.check(o, info, has_log_prob)


TRADEOFF_PRD_MAX_DIM = 64  # k-NN balls above this: O(n·m·d) per replicate (about 1 s at 576 pixels) and weak on raw pixels


def with_tradeoff(specs, info, curation: dict | None) -> list:
    """``specs`` plus what shows MAD's "quality kept, diversity lost" trade-off, where missing and applicable:
    ``prd`` (precision = quality, recall = diversity; data of at most ``TRADEOFF_PRD_MAX_DIM`` dimensions),
    ``variance-ratio`` (diversity), ``mode-coverage`` (mixture sources: minority-mode mass) and ``reward-mean``
    with the curation's own reward. Categorical data get ``tv`` and ``kl`` instead; only metrics that declare
    the data's kind are added (token data get none of these). Used for runs with curation or correction."""
    from ..rewards import RewardOptions

    specs = list(specs)
    have = {name for name, _ in specs}
    if info.kind == "categorical":
        wanted = [("tv", {}), ("kl", {})]
    else:
        wanted = [("prd", {})] if info.dim <= TRADEOFF_PRD_MAX_DIM else []
        wanted.append(("variance-ratio", {}))
        if info.truth.get("components") is not None:
            wanted.append(("mode-coverage", {}))
        if curation and curation.get("method") not in ("random-k", "denoise"):
            keys = {f.alias or name for name, f in RewardOptions.model_fields.items()}
            wanted.append(("reward-mean", {k: curation[k] for k in keys if k in curation}))
    return specs + [(name, opts) for name, opts in wanted if name not in have and info.kind in BUILTIN[name].kinds]


def compute(specs, reference, samples, *, model=None, info=None, streams=None) -> dict[str, np.ndarray]:
    """Evaluate ``specs`` = [(name, options), ...]; returns {result key: (R,) array}.

    Each metric draws from its own sub-stream ``streams.child(name)``, so adding or removing a
    metric never changes another metric's numbers. Replicates whose samples hold NaN or inf (a
    diverged model) get NaN for every metric declared ``masked`` (all but heldout-nll, which does
    not read the samples). A metric may return one ``(R,)`` array instead of a dict: it is recorded
    under the metric's name.
    """
    _check_names(specs)
    samples = np.asarray(samples)
    R = samples.shape[0]
    # A diverged replicate (NaN/inf samples) gets NaN for sample-based metrics instead of failing the
    # run (KD-trees and eigensolvers reject non-finite input); its slot is filled with zeros meanwhile.
    bad = ~np.isfinite(samples).reshape(R, -1).all(axis=1) if samples.dtype.kind == "f" else np.zeros(R, bool)
    if bad.any():
        samples = np.where(bad[:, None, None], 0.0, samples)
    out: dict[str, np.ndarray] = {}
    for name, options in specs:
        metric = lookup(name)
        child = streams.child(name) if streams is not None else None
        values = metric.fn(reference, samples, model=model, info=info, streams=child, **dict(options or {}))
        if not isinstance(values, Mapping):
            values = {name: values}
        for key, v in values.items():
            v = np.asarray(v, dtype=float)
            if v.shape != (R,):
                raise RuntimeError(f"metric {name!r} returned {key!r} with shape {v.shape}, expected ({R},)")
            out[key] = np.where(bad, np.nan, v) if metric.masked else v
    return out
