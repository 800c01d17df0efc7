"""What every config key and component is, read from the option models themselves.

One source for ``autophagy components`` (and ``autophagy components NAME``) and for the reference
site's component pages (``docs/hooks.py`` renders ``sections()`` as Markdown), so the two cannot
drift. Descriptions are docstrings and pydantic field descriptions with reStructuredText markup
removed (````x````, ``:class:`x``` -> ``x``); nothing is cut mid-sentence.
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from .errors import AutophagyError, ConfigError


@dataclass(frozen=True)
class Option:
    name: str
    type: str
    default: str
    description: str


@dataclass
class Entry:
    """One named thing a config can choose (a source, a family, a metric, ...) or a block of options."""

    name: str
    summary: str  # the first paragraph of its docstring, one line
    details: str = ""  # the rest of its docstring, markup removed
    options: list[Option] = field(default_factory=list)
    unavailable: str = ""  # why it could not be imported (an optional extra missing)


@dataclass
class Section:
    key: str  # "sources", "families", ... (also the docs page name)
    title: str  # heading, naming the config key it fills
    intro: str
    entries: list[Entry]


TOP_LEVEL_HELP = {
    "name": "study name: run names, the default results folder results/<name>",
    "seed": "root of the seed tree: equal seeds give equal numbers on any number of workers",
    "replicates": "R independent chains run side by side (a leading batch axis); statistics are over them",
    "generations": "G: generations 0..G are fitted and recorded",
    "data": "the source P_r: {source: NAME, ...its options} (section sources)",
    "model": "the generative family: {family: NAME, ...its options} (section families)",
    "loop": "how each generation's training set is built: policy, n_real, n_synthetic, ... (section loop)",
    "sampling": "how the model is sampled: bias λ (section sampling)",
    "metrics": "what is recorded: a list of metric names or {use: [...], n_eval, ...} (section metrics)",
    "grid": "dotted keys -> lists of values: one run per combination (e.g. {sampling.bias: [1, 0.5]})",
    "curation": "optional: {method: NAME, ...} selecting synthetic points from candidates (section curation)",
    "correction": "optional: {method: NAME, ...} correcting synthetic points before training (section correction)",
    "report": "optional: the figures of `autophagy report` (presentation only, not part of the run id)",
}


def clean(text: str) -> str:
    """Docstring text without reStructuredText markup: roles, double backquotes, ``::`` literal markers."""
    text = re.sub(r":(?:class|func|meth|mod|attr|data|obj|exc|ref|doc|math):`~?([^`]+)`", r"\1", text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"(?<![`\w])`([^`]+)`(?!`)", r"\1", text)
    return text.replace("::\n", ":\n")


def paragraphs(obj: Any) -> tuple[str, str]:
    """(first paragraph joined into one line, the rest) of an object's docstring, markup removed."""
    doc = textwrap.dedent(_own_doc(obj)).strip()
    if not doc:
        return "", ""
    lines = doc.splitlines()
    first = [lines[0].strip()] + [l for l in textwrap.dedent("\n".join(lines[1:])).splitlines()]
    text = "\n".join(first)
    head, _, rest = text.partition("\n\n")
    return clean(" ".join(head.split())), clean(rest.strip())


def _own_doc(obj: Any) -> str:
    """The object's own docstring (not one inherited from pydantic's BaseModel or a base class)."""
    doc = getattr(obj, "__doc__", None) or ""
    if isinstance(obj, type):
        for base in obj.__mro__[1:]:
            if getattr(base, "__doc__", None) == doc:
                return ""
    return doc


def options(model: Any) -> list[Option]:
    """The fields of a pydantic options model (``method`` left out: it is the entry's name)."""
    from .components import _bounds, type_name

    out = []
    for name, f in (getattr(model, "model_fields", None) or {}).items():
        if name == "method":
            continue
        default = "required" if f.is_required() else repr(f.get_default(call_default_factory=True))
        out.append(Option(f.alias or name, type_name(f.annotation) + _bounds(f.metadata), default,
                          clean(" ".join((f.description or "").split()))))
    return out


