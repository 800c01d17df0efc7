"""Metric tests: each metric against an independent implementation (scipy, POT, a brute-force
loop) or a closed-form value, with Monte-Carlo tolerances where data are random."""
import numpy as np
import pytest
from scipy.linalg import sqrtm
from scipy.spatial.distance import cdist
from scipy.stats import entropy, wasserstein_distance

from autophagy import metrics as M
from autophagy.errors import ConfigError
from autophagy.protocols import SourceInfo
from autophagy.rng import Streams

VEC = SourceInfo(dim=2)


def rng(seed=0):
    return np.random.default_rng(seed)  # test data only; metrics draw through Streams


def streams(R, seed=7):
    return Streams(seed, R, 0, "metric")


def se(v):
    return v.std(ddof=1) / np.sqrt(len(v))


# ------------------------------------------------------------------ Wasserstein family
@pytest.mark.parametrize("m", [60, 100])
def test_sliced_wasserstein_matches_pot_with_same_directions(m):
    ot = pytest.importorskip("ot")
    x, y = rng().normal(size=(3, 100, 3)), rng(1).normal(size=(3, m, 3)) + 0.5
    sw = M.sliced_wasserstein(x, y, streams=streams(3), projections=16)["sliced-wasserstein"]
    theta = streams(3).normal(16, 3)  # the same directions the metric drew
    theta /= np.linalg.norm(theta, axis=-1, keepdims=True)
    ref = [ot.sliced_wasserstein_distance(x[r], y[r], projections=theta[r].T, p=2) for r in range(3)]
    np.testing.assert_allclose(sw, ref, rtol=1e-10)
    sw1 = M.sliced_wasserstein(x, y, streams=streams(3), projections=16, p=1)["sliced-wasserstein"]
    ref1 = [ot.sliced_wasserstein_distance(x[r], y[r], projections=theta[r].T, p=1) for r in range(3)]
    np.testing.assert_allclose(sw1, ref1, rtol=1e-10)


def test_sliced_wasserstein_of_shifted_1d_gaussians_is_the_shift():
    """In 1-D every direction is ±1, so SW_2 = W_2(N(0,1), N(1,1)) = 1."""
    x, y = rng().normal(size=(2, 20000, 1)), rng(1).normal(size=(2, 20000, 1)) + 1
    sw = M.sliced_wasserstein(x, y, streams=streams(2))["sliced-wasserstein"]
    assert np.all(np.abs(sw - 1) < 0.03), sw


def test_sliced_wasserstein_per_replicate_values_do_not_depend_on_R():
    x, y = rng().normal(size=(3, 50, 2)), rng(1).normal(size=(3, 40, 2))
    all3 = M.sliced_wasserstein(x, y, streams=streams(3))["sliced-wasserstein"]
    one = M.sliced_wasserstein(x[:1], y[:1], streams=streams(1))["sliced-wasserstein"]
    assert all3[0] == one[0]


def test_wasserstein_1d_matches_scipy_per_dimension():
    x, y = rng().normal(size=(3, 80, 2)), rng(1).exponential(size=(3, 57, 2))
    w = M.wasserstein_1d(x, y)["wasserstein-1d"]
    ref = [np.mean([wasserstein_distance(x[r, :, j], y[r, :, j]) for j in range(2)]) for r in range(3)]
    np.testing.assert_allclose(w, ref, rtol=1e-10)


@pytest.mark.parametrize("name", ["wasserstein-1d", "sliced-wasserstein", "frechet", "tv", "kl"])
def test_identical_sets_have_zero_distance(name):
    x = rng().normal(size=(2, 200, 2))
    out = M.compute([(name, {})], x, x.copy(), info=VEC, streams=streams(2))
    np.testing.assert_allclose(out[name], 0.0, atol=1e-7)


# ------------------------------------------------------------------ Fréchet
def exact_moments(z, mean, cov):
    """Transform z so its sample mean and unbiased covariance are exactly (mean, cov)."""
    z = z - z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z.T).reshape(len(mean), len(mean)))).T
    return z @ np.linalg.cholesky(cov).T + mean


