"""The reward recipe schema: paper defaults, cross-field checks, and the bundled recipes."""

from pathlib import Path

import pytest

from chatalign.config import load_config
from chatalign.errors import ConfigError
from chatalign.reward.config import RewardConfig

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ["quickstart/reward_helpful.yaml", "quickstart/reward_safety.yaml", "llama2-7b/reward_helpful.yaml",
           "llama2-7b/reward_safety.yaml"]


def minimal(**kw):
    return {"kind": "helpfulness", "data": {"sources": [{"path": "p.jsonl"}]}, **kw}


def test_defaults_are_the_papers():
    cfg = RewardConfig.model_validate(minimal())
    assert (cfg.train.epochs, cfg.train.global_batch_pairs) == (1, 512)
    assert (cfg.optim.lr, cfg.optim.schedule, cfg.optim.min_lr_ratio) == (1e-5, "cosine", 0.1)
    assert (cfg.optim.warmup_ratio, cfg.optim.min_warmup_steps) == (0.03, 5)
    assert cfg.margin == "small" and cfg.default_strength == "unsure" and cfg.data.exclude_unsafe_chosen


@pytest.mark.parametrize("override, message", [
    ({"kind": "harmlessness"}, "kind"),
    ({"margin": "medium"}, "margin"),
    ({"margin": {"better": 1.0}}, "missing"),
    ({"train": {"max_seq_len": 4096, "row_tokens": 4096}}, "whole pair"),
    ({"lora": {"enabled": True, "quantize": "4bit"}, "deepspeed": {"enabled": True}}, "bitsandbytes 4-bit"),
    ({"lora": {"enabled": True}, "train": {"trainable_layers": 4}}, "choose one"),
    ({"default_strength": "much_better"}, "default_strength"),
    ({"data": {"sources": [{"path": "a/x.jsonl"}, {"path": "b/x.jsonl"}]}}, "appear twice"),
    ({"data": {"sources": []}}, "sources"),
    ({"data": {"sources": [{"path": "p", "ratio": 0}]}}, "ratio"),
])
def test_bad_configs_are_refused(override, message):
    with pytest.raises(ValueError, match=message):
        RewardConfig.model_validate({**minimal(), **override})


def test_custom_margin_mapping_is_accepted():
    table = {"significantly_better": 2, "better": 1, "slightly_better": 0.5, "negligibly_better": 0, "unsure": 0}
    assert RewardConfig.model_validate(minimal(margin=table)).margin["better"] == 1.0


def test_typo_in_a_recipe_names_the_key(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("stage: reward\nkind: safety\ndata: {sources: [{path: x.jsonl, ratoi: 0.9}]}\n")
    with pytest.raises(ConfigError, match=r"data.sources.0.ratoi: unknown key"):
        load_config(RewardConfig, p)


@pytest.mark.parametrize("name", RECIPES)
def test_bundled_recipes_validate(name):
    cfg = load_config(RewardConfig, ROOT / "recipes" / name)
    assert cfg.stage == "reward"
    assert all(Path(s.path).is_absolute() for s in cfg.data.sources)


def test_llama2_recipes_have_paper_numbers():
    helpful = load_config(RewardConfig, ROOT / "recipes/llama2-7b/reward_helpful.yaml")
    safety = load_config(RewardConfig, ROOT / "recipes/llama2-7b/reward_safety.yaml")
    for cfg in (helpful, safety):
        assert (cfg.optim.lr, cfg.optim.min_lr_ratio, cfg.optim.warmup_ratio, cfg.optim.min_warmup_steps) == \
            (1e-5, 0.1, 0.03, 5)
        assert (cfg.train.epochs, cfg.train.global_batch_pairs) == (1, 512)
        assert cfg.deepspeed.enabled and cfg.deepspeed.zero_stage == 3 and cfg.model.dtype == "bfloat16"
    assert helpful.kind == "helpfulness" and safety.kind == "safety"
    shares = {s.label: s.ratio for s in safety.data.sources}
    assert (shares["safety"] + shares["harmless_open_source"]) / sum(shares.values()) == pytest.approx(0.9)
    shares = {s.label: s.ratio for s in helpful.data.sources}
    assert shares["helpful"] / sum(shares.values()) == pytest.approx(0.5)


def test_quickstart_recipes_use_bundled_data():
    for name in RECIPES[:2]:
        cfg = load_config(RewardConfig, ROOT / "recipes" / name)
        assert cfg.model.name == "embedded"
        for s in [*cfg.data.sources, *cfg.data.eval]:
            assert Path(s.path).is_file(), s.path
