"""Exact sufficient-statistics paths of the Gaussian loops against the sample path (issue 15, item 1).

For every policy with an exact path (replace, augment, fresh, accumulate) the engine's exact run and
its sample run (``loop.sufficient_stats: off``) must agree in law: the mean and the variance of every
``param.*`` metric at every generation within a tolerance from their Monte-Carlo standard errors.
Each test also checks that the exact run really skipped the samples (GaussianModel.sample raises).
"""
import numpy as np
import pytest

import autophagy
from autophagy.models import gaussian as gaussian_mod


def _cfg(policy, dim, stats, **loop):
    return {"seed": 5, "replicates": 3000, "generations": 3,
            "data": {"source": "gaussian", "dim": dim, "mean": 0.5, "std": 1.3},
            "model": {"family": "gaussian", "estimator": "mle"},
            "sampling": {"bias": 0.8},
            "loop": {"policy": policy, "n_real": 6, "n_synthetic": 5, "sufficient_stats": stats, **loop}}


def _per_generation(result, metric):
    df = result.metrics[result.metrics.metric == metric]
    return df.pivot(index="replicate", columns="generation", values="value").to_numpy()


def _run_exact(cfg, monkeypatch):
    """The run with sample() disabled: an exact path that drew a sample would fail here."""
    def no_samples(self, *a, **k):
        raise AssertionError("the exact path drew samples")

    with monkeypatch.context() as m:
        m.setattr(gaussian_mod.GaussianModel, "sample", no_samples)
        return autophagy.run(cfg)


def _agree(a, b, label):
    """Means within 4.5 s.e. of the difference; variances within 4.5 s.e. of the difference of variances
    (the s.e. of a variance estimated from the fourth central moment)."""
    R = a.shape[0]
    se_mean = np.sqrt(a.var(0, ddof=1) / R + b.var(0, ddof=1) / R)
    assert np.all(np.abs(a.mean(0) - b.mean(0)) <= 4.5 * se_mean + 1e-12), (label, a.mean(0), b.mean(0), se_mean)

    def var_se(x):
        c = x - x.mean(0)
        return np.sqrt(np.maximum((c ** 4).mean(0) - (c ** 2).mean(0) ** 2, 0) / R)

    se_var = np.sqrt(var_se(a) ** 2 + var_se(b) ** 2)
    assert np.all(np.abs(a.var(0) - b.var(0)) <= 4.5 * se_var + 1e-12), (label, a.var(0), b.var(0), se_var)


@pytest.mark.parametrize("policy", ["replace", "augment", "fresh", "accumulate"])
@pytest.mark.parametrize("dim", [1, 3])
def test_exact_path_has_the_law_of_the_sample_path(policy, dim, monkeypatch):
    exact = _run_exact(_cfg(policy, dim, "auto"), monkeypatch)
    sampled = autophagy.run(_cfg(policy, dim, "off"))
    metrics = sorted(m for m in exact.metrics.metric.unique() if m.startswith("param."))
    assert {"param.mean_sq_error", "param.trace_cov", "param.logdet_cov", "param.w2_sq"} <= set(metrics)
    for metric in metrics:
        a, b = _per_generation(exact, metric), _per_generation(sampled, metric)
        np.testing.assert_array_equal(a[:, 0], b[:, 0])  # generation 0 fits the same real points
        assert not np.array_equal(a[:, 1:], b[:, 1:])  # different draws (else nothing was tested)
        _agree(a[:, 1:], b[:, 1:], f"{policy} d={dim} {metric}")


