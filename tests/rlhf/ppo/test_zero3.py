"""One PPO iteration with policy and value under DeepSpeed ZeRO-3 on 2 CPU ranks (gloo).

The ranks sample their halves of the batch with their own random streams, so a 2-rank iteration cannot draw
the answers a single process draws. The comparison therefore hands the 2-rank run's rollouts (merged over the
ranks) to a single process: from the same answers on, scoring, reference log-probs, values, whitening, GAE
and the gradient steps must agree within float tolerance.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatalign.rlhf.config import PPOSection

from ...conftest import requires_torchrun, torchrun_command
from ..conftest import peaky_llama
from .conftest import STATS, reports

WORKER = Path(__file__).with_name("ppo_zero3_worker.py")


def two_ranks_then_one(tmp_path, *flags: str) -> tuple[list[dict], dict]:
    """(the 2 ranks' reports, the report of one process trained on the 2-rank run's rollouts)."""
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    two = subprocess.run(torchrun_command(str(WORKER), str(tmp_path / "two"), "--zero3", *flags),
                         capture_output=True, text=True, timeout=300, env=env)
    assert two.returncode == 0, two.stderr[-4000:]
    ranks = reports(tmp_path / "two")
    assert [r["rank"] for r in ranks] == [0, 1]
    one = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "one"), "--rollouts",
                          str(tmp_path / "two" / "rollouts.json"), *flags], capture_output=True, text=True,
                         timeout=300, env=env)
    assert one.returncode == 0, one.stderr[-4000:]
    return ranks, reports(tmp_path / "one")[0]


def assert_same_iteration(got: dict, want: dict) -> None:
    assert got["gradient_steps"] == want["gradient_steps"] == 2
    for key in STATS:
        assert got[key] == pytest.approx(want[key], rel=1e-3, abs=1e-6), key
    assert want["policy_loss"] != 0 and want["value_loss"] > 0  # the comparison covers real gradient steps


def assert_same_export(a_dir: Path, b_dir: Path, start: dict) -> int:
    """Both exports load with from_pretrained and hold the same update (to float noise); returns their size."""
    import torch
    from transformers import AutoModelForCausalLM

    a = dict(AutoModelForCausalLM.from_pretrained(a_dir).named_parameters())
    b = dict(AutoModelForCausalLM.from_pretrained(b_dir).named_parameters())
    assert sorted(a) == sorted(b)
    with torch.no_grad():
        step = max(float((a[n] - start[n]).abs().max()) for n in a)
        diff = max(float((a[n] - b[n]).abs().max()) for n in a)
    assert step > 1e-4, "the iteration did not move the policy"
    assert diff < 1e-3 * step, (diff, step)
    return sum(t.numel() for t in b.values())


@pytest.mark.slow
@pytest.mark.distributed
@requires_torchrun
def test_ppo_iteration_zero3_two_ranks_matches_one_process(tmp_path, smol_tokenizer):
    ranks, ref = two_ranks_then_one(tmp_path)
    for r in ranks:  # ZeRO-3: each rank holds half of the policy's parameters
        assert r["full"] == ref["full"] and r["local"] < 0.55 * r["full"]
    assert_same_iteration(ranks[0]["records"][0], ref["records"][0])
    # the exported policy is whole (gathered from the shards), loads, and holds one process's update
    start = dict(peaky_llama(smol_tokenizer).named_parameters())
    assert assert_same_export(tmp_path / "one" / "model", tmp_path / "two" / "model", start) == ref["full"]

    # resume: a fresh trainer restored from the engines' checkpoint continues exactly as an unbroken run
    res = ranks[0]["resume"]
    assert res["restored_iterations"] == 1
    assert res["restored_sums"] == pytest.approx([ranks[0]["policy_sum"], ranks[0]["value_sum"]], rel=1e-9)
    for key in STATS[:-2]:
        assert res["resumed"][key] == pytest.approx(res["unbroken"][key], rel=1e-5, abs=1e-7), key
    assert (tmp_path / "two" / "ppo" / "checkpoints" / "step-0000001" / "policy").is_dir()
    assert res["best_restored_sum"] == pytest.approx(ranks[0]["policy_sum"], rel=1e-9)  # best/ back into the shards
    assert res["unbroken"]["policy_grad_norm"] > 0  # iteration 2 had moved the policy away from it

    # `ppo.deepspeed.enabled` in one process started without a launcher (one GPU): a 1-rank group is made
    # (DeepSpeed would go looking for MPI), and on the same rollouts it computes what plain torch computes
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env.update({"DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    alone = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "alone"), "--zero3", "--rollouts",
                            str(tmp_path / "two" / "rollouts.json")], capture_output=True, text=True, timeout=300,
                           env=env)
    assert alone.returncode == 0, alone.stderr[-4000:]
    assert_same_iteration(reports(tmp_path / "alone")[0]["records"][0], ref["records"][0])
    assert_same_export(tmp_path / "one" / "model", tmp_path / "alone" / "model", start)


@pytest.mark.slow
@pytest.mark.distributed
@requires_torchrun
def test_lora_policy_zero2_with_cpu_offload_two_ranks_matches_one_process(tmp_path, smol_tokenizer):
    """A LoRA policy (its adapter-disabled base is the reference) under ZeRO-2, optimizer states on the CPU."""
    ranks, ref = two_ranks_then_one(tmp_path, "--lora", "--offload")
    assert_same_iteration(ranks[0]["records"][0], ref["records"][0])
    start = dict(peaky_llama(smol_tokenizer).named_parameters())  # the export merges the adapter
    assert_same_export(tmp_path / "one" / "model", tmp_path / "two" / "model", start)


@pytest.mark.slow
@pytest.mark.distributed
@requires_torchrun
def test_lora_policy_zero3_two_ranks_matches_one_process(tmp_path, smol_tokenizer):
    """A LoRA policy under ZeRO-3: base and adapter partitioned, the reference (adapter off) computed under the
    gathered weights, the export merged from the gathered whole state; the adapter beside it (lora.save: both)."""
    import torch
    from safetensors.torch import load_file

    ranks, ref = two_ranks_then_one(tmp_path, "--lora", "--lora-zero3")
    for r in ranks:  # the base weights are partitioned too, not only the adapter
        assert r["local"] < 0.55 * r["full"]
    assert_same_iteration(ranks[0]["records"][0], ref["records"][0])
    start = dict(peaky_llama(smol_tokenizer).named_parameters())
    assert_same_export(tmp_path / "one" / "model", tmp_path / "two" / "model", start)
    one, two = (load_file(tmp_path / d / "adapter" / "adapter_model.safetensors") for d in ("one", "two"))
    assert sorted(one) == sorted(two) and any("lora_B" in k for k in two)
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-3, atol=1e-5, msg=k)


def test_lora_with_zero3_is_accepted():
    PPOSection.model_validate({"batch_prompts": 8, "minibatch": 4, "lora": {"enabled": True},
                               "deepspeed": {"enabled": True, "zero_stage": 3}})
