"""Runs at scale: resolved run ids, replicate-block shards, engines, and a store that survives faults.

The promise under test: a run is a pure function of its RunSpec and replicate block, so the same
study gives bit-identical metrics serially, on 1, 2 or 4 worker processes and on Dask, and a study
killed at any moment and started again ends equal to an uninterrupted one.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import autophagy
from autophagy.build import build
from autophagy.cli import app
from autophagy.errors import ConfigError, StoreError
from autophagy.loop import simulate
from autophagy.spec import specs_for

runner = CliRunner()
CLI = [sys.executable, "-m", "autophagy.cli"]

# one run per closed-form family, each with a sample-based metric, R = 130 (three seed-tree blocks)
FAMILIES = {
    "gaussian": {"data": {"source": "gaussian", "dim": 2}, "model": {"family": "gaussian"},
                 "metrics": ["sliced-wasserstein", "prd"]},
    "gmm": {"data": {"source": "mixture", "n_components": 4}, "model": {"family": "gmm", "components": 4},
            "metrics": ["mode-coverage"]},
    "kde": {"data": {"source": "moons"}, "model": {"family": "kde", "bandwidth": 0.2}, "metrics": ["mmd"]},
    "categorical": {"data": {"source": "categorical", "size": 6}, "model": {"family": "categorical"},
                    "metrics": ["tv"]},
    "linear-regression": {"data": {"source": "linear-regression", "dim": 3}, "model": {"family": "linear-regression"}},
}


def study(family: str, **extra) -> dict:
    base = {"name": family, "seed": 3, "replicates": 130, "generations": 2,
            "loop": {"policy": "augment", "n_real": 40}, "metrics": {"use": [], "n_eval": 60, "n_heldout": 60}}
    spec = dict(FAMILIES[family])
    metrics = {**base["metrics"], "use": spec.pop("metrics", [])}
    return {**base, **spec, "metrics": metrics, **extra}


def grid_study() -> dict:
    """All five families as one two-run-per-family study (a grid over the policy)."""
    return study("gaussian", grid={"loop.policy": ["augment", "replace"]})


def sorted_frame(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(run_id=df.run_id.astype(str), metric=df.metric.astype(str))
    return df.sort_values(["run_id", "metric", "generation", "replicate"]).reset_index(drop=True)


# ------------------------------------------------------------------ ids
def test_equal_studies_get_equal_ids_however_written():
    short = specs_for({"model": {"family": "gaussian"}, "metrics": ["prd", "mmd"]})[0]
    spelled = specs_for({"name": "other", "model": {"family": "gaussian", "estimator": "mle", "covariance": "full"},
                         "data": {"source": "gaussian"}, "metrics": {"use": ["mmd", {"name": "prd"}], "table": ["recall"]}})[0]
    assert short.run_id == spelled.run_id and short.resolved == spelled.resolved
    assert short.resolved["model"]["estimator"] == "mle"  # defaults are in the spec
    changed = specs_for({"model": {"family": "gaussian", "estimator": "unbiased"}, "metrics": ["prd", "mmd"]})[0]
    assert changed.run_id != short.run_id
    loop, control = specs_for({"loop": {"control": True}})
    assert loop.lineage == "loop" and control.lineage == "control" and loop.run_id != control.run_id


def test_names_show_overrides_and_grid_values():
    specs = specs_for({"name": "g", "grid": {"loop.policy": ["replace", "fresh"]}}, ["sampling.bias=0.8", "name=g"])
    assert [s.name for s in specs] == ["g[sampling.bias=0.8, loop.policy=replace]", "g[sampling.bias=0.8, loop.policy=fresh]"]
    assert specs_for({"name": "g"}, ["sampling.bias=0.8"])[0].name == "g[sampling.bias=0.8]"


def test_new_version_does_not_reuse_old_rows(tmp_path, monkeypatch):
    cfg = study("gaussian", replicates=8)
    first = autophagy.run(cfg, out=tmp_path)
    monkeypatch.setattr("autophagy._version.__version__", "99.0.0")
    second = autophagy.run(cfg, out=tmp_path)
    assert second.reused == [] and second.runs.run_id[0] != first.runs.run_id[0]
    assert any("from autophagy 0." in n and "--reuse-any-version" in n for n in second.notes)
    monkeypatch.setattr("autophagy._version.__version__", "99.1.0")
    third = autophagy.run(cfg, out=tmp_path, reuse_any_version=True)
    assert len(third.reused) == 1
    assert np.array_equal(sorted_frame(third.metrics).value, sorted_frame(first.metrics).value, equal_nan=True)
    runs = autophagy.load(tmp_path).runs
    assert set(runs.version) == {autophagy.__version__, "99.0.0"} and {"command", "host", "started", "finished"} <= set(runs.columns)
    assert runs.started.str.match(r"\d{4}-\d\d-\d\dT").all()


# ------------------------------------------------------------------ replicate blocks
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_replicate_blocks_reproduce_the_whole_run(family):
    """Replicates 64..129 simulated alone equal the same replicates of the whole run, bit for bit."""
    spec = specs_for(study(family))[0]
    whole = simulate(build(spec))
    parts = [simulate(build(spec), block=b) for b in ((0, 64), (64, 128), (128, 130))]
    assert whole.keys() == parts[0].keys()
    for k, v in whole.items():
        assert np.array_equal(v, np.concatenate([p[k] for p in parts], axis=1), equal_nan=True), k


def _run_on(engine, specs, pieces):
    from autophagy.sweep import execute, join_blocks, split

    got: dict = {}
    shards = [sh for s in specs for sh in split(s, [], pieces)]
    execute(shards, engine, lambda sh, res: got.setdefault(sh.spec.run_id, {}).__setitem__(sh.start, res.values))
    return {k: join_blocks(v) for k, v in got.items()}


@pytest.mark.slow  # about 30 s (every engine, every family); .ci/run runs it
def test_every_closed_form_family_is_identical_on_every_engine():
    """Serial, 1, 2 and 4 worker processes and Dask, with each run cut into replicate-block shards."""
    from autophagy.sweep import DaskEngine, ProcessEngine

    specs = [s for f in sorted(FAMILIES) for s in specs_for(study(f))]
    reference = {s.run_id: simulate(build(s)) for s in specs}
    engines = [lambda: ProcessEngine(1, print), lambda: ProcessEngine(2, print), lambda: ProcessEngine(4, print)]
    try:
        import distributed  # noqa: F401

        engines.append(lambda: DaskEngine(2))
    except ImportError:  # pragma: no cover - the dev install has the dask extra
        pass
    for make in engines:
        engine = make()
        got = _run_on(engine, specs, pieces=3)
        for run_id, values in reference.items():
            assert got[run_id].keys() == values.keys(), engine.name
            for k, v in values.items():
                assert np.array_equal(got[run_id][k], v, equal_nan=True), (engine.name, engine.workers, k)


def test_run_with_workers_equals_serial_through_the_api():
    cfg = {**grid_study(), "replicates": 140}
    serial = sorted_frame(autophagy.run(cfg).metrics)
    assert sorted_frame(autophagy.run(cfg, workers=2).metrics).equals(serial)


def test_a_prestarted_pool_is_the_next_runs_and_a_stray_one_is_stopped():
    """The CLI starts the workers before it imports pandas (sweep.prestart): the next run with that many
    workers takes that pool (same numbers); one no run takes is stopped by discard_prestarted."""
    from autophagy import sweep

    cfg = {**grid_study(), "replicates": 70}
    serial = sorted_frame(autophagy.run(cfg).metrics)
    sweep.prestart(2)
    ready = sweep._READY[2]
    procs = list(ready.pool._processes.values())
    assert len(procs) == 2  # spawned at once, before any run asks
    taken = []
    original = sweep.ProcessEngine.submit
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sweep.ProcessEngine, "submit", lambda self, shard: (taken.append(self), original(self, shard))[1])
        assert sorted_frame(autophagy.run(cfg, workers=2).metrics).equals(serial)
    assert taken and all(e is ready for e in taken) and not sweep._READY
    sweep.prestart(2)
    stray = list(sweep._READY[2].pool._processes.values())
    sweep.discard_prestarted()
    assert not sweep._READY
    import time

    deadline = time.monotonic() + 30  # the pool's own manager thread reaps them too: poll, do not join
    while any(p.exitcode is None for p in stray) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(p.exitcode is not None for p in stray)


@pytest.mark.torch
def test_neural_family_is_identical_across_engines_and_blocks():
    pytest.importorskip("torch")
    cfg = {"name": "vae", "seed": 1, "replicates": 66, "generations": 1, "data": {"source": "gaussian", "dim": 2},
           "model": {"family": "vae", "hidden": 8, "latent_dim": 2, "epochs": 2, "batch_size": 32, "likelihood": "gaussian"},
           "loop": {"policy": "replace", "n_real": 40}, "metrics": {"use": ["variance-ratio"], "n_eval": 40}}
    serial = sorted_frame(autophagy.run(cfg).metrics)
    two = sorted_frame(autophagy.run(cfg, workers=2).metrics)  # two shards: replicates 0-63 and 64-65
    assert two.equals(serial)


# ------------------------------------------------------------------ the store under faults
def test_corrupt_truncated_and_empty_stores_are_one_line_errors(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(study("gaussian", replicates=4)))
    good = tmp_path / "good"
    autophagy.run(str(cfg), out=good)
    data = (good / "results.sqlite").read_bytes()
    for label, content in (("garbage", b"this is not sqlite" * 100), ("truncated", data[: len(data) // 3]),
                           ("empty", b"")):
        out = tmp_path / label
        out.mkdir()
        (out / "results.sqlite").write_bytes(content)
        r = runner.invoke(app, ["run", str(cfg), "--out", str(out)])
        assert r.exit_code == 2, (label, r.output)
        assert "results.sqlite" in r.output and len(r.output.strip().splitlines()) == 1, r.output
        assert (out / "results.sqlite").read_bytes() == content  # nothing overwritten
        assert runner.invoke(app, ["runs", str(out)]).exit_code == 2
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    sqlite3.connect(foreign / "results.sqlite").execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(StoreError, match="not an autophagy results store"):
        autophagy.load(foreign)


def test_out_that_is_a_file_or_unwritable_fails_before_simulating(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(study("gaussian", replicates=4)))
    target = tmp_path / "file.txt"
    target.write_text("keep")
    calls = []
    monkeypatch.setattr("autophagy.sweep.run_shard", lambda *a, **k: calls.append(1))
    r = runner.invoke(app, ["run", str(cfg), "--out", str(target)])
    assert r.exit_code == 2 and "is a file" in r.output and target.read_text() == "keep" and not calls
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        r = runner.invoke(app, ["run", str(cfg), "--out", str(locked / "x")])
        assert r.exit_code == 2 and "cannot write" in r.output and not calls


def test_bad_engine_options_are_one_line_errors(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(study("gaussian", replicates=4)))
    for args, field in ((["--workers", "0"], "--workers"), (["--engine", "threads"], "--engine"),
                        (["--engine", "processes", "--address", "tcp://127.0.0.1:1"], "--address")):
        r = runner.invoke(app, ["run", str(cfg), "--no-save", *args])
        assert r.exit_code == 2 and r.output.startswith(f"error: {field}"), r.output
    with pytest.raises(ConfigError, match="workers"):
        autophagy.run(study("gaussian", replicates=4), workers=-1)


def test_version_flag_and_runs_command(tmp_path):
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"autophagy {autophagy.__version__}"
    autophagy.run({**grid_study(), "replicates": 4}, out=tmp_path)
    r = runner.invoke(app, ["runs", str(tmp_path)])
    assert r.exit_code == 0 and r.output.count(" done ") == 2 and "3/3" in r.output, r.output


def _cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(autophagy.__file__).parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_concurrent_writers_never_crash_lose_or_duplicate_rows(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**grid_study(), "replicates": 70}))
    out = tmp_path / "shared"
    sets = [[], [], ["--set", "seed=4"], ["--set", "seed=5", "--workers", "2"]]
    procs = [subprocess.Popen([*CLI, "run", str(cfg), "--out", str(out), *s], env=_cli_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for s in sets]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    res = autophagy.load(out)
    assert len(res.runs) == 6 and set(res.runs.status) == {"done"}
    m = res.metrics
    assert not m.duplicated(["run_id", "metric", "generation", "replicate"]).any()
    per_run = m.groupby("run_id", observed=True).size()
    assert (per_run == 70 * 3 * m.metric.nunique()).all()  # every metric of every run: nothing lost
    csv = pd.read_csv(out / "metrics.csv")
    assert len(csv) == len(m)  # the export is not older than the last committed run
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def _wait_for(predicate, timeout=120.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _blocks_done(out: Path) -> int:
    db = out / "results.sqlite"
    if not db.exists():  # never create it: an empty file where the store goes is refused as not a database
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM blocks").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _kill_then_finish(tmp_path, cfg: dict, extra: list, ready) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    clean = tmp_path / "clean"
    subprocess.run([*CLI, "run", str(path), "--out", str(clean), *extra], env=_cli_env(), check=True, capture_output=True)
    out = tmp_path / "killed"
    p = subprocess.Popen([*CLI, "run", str(path), "--out", str(out), *extra], env=_cli_env(), start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: ready(out) or p.poll() is not None), "the study never got going"
        assert p.poll() is None, "the study finished before it could be killed: make it longer"
    finally:
        os.killpg(p.pid, signal.SIGKILL)  # the driver and its workers, mid-study
        p.wait()
    partial = autophagy.load(out)
    assert (partial.runs.status != "done").any() or len(partial.runs) < len(specs_for(cfg))
    subprocess.run([*CLI, "run", str(path), "--out", str(out), *extra], env=_cli_env(), check=True, capture_output=True)
    return sorted_frame(autophagy.load(clean).metrics), sorted_frame(autophagy.load(out).metrics), out


@pytest.mark.parametrize("extra", [pytest.param([], marks=pytest.mark.slow), ["--workers", "2"]],
                         ids=["serial", "processes"])  # serial: about 25 s, slow-marked (.ci/run runs it)
def test_kill_9_mid_sweep_then_rerun_equals_uninterrupted(tmp_path, extra):
    cfg = {**study("gaussian", replicates=128, generations=8), "metrics": {"use": ["sliced-wasserstein"], "n_eval": 40},
           "grid": {"loop.policy": ["augment", "replace", "fresh", "accumulate"], "seed": [1, 2]}}
    clean, resumed, out = _kill_then_finish(tmp_path, cfg, extra, lambda o: _blocks_done(o) >= 1)
    assert resumed.equals(clean)
    assert set(autophagy.load(out).runs.status) == {"done"}
    assert pd.read_csv(out / "metrics.csv").shape[0] == len(clean)


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--workers", "2"]], ids=["serial", "processes"])
def test_kill_9_neural_run_resumes_from_checkpoints_bit_for_bit(tmp_path, extra):
    pytest.importorskip("torch")
    cfg = {"name": "vae", "seed": 2, "replicates": 2, "generations": 6, "data": {"source": "gaussian", "dim": 2},
           "model": {"family": "vae", "hidden": 16, "latent_dim": 2, "epochs": 60, "likelihood": "gaussian"},
           "loop": {"policy": "replace", "n_real": 100}, "metrics": {"use": ["variance-ratio"], "n_eval": 100},
           "grid": {"sampling.bias": [1.0, 0.8]}}

    def some_generations(o):  # the unfinished run's rows are readable while it runs
        try:
            return len(autophagy.load(o).metrics) > 0
        except Exception:
            return False

    clean, resumed, _ = _kill_then_finish(tmp_path, cfg, extra, some_generations)
    assert resumed.equals(clean)


@pytest.mark.torch
def test_unfinished_neural_run_is_readable(tmp_path, monkeypatch):
    """Generation rows stream into the store as they finish; a run stopped half-way shows them, marked running."""
    pytest.importorskip("torch")
    from autophagy import loop

    cfg = {"name": "vae", "seed": 2, "replicates": 2, "generations": 3, "data": {"source": "gaussian", "dim": 2},
           "model": {"family": "vae", "hidden": 8, "latent_dim": 2, "epochs": 2, "likelihood": "gaussian"},
           "loop": {"policy": "replace", "n_real": 30}, "metrics": {"use": ["variance-ratio"], "n_eval": 30}}
    real_fit = loop._fit

    def stop_at_2(plan, g, *a, **k):
        if g == 2:
            raise KeyboardInterrupt
        return real_fit(plan, g, *a, **k)

    monkeypatch.setattr(loop, "_fit", stop_at_2)
    with pytest.raises(KeyboardInterrupt) as info:
        autophagy.run(cfg, out=tmp_path)
    assert info.value.saved == 0 and info.value.total == 1
    res = autophagy.load(tmp_path)
    assert list(res.runs.status) == ["running"] and int(res.runs.generations_done[0]) == 2
    assert sorted(res.metrics.generation.unique()) == [0, 1]
    assert pd.read_csv(tmp_path / "runs.csv").status[0] == "running"
    monkeypatch.setattr(loop, "_fit", real_fit)
    done = autophagy.run(cfg, out=tmp_path)  # resumes from the generation checkpoints
    assert autophagy.load(tmp_path).runs.status[0] == "done" and len(done.metrics) == 2 * 4 * done.metrics.metric.nunique()


def test_ctrl_c_says_how_many_runs_were_saved_and_how_to_resume(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**study("gaussian", replicates=64 * 3, generations=12),
                                    "grid": {"loop.policy": ["augment", "replace", "fresh", "accumulate"], "seed": [1, 2]}}))
    out = tmp_path / "o"
    p = subprocess.Popen([*CLI, "run", str(path), "--out", str(out)], env=_cli_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    assert _wait_for(lambda: _blocks_done(out) >= 1 or p.poll() is not None)
    p.send_signal(signal.SIGINT)
    text = p.communicate(timeout=60)[0]
    assert p.returncode == 130, text
    assert "interrupted:" in text and "of 8 runs complete" in text and "run the same command again" in text
    assert "Traceback" not in text


# ------------------------------------------------------------------ layering and recipes
def test_theory_never_imports_the_orchestration_layer():
    import ast

    root = Path(autophagy.__file__).parent / "theory"
    banned = {"api", "sweep", "store", "cli", "progress"}
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                assert (node.module or "").split(".")[0] not in banned, (path.name, node.module)


def test_slurm_recipe_renders_a_job_script():
    pytest.importorskip("dask_jobqueue")
    from autophagy.cluster import slurm_cluster

    cluster = slurm_cluster(jobs=0, queue="gpu", walltime="00:30:00", memory="2GB", gpus=1)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p gpu", "#SBATCH -t 00:30:00", "#SBATCH --gres=gpu:1", "--nthreads 1", "--resources GPU=1"):
        assert line in script, (line, script)


def test_store_of_autophagy_0_1_is_migrated_in_place(tmp_path):
    """Format 1 (one row per value, no blocks): opened, its rows packed into arrays, and read back unchanged."""
    con = sqlite3.connect(tmp_path / "results.sqlite")
    con.executescript("""
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, name TEXT, hash TEXT, lineage TEXT, config TEXT,
                           status TEXT, created REAL, seconds REAL);
        CREATE TABLE metrics (run_id TEXT, replicate INTEGER, generation INTEGER, metric TEXT, value REAL);""")
    con.execute("INSERT INTO runs VALUES ('old1', 'old', 'h', 'loop', '{}', 'done', 0, 1.5)")
    rows = [("old1", r, g, "param.x", float(10 * g + r)) for g in range(3) for r in range(4)]
    con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    res = autophagy.load(tmp_path)
    assert list(res.runs.status) == ["done"] and int(res.runs.generations_done[0]) == 3
    m = sorted_frame(res.metrics)
    assert m.value.tolist() == [float(10 * g + r) for g in range(3) for r in range(4)]
    assert autophagy.load(tmp_path).metrics.shape == res.metrics.shape  # opening again changes nothing


def test_dask_missing_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the dask extra were not installed
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(study("gaussian", replicates=4)))
    r = runner.invoke(app, ["run", str(cfg), "--no-save", "--engine", "dask"])
    assert r.exit_code == 2 and "pip install 'autophagy[dask]'" in r.output and len(r.output.strip().splitlines()) == 1


def test_progress_keeps_grid_values_and_prints_plain_lines_off_a_terminal():
    import io

    from rich.console import Console

    from autophagy.progress import SweepProgress, fit_name
    from autophagy.sweep import split

    long = "a-very-long-study-name-that-goes-on-and-on[loop.policy=accumulate, sampling.bias=0.8]"
    assert fit_name(long, 50).endswith("[loop.policy=accumulate, sampling.bias=0.8]") and len(fit_name(long, 50)) == 50
    buf = io.StringIO()
    p = SweepProgress(Console(file=buf, width=200), every=0.0, delay=0.0)
    shards = [sh for s in specs_for({**grid_study(), "replicates": 130}) for sh in split(s, [], 2)]
    p.start(shards)
    p.generation(shards[0].key, 0)
    p.finished(shards[0].key)
    p.close()
    lines = buf.getvalue().strip().splitlines()
    assert lines[0].startswith("[0:00]") and "eta" in lines[0] and "gaussian[loop.policy=augment] gen 0/2" in lines[0]
    assert lines[-1].endswith("(0/2 runs)") and len(shards) == 4


def test_a_run_that_records_no_metric_still_finishes(tmp_path, monkeypatch):
    """A plug-in model without param_metrics and no metrics listed: the run is done (was: never marked done)."""
    (tmp_path / "bare_plugin.py").write_text(
        "import numpy as np\n"
        "class Bare:\n"
        "    def fit(self, x, rng):\n        self.mu = x.mean(0)\n"
        "    def sample(self, m, rng, bias=1.0):\n        return self.mu + rng.standard_normal((m, self.mu.shape[0]))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = {"seed": 0, "replicates": 70, "generations": 1, "data": {"source": "gaussian", "dim": 2},
           "model": {"family": "bare_plugin:Bare"}, "loop": {"policy": "replace", "n_real": 10}}
    res = autophagy.run(cfg, out=tmp_path / "o")
    assert len(res.metrics) == 0
    runs = autophagy.load(tmp_path / "o").runs
    assert list(runs.status) == ["done"]
    assert autophagy.run(cfg, out=tmp_path / "o").reused == list(res.runs.run_id)


def test_a_large_shard_runs_block_by_block_with_the_same_numbers(monkeypatch):
    """A shard whose arrays would exceed sweep.SUB_BLOCK_BYTES simulates one 64-replicate block at a time
    (memory follows the block); the seed tree makes its numbers those of the whole shard."""
    from autophagy import loop, sweep

    cfg = {"seed": 3, "replicates": 130, "generations": 4, "data": {"source": "gaussian", "dim": 3},
           "model": {"family": "gaussian"}, "loop": {"policy": "accumulate-subsample", "n_real": 20}}
    whole = autophagy.run(cfg).metrics
    blocks = []
    original = loop.simulate
    monkeypatch.setattr(loop, "simulate", lambda plan, cb=None, block=None: blocks.append(block) or original(plan, cb, block))
    monkeypatch.setattr(sweep, "SUB_BLOCK_BYTES", 0)
    split = autophagy.run(cfg).metrics
    assert blocks == [(0, 64), (64, 128), (128, 130)]
    key = ["metric", "generation", "replicate"]
    np.testing.assert_array_equal(whole.sort_values(key).value.to_numpy(), split.sort_values(key).value.to_numpy())
