"""`autophagy theory` on every shipped preset: no false alarms, at two seeds (issue 11).

Each preset with a closed form is simulated and compared at seeds 1 and 2: the default suite at a reduced
size (``REDUCED``: fewer replicates or generations where the shipped size takes minutes), ``make test-all``
at the shipped size with the shipped metrics. Every row must be ``ok`` or ``not tested`` with a reason;
presets without a closed form must say why in one line, and a grid arm without one (the λ = 0.9 arm of
categorical_tail_loss) must be named, not dropped silently.
"""
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autophagy import theory
from autophagy.cli import app

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = sorted(CONFIGS.glob("*.yaml"))

# the default run: sample-based metrics off (theory reads param.* only), 40 replicates, at most 5 generations
REDUCED = ["metrics.use=[]", "replicates=40"]
MAX_GENERATIONS = 5
HEAVY = {"kazdan_gaussian_grid.yaml"}  # a large grid: its reduced run takes ~40 s, so it runs with make test-all


def _reduced(path: Path) -> list[str]:
    import yaml

    G = yaml.safe_load(path.read_text()).get("generations", 10)
    return REDUCED + [f"generations={min(G, MAX_GENERATIONS)}"]


def _closed_form(path: Path) -> bool:
    try:
        theory.predict(str(path), ["metrics.tradeoff=false"])
    except theory.NoClosedForm:
        return False
    return True


WITH_THEORY = [p for p in PRESETS if _closed_form(p)]
WITHOUT = [p for p in PRESETS if p not in WITH_THEORY]


def _theory(path: Path, *sets: str) -> str:
    args = ["theory", str(path)] + [a for s in sets for a in ("--set", s)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return res.output


def _check(out: str) -> None:
    summary = [line for line in out.splitlines() if "comparisons beyond 4 standard errors" in line]
    assert summary and summary[0].startswith("0 of "), out[-3000:]
    assert "DISAGREES" not in out


def test_presets_are_split_into_both_kinds():
    assert len(WITH_THEORY) >= 8 and len(WITHOUT) >= 5


def _marks(path: Path):
    return pytest.param(path, marks=pytest.mark.slow) if path.name in HEAVY else path


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("path", [_marks(p) for p in WITH_THEORY], ids=lambda p: p.name)
def test_theory_agrees_on_every_preset_reduced(path, seed):
    _check(_theory(path, f"seed={seed}", *_reduced(path)))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("path", WITH_THEORY, ids=lambda p: p.name)
def test_theory_agrees_on_every_preset_at_shipped_size(path, seed):
    _check(_theory(path, f"seed={seed}"))


@pytest.mark.parametrize("path", WITHOUT, ids=lambda p: p.name)
def test_presets_without_closed_form_say_why_in_one_line(path):
    res = CliRunner().invoke(app, ["theory", str(path), "--predict-only"])
    assert res.exit_code == 2
    lines = [line for line in res.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "no closed form" in lines[0], res.output


def test_a_grid_arm_without_closed_form_is_named():
    out = _theory(CONFIGS / "categorical_tail_loss.yaml", "replicates=20", "generations=5", "metrics.use=[]")
    assert "no closed form for run" in out and "bias=0.9" in out and "not compared" in out
    _check(out)


def test_compare_matches_by_run_id_never_by_position():
    import autophagy
    from autophagy.errors import AutophagyError

    cfg = {"replicates": 30, "generations": 2, "loop": {"n_real": 20}}
    res = autophagy.run(cfg)
    renamed = res.metrics.assign(run_id="someone-else")
    with pytest.raises(AutophagyError, match="matched by run id"):
        theory.compare(cfg, renamed)


def test_small_r_still_flags_a_gross_error():
    """The robust statistics keep their teeth: a prediction off by 30 % is flagged at R = 60."""
    import autophagy

    cfg = {"seed": 3, "replicates": 60, "generations": 3, "data": {"source": "gaussian", "dim": 2},
           "loop": {"n_real": 40}}
    res = autophagy.run(cfg)
    m = res.metrics.copy()
    hit = (m.metric == "param.trace_cov") & (m.generation == 2)
    m.loc[hit, "value"] *= 1.3
    cmp = theory.compare(cfg, m)
    assert set(zip(cmp[cmp.flag].metric, cmp[cmp.flag].generation)) == {("param.trace_cov", 2)}
