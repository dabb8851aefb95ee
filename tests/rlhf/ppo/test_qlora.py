"""QLoRA for the PPO policy, for real (bitsandbytes 4-bit NF4 on this CPU): a PPO round trains LoRA adapters on a
4-bit base, the reference is that base with the adapter off, and the round's model is the trained adapter merged
into the base reloaded in full precision (the PEFT adapter beside it with `lora.save: both`, as for plain LoRA)."""

from __future__ import annotations

import json

import pytest

from chatalign.rlhf.round import run_round

from ..conftest import by_text, round_cfg

pytest.importorskip("bitsandbytes", reason="the qlora extra (pip install 'chatalign[qlora]') is in the dev install")

QLORA = {"enabled": True, "quantize": "4bit", "r": 4, "alpha": 8, "dropout": 0.0, "save": "both",
         "target_modules": ["q_proj", "v_proj"]}


@pytest.mark.parametrize("quantize", ["4bit", "none"])
def test_lora_ppo_round_exports_the_full_precision_base_plus_the_trained_adapter(rlhf_files, tmp_path, quantize):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    out = tmp_path / "round"
    cfg = round_cfg(rlhf_files, out, rlhf_files / "policy", "ppo",
                    ppo={"lora": {**QLORA, "quantize": quantize}, "optim": {"lr": 3e-2, "value_lr": 1e-3},
                         "early_stopping": {"restore_best": False}})  # the last iteration is the model
    summary = run_round(cfg, progress=False, reward_fn=by_text)
    assert summary["ppo_iterations"] == 2
    adapter = out / "adapter"
    lora_b = [t for n, t in load_file(adapter / "adapter_model.safetensors").items() if "lora_B" in n]
    assert lora_b and any(t.abs().max() > 0 for t in lora_b)  # trained: B starts at zero
    merged = AutoModelForCausalLM.from_pretrained(out / "model", dtype=torch.float32)
    assert getattr(merged.config, "quantization_config", None) is None  # whole weights, not 4-bit
    base = AutoModelForCausalLM.from_pretrained(rlhf_files / "policy", dtype=torch.float32)
    expected = PeftModel.from_pretrained(base, adapter).merge_and_unload().state_dict()
    for name, tensor in merged.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-6, msg=name)
    untouched = AutoModelForCausalLM.from_pretrained(rlhf_files / "policy", dtype=torch.float32).state_dict()
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[q], untouched[q])
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    kls = [m["kl"] for m in metrics if "kl" in m]
    assert kls and abs(kls[0]) < 1e-3  # iteration 1: the policy is its 4-bit reference (adapter B = 0)


def test_qlora_ppo_under_deepspeed_is_refused_by_name(rlhf_files, tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="lora.quantize.*DeepSpeed"):
        round_cfg(rlhf_files, tmp_path / "r", rlhf_files / "policy", "ppo",
                  ppo={"lora": QLORA, "deepspeed": {"enabled": True}})
