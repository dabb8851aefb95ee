"""`chatalign sft` with DeepSpeed ZeRO-3 on CPU: under torchrun with 2 ranks (sharded), and in one process
started without a launcher (a 1-rank group); both save a whole model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ..conftest import torchrun_command


def sft_recipe(tmp_path, model_dir) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"Say {i}."},
                          {"role": "assistant", "content": f"{i} {i} {i}."}]} for i in range(16)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {"stage": "sft", "output_dir": str(tmp_path / "run"),
           "model": {"name": str(model_dir), "dtype": "float32"}, "data": {"train": "train.jsonl"},
           "train": {"epochs": 1, "seq_len": 96, "global_batch_rows": 2}, "optim": {"lr": 1e-3},
           "deepspeed": {"enabled": True, "zero_stage": 3}, "checkpoint": {"every_steps": 1}}
    recipe = tmp_path / "sft.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    return recipe


def assert_whole_model_saved(run: Path, model_dir: Path) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    assert json.loads((run / "manifest.json").read_text())["status"] == "finished"
    saved = load_file(str(run / "model" / "model.safetensors"))
    original = load_file(str(model_dir / "model.safetensors"))
    assert set(saved) == set(original), "the saved model is missing tensors"
    for name, t in original.items():
        assert saved[name].shape == t.shape, f"{name} saved as a shard {saved[name].shape}, not {t.shape}"
    assert any(not saved[n].equal(original[n]) for n in original), "training changed nothing"
    model = AutoModelForCausalLM.from_pretrained(run / "model")
    assert model.config.num_hidden_layers == 2
    ck = sorted((run / "checkpoints").iterdir())
    assert ck and (ck[-1] / "ds").is_dir()


@pytest.mark.slow
@pytest.mark.distributed
def test_sft_zero3_two_ranks_saves_a_whole_model(tmp_path, tiny_model_dir):
    recipe = sft_recipe(tmp_path, tiny_model_dir)
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(torchrun_command("-m", "chatalign.cli", "sft", "--config", str(recipe), "--no-progress"),
                         capture_output=True, text=True, timeout=500, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    assert_whole_model_saved(tmp_path / "run", tiny_model_dir)


@pytest.mark.slow
@pytest.mark.distributed
def test_sft_lora_under_zero3_two_ranks_merges_the_gathered_adapter(tmp_path, tiny_model_dir):
    """ZeRO-3 keeps only placeholders on each rank: the adapter is gathered, merged into the reloaded base and
    written beside it (lora.save: both), and the merged model is that base plus that adapter."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    recipe = sft_recipe(tmp_path, tiny_model_dir)
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(torchrun_command("-m", "chatalign.cli", "sft", "--config", str(recipe), "--no-progress",
                                          "lora.enabled=true", "lora.r=4", "lora.save=both"),
                         capture_output=True, text=True, timeout=500, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    run = tmp_path / "run"
    assert_whole_model_saved(run, tiny_model_dir)
    merged = AutoModelForCausalLM.from_pretrained(run / "model", dtype=torch.float32).state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    expected = PeftModel.from_pretrained(base, run / "adapter").merge_and_unload().state_dict()
    for name, tensor in merged.items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-6, msg=name)


@pytest.mark.slow
def test_sft_zero3_in_one_process_saves_a_whole_model(tmp_path, tiny_model_dir):
    """One GPU, no launcher: ZeRO-3 partitions the parameters over a 1-rank group (each holds an empty
    placeholder), so the model is saved from the gathered shards, not from the placeholders."""
    recipe = sft_recipe(tmp_path, tiny_model_dir)
    launcher = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {**{k: v for k, v in os.environ.items() if k not in launcher}, "DS_ACCELERATOR": "cpu",
           "OMP_NUM_THREADS": "1", "WORLD_SIZE": "1"}
    out = subprocess.run([sys.executable, "-m", "chatalign.cli", "sft", "--config", str(recipe), "--no-progress"],
                         capture_output=True, text=True, timeout=500, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    assert_whole_model_saved(tmp_path / "run", tiny_model_dir)
