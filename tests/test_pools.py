"""Lean pools (issue 15, item 2): the same numbers as the concatenating loop, O(k) subsets with the
right law, Gillman's linear weights, and the histogram-mix correction."""
import math

import numpy as np
import pytest

import autophagy
from autophagy import correction
from autophagy.config import load_config
from autophagy.models.gaussian import GaussianFamily, Moments
from autophagy.policies import PointPool, StatsPool, linear_keep, training_sizes, uniform_subset
from autophagy.rng import Streams


def _frame(result, metric):
    df = result.metrics[result.metrics.metric == metric]
    return df.pivot(index="replicate", columns="generation", values="value").to_numpy()


def _hand_loop(cfg, fit_family):
    """Today's algorithm spelled out: concatenate [real, *history] every generation (same streams)."""
    c, _ = load_config(cfg)
    plan = autophagy.build(c)
    S = lambda g, role: Streams(c.seed, c.replicates, g, role)  # noqa: E731
    real = plan.source.sample(c.loop.initial, S(-1, "data"))
    model = fit_family.fit(real, S(0, "fit"))
    out, history = [model], []
    for g in range(1, c.generations + 1):
        history.append(model.sample(c.loop.synthetic_at(g), S(g, "sample")))
        model = fit_family.fit(np.concatenate([real, *history], axis=1), S(g, "fit"))
        out.append(model)
    return out


def test_point_pool_is_the_concatenation_and_a_read_only_view():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((3, 4, 2))
    batches = [rng.standard_normal((3, m, 2)) for m in (5, 1, 7)]
    pool = PointPool(real, 4 + 13)
    for b in batches:
        pool.add(b)
    got = pool.training_set()
    np.testing.assert_array_equal(got, np.concatenate([real, *batches], axis=1))
    assert not got.flags.writeable and np.shares_memory(got, pool.buffer)
    short = PointPool(real, 5)  # a short capacity grows and keeps the same contents
    for b in batches:
        short.add(b)
    np.testing.assert_array_equal(short.training_set(), got)


def test_gaussian_accumulate_with_running_statistics_matches_the_concatenating_loop():
    """StatsPool (running Moments) on the sample path: the numbers of today's loop up to rounding."""
    cfg = {"seed": 2, "replicates": 70, "generations": 6, "data": {"source": "gaussian", "dim": 3, "mean": 4.0},
           "model": {"family": "gaussian"}, "loop": {"policy": "accumulate", "n_real": 9, "n_synthetic": 4,
                                                      "sufficient_stats": "off"}}
    got = autophagy.run(cfg)
    c, _ = load_config(cfg)
    family = GaussianFamily(GaussianFamily.Options(), autophagy.build(c).source.info)
    models = _hand_loop(cfg, family)
    want = np.stack([((m.mean - 4.0) ** 2).sum(-1) for m in models], axis=1)
    np.testing.assert_allclose(_frame(got, "param.mean_sq_error"), want, rtol=1e-9)
    np.testing.assert_allclose(_frame(got, "param.trace_cov"),
                               np.stack([np.trace(m.cov, axis1=1, axis2=2) for m in models], axis=1), rtol=1e-9)


def test_kde_accumulate_is_bit_identical_to_the_concatenating_loop():
    cfg = {"seed": 4, "replicates": 5, "generations": 4, "data": {"source": "moons"},
           "model": {"family": "kde", "bandwidth": 0.2}, "loop": {"policy": "accumulate", "n_real": 12}}
    got = autophagy.run(cfg)
    c, _ = load_config(cfg)
    models = _hand_loop(cfg, autophagy.build(c).family)
    want = np.stack([m.param_metrics(autophagy.build(c).source.info)["trace_cov"] for m in models], axis=1)
    np.testing.assert_array_equal(_frame(got, "param.trace_cov"), want)


def test_moments_add_up_like_the_points():
    rng = np.random.default_rng(1)
    a, b = rng.normal(3, 1, (4, 6, 2)), rng.normal(-1, 2, (4, 9, 2))
    both = Moments.of(a) + Moments.of(b, shift=np.full((4, 2), 7.0))
    mean, scatter = both.mean_scatter()
    x = np.concatenate([a, b], axis=1)
    c = x - x.mean(1, keepdims=True)
    np.testing.assert_allclose(mean, x.mean(1), rtol=1e-12)
    np.testing.assert_allclose(scatter, np.swapaxes(c, 1, 2) @ c, rtol=1e-10)


