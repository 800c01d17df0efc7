"""Closed-form families: the conformance suite over every family, plus closed-form oracles.

Monte-Carlo tolerances are 4 standard errors (fixed seeds).
"""
import math

import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats

from autophagy.errors import ConfigError
from autophagy.models import kde as kde_mod
from autophagy.models.categorical import CategoricalFamily, CategoricalModel, sharpen
from autophagy.models.gaussian import GaussianFamily, GaussianModel
from autophagy.models.gmm import GMMFamily, GMMModel
from autophagy.models.kde import KDEFamily, KDEModel
from autophagy.models.lifted import Lifted, LiftedModel
from autophagy.models.regression import RegressionFamily
from autophagy.protocols import SourceInfo
from autophagy.rng import Streams
from autophagy.testing import check_family


def assert_close(a, b, se, k=4.0):
    """|a − b| <= k·se elementwise (equality passes when both are exact), with a readable failure."""
    a, b, se = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float), np.asarray(se, float))
    assert np.all(np.abs(a - b) <= k * se), (a, b, se)


def mean_se(x, axis=0):
    x = np.asarray(x, float)
    return x.mean(axis), x.std(axis, ddof=1) / math.sqrt(x.shape[axis])


def var_se(x):
    """Sample variance of ``x (R, ...)`` along axis 0 and its standard error sqrt(Var((x − x̄)²)/R)."""
    dev2 = (x - x.mean(0)) ** 2
    return mean_se(dev2)


COV3 = np.array([[2.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 0.5]])
GAUSS2 = SourceInfo(dim=2, truth={"mean": np.array([1.0, -1.0]), "cov": np.eye(2), "gaussian": True})


def gaussian_data(R, n, d=2, seed=1, role="data"):
    return np.array([1.0, -1.0, 0.5][:d]) + Streams(seed, R, -1, role).normal(n, d)


class ToyGaussian:
    """A single-dataset model as a user would write it (for the Lifted adapter)."""

    def __init__(self, shrink: float = 1.0):
        self.shrink, self.fits = shrink, 0

    def fit(self, x, rng):
        self.mean, self.std, self.fits = x.mean(0), self.shrink * x.std(0), self.fits + 1
        self.mean = self.mean + 1e-9 * rng.standard_normal(self.mean.shape)  # uses its generator
        return self

    def sample(self, m, rng, bias=1.0):
        return self.mean + math.sqrt(bias) * self.std * rng.standard_normal((m, self.mean.size))

    def log_prob(self, x):
        return scipy.stats.norm.logpdf(x, self.mean, self.std).sum(-1)

    def param_metrics(self):
        return {"std": float(self.std.mean()), "fits": self.fits}


def _categorical_case(smoothing):
    p = np.array([0.5, 0.3, 0.2, 0.0, 0.0])
    info = SourceInfo(dim=1, kind="categorical", n_categories=5, truth={"probs": p})
    u = Streams(1, 5, -1, "data").uniform(40)
    tokens = (u[..., None] >= np.cumsum(p)[:2]).sum(-1)[..., None].astype(np.int64)
    return CategoricalFamily(CategoricalFamily.Options(smoothing=smoothing), info), tokens, info


def _regression_case():
    w = np.array([1.0, -2.0, 0.5])
    info = SourceInfo(dim=4, kind="regression", truth={"w": w, "noise_std": 0.5, "n_features": 3})
    X = Streams(1, 5, -1, "x").normal(30, 3)
    y = X @ w + 0.5 * Streams(1, 5, -1, "y").normal(30)
    return RegressionFamily(RegressionFamily.Options(), info), np.concatenate([X, y[..., None]], -1), info


