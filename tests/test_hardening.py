"""Issue 11's reproducers: each now gets one clean ``AutophagyError`` line (or a valid run that says what
went wrong), before the first fit, with nothing written outside the results."""
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import autophagy
from autophagy.api import NonFiniteWarning
from autophagy.cli import app
from autophagy.errors import AutophagyError

SMALL = {"replicates": 2, "generations": 1, "loop": {"n_real": 20}, "metrics": {"n_eval": 20, "n_heldout": 20}}


def refused(cfg: dict, match: str):
    with pytest.raises(AutophagyError, match=match) as err:
        autophagy.run({**SMALL, **cfg})
    assert "\n" not in str(err.value)
    return str(err.value)


# --------------------------------------------------------------------------- fuzzing tracebacks
@pytest.mark.parametrize("cfg,match", [
    ({"loop": {"n_real": 1e30}}, "loop.n_real"),
    ({"loop": {"n_real": 10**12}}, "needs about .* of arrays"),
    ({"replicates": 10**9}, "needs about .* of arrays"),
    ({"generations": 10**12}, "generations"),
    ({"data": {"source": "numpy:array"}}, "data.source .* a source class"),
    ({"model": {"family": "numpy:array"}}, "model.family"),
    ({"curation": {"method": [1]}}, "curation.method"),
    ({"metrics": {"use": [{"name": "frechet", "features": "numpy:sum"}]}}, "metrics.frechet.features .* shape"),
])
def test_fuzzing_tracebacks_are_one_line(cfg, match):
    refused(cfg, match)


def test_memory_check_has_an_escape_hatch():
    from autophagy.build import build, memory_estimate
    from autophagy.spec import specs_for

    spec = specs_for({**SMALL, "replicates": 10**9})[0]
    plan = build(spec)  # only the driver's preflight refuses
    assert memory_estimate(spec.config, plan.source.info, []) > 10 * 2**30


def test_a_directory_as_the_config(tmp_path):
    res = CliRunner().invoke(app, ["run", str(tmp_path)])
    assert res.exit_code == 2 and "not a directory" in res.output and "Traceback" not in res.output


# --------------------------------------------------------------------------- non-finite values are never silent
@pytest.mark.parametrize("data,loop", [({"source": "gaussian", "dim": 3}, {"n_real": 3}),
                                       ({"source": "binomial-grid", "size": 6, "cluster": 2}, {"n_real": 10})])
def test_singular_fits_warn_and_flag(data, loop, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = autophagy.run({**SMALL, "data": data, "loop": loop}, out=tmp_path)
    lines = [str(w.message) for w in caught if w.category is NonFiniteWarning]
    assert lines and "param.logdet_cov = -inf at generation 0" in lines[0] and "singular covariance" in lines[0]
    assert all("\n" not in line for line in lines)
    assert res.runs.flag.iloc[0].startswith("non-finite: param.logdet_cov=-inf")
    assert autophagy.load(tmp_path).runs.flag.iloc[0] == res.runs.flag.iloc[0]
    assert pd.read_csv(tmp_path / "runs.csv").flag.iloc[0] == res.runs.flag.iloc[0]


def test_finite_runs_have_an_empty_flag():
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonFiniteWarning)
        res = autophagy.run(SMALL)
    assert res.runs.flag.iloc[0] == ""


def test_a_gaussian_on_one_point_is_refused():
    refused({"loop": {"n_real": 1}}, "at least 2 points")


def test_more_dimensions_than_points_is_said_before_the_run():
    with pytest.warns(UserWarning, match="576-dimensional covariance to 50 points"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NonFiniteWarning)
            autophagy.run({**SMALL, "replicates": 1, "generations": 0, "data": {"source": "binomial-grid"},
                           "loop": {"n_real": 50}})


# --------------------------------------------------------------------------- checked before the first fit
def test_metric_typo_on_the_command_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("replicates: 2\ngenerations: 1\n")
    res = CliRunner().invoke(app, ["run", str(cfg), "-m", "recal", "--no-save"])
    assert res.exit_code == 2 and "did you mean recall" in res.output and "where each loop" not in res.output


