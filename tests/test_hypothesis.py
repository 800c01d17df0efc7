"""Property-based tests (hypothesis): every config drawn over the documented schema is a valid run or
one clean ``AutophagyError`` line -- never another exception, never a hang (issue 11).

Configs are drawn section by section (name, seed, replicates, generations, data x model x loop x
sampling x metrics x curation x correction, grid, report), mixing valid values with wrong types,
extreme numbers, unicode and unknown keys. Sizes that validate are kept tiny so a valid run costs
milliseconds; extreme sizes must be refused (memory estimate, bounds) before anything runs.

Profiles: the default suite runs ``ci`` (derandomised: the same 1,000 examples every time, about a
minute); ``make test-all`` also runs ``long`` (10,000 random examples). Measured figures: docs/hardening.md.
"""
import math
import signal
import warnings

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import autophagy  # noqa: E402
from autophagy.errors import AutophagyError  # noqa: E402

CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", derandomize=True, max_examples=1000, deadline=None, suppress_health_check=CHECKS,
                          database=None)
settings.register_profile("long", derandomize=False, max_examples=10_000, deadline=None,
                          suppress_health_check=CHECKS, database=None)

EXTREME = st.sampled_from([-1, 0, 1.5, 10**15, 2**63, 1e30, math.inf, -math.inf, math.nan, True, "", "ten",
                           "1e400", None, [], {}, "g ** 99", "ü∂", [1, "a"]])
JUNK = st.one_of(EXTREME, st.text(max_size=8), st.integers(-3, 3), st.floats(allow_nan=True))


def mostly(valid, junk=None, times: int = 6):
    """``valid`` about ``times`` times as often as ``junk``. Drawn through an integer away from the bounds, since
    hypothesis favours simple branches and boundary integers (one_of(valid, junk) gave junk in most configs)."""
    junk = JUNK if junk is None else junk
    return st.integers(0, 100 * times - 1).flatmap(lambda i: junk if i % (4 * times) == 7 else valid)


def small(lo: int, hi: int):
    return mostly(st.integers(lo, hi), EXTREME)


def maybe(strategy):
    return st.one_of(st.just(None), strategy)


SOURCES = ["gaussian", "mixture", "moons", "circles", "swiss-roll", "blobs", "categorical", "linear-regression",
           "projectile", "binomial-grid", "digits", "file", "images", "numpy:array", "no-such", "os:getcwd", "ü"]
FAMILIES = ["gaussian", "kde", "gmm", "categorical", "linear-regression", "numpy:array", "nope", "json:loads"]
POLICIES = ["replace", "augment", "fresh", "accumulate", "accumulate-subsample", "REPLACE", 3]
METRICS = ["wasserstein-1d", "sliced-wasserstein", "frechet", "mmd", "prd", "vendi", "tv", "kl", "heldout-nll",
           "variance-ratio", "mode-coverage", "tail-mass", "density-tv", "reward-mean", "dynamics-residual",
           "digit-frechet", "recal", "", 7]
CURATION = ["top-k", "bottom-k", "random-k", "bradley-terry", "threshold", "denoise", "none", [1]]
CORRECTION = ["reference-mix", "prototype", "knn", "physics", "grid", "project", "histogram-mix", "x"]

OPTION_VALUES = st.one_of(st.integers(-2, 6), st.floats(-2, 3), st.sampled_from(
    ["mle", "unbiased", "diag", "full", "scott", "median", "auto", "distance", "log-likelihood", "even", "ring"]),
    st.lists(st.floats(-2, 2, allow_nan=False), max_size=3), JUNK)
OPTION_KEYS = st.sampled_from(["dim", "noise", "components", "bandwidth", "estimator", "covariance", "k", "oversample",
                               "reward", "target", "gamma", "fraction", "threshold", "temperature", "categories",
                               "smoothing", "size", "cluster", "classes", "path", "n_features", "spacing",
                               "projections", "bins", "radius", "cache_dir", "features", "unknown_key", "ключ"])


def block(name_key: str, names) -> st.SearchStrategy:
    return st.builds(lambda n, o: {name_key: n, **o}, st.sampled_from(names),
                     st.dictionaries(OPTION_KEYS, OPTION_VALUES, max_size=3))


def metric_spec():
    return st.one_of(st.sampled_from(METRICS), st.builds(lambda n, o: {"name": n, **o}, st.sampled_from(METRICS),
                                                         st.dictionaries(OPTION_KEYS, OPTION_VALUES, max_size=2)))


