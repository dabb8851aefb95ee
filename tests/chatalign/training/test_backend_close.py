"""`Backend.close()` tears a DeepSpeed ZeRO-3 engine down at once (its module hooks removed), so a process that
trains one phase and then loads the next phase's models no longer leaves the engine to a later garbage
collection. Run in a subprocess: the engine needs a (1-rank) process group of its own."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = """
import json
from chatalign.models import load_tokenizer
from chatalign.text.packing import collate_rows, pack_examples, step_plan
from chatalign.training.config import DeepSpeedConfig, OptimConfig
from chatalign.training.distributed import DistContext
from chatalign.training.lm_loss import PackedLMLoss
from chatalign.training.loop import TrainJob, build_backend, train_step
from tests.conftest import tiny_llama

def hooks(m):
    return sum(len(x._forward_pre_hooks) + len(x._forward_hooks) for x in m.modules())

model = tiny_llama(load_tokenizer("embedded"))
plain = hooks(model)
rows = pack_examples([(list(range(5, 25)), [0] * 10 + [1] * 10)], 48)
job = TrainJob(PackedLMLoss(model), rows, [r.n_trained for r in rows], collate_rows, step_plan(1, 1, 1, seed=0))
dist = DistContext()
backend = build_backend(job, OptimConfig(lr=1e-3), DeepSpeedConfig(enabled=True, zero_stage=3), dist)
train_step(job, backend, dist, job.plan[0])
engine_hooks = hooks(model)
backend.close()
print(json.dumps({"plain": plain, "engine": engine_hooks, "closed": hooks(model)}))
"""  # run with the repo root as working directory: `python -c` puts it on sys.path


@pytest.mark.slow
def test_closing_an_engine_backend_removes_its_hooks_at_once():
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counts["engine"] > counts["plain"], counts  # ZeRO-3 hooks every submodule while the engine lives
    assert counts["closed"] == counts["plain"], counts
