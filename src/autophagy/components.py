"""Literal name -> object tables. Entries are ``"module:attribute"`` strings imported lazily,
so importing autophagy never imports torch or a family nobody uses.

Lookup order for a source or family name: the built-in table, then installed entry points (groups
``autophagy.families``, ``autophagy.sources``), then a ``"package.module:Attribute"`` import path.
Metrics are looked up by ``autophagy.metrics.registry``: the built-in records, then entry points of
the group ``autophagy.metrics`` (``entry_points`` / ``load_entry_point`` below).
"""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

from .errors import ConfigError

SOURCES = {
    "gaussian": "autophagy.data.gaussian:GaussianSource",
    "mixture": "autophagy.data.mixtures:MixtureSource",
    "moons": "autophagy.data.toys:MoonsSource",
    "circles": "autophagy.data.toys:CirclesSource",
    "swiss-roll": "autophagy.data.toys:SwissRollSource",
    "blobs": "autophagy.data.toys:BlobsSource",
    "categorical": "autophagy.data.categorical:CategoricalSource",
    "linear-regression": "autophagy.data.regression:RegressionSource",
    "file": "autophagy.data.files:FileSource",
    "projectile": "autophagy.data.projectile:ProjectileSource",
    "binomial-grid": "autophagy.data.images:BinomialGridSource",
    "digits": "autophagy.data.images:DigitsSource",
    "images": "autophagy.data.images:ImageFileSource",
    "memmap": "autophagy.data.lazy:MemmapSource",
    "markov-text": "autophagy.data.text:MarkovTextSource",
    "hmm-text": "autophagy.data.text:HMMTextSource",
    "text": "autophagy.data.text:TextFileSource",
}

FAMILIES = {
    "gaussian": "autophagy.models.gaussian:GaussianFamily",
    "kde": "autophagy.models.kde:KDEFamily",
    "gmm": "autophagy.models.gmm:GMMFamily",
    "categorical": "autophagy.models.categorical:CategoricalFamily",
    "linear-regression": "autophagy.models.regression:RegressionFamily",
    "vae": "autophagy.models.vae:VAEFamily",
    "ddpm": "autophagy.models.ddpm:DDPMFamily",
    "flow-matching": "autophagy.models.flow_matching:FlowMatchingFamily",
    "gan": "autophagy.models.gan:GANFamily",
    "torch": "autophagy.models.user_torch:TorchFamily",
    "ngram": "autophagy.models.ngram:NGramFamily",
    "transformer": "autophagy.models.transformer:TransformerFamily",
    "hf-causal-lm": "autophagy.models.hf:HFCausalLMFamily",
}

POLICIES = ("replace", "augment", "fresh", "accumulate", "accumulate-subsample")

GROUPS = {"source": ("autophagy.sources", SOURCES), "family": ("autophagy.families", FAMILIES)}


def import_path(path: str, field: str) -> Any:
    """Import ``"pkg.mod:attr"`` (``attr`` may be dotted); a failure is a ConfigError on ``field``."""
    mod_name, _, attr = path.partition(":")
    if not mod_name or not attr:
        raise ConfigError(field, path, "a built-in name or an import path 'package.module:Name'")
    try:
        obj: Any = importlib.import_module(mod_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(field, path, f"an importable 'package.module:Name' ({type(exc).__name__}: {exc})") from None
    return obj


def entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    """The installed entry points of ``group`` by name, not yet imported (the first of duplicate names wins)."""
    try:
        eps = metadata.entry_points(group=group)
    except Exception:  # pragma: no cover - broken environments
        return {}
    out: dict[str, metadata.EntryPoint] = {}
    for ep in eps:
        out.setdefault(ep.name, ep)
    return out


def load_entry_point(ep: metadata.EntryPoint, field: str) -> Any:
    """Import what an entry point names; a plug-in that fails to import is a ConfigError on ``field``."""
    try:
        return ep.load()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(field, ep.value, f"an importable entry point ({type(exc).__name__}: {exc})") from None


def _entry_point(group: str, name: str) -> Any | None:
    ep = entry_points(group).get(name)
    return ep.load() if ep is not None else None


def resolve(kind: str, name: str, field: str) -> Any:
    """The class for a source or family name (built-in, entry point, or import path)."""
    group, table = GROUPS[kind]
    if name in table:
        return import_path(table[name], field)
    found = _entry_point(group, name)
    if found is not None:
        return found
    if ":" in name:
        return import_path(name, field)
    raise ConfigError(field, name, "one of " + ", ".join(sorted(table)) + " or an import path 'package.module:Name'")


def options_model(cls: Any):
    """The pydantic options model a component declares (``Options``), or None."""
    return getattr(cls, "Options", None)


def type_name(annotation: Any) -> str:
    """A readable type: ``'ring' | 'grid' | 'custom'`` for Literals, ``int | None`` for Optionals, ``tuple[float, ...]``."""
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0]) + _bounds(args[1:])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        return " | ".join("None" if a is type(None) else type_name(a) for a in args)
    if origin is not None and args:
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _bounds(metadata) -> str:
    """`` > 0``, `` >= 1`` ... from pydantic/annotated-types constraints (others are left out)."""
    out = ""
    for meta in metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            value = getattr(meta, attr, None)
            if value is not None:
                out += f" {sym} {value}"
    return out


def describe_options(model: Any) -> list[str]:
    """One line per field of a pydantic options model: ``name: type = default  description``."""
    lines = []
    for name, f in (model.model_fields.items() if model is not None else ()):
        if name == "method":
            continue
        default = "required" if f.is_required() else repr(f.get_default(call_default_factory=True))
        desc = f"  ({f.description})" if f.description else ""
        lines.append(f"{f.alias or name}: {type_name(f.annotation)}{_bounds(f.metadata)} = {default}{desc}")
    return lines
