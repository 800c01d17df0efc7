"""Closed-form predictions for a study's runs (``autophagy.theory``), matched to the stored runs.

Each run's stored config is one grid point, so ``theory.predict`` / ``compare`` are called per run and the
block of the run's lineage is kept; predictions are keyed by the stored ``run_id`` whatever id scheme the
store uses.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..errors import AutophagyError
from .study import Study

PRED_COLUMNS = ["run_id", "generation", "metric", "expected"]


def _config(row):
    """The run's grid point; a loop-lineage run without its control twin, so ``predict`` gives one block."""
    from ..config import Config

    d = json.loads(json.dumps(row.config))
    d["grid"] = None
    if row.lineage != "control":
        d.setdefault("loop", {})["control"] = False
    return Config.model_validate(d)


def _block_id(pred: pd.DataFrame, lineage: str) -> str | None:
    """Which of ``predict``'s run ids is this lineage's, without assuming how ids are made: the only block of
    a loop-only config; for a control run the id marked ``control``, else the second of two blocks."""
    ids = list(pd.unique(pred["run_id"]))
    if lineage != "control":
        return ids[0] if len(ids) == 1 else None
    marked = [i for i in ids if str(i).endswith("control")]
    return marked[0] if len(marked) == 1 else (ids[1] if len(ids) == 2 else None)


def _predict(row):
    """(config, predict frame, block id) of a stored run, or None when it has no closed form."""
    from .. import theory

    try:
        cfg = _config(row)
        pred = theory.predict(cfg)
    except (AutophagyError, ValueError):  # NoClosedForm, or a config this version cannot rebuild
        return None
    block = _block_id(pred, row.lineage)
    return None if block is None else (cfg, pred, block)


def predictions(study: Study) -> pd.DataFrame:
    """``run_id, generation, metric, expected`` for every run and ``param.*`` metric that has a closed form.

    All runs are predicted in one ``theory.predict_many`` call: runs that differ only in numbers (a grid over
    dimensions, say) share one batched moment recursion; the numbers are ``predict``'s, bit for bit."""
    if "predictions" in study._cache:
        return study._cache["predictions"]
    from .. import theory

    rows, configs = [], []
    for row in study.runs.itertuples():
        try:
            configs.append(_config(row))
            rows.append(row)
        except (AutophagyError, ValueError):  # a config this version cannot rebuild
            continue
    parts: dict[str, list] = {c: [] for c in PRED_COLUMNS}
    for row, pred in zip(rows, theory.predict_many(configs)):
        if isinstance(pred, (AutophagyError, ValueError)):  # NoClosedForm, or a config this version cannot rebuild
            continue
        if isinstance(pred, Exception):
            raise pred
        ids = pred["run_id"].to_numpy()
        blocks = list(pd.unique(ids))
        block = _block_id(pred, row.lineage)
        if block is None:
            continue
        keep = slice(None) if len(blocks) == 1 else ids == block
        parts["generation"].append(pred["generation"].to_numpy()[keep])
        parts["metric"].append(pred["metric"].to_numpy()[keep])
        parts["expected"].append(pred["expected"].to_numpy()[keep])
        parts["run_id"].append(np.full(len(parts["expected"][-1]), row.run_id, dtype=object))
    if parts["run_id"]:  # one frame for the study (not a frame per run and a concat)
        out = pd.DataFrame({"run_id": pd.array(np.concatenate(parts["run_id"]), dtype="str"),
                            "generation": np.concatenate(parts["generation"]),
                            "metric": pd.array(np.concatenate(parts["metric"]), dtype="str"),
                            "expected": np.concatenate(parts["expected"])})[PRED_COLUMNS]
    else:
        out = pd.DataFrame(columns=PRED_COLUMNS)
    study._cache["predictions"] = out
    return out


def comparison(study: Study) -> pd.DataFrame:
    """``theory.compare`` per run (predicted vs measured mean ± s.e., z, flags), keyed by stored run_id."""
    if "comparison" in study._cache:
        return study._cache["comparison"]
    from .. import theory

    frames = []
    for row in study.runs.itertuples():
        found = _predict(row)
        m = study.metrics[study.metrics["run_id"].astype(str) == row.run_id]
        if found is None or m.empty:
            continue
        cfg, _, block = found
        try:
            table = theory.compare(cfg, m.assign(run_id=pd.Categorical([block] * len(m))))
        except (AutophagyError, ValueError):
            continue
        frames.append(table[table.run_id == block].assign(run_id=row.run_id))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    study._cache["comparison"] = out
    return out
