"""QLoRA for real (bitsandbytes 4-bit NF4 on this CPU): SFT trains adapters on a 4-bit base, writes the PEFT
adapter beside the merged model, and the merged model is the full-precision base plus that adapter."""

from __future__ import annotations

import json

import pytest

from chatalign.cli.main import main

pytest.importorskip("bitsandbytes", reason="the qlora extra (pip install 'chatalign[qlora]') is in the dev install")


def test_qlora_sft_writes_the_adapter_and_the_merged_full_precision_model(recipe, tiny_model_dir, monkeypatch):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    monkeypatch.chdir(recipe.parent)
    assert main(["sft", "--config", str(recipe), "lora.enabled=true", "lora.quantize=4bit", "lora.save=both",
                 "lora.r=4", "--no-progress"]) == 0
    run = recipe.parent / "runs" / "sft"
    adapter = run / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    lora_b = [t for n, t in load_file(adapter / "adapter_model.safetensors").items() if "lora_B" in n]
    assert lora_b and any(t.abs().max() > 0 for t in lora_b)  # trained: B starts at zero
    merged = AutoModelForCausalLM.from_pretrained(run / "model", dtype=torch.float32)
    assert getattr(merged.config, "quantization_config", None) is None  # whole weights, not 4-bit
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    expected = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    ref = expected.state_dict()
    for name, tensor in merged.state_dict().items():
        torch.testing.assert_close(tensor, ref[name], rtol=0, atol=1e-6, msg=name)
    untouched = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).state_dict()
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[q], untouched[q])
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("overrides, words", [
    (["lora.quantize=4bit"], ["lora.quantize", "lora.enabled: true"]),
    (["lora.enabled=true", "lora.quantize=4bit", "deepspeed.enabled=true"], ["lora.quantize", "deepspeed"]),
])
def test_qlora_config_mistakes_are_named(recipe, capsys, overrides, words):
    assert main(["sft", "--config", str(recipe), *overrides, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words) and "Traceback" not in err
