"""The ``ddpm`` family: conformance, closed-form oracles for the schedule and sampler, guidance,
labels, warm start, checkpoints and config errors. Tiny networks and budgets; fixed seeds."""
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autophagy.api import build  # noqa: E402
from autophagy.config import expand, load_config  # noqa: E402
from autophagy.errors import ConfigError  # noqa: E402
from autophagy.metrics import prd  # noqa: E402
from autophagy.models.ddpm import DDPMFamily, beta_schedule, mixture_labels  # noqa: E402
from autophagy.protocols import SourceInfo  # noqa: E402
from autophagy.rng import Streams  # noqa: E402
from autophagy.testing import check_family  # noqa: E402

TINY = dict(train_steps=30, timesteps=20, hidden=16, layers=2, batch_size=16)
MEANS = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
RING3 = SourceInfo(dim=2, truth={"components": (np.full(3, 1 / 3), MEANS, np.stack([0.04 * np.eye(2)] * 3))})


def mixture_data(R, n, seed=1, std=0.2):
    s = Streams(seed, R, -1, "data")
    k = s.integers(3, n)
    return MEANS[k] + std * s.child("noise").normal(n, 2), k


def family(info=RING3, **kw):
    return DDPMFamily(DDPMFamily.Options(**{**TINY, **kw}), info)


# ---------------------------------------------------------------------------------- conformance
def test_conformance_mlp_ancestral():
    data = Streams(0, 3, -1, "data").normal(60, 2) * [1.0, 2.0] + 1.0
    check_family(family(SourceInfo(dim=2)), data, SourceInfo(dim=2), m=20, m_bias=200)


def test_conformance_conv_ddim():
    info = SourceInfo(dim=16, kind="image", image_shape=(4, 4))
    data = Streams(0, 3, -1, "data").uniform(40, 16)
    fam = DDPMFamily(DDPMFamily.Options(train_steps=15, timesteps=10, channels=4, batch_size=8, sampler="ddim",
                                        ddim_steps=5), info)
    assert fam.arch == "conv"
    check_family(fam, data, info, m=10, m_bias=100, big=66)
    x = fam.fit(data, Streams(0, 3, 0, "fit")).sample(20, Streams(0, 3, 1, "sample"))
    assert x.min() >= 0.0 and x.max() <= 1.0  # image samples are clipped back to [0, 1]


def test_conditional_determinism_and_replicate_independence():
    data, _ = mixture_data(3, 60)
    fam = family(conditional=True)
    m1 = fam.fit(data, Streams(0, 3, 0, "fit"))
    m2 = fam.fit(data.copy(), Streams(0, 3, 0, "fit"))
    x1, y1 = m1.sample_labeled(30, Streams(0, 3, 1, "sample"), bias=0.5)
    x2, y2 = m2.sample_labeled(30, Streams(0, 3, 1, "sample"), bias=0.5)
    assert x1.shape == (3, 30, 2) and y1.shape == (3, 30)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    big = fam.fit(data[[0, 1, 2, 0, 1]], Streams(0, 5, 0, "fit"))
    np.testing.assert_array_equal(big.sample(30, Streams(0, 5, 1, "sample"), bias=0.5)[:3], x1)


# ---------------------------------------------------------------------------------- oracles
def test_beta_schedules():
    lin = beta_schedule("linear", 100)
    np.testing.assert_allclose(lin[[0, -1]], [1e-3, 0.2])  # Ho et al.'s 1e-4..0.02 rescaled by 1000/T
    cos = beta_schedule("cosine", 50)
    s, t = 0.008, np.arange(51) / 50
    f = np.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    free = (1 - f[1:] / f[:-1]) < 0.5
    assert free.sum() == 47 and free[:47].all()  # only the last three steps are clipped
    np.testing.assert_allclose(np.cumprod(1 - cos)[free], (f[1:] / f[0])[free], rtol=1e-10)  # Nichol & Dhariwal eq. 17
    assert cos.max() == 0.5  # clipped: a β near 1 multiplies a learned network's error by 1/√(1−β)
    for b in (lin, cos):
        assert np.cumprod(1 - b)[-1] < 2e-3  # x_T is (almost) pure noise


