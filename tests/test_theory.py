"""autophagy.theory: every closed form against exact arithmetic and against the simulator.

Simulator checks compare the mean over R replicates with the prediction, tolerance 5 Monte-Carlo
standard errors (std/√R) because each check makes many comparisons (generations × metrics).
"""
import itertools
import math

import numpy as np
import pytest
from scipy.stats import multinomial

import autophagy
from autophagy import theory
from autophagy.theory import categorical as wf
from autophagy.theory.moments import MomentSpec, propagate

Z = 5.0
COV2 = [[2.0, 0.5], [0.5, 1.0]]


def gauss(policy="replace", R=2000, G=5, dim=2, cov=None, family=None, bias=0.8, **loop):
    cov = COV2 if cov is None and dim == 2 else cov or np.eye(dim).tolist()
    return {"seed": 7, "replicates": R, "generations": G,
            "data": {"source": "gaussian", "dim": dim, "mean": [1.0] * dim, "cov": cov},
            "model": family or {"family": "gaussian", "estimator": "mle"},
            "loop": {"policy": policy, "n_real": 8, "n_synthetic": 12, **loop}, "sampling": {"bias": bias}}


def assert_agrees(cfg, z=Z):
    res = autophagy.run(cfg)
    cmp = theory.compare(cfg, res.metrics)
    assert len(cmp) > 0
    bad = cmp[np.abs(cmp.z) > z]
    assert bad.empty, bad.to_string()
    return cmp, res


def per_generation(res, metric):
    df = res.metrics[res.metrics.metric == metric]
    return df.pivot(index="replicate", columns="generation", values="value").to_numpy()


# --------------------------------------------------------------------------- exact arithmetic
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize("bias", [1.0, 0.6])
def test_moment_engine_reproduces_replace_closed_forms(estimator, bias):
    m = propagate(MomentSpec(5, 9, 7, 6, 3.0, estimator=estimator, bias=bias))
    np.testing.assert_allclose(m["trace_cov"], theory.replace_trace(3.0, 5, 7, 6, estimator, bias), rtol=1e-12)
    np.testing.assert_allclose(m["mean_sq_error"], theory.replace_mean_sq_error(3.0, 5, 7, 6, estimator, bias), rtol=1e-12)
    if estimator == "unbiased" and bias == 1.0:  # Σ is a martingale: E tr Σ_g = t* exactly
        np.testing.assert_allclose(m["trace_cov"], 3.0, rtol=1e-12)


def test_bertrand_alpha_is_the_gamma_function_factor():
    for n in (2, 3, 10, 50):
        alpha = math.sqrt(2 / (n - 1)) * math.gamma(n / 2) / math.gamma((n - 1) / 2)
        assert theory.bertrand_alpha(n, "unbiased") == pytest.approx(alpha, rel=1e-12)
        assert alpha < 1
    np.testing.assert_allclose(theory.replace_std(1.0, 10, 10, 4, "unbiased"),
                               theory.bertrand_alpha(10) ** np.arange(1, 6), rtol=1e-12)


def test_kde_replace_closed_form_matches_the_moment_engine():
    m = propagate(MomentSpec(6, 6, 8, 50, 2.5, family="kde", h=0.3, dim=2, bias=0.7))
    np.testing.assert_allclose(m["trace_cov"], theory.kde_replace_trace(2.5, 0.3, 2, 6, 8, 50, 0.7), rtol=1e-12)
    np.testing.assert_allclose(m["mean_sq_error"], theory.kde_replace_mean_sq_error(2.5, 0.3, 2, 6, 8, 50, 0.7), rtol=1e-12)
    limit = 0.7 * 0.09 * 2 * (8 - 1) + 0.09 * 2  # no collapse: the kernel refills what resampling removes
    assert m["trace_cov"][-1] == pytest.approx(limit, rel=1e-2)


@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_fresh_and_augment_recursions_match_the_moment_engine(estimator):
    fresh = propagate(MomentSpec(4, 6, 9, 8, 2.0, policy="fresh", estimator=estimator, bias=0.7))
    traj = theory.fresh_trajectory(4, 6, 9, 8, 0.7, estimator, t_star=2.0)
    np.testing.assert_allclose(np.c_[fresh["trace_cov"], fresh["mean_sq_error"]], traj, rtol=1e-12)
    aug = propagate(MomentSpec(6, 6, 9, 40, 2.0, policy="augment", estimator=estimator, bias=0.7))
    A, b = theory.augment_recursion(6, 9, 0.7, estimator, 2.0)
    v = np.array([aug["trace_cov"][0], aug["mean_sq_error"][0]])
    for g in range(1, 41):
        v = A @ v + b
        np.testing.assert_allclose(v, [aug["trace_cov"][g], aug["mean_sq_error"][g]], rtol=1e-10)
    np.testing.assert_allclose(v, theory.augment_fixed_point(6, 9, 0.7, estimator, 2.0), rtol=1e-6)


