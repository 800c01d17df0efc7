"""Self-correction operators: γ = 0 is the identity, counts and determinism, the π_γ mixing
rate, the 1/(1+γ) contraction of the geometric operators, and one-line errors."""
import numpy as np
import pytest

from autophagy import correction
from autophagy.errors import ConfigError
from autophagy.protocols import SourceInfo
from autophagy.rng import Streams


class Corners:
    """A toy source: 4 well-separated clusters (±5, ±5) with sd 0.1; labelled by corner."""

    centres = np.array([[5.0, 5.0], [5.0, -5.0], [-5.0, 5.0], [-5.0, -5.0]])
    info = SourceInfo(dim=2, truth={"mean": np.zeros(2)})

    def sample_labeled(self, n, streams):
        lab = streams.child("lab").integers(4, n)
        return self.centres[lab] + 0.1 * streams.child("z").normal(n, 2), lab

    def sample(self, n, streams):
        return self.sample_labeled(n, streams)[0]


class Unlabelled(Corners):
    sample_labeled = None


class Constant:
    """Every real point equals 100 (makes replaced samples recognisable)."""

    info = SourceInfo(dim=2)

    def sample(self, n, streams):
        return np.full((streams.R, n, 2), 100.0)


def synth(R=4, m=30, seed=0):
    return 3 * Streams(seed, R, 1, "synth").normal(m, 2)


def apply(cfg, x, source=Corners(), seed=5):
    return correction.build(cfg, source, None)(x, streams=Streams(seed, x.shape[0], 1, "correct"))


ALL = [{"method": "reference-mix"}, {"method": "reference-mix", "reference": "fitted", "n_reference": 50},
       {"method": "nearest-prototype", "k": 4, "n_reference": 100}, {"method": "knn-pull", "n_reference": 50},
       {"method": "project", "projector": f"{__name__}:halve"},
       {"method": "knn-pull", "n_reference": 50, "mode": "mix"}]


def halve(x):
    return 0.5 * x


def wrong_shape(x):
    return x[:, :1]


@pytest.mark.parametrize("cfg", ALL, ids=lambda c: c["method"] + ("-" + c.get("reference", c.get("mode", ""))))
def test_contracts(cfg):
    x = synth()
    assert apply({**cfg, "gamma": 0.0}, x) is x  # γ = 0: the batch itself, bit-identical
    out = apply({**cfg, "gamma": 1.5}, x)
    assert out.shape == x.shape and not np.array_equal(out, x)
    np.testing.assert_array_equal(out, apply({**cfg, "gamma": 1.5}, x))  # same seed-tree node, same numbers
    np.testing.assert_array_equal(out[:2], apply({**cfg, "gamma": 1.5}, x[:2]))  # independent of R
    if cfg["method"] == "reference-mix" or cfg.get("mode") == "mix":  # random operators follow the seed
        assert not np.array_equal(out, apply({**cfg, "gamma": 1.5}, x, seed=6))


@pytest.mark.parametrize("gamma", [0.5, 3.0])
def test_reference_mix_replaces_a_share_gamma_over_one_plus_gamma(gamma):
    R, m = 400, 50
    x = synth(R, m)
    out = apply({"method": "reference-mix", "gamma": gamma}, x, Constant())
    replaced = (out == 100.0).all(-1)
    assert np.array_equal(out[~replaced], x[~replaced])
    t = gamma / (1 + gamma)
    assert abs(replaced.mean() - t) < 4 * np.sqrt(t * (1 - t) / (R * m))


def test_reference_mix_full_strength_and_fitted_reference():
    x = synth(200, 40)
    np.testing.assert_array_equal(apply({"method": "reference-mix", "strength": "full"}, x, Constant()), 100.0)
    np.testing.assert_array_equal(apply({"method": "reference-mix", "gamma": float("inf")}, x, Constant()), 100.0)
    # fitted: a Gaussian with the real moments (corners: mean 0, variance 25 + 0.01 per axis)
    out = apply({"method": "reference-mix", "reference": "fitted", "n_reference": 500, "strength": "full"}, x)
    assert abs(out.mean()) < 4 * 5 / np.sqrt(out.size)
    assert abs(out.var() - 25.01) < 0.1 * 25


