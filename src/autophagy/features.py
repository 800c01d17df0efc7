"""A small digit feature network trained inside the project, so image metrics work offline.

FID (Heusel et al. 2017) and precision/recall (Kynkäänniemi et al. 2019) compare images in the
feature space of a trained classifier (Inception-v3 for natural images). Nothing may be
downloaded here, so we train our own on scikit-learn's bundled 8×8 digits (1,797 images):
a multilayer perceptron 64 → 128 → 64 → 10 (ReLU, Adam, fixed ``random_state``, CPU, a few
seconds). ``embed`` returns the last hidden layer (64 features), ``classify`` the softmax.

The weights are cached as ``.npz`` (plain arrays, no pickle) in ``cache_dir`` (default
``~/.cache/autophagy``; the CLI may pass another, e.g. from ``$AUTOPHAGY_CACHE``), and kept in
memory per process. Images of another size are resized to 8×8 (bilinear) and rescaled to
[0, 1] first: the features are only calibrated for digit-like images.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import numpy as np

VERSION = "digits-mlp-v1"  # bump when the architecture or training recipe changes
HIDDEN = (128, 64)
_LOADED: dict[str, "DigitFeatures"] = {}


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "autophagy"


def check_cache_dir(cache_dir, field: str = "metrics.cache_dir") -> Path:
    """A cache folder must stay inside the user cache (``~/.cache/autophagy``) or a ``results/`` folder of
    the working directory: a config cannot make autophagy write anywhere else. Returns the resolved path."""
    from .errors import ConfigError

    path = Path(cache_dir).expanduser()
    path = (path if path.is_absolute() else Path.cwd() / path).resolve()
    roots = [default_cache_dir().resolve(), (Path.cwd() / "results").resolve()]
    if not any(path == r or r in path.parents for r in roots):
        raise ConfigError(field, str(cache_dir), f"a folder inside {roots[0]} or {roots[1]} (caches never go elsewhere)")
    return path


class DigitFeatures:
    """Forward pass of the trained MLP in NumPy. ``weights``/``biases``: one array per layer."""

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], accuracy: float = float("nan")):
        self.weights, self.biases, self.accuracy = weights, biases, accuracy

    def _hidden(self, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, dtype=np.float64)
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = np.maximum(h @ w + b, 0.0)
        return h

    def embed(self, x: np.ndarray) -> np.ndarray:
        """``(n, 64)`` digits in [0, 1] -> ``(n, 64)`` last-hidden-layer features."""
        return self._hidden(_check(x))

    def classify(self, x: np.ndarray) -> np.ndarray:
        """``(n, 64)`` digits in [0, 1] -> ``(n, 10)`` class probabilities."""
        logits = self._hidden(_check(x)) @ self.weights[-1] + self.biases[-1]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def _check(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 64:
        raise ValueError(f"digit features take (n, 64) arrays (8×8 images), got shape {x.shape}")
    return x


def train() -> DigitFeatures:
    """Fit the MLP on all bundled digits (deterministic: ``random_state=0``). Takes a few seconds."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    d = load_digits()
    x, y = d.data / 16.0, d.target
    clf = MLPClassifier(hidden_layer_sizes=HIDDEN, alpha=1e-3, max_iter=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    return DigitFeatures([w.copy() for w in clf.coefs_], [b.copy() for b in clf.intercepts_], float(clf.score(x, y)))


def digit_features(cache_dir: Optional[Path] = None) -> DigitFeatures:
    """The feature network: from memory, else from ``cache_dir/<VERSION>.npz``, else trained and cached."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()  # configs: check_cache_dir at build
    path = cache_dir / f"{VERSION}.npz"
    key = str(path)
    if key in _LOADED:
        return _LOADED[key]
    net = None
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                k = len(HIDDEN) + 1
                net = DigitFeatures([z[f"w{i}"] for i in range(k)], [z[f"b{i}"] for i in range(k)], float(z["accuracy"]))
        except Exception:  # noqa: BLE001 - a corrupt cache is retrained, not fatal
            net = None
    if net is None:
        net = train()
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            arrays = {f"w{i}": w for i, w in enumerate(net.weights)} | {f"b{i}": b for i, b in enumerate(net.biases)}
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, accuracy=net.accuracy, **arrays)
            tmp.replace(path)
        except OSError:  # read-only home: keep the in-memory copy
            pass
    _LOADED[key] = net
    return net


def to_digit_resolution(x: np.ndarray, image_shape: Optional[tuple]) -> np.ndarray:
    """``(n, H*W)`` images -> ``(n, 64)``: bilinear resize to 8×8, clipped to [0, 1]; 8×8 input is returned as is."""
    x = np.asarray(x, dtype=np.float64)
    if image_shape is None or tuple(image_shape) == (8, 8):
        return x
    from scipy.ndimage import zoom

    H, W = image_shape
    small = zoom(x.reshape(-1, H, W), (1, 8 / H, 8 / W), order=1, grid_mode=True, mode="nearest")
    return np.clip(small.reshape(len(x), 64), 0.0, 1.0)


def embed_digits(x: np.ndarray) -> np.ndarray:
    """``(n, 64) -> (n, 64)`` with the default cache: usable as ``frechet``'s ``features`` import path."""
    return digit_features().embed(x)