def test_frechet_equals_closed_form_on_exact_moments():
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 0.5])
    c1 = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]])
    c2 = np.array([[1.0, -0.4, 0.0], [-0.4, 0.8, 0.1], [0.0, 0.1, 1.5]])
    x = exact_moments(rng().normal(size=(300, 3)), m1, c1)[None]
    y = exact_moments(rng(1).normal(size=(200, 3)), m2, c2)[None]
    h = sqrtm(c1)
    expected = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * np.real(sqrtm(h @ c2 @ h)))
    np.testing.assert_allclose(M.frechet(x, y)["frechet"], [expected], rtol=1e-9)
    # 1-D: N(0, 1) vs N(1, 4) -> 1 + (1 - 2)^2 = 2
    a = exact_moments(rng(2).normal(size=(100, 1)), np.zeros(1), np.eye(1))[None]
    b = exact_moments(rng(3).normal(size=(100, 1)), np.ones(1), 4 * np.eye(1))[None]
    np.testing.assert_allclose(M.frechet(a, b)["frechet"], [2.0], rtol=1e-9)


def test_frechet_features_hook_is_applied():
    x, y = rng().normal(size=(2, 100, 2)), rng(1).normal(size=(2, 100, 2))
    # numpy:negative maps (n, d) -> (n, d); the Fréchet distance is invariant to x -> -x on both sets
    np.testing.assert_allclose(M.frechet(x, y, features="numpy:negative")["frechet"], M.frechet(x, y)["frechet"])
    with pytest.raises(ConfigError, match="metrics.frechet.features"):
        M.frechet(x, y, features="numpy:no_such_function")


# ------------------------------------------------------------------ MMD
def mmd_brute(x, y, sigma):
    k = lambda a, b: np.exp(-cdist(a, b, "sqeuclidean") / (2 * sigma ** 2))  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    return ((kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1)) - 2 * kxy.mean())


def test_mmd_matches_brute_force_and_median_heuristic():
    x, y = rng().normal(size=(2, 60, 2)), rng(1).normal(size=(2, 45, 2)) + 0.3
    np.testing.assert_allclose(M.mmd(x, y, bandwidth=0.7)["mmd"], [mmd_brute(x[r], y[r], 0.7) for r in range(2)])
    z = np.concatenate([x[0], y[0]])
    sigma = np.median(cdist(z, z)[np.triu_indices(len(z), 1)])
    np.testing.assert_allclose(M.mmd(x, y)["mmd"][0], mmd_brute(x[0], y[0], sigma), rtol=1e-10)


def test_mmd_is_unbiased_on_same_distribution_and_positive_on_shift():
    x, y = rng().normal(size=(40, 100, 2)), rng(1).normal(size=(40, 100, 2))
    same = M.mmd(x, y)["mmd"]
    assert abs(same.mean()) < 4 * se(same), (same.mean(), se(same))
    shifted = M.mmd(x, y + 1.0)["mmd"]
    assert np.all(shifted > 0) and shifted.mean() > same.mean() + 10 * se(same)


def test_mmd_subsamples_through_streams():
    x, y = rng().normal(size=(2, 300, 2)), rng(1).normal(size=(2, 300, 2))
    a = M.mmd(x, y, max_points=100, streams=streams(2))["mmd"]
    b = M.mmd(x, y, max_points=100, streams=streams(2))["mmd"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, M.mmd(x, y)["mmd"])
    with pytest.raises(TypeError, match="streams"):
        M.mmd(x, y, max_points=100)


# ------------------------------------------------------------------ precision / recall / density / coverage
def prd_brute(x, y, k):
    dxx, dyy, dxy = cdist(x, x), cdist(y, y), cdist(x, y)
    rx, ry = np.sort(dxx, 1)[:, k], np.sort(dyy, 1)[:, k]
    inside = dxy <= rx[:, None]  # (n, m): sample j in real ball i
    return {"precision": inside.any(0).mean(), "recall": (dxy <= ry[None, :]).any(1).mean(),
            "density": inside.sum() / (k * len(y)), "coverage": inside.any(1).mean()}


