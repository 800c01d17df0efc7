"""The wheel is what a researcher installs: it must carry every preset and run one by name.

``test_wheel_carries_every_preset`` (default suite) builds the wheel from a copy of the checkout and
fails when a ``configs/*.yaml`` is missing from it. ``test_fresh_venv_runs_presets`` (slow; ``.ci/run``
runs it on every CI run) installs that wheel with ``--no-deps`` into a new virtual environment that
sees this environment's third-party packages but not the checkout, and runs ``autophagy presets``
and a preset by name from an empty folder.
"""
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("build", reason="the dev extra installs build (python -m build)")


def build_wheel(tmp: Path) -> Path:
    """``python -m build --wheel`` of a copy of the checkout (the checkout's build/ is left alone)."""
    src = tmp / "src-copy"
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "CHANGELOG.md", "CITATION.cff"):
        if (ROOT / name).exists():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "configs", src / "configs")
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("autophagy-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_carries_every_preset(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"autophagy/presets/{p.name}" for p in (ROOT / "configs").glob("*.yaml")}
    expected.add("autophagy/presets/demo.yaml")
    missing = sorted(expected - names)
    assert not missing, f"presets missing from the wheel (setup.py's build_py copies configs/*.yaml): {missing}"
    assert len(expected) >= 20
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "autophagy/catalog.py" in names and "autophagy/trackers.py" in names


def test_preset_names_are_unique_between_configs_and_package():
    """setup.py refuses a configs/ preset that shadows a packaged one; catch it before a build does."""
    packaged = {p.name for p in (ROOT / "src" / "autophagy" / "presets").glob("*.yaml")}
    assert not packaged & {p.name for p in (ROOT / "configs").glob("*.yaml")}


@pytest.mark.slow
def test_fresh_venv_runs_presets(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies come from this environment's site-packages (a plain path: its .pth files, including
    # the editable install of the checkout, are not processed), autophagy itself only from the wheel
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                          "--disable-pip-version-check", str(wheel)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    work = tmp_path / "empty"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import autophagy; print(autophagy.__file__)"], cwd=work,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(env_dir)), where
    exe = env_dir / "bin" / "autophagy"
    listed = subprocess.run([str(exe), "presets"], cwd=work, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    for p in (ROOT / "configs").glob("*.yaml"):
        assert p.stem in listed.stdout, p.stem
    ran = subprocess.run([str(exe), "run", "gillman_gaussian_correction", "--set", "replicates=20", "--out", "res"],
                         cwd=work, capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (work / "res" / "results.sqlite").exists() and "param.w2_sq" in ran.stdout
    prefixed = subprocess.run([str(exe), "run", "preset:nope", "--no-save"], cwd=work, capture_output=True, text=True,
                              timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert prefixed.returncode == 2 and "gillman_gaussian_correction" in prefixed.stderr


def test_presets_command_and_unknown_names():
    from typer.testing import CliRunner

    from autophagy.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["presets"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert "mad_three_loops" in r.output and "Alemohammad et al. 2023" in r.output and "about 2-4 minutes" in r.output
    for ref in ("no_such_preset", "preset:no_such_preset"):
        r = runner.invoke(app, ["run", ref, "--no-save"])
        lines = r.output.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and "mad_three_loops" in lines[0] and "no_such_preset" in lines[0]
    r = runner.invoke(app, ["components", "no-such-thing"])
    assert r.exit_code == 2 and "prd" in r.output and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(app, ["components", "prd"])  # one component: its whole docstring, no rst markup
    assert r.exit_code == 0 and "coverage" in r.output and "``" not in r.output and "(Naeem et al. 2020)." in r.output
    r = runner.invoke(app, ["components"])
    for key in ("top-level keys", "sampling", "n_eval", "grid", "report (presentation only)"):
        assert key in r.output, key
