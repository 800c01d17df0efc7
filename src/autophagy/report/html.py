"""``write_report(DIR)``: one self-contained HTML page of a finished study (``DIR/report.html``).

What was run (configuration differences between runs highlighted, seeds, version, command, time), then
the figures (the preset's ``report:`` block, else the automatic headline metrics), then the theory table
(predicted vs measured ± s.e., flags). Images are inline PNG data URIs; the page has no script, no link
and a Content-Security-Policy that forbids any network request. Every string that comes from a config
or a run (names, labels, option values) is HTML-escaped.
"""
from __future__ import annotations

import base64
import datetime as _dt
import os
from html import escape
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import AutophagyError
from . import figures
from .samples import image_grid_figure, samples_figure, stored_samples
from .study import Study, fmt_value, load_study, short_key
from .theory import comparison

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:.9em} code,pre{font:13px ui-monospace,Menlo,Consolas,monospace}
pre{background:#f6f6f6;padding:.6em;overflow:auto}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0} th,td{padding:.25em .6em;border-bottom:1px solid #eee;text-align:left}
th{background:#fafafa} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.diff,th.diff{background:#fff3cd} tr.flag td{background:#fde2e1} .ok{color:#1a7f37} .bad{color:#b42318;font-weight:600}
figure{margin:1.2em 0} figure img{max-width:100%;height:auto;border:1px solid #eee} figcaption{color:#555;font-size:.9em}
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _img(fig, alt: str) -> str:
    data = base64.b64encode(figures.figure_bytes(fig, "png", dpi=100)).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _figure(fig, alt: str, caption: str) -> str:
    return f"<figure>{_img(fig, alt)}<figcaption>{_e(caption)}</figcaption></figure>"


def _column(study: Study, name: str) -> list:
    return list(study.runs[name]) if name in study.runs.columns else []


def _what_was_run(study: Study) -> str:
    runs = study.runs
    first = runs["config"].iloc[0]
    seeds = sorted({c.get("seed") for c in runs["config"]}, key=str)
    versions = [v for v in _column(study, "version") if v]
    commands = [c for c in _column(study, "command") if c]
    from .. import __version__

    when = _when(study)
    items = [
        ("runs", f"{len(runs)} ({int((runs.lineage == 'control').sum())} real-only control)" if study.has_control
         else str(len(runs))),
        ("replicates × generations", f"{first.get('replicates')} × {first.get('generations')} (generations 0..{first.get('generations')})"),
        ("seed", ", ".join(map(str, seeds))),
        ("version", ", ".join(dict.fromkeys(map(str, versions))) if versions else f"autophagy {__version__} (reporting)"),
        ("command", "; ".join(dict.fromkeys(map(str, commands))) if commands else
         f"autophagy run CONFIG --out {study.directory or 'DIR'}  (this page: autophagy report {study.directory or 'DIR'})"),
        ("time", when),
        ("compute", f"{float(np.nansum(runs['seconds'].astype(float))):.1f} s over all runs" if "seconds" in runs else "-"),
    ]
    out = ["<h2 id='run'>What was run</h2>", "<table class='summary'>"]
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items]
    out.append("</table>")
    cols = study.swept
    out.append("<table class='runs'><tr><th>run</th><th>lineage</th>"
               + "".join(f"<th class='diff' title='{_e(k)}'>{_e(short_key(k))}</th>" for k in cols)
               + "<th>run id</th><th class='num'>seconds</th></tr>")
    for r in runs.itertuples():
        cells = "".join(f"<td class='diff'>{_e(fmt_value(r.params.get(k)))}</td>" for k in cols)
        secs = f"{float(r.seconds):.1f}" if hasattr(r, "seconds") and r.seconds == r.seconds else "-"
        out.append(f"<tr><td>{_e(r.label)}</td><td>{_e(r.lineage)}</td>{cells}<td><code>{_e(r.run_id)}</code></td>"
                   f"<td class='num'>{_e(secs)}</td></tr>")
    out.append("</table>")
    if cols:
        out.append(f"<p class='meta'>Highlighted: the {len(cols)} configuration value(s) that differ between runs "
                   f"({_e(', '.join(cols))}); everything else is shared.</p>")
    shared = {k: v for k, v in runs["params"].iloc[0].items() if k not in cols}
    text = "\n".join(f"{k}: {fmt_value(v)}" for k, v in shared.items())
    out.append(f"<details><summary>shared configuration ({len(shared)} values)</summary><pre>{_e(text)}</pre></details>")
    return "\n".join(out)


def _when(study: Study) -> str:
    created = [c for col in ("finished", "created") for c in _column(study, col) if isinstance(c, (int, float)) and c == c]
    stamp = max(created) if created else None
    if stamp is None and study.directory is not None and (study.directory / "results.sqlite").exists():
        stamp = (study.directory / "results.sqlite").stat().st_mtime
    fmt = lambda t: _dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")  # noqa: E731
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f"results written {fmt(stamp)}; " if stamp else "") + f"report written {now}"


def _pairs(study: Study) -> list[tuple[str, str]]:
    pairs = [tuple(p) for p in study.report_config().get("pairs", ())]
    if not pairs and {"precision", "recall"} <= set(study.recorded):
        pairs = [("precision", "recall")]
    return [p for p in pairs if set(p) <= set(study.recorded)]


def _figures(study: Study, metrics: Optional[Sequence[str]]) -> str:
    out = ["<h2 id='figures'>Figures</h2>"]
    headline = list(metrics) if metrics else study.headline()
    for m in headline:
        study.check_metric(m)
        fig = figures.metric_figure(study, m)
        out.append(_figure(fig, f"{m} against generation", f"{m} against generation, one line per run."
                           + (" Dashed black: the closed-form expectation." if _has_theory(fig) else "")))
    for x, y in _pairs(study):
        out.append(_figure(figures.pair_figure(study, x, y), f"{y} against {x}",
                           f"{y} against {x}: each run's path over generations (open circle: generation 0)."))
    for spec in study.report_config().get("phase", ()):
        try:
            fig = figures.phase_figure(study, spec["metric"], spec["x"], spec["y"], generation=spec.get("generation", -1))
        except AutophagyError as err:  # e.g. a preset re-run with its grid overridden away
            out.append(f"<p class='meta'>phase diagram of {_e(spec['metric'])} skipped: {_e(err)}</p>")
            continue
        out.append(_figure(fig, f"phase diagram of {spec['metric']}",
                           f"{spec['metric']} over {spec['x']} × {spec['y']} (loop lineage, mean over replicates)."))
    grid = image_grid_figure(study)
    if grid is not None:
        out.append(_figure(grid, "sample grids", "Samples of replicate 0's model, per run and generation."))
    samples = stored_samples(study)
    if samples:
        out.append(_figure(samples_figure(samples, title=f"{study.name}: samples per generation"), "samples",
                           "Stored samples per run and generation."))
    rest = [m for m in study.recorded if m not in headline]
    if rest:
        out.append(f"<p class='meta'>Also recorded: {_e(', '.join(rest))}. "
                   f"<code>autophagy plot DIR -m METRIC --format pdf</code> draws any of them.</p>")
    return "\n".join(out)


def _has_theory(fig) -> bool:
    return any(str(line.get_gid() or "").startswith("theory:") for ax in fig.axes for line in ax.get_lines())


def _theory(study: Study) -> str:
    out = ["<h2 id='theory'>Theory vs simulation</h2>"]
    table = comparison(study)
    if table.empty:
        out.append("<p>No closed-form prediction exists for these configurations (see docs/theory.md).</p>")
        return "\n".join(out)
    n_flag = int(table["flag"].sum())
    out.append(f"<p>{len(table)} comparisons of <code>theory.predict</code> with the measured mean ± Monte-Carlo "
               f"s.e.; <span class='{'bad' if n_flag else 'ok'}'>{n_flag} beyond 4 s.e.</span>. Shown: generation 0, "
               "the last generation and every flagged row.</p>")
    labels = dict(zip(study.runs.run_id, study.runs.label))
    G = int(table["generation"].max())
    shown = table[(table.generation == 0) | (table.generation == G) | table["flag"]]
    out.append("<table class='theory'><tr><th>run</th><th>metric</th><th class='num'>generation</th>"
               "<th class='num'>predicted</th><th class='num'>measured ± s.e.</th><th class='num'>z</th><th>flag</th></tr>")
    for r in shown.itertuples():
        flag = "DISAGREES" if r.flag else ("few chains" if r.dominated else "ok")
        cls = " class='flag'" if r.flag else ""
        out.append(f"<tr{cls}><td>{_e(labels.get(r.run_id, r.run_id))}</td><td>{_e(r.metric)}</td>"
                   f"<td class='num'>{int(r.generation)}</td><td class='num'>{r.expected:.5g}</td>"
                   f"<td class='num'>{r.measured:.5g} ± {r.se:.2g}</td><td class='num'>{r.z:+.2f}</td>"
                   f"<td>{_e(flag)}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def render_html(study: Study, metrics: Optional[Sequence[str]] = None) -> str:
    """The report page of ``study`` as one HTML string (no external resources)."""
    body = "\n".join([f"<h1>{_e(study.name)}</h1>",
                      f"<p class='meta'>autophagy study report · {_e(study.directory or '')}</p>",
                      "<p class='meta'><a href='#run'>what was run</a> · <a href='#figures'>figures</a> · "
                      "<a href='#theory'>theory</a></p>",
                      _what_was_run(study), _figures(study, metrics), _theory(study)])
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(study.name)} · autophagy report</title><style>{CSS}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def write_report(directory: str | Path, out: str | Path | None = None, *,
                 metrics: Optional[Sequence[str]] = None) -> Path:
    """Write the study report of results directory ``directory`` to ``out`` (default ``directory/report.html``)
    and return its path. ``metrics``: the metric figures to draw (default: the preset's ``report.metrics``, else
    the automatic headline). Raises ``ConfigError`` for a directory without results or an unrecorded metric.
    Written to a temporary file and renamed, so a failed report leaves no half-written page."""
    study = load_study(directory)
    target = Path(out) if out is not None else Path(directory) / "report.html"
    page = render_html(study, metrics)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)
    return target


__all__ = ["write_report", "render_html"]
