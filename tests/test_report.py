"""Study figures and the HTML report: right metric per preset, theory overlays where predicted, bands inside
the metric's range, unique legend entries that name only what differs, PNG/SVG/PDF files, escaping."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from typer.testing import CliRunner

import autophagy
from autophagy import report, theory
from autophagy.cli import app
from autophagy.config import load_config
from autophagy.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
NEURAL = ("bertrand_finetune", "mad_guided_diffusion", "mad_guided_diffusion_digits", "tarchi_vae_chain",
          "tarchi_vae_mitigations", "tarchi_enc_chain", "mad_gan_digits", "gillman_digits_ddpm")
runner = CliRunner()

SMALL = {"name": "small <b>study</b>", "seed": 3, "replicates": 16, "generations": 5,
         "data": {"source": "gaussian", "dim": 2}, "model": {"family": "gaussian"},
         "loop": {"policy": "replace", "n_real": 40, "control": True},
         "metrics": {"use": ["prd"], "n_eval": 60, "n_heldout": 60},
         "grid": {"loop.policy": ["replace", "augment"], "sampling.bias": [1.0, 0.5]},
         "report": {"metrics": ["recall", "param.trace_cov"], "pairs": [["precision", "recall"]],
                    "phase": [{"x": "sampling.bias", "y": "loop.policy", "metric": "param.trace_cov"}]}}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    autophagy.run(SMALL, out=out)
    return out


def fake_study(values: dict, names=None, out=None, configs=None):
    """A Study from hand-made numbers: ``values[run_id]`` is (R, G+1) of metric ``m``."""
    rows, runs = [], []
    for i, (run_id, arr) in enumerate(values.items()):
        R, G1 = arr.shape
        for r in range(R):
            for g in range(G1):
                rows.append((run_id, r, g, "m", float(arr[r, g])))
        cfg = (configs or {}).get(run_id, {"seed": 0, "loop": {"policy": "replace"}, "sampling": {"bias": 1.0 - 0.1 * i}})
        runs.append({"run_id": run_id, "name": (names or {}).get(run_id, run_id), "hash": run_id, "lineage": "loop",
                     "config": cfg, "seconds": 0.0})
    metrics = pd.DataFrame(rows, columns=["run_id", "replicate", "generation", "metric", "value"])
    return report.load_study(SimpleNamespace(runs=pd.DataFrame(runs), metrics=metrics, out=out))


# --------------------------------------------------------------------------- the right metric per preset
CHEAP = sorted(p.stem for p in CONFIGS.glob("*.yaml") if p.stem not in NEURAL)
SLOW_CHEAP = {"mad_gan_ring", "oracle_controls_ddpm"}  # 57 s and 14 s: slow-marked, run by .ci/run


@pytest.mark.parametrize("preset", [pytest.param(p, marks=pytest.mark.slow) if p in SLOW_CHEAP else p for p in CHEAP])
def test_preset_headline_metrics_are_recorded_and_drawn_first(preset, tmp_path):
    """A preset's report.metrics are metrics it records, and they are the report's figures, in order (a preset
    without a report: block, e.g. one just being written, gets the automatic headline)."""
    cfg, _ = load_config(CONFIGS / f"{preset}.yaml")
    result = autophagy.run(CONFIGS / f"{preset}.yaml", overrides=["replicates=2", "generations=1",
                                                                  "metrics.n_eval=40", "metrics.n_heldout=40"])
    study = report.load_study(result)
    if cfg.report is None:
        assert study.headline() and set(study.headline()) <= set(study.recorded)
        return
    assert study.headline() == list(cfg.report.metrics)
    for x, y in cfg.report.pairs:
        assert {x, y} <= set(study.recorded)
    for spec in cfg.report.phase:
        assert spec.metric in study.recorded and {spec.x, spec.y} <= set(study.swept)


@pytest.mark.slow
@pytest.mark.parametrize("preset", NEURAL)
def test_neural_preset_headline_metrics_are_recorded(preset):
    pytest.importorskip("torch")
    cfg, _ = load_config(CONFIGS / f"{preset}.yaml")
    result = autophagy.run(CONFIGS / f"{preset}.yaml", overrides=["replicates=1", "generations=1"])
    assert report.load_study(result).headline() == list(cfg.report.metrics)


def test_the_shipped_presets_declare_their_figures():
    shipped = ["bertrand_finetune", "categorical_tail_loss", "gerstgrasser_regression_bound", "mad_cherry_picking",
               "mad_fresh_effective_sample_size", "mad_three_loops", "shumailov_gaussian_collapse", "tarchi_vae_chain"]
    for name in shipped:
        assert load_config(CONFIGS / f"{name}.yaml")[0].report.metrics, name


def test_headlines_the_issue_named():
    """The headline, not a flat or raw metric: Gerstgrasser's test error, MAD's recall collapse, Tarchi's ratio."""
    first = {p: load_config(CONFIGS / f"{p}.yaml")[0].report.metrics[0] for p in
             ("gerstgrasser_regression_bound", "mad_cherry_picking", "mad_guided_diffusion", "tarchi_vae_chain")}
    assert first == {"gerstgrasser_regression_bound": "param.test_error", "mad_cherry_picking": "recall",
                     "mad_guided_diffusion": "recall", "tarchi_vae_chain": "variability-ratio"}


