"""The parts GAtt and safety distillation share: the launcher check and the run directory's claim."""

import pytest

from chatalign.errors import ConfigError, RunError
from chatalign.runs import RunDir
from chatalign.sft.derived_run import claim_run_dir, record_progress, single_process_rank


def test_a_multi_rank_launch_runs_the_train_step_only(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert single_process_rank(["train"], "gatt", "synthesize", "synthesis") == 1
    with pytest.raises(ConfigError, match=r"run `chatalign safety \.\.\. steps=\[distill,evaluate_before\]` first"):
        single_process_rank(["distill", "train"], "safety", "distill", "distillation")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert single_process_rank(["distill", "train"], "safety", "distill", "distillation") == 0


def test_claiming_checks_inputs_first_and_refuses_unfinished_runs_without_resume(tmp_path):
    run = RunDir(tmp_path / "r", "gatt")

    def bad_inputs():
        raise ConfigError("data: broken")

    with pytest.raises(ConfigError, match="broken"):
        claim_run_dir(run, False, "GAtt", bad_inputs)
    assert not run.manifest_path.exists()
    claim_run_dir(run, False, "GAtt", lambda: None)
    run.start({}, {}, parents=[])
    run.unlock()
    summary = record_progress(run, {"loss": 1.0}, {"start": "x"}, {"synthesize": True, "train": False},
                              finished=False)
    assert summary["status"] == "partial" and run.read_manifest()["steps_done"] == ["synthesize"]
    with pytest.raises(RunError, match="holds an unfinished GAtt run: add --resume"):
        claim_run_dir(run, False, "GAtt", lambda: None)
    claim_run_dir(run, True, "GAtt", bad_inputs)  # a resumed run was checked when it started
    run.unlock()
    assert record_progress(run, {"loss": 1.0}, {"start": "x"}, {"synthesize": True, "train": True},
                           finished=True)["status"] == "finished"
    with pytest.raises(RunError, match="already holds a finished GAtt run"):
        claim_run_dir(run, False, "GAtt", lambda: None)