# The sampler's exact-score closed forms (every setting of docs/neural.md's table) live in tests/test_oracle.py.


def test_mixture_labels_is_bayes_classifier():
    x, k = mixture_data(2, 500)
    y = mixture_labels(x, RING3.truth["components"])
    assert y.shape == (2, 500) and y.dtype == np.int64
    assert (y == k).mean() > 0.99  # well-separated modes: the Bayes classifier is almost always right
    np.testing.assert_array_equal(mixture_labels(MEANS[None], RING3.truth["components"]), [[0, 1, 2]])


# ---------------------------------------------------------------------------------- phenomena
def test_guidance_raises_precision_and_lowers_recall():
    """MAD's λ = 1/(1+w) on the 8-mode ring: classifier-free guidance (λ = 0.5, w = 1) vs none (λ = 1)
    concentrates each class on its mode: more samples inside real k-NN balls, fewer real points covered."""
    from autophagy.data.mixtures import MixtureSource

    src, R = MixtureSource(MixtureSource.Options(std=0.2)), 3
    data, ref = src.sample(1000, Streams(0, R, -1, "data")), src.sample(500, Streams(0, R, -1, "heldout"))
    model = DDPMFamily(DDPMFamily.Options(train_steps=1000, conditional=True), src.info).fit(data, Streams(0, R, 0, "fit"))
    out = {lam: prd(ref, model.sample(500, Streams(0, R, 1, "sample"), bias=lam)) for lam in (1.0, 0.5)}
    assert out[0.5]["recall"].mean() < out[1.0]["recall"].mean() - 0.2, out
    assert out[0.5]["precision"].mean() > out[1.0]["precision"].mean(), out


# ---------------------------------------------------------------------------------- labels and errors
def test_labels_resolution_and_errors():
    assert family(conditional=True).label_mode == "components"
    digits_like = SourceInfo(dim=4, truth={"labels_available": True, "classes": (0, 1, 2)})
    fam = family(digits_like, conditional=True)
    assert (fam.label_mode, fam.K) == ("kmeans", 3)
    y = fam._labels(Streams(0, 2, -1, "d").normal(30, 4), Streams(0, 2, 0, "fit"), None)
    assert y.shape == (2, 30) and y.dtype == np.int64 and y.max() < 3
    with pytest.raises(ConfigError, match="model.conditional"):
        family(SourceInfo(dim=2), conditional=True)
    with pytest.raises(ConfigError, match="model.n_classes"):
        family(SourceInfo(dim=2), conditional=True, labels="kmeans")
    assert family(SourceInfo(dim=2), conditional=True, labels="kmeans", n_classes=4).K == 4
    with pytest.raises(ConfigError, match="model.labels"):
        family(SourceInfo(dim=2), conditional=True, labels="components")
    with pytest.raises(ConfigError, match="model.ddim_steps"):
        family(sampler="ddim", ddim_steps=50, timesteps=20)
    with pytest.raises(ConfigError, match="model.architecture"):
        family(architecture="conv")


def test_explicit_labels():
    data, k = mixture_data(2, 60)
    fam = family(conditional=True)
    model = fam.fit(data, Streams(0, 2, 0, "fit"), labels=k)
    np.testing.assert_allclose(model.class_probs, np.stack([np.bincount(r, minlength=3) / 60 for r in k]))
    with pytest.raises(ConfigError, match="labels"):
        fam.fit(data, Streams(0, 2, 0, "fit"), labels=k[:, :10])
    with pytest.raises(ConfigError, match="model.conditional"):
        family().fit(data, Streams(0, 2, 0, "fit")).sample_labeled(5, Streams(0, 2, 1, "s"))


def test_config_validation_through_the_engine():
    cfg, _ = load_config({"data": {"source": "mixture"}, "model": {"family": "ddpm", "sampler": "euler"}})
    with pytest.raises(ConfigError, match="model.sampler"):
        build(expand(cfg)[0])
    cfg, _ = load_config({"data": {"source": "mixture"}, "model": {"family": "ddpm"}, "metrics": ["heldout-nll"]})
    with pytest.raises(ConfigError):
        build(expand(cfg)[0])  # sample-only model: no log-density


