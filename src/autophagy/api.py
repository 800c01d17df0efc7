"""The public entry point: ``autophagy.run(config, out=None)``.

``config`` is a dict, a YAML/TOML path or a ``Config``. Everything is validated before any
simulation starts (bad values raise ``ConfigError`` / ``DataError`` with one clear line), and
files are written only when ``out`` is given.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd
from pydantic import ValidationError

from . import components
from .config import Config, expand, from_validation_error, load_config
from .errors import ConfigError
from .loop import Plan, simulate
from .store import Store, long_frame


def _options(cls, raw: dict, prefix: str):
    model = components.options_model(cls)
    if model is None:
        return raw
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise from_validation_error(err, prefix, model) from None


def build_source(cfg: Config, base_dir: Path = Path(".")):
    cls = components.resolve("source", cfg.data.source, "data.source")
    opts = _options(cls, dict(cfg.data.model_extra or {}), "data")
    try:
        return cls(opts, base_dir=base_dir)
    except TypeError:
        return cls(opts)


def build_family(cfg: Config, info):
    cls = components.resolve("family", cfg.model.family, "model.family")
    raw = dict(cfg.model.model_extra or {})
    if getattr(cls, "batched", False):
        return cls(_options(cls, raw, "model"), info)
    from .models.lifted import Lifted

    if not callable(getattr(cls, "fit", None)) or not callable(getattr(cls, "sample", None)):
        raise ConfigError("model.family", cfg.model.family, "a class with fit(x, rng) and sample(m, rng, bias) methods")
    try:
        cls(**raw)
    except TypeError as exc:
        raise ConfigError("model", "{...}", f"options accepted by {cfg.model.family} ({exc})") from None
    return Lifted(cls, raw, info)


def build(cfg: Config, base_dir: Path = Path("."), control: bool = False) -> Plan:
    """Resolve and validate every component of a (grid-free) config."""
    source = build_source(cfg, base_dir)
    family = build_family(cfg, source.info)
    if hasattr(family, "check_train_size"):
        from .policies import smallest_training_set

        family.check_train_size(smallest_training_set(cfg.loop))
    specs = [(m.name, dict(m.options)) for m in cfg.metrics.use]
    if (cfg.curation or cfg.correction) and cfg.metrics.tradeoff:
        from .metrics import with_tradeoff

        specs = with_tradeoff(specs, source.info, cfg.curation)
    if specs:
        from . import metrics as metric_lib

        metric_lib.check_applicable(specs, source.info, has_log_prob=getattr(family, "has_log_prob", True))
    curator = corrector = None
    if cfg.curation:
        from . import curation

        curator = curation.build(cfg.curation, source.info, base_dir)
        ranks_by_density = getattr(curator, "reward", None) is not None and curator.opts.reward == "log-likelihood"
        if ranks_by_density and not getattr(family, "has_log_prob", True):
            raise ConfigError("curation.reward", "log-likelihood",
                              f"a reward that needs no density (distance, classifier or 'pkg.mod:fn'): "
                              f"model.family {cfg.model.family} has no log_prob")
    if cfg.correction:
        from . import correction

        corrector = correction.build(cfg.correction, source, base_dir)
    return Plan(cfg, source, family, specs, curator, corrector, control)


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
    """What a call to ``run`` produced.

    ``metrics``: long DataFrame (run_id, replicate, generation, metric, value).
    ``runs``: one row per run (run_id, name, hash, lineage ``loop`` | ``control``, config dict, seconds).
    """

    metrics: pd.DataFrame
    runs: pd.DataFrame
    out: Optional[Path] = None
    reused: list = field(default_factory=list)

    def summary(self, metric: str | None = None, generation: int | None = None) -> pd.DataFrame:
        """Mean, standard deviation and Monte-Carlo standard error over replicates, per run and generation."""
        df = self.metrics if metric is None else self.metrics[self.metrics.metric == metric]
        if generation is not None:
            df = df[df.generation == (df.generation.max() if generation == -1 else generation)]
        g = df.groupby(["run_id", "metric", "generation"])["value"]
        out = g.agg(mean="mean", std="std", n="count").reset_index()
        out["se"] = out["std"] / out["n"] ** 0.5
        return out.merge(self.runs[["run_id", "name", "lineage"]], on="run_id", how="left")

    def final(self, metric: str) -> pd.DataFrame:
        """Per run: the metric's mean ± se at generation 0 and at the last generation."""
        s = self.summary(metric)
        first = s[s.generation == 0].set_index("run_id")
        last = s.loc[s.groupby("run_id").generation.idxmax()].set_index("run_id")
        return pd.DataFrame({"name": last["name"], "lineage": last["lineage"], "gen0": first["mean"],
                             "final": last["mean"], "final_se": last["se"], "generation": last["generation"]}).reset_index()


def run(config: Any, out: str | Path | None = None, *, overrides: list[str] | None = None,
        on_generation: Callable[[str, int, int], None] | None = None) -> Result:
    """Run a study: every grid point (and its control lineage when ``loop.control``).

    ``on_generation(name, g, G)`` is called after each recorded generation (progress bars).
    With ``out``, results go to ``out/results.sqlite`` and ``out/metrics.csv``; runs already
    finished there with the same resolved config are loaded instead of recomputed.
    """
    cfg, base_dir = load_config(config, overrides)
    configs = expand(cfg)
    plans = []
    for c in configs:  # validate everything before running anything
        plans.append(build(c, base_dir))
        if c.loop.control:
            plans.append(build(c, base_dir, control=True))
    store = Store(Path(out)) if out is not None else None
    frames, runs, reused = [], [], []
    for plan in plans:
        c = plan.config
        lineage = "control" if plan.control else "loop"
        run_id = c.hash() + ("-control" if plan.control else "")
        name = c.name + (" (real-only control)" if plan.control else "")
        info = {"run_id": run_id, "name": name, "hash": c.hash(), "lineage": lineage, "config": c.to_dict()}
        cached = store.finished(run_id) if store else None
        if cached is not None:
            frames.append(cached)
            reused.append(run_id)
            runs.append({**info, "seconds": 0.0})
            continue
        if store and hasattr(plan.family, "save"):
            plan.checkpoint_dir = store.dir / "checkpoints" / run_id
        if store and plan.source.info.image_shape is not None:
            plan.grid_dir = store.dir / "grids" / run_id
        t0 = time.perf_counter()
        cb = (lambda g, _n=name, _G=c.generations: on_generation(_n, g, _G)) if on_generation else None
        values = simulate(plan, cb)
        info["seconds"] = time.perf_counter() - t0
        frame = long_frame(run_id, values)
        if store:
            store.save(info, frame)
        frames.append(frame)
        runs.append(info)
    metrics = _concat(frames)
    result = Result(metrics, pd.DataFrame(runs), Path(out) if out is not None else None, reused)
    if store:
        store.export("csv")
    return result
