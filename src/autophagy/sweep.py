"""RunSpecs -> shards (run x replicate block) -> an executor -> results back to the driver.

A run is a pure function of its ``RunSpec`` and replicate block: the seed tree gives replicate r the
same numbers whatever R is and however the replicates are split (``autophagy.rng``), so the same
study gives bit-identical metrics on one process, many processes or a Dask cluster, and one large
run (R = 100,000) spreads over workers as well as a grid does. Workers only compute and return
``{metric: (G+1, Rb)}`` arrays; the driver alone writes the store.

Engines (one ``concurrent.futures``-style interface: ``submit`` / ``wait`` / ``close``):

* ``serial``: in this process, shard after shard (the default for one worker);
* ``processes``: a spawn-context ``ProcessPoolExecutor`` (default for ``workers > 1``), one BLAS / torch
  thread per worker; progress and the rows of unfinished neural runs come back through a queue;
* ``dask``: ``dask.distributed`` (the optional ``dask`` extra): a ``LocalCluster`` of ``workers``
  single-threaded processes, or an existing scheduler (``address="tcp://host:port"``, e.g. one a
  ``dask_jobqueue.SLURMCluster`` started); runs whose model sits on CUDA ask for a ``GPU`` resource.
"""
from __future__ import annotations

import os
import queue as queue_mod
import time
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .errors import AutophagyError, ConfigError
from .rng import BLOCK
from .spec import RunSpec

ENGINES = ("serial", "processes", "dask")


class SweepError(AutophagyError):
    """The executor itself failed (a worker died); one line, exit 2."""


@dataclass(frozen=True)
class Shard:
    """Replicates ``start..stop-1`` of one run; ``out`` is the results directory (checkpoints, grids) or None."""

    spec: RunSpec
    start: int
    stop: int
    out: Optional[str] = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.spec.run_id, self.start)

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.stop == self.spec.config.replicates


@dataclass
class ShardResult:
    key: tuple[str, int]
    values: dict[str, np.ndarray]  # {metric: (G+1, stop-start)}
    seconds: float


