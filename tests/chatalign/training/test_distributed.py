"""The process group: `distributed.timeout_minutes` reaches it (a rank that never comes fails the run instead of
hanging it), and the sums over ranks put their tensors where the backend reduces them (CPU under gloo, the
rank's GPU under NCCL). Each group lives in a subprocess: the test process keeps no group behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chatalign.config import validate
from chatalign.errors import ConfigError
from chatalign.sft.config import SFTConfig

from ...conftest import free_port, requires_torchrun, torchrun_command

ONE_RANK_SUMS = """
import json
from chatalign.training.distributed import DistContext, all_reduce_sums, collective_device, single_rank_group
single_rank_group()
dist = DistContext(initialized=True)
print(json.dumps({"sum": dist.all_reduce_sum(2.5), "sums": all_reduce_sums(dist, {"a": 1.0, "b": -2.0}),
                  "any": [dist.any_flag(False), dist.any_flag(True)], "device": collective_device().type}))
"""


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    launcher = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    clean = {k: v for k, v in os.environ.items() if k not in launcher}
    # the timeout guards against a hang only: a group that ignored timeout_minutes would wait 30 minutes
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**clean, "OMP_NUM_THREADS": "1", **env})


def test_a_rank_that_never_joins_fails_after_the_configured_timeout():
    out = python("from chatalign.training.distributed import DistContext\n"
                 "DistContext.from_env(timeout_minutes=0.02)\n",
                 RANK="0", LOCAL_RANK="0", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
                 DS_ACCELERATOR="cpu", CUDA_VISIBLE_DEVICES="")
    assert out.returncode != 0
    assert "Timed out after" in out.stderr and "1/2 clients joined" in out.stderr, out.stderr[-2000:]


def test_sums_over_a_gloo_group_run_on_the_cpu():
    out = python(ONE_RANK_SUMS, DS_ACCELERATOR="cpu", CUDA_VISIBLE_DEVICES="")
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.splitlines()[-1]) == {"sum": 2.5, "sums": {"a": 1.0, "b": -2.0},
                                                       "any": [False, True], "device": "cpu"}


def test_sums_over_an_nccl_group_move_their_tensors_to_the_gpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("NCCL needs a GPU")
    out = python(ONE_RANK_SUMS)  # single_rank_group picks NCCL when a GPU is there
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.splitlines()[-1])["device"] == "cuda"


def test_the_timeout_is_a_config_key_of_the_stages():
    base = {"data": {"train": "x.jsonl"}}
    assert validate(SFTConfig, base).distributed.timeout_minutes == 30
    assert validate(SFTConfig, {**base, "distributed": {"timeout_minutes": 90}}).distributed.timeout_minutes == 90
    with pytest.raises(ConfigError, match="distributed.timeout_minutes"):
        validate(SFTConfig, {**base, "distributed": {"timeout_minutes": 0}})


@pytest.mark.parametrize("stage", ["sft", "reward", "dpo", "rlhf", "gatt", "safety"])
def test_every_training_stage_has_the_section(stage):
    from chatalign import registry

    assert "distributed" in registry.get(stage).config_class().model_fields


LEAVE_TOGETHER = """
import json, sys, time
import torch.distributed as tdist
from chatalign.training.distributed import DistContext, leave_process_group
dist = DistContext.from_env()
if dist.is_main:
    time.sleep(3)  # rank-0-only work after the run (reports, the held-out evaluation)
    open(sys.argv[1] + "/rank0-done", "w").write(repr(time.time()))
leave_process_group()
open(sys.argv[1] + f"/rank{dist.rank}-left", "w").write(json.dumps([time.time(), tdist.is_initialized()]))
"""


@pytest.mark.distributed
@requires_torchrun
def test_ranks_leave_the_group_together_after_rank_zero_only_work(tmp_path):
    """A rank that left while rank 0 still worked alone aborted now and then at exit: no rank leaves before
    rank 0 has finished, and every rank ends with the group destroyed (fails without the barrier: rank 1 would
    leave about 3 s before rank 0 is done)."""
    script = tmp_path / "leave.py"
    script.write_text(LEAVE_TOGETHER)
    launcher = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {**{k: v for k, v in os.environ.items() if k not in launcher}, "OMP_NUM_THREADS": "1",
           "DS_ACCELERATOR": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(torchrun_command(str(script), str(tmp_path)), capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    rank0_done = float((tmp_path / "rank0-done").read_text())
    for rank in (0, 1):
        left_at, still_in_group = json.loads((tmp_path / f"rank{rank}-left").read_text())
        assert left_at >= rank0_done and still_in_group is False
