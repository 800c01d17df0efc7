"""Curation operators: contracts (counts, determinism, replicate independence), selection
oracles (top-k order, Bradley–Terry choice probabilities, threshold filling) and errors."""
import numpy as np
import pytest

import autophagy
from autophagy import curation, rewards
from autophagy.errors import ConfigError
from autophagy.protocols import SourceInfo
from autophagy.rng import Streams

INFO = SourceInfo(dim=2)
ORIGIN = {"reward": "distance", "target": [0.0, 0.0]}


def cands(R, M, d=2, seed=0):
    return Streams(seed, R, 1, "cands").normal(M, d)


def run(cfg, x, model=None, info=INFO):
    cur = curation.build(cfg, info, None)
    return cur(x, model=model, streams=Streams(7, x.shape[0], 1, "curate"))


def norms(x):
    return np.sqrt((x ** 2).sum(-1))


class MixtureModel:
    """A fixed 1-D mixture 0.9 N(0, 1) + 0.1 N(5, 1) for every replicate (has log_prob)."""

    w, mu = np.array([0.9, 0.1]), np.array([0.0, 5.0])

    def log_prob(self, x):
        comp = -0.5 * (x - self.mu) ** 2 - 0.5 * np.log(2 * np.pi) + np.log(self.w)  # (R, n, 2)
        top = comp.max(-1)
        return top + np.log(np.exp(comp - top[..., None]).sum(-1))

    def sample(self, m, streams, bias=1.0):
        minority = streams.child("k").uniform(m) < self.w[1]
        return (np.where(minority, self.mu[1], self.mu[0]) + streams.child("z").normal(m))[..., None]


METHODS = [{"method": "top-k", **ORIGIN}, {"method": "bottom-k", **ORIGIN}, {"method": "random-k"},
           {"method": "bradley-terry", **ORIGIN, "k": 3}, {"method": "threshold", **ORIGIN, "threshold": -1.0},
           {"method": "top-k", **ORIGIN, "oversample": 1}]


@pytest.mark.parametrize("cfg", METHODS, ids=lambda c: f"{c['method']}")
def test_counts_determinism_and_replicate_independence(cfg):
    cur = curation.build(cfg, INFO, None)
    m = 7
    M = cur.candidates(m)
    assert M == m * cfg.get("oversample", cfg.get("k", 4))
    x = cands(5, M)
    out = cur(x, streams=Streams(7, 5, 1, "curate"))
    assert out.shape == (5, m, 2)
    again = cur(x, streams=Streams(7, 5, 1, "curate"))
    np.testing.assert_array_equal(out, again)
    # replicate r's result depends neither on R nor on the other replicates
    small = cur(x[:2], streams=Streams(7, 2, 1, "curate"))
    np.testing.assert_array_equal(out[:2], small)
    # every kept point is one of its replicate's candidates
    for r in range(5):
        assert all(any(np.array_equal(p, q) for q in x[r]) for p in out[r])


def test_top_and_bottom_k_keep_the_extremes():
    x = cands(4, 40)
    r = -norms(x)
    top, bottom = run({"method": "top-k", **ORIGIN}, x), run({"method": "bottom-k", **ORIGIN}, x)
    for i in range(4):
        ranked = np.sort(r[i])
        np.testing.assert_allclose(np.sort(-norms(top[i])), ranked[-10:])
        np.testing.assert_allclose(np.sort(-norms(bottom[i])), ranked[:10])


def test_random_k_is_a_uniform_subset():
    """Each candidate is kept with probability 1/oversample (binomial standard error)."""
    R, M = 2000, 8
    x = np.broadcast_to(np.arange(M, dtype=float)[None, :, None], (R, M, 1)).copy()
    out = run({"method": "random-k", "oversample": 4}, x, info=SourceInfo(dim=1))
    counts = np.stack([(out[..., 0] == j).any(1) for j in range(M)]).mean(1)
    se = np.sqrt(0.25 * 0.75 / R)
    assert np.all(np.abs(counts - 0.25) < 4 * se), counts
    assert all(len(np.unique(o)) == 2 for o in out[:50])  # without replacement


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_bradley_terry_choice_probabilities(temperature):
    """Two candidates per slot at distance 0 and 1 from the target: P(keep the near one) = 1/(1 + e^{−1/T})."""
    R, m = 1000, 4
    x = np.zeros((R, 2 * m, 1))
    x[:, 1::2] = 1.0
    out = run({"method": "bradley-terry", "reward": "distance", "target": [0.0], "k": 2, "temperature": temperature},
              x, info=SourceInfo(dim=1))
    p = 1 / (1 + np.exp(-1 / temperature))
    near = (out[..., 0] == 0.0).mean()
    se = np.sqrt(p * (1 - p) / (R * m))
    assert abs(near - p) < 4 * se, (near, p)


