"""The VAE family: conformance, batched == loop, determinism, warm start, checkpoints, and
Tarchi's (2024) phenomenon at small scale (variability falls along a VAE chain; the variability
loss keeps more of it)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import autophagy  # noqa: E402
from autophagy.errors import ConfigError  # noqa: E402
from autophagy.models.vae import VAEFamily  # noqa: E402
from autophagy.protocols import SourceInfo  # noqa: E402
from autophagy.rng import Streams  # noqa: E402
from autophagy.testing import check_family  # noqa: E402

ARCHS = ["fc1", "fc2", "conv", "asymmetric"]
INFO = SourceInfo(dim=64, kind="image", image_shape=(8, 8))


def family(**kw):
    base = dict(epochs=1, hidden=16, latent_dim=2, channels=4, batch_size=16, device="cpu", threads=1)
    return VAEFamily(VAEFamily.Options(**{**base, **kw}), INFO)


def data(R=2, n=40, seed=0):
    """Tiny 8×8 binary images: a lit 2×2 square at a random place."""
    rng = np.random.default_rng(seed)
    x = np.zeros((R, n, 8, 8))
    r, c = rng.integers(0, 7, (2, R, n))
    for i in range(R):
        for j in range(n):
            x[i, j, r[i, j]:r[i, j] + 2, c[i, j]:c[i, j] + 2] = 1
    return x.reshape(R, n, 64)


def fit(fam, x, seed=0, init=None):
    return fam.fit(x, Streams(seed, x.shape[0], 0, "fit"), init=init)


def draw(model, m=30, seed=0, bias=1.0, R=None):
    return model.sample(m, Streams(seed, R or model.R, 1, "sample"), bias=bias)


@pytest.mark.parametrize("mode", ["auto", "loop"])
@pytest.mark.parametrize("arch", ARCHS)
def test_conformance(arch, mode):
    """The shared suite (shapes, determinism, replicate independence incl. R = 70 vs 3, bias, warm start)."""
    fam = family(architecture=arch, batched=mode)
    model = check_family(fam, data(R=3), INFO)
    s = draw(model)
    assert 0 <= s.min() and s.max() <= 1 and s.dtype == np.float64
    assert set(model.param_metrics(INFO)) == {"train_loss", "train_recon", "train_kl"}
    assert not np.allclose(s, draw(fit(fam, data(R=3), seed=5)))  # the fit seed matters
    # bias λ scales the latent std by sqrt(λ): λ → 0 gives (nearly) one image per replicate
    assert np.all(draw(model, bias=1e-8).std(axis=1).max(-1) < 1e-3)


@pytest.mark.parametrize("arch", ARCHS)
def test_batched_equals_loop(arch):
    """Same per-replicate generators and elementwise Adam: the two paths agree to float rounding."""
    x = data(R=3)
    a, b = fit(family(architecture=arch, epochs=2), x), fit(family(architecture=arch, epochs=2, batched="loop"), x)
    for (k, va), vb in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), atol=2e-5, err_msg=k)
    np.testing.assert_allclose(draw(a), draw(b), atol=1e-4)
    np.testing.assert_allclose(a.stats["train_loss"], b.stats["train_loss"], rtol=1e-4)


def test_training_learns():
    """More epochs lower the training loss (both paths)."""
    x = data(R=2, n=80)
    for mode in ("auto", "loop"):
        short = fit(family(epochs=1, batched=mode), x).stats["train_loss"]
        long = fit(family(epochs=15, batched=mode, hidden=32, lr=3e-3), x).stats["train_loss"]
        assert np.all(long < short - 3), (mode, short, long)


@pytest.mark.parametrize("mode", ["auto", "loop"])
def test_warm_start_begins_at_init(mode):
    x = data()
    first = fit(family(architecture="conv"), x)
    still = fit(family(architecture="conv", lr=1e-12, batched=mode), x, seed=9, init=first)
    for (k, va), vb in zip(first.net.state_dict().items(), still.net.state_dict().values()):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), atol=1e-6, err_msg=k)
    moved = fit(family(architecture="conv", lr=1e-2, batched=mode), x, seed=9, init=first)
    assert not np.allclose(draw(moved), draw(first), atol=1e-3)


def test_latent_scale_and_output_sample():
    x = data()
    wide = fit(family(latent_scale=3.0), x)
    narrow = fit(family(latent_scale=0.3), x)
    assert draw(wide, m=200).std(axis=1).mean() > draw(narrow, m=200).std(axis=1).mean()
    binary = draw(fit(family(output="sample"), x))
    assert set(np.unique(binary)) <= {0.0, 1.0}


def test_gaussian_likelihood_on_vector_data():
    info = SourceInfo(dim=2)
    fam = VAEFamily(VAEFamily.Options(architecture="fc1", likelihood="gaussian", output_std=0.3, epochs=150, batch_size=16,
                                      hidden=16, latent_dim=2, lr=1e-2, device="cpu", threads=1), info)
    x = np.random.default_rng(0).normal(5.0, 1.0, (2, 200, 2))
    s = fit(fam, x).sample(500, Streams(0, 2, 1, "s"))
    assert np.all(np.abs(s.mean(axis=1) - 5.0) < 0.5)  # identity output: reaches a mean outside [0, 1]


def test_config_errors():
    with pytest.raises(ConfigError, match="model.architecture"):
        VAEFamily(VAEFamily.Options(architecture="conv", device="cpu"), SourceInfo(dim=64))
    with pytest.raises(ConfigError, match="model.likelihood"):
        fit(family(), data() * 2.0)
    with pytest.raises(ConfigError, match="model.output_activation"):
        family(output_activation="identity")
    with pytest.raises(ConfigError, match="model.epochs"):
        autophagy.run({"data": {"source": "digits"}, "model": {"family": "vae", "epochs": 0}})


@pytest.mark.parametrize("arch", ["fc2", "conv"])
def test_save_load_round_trip(tmp_path, arch):
    fam, x = family(architecture=arch), data()
    model = fit(fam, x)
    fam.save(model, tmp_path / "ck")
    back = fam.load(tmp_path / "ck")
    np.testing.assert_array_equal(draw(model), draw(back))
    np.testing.assert_array_equal(model.stats["train_kl"], back.stats["train_kl"])
    with pytest.raises(ConfigError, match="same model options"):
        family(architecture=arch, latent_dim=3).load(tmp_path / "ck")


def test_engine_resumes_from_checkpoints(tmp_path):
    """Deleting the last generation's checkpoint and rerunning refits only that generation, identically."""
    from autophagy.loop import simulate

    cfg = {"seed": 2, "replicates": 2, "generations": 2,
           "data": {"source": "binomial-grid", "size": 8, "cluster": 2},
           "model": {"family": "vae", "architecture": "fc1", "epochs": 2, "hidden": 16, "latent_dim": 2,
                     "device": "cpu", "threads": 1},
           "loop": {"policy": "replace", "n_real": 40}, "metrics": {"use": ["variability"], "n_eval": 50, "n_heldout": 50}}
    plan = autophagy.build(autophagy.load_config(cfg)[0])
    plan.checkpoint_dir = tmp_path
    first = simulate(plan)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen0000", "gen0001", "gen0002"]
    stamps = {g: (tmp_path / g / "meta.json").stat().st_mtime_ns for g in ("gen0000", "gen0001")}
    import shutil

    shutil.rmtree(tmp_path / "gen0002")
    again = simulate(plan)
    assert (tmp_path / "gen0002" / "meta.json").exists()
    assert stamps == {g: (tmp_path / g / "meta.json").stat().st_mtime_ns for g in stamps}
    assert first.keys() == again.keys()
    for k in first:
        np.testing.assert_allclose(first[k], again[k], rtol=1e-6, err_msg=k)


