"""Text benchmarks: the n-gram replace loop at R = 1,000 replicates, and the transformer ensemble
(R = 8) trained as one batched network vs one replicate after another.

    .venv/bin/python benchmarks/bench_text.py            # both
    .venv/bin/python benchmarks/bench_text.py ngram      # one
    BENCH_THREADS=2 .venv/bin/python benchmarks/bench_text.py transformer

Prints seconds and the speed-up; figures are quoted in docs/text.md.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

import autophagy
from autophagy.data.text import MarkovTextSource
from autophagy.rng import Streams


def bench_ngram(R: int = 1000, G: int = 10) -> float:
    cfg = {"seed": 0, "replicates": R, "generations": G,
           "data": {"source": "markov-text", "vocab": 30, "order": 1, "seq_len": 16},
           "model": {"family": "ngram", "order": 2, "smoothing": "kneser-ney"},
           "loop": {"policy": "replace", "n_real": 200}}
    t = time.perf_counter()
    res = autophagy.run(cfg)
    dt = time.perf_counter() - t
    sup = res.metrics[res.metrics.metric == "param.ngram_support"].groupby("generation").value.mean()
    print(f"ngram replace loop: R = {R}, G = {G}, n = 200 sequences of 16 tokens: {dt:.2f} s "
          f"({dt / (R * (G + 1)) * 1e3:.3f} ms per replicate-generation); ngram_support {sup.iloc[0]:.1f} -> {sup.iloc[-1]:.1f}")
    return dt


def bench_transformer(R: int = 8, steps: int = 60, threads: int = 1, repeats: int = 2) -> float:
    """Batched vs sequential fit of the same R models (same steps, same data); the arms alternate
    ``repeats`` times and the best of each is kept, so a burst of load from other processes hits both.
    CPU seconds (``resource.getrusage``) are printed beside wall seconds: on a shared machine they are
    the steadier figure. ``threads = 1`` by default: with more intra-op threads than free cores,
    OpenMP's spinning barriers make every step many times slower (measured: 8 ms -> 3 s per step at
    load 7 on 2 cores with 2 threads)."""
    import resource

    from autophagy.models.transformer import TransformerFamily

    def cpu():
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    src = MarkovTextSource(MarkovTextSource.Options(vocab=20, seq_len=8))
    data = src.sample(200, Streams(0, R, -1, "data"))
    fams = {mode: TransformerFamily(TransformerFamily.Options(steps=steps, ensemble=mode, threads=threads), src.info)
            for mode in ("batched", "sequential")}
    for fam in fams.values():
        fam.fit(data[:, :50], Streams(0, R, 0, "fit"))  # warm-up (allocator, kernels)
    wall = {m: [] for m in fams}
    cpus = {m: [] for m in fams}
    for _ in range(repeats):
        for mode, fam in fams.items():
            t, c = time.perf_counter(), cpu()
            model = fam.fit(data, Streams(0, R, 0, "fit"))
            wall[mode].append(time.perf_counter() - t)
            cpus[mode].append(cpu() - c)
            print(f"transformer ensemble {mode:>10}: R = {R}, {steps} steps, {threads} thread(s): "
                  f"{wall[mode][-1]:.2f} s wall, {cpus[mode][-1]:.2f} s CPU "
                  f"(mean train loss {np.mean(model.train_loss):.4f})", flush=True)
    speed = min(wall["sequential"]) / min(wall["batched"])
    speed_cpu = min(cpus["sequential"]) / min(cpus["batched"])
    print(f"batched speed-up: {speed:.2f}x wall, {speed_cpu:.2f}x CPU (target >= 2x); "
          f"load average {os.getloadavg()[0]:.2f}")
    return speed


if __name__ == "__main__":
    which = sys.argv[1:] or ["ngram", "transformer"]
    if "ngram" in which:
        bench_ngram()
    if "transformer" in which:
        threads = int(os.environ.get("BENCH_THREADS", "1"))
        bench_transformer(threads=threads)