SECTIONS = {
    "name": mostly(st.one_of(st.text(max_size=12), st.sampled_from(["../../x", "/abs", "=HYPERLINK(1)"]))),
    "seed": mostly(st.integers(0, 2**40), EXTREME),
    "replicates": small(1, 3),
    "generations": small(0, 2),
    "data": mostly(st.one_of(st.builds(dict, source=st.sampled_from(SOURCES[:11])), block("source", SOURCES))),
    "model": mostly(st.one_of(st.builds(dict, family=st.sampled_from(FAMILIES[:5])), block("family", FAMILIES))),
    "loop": mostly(st.fixed_dictionaries({"n_real": small(2, 25)}, optional={
        "policy": st.sampled_from(POLICIES), "n_synthetic": maybe(st.one_of(small(1, 25), st.sampled_from(
            ["5 * (g + 1)", "g - 9", "[1, 2]", "__import__('os')"]), st.lists(small(1, 9), max_size=4))),
        "n_initial": maybe(small(2, 25)), "synthetic_from": st.sampled_from(["last", "all", "first"]),
        "control": st.one_of(st.booleans(), JUNK), "warm_start": st.booleans(),
        "accumulate_weights": st.sampled_from(["uniform", "linear", "x"])})),
    "sampling": mostly(st.fixed_dictionaries({}, optional={"bias": mostly(st.floats(0.05, 1.0), EXTREME)})),
    "metrics": mostly(st.fixed_dictionaries({"n_eval": small(2, 25), "n_heldout": small(2, 25)}, optional={
        "use": st.lists(metric_spec(), max_size=2), "tradeoff": st.booleans(), "grid_samples": small(0, 4)}),
        st.one_of(st.lists(metric_spec(), max_size=2), JUNK), times=4),
    "curation": maybe(mostly(st.one_of(st.builds(dict, method=st.sampled_from(CURATION[:4])), block("method", CURATION)))),
    "correction": maybe(mostly(st.one_of(st.builds(dict, method=st.sampled_from(CORRECTION[:3])),
                                         block("method", CORRECTION)))),
    "grid": maybe(st.one_of(st.dictionaries(st.sampled_from(["sampling.bias", "loop.policy", "seed", "nope.x"]),
                                            st.lists(st.one_of(st.floats(0.1, 1), st.sampled_from(POLICIES)),
                                                     max_size=2), max_size=1), JUNK)),
    "report": maybe(st.one_of(st.fixed_dictionaries({}, optional={"metrics": st.lists(st.text(max_size=5), max_size=2),
                                                                  "band": st.sampled_from(["auto", "se", "x"])}), JUNK)),
}
# the common case: a loop section and a few others; every section appears with some probability
PLAIN = st.fixed_dictionaries({"replicates": SECTIONS["replicates"], "generations": SECTIONS["generations"],
                               "loop": SECTIONS["loop"], "metrics": SECTIONS["metrics"]},
                              optional={k: v for k, v in SECTIONS.items()
                                        if k not in ("replicates", "generations", "loop", "metrics")})
# unknown top-level keys and whole-config junk, now and then
CONFIGS = mostly(PLAIN, st.one_of(st.builds(lambda c, k, v: {**c, k: v}, PLAIN, st.text(max_size=6), JUNK), JUNK),
                 times=8)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("an example ran for more than 30 s")


def check(cfg) -> str:
    """'run' or 'error'; anything else (another exception, a multi-line message, a hang) fails the test."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            autophagy.run(cfg)
        return "run"
    except AutophagyError as err:
        assert "\n" not in str(err), repr(str(err))
        assert str(err).strip(), "an empty message"
        return "error"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


TALLY: dict = {}


@settings(settings.get_profile("ci"))
@given(CONFIGS)
def test_every_config_is_a_run_or_one_clean_line(cfg):
    kind = check(cfg)
    TALLY[kind] = TALLY.get(kind, 0) + 1


@pytest.mark.slow
@settings(settings.get_profile("long"))
@given(CONFIGS)
def test_every_config_is_a_run_or_one_clean_line_long(cfg):
    check(cfg)


def test_the_fuzzer_reaches_valid_runs():
    """A fuzzer that only produced errors would prove little: a fair share of its examples must run."""
    if sum(TALLY.values()) < 500:
        pytest.skip("runs after test_every_config_is_a_run_or_one_clean_line")
    assert TALLY.get("run", 0) >= 50, TALLY