def test_nearest_prototype_finds_the_cluster_centres():
    x = synth(3, 40)
    out = apply({"method": "nearest-prototype", "k": 4, "n_reference": 200, "strength": "full"}, x)
    d = np.sqrt(((out[:, :, None] - Corners.centres) ** 2).sum(-1)).min(-1)
    assert d.max() < 0.05
    nearest = Corners.centres[((x[:, :, None] - Corners.centres) ** 2).sum(-1).argmin(-1)]
    clear = (np.abs(x) > 0.2).all(-1)  # points near a decision boundary may go either way
    np.testing.assert_allclose(out[clear], nearest[clear], atol=0.05)
    per_class = apply({"method": "nearest-prototype", "k": 1, "n_reference": 200, "per_class": True, "strength": "full"}, x)
    np.testing.assert_allclose(per_class[clear], nearest[clear], atol=0.05)


@pytest.mark.parametrize("gamma", [0.25, 1.0, 4.0])
def test_knn_pull_contracts_distance_by_one_over_one_plus_gamma(gamma):
    x = synth(3, 25)
    full = apply({"method": "knn-pull", "n_reference": 40, "strength": "full"}, x)
    part = apply({"method": "knn-pull", "n_reference": 40, "gamma": gamma}, x)
    np.testing.assert_allclose(np.linalg.norm(part - full, axis=-1), np.linalg.norm(x - full, axis=-1) / (1 + gamma))


def test_mix_mode_projects_a_share_of_samples():
    R, m, gamma = 300, 40, 1.0
    x = synth(R, m)
    out = apply({"method": "project", "projector": f"{__name__}:halve", "gamma": gamma, "mode": "mix"}, x)
    moved = ~np.isclose(out, x).all(-1)
    np.testing.assert_allclose(out[moved], 0.5 * x[moved])
    assert abs(moved.mean() - 0.5) < 4 * np.sqrt(0.25 / (R * m))


def test_grid_projector_restores_a_clean_square():
    from autophagy.data.images import BinomialGridSource

    src = BinomialGridSource()
    clean = src.sample(20, Streams(0, 2, -1, "data"))
    noisy = np.clip(clean + 0.3 * Streams(0, 2, 1, "noise").uniform(20, clean.shape[-1]), 0, 1)
    out = correction.build({"method": "grid-projector", "strength": "full"}, src, None)(noisy, streams=Streams(0, 2, 1, "c"))
    np.testing.assert_array_equal(out, clean)
    half = correction.build({"method": "grid-projector", "gamma": 1.0}, src, None)(noisy, streams=Streams(0, 2, 1, "c"))
    np.testing.assert_allclose(half, (noisy + clean) / 2)
    same = correction.build({"method": "grid-projector", "gamma": 0.0}, src, None)(noisy, streams=Streams(0, 2, 1, "c"))
    assert same is noisy  # γ = 0: the identity, nothing computed


@pytest.mark.parametrize("cfg, field", [
    ({"method": "reference-mix", "gamma": -0.5}, "correction.gamma"),
    ({"method": "reference-mix"}, "correction.gamma"),
    ({"method": "knn-pull", "gamma": "lots"}, "correction.gamma"),
    ({"method": "nearest-prototype", "gamma": 1, "k": 50, "n_reference": 20}, "correction.k"),
    ({"method": "nearest-prototype", "gamma": 1, "k": 0}, "correction.k"),
    ({"method": "reference-mix", "gamma": 1, "reference": "model"}, "correction.reference"),
    ({"method": "project", "gamma": 1, "projector": "no.such.module:fn"}, "correction.projector"),
    ({"method": "project", "gamma": 1, "projector": f"{__name__}:missing"}, "correction.projector"),
    ({"method": "project", "gamma": 1}, "correction.projector"),
    ({"method": "physics", "gamma": 1}, "correction.method"),
    ({"method": "grid-projector", "gamma": 1}, "correction.method"),
    ({"method": "magic", "gamma": 1}, "correction.method"),
    ({"method": "knn-pull", "gamma": 1, "mode": "blend"}, "correction.mode"),
    ({"method": "knn-pull", "gamma": 1, "strenght": "full"}, "correction.strenght"),
    ({"method": "knn-pull", "gamma": 0.5, "strength": "full"}, "correction.strength"),
])
def test_bad_parameters_name_the_field(cfg, field):
    with pytest.raises(ConfigError) as err:
        correction.build(cfg, Corners(), None)
    assert str(err.value).startswith(field) and "\n" not in str(err.value)


