"""Self-correction operators: γ = 0 is the identity, counts and determinism, the π_γ mixing
rate, the 1/(1+γ) contraction of the geometric operators, and one-line errors."""
import numpy as np
import pytest

from autophagy import correction
from autophagy.errors import ConfigError
from autophagy.protocols import SourceInfo
from autophagy.rng import Streams


class Corners:
    """A toy source: 4 well-separated clusters (±5, ±5) with sd 0.1; labelled by corner."""

    centres = np.array([[5.0, 5.0], [5.0, -5.0], [-5.0, 5.0], [-5.0, -5.0]])
    info = SourceInfo(dim=2, truth={"mean": np.zeros(2)})

    def sample_labeled(self, n, streams):
        lab = streams.child("lab").integers(4, n)
        return self.centres[lab] + 0.1 * streams.child("z").normal(n, 2), lab

    def sample(self, n, streams):
        return self.sample_labeled(n, streams)[0]


class Unlabelled(Corners):
    sample_labeled = None


class Constant:
    """Every real point equals 100 (makes replaced samples recognisable)."""

    info = SourceInfo(dim=2)

    def sample(self, n, streams):
        return np.full((streams.R, n, 2), 100.0)


def synth(R=4, m=30, seed=0):
    return 3 * Streams(seed, R, 1, "synth").normal(m, 2)


def apply(cfg, x, source=Corners(), seed=5):
    return correction.build(cfg, source, None)(x, streams=Streams(seed, x.shape[0], 1, "correct"))


ALL = [{"method": "reference-mix"}, {"method": "reference-mix", "reference": "fitted", "n_reference": 50},
       {"method": "nearest-prototype", "k": 4, "n_reference": 100}, {"method": "knn-pull", "n_reference": 50},
       {"method": "project", "projector": f"{__name__}:halve"},
       {"method": "knn-pull", "n_reference": 50, "mode": "mix"}]


def halve(x):
    return 0.5 * x


def wrong_shape(x):
    return x[:, :1]


@pytest.mark.parametrize("cfg", ALL, ids=lambda c: c["method"] + ("-" + c.get("reference", c.get("mode", ""))))
def test_contracts(cfg):
    x = synth()
    assert apply({**cfg, "gamma": 0.0}, x) is x  # γ = 0: the batch itself, bit-identical
    out = apply({**cfg, "gamma": 1.5}, x)
    assert out.shape == x.shape and not np.array_equal(out, x)
    np.testing.assert_array_equal(out, apply({**cfg, "gamma": 1.5}, x))  # same seed-tree node, same numbers
    np.testing.assert_array_equal(out[:2], apply({**cfg, "gamma": 1.5}, x[:2]))  # independent of R
    if cfg["method"] == "reference-mix" or cfg.get("mode") == "mix":  # random operators follow the seed
        assert not np.array_equal(out, apply({**cfg, "gamma": 1.5}, x, seed=6))


@pytest.mark.parametrize("gamma", [0.5, 3.0])
def test_reference_mix_replaces_a_share_gamma_over_one_plus_gamma(gamma):
    R, m = 400, 50
    x = synth(R, m)
    out = apply({"method": "reference-mix", "gamma": gamma}, x, Constant())
    replaced = (out == 100.0).all(-1)
    assert np.array_equal(out[~replaced], x[~replaced])
    t = gamma / (1 + gamma)
    assert abs(replaced.mean() - t) < 4 * np.sqrt(t * (1 - t) / (R * m))


def test_reference_mix_full_strength_and_fitted_reference():
    x = synth(200, 40)
    np.testing.assert_array_equal(apply({"method": "reference-mix", "strength": "full"}, x, Constant()), 100.0)
    np.testing.assert_array_equal(apply({"method": "reference-mix", "gamma": float("inf")}, x, Constant()), 100.0)
    # fitted: a Gaussian with the real moments (corners: mean 0, variance 25 + 0.01 per axis)
    out = apply({"method": "reference-mix", "reference": "fitted", "n_reference": 500, "strength": "full"}, x)
    assert abs(out.mean()) < 4 * 5 / np.sqrt(out.size)
    assert abs(out.var() - 25.01) < 0.1 * 25


