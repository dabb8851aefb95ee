"""ZeRO-3 checkpoints (2 CPU ranks over gloo) resume to the same weights, and are read without unpickling code:
DeepSpeed's own loader would call `torch.load(weights_only=False)`; while an engine loads ours, its reader is
made to use `weights_only=True`."""

import json
import os
import pickle
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import torchrun_command

WORKER = Path(__file__).parents[1] / "chatalign" / "training" / "train_worker.py"
ENV = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def torchrun(run_dir, *extra):
    out = subprocess.run(torchrun_command(str(WORKER), str(run_dir), "--zero3", *extra), capture_output=True,
                         text=True, timeout=400, env=ENV)
    assert out.returncode == 0, out.stderr[-4000:]
    # the two ranks print at the same time: their lines can run together
    return [json.loads(m) for m in re.findall(r'\{"rank"[^}]*\}', out.stdout)]


class Evil:
    """Unpickling this would run a shell command."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/chatalign-pwned",))


@pytest.mark.slow
@pytest.mark.distributed
def test_zero3_resume_from_an_earlier_checkpoint_matches_and_refuses_pickled_code(tmp_path):
    import torch

    from chatalign.training.checkpoint import latest_checkpoint, list_checkpoints, safe_deepspeed_load

    run = tmp_path / "z3"
    ref = torchrun(run)
    ckpts = list_checkpoints(run / "checkpoints")
    assert len(ckpts) == 2, ckpts
    shutil.rmtree(ckpts[-1])  # as if killed before the last checkpoint: resume from the one before
    resumed = torchrun(run, "--resume")
    assert sorted(r["rank"] for r in resumed) == [0, 1]
    for a, b in zip(sorted(ref, key=lambda r: r["rank"]), sorted(resumed, key=lambda r: r["rank"])):
        assert b["checksum"] == pytest.approx(a["checksum"], rel=1e-6)
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-6)
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, ref[0]["steps"] + 1))

    # the real shards load under the guard; a shard carrying a pickled callable is refused, not run. The guard
    # acts on the reader of the engine that loads (DeepSpeed's own, which passes weights_only=False), not on
    # torch.load for the whole process
    from types import SimpleNamespace

    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine

    engine = SimpleNamespace(checkpoint_engine=TorchCheckpointEngine())
    shard = sorted((latest_checkpoint(run / "checkpoints") / "ds" / "state").glob("*optim_states.pt"))[0]
    real_load = torch.load
    with safe_deepspeed_load(engine):
        assert "optimizer_state_dict" in engine.checkpoint_engine.load(shard, map_location="cpu")
        assert torch.load is real_load
    evil = tmp_path / "evil.pt"
    torch.save({"optimizer_state_dict": Evil()}, evil)
    Path("/tmp/chatalign-pwned").unlink(missing_ok=True)
    with safe_deepspeed_load(engine), pytest.raises(pickle.UnpicklingError, match="[Ww]eights only"):
        engine.checkpoint_engine.load(evil, map_location="cpu")
    assert not Path("/tmp/chatalign-pwned").exists()