def test_bradley_terry_is_greedy_at_low_temperature():
    x = cands(3, 40)
    out = run({"method": "bradley-terry", **ORIGIN, "k": 4, "temperature": 1e-6}, x)
    best = norms(x).reshape(3, 10, 4).min(-1)
    np.testing.assert_allclose(norms(out), best)


def test_threshold_fill_rules():
    """c ≥ m passing: m distinct passing points; 0 < c < m: all passing + resampled passing; c = 0: the m best."""
    R, m = 3, 5
    x = np.zeros((R, 4 * m, 1))
    x[0, :, 0] = np.arange(20)  # 6 pass (0..5) >= m
    x[1, :, 0] = np.concatenate([[0.0, 1.0], np.arange(10, 28)])  # 2 pass
    x[2, :, 0] = np.arange(20) + 100.0  # none pass
    out = run({"method": "threshold", "reward": "distance", "target": [0.0], "threshold": -5.0}, x,
              info=SourceInfo(dim=1))[..., 0]
    assert np.all(out[0] <= 5) and len(np.unique(out[0])) == m
    assert set(out[1]) == {0.0, 1.0}
    np.testing.assert_array_equal(np.sort(out[2]), np.arange(100.0, 105.0))


def test_threshold_fill_is_uniform_among_passing():
    R, m = 2000, 4
    x = np.full((R, 4 * m, 1), 50.0)
    x[:, 3, 0], x[:, 9, 0] = 0.0, 1.0  # exactly two pass; the two extra slots pick each with prob 1/2
    out = run({"method": "threshold", "reward": "distance", "target": [0.0], "threshold": -2.0}, x,
              info=SourceInfo(dim=1))[..., 0]
    assert np.all(out < 2)
    share = (out[:, 2:] == 0.0).mean()
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / (2 * R))


def test_denoise_zeroes_faint_pixels():
    info = SourceInfo(dim=4, kind="image", image_shape=(2, 2))
    x = np.array([[[0.1, 0.5, 1.0, 0.49], [2.0, 1.0, 0.2, 0.0]]])
    cur = curation.build({"method": "denoise", "fraction": 0.5}, info, None)
    assert cur.candidates(6) == 6
    np.testing.assert_array_equal(cur(x), [[[0.0, 0.5, 1.0, 0.0], [2.0, 1.0, 0.0, 0.0]]])
    with pytest.raises(ConfigError, match="curation.method"):
        curation.build({"method": "denoise"}, INFO, None)


def test_likelihood_top_k_drops_the_minority_mode():
    """One curated step from a 0.9/0.1 mixture: top-k keeps less minority than random-k keeps (≈ 0.1), bottom-k more."""
    model, R, m = MixtureModel(), 200, 50
    share = {}
    for method in ("top-k", "random-k", "bottom-k"):
        cur = curation.build({"method": method, "reward": "log-likelihood"}, SourceInfo(dim=1), None)
        x = model.sample(cur.candidates(m), Streams(1, R, 1, "sample"))
        out = cur(x, model=model, streams=Streams(1, R, 1, "curate"))
        share[method] = (out[..., 0] > 2.5).mean()
    se = np.sqrt(0.1 * 0.9 / (R * m))
    assert abs(share["random-k"] - 0.1) < 4 * se
    assert share["top-k"] < 0.1 - 10 * se and share["bottom-k"] > 0.1 + 10 * se, share


def user_reward(x):
    return -np.abs(x).sum(-1)


def bad_reward(x):
    return x.sum()


def test_user_reward_by_import_path():
    x = cands(2, 20)
    out = run({"method": "top-k", "reward": f"{__name__}:user_reward"}, x)
    assert out.shape == (2, 5, 2) and np.abs(out).sum(-1).max() <= np.sort(np.abs(x).sum(-1), 1)[:, 4].max() + 1e-12


@pytest.mark.parametrize("cfg, field", [
    ({"method": "top-k", "reward": "nosuchmodule.x:fn"}, "curation.reward"),
    ({"method": "top-k", "reward": f"{__name__}:nope"}, "curation.reward"),
    ({"method": "top-k", "reward": "likelihood"}, "curation.reward"),
    ({"method": "top-k", "oversample": 0}, "curation.oversample"),
    ({"method": "bradley-terry", "k": 0}, "curation.k"),
    ({"method": "bradley-terry", "temperature": 0}, "curation.temperature"),
    ({"method": "threshold"}, "curation.threshold"),
    ({"method": "top-k", "reward": "distance"}, "curation.target"),
    ({"method": "top-k", "reward": "distance", "target": [1, 2, 3]}, "curation.target"),
    ({"method": "top-k", "reward": "classifier", "class": 1}, "curation.reward"),
    ({"method": "cherry"}, "curation.method"),
    ({"method": "top-k", "oversampel": 3}, "curation.oversampel"),
])
def test_bad_parameters_name_the_field(cfg, field):
    with pytest.raises(ConfigError) as err:
        curation.build(cfg, INFO, None)
    assert str(err.value).startswith(field) and "\n" not in str(err.value)


