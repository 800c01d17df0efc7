"""MAD's effective sample size for the fresh data loop (Alemohammad et al. 2023, §5), in closed form.

MAD compare the limit of the fresh data loop, lim_t E[dist(G^t, P_r)] = WD(n_r, n_s, λ), with a
model trained once on n_e real points and call n_e the *effective sample size*; synthetic data
help when n_e ≥ n_r, and for λ < 1 there is a largest admissible n_s. MAD estimate the distance
by Monte Carlo (a Wasserstein distance). Here (derived here) the distance is chosen so that its
expectation is exact: the Fisher–Rao quadratic form of a 1-D Gaussian fit,

    D(μ, σ²) = (μ − μ*)²/σ*² + (σ² − σ*²)²/(2σ*⁴)   (= 2·KL to second order),

which penalises both the random walk of the mean and the collapse of the variance. A real-only
fit on n points has E D = 1/n + (2n − 1)/(2n²) (mle) or 1/n + 1/(n − 1) (unbiased). Numbers
therefore differ from MAD's figure; the phenomenon (n_e > n_r for little synthetic data, a
threshold on n_s when λ < 1) is the same.

The loop is location–scale equivariant, so take μ* = 0, σ* = 1. The state (e, v) = (μ − μ*, σ²)
needs the moments m = (E e², E v, E e⁴, E e²v, E v²); one fresh step maps m to an exact affine
function of m (derived here by expanding e' and v' as polynomials in Gaussian and χ² noise and
taking expectations, ``_step_matrix``). The recursion also applies to each coordinate of a
``diag`` Gaussian on a source with diagonal covariance, where D adds up over coordinates.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from .gaussian import c_factor

# variables of the one-step polynomial: e, w (= σ_{g−1}), z1, X1, z2, X2
_E, _W, _Z1, _X1, _Z2, _X2 = range(6)
_BASIS = [(2, 0), (0, 1), (4, 0), (2, 1), (0, 2)]  # monomials e^a v^b tracked (besides the constant 1)


def _poly(terms):
    out = defaultdict(lambda: 0.0)
    for exps, coef in terms:
        out[tuple(exps)] = out[tuple(exps)] + coef
    return dict(out)


def _var(i, coef=1.0):
    e = [0] * 6
    e[i] = 1
    return {tuple(e): coef}


def _add(*ps):
    out = defaultdict(lambda: 0.0)
    for p in ps:
        for k, v in p.items():
            out[k] = out[k] + v
    return dict(out)


def _mul(p, q):
    out = defaultdict(lambda: 0.0)
    for k1, v1 in p.items():
        for k2, v2 in q.items():
            out[tuple(a + b for a, b in zip(k1, k2))] = out[tuple(a + b for a, b in zip(k1, k2))] + v1 * v2
    return dict(out)


def _scale(p, s):
    return {k: v * s for k, v in p.items()}


def _normal_moment(k: int) -> float:
    return 0.0 if k % 2 else float(np.prod(np.arange(k - 1, 0, -2))) if k else 1.0


def _chi2_moment(k: int, dof):
    out = 1.0
    for i in range(k):
        out = out * (dof + 2 * i)
    return out


def _expect(p, dof_r, dof_s):
    """E over (z1, X1, z2, X2): a dict {(e power, w power): coefficient}."""
    out = defaultdict(lambda: 0.0)
    for k, v in p.items():
        f = _normal_moment(k[_Z1]) * _normal_moment(k[_Z2])
        if not np.any(f):
            continue
        out[(k[_E], k[_W])] = out[(k[_E], k[_W])] + v * f * _chi2_moment(k[_X1], dof_r) * _chi2_moment(k[_X2], dof_s)
    return dict(out)


def _step_matrix(n_real, n_synthetic, bias: float, estimator: str):
    """``(A (..., 5, 5), b (..., 5))`` with m_g = A m_{g−1} + b for one fresh-loop step (vectorised over n_synthetic)."""
    n_r = float(n_real)
    n_s = np.asarray(n_synthetic, dtype=float)
    N = n_r + n_s
    c = c_factor(N, estimator)
    k = n_r * n_s / N
    xr = _var(_Z1, 1 / math.sqrt(n_r))                                          # fresh real mean
    xs = _add(_var(_E), _mul(_var(_W), _var(_Z2, np.sqrt(bias / n_s))))         # synthetic mean
    e1 = _add(_scale(xr, n_r / N), _scale(xs, n_s / N))
    diff = _add(xr, _scale(xs, -1.0))
    v1 = _scale(_add(_var(_X1), _scale(_mul(_mul(_var(_W), _var(_W)), _var(_X2)), bias), _scale(_mul(diff, diff), k)), c)
    e2 = _mul(e1, e1)
    targets = [e2, v1, _mul(e2, e2), _mul(e2, v1), _mul(v1, v1)]
    shape = np.broadcast(n_s).shape
    A = np.zeros(shape + (5, 5))
    b = np.zeros(shape + (5,))
    for row, poly in enumerate(targets):
        for (pe, pw), coef in _expect(poly, n_r - 1, n_s - 1).items():
            if pe % 2 or pw % 2:
                if np.any(coef != 0):  # odd moments of a symmetric law vanish; guard the algebra
                    raise AssertionError("odd monomial survived the expectation")
                continue
            key = (pe, pw // 2)
            if key == (0, 0):
                b[..., row] += coef
            else:
                A[..., row, _BASIS.index(key)] += coef
    return A, b


def initial_moments(n_initial: int, estimator: str = "mle") -> np.ndarray:
    """(E e², E v, E e⁴, E e²v, E v²) of a real-only fit on n_0 points (σ* = 1): e ~ N(0, 1/n_0), v = c χ²_{n_0−1}."""
    n = float(n_initial)
    c = float(c_factor(n, estimator))
    m = n - 1
    return np.array([1 / n, c * m, 3 / n ** 2, c * m / n, c ** 2 * (m * m + 2 * m)])


def fresh_fourth_moments(n_initial: int, n_real: int, n_synthetic: int, generations: int, bias: float = 1.0,
                         estimator: str = "mle") -> np.ndarray:
    """``(G+1, 5)`` exact moments (E e², E v, E e⁴, E e²v, E v²) of the 1-D fresh loop with σ* = 1."""
    A, b = _step_matrix(n_real, n_synthetic, bias, estimator)
    m = initial_moments(n_initial, estimator)
    out = [m]
    for _ in range(generations):
        m = A @ m + b
        out.append(m)
    return np.array(out)


def fisher_distance(moments: np.ndarray) -> np.ndarray:
    """E D = E e² + (E v² − 2 E v + 1)/2 from ``(..., 5)`` moments (σ* = 1)."""
    m = np.asarray(moments)
    return m[..., 0] + 0.5 * (m[..., 4] - 2 * m[..., 1] + 1.0)


def fresh_limit_moments(n_real: int, n_synthetic, bias: float = 1.0, estimator: str = "mle") -> np.ndarray:
    """Fixed point m_∞ = (I − A)^{-1} b (``(..., 5)``; vectorised over ``n_synthetic``). Independent of n_0."""
    A, b = _step_matrix(n_real, n_synthetic, bias, estimator)
    return np.linalg.solve(np.eye(5) - A, b[..., None])[..., 0]


def real_only_distance(n, estimator: str = "mle"):
    """E D of a fit on n real points: 1/n + (2n − 1)/(2n²) (mle) or 1/n + 1/(n − 1) (unbiased)."""
    n = np.asarray(n, dtype=float)
    return 1 / n + ((2 * n - 1) / (2 * n * n) if estimator == "mle" else 1 / (n - 1))


def effective_sample_size(n_real: int, n_synthetic, bias: float = 1.0, estimator: str = "mle"):
    """n_e: the (real-valued) real-only sample size whose E D equals the fresh loop's limit.

    Inverts ``real_only_distance``: mle n = (1 + √(1 − D/2))/D; unbiased n = (D + 2 + √(D² + 4))/(2D).
    Vectorised over ``n_synthetic``.
    """
    D = fisher_distance(fresh_limit_moments(n_real, n_synthetic, bias, estimator))
    if estimator == "mle":
        return (1 + np.sqrt(np.clip(1 - D / 2, 0, None))) / D
    return (D + 2 + np.sqrt(D * D + 4)) / (2 * D)


def admissible_synthetic(n_real: int, bias: float = 1.0, estimator: str = "mle", n_max: int | None = None) -> float:
    """The largest n_s with n_e(n_r, n_s, λ) ≥ n_r (searched over 1..n_max, default 200·n_r).

    Returns 0 if even n_s = 1 lowers n_e below n_r, and ``math.inf`` if n_e ≥ n_r all the way to n_max
    (typically λ = 1, where synthetic data never hurt in this measure).
    """
    n_max = n_max or 200 * n_real
    ns = np.arange(1, n_max + 1)
    ok = effective_sample_size(n_real, ns, bias, estimator) >= n_real
    if ok.all():
        return math.inf
    if not ok.any():
        return 0
    return int(ns[ok].max())
