"""Config -> RunSpec: one run with every option resolved, named by its canonical hash.

A ``Config`` is what a user wrote; a ``RunSpec`` is what will run. Resolving validates every
component's options and dumps them *with their defaults*, so ``model: {family: gaussian}`` and
``model: {family: gaussian, estimator: mle}`` are the same study with the same id. The id also
carries the lineage (the loop or its real-only control) and the autophagy version: an upgrade that
may change recorded numbers never silently reuses rows an older version wrote (``study_hash`` is
the version-free part, so the store can say that such rows exist).

Presentation-only keys (``name``, ``metrics.table``, ``report``) do not enter the hash.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

from pydantic import ValidationError

from . import _version
from ._version import __version__
from .config import Config, expand, from_validation_error, load_config
from .errors import ConfigError

LINEAGES = ("loop", "control")
PRESENTATION = ("name", "grid", "report")  # top-level keys that never change a recorded number


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunSpec:
    """One run: a grid-free config, its lineage, and the resolved options that name it.

    ``resolved`` is the canonical dict (component options with defaults, metrics sorted);
    ``run_id`` = hash(resolved, lineage, version); ``study_hash`` = hash(resolved, lineage).
    ``base_dir`` is where relative data paths are read from (not part of the id).
    """

    config: Config
    lineage: str
    name: str
    resolved: dict
    version: str = __version__
    base_dir: str = "."

    @property
    def study_hash(self) -> str:
        return _digest({"spec": self.resolved, "lineage": self.lineage})

    @property
    def run_id(self) -> str:
        return _digest({"spec": self.resolved, "lineage": self.lineage, "version": self.version})

    @property
    def control(self) -> bool:
        return self.lineage == "control"


def _dump(cls: Any, raw: dict, prefix: str) -> dict:
    """A component's options validated by its ``Options`` model and dumped with defaults
    (a plug-in without an ``Options`` model keeps its raw options)."""
    from . import components

    model = components.options_model(cls)
    if model is None:
        return dict(raw)
    try:
        return model.model_validate(raw).model_dump(mode="json", by_alias=True)
    except ValidationError as err:
        raise from_validation_error(err, prefix, model) from None


def _method_block(block: dict | None, methods: dict, prefix: str) -> dict | None:
    if not block:
        return None
    method = block.get("method")
    if not isinstance(method, str) or method not in methods:
        raise ConfigError(f"{prefix}.method", method, "one of " + ", ".join(methods))
    opts_cls = methods[method][0]
    try:
        return opts_cls.model_validate(dict(block)).model_dump(mode="json", by_alias=True)
    except ValidationError as err:
        raise from_validation_error(err, prefix, opts_cls) from None


def resolve(cfg: Config) -> dict:
    """The canonical, default-filled form of a grid-free config (what the run id hashes)."""
    from . import components, correction, curation
    from . import metrics as metric_lib

    d = cfg.to_dict()
    for key in PRESENTATION:
        d.pop(key, None)
    src = components.resolve("source", cfg.data.source, "data.source")
    d["data"] = {"source": cfg.data.source, **_dump(src, dict(cfg.data.model_extra or {}), "data")}
    fam = components.resolve("family", cfg.model.family, "model.family")
    d["model"] = {"family": cfg.model.family, **_dump(fam, dict(cfg.model.model_extra or {}), "model")}
    d["curation"] = _method_block(cfg.curation, curation.METHODS, "curation")
    d["correction"] = _method_block(cfg.correction, correction.METHODS, "correction")
    specs = [(m.name, dict(m.options)) for m in cfg.metrics.use]
    metric_lib._check_names(specs)
    use = [{"name": n, "options": metric_lib.parse_options(n, o).model_dump(mode="json", by_alias=True)}
           for n, o in specs]
    d["metrics"] = {**d["metrics"], "use": sorted(use, key=lambda m: m["name"])}
    d["metrics"].pop("table", None)
    return json.loads(json.dumps(d, sort_keys=True, default=str))


def override_label(overrides: Iterable[str] | None) -> list[str]:
    """``--set`` overrides as they appear in run names (``sampling.bias=0.8``); ``name=`` is not shown."""
    out = []
    for item in overrides or ():
        key, _, value = item.partition("=")
        if key.strip() != "name":
            out.append(f"{key.strip()}={value.strip()}")
    return out


def _named(name: str, extra: list[str]) -> str:
    """``name`` with ``extra`` labels merged into its ``[...]`` suffix: ``run[a=1, grid=2]``."""
    if not extra:
        return name
    if name.endswith("]") and "[" in name:
        head, _, inner = name.partition("[")
        return f"{head}[{', '.join(extra)}, {inner}"
    return f"{name}[{', '.join(extra)}]"


def specs_for(config: Any, overrides: list[str] | None = None, *, hidden: list[str] | None = None) -> list[RunSpec]:
    """Every run of a study (grid points, each with its control lineage when ``loop.control``), resolved.

    ``overrides`` (``--set``) appear in the run names; ``hidden`` overrides are applied but not named
    (e.g. the theory command's ``metrics.tradeoff=false``). Raises ``ConfigError`` for any bad option
    of any run before anything is run.
    """
    cfg, base_dir = load_config(config, [*(overrides or []), *(hidden or [])])
    extra = override_label(overrides)
    out = []
    for c in expand(cfg):
        resolved = resolve(c)
        name = _named(c.name, extra)
        version = _version.__version__  # read at call time (tests and upgrades change it)
        out.append(RunSpec(c, "loop", name, resolved, version, str(base_dir)))
        if c.loop.control:
            out.append(RunSpec(c, "control", name + " (real-only control)", resolved, version, str(base_dir)))
    return out
