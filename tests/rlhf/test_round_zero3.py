"""A whole RLHF round (rejection sampling + PPO) under torchrun with 2 CPU ranks over gloo: sampling split over
the ranks, the RS fine-tune and PPO's policy and value under DeepSpeed ZeRO-3, rank 0 writing the files."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from ..conftest import requires_torchrun, torchrun_command
from .conftest import round_cfg, rows

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


@requires_torchrun
def test_round_rs_and_ppo_on_two_ranks(rlhf_files, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "round1"
    zero3 = {"enabled": True, "zero_stage": 3}
    cfg = round_cfg(rlhf_files, out, rlhf_files / "policy", "rs+ppo", rs={"deepspeed": zero3},
                    ppo={"deepspeed": zero3, "early_stopping": {"eval_every": 1}})
    (tmp_path / "cfg.json").write_text(cfg.model_dump_json())
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(torchrun_command(str(Path(__file__).with_name("round_zero3_worker.py")),
                                           str(tmp_path / "cfg.json")),
                          capture_output=True, text=True, timeout=400, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads(f.read_text()) for f in sorted(tmp_path.glob("report-rank*.json"))]
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    assert ranks[0]["summary"]["ppo_iterations"] == ranks[1]["summary"]["ppo_iterations"] == 2

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["rlhf"]["mode"] == "rs+ppo"
    samples = rows(out / "data" / "samples.jsonl")  # each rank sampled half of each chunk; rank 0 wrote them once
    assert sorted((s["prompt_index"], s["sample_index"]) for s in samples) == [(p, k) for p in range(8)
                                                                               for k in range(3)]
    assert len(rows(out / "data" / "selected.jsonl")) == 8
    sft = json.loads((out / "rs_sft" / "manifest.json").read_text())
    assert sft["status"] == "finished"
    steps = [r["step"] for r in rows(out / "metrics.jsonl") if "reward" in r]
    assert steps == [1, 2]  # logged once (rank 0), not once per rank
    assert (out / "ppo" / "checkpoints" / "step-0000002" / "policy").is_dir()  # the engines' checkpoint
    whole = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(rlhf_files / "policy").parameters())
    for model in (out / "rs_sft" / "model", out / "model"):  # gathered from the ZeRO-3 shards, whole
        assert sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model).parameters()) == whole
    assert (out / "report.md").is_file() and (out / "ppo" / "best" / "policy.safetensors").is_file()
    assert summary_of(out)["ppo_model_iteration"] == json.loads((out / "ppo" / "best" / "meta.json").read_text())[
        "iteration"]  # the exported model is the best evaluated policy, put in place of the final shards
    import torch
    from safetensors.torch import load_file

    exported = dict(AutoModelForCausalLM.from_pretrained(out / "model").named_parameters())
    best = load_file(str(out / "ppo" / "best" / "policy.safetensors"))
    assert sorted(best) == sorted(exported) and all(torch.equal(exported[n], t) for n, t in best.items())
    assert manifest["metrics"]["heldout_reward_this"] == ranks[1]["summary"]["heldout_reward_this"]  # from rank 0


def summary_of(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())["metrics"]
