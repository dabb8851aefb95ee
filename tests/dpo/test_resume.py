"""A DPO run SIGKILLed in the middle of its second checkpoint write resumes from the first one, reads its
reference log-probs back instead of recomputing them, and ends with the same weights and metrics as a run
that was never stopped (the data plan is fixed up front and replayed)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import chatalign.dpo.reference as reference
from chatalign.dpo.stage import STAGE

from .conftest import toy_config, toy_recipe

CHILD = """
import json, sys, torch
torch.set_num_threads(1)
from chatalign.dpo.stage import STAGE
STAGE.run(STAGE.config_class().model_validate(json.loads(sys.argv[1])), progress=False)
"""


def kill_in_second_checkpoint(recipe: dict, run) -> None:
    env = {**os.environ, "CHATALIGN_FAULT_PAUSE_IN_CHECKPOINT": "2", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(recipe)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ck = run / "checkpoints"
    end = time.time() + 240
    while time.time() < end and proc.poll() is None:
        if (ck / "step-0000002").is_dir() and any(ck.glob(".tmp-*/.writing")):
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_sigkill_then_resume_gives_the_weights_of_an_unbroken_run(tmp_path, toy_files, tiny_model_dir, monkeypatch):
    train, held = toy_files
    whole = tmp_path / "whole"
    STAGE.run(toy_config(whole, train, held, tiny_model_dir), progress=False)

    cut = tmp_path / "cut"
    kill_in_second_checkpoint(toy_recipe(cut, train, held, tiny_model_dir), cut)
    from chatalign.training.checkpoint import list_checkpoints

    assert [p.name for p in list_checkpoints(cut / "checkpoints")] == ["step-0000002"]
    assert not (cut / "model").exists() and (cut / "reference_logps.safetensors").is_file()

    def no_recompute(*_a, **_k):
        raise AssertionError("a resumed run must read its reference log-probs back, not compute them again")

    monkeypatch.setattr(reference, "score_sharded", no_recompute)
    summary = STAGE.run(toy_config(cut, train, held, tiny_model_dir), resume=True, progress=False)
    assert summary["reference_seconds"] == 0.0 and summary["eval_pairs"] == 16

    a, b = load_file(str(whole / "model" / "model.safetensors")), load_file(str(cut / "model" / "model.safetensors"))
    assert set(a) == set(b) and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    losses = [[json.loads(x)["loss"] for x in (r / "metrics.jsonl").read_text().splitlines()] for r in (whole, cut)]
    assert losses[1] == pytest.approx(losses[0], abs=1e-6) and len(losses[0]) == 8
    assert json.loads((cut / "manifest.json").read_text())["resumed_at"]