@pytest.mark.parametrize("cfg,match", [
    ({"metrics": {"use": [{"name": "prd", "k": 30}], "n_eval": 20, "n_heldout": 40}}, "metrics.prd.k = 30"),
    ({"metrics": {"use": [{"name": "reward-mean", "reward": "distance", "target": [0, 0, 0]}]}},
     "metrics.reward-mean.target"),
    ({"model": {"family": "kde", "bandwidth": float("inf")}}, "model.bandwidth"),
    ({"model": {"family": "kde", "bandwidth": float("nan")}}, "model.bandwidth"),
])
def test_known_before_the_first_fit(cfg, match, monkeypatch):
    from autophagy import loop

    def no_fit(*a, **k):
        raise AssertionError("fitted before the error")

    monkeypatch.setattr(loop, "_fit", no_fit)
    refused(cfg, match)


# --------------------------------------------------------------------------- data files
def _file_source(tmp_path, name, write):
    path = tmp_path / name
    write(path)
    return {"data": {"source": "file" if not name.startswith("img") else "images", "path": str(path)}}


@pytest.mark.parametrize("name,write,match", [
    ("latin.csv", lambda p: p.write_bytes("x,y\n1,2\n3,\xe9\n".encode("latin-1")), "not UTF-8"),
    ("bool.npy", lambda p: np.save(p, np.ones((10, 2), bool)), "boolean data"),
    ("half.npy", lambda p: np.save(p, np.ones((10, 2), np.float16)), "float16"),
    ("huge.npy", lambda p: np.save(p, np.full((10, 2), 1.7e308)), "overflow"),
    ("neg.csv", lambda p: p.write_text("1,-1.7e308\n2,3\n"), "overflow"),
    ("img.npz", lambda p: np.savez(p, x=np.zeros((5, 0, 8))), "at least one pixel"),
])
def test_bad_data_files(tmp_path, name, write, match):
    msg = refused(_file_source(tmp_path, name, write), match)
    assert name in msg


def test_large_files_are_refused_by_size_up_front(tmp_path, monkeypatch):
    from autophagy.data import files

    monkeypatch.setattr(files, "MAX_CSV_BYTES", 100)
    monkeypatch.setattr(files, "MAX_ARRAY_BYTES", 100)
    (tmp_path / "big.csv").write_text("1,2\n" * 100)
    refused({"data": {"source": "file", "path": str(tmp_path / "big.csv")}}, "MiB CSV: at most")
    np.save(tmp_path / "big.npy", np.zeros((100, 2)))
    msg = refused({"data": {"source": "file", "path": str(tmp_path / "big.npy")}}, "GiB of data")
    assert "pickled" not in msg


# --------------------------------------------------------------------------- security
def test_plugin_folders_never_shadow_installed_modules(tmp_path, monkeypatch):
    (tmp_path / "json.py").write_text("raise SystemExit('shadowed')\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("replicates: 2\ngenerations: 1\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    from autophagy.cli import _plugin_paths

    _plugin_paths(cfg)
    assert sys.path.index(str(tmp_path)) > max(i for i, p in enumerate(sys.path) if "site-packages" in p)


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "..", "a/../../b", "=HYPERLINK(\"x\")"])
def test_run_names_stay_inside_results(tmp_path, monkeypatch, name):
    from autophagy.cli import _results_dir

    monkeypatch.chdir(tmp_path)
    target = _results_dir(name)
    assert (tmp_path / "results").resolve() in target.resolve().parents
    assert "/" not in target.name and not target.name.startswith(".")


def test_cache_dir_stays_in_the_user_cache_or_results():
    refused({"data": {"source": "digits"}, "model": {"family": "kde", "bandwidth": 0.3},
             "metrics": {"use": [{"name": "digit-frechet", "cache_dir": "/tmp/elsewhere"}]}}, "cache_dir")


def test_csv_exports_neutralise_formulas(tmp_path):
    autophagy.run({**SMALL, "name": "=HYPERLINK(\"http://x\")"}, out=tmp_path)
    text = (tmp_path / "runs.csv").read_text()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