@pytest.mark.parametrize("N,k", [(15, 5), (40, 39), (1000, 3), (12, 12)])
def test_uniform_subset_law(N, k):
    """Distinct sorted indices; inclusion probability k/N for each point and k(k−1)/(N(N−1)) for each pair."""
    R = 4000
    idx = uniform_subset(N, k, Streams(0, R, 3, "policy"))
    assert idx.shape == (R, k) and (np.diff(idx, axis=1) > 0).all() and idx.min() >= 0 and idx.max() < N
    inc = np.zeros((R, N), dtype=bool)
    np.put_along_axis(inc, idx, True, axis=1)
    p = k / N
    if p < 1:
        se = math.sqrt(p * (1 - p) / R)
        assert np.all(np.abs(inc.mean(0) - p) < 4.5 * se)
        pair = (inc[:, 0] & inc[:, N - 1]).mean()
        q = k * (k - 1) / (N * (N - 1))
        assert abs(pair - q) < 4.5 * math.sqrt(q * (1 - q) / R) + 1e-12


def _first_k_distinct(N, k, streams):
    """The definition uniform_subset implements, one replicate and one draw at a time: uniform integers
    in draw order (the same chunks of the same streams), repeats skipped, the first k distinct kept."""
    if k >= N:
        return np.broadcast_to(np.arange(N), (streams.R, N))
    expect = N * math.log(N / (N - k)) + 1.0
    chunk = int(expect + 6 * math.sqrt(expect) + 16)
    picked = [[] for _ in range(streams.R)]
    while any(len(p) < k for p in picked):
        draws = np.minimum((streams.uniform(chunk) * N).astype(np.int64), N - 1)
        for r, p in enumerate(picked):
            for v in draws[r].tolist():
                if len(p) < k and v not in p:
                    p.append(v)
    return np.sort(np.array(picked), axis=1)


@pytest.mark.parametrize("N,k,R", [(15, 5, 70), (40, 39, 130), (1000, 3, 9), (12, 12, 3), (2000, 1000, 66),
                                   (7, 6, 300)])
def test_uniform_subset_is_the_first_k_distinct_draws(N, k, R):
    """The same indices as the one-draw-at-a-time definition (k close to N: replicates that need a second
    chunk of their stream)."""
    got = uniform_subset(N, k, Streams(4, R, 5, "policy"))
    np.testing.assert_array_equal(got, _first_k_distinct(N, k, Streams(4, R, 5, "policy")))


def test_uniform_subset_independent_of_replicate_count():
    small = uniform_subset(300, 40, Streams(9, 3, 2, "policy"))
    big = uniform_subset(300, 40, Streams(9, 200, 2, "policy"))
    np.testing.assert_array_equal(small, big[:3])