def test_exact_path_honours_sample_size_schedules(monkeypatch):
    """Sizes that change with g (schedule.py) reach the exact path: its law still matches the sample path,
    and it differs from the constant-size run (so the schedule was read)."""
    loop = {"n_synthetic": [0, 2, 40, 40], "n_real": 6}
    exact = _run_exact(_cfg("accumulate", 2, "auto", **loop), monkeypatch)
    sampled = autophagy.run(_cfg("accumulate", 2, "off", **loop))
    for metric in ("param.trace_cov", "param.mean_sq_error", "param.logdet_cov"):
        _agree(_per_generation(exact, metric)[:, 1:], _per_generation(sampled, metric)[:, 1:], metric)
    constant = _run_exact(_cfg("accumulate", 2, "auto"), monkeypatch)
    a, c = _per_generation(exact, "param.trace_cov"), _per_generation(constant, "param.trace_cov")
    # at g = 3, 82 of 88 pooled points come from shrunk (λ = 0.8) samples, against 15 of 21: a lower trace
    se = np.sqrt(a[:, 3].var(ddof=1) / a.shape[0] + c[:, 3].var(ddof=1) / c.shape[0])
    assert c[:, 3].mean() - a[:, 3].mean() > 6 * se, (a[:, 3].mean(), c[:, 3].mean(), se)


def test_exact_path_is_independent_of_replicate_blocks(monkeypatch):
    """Replicate r's numbers do not depend on R (the seed tree's blocks), on the exact path too."""
    small = _run_exact({**_cfg("accumulate", 3, "auto"), "replicates": 3}, monkeypatch).metrics
    big = _run_exact({**_cfg("accumulate", 3, "auto"), "replicates": 130}, monkeypatch).metrics
    big = big[big.replicate < 3]
    key = ["metric", "generation", "replicate"]
    np.testing.assert_array_equal(small.sort_values(key).value.to_numpy(), big.sort_values(key).value.to_numpy())


def test_triangular_factor_gives_the_same_metrics():
    """The exact path's kept Cholesky factor: trace and log-det from it equal the dense computation."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((7, 4, 4))
    cov = A @ np.swapaxes(A, -1, -2) + 0.1 * np.eye(4)
    info = autophagy.build(autophagy.load_config({"data": {"source": "gaussian", "dim": 4}})[0]).source.info
    dense = gaussian_mod.GaussianModel(np.zeros((7, 4)), cov).param_metrics(info)
    tri = gaussian_mod.GaussianModel(np.zeros((7, 4)), cov).triangular()
    assert tri.tri
    got = tri.param_metrics(info)
    for k in dense:
        np.testing.assert_allclose(got[k], dense[k], rtol=1e-10, atol=1e-12)


def test_w2_off_drops_only_w2():
    cfg = _cfg("replace", 2, "auto")
    cfg["model"]["w2"] = False
    cfg["replicates"] = 5
    assert "param.w2_sq" not in set(autophagy.run(cfg).metrics.metric)


def _run_without_point_pool(cfg, monkeypatch):
    """accumulate-subsample's statistics path draws points (those a training set uses) but never stores the
    pool: PointPool raises here."""
    from autophagy import policies

    def no_pool(self, *a, **k):
        raise AssertionError("the statistics path stored the pool's points")

    with monkeypatch.context() as m:
        m.setattr(policies.PointPool, "__init__", no_pool)
        return autophagy.run(cfg)


@pytest.mark.parametrize("dim", [1, 3])
def test_subsample_statistics_path_has_the_law_of_the_sample_path(dim, monkeypatch):
    """accumulate-subsample without a point pool (subsample_pool.LiveSubsetPool, Cholesky factors, only the used
    points drawn, a float32 store): its draws differ from the point pool's, its law does not."""
    cfg = lambda stats: {**_cfg("accumulate-subsample", dim, stats), "generations": 4}  # noqa: E731
    fast = _run_without_point_pool(cfg("auto"), monkeypatch)
    sampled = autophagy.run(cfg("off"))
    metrics = sorted(m for m in fast.metrics.metric.unique() if m.startswith("param."))
    assert {"param.mean_sq_error", "param.trace_cov", "param.logdet_cov", "param.w2_sq"} <= set(metrics)
    for metric in metrics:
        a, b = _per_generation(fast, metric), _per_generation(sampled, metric)
        np.testing.assert_array_equal(a[:, 0], b[:, 0])
        assert not np.array_equal(a[:, 1:], b[:, 1:])
        _agree(a[:, 1:], b[:, 1:], f"accumulate-subsample d={dim} {metric}")


