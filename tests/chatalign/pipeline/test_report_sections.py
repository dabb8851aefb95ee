"""The opening every before/after section shares (GAtt, safety): heading, 'not run', the results it keeps."""

import json

from chatalign.pipeline.report_sections import Ctx, StepInfo, before_after


def _ctx(tmp_path, enabled=True, finished=True) -> Ctx:
    step = StepInfo("g1", "gatt", tmp_path, None, enabled, {"status": "finished" if finished else "running"})
    return Ctx(tmp_path, [step])


def _open(ctx, usable=bool):
    return before_after(ctx, "gatt", "Heading", "adherence", ("before", "after"), "without data: no adherence",
                        usable=usable)


def test_a_stage_that_did_not_finish_gets_the_not_run_line(tmp_path):
    blocks, step, results = _open(_ctx(tmp_path, finished=False))
    assert blocks == [("h", 2, "Heading"), ("p", "Stage not run (step g1 has not finished): no adherence.")]
    assert step is None and results == {}


def test_only_the_usable_files_are_kept_under_their_labels(tmp_path):
    (tmp_path / "eval_before.json").write_text(json.dumps({"by_turn": {}}))
    (tmp_path / "eval_after.json").write_text(json.dumps({"by_turn": {"2": {"all": 1.0}}}))
    blocks, step, results = _open(_ctx(tmp_path), usable=lambda r: bool(r.get("by_turn")))
    assert blocks == [("h", 2, "Heading")] and step.name == "g1"
    assert results == {"after": {"by_turn": {"2": {"all": 1.0}}}}


def test_a_finished_step_without_evaluation_files_says_so(tmp_path):
    blocks, step, results = _open(_ctx(tmp_path))
    assert blocks[-1] == ("p", "`g1` ran without data: no adherence.") and results == {}