def test_prd_matches_brute_force():
    x, y = rng().normal(size=(2, 150, 3)), 0.8 * rng(1).normal(size=(2, 120, 3)) + 0.2
    out = M.prd(x, y, k=4)
    for r in range(2):
        ref = prd_brute(x[r], y[r], 4)
        for key in ref:
            assert out[key][r] == pytest.approx(ref[key]), key


def test_prd_shrunk_samples_gain_precision_and_lose_recall():
    """Samples squeezed to 0.5·y sit in the dense core of the real data: every sample is realistic
    (precision up) but the real tails are no longer covered (recall and coverage down)."""
    x, y = rng().normal(size=(4, 1000, 5)), rng(1).normal(size=(4, 1000, 5))
    a, b = M.prd(x, y), M.prd(x, 0.5 * y)
    assert np.all(b["precision"] > a["precision"])
    assert np.all(b["recall"] < a["recall"]) and np.all(b["coverage"] < a["coverage"])
    assert np.all(np.abs(a["density"] - 1) < 0.15)


def test_prd_runs_at_ten_thousand_points():
    x, y = rng().normal(size=(3, 10000, 2)), rng(1).normal(size=(3, 10000, 2))
    out = M.prd(x, y)
    assert all(v.shape == (3,) and np.all((v > 0.9) & (v < 1.1)) for k, v in out.items() if k != "coverage")


# ------------------------------------------------------------------ Vendi
@pytest.mark.parametrize("k", [1, 3, 7])
def test_vendi_of_k_far_apart_tight_clusters_is_k(k):
    centres = 100.0 * np.arange(k)[:, None] * np.ones((1, 2))
    y = np.repeat(centres, 30, axis=0) + 1e-4 * rng().normal(size=(30 * k, 2))
    out = M.vendi(y[None], y[None], bandwidth=1.0)["vendi"]
    assert out[0] == pytest.approx(k, rel=1e-5)


def test_vendi_matches_eigen_formula_and_reference_bandwidth():
    x, y = rng().normal(size=(2, 80, 2)), 0.3 * rng(1).normal(size=(2, 60, 2))
    sigma = np.median(cdist(x[1], x[1])[np.triu_indices(80, 1)])
    lam = np.linalg.eigvalsh(np.exp(-cdist(y[1], y[1], "sqeuclidean") / (2 * sigma ** 2)) / 60)
    lam = lam[lam > 1e-15]
    vs = M.vendi(x, y)["vendi"]
    assert vs[1] == pytest.approx(np.exp(entropy(lam)), rel=1e-8)
    # a collapsed spread lowers the score under the (fixed) reference bandwidth, not the samples' own
    assert np.all(vs < M.vendi(x, y / 0.3)["vendi"])
    np.testing.assert_allclose(M.vendi(x, y, bandwidth="median")["vendi"], M.vendi(x, y / 0.3, bandwidth="median")["vendi"])


# ------------------------------------------------------------------ histograms
def test_tv_and_kl_on_categorical_tokens_match_scipy():
    K, eps = 6, 1e-10
    info = SourceInfo(dim=1, kind="categorical", n_categories=K)
    g = rng()
    x = g.choice(K, size=(3, 500, 1), p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1]).astype(np.int64)
    y = g.choice(K, size=(3, 400, 1), p=[0.5, 0.2, 0.1, 0.1, 0.1, 0.0]).astype(np.int64)
    out = M.compute([("tv", {}), ("kl", {"eps": eps})], x, y, info=info)
    for r in range(3):
        p, q = np.bincount(x[r, :, 0], minlength=K) / 500, np.bincount(y[r, :, 0], minlength=K) / 400
        assert out["tv"][r] == pytest.approx(0.5 * np.abs(p - q).sum())
        assert out["kl"][r] == pytest.approx(entropy(p + eps, q + eps), rel=1e-9)


