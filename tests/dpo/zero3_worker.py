"""Run by test_zero3.py under torchrun: one DPO training from a JSON config (not a test module)."""

import json
import sys

import torch

from chatalign.dpo.stage import STAGE
from chatalign.training.distributed import leave_process_group

if __name__ == "__main__":
    torch.set_num_threads(1)
    STAGE.run(STAGE.config_class().model_validate(json.loads(open(sys.argv[1]).read())), progress=False)
    leave_process_group()  # as the CLI does after a stage
