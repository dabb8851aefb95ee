"""What a user sees when vLLM cannot run: one line (a UserError, no traceback) naming the model and what to change."""

from __future__ import annotations

import json
import shutil

import pytest

from chatalign.errors import UserError
from chatalign.rollout.vllm_engine import VLLMEngine


def test_too_small_a_memory_share_names_the_key(embedded_dir, smol_tokenizer):
    engine = VLLMEngine(str(embedded_dir), dtype="float32", memory_share=0.01, max_model_len=512)
    with pytest.raises(UserError) as err:
        engine.rollouts(smol_tokenizer, [[1, 2, 3]], max_new_tokens=2)
    message = str(err.value)
    assert "\n" not in message and str(embedded_dir) in message
    assert "generation.memory_share is 0.01: raise it" in message
    engine.close()


def test_an_architecture_vllm_does_not_know_is_one_line(embedded_dir, smol_tokenizer, tmp_path):
    model = tmp_path / "unknown"
    shutil.copytree(embedded_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "architectures": ["NoSuchModelForCausalLM"]}))
    engine = VLLMEngine(str(model), dtype="float32", memory_share=0.2, max_model_len=512)
    with pytest.raises(UserError) as err:
        engine.rollouts(smol_tokenizer, [[1, 2, 3]], max_new_tokens=2)
    message = str(err.value)
    assert "\n" not in message and message.startswith("vLLM 0.") and str(model) in message
    assert "NoSuchModelForCausalLM" in message, message
    engine.close()
