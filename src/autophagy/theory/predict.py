"""``predict(config)``: the closed-form expected trajectory of the recorded ``param.*`` metrics, and
``compare(config, metrics)``: prediction versus simulation, with Monte-Carlo z-scores.

Which formula serves which configuration (see docs/theory.md):

==================  =========================================  ==========================================
family              policies / options                         metrics (``param.``) and source
==================  =========================================  ==========================================
gaussian            any policy, synthetic_from last|all,        mean_sq_error, trace_cov (``moments``)
                    reference-mix correction, control lineage
gaussian            replace, last, no correction, Gaussian      + logdet_cov (``gaussian.replace_logdet``),
                    source                                      w2_sq if d = 1 or diag with diagonal Σ*
kde (numeric h)     as gaussian                                 mean_sq_error, trace_cov (``moments``)
categorical         replace, last, no correction, λ = 1 or K=2  gini_simpson, support_size, entropy, tv
                                                                (``categorical``: Wright–Fisher marginals)
categorical         any policy, λ = 1, no smoothing             gini_simpson (``moments`` with h = 0)
linear-regression   replace|augment|fresh|accumulate, last,     test_error, noise_var (``regression``)
                    n_synthetic = n_real = n_initial
==================  =========================================  ==========================================

Curation ``random-k`` keeps a uniform subset of iid candidates, which is again iid, so it is
predicted as no curation (not for regression, where it scrambles the design). Everything else
raises ``NoClosedForm`` with the reason; metrics a configuration records but that
have no closed form for it are left out and listed in ``frame.attrs["omitted"]``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..config import Config
from ..errors import AutophagyError
from . import categorical as cat
from . import gaussian as gauss
from . import regression as reg
from .moments import MomentSpec, propagate, propagate_many

MAX_CATEGORICAL_N = 3000  # the Wright–Fisher matrices are (n + 1)²


class NoClosedForm(AutophagyError):
    """This configuration has no closed-form prediction; ``str(err)`` says why."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"no closed form: {reason}")


def _family_options(cfg: Config, info) -> Any:
    """The family's validated ``Options`` (bad values raise ConfigError naming ``model.<field>``)."""
    from pydantic import ValidationError

    from .. import components
    from ..config import from_validation_error

    cls = components.resolve("family", cfg.model.family, "model.family")
    model = components.options_model(cls)
    try:
        return model.model_validate(dict(cfg.model.model_extra or {}))
    except ValidationError as err:
        raise from_validation_error(err, "model", model) from None


def _source_info(cfg: Config, base_dir):
    from ..build import source_info  # component construction, not orchestration (no api/sweep/store)

    return source_info(cfg, base_dir)


