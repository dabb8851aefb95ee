"""The stage registry: entry points in, stages in pipeline order out; a plugin stage is a command and a
pipeline step like ours; a clear error for a stage that is not there or not a stage."""

from __future__ import annotations

import re

import pytest

from chatalign import registry
from chatalign.cli.main import main
from chatalign.config import load_config
from chatalign.errors import ConfigError
from chatalign.stage import Stage


def test_our_stages_in_pipeline_order():
    stages = registry.stages()
    assert [s.name for s in stages][:7] == ["sft", "reward", "dpo", "rlhf", "prefs", "gatt", "safety"]
    assert [s.order for s in stages] == sorted(s.order for s in stages)
    assert all(isinstance(s, Stage) and s.help for s in stages)
    assert registry.get("rlhf") is stages[3] and registry.find("nope") is None and registry.find(None) is None


def test_an_unknown_stage_names_the_known_ones():
    with pytest.raises(ConfigError) as err:
        registry.get("sfft")
    assert str(err.value) == f"unknown stage 'sfft' (one of {', '.join(registry.names())})"


def test_a_pipeline_step_of_an_unknown_stage_is_one_line(tmp_path):
    from chatalign.pipeline.config import PipelineConfig

    p = tmp_path / "pipeline.yaml"
    p.write_text("steps: [{name: a, stage: sfft, recipe: sft.yaml}]\n")
    with pytest.raises(ConfigError) as err:
        load_config(PipelineConfig, p)
    assert str(err.value) == f"{p}: steps.0.stage: unknown stage 'sfft' (one of {', '.join(registry.names())})"


def test_a_plugin_stage_is_listed_in_help_in_its_order(toy_stage, capsys):
    assert registry.names()[:3] == ["sft", "toy", "reward"]  # order 15: between SFT and the reward models
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    commands = re.findall(r"^ {4}(\w+) ", capsys.readouterr().out, flags=re.M)
    assert commands[:3] == ["sft", "toy", "reward"]


def test_a_plugin_stage_runs_from_the_command_line(toy_stage, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "words.txt").write_text("one two three\n")
    (tmp_path / "toy.yaml").write_text("stage: toy\nwords: words.txt\noutput_dir: runs/toy\n")
    assert main(["toy", "--config", "toy.yaml", "--dry-run"]) == 0
    assert '"words": 3' in capsys.readouterr().out
    assert main(["toy", "--config", "toy.yaml", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert '"progress": false' in out and "run directory: runs/toy" in out
    assert main(["toy", "--config", "toy.yaml", "fail=user"]) == 2
    assert capsys.readouterr().err == "chatalign: error: toy: told to fail\n"


def test_a_broken_entry_point_is_named(toy_stage):
    (toy_stage / "toy_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[chatalign.stages]\ntoy = toy_stage:ToyConfig\nother = toy_stage:STAGE\n")
    registry.reload()
    with pytest.raises(ConfigError, match=r"entry point toy = toy_stage:ToyConfig .*not a chatalign.stage.Stage"):
        registry.stages()
    (toy_stage / "toy_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[chatalign.stages]\nother = toy_stage:STAGE\n")
    registry.reload()
    with pytest.raises(ConfigError, match="the stage object is named 'toy'"):
        registry.get("sft")
    assert main(["--help"]) == 2  # the CLI says it in one line, no traceback


def test_listing_the_stages_loads_no_model_library():
    """`chatalign --help` imports every stage.py: they must stay light (no torch, transformers, pydantic)."""
    import subprocess
    import sys

    code = ("import sys\nfrom chatalign.cli.main import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in ('torch', 'transformers', 'pydantic', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_method_declared_by_its_function_is_that_function():
    from chatalign.sft.run import run_sft
    from chatalign.stage import imported_on_call

    stage = registry.get("sft")
    assert stage.run is run_sft and isinstance(type(stage).__dict__["run"], imported_on_call)
