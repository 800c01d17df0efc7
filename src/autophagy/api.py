"""The public entry points: ``autophagy.run(config, out=None, ...)`` and ``autophagy.load(DIR)``.

``run`` = specs -> validate every run -> skip what the store already has -> shards -> executor ->
store -> ``Result``. ``config`` is a dict, a YAML/TOML path or a ``Config``. Everything is validated
before any simulation starts (bad values raise ``ConfigError`` / ``DataError`` with one clear line),
and files are written only when ``out`` is given.
"""
from __future__ import annotations

import socket
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

import numpy as np
import pandas as pd

from .build import build, build_family, build_source  # noqa: F401 - re-exported (autophagy.build)
from .spec import RunSpec, specs_for
from .store import Store, long_frame, param_columns
from .sweep import Shard, ShardResult, cost, execute, join_blocks, make_engine, split


class Progress(Protocol):
    """What ``run`` reports while it works (the CLI's progress bars implement it)."""

    def start(self, shards: list[Shard]) -> None: ...
    def generation(self, key: tuple, g: int) -> None: ...
    def finished(self, key: tuple) -> None: ...


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during ``run``: ``saved`` of ``total`` runs are complete in ``out`` (re-run to resume)."""

    def __init__(self, saved: int, total: int, out: Optional[Path]):
        super().__init__(f"{saved} of {total} runs saved")
        self.saved, self.total, self.out = saved, total, out


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack runs' frames; run_id and metric stay categorical (over the union of categories)."""
    if not frames:
        return long_frame("", {})
    if len(frames) == 1:
        return frames[0]
    from pandas.api.types import union_categoricals

    cols = {}
    for col in ("run_id", "metric"):
        cols[col] = union_categoricals([pd.Categorical(f[col]) for f in frames])
    out = pd.concat([f.drop(columns=["run_id", "metric"]) for f in frames], ignore_index=True)
    out.insert(0, "run_id", cols["run_id"])
    out.insert(3, "metric", cols["metric"])
    return out


@dataclass
class Result:
    """What a call to ``run`` (or ``load``) produced.

    ``metrics``: long DataFrame (run_id, replicate, generation, metric, value).
    ``runs``: one row per run (run_id, name, hash, lineage ``loop`` | ``control``, then one column per
    swept or overridden parameter such as ``loop.policy`` or ``sampling.bias`` (listed in ``params``),
    status, version, config dict, seconds, ...). ``reused``: run ids taken from the store instead of
    recomputed; ``notes``: what the user should know (e.g. rows of another autophagy version left unused).
    ``summary()`` carries the parameter columns too, so pandas / seaborn can group by them directly.
    """

    metrics: pd.DataFrame
    runs: pd.DataFrame
    out: Optional[Path] = None
    reused: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    params: list = field(default_factory=list)

    def __post_init__(self):
        if len(self.runs) and "config" in self.runs and not self.params:
            cols = param_columns(list(self.runs.name), list(self.runs.config))
            at = list(self.runs.columns).index("lineage") + 1 if "lineage" in self.runs else len(self.runs.columns)
            self.runs = self.runs.copy()
            for col, values in cols.items():
                if col not in self.runs:  # replicates / generations are columns already
                    self.runs.insert(at, col, values)
                    at += 1
            self.params = list(cols)

    def summary(self, metric: str | None = None, generation: int | None = None) -> pd.DataFrame:
        """Mean, standard deviation and Monte-Carlo standard error over replicates, per run and generation."""
        df = self.metrics if metric is None else self.metrics[self.metrics.metric == metric]
        if generation is not None:
            df = df[df.generation == (df.generation.max() if generation == -1 else generation)]
        g = df.groupby(["run_id", "metric", "generation"], observed=True)["value"]
        out = g.agg(mean="mean", std="std", n="count").reset_index()
        out["se"] = out["std"] / out["n"] ** 0.5
        return out.merge(self.runs[["run_id", "name", "lineage", *self.params]], on="run_id", how="left")

    def final(self, metric: str) -> pd.DataFrame:
        """Per run: the metric's mean ± se at generation 0 and at the last generation."""
        s = self.summary(metric)
        first = s[s.generation == 0].set_index("run_id")
        last = s.loc[s.groupby("run_id").generation.idxmax()].set_index("run_id")
        return pd.DataFrame({"name": last["name"], "lineage": last["lineage"], "gen0": first["mean"],
                             "final": last["mean"], "final_se": last["se"], "generation": last["generation"]}).reset_index()