def _moments_of_truth(truth) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(mean, cov) of the source: published directly, or from Gaussian-mixture ``components``."""
    mean, cov = truth.get("mean"), truth.get("cov")
    if cov is None and truth.get("components") is not None:
        w, mus, covs = (np.asarray(a, dtype=float) for a in truth["components"])
        mix_mean = (w[:, None] * mus).sum(0)
        second = (w[:, None, None] * (covs + mus[:, :, None] * mus[:, None, :])).sum(0)
        cov = second - np.outer(mix_mean, mix_mean)
        mean = mix_mean if mean is None else mean
    return (None if mean is None else np.asarray(mean, float)), (None if cov is None else np.asarray(cov, float))


def _correction(cfg: Config) -> tuple[float, str, int]:
    """(t = γ/(1+γ), reference, n_reference) of a reference-mix correction, or raise NoClosedForm."""
    if not cfg.correction:
        return 0.0, "source", 1000
    from ..correction import build  # validates the block

    method = cfg.correction.get("method")
    if method != "reference-mix":
        raise NoClosedForm(f"correction.method = {method!r} moves samples by a data-dependent map; only "
                           "reference-mix (Gillman et al.'s π_γ) has a closed form")
    opts = build(cfg.correction, None).opts
    return opts.fraction(), opts.reference, opts.n_reference


def _spec(cfg: Config, lineage: str, **kw) -> MomentSpec:
    loop = cfg.loop
    t, ref, n_ref = _correction(cfg)
    n_real, n_synthetic = loop.sizes(cfg.generations) if loop.scheduled else (loop.n_real, loop.synthetic)
    return MomentSpec(n_initial=loop.initial, n_real=n_real, n_synthetic=n_synthetic,
                      generations=cfg.generations, policy=loop.policy, bias=cfg.sampling.bias,
                      synthetic_from=loop.synthetic_from, correction_t=t, reference=ref, n_reference=n_ref,
                      lineage=lineage, **kw)


def _plain_replace(cfg: Config, lineage: str) -> str | None:
    """None if this is the plain fully synthetic loop, else why not."""
    if lineage != "loop":
        return "the real-only control lineage"
    if cfg.loop.policy != "replace":
        return f"loop.policy = {cfg.loop.policy!r} (only replace)"
    if cfg.loop.synthetic_from != "last":
        return "synthetic_from = 'all'"
    if cfg.correction:
        return "a correction"
    return None


def _gaussian(cfg, info, lineage, out, omitted, solve=propagate):
    from ..policies import training_sizes

    opts = _family_options(cfg, info)
    mean, cov = _moments_of_truth(info.truth or {})
    if cov is None:
        raise NoClosedForm(f"data.source = {cfg.data.source!r} publishes no covariance (info.truth['cov'])")
    t_star, d = float(np.trace(cov)), cov.shape[0]
    est, diag = opts.estimator, opts.covariance == "diag"
    if est == "unbiased" and min(training_sizes(cfg.loop, cfg.generations)) < 2:
        raise NoClosedForm("the unbiased estimator needs at least two points per training set")
    m = solve(_spec(cfg, lineage, trace_star=t_star, family="gaussian", estimator=est, dim=d))
    out["trace_cov"] = m["trace_cov"]
    if (info.truth or {}).get("mean") is not None:
        out["mean_sq_error"] = m["mean_sq_error"]
    why = _plain_replace(cfg, lineage)
    if why is None and cfg.loop.scheduled:
        why = "a per-generation n_synthetic schedule"
    if why is None and not (info.truth or {}).get("gaussian"):
        why = "a non-Gaussian source"
    if why is not None:
        omitted["logdet_cov"] = f"closed form only for the plain replace loop on a Gaussian source, not with {why}"
        omitted["w2_sq"] = omitted["logdet_cov"]
        return
    n0, ns, G, lam = cfg.loop.initial, cfg.loop.synthetic, cfg.generations, cfg.sampling.bias
    if min(n0, ns) - 1 >= (1 if diag else d):
        star = float(np.log(np.diag(cov)).sum()) if diag else float(np.linalg.slogdet(cov)[1])
        out["logdet_cov"] = gauss.replace_logdet(star, d, n0, ns, G, est, lam, diag)
    else:
        omitted["logdet_cov"] = "a singular fitted covariance (n − 1 < d): log det = −inf"
    if d == 1 or (diag and np.allclose(cov, np.diag(np.diag(cov)))):
        out["w2_sq"] = gauss.replace_w2_sq(np.sqrt(np.diag(cov)), n0, ns, G, est, lam)
    else:
        omitted["w2_sq"] = ("E tr(Σ*^½ Σ_g Σ*^½)^½ has no closed form for a full covariance in d > 1 "
                            "(theory.gaussian.w2_lower_bound gives Jensen's lower bound)")


def _kde(cfg, info, lineage, out, omitted, solve=propagate):
    opts = _family_options(cfg, info)
    if isinstance(opts.bandwidth, str):
        raise NoClosedForm(f"model.bandwidth = {opts.bandwidth!r} is recomputed from each generation's data; "
                           "only a fixed numeric bandwidth has a closed form")
    mean, cov = _moments_of_truth(info.truth or {})
    if cov is None:
        raise NoClosedForm(f"data.source = {cfg.data.source!r} publishes no covariance (info.truth['cov'])")
    m = solve(_spec(cfg, lineage, trace_star=float(np.trace(cov)), family="kde", h=float(opts.bandwidth),
                        dim=cov.shape[0]))
    out["trace_cov"] = m["trace_cov"]
    if (info.truth or {}).get("mean") is not None:
        out["mean_sq_error"] = m["mean_sq_error"]
    omitted["logdet_cov"] = "log det of a KDE's covariance is not linear in second moments"


def _categorical(cfg, info, lineage, out, omitted, solve=propagate):
    opts = _family_options(cfg, info)
    probs = (info.truth or {}).get("probs")
    if probs is None:
        raise NoClosedForm("the source publishes no category probabilities (info.truth['probs'])")
    p = np.asarray(probs, dtype=float)
    K = opts.categories or info.n_categories or p.size
    p = np.pad(p, (0, max(0, K - p.size)))
    alpha, lam = float(opts.smoothing), cfg.sampling.bias
    plain = _plain_replace(cfg, lineage) is None and not cfg.loop.scheduled
    if plain and (lam == 1.0 or K == 2) and max(cfg.loop.initial, cfg.loop.synthetic) <= MAX_CATEGORICAL_N:
        out.update(cat.replace_metrics(p, cfg.loop.initial, cfg.loop.synthetic, cfg.generations, alpha, lam))
        return
    if (lam != 1.0 and lineage == "loop") or alpha != 0.0:  # the control lineage draws no biased samples
        raise NoClosedForm("categorical loops other than the plain replace loop need sampling.bias = 1 and "
                           "model.smoothing = 0 (sharpening p^(1/λ) and smoothing are non-linear in the counts); "
                           "the replace loop needs λ = 1 or K = 2")
    t, ref, _ = _correction(cfg)
    if t > 0 and ref != "source":
        raise NoClosedForm("correction.reference = 'fitted' fits a Gaussian to tokens")
    m = solve(_spec(cfg, lineage, trace_star=float(1 - (p ** 2).sum()), family="kde", h=0.0, dim=K))
    out["gini_simpson"] = m["trace_cov"]
    for name in ("support_size", "entropy", "tv"):
        omitted[name] = "only the Wright–Fisher replace loop gives this metric in closed form"


def _regression(cfg, info, lineage, out, omitted, solve=propagate):
    opts = _family_options(cfg, info)
    truth = info.truth or {}
    loop = cfg.loop
    if lineage != "loop" or cfg.correction:
        raise NoClosedForm("linear regression: no closed form with a correction or for the control lineage")
    if loop.policy not in ("replace", "augment", "fresh", "accumulate") or loop.synthetic_from != "last":
        raise NoClosedForm(f"linear regression: loop.policy = {loop.policy!r} / synthetic_from = "
                           f"{loop.synthetic_from!r} changes the design; closed forms exist for replace, augment, "
                           "fresh and accumulate with synthetic_from = last")
    if loop.scheduled or not (loop.initial == loop.n_real == loop.synthetic):
        raise NoClosedForm("linear regression: the closed form needs n_initial = n_real = n_synthetic "
                           "(synthetic labels are drawn at the fixed design)")
    design_std = truth.get("design_std", (cfg.data.model_extra or {}).get("design_std"))
    if design_std is None or truth.get("noise_std") is None:
        raise NoClosedForm("the source publishes no design_std / noise_std")
    if truth.get("design") not in (None, "gaussian"):
        raise NoClosedForm(f"design {truth.get('design')!r}: E tr(XᵀX)^-1 is known for Gaussian designs only")
    d = info.dim - 1 if truth.get("n_features") is None else int(truth["n_features"])
    n = loop.n_real
    if n <= d + 1:
        raise NoClosedForm(f"E tr(XᵀX)^-1 is infinite for n_real = {n} <= d + 1 = {d + 1}")
    tau = reg.design_trace_inverse(n, d, float(design_std))
    sigma = float(truth["noise_std"])
    sigma_m = opts.noise_std
    G, lam = cfg.generations, cfg.sampling.bias
    out["test_error"] = reg.expected_test_error(loop.policy, G, tau, sigma, sigma_m or sigma, lam)
    out["noise_var"] = np.full(G + 1, float(sigma_m or sigma) ** 2)


def _ngram(cfg, info, lineage, out, omitted, solve=propagate):
    from . import ngram

    ngram.predict_hook(cfg, info, lineage, out, omitted, _family_options(cfg, info), NoClosedForm)


_FAMILIES = {"gaussian": _gaussian, "kde": _kde, "categorical": _categorical, "linear-regression": _regression,
             "ngram": _ngram}


def _predict_one(cfg: Config, base_dir, lineage: str, solve=propagate) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(expected trajectories by metric, omitted metrics with reasons) of one run; ``solve`` runs the moment
    recursion (``propagate``, or ``_Later.solve``, which fills the arrays once every run has asked)."""
    if cfg.curation and (cfg.curation.get("method") != "random-k" or cfg.model.family == "linear-regression"):
        # random-k keeps a uniform subset of iid candidates, which is again iid: the law of the batch is unchanged
        raise NoClosedForm(f"curation.method = {cfg.curation.get('method')!r} selects synthetic samples by a "
                           "data-dependent rule (cherry-picking); only random-k (Gaussian, KDE, categorical) keeps "
                           "the law of the synthetic batch")
    handler = _FAMILIES.get(cfg.model.family)
    if handler is None:
        raise NoClosedForm(f"model.family = {cfg.model.family!r} is fitted numerically (closed forms exist for "
                           + ", ".join(_FAMILIES) + ")")
    spacing = (cfg.data.model_extra or {}).get("spacing", "random")
    if spacing != "random":  # toy sources' stratified draws: the real sets are not i.i.d. from info.truth's law
        raise NoClosedForm(f"data.spacing = {spacing!r} draws evenly spaced (stratified) real points; the closed "
                           "forms assume i.i.d. real draws (spacing: random)")
    info = _source_info(cfg, base_dir)
    out: dict[str, np.ndarray] = {}
    omitted: dict[str, str] = {}
    handler(cfg, info, lineage, out, omitted, solve)
    return out, omitted