def test_fresh_fixed_point_is_independent_of_n_initial():
    T, M = theory.fresh_fixed_point(6, 9, 0.7, "mle", 2.0)
    A, b = theory.fresh_recursion(6, 9, 0.7, "mle", 2.0)
    np.testing.assert_allclose(A @ [T, M] + b, [T, M], rtol=1e-12)
    assert max(abs(np.linalg.eigvals(A))) < 1
    for n0 in (2, 6, 500):
        np.testing.assert_allclose(theory.fresh_trajectory(n0, 6, 9, 80, 0.7, "mle", 2.0)[-1], [T, M], rtol=1e-9)
    lim = theory.fresh_limit_moments(6, 9, 0.7, "mle")
    np.testing.assert_allclose([lim[1], lim[0]], theory.fresh_fixed_point(6, 9, 0.7, "mle", 1.0), rtol=1e-10)


def test_fourth_moment_recursion_contains_the_second_moment_recursion():
    m = theory.fresh_fourth_moments(5, 10, 20, 10, 0.8, "unbiased")
    np.testing.assert_allclose(m[:, [1, 0]], theory.fresh_trajectory(5, 10, 20, 10, 0.8, "unbiased"), rtol=1e-12)
    assert np.all(m[:, 2] >= m[:, 0] ** 2) and np.all(m[:, 4] >= m[:, 1] ** 2)  # Jensen on each chain


@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_augment_conditional_fixed_point_averages_to_the_unconditional_one(estimator):
    n_r, n_s, t = 7, 11, 3.0
    T1, M1 = theory.augment_conditional_fixed_point((n_r - 1) * t, t / n_r, n_r, n_s, 0.6, estimator)
    T2, M2 = theory.augment_fixed_point(n_r, n_s, 0.6, estimator, t)
    assert T1 == pytest.approx(T2, rel=1e-10) and M1 == pytest.approx(M2, rel=1e-10)


def test_effective_sample_size_inverts_the_real_only_distance_and_has_mad_threshold():
    for est in ("mle", "unbiased"):
        for n in (3.0, 10.0, 57.5):
            D = theory.real_only_distance(n, est)
            ne = (1 + math.sqrt(1 - D / 2)) / D if est == "mle" else (D + 2 + math.sqrt(D * D + 4)) / (2 * D)
            assert ne == pytest.approx(n, rel=1e-10)
    assert theory.admissible_synthetic(10, 1.0) == math.inf
    thresholds = [theory.admissible_synthetic(10, lam) for lam in (0.9, 0.7, 0.5)]
    assert thresholds[0] > thresholds[1] > thresholds[2] > 0  # more bias, fewer admissible synthetic points (MAD §5)
    k = thresholds[1]
    ne = theory.effective_sample_size(10, np.array([1, k, k + 1]), 0.7)
    assert ne[0] > 10 and ne[1] >= 10 > ne[2]


def test_wright_fisher_gini_decay_and_engine_agree_exactly():
    p = [0.5, 0.3, 0.15, 0.05]
    exact = wf.replace_metrics(p, 12, 9, 8)["gini_simpson"]
    np.testing.assert_allclose(exact, theory.gini_simpson_decay(p, 12, 9, 8), rtol=1e-10)
    engine = propagate(MomentSpec(12, 12, 9, 8, 1 - np.sum(np.square(p)), family="kde", h=0.0))["trace_cov"]
    np.testing.assert_allclose(exact, engine, rtol=1e-10)


