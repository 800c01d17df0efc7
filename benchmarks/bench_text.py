"""Text benchmarks: the n-gram replace loop at R = 1,000 replicates, and the transformer ensemble
(R = 8) trained as one batched network vs one replicate after another.

    .venv/bin/python benchmarks/bench_text.py            # both
    .venv/bin/python benchmarks/bench_text.py ngram      # one

Prints seconds and the speed-up; figures are quoted in docs/text.md.
"""
from __future__ import annotations

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


def bench_transformer(R: int = 8, steps: int = 100, threads: int = 2) -> float:
    from autophagy.models.transformer import TransformerFamily

    src = MarkovTextSource(MarkovTextSource.Options(vocab=20, seq_len=8))
    data = src.sample(200, Streams(0, R, -1, "data"))
    times = {}
    for mode in ("batched", "sequential"):
        fam = TransformerFamily(TransformerFamily.Options(steps=steps, ensemble=mode, threads=threads), src.info)
        fam.fit(data[:, :50], Streams(0, R, 0, "fit"))  # warm-up (allocator, kernels)
        t = time.perf_counter()
        model = fam.fit(data, Streams(0, R, 0, "fit"))
        times[mode] = time.perf_counter() - t
        print(f"transformer ensemble {mode:>10}: R = {R}, {steps} steps: {times[mode]:.2f} s "
              f"(mean train loss {np.mean(model.train_loss):.3f})")
    speed = times["sequential"] / times["batched"]
    print(f"batched speed-up: {speed:.2f}x (target >= 2x)")
    return speed


if __name__ == "__main__":
    which = sys.argv[1:] or ["ngram", "transformer"]
    if "ngram" in which:
        bench_ngram()
    if "transformer" in which:
        bench_transformer()
