"""Config sections shared by every training stage (model, optimizer, LoRA, DeepSpeed, checkpointing)."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import Field, model_validator

from chatalign.config import ModelRef, StrictModel


class ModelConfig(StrictModel):
    name: ModelRef = Field("embedded", description="HF directory, run directory, hub id, or `embedded`")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    chat_template: str | None = Field(None, description="None = the model's own; or chatml/llama2/zephyr")
    attn_implementation: str | None = None
    gradient_checkpointing: bool = False


class LoraConfig(StrictModel):
    enabled: bool = False
    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"
    quantize: Literal["none", "4bit"] = Field("none", description="4bit: QLoRA, the frozen base weights loaded in "
                                              "4-bit NF4 (bitsandbytes, double quantization); needs enabled: true")
    save: Literal["merged", "both", "adapter"] = Field(
        "merged", description="merged: model/ with the adapter merged in; both: also adapter/ in PEFT format "
        "(adapter_config.json + safetensors, and the tokenizer); adapter: adapter/ only, instead of model/ (the "
        "stage's evaluations still read the merged model, which is removed when the run finishes): an end product "
        "for other tools and the Hub; later stages need model/, so chain from a run with merged or both")

    @model_validator(mode="after")
    def _check(self):
        if self.quantize != "none" and not self.enabled:
            raise ValueError("lora.quantize: 4bit trains LoRA adapters on a 4-bit base (QLoRA): set lora.enabled: true")
        if self.save == "adapter" and not self.enabled:
            raise ValueError("lora.save: adapter keeps only a LoRA adapter: set lora.enabled: true")
        return self

    @property
    def writes_adapter(self) -> bool:
        return self.enabled and self.save in ("both", "adapter")

    @property
    def adapter_only(self) -> bool:
        return self.enabled and self.save == "adapter"


def refuse_adapter_only(lora: LoraConfig, why: str) -> None:
    """Stages whose trained model is read back by their own later steps (or the next round) need `model/`."""
    if lora.adapter_only:
        raise ValueError(f"lora.save: adapter is not offered here ({why}): use lora.save: both, which writes "
                         "adapter/ beside model/")


def check_lora_deepspeed(lora: LoraConfig, deepspeed: DeepSpeedConfig) -> None:
    """QLoRA's 4-bit weights are bitsandbytes tensors that DeepSpeed's ZeRO cannot partition or gather."""
    if lora.quantize != "none" and deepspeed.enabled:
        raise ValueError("lora.quantize: 4bit does not run under DeepSpeed (bitsandbytes 4-bit weights cannot be "
                         "partitioned): set deepspeed.enabled: false (QLoRA fits a 7B model on one GPU)")


class OptimConfig(StrictModel):
    lr: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(0.0, ge=0, le=1)
    min_warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    grad_clip: float | None = Field(1.0, gt=0)
    max_nonfinite_skips: int = Field(3, ge=0, description="steps with NaN/inf loss skipped before stopping")


class DeepSpeedConfig(StrictModel):
    enabled: bool = False
    zero_stage: Literal[0, 1, 2, 3] = 3
    offload_optimizer: Literal["none", "cpu", "nvme"] = "none"
    offload_param: Literal["none", "cpu", "nvme"] = "none"
    nvme_path: str | None = None

    @model_validator(mode="after")
    def _check(self):
        if "nvme" in (self.offload_optimizer, self.offload_param) and not self.nvme_path:
            raise ValueError("nvme offload needs deepspeed.nvme_path")
        if self.offload_param != "none" and self.zero_stage != 3:
            raise ValueError("offload_param needs zero_stage 3")
        if self.enabled and importlib.util.find_spec("deepspeed") is None:
            raise ValueError("deepspeed.enabled: DeepSpeed is not installed (pip install 'chatalign[deepspeed]')")
        return self


class DistributedConfig(StrictModel):
    """The process group of a run started with several ranks (torchrun / the deepspeed launcher)."""

    timeout_minutes: float = Field(30.0, gt=0, description="a collective waiting longer than this fails the run "
                                   "(a dead or stuck rank) instead of hanging; raise it when rank 0 works alone "
                                   "for long (evaluation, saving a large model)")


class CheckpointConfig(StrictModel):
    every_steps: int = Field(50, gt=0)
    keep_last: int = Field(2, gt=0)


def check_batch_rows(train, prefix: str = "train") -> None:
    """The global batch is whole micro-batches (one optimizer step = global / micro accumulation steps)."""
    if train.global_batch_rows % train.micro_batch_rows:
        raise ValueError(f"{prefix}.global_batch_rows ({train.global_batch_rows}) must be a multiple of "
                         f"{prefix}.micro_batch_rows ({train.micro_batch_rows})")


def check_steps(steps: list) -> None:
    """A stage's `steps` list: which parts one invocation runs, each once."""
    if not steps or len(set(steps)) != len(steps):
        raise ValueError("steps must be a non-empty list without repeats")
