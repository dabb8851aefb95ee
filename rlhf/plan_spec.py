"""`chatalign plan` for an RLHF round: rejection sampling (sampling, fine-tune), PPO (generation, update)
and the round's held-out evaluation, as the recipe's `mode` says."""

from __future__ import annotations

from chatalign.plan.phases import FrozenModel, Generation, PhaseSpec, StageSpec, TrainedModel
from chatalign.plan.spec_parts import (
    deepspeed_changes,
    engine_share,
    generation,
    lora_of,
    policy,
    smaller_batches,
    weight_bytes,
    zero_of,
)


def plan_spec(cfg, shape_of, prompt_tokens: int) -> StageSpec:
    P = prompt_tokens
    start = shape_of(cfg.start)
    rms = (FrozenModel("helpful RM", shape_of(cfg.reward.helpful), "scalar"),
           FrozenModel("safety RM", shape_of(cfg.reward.safety), "scalar"))
    phases = []
    if "rs" in cfg.mode:
        rs = cfg.rs
        phases.append(generation("RS sampling", (FrozenModel("policy", start), *rms), rs.batch_size, P,
                                 rs.max_new_tokens, cfg.generation))
        phases.append(PhaseSpec("RS fine-tune", True, trained=(policy("policy", start, rs.train, rs.lora),),
                                zero=zero_of(rs.deepspeed)))
    if "ppo" in cfg.mode:
        phases += ppo_phases(cfg, shape_of, start, rms, P)
    if cfg.data.heldout:  # rank 0 alone: the round's model (then the earlier ones) answers, whole RMs score
        phases.append(generation("round evaluation", (FrozenModel("policy", start), *rms), cfg.eval.batch_size, P,
                                 cfg.eval_max_new_tokens, cfg.generation))
    return StageSpec("rlhf", tuple(phases), weight_bytes(cfg.model), cfg.model.gradient_checkpointing)


def ppo_phases(cfg, shape_of, start, rms: tuple[FrozenModel, ...], P: int) -> list[PhaseSpec]:
    """PPO's generation and update: policy and value trained under DeepSpeed, the RMs (and the reference
    unless LoRA) frozen, replicated or ZeRO-3 partitioned."""
    ppo = cfg.ppo
    v = ppo.value.init
    value_shape = shape_of(cfg.reward.helpful if v == "helpful" else cfg.reward.safety if v == "safety" else v)
    micro, tokens = ppo.micro_batch or ppo.minibatch, P + ppo.max_new_tokens
    pol = TrainedModel("policy", start, "lm", micro=micro, tokens_per_item=tokens,
                       lm_positions_per_item=ppo.max_new_tokens, logit_saved_bytes=12, logit_chunked=False,
                       logit_transient_extra=0, **lora_of(ppo.lora))
    val = TrainedModel("value", value_shape, "scalar", micro=micro, tokens_per_item=tokens,
                       trainable_layers=ppo.value.trainable_layers)
    frozen = rms if ppo.lora.enabled else (FrozenModel("reference", start), *rms)
    common = dict(distributed=True, trained=(pol, val), frozen=frozen, zero=zero_of(ppo.deepspeed),
                  frozen_sharded=ppo.frozen_models == "zero3")
    return [PhaseSpec("PPO generation", train_step=False,
                      generation=Generation(ppo.gen_batch_size, P, ppo.max_new_tokens,
                                            engine_share(cfg.generation)), **common),
            PhaseSpec("PPO update", **common)]


def plan_changes(cfg) -> list[str]:
    out = [] if cfg.model.gradient_checkpointing else ["model.gradient_checkpointing=true"]
    gen_keys = []
    if "rs" in cfg.mode:
        out += deepspeed_changes("rs.deepspeed.", cfg.rs.deepspeed)
        if cfg.rs.train.micro_batch_rows > 1:
            out.append("rs.train.micro_batch_rows=1")
        gen_keys.append("rs.batch_size")
    if "ppo" in cfg.mode:
        ppo = cfg.ppo
        out += deepspeed_changes("ppo.deepspeed.", ppo.deepspeed)
        if ppo.frozen_models == "replicated":
            out.append("ppo.frozen_models=zero3")
        if not ppo.lora.enabled:
            out.append("ppo.lora.enabled=true")
        if not ppo.value.trainable_layers:
            out.append("ppo.value.trainable_layers=4")
        if (ppo.micro_batch or ppo.minibatch) > 1:
            out.append("ppo.micro_batch=1")
        gen_keys.append("ppo.gen_batch_size")
    if cfg.data.heldout:
        gen_keys.append("eval.batch_size")
    return out + smaller_batches(cfg, gen_keys)