def _compositions(n, K):
    for cut in itertools.combinations(range(n + K - 1), K - 1):
        parts = np.diff((-1, *cut, n + K - 1)) - 1
        yield tuple(int(x) for x in parts)


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_wright_fisher_marginals_match_the_full_multinomial_chain(alpha):
    """The per-category marginal chain gives the same expectations as the full K-category chain."""
    p, n0, n, G = np.array([0.5, 0.3, 0.2]), 4, 5, 3
    K = p.size
    probs = lambda c, m: (np.asarray(c) + alpha) / (m + K * alpha)  # noqa: E731
    states0 = list(_compositions(n0, K))
    dist = {s: multinomial.pmf(s, n0, p) for s in states0}
    states = list(_compositions(n, K))
    expected = wf.replace_metrics(p, n0, n, G, alpha)
    for g in range(G + 1):
        m = n0 if g == 0 else n
        f = {s: probs(s, m) for s in dist}
        gini = sum(w * (1 - (f[s] ** 2).sum()) for s, w in dist.items())
        supp = sum(w * (f[s] > 0).sum() for s, w in dist.items())
        tv = sum(w * 0.5 * np.abs(f[s] - p).sum() for s, w in dist.items())
        assert gini == pytest.approx(expected["gini_simpson"][g], rel=1e-10)
        assert supp == pytest.approx(expected["support_size"][g], rel=1e-10)
        assert tv == pytest.approx(expected["tv"][g], rel=1e-10)
        dist = {t: sum(w * multinomial.pmf(t, n, f[s]) for s, w in dist.items()) for t in states}


