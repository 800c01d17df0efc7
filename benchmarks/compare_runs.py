"""Compare two results directories of the same study in law: per run parameters, metric and generation,
the difference of the replicate means over its standard error.

    python benchmarks/compare_runs.py NEW_DIR OLD_DIR [--generations 10 50 99] [--z 4]

Prints how many (cell, metric, generation) means were compared, the largest |z| and the rows beyond
``--z``; exits 1 when any is. Used to check a faster path against an earlier version's numbers
(docs/performance.md, "Kazdan grid"): the same draws give z = 0, other draws of the same law
|z| of order 1-3 over a few hundred comparisons.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

_BASE = ["run_id", "replicate", "generation", "metric", "value"]


def compare(new: str, old: str, generations: list[int]) -> pd.DataFrame:
    a, b = pd.read_csv(f"{new}/metrics.csv"), pd.read_csv(f"{old}/metrics.csv")
    key = [c for c in a.columns if c not in _BASE and c in b.columns] + ["metric"]
    out = []
    for g in generations:
        A = a[a.generation == g].groupby(key).value.agg(["mean", "std", "count"])
        B = b[b.generation == g].groupby(key).value.agg(["mean", "std", "count"])
        J = pd.merge(A, B, left_index=True, right_index=True, suffixes=("_new", "_old"))
        J = J[np.isfinite(J.mean_new) & np.isfinite(J.mean_old)].copy()
        se = np.sqrt(J.std_new ** 2 / J.count_new + J.std_old ** 2 / J.count_old)
        J["z"] = (J.mean_new - J.mean_old) / se.where(se > 0)
        J["generation"] = g
        out.append(J)
    return pd.concat(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("new")
    p.add_argument("old")
    p.add_argument("--generations", type=int, nargs="+", default=[10, 50, 99])
    p.add_argument("--z", type=float, default=4.0)
    args = p.parse_args(argv)
    J = compare(args.new, args.old, args.generations)
    z = J.z.abs()
    print(f"compared {len(J)} means; max |z| = {np.nanmax(z.to_numpy()):.2f}; |z| > {args.z}: {int((z > args.z).sum())}")
    if (z > args.z).any():
        print(J[z > args.z][["generation", "mean_new", "mean_old", "z"]].to_string())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
