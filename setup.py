"""Ships ``configs/*.yaml`` (the editable preset sources) inside the wheel as ``autophagy/presets/``.

Everything else lives in pyproject.toml; this file only extends ``build_py``. ``tests/test_packaging.py``
builds the wheel and fails if a preset is missing from it.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class build_py_with_presets(build_py):
    """``build_py`` plus a copy of every ``configs/*.yaml`` into ``<build_lib>/autophagy/presets/``."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads configs/ in place
            return
        target = Path(self.build_lib) / "autophagy" / "presets"
        target.mkdir(parents=True, exist_ok=True)
        wanted = {p.name for p in (HERE / "configs").glob("*.yaml")} | {
            p.name for p in (HERE / "src" / "autophagy" / "presets").glob("*.yaml")}
        for stale in target.glob("*.yaml"):  # a reused build/ folder must not ship a preset deleted since
            if stale.name not in wanted:
                stale.unlink()
        for path in sorted((HERE / "configs").glob("*.yaml")):
            if (HERE / "src" / "autophagy" / "presets" / path.name).exists():
                raise SystemExit(f"configs/{path.name}: a packaged preset of that name already exists in "
                                 "src/autophagy/presets/; rename one of them")
            shutil.copyfile(path, target / path.name)


setup(cmdclass={"build_py": build_py_with_presets})
