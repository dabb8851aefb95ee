"""`chatalign plan` for a GAtt recipe: training, and the generation of synthesis and evaluation."""

from __future__ import annotations

from chatalign.plan import spec_parts as parts
from chatalign.plan.phases import FrozenModel, StageSpec


def plan_spec(cfg, shape_of, prompt_tokens: int) -> StageSpec:
    shape = shape_of(cfg.model.name)
    policy = (FrozenModel("policy", shape),)
    return parts.derived_spec("gatt", cfg, shape, policy, ("synthesis", "synthesis"), prompt_tokens)


def plan_changes(cfg) -> list[str]:
    return parts.derived_changes(cfg, "synthesis")