def test_tv_and_kl_on_vectors_disjoint_supports():
    x, y = rng().uniform(size=(2, 300, 2)), rng(1).uniform(size=(2, 200, 2)) + 2.0
    assert np.allclose(M.tv(x, y, info=VEC)["tv"], 1.0)
    # all sample mass in the overflow bin: KL ≈ log(1/eps) up to a bin-entropy term
    assert np.all(M.kl(x, y, info=VEC)["kl"] > 15)
    # per-dimension histograms against a numpy histogram on the reference range
    x1, y1 = rng(2).normal(size=(1, 400, 1)), rng(3).normal(size=(1, 300, 1)) * 1.2
    edges = np.linspace(x1.min(), x1.max(), 11)
    edges = np.concatenate([[-np.inf], edges, [np.inf]])
    p, q = np.histogram(x1[0, :, 0], edges)[0] / 400, np.histogram(y1[0, :, 0], edges)[0] / 300
    assert M.tv(x1, y1, info=VEC, bins=10)["tv"][0] == pytest.approx(0.5 * np.abs(p - q).sum())


# ------------------------------------------------------------------ model-based and simple summaries
class StdNormalModel:
    def log_prob(self, x):
        return -0.5 * (x ** 2).sum(-1) - 0.5 * x.shape[-1] * np.log(2 * np.pi)


def test_heldout_nll_of_true_standard_normal_is_its_entropy():
    x = rng().normal(size=(50, 400, 1))
    nll = M.heldout_nll(x, x, model=StdNormalModel())["heldout-nll"]
    assert abs(nll.mean() - 0.5 * np.log(2 * np.pi * np.e)) < 4 * se(nll)
    with pytest.raises(ConfigError, match="log_prob"):
        M.heldout_nll(x, x, model=object())


def test_variance_ratio_of_doubled_samples_is_four():
    x = rng().normal(size=(2, 100, 3))
    np.testing.assert_allclose(M.variance_ratio(x, 2 * x + 5)["variance-ratio"], 4.0)


def test_tail_mass_is_2q_on_matching_distribution():
    x, y = rng().normal(size=(20, 5000, 1)), rng(1).normal(size=(20, 5000, 1))
    t = M.tail_mass(x, y, q=0.02)["tail-mass"]
    assert abs(t.mean() - 0.04) < 4 * se(t), (t.mean(), se(t))
    assert np.all(M.tail_mass(x, 0.5 * y, q=0.02)["tail-mass"] < 0.005)


def mixture_info():
    w = np.array([0.4, 0.3, 0.25, 0.05])
    mu = 10.0 * np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=float)
    return w, mu, SourceInfo(dim=2, truth={"components": (w, mu, np.stack([np.eye(2)] * 4))})


def test_mode_coverage_counts_dropped_modes():
    w, mu, info = mixture_info()
    g = rng()
    full = np.stack([mu[g.choice(4, 2000, p=w)] + g.normal(size=(2000, 2)) for _ in range(3)])
    out = M.mode_coverage(full, full, info=info)
    np.testing.assert_allclose(out["mode-coverage"], 1.0)
    in3sd = 0.9973 * w  # ellipsoid at level 0.9973 keeps that share of each mode
    mass = np.stack([out[f"mode-mass-{k}"] for k in range(4)], axis=1)
    assert np.all(np.abs(mass - in3sd) < 4 * np.sqrt(in3sd * (1 - in3sd) / 2000))
    np.testing.assert_array_equal(out["minority-mass"], out["mode-mass-3"])
    # drop the minority mode and one other: half the modes remain covered; far points are off-mode
    kept = np.where(np.isin(g.choice(4, 2000, p=w), [0, 2]), 0, 2)
    dropped = (mu[kept] + g.normal(size=(2000, 2)))[None]
    dropped[0, :10] = 1000.0
    out = M.mode_coverage(dropped, dropped, info=info)
    assert out["mode-coverage"][0] == 0.5 and out["minority-mass"][0] == 0.0
    assert out["mode-mass-0"][0] + out["mode-mass-2"][0] <= 1990 / 2000
    # tied lowest weights: minority-mass is the most starved of the tied modes, not an arbitrary one
    w2 = np.array([0.4, 0.4, 0.1, 0.1])
    tied = SourceInfo(dim=2, truth={"components": (w2, mu, np.stack([np.eye(2)] * 4))})
    only_2 = (mu[g.choice(3, 2000, p=[0.45, 0.45, 0.1])] + g.normal(size=(2000, 2)))[None]  # mode 3 never drawn
    out = M.mode_coverage(only_2, only_2, info=tied)
    assert out["mode-mass-2"][0] > 0.05 and out["minority-mass"][0] == out["mode-mass-3"][0] == 0.0
    with pytest.raises(ConfigError, match="components"):
        M.mode_coverage(full, full, info=VEC)