# ---------------------------------------------------------------------------------- labels: source (labelled loops)
class _SourceLabelled:
    """``labels: source`` takes its labels from the engine; for check_family (which passes data only) this
    adapter labels each training point with the mixture's Bayes classifier, so labels follow the rows."""

    batched = True

    def __init__(self, fam):
        self.fam = fam

    def fit(self, data, streams, init=None):
        return self.fam.fit(data, streams, init=init, labels=mixture_labels(data, RING3.truth["components"]))


@pytest.mark.slow  # about 20 s: check_family fits R = 66
def test_conformance_conditional_source_labels():
    """check_family's shape, determinism and replicate-independence checks (R = 66 vs 3) pass; its last check,
    "bias lowers the samples' total variance", does not apply to classifier-free guidance on separated
    classes: guidance pushes each class away from the others, so total variance *rises* even with the exact
    score (the oracle below: 3.65 -> 3.74 at λ = 0.5), and more with a learned one. That failure, and only it, is
    expected here (testing.py is shared; a guidance-aware criterion there is future work)."""
    data, _ = mixture_data(3, 60)
    fam = family(conditional=True, labels="source", train_steps=200)
    assert fam.uses_labels and fam.K == 3
    with pytest.raises(AssertionError, match="did not lower the samples' mean total variance"):
        check_family(_SourceLabelled(fam), data, RING3, m=20, m_bias=300, big=66)
    oracle = family(conditional=True, labels="source", oracle=True, timesteps=100).fit(data, Streams(0, 3, 0, "fit"))
    spread = {lam: oracle.sample(2000, Streams(0, 3, 2, "s"), bias=lam).var(1).sum(-1).mean() for lam in (1.0, 0.5)}
    assert spread[0.5] > spread[1.0], spread  # exact guidance: more spread, not less
    model = _SourceLabelled(fam).fit(data, Streams(0, 3, 0, "fit"))
    assert set(model.param_metrics(RING3)) == {"train_loss"}
    x, y = model.sample_labeled(300, Streams(0, 3, 1, "sample"))
    assert x.shape == (3, 300, 2) and y.shape == (3, 300) and set(np.unique(y)) <= {0, 1, 2}
    # each sample lies nearer its own class's mean than any other: the labels carry the classes
    assert (mixture_labels(x, RING3.truth["components"]) == y).mean() > 0.7  # chance: 1/3 (measured 0.85)


def test_source_labels_options_and_errors():
    with pytest.raises(ConfigError, match="model.labels"):
        family(SourceInfo(dim=2), conditional=True, labels="source")  # no labels to use
    digits_like = SourceInfo(dim=4, kind="image", image_shape=(2, 2), truth={
        "labels_available": True, "classes": (3, 8), "class_probs": np.r_[np.zeros(3), 0.25, np.zeros(4), 0.75, 0.0]})
    fam = family(digits_like, conditional=True, labels="source")
    assert fam.K == 9  # labels are the digits themselves: 0..8
    with pytest.raises(ConfigError, match="model.n_classes"):
        family(digits_like, conditional=True, labels="source", n_classes=5)
    with pytest.raises(ConfigError, match="labels"):
        fam.fit(Streams(0, 2, -1, "d").uniform(20, 4), Streams(0, 2, 0, "fit"))  # the loop must pass them
    data, k = mixture_data(2, 60)
    for mode, expect in [("source", np.full(3, 1 / 3)), ("uniform", np.full(3, 1 / 3)),
                         ("training", np.bincount(k[0], minlength=3) / 60)]:
        m = family(conditional=True, labels="source", class_probs=mode).fit(data, Streams(0, 2, 0, "fit"), labels=k)
        np.testing.assert_allclose(m.class_probs[0], expect)
    by_source = family(digits_like, conditional=True, labels="source", class_probs="source")
    np.testing.assert_allclose(by_source._class_probs(np.zeros((1, 5), dtype=int))[0], digits_like.truth["class_probs"][:9])
    with pytest.raises(ConfigError, match="model.class_probs"):
        family(class_probs="uniform")  # unconditional
    with pytest.raises(ConfigError, match="model.label_check"):
        family(conditional=True, labels="source", label_check=10)  # vectors: no digit classifier


