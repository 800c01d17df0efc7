"""Metrics of the fitted model's density rather than its samples: held-out negative log-likelihood and
the total variation between the model's and the source's densities.
Signature and declarations: ``autophagy.metrics.base``.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..errors import ConfigError
from ..options import Options
from .base import CATEGORICAL, VECTORS, Metric, NoOptions, floats, parse


class DensityTVOptions(Options):
    method: Literal["auto", "grid", "mc"] = Field(
        "auto", description="grid: quadrature of the model's density (Gaussian, GMM, KDE; d <= 2); mc: importance "
                            "sampling over the held-out real points (any d, needs log_prob); auto: grid if possible")


def heldout_nll(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Quality and coverage of the model itself: mean −log p_model(x) over held-out real x.

    Uses ``model.log_prob`` ((R, n, d) -> (R, n); log-mass for categorical models); lower is
    better, and it diverges when the model loses the tails real data occupy (Shumailov et al.
    2024). For a perfect N(0, 1) model in 1-D it is ½ log(2πe) ≈ 1.419.
    Shapes: (R, n, d) -> {"heldout-nll": (R,)}.
    """
    parse(NoOptions, "heldout-nll", options)
    if not hasattr(model, "log_prob"):
        raise ConfigError("metrics", "heldout-nll", "a model family with log_prob (this one has none): drop heldout-nll")
    lp = np.asarray(model.log_prob(np.asarray(reference)), dtype=float)
    return {"heldout-nll": -lp.reshape(lp.shape[0], -1).mean(axis=1)}


def density_tv(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Distance: TV(P_r, model) = 1 − ∫ min(p*, q) from the two densities (Fu et al. 2024's distance).

    ``grid`` (``auto`` for the gaussian, gmm and kde families in d <= 2): deterministic quadrature of
    the fitted density against the source's, ``model.tv(info)`` (``autophagy.tv``), s.e. 0.
    ``mc`` (``auto`` otherwise): importance sampling from the source over the n held-out real points,
    TV = E_{x~P_r}[(1 − q(x)/p*(x))₊], unbiased because the held-out points are iid from P_r; the
    integrand lies in [0, 1], so the estimator has finite variance and s.e. = sd/√n
    (``density-tv-se``). Needs a source with a density (Gaussian or Gaussian-mixture ``truth``) and,
    for ``mc``, ``model.log_prob``. Shapes: (R, n, d) -> {"density-tv": (R,), "density-tv-se": (R,)}.
    """
    from ..tv import mixture_logpdf, truth_mixture

    o = parse(DensityTVOptions, "density-tv", options)
    ref = floats(np.asarray(reference), "reference")
    R, n, d = ref.shape
    truth = truth_mixture(info)
    if truth is None:
        raise ConfigError("metrics", "density-tv", "a source with a known density (gaussian or mixture)")
    if o.method != "mc" and hasattr(model, "tv") and d <= 2:
        value = model.tv(info)
        if value is not None:
            return {"density-tv": value, "density-tv-se": np.zeros(R)}
    if o.method == "grid":
        raise ConfigError("metrics.density-tv.method", "grid", "mc for this model (grid: gaussian, gmm or kde in d <= 2)")
    if not hasattr(model, "log_prob"):
        raise ConfigError("metrics", "density-tv", "a model family with log_prob (this one has none): use tv")
    w, mu, cov = truth
    logp = mixture_logpdf(ref, np.broadcast_to(w, (R,) + w.shape), np.broadcast_to(mu, (R,) + mu.shape),
                          np.broadcast_to(cov, (R,) + cov.shape))
    v = np.clip(1.0 - np.exp(np.asarray(model.log_prob(ref), dtype=float) - logp), 0.0, 1.0)
    return {"density-tv": v.mean(1), "density-tv-se": v.std(1, ddof=1) / np.sqrt(n)}


def _check_density_tv(o: DensityTVOptions, info, has_log_prob: bool) -> None:
    from ..tv import truth_mixture

    if truth_mixture(info) is None:
        raise ConfigError("metrics", "density-tv", "a source with a known density (gaussian or mixture): use tv")
    if o.method == "mc" and not has_log_prob:
        raise ConfigError("metrics.density-tv.method", "mc", "grid, or a model family with log_prob")


METRICS = (
    # heldout-nll reads the model and the real points only, so a diverged replicate's samples do not mask it
    Metric("heldout-nll", heldout_nll, kinds=VECTORS | CATEGORICAL, needs=frozenset({"log_prob"}), masked=False),
    Metric("density-tv", density_tv, options=DensityTVOptions, check=_check_density_tv),
)
