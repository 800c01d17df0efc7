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