def test_per_class_needs_labels_and_projector_shape_is_checked():
    with pytest.raises(ConfigError, match="^correction.per_class"):
        correction.build({"method": "nearest-prototype", "gamma": 1, "per_class": True}, Unlabelled(), None)
    with pytest.raises(ConfigError, match=r"^correction.projector = .*returned shape \(4, 1, 2\)"):
        apply({"method": "project", "projector": f"{__name__}:wrong_shape", "gamma": 1.0}, synth())


# ------------------------------------------------------------------ histogram-mix: the law of Gillman et al.'s sampler

def _gillman_reference(corr, synth, streams):
    """Their sampler as the toy script runs it (this module's HistogramMix until issue 15): candidates from
    q = N(μ*, s Σ*), accepted when u < f/(M q); h looked up by int() truncation. Law: min(f, M q)/Z."""
    import math

    x = np.asarray(synth, dtype=float)
    R, m, d = x.shape
    b, t, s = corr.opts.bins, corr.t, corr.s
    lo, hi = x.min(axis=1), x.max(axis=1)
    flat = hi == lo
    lo, hi = np.where(flat, lo - 0.5, lo), np.where(flat, hi + 0.5, hi)
    width = (hi - lo) / b
    cell = np.repeat((np.arange(R) * b ** d)[:, None], m, axis=1)
    for k in range(d):
        idx = np.clip(np.floor((x[..., k] - lo[:, k, None]) / width[:, k, None]), 0, b - 1).astype(np.int64)
        cell += idx * b ** (d - 1 - k)
    dens = (np.bincount(cell.ravel(), minlength=R * b ** d).reshape(R, b ** d) / (m * width.prod(-1))[:, None]).ravel()
    base = (np.arange(R) * b ** d)[:, None]
    out, have, rows = np.empty_like(x), np.zeros(R, dtype=np.int64), np.arange(R)
    low = (1.0 - t) * 0.15 + t * math.exp(-corr.log_M)
    chunk = int(1.2 * m / low + 4.0 * math.sqrt(m / low) + 8)
    log_mq0 = corr.log_M + corr.log_norm - 0.5 * d * math.log(s)
    root = math.sqrt(s) * corr.root.T
    proposal, accept = streams.child("proposal"), streams.child("accept")
    while rows.size:
        z = proposal.normal(chunk, d)[rows]
        u = accept.uniform(chunk)[rows]
        cand = z @ root + corr.mu
        zz = np.einsum("rcd,rcd->rc", z, z)
        inside = np.ones(u.shape, dtype=bool)
        at = np.broadcast_to(base[rows], u.shape).copy()
        for k in range(d):
            rel = np.trunc((cand[..., k] - lo[rows, k, None]) * (1.0 / width[rows, k, None]))
            inside &= (rel >= 0) & (rel < b)
            at += np.clip(rel, 0, b - 1).astype(np.int64) * b ** (d - 1 - k)
        ratio = np.exp(0.5 * zz - log_mq0) * dens[at] * inside
        if t:
            ratio = (1 - t) * ratio + t * np.exp(-0.5 * (s - 1) * zz)
        ok = ratio > u
        rank = np.cumsum(ok, axis=1) + have[rows, None]
        i, j = np.nonzero(ok & (rank <= m))
        out[rows[i], rank[i, j] - 1] = cand[i, j]
        have[rows] = np.minimum(rank[:, -1], m)
        rows = rows[have[rows] < m]
    return out


def _gaussian_source(dim=2, **truth):
    import autophagy
    from autophagy.config import load_config

    return autophagy.build(load_config({"data": {"source": "gaussian", "dim": dim, **truth}})[0]).source


def _cells(y, lo, w, b):
    """Each point's cell as their look-up sees it (flat index, row-major), or b^d for 'no cell' (h = 0)."""
    rel = np.trunc((y - lo) / w)
    inside = ((rel >= 0) & (rel < b)).all(-1)
    idx = np.clip(rel, 0, b - 1).astype(int)
    flat = idx[..., 0] * b + idx[..., 1]
    return np.where(inside, flat, b * b)


