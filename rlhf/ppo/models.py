"""The networks of PPO: policy, reference, value model, and their optimizers.

With a LoRA policy the reference is the same network with its adapter disabled (peft's `disable_adapter`),
so a single-GPU or CPU user holds one copy of the policy weights; otherwise a frozen copy is loaded. The value
model is a reward model (decoder + scalar head) whose head is read at every answer position. Dropout is off
throughout (probabilities set to 0): PPO's first ratio must be exactly pi/pi_old = 1. The update phase runs in
train mode only because gradient checkpointing acts in train mode.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from chatalign.training.config import LoraConfig

log = logging.getLogger(__name__)


@dataclass
class PPOModels:
    policy: nn.Module  # a peft model when LoRA is on
    tokenizer: Any
    value: nn.Module  # a *ForSequenceClassification with num_labels=1
    reference: nn.Module | None = None  # None: the adapter-disabled policy is the reference
    lora: LoraConfig | None = None  # the policy's adapter settings (None: a full-weight policy)
    base_path: str | None = None  # where the policy was loaded from: QLoRA's export merges into it, reloaded
    dtype: str = "auto"  # the dtype it was loaded in (QLoRA: the compute dtype)

    @property
    def quantized(self) -> bool:
        """QLoRA: the policy's frozen base weights are 4-bit (bitsandbytes)."""
        return bool(self.lora and self.lora.enabled and self.lora.quantize != "none")

    @property
    def uses_lora(self) -> bool:
        return self.reference is None

    def reference_model(self) -> nn.Module:
        return self.policy if self.reference is None else self.reference

    def reference_context(self):
        """Context in which `reference_model()` computes the reference policy."""
        if self.reference is None:
            return self.policy.disable_adapter()
        return contextlib.nullcontext()


def apply_policy_lora(model: nn.Module, cfg: LoraConfig, seed: int) -> nn.Module:
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    lcfg = PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                          target_modules=cfg.target_modules, task_type="CAUSAL_LM")
    # LoRA's A matrices are drawn from the global RNG (peft takes no generator): seeded here, and the caller's
    # RNG state restored afterwards
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if torch.cuda.is_available() else []):
        torch.manual_seed(seed)
        return get_peft_model(model, lcfg)


def enable_checkpointing(model: nn.Module) -> None:
    """Activation checkpointing, non-reentrant: it needs no input that requires grad, which a LoRA policy
    (frozen embeddings) or a value model trained in its top layers only would not have."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def disable_dropout(model: nn.Module) -> nn.Module:
    """Dropout probabilities to 0 everywhere (config and modules), so that train mode, which gradient
    checkpointing needs, computes exactly what eval mode does."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
        cfg = getattr(m, "config", None)
        for key in ("attention_dropout", "hidden_dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop"):
            if cfg is not None and isinstance(getattr(cfg, key, None), float):
                setattr(cfg, key, 0.0)
    return model


def freeze(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def assemble(policy: nn.Module, tokenizer, value: nn.Module, lora: LoraConfig | None, seed: int = 0,
             reference: nn.Module | None = None, value_trainable_layers: int | None = None) -> PPOModels:
    """PPOModels from loaded networks (tests hand in tiny in-memory models here).

    With `lora.enabled` the policy gets an adapter and `reference` must be None; otherwise `reference` is
    required (a frozen copy of the starting policy)."""
    use_lora = bool(lora and lora.enabled)
    if use_lora:
        if reference is not None:
            raise ValueError("a LoRA policy uses its adapter-disabled base as the reference: pass no reference")
        for p in policy.parameters():
            p.requires_grad_(False)
        policy = apply_policy_lora(policy, lora, seed)
    elif reference is None:
        raise ValueError("a full-weight policy needs a frozen reference copy")
    else:
        freeze(reference)
    if value_trainable_layers:
        from chatalign.reward.model import freeze_lower_layers

        freeze_lower_layers(value, value_trainable_layers)
    if use_lora and lora.dropout:
        log.warning("ppo.lora.dropout=%s ignored: dropout is off in PPO (the first ratio must be 1)", lora.dropout)
    for m in (policy, value):
        disable_dropout(m).eval()
    for m in (policy, value):
        if hasattr(m, "config"):
            m.config.use_cache = False
    return PPOModels(policy=policy, tokenizer=tokenizer, value=value, reference=reference,
                     lora=lora if use_lora else None)


def load_models(policy_path: str, value_path: str, *, dtype: str, lora: LoraConfig, seed: int,
                value_trainable_layers: int | None, trust_remote_code: bool = False,
                attn_implementation: str | None = None, chat_template: str | None = None,
                gradient_checkpointing: bool = False) -> PPOModels:
    from chatalign.models import load_causal_lm, load_tokenizer
    from chatalign.reward.model import load_reward_model
    from chatalign.text.templates import apply_named_template
    from chatalign.training.lora import quantization_kwargs

    tok = load_tokenizer(policy_path, trust_remote_code)
    apply_named_template(tok, chat_template)
    quantization = quantization_kwargs(lora, dtype)  # QLoRA: the policy's base in 4-bit, placed by device_map
    policy = load_causal_lm(policy_path, dtype, trust_remote_code, attn_implementation, **quantization)
    if quantization:
        from chatalign.training.lora import prepare_4bit_for_training

        policy = prepare_4bit_for_training(policy)  # checkpointing (if asked) is enabled below, non-reentrant
    if gradient_checkpointing:
        enable_checkpointing(policy)
    reference = None
    if not lora.enabled:
        reference = load_causal_lm(policy_path, dtype, trust_remote_code, attn_implementation)
    value = load_reward_model(value_path, dtype, trust_remote_code, attn_implementation)
    check_same_vocabulary(tok, value, value_path)
    if gradient_checkpointing:
        enable_checkpointing(value)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for m in (None if quantization else policy, reference, value):
        if m is not None:
            m.to(device)
    models = assemble(policy, tok, value, lora, seed, reference, value_trainable_layers)
    models.base_path, models.dtype = str(policy_path), dtype
    return models


def load_chat_policy(path: str, model_cfg):
    """(causal LM in eval mode on the default device, its tokenizer with the recipe's chat template)."""
    from chatalign.models import load_causal_lm, load_tokenizer
    from chatalign.text.templates import apply_named_template

    tok = load_tokenizer(path, model_cfg.trust_remote_code)
    apply_named_template(tok, model_cfg.chat_template)
    model = load_causal_lm(path, model_cfg.dtype, model_cfg.trust_remote_code, model_cfg.attn_implementation)
    model.to(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    return model.eval(), tok


def check_same_vocabulary(tokenizer, value: nn.Module, value_path: str) -> None:
    """The value model reads the policy's token ids, so it must embed the policy's vocabulary."""
    from chatalign.errors import ConfigError

    rows = value.get_input_embeddings().weight.shape[0]
    if rows < len(tokenizer):
        raise ConfigError(f"value model {value_path} embeds {rows} tokens but the policy's tokenizer has "
                          f"{len(tokenizer)}: the value model must start from a reward model trained on the "
                          "policy's tokenizer (ppo.value.init)")