class _Later:
    """Collects moment recursions and runs them together (``propagate_many``: runs that differ only in numbers
    share one batched recursion, bit for bit the same results). ``solve`` hands out the arrays at once, to
    be filled by ``run``; the handlers only pass them on, so nothing reads them before."""

    def __init__(self) -> None:
        self.pending: list[tuple[MomentSpec, dict[str, np.ndarray]]] = []

    def solve(self, spec: MomentSpec) -> dict[str, np.ndarray]:
        shape = spec.generations + 1
        arrays = {"mean_sq_error": np.empty(shape), "trace_cov": np.empty(shape)}
        self.pending.append((spec, arrays))
        return arrays

    def run(self) -> None:
        for (_, arrays), result in zip(self.pending, propagate_many([spec for spec, _ in self.pending])):
            for name, values in result.items():
                arrays[name][:] = values
        self.pending = []


def _collect(config: Any, overrides, solve):
    """Per run of ``config``: (run_id, values) for those with a closed form; the omitted metrics; the skipped runs."""
    from ..spec import specs_for

    found, omitted, skipped = [], {}, {}
    for spec in specs_for(config, overrides):
        c, lineage, run_id = spec.config, spec.lineage, spec.run_id
        try:
            values, why = _predict_one(c, spec.base_dir, lineage, solve)
        except NoClosedForm as err:
            skipped[run_id] = (spec.name, err.reason)
            continue
        omitted.update({f"param.{k}": v for k, v in why.items()})
        found.append((run_id, values))
    return found, omitted, skipped


