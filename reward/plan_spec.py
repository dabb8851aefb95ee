"""`chatalign plan` for a reward-model recipe: one training phase of a scalar-head model on packed pairs."""

from __future__ import annotations

from chatalign.plan.phases import PhaseSpec, StageSpec, TrainedModel
from chatalign.plan.spec_parts import finetune_changes, lora_of, weight_bytes, zero_of


def plan_spec(cfg, shape_of, prompt_tokens: int) -> StageSpec:
    t = cfg.train
    rm = TrainedModel("reward model", shape_of(cfg.model.name), "scalar", micro=t.micro_batch_rows,
                      tokens_per_item=t.row_tokens, trainable_layers=t.trainable_layers, **lora_of(cfg.lora))
    return StageSpec("reward", (PhaseSpec("train", True, trained=(rm,), zero=zero_of(cfg.deepspeed)),),
                     weight_bytes(cfg.model), cfg.model.gradient_checkpointing)


def plan_changes(cfg) -> list[str]:
    return finetune_changes(cfg)
