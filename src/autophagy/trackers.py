"""Mirror finished runs into an experiment tracker: MLflow, Weights & Biases or TensorBoard.

The SQLite store (``autophagy.store``) stays the source of truth; a tracker gets a copy, written
when ``autophagy.run(..., track=[...])`` (``autophagy run --track NAME``) finishes. Everything is
local and offline, inside the results directory:

* ``mlflow``: a SQLite tracking backend ``OUT/mlflow.db`` (artifacts in ``OUT/mlruns``); browse
  with ``mlflow ui --backend-store-uri sqlite:///OUT/mlflow.db``;
* ``wandb``: offline runs in ``OUT/wandb/`` (``wandb sync OUT/wandb/offline-run-*`` uploads them);
* ``tensorboard``: event files in ``OUT/tensorboard/<run_id>/`` (``tensorboard --logdir OUT/tensorboard``).

Each autophagy run becomes one tracker run named like the run, carrying its run id, lineage and
version as tags, its resolved config flattened to dotted parameters (``loop.policy``,
``sampling.bias``, ...), and, per metric, the mean and Monte-Carlo standard error over replicates at
every generation (step = generation; keys ``METRIC`` and ``METRIC.se``). A run already mirrored
(same run id) is skipped, so re-running a command does not duplicate it. Each tracker is an
optional extra, imported only when asked for.
"""
from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .errors import ConfigError

# tracker -> (module that must import, extra that installs it)
TRACKERS = {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb"), "tensorboard": ("tensorboard", "tensorboard")}


def check(track: str | Iterable[str] | None, out: Path | None) -> list[str]:
    """Validate ``track`` before anything runs: known names, a results directory, the extra installed."""
    if not track:
        return []
    names = [track] if isinstance(track, str) else list(track)
    names = [n.strip() for item in names for n in str(item).split(",") if n.strip()]
    for name in names:
        if name not in TRACKERS:
            raise ConfigError("--track", name, " | ".join(TRACKERS))
        if out is None:
            raise ConfigError("--track", name, "", problem="needs a results directory (give --out, or drop --no-save)")
        module, extra = TRACKERS[name]
        try:
            importlib.import_module(module)
        except ImportError:
            raise ConfigError("--track", name, "", problem=f"needs the {extra} extra: pip install 'autophagy[{extra}]'") from None
    return list(dict.fromkeys(names))


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> ``{"loop.policy": "replace", ...}``; lists are kept as values."""
    if not isinstance(d, dict):
        return {prefix: d} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def _series(result, run_id: str) -> pd.DataFrame:
    """The run's per-generation means and standard errors: columns metric, generation, mean, se."""
    s = result.summary()
    return s[s.run_id == run_id][["metric", "generation", "mean", "se"]]


def _numbers(frame: pd.DataFrame) -> Iterable[tuple[str, int, float]]:
    """(key, step, value) rows, NaN left out (a tracker may refuse it)."""
    for r in frame.itertuples(index=False):
        for key, value in ((str(r.metric), r.mean), (f"{r.metric}.se", r.se)):
            if value is not None and not math.isnan(float(value)):
                yield key, int(r.generation), float(value)


def _runs(result) -> list[dict]:
    rows = []
    for r in result.runs.itertuples(index=False):
        config = r.config if isinstance(r.config, dict) else {}
        rows.append({"run_id": str(r.run_id), "name": str(r.name), "lineage": str(getattr(r, "lineage", "loop")),
                     "version": str(getattr(r, "version", "") or ""), "params": flatten(config)})
    return rows


def mirror(result, names: list[str], out: Path) -> list[str]:
    """Copy every run of ``result`` to each tracker in ``names``; returns one line per tracker saying where."""
    said = []
    for name in names:
        said.append({"mlflow": _mlflow, "wandb": _wandb, "tensorboard": _tensorboard}[name](result, Path(out)))
    return said


def _mlflow(result, out: Path) -> str:
    import logging

    for name in ("mlflow", "alembic"):  # creating the SQLite backend logs every schema migration at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    uri = f"sqlite:///{(out / 'mlflow.db').resolve()}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("autophagy")
    eid = experiment.experiment_id if experiment else client.create_experiment(
        "autophagy", artifact_location=(out / "mlruns").resolve().as_uri())
    for run in _runs(result):
        if client.search_runs([eid], f"tags.`autophagy.run_id` = '{run['run_id']}'", max_results=1):
            continue
        tags = {"autophagy.run_id": run["run_id"], "autophagy.lineage": run["lineage"], "autophagy.version": run["version"]}
        created = client.create_run(eid, run_name=run["name"], tags=tags)
        rid = created.info.run_id
        params = [Param(k, str(v)[:6000]) for k, v in run["params"].items()]
        metrics = [Metric(k, v, 0, step) for k, step, v in _numbers(_series(result, run["run_id"]))]
        for i in range(0, len(params), 100):  # MLflow's per-call limits: 100 params, 1000 metrics
            client.log_batch(rid, params=params[i:i + 100])
        for i in range(0, len(metrics), 1000):
            client.log_batch(rid, metrics=metrics[i:i + 1000])
        client.set_terminated(rid)
    return f"mlflow: {uri} (mlflow ui --backend-store-uri {uri})"


def _wandb(result, out: Path) -> str:
    import wandb

    folder = out / "wandb"
    folder.mkdir(parents=True, exist_ok=True)
    for run in _runs(result):
        if list(folder.glob(f"offline-run-*-{run['run_id']}")):
            continue
        settings = wandb.Settings(silent=True, disable_git=True, x_disable_stats=True, console="off")
        w = wandb.init(project="autophagy", dir=str(out), mode="offline", id=run["run_id"], name=run["name"],
                       config=run["params"], tags=[run["lineage"], f"autophagy-{run['version']}"],
                       settings=settings, reinit="create_new")
        frame = _series(result, run["run_id"])
        for g, part in frame.groupby("generation"):
            w.log({k: v for k, _, v in _numbers(part)} | {"generation": int(g)}, step=int(g))
        w.finish()
    return f"wandb: offline runs in {folder} (wandb sync {folder}/offline-run-* uploads them)"


def _tensorboard(result, out: Path) -> str:
    import time

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder = out / "tensorboard"
    for run in _runs(result):
        target = folder / run["run_id"]
        if target.is_dir() and any(target.glob("events.out.tfevents.*")):
            continue
        writer = EventFileWriter(str(target))
        now = time.time()
        text = "\n".join(f"| {k} | {v} |" for k, v in run["params"].items())
        header = f"**{run['name']}** ({run['lineage']}, autophagy {run['version']})\n\n| parameter | value |\n|---|---|\n"
        meta = Summary.Value(tag="config", metadata={"plugin_data": {"plugin_name": "text"}})
        meta.tensor.dtype = 7  # DT_STRING
        meta.tensor.string_val.append((header + text).encode())
        meta.tensor.tensor_shape.dim.add(size=1)
        writer.add_event(Event(wall_time=now, step=0, summary=Summary(value=[meta])))
        for key, step, value in _numbers(_series(result, run["run_id"])):
            writer.add_event(Event(wall_time=now, step=step, summary=Summary(value=[Summary.Value(tag=key, simple_value=value)])))
        writer.close()
    return f"tensorboard: event files in {folder} (tensorboard --logdir {folder})"
