"""A training model's weights as a generation engine loads them: checkpoint names, LoRA adapters folded in."""

import torch

from chatalign.rollout.weight_sync import checkpoint_weights
from tests.conftest import tiny_llama


def test_a_plain_model_hands_over_its_own_state_dict(smol_tokenizer):
    lm = tiny_llama(smol_tokenizer, hidden=32, layers=1, heads=2, kv_heads=1)
    got = dict(checkpoint_weights(lm))
    assert got.keys() == lm.state_dict().keys()
    assert all(torch.equal(got[k], v) for k, v in lm.state_dict().items())


def test_a_lora_policy_hands_over_base_plus_adapter_under_the_plain_names(smol_tokenizer):
    from peft import LoraConfig, get_peft_model

    lm = tiny_llama(smol_tokenizer, hidden=32, layers=2, heads=2, kv_heads=1)
    names = set(lm.state_dict())
    peft = get_peft_model(lm, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    with torch.no_grad():  # B starts at zero: give the adapter an update to fold in
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    got = dict(checkpoint_weights(peft))
    before = {n: p.detach().clone() for n, p in peft.named_parameters()}
    merged = peft.merge_and_unload().state_dict()
    assert got.keys() == names == merged.keys()
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(got[q], before[f"base_model.model.{q.replace('.weight', '.base_layer.weight')}"])
    for k in names:
        assert torch.allclose(got[k], merged[k], atol=1e-6), k