class _Callback:
    """Adapts the older ``on_generation(name, g, G)`` callback to ``Progress``."""

    def __init__(self, fn: Callable[[str, int, int], None]):
        self.fn, self.shards = fn, {}

    def start(self, shards):
        self.shards = {s.key: s for s in shards}

    def generation(self, key, g):
        s = self.shards.get(key)
        if s is not None:
            self.fn(s.spec.name, g, s.spec.config.generations)

    def finished(self, key):
        pass


def _pieces(engine, n_runs: int) -> int:
    """How many shards to cut each run into: enough to keep every worker busy (about two per worker)."""
    if engine.name == "serial" or n_runs == 0:
        return 1
    return max(1, -(-2 * engine.workers // n_runs))


def _run_row(spec: RunSpec, seconds: float, status: str, flag: str = "") -> dict:
    return {"run_id": spec.run_id, "name": spec.name, "hash": spec.study_hash, "lineage": spec.lineage,
            "status": status, "flag": flag, "version": spec.version, "config": spec.config.to_dict(), "seconds": seconds}


class NonFiniteWarning(UserWarning):
    """A recorded metric was NaN or ±inf: one line naming the run, generation, metric and the likely cause."""


def _cause(metric: str, value: float, spec: RunSpec) -> str:
    """The likely reason a recorded value is not finite (what the user can change)."""
    cfg = spec.config
    if value == -np.inf and ("logdet" in metric or metric == "reward-mean" or metric.endswith("nll")):
        return ("singular covariance: a training set of n <= dim points, or duplicate / noise-free points "
                f"(data.source {cfg.data.source!r}); try model.covariance: diag or more points")
    if value != value:
        return "a diverged or degenerate fit (NaN: samples or parameters not finite, or 0/0 in the metric)"
    return "overflow: values beyond float64's range (check the data's scale and model options)"


def _non_finite(spec: RunSpec, values: dict) -> tuple[str, list[str]]:
    """(store flag, warning lines) for a run's ``{metric: (G+1, R)}`` arrays; ("", []) when all are finite."""
    lines, kinds = [], []
    for metric, arr in values.items():
        arr = np.asarray(arr, dtype=float)
        bad = ~np.isfinite(arr)
        if not bad.any():
            continue
        g, r = np.argwhere(bad)[0]
        v = float(arr[g, r])
        shown = "NaN" if v != v else ("-inf" if v < 0 else "inf")
        kinds.append(f"{metric}={shown}@g{g}")
        lines.append(f"{spec.name}: {metric} = {shown} at generation {g} (replicate {r}; {int(bad.sum())} of "
                     f"{bad.size} values not finite): likely {_cause(metric, v, spec)}")
    return ("non-finite: " + ", ".join(kinds)) if kinds else "", lines


def run(config: Any, out: str | Path | None = None, *, overrides: list[str] | None = None,
        workers: int = 1, engine: Any = None, address: str | None = None,
        progress: Progress | None = None, on_generation: Callable[[str, int, int], None] | None = None,
        reuse_any_version: bool = False, command: str = "autophagy.run(...)",
        hidden_overrides: list[str] | None = None, track: str | list[str] | None = None,
        check_memory: bool = True, export: bool = True) -> Result:
    """Run a study: every grid point (and its control lineage when ``loop.control``).

    ``workers`` / ``engine`` (``"serial"``, ``"processes"``, ``"dask"`` or a ``distributed.Client``) /
    ``address`` (a Dask scheduler) choose where shards run; the numbers are the same everywhere.
    With ``out``, results go to ``out/results.sqlite`` and ``out/metrics.csv``; runs finished there
    with the same run id are loaded instead of recomputed, unfinished ones resume from their missing
    replicate blocks. Rows that another autophagy version wrote for the same study are not reused
    unless ``reuse_any_version`` (a note says they exist). ``hidden_overrides`` are applied without
    showing in run names. ``track`` (``"mlflow"``, ``"wandb"``, ``"tensorboard"`` or a list) mirrors the
    finished runs into those trackers inside ``out`` (``autophagy.trackers``; the store stays the source).
    ``check_memory=False`` runs a study whose estimated arrays exceed this machine's memory
    (``build.memory_estimate``). ``export=False`` leaves metrics.csv / runs.csv to the caller
    (``Store(out).export()``; the CLI has a helper process write them while it draws the figure). A run
    that records a NaN or ±inf metric is never silent: one
    ``NonFiniteWarning`` line per run and metric (run, generation, metric, likely cause), and its ``flag``
    (``runs`` frame and store column) says ``non-finite: metric=-inf@g0, ...``.
    """
    from . import trackers

    specs = specs_for(config, overrides, hidden=hidden_overrides)
    tracked = trackers.check(track, Path(out) if out is not None else None)
    for s in specs:  # validate everything before running anything
        build(s, preflight=True, check_memory=check_memory)
    store = Store(Path(out)).prepare() if out is not None else None
    unique = list({s.run_id: s for s in specs}.values())
    reused, notes, alias = [], [], {}
    todo: list[tuple[RunSpec, list]] = []
    for s in unique:
        status, blocks = store.status(s.run_id) if store else (None, [])
        if status == "done":
            reused.append(s.run_id)
            continue
        if store and status is None:
            others = store.other_versions(s.study_hash, s.run_id)
            if others and reuse_any_version:
                alias[s.run_id] = others[0][0]
                reused.append(s.run_id)
                continue
            if others:
                notes.append(f"{s.name}: {out} holds this study from autophagy {others[0][1]}; recomputed with "
                             f"{s.version} (--reuse-any-version reuses the old rows)")
        todo.append((s, blocks))
    if progress is None and on_generation is not None:
        progress = _Callback(on_generation)
    on_event = _events(store, progress)
    eng = make_engine(engine, workers, on_event, address)
    pieces = _pieces(eng, len(todo))
    shards = []
    for s, blocks in todo:
        if store:
            store.begin_run(s, command, socket.gethostname())
        shards += split(s, blocks, pieces, str(out) if out is not None else None)
    if eng.name != "serial":  # the largest first: no long run left alone at the end (numbers unchanged)
        shards.sort(key=cost, reverse=True)
    computed: dict[str, dict[int, dict]] = {}
    seconds: dict[str, float] = {}
    covered: dict[str, int] = {}  # replicates computed in this call, per run

    def on_result(shard: Shard, res: ShardResult) -> None:
        computed.setdefault(shard.spec.run_id, {})[shard.start] = res.values
        seconds[shard.spec.run_id] = seconds.get(shard.spec.run_id, 0.0) + res.seconds
        covered[shard.spec.run_id] = covered.get(shard.spec.run_id, 0) + shard.stop - shard.start
        if store:
            store.save_block(shard.spec.run_id, shard.start, shard.stop, res.values, res.seconds,
                             shard.spec.config.replicates)
        if progress:
            progress.finished(shard.key)

    if progress:
        progress.start(shards)
    try:
        execute(shards, eng, on_result)
    except KeyboardInterrupt:
        done = sum(1 for s in unique if (store.status(s.run_id)[0] if store else None) == "done")
        if store:
            store.export("csv")
        raise Interrupted(done, len(unique), Path(out) if out is not None else None) from None
    frames, runs = [], []
    for s in unique:
        if covered.get(s.run_id, 0) == s.config.replicates:
            values = join_blocks(computed[s.run_id])
        else:  # finished earlier, resumed from stored blocks, or another version's rows (reuse_any_version)
            values = store.values(alias.get(s.run_id, s.run_id))
        frames.append(long_frame(s.run_id, values))
        flag, lines = _non_finite(s, values)
        for line in lines:
            warnings.warn(line, NonFiniteWarning, stacklevel=2)
        if flag and store:
            store.set_flag(s.run_id, flag)
        runs.append(_run_row(s, seconds.get(s.run_id, 0.0), "done", flag))
    result = Result(_concat(frames), pd.DataFrame(runs), Path(out) if out is not None else None, reused, notes)
    if store and (export or tracked):
        store.export("csv")
    if tracked:
        result.notes.extend(trackers.mirror(result, tracked, Path(out)))
    return result


def _events(store: Store | None, progress: Progress | None):
    def on_event(key: tuple, g: int, values: dict | None) -> None:
        if values is not None and store is not None:
            store.save_generation(key[0], key[1], g, values)
        if progress is not None:
            progress.generation(key, g)
    return on_event


def load(directory: str | Path) -> Result:
    """Reopen a results directory: every run (``status`` done or running, ``generations_done``) and every
    stored metric row, including the per-generation rows of unfinished neural runs."""
    import json

    runs, metrics = Store(Path(directory)).load()
    runs = runs.assign(config=[json.loads(c) if isinstance(c, str) else c for c in runs.config])
    for col in ("run_id", "metric"):
        metrics[col] = pd.Categorical(metrics[col])
    return Result(metrics, runs, Path(directory))
