"""`chatalign plan` for an SFT recipe: the training phase and the held-out evaluation's generation."""

from __future__ import annotations

from chatalign.plan import spec_parts as parts
from chatalign.plan.phases import FrozenModel, StageSpec


def plan_spec(cfg, shape_of, prompt_tokens: int) -> StageSpec:
    shape = shape_of(cfg.model.name)
    e = cfg.eval
    gens = [parts.generation("eval generation", (FrozenModel("policy", shape),), e.batch_size, prompt_tokens,
                             e.max_new_tokens)] if cfg.data.eval else []
    return parts.finetune_spec("sft", cfg, shape, gens)


def plan_changes(cfg) -> list[str]:
    return parts.finetune_changes(cfg) + parts.smaller_batches(cfg, ["eval.batch_size"])
