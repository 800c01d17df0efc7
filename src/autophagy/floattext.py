"""Python's ``repr`` of many float64 values at once, as fixed-width byte strings (the metrics.csv export).

pandas writes a float cell as numpy's str(x), which equals Python's repr(x): the shortest decimal that reads
back as x (the closest such one), positional for 1e-4 <= |x| < 1e16. Formatting 2.4 million of them one by one
takes seconds (3.3 s on the 2-core machine); here the digits are worked out in integer arithmetic on whole
arrays (1.9 s), and values outside the fast range fall back to ``repr`` itself. tests/test_export_fast.py
checks the text against ``repr`` on about 700,000 values.
"""
from __future__ import annotations

import numpy as np

_DTYPE = np.dtype("<f8")

_U64 = np.uint64
_POW5 = np.array([5 ** t for t in range(27)], dtype=_U64)
_LOW32 = _U64(0xFFFFFFFF)
# four ASCII digits as a little-endian word, 0000..9999; then the same with trailing zeros as NUL (0 -> nothing)
_FOUR = np.frombuffer(b"".join([b"%04d" % i for i in range(10000)]
                               + [(b"%04d" % i).rstrip(b"0").ljust(4, b"\0") for i in range(10000)]), "<u4").copy()
_LEAD = np.frombuffer(b"".join(b"\0\0\0" + bytes([48 + d]) for d in range(10)), "<u4").copy()
_P10 = np.array([float(f"1e{k}") for k in range(-11, 17)])  # 10**(e+1) for e = -12..15, rounded to float64
_TEXT = 24  # widest repr in the fast range: "-0.000" and 17 digits; "-d." 16 digits "e-10"
_SPECIAL = np.array([b"", b"", b"0.0", b"-0.0", b"inf", b"-inf"], dtype="S24").view(np.uint8).reshape(6, 24)  # NaN 0 inf