def _law_by_quadrature(corr, batch, sub=64):
    """P(cell) under min(f, M q)/Z for one 2-D batch (m, 2): each cell's box as the look-up sees it (the first bin
    of an axis reaching one width below lo), midpoint rule on sub × sub points; the rest (h = 0) has t·p*'s mass."""
    b, t, s = corr.opts.bins, corr.t, corr.s
    lo, hi = batch.min(0), batch.max(0)
    w = (hi - lo) / b
    counts = np.histogramdd(batch, bins=b, range=list(zip(lo, hi)))[0]
    h = counts / (batch.shape[0] * w.prod())
    norm = np.exp(corr.log_norm)
    mass, target_in = np.zeros((b, b)), 0.0
    grid = (np.arange(sub) + 0.5) / sub
    for i in range(b):
        for j in range(b):
            box = [(lo[k] - w[k], 2 * w[k]) if c == 0 else (lo[k] + c * w[k], w[k]) for k, c in enumerate((i, j))]
            px, py = np.meshgrid(box[0][0] + box[0][1] * grid, box[1][0] + box[1][1] * grid, indexing="ij")
            yy = px ** 2 + py ** 2  # μ* = 0, Σ* = I
            p = norm * np.exp(-0.5 * yy)
            f = (1 - t) * h[i, j] + t * p
            cell_area = box[0][1] * box[1][1] / sub ** 2
            mass[i, j] = np.minimum(f, norm * np.exp(-yy / (2 * s))).sum() * cell_area
            target_in += p.sum() * cell_area
    probs = np.append(mass.ravel(), t * (1 - target_in))
    return probs / probs.sum(), lo, w


@pytest.mark.parametrize("gamma", [0.0, 0.1, 1.0, 5.0])  # no target; a few target draws (looked up alone); many
def test_histogram_mix_draws_min_f_mq_over_z_as_their_sampler_does(gamma):
    """Both samplers against the law min(f, M q)/Z computed by quadrature: χ² of the accepted points' cells
    (boxes as their truncating look-up sees them, so the strips below lo are tested) over 60,000 points of
    one batch (replicated 2,400 times: each replicate's 25 points are i.i.d. given the batch)."""
    from scipy.stats import chi2

    corr = correction.build({"method": "histogram-mix", "gamma": gamma}, _gaussian_source())
    batch = 1.2 * np.random.default_rng(4).standard_normal((25, 2)) + 0.3
    probs, lo, w = _law_by_quadrature(corr, batch)
    x = np.broadcast_to(batch, (2400, 25, 2)).copy()
    for draw in (corr(x, streams=Streams(2, 2400, 1, "correct")), _gillman_reference(corr, x, Streams(3, 2400, 1, "correct"))):
        got = np.bincount(_cells(draw.reshape(-1, 2), lo, w, 10).ravel(), minlength=101)
        expect = probs * got.sum()
        keep = expect >= 5
        assert got[~keep].sum() < 50 and (got[expect == 0] == 0).all()  # nothing where the law has no mass
        obs, exp = got[keep], expect[keep]
        if expect[~keep].sum() > 0:  # the rare cells pooled
            obs, exp = np.append(obs, got[~keep].sum()), np.append(exp, expect[~keep].sum())
        stat = ((obs - exp) ** 2 / exp).sum()
        assert chi2.sf(stat, obs.size - 1) > 1e-4, (stat, obs.size - 1)


@pytest.mark.parametrize("gamma", [0.0, 0.1, 1.0, 5.0])
def test_histogram_mix_matches_their_sampler_in_means_and_covariances(gamma):
    """Corrected batches of 3,000 different input batches: per replicate the mean and covariance of the 25
    corrected points, ours minus theirs (independent draws of the same law given the batch), average 0 within
    4.5 standard errors."""
    corr = correction.build({"method": "histogram-mix", "gamma": gamma}, _gaussian_source())
    rng = np.random.default_rng(11)
    R = 3000
    x = rng.standard_normal((R, 25, 2)) * rng.uniform(0.6, 1.6, (R, 1, 2)) + rng.normal(0, 0.3, (R, 1, 2))
    ours, theirs = corr(x, streams=Streams(5, R, 1, "correct")), _gillman_reference(corr, x, Streams(6, R, 1, "correct"))

    def stats(y):
        c = y - y.mean(1, keepdims=True)
        cov = np.einsum("rmi,rmj->rij", c, c) / 24
        return np.column_stack([y.mean(1), cov[:, 0, 0], cov[:, 1, 1], cov[:, 0, 1]])

    diff = stats(ours) - stats(theirs)
    se = diff.std(0, ddof=1) / np.sqrt(R)
    assert (np.abs(diff.mean(0)) < 4.5 * se).all(), (diff.mean(0), se)


