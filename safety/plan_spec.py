"""`chatalign plan` for a safety recipe: training, and distillation and evaluation (policy + safety RM)."""

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
    models = (FrozenModel("policy", shape), FrozenModel("safety RM", shape_of(cfg.safety_rm.name), "scalar"))
    d, e = cfg.distill, cfg.eval
    gens = [generation("distillation", models, d.batch_size, prompt_tokens, d.max_new_tokens),
            generation("evaluation", models, e.batch_size, prompt_tokens, e.max_new_tokens)]
    return StageSpec("safety", (finetune_phase(cfg, shape), *gens), weight_bytes(cfg.model),
                     cfg.model.gradient_checkpointing)


def plan_changes(cfg) -> list[str]:
    return finetune_changes(cfg) + smaller_batches(cfg, ["distill.batch_size", "eval.batch_size"])
