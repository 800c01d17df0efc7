"""Conformance suite for model families: ``check_family(family, data, info)``.

Every built-in family passes it, and a third-party family should too (call it from your own
tests). It checks the contract the engine relies on (``autophagy.protocols``):

* shapes: ``fit`` on ``(R, n, d)`` data, ``sample(m)`` -> ``(R, m, d)`` (integer tokens for integer data);
  the training data are not modified;
* determinism: the same ``Streams`` give identical models and samples; sampling does not change the model;
* replicate independence: replicate r's results depend only on its training set and its own streams —
  fitting R = 70 replicates and R = 3 gives identical first three replicates, replacing the other
  replicates' training sets changes nothing for replicate 0, and two replicates with the same training
  set still draw different samples;
* sampling bias: λ < 1 lowers the samples' total variance (vectors) or empirical entropy (tokens)
  on average over replicates; omitting ``bias`` means λ = 1;
* ``param_metrics(info)``: ``(R,)`` finite arrays under names without the ``param.`` prefix;
* ``log_prob`` (when the model has one): ``(R, n)``, finite on the training data, never NaN on samples;
* warm start: ``fit(data, streams, init=model)`` returns a model of the same shape.

Failures raise ``AssertionError`` with a message naming the check (never a bare ``assert``, so the
suite also works under ``python -O``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .protocols import SourceInfo
from .rng import Streams

__all__ = ["check_family"]


def _check(ok: Any, message: str) -> None:
    if not bool(ok):
        raise AssertionError(f"check_family: {message}")


def _fit(family, data: np.ndarray, seed: int, init=None):
    return family.fit(data, Streams(seed, data.shape[0], 0, "fit"), init=init)


def _sample(model, m: int, R: int, seed: int, generation: int = 1, **kw) -> np.ndarray:
    return np.asarray(model.sample(m, Streams(seed, R, generation, "sample"), **kw))


def _spread(x: np.ndarray, categorical: bool) -> np.ndarray:
    """Per-replicate diversity ``(R,)``: total variance of vectors, empirical entropy (nats) of tokens."""
    if not categorical:
        return x.astype(float).var(axis=1).sum(-1)
    out = np.empty(x.shape[0])
    for r, tokens in enumerate(x[..., 0]):
        freq = np.unique(tokens, return_counts=True)[1] / tokens.size
        out[r] = -(freq * np.log(freq)).sum()
    return out


def _same_outputs(a, b, rows: slice, info: SourceInfo, m: int, sizes: tuple[int, int], seed: int, where: str) -> None:
    """Replicates ``rows`` of models ``a`` and ``b`` (R = ``sizes``) must give identical samples, param_metrics
    and log-densities."""
    xa, xb = _sample(a, m, sizes[0], seed), _sample(b, m, sizes[1], seed)
    _check(np.array_equal(xa[rows], xb[rows]), f"{where}: samples differ")
    pa, pb = a.param_metrics(info), b.param_metrics(info)
    _check(set(pa) == set(pb), f"{where}: param_metrics keys differ ({sorted(pa)} vs {sorted(pb)})")
    for k in pa:
        _check(np.array_equal(np.asarray(pa[k])[rows], np.asarray(pb[k])[rows], equal_nan=True),
               f"{where}: param_metrics[{k!r}] differ")
    if hasattr(a, "log_prob"):
        _check(np.array_equal(np.asarray(a.log_prob(xa))[rows], np.asarray(b.log_prob(xb))[rows], equal_nan=True),
               f"{where}: log_prob differs")


def check_family(family, data: np.ndarray, info: SourceInfo, *, bias: float = 0.5, m: int = 50,
                 m_bias: int = 400, big: int = 70, seed: int = 0):
    """Run the conformance checks on ``family`` with training sets ``data (R, n, d)`` (R >= 3 recommended).

    ``bias`` is the λ < 1 used by the sampling-bias check; ``m`` samples per replicate are drawn for the
    shape/determinism checks and ``m_bias`` for the bias check; ``big`` (> 64, so that two seed-tree
    blocks are used) is the replicate count compared with R = 3 (lower it only for expensive families).
    Returns the model fitted on ``data``.
    """
    data = np.asarray(data)
    _check(data.ndim == 3, f"data must have shape (R, n, d), got {data.shape}")
    _check(0 < bias < 1, f"bias must lie in (0, 1) for the sampling-bias check, got {bias}")
    R, n, d = data.shape
    categorical = np.issubdtype(data.dtype, np.integer)
    _check(getattr(family, "batched", False) is True, "the family must set the class attribute batched = True")

    # shapes, and the training data are left alone
    before = data.copy()
    model = _fit(family, data, seed)
    _check(np.array_equal(data, before), "fit modified its training data in place")
    x = _sample(model, m, R, seed)
    _check(x.shape == (R, m, d), f"sample({m}) returned shape {x.shape}, expected {(R, m, d)}")
    if categorical:
        _check(np.issubdtype(x.dtype, np.integer), f"token data must sample integer tokens, got dtype {x.dtype}")
    else:
        _check(np.issubdtype(x.dtype, np.floating) and np.isfinite(x).all(), "samples must be finite floats")

    # determinism: same streams, same numbers; sampling leaves the model unchanged
    again = _fit(family, before.copy(), seed)
    _check(np.array_equal(_sample(again, m, R, seed), x), "fit + sample with identical Streams gave different samples")
    _check(np.array_equal(_sample(model, m, R, seed), x), "sampling twice with identical Streams gave different samples")
    _check(np.array_equal(_sample(model, m, R, seed, bias=1.0), x), "sample(m, streams) and sample(..., bias=1.0) differ")

    # replicate independence
    _check(big > 3, f"big must exceed 3, got {big}")
    idx = np.arange(big) % R
    many, few = _fit(family, data[idx], seed), _fit(family, data[idx[:3]], seed)
    _same_outputs(many, few, slice(0, 3), info, m, (big, 3), seed, f"R = {big} vs R = 3 (first three replicates)")
    xb = _sample(many, m, big, seed)
    if big > R:
        _check(not np.array_equal(xb[0], xb[R]), f"replicates 0 and {R} (same training set) drew identical samples: "
               "each replicate needs its own streams")
    if R > 1:
        others = data[np.r_[0, np.arange(R - 1, 0, -1)]].copy()
        others[1:] = others[1:][:, ::-1]  # every other replicate gets another (reversed) training set
        swapped = _fit(family, others, seed)
        _same_outputs(swapped, model, slice(0, 1), info, m, (R, R), seed,
                      "replicate 0 after changing the other replicates' data")

    # sampling bias lowers diversity on average
    unbiased = _spread(_sample(model, m_bias, R, seed, generation=2), categorical).mean()
    biased = _spread(_sample(model, m_bias, R, seed, generation=2, bias=bias), categorical).mean()
    what = "entropy" if categorical else "total variance"
    _check(biased < unbiased,
           f"bias = {bias} did not lower the samples' mean {what} ({biased:.4g} vs {unbiased:.4g} at bias 1)")

    # param metrics
    metrics = model.param_metrics(info)
    _check(isinstance(metrics, dict), f"param_metrics must return a dict, got {type(metrics).__name__}")
    for k, v in metrics.items():
        _check(isinstance(k, str) and not k.startswith("param."), f"param_metrics key {k!r}: use names without 'param.'")
        v = np.asarray(v)
        _check(v.shape == (R,), f"param_metrics[{k!r}] has shape {v.shape}, expected ({R},)")
        _check(np.isfinite(v.astype(float)).all(), f"param_metrics[{k!r}] is not finite: {v}")

    # log-density
    if hasattr(model, "log_prob"):
        lp = np.asarray(model.log_prob(data))
        _check(lp.shape == (R, n), f"log_prob(training data) has shape {lp.shape}, expected {(R, n)}")
        _check(np.isfinite(lp).all(), "log_prob is not finite on the training data")
        _check(not np.isnan(np.asarray(model.log_prob(x))).any(), "log_prob of the model's own samples is NaN")

    # warm start
    warm = family.fit(data, Streams(seed, R, 1, "fit"), init=model)
    xw = _sample(warm, m, R, seed, generation=3)
    _check(xw.shape == (R, m, d), f"fit(..., init=model) gave a model sampling shape {xw.shape}, expected {(R, m, d)}")
    return model
