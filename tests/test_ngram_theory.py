"""The n-gram replace loop with a fixed context distribution against its per-context Wright–Fisher chains.

Tolerances: |z| <= 4 Monte-Carlo standard errors (fixed seeds).
"""
import numpy as np
import pytest

import autophagy
from autophagy import theory
from autophagy.theory import ngram as ng
from autophagy.theory.predict import NoClosedForm


def chain(**kw):
    cfg = {"seed": 3, "replicates": 400, "generations": 6,
           "data": {"source": "markov-text", "vocab": 6, "order": 1, "seq_len": 2, "exponent": 1.0},
           "model": {"family": "ngram", "order": 2, "start": "source"},
           "loop": {"policy": "replace", "n_real": 300, "n_synthetic": 60}}
    for k, v in kw.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return cfg


def test_ngram_chain_support_and_entropy_match_the_simulator():
    cfg = chain()
    res = autophagy.run(cfg)
    cmp = theory.compare(cfg, res.metrics)
    assert set(cmp.metric) == {"param.ngram_support", "param.mean_context_entropy"}
    assert (np.abs(cmp.z) <= 4).all(), cmp.to_string()
    support = cmp[cmp.metric == "param.ngram_support"].sort_values("generation").expected.to_numpy()
    assert (np.diff(support) < 0).all()  # support is lost and never regained
    assert support[-1] < 0.5 * support[0]


def test_chain_fixes_one_token_per_context():
    """Kimura: each context's chain is absorbed, so the expected support falls to V (one token per context)
    and the mean context entropy to 0; with n_s = n_0 the first step keeps the generation-0 support law."""
    mu = np.array([0.5, 0.3, 0.2])
    trans = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.4, 0.4, 0.2]])
    out = ng.replace_metrics(mu, trans, 400, 20, 400)
    assert abs(out["ngram_support"][-1] - 3) < 1e-3 and out["mean_context_entropy"][-1] < 1e-3
    assert out["ngram_support"][0] == pytest.approx(np.sum(1 - (1 - mu[:, None] * trans) ** 400), rel=1e-9)


def test_predict_refuses_settings_outside_the_chain():
    for bad in ({"model": {"smoothing": "kneser-ney"}}, {"model": {"start": "fit"}}, {"sampling": {"bias": 0.7}},
                {"loop": {"policy": "accumulate"}}, {"data": {"seq_len": 4}}):
        with pytest.raises(NoClosedForm):
            theory.predict(chain(**bad))
