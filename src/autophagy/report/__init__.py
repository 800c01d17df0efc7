"""Figures and the self-contained HTML report of a finished study.

Public API::

    from autophagy import report
    report.write_report("results/demo")                   # -> Path("results/demo/report.html")
    study = report.load_study("results/demo")             # or load_study(result)
    fig = report.metric_figure(study, "recall")           # matplotlib Figure (object API, no pyplot)
    report.save_figure(fig, "recall.pdf")                 # PNG, SVG or PDF
    report.pair_figure(study, "precision", "recall")      # quality-diversity paths over generations
    report.phase_figure(study, "param.w2_sq", "sampling.bias", "loop.policy")

matplotlib is imported only when a figure is drawn.
"""
from .figures import FORMATS, metric_figure, pair_figure, phase_figure, save_figure
from .html import write_report
from .samples import image_grid_figure, samples_figure
from .study import Study, load_study

__all__ = ["write_report", "load_study", "Study", "metric_figure", "pair_figure", "phase_figure",
           "image_grid_figure", "samples_figure", "save_figure", "FORMATS"]
