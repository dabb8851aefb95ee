"""Pipeline data keys that no step reads: a misspelt `data.KEY=` override is a one-line error naming the nearest
key (it would leave the user's data unused while every step looks up to date); a spare key of the file is a
warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from chatalign.cli.main import main
from chatalign.errors import ConfigError
from chatalign.pipeline.config import load_pipeline

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = ROOT / "recipes" / "quickstart" / "pipeline.yaml"


def test_a_misspelt_data_override_exits_2_naming_the_nearest_key(tmp_path, capsys):
    rc = main(["pipeline", "--config", str(QUICKSTART), f"output_dir={tmp_path / 'out'}",
               "data.preferences_helpfull=my.jsonl", "--dry-run", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.splitlines() == ["chatalign: error: command line: data.preferences_helpfull: no step reads this "
                                "data key (did you mean data.preferences_helpful?)"]
    assert not (tmp_path / "out").exists()


def test_an_unrelated_data_override_lists_the_keys_the_steps_read(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.zzz: no step reads this data key \(steps read: .*sft_train"):
        load_pipeline(QUICKSTART, [f"output_dir={tmp_path}", "data.zzz=x.jsonl"])


def test_a_correct_data_override_loads(tmp_path):
    cfg = load_pipeline(QUICKSTART, [f"output_dir={tmp_path}", f"data.preferences_helpful={tmp_path / 'p.jsonl'}"])
    assert cfg.data["preferences_helpful"] == str((tmp_path / "p.jsonl").resolve())


def test_a_key_of_the_file_that_no_step_reads_is_warned_about(tmp_path, caplog):
    raw = yaml.safe_load(QUICKSTART.read_text())
    raw["data"] = {k: str(QUICKSTART.parent / v) for k, v in raw["data"].items()} | {"spare_prompts": "x.jsonl"}
    for step in raw["steps"]:
        step["recipe"] = str(QUICKSTART.parent / step["recipe"])
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw))
    with caplog.at_level(logging.WARNING, logger="chatalign.pipeline.config"):
        cfg = load_pipeline(path, [f"output_dir={tmp_path}"])
    assert "spare_prompts" in cfg.data
    warned = [r.getMessage() for r in caplog.records]
    assert warned == [f"{path}: data.spare_prompts: no step reads this data key: the file is not used"]


def test_the_quickstart_reads_every_data_key_it_defines(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="chatalign.pipeline.config"):
        cfg = load_pipeline(QUICKSTART, [f"output_dir={tmp_path}"])
    assert caplog.records == [] and set(cfg.data) == cfg.data_keys_read()
