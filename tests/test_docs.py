"""The reference site builds without warnings, and every Python snippet of the docs and the README runs.

A ```python block whose first line is a file comment (``# mypkg/mod.py``) is a file listing: it is
written to that path and imported. Every other block runs as a script in a temporary folder where
``configs/`` and ``examples/`` of the checkout are visible, so the relative paths of the docs work.
Snippets that run a full-size study are marked slow (``make test-all``).
"""
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# (page, first line) of snippets that take more than a few seconds: they run in `make test-all`
SLOW = {("README.md", "import autophagy"), ("README.md", "# parallel runs from python")}
_FOLDERS: dict = {}  # page -> its folder: a page's snippets run in order and share files


def snippets():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
            body = m.group(1)
            line = text[:m.start()].count("\n") + 1
            first = body.splitlines()[0].strip() if body.strip() else ""
            marks = [pytest.mark.slow] if (page.name, first) in SLOW else []
            yield pytest.param(page, body, id=f"{page.relative_to(ROOT)}:{line}", marks=marks)


def _listing(body: str) -> str | None:
    m = re.match(r"#\s*([\w/]+\.py)\s*$", body.splitlines()[0])
    return m.group(1) if m else None


@pytest.mark.parametrize("page,body", list(snippets()))
def test_snippet_runs(page, body, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if page not in _FOLDERS:
        _FOLDERS[page] = tmp_path = tmp_path_factory.mktemp(page.stem)
        for name in ("configs", "examples"):
            (tmp_path / name).symlink_to(ROOT / name)
    tmp_path = _FOLDERS[page]
    monkeypatch.chdir(tmp_path)
    listing = _listing(body)
    if listing:
        if "import torch" in body:
            pytest.importorskip("torch")
        target = tmp_path / listing
        target.parent.mkdir(parents=True, exist_ok=True)
        for folder in list(target.relative_to(tmp_path).parents)[:-1]:
            (tmp_path / folder / "__init__.py").touch()
        target.write_text(body)
        monkeypatch.syspath_prepend(str(tmp_path))
        module = ".".join(Path(listing).with_suffix("").parts)
        try:
            importlib.import_module(module)
        finally:
            for key in [k for k in sys.modules if k == module.split(".")[0] or k.startswith(module.split(".")[0] + ".")]:
                del sys.modules[key]
        return
    if "results/mad3" in body and not (tmp_path / "results" / "mad3").exists():  # docs/report.md reads a results directory: make a small one
        import autophagy

        autophagy.run(ROOT / "examples" / "gaussian_replace.yaml", out=tmp_path / "results" / "mad3",
                      overrides=["replicates=10", "generations=3"])
    exec(compile(body, f"{page.name} snippet", "exec"), {"__name__": "__snippet__"})


def test_snippets_were_found():
    found = {p.values[0].name for p in snippets()}
    assert {"README.md", "theory.md", "results.md", "report.md"} <= found


@pytest.mark.slow  # about 10 s; .ci/run runs it on every CI run (make docs builds the same)
def test_docs_build_strict(tmp_path):
    """mkdocs build --strict: a broken link, a missing page or an API docstring griffe cannot read fails."""
    pytest.importorskip("mkdocs", reason="the docs extra (pip install 'autophagy[docs]')")
    pytest.importorskip("mkdocstrings")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    site = tmp_path / "site"
    metrics = (site / "reference" / "metrics" / "index.html").read_text()
    from autophagy import metrics as metric_lib

    for name in metric_lib.METRICS:
        assert f"<code>{name}</code>" in metrics, name
    sources = (site / "reference" / "components" / "sources" / "index.html").read_text()
    assert "n_components" in sources and "``" not in sources
    assert (site / "configs" / "mad_three_loops.yaml").exists()


def test_every_metric_has_reference_facts():
    """docs/hooks.py FACTS must describe each metric (the build fails otherwise; this names the missing ones)."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        hooks = pytest.importorskip("hooks", reason="mkdocs (docs extra) is imported by docs/hooks.py")
        from autophagy import metrics as metric_lib

        assert not [n for n in metric_lib.METRICS if n not in hooks.FACTS]
        assert all(len(f) == 5 and all(f) for f in hooks.FACTS.values())
    finally:
        sys.path.remove(str(ROOT / "docs"))
