"""A finished study as the report sees it: runs, their swept parameters and labels, and replicate summaries.

Read only through ``Store(dir).load()`` or a ``Result``'s ``.runs`` / ``.metrics`` (the report never
queries the store's tables itself), so the store can grow columns without breaking figures.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from ..errors import ConfigError

# Metrics whose values live in a known interval: replicate bands are clipped to it.
BOUNDS = {
    "precision": (0.0, 1.0), "recall": (0.0, 1.0), "coverage": (0.0, 1.0), "mode-coverage": (0.0, 1.0),
    "minority-mass": (0.0, 1.0), "tail-mass": (0.0, 1.0), "tv": (0.0, 1.0), "param.tv": (0.0, 1.0),
    "param.gini_simpson": (0.0, 1.0), "digit-precision": (0.0, 1.0), "digit-recall": (0.0, 1.0),
    "cluster-concentration": (0.0, 1.0), "class-entropy": (0.0, None),
}
_SKIP_KEYS = ("name", "grid", "report")  # not simulation parameters, or presentation only
CONTROL_SUFFIX = " (real-only control)"


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """``{"loop": {"policy": "replace"}}`` -> ``{"loop.policy": "replace"}``; lists become JSON strings."""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            if not prefix and k in _SKIP_KEYS:
                continue
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(d, (list, tuple)):
        out[prefix[:-1]] = json.dumps(d)
    else:
        out[prefix[:-1]] = d
    return out


def short_key(key: str) -> str:
    """``sampling.bias`` -> ``bias``; ``loop`` (a whole swept block) stays ``loop``."""
    return key.rsplit(".", 1)[-1]


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return "inf" if v == float("inf") else f"{v:g}"
    return str(v)


@dataclass
class Study:
    """``runs``: one row per run (study order) with ``config`` as a dict, ``params`` (flattened config) and
    ``label``; ``metrics``: long frame (run_id, replicate, generation, metric, value); ``swept``: the dotted
    config keys that differ between runs (lineage excluded); ``directory``: where it came from, if anywhere."""

    runs: pd.DataFrame
    metrics: pd.DataFrame
    swept: list[str]
    directory: Optional[Path] = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        name = str(self.runs["name"].iloc[0]) if len(self.runs) else "study"
        return name.split("[", 1)[0].replace(CONTROL_SUFFIX, "") or name

    @property
    def has_control(self) -> bool:
        return bool((self.runs["lineage"] == "control").any()) and bool((self.runs["lineage"] == "loop").any())

    @property
    def recorded(self) -> list[str]:
        """The metric names in first-recorded order (one hashed pass over the column, computed once)."""
        if "recorded" not in self._cache:
            self._cache["recorded"] = [str(m) for m in pd.unique(self.metrics["metric"])]
        return list(self._cache["recorded"])

    def check_metric(self, metric: str, option: str = "--metric") -> None:
        if metric not in self.recorded:
            raise ConfigError(option, metric, "a recorded metric: " + ", ".join(self.recorded))

    def check_swept(self, key: str, option: str) -> None:
        if key not in self.swept:
            raise ConfigError(option, key, "a swept parameter: " + (", ".join(self.swept) or "(this study sweeps none)"))

    def report_config(self) -> dict:
        """The preset's ``report:`` block (of the first run), or {}."""
        for cfg in self.runs["config"]:
            if isinstance(cfg, dict) and cfg.get("report"):
                return cfg["report"]
        return {}

    def headline(self) -> list[str]:
        """The metrics that tell this study's story: the preset's ``report.metrics`` that were recorded, else
        up to three sample-based metrics (secondary keys skipped), filled up with ``param.*`` summaries."""
        recorded = self.recorded
        wanted = [m for m in self.report_config().get("metrics", ()) if m in recorded]
        if wanted:
            return wanted
        secondary = ("density", "coverage", "mode-mass-", "distribution-difference-", "class-entropy")
        sample = [m for m in recorded if not m.startswith("param.") and not m.startswith(secondary)][:3]
        params = [m for m in recorded if m.startswith("param.")]
        return sample + params[:max(0, 3 - len(sample))]

    def values(self, metric: str) -> pd.DataFrame:
        """Long rows of one metric, with run_id as plain strings (computed once per metric; do not modify)."""
        key = ("values", metric)
        if key not in self._cache:
            df = self.metrics[self.metrics["metric"] == metric]
            self._cache[key] = df.assign(run_id=_as_str(df["run_id"]))
        return self._cache[key]


