"""Fu et al. (2024): the TV recursion bound against the simulated loops (theory.fu)."""
import numpy as np
import pytest

import autophagy
from autophagy.config import load_config
from autophagy.theory import fu

BASE = {"seed": 11, "replicates": 150, "generations": 5, "data": {"source": "gaussian", "dim": 1}}


def tv_curve(result):
    """(G+1, R) measured param.tv of a single run."""
    df = result.metrics[result.metrics.metric == "param.tv"]
    return df.pivot(index="generation", columns="replicate", values="value").to_numpy()


def test_gaussian_step_error_is_the_generation_0_tv():
    """ε(n) by quadrature equals the measured TV of a Gaussian fitted to n real points (within 4 s.e.)."""
    res = autophagy.run({**BASE, "replicates": 2000, "generations": 0, "model": {"family": "gaussian"},
                         "loop": {"n_real": 30}})
    tv0 = tv_curve(res)[0]
    assert abs(tv0.mean() - fu.gaussian_step_error(30)) < 4 * tv0.std(ddof=1) / np.sqrt(tv0.size)
    assert fu.gaussian_step_error(400) < fu.gaussian_step_error(100) < fu.gaussian_step_error(25)


@pytest.mark.parametrize("family", ["gaussian", "kde"])
@pytest.mark.parametrize("loop", [
    {"policy": "fresh", "n_real": 40, "n_synthetic": 40},        # balanced cycle, α = ½
    {"policy": "fresh", "n_real": 40, "n_synthetic": 400},       # mostly synthetic, α = 1/11
    {"policy": "fresh", "n_real": [40, 40, 10, 80, 5, 40], "n_synthetic": "20 * g"},  # a general cycle
    {"policy": "augment", "n_real": 40, "n_synthetic": 80},
    {"policy": "accumulate", "n_real": 40, "n_synthetic": 40},
    {"policy": "replace", "n_real": 40},                          # full synthetic cycle
], ids=["balanced", "mostly-synthetic", "scheduled", "augment", "accumulate", "replace"])
def test_measured_tv_stays_below_the_recursion_bound(family, loop):
    cfg = {**BASE, "model": {"family": family}, "loop": loop}
    table = fu.tv_table(cfg, autophagy.run(cfg).metrics)
    assert len(table) == 6 and table.bound.between(0, 1).all()
    bad = table[table.measured > table.bound + 2 * table.se]
    assert bad.empty, bad.to_dict("records")
    assert (table.bound.iloc[1:] > table.measured.iloc[1:]).mean() == 1.0  # not just within noise: below
    n, alpha, W = fu.mixture_weights(load_config(cfg)[0].loop, 5)
    np.testing.assert_allclose(alpha + W.sum(1), 1.0)  # every training point is real or from some model


def test_full_synthetic_cycle_grows_at_constant_n_and_stays_bounded_super_quadratically():
    """Constant n: TV keeps growing. n_i = 50 (i+1)³ (super-quadratic): the increments shrink and TV_G stays
    within a few per cent of TV_1, and the bound Σ ε(n_i) converges (Fu et al.'s Remark 1)."""
    G = 8
    base = {**BASE, "replicates": 600, "generations": G, "model": {"family": "gaussian"}}
    const = tv_curve(autophagy.run({**base, "loop": {"policy": "replace", "n_real": 50}})).mean(1)
    cubic_run = autophagy.run({**base, "loop": {"policy": "replace", "n_real": 50, "n_synthetic": "50 * (g + 1)**3"}})
    cubic = tv_curve(cubic_run)
    m, se = cubic.mean(1), cubic.std(1, ddof=1) / np.sqrt(cubic.shape[1])
    assert np.all(np.diff(const) > 0) and const[-1] > 2 * const[0]
    assert m[-1] - m[1] < 0.2 * (const[-1] - const[1])
    assert m[-1] - m[4] < 4 * se[-1]  # no measurable growth over the last four generations
    eps = np.vectorize(fu.gaussian_step_error)
    n_cubic = 50 * (np.arange(200) + 1.0) ** 3
    b = fu.full_synthetic_bound(eps, n_cubic)
    assert b[-1] - b[100] < 0.01 and b[-1] < 0.2  # converges
    assert fu.full_synthetic_bound(eps, np.full(40, 50))[-1] == 1.0  # constant n: the bound reaches TV's maximum