def test_report_block_does_not_change_the_run_id():
    base = {k: v for k, v in SMALL.items() if k != "report"}
    assert load_config(SMALL)[0].hash() == load_config(base)[0].hash()
    with pytest.raises(ConfigError, match="report.metric"):
        load_config({**base, "report": {"metric": ["recall"]}})


# --------------------------------------------------------------------------- metric figures
def _theory_lines(fig):
    return {ln.get_gid().split(":", 1)[1]: ln for ax in fig.axes for ln in ax.get_lines()
            if str(ln.get_gid() or "").startswith("theory:")}


def test_theory_line_where_predicted_and_equal_to_predict(small):
    study = report.load_study(small)
    fig = report.metric_figure(study, "param.trace_cov")
    lines = _theory_lines(fig)
    assert set(lines) == set(study.runs.run_id)  # every loop and control run of a Gaussian study has one
    row = study.runs[(study.runs.lineage == "loop")].iloc[0]
    cfg = dict(row.config, grid=None)
    cfg["loop"] = dict(cfg["loop"], control=False)
    expected = theory.predict(cfg)
    expected = expected[expected.metric == "param.trace_cov"].sort_values("generation").expected.to_numpy()
    np.testing.assert_allclose(lines[row.run_id].get_ydata(), expected)
    assert _theory_lines(report.metric_figure(study, "recall")) == {}  # no closed form for recall
    assert _theory_lines(report.metric_figure(study, "param.trace_cov", theory=False)) == {}
    texts = [t.get_text() for t in report.metric_figure(study, "param.trace_cov").axes[0].get_legend().get_texts()]
    assert any(t.startswith("line: mean, band: ± 2 s.e.") for t in texts)  # a closed form is compared with the mean


def _band_ys(fig):
    out = []
    for ax in fig.axes:
        for coll in ax.collections:
            if isinstance(coll, PolyCollection) and str(coll.get_gid() or "").startswith("band:"):
                for path in coll.get_paths():
                    out.append(path.vertices[:, 1])
    return np.concatenate(out)


@pytest.mark.parametrize("band", ["se", "quantile"])
def test_bands_stay_inside_the_metric_range(small, band):
    study = report.load_study(small)
    ys = _band_ys(report.metric_figure(study, "recall", band=band))
    assert ys.size and ys.min() >= 0.0 and ys.max() <= 1.0
    ys = _band_ys(report.metric_figure(study, "param.trace_cov", band=band))
    assert ys.min() >= 0.0


def test_unclipped_se_band_would_leave_the_range():
    """The clip is doing work: values at 1 with one replicate at 0.5 give mean + 2 s.e. above 1."""
    arr = np.ones((10, 3))
    arr[0] = 0.5
    study = fake_study({"a": arr})
    study.metrics["metric"] = "recall"
    summary, used = report.study.summarize(study, "recall", "se")
    unclipped = arr.mean(0) + 2 * arr.std(0, ddof=1) / np.sqrt(10)
    assert used == "se" and unclipped.max() > 1.0 and summary.hi.max() == 1.0


