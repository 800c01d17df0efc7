"""The multivariate Gaussian family, fitted by maximum likelihood (or with the 1/(n−1) covariance).

This is MAD's analytic example (Alemohammad et al. 2023, §3.1) and Bertrand et al.'s (2024)
warm-up: μ̂ = x̄ and Σ̂ = S/n (``estimator: mle``) or S/(n−1) (``unbiased``), with the scatter
matrix S = Σ_i (x_i − x̄)(x_i − x̄)ᵀ. With ``covariance: diag`` only the per-coordinate
variances are kept. MAD's sampling bias λ draws from N(μ, λΣ).

Because (x̄, S) are sufficient, one full self-consuming step "sample n points from N(μ, λΣ),
refit" has an exact law that needs no samples (``GaussianModel.exact_refit``):
x̄ ~ N(μ, λΣ/n) and, independently, S ~ Wishart_d(n−1, λΣ) (Anderson 2003, Thm 3.3.2),
drawn with the Bartlett decomposition. This costs O(R d²) per step instead of O(R n d).
The same law gives every other Gaussian loop an exact path (``GaussianModel.exact_batch``): a
synthetic batch is represented by its ``Moments`` (count, shifted sums), which add up exactly as
the points would (augment, fresh, accumulate: ``autophagy.policies``). A step keeps the factor
F of Σ that it drew (lower triangular when it started from one), so no eigendecomposition is
needed; a merged training set gets one Cholesky factorisation (eigh only if that fails).

Shapes: data ``(R, n, d)``; a model holds ``mean (R, d)`` and ``cov (R, d, d)``.
"""
from __future__ import annotations

import math
from typing import Literal, Optional

import numpy as np
from pydantic import Field, model_serializer

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams

_LOG_2PI = math.log(2 * math.pi)


def moment_metrics(mean: np.ndarray, cov: np.ndarray, info: SourceInfo) -> dict[str, np.ndarray]:
    """``mean_sq_error`` (if the truth has a mean), ``trace_cov`` and ``logdet_cov`` of a model's first two moments.

    ``mean (R, d)``, ``cov (R, d, d)``; returns ``(R,)`` arrays. A singular covariance has log-det −inf.
    Shared by the kde and gmm families, whose overall moments are computed in closed form.
    """
    out: dict[str, np.ndarray] = {}
    truth_mean = info.truth.get("mean") if info.truth else None
    if truth_mean is not None:
        out["mean_sq_error"] = ((mean - np.asarray(truth_mean, dtype=float)) ** 2).sum(-1)
    if cov.shape[-1] == 1:  # 1-D: skip the batched LAPACK calls (the hot path of large replicate studies)
        var = cov[..., 0, 0]
        out["trace_cov"] = var.copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            out["logdet_cov"] = np.where(var > 0, np.log(var), -np.inf)
        return out
    out["trace_cov"] = np.trace(cov, axis1=-2, axis2=-1)
    sign, logdet = np.linalg.slogdet(cov)
    out["logdet_cov"] = np.where(sign > 0, logdet, -np.inf)
    return out


def _prefix_normal(streams: Streams, *tail: int, dtype=np.float64) -> np.ndarray:
    """Standard normals ``(R, *tail)`` drawn for replicates < R only: a block's row j gets the same numbers
    as in ``streams.normal(*tail)`` (its stream fills row by row; float64), but the last block's rows past R
    are not drawn, so the stream's state afterwards depends on R. Use only for a stream's one draw."""
    from ..rng import BLOCK

    tail = tuple(int(t) for t in tail)
    R = streams.R
    buf = np.empty((R, *tail), dtype=dtype)

    def fill(b: int, g: np.random.Generator) -> None:
        g.standard_normal(out=buf[b * BLOCK:min((b + 1) * BLOCK, R)], dtype=buf.dtype)

    streams._each_block(fill)
    return buf


def _bartlett(k: int, q: int, streams: Streams) -> np.ndarray:
    """Bartlett's lower-triangular factor ``(R, q, q)`` of Wishart(k, I_q) (k >= q): B_ii² ~ χ²_{k−i}, B_ij ~ N(0, 1)
    below the diagonal (Anderson 2003, Thm 3.3.2); one chi-square draw, then the q(q−1)/2 normals only."""
    R = streams.R
    chi2 = streams.draw(lambda g, s: g.chisquare(k - np.arange(q), s), (q,))
    B = np.zeros((R, q, q))
    flat = B.reshape(R, q * q)
    rows, cols = np.tril_indices(q, -1)
    flat[:, rows * q + cols] = streams.normal(rows.size)
    flat[:, ::q + 1] = np.sqrt(chi2)
    return B