def test_runtime_reward_errors():
    x = cands(2, 20)
    with pytest.raises(ConfigError, match=r"^curation.reward = .*returned shape \(\)"):
        run({"method": "top-k", "reward": f"{__name__}:bad_reward"}, x)
    with pytest.raises(ConfigError, match="^curation.reward = 'log-likelihood'"):
        run({"method": "top-k"}, x, model=object())


def test_classifier_reward_plumbing(monkeypatch):
    """The classifier reward resizes images to 8×8 and returns the chosen class's probability (fake network)."""
    from autophagy import features

    class Net:
        def classify(self, x):
            assert x.shape[1] == 64
            p = np.zeros((len(x), 10))
            p[:, 3] = x.mean(1)
            p[:, 0] = 1 - p[:, 3]
            return p

    monkeypatch.setattr(features, "digit_features", lambda cache_dir=None: Net())
    info = SourceInfo(dim=256, kind="image", image_shape=(16, 16))
    x = np.stack([np.full((3, 256), v) for v in (0.2, 0.9)])  # (2, 3, 256)
    r = rewards.build_reward(rewards.RewardOptions.model_validate({"reward": "classifier", "class": 3}), info, "curation")
    np.testing.assert_allclose(r(x), [[0.2] * 3, [0.9] * 3])
    with pytest.raises(ConfigError, match="^curation.class"):
        rewards.build_reward(rewards.RewardOptions.model_validate({"reward": "classifier", "class": 12}), info, "curation")


def test_classifier_reward_prefers_the_class_on_real_digits():
    """Top-k by the in-project classifier's confidence for 7 keeps mostly real 7s (trains the MLP if not cached)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0)[None, :400]
    info = SourceInfo(dim=64, kind="image", image_shape=(8, 8))
    out = run({"method": "top-k", "reward": "classifier", "class": 7, "oversample": 10}, x, info=info)
    kept = [np.flatnonzero((x[0] == o).all(1))[0] for o in out[0]]
    assert (d.target[:400][kept] == 7).mean() > 0.8  # 7s are ~10% of the candidates


def infinite_reward(x):
    r = np.zeros(x.shape[:2])
    r[:, 1::4] = np.inf
    return r


def test_bradley_terry_with_infinite_rewards_picks_those():
    x = cands(3, 40)
    out = run({"method": "bradley-terry", "reward": f"{__name__}:infinite_reward", "k": 4}, x)
    np.testing.assert_array_equal(out, x[:, 1::4])


def test_curated_runs_record_quality_and_diversity_side_by_side():
    """metrics.tradeoff (default true) adds prd, variance-ratio, mode-coverage and the curation reward's mean."""
    base = {"seed": 1, "replicates": 3, "generations": 1, "data": {"source": "mixture", "n_components": 4},
            "model": {"family": "kde", "bandwidth": 0.2}, "loop": {"policy": "replace", "n_real": 60},
            "curation": {"method": "top-k", "oversample": 2, "reward": "distance", "target": [1.0, 0.0]},
            "metrics": {"use": ["sliced-wasserstein"], "n_eval": 50, "n_heldout": 50}}
    res = autophagy.run(base).metrics
    keys = set(res.metric)
    assert {"sliced-wasserstein", "precision", "recall", "variance-ratio", "mode-coverage", "minority-mass",
            "reward-mean"} <= keys
    off = autophagy.run({**base, "metrics": {**base["metrics"], "tradeoff": False}})
    assert {m for m in off.metrics.metric if not m.startswith("param.")} == {"sliced-wasserstein"}
    # the reward-mean metric uses the curation's own reward: the mean negative distance to the target
    assert (res[res.metric == "reward-mean"].value <= 0).all()


def test_tradeoff_skips_knn_metrics_on_high_dimensional_images():
    cfg = {"seed": 0, "replicates": 2, "generations": 1, "data": {"source": "binomial-grid", "size": 10, "cluster": 2},
           "model": {"family": "kde", "bandwidth": 0.05}, "loop": {"policy": "replace", "n_real": 30},
           "curation": {"method": "denoise", "fraction": 0.1}, "metrics": {"n_eval": 20, "n_heldout": 20}}
    keys = set(autophagy.run(cfg).metrics.metric)
    assert "variance-ratio" in keys and "precision" not in keys  # d = 100 > 64: no k-NN balls on raw pixels
