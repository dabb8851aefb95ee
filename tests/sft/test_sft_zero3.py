"""`chatalign sft` under torchrun with DeepSpeed ZeRO-3 on 2 CPU ranks: sharded, whole model saved."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


@pytest.mark.slow
@pytest.mark.distributed
def test_sft_zero3_two_ranks_saves_a_whole_model(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    rows = [{"messages": [{"role": "user", "content": f"Say {i}."},
                          {"role": "assistant", "content": f"{i} {i} {i}."}]} for i in range(16)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {"stage": "sft", "output_dir": str(tmp_path / "run"),
           "model": {"name": str(tiny_model_dir), "dtype": "float32"}, "data": {"train": "train.jsonl"},
           "train": {"epochs": 1, "seq_len": 96, "global_batch_rows": 2}, "optim": {"lr": 1e-3},
           "deepspeed": {"enabled": True, "zero_stage": 3}, "checkpoint": {"every_steps": 1}}
    recipe = tmp_path / "sft.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    out = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29533", "-m", "chatalign.cli",
                          "sft", "--config", str(recipe), "--no-progress"], capture_output=True, text=True,
                         timeout=500, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    run = tmp_path / "run"
    assert json.loads((run / "manifest.json").read_text())["status"] == "finished"
    saved = load_file(str(run / "model" / "model.safetensors"))
    original = load_file(str(tiny_model_dir / "model.safetensors"))
    assert set(saved) == set(original), "the saved model is missing tensors"
    for name, t in original.items():
        assert saved[name].shape == t.shape, f"{name} saved as a shard {saved[name].shape}, not {t.shape}"
    assert any(not saved[n].equal(original[n]) for n in original), "training changed nothing"
    model = AutoModelForCausalLM.from_pretrained(run / "model")
    assert model.config.num_hidden_layers == 2
    ck = sorted((run / "checkpoints").iterdir())
    assert ck and (ck[-1] / "ds").is_dir()
