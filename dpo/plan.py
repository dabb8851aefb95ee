"""The memory plan of a DPO recipe (`chatalign plan`): the reference pass, then the policy's training."""

from __future__ import annotations


def plan_spec(cfg, shape_of):
    """Two phases: the starting model whole on each rank for the no-grad reference pass (before DeepSpeed
    partitions it), then the policy trained as SFT trains it, on packed rows of `train.row_tokens` tokens whose
    answer positions (at most the whole row) go through the LM head. No reference model stays in memory."""
    from chatalign.plan.memory import LINEAR_MODULES, Zero
    from chatalign.plan.phases import FrozenModel, PhaseSpec, StageSpec, TrainedModel

    shape = shape_of(cfg.model.name)
    ds, lora, t = cfg.deepspeed, cfg.lora, cfg.train
    lora_kw = {}
    if lora.enabled:
        mods = LINEAR_MODULES if lora.target_modules == "all-linear" else tuple(
            [lora.target_modules] if isinstance(lora.target_modules, str) else lora.target_modules)
        lora_kw = {"lora_r": lora.r, "lora_modules": mods}
    policy = TrainedModel("policy", shape, "lm", micro=t.micro_batch_rows, tokens_per_item=t.row_tokens,
                          lm_positions_per_item=t.row_tokens, trainable_layers=t.trainable_layers, **lora_kw)
    zero = Zero(enabled=ds.enabled, stage=ds.zero_stage, offload_optimizer=ds.offload_optimizer != "none",
                offload_param=ds.offload_param != "none")
    phases = (PhaseSpec("reference log-probs", True, frozen=(FrozenModel("starting model", shape),)),
              PhaseSpec("train", True, trained=(policy,), zero=zero))
    wb = 4 if cfg.model.dtype == "float32" else 2  # "auto" is bf16 on a GPU
    return StageSpec("dpo", phases, wb, cfg.model.gradient_checkpointing, output=shape)


def plan_changes(cfg) -> list[str]:
    """Single recipe changes worth trying when the plan does not fit."""
    out = []
    if not cfg.model.gradient_checkpointing:
        out.append("model.gradient_checkpointing=true")
    ds = cfg.deepspeed
    if not ds.enabled or ds.zero_stage < 3:
        out.append("deepspeed.enabled=true deepspeed.zero_stage=3")
    if ds.offload_optimizer == "none":
        out.append("deepspeed.enabled=true deepspeed.offload_optimizer=cpu")
    if cfg.train.micro_batch_rows > 1:
        out.append("train.micro_batch_rows=1")
    if cfg.train.row_tokens > 2 * cfg.train.max_seq_len:
        out.append(f"train.row_tokens={2 * cfg.train.max_seq_len}")
    return out
