"""`chatalign plan` for a safety recipe: training, and distillation and evaluation (policy + safety RM)."""

from __future__ import annotations

from chatalign.plan import spec_parts as parts
from chatalign.plan.phases import FrozenModel, StageSpec


def plan_spec(cfg, shape_of, prompt_tokens: int) -> StageSpec:
    shape = shape_of(cfg.model.name)
    models = (FrozenModel("policy", shape), FrozenModel("safety RM", shape_of(cfg.safety_rm.name), "scalar"))
    d, e = cfg.distill, cfg.eval
    return parts.finetune_spec("safety", cfg, shape, [
        parts.generation("distillation", models, d.batch_size, prompt_tokens, d.max_new_tokens),
        parts.generation("evaluation", models, e.batch_size, prompt_tokens, e.max_new_tokens)])


def plan_changes(cfg) -> list[str]:
    return parts.finetune_changes(cfg) + parts.smaller_batches(cfg, ["distill.batch_size", "eval.batch_size"])
