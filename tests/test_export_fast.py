"""The bulk CSV export writes the bytes pandas writes for the whole frame (store._write_metrics_csv, _float_text).

The reference is the frame built whole with pandas (``Store._export_frames_reference``: the code the export
used before) written with ``to_csv(index=False)``. Stores: a grid, NaN/inf and awkward floats, text cells
that need quoting or a formula guard, a running run with split replicate blocks, tiny arrays, no arrays, empty.
"""
import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

import autophagy
from autophagy import store as st
from autophagy.store import Store

STUDY = {"name": "fast", "seed": 0, "replicates": 12, "generations": 3, "data": {"source": "gaussian", "dim": 1},
         "loop": {"policy": "replace", "n_real": 20},
         "grid": {"sampling.bias": [1.0, 0.5], "loop.policy": ["replace", "augment"]}}


def reference(directory, tmp_path) -> tuple[bytes, bytes]:
    runs, metrics = Store(directory)._export_frames_reference()
    runs.to_csv(tmp_path / "ref_runs.csv", index=False)
    metrics.to_csv(tmp_path / "ref_metrics.csv", index=False)
    return (tmp_path / "ref_metrics.csv").read_bytes(), (tmp_path / "ref_runs.csv").read_bytes()


def assert_export_is_reference(directory, tmp_path, fast: bool = True):
    ref = tmp_path / "ref"
    ref.mkdir(exist_ok=True)
    want_metrics, want_runs = reference(directory, ref)
    with sqlite3.connect(directory / "results.sqlite") as con:
        stored, rows = Store._runs(con), Store._rows(con)
    assert st._write_metrics_csv(ref / "direct.csv", stored, rows) is fast  # the bulk path is (not) taken
    if fast:
        assert (ref / "direct.csv").read_bytes() == want_metrics
    assert Store(directory).export("csv") == [directory / "metrics.csv", directory / "runs.csv"]
    got = (directory / "metrics.csv").read_bytes()
    assert len(got) == len(want_metrics) and got == want_metrics
    assert (directory / "runs.csv").read_bytes() == want_runs
    assert not list(directory.glob(".*.tmp"))  # temporary names renamed or removed


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    autophagy.run(STUDY, out=out)
    return out


def copy(src, dst):
    dst.mkdir()
    with sqlite3.connect(src / "results.sqlite") as a, sqlite3.connect(dst / "results.sqlite") as b:
        a.backup(b)
    return dst


def edit(directory, *statements):
    con = sqlite3.connect(directory / "results.sqlite")
    with con:
        for sql, *args in statements:
            con.execute(sql, *args)
    con.close()


def test_grid_store(grid, tmp_path):
    d = copy(grid, tmp_path / "d")
    assert_export_is_reference(d, tmp_path)
    csv = pd.read_csv(d / "metrics.csv")
    assert len(csv) == 4 * 12 * 4 * len(csv.metric.unique()) and set(csv["sampling.bias"]) == {0.5, 1.0}


def awkward_values(n: int, rng) -> np.ndarray:
    kinds = [rng.normal(size=n), rng.normal(size=n) * 10.0 ** rng.integers(-14, 20, n), np.round(rng.normal(size=n), 3),
             rng.integers(-10 ** 6, 10 ** 6, n).astype(float), np.full(n, np.nan), np.full(n, -np.inf), np.full(n, np.inf),
             np.full(n, -0.0), np.full(n, 5e-324), 2.0 ** rng.integers(-60, 60, n), rng.integers(1, 99, n) * 1e15]
    pick = rng.integers(0, len(kinds), n)
    return np.choose(pick, kinds)


