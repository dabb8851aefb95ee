"""A tiny training job run in a subprocess by the tests (kill/resume, DeepSpeed ranks).

usage: python train_worker.py RUN_DIR [--resume] [--sleep S] [--zero3]
Prints one JSON line: rank, final loss, full and local parameter counts, a weight checksum.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo root: tests.conftest holds tiny_llama
from chatalign.models import load_tokenizer  # noqa: E402
from chatalign.runs import RunDir
from chatalign.text.packing import collate_rows, pack_examples, step_plan
from chatalign.training.config import CheckpointConfig, DeepSpeedConfig, OptimConfig
from chatalign.training.distributed import DistContext, leave_process_group
from chatalign.training.lm_loss import PackedLMLoss
from chatalign.training.loop import TrainJob, train
from tests.conftest import tiny_llama  # noqa: E402


class SlowLoss(PackedLMLoss):
    def __init__(self, model, sleep):
        super().__init__(model)
        self.sleep = sleep

    def forward(self, **batch):
        time.sleep(self.sleep)
        return super().forward(**batch)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--zero3", action="store_true")
    ap.add_argument("--steps-per-epoch-rows", type=int, default=2)
    args = ap.parse_args()
    dist = DistContext.from_env()
    tok = load_tokenizer("embedded")
    model = tiny_llama(tok)
    g = torch.Generator().manual_seed(0)
    examples = []
    for i in range(24):
        n = 8 + (i * 7) % 23
        ids = torch.randint(5, 2000, (n,), generator=g).tolist()
        examples.append((ids, [0] * (n // 2) + [1] * (n - n // 2)))
    rows = pack_examples(examples, 48)
    plan = step_plan(len(rows), args.steps_per_epoch_rows, 2, seed=1)
    job = TrainJob(SlowLoss(model, args.sleep), rows, [r.n_trained for r in rows], collate_rows, plan)
    run = RunDir(args.run_dir, "test")
    last = train(job, OptimConfig(lr=3e-3, warmup_ratio=0.1), CheckpointConfig(every_steps=2, keep_last=2),
                 DeepSpeedConfig(enabled=args.zero3, zero_stage=3), run, dist, resume=args.resume, progress=False)
    from chatalign.training.zero_gather import gather_full_state

    state = gather_full_state(model)
    checksum = float(sum(t.double().sum() for t in state.values()))
    local = sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in model.parameters())
    line = json.dumps({"rank": dist.rank, "loss": last["loss"], "steps": len(plan), "checksum": checksum,
                       "full": sum(t.numel() for t in state.values()), "local": local})
    # one write of the whole line: the ranks share torchrun's stdout, and print() writes the text and its
    # newline separately (unbuffered, as PYTHONUNBUFFERED makes it), so two ranks' lines could interleave
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    leave_process_group()


if __name__ == "__main__":
    main()
