"""Results on disk: ``DIR/results.sqlite`` (stdlib sqlite3) plus ``DIR/metrics.csv`` and ``DIR/runs.csv``.

Tables: ``runs(run_id, name, hash, lineage, config, status, created, seconds)`` with the resolved
config as JSON, and ``metrics(run_id, replicate, generation, metric, value)``. A run's rows are
written in one transaction after the run finishes, so an interrupted study leaves only finished
runs behind, and re-running the same config into the same DIR reuses them (``finished``).
CSV files are written to a temporary name and renamed, so they are never half-written.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, name TEXT, hash TEXT, lineage TEXT, config TEXT,
    status TEXT, created REAL, seconds REAL);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT, replicate INTEGER, generation INTEGER, metric TEXT, value REAL);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id);
"""

METRIC_COLUMNS = ["run_id", "replicate", "generation", "metric", "value"]
RUN_COLUMNS = ["run_id", "name", "hash", "lineage", "config", "seconds"]


def long_frame(run_id: str, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """``{metric: (G+1, R)}`` -> long DataFrame with columns run_id, replicate, generation, metric, value.

    Built in one piece with categorical run_id/metric columns: with R = 10,000 and 100
    generations a frame holds millions of rows, and repeating strings would dominate the run.
    """
    if not values:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "value" else object) for c in METRIC_COLUMNS})
    names = list(values)
    shapes = {values[k].shape for k in names}
    if len(shapes) != 1:
        raise ValueError(f"metrics have different shapes: {shapes}")
    G1, R = shapes.pop()
    per = G1 * R
    return pd.DataFrame({
        "run_id": pd.Categorical.from_codes(np.zeros(per * len(names), dtype=np.int8), categories=[run_id]),
        "replicate": np.tile(np.arange(R, dtype=np.int32), G1 * len(names)),
        "generation": np.tile(np.repeat(np.arange(G1, dtype=np.int32), R), len(names)),
        "metric": pd.Categorical.from_codes(np.repeat(np.arange(len(names)), per), categories=names),
        "value": np.concatenate([np.asarray(values[k], dtype=float).reshape(-1) for k in names]),
    }, copy=False)


class Store:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.path = self.dir / "results.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.dir.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path)
        con.executescript(SCHEMA)
        return con

    def finished(self, run_id: str) -> pd.DataFrame | None:
        """The stored metrics of a finished run, or None."""
        if not self.path.exists():
            return None
        con = self._connect()
        try:
            row = con.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if not row or row[0] != "done":
                return None
            return pd.read_sql_query("SELECT run_id, replicate, generation, metric, value FROM metrics WHERE run_id = ?",
                                     con, params=(run_id,))
        finally:
            con.close()

    def save(self, run: dict, metrics: pd.DataFrame) -> None:
        """Write one finished run (replacing any unfinished copy) in a single transaction."""
        con = self._connect()
        try:
            with con:
                con.execute("DELETE FROM metrics WHERE run_id = ?", (run["run_id"],))
                con.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, 'done', ?, ?)",
                            (run["run_id"], run["name"], run["hash"], run["lineage"], json.dumps(run["config"]),
                             time.time(), float(run.get("seconds", 0.0))))
                con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)",
                                metrics[METRIC_COLUMNS].itertuples(index=False, name=None))
        finally:
            con.close()

    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """All runs and metrics in the store."""
        con = self._connect()
        try:
            runs = pd.read_sql_query("SELECT run_id, name, hash, lineage, config, seconds FROM runs WHERE status = 'done'", con)
            metrics = pd.read_sql_query("SELECT run_id, replicate, generation, metric, value FROM metrics", con)
        finally:
            con.close()
        return runs, metrics

    def export(self, fmt: str = "csv") -> list[Path]:
        """Write ``metrics.<fmt>`` and ``runs.<fmt>`` atomically; returns the paths."""
        runs, metrics = self.load()
        written = []
        for frame, stem in ((metrics, "metrics"), (runs, "runs")):
            target = self.dir / f"{stem}.{fmt}"
            tmp = self.dir / f".{stem}.{fmt}.tmp"
            if fmt == "csv":
                frame.to_csv(tmp, index=False)
            else:
                frame.to_parquet(tmp, index=False)
            os.replace(tmp, target)
            written.append(target)
        return written
