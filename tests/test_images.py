"""Image sources, the digit feature network and image metrics (no torch needed)."""
import numpy as np
import pytest
from scipy.stats import binom

from autophagy.metrics import images as im
from autophagy.data.images import BinomialGridSource, DigitsSource, ImageFileSource
from autophagy.errors import ConfigError, DataError
from autophagy.rng import Streams


def S(R=4, role="data", seed=0):
    return Streams(seed, R, -1, role)


# --------------------------------------------------------------------------- binomial grid
def test_binomial_grid_shapes_and_square():
    src = BinomialGridSource()
    x = src.sample(50, S(3))
    assert x.shape == (3, 50, 576) and src.info.image_shape == (24, 24) and src.info.kind == "image"
    assert set(np.unique(x)) == {0.0, 1.0}
    assert np.all(x.sum(-1) == 9)
    row, col = src.positions(50, S(3))
    r2, c2, share = im.locate_square(x, (24, 24), 3)
    np.testing.assert_array_equal(r2, row)
    np.testing.assert_array_equal(c2, col)
    np.testing.assert_allclose(share, 1.0)


def test_binomial_grid_positions_follow_binomial_laws():
    """Row ~ Binomial(21, 0.8), column ~ Binomial(21, 0.3): means and variances within 4 standard errors."""
    src = BinomialGridSource()
    row, col = src.positions(5000, S(4))
    for v, p in ((row, 0.8), (col, 0.3)):
        v = v.ravel().astype(float)
        mean, var = 21 * p, 21 * p * (1 - p)
        assert abs(v.mean() - mean) < 4 * np.sqrt(var / v.size)
        # se of the sample variance: sqrt((mu4 - var^2) / N); mu4 of a binomial from its cumulants
        mu4 = 3 * var ** 2 + var * (1 - 6 * p * (1 - p))
        assert abs(v.var(ddof=1) - var) < 4 * np.sqrt((mu4 - var ** 2) / v.size)


def test_binomial_grid_reproducible_and_independent_of_R():
    src = BinomialGridSource(BinomialGridSource.Options(size=10, cluster=2, row_prob=0.5))
    a = src.sample(20, S(3))
    np.testing.assert_array_equal(a, src.sample(20, S(3)))
    np.testing.assert_array_equal(a, src.sample(20, S(70))[:3])
    assert not np.array_equal(a, src.sample(20, S(3, seed=1)))


def test_binomial_grid_rejects_square_larger_than_grid():
    with pytest.raises(ConfigError, match="data.cluster"):
        BinomialGridSource(BinomialGridSource.Options(size=4, cluster=4))


# --------------------------------------------------------------------------- digits
def test_digits_source_and_labels():
    src = DigitsSource(DigitsSource.Options(classes=(3, 7)))
    x, y = src.sample_labeled(200, S(2))
    assert x.shape == (2, 200, 64) and y.shape == (2, 200) and src.info.image_shape == (8, 8)
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.9
    assert set(np.unique(y)) == {3, 7}
    np.testing.assert_array_equal(x, src.sample(200, S(2)))  # same rows as plain sample
    assert src.info.truth["labels_available"] and src.info.truth["classes"] == (3, 7)
    # each drawn row is an image of its label: compare to the pool
    row = x[0, 0]
    matches = np.flatnonzero((src.pool == row).all(axis=1))
    assert y[0, 0] in src.labels[matches]


def test_digits_class_frequencies_match_pool():
    src = DigitsSource()
    _, y = src.sample_labeled(3000, S(2))
    p = src.info.truth["class_probs"]
    freq = np.bincount(y.ravel(), minlength=10) / y.size
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / y.size))


@pytest.mark.parametrize("classes", [(), (3, 3), (10,)])
def test_digits_rejects_bad_classes(classes):
    from autophagy.build import _options

    with pytest.raises(ConfigError, match="data.classes"):
        _options(DigitsSource, {"classes": list(classes)}, "data")


# --------------------------------------------------------------------------- image files
def _write_pngs(folder, imgs):
    import matplotlib.image as mpimg

    folder.mkdir()
    for i, img in enumerate(imgs):
        mpimg.imsave(folder / f"img{i:02d}.png", img, cmap="gray", vmin=0, vmax=1)


def test_png_folder_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    imgs = np.round(rng.random((5, 6, 7)) * 255) / 255
    _write_pngs(tmp_path / "pngs", imgs)
    src = ImageFileSource(ImageFileSource.Options(path="pngs"), base_dir=tmp_path)
    assert src.info.image_shape == (6, 7) and src.info.dim == 42
    np.testing.assert_allclose(src.pool, imgs.reshape(5, -1), atol=1.5 / 255)
    x = src.sample(10, S(2))
    assert x.shape == (2, 10, 42)
    assert all(any(np.allclose(r, p) for p in src.pool) for r in x[0])


