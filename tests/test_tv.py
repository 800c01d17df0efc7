"""Total-variation distance to the source: closed forms, quadrature and Monte-Carlo estimators against exact values."""
import numpy as np
import pytest
from scipy import integrate, stats

import autophagy
from autophagy import metrics, tv
from autophagy.models.gaussian import GaussianModel
from autophagy.models.gmm import GMMModel
from autophagy.models.kde import KDEModel
from autophagy.protocols import SourceInfo
from autophagy.rng import Streams

N01 = SourceInfo(dim=1, truth={"mean": np.zeros(1), "cov": np.eye(1), "gaussian": True})
MIX_W, MIX_MU, MIX_COV = np.array([0.2, 0.5, 0.3]), np.array([[-2.0], [0.0], [2.5]]), np.array([[[0.3]], [[1.0]], [[0.5]]])
MIX1 = SourceInfo(dim=1, truth={"components": (MIX_W, MIX_MU, MIX_COV)})


def quad_tv(p, q, points=()):
    """½ ∫ |p − q| by adaptive quadrature (the numerical reference)."""
    return 0.5 * integrate.quad(lambda x: abs(p(x) - q(x)), -40, 40, points=list(points), limit=500, epsabs=1e-12)[0]


def mix_pdf(x):
    return sum(w * stats.norm.pdf(x, m[0], np.sqrt(c[0, 0])) for w, m, c in zip(MIX_W, MIX_MU, MIX_COV))


def test_identical_distributions_have_zero_tv():
    assert tv.gaussian_tv_1d(0.3, 2.0, 0.3, 2.0) == 0.0
    g = GaussianModel(np.zeros((3, 1)), np.ones((3, 1, 1)))
    np.testing.assert_array_equal(g.param_metrics(N01)["tv"], 0.0)
    mix = GMMModel(np.tile(MIX_W, (2, 1)), np.tile(MIX_MU, (2, 1, 1)), np.tile(MIX_COV, (2, 1, 1, 1)))
    assert np.all(mix.param_metrics(MIX1)["tv"] < 1e-9)
    info2 = SourceInfo(dim=2, truth={"mean": np.ones(2), "cov": np.array([[1.0, 0.6], [0.6, 2.0]]), "gaussian": True})
    g2 = GaussianModel(np.ones((2, 2)), np.tile(info2.truth["cov"], (2, 1, 1)))
    assert np.all(g2.tv(info2) < 1e-9)


@pytest.mark.parametrize("mp, vp, mq, vq", [(0, 1, 0.5, 1), (0, 1, 0.3, 2.0), (1, 0.2, 0, 1), (-3, 4, 2, 0.1),
                                              (0, 1, 0, 1.0000001), (0, 1, 8, 1)])
def test_two_1d_gaussians_match_the_closed_form(mp, vp, mq, vq):
    exact = float(tv.gaussian_tv_1d(mp, vp, mq, vq))
    ref = quad_tv(lambda x: stats.norm.pdf(x, mp, np.sqrt(vp)), lambda x: stats.norm.pdf(x, mq, np.sqrt(vq)), (mp, mq))
    assert abs(exact - ref) < 1e-8, (exact, ref)
    if vp == vq:  # the textbook form 2Φ(|Δμ|/2σ) − 1
        assert abs(exact - (2 * stats.norm.cdf(abs(mp - mq) / (2 * np.sqrt(vp))) - 1)) < 1e-12
    assert abs(tv.gaussian_tv_1d(0, 0.0, 0, 1) - 1.0) < 1e-12  # a point mass against a density


def test_mixture_tv_matches_numerical_integration():
    """1-D GMM and Gaussian models against a 3-component mixture: grid quadrature vs scipy.integrate.quad."""
    rng = np.random.default_rng(1)
    R = 4
    w = rng.dirichlet(np.ones(2), R)
    mu = rng.normal(0, 1.5, (R, 2, 1))
    var = rng.uniform(0.2, 1.5, (R, 2, 1, 1))
    got = GMMModel(w, mu, var).param_metrics(MIX1)["tv"]
    for r in range(R):
        q = lambda x, r=r: sum(w[r, k] * stats.norm.pdf(x, mu[r, k, 0], np.sqrt(var[r, k, 0, 0])) for k in range(2))
        ref = quad_tv(mix_pdf, q, (-2, 0, 2.5, *mu[r, :, 0]))
        assert abs(got[r] - ref) < 1e-5, (r, got[r], ref)
    g = GaussianModel(mu[:, 0], var[:, 0])
    ref0 = quad_tv(mix_pdf, lambda x: stats.norm.pdf(x, mu[0, 0, 0], np.sqrt(var[0, 0, 0, 0])), (-2, 0, 2.5))
    assert abs(g.param_metrics(MIX1)["tv"][0] - ref0) < 1e-5


