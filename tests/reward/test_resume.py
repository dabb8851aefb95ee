"""A reward run stopped by SIGTERM saves a checkpoint, and `resume` finishes it with the same numbers as a
run that was never stopped (the data plan is fixed up front and replayed)."""

import json
import os
import signal

import pytest

import chatalign.reward.model as rm_model
from chatalign.reward.run import run_reward
from chatalign.training.loop import Interrupted

from .conftest import toy_config


def losses(run):
    return [json.loads(x)["loss"] for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_sigterm_then_resume_matches_an_uninterrupted_run(tmp_path, toy_files, tiny_model_dir, monkeypatch):
    train, held = toy_files
    whole = toy_config(tmp_path / "whole", train, held, model=tiny_model_dir, epochs=1)
    run_reward(whole, progress=False)

    calls = {"n": 0}
    real = rm_model.train_metrics

    def stop_at_step_3(aux):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # caught by the trainer: checkpoint after this step
        return real(aux)

    monkeypatch.setattr(rm_model, "train_metrics", stop_at_step_3)
    cut = toy_config(tmp_path / "cut", train, held, model=tiny_model_dir, epochs=1)
    with pytest.raises(Interrupted, match="step 3/5"):
        run_reward(cut, progress=False)
    run = tmp_path / "cut" / "run"
    assert (run / "checkpoints" / "step-0000003").is_dir() and not (run / "model").exists()
    monkeypatch.setattr(rm_model, "train_metrics", real)
    summary = run_reward(cut, resume=True, progress=False)
    assert losses(run) == pytest.approx(losses(tmp_path / "whole" / "run"), abs=1e-5)
    assert summary["eval_pairs"] == 10 and json.loads((run / "manifest.json").read_text())["resumed_at"]