BAD_LABELLED = [
    ({"data": {"source": "gaussian", "dim": 2}}, "model.labels"),
    ({"correction": {"method": "reference-mix", "gamma": 1.0}}, "correction.method"),
    ({"curation": {"method": "random-k"}}, "curation"),
    ({"model": {"family": "ddpm", "class_probs": "bogus", "conditional": True, "labels": "source"}}, "model.class_probs"),
]


@pytest.mark.parametrize("patch,field", BAD_LABELLED)
def test_labelled_loop_bad_options_one_line_exit_2(tmp_path, patch, field):
    import yaml
    from typer.testing import CliRunner

    from autophagy.cli import app

    cfg = {"seed": 0, "replicates": 2, "generations": 1, "data": {"source": "mixture", "n_components": 3},
           "model": {"family": "ddpm", **TINY, "conditional": True, "labels": "source"},
           "loop": {"policy": "replace", "n_real": 40}, "metrics": {"use": ["sliced-wasserstein"], "n_eval": 20,
                                                                     "n_heldout": 20}}
    cfg.update(patch)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    lines = [line for line in r.output.strip().splitlines() if line.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and field in lines[0] and "Traceback" not in r.output, r.output


@pytest.mark.parametrize("policy", ["replace", "augment"])
def test_the_loop_carries_the_labels(policy):
    """Real sets come with the source's labels, each synthetic point with the class it was generated from, and
    the corrector's output keeps them: what ``fit`` receives is exactly that, row for row."""
    from autophagy.loop import simulate

    cfg, _ = load_config({"seed": 0, "replicates": 2, "generations": 2, "data": {"source": "mixture", "n_components": 3},
                          "model": {"family": "ddpm", **TINY, "conditional": True, "labels": "source"},
                          "loop": {"policy": policy, "n_real": 40, "warm_start": True},
                          "correction": {"method": "nearest-prototype", "per_class": True, "k": 2, "n_reference": 60,
                                         "gamma": 1.0}})
    plan = build(expand(cfg)[0])
    fits, sampled = [], []
    fit, correct = plan.family.fit, plan.corrector

    def spy_fit(x, streams, init=None, labels=None):
        fits.append((x.copy(), labels.copy()))
        model = fit(x, streams, init=init, labels=labels)
        draw = model.sample_labeled
        model.sample_labeled = lambda *a, **k: sampled.append(draw(*a, **k)) or sampled[-1]
        return model

    corrected = []

    class SpyCorrector:
        keeps_labels = True

        def __call__(self, x, streams=None, labels=None):
            corrected.append((correct(x, streams, labels), labels))
            return corrected[-1][0]

    plan.family.fit, plan.corrector = spy_fit, SpyCorrector()
    simulate(plan)
    real, real_y = plan.source.sample_labeled(40, Streams(0, 2, -1, "data"))
    np.testing.assert_array_equal(fits[0][0], real)
    np.testing.assert_array_equal(fits[0][1], real_y)
    for g in (1, 2):
        (sx, sy), (cx, cy) = sampled[g - 1], corrected[g - 1]
        np.testing.assert_array_equal(cy, sy)  # the corrector saw the generated classes
        assert not np.allclose(cx, sx)  # and moved the points
        want_x, want_y = (cx, sy) if policy == "replace" else (np.concatenate([real, cx], 1), np.concatenate([real_y, sy], 1))
        np.testing.assert_allclose(fits[g][0], want_x)
        np.testing.assert_array_equal(fits[g][1], want_y)


def test_per_class_prototypes_use_the_sample_label():
    """With labels, ``per_class`` moves a sample to its own class's centroid, even when another class's is nearer."""
    from autophagy.correction import build as build_correction
    from autophagy.data.mixtures import MixtureSource

    source = MixtureSource(MixtureSource.Options(n_components=3, std=0.05))
    corr = build_correction({"method": "nearest-prototype", "per_class": True, "k": 1, "n_reference": 300,
                             "strength": "full"}, source)
    means = source.info.truth["components"][1]
    x = np.broadcast_to(means[1] + 0.01, (2, 4, 2)).copy()  # at class 1's mean
    y = np.zeros((2, 4), dtype=np.int64)  # but generated as class 0
    s = Streams(0, 2, 1, "correct")
    np.testing.assert_allclose(corr(x, s, labels=y), np.broadcast_to(means[0], x.shape), atol=0.02)
    np.testing.assert_allclose(corr(x, s), np.broadcast_to(means[1], x.shape), atol=0.02)  # label-blind: nearest


# ---------------------------------------------------------------------------------- warm start, checkpoints
def test_warm_start_continues_from_init():
    data, _ = mixture_data(2, 80)
    fam = family()
    base = fam.fit(data, Streams(0, 2, 0, "fit"))
    frozen = DDPMFamily(DDPMFamily.Options(**{**TINY, "lr": 1e-12, "finetune_steps": 2}), RING3)
    warm = frozen.fit(data * 3.0 + 5.0, Streams(0, 2, 1, "fit"), init=base)  # keeps init's weights and scaling
    s = Streams(0, 2, 2, "sample")
    np.testing.assert_allclose(warm.sample(20, s), base.sample(20, s), atol=1e-4)
    cold = frozen.fit(data, Streams(0, 2, 1, "fit"))
    assert not np.allclose(cold.sample(20, s), base.sample(20, s), atol=1e-2)
    with pytest.raises(ConfigError, match="init"):
        fam.fit(data[:1], Streams(0, 1, 1, "fit"), init=base)


@pytest.mark.parametrize("kw", [{}, {"conditional": True, "sampler": "ddim", "ddim_steps": 10}])
def test_save_load_round_trip(tmp_path, kw):
    data, _ = mixture_data(2, 60)
    fam = family(**kw)
    model = fam.fit(data, Streams(0, 2, 0, "fit"))
    fam.save(model, tmp_path / "gen")
    back = family(**kw).load(tmp_path / "gen")
    s = Streams(0, 2, 1, "sample")
    np.testing.assert_array_equal(back.sample(25, s, bias=0.5), model.sample(25, s, bias=0.5))
    np.testing.assert_array_equal(back.param_metrics(RING3)["train_loss"], model.param_metrics(RING3)["train_loss"])
    with pytest.raises(ConfigError, match="same model options"):
        family(**{**kw, "hidden": 8}).load(tmp_path / "gen")


def test_engine_run_with_checkpoints(tmp_path):
    import autophagy

    cfg = {"seed": 0, "replicates": 2, "generations": 1, "data": {"source": "mixture", "n_components": 3},
           "model": {"family": "ddpm", **TINY}, "loop": {"policy": "augment", "n_real": 40, "warm_start": True},
           "metrics": {"use": ["sliced-wasserstein"], "n_eval": 30, "n_heldout": 30}}
    res = autophagy.run(cfg, out=tmp_path)
    assert set(res.metrics.metric) == {"param.train_loss", "sliced-wasserstein"}
    assert len(list((tmp_path / "checkpoints").glob("*/gen0001/weights.pt"))) == 1


# ---------------------------------------------------------------------------------- presets
@pytest.mark.parametrize("name", ["mad_guided_diffusion", "mad_guided_diffusion_digits", "bertrand_finetune",
                                  "gillman_digits_ddpm"])
def test_presets_build(name):
    from pathlib import Path

    cfg, base = load_config(Path(__file__).parent.parent / "configs" / f"{name}.yaml")
    plans = [build(c, base) for c in expand(cfg)]
    assert len(plans) >= 2 and all(p.family.__class__.__name__ == "DDPMFamily" for p in plans)


@pytest.mark.slow  # about 19 s; .ci/run runs it
def test_real_data_keeps_the_finetuning_loop_close():
    """Bertrand et al.'s iterative fine-tuning: λ_B = 0.5 (augment) vs fully synthetic (replace), warm start.
    At the last generation the augmented chain is closer to P_r (sliced-wasserstein) and more precise."""
    import autophagy

    base = {"seed": 0, "replicates": 2, "generations": 4,  # margins hold for seeds 0-2 (about 6 s)
            "data": {"source": "mixture", "layout": "ring", "n_components": 8, "std": 0.2},
            "model": {"family": "ddpm", "train_steps": 1000, "finetune_steps": 400, "hidden": 64},
            "metrics": {"use": ["sliced-wasserstein", "prd"], "n_eval": 400, "n_heldout": 400},
            "grid": {"loop": [{"policy": "augment", "n_real": 400, "n_synthetic": 200, "warm_start": True},
                              {"policy": "replace", "n_real": 400, "n_synthetic": 400, "warm_start": True}]}}
    res = autophagy.run(base)
    last = res.summary(generation=-1).set_index(["metric", "name"])["mean"]
    names = sorted(res.runs.name)
    aug, rep = [n for n in names if "augment" in n][0], [n for n in names if "replace" in n][0]
    assert last["sliced-wasserstein", aug] < last["sliced-wasserstein", rep], last
    assert last["precision", aug] > last["precision", rep], last


@pytest.mark.slow  # about 2 min on 2 shared cores
def test_gillman_digits_correction_keeps_the_lineage_near_the_data():
    """configs/gillman_digits_ddpm.yaml at reduced size (R = 2, two fine-tuned generations, smaller budgets):
    per-class nearest-prototype correction (γ = 1) ends closer to the digits than no correction (digit-frechet
    lower, digit-precision and class fidelity higher) and pays in diversity (digit-recall lower)."""
    import autophagy

    res = autophagy.run(Path(__file__).resolve().parents[1] / "configs" / "gillman_digits_ddpm.yaml", overrides=[
        "generations=2", "model.train_steps=800", "model.finetune_steps=300", "loop.n_real=500",
        "metrics.n_eval=200", "metrics.n_heldout=300", "model.label_check=100"])
    last = res.summary(generation=-1)
    gamma = {r.run_id: r.config["correction"]["gamma"] for r in res.runs.itertuples()}
    last = last.assign(gamma=last.run_id.map(gamma)).set_index(["metric", "gamma"])["mean"]
    assert last["digit-frechet", 1.0] < last["digit-frechet", 0.0], last
    assert last["digit-precision", 1.0] > last["digit-precision", 0.0] + 0.1, last
    assert last["param.label_accuracy", 1.0] > last["param.label_accuracy", 0.0] + 0.1, last
    assert last["digit-recall", 1.0] < last["digit-recall", 0.0], last


# ---------------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("family_name", ["ddpm", "flow-matching", "gan", "vae"])
def test_cuda_replicates_do_not_depend_on_R(family_name):
    """On CUDA, replicate r's samples from R = 5 and R = 3 ensembles agree (to float rounding: cuBLAS may pick
    other kernels for other batch counts, see docs/neural.md) and the models run on the device."""
    from autophagy.components import resolve

    cls = resolve("family", family_name, "model.family")
    small = {"ddpm": dict(TINY), "flow-matching": dict(train_steps=30, hidden=16, layers=2, batch_size=16),
             "gan": dict(train_steps=30, hidden=16, layers=2, batch_size=16),
             "vae": dict(epochs=2, hidden=16, latent_dim=2, likelihood="gaussian")}[family_name]
    info = SourceInfo(dim=2)
    fam = cls(cls.Options(device="cuda", **small), info)
    data = Streams(0, 5, -1, "data").normal(60, 2)
    big, few = fam.fit(data, Streams(0, 5, 0, "fit")), fam.fit(data[:3], Streams(0, 3, 0, "fit"))
    xb, xf = big.sample(40, Streams(0, 5, 1, "s")), few.sample(40, Streams(0, 3, 1, "s"))
    np.testing.assert_allclose(xb[:3], xf, rtol=1e-4, atol=1e-5)
