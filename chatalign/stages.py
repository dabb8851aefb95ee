"""Which config schema belongs to which `stage:` value (strings, so the core never imports a stage)."""

from __future__ import annotations

import importlib

from chatalign.errors import ConfigError

STAGE_CONFIGS = {
    "sft": "chatalign.sft.config:SFTConfig",
    "reward": "chatalign.reward.config:RewardConfig",
    "rlhf": "chatalign.rlhf.config:RLHFRoundConfig",
    "gatt": "chatalign.gatt.config:GattConfig",
    "safety": "chatalign.safety.config:SafetyConfig",
    "pipeline": "chatalign.pipeline.config:PipelineConfig",
}


def config_class(stage: str):
    try:
        target = STAGE_CONFIGS[stage]
    except KeyError:
        raise ConfigError(f"stage: unknown stage {stage!r} (one of {', '.join(STAGE_CONFIGS)})") from None
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)
