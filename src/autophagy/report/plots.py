"""The single-figure entry point the run command uses (``plot_metric``), now drawn by ``report.figures``."""
from __future__ import annotations

from pathlib import Path


def short_label(name: str) -> str:
    """A grid run's label is its grid values (without the section prefixes); a single run's is its name."""
    if name.endswith("]") and "[" in name:
        inner = name[name.index("[") + 1:-1]
        for prefix in ("loop.", "sampling.", "model.", "data.", "curation.", "correction."):
            inner = inner.replace(prefix, "")
        return inner
    return name


def plot_metric(result, metric: str, path: str | Path, title: str | None = None) -> Path:
    """``metric`` against generation for every run of ``result`` (a ``Result`` or a results directory), written
    to ``path`` (PNG, SVG or PDF by suffix). See ``report.figures.metric_figure``; ``title`` is unused (the
    figure names the study and the metric). Raises ``ConfigError`` naming the recorded metrics if ``metric``
    was not recorded."""
    from .figures import metric_figure, save_figure
    from .study import load_study

    return save_figure(metric_figure(load_study(result), metric), path)
