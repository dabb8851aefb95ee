"""`ppo.frozen_models: zero3`: the reference and the two reward models partitioned over 2 CPU ranks (gloo) by
DeepSpeed ZeRO-3 inference engines, and one PPO iteration computing what it computes with them replicated.

The worker (frozen_zero3_worker.py) runs the iteration replicated, then partitioned, from the same weights,
with uneven shares of the batch (3 answers on 2 ranks, 1 held-out prompt): partitioned forwards are
collectives, so without lockstep scoring the ranks would wait for each other until the timeout.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from chatalign.rlhf.config import PPOSection

from ...conftest import requires_torchrun, torchrun_command
from .conftest import STATS, reports

WORKER = Path(__file__).with_name("frozen_zero3_worker.py")


@pytest.mark.slow
@pytest.mark.distributed
@requires_torchrun
def test_frozen_models_zero3_are_partitioned_and_compute_what_replicated_ones_do(tmp_path):
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(torchrun_command(str(WORKER), str(tmp_path)), capture_output=True, text=True, timeout=240,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = reports(tmp_path)
    assert [r["rank"] for r in ranks] == [0, 1]
    for r in ranks:
        rep, z3, lora = r["replicated"], r["zero3"], r["zero3_lora"]
        assert set(z3["numels"]) == {"helpful RM", "safety RM", "reference"}
        for name, (full, local) in z3["numels"].items():  # each rank holds half of each frozen model
            assert rep["numels"][name] == [full, full] and local <= 0.5 * full + 64, (name, full, local)
        assert z3["reference_engine"] and not rep["reference_engine"]
        # this rank's per-answer rewards (combined, helpful, safety) and reference log-probs, both ways
        assert z3["rewards"] == pytest.approx(rep["rewards"], rel=1e-5, abs=1e-6)
        assert z3["ref"] == pytest.approx(rep["ref"], rel=1e-5, abs=1e-5)
        assert len(z3["ref"]) > 0 and z3["ref_calls"] == rep["ref_calls"]
        # LoRA: the reference is the adapter-disabled policy; only the reward models are partitioned
        assert set(lora["numels"]) == {"helpful RM", "safety RM"} and not lora["reference_engine"]
        assert all(local <= 0.5 * full + 64 for full, local in lora["numels"].values())
        assert lora["rewards"] == pytest.approx(rep["rewards"], rel=1e-5, abs=1e-6)  # zero adapter: same answers
    assert ranks[0]["zero3"]["ref_calls"] == [2] and ranks[1]["zero3"]["ref_calls"] == [1]  # uneven shares
    got, want = ranks[0]["zero3"]["records"], ranks[0]["replicated"]["records"]
    assert len(got) == len(want) == 1 and got[0]["gradient_steps"] == 1
    for key in (*STATS, "reward_helpful", "reward_safety", "kl_penalty", "score_transformed_std"):
        assert got[0][key] == pytest.approx(want[0][key], rel=1e-4, abs=1e-6), key
    assert want[0]["value_loss"] > 0 and want[0]["policy_grad_norm"] > 0  # real gradient steps were compared


def test_frozen_models_setting():
    base = {"batch_prompts": 8, "minibatch": 4}
    assert PPOSection.model_validate(base).frozen_models == "replicated"
    assert PPOSection.model_validate({**base, "frozen_models": "zero3"}).frozen_models == "zero3"
    # with LoRA the setting is accepted: it partitions the reward models (the reference is the policy itself)
    PPOSection.model_validate({**base, "frozen_models": "zero3", "lora": {"enabled": True},
                               "deepspeed": {"enabled": True, "zero_stage": 2}})
    with pytest.raises(ValueError, match="frozen_models"):
        PPOSection.model_validate({**base, "frozen_models": "zero2"})
    assert "reward models only" in PPOSection.model_fields["frozen_models"].description


def test_one_process_keeps_the_frozen_models_whole():
    """No process group: nothing to partition over, `zero3` keeps them whole (no DeepSpeed engine is built)."""
    from chatalign.rlhf.ppo.frozen import frozen_zero3
    from chatalign.training.distributed import DistContext

    cfg = PPOSection.model_validate({"batch_prompts": 8, "minibatch": 4, "frozen_models": "zero3"})
    assert not frozen_zero3(cfg, DistContext())
    assert frozen_zero3(cfg, DistContext(rank=0, world_size=2, initialized=True))
    assert not frozen_zero3(PPOSection.model_validate({"batch_prompts": 8, "minibatch": 4}),
                            DistContext(rank=0, world_size=2, initialized=True))


@pytest.mark.slow
@pytest.mark.distributed
@requires_torchrun
def test_round_partitions_the_reward_models_for_ppo_then_evaluates_with_whole_ones(rlhf_files, tmp_path):
    """A PPO round on 2 ranks with the recipe's reward models: partitioned for PPO, reloaded whole on rank 0
    for the round's evaluation (which rank 0 runs alone: partitioned models would wait for rank 1 forever)."""
    from chatalign.rlhf.reward_fn import load_two_reward_models

    from ..conftest import round_cfg, rows

    out = tmp_path / "round"
    cfg = round_cfg(rlhf_files, out, rlhf_files / "policy", "ppo",
                    ppo={"iterations": 1, "deepspeed": {"enabled": True, "zero_stage": 3}, "frozen_models": "zero3"},
                    eval={"compare_previous": False, "compare_sft": False})
    (tmp_path / "cfg.json").write_text(cfg.model_dump_json())
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(torchrun_command(str(Path(__file__).parents[1] / "round_zero3_worker.py"),
                                           str(tmp_path / "cfg.json"), "--rms"),
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads((out / "manifest.json").read_text())["status"] == "finished"
    (ppo,) = [r for r in rows(out / "metrics.jsonl") if "reward" in r]
    assert ppo["reward_helpful"] is not None and ppo["reward_safety"] is not None  # the two RMs scored PPO
    answers = rows(out / "eval" / "answers_this.jsonl")
    whole = load_two_reward_models(str(rlhf_files / "rm_helpful"), str(rlhf_files / "rm_safety"), dtype="float32")
    heldout = rows(rlhf_files / "heldout.jsonl")
    assert len(answers) == len(heldout) > 0
    again = whole(heldout, [a["answer"] for a in answers])
    assert [a["r_combined"] for a in answers] == pytest.approx(again.combined.tolist(), rel=1e-5, abs=1e-6)
