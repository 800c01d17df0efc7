"""The self-consuming loop, for R replicate chains at once. It reads like a methods section:

    real   = source.sample(n_initial)                      # P_r, drawn once per replicate
    model  = family.fit(real)                              # generation 0
    for g in 1..G:
        cands  = model_{g-1}.sample(m, bias=λ)             # or a uniformly chosen earlier model (synthetic_from: all)
        synth  = correct(curate(cands))                    # curation.py, correction.py (identity when unset)
        pool.add(synth)                                    # accumulate: points stored once, or running statistics
        train  = policy(real, synth, pool, fresh real)     # policies.py
        model  = family.fit(train, init=model if warm start)
        record(model)                                      # param.* and sample-based metrics

Exact paths: when nothing needs the points (no sample-based metric, curation, correction or
control, synthetic_from: last, no accumulation weights) a family with sufficient
statistics (Gaussian) draws each batch's statistics from their exact law instead of its points
(``model.exact_moments``; replace: ``model.exact_refit``), and real sets enter as their
statistics. Sample-size schedules are honoured: each step uses that generation's sizes.
accumulate-subsample draws only the batch's points a later training set selects and stores those until their
last use (``subsample_pool.LiveSubsetPool``).
A real set of n <= d points: augment, accumulate and accumulate-subsample run in its affine hull
(``family.chain_start``; r = n − 1 coordinates).

Labelled loops: a family that declares ``uses_labels`` (a conditional DDPM with ``labels: source``)
trains on the source's labels. Real sets are then drawn with ``source.sample_labeled`` (the same rows
as ``sample``), synthetic batches with ``model.sample_labeled`` (each point with the class it was
generated from), the corrector gets the batch's labels, and the labels ride through the policy as a
last column of the points (every policy only concatenates and gathers rows), to be split off at ``fit``.

Every random draw comes from ``Streams(seed, R, generation, role)``; see ``autophagy.rng``.
The real-only control lineage runs the same loop with the synthetic batch replaced by fresh
real draws of the same size (role ``"control"``).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .policies import POLICIES, make_pool
from .subsample_pool import LiveSubsetPool
from .rng import Streams


@dataclass
class Plan:
    """Everything a simulation needs, validated (built by ``autophagy.build.build``)."""

    config: Any  # autophagy.config.Config
    source: Any
    family: Any
    metric_specs: list  # [(name, options)]
    curator: Optional[Callable] = None
    corrector: Optional[Callable] = None
    control: bool = False  # run the real-only control lineage
    checkpoint_dir: Optional[Path] = None  # where families with save/load keep each finished generation
    grid_dir: Optional[Path] = None  # image sources: where each generation's sample mosaic goes


def with_labels(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points ``(R, n, d)`` and labels ``(R, n)`` as one ``(R, n, d + 1)`` array (labelled loops)."""
    return np.concatenate([np.asarray(x, dtype=float), np.asarray(y, dtype=float)[..., None]], axis=-1)


