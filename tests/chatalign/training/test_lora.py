"""QLoRA's 4-bit base (bitsandbytes, for real on this CPU) keeps training after an evaluation pass."""

from __future__ import annotations

import pytest

from chatalign.training.config import LoraConfig
from chatalign.training.lora import apply_lora, quantization_kwargs

pytest.importorskip("bitsandbytes", reason="the qlora extra (pip install 'chatalign[qlora]') is in the dev install")


def test_adapters_on_a_4bit_base_get_gradients_after_an_eval_pass(tmp_path, smol_tokenizer):
    """bitsandbytes 0.50 repacks 4-bit weights for a CPU kernel without a backward at the first eval-mode forward
    without gradients; every adapter then got no gradient (rollouts come before each PPO update)."""
    import torch
    from transformers import AutoModelForCausalLM

    from tests.conftest import tiny_llama

    tiny_llama(smol_tokenizer, hidden=64, layers=2, heads=2, kv_heads=1).save_pretrained(tmp_path / "base")
    cfg = LoraConfig(enabled=True, quantize="4bit", r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "base", dtype=torch.float32,
                                                 **quantization_kwargs(cfg, "float32"))
    model = apply_lora(model, cfg, "CAUSAL_LM")
    ids = torch.randint(0, 1000, (2, 6)).to(next(model.parameters()).device)  # 4-bit: on the GPU if any
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
    model.train()
    model(input_ids=ids).logits.float().square().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert grads and all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None][:3]
    lora_a = [g for n, g in grads.items() if "lora_A" in n]  # B starts at zero, so A's gradient is zero at first
    assert any(g.abs().max() > 0 for n, g in grads.items() if "lora_B" in n) and lora_a
