"""The GAtt recipes validate; the paper recipe has the paper's setup; bad configs are refused by key."""

from pathlib import Path

import pytest

from chatalign.config import load_config
from chatalign.errors import ConfigError
from chatalign.gatt.config import GattConfig
from chatalign.gatt.run import sft_config_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["quickstart", "llama2-7b"])
def test_recipes_validate_and_point_at_bundled_files(name):
    cfg = load_config(GattConfig, ROOT / "recipes" / name / "gatt.yaml")
    assert cfg.stage == "gatt"
    assert Path(cfg.instructions.constraints).is_file()
    assert all(Path(p).is_file() for p in cfg.synthesis.dialogues)
    assert Path(cfg.eval.data).is_file()


def test_paper_recipe_setup():
    cfg = load_config(GattConfig, ROOT / "recipes/llama2-7b/gatt.yaml")
    assert cfg.instructions.kinds == ["hobby", "language", "public_figure"]
    assert cfg.instructions.terse_fraction == 0.5 and cfg.instructions.max_kinds == 2
    assert cfg.eval.turns == [2, 4, 6, 20] and cfg.eval.n_dialogues == 20
    assert cfg.eval.placements == ["system", "first_user"] == cfg.independent.gatt.placements
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.schedule) == (2e-5, 0.1, "cosine")
    assert cfg.deepspeed.enabled and cfg.deepspeed.zero_stage == 3


def test_quickstart_recipe_is_small():
    cfg = load_config(GattConfig, ROOT / "recipes/quickstart/gatt.yaml")
    assert cfg.model.name == "embedded" and cfg.model.dtype == "float32"
    assert cfg.synthesis.max_new_tokens <= 48 and cfg.eval.max_new_tokens <= 48
    assert cfg.eval.turns[:3] == [2, 4, 6]
    assert cfg.independent.gatt_on() and cfg.independent.gatt.max_turn == 20
    assert set(cfg.eval.placements) == set(cfg.independent.gatt.placements) == {"system", "first_user"}
    assert 0 < cfg.synthesis.system_share < 1 and cfg.synthesis.repair


def test_the_sft_run_trains_on_the_last_answer_only(tmp_path):
    cfg = load_config(GattConfig, ROOT / "recipes/quickstart/gatt.yaml", [f"output_dir={tmp_path / 'g'}"])
    sft = sft_config_for(cfg, tmp_path / "g")
    assert sft.train.train_on == "last_assistant" and sft.train.truncation == "truncate_right"
    assert sft.output_dir == str(tmp_path / "g" / "train")
    assert sft.data.train == str(tmp_path / "g" / "data" / "gatt_train.jsonl")
    assert sft.optim == cfg.optim and sft.model == cfg.model


@pytest.mark.parametrize("override,message", [
    ("synthesis.placment=system", "synthesis.placment: unknown key"),
    ("instructions.min_kinds=3", "min_kinds <= max_kinds"),
    ("instructions.kinds=[hobby,hobby]", "without repeats"),
    ("instructions.kinds=[cooking]", "instructions.kinds.0"),
    ("synthesis.system_share=1.5", "synthesis.system_share"),
    ("independent.gatt.short_turns=30", "short_turns"),
    ("steps=[train,train]", "without repeats"),
    ("steps=[fly]", "steps.0"),
    ("eval.turns=[0,2]", "1-based"),
    ("eval.placements=[everywhere]", "eval.placements"),
])
def test_bad_configs_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(GattConfig, ROOT / "recipes/quickstart/gatt.yaml", [override])