def _as_str(col: pd.Series) -> pd.Series:
    """``col.astype(str)``; for a categorical column by converting its few categories and taking them by code
    (``astype(str)`` formats every row: 0.15 s for 600,000 rows)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        if codes.size and codes.min() >= 0:
            return pd.Series(col.cat.categories.astype(str).take(codes), index=col.index, name=col.name)
    return col.astype(str)


def load_study(source: Any) -> Study:
    """A ``Study`` from a results directory (holding ``results.sqlite``) or a ``Result``."""
    if isinstance(source, (str, Path)):
        from ..store import Store

        directory = Path(source)
        if not (directory / "results.sqlite").exists():
            raise ConfigError("DIR", str(directory), "a results directory containing results.sqlite")
        runs, metrics = Store(directory).load()
    elif hasattr(source, "runs") and hasattr(source, "metrics"):
        runs, metrics, directory = source.runs, source.metrics, getattr(source, "out", None)
    else:
        raise ConfigError("results", type(source).__name__, "a results directory or an autophagy Result")
    if runs is None or len(runs) == 0:
        raise ConfigError("DIR", str(source), "a results directory with at least one finished run")
    runs = runs.copy().reset_index(drop=True)
    runs["run_id"] = runs["run_id"].astype(str)
    runs["config"] = [json.loads(c) if isinstance(c, str) else dict(c or {}) for c in runs["config"]]
    runs["params"] = [flatten(c) for c in runs["config"]]
    swept = _swept(runs["params"])
    runs["label"] = [run_label(r, swept) for r in runs.itertuples()]
    return Study(runs, metrics, swept, Path(directory) if directory is not None else None)


def _swept(params: pd.Series) -> list[str]:
    """Dotted keys whose value differs between runs, in config order; ``loop.control`` is the lineage, not a sweep."""
    keys: dict[str, None] = {}
    for p in params:
        keys.update(dict.fromkeys(p))
    out = []
    for k in keys:
        vals = {json.dumps(p.get(k), default=str) for p in params}
        if len(vals) > 1 and k != "loop.control":
            out.append(k)
    return out


def run_label(row: Any, swept: list[str]) -> str:
    """What tells this run apart: its swept values (``policy=replace, bias=0.5``) plus ``control`` for the
    real-only lineage; a lone run is its name."""
    control = row.lineage == "control"
    if swept:
        label = ", ".join(f"{short_key(k)}={fmt_value(row.params.get(k))}" for k in swept)
    else:
        label = str(row.name).replace(CONTROL_SUFFIX, "")
    return label + (" · control" if control else "")


def value_range(study: Study, metric: str) -> tuple[float, float]:
    """The interval the metric's values can take: a known bound, else [0, ∞) when every recorded value is ≥ 0."""
    lo, hi = BOUNDS.get(metric, (None, None))
    if lo is None:
        v = study.values(metric)["value"].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        lo = 0.0 if v.size and v.min() >= 0 else -np.inf
    return float(lo), float(np.inf if hi is None else hi)


BAND_TEXT = {"se": ("mean", "± 2 s.e. of the mean"), "quantile": ("median", "10%-90% of replicates")}


def heavy_tailed(df: pd.DataFrame) -> bool:
    """True when, at some run and generation, the replicate mean falls outside the interquartile range:
    then a few chains carry the mean (e.g. σ² deep in a replace loop) and the median tells the typical chain."""
    g = df.groupby(["run_id", "generation"])["value"]
    stats = g.agg(mean="mean", n="count")  # quantiles grouped in one vectorised pass, not a lambda per group
    stats["q1"], stats["q3"] = g.quantile(0.25), g.quantile(0.75)
    stats = stats[stats["n"] >= 8]
    return bool(((stats["mean"] < stats["q1"]) | (stats["mean"] > stats["q3"])).any())


def summarize(study: Study, metric: str, band: str = "auto") -> tuple[pd.DataFrame, str]:
    """Per run and generation: ``center``, ``lo``, ``hi`` (clipped to the metric's range), and the band used.

    ``band``: ``se`` (mean ± 2 Monte-Carlo standard errors), ``quantile`` (median and the 10%-90% quantiles of
    replicates) or ``auto`` (quantile for heavy-tailed metrics, else se).
    """
    if band not in ("auto", "se", "quantile"):
        raise ConfigError("band", band, "auto, se or quantile")
    df = study.values(metric)
    if band == "auto":
        band = "quantile" if heavy_tailed(df) else "se"
    g = df.groupby(["run_id", "generation"])["value"]
    if band == "se":
        out = g.agg(center="mean", std="std", n="count").reset_index()
        se = (out["std"] / np.sqrt(out["n"])).fillna(0.0)
        out["lo"], out["hi"] = out["center"] - 2 * se, out["center"] + 2 * se
    else:
        out = g.agg(center="median", n="count")
        out["lo"], out["hi"] = g.quantile(0.1), g.quantile(0.9)
        out = out[["center", "lo", "hi", "n"]].reset_index()
    lo, hi = value_range(study, metric)
    out["lo"], out["hi"] = out["lo"].clip(lo, hi), out["hi"].clip(lo, hi)
    return out, band
