"""DPO under DeepSpeed ZeRO-3 on 2 CPU ranks (gloo) matches a single-process run: the reference log-probs
scored half by each rank and gathered, the sharded training steps, and the model gathered from the shards."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from chatalign.dpo.stage import STAGE

from ..conftest import requires_torchrun, torchrun_command
from .conftest import toy_config

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@requires_torchrun
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_zero3_two_ranks_matches_single_process(tmp_path, toy_files, tiny_model_dir, lora):
    """With LoRA the reference is the adapter-disabled policy, and the saved model is merged from the gathered
    adapter (ZeRO-3 leaves only placeholders on a rank)."""
    train, held = toy_files
    single = toy_config(tmp_path / "single", train, held, tiny_model_dir, epochs=1)
    single.lora.enabled, single.lora.r, single.lora.dropout = lora, 4, 0.0  # dropout masks differ per rank
    STAGE.run(single, progress=False)

    sharded = toy_config(tmp_path / "zero3", train, held, tiny_model_dir, epochs=1)
    sharded.lora, sharded.optim = single.lora, single.optim
    sharded.deepspeed.enabled = True
    sharded.deepspeed.zero_stage = 3
    cfg_file = tmp_path / "zero3.json"
    cfg_file.write_text(sharded.model_dump_json())
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(torchrun_command(str(Path(__file__).with_name("zero3_worker.py")), str(cfg_file)),
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]

    single, zero3 = tmp_path / "single", tmp_path / "zero3"
    ref_a = load_file(str(single / "reference_logps.safetensors"))
    ref_b = load_file(str(zero3 / "reference_logps.safetensors"))
    assert all(torch.allclose(ref_a[k], ref_b[k], atol=1e-4) for k in ref_a)
    a, b = metrics(single), metrics(zero3)
    assert len(a) == len(b) == 4 and a[-1]["loss"] < a[0]["loss"] - (0.01 if lora else 0.1)
    assert [m["loss"] for m in b] == pytest.approx([m["loss"] for m in a], rel=2e-3, abs=2e-4)
    assert [m["accuracy"] for m in b[1:]] == [m["accuracy"] for m in a[1:]]  # step 1: rewards are ~0, ties
    manifest = json.loads((zero3 / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["metrics"]["eval_pairs"] == 16
    wa, wb = load_file(str(single / "model" / "model.safetensors")), load_file(str(zero3 / "model" / "model.safetensors"))
    assert set(wa) == set(wb) and all(torch.allclose(wa[k], wb[k], atol=2e-3) for k in wa)
