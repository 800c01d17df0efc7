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
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = {"floor (draw + average)": floor, "engine, samples": lambda: engine("off"),
            "engine, exact statistics": lambda: engine("auto")}
    times = {k: statistics.median(f() for _ in range(args.repeats)) for k, f in rows.items()}
    base = times["floor (draw + average)"]
    print(f"1-D Gaussian replace loop, R={R}, G={G}, n={N}; median of {args.repeats} runs")
    for k, t in times.items():
        print(f"  {k:28s} {t:7.3f} s   {t / base:5.2f}x floor")


if __name__ == "__main__":
    main()
