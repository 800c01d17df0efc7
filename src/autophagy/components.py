"""Literal name -> object tables. Entries are ``"module:attribute"`` strings imported lazily,
so importing autophagy never imports torch or a family nobody uses.

Lookup order for a name: the built-in table, then installed entry points (groups
``autophagy.families``, ``autophagy.sources``, ``autophagy.metrics``), then a
``"package.module:Attribute"`` import path.
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


def _entry_point(group: str, name: str) -> Any | None:
    try:
        eps = metadata.entry_points(group=group)
    except Exception:  # pragma: no cover - broken environments
        return None
    for ep in eps:
        if ep.name == name:
            return ep.load()
    return None


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
