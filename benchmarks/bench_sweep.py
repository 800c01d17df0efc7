"""Benchmark: parallel execution of a sweep and of one large run (issue 9).

Two workloads, each timed serially (1 worker, in process) and with 2 workers on the ``processes``
engine and on a Dask ``LocalCluster``; times include starting the pool / cluster, so they are what a
user waits for:

* ``sweep``: a 16-point closed-form grid (Gaussian, d = 10, augment / fresh / accumulate / replace x
  4 seeds, R = 256, 15 generations, sliced-Wasserstein recorded);
* ``large``: one run with R = 100,000 replicates (2-D Gaussian, augment, n = 50, 10 generations,
  variance-ratio on 100 samples, so the sample path runs), split by replicate block over the workers.

It also reports Dask's per-task overhead (round trip of an empty task on the same cluster) and checks
that every engine gave bit-identical metrics. Speed-ups are ratios measured in the same run, so the
machine's load moves them less than the absolute times.

Run: ``.venv/bin/python benchmarks/bench_sweep.py [--repeats 1] [--workers 2]``.
Targets on the 2-core machine: >= 1.8x (sweep) and >= 1.7x (large) for 2 process workers; Dask within
10 % of processes.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import autophagy

SWEEP = {"name": "sweep", "seed": 0, "replicates": 256, "generations": 15,
         "data": {"source": "gaussian", "dim": 10}, "model": {"family": "gaussian"},
         "loop": {"policy": "augment", "n_real": 100}, "metrics": {"use": ["sliced-wasserstein"], "n_eval": 100},
         "grid": {"loop.policy": ["augment", "fresh", "accumulate", "replace"], "seed": [0, 1, 2, 3]}}
LARGE = {"name": "large", "seed": 0, "replicates": 100_000, "generations": 10,
         "data": {"source": "gaussian", "dim": 2}, "model": {"family": "gaussian"},
         "loop": {"policy": "augment", "n_real": 50}, "metrics": {"use": ["variance-ratio"], "n_eval": 100, "n_heldout": 100}}


def timed(cfg, **kw) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    res = autophagy.run(cfg, **kw)
    dt = time.perf_counter() - t0
    m = res.metrics.assign(run_id=res.metrics.run_id.astype(str), metric=res.metrics.metric.astype(str))
    return dt, m.sort_values(["run_id", "metric", "generation", "replicate"]).value.to_numpy()


def dask_task_overhead(workers: int, n: int = 200) -> float:
    """Seconds per empty task round trip on a LocalCluster like the one the dask engine starts."""
    import logging

    import distributed

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        client.submit(int, 0, pure=False).result()  # warm
        t0 = time.perf_counter()
        for i in range(n):
            client.submit(int, i, pure=False).result()
        return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    w = args.workers
    try:
        import distributed  # noqa: F401
        have_dask = True
    except ImportError:
        have_dask = False
    for label, cfg in (("sweep (16 runs)", SWEEP), ("large (R = 100,000)", LARGE)):
        times: dict[str, list] = {"serial": [], f"processes x{w}": [], f"dask x{w}": []}
        ref = None
        for _ in range(args.repeats):  # interleaved, so load drifts hit every engine alike
            for name, kw in (("serial", {}), (f"processes x{w}", {"workers": w, "engine": "processes"}),
                             (f"dask x{w}", {"workers": w, "engine": "dask"})):
                if name.startswith("dask") and not have_dask:
                    continue
                dt, values = timed(cfg, **kw)
                times[name].append(dt)
                if ref is None:
                    ref = values
                assert np.array_equal(values, ref, equal_nan=True), f"{name} differs from serial"
        base = statistics.median(times["serial"])
        print(f"{label}: identical metrics on every engine")
        for name, ts in times.items():
            if ts:
                med = statistics.median(ts)
                print(f"  {name:14s} {med:7.2f} s   speed-up {base / med:4.2f}x")
        if have_dask and times[f"dask x{w}"]:
            ratio = statistics.median(times[f"dask x{w}"]) / statistics.median(times[f"processes x{w}"])
            print(f"  dask / processes: {ratio:.3f}")
    if have_dask:
        print(f"dask per-task overhead (empty task round trip, {w} workers): {1e3 * dask_task_overhead(w):.2f} ms")


if __name__ == "__main__":
    main()