TRMM_ABOVE = 8  # dimensions above which triangular products go to BLAS trmm (scipy's); a batched matmul below


def _trmm(X: np.ndarray, L: np.ndarray, alpha: float, side: int, overwrite: bool = False) -> np.ndarray:
    """``alpha · L @ X`` (``side`` 1) or ``alpha · X @ L`` (``side`` 0) for lower-triangular ``L (R, q, q)``: BLAS
    trmm per replicate (half a general product's flops; the same numbers to rounding) when q > ``TRMM_ABOVE``,
    else a batched matmul. A new array (``overwrite``: X's memory, when X is a C-ordered float64 array); L's
    upper triangle is not read."""
    if L.shape[-1] <= TRMM_ABOVE:
        out = L @ X if side else X @ L
        out *= alpha
        return out
    from scipy.linalg.blas import dtrmm

    own = overwrite and X.dtype == np.float64 and X.flags.c_contiguous
    out = X if own else np.array(X, dtype=float, order="C")  # overwritten in place: out[r]ᵀ is Fortran-ordered
    # (a copy that kept a transposed view's layout would make trmm write into f2py's own copy instead)
    for r in range(out.shape[0]):  # (L X)ᵀ = Xᵀ Lᵀ and (X L)ᵀ = Lᵀ Xᵀ, with L[r]ᵀ the (upper) Fortran matrix it is
        dtrmm(alpha, L[r].T, out[r].T, side=side, lower=0, overwrite_b=1)
    return out


def _lower_times(L: np.ndarray, B: np.ndarray, alpha: float = 1.0, overwrite: bool = False) -> np.ndarray:
    """``alpha · L @ B`` for lower-triangular ``L (R, d, d)`` and any ``B (R, d, m)`` (``_trmm``)."""
    return _trmm(B, L, alpha, 1, overwrite)


