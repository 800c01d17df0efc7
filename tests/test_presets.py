"""The paper presets of configs/: every file builds, and each published phenomenon shows at reduced size.

Each test runs one preset through ``autophagy.run(path, overrides=[...])`` with fewer replicates and
generations (sometimes without its sample-based metrics, when only ``param.*`` metrics are asserted)
and checks the phenomenon its header documents, with fixed seeds and margins taken from Monte-Carlo
standard errors, or against ``autophagy.theory`` where a closed form exists (|z| < 5 over all
generations, metrics and grid points; a few |z| near 3 are expected among thousands of z's).
"""
import functools
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

import autophagy
from autophagy import theory
from autophagy.config import expand
from autophagy.loop import simulate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
NEURAL = {"vae", "ddpm", "flow-matching"}
Z_MAX = 5.0


def run(name: str, *overrides: str):
    """(validated config, Result) of a preset with ``key=value`` overrides."""
    cfg, _ = autophagy.load_config(CONFIGS / name, list(overrides))
    return cfg, autophagy.run(CONFIGS / name, overrides=list(overrides))


@functools.cache
def shared_run(name: str, *overrides: str):
    """``run`` once per session for tests that assert different phenomena of the same reduced run (read-only)."""
    return run(name, *overrides)


def curves(result, metric: str, *keys: str) -> dict:
    """{(values of the dotted ``keys``, ..., lineage): (R, G+1) per-replicate trajectories of ``metric``}."""
    out = {}
    for _, r in result.runs.iterrows():
        label = []
        for key in keys:
            value = r.config
            for part in key.split("."):
                value = value[part]
            label.append(value)
        df = result.metrics[(result.metrics.run_id == r.run_id) & (result.metrics.metric == metric)]
        table = df.pivot(index="replicate", columns="generation", values="value").to_numpy()
        out[tuple(label) + (r.lineage,)] = table
    return out


def mean_se(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))


def assert_theory(cfg, result, metrics=None) -> None:
    """Every closed-form prediction for ``cfg`` agrees with the simulation: |z| < Z_MAX."""
    cmp = theory.compare(cfg, result.metrics)
    if metrics is not None:
        cmp = cmp[cmp.metric.isin(metrics)]
    assert len(cmp) > 0
    worst = cmp.loc[cmp.z.abs().idxmax()]
    assert cmp.z.abs().max() < Z_MAX, worst.to_dict()


# --------------------------------------------------------------------------- every preset builds
@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_preset_loads_and_builds(path):
    """Catches broken presets from any author: valid keys, known components and metrics, each grid point."""
    cfg, base = autophagy.load_config(path)
    assert cfg.name and cfg.replicates >= 1
    assert path.read_text().startswith("#"), "a preset starts with its header comment"
    points = expand(cfg)
    if any(p.model.family in NEURAL for p in points):
        pytest.importorskip("torch")
    for point in points:
        plan = autophagy.build(point, base)
        assert plan.config is point
        if point.loop.control:
            autophagy.build(point, base, control=True)


# --------------------------------------------------------------------------- MAD (Alemohammad et al. 2023)
def test_mad_three_loops_match_theory_and_replace_drifts():
    cfg, res = run("mad_three_loops.yaml", "replicates=300", "generations=10", "metrics.use=[]")
    assert_theory(cfg, res)  # every loop, both λ, and the real-only controls
    w2 = {k: v[:, -1] for k, v in curves(res, "param.w2_sq", "loop.policy", "sampling.bias").items()}
    tr = {k: v[:, -1] for k, v in curves(res, "param.trace_cov", "loop.policy", "sampling.bias").items()}
    for bias in (1.0, 0.5):
        drift, se = mean_se(w2[("replace", bias, "loop")])
        for policy in ("augment", "fresh"):
            stay, se2 = mean_se(w2[(policy, bias, "loop")])
            assert drift > stay + 4 * np.hypot(se, se2), (bias, policy, drift, stay)
    assert tr[("replace", 0.5, "loop")].mean() < 0.05 * 2  # λ = 0.5 collapses the variance (t* = 2)
    for policy in ("augment", "fresh"):  # biased loops settle below the data's variance, unbiased ones do not
        low, se = mean_se(tr[(policy, 0.5, "loop")])
        full, se2 = mean_se(tr[(policy, 1.0, "loop")])
        assert low < 0.8 * 2 and full > low + 4 * np.hypot(se, se2)


