"""Reward-model recipe schema. Defaults are the Llama 2 paper's (sec. 3.2.2): 1 epoch, max lr 1e-5, cosine
decay to 10% of it, warmup 3% of steps (at least 5), 512 pairs per batch. The margin table defaults to
`small` of Table 27 (the paper reports both tables; which one is a recipe's choice).
Weight decay 0.1 and AdamW betas (0.9, 0.95) are the paper's pre-training settings (sec. 2.2).

A batch counts pairs (`global_batch_pairs`); its pairs are packed, both sides of a pair in the same
padding-free row of at most `row_tokens` tokens, `micro_batch_rows` rows per forward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from chatalign.config import RecipePath, RunPath, StrictModel
from chatalign.evaluation.config import IndependentEvalConfig
from chatalign.tracking.config import Tracked
from chatalign.training.config import (
    CheckpointConfig,
    DeepSpeedConfig,
    DistributedConfig,
    LoraConfig,
    ModelConfig,
    OptimConfig,
    check_lora_deepspeed,
    refuse_adapter_only,
)

StrengthLabel = Literal["significantly_better", "better", "slightly_better", "negligibly_better", "unsure"]


class PrefSource(StrictModel):
    path: RecipePath = Field(..., description="preference file: JSONL/JSON/Parquet/datasets folder, any supported format")
    name: str | None = Field(None, description="label in reports and the mix (default: the file name's stem)")
    ratio: float = Field(1.0, gt=0, description="share of the mix (weights, normalised over the sources)")
    format: str = "auto"
    quarantine: RecipePath | None = Field(None, description="with data.on_error=skip: where this file's bad rows go")
    max_rows: int | None = Field(None, gt=0, description="read at most this many valid pairs (first ones)")
    max_repeats: float | None = Field(None, gt=0, description="with data.total: draw at most this many times "
                                      "the file's pairs (1 = each at most once); its unfilled share goes to the "
                                      "other sources. None: as often as its ratio asks")

    @property
    def label(self) -> str:
        return self.name or Path(self.path).name.split(".")[0]


class RewardData(StrictModel):
    sources: list[PrefSource] = Field(..., min_length=1)
    total: int | None = Field(None, gt=0, description="pairs in the mix; None = largest with no source repeated")
    eval: list[PrefSource] = Field(default_factory=list, description="held-out preference files")
    on_error: Literal["raise", "skip"] = "raise"
    exclude_unsafe_chosen: bool = Field(True, description="drop pairs whose chosen answer is unsafe and the "
                                                          "rejected one safe (Llama 2 sec. 3.2.2)")

    @model_validator(mode="after")
    def _unique_names(self):
        for what, group in (("data.sources", self.sources), ("data.eval", self.eval)):
            labels = [s.label for s in group]
            dup = sorted({x for x in labels if labels.count(x) > 1})
            if dup:
                raise ValueError(f"{what}: names {dup} appear twice; give each source a distinct `name`")
        return self


class RewardTrain(StrictModel):
    epochs: int = Field(1, gt=0)
    global_batch_pairs: int = Field(512, gt=0)
    max_seq_len: int = Field(4096, gt=8, description="tokens per side (prompt + answer)")
    row_tokens: int = Field(8192, gt=16, description="token budget of one packed row (whole pairs)")
    micro_batch_rows: int = Field(1, gt=0)
    max_steps: int | None = Field(None, gt=0)
    seed: int = 0
    trainable_layers: int | None = Field(
        None, gt=0, description="train only the top N decoder layers (+ final norm and head), freezing the "
        "rest: no backward below them, for CPU-sized runs; None = all layers (the paper)")


class RewardEval(StrictModel):
    batch_tokens: int = Field(8192, gt=16, description="tokens per packed scoring forward")
    max_pairs: int | None = Field(None, gt=0, description="score at most this many pairs per held-out file")


class RewardConfig(Tracked):
    stage: Literal["reward"] = "reward"
    kind: Literal["helpfulness", "safety"]
    output_dir: RunPath = "runs/reward"
    model: ModelConfig = ModelConfig()
    data: RewardData
    margin: str | dict[str, float] = Field("small", description="small | large | none (Llama 2 Table 27), or "
                                                               "{strength label: margin} for all five labels")
    default_strength: StrengthLabel = Field("unsure", description="strength of pairs that have none")
    train: RewardTrain = RewardTrain()
    optim: OptimConfig = OptimConfig(lr=1e-5, weight_decay=0.1, schedule="cosine", min_lr_ratio=0.1,
                                     warmup_ratio=0.03, min_warmup_steps=5)
    lora: LoraConfig = LoraConfig()
    deepspeed: DeepSpeedConfig = DeepSpeedConfig()
    distributed: DistributedConfig = DistributedConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    eval: RewardEval = RewardEval()
    independent: IndependentEvalConfig = IndependentEvalConfig()
    allow_changed_inputs: bool = False

    @field_validator("margin")
    @classmethod
    def _known_table(cls, v):
        from chatalign.reward.margins import resolve_margin_table

        resolve_margin_table(v)  # one clear message for an unknown name or an incomplete mapping
        return v

    @model_validator(mode="after")
    def _check(self):
        if self.train.row_tokens < 2 * self.train.max_seq_len:
            raise ValueError(f"train.row_tokens ({self.train.row_tokens}) must hold a whole pair: at least "
                             f"2 * train.max_seq_len ({2 * self.train.max_seq_len})")
        if self.lora.enabled and self.train.trainable_layers:
            raise ValueError("train.trainable_layers and lora.enabled are two ways to train part of the model: "
                             "choose one")
        check_lora_deepspeed(self.lora, self.deepspeed)
        refuse_adapter_only(self.lora, "the saved reward model keeps where it reads the score in model/config.json")
        return self

    def quarantine_for(self, src: PrefSource, group: str) -> str | None:
        if self.data.on_error != "skip":
            return None
        return src.quarantine or str(Path(self.output_dir) / "quarantine" / f"{group}-{src.label}.jsonl")
