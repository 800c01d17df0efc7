"""Metric-vs-generation figures (matplotlib, Agg backend, imported lazily)."""
from __future__ import annotations

import os
from pathlib import Path


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
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run_id, df in summary.groupby("run_id", sort=False):
        df = df.sort_values("generation")
        label = df["name"].iloc[0]
        style = "--" if df["lineage"].iloc[0] == "control" else "-"
        line, = ax.plot(df.generation, df["mean"], style, label=label, lw=1.6)
        se = df["se"].fillna(0)
        ax.fill_between(df.generation, df["mean"] - 2 * se, df["mean"] + 2 * se, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("generation")
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return path
