"""`chatalign plan` for an SFT recipe: the training phase and the held-out evaluation's generation."""

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
    gens = [generation("eval generation", (FrozenModel("policy", shape),), cfg.eval.batch_size, prompt_tokens,
                       cfg.eval.max_new_tokens)] if cfg.data.eval else []
    return StageSpec("sft", (finetune_phase(cfg, shape), *gens), weight_bytes(cfg.model),
                     cfg.model.gradient_checkpointing)


def plan_changes(cfg) -> list[str]:
    return finetune_changes(cfg) + smaller_batches(cfg, ["eval.batch_size"])
