"""Kill a training process with SIGKILL mid-run, resume it, and get the same weights as an unbroken run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("train_worker.py")


def run_worker(run_dir, *extra, timeout=240):
    out = subprocess.run([sys.executable, str(WORKER), str(run_dir), *extra], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def wait_for(predicate, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    ref = run_worker(tmp_path / "ref")
    victim = tmp_path / "victim"
    proc = subprocess.Popen([sys.executable, str(WORKER), str(victim), "--sleep", "0.3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ck = victim / "checkpoints"
    assert wait_for(lambda: ck.is_dir() and any(p.name == "step-0000004" for p in ck.iterdir()), 120)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    metrics_before = (victim / "metrics.jsonl").read_text().splitlines()
    assert len(metrics_before) < ref["steps"]
    resumed = run_worker(victim, "--resume")
    assert resumed["checksum"] == pytest.approx(ref["checksum"], rel=1e-6)
    assert resumed["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    steps = [json.loads(x)["step"] for x in (victim / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, ref["steps"] + 1)), "metrics log has gaps or duplicates after resume"


@pytest.mark.slow
def test_sigterm_saves_checkpoint_and_exits_cleanly(tmp_path):
    run = tmp_path / "term"
    proc = subprocess.Popen([sys.executable, str(WORKER), str(run), "--sleep", "0.3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: (run / "metrics.jsonl").is_file(), 120)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert "Interrupted" in err and "--resume" in err
    steps_logged = len((run / "metrics.jsonl").read_text().splitlines())
    ck = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ck[-1] == f"step-{steps_logged:07d}", "the step the signal interrupted must be checkpointed"


def test_checkpoint_write_failure_keeps_previous(tmp_path, monkeypatch, tiny_model):
    """ENOSPC while writing a checkpoint: a clear RunError, the previous checkpoint untouched."""
    import errno

    import torch

    from chatalign.errors import RunError
    from chatalign.training import checkpoint as ckpt
    from chatalign.training.backend import TorchBackend
    from chatalign.training.distributed import DistContext

    backend = TorchBackend(tiny_model, torch.optim.AdamW(tiny_model.parameters()))
    dist = DistContext()
    first = ckpt.save_checkpoint(tmp_path, 2, backend, dist, {})
    before = {p.name: p.stat().st_size for p in first.iterdir()}

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(RunError, match="No space left.*previous checkpoint is intact"):
        ckpt.save_checkpoint(tmp_path, 4, backend, dist, {})
    assert ckpt.latest_checkpoint(tmp_path) == first
    assert {p.name: p.stat().st_size for p in first.iterdir()} == before
    assert not list(tmp_path.glob(".tmp-*")), "a half-written checkpoint was left behind"