def test_mad_three_loops_bias_trades_recall_for_precision():
    _, res = run("mad_three_loops.yaml", "replicates=6", "generations=6", "loop.control=false")
    precision = curves(res, "precision", "loop.policy", "sampling.bias")
    recall = curves(res, "recall", "loop.policy", "sampling.bias")
    for policy in ("replace", "augment", "fresh"):
        assert precision[(policy, 0.5, "loop")][:, -1].mean() >= precision[(policy, 1.0, "loop")][:, -1].mean() - 0.01
        assert recall[(policy, 0.5, "loop")][:, -1].mean() < recall[(policy, 1.0, "loop")][:, -1].mean() - 0.05
    assert recall[("replace", 0.5, "loop")][:, -1].max() < 0.2  # the biased fully synthetic loop lost its diversity
    assert recall[("fresh", 1.0, "loop")][:, -1].mean() > 0.9


def test_mad_three_loops_sliced_wasserstein_grows_most_under_replace():
    """Sample-based distance: sliced-wasserstein to the data grows far more in the fully synthetic loop than with
    real data kept (augment) or refreshed (fresh), at both λ. Paired per replicate (the arms share the real set)."""
    _, res = run("mad_three_loops.yaml", "replicates=10", "generations=15", "loop.control=false",
                 "metrics.use=[sliced-wasserstein]")
    sw = curves(res, "sliced-wasserstein", "loop.policy", "sampling.bias")
    growth = {k[:2]: v[:, -1] - v[:, 0] for k, v in sw.items()}
    for bias in (1.0, 0.5):
        m, se = mean_se(growth[("replace", bias)])
        assert m > 4 * se, (bias, m, se)  # ≈ 0.45 (λ = 1) and ≈ 0.67 (λ = 0.5) by generation 15
        for policy in ("augment", "fresh"):
            d, se_d = mean_se(growth[("replace", bias)] - growth[(policy, bias)])
            assert d > 4 * se_d and d > 0.5 * m, (bias, policy, d, se_d, m)


def test_mad_fresh_loop_fixed_point_and_effective_sample_size():
    cfg, res = run("mad_fresh_effective_sample_size.yaml", "replicates=600", "generations=40")
    assert_theory(cfg, res)  # E tr Σ_g and E‖μ_g − μ*‖² along the whole trajectory, every grid point
    mse = curves(res, "param.mean_sq_error", "loop.n_synthetic", "sampling.bias", "loop.n_initial")
    var = curves(res, "param.trace_cov", "loop.n_synthetic", "sampling.bias", "loop.n_initial")
    late = slice(30, 41)
    real_only = float(theory.real_only_distance(10))
    for key in mse:
        n_s, bias, n_0, _ = key
        # Fisher–Rao distance per replicate, averaged over the settled generations (one number per chain)
        D = (mse[key][:, late] + 0.5 * (var[key][:, late] - 1.0) ** 2).mean(axis=1)
        m, se = mean_se(D)
        moments = theory.fresh_fourth_moments(n_0, 10, n_s, 40, bias)
        expected = float(theory.fisher_distance(moments[late]).mean())
        assert abs(m - expected) < Z_MAX * se, (key, m, expected, se)
        if n_0 == 3:  # the loop forgets its start: n_0 = 3 and n_0 = 100 reach the same limit
            other = (mse[(n_s, bias, 100, "loop")][:, late] + 0.5 * (var[(n_s, bias, 100, "loop")][:, late] - 1) ** 2)
            m2, se2 = mean_se(other.mean(axis=1))
            assert abs(m - m2) < Z_MAX * np.hypot(se, se2), (key, m, m2)
        n_e = float(theory.effective_sample_size(10, n_s, bias))
        # simulation on the same side of the real-only error as theory's n_e says, where theory is clear-cut
        if n_e > 12:
            assert m + 3 * se < real_only, (key, m, real_only, n_e)
        elif n_e < 8:
            assert m - 3 * se > real_only, (key, m, real_only, n_e)
    assert theory.admissible_synthetic(10, 0.5) < theory.admissible_synthetic(10, 0.7) < np.inf


