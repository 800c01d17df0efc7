"""Plug-ins: a single-dataset model named by import path or entry point is lifted to replicates."""
import sys
import textwrap

import numpy as np
import pytest

import autophagy
from autophagy.errors import ConfigError

MODULE = textwrap.dedent('''
    import numpy as np

    class MeanOnly:
        """A toy single-dataset model: N(sample mean, scale^2 I)."""
        def __init__(self, scale=1.0):
            self.scale = scale
        def fit(self, x, rng):
            self.mu = x.mean(axis=0)
            return self
        def sample(self, m, rng, bias=1.0):
            return self.mu + np.sqrt(bias) * self.scale * rng.standard_normal((m, self.mu.shape[0]))
        def log_prob(self, x):
            return -0.5 * (((x - self.mu) / self.scale) ** 2).sum(-1) - x.shape[-1] * np.log(self.scale * np.sqrt(2 * np.pi))

    class NoDensity:
        def fit(self, x, rng):
            self.mu = x.mean(axis=0)
        def sample(self, m, rng, bias=1.0):
            return self.mu + rng.standard_normal((m, self.mu.shape[0]))

    class WrongShape(MeanOnly):
        def sample(self, m, rng, bias=1.0):
            return np.zeros((m + 1, 1))
''')


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    (tmp_path / "my_autophagy_plugin.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_autophagy_plugin"
    sys.modules.pop("my_autophagy_plugin", None)


def cfg(family, **opts):
    return {"seed": 0, "replicates": 300, "generations": 3, "data": {"source": "gaussian", "dim": 2},
            "model": {"family": family, **opts}, "loop": {"policy": "replace", "n_real": 25},
            "metrics": ["heldout-nll"]}


def test_import_path_family_is_lifted_and_follows_theory(plugin_module):
    """With a fixed unit scale the mean is a random walk: E||μ_g − μ*||² = d (g + 1) / n."""
    res = autophagy.run(cfg(f"{plugin_module}:MeanOnly", scale=1.0))
    m = res.metrics
    nll = m[m.metric == "heldout-nll"]
    assert np.isfinite(nll.value).all() and len(nll) == 300 * 4
    # the lifted model records no param.* metrics, but its samples are seeded: rerun is identical
    again = autophagy.run(cfg(f"{plugin_module}:MeanOnly", scale=1.0)).metrics
    assert m.equals(again)
    # held-out NLL grows as the mean wanders off: E[NLL] = d/2 log(2π) + (d + E||μ_g − μ*||²)/2
    by_gen = nll.groupby("generation").value
    expected = np.log(2 * np.pi) + 0.5 * (2 + 2 * (np.arange(4) + 1) / 25)
    se = by_gen.std() / np.sqrt(by_gen.count())
    assert np.all(np.abs(by_gen.mean().to_numpy() - expected) < 4 * se.to_numpy() + 0.01)


def test_wrong_sample_shape_and_bad_options_are_config_errors(plugin_module):
    with pytest.raises(ConfigError, match="model.family"):
        autophagy.run(cfg(f"{plugin_module}:WrongShape"))
    with pytest.raises(ConfigError, match="^model"):
        autophagy.run(cfg(f"{plugin_module}:MeanOnly", colour="red"))
    with pytest.raises(ConfigError, match="model.family"):
        autophagy.run(cfg(f"{plugin_module}:Missing"))


def test_entry_point_family(tmp_path, plugin_module, monkeypatch):
    dist = tmp_path / "my_autophagy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-autophagy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[autophagy.families]\nmean-only = {plugin_module}:MeanOnly\n")
    res = autophagy.run({**cfg("mean-only"), "replicates": 5})
    assert set(res.metrics.metric) == {"heldout-nll"}


@pytest.mark.parametrize("extra, field", [({"metrics": ["heldout-nll"]}, "metrics"),
                                          ({"metrics": [], "curation": {"method": "top-k", "oversample": 2}}, "curation.reward")])
def test_density_needs_are_checked_before_anything_runs(plugin_module, monkeypatch, extra, field):
    """A model without log_prob is refused before generation 0 is fitted (heldout-nll, likelihood curation)."""
    import my_autophagy_plugin as mod

    calls = []
    monkeypatch.setattr(mod.NoDensity, "fit", lambda self, x, rng: calls.append(1))
    with pytest.raises(ConfigError) as err:
        autophagy.run({**cfg(f"{plugin_module}:NoDensity"), **extra})
    assert str(err.value).startswith(field) and "\n" not in str(err.value)
    assert not calls