CASES = {
    "gaussian-full-mle": lambda: (GaussianFamily(GaussianFamily.Options(), GAUSS2), gaussian_data(5, 30), GAUSS2),
    "gaussian-diag-unbiased": lambda: (GaussianFamily(GaussianFamily.Options(covariance="diag", estimator="unbiased"), GAUSS2),
                                       gaussian_data(5, 30), GAUSS2),
    "kde-scott": lambda: (KDEFamily(KDEFamily.Options(), GAUSS2), gaussian_data(5, 30), GAUSS2),
    "kde-silverman": lambda: (KDEFamily(KDEFamily.Options(bandwidth="silverman"), GAUSS2), gaussian_data(5, 30), GAUSS2),
    "kde-fixed": lambda: (KDEFamily(KDEFamily.Options(bandwidth=0.3), GAUSS2), gaussian_data(5, 30), GAUSS2),
    "gmm-full": lambda: (GMMFamily(GMMFamily.Options(components=2), GAUSS2), gaussian_data(4, 30), GAUSS2),
    "gmm-diag": lambda: (GMMFamily(GMMFamily.Options(components=3, covariance_type="diag"), GAUSS2),
                         gaussian_data(4, 30), GAUSS2),
    "categorical": lambda: _categorical_case(0.0),
    "categorical-smoothed": lambda: _categorical_case(0.5),
    "linear-regression": _regression_case,
    "lifted-toy": lambda: (Lifted(ToyGaussian, {"shrink": 0.9}, GAUSS2), gaussian_data(5, 30), GAUSS2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_conformance(case):
    family, data, info = CASES[case]()
    check_family(family, data, info)


# ------------------------------------------------------------------ the suite itself can fail
class _SharedStreamFamily:
    """Broken on purpose: draws all replicates from one flat stream, so results depend on R."""

    batched = True

    def fit(self, data, streams, init=None):
        model = GaussianFamily(GaussianFamily.Options(), GAUSS2).fit(data, streams)
        R, d = model.mean.shape

        class Broken(GaussianModel):
            def sample(self, m, streams, bias=1.0):
                flat = np.random.default_rng(streams.seed).standard_normal(m * R * d)
                return self.mean[:, None] + math.sqrt(bias) * flat.reshape(m, R, d).transpose(1, 0, 2)

        return Broken(model.mean, model.cov)


class _NoBiasFamily(GaussianFamily):
    def fit(self, data, streams, init=None):
        model = super().fit(data, streams, init)
        model.sample = lambda m, s, bias=1.0: GaussianModel.sample(model, m, s, 1.0)
        return model


@pytest.mark.parametrize("family,needle", [(_SharedStreamFamily(), "R = 70"),
                                           (_NoBiasFamily(GaussianFamily.Options(), GAUSS2), "bias")])
def test_check_family_catches_broken_families(family, needle):
    with pytest.raises(AssertionError, match=needle):
        check_family(family, gaussian_data(5, 30), GAUSS2)


# ------------------------------------------------------------------ gaussian
@pytest.mark.parametrize("estimator,factor", [("mle", 0.9), ("unbiased", 1.0)])
def test_gaussian_variance_estimator_bias(estimator, factor):
    """1-D: E[σ̂²] = (1 − 1/n)σ² for the MLE and σ² for the 1/(n−1) estimator (n = 10, σ² = 2)."""
    data = math.sqrt(2.0) * Streams(5, 4000, -1, "data").normal(10, 1)
    model = GaussianFamily(GaussianFamily.Options(estimator=estimator), SourceInfo(dim=1)).fit(data, None)
    m, se = mean_se(model.param_metrics(SourceInfo(dim=1))["trace_cov"])
    assert_close(m, factor * 2.0, se)


def _start_model(R, diag, estimator="mle"):
    cov = np.diag(np.diag(COV3)) if diag else COV3
    return GaussianModel(np.tile([1.0, 0.0, -1.0], (R, 1)), np.tile(cov, (R, 1, 1)), diag=diag, estimator=estimator)


@pytest.mark.parametrize("diag", [False, True])
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize("n", [6, 3])  # n − 1 >= d (Bartlett) and n − 1 < d (singular Wishart)
def test_exact_refit_matches_sample_path(diag, estimator, n):
    """One and three steps of exact_refit have the law of sample-n-then-refit (bias λ = 0.7)."""
    R, lam = 3000, 0.7
    options = GaussianFamily.Options(estimator=estimator, covariance="diag" if diag else "full")
    family = GaussianFamily(options, SourceInfo(dim=3))
    exact = path = _start_model(R, diag, estimator)
    for g in range(1, 4):
        exact = exact.exact_refit(n, Streams(7, R, g, "sample"), lam)  # the engine's call: estimator from the model
        path = family.fit(path.sample(n, Streams(8, R, g, "sample"), bias=lam), Streams(8, R, g, "fit"))
        if g not in (1, 3):
            continue
        for stat in (lambda mo: mo.mean[:, 0], lambda mo: np.trace(mo.cov, axis1=1, axis2=2), lambda mo: mo.cov[:, 0, 1]):
            a, b = stat(exact), stat(path)
            (ma, sa), (mb, sb) = mean_se(a), mean_se(b)
            assert_close(ma, mb, math.hypot(sa, sb))
            (va, sva), (vb, svb) = var_se(a), var_se(b)
            assert_close(va, vb, math.hypot(sva, svb))


@pytest.mark.parametrize("n", [6, 3])
def test_exact_refit_wishart_moments(n):
    """After one step: E[Σ'] = λ(n−1)Σ/n, Var(Σ'_ij) = (n−1)λ²(Σ_ij² + Σ_iiΣ_jj)/n², E||μ' − μ||² = λ tr Σ / n."""
    R, lam, k = 6000, 0.6, n - 1
    start = _start_model(R, False)
    new = start.exact_refit(n, Streams(3, R, 1, "sample"), lam)
    m, se = mean_se(new.cov)
    assert_close(m, lam * k * COV3 / n, se)
    v, sv = var_se(new.cov)
    assert_close(v, k * lam ** 2 * (COV3 ** 2 + np.outer(np.diag(COV3), np.diag(COV3))) / n ** 2, sv)
    m, se = mean_se(((new.mean - start.mean) ** 2).sum(1))
    assert_close(m, lam * np.trace(COV3) / n, se)


def test_gaussian_w2_and_log_prob_match_scipy():
    model = GaussianFamily(GaussianFamily.Options(), SourceInfo(dim=3)).fit(gaussian_data(4, 12, d=3), None)
    truth = {"mean": np.zeros(3), "cov": COV3, "gaussian": True}
    w2 = model.param_metrics(SourceInfo(dim=3, truth=truth))["w2_sq"]
    root = scipy.linalg.sqrtm(COV3)
    for r in range(4):
        bures = np.trace(model.cov[r] + COV3 - 2 * scipy.linalg.sqrtm(root @ model.cov[r] @ root).real)
        assert w2[r] == pytest.approx((model.mean[r] ** 2).sum() + bures, rel=1e-8)
    x = gaussian_data(4, 7, d=3, role="x")
    lp = model.log_prob(x)
    for r in range(4):
        np.testing.assert_allclose(lp[r], scipy.stats.multivariate_normal(model.mean[r], model.cov[r]).logpdf(x[r]), rtol=1e-10)
    same = GaussianModel(np.zeros((1, 3)), COV3[None], False)
    assert same.param_metrics(SourceInfo(dim=3, truth=truth))["w2_sq"][0] == pytest.approx(0.0, abs=1e-10)


def test_gaussian_unbiased_needs_two_points():
    with pytest.raises(ConfigError, match="model.estimator"):
        GaussianFamily(GaussianFamily.Options(estimator="unbiased"), GAUSS2).fit(np.zeros((2, 1, 2)), None)


# ------------------------------------------------------------------ kde
def test_kde_bandwidth_rules_match_scipy_in_1d():
    x = gaussian_data(3, 25, d=1)
    info = SourceInfo(dim=1)
    for rule in ("scott", "silverman"):
        model = KDEFamily(KDEFamily.Options(bandwidth=rule), info).fit(x, None)
        for r in range(3):
            ref = scipy.stats.gaussian_kde(x[r, :, 0], bw_method=rule)
            assert model.h[r] == pytest.approx(ref.factor * x[r, :, 0].std(ddof=1), rel=1e-12)
            np.testing.assert_allclose(model.log_prob(x)[r], ref.logpdf(x[r, :, 0]), rtol=1e-9)


def test_kde_log_prob_chunking(monkeypatch):
    """Chunked logsumexp equals the direct computation; a tiny chunk limit exercises every loop."""
    pool = gaussian_data(5, 17, d=3)
    x = gaussian_data(5, 11, d=3, role="x")
    model = KDEModel(pool, np.linspace(0.2, 0.6, 5))
    diff = x[:, :, None, :] - pool[:, None, :, :]
    h2 = model.h[:, None, None] ** 2
    direct = (scipy.special.logsumexp(-(diff ** 2).sum(-1) / (2 * h2), axis=-1)
              - math.log(17) - 1.5 * np.log(2 * np.pi * h2[..., 0]))
    np.testing.assert_allclose(model.log_prob(x), direct, rtol=1e-10)
    monkeypatch.setattr(kde_mod, "MAX_FLOATS", 40)
    np.testing.assert_allclose(model.log_prob(x), direct, rtol=1e-10)


def test_kde_growing_pool_log_prob_is_incremental_and_equal():
    """accumulate with a fixed bandwidth: each generation's pool extends the last in one read-only buffer,
    and log_prob of the same held-out points adds only the new points' kernels -- equal to the full
    logsumexp up to rounding; a pool that is not such an extension (new buffer, other h) recomputes."""
    R, d = 3, 2
    buf = gaussian_data(R, 60, d=d)
    buf.flags.writeable = False
    x = gaussian_data(R, 9, d=d, role="x")
    family = KDEFamily(KDEFamily.Options(bandwidth=0.3), GAUSS2)
    calls = []
    real = kde_mod._logsumexp_kernels

    def spy(pool, pts, h):
        calls.append(pool.shape[1])
        return real(pool, pts, h)

    kde_mod._logsumexp_kernels = spy
    try:
        for n in (20, 30, 45, 60):
            model = family.fit(buf[:, :n], None)
            fresh = KDEModel(np.array(buf[:, :n]), model.h)
            np.testing.assert_allclose(model.log_prob(x), fresh.log_prob(x), rtol=1e-13, atol=0)
        assert calls == [20, 20, 10, 30, 15, 45, 15, 60]  # incremental: 20, then 10, 15, 15 new points
        other = family.fit(np.array(buf[:, :60]), None)  # a writable copy: not an extension, full sum
        calls.clear()
        other.log_prob(x)
        assert calls == [60]
    finally:
        kde_mod._logsumexp_kernels = real


def test_kde_fixed_bandwidth_refit_oracle():
    """Refit with fixed h on m biased samples: E[trace_cov'] = (1 − 1/m)(tr C + λh²d) + h²d, C the pool's 1/n covariance.

    A sample is x = p_I + √λ h z with I uniform on the pool, so Cov(x) = C + λh²I; the refit's pool covariance
    (1/m) is (1 − 1/m) Cov(x) in expectation, and the KDE adds h²I.
    """
    R, n, m, d, h, lam = 4000, 20, 15, 2, 0.4, 0.6
    pool = np.tile(gaussian_data(1, n), (R, 1, 1))
    family = KDEFamily(KDEFamily.Options(bandwidth=h), GAUSS2)
    model = family.fit(pool, None)
    C = np.cov(pool[0].T, bias=True)
    refit = family.fit(model.sample(m, Streams(2, R, 1, "sample"), bias=lam), None)
    got, se = mean_se(refit.param_metrics(GAUSS2)["trace_cov"])
    assert_close(got, (1 - 1 / m) * (np.trace(C) + lam * h * h * d) + h * h * d, se)
    assert model.param_metrics(GAUSS2)["trace_cov"][0] == pytest.approx(np.trace(C) + h * h * d)


# ------------------------------------------------------------------ gmm
def _hand_gmm(R):
    w = np.array([0.2, 0.8])
    mu = np.array([[-5.0, 0.0], [5.0, 1.0]])
    cov = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 2.0]]])
    return GMMModel(np.tile(w, (R, 1)), np.tile(mu, (R, 1, 1)), np.tile(cov, (R, 1, 1, 1))), w, mu, cov


