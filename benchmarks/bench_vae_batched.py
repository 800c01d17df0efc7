"""Benchmark: R = 8 replicate VAEs trained as one batched ensemble vs one after another (CPU).

Same data (Tarchi's 24×24 binomial grids, or ``--size 8`` for the digits' 8×8, n images per replicate), same options and epochs;
the only difference is ``model.batched: auto`` (stacked weights applied with baddbmm; one channels-last
convolution per replicate, ``nets.BConv(layout="nhwc")``) against ``model.batched: loop`` (the same code
with R = 1, replicate by replicate).
Both give the same models up to float rounding; replicate r's numbers do not depend on R in either. Timings are the minimum over ``--repeats`` interleaved runs (the
machine may be shared), after one warm-up fit.

Run: ``.venv/bin/python benchmarks/bench_vae_batched.py [--arch fc2 conv] [--threads 2] [--repeats 3]``.
Targets (issue 10, item 5): conv at least 2.5x faster batched than sequential; the fc families keep 3x.
"""
from __future__ import annotations

import argparse
import os
import resource
import time

from autophagy.data.images import BinomialGridSource
from autophagy.models import nets
from autophagy.models.vae import VAEFamily
from autophagy.rng import Streams

R = 8
GROUPED = nets.GROUPED_MAX_PIXELS


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def fit_seconds(arch: str, mode: str, data, info, args) -> tuple[float, float]:
    """(wall, CPU) seconds of one fit. ``loop1``: the loop with every conv layer one call per replicate
    (``nets.GROUPED_MAX_PIXELS = 0``; not what ``batched: loop`` runs for maps of <= 8x8 pixels, which pads
    blocks of 8 as the batched path does, but the fastest way to fit one replicate)."""
    nets.GROUPED_MAX_PIXELS = 0 if mode == "loop1" else GROUPED
    opts = VAEFamily.Options(architecture=arch, batched="loop" if mode == "loop1" else mode, device="cpu", threads=args.threads, epochs=args.epochs,
                             latent_dim=4, hidden=args.hidden, batch_size=32, lr=3e-3)
    family = VAEFamily(opts, info)
    t0, c0 = time.perf_counter(), cpu_seconds()
    family.fit(data, Streams(0, R, 0, "fit"))
    nets.GROUPED_MAX_PIXELS = GROUPED
    return time.perf_counter() - t0, cpu_seconds() - c0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", nargs="+", default=["fc1", "fc2", "conv", "asymmetric"])
    p.add_argument("--n", type=int, default=1000, help="images per replicate")
    p.add_argument("--size", type=int, default=24, help="grid size (24: Tarchi's; 8: the digits' 8x8)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    source = BinomialGridSource(BinomialGridSource.Options(size=args.size, cluster=min(3, args.size // 4)))
    data = source.sample(args.n, Streams(0, R, -1, "data"))
    print(f"R={R} VAEs, n={args.n} {args.size}x{args.size} images each, {args.epochs} epochs, batch 32, hidden {args.hidden}, "
          f"{args.threads} torch threads; load average {os.getloadavg()[0]:.1f}")
    for arch in args.arch:
        fit_seconds(arch, "auto", data[:, :64], source.info, args)  # warm-up (allocator, kernels)
        modes = ("auto", "loop", "loop1") if arch in ("conv", "asymmetric") and args.size ** 2 <= GROUPED else ("auto", "loop")
        times = {m: [] for m in modes}
        for _ in range(args.repeats):
            for mode in modes:
                times[mode].append(fit_seconds(arch, mode, data, source.info, args))
        wall = {m: min(w for w, _ in times[m]) for m in modes}
        cpu = {m: min(c for _, c in times[m]) for m in modes}
        line = f"{arch:>10}: batched {wall['auto']:6.2f} s ({cpu['auto']:6.2f} CPU-s)"
        for m in modes[1:]:
            line += (f" | {m} {wall[m]:6.2f} s ({cpu[m]:6.2f} CPU-s): speed-up {wall[m] / wall['auto']:4.1f}x wall, "
                     f"{cpu[m] / cpu['auto']:4.1f}x CPU")
        print(line, flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main()
