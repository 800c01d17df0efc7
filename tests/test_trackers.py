"""--track mlflow | wandb | tensorboard: offline mirrors of the store, checked against Result.summary().

Each tracker test skips when its extra is not installed (the dev extra installs all three).
"""
import struct
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import autophagy
from autophagy.cli import app

runner = CliRunner()
STUDY = {"name": "trk", "seed": 0, "replicates": 6, "generations": 3, "data": {"source": "gaussian", "dim": 1},
         "loop": {"policy": "replace", "n_real": 20}, "grid": {"sampling.bias": [1.0, 0.5]}}


def means(result, run_id, metric):
    s = result.summary(metric)
    return s[s.run_id == run_id].sort_values("generation")["mean"].to_numpy()


def test_tensorboard_event_files(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    res = autophagy.run(STUDY, out=tmp_path, track="tensorboard")
    assert any("tensorboard" in n for n in res.notes)
    for run_id in res.runs.run_id:
        acc = EventAccumulator(str(tmp_path / "tensorboard" / run_id))
        acc.Reload()
        steps = [(e.step, e.value) for e in acc.Scalars("param.w2_sq")]
        assert [s for s, _ in steps] == [0, 1, 2, 3]
        np.testing.assert_allclose([v for _, v in steps], means(res, run_id, "param.w2_sq"), rtol=1e-6)
        assert "param.w2_sq.se" in acc.Tags()["scalars"]
    again = autophagy.run(STUDY, out=tmp_path, track="tensorboard")  # reused runs are not mirrored twice
    assert len(again.reused) == 2
    assert all(len(list((tmp_path / "tensorboard" / r).glob("events.*"))) == 1 for r in res.runs.run_id)


@pytest.mark.slow  # about 10-20 s (MLflow builds its SQLite schema); .ci/run runs it on every CI run
def test_mlflow_sqlite_backend(tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow extra")
    import mlflow

    res = autophagy.run(STUDY, out=tmp_path, track=["mlflow"])
    autophagy.run(STUDY, out=tmp_path, track=["mlflow"])  # no duplicates
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("autophagy")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.data.tags["autophagy.run_id"] for r in runs) == sorted(res.runs.run_id)
    for r in runs:
        run_id = r.data.tags["autophagy.run_id"]
        assert r.data.params["loop.policy"] == "replace" and r.data.params["sampling.bias"] in ("1.0", "0.5")
        assert r.info.run_name == res.runs.set_index("run_id").name[run_id]
        hist = sorted(client.get_metric_history(r.info.run_id, "param.w2_sq"), key=lambda m: m.step)
        np.testing.assert_allclose([m.value for m in hist], means(res, run_id, "param.w2_sq"), rtol=1e-9)


def _wandb_records(path):
    """The protobuf records of a W&B offline run file (LevelDB-style log: 7-byte file header, 32 KiB blocks,
    each chunk a 7-byte header: checksum (4), length (2), type 1 full / 2 first / 3 middle / 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, parts, out = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            break
        parts = chunk if kind in (1, 2) else parts + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(parts)
            out.append(rec)
    return out


def test_wandb_offline(tmp_path):
    pytest.importorskip("wandb", reason="the wandb extra")
    import json

    res = autophagy.run(STUDY, out=tmp_path, track="wandb")
    for run_id in res.runs.run_id:
        (folder,) = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}")
        (file,) = folder.glob("*.wandb")
        records = _wandb_records(file)
        history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
                   for r in records if r.WhichOneof("record_type") == "history"]
        got = [h["param.w2_sq"] for h in sorted(history, key=lambda h: h["generation"])]
        np.testing.assert_allclose(got, means(res, run_id, "param.w2_sq"), rtol=1e-9)
        config = [r.config for r in records if r.WhichOneof("record_type") == "config"]
        config += [r.run.config for r in records if r.WhichOneof("record_type") == "run"]
        keys = {u.key or "/".join(u.nested_key) for c in config for u in c.update}
        assert "sampling.bias" in keys and "loop.policy" in keys
    autophagy.run(STUDY, out=tmp_path, track="wandb")
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 2


@pytest.mark.parametrize("name,extra", [("mlflow", "mlflow"), ("wandb", "wandb"), ("tensorboard", "tensorboard")])
def test_missing_extra_names_it(tmp_path, monkeypatch, name, extra):
    monkeypatch.setitem(sys.modules, name, None)  # import fails as if the extra were not installed
    cfg = tmp_path / "c.yaml"
    cfg.write_text("replicates: 2\ngenerations: 1\nloop: {n_real: 10}\n")
    r = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o"), "--track", name])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'autophagy[{extra}]'" in lines[0] and "--track" in lines[0], r.output
    assert not (tmp_path / "o").exists()  # checked before anything ran or was written


def test_unknown_tracker_and_no_save(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("replicates: 2\ngenerations: 1\nloop: {n_real: 10}\n")
    r = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o"), "--track", "neptune"])
    assert r.exit_code == 2 and "mlflow | wandb | tensorboard" in r.output and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(app, ["run", str(cfg), "--no-save", "--track", "tensorboard"])
    assert r.exit_code == 2 and "results directory" in r.output