def test_gmm_sampling_weights_and_biased_components():
    """Component frequencies match the weights; within a component the covariance is λΣ_k."""
    model, w, mu, cov = _hand_gmm(3)
    lam, m = 0.5, 20000
    x = model.sample(m, Streams(4, 3, 1, "sample"), bias=lam)
    first = x[..., 0] < 0  # the components are 10 apart along x
    assert_close(first.mean(1), w[0], math.sqrt(w[0] * w[1] / m))
    for r in range(3):
        for k, sel in enumerate((first[r], ~first[r])):
            pts = x[r][sel]
            assert_close(pts.mean(0), mu[k], np.sqrt(lam * np.diag(cov[k]) / len(pts)))
            emp = np.cov(pts.T)
            se = np.sqrt(lam ** 2 * (cov[k] ** 2 + np.outer(np.diag(cov[k]), np.diag(cov[k]))) / len(pts))
            assert_close(emp, lam * cov[k], se)


def test_gmm_log_prob_and_moments():
    model, w, mu, cov = _hand_gmm(2)
    x = gaussian_data(2, 9, role="x") * 3
    ref = np.log(sum(w[k] * scipy.stats.multivariate_normal(mu[k], cov[k]).pdf(x[1]) for k in range(2)))
    np.testing.assert_allclose(model.log_prob(x)[1], ref, rtol=1e-10)
    mean = w @ mu
    second = sum(w[k] * (cov[k] + np.outer(mu[k], mu[k])) for k in range(2)) - np.outer(mean, mean)
    pm = model.param_metrics(GAUSS2)
    assert pm["trace_cov"][0] == pytest.approx(np.trace(second))
    assert pm["mean_sq_error"][0] == pytest.approx(((mean - GAUSS2.truth["mean"]) ** 2).sum())


