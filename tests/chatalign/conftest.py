"""Fixtures of the rollout-engine tests (test_rollout.py, test_rollout_batch.py)."""

import pytest
import torch

from ..conftest import tiny_llama


@pytest.fixture(scope="module")
def sharp_model(smol_tokenizer):
    """The tiny Llama with weights drawn wide (std 0.3): its greedy answers vary from token to token and its
    top-2 logits are far apart, so a wrong position id or mask changes the tokens (the standard init repeats
    one token and would hide such bugs)."""
    model = tiny_llama(smol_tokenizer)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.3, generator=g)
    model.generation_config.eos_token_id = None
    return model.eval()