def split(spec: RunSpec, done: list[tuple[int, int]], pieces: int, out: Optional[str] = None) -> list[Shard]:
    """Shards covering the replicates of ``spec`` not in ``done``, each about 1/``pieces`` of the run
    (whole ``BLOCK``s of the seed tree, so the numbers do not depend on the split)."""
    R = spec.config.replicates
    n_blocks = -(-R // BLOCK)
    have = np.zeros(n_blocks, bool)
    for a, b in done:
        have[a // BLOCK: -(-b // BLOCK)] = True
    per = max(1, -(-n_blocks // max(1, pieces)))
    shards, b = [], 0
    while b < n_blocks:
        if have[b]:
            b += 1
            continue
        e = b
        while e < n_blocks and not have[e] and e - b < per:
            e += 1
        shards.append(Shard(spec, b * BLOCK, min(e * BLOCK, R), out))
        b = e
    return shards


def cost(shard: Shard) -> float:
    """A rough relative cost of a shard, to start the largest first (longest-processing-time order keeps the
    workers busy to the end): replicates × generations × the largest training set × (dimension + dimension²
    / 10). Only the order of the work depends on it, never a number."""
    from .policies import training_sizes

    cfg = shard.spec.config
    d = float(getattr(cfg.data, "dim", None) or 1)
    n = max(training_sizes(cfg.loop, cfg.generations))
    return (shard.stop - shard.start) * (cfg.generations + 1) * max(n, 1) * (d + d * d / 10.0)


# ---------------------------------------------------------------------------- the worker side
_EVENTS: Any = None  # a worker process's queue back to the driver (set by the pool initialiser)


def _init_worker(events) -> None:
    """Pool initialiser: one thread per worker for BLAS and torch; Ctrl-C is the driver's to handle."""
    import signal

    global _EVENTS
    _EVENTS = events
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        pass


def run_shard(shard: Shard, events: Optional[Callable[[tuple, int, Optional[dict]], None]] = None) -> ShardResult:
    """Build and simulate one shard (in whatever process runs it). ``events(key, g, values)`` hears each
    generation; ``values`` is that generation's ``{metric: (Rb,)}`` for families that checkpoint
    (slow generations worth saving as they finish), else None."""
    from .build import build
    from .loop import simulate

    t0 = time.perf_counter()
    plan = build(shard.spec)
    run_id = shard.spec.run_id
    if shard.out is not None:
        out = Path(shard.out)
        if hasattr(plan.family, "save"):
            sub = "" if shard.whole else f"r{shard.start}-{shard.stop}"
            plan.checkpoint_dir = out / "checkpoints" / run_id / sub if sub else out / "checkpoints" / run_id
        if plan.source.info.image_shape is not None:
            plan.grid_dir = out / "grids" / run_id
    send = events
    if send is None and _EVENTS is not None:
        send = lambda key, g, vals: _EVENTS.put((key, g, vals))  # noqa: E731
    stream = plan.checkpoint_dir is not None
    cb = None
    if send is not None:
        last = [0.0]
        G = shard.spec.config.generations

        def cb(g, vals):  # progress at most ten times a second (values: every generation, to be saved)
            now = time.perf_counter()
            if stream or g == G or now - last[0] >= 0.1:
                last[0] = now
                send(shard.key, g, vals if stream else None)
    parts = _sub_blocks(plan, shard.start, shard.stop)
    if len(parts) == 1:
        values = simulate(plan, cb, block=(shard.start, shard.stop))
    else:  # one replicate block at a time: memory follows the block, not the shard (same numbers: seed tree)
        J, G = len(parts), shard.spec.config.generations
        done = {}
        for j, (a, b) in enumerate(parts):
            sub = None if cb is None else (lambda g, vals, j=j: cb((j * (G + 1) + g + 1) // J - 1, vals))
            done[a] = simulate(plan, sub, block=(a, b))
        values = join_blocks(done)
    return ShardResult(shard.key, values, time.perf_counter() - t0)


SUB_BLOCK_BYTES = 512 * 2 ** 20  # a shard whose arrays would exceed this runs one replicate block at a time


def _sub_blocks(plan, start: int, stop: int) -> list[tuple[int, int]]:
    """Replicate ranges a shard simulates one after another: the whole shard, or its ``BLOCK``s when its
    estimated arrays (``build.memory_estimate``) exceed ``SUB_BLOCK_BYTES`` (the Kazdan grid's d = 100,
    n = 1000 accumulate-subsample cell: 1.4 GB in one piece of 100 replicates, 0.9 GB in blocks of 64).
    Not for checkpointing families (their checkpoints are per shard)."""
    from .build import memory_estimate

    if stop - start <= BLOCK or plan.checkpoint_dir is not None:
        return [(start, stop)]
    cfg = plan.config
    per = memory_estimate(cfg, plan.source.info, plan.metric_specs, plan.curator) / max(1, cfg.replicates)
    if per * (stop - start) <= SUB_BLOCK_BYTES:
        return [(start, stop)]
    return [(a, min(a + BLOCK, stop)) for a in range(start, stop, BLOCK)]


def run_shard_single_threaded(shard: Shard) -> ShardResult:
    """``run_shard`` with BLAS held to one thread (Dask workers: two BLAS pools spinning on two cores
    cost more than a third of a sweep's time)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        return run_shard(shard)
    with threadpool_limits(1):
        return run_shard(shard)


# ---------------------------------------------------------------------------- engines
class SerialEngine:
    """Runs each shard in this process when it is submitted."""

    name = "serial"
    workers = 1

    def __init__(self, on_event: Callable):
        self.on_event = on_event

    def submit(self, shard: Shard) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(run_shard(shard, self.on_event))
        except BaseException as exc:  # noqa: BLE001 - handed to the driver through the future
            if isinstance(exc, KeyboardInterrupt):
                raise
            fut.set_exception(exc)
        return fut

    def wait(self, pending: set, timeout: float) -> tuple[set, set]:
        return set(pending), set()

    def drain(self) -> None:
        pass

    def close(self, cancel: bool = False) -> None:
        pass


class ProcessEngine:
    """A spawn-context process pool; events come back through a multiprocessing queue."""

    name = "processes"

    def __init__(self, workers: int, on_event: Callable):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("spawn")
        self.workers, self.on_event = workers, on_event
        self.events = ctx.Queue()
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                        initargs=(self.events,))

    def submit(self, shard: Shard) -> Future:
        return self.pool.submit(run_shard, shard)

    def wait(self, pending: set, timeout: float) -> tuple[set, set]:
        done, rest = futures_wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
        return set(done), set(rest)

    def drain(self) -> None:
        while True:
            try:
                key, g, vals = self.events.get_nowait()
            except queue_mod.Empty:
                return
            self.on_event(key, g, vals)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            procs = list((self.pool._processes or {}).values())  # stop running shards now, not at their end
            self.pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                p.terminate()
        else:
            self.pool.shutdown(wait=True)
        self.events.close()


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ConfigError("--engine", "dask", "", problem="needs the dask extra: pip install 'autophagy[dask]'") from None
    return distributed


class DaskEngine:
    """``dask.distributed``: a LocalCluster of single-threaded worker processes, or an existing scheduler."""

    name = "dask"

    def __init__(self, workers: int, address: Optional[str] = None, client: Any = None):
        distributed = _import_distributed()
        self.cluster = None
        if client is not None:
            self.client = client
        elif address:
            try:
                self.client = distributed.Client(address, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise ConfigError("--address", address, "", problem=f"no Dask scheduler answered there ({exc})") from None
        else:
            import logging

            import dask

            # Dask's nannies set MALLOC_TRIM_THRESHOLD_=64 KiB, which makes glibc hand back and re-fault the
            # large temporaries of every generation: about 25 % slower shards than plain worker processes.
            environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
                       if k != "MALLOC_TRIM_THRESHOLD_"}
            with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
                self.cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                        dashboard_address=None, silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster)
        self.own_client = client is None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})) or workers)

    def submit(self, shard: Shard):
        device = str((shard.spec.config.model.model_extra or {}).get("device", "cpu"))
        resources = {"GPU": 1} if device.startswith("cuda") else None
        return self.client.submit(run_shard_single_threaded, shard, pure=False, resources=resources)

    def wait(self, pending: set, timeout: float) -> tuple[set, set]:
        """Block (without polling: on two cores a busy driver slows the workers) until one finishes."""
        import asyncio

        from distributed import wait as dask_wait

        try:
            done = set(dask_wait(list(pending), timeout=timeout, return_when="FIRST_COMPLETED").done)
        except (TimeoutError, asyncio.TimeoutError):
            done = set()
        return done, pending - done

    def drain(self) -> None:
        pass

    def close(self, cancel: bool = False) -> None:
        if self.own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_engine(engine: Optional[str], workers: int, on_event: Callable, address: Optional[str] = None):
    """The executor for ``engine`` (default: serial for one worker, processes for more; dask when an
    address is given). ``engine`` may also be a ``distributed.Client``."""
    if engine is not None and not isinstance(engine, str):
        return DaskEngine(workers, client=engine)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError("--workers", workers, "a whole number >= 1")
    name = engine or ("dask" if address else "processes" if workers > 1 else "serial")
    if name not in ENGINES:
        raise ConfigError("--engine", name, "one of " + ", ".join(ENGINES))
    if address and name != "dask":
        raise ConfigError("--address", address, "", problem="a scheduler address needs --engine dask")
    if name == "serial":
        return SerialEngine(on_event)
    if name == "processes":
        ready = _READY.pop(workers, None)
        discard_prestarted()  # one started for another count: not this run's
        if ready is not None:
            ready.on_event = on_event
            return ready
        return ProcessEngine(workers, on_event)
    return DaskEngine(workers, address)


_READY: dict[int, "ProcessEngine"] = {}  # a process pool started ahead of its run (prestart), by worker count


def prestart(workers: int) -> None:
    """Start the process pool of the next ``make_engine(None or "processes", workers, ...)`` now, so that its
    workers start Python and import what a shard needs (about 0.6 s each) while the driver still imports and
    validates (the CLI calls it before loading pandas and building the specs). ``discard_prestarted`` stops
    one no run took. Numbers never depend on it."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 2 or workers in _READY:
        return
    engine = ProcessEngine(workers, None)
    for _ in range(workers):  # one task per worker: the pool spawns a process for each
        engine.pool.submit(_warm_worker)
    _READY[workers] = engine


def discard_prestarted() -> None:
    """Stop any pool ``prestart`` started that no run took (e.g. the config failed to validate)."""
    while _READY:
        _READY.popitem()[1].close(cancel=True)


def _warm_worker() -> None:
    from . import build, loop  # noqa: F401 - the imports of run_shard, done before its first shard arrives


def execute(shards: list[Shard], engine, on_result: Callable[[Shard, ShardResult], None],
            poll: float = 0.25) -> None:
    """Run ``shards`` on ``engine``; ``on_result`` is called in this process as each finishes.

    A failing shard stops the sweep: the others are cancelled and its error is raised here. So is
    Ctrl-C; results already handed to ``on_result`` stay saved."""
    by_future: dict = {}
    ok = False
    try:
        for shard in shards:
            fut = engine.submit(shard)
            by_future[fut] = shard
            if engine.name == "serial":  # it already ran: hand it over before starting the next
                on_result(shard, fut.result())
                del by_future[fut]
        pending = set(by_future)
        while pending:
            done, pending = engine.wait(pending, poll)
            engine.drain()
            for fut in done:
                try:
                    result = fut.result()  # re-raises a worker's error
                except BrokenProcessPool:
                    raise SweepError("a worker process died (killed, out of memory, or a script that starts a study "
                                     "without `if __name__ == \"__main__\":`, which spawned workers need)") from None
                engine.drain()  # its last generation's events before its result
                on_result(by_future[fut], result)
        engine.drain()
        ok = True
    finally:
        engine.close(cancel=not ok)


def join_blocks(values_by_start: dict[int, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate a run's blocks along the replicate axis (in replicate order)."""
    parts = [values_by_start[start] for start in sorted(values_by_start)]
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