def _frame(found, omitted, skipped) -> pd.DataFrame:
    if not found:
        raise NoClosedForm("; ".join(dict.fromkeys(r for _, r in skipped.values())) or "nothing to predict")
    gens, names, vals, ids = [], [], [], []
    for run_id, values in found:  # rows: run by run, metric by metric, generation by generation
        for name, arr in values.items():
            v = np.asarray(arr, dtype=float).ravel()
            gens.append(np.arange(v.size))
            vals.append(v)
            names.append(np.full(v.size, f"param.{name}", dtype=object))
            ids.append(np.full(v.size, run_id, dtype=object))
    cat = lambda parts, dtype: np.concatenate(parts) if parts else np.array([], dtype=dtype)  # noqa: E731
    frame = pd.DataFrame({"generation": cat(gens, np.int64), "metric": pd.array(cat(names, object), dtype="str"),
                          "expected": cat(vals, float), "run_id": pd.array(cat(ids, object), dtype="str")})
    frame.attrs["omitted"] = omitted
    frame.attrs["no_closed_form"] = skipped
    return frame


def predict(config: Any, overrides: list[str] | None = None) -> pd.DataFrame:
    """Expected ``param.*`` metrics per generation: columns ``generation, metric, expected, run_id``.

    ``config``: a dict, a YAML/TOML path or a ``Config`` (``overrides``: ``--set`` strings). Grids give one
    block per grid point and ``loop.control`` a second block for the real-only lineage, keyed by ``run_id``
    exactly as ``autophagy.run`` names runs. ``frame.attrs["omitted"]`` maps recorded metrics without a closed
    form to the reason; ``frame.attrs["no_closed_form"]`` maps each run without any (e.g. a biased arm of a
    categorical grid) to ``(name, reason)``, so no arm is dropped without a word. Raises ``NoClosedForm``
    when no run of the configuration has one.
    """
    later = _Later()
    found = _collect(config, overrides, later.solve)
    later.run()
    return _frame(*found)