def _equal_cov_tv(delta_maha):
    """Exact TV between two Gaussians with one covariance, any dimension: 2Φ(Δ/2) − 1 (Δ = Mahalanobis distance)."""
    return 2 * stats.norm.cdf(delta_maha / 2) - 1


def test_2d_quadrature_and_3d_monte_carlo_match_the_equal_covariance_closed_form():
    cov = np.array([[1.0, 0.5], [0.5, 2.0]])
    info2 = SourceInfo(dim=2, truth={"mean": np.zeros(2), "cov": cov, "gaussian": True})
    shifts = np.array([[0.3, -0.2], [1.0, 1.0], [0.0, 2.5]])
    maha = np.sqrt(np.einsum("ri,ij,rj->r", shifts, np.linalg.inv(cov), shifts))
    got = GaussianModel(shifts, np.tile(cov, (3, 1, 1))).tv(info2)
    np.testing.assert_allclose(got, _equal_cov_tv(maha), atol=2e-4)

    # Monte Carlo (importance sampling from the source over held-out real points) in 3-D, within its s.e.
    R, n, d = 30, 4000, 3
    cov3 = np.diag([1.0, 2.0, 0.5])
    info3 = SourceInfo(dim=3, truth={"mean": np.zeros(3), "cov": cov3, "gaussian": True})
    shift = np.zeros((R, d))
    shift[:, 0] = np.linspace(0.1, 1.5, R)
    model = GaussianModel(shift, np.tile(cov3, (R, 1, 1)))
    ref = Streams(5, R, -1, "heldout").normal(n, d) * np.sqrt(np.diag(cov3))
    out = metrics.compute([("density-tv", {})], ref, ref[:, :10], model=model, info=info3)
    exact = _equal_cov_tv(shift[:, 0])
    z = (out["density-tv"] - exact) / out["density-tv-se"]
    assert np.all(np.abs(z) < 4.5), z
    assert abs(z.mean()) < 4 / np.sqrt(R)  # unbiased: the z-scores average to 0 within their s.e.
    assert np.all(out["density-tv-se"] > 0) and np.all(out["density-tv-se"] < 0.01)


@pytest.mark.parametrize("d", [1, 2])
def test_kde_binned_quadrature_matches_monte_carlo(d):
    """The binned-FFT KDE density against an importance-sampling estimate from the exact KDE log-density."""
    info = N01 if d == 1 else SourceInfo(dim=2, truth={"mean": np.zeros(2), "cov": np.eye(2), "gaussian": True})
    R, n = 3, 200
    pool = Streams(2, R, 0, "pool").normal(n, d)
    h = np.array([0.15, 0.4, 0.8])
    got = KDEModel(pool, h).tv(info)
    x = Streams(2, R, 0, "mc").normal(60000, d)
    out = metrics.compute([("density-tv", {"method": "mc"})], x, x[:, :10], model=KDEModel(pool, h), info=info)
    tol = 4 * out["density-tv-se"] + (1e-4 if d == 1 else 3e-3)  # 2-D grid capped at 512²: δ up to h/2
    assert np.all(np.abs(got - out["density-tv"]) < tol), (got, out["density-tv"], out["density-tv-se"])


def test_histogram_tv_floor_on_equal_laws_is_the_documented_bias():
    """The sample-based tv (for neural families) is biased upward by finite samples: on two samples of one
    law its mean is ½ Σ_b sqrt(2 p_b (1 − p_b)(1/n + 1/m)/π) (to first order), not 0."""
    R, n, m, bins = 400, 500, 500, 30
    ref = Streams(0, R, 0, "a").normal(n, 1)
    smp = Streams(0, R, 0, "b").normal(m, 1)
    got = metrics.compute([("tv", {"bins": bins})], ref, smp)["tv"]
    edges = np.linspace(-3.2, 3.2, bins + 1)  # typical reference range of 500 normal points
    p = np.diff(stats.norm.cdf(np.concatenate([[-np.inf], edges, [np.inf]])))
    floor = 0.5 * np.sqrt(2 * p * (1 - p) * (1 / n + 1 / m) / np.pi).sum()
    assert abs(got.mean() - floor) < 0.1 * floor, (got.mean(), floor)
    assert got.mean() > 0.08


def test_param_tv_is_recorded_for_density_families_in_1d():
    for family in ({"family": "gaussian"}, {"family": "kde"}, {"family": "gmm", "components": 2}):
        res = autophagy.run({"seed": 0, "replicates": 8, "generations": 2, "data": {"source": "gaussian", "dim": 1},
                             "model": family, "loop": {"policy": "replace", "n_real": 50}})
        v = res.metrics[res.metrics.metric == "param.tv"].value
        assert len(v) == 8 * 3 and v.between(0, 1).all() and v.mean() > 0.01, family
