"""Sample-based metrics: pure functions of held-out real data, a generation's samples and
(optionally) the fitted model, each returning one value per replicate.

Every metric has the signature ::

    name(reference, samples, *, model=None, info=None, streams=None, **options) -> {key: (R,) array}

``reference`` is held-out real data ``(R, n, d)``, ``samples`` the generation's samples
``(R, m, d)`` (categorical tokens: ``(R, n, T)`` int64), ``model`` the fitted batch model,
``info`` the source's ``SourceInfo`` and ``streams`` an ``autophagy.rng.Streams`` for the few
metrics that draw (projections, subsampling). Each metric says whether it measures *quality*
(are samples where real data are), *diversity* (do samples spread like real data) or a
*distance* between the two distributions (both at once). Options are validated by the pydantic
model in ``OPTIONS[name]``; bad ones raise ``ConfigError`` naming ``metrics.<name>.<option>``.
"""
from __future__ import annotations

from typing import Any, Callable, Literal, Optional, Union

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt, ValidationError

from .errors import ConfigError
from .options import Options

_BUDGET = 1 << 22  # array elements per vectorised chunk of replicates (~32 MB of float64)
CATEGORICAL_METRICS = ("heldout-nll", "kl", "tv")


# --------------------------------------------------------------------------- options
class _NoOptions(Options):
    pass


class SlicedOptions(Options):
    projections: PositiveInt = Field(64, description="random directions per replicate")
    p: float = Field(2.0, ge=1.0, description="order p of SW_p")


class FrechetOptions(Options):
    features: Optional[str] = Field(None, description="'package.module:fn' mapping (n, d) -> (n, k) features")


class MMDOptions(Options):
    bandwidth: Union[PositiveFloat, Literal["median"]] = "median"
    max_points: int = Field(2000, ge=2, description="random subsample per set (bounds memory)")


class PRDOptions(Options):
    k: PositiveInt = Field(5, description="k of the k-NN radii")


class VendiOptions(Options):
    bandwidth: Union[PositiveFloat, Literal["reference", "median"]] = "reference"
    max_points: int = Field(1000, ge=2, description="random subsample of the samples (eigendecomposition is O(n^3))")


class TVOptions(Options):
    bins: PositiveInt = Field(30, description="bins per dimension over the reference range (vectors only)")


class DensityTVOptions(Options):
    method: Literal["auto", "grid", "mc"] = Field(
        "auto", description="grid: quadrature of the model's density (Gaussian, GMM, KDE; d <= 2); mc: importance "
                            "sampling over the held-out real points (any d, needs log_prob); auto: grid if possible")


class KLOptions(TVOptions):
    eps: float = Field(1e-10, gt=0.0, description="additive smoothing of both histograms")


class ModeOptions(Options):
    threshold: float = Field(0.25, gt=0.0, le=1.0, description="covered if mass >= threshold * true weight")
    level: float = Field(0.9973, gt=0.0, lt=1.0, description="chi-square level of a mode's ellipsoid (3 sd in 1-D)")


class TailOptions(Options):
    q: float = Field(0.01, gt=0.0, lt=0.5, description="reference quantile box [q, 1-q] per dimension")


OPTIONS: dict[str, type[Options]] = {
    "wasserstein-1d": _NoOptions, "sliced-wasserstein": SlicedOptions, "frechet": FrechetOptions,
    "mmd": MMDOptions, "prd": PRDOptions, "vendi": VendiOptions, "tv": TVOptions, "kl": KLOptions,
    "heldout-nll": _NoOptions, "variance-ratio": _NoOptions, "mode-coverage": ModeOptions,
    "tail-mass": TailOptions, "density-tv": DensityTVOptions,
}


