"""Third-party metrics: registered through the ``autophagy.metrics`` entry-point group, declared kinds,
needs and options checked before the first fit, recorded by the loop like built-in metrics."""
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import autophagy
from autophagy import metrics as M
from autophagy.cli import app
from autophagy.errors import ConfigError
from autophagy.protocols import SourceInfo

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()

MODULE = textwrap.dedent('''
    import numpy as np
    from pydantic import BaseModel, ConfigDict, Field

    class ScaleOptions(BaseModel):
        model_config = ConfigDict(extra="forbid")
        scale: float = Field(1.0, gt=0, description="multiplies the ratio")

    def my_variance_ratio(reference, samples, *, model=None, info=None, streams=None, **options):
        """Diversity: the built-in variance-ratio, times a scale (a plug-in for the tests)."""
        o = ScaleOptions(**options)
        y, x = np.asarray(samples, float), np.asarray(reference, float)
        return {"my-variance-ratio": o.scale * y.var(axis=1, ddof=1).sum(-1) / x.var(axis=1, ddof=1).sum(-1)}

    my_variance_ratio.kinds = {"vector"}
    my_variance_ratio.Options = ScaleOptions

    def noisy(reference, samples, *, model=None, info=None, streams=None, **options):
        """Draws from its own stream; returns one (R,) array."""
        return streams.normal(3).mean(axis=1)

    def token_only(reference, samples, **kw):
        return np.zeros(len(samples))

    token_only.kinds = {"tokens"}

    def density_only(reference, samples, *, model=None, **kw):
        return model.log_prob(reference).mean(axis=1)

    density_only.needs = {"log_prob"}
''')

ENTRIES = """[autophagy.metrics]
my-variance-ratio = {mod}:my_variance_ratio
noisy = {mod}:noisy
token-only = {mod}:token_only
density-only = {mod}:density_only
broken = {mod}_missing:fn
tv = {mod}:noisy
"""


def _install(tmp_path, monkeypatch, name: str, module: str, entries: str) -> None:
    """A fake installed distribution: the module and a dist-info with entry points, on sys.path."""
    (tmp_path / f"{name}.py").write_text(module)
    dist = tmp_path / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(entries)
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "my_metric_plugin", MODULE, ENTRIES.format(mod="my_metric_plugin"))
    yield "my_metric_plugin"
    sys.modules.pop("my_metric_plugin", None)
    for name in list(M.registry._LOADED):
        M.registry._LOADED.pop(name)


def cfg(*metrics, family="gaussian"):
    return {"seed": 1, "replicates": 6, "generations": 2, "data": {"source": "gaussian", "dim": 2},
            "model": {"family": family}, "loop": {"policy": "replace", "n_real": 30},
            "metrics": {"use": list(metrics), "n_eval": 40, "n_heldout": 50}}


def test_entry_point_metric_runs_in_a_loop_and_matches_the_builtin(plugin):
    """The plug-in receives the same held-out points and samples as the built-ins: scale × variance-ratio."""
    res = autophagy.run(cfg("variance-ratio", {"name": "my-variance-ratio", "scale": 2.5}, "noisy"))
    m = res.metrics.pivot_table(index=["generation", "replicate"], columns="metric", values="value")
    assert len(m) == 6 * 3
    np.testing.assert_allclose(m["my-variance-ratio"], 2.5 * m["variance-ratio"], rtol=1e-12)
    assert m["noisy"].notna().all() and m["noisy"].nunique() == len(m)  # a bare (R,) array, under its name
    # its own sub-stream: adding plug-ins changes no other number
    alone = autophagy.run(cfg("variance-ratio")).metrics
    np.testing.assert_array_equal(alone[alone.metric == "variance-ratio"].value.to_numpy(),
                                  res.metrics[res.metrics.metric == "variance-ratio"].value.to_numpy())


