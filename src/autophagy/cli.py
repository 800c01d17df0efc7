"""Command line: parse -> config -> run / report. Only this module reads argv or the environment."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import AutophagyError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Simulate self-consuming (autophagous) training loops of generative models.")
console = Console(stderr=True)
# piped or redirected output gets room for the summary table (rich would wrap it at 80 columns)
out_console = Console(width=None if sys.stdout.isatty() else 160)


def _plugin_paths(config: Path) -> None:
    """Let ``model.family: "mypkg.mod:MyModel"`` find ``mypkg/`` beside the config or in the working directory.

    The folders are *appended* to ``sys.path``, after the installed packages: a ``matplotlib.py`` or
    ``numpy/`` beside a config can never shadow an installed module (configs execute no code except an
    explicit ``pkg.mod:Name`` import path; see the README's trust model)."""
    for folder in (Path.cwd(), Path(config).resolve().parent):
        if str(folder) not in sys.path:
            sys.path.append(str(folder))


_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"


def _results_dir(name: str, root: Path = Path("results")) -> Path:
    """``results/<name>`` with the name made a safe file name (no separators, no ``..``, no leading dot,
    at most 100 characters) and checked to stay inside ``results/``: a ``name: ../../x`` or an absolute
    name never writes elsewhere (use ``--out`` to choose another folder)."""
    from .errors import ConfigError

    safe = "".join(c if c in _SAFE else "_" for c in str(name))[:100].lstrip(".") or "run"
    target = root / safe
    if Path.resolve(root) not in target.resolve().parents:
        raise ConfigError("name", name, "", problem="the default results folder would leave results/; use --out")
    return target


# result keys of multi-output metrics, beside their own names (for checking -m before a study runs)
_KEYS = ("precision", "recall", "density", "coverage", "minority-mass", "density-tv-se", "digit-precision",
         "digit-recall", "class-entropy", "distribution-difference", "variability", "variability-ratio",
         "heldout-ce", "heldout-ppl", "exact-ce", "exact-kl", "seq-length", "tail-coverage", "text-entropy",
         "zipf-exponent")
_KEY_PREFIXES = ("mode-mass-", "distribution-difference-")
_PARAMS = ("mean_sq_error", "trace_cov", "logdet_cov", "w2_sq", "tv", "entropy", "gini_simpson", "support_size",
           "test_error", "noise_var", "train_loss")


def _check_table_metrics(names) -> None:
    """``-m`` names are checked before anything runs: a typo (``-m recal``) is one line naming the closest
    valid key, not a finished study with no table. Unknown ``param.*`` keys without a close match pass
    (a plug-in family may record its own)."""
    import difflib

    from . import metrics as metric_lib
    from .errors import ConfigError

    known = sorted(set(metric_lib.METRICS) | set(_KEYS) | {f"param.{p}" for p in _PARAMS})
    for name in names or ():
        if name in known or name.startswith(_KEY_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
        if name.startswith("param.") and not close:
            continue
        hint = f"did you mean {' or '.join(close)}?" if close else "param.* keys or one of " + ", ".join(
            k for k in known if not k.startswith("param."))
        raise ConfigError("--metric", name, "", problem=f"not a result key ({hint})")


def _fail(err: Exception) -> None:
    console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)  # [extra] is text
    raise typer.Exit(2)


def _version_callback(value: bool) -> None:
    if value:
        from ._version import __version__

        out_console.print(f"autophagy {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                       help="print the version and exit")):
    """Simulate self-consuming (autophagous) training loops of generative models."""


def _command_line() -> str:
    return " ".join(["autophagy", *sys.argv[1:]])


def _final_table(result, metrics: list[str]) -> Table:
    from rich.markup import escape

    from .report.plots import short_label as _label

    last = int(result.metrics.generation.max())
    table = Table(title=f"where each loop ends up: generation 0 -> {last} (mean ± s.e. over replicates)")
    table.add_column("run")
    for m in metrics:
        table.add_column(m, justify="right")
    rows: dict = {}
    for m in metrics:
        for _, r in result.final(m).iterrows():
            label = _label(r["name"])  # control runs' names already say "(real-only control)"
            rows.setdefault(r["run_id"], [escape(label)]).append(f"{r['gen0']:.3g} -> {r['final']:.3g} ± {r['final_se']:.1g}")
    for run_id in result.runs.run_id:  # study order, not hash order
        if run_id in rows:
            table.add_row(*rows[run_id])
    return table


# secondary keys of multi-output metrics: shown only when asked for (-m or metrics.table)
_SECONDARY = ("density", "coverage", "mode-mass-", "distribution-difference-", "class-entropy")


def _table_metrics(result, wanted) -> list[str]:
    """The summary table's columns: ``wanted`` (``-m`` or ``metrics.table``) where recorded; else up to four
    sample-based keys (secondary ones skipped), filled up to three columns with ``param.*`` summaries."""
    recorded = [str(m) for m in result.metrics.metric.unique()]  # first-seen order (pandas: 30x dict.fromkeys)
    if wanted:
        missing = [m for m in wanted if m not in recorded]
        if missing:
            console.print(f"note: not recorded, left out of the table: {', '.join(missing)}", highlight=False)
        return [m for m in wanted if m in recorded]
    sample = [m for m in recorded if not m.startswith("param.") and not m.startswith(_SECONDARY)][:4]
    params = [m for m in recorded if m.startswith("param.")]
    return sample + params[:max(0, 3 - len(sample))]


def _warm_figures():
    """Import the figure code (matplotlib: ≈ 0.6 s) in a background thread while the study runs, so the plot
    drawn after it does not wait for it; joined before the plot. A failed import is left to the plot to report."""
    import threading

    def load():
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
            from matplotlib.figure import Figure  # noqa: F401

            from .report import figures  # noqa: F401
        except Exception:  # noqa: BLE001 - the plot imports them again and says what failed
            pass

    thread = threading.Thread(target=load, name="autophagy-warm-figures", daemon=True)
    thread.start()
    return thread


def _run_and_report(config, out: Optional[Path], overrides, table_metrics, plot_metric: Optional[str] = None,
                    workers: int = 1, engine: Optional[str] = None, address: Optional[str] = None,
                    reuse_any_version: bool = False, hidden: Optional[list] = None, report: bool = False,
                    track: Optional[list] = None, check_memory: bool = True):
    from . import sweep

    if workers > 1 and engine in (None, "processes") and not address:
        sweep.prestart(workers)  # the workers start while this process imports pandas and builds the specs
    try:
        return _run_and_show(config, out, overrides, table_metrics, plot_metric, workers, engine, address,
                             reuse_any_version, hidden, report, track, check_memory)
    finally:
        sweep.discard_prestarted()


def _run_and_show(config, out, overrides, table_metrics, plot_metric, workers, engine, address, reuse_any_version,
                  hidden, report, track, check_memory):
    import warnings

    from . import api
    from .progress import SweepProgress

    # started with the shards (the driver is idle then): the figure's imports in a thread, and a process that
    # will write metrics.csv while this one prints the table and draws the figure (export_process)
    warm: list = []
    helper: list = []
    by_helper = out is not None and not track

    def on_start():
        warm.append(_warm_figures())
        if by_helper:
            from .export_process import ExportProcess

            helper.append(ExportProcess(out))

    progress = SweepProgress(console, on_start=on_start if out is not None else None)
    try:
        with warnings.catch_warnings(record=True) as caught:  # each shown as one line, after the progress bars
            warnings.simplefilter("always", UserWarning)
            result = api.run(config, out=out, overrides=overrides, workers=workers, engine=engine, address=address,
                             progress=progress, reuse_any_version=reuse_any_version, command=_command_line(),
                             hidden_overrides=hidden, track=track, check_memory=check_memory, export=not by_helper)
    except BaseException as exc:
        for h in helper:
            h.cancel()
        if not isinstance(exc, api.Interrupted):
            raise
        stop = exc
        progress.close()
        where = f" in {stop.out}" if stop.out is not None else " (nothing is saved without --out)"
        console.print(f"interrupted: {stop.saved} of {stop.total} runs complete{where}; run the same command again "
                      "to resume (finished runs and replicate blocks are reused)", highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    finally:
        progress.close()
    if by_helper:
        if helper:
            helper[0].go()  # the export runs there while this process prints the table and draws the figure
        else:  # no shard ran (every run reused): nothing started it
            from .store import Store

            Store(Path(out)).export("csv")
    try:
        _show(result, caught, out, table_metrics, plot_metric, warm, helper, report)
    except BaseException:
        for h in helper:
            try:
                h.wait()  # its files complete before this error goes on
            except Exception:  # noqa: BLE001 - the error already raised is the one to report
                pass
        raise
    return result


def _show(result, caught, out, table_metrics, plot_metric, warm, helper, report):
    """The CLI's output after a run: warnings, notes, the summary table, the figure, where results are."""
    for line in dict.fromkeys(str(w.message).splitlines()[0] for w in caught if issubclass(w.category, UserWarning)):
        console.print(f"warning: {line}", highlight=False, markup=False, soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    first = result.runs.config.iloc[0] if len(result.runs) else {}
    metrics = _table_metrics(result, table_metrics or list(first.get("metrics", {}).get("table", ())))
    if metrics:
        out_console.print(_final_table(result, metrics))
    if result.reused:
        out_console.print(f"reused {len(result.reused)} finished run(s) from {out}")
    if out is not None:
        plot = plot_metric or (metrics[0] if metrics else None)
        if plot:
            for thread in warm:
                thread.join()  # its imports done: none of them runs in two threads at once
            from .report.plots import plot_metric as draw

            path = draw(result, plot, Path(out) / f"{plot.replace('.', '_')}.png", title=first.get("name", ""))
            out_console.print(f"plot: {path}")
        if (Path(out) / "grids").is_dir():
            out_console.print(f"sample grids (replicate 0, per generation): {Path(out) / 'grids'}/<run_id>/")
        while helper:
            helper.pop().wait()  # metrics.csv and runs.csv written (here, if the helper could not)
        out_console.print(f"results: {Path(out) / 'results.sqlite'} and {Path(out) / 'metrics.csv'}")
        if report:
            from .report import write_report

            out_console.print(f"report: {write_report(out)}")


_WORKERS = typer.Option(1, "--workers", "-w", help="parallel workers (processes by default when > 1)")
_ENGINE = typer.Option(None, "--engine", "-e", help="serial | processes | dask (default: serial for 1 worker, "
                                                   "processes for more, dask with --address)")
_ADDRESS = typer.Option(None, "--address", help="an existing Dask scheduler, e.g. tcp://host:8786 (implies --engine dask)")


def _config_path(config: Path) -> Path:
    """A config file, or a preset named ``NAME`` / ``preset:NAME`` (``autophagy presets`` lists them)."""
    from . import catalog

    return catalog.preset_path(str(config)) if catalog.is_reference(str(config)) else config


@app.command()
def run(config: Path = typer.Argument(..., help="YAML or TOML config file, or a preset: NAME or preset:NAME "
                                                "(autophagy presets lists them)"),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="results directory (default: results/<name>)"),
        set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="override: key.path=value (repeatable)"),
        metric: Optional[List[str]] = typer.Option(None, "--metric", "-m", help="metric(s) for the summary table"),
        no_save: bool = typer.Option(False, "--no-save", help="print the table only; write no files"),
        workers: int = _WORKERS, engine: Optional[str] = _ENGINE, address: Optional[str] = _ADDRESS,
        reuse_any_version: bool = typer.Option(False, "--reuse-any-version",
                                               help="reuse finished runs that another autophagy version stored"),
        report: bool = typer.Option(False, "--report", help="also write DIR/report.html (figures, theory table)"),
        track: Optional[List[str]] = typer.Option(None, "--track", "-t", help="also mirror the runs to mlflow, wandb "
                                                  "or tensorboard (offline, inside the results directory; repeatable)"),
        no_memory_check: bool = typer.Option(False, "--no-memory-check", help="run even if the estimated arrays "
                                             "exceed this machine's memory")):
    """Run a study from a config file or a preset and print where each loop ends up."""
    try:
        from .config import load_config
        from .errors import ConfigError

        config = _config_path(config)
        _plugin_paths(config)
        cfg, _ = load_config(config, set_)
        _check_table_metrics(metric)
        target = None if no_save else (out or _results_dir(cfg.name))
        if report and target is None:
            raise ConfigError("--report", True, "", problem="a report needs saved results: drop --no-save")
        _run_and_report(config, target, set_, metric, workers=workers, engine=engine, address=address,
                        reuse_any_version=reuse_any_version, report=report, track=track,
                        check_memory=not no_memory_check)
    except AutophagyError as err:
        _fail(err)


@app.command()
def demo(out: Path = typer.Option(Path("results/demo"), "--out", "-o", help="results directory")):
    """MAD's three loops (replace, augment, fresh), with and without sampling bias, on a 2-D Gaussian mixture."""
    from importlib import resources

    try:
        preset = resources.files("autophagy") / "presets" / "demo.yaml"
        with resources.as_file(preset) as path:
            _run_and_report(path, out, None, ["sliced-wasserstein", "precision", "recall"], plot_metric="recall",
                            report=True)
    except AutophagyError as err:
        _fail(err)


@app.command()
def export(directory: Path = typer.Argument(..., help="a results directory (holding results.sqlite)"),
           format: str = typer.Option("csv", "--format", "-f", help="csv or parquet")):
    """Export a results directory's metrics and runs to CSV or Parquet."""
    from .errors import ConfigError
    from .store import Store

    try:
        if format not in ("csv", "parquet"):
            raise ConfigError("--format", format, "csv or parquet")
        if not (directory / "results.sqlite").exists():
            raise ConfigError("DIR", str(directory), "a results directory containing results.sqlite")
        if format == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise ConfigError("--format", format, "csv, or install the parquet extra: pip install 'autophagy[parquet]'") from None
        for path in Store(directory).export(format):
            out_console.print(str(path))
    except AutophagyError as err:
        _fail(err)


@app.command()
def runs(directory: Path = typer.Argument(..., help="a results directory (holding results.sqlite)")):
    """List the runs in a results directory: name, id, status, generations done, seconds, version."""
    from .errors import ConfigError
    from .store import Store

    try:
        if not (directory / "results.sqlite").exists():
            raise ConfigError("DIR", str(directory), "a results directory containing results.sqlite")
        table_runs, _ = Store(directory).load()
        t = Table(title=f"runs in {escape(str(directory))}")
        for col in ("run", "id", "status", "generations", "seconds", "version"):
            t.add_column(col, justify="left" if col in ("run", "id", "status") else "right")
        for r in table_runs.itertuples():
            total = "?" if r.generations is None or r.generations != r.generations else int(r.generations) + 1
            t.add_row(escape(str(r.name)), r.run_id, r.status or "?", f"{r.generations_done}/{total}",
                      f"{(r.seconds or 0.0):.1f}", str(r.version or "0.1 (old store)"))
        out_console.print(t)
        n_open = int((table_runs.status != "done").sum())
        if n_open:
            out_console.print(f"{n_open} unfinished: run the same command again to resume them", highlight=False)
    except AutophagyError as err:
        _fail(err)


@app.command()
def theory(config: Path = typer.Argument(..., help="YAML or TOML config file, or a preset name"),
           set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="override: key.path=value (repeatable)"),
           predict_only: bool = typer.Option(False, "--predict-only", help="print the predictions without simulating"),
           all_rows: bool = typer.Option(False, "--all", help="print every generation (default: about ten per run, "
                                                               "plus every flagged row)"),
           workers: int = _WORKERS, engine: Optional[str] = _ENGINE, address: Optional[str] = _ADDRESS):
    """Closed-form predictions beside the simulation's means ± Monte-Carlo s.e.; flags |z| > 4."""
    from . import api
    from . import theory as th
    from .config import load_config
    from .report.plots import short_label

    try:
        config = _config_path(config)
        _plugin_paths(config)
        # compare() reads param.* only: skip the automatic quality/diversity metrics of curated runs
        overrides = [*(set_ or []), "metrics.tradeoff=false"]
        cfg, _ = load_config(config, overrides)
        table = th.predict(config, overrides)  # fails fast when no closed form exists
        for metric, why in table.attrs.get("omitted", {}).items():
            out_console.print(f"no closed form for {metric}: {why}", highlight=False)
        for name, why in table.attrs.get("no_closed_form", {}).values():  # an arm is never dropped silently
            out_console.print(f"no closed form for run {short_label(name)}: {why}; not compared", highlight=False,
                              markup=False)
        if predict_only:
            out_console.print(table.to_string(index=False))
            return
        from .progress import SweepProgress

        progress = SweepProgress(console)
        try:
            result = api.run(config, overrides=set_, hidden_overrides=["metrics.tradeoff=false"], workers=workers,
                             engine=engine, address=address, progress=progress, command=_command_line())
        except api.Interrupted:
            console.print("interrupted: nothing compared (the theory command keeps no results)", highlight=False)
            raise typer.Exit(130)
        finally:
            progress.close()
        labels = {r.run_id: short_label(r.name) for r in result.runs.itertuples()}
        table = th.compare(config, result.metrics, overrides=overrides)
        G = int(table.generation.max())
        step = max(1, -(-G // 10))
        shown = table if all_rows else table[(table.generation % step == 0) | (table.generation == G) | table.flag]
        t = Table(title=f"theory vs simulation: {cfg.name} (R = {cfg.replicates})"
                        + ("" if all_rows or step == 1 else f"; every {step}th generation and flagged rows (--all: every row)"))
        for col in ("run", "generation", "metric", "expected", "measured", "se", "z", "flag"):
            t.add_column(col, justify="left" if col == "run" else "right")
        for _, r in shown.iterrows():
            flag = "[bold red]DISAGREES[/]" if r["flag"] else ("few chains" if r["dominated"] else "ok")
            t.add_row(escape(labels.get(r["run_id"], r["run_id"])), str(int(r["generation"])), str(r["metric"]),
                      f"{r['expected']:.5g}", f"{r['measured']:.5g}", f"{r['se']:.2g}", f"{r['z']:+.2f}", flag)
        out_console.print(t)
        n_bad, n_few = int(table["flag"].sum()), int(table["dominated"].sum())
        out_console.print(f"{n_bad} of {len(table)} comparisons beyond 4 standard errors"
                          f"{'' if n_bad == 0 else ' (DISAGREES: |z| beyond the t limit and |z0| beyond 4)'}")
        if n_few:
            reasons = table.loc[table["dominated"], "untested"].str.split(":").str[0].str.replace(r"[\d.]+$", "", regex=True)
            out_console.print(f"{n_few} not tested ('few chains': {', '.join(dict.fromkeys(reasons.str.strip()))}): "
                              "the mean is carried by too few effective replicates for neither it nor its s.e. to be "
                              "reliable; raise replicates", highlight=False, markup=False)
        from .theory import fu

        tv = fu.tv_table(cfg, result.metrics)
        if len(tv):
            t = Table(title="Fu et al.: measured TV to the source beside the recursion bound (docs/theory.md)")
            for col in ("run", "generation", "α (real share)", "bound", "measured", "se", "below"):
                t.add_column(col, justify="left" if col == "run" else "right")
            for _, r in tv[(tv.generation % step == 0) | (tv.generation == G) | ~tv.below].iterrows():
                t.add_row(escape(labels.get(r["run_id"], r["name"])), str(int(r["generation"])), f"{r['alpha']:.3g}",
                          f"{r['bound']:.4g}", f"{r['measured']:.4g}", f"{r['se']:.2g}",
                          "yes" if r["below"] else "[bold red]NO[/]")
            out_console.print(t)
        kappa = th.contraction(cfg)
        if len(kappa):
            t = Table(title="reference-mix: exact contraction κ = λ_B/((1+λ_B)(1+γ)) beside Gillman et al.'s "
                            "bound ρ(λ_B)/(1+γ) (Gaussian mean: α = L = 1/σ², ε = 0)")
            for col in ("λ_B", "γ", "κ (exact)", "ρ(λ_B)", "ρ/(1+γ)", "λ_B < (1+γ)/(2+γ)"):
                t.add_column(col, justify="right")
            for _, r in kappa.iterrows():
                t.add_row(f"{r['lam_B']:.3g}", f"{r['gamma']:.3g}", f"{r['kappa']:.4g}", f"{r['bertrand_rate']:.4g}",
                          f"{r['gillman_rate']:.4g}", "yes" if r["gillman_stable"] else "no: no guarantee")
            out_console.print(t)
    except AutophagyError as err:
        _fail(err)


@app.command()
def components(name: Optional[str] = typer.Argument(None, help="one component (e.g. prd, gmm, top-k) or section "
                                                          "(sources, families, loop, sampling, metrics, ...)")):
    """Every top-level key and section of a config: sources, families, loop policies, sampling, metrics,
    curation and correction methods, report, with their options and defaults."""
    from . import reference

    def say(text: str, indent: int = 0, bold: bool = False) -> None:
        out_console.print(" " * indent + text, markup=False, highlight=False, style="bold" if bold else None,
                          soft_wrap=True)

    def entry(e, details: bool) -> None:
        if e.unavailable:
            say(f"{e.name}  (unavailable: {e.unavailable})", 2)
            return
        say(f"{e.name}  {e.summary}".rstrip(), 2)
        if details and e.details:
            for line in e.details.splitlines():
                say(line, 6)
        for o in e.options:
            say(reference.option_line(o), 6)

    try:
        if name is None:
            for section in reference.sections():
                say(section.title, bold=True)
                for e in section.entries:
                    entry(e, details=False)
            return
        shown = None
        for section, e in reference.find(name):
            if section is not shown:
                say(section.title, bold=True)
                shown = section
            entry(e, details=True)
    except AutophagyError as err:
        _fail(err)


@app.command()
def presets():
    """The shipped presets: name, paper, what to look for, expected run time (`autophagy run NAME` runs one)."""
    from . import catalog

    t = Table(title="presets: autophagy run NAME (or preset:NAME) runs one")
    for col in ("name", "paper", "what to look for", "time"):
        t.add_column(col, overflow="fold")
    for p in catalog.catalog():
        look = p.look_for if len(p.look_for) <= 150 else p.look_for[:150].rsplit(" ", 1)[0] + " …"
        t.add_row(escape(p.name), escape(p.paper), escape(look), escape(p.time))
    out_console.print(t)


@app.command()
def report(directory: Path = typer.Argument(..., help="a results directory (holding results.sqlite)"),
           metric: Optional[List[str]] = typer.Option(None, "--metric", "-m", help="metric figure(s) to draw "
                                                      "(default: the preset's report.metrics)"),
           out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file (default: DIR/report.html)")):
    """Write DIR/report.html: what was run, the figures and the theory table, in one self-contained file."""
    from .report import write_report

    try:
        out_console.print(str(write_report(directory, out, metrics=metric or None)), highlight=False, soft_wrap=True)
    except AutophagyError as err:
        _fail(err)


@app.command()
def plot(directory: Path = typer.Argument(..., help="a results directory (holding results.sqlite)"),
         metric: Optional[List[str]] = typer.Option(None, "--metric", "-m", help="metric(s): one figure each "
                                                    "(default: the preset's headline metrics)"),
         pair: Optional[str] = typer.Option(None, "--pair", help="X,Y: the path of metric Y against metric X"),
         phase: Optional[str] = typer.Option(None, "--phase", help="X,Y: swept parameters of a phase diagram "
                                             "of --metric (dotted keys, e.g. loop.n_synthetic,sampling.bias)"),
         generation: int = typer.Option(-1, "--generation", "-g", help="phase diagram generation (-1: the last)"),
         band: str = typer.Option("auto", "--band", help="auto, se (mean ± 2 s.e.) or quantile (median, 10%-90%)"),
         format: str = typer.Option("png", "--format", "-f", help="png, svg or pdf"),
         out: Optional[Path] = typer.Option(None, "--out", "-o", help="output folder (default: DIR/figures)")):
    """Single figures of a results directory: metric vs generation, a metric pair, or a phase diagram."""
    from .errors import ConfigError
    from .report import figures as F
    from .report import load_study

    def two(option: str, text: str) -> tuple[str, str]:
        parts = [t.strip() for t in text.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ConfigError(option, text, "two comma-separated names X,Y")
        return parts[0], parts[1]

    try:
        if format not in F.FORMATS:
            raise ConfigError("--format", format, " | ".join(F.FORMATS))
        if band not in ("auto", "se", "quantile"):
            raise ConfigError("--band", band, "auto, se or quantile")
        study = load_study(directory)
        folder = out or directory / "figures"
        jobs = []
        if pair:
            x, y = two("--pair", pair)
            jobs.append((f"{y}_vs_{x}", lambda x=x, y=y: F.pair_figure(study, x, y)))
        if phase:
            x, y = two("--phase", phase)
            if not metric or len(metric) != 1:
                raise ConfigError("--metric", metric or "(none)", "exactly one metric with --phase")
            m = metric[0]
            jobs.append((f"{m}_phase", lambda m=m, x=x, y=y: F.phase_figure(study, m, x, y, generation=generation)))
        if not (pair or phase):
            for m in metric or study.headline():
                study.check_metric(m)
                jobs.append((m, lambda m=m: F.metric_figure(study, m, band=band)))
        for stem, draw in jobs:
            path = F.save_figure(draw(), folder / f"{stem.replace('.', '_')}.{format}", format)
            out_console.print(str(path), highlight=False, soft_wrap=True)
    except AutophagyError as err:
        _fail(err)


def main() -> None:  # pragma: no cover - the console script
    """``autophagy``: the typer app, with Ctrl-C before a study starts (imports, validation) ending quietly."""
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted", highlight=False)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
