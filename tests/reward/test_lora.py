"""LoRA reward training: only adapters and the new head are trained and checkpointed; the saved model is
the merged full RM, loadable without peft."""

import json

import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from chatalign.reward.run import run_reward

from .conftest import toy_config


def test_lora_run_saves_a_merged_rm(tmp_path, toy_files, tiny_model_dir):
    train, held = toy_files
    cfg = toy_config(tmp_path, train, held, model=tiny_model_dir, max_steps=3)
    cfg.lora.enabled = True
    cfg.lora.r = 4
    cfg.checkpoint.every_steps = 3
    summary = run_reward(cfg, progress=False)
    run = tmp_path / "run"
    ckpt = load_file(str(run / "checkpoints" / "step-0000003" / "model.safetensors"))
    assert ckpt and all("lora_" in k or "modules_to_save" in k for k in ckpt)
    assert any("score" in k for k in ckpt)  # the new head is trained in full beside the adapters
    rm = AutoModelForSequenceClassification.from_pretrained(run / "model")
    names = [n for n, _ in rm.named_parameters()]
    assert not any("lora" in n for n in names) and "score.weight" in names
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(dict(rm.named_parameters())[q], dict(base.named_parameters())[q])  # merged
    assert json.loads((run / "manifest.json").read_text())["status"] == "finished"
    assert summary["eval_pairs"] == 10


def test_rm_starts_from_an_sft_run_directory(tmp_path, tiny_model_dir):
    import shutil

    from chatalign.reward.model import load_reward_model

    run = tmp_path / "sft_run"
    shutil.copytree(tiny_model_dir, run / "model")
    (run / "manifest.json").write_text(json.dumps({"stage": "sft", "status": "finished"}))
    rm = load_reward_model(run, "float32", seed=0)
    assert type(rm).__name__ == "LlamaForSequenceClassification" and rm.config.num_labels == 1
    sd = load_file(str(tiny_model_dir / "model.safetensors"))
    emb = sd["model.embed_tokens.weight"]
    assert torch.equal(rm.model.embed_tokens.weight, emb)  # decoder weights come from the chat model
    again = load_reward_model(run, "float32", seed=0)
    assert torch.equal(again.score.weight, rm.score.weight)  # the head init is seeded


def test_qlora_rm_trains_on_a_4bit_base_and_saves_adapter_and_merged_rm(tmp_path, toy_files, tiny_model_dir):
    """QLoRA for real (bitsandbytes NF4 on this CPU): the score head stays whole, the saved RM is the
    full-precision base with the trained adapter and head merged in, the adapter is kept in PEFT format."""
    import pytest

    pytest.importorskip("bitsandbytes", reason="the qlora extra is in the dev install")
    from peft import PeftModel

    from chatalign.reward.model import load_reward_model

    train, held = toy_files
    cfg = toy_config(tmp_path, train, held, model=tiny_model_dir, max_steps=3)
    cfg.lora.enabled, cfg.lora.r, cfg.lora.quantize, cfg.lora.save = True, 4, "4bit", "both"
    run_reward(cfg, progress=False)
    run = tmp_path / "run"
    rm = AutoModelForSequenceClassification.from_pretrained(run / "model", dtype=torch.float32)
    assert getattr(rm.config, "quantization_config", None) is None
    base = load_reward_model(tiny_model_dir, "float32", seed=0)
    expected = PeftModel.from_pretrained(base, run / "adapter").merge_and_unload().state_dict()
    for name, tensor in rm.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-6, msg=name)
    untouched = load_reward_model(tiny_model_dir, "float32", seed=0).state_dict()
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(rm.state_dict()[q], untouched[q])  # the adapter trained and was merged
