"""`chatalign plan` for a GAtt recipe: training, and the generation of synthesis and evaluation."""

from __future__ import annotations

from chatalign.plan import spec_parts as parts
from chatalign.plan.phases import FrozenModel, StageSpec


def plan_spec(cfg, shape_of, prompt_tokens: int) -> StageSpec:
    shape = shape_of(cfg.model.name)
    pol = (FrozenModel("policy", shape),)
    s, e = cfg.synthesis, cfg.eval
    return parts.finetune_spec("gatt", cfg, shape, [
        parts.generation("synthesis", pol, s.batch_size, prompt_tokens, s.max_new_tokens),
        parts.generation("evaluation", pol, e.batch_size, prompt_tokens, e.max_new_tokens)])


def plan_changes(cfg) -> list[str]:
    return parts.finetune_changes(cfg) + parts.smaller_batches(cfg, ["synthesis.batch_size", "eval.batch_size"])
