"""`chatalign plan` for a GAtt recipe: training, and the generation of synthesis and evaluation."""

from __future__ import annotations

from chatalign.plan.phases import FrozenModel, StageSpec
from chatalign.plan.spec_parts import (
    finetune_changes,
    finetune_phase,
    generation,
    smaller_batches,
    weight_bytes,
)


def plan_spec(cfg, shape_of, prompt_tokens: int) -> StageSpec:
    shape = shape_of(cfg.model.name)
    pol = (FrozenModel("policy", shape),)
    s, e = cfg.synthesis, cfg.eval
    gens = [generation("synthesis", pol, s.batch_size, prompt_tokens, s.max_new_tokens),
            generation("evaluation", pol, e.batch_size, prompt_tokens, e.max_new_tokens)]
    return StageSpec("gatt", (finetune_phase(cfg, shape), *gens), weight_bytes(cfg.model),
                     cfg.model.gradient_checkpointing)


def plan_changes(cfg) -> list[str]:
    return finetune_changes(cfg) + smaller_batches(cfg, ["synthesis.batch_size", "eval.batch_size"])
