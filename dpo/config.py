"""DPO recipe schema. Defaults are the DPO paper's (Rafailov et al. 2023, sec. 6 and appendix B): beta 0.1,
batch 64 pairs, lr 1e-6 with a linear warmup over 150 steps, then constant. The paper used RMSprop; this
stage uses AdamW like the other stages (and TRL), with no weight decay.

The data section is the reward model's (`chatalign.reward.config.RewardData`): the same preference files,
formats, mix and held-out sets. Strength labels are kept on every pair (the held-out accuracy is reported
per strength, as for the RM) but plain DPO has no margin. Pairs are packed as the RM packs them: both sides
of a pair in one padding-free row of at most `row_tokens` tokens.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from chatalign.config import RunPath, StrictModel
from chatalign.evaluation.config import IndependentEvalConfig
from chatalign.reward.config import RewardConfig, RewardData, RewardTrain
from chatalign.tracking.config import Tracked
from chatalign.training.config import (
    CheckpointConfig,
    DeepSpeedConfig,
    DistributedConfig,
    LoraConfig,
    ModelConfig,
    OptimConfig,
)


class DPOLoss(StrictModel):
    beta: float = Field(0.1, gt=0, description="beta of eq. 7: how far the policy may move from the reference")
    kind: Literal["sigmoid"] = Field("sigmoid", description="the paper's loss -log sigmoid(beta * margin)")


class DPOTrain(RewardTrain):
    """The RM's packed-pair training section (trainable_layers included), with DPO's defaults."""

    global_batch_pairs: int = Field(64, gt=0)
    max_seq_len: int = Field(1024, gt=8, description="tokens per side (prompt + answer)")
    row_tokens: int = Field(4096, gt=16, description="token budget of one packed row (whole pairs)")


class DPOEval(StrictModel):
    batch_tokens: int = Field(8192, gt=16, description="tokens per packed forward of the reference and "
                                                       "held-out log-prob passes")
    max_pairs: int | None = Field(None, gt=0, description="evaluate at most this many pairs per held-out file")


class DPOConfig(Tracked):
    stage: Literal["dpo"] = "dpo"
    output_dir: RunPath = "runs/dpo"
    model: ModelConfig = ModelConfig()
    data: RewardData
    dpo: DPOLoss = DPOLoss()
    train: DPOTrain = DPOTrain()
    optim: OptimConfig = OptimConfig(lr=1e-6, weight_decay=0.0, schedule="constant", warmup_ratio=0.0,
                                     min_warmup_steps=150)
    lora: LoraConfig = LoraConfig()
    deepspeed: DeepSpeedConfig = DeepSpeedConfig()
    distributed: DistributedConfig = DistributedConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    eval: DPOEval = DPOEval()
    independent: IndependentEvalConfig = IndependentEvalConfig()
    allow_changed_inputs: bool = False

    @model_validator(mode="after")
    def _check(self):
        # the RM's checks on the same keys: a row holds a whole pair; LoRA or top layers; QLoRA not under DeepSpeed
        return RewardConfig._check(self)

    # the data section is the RM's, and so are its quarantine files
    quarantine_for = RewardConfig.quarantine_for
