"""accumulate-subsample's statistics path (``autophagy.subsample_pool.LiveSubsetPool``, issue 15 item 2):
the pool stores only the points a later training set selects, the loop draws only those
(``GaussianModel.sample_rows``), and the numbers are what the point pool's subsets give."""
import numpy as np
import pytest

import autophagy
from autophagy import subsample_pool
from autophagy.models.gaussian import GaussianModel
from autophagy.policies import PointPool
from autophagy.rng import Streams
from autophagy.subsample_pool import LiveSubsetPool


def _compact(batch, used):
    """Replicate r's used points of ``batch (R, m, r)`` first, in pool order (what the loop draws)."""
    R, m, r = batch.shape
    out = np.zeros((R, max(int(used.sum(1).max(initial=0)), 1), r))
    for i in range(R):
        out[i, :used[i].sum()] = batch[i, used[i]]
    return out


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_live_pool_gives_the_statistics_of_the_point_pools_subsets(dtype, tol):
    """Same streams, same selections: every generation's sums equal those of the subset PointPool.subsample
    gathers (to 1e-10 with a float64 store; float32 rounds each stored coordinate to 2^-24 relative)."""
    rng = np.random.default_rng(3)
    R, n0, r, sizes, ks = 70, 5, 6, [4, 0, 7, 3, 6, 8], [5, 5, 9, 2, 30, 3]
    real = rng.standard_normal((R, n0, r))
    S = lambda g: Streams(11, R, g, "policy")  # noqa: E731
    pool = LiveSubsetPool(real, sizes, ks, S, lambda n, s1, s2: (n, s1, s2), dtype=dtype)
    points = PointPool(real, n0 + sum(sizes))
    for g, (m, k) in enumerate(zip(sizes, ks), start=1):
        batch = rng.standard_normal((R, m, r)) + g
        st = pool.starts[g]
        used = pool.last[:, st:st + m] >= g  # the points some training set g' >= g selects
        np.testing.assert_array_equal(pool.needed(), used.sum(1))
        pool.add(_compact(batch, used))
        points.add(batch)
        x = points.subsample(k, S(g))
        n, s1, s2 = pool.subsample(k, S(g))
        assert n == x.shape[1] == min(k, n0 + sum(sizes[:g]))
        np.testing.assert_allclose(s1, x.sum(1), rtol=tol, atol=tol)
        np.testing.assert_allclose(s2, np.swapaxes(x, 1, 2) @ x, rtol=tol, atol=tol)


def test_live_pool_holds_about_a_quarter_of_the_pool():
    """Under constant sizes a point of batch b is alive from b to its last use; at most about n·G/4 points per
    replicate are, against the n·G of a point pool, and the store is sized to the most any replicate holds."""
    R, n, G = 64, 40, 30
    rng = np.random.default_rng(0)
    real = rng.standard_normal((R, n, 2))
    pool = LiveSubsetPool(real, [n] * G, [n] * G, lambda g: Streams(2, R, g, "policy"), lambda *a: a)
    assert 0.2 * n * G < pool.capacity < 0.32 * n * G
    live = []
    for g in range(1, G + 1):
        pool.add(rng.standard_normal((R, pool.needed().max(), 2)))
        pool.subsample(n)
        live.append(pool.capacity - pool.top.min())
    assert max(live) <= pool.capacity
    mean_used = sum(pool.expected_used(b)[0] for b in range(1, G + 1)) / G
    assert abs(mean_used / n - 0.5) < 0.03  # a point of batch b is unused with probability b/(G+1)


def _model(R, d, rng):
    A = rng.standard_normal((R, d, d)) / np.sqrt(d)
    cov = A @ np.swapaxes(A, 1, 2) + 0.5 * np.eye(d)
    return GaussianModel(rng.standard_normal((R, d)), cov, factor=np.linalg.cholesky(cov), tri=True)


