"""The n-gram replace loop with a fixed context distribution, as per-context Wright–Fisher chains.

Setting (the exact case): a bigram model (``ngram``, order 2, add-alpha with α = 0: the MLE) on
``markov-text`` sequences of T = 2 tokens from an order-1 source (context law μ, transitions
P(j | c)), replace policy, λ = 1, and ``model.start: source``: every synthetic generation's first
tokens are the source's contexts in fixed numbers n_c = largest remainder of n_s·μ_c. Then, for
each context c, the next-token counts (C_{c,1..V}) follow the neutral Wright–Fisher model with
population n_c (Shumailov et al. 2024 §3.1 for one context; the categorical chain of
``theory.categorical``), and the contexts do not interact. Facts used:

* generation 0 (real data): n_c ~ Binomial(n_0, μ_c) and C_{cj} | n_c ~ Binomial(n_c, P(j|c)), so
  p̂_0(j|c) = C_{cj}/n_c has an exactly computable law (a mixture over n_c);
* generation 1: C_{cj} | p̂_0 ~ Binomial(n_c, p̂_0(j|c)); generation g ≥ 2: the (n_c + 1)-state
  Wright–Fisher matrix (``categorical.transition_matrix``);
* every recorded ``param.*`` metric is a sum of functions of one count: ``ngram_support`` =
  Σ_{c,j} 1[C_{cj} > 0] (support loss: an n-gram lost is never regained), ``mean_context_entropy``
  = (1/V) Σ_c Σ_j −p̂ log p̂; so their expectations are exact from the marginals;
* fixation: within context c, token j eventually takes over with probability E p̂_0(j|c) = P(j|c)
  (Kimura 1962; the martingale argument), and the support tends to V contexts × 1 token.

One approximation, negligible by construction: a context unseen at generation 0 (probability
(1 − μ_c)^{n_0}) backs off to the unigram law; ``replace_metrics`` raises if that probability
exceeds 1e-6.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import binom

from .categorical import transition_matrix


def _plogp(p):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, -p * np.log(p), 0.0)


def context_counts(mu: np.ndarray, n: int) -> np.ndarray:
    """Fixed contexts per generation: the largest remainder of n·μ (as ``models.ngram`` draws them)."""
    exact = n * np.asarray(mu, dtype=float)
    c = np.floor(exact).astype(np.int64)
    c[np.argsort(-(exact - c), kind="stable")[: n - c.sum()]] += 1
    return c


def _generation0(mu_c: float, p: float, n0: int) -> tuple[np.ndarray, np.ndarray]:
    """Values and probabilities of p̂_0 = C/N, N ~ Bin(n0, μ_c) (N ≥ 1), C | N ~ Bin(N, p)."""
    N = np.arange(1, n0 + 1)
    wN = binom.pmf(N, n0, mu_c)
    keep = wN > 1e-16
    vals, probs = [], []
    for Nv, w in zip(N[keep], wN[keep]):
        a = np.arange(Nv + 1)
        vals.append(a / Nv)
        probs.append(w * binom.pmf(a, Nv, p))
    vals, probs = np.concatenate(vals), np.concatenate(probs)
    return vals, probs / probs.sum()


def replace_metrics(mu, trans, n_initial: int, n_synthetic: int, generations: int) -> dict[str, np.ndarray]:
    """Exact E of ``ngram_support`` and ``mean_context_entropy`` for g = 0..G (each ``(G+1,)``)."""
    mu, trans = np.asarray(mu, dtype=float), np.asarray(trans, dtype=float)
    V = mu.size
    unseen = (1 - mu) ** n_initial
    if unseen.max() > 1e-6:
        raise ValueError(f"a context is unseen at generation 0 with probability {unseen.max():.2g} > 1e-6: "
                         "raise loop.n_initial (the chain would back off to the unigram law)")
    nc = context_counts(mu, n_synthetic)
    if (nc < 1).any():
        raise ValueError("every context needs at least one synthetic sequence (n_synthetic·μ_c ≥ 1/2)")
    support = np.zeros(generations + 1)
    entropy = np.zeros(generations + 1)
    for c in range(V):
        P = transition_matrix(int(nc[c]), int(nc[c])) if generations >= 2 else None
        phat = np.arange(nc[c] + 1) / nc[c]
        for j in range(V):
            vals, probs = _generation0(mu[c], trans[c, j], n_initial)
            support[0] += probs[vals > 0].sum()
            entropy[0] += (probs * _plogp(vals)).sum() / V
            if generations == 0:
                continue
            dist = probs @ binom.pmf(np.arange(nc[c] + 1)[None, :], nc[c], vals[:, None])  # (n_c + 1,)
            for g in range(1, generations + 1):
                if g > 1:
                    dist = dist @ P
                support[g] += 1 - dist[0]
                entropy[g] += (dist * _plogp(phat)).sum() / V
    return {"ngram_support": support, "mean_context_entropy": entropy}


def predict_hook(cfg, info, lineage, out, omitted, family_options, no_closed_form) -> None:
    """``theory.predict``'s branch for ``model.family: ngram`` (see the module docstring for the conditions)."""
    o = family_options
    truth = info.truth or {}
    need = {"model.order": (o.order, 2), "model.smoothing": (o.smoothing, "add-alpha"), "model.alpha": (o.alpha, 0.0),
            "model.start": (o.start, "source"), "loop.policy": (cfg.loop.policy, "replace"),
            "loop.synthetic_from": (cfg.loop.synthetic_from, "last"), "sampling.bias": (cfg.sampling.bias, 1.0),
            "data.order": (truth.get("order"), 1), "data.seq_len": (info.seq_len, 2)}
    for field, (value, wanted) in need.items():
        if value != wanted:
            raise no_closed_form(f"the n-gram chain needs {field} = {wanted!r} (got {value!r})")
    if cfg.sampling.decoding_set or cfg.curation or cfg.correction or lineage != "loop" or cfg.loop.scheduled:
        raise no_closed_form("the n-gram chain needs plain ancestral sampling, no curation or correction, the loop "
                             "lineage and constant sizes")
    try:
        out.update(replace_metrics(truth["init"], truth["trans"], cfg.loop.initial, cfg.loop.synthetic, cfg.generations))
    except ValueError as exc:
        raise no_closed_form(str(exc)) from None
    omitted["unigram_support"] = "the start token is the source's (not a chain)"
