"""Study figures: metric vs generation (with closed-form overlays), quality-diversity paths, phase diagrams.

Object API only (``matplotlib.figure.Figure`` on an Agg canvas): no pyplot, no global state, so figures
can be drawn from threads and tests without a display. Every function takes a ``Study``
(``autophagy.report.load_study(DIR or Result)``) and returns a ``Figure``; ``save_figure`` writes
PNG, SVG or PDF.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from . import style
from .study import BAND_TEXT, Study, fmt_value, short_key, summarize, value_range
from .theory import predictions

FORMATS = ("png", "svg", "pdf")
THEORY_STYLE = {"color": "black", "lw": 0.9, "linestyle": (0, (4, 2)), "alpha": 0.85}


def new_figure(width: float = 8.6, height: float = 4.4):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _spans_decades(values: np.ndarray) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return bool(v.size and v.min() > 0 and v.max() / v.min() > 100)


def _legend(ax, enc, extra: list | None = None) -> None:
    handles, labels = style.legend_handles(enc)
    for h, text in extra or ():
        handles.append(h)
        labels.append(text)
    if handles:
        ax.legend(handles, style._unique(labels), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  frameon=False, handlelength=2.6)


def _band_polygons(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> list:
    """The polygons ``fill_between(x, lo, hi)`` draws: one per run of finite points, (x0, hi0) -> along lo ->
    (xn, hin) -> back along hi."""
    ok = np.isfinite(x) & np.isfinite(lo) & np.isfinite(hi)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.view(np.int8), [0]])))
    out = []
    for i0, i1 in zip(edges[::2], edges[1::2]):
        t, f1, f2 = x[i0:i1], lo[i0:i1], hi[i0:i1]
        n = t.size
        pts = np.empty((2 * n + 2, 2))
        pts[0] = t[0], f2[0]
        pts[1:n + 1, 0], pts[1:n + 1, 1] = t, f1
        pts[n + 1] = t[-1], f2[-1]
        pts[n + 2:, 0], pts[n + 2:, 1] = t[::-1], f2[::-1]
        out.append(pts)
    return out


def _decade_formatter():
    """The log axis' major formatter, writing decades as plain text with Unicode superscripts (10⁻³) instead of
    mathtext ($10^{-3}$): the same label, without mathtext's parser (~0.35 s the first time a figure needs it)."""
    from matplotlib.ticker import LogFormatterSciNotation

    class DecadeFormatter(LogFormatterSciNotation):
        SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")

        def __call__(self, x, pos=None):
            text = super().__call__(x, pos)
            prefix, suffix = "$\\mathdefault{", "}$"
            if text.startswith(prefix) and text.endswith(suffix):
                body = text[len(prefix):-len(suffix)]
                sign, _, rest = body.rpartition("10^{")
                if rest.endswith("}") and sign in ("", "-") and rest[:-1].lstrip("-").isdigit():
                    return sign.replace("-", "\u2212") + "10" + rest[:-1].translate(self.SUPERSCRIPT)
            return text

    return DecadeFormatter(10.0)


def _by_run(frame) -> dict:
    """run_id -> row positions of ``frame`` (one hashed pass instead of a boolean mask per run)."""
    if frame is None or not len(frame):
        return {}
    return {str(k): v for k, v in frame.groupby("run_id", sort=False).indices.items()}


