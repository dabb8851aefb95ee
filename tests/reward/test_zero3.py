"""Reward training under DeepSpeed ZeRO-3 on 2 CPU ranks (gloo) matches a single-process run, and the
model it saves (gathered from the shards) loads as an HF sequence classifier."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from chatalign.reward.run import run_reward

from ..conftest import requires_torchrun, torchrun_command
from .conftest import toy_config

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def losses(run: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (run / "metrics.jsonl").read_text().splitlines()]


@requires_torchrun
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_zero3_two_ranks_matches_single_process(tmp_path, toy_files, tiny_model_dir, lora):
    """With LoRA the saved RM is merged from the gathered adapter (ZeRO-3 leaves only placeholders on a rank)."""
    from chatalign.reward import load_scorer

    train, held = toy_files
    single = toy_config(tmp_path / "single", train, held, model=tiny_model_dir, epochs=1)
    single.optim.lr = 1e-3
    single.lora.enabled, single.lora.r, single.lora.dropout = lora, 4, 0.0  # dropout masks differ per rank
    run_reward(single, progress=False)

    sharded = toy_config(tmp_path / "zero3", train, held, model=tiny_model_dir, epochs=1)
    sharded.optim.lr = 1e-3
    sharded.lora.enabled, sharded.lora.r, sharded.lora.dropout = lora, 4, 0.0
    sharded.deepspeed.enabled = True
    sharded.deepspeed.zero_stage = 3
    cfg_file = tmp_path / "zero3.json"
    cfg_file.write_text(sharded.model_dump_json())
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(torchrun_command(str(Path(__file__).with_name("zero3_worker.py")), str(cfg_file)),
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]

    a, b = losses(tmp_path / "single" / "run"), losses(tmp_path / "zero3" / "run")
    assert len(a) == len(b) == 5
    assert b == pytest.approx(a, rel=2e-3, abs=2e-4)
    assert a[-1] < a[0]  # the comparison covers steps after real updates, not five copies of step 1
    manifest = json.loads((tmp_path / "zero3" / "run" / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["metrics"]["eval_pairs"] == 10
    s1 = load_scorer(tmp_path / "single" / "run", device="cpu")
    s2 = load_scorer(tmp_path / "zero3" / "run", device="cpu")
    prompts = [[{"role": "user", "content": "Tell me about snow."}]] * 2
    answers = ["I love snow, they are wonderful.", "I hate snow, they are awful."]
    assert s2.score(prompts, answers).tolist() == pytest.approx(s1.score(prompts, answers).tolist(), abs=2e-2)
