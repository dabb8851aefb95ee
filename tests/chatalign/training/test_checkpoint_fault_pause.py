"""The fault-test pause inside a checkpoint write: off by default, on for every write with
CHATALIGN_FAULT_PAUSE_IN_CHECKPOINT, and only for the writes whose final path holds CHATALIGN_FAULT_PAUSE_AT
(the pipeline test holds a run at one chosen checkpoint that way). A write that paused leaves its `.writing`
marker in the renamed directory."""

from __future__ import annotations

from chatalign.training.checkpoint import step_dir, write_dir_atomic
from chatalign.training.distributed import DistContext


def write_steps(root, steps=(1, 2, 3)) -> list[str]:
    """The steps whose write paused."""
    for step in steps:
        write_dir_atomic(step_dir(root, step), DistContext(), lambda tmp: None,
                         lambda tmp: (tmp / "state.json").write_text("{}"))
    return [p.name for p in sorted(root.iterdir()) if (p / ".writing").exists()]


def test_no_pause_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("CHATALIGN_FAULT_PAUSE_IN_CHECKPOINT", raising=False)
    assert write_steps(tmp_path) == []


def test_every_write_pauses_without_a_place(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATALIGN_FAULT_PAUSE_IN_CHECKPOINT", "0.001")
    monkeypatch.delenv("CHATALIGN_FAULT_PAUSE_AT", raising=False)
    assert write_steps(tmp_path) == ["step-0000001", "step-0000002", "step-0000003"]


def test_only_the_chosen_write_pauses(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATALIGN_FAULT_PAUSE_IN_CHECKPOINT", "0.001")
    monkeypatch.setenv("CHATALIGN_FAULT_PAUSE_AT", "ppo/checkpoints/step-0000002")
    root = tmp_path / "ppo" / "checkpoints"
    root.mkdir(parents=True)
    assert write_steps(root) == ["step-0000002"]
    assert write_steps(tmp_path / "sft" / "checkpoints") == []
