"""The real-data sources (autophagy.data): shapes, streams discipline, moments against each
source's published truth (tolerances of 4 Monte-Carlo standard errors), the fixed regression
design, the file reader and its one-line errors, and option validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from autophagy import api, components
from autophagy.config import load_config
from autophagy.errors import ConfigError, DataError
from autophagy.protocols import Source
from autophagy.rng import Streams

VECTOR_SOURCES = {
    "gaussian": {"mean": [1.0, -1.0], "cov": [[2.0, 0.6], [0.6, 1.0]]},
    "mixture": {},
    "moons": {},
    "circles": {},
    "swiss-roll": {"dim": 3, "noise": 0.5},
    "blobs": {"centers": 4, "dim": 3},
    "categorical": {"size": 7},
    "linear-regression": {"dim": 3, "noise_std": 0.5},
}


def make(name, **options):
    cls = components.resolve("source", name, "data.source")
    return cls(cls.Options(**options))


def assert_moments(x, mean, cov, k=4.0):
    """Sample mean and E[(x−μ)(x−μ)ᵀ] of ``x (N, d)`` within k standard errors of ``mean`` and ``cov``."""
    x = np.asarray(x, dtype=float).reshape(-1, len(mean))
    N = len(x)
    se = x.std(axis=0) / math.sqrt(N)
    assert np.all(np.abs(x.mean(0) - mean) < k * se), (x.mean(0), mean, se)
    c = x - mean  # centred at the true mean: the product's expectation is exactly cov
    prod = c[:, :, None] * c[:, None, :]
    se = prod.std(axis=0) / math.sqrt(N)
    assert np.all(np.abs(prod.mean(0) - cov) < k * se), (prod.mean(0), cov, se)


@pytest.fixture
def npy_file(tmp_path):
    x = np.arange(30.0).reshape(10, 3) ** 1.5
    np.save(tmp_path / "x.npy", x)
    return tmp_path, x


def all_sources(tmp_path):
    out = {name: make(name, **opts) for name, opts in VECTOR_SOURCES.items()}
    np.save(tmp_path / "pool.npy", np.arange(40.0).reshape(20, 2))
    out["file"] = make("file", path=str(tmp_path / "pool.npy"))
    return out


# --------------------------------------------------------------------------- all sources
def test_shapes_dtypes_determinism_and_replicate_independence(tmp_path):
    for name, src in all_sources(tmp_path).items():
        assert isinstance(src, Source), name
        a = src.sample(50, Streams(3, 3, -1, "data"))
        categorical = src.info.kind == "categorical"
        assert a.shape == (3, 50, src.info.dim), name
        assert a.dtype == (np.int64 if categorical else np.float64), name
        np.testing.assert_array_equal(a, src.sample(50, Streams(3, 3, -1, "data")), err_msg=name)
        big = src.sample(50, Streams(3, 70, -1, "data"))
        np.testing.assert_array_equal(a, big[:3], err_msg=name)
        assert not np.array_equal(a, src.sample(50, Streams(4, 3, -1, "data"))), name
        assert not np.array_equal(a[0], a[1]), name  # replicates are independent chains


def test_every_source_declares_frozen_options():
    from autophagy.options import Options

    for name in [*VECTOR_SOURCES, "file"]:
        cls = components.resolve("source", name, "data.source")
        assert issubclass(cls.Options, Options), name
        assert components.SOURCES[name].startswith("autophagy.data."), name


# --------------------------------------------------------------------------- gaussian
def test_gaussian_moments_and_truth():
    src = make("gaussian", **VECTOR_SOURCES["gaussian"])
    truth = src.info.truth
    assert truth["gaussian"] is True and src.info.dim == 2
    np.testing.assert_allclose(truth["cov"], [[2.0, 0.6], [0.6, 1.0]])
    assert_moments(src.sample(5000, Streams(0, 4, -1, "data")), truth["mean"], truth["cov"])


def test_gaussian_defaults_and_dimension_inference():
    src = make("gaussian")
    assert src.info.dim == 2
    np.testing.assert_array_equal(src.info.truth["cov"], np.eye(2))
    src = make("gaussian", mean=[0.0, 1.0, 2.0], std=[1.0, 2.0, 3.0])
    assert src.info.dim == 3
    np.testing.assert_allclose(src.info.truth["cov"], np.diag([1.0, 4.0, 9.0]))
    assert_moments(src.sample(4000, Streams(1, 4, -1, "data")), [0.0, 1.0, 2.0], np.diag([1.0, 4.0, 9.0]))
    src = make("gaussian", dim=4, mean=0.5, std=0.1)
    np.testing.assert_allclose(src.info.truth["mean"], np.full(4, 0.5))


# --------------------------------------------------------------------------- mixtures
def test_mixture_ring_grid_layouts():
    ring = make("mixture", n_components=6, radius=3.0, std=0.1)
    w, means, covs = ring.info.truth["components"]
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 3.0)
    np.testing.assert_allclose(w, np.full(6, 1 / 6))
    # a ring of K >= 3 equal-weight modes: Cov = (σ² + r²/2) I, mean 0
    np.testing.assert_allclose(ring.info.truth["cov"], (0.01 + 4.5) * np.eye(2), atol=1e-12)
    assert ring.info.truth["gaussian"] is False
    grid = make("mixture", layout="grid", grid_size=3, spacing=2.0)
    _, means, covs = grid.info.truth["components"]
    assert means.shape == (9, 2) and covs.shape == (9, 2, 2)
    assert sorted(set(means.ravel())) == [-2.0, 0.0, 2.0]
    assert_moments(grid.sample(5000, Streams(2, 4, -1, "data")), grid.info.truth["mean"], grid.info.truth["cov"])


def test_imbalanced_mixture_weights_and_moments():
    src = make("mixture", layout="custom", means=[[0.0, 0.0, 0.0], [4.0, 0.0, 1.0], [0.0, -3.0, 2.0]],
               std=[0.5, 1.0, 0.2], imbalance=0.3)
    w, means, covs = src.info.truth["components"]
    np.testing.assert_allclose(w, np.array([1, 0.3, 0.09]) / 1.39)
    x, k = src.sample_labeled(5000, Streams(5, 4, -1, "data"))
    np.testing.assert_array_equal(x, src.sample(5000, Streams(5, 4, -1, "data")))
    N = k.size
    freq = np.bincount(k.ravel(), minlength=3) / N
    assert np.all(np.abs(freq - w) < 4 * np.sqrt(w * (1 - w) / N)), (freq, w)
    assert_moments(x, src.info.truth["mean"], src.info.truth["cov"])
    src = make("mixture", weights=[2, 1, 1, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(src.info.truth["components"][0][0], 2 / 9)


# --------------------------------------------------------------------------- toys
def test_moons_truth_closed_form():
    # t ~ U(0, π): E cos = 0, E sin = 2/π, E cos² = E sin² = 1/2; the classes are equally likely
    truth = make("moons", noise=0.1).info.truth
    np.testing.assert_allclose(truth["mean"], [0.5, 0.25], atol=1e-12)
    var_y = (0.5 + 0.75 - 2 / np.pi) / 2 - 0.25 ** 2
    cov_xy = (0.0 + (0.5 - 2 / np.pi)) / 2 - 0.5 * 0.25  # E[xy]: outer E[cos t sin t] = 0, inner ½ − 2/π
    np.testing.assert_allclose(truth["cov"], [[0.75 + 0.01, cov_xy], [cov_xy, var_y + 0.01]], atol=1e-12)


@pytest.mark.parametrize("name", ["moons", "circles", "swiss-roll", "blobs"])
def test_toy_moments_match_truth(name):
    src = make(name, **VECTOR_SOURCES[name])
    assert_moments(src.sample(5000, Streams(6, 4, -1, "data")), src.info.truth["mean"], src.info.truth["cov"])


def test_toy_labels_and_swiss_roll_scale():
    x, y = make("circles", noise=0.0, factor=0.3).sample_labeled(200, Streams(0, 2, -1, "data"))
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), np.where(y == 1, 0.3, 1.0))
    roll = make("swiss-roll").sample(500, Streams(0, 2, -1, "data"))
    radius = np.linalg.norm(roll, axis=-1)  # noise-free spiral: |x| = 0.1 t, t in [1.5π, 4.5π]
    assert radius.min() >= 0.15 * np.pi - 1e-12 and radius.max() <= 0.45 * np.pi + 1e-12


def test_blob_centres_are_fixed_by_the_options():
    a, b = make("blobs", centers=5), make("blobs", centers=5)
    centres = a.info.truth["components"][1]
    np.testing.assert_array_equal(centres, b.info.truth["components"][1])
    assert centres.shape == (5, 2) and np.all(np.abs(centres) <= 10)
    assert not np.array_equal(centres, make("blobs", centers=5, center_seed=1).info.truth["components"][1])
    given = make("blobs", centers=[[0.0, 0.0, 1.0], [5.0, 5.0, 5.0]], cluster_std=[0.1, 0.2])
    assert given.info.dim == 3
    x, k = given.sample_labeled(300, Streams(1, 2, 4, "data"))
    assert np.all(np.abs(x - given.means[k]).max(-1) < 5 * given.stds[k])


# --------------------------------------------------------------------------- categorical
def test_categorical_frequencies_and_zero_probability():
    p = np.array([0.5, 0.3, 0.0, 0.2])
    src = make("categorical", probs=p.tolist())
    assert src.info.kind == "categorical" and src.info.n_categories == 4 and src.info.dim == 1
    x = src.sample(5000, Streams(0, 4, -1, "data"))
    assert x.dtype == np.int64 and x.shape == (4, 5000, 1)
    freq = np.bincount(x.ravel(), minlength=4) / x.size
    assert freq[2] == 0
    se = np.sqrt(p * (1 - p) / x.size)
    assert np.all(np.abs(freq - p) <= 4 * se), (freq, p)


def test_categorical_zipf():
    src = make("categorical", exponent=1.5, size=20)
    p = src.info.truth["probs"]
    np.testing.assert_allclose(p, np.arange(1, 21) ** -1.5 / (np.arange(1, 21) ** -1.5).sum())
    assert make("categorical").info.n_categories == 100
    x = src.sample(5000, Streams(1, 4, -1, "data")).ravel()
    assert x.min() >= 0 and x.max() < 20
    freq = np.bincount(x, minlength=20) / x.size
    assert np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / x.size) + 1e-12)


# --------------------------------------------------------------------------- regression
def test_regression_design_is_fixed_and_noise_has_the_right_variance():
    src = make("linear-regression", dim=4, noise_std=0.7, design_std=2.0, w=[1.0, -1.0, 0.5, 0.0])
    info = src.info
    assert info.kind == "regression" and info.dim == 5 and info.truth["n_features"] == 4
    np.testing.assert_array_equal(info.truth["w"], [1.0, -1.0, 0.5, 0.0])
    a = src.sample(300, Streams(9, 3, -1, "data"))
    b = src.sample(40, Streams(9, 3, 5, "heldout"))
    assert a.shape == (3, 300, 5)
    np.testing.assert_array_equal(a[:, :40, :4], b[..., :4])  # same design rows, prefix of a longer draw
    assert not np.array_equal(a[:, :40, 4], b[..., 4])  # fresh labels
    # a fresh source object with a different R: replicate 0..2's design is unchanged
    c = make("linear-regression", dim=4, noise_std=0.7, design_std=2.0, w=[1.0, -1.0, 0.5, 0.0])
    np.testing.assert_array_equal(c.sample(300, Streams(9, 70, 2, "data"))[:3, :, :4], a[..., :4])
    x = src.sample(3000, Streams(9, 4, -1, "data"))
    resid = x[..., 4] - x[..., :4] @ info.truth["w"]
    N = resid.size
    assert abs((resid ** 2).mean() - 0.49) < 4 * 0.49 * math.sqrt(2 / N)
    assert abs(x[..., :4].var() - 4.0) < 4 * 4.0 * math.sqrt(2 / x[..., :4].size) + 0.05
    assert not np.array_equal(x[0, :, :4], x[1, :, :4])  # each replicate has its own design


def test_regression_default_weights():
    src = make("linear-regression")
    assert src.info.dim == 11
    np.testing.assert_allclose(np.linalg.norm(src.info.truth["w"]), 1.0)


# --------------------------------------------------------------------------- files
def test_npy_round_trip_relative_path_and_bootstrap(npy_file):
    from autophagy.data.files import FileSource

    folder, x = npy_file
    src = FileSource(FileSource.Options(path="x.npy"), base_dir=folder)
    np.testing.assert_array_equal(src.pool, x)
    np.testing.assert_allclose(src.info.truth["mean"], x.mean(0))
    np.testing.assert_allclose(src.info.truth["cov"], np.cov(x.T, bias=True))
    s = src.sample(4000, Streams(0, 4, -1, "data"))
    assert s.shape == (4, 4000, 3)
    assert np.all((s[..., None, :] == x).all(-1).any(-1))  # every row is a row of the file
    counts = np.bincount(((s[..., 0:1] == x[:, 0]).argmax(-1)).ravel(), minlength=10) / s[..., 0].size
    assert np.all(np.abs(counts - 0.1) < 4 * math.sqrt(0.09 / s[..., 0].size))
    cols = FileSource(FileSource.Options(path="x.npy", columns=[2, 0]), base_dir=folder)
    np.testing.assert_array_equal(cols.pool, x[:, [2, 0]])


def test_npz_and_csv_round_trip(tmp_path):
    from autophagy.data.files import FileSource

    x = np.random.default_rng(0).normal(size=(12, 2))
    np.savez(tmp_path / "one.npz", data=x)
    np.testing.assert_array_equal(FileSource(FileSource.Options(path=str(tmp_path / "one.npz"))).pool, x)
    np.savez(tmp_path / "two.npz", a=x, b=x[:, :1])
    np.testing.assert_array_equal(FileSource(FileSource.Options(path=str(tmp_path / "two.npz"), key="b")).pool,
                                  x[:, :1])
    with pytest.raises(DataError, match="data.key.*a, b"):
        FileSource(FileSource.Options(path=str(tmp_path / "two.npz")))
    np.savetxt(tmp_path / "plain.csv", x, delimiter=",")
    np.testing.assert_allclose(FileSource(FileSource.Options(path=str(tmp_path / "plain.csv"))).pool, x, rtol=1e-15)
    np.savetxt(tmp_path / "header.csv", x, delimiter=",", header="first,second", comments="")
    src = FileSource(FileSource.Options(path=str(tmp_path / "header.csv"), columns=[1]))
    np.testing.assert_allclose(src.pool, x[:, 1:], rtol=1e-15)
    np.save(tmp_path / "flat.npy", x[:, 0])
    assert FileSource(FileSource.Options(path=str(tmp_path / "flat.npy"))).pool.shape == (12, 1)


def _bad_files(tmp_path):
    def npy(name, a):
        np.save(tmp_path / name, a)
        return name

    def text(name, content):
        (tmp_path / name).write_text(content)
        return name

    nan = np.zeros((10, 2))
    nan[3, 1] = np.nan
    inf = np.zeros((10, 2))
    inf[4, 0] = -np.inf
    return [
        ("missing.npy", "no such file"),
        (text("data.txt", "1,2\n3,4\n"), "unknown extension"),
        (npy("empty.npy", np.zeros((0, 2))), "empty"),
        (text("empty.csv", ""), "empty"),
        (text("header_only.csv", "a,b\n"), "empty"),
        (npy("strings.npy", np.array([["a", "b"], ["c", "d"]])), "non-numeric"),
        (text("words.csv", "x,y\n1,2\n3,abc\n"), "non-numeric value 'abc'"),
        (npy("nan.npy", nan), "1 NaN"),
        (npy("inf.npy", inf), "1 inf value(s) in 1 row(s) (first: row 4)"),
        (text("nan.csv", "1,2\n3,\n5,6\n"), "NaN or missing"),
        (npy("cube.npy", np.zeros((4, 3, 2))), "3 dims"),
        (npy("one_row.npy", np.zeros((1, 3))), "at least 2 rows, found 1"),
        (text("garbage.npy", "not numpy"), "not a readable .npy"),
    ]


def test_bad_files_raise_one_line_data_errors(tmp_path):
    from autophagy.data.files import FileSource

    for name, problem in _bad_files(tmp_path):
        with pytest.raises(DataError) as err:
            FileSource(FileSource.Options(path=name), base_dir=tmp_path)
        msg = str(err.value)
        assert msg.startswith("data.path") and problem in msg and name in msg, (name, msg)
        assert "\n" not in msg


def test_bad_columns(npy_file):
    from autophagy.data.files import FileSource

    folder, _ = npy_file
    with pytest.raises(DataError, match="data.columns"):
        FileSource(FileSource.Options(path="x.npy", columns=[3]), base_dir=folder)


# --------------------------------------------------------------------------- options
BAD_OPTIONS = [
    ("gaussian", {"cov": [[1.0, 2.0], [2.0, 1.0]]}, "data.cov", "positive definite"),
    ("gaussian", {"cov": [[1.0, 0.5], [0.0, 1.0]]}, "data.cov", "symmetric"),
    ("gaussian", {"cov": [[1.0, 0.0]]}, "data.cov", "square"),
    ("gaussian", {"cov": [[1.0, 0.0], [0.0, 1.0]], "std": 1.0}, "data.std", "not both"),
    ("gaussian", {"dim": 3, "mean": [0.0, 1.0]}, "data.mean", "length 3"),
    ("gaussian", {"dim": 0}, "data.dim", ""),
    ("gaussian", {"std": -1.0}, "data.std", ""),
    ("gaussian", {"colour": 1}, "data.colour", "unknown option"),
    ("gaussian", {"mean": "x"}, "data.mean", "finite number"),
    ("mixture", {"std": [0.1, -1.0] + [0.1] * 6}, "data.std", "positive number"),
    ("blobs", {"centers": 0}, "data.centers", "positive integer"),
    ("blobs", {"centers": [[0.0, 1.0], [1.0, "a"]]}, "data.centers", "K x d"),
    ("mixture", {"layout": "custom"}, "data.means", ""),
    ("mixture", {"layout": "hexagon"}, "data.layout", ""),
    ("mixture", {"layout": "grid", "n_components": 5}, "data.n_components", "layout: ring"),
    ("mixture", {"weights": [1.0, 2.0]}, "data.weights", "K = 8"),
    ("mixture", {"weights": [1.0] * 7 + [0.0]}, "data.weights", "positive"),
    ("mixture", {"weights": [1.0] * 8, "imbalance": 0.5}, "data.imbalance", "not both"),
    ("mixture", {"imbalance": 1.5}, "data.imbalance", ""),
    ("mixture", {"std": [0.1, 0.2]}, "data.std", "K = 8"),
    ("mixture", {"layout": "custom", "means": [[0.0, 0.0], [1.0]]}, "data.means", ""),
    ("moons", {"noise": -1}, "data.noise", ""),
    ("circles", {"factor": 1.0}, "data.factor", ""),
    ("swiss-roll", {"dim": 4}, "data.dim", ""),
    ("blobs", {"centers": [[0.0, 0.0], [1.0]]}, "data.centers", ""),
    ("blobs", {"center_box": [1.0, -1.0]}, "data.center_box", ""),
    ("blobs", {"centers": 2, "cluster_std": [1.0, 2.0, 3.0]}, "data.cluster_std", "K = 2"),
    ("categorical", {"probs": [0.5, 0.4]}, "data.probs", "sums to 0.9"),
    ("categorical", {"probs": [1.2, -0.2]}, "data.probs", "non-negative"),
    ("categorical", {"probs": [0.5, 0.5], "size": 2}, "data.size", "unset"),
    ("categorical", {"exponent": 0}, "data.exponent", ""),
    ("linear-regression", {"dim": 3, "w": [1.0, 2.0]}, "data.w", "data.dim = 3"),
    ("linear-regression", {"noise_std": 0}, "data.noise_std", ""),
    ("file", {}, "data.path", ""),
]


@pytest.mark.parametrize("name,options,field,text", BAD_OPTIONS)
def test_bad_options_are_one_line_config_errors(name, options, field, text):
    cls = components.resolve("source", name, "data.source")
    with pytest.raises((ValidationError, ConfigError)):
        cls.Options(**options)
    cfg, _ = load_config({"data": {"source": name, **options}})
    with pytest.raises(ConfigError) as err:
        api.build_source(cfg)
    msg = str(err.value)
    assert msg.startswith(field) and text in msg and "\n" not in msg, msg