# --------------------------------------------------------------------------- Bertrand et al. 2024
def test_bertrand_gaussian_augment_is_stable_replace_drifts():
    cfg, res = run("bertrand_stability_gaussian.yaml", "replicates=300", "generations=20")
    assert_theory(cfg, res)
    w2 = {k: v[:, -1] for k, v in curves(res, "param.w2_sq", "loop.policy", "loop.n_synthetic").items()}
    mse = {k: v[:, -1] for k, v in curves(res, "param.mean_sq_error", "loop.policy", "loop.n_synthetic").items()}
    sizes = (10, 25, 50, 100, 200, 400)
    for n_s in sizes:
        drift, se = mean_se(w2[("replace", n_s, "loop")])
        stay, se2 = mean_se(w2[("augment", n_s, "loop")])
        assert drift > stay + 4 * np.hypot(se, se2), n_s
        if n_s <= 50:
            assert drift > 5 * stay, n_s
    gen0 = curves(res, "param.w2_sq", "loop.policy", "loop.n_synthetic")[("augment", 10, "loop")][:, 0].mean()
    assert w2[("augment", 10, "loop")].mean() < 1.15 * gen0  # λ_B = 0.1: barely moves from generation 0
    # the fixed point rises with λ_B; paired over replicates (every grid point shares the real set)
    diff = mse[("augment", 400, "loop")] - mse[("augment", 10, "loop")]
    m, se = mean_se(diff)
    expected = theory.augment_fixed_point(100, 400, t_star=2.0)[1] - theory.augment_fixed_point(100, 10, t_star=2.0)[1]
    assert m > 4 * se and abs(m - expected) < Z_MAX * se, (m, se, expected)


def test_bertrand_mixture_kde_augment_stays_replace_dissolves():
    _, res = run("bertrand_stability_mixture.yaml", "replicates=16", "generations=10",
                 "metrics.use=[sliced-wasserstein, mode-coverage]")
    sw = curves(res, "sliced-wasserstein", "loop.policy", "loop.n_synthetic")
    cov = curves(res, "mode-coverage", "loop.policy", "loop.n_synthetic")
    for n_s in (20, 50, 100, 200, 400):
        assert cov[("augment", n_s, "loop")][:, -1].mean() >= 0.95
        assert sw[("augment", n_s, "loop")][:, -1].mean() < 1.5 * sw[("augment", n_s, "loop")][:, 0].mean()
    assert cov[("replace", 20, "loop")][:, -1].mean() < 0.6  # ≈ 0.4: half the ring's modes lost
    for n_s in (20, 50, 100):
        drift, se = mean_se(sw[("replace", n_s, "loop")][:, -1])
        stay, se2 = mean_se(sw[("augment", n_s, "loop")][:, -1])
        assert drift > stay + 4 * np.hypot(se, se2), n_s
        if n_s <= 50:
            assert drift > 2 * stay, n_s


def test_bertrand_mixture_augment_keeps_precision_replace_loses_precision_and_modes():
    """Precision stays near generation 0 under augment (a little lower for larger λ_B); replace loses precision
    and mode-coverage, coverage fastest for the smallest samples. Paired per replicate: every grid point starts
    from the same real set, so generation 0 is shared."""
    _, res = run("bertrand_stability_mixture.yaml", "replicates=16", "generations=10",
                 "metrics.use=[prd, mode-coverage]",
                 "grid={loop.policy: [augment, replace], loop.n_synthetic: [20, 100, 400]}")
    prec = curves(res, "precision", "loop.policy", "loop.n_synthetic")
    cov = curves(res, "mode-coverage", "loop.policy", "loop.n_synthetic")
    drop = {k[:2]: v[:, 0] - v[:, -1] for k, v in prec.items()}
    for n_s in (20, 100, 400):
        aug, se_aug = mean_se(drop[("augment", n_s)])
        rep, _ = mean_se(drop[("replace", n_s)])
        d, se_d = mean_se(drop[("replace", n_s)] - drop[("augment", n_s)])
        assert aug < 0.1 and aug < 0.5 * rep, (n_s, aug, rep)  # ≈ 0 … 0.05 vs ≈ 0.2 (from ≈ 0.96)
        assert d > 4 * se_d, (n_s, d, se_d)
        assert cov[("augment", n_s, "loop")].mean(0).min() >= 0.95  # augment keeps its modes at every generation
    small, se_s = mean_se(prec[("augment", 20, "loop")][:, -1] - prec[("augment", 400, "loop")][:, -1])
    assert small > 4 * se_s, (small, se_s)  # λ_B = 2 ends a little below λ_B = 0.1
    final = {n_s: mean_se(cov[("replace", n_s, "loop")][:, -1]) for n_s in (20, 100, 400)}
    for n_s in (20, 100):
        assert final[n_s][0] < 1 - 4 * final[n_s][1], (n_s, final[n_s])  # ≈ 0.42 (n_s = 20), ≈ 0.70 (100)
    for a, b in ((20, 100), (100, 400)):  # smaller samples lose modes faster
        assert final[a][0] + 4 * np.hypot(final[a][1], final[b][1]) < final[b][0], (a, b, final)


