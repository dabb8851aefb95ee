"""The DPO stage object the registry loads: light to import, its CLI command, its memory plan and its section of
the pipeline report."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chatalign.config import load_config
from chatalign.dpo.config import DPOConfig
from chatalign.dpo.stage import STAGE
from chatalign.stage import Stage

ROOT = Path(__file__).resolve().parents[2]


def test_the_stage_object_and_a_light_import():
    assert isinstance(STAGE, Stage) and STAGE.name == "dpo" and STAGE.config_class() is DPOConfig
    assert set(STAGE.depends_on) <= {"sft", "reward"}
    code = "import sys; import chatalign.dpo.stage; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_the_command_parses_recipe_arguments():
    parser = argparse.ArgumentParser()
    STAGE.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dpo", "--config", "r.yaml", "dpo.beta=0.2", "--resume", "--no-progress"])
    assert (args.config, args.overrides, args.resume, args.dry_run) == ("r.yaml", ["dpo.beta=0.2"], True, False)
    assert args.handler == STAGE.command


def test_the_7b_recipe_plans_on_8_gpus():
    from chatalign.plan.memory import KNOWN_SHAPES
    from chatalign.plan.phases import plan

    cfg = load_config(DPOConfig, ROOT / "recipes/llama2-7b/dpo.yaml")
    spec = STAGE.plan_spec(cfg, lambda name: KNOWN_SHAPES["llama2-7b"], 1024)
    phases = {p.name: p for p in plan(spec, 8)}
    assert set(phases) == {"reference log-probs", "train"}
    params = KNOWN_SHAPES["llama2-7b"].params("lm")
    assert phases["reference log-probs"].gpu_bytes == pytest.approx(params * 2)  # whole bf16 model per rank
    # ZeRO-3 over 8 ranks: weights, gradients and AdamW state of 6.7B parameters shard to well under 80 GB
    assert phases["train"].gpu_bytes < 40 * 2**30
    assert STAGE.plan_changes(cfg) == ["deepspeed.enabled=true deepspeed.offload_optimizer=cpu",
                                       "train.row_tokens=4096"]


def test_pipeline_report_section_reads_a_finished_run(tmp_path, toy_files, tiny_model_dir):
    from chatalign.dpo.stage import STAGE as stage
    from chatalign.pipeline.report_sections import Ctx, StepInfo

    from .conftest import toy_config

    train, held = toy_files
    run = tmp_path / "dpo"
    stage.run(toy_config(run, train, held, tiny_model_dir, epochs=1), progress=False)
    step = StepInfo("dpo", "dpo", run, None, True, json.loads((run / "manifest.json").read_text()))
    blocks = stage.report_section(Ctx(tmp_path, [step]))
    table = next(b for b in blocks if b[0] == "table")
    assert table[2][0]["step"] == "dpo" and table[2][0]["held-out pairs"] == 16 and "significantly_better" in table[1]
    assert any(b[0] == "img" and (tmp_path / b[1]).is_file() for b in blocks)
    assert "not run" in stage.report_section(Ctx(tmp_path, []))[1][1]
