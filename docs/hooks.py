"""MkDocs hooks: pages generated at build time from the code, so the site cannot drift from it.

* ``index.md``: the README (its ``docs/`` links made site-relative);
* ``reference/components/<section>.md``: one page per kind of component, rendered from
  ``autophagy.reference.sections()`` -- the same option models ``autophagy components`` prints;
* ``reference/metrics.md``: every built-in metric (``autophagy.metrics.BUILTIN``) with its summary and the
  facts below (what it measures, direction, range, cost, paper); a metric without facts fails the build;
* ``configs/<preset>.yaml``: the presets, so the presets page's links resolve inside the site.
"""
from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]

# metric -> (kind, direction, range, cost, reference). kind: quality | diversity | distance | ...
FACTS = {
    "wasserstein-1d": ("distance", "lower is closer", "[0, ∞)", "O(n log n) per dimension", "Villani 2009 (W1 of marginals)"),
    "sliced-wasserstein": ("distance", "lower is closer", "[0, ∞)", "O(L n log n), L projections", "Rabin et al. 2011; Bonneel et al. 2015"),
    "frechet": ("distance", "lower is closer", "[0, ∞)", "O(n d² + d³)", "Heusel et al. 2017 (FID)"),
    "mmd": ("distance", "lower is closer", "≈ [0, 2] (unbiased: can dip below 0)", "O(n²) kernel (max_points bounds it)", "Gretton et al. 2012"),
    "prd": ("quality (precision, density) and diversity (recall, coverage)", "higher is better", "[0, 1] (density ≥ 0)",
            "k-NN trees, O(n log n) in low d", "Kynkäänniemi et al. 2019; Naeem et al. 2020"),
    "vendi": ("diversity", "higher is more diverse", "[1, n]", "O(n³) eigendecomposition (max_points)", "Friedman & Dieng 2023"),
    "tv": ("distance", "lower is closer", "[0, 1] (finite-sample floor > 0)", "O(n) histograms", "—"),
    "kl": ("distance", "lower is closer", "[0, ∞)", "O(n) histograms", "Kullback & Leibler 1951"),
    "heldout-nll": ("quality and coverage of the model", "lower is better", "(−∞, ∞)", "one log_prob pass", "—"),
    "variance-ratio": ("diversity (spread)", "1 is the data's; < 1 collapse", "[0, ∞)", "O(n d²)", "Shumailov et al. 2024"),
    "mode-coverage": ("diversity across modes", "higher is better (minority-mass: the data's weight)", "[0, 1]", "O(n K)",
                      "Srivastava et al. 2017"),
    "tail-mass": ("diversity (tails)", "the data's value (≈ 2q per dim) is right; 0 = tails lost", "[0, 1]", "O(n d)",
                  "Shumailov et al. 2024"),
    "density-tv": ("distance", "lower is closer", "[0, 1]", "quadrature (2-D) or Monte Carlo", "Fu et al. 2024"),
    "reward-mean": ("reward (curation target)", "higher = more preferred", "reward's range", "one reward pass", "Ferbach et al. 2024"),
    "dynamics-residual": ("plausibility (physics)", "lower is more physical", "[0, ∞)", "O(n d²) projection", "Gillman et al. 2024"),
    "variability": ("diversity (images)", "variability-ratio 1 is the data's; < 1 loss", "[0, ∞)", "O(n² pixels) pairs", "Tarchi 2024"),
    "distribution-difference": ("bias (image positions)", "lower is closer", "[0, 1]", "O(n pixels)", "Tarchi 2024"),
    "digit-frechet": ("distance (digit features)", "lower is closer", "[0, ∞)", "a small CNN forward pass", "Heusel et al. 2017 (FID)"),
    "digit-precision-recall": ("quality and coverage (digit features)", "higher is better", "[0, 1]", "CNN + k-NN",
                               "Kynkäänniemi et al. 2019"),
    "class-distribution": ("mode balance (digit classes)", "lower TV is closer; class-entropy: the data's", "[0, 1]",
                           "a CNN forward pass", "Alemohammad et al. 2023"),
    "exact-kl": ("distance (token sequences, exact)", "lower is closer (0 for the true model)", "[0, ∞) nats/token",
                 "enumerates the source's window laws", "—"),
    "heldout-ppl": ("quality and coverage (token sequences)", "lower is better", "[1, ∞)", "one log_prob pass", "—"),
    "text-entropy": ("diversity (tokens)", "the data's value; falls under collapse", "[0, log K] nats", "O(n T)", "Shumailov et al. 2024"),
    "distinct-n": ("diversity (n-grams)", "higher is more diverse", "[0, 1]", "O(n T) hashing", "Li et al. 2016"),
    "tail-coverage": ("diversity (rare n-grams)", "higher keeps the tails", "[0, 1]", "O(n T)", "Shumailov et al. 2024"),
    "zipf-exponent": ("shape of the token law", "the data's value", "(−∞, ∞)", "O(n T)", "Zipf 1949"),
    "seq-length": ("shape (sequence length)", "the data's value", "[0, T]", "O(n T)", "—"),
}


