"""Result.runs, Result.summary() and the exports carry the swept and overridden parameters as columns."""
import pandas as pd

import autophagy

STUDY = {"name": "tidy", "seed": 0, "replicates": 4, "generations": 2, "data": {"source": "gaussian", "dim": 1},
         "loop": {"policy": "replace", "n_real": 20},
         "grid": {"sampling.bias": [1.0, 0.5], "loop.policy": ["replace", "augment"]}}


def test_grid_and_overrides_become_columns(tmp_path):
    res = autophagy.run(STUDY, out=tmp_path, overrides=["loop.n_real=15"])
    assert res.params == ["loop.policy", "loop.n_real", "sampling.bias"]  # config order; n_real is a --set
    assert sorted(zip(res.runs["loop.policy"], res.runs["sampling.bias"])) == [
        ("augment", 0.5), ("augment", 1.0), ("replace", 0.5), ("replace", 1.0)]
    assert set(res.runs["loop.n_real"]) == {15}
    s = res.summary("param.w2_sq", generation=-1)
    # grouping works without json_normalize: one row per (policy, bias)
    assert s.groupby(["loop.policy", "sampling.bias"])["mean"].size().tolist() == [1, 1, 1, 1]
    runs_csv, metrics_csv = pd.read_csv(tmp_path / "runs.csv"), pd.read_csv(tmp_path / "metrics.csv")
    assert {"loop.policy", "sampling.bias", "loop.n_real"} <= set(runs_csv.columns)
    assert list(metrics_csv.columns[:5]) == ["run_id", "replicate", "generation", "metric", "value"]
    assert set(metrics_csv["sampling.bias"]) == {0.5, 1.0}
    loaded = autophagy.load(tmp_path)
    assert loaded.params == res.params
    key = ["run_id", "generation"]
    pd.testing.assert_frame_equal(loaded.summary("param.w2_sq").sort_values(key).reset_index(drop=True)[res.params],
                                  res.summary("param.w2_sq").sort_values(key).reset_index(drop=True)[res.params])


def test_single_run_without_overrides_has_no_parameter_columns():
    res = autophagy.run({**STUDY, "grid": None})
    assert res.params == [] and "config" in res.runs