def test_linear_weights_match_gillmans_rule_and_both_pools_agree():
    # their script: batch i of g keeps int((i + 1) / g * 25) points
    g = 7
    assert list(linear_keep(np.full(g, 25))) == [int((i + 1) * 25 // g) for i in range(g)]
    assert linear_keep(np.full(g, 25))[-1] == 25
    rng = np.random.default_rng(2)
    real = rng.standard_normal((6, 8, 2))
    family = GaussianFamily(GaussianFamily.Options(), None)
    points, stats = PointPool(real, 8, "linear"), StatsPool(real, family.statistics, "linear")
    for g in range(1, 12):
        batch = rng.standard_normal((6, 25, 2)) + g
        points.add(batch)
        stats.add(batch)
        x = points.training_set()
        fit_p, fit_s = family.fit(x, None), family.fit(stats.training_set(), None)
        np.testing.assert_allclose(fit_s.mean, fit_p.mean, rtol=1e-9)
        np.testing.assert_allclose(fit_s.cov, fit_p.cov, rtol=1e-8, atol=1e-12)
        assert x.shape[1] == 8 + linear_keep(np.full(g, 25)).sum()
    loop = load_config({"loop": {"policy": "accumulate", "n_real": 8, "n_synthetic": 25,
                                 "accumulate_weights": "linear"}, "generations": 11})[0].loop
    assert training_sizes(loop, 11)[-1] == 8 + linear_keep(np.full(11, 25)).sum()


def test_linear_training_sizes_are_linear_keep_at_every_generation():
    """training_sizes builds the linear weights' sizes in blocks of generations; each is linear_keep's sum."""
    loop = load_config({"loop": {"policy": "accumulate", "n_real": 8, "n_synthetic": "(g * 7) % 5 + 1",
                                 "accumulate_weights": "linear"}, "generations": 2100})[0].loop
    sizes = training_sizes(loop, 2100)  # 2100 generations: more than one block of rows
    batches = np.array([loop.synthetic_at(g) for g in range(1, 2101)])
    expected = [8] + [8 + int(linear_keep(batches[:g]).sum()) for g in range(1, 2101)]
    assert sizes == tuple(expected)


def test_linear_weights_only_for_accumulate():
    with pytest.raises(autophagy.ConfigError, match="loop.accumulate_weights"):
        load_config({"loop": {"policy": "replace", "accumulate_weights": "linear"}})


def test_default_weights_leave_run_ids_unchanged():
    c, _ = load_config({"loop": {"policy": "accumulate"}})
    assert "accumulate_weights" not in c.to_dict()["loop"]


def _histogram_mix(gamma, dim=2):
    source = autophagy.build(load_config({"data": {"source": "gaussian", "dim": dim}})[0]).source
    return correction.build({"method": "histogram-mix", "gamma": gamma}, source)


def test_histogram_mix_at_full_strength_draws_the_target():
    """t → 1 (γ = ∞): accepted candidates are exact draws of p* = N(0, I) (rejection from N(0, 2I), M = 2)."""
    corr = _histogram_mix(float("inf"))
    x = np.random.default_rng(0).normal(5, 0.1, (400, 25, 2))  # a batch far from the target: ignored at t = 1
    y = corr(x, streams=Streams(0, 400, 1, "correct")).reshape(-1, 2)
    n = y.shape[0]
    assert np.all(np.abs(y.mean(0)) < 4.5 / math.sqrt(n))
    assert np.all(np.abs(y.var(0) - 1) < 4.5 * math.sqrt(2 / n))


def test_histogram_mix_at_zero_resamples_the_histogram():
    """t = 0: every accepted point lies in a non-empty bin, or within one bin below the lower edge (their
    int() truncation puts it in the first bin) -- never at or past the upper edge; and the batch is replaced."""
    corr = _histogram_mix(0.0, dim=1)
    rng = np.random.default_rng(3)
    x = rng.uniform(-1.0, 1.0, (300, 25, 1))
    y = corr(x, streams=Streams(1, 300, 1, "correct"))[..., 0]
    lo, hi = x[..., 0].min(1, keepdims=True), x[..., 0].max(1, keepdims=True)
    w = (hi - lo) / 10
    assert (y < hi).all() and (y > lo - w).all()
    assert (y < lo).any()  # the truncation strip is used
    assert not np.isin(y, x[..., 0]).any()  # new points, not the batch
    counts = np.stack([np.histogram(x[r, :, 0], 10, (lo[r, 0], hi[r, 0]))[0] for r in range(300)])
    bins = np.clip(np.trunc((y - lo) / w).astype(int), 0, 9)
    landed = np.take_along_axis(counts, bins, axis=1)
    assert (landed > 0).all()


def test_coordinates_of_a_small_real_set_span_its_hull():
    """n <= d: the chain's coordinates are an orthonormal basis of the real set's affine hull (exact paths run
    there: GaussianFamily.coordinates); mapping back reproduces the points."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5, 9))
    fam = GaussianFamily(GaussianFamily.Options(), None)
    y, (origin, U) = fam.coordinates(x, hull=True)
    assert y.shape == (4, 5, 4) and U.shape == (4, 9, 4)
    np.testing.assert_allclose(np.swapaxes(U, 1, 2) @ U, np.broadcast_to(np.eye(4), (4, 4, 4)), atol=1e-12)
    np.testing.assert_allclose(origin[:, None] + y @ np.swapaxes(U, 1, 2), x, atol=1e-12)
    y2, (_, U2) = fam.coordinates(rng.standard_normal((4, 12, 9)), hull=True)
    assert U2 is None and y2.shape == (4, 12, 9)


def test_memory_estimate_follows_the_path_taken():
    """build.memory_estimate sizes the statistics paths by what they keep (no pool of points): the Kazdan grid's
    largest accumulate-subsample cell is estimated under 2 GiB at R = 100 (its point pool: 8 GB), while the same
    cell forced onto the sample path (sufficient_stats: off) is still sized by its points."""
    from autophagy.build import memory_estimate

    def est(**loop):
        c, _ = load_config({"replicates": 100, "generations": 99, "data": {"source": "gaussian", "dim": 100},
                            "model": {"family": "gaussian", "w2": False},
                            "loop": {"policy": "accumulate-subsample", "n_real": 1000, **loop}})
        return memory_estimate(c, autophagy.build(c).source.info, [])

    assert est() < 2 * 2**30
    assert est(sufficient_stats="off") > 8 * 10**9
    assert est(policy="accumulate") < 0.5 * 2**30


def test_linear_stats_pool_grows_in_batches_and_batch_size():
    """Past its first 16 batches and with a later batch larger than the first ones, StatsPool (linear weights,
    prefix sums laid out prefix-last) still gives the PointPool's training set's statistics."""
    rng = np.random.default_rng(8)
    real = rng.standard_normal((5, 6, 3))
    family = GaussianFamily(GaussianFamily.Options(), None)
    sizes = [4] * 20 + [9] + [2, 0, 7] * 5
    points, stats = PointPool(real, 6 + sum(sizes), "linear"), StatsPool(real, family.statistics, "linear")
    for g, m in enumerate(sizes, start=1):
        batch = rng.standard_normal((5, m, 3)) + 0.1 * g
        points.add(batch)
        stats.add(batch)
        x = points.training_set()
        s = stats.training_set()
        assert s.n == x.shape[1]
        c = x - s.shift[:, None, :]
        np.testing.assert_allclose(s.s1, c.sum(1), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(s.s2, np.swapaxes(c, 1, 2) @ c, rtol=1e-10, atol=1e-10)
