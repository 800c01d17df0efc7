"""The README's examples run as written (the front door must not rot)."""
import re
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from autophagy.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
runner = CliRunner()


def block(lang: str, first_line: str) -> str:
    """The fenced ``lang`` block of the README whose first line is ``first_line``."""
    for body in re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S):
        if body.splitlines()[0].strip() == first_line:
            return body
    raise AssertionError(f"no ```{lang} block starting with {first_line!r} in README.md")


def test_study_in_one_file_is_the_shipped_example_and_runs(tmp_path):
    shown = yaml.safe_load(block("yaml", "# examples/gaussian_replace.yaml"))
    path = ROOT / "examples" / "gaussian_replace.yaml"
    assert shown == yaml.safe_load(path.read_text())
    r = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "ex"), "--set", "sampling.bias=0.8",
                            "--set", "replicates=20", "--set", "generations=2"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "ex" / "results.sqlite").exists() and "sliced-wasserstein" in r.output


def test_plugin_example_beside_the_config(tmp_path):
    """README's mypkg/mod.py and its one-line config, found beside the config without PYTHONPATH."""
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "mod.py").write_text(block("python", "# mypkg/mod.py"))
    model = yaml.safe_load(block("yaml", 'model: {family: "mypkg.mod:MyModel", scale: 0.5}'))["model"]
    cfg = {"seed": 0, "replicates": 50, "generations": 2, "data": {"source": "gaussian", "dim": 2},
           "model": model, "loop": {"policy": "replace", "n_real": 30}, "metrics": ["heldout-nll"]}
    (tmp_path / "plug.yaml").write_text(yaml.safe_dump(cfg))
    saved = list(sys.path)
    try:
        r = runner.invoke(app, ["run", str(tmp_path / "plug.yaml"), "--no-save"])
    finally:
        sys.path[:] = saved
        for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
            del sys.modules[name]
    assert r.exit_code == 0, r.output
    assert "heldout-nll" in r.output


def test_runs_at_scale_python_example(tmp_path, monkeypatch):
    """The README's parallel example runs as printed (from a folder holding examples/), and load() reopens it."""
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "gaussian_replace.yaml").write_text((ROOT / "examples" / "gaussian_replace.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(block("python", "# parallel runs from python"), scope)
    assert set(scope["again"].runs.status) == {"done"}
    assert scope["res"].metrics.replicate.nunique() == 128 and (tmp_path / "results" / "scale" / "metrics.csv").exists()


def test_slurm_example_renders_its_job_script(capsys):
    import pytest

    pytest.importorskip("dask_jobqueue")
    code = block("python", "# on a SLURM login node").replace("jobs=8", "jobs=0")  # render only: no sbatch here
    scope: dict = {}
    exec(code, scope)
    scope["cluster"].close()
    assert "#SBATCH -p cpu" in capsys.readouterr().out


def test_cli_examples_name_real_commands_and_options():
    from autophagy.cli import app as cli_app

    text = block("bash", "autophagy run configs/mad_three_loops.yaml --workers 2                  # worker processes on this machine")
    for line in text.strip().splitlines():
        args = line.split("#")[0].split()[1:]
        r = runner.invoke(cli_app, [args[0], "--help"])
        assert r.exit_code == 0, line
        for opt in (a for a in args if a.startswith("--")):
            assert opt in r.output, (line, opt)
    assert (ROOT / "configs" / "mad_three_loops.yaml").exists()
