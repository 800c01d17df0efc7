"""Metric-vs-generation figures (matplotlib, Agg backend, imported lazily)."""
from __future__ import annotations

import os
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
    """Mean ± 2 standard errors over replicates of ``metric`` against generation, one line per run.

    The figure is written to a temporary file and renamed, so a failed plot leaves nothing behind.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = result.summary(metric)
    if summary.empty:
        raise ValueError(f"metric {metric!r} was not recorded; recorded: {sorted(result.metrics.metric.unique())}")
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for run_id in result.runs.run_id:  # study order
        df = summary[summary.run_id == run_id].sort_values("generation")
        if df.empty:
            continue
        label = short_label(df["name"].iloc[0]) + (" (control)" if df["lineage"].iloc[0] == "control" else "")
        style = "--" if df["lineage"].iloc[0] == "control" else "-"
        line, = ax.plot(df.generation, df["mean"], style, label=label, lw=1.6)
        se = df["se"].fillna(0)
        ax.fill_between(df.generation, df["mean"] - 2 * se, df["mean"] + 2 * se, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("generation")
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return path
