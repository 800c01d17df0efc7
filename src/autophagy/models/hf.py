"""The ``hf-causal-lm`` family: Hugging Face causal language models, fine-tuned per generation.

The path a researcher takes with their own GPT-2 / Pythia checkpoint: ``model_dir`` is a *local*
directory written by ``save_pretrained`` (loaded with ``local_files_only=True``: nothing is ever
downloaded), or ``config`` builds a randomly initialised model from a config mapping such as
``{model_type: gpt2, n_layer: 2, n_head: 2, n_embd: 64}`` (``vocab_size`` is set to V + 1). Token ids
are used as they are: id V is the start symbol, the model's logits are restricted to ids 0..V−1, so
the source's tokenizer must match the checkpoint's ids (a source whose ids are the checkpoint's).

Each replicate holds its own model instance (replicates loop; a Hugging Face model is not a batched
ensemble). Random initialisation draws from torch's global generator, which Hugging Face uses: it is
run inside ``torch.random.fork_rng`` seeded from replicate r's seed-tree generator, so the global state
is restored afterwards and replicate r's weights depend only on the seed tree. Training: AdamW on the
next-token cross-entropy, ``steps`` steps (``finetune_steps`` when warm-started from the previous
generation: fine-tuning, Shumailov et al. 2024), minibatches from each replicate's own generator.
Sampling is ``decoding.decode`` (temperature = ``sampling.bias``, top-k, top-p, beams, penalty).

Needs the ``text`` extra (``transformers``); without it the family is a one-line ConfigError.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from pydantic import Field, PositiveInt, model_validator

from ..errors import ConfigError
from ..options import Options
from ..protocols import SourceInfo
from ..rng import Streams
from .decoding import decode
from .torch_util import require_torch, set_threads, torch_generator


def require_transformers():
    try:
        import transformers
    except ImportError:
        raise ConfigError("model.family", "hf-causal-lm", "", problem="needs the `transformers` package: pip install "
                          "'autophagy[text]' (or use model.family transformer)") from None
    return transformers


class HFModel:
    """R Hugging Face models (a list), sampled with the family's decoding rules."""

    def __init__(self, models: list, V: int, T: int, decoding=None, train_loss=None):
        self.models, self.V, self.T, self.decoding = models, V, T, decoding
        self.R = len(models)
        self.train_loss = np.zeros(self.R) if train_loss is None else np.asarray(train_loss)

    def _logits(self, r: int, x: np.ndarray):
        torch = require_torch()
        ids = torch.as_tensor(np.concatenate([np.full((x.shape[0], 1), self.V), x], axis=1), dtype=torch.long)
        return self.models[r](input_ids=ids).logits[..., : self.V].double()

    def next_logp(self, prefix: np.ndarray) -> np.ndarray:
        torch = require_torch()
        with torch.no_grad():
            return np.stack([torch.log_softmax(self._logits(r, prefix[r])[:, -1], -1).numpy() for r in range(self.R)])

    def sample(self, m: int, streams: Streams, bias: float = 1.0) -> np.ndarray:
        return decode(self.next_logp, self.R, m, self.T, streams.uniform(m, self.T), bias, self.decoding)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        torch = require_torch()
        x = np.asarray(x, dtype=np.int64)
        out = []
        with torch.no_grad():
            for r in range(self.R):
                lp = torch.log_softmax(self._logits(r, x[r, :, :-1]), -1)
                out.append(lp.gather(-1, torch.as_tensor(x[r])[..., None])[..., 0].sum(-1).numpy())
        return np.stack(out)

    def param_metrics(self, info: SourceInfo) -> dict[str, np.ndarray]:
        return {"train_loss": self.train_loss.astype(float)}


