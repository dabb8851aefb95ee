"""GAtt recipe schema (`chatalign gatt --config`). Paper settings (sec. 3.3) where the paper gives them:
instruction in every user turn while sampling, removed from all but the first afterwards, loss 0 on all
previous turns, half of the instructions terse, families combined at random. The paper does not give the
fine-tuning hyper-parameters of GAtt; we default to its SFT ones (lr 2e-5, cosine, weight decay 0.1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from chatalign.config import RecipePath, RunPath, StrictModel
from chatalign.sft.config import DerivedStageConfig

Family = Literal["hobby", "language", "public_figure", "answer_length", "format"]
Placement = Literal["first_user", "system"]
Step = Literal["synthesize", "evaluate_before", "train", "evaluate_after"]
ALL_STEPS: list[str] = ["synthesize", "evaluate_before", "train", "evaluate_after"]


class GattInstructions(StrictModel):
    constraints: RecipePath = Field(..., description="YAML with hobbies, languages, public figures and wordings")
    families: list[Family] = ["hobby", "language", "public_figure", "answer_length", "format"]
    min_families: int = Field(1, ge=1)
    max_families: int = Field(2, ge=1)
    terse_fraction: float = Field(0.5, ge=0, le=1)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self):
        if len(set(self.families)) != len(self.families) or not self.families:
            raise ValueError("families must be a non-empty list without repeats")
        if not self.min_families <= self.max_families <= len(self.families):
            raise ValueError(f"need min_families <= max_families <= {len(self.families)} (the number of families)")
        return self


class GattSynthesis(StrictModel):
    dialogues: list[RecipePath] = Field(..., min_length=1,
                                 description='{"id","user_turns"} JSONL files or Conversation files')
    max_dialogues: int | None = Field(None, gt=0, description="per file")
    max_turns: int | None = Field(None, gt=0, description="answer at most this many turns per dialogue")
    min_turn: int = Field(1, ge=1, description="emit rows ending at assistant turn k >= min_turn")
    placement: Placement = "first_user"
    candidates_per_turn: int = Field(1, ge=1, description="answers sampled per turn; with reject, the "
                                     "first that passes the checkers is kept")
    reject_failing: bool = True
    on_failure: Literal["drop_row", "cut_dialogue"] = "drop_row"
    unfinished: Literal["keep", "trim_to_sentence", "drop"] = "trim_to_sentence"
    max_new_tokens: int = Field(256, gt=0)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    batch_size: int = Field(16, gt=0)
    max_prompt_tokens: int | None = Field(None, gt=0)
    reuse_prefix: bool = Field(True, description="keep each dialogue's KV cache from turn to turn (prefill "
                               "linear, not quadratic, in the turns; one cache per dialogue in memory)")
    seed: int = 0


class GattEval(StrictModel):
    data: RecipePath | None = Field(None, description="held-out dialogues; none: no before/after evaluation")
    n_dialogues: int = Field(20, gt=0)
    n_long: int | None = Field(None, ge=0, description="how many of them run to the last turn; the others "
                               "stop at the turn reported before it (None: all)")
    turns: list[int] = Field([2, 4, 6, 20], min_length=1)
    placement: Placement = "first_user"
    max_new_tokens: int = Field(128, gt=0)
    batch_size: int = Field(16, gt=0)
    max_prompt_tokens: int | None = Field(None, gt=0)
    reuse_prefix: bool = Field(True, description="as synthesis.reuse_prefix")
    seed: int = Field(1, description="instruction draw for evaluation (kept apart from the training draw)")

    @model_validator(mode="after")
    def _check(self):
        if any(t < 1 for t in self.turns):
            raise ValueError("eval.turns are 1-based turn numbers (>= 1)")
        return self


class GattConfig(DerivedStageConfig):
    """model, train, optim, lora, deepspeed, checkpoint and allow_changed_inputs: as DerivedStageConfig."""

    stage: Literal["gatt"] = "gatt"
    output_dir: RunPath = "runs/gatt"
    instructions: GattInstructions
    synthesis: GattSynthesis
    eval: GattEval = GattEval()
    steps: list[Step] = Field(default_factory=lambda: list(ALL_STEPS),
                              description="which parts this invocation runs (a multi-GPU run: train alone)")