def parse_options(name: str, options: dict) -> Any:
    """Validate a metric's options; unknown keys and bad values raise ``ConfigError``."""
    cls = OPTIONS[name]
    for key in options:
        names = {f.alias or n for n, f in cls.model_fields.items()} | set(cls.model_fields)
        if key not in names:
            valid = ", ".join(cls.model_fields) or "no options"
            raise ConfigError(f"metrics.{name}", key, f"one of {valid}" if cls.model_fields else valid)
    try:
        return cls(**options)
    except ValidationError as exc:
        errs = exc.errors()
        key = str(errs[0]["loc"][0]) if errs[0]["loc"] else "?"
        msgs = [e["msg"] for e in errs if e["loc"] and str(e["loc"][0]) == key]  # one per Union branch
        raise ConfigError(f"metrics.{name}.{key}", options.get(key), "", problem=" or ".join(msgs)) from None


# --------------------------------------------------------------------------- helpers
def _floats(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"{what} must have shape (R, n, d), got {x.shape}")
    return x


def _chunks(R: int, per_replicate: int):
    """Slices of the replicate axis holding about ``_BUDGET`` elements each (at least one replicate)."""
    step = max(1, _BUDGET // max(1, per_replicate))
    return [slice(i, min(R, i + step)) for i in range(0, R, step)]


def _need(streams, name: str):
    if streams is None:
        raise TypeError(f"metric {name!r} draws random numbers and needs streams=autophagy.rng.Streams(...)")
    return streams


def _subsample(x: np.ndarray, k: int, streams) -> np.ndarray:
    """A uniform random subset of ``k`` of the ``n`` points of each replicate: (R, n, d) -> (R, k, d)."""
    if x.shape[1] <= k:
        return x
    idx = np.argsort(streams.permutation_keys(x.shape[1]), axis=1)[:, :k]
    return np.take_along_axis(x, idx[..., None], axis=1)


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, (c, n, d) x (c, m, d) -> (c, n, m)."""
    d2 = (a * a).sum(-1)[:, :, None] + (b * b).sum(-1)[:, None, :] - 2.0 * a @ b.transpose(0, 2, 1)
    return np.maximum(d2, 0.0)


def _median_distance(x: np.ndarray, d2: Optional[np.ndarray] = None) -> np.ndarray:
    """Median pairwise distance of each replicate's points (the median heuristic): (c, n, d) -> (c,).

    ``d2``: the (c, n, n) squared distances when already computed. Falls back to 1 for a set of
    identical points.
    """
    from scipy.spatial.distance import pdist, squareform

    def pairs(r: int) -> np.ndarray:  # the n(n−1)/2 distances, without an index array of twice that size
        if d2 is None:
            return pdist(x[r])
        return np.sqrt(squareform(d2[r], checks=False))

    med = np.array([np.median(pairs(r)) for r in range(x.shape[0])])
    return np.where(med > 0, med, 1.0)


def _wpp_sorted(a: np.ndarray, b: np.ndarray, p: float) -> np.ndarray:
    """Exact W_p^p between empirical 1-D distributions from sorted values, (..., n), (..., m) -> (...).

    W_p^p = ∫_0^1 |F^{-1}(u) - G^{-1}(u)|^p du; both quantile functions are step functions,
    constant between the merged breakpoints {i/n} ∪ {j/m}, so the integral is a finite sum.
    """
    n, m = a.shape[-1], b.shape[-1]
    ua, ub = np.arange(1, n + 1) / n, np.arange(1, m + 1) / m
    u = np.unique(np.concatenate([ua, ub]))
    du = np.diff(u, prepend=0.0)
    mid = u - du / 2
    ia = np.minimum(np.searchsorted(ua, mid), n - 1)
    ib = np.minimum(np.searchsorted(ub, mid), m - 1)
    return (np.abs(a[..., ia] - b[..., ib]) ** p * du).sum(-1)


# --------------------------------------------------------------------------- distances
def wasserstein_1d(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Distance: exact W1 between the empirical marginals, averaged over the d dimensions.

    W1(P, Q) = ∫ |F_P^{-1}(u) - F_Q^{-1}(u)| du per coordinate (equal to scipy's
    ``wasserstein_distance``). Shapes: (R, n, d), (R, m, d) -> {"wasserstein-1d": (R,)}.
    """
    parse_options("wasserstein-1d", options)
    x, y = _floats(reference, "reference"), _floats(samples, "samples")
    out = np.empty(x.shape[0])
    for s in _chunks(x.shape[0], x.shape[2] * 2 * (x.shape[1] + y.shape[1])):
        xs, ys = np.sort(x[s], axis=1).transpose(0, 2, 1), np.sort(y[s], axis=1).transpose(0, 2, 1)
        out[s] = _wpp_sorted(xs, ys, 1.0).mean(axis=1)
    return {"wasserstein-1d": out}


def sliced_wasserstein(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Distance: sliced Wasserstein SW_p (Rabin et al. 2011; Bonneel et al. 2015).

    SW_p(P, Q) = (E_θ W_p^p(θ#P, θ#Q))^{1/p}, θ uniform on the sphere, estimated with
    ``projections`` random directions per replicate drawn from ``streams``; each 1-D W_p^p is
    exact (sorted projections; unequal sizes via the merged quantile grid). Matches POT's
    ``ot.sliced_wasserstein_distance`` given the same directions. Returns SW_p, not its p-th
    power. Shapes: (R, n, d), (R, m, d) -> {"sliced-wasserstein": (R,)}.
    """
    o = parse_options("sliced-wasserstein", options)
    x, y = _floats(reference, "reference"), _floats(samples, "samples")
    R, n, d = x.shape
    theta = _need(streams, "sliced-wasserstein").normal(o.projections, d)  # (R, L, d)
    theta /= np.linalg.norm(theta, axis=-1, keepdims=True)
    out = np.empty(R)
    for s in _chunks(R, o.projections * (n + 2 * y.shape[1])):
        px = np.sort(x[s] @ theta[s].transpose(0, 2, 1), axis=1).transpose(0, 2, 1)  # (c, L, n)
        py = np.sort(y[s] @ theta[s].transpose(0, 2, 1), axis=1).transpose(0, 2, 1)
        out[s] = _wpp_sorted(px, py, o.p).mean(axis=1) ** (1.0 / o.p)
    return {"sliced-wasserstein": out}


def _mean_cov(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = x.mean(axis=1)
    xc = x - mu[:, None, :]
    return mu, np.einsum("rni,rnj->rij", xc, xc) / (x.shape[1] - 1)


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ v.transpose(0, 2, 1)


def frechet(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Distance: squared Fréchet (2-Wasserstein) distance between fitted Gaussians, as in FID.

    d² = ||μ1 − μ2||² + tr(Σ1 + Σ2 − 2 (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2})  (Dowson & Landau 1982;
    Heusel et al. 2017, eq. 6), with unbiased covariances. Option ``features``: an import path
    ``"pkg.mod:fn"`` to a function mapping one set (n, d) -> (n, k) before fitting (e.g. an image
    embedding). Shapes: (R, n, d), (R, m, d) -> {"frechet": (R,)}.
    """
    o = parse_options("frechet", options)
    x, y = _floats(reference, "reference"), _floats(samples, "samples")
    if o.features:
        from .components import import_path

        fn: Callable = import_path(o.features, "metrics.frechet.features")
        x = np.stack([np.asarray(fn(xi), dtype=float) for xi in x])
        y = np.stack([np.asarray(fn(yi), dtype=float) for yi in y])
    out = np.empty(x.shape[0])
    for s in _chunks(x.shape[0], 6 * x.shape[2] ** 2):
        (m1, c1), (m2, c2) = _mean_cov(x[s]), _mean_cov(y[s])
        h = _psd_sqrt(c1)
        cross = np.sqrt(np.clip(np.linalg.eigvalsh(h @ c2 @ h), 0.0, None)).sum(-1)
        d2 = ((m1 - m2) ** 2).sum(-1) + np.trace(c1, axis1=1, axis2=2) + np.trace(c2, axis1=1, axis2=2) - 2 * cross
        out[s] = np.maximum(d2, 0.0)
    return {"frechet": out}


def mmd(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Distance: unbiased MMD² with a Gaussian (RBF) kernel (Gretton et al. 2012, Lemma 6).

    MMD²_u = Σ_{i≠j} k(x_i,x_j)/(n(n−1)) + Σ_{i≠j} k(y_i,y_j)/(m(m−1)) − 2 Σ_{ij} k(x_i,y_j)/(nm),
    k(x, y) = exp(−||x − y||² / (2σ²)); σ = ``bandwidth`` or, with "median", the median pairwise
    distance of the pooled sets of that replicate. Each set is first subsampled (via ``streams``)
    to at most ``max_points`` points, so memory is about 3·(2·max_points)²·8 bytes per replicate.
    Can be slightly negative; ≈ 0 when P = Q. Shapes: (R, n, d), (R, m, d) -> {"mmd": (R,)}.
    """
    o = parse_options("mmd", options)
    x, y = _floats(reference, "reference"), _floats(samples, "samples")
    if max(x.shape[1], y.shape[1]) > o.max_points:
        s = _need(streams, "mmd")
        x, y = _subsample(x, o.max_points, s.child("reference")), _subsample(y, o.max_points, s.child("samples"))
    n, m = x.shape[1], y.shape[1]
    out = np.empty(x.shape[0])
    for s in _chunks(x.shape[0], (n + m) ** 2):
        z = np.concatenate([x[s], y[s]], axis=1)
        k = _sqdist(z, z)
        sigma = _median_distance(z, k) if o.bandwidth == "median" else np.full(len(z), float(o.bandwidth))
        k *= -0.5 / sigma[:, None, None] ** 2
        np.exp(k, out=k)  # in place: one (c, n+m, n+m) array
        kxx, kyy, kxy = k[:, :n, :n], k[:, n:, n:], k[:, :n, n:]
        sxx = kxx.sum((1, 2)) - np.trace(kxx, axis1=1, axis2=2)
        syy = kyy.sum((1, 2)) - np.trace(kyy, axis1=1, axis2=2)
        out[s] = sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2 * kxy.sum((1, 2)) / (n * m)
    return {"mmd": out}


def _histograms(reference, samples, info, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (R, D, B) of reference and samples on a shared binning.

    Categorical tokens: D = 1, B = K = info.n_categories (every token position pooled).
    Vectors: per dimension, ``bins`` equal bins spanning the reference's [min, max] plus one
    overflow bin on each side (B = bins + 2), so edges are fixed by the held-out data (the same in
    every generation) and sample mass escaping the real range is counted, not clipped.
    """
    ref, smp = np.asarray(reference), np.asarray(samples)
    categorical = (info is not None and info.kind == "categorical") or (
        info is None and np.issubdtype(ref.dtype, np.integer))
    if categorical:
        K = int(info.n_categories) if info is not None and info.n_categories else int(max(ref.max(), smp.max())) + 1
        codes = [np.asarray(t, dtype=np.int64).reshape(t.shape[0], 1, -1) for t in (ref, smp)]
        if any(c.min() < 0 or c.max() >= K for c in codes):
            raise ValueError(f"tokens must lie in [0, {K}) (info.n_categories)")
        B = K
    else:
        ref, smp = _floats(ref, "reference"), _floats(smp, "samples")
        lo, hi = ref.min(axis=1), ref.max(axis=1)  # (R, d)
        width = np.where(hi > lo, hi - lo, 1.0)
        codes = []
        for v in (ref, smp):
            t = (v - lo[:, None, :]) / width[:, None, :] * bins
            c = np.clip(np.floor(t), -1, bins).astype(np.int64)
            c = np.where(v == hi[:, None, :], bins - 1, c) + 1  # the reference maximum is in the last bin
            codes.append(c.transpose(0, 2, 1))  # (R, d, n)
        B = bins + 2
    out = []
    for c in codes:
        R, D, N = c.shape
        flat = (np.arange(R * D).reshape(R, D, 1) * B + c).ravel()
        out.append(np.bincount(flat, minlength=R * D * B).reshape(R, D, B) / N)
    return out[0], out[1]


def tv(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Distance: total variation ½ Σ_b |p_b − q_b| between histograms (see ``_histograms``).

    Categorical: token frequencies over K categories. Vectors: per-dimension histograms
    (``bins`` over the reference range + 2 overflow bins), TV averaged over dimensions.
    Shapes: (R, n, d), (R, m, d) -> {"tv": (R,)}.

    Bias (vectors; the estimator for sample-only families such as DDPM, VAE, flow matching): it is a TV
    between *marginal histograms*, so (i) binning and marginalising can only lower it (data processing:
    TV of coarsened laws <= TV of the marginals <= the joint TV), and (ii) finite samples raise it:
    with equal laws each bin contributes E|p̂_b − q̂_b| ≈ sqrt(2/π · p_b(1 − p_b)(1/n + 1/m)), so
    E tv ≈ ½ Σ_b sqrt(2 p_b(1 − p_b)(1/n + 1/m)/π) > 0 (≈ 0.11 for 30 bins and n = m = 500, 0.057 at 2000;
    tests/test_tv.py checks this floor). Compare it across generations or budgets at fixed n, m and bins,
    or subtract the floor; use ``density-tv`` when the model has a density.
    """
    o = parse_options("tv", options)
    p, q = _histograms(reference, samples, info, o.bins)
    return {"tv": 0.5 * np.abs(p - q).sum(-1).mean(-1)}


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
    from .tv import mixture_logpdf, truth_mixture

    o = parse_options("density-tv", options)
    ref = _floats(np.asarray(reference), "reference")
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


def kl(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Distance: KL(reference ‖ samples) = Σ_b p_b log(p_b / q_b) between histograms.

    Both histograms get ``eps`` added to every bin and are renormalised (additive smoothing) so a
    bin the samples miss gives a large finite value (≈ p_b log(p_b/eps)) instead of infinity;
    this equals ``scipy.stats.entropy(p + eps, q + eps)``. Binning as in ``tv``; averaged over
    dimensions. Shapes: (R, n, d), (R, m, d) -> {"kl": (R,)}.
    """
    o = parse_options("kl", options)
    p, q = _histograms(reference, samples, info, o.bins)
    p, q = p + o.eps, q + o.eps
    p, q = p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)
    return {"kl": (p * np.log(p / q)).sum(-1).mean(-1)}


def heldout_nll(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Quality and coverage of the model itself: mean −log p_model(x) over held-out real x.

    Uses ``model.log_prob`` ((R, n, d) -> (R, n); log-mass for categorical models); lower is
    better, and it diverges when the model loses the tails real data occupy (Shumailov et al.
    2024). For a perfect N(0, 1) model in 1-D it is ½ log(2πe) ≈ 1.419.
    Shapes: (R, n, d) -> {"heldout-nll": (R,)}.
    """
    parse_options("heldout-nll", options)
    if not hasattr(model, "log_prob"):
        raise ConfigError("metrics", "heldout-nll", "a model family with log_prob (this one has none): drop heldout-nll")
    lp = np.asarray(model.log_prob(np.asarray(reference)), dtype=float)
    return {"heldout-nll": -lp.reshape(lp.shape[0], -1).mean(axis=1)}


def variance_ratio(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Diversity: tr Cov(samples) / tr Cov(reference) (unbiased covariances); 1 = same spread,
    → 0 under the variance collapse of self-consuming loops. Shapes -> {"variance-ratio": (R,)}.
    """
    parse_options("variance-ratio", options)
    x, y = _floats(reference, "reference"), _floats(samples, "samples")
    return {"variance-ratio": y.var(axis=1, ddof=1).sum(-1) / x.var(axis=1, ddof=1).sum(-1)}


def tail_mass(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Diversity (tails): fraction of samples outside the reference's per-dimension quantile box
    [q_j(q), q_j(1 − q)] (a point is outside if any coordinate is).

    For a perfect model this is 2q in 1-D and 1 − (1 − 2q)^d for independent coordinates (less
    with correlated ones); it drops towards 0 as a loop forgets the tails (Shumailov et al. 2024).
    Shapes: (R, n, d), (R, m, d) -> {"tail-mass": (R,)}.
    """
    o = parse_options("tail-mass", options)
    x, y = _floats(reference, "reference"), _floats(samples, "samples")
    lo, hi = np.quantile(x, [o.q, 1 - o.q], axis=1)  # (R, d) each
    outside = ((y < lo[:, None, :]) | (y > hi[:, None, :])).any(axis=-1)
    return {"tail-mass": outside.mean(axis=1)}


# --------------------------------------------------------------------------- sets and modes
def _tree(x: np.ndarray):
    from sklearn.neighbors import BallTree, KDTree

    return (KDTree if x.shape[1] <= 16 else BallTree)(x)


def prd(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Quality and diversity from k-NN balls: precision, recall (Kynkäänniemi et al. 2019) and
    density, coverage (Naeem et al. 2020).

    r_i = distance from real x_i to its k-th nearest real neighbour, s_j likewise for sample y_j:
    precision = share of samples inside some real ball  (quality; "are samples realistic"),
    recall    = share of real points inside some sample ball  (diversity),
    density   = Σ_j #{i: ||y_j − x_i|| ≤ r_i} / (k m)  (≈ 1 for P = Q; > 1 on crowded regions),
    coverage  = share of real points whose ball holds at least one sample.
    Shrinking the samples towards the centre (0.5·y) raises precision and lowers recall.
    Exact and sparse: k-NN radii and variable-radius ball queries on sklearn KD/Ball trees, never
    an n × m matrix, so memory stays O(n + m). Time grows with d as k-d trees do: n = m = 10,000 took
    0.12 s per replicate in d = 2 and 6.4 s in d = 10 (two shared CPU cores).
    Shapes: (R, n, d), (R, m, d) -> {"precision", "recall", "density", "coverage": (R,)}.
    """
    o = parse_options("prd", options)
    x, y = _floats(reference, "reference"), _floats(samples, "samples")
    n, m = x.shape[1], y.shape[1]
    if o.k >= min(n, m):
        raise ConfigError("metrics.prd.k", o.k, f"fewer than the set sizes ({n}, {m})")
    out = {key: np.empty(x.shape[0]) for key in ("precision", "recall", "density", "coverage")}
    for r in range(x.shape[0]):
        tx, ty = _tree(x[r]), _tree(y[r])
        rx = tx.query(x[r], k=o.k + 1)[0][:, -1]  # +1: each point is its own nearest neighbour
        ry = ty.query(y[r], k=o.k + 1)[0][:, -1]
        in_real = ty.query_radius(x[r], rx)  # per real ball: the samples inside
        in_fake = tx.query_radius(y[r], ry)  # per sample ball: the real points inside
        counts = np.array([len(i) for i in in_real])
        out["precision"][r] = np.unique(np.concatenate(in_real)).size / m
        out["recall"][r] = np.unique(np.concatenate(in_fake)).size / n
        out["density"][r] = counts.sum() / (o.k * m)
        out["coverage"][r] = np.mean(counts > 0)
    return out


def vendi(reference, samples, *, model=None, info=None, streams=None, **options) -> dict:
    """Diversity of the samples alone: the Vendi score (Friedman & Dieng 2023, eq. 2).

    VS = exp(−Σ_i λ_i log λ_i), λ the eigenvalues of K/m, K_ij = exp(−||y_i − y_j||² / (2σ²)):
    the effective number of distinct samples (k far-apart identical clusters give k). σ is
    ``bandwidth``; "reference" (default) takes the median pairwise distance of the held-out real
    set, a scale fixed by P_r, so a collapsing spread lowers the score; "median" uses the samples'
    own median distance, which is scale-invariant and hides variance collapse. More than
    ``max_points`` samples (or reference points for σ) are subsampled via ``streams``.
    Shapes: (R, m, d) -> {"vendi": (R,)}.
    """
    o = parse_options("vendi", options)
    x, y = _floats(reference, "reference"), _floats(samples, "samples")
    if y.shape[1] > o.max_points:
        y = _subsample(y, o.max_points, _need(streams, "vendi").child("samples"))
    if o.bandwidth == "reference":
        if x.shape[1] > o.max_points:
            x = _subsample(x, o.max_points, _need(streams, "vendi").child("reference"))
        sigma = _median_distance(x)
    else:
        sigma = _median_distance(y) if o.bandwidth == "median" else np.full(len(y), float(o.bandwidth))
    m = y.shape[1]
    out = np.empty(len(y))
    for s in _chunks(len(y), m * m):
        lam = np.clip(np.linalg.eigvalsh(np.exp(-_sqdist(y[s], y[s]) / (2 * sigma[s, None, None] ** 2)) / m), 0, None)
        out[s] = np.exp(-(lam * np.log(np.where(lam > 0, lam, 1.0))).sum(-1))
    return {"vendi": out}


def _components(info, name: str):
    comps = info.truth.get("components") if info is not None else None
    if comps is None:
        raise ConfigError("metrics", name, "a Gaussian-mixture source (info.truth['components']), e.g. data.source: mixture")
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

    o = parse_options("mode-coverage", options)
    w, mu, cov = _components(info, "mode-coverage")
    y = _floats(samples, "samples")
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


METRICS: dict[str, Callable[..., dict]] = {
    "wasserstein-1d": wasserstein_1d, "sliced-wasserstein": sliced_wasserstein, "frechet": frechet,
    "mmd": mmd, "prd": prd, "vendi": vendi, "tv": tv, "kl": kl, "heldout-nll": heldout_nll,
    "variance-ratio": variance_ratio, "mode-coverage": mode_coverage, "tail-mass": tail_mass,
    "density-tv": density_tv,
}

# Domain metrics live beside their domains (rewards/physics, images); one table serves them all.
from .domain_metrics import DOMAIN_METRICS, DOMAIN_OPTIONS  # noqa: E402
from .image_metrics import IMAGE_METRIC_OPTIONS, IMAGE_METRICS  # noqa: E402

METRICS.update(DOMAIN_METRICS)
METRICS.update(IMAGE_METRICS)
OPTIONS.update(DOMAIN_OPTIONS)
OPTIONS.update(IMAGE_METRIC_OPTIONS)
from .text_metrics import TEXT_METRICS, TEXT_OPTIONS  # noqa: E402
METRICS.update(TEXT_METRICS), OPTIONS.update(TEXT_OPTIONS)


def _check_names(specs) -> None:
    seen = set()
    for name, _ in specs:
        if name not in METRICS:
            raise ConfigError("metrics", name, "one of " + ", ".join(sorted(METRICS)))
        if name in seen:
            raise ConfigError("metrics", name, "each metric at most once", problem="listed twice; list each metric once")
        seen.add(name)


def check_applicable(specs, info, has_log_prob: bool) -> None:
    """Raise ``ConfigError`` before a run starts if a metric is unknown, badly configured or does
    not apply: heldout-nll without ``log_prob``, mode-coverage without mixture components, or a
    vector metric on categorical data. ``specs`` = [(name, options), ...]."""
    _check_names(specs)
    for name, options in specs:
        o = parse_options(name, dict(options or {}))
        if getattr(info, "tokens", False) != (name in TEXT_METRICS):  # token sequences get the text metrics only
            raise ConfigError("metrics", name, ("for token data one of " + ", ".join(TEXT_METRICS)) if name not in
                              TEXT_METRICS else "a token source (markov-text, text) for a text metric")
        if name in TEXT_METRICS:
            from .text_metrics import check

            check(name, info)
        if info.kind == "categorical" and name not in CATEGORICAL_METRICS:
            raise ConfigError("metrics", name, "for categorical data one of " + ", ".join(CATEGORICAL_METRICS))
        if name == "heldout-nll" and not has_log_prob:
            raise ConfigError("metrics", name, "a model family with log_prob (this one has none): drop heldout-nll")
        if name == "mode-coverage":
            _components(info, name)
        if name == "density-tv":
            from .tv import truth_mixture

            if truth_mixture(info) is None:
                raise ConfigError("metrics", name, "a source with a known density (gaussian or mixture): use tv")
            if o.method == "mc" and not has_log_prob:
                raise ConfigError("metrics.density-tv.method", "mc", "grid, or a model family with log_prob")
        if name == "frechet" and o.features:
            _probe_features(o.features, info)
        if getattr(o, "cache_dir", None):  # digit feature caches stay in the user cache or results/
            from .features import check_cache_dir

            check_cache_dir(o.cache_dir, f"metrics.{name}.cache_dir")
        if name == "reward-mean":  # a target of the wrong dimension fails here, not after generation 0
            from .rewards import build_reward

            build_reward(o, info, "metrics.reward-mean")


def _probe_features(path: str, info) -> None:
    """A ``frechet`` features function must map (n, d) to (n, k) finite floats: tried on a (3, d) probe."""
    from .components import import_path

    fn = import_path(path, "metrics.frechet.features")
    n, d = 3, max(1, int(getattr(info, "dim", 1) or 1))
    probe = np.linspace(0.0, 1.0, n * d).reshape(n, d)
    try:
        out = np.asarray(fn(probe), dtype=float)
    except Exception as exc:  # noqa: BLE001 - a user's function: any failure is a bad option
        raise ConfigError("metrics.frechet.features", path, "", problem=f"failed on a ({n}, {d}) array "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if out.ndim != 2 or out.shape[0] != n or out.shape[1] < 1:
        raise ConfigError("metrics.frechet.features", path, f"a function mapping (n, d) arrays to (n, k) features; "
                          f"on a ({n}, {d}) array it returned shape {out.shape}")


TRADEOFF_PRD_MAX_DIM = 64  # k-NN balls above this: O(n·m·d) per replicate (about 1 s at 576 pixels) and weak on raw pixels


def with_tradeoff(specs, info, curation: dict | None) -> list:
    """``specs`` plus what shows MAD's "quality kept, diversity lost" trade-off, where missing and applicable:
    ``prd`` (precision = quality, recall = diversity; data of at most ``TRADEOFF_PRD_MAX_DIM`` dimensions),
    ``variance-ratio`` (diversity), ``mode-coverage`` (mixture sources: minority-mode mass) and ``reward-mean``
    with the curation's own reward. Categorical data get ``tv`` and ``kl`` instead. Used for runs with
    curation or correction."""
    from .rewards import RewardOptions

    specs = list(specs)
    have = {name for name, _ in specs}
    if info.kind == "categorical":
        wanted = [("tv", {}), ("kl", {})]
    else:
        wanted = [("prd", {})] if info.dim <= TRADEOFF_PRD_MAX_DIM else []
        wanted.append(("variance-ratio", {}))
        if info.truth.get("components") is not None:
            wanted.append(("mode-coverage", {}))
        if curation and curation.get("method") not in ("random-k", "denoise"):
            keys = {f.alias or name for name, f in RewardOptions.model_fields.items()}
            wanted.append(("reward-mean", {k: curation[k] for k in keys if k in curation}))
    return specs + [(name, opts) for name, opts in wanted if name not in have]


def compute(specs, reference, samples, *, model=None, info=None, streams=None) -> dict[str, np.ndarray]:
    """Evaluate ``specs`` = [(name, options), ...]; returns {result key: (R,) array}.

    Each metric draws from its own sub-stream ``streams.child(name)``, so adding or removing a
    metric never changes another metric's numbers. Replicates whose samples hold NaN or inf (a
    diverged model) get NaN for every metric except heldout-nll, which does not use samples.
    """
    _check_names(specs)
    samples = np.asarray(samples)
    R = samples.shape[0]
    # A diverged replicate (NaN/inf samples) gets NaN for sample-based metrics instead of failing the
    # run (KD-trees and eigensolvers reject non-finite input); its slot is filled with zeros meanwhile.
    bad = ~np.isfinite(samples).reshape(R, -1).all(axis=1) if samples.dtype.kind == "f" else np.zeros(R, bool)
    if bad.any():
        samples = np.where(bad[:, None, None], 0.0, samples)
    out: dict[str, np.ndarray] = {}
    for name, options in specs:
        child = streams.child(name) if streams is not None else None
        values = METRICS[name](reference, samples, model=model, info=info, streams=child, **dict(options or {}))
        for key, v in values.items():
            v = np.asarray(v, dtype=float)
            if v.shape != (R,):
                raise RuntimeError(f"metric {name!r} returned {key!r} with shape {v.shape}, expected ({R},)")
            out[key] = np.where(bad, np.nan, v) if name != "heldout-nll" else v
    return out