def test_declarations_are_checked_before_the_first_fit(plugin, monkeypatch):
    from autophagy import loop

    monkeypatch.setattr(loop, "_fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("fitted")))
    cases = [(("token-only",), r"^metrics = 'token-only': expected a token source \(markov-text, text\) for a text metric$"),
             (({"name": "my-variance-ratio", "colour": 1},), r"^metrics\.my-variance-ratio = 'colour': expected one of scale$"),
             (({"name": "my-variance-ratio", "scale": -1},), r"^metrics\.my-variance-ratio\.scale = -1: .*greater than 0"),
             (("broken",), r"^metrics\.broken = 'my_metric_plugin_missing:fn': expected an importable entry point"),
             (("no-such",), r"^metrics = 'no-such': expected one of .*my-variance-ratio")]
    for metrics, match in cases:
        with pytest.raises(ConfigError, match=match) as err:
            autophagy.run(cfg(*metrics))
        assert "\n" not in str(err.value)
    cat = SourceInfo(dim=1, kind="categorical", n_categories=3)
    with pytest.raises(ConfigError, match=r"for categorical data one of heldout-nll, kl, tv$"):
        M.check_applicable([("my-variance-ratio", {})], cat, has_log_prob=True)
    with pytest.raises(ConfigError, match=r"a model family with log_prob \(this one has none\): drop density-only"):
        M.check_applicable([("density-only", {})], SourceInfo(dim=2), has_log_prob=False)
    M.check_applicable([("density-only", {})], SourceInfo(dim=2), has_log_prob=True)


def test_builtin_names_win_and_components_lists_plugins(plugin):
    assert M.lookup("tv") is M.BUILTIN["tv"]  # an entry point cannot replace a built-in metric
    assert "my-variance-ratio" in M.METRICS and M.OPTIONS["my-variance-ratio"].__name__ == "ScaleOptions"
    assert "my-variance-ratio" not in M.BUILTIN
    out = CliRunner().invoke(app, ["components", "my-variance-ratio"])
    assert out.exit_code == 0, out.output
    assert "the built-in variance-ratio, times a scale" in out.output and "scale: float > 0 = 1.0" in out.output
    listing = CliRunner().invoke(app, ["components", "metrics"])
    assert listing.exit_code == 0, listing.output
    assert re.search(r"^  noisy  Draws from its own stream", listing.output, re.M)
    assert re.search(r"^  broken  \(unavailable: metrics\.broken = .*No module named", listing.output, re.M)


def test_no_plugin_no_entry(tmp_path):
    assert "my-variance-ratio" not in M.METRICS
    with pytest.raises(KeyError):
        M.METRICS["my-variance-ratio"]


def test_readme_metric_example(tmp_path, monkeypatch):
    """README's mypkg/metrics.py and its entry point, installed as a distribution and run in a loop."""
    body = re.search(r"```python\n(# mypkg/metrics.py\n.*?)```", README, re.S).group(1)
    toml = re.search(r'```toml\n(\[project.entry-points."autophagy.metrics"\]\n.*?)```', README, re.S).group(1)
    name, target = (s.strip().strip('"') for s in toml.splitlines()[1].split("="))
    assert (name, target) == ("spread", "mypkg.metrics:spread")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    _install(tmp_path, monkeypatch, "mypkg_dist", "", f"[autophagy.metrics]\n{name} = mypkg.metrics:spread\n")
    (tmp_path / "mypkg" / "metrics.py").write_text(body)
    try:
        x = np.random.default_rng(0).normal(size=(3, 50, 2))  # test data only
        np.testing.assert_allclose(M.METRICS["spread"](x, 2 * x)["spread"], 2.0)
        np.testing.assert_allclose(M.METRICS["spread"](x, 2 * x, power=2)["spread"], 4.0)
        res = autophagy.run(cfg({"name": "spread", "power": 2}))
        v = res.metrics[res.metrics.metric == "spread"].value
        assert len(v) == 6 * 3 and np.isfinite(v).all()
        with pytest.raises(ConfigError, match=r"^metrics = 'spread': expected for token data one of"):
            M.check_applicable([("spread", {})], SourceInfo(dim=4, kind="tokens"), has_log_prob=True)
    finally:
        for mod in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
            del sys.modules[mod]
        M.registry._LOADED.pop("spread", None)


def test_tradeoff_adds_only_metrics_that_declare_the_data_kind():
    """A curated token run used to be refused: the trade-off metrics (prd, variance-ratio) are vector metrics."""
    tokens = SourceInfo(dim=4, kind="tokens", seq_len=4, vocab_size=6)
    assert M.with_tradeoff([("distinct-n", {})], tokens, {"method": "random-k"}) == [("distinct-n", {})]
    vec = SourceInfo(dim=2)
    assert [n for n, _ in M.with_tradeoff([], vec, {"method": "random-k"})] == ["prd", "variance-ratio"]
    res = autophagy.run({"replicates": 2, "generations": 1, "data": {"source": "markov-text", "vocab": 6, "seq_len": 4},
                         "model": {"family": "ngram"}, "loop": {"n_real": 30}, "curation": {"method": "random-k", "oversample": 2},
                         "metrics": {"use": ["distinct-n"], "n_eval": 20, "n_heldout": 20}})
    assert {m for m in res.metrics.metric if not m.startswith("param.")} == {"distinct-1", "distinct-2", "distinct-3"}


def test_plugin_declarations_are_read_as_sets():
    def fn(reference, samples, **kw):
        return np.zeros(len(samples))

    fn.kinds, fn.needs = "tokens", "log_prob"  # one string is one kind, not its letters
    m = M.registry._from_entry_point("fn", fn)
    assert m.kinds == {"tokens"} and m.needs == {"log_prob"}
    fn.kinds = set()
    with pytest.raises(ConfigError, match=r"^metrics\.fn\.kinds"):
        M.registry._from_entry_point("fn", fn)
    fn.kinds, fn.needs = {"vector"}, {"gradients"}
    with pytest.raises(ConfigError, match=r"^metrics\.fn\.needs = 'gradients': expected one of log_prob"):
        M.registry._from_entry_point("fn", fn)
