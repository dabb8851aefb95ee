"""End to end on a tiny random Llama and a separable toy set: the loss goes down, the implicit-reward accuracy
goes up (in training and on held-out pairs), and the run directory holds what later stages and people read."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from chatalign.dpo.stage import STAGE

from .conftest import toy_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, toy_files, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("e2e")
    train, held = toy_files
    summary = STAGE.run(toy_config(tmp / "run", train, held, tiny_model_dir), progress=False)
    return tmp / "run", summary


def metrics(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_loss_down_and_implicit_accuracy_up(trained):
    run, summary = trained
    m = metrics(run)
    assert len(m) == summary["steps"] == 8 and summary["pairs"] == 24  # 24 pairs / 6 per step x 2 epochs
    assert m[0]["loss"] == pytest.approx(0.693147, abs=1e-4)  # the policy starts as its reference: log 2
    assert m[-1]["loss"] < 0.2 and m[-1]["accuracy"] == 1.0 and m[-1]["reward_margin"] > 1.0
    assert m[-1]["chosen_logp"] > m[0]["chosen_logp"] and m[-1]["rejected_logp"] < m[0]["rejected_logp"]
    assert summary["eval_pairs"] == 16 and summary["eval_accuracy"] >= 0.9  # chance is 0.5, the start 0


def test_run_directory_manifest_report_and_model(trained, tiny_model_dir):
    run, _ = trained
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stage"] == "dpo" and manifest["status"] == "finished"
    assert manifest["parents"] == [str(tiny_model_dir.resolve())]
    assert set(manifest["inputs"]) == {"train:toy", "eval:toy"} and manifest["config"]["dpo"]["beta"] == 0.5
    for name in ("report.md", "training.png", "chosen_rejected.png", "eval.json", "eval_accuracy.png",
                 "eval_scores.png", "reference_logps.safetensors"):
        assert (run / name).stat().st_size > 0, name
    report = (run / "report.md").read_text()
    assert "significantly_better" in report and "eq. 7" in report
    assert set(json.loads((run / "eval.json").read_text())["per_strength"]) == {
        "significantly_better", "better", "slightly_better", "negligibly_better"}
    ref = load_file(str(run / "reference_logps.safetensors"))
    assert ref["train"].shape == (24, 2) and ref["eval/toy"].shape == (16, 2) and (ref["train"] < 0).all()
    model = AutoModelForCausalLM.from_pretrained(run / "model")
    start = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not torch.equal(model.model.layers[0].mlp.up_proj.weight, start.model.layers[0].mlp.up_proj.weight)


def test_a_finished_run_is_not_overwritten(trained, toy_files, tiny_model_dir):
    from chatalign.errors import RunError

    run, _ = trained
    train, held = toy_files
    with pytest.raises(RunError, match="already holds a finished DPO run"):
        STAGE.run(toy_config(run, train, held, tiny_model_dir), progress=False)


def test_lora_and_top_layers_train_only_their_part(tmp_path, toy_files, tiny_model_dir):
    train, held = toy_files
    start = load_file(str(tiny_model_dir / "model.safetensors"))
    cfg = toy_config(tmp_path / "lora", train, held, tiny_model_dir, epochs=1)
    cfg.lora.enabled, cfg.lora.r = True, 4
    assert STAGE.run(cfg, progress=False)["final_loss"] < 0.69
    merged = load_file(str(tmp_path / "lora" / "model" / "model.safetensors"))
    assert set(merged) == set(start)  # adapters merged into plain HF weights
    assert not torch.equal(merged["model.layers.0.self_attn.q_proj.weight"],
                           start["model.layers.0.self_attn.q_proj.weight"])
    cfg = toy_config(tmp_path / "top", train, held, tiny_model_dir, epochs=1, trainable_layers=1)
    STAGE.run(cfg, progress=False)
    top = load_file(str(tmp_path / "top" / "model" / "model.safetensors"))
    changed = {k for k in start if not torch.equal(top[k], start[k])}
    assert changed and all(k.startswith(("model.layers.1.", "model.norm.")) for k in changed), changed


def test_qlora_dpo_learns_on_a_4bit_base_and_merges_into_full_precision(tmp_path, toy_files, tiny_model_dir):
    """QLoRA for real (bitsandbytes NF4 on this CPU); the reference is the 4-bit base with the adapter off."""
    pytest.importorskip("bitsandbytes", reason="the qlora extra is in the dev install")
    from peft import PeftModel

    train, held = toy_files
    cfg = toy_config(tmp_path / "qlora", train, held, tiny_model_dir, epochs=1)
    cfg.lora.enabled, cfg.lora.r, cfg.lora.quantize, cfg.lora.save = True, 4, "4bit", "both"
    assert STAGE.run(cfg, progress=False)["final_loss"] < 0.69
    run = tmp_path / "qlora"
    merged = AutoModelForCausalLM.from_pretrained(run / "model", dtype=torch.float32).state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    expected = PeftModel.from_pretrained(base, run / "adapter").merge_and_unload().state_dict()
    for name, tensor in merged.items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-6, msg=name)