def split_labels(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of ``with_labels``: ``(R, n, d)`` points and ``(R, n)`` int64 labels."""
    return xy[..., :-1], xy[..., -1].astype(np.int64)


def check_labels(plan: Plan) -> None:
    """Labelled loops need a labelled source, and every step between sampling and fitting must keep labels."""
    from .errors import ConfigError

    if not getattr(plan.family, "uses_labels", False):
        return
    if not callable(getattr(plan.source, "sample_labeled", None)):
        raise ConfigError("model.labels", "source", "components or kmeans: the source has no sample_labeled")
    if plan.curator is not None:
        raise ConfigError("curation.method", getattr(getattr(plan.curator, "opts", None), "method", "set"),
                          "unset with model.labels: source (curation does not carry labels)")
    if plan.corrector is not None and not getattr(plan.corrector, "keeps_labels", False):
        raise ConfigError("correction.method", plan.corrector.opts.method, "a method that moves points and keeps "
                          "their labels (nearest-prototype, knn-pull, project, ...) with model.labels: source")


def _sample_synthetic(models: list, m: int, streams: Streams, bias: float, from_all: bool,
                      labelled: bool = False) -> np.ndarray:
    """``(R, m, d)`` synthetic candidates from the last model, or (MAD's ``synthetic_from: all``) each point
    from a model chosen uniformly among all previous generations. Labelled: ``(R, m, d + 1)`` (``with_labels``)."""
    def draw(mod, s):
        return with_labels(*mod.sample_labeled(m, s, bias=bias)) if labelled else mod.sample(m, s, bias=bias)

    if not from_all or len(models) == 1:
        return draw(models[-1], streams)
    draws = [draw(mod, streams.child(f"model{k}")) for k, mod in enumerate(models)]
    which = streams.child("which").integers(len(models), m)  # (R, m)
    stacked = np.stack(draws, axis=0)  # (K, R, m, d)
    r, j = np.meshgrid(np.arange(stacked.shape[1]), np.arange(m), indexing="ij")
    return stacked[which, r, j]


def _exact_step_ok(plan: Plan, cfg) -> bool:
    """Whether this run may refit from exact sufficient statistics instead of samples (see the module docstring)."""
    return (cfg.loop.sufficient_stats == "auto" and getattr(plan.family, "sufficient_statistics", False)
            and (cfg.loop.policy != "accumulate-subsample" or hasattr(plan.family, "chain_start"))
            and cfg.loop.accumulate_weights == "uniform"
            and cfg.loop.synthetic_from == "last" and not plan.metric_specs and plan.curator is None
            and plan.corrector is None and not plan.control)


def _fit(plan: Plan, g: int, train: np.ndarray, streams: Streams, init):
    """Fit generation g, or load it from its checkpoint (families with ``save``/``load``).

    Resuming is exact: later generations' draws depend only on the seed tree and the models,
    so reloading finished generations and re-sampling reproduces the uninterrupted run.
    """
    family = plan.family
    if getattr(family, "uses_labels", False):
        x, y = split_labels(train)
        fit = lambda: family.fit(x, streams, init=init, labels=y)  # noqa: E731
    else:
        fit = lambda: family.fit(train, streams, init=init)  # noqa: E731
    if plan.checkpoint_dir is None or not (hasattr(family, "save") and hasattr(family, "load")):
        return fit()
    path = Path(plan.checkpoint_dir) / f"gen{g:04d}"
    if path.exists():
        return family.load(path)
    model = fit()
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    family.save(model, tmp)
    os.replace(tmp, path)
    return model


def simulate(plan: Plan, on_generation: Callable[[int, dict], None] | None = None,
             block: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Run the loop; returns ``{metric: (G+1, R) array}``.

    ``block = (start, stop)`` runs replicates ``start..stop-1`` only (``start`` a multiple of
    ``rng.BLOCK``): the seed tree makes their numbers the same as in the full run, so a sweep may
    split one large run over workers. ``on_generation(g, values)`` gets each recorded generation's
    ``{metric: (R,) array}`` (progress, and rows of unfinished runs).
    """
    if getattr(plan.family, "sufficient_statistics", False):  # many small matrices: BLAS threads only
        from threadpoolctl import threadpool_limits  # add overhead (34x for a batch of 100x100 eigh under load)
        if getattr(plan.family, "uses_scipy_blas", True):  # loaded before the limit, so that it is limited too
            import scipy.linalg.blas  # noqa: F401

        with threadpool_limits(1, user_api="blas"):
            return _simulate(plan, on_generation, block)
    return _simulate(plan, on_generation, block)


def _simulate(plan: Plan, on_generation, block) -> dict[str, np.ndarray]:
    from . import metrics as metric_lib

    cfg = plan.config
    start, stop = block if block is not None else (0, cfg.replicates)
    R, G, seed, bias = stop - start, cfg.generations, cfg.seed, cfg.sampling.bias
    policy = POLICIES[cfg.loop.policy]
    S = lambda g, role: Streams(seed, R, g, role, start)  # noqa: E731 - the seed tree, one line

    check_labels(plan)
    labelled = getattr(plan.family, "uses_labels", False)
    draw_real = (lambda n, s: with_labels(*plan.source.sample_labeled(n, s))) if labelled else plan.source.sample  # noqa: E731
    real = draw_real(cfg.loop.initial, S(-1, "data"))  # labelled: (R, n, d + 1), see with_labels
    heldout = plan.source.sample(cfg.metrics.n_heldout, S(-1, "heldout")) if plan.metric_specs else None
    records: dict[str, list] = {}
    grids = plan.grid_dir is not None and cfg.metrics.grid_samples > 0 and start == 0  # replicate 0's samples
    if grids:
        from .report.grids import save_generation_grid

    def record(g: int, model) -> None:
        values = {f"param.{k}": v for k, v in model.param_metrics(plan.source.info).items()}
        if plan.metric_specs:
            evals = model.sample(cfg.metrics.n_eval, S(g, "eval"), bias=bias)
            values.update(metric_lib.compute(plan.metric_specs, heldout, evals, model=model,
                                             info=plan.source.info, streams=S(g, "metric")))
        values = {k: np.asarray(v, dtype=float).reshape(R) for k, v in values.items()}
        for k, v in values.items():
            records.setdefault(k, [np.full(R, np.nan)] * g).append(v)
        if grids:  # its own stream ("grid"), so saving pictures never changes a recorded number
            images = model.sample(cfg.metrics.grid_samples, S(g, "grid"), bias=bias)[0]
            save_generation_grid(plan.grid_dir, g, images, plan.source.info.image_shape)
        if on_generation:
            on_generation(g, values)

    if grids:
        save_generation_grid(plan.grid_dir, "real", real[0, :cfg.metrics.grid_samples, :plan.source.info.dim],
                             plan.source.info.image_shape)
    model = _fit(plan, 0, real, S(0, "fit"), None)
    if plan.metric_specs:  # now we know whether the family's models have a density
        metric_lib.check_applicable(plan.metric_specs, plan.source.info, has_log_prob=hasattr(model, "log_prob"))
    record(0, model)
    models = [model]
    exact = _exact_step_ok(plan, cfg) and hasattr(model, "exact_moments")
    subsample = exact and policy.name == "accumulate-subsample"  # the pool's statistics, not its points
    hull = policy.name in ("augment", "accumulate", "accumulate-subsample") and real.shape[1] <= real.shape[2]
    if exact and (subsample or hull) and hasattr(plan.family, "chain_start"):  # n <= d: in the real set's hull
        real, model = plan.family.chain_start(real, hull, points=subsample)
    elif exact:  # statistics in place of points from here on
        model, real = model.triangular(), plan.family.statistics(real)
    capacity = cfg.loop.initial + sum(cfg.loop.synthetic_at(g) for g in range(1, G + 1))
    if subsample:  # every generation's subset drawn up front (the same indices as the point pool's)
        pool = LiveSubsetPool(real, [cfg.loop.synthetic_at(g) for g in range(1, G + 1)],
                              [cfg.loop.real_at(g) for g in range(1, G + 1)], lambda g: S(g, "policy"),
                              lambda n, s1, s2, basis=model.basis: plan.family.summed(n, s1, s2, basis))
    # accumulate, exact, triangular factor, every batch >= dimension + 1 points: the fit's own recursion, no pool
    whitened = (exact and policy.name == "accumulate" and getattr(model, "tri", False) and not model.diag
                and all(cfg.loop.synthetic_at(g) == 0 or cfg.loop.synthetic_at(g) - 1 >= model.mean.shape[-1]
                        for g in range(1, G + 1)))
    if whitened:
        pool = None
    elif not subsample:
        pool = make_pool(real, plan.family, cfg.loop, capacity, exact) if policy.keeps_history else None
    pooled = cfg.loop.initial
    for g in range(1, G + 1):
        n_real, n_syn = cfg.loop.real_at(g), cfg.loop.synthetic_at(g)  # sizes may follow a schedule over g
        if exact and policy.name == "replace":  # keeps the drawn factor: no factorisation per step
            model = model.exact_refit(n_syn, S(g, "sample"), bias)
            record(g, model)
            continue
        if whitened:  # no pool: the pool's fit is the model (GaussianModel.exact_accumulate)
            if n_syn:
                model = model.exact_accumulate(n_syn, pooled, S(g, "sample"), bias)
                pooled += n_syn
            record(g, model)
            continue
        if subsample:  # only the batch's points that some training set selects; the pool stores those
            synth = model.sample_rows(pool.needed(), pool.draw_width(), S(g, "sample"), bias, dtype=pool.dtype.type)
        elif exact:
            synth = model.exact_moments(n_syn, S(g, "sample"), bias)
        elif plan.control:
            synth = draw_real(n_syn, S(g, "control"))
        else:
            m = plan.curator.candidates(n_syn) if plan.curator else n_syn
            synth = _sample_synthetic(models, m, S(g, "sample"), bias, cfg.loop.synthetic_from == "all", labelled)
            if plan.curator:
                synth = plan.curator(synth, model=models[-1], streams=S(g, "curate"))
            if plan.corrector and labelled:  # the corrector moves the points; each keeps its label
                x, y = split_labels(synth)
                synth = with_labels(plan.corrector(x, streams=S(g, "correct"), labels=y), y)
            elif plan.corrector:
                synth = plan.corrector(synth, streams=S(g, "correct"))
        if pool is not None:
            pool.add(synth)
        fresh = draw_real(n_real, S(g, "data")) if policy.needs_fresh else None
        if exact and fresh is not None:
            fresh = plan.family.statistics(fresh)
        train = policy.build(real, synth, pool, fresh, n_real, S(g, "policy"))
        model = _fit(plan, g, train, S(g, "fit"), model if cfg.loop.warm_start else None)
        record(g, model)
        if cfg.loop.synthetic_from == "all":
            models.append(model)
        else:
            models = [model]
    return {k: np.stack(v) for k, v in records.items()}
