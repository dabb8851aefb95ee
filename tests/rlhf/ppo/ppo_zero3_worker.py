"""One PPO iteration on tiny random models, run by test_ppo_zero3.py (not a test module).

usage: python ppo_zero3_worker.py OUT_DIR [--zero3] [--rollouts FILE]
  --zero3: policy and value under DeepSpeed ZeRO-3 (run it under torchrun with 2 ranks); rank 0 writes the
           iteration's merged rollouts to OUT_DIR/rollouts.json;
  --rollouts: a single process that trains on those rollouts instead of sampling its own (the ranks sample
           their shares with their own random streams, so only the same rollouts make the runs comparable).
  With --zero3 it then checks resume: a fresh trainer restores the engines' checkpoint of iteration 1 and runs
  iteration 2, which the first trainer also runs, unbroken, in memory; and the best-policy round trip: the
  iteration-1 policy saved as the best, loaded back into the shards after iteration 2.
Writes OUT_DIR/report-rank<R>.json per rank: the iteration's record, parameter counts (whole, local shard), weight checksums.
"""

import argparse
import copy
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo root: the conftests import as tests.*
from chatalign.models import load_tokenizer  # noqa: E402
from chatalign.rlhf.config import PPOSection  # noqa: E402
from chatalign.rlhf.ppo.models import assemble  # noqa: E402
from chatalign.rlhf.ppo.trainer import PPOTrainer  # noqa: E402
from chatalign.rollout.engine import Rollout  # noqa: E402
from chatalign.runs import RunDir  # noqa: E402
from chatalign.training.distributed import DistContext, leave_process_group  # noqa: E402
from tests.conftest import reward_model_from_causal_lm  # noqa: E402
from tests.rlhf.conftest import peaky_llama, prompt_dicts, token_fraction_reward  # noqa: E402

TOKEN = 198  # "\n": sampled often by peaky_llama


class RecordingTrainer(PPOTrainer):
    """Keeps the answers of the last iteration (merged over the ranks) to hand them to the 1-process run."""

    def collect(self, iteration, clock):
        exp = super().collect(iteration, clock)
        self.last_rollouts = exp.rollouts
        return exp


class ReplaySampler:
    """The 2-rank run's answers handed back instead of sampled ones (the ranks sample with their own streams)."""

    def __init__(self, rollouts: list):
        self.rollouts = rollouts

    def __call__(self, prompt_ids, seed):
        assert [r.prompt_ids for r in self.rollouts] == prompt_ids, "replayed rollouts are for other prompts"
        return self.rollouts


def checksum(module) -> float:
    from chatalign.training.zero_gather import gather_full_state

    return float(sum(t.double().sum() for t in gather_full_state(module).values()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--zero3", action="store_true")
    ap.add_argument("--rollouts")
    ap.add_argument("--lora", action="store_true", help="LoRA policy (adapter-disabled reference), ZeRO-2")
    ap.add_argument("--lora-zero3", action="store_true", help="with --lora: ZeRO-3 instead of ZeRO-2")
    ap.add_argument("--offload", action="store_true", help="optimizer states offloaded to the CPU")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dist = DistContext.from_env()
    out = Path(args.out)
    tok = load_tokenizer("embedded")
    replay = ReplaySampler([Rollout(**r) for r in json.loads(Path(args.rollouts).read_text())]) \
        if args.rollouts else None
    trainer = make_trainer(tok, out, dist, args.zero3, iterations=1, lora=args.lora, offload=args.offload,
                           sampler=replay, lora_stage=3 if args.lora_zero3 else 2)
    models = trainer.models
    summary = trainer.train()
    if dist.is_main and args.zero3:
        (out / "rollouts.json").write_text(json.dumps([r.__dict__ for r in trainer.last_rollouts]))
    policy_sum, value_sum = checksum(models.policy), checksum(models.value)
    full = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in models.policy.parameters())
    local = sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in models.policy.parameters())
    trainer.export(out / "model")
    records = [r for r in RunDir(out, "rlhf").read_metrics() if r["step"] >= 1] if dist.is_main else []
    result = {"rank": dist.rank, "records": records, "summary": summary, "full": full, "local": local,
              "policy_sum": policy_sum, "value_sum": value_sum}
    if args.zero3 and not args.lora and dist.world_size > 1:
        result["resume"] = check_resume(trainer, tok, out, dist)
    # a file per rank: lines the ranks print at the same moment can interleave in torchrun's output
    (out / f"report-rank{dist.rank}.json").write_text(json.dumps(result))
    trainer.close()
    leave_process_group()


def check_resume(trainer, tok, out: Path, dist) -> dict:
    """Iteration 2 of a trainer restored from the iteration-1 checkpoint vs the same trainer run on unbroken."""
    import shutil

    if dist.is_main:
        shutil.copytree(out / "ppo" / "checkpoints", out / "resumed" / "ppo" / "checkpoints")
    dist.barrier()
    resumed = make_trainer(tok, out / "resumed", dist, True, iterations=2)
    done = resumed.restore()
    restored = [checksum(resumed.models.policy), checksum(resumed.models.value)]
    resumed.train(resume=True)
    again = resumed.run.read_metrics()[-1] if dist.is_main else {}
    resumed.close()
    trainer.checkpoints.save_best({"iteration": 1})  # the iteration-1 policy, gathered from the shards
    unbroken = trainer.iteration(1)
    trainer.checkpoints.load_best()  # and back into the shards after iteration 2 moved them
    return {"restored_iterations": done, "restored_sums": restored, "resumed": again, "unbroken": unbroken,
            "best_restored_sum": checksum(trainer.models.policy)}


def make_trainer(tok, out: Path, dist, zero3: bool, iterations: int, lora: bool = False, offload: bool = False,
                 reward_fn=None, heldout: int = 3, sampler=None, lora_stage: int = 2,
                 **overrides) -> RecordingTrainer:
    """`overrides`: PPOSection keys replacing this worker's settings (test_ppo_frozen_zero3 uses it)."""
    from chatalign.training.config import LoraConfig

    lm = peaky_llama(tok)
    value = reward_model_from_causal_lm(lm, seed=1)
    if lora:
        if dist.is_main:  # the export merges the gathered adapter into this base, reloaded (as load_models does)
            lm.save_pretrained(out / "start")
        models = assemble(lm, tok, value, LoraConfig(enabled=True, r=4, alpha=8, dropout=0.0, save="both"), seed=0)
        models.base_path, models.dtype = str(out / "start"), "float32"
    else:
        models = assemble(lm, tok, value, None, reference=copy.deepcopy(lm))
    cfg = PPOSection.model_validate({
        "iterations": iterations, "batch_prompts": 8, "minibatch": 4, "micro_batch": 2, "max_new_tokens": 8,
        "gen_batch_size": 8, "score_batch_size": 4, "beta": 0.05, "reward_transform": "raw",
        "optim": {"lr": 1e-2, "value_lr": 3e-3}, "guards": {"max_kl": 1000},
        "early_stopping": {"eval_every": 1, "restore_best": False},
        "lora": {"enabled": lora, "r": 4, "alpha": 8, "save": "both"},
        "deepspeed": {"enabled": zero3, "zero_stage": lora_stage if lora else 3,
                      "offload_optimizer": "cpu" if offload else "none"}, **overrides})
    return RecordingTrainer(models, prompt_dicts(12), reward_fn or token_fraction_reward(TOKEN), cfg,
                            RunDir(out, "rlhf"), out / "ppo", heldout=prompt_dicts(heldout), dist=dist,
                            sampler=sampler)


if __name__ == "__main__":
    main()