def test_wright_fisher_fixation_and_absorption():
    n = 30
    np.testing.assert_allclose(wf.fixation_probability(n), np.arange(n + 1) / n, atol=1e-10)  # Kimura 1962
    t = wf.absorption_time(n)
    P = wf.transition_matrix(n, n)
    np.testing.assert_allclose(t[1:-1], 1 + P[1:-1, 1:-1] @ t[1:-1], rtol=1e-10)  # first-step analysis
    assert t[n // 2] == pytest.approx(wf.kimura_absorption_time(0.5, n), rel=0.1)  # diffusion approximation
    assert wf.fixation_probability(n, bias=0.7)[20] > 20 / n  # sharpening favours the majority


def test_regression_accumulate_is_bounded_by_pi_squared_over_six():
    tau = theory.design_trace_inverse(20, 3, 2.0)
    assert tau == pytest.approx(3 / (4 * 16))
    acc = theory.expected_test_error("accumulate", 30, tau, 0.5)
    np.testing.assert_allclose(acc / acc[0], np.cumsum(1 / np.arange(1, 32) ** 2), rtol=1e-12)
    assert acc.max() < theory.accumulate_bound(acc[0])
    rep = theory.expected_test_error("replace", 30, tau, 0.5)
    np.testing.assert_allclose(rep, acc[0] * np.arange(1, 32), rtol=1e-12)


def test_stability_conditions():
    alpha, L, eps = 2.0, 1.0, 0.5
    C = 1 + L * eps / alpha
    for lam in np.linspace(0.01, 0.79, 40):
        assert (theory.bertrand_rate(lam, alpha, L, eps) < 1) == theory.bertrand_stable(lam, alpha, L, eps)
        for gamma in (0.0, 1.0, 5.0):
            assert (theory.gillman_rate(lam, gamma, alpha, L, eps) < 1) == theory.gillman_stable(lam, gamma, alpha, L, eps)
            assert theory.reference_mix_factor(lam, gamma) <= theory.gillman_rate(lam, gamma, alpha, L, eps)
    assert theory.bertrand_max_ratio(alpha, L, eps) == pytest.approx(0.5 / C)
    assert theory.gillman_max_ratio(0.0, alpha, L, eps) == pytest.approx(theory.bertrand_max_ratio(alpha, L, eps))
    assert theory.gillman_max_ratio(1e9) == pytest.approx(1.0)
    assert theory.finite_sample_mean_slope(10, 30, 1.0) == pytest.approx(theory.reference_mix_factor(3.0, 1.0))
    # pinned values (C = 1): ρ(1/4) = (1/4)/(3/4) = 1/3; with γ = 1 half of it; κ(1/4, 1) = (1/4)/((5/4)·2) = 1/10
    assert theory.bertrand_rate(0.25, 1.0, 0.0, 0.0) == pytest.approx(1 / 3)
    assert theory.gillman_rate(0.25, 1.0, 1.0, 0.0, 0.0) == pytest.approx(1 / 6)
    assert theory.reference_mix_factor(0.25, 1.0) == pytest.approx(0.1)
    assert theory.bertrand_rate(0.5, 1.0, 0.0, 0.0) == pytest.approx(1.0) and not theory.bertrand_stable(0.5, 1.0, 0.0, 0.0)
    assert theory.bertrand_rate(1.0, 1.0, 0.0, 0.0) == math.inf  # λ_B C ≥ 1: no guarantee at all
    assert theory.gillman_stable(0.6, 1.0, 1.0, 0.0, 0.0) and not theory.gillman_stable(0.7, 1.0, 1.0, 0.0, 0.0)  # 2/3
    # full correction γ = ∞: the limits (threshold 1, rate 0 where ρ is finite, κ = 0)
    inf = math.inf
    assert theory.gillman_max_ratio(inf) == 1.0 and theory.gillman_stable(0.9, inf, 1.0, 0.0, 0.0)
    assert theory.gillman_rate(0.4, inf, 1.0, 0.0, 0.0) == 0.0 and theory.gillman_rate(1.2, inf, 1.0, 0.0, 0.0) == inf
    assert theory.reference_mix_factor(2.0, inf) == 0.0


def test_contraction_table_for_gaussian_reference_mix():
    cfg = {"seed": 0, "replicates": 2, "generations": 1, "data": {"source": "gaussian", "dim": 1},
           "model": {"family": "gaussian"}, "loop": {"policy": "augment", "n_real": 40, "n_synthetic": 10},
           "correction": {"method": "reference-mix", "gamma": 1.0}, "grid": {"correction.gamma": [1.0, math.inf]}}
    table = theory.contraction(cfg)
    assert list(table.gamma) == [1.0, math.inf] and np.allclose(table.lam_B, 0.25)
    np.testing.assert_allclose(table.kappa, [0.1, 0.0])
    np.testing.assert_allclose(table.gillman_rate, [1 / 6, 0.0])
    assert theory.contraction({**cfg, "loop": {"policy": "replace", "n_real": 40}}).empty  # no λ_B without real data


def test_reference_mix_factor_is_the_slope_of_the_finite_sample_augment_loop():
    """E⟨μ_g − μ*, x̄_r − μ*⟩ relaxes to its limit by exactly κ = λ_B/((1+λ_B)(1+γ)) per generation."""
    from autophagy.theory.moments import Gram, Group, _fit, _synthetic

    n_r, n_s, gamma, t_star = 50, 150, 1.0, 1.0
    spec = MomentSpec(n_r, n_r, n_s, 0, t_star, policy="augment")
    gram = Gram(64)
    real = Group(n_r, gram.new(t_star / n_r), (n_r - 1) * t_star)
    model, c = _fit(spec, gram, [real]), []
    t = gamma / (1 + gamma)
    for _ in range(8):
        synth = _synthetic(gram, n_s, [1 - t, t], [model.mean, gram.zero()], [model.sample_trace, t_star])
        model = _fit(spec, gram, [real, synth])
        c.append(gram.inner(model.mean, real.mean))
    c = np.array(c)
    limit = (n_r / (n_r + n_s)) * (t_star / n_r) / (1 - theory.finite_sample_mean_slope(n_r, n_s, gamma))
    np.testing.assert_allclose((c[1:] - limit) / (c[:-1] - limit), theory.reference_mix_factor(n_s / n_r, gamma), rtol=1e-8)


def test_predict_refuses_configurations_without_closed_form():
    base = gauss()
    with pytest.raises(theory.NoClosedForm, match="gmm"):
        theory.predict({**base, "model": {"family": "gmm"}})
    with pytest.raises(theory.NoClosedForm, match="bandwidth"):
        theory.predict({**base, "model": {"family": "kde", "bandwidth": "scott"}})
    with pytest.raises(theory.NoClosedForm, match="cherry-picking"):
        theory.predict({**base, "curation": {"method": "top-k"}})
    cat = {"data": {"source": "categorical", "probs": [0.5, 0.3, 0.2]}, "model": {"family": "categorical"},
           "loop": {"policy": "augment"}, "sampling": {"bias": 0.5}}
    with pytest.raises(theory.NoClosedForm, match="sampling.bias"):
        theory.predict(cat)
    assert isinstance(theory.NoClosedForm("x"), autophagy.AutophagyError)
    pred = theory.predict(gauss(dim=2))  # full covariance, d = 2: W2 left out, with the reason
    assert "param.w2_sq" in pred.attrs["omitted"] and "param.w2_sq" not in set(pred.metric)
    assert list(pred.columns[:3]) == ["generation", "metric", "expected"]


# --------------------------------------------------------------------------- against the simulator
def test_compare_flags_a_wrong_prediction():
    cfg = gauss(R=500, G=3)
    res = autophagy.run(cfg)
    metrics = res.metrics.copy()
    hit = (metrics.metric == "param.trace_cov") & (metrics.generation == 3)
    metrics.loc[hit, "value"] *= 1.3
    cmp = theory.compare(cfg, metrics)
    flagged = cmp[cmp.flag]
    assert set(zip(flagged.metric, flagged.generation)) == {("param.trace_cov", 3)}


@pytest.mark.parametrize("estimator,covariance,dim,stats", [("mle", "full", 1, "auto"), ("unbiased", "full", 1, "off"),
                                                             ("mle", "full", 2, "auto"), ("unbiased", "diag", 2, "off"),
                                                             ("mle", "diag", 3, "auto")])
def test_gaussian_replace_all_metrics(estimator, covariance, dim, stats):
    cov = {1: [[2.0]], 2: [[2.0, 0.0], [0.0, 0.5]] if covariance == "diag" else COV2,
           3: [[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]]}[dim]  # d = 3: correlated, so no W2
    cfg = gauss(R=3000, G=6, dim=dim, cov=cov, family={"family": "gaussian", "estimator": estimator, "covariance": covariance},
                n_initial=12, n_real=7, n_synthetic=6, sufficient_stats=stats)
    cmp, res = assert_agrees(cfg)
    expected = {"param.trace_cov", "param.mean_sq_error", "param.logdet_cov"}
    if dim == 1 or (covariance == "diag" and dim == 2):
        expected.add("param.w2_sq")
    assert set(cmp.metric) == expected
    if dim == 1:  # Bertrand et al.'s Prop. 1: E σ_g, with the Γ-function factor
        s = np.sqrt(per_generation(res, "param.trace_cov"))
        e = theory.replace_std(math.sqrt(2.0), 12, 6, 6, estimator, 0.8)
        assert np.all(np.abs(s.mean(0) - e) < Z * s.std(0, ddof=1) / math.sqrt(len(s)))


@pytest.mark.parametrize("estimator,bias", [("mle", 1.0), ("mle", 0.7), ("unbiased", 0.7)])
def test_w2_lower_bound_holds_for_a_full_covariance(estimator, bias):
    """Jensen's bound (tr A^½ concave, E Σ_g = f_g Σ*): E W₂² ≥ E||μ_g − μ*||² + t*(1 − √f_g)²,
    f_g = a(n_0)(λ a(n_s))^g.

    d = 2 with a correlated Σ* (no closed form for E W₂²): the simulated mean sits above the bound at every
    generation (up to 4 s.e.). So that the check has teeth, the bound must carry more than the mean's random
    walk (its Jensen term t*(1 − √f_g)² is a quarter of t* by generation G) and lie within a factor 2 of the
    measurement; and in d = 1, where E W₂² is exact, the gap must be exactly 2t*(√f_g − E σ_g/σ*) ≥ 0.
    """
    n0, ns, G, R = 10, 6, 8, 2000
    t_star = float(np.trace(COV2))
    cfg = gauss(R=R, G=G, bias=bias, family={"family": "gaussian", "estimator": estimator},
                n_initial=n0, n_synthetic=ns)
    cfg["metrics"] = {"tradeoff": False}
    w2 = per_generation(autophagy.run(cfg), "param.w2_sq")
    assert w2.shape == (R, G + 1)
    bound = theory.w2_lower_bound(t_star, n0, ns, G, estimator, bias)
    mean, se = w2.mean(0), w2.std(0, ddof=1) / math.sqrt(R)
    assert np.all(mean >= bound - 4 * se), (mean, bound, se)
    jensen = bound - theory.replace_mean_sq_error(t_star, n0, ns, G, estimator, bias)
    assert np.all(jensen >= 0) and jensen[-1] > 0.25 * t_star, jensen  # not trivially 0 (nor just the mean's walk)
    assert np.all(bound > 0.5 * mean), bound / mean  # informative: a bound off by a factor 2 would fail above
    sigma = 1.5  # d = 1: exact E W₂² minus the bound = 2t*(√f_g − E σ_g/σ*), positive for every g
    gap = (theory.replace_w2_sq([sigma], n0, ns, G, estimator, bias)
           - theory.w2_lower_bound(sigma ** 2, n0, ns, G, estimator, bias))
    f = theory.replace_trace(1.0, n0, ns, G, estimator, bias)
    np.testing.assert_allclose(gap, 2 * sigma ** 2 * (np.sqrt(f) - theory.replace_std(1.0, n0, ns, G, estimator, bias)),
                               rtol=1e-10)
    assert np.all(gap > 0)


@pytest.mark.parametrize("policy", ["replace", "augment", "fresh", "accumulate", "accumulate-subsample"])
@pytest.mark.parametrize("variant", ["plain", "all", "reference-mix", "fitted-reference", "kde", "control", "random-k"])
def test_moment_predictions_every_policy(policy, variant):
    cfg = gauss(policy, R=1500, G=5)
    if variant == "all":
        cfg["loop"]["synthetic_from"] = "all"
    elif variant == "reference-mix":
        cfg["correction"] = {"method": "reference-mix", "gamma": 1.0}
    elif variant == "fitted-reference":
        cfg["correction"] = {"method": "reference-mix", "gamma": 0.5, "reference": "fitted", "n_reference": 20}
    elif variant == "kde":
        cfg["model"] = {"family": "kde", "bandwidth": 0.4}
    elif variant == "control":
        cfg["loop"]["control"] = True
    elif variant == "random-k":  # a uniform subset of iid candidates is iid: predicted as no curation
        cfg["curation"] = {"method": "random-k", "oversample": 3}
    cfg["metrics"] = {"tradeoff": False}  # param.* only: no sample-based metrics at R = 1500
    cmp, _ = assert_agrees(cfg)
    assert {"param.trace_cov", "param.mean_sq_error"} <= set(cmp.metric)
    if variant == "control":
        assert cmp.run_id.nunique() == 2


def test_fresh_loop_limit_is_independent_of_n_initial():
    """MAD §5: the Fisher–Rao distance's expectation follows the exact fourth-moment recursion and forgets n_0."""
    ends = []
    for n0 in (3, 60):
        cfg = gauss("fresh", R=4000, G=12, dim=1, cov=[[4.0]], n_real=6, n_initial=n0, n_synthetic=10)
        cfg["sampling"]["bias"] = 0.7
        res = autophagy.run(cfg)
        D = per_generation(res, "param.mean_sq_error") / 4 + (per_generation(res, "param.trace_cov") / 4 - 1) ** 2 / 2
        e = theory.fisher_distance(theory.fresh_fourth_moments(n0, 6, 10, 12, 0.7))
        se = D.std(0, ddof=1) / math.sqrt(len(D))
        assert np.all(np.abs(D.mean(0) - e) < Z * se)
        ends.append((D[:, -1].mean(), se[-1]))
    limit = theory.fisher_distance(theory.fresh_limit_moments(6, 10, 0.7))
    for mean, se in ends:
        assert abs(mean - limit) < Z * se


@pytest.mark.parametrize("probs,bias,smoothing,policy", [
    ([0.5, 0.3, 0.15, 0.05], 1.0, 0.0, "replace"), ([0.5, 0.3, 0.15, 0.05], 1.0, 0.5, "replace"),
    ([0.7, 0.3], 0.6, 0.0, "replace"), ([0.5, 0.3, 0.15, 0.05], 1.0, 0.0, "augment"),
    ([0.5, 0.3, 0.15, 0.05], 1.0, 0.0, "accumulate-subsample")])
def test_categorical_predictions(probs, bias, smoothing, policy):
    cfg = {"seed": 2, "replicates": 2000, "generations": 6, "data": {"source": "categorical", "probs": probs},
           "model": {"family": "categorical", "smoothing": smoothing},
           "loop": {"policy": policy, "n_real": 10, "n_synthetic": 8}, "sampling": {"bias": bias}}
    cmp, _ = assert_agrees(cfg)
    assert ("param.support_size" in set(cmp.metric)) == (policy == "replace")


def test_wright_fisher_fixation_probabilities_equal_initial_frequencies():
    """After absorption p = e_i, so tv = 1 − p*_i reveals which category took over; P(i) = p*_i."""
    p = np.array([0.6, 0.3, 0.1])
    cfg = {"seed": 5, "replicates": 2000, "generations": 150, "data": {"source": "categorical", "probs": p.tolist()},
           "model": {"family": "categorical"}, "loop": {"policy": "replace", "n_real": 8}}
    res = autophagy.run(cfg)
    assert np.all(per_generation(res, "param.support_size")[:, -1] == 1)
    tv = per_generation(res, "param.tv")[:, -1]
    for i in range(3):
        hits = np.isclose(tv, 1 - p[i])
        assert abs(hits.mean() - p[i]) < Z * math.sqrt(p[i] * (1 - p[i]) / len(tv))


def test_wright_fisher_expected_absorption_time():
    n, p1 = 10, 0.4
    cfg = {"seed": 6, "replicates": 2000, "generations": 200, "data": {"source": "categorical", "probs": [p1, 1 - p1]},
           "model": {"family": "categorical"}, "loop": {"policy": "replace", "n_real": n}}
    support = per_generation(autophagy.run(cfg), "param.support_size")
    assert np.all(support[:, -1] == 1)
    hit = np.argmax(support == 1, axis=1)  # first generation with one category left
    expected = wf.loop_absorption_time(p1, n)
    assert abs(hit.mean() - expected) < Z * hit.std(ddof=1) / math.sqrt(len(hit))


@pytest.mark.parametrize("policy", ["replace", "augment", "fresh", "accumulate"])
def test_regression_predictions(policy):
    cfg = {"seed": 8, "replicates": 2000, "generations": 6,
           "data": {"source": "linear-regression", "dim": 3, "noise_std": 0.5},
           "model": {"family": "linear-regression"}, "loop": {"policy": policy, "n_real": 12}, "sampling": {"bias": 1.0}}
    cmp, _ = assert_agrees(cfg)
    assert "param.test_error" in set(cmp.metric)


@pytest.mark.parametrize("bias,noise_std", [(0.5, None), (1.0, 0.8)])
def test_regression_bias_and_model_noise(bias, noise_std):
    model = {"family": "linear-regression", **({"noise_std": noise_std} if noise_std else {})}
    cfg = {"seed": 9, "replicates": 2000, "generations": 5,
           "data": {"source": "linear-regression", "dim": 2, "noise_std": 0.5, "design_std": 1.5},
           "model": model, "loop": {"policy": "accumulate", "n_real": 9}, "sampling": {"bias": bias}}
    assert_agrees(cfg)


def test_regression_replace_with_estimated_noise():
    """σ re-estimated from residuals each generation: E||ŵ_g − w*||² = σ²τ Σ_k λ^k (driving the family directly)."""
    from autophagy.models.regression import RegressionFamily
    from autophagy.protocols import SourceInfo
    from autophagy.rng import Streams

    R, n, d, sigma, lam, G = 3000, 10, 2, 0.7, 0.6, 4
    fam = RegressionFamily(RegressionFamily.Options(), SourceInfo(dim=d + 1, kind="regression", truth={"n_features": d}))
    X = Streams(1, R, -1, "design").normal(n, d)
    y = X @ np.ones(d) + sigma * Streams(1, R, -1, "labels").normal(n)
    model = fam.fit(np.concatenate([X, y[..., None]], -1), None)
    errors = [((model.w - 1) ** 2).sum(-1)]
    for g in range(1, G + 1):
        model = fam.fit(model.sample(n, Streams(1, R, g, "sample"), bias=lam), None)
        errors.append(((model.w - 1) ** 2).sum(-1))
    errors = np.array(errors).T
    expected = theory.replace_test_error_estimated_noise(G, theory.design_trace_inverse(n, d), sigma, lam)
    assert np.all(np.abs(errors.mean(0) - expected) < Z * errors.std(0, ddof=1) / math.sqrt(R))


def test_mixture_source_moments_and_grid_runs():
    """Only μ* and tr Σ* of the source enter the moment predictions: a Gaussian mixture is predicted too."""
    cfg = {"seed": 10, "replicates": 1500, "generations": 4, "data": {"source": "mixture", "layout": "ring", "n_components": 4},
           "model": {"family": "gaussian"}, "loop": {"n_real": 10, "n_synthetic": 15},
           "grid": {"loop.policy": ["replace", "fresh"]}}
    cmp, _ = assert_agrees(cfg)
    assert cmp.run_id.nunique() == 2
    assert "param.logdet_cov" in theory.predict(cfg).attrs["omitted"]


def test_augment_conditional_on_one_real_set():
    """A single fixed real set shared by all replicates: the loop settles at the conditional fixed point."""
    from autophagy.models.gaussian import GaussianFamily
    from autophagy.protocols import SourceInfo
    from autophagy.rng import Streams

    R, n_r, n_s, lam, G = 3000, 6, 9, 0.7, 40
    info = SourceInfo(dim=2, truth={"mean": np.zeros(2), "cov": np.eye(2), "gaussian": True})
    fam = GaussianFamily(GaussianFamily.Options(estimator="unbiased"), info)
    real = np.broadcast_to(Streams(3, 1, -1, "real").normal(n_r, 2), (R, n_r, 2))
    model = fam.fit(real, None)
    for g in range(1, G + 1):
        model = fam.fit(np.concatenate([real, model.sample(n_s, Streams(3, R, g, "s"), bias=lam)], 1), None)
    c = real[0] - real[0].mean(0)
    T, M = theory.augment_conditional_fixed_point(float((c ** 2).sum()), float((real[0].mean(0) ** 2).sum()),
                                                  n_r, n_s, lam, "unbiased")
    tr = np.trace(model.cov, axis1=1, axis2=2)
    mse = (model.mean ** 2).sum(1)
    for values, expected in ((tr, T), (mse, M)):
        assert abs(values.mean() - expected) < Z * values.std(ddof=1) / math.sqrt(R)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["fresh", "augment"])