def test_legend_unique_names_only_what_differs(small):
    study = report.load_study(small)
    fig = report.metric_figure(study, "recall")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(texts) == len(set(texts))
    assert {"policy:", "bias:", "lineage:", "replace", "augment", "1", "0.5", "real-only control"} <= set(texts)
    assert not any("dim" in t or "n_real" in t or "(control)" in t for t in texts)
    assert any(t.startswith("line: ") and "band: " in t for t in texts)  # the band says what it is
    colours = {ln.get_color() for ln in fig.axes[0].get_lines() if str(ln.get_gid()).startswith("run:")}
    assert len(colours) == 2  # colour = policy; bias and lineage are line style and marker


def test_colours_never_wrap_and_are_distinct():
    values = {f"r{i}": np.full((4, 3), float(i + 1)) for i in range(12)}
    configs = {f"r{i}": {"seed": 0, "sampling": {"bias": round(1.0 - 0.05 * i, 2)}} for i in range(12)}
    study = fake_study(values, configs=configs)
    fig = report.metric_figure(study, "m", theory=False)
    colours = [ln.get_color() for ln in fig.axes[0].get_lines() if str(ln.get_gid()).startswith("run:")]
    assert len({json.dumps(np.asarray(c, dtype=float).round(4).tolist()) if not isinstance(c, str) else c
                for c in colours}) == 12


def test_integer_ticks_log_scale_and_median_for_heavy_tails():
    g = np.arange(11)
    rng = np.random.default_rng(0)
    heavy = np.exp(rng.normal(0, 1, (40, 1)) * np.sqrt(g + 1)) * 10.0 ** g  # spans ten decades, log-normal
    study = fake_study({"a": heavy, "b": heavy * 2})
    fig = report.metric_figure(study, "m")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    ticks = [t for t in ax.get_xticks() if 0 <= t <= 10]
    assert ticks and all(float(t).is_integer() for t in ticks)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("median" in t and "10%-90%" in t for t in texts)
    lines = report.metric_figure(study, "m", band="se").axes[0].get_legend().get_texts()
    assert any(t.get_text().startswith("line: mean") for t in lines)
    flat = fake_study({"a": np.ones((5, 4)) + np.arange(5)[:, None] * 0.01})
    assert report.metric_figure(flat, "m").axes[0].get_yscale() == "linear"


def test_unknown_metric_is_one_line_naming_the_recorded_ones(small):
    study = report.load_study(small)
    with pytest.raises(ConfigError, match="--metric = 'nope'.*recall"):
        report.metric_figure(study, "nope")


# --------------------------------------------------------------------------- other figures
def test_pair_paths_one_per_run(small):
    study = report.load_study(small)
    fig = report.pair_figure(study, "precision", "recall")
    paths = [ln for ln in fig.axes[0].get_lines() if str(ln.get_gid()).startswith("path:")]
    assert len(paths) == len(study.runs) and all(len(p.get_xdata()) == 6 for p in paths)
    lo, hi = fig.axes[0].get_xlim()
    assert lo < 0.0 < 1.0 < hi < 1.1


def test_phase_diagram_cells_are_final_means(small):
    study = report.load_study(small)
    fig = report.phase_figure(study, "param.trace_cov", "sampling.bias", "loop.policy")
    image = fig.axes[0].get_images()[0].get_array()
    df = study.values("param.trace_cov")
    loops = study.runs[study.runs.lineage == "loop"]
    for r in loops.itertuples():
        want = df[(df.run_id == r.run_id) & (df.generation == 5)].value.mean()
        col = [0.5, 1.0].index(r.params["sampling.bias"])
        row = ["replace", "augment"].index(r.params["loop.policy"])
        assert image[row, col] == pytest.approx(want)
    with pytest.raises(ConfigError, match="phase.x = 'model.family'"):
        report.phase_figure(study, "param.trace_cov", "model.family", "loop.policy")


