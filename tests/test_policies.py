import numpy as np

from autophagy.policies import POLICIES
from autophagy.rng import Streams


def _parts(R=3, n=4, d=2):
    real = np.zeros((R, n, d))
    synth = np.ones((R, n, d))
    fresh = np.full((R, n, d), 2.0)
    return real, synth, fresh


def test_training_set_composition():
    real, synth, fresh = _parts()
    s = Streams(0, 3, 1, "policy")
    assert POLICIES["replace"].build(real, synth, [synth], fresh, 4, s) is synth
    aug = POLICIES["augment"].build(real, synth, [synth], fresh, 4, s)
    assert aug.shape == (3, 8, 2) and aug[:, :4].sum() == 0 and (aug[:, 4:] == 1).all()
    fr = POLICIES["fresh"].build(real, synth, [synth], fresh, 4, s)
    assert (fr[:, :4] == 2).all() and (fr[:, 4:] == 1).all()
    acc = POLICIES["accumulate"].build(real, synth, [synth, 3 * synth], fresh, 4, s)
    assert acc.shape == (3, 12, 2) and (acc[:, 8:] == 3).all()


def test_accumulate_subsample_draws_without_replacement():
    R, n = 200, 5
    real = np.arange(n, dtype=float)[None, :, None].repeat(R, 0)
    hist = [real + 5, real + 10]
    out = POLICIES["accumulate-subsample"].build(real, hist[-1], hist, None, n, Streams(0, R, 2, "policy"))
    assert out.shape == (R, n, 1)
    vals = out[..., 0]
    assert all(len(set(row)) == n for row in vals)  # no point twice
    # each of the 15 pool points is included with probability 5/15
    incl = np.stack([(vals == v).any(axis=1) for v in range(15)], axis=1).mean(axis=0)
    se = np.sqrt((1 / 3) * (2 / 3) / R)
    assert np.all(np.abs(incl - 1 / 3) < 4.5 * se)
