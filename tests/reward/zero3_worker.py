"""Run by test_zero3.py under torchrun: one reward training from a JSON config (not a test module)."""

import json
import sys

import torch

from chatalign.reward.config import RewardConfig
from chatalign.reward.run import run_reward
from chatalign.training.distributed import leave_process_group

if __name__ == "__main__":
    torch.set_num_threads(1)
    cfg = RewardConfig.model_validate(json.loads(open(sys.argv[1]).read()))
    run_reward(cfg, progress=False)
    leave_process_group()  # as the CLI does after a stage
