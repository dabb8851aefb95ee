"""The safety recipes validate, resolve their paths like SFT's, and carry the paper's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatalign.config import load_config
from chatalign.errors import ConfigError
from chatalign.safety.config import SafetyConfig

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "recipes" / "quickstart" / "safety.yaml"
LLAMA2 = ROOT / "recipes" / "llama2-7b" / "safety.yaml"


def test_quickstart_recipe_points_at_bundled_data_and_the_quickstart_rm():
    cfg = load_config(SafetyConfig, QUICKSTART)
    assert cfg.stage == "safety" and cfg.model.name == "embedded"
    assert Path(cfg.distill.prompts[0]) == ROOT / "recipes/quickstart/../../data/quickstart/safety_adversarial_train.jsonl"
    for path in (*cfg.distill.prompts, cfg.distill.templates, cfg.eval.adversarial, cfg.eval.helpful,
                 cfg.eval.borderline):
        assert Path(path).is_file(), path
    # the RM stays relative to the cwd, like output_dir, and matches the reward recipe's output_dir
    import yaml

    rm_recipe = yaml.safe_load((ROOT / "recipes/quickstart/reward_safety.yaml").read_text())
    assert rm_recipe["kind"] == "safety" and cfg.safety_rm.name == rm_recipe["output_dir"]
    assert cfg.output_dir == "runs/quickstart/safety"


def test_llama2_recipe_has_the_papers_settings():
    cfg = load_config(SafetyConfig, LLAMA2)
    assert cfg.distill.use_answer_template and cfg.distill.margin == 0.0
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.schedule) == (2e-5, 0.1, "cosine")
    assert (cfg.train.global_batch_rows, cfg.train.seq_len, cfg.train.epochs) == (64, 4096, 2)
    assert cfg.eval.threshold == 0.15 and cfg.deepspeed.enabled and cfg.deepspeed.zero_stage == 3


def test_overrides_typos_and_cross_checks(tmp_path):
    cfg = load_config(SafetyConfig, QUICKSTART, ["distill.margin=0.5", "eval.violation_rule=rm"])
    assert cfg.distill.margin == 0.5 and cfg.eval.violation_rule == "rm"
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(SafetyConfig, QUICKSTART, ["distill.marign=0.5"])
    with pytest.raises(ConfigError, match="violation_rule"):
        load_config(SafetyConfig, QUICKSTART, ["eval.violation_rule=vibes"])
    with pytest.raises(ConfigError, match="threshold"):
        load_config(SafetyConfig, QUICKSTART, ["eval.threshold=1.5"])
    with pytest.raises(ConfigError, match="multiple"):
        load_config(SafetyConfig, QUICKSTART, ["train.global_batch_rows=3", "train.micro_batch_rows=2"])
    with pytest.raises(ConfigError, match="steps"):
        load_config(SafetyConfig, QUICKSTART, ["steps=[train,train]"])


def test_relative_model_and_rm_names_resolve_against_the_recipe(tmp_path):
    recipe = tmp_path / "r" / "safety.yaml"
    recipe.parent.mkdir()
    recipe.write_text("stage: safety\nmodel: {name: ./policy}\nsafety_rm: {name: ../rm}\n"
                      "distill: {prompts: [p.jsonl], templates: t.yaml}\neval: {helpful: h.jsonl}\n")
    cfg = load_config(SafetyConfig, recipe)
    assert cfg.model.name == str(tmp_path / "r" / "./policy")
    assert cfg.safety_rm.name == str(tmp_path / "r" / "../rm")
    assert cfg.distill.prompts == [str(tmp_path / "r" / "p.jsonl")] and cfg.eval.adversarial is None
