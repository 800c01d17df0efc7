"""Engine tests: closed-form oracles for the Gaussian loops, reproducibility, lineages."""
import numpy as np
import pytest

import autophagy


def gaussian_cfg(**loop):
    return {"seed": 3, "replicates": 4000, "generations": 4,
            "data": {"source": "gaussian", "dim": 1},
            "model": {"family": "gaussian", "estimator": "mle"},
            "loop": {"policy": "replace", "n_real": 10, **loop}}


def per_generation(result, metric):
    df = result.metrics[result.metrics.metric == metric]
    return df.pivot(index="replicate", columns="generation", values="value").to_numpy()


@pytest.mark.parametrize("stats", ["auto", "off"])
@pytest.mark.parametrize("bias", [1.0, 0.6])
def test_mle_replace_variance_decays_geometrically(stats, bias):
    """1-D Gaussian refit by MLE on n of its own (biased) samples: E[σ²_g] = λ^g (1 − 1/n)^(g+1).

    σ²_0 = (1/n)Σ(x−x̄)² has mean (1−1/n); given σ²_{g−1}, the n samples come from N(μ, λσ²_{g−1}),
    so E[σ²_g | σ²_{g−1}] = λ(1−1/n)σ²_{g−1}. The tolerance is 4 Monte-Carlo standard errors.
    """
    cfg = gaussian_cfg(sufficient_stats=stats)
    cfg["sampling"] = {"bias": bias}
    var = per_generation(autophagy.run(cfg), "param.trace_cov")
    n = 10
    g = np.arange(var.shape[1])
    expected = bias ** g * (1 - 1 / n) ** (g + 1)
    se = var.std(axis=0, ddof=1) / np.sqrt(var.shape[0])
    assert np.all(np.abs(var.mean(axis=0) - expected) < 4 * se), (var.mean(axis=0), expected, se)


def test_unbiased_estimator_keeps_expected_variance():
    """With the 1/(n−1) estimator the variance is a martingale: E[σ²_g] = 1 for every g (λ = 1)."""
    cfg = gaussian_cfg()
    cfg["model"]["estimator"] = "unbiased"
    var = per_generation(autophagy.run(cfg), "param.trace_cov")
    se = var.std(axis=0, ddof=1) / np.sqrt(var.shape[0])
    assert np.all(np.abs(var.mean(axis=0) - 1.0) < 4 * se)


def test_mean_is_a_random_walk():
    """MAD §3.1: μ_g is a martingale; E||μ_g − μ*||² = Σ_{k=0..g} E[σ²_{k−1}]/n with σ²_{−1} = 1 (MLE, λ = 1)."""
    cfg = gaussian_cfg(sufficient_stats="off")
    mse = per_generation(autophagy.run(cfg), "param.mean_sq_error")
    n = 10
    var_means = np.concatenate([[1.0], (1 - 1 / n) ** (np.arange(mse.shape[1] - 1) + 1)])
    expected = np.cumsum(var_means) / n
    se = mse.std(axis=0, ddof=1) / np.sqrt(mse.shape[0])
    assert np.all(np.abs(mse.mean(axis=0) - expected) < 4 * se)


def test_augment_keeps_more_variance_than_replace():
    res = autophagy.run({**gaussian_cfg(), "replicates": 2000, "generations": 6,
                         "grid": {"loop.policy": ["replace", "augment", "accumulate", "accumulate-subsample", "fresh"]}})
    final = res.final("param.trace_cov").set_index("name")["final"]
    name = lambda p: f"run[loop.policy={p}]"  # noqa: E731
    assert final[name("replace")] < final[name("augment")]
    assert final[name("replace")] < final[name("accumulate-subsample")] < final[name("accumulate")]


def test_reproducible_and_independent_of_replicate_count():
    base = {"seed": 11, "replicates": 3, "generations": 3,
            "data": {"source": "mixture", "layout": "ring"},
            "model": {"family": "kde", "bandwidth": 0.3},
            "loop": {"policy": "fresh", "n_real": 20, "n_synthetic": 30},
            "sampling": {"bias": 0.7},
            "metrics": ["sliced-wasserstein"]}
    a = autophagy.run(base).metrics
    b = autophagy.run(base).metrics
    assert a.equals(b)
    big = autophagy.run({**base, "replicates": 70}).metrics
    big = big[big.replicate < 3].reset_index(drop=True)
    np.testing.assert_array_equal(a.sort_values(["metric", "generation", "replicate"]).value.to_numpy(),
                                  big.sort_values(["metric", "generation", "replicate"]).value.to_numpy())


def test_metrics_frame_shape_and_columns():
    cfg = {**gaussian_cfg(), "replicates": 5, "generations": 2, "metrics": ["sliced-wasserstein", "heldout-nll"]}
    m = autophagy.run(cfg).metrics
    assert list(m.columns) == ["run_id", "replicate", "generation", "metric", "value"]
    for metric in ("param.trace_cov", "sliced-wasserstein", "heldout-nll"):
        sub = m[m.metric == metric]
        assert len(sub) == 5 * 3 and np.isfinite(sub.value).all()


def test_control_lineage_stays_at_the_real_data_level():
    """Real-only control for replace: each generation refits on n fresh real points, so E[σ²_g] = 1 − 1/n."""
    cfg = {**gaussian_cfg(control=True), "replicates": 3000}
    res = autophagy.run(cfg)
    assert sorted(res.runs.lineage) == ["control", "loop"]
    ctrl = res.runs.set_index("lineage").run_id["control"]
    df = res.metrics[(res.metrics.run_id == ctrl) & (res.metrics.metric == "param.trace_cov")]
    by_gen = df.groupby("generation").value
    se = by_gen.std() / np.sqrt(by_gen.count())
    assert np.all(np.abs(by_gen.mean() - 0.9) < 4 * se)


def test_synthetic_from_all_mixes_earlier_models():
    """Sampling from all previous models keeps more variance than sampling from the last one (MAD's Fig. 7 setup)."""
    res = autophagy.run({**gaussian_cfg(), "replicates": 2000, "generations": 6,
                         "grid": {"loop.synthetic_from": ["last", "all"]}})
    final = res.final("param.trace_cov").set_index("name")["final"]
    assert final["run[loop.synthetic_from=all]"] > final["run[loop.synthetic_from=last]"]


def test_out_dir_reuses_finished_runs(tmp_path):
    cfg = {**gaussian_cfg(), "replicates": 20}
    first = autophagy.run(cfg, out=tmp_path)
    assert (tmp_path / "results.sqlite").exists() and (tmp_path / "metrics.csv").exists()
    second = autophagy.run(cfg, out=tmp_path)
    assert second.reused == list(first.runs.run_id)
    assert np.allclose(np.sort(first.metrics.value.to_numpy()), np.sort(second.metrics.value.to_numpy()))


def test_no_files_without_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    autophagy.run({**gaussian_cfg(), "replicates": 5})
    assert list(tmp_path.iterdir()) == []
