"""The pipeline runs a step by calling its stage (no command line in between): the config it validated, the
overrides as typed values, resume and progress passed on, the summary printed, failures and interrupts
recorded and reported as `chatalign <stage>` would. The stage is a plugin (tests/chatalign/conftest.py)."""

from __future__ import annotations

import json

import pytest

from chatalign.cli.main import main
from chatalign.config import load_config
from chatalign.errors import UserError
from chatalign.pipeline.config import PipelineConfig
from chatalign.pipeline.runner import plan_steps, run_pipeline


def write_pipeline(d, fail: str = "no"):
    (d / "words.txt").write_text("a b c d\n")
    (d / "toy.yaml").write_text("stage: toy\nwords: missing.txt\n")
    (d / "pipeline.yaml").write_text(
        f"output_dir: {d / 'runs'}\nreport: false\ndata: {{words: words.txt}}\n"
        f"steps: [{{name: count, stage: toy, recipe: toy.yaml, set: {{words: '${{data.words}}', fail: '{fail}'}}}}]\n")
    return d / "pipeline.yaml"


def state_of(d) -> dict:
    return json.loads((d / "runs" / "pipeline_state.json").read_text())["steps"]["count"]


def test_a_step_is_its_stage_run_on_the_validated_config(toy_stage, tmp_path, capsys):
    cfg = load_config(PipelineConfig, write_pipeline(tmp_path))
    item = plan_steps(cfg)[0]
    assert item["values"] == {"words": str(tmp_path / "words.txt"), "fail": "no",
                              "output_dir": str(tmp_path / "runs" / "count")}
    assert type(item["config"]).__name__ == "ToyConfig" and item["config"].words == str(tmp_path / "words.txt")
    run_pipeline(cfg, progress=False)
    out = capsys.readouterr().out
    assert '"words": 4' in out and '"resumed": false' in out and '"progress": false' in out
    assert f"run directory: {tmp_path / 'runs' / 'count'}" in out and "=== count finished in" in out
    assert state_of(tmp_path)["status"] == "finished" and state_of(tmp_path)["key"] == item["key"]
    run_pipeline(cfg)
    assert "up to date" in capsys.readouterr().out


def test_a_broken_step_resumes(toy_stage, tmp_path, capsys):
    cfg = load_config(PipelineConfig, write_pipeline(tmp_path))
    item = plan_steps(cfg)[0]
    item["dir"].mkdir(parents=True)
    (tmp_path / "runs" / "pipeline_state.json").write_text(json.dumps({"steps": {"count": {"key": item["key"]}}}))
    run_pipeline(cfg)
    out = capsys.readouterr().out
    assert "toy: count (resuming)" in out and '"resumed": true' in out


@pytest.mark.parametrize("fail,code,how,err", [
    ("user", 2, "failed (exit code 2); finished steps are kept: fix the cause and run the same command again to "
                "continue", "chatalign: error: toy: told to fail\n"),
    ("interrupt", 130, "interrupted; finished steps are kept: run the same command again to resume it",
     "chatalign: interrupted\n")])
def test_a_failed_or_interrupted_step_is_recorded_and_reported(toy_stage, tmp_path, capsys, fail, code, how, err):
    path = write_pipeline(tmp_path, fail)
    with pytest.raises(UserError) as raised:
        run_pipeline(load_config(PipelineConfig, path))
    assert str(raised.value) == f"pipeline step count {how}" and raised.value.exit_code == code
    assert capsys.readouterr().err == err  # what the stage's own command prints
    assert state_of(tmp_path)["status"] == "failed" and state_of(tmp_path)["exit_code"] == (130 if code == 130 else 2)
    assert main(["pipeline", "--config", str(path)]) == code
    assert capsys.readouterr().err == err + f"chatalign: error: pipeline step count {how}\n"


def test_report_only_rebuilds_the_report_and_runs_nothing(toy_stage, tmp_path, capsys):
    path = write_pipeline(tmp_path)
    assert main(["pipeline", "--config", str(path), "--report-only"]) == 2  # nothing has run: one line
    assert "no pipeline has run here yet" in capsys.readouterr().err
    cfg = load_config(PipelineConfig, path)
    run_pipeline(cfg, progress=False)
    before = state_of(tmp_path)
    capsys.readouterr()
    assert main(["pipeline", "--config", str(path), "--report-only"]) == 0
    out = capsys.readouterr().out
    assert "report.md" in out and "=== " not in out and (tmp_path / "runs" / "report.md").is_file()
    assert state_of(tmp_path) == before  # no step ran again