def test_npz_uint8_flattened_with_labels(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(20, 16), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(20) % 3)
    src = ImageFileSource(ImageFileSource.Options(path=str(tmp_path / "d.npz"), labels_key="y_train"))  # key inferred
    assert src.info.image_shape == (4, 4) and src.info.truth["labels_available"]
    np.testing.assert_allclose(src.pool, x / 255.0)
    xs, ys = src.sample_labeled(30, S(2))
    assert xs.shape == (2, 30, 16) and ys.shape == (2, 30)
    idx = [np.flatnonzero((src.pool == r).all(1))[0] for r in xs[0]]
    np.testing.assert_array_equal(ys[0], np.arange(20)[idx] % 3)


@pytest.mark.parametrize("case, field", [
    ("missing", "data.path"), ("nan", "data.path"), ("range", "data.path"), ("key", "data.key"),
    ("shape", "data.path"), ("flat", "data.image_shape"), ("labels", "data.labels_key"), ("corrupt", "data.path"),
    ("several", "data.key")])
def test_image_file_errors(tmp_path, case, field):
    opts = {"path": "d.npz"}
    if case == "nan":
        np.savez(tmp_path / "d.npz", x=np.full((3, 4, 4), np.nan))
    elif case == "range":
        np.savez(tmp_path / "d.npz", x=np.full((3, 4, 4), 300.0))
    elif case == "key":
        np.savez(tmp_path / "d.npz", x=np.zeros((3, 4, 4)))
        opts["key"] = "images"
    elif case == "shape":
        _write_pngs(tmp_path / "p", [np.zeros((4, 4))])
        import matplotlib.image as mpimg

        mpimg.imsave(tmp_path / "p" / "z.png", np.zeros((5, 4)), cmap="gray")
        opts["path"] = "p"
    elif case == "flat":
        np.savez(tmp_path / "d.npz", x=np.zeros((3, 10)))
    elif case == "labels":
        np.savez(tmp_path / "d.npz", x=np.zeros((3, 4, 4)), y=np.zeros(2, int))
        opts["labels_key"] = "y"
    elif case == "several":
        np.savez(tmp_path / "d.npz", a=np.zeros((3, 4, 4)), b=np.zeros((3, 4, 4)))
    elif case == "corrupt":
        (tmp_path / "d.npz").write_bytes(b"not a zip file")
    with pytest.raises((DataError, ConfigError)) as err:
        ImageFileSource(ImageFileSource.Options(**opts), base_dir=tmp_path)
    assert err.value.field == field, str(err.value)


# --------------------------------------------------------------------------- features and metrics
@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def features(cache_dir):
    from autophagy.features import digit_features

    return digit_features(cache_dir)


def test_feature_network_is_accurate_and_cached(features, cache_dir):
    from sklearn.datasets import load_digits

    from autophagy import features as fmod

    d = load_digits()
    x = d.data / 16.0
    p = features.classify(x)
    assert p.shape == (1797, 10) and np.allclose(p.sum(1), 1)
    assert (p.argmax(1) == d.target).mean() > 0.97
    assert features.embed(x[:5]).shape == (5, 64)
    assert (cache_dir / f"{fmod.VERSION}.npz").exists()
    fmod._LOADED.clear()  # force a read from the cache file
    again = fmod.digit_features(cache_dir)
    assert again is not features
    np.testing.assert_array_equal(again.embed(x[:20]), features.embed(x[:20]))


def test_variability_is_exact_mean_pairwise_mse():
    rng = np.random.default_rng(0)
    x = rng.random((2, 30, 12))
    brute = np.array([np.mean([((a - b) ** 2).mean() for i, a in enumerate(xr) for j, b in enumerate(xr) if i != j])
                      for xr in x])
    out = im.variability(x, x)
    np.testing.assert_allclose(out["variability"], brute)
    np.testing.assert_allclose(out["variability-ratio"], 1.0)
    np.testing.assert_allclose(im.variability(x, np.repeat(x[:, :1], 30, axis=1))["variability"], 0, atol=1e-20)


