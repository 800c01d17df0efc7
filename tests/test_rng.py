import numpy as np

from autophagy.rng import BLOCK, Streams, role_id


def test_same_key_same_numbers_and_roles_differ():
    a = Streams(7, 5, 3, "sample").normal(4, 2)
    b = Streams(7, 5, 3, "sample").normal(4, 2)
    c = Streams(7, 5, 3, "fit").normal(4, 2)
    d = Streams(7, 5, 4, "sample").normal(4, 2)
    assert a.shape == (5, 4, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, d)


def test_replicate_numbers_do_not_depend_on_R_or_worker_split():
    full = Streams(1, 3 * BLOCK + 5, 2, "sample").normal(10)
    small = Streams(1, 3, 2, "sample").normal(10)
    np.testing.assert_array_equal(full[:3], small)
    # a worker that runs only the second block sees the same numbers
    second = Streams(1, 3 * BLOCK + 5, 2, "sample").subset(BLOCK, 2 * BLOCK).normal(10)
    np.testing.assert_array_equal(full[BLOCK:2 * BLOCK], second)


def test_per_replicate_generators_independent_of_R():
    g_small = Streams(3, 2, 0, "fit").generators()
    g_big = Streams(3, 10, 0, "fit").generators()
    assert g_small[1].random() == g_big[1].random()


def test_integers_in_range_and_uniform():
    x = Streams(0, 4, 0, "policy").integers(np.array([3, 5, 7, 11]), 20000)
    assert x.min() == 0 and (x.max(axis=1) == np.array([2, 4, 6, 10])).all()
    # each value of the first replicate has frequency 1/3 within 4 standard errors
    freq = np.bincount(x[0], minlength=3) / x.shape[1]
    se = np.sqrt((1 / 3) * (2 / 3) / x.shape[1])
    assert np.all(np.abs(freq - 1 / 3) < 4 * se)


def test_role_id_is_stable():
    import zlib
    assert role_id("sample") == zlib.crc32(b"sample")
    assert role_id("a") != role_id("b")


def test_normal_with_scale_and_shift_is_the_transformed_draw():
    """The fused per-block affine map gives exactly shift + scale · z, and replicate r still ignores R."""
    R = 130  # three blocks, the last one partial
    sc, sh = np.linspace(0.5, 2.0, R), np.linspace(-3.0, 3.0, R)
    z = Streams(7, R, 2, "sample").normal(5, 2)
    x = Streams(7, R, 2, "sample").normal(5, 2, scale=sc, shift=sh)
    np.testing.assert_array_equal(x, sh[:, None, None] + sc[:, None, None] * z)
    small = Streams(7, 70, 2, "sample").normal(5, 2, scale=sc[:70], shift=sh[:70])
    np.testing.assert_array_equal(small, x[:70])


class _FullBlocks:
    """The seed tree as documented, drawn the plain way: block b's PCG64 state is words 4b..4b+3 of
    SeedSequence(seed, spawn_key=(0, generation + 1, crc32(role))), and every call draws whole blocks."""

    def __init__(self, seed, R, generation, role, start=0):
        first, n = start // BLOCK, -(-R // BLOCK)
        ss = np.random.SeedSequence(seed, spawn_key=(0, generation + 1, role_id(role)))
        words = ss.generate_state(4 * (first + n), np.uint64)[4 * first:].reshape(n, 4)
        self.R, self.gens = R, []
        for w in words:
            bits = np.random.PCG64(0)
            bits.state = {"bit_generator": "PCG64", "state": {"state": (int(w[0]) << 64) | int(w[1]),
                          "inc": ((int(w[2]) << 64) | int(w[3])) | 1}, "has_uint32": 0, "uinteger": 0}
            self.gens.append(np.random.Generator(bits))

    def each(self, fn):
        return np.concatenate([fn(g) for g in self.gens])[: self.R]


def test_streams_are_the_documented_full_block_draws_whatever_the_sequence_of_calls():
    """Streams draws the last block's rows past R only if the stream is used again (they are owed, then drawn
    and dropped), and reuses generator objects: every number, of every later call too, is the full-block one."""
    rs = np.random.default_rng(5)
    for trial in range(60):
        R, start, g = int(rs.integers(1, 160)), BLOCK * int(rs.integers(0, 3)), int(rs.integers(-1, 9))
        role = f"r{trial}"
        ours, ref = Streams(3, R, g, role, start), _FullBlocks(3, R, g, role, start)
        for step in range(4):
            kind, tail = int(rs.integers(0, 5)), tuple(int(t) for t in rs.integers(1, 4, size=rs.integers(0, 3)))
            if kind == 0:
                a, b = ours.normal(*tail), ref.each(lambda gen: gen.standard_normal((BLOCK, *tail)))
            elif kind == 1:
                a, b = ours.uniform(*tail), ref.each(lambda gen: gen.random((BLOCK, *tail)))
            elif kind == 2:
                sc = rs.random(R)
                a = ours.normal(*tail, scale=sc, shift=sc)
                b = ref.each(lambda gen: gen.standard_normal((BLOCK, *tail)))
                b = sc.reshape((R,) + (1,) * len(tail)) + sc.reshape((R,) + (1,) * len(tail)) * b
            elif kind == 3:
                a, b = ours.draw(lambda gen, s: gen.integers(0, 9, s), tail), ref.each(lambda gen: gen.integers(0, 9, (BLOCK, *tail)))
            else:
                parts = []
                ours._each_block(lambda blk, gen: parts.append(gen.standard_gamma(2.0, 3)))
                a, b = np.stack(parts), np.stack([gen.standard_gamma(2.0, 3) for gen in ref.gens])
            assert a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def test_nested_block_draws_keep_their_own_streams():
    """A draw inside another stream's block callback gets its own generator (the reusable ones are lent out)."""
    outer, inner = Streams(1, 130, 0, "outer"), Streams(1, 3, 0, "inner")
    seen = []
    outer._each_block(lambda b, g: seen.append((g.random(2), inner.normal(2), g.random(2))))
    ref_outer = _FullBlocks(1, 130, 0, "outer")
    for b, (first, _, second) in enumerate(seen):
        np.testing.assert_array_equal(np.concatenate([first, second]), ref_outer.gens[b].random(4))
    ref_inner = _FullBlocks(1, 3, 0, "inner").gens[0]
    for b in range(3):  # the inner stream continued call after call: its owed padding drawn in between
        np.testing.assert_array_equal(seen[b][1], ref_inner.standard_normal((BLOCK, 2))[:3])
