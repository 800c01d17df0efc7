"""The user torch-model protocol (``model.family: torch``): the README example runs as written, passes the
conformance suite, warm-starts, checkpoints, leaves torch's global RNG alone; bad factories, losses and
devices are one line naming the field, exit 2."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from autophagy.cli import app  # noqa: E402
from autophagy.errors import ConfigError  # noqa: E402
from autophagy.protocols import SourceInfo  # noqa: E402
from autophagy.rng import Streams  # noqa: E402
from autophagy.testing import check_family  # noqa: E402

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
INFO = SourceInfo(dim=2)

BAD = '''
import torch
from mypkg.flow import RealNVP, loss, sample

def not_a_module(info):
    return 3

def too_wide(info):                       # a network for d + 1 dimensions: samples (n, d + 1)
    return RealNVP(info.dim + 1, 8)

def per_example_loss(flow, x, generator):  # (B,) instead of a scalar
    z, logdet = flow(x)
    return 0.5 * (z ** 2).sum(-1) - logdet

not_callable = 5
'''


def block(lang: str, first_line: str) -> str:
    for body in re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S):
        if body.splitlines()[0].strip() == first_line:
            return body
    raise AssertionError(f"no ```{lang} block starting with {first_line!r} in README.md")


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    """README's mypkg/flow.py (and a module of broken user code) in a fresh folder on sys.path."""
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "flow.py").write_text(block("python", "# mypkg/flow.py"))
    (tmp_path / "mypkg" / "bad.py").write_text(BAD)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
        del sys.modules[name]


def family(**kw):
    from autophagy.models.user_torch import TorchFamily

    base = dict(factory="mypkg.flow:make", loss="mypkg.flow:loss", sampler="mypkg.flow:sample",
                kwargs={"hidden": 8}, train_steps=5, batch_size=16, device="cpu")
    return TorchFamily(TorchFamily.Options(**{**base, **kw}), INFO)


def data(R=3, n=60):
    return Streams(0, R, -1, "data").normal(n, 2) * [1.0, 2.0] + 1.0


def test_readme_example_runs(pkg):
    cfg = yaml.safe_load(block("yaml", "# flow_loop.yaml (beside mypkg/)"))
    assert cfg["model"]["family"] == "torch"
    (pkg / "flow_loop.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["run", str(pkg / "flow_loop.yaml"), "--no-save", "--set", "model.train_steps=30",
                                 "--set", "replicates=2", "--set", "generations=1", "--set", "loop.n_real=100"])
    assert r.exit_code == 0, r.output
    assert "mode-coverage" in r.output


def test_conformance(pkg):
    """Shapes, determinism, R = 66 vs R = 3, other replicates' data, bias (temperature), warm start."""
    model = check_family(family(), data(), INFO, m=20, m_bias=200, big=66)
    assert set(model.param_metrics(INFO)) == {"train_loss"}
    assert not np.allclose(model.sample(20, Streams(0, 3, 1, "s")),
                           family().fit(data(), Streams(5, 3, 0, "fit")).sample(20, Streams(0, 3, 1, "s")))


def test_learns_and_leaves_the_global_rng_alone(pkg):
    """A few hundred steps fit a shifted, stretched Gaussian; torch's global RNG state is unchanged."""
    before = torch.get_rng_state()
    model = family(train_steps=300, batch_size=64).fit(data(R=2, n=400), Streams(0, 2, 0, "fit"))
    assert torch.equal(torch.get_rng_state(), before)
    x = model.sample(2000, Streams(0, 2, 1, "s"))
    np.testing.assert_allclose(x.mean(1), [[1.0, 1.0]] * 2, atol=0.25)
    np.testing.assert_allclose(x.std(1), [[1.0, 2.0]] * 2, rtol=0.2)


def test_warm_start_and_checkpoints(pkg, tmp_path):
    base = family().fit(data(), Streams(0, 3, 0, "fit"))
    warm = family(lr=1e-12, finetune_steps=2).fit(data() * 3.0, Streams(0, 3, 1, "fit"), init=base)
    s = Streams(0, 3, 2, "s")
    np.testing.assert_allclose(warm.sample(20, s), base.sample(20, s), atol=1e-5)  # same modules and scaling
    with pytest.raises(ConfigError, match="init"):
        family().fit(data(R=2), Streams(0, 2, 1, "fit"), init=base)
    family().save(base, tmp_path / "ckpt")
    back = family().load(tmp_path / "ckpt")
    np.testing.assert_array_equal(back.sample(25, s, bias=0.5), base.sample(25, s, bias=0.5))
    np.testing.assert_array_equal(back.param_metrics(INFO)["train_loss"], base.param_metrics(INFO)["train_loss"])
    with pytest.raises(ConfigError, match="same model options"):
        family(lr=0.5).load(tmp_path / "ckpt")


