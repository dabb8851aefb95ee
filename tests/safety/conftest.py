"""Fixtures for the safety tests: a tiny random safety RM saved like a reward run's model, one torch thread
(tests/conftest.py's `one_torch_thread`, not autouse: the pure tests must not pay for importing torch)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_rm_dir(tmp_path_factory, smol_tokenizer):
    """A random-init scalar-head RM (LlamaForSequenceClassification, num_labels=1) saved as an HF directory."""
    from chatalign.models import tiny_llama
    from chatalign.reward.model import reward_model_from_causal_lm, save_reward_model

    tok = smol_tokenizer.__class__.from_pretrained(smol_tokenizer.name_or_path)  # save_reward_model edits pad
    tok.pad_token = smol_tokenizer.pad_token
    rm = reward_model_from_causal_lm(tiny_llama(smol_tokenizer, seed=3), seed=4)
    end_of_turn = smol_tokenizer.convert_tokens_to_ids("<|im_end|>")
    d = tmp_path_factory.mktemp("tiny_rm") / "rm"
    save_reward_model(rm, tok, d, {end_of_turn})
    return d