def test_balanced_cycle_plateaus_below_eps_over_alpha():
    """α = ½ at constant n: the bound B_G = ε(n)(1 − ½^{G+1})/½ ... → 2ε(n); measured TV plateaus below it."""
    G = 8
    res = autophagy.run({**BASE, "replicates": 600, "generations": G, "model": {"family": "gaussian"},
                         "loop": {"policy": "fresh", "n_real": 50, "n_synthetic": 50}})
    tv = tv_curve(res)
    m, se = tv.mean(1), tv.std(1, ddof=1) / np.sqrt(tv.shape[1])
    assert abs(m[-1] - m[4]) < 4 * np.hypot(se[-1], se[4])
    assert m[-1] < 2 * fu.gaussian_step_error(100)


def test_phase_transition_bound_rises_then_falls():
    """Derived: for G = 1 and ε = c n^{-1/2} the bound's peak is 1.25 ε(n_r) at n_s = 3 n_r; at any finite G it
    returns to ε(n_r) as n_s → ∞."""
    eps = lambda n: 0.5 / np.sqrt(n)  # noqa: E731
    ns = np.arange(0, 20001, 10.0)
    b1, peak1 = fu.phase_transition_bound(eps, 100, ns, 1)
    assert peak1 == 300 and abs(b1.max() - 1.25 * eps(100)) < 1e-12 and abs(b1[0] - eps(100)) < 1e-12
    b5, peak5 = fu.phase_transition_bound(eps, 100, np.concatenate([ns, [1e9]]), 5)
    assert peak5 > peak1 and b5[0] < b5.max() and abs(b5[-1] - eps(100)) < 1e-3


def _final_tv(result):
    """{(family, n_synthetic): (mean, se)} of param.tv at the last generation of a preset grid."""
    df = result.metrics[result.metrics.metric == "param.tv"]
    runs = result.runs.set_index("run_id")
    out = {}
    for rid, sub in df.groupby("run_id", observed=True):
        c = runs.loc[rid, "config"]
        last = sub[sub.generation == sub.generation.max()].value
        out[(c["model"]["family"], c["loop"]["n_synthetic"])] = (last.mean(), last.std(ddof=1) / np.sqrt(len(last)))
    return out


def test_phase_transition_preset_kde_rises_then_falls_gaussian_does_the_opposite():
    """configs/fu_phase_transition.yaml at reduced size: the KDE's TV rises then falls with n_synthetic (Fu et
    al.'s phase transition); the Gaussian's falls first; under sampling bias λ = 0.8 it only rises past MAD's
    admissible n_s (63)."""
    grid = 'grid={"model.family": [gaussian, kde], "loop.n_synthetic": [0, 50, 500, 2000]}'
    tv = _final_tv(autophagy.run("configs/fu_phase_transition.yaml", overrides=[grid]))
    gap = lambda a, b: tv[a][0] - tv[b][0] - 2 * np.hypot(tv[a][1], tv[b][1])  # noqa: E731 - > 0: a above b by 2 s.e.
    assert gap(("kde", 500), ("kde", 50)) > 0 and gap(("kde", 500), ("kde", 2000)) > 0
    assert gap(("gaussian", 0), ("gaussian", 500)) > 0 and gap(("gaussian", 2000), ("gaussian", 500)) > 0
    biased = _final_tv(autophagy.run("configs/fu_phase_transition.yaml", overrides=[
        "sampling.bias=0.8", 'grid={"loop.n_synthetic": [0, 150, 500]}']))
    b0, b150, b500 = (biased[("gaussian", k)] for k in (0, 150, 500))
    assert b150[0] - b0[0] > 4 * np.hypot(b0[1], b150[1]) and b500[0] > b150[0]


@pytest.mark.slow
def test_early_stopping_preset_undertraining_compounds_in_the_loop():
    """configs/fu_early_stopping.yaml at reduced size (about 30 s): an under-trained DDPM's TV grows across
    generations (F2's accumulation of large ε), a well-trained one's stays near generation 0's."""
    pytest.importorskip("torch")
    res = autophagy.run("configs/fu_early_stopping.yaml", overrides=['grid={"model.train_steps": [100, 1600]}'])
    runs = res.runs.set_index("run_id")
    df = res.metrics[res.metrics.metric == "tv"]
    tv = {runs.loc[rid, "config"]["model"]["train_steps"]: sub.groupby("generation").value.mean().to_numpy()
          for rid, sub in df.groupby("run_id", observed=True)}
    assert tv[100][-1] > 2 * tv[100][0] and tv[100][-1] > 0.5
    assert tv[1600][-1] < 0.15 and tv[1600][-1] < tv[100][-1] / 3
