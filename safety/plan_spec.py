"""`chatalign plan` for a safety recipe: training, and distillation and evaluation (policy + safety RM)."""

from __future__ import annotations

from chatalign.plan import spec_parts as parts
from chatalign.plan.phases import FrozenModel, StageSpec


def plan_spec(cfg, shape_of, prompt_tokens: int) -> StageSpec:
    shape = shape_of(cfg.model.name)
    models = (FrozenModel("policy", shape), FrozenModel("safety RM", shape_of(cfg.safety_rm.name), "scalar"))
    return parts.derived_spec("safety", cfg, shape, models, ("distillation", "distill"), prompt_tokens)


def plan_changes(cfg) -> list[str]:
    return parts.derived_changes(cfg, "distill")
