"""``histogram-mix``: Gillman et al.'s toy-script correction (``exp_scripts/gaussian_toy_example.py``,
``RejectionSamplingCorrection``), drawn in its own law with a tight envelope. Options: ``correction.HistogramMixOptions``;
the method's description: the ``correction`` module docstring."""
from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError
from .rng import Streams


class HistogramMix:
    """Draws from min(f, M q)/Z, f = (1 − t)·h + t·p*: the law of Gillman et al.'s rejection sampler (``correction``
    module docstring), drawn with a tighter envelope. Derivation:

    * Their sampler proposes x ~ q = N(μ*, s Σ*) and accepts when u < f(x)/(M q(x)), u ~ U[0, 1): an accepted
      point has density q · min(1, f/(M q)) / P(accept) = min(f, M q)/Z, Z = ∫ min(f, M q). That is f only
      where f ≤ M q: the histogram's dense cells are clipped to M q. With y = L*⁻¹(x − μ*) (Σ* = L* L*ᵀ) and
      M = s^{d/2}: M q(x) = exp(log_norm − |y|²/(2s)), p*(x) = exp(log_norm − |y|²/2), so p* ≤ M q.
    * h as their code evaluates it. The batch's histogram (numpy's conventions: range [lo, hi] per axis, the
      maximum in the last bin; a flat axis widened to lo ± 0.5) has densities h_c = n_c/(m Π w). A point is
      looked up by truncating rel = (x − lo)/w towards zero (their int()) and counts when 0 ≤ trunc(rel) < b
      on every axis; rel ∈ (−1, 0) truncates to −0.0, which passes. So cell c's box B_c is, per axis,
      (lo − w, lo + w) in the first bin (a 'phantom' strip one width below lo) and [lo + i w, lo + (i + 1) w)
      in bin i ≥ 1, and h = 0 at or past hi and at or below lo − w. The boxes are disjoint,
      |B_c| = Π w · 2^(axes where c is in the first bin), and ∫ h = Σ_c h_c |B_c| ≥ 1 (the strips' extra mass).
    * An envelope: min(a + b, c) ≤ a + min(b, c) for a ≥ 0, so min(f, M q)(x) ≤ t p*(x) + E_c on B_c (and t p*
      outside the boxes), E_c = min((1 − t) h_c, max of M q over B_c); the max is bounded by M q at the point of
      B_c nearest μ*, using |y|² ≥ λ_min(Σ*⁻¹)|x − μ*|² (exact when Σ* ∝ I). Masses are rounded up to whole
      multiples of δ = (t + Σ_c E_c |B_c|)/K, K = 8 (m + 1) (a sampling table, at most (m + 1)/K ≈ 12%, on
      average half that, looser): t' = δ⌈t/δ⌉ for the target and, sharing cell c's mass among its n_c points,
      δ⌈E_c|B_c|/(n_c δ)⌉ per point; E'_c = n_c δ⌈E_c|B_c|/(n_c δ)⌉/|B_c| ≥ E_c. So e(x) = t' p*(x) + E'_c (on
      B_c) ≥ min(f, M q)(x), a mixture: one table entry drawn uniformly gives the target (then x ~ p*) or a batch
      point (then x uniform in its cell's box). Accepting when u · e(x) < min(f(x), M q(x)) leaves the density
      e · min(f, M q)/e ∝ min(f, M q): the same law as theirs. Acceptance is Z/∫e instead of Z/M: about
      0.65–0.95 instead of 0.05–0.5 for the preset's batches (d = 2, s = 2).
    * Random numbers, all from one stream ``propose``, 1 + d + (d mod 2) uniforms per candidate: the first picks
      the table entry and its fractional part is u (independent of the entry; 2^-45 resolution for the preset);
      a box's candidate takes the next d as its offsets in the box; the target's turns them into d normals
      z ~ N(0, I) by Box–Muller (pairs; the extra uniform completes the last pair when d is odd), x = μ* + L* z.

    Numbers differ from their sampler's (other candidates); the law does not: tests/test_correction.py keeps
    their sampler as the reference and checks both against min(f, M q)/Z by quadrature (χ² of cell counts) and
    against each other (means, covariances over replicates). For t < 1/2 only the target's draws are looked up and
    a box's draw is judged by its box (one that rounds across the box's edge, probability ~1e-16, is still judged
    by it); for t >= 1/2 (most draws the target's) every draw is looked up, which one pass does more cheaply.
    """

    keeps_labels = False  # replaces the batch (the engine refuses it in a labelled loop)

    def __init__(self, opts, source):
        self.opts, self.source, self.t = opts, source, opts.fraction()
        truth = source.info.truth or {}
        if not truth.get("gaussian") or truth.get("mean") is None or truth.get("cov") is None:
            raise ConfigError("correction.method", "histogram-mix", "a source with a Gaussian truth (data.source: gaussian)")
        self.mu = np.asarray(truth["mean"], dtype=float).reshape(-1)
        cov = np.asarray(truth["cov"], dtype=float).reshape(self.mu.size, self.mu.size)
        d = self.mu.size
        if opts.bins ** d > 10 ** 6:
            raise ConfigError("correction.bins", opts.bins, f"at most {int(10 ** (6 / d))} bins per axis in {d} dimensions")
        self.root = np.linalg.cholesky(cov)
        self.inv_root_t = np.linalg.inv(self.root).T  # y = (x − μ*) @ inv_root_t
        self.standard = bool(np.array_equal(self.root, np.eye(d)) and not self.mu.any())  # then y = x exactly
        self.lam = 1.0 / np.linalg.eigvalsh(cov).max()  # the smallest eigenvalue of Σ*⁻¹
        self.log_norm = -0.5 * (d * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1])
        self.s = opts.proposal_scale
        self.log_M = 0.5 * d * math.log(self.s)  # max over x of p*(x) / q(x), at the mean
        self._run: _RunConst | None = None

    def _const(self, R: int, m: int) -> "_RunConst":
        if self._run is None or self._run.key != (R, m):
            self._run = _RunConst(R, m, self.mu.size, self.opts.bins)
        return self._run

    def _envelope(self, x: np.ndarray, run: "_RunConst"):
        """The histogram and the envelope's pieces. Axis-major per point (d, R·m): its box's lower corner and side
        lengths; per point (R·m): (1 − t) h_c and E'_c of its cell; per replicate: the table (local entry codes,
        its start and length per replicate), t' · exp(log_norm), the lower edges and inverse widths (d, R), the
        cell counts (R · b^d, row-major cells, replicate r's at r · b^d) and (1 − t)/(m Π w)."""
        R, m, d = x.shape
        b, t, mu = self.opts.bins, self.t, self.mu
        xt = x.transpose(2, 0, 1).copy()  # (d, R, m), worked on in place: long inner loops per axis
        lo, hi = xt.min(axis=2), xt.max(axis=2)
        flat = hi == lo  # numpy's histogram: a zero-width range becomes (lo − 0.5, hi + 0.5)
        if flat.any():
            lo, hi = np.where(flat, lo - 0.5, lo), np.where(flat, hi + 0.5, hi)
        width = (hi - lo) / b
        w = width[..., None]
        xt -= lo[..., None]
        xt /= w
        np.floor(xt, out=xt)  # >= 0: lo is the minimum (or below it)
        np.minimum(xt, b - 1, out=xt)  # the maximum in the last bin
        idx = xt.astype(np.intp)  # each point's bin per axis
        cell = idx[0] * b ** (d - 1)
        for k in range(1, d):  # row-major over the axes
            cell += idx[k] * b ** (d - 1 - k)
        cell += run.cell_base
        counts = np.bincount(cell.ravel(), minlength=R * b ** d)
        # each point's box (the first bin reaches one width below lo), its volume, the gap from μ* to it
        first = xt == 0
        p_len = w * (1.0 + first)
        xt -= first
        xt *= w
        xt += lo[..., None]
        p_low = xt
        gap = p_low - mu[:, None, None]
        far = gap + p_len  # the box's upper corner minus μ*
        np.maximum(gap, 0.0, out=gap)
        np.minimum(far, 0.0, out=far)
        gap -= far
        gap *= gap
        g2 = gap.sum(0)
        vol = p_len.prod(0)
        n_pt = np.take(counts, cell)  # (R, m): n_c of each point's cell
        fac = (1.0 - t) / (m * width.prod(0))  # (1 − t) h_c = n_c · fac, per replicate
        f_pt = fac[:, None] * n_pt
        g2 *= -0.5 * self.lam / self.s
        g2 += self.log_norm
        share = np.exp(g2, out=g2)  # max of M q over the box (a bound)
        np.minimum(share, f_pt, out=share)  # E_c
        share *= vol
        share /= n_pt  # E_c |B_c| / n_c
        # the sampling table: per replicate, entry 0 the target, 1 + j batch point j, ⌈mass / δ⌉ copies each
        delta = share.sum(1)
        delta += t
        delta *= 1.0 / run.K
        if not (delta > 0).all():
            raise ValueError("histogram-mix: a batch whose cells carry no M q mass at t = 0 (all far from the target)")
        copies = np.empty((R, m + 1))
        copies[:, 0] = t
        copies[:, 1:] = share
        copies /= delta[:, None]
        np.ceil(copies, out=copies)
        e_pt = copies[:, 1:] * delta[:, None]
        e_pt *= n_pt
        e_pt /= vol  # E'_c of each point's cell
        t_env = copies[:, 0] * delta
        t_env *= math.exp(self.log_norm)  # t' · exp(log_norm)
        copies = copies.astype(np.intp)
        length = copies.sum(1)
        start = np.cumsum(length)
        start -= length
        table = np.repeat(run.codes, copies.ravel())
        return (p_low.reshape(d, -1), p_len.reshape(d, -1), f_pt.ravel(), e_pt.ravel(), table, start, length, t_env,
                lo, 1.0 / width, fac, (counts, cell, e_pt))

    def __call__(self, synth: np.ndarray, streams: Streams | None = None, labels=None) -> np.ndarray:
        x = np.asarray(synth, dtype=float)
        R, m, d = x.shape
        b, t, s, mu = self.opts.bins, self.t, self.s, self.mu
        run = self._const(R, m)
        p_low, p_len, f_pt, e_pt, table, start, length, t_env, lo, inv_w, fac, cells = self._envelope(x, run)
        length_f, last = length.astype(float), length - 1
        norm = math.exp(self.log_norm)
        propose = streams.child("propose")
        n_u = 1 + d + d % 2  # per candidate: table entry (its fraction: the acceptance), d offsets (+1 if d is odd)
        chunk, out, have = run.chunk, None, None
        rows = slice(None)  # the replicates still short of m: every chunk is drawn for all, used by these
        while True:
            u = propose.uniform(n_u, chunk)  # (R, n_u, chunk)
            if out is not None:
                u = u[rows]
            a = u[:, 0] * length_f[rows, None]
            pos = a.astype(np.intp)
            a -= pos  # the acceptance uniform
            np.minimum(pos, last[rows, None], out=pos)  # u · length may round up to length
            pos += start[rows, None]
            pt = np.take(table, pos)  # (n, chunk): the entry's global point index (-1: the target)
            if t:
                ti = np.flatnonzero(pt < 0)  # the target's entries (flat in (n, chunk))
                np.maximum(pt, 0, out=pt)  # any valid index (their values are replaced)
            cand = []
            for k in range(d):
                c = np.take(p_len[k], pt)
                c *= u[:, k + 1]
                c += np.take(p_low[k], pt)  # a uniform point of the entry's box
                cand.append(c)
            if t and ti.size:  # the target's entries: x = μ* + L* z, looked up as theirs does
                xt = self._target(ti, u, chunk)
                for k in range(d):
                    np.put(cand[k], ti, xt[k])
                if t < 0.5:  # few: look up only these, a box's candidate is judged by its box
                    r_t = ti // chunk if out is None else rows[ti // chunk]
                    f, e = np.take(f_pt, pt), np.take(e_pt, pt)
                    ft, et = self._lookup(xt, np.take(lo, r_t, axis=1), np.take(inv_w, r_t, axis=1), r_t * b ** d,
                                          np.take(fac, r_t), *cells)
                    np.put(f, ti, ft)
                    np.put(e, ti, et)
                else:  # many (t >= 1/2, so most candidates): look up every candidate (a box's is found in its box)
                    f, e = self._lookup(cand, lo[:, rows, None], inv_w[:, rows, None], run.cell_base[rows],
                                        fac[rows, None], *cells)
            else:  # a box's candidate is judged by its box
                f, e = np.take(f_pt, pt), np.take(e_pt, pt)
            if self.standard:
                y = cand
            else:
                y = [sum((cand[l] - mu[l]) * self.inv_root_t[l, k] for l in range(d)) for k in range(d)]
            yy = y[0] * y[0]
            for k in range(1, d):
                yy += y[k] * y[k]
            mq = yy * (-0.5 / s)
            np.exp(mq, out=mq)  # M q and p* over exp(log_norm)
            if t:
                p = mq * mq if s == 2.0 else np.exp(-0.5 * yy)
                f += (t * norm) * p
                p *= t_env[rows, None]
                e += p
            mq *= norm
            np.minimum(f, mq, out=f)
            e *= a
            ok = e < f  # (n, chunk)
            if out is None:
                acc = np.flatnonzero(ok)  # row-major: row r's accepted candidates in order, from first[r]
                first = np.searchsorted(acc, run.row_chunk)
                if (np.diff(first) >= m).all():  # the usual case: every replicate done in one chunk
                    pick = np.take(acc, first[:-1, None] + run.slots)  # (R, m): the first m of each row
                    y = np.empty((R, m, d))
                    for k in range(d):
                        np.take(cand[k], pick, out=y[..., k], mode="clip")  # pick is in range: no check
                    return y
            if out is None:
                out, rows, have = np.empty((d, R, m)), np.arange(R), np.zeros(R, dtype=np.int64)
            rank = np.cumsum(ok, axis=1)
            rank += have[rows, None]  # the accepted candidate's slot in the output
            flat = np.flatnonzero(ok & (rank <= m))
            i, slot = rows[flat // chunk], rank.ravel()[flat] - 1
            for k in range(d):
                out[k, i, slot] = np.take(cand[k], flat)
            have[rows] = np.minimum(rank[:, -1], m)
            rows = rows[have[rows] < m]
            if not rows.size:
                return np.ascontiguousarray(out.transpose(1, 2, 0))
            chunk = max(8, m // 2)

    def _target(self, ti, u, chunk) -> list[np.ndarray]:
        """Per axis, x = μ* + L* z at the target's entries ``ti`` (flat in (n, chunk)), z ~ N(0, I) by Box–Muller
        from the entry's offset uniforms (u (n, n_u, chunk))."""
        d, mu = self.mu.size, self.mu
        ui = ti + (ti // chunk) * ((u.shape[1] - 1) * chunk)  # into u: offset k at ui + k · chunk
        z = []
        for k in range(0, d, 2):
            radius = np.take(u, ui + (k + 1) * chunk)
            np.subtract(1.0, radius, out=radius)  # in (0, 1], exact (u is a multiple of 2^-53)
            np.log(radius, out=radius)
            radius *= -2.0
            np.sqrt(radius, out=radius)
            tau = np.take(u, ui + (k + 2) * chunk)  # the angle 2πu by its half-angle tangent: one call, not cos and sin
            tau *= math.pi
            np.tan(tau, out=tau)  # |tau| <= 1.7e16 (πu rounds at best to the double nearest π/2)
            tau2 = tau * tau
            radius /= tau2 + 1.0
            z.append(radius * (1.0 - tau2))  # r cos(2πu)
            if k + 1 < d:
                radius *= tau
                radius *= 2.0
                z.append(radius)  # r sin(2πu)
        return z if self.standard else [mu[k] + sum(self.root[k, l] * z[l] for l in range(k + 1)) for k in range(d)]

    def _lookup(self, xs, lo, inv_w, base, fac, counts, cell, e_pt):
        """(1 − t) h(x) and E'(x) at points given per axis (``xs[k]``, any shape; ``lo[k]``, ``inv_w[k]``, ``base``
        (the replicate's first cell) and ``fac`` ((1 − t)/(m Π w)) broadcast to it), h looked up as theirs does:
        truncation towards zero, counted when 0 <= trunc(rel) < b (i.e. −1 < rel < b) on every axis. Clipped to
        [−1, b] first, rel truncates to −1 or b exactly where it does not count (and never overflows the cast)."""
        d, b = self.mu.size, self.opts.bins
        inside, at = None, None
        for k in range(d):
            rel = xs[k] - lo[k]
            rel *= inv_w[k]
            np.clip(rel, -1, b, out=rel)
            ik = rel.astype(np.intp)
            ok = ik.view(np.uintp) < b  # 0 <= ik < b
            inside = ok if inside is None else np.logical_and(inside, ok, out=inside)
            if at is None:
                at = ik
            else:
                at *= b
                at += ik
        at += base
        env = np.zeros(counts.size)  # E'_c per cell (0 where empty)
        env[cell] = e_pt
        f = np.take(counts, at, mode="clip")  # a cell index off the replicate's grid only where not inside
        f *= inside  # 0 outside every box
        f = f * fac
        e = np.take(env, at, mode="clip")
        e *= inside
        return f, e


class _RunConst:
    """Index arrays of one (R, m), built once per run: the table's entry codes (0 the target, 1 + j point j),
    each replicate's first cell and first point, the output slots; the chunk of candidates and table size K."""

    def __init__(self, R: int, m: int, d: int, b: int):
        self.key = (R, m)
        self.K = 8 * (m + 1)
        # acceptance is about 0.7 or more for such batches: one chunk nearly always suffices (a constant of the
        # run, so a replicate's draws never depend on the others'); the few short replicates continue their streams
        self.chunk = int(m / 0.7 + 2.0 * math.sqrt(m) + 2)
        codes = np.arange(R * (m + 1)).reshape(R, m + 1) - np.arange(1, R + 1)[:, None]  # r·m + j for point j of r
        codes[:, 0] = -1  # the target
        self.codes = codes.ravel().astype(np.int32 if R * m < 2 ** 31 else np.intp)  # a table under 128 KiB: no mmap
        self.cell_base = (np.arange(R) * b ** d)[:, None]
        self.slots = np.arange(m)[None, :]
        self.row_chunk = np.arange(R + 1) * self.chunk  # each row's first candidate, flat (and the end)
