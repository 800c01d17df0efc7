"""The preset catalog: every shipped study by name, with what its header comment says about it.

Presets are YAML configs. ``configs/*.yaml`` in a source checkout is their editable source; a built
wheel carries them (and ``demo.yaml``) as package data in ``autophagy/presets/`` (setup.py copies
them), so ``autophagy run NAME`` and ``autophagy presets`` work from an installed package. In a
checkout, ``configs/`` is read in place and wins over the packaged copy of the same name.

Each preset starts with a comment naming the paper it mirrors, a "What to look for:" paragraph and,
for the slower ones, its run time ("About 2-4 minutes on two CPU cores"); ``describe`` reads them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ConfigError

PREFIX = "preset:"
NEURAL = ("vae", "ddpm", "flow-matching", "gan")


def _checkout_configs() -> Path | None:
    """``configs/`` of the source checkout this package was imported from (None for an installed wheel)."""
    root = Path(__file__).resolve().parents[2]
    folder = root / "configs"
    return folder if folder.is_dir() and (root / "pyproject.toml").is_file() else None


def preset_files() -> dict[str, Path]:
    """``{name: path}`` of every preset, sorted by name (packaged ones, then a checkout's configs/)."""
    found: dict[str, Path] = {}
    packaged = Path(str(resources.files("autophagy") / "presets"))
    for folder in (packaged, _checkout_configs()):
        if folder is not None and folder.is_dir():
            for path in folder.glob("*.yaml"):
                found[path.stem] = path
    return dict(sorted(found.items()))


def is_reference(text: str) -> bool:
    """Whether a ``run`` argument names a preset rather than a file: ``preset:NAME``, or a bare name
    (no folder, no suffix) that is not an existing file."""
    if text.startswith(PREFIX):
        return True
    return "/" not in text and "\\" not in text and not Path(text).suffix and not Path(text).exists()


def preset_path(name: str) -> Path:
    """The file of preset ``name`` (``preset:`` prefix allowed); an unknown name lists the valid ones."""
    key = name[len(PREFIX):] if name.startswith(PREFIX) else name
    files = preset_files()
    if key not in files:
        raise ConfigError("preset", key, "one of " + ", ".join(files) + " (`autophagy presets` describes them)")
    return files[key]


@dataclass(frozen=True)
class PresetInfo:
    """What ``autophagy presets`` shows for one preset."""

    name: str
    paper: str
    look_for: str
    time: str
    path: Path


_PAPER = re.compile(r"(?P<who>[A-Z][\w\-]+(?:, [A-Z][\w\-]+)?(?: et al\.| & [A-Z][\w\-]+)?),?"
                    r"(?: \"[^\"]+\",?)? \(?(?:[A-Z]{3,5} )?(?P<year>(?:19|20)\d\d)\b")
_TIME = re.compile(r"\b(?:[Aa]bout|~|≈|takes)\s+(?P<t>(?:an?|one|two|\d+(?:\s*[-–]\s*\d+)?)\s*"
                   r"(?:s|sec|seconds?|min|minutes?|hours?))\b")
_LOOK = re.compile(r"What to look for[^:]*?:\s*(?P<text>.+)", re.S)


def header(path: Path) -> str:
    """The leading comment block of a YAML file, without the ``#`` marks, joined into one paragraph."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return " ".join(l for l in lines if l)


def _first_sentence(text: str) -> str:
    """Text up to the first full stop that ends a sentence (not "et al." or "e.g.")."""
    m = re.search(r"(?<!al)(?<!e\.g)(?<!i\.e)(?<!\bvs)\.(?=\s+[A-Z(`]|\s*$)", text)
    return (text[:m.start()] if m else text).strip()


def describe(name: str, path: Path) -> PresetInfo:
    """Paper, the first "what to look for" sentence and the run time stated in the preset's header."""
    text = header(path)
    paper = _PAPER.search(text)
    who = f"{paper['who']} {paper['year']}" if paper else "—"
    look = _LOOK.search(text)
    look_for = _first_sentence(look["text"]) if look else _first_sentence(text)
    stated = _TIME.search(text)
    if stated:
        time = "about " + re.sub(r"\s+", " ", stated["t"])
    else:  # docs/presets.md measured the closed-form presets at seconds to half a minute on 2 CPU cores
        time = "minutes (neural, needs torch)" if _family(path) in NEURAL else "under a minute"
    return PresetInfo(name, who, look_for, time, path)


def _family(path: Path) -> str:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return str((raw.get("model") or {}).get("family", "gaussian"))
    except (yaml.YAMLError, AttributeError):
        return "?"


def catalog() -> list[PresetInfo]:
    """Every preset, described (sorted by name)."""
    return [describe(name, path) for name, path in preset_files().items()]
