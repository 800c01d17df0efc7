"""Each curation / correction preset, run at reduced size, shows its documented phenomenon."""
from pathlib import Path

import numpy as np

import autophagy

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def by_arm(result, metric: str, key: str, generations=None) -> dict:
    """{grid value of `key` (dotted path): (G+1,) replicate-mean curve} plus the per-replicate values."""
    out = {}
    for _, run in result.runs.iterrows():
        value = run.config
        for part in key.split("."):
            value = value[part]
        df = result.metrics[(result.metrics.run_id == run.run_id) & (result.metrics.metric == metric)]
        table = df.pivot(index="replicate", columns="generation", values="value").to_numpy()
        out[value] = table
    return out


def run(name: str, *overrides: str):
    return autophagy.run(CONFIGS / name, overrides=list(overrides))


def test_gillman_w2_falls_monotonically_with_gamma():
    res = run("gillman_gaussian_correction.yaml", "replicates=100", "generations=10")
    w2 = by_arm(res, "param.w2_sq", "correction.gamma")
    gammas = sorted(w2)
    final = np.array([w2[g][:, -1].mean() for g in gammas])
    assert np.all(np.diff(final) < 0), dict(zip(gammas, final))
    # paired across arms (common random numbers): the uncorrected loop ends clearly worse than γ = 5
    diff = w2[gammas[0]][:, -1] - w2[gammas[-1]][:, -1]
    assert diff.mean() > 4 * diff.std(ddof=1) / np.sqrt(len(diff))


def test_mad_cherry_picking_keeps_precision_and_loses_recall():
    res = run("mad_cherry_picking.yaml", "replicates=6", "generations=5")
    precision, recall = by_arm(res, "precision", "curation.method"), by_arm(res, "recall", "curation.method")
    assert precision["top-k"][:, -1].mean() >= precision["random-k"][:, -1].mean() - 0.01
    assert recall["top-k"][:, -1].mean() < recall["random-k"][:, -1].mean() - 0.3


def test_top_k_loses_the_minority_mode_faster_than_random_k():
    res = run("curation_minority_modes.yaml", "replicates=6", "generations=5")
    mass = {k: v[:, -3:].mean() for k, v in by_arm(res, "minority-mass", "curation.method").items()}
    assert mass["top-k"] < 0.75 * mass["random-k"] and mass["random-k"] < mass["bottom-k"], mass


def test_projectile_residual_grows_without_physics_and_not_with_it():
    res = run("projectile_physics.yaml", "replicates=8", "generations=6")
    resid = by_arm(res, "dynamics-residual", "correction.gamma")
    plain, fixed = resid[0.0].mean(0), resid[float("inf")].mean(0)
    assert plain[-1] > 2.0 * plain[0]  # ≈ √7 ≈ 2.6 expected
    assert abs(fixed[-1] - fixed[0]) < 0.1 * fixed[0]


def test_reward_curation_drifts_towards_the_reward():
    res = run("ferbach_reward_drift.yaml", "replicates=20", "generations=6")
    reward = by_arm(res, "reward-mean", "loop.policy")
    replace, augment = reward["replace"].mean(0), reward["augment"].mean(0)
    assert np.all(np.diff(replace) > 0), replace
    assert replace[-1] > augment[-1] > replace[0]