def test_bertrand_mixture_kde_moments_match_theory():
    cfg, res = run("bertrand_stability_mixture.yaml", "replicates=300", "generations=8", "metrics.use=[]")
    assert_theory(cfg, res)


# --------------------------------------------------------------------------- Shumailov et al.
def test_shumailov_gaussian_variance_and_tails_vanish():
    cfg, res = run("shumailov_gaussian_collapse.yaml", "replicates=300", "generations=60")
    cmp = theory.compare(cfg, res.metrics)
    # log det Σ_g is a sum of independent log-χ² steps: well behaved at every generation. σ²_g itself becomes
    # lognormal with a spread growing like √g (for the unbiased estimator a martingale held up by rare huge
    # chains), so sample means and s.e. of the other metrics are trustworthy only early on: g ≤ 15
    checked = cmp[(cmp.metric == "param.logdet_cov") | (cmp.generation <= 15)]
    assert set(checked.metric) >= {"param.logdet_cov", "param.trace_cov", "param.w2_sq", "param.mean_sq_error"}
    assert checked.z.abs().max() < Z_MAX, checked.loc[checked.z.abs().idxmax()].to_dict()
    # their theorem: with the unbiased estimator E W₂² grows without bound; with the MLE it saturates near 2σ²
    w2 = {est: theory.replace_w2_sq([1.0], 20, 20, 200, est) for est in ("unbiased", "mle")}
    assert np.all(np.diff(w2["unbiased"][100:]) > 0) and w2["unbiased"][-1] > 5 * w2["mle"][-1]
    assert abs(w2["mle"][-1] - 2.0) < 0.01
    tail = curves(res, "tail-mass", "model.estimator")
    for est in ("mle", "unbiased"):
        zero0, zero = (tail[(est, "loop")][:, 0] == 0).mean(), (tail[(est, "loop")][:, -1] == 0).mean()
        assert zero0 < 0.2 and zero > 0.5, (est, zero0, zero)  # ≈ 0.05 -> ≈ 0.6 (unbiased), 0.9 (MLE); s.e. ≤ 0.03


GMM_RUN = ("shumailov_gmm_collapse.yaml", "replicates=12", "generations=100")  # EM fits dominate: ≈ 15 s, shared


@pytest.mark.slow  # the shared GMM run (EM fits): about 16 s; .ci/run runs it
def test_shumailov_gmm_forgets_tails_and_variance():
    _, res = shared_run(*GMM_RUN)
    ratio = curves(res, "variance-ratio")
    nll = curves(res, "heldout-nll")
    tail = curves(res, "tail-mass")
    loop, control = ratio[("loop",)][:, -1], ratio[("control",)][:, -1]
    assert np.median(loop) < 0.75 and abs(np.median(control) - 1) < 0.15, (loop, control)
    assert np.median(nll[("loop",)][:, -1]) > 2 * np.median(nll[("loop",)][:, 0])
    assert np.all(np.abs(nll[("control",)][:, -1] - nll[("control",)][:, 0]) < 0.5)
    assert np.median(tail[("loop",)][:, -1]) < 0.5 * np.median(tail[("loop",)][:, 0])
    assert np.median(tail[("control",)][:, -1]) > 0.5 * np.median(tail[("control",)][:, 0])


