"""Benchmark: the 1-D Gaussian replace loop, R = 10,000 replicates, 100 generations, n = 100.

Reports the engine's wall time against a floor measured in the same process: merely drawing
the same normals with NumPy and averaging them (the least any sample-based simulation must do).
Two engine paths are timed:

* ``samples``: ``loop.sufficient_stats: off`` -- draws all n samples per replicate and refits;
* ``exact``: the default -- refits from the exact laws of the sample mean and variance
  (N(μ, σ²/n) and σ²χ²_{n-1}), which needs no samples.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_gaussian_replace.py [--repeats 3]``.
Target (issue 2): the engine within 1.5x of the floor.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import autophagy

R, G, N = 10_000, 100, 100


def floor() -> float:
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(G + 1):
        rng.standard_normal((R, N)).mean(axis=1)
    return time.perf_counter() - t0


def engine(stats: str) -> float:
    cfg = {"seed": 0, "replicates": R, "generations": G,
           "data": {"source": "gaussian", "dim": 1},
           "model": {"family": "gaussian", "estimator": "mle"},
           "loop": {"policy": "replace", "n_real": N, "sufficient_stats": stats}}
    t0 = time.perf_counter()
    autophagy.run(cfg)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    engine("auto")  # warm-up: imports, first-call allocations
    # Interleave floor and engine runs so that load from other processes hits both alike;
    # report medians of the per-repeat ratios.
    rows = {"samples": [], "exact": []}
    floors = []
    for _ in range(args.repeats):
        f = floor()
        floors.append(f)
        rows["samples"].append((engine("off"), f))
        rows["exact"].append((engine("auto"), f))
    print(f"1-D Gaussian replace loop, R={R}, G={G}, n={N}; median of {args.repeats} interleaved runs")
    print(f"  floor (draw + average normals)  {statistics.median(floors):7.3f} s   1.00x")
    for label, key in (("engine, samples", "samples"), ("engine, exact statistics", "exact")):
        t = statistics.median(e for e, _ in rows[key])
        ratio = statistics.median(e / f for e, f in rows[key])
        print(f"  {label:31s} {t:7.3f} s   {ratio:4.2f}x floor")


if __name__ == "__main__":
    main()
