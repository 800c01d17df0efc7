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