def _entry(name: str, obj: Any, model: Any) -> Entry:
    summary, details = paragraphs(obj)
    return Entry(name, summary, details, options(model))


def _table(table: dict, field_name: str) -> list[Entry]:
    from . import components as comp

    entries = []
    for name, path in table.items():
        try:
            cls = comp.import_path(path, field_name)
        except AutophagyError as err:
            entries.append(Entry(name, "", unavailable=str(err)))
            continue
        entries.append(_entry(name, cls, comp.options_model(cls)))
    return entries


def sections() -> list[Section]:
    """Every section of a config, in the order a config file reads."""
    from . import components as comp
    from . import correction, curation
    from . import metrics as metric_lib
    from .config import Config, LoopConfig, MetricsConfig, ReportConfig, SamplingConfig
    from .policies import POLICIES

    scalar = {o.name: [o] for o in options(Config) if "Config" not in o.type and "dict" not in o.type}
    top = [Entry(key, TOP_LEVEL_HELP.get(key, ""), options=scalar.get(key, [])) for key in Config.model_fields]
    loop = [Entry("loop options", paragraphs(LoopConfig)[0], options=options(LoopConfig))]
    loop += [Entry(name, _policy_doc(name)) for name in POLICIES]
    metric_entries = [Entry("metrics options", paragraphs(MetricsConfig)[0], options=options(MetricsConfig))]
    metric_entries += [_entry(name, fn, metric_lib.OPTIONS.get(name)) for name, fn in metric_lib.METRICS.items()]
    return [
        Section("config", "top-level keys", "A config file is a mapping of these keys; each is optional.", top),
        Section("sources", "sources (data.source)", "Where the real data P_r come from.", _table(comp.SOURCES, "data.source")),
        Section("families", "families (model.family)", "The generative model refitted every generation.",
                _table(comp.FAMILIES, "model.family")),
        Section("loop", "loop (loop.policy and the other loop options)",
                "How each generation's training set is built from real and synthetic data.", loop),
        Section("sampling", "sampling", "How the fitted model is sampled.",
                [Entry("sampling options", paragraphs(SamplingConfig)[0], options=options(SamplingConfig))]),
        Section("metrics", "metrics (metrics: [name or {name: ..., option: ...}])",
                "Sample-based metrics, computed every generation on metrics.n_eval model samples against "
                "metrics.n_heldout held-out real points; param.* metrics of closed-form families are always recorded.",
                metric_entries),
        Section("curation", "curation (curation: {method: ...})", "Selecting the synthetic points from candidates.",
                [_entry(name, cls, opts) for name, (opts, cls) in curation.METHODS.items()]),
        Section("correction", "correction (correction: {method: ...})", "Correcting synthetic points before training.",
                [_entry(name, cls, opts) for name, (opts, cls) in correction.METHODS.items()]),
        Section("report", "report (presentation only)", "The figures `autophagy report` draws; not part of the run id.",
                [Entry("report options", paragraphs(ReportConfig)[0], options=options(ReportConfig))]),
    ]


def _policy_doc(name: str) -> str:
    """A policy's bullet in the ``autophagy.policies`` module docstring (``- ``name``: what it does``)."""
    from . import policies

    m = re.search(rf"^- ``{re.escape(name)}``: (.+?)(?=^- |\Z)", policies.__doc__ or "", re.S | re.M)
    return clean(" ".join(m.group(1).split())) if m else ""


def find(name: str) -> list[tuple[Section, Entry]]:
    """Every entry called ``name`` (a name can be both a source and a family), or a whole section by its key."""
    found = []
    for section in sections():
        if name in (section.key, section.title.split(" ")[0]):
            found += [(section, e) for e in section.entries]
        else:
            found += [(section, e) for e in section.entries if e.name == name]
    if not found:
        names = sorted({e.name for s in sections() for e in s.entries if " " not in e.name} | {s.key for s in sections()})
        raise ConfigError("NAME", name, "a section or component: " + ", ".join(names))
    return found


def option_line(o: Option) -> str:
    return f"{o.name}: {o.type} = {o.default}" + (f"  {o.description}" if o.description else "")