@pytest.mark.parametrize("patch, field", [
    ({"factory": "mypkg.flow:nope"}, "model.factory"),           # does not resolve
    ({"factory": "nopkg.flow:make"}, "model.factory"),
    ({"factory": "mypkg.bad:not_callable"}, "model.factory"),
    ({"factory": "mypkg.bad:not_a_module"}, "model.factory"),   # returns no nn.Module
    ({"factory": "mypkg.bad:too_wide"}, "model.factory"),       # wrong output shape
    ({"kwargs": {"width": 3}}, "model.factory"),                 # the factory rejects its kwargs
    ({"loss": "mypkg.bad:per_example_loss"}, "model.loss"),      # not a scalar (first training step)
    ({"sampler": "mypkg.flow"}, "model.sampler"),
    ({"device": "cuda"}, "model.device"),                        # no CUDA here (skipped where there is)
])
def test_bad_user_code_one_line_exit_2(pkg, patch, field):
    if patch.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available")
    model = {"family": "torch", "factory": "mypkg.flow:make", "loss": "mypkg.flow:loss",
             "sampler": "mypkg.flow:sample", "train_steps": 3, "batch_size": 8, **patch}
    cfg = {"seed": 0, "replicates": 2, "generations": 1, "data": {"source": "gaussian", "dim": 2},
           "model": model, "loop": {"n_real": 30}, "metrics": ["sliced-wasserstein"]}
    (pkg / "bad.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["run", str(pkg / "bad.yaml"), "--no-save"])
    lines = [line for line in r.output.strip().splitlines() if line.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].removeprefix("error: ").startswith(field), r.output


# ------------------------------------------------------------------ your own data: memory-mapped files, custom sources
def test_memmap_npy_is_shared_and_replicate_independent(tmp_path):
    from autophagy.data.lazy import MemmapSource

    x = np.arange(500 * 3, dtype=np.float32).reshape(500, 3)
    np.save(tmp_path / "big.npy", x)
    src = MemmapSource(MemmapSource.Options(path="big.npy"), base_dir=tmp_path)
    assert isinstance(src.array, np.memmap) and src.info.dim == 3 and src.info.kind == "vector"
    many, few = src.sample(40, Streams(0, 70, 0, "data")), src.sample(40, Streams(0, 3, 0, "data"))
    assert many.shape == (70, 40, 3) and np.array_equal(many[:3], few)
    assert np.all(many[..., 1] == many[..., 0] + 1) and np.all(many[..., 0] % 3 == 0)  # whole rows of the file
    assert not np.array_equal(many[0], many[1])
    assert MemmapSource(MemmapSource.Options(path=str(tmp_path / "big.npy"), max_rows=10)).sample(
        200, Streams(0, 2, 0, "d")).max() < 30


def test_memmap_images_npy_and_png_folder(tmp_path):
    import matplotlib.image as mpimg

    from autophagy.data.lazy import MemmapSource

    img = (np.arange(6 * 16) % 256).astype(np.uint8).reshape(6, 4, 4) * 10
    np.save(tmp_path / "imgs.npy", img)
    src = MemmapSource(MemmapSource.Options(path="imgs.npy"), base_dir=tmp_path)
    assert src.info.kind == "image" and src.info.image_shape == (4, 4)
    s = src.sample(10, Streams(0, 2, 0, "d"))
    assert s.shape == (2, 10, 16) and 0 <= s.min() and s.max() <= 1
    assert any(np.allclose(s[0, 0], im.reshape(-1) / 255) for im in img)
    (tmp_path / "png").mkdir()
    for i in range(5):
        mpimg.imsave(tmp_path / "png" / f"{i}.png", np.full((4, 4), i / 4), cmap="gray", vmin=0, vmax=1)
    folder = MemmapSource(MemmapSource.Options(path="png"), base_dir=tmp_path)
    s = folder.sample(20, Streams(0, 2, 0, "d"))
    assert folder.info.image_shape == (4, 4) and s.shape == (2, 20, 16)
    np.testing.assert_allclose(np.unique(np.round(s * 4)), np.arange(5))  # the five grey levels, read on demand
    with pytest.raises(Exception, match="data.path"):
        MemmapSource(MemmapSource.Options(path="missing.npy"), base_dir=tmp_path)
    np.save(tmp_path / "loud.npy", np.full((4, 2, 2), 3.0))  # float images must lie in [0, 1]
    with pytest.raises(Exception, match="data.path"):
        MemmapSource(MemmapSource.Options(path="loud.npy"), base_dir=tmp_path).sample(3, Streams(0, 1, 0, "d"))


def test_memmap_source_in_a_run(tmp_path):
    np.save(tmp_path / "x.npy", Streams(1, 1, 0, "x").normal(2000, 2)[0])
    cfg = {"seed": 0, "replicates": 3, "generations": 1, "data": {"source": "memmap", "path": "x.npy"},
           "model": {"family": "gaussian"}, "loop": {"n_real": 50}, "metrics": ["sliced-wasserstein"]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["run", str(tmp_path / "c.yaml"), "--no-save"])
    assert r.exit_code == 0 and "sliced-wasserstein" in r.output, r.output


def test_custom_source_example_in_docs(tmp_path, monkeypatch):
    """docs/neural.md's custom data source runs as written, beside a config."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "neural.md").read_text()
    body = next(b for b in re.findall(r"```python\n(.*?)```", docs, flags=re.S) if b.startswith("# mysrc/spiral.py"))
    (tmp_path / "mysrc").mkdir()
    (tmp_path / "mysrc" / "__init__.py").write_text("")
    (tmp_path / "mysrc" / "spiral.py").write_text(body)
    cfg = {"seed": 0, "replicates": 3, "generations": 1, "data": {"source": "mysrc.spiral:Spiral", "turns": 2.0},
           "model": {"family": "kde"}, "loop": {"n_real": 50}, "metrics": ["sliced-wasserstein"]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    try:
        r = CliRunner().invoke(app, ["run", str(tmp_path / "c.yaml"), "--no-save"])
    finally:
        for name in [m for m in sys.modules if m == "mysrc" or m.startswith("mysrc.")]:
            del sys.modules[name]
    assert r.exit_code == 0 and "sliced-wasserstein" in r.output, r.output
