"""The ``flow-matching`` family: conformance, a closed-form oracle for the ODE sampler and the bias,
minibatch OT coupling, warm start and checkpoints. Tiny networks and budgets; fixed seeds."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autophagy.errors import ConfigError  # noqa: E402
from autophagy.models.flow_matching import FlowMatchingFamily, ot_pairing  # noqa: E402
from autophagy.protocols import SourceInfo  # noqa: E402
from autophagy.rng import Streams  # noqa: E402
from autophagy.testing import check_family  # noqa: E402

TINY = dict(train_steps=30, hidden=16, layers=2, batch_size=16, steps=10)
INFO = SourceInfo(dim=2)


def family(info=INFO, **kw):
    return FlowMatchingFamily(FlowMatchingFamily.Options(**{**TINY, **kw}), info)


def gaussian(R, n, seed=1):
    return Streams(seed, R, -1, "data").normal(n, 2) * [1.0, 2.0] + 1.0


@pytest.mark.parametrize("kw", [{"coupling": "independent"}, {"coupling": "ot", "solver": "heun"}])
def test_conformance(kw):
    check_family(family(**kw), gaussian(3, 60), INFO, m=20, m_bias=200)


def test_conformance_conv():
    info = SourceInfo(dim=16, kind="image", image_shape=(4, 4))
    fam = FlowMatchingFamily(FlowMatchingFamily.Options(train_steps=15, channels=4, batch_size=8, steps=4), info)
    assert fam.arch == "conv"
    check_family(fam, Streams(0, 3, -1, "data").uniform(40, 16), info, m=10, m_bias=100, big=66)


# The ODE solvers' exact-velocity closed forms (every setting of docs/neural.md's table) live in tests/test_oracle.py.


def test_ot_pairing_is_the_emd_optimum():
    import ot

    g = np.random.default_rng(0)
    for B in (5, 32):
        a, b = g.standard_normal((B, 3)), g.standard_normal((B, 3)) + 1.0
        perm = ot_pairing(a, b)
        assert sorted(perm) == list(range(B))
        cost = ((a[:, None] - b[None]) ** 2).sum(-1)
        w = np.full(B, 1.0 / B)
        assert cost[np.arange(B), perm].mean() == pytest.approx(ot.emd2(w, w, cost), rel=1e-9)


def test_ot_coupling_straightens_paths():
    """Minibatch OT pairs noise with nearby data (Tong et al. 2024): the regression target x_1 − x_0 varies
    far less given x_t, so the flow-matching loss is much lower than with independent pairs."""
    data = gaussian(2, 400)
    loss = {c: family(coupling=c, train_steps=150, batch_size=64, hidden=32).fit(data, Streams(0, 2, 0, "fit"))
            .param_metrics(INFO)["train_loss"] for c in ("independent", "ot")}
    assert (loss["ot"] < 0.5 * loss["independent"]).all(), loss


def test_trained_flow_fits_gaussian_and_bias_shrinks_variance():
    """A short training run on N((1, 1), diag(1, 4)) recovers the moments roughly; λ = 0.5 roughly halves
    the variance (exactly so for the exact flow, see the oracle test)."""
    R = 2
    data = gaussian(R, 1000)
    model = family(train_steps=400, hidden=64, batch_size=128, steps=20, solver="heun").fit(data, Streams(0, R, 0, "fit"))
    x1 = model.sample(2000, Streams(0, R, 1, "sample"))
    xh = model.sample(2000, Streams(0, R, 1, "sample"), bias=0.5)
    np.testing.assert_allclose(x1.mean(1), np.ones((R, 2)), atol=0.25)
    np.testing.assert_allclose(x1.var(1), np.tile([1.0, 4.0], (R, 1)), rtol=0.25)
    np.testing.assert_allclose(xh.var(1) / x1.var(1), 0.5, atol=0.15)


def test_warm_start_and_errors():
    data = gaussian(2, 80)
    base = family().fit(data, Streams(0, 2, 0, "fit"))
    frozen = family(lr=1e-12, finetune_steps=2)
    warm = frozen.fit(data * 2.0 - 3.0, Streams(0, 2, 1, "fit"), init=base)
    s = Streams(0, 2, 2, "sample")
    np.testing.assert_allclose(warm.sample(20, s), base.sample(20, s), atol=1e-4)
    with pytest.raises(ConfigError, match="init"):
        frozen.fit(data[:1], Streams(0, 1, 1, "fit"), init=base)
    with pytest.raises(ConfigError, match="model.architecture"):
        family(architecture="conv")
    with pytest.raises(ConfigError, match="sampling.bias"):
        base.sample(5, s, bias=0.0)


def test_save_load_round_trip(tmp_path):
    data = gaussian(2, 60)
    fam = family(coupling="ot")
    model = fam.fit(data, Streams(0, 2, 0, "fit"))
    fam.save(model, tmp_path / "gen")
    back = family(coupling="ot").load(tmp_path / "gen")
    s = Streams(0, 2, 1, "sample")
    np.testing.assert_array_equal(back.sample(25, s, bias=0.7), model.sample(25, s, bias=0.7))
    with pytest.raises(ConfigError, match="same model options"):
        family(coupling="independent").load(tmp_path / "gen")
