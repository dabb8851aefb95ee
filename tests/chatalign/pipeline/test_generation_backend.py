"""The pipeline's `generation:` section: the backend of every step whose stage generates (RLHF rounds, GAtt,
safety, prefs), unless a step sets its own; steps that do not generate (SFT, reward models) get nothing."""

from __future__ import annotations

from pathlib import Path

from chatalign.pipeline.config import load_pipeline

QUICKSTART = Path(__file__).resolve().parents[3] / "recipes" / "quickstart" / "pipeline.yaml"


def expanded(cfg) -> dict[str, dict]:
    return {step.name: cfg.expand(step) for step in cfg.steps}


def test_without_it_no_step_gets_generation_keys(tmp_path):
    cfg = load_pipeline(QUICKSTART, [f"output_dir={tmp_path}"])
    assert cfg.generation is None
    assert not any(k.startswith("generation") for out in expanded(cfg).values() for k in out)


def test_the_keys_given_reach_every_generating_step_and_only_those(tmp_path):
    cfg = load_pipeline(QUICKSTART, [f"output_dir={tmp_path}", "generation.memory_share=0.2"])
    by_stage = {step.name: step.stage for step in cfg.steps}
    for name, out in expanded(cfg).items():
        keys = {k: v for k, v in out.items() if k.startswith("generation")}
        if by_stage[name] in ("rlhf", "gatt", "safety", "prefs"):
            assert keys == {"generation.memory_share": 0.2}, name  # only what was given: backend stays the default
        else:
            assert keys == {}, name
    assert {"rlhf", "gatt", "safety", "prefs"} <= set(by_stage.values())


def test_a_step_that_sets_its_own_generation_keeps_it(tmp_path):
    cfg = load_pipeline(QUICKSTART, [f"output_dir={tmp_path}", "generation.memory_share=0.2"])
    gatt = next(s for s in cfg.steps if s.stage == "gatt")
    gatt.set["generation.max_model_len"] = 1024
    out = cfg.expand(gatt)
    assert out["generation.max_model_len"] == 1024 and "generation.memory_share" not in out