def _mul128(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(high, low) 64-bit words of the exact products of uint64 arrays ``a`` and ``b``."""
    s = _U64(32)
    a0, a1, b0, b1 = a & _LOW32, a >> s, b & _LOW32, b >> s
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> s) + (p01 & _LOW32) + (p10 & _LOW32)
    return p11 + (p01 >> s) + (p10 >> s) + (mid >> s), (p00 & _LOW32) | (mid << s)


def _float_text(x: np.ndarray) -> np.ndarray:
    """``repr`` of each float64 as ASCII, NUL-padded on the right: (n,) -> (n, 24) uint8; NaN -> empty (pandas'
    ``na_rep``).

    With x = M 2**E exactly and e = floor(log10 |x|), x / 10**(e-16) = M 5**(16-e) / 2**sh in 128-bit integers
    gives the 17 leading digits and the remainder exactly; the 16- and 15-digit roundings follow from them, and a
    rounding reads back as x when it lies within half an ulp (a tie reads back to an even M). The shortest that
    does is the repr. Values outside 1e-10 <= |x| < 1e15, powers of two (uneven ulps), exact decimal ties,
    0 and inf are few and take Python's repr; tests/test_export_fast.py checks all paths against repr.
    """
    n, one = len(x), _U64(1)
    if not n:
        return np.zeros((0, _TEXT), np.uint8)
    a = np.abs(x)
    bits = a.view(_U64)
    be = (bits >> _U64(52)).astype(np.int64)
    frac = bits & _U64((1 << 52) - 1)
    # e = floor(log10 |x|) from the binary exponent: e or e - 1, then one comparison (an e off by one near a
    # power of ten gives digits outside 10**16..10**17 below and so takes repr; log10 itself is 10x slower)
    e = np.floor((be - 1023) * 0.30102999566398120).astype(np.int64)
    e += a >= _P10[np.clip(e + 12, 0, len(_P10) - 1)]
    ok = (be >= 1) & (be < 2047) & (frac != 0) & (e >= -10) & (e <= 14)
    e[~ok] = 0
    sh = e - be + (1075 - 16)
    ok &= (sh >= 1) & (sh <= 59)
    sh = np.where(ok, sh, 1).astype(_U64)
    M = frac | _U64(1 << 52)
    F5 = _POW5[16 - e]
    hi, lo = _mul128(M, F5)  # x / 10**(e-16) == (hi 2**64 + lo) / 2**sh
    F = (lo >> sh) | (hi << (_U64(64) - sh))  # its integer part (17 digits when e is right) ...
    rem = lo & ((one << sh) - one)  # ... and the rest, in units of 2**-sh
    half = one << (sh - one)

    below, even = _U64(0) - rem, (M & one) == 0  # -rem modulo 2**64

    def reads_back(C):  # are digits C (units of 10**(e-16)) within half an ulp (F5 / 2 units of 2**-sh) of x?
        ahead = C > F  # distance |C 2**sh - F 2**sh - rem|; half an ulp is at most 11.1 units, so a gap
        gap = np.minimum(np.where(ahead, C - F, F - C), _U64(13))  # capped at 13 still fails, without overflow
        twice = ((gap << sh) + np.where(ahead, below, rem)) << one
        return (twice < F5) | ((twice == F5) & even)  # a decimal halfway between two floats reads as the even one

    tie17 = rem == half
    N17 = F + ((rem > half) | (tie17 & ((F & one) == one)))  # rounded half to even, as printf and repr do
    N16 = F // _U64(10)  # (np.divmod is many times slower than // and a multiply)
    b = F - N16 * _U64(10)
    tie16 = (b == 5) & (rem == 0)
    N16 += (b > 5) | ((b == 5) & (rem > 0)) | (tie16 & ((N16 & one) == one))
    N15 = F // _U64(100)
    b = F - N15 * _U64(100)
    N15 += (b > 50) | ((b == 50) & ((rem > 0) | ((N15 & one) == one)))
    N15 *= _U64(100)
    N16 *= _U64(10)
    rt15 = reads_back(N15)
    rt16 = ~rt15 & reads_back(N16)
    D = np.where(rt15, N15, np.where(rt16, N16, N17))
    ok &= ~(rt16 & tie16) & (rt15 | rt16 | ~tie17) & (D >= _U64(10 ** 16)) & (D < _U64(10 ** 17))
    D[~ok] = _U64(10 ** 16)
    neg = np.signbit(x)
    with np.errstate(invalid="ignore"):
        whole = ok & (e >= 0) & (x == np.trunc(x))
    # the digits as bytes: NUL NUL NUL d0, then four words of four; trailing zeros NUL except in whole numbers
    d0 = D // _U64(10 ** 16)
    rest = D - d0 * _U64(10 ** 16)
    h8 = rest // _U64(10 ** 8)
    l8 = (rest - h8 * _U64(10 ** 8)).astype(np.uint32)
    h8 = h8.astype(np.uint32)
    c0, c2 = h8 // np.uint32(10000), l8 // np.uint32(10000)
    c1, c3 = h8 - c0 * np.uint32(10000), l8 - c2 * np.uint32(10000)
    words = np.empty((n, 5), np.uint32)
    words[:, 0] = _LEAD[d0]
    trailing = ~whole
    for j, c in ((4, c3), (3, c2), (2, c1), (1, c0)):
        words[:, j] = _FOUR[c + trailing * np.uint32(10000)]
        trailing &= c == 0
    k = np.zeros(n, np.int64)  # significant digits of d.ddde-XX
    expo = np.flatnonzero(e <= -5)
    k[expo] = np.count_nonzero(words[expo].view(np.uint8)[:, 3:], axis=1)
    # lay out each kind (exponent, sign, whole, digits of d.ddde-XX) with slices: sort by kind, then put back
    key = ((((e + 10) * 2 + neg) * 2 + whole) * 18 + k).astype(np.int16)
    order = np.argsort(key, kind="stable")
    key = key[order]
    digits = words.view("V20").ravel()[order].view(np.uint8).reshape(n, 20)[:, 3:]
    text = np.zeros((n, _TEXT), np.uint8)
    cuts = (np.flatnonzero(key[1:] != key[:-1]) + 1).tolist()
    for start, stop in zip([0, *cuts], [*cuts, n]):
        kind, kk = divmod(int(key[start]), 18)
        ee, s = kind // 4 - 10, (kind >> 1) & 1
        t, g = text[start:stop], digits[start:stop]
        if s:
            t[:, 0] = 45  # -
        if ee >= 0:  # ddd.ddd
            t[:, s:s + ee + 1] = g[:, :ee + 1]
            t[:, s + ee + 1] = 46
            if kind & 1:
                t[:, s + ee + 2] = 48
            else:
                t[:, s + ee + 2:s + 18] = g[:, ee + 1:]
        elif ee >= -4:  # 0.000ddd
            t[:, s:s + 1 - ee] = 48
            t[:, s + 1] = 46
            t[:, s + 1 - ee:s + 18 - ee] = g
        else:  # d.ddde-XX
            t[:, s] = g[:, 0]
            at = s + 1
            if kk > 1:
                t[:, at] = 46
                t[:, at + 1:at + kk] = g[:, 1:kk]
                at += kk
            t[:, at:at + 4] = np.frombuffer(b"e-%02d" % -ee, np.uint8)
    out = np.empty((n, _TEXT), np.uint8)
    out.view(f"V{_TEXT}").ravel()[order] = text.view(f"V{_TEXT}").ravel()
    zero, inf = x == 0, np.isinf(x)
    special = np.flatnonzero(zero | inf | np.isnan(x))
    out[special] = _SPECIAL[(zero[special] + 2 * inf[special]) * 2 + neg[special]]
    other = np.flatnonzero(~ok & ~zero & ~inf & (x == x))
    if len(other):
        reprs = [repr(v).encode() for v in x[other].tolist()]
        out[other] = np.array(reprs, dtype=f"S{_TEXT}").view(np.uint8).reshape(-1, _TEXT)
    return out
