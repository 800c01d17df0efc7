"""Our side of each peer workload (issue 15), with time and peak memory next to the peer figures.

    python benchmarks/bench_peers.py [kazdan-grid kazdan-kde gillman tarchi startup] [--workers 2] [--quick]

The peer figures are those measured side by side on the 2-core development machine (issue 15's
table; absolute times there moved up to 8x with the machine's load). Because load varies, each
workload also times a naive baseline *in the same run* -- a plain per-seed NumPy / scikit-learn loop
of the same algorithm, written here from the papers' descriptions -- and prints the ratio, which is
the number to compare across machines. Peak memory is the process's (and its workers') maximum
resident set size.
"""
from __future__ import annotations

import argparse
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEERS = {  # seconds / GB, from issue 15 (2-core machine)
    "kazdan-grid": "peer: ≈ 2,030 s in-process at 100 seeds (203 s at 10), + 7,500 process starts in their sweep",
    "kazdan-kde": "peer: 138 s (moons, h = 0.5, n = 100, 100 iterations, 10 seeds, 3 workflows)",
    "gillman": "peer: 215–755 s for one chain per γ (8 γ × 500 generations)",
    "tarchi": "peer: 125–137 s and 4.3 GB per generation",
    "startup": "target: autophagy --help ≤ 0.5 s warm",
}


def peak_gb() -> float:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, child_kb) / 1e6


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _run(config, overrides=(), workers=1):
    import autophagy

    # check_memory=False: the peer workloads are sized to fit (build.memory_estimate follows the path taken)
    return autophagy.run(str(ROOT / "configs" / config), overrides=list(overrides), workers=workers,
                         check_memory=False)