def test_variability_falls_along_the_chain_and_variability_loss_keeps_more():
    """Tarchi (2024): along a VAE chain (replace loop) the data's variability falls; the variability
    loss term (K = 1) keeps more of it at the same generation. 10×10 binomial grids, 3 replicates."""
    cfg = {"seed": 0, "replicates": 3, "generations": 3,
           "data": {"source": "binomial-grid", "size": 10, "cluster": 3},
           "model": {"family": "vae", "architecture": "fc2", "epochs": 25, "hidden": 64, "latent_dim": 2,
                     "batch_size": 32, "lr": 3e-3, "device": "cpu", "threads": 1},
           "loop": {"policy": "replace", "n_real": 300},
           "metrics": {"use": ["variability"], "n_eval": 300, "n_heldout": 300},
           "grid": {"model.variability_weight": [0.0, 1.0]}}
    s = autophagy.run(cfg).summary("variability-ratio")
    table = s.pivot(index="name", columns="generation", values="mean")
    plain, kept = table.loc["run[model.variability_weight=0.0]"], table.loc["run[model.variability_weight=1.0]"]
    assert plain[3] < 0.5 * plain[0], table
    assert kept[3] > plain[3] + 0.1, table
    assert kept[3] > 0.25 * kept[0], table


@pytest.mark.parametrize("size", [4, 8, 12])  # <= 8x8: grouped blocks of 8 replicates; 12x12: one call per replicate
@pytest.mark.parametrize("c_in,c_out", [(1, 3), (3, 5), (5, 1)])
def test_channels_last_conv_layer(size, c_in, c_out):
    """nets.BConv(layout="nhwc"), the VAE's conv layer: each replicate's output and gradients are its own
    conv2d's (to float rounding), and bit-identical whether it runs among R = 11 (two blocks) or R = 3."""
    from autophagy.models.nets import layers
    F = torch.nn.functional
    torch.set_num_threads(1)
    BConv = layers()[1]
    layer = BConv(11, c_in, c_out, [torch.Generator().manual_seed(i) for i in range(11)], "cpu", layout="nhwc")
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(11, 5, c_in, size, size, generator=gen).requires_grad_()
    g = torch.randn(11, 5, c_out, size, size, generator=gen)
    y = layer(x)
    y.backward(g)
    for r in range(11):
        xr = x[r].detach().clone().requires_grad_()
        wr, br = (t[r].detach().clone().requires_grad_() for t in (layer.weight, layer.bias))
        ref = F.conv2d(xr, wr, br, padding=1)
        ref.backward(g[r])
        for got, want in ((y[r], ref), (x.grad[r], xr.grad), (layer.weight.grad[r], wr.grad), (layer.bias.grad[r], br.grad)):
            np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-5)
    small = BConv(3, c_in, c_out, None, "cpu", layout="nhwc")
    small.load_state_dict({k: v[:3].detach().clone() for k, v in layer.state_dict().items()})
    x3 = x[:3].detach().clone().requires_grad_()
    y3 = small(x3)
    y3.backward(g[:3])
    assert torch.equal(y3, y[:3]) and torch.equal(x3.grad, x.grad[:3])
    assert torch.equal(small.weight.grad, layer.weight.grad[:3]) and torch.equal(small.bias.grad, layer.bias.grad[:3])
