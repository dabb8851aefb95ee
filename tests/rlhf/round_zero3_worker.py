"""Run by test_round_zero3.py under torchrun: one RLHF round (RS + PPO) from a JSON config (not a test module).

The reward is a deterministic function of the answer text, so every rank scores alike without reward models;
with `--rms` (second argument) the round loads the reward models its config names instead.
Writes report-rank<R>.json (in the cwd) per rank with the round's summary."""

import json
import sys

import torch

from chatalign.rlhf.config import RLHFRoundConfig
from chatalign.rlhf.reward_fn import RewardBatch
from chatalign.rlhf.round import run_round
from chatalign.training.distributed import leave_process_group


def by_text(prompts, texts, ids):
    return RewardBatch(combined=torch.tensor([(sum(map(ord, t)) % 101) / 101 for t in texts]))


if __name__ == "__main__":
    import os

    torch.set_num_threads(1)
    cfg = RLHFRoundConfig.model_validate(json.loads(open(sys.argv[1]).read()))
    summary = run_round(cfg, progress=False, reward_fn=None if sys.argv[2:] == ["--rms"] else by_text)
    leave_process_group()  # as `chatalign rlhf round` does after the round
    flat = {k: v for k, v in summary.items() if isinstance(v, (int, float, str)) or v is None}
    rank = int(os.environ.get("RANK", "0"))  # a file per rank: printed lines of two ranks can interleave
    open(f"report-rank{rank}.json", "w").write(json.dumps({"rank": rank, "summary": flat}))
