"""The trainer under DeepSpeed ZeRO-3 with 2 CPU ranks over gloo: sharded, and the same result as 1 process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ...conftest import torchrun_command

WORKER = Path(__file__).with_name("train_worker.py")


@pytest.mark.slow
@pytest.mark.distributed
def test_zero3_two_ranks_match_single_process(tmp_path):
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "one")], capture_output=True,
                            text=True, timeout=300, env=env)
    assert single.returncode == 0, single.stderr[-3000:]
    ref = json.loads(single.stdout.strip().splitlines()[-1])
    out = subprocess.run(torchrun_command(str(WORKER), str(tmp_path / "two"), "--zero3"), capture_output=True,
                         text=True, timeout=400, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    ranks = [json.loads(ln) for ln in out.stdout.splitlines() if ln.startswith('{"rank"')]
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    for r in ranks:
        assert r["local"] < 0.55 * r["full"], "parameters are not sharded across the two ranks"
        assert r["full"] == ref["full"]
        assert r["loss"] == pytest.approx(ref["loss"], rel=1e-4)
        assert r["checksum"] == pytest.approx(ref["checksum"], rel=1e-4)
    assert (tmp_path / "two" / "checkpoints").is_dir()