@pytest.mark.parametrize("policy", ["augment", "accumulate", "accumulate-subsample"])
def test_small_real_set_runs_in_its_hull_with_the_sample_paths_law(policy, monkeypatch):
    """n_initial <= d: the statistics paths run in the real set's affine hull (r = n − 1 coordinates); same law
    as the sample path for the mean and trace, and log-det −inf (the covariance is singular: rank <= n − 1)."""
    cfg = lambda stats: {**_cfg(policy, 7, stats, n_real=5), "replicates": 2500}  # noqa: E731
    run = _run_without_point_pool if policy == "accumulate-subsample" else _run_exact
    fast = run(cfg("auto"), monkeypatch)
    sampled = autophagy.run(cfg("off"))
    for metric in ("param.mean_sq_error", "param.trace_cov", "param.w2_sq"):
        a, b = _per_generation(fast, metric), _per_generation(sampled, metric)
        np.testing.assert_allclose(a[:, 0], b[:, 0], rtol=1e-12)
        _agree(a[:, 1:], b[:, 1:], f"{policy} hull {metric}")
    assert np.isneginf(_per_generation(fast, "param.logdet_cov")[:, 1:]).all()


def test_subsample_statistics_path_is_independent_of_replicate_blocks():
    cfg = {**_cfg("accumulate-subsample", 3, "auto"), "generations": 5}
    small = autophagy.run({**cfg, "replicates": 3}).metrics
    big = autophagy.run({**cfg, "replicates": 130}).metrics
    big = big[big.replicate < 3]
    key = ["metric", "generation", "replicate"]
    np.testing.assert_array_equal(small.sort_values(key).value.to_numpy(), big.sort_values(key).value.to_numpy())


def test_subsample_with_batches_smaller_than_the_hull_has_the_sample_paths_law(monkeypatch):
    """r = n − 1 >= the batch size (n_real 5, batches of 3 in d = 7): the live pool keeps the points in the
    hull's coordinates; the same law as the sample path."""
    cfg = lambda stats: {**_cfg("accumulate-subsample", 7, stats, n_real=5, n_synthetic=3),  # noqa: E731
                         "replicates": 2500, "generations": 4}
    with monkeypatch.context() as m:
        fast = _run_without_point_pool(cfg("auto"), m)
    sampled = autophagy.run(cfg("off"))
    for metric in ("param.mean_sq_error", "param.trace_cov", "param.w2_sq"):
        a, b = _per_generation(fast, metric), _per_generation(sampled, metric)
        assert not np.array_equal(a[:, 1:], b[:, 1:])
        _agree(a[:, 1:], b[:, 1:], f"hull point pool {metric}")
    assert np.isneginf(_per_generation(fast, "param.logdet_cov")[:, 1:]).all()


@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize("dim", [3, 12])
def test_accumulate_recursion_equals_the_summed_statistics_path(estimator, dim):
    """GaussianModel.exact_accumulate (the pool's fit updated in the model's whitened coordinates, no pool)
    gives the model the Moments path gives -- exact_moments' batch added to the pool's statistics, refitted --
    from the same draws, to rounding, over five steps (d = 12 takes the trmm products)."""
    from autophagy.models.gaussian import GaussianFamily
    from autophagy.policies import StatsPool
    from autophagy.rng import Streams

    fam = GaussianFamily(GaussianFamily.Options(estimator=estimator), None)
    real = np.random.default_rng(4).standard_normal((7, 30, dim)) * 1.7 + 0.4
    fast = fam.fit(fam.statistics(real), None).triangular()
    slow, pool, pooled = fast, StatsPool(fam.statistics(real), fam.statistics), 30
    for g, n in enumerate([20, 35, 14, 60, 25], start=1):
        fast = fast.exact_accumulate(n, pooled, Streams(2, 7, g, "sample"), 0.8)
        pool.add(slow.exact_moments(n, Streams(2, 7, g, "sample"), 0.8))
        slow = fam.fit(pool.training_set(), None)
        pooled += n
        np.testing.assert_allclose(fast.mean, slow.mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fast.factor, slow.factor, rtol=1e-9, atol=1e-11)
        assert fast.tri and slow.tri