# ----------------------------------------------------------------------------- naive baselines
def naive_gaussian(d, n, policy, iterations, seed):
    """One seed of Kazdan et al.'s Gaussian loop as their script runs it (fit, sample, replace/accumulate)."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, d))
    pool = data
    for _ in range(iterations):
        mu, cov = data.mean(0), np.atleast_2d(np.cov(data, rowvar=False, bias=True))
        new = rng.multivariate_normal(mu, cov, size=n)
        if policy == "replace":
            data = new
        else:
            pool = np.concatenate([pool, new])
            data = pool if policy == "accumulate" else pool[rng.choice(len(pool), n, replace=False)]


def naive_kde(policy, iterations, seed, n=100, h=0.5):
    """One seed of their KDE loop (sklearn make_moons + KernelDensity, score the test half each iteration)."""
    from sklearn.datasets import make_moons
    from sklearn.neighbors import KernelDensity

    rng = np.random.default_rng(seed)
    x = make_moons(2 * n, noise=0.05, random_state=seed)[0]
    perm = rng.permutation(2 * n)
    data, test = x[perm[:n]], x[perm[n:]]
    pool = data
    for _ in range(iterations):
        kde = KernelDensity(kernel="gaussian", bandwidth=h).fit(data)
        kde.score_samples(test).mean()
        new = kde.sample(n, random_state=int(rng.integers(2 ** 31)))
        if policy == "replace":
            data = new
        else:
            pool = np.concatenate([pool, new])
            data = pool if policy == "accumulate" else pool[rng.choice(len(pool), n, replace=False)]


def naive_gillman(gamma, generations, seed):
    """One chain of Gillman et al.'s toy: per-candidate rejection sampling from (1−t)·hist + t·N(0, I),
    linear accumulation weights -- the structure of their script (a Python loop per candidate)."""
    rng = np.random.default_rng(seed)
    t = gamma / (1 + gamma)
    real = rng.standard_normal((50, 2))
    mu, cov = real.mean(0), np.cov(real, rowvar=False, bias=True)
    batches = []

    def pdf(x, s):
        return math.exp(-0.5 * (x @ x) / s) / (2 * math.pi * s)

    for _ in range(generations):
        synth = rng.multivariate_normal(mu, cov, 25)
        h, xe, ye = np.histogram2d(synth[:, 0], synth[:, 1], bins=10, density=True)
        out = []
        while len(out) < 25:
            c = rng.standard_normal(2) * math.sqrt(2)
            i, j = int((c[0] - xe[0]) / (xe[1] - xe[0])), int((c[1] - ye[0]) / (ye[1] - ye[0]))
            emp = h[i, j] if 0 <= i < 10 and 0 <= j < 10 else 0.0
            if ((1 - t) * emp + t * pdf(c, 1.0)) / (2 * pdf(c, 2.0)) > rng.uniform():
                out.append(c)
        batches.append(np.array(out))
        g = len(batches)
        keep = [b[: (i + 1) * 25 // g] for i, b in enumerate(batches)]
        x = np.concatenate([real, *keep])
        mu, cov = x.mean(0), np.cov(x, rowvar=False, bias=True)


# ----------------------------------------------------------------------------- workloads
def kazdan_grid(args):
    dt, res = timed(lambda: _run("kazdan_gaussian_grid.yaml", workers=args.workers))
    runs = res.metrics.run_id.nunique() if hasattr(res, "metrics") else "?"
    print(f"kazdan-grid: ours {dt:.1f} s for {runs} runs (5 d × 5 n × 3 workflows, R = 100, 100 iterations), "
          f"workers {args.workers}, peak {peak_gb():.2f} GB")
    cells = [(10, 100), (31, 316)]
    seeds = 3 if args.quick else 10
    base, _ = timed(lambda: [naive_gaussian(d, n, p, 100, s) for d, n in cells
                             for p in ("replace", "accumulate", "accumulate-subsample") for s in range(seeds)])
    ours_cells = 0.0
    for d, n in cells:
        grid = f"grid={{data.dim: [{d}], loop.n_real: [{n}], loop.policy: [replace, accumulate, accumulate-subsample]}}"
        o, _ = timed(lambda: _run("kazdan_gaussian_grid.yaml", [grid, f"replicates={seeds}"]))
        ours_cells += o
    print(f"  six cells (d, n) = (10, 100), (31, 316) × 3 workflows, {seeds} seeds: naive per-seed loop {base:.1f} s, "
          f"ours {ours_cells:.1f} s -> {base / ours_cells:.1f}x")


def kazdan_kde(args):
    seeds = 10
    dt, _ = timed(lambda: _run("kazdan_kde_moons.yaml"))
    per = {}
    for p in ("replace", "accumulate", "accumulate-subsample"):
        per[p], _ = timed(lambda: _run("kazdan_kde_moons.yaml", ["grid=null", f"loop.policy={p}"]))
    iters = 20 if args.quick else 100
    base, _ = timed(lambda: [naive_kde(p, iters, s) for p in ("replace", "accumulate", "accumulate-subsample")
                             for s in range(seeds)])
    scale = 100 / iters
    print(f"kazdan-kde: ours {dt:.1f} s (3 workflows × 10 seeds × 100 iterations), peak {peak_gb():.2f} GB; "
          + ", ".join(f"{p} {t:.1f} s" for p, t in per.items()))
    print(f"  naive per-seed sklearn loop: {base * (scale if iters < 100 else 1):.1f} s"
          f"{' (extrapolated from %d iterations, a lower bound: accumulate grows)' % iters if iters < 100 else ''}"
          f" -> {base * (scale if iters < 100 else 1) / dt:.1f}x")


def gillman(args):
    dt, res = timed(lambda: _run("gillman_toy_exact.yaml", workers=args.workers))
    df = res.metrics
    last = df[(df.metric == "param.w2_sq") & (df.generation == 500)]
    w2 = last.groupby("run_id").value.apply(lambda v: float(np.sqrt(v).mean()))
    final = res.final("param.w2_sq")
    names = final.set_index("run_id")["name"] if {"run_id", "name"} <= set(final.columns) else None
    print(f"gillman: ours {dt:.1f} s for 8 γ × 500 generations × 100 chains, workers {args.workers}, "
          f"peak {peak_gb():.2f} GB")
    for rid, v in w2.items():
        print(f"  {names[rid] if names is not None else rid}: mean W2 at generation 500 = {v:.3f}")
    gens = 20 if args.quick else 50
    base, _ = timed(lambda: [naive_gillman(g, gens, 0) for g in (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 5.0)])
    per_chain_gen = base / (8 * gens)
    ours = dt / (8 * 500 * 100)
    print(f"  naive per-chain loop: {per_chain_gen * 1e3:.2f} ms per chain-generation ({gens} generations timed); "
          f"ours {ours * 1e6:.1f} µs -> {per_chain_gen / ours:.0f}x")


def tarchi(args):
    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    c0 = cpu()
    dt, _ = timed(lambda: _run("tarchi_enc_chain.yaml", ["generations=1"]))
    print(f"tarchi: ours {dt / 2:.1f} s wall, {(cpu() - c0) / 2:.1f} CPU-s per generation (2 fits, generation 0 and 1; "
          f"20k grids, 5 epochs, batch 32, conv, torch threads 1), peak {peak_gb():.2f} GB")


def startup(args):
    exe = Path(sys.executable).with_name("autophagy")
    for label, cmd in (("python -c pass", [sys.executable, "-c", "pass"]),
                       ("import autophagy", [sys.executable, "-c", "import autophagy"]),
                       ("autophagy --help", [str(exe), "--help"]),
                       ("autophagy components", [str(exe), "components"])):
        subprocess.run(cmd, capture_output=True)  # warm the file cache
        times = []
        for _ in range(3):
            t, _ = timed(lambda: subprocess.run(cmd, capture_output=True, check=True))
            times.append(t)
        print(f"startup: {label}: {min(times):.2f} s (best of 3, warm)")


WORKLOADS = {"kazdan-grid": kazdan_grid, "kazdan-kde": kazdan_kde, "gillman": gillman, "tarchi": tarchi,
             "startup": startup}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workloads", nargs="*", default=list(WORKLOADS), choices=list(WORKLOADS) + [[]])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="shorter naive baselines")
    args = ap.parse_args()
    with open("/proc/loadavg") as f:
        print(f"load average at start: {f.read().split()[:3]} on {len(__import__('os').sched_getaffinity(0))} cores")
    for name in args.workloads:
        print(PEERS[name])
        WORKLOADS[name](args)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