def test_distribution_difference_detects_shift():
    src = BinomialGridSource()
    shifted = BinomialGridSource(BinomialGridSource.Options(col_prob=0.5))
    m = 2000
    same = im.distribution_difference(None, src.sample(m, S(3, "a")), info=src.info)
    moved = im.distribution_difference(None, shifted.sample(m, S(3, "b")), info=src.info)
    # sampling-noise level: E TV ≈ ½ Σ_k sqrt(2 p_k (1 − p_k) / (π m)); allow 2x
    p = binom.pmf(np.arange(22), 21, 0.3)
    noise = 0.5 * np.sqrt(2 * p * (1 - p) / (np.pi * m)).sum()
    assert np.all(same["distribution-difference-col"] < 2 * noise)
    assert np.all(moved["distribution-difference-col"] > 0.5)
    assert np.all(moved["distribution-difference-row"] < 2 * noise)  # rows unchanged
    np.testing.assert_allclose(same["cluster-concentration"], 1.0)
    blurred = np.clip(src.sample(50, S(3, "a")) + 0.05, 0, 1)
    assert np.all(im.distribution_difference(None, blurred, info=src.info)["cluster-concentration"] < 0.5)


def test_digit_metrics_separate_real_from_collapsed(features, cache_dir):
    cache = str(cache_dir)
    src = DigitsSource()
    ref, smp = src.sample(400, S(2, "ref")), src.sample(400, S(2, "smp"))
    ones = DigitsSource(DigitsSource.Options(classes=(1,))).sample(400, S(2, "ones"))
    kw = {"info": src.info, "cache_dir": cache}
    fd_real, fd_ones = im.digit_frechet(ref, smp, **kw)["digit-frechet"], im.digit_frechet(ref, ones, **kw)["digit-frechet"]
    assert np.all(fd_ones > 10 * fd_real)
    cd = im.class_distribution(ref, ones, **kw)
    assert np.all(cd["class-distribution"] > 0.8) and np.all(cd["class-entropy"] < 0.3)
    cd_real = im.class_distribution(ref, smp, **kw)
    # two independent samples of 400: E TV ≈ ½ Σ_k sqrt(2/π · 2 p_k (1 − p_k) / 400) ≈ 0.085 for p_k ≈ 0.1; allow 2x
    assert np.all(cd_real["class-distribution"] < 0.17) and np.all(cd_real["class-entropy"] > 2.2)
    pr_real, pr_ones = im.digit_precision_recall(ref, smp, **kw), im.digit_precision_recall(ref, ones, **kw)
    assert np.all(pr_real["digit-recall"] > 0.6) and np.all(pr_real["digit-precision"] > 0.6)
    assert np.all(pr_ones["digit-recall"] < 0.3)


def test_metric_option_errors():
    with pytest.raises(ConfigError, match="metrics.variability"):
        im.variability(np.zeros((1, 3, 4)), np.zeros((1, 3, 4)), bins=3)
    with pytest.raises(ConfigError, match="image source"):
        im.distribution_difference(None, np.zeros((1, 3, 5)), info=None)


def test_save_grid(tmp_path):
    import matplotlib.image as mpimg

    x = np.random.default_rng(0).random((10, 24))
    path = im.save_grid(x, (4, 6), tmp_path / "g" / "grid.png", ncols=5)
    img = mpimg.imread(path)
    scale = -(-400 // (5 * 7 + 1))
    assert img.shape[:2] == ((2 * 5 + 1) * scale, (5 * 7 + 1) * scale)


def test_sample_grids_per_generation_do_not_change_the_numbers(tmp_path):
    import matplotlib.image as mpimg

    import autophagy

    cfg = {"name": "grids", "seed": 3, "replicates": 2, "generations": 2,
           "data": {"source": "binomial-grid", "size": 8, "cluster": 2},
           "model": {"family": "kde", "bandwidth": 0.05}, "loop": {"policy": "replace", "n_real": 30},
           "metrics": {"use": ["variability"], "n_eval": 20, "n_heldout": 20, "grid_samples": 9}}
    res = autophagy.run(cfg, out=tmp_path / "a")
    run_id = res.runs.run_id[0]
    grid_dir = tmp_path / "a" / "grids" / run_id
    assert sorted(p.name for p in grid_dir.iterdir()) == ["gen0000.png", "gen0001.png", "gen0002.png", "real.png"]
    img = mpimg.imread(grid_dir / "gen0002.png")
    assert img.shape[0] == img.shape[1] and img.shape[0] >= 400  # 3 x 3 mosaic of 8 x 8 images, upscaled
    off = autophagy.run({**cfg, "metrics": {**cfg["metrics"], "grid_samples": 0}}, out=tmp_path / "b")
    assert not (tmp_path / "b" / "grids").exists()
    np.testing.assert_array_equal(res.metrics.value.to_numpy(), off.metrics.value.to_numpy())
    assert not any(tmp_path.glob("**/.*.tmp.png"))