def test_stationary_moments_at_high_precision(policy):
    """Long runs with many replicates: the simulated loop sits at the closed-form fixed point."""
    cfg = gauss(policy, R=20000, G=60, dim=1, cov=[[3.0]], n_real=5, n_synthetic=20,
                family={"family": "gaussian", "estimator": "unbiased"})
    cfg["sampling"]["bias"] = 0.9
    res = autophagy.run(cfg)
    fixed = theory.fresh_fixed_point if policy == "fresh" else theory.augment_fixed_point
    T, M = fixed(5, 20, 0.9, "unbiased", 3.0)
    for metric, expected in (("param.trace_cov", T), ("param.mean_sq_error", M)):
        v = per_generation(res, metric)[:, -1]
        assert abs(v.mean() - expected) < 4 * v.std(ddof=1) / math.sqrt(len(v))


# --------------------------------------------------------------------------- batched recursions (issue 15)
def _batch_specs():
    """Every structure twice or more (schedules and plain sizes, both estimators), with different numbers."""
    out = []
    schedule = [6 + (g % 3) * 4 for g in range(9)]
    for policy, sf, fam, corr, ref, lineage, est, scheduled in itertools.product(
            ["replace", "augment", "fresh", "accumulate", "accumulate-subsample"], ["last", "all"],
            ["gaussian", "kde"], [0.0, 0.3], ["source", "fitted"], ["loop", "control"], ["mle", "unbiased"],
            [False, True]):
        if corr == 0.0 and ref == "fitted":
            continue
        synth = [0 if g == 3 and policy != "replace" else 5 + g % 2 for g in range(9)] if scheduled else 5
        for t_star, bias, h, dim, n_ref, scale in [(2.7, 1.0, 0.3, 3, 50, 1.0), (0.4, 0.7, 0.9, 1, 80, 2.0),
                                                   (11.0, 0.9, 0.1, 7, 20, 0.5)]:
            out.append(MomentSpec(n_initial=7, n_real=schedule if scheduled else 9, n_synthetic=synth,
                                  generations=8, trace_star=t_star, policy=policy, family=fam, estimator=est,
                                  bias=bias, h=h if fam == "kde" else 0.0, dim=dim, synthetic_from=sf,
                                  correction_t=corr * scale, reference=ref, n_reference=n_ref, lineage=lineage))
    return out