@pytest.mark.parametrize("d", [3, 12])
def test_sample_rows_draws_the_models_law(d):
    """Each replicate's first counts[r] rows are iid N(μ, λΣ): the mean and covariance of the whitened rows,
    pooled over replicates, are 0 and I within 4.5 s.e.; d = 12 takes the trmm path."""
    rng = np.random.default_rng(1)
    R, bias = 400, 0.7
    model = _model(R, d, rng)
    counts = rng.integers(5, 60, R)
    x = model.sample_rows(counts, 40, Streams(4, R, 1, "sample"), bias)
    z = []
    for r in range(R):
        y = x[r, :counts[r]] - model.mean[r]
        z.append(np.linalg.solve(model.factor[r], y.T).T / np.sqrt(bias))
    z = np.concatenate(z)
    N = z.shape[0]
    assert np.all(np.abs(z.mean(0)) < 4.5 / np.sqrt(N))
    cov = z.T @ z / N
    assert np.all(np.abs(cov - np.eye(d)) < 4.5 * np.sqrt(2.0 / N))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sample_rows_numbers_do_not_depend_on_R_or_the_other_replicates(dtype):
    """Rows past the first chunk (replicate 1 needs 90 > 40) come from continuation streams; the last
    block's rows past R are not drawn. Replicates 0..2 get the same numbers at R = 3 and R = 130."""
    rng = np.random.default_rng(2)
    big = _model(130, 12, rng)
    counts = rng.integers(1, 40, 130)
    counts[1] = 90
    small = GaussianModel(big.mean[:3], big.cov[:3], factor=big.factor[:3], tri=True)
    a = small.sample_rows(counts[:3], 40, Streams(9, 3, 2, "sample"), dtype=dtype)
    b = big.sample_rows(counts, 40, Streams(9, 130, 2, "sample"), dtype=dtype)
    for r in range(3):
        np.testing.assert_array_equal(a[r, :counts[r]], b[r, :counts[r]])
    assert a.dtype == dtype


def _grid_cell(**over):
    cfg = {"seed": 1, "replicates": 40, "generations": 30, "data": {"source": "gaussian", "dim": 12},
           "model": {"family": "gaussian", "estimator": "mle", "w2": False},
           "loop": {"policy": "accumulate-subsample", "n_real": 60}}
    cfg.update(over)
    return cfg


def _anisotropic(d=5):
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))
    return (Q @ np.diag(np.logspace(0, -8, d)) @ Q.T).tolist()


@pytest.mark.parametrize("n_real, data", [(60, {}), (12, {}), (50, {"dim": 5, "mean": 3.0, "cov": _anisotropic()})])
def test_float32_store_moves_recorded_numbers_by_under_1e_5_relative(n_real, data, monkeypatch):
    """The documented tolerance of the float32 store: every param.* within 1e-5 relative of a float64 store
    (the same draws: float64 normals in both runs) after 30 generations; n_real = 12 in d = 12 runs in the
    real set's hull (r = 11), where every training set's scatter is nearly singular (k = r + 1); the third
    case has a rotated covariance of condition 1e8 and a mean away from 0."""
    original = GaussianModel.sample_rows

    def float64_draws(self, counts, width, streams, bias=1.0, dtype=np.float64):
        return original(self, counts, width, streams, bias, dtype=np.float64)

    monkeypatch.setattr(GaussianModel, "sample_rows", float64_draws)
    over = {"loop": {"policy": "accumulate-subsample", "n_real": n_real},
            "data": {"source": "gaussian", "dim": 12, **data}}
    f32 = autophagy.run(_grid_cell(**over)).metrics
    monkeypatch.setattr(subsample_pool, "STORE_DTYPE", np.float64)
    f64 = autophagy.run(_grid_cell(**over)).metrics
    finite = np.isfinite(f64.value.to_numpy())
    assert len(f32) == len(f64) and (f32.metric.str.startswith("param.")).all()
    a, b = f32.value.to_numpy(), f64.value.to_numpy()
    assert not np.array_equal(a[finite & (f32.generation > 0).to_numpy()], b[finite & (f64.generation > 0).to_numpy()])
    np.testing.assert_array_equal(np.isfinite(a), finite)  # the hull's log-det is -inf in both
    np.testing.assert_allclose(a[finite], b[finite], rtol=1e-5, atol=1e-9)


def test_kazdan_cell_uses_the_live_pool_and_draws_about_half_the_points(monkeypatch):
    """The Kazdan grid's accumulate-subsample cells take this path (no PointPool), and the loop asks the model
    for about half of each batch (a first chunk of the expected count plus 1 s.d., a replicate with more draws
    the rest from its own stream)."""
    from autophagy import policies

    asked = []
    original = GaussianModel.sample_rows

    def spy(self, counts, width, *a, **k):
        asked.append((int(np.max(counts)), width))
        return original(self, counts, width, *a, **k)

    monkeypatch.setattr(GaussianModel, "sample_rows", spy)
    monkeypatch.setattr(policies.PointPool, "__init__", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    autophagy.run(_grid_cell())
    assert len(asked) == 30 and all(w <= 60 and m <= 60 for m, w in asked)
    assert any(m > w for m, w in asked)  # some replicate needed more than the first chunk
    assert 0.45 < np.mean([w for _, w in asked]) / 60 < 0.7
