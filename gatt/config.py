"""GAtt recipe schema (`chatalign gatt --config`). Paper settings (sec. 3.3) where the paper gives them:
instruction in every user turn while sampling, removed from all but the first afterwards, loss 0 on all
previous turns, half of the instructions terse, kinds combined at random. Ours: more kinds of instruction
(`chatalign.gatt.instructions`), repairs of answers that miss a form constraint, a share of the training rows
with the instruction as the system message, and an evaluation on instruction kinds held out from training
(`independent`). The paper does not give the fine-tuning hyper-parameters of GAtt; we default to its SFT ones
(lr 2e-5, cosine, weight decay 0.1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from chatalign.config import RecipePath, RunPath, StrictModel
from chatalign.evaluation.config import IndependentEvalConfig
from chatalign.sft.config import DerivedStageConfig

Kind = Literal["language", "start_phrase", "sign_off", "include_keyword", "uppercase", "word_limit", "bullets",
               "numbered_list", "json", "persona_name", "emoji", "hobby", "public_figure"]
Placement = Literal["first_user", "system"]
Step = Literal["synthesize", "evaluate_before", "train", "evaluate_after"]
ALL_STEPS: list[str] = ["synthesize", "evaluate_before", "train", "evaluate_after"]


class GattInstructions(StrictModel):
    constraints: RecipePath = Field(..., description="YAML with each kind's wordings and values")
    kinds: list[Kind] | None = Field(None, description="kinds to draw from (None: every kind in the YAML)")
    min_kinds: int = Field(1, ge=1)
    max_kinds: int = Field(2, ge=1)
    terse_fraction: float = Field(0.5, ge=0, le=1)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self):
        if self.kinds is not None and (len(set(self.kinds)) != len(self.kinds) or not self.kinds):
            raise ValueError("kinds must be a non-empty list without repeats")
        if self.min_kinds > self.max_kinds or (self.kinds and self.max_kinds > len(self.kinds)):
            raise ValueError("need min_kinds <= max_kinds <= the number of kinds")
        return self


class GattSynthesis(StrictModel):
    dialogues: list[RecipePath] = Field(..., min_length=1,
                                 description='{"id","user_turns"} JSONL files or Conversation files')
    max_dialogues: int | None = Field(None, gt=0, description="per file")
    max_turns: int | None = Field(None, gt=0, description="answer at most this many turns per dialogue")
    instructions_per_dialogue: int = Field(1, ge=1, description="each dialogue sampled this many times, "
                                           "with another instruction each time")
    min_turn: int = Field(1, ge=1, description="emit rows ending at assistant turn k >= min_turn")
    system_share: float = Field(0.5, ge=0, le=1, description="share of dialogues whose training rows hold the "
                                "instruction as the system message (the others: in the first user message)")
    candidates_per_turn: int = Field(1, ge=1, description="answers sampled per turn; with reject, the "
                                     "first that passes the checkers is kept")
    reject_failing: bool = True
    repair: bool = Field(True, description="with reject_failing: where no candidate passes, keep one that a "
                         "faithful mechanical repair makes pass (a phrase prepended, uppercased, ...)")
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
    """In-distribution adherence: the training kinds on held-out dialogues (both placements by default).
    Every turn up to the last of `turns` is answered and reported; `turns` are the ones the summary names."""

    data: RecipePath | None = Field(None, description="held-out dialogues; none: no before/after evaluation")
    n_dialogues: int = Field(20, gt=0, description="per placement")
    n_long: int | None = Field(None, ge=0, description="how many of them run to the last turn; the others "
                               "stop at the turn reported before it (None: all)")
    turns: list[int] = Field([2, 4, 6, 20], min_length=1)
    placements: list[Placement] = Field(["system", "first_user"], min_length=1)
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


class GattSuiteConfig(StrictModel):
    """Adherence on instruction kinds held out from training (gatt_instructions.jsonl on gatt_dialogues.jsonl
    of the independent data folder), per placement. Every turn up to `max_turn` is answered: `n_long` dialogues
    per placement run to it, the others stop at `short_turns` (a 20-turn dialogue costs ~8x a 6-turn one).
    Generation settings: those of `eval` (the held-out kinds and the training kinds run in one pass)."""

    n_dialogues: int = Field(15, gt=0, description="per placement; instructions round-robin over their kinds")
    n_long: int | None = Field(5, ge=0, description="None: all run to max_turn")
    short_turns: int = Field(6, ge=1)
    max_turn: int = Field(20, ge=1)
    placements: list[Placement] = Field(["system", "first_user"], min_length=1)
    wording: Literal["full", "terse", "alternate"] = Field("full", description="the instruction's full or terse "
                                                           "wording, or alternately one and the other")
    evaluate_base: bool = Field(True, description="also run the base model (`base_model`) through these "
                                "dialogues, for the base column; false saves that pass (the column shows '-')")

    @model_validator(mode="after")
    def _check(self):
        if self.short_turns > self.max_turn:
            raise ValueError("short_turns must be <= max_turn")
        return self


class GattIndependent(IndependentEvalConfig):
    """The independent evaluation of the GAtt stage (off unless `enabled`, as in every stage): the core suites
    (default: general) and `gatt`, for the base model (`base_model`), the starting model and the GAtt model;
    written to independent.json."""

    gatt: GattSuiteConfig = GattSuiteConfig()

    def gatt_on(self) -> bool:
        return self.enabled and "gatt" in self.suites_for(list(GATT_DEFAULT_SUITES))


GATT_DEFAULT_SUITES = ("general", "gatt")


class GattConfig(DerivedStageConfig):
    """model, train, optim, lora, deepspeed, checkpoint and allow_changed_inputs: as DerivedStageConfig."""

    stage: Literal["gatt"] = "gatt"
    output_dir: RunPath = "runs/gatt"
    instructions: GattInstructions
    synthesis: GattSynthesis
    eval: GattEval = GattEval()
    independent: GattIndependent = GattIndependent()
    steps: list[Step] = Field(default_factory=lambda: list(ALL_STEPS),
                              description="which parts this invocation runs (a multi-GPU run: train alone)")
