"""CLI and bad-input tests: every bad input gets one line naming the field, exit code 2, nothing written."""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from autophagy.cli import app

runner = CliRunner()

SMALL = {"name": "small", "seed": 1, "replicates": 6, "generations": 3,
         "data": {"source": "gaussian", "dim": 2},
         "model": {"family": "gaussian"},
         "loop": {"policy": "augment", "n_real": 30},
         "metrics": ["sliced-wasserstein"]}


def write(tmp_path, cfg, name="c.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_run_writes_store_csv_and_plot(tmp_path):
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", str(write(tmp_path, SMALL)), "--out", str(out), "--set", "generations=2"])
    assert r.exit_code == 0, r.output
    assert (out / "results.sqlite").exists() and (out / "metrics.csv").exists()
    assert list(out.glob("*.png"))
    assert "where each loop ends up" in r.output
    # same config again: reused, not recomputed
    r2 = runner.invoke(app, ["run", str(write(tmp_path, SMALL)), "--out", str(out), "--set", "generations=2"])
    assert "reused 1 finished run" in r2.output


def test_the_export_helper_writes_what_the_store_writes_and_falls_back_when_it_dies(tmp_path, monkeypatch):
    """`run --out` has a helper process write metrics.csv / runs.csv while it draws the figure
    (export_process): the same bytes as Store.export; a helper that died mid-run is replaced by an export
    here; no helper process or temporary file is left behind either way."""
    from autophagy import export_process
    from autophagy.store import Store

    started = []
    original = export_process.ExportProcess.__init__

    def spy(self, out):
        original(self, out)
        started.append(self)

    monkeypatch.setattr(export_process.ExportProcess, "__init__", spy)
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", str(write(tmp_path, SMALL)), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert len(started) == 1 and started[0].proc.poll() is not None  # the helper has exited
    by_helper = {name: (out / name).read_bytes() for name in ("metrics.csv", "runs.csv")}
    Store(out).export("csv")
    assert by_helper == {name: (out / name).read_bytes() for name in ("metrics.csv", "runs.csv")}
    assert len(by_helper["metrics.csv"].splitlines()) > 6 * 4  # replicates x generations: real content

    dead = tmp_path / "dead"
    go = export_process.ExportProcess.go
    monkeypatch.setattr(export_process.ExportProcess, "go",
                        lambda self: (self.proc.kill(), self.proc.wait(), go(self))[2])
    r = runner.invoke(app, ["run", str(write(tmp_path, SMALL)), "--out", str(dead)])
    assert r.exit_code == 0, r.output
    assert (dead / "metrics.csv").read_bytes() == by_helper["metrics.csv"]
    assert not list(dead.glob(".*.tmp")) and not list(out.glob(".*.tmp"))


def test_a_failing_run_stops_the_export_helper(tmp_path, monkeypatch):
    from autophagy import api, export_process

    started = []
    original = export_process.ExportProcess.__init__

    def spy(self, out):
        original(self, out)
        started.append(self)

    def boom(*a, **k):
        raise RuntimeError("a shard failed")

    monkeypatch.setattr(export_process.ExportProcess, "__init__", spy)
    monkeypatch.setattr(api, "execute", boom)
    r = runner.invoke(app, ["run", str(write(tmp_path, SMALL)), "--out", str(tmp_path / "out")])
    assert r.exit_code != 0 and isinstance(r.exception, RuntimeError)
    assert len(started) == 1 and started[0].proc.poll() is not None  # the helper has exited
    assert not (tmp_path / "out" / "metrics.csv").exists()


def test_toml_config_and_export(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('seed = 2\nreplicates = 4\ngenerations = 2\n[loop]\npolicy = "replace"\nn_real = 20\n')
    out = tmp_path / "o"
    assert runner.invoke(app, ["run", str(toml), "--out", str(out)]).exit_code == 0
    r = runner.invoke(app, ["export", str(out), "--format", "parquet"])
    assert r.exit_code == 0, r.output
    import pandas as pd

    df = pd.read_parquet(out / "metrics.parquet")
    assert list(df.columns) == ["run_id", "replicate", "generation", "metric", "value"]
    assert len(df) == 4 * 3 * df.metric.nunique()


def test_components_lists_everything():
    r = runner.invoke(app, ["components"])
    assert r.exit_code == 0
    for name in ("gaussian", "kde", "gmm", "categorical", "linear-regression", "mixture", "swiss-roll",
                 "accumulate-subsample", "sliced-wasserstein", "estimator", "bandwidth", "top-k", "reference-mix",
                 "n_synthetic", "projections"):
        assert name in r.output, name
    # valid values are spelled out, not bare type names, and docstring brackets survive (no rich markup)
    assert "layout: 'ring' | 'grid' | 'custom' = 'ring'" in r.output
    assert "rows [x, y]" in r.output and "Literal =" not in r.output


def test_yaml_off_is_read_as_the_word(tmp_path):
    """YAML 1.1 reads a bare `off` as false; `loop.sufficient_stats: off` must still mean 'off'."""
    p = tmp_path / "c.yaml"
    p.write_text("seed: 0\nreplicates: 2\ngenerations: 1\ndata: {source: gaussian, dim: 1}\n"
                 "model: {family: gaussian}\nloop: {policy: replace, n_real: 10, sufficient_stats: off}\n")
    from autophagy import load_config

    assert load_config(p)[0].loop.sufficient_stats == "off"
    r = runner.invoke(app, ["run", str(p), "--no-save", "--set", "loop.sufficient_stats=off"])
    assert r.exit_code == 0, r.output


BAD = [
    ({"loop": {"n_real": -5}}, "loop.n_real"),
    ({"sampling": {"bias": 1.5}}, "sampling.bias"),
    ({"sampling": {"bias": 0}}, "sampling.bias"),
    ({"replicates": "many"}, "replicates"),
    ({"replicates": True}, "replicates"),
    ({"colour": "red"}, "colour"),
    ({"loop": {"policy": "recycle"}}, "loop.policy"),
    ({"model": {"family": "gaussian", "estimator": "bayes"}}, "model.estimator"),
    ({"model": {"family": "nonexistent"}}, "model.family"),
    ({"model": {"family": "gaussian", "covarianse": "full"}}, "model.covarianse"),
    ({"data": {"source": "gaussian", "dim": 0}}, "data.dim"),
    ({"metrics": ["not-a-metric"]}, "metrics"),
    ({"model": {"family": "nopkg.nomod:Model"}}, "model.family"),
]


@pytest.mark.parametrize("patch,field", BAD)
def test_bad_config_one_line_exit_2(tmp_path, patch, field):
    cfg = json.loads(json.dumps(SMALL))
    for k, v in patch.items():
        cfg[k] = {**cfg.get(k, {}), **v} if k in ("loop", "sampling") else v
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", str(write(tmp_path, cfg)), "--out", str(out)])
    assert r.exit_code == 2, r.output
    lines = [l for l in r.output.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and field in lines[0], r.output
    assert "Traceback" not in r.output
    assert not out.exists()


@pytest.mark.parametrize("content,problem", [
    (None, "empty"), ("nan", "NaN"), ("inf", "inf"), ("shape", "dim"),
])
def test_bad_data_files(tmp_path, content, problem):
    path = tmp_path / "data.npy"
    if content is None:
        np.save(path, np.zeros((0, 2)))
    elif content == "nan":
        x = np.zeros((10, 2)); x[3, 1] = np.nan; np.save(path, x)
    elif content == "inf":
        x = np.zeros((10, 2)); x[4, 0] = np.inf; np.save(path, x)
    else:
        np.save(path, np.zeros((4, 3, 2)))
    cfg = {**SMALL, "data": {"source": "file", "path": str(path)}}
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", str(write(tmp_path, cfg)), "--out", str(out)])
    assert r.exit_code == 2, r.output
    lines = [l for l in r.output.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and "data.path" in lines[0] and problem.lower() in lines[0].lower(), r.output
    assert not out.exists()


def test_missing_config_and_bad_yaml(tmp_path):
    r = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2 and "config" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1, 2\n")
    r = runner.invoke(app, ["run", str(bad)])
    assert r.exit_code == 2 and "YAML" in r.output


def test_bad_set_override(tmp_path):
    r = runner.invoke(app, ["run", str(write(tmp_path, SMALL)), "--set", "generations"])
    assert r.exit_code == 2 and "--set" in r.output


def test_export_bad_format_and_dir(tmp_path):
    r = runner.invoke(app, ["export", str(tmp_path), "--format", "xlsx"])
    assert r.exit_code == 2 and "--format" in r.output
    r = runner.invoke(app, ["export", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "results.sqlite" in r.output


def test_theory_command_compares_and_refuses_without_closed_form(tmp_path):
    cfg = {"seed": 0, "replicates": 400, "generations": 3, "data": {"source": "gaussian", "dim": 1},
           "model": {"family": "gaussian"}, "loop": {"policy": "replace", "n_real": 20}}
    r = runner.invoke(app, ["theory", str(write(tmp_path, cfg))])
    assert r.exit_code == 0, r.output
    assert "param.trace_cov" in r.output and "comparisons beyond 4 standard errors" in r.output
    r = runner.invoke(app, ["theory", str(write(tmp_path, cfg)), "--predict-only"])
    assert r.exit_code == 0 and "expected" in r.output
    gmm = {**cfg, "model": {"family": "gmm", "components": 2}}
    r = runner.invoke(app, ["theory", str(write(tmp_path, gmm, "g.yaml"))])
    assert r.exit_code == 2 and "closed form" in r.output.lower(), r.output


def test_summary_table_columns_from_config_and_flag(tmp_path):
    cfg = {**SMALL, "metrics": {"use": ["sliced-wasserstein"], "table": ["param.w2_sq", "nonexistent"]}}
    r = runner.invoke(app, ["run", str(write(tmp_path, cfg)), "--no-save"])
    assert r.exit_code == 0, r.output
    header = next(line for line in r.output.splitlines() if "run" in line and "┃" in line)
    assert "param.w2_sq" in header and "sliced-wasserstein" not in header
    assert "not recorded, left out of the table: nonexistent" in r.output
    r = runner.invoke(app, ["run", str(write(tmp_path, cfg)), "--no-save", "-m", "sliced-wasserstein"])
    header = next(line for line in r.output.splitlines() if "run" in line and "┃" in line)
    assert "sliced-wasserstein" in header and "param.w2_sq" not in header


@pytest.mark.parametrize("patch, expected", [
    ({"model": {"family": "kde", "bandwith": 0.1}}, "model.bandwith = 0.1: unknown option (check the spelling; valid options: bandwidth)"),
    ({"loop": {"policy": "replace", "n_reel": 5}}, "valid options: policy, n_real, n_synthetic"),
    ({"correction": {"method": "knn-pull", "gama": 1}}, "correction.gama = 1: unknown option (check the spelling; valid options: method, gamma"),
])
def test_unknown_options_list_the_valid_ones(tmp_path, patch, expected):
    r = runner.invoke(app, ["run", str(write(tmp_path, {**SMALL, **patch})), "--no-save"])
    assert r.exit_code == 2 and expected in r.output and len(r.output.strip().splitlines()) == 1, r.output