def _times_lower(F: np.ndarray, L: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``alpha · F @ L`` for any ``F (R, d, q)`` and lower-triangular ``L (R, q, q)`` (``_trmm``)."""
    return _trmm(F, L, alpha, 0)


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square roots ``(..., d, d)`` of PSD matrices (eigenvalues clipped at 0; works when singular).
    2 × 2: in closed form, √A = (A + s I) / t with s = √det A, t = √(tr A + 2 s) (both eigenvalues clipped at 0
    as eigh's path clips them; t = 0 only for A = 0)."""
    if cov.shape[-1] == 2:
        a, b, c = cov[..., 0, 0], 0.5 * (cov[..., 0, 1] + cov[..., 1, 0]), cov[..., 1, 1]
        half_tr = 0.5 * (a + c)
        gap = np.sqrt(0.25 * (a - c) ** 2 + b * b)
        lo, hi = np.clip(half_tr - gap, 0.0, None), np.clip(half_tr + gap, 0.0, None)  # the eigenvalues, clipped
        s = np.sqrt(lo * hi)
        t = np.sqrt(lo) + np.sqrt(hi)  # = √(tr + 2 s) of the clipped matrix
        with np.errstate(invalid="ignore", divide="ignore"):
            inv = np.where(t > 0, 1.0 / t, 0.0)
        # the clipped matrix: A + (lo − λ_lo) P_lo, whose off-diagonal and diagonal follow from A's
        shift = lo - (half_tr - gap)  # > 0 only when A had a negative eigenvalue (rounding)
        with np.errstate(invalid="ignore", divide="ignore"):
            cos2 = np.where(gap > 0, (a - c) / (2 * gap), 1.0)  # cos 2θ of the top eigenvector
            sin2 = np.where(gap > 0, 2 * b / (2 * gap), 0.0)
        a_c = a + shift * 0.5 * (1 + cos2 * -1)
        c_c = c + shift * 0.5 * (1 + cos2)
        b_c = b - shift * 0.5 * sin2
        out = np.empty(cov.shape)
        out[..., 0, 0] = (a_c + s) * inv
        out[..., 1, 1] = (c_c + s) * inv
        out[..., 0, 1] = out[..., 1, 0] = b_c * inv
        return out
    w, v = np.linalg.eigh(cov)
    return (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)


class Moments:
    """Sufficient statistics of R training sets, additive over disjoint sets: ``n`` points, a shift
    ``c (R, d)`` and the shifted sums ``s1 = Σ (x − c) (R, d)``, ``s2 = Σ (x − c)(x − c)ᵀ (R, d, d)``.

    The shift keeps the scatter ``s2 − s1 s1ᵀ / n`` free of cancellation while the pool's mean stays
    near ``c`` (a pool uses the mean of its real set). ``a + b`` is the statistics of the union.
    """

    def __init__(self, n, shift: np.ndarray, s1: np.ndarray, s2: np.ndarray, exact: bool = False,
                 basis: Optional[tuple] = None, centred: bool = False):
        self.n, self.shift, self.s1, self.s2 = n, shift, s1, s2
        self.exact = exact  # drawn by an exact path (then fit keeps a Cholesky factor; see GaussianFamily.fit)
        self.basis = basis  # statistics in the coordinates of ``GaussianFamily.coordinates`` (None: the data's own)
        self.centred = centred  # s1 is known to be zero (the shift is the set's mean): shifting skips the cross terms

    @classmethod
    def of(cls, x: np.ndarray, shift: Optional[np.ndarray] = None) -> "Moments":
        """Statistics of points ``x (R, n, d)`` about ``shift (R, d)`` (default: their own mean)."""
        x = np.asarray(x, dtype=float)
        if shift is not None:
            c = shift
        else:  # an empty set (a schedule's n = 0) has no mean: shift at 0
            c = x.mean(axis=1) if x.shape[1] else np.zeros(x.shape[::2])
        y = x - c[:, None, :]
        return cls(x.shape[1], c, y.sum(axis=1), np.swapaxes(y, -1, -2) @ y)

    @classmethod
    def from_mean_scatter(cls, n, mean: np.ndarray, scatter: np.ndarray, exact: bool = True,
                          basis: Optional[tuple] = None) -> "Moments":
        return cls(n, mean, np.zeros_like(mean), scatter, exact, basis, centred=True)

    def shifted(self, c: np.ndarray) -> "Moments":
        """The same statistics about another shift ``c (R, d)``."""
        delta = self.shift - c
        s1 = self.s1 + self.n * delta
        outer = delta[:, :, None] * delta[:, None, :]
        outer *= self.n
        if self.centred:  # s1 = 0: no cross terms
            s2 = self.s2 + outer
        else:
            cross = delta[:, :, None] * self.s1[:, None, :]
            s2 = self.s2 + cross
            s2 += np.swapaxes(cross, -1, -2)
            s2 += outer
        return Moments(self.n, c, s1, s2, self.exact, self.basis)

    def __add__(self, other: "Moments") -> "Moments":
        o = other if other.shift is self.shift else other.shifted(self.shift)
        return Moments(self.n + o.n, self.shift, self.s1 + o.s1, self.s2 + o.s2, self.exact or o.exact, self.basis)

    def mean_scatter(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x̄ (R, d), S (R, d, d))`` of the set."""
        m = self.s1 / self.n
        return self.shift + m, self.s2 - self.n * m[:, :, None] * m[:, None, :]


class GaussianModel:
    """R fitted Gaussians N(mean[r], cov[r]).

    ``mean (R, d)``, ``cov (R, d, d)`` (diagonal when ``diag``); ``estimator`` ("mle" | "unbiased")
    is remembered so that ``exact_refit`` reproduces the family's fit. Exact steps pass ``factor``
    F (R, d, q) with F Fᵀ = cov (q < d for a singular cov; ``tri``: F is lower triangular) and may
    leave ``cov`` None: it is then F Fᵀ, computed when first read.

    ``basis = (origin (R, d), U (R, d, r) or None)``: the model lives in coordinates y = Uᵀ(x − origin)
    (``GaussianFamily.coordinates``; U None: y = x − origin); ``mean``, ``cov`` and the factor are then the
    coordinates' and ``param_metrics`` maps them back (x = origin + U y). Statistics paths only.
    """

    def __init__(self, mean: np.ndarray, cov: Optional[np.ndarray], diag: bool = False, estimator: str = "mle",
                 factor: Optional[np.ndarray] = None, w2: bool = True, tri: bool = False,
                 basis: Optional[tuple] = None):
        self.mean, self._cov, self.diag, self.estimator = mean, cov, bool(diag), estimator
        self._factor: Optional[np.ndarray] = factor
        self.w2, self.tri = w2, bool(tri and factor is not None)
        self.basis = basis

    @property
    def cov(self) -> np.ndarray:
        if self._cov is None:
            self._cov = self._factor @ np.swapaxes(self._factor, -1, -2)
        return self._cov

    @property
    def factor(self) -> np.ndarray:
        """``(R, d, q)`` matrices F with F Fᵀ = cov (symmetric square roots unless an exact step kept its own;
        valid for singular cov too)."""
        if self._factor is None:
            if self.diag:
                sd = np.sqrt(np.clip(np.diagonal(self.cov, axis1=-2, axis2=-1), 0.0, None))
                self._factor = sd[..., :, None] * np.eye(sd.shape[-1])
            else:
                self._factor = _psd_sqrt(self.cov)
        return self._factor

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        """``(R, m, d)`` draws from N(μ, λΣ) (MAD's sampling bias λ = ``bias``)."""
        R, d = self.mean.shape
        if d == 1:  # the hot path of large replicate studies: scaled and shifted block by block, in cache
            sd = math.sqrt(bias) * np.sqrt(np.clip(self.cov[:, 0, 0], 0.0, None))
            return streams.normal(m, 1, scale=sd, shift=self.mean[:, 0])
        z = streams.normal(m, d if self.diag else self.factor.shape[-1])
        if self.diag:  # in place
            sd = np.sqrt(np.clip(np.diagonal(self.cov, axis1=-2, axis2=-1), 0.0, None))
            z *= math.sqrt(bias) * sd[:, None, :]
        else:
            z = z @ np.swapaxes(self.factor, -1, -2)
            z *= math.sqrt(bias)
        z += self.mean[:, None, :]
        return z

    def sample_rows(self, counts: np.ndarray, width: int, streams: Streams, bias: float = 1.0,
                    dtype=np.float64) -> np.ndarray:
        """``(R, ≥ max(counts), d)`` of ``dtype``: replicate r's first ``counts[r]`` rows are iid draws from
        N(μ, λΣ) (the rest is padding). A replicate's numbers depend on its own stream and count only, not on R
        or on the other replicates: a first chunk of ``width`` rows (a constant of the run) is drawn from
        ``streams`` for the replicates it serves (``_prefix_normal``: rows past R are not drawn), and a
        replicate with more draws the rest from its own node of the seed tree (``rng.generator``).
        float32 (``LiveSubsetPool``'s store): numpy's float32 normals (other numbers than float64's, the same
        law) and float32 products, each value within a few float32 ulps of the float64 draw's transform."""
        R, d = self.mean.shape
        counts = np.asarray(counts, dtype=np.int64)
        U = int(counts.max(initial=0))
        q = d if self.diag else self.factor.shape[-1]
        width = max(int(width), 1)
        z = _prefix_normal(streams, width, q, dtype=dtype) if U else np.zeros((R, 0, q), dtype=dtype)
        if U > width:  # replicates past the first chunk: the rest from a stream of their own (seed tree node
            from ..rng import generator, role_id  # (2, g + 1, role, replicate): independent of R and the others)

            z = np.concatenate([z, np.zeros((R, U - width, q), dtype=dtype)], axis=1)
            for i in np.nonzero(counts > width)[0]:
                gen = generator(streams.seed, 2, streams.generation + 1, role_id(streams.role), streams.start + int(i))
                gen.standard_normal(out=z[i, width:counts[i]], dtype=z.dtype)
        scale = math.sqrt(bias)
        if self.diag:
            sd = np.sqrt(np.clip(np.diagonal(self.cov, axis1=-2, axis2=-1), 0.0, None))
            z *= (scale * sd[:, None, :]).astype(dtype)
        elif self.tri and q > TRMM_ABOVE:  # triangular products: half the flops of a full matmul
            from scipy.linalg import blas

            trmm = blas.strmm if z.dtype == np.float32 else blas.dtrmm
            factor = self.factor.astype(z.dtype)
            for r in range(R):  # z[r] Fᵀ = (F z[r]ᵀ)ᵀ in place (z[r]ᵀ, F[r]ᵀ: Fortran-ordered, no copies)
                trmm(scale, factor[r].T, z[r].T, side=0, lower=0, trans_a=1, overwrite_b=1)
        else:
            z = z @ np.swapaxes(self.factor, -1, -2).astype(dtype)
            z *= dtype(scale) if dtype is not np.float64 else scale
        z += self.mean[:, None, :].astype(dtype)
        return z

    def exact_batch(self, n: int, streams: Streams, bias: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """The sufficient statistics of ``n`` fresh samples of this model (bias λ), drawn from their exact law.

        Returns ``(x̄ (R, d), G (R, d, q))`` with the scatter S = G Gᵀ: x̄ ~ N(μ, λΣ/n) and, independently,
        S ~ Wishart(n−1, λΣ) = λ F B Bᵀ Fᵀ with F Fᵀ = Σ and B the Bartlett factor (B_ii² ~ χ²_{n−1−i},
        B_ij ~ N(0, 1) below the diagonal; Anderson 2003, Thm 3.3.2); when n−1 < d the singular Wishart
        is drawn as Zᵀ Z with Z an (n−1)×d standard normal matrix (q = n − 1). ``diag``: G is diagonal with
        G_ii² = λ σ_i² χ²_{n−1}. Cost O(R d³) for the product F B, no factorisation when F is known.
        """
        R, d = self.mean.shape
        q, k = self.factor.shape[-1], n - 1  # q = d unless a singular exact step kept a thin factor
        mean = self.mean + math.sqrt(bias / n) * np.einsum("rij,rj->ri", self.factor, streams.normal(q))
        if self.diag:
            sd = np.sqrt(np.clip(np.diagonal(self.cov, axis1=-2, axis2=-1), 0.0, None))
            chi2 = streams.draw(lambda g, s: g.chisquare(k, s), (d,)) if k > 0 else np.zeros((R, d))
            return mean, (math.sqrt(bias) * sd * np.sqrt(chi2))[..., None] * np.eye(d)
        if k >= q:  # Bartlett decomposition of Wishart(k, I_q); S = λ F W Fᵀ since Σ = F I_q Fᵀ
            B = _bartlett(k, q, streams)
        else:  # rank-deficient Wishart: W = Zᵀ Z with Z (k, q); B = Zᵀ (q, k)
            B = np.swapaxes(streams.normal(k, q), -1, -2)
        if self.tri and k >= q:  # lower triangular times Bartlett's lower triangular
            return mean, _lower_times(self.factor, B, math.sqrt(bias), overwrite=True)
        if k >= q:  # any factor times Bartlett's lower triangular
            return mean, _times_lower(self.factor, B, math.sqrt(bias))
        return mean, math.sqrt(bias) * (self.factor @ B)

    def exact_refit(self, n: int, streams: Streams, bias: float = 1.0, estimator: Optional[str] = None) -> "GaussianModel":
        """The model that refitting on ``n`` fresh samples of this one (bias λ) would give, drawn from its exact law
        (``exact_batch``). Returns the family's estimate: Σ' = S/n (mle) or S/(n−1) (unbiased); its factor
        G/√denominator is kept, so the next step needs no factorisation."""
        estimator = estimator or self.estimator
        denom = _denominator(n, estimator)
        mean, root = self.exact_batch(n, streams, bias)
        tri = self.tri and root.shape[-1] == root.shape[-2]  # lower triangular times Bartlett's stays so
        return GaussianModel(mean, None, self.diag, estimator, root / math.sqrt(denom), self.w2, tri, self.basis)

    def exact_accumulate(self, n: int, pooled: int, streams: Streams, bias: float = 1.0) -> "GaussianModel":
        """``accumulate``'s next model when this one is the fit of the whole pool of ``pooled`` points: the
        fit after adding ``n`` fresh samples (bias λ), drawn from their exact law with ``exact_batch``'s
        draws, in the whitened coordinates of this model's lower Cholesky factor F.

        With T = a F Fᵀ the pool's scatter (a = the estimator's denominator for ``pooled`` points), the
        batch's mean μ + √(λ/n) F z and scatter λ F B Bᵀ Fᵀ (B: Bartlett's factor), the new pool's scatter
        about its new mean is F M Fᵀ with M = a I + λ B Bᵀ + λ (N/N') z zᵀ (N' = N + n), so the new factor is
        F chol(M) / √a' -- lower triangular with a positive diagonal, hence the Cholesky factor the Moments
        path computes from the summed statistics (equal to rounding; tests/test_exact_paths.py). No d × d
        statistics are summed or shifted, and no pool is kept. Needs a triangular factor and n − 1 ≥ d."""
        R, q = self.mean.shape
        N, N1 = int(pooled), int(pooled) + int(n)
        mean_draw = streams.normal(q)  # the draws of exact_batch, in its order
        B = _bartlett(n - 1, q, streams)
        M = _lower_times(B, np.swapaxes(B, -1, -2), bias)  # λ B Bᵀ
        M += (bias * N / N1) * (mean_draw[:, :, None] * mean_draw[:, None, :])
        M.reshape(R, q * q)[:, ::q + 1] += _denominator(N, self.estimator)
        step = np.einsum("rij,rj->ri", self.factor, mean_draw)  # F z
        mean = self.mean + (n / N1) * math.sqrt(bias / n) * step
        factor = _lower_times(self.factor, np.linalg.cholesky(M), 1.0 / math.sqrt(_denominator(N1, self.estimator)),
                              overwrite=True)
        return GaussianModel(mean, None, False, self.estimator, factor, self.w2, True, self.basis)

    def exact_moments(self, n: int, streams: Streams, bias: float = 1.0) -> Moments:
        """``Moments`` of ``n`` fresh samples of this model, drawn from their exact law (``exact_batch``)."""
        if n == 0:  # an empty batch (a schedule's zero): nothing drawn
            return Moments(0, self.mean, np.zeros_like(self.mean), np.zeros(self.mean.shape + self.mean.shape[-1:]), True,
                           self.basis, centred=True)
        mean, root = self.exact_batch(n, streams, bias)
        if self.tri and root.shape[-1] == root.shape[-2]:  # root is lower triangular: S = root rootᵀ by trmm
            scatter = _lower_times(root, np.swapaxes(root, -1, -2))
        else:
            scatter = root @ np.swapaxes(root, -1, -2)
        return Moments.from_mean_scatter(n, mean, scatter, basis=self.basis)

    def triangular(self) -> "GaussianModel":
        """The same model with a lower Cholesky factor (exact paths start from it: log-dets from its diagonal
        and no eigendecomposition); itself when a covariance is singular."""
        if self.tri or self.diag or self.mean.shape[-1] == 1:
            return self
        factor = _cholesky_or_none(self.cov)
        return self if factor is None else GaussianModel(self.mean, self.cov, False, self.estimator, factor, self.w2, True,
                                                         self.basis)

    def _data_mean(self) -> np.ndarray:
        """The mean in the data's coordinates (``_in_data_space().mean`` without mapping the factor: O(R d r))."""
        if self.basis is None:
            return self.mean
        origin, U = self.basis
        return origin + (self.mean if U is None else np.einsum("rij,rj->ri", U, self.mean))

    def _in_data_space(self) -> "GaussianModel":
        """The same model in the data's coordinates (itself without a basis): mean origin + U μ, cov U Σ Uᵀ."""
        if self.basis is None:
            return self
        origin, U = self.basis
        if U is None:
            return GaussianModel(self._data_mean(), self._cov, self.diag, self.estimator, self._factor, self.w2, self.tri)
        return GaussianModel(self._data_mean(), None, False, self.estimator, U @ self.factor, self.w2)

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        """mean_sq_error, trace_cov, logdet_cov and, for a Gaussian truth, the squared 2-Wasserstein distance
        w2_sq = ||μ−μ*||² + tr(Σ + Σ* − 2(Σ*^{1/2} Σ Σ*^{1/2})^{1/2}) (Dowson & Landau 1982); in 1-D, against a
        source with a density, the total variation ``tv`` (Fu et al. 2024's distance; see ``tv``).

        A model with a kept factor F (exact and statistics paths) and no covariance yet reads trace and log-det
        from F: O(d²) when F is triangular, −inf log-det when F is thin (rank q < d: a singular covariance),
        and never forms F Fᵀ. A model in a basis of r < d coordinates (``basis``) has a singular covariance."""
        thin = self.basis is not None and self.basis[1] is not None  # r < d coordinates: rank <= r < d
        factor = self._factor if not self.diag else None
        if factor is not None and (self.tri or self._cov is None or thin):
            with np.errstate(divide="ignore"):
                if thin or factor.shape[-1] < factor.shape[-2]:
                    logdet = np.full(self.mean.shape[0], -np.inf)
                elif self.tri:  # O(d²) from the diagonal instead of an LU
                    logdet = 2 * np.log(np.abs(np.diagonal(factor, axis1=-2, axis2=-1))).sum(-1)
                else:
                    sign, half = np.linalg.slogdet(factor)
                    logdet = np.where(sign != 0, 2 * half, -np.inf)
            out = {"trace_cov": np.einsum("rij,rij->r", factor, factor), "logdet_cov": logdet}
            truth_mean = (info.truth or {}).get("mean")
            if truth_mean is not None:
                mean = self._data_mean()
                out = {"mean_sq_error": ((mean - np.asarray(truth_mean, dtype=float)) ** 2).sum(-1), **out}
        else:
            full = self._in_data_space()
            out = moment_metrics(full.mean, full.cov, info)
            if thin:
                out["logdet_cov"] = np.full(self.mean.shape[0], -np.inf)
        truth = info.truth or {}
        if self.basis is not None and ((self.w2 and truth.get("gaussian")) or self.mean.shape[-1] == 1):
            extra = self._in_data_space().param_metrics(info)  # W2 and tv need the data-space model
            return {**out, **{k: v for k, v in extra.items() if k in ("w2_sq", "tv")}}
        if self.w2 and truth.get("gaussian") and truth.get("mean") is not None and truth.get("cov") is not None:
            mu_star, cov_star = np.asarray(truth["mean"], float), np.asarray(truth["cov"], float)
            if cov_star.size == 1:  # 1-D: (σ − σ*)²
                var = np.clip(self.cov[..., 0, 0], 0.0, None)
                bures = var + cov_star.item() - 2 * np.sqrt(var * cov_star.item())
            elif cov_star.shape == (2, 2):  # Σ_i √λ_i(M) = √(tr M + 2 √det M) for M = C*^½ C C*^½ (PSD 2 × 2)
                C = self.cov
                tr_m = np.einsum("rij,ji->r", C, cov_star)
                det_m = np.clip(np.linalg.det(C) * np.linalg.det(cov_star), 0.0, None)
                bures = (np.trace(C, axis1=-2, axis2=-1) + np.trace(cov_star)
                         - 2 * np.sqrt(np.clip(tr_m + 2 * np.sqrt(det_m), 0.0, None)))
            else:
                root = _psd_sqrt(cov_star)
                cross = np.linalg.eigvalsh(root @ self.cov @ root)
                bures = (np.trace(self.cov, axis1=-2, axis2=-1) + np.trace(cov_star)
                         - 2 * np.sqrt(np.clip(cross, 0, None)).sum(-1))
            out["w2_sq"] = ((self.mean - mu_star) ** 2).sum(-1) + np.clip(bures, 0.0, None)
        if self.mean.shape[-1] == 1:  # 1-D: exact, O(R); 2-D costs a grid per replicate: the density-tv metric
            tv = self.tv(info)
            if tv is not None:
                out["tv"] = tv
        return out

    def tv(self, info: SourceInfo) -> Optional[np.ndarray]:
        """Total variation ``(R,)`` to a source with a known density (``autophagy.tv``): exact against a 1-D
        Gaussian, grid quadrature against a mixture or in 2-D; None in higher dimension or without a density."""
        from ..tv import mixture_tv

        return mixture_tv(np.ones((self.mean.shape[0], 1)), self.mean[:, None], self.cov[:, None], info)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """Gaussian log-density of ``x (R, n, d)`` under each replicate's model: ``(R, n)`` (−inf off a singular support)."""
        d = self.mean.shape[-1]
        w, v = np.linalg.eigh(self.cov)
        proj = (np.asarray(x, float) - self.mean[:, None, :]) @ v  # (R, n, d) in the eigenbasis
        with np.errstate(divide="ignore", invalid="ignore"):
            maha = (proj ** 2 / w[:, None, :]).sum(-1)
            logdet = np.log(w).sum(-1)
        out = -0.5 * (maha + logdet[:, None] + d * _LOG_2PI)
        return np.where(np.isnan(out), -np.inf, out)


def _scatter_1d(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """S = Σ (x_i − x̄)² per row of ``x (R, n)``, as Σ x_i² − n x̄² (one pass, no temporary).

    That form loses about log10(x̄²/(S/n)) digits to cancellation, so rows with x̄² > 10⁶ S/n (where
    fewer than ~9 correct digits would remain) are recomputed from the centred values.
    """
    n = x.shape[1]
    S = np.einsum("rn,rn->r", x, x) - n * mean * mean
    risky = ~(S > 1e-6 * n * mean * mean)  # also catches S <= 0 and NaN
    if risky.any():
        c = x[risky] - mean[risky, None]
        S[risky] = np.einsum("rn,rn->r", c, c)
    return S


def _denominator(n: int, estimator: str) -> int:
    if estimator == "unbiased":
        if n < 2:
            raise ConfigError("model.estimator", estimator, "mle when a training set has a single point (n − 1 = 0)")
        return n - 1
    return n


class GaussianFamily:
    """The ``gaussian`` family: closed-form fit of R Gaussians to ``(R, n, d)`` data."""

    batched = True

    class Options(Options):
        estimator: Literal["mle", "unbiased"] = Field(
            "mle", description="covariance estimator: mle divides the scatter by n, unbiased by n − 1")
        covariance: Literal["full", "diag"] = Field("full", description="full covariance or per-coordinate variances")
        w2: bool = Field(True, description="record param.w2_sq (an eigendecomposition per replicate and generation, "
                                           "O(d³): turn off for large-d grids that do not need it)")

        @model_serializer(mode="wrap")
        def _drop_default_w2(self, handler):
            """w2 at its default is left out of the resolved options, so adding it changed no run id."""
            out = handler(self)
            if out.get("w2") is True:
                out.pop("w2")
            return out

    def __init__(self, options: "GaussianFamily.Options", info: SourceInfo):
        self.options, self.info = options, info

    def check_train_size(self, n: int) -> None:
        """The unbiased estimator divides by n − 1 (checked when a run is built)."""
        _denominator(n, self.options.estimator)

    sufficient_statistics = True  # fit() also takes Moments: pools may keep running statistics

    @property
    def uses_scipy_blas(self) -> bool:
        """Whether fits and samples call scipy's BLAS (trmm, above ``TRMM_ABOVE`` dimensions): the loop then
        loads it before limiting BLAS threads; below, not loading it saves 0.35 s of imports per worker."""
        return self.info.dim is None or int(self.info.dim) > TRMM_ABOVE

    def statistics(self, x: np.ndarray, shift: Optional[np.ndarray] = None) -> Moments:
        """The ``Moments`` of points ``x (R, n, d)`` (what ``fit`` needs of them)."""
        return Moments.of(x, shift)

    def coordinates(self, x: np.ndarray, hull: bool) -> tuple[np.ndarray, tuple]:
        """Points ``x (R, n, d)`` in the coordinates statistics paths run in, and their ``basis`` (``GaussianModel``).

        Always shifted by the set's mean (the sums then stay well conditioned). ``hull`` and n ≤ d (and a
        full covariance): also projected onto an orthonormal basis U (R, d, n − 1) of the set's affine hull, y =
        Uᵀ(x − x̄). Every later fit and sample of a loop that only refits on its own samples and this set lies in
        that hull (a Gaussian fit is affine equivariant), so such a chain runs exactly in r = n − 1 dimensions:
        O(r³) a step instead of an eigendecomposition of a singular d × d covariance."""
        x = np.asarray(x, dtype=float)
        origin = x.mean(axis=1)
        c = x - origin[:, None, :]
        R, n, d = x.shape
        if not (hull and 1 <= n - 1 < d and self.options.covariance == "full"):
            return c, (origin, None)
        U, _ = np.linalg.qr(np.swapaxes(c[:, :n - 1], -1, -2))  # (R, d, n − 1): the centred rows span the hull
        return c @ U, (origin, U)

    def chain_start(self, real: np.ndarray, hull: bool, points: bool = False):
        """Where a statistics path starts: ``(real set, generation-0 model)`` in ``coordinates(real, hull)``;
        the real set as points there (``points``: accumulate-subsample's pool) or as exact ``Moments``."""
        y, basis = self.coordinates(real, hull)
        stats = self.chain_statistics(y, basis)
        return (y if points else stats), self.fit(stats, None)

    @staticmethod
    def chain_statistics(y: np.ndarray, basis: Optional[tuple]) -> Moments:
        """Exact-path ``Moments`` of points ``y (R, n, r)`` in ``basis``'s coordinates."""
        stats = Moments.of(y, np.zeros(y.shape[::2]))
        stats.exact, stats.basis = True, basis
        return stats

    @staticmethod
    def summed(n: int, s1: np.ndarray, s2: np.ndarray, basis: Optional[tuple]) -> Moments:
        """Exact-path ``Moments`` of a training set from its sums ``s1 = Σ y``, ``s2 = Σ y yᵀ`` (about 0 in
        ``basis``'s coordinates)."""
        return Moments(n, np.zeros_like(s1), s1, s2, True, basis)

    def fit(self, data, streams: Streams, init=None) -> GaussianModel:
        """μ̂ = x̄, Σ̂ = S/n or S/(n−1) per replicate (vectorised; ``streams`` and ``init`` are unused).
        ``data``: points ``(R, n, d)`` or their ``Moments``."""
        diag, est, w2 = self.options.covariance == "diag", self.options.estimator, self.options.w2
        if isinstance(data, Moments):
            denom = _denominator(data.n, est)
            mean, scatter = data.mean_scatter()
            if diag:
                scatter = np.diagonal(scatter, axis1=-2, axis2=-1)[..., None] * np.eye(mean.shape[-1])
            cov = scatter / denom
            # exact paths never sample the model, so a Cholesky factor (fast) is as good as any; on the
            # sample path the factor stays the symmetric root, so its draws are the points-fit's draws
            factor = _cholesky_or_none(cov) if data.exact and not diag else None
            return GaussianModel(mean, cov, diag, est, factor, w2, tri=factor is not None and mean.shape[-1] > 1,
                                 basis=data.basis)
        x = np.asarray(data, dtype=float)
        R, n, d = x.shape
        denom = _denominator(n, est)
        mean = x.mean(axis=1)
        if d == 1:  # the hot path of large replicate studies: two passes, no centred copy
            return GaussianModel(mean, _scatter_1d(x[..., 0], mean[:, 0])[:, None, None] / denom, diag, est, w2=w2)
        c = x - mean[:, None, :]
        if diag:
            cov = ((c ** 2).sum(axis=1) / denom)[..., None] * np.eye(d)
        else:
            cov = (np.swapaxes(c, -1, -2) @ c) / denom
        return GaussianModel(mean, cov, diag, est, w2=w2)


def _cholesky_or_none(cov: np.ndarray) -> Optional[np.ndarray]:
    """Lower Cholesky factors ``(R, d, d)``, or None when some covariance is singular (the model then
    falls back to symmetric square roots by eigendecomposition)."""
    if cov.shape[-1] == 1:
        return np.sqrt(np.clip(cov, 0.0, None))
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