@pytest.mark.slow  # shares that run
def test_shumailov_gmm_starves_a_mode_control_keeps_both():
    """The weights random-walk until one of the two modes starves: mode-coverage 1 → ≈ 0.6 by generation 100
    (each chain ends at 1 or 0.5); the real-only control keeps both modes throughout."""
    _, res = shared_run(*GMM_RUN)
    cov = curves(res, "mode-coverage")
    loop, control = cov[("loop",)], cov[("control",)]
    assert np.all(loop[:, 0] == 1) and np.all(control[:, 0] == 1)
    m, se = mean_se(loop[:, -1])
    mc, se_c = mean_se(control[:, -1])
    assert mc >= 0.95, mc  # every control chain covers both modes here (s.e. 0)
    assert m + 4 * np.hypot(se, se_c) < mc, (m, se, mc)  # ≈ 0.63 ± 0.07 vs 1
    assert abs(m - 0.6) < 3 * se, (m, se)  # "≈ 0.6" of docs/presets.md
    assert m <= loop[:, 50].mean() < 1, loop[:, 50].mean()  # a gradual loss: ≈ 0.83 at generation 50


# --------------------------------------------------------------------------- Kazdan et al. 2024
def test_kazdan_gaussian_replace_diverges_accumulate_bounded_subsample_between():
    cfg, res = run("kazdan_replace_accumulate_gaussian.yaml", "replicates=100", "generations=15")
    assert_theory(cfg, res)
    nll = curves(res, "heldout-nll", "loop.policy")
    rep, acc, sub = (nll[(p, "loop")] for p in ("replace", "accumulate", "accumulate-subsample"))
    assert np.all(acc[:, -1] < rep[:, -1])  # every chain: accumulating never does worse than replacing here
    m_acc, se_acc = mean_se(acc[:, -1])
    m_sub, se_sub = mean_se(sub[:, -1])
    m_rep, se_rep = mean_se(rep[:, -1])
    assert m_acc + 4 * np.hypot(se_acc, se_sub) < m_sub and m_sub + 4 * np.hypot(se_sub, se_rep) < m_rep
    # accumulate and subsample flatten: their last five generations move far less than replace's
    late = lambda x: x[:, -1].mean() - x[:, -6].mean()  # noqa: E731
    assert late(rep) > 10 * max(abs(late(acc)), abs(late(sub)))


def test_kazdan_kde_replace_diverges_accumulate_stays():
    _, res = run("kazdan_replace_accumulate_kde.yaml", "replicates=8", "generations=10",
                 "metrics.use=[heldout-nll]")
    nll = curves(res, "heldout-nll", "loop.policy")
    rep, acc, sub = (nll[(p, "loop")][:, -1] for p in ("replace", "accumulate", "accumulate-subsample"))
    start = nll[("replace", "loop")][:, 0].mean()
    assert acc.mean() < start + 0.1 and acc.mean() < sub.mean() < rep.mean(), (acc.mean(), sub.mean(), rep.mean())
    assert rep.mean() > 2 * start and np.all(acc < rep)


def test_kazdan_kde_sliced_wasserstein_grows_under_replace_only():
    """The ring dissolves under replace (sliced-wasserstein ↑); accumulate and accumulate-subsample stay near
    generation 0. Paired per replicate (the three workflows share the real set)."""
    _, res = run("kazdan_replace_accumulate_kde.yaml", "replicates=16", "generations=15",
                 "metrics.use=[sliced-wasserstein]")
    sw = curves(res, "sliced-wasserstein", "loop.policy")
    growth = {k[0]: v[:, -1] - v[:, 0] for k, v in sw.items()}
    m, se = mean_se(growth["replace"])
    assert m > 4 * se, (m, se)  # ≈ 0.49 from ≈ 0.32 at generation 0
    for policy in ("accumulate", "accumulate-subsample"):
        d, se_d = mean_se(growth["replace"] - growth[policy])
        assert d > 4 * se_d and abs(growth[policy].mean()) < 0.25 * m, (policy, d, se_d, growth[policy].mean(), m)


def test_kazdan_kde_moments_match_theory():
    cfg, res = run("kazdan_replace_accumulate_kde.yaml", "replicates=300", "generations=6", "metrics.use=[]")
    assert_theory(cfg, res)


