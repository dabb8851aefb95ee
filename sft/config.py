"""SFT recipe schema. Defaults are the Llama 2 paper's (sec. 3.1): lr 2e-5, cosine, wd 0.1, batch 64, seq 4096,
2 epochs; a packed row holds several examples, so `global_batch_rows` counts rows of `seq_len` tokens."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from chatalign.config import RecipePath, RunPath, StrictModel
from chatalign.evaluation.config import IndependentEvalConfig
from chatalign.rollout.generation_config import GenerationConfig
from chatalign.tracking.config import Tracked
from chatalign.training.config import (
    CheckpointConfig,
    DeepSpeedConfig,
    DistributedConfig,
    LoraConfig,
    ModelConfig,
    OptimConfig,
    check_batch_rows,
    check_lora_deepspeed,
    check_steps,
    refuse_adapter_only,
)


class SFTSource(StrictModel):
    path: RecipePath = Field(..., description="conversations: JSONL/JSON/Parquet/datasets folder, any supported format")
    max_rows: int | None = Field(None, gt=0, description="read at most this many usable rows (the first ones)")
    tags: list[str] | None = Field(None, min_length=1, description="keep only rows tagged with one of these "
                                   "(before max_rows), e.g. [benign_lookalike]: one file, several selections")


class SFTData(StrictModel):
    train: RecipePath = Field(..., description="conversations: JSONL/JSON/Parquet/datasets folder, any supported format")
    extra: list[SFTSource] = Field(default_factory=list, description="more conversation files trained together "
                                   "with `train` (e.g. broad chat data beside task data), each with its own cap")
    eval: RecipePath | None = Field(None, description="held-out prompts with `reference` answers and optional `check`")
    format: str = "auto"
    on_error: Literal["raise", "skip"] = "raise"
    quarantine: RecipePath | None = None
    max_rows: int | None = Field(None, gt=0)


class FinetuneTrain(StrictModel):
    """Fine-tuning on packed rows of `seq_len` tokens (SFT, and the stages that fine-tune through it)."""

    epochs: int = Field(2, gt=0)
    seq_len: int = Field(4096, gt=8)
    global_batch_rows: int = Field(64, gt=0)
    micro_batch_rows: int = Field(1, gt=0)
    max_steps: int | None = Field(None, gt=0)
    trainable_layers: int | None = Field(
        None, gt=0, description="train only the top N decoder layers and the final norm (the embeddings and a "
        "head tied to them stay frozen): a backward of N layers instead of all, and a model kept closer to "
        "where it started; None: every weight (or LoRA's)")
    seed: int = 0


class SFTTrain(FinetuneTrain):
    train_on: Literal["all_assistant", "last_assistant"] = "all_assistant"
    truncation: Literal["truncate_right", "drop_oldest_turns"] = "drop_oldest_turns"


class SFTEval(StrictModel):
    max_prompts: int = Field(60, ge=0)
    max_new_tokens: int = Field(64, gt=0)
    batch_size: int = Field(16, gt=0)
    compare_base: bool = True


def check_one_way_to_train(train: FinetuneTrain, lora: LoraConfig) -> None:
    if train.trainable_layers and lora.enabled:
        raise ValueError("train.trainable_layers and lora.enabled are two ways to train part of the model: "
                         "choose one")


class SFTConfig(Tracked):
    stage: Literal["sft"] = "sft"
    output_dir: RunPath = "runs/sft"
    model: ModelConfig = ModelConfig()
    data: SFTData
    train: SFTTrain = SFTTrain()
    optim: OptimConfig = OptimConfig(lr=2e-5, weight_decay=0.1, schedule="cosine", warmup_ratio=0.0)
    lora: LoraConfig = LoraConfig()
    deepspeed: DeepSpeedConfig = DeepSpeedConfig()
    distributed: DistributedConfig = DistributedConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    eval: SFTEval = SFTEval()
    independent: IndependentEvalConfig = IndependentEvalConfig()
    allow_changed_inputs: bool = False

    @model_validator(mode="after")
    def _check(self):
        check_batch_rows(self.train)
        check_one_way_to_train(self.train, self.lora)
        check_lora_deepspeed(self.lora, self.deepspeed)
        if self.data.on_error == "skip" and not self.data.quarantine:
            raise ValueError("data.on_error=skip needs data.quarantine (a file for the skipped rows)")
        return self


class DerivedStageConfig(Tracked):
    """What a stage that makes its own rows and fine-tunes on them through SFT (chatalign.sft.derived_run: GAtt,
    safety) shares: the starting model, the fine-tuning sections (the paper's SFT settings by default; it gives
    none for these steps) and `steps`. A subclass sets `stage`, `output_dir` and `steps` to its own."""

    stage: str
    output_dir: RunPath
    model: ModelConfig = ModelConfig()
    train: FinetuneTrain = FinetuneTrain()
    optim: OptimConfig = OptimConfig(lr=2e-5, weight_decay=0.1, schedule="cosine", warmup_ratio=0.0)
    lora: LoraConfig = LoraConfig()
    deepspeed: DeepSpeedConfig = DeepSpeedConfig()
    distributed: DistributedConfig = DistributedConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    replay: list[SFTSource] = Field(
        default_factory=list, description="conversations trained beside the stage's own rows (the loss on their "
        "last answer), each file capped to its first max_rows: ordinary good answers that keep the model "
        "answering ordinary requests as well as before while it learns the stage's behaviour")
    generation: GenerationConfig = Field(
        GenerationConfig(), description="what generates the stage's own answers (synthesis, its evaluations "
        "before and after): the native engine or vLLM")
    steps: list[str]
    allow_changed_inputs: bool = False

    @model_validator(mode="after")
    def _check_training(self):
        check_batch_rows(self.train)
        check_one_way_to_train(self.train, self.lora)
        check_lora_deepspeed(self.lora, self.deepspeed)
        refuse_adapter_only(self.lora, "the stage's evaluation reads its trained model/")
        check_steps(self.steps)
        return self
