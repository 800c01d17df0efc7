"""Configuration: validated once at the edge (pydantic), frozen afterwards, named by a hash.

A config is a mapping with top-level keys ``name, seed, replicates, generations, data, model,
loop, sampling, metrics`` and, optionally, ``grid`` (dotted paths -> lists of values, expanded
into one run per combination by ``expand``). ``data`` and ``model`` hold the component name
(``source`` / ``family``) plus that component's own options, validated by the component's
``Options`` model when the run is built.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional, Union

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_serializer,
                      model_validator)

from . import schedule
from .errors import ConfigError

TOP_LEVEL = ("name", "seed", "replicates", "generations", "data", "model", "loop", "sampling", "metrics", "grid",
             "curation", "correction", "report")


MAX_CONFIG_BYTES = 10_000_000
MAX_GENERATIONS = 100_000  # schedules and training-set sizes are checked for every g before a run starts


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")


class LoopConfig(_Strict):
    """How each generation's training set is built (see ``autophagy.policies``)."""

    policy: Literal["replace", "augment", "fresh", "accumulate", "accumulate-subsample"] = "replace"
    n_real: Union[int, tuple[int, ...], str] = Field(
        100, description="real points per generation (fixed real set size, or fresh draws): a number, a list "
                         "(entry g for generation g) or a formula over g such as '100 * (g + 1)**2'")
    n_synthetic: Optional[Union[int, tuple[int, ...], str]] = Field(
        None, description="synthetic points per generation (number, list or formula over g); default n_real")
    n_initial: Optional[int] = Field(None, ge=2, description="real points for generation 0 (MAD's n_ini); default n_real")
    synthetic_from: Literal["last", "all"] = "last"
    control: bool = Field(False, description="also run a real-only control lineage with the same budget")
    warm_start: bool = Field(False, description="fit generation g starting from generation g-1's model")
    sufficient_stats: Literal["auto", "off"] = Field(
        "auto", description="auto: Gaussian loops with no sample-based metrics, curation, correction or control "
                            "refit from exact sufficient statistics instead of samples (same law, far faster)")
    accumulate_weights: Literal["uniform", "linear"] = Field(
        "uniform", description="accumulate: keep every synthetic point (uniform), or Gillman et al.'s linear "
                               "weights: batch i of g keeps its first floor((i+1)/g * n_synthetic) points")

    @model_serializer(mode="wrap")
    def _drop_default_weights(self, handler):
        """accumulate_weights at its default is left out of the serialised config (no run id changed)."""
        out = handler(self)
        if out.get("accumulate_weights") == "uniform":
            out.pop("accumulate_weights")
        return out

    @field_validator("sufficient_stats", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        """YAML 1.1 reads a bare ``off`` as false (and ``on`` as true)."""
        return {False: "off", True: "auto"}.get(value, value) if isinstance(value, bool) else value

    _generations: Optional[int] = PrivateAttr(None)  # set by Config: the horizon schedules are checked over

    @field_validator("n_real", "n_synthetic", mode="before")
    @classmethod
    def _schedule(cls, value: Any, info) -> Any:
        """Number, list or formula over g (``autophagy.schedule``); values are checked per generation by Config."""
        return None if value is None else schedule.normalise(f"loop.{info.field_name}", value)

    @model_validator(mode="after")
    def _initial_matches(self):
        if self.accumulate_weights != "uniform" and self.policy != "accumulate":
            raise ConfigError("loop.accumulate_weights", self.accumulate_weights,
                              f"uniform for policy {self.policy!r} (weights apply to policy accumulate)")
        if not schedule.is_constant(self.n_real) and self.policy in ("replace", "augment", "accumulate"):
            raise ConfigError("loop.n_real", _shown(self.n_real),
                              f"a single number for policy {self.policy!r} (its real data are generation 0's set); "
                              "schedule loop.n_synthetic instead, or use policy fresh / accumulate-subsample")
        if self.n_initial is not None and self.policy in ("augment", "accumulate", "accumulate-subsample") and (
                self.n_initial != self.real_at(0)):
            raise ConfigError("loop.n_initial", self.n_initial,
                              f"unset or equal to loop.n_real ({self.real_at(0)}) for policy {self.policy!r}: "
                              "its fixed real set is generation 0's data")
        return self

    def real_at(self, g: int) -> int:
        """Real points at generation g (fresh draws, or the subsample budget): ``loop.n_real`` entry g."""
        return schedule.at("loop.n_real", self.n_real, g)

    def synthetic_at(self, g: int) -> int:
        """Synthetic points at generation g >= 1: ``loop.n_synthetic`` entry g (default: ``n_real``'s)."""
        if self.n_synthetic is None:
            return self.real_at(g)
        return schedule.at("loop.n_synthetic", self.n_synthetic, g)

    @property
    def scheduled(self) -> bool:
        """Whether n_real or n_synthetic changes with the generation."""
        return not (schedule.is_constant(self.n_real) and (self.n_synthetic is None
                                                           or schedule.is_constant(self.n_synthetic)))

    def sizes(self, generations: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(n_real (G+1,), n_synthetic (G+1,))`` per generation, every value checked; entry 0 of
        n_synthetic is reported as 0 (generation 0 trains on its real set only)."""
        real = tuple(self.real_at(g) for g in range(generations + 1))
        return real, (0,) + tuple(self.synthetic_at(g) for g in range(1, generations + 1))

    @property
    def synthetic(self) -> int:
        """The synthetic count of an unscheduled loop (use ``synthetic_at(g)`` when it may be scheduled)."""
        if self.scheduled:
            raise TypeError("loop.n_synthetic / loop.n_real is a schedule: use LoopConfig.synthetic_at(g)")
        return self.synthetic_at(1)

    @property
    def initial(self) -> int:
        return self.n_initial if self.n_initial is not None else self.real_at(0)

    def check_schedules(self, generations: int) -> None:
        """Every generation's sizes are whole numbers >= 0 and every training set has at least one point
        (``ConfigError`` naming the field and generation otherwise). Called by Config, which knows G."""
        from .policies import training_sizes

        schedule.values("loop.n_real", self.n_real, generations)
        if self.n_synthetic is not None:
            schedule.values("loop.n_synthetic", self.n_synthetic, generations)
        sizes = training_sizes(self, generations)
        for g, n in enumerate(sizes):
            if n < 1:
                if g == 0:
                    field = "loop.n_initial" if self.n_initial is not None else "loop.n_real"
                else:
                    field = "loop.n_synthetic" if self.n_synthetic is not None else "loop.n_real"
                raise ConfigError(field, _shown(getattr(self, field.split(".")[1])),
                                  f"sizes giving every generation a non-empty training set "
                                  f"(policy {self.policy!r} trains on {n} points at generation {g})")


def _shown(raw: Any) -> Any:
    return list(raw) if isinstance(raw, tuple) else raw


class SamplingConfig(_Strict):
    """How a model is sampled: MAD's bias λ (the temperature for token models) and, for token models,
    the decoding rules (see docs/text.md). Decoding options at their defaults are left out of the
    serialised config, so adding them changed no existing run id."""

    bias: float = Field(1.0, gt=0.0, le=1.0, description="MAD's sampling bias λ in (0, 1]; 1 = unbiased "
                        "(token models: the temperature)")
    top_k: Optional[int] = Field(None, ge=1, description="token models: sample among the k most likely tokens")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="token models: nucleus sampling, the smallest set of "
                         "tokens holding probability ≥ top_p; 1 = off")
    beams: int = Field(1, ge=1, description="token models: beam search with this many beams after a sampled "
                       "first token (Shumailov et al.'s setting); 1 = ancestral sampling")
    repetition_penalty: float = Field(1.0, ge=1.0, description="token models: log-probabilities of tokens "
                                      "already in the sequence are multiplied by this (Keskar et al. 2019)")

    DECODING: ClassVar[dict] = {"top_k": None, "top_p": 1.0, "beams": 1, "repetition_penalty": 1.0}

    @model_serializer(mode="wrap")
    def _drop_default_decoding(self, handler):
        out = handler(self)
        for key, default in self.DECODING.items():
            if out.get(key) == default:
                out.pop(key, None)
        return out

    @property
    def decoding_set(self) -> list[str]:
        """The decoding options given a non-default value (``sampling.top_k`` ...)."""
        return [f"sampling.{k}" for k, d in self.DECODING.items() if getattr(self, k) != d]


class MetricSpec(_Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class MetricsConfig(_Strict):
    """Sample-based metrics (``param.*`` metrics are always recorded)."""

    use: tuple[MetricSpec, ...] = ()
    n_eval: int = Field(500, ge=2, description="model samples drawn per generation for sample-based metrics")
    n_heldout: int = Field(500, ge=2, description="held-out real points (drawn once per replicate)")
    tradeoff: bool = Field(
        True, description="runs with curation or correction also record quality and diversity side by side "
                          "(prd, variance-ratio, mode-coverage on mixtures, reward-mean of the curation reward)")
    table: tuple[str, ...] = Field((), description="result keys shown in the CLI summary table (default: automatic)")
    grid_samples: int = Field(
        64, ge=0, description="image sources, when results are saved: replicate 0's samples drawn each generation "
                              "and written as one PNG mosaic (out/grids/<run_id>/gen0000.png ...); 0 = none")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, (list, tuple)):
            value = {"use": value}
        if isinstance(value, dict) and "use" in value:
            items = []
            for item in value["use"] or ():
                if isinstance(item, str):
                    items.append({"name": item})
                elif isinstance(item, dict) and "name" in item and not set(item) <= {"name", "options"}:
                    items.append({"name": item["name"], "options": {k: v for k, v in item.items() if k != "name"}})
                else:
                    items.append(item)
            value = {**value, "use": items}
        return value


class PhaseSpec(_Strict):
    """One phase diagram: ``metric`` at ``generation`` (-1: the last) over two swept parameters."""

    x: str = Field(description="dotted swept parameter on the horizontal axis, e.g. loop.n_synthetic")
    y: str = Field(description="dotted swept parameter on the vertical axis, e.g. sampling.bias")
    metric: str
    generation: int = Field(-1, ge=-1)


class ReportConfig(_Strict):
    """The figures that tell a study's story (``autophagy report``); presentation only, not part of the hash."""

    metrics: tuple[str, ...] = Field((), description="headline metrics, one figure each, in this order")
    pairs: tuple[tuple[str, str], ...] = Field((), description="[x, y] metric pairs drawn as paths over generations")
    phase: tuple[PhaseSpec, ...] = Field((), description="heatmaps of a metric over two swept parameters")
    band: Literal["auto", "se", "quantile"] = Field(
        "auto", description="replicate band: mean ± 2 s.e., the 10%-90% quantiles around the median, or auto "
                            "(quantiles for heavy-tailed metrics)")


class Component(BaseModel):
    """``data:`` / ``model:`` / ``curation:`` / ``correction:`` blocks: a name plus free options."""

    model_config = ConfigDict(extra="allow", frozen=True, ser_json_inf_nan="constants")

    def options(self, exclude: str) -> dict[str, Any]:
        return {k: v for k, v in (self.model_extra or {}).items()}


class DataConfig(Component):
    source: str = "gaussian"


class ModelConfig(Component):
    family: str = "gaussian"


class Config(_Strict):
    name: str = "run"
    seed: int = Field(0, ge=0)
    replicates: int = Field(100, ge=1)
    generations: int = Field(10, ge=0, le=MAX_GENERATIONS,
                             description="G: generations 0..G are fitted and recorded (at most 100,000)")
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loop: LoopConfig = LoopConfig()
    sampling: SamplingConfig = SamplingConfig()
    metrics: MetricsConfig = MetricsConfig()
    curation: Optional[dict[str, Any]] = None
    correction: Optional[dict[str, Any]] = None
    report: Optional[ReportConfig] = None

    @field_validator("seed", "replicates", "generations", mode="before")
    @classmethod
    def _not_bool(cls, value: Any, info) -> Any:
        """``replicates: true`` is a typo, not 1 (pydantic's lax mode would accept it)."""
        if isinstance(value, bool):
            raise ConfigError(info.field_name, value, "a whole number, not true/false")
        return value
    grid: Optional[dict[str, list[Any]]] = None

    @model_validator(mode="after")
    def _schedules(self):
        """loop.n_real / loop.n_synthetic schedules checked for g = 0..G before any run starts."""
        self.loop.check_schedules(self.generations)
        self.loop._generations = self.generations
        return self

    @field_validator("grid")
    @classmethod
    def _grid_lists(cls, value):
        for key, values in (value or {}).items():
            if not values:
                raise ConfigError(f"grid.{key}", values, "a non-empty list of values")
        return value

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=False)

    def hash(self) -> str:
        """Canonical hash: the resolved config (minus ``name``) as sorted JSON, SHA-256, 12 hex digits."""
        d = self.to_dict()
        d.pop("name", None)
        d.pop("grid", None)
        d.pop("report", None)  # presentation only: the same simulation whatever its figures
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


_TYPE_TAGS = {"float", "int", "str", "bool", "list", "dict", "tuple", "none", "is-instance", "json-or-python"}


def _is_union_tag(part: str) -> bool:
    """pydantic puts union branches and validator kinds in ``loc`` (``constrained-float``, ``literal['a']``,
    ``function-after[...]``); field names are identifiers, so anything else is a tag to drop."""
    return part in _TYPE_TAGS or "[" in part or "-" in part


def _format_loc(loc: tuple) -> str:
    parts = []
    for p in loc:
        if isinstance(p, int):
            parts[-1] = f"{parts[-1]}[{p}]" if parts else f"[{p}]"
        elif _is_union_tag(str(p)):
            continue
        else:
            parts.append(str(p))
    return ".".join(parts) or "config"


def _fields_at(model: Any, loc: tuple) -> list[str]:
    """The option names of the (nested) pydantic model that ``loc`` points into; [] when unknown."""
    import typing

    for part in loc:
        field = getattr(model, "model_fields", {}).get(part) if isinstance(part, str) else None
        if field is None:
            return []
        inner = [a for a in (field.annotation, *typing.get_args(field.annotation)) if isinstance(a, type)
                 and issubclass(a, BaseModel)]
        if not inner:
            return []
        model = inner[0]
    fields = getattr(model, "model_fields", None)
    return [f.alias or name for name, f in fields.items()] if fields else []


def from_validation_error(err: ValidationError, prefix: str = "", model: Any = None) -> ConfigError:
    """Turn pydantic's first error into our one-line ConfigError (union branches merged with "or").

    ``model``: the pydantic class that was validated, so an unknown option can list the valid ones."""
    errors = err.errors(include_url=False)
    first = errors[0]
    field = _format_loc(tuple(first.get("loc", ())))
    ctx_err = (first.get("ctx") or {}).get("error")
    if isinstance(ctx_err, ConfigError):
        return ctx_err
    if prefix:
        field = f"{prefix}.{field}" if field != "config" else prefix
    value = first.get("input")
    if isinstance(value, dict):
        value = "{...}"
    if first.get("type") == "extra_forbidden":
        valid = _fields_at(model, tuple(first.get("loc", ()))[:-1]) if model is not None else []
        hint = f"valid options: {', '.join(valid)}" if valid else "`autophagy components` lists the options"
        return ConfigError(field, value, "", problem=f"unknown option (check the spelling; {hint})")
    msgs = []
    for e in errors:
        if _format_loc(tuple(e.get("loc", ()))) != _format_loc(tuple(first.get("loc", ()))):
            continue
        msg = e.get("msg", "invalid value")
        for lead in ("Value error, ", "Input should be ", "input should be "):
            if msg.startswith(lead):
                msg = msg[len(lead):]
        if msg not in msgs:
            msgs.append(msg)
    return ConfigError(field, value, " or ".join(msgs))


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError("config", str(path), "an existing .yaml, .yml or .toml file")
    if not path.is_file():
        raise ConfigError("config", str(path), "a .yaml, .yml or .toml file, not a directory" if path.is_dir()
                          else "a regular .yaml, .yml or .toml file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError("config", str(path), "", problem=f"{path.stat().st_size:,} bytes: a config is at most "
                                                         f"{MAX_CONFIG_BYTES:,} bytes (data belong in data.path)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("config", str(path), "", problem=f"not UTF-8 text (byte {exc.start}: "
                                                         f"{exc.object[exc.start:exc.start + 1]!r})") from None
    except OSError as exc:
        raise ConfigError("config", str(path), "", problem=f"cannot be read ({exc.strerror or exc})") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise ConfigError("config", str(path), "a file ending in .yaml, .yml or .toml")
    except (yaml.YAMLError, tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:  # bad dates, deep nesting
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError("config", str(path), f"valid YAML/TOML ({first})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("config", str(path), "a mapping of top-level keys " + ", ".join(TOP_LEVEL))
    return data


def parse_value(text: str) -> Any:
    """``--set`` values are YAML scalars/lists: ``3`` -> int, ``0.5`` -> float, ``[1, 2]`` -> list."""
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError):
        return text


def set_path(d: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    cur = d
    for k in keys[:-1]:
        nxt = cur.get(k)
        if nxt is None:
            nxt = cur[k] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(dotted, value, f"a path into a mapping ({'.'.join(keys[:-1])} is not one)")
        cur = nxt
    cur[keys[-1]] = value


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``key.path=value`` strings (the CLI's ``--set``)."""
    out = json.loads(json.dumps(raw, default=str))
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError("--set", item, "key.path=value")
        key, _, text = item.partition("=")
        set_path(out, key.strip(), parse_value(text))
    return out


def load_config(source: Union[str, Path, dict[str, Any], Config], overrides: list[str] | None = None) -> tuple[Config, Path]:
    """Validate a dict, a YAML/TOML path or a Config. Returns (config, base_dir for relative paths)."""
    if isinstance(source, Config):
        if not overrides:
            return source, Path(".")
        source = source.to_dict()
    base = Path(".")
    if isinstance(source, (str, Path)):
        path = Path(source)
        raw = _read(path)
        base = path.resolve().parent
    elif isinstance(source, dict):
        raw = source
    else:
        raise ConfigError("config", type(source).__name__, "a mapping, a path to a YAML/TOML file, or a Config")
    unknown = [k for k in raw if k not in TOP_LEVEL]
    if unknown:
        raise ConfigError(unknown[0], raw[unknown[0]] if not isinstance(raw[unknown[0]], dict) else "{...}",
                          "", problem="unknown top-level key; valid keys: " + ", ".join(TOP_LEVEL))
    raw = apply_overrides(raw, overrides)
    try:
        return Config.model_validate(raw), base
    except ValidationError as err:
        raise from_validation_error(err, model=Config) from None


def expand(config: Config) -> list[Config]:
    """One Config per combination of the ``grid`` values (the config itself if no grid)."""
    if not config.grid:
        return [config]
    keys = list(config.grid)
    base = config.to_dict()
    base["grid"] = None
    out = []
    for combo in itertools.product(*(config.grid[k] for k in keys)):
        d = json.loads(json.dumps(base))
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, combo))
        for k, v in zip(keys, combo):
            set_path(d, k, v)
        d["name"] = f"{config.name}[{label}]"
        try:
            out.append(Config.model_validate(d))
        except ValidationError as err:
            raise from_validation_error(err, model=Config) from None
    return out