def predict_many(configs: list[Any]) -> list:
    """``predict(c)`` for every config in ``configs``: each entry the frame, or the exception ``predict(c)``
    raises (``NoClosedForm``, ``ConfigError``, ...), with the moment recursions of all configs solved together
    (``moments.propagate_many``), so a study's runs cost one recursion per distinct structure rather than one
    per run. Same numbers as ``predict``, bit for bit."""
    later, parts = _Later(), []
    for config in configs:
        try:
            parts.append(_collect(config, None, later.solve))
        except Exception as err:  # noqa: BLE001 - handed back as predict(config) would raise it
            parts.append(err)
    try:
        later.run()
    except Exception:  # noqa: BLE001 - one recursion failed: one config at a time, so the error is its own
        return [_attempt(predict, c) for c in configs]
    return [p if isinstance(p, Exception) else _attempt(_frame, *p) for p in parts]


def _attempt(f, *args):
    try:
        return f(*args)
    except Exception as err:  # noqa: BLE001
        return err


def _row_stats(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per (run, generation, metric): mean, std, count, min and the Kish sums."""
    df = df.assign(sq=df["value"] ** 2)
    return df.groupby(keys, observed=True).agg(
        measured=("value", "mean"), std=("value", "std"), replicates=("value", "count"), vmin=("value", "min"),
        vsum=("value", "sum"), vsq=("sq", "sum")).reset_index()


WALK_METRICS = ("param.trace_cov",)  # the variance walk whose few-chain dominance carries the other moments
WALK_SHARE = 0.1  # from the first generation where its Kish size is below this share of R


def compare(config: Any, metrics: pd.DataFrame, threshold: float = 4.0, min_ess: float = 25.0,
            overrides: list[str] | None = None) -> pd.DataFrame:
    """Prediction against a simulation's long metrics frame (``Result.metrics``), matched by ``run_id``.

    Rows are matched to predictions by run id only (never by position): a frame holding none of the
    study's run ids is an ``AutophagyError`` naming both sets.

    Columns: ``generation, metric, expected, measured`` (mean over replicates), ``se`` (std/√R), ``z`` =
    (measured − expected)/se, ``z0`` (the same difference over the spread about the *prediction*, below),
    ``dominated`` (True: not tested; ``untested`` says why), ``flag``, ``run_id``, ``replicates``, ``limit``.

    Why two statistics: for a skewed metric (‖μ̂ − μ‖² is a scaled χ²_d, skewness √(8/d)) a small-R sample
    mean and its sample s.e. fall together, so z is far heavier-tailed than normal or Student-t: with
    R = 20 and skewness 2, P(|z| > 4) measured 1.2-1.8 % (t₁₉: 0.08 %), and mad_three_loops flagged 2-8 of
    676 rows at every seed although its predictions hold to 0.1 s.e. at R = 2000. The null-centred
    z0 = (m − e)/√(Σ(v − e)²/(R(R − 1))) is a score statistic: under the prediction its spread estimate
    does not shrink with an unlucky mean (P(|z0| > 3) measured 1 %, t₁₉ 0.7 %; never > 4 in 3,000 tries).
    A row is flagged when both |z| exceeds ``limit`` (the Student-t quantile with R − 1 degrees of
    freedom that has the normal tail of ``threshold``: 5.1 at R = 20, 4.06 at R = 300, → 4) and
    |z0| > ``threshold``. At large R the two agree; at small R only a bias of a few chain-sds is flagged.

    Not tested (``dominated``): non-negative values whose Kish effective sample size (Σv)²/Σv² is below
    ``min_ess`` and below R/4 (the mean is carried by a few chains, as for σ²_g deep into a replace loop);
    from the first generation where a run's ``param.trace_cov`` has a Kish size below R/10, its non-negative metrics (shumailov_gaussian_collapse's
    ‖μ_g − μ*‖² and W₂² at g > 78 were flagged at |z| ≈ 5-12 with a Kish size of 80-150: E‖μ_g − μ*‖² = Σ E σ²_k/n
    is held up by the same rare chains as E σ²_g); and rows with R − 1 ≤ threshold² (z0 can never reach the threshold). Deterministic metrics (se = 0)
    get z = 0 when they agree to 1e-9 (relative), ±inf otherwise.
    """
    from scipy.stats import norm, t as student

    pred = predict(config, overrides)
    keys = ["run_id", "generation", "metric"]
    df = metrics[metrics.metric.isin(pred.metric.unique())]
    df = df.assign(run_id=df["run_id"].astype(str), metric=df["metric"].astype(str))
    found = set(df.run_id)
    if not found & set(pred.run_id):
        shown = ", ".join(sorted(found)[:4]) or "(none)"
        raise AutophagyError(f"metrics: run ids {shown} are not runs of this config (predicted: "
                             f"{', '.join(sorted(set(pred.run_id))[:4])}); compare a config with the metrics "
                             "autophagy.run(config) produced (rows are matched by run id, never by position)")
    out = pred.merge(_row_stats(df, keys), on=keys, how="inner")
    R = out["replicates"]
    out["se"] = out["std"].fillna(0.0) / np.sqrt(R)
    diff = out["measured"] - out["expected"]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = diff / out["se"]
        null_sq = ((R - 1) * out["std"].fillna(0.0) ** 2 + R * diff ** 2) / (R * np.maximum(R - 1, 1))
        z0 = diff / np.sqrt(null_sq)
        ess = out["vsum"] ** 2 / out["vsq"]
    close = np.abs(diff) <= 1e-9 * np.maximum(1.0, np.abs(out["expected"]))
    exact = np.where(close, 0.0, np.sign(diff) * math.inf)
    out["z"] = np.where(out["se"] > 0, z, exact)
    out["z0"] = np.where(out["se"] > 0, z0, exact)
    kish = (out["vmin"] >= 0) & (out["vsq"] > 0) & (ess < min_ess) & (ess < R / 4)
    few = (out["se"] > 0) & (R - 1 <= threshold ** 2)
    # once a non-negative metric of a run is carried by a few chains, the run's other non-negative metrics
    # (functionals of the same variance walk: ‖μ_g − μ*‖² sums σ²_k/n) are too, from that generation on,
    # even where the sample cannot show it (their mean sits on chains rarer than 1/R)
    nonneg = out["vmin"] >= 0
    thin = nonneg & (out["vsq"] > 0) & (ess < WALK_SHARE * R)  # the walk's mean sits on < 10 % of the chains
    first = out[thin & out["metric"].isin(WALK_METRICS)].groupby("run_id")["generation"].min()
    start = out["run_id"].map(first)
    walk = nonneg & ~kish & (out["generation"] >= start.fillna(np.inf))
    out["untested"] = np.where(kish, [f"Kish effective chains {e:.1f} < {min_ess:g}" for e in ess],
                               np.where(walk, [f"the run's variance walk is carried by < 10 % of its chains from "
                                               f"generation {s:.0f} (Kish)" for s in start.fillna(-1)],
                                        np.where(few, [f"R = {r}: |z0| < √(R − 1) cannot exceed {threshold:g}"
                                                       for r in R], "")))
    out["dominated"] = kish | walk | few
    out["limit"] = np.where(out["se"] > 0, student.isf(norm.sf(threshold), np.maximum(R - 1, 1)), threshold)
    beyond = ~(np.abs(out["z"]) <= out["limit"]) & ~(np.abs(out["z0"]) <= threshold)
    out["flag"] = beyond & ~out["dominated"]
    cols = ["generation", "metric", "expected", "measured", "se", "z", "z0", "dominated", "flag", "run_id",
            "replicates", "limit", "untested"]
    result = out[cols].sort_values(["run_id", "metric", "generation"]).reset_index(drop=True)
    result.attrs["omitted"] = pred.attrs.get("omitted", {})
    result.attrs["no_closed_form"] = pred.attrs.get("no_closed_form", {})
    return result


def contraction(config: Any) -> pd.DataFrame:
    """Gillman et al.'s bound beside the exact contraction, for Gaussian ``reference-mix`` runs of ``augment``/``fresh``.

    One row per grid point: ``run_id, lam_B`` (= n_synthetic / n_real), ``gamma``, ``kappa`` (the exact
    population factor λ_B/((1+λ_B)(1+γ)) of the mean error, ``stability.reference_mix_factor``),
    ``bertrand_rate`` ρ(λ_B) and ``gillman_rate`` ρ(λ_B)/(1+γ) (Thm 4.3) and ``gillman_stable``. For the
    well-specified Gaussian mean, the log-likelihood −‖x − θ‖²/(2σ²) is α-strongly concave with α = 1/σ²,
    its θ-gradient is L-Lipschitz in x with L = 1/σ², and ε = 0, so C = 1 + Lε/α = 1 (derived here).
    Empty when no grid point qualifies (other corrections, families or policies).
    """
    from .stability import bertrand_rate, gillman_rate, gillman_stable, reference_mix_factor

    from ..spec import specs_for

    rows = []
    for spec in specs_for(config):
        c = spec.config
        if spec.control or (c.model.family != "gaussian" or c.loop.policy not in ("augment", "fresh") or not c.correction
                or c.correction.get("method") != "reference-mix" or c.loop.scheduled):
            continue
        t = _correction(c)[0]
        gamma = math.inf if t == 1.0 else t / (1.0 - t)
        lam = c.loop.synthetic / c.loop.n_real
        rows.append({"run_id": spec.run_id, "lam_B": lam, "gamma": gamma, "kappa": reference_mix_factor(lam, gamma),
                     "bertrand_rate": bertrand_rate(lam, 1.0, 1.0, 0.0), "gillman_rate": gillman_rate(lam, gamma, 1.0, 1.0, 0.0),
                     "gillman_stable": gillman_stable(lam, gamma, 1.0, 1.0, 0.0)})
    return pd.DataFrame(rows, columns=["run_id", "lam_B", "gamma", "kappa", "bertrand_rate", "gillman_rate", "gillman_stable"])
