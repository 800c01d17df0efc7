"""How the samples spread compared with the real data: total variance, tail mass and, for Gaussian-mixture
sources, the mass on each mode (mode collapse). Signature and declarations: ``autophagy.metrics.base``.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from ..errors import ConfigError
from ..options import Options
from .base import Metric, NoOptions, floats, parse

COMPONENTS = "a Gaussian-mixture source (info.truth['components']), e.g. data.source: mixture"


class ModeOptions(Options):
    threshold: float = Field(0.25, gt=0.0, le=1.0, description="covered if mass >= threshold * true weight")
    level: float = Field(0.9973, gt=0.0, lt=1.0, description="chi-square level of a mode's ellipsoid (3 sd in 1-D)")


class TailOptions(Options):
    q: float = Field(0.01, gt=0.0, lt=0.5, description="reference quantile box [q, 1-q] per dimension")


def variance_ratio(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Diversity: tr Cov(samples) / tr Cov(reference) (unbiased covariances); 1 = same spread,
    → 0 under the variance collapse of self-consuming loops. Shapes -> {"variance-ratio": (R,)}.
    """
    parse(NoOptions, "variance-ratio", options)
    x, y = floats(reference, "reference"), floats(samples, "samples")
    return {"variance-ratio": y.var(axis=1, ddof=1).sum(-1) / x.var(axis=1, ddof=1).sum(-1)}


def tail_mass(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Diversity (tails): fraction of samples outside the reference's per-dimension quantile box
    [q_j(q), q_j(1 − q)] (a point is outside if any coordinate is).

    For a perfect model this is 2q in 1-D and 1 − (1 − 2q)^d for independent coordinates (less
    with correlated ones); it drops towards 0 as a loop forgets the tails (Shumailov et al. 2024).
    Shapes: (R, n, d), (R, m, d) -> {"tail-mass": (R,)}.
    """
    o = parse(TailOptions, "tail-mass", options)
    x, y = floats(reference, "reference"), floats(samples, "samples")
    lo, hi = np.quantile(x, [o.q, 1 - o.q], axis=1)  # (R, d) each
    outside = ((y < lo[:, None, :]) | (y > hi[:, None, :])).any(axis=-1)
    return {"tail-mass": outside.mean(axis=1)}


def _components(info, name: str):
    comps = info.truth.get("components") if info is not None else None
    if comps is None:
        raise ConfigError("metrics", name, COMPONENTS)
    return tuple(np.asarray(c, dtype=float) for c in comps)


def mode_coverage(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Diversity across modes of a Gaussian-mixture source (mode collapse; Srivastava et al. 2017).

    Each sample goes to its nearest component mean (Euclidean) and counts for that mode only if
    it lies inside the mode's ``level`` ellipsoid, (y − μ_k)ᵀ Σ_k⁻¹ (y − μ_k) ≤ χ²_d(level)
    (level 0.9973 = 3 sd in 1-D); other samples are off-mode. mode_mass_k = share of samples
    counted for mode k; a mode is covered when mode_mass_k ≥ threshold · w_k (a quarter of its
    true weight by default, so minority modes are judged against their own weight). Reports
    "mode-coverage" (share of modes covered), "minority-mass" (mass of the lowest-weight mode:
    minority-mode retention; when several modes share the lowest weight, the smallest of their masses) and "mode-mass-0".."mode-mass-{K-1}".
    Shapes: (R, m, d) -> dict of (R,) arrays.
    """
    from scipy.stats import chi2

    o = parse(ModeOptions, "mode-coverage", options)
    w, mu, cov = _components(info, "mode-coverage")
    y = floats(samples, "samples")
    d2 = (y * y).sum(-1)[..., None] + (mu * mu).sum(-1) - 2 * y @ mu.T  # (R, m, K)
    nearest = d2.argmin(-1)
    prec = np.linalg.inv(cov)
    maha = np.empty(nearest.shape)
    for k in range(len(w)):
        diff = y - mu[k]
        maha = np.where(nearest == k, np.einsum("rmi,ij,rmj->rm", diff, prec[k], diff), maha)
    inside = maha <= chi2.ppf(o.level, y.shape[-1])
    mass = np.stack([((nearest == k) & inside).mean(axis=1) for k in range(len(w))], axis=1)  # (R, K)
    minority = np.isclose(w, w.min())  # the lowest-weight mode(s); with ties the most starved of them
    out = {"mode-coverage": (mass >= o.threshold * w).mean(axis=1), "minority-mass": mass[:, minority].min(axis=1)}
    out.update({f"mode-mass-{k}": mass[:, k] for k in range(len(w))})
    return out


METRICS = (
    Metric("variance-ratio", variance_ratio),
    Metric("mode-coverage", mode_coverage, options=ModeOptions, truth={"components": COMPONENTS}),
    Metric("tail-mass", tail_mass, options=TailOptions),
)
