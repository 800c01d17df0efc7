"""Structured encoding of a study's runs: colour, line style and marker each carry one swept parameter.

The palette is Okabe & Ito's (2008) colour-blind-safe set; parameters with more values than it has
colours get evenly spaced colours of ``cividis`` (a perceptually uniform, colour-blind-safe map), so the
colour cycle never wraps. The legend names only what differs: one section per encoded parameter.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from .study import Study, fmt_value, short_key

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"]
LINESTYLES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
NEUTRAL = "#555555"


def colours(n: int) -> list:
    if n <= len(OKABE_ITO):
        return OKABE_ITO[:n]
    from matplotlib import colormaps

    cmap = colormaps["cividis"]
    return [cmap(i / (n - 1)) for i in range(n)]


@dataclass
class Channel:
    """One visual channel (``colour``, ``linestyle`` or ``marker``) carrying one factor: a swept key, a
    combination of keys, or the lineage."""

    kind: str
    title: str
    levels: list  # distinct factor values (JSON strings), in first-seen order
    styles: list
    names: list  # legend text per level


@dataclass
class Encoding:
    channels: list
    by_run: dict  # run_id -> {"color": ..., "linestyle": ..., "marker": ...}


def _factor(row, keys: list[str]) -> str:
    if keys == ["lineage"]:
        return json.dumps(row.lineage)
    return json.dumps([row.params.get(k) for k in keys], default=str)


def _names(keys: list[str], level: str) -> str:
    values = json.loads(level)
    if keys == ["lineage"]:
        return "real-only control" if values == "control" else "self-consuming loop"
    if len(keys) == 1:
        return fmt_value(values[0])
    return ", ".join(f"{short_key(k)}={fmt_value(v)}" for k, v in zip(keys, values))


def encode(study: Study, run_ids: list[str] | None = None) -> Encoding:
    """Assign swept keys to colour, then line style, then marker (the lineage, when both are present, takes
    the last free channel); keys beyond three channels are merged into the colour factor."""
    runs = study.runs if run_ids is None else study.runs[study.runs.run_id.isin(run_ids)]
    keys = [k for k in study.swept if runs["params"].map(lambda p, k=k: json.dumps(p.get(k), default=str)).nunique() > 1]
    factors: list[list[str]] = [[k] for k in keys]
    if runs["lineage"].nunique() > 1:
        factors.append(["lineage"])
    if len(factors) > 3:  # colour carries every key the other two channels cannot
        rest = [k for f in factors[:len(factors) - 2] for k in f]
        factors = [rest] + factors[len(factors) - 2:]
    kinds = ["color", "linestyle", "marker"]
    channels, by_run = [], {r: {"color": NEUTRAL, "linestyle": "-", "marker": None} for r in runs.run_id}
    for kind, keys_ in zip(kinds, factors):
        levels = list(dict.fromkeys(_factor(r, keys_) for r in runs.itertuples()))
        pool = {"color": colours(len(levels)), "linestyle": LINESTYLES, "marker": MARKERS}[kind]
        styles = [pool[i % len(pool)] for i in range(len(levels))]
        title = "lineage" if keys_ == ["lineage"] else ", ".join(short_key(k) for k in keys_)
        channels.append(Channel(kind, title, levels, styles, [_names(keys_, lv) for lv in levels]))
        for r in runs.itertuples():
            by_run[r.run_id][kind] = styles[levels.index(_factor(r, keys_))]
    return Encoding(channels, by_run)


def legend_handles(enc: Encoding) -> tuple[list, list]:
    """(handles, labels): a header line per channel (``policy:``) followed by its levels, drawn
    with only that channel varying; labels are unique."""
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for ch in enc.channels:
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(f"{ch.title}:")
        for style, name in zip(ch.styles, ch.names):
            kw = {"color": NEUTRAL, "linestyle": "-", "marker": None}
            kw[ch.kind] = style
            if ch.kind == "marker":
                kw["linestyle"] = "none"
            handles.append(Line2D([], [], lw=1.8, markersize=5, **kw))
            labels.append(name)
    return handles, _unique(labels)


def _unique(labels: list[str]) -> list[str]:
    """A level name that repeats a header or another level gets a visible suffix (labels stay unique)."""
    seen: dict[str, int] = {}
    out = []
    for text in labels:
        n = seen.get(text, 0)
        seen[text] = n + 1
        out.append(text if n == 0 else f"{text} ({n + 1})")
    return out
