"""Per-generation sample-size schedules (loop.n_real / loop.n_synthetic as a list or a formula over g)."""
import numpy as np
import pytest

import autophagy
from autophagy import schedule, theory
from autophagy.config import load_config
from autophagy.errors import ConfigError
from autophagy.models.gaussian import GaussianFamily
from autophagy.policies import smallest_training_set, training_sizes
from autophagy.rng import Streams

BASE = {"seed": 3, "replicates": 40, "generations": 4, "data": {"source": "gaussian", "dim": 2},
        "model": {"family": "gaussian"}}


def frame(result, metric):
    """(G+1, R) array of one metric of a single-run Result."""
    df = result.metrics[result.metrics.metric == metric]
    return df.pivot(index="generation", columns="replicate", values="value").to_numpy()


def test_formula_parser_evaluates_and_refuses_unsafe_code():
    assert schedule.values("f", "100 * (g + 1)**2", 3) == (100, 400, 900, 1600)
    assert schedule.values("f", "max(10, floor(50 / (g + 1)))", 6) == (50, 25, 16, 12, 10, 10, 10)
    assert schedule.values("f", (5, 6, 7), 2) == (5, 6, 7)
    assert schedule.is_constant("7") and schedule.is_constant((3, 3)) and not schedule.is_constant("g")
    for bad in ("__import__('os').system('true')", "g.__class__", "[g]", "lambda: 1", "open('x')", "g if g else 1",
                "2 ** 2 ** 2 ** 2 ** 2", "1e400 * g"):
        with pytest.raises(ConfigError) as err:
            schedule.values("loop.n_synthetic", schedule.normalise("loop.n_synthetic", bad), 3)
        assert str(err.value).startswith("loop.n_synthetic = ") and "\n" not in str(err.value)


@pytest.mark.parametrize("loop, generations, field, words", [
    ({"policy": "fresh", "n_real": [10, 10]}, 4, "loop.n_real", "G + 1 = 5 entries"),
    ({"policy": "fresh", "n_synthetic": "1.5 ** g"}, 3, "loop.n_synthetic", "whole numbers"),
    ({"policy": "fresh", "n_synthetic": "20 - 5 * g"}, 6, "loop.n_synthetic", "g = 5 gives -5"),
    ({"policy": "fresh", "n_real": [10, -1, 3]}, 2, "loop.n_real[1]", ">= 0"),
    ({"policy": "fresh", "n_real": [10, 0, 5], "n_synthetic": [0, 0, 5]}, 2, "loop.n_synthetic", "non-empty"),
    ({"policy": "augment", "n_real": [10, 20, 30]}, 2, "loop.n_real", "single number"),
    ({"policy": "fresh", "n_real": True}, 2, "loop.n_real", "whole number"),
    ({"policy": "fresh", "n_synthetic": "exec('1')"}, 2, "loop.n_synthetic", "'exec' is not allowed"),
])
def test_invalid_schedules_are_refused_before_the_run(tmp_path, loop, generations, field, words):
    cfg = {**BASE, "generations": generations, "loop": loop}
    for call in (lambda: load_config(cfg), lambda: autophagy.run(cfg, out=tmp_path / "out")):
        with pytest.raises(ConfigError) as err:
            call()
        msg = str(err.value)
        assert msg.startswith(field + " = ") and words in msg and "\n" not in msg, msg
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_training_sizes_follow_the_schedule():
    cfg, _ = load_config({**BASE, "loop": {"policy": "fresh", "n_real": "10 * (g + 1)", "n_synthetic": [0, 5, 0, 7, 1]}})
    assert cfg.loop.sizes(4) == ((10, 20, 30, 40, 50), (0, 5, 0, 7, 1))
    assert training_sizes(cfg.loop, 4) == (10, 25, 30, 47, 51)
    assert smallest_training_set(cfg.loop) == 10
    acc, _ = load_config({**BASE, "loop": {"policy": "accumulate", "n_real": 8, "n_synthetic": "2 * g"}})
    assert training_sizes(acc.loop, 4) == (8, 10, 14, 20, 28)


def test_a_schedule_equals_the_run_spelled_out_generation_by_generation():
    """The engine with a schedule gives bit-for-bit the numbers of a hand-written loop that uses each
    generation's sizes (same seed-tree streams), and a constant list equals the plain number."""
    n_real, n_syn = [30, 5, 0, 12, 30], [0, 10, 40, 3, 1]
    # the sample path (sufficient_stats: off); the exact path's schedules are tested in tests/test_exact_paths.py
    cfg = {**BASE, "loop": {"policy": "fresh", "n_real": n_real, "n_synthetic": n_syn, "sufficient_stats": "off"}}
    got = autophagy.run(cfg)
    c, _ = load_config(cfg)
    R, seed = c.replicates, c.seed
    S = lambda g, role: Streams(seed, R, g, role)  # noqa: E731
    source = autophagy.build(c).source
    family = GaussianFamily(GaussianFamily.Options(), source.info)
    model = family.fit(source.sample(n_real[0], S(-1, "data")), S(0, "fit"))
    mse = [((model.mean - source.info.truth["mean"]) ** 2).sum(-1)]
    for g in range(1, 5):
        synth = model.sample(n_syn[g], S(g, "sample"))
        fresh = source.sample(n_real[g], S(g, "data"))
        model = family.fit(np.concatenate([fresh, synth], axis=1), S(g, "fit"))
        mse.append(((model.mean - source.info.truth["mean"]) ** 2).sum(-1))
    np.testing.assert_array_equal(frame(got, "param.mean_sq_error"), np.array(mse))

    plain = autophagy.run({**BASE, "loop": {"policy": "fresh", "n_real": 20, "n_synthetic": 35}})
    listed = autophagy.run({**BASE, "loop": {"policy": "fresh", "n_real": [20] * 5, "n_synthetic": "35 + 0 * g"}})
    for metric in ("param.mean_sq_error", "param.trace_cov"):
        np.testing.assert_array_equal(frame(plain, metric), frame(listed, metric))


def test_moment_theory_honours_schedules():
    """theory.predict propagates E||μ_g − μ*||² and E tr Σ_g with each generation's sizes: the simulation
    agrees within 4 s.e., and a schedule with a collapse generation (n_real = 0) is far from the constant one."""
    loop = {"policy": "fresh", "n_real": [40, 5, 0, 60, 2], "n_synthetic": [0, 3, 8, 2, 50]}
    cfg, _ = load_config({**BASE, "replicates": 2000, "loop": loop})
    res = autophagy.run(cfg)
    cmp = theory.compare(cfg, res.metrics)
    assert set(cmp.metric) >= {"param.mean_sq_error", "param.trace_cov"} and len(cmp) == 10
    assert cmp.z.abs().max() < 4, cmp.loc[cmp.z.abs().idxmax()].to_dict()
    flat = theory.predict({**BASE, "loop": {"policy": "fresh", "n_real": 40, "n_synthetic": 40}})
    pred = theory.predict(cfg)
    tr = pred[pred.metric == "param.trace_cov"].expected.to_numpy()
    assert abs(tr[2] - flat[flat.metric == "param.trace_cov"].expected.to_numpy()[2]) > 0.2  # 8 points from a 8-point fit