def metric_figure(study: Study, metric: str, *, band: str | None = None, log: bool | None = None,
                  theory: bool = True, generation_max: int | None = None):
    """``metric`` against generation, one line per run, with a replicate band and (where ``theory.predict``
    has one) the closed-form expected trajectory as a thin dashed black line over the run's curve.

    ``band``: ``se`` | ``quantile`` | ``auto`` (default: the preset's ``report.band``, else auto; auto means
    the mean ± 2 s.e. wherever a closed form is drawn, since it predicts the mean);
    ``log``: force or forbid a log y axis (default: log when the curves span more than two decades).

    Drawn for studies of many runs (75 x 100 generations in well under a second): the per-run rows are found
    by one grouping, lines are built as artists directly (no ``plot`` argument processing per run), and the
    bands are the polygons ``fill_between`` would make, all in one ``PolyCollection`` (gid ``band:all``, one
    colour per run; the same pixels as one collection per run) with their data limits added in one update.
    """
    from matplotlib.collections import PolyCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    study.check_metric(metric)
    band = band or study.report_config().get("band", "auto")
    pred = predictions(study) if theory and metric.startswith("param.") else None  # theory predicts param.* only
    if pred is not None and len(pred):
        pred = pred[pred.metric == metric]
    if pred is not None and band == "auto" and len(pred):
        band = "se"  # the closed form is an expectation: compare it with the mean, not the median
    summary, used = summarize(study, metric, band)
    enc = style.encode(study)
    fig = new_figure()
    ax = fig.add_subplot()
    shown_theory = False
    centers, lines, band_polygons, band_colours = [], [], [], []
    G = int(summary["generation"].max())
    gen, cen = summary["generation"].to_numpy(), summary["center"].to_numpy(dtype=float)
    lo_all, hi_all = summary["lo"].to_numpy(dtype=float), summary["hi"].to_numpy(dtype=float)
    rows = _by_run(summary)
    theory_rows = _by_run(pred)
    if theory_rows:
        p_gen, p_exp = pred["generation"].to_numpy(), pred["expected"].to_numpy(dtype=float)
    for run in study.runs.itertuples():
        idx = rows.get(run.run_id)
        if idx is None:
            continue
        idx = idx[np.argsort(gen[idx], kind="stable")]
        if generation_max is not None:
            idx = idx[gen[idx] <= generation_max]
        if not idx.size:
            continue
        st = enc.by_run[run.run_id]
        x, y = gen[idx], cen[idx]
        lines.append(Line2D(x, y, color=st["color"], linestyle=st["linestyle"], marker=st["marker"],
                            markevery=max(1, G // 8), markersize=4, lw=1.6, gid=f"run:{run.run_id}"))
        polygons = _band_polygons(x, lo_all[idx], hi_all[idx])
        band_polygons.extend(polygons)
        band_colours.extend([st["color"]] * len(polygons))
        centers.append(y)
        pidx = theory_rows.get(run.run_id)
        if pidx is not None:
            pidx = pidx[np.argsort(p_gen[pidx], kind="stable")]
            if generation_max is not None:
                pidx = pidx[p_gen[pidx] <= generation_max]
            if pidx.size:
                lines.append(Line2D(p_gen[pidx], p_exp[pidx], gid=f"theory:{run.run_id}", zorder=5, **THEORY_STYLE))
                shown_theory = True
    if band_polygons:  # every run's band in one collection, in run order; fill_between's limits in one update
        ax.add_collection(PolyCollection(band_polygons, facecolors=band_colours, edgecolors=band_colours,
                                         linewidths=0, alpha=0.14, gid="band:all"), autolim=False)
        ax.update_datalim(np.concatenate(band_polygons))
    for line in lines:
        ax.add_line(line)
    if log is None:
        log = _spans_decades(np.concatenate(centers)) if centers else False
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_decade_formatter())
    lo, hi = value_range(study, metric)
    if np.isfinite(lo) and np.isfinite(hi):
        pad = 0.03 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
    _integer_ticks(ax.xaxis)
    last = G if generation_max is None else min(G, generation_max)
    ax.set_xlim(-0.02 * max(last, 1), last + 0.02 * max(last, 1))  # no tick past the last generation
    ax.set_xlabel("generation")
    ax.set_ylabel(metric)
    n_rep = int(study.values(metric).groupby("run_id", observed=True)["replicate"].nunique().max())
    ax.set_title(f"{study.name}: {metric}", fontsize=10, loc="left")
    ax.grid(alpha=0.3)
    center, spread = BAND_TEXT[used]
    extra = [(Patch(color=style.NEUTRAL, alpha=0.25), f"line: {center}, band: {spread} (R = {n_rep})")]
    if shown_theory:
        extra.append((Line2D([], [], **THEORY_STYLE), "closed form (theory.predict)"))
    _legend(ax, enc, extra)
    return fig


def pair_figure(study: Study, x: str, y: str, *, band: str = "se"):
    """The quality-diversity plane: per run, the path of (mean ``x``, mean ``y``) over generations, from an
    open circle (generation 0) to a filled one (the last generation)."""
    from matplotlib.lines import Line2D

    study.check_metric(x, "pair")
    study.check_metric(y, "pair")
    sx, _ = summarize(study, x, band)
    sy, _ = summarize(study, y, band)
    both = sx.merge(sy, on=["run_id", "generation"], suffixes=("_x", "_y"))
    enc = style.encode(study)
    fig = new_figure(7.6, 5.0)
    ax = fig.add_subplot()
    for run in study.runs.itertuples():
        s = both[both.run_id == run.run_id].sort_values("generation")
        if s.empty:
            continue
        st = enc.by_run[run.run_id]
        ax.plot(s.center_x, s.center_y, color=st["color"], linestyle=st["linestyle"], lw=1.4, gid=f"path:{run.run_id}")
        ax.plot(s.center_x.iloc[:1], s.center_y.iloc[:1], "o", mfc="white", color=st["color"], ms=6)
        ax.plot(s.center_x.iloc[-1:], s.center_y.iloc[-1:], marker=st["marker"] or "o", color=st["color"], ms=6)
    for axis, metric, setter in ((ax.xaxis, x, ax.set_xlim), (ax.yaxis, y, ax.set_ylim)):
        lo, hi = value_range(study, metric)
        if np.isfinite(lo) and np.isfinite(hi):
            setter(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
    G = int(both["generation"].max()) if len(both) else 0
    ax.set_xlabel(f"{x} (mean over replicates)")
    ax.set_ylabel(f"{y} (mean over replicates)")
    ax.set_title(f"{study.name}: {y} vs {x}, generation 0 -> {G}", fontsize=10, loc="left")
    ax.grid(alpha=0.3)
    _legend(ax, enc, [(Line2D([], [], linestyle="none", marker="o", mfc="white", color=style.NEUTRAL), "generation 0"),
                      (Line2D([], [], linestyle="none", marker="o", color=style.NEUTRAL), f"generation {G}")])
    return fig


def _sorted_levels(values) -> list:
    levels = list(dict.fromkeys(values))
    try:
        return sorted(levels, key=lambda v: float(v))
    except (TypeError, ValueError):
        return levels


def phase_figure(study: Study, metric: str, x: str, y: str, *, generation: int = -1):
    """A phase diagram: the mean of ``metric`` at ``generation`` (-1: the last) as a heatmap over two swept
    parameters ``x`` and ``y`` (dotted keys); any other swept parameter gives one panel per value. Loop lineage
    only (controls are reference lines, not phases)."""
    from matplotlib.colors import LogNorm, Normalize

    study.check_metric(metric, "phase.metric")
    study.check_swept(x, "phase.x")
    study.check_swept(y, "phase.y")
    df = study.values(metric)
    g = int(df.generation.max()) if generation == -1 else generation
    if g not in set(df.generation):
        raise ConfigError("phase.generation", generation, f"-1 or a recorded generation (0..{int(df.generation.max())})")
    means = df[df.generation == g].groupby("run_id")["value"].mean()
    runs = study.runs[(study.runs.lineage == "loop") & study.runs.run_id.isin(means.index)]
    others = [k for k in study.swept if k not in (x, y)]
    key = lambda r, ks: json.dumps([r.params.get(k) for k in ks], default=str)  # noqa: E731
    facets = list(dict.fromkeys(key(r, others) for r in runs.itertuples()))
    xs = _sorted_levels([r.params.get(x) for r in runs.itertuples()])
    ys = _sorted_levels([r.params.get(y) for r in runs.itertuples()])
    grids = []
    for facet in facets:
        z = np.full((len(ys), len(xs)), np.nan)
        for r in runs.itertuples():
            if key(r, others) == facet:
                z[ys.index(r.params.get(y)), xs.index(r.params.get(x))] = means[r.run_id]
        grids.append(z)
    allv = np.concatenate([z[np.isfinite(z)] for z in grids]) if grids else np.array([])
    norm = LogNorm(allv.min(), allv.max()) if _spans_decades(allv) else Normalize(
        np.nanmin(allv) if allv.size else 0, np.nanmax(allv) if allv.size else 1)
    ncols = min(len(facets), 3) or 1
    nrows = -(-len(facets) // ncols) or 1
    fig = new_figure(min(4.2 * ncols + 1.2, 14), 3.6 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for i, (facet, z) in enumerate(zip(facets, grids)):
        ax = axes[i // ncols][i % ncols]
        image = ax.imshow(z, origin="lower", cmap="cividis", norm=norm, aspect="auto")
        ax.set_xticks(range(len(xs)), [fmt_value(v) for v in xs], fontsize=8)
        ax.set_yticks(range(len(ys)), [fmt_value(v) for v in ys], fontsize=8)
        ax.set_xlabel(short_key(x))
        ax.set_ylabel(short_key(y))
        vals = json.loads(facet)
        if others:
            ax.set_title(", ".join(f"{short_key(k)}={fmt_value(v)}" for k, v in zip(others, vals)), fontsize=9)
        for (row, col), v in np.ndenumerate(z):
            if np.isfinite(v):
                light = norm(v) < 0.55
                ax.text(col, row, f"{v:.3g}", ha="center", va="center", fontsize=7,
                        color="white" if light else "black")
    for j in range(len(facets), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.85, label=f"{metric}, mean at generation {g}")
    fig.suptitle(f"{study.name}: {metric} at generation {g} over {short_key(x)} × {short_key(y)}",
                 fontsize=10, x=0.02, ha="left")
    return fig


def figure_bytes(fig, fmt: str = "png", dpi: int = 110, compress_level: int = 6) -> bytes:
    """``fig`` as PNG, SVG or PDF bytes; ``compress_level``: zlib's level for PNG (6 is PIL's default; 1
    writes the same pixels ~2x faster and ~10% larger)."""
    if fmt not in FORMATS:
        raise ConfigError("--format", fmt, " | ".join(FORMATS))
    buf = io.BytesIO()
    engine = fig.get_layout_engine()
    extra = {"pil_kwargs": {"compress_level": compress_level}} if fmt == "png" else {}
    if fmt != "png" or engine is None:
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=_metadata(fmt), **extra)
        return buf.getvalue()
    # A raster figure with a layout engine: savefig would draw it twice (a dry run to lay it out, then the
    # picture). Lay it out once at the output resolution with the same Agg renderer, draw it once, and put the
    # engine back: the same pixels, one draw fewer.
    original_dpi = fig.dpi
    fig.set_dpi(dpi)
    try:
        engine.execute(fig)
        fig.set_layout_engine(None)
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=_metadata(fmt), **extra)
    finally:
        fig.set_layout_engine(engine)
        fig.set_dpi(original_dpi)
    return buf.getvalue()


def _metadata(fmt: str) -> dict:
    # reproducible files: no creation date in SVG/PDF
    return {"Date": None} if fmt in ("svg", "pdf") else {}


def save_figure(fig, path: str | Path, fmt: str | None = None, dpi: int = 150) -> Path:
    """Write ``fig`` as PNG, SVG or PDF (``fmt``, else the path's suffix), via a temporary file and a rename
    (PNG at zlib level 1: a file on disk, written fast; the HTML report keeps the default level)."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower() or "png"
    data = figure_bytes(fig, fmt, dpi, compress_level=1)
    if path.suffix.lstrip(".").lower() != fmt:
        path = path.with_name(f"{path.name}.{fmt}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