def test_propagate_many_is_propagate_bit_for_bit():
    """Specs that share a structure run as one batch; every result equals its own recursion exactly, in order."""
    from autophagy.theory.moments import _structure, propagate_many

    specs = _batch_specs()
    assert len({_structure(s) for s in specs}) < len(specs)  # some batches hold several specs
    for spec, got in zip(specs, propagate_many(specs)):
        want = propagate(spec)
        assert set(got) == set(want)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])


def test_predict_many_is_predict_for_each_config():
    import pandas as pd

    from autophagy.spec import specs_for

    grid = {**gauss("replace", R=4, G=6), "grid": {"sampling.bias": [1.0, 0.8, 0.5], "loop.policy": ["replace", "accumulate"]}}
    configs = [s.config for s in specs_for(grid)] + [gauss("augment", dim=1), gauss("fresh", dim=3, control=True)]
    configs += [{**gauss(), "model": {"family": "gmm"}}, {**gauss(), "loop": {"policy": "nope"}}]
    got = theory.predict_many(configs)
    for config, result in zip(configs, got):
        try:
            want = theory.predict(config)
        except Exception as err:  # noqa: BLE001
            assert type(result) is type(err) and str(result) == str(err)
            continue
        pd.testing.assert_frame_equal(result, want, check_exact=True)
        assert result.attrs == want.attrs
    assert isinstance(got[-2], theory.NoClosedForm)


def test_importing_theory_leaves_scipy_stats_alone():
    import subprocess
    import sys

    code = "import sys, autophagy.theory; print('scipy.stats' in sys.modules, 'scipy.special' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