def test_image_grids_labelled_with_generation_and_run(tmp_path):
    import matplotlib.image as mpimg

    study = fake_study({"a": np.ones((2, 3)), "b": np.ones((2, 3))}, out=tmp_path)
    for run_id in ("a", "b"):
        folder = tmp_path / "grids" / run_id
        folder.mkdir(parents=True)
        for name in ("real", "gen0000", "gen0001", "gen0002"):
            mpimg.imsave(folder / f"{name}.png", np.random.default_rng(1).random((8, 8)), cmap="gray")
    fig = report.image_grid_figure(study)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["real data", "generation 0", "generation 1", "generation 2"]
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()] == list(study.runs.label)
    assert report.image_grid_figure(fake_study({"a": np.ones((2, 3))}, out=tmp_path / "none")) is None


@pytest.mark.parametrize("kind,sample", [("scatter", lambda r: r.normal(size=(50, 2))),
                                         ("trajectory", lambda r: r.normal(size=(20, 10))),
                                         ("tokens", lambda r: r.integers(0, 30, size=200))])
def test_samples_small_multiples(kind, sample):
    rng = np.random.default_rng(0)
    samples = {"run A": {g: sample(rng) for g in range(9)}, "run B": {g: sample(rng) for g in range(9)}}
    fig = report.samples_figure(samples)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0] == "generation 0" and titles[-1] == "generation 8" and len(titles) == 6
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()] == ["run A", "run B"]


# --------------------------------------------------------------------------- files, CLI, HTML
def test_png_svg_pdf_written(small, tmp_path):
    study = report.load_study(small)
    fig = report.metric_figure(study, "recall")
    magic = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}
    for fmt, head in magic.items():
        path = report.save_figure(fig, tmp_path / f"recall.{fmt}")
        assert path.read_bytes().startswith(head) and path.stat().st_size > 1000
    assert not list(tmp_path.glob(".*tmp*"))