# ------------------------------------------------------------------ compute / validation
def test_compute_validates_options_and_isolates_streams():
    x, y = rng().normal(size=(2, 50, 2)), rng(1).normal(size=(2, 40, 2))
    with pytest.raises(ConfigError, match=r"metrics\.sliced-wasserstein = 'projection'"):
        M.compute([("sliced-wasserstein", {"projection": 3})], x, y, streams=streams(2))
    with pytest.raises(ConfigError, match=r"metrics\.sliced-wasserstein\.projections"):
        M.compute([("sliced-wasserstein", {"projections": 0})], x, y, streams=streams(2))
    with pytest.raises(ConfigError, match="one of"):
        M.compute([("no-such-metric", {})], x, y, streams=streams(2))
    alone = M.compute([("sliced-wasserstein", {})], x, y, streams=streams(2))
    both = M.compute([("mmd", {"max_points": 20}), ("sliced-wasserstein", {})], x, y, streams=streams(2))
    np.testing.assert_array_equal(alone["sliced-wasserstein"], both["sliced-wasserstein"])
    assert set(both) == {"mmd", "sliced-wasserstein"} and all(v.shape == (2,) for v in both.values())


def test_check_applicable_rejects_up_front():
    cat = SourceInfo(dim=1, kind="categorical", n_categories=3)
    M.check_applicable([("tv", {}), ("kl", {"eps": 1e-6}), ("heldout-nll", {})], cat, has_log_prob=True)
    with pytest.raises(ConfigError, match="heldout-nll"):
        M.check_applicable([("heldout-nll", {})], VEC, has_log_prob=False)
    with pytest.raises(ConfigError, match="mode-coverage"):
        M.check_applicable([("mode-coverage", {})], VEC, has_log_prob=True)
    with pytest.raises(ConfigError, match="categorical"):
        M.check_applicable([("sliced-wasserstein", {})], cat, has_log_prob=True)
    with pytest.raises(ConfigError, match="twice"):
        M.check_applicable([("tv", {}), ("tv", {"bins": 5})], VEC, has_log_prob=True)
    with pytest.raises(ConfigError, match=r"metrics\.prd\.k"):
        M.check_applicable([("prd", {"k": -1})], VEC, has_log_prob=True)


def test_compute_gives_nan_only_to_diverged_replicates():
    x, y = rng().normal(size=(3, 60, 2)), rng(1).normal(size=(3, 50, 2))
    bad = y.copy()
    bad[1, 3, 0] = np.nan
    specs = [("prd", {}), ("frechet", {}), ("sliced-wasserstein", {}), ("heldout-nll", {})]
    good = M.compute(specs, x, y, model=StdNormalModel(), info=VEC, streams=streams(3))
    out = M.compute(specs, x, bad, model=StdNormalModel(), info=VEC, streams=streams(3))
    for key, v in out.items():
        if key == "heldout-nll":
            np.testing.assert_array_equal(v, good[key])
        else:
            assert np.isnan(v[1]) and np.array_equal(v[[0, 2]], good[key][[0, 2]]), key