# --------------------------------------------------------------------------- Gerstgrasser et al. 2024
def test_gerstgrasser_replace_grows_linearly_accumulate_stays_below_pi2_6():
    cfg, res = run("gerstgrasser_regression_bound.yaml", "replicates=400", "generations=15")
    assert_theory(cfg, res)
    err = curves(res, "param.test_error", "loop.policy")
    rep, acc = err[("replace", "loop")], err[("accumulate", "loop")]
    tau = theory.design_trace_inverse(50, 10)
    bound = theory.accumulate_bound(tau)  # π²/6 · E(generation-0 error)
    m, se = acc.mean(0), acc.std(0, ddof=1) / np.sqrt(len(acc))
    assert np.all(m < bound + 3 * se), (m, bound)
    assert np.all(np.diff(theory.expected_test_error("accumulate", 15, tau, 1.0)) > 0)
    slope = np.polyfit(np.arange(16), rep.mean(0), 1)[0]  # linear growth at σ²τ per generation
    assert abs(slope - tau) < 0.1 * tau
    assert rep[:, -1].mean() > 5 * acc[:, -1].mean()


# --------------------------------------------------------------------------- categorical tail loss
class _Recorder:
    """Wraps a family and keeps every fitted model's probabilities (per-token view of a run)."""

    def __init__(self, family):
        self.family, self.probs = family, []

    def fit(self, data, streams, init=None):
        model = self.family.fit(data, streams, init=init)
        self.probs.append(model.probs.copy())
        return model

    def __getattr__(self, name):
        return getattr(self.family, name)


def test_categorical_support_shrinks_and_rare_tokens_vanish_first():
    cfg, res = run("categorical_tail_loss.yaml", "replicates=200", "generations=40")
    assert_theory(cfg, res)  # λ = 1: Wright–Fisher marginals (the λ = 0.9 run has no closed form)
    support = curves(res, "param.support_size", "sampling.bias")
    assert np.all(np.diff(support[(1.0, "loop")], axis=1) <= 0)  # a lost token never returns
    assert support[(0.9, "loop")][:, -1].mean() < 0.5 * support[(1.0, "loop")][:, -1].mean()

    # per token: run the λ = 1 point again with a recording family (same seeds, hence the same chains)
    point = next(p for p in expand(cfg) if p.sampling.bias == 1.0)
    plan = autophagy.build(point)
    plan.family = _Recorder(plan.family)
    values = simulate(plan)
    assert np.array_equal(values["param.support_size"].T, support[(1.0, "loop")])
    probs = np.stack(plan.family.probs)  # (G+1, R, K), tokens sorted by true probability (Zipf)
    # each token's frequency is a martingale (E p̂_g = p̂_0), so the *mean* tail mass is conserved: a few chains
    # gain what most lose. The typical chain loses it: the 10 rarest tokens' mass, median and share of zeros
    tail_mass = probs[:, :, -10:].sum(-1)
    assert np.median(tail_mass[-1]) < 0.6 * np.median(tail_mass[0])
    assert (tail_mass[0] == 0).mean() == 0 and (tail_mass[-1] == 0).mean() > 0.3  # ≈ 0.5 expected, s.e. ≈ 0.035
    m0, se0 = mean_se(tail_mass[0])
    m, se = mean_se(tail_mass[-1])
    assert abs(m - m0) < Z_MAX * np.hypot(se, se0)
    lost = (probs[-1] == 0).mean(axis=0)  # (K,) share of chains that lost each token by generation G
    assert lost[:2].max() < 0.05 and lost[-20:].mean() > 0.8, (lost[:3], lost[-20:])
    assert spearmanr(lost, np.arange(lost.size)).statistic > 0.9  # rarer tokens are lost more often


def test_every_preset_has_a_row_in_docs_presets_md():
    """docs/presets.md is the catalogue: each configs/*.yaml appears in its table."""
    text = (CONFIGS.parent / "docs" / "presets.md").read_text()
    missing = [p.name for p in sorted(CONFIGS.glob("*.yaml")) if f"`{p.name}`" not in text]
    assert not missing, f"add a row to docs/presets.md for {missing}"
