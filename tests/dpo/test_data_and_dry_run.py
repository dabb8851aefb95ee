"""Bad preference rows fail before any model is loaded with file:line: field (no run directory is left
behind), or go to a quarantine file when the recipe allows skipping; `--dry-run` checks config and data and
trains nothing; the recipes validate, the 7B one with the paper's numbers."""

import argparse
from pathlib import Path

import pytest
import yaml

from chatalign.config import load_config
from chatalign.data_schemas import BadDataError
from chatalign.dpo.config import DPOConfig
from chatalign.dpo.stage import STAGE

from .conftest import TOPICS, toy_config, toy_recipe, toy_rows, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
BAD = [
    {"prompt": [{"role": "user", "content": "q"}], "chosen": "a"},  # no rejected
    {"prompt": [{"role": "user", "content": "q"}], "chosen": "same", "rejected": "same"},
    {"prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "b", "strength": "much_better"},
]


@pytest.fixture()
def bad_file(tmp_path):
    rows = toy_rows(TOPICS[:6])
    return write_jsonl(tmp_path / "bad.jsonl", rows[:3] + BAD + rows[3:])  # bad rows on lines 4-6


def test_bad_rows_name_file_line_and_field_and_leave_no_run(tmp_path, bad_file, toy_files, tiny_model_dir):
    _, held = toy_files
    with pytest.raises(BadDataError) as err:
        STAGE.run(toy_config(tmp_path / "run", bad_file, held, tiny_model_dir), progress=False)
    text = str(err.value)
    assert f"{bad_file}:4: rejected" in text and f"{bad_file}:5: rejected" in text and "identical" in text
    assert f"{bad_file}:6: strength" in text
    assert not (tmp_path / "run").exists()


def test_bad_held_out_rows_fail_before_training(tmp_path, bad_file, toy_files, tiny_model_dir):
    train, _ = toy_files
    with pytest.raises(BadDataError, match=f"{bad_file}:4: rejected"):
        STAGE.dry_run(toy_config(tmp_path / "run", train, bad_file, tiny_model_dir))


def test_skip_puts_bad_rows_in_quarantine(tmp_path, bad_file, toy_files, tiny_model_dir):
    _, held = toy_files
    cfg = toy_config(tmp_path / "run", bad_file, held, tiny_model_dir)
    cfg.data.on_error = "skip"
    stats = STAGE.dry_run(cfg)
    assert stats["sources"]["toy"]["rows_skipped"] == 3 and stats["pairs"] == 6
    assert len((tmp_path / "run" / "quarantine" / "train-toy.jsonl").read_text().splitlines()) == 3


def test_dry_run_checks_config_and_data_without_training(tmp_path, toy_files, tiny_model_dir, capsys):
    train, held = toy_files
    recipe = tmp_path / "dpo.yaml"
    recipe.write_text(yaml.safe_dump(toy_recipe(tmp_path / "run", train, held, tiny_model_dir)))
    args = argparse.Namespace(config=str(recipe), overrides=["train.global_batch_pairs=8"], dry_run=True,
                              resume=False, no_progress=True)
    assert STAGE.command(args) == 0
    out = capsys.readouterr().out
    assert "dry run: config and data are valid" in out and '"steps": 6' in out  # 24 pairs / 8 x 2 epochs
    assert '"eval_pairs": {\n    "toy": 16' in out
    assert not (tmp_path / "run").exists()


def test_config_errors_name_the_key(tmp_path, toy_files, tiny_model_dir):
    from chatalign.errors import ConfigError

    train, held = toy_files
    recipe = tmp_path / "dpo.yaml"
    recipe.write_text(yaml.safe_dump(toy_recipe(tmp_path / "run", train, held, tiny_model_dir)))
    with pytest.raises(ConfigError, match="dpo.beta: Input should be greater than 0"):
        load_config(DPOConfig, recipe, ["dpo.beta=0"])
    with pytest.raises(ConfigError, match="train.row_tokens .* must hold a whole pair"):
        load_config(DPOConfig, recipe, ["train.row_tokens=100"])
    with pytest.raises(ConfigError, match="dpo.margin: unknown key"):
        load_config(DPOConfig, recipe, ["dpo.margin=1"])


@pytest.mark.parametrize("name", ["quickstart/dpo.yaml", "llama2-7b/dpo.yaml"])
def test_recipes_validate(name):
    cfg = load_config(DPOConfig, ROOT / "recipes" / name)
    assert cfg.stage == "dpo" and all(Path(s.path).is_absolute() for s in [*cfg.data.sources, *cfg.data.eval])


def test_llama2_recipe_has_the_papers_numbers():
    cfg = load_config(DPOConfig, ROOT / "recipes/llama2-7b/dpo.yaml")
    assert (cfg.dpo.beta, cfg.optim.lr, cfg.train.global_batch_pairs) == (0.1, 5e-7, 64)
    assert cfg.model.dtype == "bfloat16" and cfg.deepspeed.enabled and cfg.deepspeed.zero_stage == 3
