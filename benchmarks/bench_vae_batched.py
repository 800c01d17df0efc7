"""Benchmark: R = 8 replicate VAEs trained as one batched ensemble vs one after another (CPU).

Same data (Tarchi's 24×24 binomial grids, n images per replicate), same options and epochs;
the only difference is ``model.batched: auto`` (stacked weights applied with baddbmm; convolutions as
grouped convolutions over fixed blocks of 8 replicates, ``nets.BConv(grouped=True)``) against
``model.batched: loop`` (the same code with R = 1, replicate by replicate, one ``conv2d`` per layer).
Both give the same models up to float rounding; replicate r's numbers do not depend on R in either. Timings are the minimum over ``--repeats`` interleaved runs (the
machine may be shared), after one warm-up fit.

Run: ``.venv/bin/python benchmarks/bench_vae_batched.py [--arch fc2 conv] [--threads 2] [--repeats 3]``.
Targets (issue 10, item 5): conv at least 2.5x faster batched than sequential; the fc families keep 3x.
"""
from __future__ import annotations

import argparse
import time

from autophagy.data.images import BinomialGridSource
from autophagy.models.vae import VAEFamily
from autophagy.rng import Streams

R = 8


def fit_seconds(arch: str, mode: str, data, info, args) -> float:
    opts = VAEFamily.Options(architecture=arch, batched=mode, device="cpu", threads=args.threads, epochs=args.epochs,
                             latent_dim=4, hidden=args.hidden, batch_size=32, lr=3e-3)
    family = VAEFamily(opts, info)
    t0 = time.perf_counter()
    family.fit(data, Streams(0, R, 0, "fit"))
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", nargs="+", default=["fc1", "fc2", "conv", "asymmetric"])
    p.add_argument("--n", type=int, default=1000, help="images per replicate")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    source = BinomialGridSource()
    data = source.sample(args.n, Streams(0, R, -1, "data"))
    print(f"R={R} VAEs, n={args.n} 24x24 images each, {args.epochs} epochs, batch 32, hidden {args.hidden}, "
          f"{args.threads} torch threads")
    for arch in args.arch:
        fit_seconds(arch, "auto", data[:, :64], source.info, args)  # warm-up (allocator, kernels)
        times = {"auto": [], "loop": []}
        for _ in range(args.repeats):
            for mode in ("auto", "loop"):
                times[mode].append(fit_seconds(arch, mode, data, source.info, args))
        b, lp = min(times["auto"]), min(times["loop"])
        print(f"{arch:>10}: batched {b:6.2f} s   loop {lp:6.2f} s   speed-up {lp / b:4.1f}x")


if __name__ == "__main__":
    main()