def test_gmm_more_components_than_points_is_a_config_error():
    with pytest.raises(ConfigError, match="model.components = 8: expected at most the training-set size 5"):
        GMMFamily(GMMFamily.Options(), GAUSS2).fit(gaussian_data(2, 5), Streams(0, 2, 0, "fit"))


def test_training_sets_too_small_are_refused_before_anything_runs(tmp_path):
    """A grid point whose loop would starve EM (or the unbiased estimator) fails at build time: no store."""
    import autophagy

    cfg = {"seed": 0, "replicates": 2, "generations": 2, "data": {"source": "mixture"},
           "model": {"family": "gmm", "components": 10}, "loop": {"policy": "replace", "n_real": 50},
           "grid": {"loop.n_synthetic": [50, 5]}}
    with pytest.raises(ConfigError, match=r"^model.components = 10: expected at most the smallest training set of this loop \(5 points\)"):
        autophagy.run(cfg, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    gauss = {"seed": 0, "replicates": 2, "generations": 2, "data": {"source": "gaussian", "dim": 1},
             "model": {"family": "gaussian", "estimator": "unbiased"}, "loop": {"policy": "replace", "n_real": 5, "n_synthetic": 1}}
    with pytest.raises(ConfigError, match="^model.estimator"):
        autophagy.run(gauss)


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")
def test_gmm_em_failure_is_a_config_error():
    const = np.ones((1, 20, 2))
    fam = GMMFamily(GMMFamily.Options(components=2, reg_covar=0.0), GAUSS2)
    with pytest.raises(ConfigError, match="^model.reg_covar = 0.0: expected a larger reg_covar"):
        fam.fit(const, Streams(0, 1, 0, "fit"))


# ------------------------------------------------------------------ categorical
def test_categorical_smoothed_counts_exact():
    tokens = np.array([[0, 0, 1, 3], [2, 2, 2, 2]])[..., None]
    model = CategoricalFamily(CategoricalFamily.Options(smoothing=0.5), SourceInfo(dim=1, n_categories=5)).fit(tokens, None)
    np.testing.assert_allclose(model.probs, (np.array([[2, 1, 0, 1, 0], [0, 0, 4, 0, 0]]) + 0.5) / (4 + 2.5))


def test_categorical_sharpening_probabilities():
    """bias λ samples from p^(1/λ)/Σp^(1/λ); zero-probability tokens never appear."""
    p = np.array([0.1, 0.0, 0.2, 0.3, 0.4, 0.0])
    lam, m = 0.5, 20000
    model = CategoricalModel(np.tile(p, (4, 1)))
    x = model.sample(m, Streams(9, 4, 1, "sample"), bias=lam)[..., 0]
    q = p ** 2 / (p ** 2).sum()
    freq = np.stack([np.bincount(row, minlength=6) for row in x]) / m
    assert freq[:, [1, 5]].sum() == 0
    assert_close(freq, q, np.sqrt(q * (1 - q) / m) + 1e-12)


def test_categorical_sharpen_underflow_and_metrics():
    probs = np.array([[1e-300, 1 - 2e-300, 1e-300, 0.0], [0.25, 0.25, 0.5, 0.0]])
    q = sharpen(probs, 0.01)
    assert np.isfinite(q).all() and np.allclose(q.sum(1), 1) and q[0, 1] == 1.0 and q[1, 2] == pytest.approx(1.0)
    model = CategoricalModel(probs[1:])
    pm = model.param_metrics(SourceInfo(dim=1, truth={"probs": [0.5, 0.5]}))
    assert pm["gini_simpson"][0] == pytest.approx(1 - 0.375)
    assert pm["support_size"][0] == 3 and pm["tv"][0] == pytest.approx(0.5 * (0.25 + 0.25 + 0.5))
    assert pm["entropy"][0] == pytest.approx(-(0.5 * math.log(0.25) + 0.5 * math.log(0.5)))
    lp = model.log_prob(np.array([[[2], [3], [7]]]))
    assert lp[0, 0] == pytest.approx(math.log(0.5)) and lp[0, 1] == -np.inf and lp[0, 2] == -np.inf


def test_categorical_token_out_of_range_is_a_config_error():
    fam = CategoricalFamily(CategoricalFamily.Options(categories=3), SourceInfo(dim=1, n_categories=3))
    with pytest.raises(ConfigError, match="model.categories = 3: expected at least 5"):
        fam.fit(np.array([[[0], [4]]]), None)


# ------------------------------------------------------------------ linear regression
def _fixed_design(R, n=12, d=3, sigma=0.5, seed=2):
    X = np.tile(Streams(seed, 1, -1, "x").normal(n, d), (R, 1, 1))
    w = np.array([1.0, -2.0, 0.5])
    y = X @ w + sigma * Streams(seed, R, -1, "y").normal(n)
    return np.concatenate([X, y[..., None]], -1), X[0], w


def test_regression_ols_error_oracle_and_replace_chain():
    """E||ŵ − w*||² = σ² tr((XᵀX)⁻¹), and (g + 1)σ² tr((XᵀX)⁻¹) after g replace steps (Gerstgrasser et al. 2024)."""
    R, sigma = 4000, 0.5
    data, X, w = _fixed_design(R, sigma=sigma)
    info = SourceInfo(dim=4, kind="regression", truth={"w": w, "noise_std": sigma})
    family = RegressionFamily(RegressionFamily.Options(), info)
    unit = sigma ** 2 * np.trace(np.linalg.inv(X.T @ X))
    model = family.fit(data, None)
    for g in range(3):
        got, se = mean_se(model.param_metrics(info)["test_error"])
        assert_close(got, (g + 1) * unit, se)
        model = family.fit(model.sample(12, Streams(1, R, g + 1, "sample")), None)


def test_regression_residual_noise_estimate_and_sampling():
    R, sigma, lam = 4000, 0.5, 0.6
    data, X, w = _fixed_design(R, sigma=sigma)
    info = SourceInfo(dim=4, kind="regression", truth={"w": w})  # no noise_std: estimated from residuals
    model = RegressionFamily(RegressionFamily.Options(), info).fit(data, None)
    got, se = mean_se(model.param_metrics(info)["noise_var"])
    assert_close(got, sigma ** 2, se)
    x = model.sample(30, Streams(5, R, 1, "sample"), bias=lam)  # 30 > n = 12: the design is tiled
    np.testing.assert_array_equal(x[:, :, :3], np.tile(X, (R, 3, 1))[:, :30])
    z = (x[..., 3] - np.einsum("rmd,rd->rm", x[..., :3], model.w)) / (math.sqrt(lam) * model.sigma[:, None])
    assert_close(z.mean(), 0.0, 1 / math.sqrt(z.size))
    assert_close(z.var(), 1.0, math.sqrt(2 / z.size))
    ref = scipy.stats.norm.logpdf(x[1, :, 3], x[1, :, :3] @ model.w[1], model.sigma[1])
    np.testing.assert_allclose(model.log_prob(x)[1], ref)
    fixed = RegressionFamily(RegressionFamily.Options(noise_std=2.0), info).fit(data[:3], None)
    np.testing.assert_array_equal(fixed.param_metrics(info)["noise_var"], [4.0] * 3)


# ------------------------------------------------------------------ lifted single-dataset models
def test_lifted_warm_start_copies_previous_instances():
    fam = Lifted(ToyGaussian, {}, GAUSS2)
    data = gaussian_data(3, 20)
    first = fam.fit(data, Streams(0, 3, 0, "fit"))
    second = fam.fit(data, Streams(0, 3, 1, "fit"), init=first)
    assert [i.fits for i in second.instances] == [2, 2, 2] and [i.fits for i in first.instances] == [1, 1, 1]
    np.testing.assert_array_equal(second.param_metrics(GAUSS2)["fits"], [2.0, 2.0, 2.0])


def test_lifted_wrong_sample_shape_and_missing_log_prob():
    class Flat(ToyGaussian):
        log_prob = None

        def sample(self, m, rng, bias=1.0):
            return rng.standard_normal(m)

    model = Lifted(Flat, {}, GAUSS2).fit(gaussian_data(2, 10), Streams(0, 2, 0, "fit"))
    assert isinstance(model, LiftedModel) and not hasattr(model, "log_prob")
    with pytest.raises(ConfigError, match=r"model.family = '.*Flat'.*\(m, d\) = \(5, 2\); got shape \(5,\)"):
        model.sample(5, Streams(0, 2, 1, "sample"))


def test_one_dimensional_fast_scatter_is_accurate_even_far_from_zero():
    """Σx² − n x̄² cancels catastrophically when |x̄| ≫ sd; those rows must fall back to the centred sum."""
    from autophagy.models.gaussian import _scatter_1d

    g = np.random.default_rng(0)
    offsets = np.array([0.0, 1.0, 1e3, 1e6, -1e8])[:, None]
    x = offsets + 1e-3 * g.standard_normal((5, 50))
    exact = ((x - x.mean(1, keepdims=True)) ** 2).sum(1)
    np.testing.assert_allclose(_scatter_1d(x, x.mean(1)), exact, rtol=1e-9)
    const = np.full((2, 10), 3.0)
    np.testing.assert_array_equal(_scatter_1d(const, const.mean(1)), 0.0)


def test_kde_rule_bandwidth_on_constant_data_is_a_config_error():
    from autophagy.models.kde import bandwidth

    data = np.concatenate([gaussian_data(1, 10), np.ones((1, 10, 2))])
    with pytest.raises(ConfigError, match=r"^model.bandwidth = 'scott': expected a fixed positive number: .*replicate 1"):
        bandwidth(data, "scott")
