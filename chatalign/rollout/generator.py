"""What answers prompts wherever the pipeline generates: one interface over both backends of `generation:`.

A generator has `rollouts(tokenizer, prompt_ids, **settings) -> list[Rollout]` (the settings of
`chatalign.rollout.engine.generate_rollouts`) and `close()`. `NativeGenerator` runs chatalign's own engine on a
model in memory; `chatalign.rollout.vllm_engine.VLLMEngine` runs vLLM over a model directory and can take new
weights in memory (`load_weights`), so one engine serves several models of one architecture in turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chatalign.rollout.generator_interface import Generator


def as_generator(model_or_generator) -> Generator:
    """A generator as given, or the native engine on a model (callers that hold a loaded model)."""
    if isinstance(model_or_generator, Generator):
        return model_or_generator
    return NativeGenerator.over(model_or_generator)


@dataclass
class NativeGenerator(Generator):
    """chatalign's batched, KV-cached decode loop on the model `get_model()` returns (looked up at each call: a
    PPO policy is replaced in place by its LoRA export)."""

    get_model: Callable[[], object]

    @classmethod
    def over(cls, model) -> NativeGenerator:
        return cls(lambda: model)

    def rollouts(self, tokenizer, prompt_ids: list[list[int]], **settings) -> list:
        from chatalign.rollout.engine import generate_rollouts

        return generate_rollouts(self.get_model(), tokenizer, prompt_ids, **settings)

    def close(self) -> None:
        self.get_model = None


def vllm_generator(generation, model_path: str, model_cfg, ranks: int = 1):
    """A VLLMEngine over `model_path` with the recipe's `generation:` settings (vLLM reads the weights itself).
    `ranks` > 1: this rank's engine of a launch of that many, which every rank starts and calls together."""
    from chatalign.models import resolve_model_path
    from chatalign.rollout.vllm_engine import VLLMEngine

    return VLLMEngine(resolve_model_path(model_path), dtype=model_cfg.dtype, memory_share=generation.memory_share,
                      max_model_len=generation.max_model_len, trust_remote_code=model_cfg.trust_remote_code,
                      ranks=ranks)


def launch_ranks(dist) -> int:
    """The number of ranks of this launch (1 without a process group)."""
    return dist.world_size if dist is not None else 1


ARCHITECTURE_KEYS = ("architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size",
                     "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "tie_word_embeddings")


def same_architecture(path_a: str, path_b: str) -> bool:
    """Whether two model directories differ only in their weights (so one vLLM engine can serve both)."""
    import json
    from pathlib import Path

    def shape(path: str) -> dict | None:
        file = Path(path) / "config.json"
        if not file.is_file():  # a Hub id: not compared, a new engine is safe
            return None
        config = json.loads(file.read_text(encoding="utf-8"))
        return {k: config.get(k) for k in ARCHITECTURE_KEYS}

    a = shape(path_a)
    return a is not None and a == shape(path_b)


class ModelGenerators:
    """Generators for model directories used one after another (a round's evaluation of this round's, the previous
    and the SFT model; a stage's one model). Native: each model loaded by `load_model(path) -> (model, tokenizer)`
    and kept until another one is asked for. vLLM: one engine, its weights reloaded for the next model of the same
    architecture (a new engine only for another architecture); `close()` frees the model or shuts the engine."""

    def __init__(self, generation, model_cfg, load_model: Callable[[str], tuple], ranks: int = 1):
        self.generation, self.model_cfg, self.load_model, self.ranks = generation, model_cfg, load_model, ranks
        self.engine, self.native, self.served = None, None, None

    def open(self, path: str) -> tuple:
        """(generator, tokenizer with the recipe's chat template) for the model at `path`."""
        if self.generation.backend == "native":
            if self.served != path or self.native[0].get_model is None:  # kept while asked for again, unless closed
                self.native, self.served = None, None
                model, tok = self.load_model(path)
                self.native, self.served = (NativeGenerator.over(model), tok), path
            return self.native
        from chatalign.models import load_tokenizer, resolve_model_path
        from chatalign.text.templates import apply_named_template

        local = resolve_model_path(path)
        if self.engine is not None and self.served != local:
            if same_architecture(self.served, local):
                self.engine.load_model_dir(local)
            else:
                self.close()
        if self.engine is None:
            self.engine = vllm_generator(self.generation, local, self.model_cfg, self.ranks)
        self.served = local
        tok = load_tokenizer(path, self.model_cfg.trust_remote_code)
        apply_named_template(tok, getattr(self.model_cfg, "chat_template", None))
        return self.engine, tok

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
        self.engine, self.native, self.served = None, None, None


def open_generator(generation, model_cfg, path: str, load_model: Callable[[str], tuple], ranks: int = 1) -> tuple:
    """(generator, tokenizer) for one model; the caller closes the generator when done (a vLLM engine holds
    memory, and a second one in the process would not fit beside it). `ranks` > 1: every rank of a launch of that
    many opens its own, together (see VLLMEngine)."""
    return ModelGenerators(generation, model_cfg, load_model, ranks).open(path)
