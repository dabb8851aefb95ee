"""The `report_to` / `tracking` keys: checked when the recipe is read, handed by a pipeline to every step with
its name as the group, and never part of a step's key (a tracker changes where a run reports, not what it
computes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from chatalign.config import load_config
from chatalign.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
PIPELINE = ROOT / "recipes" / "quickstart" / "pipeline.yaml"


def test_unknown_tracker_names_the_key():
    from chatalign.sft.config import SFTConfig

    with pytest.raises(ConfigError, match="report_to"):
        load_config(SFTConfig, ROOT / "recipes" / "quickstart" / "sft.yaml", ["report_to=[tensorbored]"])


def test_a_tracker_whose_package_is_missing_says_what_to_install(monkeypatch):
    from chatalign.sft.config import SFTConfig

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"report_to.*wandb not installed: pip install wandb"):
        load_config(SFTConfig, ROOT / "recipes" / "quickstart" / "sft.yaml", ["report_to=[wandb]"])


def test_pipeline_steps_report_under_its_name_and_keep_their_keys():
    from chatalign.pipeline.config import load_pipeline
    from chatalign.pipeline.runner import plan_steps

    plain = plan_steps(load_pipeline(PIPELINE), missing_ok=True)
    tracked_cfg = load_pipeline(PIPELINE, ["report_to=[tensorboard]", "tracking.project=qs"])
    tracked = plan_steps(tracked_cfg, missing_ok=True)
    assert [p["key"] for p in tracked] == [p["key"] for p in plain]
    for item in tracked:
        cfg = item["config"]
        assert cfg.report_to == ["tensorboard"] and cfg.tracking.project == "qs"
        assert cfg.tracking.group == "quickstart-pipeline" and cfg.tracking.run_name == item["step"].name