def test_nearest_prototype_finds_the_cluster_centres():
    x = synth(3, 40)
    out = apply({"method": "nearest-prototype", "k": 4, "n_reference": 200, "strength": "full"}, x)
    d = np.sqrt(((out[:, :, None] - Corners.centres) ** 2).sum(-1)).min(-1)
    assert d.max() < 0.05
    nearest = Corners.centres[((x[:, :, None] - Corners.centres) ** 2).sum(-1).argmin(-1)]
    clear = (np.abs(x) > 0.2).all(-1)  # points near a decision boundary may go either way
    np.testing.assert_allclose(out[clear], nearest[clear], atol=0.05)
    per_class = apply({"method": "nearest-prototype", "k": 1, "n_reference": 200, "per_class": True, "strength": "full"}, x)
    np.testing.assert_allclose(per_class[clear], nearest[clear], atol=0.05)


@pytest.mark.parametrize("gamma", [0.25, 1.0, 4.0])
def test_knn_pull_contracts_distance_by_one_over_one_plus_gamma(gamma):
    x = synth(3, 25)
    full = apply({"method": "knn-pull", "n_reference": 40, "strength": "full"}, x)
    part = apply({"method": "knn-pull", "n_reference": 40, "gamma": gamma}, x)
    np.testing.assert_allclose(np.linalg.norm(part - full, axis=-1), np.linalg.norm(x - full, axis=-1) / (1 + gamma))


def test_mix_mode_projects_a_share_of_samples():
    R, m, gamma = 300, 40, 1.0
    x = synth(R, m)
    out = apply({"method": "project", "projector": f"{__name__}:halve", "gamma": gamma, "mode": "mix"}, x)
    moved = ~np.isclose(out, x).all(-1)
    np.testing.assert_allclose(out[moved], 0.5 * x[moved])
    assert abs(moved.mean() - 0.5) < 4 * np.sqrt(0.25 / (R * m))


def test_grid_projector_restores_a_clean_square():
    from autophagy.data.images import BinomialGridSource

    src = BinomialGridSource()
    clean = src.sample(20, Streams(0, 2, -1, "data"))
    noisy = np.clip(clean + 0.3 * Streams(0, 2, 1, "noise").uniform(20, clean.shape[-1]), 0, 1)
    out = correction.build({"method": "grid-projector", "strength": "full"}, src, None)(noisy, streams=Streams(0, 2, 1, "c"))
    np.testing.assert_array_equal(out, clean)
    half = correction.build({"method": "grid-projector", "gamma": 1.0}, src, None)(noisy, streams=Streams(0, 2, 1, "c"))
    np.testing.assert_allclose(half, (noisy + clean) / 2)
    same = correction.build({"method": "grid-projector", "gamma": 0.0}, src, None)(noisy, streams=Streams(0, 2, 1, "c"))
    assert same is noisy  # γ = 0: the identity, nothing computed


@pytest.mark.parametrize("cfg, field", [
    ({"method": "reference-mix", "gamma": -0.5}, "correction.gamma"),
    ({"method": "reference-mix"}, "correction.gamma"),
    ({"method": "knn-pull", "gamma": "lots"}, "correction.gamma"),
    ({"method": "nearest-prototype", "gamma": 1, "k": 50, "n_reference": 20}, "correction.k"),
    ({"method": "nearest-prototype", "gamma": 1, "k": 0}, "correction.k"),
    ({"method": "reference-mix", "gamma": 1, "reference": "model"}, "correction.reference"),
    ({"method": "project", "gamma": 1, "projector": "no.such.module:fn"}, "correction.projector"),
    ({"method": "project", "gamma": 1, "projector": f"{__name__}:missing"}, "correction.projector"),
    ({"method": "project", "gamma": 1}, "correction.projector"),
    ({"method": "physics", "gamma": 1}, "correction.method"),
    ({"method": "grid-projector", "gamma": 1}, "correction.method"),
    ({"method": "magic", "gamma": 1}, "correction.method"),
    ({"method": "knn-pull", "gamma": 1, "mode": "blend"}, "correction.mode"),
    ({"method": "knn-pull", "gamma": 1, "strenght": "full"}, "correction.strenght"),
    ({"method": "knn-pull", "gamma": 0.5, "strength": "full"}, "correction.strength"),
])
def test_bad_parameters_name_the_field(cfg, field):
    with pytest.raises(ConfigError) as err:
        correction.build(cfg, Corners(), None)
    assert str(err.value).startswith(field) and "\n" not in str(err.value)


def test_per_class_needs_labels_and_projector_shape_is_checked():
    with pytest.raises(ConfigError, match="^correction.per_class"):
        correction.build({"method": "nearest-prototype", "gamma": 1, "per_class": True}, Unlabelled(), None)
    with pytest.raises(ConfigError, match=r"^correction.projector = .*returned shape \(4, 1, 2\)"):
        apply({"method": "project", "projector": f"{__name__}:wrong_shape", "gamma": 1.0}, synth())