def test_plot_command_formats_and_errors(small, tmp_path):
    r = runner.invoke(app, ["plot", str(small), "-m", "recall", "--format", "pdf", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "recall.pdf").read_bytes().startswith(b"%PDF")
    r = runner.invoke(app, ["plot", str(small), "--pair", "precision,recall", "-f", "svg", "-o", str(tmp_path)])
    assert r.exit_code == 0 and (tmp_path / "recall_vs_precision.svg").exists()
    r = runner.invoke(app, ["plot", str(small), "-m", "param.w2_sq", "--phase", "sampling.bias,loop.policy",
                            "-o", str(tmp_path)])
    assert r.exit_code == 0 and (tmp_path / "param_w2_sq_phase.png").exists()
    for bad, field in ((["--format", "jpg"], "--format"), (["-m", "nope"], "--metric"), (["--pair", "x"], "--pair")):
        r = runner.invoke(app, ["plot", str(small), *bad, "-o", str(tmp_path / "bad")])
        assert r.exit_code == 2 and field in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "bad").exists()
    r = runner.invoke(app, ["plot", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "results.sqlite" in r.output


def test_report_page_is_self_contained_and_escaped(small):
    r = runner.invoke(app, ["report", str(small)])
    assert r.exit_code == 0, r.output
    path = small / "report.html"
    assert r.output.strip().endswith("report.html")
    page = path.read_text()
    assert "<script" not in page.lower() and "<b>study" not in page
    assert "small &lt;b&gt;study&lt;/b&gt;" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    srcs = [s.split('"', 1)[0] for s in page.split('src="')[1:]]
    assert len(srcs) >= 4 and all(s.startswith("data:image/png;base64,") for s in srcs)  # 2 metrics, pair, phase
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert page.index("What was run") < page.index("Figures") < page.index("Theory vs simulation")
    assert "class='diff'" in page and "seed" in page  # swept values highlighted
    assert "param.trace_cov" in page.split("Theory vs simulation")[1]  # the predicted vs measured table


def test_report_escapes_option_values_and_labels(tmp_path):
    study = fake_study({"a": np.ones((3, 3)), "b": np.ones((3, 3))},
                       configs={"a": {"seed": 0, "model": {"family": "<img src=x onerror=alert(1)>"}},
                                "b": {"seed": 0, "model": {"family": "ok"}}})
    page = report.html.render_html(study)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_write_report_errors_write_nothing(small, tmp_path):
    with pytest.raises(ConfigError, match="DIR"):
        report.write_report(tmp_path / "nothing")
    r = runner.invoke(app, ["report", str(small), "-m", "nope", "-o", str(tmp_path / "p.html")])
    assert r.exit_code == 2 and "--metric = 'nope'" in r.output
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- cheap drawing of many runs (issue 15)
def test_band_polygons_are_fill_between_polygons_across_gaps():
    """The one band collection holds exactly the polygons fill_between would draw, split where values are NaN."""
    from matplotlib.figure import Figure

    arr = np.arange(1.0, 31.0).reshape(3, 10) + np.random.default_rng(0).normal(0, 0.1, (3, 10))
    arr[:, 4] = np.nan  # a generation without values: the band has a gap
    study = fake_study({"a": arr, "b": arr + 5})
    summary, _ = report.study.summarize(study, "m", "se")
    fig = report.metric_figure(study, "m", band="se", theory=False)
    bands = [c for c in fig.axes[0].collections if str(c.get_gid() or "").startswith("band:")]
    assert len(bands) == 1 and isinstance(bands[0], PolyCollection)
    got = [p.vertices for p in bands[0].get_paths()]
    want = []
    ax = Figure().add_subplot()
    for run in ("a", "b"):
        s = summary[summary.run_id == run].sort_values("generation")
        want += [p.vertices for p in ax.fill_between(s.generation, s.lo, s.hi).get_paths()]
    assert len(got) == len(want) == 4
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g[:len(w)], w[:len(g)])
        assert len(g) in (len(w), len(w) - 1)  # fill_between may close its path with one extra vertex


def test_log_axis_decades_are_plain_text_superscripts():
    g = np.arange(6)
    study = fake_study({"a": np.tile(10.0 ** (g - 3), (4, 1)), "b": np.tile(10.0 ** (g - 2), (4, 1))})
    fig = report.metric_figure(study, "m", theory=False)
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ax.get_yscale() == "log" and labels
    assert "10\u207b\u00b3" in labels and "10\u00b9" in labels and not any("$" in t for t in labels)
    fmt = report.figures._decade_formatter()
    assert fmt(1e-3) == "10\u207b\u00b3" and fmt(100.0) == "10\u00b2" and fmt(1.0) == "10\u2070"


def test_png_laid_out_once_has_the_pixels_of_a_plain_savefig(small):
    """figure_bytes lays a constrained figure out once and draws it once; the pixels are savefig's."""
    import io

    from PIL import Image

    study = report.load_study(small)
    fig = report.metric_figure(study, "param.trace_cov")
    engine, dpi = fig.get_layout_engine(), fig.dpi
    fast = report.figures.figure_bytes(fig, "png", dpi=120)
    assert fig.get_layout_engine() is engine and fig.dpi == dpi  # put back
    plain = io.BytesIO()
    report.metric_figure(study, "param.trace_cov").savefig(plain, format="png", dpi=120)
    a, b = (np.asarray(Image.open(io.BytesIO(x)).convert("RGB")) for x in (fast, plain.getvalue()))
    np.testing.assert_array_equal(a, b)


def test_recorded_metrics_in_first_seen_order_for_categorical_and_plain_columns():
    study = fake_study({"a": np.ones((2, 3))})
    rows = study.metrics.copy()
    study.metrics = pd.concat([rows.assign(metric="z"), rows.assign(metric="m"), rows.assign(metric="z")],
                              ignore_index=True)
    assert study.recorded == ["z", "m"]
    cat = report.study.Study(study.runs, study.metrics.assign(metric=pd.Categorical(study.metrics.metric,
                                                                                    categories=["m", "q", "z"])),
                             study.swept)
    assert cat.recorded == ["z", "m"]  # observed values only, in order of appearance (not the categories)
    values = cat.values("m")
    assert values.run_id.tolist() == ["a"] * 6 and values is cat.values("m")