def test_nan_inf_and_awkward_floats(grid, tmp_path):
    d = copy(grid, tmp_path / "d")
    rng = np.random.default_rng(1)
    with sqlite3.connect(d / "results.sqlite") as con:
        keys = con.execute("SELECT rowid, length(data) FROM arrays").fetchall()
        for rowid, size in keys:
            con.execute("UPDATE arrays SET data = ? WHERE rowid = ?", (awkward_values(size // 8, rng).tobytes(), rowid))
    assert_export_is_reference(d, tmp_path)
    text = (d / "metrics.csv").read_text()
    assert ",-inf," in text and ",inf," in text and ",-0.0," in text and ",5e-324," in text and ",," in text


def test_text_cells_that_need_quotes_or_a_formula_guard(grid, tmp_path):
    d = copy(grid, tmp_path / "d")
    notes = ["-1", "=SUM(A1:A2)", "a,b", 'say "hi"', "two\nlines"]
    with sqlite3.connect(d / "results.sqlite") as con:
        ids = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY rowid")]
        for i, run_id in enumerate(ids):
            cfg = json.loads(con.execute("SELECT config FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0])
            cfg["note"] = notes[i % len(notes)]
            cfg["size"] = [None, 3, 4.5, "x"][i % 4]  # a column of mixed types
            cfg["tags"] = [i, i + 1]  # a list: written as a tuple, "(0, 1)", which needs quotes
            cfg["count"] = i if i else None  # ints with a missing value: a float column
            con.execute("UPDATE runs SET config = ?, name = ? WHERE run_id = ?", (json.dumps(cfg), f"=HYPERLINK(\"{i}\")", run_id))
        for table in ("runs", "arrays", "blocks"):
            con.execute(f"UPDATE {table} SET run_id = '=' || run_id WHERE run_id = ?", (ids[0],))
            con.execute(f"UPDATE {table} SET run_id = '-' || run_id WHERE run_id = ?", (ids[1],))
        con.execute("UPDATE arrays SET metric = '+' || metric WHERE metric = (SELECT MIN(metric) FROM arrays)")
    assert_export_is_reference(d, tmp_path)
    runs = pd.read_csv(d / "runs.csv")
    assert {"note", "size", "tags", "count"} <= set(runs.columns)
    text = (d / "metrics.csv").read_text()
    assert "\"'=SUM(A1:A2)\"" not in text and ",'=SUM(A1:A2)," in text and ",\"a,b\"," in text
    assert "\n'=" in text and "\n'-" in text and ",'+" in text


def test_a_carriage_return_in_a_cell_still_gives_pandas_bytes(grid, tmp_path):
    d = copy(grid, tmp_path / "d")
    with sqlite3.connect(d / "results.sqlite") as con:
        ids = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY rowid")]
        for i, run_id in enumerate(ids):
            cfg = json.loads(con.execute("SELECT config FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0])
            cfg["note"] = f"cr\r{i}"
            con.execute("UPDATE runs SET config = ? WHERE run_id = ?", (json.dumps(cfg), run_id))
    ref = tmp_path / "ref"
    ref.mkdir()
    want, _ = reference(d, ref)
    Store(d).export("csv")  # pandas: csv.reader does not give the cells back exactly, so the bulk path declines
    assert (d / "metrics.csv").read_bytes() == want


def test_running_run_with_split_blocks(grid, tmp_path):
    d = copy(grid, tmp_path / "d")
    with sqlite3.connect(d / "results.sqlite") as con:
        ids = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY rowid")]
        con.execute("UPDATE runs SET status = 'running', finished = NULL WHERE run_id = ?", (ids[0],))
        con.execute("DELETE FROM arrays WHERE run_id = ? AND generation > 1", (ids[0],))
        con.execute("DELETE FROM blocks WHERE run_id = ?", (ids[0],))
        for rowid, run_id, metric, g, data in con.execute(
                "SELECT rowid, run_id, metric, generation, data FROM arrays WHERE run_id = ?", (ids[1],)).fetchall():
            con.execute("UPDATE arrays SET data = ? WHERE rowid = ?", (data[:40], rowid))  # replicates 0..4 and 5..11
            con.execute("INSERT INTO arrays VALUES (?, 5, ?, ?, ?)", (run_id, metric, g, data[40:]))
        con.execute("INSERT INTO arrays VALUES (?, 12, 'late', 0, ?)", (ids[2], np.arange(12.0).tobytes()))
        con.execute("INSERT INTO arrays VALUES (?, 0, 'empty', 0, x'')", (ids[2],))
    assert_export_is_reference(d, tmp_path)
    assert Store(d).load()[0].status.tolist().count("running") == 1


def test_tiny_arrays_go_through_pandas(tmp_path):
    autophagy.run({**STUDY, "replicates": 2, "grid": {"loop.policy": ["replace", "augment"]}}, out=tmp_path / "d")
    assert_export_is_reference(tmp_path / "d", tmp_path, fast=False)


def test_runs_without_arrays_and_an_empty_store(grid, tmp_path):
    d = copy(grid, tmp_path / "d")
    edit(d, ("UPDATE arrays SET data = x''",))
    assert_export_is_reference(d, tmp_path, fast=False)
    edit(d, ("DELETE FROM arrays",))
    assert_export_is_reference(d, tmp_path, fast=False)
    empty = Store(tmp_path / "empty").prepare()
    assert_export_is_reference(empty.dir, tmp_path, fast=False)
    assert (empty.dir / "metrics.csv").read_text() == "run_id,replicate,generation,metric,value\n"


def test_parquet_export_keeps_the_frames(grid, tmp_path):
    pytest.importorskip("pyarrow")
    d = copy(grid, tmp_path / "d")
    runs, metrics = Store(d)._export_frames_reference()
    assert Store(d).export("parquet") == [d / "metrics.parquet", d / "runs.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(d / "metrics.parquet"), metrics)
    pd.testing.assert_frame_equal(pd.read_parquet(d / "runs.parquet"), runs)


def test_float_text_is_repr():
    rng = np.random.default_rng(0)
    powers = 10.0 ** np.arange(-13, 18)
    x = np.concatenate([
        rng.normal(size=100_000), rng.normal(size=50_000) * 10.0 ** rng.integers(-13, 18, 50_000),
        rng.integers(0, 2 ** 64, 20_000, dtype=np.uint64).view(np.float64),  # any bit pattern (nan payloads too)
        rng.integers(-10 ** 6, 10 ** 6, 20_000).astype(float), rng.integers(1, 2 ** 20, 20_000) / 2.0 ** rng.integers(0, 40, 20_000),
        *(np.round(rng.normal(size=2_000), k) for k in range(17)), powers, np.nextafter(powers, 0), np.nextafter(powers, np.inf),
        2.0 ** np.arange(-60, 60), [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                                    0.1, 0.5, 1e-4, 9.999999999999999e-05, 1e15, 1e16, 9999999999999998.0, 0.100002288818359375]])
    x = np.concatenate([x, -x])
    got = st._float_text(x).view("S24").ravel().tolist()
    want = [b"" if v != v else repr(v).encode() for v in x.tolist()]
    bad = [(v, g, w) for v, g, w in zip(x.tolist(), got, want) if g != w]
    assert not bad, bad[:5]
    assert st._float_text(np.empty(0)).shape == (0, 24)
