"""DPO recipe schema. Defaults are the DPO paper's (Rafailov et al. 2023, sec. 6 and appendix B): beta 0.1,
batch 64 pairs, lr 1e-6 with a linear warmup over 150 steps, then constant. The paper used RMSprop; this
stage uses AdamW like the other stages (and TRL), with no weight decay.

The data section is the reward model's (`chatalign.reward.config.RewardData`): the same preference files,
formats, mix and held-out sets. Strength labels are kept on every pair (the held-out accuracy is reported
per strength, as for the RM) but plain DPO has no margin. Pairs are packed as the RM packs them: both sides
of a pair in one padding-free row of at most `row_tokens` tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from chatalign.config import StrictModel, resolve_path
from chatalign.reward.config import PrefSource, RewardData
from chatalign.training.config import CheckpointConfig, DeepSpeedConfig, LoraConfig, ModelConfig, OptimConfig


class DPOLoss(StrictModel):
    beta: float = Field(0.1, gt=0, description="beta of eq. 7: how far the policy may move from the reference")
    kind: Literal["sigmoid"] = Field("sigmoid", description="the paper's loss -log sigmoid(beta * margin)")


class DPOTrain(StrictModel):
    epochs: int = Field(1, gt=0)
    global_batch_pairs: int = Field(64, gt=0)
    max_seq_len: int = Field(1024, gt=8, description="tokens per side (prompt + answer)")
    row_tokens: int = Field(4096, gt=16, description="token budget of one packed row (whole pairs)")
    micro_batch_rows: int = Field(1, gt=0)
    max_steps: int | None = Field(None, gt=0)
    seed: int = 0
    trainable_layers: int | None = Field(
        None, gt=0, description="train only the top N decoder layers and the final norm, freezing the rest "
        "(embeddings and a tied LM head included): for CPU-sized runs; None = all layers (the paper)")


class DPOEval(StrictModel):
    batch_tokens: int = Field(8192, gt=16, description="tokens per packed forward of the reference and "
                                                       "held-out log-prob passes")
    max_pairs: int | None = Field(None, gt=0, description="evaluate at most this many pairs per held-out file")


class DPOConfig(StrictModel):
    stage: Literal["dpo"] = "dpo"
    output_dir: str = "runs/dpo"
    model: ModelConfig = ModelConfig()
    data: RewardData
    dpo: DPOLoss = DPOLoss()
    train: DPOTrain = DPOTrain()
    optim: OptimConfig = OptimConfig(lr=1e-6, weight_decay=0.0, schedule="constant", warmup_ratio=0.0,
                                     min_warmup_steps=150)
    lora: LoraConfig = LoraConfig()
    deepspeed: DeepSpeedConfig = DeepSpeedConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    eval: DPOEval = DPOEval()
    allow_changed_inputs: bool = False

    @model_validator(mode="after")
    def _check(self):
        if self.train.row_tokens < 2 * self.train.max_seq_len:
            raise ValueError(f"train.row_tokens ({self.train.row_tokens}) must hold a whole pair: at least "
                             f"2 * train.max_seq_len ({2 * self.train.max_seq_len})")
        if self.lora.enabled and self.train.trainable_layers:
            raise ValueError("train.trainable_layers and lora.enabled are two ways to train part of the model: "
                             "choose one")
        if self.lora.enabled and self.deepspeed.enabled and self.deepspeed.zero_stage == 3:
            raise ValueError("lora with deepspeed.zero_stage 3 is not supported (the LoRA merge needs whole "
                             "weights): use zero_stage 2, or a full fine-tune")
        return self

    def resolve_paths(self, base: Path) -> None:
        """Data paths in a recipe are relative to the recipe file (output_dir and run directories named as
        model.name stay relative to the cwd, as every stage's)."""
        for src in [*self.data.sources, *self.data.eval]:
            object.__setattr__(src, "path", str(resolve_path(src.path, base)))
            if src.quarantine:
                object.__setattr__(src, "quarantine", str(resolve_path(src.quarantine, base)))
        name = self.model.name
        if name and name.startswith(("./", "../")):
            object.__setattr__(self.model, "name", str(resolve_path(name, base)))

    def quarantine_for(self, src: PrefSource, group: str) -> str | None:
        """Where a source's bad rows go under data.on_error=skip (read by chatalign.reward.run.load_source)."""
        if self.data.on_error != "skip":
            return None
        return src.quarantine or str(Path(self.output_dir) / "quarantine" / f"{group}-{src.label}.jsonl")
