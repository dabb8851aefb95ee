"""Run by test_ppo_frozen_zero3.py under torchrun with 2 ranks (not a test module).

usage: python frozen_zero3_worker.py OUT_DIR
The same PPO iteration from the same starting weights three times: `replicated`, the reference and two tiny
reward models whole on each rank; `zero3`, them partitioned (`ppo.frozen_models: zero3`), policy and value
under ZeRO-3 both times, so the ranks sample the same answers; `zero3_lora`, a LoRA policy (ZeRO-2) whose
reference is its adapter-disabled self, so only the reward models are partitioned (its adapter starts at
zero: it samples the same answers too). The shares are uneven on
purpose (3 answers: rank 0 has 2, rank 1 one; one held-out prompt: rank 1 none; one answer per packed RM row,
one per reference forward), so the run only ends if the partitioned forwards are kept in lockstep.
Writes OUT_DIR/report-rank<R>.json: per mode the iteration's record (rank 0), this rank's per-answer rewards and
reference log-probs, and the frozen models' (whole, local) parameter counts.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from ppo_zero3_worker import make_trainer  # noqa: E402

from chatalign.models import load_tokenizer  # noqa: E402
from chatalign.runs import RunDir  # noqa: E402
from chatalign.training.distributed import DistContext, leave_process_group  # noqa: E402
from chatalign.training.zero_inference import shard_numels  # noqa: E402

SETTINGS = {"batch_prompts": 3, "minibatch": 3, "micro_batch": 1, "score_batch_size": 1,
            "reward_transform": "whiten_logit"}


def reward_models(tok):
    from chatalign.reward.scorer import RewardScorer
    from chatalign.rlhf.reward_fn import TwoRewardModels
    from tests.conftest import reward_model_from_causal_lm, tiny_llama  # the repo root is on sys.path

    scorers = [RewardScorer(reward_model_from_causal_lm(tiny_llama(tok, hidden=32, layers=1, heads=2, kv_heads=1,
                                                                   seed=s), seed=s), tok, torch.device("cpu"))
               for s in (1, 2)]
    return TwoRewardModels(*scorers, batch_tokens=1)  # one answer per packed row


def one_iteration(tok, out: Path, dist, mode: str, lora: bool) -> dict:
    trainer = make_trainer(tok, out, dist, True, iterations=1, lora=lora, reward_fn=reward_models(tok), heldout=1,
                           frozen_models=mode, **SETTINGS)
    frozen = trainer.frozen
    rms = frozen.reward_fn  # partitioned by the trainer under zero3
    seen: dict = {"rewards": [], "ref": [], "ref_calls": []}
    score, reference = frozen.reward_fn, frozen.reference.logprobs

    def scoring(prompts, texts, ids):
        rewards = score(prompts, texts, ids)
        seen["rewards"] += [v for row in rewards.rows() for v in row.values()]
        return rewards

    def ref_logprobs(batch, micro):
        lp = reference(batch, micro)
        seen["ref_calls"].append(0 if lp is None else len(lp))
        seen["ref"] += [] if lp is None else lp[batch.mask > 0].tolist()
        return lp

    frozen.reward_fn, frozen.reference.logprobs = scoring, ref_logprobs
    trainer.train()
    seen["records"] = [r for r in RunDir(out, "rlhf").read_metrics() if r["step"] >= 1] if dist.is_main else []
    seen["numels"] = {"helpful RM": shard_numels(rms.helpful.model), "safety RM": shard_numels(rms.safety.model)}
    if not lora:
        seen["numels"]["reference"] = shard_numels(trainer.models.reference)
    seen["reference_engine"] = frozen.reference.engine is not None
    trainer.close()
    return seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dist = DistContext.from_env()
    out = Path(args.out)
    tok = load_tokenizer("embedded")
    result = {"rank": dist.rank}
    for name, mode, lora in (("replicated", "replicated", False), ("zero3", "zero3", False),
                             ("zero3_lora", "zero3", True)):
        result[name] = one_iteration(tok, out / name, dist, mode, lora)
    (out / f"report-rank{dist.rank}.json").write_text(json.dumps(result))
    leave_process_group()


if __name__ == "__main__":
    main()
