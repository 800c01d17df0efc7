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