def _components_pages() -> dict[str, str]:
    from autophagy.reference import option_line, sections

    pages = {}
    for s in sections():
        lines = [f"# {s.title}", "", s.intro, "",
                 "Generated from the option models (the same text as `autophagy components "
                 f"{s.key}`); every option shows its type, default and meaning.", ""]
        for e in s.entries:
            lines += [f"## `{e.name}`", ""]
            if e.unavailable:
                lines += [f"Unavailable here: {e.unavailable}", ""]
                continue
            lines += [e.summary, ""]
            if e.details:
                lines += ["```text", e.details, "```", ""]
            if e.options:
                lines += ["| option | type | default | meaning |", "|---|---|---|---|"]
                for o in e.options:
                    cell = [o.name, o.type, o.default, o.description]
                    lines.append("| " + " | ".join(f"`{c}`" if i < 3 else c for i, c in enumerate(
                        x.replace("|", "\\|") for x in cell)) + " |")
                lines.append("")
        pages[s.key] = "\n".join(lines)
        _ = option_line
    return pages


def _metrics_page() -> str:
    from autophagy import metrics
    from autophagy.reference import paragraphs

    missing = [n for n in metrics.BUILTIN if n not in FACTS]
    if missing:
        raise SystemExit(f"docs/hooks.py FACTS: add a row for the metric(s) {', '.join(missing)}")
    lines = ["# Metric reference", "",
             "Every sample-based metric (`metrics: [NAME, ...]`; options: `autophagy components NAME`). Each is "
             "computed per replicate and generation on `metrics.n_eval` model samples against `metrics.n_heldout` "
             "held-out real points. Families with closed forms also record `param.*` metrics (exact distances of the "
             "fitted parameters, e.g. `param.w2_sq`, `param.trace_cov`, `param.tv`), listed per family in the theory page.",
             "", "| metric | measures | direction | range | cost | reference |", "|---|---|---|---|---|---|"]
    for name, fn in ((n, m.fn) for n, m in metrics.BUILTIN.items()):
        kind, direction, rng, cost, paper = FACTS[name]
        lines.append(f"| [`{name}`](#{name}) | {kind} | {direction} | {rng} | {cost} | {paper} |")
    lines.append("")
    for name, fn in ((n, m.fn) for n, m in metrics.BUILTIN.items()):
        summary, details = paragraphs(fn)
        if not summary:  # documented in its module's docstring instead
            summary, details = _module_bullet(fn, name), ""
        lines += [f"## {name}", "", summary.replace("|", "\\|"), ""]
        if details:
            lines += ["```text", details, "```", ""]
    return "\n".join(lines)


def _module_bullet(fn, name: str) -> str:
    import sys

    from autophagy.reference import clean

    doc = sys.modules[fn.__module__].__doc__ or ""
    m = re.search(rf"^\* ``{re.escape(name)}``(.+?)(?=^\* |^\S|\Z)", doc, re.S | re.M)
    return clean(" ".join(m.group(1).split())).lstrip(": ") if m else ""


def on_files(files, config):
    readme = (ROOT / "README.md").read_text(encoding="utf-8").replace("](docs/", "](")
    generated = {"index.md": readme, "reference/metrics.md": _metrics_page()}
    generated.update({f"reference/components/{k}.md": v for k, v in _components_pages().items()})
    generated.update({f"configs/{p.name}": p.read_text(encoding="utf-8") for p in sorted((ROOT / "configs").glob("*.yaml"))})
    for uri, text in generated.items():
        files.append(File.generated(config, uri, content=text))
    return files


def on_page_markdown(markdown, page, config, files):
    """Links into the repository's configs/ point at the site's copies."""
    return markdown.replace("](../configs/", "](configs/" if "/" not in page.file.src_uri else "](../configs/")
