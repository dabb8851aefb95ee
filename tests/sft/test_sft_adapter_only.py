"""`lora.save: adapter`: a LoRA SFT run keeps its adapter (PEFT format, with the tokenizer) instead of the merged
model; peft loads it from anywhere, `chatalign export` ships it, and a stage that needs model/ says why not."""

from __future__ import annotations

import json

import pytest

from chatalign.cli.main import main


def test_sft_with_lora_save_adapter_keeps_a_loadable_adapter_instead_of_the_model(recipe, tiny_model_dir,
                                                                                  monkeypatch, tmp_path, capsys):
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.chdir(recipe.parent)
    assert main(["sft", "--config", str(recipe), "lora.enabled=true", "lora.save=adapter", "lora.r=4",
                 "--no-progress"]) == 0
    run = recipe.parent / "runs" / "sft"
    adapter = run / "adapter"
    assert not (run / "model").exists() and (adapter / "adapter_model.safetensors").is_file()
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir.resolve())  # absolute: loads from anywhere
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["outputs"] == {"model": None, "adapter": "adapter"}
    assert json.loads((run / "eval_final.json").read_text())  # evaluated on the merged model before it went

    monkeypatch.chdir(tmp_path)  # elsewhere: the adapter folder alone is enough
    tok = AutoTokenizer.from_pretrained(adapter)
    assert tok.chat_template  # the run's tokenizer came with it
    tuned = AutoPeftModelForCausalLM.from_pretrained(adapter, dtype=torch.float32).merge_and_unload()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(tuned.state_dict()[q], base.state_dict()[q])  # trained

    assert main(["export", str(run), "--out", str(tmp_path / "hub")]) == 0
    assert (tmp_path / "hub" / "adapter_config.json").is_file() and not (tmp_path / "hub" / "config.json").exists()
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "library_name: peft" in card and "AutoPeftModelForCausalLM" in card

    capsys.readouterr()
    assert main(["sft", "--config", str(recipe), f"model.name={run}", f"output_dir={tmp_path / 'next'}",
                 "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "lora.save: adapter" in err and "Traceback" not in err


@pytest.mark.parametrize("stage, recipe, extra", [
    ("reward", "reward_helpful.yaml", ["train.trainable_layers=null"]),
    ("gatt", "gatt.yaml", ["train.trainable_layers=null"]),
    ("safety", "safety.yaml", ["train.trainable_layers=null"]),
])
def test_stages_that_read_their_model_back_refuse_adapter_only_by_name(stage, recipe, extra, capsys):
    from pathlib import Path

    recipes = Path(__file__).resolve().parents[2] / "recipes" / "quickstart"
    assert main([stage, "--config", str(recipes / recipe), "lora.enabled=true", "lora.save=adapter", *extra,
                 "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "lora.save: adapter is not offered here" in err and "Traceback" not in err


@pytest.mark.parametrize("section", ["rs", "ppo"])
def test_rlhf_round_refuses_adapter_only_for_both_of_its_trainers(section):
    from pydantic import ValidationError

    from chatalign.rlhf.config import PPOSection, RejectionSampling

    cls = {"rs": RejectionSampling, "ppo": PPOSection}[section]
    with pytest.raises(ValidationError, match="lora.save: adapter is not offered here"):
        cls.model_validate({"lora": {"enabled": True, "save": "adapter"}})