def test_accumulate_exact_run_takes_the_recursion_and_keeps_no_pool(monkeypatch):
    """The engine's exact accumulate loop (full covariance, batches > d) runs exact_accumulate, builds no pool."""
    from autophagy import policies

    calls = []
    original = gaussian_mod.GaussianModel.exact_accumulate
    monkeypatch.setattr(gaussian_mod.GaussianModel, "exact_accumulate",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    monkeypatch.setattr(policies.StatsPool, "__init__", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    autophagy.run({**_cfg("accumulate", 3, "auto"), "replicates": 20})
    assert len(calls) == 3


@pytest.mark.parametrize("policy", ["replace", "augment", "accumulate"])
def test_exact_paths_in_12_dimensions_have_the_sample_paths_law(policy, monkeypatch):
    """d = 12 > 8: the exact paths multiply triangular factors with BLAS trmm (models.gaussian._lower_times);
    the same law as the sample path."""
    cfg = lambda stats: {**_cfg(policy, 12, stats, n_real=30, n_synthetic=20), "replicates": 2000}  # noqa: E731
    exact = _run_exact(cfg("auto"), monkeypatch)
    sampled = autophagy.run(cfg("off"))
    for metric in ("param.mean_sq_error", "param.trace_cov", "param.logdet_cov", "param.w2_sq"):
        a, b = _per_generation(exact, metric), _per_generation(sampled, metric)
        _agree(a[:, 1:], b[:, 1:], f"{policy} d=12 {metric}")


def test_lower_times_reads_any_layout():
    """alpha · L @ B for C-ordered, Fortran-ordered, transposed and sliced B (a copy that kept a transposed
    view's layout once left B unmultiplied), and in place for a C-ordered float64 B with overwrite."""
    rng = np.random.default_rng(0)
    L = np.tril(rng.standard_normal((3, 12, 12)))
    B = rng.standard_normal((3, 12, 12))
    for X in (B, np.swapaxes(B, -1, -2), np.asfortranarray(B), B[:, :, :7], np.swapaxes(L, -1, -2)):
        np.testing.assert_allclose(gaussian_mod._lower_times(L, X, 0.5), 0.5 * L @ X, rtol=1e-12, atol=1e-12)
    C = B.copy()
    out = gaussian_mod._lower_times(L, C, 2.0, overwrite=True)
    assert out is C
    np.testing.assert_allclose(out, 2.0 * L @ B, rtol=1e-12, atol=1e-12)


def test_times_lower_reads_any_layout_and_ignores_the_upper_triangle():
    """alpha · F @ L for lower-triangular L (replace's general factor times Bartlett's): C-ordered, transposed,
    Fortran-ordered and rectangular F; L's upper triangle never read; F left unchanged."""
    rng = np.random.default_rng(1)
    L = rng.standard_normal((3, 12, 12))
    low = np.tril(L)
    F = rng.standard_normal((3, 12, 12))
    for X in (F, np.swapaxes(F, -1, -2), np.asfortranarray(F), rng.standard_normal((3, 5, 12))):
        before = X.copy()
        np.testing.assert_allclose(gaussian_mod._times_lower(X, L, 0.5), 0.5 * X @ low, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(X, before)
    small = rng.standard_normal((2, 4, 4))
    np.testing.assert_allclose(gaussian_mod._times_lower(small, np.tril(small), 2.0), 2.0 * small @ np.tril(small))


def test_a_low_dimensional_gaussian_loop_never_loads_scipy():
    """scipy's BLAS is used above TRMM_ABOVE dimensions only; below, a worker saves its 0.35 s import. Above,
    the loop loads it itself (before limiting BLAS threads, so that its pool is limited too)."""
    import subprocess
    import sys

    code = ("import sys, autophagy; from autophagy.models.gaussian import TRMM_ABOVE\n"
            "for d in (2, TRMM_ABOVE + 1):\n"
            "    autophagy.run({'replicates': 2, 'generations': 2, 'data': {'source': 'gaussian', 'dim': d},\n"
            "                   'model': {'family': 'gaussian'}, 'loop': {'policy': 'accumulate', 'n_real': 20}})\n"
            "    print('scipy.linalg' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
