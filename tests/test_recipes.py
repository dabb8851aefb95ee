"""Every recipe under recipes/ validates against its stage's schema (paths need not exist)."""

from pathlib import Path

import pytest
import yaml

from chatalign.config import load_config

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").rglob("*.yaml"))


def schema_for(stage: str):
    from chatalign import registry
    from chatalign.pipeline.config import PipelineConfig

    return PipelineConfig if stage == "pipeline" else registry.get(stage).config_class()


def test_there_are_recipes():
    assert any(p.parent.name == "quickstart" for p in RECIPES)
    assert any(p.parent.name == "llama2-7b" for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_validates(path):
    stage = yaml.safe_load(path.read_text())["stage"]
    cfg = load_config(schema_for(stage), path)
    assert cfg.stage == stage


def test_llama2_sft_recipe_has_paper_numbers():
    from chatalign.sft.config import SFTConfig

    cfg = load_config(SFTConfig, ROOT / "recipes/llama2-7b/sft.yaml")
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.schedule) == (2e-5, 0.1, "cosine")
    assert (cfg.train.global_batch_rows, cfg.train.seq_len, cfg.train.epochs) == (64, 4096, 2)
    assert cfg.deepspeed.enabled and cfg.deepspeed.zero_stage == 3
