"""Safety context-distillation recipe schema (`chatalign safety --config`). From the paper (sec. 4.2.4): a safety
preprompt plus an answer template per risk category, answers generated with and without it, the preprompted
answer kept only where the safety RM scores it higher, fine-tuning on the prompt without the preprompt.
The paper gives no fine-tuning hyper-parameters for this step; we default to its SFT ones (lr 2e-5, cosine,
weight decay 0.1, batch 64 x 4096, 2 epochs). The violation threshold defaults to 0.15 on the sigmoid safety
score, the value under which PPO treats an answer as unsafe (sec. 3.2.3: precision 0.89 on safety data)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chatalign.config import ModelRef, RecipePath, RunPath, StrictModel
from chatalign.evaluation.config import IndependentEvalConfig
from chatalign.sft.config import DerivedStageConfig

Step = Literal["distill", "evaluate_before", "train", "evaluate_after"]
ALL_STEPS: list[str] = ["distill", "evaluate_before", "train", "evaluate_after"]
ViolationRule = Literal["rm_and_not_refusal", "rm", "not_refusal", "rm_or_not_refusal"]


class SafetyRM(StrictModel):
    name: ModelRef = Field(..., description="the safety reward run directory (chatalign reward, kind safety) "
                                            "or an HF sequence-classification directory")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_tokens: int = Field(8192, gt=0, description="tokens per packed scoring forward")
    max_seq_len: int | None = Field(None, gt=8, description="longer prompts lose their oldest rounds")
    allow_other_kind: bool = Field(False, description="accept a reward run whose kind is not `safety`")


class SafetyDistill(StrictModel):
    prompts: list[RecipePath] = Field(..., min_length=1,
                                      description="adversarial Prompt files (is_safety, risk_category)")
    templates: RecipePath = Field(...,
                                  description="YAML with `preprompt` and one `answer_templates` entry per category")
    max_prompts: int | None = Field(None, gt=0, description="per file (the first ones)")
    placement: Literal["system", "user_prefix"] = "system"
    use_answer_template: bool = True
    margin: float = Field(0.0, ge=0, description="keep where score(with) - score(without) > margin (raw RM units)")
    unfinished: Literal["keep", "trim_to_sentence", "drop"] = "trim_to_sentence"
    max_new_tokens: int = Field(256, gt=0)
    temperature: float = Field(0.7, ge=0, description="0 = greedy")
    top_p: float = Field(0.9, gt=0, le=1)
    batch_size: int = Field(16, gt=0)
    seed: int = 0


class SafetyEval(StrictModel):
    adversarial: RecipePath | None = Field(None, description="held-out adversarial Prompt file: violation rate")
    helpful: RecipePath | None = Field(None, description="ordinary prompts: false-refusal rate")
    borderline: RecipePath | None = Field(None, description="risky-looking benign prompts (tags [borderline, "
                                                            "category]): false-refusal rate")
    max_prompts: int | None = Field(None, gt=0, description="per file (the first ones)")
    max_new_tokens: int = Field(256, gt=0)
    batch_size: int = Field(16, gt=0)
    threshold: float = Field(0.15, gt=0, lt=1, description="sigmoid safety score under which an answer is unsafe")
    violation_rule: ViolationRule = "rm_and_not_refusal"
    false_refusal_bound: float = Field(0.05, ge=0, le=1, description="largest acceptable rise of a false-refusal "
                                                                     "rate from before to after")

    @property
    def any_data(self) -> bool:
        return any(p is not None for p in (self.adversarial, self.helpful, self.borderline))


class SafetyConfig(DerivedStageConfig):
    """model, train, optim, lora, deepspeed, checkpoint and allow_changed_inputs: as DerivedStageConfig."""

    stage: Literal["safety"] = "safety"
    output_dir: RunPath = "runs/safety"
    safety_rm: SafetyRM
    distill: SafetyDistill
    eval: SafetyEval = SafetyEval()
    independent: IndependentEvalConfig = IndependentEvalConfig()
    steps: list[Step] = Field(default_factory=lambda: list(ALL_STEPS),
                              description="which parts this invocation runs (a multi-GPU run: train alone)")