class HFCausalLMFamily:
    """The ``hf-causal-lm`` family (R model instances; warm start fine-tunes the previous generation's)."""

    batched = True
    decodes = True

    class Options(Options):
        model_dir: Optional[str] = Field(None, description="a local save_pretrained directory (never downloaded)")
        config: Optional[dict[str, Any]] = Field(None, description="a transformers config mapping (random init), "
                                                 "e.g. {model_type: gpt2, n_layer: 1, n_head: 2, n_embd: 32}")
        steps: PositiveInt = Field(100, description="AdamW steps per generation from scratch")
        finetune_steps: Optional[PositiveInt] = Field(None, description="steps when warm-started (default: steps)")
        batch_size: PositiveInt = Field(16, description="sequences per step")
        lr: float = Field(1e-3, gt=0.0, description="AdamW learning rate")
        threads: Optional[PositiveInt] = Field(None, description="torch intra-op threads")

        @model_validator(mode="after")
        def _one_source(self):
            if (self.model_dir is None) == (self.config is None):
                raise ConfigError("model.model_dir", self.model_dir, "exactly one of model.model_dir or model.config")
            return self

    def __init__(self, options: "HFCausalLMFamily.Options", info: SourceInfo, base_dir: Path = Path(".")):
        self.options, self.info, self.decoding = options, info, None
        if not info.tokens:
            raise ConfigError("model.family", "hf-causal-lm", f"a token source (markov-text, text), not kind {info.kind!r}")
        require_torch()
        self.tf = require_transformers()
        if options.model_dir is not None:
            path = Path(options.model_dir)
            if not (path / "config.json").is_file():
                raise ConfigError("model.model_dir", options.model_dir, "an existing local directory with config.json "
                                  "(written by save_pretrained; nothing is downloaded)")

    def _new(self, gen):
        torch, tf = require_torch(), self.tf
        V = self.info.vocab_size
        seed = int(gen.initial_seed())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if self.options.model_dir is not None:
                model = tf.AutoModelForCausalLM.from_pretrained(self.options.model_dir, local_files_only=True)
                if model.get_output_embeddings().weight.shape[0] < V + 1:
                    raise ConfigError("model.model_dir", self.options.model_dir,
                                      f"a model with at least {V + 1} token ids (data.vocab_size + a start symbol)")
            else:
                cfg = dict(self.options.config)
                kind = cfg.pop("model_type", "gpt2")
                try:
                    conf = tf.AutoConfig.for_model(kind, **{**cfg, "vocab_size": V + 1})
                except (ValueError, KeyError, TypeError) as exc:
                    raise ConfigError("model.config", self.options.config, f"a transformers config ({exc})") from None
                model = tf.AutoModelForCausalLM.from_config(conf)
        return model

    def fit(self, data: np.ndarray, streams: Streams, init: Optional[HFModel] = None) -> HFModel:
        torch = require_torch()
        o, V = self.options, self.info.vocab_size
        set_threads(o.threads)
        x = np.asarray(data, dtype=np.int64)
        R, n, T = x.shape
        if init is not None and init.R != R:
            raise ConfigError("init", f"{init.R} replicates", f"a model with {R} replicates")
        steps = o.steps if init is None else (o.finetune_steps or o.steps)
        models, losses = [], []
        for r, g in enumerate(streams.generators()):
            tg = torch_generator(g)
            if init is None:
                model = self._new(tg)
            else:
                model = self._new(tg)
                model.load_state_dict(init.models[r].state_dict())
            opt = torch.optim.AdamW(model.parameters(), lr=o.lr)
            model.train()
            xr = torch.as_tensor(x[r])
            inputs = torch.cat([torch.full((n, 1), V, dtype=torch.long), xr[:, :-1]], 1)
            tail = []
            for _ in range(steps):
                idx = torch.randint(n, (o.batch_size,), generator=tg)
                logits = model(input_ids=inputs[idx]).logits[..., :V]
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), xr[idx].reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tail.append(float(loss.detach()))
            model.eval()
            models.append(model)
            losses.append(np.mean(tail[-20:]))
        return HFModel(models, V, T, self.decoding, losses)