def test_histogram_mix_replicates_ignore_the_others_and_repeat():
    """A replicate's corrected batch depends on its own batch and streams only: the first 64 replicates (one
    seed-tree block) are the same run alone or among 150, and the same seed gives the same numbers."""
    corr = correction.build({"method": "histogram-mix", "gamma": 0.5}, _gaussian_source())
    x = np.random.default_rng(1).standard_normal((150, 25, 2))
    full = corr(x, streams=Streams(9, 150, 3, "correct"))
    np.testing.assert_array_equal(corr(x[:64], streams=Streams(9, 64, 3, "correct")), full[:64])
    np.testing.assert_array_equal(corr(x, streams=Streams(9, 150, 3, "correct")), full)
    assert full.shape == x.shape and np.isfinite(full).all()


def test_histogram_mix_needs_a_gaussian_truth():
    with pytest.raises(ConfigError, match="correction.method"):
        correction.build({"method": "histogram-mix", "gamma": 1.0}, Corners())


@pytest.mark.parametrize("dim", [1, 3])
def test_histogram_mix_at_full_strength_draws_a_rotated_target_in_odd_dimensions(dim):
    """t = 1: the accepted points are p* = N(μ*, Σ*) exactly (Box–Muller from the offset uniforms, the extra
    uniform completing the last pair when d is odd; μ* + L* z; rejection against M q): mean and covariance within
    4.5 standard errors, and the whitened radius² χ²_d by a Kolmogorov–Smirnov test."""
    from scipy.stats import chi2, kstest

    cov = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])[:dim, :dim]
    mean = [1.0, -2.0, 0.5][:dim]
    corr = correction.build({"method": "histogram-mix", "strength": "full", "proposal_scale": 2.5},
                            _gaussian_source(dim, mean=mean, cov=cov.tolist()))
    x = np.random.default_rng(2).normal(4.0, 0.1, (600, 25, dim))  # far from the target: ignored at t = 1
    y = corr(x, streams=Streams(4, 600, 1, "correct")).reshape(-1, dim)
    n = y.shape[0]
    se = np.sqrt(np.diag(cov) / n)
    assert (np.abs(y.mean(0) - mean) < 4.5 * se).all()
    c = np.cov(y.T).reshape(dim, dim)
    se_cov = np.sqrt((cov ** 2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert (np.abs(c - cov) < 4.5 * se_cov).all(), (c, cov)
    w = np.linalg.solve(np.linalg.cholesky(cov), (y - mean).T)
    assert kstest((w ** 2).sum(0), chi2(dim).cdf).pvalue > 1e-4


def test_histogram_mix_leaves_the_batch_alone():
    """The batch is read, never written (a 1-D batch's axis-major view is the batch itself)."""
    corr = correction.build({"method": "histogram-mix", "gamma": 0.3}, _gaussian_source(1))
    x = np.random.default_rng(6).standard_normal((100, 25, 1))
    before = x.copy()
    y = corr(x, streams=Streams(0, 100, 1, "correct"))
    np.testing.assert_array_equal(x, before)
    assert y.shape == x.shape and np.isfinite(y).all()


def test_histogram_mix_short_replicates_continue_their_streams_in_the_same_law():
    """3 wide bins of a spread batch: most of its mass is clipped to M q, so acceptance is low and replicates need
    several chunks of candidates. The law is still min(f, M q)/Z (χ² against quadrature, as above), and the first
    64 replicates are the same alone or among 150."""
    from scipy.stats import chi2

    corr = correction.build({"method": "histogram-mix", "gamma": 0.0, "bins": 3}, _gaussian_source())
    batch = 3.0 * np.random.default_rng(4).standard_normal((25, 2))
    probs, lo, w = _law_by_quadrature(corr, batch)
    x = np.broadcast_to(batch, (2400, 25, 2)).copy()
    draw = corr(x, streams=Streams(2, 2400, 1, "correct"))
    got = np.bincount(_cells(draw.reshape(-1, 2), lo, w, 3).ravel(), minlength=10)
    expect = probs * got.sum()
    assert (got[expect == 0] == 0).all() and (expect > 50).sum() >= 5
    keep = expect > 0
    stat = ((got[keep] - expect[keep]) ** 2 / expect[keep]).sum()
    assert chi2.sf(stat, keep.sum() - 1) > 1e-4, (stat, keep.sum() - 1)
    full = corr(x[:150], streams=Streams(9, 150, 3, "correct"))
    np.testing.assert_array_equal(corr(x[:64], streams=Streams(9, 64, 3, "correct")), full[:64])
