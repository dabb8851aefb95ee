"""A round killed inside PPO resumes with --resume: earlier phases are not redone, PPO continues from its
last completed iteration."""

import json

import pytest

from chatalign.errors import RunError
from chatalign.rlhf.round import run_round

from .conftest import by_text, round_cfg, rows


def test_a_round_killed_inside_ppo_resumes_without_redoing_earlier_phases(rlhf_files, tmp_path):
    out = tmp_path / "round"
    cfg = round_cfg(rlhf_files, out, rlhf_files / "policy", "rs+ppo", ppo={"iterations": 3})

    class Killed(Exception):
        pass

    def kill(done, record):
        if done == 2:
            raise Killed

    with pytest.raises(Killed):
        run_round(cfg, progress=False, reward_fn=by_text, on_ppo_iteration=kill)
    samples_before = (out / "data" / "samples.jsonl").read_text()
    sft_mtime = (out / "rs_sft" / "model" / "model.safetensors").stat().st_mtime
    with pytest.raises(RunError, match="--resume"):
        run_round(cfg, progress=False, reward_fn=by_text)
    summary = run_round(cfg, resume=True, progress=False, reward_fn=by_text)
    assert summary["ppo_iterations"] == 3
    assert [r["step"] for r in rows(out / "metrics.jsonl")] == [0, 1, 2, 3]
    assert (out / "data" / "samples.jsonl").read_text() == samples_before
    assert (out / "rs_sft" / "model" / "model.safetensors").stat().st_mtime == sft_mtime
    assert json.loads((out / "manifest.json").read_text())["resumed_at"]
