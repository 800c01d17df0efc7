"""Sample evolution: what each generation's model produces, as small multiples.

* image sources: the mosaics the run saved (``DIR/grids/<run_id>/real.png``, ``gen0000.png`` …), one row
  per run and one column per shown generation, labelled with both;
* vector samples (``(n, d)`` arrays per generation, e.g. replicate 0's): 2-D scatter plots, projectile
  trajectories (the data vector is (x_1, y_1, …, x_T, y_T)) or, for tokens, rank-frequency curves.

The store keeps metrics, not samples, so ``samples_figure`` takes the arrays; ``stored_samples`` reads
``DIR/samples/<run_id>/gen0000.npy`` … where a run wrote them.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .figures import new_figure
from .study import Study


def shown_generations(generations: list[int], most: int = 6) -> list[int]:
    """Up to ``most`` evenly spaced generations, always the first and the last."""
    gens = sorted(set(generations))
    if len(gens) <= most:
        return gens
    idx = np.unique(np.round(np.linspace(0, len(gens) - 1, most)).astype(int))
    return [gens[i] for i in idx]


def _files(folder: Path, suffix: str) -> dict[int, Path]:
    out = {}
    for f in folder.glob(f"gen*.{suffix}"):
        m = re.fullmatch(rf"gen(\d+)\.{suffix}", f.name)
        if m:
            out[int(m.group(1))] = f
    return out


def image_grid_figure(study: Study, most_generations: int = 5, most_runs: int = 8):
    """Saved sample mosaics: rows = runs (label on the left), columns = real data and generations; None when
    the study saved no grids (not an image source, or no results directory)."""
    import matplotlib.image as mpimg

    if study.directory is None:
        return None
    rows = []
    for run in study.runs.itertuples():
        folder = study.directory / "grids" / run.run_id
        files = _files(folder, "png") if folder.is_dir() else {}
        if files:
            rows.append((run, folder, files))
    if not rows:
        return None
    rows = rows[:most_runs]
    gens = shown_generations([g for _, _, f in rows for g in f], most_generations)
    cols = ["real"] + gens
    fig = new_figure(1.9 * len(cols) + 1.6, 1.95 * len(rows) + 0.5)
    axes = fig.subplots(len(rows), len(cols), squeeze=False)
    for i, (run, folder, files) in enumerate(rows):
        for j, col in enumerate(cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            path = folder / "real.png" if col == "real" else files.get(col)
            if path is not None and path.exists():
                ax.imshow(mpimg.imread(path), interpolation="nearest")
            if i == 0:
                ax.set_title("real data" if col == "real" else f"generation {col}", fontsize=9)
            if j == 0:
                ax.set_ylabel(run.label, fontsize=8, rotation=0, ha="right", va="center", wrap=True)
    fig.suptitle(f"{study.name}: samples of replicate 0's model per generation", fontsize=10, x=0.02, ha="left")
    return fig


def stored_samples(study: Study) -> dict[str, dict[int, np.ndarray]]:
    """``{run label: {generation: (n, d) array}}`` from ``DIR/samples/<run_id>/gen*.npy`` where present."""
    out: dict[str, dict[int, np.ndarray]] = {}
    if study.directory is None:
        return out
    for run in study.runs.itertuples():
        folder = study.directory / "samples" / run.run_id
        if folder.is_dir():
            files = _files(folder, "npy")
            if files:
                out[run.label] = {g: np.load(p) for g, p in sorted(files.items())}
    return out


def samples_figure(samples: dict[str, dict[int, np.ndarray]], kind: str = "auto", reference: np.ndarray | None = None,
                   most_generations: int = 6, title: str = ""):
    """Small multiples of samples: rows = runs (``samples`` keys), columns = generations.

    ``kind``: ``scatter`` (first two coordinates), ``trajectory`` (rows of (x_1, y_1, …, x_T, y_T): one
    line per sample), ``tokens`` (integer samples: category frequencies by rank, log scale) or ``auto``
    (tokens for integer arrays, scatter for d = 2, trajectory for other even d). ``reference``: real samples
    drawn in grey under every panel.
    """
    from ..errors import ConfigError

    if kind not in ("auto", "scatter", "trajectory", "tokens"):
        raise ConfigError("kind", kind, "auto, scatter, trajectory or tokens")
    if not samples:
        raise ConfigError("samples", "{}", "a mapping run label -> {generation: (n, d) array}")
    first = np.asarray(next(iter(next(iter(samples.values())).values())))
    if kind == "auto":
        kind = "tokens" if np.issubdtype(first.dtype, np.integer) else (
            "scatter" if first.ndim == 2 and first.shape[1] == 2 else "trajectory")
    gens = shown_generations([g for per in samples.values() for g in per], most_generations)
    fig = new_figure(2.3 * len(gens) + 1.4, 2.2 * len(samples) + 0.5)
    axes = fig.subplots(len(samples), len(gens), squeeze=False, sharex=kind != "tokens", sharey=True)
    for i, (label, per) in enumerate(samples.items()):
        for j, g in enumerate(gens):
            ax = axes[i][j]
            x = per.get(g)
            if x is not None:
                _draw(ax, kind, np.asarray(x), reference)
            if i == 0:
                ax.set_title(f"generation {g}", fontsize=9)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle(title or "samples per generation", fontsize=10, x=0.02, ha="left")
    return fig


def _draw(ax, kind: str, x: np.ndarray, reference) -> None:
    if kind == "tokens":
        counts = np.sort(np.bincount(x.reshape(-1)))[::-1]
        counts = counts[counts > 0]
        ax.plot(np.arange(1, counts.size + 1), counts / counts.sum(), ".-", ms=3, lw=1)
        ax.set_yscale("log")
        ax.set_xscale("log")
        return
    if kind == "scatter":
        if reference is not None:
            ax.scatter(reference[:, 0], reference[:, 1], s=3, color="#bbbbbb", lw=0)
        ax.scatter(x[:, 0], x[:, 1], s=4, color="#0072B2", lw=0)
        return
    if reference is not None:
        for row in reference[:30]:
            ax.plot(row[0::2], row[1::2], color="#bbbbbb", lw=0.6)
    for row in x[:30]:
        ax.plot(row[0::2], row[1::2], color="#0072B2", lw=0.7, alpha=0.8)
