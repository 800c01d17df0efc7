"""Sample-based metrics: pure functions of held-out real data, a generation's samples and (optionally)
the fitted model, each returning one value per replicate.

One module per kind of metric, each ending in a ``METRICS`` tuple of ``Metric`` records that declare
the data kinds a metric applies to, the model capabilities it needs and its options model:

* ``samples``: two-sample distances and k-NN/kernel measures on vectors (wasserstein-1d,
  sliced-wasserstein, frechet, mmd, prd, vendi);
* ``histograms``: tv and kl, on vectors (binned) and categorical tokens;
* ``density``: heldout-nll and density-tv, read from the model's density;
* ``spread``: variance-ratio, tail-mass, mode-coverage;
* ``domain``: reward-mean, dynamics-residual; ``images``: Tarchi's image metrics and digit features;
  ``text``: token-sequence metrics.

``base`` holds the record and the signature, ``registry`` the table (built-ins and the
``autophagy.metrics`` entry points), the checks before the first fit and ``compute``. Options are
validated by the record's pydantic model; bad ones raise ``ConfigError`` naming ``metrics.<name>.<option>``.
"""
from .base import Metric, NoOptions, parse
from .density import density_tv, heldout_nll
from .histograms import kl, tv
from .registry import (BUILTIN, GROUP, METRICS, OPTIONS, TRADEOFF_PRD_MAX_DIM, _check_names, check_applicable,
                       compute, lookup, names, parse_options, with_tradeoff)
from .samples import frechet, mmd, prd, sliced_wasserstein, vendi, wasserstein_1d
from .spread import mode_coverage, tail_mass, variance_ratio

__all__ = ["Metric", "NoOptions", "parse", "BUILTIN", "GROUP", "METRICS", "OPTIONS", "TRADEOFF_PRD_MAX_DIM",
           "check_applicable", "compute", "lookup", "names", "parse_options", "with_tradeoff", "density_tv",
           "heldout_nll", "kl", "tv", "frechet", "mmd", "prd", "sliced_wasserstein", "vendi", "wasserstein_1d",
           "mode_coverage", "tail_mass", "variance_ratio"]
