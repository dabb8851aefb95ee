"""End to end on a tiny random policy and a tiny random safety RM (seconds): the run directory's data, the
gate's bookkeeping, the fine-tuned model, before/after evaluation, manifest lineage and the report."""

from __future__ import annotations

import json
import os

import pytest

from chatalign.errors import RunError

from ..conftest import stage_command
from .conftest import tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model_dir, tiny_rm_dir, one_torch_thread):
    from chatalign.safety.run import run_safety

    tmp = tmp_path_factory.mktemp("safety_e2e")
    cfg = tiny_config(tmp, tiny_model_dir, tiny_rm_dir)
    return cfg, tmp / "run", run_safety(cfg, progress=False)


def read_jsonl(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_distillation_data_follows_the_gate(finished):
    cfg, run, summary = finished
    candidates = read_jsonl(run / "data" / "distill_candidates.jsonl")
    rows = read_jsonl(run / "data" / "distill_train.jsonl")
    assert len(candidates) == 9 and summary["distill_candidates"] == 9
    kept = [c for c in candidates if c["kept"]]
    assert 0 < len(kept) == len(rows) == summary["distill_kept"]
    for c in candidates:
        if c["answer_with"] is not None:
            assert c["kept"] == (c["score_with"] - c["score_without"] > 0)
            assert c["gain"] == pytest.approx(c["score_with"] - c["score_without"])
    preprompt_start = "You are a safe and responsible assistant"
    for c, row in zip(kept, rows, strict=True):
        assert row["messages"][:-1] == c["messages"]  # the prompt without the safety context
        assert row["messages"][-1] == {"role": "assistant", "content": c["answer_with"]}
        assert not any(preprompt_start in m["content"] for m in row["messages"])
        assert row["tags"][0] == "safety_distill" and row["tags"][1] == c["risk_category"]
    stats = json.loads((run / "data" / "distill.json").read_text())["stats"]
    assert sum(v["kept"] for v in stats["by_category"].values()) == len(kept)
    assert sum(summary[f"distill_kept_{c}"] for c in stats["by_category"]) == len(kept)


def test_model_evaluations_and_report(finished):
    cfg, run, summary = finished
    assert summary["status"] == "finished"
    assert os.readlink(run / "model") == os.path.join("train", "model")
    assert (run / "model" / "model.safetensors").is_file()
    train_manifest = json.loads((run / "train" / "manifest.json").read_text())
    assert train_manifest["status"] == "finished" and train_manifest["config"]["train"]["train_on"] == "last_assistant"
    for name in ("eval_before.json", "eval_after.json"):
        res = json.loads((run / name).read_text())
        assert res["violation"]["n"] == 4 and res["false_refusal_helpful"]["n"] == 4
        assert res["false_refusal_borderline"]["n"] == 4 and len(res["samples"]["adversarial"]) == 4
        assert res["judge"]["reference_n"] == 4
        assert all(0 < r["safety_score"] < 1 for r in res["samples"]["adversarial"])
    for key in ("before_violation_rate", "after_violation_rate", "before_false_refusal_helpful_rate",
                "after_false_refusal_borderline_rate", "violation_change", "false_refusal_within_bound"):
        assert key in summary, key
    for png in ("safety_eval.png", "distill_gains.png"):
        assert (run / png).stat().st_size > 1000
    report = (run / "report.md").read_text()
    for text in ("## Context distillation", "## Evaluation", "## Before -> after", "violation", "false refusal",
                 "illicit_criminal", "heuristic", "safety_eval.png", "distill_gains.png"):
        assert text in report, text


def test_manifest_lineage(finished, tiny_model_dir, tiny_rm_dir):
    cfg, run, summary = finished
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stage"] == "safety" and manifest["status"] == "finished"
    assert manifest["parents"] == [str(tiny_model_dir.resolve()), str(tiny_rm_dir.resolve())]
    assert manifest["lineage"]["start_model"]["resolved"] == str(tiny_model_dir)
    assert manifest["lineage"]["safety_rm"]["resolved"] == str(tiny_rm_dir)
    assert {"templates", "prompts_0", "eval_adversarial", "eval_helpful", "eval_borderline"} <= set(manifest["inputs"])
    assert manifest["metrics"]["distill_kept"] == summary["distill_kept"]


def test_a_finished_run_is_not_overwritten(finished):
    from chatalign.safety.run import run_safety

    cfg, _, _ = finished
    with pytest.raises(RunError, match="finished safety run"):
        run_safety(cfg, progress=False)
    again = run_safety(cfg, resume=True, progress=False)  # every step done: nothing reruns
    assert again["distill_kept"] == finished[2]["distill_kept"]


def test_eval_command_writes_table_and_plot(tmp_path, tiny_model_dir, tiny_rm_dir, capsys):
    from chatalign.safety.cli_commands import cmd_eval

    assert cmd_eval(str(tiny_model_dir), str(tiny_rm_dir), str(tmp_path / "out"), max_prompts=2,
                    max_new_tokens=4, threshold=0.5) == 0
    out = capsys.readouterr().out
    assert "violation" in out and "false refusal (borderline)" in out
    res = json.loads((tmp_path / "out" / "eval_safety.json").read_text())
    (label,) = res
    assert res[label]["settings"]["threshold"] == 0.5 and res[label]["violation"]["n"] == 2
    assert (tmp_path / "out" / "eval_safety.png").stat().st_size > 1000
    assert "| metric |" in (tmp_path / "out" / "eval_safety.md").read_text()


def test_the_rm_must_be_a_safety_reward_model(tmp_path, tiny_model_dir, tiny_rm_dir):
    from chatalign.errors import ConfigError
    from chatalign.safety.config import SafetyRM
    from chatalign.safety.run import check_safety_rm

    with pytest.raises(ConfigError, match="not a reward model"):
        check_safety_rm(SafetyRM(name=str(tiny_model_dir)))
    with pytest.raises(ConfigError, match="train one first"):
        check_safety_rm(SafetyRM(name=str(tmp_path / "no_such_run")))
    run = tmp_path / "helpful_rm"
    (run / "model").mkdir(parents=True)
    for f in tiny_rm_dir.iterdir():
        (run / "model" / f.name).symlink_to(f)
    (run / "manifest.json").write_text(json.dumps({"stage": "reward", "config": {"kind": "helpfulness"}}))
    with pytest.raises(ConfigError, match="not a safety"):
        check_safety_rm(SafetyRM(name=str(run)))
    assert check_safety_rm(SafetyRM(name=str(run), allow_other_kind=True))["kind"] == "helpfulness"


def test_dry_run_checks_config_and_data_without_writing(tmp_path, tiny_model_dir, tiny_rm_dir, capsys):
    import yaml

    from chatalign.errors import DataError

    data = tiny_config(tmp_path, tiny_model_dir, tiny_rm_dir).model_dump(mode="json")
    recipe = tmp_path / "safety.yaml"
    recipe.write_text(yaml.safe_dump(data))
    assert stage_command("safety", recipe, dry_run=True) == 0
    out = capsys.readouterr().out
    assert "dry run: config and data are valid" in out and '"adversarial_prompts": 9' in out
    assert not (tmp_path / "run").exists()
    bad = tmp_path / "templates.yaml"
    bad.write_text("preprompt: Be safe.\nanswer_templates: {illicit_criminal: a, hateful_harmful: b}\n")
    with pytest.raises(DataError, match="unqualified_advice"):
        stage_command("safety", recipe, [f"distill.templates={bad}"], dry_run=True)
