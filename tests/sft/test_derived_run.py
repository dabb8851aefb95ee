"""The parts GAtt and safety distillation share: the launcher check, the run directory's claim, the order of
a run's parts and the after-evaluation check."""

from types import SimpleNamespace

import pytest

from chatalign.errors import ConfigError, RunError, UserError
from chatalign.runs import RunDir
from chatalign.sft.derived_run import (
    DerivedStage,
    after_eval_due,
    claim_run_dir,
    record_progress,
    run_derived_stage,
    single_process_rank,
)


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


def recording_stage(calls: list[str], fail_in: str | None = None, rows: str = "rows.jsonl") -> DerivedStage:
    """A stage whose parts only record that they ran; its SFT config names `rows` as the training file."""
    sft = SimpleNamespace(data=SimpleNamespace(train=rows))

    def part(name, value=None):
        def call():
            calls.append(name)
            if name == fail_in:
                raise RunError(f"{name} failed")
            return value
        return call

    return DerivedStage(command="gatt", what="GAtt", first_step="synthesize", first_step_noun="synthesis",
                        prepare=part("prepare"), start=part("start"), sft_config=part("sft_config", sft),
                        evaluate_after=part("evaluate_after"), summarize=part("summarize", {"status": "x"}))


def test_a_derived_run_claims_starts_evaluates_and_summarizes_on_rank_0_in_that_order(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    calls: list[str] = []
    run = RunDir(tmp_path / "r", "gatt")
    summary = run_derived_stage(recording_stage(calls), run, RunDir(tmp_path / "r" / "train", "sft"),
                                ["synthesize", "evaluate_before"], resume=False, progress=False)
    assert summary == {"status": "x"}
    assert calls == ["prepare", "start", "evaluate_after", "summarize"]  # no train step asked for
    run.lock()  # released again
    run.unlock()
    calls.clear()
    with pytest.raises(RunError, match="start failed"):
        run_derived_stage(recording_stage(calls, fail_in="start"), RunDir(tmp_path / "s", "gatt"),
                          RunDir(tmp_path / "s" / "train", "sft"), ["synthesize"], resume=False, progress=False)
    again = RunDir(tmp_path / "s", "gatt")
    again.lock()  # the lock was released when a part failed
    again.unlock()


def test_other_ranks_run_the_train_step_only(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    calls: list[str] = []
    with pytest.raises(RunError, match="run the synthesize step first"):  # the rows are not there yet
        run_derived_stage(recording_stage(calls, rows=str(tmp_path / "r" / "data" / "rows.jsonl")),
                          RunDir(tmp_path / "r", "gatt"), RunDir(tmp_path / "r" / "train", "sft"), ["train"],
                          resume=False, progress=False)
    assert calls == ["sft_config"]


def test_the_after_evaluation_is_due_once_training_has_finished(tmp_path):
    train_run = RunDir(tmp_path / "train", "sft")
    result = tmp_path / "eval_after.json"
    assert not after_eval_due(["train"], True, result, train_run)
    assert not after_eval_due(["evaluate_after"], False, result, train_run)
    with pytest.raises(RunError, match="no finished training"):
        after_eval_due(["evaluate_after"], True, result, train_run)
    result.write_text("{}")
    assert not after_eval_due(["evaluate_after"], True, result, train_run)  # done already


def test_replay_files_train_beside_the_stage_rows_each_capped(tmp_path):
    import json

    from chatalign.sft.config import DerivedStageConfig
    from chatalign.sft.derived_run import check_replay, last_turn_sft_config

    good = tmp_path / "general.jsonl"
    good.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                     {"role": "assistant", "content": f"a{i}"}]}) + "\n"
                            for i in range(5)))
    cfg = DerivedStageConfig(stage="x", output_dir=str(tmp_path / "run"), steps=["train"],
                             replay=[{"path": str(good), "max_rows": 3}])
    sft = last_turn_sft_config(cfg, tmp_path / "run", "rows.jsonl", "drop_oldest_turns")
    assert [(str(s.path), s.max_rows) for s in sft.data.extra] == [(str(good), 3)]
    assert sft.data.train.endswith("rows.jsonl") and sft.train.train_on == "last_assistant"
    assert check_replay(cfg) == {str(good): 3}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text().splitlines()[0] + "\n" + json.dumps({"messages": [{"role": "robot"}]}) + "\n")
    cfg.replay = [{"path": str(bad)}]
    with pytest.raises(UserError, match=r"bad\.jsonl:2: messages\.0\.role"):
        check_replay(cfg)


def test_replay_sources_select_rows_by_tag_before_the_cap(tmp_path):
    import json

    from chatalign.errors import DataError
    from chatalign.sft.config import DerivedStageConfig
    from chatalign.sft.data import load_conversations
    from chatalign.sft.derived_run import check_replay

    mixed = tmp_path / "mixed.jsonl"
    tags = ["refusal", "benign", "refusal", "benign", "benign", "other"]
    mixed.write_text("".join(json.dumps({"tags": [t, "x"], "messages": [{"role": "user", "content": f"q{i}"},
                                                                     {"role": "assistant", "content": f"a{i}"}]})
                             + "\n" for i, t in enumerate(tags)))
    benign = load_conversations(str(mixed), max_rows=2, tags=["benign"])[0]
    assert [c.messages[0].content for c in benign] == ["q1", "q3"]  # the first two benign rows, not rows 0-1
    either = load_conversations(str(mixed), tags=["other", "refusal"])[0]
    assert [c.messages[0].content for c in either] == ["q0", "q2", "q5"]
    cfg = DerivedStageConfig(stage="x", output_dir=str(tmp_path / "run"), steps=["train"],
                             replay=[{"path": str(mixed), "tags": ["refusal"], "max_rows": 1},
                                     {"path": str(mixed), "tags": ["benign"]}])
    assert check_replay(cfg) == {f"{mixed} tags=['refusal']": 1, f"{mixed} tags=['benign']": 3}
    with pytest.raises(DataError, match=r"mixed\.jsonl: no usable conversations tagged with any of \['nope'\]"):
        load_conversations(str(mixed), tags=["nope"])
